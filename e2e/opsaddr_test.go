package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/localserver"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestOpsAddr runs a server with --ops-addr: /metrics, /healthz and
// /readyz answer on the ops listener, and on the public listener nothing of
// them is reachable, however the path is spelt, even with a gateway behind
// it that would proxy any path it does not know.
func TestOpsAddr(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.OpsAddr = "127.0.0.1:0"
		c.Upstream = up.URL
	})
	if env.Server.OpsAddr() == "" || env.Server.OpsAddr() == env.Server.Addr() {
		t.Fatalf("ops addr %q, public %q", env.Server.OpsAddr(), env.Server.Addr())
	}
	ops := &localserver.Client{URL: "http://" + env.Server.OpsAddr()}
	public := &localserver.Client{URL: env.URL}
	get := func(c *localserver.Client, method, path string) *localserver.Response {
		t.Helper()
		r, err := c.Do(context.Background(), method, path, nil)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return r
	}

	// The public listener still does its work, and its requests are
	// counted in the ops listener's metrics.
	tok := env.AdminToken()
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")

	r := get(ops, "GET", "/metrics")
	if r.Status != 200 || !strings.Contains(string(r.Body), `gatehouse_http_requests_total{route="GET /v1/me",status="200"} 1`) {
		t.Fatalf("ops /metrics: %d %.300s", r.Status, r.Body)
	}
	if r := get(ops, "GET", "/healthz"); r.Status != 200 || !strings.Contains(string(r.Body), `"ok"`) {
		t.Fatalf("ops /healthz: %d %s", r.Status, r.Body)
	}
	if r := get(ops, "GET", "/readyz"); r.Status != 200 || !strings.Contains(string(r.Body), `"store":true`) {
		t.Fatalf("ops /readyz: %d %s", r.Status, r.Body)
	}
	// The ops listener serves nothing else: no sign-in, no API, no gateway.
	for _, p := range []string{"/authorization", "/v1/me", "/admin", "/oauth/token", "/anything"} {
		if r := get(ops, "GET", p); r.Status != 404 {
			t.Errorf("ops GET %s: %d %s", p, r.Status, r.Body)
		}
	}
	if r := get(ops, "POST", "/authorization"); r.Status != 404 {
		t.Errorf("ops POST /authorization: %d %s", r.Status, r.Body)
	}

	// On the public listener: 404 for every spelling and method, never the
	// metrics, never proxied upstream.
	for _, p := range []string{"/metrics", "/healthz", "/readyz", "/metrics?x=1", "/%6detrics", "/healthz/", "/metrics/"} {
		for _, method := range []string{"GET", "HEAD", "POST"} {
			r := get(public, method, p)
			if r.Status == 200 || strings.Contains(string(r.Body), "go_goroutines") || strings.Contains(string(r.Body), `"status":"ok"`) {
				t.Errorf("public %s %s: %d %.200s", method, p, r.Status, r.Body)
			}
		}
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		servertest.Expect(t, env.Request("GET", p, nil), 404, "not_found")
		servertest.Expect(t, env.As(tok, "GET", p, nil), 404, "not_found")
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("the upstream got %d requests for the ops paths", n)
	}
	// The gateway still proxies every other path.
	servertest.Expect(t, env.As(tok, "GET", "/elsewhere", nil), 200, "")
	if up.hits.Load() != 1 {
		t.Fatal("the gateway did not proxy")
	}
}

// TestOpsAddrUnset keeps the endpoints on the public listener when no ops
// address is set.
func TestOpsAddrUnset(t *testing.T) {
	env := servertest.Start(t)
	if env.Server.OpsAddr() != "" {
		t.Fatalf("ops addr %q without --ops-addr", env.Server.OpsAddr())
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if r := env.Request("GET", p, nil); r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d", p, r.Status)
		}
	}
}
