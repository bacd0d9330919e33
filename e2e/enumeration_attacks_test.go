package e2e

// Enumeration attacks: what someone learns, without being entitled to it,
// by comparing two answers that must look the same.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admin"
	"github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/internal/oidcprovider"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/token"
)

// enumAnswer is one HTTP answer, read.
type enumAnswer struct {
	Status int
	Header http.Header
	Body   string
	Took   time.Duration
}

// enumClient returns a client on a loopback address of its own (so the
// sign-in throttle sees a fresh address), with a cookie jar, that follows
// no redirects.
func enumClient() *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: nextLoopback()}, Timeout: 5 * time.Second}
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// enumDo sends a request; body is sent as is, with contentType when set.
func enumDo(t *testing.T, c *http.Client, method, u, body, contentType string, headers ...string) enumAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return enumAnswer{Status: resp.StatusCode, Header: resp.Header, Body: string(b), Took: time.Since(start)}
}

// enumHeaders is the answer's headers that must not differ: every one
// but Date and X-Request-Id; Set-Cookie by cookie name and attributes
// only (a fresh random value each time).
func enumHeaders(h http.Header) string {
	var out []string
	for k, vs := range h {
		switch k {
		case "Date", "X-Request-Id":
			continue
		case "Set-Cookie":
			for _, v := range vs {
				name, rest, _ := strings.Cut(v, "=")
				_, attrs, _ := strings.Cut(rest, ";")
				out = append(out, "Set-Cookie: "+name+"=…;"+attrs)
			}
			continue
		}
		out = append(out, k+": "+strings.Join(vs, ", "))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

var enumCSRF = regexp.MustCompile(`(name="csrf" value=")[^"]*(")`)

// enumShape is what an observer compares: status, headers and body,
// with the CSRF token and the given echoed strings (what the attacker
// typed) taken out.
func enumShape(a enumAnswer, echoed ...string) string {
	body := enumCSRF.ReplaceAllString(a.Body, "${1}…${2}")
	for _, e := range echoed {
		if e != "" {
			body = strings.ReplaceAll(body, e, "ECHO")
			body = strings.ReplaceAll(body, url.QueryEscape(e), "ECHO")
		}
	}
	h := enumHeaders(a.Header)
	if cl := a.Header.Get("Content-Length"); cl != "" && len(echoed) > 0 {
		h = strings.ReplaceAll(h, "Content-Length: "+cl, "Content-Length: …")
	}
	return strings.Join([]string{http.StatusText(a.Status), h, body}, "\n---\n")
}

// enumSame fails the test when the shapes of the cases differ from the
// first one's.
func enumSame(t *testing.T, what string, names []string, shapes []string) {
	t.Helper()
	for i := 1; i < len(shapes); i++ {
		if shapes[i] != shapes[0] {
			t.Errorf("%s: %q and %q answer differently:\n== %s:\n%s\n== %s:\n%s", what, names[0], names[i], names[0], shapes[0], names[i], shapes[i])
		}
	}
}

// enumWorld is a server with users in every state.
type enumWorld struct {
	env                 *servertest.Env
	op                  string // operator token
	bAdmin              string // admin token of account B
	bAcc                string
	ssoAcc              string
	provider            *oidcprovider.Provider
	pwOffAcc, pwOffUser string
}

const enumPW = "enumeration password 1"

func enumNewWorld(t *testing.T, configure ...func(*server.Config)) *enumWorld {
	t.Helper()
	env := servertest.Start(t, append([]func(*server.Config){insecureWebhooks}, configure...)...)
	w := &enumWorld{env: env, op: env.AdminToken()}
	op := w.op
	env.CreateUser(op, "alice@example.com", enumPW)
	dis := env.CreateUser(op, "dis@example.com", enumPW)
	servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+dis, map[string]any{"status": "disabled"}), 200, "")
	del := env.CreateUser(op, "del@example.com", enumPW)
	servertest.Expect(t, env.As(op, "DELETE", "/v1/users/"+del, nil), 204, "")
	r := env.As(op, "POST", "/v1/users", map[string]any{"email": "nopw@example.com", "name": "No Password", "roles": []string{}})
	servertest.Expect(t, r, 201, "")
	env.CreateUser(op, "mfa@example.com", enumPW)
	enrolTOTP(t, env, env.Login("mfa@example.com", enumPW))
	// Account B, to be suspended, with a user.
	w.bAcc, w.bAdmin = env.CreateAccount(op, "Bee", "badmin@example.com", enumPW)
	env.CreateUser(w.bAdmin, "bsusp@example.com", enumPW)
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+w.bAcc, map[string]any{"status": "suspended"}), 200, "")
	// Account P: the password grant off.
	var pAdmin string
	w.pwOffAcc, pAdmin = env.CreateAccount(op, "Pee", "padmin@example.com", enumPW)
	env.CreateUser(pAdmin, "poff@example.com", enumPW)
	servertest.Expect(t, env.As(pAdmin, "PUT", "/v1/settings", map[string]any{"password_grant_enabled": false}), 200, "")
	// Account S: single sign-on required.
	w.provider = oidcprovider.Start(t, "gatehouse-console", ssoClientSecret)
	var sAdmin string
	w.ssoAcc, sAdmin = env.CreateAccount(op, "Ess", "sadmin@sso.test", enumPW)
	env.CreateUser(sAdmin, "sreq@sso.test", enumPW)
	// S's user at a domain S's provider does not vouch for.
	env.CreateUser(sAdmin, "x@elsewhere.org", enumPW)
	servertest.Expect(t, env.As(sAdmin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
		"issuer": w.provider.URL, "client_id": w.provider.ClientID, "client_secret": ssoClientSecret,
		"domains": []string{"sso.test"}, "required": true}}), 200, "")
	return w
}

// enumCase is one username and password tried by someone who does not
// know the password.
type enumCase struct{ name, user, pw string }

