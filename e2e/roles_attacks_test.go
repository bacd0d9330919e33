package e2e

import (
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/oidcprovider"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// Attacks on the privilege boundaries by role and by credential kind
// (the "Roles" review): who may act on what, through which path.

// scopedAPIToken turns the API tokens extension on and makes a token
// limited to scopes, returning its secret.
func scopedAPIToken(t *testing.T, env *servertest.Env, admin string, name string, body map[string]any) string {
	t.Helper()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	b := map[string]any{"name": name}
	for k, v := range body {
		b[k] = v
	}
	r := env.As(admin, "POST", "/v1/api-tokens", b)
	servertest.Expect(t, r, 201, "")
	return r.Map(t)["token"].(string)
}

// sendWithAPIToken sends a request with an API token (and, if given, the act-as
// header).
func sendWithAPIToken(env *servertest.Env, tok, actAs, method, path string, body any) *servertest.Response {
	h := []string{"X-API-Token", tok}
	if actAs != "" {
		h = append(h, "X-User-Email", actAs)
	}
	return env.Request(method, path, body, h...)
}

// TestNarrowTokenTakesNoAppOver: SPEC §10.5 names OAuth applications
// among "every credential kind", and §10.8 says creating, rolling,
// updating or deleting a credential through the API needs the caller's
// effective scopes to cover the target's. An API token limited to
// credentials:write (nothing else) nevertheless rewrites the redirect
// URIs of a developer's unrestricted application and rolls its secret.
// Because consent is remembered per client id, the next visit of a user
// who authorised the application — here the operator — sends a code to
// the new redirect URI without a consent page, and the new secret turns
// it into a token with every scope the operator holds (accounts:write
// included): a credentials:write token reaches settings:write and the
// operator's account management.
func TestNarrowTokenTakesNoAppOver(t *testing.T) {
	env := servertest.Start(t)
	op, _, devTok, _ := developer(t, env)
	app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, nil)

	// The operator authorises the application once (consent remembered).
	conf := oauthConfig(env, app, appRedirect)
	v := oauth2.GenerateVerifier()
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(v)), servertest.AdminEmail, servertest.AdminPassword, "allow")
	if cb == nil {
		t.Fatalf("no code: %d %s", resp.StatusCode, body)
	}

	narrow := scopedAPIToken(t, env, op, "ci", map[string]any{"scopes": []string{"credentials:write"}})
	evil := "https://evil.example.net/cb"
	servertest.Expect(t, sendWithAPIToken(env, narrow, "", "PATCH", "/v1/apps/"+app.ID, map[string]any{"redirect_uris": []string{evil}}), 403, "forbidden")
	servertest.Expect(t, sendWithAPIToken(env, narrow, "", "POST", "/v1/apps/"+app.ID+"/roll", map[string]any{"overlap_seconds": 0}), 403, "forbidden")
	servertest.Expect(t, sendWithAPIToken(env, narrow, "", "DELETE", "/v1/apps/"+app.ID, nil), 403, "forbidden")
	// Acting as the owner, the token is still narrower than what the
	// application's tokens may do as them.
	servertest.Expect(t, sendWithAPIToken(env, narrow, "dev@example.com", "PATCH", "/v1/apps/"+app.ID, map[string]any{"redirect_uris": []string{evil}}), 403, "forbidden")
	// The owner's own sign-in changes it.
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"redirect_uris": []string{appRedirect, "https://app.example.com/cb2"}}), 200, "")
}

