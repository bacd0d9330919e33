package service

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// shards is a cluster of four shards whose states the test sets.
type shards struct{ st [4]gatehouse.ClusterState }

func (c *shards) Shards() int { return len(c.st) }

func (c *shards) Shard(account string) int { return int(account[len(account)-1]-'0') % len(c.st) }

func (c *shards) State(_ context.Context, i int) (gatehouse.ClusterState, error) { return c.st[i], nil }

func (c *shards) Announce(context.Context, []string) error { return nil }

// TestCatchUpPublishesSightings: states that requests found new, on any
// shard, while the node did not read the revocation log (Notice while
// another read holds it) are published by the next read, whichever shard
// it was for; a state first seen after that read is not.
func TestCatchUpPublishesSightings(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	c := &shards{}
	s := New(Config{Store: st, Cluster: c, LimiterConfirms: true})
	if err := s.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	state := func(n uint64) gatehouse.ClusterState { return gatehouse.ClusterState{Epoch: "e", N: n} }
	// While another read holds the log, notices are sightings only.
	s.gen.catchUp.Lock()
	s.Notice(ctx, "acc_1", state(11))
	s.Notice(ctx, "acc_2", state(12))
	s.gen.catchUp.Unlock()
	if seen := s.gen.load().seen; seen[1] != (gatehouse.ClusterState{}) || seen[2] != (gatehouse.ClusterState{}) {
		t.Fatalf("published before a read of the log: %+v", seen)
	}
	time.Sleep(2 * noticeEvery)
	s.Notice(ctx, "acc_3", state(13))
	seen := s.gen.load().seen
	want := []gatehouse.ClusterState{{}, state(11), state(12), state(13)}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("after a read: shard %d in %+v, want %+v (all: %+v)", i, seen[i], want[i], seen)
		}
	}
	// A sighting after the last read waits for the next one.
	s.gen.catchUp.Lock()
	s.Notice(ctx, "acc_0", state(10))
	s.gen.catchUp.Unlock()
	if got := s.gen.load().seen[0]; got != (gatehouse.ClusterState{}) {
		t.Fatalf("published %+v with no read of the log since it was seen", got)
	}
	if err := s.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.gen.load().seen[0]; got != state(10) {
		t.Fatalf("shard 0 in %+v after a read, want %+v", got, state(10))
	}
}
