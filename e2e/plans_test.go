package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/store"
)

// TestPlansAllowedIPs: allowed_ips on every credential kind — an API
// token, a client credential (its grant and the tokens issued from it)
// and an API access application — admits requests from its networks,
// IPv4 and IPv6, judged on the client address of the trusted-proxy rule,
// and refuses the rest with 403 ip_not_allowed before any budget is
// charged; the refusals are counted as forbidden. Behind no trusted
// proxy a forged X-Forwarded-For gains nothing. Tokens of the password
// grant, which have no credential, are not restricted.
func TestPlansAllowedIPs(t *testing.T) {
	proxied := servertest.Start(t, func(c *server.Config) {
		c.TrustedProxies, _ = httpx.ParseTrustedProxies("127.0.0.1/32,::1/128")
		c.UsageFlushInterval = 50 * time.Millisecond
	})
	direct := servertest.Start(t, func(c *server.Config) { c.DatabaseURL, c.UsageFlushInterval = proxied.DatabaseURL, time.Hour })
	admin, devID, devTok, _ := developer(t, proxied)
	accountID := accountOf(t, proxied, admin)
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }

	// A client credential for the customer's networks.
	r := proxied.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "build",
		"allowed_ips": []string{"203.0.113.0/24", "2001:DB8::/32", "203.0.113.9"}})
	servertest.Expect(t, r, 201, "")
	var c credential
	r.JSON(t, &c)
	if got := r.Map(t)["allowed_ips"]; !sameList(got, "203.0.113.0/24", "2001:db8::/32", "203.0.113.9/32") {
		t.Fatalf("allowed_ips %v", got)
	}
	grant := func(env *servertest.Env, headers ...string) *servertest.Response {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
		return env.Request("POST", "/v1/oauth/token", form.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
	}
	servertest.Expect(t, grant(proxied, from("198.51.100.1")...), 403, "ip_not_allowed")
	servertest.Expect(t, grant(direct, from("203.0.113.5")...), 403, "ip_not_allowed") // forged: the peer is 127.0.0.1
	cc := accessToken(t, grant(proxied, from("203.0.113.5")...))

	// An API token for one address, and an API access application for an
	// IPv6 network.
	servertest.Expect(t, proxied.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	apiTok, apiTokID := apiTokenWith(t, proxied, admin, map[string]any{"name": "sync", "allowed_ips": []string{"203.0.113.7"}})
	r = proxied.As(admin, "POST", "/v1/api-access", map[string]any{"allowed_ips": []string{"2001:db8:1::/48"}}, from("2001:db8:1::1")...)
	servertest.Expect(t, r, 201, "")
	app := r.Map(t)["access_token"].(string)

	cases := []struct {
		name   string
		env    *servertest.Env
		cred   []string
		addr   string
		status int
	}{
		{"issued token, IPv4 inside", proxied, []string{"Authorization", "Bearer " + cc}, "203.0.113.200", 200},
		{"issued token, IPv6 inside", proxied, []string{"Authorization", "Bearer " + cc}, "2001:db8::77", 200},
		{"issued token, IPv4 outside", proxied, []string{"Authorization", "Bearer " + cc}, "203.0.114.1", 403},
		{"issued token, IPv6 outside", proxied, []string{"Authorization", "Bearer " + cc}, "2001:db9::1", 403},
		{"issued token, IPv4-mapped inside", proxied, []string{"Authorization", "Bearer " + cc}, "::ffff:203.0.113.4", 200},
		{"issued token, forged, untrusted peer", direct, []string{"Authorization", "Bearer " + cc}, "203.0.113.5", 403},
		{"API token, its address", proxied, []string{"X-API-Token", apiTok}, "203.0.113.7", 200},
		{"API token, next address", proxied, []string{"X-API-Token", apiTok}, "203.0.113.8", 403},
		{"API token, a hop before the proxy does not count", proxied, []string{"X-API-Token", apiTok}, "203.0.113.7, 198.51.100.3", 403},
		{"API token, forged, untrusted peer", direct, []string{"X-API-Token", apiTok}, "203.0.113.7", 403},
		{"API token acting as a user", proxied, []string{"X-API-Token", apiTok, "X-User-Email", "dev@example.com"}, "198.51.100.3", 403},
		{"API access token inside", proxied, []string{"Authorization", "Bearer " + app}, "2001:db8:1:ffff::1", 200},
		{"API access token outside", proxied, []string{"Authorization", "Bearer " + app}, "2001:db8:2::1", 403},
		{"password token, anywhere", proxied, []string{"Authorization", "Bearer " + devTok}, "198.51.100.3", 200},
		{"password token, untrusted peer", direct, []string{"Authorization", "Bearer " + devTok}, "198.51.100.3", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.env.Request("GET", "/v1/me", nil, append(append([]string{}, tc.cred...), from(tc.addr)...)...)
			code := ""
			if tc.status == 403 {
				code = "ip_not_allowed"
				if v := r.Header.Get("X-RateLimit-Burst-Remaining"); v != "" {
					t.Errorf("a refusal carries rate-limit headers: %s", v)
				}
			}
			servertest.Expect(t, r, tc.status, code)
			fa := tc.env.Request("GET", "/v1/auth/check", nil, append(append([]string{}, tc.cred...), from(tc.addr)...)...)
			servertest.Expect(t, fa, tc.status, code)
		})
	}

	// Refused requests cost nothing: many at once, then one admitted
	// request has used one more of the day than the one before.
	remaining := func() int {
		r := proxied.Request("GET", "/v1/me", nil, "X-API-Token", apiTok, "X-Forwarded-For", "203.0.113.7")
		servertest.Expect(t, r, 200, "")
		n, err := strconv.Atoi(r.Header.Get("X-RateLimit-Daily-Remaining"))
		if err != nil {
			t.Fatalf("daily remaining %q", r.Header.Get("X-RateLimit-Daily-Remaining"))
		}
		return n
	}
	before := remaining()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			r := proxied.Request("GET", "/v1/me", nil, "X-API-Token", apiTok, "X-Forwarded-For", "198.51.100.9")
			if r.Status != 403 {
				t.Errorf("status %d", r.Status)
			}
		})
	}
	wg.Wait()
	if after := remaining(); after != before-1 {
		t.Errorf("daily remaining %d then %d: refused requests were charged", before, after)
	}

	// Widening the list takes effect at once, on both nodes.
	// (The other node sees the change within its change poll.)
	servertest.Expect(t, proxied.As(admin, "PATCH", "/v1/api-tokens/"+apiTokID, map[string]any{"allowed_ips": []string{"127.0.0.1", "203.0.113.0/24"}}), 200, "")
	servertest.Expect(t, proxied.Request("GET", "/v1/me", nil, "X-API-Token", apiTok, "X-Forwarded-For", "203.0.113.99"), 200, "")
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := direct.Request("GET", "/v1/me", nil, "X-API-Token", apiTok, "X-Forwarded-For", "198.51.100.3")
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			servertest.Expect(t, r, 200, "")
		}
	}
	servertest.Expect(t, proxied.As(admin, "PATCH", "/v1/api-tokens/"+apiTokID, map[string]any{"allowed_ips": []string{}}), 200, "")
	servertest.Expect(t, proxied.Request("GET", "/v1/me", nil, "X-API-Token", apiTok, "X-Forwarded-For", "198.51.100.3"), 200, "")

	// Every refusal through /v1/me and forward auth above is counted as
	// forbidden for its credential (served ones are counted too; only the
	// proxied node flushes quickly, so count it alone).
	waitForUsage(t, proxied, accountID, map[usageOf]store.UsageCounts{
		{devID, "client_credentials:" + c.ClientID}: {Served: 2 * 3, Forbidden: 2 * 2},
	})
}