// TestAdminTakesNoAppOver: the same path for a plain
// admin of the operator's account, with their own sign-in. Only the
// operator may act as the operator (SPEC §9.3; docs/security.md "Only
// the operator may change the operator … authorisations of
// applications"), yet an admin may rewrite the redirect URIs and roll the
// secret of an application the operator authorised, and the operator's
// next visit (no consent page: consent is remembered by client id) hands
// the admin a token with accounts:write.
func TestAdminTakesNoAppOver(t *testing.T) {
	env := servertest.Start(t)
	op, _, devTok, _ := developer(t, env)
	app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, nil)
	conf := oauthConfig(env, app, appRedirect)
	v := oauth2.GenerateVerifier()
	if cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(v)), servertest.AdminEmail, servertest.AdminPassword, "allow"); cb == nil {
		t.Fatalf("no code: %d %s", resp.StatusCode, body)
	}
	env.CreateUser(op, "eve@example.com", memberPW, "admin")
	eve := env.Login("eve@example.com", memberPW)
	evil := "https://evil.example.net/cb"
	servertest.Expect(t, env.As(eve, "PATCH", "/v1/apps/"+app.ID, map[string]any{"redirect_uris": []string{evil}}), 403, "forbidden")
	servertest.Expect(t, env.As(eve, "POST", "/v1/apps/"+app.ID+"/roll", map[string]any{"overlap_seconds": 0}), 403, "forbidden")
	// The operator's next visit still goes where the owner said, and an
	// admin still names, plans and deletes the application.
	conf = oauthConfig(env, app, appRedirect)
	v = oauth2.GenerateVerifier()
	if cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(v)), servertest.AdminEmail, servertest.AdminPassword, ""); cb == nil || cb.Host != "app.example.com" && !strings.HasPrefix(cb.String(), appRedirect) {
		t.Fatalf("the operator's remembered consent: %v %d %.200s", cb, resp.StatusCode, body)
	}
	servertest.Expect(t, env.As(eve, "PATCH", "/v1/apps/"+app.ID, map[string]any{"name": "Renamed by an admin"}), 200, "")
	servertest.Expect(t, env.As(eve, "DELETE", "/v1/apps/"+app.ID, nil), 204, "")
}

// TestRevokeAllCredentialsNeedsReach: SPEC §10.8 "deleting a
// credential through the API requires the caller's effective scopes to
// cover the target's scopes and the expires_at of the caller's own
// credential not to be earlier than the target's". DELETE
// /v1/credentials/{id} keeps that rule; the other two paths that delete
// a developer's client credentials do not: DELETE
// /v1/developers/{id}?revoke_credentials=true with an expiring
// credentials:write token, and PATCH /v1/users/{id}
// {"roles":[],"revoke_credentials":true} with a token that holds
// users:write and no credentials scope at all.
func TestRevokeAllCredentialsNeedsReach(t *testing.T) {
	for _, path := range []string{"developers", "users"} {
		t.Run(path, func(t *testing.T) {
			env := servertest.Start(t)
			admin, devID, _, c := developer(t, env)
			body := map[string]any{"scopes": []string{"credentials:write"}, "expires_at": "2099-01-01T00:00:00Z"}
			if path == "users" {
				body = map[string]any{"scopes": []string{"users:write"}}
			}
			narrow := scopedAPIToken(t, env, admin, "narrow", body)
			// The direct path is refused (the rule holds there).
			r := sendWithAPIToken(env, narrow, "", "DELETE", "/v1/credentials/"+c.ID, nil)
			if r.Status != 403 {
				t.Fatalf("DELETE /v1/credentials/{id} with the narrow token: %d %s", r.Status, r.Body)
			}
			if path == "developers" {
				r = sendWithAPIToken(env, narrow, "", "DELETE", "/v1/developers/"+devID+"?revoke_credentials=true", nil)
			} else {
				r = sendWithAPIToken(env, narrow, "", "PATCH", "/v1/users/"+devID, map[string]any{"roles": []string{}, "revoke_credentials": true})
			}
			servertest.Expect(t, r, 403, "forbidden")
			if tr := clientToken(env, c); tr.Status != 200 {
				t.Errorf("a %v API token deleted an unrestricted, never-expiring client credential through /v1/%s (the direct DELETE is 403): token grant now %d %s",
					body, path, tr.Status, tr.Body)
			}
		})
	}
}

// roleWorld is one account with an admin (the operator), a second
// admin, a developer (with a credential and an application), a member,
// an unrestricted API token, a webhook, a workspace, and the ids of all.
type roleWorld struct {
	env                             *servertest.Env
	op, admin2, dev, member         string // password-grant tokens
	opID, admin2ID, devID, memberID string
	apiTok                          string
	apiTokID, credID, appID, appCl  string
	hookID, wsID                    string
	devCC                           string // the developer's client-credentials token
}

