package e2e

// Attacks on long-lived and streaming exchanges through the gateway
// (--upstream) and forward auth: never-ending Server-Sent Events, MCP
// streamable-HTTP answers, slow clients, WebSocket and h2c upgrades,
// pipelining and request smuggling.

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// streamSeen is one request the test upstream received.
type streamSeen struct {
	Method, Path string
	Header       http.Header
	Trailer      http.Header
}

// streamUp is an upstream that streams.
type streamUp struct {
	*httptest.Server
	mu       sync.Mutex
	seen     []streamSeen
	active   atomic.Int64 // streaming handlers still running
	ended    chan time.Time
	wsMsgs   atomic.Int64
	upgrades atomic.Int64
}

func streamUpstream(t *testing.T) *streamUp {
	u := &streamUp{ended: make(chan time.Time, 64)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, streamSeen{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		u.mu.Unlock()
		switch {
		case r.URL.Path == "/sse" || r.URL.Path == "/mcp":
			if r.URL.Path == "/mcp" {
				io.Copy(io.Discard, r.Body)
			}
			u.active.Add(1)
			defer func() { u.active.Add(-1); u.ended <- time.Now() }()
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			// The upstream's own limit headers must not reach the client.
			w.Header().Set("RateLimit", `"up";r=999;t=1`)
			w.Header().Set("X-RateLimit-Burst-Remaining", "999")
			w.WriteHeader(200)
			rc := http.NewResponseController(w)
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "id: %d\ndata: {\"n\":%d}\n\n", i, i); err != nil {
					return
				}
				rc.Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(150 * time.Millisecond):
				}
			}
		case r.URL.Path == "/flood":
			u.active.Add(1)
			defer func() { u.active.Add(-1); u.ended <- time.Now() }()
			w.Header().Set("Content-Type", "application/octet-stream")
			buf := make([]byte, 64<<10)
			rc := http.NewResponseController(w)
			for {
				if _, err := w.Write(buf); err != nil {
					return
				}
				rc.Flush()
				if r.Context().Err() != nil {
					return
				}
			}
		case r.URL.Path == "/ws" || r.URL.Path == "/h2c":
			// A lenient upstream: it switches protocols whenever it sees an
			// Upgrade header at all.
			up := r.Header.Get("Upgrade")
			if up == "" {
				w.WriteHeader(426)
				fmt.Fprint(w, "no upgrade arrived")
				return
			}
			hj, ok := w.(http.Hijacker)
			if !ok {
				w.WriteHeader(500)
				return
			}
			c, brw, err := hj.Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			u.upgrades.Add(1)
			sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", up, base64.StdEncoding.EncodeToString(sum[:]))
			brw.Flush()
			// Echo lines (a stand-in for frames); each line is one message.
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					return
				}
				u.wsMsgs.Add(1)
				brw.WriteString("echo " + line)
				brw.Flush()
			}
		default:
			io.Copy(io.Discard, r.Body)
			u.mu.Lock()
			for i := len(u.seen) - 1; i >= 0; i-- {
				if u.seen[i].Path == r.URL.Path {
					u.seen[i].Trailer = r.Trailer.Clone()
					break
				}
			}
			u.mu.Unlock()
			fmt.Fprintf(w, "ok %s", r.URL.Path)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *streamUp) requests() []streamSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]streamSeen(nil), u.seen...)
}

func (u *streamUp) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// streamOpen opens a streamed GET (or POST) and returns the response and
// a channel of the lines it reads, closed when the stream ends.
func streamOpen(t *testing.T, method, rawURL, tok string, body string, headers ...string) (*http.Response, <-chan string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() != "" {
				lines <- sc.Text()
			}
		}
	}()
	return resp, lines, func() { cancel(); resp.Body.Close() }
}

// streamDrain reads lines until the stream ends or d passes; it reports
// how many lines arrived and whether the stream ended.
func streamDrain(lines <-chan string, d time.Duration) (n int, ended bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return n, true
			}
			n++
		case <-timer.C:
			return n, false
		}
	}
}