func enumPasswordCases() []enumCase {
	return []enumCase{
		{"unknown user", "nobody@example.com", "wrong password 77"},
		{"existing user, wrong password", "alice@example.com", "wrong password 77"},
		{"existing user in other case, wrong password", " ALICE@Example.com ", "wrong password 77"},
		{"disabled user, wrong password", "dis@example.com", "wrong password 77"},
		{"disabled user, right password", "dis@example.com", enumPW},
		{"deleted user, right password", "del@example.com", enumPW},
		{"user without a password", "nopw@example.com", "wrong password 77"},
		{"user with TOTP, wrong password", "mfa@example.com", "wrong password 77"},
		{"suspended account's admin, right password", "badmin@example.com", enumPW},
		{"suspended account's user, wrong password", "bsusp@example.com", "wrong password 77"},
		{"password grant off, wrong password", "poff@example.com", "wrong password 77"},
		{"single sign-on required, wrong password", "sreq@sso.test", "wrong password 77"},
		{"operator, wrong password", servertest.AdminEmail, "wrong password 77"},
		{"unknown user, huge name", strings.Repeat("a", 400) + "@example.com", "wrong password 77"},
	}
}

// TestEnumPasswordGrant: every failure of the password grant, on both
// endpoints and in every body form, is one answer, byte for byte (SPEC
// §3.4).
func TestEnumPasswordGrant(t *testing.T) {
	w := enumNewWorld(t)
	env := w.env
	type form struct {
		name, path, ct string
		body           func(u, p string) string
		query          bool
	}
	forms := []form{
		{"/authorization form", "/authorization", "application/x-www-form-urlencoded", func(u, p string) string {
			return url.Values{"username": {u}, "password": {p}}.Encode()
		}, false},
		{"/authorization JSON", "/authorization", "application/json", func(u, p string) string {
			b, _ := json.Marshal(map[string]string{"username": u, "password": p})
			return string(b)
		}, false},
		{"/authorization query", "/authorization", "", func(u, p string) string {
			return url.Values{"username": {u}, "password": {p}}.Encode()
		}, true},
		{"/oauth/token password", "/oauth/token", "application/x-www-form-urlencoded", func(u, p string) string {
			return url.Values{"grant_type": {"password"}, "username": {u}, "password": {p}}.Encode()
		}, false},
		{"/v1/oauth/token password", "/v1/oauth/token", "application/x-www-form-urlencoded", func(u, p string) string {
			return url.Values{"grant_type": {"password"}, "username": {u}, "password": {p}}.Encode()
		}, false},
	}
	for _, f := range forms {
		var names, shapes []string
		for _, c := range enumPasswordCases() {
			var a enumAnswer
			if f.query {
				a = enumDo(t, enumClient(), "POST", env.URL+f.path+"?"+f.body(c.user, c.pw), "", "")
			} else {
				a = enumDo(t, enumClient(), "POST", env.URL+f.path, f.body(c.user, c.pw), f.ct)
			}
			t.Logf("%s, %s: %d %s", f.name, c.name, a.Status, strings.TrimSpace(a.Body))
			names, shapes = append(names, c.name), append(shapes, enumShape(a))
		}
		enumSame(t, f.name, names, shapes)
	}
	// The distinct answers SPEC allows need the right password: they are
	// not reached without it (checked above), and they are what SPEC says.
	a := enumDo(t, enumClient(), "POST", env.URL+"/authorization", url.Values{"username": {"poff@example.com"}, "password": {enumPW}}.Encode(), "application/x-www-form-urlencoded")
	if a.Status != 400 || !strings.Contains(a.Body, `"unauthorized_client"`) {
		t.Errorf("password grant off, right password: %d %s; want 400 unauthorized_client", a.Status, a.Body)
	}
}

// enumConsole signs in (or fails to) on the console's form from a fresh
// address and returns the answer to the post.
func enumConsole(t *testing.T, env *servertest.Env, email, pw string) enumAnswer {
	t.Helper()
	c := enumClient()
	page := enumDo(t, c, "GET", env.URL+"/admin/login", "", "")
	m := csrfField.FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatalf("no sign-in form: %d %s", page.Status, page.Body)
	}
	return enumDo(t, c, "POST", env.URL+"/admin/login", url.Values{"csrf": {m[1]}, "email": {email}, "password": {pw}}.Encode(),
		"application/x-www-form-urlencoded")
}

// TestEnumConsoleSignIn: the console's sign-in answers every failure
// without the password alike (status, headers, page).
func TestEnumConsoleSignIn(t *testing.T) {
	w := enumNewWorld(t)
	var names, shapes []string
	for _, c := range enumPasswordCases() {
		a := enumConsole(t, w.env, c.user, c.pw)
		t.Logf("%s: %d %s", c.name, a.Status, a.Header.Get("Location"))
		names, shapes = append(names, c.name), append(shapes, enumShape(a, c.user, strings.TrimSpace(c.user)))
	}
	enumSame(t, "POST /admin/login", names, shapes)
}

// enumSSOStart types email on the single sign-on form from a fresh
// address.
func enumSSOStart(t *testing.T, env *servertest.Env, email string) enumAnswer {
	t.Helper()
	c := enumClient()
	page := enumDo(t, c, "GET", env.URL+"/admin/sso", "", "")
	m := csrfField.FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatalf("no form: %d %s", page.Status, page.Body)
	}
	return enumDo(t, c, "POST", env.URL+"/admin/sso", url.Values{"csrf": {m[1]}, "email": {email}}.Encode(), "application/x-www-form-urlencoded")
}

