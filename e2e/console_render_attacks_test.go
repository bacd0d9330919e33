package e2e

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/admin"
	"github.com/gatehouse/gatehouse/internal/oidcprovider"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// The console as an attacker sees it: output escaping of every
// user-controlled value its pages render, role checks on every form,
// method confusion, secrets shown once, and the single sign-on link as a
// login CSRF.

// renderMarkup is a payload that breaks out of text, double- and
// single-quoted attributes.
const renderMarkup = `"'><script>markOne()</script><img src=x onerror=markTwo()>`

// renderLive matches the payload (or a javascript: URL) left live in a page.
var renderLive = regexp.MustCompile(`(?i)<script>markOne|<img src=x|"'>|(href|src|action|formaction)\s*=\s*["']?\s*javascript:|url=javascript:`)

// renderURLMarkup is the payload without spaces, for URLs.
const renderURLMarkup = `"'><script>markOne()</script>`

// checkRendered fails when body shows the payload unescaped.
func checkRendered(t *testing.T, who, p string, status int, body string) {
	t.Helper()
	if m := renderLive.FindString(body); m != "" {
		i := strings.Index(body, m)
		lo, hi := max(0, i-200), min(len(body), i+200)
		t.Errorf("%s GET %s (%d) shows markup live: %q in …%s…", who, p, status, m, body[lo:hi])
	}
}

// renderWorld is an account with something of every kind, each named with the
// payload where the API accepts it.
type renderWorld struct {
	env                        *servertest.Env
	op                         string
	memID, devID, markID       string
	dev                        string // developer's token
	cred, tok, webhook, app    string
	appClient, acc, deliveryID string
}

func newRenderWorld(t *testing.T) *renderWorld {
	t.Helper()
	env := servertest.Start(t, insecureWebhooks)
	w := &renderWorld{env: env, op: env.AdminToken()}
	w.memID = env.CreateUser(w.op, "mem@example.com", memberPW)
	w.devID = env.CreateUser(w.op, "dev@example.com", memberPW, "developer")
	w.markID = env.CreateUser(w.op, "mark@example.com", memberPW)
	r := env.As(w.op, "PATCH", "/v1/users/"+w.markID, map[string]any{"name": "N" + renderMarkup})
	t.Logf("user name with markup: %d", r.Status)
	// An e-mail address with markup, if the API takes one.
	for _, e := range []string{`"<script>markOne()</script>"@example.com`, `x+"><script>markOne()</script>@example.com`} {
		r = env.As(w.op, "POST", "/v1/users", map[string]any{"email": e, "name": "x", "password": memberPW, "roles": []string{}})
		t.Logf("e-mail %q: %d %.120s", e, r.Status, r.Body)
	}
	w.dev = env.Login("dev@example.com", memberPW)
	r = env.As(w.dev, "POST", "/v1/credentials", map[string]any{"name": "C" + renderMarkup,
		"metadata": map[string]any{"k": renderMarkup}, "external_id": "E" + renderMarkup})
	t.Logf("credential with markup: %d %.200s", r.Status, r.Body)
	if r.Status != 201 {
		r = env.As(w.dev, "POST", "/v1/credentials", map[string]any{"name": "C" + renderMarkup})
		servertest.Expect(t, r, 201, "")
	}
	w.cred = r.Map(t)["id"].(string)
	for _, hp := range []string{"javascript:markOne()", "JaVaScRiPt:markOne()", " javascript:markOne()", "data:text/html,<script>markOne()</script>"} {
		r = env.As(w.dev, "POST", "/v1/apps", map[string]any{"name": "J" + hp, "type": "confidential", "redirect_uris": []string{appRedirect}, "homepage_url": hp})
		t.Logf("app homepage %q: %d %.120s", hp, r.Status, r.Body)
	}
	r = env.As(w.dev, "POST", "/v1/apps", map[string]any{"name": "A" + renderMarkup, "type": "confidential",
		"redirect_uris": []string{appRedirect, appRedirect + `?x=` + renderURLMarkup}, "homepage_url": "https://app.example.com/"})
	t.Logf("app with markup: %d %.200s", r.Status, r.Body)
	if r.Status != 201 {
		r = env.As(w.dev, "POST", "/v1/apps", map[string]any{"name": "A" + renderMarkup, "type": "confidential",
			"redirect_uris": []string{appRedirect}, "homepage_url": "https://app.example.com/"})
		servertest.Expect(t, r, 201, "")
	}
	w.app, w.appClient = r.Map(t)["id"].(string), r.Map(t)["client_id"].(string)
	servertest.Expect(t, env.As(w.op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r = env.As(w.op, "POST", "/v1/api-tokens", map[string]any{"name": "T" + renderMarkup})
	servertest.Expect(t, r, 201, "")
	w.tok = r.Map(t)["id"].(string)
	rc := newReceiver(t, nil)
	r = env.As(w.op, "POST", "/v1/webhooks", map[string]any{"url": rc.URL + `/"><script>markOne()</script>`, "events": []string{"*"}, "description": "W" + renderMarkup})
	t.Logf("webhook with markup in its URL: %d %.200s", r.Status, r.Body)
	if r.Status != 201 {
		r = env.As(w.op, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"*"}, "description": "W" + renderMarkup})
		servertest.Expect(t, r, 201, "")
	}
	w.webhook = r.Map(t)["id"].(string)
	r = env.As(w.op, "POST", "/v1/webhooks/"+w.webhook+"/test", nil)
	t.Logf("webhook test: %d", r.Status)
	if r.Status < 300 {
		w.deliveryID, _ = r.Map(t)["id"].(string)
	}
	r = env.As(w.op, "POST", "/v1/accounts", map[string]string{"name": "Acc" + renderMarkup, "admin_email": "acc@example.com", "admin_password": memberPW})
	t.Logf("account with markup: %d", r.Status)
	if r.Status == 201 {
		if a, ok := r.Map(t)["account"].(map[string]any); ok {
			w.acc, _ = a["id"].(string)
		} else {
			w.acc, _ = r.Map(t)["id"].(string)
		}
	}
	return w
}

