package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// routesYAML and routesJSON are the same gateway route rules: an
// integration may only execute chains, metadata is read-only, /public/ is
// open, and deleting a chain needs a scope the account does not define.
const routesYAML = `
routes:
  - pattern: POST /v1/chains/{id}/execute
    scopes: [chains:execute]
  - pattern: GET /v1/catalog/
    scopes: [workspaces:read]
  - pattern: DELETE /v1/chains/{id}
    scopes: [chains:admin]
  - pattern: /public/
    public: true
`

const routesJSON = `{
  "routes": [
    {"pattern": "POST /v1/chains/{id}/execute", "scopes": ["chains:execute"]},
    {"pattern": "GET /v1/catalog/", "scopes": ["workspaces:read"]},
    {"pattern": "DELETE /v1/chains/{id}", "scopes": ["chains:admin"]},
    {"pattern": "/public/", "public": true}
  ]
}`

// writeRoutes writes rules to a file named name in a temporary directory.
func writeRoutes(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// routeTokens grants the account the platform scope chains:execute (the
// operator), maps it to admins and members, and makes two API tokens: one limited to
// workspaces:read, one to chains:execute.
func routeTokens(t *testing.T, env *servertest.Env, admin string) (readOnly, executor string) {
	t.Helper()
	accountID := env.As(admin, "GET", "/v1/me", nil).Map(t)["account"].(map[string]any)["id"].(string)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/accounts/"+accountID, map[string]any{"platform_scopes": []string{"chains:execute"}}), 200, "")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"role_scopes": map[string][]string{"admin": {"chains:execute"}, "member": {"chains:execute"}}}), 200, "")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	make := func(name, scope string) string {
		r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": name, "scopes": []string{scope}})
		servertest.Expect(t, r, 201, "")
		return r.Map(t)["token"].(string)
	}
	return make("metadata reader", "workspaces:read"), make("chain runner", "chains:execute")
}

// identityHeaders returns the headers of h that only Gatehouse may send.
func identityHeaders(h http.Header) http.Header {
	out := http.Header{}
	for name, vs := range h {
		if gateway.IsIdentityHeader(name) {
			out[name] = vs
		}
	}
	return out
}

// spoofs are identity headers a client makes up.
var spoofs = []string{"X-Gatehouse-Scopes", "accounts:write chains:execute", "X-Gatehouse-User-Id", "usr_evil", "X-Gatehouse-Roles", "admin"}

