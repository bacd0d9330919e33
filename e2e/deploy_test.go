package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testcert"
	"github.com/gatehouse/gatehouse/server"
)

// clientFrom returns an HTTP client whose connections come from the local
// address ip (any of 127.0.0.0/8 works on loopback), so that a test can be
// several clients, trusted proxies or not. roots, when not nil, are the
// certificate authorities it trusts.
func clientFrom(ip string, roots *x509.CertPool) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: dialer.DialContext, ForceAttemptHTTP2: true}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// send sends one request with c; host, when not empty, replaces the Host
// header; headers are name/value pairs.
func send(t *testing.T, c *http.Client, method, rawURL, host string, body io.Reader, headers ...string) *servertest.Response {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// jsonBody encodes v for send.
func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return strings.NewReader(string(b))
}

// adminSessionCookie signs in to the admin UI at base (which may carry the
// management prefix before /admin) with c and returns the session cookie
// as the server set it. headers go with every request.
func adminSessionCookie(t *testing.T, c *http.Client, base string, headers ...string) *http.Cookie {
	t.Helper()
	return adminSessionCookieAs(t, c, base, servertest.AdminEmail, servertest.AdminPassword, headers...)
}

// adminSessionCookieAs signs in to the admin UI as email and returns the
// session cookie.
func adminSessionCookieAs(t *testing.T, c *http.Client, base, email, pw string, headers ...string) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/admin/login", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	csrf := between(body, `name="csrf" value="`, `"`)
	var loginCSRF *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "gatehouse_login_csrf" {
			loginCSRF = ck
		}
	}
	if csrf == "" || loginCSRF == nil {
		t.Fatalf("login page: %d %v %.200s", resp.StatusCode, resp.Header, body)
	}
	form := url.Values{"csrf": {csrf}, "email": {email}, "password": {pw}}
	req, _ = http.NewRequest("POST", base+"/admin/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: loginCSRF.Name, Value: loginCSRF.Value})
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "gatehouse_session" && ck.Value != "" {
			return ck
		}
	}
	t.Fatalf("no session cookie: %d %v", resp.StatusCode, resp.Header)
	return nil
}

// remoteOf creates a user with tok through base using c, and returns the
// address the audit log recorded for that change.
func remoteOf(t *testing.T, env *servertest.Env, c *http.Client, base, tok, email string, headers ...string) string {
	t.Helper()
	r := send(t, c, "POST", base+"/v1/users", "", jsonBody(map[string]any{"email": email, "name": email, "password": memberPW, "roles": []string{}}),
		append([]string{"Authorization", "Bearer " + tok, "Content-Type", "application/json"}, headers...)...)
	servertest.Expect(t, r, 201, "")
	id := r.Map(t)["id"].(string)
	for _, e := range auditEntries(t, env, env.AdminToken()) {
		if e["action"] == "user.create" && e["target_id"] == id {
			return e["remote_addr"].(string)
		}
	}
	t.Fatalf("no audit entry for user %s", id)
	return ""
}

// checkMetadata fetches the OAuth metadata with c from base, naming host in
// the Host header, and checks that every URL in it starts with issuer and
// that host appears nowhere. It returns the answer.
func checkMetadata(t *testing.T, c *http.Client, base, host, issuer string, headers ...string) *servertest.Response {
	t.Helper()
	r := send(t, c, "GET", base+"/.well-known/oauth-authorization-server", host, nil, headers...)
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	if m["issuer"] != issuer {
		t.Fatalf("issuer %v, want %s", m["issuer"], issuer)
	}
	for _, k := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
		if v, _ := m[k].(string); !strings.HasPrefix(v, issuer+"/oauth/") {
			t.Fatalf("%s = %q, want it under %s", k, v, issuer)
		}
	}
	if host != "" && strings.Contains(string(r.Body), strings.Split(host, ":")[0]) {
		t.Fatalf("Host %q reached the metadata: %s", host, r.Body)
	}
	return r
}