func streamWaitActive(t *testing.T, u *streamUp, want int64, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if u.active.Load() == want {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return u.active.Load() == want
}

// TestStreamSSEEndsAtProxyTimeout opens a never-ending SSE stream
// through the gateway: it is flushed as it goes, carries Gatehouse's
// rate-limit headers only, is counted once, and is cut at --proxy-timeout
// with the upstream's request cancelled (gateway.md: "a proxied exchange
// lasts at most --proxy-timeout").
func TestStreamSSEEndsAtProxyTimeout(t *testing.T) {
	up := streamUpstream(t)
	const pt = 2 * time.Second
	env := servertest.Start(t, func(c *server.Config) { c.Upstream, c.ProxyTimeout = up.URL, pt })
	admin := env.AdminToken()
	start := time.Now()
	resp, lines, stop := streamOpen(t, "GET", env.URL+"/sse", admin, "", "Accept", "text/event-stream")
	defer stop()
	if resp.StatusCode != 200 {
		t.Fatalf("SSE answered %d", resp.StatusCode)
	}
	if v := resp.Header.Values("X-RateLimit-Burst-Remaining"); len(v) != 1 || v[0] == "999" {
		t.Errorf("burst-remaining on the stream = %v: want Gatehouse's value alone", v)
	}
	if v := resp.Header.Values("RateLimit"); len(v) != 1 || strings.Contains(v[0], "up") {
		t.Errorf("RateLimit on the stream = %v", v)
	}
	burst, _ := strconv.Atoi(resp.Header.Get("X-RateLimit-Burst-Remaining"))
	// The first event arrives long before the stream ends: flushed.
	if n, ended := streamDrain(lines, 700*time.Millisecond); n == 0 || ended {
		t.Fatalf("first 700 ms: %d lines, ended %v", n, ended)
	}
	// While the stream flows, another request sees one charge for it.
	r := env.As(admin, "GET", "/other", nil)
	if got, _ := strconv.Atoi(r.Header.Get("X-RateLimit-Burst-Remaining")); got != burst-1 {
		t.Errorf("burst remaining after the stream and one request = %d, want %d", got, burst-1)
	}
	_, ended := streamDrain(lines, pt+4*time.Second)
	took := time.Since(start)
	if !ended {
		t.Fatalf("the SSE stream still flows %s after it began (proxy timeout %s)", took, pt)
	}
	if took < pt-200*time.Millisecond {
		t.Errorf("stream cut after only %s", took)
	}
	if !streamWaitActive(t, up, 0, 2*time.Second) {
		t.Errorf("upstream handler still running after the stream was cut")
	}
	t.Logf("SSE cut after %s (proxy timeout %s)", took, pt)
}

// TestStreamRevokedWhileOpen revokes the credential of an open stream in
// each way (token revoked, API token deleted, user disabled, account
// suspended). The docs promise refusal from the next request; each next
// request must be refused. What the open stream does is logged; it must
// still end at --proxy-timeout.
func TestStreamRevokedWhileOpen(t *testing.T) {
	up := streamUpstream(t)
	const pt = 3 * time.Second
	env := servertest.Start(t, func(c *server.Config) { c.Upstream, c.ProxyTimeout = up.URL, pt })
	op := env.AdminToken()
	accID, accAdmin := env.CreateAccount(op, "Streams", "boss@stream.example", memberPW)
	bobID := env.CreateUser(accAdmin, "bob@stream.example", memberPW)
	servertest.Expect(t, env.As(accAdmin, "PUT", "/v1/extensions/api_tokens", map[string]any{"enabled": true}), 200, "")
	var apiTok struct{ ID, Token string }
	env.As(accAdmin, "POST", "/v1/api-tokens", map[string]any{"name": "stream"}).JSON(t, &apiTok)
	if apiTok.Token == "" {
		t.Fatal("no API token")
	}

	type scenario struct {
		name   string
		tok    string
		header string // "" bearer
		revoke func()
	}
	ann := env.Login("boss@stream.example", memberPW)
	bob := env.Login("bob@stream.example", memberPW)
	carol := env.Login("boss@stream.example", memberPW)
	scenarios := []scenario{
		{"token revoked (RFC 7009)", ann, "", func() {
			r := env.Request("POST", "/oauth/revoke", "token="+url.QueryEscape(ann), "Authorization", "Bearer "+ann, "Content-Type", "application/x-www-form-urlencoded")
			servertest.Expect(t, r, 200, "")
		}},
		{"API token deleted", apiTok.Token, "X-API-Token", func() {
			servertest.Expect(t, env.As(accAdmin, "DELETE", "/v1/api-tokens/"+apiTok.ID, nil), 204, "")
		}},
		{"user disabled", bob, "", func() {
			servertest.Expect(t, env.As(accAdmin, "PATCH", "/v1/users/"+bobID, map[string]any{"status": "disabled"}), 200, "")
		}},
		{"account suspended", carol, "", func() {
			servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+accID, map[string]any{"status": "suspended"}), 200, "")
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var hdr []string
			tok := sc.tok
			if sc.header != "" {
				hdr, tok = []string{sc.header, sc.tok}, ""
			}
			start := time.Now()
			resp, lines, stop := streamOpen(t, "GET", env.URL+"/sse", tok, "", hdr...)
			defer stop()
			if resp.StatusCode != 200 {
				t.Fatalf("stream answered %d", resp.StatusCode)
			}
			if n, _ := streamDrain(lines, 400*time.Millisecond); n == 0 {
				t.Fatal("nothing streamed")
			}
			sc.revoke()
			revokedAt := time.Now()
			// The next request is refused.
			req, _ := http.NewRequest("GET", env.URL+"/after", nil)
			if sc.header != "" {
				req.Header.Set(sc.header, sc.tok)
			} else {
				req.Header.Set("Authorization", "Bearer "+sc.tok)
			}
			r2, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r2.Body.Close()
			if r2.StatusCode != 401 && r2.StatusCode != 403 {
				t.Errorf("next request after revocation answered %d", r2.StatusCode)
			}
			after, ended := streamDrain(lines, 500*time.Millisecond)
			t.Logf("after revocation the open stream delivered %d more lines in 500 ms (ended: %v)", after, ended)
			if !ended {
				_, ended = streamDrain(lines, pt+3*time.Second)
			}
			if !ended {
				t.Errorf("stream of a revoked credential still open %s after revocation", time.Since(revokedAt))
			}
			t.Logf("stream ended %s after it began, %s after revocation", time.Since(start), time.Since(revokedAt))
		})
	}
	streamWaitActive(t, up, 0, 3*time.Second)
}