// TestGatewayRoutes runs the built-in gateway with a rules file: required
// scopes, a public path, the default for routes without a rule.
func TestGatewayRoutes(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.GatewayRoutes = up.URL, writeRoutes(t, "routes.yaml", routesYAML)
	})
	admin := env.AdminToken()
	readOnly, executor := routeTokens(t, env, admin)

	// A token limited to workspaces:read may not execute chains: refused
	// before the upstream and before the rate limit.
	r := env.Request("POST", "/v1/chains/c1/execute", "{}", "X-API-Token", readOnly)
	servertest.Expect(t, r, 403, "insufficient_scope")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="chains:execute"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	if r.Header.Get("X-RateLimit-Burst-Remaining") != "" || up.hits.Load() != 0 {
		t.Fatalf("refused request was charged or proxied: %v, %d hits", r.Header, up.hits.Load())
	}
	// Its own route works, as the first request charged.
	r = env.Request("GET", "/v1/catalog/items", nil, "X-API-Token", readOnly)
	servertest.Expect(t, r, 200, "")
	if got := r.Header.Get("X-RateLimit-Burst-Remaining"); got != "99" {
		t.Fatalf("burst remaining %q after one admitted request", got)
	}
	if got := up.last().Get("X-Gatehouse-Scopes"); got != "workspaces:read" {
		t.Fatalf("upstream scopes %q", got)
	}

	// The chain runner executes; the upstream sees its scope, never a
	// client's.
	r = env.Request("POST", "/v1/chains/c1/execute", "{}", append([]string{"X-API-Token", executor}, spoofs...)...)
	servertest.Expect(t, r, 200, "")
	h := up.last()
	if got := h.Values("X-Gatehouse-Scopes"); len(got) != 1 || got[0] != "chains:execute" {
		t.Fatalf("upstream X-Gatehouse-Scopes %q", got)
	}
	if h.Get("X-Gatehouse-User-Id") != "" || h.Get("X-Gatehouse-Roles") != "admin" || h.Get("X-API-Token") != "" {
		t.Fatalf("upstream headers %v", h)
	}
	// A route without a rule needs authentication and nothing more.
	servertest.Expect(t, env.Request("GET", "/v1/chains/c1", nil, "X-API-Token", executor), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/chains/c1", nil), 401, "unauthorized")
	// An unrestricted admin token may do what its role allows, including
	// the account's custom scopes; a scope the account does not define is
	// no one's: forbidden, not insufficient_scope.
	servertest.Expect(t, env.As(admin, "POST", "/v1/chains/c1/execute", "{}"), 200, "")
	r = env.As(admin, "DELETE", "/v1/chains/c1", nil)
	servertest.Expect(t, r, 403, "forbidden")
	if r.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("forbidden with WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	// A member's login token holds the custom scope too.
	env.CreateUser(admin, "ann@example.com", memberPW)
	servertest.Expect(t, env.As(env.Login("ann@example.com", memberPW), "POST", "/v1/chains/c1/execute", "{}"), 200, "")

	// A public path passes without credentials, unlimited, and the
	// upstream sees no identity header at all, not even a client's.
	hits := up.hits.Load()
	r = env.Request("GET", "/public/docs?page=2", nil, spoofs...)
	servertest.Expect(t, r, 200, "")
	if !strings.Contains(string(r.Body), `"path":"/public/docs"`) || r.Header.Get("X-RateLimit-Burst-Remaining") != "" {
		t.Fatalf("public answer %s %v", r.Body, r.Header)
	}
	if got := identityHeaders(up.last()); len(got) != 0 {
		t.Fatalf("identity headers reached the upstream on a public path: %v", got)
	}
	// Credentials sent to a public path are neither checked nor passed on.
	r = env.Request("PUT", "/public/upload", "x", append([]string{"X-API-Token", "gak_not_a_token", "Authorization", "Bearer nope"}, spoofs...)...)
	servertest.Expect(t, r, 200, "")
	h = up.last()
	if got := identityHeaders(h); len(got) != 0 || h.Get("Authorization") != "" || h.Get("X-API-Token") != "" {
		t.Fatalf("public path passed credentials or identity on: %v", h)
	}
	if up.hits.Load() != hits+2 {
		t.Fatalf("%d requests reached the upstream, want 2", up.hits.Load()-hits)
	}
	// A path that only looks public is refused as ambiguous (every
	// spelling: TestPathConfusion).
	hits = up.hits.Load()
	servertest.Expect(t, env.Request("POST", "/public/%2e%2e/v1/chains/c1/execute", "{}"), 400, "invalid_request")
	servertest.Expect(t, env.Request("GET", "/public/..;/v1/chains/c1", nil), 400, "invalid_request")
	if up.hits.Load() != hits {
		t.Fatal("a disguised path reached the upstream without credentials")
	}
}

// TestForwardAuthRoutes asks /v1/auth/check about original requests as
// Traefik ForwardAuth names them (X-Forwarded-Method and -Uri).
func TestForwardAuthRoutes(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.GatewayRoutes = writeRoutes(t, "routes.json", routesJSON) })
	admin := env.AdminToken()
	readOnly, executor := routeTokens(t, env, admin)
	check := func(method, uri string, headers ...string) *servertest.Response {
		return env.Request("GET", "/v1/auth/check", nil, append([]string{"X-Forwarded-Method", method, "X-Forwarded-Uri", uri}, headers...)...)
	}

	r := check("POST", "/v1/chains/c1/execute?dry_run=1", "X-API-Token", readOnly)
	servertest.Expect(t, r, 403, "insufficient_scope")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="chains:execute"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	r = check("POST", "/v1/chains/c1/execute", "X-API-Token", executor)
	servertest.Expect(t, r, 200, "")
	if r.Header.Get("X-Gatehouse-Scopes") != "chains:execute" || r.Header.Get("X-Gatehouse-Account-Id") == "" {
		t.Fatalf("identity %v", r.Header)
	}
	// Public: 200 with no identity, with or without credentials.
	for _, headers := range [][]string{nil, {"X-API-Token", executor}, {"Authorization", "Bearer gat_bad"}} {
		r = check("GET", "/public/logo.png", headers...)
		servertest.Expect(t, r, 200, "")
		if got := identityHeaders(r.Header); len(got) != 0 || r.Header.Get("X-RateLimit-Burst-Remaining") != "" {
			t.Fatalf("public check answered %v", r.Header)
		}
	}
	servertest.Expect(t, check("GET", "/public/../v1/chains/c1"), 400, "invalid_request")
	// No original request named: the default, authentication only.
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil, "X-API-Token", readOnly), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil), 401, "unauthorized")
	// A URI without its method, and a client's pair that disagrees with the
	// proxy's, are refused.
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil, "X-Forwarded-Uri", "/public/x"), 400, "invalid_request")
	servertest.Expect(t, check("POST", "/v1/chains/c1/execute", "X-Original-Method", "GET", "X-Original-URI", "/public/x"), 400, "invalid_request")
}