// TestBehindNginxTLS runs real nginx terminating TLS in front of Gatehouse
// with docs/examples/nginx-tls.conf, Gatehouse trusting only nginx
// (127.0.0.1) and a load balancer in front of nginx (127.0.0.3). Clients
// connect from their own loopback addresses, so the test can tell the real
// client from the proxies.
func TestBehindNginxTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewAuthority(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, certFile, keyFile, "127.0.0.1", "localhost")
	ghAddr := freeAddr(t)
	// nginx's address is only known once it runs: start it first, pointing
	// at the address Gatehouse will take.
	listen := startNginx(t, "docs/examples/nginx-tls.conf", map[string]string{
		"__GATEHOUSE__": ghAddr, "__CERT__": certFile, "__KEY__": keyFile,
	})
	public := "https://" + listen
	trusted, err := httpx.ParseTrustedProxies("127.0.0.1/32, 127.0.0.3/32")
	if err != nil {
		t.Fatal(err)
	}
	env := servertest.Start(t, func(c *server.Config) {
		c.Addr, c.PublicURL, c.TrustedProxies = ghAddr, public, trusted
	})
	admin := env.AdminToken()

	client := clientFrom("127.0.0.2", ca.Pool) // a client on the internet
	lb := clientFrom("127.0.0.3", ca.Pool)     // a trusted load balancer before nginx

	t.Run("discovery is https and ignores Host", func(t *testing.T) {
		r := checkMetadata(t, client, public, "evil.example", public, "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "http")
		if r.Header.Get("Cache-Control") != "public, max-age=3600" {
			t.Fatalf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		// The same directly, from an untrusted peer over plain HTTP.
		checkMetadata(t, clientFrom("127.0.0.2", nil), env.URL, "evil.example:443", public, "Forwarded", "host=evil.example;proto=http")
	})

	t.Run("admin session cookie is Secure", func(t *testing.T) {
		ck := adminSessionCookie(t, client, public)
		if !ck.Secure || !ck.HttpOnly || ck.Path != "/admin" {
			t.Fatalf("session cookie %+v", ck)
		}
	})

	t.Run("audit sees the real client", func(t *testing.T) {
		// A forged X-Forwarded-For through nginx: nginx appends the real
		// peer, and Gatehouse takes the right-most untrusted hop.
		if got := remoteOf(t, env, client, public, admin, "a1@example.com", "X-Forwarded-For", "203.0.113.66"); got != "127.0.0.2" {
			t.Fatalf("through nginx: audit remote %q, want 127.0.0.2", got)
		}
		// Through a trusted load balancer that says who its client was.
		if got := remoteOf(t, env, lb, public, admin, "a2@example.com", "X-Forwarded-For", "198.51.100.4"); got != "198.51.100.4" {
			t.Fatalf("through the balancer and nginx: audit remote %q, want 198.51.100.4", got)
		}
		// Straight to Gatehouse from an untrusted peer: every forwarding
		// header is ignored.
		if got := remoteOf(t, env, clientFrom("127.0.0.2", nil), env.URL, admin, "a3@example.com",
			"X-Forwarded-For", "198.51.100.9", "X-Forwarded-Proto", "https", "Forwarded", "for=198.51.100.9;proto=https"); got != "127.0.0.2" {
			t.Fatalf("untrusted peer: audit remote %q, want 127.0.0.2", got)
		}
	})

	t.Run("throttle counts the real client", func(t *testing.T) {
		// Failures from one client through nginx until its address is
		// throttled; a forged X-Forwarded-For does not spread them.
		throttled := false
		for i := 0; i < 200 && !throttled; i++ {
			r := send(t, client, "POST", public+"/authorization", "", jsonBody(map[string]string{"username": fmt.Sprintf("nobody%d@example.com", i), "password": "wrong password"}),
				"Content-Type", "application/json", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i%250))
			switch r.Status {
			case 429:
				throttled = true
			case 400:
			default:
				t.Fatalf("attempt %d: %d %s", i, r.Status, r.Body)
			}
		}
		if !throttled {
			t.Fatal("200 failures from one address were never throttled")
		}
		r := send(t, client, "POST", public+"/authorization", "", jsonBody(map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword}),
			"Content-Type", "application/json")
		servertest.Expect(t, r, 429, "too_many_attempts")
		// Another client behind the same nginx is not affected.
		r = send(t, lb, "POST", public+"/authorization", "", jsonBody(map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword}),
			"Content-Type", "application/json", "X-Forwarded-For", "198.51.100.4")
		servertest.Expect(t, r, 200, "")
	})
}