// fill puts the world's ids into a console pattern.
func (w *renderWorld) fill(path string) string {
	id := "x"
	for kind, v := range map[string]string{"users": w.markID, "developers": w.devID, "credentials": w.cred,
		"api-tokens": w.tok, "apps": w.app, "webhooks": w.webhook, "accounts": w.acc} {
		if strings.HasPrefix(path, "/admin/"+kind+"/") {
			id = v
		}
	}
	for from, to := range map[string]string{"{id}": id, "{client_id}": w.appClient, "{delivery_id}": w.deliveryID, "{$}": ""} {
		path = strings.ReplaceAll(path, from, to)
	}
	return path
}

// TestConsoleMarkupOnEveryPage: the payload is stored through the API
// in every field that takes it; every GET page of the console, as the
// operator-admin, a developer and the member, shows it escaped; so do the
// forms a refusal shows again, the searches and filters that echo their
// query, the flash after a change, the confirmation pages and the
// consent page.
func TestConsoleMarkupOnEveryPage(t *testing.T) {
	w := newRenderWorld(t)
	env := w.env
	a := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	d := uiSignIn(t, env, "dev@example.com", memberPW)
	m := uiSignIn(t, env, "mark@example.com", memberPW)
	shown := 0
	for _, pat := range admin.Patterns() {
		method, path, _ := strings.Cut(pat, " ")
		if method != "GET" || strings.HasPrefix(path, "/admin/login") || strings.HasPrefix(path, "/admin/sso") || path == "/admin/audit/export" {
			continue
		}
		p := w.fill(path)
		for who, s := range map[string]*uiSession{"admin": a, "developer": d, "member": m} {
			st, body, _ := s.get(p)
			checkRendered(t, who, p, st, body)
			if strings.Contains(body, "&lt;script&gt;markOne") {
				shown++
			}
		}
	}
	// The sweep means something only if the payload was on the pages.
	if shown < 10 {
		t.Errorf("the payload was shown (escaped) on only %d pages", shown)
	}
	// Searches and filters that echo their query.
	for _, p := range []string{
		"/admin/users?q=" + url.QueryEscape(renderMarkup),
		"/admin/users?role=" + url.QueryEscape(renderMarkup),
		"/admin/users?status=" + url.QueryEscape(renderMarkup),
		"/admin/developers?find=" + url.QueryEscape(renderMarkup),
		"/admin/audit?actor=" + url.QueryEscape(renderMarkup) + "&action=" + url.QueryEscape(renderMarkup) + "&target=" + url.QueryEscape(renderMarkup),
		"/admin/audit?from=" + url.QueryEscape(renderMarkup) + "&to=" + url.QueryEscape(renderMarkup),
		"/admin/device?user_code=" + url.QueryEscape(`"><script>markOne()</script>`),
		"/admin/users?after=" + url.QueryEscape(renderMarkup),
		"/admin/webhooks/" + w.webhook + "?after=" + url.QueryEscape(renderMarkup),
		"/admin/login?next=" + url.QueryEscape("/admin/authorize?"+renderMarkup),
		"/admin/login?error=" + url.QueryEscape(renderMarkup),
		"/admin/sso?account=" + url.QueryEscape(renderMarkup),
	} {
		st, body, _ := a.get(p)
		checkRendered(t, "admin", p, st, body)
	}
	// Refused forms shown again with what was typed.
	a.get("/admin/users")
	for _, f := range []struct {
		path string
		form url.Values
	}{
		{"/admin/users", url.Values{"email": {renderMarkup}, "name": {renderMarkup}, "role": {renderMarkup}}},
		{"/admin/webhooks", url.Values{"url": {renderMarkup}, "events": {renderMarkup}, "description": {renderMarkup}}},
		{"/admin/webhooks", url.Values{"url": {"javascript:markOne()"}, "events": {"*"}}},
		{"/admin/api-tokens", url.Values{"name": {strings.Repeat("x", 300) + renderMarkup}}},
		{"/admin/settings/sso", url.Values{"sso.issuer": {"https://idp.invalid/" + renderMarkup}, "sso.client_id": {renderMarkup}, "sso.domains": {renderMarkup}}},
		{"/admin/settings/sso", url.Values{"sso.issuer": {"javascript:markOne()"}, "sso.client_id": {"x"}, "sso.domains": {"example.com"}}},
		{"/admin/settings", url.Values{"rate_limit.burst": {renderMarkup}, "custom_scopes": {renderMarkup}, "require_mfa": {renderMarkup}}},
		{"/admin/users/" + w.markID + "/plan", url.Values{"rate_limit.daily": {renderMarkup}}},
		{"/admin/api-tokens/" + w.tok + "/plan", url.Values{"allowed_ips": {renderMarkup}}},
		{"/admin/api-access/enable", url.Values{"access_token_ttl_days": {renderMarkup}}},
		{"/admin/accounts", url.Values{"name": {renderMarkup}, "admin_email": {renderMarkup}, "admin_password": {"x"}}},
		{"/admin/device", url.Values{"user_code": {`"><script>markOne()</script>`}}},
		{"/admin/developers", url.Values{"user_id": {renderMarkup}}},
	} {
		st, body, _ := a.post(f.path, f.form)
		checkRendered(t, "admin POST", f.path, st, body)
		a.get("/admin/users")
	}
	d.get("/admin/apps")
	for _, f := range []struct {
		path string
		form url.Values
	}{
		{"/admin/apps", url.Values{"name": {renderMarkup}, "type": {"confidential"}, "redirect_uris": {"javascript:markOne()\n" + renderMarkup}, "homepage_url": {"javascript:markOne()"}, "scopes": {renderMarkup}}},
		{"/admin/credentials", url.Values{"name": {strings.Repeat("y", 300) + renderMarkup}}},
		{"/admin/credentials/" + w.cred + "/plan", url.Values{"allowed_ips": {renderMarkup}, "quota.limit": {"5"}, "quota.period": {renderMarkup}}},
		{"/admin/me/password", url.Values{"current_password": {renderMarkup}, "new_password": {renderMarkup}, "repeat_password": {renderMarkup}}},
		{"/admin/me/mfa/passkeys", url.Values{"name": {renderMarkup}, "challenge_id": {renderMarkup}, "credential": {renderMarkup}}},
	} {
		st, body, _ := d.post(f.path, f.form)
		checkRendered(t, "developer POST", f.path, st, body)
		d.get("/admin/apps")
	}
	// The flash after a change, and the account's suspension page.
	if w.acc != "" {
		a.get("/admin/accounts")
		st, body, _ := a.post("/admin/accounts/"+w.acc, url.Values{"name": {"Re" + renderMarkup}})
		t.Logf("rename account: %d", st)
		st, body, _ = a.get("/admin/accounts")
		checkRendered(t, "admin flash", "/admin/accounts", st, body)
		st, body, _ = a.post("/admin/accounts/"+w.acc, url.Values{"status": {"suspended"}})
		checkRendered(t, "admin confirm", "/admin/accounts/"+w.acc, st, body)
	}
	// The consent page of the application with markup, as the member.
	q := url.Values{"response_type": {"code"}, "client_id": {w.appClient}, "redirect_uri": {appRedirect}, "state": {renderMarkup},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}, "scope": {renderMarkup}}
	st, body, _ := m.get("/admin/authorize?" + q.Encode())
	checkRendered(t, "member", "/admin/authorize", st, body)
	q.Del("scope")
	st, body, _ = m.get("/admin/authorize?" + q.Encode())
	t.Logf("consent page %d", st)
	checkRendered(t, "member", "/admin/authorize", st, body)
}

