package e2e

import (
	"context"
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

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/oidcprovider"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
)

const ssoClientSecret = "provider client secret 1"

// ssoSetUp starts a server (http issuers on loopback allowed, as
// --webhook-allow-insecure does) and a test OpenID provider, and sets the
// bootstrap account's single sign-on to it for example.com.
func ssoSetUp(t *testing.T) (*servertest.Env, *oidcprovider.Provider, string) {
	t.Helper()
	env := servertest.Start(t, insecureWebhooks)
	op := oidcprovider.Start(t, "gatehouse-console", ssoClientSecret)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
		"issuer": op.URL, "client_id": op.ClientID, "client_secret": ssoClientSecret, "domains": []string{"Example.com"}}}), 200, "")
	return env, op, admin
}

// ssoBrowser is a cookie-keeping HTTP client that follows no redirects.
func ssoBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func ssoGet(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// ssoFollow is browser c following the ?account= link u from the
// console's own pages (Sec-Fetch-Site same-origin), which starts at once;
// followed from another site, the link asks first.
func ssoFollow(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	csrfField    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	continueLink = regexp.MustCompile(`id="continue" href="([^"]+)"`)
)

// ssoStart types email on the SSO page of browser c and returns the
// answer to the form, its body read.
func ssoStart(t *testing.T, env *servertest.Env, c *http.Client, email string) (*http.Response, []byte) {
	t.Helper()
	_, body := ssoGet(t, c, env.URL+"/admin/sso")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form: %s", body)
	}
	resp, err := c.PostForm(env.URL+"/admin/sso", url.Values{"csrf": {m[1]}, "email": {email}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// ssoToCallback types email on the SSO page of browser c and follows the
// provider until the console's callback; it returns the callback URL.
func ssoToCallback(t *testing.T, env *servertest.Env, c *http.Client, email string) string {
	t.Helper()
	resp, b := ssoStart(t, env, c, email)
	l := continueLink.FindStringSubmatch(string(b))
	if resp.StatusCode != 200 || l == nil {
		t.Fatalf("start: %d %s", resp.StatusCode, b)
	}
	resp, _ = ssoGet(t, c, html.UnescapeString(l[1]))
	to := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(to, env.URL+"/admin/sso/callback?") {
		t.Fatalf("provider answered %d to %q", resp.StatusCode, to)
	}
	return to
}

// signedIn reports whether browser c holds a console session.
func signedIn(t *testing.T, env *servertest.Env, c *http.Client) bool {
	t.Helper()
	resp, _ := ssoGet(t, c, env.URL+"/admin/me")
	return resp.StatusCode == http.StatusOK
}

// TestSSORefusals: against a real provider started by the test, a wrong
// nonce, a wrong audience, an expired token, an unverified or missing
// e-mail address, a domain not allowed, an address of no user of the
// account and the operator's address are each refused with a page saying why, and no session; a
// callback works once, only in the browser that began it, and of eight
// copies released together one signs in.
func TestSSORefusals(t *testing.T) {
	env, op, admin := ssoSetUp(t)
	env.CreateUser(admin, "ann@example.com", memberPW)
	env.CreateUser(admin, "eve@elsewhere.org", memberPW)

	for _, tc := range []struct {
		name string
		user oidcprovider.User
		want string
	}{
		{"wrong nonce", oidcprovider.User{Subject: "1", Email: "ann@example.com", EmailVerified: true, WrongNonce: true}, "its nonce does not match"},
		{"wrong audience", oidcprovider.User{Subject: "1", Email: "ann@example.com", EmailVerified: true, WrongAudience: true}, "not valid for this console"},
		{"expired token", oidcprovider.User{Subject: "1", Email: "ann@example.com", EmailVerified: true, Expired: true}, "not valid for this console"},
		{"unverified e-mail", oidcprovider.User{Subject: "1", Email: "ann@example.com"}, "has not verified this e-mail address"},
		{"no e-mail", oidcprovider.User{Subject: "1", EmailVerified: true}, "sent no e-mail address"},
		{"a NUL in the e-mail", oidcprovider.User{Subject: "5", Email: "a\x00nn@example.com", EmailVerified: true}, "an address no user of this console can have"},
		{"domain not allowed", oidcprovider.User{Subject: "2", Email: "eve@elsewhere.org", EmailVerified: true}, "domain is not allowed"},
		{"unknown user", oidcprovider.User{Subject: "3", Email: "bob@example.com", EmailVerified: true}, "No user of this account has the address bob@example.com"},
		// The account's admins run its provider, which may assert any
		// address: never the operator's.
		{"the operator", oidcprovider.User{Subject: "4", Email: servertest.AdminEmail, EmailVerified: true}, "The operator signs in with their password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op.SignIn(tc.user)
			c := ssoBrowser(t)
			resp, body := ssoGet(t, c, ssoToCallback(t, env, c, "ann@example.com"))
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Single sign-on refused") ||
				!strings.Contains(html.UnescapeString(body), tc.want) {
				t.Fatalf("%d, want 403 saying %q: %s", resp.StatusCode, tc.want, body)
			}
			if signedIn(t, env, c) {
				t.Fatal("a refused sign-in left a session")
			}
		})
	}
	audit := env.As(admin, "GET", "/v1/audit?action=sso.refused", nil)
	for _, reason := range []string{"nonce", "token", "email_unverified", "email_missing", "email_invalid", "domain", "unknown_user", "operator"} {
		if !strings.Contains(string(audit.Body), `"reason":"`+reason+`"`) {
			t.Fatalf("no sso.refused entry with reason %s: %s", reason, audit.Body)
		}
	}

	op.SignIn(oidcprovider.User{Subject: "1", Email: "ANN@example.com", EmailVerified: true})
	// Another browser cannot complete a sign-in it did not begin; the
	// state is spent by the attempt.
	c := ssoBrowser(t)
	cb := ssoToCallback(t, env, c, "ann@example.com")
	resp, body := ssoGet(t, ssoBrowser(t), cb)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not started in this browser") {
		t.Fatalf("foreign browser: %d %s", resp.StatusCode, body)
	}
	resp, body = ssoGet(t, c, cb)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "used already") {
		t.Fatalf("after a foreign attempt: %d %s", resp.StatusCode, body)
	}

	// Eight copies of one callback, on connections opened in advance,
	// released together: one session.
	c = ssoBrowser(t)
	cb = ssoToCallback(t, env, c, "ann@example.com")
	const n = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		start = make(chan struct{})
		ok    int
	)
	for range n {
		tr := &http.Transport{MaxIdleConnsPerHost: 1}
		warm := &http.Client{Transport: tr, Jar: c.Jar, CheckRedirect: c.CheckRedirect, Timeout: 30 * time.Second}
		if r, err := warm.Get(env.URL + "/healthz"); err == nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := warm.Get(cb)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode == http.StatusSeeOther && strings.HasSuffix(r.Header.Get("Location"), "/admin") {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d of %d copies of one callback signed in, want 1", ok, n)
	}
	if !signedIn(t, env, c) {
		t.Fatal("the one sign-in left no session")
	}
	if !strings.Contains(string(env.As(admin, "GET", "/v1/audit?action=user.sso_sign_in", nil).Body), "user.sso_sign_in") {
		t.Fatal("no audit entry of the sign-in")
	}
}