// sameList reports whether a JSON array holds exactly want, in order.
func sameList(got any, want ...string) bool {
	l, ok := got.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}

// TestPlansMetadata: metadata and external_id on credentials of every
// kind and on users are checked, listed, introspected and sent upstream
// as X-Gatehouse-External-Id; bad values are 400 with the field named.
func TestPlansMetadata(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, devTok, c := developer(t, env)
	md := map[string]any{"plan": "free", "seats": 3}

	// Bad input is 400, never stored.
	bad := []map[string]any{
		{"metadata": []int{1}},
		{"metadata": "x"},
		{"metadata": map[string]string{"k": strings.Repeat("x", 4100)}},
		{"external_id": strings.Repeat("é", 129)},
		{"external_id": "a\nb"},
		{"allowed_ips": []string{"10.0.0.0/33"}},
		{"allowed_ips": []string{"example.com"}},
		{"allowed_ips": []string{"fe80::1%eth0"}},
		{"allowed_ips": "10.0.0.0/8"},
	}
	for _, b := range bad {
		servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, b), 400, "invalid_request")
		servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, b), 400, "invalid_request")
	}
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{"allowed_ips": []string{"10.0.0.0/8"}}), 400, "invalid_request")

	// The credential and the user.
	r := env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"metadata": md, "external_id": "cus_42"})
	servertest.Expect(t, r, 200, "")
	if m := r.Map(t); m["external_id"] != "cus_42" || m["metadata"].(map[string]any)["plan"] != "free" {
		t.Fatalf("answer %v", m)
	}
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{"external_id": "user-7", "metadata": map[string]string{"team": "ci"}}), 200, "")
	var creds struct{ Data []map[string]any }
	env.As(devTok, "GET", "/v1/credentials", nil).JSON(t, &creds)
	if len(creds.Data) != 1 || creds.Data[0]["external_id"] != "cus_42" {
		t.Fatalf("credentials %v", creds.Data)
	}
	var users struct{ Data []map[string]any }
	env.As(admin, "GET", "/v1/users", nil).JSON(t, &users)
	found := false
	for _, u := range users.Data {
		if u["id"] == devID {
			found = u["external_id"] == "user-7" && u["metadata"].(map[string]any)["team"] == "ci"
		} else if _, ok := u["external_id"]; ok {
			t.Errorf("user %v has an external id", u["id"])
		}
	}
	if !found {
		t.Fatalf("users %v", users.Data)
	}

	// A token of the credential: its external id; a password token: the
	// user's.
	cc := accessToken(t, clientToken(env, c))
	introspect := func(tok string) map[string]any {
		form := url.Values{"token": {tok}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
		r := env.Request("POST", "/oauth/introspect", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		servertest.Expect(t, r, 200, "")
		return r.Map(t)
	}
	if m := introspect(cc); m["active"] != true || m["external_id"] != "cus_42" || m["metadata"].(map[string]any)["seats"] != float64(3) {
		t.Fatalf("introspection %v", m)
	}
	if m := introspect(devTok); m["external_id"] != "user-7" {
		t.Fatalf("introspection %v", m)
	}
	for tok, want := range map[string]string{cc: "cus_42", devTok: "user-7", admin: ""} {
		r := env.As(tok, "GET", "/v1/auth/check", nil)
		servertest.Expect(t, r, 200, "")
		if got := r.Header.Values("X-Gatehouse-External-Id"); want == "" && len(got) != 0 || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("X-Gatehouse-External-Id %q, want %q", got, want)
		}
	}

	// An API token and an API access application; clearing.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	apiTok, apiTokID := apiTokenWith(t, env, admin, map[string]any{"name": "sync", "external_id": "int-1", "metadata": map[string]int{"n": 1}})
	if m := introspect(apiTok); m["external_id"] != "int-1" {
		t.Fatalf("introspection %v", m)
	}
	var toks struct{ Data []map[string]any }
	env.As(admin, "GET", "/v1/api-tokens", nil).JSON(t, &toks)
	if len(toks.Data) != 1 || toks.Data[0]["external_id"] != "int-1" {
		t.Fatalf("API tokens %v", toks.Data)
	}
	r = env.As(admin, "POST", "/v1/api-tokens/"+apiTokID+"/roll", map[string]any{})
	servertest.Expect(t, r, 201, "")
	if m := r.Map(t); m["external_id"] != "int-1" {
		t.Fatalf("rolled %v", m)
	}
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-access", map[string]any{"external_id": "console"}), 201, "")
	r = env.As(admin, "GET", "/v1/api-access", nil)
	if m := r.Map(t); m["external_id"] != "console" {
		t.Fatalf("API access %v", m)
	}
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-access", map[string]any{"external_id": ""}), 200, "")
	if m := env.As(admin, "GET", "/v1/api-access", nil).Map(t); m["external_id"] != nil {
		t.Fatalf("API access %v", m)
	}
	r = env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"metadata": map[string]any{}, "external_id": ""})
	servertest.Expect(t, r, 200, "")
	if m := r.Map(t); m["external_id"] != nil || m["metadata"] != nil {
		t.Fatalf("cleared %v", m)
	}
	// Every change is audited.
	n := 0
	for _, e := range auditEntries(t, env, admin) {
		if d, ok := e["details"].(map[string]any); ok && (d["external_id"] != nil || d["metadata"] != nil) {
			n++
		}
	}
	if n < 6 {
		t.Errorf("%d audit entries name a plan change", n)
	}
}