// TestConsoleFormsNeedTheRole: a member's and a developer's session post
// every admin and operator form of the console, with the CSRF token of
// their session and ids of their own account; each is refused and nothing
// changes.
func TestConsoleFormsNeedTheRole(t *testing.T) {
	w := newRenderWorld(t)
	env := w.env
	type snapshot struct{ users, webhooks, settings, tokens, accounts, apps, creds, mark, ext, access string }
	snap := func() snapshot {
		t.Helper()
		get := func(p string) string {
			r := env.As(w.op, "GET", p, nil)
			if r.Status != 200 {
				t.Fatalf("GET %s: %d %s", p, r.Status, r.Body)
			}
			// Last use and delivery times move on their own.
			s := regexp.MustCompile(`"(last_used_at|updated_at|last_sign_in_at|next_attempt_at|remaining|status_code|attempt)":[^,}]*`).ReplaceAllString(string(r.Body), "")
			return s
		}
		return snapshot{users: get("/v1/users"), webhooks: get("/v1/webhooks"), settings: get("/v1/settings"), tokens: get("/v1/api-tokens"),
			accounts: get("/v1/accounts"), apps: get("/v1/apps"), creds: get("/v1/credentials?user_id=" + w.devID), mark: get("/v1/users/" + w.markID),
			ext: get("/v1/extensions")}
	}
	// The developer who posts owns nothing: the credential and the
	// application are another developer's.
	dev2 := env.CreateUser(w.op, "dev2@example.com", memberPW, "developer")
	before := snap()
	for who, email := range map[string]string{"member": "mem@example.com", "developer": "dev2@example.com"} {
		s := uiSignIn(t, env, email, memberPW)
		selfID := w.memID
		if who == "developer" {
			selfID = dev2
		}
		s.get("/admin/me")
		for _, pat := range admin.Patterns() {
			method, path, _ := strings.Cut(pat, " ")
			if method != "POST" || strings.HasPrefix(path, "/admin/login") || strings.HasPrefix(path, "/admin/sso") ||
				strings.HasPrefix(path, "/admin/me") || path == "/admin/logout" || strings.HasPrefix(path, "/admin/authorize") ||
				strings.HasPrefix(path, "/admin/device") {
				continue
			}
			if who == "developer" && (path == "/admin/credentials" || path == "/admin/apps") {
				continue // theirs to use
			}
			for _, target := range []string{"", selfID} {
				p := w.fill(path)
				if target != "" {
					// Their own sessions are theirs to end.
					if !strings.HasPrefix(path, "/admin/users/{id}") || path == "/admin/users/{id}/sessions/end" {
						continue
					}
					p = strings.ReplaceAll(path, "{id}", target)
					p = strings.ReplaceAll(p, "{client_id}", w.appClient)
				}
				st, body, loc := s.post(p, url.Values{"confirmed": {"yes"}, "user_id": {w.memID}, "name": {"renamed"}, "status": {"disabled"},
					"role": {"admin"}, "overlap_seconds": {"0"}, "enabled": {"false"}, "password": {"Another-long-pw-1234"},
					"email": {"new-by-form@example.com"}, "admin_email": {"acc-by-form@example.com"}, "admin_password": {"Another-long-pw-1234"},
					"url": {"http://127.0.0.1:1/x"}, "events": {"*"}, "access_token_ttl_days": {"30"}, "rate_limit.daily": {"1"},
					"rate_limit.burst": {"1"}, "rate_limit.burst_window_seconds": {"1"}, "rate_limit.burst_window_seconds ": {"1"},
					"token_lifetimes.password_seconds": {"3600"}, "token_lifetimes.client_credentials_seconds": {"3600"},
					"max_credential_lifetime_days": {"30"}, "sso.issuer": {"https://idp.invalid"}, "remove": {"true"}})
				t.Logf("%s POST %s -> %d %q", who, p, st, loc)
				if st < 400 {
					t.Errorf("%s's session POST %s: %d %q %.200s", who, p, st, loc, body)
				}
				s.get("/admin/me")
			}
		}
		if !s.live() {
			t.Logf("%s's session ended along the way", who)
		}
	}
	after := snap()
	for name, pair := range map[string][2]string{"users": {before.users, after.users}, "webhooks": {before.webhooks, after.webhooks},
		"settings": {before.settings, after.settings}, "api tokens": {before.tokens, after.tokens}, "accounts": {before.accounts, after.accounts},
		"apps": {before.apps, after.apps}, "credentials": {before.creds, after.creds}, "marked user": {before.mark, after.mark}, "extension": {before.ext, after.ext}} {
		if pair[0] != pair[1] {
			t.Errorf("%s changed by members' and developers' posts:\nbefore %s\nafter  %s", name, pair[0], pair[1])
		}
	}
}

