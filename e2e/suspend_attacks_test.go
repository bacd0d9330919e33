package e2e

import (
	"fmt"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// suspendWorld: the operator's account publishes a confidential and a
// public third-party application (its developer's); a second account,
// Bee, allows any application and has a plain member (appMember, so the
// device helpers sign in as them).
type suspendWorld struct {
	env                  *servertest.Env
	op, bAdmin, bAcc     string
	confidential, public thirdPartyApp
}

func newSuspendWorld(t *testing.T) *suspendWorld {
	t.Helper()
	env := servertest.Start(t)
	w := &suspendWorld{env: env}
	var devTok string
	w.op, _, devTok, _ = developer(t, env)
	w.confidential = registerApp(t, env, devTok, "confidential", []string{appRedirect}, []string{"workspaces:read", "workspaces:write"})
	w.public = registerApp(t, env, devTok, "public", []string{"http://127.0.0.1/callback"}, nil)
	w.bAcc, w.bAdmin = env.CreateAccount(w.op, "Bee", "badmin@bee.example", memberPW)
	servertest.Expect(t, env.As(w.bAdmin, "PUT", "/v1/settings", map[string]string{"third_party_apps": "any"}), 200, "")
	env.CreateUser(w.bAdmin, appMember, memberPW)
	return w
}

func (w *suspendWorld) setStatus(t *testing.T, status string) {
	t.Helper()
	servertest.Expect(t, w.env.As(w.op, "PATCH", "/v1/accounts/"+w.bAcc, map[string]string{"status": status}), 200, "")
}

// suspendedCodeExchange redeems code of the confidential application.
func suspendedCodeExchange(w *suspendWorld, code, verifier string) *servertest.Response {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "code_verifier": {verifier},
		"client_id": {w.confidential.ClientID}, "client_secret": {w.confidential.ClientSecret}}
	return w.env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// TestSuspendEndsCodeExchange: a user of Bee consents to an application
// (published by another account) and the browser carries the code back;
// the operator suspends Bee before the application redeems it. SPEC §9.2
// "suspended → every credential and session refused": the token endpoint
// must not issue the suspended account's user a new access and refresh
// token (the code is a credential of that account). Otherwise the pair,
// refused while suspended, works once the account is reactivated — minted
// while it was suspended. Control: the application's refresh token
// obtained before the suspension is refused.
func TestSuspendEndsCodeExchange(t *testing.T) {
	w := newSuspendWorld(t)
	env := w.env
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read")
	code := func() (string, string) {
		v := oauth2.GenerateVerifier()
		cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), appMember, memberPW, "allow")
		if cb == nil {
			t.Fatalf("no redirect to the application: %d %s", resp.StatusCode, body)
		}
		return cb.Query().Get("code"), v
	}
	// Before: a pair, to check the control.
	c0, v0 := code()
	r := suspendedCodeExchange(w, c0, v0)
	servertest.Expect(t, r, 200, "")
	before := r.Map(t)

	c1, v1 := code()
	w.setStatus(t, "suspended")
	servertest.Expect(t, env.As(before["access_token"].(string), "GET", "/v1/me", nil), 401, "")
	ref := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {before["refresh_token"].(string)},
		"client_id": {w.confidential.ClientID}, "client_secret": {w.confidential.ClientSecret}}
	if r := env.Request("POST", "/oauth/token", ref.Encode(), "Content-Type", "application/x-www-form-urlencoded"); r.Status == 200 {
		t.Errorf("refresh of a suspended account's application token: %d %s", r.Status, r.Body)
	}

	r = suspendedCodeExchange(w, c1, v1)
	servertest.Expect(t, r, 400, "invalid_grant")
	if r.Status == 200 {
		t.Errorf("the token endpoint issued tokens to a suspended account's user for a code: %d %s", r.Status, r.Body)
		during := r.Map(t)
		w.setStatus(t, "active")
		if st := env.As(during["access_token"].(string), "GET", "/v1/me", nil).Status; st == 200 {
			t.Errorf("after reactivation, the access token minted while the account was suspended works")
		}
	}
}