// TestEnumSSODiscovery: the single sign-on form, which anyone may post,
// tells nobody whether an address is a user's. An address whose domain
// no account's single sign-on names can never complete a single sign-on
// (the provider's address must be of an allowed domain, sso.Allowed at
// the callback), so whether a user holds it changes nothing a person
// can do — and must change nothing an observer sees. Likewise an address
// of a domain another account claims, held by a user of an account without
// single sign-on (docs/sso.md: "the account of the Gatehouse user with
// that address, if it has single sign-on; otherwise the one account whose
// allowed domains hold the address's domain" — the domain's account, as
// for an unknown address).
func TestEnumSSODiscovery(t *testing.T) {
	w := enumNewWorld(t)
	env := w.env
	// A (default, no single sign-on) has a user at the domain S claims.
	env.CreateUser(w.op, "alsoa@sso.test", enumPW)

	pairs := [][2]enumCase{
		{{"S's user at a domain no provider vouches for", "x@elsewhere.org", ""}, {"unknown address at that domain", "y@elsewhere.org", ""}},
		{{"A's user at the domain S claims", "alsoa@sso.test", ""}, {"unknown address at that domain", "nobody@sso.test", ""}},
		{{"S's user at its own domain", "sreq@sso.test", ""}, {"unknown address at that domain", "nobody2@sso.test", ""}},
		{{"A's user without single sign-on", "alice@example.com", ""}, {"unknown address", "nobody@example.com", ""}},
	}
	for _, p := range pairs {
		var names, shapes []string
		for _, c := range p {
			a := enumSSOStart(t, env, c.user)
			body := a.Body
			// The provider's URL carries a fresh state, nonce and challenge.
			body = regexp.MustCompile(`(state|nonce|code_challenge)=[^&"]+`).ReplaceAllString(body, "$1=…")
			a.Body = body
			t.Logf("%s (%s): %d %s", c.name, c.user, a.Status, enumExcerpt(a.Body))
			names, shapes = append(names, c.name), append(shapes, enumShape(a, c.user))
		}
		enumSame(t, "POST /admin/sso", names, shapes)
	}
}

func enumExcerpt(s string) string {
	if i := strings.Index(s, `class="error"`); i >= 0 {
		s = s[i:]
	} else if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return strings.Join(strings.Fields(s), " ")
}

// enumOAuthShape is what an observer of an OAuth answer compares:
// status, the error and its description, WWW-Authenticate and the
// caching headers.
func enumOAuthShape(a enumAnswer, ids ...string) string {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal([]byte(a.Body), &e)
	d := e.Description
	for _, id := range ids {
		if id != "" {
			d = strings.ReplaceAll(d, id, "ID")
		}
	}
	body := a.Body
	if e.Error == "" {
		body = "(not an error) " + body
	} else {
		body = e.Error + ": " + d
	}
	return strings.Join([]string{http.StatusText(a.Status), "WWW-Authenticate: " + a.Header.Get("WWW-Authenticate"),
		"Cache-Control: " + a.Header.Get("Cache-Control"), body}, "\n")
}

// TestEnumClientIDs: existing and unknown client ids get the same
// answer wherever a client authenticates and fails: the token endpoint
// (every grant), introspection, revocation and device authorization.
func TestEnumClientIDs(t *testing.T) {
	w := newAppsWorld(t, insecureWebhooks)
	env := w.env
	// A credential, and one deleted (its client id well formed, unknown now).
	r := env.As(w.devTok, "POST", "/v1/credentials", map[string]string{"name": "gone"})
	servertest.Expect(t, r, 201, "")
	gone := r.Map(t)
	servertest.Expect(t, env.As(w.devTok, "DELETE", "/v1/credentials/"+gone["id"].(string), nil), 204, "")
	r = env.As(w.devTok, "POST", "/v1/credentials", map[string]string{"name": "live"})
	servertest.Expect(t, r, 201, "")
	live := r.Map(t)
	goneApp := registerApp(t, env, w.devTok, "confidential", []string{appRedirect}, nil)
	servertest.Expect(t, env.As(w.devTok, "DELETE", "/v1/apps/"+goneApp.ID, nil), 204, "")
	// A disabled developer's credential (an attacker has no secret).
	wrongSecret := token.New(token.ClientSecret)
	fresh := token.New(token.ClientID)
	clientIDs := []enumCase{
		{"unknown client id", fresh, ""},
		{"deleted credential's client id", gone["client_id"].(string), ""},
		{"live credential's client id", live["client_id"].(string), ""},
		{"confidential application's client id", w.confidential.ClientID, ""},
		{"public application's client id", w.public.ClientID, ""},
		{"deleted application's client id", goneApp.ClientID, ""},
	}
	form := "application/x-www-form-urlencoded"
	type endpoint struct {
		name, path string
		params     url.Values
	}
	endpoints := []endpoint{
		{"client_credentials", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}},
		{"password grant with client", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"nobody@example.com"}, "password": {"x y z w v u"}}},
		{"refresh grant with client", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token.New(token.RefreshToken)}}},
		{"authorization_code grant", "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {token.New(token.AuthCode)},
			"redirect_uri": {appRedirect}, "code_verifier": {strings.Repeat("v", 50)}}},
		{"device_code grant", "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {token.New(token.DeviceCode)}}},
		{"introspection", "/oauth/introspect", url.Values{"token": {token.New(token.AccessToken)}}},
		{"revocation", "/oauth/revoke", url.Values{"token": {token.New(token.AccessToken)}}},
		{"device authorization", "/oauth/device_authorization", url.Values{}},
	}
	for _, ep := range endpoints {
		for _, how := range []string{"body", "basic"} {
			var names, shapes []string
			for _, c := range clientIDs {
				v := url.Values{}
				for k, vs := range ep.params {
					v[k] = vs
				}
				var hdr []string
				if how == "body" {
					v.Set("client_id", c.user)
					v.Set("client_secret", wrongSecret)
				} else {
					hdr = []string{"Authorization", "Basic " + basicAuth(c.user, wrongSecret)}
				}
				a := enumDo(t, enumClient(), "POST", env.URL+ep.path, v.Encode(), form, hdr...)
				t.Logf("%s (%s), %s: %d %s", ep.name, how, c.name, a.Status, strings.TrimSpace(a.Body))
				names, shapes = append(names, c.name), append(shapes, enumOAuthShape(a, c.user))
			}
			enumSame(t, ep.name+" with a wrong secret ("+how+")", names, shapes)
		}
	}
	// A client id alone, as a public client sends it, with a made-up code
	// or token: a confidential client's id answers as an unknown one.
	for _, ep := range endpoints {
		if ep.name == "client_credentials" || ep.name == "password grant with client" {
			continue
		}
		var names, shapes []string
		for _, c := range clientIDs {
			if c.name == "public application's client id" {
				continue // a real public client: its answer is the grant's
			}
			if c.name == "confidential application's client id" && ep.name == "refresh grant with client" {
				// invalid_client (RFC 6749 §5.2) where an unknown id, taken
				// for an API access application's public client, gets
				// invalid_grant: it tells that the id is a confidential
				// application's, which client ids are not secret (SPEC §2)
				// and GET /oauth/authorize tells anyone anyway.
				continue
			}
			v := url.Values{"client_id": {c.user}}
			for k, vs := range ep.params {
				v[k] = vs
			}
			a := enumDo(t, enumClient(), "POST", env.URL+ep.path, v.Encode(), form)
			t.Logf("%s (client id alone), %s: %d %s", ep.name, c.name, a.Status, strings.TrimSpace(a.Body))
			names, shapes = append(names, c.name), append(shapes, enumOAuthShape(a, c.user))
		}
		enumSame(t, ep.name+" with a client id alone", names, shapes)
	}
}

