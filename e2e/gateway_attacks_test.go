package e2e

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pathattack"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// routedGateway starts a gateway to a recording upstream under the attack
// table's route rules (internal/pathattack), with more rules appended.
func routedGateway(t *testing.T, more string) (*recorder, *servertest.Env) {
	t.Helper()
	rec := newRecorder(t)
	return rec, servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.GatewayRoutes = rec.URL, writeRoutes(t, "routes.yaml", pathattack.Rules+more)
	})
}

// TestGatewayFormatSuffix: Rails routes every path with an optional
// "(.:format)" suffix (and Spring MVC's suffix-pattern matching did the
// same), so GET /reports/summary.json is the action of GET
// /reports/summary. docs/gateway.md promises "one path, one rule": the
// gateway accepts "only a method and path that every server reads one
// way" and matches the spellings a server behind reads as the same request
// (Rails is named among the lenient routers). A token without the rule's
// scope must not reach the upstream through the suffix.
func TestGatewayFormatSuffix(t *testing.T) {
	rec, env := routedGateway(t, "")
	narrow, _ := attackTokens(t, env)
	addr := strings.TrimPrefix(env.URL, "http://")
	for _, c := range []struct{ method, target string }{
		{"GET", "/reports/summary"}, // control: 403
		{"GET", "/reports/summary.json"},
		{"GET", "/reports/summary.xml"},
		{"POST", "/v1/chains/c1/execute"}, // control: 403
		{"POST", "/v1/chains/c1/execute.json"},
	} {
		before := rec.count()
		a := sendRaw(t, addr, c.method, c.target, "X-API-Token", narrow)
		if rec.count() != before || a.Status == 200 {
			t.Errorf("%s %s with a token lacking the rule's scope: %d %s — reached the upstream, which (Rails, .:format) serves the protected action",
				c.method, c.target, a.Status, a.Body)
		}
	}
}

// TestExtAuthzEnvoy: Envoy's HTTP ext_authz sends the check with the
// original request's method and path_prefix + its path (docs/gateway.md:
// path_prefix /v1/auth/check). Gatehouse decides about that request, route
// rules included, answers 200 with the identity headers, and refuses a
// check that also names a request by headers; another method on the check
// itself is 405, not a check of "/".
func TestExtAuthzEnvoy(t *testing.T) {
	rec, env := routedGateway(t, "")
	narrow, wide := attackTokens(t, env)
	for _, c := range []struct{ method, path string }{{"GET", "/ops/x"}, {"POST", "/ops/x?y=1"}, {"DELETE", "/ops/status"}} {
		r := env.Request(c.method, "/v1/auth/check"+c.path, nil, "X-API-Token", wide)
		if r.Status != 200 || r.Header.Get("X-Gatehouse-Account-Id") == "" || len(r.Body) != 0 {
			t.Errorf("check of %s %s: %d %s %v, want 200 with the identity headers", c.method, c.path, r.Status, r.Body, r.Header)
		}
		servertest.Expect(t, env.Request(c.method, "/v1/auth/check"+c.path, nil, "X-API-Token", narrow), 403, "insufficient_scope")
	}
	servertest.Expect(t, env.Request("GET", "/v1/auth/check/ops/x", nil, "X-API-Token", wide), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/auth/check/public/x", nil, "X-API-Token", wide,
		"X-Original-Method", "GET", "X-Original-URI", "/ops/x"), 400, "invalid_request")
	servertest.Expect(t, env.Request("GET", "/v1/auth/check/ops/x", nil), 401, "")
	servertest.Expect(t, env.Request("POST", "/v1/auth/check", nil, "X-API-Token", wide), 405, "method_not_allowed")
	if rec.count() != 0 {
		t.Fatalf("a check reached the upstream")
	}
}

// TestGatewayOverrideMethodsBounded: a request's method-override headers
// name each method once and at most a few: every named method is matched
// against the rules, so their number must not grow with the request (SPEC
// §10.8: a request's cost is bounded by its size). Repeats of one method
// count once; more than three others are refused (400) before
// authentication, never proxied.
func TestGatewayOverrideMethodsBounded(t *testing.T) {
	rec, env := routedGateway(t, "")
	_, wide := attackTokens(t, env)
	addr := strings.TrimPrefix(env.URL, "http://")
	var repeats []string
	for range 1500 {
		repeats = append(repeats, "X-HTTP-Method", "GET")
	}
	if a := sendRaw(t, addr, "GET", "/ops/x", append([]string{"X-API-Token", wide}, repeats...)...); a.Status != 200 {
		t.Fatalf("one method named 1,500 times: %d %s", a.Status, a.Body)
	}
	before := rec.count()
	many := []string{"X-HTTP-Method", "PUT", "X-HTTP-Method", "PATCH", "X-HTTP-Method-Override", "DELETE", "X-Method-Override", "POST"}
	if a := sendRaw(t, addr, "GET", "/ops/x", append([]string{"X-API-Token", wide}, many...)...); a.Status != 400 || rec.count() != before {
		t.Fatalf("four other methods named: %d %s", a.Status, a.Body)
	}
}