// TestConsoleOperatorForms: an admin who is not the operator — of the
// operator's account, and of another account — neither sees nor changes
// accounts through the console.
func TestConsoleOperatorForms(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	env.CreateUser(op, "eve@example.com", memberPW, "admin")
	bAcc, _ := env.CreateAccount(op, "Bee", "badmin@example.com", memberPW)
	cAcc, _ := env.CreateAccount(op, "Cee", "cadmin@example.com", memberPW)
	accounts := func() string {
		r := env.As(op, "GET", "/v1/accounts", nil)
		servertest.Expect(t, r, 200, "")
		return string(r.Body)
	}
	before := accounts()
	for _, email := range []string{"eve@example.com", "badmin@example.com"} {
		s := uiSignIn(t, env, email, memberPW)
		if st, _, _ := s.get("/admin/accounts"); st != http.StatusForbidden {
			t.Errorf("%s GET /admin/accounts: %d", email, st)
		}
		s.get("/admin/me")
		for _, c := range []struct {
			path string
			form url.Values
		}{
			{"/admin/accounts", url.Values{"name": {"Evil"}, "admin_email": {"evil@example.com"}, "admin_password": {"Another-long-pw-1234"}}},
			{"/admin/accounts/" + cAcc, url.Values{"name": {"Renamed"}}},
			{"/admin/accounts/" + cAcc, url.Values{"status": {"suspended"}, "confirmed": {"yes"}}},
			{"/admin/accounts/" + bAcc, url.Values{"status": {"suspended"}, "confirmed": {"yes"}}},
			{"/admin/accounts/" + bAcc, url.Values{"name": {"Renamed"}}},
		} {
			st, _, loc := s.post(c.path, c.form)
			if st != http.StatusForbidden {
				t.Errorf("%s POST %s %v: %d %q", email, c.path, c.form, st, loc)
			}
			s.get("/admin/me")
		}
	}
	if after := accounts(); after != before {
		t.Errorf("accounts changed by non-operators:\n%s\n%s", before, after)
	}
}