// TestForwardedHeadersTrust runs Gatehouse without a public URL, trusting
// one proxy (127.0.0.3): its X-Forwarded-Proto makes the admin cookie
// Secure; the same header from anyone else does nothing, and neither does
// Forwarded, which Gatehouse reads only when told its proxies write it
// (--forwarded-header forwarded: then X-Forwarded-* are ignored, so a
// client whose proxy passes them on chooses nothing); metadata comes from
// the listen address whatever the Host, and is not cached publicly.
func TestForwardedHeadersTrust(t *testing.T) {
	trusted, _ := httpx.ParseTrustedProxies("127.0.0.3")
	env := servertest.Start(t, func(c *server.Config) { c.TrustedProxies = trusted })
	rfc := servertest.Start(t, func(c *server.Config) { c.TrustedProxies, c.ForwardedHeader = trusted, httpx.Forwarded })
	proxy, stranger := clientFrom("127.0.0.3", nil), clientFrom("127.0.0.2", nil)

	for _, tc := range []struct {
		name    string
		env     *servertest.Env
		c       *http.Client
		headers []string
		secure  bool
	}{
		{"trusted proxy says https", env, proxy, []string{"X-Forwarded-Proto", "https"}, true},
		{"trusted proxy says https in Forwarded, not read", env, proxy, []string{"Forwarded", "for=198.51.100.7;proto=https"}, false},
		{"trusted proxy says nothing", env, proxy, nil, false},
		{"stranger says https", env, stranger, []string{"X-Forwarded-Proto", "https", "Forwarded", "proto=https"}, false},
		{"Forwarded read: trusted proxy says https", rfc, proxy, []string{"Forwarded", "for=198.51.100.7;proto=https"}, true},
		{"Forwarded read: a client's X-Forwarded-Proto", rfc, proxy, []string{"X-Forwarded-Proto", "https", "Forwarded", "for=198.51.100.7;proto=http"}, false},
		{"Forwarded read: stranger says https", rfc, stranger, []string{"Forwarded", "proto=https"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ck := adminSessionCookie(t, tc.c, tc.env.URL, tc.headers...); ck.Secure != tc.secure {
				t.Fatalf("Secure %v, want %v", ck.Secure, tc.secure)
			}
		})
	}
	// The client address: an allow-list behind a proxy that writes
	// Forwarded, a client adding X-Forwarded-For; and by default, where
	// Forwarded is not read.
	token := allowListedToken(t, rfc, proxy)
	servertest.Expect(t, token("Forwarded", "for=198.51.100.9"), 403, "ip_not_allowed")
	servertest.Expect(t, token("X-Forwarded-For", "203.0.113.5", "Forwarded", "for=198.51.100.9"), 403, "ip_not_allowed")
	servertest.Expect(t, token("Forwarded", "for=203.0.113.5"), 200, "")
	token = allowListedToken(t, env, proxy)
	servertest.Expect(t, token("Forwarded", "for=203.0.113.5"), 403, "ip_not_allowed")
	servertest.Expect(t, token("X-Forwarded-For", "198.51.100.9", "Forwarded", "for=203.0.113.5"), 403, "ip_not_allowed")
	servertest.Expect(t, token("X-Forwarded-For", "203.0.113.5"), 200, "")
	r := checkMetadata(t, stranger, env.URL, "evil.example", env.URL, "X-Forwarded-Proto", "https")
	if cc := r.Header.Get("Cache-Control"); strings.Contains(cc, "public") || cc == "" {
		t.Fatalf("metadata without a public URL: Cache-Control %q", cc)
	}
	checkMetadata(t, proxy, env.URL, "evil.example", env.URL, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example")
}

// allowListedToken makes a developer's client credential allowed from
// 203.0.113.0/24 on env, and returns a token request for it through c
// with the given headers.
func allowListedToken(t *testing.T, env *servertest.Env, c *http.Client) func(headers ...string) *servertest.Response {
	t.Helper()
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "POST", "/v1/users", map[string]any{"email": "dev@example.com", "password": memberPW, "roles": []string{"developer"}}), 201, "")
	r := env.As(env.Login("dev@example.com", memberPW), "POST", "/v1/credentials", map[string]any{"name": "office", "allowed_ips": []string{"203.0.113.0/24"}})
	servertest.Expect(t, r, 201, "")
	cred := r.Map(t)
	body := "grant_type=client_credentials&client_id=" + cred["client_id"].(string) + "&client_secret=" + cred["client_secret"].(string)
	return func(headers ...string) *servertest.Response {
		return send(t, c, "POST", env.URL+"/oauth/token", "", strings.NewReader(body),
			append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
	}
}

