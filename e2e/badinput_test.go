package e2e

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/admin"
	"github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// Input that is not text (issue 28, SPEC §10.8 "No 5xx from input"): every
// route of the API and of the console, taken from their route tables so a
// new route is covered by default, gets invalid UTF-8, NUL, overlong
// encodings and huge values in each path segment it reads, in query
// filters and in cursors. Each is answered 400 (or 404), the server-error
// counter does not move and nothing is written.

// badPieces are escaped path segments and query values that no store may
// see: invalid UTF-8, NUL, overlong encodings ('/' and NUL), a UTF-16
// surrogate, and values far longer than any id or filter.
var badPieces = []string{
	"%ff",
	"%00",
	"a%00b",
	"%c0%af",
	"%e0%80%80",
	"%ed%a0%80",
	"usr_%fe%ff",
	strings.Repeat("a", 5000),
	strings.Repeat("%e6%97%a5", 1000),
}

// badCursors are cursors as the API encodes them (base64url) whose
// content is not text, or is huge.
var badCursors = []string{
	base64.RawURLEncoding.EncodeToString([]byte("\xff")),
	base64.RawURLEncoding.EncodeToString([]byte("a\x00b")),
	base64.RawURLEncoding.EncodeToString([]byte("<usr_\xc0\xaf")),
	base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("usr_", 2000))),
}

// filterNames are the query parameters the lists read (filters, cursors,
// page links); the edge refuses bad input under any name, these make sure
// the names that reach a store are among those tried.
var filterNames = []string{"cursor", "after", "before", "user_id", "actor", "action", "target_id",
	"email", "q", "find", "status", "role", "since", "until", "format", "error", "all_accounts", "revoke_credentials"}

// probe is one request of the suite.
type probe struct{ method, path string }

// probesFor returns the probes of one route pattern: each wildcard in turn
// replaced by each bad piece (the others by a plausible id), then the
// route's path with each bad piece under every filter name and as a query
// parameter's name, and each of cursors (the console's page links carry
// plain ids, which the bad pieces cover already).
func probesFor(pattern string, cursors []string) []probe {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.TrimSuffix(path, "{$}")
	wild := regexp.MustCompile(`\{[a-z_]+\}`)
	plain := wild.ReplaceAllString(path, "usr_0000000000000000000000000")
	var out []probe
	for _, loc := range wild.FindAllStringIndex(path, -1) {
		for _, bad := range badPieces {
			p := wild.ReplaceAllString(path[:loc[0]], "usr_0000000000000000000000000") + bad +
				wild.ReplaceAllString(path[loc[1]:], "usr_0000000000000000000000000")
			out = append(out, probe{method, p})
		}
	}
	for _, bad := range badPieces {
		for _, name := range filterNames {
			out = append(out, probe{method, plain + "?" + name + "=" + bad})
		}
		out = append(out, probe{method, plain + "?" + bad + "=1"})
	}
	for _, c := range cursors {
		out = append(out, probe{method, plain + "?cursor=" + c})
	}
	return out
}