// TestStreamSlowClient opens a fast stream and never reads it: the
// gateway's per-write deadline (--write-timeout) must cut it well before
// --proxy-timeout, ending the upstream's request ("slow clients cannot
// starve others", SPEC §8; configuration.md "a client that stops ... is
// cut").
func TestStreamSlowClient(t *testing.T) {
	up := streamUpstream(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.ProxyTimeout, c.WriteTimeout, c.ReadTimeout = up.URL, 60*time.Second, time.Second, time.Second
	})
	admin := env.AdminToken()
	addr := strings.TrimPrefix(env.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(c, "GET /flood HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", addr, admin)
	// Never read.
	start := time.Now()
	for up.active.Load() == 0 && time.Since(start) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if up.active.Load() == 0 {
		t.Fatal("the stream never began")
	}
	select {
	case at := <-up.ended:
		t.Logf("stalled client cut after %s", at.Sub(start))
		if at.Sub(start) > 15*time.Second {
			t.Errorf("stalled client held the stream %s (write timeout 1 s)", at.Sub(start))
		}
	case <-time.After(20 * time.Second):
		t.Errorf("a client that reads nothing still holds its stream after 20 s (write timeout 1 s)")
	}
}

// TestStreamMCPStreamableHTTP posts a JSON-RPC request answered with
// text/event-stream (MCP streamable HTTP): the first event arrives at once,
// the identity headers are set and forged ones gone, and the stream ends
// at the proxy timeout.
func TestStreamMCPStreamableHTTP(t *testing.T) {
	up := streamUpstream(t)
	const pt = 2 * time.Second
	env := servertest.Start(t, func(c *server.Config) { c.Upstream, c.ProxyTimeout = up.URL, pt })
	admin := env.AdminToken()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}`
	resp, lines, stop := streamOpen(t, "POST", env.URL+"/mcp", admin, body,
		"Content-Type", "application/json", "Accept", "application/json, text/event-stream",
		"X-Gatehouse-Roles", "admin,operator", "X_Gatehouse_User_Id", "usr_evil", "Mcp-Session-Id", "s1")
	defer stop()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("MCP POST answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n, ended := streamDrain(lines, 500*time.Millisecond); n == 0 || ended {
		t.Fatalf("first events: %d, ended %v", n, ended)
	}
	reqs := up.requests()
	h := reqs[len(reqs)-1].Header
	if h.Get("X-Gatehouse-Roles") != "admin" || h.Get("X_Gatehouse_User_Id") != "" || len(h.Values("X-Gatehouse-User-Id")) != 1 ||
		h.Get("X-Gatehouse-User-Id") == "usr_evil" || h.Get("Authorization") != "" || h.Get("Mcp-Session-Id") != "s1" {
		t.Errorf("upstream headers %v", h)
	}
	if v := resp.Header.Values("X-RateLimit-Burst-Remaining"); len(v) != 1 || v[0] == "999" {
		t.Errorf("limit headers %v", v)
	}
	if _, ended := streamDrain(lines, pt+3*time.Second); !ended {
		t.Errorf("MCP event stream not ended at the proxy timeout")
	}
}

// streamRaw sends raw bytes to addr and reads every answer until the
// connection closes or quiet passes with nothing new.
func streamRaw(t *testing.T, addr, raw string, quiet time.Duration) (statuses []int, bodies []string, tail string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			rest, _ := io.ReadAll(br)
			return statuses, bodies, string(rest)
		}
		var b []byte
		if resp.StatusCode == 101 {
			// Hand the raw connection back as the tail.
			statuses = append(statuses, 101)
			c.SetReadDeadline(time.Now().Add(quiet))
			io.WriteString(c, "one\ntwo\nthree\n")
			buf := make([]byte, 4096)
			var got []byte
			for {
				c.SetReadDeadline(time.Now().Add(quiet))
				n, err := br.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			return statuses, bodies, string(got)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		bodies = append(bodies, string(b))
	}
}

// TestStreamUpgrades sends a WebSocket and an h2c upgrade through the
// gateway, with forged identity headers and a Connection header naming
// Gatehouse's own: a lenient upstream would switch protocols on any
// Upgrade header. Whatever happens, the upstream sees the true identity
// only, nothing forged, and no credential; an unauthenticated upgrade never
// reaches it.
func TestStreamUpgrades(t *testing.T) {
	up := streamUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream, c.ProxyTimeout = up.URL, 2*time.Second })
	admin := env.AdminToken()
	addr := strings.TrimPrefix(env.URL, "http://")

	// Unauthenticated: 401, never at the upstream.
	before := up.count()
	st, _, _ := streamRaw(t, addr, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", time.Second)
	if len(st) == 0 || st[0] != 401 || up.count() != before {
		t.Errorf("unauthenticated upgrade: %v, upstream hits %d→%d", st, before, up.count())
	}

	for _, kind := range []struct{ path, headers string }{
		{"/ws", "Connection: Upgrade, X-Gatehouse-User-Id, X-Real-Ip, X-Request-Id\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"},
		{"/h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"},
		{"/h2c", "Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"},
	} {
		before := up.count()
		upgrades := up.upgrades.Load()
		raw := "GET " + kind.path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin + "\r\n" + kind.headers +
			"X-Gatehouse-Roles: admin,operator\r\nX-Gatehouse-User-Id: usr_evil\r\nx_gatehouse_account_id: acc_evil\r\n\r\n"
		st, _, tail := streamRaw(t, addr, raw, 1500*time.Millisecond)
		t.Logf("%s upgrade (%q): statuses %v, tail %q, upstream switched %d", kind.path, strings.SplitN(kind.headers, "\r\n", 2)[0], st, tail, up.upgrades.Load()-upgrades)
		if up.count() != before+1 {
			t.Errorf("upstream got %d requests for one upgrade", up.count()-before)
			continue
		}
		h := up.requests()[up.count()-1].Header
		if h.Get("X-Gatehouse-User-Id") == "usr_evil" || len(h.Values("X-Gatehouse-User-Id")) != 1 ||
			h.Get("X-Gatehouse-Roles") != "admin" || h.Get("X_gatehouse_account_id") != "" || h.Get("Authorization") != "" ||
			h.Get("X-Real-Ip") != "127.0.0.1" || h.Get("X-Request-Id") == "" {
			t.Errorf("upstream headers on an upgrade: %v", h)
		}
		if len(st) > 0 && st[0] == 101 {
			msgs := up.wsMsgs.Load()
			t.Logf("upgraded: %d messages tunnelled through one admission", msgs)
		}
	}
}

// TestStreamForwardAuthUpgrade: forward auth refuses a check of an
// Upgrade request carrying a client X-Gatehouse-* header, and answers the
// clean one.
func TestStreamForwardAuthUpgrade(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	addr := strings.TrimPrefix(env.URL, "http://")
	st, bodies, _ := streamRaw(t, addr, "GET /v1/auth/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+admin+
		"\r\nConnection: Upgrade, X-Gatehouse-Roles\r\nUpgrade: websocket\r\nX-Gatehouse-Roles: admin\r\nX-Original-Method: GET\r\nX-Original-URI: /ws\r\n\r\n", time.Second)
	if len(st) == 0 || st[0] != 400 || !strings.Contains(bodies[0], "invalid_request") {
		t.Errorf("forged header on an upgrade check: %v %v", st, bodies)
	}
	st, _, _ = streamRaw(t, addr, "GET /v1/auth/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+admin+
		"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Original-Method: GET\r\nX-Original-URI: /ws\r\n\r\n", time.Second)
	if len(st) == 0 || st[0] != 200 {
		t.Errorf("clean upgrade check: %v", st)
	}
}

// TestStreamPipelining sends more pipelined requests on one connection
// than the user's burst: each is admitted or refused on its own, exactly
// the burst reaches the upstream, and an unauthenticated request pipelined
// behind authenticated ones never does.
func TestStreamPipelining(t *testing.T) {
	up := streamUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	admin := env.AdminToken()
	id := env.CreateUser(admin, "pipe@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+id, map[string]any{"rate_limit": map[string]any{"daily": 1000, "burst": 3, "burst_window_seconds": 60}}), 200, "")
	tok := env.Login("pipe@example.com", memberPW) // does not count: not an authenticated API request
	addr := strings.TrimPrefix(env.URL, "http://")
	before := up.count()
	var raw strings.Builder
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&raw, "GET /p%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", i, tok)
	}
	raw.WriteString("GET /anon HTTP/1.1\r\nHost: x\r\n\r\n")
	raw.WriteString("GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	st, _, _ := streamRaw(t, addr, raw.String(), 2*time.Second)
	t.Logf("pipelined statuses %v", st)
	reached := up.count() - before
	ok := 0
	for _, s := range st {
		if s == 200 {
			ok++
		}
	}
	if len(st) != 8 {
		t.Errorf("got %d answers for 8 pipelined requests", len(st))
	}
	if reached > 3 || ok > 3 {
		t.Errorf("burst 3: %d pipelined requests reached the upstream (%d answered 200)", reached, ok)
	}
	for _, s := range up.requests()[before:] {
		if s.Header.Get("X-Gatehouse-User-Id") != id {
			t.Errorf("request %s reached the upstream without the user's identity: %v", s.Path, s.Header)
		}
	}
}

// TestStreamSmuggling sends framing attacks as raw bytes: every request
// the upstream receives was admitted (carries identity), and none is the
// smuggled one.
func TestStreamSmuggling(t *testing.T) {
	up := streamUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	admin := env.AdminToken()
	addr := strings.TrimPrefix(env.URL, "http://")
	auth := "Authorization: Bearer " + admin + "\r\n"
	smug := "GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Gatehouse-Roles: admin\r\n\r\n"
	chunkedSmug := "0\r\n\r\n" + smug
	cases := []struct{ name, raw string }{
		{"CL.TE", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + strconv.Itoa(len(chunkedSmug)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedSmug},
		{"TE.CL", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smug), smug)},
		{"TE obfuscated", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + strconv.Itoa(len(chunkedSmug)) + "\r\nTransfer-Encoding: xchunked\r\n\r\n" + chunkedSmug},
		{"TE list", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + strconv.Itoa(len(chunkedSmug)) + "\r\nTransfer-Encoding: identity, chunked\r\n\r\n" + chunkedSmug},
		{"TE space before colon", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + strconv.Itoa(len(chunkedSmug)) + "\r\nTransfer-Encoding : chunked\r\n\r\n" + chunkedSmug},
		{"TE obs-fold", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + strconv.Itoa(len(chunkedSmug)) + "\r\nX-Foo: bar\r\n Transfer-Encoding: chunked\r\n\r\n" + chunkedSmug},
		{"obs-fold identity", "GET /b HTTP/1.1\r\nHost: x\r\n" + auth + "X-Foo: bar\r\n X-Gatehouse-Roles: admin\r\n\tX-Gatehouse-User-Id: usr_evil\r\n\r\n"},
		{"two CL", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 0\r\nContent-Length: " + strconv.Itoa(len(smug)) + "\r\n\r\n" + smug},
		{"chunk ext", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n5;ext=\"0\r\n\r\nGET\"\r\nhello\r\n0;a=b\r\n\r\n"},
		{"chunk ext bare LF", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n5;x\nhello\r\n0\n\n" + smug},
		{"chunk size overflow", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" + smug},
		{"bare LF request", "POST /a HTTP/1.1\nHost: x\n" + strings.TrimSuffix(auth, "\r\n") + "\nContent-Length: 0\n\n" + smug},
		{"chunked trailer identity", "POST /a HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nTrailer: X-Gatehouse-Roles\r\n\r\n5\r\nhello\r\n0\r\nX-Gatehouse-Roles: admin\r\nAuthorization: Bearer x\r\n\r\n"},
		{"HTTP/1.0 TE", "POST /a HTTP/1.0\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nContent-Length: " + strconv.Itoa(len(chunkedSmug)) + "\r\n\r\n" + chunkedSmug},
	}
	for _, tc := range cases {
		before := up.count()
		st, _, _ := streamRaw(t, addr, tc.raw, 800*time.Millisecond)
		reqs := up.requests()[before:]
		var paths []string
		for _, r := range reqs {
			paths = append(paths, r.Method+" "+r.Path)
			if r.Path == "/smuggled" {
				t.Errorf("%s: the smuggled request reached the upstream: %v", tc.name, r.Header)
			}
			if r.Header.Get("X-Gatehouse-Account-Id") == "" || r.Header.Get("X-Gatehouse-Roles") != "admin" ||
				len(r.Header.Values("X-Gatehouse-Roles")) != 1 || r.Header.Get("X-Gatehouse-User-Id") == "usr_evil" {
				t.Errorf("%s: %s %s reached the upstream with headers %v", tc.name, r.Method, r.Path, r.Header)
			}
			for name := range r.Trailer {
				if v := strings.Join(r.Trailer[name], ","); v != "" && (strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-gatehouse-") || strings.EqualFold(name, "Authorization")) {
					t.Errorf("%s: client trailer %s: %q reached the upstream", tc.name, name, r.Trailer[name])
				}
			}
			for name, vs := range r.Header {
				for _, v := range vs {
					if strings.Contains(strings.ToLower(v), "x-gatehouse") {
						t.Logf("%s: upstream header %s: %q (a folded line, one value)", tc.name, name, v)
					}
				}
			}
		}
		t.Logf("%-24s gateway %v upstream %v", tc.name, st, paths)
	}
}

func streamMetrics(t *testing.T, env *servertest.Env, prefix string) (sum float64, lines []string) {
	t.Helper()
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, prefix) {
			lines = append(lines, l)
			if f := strings.Fields(l); len(f) == 2 {
				v, _ := strconv.ParseFloat(f[1], 64)
				sum += v
			}
		}
	}
	return sum, lines
}

// TestStreamMalformedBodyIs4xx sends a proxied request whose chunked body
// is malformed (the client's fault, the upstream healthy): SPEC §8 "Bad
// input of any kind gets a clear 4xx JSON error, never a 5xx"; a 502 is
// for "an upstream that does not answer" (gateway.md).
func TestStreamMalformedBodyIs4xx(t *testing.T) {
	up := streamUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	admin := env.AdminToken()
	addr := strings.TrimPrefix(env.URL, "http://")
	before, _ := streamMetrics(t, env, "gatehouse_http_server_errors_total")
	for name, body := range map[string]string{
		"bad chunk size":      "zz\r\nhello\r\n0\r\n\r\n",
		"chunk size overflow": "10000000000000005\r\nhello\r\n0\r\n\r\n",
		"bare LF chunk line":  "5\nhello\r\n0\r\n\r\n",
		"missing CRLF":        "5\r\nhelloX0\r\n\r\n",
	} {
		st, bodies, _ := streamRaw(t, addr, "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+admin+
			"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+body, time.Second)
		if len(st) == 0 || st[0] < 400 || st[0] >= 500 {
			t.Errorf("%s: malformed client body answered %v %v, want 4xx", name, st, bodies)
		}
	}
	after, lines := streamMetrics(t, env, "gatehouse_http_server_errors_total")
	if after != before {
		t.Errorf("server errors counted for client input: %v → %v %v", before, after, lines)
	}
}

// TestStreamClientGoneNotServerError: a client that goes away in the
// middle of a proxied upload or stream is "logged with status 499 ...,
// never as a server error" (deploy.md, failure table; design.md).
func TestStreamClientGoneNotServerError(t *testing.T) {
	up := streamUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	admin := env.AdminToken()
	addr := strings.TrimPrefix(env.URL, "http://")
	before, _ := streamMetrics(t, env, "gatehouse_http_server_errors_total")
	// An upload abandoned half-way.
	for _, te := range []string{"Content-Length: 100000\r\n", "Transfer-Encoding: chunked\r\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		part := strings.Repeat("a", 100)
		if strings.HasPrefix(te, "Transfer") {
			part = "64\r\n" + part + "\r\n"
		}
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n%s", admin, te, part)
		time.Sleep(300 * time.Millisecond)
		c.Close()
	}
	// A stream left half-way.
	_, lines, stop := streamOpen(t, "GET", env.URL+"/sse", admin, "")
	streamDrain(lines, 400*time.Millisecond)
	stop()
	time.Sleep(700 * time.Millisecond)
	after, _ := streamMetrics(t, env, "gatehouse_http_server_errors_total")
	_, reqLines := streamMetrics(t, env, "gatehouse_http_requests_total")
	t.Logf("requests: %v", reqLines)
	if after != before {
		t.Errorf("a client going away was counted as a server error: gatehouse_http_server_errors_total %v → %v", before, after)
	}
}

// TestStreamAbortedStreamsCounted: an SSE stream cut at the proxy
// timeout, and one its client leaves, are still requests: "Every request
// has one line" (deploy.md, Logs), "Every API request is counted once ...
// served (admitted, whatever it answered)" (usage.md), and the metrics
// count every request by route and status (api.md).
func TestStreamAbortedStreamsCounted(t *testing.T) {
	up := streamUpstream(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.ProxyTimeout, c.UsageFlushInterval = up.URL, time.Second, 200*time.Millisecond
	})
	admin := env.AdminToken()
	id := env.CreateUser(admin, "streamer@example.com", memberPW)
	tok := env.Login("streamer@example.com", memberPW)
	unmatched := func() float64 {
		n, _ := streamMetrics(t, env, `gatehouse_http_requests_total{route="unmatched"`)
		return n
	}
	before := unmatched()
	// One plain proxied request, for comparison.
	r, err := http.NewRequest("GET", env.URL+"/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// A stream cut at the proxy timeout.
	_, lines, stop := streamOpen(t, "GET", env.URL+"/sse", tok, "")
	if _, ended := streamDrain(lines, 4*time.Second); !ended {
		t.Fatal("stream not cut")
	}
	stop()
	// A stream its client leaves.
	_, lines, stop = streamOpen(t, "GET", env.URL+"/sse", tok, "")
	streamDrain(lines, 300*time.Millisecond)
	stop()
	time.Sleep(time.Second)
	got := unmatched() - before
	if got != 3 {
		t.Errorf("metrics counted %v proxied requests of 3 (a plain one, a stream cut at the proxy timeout, a stream its client left)", got)
	}
	var usage struct {
		Data []struct {
			Served int `json:"served"`
		} `json:"data"`
	}
	env.As(admin, "GET", "/v1/usage?group_by=user&user_id="+id, nil).JSON(t, &usage)
	served := 0
	for _, d := range usage.Data {
		served += d.Served
	}
	if served != 3 {
		t.Errorf("usage counts %d served requests for the user, want 3 (each stream admitted and charged once)", served)
	}
}
