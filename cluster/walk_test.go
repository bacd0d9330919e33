package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// TestBatchRestsOnRings decides batches that mix requests resting on
// different earlier states and on different subjects in one script call
// (the script reads the rings since once per batch and judges every
// request from that one reading): each request is decided exactly when no
// ring since its state touched any of its subjects, whatever the order of
// the batch.
func TestBatchRestsOnRings(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		pfx := redistest.Prefix(t, b.Client)
		r := cluster.NewRedis(b.Client, pfx)
		const account = "acc_walk"
		i := cluster.Shard(account)
		// Subjects on distinct slots: A, B, C, D are rung in turn; E never.
		var subjects []string
		seen := map[uint32]bool{}
		for k := 0; len(subjects) < 5; k++ {
			s := gatehouse.UserSubject(fmt.Sprintf("walk%d", k))
			if slot := gatehouse.SubjectSlot(s); !seen[slot] {
				seen[slot] = true
				subjects = append(subjects, s)
			}
		}
		states := make([]gatehouse.ClusterState, 5) // states[k]: after k rings
		var err error
		if states[0], err = r.State(ctx, i); err != nil {
			t.Fatal(err)
		}
		for k := 1; k < len(states); k++ {
			if err := r.Announce(ctx, []string{subjects[k-1]}); err != nil {
				t.Fatal(err)
			}
			if states[k], err = r.State(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		type request struct {
			since int   // the state it rests on
			rests []int // the subjects it rests on
		}
		var reqs []request
		for since := range states {
			for _, rests := range [][]int{{0}, {1}, {2}, {3}, {4}, {0, 4}, {4, 2}, {3, 4}} {
				reqs = append(reqs, request{since, rests})
			}
		}
		// want: no ring after since (ring k touched subject k-1) touched
		// any of its subjects.
		want := func(q request) bool {
			for _, s := range q.rests {
				if s < 4 && s+1 > q.since {
					return false
				}
			}
			return true
		}
		lim := ratelimit.Limits{Burst: 1 << 20, BurstWindow: time.Minute, Daily: 1 << 30, DailyWindow: 24 * time.Hour}
		for round := range 40 {
			rand.Shuffle(len(reqs), func(a, b int) { reqs[a], reqs[b] = reqs[b], reqs[a] })
			batch := make([]cluster.BatchRequest, len(reqs))
			for j, q := range reqs {
				var names []string
				for _, s := range q.rests {
					names = append(names, subjects[s])
				}
				batch[j] = cluster.BatchRequest{Expect: &states[q.since], Rests: gatehouse.SubjectSlots(names...), Account: account,
					Keys: []string{fmt.Sprintf("user:w%d", j)}, Limits: lim}
			}
			decided, err := r.AdmitBatch(ctx, i, batch)
			if err != nil {
				t.Fatal(err)
			}
			for j, q := range reqs {
				if decided[j] != want(q) {
					t.Fatalf("round %d: resting on the state after %d rings and subjects %v: decided %v, want %v", round, q.since, q.rests, decided[j], want(q))
				}
			}
		}
		// A ring the list does not hold (a node of the previous release
		// adds 1 to the value) breaks the chain for every request resting
		// on an earlier state, even one whose state a listed ring names.
		key := pfx + "gatehouse:generation:{" + cluster.Tag(i) + "}"
		if err := b.Client.Do(ctx, b.Client.B().Hincrby().Key(key).Field("n").Increment(1).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		for since := range states {
			decided, err := r.AdmitBatch(ctx, i, []cluster.BatchRequest{{Expect: &states[since], Rests: gatehouse.SubjectSlots(subjects[4]),
				Account: account, Keys: []string{"user:w"}, Limits: lim}})
			if err != nil {
				t.Fatal(err)
			}
			if decided[0] {
				t.Fatalf("resting on the state after %d rings: decided across a ring the list does not hold", since)
			}
		}
	})
}

// BenchmarkBatchRestsOnRings measures one script call deciding a batch of
// five principals' requests, each resting on the state ten rings back
// (none touched it), as a busy node's batches are under churn.
func BenchmarkBatchRestsOnRings(b *testing.B) {
	c := redistest.Client(b)
	ctx := context.Background()
	r := cluster.NewRedis(c, redistest.Prefix(b, c))
	const account = "acc_walk"
	i := cluster.Shard(account)
	st, err := r.State(ctx, i)
	if err != nil {
		b.Fatal(err)
	}
	for k := range 10 {
		if err := r.Announce(ctx, []string{gatehouse.CredentialSubject(fmt.Sprintf("gone%d", k)), gatehouse.ClientSubject(fmt.Sprintf("gone%d", k))}); err != nil {
			b.Fatal(err)
		}
	}
	lim := ratelimit.Limits{Burst: 1 << 30, BurstWindow: time.Second, Daily: 1 << 40, DailyWindow: 24 * time.Hour}
	batch := make([]cluster.BatchRequest, 5)
	for j := range batch {
		u := fmt.Sprintf("busy%d", j)
		batch[j] = cluster.BatchRequest{Expect: &st, Rests: gatehouse.SubjectSlots(gatehouse.AccountSubject(account), gatehouse.UserSubject(u), gatehouse.CredentialSubject(u)),
			Account: account, Keys: []string{"user:" + u}, Limits: lim}
	}
	b.ResetTimer()
	for b.Loop() {
		decided, err := r.AdmitBatch(ctx, i, batch)
		if err != nil || !decided[0] {
			b.Fatal(decided, err)
		}
	}
}
