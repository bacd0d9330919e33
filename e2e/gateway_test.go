package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/token"
)

// upstream is a test API that records the headers it receives.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
	hits    atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, `{"path":%q,"bytes":%d,"sha256":%q}`, r.URL.Path, n, hex.EncodeToString(h.Sum(nil)))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.headers[len(u.headers)-1]
}

func TestForwardAuthCheck(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	id := env.CreateUser(admin, "ann@example.com", memberPW, "developer")
	r := env.As(env.Login("ann@example.com", memberPW), "GET", "/v1/auth/check", nil)
	servertest.Expect(t, r, 200, "")
	for k, v := range map[string]string{
		"X-Gatehouse-User-Id": id, "X-Gatehouse-User-Email": "ann@example.com", "X-Gatehouse-Roles": "developer",
		"X-Gatehouse-Auth-Method": "password", "X-RateLimit-Burst-Remaining": "99",
	} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if r.Header.Get("X-Gatehouse-Account-Id") == "" || r.Header.Get("RateLimit-Policy") == "" {
		t.Fatalf("headers %v", r.Header)
	}
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil), 401, "unauthorized")
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil, "Authorization", "Bearer gat_nope"), 401, "invalid_token")
}

func TestGateway(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	admin := env.AdminToken()
	id := env.CreateUser(admin, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)

	// Unauthenticated requests never reach the upstream.
	servertest.Expect(t, env.Request("GET", "/orders/1", nil), 401, "unauthorized")
	if up.hits.Load() != 0 {
		t.Fatal("unauthenticated request reached the upstream")
	}
	// Spoofed identity and credentials never arrive.
	r := env.As(ann, "POST", "/orders?x=1", "hello", "X-Gatehouse-User-Id", "usr_evil", "X-Gatehouse-Roles", "admin",
		"X-Gatehouse-Extra", "evil", "X-Forwarded-For", "203.0.113.7", "X-Real-Ip", "203.0.113.8", "True-Client-Ip", "203.0.113.9")
	servertest.Expect(t, r, 200, "")
	if !strings.Contains(string(r.Body), `"path":"/orders"`) || r.Header.Get("X-RateLimit-Burst-Remaining") == "" {
		t.Fatalf("proxied answer %s %v", r.Body, r.Header)
	}
	h := up.last()
	if h.Get("X-Gatehouse-User-Id") != id || h.Get("X-Gatehouse-Roles") != "" || h.Get("X-Gatehouse-Extra") != "" ||
		h.Get("X-Gatehouse-User-Email") != "ann@example.com" || len(h.Values("X-Gatehouse-User-Id")) != 1 {
		t.Fatalf("identity headers %v", h)
	}
	if h.Get("Authorization") != "" || strings.Contains(fmt.Sprint(h), ann) {
		t.Fatalf("credentials reached the upstream: %v", h)
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Host") == "" || h.Get("X-Real-Ip") != "127.0.0.1" ||
		h.Get("True-Client-Ip") != "" {
		t.Fatalf("client address headers %v", h)
	}
	// Gatehouse's own routes are not proxied.
	servertest.Expect(t, env.As(ann, "GET", "/v1/me", nil), 200, "")
	// A dead upstream is a clean 502.
	up.Close()
	r = env.As(ann, "GET", "/orders/2", nil)
	servertest.Expect(t, r, 502, "bad_gateway")
	if strings.Contains(string(r.Body), "127.0.0.1") || strings.Contains(string(r.Body), "refused") {
		t.Fatalf("502 leaks internals: %s", r.Body)
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestGatewayStreamsLargeBodies sends 1 GiB through the gateway and checks
// that the process never held it in memory.
func TestGatewayStreamsLargeBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	tok := env.AdminToken()
	const size = 1 << 30
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	req, _ := http.NewRequest("PUT", env.URL+"/upload", io.LimitReader(zeros{}, size))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := env.Client.Do(req)
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), fmt.Sprintf(`"bytes":%d`, size)) {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	if p := peak.Load(); p > 256<<20 {
		t.Fatalf("heap reached %d MiB while streaming", p>>20)
	}
	t.Logf("1 GiB streamed; peak heap in use %d MiB", peak.Load()>>20)
}

// startNginx runs real nginx with the configuration file conf (relative to
// the repository) until the test ends. __PREFIX__ in it becomes a fresh
// directory for nginx's files, __LISTEN__ a free address (returned), and
// every other placeholder the value vars gives it. It waits until nginx
// accepts connections. Without nginx it skips, except under CI=true
// (testenv.RequireTool).
func startNginx(t *testing.T, conf string, vars map[string]string) (listen string) {
	t.Helper()
	nginx := testenv.RequireTool(t, "nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx")
	prefix, err := os.MkdirTemp("", "gatehouse-nginx")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(prefix, 0o777) // nginx workers may run as another user
	text, err := os.ReadFile(filepath.Join("..", conf))
	if err != nil {
		t.Fatal(err)
	}
	listen = freeAddr(t)
	pairs := []string{"__LISTEN__", listen, "__PREFIX__", prefix}
	for k, v := range vars {
		pairs = append(pairs, k, v)
	}
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(strings.NewReplacer(pairs...).Replace(string(text))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", prefix, "-c", confPath, "-g", "daemon off;")
	// Its own process group, so that the workers die with the master; its
	// output in a file, which no orphan can hold open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.Create(filepath.Join(prefix, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logFile.Close()
		os.RemoveAll(prefix)
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			return listen
		}
		if i == 100 {
			out, _ := os.ReadFile(filepath.Join(prefix, "out.log"))
			errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Fatalf("nginx did not start: %v\n%s%s", err, out, errLog)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNginxAuthRequest runs real nginx with docs/examples/nginx.conf in
// front of a test API, asking Gatehouse about every request.
func TestNginxAuthRequest(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t)
	admin := env.AdminToken()
	id := env.CreateUser(admin, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)

	listen := startNginx(t, "docs/examples/nginx.conf", map[string]string{
		"__GATEHOUSE__": strings.TrimPrefix(env.URL, "http://"), "__UPSTREAM__": strings.TrimPrefix(up.URL, "http://"),
	})
	base := "http://" + listen
	nginxEnv := &servertest.Env{T: t, URL: base, Client: env.Client}

	// Unauthenticated: 401 from Gatehouse, upstream untouched.
	hits := up.hits.Load()
	servertest.Expect(t, nginxEnv.Request("GET", "/orders", nil), 401, "unauthorized")
	servertest.Expect(t, nginxEnv.Request("GET", "/orders", nil, "Authorization", "Bearer gat_bad"), 401, "invalid_token")
	if up.hits.Load() != hits {
		t.Fatal("refused request reached the upstream")
	}
	// A client's identity header is refused before it can reach the API.
	servertest.Expect(t, nginxEnv.As(ann, "GET", "/orders", nil, "X-Gatehouse-User-Id", "usr_evil"), 400, "invalid_request")
	servertest.Expect(t, nginxEnv.As(ann, "GET", "/orders", nil, "x-gatehouse-plan", "gold"), 400, "invalid_request")
	if up.hits.Load() != hits {
		t.Fatal("a request with a client's X-Gatehouse-* header reached the upstream")
	}
	// Authenticated: the upstream sees the identity, not the credential.
	r := nginxEnv.As(ann, "GET", "/orders", nil)
	servertest.Expect(t, r, 200, "")
	h := up.last()
	if h.Get("X-Gatehouse-User-Id") != id || h.Get("X-Gatehouse-User-Email") != "ann@example.com" || h.Get("Authorization") != "" {
		t.Fatalf("upstream headers %v", h)
	}
	if r.Header.Get("X-RateLimit-Burst-Remaining") == "" {
		t.Fatalf("no rate-limit headers through nginx: %v", r.Header)
	}
	// Rate limited: 422 with the JSON body and Retry-After.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 3}}), 200, "")
	var last *servertest.Response
	for i := 0; i < 5; i++ {
		last = nginxEnv.As(ann, "GET", "/orders", nil)
	}
	servertest.Expect(t, last, 422, "rate_limit_exceeded")
	if last.Header.Get("Retry-After") == "" {
		t.Fatalf("no Retry-After through nginx: %v", last.Header)
	}
}

// TestIdentityIsEachRequests attacks the identity headers with many
// users' requests at once: 4 users' tokens (each user with other roles)
// and a well-formed token never issued send 120 requests, released
// together over connections opened in advance, half through the gateway
// and half to forward auth.
// Each admitted request must carry exactly its own user's identity, to the
// upstream and in the forward-auth answer; the unknown token is refused and
// never reaches the upstream. It runs on a node with the in-memory limiter
// and on one whose admissions are batched in Redis.
func TestIdentityIsEachRequests(t *testing.T) {
	t.Run("in memory", func(t *testing.T) { attackIdentity(t) })
	t.Run("Redis", func(t *testing.T) {
		rs := startRedis(t, "")
		attackIdentity(t, func(c *server.Config) { c.RedisURL, c.RedisPrefix = "redis://127.0.0.1:"+rs.port+"/0", "identity:" })
	})
}

func attackIdentity(t *testing.T, opts ...func(*server.Config)) {
	var hits atomic.Int64
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("X-Gatehouse-User-Id"), r.Header.Get("X-Gatehouse-User-Email"),
			r.Header.Get("X-Gatehouse-Roles"))
	}))
	t.Cleanup(echo.Close)
	env := servertest.Start(t, append(opts, func(c *server.Config) { c.Upstream = echo.URL })...)
	admin := env.AdminToken()
	type user struct{ id, email, roles, token string }
	var users []user
	for i, roles := range [][]string{nil, {"developer"}, {"admin"}, {"admin", "developer"}} {
		email := fmt.Sprintf("who%d@example.com", i)
		id := env.CreateUser(admin, email, memberPW, roles...)
		users = append(users, user{id, email, strings.Join(roles, ","), env.Login(email, memberPW)})
	}
	unknown := token.New(token.AccessToken) // well formed, never issued
	var reqs []*http.Request
	var who []int // the user of each request; -1 for the unknown token
	for n := range 120 {
		u, tok := n%5, unknown
		if u < 4 {
			tok = users[u].token
		} else {
			u = -1
		}
		path := "/v1/auth/check"
		if n%2 == 0 {
			path = fmt.Sprintf("/orders/%d", n)
		}
		req, _ := http.NewRequest("GET", env.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if path != "/v1/auth/check" {
			req.Header.Set("X-Gatehouse-User-Id", "usr_forged") // never trusted (forward auth refuses it)
		}
		reqs, who = append(reqs, req), append(who, u)
	}
	answers := sendTogether(t, env, reqs...)
	proxied := 0
	for i, a := range answers {
		if who[i] < 0 {
			if a.Status != http.StatusUnauthorized || a.Header.Get("X-Gatehouse-User-Id") != "" {
				t.Errorf("request %d with an unknown token: %d %v", i, a.Status, a.Header)
			}
			continue
		}
		u := users[who[i]]
		if a.Status != http.StatusOK {
			t.Errorf("request %d of %s: status %d %s", i, u.email, a.Status, a.Body)
			continue
		}
		got := a.Header.Get("X-Gatehouse-User-Id") + "|" + a.Header.Get("X-Gatehouse-User-Email") + "|" + a.Header.Get("X-Gatehouse-Roles")
		if reqs[i].URL.Path != "/v1/auth/check" {
			got = string(a.Body)
			proxied++
		}
		if want := u.id + "|" + u.email + "|" + u.roles; got != want {
			t.Errorf("request %d (%s) of %s carried the identity %q", i, reqs[i].URL.Path, want, got)
		}
	}
	if hits.Load() != int64(proxied) {
		t.Errorf("the upstream saw %d requests, want the %d admitted ones", hits.Load(), proxied)
	}
}

