package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/server"
)

// browser starts headless Chromium for the test; without Chromium it
// skips, except under CI=true.
func browser(t *testing.T) context.Context {
	t.Helper()
	return browserFor(t, 3*time.Minute)
}

// browserFor is browser for a test that may drive it for up to timeout.
func browserFor(t *testing.T, timeout time.Duration, flags ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := testenv.RequireTool(t, "chromium", "chromium-browser", "google-chrome")
	// Chromium may still write its profile while it exits, so the profile
	// is removed best-effort rather than by t.TempDir's strict cleanup.
	profile, err := os.MkdirTemp("", "gatehouse-chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900))
	opts = append(opts, flags...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelT()
		cancel()
		cancelA()
		os.RemoveAll(profile)
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		// Say where the browser was, for the failure to be understood.
		var loc, title string
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		chromedp.Run(c, chromedp.Location(&loc), chromedp.Title(&title))
		t.Fatalf("%v (at %s, %q)", err, loc, title)
	}
}

func uiLogin(env *servertest.Env, email, pw string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(env.URL + "/admin/login"),
		chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", email, chromedp.ByID),
		chromedp.SendKeys("#password", pw, chromedp.ByID),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("header nav", chromedp.ByQuery),
	}
}

// submit clicks a button by its visible text inside the page.
func submit(text string) chromedp.Action {
	return chromedp.Click(`//button[normalize-space()="`+text+`"]`, chromedp.BySearch)
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	read := chromedp.Tasks{chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Text(sel, &s, chromedp.ByQuery)}
	// The browser may renumber the page's nodes between finding one and
	// reading it ("No node with given id found"): find it again.
	for range 2 {
		err := chromedp.Run(ctx, read)
		if err == nil {
			return strings.TrimSpace(s)
		}
		if !strings.Contains(err.Error(), "No node with given id") {
			break
		}
	}
	run(t, ctx, read)
	return strings.TrimSpace(s)
}

// shot takes a screenshot of the whole page into the test's directory, and
// into docs/screenshots when GATEHOUSE_UPDATE_SCREENSHOTS=1.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var buf []byte
	run(t, ctx, chromedp.FullScreenshot(&buf, 100)) // quality 100 gives a PNG
	saveShot(t, name, buf)
}

// shotScreen is shot of what fits on the screen (for long pages on a
// phone).
func shotScreen(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var buf []byte
	run(t, ctx, chromedp.CaptureScreenshot(&buf))
	saveShot(t, name, buf)
}

