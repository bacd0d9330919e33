package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/logx"
	"github.com/gatehouse/gatehouse/server"
)

// plainRequest sends a request with the plain HTTP client (no contract
// check) and returns the answer with its body read.
func plainRequest(t *testing.T, method, u string, body io.Reader, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestGatewayUpstreamRateLimitHeaders: an upstream that answers with
// rate-limit headers of its own does not blur Gatehouse's: the client of
// an admitted, proxied request gets exactly one value of each rate-limit
// header, the one Gatehouse computed (docs/gateway.md: "the rate-limit
// headers are on every proxied answer"; SPEC §5: "exact after this
// request"), under the configured names too. The upstream's Retry-After,
// which Gatehouse sets only on a refusal, reaches the client; on a public
// route, which Gatehouse does not limit, the upstream's own headers pass.
func TestGatewayUpstreamRateLimitHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-RateLimit-Burst-Remaining", "5000")
		h.Set("X-RateLimit-Daily-Remaining", "777777")
		h.Set("X-Burst-Left", "5001")
		h.Set("X-Daily-Left", "777778")
		h.Set("X-RateLimit-Quota-Remaining", "12")
		h.Set("RateLimit-Policy", `"burst";q=5000;w=1`)
		h.Set("RateLimit", `"burst";r=5000;t=1`)
		h.Set("Retry-After", "30")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	routes := writeRoutes(t, "routes.json", `{"routes": [{"pattern": "/public/", "public": true}]}`)
	for _, c := range []struct {
		name         string
		burst, daily string
	}{
		{"default names", "X-RateLimit-Burst-Remaining", "X-RateLimit-Daily-Remaining"},
		{"configured names", "X-Burst-Left", "X-Daily-Left"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := servertest.Start(t, func(cfg *server.Config) {
				cfg.Upstream, cfg.GatewayRoutes = up.URL, routes
				cfg.BurstRemainingHeader, cfg.DailyRemainingHeader = c.burst, c.daily
			})
			admin := env.AdminToken()
			resp, body := plainRequest(t, "GET", env.URL+"/things", nil, "Authorization", "Bearer "+admin)
			if resp.StatusCode != 200 || body != `{"ok":true}` {
				t.Fatalf("proxied: %d %s", resp.StatusCode, body)
			}
			want := map[string]string{
				c.burst:            "99",
				c.daily:            "49999",
				"RateLimit-Policy": `"burst";q=100;w=20, "daily";q=50000;w=86400`,
				"RateLimit":        `"burst";r=99;t=20`,
				"Retry-After":      "30",
			}
			for k, v := range want {
				if vs := resp.Header.Values(k); len(vs) != 1 || vs[0] != v {
					t.Errorf("%s = %q on a proxied answer, want just %q", k, vs, v)
				}
			}
			if vs := resp.Header.Values("X-RateLimit-Quota-Remaining"); len(vs) != 0 {
				t.Errorf("the upstream's X-RateLimit-Quota-Remaining reached the client of a request without a quota: %q", vs)
			}
			// A public route: no rate limit, so the upstream's headers are
			// the only ones.
			resp, body = plainRequest(t, "GET", env.URL+"/public/page", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("public: %d %s", resp.StatusCode, body)
			}
			if vs := resp.Header.Values(c.burst); len(vs) != 1 || vs[0] == "99" {
				t.Errorf("%s = %q on a public route's answer, want the upstream's", c.burst, vs)
			}
			if vs := resp.Header.Values("RateLimit"); len(vs) != 1 || vs[0] != `"burst";r=5000;t=1` {
				t.Errorf("RateLimit = %q on a public route's answer, want the upstream's", vs)
			}
		})
	}
}