// TestPlansRateLimitExact: a user's rate limit and a credential's, set in
// their plans, bind beside the account's in the same atomic decision:
// requests released together over connections opened beforehand through
// a credential limited to 7 a burst get exactly 7; then requests through
// that user's password token, a credential limited to 25 and one without
// a limit get exactly what is left of the user's 60 (the account allows
// 100), never more than 25 through the limited credential; every refusal
// is 422 rate_limit_exceeded with Retry-After and names the binding limit.
// In memory, on one node with Redis, and on two nodes sharing the store
// and Redis — a single Redis, and a Redis Cluster of three masters.
func TestPlansRateLimitExact(t *testing.T) {
	t.Run("in memory", func(t *testing.T) {
		env := servertest.Start(t)
		attackPlanLimits(t, env, env)
	})
	t.Run("Redis", func(t *testing.T) {
		rs := startRedis(t, "")
		env := servertest.Start(t, func(c *server.Config) { c.RedisURL = "redis://127.0.0.1:" + rs.port + "/0" })
		attackPlanLimits(t, env, env)
	})
	t.Run("two nodes", func(t *testing.T) {
		rs := startRedis(t, "")
		a, b := twoNodesOn(t, "redis://127.0.0.1:"+rs.port+"/0")
		attackPlanLimits(t, a, b)
	})
	t.Run("two nodes on a Redis Cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts processes")
		}
		a, b := twoNodesOn(t, redistest.Cluster(t))
		attackPlanLimits(t, a, b)
	})
}

