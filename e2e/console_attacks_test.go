package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/admin"
	"github.com/gatehouse/gatehouse/internal/oidcprovider"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// crossWorld is two accounts with something of every kind in the second.
type crossWorld struct {
	env                          *servertest.Env
	op                           string
	bAcc                         string
	bAdmin, bDev                 string // tokens
	bAdminID, bMemID, bDevID     string
	bCred, bCredClient           string
	bTok, bWebhook, bApp, bAppCl string
	aAdminID, aMemID, aDevID     string
}

func newCrossWorld(t *testing.T) *crossWorld {
	t.Helper()
	env := servertest.Start(t, insecureWebhooks)
	w := &crossWorld{env: env, op: env.AdminToken()}
	w.aAdminID = env.CreateUser(w.op, "a2@example.com", memberPW, "admin")
	w.aMemID = env.CreateUser(w.op, "amem@example.com", memberPW)
	w.aDevID = env.CreateUser(w.op, "adev@example.com", memberPW, "developer")
	w.bAcc, w.bAdmin = env.CreateAccount(w.op, "Bee", "badmin@example.com", memberPW)
	w.bAdminID = meID(t, env, w.bAdmin)
	w.bMemID = env.CreateUser(w.bAdmin, "bmem@example.com", memberPW)
	w.bDevID = env.CreateUser(w.bAdmin, "bdev@example.com", memberPW, "developer")
	w.bDev = env.Login("bdev@example.com", memberPW)
	r := env.As(w.bDev, "POST", "/v1/credentials", map[string]any{"name": "bcred"})
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	w.bCred, w.bCredClient = m["id"].(string), m["client_id"].(string)
	servertest.Expect(t, env.As(w.bAdmin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r = env.As(w.bAdmin, "POST", "/v1/api-tokens", map[string]string{"name": "btok"})
	servertest.Expect(t, r, 201, "")
	w.bTok = r.Map(t)["id"].(string)
	rc := newReceiver(t, nil)
	r = env.As(w.bAdmin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"user.*"}})
	servertest.Expect(t, r, 201, "")
	w.bWebhook = r.Map(t)["id"].(string)
	a := registerApp(t, env, w.bDev, "confidential", []string{appRedirect}, nil)
	w.bApp, w.bAppCl = a.ID, a.ClientID
	return w
}

// fill puts b's ids in a console pattern's path.
func (w *crossWorld) fill(path string) string {
	return strings.ReplaceAll(w.fillUnder("/admin", path), "{$}", "")
}

// fillUnder puts b's ids in a path whose routes start with prefix (the
// console's /admin, the API's /v1): the id of b's object of the path's
// kind for {id}, b's member for {user_id}, b's application's client id,
// and "x" for anything else.
func (w *crossWorld) fillUnder(prefix, path string) string {
	id := "x"
	for kind, v := range map[string]string{"users": w.bMemID, "developers": w.bDevID, "credentials": w.bCred,
		"api-tokens": w.bTok, "apps": w.bApp, "webhooks": w.bWebhook, "accounts": w.bAcc} {
		if strings.HasPrefix(path, prefix+"/"+kind+"/") {
			id = v
		}
	}
	for from, to := range map[string]string{"{user_id}": w.bMemID, "{id}": id, "{client_id}": w.bAppCl, "{delivery_id}": "x"} {
		path = strings.ReplaceAll(path, from, to)
	}
	return path
}

// TestConsoleCrossAccountSweep: an admin of one account names, in
// every console route with an id (path or form), a user, developer,
// credential, API token, application, webhook or account of another
// account; every answer is a refusal.
func TestConsoleCrossAccountSweep(t *testing.T) {
	w := newCrossWorld(t)
	s := uiSignIn(t, w.env, "a2@example.com", memberPW)
	s.get("/admin/me")
	for _, pat := range admin.Patterns() {
		method, path, _ := strings.Cut(pat, " ")
		if !strings.Contains(path, "{") && pat != "POST /admin/developers" {
			continue
		}
		if strings.HasPrefix(path, "/admin/me/") || path == "/admin/{$}" {
			continue
		}
		p := w.fill(path)
		var st int
		var loc string
		if method == "GET" {
			st, _, loc = s.get(p)
		} else {
			st, _, loc = s.post(p, url.Values{"confirmed": {"yes"}, "user_id": {w.bMemID}, "name": {"zz"}, "status": {"disabled"},
				"overlap_seconds": {"0"}, "enabled": {"false"}, "password": {"Another-long-pw-1234"}, "revoke": {"true"}})
			s.get("/admin/me")
		}
		t.Logf("%s %s -> %d %q", method, p, st, loc)
		if st < 400 {
			t.Errorf("%s %s with another account's id: %d %q", method, p, st, loc)
		}
	}
}

