package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// registerClient registers a public client at env (RFC 7591) and returns
// the answer's status and body.
func registerClient(t *testing.T, c *http.Client, base string, meta map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(meta)
	resp, err := c.Post(base+"/oauth/register", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("registration answer without Cache-Control: no-store")
	}
	return resp.StatusCode, out
}

// gatewayEnv is a server whose gateway proxies to an upstream that
// answers who it was sent, serving resource (empty: its public URL).
func gatewayEnv(t *testing.T, resource string) *servertest.Env {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Header.Get("X-Gatehouse-User-Email")))
	}))
	t.Cleanup(up.Close)
	return servertest.Start(t, func(c *server.Config) {
		c.Upstream = up.URL
		c.DynamicRegistration = true
		c.ConsoleSameOrigin = true
		c.GatewayResource = resource
	})
}

// codeToken runs the authorization code flow of a registered client as
// the admin, with resource on the authorization request (authRes) and on
// the token request (tokenRes), and returns the token or the exchange's
// error.
func codeToken(t *testing.T, env *servertest.Env, clientID, authRes, tokenRes string) (*oauth2.Token, error) {
	t.Helper()
	redirect := "http://127.0.0.1:49152/cb"
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/oauth/authorize", TokenURL: env.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if authRes != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", authRes))
	}
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s", opts...), servertest.AdminEmail, servertest.AdminPassword, "allow")
	if cb == nil || cb.Query().Get("code") == "" {
		t.Fatalf("no code: %v %d %s", cb, resp.StatusCode, body)
	}
	xopts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if tokenRes != "" {
		xopts = append(xopts, oauth2.SetAuthURLParam("resource", tokenRes))
	}
	return conf.Exchange(context.Background(), cb.Query().Get("code"), xopts...)
}

func gatewayGet(t *testing.T, env *servertest.Env, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", env.URL+"/api/thing", nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := env.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestGatewayResourceBinding: a token issued for resource A is refused by
// a gateway serving resource B with 401 invalid_token and the
// resource_metadata of RFC 9728 §5.1; a token for B and a token bound to
// no resource pass; a token request naming another resource than the
// code's is invalid_target, and so is a malformed resource; a refresh
// keeps the binding.
func TestGatewayResourceBinding(t *testing.T) {
	const resourceB = "https://api-b.example.com/mcp"
	env := gatewayEnv(t, resourceB)
	meta := env.URL + "/.well-known/oauth-protected-resource"
	status, reg := registerClient(t, env.Client, env.URL, map[string]any{"client_name": "binding", "redirect_uris": []string{"http://127.0.0.1/cb"}})
	if status != 201 {
		t.Fatalf("register: %d %v", status, reg)
	}
	clientID := reg["client_id"].(string)

	// Without credentials: 401 naming the metadata.
	resp := gatewayGet(t, env, "")
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="https://api-b.example.com/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("no credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	tokA, err := codeToken(t, env, clientID, "https://api-a.example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	resp = gatewayGet(t, env, tokA.AccessToken)
	if www := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(www, `error="invalid_token"`) || !strings.Contains(www, "resource_metadata=") {
		t.Fatalf("token for A at B: %d %q", resp.StatusCode, www)
	}
	// Refreshed, it is still A's.
	ts := (&oauth2.Config{ClientID: clientID, Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}).
		TokenSource(context.Background(), &oauth2.Token{RefreshToken: tokA.RefreshToken})
	refreshed, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if resp = gatewayGet(t, env, refreshed.AccessToken); resp.StatusCode != 401 {
		t.Fatalf("refreshed token for A at B: %d", resp.StatusCode)
	}

	tokB, err := codeToken(t, env, clientID, resourceB, resourceB)
	if err != nil {
		t.Fatal(err)
	}
	if resp = gatewayGet(t, env, tokB.AccessToken); resp.StatusCode != 200 {
		t.Fatalf("token for B at B: %d", resp.StatusCode)
	}
	// The same resource spelled with a trailing slash on the host's path
	// is the same resource only when the path is empty; B's has one.
	tokNone, err := codeToken(t, env, clientID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if resp = gatewayGet(t, env, tokNone.AccessToken); resp.StatusCode != 200 {
		t.Fatalf("unbound token: %d", resp.StatusCode)
	}
	// Bound at the token endpoint only: bound all the same.
	tokLate, err := codeToken(t, env, clientID, "", "https://api-a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if resp = gatewayGet(t, env, tokLate.AccessToken); resp.StatusCode != 401 {
		t.Fatalf("token bound at the token endpoint to A, at B: %d", resp.StatusCode)
	}

	// Another resource than the code's, or a malformed one.
	_, err = codeToken(t, env, clientID, resourceB, "https://api-a.example.com")
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_target" || re.Response.StatusCode != 400 {
		t.Fatalf("other resource at the token endpoint: %v", err)
	}
	_, err = codeToken(t, env, clientID, "", "https://api-a.example.com/#frag")
	if !errors.As(err, &re) || re.ErrorCode != "invalid_target" {
		t.Fatalf("malformed resource at the token endpoint: %v", err)
	}
	// On the authorization request it is shown with a link back to the
	// self-registered client (never a redirect by itself).
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: "http://127.0.0.1:49153/cb",
		Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/oauth/authorize"}}
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("resource", "relative/path")), servertest.AdminEmail, servertest.AdminPassword, "allow")
	if cb != nil || resp.StatusCode != 400 || !strings.Contains(html.UnescapeString(body), `href="http://127.0.0.1:49153/cb?error=invalid_target`) {
		t.Fatalf("malformed resource on the authorization request: %v %d %s", cb, resp.StatusCode, body)
	}
	_ = meta
}

