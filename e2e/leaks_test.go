package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/token"
)

// twoLeakNodes starts two nodes of one cluster in the process: one store,
// one private Redis.
func twoLeakNodes(t *testing.T, opts ...func(*server.Config)) (a, b *servertest.Env) {
	t.Helper()
	rs := startRedis(t, "")
	redis := func(c *server.Config) {
		c.RedisURL, c.RedisPrefix = "redis://127.0.0.1:"+rs.port+"/0", "leak:"
		for _, o := range opts {
			o(c)
		}
	}
	a = servertest.Start(t, redis)
	b = servertest.Start(t, redis, func(c *server.Config) { c.DatabaseURL = a.DatabaseURL })
	return a, b
}

// consoleSession signs in to the admin console and returns the session
// cookie's value.
func consoleSession(t *testing.T, env *servertest.Env, email, pw string) string {
	t.Helper()
	csrf, cookie := adminLoginForm(t, env.URL)
	req, _ := http.NewRequest("POST", env.URL+"/admin/login", strings.NewReader(url.Values{"csrf": {csrf}, "email": {email}, "password": {pw}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "gatehouse_login_csrf="+cookie)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := cookieValue(resp, "gatehouse_session")
	if !token.Valid(s, token.Session) {
		t.Fatalf("console sign-in: %d, session %q", resp.StatusCode, s)
	}
	return s
}

// consoleStatus is the status of the console's list of users with a
// session.
func consoleStatus(t *testing.T, env *servertest.Env, session string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", env.URL+"/admin/users", nil)
	req.Header.Set("Cookie", "gatehouse_session="+session)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// leakFixture is one live secret of every kind, on one account.
type leakFixture struct {
	admin, devTok       string
	apiTok              apiToken
	cred                credential
	credAccess          string // a token issued by cred
	app                 apiAccess
	password, pwRefresh string // the password grant's tokens
	session             string
	other               string // an admin of another account
}

func newLeakFixture(t *testing.T, env *servertest.Env) *leakFixture {
	t.Helper()
	f := &leakFixture{}
	f.admin, _, f.devTok, f.cred = developer(t, env)
	f.apiTok = withAPIToken(t, env, f.admin)
	f.credAccess = accessToken(t, clientToken(env, f.cred))
	f.app = enableAPIAccess(t, env, f.admin, nil)
	_, f.other = env.CreateAccount(f.admin, "Other", "boss@other.example", "other admin password")
	f.session = consoleSession(t, env, servertest.AdminEmail, servertest.AdminPassword)
	return f
}

// works reports, per kind, whether the fixture's secret still works on
// env: 200 or 401 for tokens, a grant for the client secret, the console
// for the session.
func (f *leakFixture) works(t *testing.T, env *servertest.Env) map[string]bool {
	t.Helper()
	status := func(r *servertest.Response) bool {
		switch r.Status {
		case 200:
			return true
		case 401:
			return false
		}
		t.Fatalf("unexpected answer %d %s", r.Status, r.Body)
		return false
	}
	return map[string]bool{
		"api_token":      status(env.Request("GET", "/v1/me", nil, "X-API-Token", f.apiTok.Token)),
		"client_secret":  status(clientToken(env, f.cred)),
		"issued_by_cred": status(env.As(f.credAccess, "GET", "/v1/me", nil)),
		"access_token":   status(env.As(f.app.AccessToken, "GET", "/v1/me", nil)),
		"refresh_token":  refresh(env, f.app.ClientID, f.app.RefreshToken).Status == 200,
		"session":        consoleStatus(t, env, f.session) == 200,
	}
}

// TestLeakRevokeEveryKind: RFC 7009 revocation of every kind of secret —
// an API token, a client secret, an access token (with its refresh
// lineage), a console session — with nothing but the secret, then every
// one of them refused on both nodes; an answer 200 never leaves a secret
// working. A leaked API token and client credential stay listed as
// leaked, re-enabling does not bring them back, and rolling gives a new
// working secret with the same name and scopes. Each revocation is
// audited as credential.leaked.
func TestLeakRevokeEveryKind(t *testing.T) {
	a, b := twoLeakNodes(t)
	f := newLeakFixture(t, a)
	for _, env := range []*servertest.Env{a, b} {
		for kind, ok := range f.works(t, env) {
			if !ok && kind != "refresh_token" {
				t.Fatalf("%s does not work before the revocation", kind)
			}
		}
	}
	revoke := func(env *servertest.Env, tok, hint string, authz ...string) {
		t.Helper()
		hdr := []string{"Content-Type", "application/x-www-form-urlencoded"}
		if len(authz) > 0 {
			hdr = append(hdr, "Authorization", "Bearer "+authz[0])
		}
		r := env.Request("POST", "/oauth/revoke", url.Values{"token": {tok}, "token_type_hint": {hint}}.Encode(), hdr...)
		servertest.Expect(t, r, 200, "")
	}
	revoke(a, f.apiTok.Token, "api_token")
	revoke(b, f.cred.ClientSecret, "client_secret")
	// An admin of another account holding the token: possession is proof.
	revoke(a, f.app.AccessToken, "access_token", f.other)
	revoke(b, f.session, "")
	for name, env := range map[string]*servertest.Env{"a": a, "b": b} {
		for kind, ok := range f.works(t, env) {
			if ok {
				t.Errorf("node %s: the %s still works after /oauth/revoke answered 200", name, kind)
			}
		}
	}

	// Kept, marked, refused for good.
	var toks struct{ Data []map[string]any }
	a.As(f.admin, "GET", "/v1/api-tokens", nil).JSON(t, &toks)
	if len(toks.Data) != 1 || toks.Data[0]["revoked_reason"] != "leaked" || toks.Data[0]["revoked_at"] == nil {
		t.Fatalf("API tokens after the leak: %v", toks.Data)
	}
	servertest.Expect(t, b.As(f.admin, "PATCH", "/v1/api-tokens/"+f.apiTok.ID, map[string]bool{"enabled": false}), 200, "")
	servertest.Expect(t, b.As(f.admin, "PATCH", "/v1/api-tokens/"+f.apiTok.ID, map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, a.Request("GET", "/v1/me", nil, "X-API-Token", f.apiTok.Token), 401, "invalid_token")
	var creds struct{ Data []map[string]any }
	a.As(f.devTok, "GET", "/v1/credentials", nil).JSON(t, &creds)
	if len(creds.Data) != 1 || creds.Data[0]["revoked_reason"] != "leaked" || creds.Data[0]["revoked_at"] == nil {
		t.Fatalf("credentials after the leak: %v", creds.Data)
	}
	servertest.Expect(t, a.As(f.devTok, "PATCH", "/v1/credentials/"+f.cred.ID, map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, clientToken(b, f.cred), 401, "invalid_client")

	// Rolled by their owners into new secrets with the same settings.
	r := a.As(f.admin, "POST", "/v1/api-tokens/"+f.apiTok.ID+"/roll", map[string]int{})
	servertest.Expect(t, r, 201, "")
	var rolled apiToken
	r.JSON(t, &rolled)
	if rolled.Name != f.apiTok.Name || rolled.ID == f.apiTok.ID {
		t.Fatalf("rolled %+v from %+v", rolled, f.apiTok)
	}
	servertest.Expect(t, b.Request("GET", "/v1/me", nil, "X-API-Token", rolled.Token), 200, "")
	servertest.Expect(t, b.Request("GET", "/v1/me", nil, "X-API-Token", f.apiTok.Token), 401, "invalid_token")
	r = a.As(f.devTok, "POST", "/v1/credentials/"+f.cred.ID+"/roll", map[string]int{})
	servertest.Expect(t, r, 200, "")
	var next credential
	r.JSON(t, &next)
	next.Name = f.cred.Name
	accessToken(t, clientToken(b, next))
	servertest.Expect(t, clientToken(b, f.cred), 401, "invalid_client")
	// A new token may take the leaked one's name.
	servertest.Expect(t, a.As(f.admin, "POST", "/v1/api-tokens", map[string]string{"name": "Zapier 2"}), 201, "")

	// Audited, with where it was reported, in the owner's account.
	leaks := map[string]string{}
	for _, e := range auditEntries(t, a, f.admin) {
		if e["action"] == "credential.leaked" {
			d, _ := e["details"].(map[string]any)
			leaks[d["kind"].(string)] = d["reported_via"].(string)
		}
	}
	for _, kind := range []string{"api_token", "client_secret", "access_token", "session"} {
		if leaks[kind] != "oauth_revoke" {
			t.Errorf("no credential.leaked entry for the %s: %v", kind, leaks)
		}
	}
}

// TestLeakBulkRevoke: 1,000 mixed strings — live secrets of every kind,
// already revoked ones, unknown well-formed ones, garbage — reported
// without a credential: 202 {} like any other well-formed report, exactly
// the live ones dead on both nodes, an audit entry for each. Reports are
// limited to 60 an hour per address across both nodes.
func TestLeakBulkRevoke(t *testing.T) {
	a, b := twoLeakNodes(t)
	f := newLeakFixture(t, a)
	var dead apiToken
	a.As(f.admin, "POST", "/v1/api-tokens", map[string]string{"name": "already"}).JSON(t, &dead)
	servertest.Expect(t, a.Request("POST", "/oauth/revoke", map[string]string{"token": dead.Token}), 200, "")
	var spare apiToken
	a.As(f.admin, "POST", "/v1/api-tokens", map[string]string{"name": "spare"}).JSON(t, &spare)

	batch := []string{f.apiTok.Token, f.cred.ClientSecret, f.app.RefreshToken, f.session, dead.Token, f.cred.ClientID}
	for len(batch) < 1000 {
		switch len(batch) % 4 {
		case 0:
			batch = append(batch, token.New(token.APIToken))
		case 1:
			batch = append(batch, "gak_"+strings.Repeat("x", len(batch)%60))
		case 2:
			batch = append(batch, token.New(token.AccessToken))
		default:
			batch = append(batch, "")
		}
	}
	servertest.Expect(t, b.Request("POST", "/v1/credentials/revoke", map[string][]string{"credentials": batch}), 202, "")
	if r := b.Request("POST", "/v1/credentials/revoke", map[string][]string{"credentials": {"garbage"}}); string(r.Body) != "{}\n" {
		t.Fatalf("answer to garbage %d %q", r.Status, r.Body)
	}
	// The batch is worked through just after the answer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		works := f.works(t, a)
		if !works["api_token"] && !works["client_secret"] && !works["access_token"] && !works["session"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reported secrets still work: %v", works)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for kind, ok := range f.works(t, b) {
		if ok {
			t.Errorf("node b: the %s still works", kind)
		}
	}
	servertest.Expect(t, a.Request("GET", "/v1/me", nil, "X-API-Token", spare.Token), 200, "")
	n := 0
	for _, e := range auditEntries(t, a, f.admin) {
		if d, _ := e["details"].(map[string]any); e["action"] == "credential.leaked" && d["reported_via"] == "bulk_revoke" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d credential.leaked entries for the bulk report, want 4 (API token, client secret, refresh token, session)", n)
	}

	// Malformed.
	servertest.Expect(t, a.Request("POST", "/v1/credentials/revoke", map[string][]string{"credentials": make([]string, 1001)}), 400, "invalid_request")
	servertest.Expect(t, a.Request("POST", "/v1/credentials/revoke", map[string][]string{"credentials": {}}), 400, "invalid_request")
	servertest.Expect(t, a.Request("POST", "/v1/credentials/revoke", `{"credentials":[1]}`, "Content-Type", "application/json"), 400, "invalid_request")
	servertest.Expect(t, a.Request("POST", "/v1/credentials/revoke", `{"tokens":["x"]}`, "Content-Type", "application/json"), 400, "invalid_request")

	// 2 + 4 requests so far; 60 in all per hour, on either node.
	for i := 6; i < 60; i++ {
		env := a
		if i%2 == 0 {
			env = b
		}
		servertest.Expect(t, env.Request("POST", "/v1/credentials/revoke", map[string][]string{"credentials": {"x"}}), 202, "")
	}
	for _, env := range []*servertest.Env{a, b} {
		r := env.Request("POST", "/v1/credentials/revoke", map[string][]string{"credentials": {"x"}})
		servertest.Expect(t, r, 429, "too_many_attempts")
		if retryAfter(r) <= 0 {
			t.Fatalf("429 without Retry-After: %v", r.Header)
		}
	}
}

// TestLeakTokenPrefix: a node started with --token-prefix acme on the
// store of a node without it issues acme_ secrets of every kind, each
// matched by its kind's printed pattern; every secret issued before under
// the default prefix keeps working there; the new ones are revoked by
// possession like any other.
func TestLeakTokenPrefix(t *testing.T) {
	old := servertest.Start(t)
	f := newLeakFixture(t, old)
	acme := servertest.Start(t, func(c *server.Config) { c.DatabaseURL, c.TokenPrefix = old.DatabaseURL, "acme" })
	for kind, ok := range f.works(t, acme) {
		if !ok { // the refresh token is used here for the first time
			t.Errorf("the %s issued under the default prefix does not work with --token-prefix acme", kind)
		}
	}

	admin := acme.AdminToken()
	var tok apiToken
	acme.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "acme"}).JSON(t, &tok)
	dev := acme.Login("dev@example.com", memberPW)
	var cred credential
	acme.As(dev, "POST", "/v1/credentials", map[string]string{"name": "acme"}).JSON(t, &cred)
	servertest.Expect(t, acme.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
	app := enableAPIAccess(t, acme, admin, nil)
	issued := map[token.Prefix]string{token.APIToken: tok.Token, token.ClientSecret: cred.ClientSecret, token.ClientID: cred.ClientID,
		token.AccessToken: app.AccessToken, token.RefreshToken: app.RefreshToken}
	for _, k := range token.Kinds {
		s := issued[k.Prefix]
		re := regexp.MustCompile(token.Pattern("acme", k.Prefix))
		if re.FindString(" "+s+" ") != s || !strings.HasPrefix(s, "acme_") {
			t.Errorf("%s %q does not match %s", k.Name, s, re)
		}
	}
	servertest.Expect(t, acme.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token), 200, "")
	servertest.Expect(t, old.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token), 200, "")
	accessToken(t, clientToken(old, cred))
	servertest.Expect(t, acme.Request("POST", "/oauth/revoke", map[string]string{"token": tok.Token}), 200, "")
	servertest.Expect(t, acme.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token), 401, "invalid_token")
	servertest.Expect(t, acme.As(app.AccessToken, "GET", "/v1/me", nil), 200, "")
}

// TestLeakCanary: a canary API token used from three addresses is answered byte for byte like an
// unknown token, and each use leaves a credential.canary_used entry with
// the address, user agent and path, and sends a credential.canary_used
// event with them.
func TestLeakCanary(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks, func(c *server.Config) { c.TrustedProxies, _ = httpx.ParseTrustedProxies("127.0.0.1/32") })
	admin := env.AdminToken()
	rc := newReceiver(t, nil)
	servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"credential.canary_used"}}), 201, "")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "deploy key", "canary": true})
	servertest.Expect(t, r, 201, "")
	var canary apiToken
	r.JSON(t, &canary)
	if !token.Valid(canary.Token, token.APIToken) {
		t.Fatalf("canary %q does not look like an API token", canary.Token)
	}
	unknown := token.New(token.APIToken)
	same := func(a, b *servertest.Response) {
		t.Helper()
		if a.Status != 401 || a.Status != b.Status || string(a.Body) != string(b.Body) ||
			a.Header.Get("WWW-Authenticate") != b.Header.Get("WWW-Authenticate") || a.Header.Get("Content-Type") != b.Header.Get("Content-Type") {
			t.Fatalf("canary answered %d %v %s, unknown token %d %v %s", a.Status, a.Header, a.Body, b.Status, b.Header, b.Body)
		}
	}
	for i, from := range []string{"203.0.113.7", "198.51.100.2", "2001:db8::9"} {
		ua := "curl/8." + strconv.Itoa(i)
		path := "/v1/workspaces"
		same(env.Request("GET", path, nil, "X-API-Token", canary.Token, "X-Forwarded-For", from, "User-Agent", ua),
			env.Request("GET", path, nil, "X-API-Token", unknown, "X-Forwarded-For", from, "User-Agent", ua))
	}
	var uses []map[string]any
	for _, e := range auditEntries(t, env, admin) {
		if e["action"] == "credential.canary_used" {
			uses = append(uses, e["details"].(map[string]any))
			if e["target_id"] != canary.ID {
				t.Errorf("entry %v", e)
			}
		}
	}
	if len(uses) != 3 {
		t.Fatalf("%d canary entries, want 3: %v", len(uses), uses)
	}
	seen := map[string]bool{}
	for _, d := range uses {
		seen[d["client_addr"].(string)] = true
		if !strings.HasPrefix(d["user_agent"].(string), "curl/8.") || d["path"] != "/v1/workspaces" {
			t.Errorf("details %v", d)
		}
	}
	if len(seen) != 3 {
		t.Errorf("addresses %v", seen)
	}
	// One event per use, each naming where it came from.
	deadline := time.Now().Add(10 * time.Second)
	for len(rc.all()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	events := map[string]bool{}
	for _, d := range rc.all() {
		if d.Event.Type != "credential.canary_used" || d.Event.Data["path"] != "/v1/workspaces" || !strings.HasPrefix(d.Event.Data["user_agent"], "curl/8.") {
			t.Errorf("event %s", d.Body)
		}
		events[d.Event.Data["client_addr"]] = true
	}
	if len(events) != 3 {
		t.Fatalf("canary events from %v, want the three addresses", events)
	}
	// Listed as a canary for its admins.
	var toks struct{ Data []map[string]any }
	env.As(admin, "GET", "/v1/api-tokens", nil).JSON(t, &toks)
	if len(toks.Data) != 1 || toks.Data[0]["canary"] != true {
		t.Fatalf("list %v", toks.Data)
	}
}

