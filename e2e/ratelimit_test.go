package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestBurstExactUnderConcurrency fires 150 concurrent requests from one
// user with burst 100: exactly 100 are served, with burst-remaining
// 99…0 each once, and 50 get 422 — across several tokens of the user and a
// forged X-Forwarded-For on every request.
func TestBurstExactUnderConcurrency(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	tokens := []string{env.Login("ann@example.com", memberPW), env.Login("ann@example.com", memberPW), env.Login("ann@example.com", memberPW)}

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok, over  int
		remaining = map[string]int{}
	)
	for i := 0; i < 150; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := env.As(tokens[i%len(tokens)], "GET", "/v1/me", nil, "X-Forwarded-For", "198.51.100."+strconv.Itoa(i))
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case http.StatusOK:
				ok++
				remaining[r.Header.Get("X-RateLimit-Burst-Remaining")]++
			case http.StatusUnprocessableEntity:
				over++
				servertest.Expect(t, r, 422, "rate_limit_exceeded")
				if r.Header.Get("Retry-After") == "" || r.Header.Get("X-RateLimit-Burst-Remaining") != "0" {
					t.Errorf("refusal headers %v", r.Header)
				}
			default:
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
		}(i)
	}
	wg.Wait()
	if ok != 100 || over != 50 {
		t.Fatalf("%d served, %d refused; want 100 and 50", ok, over)
	}
	for i := 0; i < 100; i++ {
		if remaining[strconv.Itoa(i)] != 1 {
			t.Fatalf("burst-remaining %d seen %d times", i, remaining[strconv.Itoa(i)])
		}
	}
	// Another user has their own budget (creating Ann used one request).
	r := env.As(admin, "GET", "/v1/me", nil)
	servertest.Expect(t, r, 200, "")
	if r.Header.Get("X-RateLimit-Burst-Remaining") != "98" {
		t.Fatalf("admin remaining %q", r.Header.Get("X-RateLimit-Burst-Remaining"))
	}
}

func TestRateLimitHeadersAndSettings(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	r := env.As(admin, "GET", "/v1/me", nil)
	want := map[string]string{
		"X-RateLimit-Burst-Remaining": "99",
		"X-RateLimit-Daily-Remaining": "49999",
		"RateLimit-Policy":            `"burst";q=100;w=20, "daily";q=50000;w=86400`,
		"RateLimit":                   `"burst";r=99;t=20`,
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// A small daily limit is exact; refusals do not count.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"daily": 5}}), 200, "")
	// The PUT itself and the GET above counted: 2 of 5 used.
	for i := 2; i < 5; i++ {
		r := env.As(admin, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 200, "")
		if got := r.Header.Get("X-RateLimit-Daily-Remaining"); got != strconv.Itoa(4-i) {
			t.Fatalf("request %d: daily remaining %q", i, got)
		}
	}
	for i := 0; i < 3; i++ {
		r := env.As(admin, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 422, "rate_limit_exceeded")
		if r.Header.Get("X-RateLimit-Daily-Remaining") != "0" || !strings.HasPrefix(r.Header.Get("RateLimit"), `"daily";r=0;t=`) {
			t.Fatalf("headers %v", r.Header)
		}
	}
	// Unauthenticated requests carry no rate-limit headers and do not count.
	if h := env.Request("GET", "/v1/me", nil).Header.Get("X-RateLimit-Burst-Remaining"); h != "" {
		t.Fatalf("unauthenticated request has headers: %q", h)
	}
}

func TestRateLimitStatusAndHeaderNames(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) {
		c.RateLimitStatus = http.StatusTooManyRequests
		c.BurstRemainingHeader, c.DailyRemainingHeader = "X-Burst-Left", "X-Daily-Left"
	})
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 2}}), 200, "")
	r := env.As(admin, "GET", "/v1/me", nil)
	if r.Header.Get("X-Burst-Left") != "0" || r.Header.Get("X-Daily-Left") == "" {
		t.Fatalf("headers %v", r.Header)
	}
	servertest.Expect(t, env.As(admin, "GET", "/v1/me", nil), http.StatusTooManyRequests, "rate_limit_exceeded")
}