// TestDynamicRegistration: public clients only, redirect URIs by the
// rules of registered applications but for private schemes (loopback any
// port, https; never plain http elsewhere, a private scheme, fragments or
// wildcards), the
// RFC 7591 error codes, and at most register.PerHour registrations per
// address an hour, exact when 30 arrive at once; without the flag there
// is no endpoint and the metadata does not name one.
func TestDynamicRegistration(t *testing.T) {
	env := gatewayEnv(t, "")
	for _, tc := range []struct {
		name   string
		meta   map[string]any
		status int
		code   string
	}{
		{"loopback", map[string]any{"redirect_uris": []string{"http://127.0.0.1:33333/cb"}, "client_name": "CLI"}, 201, ""},
		{"https", map[string]any{"redirect_uris": []string{"https://agent.example.com/cb"}, "token_endpoint_auth_method": "none"}, 201, ""},
		{"plain http", map[string]any{"redirect_uris": []string{"http://agent.example.com/cb"}}, 400, "invalid_redirect_uri"},
		{"private scheme", map[string]any{"redirect_uris": []string{"https://agent.example.com/cb", "com.example.agent:/cb"}}, 400, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://agent.example.com/cb#x"}}, 400, "invalid_redirect_uri"},
		{"none", map[string]any{"client_name": "x"}, 400, "invalid_redirect_uri"},
		{"confidential", map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}, "token_endpoint_auth_method": "client_secret_basic"}, 400, "invalid_client_metadata"},
		{"client credentials", map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}, "grant_types": []string{"client_credentials"}}, 400, "invalid_client_metadata"},
		{"wrong type", map[string]any{"redirect_uris": "https://a.example.com/cb"}, 400, "invalid_client_metadata"},
	} {
		status, out := registerClient(t, env.Client, env.URL, tc.meta)
		if status != tc.status || (tc.code != "" && out["error"] != tc.code) {
			t.Errorf("%s: %d %v", tc.name, status, out)
		}
		if status == 201 {
			if _, has := out["client_secret"]; has || out["token_endpoint_auth_method"] != "none" {
				t.Errorf("%s: %v", tc.name, out)
			}
		}
	}

	// Owned by no account: under the default "approved" policy a member
	// may not authorise it until an admin approves it (by consenting, or
	// with PUT /v1/apps/{client_id}/approval).
	admin := env.AdminToken()
	env.CreateUser(admin, "agent-user@example.com", "a member's long password")
	_, reg := registerClient(t, env.Client, env.URL, map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "client_name": "Policy"})
	clientID, _ := reg["client_id"].(string)
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: "http://127.0.0.1:40000/cb", Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/oauth/authorize"}}
	authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	// The refusal comes before the person acted, so it is shown with a
	// link back to the client, never sent there by itself: nobody vouches
	// for a self-registered client's redirect URI (RFC 9700 §4.11.2).
	cb, resp, body := newUserAgent(t, env.URL).authorize(authURL, "agent-user@example.com", "a member's long password", "allow")
	if cb != nil || resp.StatusCode != 400 || resp.Header.Get("Location") != "" ||
		!strings.Contains(html.UnescapeString(body), `id="return" href="http://127.0.0.1:40000/cb?error=access_denied`) {
		t.Fatalf("a member and an unapproved self-registered client: %v %d %s", cb, resp.StatusCode, body)
	}
	// Nor does any other error of its request redirect by itself.
	bad := strings.Replace(authURL, "response_type=code", "response_type=token", 1)
	cb, resp, body = newUserAgent(t, env.URL).authorize(bad, servertest.AdminEmail, servertest.AdminPassword, "allow")
	if cb != nil || resp.StatusCode != 400 || !strings.Contains(body, "unsupported_response_type") {
		t.Fatalf("a self-registered client's bad request: %v %d %s", cb, resp.StatusCode, body)
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/apps/"+clientID+"/approval", nil), 200, "")
	cb, resp, body = newUserAgent(t, env.URL).authorize(authURL, "agent-user@example.com", "a member's long password", "allow")
	if cb == nil || cb.Query().Get("code") == "" {
		t.Fatalf("approved, yet refused: %v %d %s", cb, resp.StatusCode, body)
	}

	// The throttle: 10 made above; of 30 released at once, exactly 10 pass.
	const n = 30
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		counts  = map[int]int{}
		release = make(chan struct{})
	)
	regBody := `{"redirect_uris":["http://127.0.0.1/cb"]}`
	raw := "POST /oauth/register HTTP/1.1\r\nHost: " + strings.TrimPrefix(env.URL, "http://") +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(regBody)) + "\r\nConnection: close\r\n\r\n" + regBody
	for range n {
		conn, err := net.Dial("tcp", strings.TrimPrefix(env.URL, "http://")) // opened in advance
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			if _, err := io.WriteString(conn, raw); err != nil {
				t.Error(err)
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(release)
	wg.Wait()
	if counts[201] != 10 || counts[429] != n-10 {
		t.Fatalf("throttle: %v", counts)
	}

	off := servertest.Start(t)
	servertest.Expect(t, off.Request("POST", "/oauth/register", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}}), 404, "not_found")
	if _, has := off.Request("GET", "/.well-known/oauth-authorization-server", nil).Map(t)["registration_endpoint"]; has {
		t.Fatal("registration_endpoint advertised without --dynamic-registration")
	}
}