// TestGatewayClientAddressHeaders: behind a trusted proxy (127.0.0.3) the
// upstream is told the client Gatehouse worked out — in X-Real-Ip, and as
// X-Forwarded-For's chain before the proxy — from the one kind of
// forwarding header Gatehouse reads: a client's own X-Forwarded-For, which
// a proxy that writes Forwarded passes on, goes no further, nor does a
// client's X-Real-Ip or True-Client-Ip.
func TestGatewayClientAddressHeaders(t *testing.T) {
	trusted, _ := httpx.ParseTrustedProxies("127.0.0.3")
	proxy := clientFrom("127.0.0.3", nil)
	for _, tc := range []struct {
		name              string
		header            httpx.ForwardedHeader
		sent              []string
		wantXFF, wantReal string
	}{
		{"X-Forwarded-For", "", []string{"X-Forwarded-For", "203.0.113.5", "Forwarded", "for=198.51.100.9"}, "203.0.113.5, 127.0.0.3", "203.0.113.5"},
		{"Forwarded", httpx.Forwarded, []string{"X-Forwarded-For", "203.0.113.5", "Forwarded", "for=198.51.100.9"}, "198.51.100.9, 127.0.0.3", "198.51.100.9"},
		{"Forwarded, none sent", httpx.Forwarded, []string{"X-Forwarded-For", "203.0.113.5"}, "127.0.0.3", "127.0.0.3"},
		// A client's Connection header removes none of them.
		{"Connection lists them", "", []string{"X-Forwarded-For", "203.0.113.5", "Connection", "X-Real-Ip, X-Forwarded-For, X-Forwarded-Proto"}, "203.0.113.5, 127.0.0.3", "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t)
			env := servertest.Start(t, func(c *server.Config) {
				c.Upstream, c.TrustedProxies, c.ForwardedHeader = up.URL, trusted, tc.header
			})
			tok := env.AdminToken()
			headers := append([]string{"Authorization", "Bearer " + tok, "X-Real-Ip", "192.0.2.66", "True-Client-Ip", "192.0.2.67"}, tc.sent...)
			servertest.Expect(t, send(t, proxy, "GET", env.URL+"/orders/1", "", nil, headers...), 200, "")
			h := up.last()
			if got := strings.Join(h.Values("X-Forwarded-For"), ", "); got != tc.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", got, tc.wantXFF)
			}
			if h.Get("X-Real-Ip") != tc.wantReal || h.Get("True-Client-Ip") != "" || h.Get("Forwarded") != "" {
				t.Errorf("upstream headers %v", h)
			}
		})
	}
}