func basicAuth(id, secret string) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestEnumAuthorizeNoRedirect: an unknown client, a known client with
// a redirect URI it did not register, and a suspended publisher's
// application are shown an error page, never redirected (RFC 6749
// §4.1.2.1, SPEC §10.3) — also through the console's consent page of a
// signed-in user.
func TestEnumAuthorizeNoRedirect(t *testing.T) {
	w := newAppsWorld(t, insecureWebhooks)
	env := w.env
	evil := "https://evil.example/cb"
	goneApp := registerApp(t, env, w.devTok, "confidential", []string{appRedirect}, nil)
	servertest.Expect(t, env.As(w.devTok, "DELETE", "/v1/apps/"+goneApp.ID, nil), 204, "")
	q := func(client, redirect string) string {
		return url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect}, "state": {"s1"}, "scope": {"workspaces:read"},
			"code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}.Encode()
	}
	cases := []enumCase{
		{"unknown client, evil redirect", token.New(token.ClientID), evil},
		{"deleted client, its old redirect", goneApp.ClientID, appRedirect},
		{"known client, evil redirect", w.confidential.ClientID, evil},
		{"known client, registered redirect with a suffix", w.confidential.ClientID, appRedirect + "/../x"},
		{"known client, no redirect", w.confidential.ClientID, ""},
		{"known client, registered redirect with a query", w.confidential.ClientID, appRedirect + "?a=1"},
		{"public client, loopback with other path", w.public.ClientID, "http://127.0.0.1:9999/other"},
		{"garbage client", "not a client", evil},
	}
	// Signed in to the console as a member.
	s := uiSignIn(t, env, appMember, memberPW)
	// The control: a good request goes on to the console's consent page.
	if a := enumDo(t, enumClient(), "GET", env.URL+"/oauth/authorize?"+q(w.confidential.ClientID, appRedirect), "", ""); a.Status != http.StatusSeeOther ||
		!strings.Contains(a.Header.Get("Location"), "/admin/authorize?") {
		t.Fatalf("a good authorization request: %d %q", a.Status, a.Header.Get("Location"))
	}
	for _, c := range cases {
		a := enumDo(t, enumClient(), "GET", env.URL+"/oauth/authorize?"+q(c.user, c.pw), "", "")
		loc := a.Header.Get("Location")
		t.Logf("/oauth/authorize %s: %d %q", c.name, a.Status, loc)
		if a.Status >= 300 && a.Status < 400 && !strings.HasPrefix(loc, "/admin/") && !strings.HasPrefix(loc, env.URL+"/admin/") {
			t.Errorf("/oauth/authorize, %s: redirected to %q", c.name, loc)
		}
		st, _, loc := s.get("/admin/authorize?" + q(c.user, c.pw))
		t.Logf("/admin/authorize %s: %d %q", c.name, st, loc)
		if st >= 300 && st < 400 {
			t.Errorf("/admin/authorize signed in, %s: redirected to %q", c.name, loc)
		}
	}
}

// enumAPIShape is what an observer of a JSON API answer compares:
// status, error code and description with the ids named taken out, and
// WWW-Authenticate.
func enumAPIShape(r *servertest.Response, ids ...string) string {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(r.Body, &e)
	d := e.Description
	for _, id := range ids {
		if id != "" {
			d = strings.ReplaceAll(d, id, "ID")
		}
	}
	out := http.StatusText(r.Status) + " | " + e.Error + " | " + d + " | " + r.Header.Get("WWW-Authenticate")
	if e.Error == "" {
		out += " | " + string(r.Body)
	}
	return out
}

// enumFake is w with every id of account B replaced by one of the same
// kind that does not exist.
func enumFake(w *crossWorld) *crossWorld {
	f := *w
	fake := func(id string) string {
		prefix, _, _ := strings.Cut(id, "_")
		return gatehouse.NewID(prefix)
	}
	f.bMemID, f.bDevID, f.bAdminID = fake(w.bMemID), fake(w.bDevID), fake(w.bAdminID)
	f.bCred, f.bTok, f.bWebhook, f.bApp, f.bAcc = fake(w.bCred), fake(w.bTok), fake(w.bWebhook), fake(w.bApp), fake(w.bAcc)
	f.bAppCl, f.bCredClient = token.New(token.ClientID), token.New(token.ClientID)
	return &f
}

func (w *crossWorld) enumIDs() []string {
	return []string{w.bMemID, w.bDevID, w.bAdminID, w.bCred, w.bTok, w.bWebhook, w.bApp, w.bAcc, w.bAppCl, w.bCredClient}
}

// enumRoomy lifts account A's burst so that a sweep is not cut by its
// own rate limit.
func enumRoomy(t *testing.T, env *servertest.Env, admin string) {
	t.Helper()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 10000, "burst_window_seconds": 1, "daily": 1000000}}), 200, "")
}

