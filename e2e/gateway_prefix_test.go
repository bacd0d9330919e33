package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestGatewayManagementPrefix puts Gatehouse in front of an API that has
// its own /v1/users, /v1/workspaces and /v1/metadata paths: with
// --management-prefix /gatehouse those reach the API, authenticated, while
// Gatehouse's own API and admin UI answer under /gatehouse and the OAuth,
// discovery and health paths stay where they are.
func TestGatewayManagementPrefix(t *testing.T) {
	up := newUpstream(t)
	// The console beside the API, to show its paths under the prefix (on
	// its own origin: TestConsoleOwnOrigin).
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.ManagementPrefix, c.ConsoleSameOrigin = up.URL, "/gatehouse", true
	})
	// The token endpoints stay at the root.
	admin := env.AdminToken()
	var me map[string]any

	t.Run("the API's own paths go upstream, authenticated", func(t *testing.T) {
		for _, p := range []string{"/v1/users/me/settings", "/v1/workspaces", "/v1/metadata/workspace", "/v1/me", "/v1/auth/check", "/admin", "/gatehouse-not-ours"} {
			hits := up.hits.Load()
			servertest.Expect(t, env.Request("GET", p, nil), 401, "unauthorized")
			if up.hits.Load() != hits {
				t.Fatalf("%s: unauthenticated request reached the upstream", p)
			}
			r := env.As(admin, "GET", p, nil, "X-Request-Id", "trace-"+strconv.Itoa(len(p)))
			servertest.Expect(t, r, 200, "")
			if !strings.Contains(string(r.Body), fmt.Sprintf(`"path":%q`, p)) {
				t.Fatalf("%s: answered by %s", p, r.Body)
			}
			h := up.last()
			if h.Get("X-Gatehouse-User-Id") == "" || h.Get("Authorization") != "" {
				t.Fatalf("%s: upstream headers %v", p, h)
			}
			// The client is no trusted proxy: Gatehouse's own id goes upstream.
			if id := r.Header.Get("X-Request-Id"); id == "" || id == "trace-"+strconv.Itoa(len(p)) || h.Get("X-Request-Id") != id || len(r.Header.Values("X-Request-Id")) != 1 {
				t.Fatalf("%s: request id %q upstream, %v in the answer", p, h.Get("X-Request-Id"), r.Header.Values("X-Request-Id"))
			}
		}
	})

	t.Run("Gatehouse's own paths sit under the prefix", func(t *testing.T) {
		hits := up.hits.Load()
		r := env.As(admin, "GET", "/gatehouse/v1/me", nil)
		servertest.Expect(t, r, 200, "")
		me = r.Map(t)
		if me["user"] == nil {
			t.Fatalf("/gatehouse/v1/me: %s", r.Body)
		}
		servertest.Expect(t, env.As(admin, "POST", "/gatehouse/v1/workspaces", map[string]string{"name": "W"}), 201, "")
		servertest.Expect(t, env.As(admin, "GET", "/gatehouse/v1/metadata/workspace", nil), 200, "")
		r = env.As(admin, "GET", "/gatehouse/v1/auth/check", nil)
		servertest.Expect(t, r, 200, "")
		if r.Header.Get("X-Gatehouse-User-Id") == "" {
			t.Fatalf("forward auth under the prefix: %v", r.Header)
		}
		servertest.Expect(t, env.As(admin, "DELETE", "/gatehouse/v1/me", nil), 405, "method_not_allowed")
		servertest.Expect(t, env.As(admin, "GET", "/gatehouse/v1/nothing", nil), 404, "not_found")
		servertest.Expect(t, env.As(admin, "GET", "/gatehouse", nil), 404, "not_found")
		servertest.Expect(t, env.Request("GET", "/healthz", nil), 200, "")
		servertest.Expect(t, env.Request("GET", "/readyz", nil), 200, "")
		servertest.Expect(t, env.Request("GET", "/metrics", nil), 200, "")
		checkMetadata(t, env.Client, env.URL, "", env.URL)
		servertest.Expect(t, env.Request("POST", "/v1/oauth/token", "grant_type=client_credentials", "Content-Type", "application/x-www-form-urlencoded"), 401, "invalid_client")
		if up.hits.Load() != hits {
			t.Fatal("a Gatehouse path reached the upstream")
		}
	})

	t.Run("admin UI works under the prefix", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		resp, err := c.Get(env.URL + "/gatehouse/admin")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		if resp.Request.URL.Path != "/gatehouse/admin/login" {
			t.Fatalf("/gatehouse/admin went to %s", resp.Request.URL)
		}
		if !strings.Contains(body, `action="/gatehouse/admin/login"`) || !strings.Contains(body, `href="/gatehouse/admin/static/admin.css"`) {
			t.Fatalf("login page links: %s", body)
		}
		ck := adminSessionCookie(t, clientFrom("127.0.0.1", nil), env.URL+"/gatehouse")
		if ck.Path != "/gatehouse/admin" {
			t.Fatalf("session cookie path %q", ck.Path)
		}
		resp, err = c.PostForm(env.URL+"/gatehouse/admin/login", url.Values{"csrf": {between(body, `name="csrf" value="`, `"`)},
			"email": {servertest.AdminEmail}, "password": {servertest.AdminPassword}})
		if err != nil {
			t.Fatal(err)
		}
		body = readAll(resp)
		if resp.Request.URL.Path != "/gatehouse/admin/users" || !strings.Contains(body, `href="/gatehouse/admin/api-access"`) {
			t.Fatalf("after sign-in at %s: %.300s", resp.Request.URL, body)
		}
		css, err := c.Get(env.URL + "/gatehouse/admin/static/admin.css")
		if err != nil || css.StatusCode != 200 {
			t.Fatalf("stylesheet: %v", err)
		}
		css.Body.Close()
		// A form posts and redirects within the prefix.
		resp, err = c.PostForm(env.URL+"/gatehouse/admin/users", url.Values{"csrf": {between(body, `name="csrf" value="`, `"`)},
			"email": {"ui@example.com"}, "name": {"UI"}, "password": {memberPW}})
		if err != nil {
			t.Fatal(err)
		}
		body = readAll(resp)
		if resp.Request.URL.Path != "/gatehouse/admin/users" || !strings.Contains(body, "Created ui@example.com") {
			t.Fatalf("after creating a user at %s: %.300s", resp.Request.URL, body)
		}
	})

	t.Run("admin UI in a browser", func(t *testing.T) {
		ctx := browser(t)
		var loc, title string
		run(t, ctx,
			chromedp.Navigate(env.URL+"/gatehouse/admin"),
			chromedp.WaitVisible("#email", chromedp.ByID),
			chromedp.SendKeys("#email", servertest.AdminEmail, chromedp.ByID),
			chromedp.SendKeys("#password", servertest.AdminPassword, chromedp.ByID),
			chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
			chromedp.WaitVisible("header nav", chromedp.ByQuery),
			chromedp.Click(`//nav//a[normalize-space()="API access"]`, chromedp.BySearch),
			chromedp.WaitVisible(`//h1[contains(., "API access")]`, chromedp.BySearch),
			chromedp.Location(&loc),
			chromedp.Title(&title),
		)
		if !strings.HasSuffix(loc, "/gatehouse/admin/api-access") {
			t.Fatalf("at %s (%s)", loc, title)
		}
		run(t, ctx, submit("Log out"), chromedp.WaitVisible("#email", chromedp.ByID), chromedp.Location(&loc))
		if !strings.HasSuffix(loc, "/gatehouse/admin/login") {
			t.Fatalf("after logout at %s", loc)
		}
	})
}

