package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/oidcprovider"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// thirdPartyApp is the answer of POST /v1/apps.
type thirdPartyApp struct {
	ID           string   `json:"id"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Type         string   `json:"type"`
	RedirectURIs []string `json:"redirect_uris"`
}

const appRedirect = "https://app.example.com/callback"

// registerApp registers an application as developer token devTok.
func registerApp(t *testing.T, env *servertest.Env, devTok, typ string, redirects []string, scopes []string) thirdPartyApp {
	t.Helper()
	body := map[string]any{"name": "Reporting " + typ, "type": typ, "redirect_uris": redirects, "homepage_url": "https://app.example.com"}
	if scopes != nil {
		body["scopes"] = scopes
	}
	r := env.As(devTok, "POST", "/v1/apps", body)
	servertest.Expect(t, r, 201, "")
	var a thirdPartyApp
	r.JSON(t, &a)
	return a
}

// issuerOf reads the issuer from the metadata.
func issuerOf(t *testing.T, env *servertest.Env) map[string]any {
	t.Helper()
	r := env.Request("GET", "/.well-known/oauth-authorization-server", nil)
	servertest.Expect(t, r, 200, "")
	return r.Map(t)
}

// userAgent is a browser without JavaScript: cookies, no automatic
// redirects, forms submitted by reading their hidden fields.
type userAgent struct {
	t    *testing.T
	base string
	c    *http.Client
	// totp, when set, is the secret of the user's second factor: the
	// sign-in's second step is answered with its current code.
	totp string
}

func newUserAgent(t *testing.T, base string) *userAgent {
	jar, _ := cookiejar.New(nil)
	return &userAgent{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (a *userAgent) abs(p string) string {
	if strings.HasPrefix(p, "/") {
		return a.base + p
	}
	return p
}

func (a *userAgent) do(method, p string, form url.Values) (*http.Response, string) {
	a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, a.abs(p), body)
	if err != nil {
		a.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, p, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// formShot is the user agent's post of form to p, with its cookies, as a
// shot for volley (which writes the request itself).
func (a *userAgent) formShot(p string, form url.Values) volleyReq {
	a.t.Helper()
	req, err := http.NewRequest("POST", a.abs(p), strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range a.c.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	return volleyReq{req: req}
}

var (
	formRe   = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// form returns the fields of the page's form that posts to a path ending
// in action.
func formFields(t *testing.T, page, action string) url.Values {
	t.Helper()
	for _, m := range formRe.FindAllStringSubmatch(page, -1) {
		if strings.HasSuffix(html.UnescapeString(m[1]), action) {
			v := url.Values{}
			for _, h := range hiddenRe.FindAllStringSubmatch(m[2], -1) {
				v.Set(h[1], html.UnescapeString(h[2]))
			}
			return v
		}
	}
	t.Fatalf("no form posting to %s in:\n%s", action, page)
	return nil
}

// outside reports whether a redirect leaves Gatehouse.
func (a *userAgent) outside(loc string) bool {
	return !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, a.base)
}

// authorize opens authURL, signs in as email if asked, and answers the
// consent page with decision ("allow" or "deny"; "" expects no consent
// page: it returns that page). It returns the URL the browser is sent to outside Gatehouse, or
// nil with the last answer when none.
func (a *userAgent) authorize(authURL, email, pw, decision string) (*url.URL, *http.Response, string) {
	a.t.Helper()
	resp, body := a.do("GET", authURL, nil)
	for range 10 {
		switch {
		case resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusFound:
			loc := resp.Header.Get("Location")
			if a.outside(loc) {
				u, err := url.Parse(loc)
				if err != nil {
					a.t.Fatal(err)
				}
				return u, resp, body
			}
			resp, body = a.do("GET", loc, nil)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/login"`):
			f := formFields(a.t, body, "/admin/login")
			f.Set("email", email)
			f.Set("password", pw)
			resp, body = a.do("POST", "/admin/login", f)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/login/code"`) && a.totp != "":
			f := formFields(a.t, body, "/admin/login/code")
			f.Set("code", totpAt(a.totp, 1)) // the next step: enrolment used this one
			resp, body = a.do("POST", "/admin/login/code", f)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/authorize"`):
			if decision == "" {
				return nil, resp, body
			}
			f := formFields(a.t, body, "/admin/authorize")
			f.Set("decision", decision)
			resp, body = a.do("POST", "/admin/authorize", f)
		default:
			return nil, resp, body
		}
	}
	a.t.Fatal("too many steps")
	return nil, nil, ""
}

// oauthConfig is x/oauth2's configuration of app on env.
func oauthConfig(env *servertest.Env, app thirdPartyApp, redirect string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, RedirectURL: redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/oauth/authorize", TokenURL: env.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// appsWorld is an account with an admin, a developer with a confidential
// and a public application, and a plain member.
type appsWorld struct {
	env                  *servertest.Env
	admin, devTok        string
	memberID             string
	confidential, public thirdPartyApp
	issuer               string
}

const appMember = "member@example.com"

func newAppsWorld(t *testing.T, opts ...func(*server.Config)) *appsWorld {
	env := servertest.Start(t, opts...)
	w := &appsWorld{env: env}
	w.admin, _, w.devTok, _ = developer(t, env)
	w.memberID = env.CreateUser(w.admin, appMember, memberPW)
	w.confidential = registerApp(t, env, w.devTok, "confidential", []string{appRedirect}, []string{"workspaces:read", "workspaces:write", "users:read", "users:write"})
	w.public = registerApp(t, env, w.devTok, "public", []string{"http://127.0.0.1/callback", "com.example.app:/oauth"}, nil)
	w.issuer = issuerOf(t, env)["issuer"].(string)
	return w
}

// code runs the browser part for conf and returns the callback's query.
func (w *appsWorld) code(t *testing.T, conf *oauth2.Config, verifier, decision string) url.Values {
	t.Helper()
	state := "st-" + verifier[:8]
	cb, resp, body := newUserAgent(t, w.env.URL).authorize(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), appMember, memberPW, decision)
	if cb == nil {
		t.Fatalf("no redirect to the application: %d %s", resp.StatusCode, body)
	}
	q := cb.Query()
	if q.Get("state") != state || q.Get("iss") != w.issuer {
		t.Fatalf("callback %s: state or iss wrong (issuer %s)", cb, w.issuer)
	}
	return q
}