// TestConsoleNoStateChangeByGet: every POST-only route of the console,
// fetched with GET or HEAD (a link, an image, a prefetch), changes
// nothing: the answer is a refusal or a confirmation page, never a
// redirect that says it was done.
func TestConsoleNoStateChangeByGet(t *testing.T) {
	w := newRenderWorld(t)
	env := w.env
	a := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	gets := map[string]bool{}
	for _, pat := range admin.Patterns() {
		method, path, _ := strings.Cut(pat, " ")
		if method == "GET" {
			gets[path] = true
		}
	}
	before := env.As(w.op, "GET", "/v1/audit?limit=100", nil)
	n0 := strings.Count(string(before.Body), `"action"`)
	for _, pat := range admin.Patterns() {
		method, path, _ := strings.Cut(pat, " ")
		if method != "POST" || gets[path] {
			continue
		}
		p := w.fill(path)
		for _, m := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(m, env.URL+p+"?confirmed=yes&status=disabled&enabled=false&csrf="+url.QueryEscape(a.csrf), nil)
			st, _, loc := a.do(req)
			if st < 400 && p != "/admin/logout" {
				t.Errorf("%s %s: %d %q", m, p, st, loc)
			}
		}
	}
	if !a.live() {
		t.Errorf("a GET of /admin/logout ended the session")
	}
	after := env.As(w.op, "GET", "/v1/audit?limit=100", nil)
	if n1 := strings.Count(string(after.Body), `"action"`); n1 != n0 {
		t.Errorf("GET and HEAD requests were audited as changes: %d entries before, %d after", n0, n1)
	}
}

