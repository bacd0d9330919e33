package e2e

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/mfa"
)

// TestResourceBoundTokenSelfCalls: a token bound to the gateway's
// resource B (not Gatehouse's public URL) works at B and nowhere in
// Gatehouse's own API — not /v1/me, and not as the bearer of its own
// introspection or revocation (which then revokes nothing) — and tokens
// bound to resources that only resemble B (its default port written out,
// a trailing slash, a path in capitals) are refused at B.
func TestResourceBoundTokenSelfCalls(t *testing.T) {
	const resourceB = "https://api-b.example.com/mcp"
	env := gatewayEnv(t, resourceB)
	status, reg := registerClient(t, env.Client, env.URL, map[string]any{"client_name": "agent", "redirect_uris": []string{"http://127.0.0.1/cb"}})
	if status != 201 {
		t.Fatalf("register: %d %v", status, reg)
	}
	clientID := reg["client_id"].(string)
	tokB, err := codeToken(t, env, clientID, resourceB, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := gatewayGet(t, env, tokB.AccessToken); r.StatusCode != 200 {
		t.Fatalf("B's token at B: %d", r.StatusCode)
	}
	servertest.Expect(t, env.As(tokB.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
	for _, path := range []string{"/oauth/introspect", "/oauth/revoke"} {
		r := env.Request("POST", path, url.Values{"token": {tokB.AccessToken}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Bearer "+tokB.AccessToken)
		servertest.Expect(t, r, 401, "invalid_token")
	}
	if r := gatewayGet(t, env, tokB.AccessToken); r.StatusCode != 200 {
		t.Fatalf("B's token at B after refused self-revocation: %d", r.StatusCode)
	}
	for _, other := range []string{"https://API-B.example.com:443/mcp", "https://api-b.example.com/mcp/", "https://api-b.example.com/MCP"} {
		tok, err := codeToken(t, env, clientID, other, "")
		if err != nil {
			t.Fatal(err)
		}
		if r := gatewayGet(t, env, tok.AccessToken); r.StatusCode != 401 {
			t.Fatalf("token for %s at %s: %d", other, resourceB, r.StatusCode)
		}
	}
}

// TestTOTPConfirmingCodeOnce: the code that confirmed TOTP signs in no
// more (each code accepted once).
func TestTOTPConfirmingCodeOnce(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "zed@example.com", memberPW)
	secret, _, step := enrolTOTPStep(t, env, env.Login("zed@example.com", memberPW))
	p := startSignIn(t, env.URL, loopback(7), "zed@example.com", memberPW)
	for _, k := range []int64{step, step - 1} {
		code := mfa.Code(secret, k)
		if o := codeOutcome(sendShot(t, codeShot(t, env.URL, loopback(7), p, code))); o != "wrong" {
			t.Fatalf("code of step %d (confirmed at %d): %s", k, step, o)
		}
	}
}

// TestRecoveryCodeOnceTogether: one recovery code released on 12
// sign-ins from 12 addresses signs in once; the same code then cannot turn
// TOTP off.
func TestRecoveryCodeOnceTogether(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "rex@example.com", memberPW)
	tok := env.Login("rex@example.com", memberPW)
	_, codes := enrolTOTP(t, env, tok)
	const n = 12
	shots := make([]volleyReq, n)
	for i := range shots {
		from := loopback(i + 10)
		shots[i] = codeShot(t, env.URL, from, startSignIn(t, env.URL, from, "rex@example.com", memberPW), "  "+codes[3]+" ")
	}
	got := countOutcomes(volley(t, shots).resps, codeOutcome)
	if got["session"] != 1 {
		t.Fatalf("one recovery code on %d sign-ins: %v", n, got)
	}
	// tok survived confirmation (it confirmed). The spent code cannot turn TOTP off.
	servertest.Expect(t, env.As(tok, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": codes[3]}), 400, "invalid_request")
	r := env.As(tok, "GET", "/v1/me/mfa", nil)
	servertest.Expect(t, r, 200, "")
	if m := r.Map(t); m["recovery_codes_left"] != float64(9) || m["totp"] != true {
		t.Fatalf("factors after: %v", m)
	}
}

// signedWithFlags is softKey.signed with the authenticator data flags given.
func signedWithFlags(t *testing.T, k *softKey, c passkeyCeremony, flags byte) string {
	h := sha256.Sum256([]byte(c.Options.PublicKey.RPID))
	ad := append(h[:], flags, 0, 0, 0, 0)
	cd := k.clientData("webauthn.get", c)
	ch := sha256.Sum256(cd)
	signed := sha256.Sum256(append(append([]byte{}, ad...), ch[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, signed[:])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": k.handle}})
	return string(b)
}

// beginPasswordless begins a password-less sign-in and returns the ceremony
// and what to post with it.
func beginPasswordless(t *testing.T, env *servertest.Env) (passkeyCeremony, url.Values, string) {
	csrf, cookie := adminLoginForm(t, env.URL)
	cookies := "gatehouse_login_csrf=" + cookie
	form := url.Values{"csrf": {csrf}}
	r := env.Request("POST", "/admin/login/passkey/options", form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Cookie", cookies)
	servertest.Expect(t, r, 200, "")
	var c passkeyCeremony
	r.JSON(t, &c)
	form.Set("challenge_id", c.ChallengeID)
	return c, form, cookies
}

// TestPasskeyPasswordlessNeedsUserVerified: a password-less sign-in is
// both factors only with the user verified (docs/console-security.md:
// "the authenticator must verify its user"); an assertion with UP but not
// UV makes no session. Nor does a password-less challenge finish a
// second-factor sign-in.
func TestPasskeyPasswordlessNeedsUserVerified(t *testing.T) {
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	_, _, keys, _ := passkeyMember(t, env, admin, "uv@example.com", 1)
	k := keys[0]
	c, form, cookies := beginPasswordless(t, env)
	form.Set("credential", signedWithFlags(t, k, c, 0x01)) // UP only
	r := sendShot(t, volleyReq{req: formRequest(t, env.URL+"/admin/login/passkey", form, "Cookie", cookies), from: loopback(30)})
	if s := sessionOf(r); s != "" {
		t.Fatalf("password-less sign-in without user verification made a session: %d", r.Status)
	}
	// The right one still works on a fresh challenge.
	c, form, cookies = beginPasswordless(t, env)
	form.Set("credential", signedWithFlags(t, k, c, 0x05))
	r = sendShot(t, volleyReq{req: formRequest(t, env.URL+"/admin/login/passkey", form, "Cookie", cookies), from: loopback(31)})
	if sessionOf(r) == "" {
		t.Fatalf("verified password-less sign-in: %d %.300s", r.Status, r.Body)
	}
	// A password-less challenge answered as the second factor of a
	// pending sign-in: refused.
	c, _, _ = beginPasswordless(t, env)
	p := startSignIn(t, env.URL, loopback(32), "uv@example.com", memberPW)
	f2 := url.Values{"csrf": {p.csrf}, "second": {"1"}, "challenge_id": {c.ChallengeID}, "credential": {signedWithFlags(t, k, c, 0x05)}}
	r = sendShot(t, volleyReq{req: formRequest(t, env.URL+"/admin/login/passkey", f2,
		"Cookie", "gatehouse_login_csrf="+p.loginCookie+"; gatehouse_sign_in="+p.signIn), from: loopback(32)})
	if sessionOf(r) != "" {
		t.Fatal("a password-less challenge finished a second-factor sign-in")
	}
}