// TestMetadataDocuments validates the authorization server's metadata
// (RFC 8414 §2, §3.3) and the gateway's protected-resource metadata (RFC
// 9728 §2, §3.3) by their field rules: required members, the issuer equal
// to the URL it was fetched under, the resource equal to the one its
// well-known URL was built from, every URL https or http on a loopback
// host, no query or fragment in the identifiers, and the authorization
// server named by the resource serving metadata of its own.
func TestMetadataDocuments(t *testing.T) {
	for _, resource := range []string{"", "https://api.example.com/mcp"} {
		env := gatewayEnv(t, resource)
		as := env.Request("GET", "/.well-known/oauth-authorization-server", nil).Map(t)
		issuer, _ := as["issuer"].(string)
		if issuer != env.URL {
			t.Fatalf("issuer %q fetched from %s", issuer, env.URL)
		}
		checkIdentifier(t, "issuer", issuer)
		for _, k := range []string{"authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint", "introspection_endpoint"} {
			v, _ := as[k].(string)
			if v == "" {
				t.Fatalf("metadata lacks %s", k)
			}
			checkURL(t, k, v)
		}
		for _, k := range []string{"response_types_supported", "code_challenge_methods_supported", "grant_types_supported"} {
			if l, _ := as[k].([]any); len(l) == 0 {
				t.Fatalf("metadata lacks %s", k)
			}
		}
		if !containsAny(as["code_challenge_methods_supported"], "S256") || !containsAny(as["token_endpoint_auth_methods_supported"], "none") ||
			!containsAny(as["grant_types_supported"], "authorization_code") {
			t.Fatalf("metadata: %v", as)
		}

		// The resource's metadata, at the URL its 401 names.
		resp := gatewayGet(t, env, "")
		www := resp.Header.Get("WWW-Authenticate")
		i := strings.Index(www, `resource_metadata="`)
		if i < 0 {
			t.Fatalf("401 without resource_metadata: %q", www)
		}
		metaURL := www[i+len(`resource_metadata="`):]
		metaURL = metaURL[:strings.IndexByte(metaURL, '"')]
		mu, err := url.Parse(metaURL)
		if err != nil {
			t.Fatal(err)
		}
		checkURL(t, "resource_metadata", metaURL)
		prm := env.Request("GET", mu.Path, nil).Map(t)
		want := resource
		if want == "" {
			want = env.URL
		}
		if prm["resource"] != want {
			t.Fatalf("resource %v, want %s", prm["resource"], want)
		}
		checkIdentifier(t, "resource", want)
		// RFC 9728 §3.1: the well-known URL is the resource's origin, the
		// well-known path, then the resource's path.
		ru, _ := url.Parse(want)
		if wantMeta := ru.Scheme + "://" + ru.Host + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(ru.Path, "/"); metaURL != wantMeta {
			t.Fatalf("metadata URL %s, want %s", metaURL, wantMeta)
		}
		servers, _ := prm["authorization_servers"].([]any)
		if len(servers) != 1 || servers[0] != issuer {
			t.Fatalf("authorization_servers %v", prm["authorization_servers"])
		}
		if !containsAny(prm["bearer_methods_supported"], "header") {
			t.Fatalf("bearer_methods_supported %v", prm["bearer_methods_supported"])
		}
		if s, ok := prm["scopes_supported"].([]any); !ok || len(s) != 0 {
			t.Fatalf("scopes_supported without a routes file: %v", prm["scopes_supported"])
		}
	}
}

