package e2e

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// consoleHostName is the console's host name in the tests of
// --console-host; Chromium resolves it to the loopback address.
const consoleHostName = "console.example"

// loopbackApp is a native application's loopback redirect listener: it
// hands the query of each callback to got.
type loopbackApp struct {
	redirect string
	got      chan url.Values
}

func newLoopbackApp(t *testing.T) *loopbackApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &loopbackApp{redirect: "http://" + ln.Addr().String() + "/callback", got: make(chan url.Values, 1)}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case a.got <- r.URL.Query():
			default:
			}
		}
		rw.Write([]byte("<!doctype html><title>Done</title><p>You can close this window.</p>"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// wait returns the query of the next callback.
func (a *loopbackApp) wait(t *testing.T, ctx context.Context) url.Values {
	t.Helper()
	select {
	case q := <-a.got:
		return q
	case <-time.After(20 * time.Second):
		var loc string
		chromedp.Run(ctx, chromedp.Location(&loc))
		t.Fatalf("the browser did not reach the application (at %s)", loc)
	}
	return nil
}

// TestAppsConsoleModesChromium: behind a gateway, in each way the console
// can be served (on the API's origin by opt-out, on its own address, to
// its own host name), an application sends headless Chromium to
// /oauth/authorize on the main address; the sign-in and consent pages
// are reached on the console's origin, Allow brings the browser back to
// the application with a code, state and iss, and the code is exchanged.
func TestAppsConsoleModesChromium(t *testing.T) {
	for _, mode := range []struct {
		name      string
		configure func(*server.Config)
	}{
		{"same-origin", func(c *server.Config) { c.ConsoleSameOrigin = true }},
		{"console-addr", func(c *server.Config) { c.ConsoleAddr = "127.0.0.1:0" }},
		{"console-host", func(c *server.Config) { c.ConsoleHost = consoleHostName }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			env := consoleEnv(t, newRecorder(t), nil, mode.configure)
			admin, _, devTok, _ := developer(t, env)
			env.CreateUser(admin, appMember, memberPW)
			app := registerApp(t, env, devTok, "public", []string{"http://127.0.0.1/callback"}, nil)
			native := newLoopbackApp(t)
			issuer := issuerOf(t, env)["issuer"].(string)
			console := strings.TrimSuffix(env.Server.ConsoleURL(), "/admin")
			if mode.name == "console-host" {
				u, _ := url.Parse(env.URL)
				console = "http://" + consoleHostName + ":" + u.Port()
			}

			ctx := browserFor(t, 3*time.Minute, chromedp.Flag("host-resolver-rules", "MAP "+consoleHostName+" 127.0.0.1"))
			conf := oauthConfig(env, app, native.redirect, "workspaces:read")
			verifier := oauth2.GenerateVerifier()
			var signIn, consent string
			run(t, ctx,
				chromedp.Navigate(conf.AuthCodeURL("mode-"+mode.name, oauth2.S256ChallengeOption(verifier))),
				chromedp.WaitVisible("#email", chromedp.ByID),
				chromedp.Location(&signIn),
				chromedp.SendKeys("#email", appMember, chromedp.ByID),
				chromedp.SendKeys("#password", memberPW, chromedp.ByID),
				chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
				chromedp.WaitVisible("section.consent", chromedp.ByQuery),
				chromedp.Location(&consent),
			)
			for _, at := range []string{signIn, consent} {
				if !strings.HasPrefix(at, console+"/admin/") {
					t.Fatalf("a page of the authorization at %s, not on the console's origin %s", at, console)
				}
			}
			if s := textOf(t, ctx, "section.consent"); !strings.Contains(s, "Reporting public") {
				t.Fatalf("consent page:\n%s", s)
			}
			run(t, ctx, submit("Allow"))
			q := native.wait(t, ctx)
			if q.Get("state") != "mode-"+mode.name || q.Get("iss") != issuer || q.Get("code") == "" {
				t.Fatalf("callback %v (issuer %s)", q, issuer)
			}
			tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
		})
	}
}

// clientAuth answers whether id and secret authenticate at the token
// endpoint: a code that does not exist is invalid_grant for a client that
// authenticated, invalid_client for one that did not.
func clientAuth(t *testing.T, env *servertest.Env, id, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"gac_nothing"}, "redirect_uri": {appRedirect}, "code_verifier": {oauth2.GenerateVerifier()},
		"client_id": {id}, "client_secret": {secret}}
	r := env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.Status != 400 && r.Status != 401 {
		t.Fatalf("token endpoint: %d %s", r.Status, r.Body)
	}
	return r.Map(t)["error"].(string)
}

