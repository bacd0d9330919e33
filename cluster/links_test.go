package cluster_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/internal/faultproxy"
	"github.com/gatehouse/gatehouse/internal/redistest"
)

// TestAdmitAfterReconnect: a state read before the client's connections
// were reset (a failover's, a restart's) confirms nothing after it, even
// when the shard is in the same epoch and value: the server may be
// another one whose state went back. The state read on the new
// connections carries a newer label and confirms as before.
func TestAdmitAfterReconnect(t *testing.T) {
	u, err := url.Parse(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	redistest.Client(t) // skips without a Redis
	proxy, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	opt, err := cluster.ClientOption("redis://" + proxy.Addr() + u.Path)
	if err != nil {
		t.Fatal(err)
	}
	links := cluster.CountLinks(&opt)
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	r := cluster.NewRedis(c, redistest.Prefix(t, c))
	r.FollowLinks(links)
	ctx := context.Background()
	const account = "acc_1"
	// The client opens its few connections as it first uses each (one at
	// random per command): use them all.
	for range 64 {
		if _, _, _, err := r.Admit(ctx, nil, "", account, []string{"user:w"}, lim); err != nil {
			t.Fatal(err)
		}
	}
	before, err := r.State(ctx, r.Shard(account))
	if err != nil {
		t.Fatal(err)
	}
	if before.Link != links.Count() {
		t.Fatalf("state %+v read with %d connections opened", before, links.Count())
	}
	before = confirmed(t, r, before)

	proxy.Set(faultproxy.Reset)
	proxy.Set(faultproxy.Pass)
	var (
		after gatehouse.ClusterState
		ok    bool
	)
	for range 10 { // the first uses of broken connections fail
		if _, after, ok, err = r.Admit(ctx, &before, "", account, []string{"user:u"}, lim); err == nil {
			break
		}
	}
	if err != nil || ok {
		t.Fatalf("a state read before the reconnection: ok %v, err %v; want not confirmed", ok, err)
	}
	if after.Epoch != before.Epoch || after.N != before.N || after.Link <= before.Link {
		t.Fatalf("after the reconnection: %+v, before %+v; want the same shard state on more connections", after, before)
	}
	confirmed(t, r, after)
}

// confirmed admits a request under st until a state read since confirms
// it, while the client opens its connections (each one opened makes the
// states read before it stale), and returns that state.
func confirmed(t *testing.T, r *cluster.Redis, st gatehouse.ClusterState) gatehouse.ClusterState {
	t.Helper()
	for range 10 {
		_, now, ok, err := r.Admit(context.Background(), &st, "", "acc_1", []string{"user:u"}, lim)
		if err == nil && ok {
			return st
		}
		if err == nil {
			st = now
		}
	}
	t.Fatalf("no state read since %+v confirms a request", st)
	return st
}