func containsAny(list any, want string) bool {
	l, _ := list.([]any)
	for _, v := range l {
		if v == want {
			return true
		}
	}
	return false
}

// checkURL: https, or http on a loopback host (RFC 8414 §2, RFC 9728 §2
// allow http only where TLS cannot be had: the tests' loopback).
func checkURL(t *testing.T, name, v string) {
	t.Helper()
	u, err := url.Parse(v)
	if err != nil || !u.IsAbs() || u.Fragment != "" {
		t.Fatalf("%s %q is not an absolute URL without fragment", name, v)
	}
	host := u.Hostname()
	if u.Scheme != "https" && !(u.Scheme == "http" && (host == "127.0.0.1" || host == "::1" || host == "localhost")) {
		t.Fatalf("%s %q is neither https nor loopback http", name, v)
	}
}

// checkIdentifier: a URL with no query or fragment (RFC 8414 §2's
// issuer, RFC 9728 §1.2's resource).
func checkIdentifier(t *testing.T, name, v string) {
	t.Helper()
	checkURL(t, name, v)
	if u, _ := url.Parse(v); u.RawQuery != "" || u.ForceQuery {
		t.Fatalf("%s %q has a query", name, v)
	}
}

// TestDynamicRegistrationAudited: a client that registers itself is in
// the operator's audit log as client.register — its client id, name, how
// many redirect URIs and their hosts, the address it came from — and the
// entry holds nothing shaped like a secret; a refused registration leaves
// no entry.
func TestDynamicRegistrationAudited(t *testing.T) {
	env := gatewayEnv(t, "")
	admin := env.AdminToken()
	status, out := registerClient(t, env.Client, env.URL, map[string]any{"client_name": "Audited agent",
		"redirect_uris": []string{"http://127.0.0.1:40000/cb", "https://agent.example.com/cb", "https://agent.example.com/other"}})
	clientID, _ := out["client_id"].(string)
	if status != 201 || clientID == "" {
		t.Fatalf("registration: %d %v", status, out)
	}
	if status, _ := registerClient(t, env.Client, env.URL, map[string]any{"client_name": "Refused agent",
		"redirect_uris": []string{"http://agent.example.com/cb"}}); status != 400 {
		t.Fatalf("refused registration: %d", status)
	}
	r := env.As(admin, "GET", "/v1/audit?action=client.register", nil)
	servertest.Expect(t, r, 200, "")
	var page struct {
		Data []struct {
			Actor      string            `json:"actor"`
			Action     string            `json:"action"`
			TargetType string            `json:"target_type"`
			TargetID   string            `json:"target_id"`
			Details    map[string]string `json:"details"`
			RemoteAddr string            `json:"remote_addr"`
		} `json:"data"`
	}
	r.JSON(t, &page)
	if len(page.Data) != 1 {
		t.Fatalf("want one client.register entry, got %s", r.Body)
	}
	e := page.Data[0]
	if e.TargetType != "client" || e.TargetID != clientID || e.Details["client_name"] != "Audited agent" ||
		e.Details["redirect_uris"] != "3" || e.Details["redirect_hosts"] != "127.0.0.1,agent.example.com" ||
		e.Details["client_addr"] != "127.0.0.1" || e.RemoteAddr != "127.0.0.1" {
		t.Fatalf("entry: %+v", e)
	}
	if m := secretShapes.FindString(string(r.Body)); m != "" {
		t.Fatalf("the entry holds something shaped like a secret, %q: %s", m, r.Body)
	}
}