// TestNginxGatewayRoutes runs real nginx with docs/examples/nginx.conf and
// Gatehouse with a rules file: nginx names the original request with
// X-Original-Method and X-Original-URI.
func TestNginxGatewayRoutes(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.GatewayRoutes = writeRoutes(t, "routes.json", routesJSON) })
	admin := env.AdminToken()
	readOnly, executor := routeTokens(t, env, admin)
	listen := startNginx(t, "docs/examples/nginx.conf", map[string]string{
		"__GATEHOUSE__": strings.TrimPrefix(env.URL, "http://"), "__UPSTREAM__": strings.TrimPrefix(up.URL, "http://"),
	})
	nginx := &servertest.Env{T: t, URL: "http://" + listen, Client: env.Client}

	r := nginx.Request("POST", "/v1/chains/c1/execute", "{}", "X-API-Token", readOnly)
	servertest.Expect(t, r, 403, "insufficient_scope")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="chains:execute"` {
		t.Fatalf("WWW-Authenticate through nginx %q", got)
	}
	if up.hits.Load() != 0 {
		t.Fatal("refused request reached the upstream")
	}
	// A client's X-Gatehouse-* header is refused, never passed on.
	servertest.Expect(t, nginx.Request("POST", "/v1/chains/c1/execute", "{}", append([]string{"X-API-Token", executor}, spoofs...)...), 400, "invalid_request")
	if up.hits.Load() != 0 {
		t.Fatal("a request with a client's X-Gatehouse-* header reached the upstream")
	}
	r = nginx.Request("POST", "/v1/chains/c1/execute", "{}", "X-API-Token", executor)
	servertest.Expect(t, r, 200, "")
	h := up.last()
	if got := h.Values("X-Gatehouse-Scopes"); len(got) != 1 || got[0] != "chains:execute" {
		t.Fatalf("upstream X-Gatehouse-Scopes %q", got)
	}
	if h.Get("X-Gatehouse-User-Id") != "" || h.Get("X-Gatehouse-Roles") != "admin" || h.Get("X-API-Token") != "" {
		t.Fatalf("upstream headers %v", h)
	}
	servertest.Expect(t, nginx.Request("GET", "/v1/catalog/items", nil, "X-API-Token", readOnly), 200, "")
	if got := up.last().Get("X-Gatehouse-Scopes"); got != "workspaces:read" {
		t.Fatalf("upstream scopes %q", got)
	}

	// Public: no credentials needed, no identity header arrives; a
	// client's is refused there too.
	servertest.Expect(t, nginx.Request("GET", "/public/docs", nil, spoofs...), 400, "invalid_request")
	r = nginx.Request("GET", "/public/docs", nil)
	servertest.Expect(t, r, 200, "")
	if got := identityHeaders(up.last()); len(got) != 0 {
		t.Fatalf("identity headers reached the upstream on a public path: %v", got)
	}
	// Not public: 401 as before; a disguised path is not public either.
	hits := up.hits.Load()
	servertest.Expect(t, nginx.Request("GET", "/v1/chains/c1", nil), 401, "unauthorized")
	servertest.Expect(t, nginx.Request("POST", "/public/%2e%2e/v1/chains/c1/execute", "{}"), 400, "invalid_request")
	// A client naming another original request in the pair nginx does not
	// set is refused, never let through as public.
	servertest.Expect(t, nginx.Request("POST", "/v1/chains/c1/execute", "{}",
		"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public/x"), 400, "invalid_request")
	if up.hits.Load() != hits {
		t.Fatal("refused request reached the upstream")
	}
}
