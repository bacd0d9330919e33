package e2e

import (
	"context"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/store"
)

// TestQuotaSurvivesRestart: a single node without Redis keeps what a
// month's quota counted in its store: after a restart the credential's
// "remaining" reads back what is left, and exactly that many more
// requests are admitted before quota_exceeded; refusals are charged
// nothing (remaining stays 0, not negative, and the count stays the
// limit).
func TestQuotaSurvivesRestart(t *testing.T) {
	fast := func(c *server.Config) { c.UsageFlushInterval = 50 * time.Millisecond }
	env := servertest.Start(t, fast)
	admin, _, devTok, c := developer(t, env)
	accountID := accountOf(t, env, admin)
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"quota": map[string]any{"limit": 10, "period": "month"}}), 200, "")
	remaining := func(env *servertest.Env) any {
		t.Helper()
		r := env.As(devTok, "GET", "/v1/credentials", nil)
		servertest.Expect(t, r, 200, "")
		for _, it := range r.Map(t)["data"].([]any) {
			m := it.(map[string]any)
			if m["id"] == c.ID {
				return m["quota"].(map[string]any)["remaining"]
			}
		}
		t.Fatal("credential not listed")
		return nil
	}
	cc := accessToken(t, clientToken(env, c))
	for i := range 6 {
		r := env.As(cc, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 200, "")
		if got := r.Header.Get("X-RateLimit-Quota-Remaining"); got != strconv.Itoa(9-i) {
			t.Fatalf("request %d: quota remaining %q", i, got)
		}
	}
	if got := remaining(env); got != float64(4) {
		t.Fatalf("remaining before the restart %v, want 4", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	again := servertest.Start(t, fast, func(cfg *server.Config) { cfg.DatabaseURL = env.DatabaseURL })
	if got := remaining(again); got != float64(4) {
		t.Fatalf("remaining after the restart %v, want 4", got)
	}
	for i := range 4 {
		r := again.As(cc, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 200, "")
		if got := r.Header.Get("X-RateLimit-Quota-Remaining"); got != strconv.Itoa(3-i) {
			t.Fatalf("after the restart, request %d: quota remaining %q", i, got)
		}
	}
	for range 3 {
		servertest.Expect(t, again.As(cc, "GET", "/v1/me", nil), 422, "quota_exceeded")
	}
	if got := remaining(again); got != float64(0) {
		t.Fatalf("remaining at the end %v, want 0", got)
	}
	// The flushes store the count: wait for the ten, then for a few more
	// flushes, and it must still be ten — the three refusals charged nothing.
	key := store.QuotaKey{AccountID: accountID, Budget: "quota:" + c.ID, Period: time.Now().UTC().Format("2006-01")}
	waitStoredQuota(t, again, key, 10)
	time.Sleep(300 * time.Millisecond) // several more flushes
	n, err := again.Server.Store.QuotaUse(t.Context(), key)
	if err != nil || n != 10 {
		t.Fatalf("stored count %d (%v), want 10: refusals charged", n, err)
	}
}

// TestQuotaSurvivesRedisLoss: two nodes on one store and one Redis; Redis
// loses everything (FLUSHALL) after a month's quota counted 6 of 10 and
// the nodes wrote them to the store. Requests released together through
// both nodes then admit exactly the 4 left, not a fresh 10: the first
// node to find the quota's budget gone seeds it from the store.
func TestQuotaSurvivesRedisLoss(t *testing.T) {
	rs := startRedis(t, "")
	url := "redis://127.0.0.1:" + rs.port + "/0"
	fast := func(c *server.Config) { c.UsageFlushInterval = 50 * time.Millisecond; c.RedisURL = url }
	a := servertest.Start(t, fast)
	b := servertest.Start(t, fast, func(c *server.Config) { c.DatabaseURL = a.DatabaseURL })
	admin, _, devTok, c := developer(t, a)
	accountID := accountOf(t, a, admin)
	servertest.Expect(t, a.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"quota": map[string]any{"limit": 10, "period": "month"}}), 200, "")
	cc := accessToken(t, clientToken(a, c))
	nodes := []*servertest.Env{a, b}
	for i := range 6 {
		r := nodes[i%2].As(cc, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 200, "")
		if got := r.Header.Get("X-RateLimit-Quota-Remaining"); got != strconv.Itoa(9-i) {
			t.Fatalf("request %d: quota remaining %q", i, got)
		}
	}
	key := store.QuotaKey{AccountID: accountID, Budget: "quota:" + c.ID, Period: time.Now().UTC().Format("2006-01")}
	waitStoredQuota(t, a, key, 6)

	if out, err := exec.Command("redis-cli", "-p", rs.port, "flushall").CombinedOutput(); err != nil {
		t.Fatalf("flushall: %v %s", err, out)
	}
	var shots []volleyReq
	for i := range 16 {
		shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], cc, "GET", "/v1/me", "")})
	}
	res := volley(t, shots)
	admitted := 0
	for i, r := range res.resps {
		switch {
		case r.Status == 200:
			admitted++
		case r.Status == 422 && r.Map(t)["error"] == "quota_exceeded":
		default:
			t.Errorf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	if admitted != 4 {
		t.Fatalf("after Redis lost its data: %d admitted, want the 4 left of 10", admitted)
	}
	servertest.Expect(t, b.As(cc, "GET", "/v1/me", nil), 422, "quota_exceeded")
	waitStoredQuota(t, a, key, 10)
}

// waitStoredQuota waits up to 10 s for the store of env to hold want as
// the count of the quota budget and period key (the nodes write their
// counts every flush interval).
func waitStoredQuota(t *testing.T, env *servertest.Env, key store.QuotaKey, want int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, err := env.Server.Store.QuotaUse(t.Context(), key)
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored count %d (%v) after 10 s, want %d", n, err, want)
		}
	}
}