// TestSuspendEndsDevicePoll: a user of Bee approves a device (a CLI of an
// application published by another account); the operator suspends Bee
// before the device polls. The poll must not hand out tokens for the
// suspended account's user (SPEC §9.2; docs/third-party-apps.md: a
// device's approval "issues no tokens" rather than tokens refused at
// their first use when the grant no longer holds).
func TestSuspendEndsDevicePoll(t *testing.T) {
	w := newSuspendWorld(t)
	env := w.env
	r := startDevice(env, w.public.ClientID, "workspaces:read")
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	if resp, body := newUserAgent(t, env.URL).enterCode(m["user_code"].(string), "allow"); resp.StatusCode != 200 {
		t.Fatalf("allow: %d %s", resp.StatusCode, body)
	}
	w.setStatus(t, "suspended")
	r = poll(t, env, w.public, m["device_code"].(string))
	servertest.Expect(t, r, 400, "access_denied")
	if r.Status == 200 {
		t.Errorf("the device poll issued tokens to a suspended account's user: %d %s", r.Status, r.Body)
		during := r.Map(t)
		w.setStatus(t, "active")
		if st := env.As(during["access_token"].(string), "GET", "/v1/me", nil).Status; st == 200 {
			t.Errorf("after reactivation, the access token minted while the account was suspended works")
		}
	}
}

// TestSuspendVsInFlightWrites: the operator's suspension of Bee
// released together with Bee's admin's writes (settings, a user, a
// workspace, the API tokens extension, an API token). SPEC §9.2:
// "suspended → every credential and session refused" and §10 "every
// promise held under concurrency": once the suspension has committed,
// nothing of the account acts — no write by its admin may commit after
// it (as a disabled user's in-flight writes are refused:
// TestConflictUserOffVsGrants / actedAfter). Bee's audit log (read after
// reactivating) must show no change by its admin after the suspension.
func TestSuspendVsInFlightWrites(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	const rounds = 6
	for round := range rounds {
		email := fmt.Sprintf("boss%d@susp.example", round)
		accID, boss := env.CreateAccount(op, fmt.Sprintf("susp%d", round), email, memberPW)
		unlimit(t, env, boss)
		bossID := meID(t, env, boss)
		var shots []volleyReq
		add := func(method, path, body string) {
			shots = append(shots, volleyReq{req: asRequest(t, env, boss, method, path, body)})
		}
		for i := range 3 {
			add("PUT", "/v1/settings", fmt.Sprintf(`{"custom_scopes":["susp:s%d"]}`, i))
			add("POST", "/v1/users", fmt.Sprintf(`{"email":"u%d-%d@susp.example","name":"n","password":%q,"roles":[]}`, round, i, memberPW))
			add("POST", "/v1/workspaces", fmt.Sprintf(`{"name":"w%d","description":"d"}`, i))
		}
		add("PUT", "/v1/extensions/api_tokens", `{"enabled":true}`)
		at := round * len(shots) / rounds
		shots = insertShot(shots, at, volleyReq{req: asRequest(t, env, op, "PATCH", "/v1/accounts/"+accID, `{"status":"suspended"}`)})
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, shotName(shots))
		if s := res.resps[at]; s.Status != 200 {
			t.Fatalf("round %d: suspension: %d %s", round, s.Status, s.Body)
		}
		servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+accID, map[string]string{"status": "active"}), 200, "")
		var susp *gatehouse.AuditEntry
		entries := auditWhere(t, env, boss, "action=account.update")
		for i := range entries {
			if entries[i].Details["status"] == "suspended" {
				susp = &entries[i]
			}
		}
		if susp == nil {
			t.Fatalf("round %d: no suspension in the account's audit log", round)
		}
		for _, e := range auditWhere(t, env, boss, "actor="+bossID) {
			if e.CreatedAt.After(susp.CreatedAt) {
				t.Errorf("round %d: %s by the suspended account's admin at %s, after the suspension at %s", round, e.Action,
					e.CreatedAt.Format("15:04:05.000000"), susp.CreatedAt.Format("15:04:05.000000"))
			}
		}
	}
}