// twoNodesOn starts two nodes sharing one store and the Redis at
// redisURL.
func twoNodesOn(t *testing.T, redisURL string) (a, b *servertest.Env) {
	t.Helper()
	a = servertest.Start(t, func(c *server.Config) { c.RedisURL = redisURL })
	b = servertest.Start(t, func(c *server.Config) { c.DatabaseURL, c.RedisURL = a.DatabaseURL, redisURL })
	return a, b
}

func attackPlanLimits(t *testing.T, a, b *servertest.Env) {
	admin, devID, devTok, _ := developer(t, a)
	// The account's burst of 100 over an hour, not 20 s: the counts below
	// add up across the whole test, however long a loaded machine takes.
	servertest.Expect(t, a.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"daily": 50000, "burst": 100, "burst_window_seconds": 3600}}), 200, "")
	servertest.Expect(t, a.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{
		"rate_limit": map[string]int{"daily": 1000, "burst": 60, "burst_window_seconds": 600}}), 200, "")
	cred := func(name string, rl any) string {
		body := map[string]any{"name": name}
		if rl != nil {
			body["rate_limit"] = rl
		}
		r := a.As(devTok, "POST", "/v1/credentials", body)
		servertest.Expect(t, r, 201, "")
		var c credential
		r.JSON(t, &c)
		return accessToken(t, clientToken(a, c))
	}
	small := cred("small", map[string]int{"daily": 1000, "burst": 7, "burst_window_seconds": 600})
	limited := cred("limited", map[string]int{"daily": 25, "burst": 100, "burst_window_seconds": 600})
	open := cred("open", nil)
	// Issuing the tokens went through the token endpoint, not the budgets;
	// the three creations after the user's limit was set count against it
	// (and, with the first, against the account's budget of the user).
	const created = 3
	// One request through each first, so that the requests released
	// together find their principal cached rather than all reading the
	// store at once.
	for _, tok := range []string{small, limited, open} {
		servertest.Expect(t, a.As(tok, "GET", "/v1/me", nil), 200, "")
		servertest.Expect(t, b.As(tok, "GET", "/v1/users", nil), 200, "")
	}
	const warmed = 2

	fire := func(n int, tokens ...string) (admitted []int, policies map[string]int) {
		t.Helper()
		clients := make([]*http.Client, 2)
		clients[0], _ = preconnected(t, a.URL, n)
		clients[1] = clients[0]
		if b != a {
			clients[1], _ = preconnected(t, b.URL, n)
			defer clients[1].CloseIdleConnections()
		}
		defer clients[0].CloseIdleConnections()
		urls := []string{a.URL, b.URL}
		admitted, policies = make([]int, len(tokens)), map[string]int{}
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				node, c := i%2, i%len(tokens)
				req, _ := http.NewRequest("GET", urls[node]+"/v1/me", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[c])
				<-start
				resp, err := clients[node].Do(req)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				switch resp.StatusCode {
				case 200:
					admitted[c]++
				case 422:
					if !strings.Contains(string(body), `"rate_limit_exceeded"`) || resp.Header.Get("Retry-After") == "" ||
						resp.Header.Get("X-RateLimit-Burst-Remaining") != "0" && resp.Header.Get("X-RateLimit-Daily-Remaining") != "0" {
						t.Errorf("refusal %s %v", body, resp.Header)
					}
					policies[resp.Header.Get("RateLimit-Policy")]++
				default:
					t.Errorf("status %d: %s", resp.StatusCode, body)
				}
			}()
		}
		close(start)
		wg.Wait()
		return admitted, policies
	}

	got, policies := fire(40, small)
	if got[0] != 7-warmed {
		t.Fatalf("%d admitted through a credential limited to 7 and used %d times", got[0], warmed)
	}
	if policies[`"burst";q=7;w=600, "daily";q=1000;w=86400`] != 40-7+warmed {
		t.Errorf("refusals' policies %v", policies)
	}
	got, policies = fire(180, devTok, limited, open)
	if want := 60 - created - 3*warmed - (7 - warmed); got[1] > 25-warmed || got[0]+got[1]+got[2] != want {
		t.Fatalf("admitted %v (own token, limited, open): want %d in all, at most %d through the limited credential", got, want, 25-warmed)
	}
	for p := range policies {
		if !strings.Contains(p, `"burst";q=60;w=600`) && !strings.Contains(p, `"daily";q=25;`) {
			t.Errorf("a refusal's policy %q names neither binding limit", p)
		}
	}
	// Lifting the user's limit leaves the account's (100 a burst, 60 of it
	// used) and the credentials' own.
	servertest.Expect(t, a.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{"rate_limit": nil}), 200, "")
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := b.As(open, "GET", "/v1/me", nil)
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lifted limit still refuses on the other node: %d %s", r.Status, r.Body)
		}
	}
	got, _ = fire(60, open)
	if want := 100 - (1 + 60) - 1; got[0] != want {
		t.Fatalf("%d admitted under the account's limit alone, want %d", got[0], want)
	}

	// A quota of 5 a day on another user's credential, used twice: exactly
	// 3 of 30 released together, each remaining count once, the rest 422
	// quota_exceeded until midnight (UTC), charged to nothing.
	bobID := a.CreateUser(admin, "bob@example.com", memberPW)
	servertest.Expect(t, a.As(admin, "PUT", "/v1/developers/"+bobID, nil), 204, "")
	bob := a.Login("bob@example.com", memberPW)
	r := a.As(bob, "POST", "/v1/credentials", map[string]any{"name": "free tier", "quota": map[string]any{"limit": 5, "period": "day"}})
	servertest.Expect(t, r, 201, "")
	if q := r.Map(t)["quota"].(map[string]any); q["limit"] != float64(5) || q["period"] != "day" {
		t.Fatalf("quota %v", q)
	}
	var fc credential
	r.JSON(t, &fc)
	free := accessToken(t, clientToken(a, fc))
	servertest.Expect(t, a.As(free, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, b.As(free, "GET", "/v1/me", nil), 200, "")
	var (
		mu        sync.Mutex
		wg        sync.WaitGroup
		admitted  int
		remaining = map[string]int{}
		start     = make(chan struct{})
	)
	client, _ := preconnected(t, a.URL, 30)
	clientB := client
	if b != a {
		clientB, _ = preconnected(t, b.URL, 30)
	}
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base, c := a.URL, client
			if i%2 == 1 {
				base, c = b.URL, clientB
			}
			req, _ := http.NewRequest("GET", base+"/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+free)
			<-start
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			switch resp.StatusCode {
			case 200:
				admitted++
				remaining[resp.Header.Get("X-RateLimit-Quota-Remaining")]++
			case 422:
				now := time.Now().UTC()
				untilMidnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC).Sub(now)
				retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				if !strings.Contains(string(body), `"quota_exceeded"`) || resp.Header.Get("X-RateLimit-Quota-Remaining") != "0" ||
					time.Duration(retry)*time.Second < untilMidnight-5*time.Second || time.Duration(retry)*time.Second > untilMidnight+5*time.Second ||
					!strings.Contains(resp.Header.Get("RateLimit-Policy"), `"quota";q=5`) {
					t.Errorf("refusal %s %v", body, resp.Header)
				}
			default:
				t.Errorf("status %d: %s", resp.StatusCode, body)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted != 3 {
		t.Fatalf("%d admitted under a quota of 5 used twice", admitted)
	}
	for i := range 3 {
		if remaining[strconv.Itoa(i)] != 1 {
			t.Fatalf("quota remaining seen %v", remaining)
		}
	}
	// Bob's other ways in were not charged by the refusals: his own token
	// has the account's budget less the 5 and the credential's creation.
	r = a.As(bob, "GET", "/v1/me", nil)
	servertest.Expect(t, r, 200, "")
	if got := r.Header.Get("X-RateLimit-Burst-Remaining"); got != strconv.Itoa(100-1-5-1) {
		t.Fatalf("Bob's burst remaining %s", got)
	}
}

// TestPlansRolledAPITokenKeepsBudgets attacks "a rolled API token keeps
// its plan": rolling a token neither refills its quota or its plan's rate
// limit nor, while the old token still works, doubles them. A token with a
// quota of 3 a month and a burst of 5 is used twice and rolled with an
// hour's overlap; then six requests released together — three through
// each token, over both nodes — get exactly the one left, and both tokens
// read back nothing remaining. Rolled again, the third token counts on.
// One node in memory, and two nodes sharing the store and Redis.
func TestPlansRolledAPITokenKeepsBudgets(t *testing.T) {
	t.Run("in memory", func(t *testing.T) {
		env := servertest.Start(t)
		attackRolledAPIToken(t, env, env)
	})
	t.Run("two nodes", func(t *testing.T) {
		rs := startRedis(t, "")
		a, b := twoNodesOn(t, "redis://127.0.0.1:"+rs.port+"/0")
		attackRolledAPIToken(t, a, b)
	})
}

func attackRolledAPIToken(t *testing.T, a, b *servertest.Env) {
	admin := a.AdminToken()
	servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	old, id := apiTokenWith(t, a, admin, map[string]any{"name": "sync",
		"quota": map[string]any{"limit": 3, "period": "month"}, "rate_limit": map[string]int{"daily": 100, "burst": 5, "burst_window_seconds": 3600}})
	use := func(env *servertest.Env, tok string) *servertest.Response {
		return env.Request("GET", "/v1/me", nil, "X-API-Token", tok)
	}
	servertest.Expect(t, use(a, old), 200, "")
	servertest.Expect(t, use(b, old), 200, "")
	r := a.As(admin, "POST", "/v1/api-tokens/"+id+"/roll", map[string]any{"overlap_seconds": 3600})
	servertest.Expect(t, r, 201, "")
	rolled := r.Map(t)
	next, nextID := rolled["token"].(string), rolled["id"].(string)

	const n = 6
	ca, _ := preconnected(t, a.URL, n)
	defer ca.CloseIdleConnections()
	cb := ca
	if b != a {
		cb, _ = preconnected(t, b.URL, n)
		defer cb.CloseIdleConnections()
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		start    = make(chan struct{})
		admitted int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base, c, tok := a.URL, ca, old
			if i%2 == 1 {
				base, c = b.URL, cb
			}
			if i%3 == 0 {
				tok = next
			}
			req, _ := http.NewRequest("GET", base+"/v1/me", nil)
			req.Header.Set("X-API-Token", tok)
			<-start
			resp, err := c.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case resp.StatusCode == 200:
				admitted++
			case resp.StatusCode != 422 || !strings.Contains(string(body), `"quota_exceeded"`):
				t.Errorf("request %d: %d %s", i, resp.StatusCode, body)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted != 1 {
		t.Fatalf("after the roll, %d of %d requests were admitted against the one left of the quota", admitted, n)
	}
	// Both read back the line's count: at once on one node, within the
	// other node's flush interval (5 s) on two.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var list struct{ Data []map[string]any }
		a.As(admin, "GET", "/v1/api-tokens", nil).JSON(t, &list)
		if len(list.Data) != 2 {
			t.Fatalf("API tokens %v", list.Data)
		}
		left := 0
		for _, tk := range list.Data {
			q, _ := tk["quota"].(map[string]any)
			if q == nil || q["remaining"] != float64(0) {
				left++
			}
			if b == a && left > 0 || time.Now().After(deadline) && left > 0 {
				t.Fatalf("token %v reads back %v", tk["id"], tk["quota"])
			}
		}
		if left == 0 {
			break
		}
	}
	// Cleared quota: the plan's burst of 5 counts on from the line's 3.
	servertest.Expect(t, a.As(admin, "PATCH", "/v1/api-tokens/"+nextID, map[string]any{"quota": nil}), 200, "")
	r = a.As(admin, "POST", "/v1/api-tokens/"+nextID+"/roll", map[string]any{})
	servertest.Expect(t, r, 201, "")
	third := r.Map(t)["token"].(string)
	servertest.Expect(t, use(b, third), 200, "")
	servertest.Expect(t, use(a, third), 200, "")
	r = use(b, third)
	servertest.Expect(t, r, 422, "rate_limit_exceeded")
}