// revealCookie returns the reveal cookie a redirect to a secret page set.
func revealCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "gatehouse_secret_") {
			return c
		}
	}
	return nil
}

// TestConsoleSecretsShownOnce: for every form that makes a secret — an
// API token, a rolled API token, a client credential and its roll, an
// application and its roll, a webhook and its roll, API access and its
// reissue — the answer to the post holds no secret; the reveal page shows
// it once; a second GET, the same GET with the old cookie put back, the
// page opened from another session of the same user with that cookie, all
// say Already shown; the reveal cookie is HttpOnly, SameSite=Strict and
// scoped to the one page.
func TestConsoleSecretsShownOnce(t *testing.T) {
	w := newRenderWorld(t)
	env := w.env
	u, _ := url.Parse(env.URL)
	a := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	a2 := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	d := uiSignIn(t, env, "dev@example.com", memberPW)
	r := env.As(w.dev, "POST", "/v1/credentials", map[string]any{"name": "to-roll"})
	servertest.Expect(t, r, 201, "")
	credID := r.Map(t)["id"].(string)
	secretish := secretShapes
	type step struct {
		s    *uiSession
		page string
		path string
		form url.Values
	}
	steps := []step{
		{a, "/admin/extensions", "/admin/api-tokens", url.Values{"name": {"secret-token"}}},
		{a, "/admin/extensions", "/admin/api-tokens/" + w.tok + "/roll", url.Values{}},
		{d, "/admin/credentials", "/admin/credentials", url.Values{"name": {"secret-cred"}}},
		{d, "/admin/credentials", "/admin/credentials/" + credID + "/roll", url.Values{}},
		{d, "/admin/apps", "/admin/apps", url.Values{"name": {"secret-app"}, "type": {"confidential"}, "redirect_uris": {appRedirect}}},
		{d, "/admin/apps", "/admin/apps/" + w.app + "/roll", url.Values{"overlap_seconds": {"0"}}},
		{a, "/admin/webhooks", "/admin/webhooks/" + w.webhook + "/roll", url.Values{"overlap_seconds": {"0"}}},
		{a, "/admin/api-access", "/admin/api-access/enable", url.Values{"access_token_ttl_days": {"30"}}},
		{a, "/admin/api-access", "/admin/api-access/reissue", url.Values{}},
	}
	for _, st := range steps {
		st.s.get(st.page)
		form := url.Values{}
		for k, v := range st.form {
			form[k] = v
		}
		form.Set("csrf", st.s.csrf)
		req, _ := http.NewRequest("POST", env.URL+st.path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := st.s.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<16)
		n, _ := resp.Body.Read(buf)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/secrets/") {
			t.Errorf("POST %s: %d %q %.300s", st.path, resp.StatusCode, loc, buf[:n])
			continue
		}
		if m := secretish.Find(buf[:n]); m != nil {
			t.Errorf("POST %s: the answer holds a secret %q", st.path, m)
		}
		ck := revealCookie(t, resp)
		if ck == nil {
			t.Errorf("POST %s: no reveal cookie", st.path)
			continue
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != loc {
			t.Errorf("POST %s: reveal cookie %+v", st.path, ck)
		}
		// Another session of the same user, with the cookie, first.
		a2.c.Jar.SetCookies(&url.URL{Scheme: u.Scheme, Host: u.Host, Path: loc}, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: loc}})
		if code, body, _ := a2.get(loc); code != http.StatusGone || secretish.MatchString(body) {
			t.Errorf("%s opened from another session: %d", st.path, code)
		}
		code, body, _ := st.s.get(loc)
		if code != http.StatusOK {
			t.Errorf("%s: reveal page %d", st.path, code)
		}
		checkRendered(t, "reveal", loc, code, body)
		// Reload, and reload with the cookie put back (the back button).
		if code, body, _ := st.s.get(loc); code != http.StatusGone || secretish.MatchString(body) {
			t.Errorf("%s: reveal page reloaded %d", st.path, code)
		}
		st.s.c.Jar.SetCookies(&url.URL{Scheme: u.Scheme, Host: u.Host, Path: loc}, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: loc}})
		if code, body, _ := st.s.get(loc); code != http.StatusGone || secretish.MatchString(body) {
			t.Errorf("%s: reveal page with the cookie put back %d", st.path, code)
		}
		// The page the reveal goes back to holds no secret.
		if code, body, _ := st.s.get(st.page); secretish.MatchString(body) {
			t.Errorf("%s: %s (%d) shows a secret afterwards", st.path, st.page, code)
		}
	}
}

