package cluster_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/internal/faultproxy"
	"github.com/gatehouse/gatehouse/internal/redistest"
)

// TestTimeoutOnStalledRedis: with Redis behind a proxy that holds every
// packet (a partition), reading the cluster state and announcing a
// change fail instead of waiting for the network, and work again once it
// heals; a reset connection fails the same way.
func TestTimeoutOnStalledRedis(t *testing.T) {
	redistest.Client(t) // skips without the test Redis
	u, err := url.Parse(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	opt, err := cluster.ClientOption("redis://" + p.Addr() + u.Path)
	if err != nil {
		t.Fatal(err)
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := cluster.NewRedis(cluster.WithTimeout(client, 300*time.Millisecond), redistest.Prefix(t, client))
	ctx := context.Background()
	if _, err := r.State(ctx, 0); err != nil {
		t.Fatalf("state: %v", err)
	}
	for _, m := range []faultproxy.Mode{faultproxy.Blackhole, faultproxy.Reset} {
		p.Set(m)
		if _, err := r.State(ctx, 1); err == nil {
			t.Fatalf("%s: state read", m)
		}
		if err := r.Announce(ctx, nil); err == nil {
			t.Fatalf("%s: announce made", m)
		}
		p.Set(faultproxy.Pass)
		var err error
		for range 50 {
			if _, err = r.State(ctx, 2); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("after %s healed: %v", m, err)
		}
	}
}
