package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// signedOut reports whether a console browser of the net/http kind was
// sent back to the sign-in page.
func signedOut(t *testing.T, env *servertest.Env, c *http.Client) bool {
	t.Helper()
	resp, err := c.Get(env.URL + "/admin/me")
	if err != nil {
		t.Fatal(err)
	}
	readAll(resp)
	return resp.Request.URL.Path == "/admin/login"
}

// flashText is the page's notice, or "" when it has none (at once, without
// waiting for one to appear).
func flashText(t *testing.T, ctx context.Context) string {
	t.Helper()
	var s string
	run(t, ctx, chromedp.Evaluate(`(document.querySelector(".flash") || {textContent: ""}).textContent.trim()`, &s))
	return s
}

// TestSessionsConsoleChromium: in headless Chromium, at 390 and 1280 px, a
// user signing in while signed in from two other browsers is told so once;
// their account page lists the three sessions and signs the two others
// out; an admin resets a user's second factor after its confirmation, and
// ends every session of another user from the user's page.
func TestSessionsConsoleChromium(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	patID := env.CreateUser(admin, "pat@example.com", memberPW)
	annID := env.CreateUser(admin, "ann@example.com", memberPW)
	enrolTOTP(t, env, env.Login("ann@example.com", memberPW))
	ctx := browser(t)

	// Signed in from two other browsers, pat signs in here and is told of
	// them, once.
	other1, _ := browserSignIn(t, env, "pat@example.com", memberPW)
	other2, _ := browserSignIn(t, env, "pat@example.com", memberPW)
	run(t, ctx, uiLogin(env, "pat@example.com", memberPW))
	notice := flashText(t, ctx)
	if !strings.HasPrefix(notice, "You are also signed in elsewhere: 2 other sessions, the latest begun ") ||
		!strings.Contains(notice, " from 127.0.0.1.") || !strings.Contains(notice, "End them under Your account") {
		t.Fatalf("notice %q", notice)
	}
	shotBoth(t, ctx, "signin-elsewhere")
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me"), chromedp.WaitVisible(`//button[normalize-space()="Sign out of other sessions"]`, chromedp.BySearch))
	if strings.Contains(textOf(t, ctx, "main"), "signed in elsewhere") {
		t.Fatal("the notice is shown again")
	}

	// The account page lists the three, this one marked, and ends the
	// others.
	sessions := func() []string {
		t.Helper()
		var items []string
		run(t, ctx, chromedp.Evaluate(`(() => { const r = document.evaluate('//section[h2="Your sessions"]//li', document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null); const out = []; for (let i = 0; i < r.snapshotLength; i++) out.push(r.snapshotItem(i).textContent.trim()); return out })()`, &items))
		return items
	}
	list := sessions()
	if len(list) != 3 || !strings.HasSuffix(list[0], "this one") || strings.Contains(list[1]+list[2], "this one") {
		t.Fatalf("sessions listed: %q", list)
	}
	for _, s := range list {
		if !strings.HasPrefix(s, "Signed in ") || !strings.Contains(s, " from 127.0.0.1, until ") {
			t.Fatalf("session line %q", s)
		}
	}
	run(t, ctx, chromedp.ScrollIntoView(`//h2[normalize-space()="Your sessions"]`, chromedp.BySearch))
	shotBoth(t, ctx, "me-sessions")
	run(t, ctx, submit("Sign out of other sessions"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	if got := flashText(t, ctx); got != "Signed out of 2 other sessions." {
		t.Fatalf("flash %q", got)
	}
	if list := sessions(); len(list) != 1 || !strings.HasSuffix(list[0], "this one") {
		t.Fatalf("sessions after ending the others: %q", list)
	}
	shotBoth(t, ctx, "me-sessions-ended")
	if !signedOut(t, env, other1) || !signedOut(t, env, other2) {
		t.Fatal("the other sessions still work")
	}
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me"), chromedp.WaitVisible(`//button[normalize-space()="Sign out of other sessions"]`, chromedp.BySearch))

	// The admin resets ann's second factor after the confirmation.
	run(t, ctx, submit("Log out"), chromedp.WaitVisible("#email", chromedp.ByID))
	run(t, ctx, uiLogin(env, servertest.AdminEmail, servertest.AdminPassword))
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/users/"+annID), chromedp.WaitVisible(`//a[normalize-space()="Reset second factor"]`, chromedp.BySearch))
	if !strings.Contains(textOf(t, ctx, "main"), "Authenticator app on; 10 recovery codes left.") {
		t.Fatal("the user page does not show the second factor")
	}
	run(t, ctx, chromedp.Click(`//a[normalize-space()="Reset second factor"]`, chromedp.BySearch), chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
	confirm := textOf(t, ctx, "section.confirm")
	for _, want := range []string{"Reset the second factor of ann@example.com?", "Their authenticator app and recovery codes stop working", "Their sessions, tokens and credentials keep working"} {
		if !strings.Contains(confirm, want) {
			t.Fatalf("confirmation lacks %q:\n%s", want, confirm)
		}
	}
	shotBoth(t, ctx, "mfa-reset-confirm")
	servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW}), 400, "invalid_grant")
	run(t, ctx, submit("Reset second factor"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	if got := flashText(t, ctx); got != "Second factor reset." {
		t.Fatalf("flash %q", got)
	}
	if main := textOf(t, ctx, "main"); strings.Contains(main, "Authenticator app on") {
		t.Fatal("the user page still shows a second factor")
	}
	env.Login("ann@example.com", memberPW)

	// The admin ends every session of pat from pat's page.
	pat1, _ := browserSignIn(t, env, "pat@example.com", memberPW)
	pat2, _ := browserSignIn(t, env, "pat@example.com", memberPW)
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/users/"+patID), chromedp.WaitVisible(`//button[normalize-space()="Sign out everywhere"]`, chromedp.BySearch))
	userSessions := func() string {
		t.Helper()
		var s string
		run(t, ctx, chromedp.Text(`//h3[normalize-space()="Sessions"]/following-sibling::ul[1]`, &s, chromedp.BySearch))
		return s
	}
	if s := userSessions(); strings.Count(s, "Signed in ") != 2 || strings.Contains(s, "this one") {
		t.Fatalf("pat's sessions as the admin sees them: %q", s)
	}
	run(t, ctx, chromedp.ScrollIntoView(`//h2[normalize-space()="Password and sign-in"]`, chromedp.BySearch))
	shotBoth(t, ctx, "user-sessions")
	run(t, ctx, submit("Sign out everywhere"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	if got := flashText(t, ctx); got != "2 sessions ended." {
		t.Fatalf("flash %q", got)
	}
	if s := userSessions(); s != "No open admin UI session." {
		t.Fatalf("pat's sessions after ending them: %q", s)
	}
	shotBoth(t, ctx, "user-sessions-ended")
	if !signedOut(t, env, pat1) || !signedOut(t, env, pat2) {
		t.Fatal("a session the admin ended still works")
	}
}
