package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/store"
)

// TestBudgetOneUserOneBudget attacks SPEC §5's "one user cannot escape
// their limit with several tokens": a member's own bearer token and two API
// tokens acting as that member fire 180 requests released together, over
// connections opened in advance. Exactly the burst of 100 is admitted in
// all; each API token's own budget is spent by what it was admitted; usage
// counts each admitted request for the member and for the token. Then
// /oauth/introspect and /oauth/revoke with a bearer token count against
// the caller and are refused once the caller's limit is spent. It runs
// against the in-memory limiter and against a cluster node's Redis
// limiter (a private redis-server).
func TestBudgetOneUserOneBudget(t *testing.T) {
	flush := func(c *server.Config) { c.UsageFlushInterval = 20 * time.Millisecond }
	t.Run("in memory", func(t *testing.T) {
		attackBudget(t, servertest.Start(t, flush))
	})
	t.Run("Redis", func(t *testing.T) {
		rs := startRedis(t, "")
		accountID, annID := attackBudget(t, servertest.Start(t, flush, func(c *server.Config) {
			c.RedisURL, c.RedisPrefix = "redis://127.0.0.1:"+rs.port+"/0", "budget:"
		}))
		// Ann's keys carry her account's shard as their hash tag, the
		// shard's copy of the generation's (docs/rate-limits.md).
		out, err := exec.Command("redis-cli", "-p", rs.port, "--scan", "--pattern", "*}"+accountID+":*:user:"+annID).Output()
		if err != nil {
			t.Fatal(err)
		}
		keys := strings.Fields(string(out))
		slices.Sort(keys)
		tag := "{" + cluster.Tag(cluster.Shard(accountID)) + "}"
		want := []string{"budget:rl:" + tag + accountID + ":burst:user:" + annID, "budget:rl:" + tag + accountID + ":daily:user:" + annID}
		if !slices.Equal(keys, want) {
			t.Fatalf("Ann's keys in Redis %q, want %q", keys, want)
		}
		if out, err := exec.Command("redis-cli", "-p", rs.port, "exists", "budget:gatehouse:generation:"+tag).Output(); err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Fatalf("the shard's generation beside Ann's keys: %q %v", out, err)
		}
	})
}

