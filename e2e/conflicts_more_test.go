package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// More conflicting writes released together (see conflicts_test.go):
// each test here fails when the server answers one of them 5xx, or when
// what they leave breaks a rule.

// shotName names a volley shot by its method and path.
func shotName(shots []volleyReq) func(i int) string {
	return func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path }
}

// insertShot returns shots with shot inserted at i, in a new slice.
func insertShot(shots []volleyReq, i int, shot volleyReq) []volleyReq {
	out := append(make([]volleyReq, 0, len(shots)+1), shots[:i]...)
	return append(append(out, shot), shots[i:]...)
}

// statuses lists the statuses of res's answers.
func statuses(res volleyResult) []int {
	out := make([]int, len(res.resps))
	for i, r := range res.resps {
		out[i] = r.Status
	}
	return out
}

// issued is what one answer of a volley handed out: access tokens, refresh
// tokens (with their client id), API tokens, client credentials and
// users' addresses.
type issued struct {
	access, apiTokens, emails []string
	refresh                   [][2]string
	creds                     []credential
}

// collect adds what the 2xx answer body hands out to is.
func (is *issued) collect(t *testing.T, body []byte) {
	t.Helper()
	var m struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Token        string `json:"token"`
		Email        string `json:"email"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if m.AccessToken != "" {
		is.access = append(is.access, m.AccessToken)
	}
	if m.RefreshToken != "" {
		is.refresh = append(is.refresh, [2]string{m.ClientID, m.RefreshToken})
	}
	if m.ClientSecret != "" {
		is.creds = append(is.creds, credential{ClientID: m.ClientID, ClientSecret: m.ClientSecret})
	}
	if m.Token != "" {
		is.apiTokens = append(is.apiTokens, m.Token)
	}
	if m.Email != "" {
		is.emails = append(is.emails, m.Email)
	}
}

// refused fails the test for everything in is that still works on any of
// nodes: an access token or API token that GET /v1/me accepts, a refresh
// token or client credential the token endpoint accepts, a user who can
// sign in with pw.
func (is *issued) refused(t *testing.T, what string, nodes []*servertest.Env, pw string) {
	t.Helper()
	for _, n := range nodes {
		for _, tok := range is.access {
			if r := n.As(tok, "GET", "/v1/me", nil); r.Status != 401 {
				t.Errorf("%s: access token %.12s… still works: %d %s", what, tok, r.Status, r.Body)
			}
		}
		for _, tok := range is.apiTokens {
			if r := n.Request("GET", "/v1/me", nil, "X-API-Token", tok); r.Status != 401 {
				t.Errorf("%s: API token %.12s… still works: %d %s", what, tok, r.Status, r.Body)
			}
		}
		for _, c := range is.creds {
			if r := clientToken(n, c); r.Status == 200 {
				t.Errorf("%s: credential %s still issues tokens: %s", what, c.ClientID, r.Body)
			}
		}
		for _, email := range is.emails {
			if r := n.Request("POST", "/authorization", map[string]string{"username": email, "password": pw}); r.Status == 200 {
				t.Errorf("%s: user %s still signs in: %s", what, email, r.Body)
			}
		}
	}
	// A refresh token is spent by a refresh that works; try each once.
	for i, rt := range is.refresh {
		if r := refresh(nodes[i%len(nodes)], rt[0], rt[1]); r.Status == 200 {
			t.Errorf("%s: refresh token %.12s… still refreshes: %s", what, rt[1], r.Body)
		}
	}
}

// TestConflictSuspendVsCreate attacks an operator's PATCH
// /v1/accounts/{id} {"status":"suspended"}, on two nodes, released
// together with the account admin's creations in that account (users,
// client credentials, API tokens, a webhook, a workspace) and with grants
// of its users (password, client credentials, refresh). None may be
// answered 5xx, and once the suspension has answered nothing issued or
// created in the race works: no access, refresh or API token, no client
// credential, no new user's password.
func TestConflictSuspendVsCreate(t *testing.T) {
	a, b := twoLeakNodes(t, insecureWebhooks)
	nodes := []*servertest.Env{a, b}
	op := a.AdminToken()
	rc := newReceiver(t, nil)
	const rounds = 8
	for round := range rounds {
		bossEmail, memberEmail := fmt.Sprintf("boss%d@tenant.example", round), fmt.Sprintf("member%d@tenant.example", round)
		accID, boss := a.CreateAccount(op, fmt.Sprintf("tenant%d", round), bossEmail, memberPW)
		unlimit(t, a, boss)
		servertest.Expect(t, a.As(boss, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
		var me struct {
			User struct{ ID string } `json:"user"`
		}
		a.As(boss, "GET", "/v1/me", nil).JSON(t, &me)
		servertest.Expect(t, a.As(boss, "PUT", "/v1/developers/"+me.User.ID, nil), 204, "")
		boss = a.Login(bossEmail, memberPW)
		a.CreateUser(boss, memberEmail, memberPW)
		var cred credential
		r := a.As(boss, "POST", "/v1/credentials", map[string]string{"name": "pre"})
		servertest.Expect(t, r, 201, "")
		r.JSON(t, &cred)
		app := enableAPIAccess(t, a, boss, nil)

		var shots []volleyReq
		add := func(n int, method, path, body string) {
			shots = append(shots, volleyReq{req: asRequest(t, nodes[n%2], boss, method, path, body)})
		}
		for i := range 2 {
			add(i, "POST", "/v1/users", fmt.Sprintf(`{"email":"new%d-%d@tenant.example","name":"n","password":%q,"roles":[]}`, round, i, memberPW))
			add(i+1, "POST", "/v1/credentials", fmt.Sprintf(`{"name":"c%d"}`, i))
			add(i, "POST", "/v1/api-tokens", fmt.Sprintf(`{"name":"k%d"}`, i))
		}
		add(0, "POST", "/v1/webhooks", fmt.Sprintf(`{"url":%q,"events":["*"]}`, rc.URL+"/hooks"))
		add(1, "POST", "/v1/workspaces", `{"name":"w","description":"d"}`)
		shots = append(shots,
			grantShot(t, a.URL, 0, memberEmail, memberPW, ""),
			grantShot(t, b.URL, 1, memberEmail, memberPW, ""),
			volleyReq{req: formRequest(t, a.URL+"/v1/oauth/token", url.Values{"grant_type": {"client_credentials"},
				"client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}})},
			refreshShot(t, b, "", app.ClientID, app.RefreshToken))
		// The suspension goes in at a place that moves with the round.
		at := round * len(shots) / rounds
		suspend := volleyReq{req: asRequest(t, nodes[round%2], op, "PATCH", "/v1/accounts/"+accID, `{"status":"suspended"}`)}
		shots = insertShot(shots, at, suspend)

		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, shotName(shots))
		if s := res.resps[at]; s.Status != 200 {
			t.Fatalf("round %d: suspension: %d %s", round, s.Status, s.Body)
		}
		is := issued{access: []string{boss}, emails: []string{memberEmail}}
		for i, r := range res.resps {
			if i != at && r.Status/100 == 2 && len(r.Body) > 0 {
				is.collect(t, r.Body)
			}
		}
		t.Logf("round %d: suspension at %d; answers %v", round, at, statuses(res))
		is.refused(t, fmt.Sprintf("round %d", round), nodes, memberPW)
		if t.Failed() {
			return
		}
	}
}

// consoleLoginShot is a console sign-in (POST /admin/login) of email on
// env as a volley shot from the client address from.
func consoleLoginShot(t *testing.T, env *servertest.Env, from, email, pw string) volleyReq {
	t.Helper()
	csrf, cookie := adminLoginForm(t, env.URL)
	return volleyReq{req: formRequest(t, env.URL+"/admin/login", url.Values{"csrf": {csrf}, "email": {email}, "password": {pw}},
		"Cookie", "gatehouse_login_csrf="+cookie), from: from}
}

// issues names the paths whose answers hand out what works only while
// the user it was issued to does: tokens, client credentials.
var issues = map[string]bool{"/authorization": true, "/oauth/token": true, "/v1/oauth/token": true, "/v1/credentials": true}

// TestConflictUserOffVsGrants attacks an admin's PATCH /v1/users/{id}
// {"status":"disabled"} (even rounds) or DELETE /v1/users/{id} (odd
// rounds), on two nodes, released together with grants for that user:
// the password grant (/authorization and /oauth/token), a refresh of the
// user's API access, a client credentials grant of the user's credential,
// console sign-ins, the user's own creation of client credentials and
// API tokens, and their changes of the account as its admin (settings,
// the API tokens extension, a developer, a new user, a workspace). None
// may be answered 5xx (but for admission's refusal under churn,
// isChurn); once the disable or delete has answered nothing
// issued to the user in the race works: no access or refresh token (GET
// /v1/me, the token endpoint), no client credential, no console session;
// and the audit log shows nothing done by the user after the disable or
// delete (actedAfter). Before, API tokens, settings, the extension and
// workspaces were still changed by the user once disabled.
func TestConflictUserOffVsGrants(t *testing.T) {
	a, b := twoLeakNodes(t)
	nodes := []*servertest.Env{a, b}
	admin := a.AdminToken()
	unlimit(t, a, admin)
	servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, a.As(admin, "PUT", "/v1/settings", map[string]any{"max_api_tokens_per_account": 1000}), 200, "")
	const rounds = 10
	for round := range rounds {
		email := fmt.Sprintf("target%d@example.com", round)
		uid := a.CreateUser(admin, email, memberPW, "admin")
		servertest.Expect(t, a.As(admin, "PUT", "/v1/developers/"+uid, nil), 204, "")
		tok := a.Login(email, memberPW)
		var cred credential
		r := a.As(tok, "POST", "/v1/credentials", map[string]string{"name": "pre"})
		servertest.Expect(t, r, 201, "")
		r.JSON(t, &cred)
		app := enableAPIAccess(t, a, tok, nil)
		r = a.As(tok, "POST", "/v1/api-tokens", map[string]string{"name": fmt.Sprintf("pre%d", round)})
		servertest.Expect(t, r, 201, "")
		key := r.Map(t)["id"].(string)

		var shots []volleyReq
		for i := range 2 {
			n, from := nodes[i], func(k int) string { return loopback(round*8 + i*4 + k) }
			shots = append(shots,
				grantShot(t, n.URL, 0, email, memberPW, from(0)),
				grantShot(t, n.URL, 1, email, memberPW, from(1)),
				volleyReq{req: asRequest(t, n, tok, "POST", "/v1/credentials", fmt.Sprintf(`{"name":"c%d"}`, i))},
				volleyReq{req: asRequest(t, n, tok, "POST", "/v1/api-tokens", fmt.Sprintf(`{"name":"k%d-%d"}`, round, i))},
				consoleLoginShot(t, n, from(2), email, memberPW))
		}
		other := a.CreateUser(admin, fmt.Sprintf("other%d@example.com", round), memberPW)
		shots = append(shots,
			volleyReq{req: asRequest(t, b, tok, "PUT", "/v1/settings", fmt.Sprintf(`{"max_credentials_per_user":%d}`, 50+round))},
			volleyReq{req: asRequest(t, a, tok, "PUT", "/v1/extensions/api_tokens", `{"enabled":true}`)},
			volleyReq{req: asRequest(t, b, tok, "PUT", "/v1/developers/"+other, "")},
			volleyReq{req: asRequest(t, a, tok, "POST", "/v1/users", fmt.Sprintf(`{"email":"made%d@example.com","name":"m","password":%q,"roles":["admin"]}`, round, memberPW))},
			volleyReq{req: asRequest(t, b, tok, "POST", "/v1/workspaces", `{"name":"w","description":"d"}`)},
			volleyReq{req: asRequest(t, a, tok, "DELETE", "/v1/users/"+other+"/mfa", "")},
			volleyReq{req: asRequest(t, b, tok, "DELETE", "/v1/users/"+other+"/sessions", "")},
			volleyReq{req: asRequest(t, a, tok, "DELETE", "/v1/users/"+other+"/throttle", "")},
			volleyReq{req: asRequest(t, b, tok, "PATCH", "/v1/users/"+other, `{"name":"renamed"}`)},
			volleyReq{req: asRequest(t, a, tok, "POST", "/v1/api-tokens/"+key+"/roll", `{"overlap_seconds":60}`)},
			refreshShot(t, b, "", app.ClientID, app.RefreshToken),
			volleyReq{req: formRequest(t, a.URL+"/v1/oauth/token", url.Values{"grant_type": {"client_credentials"},
				"client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}})})
		at := round * len(shots) / rounds
		off := volleyReq{req: asRequest(t, nodes[round%2], admin, "PATCH", "/v1/users/"+uid, `{"status":"disabled"}`)}
		if round%2 == 1 {
			off = volleyReq{req: asRequest(t, nodes[round%2], admin, "DELETE", "/v1/users/"+uid, "")}
		}
		shots = insertShot(shots, at, off)

		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		no5xx(t, what, churned(t, res), shotName(shots))
		if s := res.resps[at]; isChurn(s) {
			continue
		} else if s.Status/100 != 2 {
			t.Fatalf("%s: %s: %d %s", what, shots[at].req.Method, s.Status, s.Body)
		}
		t.Logf("%s: %s at %d; answers %v", what, shots[at].req.Method, at, statuses(res))
		is := issued{access: []string{tok, app.AccessToken}, emails: []string{email}, creds: []credential{cred}}
		var sessions []string
		for i, r := range res.resps {
			switch {
			case i == at:
			case shots[i].req.URL.Path == "/admin/login":
				resp := http.Response{Header: r.Header}
				if s := cookieValue(&resp, "gatehouse_session"); s != "" {
					sessions = append(sessions, s)
				}
			case r.Status/100 == 2 && issues[shots[i].req.URL.Path]:
				is.collect(t, r.Body)
			}
			// The rest (API tokens, settings, users, workspaces) are the
			// account's, not the user's: they outlive the user when made
			// before the change, and must not be made after it (see
			// actedAfter).
		}
		is.refused(t, what, nodes, memberPW)
		actedAfter(t, what, a, admin, uid)
		for _, s := range sessions {
			for i, n := range nodes {
				if st := consoleStatus(t, n, s); st == 200 {
					t.Errorf("%s: a console session of the user still works on node %d", what, i)
				}
			}
		}
		if t.Failed() {
			return
		}
	}
}

// auditWhere returns the audit log entries of env matching query (a
// query string for GET /v1/audit), as admin.
func auditWhere(t *testing.T, env *servertest.Env, admin, query string) []gatehouse.AuditEntry {
	t.Helper()
	r := env.As(admin, "GET", "/v1/audit?limit=100&"+query, nil)
	servertest.Expect(t, r, 200, "")
	var page struct {
		Data []gatehouse.AuditEntry `json:"data"`
	}
	r.JSON(t, &page)
	return page.Data
}

// actedAfter fails the test when the audit log of env shows user uid
// changing anything after they were disabled or deleted: a change that
// locked the account after the disable or deletion (which locks it too)
// must have found the user gone.
func actedAfter(t *testing.T, what string, env *servertest.Env, admin, uid string) {
	t.Helper()
	var off *gatehouse.AuditEntry
	for _, e := range auditWhere(t, env, admin, "target="+uid) {
		if e.Action == "user.delete" || (e.Action == "user.update" && e.Details["status"] == "disabled") {
			off = &e
			break
		}
	}
	if off == nil {
		t.Fatalf("%s: no disable or deletion of %s in the audit log", what, uid)
	}
	for _, e := range auditWhere(t, env, admin, "actor="+uid) {
		if e.CreatedAt.After(off.CreatedAt) {
			t.Errorf("%s: %s by the user at %s, after %s at %s", what, e.Action, e.CreatedAt.Format("15:04:05.000000"),
				off.Action, off.CreatedAt.Format("15:04:05.000000"))
		}
	}
}

// TestConflictAPITokenWrites attacks, on two nodes, an API token's roll,
// its renames, its disable and its deletion, released together with the
// creation of others by the same admin and that admin's disable (even
// rounds) or demotion (odd rounds). Each write locks the account before
// the token and reads the admin again (lockAPITokenAdmin in service), so
// none may be answered 5xx — but for admission's documented refusal under
// churn (isChurn) — and nothing the admin asked for is done after the
// disable or demotion; before, all of them were.
func TestConflictAPITokenWrites(t *testing.T) {
	a, b := twoLeakNodes(t)
	nodes := []*servertest.Env{a, b}
	op := a.AdminToken()
	unlimit(t, a, op)
	servertest.Expect(t, a.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, a.As(op, "PUT", "/v1/settings", map[string]any{"max_api_tokens_per_account": 1000}), 200, "")
	for round := range 8 {
		email := fmt.Sprintf("keys%d@example.com", round)
		uid := a.CreateUser(op, email, memberPW, "admin")
		tok := a.Login(email, memberPW)
		r := a.As(tok, "POST", "/v1/api-tokens", map[string]string{"name": fmt.Sprintf("r%d", round)})
		servertest.Expect(t, r, 201, "")
		key := r.Map(t)["id"].(string)
		var shots []volleyReq
		for i := range 2 {
			n := nodes[i]
			shots = append(shots,
				volleyReq{req: asRequest(t, n, tok, "POST", "/v1/api-tokens/"+key+"/roll", `{"overlap_seconds":60}`)},
				volleyReq{req: asRequest(t, n, tok, "PATCH", "/v1/api-tokens/"+key, fmt.Sprintf(`{"name":"r%d-%d"}`, round, i))},
				volleyReq{req: asRequest(t, n, tok, "PATCH", "/v1/api-tokens/"+key, `{"enabled":false}`)},
				volleyReq{req: asRequest(t, n, tok, "POST", "/v1/api-tokens", fmt.Sprintf(`{"name":"n%d-%d"}`, round, i))})
		}
		shots = append(shots, volleyReq{req: asRequest(t, b, tok, "DELETE", "/v1/api-tokens/"+key, "")})
		at := round * len(shots) / 8
		demote := volleyReq{req: asRequest(t, nodes[round%2], op, "PATCH", "/v1/users/"+uid, `{"status":"disabled"}`)}
		if round%2 == 1 {
			demote = volleyReq{req: asRequest(t, nodes[round%2], op, "PATCH", "/v1/users/"+uid, `{"roles":[]}`)}
		}
		shots = insertShot(shots, at, demote)
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		no5xx(t, what, churned(t, res), shotName(shots))
		t.Logf("%s: change at %d; answers %v", what, at, statuses(res))
		if s := res.resps[at]; isChurn(s) {
			continue
		} else if s.Status != 200 {
			t.Fatalf("%s: the change of the user: %d %s", what, s.Status, s.Body)
		}
		if round%2 == 0 {
			actedAfter(t, what, a, op, uid)
		} else {
			demotedActed(t, what, a, op, uid)
		}
		if t.Failed() {
			return
		}
	}
}

// isChurn reports whether r is admission's refusal of a request whose
// principal the cluster's state changed under at every validation: a
// burst of changes that each revoke a whole account (every change of an
// API token does) once left the account's requests on a cluster so
// refused for a moment; no request is now (docs/design.md).
func isChurn(r *servertest.Response) bool {
	return r.Status == 503 && r.Header.Get("Retry-After") != "" &&
		strings.Contains(string(r.Body), `"The cluster state keeps changing; try again shortly"`)
}

// churned returns res without the answers isChurn, failing the test for
// each.
func churned(t *testing.T, res volleyResult) volleyResult {
	t.Helper()
	out := volleyResult{released: res.released, done: res.done}
	for _, r := range res.resps {
		if isChurn(r) {
			t.Errorf("refused for the cluster's churn: %s", r.Body)
			r = &servertest.Response{Status: 0}
		}
		out.resps = append(out.resps, r)
	}
	return out
}

// demotedActed fails the test when the audit log of env shows user uid
// changing anything after their roles were taken away.
func demotedActed(t *testing.T, what string, env *servertest.Env, admin, uid string) {
	t.Helper()
	var off *gatehouse.AuditEntry
	for _, e := range auditWhere(t, env, admin, "target="+uid) {
		if e.Action == "user.update" && e.Details["roles"] == "" && hasKey(e.Details, "roles") {
			off = &e
			break
		}
	}
	if off == nil {
		t.Fatalf("%s: no demotion of %s in the audit log", what, uid)
	}
	for _, e := range auditWhere(t, env, admin, "actor="+uid) {
		if e.CreatedAt.After(off.CreatedAt) {
			t.Errorf("%s: %s by the user at %s, after their demotion at %s", what, e.Action, e.CreatedAt.Format("15:04:05.000000"),
				off.CreatedAt.Format("15:04:05.000000"))
		}
	}
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// consentShot walks ua, signing in as the member, to the consent page of
// authURL and returns the page's Allow as a volley shot, without sending
// it.
func consentShot(t *testing.T, ua *userAgent, authURL string) volleyReq {
	t.Helper()
	cb, resp, body := ua.authorize(authURL, appMember, memberPW, "")
	if cb != nil || resp.StatusCode != 200 || !strings.Contains(body, `action="/admin/authorize"`) {
		t.Fatalf("no consent page: %v %d %.300s", cb, resp.StatusCode, body)
	}
	f := formFields(t, body, "/admin/authorize")
	f.Set("decision", "allow")
	return ua.formShot("/admin/authorize", f)
}

// appRefreshShot is a refresh of a third-party application's token as a
// volley shot.
func appRefreshShot(t *testing.T, env *servertest.Env, app thirdPartyApp, rt string) volleyReq {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
	return volleyReq{req: formRequest(t, env.URL+"/oauth/token", form)}
}

// TestConflictConsentVsRevokeVsAppDelete attacks a third-party
// application's standing on one node: consentRace.
func TestConflictConsentVsRevokeVsAppDelete(t *testing.T) {
	w := newAppsWorld(t)
	unlimit(t, w.env, w.admin)
	consentRace(t, []*servertest.Env{w.env}, w.devTok, 10)
}

// TestConflictConsentOnTwoNodes is consentRace on two nodes of one
// cluster (one store, one Redis): the consents on node A, the revocation
// and the deletion on node B, the code exchanges and refreshes on both,
// and the tokens from before the race cached on both.
func TestConflictConsentOnTwoNodes(t *testing.T) {
	a, b := twoLeakNodes(t)
	admin, _, devTok, _ := developer(t, a)
	unlimit(t, a, admin)
	a.CreateUser(admin, appMember, memberPW)
	consentRace(t, []*servertest.Env{a, b}, devTok, 12)
}

// consentRace attacks a third-party application's standing for rounds
// rounds, on nodes (one or two of a cluster): the member's consents
// (Allow on the consent page of the first node, for more scopes than
// remembered), code exchanges and refreshes (one on each node in turn),
// released together with the member's revocation of the application
// (DELETE /v1/me/authorizations/{client_id}) and, in odd rounds, the
// developer's deletion of the application, both on the last node. None
// may be answered 5xx, and none may deadlock (no5xx). Once the
// revocation (204) or the deletion has answered, no token works on any
// node that was issued before the race or in it (the exchanges are of
// codes given before the race, the refreshes of tokens from before it):
// no access token, no refresh token. A consent that commits after the
// revocation is a new authorization, and a code it gives may work; when
// the application was deleted, or no authorization of it is left
// afterwards, no code from the race works either, and a deleted
// application has no authorization left.
func consentRace(t *testing.T, nodes []*servertest.Env, devTok string, rounds int) {
	t.Helper()
	a, b := nodes[0], nodes[len(nodes)-1]
	on := func(i int) *servertest.Env { return nodes[i%len(nodes)] }
	member := a.Login(appMember, memberPW)
	for round := range rounds {
		app := registerApp(t, a, devTok, "confidential", []string{appRedirect}, []string{"workspaces:read", "users:read"})
		narrow := oauthConfig(a, app, appRedirect, "workspaces:read")
		wide := oauthConfig(a, app, appRedirect, "workspaces:read", "users:read")
		ua := newUserAgent(t, a.URL)
		code := func() (string, string) {
			t.Helper()
			v := oauth2.GenerateVerifier()
			cb, resp, body := ua.authorize(narrow.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), appMember, memberPW, "allow")
			if cb == nil || cb.Query().Get("code") == "" {
				t.Fatalf("no code: %v %d %.300s", cb, resp.StatusCode, body)
			}
			return cb.Query().Get("code"), v
		}
		// Tokens from before the race, three exchanged on each node in
		// turn; the first of each node's is served by every node, so that
		// every node has tokens of the grant cached.
		var before []apiAccess
		for i := range 3 * len(nodes) {
			c, v := code()
			r := exchange(on(i), app, c, appRedirect, v)
			servertest.Expect(t, r, 200, "")
			var p apiAccess
			r.JSON(t, &p)
			if i < len(nodes) {
				for _, n := range nodes {
					servertest.Expect(t, n.As(p.AccessToken, "GET", "/v1/me", nil), 200, "")
				}
			}
			before = append(before, p)
		}

		var shots []volleyReq
		verifiers := map[*http.Request]string{}
		for i := range 2 {
			c, v := code()
			shots = append(shots, exchangeShot(t, on(i), app, c, appRedirect, v))
		}
		for i, p := range before {
			shots = append(shots, appRefreshShot(t, on(i+1), app, p.RefreshToken))
		}
		for range 3 {
			v := oauth2.GenerateVerifier()
			shot := consentShot(t, newUserAgent(t, a.URL), wide.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
			verifiers[shot.req] = v
			shots = append(shots, shot)
		}
		revokeAt := round % (len(shots) + 1)
		shots = insertShot(shots, revokeAt, volleyReq{req: asRequest(t, b, member, "DELETE", "/v1/me/authorizations/"+app.ClientID, "")})
		deleted := round%2 == 1
		if deleted {
			shots = append(shots, volleyReq{req: asRequest(t, b, devTok, "DELETE", "/v1/apps/"+app.ID, "")})
		}
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: revoke at %d, deleted %v; answers %v", what, revokeAt, deleted, statuses(res))
		if deleted && res.resps[len(shots)-1].Status != 204 {
			t.Fatalf("%s: deletion: %d %s", what, res.resps[len(shots)-1].Status, res.resps[len(shots)-1].Body)
		}
		revoked := res.resps[revokeAt].Status == 204
		if !revoked && !deleted {
			t.Fatalf("%s: revocation: %d %s", what, res.resps[revokeAt].Status, res.resps[revokeAt].Body)
		}

		// What the race handed out: tokens, and codes from the consents.
		is := issued{}
		var codes [][2]string
		for i, r := range res.resps {
			if v, ok := verifiers[shots[i].req]; ok {
				if loc, err := url.Parse(r.Header.Get("Location")); err == nil && loc.Query().Get("code") != "" {
					codes = append(codes, [2]string{loc.Query().Get("code"), v})
				}
				continue
			}
			if shots[i].req.URL.Path == "/oauth/token" && r.Status == 200 {
				var out apiAccess
				r.JSON(t, &out)
				is.access = append(is.access, out.AccessToken)
				is.refresh = append(is.refresh, [2]string{app.ClientID, out.RefreshToken})
			}
		}
		var left []map[string]any
		a.As(member, "GET", "/v1/me/authorizations", nil).JSON(t, &struct {
			Data *[]map[string]any `json:"data"`
		}{&left})
		granted := false
		for _, g := range left {
			if g["client_id"] == app.ClientID {
				granted = true
			}
		}
		t.Logf("%s: %d codes, %d tokens from the race; authorised afterwards: %v", what, len(codes), len(is.access), granted)
		if deleted && granted {
			t.Errorf("%s: the deleted application is still authorised: %v", what, left)
		}
		for _, p := range before {
			is.access = append(is.access, p.AccessToken)
			is.refresh = append(is.refresh, [2]string{app.ClientID, p.RefreshToken})
		}
		each(is.access, func(tok string) {
			for i, n := range nodes {
				if r := n.As(tok, "GET", "/v1/me", nil); r.Status != 401 {
					t.Errorf("%s: an access token of the application still works on node %d: %d %s", what, i, r.Status, r.Body)
				}
			}
		})
		// A refresh token or a code that works is spent by its first use:
		// each is tried on every node, in turn.
		each(is.refresh, func(rt [2]string) {
			for i, n := range nodes {
				if r := refreshAppToken(t, n, app, rt[1]); r.Status == 200 {
					t.Errorf("%s: a refresh token of the application still refreshes on node %d: %s", what, i, r.Body)
				}
			}
		})
		if deleted || !granted {
			each(codes, func(c [2]string) {
				for i, n := range nodes {
					if r := exchange(n, app, c[0], appRedirect, c[1]); r.Status == 200 {
						t.Errorf("%s: a code of the race still exchanges on node %d: %s", what, i, r.Body)
					}
				}
			})
		}
		if t.Failed() {
			return
		}
	}
}

// refreshAppToken refreshes a third-party application's token.
func refreshAppToken(t *testing.T, env *servertest.Env, app thirdPartyApp, rt string) *servertest.Response {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
	return env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// planPatches are PATCH bodies that each set a different field of a
// subject's plan, and planSet tells whether a subject's JSON shows the
// field of the i-th.
var planPatches = []string{
	`{"metadata":{"k":"v"}}`,
	`{"external_id":"ext-1"}`,
	`{"quota":{"limit":1000000,"period":"day"}}`,
	`{"rate_limit":{"daily":1000000,"burst":100000,"burst_window_seconds":60}}`,
}

func planSet(m map[string]any, i int) bool {
	switch i {
	case 0:
		md, _ := m["metadata"].(map[string]any)
		return md["k"] == "v"
	case 1:
		return m["external_id"] == "ext-1"
	case 2:
		q, _ := m["quota"].(map[string]any)
		return q["limit"] == 1000000.0
	default:
		rl, _ := m["rate_limit"].(map[string]any)
		return rl["daily"] == 1000000.0
	}
}

// TestConflictPlanPatches attacks the plans of SPEC §10.5: for an API
// access application, a client credential, a user, an API token and a
// third-party application that have none yet, PATCHes that each set a different field of the plan
// (metadata, external_id, quota, rate_limit) are released together, with
// the subject's deletion in odd rounds. None may be answered 5xx; when the
// subject is left, every field whose PATCH answered 200 is in its plan
// (none lost to another PATCH that read the same empty plan); when it was
// deleted, it is gone.
func TestConflictPlanPatches(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	unlimit(t, env, admin)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"max_api_tokens_per_account": 1000, "max_credentials_per_user": 1000}), 200, "")
	type subject struct {
		name       string
		tok, path  string // the PATCH and DELETE path, as tok
		get        func() *servertest.Response
		getDeleted int // the status of get once deleted
	}
	const rounds = 8
	for round := range rounds {
		// Fresh subjects, with no plan.
		env.As(admin, "DELETE", "/v1/api-access", nil)
		enableAPIAccess(t, env, admin, nil)
		r := env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("p%d", round)})
		servertest.Expect(t, r, 201, "")
		cred := r.Map(t)["id"].(string)
		uid := env.CreateUser(admin, fmt.Sprintf("plan%d@example.com", round), memberPW)
		r = env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": fmt.Sprintf("p%d", round)})
		servertest.Expect(t, r, 201, "")
		key := r.Map(t)["id"].(string)
		app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, nil)
		// One item of a list, as if read alone (404 when missing).
		item := func(tok, list, id string) func() *servertest.Response {
			return func() *servertest.Response {
				r := env.As(tok, "GET", list+"?limit=100", nil)
				var page struct {
					Data []json.RawMessage `json:"data"`
				}
				r.JSON(t, &page)
				for _, c := range page.Data {
					if strings.Contains(string(c), `"id":"`+id+`"`) {
						return &servertest.Response{Status: 200, Body: c}
					}
				}
				return &servertest.Response{Status: 404}
			}
		}
		subjects := []subject{
			{"API access", admin, "/v1/api-access", func() *servertest.Response {
				r := env.As(admin, "GET", "/v1/api-access", nil)
				if r.Status == 200 && strings.Contains(string(r.Body), `"enabled":false`) {
					r.Status = 404
				}
				return r
			}, 404},
			{"credential", devTok, "/v1/credentials/" + cred, item(devTok, "/v1/credentials", cred), 404},
			{"user", admin, "/v1/users/" + uid, func() *servertest.Response { return env.As(admin, "GET", "/v1/users/"+uid, nil) }, 404},
			{"API token", admin, "/v1/api-tokens/" + key, item(admin, "/v1/api-tokens", key), 404},
			{"application", devTok, "/v1/apps/" + app.ID, func() *servertest.Response { return env.As(devTok, "GET", "/v1/apps/"+app.ID, nil) }, 404},
		}
		deleted := round%2 == 1
		var shots []volleyReq
		for _, s := range subjects {
			for i, body := range planPatches {
				if deleted && i == (round/2)%len(planPatches) {
					shots = append(shots, volleyReq{req: asRequest(t, env, s.tok, "DELETE", s.path, "")})
				}
				shots = append(shots, volleyReq{req: asRequest(t, env, s.tok, "PATCH", s.path, body)})
			}
		}
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: answers %v", what, statuses(res))
		k := 0
		for _, s := range subjects {
			ok := map[int]bool{}
			gone := false
			for i := range planPatches {
				if deleted && i == (round/2)%len(planPatches) {
					if r := res.resps[k]; r.Status/100 != 2 {
						t.Errorf("%s: %s: deletion: %d %s", what, s.name, r.Status, r.Body)
					}
					gone = true
					k++
				}
				ok[i] = res.resps[k].Status == 200
				k++
			}
			r := s.get()
			if gone {
				if r.Status != s.getDeleted {
					t.Errorf("%s: %s deleted, still there: %d %s", what, s.name, r.Status, r.Body)
				}
				continue
			}
			servertest.Expect(t, r, 200, "")
			m := map[string]any{}
			if err := json.Unmarshal(r.Body, &m); err != nil {
				t.Fatal(err)
			}
			for i := range planPatches {
				if ok[i] && !planSet(m, i) {
					t.Errorf("%s: %s: %s answered 200 but is not in the plan: %s", what, s.name, planPatches[i], r.Body)
				}
			}
		}
		if t.Failed() {
			return
		}
	}
}

// TestConflictWorkspaceOwnerOff attacks a workspace's owner, a member
// without the admin role, changing their workspace (adding and removing
// members, deleting another workspace of theirs, making a new one)
// released together with an admin's disable (even rounds) or deletion
// (odd rounds) of the owner and the admin's removal of members of that
// workspace. (The API has no transfer of a workspace's owner.) None may be
// answered 5xx, and the audit log shows nothing done by the owner after
// the disable or deletion.
func TestConflictWorkspaceOwnerOff(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const members = 4
	ids := make([]string, members)
	for i := range ids {
		ids[i] = env.CreateUser(admin, fmt.Sprintf("wm%d@example.com", i), memberPW)
	}
	for round := range 10 {
		email := fmt.Sprintf("owner%d@example.com", round)
		owner := env.CreateUser(admin, email, memberPW)
		tok := env.Login(email, memberPW)
		var wss []string
		for i := range 2 {
			r := env.As(tok, "POST", "/v1/workspaces", map[string]string{"name": fmt.Sprintf("o%d-%d", round, i), "description": "d"})
			servertest.Expect(t, r, 201, "")
			wss = append(wss, r.Map(t)["id"].(string))
		}
		servertest.Expect(t, env.As(tok, "PUT", "/v1/workspaces/"+wss[0]+"/members/"+ids[0], nil), 204, "")
		servertest.Expect(t, env.As(tok, "PUT", "/v1/workspaces/"+wss[0]+"/members/"+ids[1], nil), 204, "")
		ws := "/v1/workspaces/" + wss[0] + "/members/"
		shots := []volleyReq{
			{req: asRequest(t, env, tok, "PUT", ws+ids[2], "")},
			{req: asRequest(t, env, tok, "PUT", ws+ids[3], "")},
			{req: asRequest(t, env, tok, "DELETE", ws+ids[0], "")},
			{req: asRequest(t, env, admin, "DELETE", ws+ids[1], "")},
			{req: asRequest(t, env, tok, "PUT", ws+ids[1], "")},
			{req: asRequest(t, env, tok, "DELETE", "/v1/workspaces/"+wss[1], "")},
			{req: asRequest(t, env, tok, "POST", "/v1/workspaces", `{"name":"late","description":"d"}`)},
		}
		at := round % (len(shots) + 1)
		off := volleyReq{req: asRequest(t, env, admin, "PATCH", "/v1/users/"+owner, `{"status":"disabled"}`)}
		if round%2 == 1 {
			off = volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/users/"+owner, "")}
		}
		shots = insertShot(shots, at, off)
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: change at %d; answers %v", what, at, statuses(res))
		if s := res.resps[at]; s.Status/100 != 2 {
			t.Fatalf("%s: %s of the owner: %d %s", what, shots[at].req.Method, s.Status, s.Body)
		}
		actedAfter(t, what, env, admin, owner)
		if t.Failed() {
			return
		}
	}
}

// TestConflictDeveloperRevokeVsCredentialChange attacks an admin's
// removal of a developer with their credentials (DELETE
// /v1/developers/{id}?revoke_credentials=true; the user's deletion in odd
// rounds) released together with the developer's renames, rolls and
// grants of those credentials and a new one. None may be answered 5xx,
// and afterwards no credential of the developer issues a token.
func TestConflictDeveloperRevokeVsCredentialChange(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"max_credentials_per_user": 1000}), 200, "")
	const creds = 4
	for round := range 8 {
		email := fmt.Sprintf("dev%d@example.com", round)
		dev := env.CreateUser(admin, email, memberPW)
		servertest.Expect(t, env.As(admin, "PUT", "/v1/developers/"+dev, nil), 204, "")
		tok := env.Login(email, memberPW)
		var cs []credential
		for i := range creds {
			r := env.As(tok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("c%d", i)})
			servertest.Expect(t, r, 201, "")
			var c credential
			r.JSON(t, &c)
			cs = append(cs, c)
		}
		var shots []volleyReq
		for i, c := range cs {
			shots = append(shots,
				volleyReq{req: asRequest(t, env, tok, "PATCH", "/v1/credentials/"+c.ID, fmt.Sprintf(`{"name":"r%d"}`, i))},
				volleyReq{req: formRequest(t, env.URL+"/v1/oauth/token", url.Values{"grant_type": {"client_credentials"},
					"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})})
			if i%2 == 0 {
				shots = append(shots, volleyReq{req: asRequest(t, env, tok, "POST", "/v1/credentials/"+c.ID+"/roll", `{"overlap_seconds":60}`)})
			}
		}
		shots = append(shots, volleyReq{req: asRequest(t, env, tok, "POST", "/v1/credentials", `{"name":"late"}`)})
		at := round * len(shots) / 8
		off := volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/developers/"+dev+"?revoke_credentials=true", "")}
		if round%2 == 1 {
			off = volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/users/"+dev, "")}
		}
		shots = insertShot(shots, at, off)
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: removal at %d; answers %v", what, at, statuses(res))
		if s := res.resps[at]; s.Status/100 != 2 {
			t.Fatalf("%s: removal: %d %s", what, s.Status, s.Body)
		}
		is := issued{creds: cs}
		for i, r := range res.resps {
			if i != at && r.Status/100 == 2 && issues[shots[i].req.URL.Path] || strings.HasSuffix(shots[i].req.URL.Path, "/roll") && r.Status == 200 {
				is.collect(t, r.Body)
			}
		}
		is.refused(t, what, []*servertest.Env{env}, memberPW)
		if t.Failed() {
			return
		}
	}
}
