package cluster

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// BatchRequest is one request of a batch sent by AdmitBatch.
type BatchRequest struct {
	Expect  *gatehouse.ClusterState
	Rests   string
	Account string
	Keys    []string
	Limits  ratelimit.Limits
}

// AdmitBatch sends reqs, all of shard i, as one batch (one script call)
// and returns whether each was decided.
func (r *Redis) AdmitBatch(ctx context.Context, i int, reqs []BatchRequest) ([]bool, error) {
	batch := make([]*admission, len(reqs))
	for j, q := range reqs {
		batch[j] = &admission{expect: q.Expect, rests: q.Rests, account: q.Account, keys: q.Keys, limits: q.Limits}
	}
	r.admit(ctx, i, batch)
	ok := make([]bool, len(batch))
	for j, a := range batch {
		if a.err != nil {
			return nil, a.err
		}
		ok[j] = a.ok
	}
	return ok, nil
}

// Owe records a ring of shard i that could not be made, as a failed
// announcement does.
func (r *Redis) Owe(i int) { r.owed[i].fail() }
