package e2e

import (
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestLeakRevokeRemainingKinds: RFC 7009 revocation, by nothing but
// possession, of the secret kinds TestLeakRevokeEveryKind does not send —
// a password grant's access token, an API access refresh token sent
// itself, a third-party application's client secret (the current one, and
// the previous one while a roll's overlap lasts), an authorization code
// not yet redeemed and a device code not yet answered — each answered 200
// on one node and then refused on both; the application's new secret, and
// its users' tokens, keep working. The application's secrets and the code
// are audited as credential.leaked in the owner's account (a token sent by
// itself is revoked as RFC 7009 says, as its holder's own act; a device
// code no one answered has no owner yet).
func TestLeakRevokeRemainingKinds(t *testing.T) {
	a, b := twoLeakNodes(t)
	admin, _, devTok, _ := developer(t, a)
	a.CreateUser(admin, appMember, memberPW)
	conf := registerApp(t, a, devTok, "confidential", []string{appRedirect}, []string{"workspaces:read"})
	pub := registerApp(t, a, devTok, "public", []string{"http://127.0.0.1/callback"}, nil)
	revoke := func(env *servertest.Env, tok string) {
		t.Helper()
		r := env.Request("POST", "/oauth/revoke", url.Values{"token": {tok}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		servertest.Expect(t, r, 200, "")
	}
	both := func(check func(env *servertest.Env)) {
		t.Helper()
		check(a)
		check(b)
	}

	// A password grant's access token.
	pw := a.Login(appMember, memberPW)
	servertest.Expect(t, b.As(pw, "GET", "/v1/me", nil), 200, "")
	revoke(b, pw)
	both(func(env *servertest.Env) {
		servertest.Expect(t, env.As(pw, "GET", "/v1/me", nil), 401, "invalid_token")
	})

	// An API access application's refresh token, sent itself: its lineage
	// ends, the access token with it.
	app := enableAPIAccess(t, a, admin, nil)
	revoke(a, app.RefreshToken)
	both(func(env *servertest.Env) {
		servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
		if r := refresh(env, app.ClientID, app.RefreshToken); r.Status == 200 {
			t.Fatalf("the revoked refresh token refreshed: %s", r.Body)
		}
	})

	// An authorization code not yet redeemed, then the application's
	// tokens from another code.
	ua := newUserAgent(t, a.URL)
	codeOf := func() (code, verifier string) {
		t.Helper()
		verifier = oauth2.GenerateVerifier()
		cb, resp, body := ua.authorize(oauthConfig(a, conf, appRedirect, "workspaces:read").AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), appMember, memberPW, "allow")
		if cb == nil {
			t.Fatalf("no redirect to the application: %d %s", resp.StatusCode, body)
		}
		return cb.Query().Get("code"), verifier
	}
	leakedCode, leakedVerifier := codeOf()
	revoke(b, leakedCode)
	servertest.Expect(t, exchange(a, conf, leakedCode, appRedirect, leakedVerifier), 400, "invalid_grant")
	code, verifier := codeOf()
	tok := exchange(b, conf, code, appRedirect, verifier)
	servertest.Expect(t, tok, 200, "")
	userAccess := tok.Map(t)["access_token"].(string)

	// The application's client secret: refused for good on both nodes;
	// its users' tokens stay. The owner rolls a new one, with an hour of
	// overlap; the previous secret, leaked within it, is refused too, and
	// the new one works.
	if got := clientAuth(t, a, conf.ClientID, conf.ClientSecret); got != "invalid_grant" {
		t.Fatalf("the secret before the leak: %s", got)
	}
	revoke(a, conf.ClientSecret)
	both(func(env *servertest.Env) {
		if got := clientAuth(t, env, conf.ClientID, conf.ClientSecret); got != "invalid_client" {
			t.Fatalf("the leaked secret: %s", got)
		}
		servertest.Expect(t, env.As(userAccess, "GET", "/v1/workspaces", nil), 200, "")
	})
	r := a.As(devTok, "POST", "/v1/apps/"+conf.ID+"/roll", map[string]int{})
	servertest.Expect(t, r, 200, "")
	second := r.Map(t)["client_secret"].(string)
	r = b.As(devTok, "POST", "/v1/apps/"+conf.ID+"/roll", map[string]int{"overlap_seconds": 3600})
	servertest.Expect(t, r, 200, "")
	third := r.Map(t)["client_secret"].(string)
	for _, s := range []string{second, third} {
		if got := clientAuth(t, b, conf.ClientID, s); got != "invalid_grant" {
			t.Fatalf("a secret within the overlap: %s", got)
		}
	}
	revoke(b, second)
	both(func(env *servertest.Env) {
		if got := clientAuth(t, env, conf.ClientID, second); got != "invalid_client" {
			t.Fatalf("the leaked previous secret: %s", got)
		}
		if got := clientAuth(t, env, conf.ClientID, third); got != "invalid_grant" {
			t.Fatalf("the current secret after its predecessor leaked: %s", got)
		}
	})

	// A device code no one has answered yet: polling it is over.
	r = a.Request("POST", "/oauth/device_authorization", url.Values{"client_id": {pub.ClientID}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 200, "")
	deviceCode := r.Map(t)["device_code"].(string)
	servertest.Expect(t, poll(t, b, pub, deviceCode), 400, "authorization_pending")
	revoke(a, deviceCode)
	servertest.Expect(t, poll(t, b, pub, deviceCode), 400, "invalid_grant")

	// Audited in the owner's account.
	leaks := map[string]int{}
	for _, e := range auditEntries(t, a, admin) {
		if e["action"] == "credential.leaked" {
			d, _ := e["details"].(map[string]any)
			leaks[d["kind"].(string)]++
		}
	}
	if want := map[string]int{"authorization_code": 1, "client_secret": 2}; len(leaks) != len(want) ||
		leaks["authorization_code"] != 1 || leaks["client_secret"] != 2 {
		t.Errorf("credential.leaked entries %v, want %v", leaks, want)
	}
}