// githubSigner signs batches as GitHub's secret scanning does, with a
// P-256 key the test makes, published in a key file of GitHub's shape.
type githubSigner struct {
	key  *ecdsa.PrivateKey
	id   string
	file string
}

func newGitHubSigner(t *testing.T) *githubSigner {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s := &githubSigner{key: key, id: "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a", file: filepath.Join(t.TempDir(), "keys.json")}
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{
		{"key_identifier": s.id, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true}}})
	if err := os.WriteFile(s.file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *githubSigner) sign(t *testing.T, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// post sends a batch with the given key id and signature.
func postGitHub(env *servertest.Env, body []byte, id, sig string) *servertest.Response {
	return env.Request("POST", "/v1/secret-scanning/github", string(body), "Content-Type", "application/json",
		"Github-Public-Key-Identifier", id, "Github-Public-Key-Signature", sig)
}

// TestLeakGitHubSecretScanning: a batch signed exactly as GitHub signs,
// with a key from a key file, kills the reported secrets on both nodes and
// labels each token; the same batch with a flipped byte, a wrong key id,
// no signature, or re-serialised is 401 and revokes nothing. An account
// whose leak_policy is notify is told (audited), its secret left working.
func TestLeakGitHubSecretScanning(t *testing.T) {
	signer := newGitHubSigner(t)
	rs := startRedis(t, "")
	cfg := func(c *server.Config) {
		c.RedisURL, c.RedisPrefix, c.GitHubScanningKeys = "redis://127.0.0.1:"+rs.port+"/0", "gh:", signer.file
	}
	a := servertest.Start(t, cfg)
	b := servertest.Start(t, cfg, func(c *server.Config) { c.DatabaseURL = a.DatabaseURL })
	f := newLeakFixture(t, a)
	unknown := token.New(token.APIToken)
	batch, _ := json.Marshal([]map[string]string{
		{"token": f.apiTok.Token, "type": "gatehouse_api_token", "url": "https://github.com/o/r/blob/abc/.env", "source": "content"},
		{"token": f.cred.ClientSecret, "type": "gatehouse_client_secret", "url": "https://github.com/o/r/commit/abc", "source": "commit"},
		{"token": unknown, "type": "gatehouse_api_token", "url": "https://gist.github.com/x", "source": "gist"},
	})
	sig := signer.sign(t, batch)

	// Refused: nothing revoked.
	flipped := append([]byte(nil), batch...)
	flipped[len(flipped)/2] ^= 1
	var pretty bytes.Buffer
	json.Indent(&pretty, batch, "", "  ")
	for name, r := range map[string]*servertest.Response{
		"flipped byte":   postGitHub(a, flipped, signer.id, sig),
		"wrong key id":   postGitHub(a, batch, "0000", sig),
		"no signature":   postGitHub(a, batch, signer.id, ""),
		"re-serialised":  postGitHub(b, pretty.Bytes(), signer.id, sig),
		"not base64 DER": postGitHub(b, batch, signer.id, "bm90IGEgc2lnbmF0dXJl"),
	} {
		if r.Status != 401 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	for kind, ok := range f.works(t, b) {
		if !ok && kind != "refresh_token" {
			t.Fatalf("%s revoked by a refused batch", kind)
		}
	}

	r := postGitHub(b, batch, signer.id, sig)
	servertest.Expect(t, r, 200, "")
	var labels []map[string]string
	r.JSON(t, &labels)
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	want := []map[string]string{
		{"token_hash": hash(f.apiTok.Token), "token_type": "gatehouse_api_token", "label": "true_positive"},
		{"token_hash": hash(f.cred.ClientSecret), "token_type": "gatehouse_client_secret", "label": "true_positive"},
		{"token_hash": hash(unknown), "token_type": "gatehouse_api_token", "label": "false_positive"},
	}
	if fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Fatalf("labels %v, want %v", labels, want)
	}
	for name, env := range map[string]*servertest.Env{"a": a, "b": b} {
		works := f.works(t, env)
		if works["api_token"] || works["client_secret"] || works["issued_by_cred"] {
			t.Errorf("node %s: reported secrets still work: %v", name, works)
		}
	}
	found := 0
	for _, e := range auditEntries(t, a, f.admin) {
		if d, _ := e["details"].(map[string]any); e["action"] == "credential.leaked" && d["reported_via"] == "github_secret_scanning" {
			found++
			if d["url"] == "" || d["source"] == "" || d["action"] != "revoked" {
				t.Errorf("entry %v", e)
			}
		}
	}
	if found != 2 {
		t.Errorf("%d GitHub entries, want 2", found)
	}

	// notify: audited, left working.
	r = a.As(f.admin, "PUT", "/v1/settings", map[string]string{"leak_policy": "notify"})
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["leak_policy"] != "notify" {
		t.Fatalf("settings %s", r.Body)
	}
	var spare apiToken
	a.As(f.admin, "POST", "/v1/api-tokens", map[string]string{"name": "spare"}).JSON(t, &spare)
	one, _ := json.Marshal([]map[string]string{{"token": spare.Token, "type": "t", "url": "u", "source": "content"}})
	r = postGitHub(a, one, signer.id, signer.sign(t, one))
	servertest.Expect(t, r, 200, "")
	servertest.Expect(t, b.Request("GET", "/v1/me", nil, "X-API-Token", spare.Token), 200, "")
	notified := false
	for _, e := range auditEntries(t, a, f.admin) {
		if d, _ := e["details"].(map[string]any); e["action"] == "credential.leaked" && e["target_id"] == spare.ID && d["action"] == "notified" {
			notified = true
		}
	}
	if !notified {
		t.Error("no notified entry under leak_policy notify")
	}
	servertest.Expect(t, a.As(f.admin, "PUT", "/v1/settings", map[string]string{"leak_policy": "ignore"}), 400, "invalid_request")
}

// TestLeakBulkRevokeVolley: 90 bulk reports released together over
// connections opened in advance, split between two nodes, from one client
// address: exactly the hour's 60 are taken (202), the other 30 are 429
// with Retry-After, and every credential named by a taken report is
// revoked — the limit holds when requests arrive all at once, not only
// one at a time.
func TestLeakBulkRevokeVolley(t *testing.T) {
	a, b := twoLeakNodes(t)
	f := newLeakFixture(t, a)
	// One live API token per shot: whichever shots are taken, each
	// revokes its own.
	toks := make([]apiToken, 90)
	for i := range toks {
		a.As(f.admin, "POST", "/v1/api-tokens", map[string]string{"name": "volley-" + strconv.Itoa(i)}).JSON(t, &toks[i])
	}
	shots := make([]volleyReq, len(toks))
	for i, tok := range toks {
		env := a
		if i%2 == 1 {
			env = b
		}
		body, _ := json.Marshal(map[string][]string{"credentials": {tok.Token}})
		shots[i] = volleyReq{req: jsonRequest(t, env.URL+"/v1/credentials/revoke", string(body))}
	}
	res := volley(t, shots)
	taken, refused := 0, 0
	for i, r := range res.resps {
		switch r.Status {
		case 202:
			taken++
			if w := a.As(toks[i].Token, "GET", "/v1/me", nil); w.Status != 401 {
				t.Errorf("shot %d was taken but its API token still answers %d", i, w.Status)
			}
		case 429:
			refused++
			servertest.Expect(t, r, 429, "too_many_attempts")
			if retryAfter(r) <= 0 {
				t.Errorf("429 without Retry-After: %v", r.Header)
			}
		default:
			t.Errorf("shot %d: %d %s", i, r.Status, r.Body)
		}
	}
	if taken != 60 || refused != 30 {
		t.Fatalf("%d reports taken and %d refused of 90 released together; want exactly 60 and 30", taken, refused)
	}
}

// TestLeakBulkRevokeIPv6Network: behind a trusted proxy, 90 bulk reports
// released together over connections opened in advance, split between two
// nodes sharing a store and Redis, each from another address of one IPv6
// /64 (as the proxy forwards it): the /64 counts as one address, so
// exactly the hour's 60 are taken. An address of the next /64 is still
// served, and the same addresses forged by a client the server does not
// trust count as the client's own.
func TestLeakBulkRevokeIPv6Network(t *testing.T) {
	a, b := twoLeakNodes(t, func(c *server.Config) { c.TrustedProxies, _ = httpx.ParseTrustedProxies("127.0.0.1/32") })
	report := func(i int, from string) *http.Request {
		node := a
		if i%2 == 1 {
			node = b
		}
		r := jsonRequest(t, node.URL+"/v1/credentials/revoke", `{"credentials":["x"]}`)
		r.Header.Set("X-Forwarded-For", from)
		return r
	}
	shots := make([]volleyReq, 90)
	for i := range shots {
		shots[i] = volleyReq{req: report(i, fmt.Sprintf("2001:db8:5:6:%x:%x::1", i, i*7+1))}
	}
	taken, refused := 0, 0
	for i, r := range volley(t, shots).resps {
		switch r.Status {
		case 202:
			taken++
		case 429:
			refused++
			servertest.Expect(t, r, 429, "too_many_attempts")
		default:
			t.Errorf("shot %d: %d %s", i, r.Status, r.Body)
		}
	}
	if taken != 60 || refused != 30 {
		t.Fatalf("%d reports taken and %d refused from 90 addresses of one /64; want exactly 60 and 30", taken, refused)
	}
	send := func(node *servertest.Env, from string) *servertest.Response {
		return node.Request("POST", "/v1/credentials/revoke", map[string][]string{"credentials": {"x"}}, "X-Forwarded-For", from)
	}
	servertest.Expect(t, send(a, "2001:db8:5:7::1"), 202, "")
	servertest.Expect(t, send(b, "2001:db8:5:6:ffff::2"), 429, "too_many_attempts")

	// Not behind the trusted proxy: the forged header is ignored, and the
	// client's own address (127.0.0.2) is what counts.
	for i := range 61 {
		r := report(i, fmt.Sprintf("2001:db8:%x::1", i))
		want := 202
		if i == 60 {
			want = 429
		}
		got := volley(t, []volleyReq{{req: r, from: "127.0.0.2"}}).resps[0]
		if got.Status != want {
			t.Fatalf("untrusted report %d: %d %s, want %d", i, got.Status, got.Body, want)
		}
	}
}