// TestSSOSettings: only admins set single sign-on; bad values are 400
// naming the field; an issuer where no provider is discovered is refused
// on save; the secret is never shown or audited.
func TestSSOSettings(t *testing.T) {
	env, op, admin := ssoSetUp(t)
	env.CreateUser(admin, "ann@example.com", memberPW)
	member := env.Login("ann@example.com", memberPW)
	set := func(tok string, sso map[string]any) *servertest.Response {
		return env.As(tok, "PUT", "/v1/settings", map[string]any{"sso": sso})
	}
	servertest.Expect(t, set(member, map[string]any{"required": true}), 403, "forbidden")
	for _, tc := range []struct {
		sso   map[string]any
		field string
	}{
		{map[string]any{"issuer": "ftp://login.example.com"}, "sso.issuer"},
		{map[string]any{"issuer": "https://user:pw@login.example.com"}, "sso.issuer"},
		{map[string]any{"issuer": "http://127.0.0.1:1"}, "sso.issuer"},
		{map[string]any{"issuer": op.URL + "/elsewhere"}, "sso.issuer"},
		{map[string]any{"domains": []string{}}, "sso.domains"},
		{map[string]any{"domains": []string{"@example.com"}}, "sso.domains"},
		{map[string]any{"client_id": strings.Repeat("x", 300)}, "sso.client_id"},
		{map[string]any{"client_secret": "two\nlines"}, "sso.client_secret"},
	} {
		r := set(admin, tc.sso)
		servertest.Expect(t, r, 400, "invalid_request")
		if d, _ := r.Map(t)["error_description"].(string); !strings.HasPrefix(d, tc.field+" ") && !strings.HasPrefix(d, tc.field+":") {
			t.Fatalf("%v: want the error about %q (%s)", tc.sso, tc.field, r.Body)
		}
	}
	r := env.As(admin, "GET", "/v1/settings", nil)
	servertest.Expect(t, r, 200, "")
	got := r.Map(t)["sso"].(map[string]any)
	if got["issuer"] != op.URL || got["client_secret_set"] != true || got["domains"].([]any)[0] != "example.com" || got["required"] != false {
		t.Fatalf("sso settings: %v", got)
	}
	audit := env.As(admin, "GET", "/v1/audit", nil)
	if strings.Contains(string(r.Body)+string(audit.Body), ssoClientSecret) {
		t.Fatal("the client secret is shown")
	}
	if !strings.Contains(string(audit.Body), `"sso.update"`) {
		t.Fatal("no sso.update audit entry")
	}
	// Removed with an empty issuer.
	r = set(admin, map[string]any{"issuer": ""})
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["sso"] != nil {
		t.Fatalf("sso not removed: %s", r.Body)
	}
	c := ssoBrowser(t)
	_, body := ssoFollow(t, c, env.URL+"/admin/sso?account=acc_none")
	if !strings.Contains(body, "not set up") {
		t.Fatalf("no word that single sign-on is not set up: %s", body)
	}
}

