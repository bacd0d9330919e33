package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// startOnLocalhost starts a server whose console is at
// http://localhost:PORT (its public URL): a passkey needs a host name,
// and browsers offer passkeys to http only on localhost.
func startOnLocalhost(t *testing.T, configure ...func(*server.Config)) *servertest.Env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	env := servertest.Start(t, append(configure, func(c *server.Config) {
		c.Addr = "127.0.0.1:" + port
		c.PublicURL = "http://localhost:" + port
	})...)
	env.URL = "http://localhost:" + port
	return env
}

// virtualAuthenticator gives the browser Chromium's virtual authenticator:
// CTAP2, built in (internal transport), with resident keys and user
// verification that succeeds.
func virtualAuthenticator(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		if err := cdpwebauthn.Enable().Do(ctx); err != nil {
			return err
		}
		_, err := cdpwebauthn.AddVirtualAuthenticator(&cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Transport: cdpwebauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		}).Do(ctx)
		return err
	}))
}

// keepAnswer makes the page's passkey forms keep their answer (challenge
// id and credential) in sessionStorage; with hold, they keep it and do
// not post it.
func keepAnswer(hold bool) chromedp.Action {
	return chromedp.Evaluate(`(function(hold){
		var orig = HTMLFormElement.prototype.submit;
		HTMLFormElement.prototype.submit = function(){
			if (this.elements.credential) {
				sessionStorage.setItem("answer", JSON.stringify({challenge_id: this.elements.challenge_id.value, credential: this.elements.credential.value}));
				if (hold) return;
			}
			return orig.call(this);
		};
	})(`+strconv.FormatBool(hold)+`)`, nil)
}

