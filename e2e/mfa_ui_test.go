package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// shotBoth checks that the page does not scroll sideways at 390 and 1280
// px and takes a screenshot at each: name-390 and name-1280.
func shotBoth(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	for _, w := range []int64{390, 1280} {
		run(t, ctx, chromedp.EmulateViewport(w, 900))
		noSideScroll(t, ctx, fmt.Sprintf("%s at %d px", name, w))
		shot(t, ctx, fmt.Sprintf("%s-%d", name, w))
	}
}

// TestTOTPConsole: in headless Chromium a member whose account requires a
// second factor is led to enrol after signing in, scans nothing but reads
// the key from the page, turns TOTP on with a code computed from it, sees
// the recovery codes once, signs out, and signs back in with a code and
// then with a recovery code, whose second use is refused.
func TestTOTPConsole(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]string{"require_mfa": "everyone"}), 200, "")
	ctx := browser(t)

	// Signed in with the password alone, every page leads to enrolment.
	run(t, ctx, uiLogin(env, "ann@example.com", memberPW))
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me"), chromedp.WaitVisible(`//button[normalize-space()="Set up an authenticator app"]`, chromedp.BySearch))
	if !strings.Contains(textOf(t, ctx, ".flash.error"), "requires a second factor") {
		t.Fatal("no word of the requirement")
	}
	shotBoth(t, ctx, "mfa-required")
	run(t, ctx, submit("Set up an authenticator app"), chromedp.WaitVisible("#totp-secret", chromedp.ByID))
	secret := strings.ReplaceAll(textOf(t, ctx, "#totp-secret"), " ", "")
	if len(secret) != 32 || !strings.Contains(pageHTML(t, ctx), `<svg class="qr"`) {
		t.Fatalf("enrolment page: key %q", secret)
	}
	shotBoth(t, ctx, "mfa-totp-enrol")
	// A wrong code keeps the page, with the key, and says so.
	run(t, ctx, chromedp.SendKeys("#code", "000000", chromedp.ByID), submit("Turn TOTP on"), chromedp.WaitVisible("#code-error", chromedp.ByID))
	if textOf(t, ctx, "#totp-secret") == "" {
		t.Fatal("the key is gone after a wrong code")
	}
	// The page shows the same key until a code confirms it.
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me/mfa/totp"), chromedp.WaitVisible("#code", chromedp.ByID))
	if again := strings.ReplaceAll(textOf(t, ctx, "#totp-secret"), " ", ""); again != secret {
		t.Fatal("the key changed")
	}
	run(t, ctx, chromedp.SendKeys("#code", totpAt(secret, 0), chromedp.ByID),
		submit("Turn TOTP on"), chromedp.WaitVisible("#recovery-10", chromedp.ByID))
	recovery := textOf(t, ctx, "#recovery-1")
	if len(recovery) != 19 {
		t.Fatalf("recovery code %q", recovery)
	}
	shotBoth(t, ctx, "mfa-recovery-codes")
	run(t, ctx, chromedp.Reload(), chromedp.WaitVisible(".already-shown", chromedp.ByQuery))
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me/mfa"), chromedp.WaitVisible(`//button[normalize-space()="Turn TOTP off"]`, chromedp.BySearch))
	shotBoth(t, ctx, "mfa-on")

	// Out and back in with the next code.
	signInWith := func(code string) string {
		t.Helper()
		run(t, ctx, submit("Log out"), chromedp.WaitVisible("#email", chromedp.ByID),
			chromedp.SendKeys("#email", "ann@example.com", chromedp.ByID), chromedp.SendKeys("#password", memberPW, chromedp.ByID),
			submit("Sign in"), chromedp.WaitVisible("#code", chromedp.ByID), chromedp.SendKeys("#code", code, chromedp.ByID), submit("Sign in"),
			chromedp.WaitVisible(`header nav, .flash.error`, chromedp.ByQuery))
		var loc string
		run(t, ctx, chromedp.Location(&loc))
		return loc
	}
	run(t, ctx, submit("Log out"), chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", "ann@example.com", chromedp.ByID), chromedp.SendKeys("#password", memberPW, chromedp.ByID),
		submit("Sign in"), chromedp.WaitVisible("#code", chromedp.ByID))
	shotBoth(t, ctx, "login-code")
	run(t, ctx, chromedp.SendKeys("#code", totpAt(secret, 1), chromedp.ByID), submit("Sign in"), chromedp.WaitVisible("header nav", chromedp.ByQuery))

	// With a recovery code, once.
	if loc := signInWith(recovery); !strings.HasSuffix(loc, "/admin/me") {
		t.Fatalf("recovery code sign-in ended at %s", loc)
	}
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me/mfa"), chromedp.WaitVisible(`//button[normalize-space()="Turn TOTP off"]`, chromedp.BySearch))
	if !strings.Contains(textOf(t, ctx, "main"), "9 recovery codes are left") {
		t.Fatalf("codes left: %s", textOf(t, ctx, "main"))
	}
	run(t, ctx, submit("Log out"), chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", "ann@example.com", chromedp.ByID), chromedp.SendKeys("#password", memberPW, chromedp.ByID),
		submit("Sign in"), chromedp.WaitVisible("#code", chromedp.ByID), chromedp.SendKeys("#code", recovery, chromedp.ByID), submit("Sign in"),
		chromedp.WaitVisible(".flash.error", chromedp.ByQuery))
	if !strings.Contains(textOf(t, ctx, ".flash.error"), "not right, or was used already") {
		t.Fatal("a used recovery code is not refused")
	}
	shotBoth(t, ctx, "login-code-refused")
}