// TestSSORequired: with required, the account's users are refused the
// password — in the console and the password grant — while the operator,
// the break-glass, still signs in with theirs.
func TestSSORequired(t *testing.T) {
	env, _, admin := ssoSetUp(t)
	env.CreateUser(admin, "ann@example.com", memberPW)
	env.CreateUser(admin, "root@example.com", memberPW, "admin")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{"required": true}}), 200, "")
	for _, email := range []string{"ann@example.com", "root@example.com"} {
		r := env.Request("POST", "/authorization", url.Values{"grant_type": {"password"}, "username": {email}, "password": {memberPW}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded")
		servertest.Expect(t, r, 400, "invalid_grant")
		if !strings.Contains(string(r.Body), "single sign-on") {
			t.Fatalf("password grant of %s: %s", email, r.Body)
		}
		c := ssoBrowser(t)
		_, body := ssoGet(t, c, env.URL+"/admin/login")
		resp, err := c.PostForm(env.URL+"/admin/login", url.Values{"csrf": {csrfField.FindStringSubmatch(body)[1]}, "email": {email}, "password": {memberPW}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "signs in with single sign-on") || signedIn(t, env, c) {
			t.Fatalf("console password of %s: %d %s", email, resp.StatusCode, b)
		}
	}
	// A wrong password is still just wrong.
	r := env.Request("POST", "/authorization", url.Values{"grant_type": {"password"}, "username": {"ann@example.com"}, "password": {"wrong password 1"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 400, "invalid_grant")
	if strings.Contains(string(r.Body), "single sign-on") {
		t.Fatal("a wrong password tells the account signs in with single sign-on")
	}
	// In Chromium the refusal says what to do instead; the operator's
	// password still works, in the API and the console.
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/login"), chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", "ann@example.com", chromedp.ByID), chromedp.SendKeys("#password", memberPW, chromedp.ByID),
		submit("Sign in"), chromedp.WaitVisible(".flash.error", chromedp.ByQuery))
	if !strings.Contains(textOf(t, ctx, ".flash.error"), "use Sign in with SSO") {
		t.Fatal("the refusal does not say how to sign in")
	}
	shotBoth(t, ctx, "sso-required-login")
	env.AdminToken()
	run(t, ctx, uiLogin(env, servertest.AdminEmail, servertest.AdminPassword))
}

// TestSSORequiredEndsSignIns: turning required on signs every user of the
// account but the operator out of what a sign-in began — console
// sessions, password-grant tokens, a sign-in waiting for its second
// factor — so that nobody keeps the console or the API without the
// provider; the credential of the admin who made the change is kept. On
// one node, and on two sharing the store and Redis: what node a began,
// cached on node b, ends on b at the next request.
func TestSSORequiredEndsSignIns(t *testing.T) {
	for _, nodes := range []int{1, 2} {
		t.Run(strconv.Itoa(nodes)+" nodes", func(t *testing.T) {
			dbURL := servertest.DatabaseURL(t)
			prefix := ""
			if nodes > 1 {
				prefix = redistest.Prefix(t, redistest.Client(t))
			}
			start := func() *servertest.Env {
				return servertest.Start(t, insecureWebhooks, func(c *server.Config) {
					c.DatabaseURL = dbURL
					if nodes > 1 {
						c.RedisURL, c.RedisPrefix = redistest.URL(), prefix
					}
				})
			}
			a := start()
			b := a
			if nodes > 1 {
				b = start()
			}
			op := oidcprovider.Start(t, "gatehouse-console", ssoClientSecret)
			operator := a.AdminToken()
			servertest.Expect(t, a.As(operator, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
				"issuer": op.URL, "client_id": op.ClientID, "client_secret": ssoClientSecret, "domains": []string{"example.com"}}}), 200, "")
			a.CreateUser(operator, "ann@example.com", memberPW)
			a.CreateUser(operator, "root@example.com", memberPW, "admin")
			a.CreateUser(operator, "tina@example.com", memberPW)
			tinaSecret, _ := enrolTOTP(t, a, a.Login("tina@example.com", memberPW))
			consoleAs := func(email string) *http.Client {
				c := ssoBrowser(t)
				_, body := ssoGet(t, c, a.URL+"/admin/login")
				resp, err := c.PostForm(a.URL+"/admin/login", url.Values{"csrf": {csrfField.FindStringSubmatch(body)[1]}, "email": {email}, "password": {memberPW}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if !signedIn(t, b, c) {
					t.Fatalf("%s did not sign in to the console", email)
				}
				return c
			}
			annTok, annConsole := a.Login("ann@example.com", memberPW), consoleAs("ann@example.com")
			root, rootOther := a.Login("root@example.com", memberPW), a.Login("root@example.com", memberPW)
			pending := startSignIn(t, a.URL, loopback(7), "tina@example.com", memberPW)
			for _, tok := range []string{annTok, rootOther, root, operator} {
				servertest.Expect(t, b.As(tok, "GET", "/v1/me", nil), 200, "") // cached on b
			}

			// Saving the provider without required ends nothing.
			servertest.Expect(t, a.As(root, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{"required": false}}), 200, "")
			servertest.Expect(t, b.As(annTok, "GET", "/v1/me", nil), 200, "")
			if !signedIn(t, b, annConsole) {
				t.Fatal("saving single sign-on without required ended a session")
			}

			servertest.Expect(t, a.As(root, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{"required": true}}), 200, "")
			servertest.Expect(t, b.As(annTok, "GET", "/v1/me", nil), 401, "invalid_token")
			if signedIn(t, b, annConsole) {
				t.Fatal("a console session begun with the password survived required")
			}
			servertest.Expect(t, b.As(rootOther, "GET", "/v1/me", nil), 401, "invalid_token")
			// (The next step's code: unused, accepted once if the sign-in
			// were still there.)
			if o := codeOutcome(sendShot(t, codeShot(t, b.URL, loopback(7), pending, totpAt(tinaSecret, 1)))); o != "expired" {
				t.Fatalf("a sign-in waiting for its second factor after required: %s", o)
			}
			// The admin who made the change, and the operator, keep theirs.
			servertest.Expect(t, b.As(root, "GET", "/v1/me", nil), 200, "")
			servertest.Expect(t, b.As(operator, "GET", "/v1/me", nil), 200, "")
		})
	}
}