// TestPasskeyConsole: in headless Chromium with a virtual authenticator, a
// member whose account requires a second factor enrols a passkey in the
// console (recovery codes shown once), renames it, signs out, signs back
// in with the password and the passkey as the second factor, and then
// with the passkey alone. A replayed assertion, an assertion sent with
// another challenge, and one assertion posted many times at once are
// refused but once; the password grant refuses the user; removing the
// passkey asks first.
func TestPasskeyConsole(t *testing.T) {
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "pat@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]string{"require_mfa": "everyone"}), 200, "")
	ctx := browserFor(t, 120*time.Second)
	virtualAuthenticator(t, ctx)

	// Enrolment, forced by require_mfa.
	run(t, ctx, uiLogin(env, "pat@example.com", memberPW))
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me"), chromedp.WaitVisible(`//button[normalize-space()="Add a passkey"]`, chromedp.BySearch))
	if !strings.Contains(textOf(t, ctx, ".flash.error"), "requires a second factor") {
		t.Fatal("no word of the requirement")
	}
	shotBoth(t, ctx, "mfa-passkeys-none")
	run(t, ctx, chromedp.SendKeys("#passkey-name", "Laptop", chromedp.ByID), submit("Add a passkey"), chromedp.WaitVisible("#recovery-10", chromedp.ByID))
	if !strings.Contains(textOf(t, ctx, "main"), "Passkey added") {
		t.Fatal("no heading of the added passkey")
	}
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me/mfa"), chromedp.WaitVisible(".passkey input[name=name]", chromedp.ByQuery))
	var name string
	run(t, ctx, chromedp.Value(".passkey input[name=name]", &name, chromedp.ByQuery))
	if name != "Laptop" {
		t.Fatalf("passkey name %q", name)
	}
	run(t, ctx, chromedp.SetValue(".passkey input[name=name]", "Work laptop", chromedp.ByQuery), submit("Rename"),
		chromedp.WaitVisible(".flash", chromedp.ByQuery))
	if !strings.Contains(textOf(t, ctx, ".flash"), "renamed to Work laptop") {
		t.Fatalf("rename: %s", textOf(t, ctx, ".flash"))
	}
	shotBoth(t, ctx, "mfa-passkeys")

	// The password grant refuses a user with a passkey.
	r := env.Request("POST", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"pat@example.com"}, "password": {memberPW}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 400, "invalid_grant")

	// Out, and back in: the password, then the passkey.
	run(t, ctx, submit("Log out"), chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", "pat@example.com", chromedp.ByID), chromedp.SendKeys("#password", memberPW, chromedp.ByID),
		submit("Sign in"), chromedp.WaitVisible(`//button[normalize-space()="Use a passkey"]`, chromedp.BySearch))
	shotBoth(t, ctx, "login-code-passkey")
	run(t, ctx, submit("Use a passkey"), chromedp.WaitVisible("header nav", chromedp.ByQuery))
	var loc string
	run(t, ctx, chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/admin/me") {
		t.Fatalf("second-factor sign-in ended at %s", loc)
	}

	// Out, and back in with the passkey alone.
	run(t, ctx, submit("Log out"), chromedp.WaitVisible(`//button[normalize-space()="Sign in with a passkey"]`, chromedp.BySearch))
	shotBoth(t, ctx, "login-passkey")
	run(t, ctx, keepAnswer(false), submit("Sign in with a passkey"), chromedp.WaitVisible("header nav", chromedp.ByQuery),
		chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/admin/me") {
		t.Fatalf("password-less sign-in ended at %s", loc)
	}
	var used string
	run(t, ctx, chromedp.Evaluate(`sessionStorage.getItem("answer")`, &used))
	if !strings.Contains(used, "challenge_id") {
		t.Fatal("the answer was not kept")
	}

	// The same assertion again: its challenge was used.
	run(t, ctx, submit("Log out"), chromedp.WaitVisible(`//button[normalize-space()="Sign in with a passkey"]`, chromedp.BySearch),
		chromedp.Evaluate(`(function(){var a = JSON.parse(sessionStorage.getItem("answer"));
			var f = document.querySelector("form[data-passkey]");
			f.elements.challenge_id.value = a.challenge_id; f.elements.credential.value = a.credential;
			f.setAttribute("data-ready", "1"); HTMLFormElement.prototype.submit.call(f);})()`, nil),
		chromedp.WaitVisible(".flash.error", chromedp.ByQuery))
	if !strings.Contains(textOf(t, ctx, ".flash.error"), "not accepted") {
		t.Fatalf("replayed assertion: %s", textOf(t, ctx, ".flash.error"))
	}
	shotBoth(t, ctx, "login-passkey-refused")
	// The same assertion with a new challenge: it signed another one.
	run(t, ctx, chromedp.Evaluate(`(function(){var a = JSON.parse(sessionStorage.getItem("answer"));
			var f = document.querySelector("form[data-passkey]");
			var body = new URLSearchParams(); body.append("csrf", f.elements.csrf.value);
			fetch(f.getAttribute("data-options"), {method: "POST", body: body}).then(function(r){return r.json()}).then(function(d){
				f.elements.challenge_id.value = d.challenge_id; f.elements.credential.value = a.credential;
				f.setAttribute("data-ready", "1"); HTMLFormElement.prototype.submit.call(f);});})()`, nil),
		chromedp.Sleep(500*time.Millisecond), chromedp.WaitVisible(".flash.error", chromedp.ByQuery))
	if !strings.Contains(textOf(t, ctx, ".flash.error"), "not accepted") {
		t.Fatalf("foreign assertion: %s", textOf(t, ctx, ".flash.error"))
	}

	// One fresh assertion posted by many clients at once: one session.
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/login"), chromedp.WaitVisible(`//button[normalize-space()="Sign in with a passkey"]`, chromedp.BySearch),
		chromedp.Evaluate(`sessionStorage.removeItem("answer")`, nil), keepAnswer(true), submit("Sign in with a passkey"))
	var held string
	for i := 0; i < 50 && !strings.Contains(held, "credential"); i++ {
		run(t, ctx, chromedp.Sleep(100*time.Millisecond), chromedp.Evaluate(`sessionStorage.getItem("answer") || ""`, &held))
	}
	var answer struct {
		ChallengeID string `json:"challenge_id"`
		Credential  string `json:"credential"`
	}
	if err := json.Unmarshal([]byte(held), &answer); err != nil || answer.Credential == "" {
		t.Fatalf("held answer %q: %v", held, err)
	}
	var csrf string
	run(t, ctx, chromedp.Value(`form[data-passkey] input[name=csrf]`, &csrf, chromedp.ByQuery))
	var cookies []*network.Cookie
	run(t, ctx, chromedp.ActionFunc(func(ctx context.Context) (err error) {
		cookies, err = network.GetCookies().WithURLs([]string{env.URL + "/admin/login"}).Do(ctx)
		return err
	}))
	var jar []string
	for _, c := range cookies {
		jar = append(jar, c.Name+"="+c.Value)
	}
	form := url.Values{"csrf": {csrf}, "challenge_id": {answer.ChallengeID}, "credential": {answer.Credential}}.Encode()
	const n = 12
	clients := make([]*http.Client, n)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		warm, _ := http.NewRequest("GET", env.URL+"/healthz", nil)
		if res, err := clients[i].Do(warm); err == nil {
			res.Body.Close()
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		sessions int
		statuses []int
	)
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func(c *http.Client) {
			defer wg.Done()
			req, _ := http.NewRequest("POST", env.URL+"/admin/login/passkey", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", strings.Join(jar, "; "))
			<-start
			res, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			statuses = append(statuses, res.StatusCode)
			for _, ck := range res.Cookies() {
				if ck.Name == "gatehouse_session" && ck.Value != "" {
					sessions++
				}
			}
		}(clients[i])
	}
	close(start)
	wg.Wait()
	if sessions != 1 {
		t.Fatalf("one assertion posted %d times made %d sessions (statuses %v)", n, sessions, statuses)
	}

	// Removing the passkey asks first.
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/login"), chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", "pat@example.com", chromedp.ByID), chromedp.SendKeys("#password", memberPW, chromedp.ByID),
		submit("Sign in"), chromedp.WaitVisible(`//button[normalize-space()="Use a passkey"]`, chromedp.BySearch),
		submit("Use a passkey"), chromedp.WaitVisible("header nav", chromedp.ByQuery),
		chromedp.Navigate(env.URL+"/admin/me/mfa"), chromedp.WaitVisible(`//a[normalize-space()="Remove"]`, chromedp.BySearch),
		chromedp.Click(`//a[normalize-space()="Remove"]`, chromedp.BySearch), chromedp.WaitVisible(`//button[normalize-space()="Remove passkey"]`, chromedp.BySearch))
	if !strings.Contains(textOf(t, ctx, "main"), "recovery codes") {
		t.Fatal("the last passkey's removal does not say the recovery codes go")
	}
	shotBoth(t, ctx, "passkey-remove")
	run(t, ctx, submit("Remove passkey"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	if !strings.Contains(textOf(t, ctx, "main"), "None yet") {
		t.Fatal("the passkey is still listed")
	}
	if bytes.Contains([]byte(pageHTML(t, ctx)), []byte(`value="Work laptop"`)) {
		t.Fatal("the removed passkey's name is still shown")
	}
	audit := string(env.As(admin, "GET", "/v1/audit?limit=200", nil).Body)
	for _, action := range []string{"user.passkey_add", "user.mfa_enable", "user.passkey_rename", "user.passkey_sign_in", "user.passkey_remove", "user.mfa_disable"} {
		if !strings.Contains(audit, `"`+action+`"`) {
			t.Errorf("no %s in the audit log", action)
		}
	}
	for _, mode := range []string{"second_factor", "passwordless"} {
		if !strings.Contains(audit, `"mode":"`+mode+`"`) {
			t.Errorf("no passkey sign-in of mode %s in the audit log", mode)
		}
	}
}