func newRoleWorld(t *testing.T) *roleWorld {
	t.Helper()
	env := servertest.Start(t, insecureWebhooks)
	w := &roleWorld{env: env, op: env.AdminToken()}
	w.opID = meID(t, env, w.op)
	servertest.Expect(t, env.As(w.op, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 1000000}}), 200, "")
	w.admin2ID = env.CreateUser(w.op, "admin2@example.com", memberPW, "admin")
	w.devID = env.CreateUser(w.op, "dev@example.com", memberPW, "developer")
	w.memberID = env.CreateUser(w.op, "member@example.com", memberPW)
	w.admin2 = env.Login("admin2@example.com", memberPW)
	w.dev = env.Login("dev@example.com", memberPW)
	w.member = env.Login("member@example.com", memberPW)
	r := env.As(w.dev, "POST", "/v1/credentials", map[string]any{"name": "devcred"})
	servertest.Expect(t, r, 201, "")
	var c credential
	r.JSON(t, &c)
	w.credID = c.ID
	w.devCC = accessToken(t, clientToken(env, c))
	a := registerApp(t, env, w.dev, "confidential", []string{appRedirect}, nil)
	w.appID, w.appCl = a.ID, a.ClientID
	servertest.Expect(t, env.As(w.op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r = env.As(w.op, "POST", "/v1/api-tokens", map[string]string{"name": "root"})
	servertest.Expect(t, r, 201, "")
	w.apiTok, w.apiTokID = r.Map(t)["token"].(string), r.Map(t)["id"].(string)
	rc := newReceiver(t, nil)
	r = env.As(w.op, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"user.*"}})
	servertest.Expect(t, r, 201, "")
	w.hookID = r.Map(t)["id"].(string)
	r = env.As(w.op, "POST", "/v1/workspaces", map[string]any{"name": "ops"})
	servertest.Expect(t, r, 201, "")
	w.wsID = r.Map(t)["id"].(string)
	return w
}

// fill puts the world's ids in an API route: users' routes name the
// second admin (someone else), credentials and applications the
// developer's.
func (w *roleWorld) fill(path string) string {
	id := "x"
	for kind, v := range map[string]string{"users": w.admin2ID, "developers": w.memberID, "credentials": w.credID,
		"api-tokens": w.apiTokID, "apps": w.appID, "webhooks": w.hookID, "accounts": "acc_x", "workspaces": w.wsID} {
		if strings.HasPrefix(path, "/v1/"+kind+"/") {
			id = v
		}
	}
	for from, to := range map[string]string{"{user_id}": w.admin2ID, "{id}": id, "{client_id}": w.appCl, "{delivery_id}": "x"} {
		path = strings.ReplaceAll(path, from, to)
	}
	if strings.HasPrefix(path, "/v1/developers/") {
		path = "/v1/developers/" + w.memberID
	}
	return path
}

var bodySeq int

// acceptableBody is a body that would be accepted on the route.
func acceptableBody(method, path string) any {
	bodySeq++
	n := "n" + string(rune('a'+bodySeq%26)) + string(rune('a'+(bodySeq/26)%26))
	switch {
	case method == "GET" || method == "DELETE":
		return nil
	case strings.HasSuffix(path, "/roll") || strings.HasSuffix(path, "/roll-secret"):
		return map[string]any{"overlap_seconds": 0}
	case strings.HasSuffix(path, "/approval") || strings.HasSuffix(path, "/test") || strings.HasSuffix(path, "/redeliver") ||
		strings.Contains(path, "/members/") || strings.HasPrefix(path, "/v1/developers/"):
		return nil
	case path == "/v1/users":
		return map[string]any{"email": "new" + n + "@example.com", "name": "n", "roles": []string{"admin"}}
	case strings.HasPrefix(path, "/v1/users/"):
		return map[string]any{"roles": []string{}}
	case path == "/v1/settings":
		return map[string]any{"rate_limit": map[string]any{"burst": 1000000}}
	case path == "/v1/extensions/api_tokens":
		return map[string]any{"enabled": false}
	case path == "/v1/accounts":
		return map[string]any{"name": "acc" + n, "admin_email": "boss" + n + "@x.example", "admin_password": memberPW}
	case strings.HasPrefix(path, "/v1/accounts/"):
		return map[string]any{"status": "suspended"}
	case path == "/v1/webhooks":
		return map[string]any{"url": "http://127.0.0.1:9/in", "events": []string{"*"}}
	case strings.HasPrefix(path, "/v1/webhooks/"):
		return map[string]any{"enabled": false}
	case path == "/v1/api-access" && method == "PATCH":
		return map[string]any{"access_token_ttl_days": 3}
	case path == "/v1/api-access":
		return map[string]any{}
	case path == "/v1/apps":
		return map[string]any{"name": "App " + n, "type": "public", "redirect_uris": []string{"http://127.0.0.1/cb"}}
	case strings.HasPrefix(path, "/v1/apps/"):
		return map[string]any{"redirect_uris": []string{"https://evil.example/cb"}}
	case strings.HasPrefix(path, "/v1/credentials/") || strings.HasPrefix(path, "/v1/api-tokens/"):
		return map[string]any{"enabled": false}
	case path == "/v1/workspaces":
		return map[string]any{"name": "ws" + n}
	}
	return map[string]any{"name": "n" + n}
}