// TestEnumCrossTenantAPI: every API route with an id answers another
// account's id exactly as an id that does not exist (SPEC §1: "Anything
// of another account is invisible (404)") — same status, code and
// message — for A's admin, developer, member and API token, and for the
// operator's account's members on /v1/accounts/{id}.
func TestEnumCrossTenantAPI(t *testing.T) {
	w := newCrossWorld(t)
	env := w.env
	enumRoomy(t, env, w.op)
	fake := enumFake(w)
	toks := map[string]string{
		"admin":  env.Login("a2@example.com", memberPW),
		"dev":    env.Login("adev@example.com", memberPW),
		"member": env.Login("amem@example.com", memberPW),
	}
	toks["apitoken"] = withAPIToken(t, env, toks["admin"]).Token
	send := func(who, tok, method, path string, body any) *servertest.Response {
		if who == "apitoken" {
			return env.Request(method, path, body, "X-API-Token", tok)
		}
		return env.As(tok, method, path, body)
	}
	ids := append(w.enumIDs(), fake.enumIDs()...)
	for _, who := range []string{"admin", "dev", "member", "apitoken"} {
		tok := toks[who]
		for _, rt := range api.Routes() {
			if !strings.Contains(rt.Path, "{") {
				continue
			}
			if strings.HasSuffix(rt.Path, "/approval") {
				continue // approving another account's application is the feature (SPEC §10.3)
			}
			pb, pf := w.fillUnder("/v1", rt.Path), fake.fillUnder("/v1", rt.Path)
			rb := send(who, tok, rt.Method, pb, routeBody(rt.Method, rt.Path))
			rf := send(who, tok, rt.Method, pf, routeBody(rt.Method, rt.Path))
			sb, sf := enumAPIShape(rb, ids...), enumAPIShape(rf, ids...)
			if sb != sf {
				t.Errorf("%s %s %s: another account's id and a missing id answer differently:\n  B's:     %s\n  missing: %s", who, rt.Method, rt.Path, sb, sf)
			} else {
				t.Logf("%s %s %s: %s", who, rt.Method, rt.Path, sb)
			}
		}
		// Filters that name ids.
		for _, q := range []string{"/v1/usage?user_id=%s", "/v1/usage?credential_id=%s", "/v1/audit?actor_id=%s", "/v1/audit?target_id=%s", "/v1/audit?user_id=%s"} {
			for _, pair := range [][2]string{{w.bMemID, fake.bMemID}, {w.bCred, fake.bCred}, {w.bTok, fake.bTok}} {
				rb := send(who, tok, "GET", strings.Replace(q, "%s", pair[0], 1), nil)
				rf := send(who, tok, "GET", strings.Replace(q, "%s", pair[1], 1), nil)
				sb, sf := enumAPIShape(rb, ids...), enumAPIShape(rf, ids...)
				if rb.Status == 200 && rf.Status == 200 {
					sb, sf = enumListLen(t, rb), enumListLen(t, rf)
				}
				if sb != sf {
					t.Errorf("%s GET %s: another account's id and a missing id answer differently:\n  B's:     %s\n  missing: %s", who, q, sb, sf)
				}
			}
		}
		// Looking an address up.
		for _, q := range []string{"/v1/users?email=%s", "/v1/users?email=%s&all_accounts=true"} {
			rb := send(who, tok, "GET", strings.Replace(q, "%s", url.QueryEscape("bmem@example.com"), 1), nil)
			rf := send(who, tok, "GET", strings.Replace(q, "%s", url.QueryEscape("nobody-at-all@example.com"), 1), nil)
			sb, sf := enumAPIShape(rb), enumAPIShape(rf)
			if rb.Status == 200 && rf.Status == 200 {
				sb, sf = enumListLen(t, rb), enumListLen(t, rf)
			}
			if sb != sf {
				t.Errorf("%s GET %s: B's address and an unknown one answer differently:\n  B's:     %s\n  unknown: %s", who, q, sb, sf)
			}
		}
	}
	// B's things are untouched.
	for _, p := range []string{"/v1/users/" + w.bMemID, "/v1/users/" + w.bDevID, "/v1/apps/" + w.bApp, "/v1/webhooks/" + w.bWebhook} {
		r := env.As(w.bAdmin, "GET", p, nil)
		if r.Status != 200 || strings.Contains(string(r.Body), `"zz"`) {
			t.Errorf("B's %s after the sweep: %d %s", p, r.Status, r.Body)
		}
	}
}