// navigateFromElsewhere is a browser's top-level navigation from a page
// of another site: GET with the fetch metadata a browser sends, following
// redirects within the console and the provider by hand. It returns the
// last answer's status, Location and body.
func navigateFromElsewhere(t *testing.T, c *http.Client, u string) (int, string, string) {
	t.Helper()
	for range 10 {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Dest", "document")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" || strings.Contains(loc, "/admin/") && !strings.Contains(loc, "/admin/sso/callback") {
			return resp.StatusCode, loc, string(b)
		}
		next, _ := url.Parse(u)
		u = next.ResolveReference(&url.URL{Path: loc}).String()
		if l, err := url.Parse(loc); err == nil && l.IsAbs() {
			u = loc
		}
	}
	t.Fatalf("too many redirects at %s", u)
	return 0, "", ""
}

// TestSSOLinkFromElsewhereAsksFirst: a page of another site sends its
// visitor, signed in to the console as themselves, to
// /admin/sso?account=B — B being an account whose admin runs the
// provider, which signs in B's own user at once. The navigation ends on a
// question naming the account and the visitor, with nothing begun and the
// visitor still signed in as themselves (before, one navigation replaced
// the visitor's session with the attacker's user, and what the visitor
// then made landed in the attacker's account). The question's form
// carries the sign-in form's CSRF token: posted from another site, or
// without the token, it is refused; posted by the visitor, it signs in —
// and the visitor's old session is ended, not left behind, and the
// console says so. Followed from the console's own pages, or by an old
// browser whose Referer is the console's, the link starts at once when no
// session would be replaced.
func TestSSOLinkFromElsewhereAsksFirst(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	op := env.AdminToken()
	env.CreateUser(op, "victim@example.com", memberPW, "admin")
	// Mallory administers an account of her own, with her own provider.
	bAcc, bAdmin := env.CreateAccount(op, "Mallory Inc", "mallory-admin@example.org", memberPW)
	idp := oidcprovider.Start(t, "mallory-console", "mallory-secret")
	servertest.Expect(t, env.As(bAdmin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
		"issuer": idp.URL, "client_id": idp.ClientID, "client_secret": "mallory-secret", "domains": []string{"example.org"}}}), 200, "")
	env.CreateUser(bAdmin, "mallory@example.org", memberPW, "developer")
	idp.SignIn(oidcprovider.User{Subject: "m", Email: "mallory@example.org", EmailVerified: true})
	link := env.URL + "/admin/sso?account=" + url.QueryEscape(bAcc)
	me := func(s *uiSession) string {
		t.Helper()
		st, body, _ := s.get("/admin/me")
		switch {
		case st != http.StatusOK:
			return ""
		case strings.Contains(body, "mallory@example.org"):
			return "mallory@example.org"
		case strings.Contains(body, "victim@example.com"):
			return "victim@example.com"
		}
		return "?"
	}

	// The victim is signed in to the console.
	v := uiSignIn(t, env, "victim@example.com", memberPW)
	if who := me(v); who != "victim@example.com" {
		t.Fatalf("victim not signed in: %q", who)
	}
	u, _ := url.Parse(env.URL)
	var victimSession string
	for _, c := range v.c.Jar.Cookies(u) {
		if c.Name == "gatehouse_session" {
			victimSession = c.Value
		}
	}

	// A page elsewhere navigates the victim's browser to the link: the
	// question, nothing begun.
	st, loc, body := navigateFromElsewhere(t, v.c, link)
	if st != http.StatusOK || loc != "" || !strings.Contains(body, "Sign in to account <code>"+bAcc+"</code> with its single sign-on?") ||
		!strings.Contains(body, "You are signed in as <strong>victim@example.com</strong>") {
		t.Fatalf("a navigation from elsewhere to the link: %d %q %s", st, loc, body)
	}
	if rows := ssoLoginRows(t, env); rows != 0 {
		t.Fatalf("%d single sign-ons begun by a navigation from elsewhere", rows)
	}
	if who := me(v); who != "victim@example.com" {
		t.Fatalf("after one navigation from elsewhere the victim's browser is signed in as %q", who)
	}
	csrf := csrfField.FindStringSubmatch(body)
	if csrf == nil {
		t.Fatalf("the question has no form: %s", body)
	}

	// Its form, posted by a page elsewhere: refused as a cross-origin
	// post (a browser that sends fetch metadata), and without the
	// cookie's token (one that does not).
	post := func(form url.Values, headers ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", env.URL+"/admin/sso", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		st, body, _ := v.do(req)
		return st, body
	}
	if st, _ := post(url.Values{"csrf": {csrf[1]}, "account": {bAcc}}, "Sec-Fetch-Site", "cross-site"); st != http.StatusForbidden {
		t.Errorf("the question's form posted from another site: %d", st)
	}
	if st, _ := post(url.Values{"csrf": {"guessed"}, "account": {bAcc}}); st != http.StatusForbidden {
		t.Errorf("the question's form posted without its token: %d", st)
	}
	if rows := ssoLoginRows(t, env); rows != 0 || me(v) != "victim@example.com" {
		t.Fatalf("refused posts began %d single sign-ons, or changed the session", rows)
	}

	// Posted by the visitor, it signs in through B's provider, in place
	// of the victim's session, which ends; the console says so.
	st, body = post(url.Values{"csrf": {csrf[1]}, "account": {bAcc}}, "Sec-Fetch-Site", "same-origin")
	to := continueLink.FindStringSubmatch(body)
	if st != http.StatusOK || to == nil {
		t.Fatalf("the question's form: %d %s", st, body)
	}
	resp, _ := ssoGet(t, v.c, html.UnescapeString(to[1]))
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb, env.URL+"/admin/sso/callback?") {
		t.Fatalf("provider answered %d to %q", resp.StatusCode, cb)
	}
	if resp, _ = ssoGet(t, v.c, cb); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	_, _, home := v.get("/admin")
	if _, body, _ := v.get(home); !strings.Contains(body, "You were signed out as victim@example.com") {
		t.Errorf("no word that the victim's session was replaced: %s", body)
	}
	if who := me(v); who != "mallory@example.org" {
		t.Fatalf("after the question's form the browser is signed in as %q", who)
	}
	old := newUserAgent(t, env.URL)
	old.c.Jar.SetCookies(u, []*http.Cookie{{Name: "gatehouse_session", Value: victimSession, Path: "/admin"}})
	if resp, _ := old.do("GET", "/admin/me", nil); resp.StatusCode == http.StatusOK {
		t.Errorf("the replaced session still works")
	}

	// With no session to replace, followed from the console's own pages,
	// or by an old browser (no fetch metadata) whose Referer or Origin is
	// the console's, the link starts at once; with a Referer of another
	// site, or none, it asks.
	for _, c := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"same-origin", []string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, http.StatusSeeOther},
		{"typed or bookmarked", []string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, http.StatusSeeOther},
		{"same-site, other origin", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, http.StatusOK},
		{"old browser from the console", []string{"Referer", env.URL + "/admin/login"}, http.StatusSeeOther},
		{"old browser from elsewhere", []string{"Referer", "https://evil.example/" + env.URL}, http.StatusOK},
		{"old browser, Origin null", []string{"Origin", "null"}, http.StatusOK},
		{"old browser, no Referer", nil, http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", link, nil)
		for i := 0; i+1 < len(c.headers); i += 2 {
			req.Header.Set(c.headers[i], c.headers[i+1])
		}
		resp, err := ssoBrowser(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	// With a session, even the console's own link asks first.
	w := uiSignIn(t, env, "victim@example.com", memberPW)
	req, _ := http.NewRequest("GET", link, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if st, body, _ := w.do(req); st != http.StatusOK || !strings.Contains(body, "You are signed in as") {
		t.Errorf("the console's own link with a session: %d", st)
	}
}
