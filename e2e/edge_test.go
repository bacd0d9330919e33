package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/internal/pathattack"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// seen is one request as an upstream received it.
type seen struct {
	Method, URI string
	Header      http.Header
	// Body is how many bytes of the body arrived; BodyErr why it ended
	// early ("" when it was read to its end).
	Body    int64
	BodyErr string
}

// recorder is an upstream that records every request it receives, reads
// its whole body, and answers 200. On a path ending in /cookies it also
// sets cookies, Gatehouse's names among them; on one ending in /page it
// answers the HTML page(path) gives (nil: a blank page).
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seen
	page func() string
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		s := seen{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: n}
		if err != nil {
			s.BodyErr = err.Error()
		}
		rec.mu.Lock()
		rec.seen = append(rec.seen, s)
		page := rec.page
		rec.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/cookies"):
			for _, c := range []string{"gatehouse_session=planted; Path=/admin", "gatehouse_login_csrf=known; Path=/admin/login",
				"Gatehouse_Flash=x; Path=/", "app_session=kept; Path=/; HttpOnly"} {
				w.Header().Add("Set-Cookie", c)
			}
		case strings.HasSuffix(r.URL.Path, "/page") && page != nil:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"method":%q,"uri":%q}`, r.Method, r.RequestURI)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.seen)
}

func (rec *recorder) last() seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.seen[len(rec.seen)-1]
}

// rawAnswer is an answer read off a raw connection.
type rawAnswer struct {
	Status int
	Header http.Header
	Body   string
}

// sendRaw writes one request to addr byte for byte — the method and
// target exactly as given, which no HTTP client would send as they are —
// with a small JSON body for methods that carry one, and reads the answer.
func sendRaw(t *testing.T, addr, method, target string, headers ...string) rawAnswer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	body := ""
	if m := strings.ToUpper(method); m == "POST" || m == "PUT" {
		body = "{}"
		b.WriteString("Content-Type: application/json\r\nContent-Length: 2\r\n")
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: strings.ToUpper(method)})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return rawAnswer{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

// errorCode returns the "error" of a JSON error body, or "".
func errorCode(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error
}

// attackTokens makes two API tokens: one narrowed to
// pathattack.NarrowScopes, one to pathattack.WideScopes.
func attackTokens(t *testing.T, env *servertest.Env) (narrow, wide string) {
	t.Helper()
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	mk := func(name string, scopes []string) string {
		r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": name, "scopes": scopes})
		servertest.Expect(t, r, 201, "")
		return r.Map(t)["token"].(string)
	}
	return mk("narrow", pathattack.NarrowScopes), mk("wide", pathattack.WideScopes)
}

// TestPathConfusion sends every spelling of the one path-confusion table
// (internal/pathattack) to the built-in gateway and to real nginx running
// docs/examples/nginx.conf, without a credential, with a token lacking
// the rules' scopes and with one holding them, to an upstream that
// records what reaches it. A spelling is refused (400) for everyone, or
// matched to the rule it aims at: then only the token holding the scope
// reaches the upstream, which receives the target exactly as sent and no
// method override.
func TestPathConfusion(t *testing.T) {
	rec := newRecorder(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.GatewayRoutes = rec.URL, writeRoutes(t, "routes.yaml", pathattack.Rules)
	})
	narrow, wide := attackTokens(t, env)
	t.Run("gateway", func(t *testing.T) {
		attackPaths(t, strings.TrimPrefix(env.URL, "http://"), rec, narrow, wide, false)
	})
	t.Run("nginx", func(t *testing.T) {
		listen := startNginx(t, "docs/examples/nginx.conf", map[string]string{
			"__GATEHOUSE__": strings.TrimPrefix(env.URL, "http://"), "__UPSTREAM__": strings.TrimPrefix(rec.URL, "http://"),
		})
		attackPaths(t, listen, rec, narrow, wide, true)
	})
}

func attackPaths(t *testing.T, addr string, rec *recorder, narrow, wide string, nginx bool) {
	for _, c := range pathattack.Cases {
		t.Run(c.Name, func(t *testing.T) {
			for _, who := range []struct{ name, token string }{{"no credential", ""}, {"narrow token", narrow}, {"wide token", wide}} {
				headers := append([]string(nil), c.Header...)
				if who.token != "" {
					headers = append(headers, "X-API-Token", who.token)
				}
				before := rec.count()
				a := sendRaw(t, addr, c.Method, c.Target, headers...)
				reached := rec.count() - before
				want, code := 0, ""
				switch {
				case c.Want == pathattack.Refused:
					want, code = 400, "invalid_request"
					if nginx && c.NginxAnswers {
						code = ""
					}
				case who.token == "":
					want, code = 401, "unauthorized"
				case who.token == narrow:
					want, code = 403, "insufficient_scope"
				default:
					want = 200
				}
				if c.Method == "HEAD" {
					code = "" // no body
				}
				if a.Status != want || (code != "" && errorCode(a.Body) != code) {
					t.Fatalf("%s %s with %s: %d %s, want %d %s", c.Method, c.Target, who.name, a.Status, a.Body, want, code)
				}
				if want != 200 {
					if reached != 0 {
						t.Fatalf("%s %s with %s reached the upstream: %+v", c.Method, c.Target, who.name, rec.last())
					}
					continue
				}
				if reached != 1 {
					t.Fatalf("%s %s with %s: %d requests reached the upstream, want 1", c.Method, c.Target, who.name, reached)
				}
				got := rec.last()
				if got.Method != c.Method || got.URI != c.Target {
					t.Fatalf("%s %s arrived as %s %s", c.Method, c.Target, got.Method, got.URI)
				}
				for name := range got.Header {
					if gateway.IsMethodOverride(name) || name == "X-Api-Token" {
						t.Fatalf("%s %s: %s reached the upstream", c.Method, c.Target, name)
					}
				}
				if !strings.Contains(" "+got.Header.Get("X-Gatehouse-Scopes")+" ", " "+c.Scope+" ") {
					t.Fatalf("%s %s: upstream scopes %q", c.Method, c.Target, got.Header.Get("X-Gatehouse-Scopes"))
				}
			}
		})
	}
}

// TestForwardAuthDefault: with a default in the rules, forward auth asked
// without the original request answers as the gateway does for a path
// matching no rule — not 200 for any credential.
func TestForwardAuthDefault(t *testing.T) {
	rec := newRecorder(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream = rec.URL
		c.GatewayRoutes = writeRoutes(t, "routes.yaml", pathattack.Rules+"default:\n  scopes: [audit:read]\n")
	})
	narrow, wide := attackTokens(t, env)
	for _, tc := range []struct {
		token  string
		status int
		code   string
	}{{narrow, 403, "insufficient_scope"}, {wide, 200, ""}} {
		servertest.Expect(t, env.Request("GET", "/orders/1", nil, "X-API-Token", tc.token), tc.status, tc.code)
		servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil, "X-API-Token", tc.token), tc.status, tc.code)
		servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil, "X-API-Token", tc.token,
			"X-Original-Method", "GET", "X-Original-URI", "/orders/1"), tc.status, tc.code)
	}
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil), 401, "unauthorized")
	// Public stays public, and an ambiguous original request is refused.
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil, "X-Original-Method", "GET", "X-Original-URI", "/public/x"), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil, "X-API-Token", wide,
		"X-Original-Method", "GET", "X-Original-URI", "/public/%252e%252e/ops/x"), 400, "invalid_request")
	servertest.Expect(t, env.Request("GET", "/v1/auth/check", nil, "X-API-Token", wide,
		"X-Forwarded-Method", "get", "X-Forwarded-Uri", "/reports/summary"), 400, "invalid_request")
}

// TestUpstreamCannotSetGatehouseCookies: an upstream's answer, on an
// authenticated route or a public one, never sets a cookie named like
// Gatehouse's; its own cookies pass.
func TestUpstreamCannotSetGatehouseCookies(t *testing.T) {
	rec := newRecorder(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.GatewayRoutes = rec.URL, writeRoutes(t, "routes.yaml", pathattack.Rules)
	})
	_, wide := attackTokens(t, env)
	for _, r := range []*servertest.Response{
		env.Request("GET", "/public/cookies", nil),
		env.Request("GET", "/orders/cookies", nil, "X-API-Token", wide),
	} {
		servertest.Expect(t, r, 200, "")
		if got := r.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != "app_session=kept; Path=/; HttpOnly" {
			t.Fatalf("Set-Cookie through the gateway: %q", got)
		}
	}
}

// consoleEnv starts a gateway in front of rec with configure's console
// settings, logging into logs.
func consoleEnv(t *testing.T, rec *recorder, logs io.Writer, configure func(*server.Config)) *servertest.Env {
	return servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.GatewayRoutes = rec.URL, writeRoutes(t, "routes.yaml", pathattack.Rules)
		if logs != nil {
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		}
		configure(c)
	})
}

// TestConsoleOwnOrigin: with --upstream, the console is served only on its
// own address or host name, never beside the API's pages, and never
// proxied; without either it is not served, and a warning says how to
// serve it; --console-same-origin keeps the old way. A form post a browser
// marks as coming from another origin of the same site is refused.
func TestConsoleOwnOrigin(t *testing.T) {
	c := clientFrom("127.0.0.1", nil)
	get := func(base, path, host string) *servertest.Response {
		t.Helper()
		return send(t, c, "GET", base+path, host, nil)
	}
	t.Run("console-addr", func(t *testing.T) {
		rec := newRecorder(t)
		env := consoleEnv(t, rec, nil, func(c *server.Config) { c.ConsoleAddr = "127.0.0.1:0" })
		console := "http://" + env.Server.ConsoleAddr()
		if env.Server.ConsoleURL() != console+"/admin" {
			t.Fatalf("console URL %q", env.Server.ConsoleURL())
		}
		for _, p := range []string{"/admin", "/admin/login", "/admin/users", "/admin/static/admin.css"} {
			servertest.Expect(t, get(env.URL, p, ""), 404, "not_found")
		}
		if rec.count() != 0 {
			t.Fatal("a console path was proxied")
		}
		if r := get(console, "/admin/login", ""); r.Status != 200 || !strings.Contains(string(r.Body), `name="password"`) {
			t.Fatalf("console sign-in page: %d %.200s", r.Status, r.Body)
		}
		if r := get(console, "/", ""); r.Status != 303 || r.Header.Get("Location") != "/admin" {
			t.Fatalf("console root: %d %v", r.Status, r.Header)
		}
		// The console address serves nothing else: no API, no upstream.
		servertest.Expect(t, get(console, "/v1/me", ""), 404, "not_found")
		servertest.Expect(t, get(console, "/public/x", ""), 404, "not_found")
		if rec.count() != 0 {
			t.Fatal("the console address proxied a request")
		}
		consoleForms(t, console)
	})
	t.Run("console-addr under the management prefix", func(t *testing.T) {
		rec := newRecorder(t)
		env := consoleEnv(t, rec, nil, func(c *server.Config) { c.ConsoleAddr, c.ManagementPrefix = "127.0.0.1:0", "/gatehouse" })
		console := "http://" + env.Server.ConsoleAddr()
		if r := get(console, "/gatehouse/admin/login", ""); r.Status != 200 || !strings.Contains(string(r.Body), `action="/gatehouse/admin/login"`) {
			t.Fatalf("console under the prefix: %d %.200s", r.Status, r.Body)
		}
		if r := get(console, "/", ""); r.Status != 303 || r.Header.Get("Location") != "/gatehouse/admin" {
			t.Fatalf("console root: %d %v", r.Status, r.Header)
		}
		servertest.Expect(t, get(env.URL, "/gatehouse/admin/login", ""), 404, "not_found")
		servertest.Expect(t, get(console, "/admin/login", ""), 404, "not_found")
		if rec.count() != 0 {
			t.Fatal("a console path was proxied")
		}
		consoleForms(t, console+"/gatehouse")
	})
	t.Run("console-host", func(t *testing.T) {
		rec := newRecorder(t)
		env := consoleEnv(t, rec, nil, func(c *server.Config) { c.ConsoleHost = "console.example" })
		if r := get(env.URL, "/admin/login", "Console.Example:8443"); r.Status != 200 {
			t.Fatalf("console for its host: %d %.200s", r.Status, r.Body)
		}
		servertest.Expect(t, get(env.URL, "/admin/login", ""), 404, "not_found")
		servertest.Expect(t, get(env.URL, "/admin/login", "api.example"), 404, "not_found")
		// The console's host never shows the API's pages; others do.
		servertest.Expect(t, get(env.URL, "/public/x", "console.example"), 404, "not_found")
		if rec.count() != 0 {
			t.Fatal("the console's host proxied a request")
		}
		servertest.Expect(t, get(env.URL, "/public/x", "api.example"), 200, "")
		servertest.Expect(t, get(env.URL, "/healthz", "console.example"), 200, "")
	})
	t.Run("neither", func(t *testing.T) {
		rec := newRecorder(t)
		var logs servertest.SyncBuffer
		env := consoleEnv(t, rec, &logs, func(*server.Config) {})
		servertest.Expect(t, get(env.URL, "/admin/login", ""), 404, "not_found")
		if rec.count() != 0 || env.Server.ConsoleURL() != "" {
			t.Fatalf("console proxied or advertised (%q)", env.Server.ConsoleURL())
		}
		if out := logs.String(); !strings.Contains(out, "the admin console is not served") || !strings.Contains(out, "--console-addr") ||
			!strings.Contains(out, "--console-same-origin") {
			t.Fatalf("no warning saying how to serve the console:\n%s", out)
		}
	})
	t.Run("console-same-origin", func(t *testing.T) {
		rec := newRecorder(t)
		env := consoleEnv(t, rec, nil, func(c *server.Config) { c.ConsoleSameOrigin = true })
		if r := get(env.URL, "/admin/login", ""); r.Status != 200 {
			t.Fatalf("console beside the API: %d", r.Status)
		}
		consoleForms(t, env.URL)
	})
}

// consoleForms signs in to the console at base and posts a form: marked by
// the browser as from another origin (Sec-Fetch-Site: same-site or
// cross-site) it is refused and changes nothing, even with the right CSRF
// token; from the console's own origin it is done.
func consoleForms(t *testing.T, base string) {
	t.Helper()
	c := clientFrom("127.0.0.1", nil)
	ck := adminSessionCookie(t, c, base)
	page := send(t, c, "GET", base+"/admin/users", "", nil, "Cookie", ck.Name+"="+ck.Value)
	csrf := between(string(page.Body), `name="csrf" value="`, `"`)
	if csrf == "" {
		t.Fatalf("users page: %d %.300s", page.Status, page.Body)
	}
	post := func(email string, headers ...string) *servertest.Response {
		form := "csrf=" + csrf + "&email=" + email + "&name=X&password=" + strings.ReplaceAll(memberPW, " ", "+")
		return send(t, c, "POST", base+"/admin/users", "", strings.NewReader(form), append([]string{
			"Cookie", ck.Name + "=" + ck.Value, "Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
	}
	for _, site := range []string{"same-site", "cross-site"} {
		if r := post("evil-"+site+"%40example.com", "Sec-Fetch-Site", site, "Origin", "http://127.0.0.1:1"); r.Status != 403 {
			t.Fatalf("post marked %s: %d %.200s", site, r.Status, r.Body)
		}
	}
	if r := post("ok%40example.com", "Sec-Fetch-Site", "same-origin"); r.Status != 303 {
		t.Fatalf("same-origin post: %d %.200s", r.Status, r.Body)
	}
	list := send(t, c, "GET", base+"/admin/users", "", nil, "Cookie", ck.Name+"="+ck.Value)
	if body := string(list.Body); !strings.Contains(body, "ok@example.com") || strings.Contains(body, "evil-") {
		t.Fatalf("users after the posts: %.2000s", body)
	}
}

// slowBody writes a request head to c, then its body one byte every gap
// until the body is complete or a write fails; sent counts the bytes of
// the body written.
func slowBody(c net.Conn, head string, size int, gap time.Duration, sent *int, mu *sync.Mutex) {
	if _, err := io.WriteString(c, head); err != nil {
		return
	}
	for i := 0; i < size; i++ {
		time.Sleep(gap)
		if _, err := c.Write([]byte{'x'}); err != nil {
			return
		}
		mu.Lock()
		*sent++
		mu.Unlock()
	}
}

// TestProxyTimeoutCutsTricklingBody sends a body one byte at a time to a
// public route — no credential, so nothing but the proxy timeout bounds
// it: each byte comes well within the read timeout, yet the exchange is
// cut at --proxy-timeout, answered 504 before the body is complete, and
// the upstream's request ends early.
func TestProxyTimeoutCutsTricklingBody(t *testing.T) {
	rec := newRecorder(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.GatewayRoutes = rec.URL, writeRoutes(t, "routes.yaml", pathattack.Rules)
		c.ProxyTimeout = time.Second
	})
	addr := strings.TrimPrefix(env.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 100 // 100 × 150 ms: 15 s, far beyond the proxy timeout
	var sent int
	var mu sync.Mutex
	go slowBody(c, fmt.Sprintf("POST /public/upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", addr, size), size, 150*time.Millisecond, &sent, &mu)
	c.SetReadDeadline(time.Now().Add(time.Minute)) // a safety net, not the assertion
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	mu.Lock()
	atAnswer := sent
	mu.Unlock()
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 504 || errorCode(string(body)) != "gateway_timeout" {
		t.Fatalf("trickling body answered %d %s", resp.StatusCode, body)
	}
	if atAnswer >= size {
		t.Fatalf("answered only after the whole body (%d bytes) arrived", atAnswer)
	}
	// The upstream got the request and saw its body end early.
	for rec.count() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if got := rec.last(); got.Body >= size || got.BodyErr == "" {
		t.Fatalf("upstream read %d bytes (%q)", got.Body, got.BodyErr)
	}
	t.Logf("cut after %d of %d body bytes", atAnswer, size)
	// A quick proxied request still passes.
	servertest.Expect(t, env.Request("GET", "/public/x", nil), 200, "")
}

// TestMaxConnsPerIP opens more connections from one address than
// --max-conns-per-ip (the default, 256) allows, each with a request
// answered and kept alive: the extra ones are closed unanswered, the
// others are still served, another address is served, and a closed
// connection frees its place.
func TestMaxConnsPerIP(t *testing.T) {
	env := servertest.Start(t)
	addr := strings.TrimPrefix(env.URL, "http://")
	const max, extra = server.DefaultMaxConnsPerIP, 20
	// ask sends GET /healthz on c and reports whether it was answered 200.
	ask := func(c net.Conn, r *bufio.Reader) bool {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
			return false
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	dial := func(ip string) conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return conn{c, bufio.NewReader(c)}
	}
	var served []conn
	closed := 0
	for range max + extra {
		k := dial("127.0.0.1")
		if ask(k.c, k.r) {
			served = append(served, k)
		} else {
			closed++
			k.c.Close()
		}
	}
	if len(served) != max || closed != extra {
		t.Fatalf("%d connections served, %d closed; want %d and %d", len(served), closed, max, extra)
	}
	for i, k := range served {
		if !ask(k.c, k.r) {
			t.Fatalf("kept connection %d no longer served", i)
		}
	}
	if k := dial("127.0.0.2"); !ask(k.c, k.r) {
		t.Fatal("another client address was refused")
	}
	// Closing one frees its place once the server has seen it go.
	served[0].c.Close()
	for i := 0; ; i++ {
		if k := dial("127.0.0.1"); ask(k.c, k.r) {
			break
		}
		if i == 100 {
			t.Fatal("a closed connection never freed its place")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