// TestSSOStartOnlyByNavigation: a page elsewhere that fetches, embeds or
// frames the ?account= link starts no single sign-on and spends none of
// its address's starts; nor does its navigation to the link, which asks
// first. After more such requests than the hour allows, a navigation from
// the console's own pages still starts one.
func TestSSOStartOnlyByNavigation(t *testing.T) {
	env, _, admin := ssoSetUp(t)
	account := env.As(admin, "GET", "/v1/me", nil).Map(t)["account"].(map[string]any)["id"].(string)
	link := env.URL + "/admin/sso?account=" + account
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(headers ...string) int {
		req, _ := http.NewRequest("GET", link, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	kinds := [][]string{
		{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "empty"},
		{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"},
		{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe"},
	}
	for i := range service.SSOStartsPerHour + 10 {
		if st := get(kinds[i%len(kinds)]...); st != http.StatusOK {
			t.Fatalf("request %d (%v): %d, want the form", i, kinds[i%len(kinds)], st)
		}
	}
	// A link followed from another site is a navigation: it asks first
	// (TestSSOLinkFromElsewhereAsksFirst), and starts nothing either.
	if st := get("Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"); st != http.StatusOK {
		t.Fatalf("a navigation from another site: %d, want the question", st)
	}
	if rows := ssoLoginRows(t, env); rows != 0 {
		t.Fatalf("%d single sign-ons begun by requests that start none", rows)
	}
	// Followed from the console's own pages, after all of them, it starts.
	if st := get("Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"); st != http.StatusSeeOther {
		t.Fatalf("a navigation after the page's requests: %d, want 303 to the provider", st)
	}
}

// TestSSOConsole: in headless Chromium a user signs in from the sign-in
// page through "Sign in with SSO" at the test provider, and lands signed
// in; a refused sign-in shows why. Screenshots of each page.
func TestSSOConsole(t *testing.T) {
	env, op, admin := ssoSetUp(t)
	env.CreateUser(admin, "ann@example.com", memberPW)
	ctx := browserFor(t, 120*time.Second)

	// The admin's form on the settings page: what is kept, a refusal next
	// to its field, a save.
	run(t, ctx, uiLogin(env, servertest.AdminEmail, servertest.AdminPassword),
		chromedp.Navigate(env.URL+"/admin/settings"), chromedp.WaitVisible("#sso-issuer", chromedp.ByID))
	var issuer, placeholder string
	run(t, ctx, chromedp.Value("#sso-issuer", &issuer, chromedp.ByID),
		chromedp.AttributeValue("#sso-client-secret", "placeholder", &placeholder, nil, chromedp.ByID))
	if issuer != op.URL || !strings.Contains(placeholder, "kept") || strings.Contains(pageHTML(t, ctx), ssoClientSecret) {
		t.Fatalf("settings form: issuer %q, secret placeholder %q", issuer, placeholder)
	}
	run(t, ctx, chromedp.ScrollIntoView("#sso", chromedp.ByID))
	shotBoth(t, ctx, "sso-settings")
	run(t, ctx, chromedp.SetValue("#sso-domains", "@example.com", chromedp.ByID), submit("Save single sign-on"),
		chromedp.WaitVisible("#sso-domains-error", chromedp.ByID))
	run(t, ctx, chromedp.SetValue("#sso-domains", "example.com\nexample.org", chromedp.ByID), submit("Save single sign-on"),
		chromedp.WaitVisible(".flash", chromedp.ByQuery))
	if !strings.Contains(textOf(t, ctx, ".flash"), "Single sign-on saved") {
		t.Fatal("no word of the save")
	}
	got := env.As(admin, "GET", "/v1/settings", nil).Map(t)["sso"].(map[string]any)
	if d := got["domains"].([]any); len(d) != 2 || got["client_secret_set"] != true {
		t.Fatalf("after the form: %v", got)
	}
	run(t, ctx, submit("Log out"), chromedp.WaitVisible("#email", chromedp.ByID))

	run(t, ctx, chromedp.Navigate(env.URL+"/admin/login"), chromedp.WaitVisible(`//a[normalize-space()="Sign in with SSO"]`, chromedp.BySearch))
	shotBoth(t, ctx, "sso-login")
	run(t, ctx, chromedp.Click(`//a[normalize-space()="Sign in with SSO"]`, chromedp.BySearch), chromedp.WaitVisible("#email", chromedp.ByID))
	shotBoth(t, ctx, "sso-start")
	// An address no account signs in with is answered on the page.
	run(t, ctx, chromedp.SendKeys("#email", "zoe@nowhere.test", chromedp.ByID), submit("Continue"), chromedp.WaitVisible(".flash.error", chromedp.ByQuery))
	if !strings.Contains(textOf(t, ctx, ".flash.error"), "not set up for this address") {
		t.Fatal("no word that the address has no single sign-on")
	}

	// Refused: the provider has not verified the address.
	op.SignIn(oidcprovider.User{Subject: "ann", Email: "ann@example.com"})
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/sso"), chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", "ann@example.com", chromedp.ByID), submit("Continue"),
		chromedp.WaitVisible(`//h1[normalize-space()="Single sign-on refused"]`, chromedp.BySearch))
	if !strings.Contains(textOf(t, ctx, ".flash.error"), "has not verified this e-mail address") {
		t.Fatal("the refusal does not say why")
	}
	shotBoth(t, ctx, "sso-refused")

	// Signed in.
	op.SignIn(oidcprovider.User{Subject: "ann", Email: "ann@example.com", EmailVerified: true})
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/sso"), chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", "ann@example.com", chromedp.ByID), submit("Continue"),
		chromedp.WaitVisible("header nav", chromedp.ByQuery))
	var loc string
	run(t, ctx, chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/admin/me") || !strings.Contains(textOf(t, ctx, "main"), "ann@example.com") {
		t.Fatalf("signed in at %s", loc)
	}

	// The account's link, opened while signed in, asks first: it names
	// the account and who is signed in; Continue signs in again.
	account := env.As(admin, "GET", "/v1/me", nil).Map(t)["account"].(map[string]any)["id"].(string)
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/sso?account="+account),
		chromedp.WaitVisible(`//button[normalize-space()="Continue to single sign-on"]`, chromedp.BySearch))
	if text := textOf(t, ctx, "main"); !strings.Contains(text, "Sign in to account "+account+" with its single sign-on?") ||
		!strings.Contains(text, "You are signed in as ann@example.com") {
		t.Fatalf("the link's question: %s", text)
	}
	shotBoth(t, ctx, "sso-account")
	run(t, ctx, submit("Continue to single sign-on"), chromedp.WaitVisible("header nav", chromedp.ByQuery), chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/admin/me") || !strings.Contains(textOf(t, ctx, "main"), "ann@example.com") {
		t.Fatalf("signed in again at %s", loc)
	}
}