// rawUpstream is an upstream that keeps the head of every request exactly
// as its bytes arrived, before any parser could canonicalise header names.
type rawUpstream struct {
	addr  string
	mu    sync.Mutex
	heads []string
}

func newRawUpstream(t *testing.T) *rawUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	u := &rawUpstream{addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(conn)
		}
	}()
	return u
}

// serve reads one request head (and its body, by Content-Length), keeps
// the head and answers 200.
func (u *rawUpstream) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	var head bytes.Buffer
	length := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		}
	}
	io.CopyN(io.Discard, br, int64(length))
	u.mu.Lock()
	u.heads = append(u.heads, head.String())
	u.mu.Unlock()
	io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
}

func (u *rawUpstream) last() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.heads) == 0 {
		return ""
	}
	return u.heads[len(u.heads)-1]
}

// rawRequest sends head (lines without CRLF) to addr as bytes and returns
// the status of the answer.
func rawRequest(t *testing.T, addr string, head []string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, strings.Join(head, "\r\n")+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGatewayIdentityHeadersCannotBeForged sends spoofed identity headers
// as raw bytes — underscores, odd case, names listed in Connection — with a
// bearer token and with an API token without the act-as header, to an
// upstream that records the raw bytes it receives: none of them arrives,
// and each identity header arrives once, with Gatehouse's value.
func TestGatewayIdentityHeadersCannotBeForged(t *testing.T) {
	up := newRawUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = "http://" + up.addr })
	admin := env.AdminToken()
	id := env.CreateUser(admin, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)
	apiTok := withAPIToken(t, env, admin)
	addr := strings.TrimPrefix(env.URL, "http://")

	spoofs := []string{
		"X_Gatehouse_Roles: forged-roles",
		"x_gatehouse_user_id: forged-user",
		"X-GATEHOUSE-USER-EMAIL: forged-email",
		"x-Gatehouse_Account-ID: forged-account",
		"X_GATEHOUSE_AUTH_METHOD: forged-method",
		"X-Gatehouse-Scopes: forged-scopes",
		"x-gatehouse-: forged-empty",
		"Connection: keep-alive, X-Forged-Listed, x_forged_other",
		"X-Forged-Listed: forged-listed",
		"x_forged_other: forged-other",
	}
	for _, tc := range []struct {
		name       string
		credential string
		want       map[string]string // identity headers that must arrive
	}{
		{"bearer token", "Authorization: Bearer " + ann, map[string]string{"x-gatehouse-user-id": id, "x-gatehouse-roles": "", "x-gatehouse-user-email": "ann@example.com", "x-gatehouse-auth-method": "password"}},
		{"API token without act-as", "X-API-Token: " + apiTok.Token, map[string]string{"x-gatehouse-roles": "admin", "x-gatehouse-auth-method": "api_token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := append([]string{"GET /orders/7 HTTP/1.1", "Host: api.example", tc.credential}, spoofs...)
			if status := rawRequest(t, addr, head); status != 200 {
				t.Fatalf("status %d", status)
			}
			got := up.last()
			if strings.Contains(strings.ToLower(got), "forged") {
				t.Fatalf("a spoofed header reached the upstream:\n%s", got)
			}
			if strings.Contains(got, ann) || strings.Contains(got, apiTok.Token) {
				t.Fatalf("a credential reached the upstream:\n%s", got)
			}
			seen := map[string]string{}
			for _, line := range strings.Split(got, "\r\n")[1:] {
				name, value, ok := strings.Cut(line, ":")
				if !ok {
					continue
				}
				norm := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
				if !strings.HasPrefix(norm, "x-gatehouse-") {
					continue
				}
				if _, dup := seen[norm]; dup {
					t.Fatalf("%s arrived twice:\n%s", norm, got)
				}
				seen[norm] = strings.TrimSpace(value)
			}
			for name, want := range tc.want {
				if v, ok := seen[name]; !ok || (want != "" && v != want) {
					t.Errorf("%s = %q (sent: %v), want %q", name, v, ok, want)
				}
			}
		})
	}
}

