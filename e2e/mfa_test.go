package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/mfa"
)

// totpAt returns the code of secret at the step k steps from now.
func totpAt(secret string, k int64) string { return mfa.Code(secret, mfa.Step(time.Now())+k) }

// enrolTOTP turns TOTP on for the holder of tok with the current code and
// returns the secret and the recovery codes.
func enrolTOTP(t *testing.T, env *servertest.Env, tok string) (secret string, codes []string) {
	t.Helper()
	secret, codes, _ = enrolTOTPStep(t, env, tok)
	return secret, codes
}

// enrolTOTPStep is enrolTOTP, also returning the step whose code was used.
func enrolTOTPStep(t *testing.T, env *servertest.Env, tok string) (secret string, codes []string, step int64) {
	t.Helper()
	r := env.As(tok, "POST", "/v1/me/mfa/totp", nil)
	servertest.Expect(t, r, 200, "")
	var e struct {
		Secret string `json:"secret"`
		URI    string `json:"otpauth_uri"`
	}
	r.JSON(t, &e)
	if len(e.Secret) != 32 || !strings.HasPrefix(e.URI, "otpauth://totp/Gatehouse:") || !strings.Contains(e.URI, "secret="+e.Secret) {
		t.Fatalf("enrolment %s", r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the secret's answer may be cached")
	}
	step = mfa.Step(time.Now())
	r = env.As(tok, "POST", "/v1/me/mfa/totp/confirm", map[string]string{"code": mfa.Code(e.Secret, step)})
	servertest.Expect(t, r, 200, "")
	var rc struct {
		Codes []string `json:"recovery_codes"`
	}
	r.JSON(t, &rc)
	if len(rc.Codes) != 10 {
		t.Fatalf("recovery codes %s", r.Body)
	}
	return e.Secret, rc.Codes, step
}

// TestTOTPAPI: enrolment through the API, by a password-grant token only;
// the codes it accepts; the password grant refusing the user from then
// on; turning it off with a recovery code.
func TestTOTPAPI(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)
	other := env.Login("ann@example.com", memberPW)

	// Never with an API token (acting as the user) or a client credential.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	apiTok := env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "x"}).Map(t)["token"].(string)
	for path, body := range map[string]string{"/v1/me/mfa/totp": `{}`, "/v1/me/mfa/totp/confirm": `{"code":"123456"}`} {
		servertest.Expect(t, env.Request("POST", path, body, "X-API-Token", apiTok, "X-User-Email", "ann@example.com",
			"Content-Type", "application/json"), 403, "forbidden")
	}
	servertest.Expect(t, env.Request("GET", "/v1/me/mfa", nil, "X-API-Token", apiTok), 403, "forbidden")
	_, _, _, cred := developer(t, env)
	ccTok := accessToken(t, clientToken(env, cred))
	servertest.Expect(t, env.As(ccTok, "POST", "/v1/me/mfa/totp", nil), 403, "forbidden")

	if m := env.As(ann, "GET", "/v1/me/mfa", nil).Map(t); m["totp"] != false || m["recovery_codes_left"] != 0.0 || m["passkeys"] != 0.0 {
		t.Fatalf("before: %v", m)
	}
	// Confirming without an enrolment, then with wrong codes.
	servertest.Expect(t, env.As(ann, "POST", "/v1/me/mfa/totp/confirm", map[string]string{"code": "123456"}), 409, "conflict")
	r := env.As(ann, "POST", "/v1/me/mfa/totp", nil)
	secret := r.Map(t)["secret"].(string)
	// (Four: wrong codes count in the sign-in throttle, five per address.)
	for _, bad := range []string{"12345", "abcdef", totpAt(secret, -2), totpAt(secret, 2)} {
		if bad == totpAt(secret, 0) || bad == totpAt(secret, 1) || bad == totpAt(secret, -1) {
			continue
		}
		servertest.Expect(t, env.As(ann, "POST", "/v1/me/mfa/totp/confirm", map[string]string{"code": bad}), 400, "invalid_request")
	}
	if env.As(ann, "GET", "/v1/me/mfa", nil).Map(t)["totp"] != false {
		t.Fatal("a wrong code turned TOTP on")
	}
	// A new enrolment replaces the unconfirmed one.
	secret, codes, step := enrolTOTPStep(t, env, ann)
	if m := env.As(ann, "GET", "/v1/me/mfa", nil).Map(t); m["totp"] != true || m["recovery_codes_left"] != 10.0 {
		t.Fatalf("after: %v", m)
	}
	servertest.Expect(t, env.As(ann, "POST", "/v1/me/mfa/totp", nil), 409, "conflict")
	// The token that enrolled keeps working; the user's other password
	// token, made with the password alone, ends.
	servertest.Expect(t, env.As(ann, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, env.As(other, "GET", "/v1/me", nil), 401, "invalid_token")

	// The password grant refuses the user, on both endpoints; a wrong
	// password is the ordinary answer.
	for _, r := range []*servertest.Response{
		env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW}),
		env.Request("POST", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"ann@example.com"}, "password": {memberPW}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded"),
	} {
		servertest.Expect(t, r, 400, "invalid_grant")
		if !bytes.Contains(r.Body, []byte("this user signs in with a second factor")) {
			t.Fatalf("password grant: %s", r.Body)
		}
	}
	r = env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": "wrong password"})
	servertest.Expect(t, r, 400, "invalid_grant")
	if bytes.Contains(r.Body, []byte("second factor")) {
		t.Fatal("a wrong password learns of the second factor")
	}

	// Turning it off: the code that confirmed is spent, a code from two
	// steps before it is refused, a recovery code works. (The steps are
	// the confirmation's, not now's: a step may have passed since.)
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": mfa.Code(secret, step)}), 400, "invalid_request")
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": mfa.Code(secret, step-2)}), 400, "invalid_request")
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": strings.ToLower(codes[3])}), 204, "")
	if m := env.As(ann, "GET", "/v1/me/mfa", nil).Map(t); m["totp"] != false || m["recovery_codes_left"] != 0.0 {
		t.Fatalf("off: %v", m)
	}
	env.Login("ann@example.com", memberPW)
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": codes[4]}), 404, "not_found")

	// Every step is in the audit log.
	audit := string(env.As(admin, "GET", "/v1/audit?limit=200", nil).Body)
	for _, a := range []string{"user.totp_enrol", "user.mfa_enable", "user.mfa_disable"} {
		if !strings.Contains(audit, a) {
			t.Errorf("no %s in the audit log", a)
		}
	}
	if strings.Contains(audit, secret) || strings.Contains(audit, codes[0]) {
		t.Fatal("the audit log holds a secret")
	}
}