// TestNginxForwardAuthForgedXFF runs docs/examples/nginx.conf in front of
// a Gatehouse that trusts nginx (--trusted-proxies, as docs/deploy.md
// requires; without it every client is nginx and allow-lists mean
// nothing): the example's check locations append the peer to
// X-Forwarded-For, so a client's own forged hop is never the right-most
// untrusted one. An API token restricted to 203.0.113.7 is refused for a
// client at 127.0.0.2, also when it claims that address in
// X-Forwarded-For, and the API is not reached (the example passed the
// client's list unchanged, and the claim was believed).
func TestNginxForwardAuthForgedXFF(t *testing.T) {
	up := newUpstream(t)
	trusted, _ := httpx.ParseTrustedProxies("127.0.0.1")
	env := servertest.Start(t, func(c *server.Config) { c.TrustedProxies = trusted })
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	tok, _ := apiTokenWith(t, env, admin, map[string]any{"name": "office", "allowed_ips": []string{"203.0.113.7"}})

	listen := startNginx(t, "docs/examples/nginx.conf", map[string]string{
		"__GATEHOUSE__": strings.TrimPrefix(env.URL, "http://"), "__UPSTREAM__": strings.TrimPrefix(up.URL, "http://"),
	})
	attacker := clientFrom("127.0.0.2", nil) // neither trusted nor allowed

	// Without a forged header: refused, as it should be.
	r := send(t, attacker, "GET", "http://"+listen+"/orders/1", "", nil, "X-API-Token", tok)
	servertest.Expect(t, r, 403, "ip_not_allowed")
	hits := up.hits.Load()
	// Claiming the allowed address in X-Forwarded-For.
	r = send(t, attacker, "GET", "http://"+listen+"/orders/1", "", nil, "X-API-Token", tok, "X-Forwarded-For", "203.0.113.7")
	if r.Status != 403 || up.hits.Load() != hits {
		t.Fatalf("a client at 127.0.0.2 claiming X-Forwarded-For 203.0.113.7 got %d and reached the API (%d hits): the allow-list was bypassed",
			r.Status, up.hits.Load()-hits)
	}
}