// TestConsoleSSOSecretFollowsNewIssuer: the provider's client secret is
// "sealed under the server key; never shown again", and it is never sent
// to another provider: an admin who never knew it and repoints single
// sign-on at a provider of their own, leaving the secret field empty
// ("kept"), is refused, and the next sign-in goes to the real provider
// (the console kept the secret and sent it to the new provider's token
// endpoint; the attacker's provider here accepts only the real secret, so
// a token it issued would prove the secret reached it).
func TestConsoleSSOSecretFollowsNewIssuer(t *testing.T) {
	env, op, admin := ssoSetUp(t)
	env.CreateUser(admin, "eve@example.com", memberPW, "admin")
	// eve's own provider, same client id (not a secret); its token
	// endpoint answers only when sent the real provider's secret.
	evil := oidcprovider.Start(t, "gatehouse-console", ssoClientSecret)
	issuer := func() string {
		t.Helper()
		sso, _ := env.As(admin, "GET", "/v1/settings", nil).Map(t)["sso"].(map[string]any)
		s, _ := sso["issuer"].(string)
		return s
	}

	eve := uiSignIn(t, env, "eve@example.com", memberPW)
	eve.get("/admin/settings")
	st, body, _ := eve.post("/admin/settings/sso", url.Values{"sso.issuer": {evil.URL}, "sso.client_id": {"gatehouse-console"},
		"sso.client_secret": {""}, "sso.domains": {"example.com"}})
	if st == http.StatusSeeOther || !strings.Contains(body, "new provider issued") || issuer() != op.URL {
		t.Fatalf("the console repointed single sign-on at %s without a new secret: %d, issuer now %s", evil.URL, st, issuer())
	}
	// The API refuses it alike, naming the field; with the new
	// provider's own secret (or none) the change is made.
	eveTok := env.Login("eve@example.com", memberPW)
	if r := env.As(eveTok, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{"issuer": evil.URL}}); r.Status != 400 ||
		!strings.Contains(string(r.Body), "sso.client_secret") {
		t.Fatalf("the API repointed single sign-on without a new secret: %d %s", r.Status, r.Body)
	}
	if issuer() != op.URL {
		t.Fatalf("issuer changed to %s", issuer())
	}
	// The next sign-in goes to the real provider; the attacker's has
	// issued nothing.
	op.SignIn(oidcprovider.User{Subject: "eve", Email: "eve@example.com", EmailVerified: true})
	c := ssoBrowser(t)
	ssoGet(t, c, ssoToCallback(t, env, c, "eve@example.com"))
	if evil.Tokens() != 0 {
		t.Fatalf("the kept client secret was sent to %s (%d tokens issued)", evil.URL, evil.Tokens())
	}
	servertest.Expect(t, env.As(eveTok, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{"issuer": evil.URL, "client_secret": "eve's own"}}), 200, "")
	if issuer() != evil.URL {
		t.Fatalf("with its own secret the issuer did not change: %s", issuer())
	}
}