// slowReader yields n chunks of size bytes (at most), one every gap.
type slowReader struct {
	n, size int
	gap     time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.gap)
	s.n--
	k := min(s.size, len(p))
	clear(p[:k])
	return k, nil
}

// TestGatewayLongExchangesOutliveServerTimeouts shortens the server's read
// and write timeouts to 2 s and streams an upload and a download that each
// take 6 s through the gateway: the proxied exchanges are not cut, because
// each read and write has its own deadline instead of one for the whole
// request. (The same property lets a 90 s upload pass the default 30 s and
// 60 s timeouts.) Gatehouse's own routes keep the whole-request limit, and
// a proxied upload that stalls for longer than the read timeout is cut.
func TestGatewayLongExchangesOutliveServerTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 20 s")
	}
	const timeout = 2 * time.Second
	var mu sync.Mutex
	var received []int64
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/download" {
			// 30 chunks, one every 200 ms: 6 s of answer.
			for i := 0; i < 30; i++ {
				fmt.Fprintf(w, "chunk %02d\n", i)
				http.NewResponseController(w).Flush()
				time.Sleep(200 * time.Millisecond)
			}
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		mu.Lock()
		received = append(received, n)
		mu.Unlock()
		fmt.Fprintf(w, `{"bytes":%d}`, n)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go upstream.Serve(ln)
	t.Cleanup(func() { upstream.Close() })
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.ReadTimeout, c.WriteTimeout = "http://"+ln.Addr().String(), timeout, timeout
	})
	tok := env.AdminToken()
	do := func(method, path string, body io.Reader) (*http.Response, []byte, time.Duration, error) {
		req, _ := http.NewRequest(method, env.URL+path, body)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := env.Client.Do(req)
		if err != nil {
			return nil, nil, time.Since(start), err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		return resp, data, time.Since(start), err
	}

	t.Run("6 s upload", func(t *testing.T) {
		resp, body, took, err := do("PUT", "/upload", &slowReader{n: 30, size: 16 << 10, gap: 200 * time.Millisecond})
		if err != nil || resp.StatusCode != 200 || string(body) != fmt.Sprintf(`{"bytes":%d}`, 30*16<<10) {
			t.Fatalf("upload: %v %v %s", err, resp, body)
		}
		if took < 3*timeout {
			t.Fatalf("the upload took only %s", took)
		}
	})
	t.Run("6 s download", func(t *testing.T) {
		resp, body, took, err := do("GET", "/download", nil)
		if err != nil || resp.StatusCode != 200 || strings.Count(string(body), "chunk") != 30 {
			t.Fatalf("download: %v %v %q", err, resp, body)
		}
		if took < 3*timeout {
			t.Fatalf("the download took only %s", took)
		}
	})
	t.Run("Gatehouse's own routes keep the whole-request timeout", func(t *testing.T) {
		// A body that takes 4 s to arrive, to a Gatehouse route.
		pr, pw := io.Pipe()
		go func() {
			io.WriteString(pw, `{"name":"`)
			for i := 0; i < 20; i++ {
				time.Sleep(200 * time.Millisecond)
				if _, err := io.WriteString(pw, "x"); err != nil {
					return
				}
			}
			io.WriteString(pw, `"}`)
			pw.Close()
		}()
		resp, body, _, err := do("POST", "/v1/workspaces", pr)
		pr.CloseWithError(io.ErrClosedPipe)
		if err == nil && resp.StatusCode == 201 {
			t.Fatalf("a 4 s request body outlived the 2 s read timeout: %s", body)
		}
	})
	t.Run("a stalled upload is cut", func(t *testing.T) {
		mu.Lock()
		before := len(received)
		mu.Unlock()
		pr, pw := io.Pipe()
		go func() {
			pw.Write(make([]byte, 1<<10))
			time.Sleep(3 * timeout) // no progress for longer than the read timeout
			pw.Write(make([]byte, 1<<10))
			pw.Close()
		}()
		resp, body, took, err := do("PUT", "/upload", pr)
		pr.CloseWithError(io.ErrClosedPipe)
		if err == nil && resp.StatusCode == 200 {
			t.Fatalf("a stalled upload went through after %s: %s", took, body)
		}
		if took > 3*timeout-time.Second/2 {
			t.Fatalf("the stalled upload was cut only after %s", took)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, n := range received[before:] {
			if n == 2<<10 {
				t.Fatal("the upstream received the whole stalled upload")
			}
		}
	})
}

// TestGatewayUnderscoreAddressHeaders: what the gateway decides for the
// upstream — the client's address and scheme in X-Real-Ip,
// X-Forwarded-For and X-Forwarded-Proto, the request id — reaches it in
// Gatehouse's spelling only. A client's X_Real_Ip, X_Forwarded_For,
// x_forwarded_proto, X_Request_Id and True_Client_Ip go no further: CGI,
// WSGI, PHP and Rack read them as the same headers, and a WSGI server
// such as Werkzeug joins the two spellings ("127.0.0.1,10.0.0.2"), whose
// right-most hop a reader such as ProxyFix then takes for the client.
func TestGatewayUnderscoreAddressHeaders(t *testing.T) {
	up := newRawUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = "http://" + up.addr })
	tok := env.AdminToken()
	a := sendRaw(t, strings.TrimPrefix(env.URL, "http://"), "GET", "/orders/1", "Authorization", "Bearer "+tok,
		"X_Real_Ip", "10.0.0.1", "X_Forwarded_For", "10.0.0.2", "x_forwarded_proto", "https", "True_Client_Ip", "10.0.0.3",
		"X_Request_Id", "forged-id", "X-Original-URL", "/admin", "X_Rewrite_Url", "/admin")
	if a.Status != 200 {
		t.Fatalf("status %d %s", a.Status, a.Body)
	}
	got := up.last()
	for name, want := range map[string]int{"X-Real-Ip": 1, "X-Forwarded-For": 1, "X-Forwarded-Proto": 1, "X-Request-Id": 1,
		"True-Client-Ip": 0, "X-Original-Url": 0, "X-Rewrite-Url": 0} {
		if lines := headerLines(got, name); len(lines) != want {
			t.Errorf("%s reached the upstream as %q, want %d line (Gatehouse's own)", name, lines, want)
		}
	}
	if strings.Contains(got, "10.0.0.") || strings.Contains(got, "forged-id") {
		t.Errorf("a client-chosen address or request id reached the upstream:\n%s", got)
	}
}

// headerLines returns the header lines of a raw request head whose name,
// with "_" read as "-" and case ignored, is name.
func headerLines(raw, name string) []string {
	var out []string
	for _, line := range strings.Split(raw, "\r\n") {
		n, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if strings.EqualFold(strings.ReplaceAll(n, "_", "-"), name) {
			out = append(out, n+":"+v)
		}
	}
	return out
}