// TestSuspendEveryWayInThroughGateway: each of Bee's ways in, used (and
// so cached) through the gateway before the suspension, is refused
// through the gateway, forward auth, introspection (Bee's credential
// introspecting its own token) and the usage API once it has answered;
// a leaked API token revoked by possession while suspended stays dead
// after reactivation, while everything else comes back (docs/design.md:
// "until it is reactivated, when whatever has not expired works again").
func TestSuspendEveryWayInThroughGateway(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	op := env.AdminToken()
	bAcc, bAdmin := env.CreateAccount(op, "Bee", "badmin@bee.example", memberPW)
	key := withAPIToken(t, env, bAdmin)
	r := env.As(bAdmin, "POST", "/v1/api-tokens", map[string]string{"name": "leaky"})
	servertest.Expect(t, r, 201, "")
	leaky := r.Map(t)["token"].(string)
	devID := env.CreateUser(bAdmin, "bdev@bee.example", memberPW)
	servertest.Expect(t, env.As(bAdmin, "PUT", "/v1/developers/"+devID, nil), 204, "")
	dev := env.Login("bdev@bee.example", memberPW)
	var cred credential
	r = env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "ci"})
	servertest.Expect(t, r, 201, "")
	r.JSON(t, &cred)
	cc := accessToken(t, clientToken(env, cred))
	aa := enableAPIAccess(t, env, bAdmin, nil)

	ways := map[string][]string{
		"password token":     {"Authorization", "Bearer " + bAdmin},
		"developer token":    {"Authorization", "Bearer " + dev},
		"API token":          {"X-API-Token", key.Token},
		"API token act-as":   {"X-API-Token", key.Token, "X-User-Email", "bdev@bee.example"},
		"client creds token": {"Authorization", "Bearer " + cc},
		"API access token":   {"Authorization", "Bearer " + aa.AccessToken},
		"leaky API token":    {"X-API-Token", leaky},
	}
	check := func(step string, want int, except string) {
		t.Helper()
		for name, h := range ways {
			w := want
			if name == except {
				w = 401
			}
			if r := env.Request("GET", "/orders/1", nil, h...); r.Status != w {
				t.Errorf("%s: gateway with %s: %d %s, want %d", step, name, r.Status, r.Body, w)
			}
			if r := env.Request("GET", "/v1/auth/check", nil, h...); r.Status != w {
				t.Errorf("%s: forward auth with %s: %d %s, want %d", step, name, r.Status, r.Body, w)
			}
			if r := env.Request("GET", "/v1/me", nil, h...); r.Status != w {
				t.Errorf("%s: /v1/me with %s: %d %s, want %d", step, name, r.Status, r.Body, w)
			}
		}
	}
	check("active", 200, "")
	introspect := func() *servertest.Response {
		form := url.Values{"token": {cc}, "client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}}
		return env.Request("POST", "/oauth/introspect", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}
	if r := introspect(); r.Status != 200 || r.Map(t)["active"] != true {
		t.Fatalf("introspection while active: %d %s", r.Status, r.Body)
	}
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bAcc, map[string]string{"status": "suspended"}), 200, "")
	check("suspended", 401, "")
	if r := introspect(); r.Status == 200 {
		t.Errorf("introspection by a suspended account's credential: %d %s", r.Status, r.Body)
	}
	if r := env.As(bAdmin, "GET", "/v1/usage", nil); r.Status != 401 {
		t.Errorf("usage API of a suspended account: %d %s", r.Status, r.Body)
	}
	if r := refresh(env, aa.ClientID, aa.RefreshToken); r.Status == 200 {
		t.Errorf("API access refresh while suspended: %d %s", r.Status, r.Body)
	}
	// Found leaked while suspended: revoked for good.
	servertest.Expect(t, env.Request("POST", "/v1/credentials/revoke", map[string]any{"credentials": []string{leaky}}), 202, "")
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bAcc, map[string]string{"status": "active"}), 200, "")
	check("reactivated", 200, "leaky API token")
}