// TestAppsConsolePagesChromium: in headless Chromium a developer registers
// a public and a confidential application on the console's Applications
// page (the secret shown once), and the public one's client id works in an
// authorization code flow; the confidential one's secret is rolled with an
// hour of overlap (both secrets work, a wrong one does not); the developer
// deletes the public application, after which /oauth/authorize refuses
// its client id; an admin lists the account's applications with their
// owners and deletes the confidential one, whose secret then fails. The
// pages are looked at in screenshots at 390 and 1280 px.
func TestAppsConsolePagesChromium(t *testing.T) {
	env := servertest.Start(t)
	admin, _, _, _ := developer(t, env)
	env.CreateUser(admin, appMember, memberPW)

	dev := browser(t)
	run(t, dev, uiLogin(env, "dev@example.com", memberPW),
		chromedp.Navigate(env.URL+"/admin/apps"), chromedp.WaitVisible("#app-name", chromedp.ByID))
	bothWidths(t, dev, "applications page, empty")
	register := func(name, typ, redirects string) (id, secret string) {
		t.Helper()
		run(t, dev, chromedp.Navigate(env.URL+"/admin/apps"), chromedp.WaitVisible("#app-name", chromedp.ByID),
			chromedp.SendKeys("#app-name", name, chromedp.ByID),
			chromedp.SetValue("#app-type", typ, chromedp.ByID),
			chromedp.SendKeys("#app-redirects", redirects, chromedp.ByID),
			submit("Register application"), chromedp.WaitVisible("#new-client-id", chromedp.ByID))
		id = textOf(t, dev, "#new-client-id")
		if typ == "confidential" {
			secret = textOf(t, dev, "#new-client-secret")
		} else if n := countOf(t, dev, "#new-client-secret"); n != 0 {
			t.Fatal("a public application was shown a secret")
		}
		return id, secret
	}
	pubID, _ := register("Console reports", "public", "http://127.0.0.1/callback")
	confID, confSecret := register("Console sync", "confidential", appRedirect)
	if !strings.HasPrefix(pubID, "gci_") || !strings.HasPrefix(confSecret, "gcs_") {
		t.Fatalf("client id %q, secret %q", pubID, confSecret)
	}
	// Shown once: the list never shows the secret.
	run(t, dev, chromedp.Navigate(env.URL+"/admin/apps"), chromedp.WaitVisible("#apps", chromedp.ByQuery))
	if s := textOf(t, dev, "main"); !strings.Contains(s, pubID) || !strings.Contains(s, confID) || strings.Contains(s, confSecret) {
		t.Fatalf("applications page:\n%s", s)
	}
	bothWidths(t, dev, "applications page")
	run(t, dev, chromedp.EmulateViewport(390, 900))
	shot(t, dev, "apps-390")
	run(t, dev, chromedp.EmulateViewport(1280, 900))
	shot(t, dev, "apps-1280")

	// The public application's client id works in an authorization code
	// flow.
	pub := thirdPartyApp{ClientID: pubID, Type: "public"}
	verifier := oauth2.GenerateVerifier()
	conf := oauthConfig(env, pub, "http://127.0.0.1:9/callback", "workspaces:read")
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("console", oauth2.S256ChallengeOption(verifier)), appMember, memberPW, "allow")
	if cb == nil {
		t.Fatalf("no redirect to the application: %d %s", resp.StatusCode, body)
	}
	tok := exchange(env, pub, cb.Query().Get("code"), "http://127.0.0.1:9/callback", verifier)
	servertest.Expect(t, tok, 200, "")
	access := tok.Map(t)["access_token"].(string)
	servertest.Expect(t, env.As(access, "GET", "/v1/workspaces", nil), 200, "")

	// Roll with an hour of overlap: both secrets work.
	run(t, dev, chromedp.Navigate(env.URL+"/admin/apps"), chromedp.WaitVisible("#apps", chromedp.ByQuery),
		chromedp.SetValue(`#apps tr:has(code) select`, "3600", chromedp.ByQuery),
		submit("Roll secret"), chromedp.WaitVisible("#new-client-secret", chromedp.ByID))
	rolled := textOf(t, dev, "#new-client-secret")
	if s := textOf(t, dev, "main"); rolled == confSecret || !strings.Contains(s, "1 hour") {
		t.Fatalf("roll page:\n%s", s)
	}
	bothWidths(t, dev, "rolled secret page")
	run(t, dev, chromedp.EmulateViewport(390, 900))
	shot(t, dev, "apps-rolled-390")
	run(t, dev, chromedp.EmulateViewport(1280, 900))
	shot(t, dev, "apps-rolled-1280")
	for _, s := range []string{confSecret, rolled} {
		if got := clientAuth(t, env, confID, s); got != "invalid_grant" {
			t.Fatalf("a secret within the overlap: %s", got)
		}
	}
	if got := clientAuth(t, env, confID, "gcs_wrong"); got != "invalid_client" {
		t.Fatalf("a wrong secret: %s", got)
	}

	// The developer deletes the public application, asked first; its
	// client id is refused and its token ends.
	run(t, dev, chromedp.Navigate(env.URL+"/admin/apps"), chromedp.WaitVisible("#apps", chromedp.ByQuery),
		chromedp.Click(`//tr[.//code[text()="`+pubID+`"]]//a[normalize-space()="Delete"]`, chromedp.BySearch),
		chromedp.WaitVisible("section.confirm ul.stops li", chromedp.ByQuery))
	bothWidths(t, dev, "delete an application")
	run(t, dev, chromedp.EmulateViewport(390, 900))
	shot(t, dev, "apps-delete-390")
	run(t, dev, chromedp.EmulateViewport(1280, 900))
	shot(t, dev, "apps-delete-1280")
	run(t, dev, submit("Delete application"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	after, _ := newUserAgent(t, env.URL).do("GET", conf.AuthCodeURL("after", oauth2.S256ChallengeOption(verifier)), nil)
	if after.StatusCode != 400 {
		t.Fatalf("/oauth/authorize for a deleted application: %d", after.StatusCode)
	}
	servertest.Expect(t, env.As(access, "GET", "/v1/workspaces", nil), 401, "invalid_token")

	// The admin sees the account's applications with their owners, and
	// deletes (revokes) the developer's.
	adm := browser(t)
	run(t, adm, uiLogin(env, servertest.AdminEmail, servertest.AdminPassword),
		chromedp.Navigate(env.URL+"/admin/apps"), chromedp.WaitVisible("#apps", chromedp.ByQuery))
	if s := textOf(t, adm, "main"); !strings.Contains(s, confID) || !strings.Contains(s, "dev@example.com") || strings.Contains(s, pubID) ||
		countOf(t, adm, "#app-name") != 0 {
		t.Fatalf("the admin's applications page:\n%s", s)
	}
	bothWidths(t, adm, "the admin's applications page")
	run(t, adm, chromedp.EmulateViewport(390, 900))
	shot(t, adm, "apps-admin-390")
	run(t, adm, chromedp.EmulateViewport(1280, 900))
	shot(t, adm, "apps-admin-1280")
	run(t, adm, chromedp.Click(`//tr[.//code[text()="`+confID+`"]]//a[normalize-space()="Delete"]`, chromedp.BySearch),
		chromedp.WaitVisible("section.confirm", chromedp.ByQuery),
		submit("Delete application"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	if got := clientAuth(t, env, confID, rolled); got != "invalid_client" {
		t.Fatalf("the deleted application's secret: %s", got)
	}
}

// countOf is how many elements of the page match the CSS selector sel.
func countOf(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	var n int
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll(`+strconv.Quote(sel)+`).length`, &n))
	return n
}