// signInShot is the second step of a console sign-in.
type pendingSignIn struct{ csrf, loginCookie, signIn string }

// startSignIn signs in to the console with a password from the client
// address from and returns the sign-in waiting for its second factor.
func startSignIn(t *testing.T, base, from, email, pw string) pendingSignIn {
	t.Helper()
	c := clientFrom(from, nil)
	resp := must(c.Get(base + "/admin/login"))
	body := readAll(resp)
	p := pendingSignIn{csrf: between(body, `name="csrf" value="`, `"`), loginCookie: cookieValue(resp, "gatehouse_login_csrf")}
	req := formRequest(t, base+"/admin/login", url.Values{"csrf": {p.csrf}, "email": {email}, "password": {pw}},
		"Cookie", "gatehouse_login_csrf="+p.loginCookie)
	resp = must(c.Do(req))
	body = readAll(resp)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/admin/login/code" {
		t.Fatalf("password step from %s: %d %s %.500s", from, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if p.signIn = cookieValue(resp, "gatehouse_sign_in"); p.signIn == "" || cookieValue(resp, "gatehouse_session") != "" {
		t.Fatal("the password step made a session, or no sign-in")
	}
	return p
}

// codeShot is the second step of p with code, from the address from.
func codeShot(t *testing.T, base, from string, p pendingSignIn, code string) volleyReq {
	return volleyReq{formRequest(t, base+"/admin/login/code", url.Values{"csrf": {p.csrf}, "code": {code}},
		"Cookie", "gatehouse_login_csrf="+p.loginCookie+"; gatehouse_sign_in="+p.signIn), from}
}

// codeOutcome names an answer of the second step.
func codeOutcome(r *servertest.Response) string {
	switch loc := r.Header.Get("Location"); {
	case r.Status == 303 && loc == "/admin" && strings.Contains(r.Header.Get("Set-Cookie")+strings.Join(r.Header.Values("Set-Cookie"), ";"), "gatehouse_session=gse_"):
		return "session"
	case r.Status == 401 && bytes.Contains(r.Body, []byte("That code is not right")):
		return "wrong"
	case r.Status == 429 && retryAfter(r) > 0:
		return "throttled"
	case r.Status == 303 && loc == "/admin/login?error=expired":
		return "expired"
	}
	return fmt.Sprintf("%d %s %.200s", r.Status, r.Header.Get("Location"), r.Body)
}

// TestTOTPSignInOnce: one code released together on many connections,
// each with a sign-in of its own from an address of its own, signs in
// exactly once; the code replayed, a code from two steps ago and guesses
// in parallel are refused, and the throttle holds them.
func TestTOTPSignInOnce(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	secret, codes := enrolTOTP(t, env, env.Login("ann@example.com", memberPW))

	const n = 16
	code := totpAt(secret, 1) // the next step: accepted now, once
	shots := make([]volleyReq, n)
	for i := range shots {
		from := loopback(i)
		shots[i] = codeShot(t, env.URL, from, startSignIn(t, env.URL, from, "ann@example.com", memberPW), code)
	}
	got := countOutcomes(volley(t, shots).resps, codeOutcome)
	if got["session"] != 1 || got["wrong"] != n-1 {
		t.Fatalf("one code on %d connections: %v", n, got)
	}

	// Replayed, and from two steps ago, on a fresh sign-in.
	p := startSignIn(t, env.URL, loopback(100), "ann@example.com", memberPW)
	for _, c := range []string{code, totpAt(secret, -2), totpAt(secret, 0)} {
		if o := codeOutcome(sendShot(t, codeShot(t, env.URL, loopback(100), p, c))); o != "wrong" {
			t.Fatalf("code %s after step +1 was used: %s", c, o)
		}
	}
	// A recovery code signs in once.
	if o := codeOutcome(sendShot(t, codeShot(t, env.URL, loopback(101), p, codes[0]))); o != "session" {
		t.Fatalf("recovery code: %s", o)
	}
	p = startSignIn(t, env.URL, loopback(102), "ann@example.com", memberPW)
	if o := codeOutcome(sendShot(t, codeShot(t, env.URL, loopback(102), p, codes[0]))); o != "wrong" {
		t.Fatalf("a used recovery code: %s", o)
	}
	// A finished sign-in cannot be used again.
	if o := codeOutcome(sendShot(t, codeShot(t, env.URL, loopback(101), p, codes[1]))); o != "session" {
		t.Fatalf("second recovery code: %s", o)
	}
	if o := codeOutcome(sendShot(t, codeShot(t, env.URL, loopback(101), p, codes[2]))); o != "expired" {
		t.Fatalf("a finished sign-in again: %s", o)
	}

	// Guesses in parallel from one address: the throttle checks at most
	// its per-address budget and refuses the rest, and then the right
	// code too, however many sign-ins they come with.
	const guesses = 24
	guess := make([]volleyReq, guesses)
	from := loopback(200)
	for i := range guess {
		guess[i] = codeShot(t, env.URL, from, startSignIn(t, env.URL, from, "ann@example.com", memberPW), fmt.Sprintf("%06d", (i*7919)%1000000))
	}
	spare := startSignIn(t, env.URL, from, "ann@example.com", memberPW)
	got = countOutcomes(volley(t, guess).resps, codeOutcome)
	if got["wrong"] > 5 || got["wrong"]+got["throttled"] != guesses {
		t.Fatalf("parallel guesses: %v", got)
	}
	if o := codeOutcome(sendShot(t, codeShot(t, env.URL, from, spare, codes[5]))); o != "throttled" {
		t.Fatalf("a right code after the guesses: %s", o)
	}
	// Nor does the right password start a fresh count: it is refused too.
	c := clientFrom(from, nil)
	csrfPage := must(c.Get(env.URL + "/admin/login"))
	body := readAll(csrfPage)
	resp := must(c.Do(formRequest(t, env.URL+"/admin/login", url.Values{"csrf": {between(body, `name="csrf" value="`, `"`)},
		"email": {"ann@example.com"}, "password": {memberPW}}, "Cookie", "gatehouse_login_csrf="+cookieValue(csrfPage, "gatehouse_login_csrf"))))
	readAll(resp)
	if resp.StatusCode != 429 {
		t.Fatalf("the password after the guesses: %d", resp.StatusCode)
	}
}

// sendShot sends one request from its address.
func sendShot(t *testing.T, s volleyReq) *servertest.Response {
	t.Helper()
	return volley(t, []volleyReq{s}).resps[0]
}

// TestSessionsAPI: a user lists their console sessions and ends one, which
// stops working at once; an admin lists and ends a user's sessions; other
// accounts' users are not found.
func TestSessionsAPI(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	annID := env.CreateUser(admin, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)
	c := clientFrom("127.0.0.1", nil)
	s1 := adminSessionCookieAs(t, c, env.URL, "ann@example.com", memberPW)
	s2 := adminSessionCookieAs(t, c, env.URL, "ann@example.com", memberPW)
	page := func(s *http.Cookie) int {
		req, _ := http.NewRequest("GET", env.URL+"/admin/me", nil)
		req.AddCookie(s)
		resp := must(c.Do(req))
		readAll(resp)
		return resp.StatusCode
	}
	if page(s1) != 200 || page(s2) != 200 {
		t.Fatal("sessions do not work")
	}
	var list struct {
		Data []struct {
			ID         string `json:"id"`
			ClientAddr string `json:"client_addr"`
			Current    bool   `json:"current"`
		} `json:"data"`
	}
	env.As(ann, "GET", "/v1/me/sessions", nil).JSON(t, &list)
	if len(list.Data) != 2 || list.Data[0].ClientAddr != "127.0.0.1" || list.Data[0].Current {
		t.Fatalf("sessions %+v", list)
	}
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/sessions/"+list.Data[0].ID, nil), 204, "")
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/sessions/"+list.Data[0].ID, nil), 404, "not_found")
	if page(s2) != 303 || page(s1) != 200 {
		t.Fatal("the ended session (the newest) still works, or the other one stopped")
	}
	// Another user's session id is not found through /v1/me.
	adminSession := adminSessionCookie(t, c, env.URL)
	var mine struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	env.As(admin, "GET", "/v1/me/sessions", nil).JSON(t, &mine)
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/sessions/"+mine.Data[0].ID, nil), 404, "not_found")
	if page(adminSession) != 200 {
		t.Fatal("ann ended the admin's session")
	}

	// The admin sees and ends ann's sessions; ann cannot end theirs.
	env.As(admin, "GET", "/v1/users/"+annID+"/sessions", nil).JSON(t, &list)
	if len(list.Data) != 1 {
		t.Fatalf("admin's view %+v", list)
	}
	adminID := env.As(admin, "GET", "/v1/me", nil).Map(t)["user"].(map[string]any)["id"].(string)
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/users/"+adminID+"/sessions", nil), 403, "forbidden")
	if m := env.As(admin, "DELETE", "/v1/users/"+annID+"/sessions", nil).Map(t); m["ended"] != 1.0 {
		t.Fatalf("ended %v", m)
	}
	if page(s1) != 303 {
		t.Fatal("a session the admin ended still works")
	}
	_, otherAdmin := env.CreateAccount(admin, "other", "boss@other.example", memberPW)
	servertest.Expect(t, env.As(otherAdmin, "DELETE", "/v1/users/"+annID+"/sessions", nil), 404, "not_found")
	servertest.Expect(t, env.As(otherAdmin, "GET", "/v1/users/"+annID+"/sessions", nil), 404, "not_found")
	if !strings.Contains(string(env.As(admin, "GET", "/v1/audit?limit=200", nil).Body), "user.session_end") {
		t.Fatal("ending a session is not audited")
	}
}

// TestResetMFAConsole: an admin sees a user's second factor on their page
// and resets it after a confirmation; the user then gets password-grant
// tokens again.
func TestResetMFAConsole(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	annID := env.CreateUser(admin, "ann@example.com", memberPW)
	enrolTOTP(t, env, env.Login("ann@example.com", memberPW))
	c := clientFrom("127.0.0.1", nil)
	session := adminSessionCookie(t, c, env.URL)
	do := func(method, path string, form url.Values) (int, string, string) {
		t.Helper()
		var req *http.Request
		if form == nil {
			req, _ = http.NewRequest(method, env.URL+path, nil)
		} else {
			req = formRequest(t, env.URL+path, form)
		}
		req.AddCookie(session)
		resp := must(c.Do(req))
		return resp.StatusCode, resp.Header.Get("Location"), readAll(resp)
	}
	st, _, page := do("GET", "/admin/users/"+annID, nil)
	if st != 200 || !strings.Contains(page, "Authenticator app on; 10 recovery codes left") {
		t.Fatalf("user page: %d", st)
	}
	csrf := between(page, `name="csrf" value="`, `"`)
	if st, loc, _ := do("POST", "/admin/users/"+annID+"/mfa/reset", url.Values{"csrf": {csrf}}); st != 303 || loc != "/admin/users/"+annID+"/mfa/reset" {
		t.Fatalf("unconfirmed reset: %d %s", st, loc)
	}
	if st, _, body := do("GET", "/admin/users/"+annID+"/mfa/reset", nil); st != 200 || !strings.Contains(body, "Reset the second factor of ann@example.com?") {
		t.Fatalf("confirmation: %d", st)
	}
	servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW}), 400, "invalid_grant")
	if st, loc, _ := do("POST", "/admin/users/"+annID+"/mfa/reset", url.Values{"csrf": {csrf}, "confirmed": {"yes"}}); st != 303 || loc != "/admin/users/"+annID {
		t.Fatalf("reset: %d %s", st, loc)
	}
	if _, _, page := do("GET", "/admin/users/"+annID, nil); !strings.Contains(page, "<p class=\"muted\">None.</p>") {
		t.Fatal("the page still shows a second factor")
	}
	env.Login("ann@example.com", memberPW)
	if !strings.Contains(string(env.As(admin, "GET", "/v1/audit?action=user.mfa_reset", nil).Body), annID) {
		t.Fatal("the reset is not audited")
	}
}