// TestResourceBoundTokenElsewhere: a token bound to resource A (RFC 8707)
// is refused by Gatehouse's own API (401 invalid_token, nothing charged),
// also as the bearer caller of introspection and revocation, which take a
// token bound to Gatehouse's own URL; forward auth, which serves whatever
// its proxy protects, takes it as any token of its user. A token bound to
// no resource passes everywhere, as before.
func TestResourceBoundTokenElsewhere(t *testing.T) {
	const resourceA = "https://api-a.example.com/mcp"
	env := servertest.Start(t, func(c *server.Config) { c.DynamicRegistration = true })
	status, reg := registerClient(t, env.Client, env.URL, map[string]any{"client_name": "elsewhere", "redirect_uris": []string{"http://127.0.0.1/cb"}})
	if status != 201 {
		t.Fatalf("register: %d %v", status, reg)
	}
	clientID := reg["client_id"].(string)
	token := func(resource string) string {
		tok, err := codeToken(t, env, clientID, resource, resource)
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	forA, own, unbound := token(resourceA), token(env.URL+"/"), token("")

	servertest.Expect(t, env.As(forA, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(forA, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(own, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, env.As(unbound, "GET", "/v1/me", nil), 200, "")
	// The bearer caller of introspection: refused before the form is read.
	for _, path := range []string{"/oauth/introspect", "/oauth/revoke"} {
		r := env.Request("POST", path, url.Values{"token": {unbound}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Bearer "+forA)
		servertest.Expect(t, r, 401, "invalid_token")
	}
	// The refused revocation revoked nothing.
	servertest.Expect(t, env.As(unbound, "GET", "/v1/me", nil), 200, "")

	// Forward auth takes every token of the user, bound or not.
	check := func(tok string) *servertest.Response { return env.As(tok, "GET", "/v1/auth/check", nil) }
	servertest.Expect(t, check(forA), 200, "")
	servertest.Expect(t, check(unbound), 200, "")

	// Refusals charge nothing: between two admitted checks, the
	// refusals leave the user's budget where the first left it.
	left := func() int {
		r := check(forA)
		servertest.Expect(t, r, 200, "")
		n, err := strconv.Atoi(r.Header.Get("X-RateLimit-Daily-Remaining"))
		if err != nil {
			t.Fatalf("daily remaining %q", r.Header.Get("X-RateLimit-Daily-Remaining"))
		}
		return n
	}
	before := left()
	for range 5 {
		servertest.Expect(t, env.As(forA, "GET", "/v1/me", nil), 401, "invalid_token")
	}
	if after := left(); after != before-1 {
		t.Fatalf("daily remaining %d after refusals, want %d: a refusal was charged", after, before-1)
	}
}

// TestRegisteredClientNoDeviceGrant: a client that registered itself
// (RFC 7591, --dynamic-registration) registers for the authorization code
// grant only, and is marked unverified on the consent page (SPEC §10.4).
// It may not run the device grant — the phishing-prone flow in which a
// victim types in a code an attacker sent, on a page naming the client as
// it named itself — neither at the device authorization endpoint nor at
// the token endpoint: unauthorized_client, and no user code to enter.
func TestRegisteredClientNoDeviceGrant(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.DynamicRegistration = true })
	status, reg := registerClient(t, env.Client, env.URL, map[string]any{
		"redirect_uris": []string{"http://127.0.0.1/cb"}, "client_name": "Gatehouse Official CLI",
		"grant_types": []string{"authorization_code", "refresh_token"}})
	if status != 201 {
		t.Fatalf("registration: %d %v", status, reg)
	}
	clientID := reg["client_id"].(string)
	servertest.Expect(t, startDevice(env, clientID, "workspaces:read users:read"), 400, "unauthorized_client")
	form := url.Values{"grant_type": {authorize.DeviceGrantType}, "client_id": {clientID},
		"device_code": {"gdc_" + strings.Repeat("a", 43)}}
	servertest.Expect(t, env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"), 400, "unauthorized_client")
}

// refreshAsking posts a public client's refresh_token grant with any more
// form fields given as name, value pairs.
func refreshAsking(env *servertest.Env, clientID, rt string, fields ...string) *servertest.Response {
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	return env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// TestAppRefreshRetryAsksTheSame: a third-party client's refresh token,
// used once and presented again inside the grace period (a retry), gets
// the kept pair only for the same request. A "retry" naming another
// resource than the token's, binding an unbound grant to a resource, or
// narrowing the scope is refused: the kept pair was made for the first
// request, and answering it would hand a token bound elsewhere (or to
// nothing, which Gatehouse's own API takes) to a request that asked for
// a binding, or wider scopes than asked. Nothing is revoked by the
// refusal: the exact retry still gets the pair.
func TestAppRefreshRetryAsksTheSame(t *testing.T) {
	const resourceA, resourceB = "https://api-a.example.com/mcp", "https://api-b.example.com/mcp"
	env := gatewayEnv(t, resourceB)
	status, reg := registerClient(t, env.Client, env.URL, map[string]any{"client_name": "retries", "redirect_uris": []string{"http://127.0.0.1/cb"}})
	if status != 201 {
		t.Fatalf("register: %d %v", status, reg)
	}
	clientID := reg["client_id"].(string)
	pairOf := func(r *servertest.Response) map[string]any {
		t.Helper()
		servertest.Expect(t, r, 200, "")
		return r.Map(t)
	}

	// Bound to A: a retry naming B is refused, as a fresh refresh is.
	bound, err := codeToken(t, env, clientID, resourceA, resourceA)
	if err != nil {
		t.Fatal(err)
	}
	servertest.Expect(t, refreshAsking(env, clientID, bound.RefreshToken, "resource", resourceB), 400, "invalid_target")
	first := pairOf(refreshAsking(env, clientID, bound.RefreshToken))
	// A used token is judged as one first (reuse detection, retries).
	servertest.Expect(t, refreshAsking(env, clientID, bound.RefreshToken, "resource", resourceB), 400, "invalid_grant")
	// Naming A explicitly is another request than naming nothing.
	servertest.Expect(t, refreshAsking(env, clientID, bound.RefreshToken, "resource", resourceA), 400, "invalid_grant")
	if again := pairOf(refreshAsking(env, clientID, bound.RefreshToken)); again["access_token"] != first["access_token"] {
		t.Fatalf("the exact retry got another pair")
	}

	// Unbound: a retry asking for A gets nothing that Gatehouse's API takes.
	free, err := codeToken(t, env, clientID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	pairOf(refreshAsking(env, clientID, free.RefreshToken))
	servertest.Expect(t, refreshAsking(env, clientID, free.RefreshToken, "resource", resourceA), 400, "invalid_grant")

	// Narrowing on the retry: refused, not the wider kept pair.
	servertest.Expect(t, refreshAsking(env, clientID, free.RefreshToken, "scope", "users:read"), 400, "invalid_grant")
	kept := pairOf(refreshAsking(env, clientID, free.RefreshToken))
	servertest.Expect(t, env.As(kept["access_token"].(string), "GET", "/v1/me", nil), 200, "")
	pairOf(refreshAsking(env, clientID, kept["refresh_token"].(string)))
}