// attackBudget runs the attack on env and returns the account's and Ann's
// ids.
func attackBudget(t *testing.T, env *servertest.Env) (accountID, annID string) {
	admin := env.AdminToken()
	// The burst of 100 over an hour, not 20 s: Ann's budget must still be
	// spent at the end, however long a loaded machine takes to get there.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"daily": 50000, "burst": 100, "burst_window_seconds": 3600}}), 200, "")
	annID = env.CreateUser(admin, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)
	annSpare := env.Login("ann@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	var tokens [2]apiToken
	for i := range tokens {
		r := env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "integration " + strconv.Itoa(i+1)})
		servertest.Expect(t, r, 201, "")
		r.JSON(t, &tokens[i])
	}
	accountID = env.As(admin, "GET", "/v1/me", nil).Map(t)["account"].(map[string]any)["id"].(string)

	// Three ways in for Ann: her own token, and each API token acting as her.
	credentials := [][]string{
		{"Authorization", "Bearer " + ann},
		{"X-API-Token", tokens[0].Token, "X-User-Email", "ann@example.com"},
		{"X-API-Token", tokens[1].Token, "X-User-Email", "ANN@example.com"},
	}
	const requests = 180
	client, extraDials := preconnected(t, env.URL, requests)

	type outcome struct {
		credential, status int
		code, remaining    string
		retryAfter         string
	}
	outcomes := make([]outcome, requests)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := i % len(credentials)
			req, err := http.NewRequest("GET", env.URL+"/v1/me", nil)
			if err != nil {
				t.Error(err)
				return
			}
			for h := 0; h < len(credentials[c]); h += 2 {
				req.Header.Set(credentials[c][h], credentials[c][h+1])
			}
			<-start
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			var body struct {
				Error string `json:"error"`
			}
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &body)
			outcomes[i] = outcome{credential: c, status: resp.StatusCode, code: body.Error,
				remaining: resp.Header.Get("X-RateLimit-Burst-Remaining"), retryAfter: resp.Header.Get("Retry-After")}
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("%d connections dialled after the start", extraDials.Load())

	admitted, refusedBy := make([]int, len(credentials)), make([]int, len(credentials))
	refused := 0
	seen := map[string]int{}
	for i, o := range outcomes {
		switch {
		case o.status == http.StatusOK:
			admitted[o.credential]++
			seen[o.remaining]++
		case o.status == http.StatusUnprocessableEntity && o.code == "rate_limit_exceeded":
			refused++
			refusedBy[o.credential]++
			if o.remaining != "0" || o.retryAfter == "" {
				t.Errorf("request %d refused with remaining %q, Retry-After %q", i, o.remaining, o.retryAfter)
			}
		default:
			t.Errorf("request %d: status %d, error %q", i, o.status, o.code)
		}
	}
	total := admitted[0] + admitted[1] + admitted[2]
	if total != 100 || refused != requests-100 {
		t.Fatalf("%d admitted (%v by credential), %d refused; want 100 and %d", total, admitted, refused, requests-100)
	}
	// The member's budget speaks for every admitted request: 99…0 once each.
	for r := 0; r < 100; r++ {
		if seen[strconv.Itoa(r)] != 1 {
			t.Fatalf("burst-remaining %d seen %d times", r, seen[strconv.Itoa(r)])
		}
	}
	t.Logf("admitted by credential (own token, API token 1, API token 2): %v", admitted)

	// Every way in for Ann is now refused.
	for _, c := range credentials {
		servertest.Expect(t, env.Request("GET", "/v1/me", nil, c...), 422, "rate_limit_exceeded")
	}
	// Each API token's own budget was charged for what it was admitted as
	// Ann, and its anonymous-admin requests see what is left.
	for i, tok := range tokens {
		r := env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token)
		servertest.Expect(t, r, 200, "")
		n := admitted[i+1]
		if got, want := r.Header.Get("X-RateLimit-Burst-Remaining"), strconv.Itoa(100-n-1); got != want {
			t.Errorf("API token %d, admitted %d times as Ann: burst remaining %s, want %s", i+1, n, got, want)
		}
		if got, want := r.Header.Get("X-RateLimit-Daily-Remaining"), strconv.Itoa(50000-n-1); got != want {
			t.Errorf("API token %d: daily remaining %s, want %s", i+1, got, want)
		}
	}

	// Usage counts each request once, as Ann's through the credential it
	// came through, served or over the limit (the attack's refusals and
	// the one after it), and the API tokens' own requests as nobody's.
	want := map[usageOf]store.UsageCounts{
		{annID, "password:"}:                 {Served: int64(admitted[0]), Limited: int64(refusedBy[0] + 1)},
		{annID, "api_token:" + tokens[0].ID}: {Served: int64(admitted[1]), Limited: int64(refusedBy[1] + 1)},
		{annID, "api_token:" + tokens[1].ID}: {Served: int64(admitted[2]), Limited: int64(refusedBy[2] + 1)},
		{"", "api_token:" + tokens[0].ID}:    {Served: 1},
		{"", "api_token:" + tokens[1].ID}:    {Served: 1},
	}
	waitForUsage(t, env, accountID, want)

	// Introspection and revocation with a bearer token count against the
	// caller: Carol, an admin, spends her budget through them.
	env.CreateUser(admin, "carol@example.com", memberPW, "admin")
	carol := env.Login("carol@example.com", memberPW)
	carolSpare := env.Login("carol@example.com", memberPW)
	oauthAs := func(bearer, path, tok string) *servertest.Response {
		t.Helper()
		return env.Request("POST", path, url.Values{"token": {tok}}.Encode(),
			"Authorization", "Bearer "+bearer, "Content-Type", "application/x-www-form-urlencoded")
	}
	remaining := func(r *servertest.Response) string { return r.Header.Get("X-RateLimit-Burst-Remaining") }
	r := oauthAs(carol, "/oauth/introspect", annSpare)
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["active"] != true || remaining(r) != "99" {
		t.Fatalf("introspection: remaining %q, body %s", remaining(r), r.Body)
	}
	r = oauthAs(carol, "/oauth/revoke", carolSpare)
	servertest.Expect(t, r, 200, "")
	if remaining(r) != "98" {
		t.Fatalf("revocation: remaining %q", remaining(r))
	}
	for i := 97; i >= 0; i-- {
		r := env.As(carol, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 200, "")
		if remaining(r) != strconv.Itoa(i) {
			t.Fatalf("remaining %q, want %d", remaining(r), i)
		}
	}
	servertest.Expect(t, oauthAs(carol, "/oauth/introspect", annSpare), 422, "rate_limit_exceeded")
	servertest.Expect(t, oauthAs(carol, "/oauth/revoke", annSpare), 422, "rate_limit_exceeded")

	// Ann's budget is spent too: her revocation is refused and does nothing.
	servertest.Expect(t, oauthAs(ann, "/oauth/revoke", annSpare), 422, "rate_limit_exceeded")
	servertest.Expect(t, oauthAs(ann, "/oauth/introspect", annSpare), 422, "rate_limit_exceeded")
	r = oauthAs(admin, "/oauth/introspect", annSpare)
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["active"] != true {
		t.Fatalf("a refused revocation revoked the token: %s", r.Body)
	}
	return accountID, annID
}

// preconnected returns a client whose transport takes its first n
// connections from ones dialled before it returns, so that n requests
// released together go out at once rather than waiting on connection
// set-up; extra counts the connections it had to dial afterwards.
func preconnected(t *testing.T, base string, n int) (c *http.Client, extra *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan net.Conn, n)
	for range n {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		ready <- conn
	}
	extra = &atomic.Int64{}
	var d net.Dialer
	tr := &http.Transport{
		MaxIdleConns:        n,
		MaxIdleConnsPerHost: n,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			select {
			case conn := <-ready:
				return conn, nil
			default:
				extra.Add(1)
				return d.DialContext(ctx, network, addr)
			}
		},
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		for len(ready) > 0 {
			(<-ready).Close()
		}
	})
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, extra
}

// usageOf names the usage counts of requests made as a user (by id, or
// "" for nobody) through a credential ("<method>:<id>").
type usageOf struct{ user, credential string }

// waitForUsage waits until the stored usage of today holds want for each
// of its keys (the server flushes its counts every UsageFlushInterval).
func waitForUsage(t *testing.T, env *servertest.Env, accountID string, want map[usageOf]store.UsageCounts) {
	t.Helper()
	today := time.Now().UTC().Format(time.DateOnly)
	var got map[usageOf]store.UsageCounts
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		rows, err := env.Server.Store.Usage(context.Background(), accountID, today)
		if err != nil {
			t.Fatal(err)
		}
		got = map[usageOf]store.UsageCounts{}
		for _, r := range rows {
			c := got[usageOf{r.UserID, r.Credential}]
			c.Add(r.UsageCounts)
			got[usageOf{r.UserID, r.Credential}] = c
		}
		done := true
		for k, n := range want {
			done = done && got[k] == n
		}
		if done {
			return
		}
	}
	var b strings.Builder
	for k, n := range want {
		fmt.Fprintf(&b, "\n%+v: %+v, want %+v", k, got[k], n)
	}
	t.Fatalf("usage:%s", b.String())
}