// TestTwoNodeSessionsAndCodes: on two processes sharing one PostgreSQL
// schema and one Redis, a console session ended through one node stops at
// once on the other, and a TOTP code accepted on one node is refused on
// the other.
func TestTwoNodeSessionsAndCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	rs := startRedis(t, "")
	dbURL := pgtest.Schema(t)
	a, b := startNode(t, dbURL, "redis://127.0.0.1:"+rs.port+"/0"), startNode(t, dbURL, "redis://127.0.0.1:"+rs.port+"/0")
	a.waitReady(t)
	b.waitReady(t)
	grant := func(p *process, email, pw string) string {
		t.Helper()
		st, out, _ := p.call("POST", "/authorization", "", map[string]string{"username": email, "password": pw})
		if st != 200 {
			t.Fatalf("password grant for %s: %d %v", email, st, out)
		}
		return out["access_token"].(string)
	}
	admin := grant(a, "admin@example.com", processAdminPassword)
	if st, _, _ := a.call("POST", "/v1/users", admin, map[string]any{"email": "ann@example.com", "password": memberPW}); st != 201 {
		t.Fatalf("create ann: %d", st)
	}
	ann := grant(a, "ann@example.com", memberPW)

	// A session begun on B, ended through A: B refuses it at once.
	c := clientFrom("127.0.0.1", nil)
	session := adminSessionCookieAs(t, c, b.url, "ann@example.com", memberPW)
	onB := func() int {
		req, _ := http.NewRequest("GET", b.url+"/admin/me", nil)
		req.AddCookie(session)
		resp := must(c.Do(req))
		readAll(resp)
		return resp.StatusCode
	}
	if onB() != 200 {
		t.Fatal("the session does not work on B")
	}
	_, list, _ := a.call("GET", "/v1/me/sessions", ann, nil)
	id := list["data"].([]any)[0].(map[string]any)["id"].(string)
	if st, _, _ := a.call("DELETE", "/v1/me/sessions/"+id, ann, nil); st != 204 {
		t.Fatalf("end the session: %d", st)
	}
	if st := onB(); st != 303 {
		t.Fatalf("the ended session on B: %d", st)
	}

	// TOTP enrolled on A, confirmed on B; a code used on A is refused on B.
	_, e, _ := a.call("POST", "/v1/me/mfa/totp", ann, nil)
	secret := e["secret"].(string)
	if st, _, _ := b.call("POST", "/v1/me/mfa/totp/confirm", ann, map[string]string{"code": totpAt(secret, 0)}); st != 200 {
		t.Fatalf("confirm on B: %d", st)
	}
	pa, pb := startSignIn(t, a.url, "127.0.0.1", "ann@example.com", memberPW), startSignIn(t, b.url, "127.0.0.1", "ann@example.com", memberPW)
	code := totpAt(secret, 1)
	if o := codeOutcome(sendShot(t, codeShot(t, a.url, "127.0.0.1", pa, code))); o != "session" {
		t.Fatalf("the code on A: %s", o)
	}
	if o := codeOutcome(sendShot(t, codeShot(t, b.url, "127.0.0.1", pb, code))); o != "wrong" {
		t.Fatalf("the same code on B: %s", o)
	}
}