// TestAppsAuthorizationCodeGoClient: golang.org/x/oauth2 drives the flow
// for a confidential and a public application: sign-in, consent in
// words, the code with state and iss, the exchange with PKCE, tokens that
// act as the user with the granted scopes, refresh, remembered consent,
// the metadata, and revoking the authorization.
func TestAppsAuthorizationCodeGoClient(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	md := issuerOf(t, env)
	if md["authorization_endpoint"] != w.issuer+"/oauth/authorize" || md["authorization_response_iss_parameter_supported"] != true ||
		!strings.Contains(strings.Join(toStrings(md["code_challenge_methods_supported"]), " "), "S256") ||
		strings.Join(toStrings(md["response_types_supported"]), " ") != "code" ||
		!strings.Contains(strings.Join(toStrings(md["grant_types_supported"]), " "), "authorization_code") {
		t.Fatalf("metadata %v", md)
	}

	// The consent page names the application, its publisher and each scope
	// in words; a member asking for users:write does not get it.
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read", "users:write")
	verifier := oauth2.GenerateVerifier()
	ua := newUserAgent(t, env.URL)
	_, resp, page := ua.authorize(conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier)), appMember, memberPW, "")
	if resp.StatusCode != 200 || !strings.Contains(page, "Reporting confidential") || !strings.Contains(page, "default") ||
		!strings.Contains(page, "See the workspaces you can see") || !strings.Contains(page, "users:write") ||
		!strings.Contains(page, "will not get it") {
		t.Fatalf("consent page %d:\n%s", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://app.example.com") {
		t.Fatalf("consent CSP %q", csp)
	}
	f := formFields(t, page, "/admin/authorize")
	f.Set("decision", "allow")
	resp, _ = ua.do("POST", "/admin/authorize", f)
	cb, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 303 || cb.Query().Get("iss") != w.issuer || cb.Query().Get("state") != "s1" || cb.Query().Get("code") == "" ||
		!strings.HasPrefix(cb.String(), appRedirect+"?") {
		t.Fatalf("allow: %d %s", resp.StatusCode, cb)
	}
	ctx := context.Background()
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	// users:write narrowed to what the member holds: users:read.
	if tok.RefreshToken == "" || tok.Extra("scope") != "users:read workspaces:read" || tok.TokenType != "bearer" {
		t.Fatalf("token %+v scope %v", tok, tok.Extra("scope"))
	}
	me := env.As(tok.AccessToken, "GET", "/v1/me", nil).Map(t)
	if me["auth_method"] != "authorization_code" || me["user"].(map[string]any)["email"] != appMember {
		t.Fatalf("me %v", me)
	}
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/users", nil), 200, "")
	// One budget per user: the application's requests and the user's own
	// draw on the same daily count.
	own := env.Login(appMember, memberPW)
	daily := func(tok string) int {
		r := env.As(tok, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 200, "")
		n, err := strconv.Atoi(r.Header.Get("X-RateLimit-Daily-Remaining"))
		if err != nil {
			t.Fatalf("daily remaining %q", r.Header.Get("X-RateLimit-Daily-Remaining"))
		}
		return n
	}
	before := daily(own)
	if got := daily(tok.AccessToken); got != before-1 {
		t.Fatalf("the application's request left %d of the user's budget after %d", got, before)
	}
	if got := daily(own); got != before-2 {
		t.Fatalf("the user's own request left %d after %d", got, before)
	}
	servertest.Expect(t, env.As(tok.AccessToken, "POST", "/v1/workspaces", map[string]string{"name": "w"}), 403, "insufficient_scope")

	// Refresh through the client's TokenSource rotates the refresh token.
	src := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)})
	tok2, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", tok2)
	}
	servertest.Expect(t, env.As(tok2.AccessToken, "GET", "/v1/workspaces", nil), 200, "")

	// Consent is remembered for the same or fewer scopes: no page.
	v2 := oauth2.GenerateVerifier()
	q := w.code(t, oauthConfig(env, w.confidential, appRedirect, "workspaces:read"), v2, "")
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v2)); err != nil {
		t.Fatal(err)
	}

	// The public application on a loopback port of the client's choosing.
	pconf := oauthConfig(env, w.public, "http://127.0.0.1:53187/callback", "workspaces:read")
	pv := oauth2.GenerateVerifier()
	q = w.code(t, pconf, pv, "allow")
	ptok, err := pconf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pv))
	if err != nil {
		t.Fatal(err)
	}
	servertest.Expect(t, env.As(ptok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")

	// The user's authorised applications; revoking one ends its tokens.
	memberTok := env.Login(appMember, memberPW)
	list := env.As(memberTok, "GET", "/v1/me/authorizations", nil).Map(t)["data"].([]any)
	if len(list) != 2 {
		t.Fatalf("authorizations %v", list)
	}
	servertest.Expect(t, env.As(memberTok, "DELETE", "/v1/me/authorizations/"+w.confidential.ClientID, nil), 204, "")
	servertest.Expect(t, env.As(tok2.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	// Refreshing with the rotated refresh token is refused as invalid_grant.
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.Response.StatusCode != 400 {
		t.Fatalf("a refresh token of a revoked authorization: %v", err)
	}
	servertest.Expect(t, env.As(ptok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
	// An admin sees and revokes a user's.
	servertest.Expect(t, env.As(w.admin, "GET", "/v1/users/"+w.memberID+"/authorizations", nil), 200, "")
	servertest.Expect(t, env.As(w.admin, "DELETE", "/v1/users/"+w.memberID+"/authorizations/"+w.public.ClientID, nil), 204, "")
	servertest.Expect(t, env.As(ptok.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")

	// Deleting the application ends its tokens too.
	v3 := oauth2.GenerateVerifier()
	q = w.code(t, pconf, v3, "allow")
	ptok, err = pconf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v3))
	if err != nil {
		t.Fatal(err)
	}
	servertest.Expect(t, env.As(w.devTok, "DELETE", "/v1/apps/"+w.public.ID, nil), 204, "")
	servertest.Expect(t, env.As(ptok.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, s := range l {
			out = append(out, s.(string))
		}
	}
	return out
}

// exchange posts an authorization_code grant.
func exchange(env *servertest.Env, app thirdPartyApp, code, redirect, verifier string) *servertest.Response {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {app.ClientID}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	if app.ClientSecret != "" {
		form.Set("client_secret", app.ClientSecret)
	}
	return env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// TestAppsAttacks: what the authorization code flow refuses.
func TestAppsAttacks(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read")

	t.Run("redirect URIs and clients never redirected to", func(t *testing.T) {
		for _, ru := range []string{
			appRedirect + "/", "https://app.example.com/callbacK", "https://app.example.com/callbac", appRedirect + "#x",
			appRedirect + "?next=https://evil.example", "https://app.example.com:8443/callback", "http://app.example.com/callback",
			"https://evil.example/callback", "https://app.example.com.evil.example/callback", "//evil.example/callback",
			"https://app.example.com/callback/../evil", "", "http://127.0.0.1:8080/other", "http://localhost:8080/callback",
			"com.example.app:/other",
		} {
			q := url.Values{"response_type": {"code"}, "client_id": {w.confidential.ClientID}, "redirect_uri": {ru}, "state": {"s"},
				"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
			resp, body := newUserAgent(t, env.URL).do("GET", "/oauth/authorize?"+q.Encode(), nil)
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, "redirect_uri") {
				t.Errorf("redirect_uri %q: %d %q %s", ru, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		}
		// The public application's second registered URI still differs
		// from the first's scheme: a redirect URI of one app on another.
		for _, id := range []string{"", "gci_unknown", w.public.ClientID} {
			q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {appRedirect}}
			resp, _ := newUserAgent(t, env.URL).do("GET", "/oauth/authorize?"+q.Encode(), nil)
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
				t.Errorf("client %q: %d %q", id, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		// The console page itself checks again.
		ua := newUserAgent(t, env.URL)
		ua.authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), appMember, memberPW, "deny")
		resp, _ := ua.do("GET", "/admin/authorize?"+url.Values{"response_type": {"code"}, "client_id": {w.confidential.ClientID},
			"redirect_uri": {"https://evil.example/"}}.Encode(), nil)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("console page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("sign-in returns only to an authorization page", func(t *testing.T) {
		// signIn opens the login page with next in its query, signs in with
		// its form (next posted too when posted), and returns the redirect.
		signIn := func(next string, posted bool) (int, string) {
			t.Helper()
			ua := newUserAgent(t, env.URL)
			resp, page := ua.do("GET", "/admin/login?next="+url.QueryEscape(next), nil)
			if resp.StatusCode != 200 {
				t.Fatalf("login page with next %q: %d", next, resp.StatusCode)
			}
			f := formFields(t, page, "/admin/login")
			if posted {
				f.Set("next", next)
			}
			f.Set("email", appMember)
			f.Set("password", memberPW)
			resp, _ = ua.do("POST", "/admin/login", f)
			return resp.StatusCode, resp.Header.Get("Location")
		}
		// An authorization page is returned to, from the query and posted.
		authz := "/admin/authorize?" + url.Values{"response_type": {"code"}, "client_id": {w.confidential.ClientID},
			"redirect_uri": {appRedirect}, "state": {"s"}}.Encode()
		for _, posted := range []bool{false, true} {
			if st, loc := signIn(authz, posted); st != 303 || loc != authz {
				t.Errorf("next %q (posted %v): %d to %q", authz, posted, st, loc)
			}
		}
		// Anything else is dropped: the console's home, never off-site.
		for _, next := range []string{
			"https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example/", "/\\/evil.example/",
			"https:evil.example", "http://evil.example/admin/authorize?x", "//evil.example/admin/authorize?x",
			"/admin/authorize?\r\nLocation: https://evil.example/", "/admin/authorize/../../\\evil.example",
			"javascript:alert(1)", " //evil.example", "/admin/authorize", "/admin/authorizex?y",
		} {
			for _, posted := range []bool{false, true} {
				if st, loc := signIn(next, posted); st != 303 || loc != "/admin" {
					t.Errorf("next %q (posted %v): %d to %q", next, posted, st, loc)
				}
			}
		}
	})

	t.Run("PKCE required, S256 only", func(t *testing.T) {
		base := func() url.Values {
			return url.Values{"response_type": {"code"}, "client_id": {w.public.ClientID}, "redirect_uri": {"http://127.0.0.1/callback"}, "state": {"s"}}
		}
		ch := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
		for name, q := range map[string]url.Values{
			"missing challenge": base(),
			"plain": func() url.Values {
				q := base()
				q.Set("code_challenge", ch)
				q.Set("code_challenge_method", "plain")
				return q
			}(),
			"no method": func() url.Values { q := base(); q.Set("code_challenge", ch); return q }(),
			"short challenge": func() url.Values {
				q := base()
				q.Set("code_challenge", "abc")
				q.Set("code_challenge_method", "S256")
				return q
			}(),
		} {
			cb, resp, body := newUserAgent(t, env.URL).authorize("/oauth/authorize?"+q.Encode(), appMember, memberPW, "")
			if cb == nil || cb.Query().Get("error") != "invalid_request" || cb.Query().Get("iss") != w.issuer || cb.Query().Get("code") != "" {
				t.Errorf("%s: %v %d %s", name, cb, resp.StatusCode, body)
			}
		}
		// A verifier for another challenge, none, and a downgrade (a
		// verifier where the code has a challenge the client forgot).
		v := oauth2.GenerateVerifier()
		code := w.code(t, conf, v, "allow").Get("code")
		servertest.Expect(t, exchange(env, w.confidential, code, appRedirect, oauth2.GenerateVerifier()), 400, "invalid_grant")
		servertest.Expect(t, exchange(env, w.confidential, code, appRedirect, ""), 400, "invalid_grant")
		servertest.Expect(t, exchange(env, w.confidential, code, appRedirect, ch), 400, "invalid_grant")
		// The redirect URI at the token endpoint must be the one used.
		servertest.Expect(t, exchange(env, w.confidential, code, appRedirect+"/", v), 400, "invalid_grant")
		// Another client's code.
		other := registerApp(t, env, w.devTok, "confidential", []string{appRedirect}, nil)
		servertest.Expect(t, exchange(env, other, code, appRedirect, v), 400, "invalid_grant")
		// Without the secret, or the public client's way, a confidential
		// client is not authenticated.
		noSecret := w.confidential
		noSecret.ClientSecret = ""
		servertest.Expect(t, exchange(env, noSecret, code, appRedirect, v), 401, "invalid_client")
		// The code still works for the right client, verifier and URI.
		servertest.Expect(t, exchange(env, w.confidential, code, appRedirect, v), 200, "")
	})

	t.Run("code used twice, released together", func(t *testing.T) {
		for round := range 3 {
			v := oauth2.GenerateVerifier()
			code := w.code(t, conf, v, "allow").Get("code")
			const n = 8
			c, _ := preconnected(t, env.URL, n)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "code_verifier": {v},
				"client_id": {w.confidential.ClientID}, "client_secret": {w.confidential.ClientSecret}}.Encode()
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				mu      sync.Mutex
				ok      []string
				refused int
			)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					req, _ := http.NewRequest("POST", env.URL+"/oauth/token", strings.NewReader(form))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := c.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					mu.Lock()
					defer mu.Unlock()
					switch {
					case resp.StatusCode == 200:
						ok = append(ok, between(string(b), `"access_token":"`, `"`))
					case resp.StatusCode == 400 && strings.Contains(string(b), "invalid_grant"):
						refused++
					default:
						t.Errorf("exchange: %d %s", resp.StatusCode, b)
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(ok) != 1 || refused != n-1 {
				t.Fatalf("round %d: %d exchanges won, %d refused", round, len(ok), refused)
			}
			// The second use revoked what the first issued.
			servertest.Expect(t, env.As(ok[0], "GET", "/v1/workspaces", nil), 401, "invalid_token")
		}
	})

	t.Run("CSRF on the consent form", func(t *testing.T) {
		ua := newUserAgent(t, env.URL)
		_, resp, page := ua.authorize(oauthConfig(env, w.confidential, appRedirect, "workspaces:write").AuthCodeURL("s",
			oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), appMember, memberPW, "")
		if resp.StatusCode != 200 {
			t.Fatalf("consent page %d", resp.StatusCode)
		}
		f := formFields(t, page, "/admin/authorize")
		f.Set("decision", "allow")
		for name, csrf := range map[string]string{"none": "", "wrong": "x" + f.Get("csrf")} {
			g := url.Values{}
			for k, v := range f {
				g[k] = v
			}
			if csrf == "" {
				g.Del("csrf")
			} else {
				g.Set("csrf", csrf)
			}
			resp, _ := ua.do("POST", "/admin/authorize", g)
			if resp.StatusCode != 403 || resp.Header.Get("Location") != "" {
				t.Errorf("%s token: %d %q", name, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		// Another site's page posting the form: refused by the browser's
		// Sec-Fetch-Site, whatever the token.
		req, _ := http.NewRequest("POST", env.URL+"/admin/authorize", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := ua.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("cross-site post: %d", resp.StatusCode)
		}
		// A signed-out browser gets the sign-in page, never a code.
		resp, _ = newUserAgent(t, env.URL).do("POST", "/admin/authorize", f)
		if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.Contains(loc, "/admin/login") {
			t.Errorf("signed out: %d %q", resp.StatusCode, loc)
		}
	})

	t.Run("deny", func(t *testing.T) {
		q := w.code(t, oauthConfig(env, w.confidential, appRedirect, "users:read"), oauth2.GenerateVerifier(), "deny")
		if q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Fatalf("deny: %v", q)
		}
	})

	t.Run("scopes beyond the app or the user", func(t *testing.T) {
		// Not registered by the application: invalid_scope.
		q := w.code(t, oauthConfig(env, w.confidential, appRedirect, "settings:write"), oauth2.GenerateVerifier(), "")
		if q.Get("error") != "invalid_scope" {
			t.Fatalf("unregistered scope: %v", q)
		}
		// Registered but not held: narrowed to what the user holds
		// (users:write to users:read), and the consent page says so.
		_, resp, page := newUserAgent(t, env.URL).authorize(oauthConfig(env, w.confidential, appRedirect, "users:write").AuthCodeURL("s",
			oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), appMember, memberPW, "")
		if resp.StatusCode != 200 || !strings.Contains(page, "will not get it: <code>users:write</code>") || !strings.Contains(page, "<code>users:read</code>") {
			t.Fatalf("a scope the user does not hold: %d %s", resp.StatusCode, page)
		}
		// A demotion narrows tokens already issued: the user's
		// permissions now.
		v := oauth2.GenerateVerifier()
		pconf := oauthConfig(env, w.public, "http://127.0.0.1:5000/callback", "users:read", "workspaces:read")
		tok, err := pconf.Exchange(context.Background(), w.code(t, pconf, v, "allow").Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/users", nil), 200, "")
		servertest.Expect(t, env.As(tok.AccessToken, "POST", "/v1/workspaces", map[string]string{"name": "w"}), 403, "insufficient_scope")
	})

	t.Run("approved policy", func(t *testing.T) {
		// An application of another account needs this account's approval.
		op := w.admin
		_, otherAdmin := env.CreateAccount(op, "Partner", "partner@example.com", "partner admin password 1")
		otherDevID := findUserID(t, env, otherAdmin, "partner@example.com")
		servertest.Expect(t, env.As(otherAdmin, "PUT", "/v1/developers/"+otherDevID, nil), 204, "")
		otherDev := env.Login("partner@example.com", "partner admin password 1")
		foreign := registerApp(t, env, otherDev, "public", []string{"http://127.0.0.1/cb"}, nil)
		fconf := oauthConfig(env, foreign, "http://127.0.0.1/cb", "workspaces:read")
		q := w.code(t, fconf, oauth2.GenerateVerifier(), "")
		if q.Get("error") != "access_denied" {
			t.Fatalf("unapproved app: %v", q)
		}
		// An admin consenting approves it for the account, saying so.
		ua := newUserAgent(t, env.URL)
		_, resp, page := ua.authorize(fconf.AuthCodeURL("a", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())),
			servertest.AdminEmail, servertest.AdminPassword, "")
		if resp.StatusCode != 200 || !strings.Contains(page, "approves it for every user of your account") || !strings.Contains(page, "Partner") {
			t.Fatalf("admin's consent page: %d %s", resp.StatusCode, page)
		}
		f := formFields(t, page, "/admin/authorize")
		f.Set("decision", "allow")
		if resp, _ := ua.do("POST", "/admin/authorize", f); resp.StatusCode != 303 || !strings.Contains(resp.Header.Get("Location"), "code=") {
			t.Fatalf("admin's allow: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// The approval endpoint: admins only, by id or client id.
		servertest.Expect(t, env.As(w.devTok, "PUT", "/v1/apps/"+foreign.ClientID+"/approval", nil), 403, "")
		servertest.Expect(t, env.As(w.admin, "PUT", "/v1/apps/"+foreign.ID+"/approval", nil), 200, "")
		servertest.Expect(t, env.As(w.admin, "PUT", "/v1/apps/gci_nothing/approval", nil), 404, "not_found")
		v := oauth2.GenerateVerifier()
		tok, err := fconf.Exchange(context.Background(), w.code(t, fconf, v, "allow").Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
		// none: no application at all — nor a code consented before.
		v = oauth2.GenerateVerifier()
		before := w.code(t, fconf, v, "allow").Get("code")
		servertest.Expect(t, env.As(w.admin, "PUT", "/v1/settings", map[string]string{"third_party_apps": "none"}), 200, "")
		if _, err := fconf.Exchange(context.Background(), before, oauth2.VerifierOption(v)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("a code consented before the none policy: %v", err)
		}
		if q := w.code(t, fconf, oauth2.GenerateVerifier(), ""); q.Get("error") != "access_denied" {
			t.Fatalf("none policy: %v", q)
		}
		servertest.Expect(t, env.As(w.admin, "PUT", "/v1/settings", map[string]string{"third_party_apps": "sometimes"}), 400, "invalid_request")
		servertest.Expect(t, env.As(w.admin, "PUT", "/v1/settings", map[string]string{"third_party_apps": "approved"}), 200, "")
	})

	t.Run("revocation, introspection and forward auth", func(t *testing.T) {
		pconf := oauthConfig(env, w.public, "http://127.0.0.1:6000/callback", "workspaces:read")
		issue := func() *oauth2.Token {
			v := oauth2.GenerateVerifier()
			tok, err := pconf.Exchange(context.Background(), w.code(t, pconf, v, "allow").Get("code"), oauth2.VerifierOption(v))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		tok := issue()
		r := env.As(w.admin, "POST", "/oauth/introspect", "token="+tok.AccessToken, "Content-Type", "application/x-www-form-urlencoded")
		servertest.Expect(t, r, 200, "")
		if m := r.Map(t); m["active"] != true || m["auth_method"] != "authorization_code" || m["client_id"] != w.public.ClientID || m["scope"] != "workspaces:read" {
			t.Fatalf("introspection %v", m)
		}
		if r := env.As(tok.AccessToken, "GET", "/v1/auth/check", nil); r.Status != 200 || r.Header.Get("X-Gatehouse-Auth-Method") != "authorization_code" {
			t.Fatalf("forward auth %d %v", r.Status, r.Header)
		}
		// An application's token sees no authorised applications and ends
		// no other's grant; it may end its own. Nor does it see or end the
		// user's console sessions.
		servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/me/authorizations", nil), 403, "forbidden")
		servertest.Expect(t, env.As(tok.AccessToken, "DELETE", "/v1/me/authorizations/"+w.confidential.ClientID, nil), 403, "forbidden")
		servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/me/sessions", nil), 403, "forbidden")
		servertest.Expect(t, env.As(tok.AccessToken, "DELETE", "/v1/me/sessions/ses_x", nil), 403, "forbidden")
		own := issue()
		servertest.Expect(t, env.As(own.AccessToken, "DELETE", "/v1/me/authorizations/"+w.public.ClientID, nil), 204, "")
		servertest.Expect(t, env.As(own.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")
		tok = issue()
		// A public client revokes with its client id alone (RFC 7009 §2.1).
		form := url.Values{"token": {tok.RefreshToken}, "client_id": {w.public.ClientID}}.Encode()
		servertest.Expect(t, env.Request("POST", "/oauth/revoke", form, "Content-Type", "application/x-www-form-urlencoded"), 200, "")
		servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	})

	t.Run("an admin revokes a user's authorisation in the console", func(t *testing.T) {
		pconf := oauthConfig(env, w.public, "http://127.0.0.1:6001/callback", "workspaces:read")
		verifier := oauth2.GenerateVerifier()
		tok, err := pconf.Exchange(context.Background(), w.code(t, pconf, verifier, "allow").Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		ua := newUserAgent(t, env.URL)
		_, page := ua.do("GET", "/admin/login", nil)
		f := formFields(t, page, "/admin/login")
		f.Set("email", servertest.AdminEmail)
		f.Set("password", servertest.AdminPassword)
		if resp, _ := ua.do("POST", "/admin/login", f); resp.StatusCode != 303 {
			t.Fatalf("console sign-in: %d", resp.StatusCode)
		}
		_, page = ua.do("GET", "/admin/users/"+w.memberID, nil)
		link := "/admin/users/" + w.memberID + "/authorizations/" + w.public.ClientID + "/revoke"
		if !strings.Contains(page, "Authorised applications") || !strings.Contains(page, `href="`+link+`"`) {
			t.Fatalf("user page:\n%s", page)
		}
		resp, page := ua.do("GET", link, nil)
		if resp.StatusCode != 200 || !strings.Contains(page, "every token it holds stops working") {
			t.Fatalf("confirmation %d:\n%s", resp.StatusCode, page)
		}
		servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
		if resp, _ := ua.do("POST", link, formFields(t, page, link)); resp.StatusCode != 303 {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	})

	t.Run("registration rules", func(t *testing.T) {
		for _, body := range []map[string]any{
			{"name": "x", "type": "confidential", "redirect_uris": []string{"http://app.example.com/cb"}},
			{"name": "x", "type": "confidential", "redirect_uris": []string{"https://app.example.com/cb#f"}},
			{"name": "x", "type": "confidential", "redirect_uris": []string{"https://*.example.com/cb"}},
			{"name": "x", "type": "confidential", "redirect_uris": []string{}},
			{"name": "x", "type": "secret", "redirect_uris": []string{appRedirect}},
			{"name": "", "type": "public", "redirect_uris": []string{appRedirect}},
			{"name": "x", "type": "public", "redirect_uris": []string{"javascript:alert(1)"}},
		} {
			servertest.Expect(t, env.As(w.devTok, "POST", "/v1/apps", body), 400, "invalid_request")
		}
		memberTok := env.Login(appMember, memberPW)
		servertest.Expect(t, env.As(memberTok, "POST", "/v1/apps", map[string]any{"name": "x", "type": "public", "redirect_uris": []string{appRedirect}}), 403, "")
		// The secret is shown once; rolled with overlap.
		got := env.As(w.devTok, "GET", "/v1/apps/"+w.confidential.ID, nil)
		servertest.Expect(t, got, 200, "")
		if strings.Contains(string(got.Body), w.confidential.ClientSecret) || !strings.HasPrefix(w.confidential.ClientSecret, "gcs_") || w.public.ClientSecret != "" {
			t.Fatalf("secret shown again or wrong: %s", got.Body)
		}
		servertest.Expect(t, env.As(w.devTok, "POST", "/v1/apps/"+w.public.ID+"/roll", nil), 400, "invalid_request")
		servertest.Expect(t, env.As(w.devTok, "POST", "/v1/apps/"+w.confidential.ID+"/roll", map[string]int{"overlap_seconds": 60}), 200, "")
		servertest.Expect(t, env.As(w.devTok, "PATCH", "/v1/apps/"+w.confidential.ID, map[string]any{"redirect_uris": []string{appRedirect, "https://app.example.com/other"}}), 200, "")
		servertest.Expect(t, env.As(memberTok, "GET", "/v1/apps/"+w.confidential.ID, nil), 404, "not_found")
		servertest.Expect(t, env.As(w.admin, "GET", "/v1/apps", nil), 200, "")
	})
}

// TestAppsConsoleHost: with the console on a host name of its own, the
// authorization endpoint sends the browser to the console's host.
func TestAppsConsoleHost(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.ConsoleHost = "console.example" })
	_, _, devTok, _ := developer(t, env)
	app := registerApp(t, env, devTok, "public", []string{"http://127.0.0.1/cb"}, nil)
	q := url.Values{"response_type": {"code"}, "client_id": {app.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "state": {"s"}}
	resp, _ := newUserAgent(t, env.URL).do("GET", "/oauth/authorize?"+q.Encode(), nil)
	u, _ := url.Parse(env.URL)
	if want := "http://console.example:" + u.Port() + "/admin/authorize?"; resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), want) {
		t.Fatalf("%d %q, want %s…", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// TestAppsSignInWithSecondFactor: a user with a second factor authorises
// an application: the authorization page's sign-in goes through the
// second step and comes back to the consent page, and the code it gives
// is exchanged.
func TestAppsSignInWithSecondFactor(t *testing.T) {
	w := newAppsWorld(t)
	secret, _ := enrolTOTP(t, w.env, w.env.Login(appMember, memberPW))
	conf := oauthConfig(w.env, w.confidential, appRedirect, "workspaces:read")
	verifier := oauth2.GenerateVerifier()
	ua := newUserAgent(t, w.env.URL)
	ua.totp = secret
	cb, resp, body := ua.authorize(conf.AuthCodeURL("st-mfa", oauth2.S256ChallengeOption(verifier)), appMember, memberPW, "allow")
	if cb == nil {
		t.Fatalf("no redirect to the application after the second step: %d %s", resp.StatusCode, body)
	}
	if cb.Query().Get("state") != "st-mfa" || cb.Query().Get("code") == "" {
		t.Fatalf("callback %s", cb)
	}
	servertest.Expect(t, exchange(w.env, w.confidential, cb.Query().Get("code"), appRedirect, verifier), 200, "")
}

// TestAppsAuthorizationEvents: authorising an application sends
// authorization.granted to the user's account's webhooks, and revoking the
// authorisation sends authorization.revoked, each naming the client.
func TestAppsAuthorizationEvents(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin, _, devTok, _ := developer(t, env)
	env.CreateUser(admin, appMember, memberPW)
	app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, []string{"workspaces:read"})
	rc := newReceiver(t, nil)
	servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"authorization.*"}}), 201, "")

	conf := oauthConfig(env, app, appRedirect, "workspaces:read")
	verifier := oauth2.GenerateVerifier()
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("st-ev", oauth2.S256ChallengeOption(verifier)), appMember, memberPW, "allow")
	if cb == nil {
		t.Fatalf("no redirect to the application: %d %s", resp.StatusCode, body)
	}
	tok := exchange(env, app, cb.Query().Get("code"), appRedirect, verifier)
	servertest.Expect(t, tok, 200, "")
	granted := rc.wait(t, "authorization.granted", 10*time.Second)
	if granted.Event.Data["client_id"] != app.ClientID || !strings.Contains(granted.Event.Data["scopes"], "workspaces:read") ||
		granted.Event.Data["user_id"] == "" && granted.Event.Data["actor"] != appMember {
		t.Fatalf("authorization.granted: %s", granted.Body)
	}
	member := env.Login(appMember, memberPW)
	servertest.Expect(t, env.As(member, "DELETE", "/v1/me/authorizations/"+app.ClientID, nil), 204, "")
	revoked := rc.wait(t, "authorization.revoked", 10*time.Second)
	if revoked.Event.Data["client_id"] != app.ClientID {
		t.Fatalf("authorization.revoked: %s", revoked.Body)
	}
	tm := tok.Map(t)
	for _, d := range []received{granted, revoked} {
		noSecrets(t, d, app.ClientSecret, cb.Query().Get("code"), verifier, memberPW, fmt.Sprint(tm["access_token"]), fmt.Sprint(tm["refresh_token"]), member)
	}
}

// TestAppsMintNothing: an application the operator authorised with every
// write scope acts within them while authorised, but mints nothing that
// would outlive the authorisation — no credential, API token, API
// access, application, webhook endpoint (nor a new destination for one),
// no password (a user's or a new account's admin's) and no single sign-on
// provider — while the operator's own sign-in does each of them.
func TestAppsMintNothing(t *testing.T) {
	w := newAppsWorld(t, insecureWebhooks)
	env := w.env
	scopes := []string{"users:write", "credentials:write", "webhooks:write", "settings:write", "workspaces:write", "accounts:write"}
	provider := oidcprovider.Start(t, "gatehouse-console", ssoClientSecret)
	app := registerApp(t, env, w.devTok, "confidential", []string{appRedirect}, scopes)
	me := env.As(w.admin, "GET", "/v1/me", nil).Map(t)
	adminID := me["user"].(map[string]any)["id"].(string)
	servertest.Expect(t, env.As(w.admin, "PUT", "/v1/developers/"+adminID, nil), 204, "")
	servertest.Expect(t, env.As(w.admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	hook := env.As(w.admin, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/in", "events": []string{"*"}})
	servertest.Expect(t, hook, 201, "")

	conf := oauthConfig(env, app, appRedirect, scopes...)
	v := oauth2.GenerateVerifier()
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), servertest.AdminEmail, servertest.AdminPassword, "allow")
	if cb == nil {
		t.Fatalf("no code: %d %s", resp.StatusCode, body)
	}
	tok, err := conf.Exchange(context.Background(), cb.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	hookID := hook.Map(t)["id"].(string)
	for _, tc := range []struct {
		method, path string
		body         any
		own          int // the admin's own sign-in
	}{
		{"POST", "/v1/credentials", map[string]string{"name": "kept"}, 201},
		{"POST", "/v1/api-tokens", map[string]string{"name": "kept"}, 201},
		{"POST", "/v1/api-access", map[string]any{}, 201},
		{"POST", "/v1/apps", map[string]any{"name": "Kept", "type": "confidential", "redirect_uris": []string{appRedirect}}, 201},
		{"POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.2:9/in", "events": []string{"*"}}, 201},
		{"PATCH", "/v1/webhooks/" + hookID, map[string]any{"url": "http://127.0.0.2:9/in"}, 200},
		{"POST", "/v1/webhooks/" + hookID + "/roll-secret", map[string]any{}, 200},
		{"POST", "/v1/users", map[string]any{"email": "kept@example.com", "password": memberPW}, 201},
		{"PATCH", "/v1/users/" + w.memberID, map[string]any{"password": "a new pass phrase 7"}, 200},
		{"POST", "/v1/accounts", map[string]any{"name": "kept", "admin_email": "boss@kept.example", "admin_password": memberPW}, 201},
		{"PUT", "/v1/settings", map[string]any{"sso": map[string]any{"issuer": provider.URL, "client_id": provider.ClientID,
			"client_secret": ssoClientSecret, "domains": []string{"example.com"}}}, 200},
	} {
		r := env.As(tok.AccessToken, tc.method, tc.path, tc.body)
		if r.Status != 403 || !strings.Contains(string(r.Body), "outlive the application's authorisation") {
			t.Fatalf("the application's %s %s: %d %s", tc.method, tc.path, r.Status, r.Body)
		}
		servertest.Expect(t, env.As(w.admin, tc.method, tc.path, tc.body), tc.own, "")
	}
	// Within its scopes otherwise: it reads and changes what they allow.
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/credentials", nil), 200, "")
	servertest.Expect(t, env.As(tok.AccessToken, "PATCH", "/v1/users/"+w.memberID, map[string]string{"name": "Renamed"}), 200, "")
	servertest.Expect(t, env.As(tok.AccessToken, "PATCH", "/v1/webhooks/"+hookID, map[string]string{"description": "kept"}), 200, "")
}

// TestAppsConfidentialRevoke: a confidential application revokes its own
// tokens as RFC 7009 clients do, authenticating with HTTP Basic; a wrong
// secret is invalid_client and revokes nothing; an application does not
// introspect.
func TestAppsConfidentialRevoke(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read")
	issue := func() *oauth2.Token {
		v := oauth2.GenerateVerifier()
		tok, err := conf.Exchange(context.Background(), w.code(t, conf, v, "allow").Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	basic := func(secret, path, tok string) *servertest.Response {
		return env.Request("POST", path, url.Values{"token": {tok}}.Encode(), "Content-Type", "application/x-www-form-urlencoded",
			"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(w.confidential.ClientID+":"+secret)))
	}
	tok := issue()
	servertest.Expect(t, basic("gcs_wrong", "/oauth/revoke", tok.RefreshToken), 401, "invalid_client")
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
	r := basic(w.confidential.ClientSecret, "/oauth/introspect", tok.AccessToken)
	if r.Status != 401 || !strings.Contains(string(r.Body), "applications do not introspect") {
		t.Fatalf("an application introspects: %d %s", r.Status, r.Body)
	}
	servertest.Expect(t, basic(w.confidential.ClientSecret, "/oauth/revoke", tok.RefreshToken), 200, "")
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	// Its access token alone, too.
	tok = issue()
	servertest.Expect(t, basic(w.confidential.ClientSecret, "/oauth/revoke", tok.AccessToken), 200, "")
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")
}

// TestRemovedRedirectURIRefusesCode: UpdateApp promises "a
// redirect URI taken away refuses codes issued for it from then on". A
// code issued for a redirect URI that the developer has since removed
// (e.g. a domain they lost) must not be exchanged.
func TestRemovedRedirectURIRefusesCode(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	const old = "https://old.example.com/callback"
	app := registerApp(t, env, w.devTok, "confidential", []string{appRedirect, old}, []string{"workspaces:read"})
	conf := oauthConfig(env, app, old, "workspaces:read")
	v := oauth2.GenerateVerifier()
	code := w.code(t, conf, v, "allow").Get("code")
	if code == "" {
		t.Fatal("no code")
	}
	servertest.Expect(t, env.As(w.devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"redirect_uris": []string{appRedirect}}), 200, "")
	servertest.Expect(t, exchange(env, app, code, old, v), 400, "invalid_grant")
}

// TestAppTokenCannotIntrospect: docs/third-party-apps.md —
// "Applications do not introspect (401 invalid_client): introspection is
// for a developer's client credential or an admin". An application that
// an admin authorised for workspaces:read only sends the admin's
// application token as a bearer to /oauth/introspect and learns, for any
// token of the account, its owner's e-mail, scopes, method and client.
func TestAppTokenCannotIntrospect(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read")
	v := oauth2.GenerateVerifier()
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)),
		servertest.AdminEmail, servertest.AdminPassword, "allow")
	if cb == nil || cb.Query().Get("code") == "" {
		t.Fatalf("admin's consent: %v %d %s", cb, resp.StatusCode, body)
	}
	tok, err := conf.Exchange(context.Background(), cb.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := tok.Extra("scope").(string); s != "workspaces:read" {
		t.Fatalf("scope %q", s)
	}
	// The application's token cannot read users…
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/users", nil), 403, "")
	// …but introspects a member's token.
	memberTok := env.Login(appMember, memberPW)
	servertest.Expect(t, env.As(tok.AccessToken, "POST", "/oauth/introspect", "token="+memberTok, "Content-Type", "application/x-www-form-urlencoded"),
		401, "invalid_client")
	// The admin's own token introspects it.
	r := env.As(env.AdminToken(), "POST", "/oauth/introspect", "token="+memberTok, "Content-Type", "application/x-www-form-urlencoded")
	if r.Status != 200 || r.Map(t)["active"] != true {
		t.Fatalf("the admin's own introspection: %d %s", r.Status, r.Body)
	}
}