// TestSuspendOnlyTheOperator: nobody but the operator changes an
// account's status or name: not the account's own admin (while active, or
// suspended trying to lift it), not a non-operator admin of the
// operator's account, not an API token acting as the operator; a bad
// status is 400; the operator's own account cannot be suspended, even
// with a rename in the same request.
func TestSuspendOnlyTheOperator(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	opAcc := env.As(op, "GET", "/v1/me", nil).Map(t)["account"].(map[string]any)["id"].(string)
	bAcc, bAdmin := env.CreateAccount(op, "Bee", "badmin@bee.example", memberPW)
	env.CreateUser(op, "admin2@example.com", memberPW, "admin")
	admin2 := env.Login("admin2@example.com", memberPW)
	key := withAPIToken(t, env, op)

	for _, body := range []map[string]any{{"name": "Mine now"}, {"status": "suspended"}, {"status": "active"}, {"platform_scopes": []string{}}} {
		if r := env.As(bAdmin, "PATCH", "/v1/accounts/"+bAcc, body); r.Status != 403 {
			t.Errorf("Bee's admin PATCH own account %v: %d %s", body, r.Status, r.Body)
		}
		if r := env.As(admin2, "PATCH", "/v1/accounts/"+bAcc, body); r.Status != 403 {
			t.Errorf("a non-operator admin of the operator's account PATCH %v: %d %s", body, r.Status, r.Body)
		}
		if r := env.Request("PATCH", "/v1/accounts/"+bAcc, body, "X-API-Token", key.Token, "X-User-Email", servertest.AdminEmail); r.Status != 403 {
			t.Errorf("an API token acting as the operator PATCH %v: %d %s", body, r.Status, r.Body)
		}
		if r := env.As(admin2, "PATCH", "/v1/accounts/"+opAcc, body); r.Status != 403 {
			t.Errorf("a non-operator admin PATCH the operator's account %v: %d %s", body, r.Status, r.Body)
		}
	}
	if r := env.As(bAdmin, "PUT", "/v1/settings", map[string]any{"status": "active"}); r.Status == 200 {
		if st := env.As(op, "GET", "/v1/accounts/"+bAcc, nil).Map(t)["status"]; st != "active" {
			t.Errorf("settings changed the status: %v", st)
		}
	}
	for _, st := range []string{"SUSPENDED", "disabled", "", " suspended"} {
		if r := env.As(op, "PATCH", "/v1/accounts/"+bAcc, map[string]any{"status": st}); r.Status != 400 {
			t.Errorf("status %q: %d %s", st, r.Status, r.Body)
		}
	}
	if r := env.As(op, "PATCH", "/v1/accounts/"+opAcc, map[string]any{"status": "suspended", "name": "renamed"}); r.Status != 409 {
		t.Errorf("suspending the operator's account: %d %s", r.Status, r.Body)
	}
	if got := env.As(op, "GET", "/v1/accounts/"+opAcc, nil).Map(t); got["status"] != "active" || got["name"] != "default" {
		t.Errorf("the operator's account after a refused suspension: %v", got)
	}
	// Suspended, Bee's admin cannot lift it.
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bAcc, map[string]string{"status": "suspended"}), 200, "")
	if r := env.As(bAdmin, "PATCH", "/v1/accounts/"+bAcc, map[string]string{"status": "active"}); r.Status != 401 {
		t.Errorf("suspended admin lifts the suspension: %d %s", r.Status, r.Body)
	}
	if st := env.As(op, "GET", "/v1/accounts/"+bAcc, nil).Map(t)["status"]; st != "suspended" {
		t.Errorf("status now %v", st)
	}
}

