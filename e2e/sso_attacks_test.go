package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/oidcprovider"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// gatedIssuer is a discovery-only OpenID provider whose next discovery,
// once armed, waits until released: it holds one settings save between
// its read of the stored single sign-on and its write.
type gatedIssuer struct {
	URL     string
	armed   atomic.Bool
	arrived chan struct{}
	release chan struct{}
}

func startGatedIssuer(t *testing.T) *gatedIssuer {
	t.Helper()
	g := &gatedIssuer{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		if g.armed.CompareAndSwap(true, false) {
			g.arrived <- struct{}{}
			<-g.release
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": g.URL, "authorization_endpoint": g.URL + "/authorize", "token_endpoint": g.URL + "/token",
			"jwks_uri": g.URL + "/keys", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// TestSSOConcurrentSaveConflicts: "A later PUT changes only the fields it
// names" (docs/sso.md), also when two saves overlap. While a save naming
// only domains discovers the provider, another turns required on (or
// removes single sign-on) and commits; the first was made from what the
// second changed, and is a conflict (409, nothing changed), not an undoing
// of the second: required stays on, a removed single sign-on stays away.
func TestSSOConcurrentSaveConflicts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first map[string]any
		check func(t *testing.T, sso map[string]any)
	}{
		{"required on", map[string]any{"required": true}, func(t *testing.T, sso map[string]any) {
			if sso == nil || sso["required"] != true || len(sso["domains"].([]any)) != 1 {
				t.Fatalf("after required was turned on and an overtaken save of domains: %v", sso)
			}
		}},
		{"removed", map[string]any{"issuer": ""}, func(t *testing.T, sso map[string]any) {
			if sso != nil {
				t.Fatalf("after single sign-on was removed and an overtaken save of domains: %v", sso)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := servertest.Start(t, insecureWebhooks)
			g := startGatedIssuer(t)
			admin := env.AdminToken()
			servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
				"issuer": g.URL, "client_id": "gatehouse-console", "client_secret": "s3cret", "domains": []string{"example.com"}}}), 200, "")

			g.armed.Store(true)
			overtaken := make(chan *servertest.Response, 1)
			go func() {
				overtaken <- env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{"domains": []string{"example.com", "example.org"}}})
			}()
			select {
			case <-g.arrived:
			case <-time.After(20 * time.Second):
				t.Fatal("the save of domains never discovered the provider")
			}
			servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": tc.first}), 200, "")
			close(g.release)
			servertest.Expect(t, <-overtaken, 409, "conflict")
			var got struct {
				SSO map[string]any `json:"sso"`
			}
			env.As(admin, "GET", "/v1/settings", nil).JSON(t, &got)
			tc.check(t, got.SSO)
		})
	}
}

// TestSSOStartBadAddressNo5xx: SPEC §10.8 "No 5xx from input, on any
// store" — the address typed on the single sign-on page, and the ?account=
// of the link, with a NUL, broken UTF-8 or a control character.
func TestSSOStartBadAddressNo5xx(t *testing.T) {
	env, _, _ := ssoSetUp(t)
	for _, email := range []string{"a\x00nn@example.com", "ann\xff@example.com", "ann@exa\x00mple.com", "ann@example.com\x00", "\xc3@example.com", "ann@\xff"} {
		resp, b := ssoStart(t, env, ssoBrowser(t), email)
		if resp.StatusCode >= 500 {
			t.Errorf("email %q: %d %s", email, resp.StatusCode, b)
		}
	}
	for _, acc := range []string{"acc\x00x", "\xff", "acc_%00", strings.Repeat("a", 5000)} {
		// The question a link from elsewhere gets, and the start.
		resp, _ := ssoGet(t, ssoBrowser(t), env.URL+"/admin/sso?account="+url.QueryEscape(acc))
		if resp.StatusCode >= 500 {
			t.Errorf("account %q: %d", acc, resp.StatusCode)
		}
		resp, _ = ssoFollow(t, ssoBrowser(t), env.URL+"/admin/sso?account="+url.QueryEscape(acc))
		if resp.StatusCode >= 500 {
			t.Errorf("account %q followed from the console: %d", acc, resp.StatusCode)
		}
	}
	for _, q := range []string{"state=%00&code=x", "state=%ff%fe&code=%00", "state=x&code=x&error=%00%ff"} {
		resp, _ := ssoGet(t, ssoBrowser(t), env.URL+"/admin/sso/callback?"+q)
		if resp.StatusCode >= 500 {
			t.Errorf("callback %q: %d", q, resp.StatusCode)
		}
	}
}

