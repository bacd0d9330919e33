package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/faultproxy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/token"
)

// tcpProxy forwards a local port to a backing service through a
// faultproxy.Proxy and can cut every connection, open and new, to make
// the service unreachable for a server.
type tcpProxy struct {
	addr, target string
	p            *faultproxy.Proxy
}

// start starts the proxy, or lets traffic pass again after a cut.
func (p *tcpProxy) start(t *testing.T) {
	t.Helper()
	if p.p != nil {
		p.p.Set(faultproxy.Pass)
		return
	}
	fp, err := faultproxy.Start(p.target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	p.p, p.addr = fp, fp.Addr()
}

// cut resets every connection, and every new one from now on.
func (p *tcpProxy) cut() { p.p.Set(faultproxy.Reset) }

// TestPostgresOutage: with PostgreSQL unreachable, requests get 503 and
// /readyz says so; when it is back, requests are served again.
func TestPostgresOutage(t *testing.T) {
	url := pgtest.Schema(t)
	host := strings.SplitN(strings.SplitN(url, "@", 2)[1], "/", 2)[0]
	proxy := &tcpProxy{addr: "127.0.0.1:0", target: host}
	proxy.start(t)
	defer proxy.cut()
	proxied := strings.Replace(url, "@"+host+"/", "@"+proxy.addr+"/", 1)
	env := servertest.Start(t, func(c *server.Config) { c.DatabaseURL = proxied })
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)

	proxy.cut()
	for _, c := range []struct{ name, method, path string }{
		{"login", "POST", "/authorization"},
		{"list users", "GET", "/v1/users"},
		{"readyz", "GET", "/readyz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r *servertest.Response
			switch c.path {
			case "/authorization":
				r = env.Request("POST", c.path, map[string]string{"username": "ann@example.com", "password": memberPW})
			case "/readyz":
				r = env.Request("GET", c.path, nil)
			default:
				// A well-formed token that is not cached: the store must answer.
				r = env.As(token.New(token.AccessToken), c.method, c.path, nil)
			}
			if r.Status != 503 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		})
	}
	// Back again.
	proxy.start(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW})
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after PostgreSQL came back: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	servertest.Expect(t, env.Request("GET", "/readyz", nil), 200, "")
}
