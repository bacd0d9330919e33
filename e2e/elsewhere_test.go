package e2e

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// browserSignIn signs in to the console with a browser of its own (a
// cookie jar, redirects followed) and returns the page it lands on.
func browserSignIn(t *testing.T, env *servertest.Env, email, pw string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(env.URL + "/admin/login")
	if err != nil {
		t.Fatal(err)
	}
	csrf := between(readAll(resp), `name="csrf" value="`, `"`)
	resp, err = c.PostForm(env.URL+"/admin/login", url.Values{"csrf": {csrf}, "email": {email}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/admin/") {
		t.Fatalf("sign-in as %s: %d at %s", email, resp.StatusCode, resp.Request.URL)
	}
	return c, body
}

// TestSignInShowsSessionsElsewhere signs one user in from three browsers:
// the first sees no notice, the second is told of one other session and
// the third of two, each once (the next page has no notice); a sign-in
// that ended its sessions first is told of none.
func TestSignInShowsSessionsElsewhere(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "pat@example.com", memberPW)
	const notice = "You are also signed in elsewhere"

	first, body := browserSignIn(t, env, "pat@example.com", memberPW)
	if strings.Contains(body, notice) {
		t.Fatalf("the first sign-in tells of sessions elsewhere:\n%s", between(body, `<div class="flash"`, `</div>`))
	}
	_, body = browserSignIn(t, env, "pat@example.com", memberPW)
	if !strings.Contains(body, notice+": 1 other session, the latest begun ") || !strings.Contains(body, "127.0.0.1") {
		t.Fatalf("the second sign-in does not tell of the first: %q", between(body, `<div class="flash"`, `</div>`))
	}
	third, body := browserSignIn(t, env, "pat@example.com", memberPW)
	if !strings.Contains(body, notice+": 2 other sessions") {
		t.Fatalf("the third sign-in does not tell of two: %q", between(body, `<div class="flash"`, `</div>`))
	}
	resp, err := third.Get(env.URL + "/admin/me")
	if err != nil {
		t.Fatal(err)
	}
	if page := readAll(resp); strings.Contains(page, notice) {
		t.Fatal("the notice is shown again on the next page")
	}
	// The admin lands on another page than the home page; the notice goes
	// with it.
	browserSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	_, body = browserSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	if !strings.Contains(body, notice+": 1 other session") {
		t.Fatalf("the admin's second sign-in does not tell of the first: %q", between(body, `<div class="flash"`, `</div>`))
	}
	// Ending the others from the first browser leaves none to tell of.
	resp, err = first.Get(env.URL + "/admin/me")
	if err != nil {
		t.Fatal(err)
	}
	csrf := between(readAll(resp), `name="csrf" value="`, `"`)
	if resp, err = first.PostForm(env.URL+"/admin/me/sessions/end", url.Values{"csrf": {csrf}}); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("end other sessions: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = first.PostForm(env.URL+"/admin/logout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body = browserSignIn(t, env, "pat@example.com", memberPW); strings.Contains(body, notice) {
		t.Fatalf("a sign-in after every other session ended tells of one: %q", between(body, `<div class="flash"`, `</div>`))
	}
}
