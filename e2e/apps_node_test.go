package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// TestAppsClientsChromium: real clients drive the authorization code flow
// with headless Chromium signing in and consenting on Gatehouse's pages —
// the npm packages oauth4webapi, one of the strictest OAuth clients, and
// openid-client, built on it, each for a confidential (client_secret_basic)
// and a public application, and golang.org/x/oauth2 for a confidential
// one (TestAppsChromium has its public one). Each client builds the
// authorization URL (state, PKCE S256), Chromium signs in, reads the
// consent page and allows, and is sent to the application — the web
// application's https redirect URI, answered inside the browser, or the
// native one's loopback listener; the client checks the callback's state
// and iss (RFC 9207), exchanges the code, calls /v1/me with the token,
// refreshes it (rotated), and a second exchange of the code is refused
// and ends what the first issued.
func TestAppsClientsChromium(t *testing.T) {
	node := testenv.RequireTool(t, "node")
	dir, err := filepath.Abs("oauthclient")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client")); err != nil {
		testenv.Missing(t, "e2e/oauthclient/node_modules", "run `npm ci` in e2e/oauthclient (Node.js and npm)")
	}
	bctx := browserFor(t, 4*time.Minute)
	w := newAppsWorld(t)
	env := w.env
	member := env.Login(appMember, memberPW)

	// Where the browser lands: the web application's redirect URI is
	// answered inside the browser (its host does not resolve here), the
	// native application's by its loopback listener.
	const done = "<!doctype html><title>Done</title><p>You can close this window.</p>"
	landed := make(chan string, 1)
	land := func(u string) {
		select {
		case landed <- u:
		default:
		}
	}
	chromedp.ListenTarget(bctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		land(e.Request.URL)
		go fetch.FulfillRequest(e.RequestID, 200).
			WithResponseHeaders([]*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}}).
			WithBody(base64.StdEncoding.EncodeToString([]byte(done))).
			Do(cdp.WithExecutor(bctx, chromedp.FromContext(bctx).Target))
	})
	run(t, bctx, fetch.Enable().WithPatterns([]*fetch.RequestPattern{{URLPattern: strings.TrimSuffix(appRedirect, "/callback") + "/*"}}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			land("http://" + r.Host + r.URL.RequestURI())
		}
		io.WriteString(rw, done)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	loopback := "http://" + ln.Addr().String() + "/callback"

	// authorize signs in afresh in Chromium at authURL, checks the
	// consent page and allows, and returns the URL the browser is sent to
	// at the application. The user's earlier authorization of app is
	// revoked first, for the consent page to be asked again.
	authorize := func(t *testing.T, app thirdPartyApp, authURL, redirect string) *url.URL {
		t.Helper()
		if r := env.As(member, "DELETE", "/v1/me/authorizations/"+app.ClientID, nil); r.Status != 204 && r.Status != 404 {
			t.Fatalf("revoke the earlier authorization: %d %s", r.Status, r.Body)
		}
		for len(landed) > 0 {
			<-landed
		}
		run(t, bctx,
			network.ClearBrowserCookies(),
			chromedp.Navigate(authURL),
			chromedp.WaitVisible("#email", chromedp.ByID),
			chromedp.SendKeys("#email", appMember, chromedp.ByID),
			chromedp.SendKeys("#password", memberPW, chromedp.ByID),
			chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
			chromedp.WaitVisible("section.consent", chromedp.ByQuery),
		)
		text := textOf(t, bctx, "section.consent")
		for _, want := range []string{"Reporting " + app.Type, "default", "See the workspaces you can see"} {
			if !strings.Contains(text, want) {
				t.Fatalf("consent page lacks %q:\n%s", want, text)
			}
		}
		run(t, bctx, submit("Allow"))
		select {
		case got := <-landed:
			u, err := url.Parse(got)
			if err != nil || !strings.HasPrefix(got, redirect+"?") || u.Query().Get("code") == "" {
				t.Fatalf("the browser landed at %q, want %s with a code", got, redirect)
			}
			return u
		case <-time.After(20 * time.Second):
			var loc string
			chromedp.Run(bctx, chromedp.Location(&loc))
			t.Fatalf("the browser did not reach the application (at %s)", loc)
		}
		return nil
	}

	t.Run("x/oauth2/confidential", func(t *testing.T) {
		conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read")
		verifier := oauth2.GenerateVerifier()
		cb := authorize(t, w.confidential, conf.AuthCodeURL("st-go", oauth2.S256ChallengeOption(verifier)), appRedirect)
		q := cb.Query()
		if q.Get("state") != "st-go" || q.Get("iss") != w.issuer {
			t.Fatalf("callback %s: state or iss wrong (issuer %s)", cb, w.issuer)
		}
		// Without its secret the confidential client gets nothing, and the
		// code is not spent.
		ctx := context.Background()
		noSecret := *conf
		noSecret.ClientSecret = ""
		_, err := noSecret.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
			t.Fatalf("the code exchanged without the client secret: %v", err)
		}
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Extra("scope") != "workspaces:read" || tok.RefreshToken == "" {
			t.Fatalf("token %+v scope %v", tok, tok.Extra("scope"))
		}
		me := env.As(tok.AccessToken, "GET", "/v1/me", nil).Map(t)
		if me["auth_method"] != "authorization_code" || me["user"].(map[string]any)["email"] != appMember {
			t.Fatalf("me %v", me)
		}
		refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil || refreshed.RefreshToken == tok.RefreshToken || refreshed.AccessToken == tok.AccessToken {
			t.Fatalf("refresh: %+v %v", refreshed, err)
		}
		servertest.Expect(t, env.As(refreshed.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
		_, err = conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("the code used again: %v", err)
		}
		servertest.Expect(t, env.As(refreshed.AccessToken, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	})

	for _, tc := range []struct {
		script   string
		app      thirdPartyApp
		redirect string
	}{
		{"flow.mjs", w.confidential, appRedirect},
		{"flow.mjs", w.public, loopback},
		{"openid-client.mjs", w.confidential, appRedirect},
		{"openid-client.mjs", w.public, loopback},
	} {
		t.Run(tc.script+"/"+tc.app.Type, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			lines, stdin, stderr := nodeLines(t, ctx, node, dir, tc.script, "ISSUER="+w.issuer, "CLIENT_ID="+tc.app.ClientID,
				"CLIENT_SECRET="+tc.app.ClientSecret, "REDIRECT_URI="+tc.redirect, "SCOPE=workspaces:read")
			authURL, _ := nextLine(t, lines, stderr, "authorize").(string)
			au, err := url.Parse(authURL)
			if err != nil || !strings.HasPrefix(authURL, w.issuer+"/oauth/authorize?") || au.Query().Get("code_challenge_method") != "S256" ||
				au.Query().Get("state") == "" || au.Query().Get("client_id") != tc.app.ClientID {
				t.Fatalf("authorization URL %q", authURL)
			}
			cb := authorize(t, tc.app, authURL, tc.redirect)
			if q := cb.Query(); q.Get("state") != au.Query().Get("state") || q.Get("iss") != w.issuer {
				t.Fatalf("callback %s: state or iss wrong (issuer %s)", cb, w.issuer)
			}
			io.WriteString(stdin, cb.String()+"\n")
			got, _ := nextLine(t, lines, stderr, "result").(map[string]any)
			if got["scope"] != "workspaces:read" || got["me_method"] != "authorization_code" || got["me_user"] != appMember ||
				got["refreshed_access_token"] == "" || got["refreshed_refresh"] != true || got["reuse"] != "invalid_grant" {
				t.Fatalf("%s: %v", tc.script, got)
			}
			// The code used again revoked its lineage, refreshed tokens too.
			refreshed, _ := got["refreshed_access_token"].(string)
			servertest.Expect(t, env.As(refreshed, "GET", "/v1/workspaces", nil), 401, "invalid_token")
		})
	}
}