// TestSSOOtherAccountsUser: two accounts use the same provider for the
// same domain. The provider of account B asserts the address of a user of
// account A: refused (users are matched within the account). A user of A
// disabled mid-flight, and account A suspended mid-flight, are refused.
func TestSSOOtherAccountsUser(t *testing.T) {
	env, op, admin := ssoSetUp(t)
	env.CreateUser(admin, "ann@example.com", memberPW)
	dan := env.CreateUser(admin, "dan@example.com", memberPW)
	created := env.As(admin, "POST", "/v1/accounts", map[string]any{"name": "b", "admin_email": "boss@example.org", "admin_password": memberPW})
	servertest.Expect(t, created, 201, "")
	accB := created.Map(t)["id"].(string)
	bAdmin := env.Login("boss@example.org", memberPW)
	servertest.Expect(t, env.As(bAdmin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
		"issuer": op.URL, "client_id": op.ClientID, "client_secret": ssoClientSecret, "domains": []string{"example.com", "example.org"}}}), 200, "")

	// B's provider asserts A's user, through B's link.
	op.SignIn(oidcprovider.User{Subject: "x", Email: "ann@example.com", EmailVerified: true})
	c := ssoBrowser(t)
	resp, _ := ssoFollow(t, c, env.URL+"/admin/sso?account="+accB)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start B: %d", resp.StatusCode)
	}
	resp, _ = ssoGet(t, c, resp.Header.Get("Location"))
	resp, body := ssoGet(t, c, resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusForbidden || signedIn(t, env, c) {
		t.Fatalf("B's provider signed in A's user: %d %s", resp.StatusCode, body)
	}

	// Disabled between start and callback.
	op.SignIn(oidcprovider.User{Subject: "d", Email: "dan@example.com", EmailVerified: true})
	c = ssoBrowser(t)
	cb := ssoToCallback(t, env, c, "dan@example.com")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+dan, map[string]any{"status": "disabled"}), 200, "")
	resp, body = ssoGet(t, c, cb)
	if resp.StatusCode != http.StatusForbidden || signedIn(t, env, c) {
		t.Fatalf("disabled user signed in: %d %s", resp.StatusCode, body)
	}

	// B's own admin, with B suspended between start and callback.
	op.SignIn(oidcprovider.User{Subject: "b", Email: "boss@example.org", EmailVerified: true})
	c = ssoBrowser(t)
	cb = ssoToCallback(t, env, c, "boss@example.org")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/accounts/"+accB, map[string]any{"status": "suspended"}), 200, "")
	resp, body = ssoGet(t, c, cb)
	if resp.StatusCode != http.StatusForbidden || signedIn(t, env, c) {
		t.Fatalf("suspended account's user signed in: %d %s", resp.StatusCode, body)
	}
}

// rogueProvider is an OpenID provider whose token endpoint answers with
// whatever ID token mint makes for the sign-in's nonce.
type rogueProvider struct {
	URL  string
	key  *rsa.PrivateKey
	mu   sync.Mutex
	code map[string]string // code → nonce
	mint func(p *rogueProvider, nonce string) string
}