// TestRateLimitNamesQuota: a quota is one more window of the request (a
// "quota" policy in RateLimit-Policy, docs/plans.md); RateLimit names "the
// window nearest to running out" (SPEC §5, docs/rate-limits.md). With 1 of
// a quota of 3 left (and 98 of 100 in the burst window) RateLimit names
// the quota, and a refusal for the quota says it has none left, with the
// quota's reset as t and as Retry-After.
func TestRateLimitNamesQuota(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	uid := env.CreateUser(admin, "ann@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+uid, map[string]any{"quota": map[string]any{"limit": 3, "period": "day"}}), 200, "")
	ann := env.Login("ann@example.com", memberPW)
	var last *servertest.Response
	for i := 0; i < 2; i++ {
		last = env.As(ann, "GET", "/v1/me", nil)
		servertest.Expect(t, last, 200, "")
	}
	if q := last.Header.Get("X-RateLimit-Quota-Remaining"); q != "1" {
		t.Fatalf("quota remaining %q after 2 of 3", q)
	}
	if rl := last.Header.Get("RateLimit"); !strings.HasPrefix(rl, `"quota";r=1;t=`) {
		t.Errorf("RateLimit %q with 1 of a quota of 3 left (burst 98 of 100), want the quota", rl)
	}
	if p := last.Header.Get("RateLimit-Policy"); !strings.Contains(p, `, "quota";q=3;w=`) {
		t.Errorf("RateLimit-Policy %q names no quota", p)
	}
	servertest.Expect(t, env.As(ann, "GET", "/v1/me", nil), 200, "")
	r := env.As(ann, "GET", "/v1/me", nil)
	servertest.Expect(t, r, 422, "quota_exceeded")
	rl, retry := r.Header.Get("RateLimit"), r.Header.Get("Retry-After")
	if r.Header.Get("X-RateLimit-Quota-Remaining") != "0" || retry == "" || rl != `"quota";r=0;t=`+retry {
		t.Errorf("quota refusal: quota remaining %q, RateLimit %q, Retry-After %q; want 0 and \"quota\";r=0;t=<Retry-After>",
			r.Header.Get("X-RateLimit-Quota-Remaining"), rl, retry)
	}
}

// TestOpsPathsNeverProxied: with --ops-addr and a gateway, the ops paths
// in every spelling the gateway's route rules read as the same path (a
// trailing slash, any case, percent-encoded) answer 404 not_found on the
// public listener for every method, with credentials or without, and are
// never proxied (docs/configuration.md, "Ops listener"); paths that only
// begin like them are proxied as any other.
func TestOpsPathsNeverProxied(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.OpsAddr = "127.0.0.1:0"
		c.Upstream = up.URL
	})
	tok := env.AdminToken()
	for _, p := range []string{"/metrics/", "/healthz/", "/readyz/", "/Metrics", "/HEALTHZ", "/ReadyZ/", "/%6Detrics/", "/%4DETRICS", "/he%61lthz"} {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			for _, auth := range [][]string{nil, {"Authorization", "Bearer " + tok}} {
				resp, body := plainRequest(t, method, env.URL+p, nil, auth...)
				if resp.StatusCode != 404 || !strings.Contains(body, `"error":"not_found"`) {
					t.Errorf("%s %s (credentials: %v): %d %.200s", method, p, auth != nil, resp.StatusCode, body)
				}
			}
		}
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("the upstream got %d requests for spellings of the ops paths", n)
	}
	for _, p := range []string{"/metricsx", "/metrics/x", "/healthz-old"} {
		resp, body := plainRequest(t, "GET", env.URL+p, nil, "Authorization", "Bearer "+tok)
		if resp.StatusCode != 200 || !strings.Contains(body, `"path":"`+p+`"`) {
			t.Errorf("GET %s: %d %.200s, want it proxied", p, resp.StatusCode, body)
		}
	}
	if resp, body := plainRequest(t, "GET", "http://"+env.Server.OpsAddr()+"/healthz", nil); resp.StatusCode != 200 {
		t.Fatalf("ops listener /healthz: %d %s", resp.StatusCode, body)
	}
}

// TestOwnRoutesNeverProxied: docs/gateway.md "Gatehouse's own routes are
// never proxied" holds for every spelling the route rules read as one of
// them (any case, a trailing slash), with credentials or without; the
// upstream's own paths, in any case, still are.
func TestOwnRoutesNeverProxied(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	tok := env.AdminToken()
	for _, c := range [][2]string{{"POST", "/OAUTH/TOKEN"}, {"POST", "/oauth/token/"}, {"GET", "/V1/Users"}, {"GET", "/v1/users/"},
		{"GET", "/V1/ME"}, {"DELETE", "/V1/Me/"}, {"GET", "/Admin"}, {"GET", "/ADMIN/users"}, {"GET", "/.Well-Known/oauth-authorization-server"},
		{"POST", "/Authorization"}, {"GET", "/V1/AUTH/CHECK/x"}} {
		for _, auth := range [][]string{nil, {"Authorization", "Bearer " + tok}} {
			resp, body := plainRequest(t, c[0], env.URL+c[1], nil, auth...)
			if resp.StatusCode != 404 || !strings.Contains(body, `"error":"not_found"`) {
				t.Errorf("%s %s (credentials: %v): %d %.200s", c[0], c[1], auth != nil, resp.StatusCode, body)
			}
		}
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("the upstream got %d requests for spellings of Gatehouse's routes", n)
	}
	for _, p := range []string{"/v1/things", "/V1/Things/", "/oauth/tokenx", "/admins"} {
		resp, body := plainRequest(t, "GET", env.URL+p, nil, "Authorization", "Bearer "+tok)
		if resp.StatusCode != 200 || !strings.Contains(body, `"path":"`) {
			t.Errorf("GET %s: %d %.200s, want it proxied", p, resp.StatusCode, body)
		}
	}
}