// serverErrors reads the server-error counter from /metrics.
func serverErrors(t *testing.T, env *servertest.Env) int {
	t.Helper()
	r := env.Request("GET", "/metrics", nil)
	servertest.Expect(t, r, http.StatusOK, "")
	m := regexp.MustCompile(`(?m)^gatehouse_http_server_errors_total (\d+)$`).FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no gatehouse_http_server_errors_total in /metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// writtenState is what a refused request must not change: the audit log
// and the users of the operator's account.
func writtenState(t *testing.T, env *servertest.Env, tok string) (audit, users int) {
	t.Helper()
	audit = len(auditEntries(t, env, tok))
	r := env.As(tok, "GET", "/v1/users?limit=200", nil)
	servertest.Expect(t, r, http.StatusOK, "")
	return audit, len(r.Map(t)["data"].([]any))
}

func TestBadInputEveryRoute(t *testing.T) {
	env := servertest.Start(t)
	tok := env.AdminToken()
	env.CreateUser(tok, "ann@example.com", memberPW)
	// Room for the reads around the probes; the probes themselves are
	// refused before the rate limit.
	servertest.Expect(t, env.As(tok, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 100000, "daily": 1000000}}), http.StatusOK, "")
	cookie := adminSessionCookie(t, noRedirects(), env.URL)
	audit0, users0 := writtenState(t, env, tok)
	errors0 := serverErrors(t, env)

	type target struct {
		name     string
		patterns []string
		cursors  []string
		headers  []string
	}
	targets := []target{
		{"api", apiPatterns(), badCursors, []string{"Authorization", "Bearer " + tok}},
		{"admin", admin.Patterns(), nil, []string{"Cookie", cookie.Name + "=" + cookie.Value}},
	}
	if len(targets[0].patterns) < 30 || len(targets[1].patterns) < 30 {
		t.Fatalf("route tables too short: api %d, admin %d", len(targets[0].patterns), len(targets[1].patterns))
	}

	// Four clients, their connections opened before the probes, send
	// them concurrently.
	const workers = 4
	clients := make([]*http.Client, workers)
	for i := range clients {
		clients[i] = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := clients[i].Get(env.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		readAll(resp)
	}
	type job struct {
		target string
		probe
		headers []string
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	count := 0
	for i := range workers {
		wg.Go(func() {
			for j := range jobs {
				req, err := http.NewRequest(j.method, env.URL+j.path, nil)
				if err != nil {
					mu.Lock()
					failures = append(failures, j.method+" "+j.path+": "+err.Error())
					mu.Unlock()
					continue
				}
				for k := 0; k+1 < len(j.headers); k += 2 {
					req.Header.Set(j.headers[k], j.headers[k+1])
				}
				if j.method == "POST" || j.method == "PUT" || j.method == "PATCH" {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := clients[i].Do(req)
				if err != nil {
					mu.Lock()
					failures = append(failures, j.method+" "+j.path+": "+err.Error())
					mu.Unlock()
					continue
				}
				body := readAll(resp)
				ok := resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound
				if ok && j.target == "api" {
					ok = strings.Contains(body, `"error":"invalid_request"`) || strings.Contains(body, `"error":"not_found"`)
				}
				if !ok {
					mu.Lock()
					failures = append(failures, j.method+" "+shorten(j.path)+": "+strconv.Itoa(resp.StatusCode)+" "+shorten(body))
					mu.Unlock()
				}
			}
		})
	}
	for _, tg := range targets {
		for _, pattern := range tg.patterns {
			for _, p := range probesFor(pattern, tg.cursors) {
				count++
				jobs <- job{tg.name, p, tg.headers}
			}
		}
	}
	close(jobs)
	wg.Wait()
	if n := len(failures); n > 0 {
		if n > 20 {
			failures = append(failures[:20], "…")
		}
		t.Errorf("%d of %d probes not answered 400 or 404:\n%s", n, count, strings.Join(failures, "\n"))
	}
	if n := serverErrors(t, env); n != errors0 {
		t.Errorf("server errors went from %d to %d", errors0, n)
	}
	if a, u := writtenState(t, env, tok); a != audit0 || u != users0 {
		t.Errorf("written: audit entries %d → %d, users %d → %d", audit0, a, users0, u)
	}
	t.Logf("%d probes over %d API and %d console routes", count, len(targets[0].patterns), len(targets[1].patterns))
}

// apiPatterns returns the pattern of every route of the API's route table
// (api.Routes).
func apiPatterns() []string {
	var out []string
	for _, rt := range api.Routes() {
		out = append(out, rt.Method+" "+rt.Path)
	}
	return out
}

// shorten cuts a path or body for a failure message.
func shorten(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// noRedirects returns a client that does not follow redirects.
func noRedirects() *http.Client {
	return &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// outsidePatterns are the routes outside the API's and the console's
// tables: the OAuth endpoints, the well-known documents, forward auth, the
// leak reports and the operations endpoints. Keep it in step with
// server.routes.
var outsidePatterns = []string{
	"GET /oauth/authorize", "GET /device", "GET /.well-known/oauth-authorization-server",
	"GET /.well-known/oauth-protected-resource", "GET /.well-known/oauth-protected-resource/api",
	"GET /openapi.json", "GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/auth/check",
	"POST /oauth/token", "POST /v1/oauth/token", "POST /authorization", "POST /oauth/revoke", "POST /oauth/introspect",
	"POST /oauth/device_authorization", "POST /oauth/register", "POST /v1/credentials/revoke", "POST /v1/secret-scanning/github",
}

// badQueries are query strings that do not parse or hold what no store
// may see.
var badQueries = []string{";", "%zz", "a=%zz", "client_id=a;b", "client_id=%00", "client_id=%ff", "%ff=1",
	"client_id=" + strings.Repeat("a", 5000), "response_type=code&client_id=x&state=%zz"}

// TestBadQueriesOutsideTheTables: every route outside the two route
// tables, given a query string that does not parse, NUL, invalid UTF-8 or
// a huge value, answers below 500 and counts no server error, with and
// without a bearer token.
func TestBadQueriesOutsideTheTables(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) {
		c.DynamicRegistration = true
		c.Upstream = "http://127.0.0.1:9"
	})
	tok := env.AdminToken()
	errors0 := serverErrors(t, env)
	c := noRedirects()
	var failures []string
	for _, pattern := range outsidePatterns {
		method, path, _ := strings.Cut(pattern, " ")
		for _, q := range badQueries {
			for _, auth := range []string{"", "Bearer " + tok} {
				req, err := http.NewRequest(method, env.URL+path+"?"+q, strings.NewReader("grant_type=client_credentials"))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("%s ?%s: %v", pattern, shorten(q), err)
				}
				if body := readAll(resp); resp.StatusCode >= 500 {
					failures = append(failures, pattern+" ?"+shorten(q)+": "+strconv.Itoa(resp.StatusCode)+" "+shorten(body))
				}
			}
		}
	}
	if len(failures) > 0 {
		t.Errorf("%d answers of 500 or more:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if n := serverErrors(t, env); n != errors0 {
		t.Errorf("server errors went from %d to %d", errors0, n)
	}
}
