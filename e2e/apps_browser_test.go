package e2e

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestAppsChromium: headless Chromium signs in and consents on
// Gatehouse's own pages, and follows Allow to a native application's
// loopback redirect URI (any port, RFC 8252 §7.3), through the consent
// page's Content-Security-Policy; the pages fit 390 and 1280 px
// (screenshots), and the user revokes the application under Your account.
func TestAppsChromium(t *testing.T) {
	ctx := browser(t)
	w := newAppsWorld(t)
	env := w.env

	// The native application's loopback listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan url.Values, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case got <- r.URL.Query():
			default:
			}
		}
		rw.Write([]byte("<!doctype html><title>Done</title><p>You can close this window.</p>"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	redirect := "http://" + ln.Addr().String() + "/callback"
	conf := oauthConfig(env, w.public, redirect, "workspaces:read", "users:write")
	verifier := oauth2.GenerateVerifier()
	run(t, ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(conf.AuthCodeURL("chromium", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", appMember, chromedp.ByID),
		chromedp.SendKeys("#password", memberPW, chromedp.ByID),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("section.consent", chromedp.ByQuery),
	)
	text := textOf(t, ctx, "section.consent")
	for _, want := range []string{"Reporting public", "default", "See the workspaces you can see", "See the users of your account", "users:write"} {
		if !strings.Contains(text, want) {
			t.Fatalf("consent page lacks %q:\n%s", want, text)
		}
	}
	bothWidths(t, ctx, "consent page")
	run(t, ctx, chromedp.EmulateViewport(390, 900))
	shot(t, ctx, "consent-390")
	run(t, ctx, chromedp.EmulateViewport(1280, 900))
	shot(t, ctx, "consent-1280")

	run(t, ctx, submit("Allow"))
	var q url.Values
	select {
	case q = <-got:
	case <-time.After(20 * time.Second):
		var loc string
		chromedp.Run(ctx, chromedp.Location(&loc))
		t.Fatalf("the browser did not reach the application (at %s)", loc)
	}
	if q.Get("state") != "chromium" || q.Get("iss") != w.issuer || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/users", nil), 200, "")

	// Your account lists it; Revoke ends its tokens.
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/me"), chromedp.WaitVisible("#authorized-apps", chromedp.ByID))
	if s := textOf(t, ctx, "main"); !strings.Contains(s, "Reporting public") || !strings.Contains(s, w.public.ClientID) {
		t.Fatalf("your account:\n%s", s)
	}
	bothWidths(t, ctx, "your account with an authorised application")
	run(t, ctx, chromedp.EmulateViewport(390, 900), chromedp.ScrollIntoView("#authorized-apps", chromedp.ByID))
	shotScreen(t, ctx, "authorized-apps-390")
	run(t, ctx, chromedp.EmulateViewport(1280, 900), chromedp.ScrollIntoView("#authorized-apps", chromedp.ByID))
	shotScreen(t, ctx, "authorized-apps-1280")
	// Revoke asks first, saying what stops.
	run(t, ctx, chromedp.Click(`#authorized-apps + ul a.danger`, chromedp.ByQuery), chromedp.WaitVisible("section.confirm ul.stops li", chromedp.ByQuery))
	run(t, ctx, submit("Revoke Reporting public"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/users", nil), 401, "invalid_token")
}
