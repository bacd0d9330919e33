package e2e

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// Statements of the docs that a user relies on, checked (issue 28).

// TestFailedSignInKeepsEmail: docs/admin-ui.md "Forms keep what was
// typed" holds for the sign-in form too — a wrong password shows the form
// again (401) with the e-mail address typed and never the password.
func TestFailedSignInKeepsEmail(t *testing.T) {
	env := servertest.Start(t)
	s := uiSessionClient(t, env)
	s.get("/admin/login")
	status, body, _ := s.post("/admin/login", url.Values{"email": {"Someone@Example.com"}, "password": {"not the password 9"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong e-mail or password.") {
		t.Fatalf("wrong password: %d %.200s", status, body)
	}
	if !strings.Contains(body, `value="Someone@Example.com"`) || strings.Contains(body, "not the password 9") {
		t.Fatalf("the form does not keep the e-mail, or shows the password: %s", between(body, "<form", "</form>"))
	}
	// The form still works: the right password signs in.
	status, _, loc := s.post("/admin/login", url.Values{"email": {servertest.AdminEmail}, "password": {servertest.AdminPassword}})
	if status != http.StatusSeeOther || loc != "/admin" {
		t.Fatalf("sign in after a failure: %d to %q", status, loc)
	}
}

// TestDailyLimitSelfLockoutWayOut: docs/rate-limits.md says an admin who
// lowers the daily limit below what they used today is refused by the API
// until the day's count falls, and that the console, which the rate limit
// does not count, raises it again at once.
func TestDailyLimitSelfLockoutWayOut(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	for range 5 {
		servertest.Expect(t, env.As(admin, "GET", "/v1/me", nil), http.StatusOK, "")
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"daily": 3}}), http.StatusOK, "")
	r := env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"daily": 50000}})
	if r.Status == http.StatusOK {
		t.Fatal("the lowered daily limit did not lock its admin out; the docs' warning is wrong")
	}

	// The console is not rate limited: many pages, then the settings form.
	s := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	for range 10 {
		if status, _, _ := s.get("/admin/settings"); status != http.StatusOK {
			t.Fatalf("console settings page under a spent daily limit: %d", status)
		}
	}
	_, page, _ := s.get("/admin/settings")
	form := formValues(page)
	form.Set("rate_limit.daily", "50000")
	if status, _, loc := s.post("/admin/settings", form); status != http.StatusSeeOther || loc != "/admin/settings" {
		t.Fatalf("raise the limit in the console: %d to %q", status, loc)
	}
	servertest.Expect(t, env.As(admin, "GET", "/v1/me", nil), http.StatusOK, "")
}

// formValues reads the named inputs and text areas of the first form
// with a CSRF field on page, as a browser would send them (checkboxes
// only when checked).
func formValues(page string) url.Values {
	out := url.Values{}
	input := regexp.MustCompile(`<input[^>]*>`)
	attr := func(tag, name string) (string, bool) {
		m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return "", false
		}
		return html.UnescapeString(m[1]), true
	}
	for _, tag := range input.FindAllString(page, -1) {
		name, ok := attr(tag, "name")
		if !ok || name == "csrf" {
			continue
		}
		if typ, _ := attr(tag, "type"); typ == "checkbox" && !strings.Contains(tag, " checked") {
			continue
		}
		v, _ := attr(tag, "value")
		out.Add(name, v)
	}
	for _, m := range regexp.MustCompile(`(?s)<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>`).FindAllStringSubmatch(page, -1) {
		out.Set(m[1], html.UnescapeString(m[2]))
	}
	return out
}

// uiSessionClient is a uiSession that has not signed in yet.
func uiSessionClient(t *testing.T, env *servertest.Env) *uiSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &uiSession{t: t, url: env.URL, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}
