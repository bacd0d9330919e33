package e2e

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// apiFill puts b's ids in an API route's path.
func (w *crossWorld) apiFill(path string) string { return w.fillUnder("/v1", path) }

// TestTenantsAPISweep: A's admin, developer and member name B's ids in
// every API route with an id; every answer is a refusal.
func TestTenantsAPISweep(t *testing.T) {
	w := newCrossWorld(t)
	env := w.env
	toks := map[string]string{
		"admin":  env.Login("a2@example.com", memberPW),
		"dev":    env.Login("adev@example.com", memberPW),
		"member": env.Login("amem@example.com", memberPW),
	}
	apiTok := withAPIToken(t, env, toks["admin"])
	send := func(who, tok, method, path string, body any) *servertest.Response {
		if who == "apitoken" {
			return env.Request(method, path, body, "X-API-Token", tok)
		}
		return env.As(tok, method, path, body)
	}
	toks["apitoken"] = apiTok.Token
	for who, tok := range toks {
		for _, rt := range api.Routes() {
			if !strings.Contains(rt.Path, "{") || strings.HasPrefix(rt.Path, "/v1/me/") {
				continue
			}
			if strings.HasSuffix(rt.Path, "/approval") {
				continue // approving another account's application for one's own is the feature (SPEC §10.3)
			}
			p := w.apiFill(rt.Path)
			r := send(who, tok, rt.Method, p, routeBody(rt.Method, rt.Path))
			t.Logf("%s %s %s -> %d %s", who, rt.Method, p, r.Status, r.Body)
			if r.Status < 400 {
				t.Errorf("%s: %s %s with another account's id: %d %s", who, rt.Method, p, r.Status, r.Body)
			}
		}
	}
	// B's things are all there and unchanged.
	for _, p := range []string{"/v1/users/" + w.bMemID, "/v1/users/" + w.bDevID, "/v1/apps/" + w.bApp, "/v1/webhooks/" + w.bWebhook} {
		r := env.As(w.bAdmin, "GET", p, nil)
		if r.Status != 200 || strings.Contains(string(r.Body), `"zz"`) || strings.Contains(string(r.Body), `"disabled"`) {
			t.Errorf("B's %s after the sweep: %d %s", p, r.Status, r.Body)
		}
	}
	r := env.As(w.bDev, "GET", "/v1/credentials", nil)
	if !strings.Contains(string(r.Body), w.bCred) || strings.Contains(string(r.Body), `"enabled":false`) {
		t.Errorf("B's credentials after the sweep: %s", r.Body)
	}
	r = env.As(w.bAdmin, "GET", "/v1/api-tokens", nil)
	if !strings.Contains(string(r.Body), w.bTok) || strings.Contains(string(r.Body), `"enabled":false`) {
		t.Errorf("B's API tokens after the sweep: %s", r.Body)
	}
}

// TestTenantsAPITokenMintsOperatorAPIAccess: eve, a plain admin of the
// operator's account, makes an API token, acts as the operator's e-mail
// and enables API access (scopes users:read users:write) for "her own"
// user — the operator's. That is allowed (an API token acting as a user
// may), but what it mints has no operator powers, as the API token acting
// as the operator has none: nothing minted through an API token is the
// operator (Principal.MintedThrough). Before, the API access token was
// the operator's, and eve renamed and demoted the operator and looked up
// addresses in every account with it.
func TestTenantsAPITokenMintsOperatorAPIAccess(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	opID := meID(t, env, op)
	env.CreateAccount(op, "Bee", "secret-customer@bee.example", memberPW)
	env.CreateUser(op, "eve@example.com", memberPW, "admin")
	eve := env.Login("eve@example.com", memberPW)
	// eve herself may do none of it.
	servertest.Expect(t, env.As(eve, "PATCH", "/v1/users/"+opID, map[string]any{"name": "pwned"}), 403, "forbidden")
	servertest.Expect(t, env.As(eve, "GET", "/v1/users?email=secret-customer@bee.example&all_accounts=true", nil), 403, "forbidden")
	tok := withAPIToken(t, env, eve)
	r := env.Request("POST", "/v1/api-access", map[string]any{"scopes": []string{"users:read", "users:write"}},
		"X-API-Token", tok.Token, "X-User-Email", servertest.AdminEmail)
	servertest.Expect(t, r, 201, "")
	at := r.Map(t)["access_token"].(string)
	servertest.Expect(t, env.As(at, "GET", "/v1/users?email=secret-customer@bee.example&all_accounts=true", nil), 403, "forbidden")
	servertest.Expect(t, env.As(at, "PATCH", "/v1/users/"+opID, map[string]any{"name": "pwned"}), 403, "forbidden")
	servertest.Expect(t, env.As(at, "PATCH", "/v1/users/"+opID, map[string]any{"roles": []string{}}), 403, "forbidden")
	// The operator is as before.
	me := env.As(op, "GET", "/v1/me", nil).Map(t)["user"].(map[string]any)
	if me["name"] == "pwned" || me["operator"] != true || len(me["roles"].([]any)) != 1 {
		t.Fatalf("the operator was changed: %v", me)
	}
}