// TestSSORequiredPasskey: once the account requires single sign-on, a
// member's passkey no longer signs in without a password — refused as the
// password is, with no session and no passkey sign-in in the audit log —
// while the same passkey as the second factor after single sign-on still
// works, and so does the operator's passkey, their break-glass.
func TestSSORequiredPasskey(t *testing.T) {
	env := startOnLocalhost(t, insecureWebhooks)
	op := oidcprovider.Start(t, "gatehouse-console", ssoClientSecret)
	root := env.AdminToken()
	servertest.Expect(t, env.As(root, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
		"issuer": op.URL, "client_id": op.ClientID, "client_secret": ssoClientSecret, "domains": []string{"example.com"}}}), 200, "")
	env.CreateUser(root, "ann@example.com", memberPW)
	// The operator's first passkey ends their password-grant tokens: the
	// test reads and writes with another admin's.
	env.CreateUser(root, "ops@example.com", memberPW, "admin")
	admin := env.Login("ops@example.com", memberPW)

	// Each enrols a passkey, in a browser of their own, before single
	// sign-on is required.
	enrol := func(ctx context.Context, email, pw string) {
		t.Helper()
		virtualAuthenticator(t, ctx)
		run(t, ctx, uiLogin(env, email, pw), chromedp.Navigate(env.URL+"/admin/me/mfa"),
			chromedp.WaitVisible("#passkey-name", chromedp.ByID), chromedp.SendKeys("#passkey-name", "Laptop", chromedp.ByID),
			submit("Add a passkey"), chromedp.WaitVisible("#recovery-10", chromedp.ByID),
			chromedp.Navigate(env.URL+"/admin/me"), chromedp.WaitVisible("header nav", chromedp.ByQuery),
			submit("Log out"), chromedp.WaitVisible(`//button[normalize-space()="Sign in with a passkey"]`, chromedp.BySearch))
	}
	ann := browserFor(t, 120*time.Second)
	enrol(ann, "ann@example.com", memberPW)
	operator := browserFor(t, 120*time.Second)
	enrol(operator, servertest.AdminEmail, servertest.AdminPassword)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{"required": true}}), 200, "")

	// Ann's passkey alone is refused, as her password is.
	var loc string
	run(t, ann, chromedp.Navigate(env.URL+"/admin/login"), chromedp.WaitVisible(`//button[normalize-space()="Sign in with a passkey"]`, chromedp.BySearch),
		submit("Sign in with a passkey"), chromedp.WaitVisible(".flash.error, header nav", chromedp.ByQuery), chromedp.Location(&loc))
	if !strings.Contains(loc, "/admin/login") {
		t.Fatalf("signed in with the passkey alone, at %s", loc)
	}
	if msg := textOf(t, ann, ".flash.error"); !strings.Contains(msg, "use Sign in with SSO") {
		t.Fatalf("password-less passkey of a user whose account requires SSO: %q", msg)
	}
	run(t, ann, chromedp.Navigate(env.URL+"/admin/me"), chromedp.WaitVisible("#email", chromedp.ByID), chromedp.Location(&loc))
	if strings.HasSuffix(loc, "/admin/me") {
		t.Fatal("signed in with the passkey alone")
	}
	if audit := string(env.As(admin, "GET", "/v1/audit?limit=200", nil).Body); strings.Contains(audit, "passwordless") {
		t.Fatalf("a refused password-less sign-in is audited as one: %s", audit)
	}

	// Through the provider, the passkey is the second factor.
	op.SignIn(oidcprovider.User{Subject: "ann", Email: "ann@example.com", EmailVerified: true})
	run(t, ann, chromedp.Navigate(env.URL+"/admin/sso"), chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", "ann@example.com", chromedp.ByID), submit("Continue"),
		chromedp.WaitVisible(`//button[normalize-space()="Use a passkey"]`, chromedp.BySearch),
		submit("Use a passkey"), chromedp.WaitVisible("header nav", chromedp.ByQuery), chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/admin/me") || !strings.Contains(textOf(t, ann, "main"), "ann@example.com") {
		t.Fatalf("single sign-on with the passkey as second factor ended at %s", loc)
	}

	// The operator's passkey alone still signs in.
	run(t, operator, chromedp.Navigate(env.URL+"/admin/login"), chromedp.WaitVisible(`//button[normalize-space()="Sign in with a passkey"]`, chromedp.BySearch),
		submit("Sign in with a passkey"), chromedp.WaitVisible("header nav", chromedp.ByQuery), chromedp.Location(&loc))
	if strings.Contains(loc, "/admin/login") {
		t.Fatalf("the operator's password-less sign-in ended at %s", loc)
	}
	audit := string(env.As(admin, "GET", "/v1/audit?limit=200", nil).Body)
	if strings.Count(audit, `"passwordless"`) != 1 || strings.Count(audit, `"second_factor"`) != 1 {
		t.Fatalf("audit: %s", audit)
	}
}