// TestRateLimitRefusalHeadersForwardAuthAndGateway: a refusal for the
// limit by forward auth and by the gateway carries the rate-limit headers
// (0 left), Retry-After and the request id, with the configured status,
// and never reaches the upstream.
func TestRateLimitRefusalHeadersForwardAuthAndGateway(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL; c.RateLimitStatus = 429 })
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 2, "burst_window_seconds": 3600}}), 200, "")
	resp, body := plainRequest(t, "GET", env.URL+"/v1/auth/check", nil, "Authorization", "Bearer "+admin)
	if resp.StatusCode != 200 {
		t.Fatalf("check %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/v1/auth/check", "/proxied"} {
		resp, body = plainRequest(t, "GET", env.URL+p, nil, "Authorization", "Bearer "+admin)
		if resp.StatusCode != 429 || !strings.Contains(body, `"rate_limit_exceeded"`) || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("X-RateLimit-Burst-Remaining") != "0" || !strings.HasPrefix(resp.Header.Get("RateLimit"), `"burst";r=0;t=`) ||
			resp.Header.Get("RateLimit-Policy") == "" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s refusal: %d %v %s", p, resp.StatusCode, resp.Header, body)
		}
	}
	if up.hits.Load() != 0 {
		t.Fatal("a refused request reached the upstream")
	}
}

// TestRateLimitHeadersOnEveryCredentialKind: every authenticated answer that
// reached its budgets carries the four rate-limit headers, whatever the
// credential and whatever the answer (a 404 after admission, forward auth,
// introspection with a client credential, revocation with a bearer).
func TestRateLimitHeadersOnEveryCredentialKind(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, c := developer(t, env)
	cc := accessToken(t, clientToken(env, c))
	app := enableAPIAccess(t, env, admin, nil)
	tok := withAPIToken(t, env, admin)
	form := "application/x-www-form-urlencoded"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret))
	check := func(what string, resp *http.Response, body string, status int) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("%s: %d %s", what, resp.StatusCode, body)
			return
		}
		for _, k := range []string{"X-RateLimit-Burst-Remaining", "X-RateLimit-Daily-Remaining", "RateLimit-Policy", "RateLimit"} {
			if len(resp.Header.Values(k)) != 1 {
				t.Errorf("%s: %s = %q", what, k, resp.Header.Values(k))
			}
		}
	}
	u := env.URL
	for _, x := range []struct {
		what   string
		hdr    []string
		status int
	}{
		{"password", []string{"Authorization", "Bearer " + devTok}, 200},
		{"client credentials", []string{"Authorization", "Bearer " + cc}, 200},
		{"api access", []string{"Authorization", "Bearer " + app.AccessToken}, 200},
		{"api token", []string{"X-API-Token", tok.Token}, 200},
		{"api token acting", []string{"X-API-Token", tok.Token, "X-User-Email", "dev@example.com"}, 200},
	} {
		resp, body := plainRequest(t, "GET", u+"/v1/me", nil, x.hdr...)
		check(x.what+" /v1/me", resp, body, x.status)
		resp, body = plainRequest(t, "GET", u+"/v1/workspaces/wsp_nothere", nil, x.hdr...)
		check(x.what+" 404", resp, body, 404)
		resp, body = plainRequest(t, "GET", u+"/v1/auth/check", nil, x.hdr...)
		check(x.what+" auth/check", resp, body, 200)
		resp, body = plainRequest(t, "POST", u+"/v1/workspaces", strings.NewReader("{"), append([]string{"Content-Type", "application/json"}, x.hdr...)...)
		check(x.what+" bad body", resp, body, 400)
	}
	resp, body := plainRequest(t, "POST", u+"/oauth/introspect", strings.NewReader("token="+cc), "Content-Type", form, "Authorization", basic)
	check("introspect basic", resp, body, 200)
	resp, body = plainRequest(t, "POST", u+"/oauth/introspect", strings.NewReader("token="+cc), "Content-Type", form, "Authorization", "Bearer "+admin)
	check("introspect bearer", resp, body, 200)
	resp, body = plainRequest(t, "POST", u+"/oauth/revoke", strings.NewReader("token=gat_unknown"), "Content-Type", form, "Authorization", "Bearer "+admin)
	check("revoke bearer", resp, body, 200)
	resp, body = plainRequest(t, "POST", u+"/oauth/revoke", strings.NewReader("token=gat_unknown"), "Content-Type", form, "Authorization", basic)
	check("revoke basic", resp, body, 200)
}