func enumListLen(t *testing.T, r *servertest.Response) string {
	t.Helper()
	var l struct {
		Data []json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(r.Body, &l)
	return "200 with " + string(rune('0'+min(len(l.Data), 9))) + " items"
}

// TestEnumCrossTenantConsole: every console route with an id answers
// another account's id as a missing one (status, where it goes, the
// page's message).
func TestEnumCrossTenantConsole(t *testing.T) {
	w := newCrossWorld(t)
	enumRoomy(t, w.env, w.op)
	fake := enumFake(w)
	ids := append(w.enumIDs(), fake.enumIDs()...)
	for _, who := range []string{"a2@example.com", "adev@example.com", "amem@example.com"} {
		s := uiSignIn(t, w.env, who, memberPW)
		s.get("/admin/me")
		try := func(method, p string) string {
			var st int
			var body, loc string
			if method == "GET" {
				st, body, loc = s.get(p)
			} else {
				st, body, loc = s.post(p, url.Values{"confirmed": {"yes"}, "user_id": {strings.TrimPrefix(p, "#")}, "name": {"zz"}, "status": {"disabled"},
					"overlap_seconds": {"0"}, "enabled": {"false"}, "password": {"Another-long-pw-1234"}, "revoke": {"true"}})
				s.get("/admin/me")
			}
			body = enumCSRF.ReplaceAllString(body, "${1}…${2}")
			for _, id := range ids {
				body = strings.ReplaceAll(body, id, "ID")
				loc = strings.ReplaceAll(loc, id, "ID")
			}
			return http.StatusText(st) + " -> " + loc + "\n" + enumExcerpt(body)
		}
		for _, pat := range admin.Patterns() {
			method, path, _ := strings.Cut(pat, " ")
			if !strings.Contains(path, "{") || path == "/admin/{$}" {
				continue
			}
			sb := try(method, w.fill(path))
			sf := try(method, fake.fill(path))
			if sb != sf {
				t.Errorf("%s: %s %s: another account's id and a missing id answer differently:\n  B's:     %s\n  missing: %s", who, method, path, sb, sf)
			} else {
				t.Logf("%s: %s %s: %s", who, method, path, strings.SplitN(sb, "\n", 2)[0])
			}
		}
		// The developer form names a user in its body.
		if who == "a2@example.com" {
			for _, id := range [][2]string{{w.bMemID, fake.bMemID}} {
				var out [2]string
				for i, uid := range id {
					st, body, loc := s.post("/admin/developers", url.Values{"user_id": {uid}})
					s.get("/admin/me")
					body = enumCSRF.ReplaceAllString(body, "${1}…${2}")
					body = strings.ReplaceAll(body, uid, "ID")
					out[i] = http.StatusText(st) + " -> " + loc + "\n" + enumExcerpt(body)
				}
				if out[0] != out[1] {
					t.Errorf("POST /admin/developers: B's user and a missing one answer differently:\n  B's:     %s\n  missing: %s", out[0], out[1])
				}
			}
		}
	}
}

// TestEnumActAs: an API token acting as an unknown, disabled, deleted,
// other account's or suspended account's user gets one answer, byte for
// byte (SPEC §3.2).
func TestEnumActAs(t *testing.T) {
	w := enumNewWorld(t)
	env := w.env
	tok := withAPIToken(t, env, w.op)
	enumRoomy(t, env, w.op)
	cases := []string{"nobody@example.com", "dis@example.com", "del@example.com", "badmin@example.com", "bsusp@example.com",
		"padmin@example.com", "sreq@sso.test", "x@elsewhere.org"}
	for _, path := range []string{"/v1/me", "/v1/users", "/v1/auth/check", "/v1/workspaces"} {
		var names, shapes []string
		for _, email := range cases {
			a := enumDo(t, enumClient(), "GET", env.URL+path, "", "", "X-API-Token", tok.Token, "X-User-Email", email)
			for k := range a.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-ratelimit") || strings.HasPrefix(strings.ToLower(k), "ratelimit") {
					a.Header.Del(k)
				}
			}
			t.Logf("%s as %s: %d %s", path, email, a.Status, strings.TrimSpace(a.Body))
			names, shapes = append(names, email), append(shapes, enumShape(a))
		}
		enumSame(t, "act-as on "+path, names, shapes)
	}
}

// TestEnumWorkspaces: a member asks for a workspace of their own
// account they cannot see, one of another account, and one that does not
// exist: one answer.
func TestEnumWorkspaces(t *testing.T) {
	w := newCrossWorld(t)
	env := w.env
	mem := env.Login("amem@example.com", memberPW)
	adm := env.Login("a2@example.com", memberPW)
	r := env.As(adm, "POST", "/v1/workspaces", map[string]string{"name": "hidden"})
	servertest.Expect(t, r, 201, "")
	hidden := r.Map(t)["id"].(string)
	r = env.As(w.bAdmin, "POST", "/v1/workspaces", map[string]string{"name": "bees"})
	servertest.Expect(t, r, 201, "")
	bws := r.Map(t)["id"].(string)
	missing := gatehouse.NewID(strings.Split(hidden, "_")[0])
	ids := []string{hidden, bws, missing}
	for _, tok := range []string{mem, adm} {
		for _, p := range []string{"GET /v1/workspaces/%s", "DELETE /v1/workspaces/%s", "GET /v1/workspaces/%s/members",
			"PUT /v1/workspaces/%s/members/" + w.aMemID, "DELETE /v1/workspaces/%s/members/" + w.aMemID} {
			method, path, _ := strings.Cut(p, " ")
			var names, shapes []string
			for i, id := range ids {
				if tok == adm && i == 0 {
					continue // an admin sees all of the account's
				}
				rr := env.As(tok, method, strings.Replace(path, "%s", id, 1), nil)
				names, shapes = append(names, []string{"own account's unseen", "other account's", "missing"}[i]), append(shapes, enumAPIShape(rr, ids...))
			}
			enumSame(t, p, names, shapes)
		}
	}
	// An admin of A adds B's user, and a missing user, to A's workspace.
	r = env.As(adm, "POST", "/v1/workspaces", map[string]string{"name": "mine"})
	mine := r.Map(t)["id"].(string)
	rb := env.As(adm, "PUT", "/v1/workspaces/"+mine+"/members/"+w.bMemID, nil)
	missingUser := gatehouse.NewID(strings.Split(w.bMemID, "_")[0])
	rf := env.As(adm, "PUT", "/v1/workspaces/"+mine+"/members/"+missingUser, nil)
	if a, b := enumAPIShape(rb, w.bMemID, missingUser), enumAPIShape(rf, w.bMemID, missingUser); a != b {
		t.Errorf("adding B's user to A's workspace answers %s, a missing user %s", a, b)
	}
}

// enumInternals are words an error answer must never hold: SQL, file
// paths, stack traces (SPEC §8).
var enumInternals = regexp.MustCompile(`(?i)(sqlstate|syntax error|pq: |sqlite|select .* from|insert into|\.go:\d+|goroutine \d+|/work/|/tmp/|panic:|runtime error)`)

func enumNoInternals(t *testing.T, what string, body string) {
	t.Helper()
	if m := enumInternals.FindString(body); m != "" {
		t.Errorf("%s: the answer holds internal detail %q: %s", what, m, enumExcerpt(body))
	}
}