// TestConsoleSessionProbes: logout, a reset password, CSRF variants and
// next= values, each logged; failures are the promise broken.
func TestConsoleSessionProbes(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	memID := env.CreateUser(op, "mem@example.com", memberPW)
	_ = memID
	// Logout ends the session on the server.
	s := uiSignIn(t, env, "mem@example.com", memberPW)
	u, _ := url.Parse(env.URL)
	old := s.c.Jar.Cookies(u)
	s.get("/admin/me")
	s.post("/admin/logout", url.Values{})
	jar2 := newUserAgent(t, env.URL)
	jar2.c.Jar.SetCookies(u, old)
	resp, _ := jar2.do("GET", "/admin/me", nil)
	if resp.StatusCode == 200 {
		t.Errorf("the session works after logout")
	}
	// CSRF variants.
	a := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	a.get("/admin/users")
	b := uiSignIn(t, env, "mem@example.com", memberPW)
	b.get("/admin/me")
	try := func(name string, req *http.Request, want int) {
		st, _, loc := a.do(req)
		t.Logf("%s: %d %q", name, st, loc)
		if st != want {
			t.Errorf("%s: %d, want %d", name, st, want)
		}
	}
	form := url.Values{"email": {"x1@example.com"}, "name": {"x"}}
	req, _ := http.NewRequest("POST", env.URL+"/admin/users?csrf="+a.csrf, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	try("token in the query", req, 403)
	f2 := url.Values{"email": {"x2@example.com"}, "csrf": {b.csrf}}
	req, _ = http.NewRequest("POST", env.URL+"/admin/users", strings.NewReader(f2.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	try("another session's token", req, 403)
	f3 := url.Values{"email": {"x3@example.com"}, "csrf": {a.csrf}}
	req, _ = http.NewRequest("POST", env.URL+"/admin/users", strings.NewReader(f3.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-site")
	try("same-site", req, 403)
	req, _ = http.NewRequest("POST", env.URL+"/admin/users", strings.NewReader(f3.Encode()))
	req.Header.Set("Content-Type", "text/plain")
	try("text/plain", req, 403)
	for _, next := range []string{"//evil.example", "/\\evil.example", "https://evil.example/", "/admin/authorize?x=1@evil", "/admin/device/../../\\evil", "javascript:alert(1)", "/admin/authorize?/../../evil", "%2F%2Fevil"} {
		c := newUserAgent(t, env.URL)
		_, body := c.do("GET", "/admin/login?next="+url.QueryEscape(next), nil)
		csrf := between(body, `name="csrf" value="`, `"`)
		resp, _ := c.do("POST", "/admin/login", url.Values{"csrf": {csrf}, "email": {"mem@example.com"}, "password": {memberPW}, "next": {next}})
		loc := resp.Header.Get("Location")
		t.Logf("next %q -> %q", next, loc)
		if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
			t.Errorf("next %q sent the browser to %q", next, loc)
		}
	}
}

// TestConsoleStoredMarkup: names, descriptions and URLs with markup,
// stored through the API, appear escaped on every console page that
// shows them.
func TestConsoleStoredMarkup(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	op := env.AdminToken()
	const x = `"><img src=x onerror=alert(1)>`
	uid := env.CreateUser(op, "dev@example.com", memberPW, "developer")
	servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+uid, map[string]any{"name": "N" + x}), 200, "")
	dev := env.Login("dev@example.com", memberPW)
	r := env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "C" + x})
	t.Logf("cred %d", r.Status)
	credID, _ := r.Map(t)["id"].(string)
	r = env.As(dev, "POST", "/v1/apps", map[string]any{"name": "A" + x, "type": "confidential", "redirect_uris": []string{appRedirect}, "homepage_url": "javascript:alert(1)"})
	t.Logf("app js homepage %d %s", r.Status, r.Body)
	r = env.As(dev, "POST", "/v1/apps", map[string]any{"name": "A" + x, "type": "confidential", "redirect_uris": []string{appRedirect}, "homepage_url": "https://app.example.com/" + x})
	t.Logf("app %d", r.Status)
	servertest.Expect(t, env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r = env.As(op, "POST", "/v1/api-tokens", map[string]string{"name": "T" + x})
	t.Logf("tok %d", r.Status)
	tokID, _ := r.Map(t)["id"].(string)
	rc := newReceiver(t, nil)
	r = env.As(op, "POST", "/v1/webhooks", map[string]any{"url": rc.URL + "/?q=" + url.QueryEscape(x), "events": []string{"user.*"}, "description": "W" + x})
	t.Logf("wh %d %s", r.Status, r.Body)
	whID, _ := r.Map(t)["id"].(string)
	r = env.As(op, "POST", "/v1/accounts", map[string]string{"name": "Acc" + x, "admin_email": "acc@example.com", "admin_password": memberPW})
	t.Logf("acc %d", r.Status)
	a := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	d := uiSignIn(t, env, "dev@example.com", memberPW)
	pages := []string{"/admin/users", "/admin/users/" + uid, "/admin/developers", "/admin/apps", "/admin/extensions", "/admin/api-tokens/" + tokID,
		"/admin/api-tokens/" + tokID + "/revoke", "/admin/webhooks", "/admin/webhooks/" + whID, "/admin/webhooks/" + whID + "/delete",
		"/admin/audit", "/admin/usage", "/admin/accounts", "/admin/credentials/" + credID, "/admin/credentials/" + credID + "/delete", "/admin/users/" + uid + "/delete"}
	for _, p := range pages {
		_, body, _ := a.get(p)
		if strings.Contains(body, "<img src=x") || strings.Contains(body, `href="javascript:`) {
			t.Errorf("%s shows markup raw", p)
		}
	}
	for _, p := range []string{"/admin/apps", "/admin/credentials", "/admin/me"} {
		_, body, _ := d.get(p)
		if strings.Contains(body, "<img src=x") || strings.Contains(body, `href="javascript:`) {
			t.Errorf("dev %s shows markup raw", p)
		}
	}
}

// TestConsoleOperatorUntouchable: another admin of the operator's
// account changes nothing of the operator through any user route.
func TestConsoleOperatorUntouchable(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	opID := meID(t, env, op)
	env.CreateUser(op, "eve@example.com", memberPW, "admin")
	eve := uiSignIn(t, env, "eve@example.com", memberPW)
	eve.get("/admin/users")
	for _, pat := range admin.Patterns() {
		method, path, _ := strings.Cut(pat, " ")
		if method != "POST" || !(strings.HasPrefix(path, "/admin/users/{id}") || strings.HasPrefix(path, "/admin/developers")) {
			continue
		}
		p := strings.ReplaceAll(strings.ReplaceAll(path, "{id}", opID), "{client_id}", "gci_x")
		st, _, loc := eve.post(p, url.Values{"confirmed": {"yes"}, "user_id": {opID}, "password": {"Another-long-pw-1234"}, "status": {"disabled"},
			"role": {"admin"}, "rate_limit.daily": {"1"}, "rate_limit.burst": {"1"}, "rate_limit.burst_window_seconds": {"1"}, "revoke": {"true"}})
		t.Logf("%s -> %d %q", p, st, loc)
		if st < 400 {
			t.Errorf("%s on the operator: %d %q", p, st, loc)
		}
		eve.get("/admin/users")
	}
}