// TestRateLimitDailyExactUnderConcurrency: 80 requests released
// together against a daily limit of 60 (burst 1000): each daily-remaining
// value is seen once, never negative; refusals carry 0 and Retry-After.
func TestRateLimitDailyExactUnderConcurrency(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"daily": 60, "burst": 1000}}), 200, "")
	ann := env.Login("ann@example.com", memberPW)
	tok := withAPIToken(t, env, admin)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, over int
		seen     = map[string]int{}
		start    = make(chan struct{})
	)
	for i := 0; i < 80; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			var r *servertest.Response
			if i%2 == 0 {
				r = env.As(ann, "GET", "/v1/me", nil)
			} else {
				r = env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token, "X-User-Email", "ann@example.com")
			}
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case 200:
				ok++
				seen[r.Header.Get("X-RateLimit-Daily-Remaining")]++
			case 422:
				over++
				if r.Header.Get("X-RateLimit-Daily-Remaining") != "0" || r.Header.Get("Retry-After") == "" ||
					!strings.HasPrefix(r.Header.Get("RateLimit"), `"daily";r=0;`) {
					t.Errorf("refusal headers: daily=%q retry=%q RateLimit=%q", r.Header.Get("X-RateLimit-Daily-Remaining"), r.Header.Get("Retry-After"), r.Header.Get("RateLimit"))
				}
			default:
				t.Errorf("status %d %s", r.Status, r.Body)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	if ok != 60 || over != 20 {
		t.Fatalf("%d admitted, %d refused; want 60 and 20", ok, over)
	}
	for i := 0; i < 60; i++ {
		if seen[strconv.Itoa(i)] != 1 {
			t.Fatalf("daily remaining %d seen %d times: %v", i, seen[strconv.Itoa(i)], seen)
		}
	}
}

// TestRateLimitBurstRefusal: a burst refusal (with --rate-limit-status
// 429) says why in its body, 0 left in the burst window, and a Retry-After
// within the window that RateLimit's t for the burst window agrees with.
func TestRateLimitBurstRefusal(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.RateLimitStatus = 429 })
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 2, "burst_window_seconds": 600}}), 200, "")
	servertest.Expect(t, env.As(admin, "GET", "/v1/me", nil), 200, "")
	r := env.As(admin, "GET", "/v1/me", nil)
	servertest.Expect(t, r, 429, "rate_limit_exceeded")
	retry := r.Header.Get("Retry-After")
	if ra, err := strconv.Atoi(retry); err != nil || ra < 1 || ra > 600 {
		t.Fatalf("Retry-After %q for a 600 s window", retry)
	}
	if r.Header.Get("X-RateLimit-Burst-Remaining") != "0" || r.Header.Get("RateLimit") != `"burst";r=0;t=`+retry {
		t.Fatalf("burst remaining %q, RateLimit %q, Retry-After %q", r.Header.Get("X-RateLimit-Burst-Remaining"), r.Header.Get("RateLimit"), retry)
	}
	if !strings.Contains(string(r.Body), `"error_description":"Rate limit exceeded"`) {
		t.Fatalf("body %s", r.Body)
	}
}