// TestRoleMatrix: every route of the API, sent by each principal that
// should not be able to use it (by role, by credential kind, by
// credential scopes), with a body the route would accept. Each answer
// must be a refusal.
func TestRoleMatrix(t *testing.T) {
	w := newRoleWorld(t)
	env := w.env
	readScopes := []string{"workspaces:read", "users:read", "credentials:read", "settings:read", "audit:read", "webhooks:read", "usage:read"}
	readTok := scopedAPIToken(t, env, w.op, "reader", map[string]any{"scopes": readScopes})
	// What each principal may use (prefix match on "METHOD path");
	// everything else must be refused.
	memberOK := []string{"GET /v1/me", "GET /v1/users", "GET /v1/users/{id}", "GET /v1/workspaces", "POST /v1/workspaces",
		"GET /v1/metadata/workspace", "DELETE /v1/me", "POST /v1/me", "PATCH /v1/me", "GET /v1/users/{id}/authorizations", "GET /v1/users/{id}/sessions"}
	devOK := append([]string{"POST /v1/credentials", "GET /v1/credentials", "PATCH /v1/credentials/", "POST /v1/credentials/", "DELETE /v1/credentials/",
		"POST /v1/apps", "GET /v1/apps", "GET /v1/apps/{id}", "PATCH /v1/apps/{id}", "POST /v1/apps/{id}/roll", "DELETE /v1/apps/{id}"}, memberOK...)
	type principal struct {
		name string
		ok   []string
		send func(method, path string, body any) *servertest.Response
	}
	bearer := func(tok string) func(string, string, any) *servertest.Response {
		return func(m, p string, b any) *servertest.Response { return env.As(tok, m, p, b) }
	}
	actAs := func(email string) func(string, string, any) *servertest.Response {
		return func(m, p string, b any) *servertest.Response { return sendWithAPIToken(env, w.apiTok, email, m, p, b) }
	}
	ps := []principal{
		{"member", memberOK, bearer(w.member)},
		{"api token as member", memberOK, actAs("member@example.com")},
		{"api token as MEMBER (case)", memberOK, actAs("  MEMBER@example.com ")},
		{"developer", devOK, bearer(w.dev)},
		{"api token as developer", devOK, actAs("dev@example.com")},
		{"developer client credential", devOK, bearer(w.devCC)},
		{"read-only admin api token", []string{"GET "}, func(m, p string, b any) *servertest.Response { return sendWithAPIToken(env, readTok, "", m, p, b) }},
	}
	allowed := func(ok []string, method, pattern string) bool {
		for _, o := range ok {
			om, op, _ := strings.Cut(o, " ")
			if om != method && om != "" {
				continue
			}
			if op == "" || op == pattern || (strings.HasSuffix(op, "/") && strings.HasPrefix(pattern, op)) ||
				(op == "/v1/me" && strings.HasPrefix(pattern, "/v1/me")) {
				return true
			}
		}
		return false
	}
	for _, p := range ps {
		for _, rt := range apiRoutesOfSpec() {
			method, pattern := rt[0], rt[1]
			if strings.HasPrefix(pattern, "/v1/me") || allowed(p.ok, method, pattern) {
				continue
			}
			path := w.fill(pattern)
			r := p.send(method, path, acceptableBody(method, pattern))
			if r.Status < 400 {
				t.Errorf("%s: %s %s -> %d %.200s", p.name, method, path, r.Status, r.Body)
			}
		}
	}
	// Nothing of the operator's world moved.
	st := stateOf(t, env, w.op, w.admin2ID)
	if st.Status != "active" || len(st.Roles) != 1 {
		t.Errorf("admin2 changed: %+v", st)
	}
	servertest.Expect(t, env.As(w.op, "GET", "/v1/settings", nil), 200, "")
}

