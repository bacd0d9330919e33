package e2e

// Clocks that disagree: two "nodes" of one store whose clocks differ (a
// service.Service with a movable clock on the running server's store, as
// time_attacks_test.go's timedService, stands for a node whose clock is
// there), and one node whose clock steps back.

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/service"
)

// skewScope is a request scope carrying only a client address.
type skewScope struct{ addr string }

func (s skewScope) Logger() *slog.Logger            { return slog.Default() }
func (s skewScope) ClientAddr() string              { return s.addr }
func (s skewScope) Principal() *gatehouse.Principal { return nil }
func skewFrom(addr string) context.Context {
	return gatehouse.WithRequestScope(context.Background(), skewScope{addr})
}

// TestSkewRefreshAcrossSkewedNodes: a refresh rotated on node A, presented
// again on node B whose clock is 400 ms behind A's. A same-client retry
// inside the grace gets the committed pair; another address inside the grace
// revokes; any address well after the grace (A's time) revokes on B too.
func TestSkewRefreshAcrossSkewedNodes(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	a, clkA := timedService(t, env)
	b, clkB := timedService(t, env)
	skew := -400 * time.Millisecond
	T := time.Now().Add(time.Minute).UTC().Truncate(time.Microsecond)
	at := func(d time.Duration) { clkA.set(T.Add(d)); clkB.set(T.Add(d + skew)) }

	// 1. Retry from the same client on B inside the grace: same pair.
	app := enableAPIAccess(t, env, admin, nil)
	at(0)
	first, err := a.RefreshGrant(skewFrom("10.0.0.1"), app.ClientID, app.RefreshToken, "")
	if err != nil {
		t.Fatal(err)
	}
	at(4 * time.Second)
	again, err := b.RefreshGrant(skewFrom("10.0.0.1"), app.ClientID, app.RefreshToken, "")
	if err != nil || again.RefreshToken != first.RefreshToken {
		t.Errorf("in-grace retry on the node behind: %v", err)
	}
	// 2. Well after the grace, on B, from the same client: the lineage ends.
	at(6 * time.Second)
	if _, err := b.RefreshGrant(skewFrom("10.0.0.1"), app.ClientID, app.RefreshToken, ""); err == nil {
		t.Errorf("reuse 6 s after the use (5.6 s by B's clock) accepted")
	}
	if _, err := a.AccessPrincipal(context.Background(), first.AccessToken); err == nil {
		t.Errorf("reuse 6 s after the use on the node 400 ms behind did not revoke the lineage")
	}
}

// TestSkewDevicePollAlternating: a device polls alternately through two
// nodes whose clocks differ by 300 ms. An honest client waiting the
// interval (5 s) is never slowed down; one polling every 4 s is slowed
// down whichever node it picks.
func TestSkewDevicePollAlternating(t *testing.T) {
	w := newDeviceWorld(t)
	a, clkA := timedService(t, w.env)
	b, clkB := timedService(t, w.env)
	T := time.Now().Add(time.Second).UTC().Truncate(time.Microsecond)
	at := func(d time.Duration) { clkA.set(T.Add(d)); clkB.set(T.Add(d + 300*time.Millisecond)) }
	nodes := []*service.Service{a, b}
	run := func(every time.Duration, polls int) (slowed int) {
		r := startDevice(w.env, w.public.ClientID, "workspaces:read")
		servertest.Expect(t, r, 200, "")
		code := r.Map(t)["device_code"].(string)
		for i := 0; i < polls; i++ {
			at(time.Duration(i) * every)
			_, err := nodes[i%2].DeviceGrant(context.Background(), w.public.ClientID, "", code, "")
			switch gatehouse.ErrorCode(err) {
			case gatehouse.ESlowDown:
				slowed++
			case gatehouse.EAuthorizationPending:
			default:
				t.Fatalf("poll %d: %v", i, err)
			}
		}
		return slowed
	}
	if n := run(5*time.Second, 6); n != 0 {
		t.Errorf("honest client polling every 5 s across two nodes 300 ms apart was slowed down %d times", n)
	}
	if n := run(4*time.Second, 6); n == 0 {
		t.Errorf("client polling every 4 s across two nodes was never slowed down")
	}
}

// TestSkewMemoryLimiterClockBack: a single node's in-memory limiter whose
// clock steps back 30 s after a full burst never admits more than the burst
// in any real 20 s window (it refuses, conservatively).
func TestSkewMemoryLimiterClockBack(t *testing.T) {
	clk := &movableClock{}
	T := time.Now().UTC()
	clk.set(T)
	m := ratelimit.NewMemory(ratelimit.WithClock(clk.now))
	lim := ratelimit.Limits{Burst: 5, BurstWindow: 20 * time.Second, Daily: 1000, DailyWindow: 24 * time.Hour}
	ctx := context.Background()
	admit := func() bool {
		d, err := m.Allow(ctx, "acc", []string{"user:u"}, lim)
		if err != nil {
			t.Fatal(err)
		}
		return d.Allowed
	}
	for i := 0; i < 5; i++ {
		if !admit() {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	// Clock steps back 30 s; real time goes on 1 s, 10 s, 19 s.
	for _, real := range []time.Duration{time.Second, 10 * time.Second, 19 * time.Second} {
		clk.set(T.Add(real - 30*time.Second))
		if admit() {
			t.Errorf("admitted %v (real) after a full burst, clock stepped back 30 s", real)
		}
	}
}