// TestPlansWindowsInHeaders: an API token with a plan of 3 per 600 s
// (burst) and 5 a day: the headers name the plan's windows, and a refusal's
// Retry-After agrees with RateLimit's t for the refusing window.
func TestPlansWindowsInHeaders(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	tok := withAPIToken(t, env, admin)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+tok.ID, map[string]any{"rate_limit": map[string]int{"daily": 5, "burst": 3, "burst_window_seconds": 600}}), 200, "")
	var r *servertest.Response
	for i := 0; i < 3; i++ {
		r = env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token)
		servertest.Expect(t, r, 200, "")
	}
	policy := `"burst";q=3;w=600, "daily";q=5;w=86400`
	if r.Header.Get("X-RateLimit-Burst-Remaining") != "0" || r.Header.Get("X-RateLimit-Daily-Remaining") != "2" ||
		r.Header.Get("RateLimit-Policy") != policy || !strings.HasPrefix(r.Header.Get("RateLimit"), `"burst";r=0;t=`) {
		t.Errorf("headers after 3: burst %q, daily %q, policy %q, RateLimit %q", r.Header.Get("X-RateLimit-Burst-Remaining"),
			r.Header.Get("X-RateLimit-Daily-Remaining"), r.Header.Get("RateLimit-Policy"), r.Header.Get("RateLimit"))
	}
	r = env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token)
	servertest.Expect(t, r, 422, "rate_limit_exceeded")
	retry := r.Header.Get("Retry-After")
	if ra, err := strconv.Atoi(retry); err != nil || ra < 1 || ra > 600 {
		t.Errorf("Retry-After %q for a 600 s window", retry)
	}
	if r.Header.Get("RateLimit") != `"burst";r=0;t=`+retry || r.Header.Get("RateLimit-Policy") != policy {
		t.Errorf("refusal: RateLimit %q, policy %q, Retry-After %q", r.Header.Get("RateLimit"), r.Header.Get("RateLimit-Policy"), retry)
	}
}