func startRogueProvider(t *testing.T) *rogueProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &rogueProvider{key: key, code: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize", "token_endpoint": p.URL + "/token",
			"jwks_uri": p.URL + "/keys", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "HS256", "none"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		c := rand.Text()
		p.mu.Lock()
		p.code[c] = q.Get("nonce")
		p.mu.Unlock()
		to, _ := url.Parse(q.Get("redirect_uri"))
		v := to.Query()
		v.Set("code", c)
		v.Set("state", q.Get("state"))
		to.RawQuery = v.Encode()
		http.Redirect(w, r, to.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		p.mu.Lock()
		nonce, ok := p.code[r.PostForm.Get("code")]
		delete(p.code, r.PostForm.Get("code"))
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "x", "token_type": "Bearer", "expires_in": 300, "id_token": p.mint(p, nonce)})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *rogueProvider) claims(nonce, email string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": p.URL, "sub": "s1", "aud": "rogue-client", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": nonce, "email": email, "email_verified": true}
}

func signIDToken(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(claims)
	jws, err := sig.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

// TestSSOForgedIDTokens: ID tokens that must never sign anyone in —
// alg none, HS256 keyed with the client secret, another issuer, a key not
// the provider's under its key id, another audience with azp naming us,
// a token without a nonce.
func TestSSOForgedIDTokens(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	rp := startRogueProvider(t)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
		"issuer": rp.URL, "client_id": "rogue-client", "client_secret": "rogue-secret-0123456789-0123456789-abcdef", "domains": []string{"example.com"}}}), 200, "")
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }

	// Control: a right token signs in.
	rp.mint = func(p *rogueProvider, n string) string {
		return signIDToken(t, jose.RS256, p.key, "k1", p.claims(n, "ann@example.com"))
	}
	c := ssoBrowser(t)
	ssoGet(t, c, ssoToCallback(t, env, c, "ann@example.com"))
	if !signedIn(t, env, c) {
		t.Fatal("control sign-in failed")
	}

	for _, tc := range []struct {
		name string
		mint func(p *rogueProvider, n string) string
	}{
		{"alg none", func(p *rogueProvider, n string) string {
			return b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(p.claims(n, "ann@example.com")) + "."
		}},
		{"HS256 with the client secret", func(p *rogueProvider, n string) string {
			return signIDToken(t, jose.HS256, []byte("rogue-secret-0123456789-0123456789-abcdef"), "k1", p.claims(n, "ann@example.com"))
		}},
		{"another issuer", func(p *rogueProvider, n string) string {
			cl := p.claims(n, "ann@example.com")
			cl["iss"] = "https://elsewhere.example"
			return signIDToken(t, jose.RS256, p.key, "k1", cl)
		}},
		{"a foreign key under the provider's kid", func(p *rogueProvider, n string) string {
			return signIDToken(t, jose.RS256, other, "k1", p.claims(n, "ann@example.com"))
		}},
		{"another audience, azp us", func(p *rogueProvider, n string) string {
			cl := p.claims(n, "ann@example.com")
			cl["aud"], cl["azp"] = "someone-else", "rogue-client"
			return signIDToken(t, jose.RS256, p.key, "k1", cl)
		}},
		{"no nonce", func(p *rogueProvider, n string) string {
			cl := p.claims(n, "ann@example.com")
			delete(cl, "nonce")
			return signIDToken(t, jose.RS256, p.key, "k1", cl)
		}},
		{"email_verified as the number 1", func(p *rogueProvider, n string) string {
			cl := p.claims(n, "ann@example.com")
			cl["email_verified"] = 1
			return signIDToken(t, jose.RS256, p.key, "k1", cl)
		}},
		{"expired ten minutes ago", func(p *rogueProvider, n string) string {
			cl := p.claims(n, "ann@example.com")
			cl["exp"] = time.Now().Add(-10 * time.Minute).Unix()
			return signIDToken(t, jose.RS256, p.key, "k1", cl)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp.mint = tc.mint
			c := ssoBrowser(t)
			resp, body := ssoGet(t, c, ssoToCallback(t, env, c, "ann@example.com"))
			if resp.StatusCode != http.StatusForbidden || signedIn(t, env, c) {
				t.Fatalf("forged token: %d %s", resp.StatusCode, body)
			}
		})
	}
}