// TestSSOStartThrottle: beginning single sign-on is counted per client
// address, on one node and on two nodes sharing Redis: of
// SSOStartsPerHour+20 starts released together over connections opened in
// advance (the link form, spread over the nodes), exactly
// SSOStartsPerHour go to the provider and the rest are 429 with
// Retry-After and the sign-in form; a refused start writes no sign-in row.
// The posted form is counted by the same throttle.
func TestSSOStartThrottle(t *testing.T) {
	for _, nodes := range []int{1, 2} {
		t.Run(strconv.Itoa(nodes)+" nodes", func(t *testing.T) {
			dbURL := servertest.DatabaseURL(t)
			prefix := ""
			if nodes > 1 {
				prefix = redistest.Prefix(t, redistest.Client(t))
			}
			var envs []*servertest.Env
			for range nodes {
				envs = append(envs, servertest.Start(t, insecureWebhooks, func(c *server.Config) {
					// Every start comes from one address over a connection of
					// its own.
					c.DatabaseURL, c.MaxConnsPerIP = dbURL, 2*service.SSOStartsPerHour
					if nodes > 1 {
						c.RedisURL, c.RedisPrefix = redistest.URL(), prefix
					}
				}))
			}
			env := envs[0]
			op := oidcprovider.Start(t, "gatehouse-console", ssoClientSecret)
			admin := env.AdminToken()
			servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
				"issuer": op.URL, "client_id": op.ClientID, "client_secret": ssoClientSecret, "domains": []string{"example.com"}}}), 200, "")
			account := env.As(admin, "GET", "/v1/me", nil).Map(t)["account"].(map[string]any)["id"].(string)

			n := service.SSOStartsPerHour + 20
			clients := make([]*http.Client, n)
			for i := range clients {
				clients[i] = &http.Client{Transport: &http.Transport{}, Timeout: 60 * time.Second,
					CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				if res, err := clients[i].Get(envs[i%nodes].URL + "/healthz"); err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				statuses = map[int]int{}
			)
			start := make(chan struct{})
			for i, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					req, _ := http.NewRequest("GET", envs[i%nodes].URL+"/admin/sso?account="+url.QueryEscape(account), nil)
					req.Header.Set("Sec-Fetch-Site", "same-origin")
					res, err := c.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode == http.StatusTooManyRequests && (res.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "Too many sign-ins")) {
						t.Errorf("429 without Retry-After or the form's word: %q %s", res.Header.Get("Retry-After"), b)
					}
					mu.Lock()
					statuses[res.StatusCode]++
					mu.Unlock()
				}()
			}
			close(start)
			wg.Wait()
			if statuses[http.StatusSeeOther] != service.SSOStartsPerHour || statuses[http.StatusTooManyRequests] != n-service.SSOStartsPerHour {
				t.Fatalf("%d starts at once from one address: %v, want %d 303 and the rest 429", n, statuses, service.SSOStartsPerHour)
			}
			if rows := ssoLoginRows(t, env); rows != service.SSOStartsPerHour {
				t.Fatalf("%d sign-in rows after %d starts let through", rows, service.SSOStartsPerHour)
			}

			// The posted form from the address is over the limit too.
			c := ssoBrowser(t)
			_, body := ssoGet(t, c, env.URL+"/admin/sso")
			resp, err := c.PostForm(env.URL+"/admin/sso", url.Values{"csrf": {csrfField.FindStringSubmatch(body)[1]}, "email": {"ann@example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests || ssoLoginRows(t, env) != service.SSOStartsPerHour {
				t.Fatalf("posted form over the limit: %d", resp.StatusCode)
			}
		})
	}
}

// ssoLoginRows counts the single sign-ons begun in env's store.
func ssoLoginRows(t *testing.T, env *servertest.Env) int {
	t.Helper()
	var n int
	if err := storeDB(t, env).QueryRow(`SELECT count(*) FROM sso_logins`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