// TestEnumSameAccount: within one account, another developer's
// credential or application, and another user's session, answer as ones
// that do not exist.
func TestEnumSameAccount(t *testing.T) {
	w := newCrossWorld(t)
	env := w.env
	enumRoomy(t, env, w.op)
	dev := env.Login("adev@example.com", memberPW)
	dev2ID := env.CreateUser(w.op, "adev2@example.com", memberPW, "developer")
	_ = dev2ID
	dev2 := env.Login("adev2@example.com", memberPW)
	r := env.As(dev2, "POST", "/v1/credentials", map[string]string{"name": "theirs"})
	servertest.Expect(t, r, 201, "")
	cred2 := r.Map(t)["id"].(string)
	app2 := registerApp(t, env, dev2, "confidential", []string{appRedirect}, nil)
	// a2's session (a console sign-in) as seen by a2.
	uiSignIn(t, env, "a2@example.com", memberPW)
	a2 := env.Login("a2@example.com", memberPW)
	r = env.As(a2, "GET", "/v1/me/sessions", nil)
	servertest.Expect(t, r, 200, "")
	var sess struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	r.JSON(t, &sess)
	if len(sess.Data) == 0 {
		t.Fatalf("no session listed: %s", r.Body)
	}
	mem := env.Login("amem@example.com", memberPW)
	missing := func(id string) string { return gatehouse.NewID(strings.Split(id, "_")[0]) }
	type probe struct {
		who, tok, method, path, id string
		body                       any
	}
	probes := []probe{
		{"developer", dev, "PATCH", "/v1/credentials/%s", cred2, map[string]any{"enabled": false}},
		{"developer", dev, "POST", "/v1/credentials/%s/roll", cred2, map[string]any{}},
		{"developer", dev, "DELETE", "/v1/credentials/%s", cred2, nil},
		{"developer", dev, "GET", "/v1/apps/%s", app2.ID, nil},
		{"developer", dev, "PATCH", "/v1/apps/%s", app2.ID, map[string]any{"name": "zz"}},
		{"developer", dev, "POST", "/v1/apps/%s/roll", app2.ID, map[string]any{}},
		{"developer", dev, "DELETE", "/v1/apps/%s", app2.ID, nil},
		{"member", mem, "DELETE", "/v1/me/sessions/%s", sess.Data[0].ID, nil},
		{"member", mem, "GET", "/v1/apps/%s", app2.ID, nil},
	}
	for _, p := range probes {
		fake := missing(p.id)
		rb := env.As(p.tok, p.method, strings.Replace(p.path, "%s", p.id, 1), p.body)
		rf := env.As(p.tok, p.method, strings.Replace(p.path, "%s", fake, 1), p.body)
		sb, sf := enumAPIShape(rb, p.id, fake), enumAPIShape(rf, p.id, fake)
		t.Logf("%s %s %s: %s / %s", p.who, p.method, p.path, sb, sf)
		if sb != sf {
			t.Errorf("%s %s %s: another's and a missing id answer differently:\n  another's: %s\n  missing:   %s", p.who, p.method, p.path, sb, sf)
		}
	}
	// Nothing of theirs changed.
	r = env.As(dev2, "GET", "/v1/credentials", nil)
	if !strings.Contains(string(r.Body), cred2) || strings.Contains(string(r.Body), `"enabled":false`) {
		t.Errorf("the other developer's credential after the probes: %s", r.Body)
	}
}