// TestBuiltInTLS serves HTTPS and HTTP/2 from Gatehouse itself and reloads
// the certificate without a restart.
func TestBuiltInTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewAuthority(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := ca.Issue(t, certFile, keyFile, "127.0.0.1")
	env := servertest.Start(t, func(c *server.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if !strings.HasPrefix(env.URL, "https://") {
		t.Fatalf("URL %s", env.URL)
	}
	get := func() *http.Response {
		t.Helper()
		c := clientFrom("127.0.0.1", ca.Pool) // a new connection every time
		resp, err := c.Get(env.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	checkMetadata(t, clientFrom("127.0.0.1", ca.Pool), env.URL, "evil.example", env.URL)
	ck := adminSessionCookie(t, clientFrom("127.0.0.1", ca.Pool), env.URL)
	if !ck.Secure {
		t.Fatalf("cookie over TLS %+v", ck)
	}
	// A renewed certificate is served after a reload; a broken file keeps
	// the current one.
	second := ca.Issue(t, certFile, keyFile, "127.0.0.1")
	if err := env.Server.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got := get().TLS.PeerCertificates[0].SerialNumber; got.Cmp(second.SerialNumber) != 0 {
		t.Fatal("old certificate after reload")
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.Server.ReloadTLS(); err == nil {
		t.Fatal("broken key accepted")
	}
	if got := get().TLS.PeerCertificates[0].SerialNumber; got.Cmp(second.SerialNumber) != 0 {
		t.Fatal("certificate lost after a failed reload")
	}
	// Plain HTTP on the TLS port is refused, never served.
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Get(strings.Replace(env.URL, "https://", "http://", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
}

// TestGatewayLongUploadOverHTTP2 streams a 3 s upload through the gateway
// over HTTP/2 with built-in TLS and 1 s server timeouts: per-request
// deadlines work on HTTP/2 streams too.
func TestGatewayLongUploadOverHTTP2(t *testing.T) {
	up := newUpstream(t)
	dir := t.TempDir()
	ca := testcert.NewAuthority(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, certFile, keyFile, "127.0.0.1")
	env := servertest.Start(t, func(c *server.Config) {
		c.TLSCert, c.TLSKey, c.Upstream = certFile, keyFile, up.URL
		c.ReadTimeout, c.WriteTimeout = time.Second, time.Second
	})
	env.Client = clientFrom("127.0.0.1", ca.Pool)
	req, _ := http.NewRequest("PUT", env.URL+"/upload", &slowReader{n: 15, size: 1000, gap: 200 * time.Millisecond})
	req.Header.Set("Authorization", "Bearer "+env.AdminToken())
	resp, err := env.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.Contains(body, `"bytes":15000`) {
		t.Fatalf("%s %d %s", resp.Proto, resp.StatusCode, body)
	}
}