// TestSuspendReactivationKeepsRevocations: while Bee is suspended the
// operator deletes one of its users and renames it; reactivation brings
// back the others' tokens but not the deleted user's, and the rename
// alone does not lift the suspension.
func TestSuspendReactivationKeepsRevocations(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	bAcc, bAdmin := env.CreateAccount(op, "Bee", "badmin@bee.example", memberPW)
	goneID := env.CreateUser(bAdmin, "gone@bee.example", memberPW, "admin")
	gone := env.Login("gone@bee.example", memberPW)
	goneAA := enableAPIAccess(t, env, gone, nil)
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bAcc, map[string]string{"status": "suspended"}), 200, "")
	servertest.Expect(t, env.As(op, "DELETE", "/v1/accounts/"+bAcc+"/users/"+goneID, nil), 204, "")
	r := env.As(op, "PATCH", "/v1/accounts/"+bAcc, map[string]string{"name": "Bee renamed"})
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["status"] != "suspended" {
		t.Fatalf("rename changed the status: %s", r.Body)
	}
	servertest.Expect(t, env.As(bAdmin, "GET", "/v1/me", nil), 401, "")
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bAcc, map[string]string{"status": "active"}), 200, "")
	servertest.Expect(t, env.As(bAdmin, "GET", "/v1/me", nil), 200, "")
	for name, tok := range map[string]string{"password": gone, "api access": goneAA.AccessToken} {
		if r := env.As(tok, "GET", "/v1/me", nil); r.Status != 401 {
			t.Errorf("deleted user's %s token after reactivation: %d %s", name, r.Status, r.Body)
		}
	}
	if r := refresh(env, goneAA.ClientID, goneAA.RefreshToken); r.Status == 200 {
		t.Errorf("deleted user's refresh after reactivation: %d %s", r.Status, r.Body)
	}
}

// TestSuspendEndsSecondFactorStep: a Bee user with TOTP passed the password
// step before the suspension; neither a TOTP code nor a recovery code
// finishes the sign-in once Bee is suspended, and a new password step is
// refused.
func TestSuspendEndsSecondFactorStep(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	bAcc, bAdmin := env.CreateAccount(op, "Bee", "badmin@bee.example", memberPW)
	env.CreateUser(bAdmin, "mfa@bee.example", memberPW)
	secret, codes := enrolTOTP(t, env, env.Login("mfa@bee.example", memberPW))
	p1 := startSignIn(t, env.URL, "127.0.0.1", "mfa@bee.example", memberPW)
	p2 := startSignIn(t, env.URL, "127.0.0.1", "mfa@bee.example", memberPW)
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bAcc, map[string]string{"status": "suspended"}), 200, "")
	if o := codeOutcome(sendShot(t, codeShot(t, env.URL, "127.0.0.1", p1, totpAt(secret, 1)))); o == "session" {
		t.Errorf("TOTP step of a suspended account's user made a session")
	}
	if o := codeOutcome(sendShot(t, codeShot(t, env.URL, "127.0.0.1", p2, codes[0]))); o == "session" {
		t.Errorf("recovery code of a suspended account's user made a session")
	}
	c := clientFrom("127.0.0.1", nil)
	resp := must(c.Get(env.URL + "/admin/login"))
	body := readAll(resp)
	req := formRequest(t, env.URL+"/admin/login", url.Values{"csrf": {between(body, `name="csrf" value="`, `"`)}, "email": {"mfa@bee.example"}, "password": {memberPW}},
		"Cookie", "gatehouse_login_csrf="+cookieValue(resp, "gatehouse_login_csrf"))
	resp = must(c.Do(req))
	readAll(resp)
	if resp.StatusCode == 303 {
		t.Errorf("password step of a suspended account's user: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