// TestTenantsAPITokenMintsOperatorCredential: the same through a client
// credential when the operator holds the developer role: eve's API token,
// acting as the operator, creates a client credential of the operator;
// its client-credentials token is not the operator either (it renamed the
// operator and searched every account).
func TestTenantsAPITokenMintsOperatorCredential(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	opID := meID(t, env, op)
	env.CreateAccount(op, "Bee", "secret-customer@bee.example", memberPW)
	servertest.Expect(t, env.As(op, "PUT", "/v1/developers/"+opID, nil), 204, "")
	env.CreateUser(op, "eve@example.com", memberPW, "admin")
	eve := env.Login("eve@example.com", memberPW)
	tok := withAPIToken(t, env, eve)
	r := env.Request("POST", "/v1/credentials", map[string]any{"name": "mine", "scopes": []string{"users:read", "users:write"}},
		"X-API-Token", tok.Token, "X-User-Email", servertest.AdminEmail)
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	tr := env.Request("POST", "/oauth/token", "grant_type=client_credentials&client_id="+m["client_id"].(string)+"&client_secret="+m["client_secret"].(string),
		"Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, tr, 200, "")
	at := tr.Map(t)["access_token"].(string)
	servertest.Expect(t, env.As(at, "GET", "/v1/users?email=secret-customer@bee.example&all_accounts=true", nil), 403, "forbidden")
	servertest.Expect(t, env.As(at, "PATCH", "/v1/users/"+opID, map[string]any{"name": "pwned"}), 403, "forbidden")
}

// TestTenantsSuspendedAccount: every credential kind of a suspended
// account is refused, and its admins change nothing.
func TestTenantsSuspendedAccount(t *testing.T) {
	w := newCrossWorld(t)
	env := w.env
	// B's credentials of every kind, made before the suspension.
	r := env.As(w.bAdmin, "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 201, "")
	aa := r.Map(t)
	r = env.As(w.bAdmin, "POST", "/v1/api-tokens", map[string]string{"name": "b2"})
	servertest.Expect(t, r, 201, "")
	bTok := r.Map(t)["token"].(string)
	r = env.As(w.bDev, "POST", "/v1/credentials", map[string]any{"name": "c2"})
	servertest.Expect(t, r, 201, "")
	cred := r.Map(t)
	ccForm := "grant_type=client_credentials&client_id=" + cred["client_id"].(string) + "&client_secret=" + cred["client_secret"].(string)
	r = env.Request("POST", "/oauth/token", ccForm, "Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 200, "")
	ccTok := r.Map(t)["access_token"].(string)
	servertest.Expect(t, env.As(w.op, "PATCH", "/v1/accounts/"+w.bAcc, map[string]any{"status": "suspended"}), 200, "")

	for name, req := range map[string]func() *servertest.Response{
		"password token":    func() *servertest.Response { return env.As(w.bAdmin, "GET", "/v1/users", nil) },
		"api access token":  func() *servertest.Response { return env.As(aa["access_token"].(string), "GET", "/v1/users", nil) },
		"client cred token": func() *servertest.Response { return env.As(ccTok, "GET", "/v1/me", nil) },
		"api token":         func() *servertest.Response { return env.Request("GET", "/v1/users", nil, "X-API-Token", bTok) },
		"api token act-as": func() *servertest.Response {
			return env.Request("GET", "/v1/me", nil, "X-API-Token", bTok, "X-User-Email", "badmin@example.com")
		},
		"new password grant": func() *servertest.Response {
			return env.Request("POST", "/authorization", map[string]string{"username": "badmin@example.com", "password": memberPW})
		},
		"new client creds": func() *servertest.Response {
			return env.Request("POST", "/oauth/token", ccForm, "Content-Type", "application/x-www-form-urlencoded")
		},
		"refresh": func() *servertest.Response {
			return env.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "client_id": aa["client_id"].(string), "refresh_token": aa["refresh_token"].(string)})
		},
		"forward auth": func() *servertest.Response { return env.As(ccTok, "GET", "/v1/auth/check", nil) },
		"admin changes user": func() *servertest.Response {
			return env.As(w.bAdmin, "PATCH", "/v1/users/"+w.bMemID, map[string]any{"name": "zz"})
		},
	} {
		r := req()
		t.Logf("%s -> %d %s", name, r.Status, r.Body)
		if r.Status < 400 {
			t.Errorf("suspended account: %s answered %d %s", name, r.Status, r.Body)
		}
	}
	// Enumeration: A's admin creating B's address.
	a2 := env.Login("a2@example.com", memberPW)
	r = env.As(a2, "POST", "/v1/users", map[string]any{"email": "bmem@example.com", "password": memberPW})
	t.Logf("create B's address: %d %s", r.Status, r.Body)
	if strings.Contains(string(r.Body), w.bAcc) || strings.Contains(string(r.Body), "Bee") {
		t.Errorf("creating an address of another account names it: %s", r.Body)
	}
}

// TestTenantsNarrowPasswordTokenWritesSecondFactor: a password-grant
// token narrowed with scope=workspaces:read (a read-only token handed to
// an integration) manages none of its user's own security — second
// factors, passkeys, sessions, authorised applications, password:
// insufficient_scope (it enrolled and confirmed TOTP, kept the recovery
// codes, and the user's own password grant was then refused). The same
// user's token that is not narrowed may.
func TestTenantsNarrowPasswordTokenWritesSecondFactor(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	memID := env.CreateUser(op, "mem@example.com", memberPW)
	r := env.Request("POST", "/oauth/token", "grant_type=password&username=mem@example.com&password="+memberPW+"&scope=workspaces:read",
		"Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 200, "")
	ro := r.Map(t)["access_token"].(string)
	servertest.Expect(t, env.As(ro, "POST", "/v1/workspaces", map[string]any{"name": "x"}), 403, "insufficient_scope")
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/me/mfa/totp"}, {"GET", "/v1/me/mfa"}, {"GET", "/v1/me/sessions"}, {"GET", "/v1/me/authorizations"},
		{"POST", "/v1/me/mfa/passkeys/options"}, {"GET", "/v1/me/mfa/passkeys"},
	} {
		servertest.Expect(t, env.As(ro, c.method, c.path, nil), 403, "insufficient_scope")
	}
	servertest.Expect(t, env.As(ro, "PATCH", "/v1/users/"+memID, map[string]any{"password": "a new long password 1"}), 403, "")
	if g := env.Request("POST", "/authorization", map[string]string{"username": "mem@example.com", "password": memberPW}); g.Status != 200 {
		t.Fatalf("the user's own password grant: %d %s", g.Status, g.Body)
	}
	full := env.Login("mem@example.com", memberPW)
	servertest.Expect(t, env.As(full, "POST", "/v1/me/mfa/totp", nil), 200, "")
}

// routeBody is a harmless body for a request of a walked route: none for
// reads, deletions and action routes, an empty object for a roll, else a
// rename or a switch-off.
func routeBody(method, path string) any {
	switch {
	case method == "GET" || method == "DELETE" || strings.HasSuffix(path, "/approval") || strings.HasPrefix(path, "/v1/developers/") ||
		strings.Contains(path, "/members/") || strings.HasSuffix(path, "/test") || strings.HasSuffix(path, "/redeliver"):
		return nil
	case strings.HasSuffix(path, "/roll") || strings.HasSuffix(path, "/roll-secret"):
		return map[string]any{}
	case strings.HasPrefix(path, "/v1/webhooks/"):
		return map[string]any{"description": "zz"}
	case strings.HasPrefix(path, "/v1/credentials/") || strings.HasPrefix(path, "/v1/api-tokens/"):
		return map[string]any{"enabled": false}
	}
	return map[string]any{"name": "zz"}
}