func saveShot(t *testing.T, name string, buf []byte) {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("GATEHOUSE_UPDATE_SCREENSHOTS") == "1" {
		dir = "../docs/screenshots"
		os.MkdirAll(dir, 0o755)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAdminUI(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.UsageFlushInterval = 100 * time.Millisecond })
	ctx := browser(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "dev@example.com", memberPW)

	// Log in with the keyboard only.
	run(t, ctx,
		chromedp.Navigate(env.URL+"/admin/login"),
		chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.KeyEvent(servertest.AdminEmail), // the e-mail field has autofocus
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(servertest.AdminPassword),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible("header nav", chromedp.ByQuery),
	)
	var loc string
	run(t, ctx, chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/admin/users") {
		t.Fatalf("after login at %s", loc)
	}

	t.Run("create a user", func(t *testing.T) {
		run(t, ctx,
			chromedp.SendKeys("#new-email", "ann@example.com", chromedp.ByID),
			chromedp.SendKeys("#new-password", memberPW, chromedp.ByID),
			submit("Create user"),
			chromedp.WaitVisible(`//td[contains(., "ann@example.com")]`, chromedp.BySearch),
		)
		if !strings.Contains(textOf(t, ctx, ".flash"), "Created ann@example.com") {
			t.Fatal("no confirmation")
		}
		env.Login("ann@example.com", memberPW)
	})

	t.Run("API access", func(t *testing.T) {
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/api-access"), submit("Enable API Access"))
		access := textOf(t, ctx, "#access-token")
		refreshTok := textOf(t, ctx, "#refresh-token")
		if !strings.HasPrefix(access, "gat_") || !strings.HasPrefix(refreshTok, "grt_") {
			t.Fatalf("tokens %q %q", access, refreshTok)
		}
		shot(t, ctx, "api-access-secret")
		servertest.Expect(t, env.As(access, "GET", "/v1/me", nil), 200, "")
		// Reloading the page that showed them never shows them again.
		run(t, ctx, chromedp.Reload(), chromedp.WaitVisible(".already-shown", chromedp.ByQuery))
		if html := pageHTML(t, ctx); strings.Contains(html, access) || strings.Contains(html, refreshTok) {
			t.Fatal("secret shown twice")
		}
		// Change the lifetime.
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/api-access"), chromedp.WaitVisible("#ttl", chromedp.ByID),
			chromedp.SetValue("#ttl", "30", chromedp.ByID), submit("Save lifetime"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
		if v := env.As(admin, "GET", "/v1/api-access", nil).Map(t)["access_token_ttl_days"]; v != 30.0 {
			t.Fatalf("lifetime %v", v)
		}
		shot(t, ctx, "api-access")
		// Revoking asks first, saying what stops.
		run(t, ctx, chromedp.Click(`//a[normalize-space()="Revoke API Access"]`, chromedp.BySearch), chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
		if stops := textOf(t, ctx, "ul.stops"); !strings.Contains(stops, "2 live tokens") {
			t.Fatalf("confirmation says %q", stops)
		}
		servertest.Expect(t, env.As(access, "GET", "/v1/me", nil), 200, "")
		run(t, ctx, submit("Revoke API Access"), chromedp.WaitVisible(`//button[normalize-space()="Enable API Access"]`, chromedp.BySearch))
		servertest.Expect(t, env.As(access, "GET", "/v1/me", nil), 401, "invalid_token")
	})

	t.Run("extensions", func(t *testing.T) {
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/extensions"), submit("Turn on"),
			chromedp.WaitVisible("#token-name", chromedp.ByID),
			chromedp.SendKeys("#token-name", "Zapier", chromedp.ByID), submit("Generate token"))
		tok := textOf(t, ctx, "#api-token")
		servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok), 200, "")
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/extensions"), chromedp.WaitVisible("#token-name", chromedp.ByID))
		shot(t, ctx, "extensions")
		run(t, ctx, chromedp.Click(`//a[normalize-space()="Revoke"]`, chromedp.BySearch), chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
		if stops := textOf(t, ctx, "ul.stops"); !strings.Contains(stops, "Zapier") {
			t.Fatalf("confirmation says %q", stops)
		}
		servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok), 200, "")
		run(t, ctx, submit("Revoke token"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
		servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok), 401, "invalid_token")
	})

	devTab := browser(t) // a second browser: the developer's own cookies
	var clientTok string
	t.Run("developers and credentials", func(t *testing.T) {
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/developers"),
			chromedp.SendKeys("#find", "dev@example", chromedp.ByID), submit("Find"),
			chromedp.WaitVisible(`//button[@aria-label="Add dev@example.com as a developer"]`, chromedp.BySearch),
			chromedp.Click(`//button[@aria-label="Add dev@example.com as a developer"]`, chromedp.BySearch),
			chromedp.WaitVisible(`//td//a[contains(., "dev@example.com")]`, chromedp.BySearch))
		// The developer creates a credential in their own browser.
		run(t, devTab, uiLogin(env, "dev@example.com", memberPW))
		run(t, devTab, chromedp.Navigate(env.URL+"/admin/credentials"),
			chromedp.SendKeys("#cred-name", "CI", chromedp.ByID), submit("Create credential"))
		id, secret := textOf(t, devTab, "#new-client-id"), textOf(t, devTab, "#new-client-secret")
		if !strings.Contains(textOf(t, devTab, ".secret"), "Keep the client secret safe") {
			t.Fatal("no warning with the secret")
		}
		shot(t, devTab, "credentials-secret")
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode()
		clientTok = accessToken(t, env.Request("POST", "/oauth/token", form, "Content-Type", "application/x-www-form-urlencoded"))
		// The admin removes the developer, warned about the live credential.
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/developers"), chromedp.WaitVisible(`//td[contains(., "CI")]`, chromedp.BySearch))
		shot(t, ctx, "developers")
		run(t, ctx, chromedp.Click(`//a[normalize-space()="Remove"]`, chromedp.BySearch), chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
		if w := textOf(t, ctx, "ul.keeps"); !strings.Contains(w, "1 live API credential") || !strings.Contains(w, id) {
			t.Fatalf("warning %q", w)
		}
		shot(t, ctx, "developer-remove")
		run(t, ctx, submit("Remove role, keep credentials"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
		servertest.Expect(t, env.As(clientTok, "GET", "/v1/me", nil), 200, "")
	})

	t.Run("settings, usage and audit", func(t *testing.T) {
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/settings"), chromedp.SetValue("#burst", "250", chromedp.ByID),
			submit("Save settings"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
		if b := env.As(admin, "GET", "/v1/settings", nil).Map(t)["rate_limit"].(map[string]any)["burst"]; b != 250.0 {
			t.Fatalf("burst %v", b)
		}
		shot(t, ctx, "settings")
		// Usage counts reach the store every UsageFlushInterval (100 ms
		// here); the chart has bars once they have.
		for bars, tries := 0, 0; bars == 0; tries++ {
			if tries == 50 {
				t.Fatal("the usage chart has no bars")
			}
			run(t, ctx, chromedp.Navigate(env.URL+"/admin/usage"), chromedp.Evaluate(`document.querySelectorAll("svg.chart rect").length`, &bars))
		}
		shot(t, ctx, "usage")
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/audit"), chromedp.WaitVisible(`//td[contains(., "settings.update")]`, chromedp.BySearch))
		if d := textOf(t, ctx, "ul.details"); !strings.Contains(d, "rate_limit.burst: 250") {
			t.Fatalf("settings change reads %q", d)
		}
		shot(t, ctx, "audit")
	})

	t.Run("narrow screen", func(t *testing.T) {
		run(t, ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(env.URL+"/admin/users"), chromedp.WaitVisible("header nav", chromedp.ByQuery))
		noSideScroll(t, ctx, "users")
		shot(t, ctx, "users-mobile")
		run(t, ctx, chromedp.EmulateViewport(1280, 900))
	})

	t.Run("disabling a user ends their session", func(t *testing.T) {
		if clientTok == "" {
			t.Fatal("the developer flow did not run")
		}
		// Still signed in (no longer a developer: their own page).
		run(t, devTab, chromedp.Navigate(env.URL+"/admin"), chromedp.WaitVisible("header nav", chromedp.ByQuery), chromedp.Location(&loc))
		if !strings.HasSuffix(loc, "/admin/me") {
			t.Fatalf("a former developer lands on %s", loc)
		}
		id := findUserID(t, env, admin, "dev@example.com")
		run(t, ctx, chromedp.Navigate(env.URL+"/admin/users/"+id),
			chromedp.SetValue(`#status`, "disabled", chromedp.ByQuery),
			submit("Save"), chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
		if stops := textOf(t, ctx, "ul.stops"); !strings.Contains(stops, "1 admin UI session") || !strings.Contains(stops, "CI (") {
			t.Fatalf("confirmation says %q", stops)
		}
		servertest.Expect(t, env.As(clientTok, "GET", "/v1/me", nil), 200, "")
		run(t, ctx, submit("Disable dev@example.com"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
		run(t, devTab, chromedp.Navigate(env.URL+"/admin/me"), chromedp.WaitVisible("#email", chromedp.ByID), chromedp.Location(&loc))
		if !strings.HasSuffix(loc, "/admin/login") {
			t.Fatalf("disabled user at %s", loc)
		}
		servertest.Expect(t, env.As(clientTok, "GET", "/v1/me", nil), 401, "invalid_token")
	})
}

// pageHTML returns the whole document.
func pageHTML(t *testing.T, ctx context.Context) string {
	t.Helper()
	var html string
	run(t, ctx, chromedp.OuterHTML("html", &html, chromedp.ByQuery))
	return html
}

// bothWidths fails the test if the page scrolls sideways at 390 or at
// 1280 px.
func bothWidths(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	for _, w := range []int64{390, 1280} {
		run(t, ctx, chromedp.EmulateViewport(w, 900))
		noSideScroll(t, ctx, fmt.Sprintf("%s at %d px", what, w))
	}
}

// noSideScroll fails the test if the page scrolls sideways. Right after
// the viewport changes the browser may not have laid the page out again,
// so an overflow must still be there a moment later to count.
func noSideScroll(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	var widths []int
	for try := 0; ; try++ {
		run(t, ctx, chromedp.Evaluate(`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`, &widths))
		if widths[0] <= widths[1] {
			return
		}
		if try == 10 {
			t.Fatalf("%s scrolls sideways: %d px wide in %d px", what, widths[0], widths[1])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func findUserID(t *testing.T, env *servertest.Env, admin, email string) string {
	t.Helper()
	for _, u := range env.As(admin, "GET", "/v1/users?q="+url.QueryEscape(email), nil).Map(t)["data"].([]any) {
		if m := u.(map[string]any); m["email"] == email {
			return m["id"].(string)
		}
	}
	t.Fatalf("no user %s", email)
	return ""
}

// TestAdminSessionSecurity checks the cookie flags, the page headers, a new
// session id at every login, logout, and that a form post without the
// CSRF token is refused — with a plain HTTP client.
func TestAdminSessionSecurity(t *testing.T) {
	env := servertest.Start(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	login := func() *http.Response {
		t.Helper()
		resp, err := c.Get(env.URL + "/admin/login")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
			if resp.Header.Get(h) != want {
				t.Fatalf("%s = %q", h, resp.Header.Get(h))
			}
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("CSP %q", resp.Header.Get("Content-Security-Policy"))
		}
		csrf := between(body, `name="csrf" value="`, `"`)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		defer func() { c.CheckRedirect = nil }()
		resp, err = c.PostForm(env.URL+"/admin/login", url.Values{"csrf": {csrf}, "email": {servertest.AdminEmail}, "password": {servertest.AdminPassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := login()
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "gatehouse_session" && ck.Value != "" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || !strings.HasPrefix(session.Value, "gse_") {
		t.Fatalf("session cookie %+v", session)
	}
	if resp2 := login(); cookieValue(resp2, "gatehouse_session") == session.Value {
		t.Fatal("session id reused at login")
	}
	// A form post without the CSRF token is refused and changes nothing.
	resp, err := c.PostForm(env.URL+"/admin/users", url.Values{"email": {"evil@example.com"}, "password": {memberPW}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("post without CSRF: %d", resp.StatusCode)
	}
	servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": "evil@example.com", "password": memberPW}), 400, "invalid_grant")
	// Logout ends the session.
	page, _ := c.Get(env.URL + "/admin/users")
	csrf := between(readAll(page), `name="csrf" value="`, `"`)
	resp, _ = c.PostForm(env.URL+"/admin/logout", url.Values{"csrf": {csrf}})
	resp.Body.Close()
	resp, _ = c.Get(env.URL + "/admin/users")
	if resp.Request.URL.Path != "/admin/login" {
		t.Fatalf("after logout at %s", resp.Request.URL.Path)
	}
	resp.Body.Close()
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

func cookieValue(resp *http.Response, name string) string {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
