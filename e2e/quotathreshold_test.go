package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestQuotaThresholdEvents: a credential with a quota of 10 a day is used
// 7 times through node a, once through node b (the 80 % crossing, told by
// b), once more through a (which has not told of 80 % itself, and must
// find that b did), and then by 25 requests released together across both
// nodes (sharing Redis, in the second case) → exactly one of them
// admitted, and exactly two quota.threshold events in all, at 80 % (used
// 8) and at 100 % (used 10).
func TestQuotaThresholdEvents(t *testing.T) {
	t.Run("one node", func(t *testing.T) {
		env := servertest.Start(t, insecureWebhooks)
		attackQuotaThresholds(t, env, env)
	})
	t.Run("two nodes", func(t *testing.T) {
		rs := startRedis(t, "")
		redis := func(c *server.Config) { c.RedisURL = "redis://127.0.0.1:" + rs.port + "/0" }
		a := servertest.Start(t, insecureWebhooks, redis)
		b := servertest.Start(t, insecureWebhooks, redis, func(c *server.Config) { c.DatabaseURL = a.DatabaseURL })
		attackQuotaThresholds(t, a, b)
	})
}

func attackQuotaThresholds(t *testing.T, a, b *servertest.Env) {
	admin, _, devTok, c := developer(t, a)
	rc := newReceiver(t, nil)
	servertest.Expect(t, a.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"quota.threshold"}}), 201, "")
	servertest.Expect(t, a.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"quota": map[string]any{"limit": 10, "period": "day"}}), 200, "")
	tok := accessToken(t, clientToken(a, c))

	for range 7 {
		servertest.Expect(t, a.As(tok, "GET", "/v1/me", nil), 200, "")
	}
	servertest.Expect(t, b.As(tok, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, a.As(tok, "GET", "/v1/me", nil), 200, "")

	const n = 25
	clients := [2]*http.Client{}
	clients[0], _ = preconnected(t, a.URL, n)
	clients[1], _ = preconnected(t, b.URL, n)
	urls := [2]string{a.URL, b.URL}
	var (
		mu     sync.Mutex
		status = map[int]int{}
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", urls[i%2]+"/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			<-start
			resp, err := clients[i%2].Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			status[resp.StatusCode]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if status[200] != 1 || status[422] != n-1 {
		t.Fatalf("answers %v: want 1 admitted and %d over quota", status, n-1)
	}
	// And more after it: nothing new to tell.
	for range 5 {
		servertest.Expect(t, b.As(tok, "GET", "/v1/me", nil), 422, "quota_exceeded")
	}

	rc.wait(t, "quota.threshold", 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for len(rc.all()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a third would have come by now
	got := rc.all()
	if len(got) != 2 {
		t.Fatalf("%d quota.threshold deliveries, want 2", len(got))
	}
	day := time.Now().UTC().Format(time.DateOnly)
	seen := map[string]string{}
	for _, d := range got {
		e := d.Event.Data
		if d.Event.Type != "quota.threshold" || e["credential_id"] != c.ID || e["limit"] != "10" || e["period"] != day {
			t.Errorf("event %s", d.Body)
		}
		noSecrets(t, d, tok, c.ClientSecret, devTok, admin, memberPW)
		seen[e["threshold"]] = e["used"]
	}
	if seen["80"] != "8" || seen["100"] != "10" {
		t.Fatalf("thresholds and uses %v, want 80 at 8 and 100 at 10", seen)
	}
}