// TestGatewayRouteSpellingsHold: spellings of forward auth's original request and of
// gateway requests that must not reach a protected route (all hold).
func TestGatewayRouteSpellingsHold(t *testing.T) {
	rec, env := routedGateway(t, "")
	narrow, wide := attackTokens(t, env)
	addr := strings.TrimPrefix(env.URL, "http://")
	chk := func(hs ...string) int {
		return env.Request("GET", "/v1/auth/check", nil, append([]string{"X-API-Token", narrow}, hs...)...).Status
	}
	for _, hs := range [][]string{
		{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "http://x/reports/summary"},
		{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "https://u:p@x:1/Reports/Summary/?q#f"},
		{"x-original-method", "GET", "x-original-uri", "/reports/summary"},
		{"X-Original-Method", "GET", "X-Original-URI", "/public/x#/../../reports/summary"},
		{"X-Original-Method", "GET", "X-Original-URI", "/public/x", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/reports/summary"},
		{"X-Original-Method", "GET", "X-Original-URI", "/reports/summary", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", ""},
		{"X-Original-Method", "HEAD", "X-Original-URI", "/reports/summary/"},
		{"X-Original-Method", "GET", "X-Original-URI", "/ops"},
		{"X-Original-Method", "GET", "X-Original-URI", "/%4fPS/x"},
	} {
		if s := chk(hs...); s == 200 {
			t.Errorf("check %v: 200", hs)
		}
	}
	for _, c := range []struct {
		method, target string
		hs             []string
	}{
		{"GET", "http://other.example/reports/summary", nil},
		{"HEAD", "/reports/summary/", nil},
		{"GET", "/v1/chains/c1/execute", []string{"X_HTTP_Method_Override", " post ", "X-HTTP-Method", "GET"}},
		{"GET", "/OPS", nil},
		{"GET", "/reports/summary", []string{"Connection", "X-API-Token"}},
	} {
		before := rec.count()
		a := sendRaw(t, addr, c.method, c.target, append([]string{"X-API-Token", narrow}, c.hs...)...)
		if a.Status == 200 || rec.count() != before {
			t.Errorf("%s %s %v: %d %s", c.method, c.target, c.hs, a.Status, a.Body)
		}
	}
	// Connection naming gateway-set headers does not remove them.
	a := sendRaw(t, addr, "GET", "/ops/x", "X-API-Token", wide, "Connection", "X-Real-Ip, X-Request-Id, X-Gatehouse-Scopes, X-Forwarded-For")
	got := rec.last()
	if a.Status != 200 || got.Header.Get("X-Real-Ip") == "" || got.Header.Get("X-Request-Id") == "" || got.Header.Get("X-Gatehouse-Scopes") == "" || got.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("%d %v", a.Status, got.Header)
	}
}

// TestGatewayNestedSubtreeOwnRule: /ops/ needs settings:write; the operator
// opens the tree /ops/status/ to everyone. A request to /ops/status (no
// slash) lies in /ops/ — the only pattern that matches it — and
// docs/gateway.md says a path without a trailing slash "gets its own rule,
// made stricter by the rule of the path with the slash". Its own rule is
// /ops/'s, so it must need settings:write. Gatehouse asks its ServeMux,
// which answers /ops/status with a redirect to /ops/status/, reads that as
// "no rule", and admits any credential.
func TestGatewayNestedSubtreeOwnRule(t *testing.T) {
	rec, env := routedGateway(t, "  - pattern: /ops/status/\n    public: true\n")
	narrow, _ := attackTokens(t, env)
	addr := strings.TrimPrefix(env.URL, "http://")
	for _, c := range []struct{ method, target string }{
		{"DELETE", "/ops/secret"}, // control: 403
		{"DELETE", "/ops/status"},
		{"POST", "/OPS/Status"},
	} {
		before := rec.count()
		a := sendRaw(t, addr, c.method, c.target, "X-API-Token", narrow)
		if a.Status == 200 || rec.count() != before {
			t.Errorf("%s %s with a token lacking settings:write (the /ops/ rule): %d %s — reached the upstream", c.method, c.target, a.Status, a.Body)
		}
	}
	// Forward auth decides the same way.
	r := env.Request("GET", "/v1/auth/check", nil, "X-API-Token", narrow, "X-Original-Method", "DELETE", "X-Original-URI", "/ops/status")
	if r.Status == 200 {
		t.Errorf("forward auth DELETE /ops/status with a narrow token: 200")
	}
}