// TestEnumTokens: what holds no working token gets one answer, whatever
// the string was: unknown, revoked, a canary API token, a deleted API
// token, another account's token at introspection, the bulk revocation
// endpoint (SPEC §4, §10.1).
func TestEnumTokens(t *testing.T) {
	w := newCrossWorld(t)
	env := w.env
	enumRoomy(t, env, w.op)
	adm := env.Login("a2@example.com", memberPW)
	revoked := env.Login("amem@example.com", memberPW)
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", url.Values{"token": {revoked}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Bearer "+revoked), 200, "")
	bTok := env.Login("bmem@example.com", memberPW)
	cases := []enumCase{
		{"unknown access token", token.New(token.AccessToken), ""},
		{"revoked access token", revoked, ""},
		{"garbage", "gat_notatoken", ""},
	}
	var names, shapes []string
	for _, c := range cases {
		a := enumDo(t, enumClient(), "GET", env.URL+"/v1/me", "", "", "Authorization", "Bearer "+c.user)
		enumNoInternals(t, c.name, a.Body)
		names, shapes = append(names, c.name), append(shapes, enumShape(a))
	}
	enumSame(t, "GET /v1/me with a bearer token", names, shapes)

	// API tokens: unknown, deleted, canary — one answer.
	servertest.Expect(t, env.As(adm, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r := env.As(adm, "POST", "/v1/api-tokens", map[string]any{"name": "canary", "canary": true})
	servertest.Expect(t, r, 201, "")
	canary := r.Map(t)["token"].(string)
	r = env.As(adm, "POST", "/v1/api-tokens", map[string]any{"name": "gone"})
	servertest.Expect(t, r, 201, "")
	goneTok := r.Map(t)
	servertest.Expect(t, env.As(adm, "DELETE", "/v1/api-tokens/"+goneTok["id"].(string), nil), 204, "")
	names, shapes = nil, nil
	for _, c := range []enumCase{{"unknown API token", token.New(token.APIToken), ""}, {"deleted API token", goneTok["token"].(string), ""}, {"canary", canary, ""}} {
		a := enumDo(t, enumClient(), "GET", env.URL+"/v1/me", "", "", "X-API-Token", c.user)
		names, shapes = append(names, c.name), append(shapes, enumShape(a))
	}
	enumSame(t, "GET /v1/me with an API token", names, shapes)

	// Introspection by A's admin: B's live token is as unknown as an
	// unknown one.
	names, shapes = nil, nil
	for _, c := range []enumCase{{"unknown", token.New(token.AccessToken), ""}, {"B's live access token", bTok, ""}, {"revoked", revoked, ""},
		{"B's API token", "", ""}} {
		if c.user == "" {
			servertest.Expect(t, env.As(w.bAdmin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
			r := env.As(w.bAdmin, "POST", "/v1/api-tokens", map[string]any{"name": "b2"})
			servertest.Expect(t, r, 201, "")
			c.user = r.Map(t)["token"].(string)
		}
		a := enumDo(t, enumClient(), "POST", env.URL+"/oauth/introspect", url.Values{"token": {c.user}}.Encode(), "application/x-www-form-urlencoded",
			"Authorization", "Bearer "+adm)
		for k := range a.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-ratelimit") || strings.HasPrefix(strings.ToLower(k), "ratelimit") {
				a.Header.Del(k)
			}
		}
		t.Logf("introspect %s: %d %s", c.name, a.Status, a.Body)
		names, shapes = append(names, c.name), append(shapes, enumShape(a))
	}
	enumSame(t, "POST /oauth/introspect by another account's admin", names, shapes)
	// B's token still works (introspection by another account is no revocation).
	servertest.Expect(t, env.As(bTok, "GET", "/v1/me", nil), 200, "")

	// Bulk revocation: 202 {} whatever the strings were.
	names, shapes = nil, nil
	for _, c := range []enumCase{{"unknown", token.New(token.AccessToken), ""}, {"garbage", "not a secret at all", ""},
		{"live API token", withAPIToken(t, env, w.bAdmin).Token, ""}} {
		b, _ := json.Marshal(map[string]any{"credentials": []string{c.user}})
		a := enumDo(t, enumClient(), "POST", env.URL+"/v1/credentials/revoke", string(b), "application/json")
		names, shapes = append(names, c.name), append(shapes, enumShape(a))
	}
	enumSame(t, "POST /v1/credentials/revoke", names, shapes)
}

// TestEnumThrottle: the sign-in throttle counts an unknown user and an
// existing one alike: after five failures from one address the sixth is
// refused for both, the same way.
func TestEnumThrottle(t *testing.T) {
	w := enumNewWorld(t)
	var names, shapes []string
	for _, c := range []enumCase{{"unknown", "nobody@example.com", "wrong password 77"}, {"existing", "alice@example.com", "wrong password 77"},
		{"disabled", "dis@example.com", enumPW}} {
		cl := enumClient()
		var a enumAnswer
		for range 6 {
			a = enumDo(t, cl, "POST", w.env.URL+"/authorization", url.Values{"username": {c.user}, "password": {c.pw}}.Encode(), "application/x-www-form-urlencoded")
		}
		// Retry-After counts down from the first failure: rounded, equal.
		t.Logf("%s, sixth: %d %s %s", c.name, a.Status, a.Header.Get("Retry-After"), a.Body)
		a.Header.Del("Retry-After")
		names, shapes = append(names, c.name), append(shapes, enumShape(a))
	}
	enumSame(t, "the sixth failure", names, shapes)
}

// TestEnumCreateUserConflict: an admin who makes a user with an address
// another account holds learns that it is taken (SPEC §1: unique across
// the server) and nothing more: no account, name or id of the holder.
func TestEnumCreateUserConflict(t *testing.T) {
	w := newCrossWorld(t)
	env := w.env
	adm := env.Login("a2@example.com", memberPW)
	r := env.As(adm, "POST", "/v1/users", map[string]any{"email": "BMEM@example.com", "name": "x", "password": enumPW, "roles": []string{}})
	t.Logf("create with B's address: %d %s", r.Status, r.Body)
	for _, leak := range []string{w.bMemID, w.bAcc, "Bee", "bmem"} {
		if strings.Contains(strings.ToLower(string(r.Body)), strings.ToLower(leak)) {
			t.Errorf("the refusal names %q: %s", leak, r.Body)
		}
	}
	enumNoInternals(t, "create user conflict", string(r.Body))
	// The console's form alike.
	s := uiSignIn(t, env, "a2@example.com", memberPW)
	s.get("/admin/users")
	st, body, _ := s.post("/admin/users", url.Values{"email": {"bmem@example.com"}, "name": {"x"}, "password": {enumPW}})
	t.Logf("console create with B's address: %d %s", st, enumExcerpt(body))
	for _, leak := range []string{w.bMemID, w.bAcc, "Bee"} {
		if strings.Contains(body, leak) {
			t.Errorf("the console's refusal names %q", leak)
		}
	}
	enumNoInternals(t, "console create user conflict", body)
}

// TestEnumWebhookDeliveries: A's admin names B's delivery under A's own
// endpoint: answered as a delivery that does not exist.
func TestEnumWebhookDeliveries(t *testing.T) {
	w := newCrossWorld(t)
	env := w.env
	adm := env.Login("a2@example.com", memberPW)
	env.CreateUser(w.bAdmin, "bnew@example.com", memberPW) // an event for B's endpoint
	var bDelivery string
	for range 50 {
		r := env.As(w.bAdmin, "GET", "/v1/webhooks/"+w.bWebhook+"/deliveries", nil)
		var l struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		r.JSON(t, &l)
		if len(l.Data) > 0 {
			bDelivery = l.Data[0].ID
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if bDelivery == "" {
		t.Fatal("B's endpoint got no delivery")
	}
	rc := newReceiver(t, nil)
	r := env.As(adm, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"user.*"}})
	servertest.Expect(t, r, 201, "")
	mine := r.Map(t)["id"].(string)
	fake := gatehouse.NewID(strings.Split(bDelivery, "_")[0])
	rb := env.As(adm, "POST", "/v1/webhooks/"+mine+"/deliveries/"+bDelivery+"/redeliver", nil)
	rf := env.As(adm, "POST", "/v1/webhooks/"+mine+"/deliveries/"+fake+"/redeliver", nil)
	sb, sf := enumAPIShape(rb, bDelivery, fake), enumAPIShape(rf, bDelivery, fake)
	t.Logf("B's delivery: %s; missing: %s", sb, sf)
	if sb != sf {
		t.Errorf("redeliver B's delivery under A's endpoint answers %s, a missing one %s", sb, sf)
	}
	rb = env.As(adm, "POST", "/v1/webhooks/"+w.bWebhook+"/deliveries/"+bDelivery+"/redeliver", nil)
	rf = env.As(adm, "POST", "/v1/webhooks/"+gatehouse.NewID(strings.Split(w.bWebhook, "_")[0])+"/deliveries/"+fake+"/redeliver", nil)
	if a, b := enumAPIShape(rb, bDelivery, fake, w.bWebhook), enumAPIShape(rf); a != b && !strings.Contains(b, "not found") {
		t.Errorf("redeliver B's delivery under B's endpoint answers %s, a missing one %s", a, b)
	}
}