// TestOpsReadyzSaysRedisDown: on the ops listener, /readyz answers 503
// with Retry-After and names Redis when Redis is not reachable (SPEC §8:
// "/readyz (store and Redis reachable)"), while /healthz still says 200.
func TestOpsReadyzSaysRedisDown(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) {
		c.RedisURL = "redis://" + freeAddr(t) + "/0"
		c.OpsAddr = "127.0.0.1:0"
	})
	resp, body := plainRequest(t, "GET", "http://"+env.Server.OpsAddr()+"/readyz", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"redis":false`) {
		t.Fatalf("readyz with Redis down: %d %s", resp.StatusCode, body)
	}
	resp, body = plainRequest(t, "GET", "http://"+env.Server.OpsAddr()+"/healthz", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
}

// TestOpsMetricsBoundedLabels: a client cannot add series to /metrics
// with methods or paths of its choosing.
func TestOpsMetricsBoundedLabels(t *testing.T) {
	env := servertest.Start(t)
	series := func() map[string]bool {
		resp, body := plainRequest(t, "GET", env.URL+"/metrics", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("metrics %d", resp.StatusCode)
		}
		out := map[string]bool{}
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "gatehouse_http_requests_total{") {
				out[l[:strings.LastIndexByte(l, ' ')]] = true
			}
		}
		return out
	}
	send := func(i int) {
		n := strconv.Itoa(i)
		plainRequest(t, "M"+n, env.URL+"/v1/me", nil)
		plainRequest(t, "GET", env.URL+"/p"+n+"/x", nil)
		plainRequest(t, "Q"+n, env.URL+"/oauth/token", nil)
		plainRequest(t, "GET", env.URL+"/v1/workspaces/"+n, nil)
		plainRequest(t, "GET", env.URL+"/v1/me", nil, "Authorization", "Bearer gat_"+n)
	}
	send(0)
	series()
	before := series()
	for i := 1; i < 30; i++ {
		send(i)
	}
	after := series()
	for k := range after {
		if !before[k] {
			t.Errorf("new series after client-chosen methods and paths: %s", k)
		}
	}
}

// TestOpsLogsNoSecretsAnywhere sends secrets in every place a client
// might and checks that neither the JSON nor the text log (through the
// server's own buffered handler, at debug) holds any of them.
func TestOpsLogsNoSecretsAnywhere(t *testing.T) {
	for _, json := range []bool{true, false} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			var buf servertest.SyncBuffer
			var logger *slog.Logger
			env := servertest.Start(t, func(c *server.Config) {
				logger, _ = logx.Open(&buf, json, slog.LevelDebug)
				c.Logger = logger
			})
			admin := env.AdminToken()
			env.CreateUser(admin, "ann@example.com", memberPW)
			ann := env.Login("ann@example.com", memberPW)
			app := enableAPIAccess(t, env, admin, nil)
			servertest.Expect(t, env.As(admin, "PUT", "/v1/developers/"+env.CreateUser(admin, "dev@example.com", memberPW), nil), 204, "")
			var c credential
			env.As(env.Login("dev@example.com", memberPW), "POST", "/v1/credentials", map[string]string{"name": "x"}).JSON(t, &c)
			tok := withAPIToken(t, env, admin)
			secrets := []string{admin, ann, memberPW, app.AccessToken, app.RefreshToken, c.ClientSecret, tok.Token, servertest.AdminPassword}

			form := "application/x-www-form-urlencoded"
			basic := func(id, sec string) string {
				return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+sec))
			}
			// Query strings.
			plainRequest(t, "GET", env.URL+"/v1/me?access_token="+ann, nil)
			plainRequest(t, "GET", env.URL+"/v1/me?api_token="+tok.Token, nil)
			plainRequest(t, "POST", env.URL+"/oauth/token?grant_type=refresh_token&client_id="+app.ClientID+"&refresh_token="+app.RefreshToken+"x", nil)
			plainRequest(t, "POST", env.URL+"/oauth/token?grant_type=client_credentials&client_id="+c.ClientID+"&client_secret="+c.ClientSecret, nil)
			// Basic auth: good, bad, malformed, secret as the id.
			plainRequest(t, "POST", env.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"), "Content-Type", form, "Authorization", basic(c.ClientID, c.ClientSecret+"x"))
			plainRequest(t, "POST", env.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"), "Content-Type", form, "Authorization", basic(c.ClientSecret, c.ClientSecret))
			plainRequest(t, "POST", env.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"), "Content-Type", form, "Authorization", "Basic "+c.ClientSecret)
			plainRequest(t, "GET", env.URL+"/v1/me", nil, "Authorization", basic("ann@example.com", memberPW))
			plainRequest(t, "GET", env.URL+"/v1/me", nil, "Authorization", "Bearer "+ann+" "+tok.Token)
			plainRequest(t, "GET", env.URL+"/v1/me", nil, "Authorization", "Token "+tok.Token)
			plainRequest(t, "GET", env.URL+"/v1/me", nil, "Cookie", "gatehouse_session="+ann)
			// Both Basic and body, repeated parameters, a form with a secret twice.
			plainRequest(t, "POST", env.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials&client_id="+c.ClientID+"&client_secret="+c.ClientSecret),
				"Content-Type", form, "Authorization", basic(c.ClientID, c.ClientSecret))
			plainRequest(t, "POST", env.URL+"/oauth/token", strings.NewReader("grant_type=refresh_token&refresh_token="+app.RefreshToken+"&refresh_token="+app.RefreshToken), "Content-Type", form)
			// Malformed JSON and forms holding secrets.
			plainRequest(t, "POST", env.URL+"/oauth/token", strings.NewReader(`{"grant_type":"refresh_token","client_id":"`+app.ClientID+`","refresh_token":"`+app.RefreshToken+`"`), "Content-Type", "application/json")
			plainRequest(t, "POST", env.URL+"/oauth/token", strings.NewReader(`{"grant_type":"refresh_token","`+app.RefreshToken+`":1}`), "Content-Type", "application/json")
			plainRequest(t, "POST", env.URL+"/authorization", strings.NewReader(`{"username":"ann@example.com","password":"`+memberPW+`","x":`), "Content-Type", "application/json")
			plainRequest(t, "POST", env.URL+"/authorization", strings.NewReader("username=ann%40example.com&password="+url.QueryEscape(memberPW)+"&password=x"), "Content-Type", form)
			plainRequest(t, "POST", env.URL+"/authorization", strings.NewReader("username=ann%40example.com&password=%zz"+url.QueryEscape(memberPW)), "Content-Type", form)
			plainRequest(t, "POST", env.URL+"/authorization", strings.NewReader("username="+url.QueryEscape(memberPW)+"&password="+url.QueryEscape(memberPW)), "Content-Type", form)
			// Revocation, introspection, bulk revocation.
			plainRequest(t, "POST", env.URL+"/oauth/revoke", strings.NewReader("token="+app.RefreshToken+"x"), "Content-Type", form, "Authorization", "Bearer "+admin)
			plainRequest(t, "POST", env.URL+"/oauth/introspect", strings.NewReader("token="+ann), "Content-Type", form, "Authorization", basic(c.ClientID, c.ClientSecret))
			plainRequest(t, "POST", env.URL+"/oauth/introspect", strings.NewReader("token="+ann), "Content-Type", form, "Authorization", basic(c.ClientID, c.ClientSecret+"y"))
			plainRequest(t, "POST", env.URL+"/v1/credentials/revoke", strings.NewReader(`{"credentials":["`+c.ClientSecret+`x",`), "Content-Type", "application/json")
			// Act-as with a bad user; an API token in the user header; a
			// password in the e-mail header.
			plainRequest(t, "GET", env.URL+"/v1/me", nil, "X-API-Token", tok.Token, "X-User-Email", memberPW)
			plainRequest(t, "GET", env.URL+"/v1/me", nil, "X-API-Token", tok.Token+"z", "X-User-Email", tok.Token)
			plainRequest(t, "GET", env.URL+"/v1/me", nil, "Authorization", "Bearer "+ann, "X-User-Email", tok.Token)
			// Password changes and user creation with a password.
			plainRequest(t, "POST", env.URL+"/v1/users", strings.NewReader(`{"email":"x@example.com","name":"x","password":"short","roles":[]}`), "Content-Type", "application/json", "Authorization", "Bearer "+admin)
			plainRequest(t, "POST", env.URL+"/v1/accounts", strings.NewReader(`{"name":"n","admin_email":"bad","admin_password":"`+memberPW+`"}`), "Content-Type", "application/json", "Authorization", "Bearer "+admin)
			// A 405 and an unknown route with the secret in the query.
			plainRequest(t, "GET", env.URL+"/oauth/token?client_secret="+c.ClientSecret, nil)
			plainRequest(t, "PUT", env.URL+"/authorization?password="+url.QueryEscape(memberPW), nil)
			// A device flow and an authorization request.
			plainRequest(t, "POST", env.URL+"/oauth/device_authorization", strings.NewReader("client_id="+c.ClientSecret), "Content-Type", form)
			// The header-named variants of the token header.
			plainRequest(t, "GET", env.URL+"/v1/me", nil, "X-Api-Token", tok.Token+"q")
			logger.Handler().(*logx.Handler).Flush()
			out := buf.String()
			if !strings.Contains(out, "/oauth/token") {
				t.Fatalf("no request lines: %.400s", out)
			}
			for _, s := range secrets {
				if i := strings.Index(out, s); i >= 0 {
					lo := max(0, strings.LastIndex(out[:i], "\n"))
					hi := i + strings.IndexByte(out[i:], '\n')
					t.Errorf("log holds secret %.8s…: %s", s, out[lo:hi])
				}
			}
		})
	}
}

// TestOpsLogsNoInjection: a path with line breaks, quotes, a fake
// key=value and invalid UTF-8 stays on one line of the request log, in
// both formats of the server's own handler.
func TestOpsLogsNoInjection(t *testing.T) {
	for _, json := range []bool{true, false} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			var buf servertest.SyncBuffer
			var logger *slog.Logger
			env := servertest.Start(t, func(c *server.Config) {
				logger, _ = logx.Open(&buf, json, slog.LevelInfo)
				c.Logger = logger
			})
			paths := []string{
				"/x%0Atime=2026-01-01T00:00:00.000Z%20level=ERROR%20msg=forged",
				"/x%0D%0A%7B%22msg%22:%22forged%22%7D",
				"/x%22%20status=200%20user_id=usr_forged",
				"/x%ff%fe%E2%80%A8%C2%85forged",
				"/x%1b[31mforged",
			}
			for _, p := range paths {
				plainRequest(t, "GET", env.URL+p, nil, "User-Agent", "ua\tforged", "X-Request-Id", "forged x")
			}
			logger.Handler().(*logx.Handler).Flush()
			n := 0
			for _, l := range strings.Split(buf.String(), "\n") {
				if strings.Contains(l, "forged") {
					n++
				}
				if strings.Contains(l, "forged") && !strings.Contains(l, "msg=request") && !strings.Contains(l, `"msg":"request"`) {
					t.Errorf("a line made by the client: %q", l)
				}
				if strings.Contains(l, "\x1b") {
					t.Errorf("raw escape in the log: %q", l)
				}
			}
			if n != len(paths) {
				t.Errorf("%d lines name the paths, want %d:\n%s", n, len(paths), buf.String())
			}
		})
	}
}