// apiRoutesOfSpec lists the API's routes as method, pattern pairs.
func apiRoutesOfSpec() [][2]string {
	var out [][2]string
	for _, p := range apiPatterns() {
		m, path, _ := strings.Cut(p, " ")
		out = append(out, [2]string{m, path})
	}
	return out
}

// TestRoleChangesReachCachedPrincipals: a role change, a disable and a deletion
// hold on the very next request of a principal the server has cached —
// an API token acting as the user, the user's own token, a developer's
// client-credentials token.
func TestRoleChangesReachCachedPrincipals(t *testing.T) {
	w := newRoleWorld(t)
	env := w.env
	warm := func(f func() *servertest.Response, want int) {
		t.Helper()
		for range 5 {
			if r := f(); r.Status != want {
				t.Fatalf("warm-up: %d %s", r.Status, r.Body)
			}
		}
	}
	asAdmin2 := func() *servertest.Response {
		return sendWithAPIToken(env, w.apiTok, "admin2@example.com", "GET", "/v1/settings", nil)
	}
	admin2Own := func() *servertest.Response { return env.As(w.admin2, "GET", "/v1/settings", nil) }
	warm(asAdmin2, 200)
	warm(admin2Own, 200)
	servertest.Expect(t, env.As(w.op, "PATCH", "/v1/users/"+w.admin2ID, map[string]any{"roles": []string{}}), 200, "")
	if r := asAdmin2(); r.Status != 403 {
		t.Errorf("API token acting as a demoted admin: %d %s", r.Status, r.Body)
	}
	if r := admin2Own(); r.Status != 403 {
		t.Errorf("demoted admin's own token: %d %s", r.Status, r.Body)
	}
	servertest.Expect(t, env.As(w.op, "PATCH", "/v1/users/"+w.admin2ID, map[string]any{"roles": []string{"admin"}}), 200, "")
	warm(asAdmin2, 200)
	servertest.Expect(t, env.As(w.op, "PATCH", "/v1/users/"+w.admin2ID, map[string]any{"status": "disabled"}), 200, "")
	servertest.Expect(t, asAdmin2(), 403, "invalid_user")
	servertest.Expect(t, admin2Own(), 401, "invalid_token")
	servertest.Expect(t, env.As(w.op, "PATCH", "/v1/users/"+w.admin2ID, map[string]any{"status": "active"}), 200, "")
	warm(asAdmin2, 200)
	servertest.Expect(t, env.As(w.op, "DELETE", "/v1/users/"+w.admin2ID, nil), 204, "")
	servertest.Expect(t, asAdmin2(), 403, "invalid_user")

	// The developer: their own token and client credential narrow at once.
	devOwn := func() *servertest.Response { return env.As(w.dev, "GET", "/v1/credentials", nil) }
	devCC := func() *servertest.Response { return env.As(w.devCC, "GET", "/v1/credentials", nil) }
	asDev := func() *servertest.Response {
		return sendWithAPIToken(env, w.apiTok, "dev@example.com", "GET", "/v1/credentials", nil)
	}
	warm(devOwn, 200)
	warm(devCC, 200)
	warm(asDev, 200)
	servertest.Expect(t, env.As(w.op, "DELETE", "/v1/developers/"+w.devID, nil), 200, "")
	for name, f := range map[string]func() *servertest.Response{"own": devOwn, "client credential": devCC, "act-as": asDev} {
		if r := f(); r.Status != 403 {
			t.Errorf("%s token of a removed developer lists credentials: %d %s", name, r.Status, r.Body)
		}
	}
	// The client credential still works for what a member may do (SPEC §3.3).
	servertest.Expect(t, env.As(w.devCC, "GET", "/v1/workspaces", nil), 200, "")
	// Deleted: every kind is refused at once.
	servertest.Expect(t, env.As(w.op, "DELETE", "/v1/users/"+w.devID, nil), 204, "")
	servertest.Expect(t, env.As(w.devCC, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(w.dev, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	servertest.Expect(t, sendWithAPIToken(env, w.apiTok, "dev@example.com", "GET", "/v1/workspaces", nil), 403, "invalid_user")
}

// TestUsersWriteGivesNoAdmin: SPEC §9.1 "Effective access =
// credential scopes ∩ the owner's current permissions", and
// docs/scopes.md "nobody grants what they do not hold". An API token
// limited to users:write (no settings, credentials, audit or webhooks
// scope) creates a user with the admin role and a password, signs in as
// them, and holds every admin scope; or gives an existing member both in
// one PATCH (the "an admin's password only from a sign-in" check reads
// the target before the patch makes it an admin).
func TestUsersWriteGivesNoAdmin(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	memberID := env.CreateUser(op, "member@example.com", memberPW)
	narrow := scopedAPIToken(t, env, op, "hr-sync", map[string]any{"scopes": []string{"users:write"}})
	servertest.Expect(t, sendWithAPIToken(env, narrow, "", "GET", "/v1/settings", nil), 403, "insufficient_scope")

	r := sendWithAPIToken(env, narrow, "", "POST", "/v1/users", map[string]any{"email": "mallory@example.com", "name": "m", "password": "mallory pass phrase 9", "roles": []string{"admin"}})
	servertest.Expect(t, r, 403, "forbidden")
	if r.Status == 201 {
		t.Errorf("a users:write API token created an admin with a password")
		m := env.Login("mallory@example.com", "mallory pass phrase 9")
		if g := env.As(m, "PUT", "/v1/settings", map[string]any{"password_grant_enabled": true}); g.Status == 200 {
			t.Errorf("…and through it holds settings:write: %s", env.As(m, "GET", "/v1/me", nil).Body)
		}
	}
	r = sendWithAPIToken(env, narrow, "", "PATCH", "/v1/users/"+memberID, map[string]any{"roles": []string{"admin"}, "password": "another pass phrase 8"})
	servertest.Expect(t, r, 403, "forbidden")
	// A user without a password and without a role it lacks is still
	// made by such a token (provisioning).
	servertest.Expect(t, sendWithAPIToken(env, narrow, "", "POST", "/v1/users", map[string]any{"email": "plain@example.com"}), 201, "")
	if r.Status == 200 {
		t.Errorf("a users:write API token made a member an admin and set their password in one request: %s", r.Body)
	}
}

// TestSettingsWriteSetsNoSingleSignOn: an API token limited to
// settings:write sets the account's single sign-on to a provider its
// holder runs, which then asserts another admin's address: the holder
// gets that admin's console session, with every admin power (users,
// credentials, audit), none of which the token held (SPEC §9.1:
// effective access = credential scopes ∩ the owner's permissions).
func TestSettingsWriteSetsNoSingleSignOn(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	op := env.AdminToken()
	env.CreateUser(op, "admin2@example.com", memberPW, "admin")
	narrow := scopedAPIToken(t, env, op, "settings-sync", map[string]any{"scopes": []string{"settings:write"}})
	provider := oidcprovider.Start(t, "gatehouse-console", ssoClientSecret)
	r := sendWithAPIToken(env, narrow, "", "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
		"issuer": provider.URL, "client_id": provider.ClientID, "client_secret": ssoClientSecret, "domains": []string{"example.com"}}})
	servertest.Expect(t, r, 403, "forbidden")
	if r.Status != 200 {
		return
	}
	t.Errorf("a settings:write API token set the account's single sign-on provider")
	provider.SignIn(oidcprovider.User{Subject: "x", Email: "admin2@example.com", EmailVerified: true})
	c := ssoBrowser(t)
	ssoGet(t, c, ssoToCallback(t, env, c, "admin2@example.com"))
	if signedIn(t, env, c) {
		t.Errorf("…and its holder signed in to the console as another admin")
	}
}
