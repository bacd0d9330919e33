package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// Conflicting writes released together: each test here fails when the
// server answers one of them 5xx, or when what they leave breaks a rule.

// no5xx fails the test for every answer of res that is a 5xx, naming the
// shot, and when a write transaction of the volley deadlocked with another
// (the store runs it again, so its answer does not show it: the writes
// took their locks in different orders).
func no5xx(t *testing.T, what string, res volleyResult, names func(i int) string) {
	t.Helper()
	for i, r := range res.resps {
		if r.Status >= 500 {
			t.Errorf("%s: shot %d (%s): %d %s", what, i, names(i), r.Status, strings.TrimSpace(string(r.Body)))
		}
	}
	if n := servertest.Conflicts() - res.conflicts; n > 0 {
		t.Errorf("%s: %d write transactions deadlocked with another and were run again", what, n)
	}
}

// TestConflictWorkspaceDeleteVsAddMember attacks DELETE /v1/workspaces/{id}
// released together with PUT /v1/workspaces/{id}/members/{user_id} for
// several users. An addition that comes after the deletion is not_found,
// never a broken foreign key answered 500 (PostgreSQL 23503, SQLite
// "FOREIGN KEY constraint failed"), which it was when the workspace was
// checked only outside the addition's transaction.
func TestConflictWorkspaceDeleteVsAddMember(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const members = 12
	ids := make([]string, members)
	for i := range ids {
		ids[i] = env.CreateUser(admin, fmt.Sprintf("m%d@example.com", i), memberPW)
	}
	for round := 0; round < 8; round++ {
		r := env.As(admin, "POST", "/v1/workspaces", map[string]string{"name": fmt.Sprintf("w%d", round), "description": "d"})
		servertest.Expect(t, r, 201, "")
		ws := r.Map(t)["id"].(string)
		var shots []volleyReq
		names := []string{}
		for i, id := range ids {
			if i == members/2+round%3 {
				shots = append(shots, volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/workspaces/"+ws, "")})
				names = append(names, "DELETE workspace")
			}
			shots = append(shots, volleyReq{req: asRequest(t, env, admin, "PUT", "/v1/workspaces/"+ws+"/members/"+id, "")})
			names = append(names, "PUT member "+id)
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return names[i] })
		if t.Failed() {
			return
		}
	}
}

// TestConflictDeleteUserVsAddMember attacks DELETE /v1/users/{id} released
// together with PUT /v1/workspaces/{id}/members/{user_id} of that user in
// several workspaces: deleting a user removes them from every workspace
// (store.Tx.DeleteUser), and an addition either comes first (and is
// removed) or finds the user gone. Checking the user only outside the
// addition's transaction left deleted users members.
func TestConflictDeleteUserVsAddMember(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const spaces = 12
	wss := make([]string, spaces)
	for i := range wss {
		r := env.As(admin, "POST", "/v1/workspaces", map[string]string{"name": fmt.Sprintf("w%d", i), "description": "d"})
		servertest.Expect(t, r, 201, "")
		wss[i] = r.Map(t)["id"].(string)
	}
	for round := 0; round < 8; round++ {
		uid := env.CreateUser(admin, fmt.Sprintf("gone%d@example.com", round), memberPW)
		var shots []volleyReq
		for i, ws := range wss {
			if i == spaces/2+round%3 {
				shots = append(shots, volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/users/"+uid, "")})
			}
			shots = append(shots, volleyReq{req: asRequest(t, env, admin, "PUT", "/v1/workspaces/"+ws+"/members/"+uid, "")})
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		for _, ws := range wss {
			r := env.As(admin, "GET", "/v1/workspaces/"+ws+"/members", nil)
			servertest.Expect(t, r, 200, "")
			if strings.Contains(string(r.Body), uid) {
				t.Errorf("round %d: deleted user %s is still a member of %s: %s", round, uid, ws, r.Body)
			}
		}
		if t.Failed() {
			return
		}
	}
}

// TestConflictResetMFAVsSignInCode attacks DELETE /v1/users/{id}/mfa (an
// admin resetting a user's second factors) released together with the
// user's console sign-ins completing with recovery codes (POST
// /admin/login/code). The reset locks the user and then deletes the
// factors; a completion locks the user too before it spends its code and
// inserts the session. Taking them in opposite orders deadlocked on
// PostgreSQL (40P01), answered 503.
func TestConflictResetMFAVsSignInCode(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const email = "mfa@example.com"
	uid := env.CreateUser(admin, email, memberPW)
	const k = 6
	for round := 0; round < 10; round++ {
		_, codes := enrolTOTP(t, env, env.Login(email, memberPW))
		var shots []volleyReq
		for i := 0; i < k; i++ {
			from := loopback(round*k + i)
			if i == k/2 {
				shots = append(shots, volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/users/"+uid+"/mfa", "")})
			}
			shots = append(shots, codeShot(t, env.URL, from, startSignIn(t, env.URL, from, email, memberPW), codes[i]))
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		if t.Failed() {
			return
		}
		// Whatever the order, the factors are gone now (or the reset
		// was first and then nothing was there to sign in with).
		servertest.Expect(t, env.As(admin, "DELETE", "/v1/users/"+uid+"/mfa", nil), 204, "")
	}
}

// countStatus counts the answers of res with status.
func countStatus(res volleyResult, status int) int {
	n := 0
	for _, r := range res.resps {
		if r.Status == status {
			n++
		}
	}
	return n
}

// TestConflictLimitsAndNames attacks the limits and uniqueness rules with
// identical creations released together, on two nodes: credentials over
// max_credentials_per_user and with one name, API tokens over
// max_api_tokens_per_account and with one name, users with one e-mail,
// API access enabled twice. None may be answered 5xx, and no limit may be
// exceeded.
func TestConflictLimitsAndNames(t *testing.T) {
	a, b := twoLeakNodes(t)
	nodes := []*servertest.Env{a, b}
	admin, _, devTok, _ := developer(t, a)
	unlimit(t, a, admin)
	servertest.Expect(t, a.As(admin, "PUT", "/v1/settings", map[string]any{"max_credentials_per_user": 3, "max_api_tokens_per_account": 3}), 200, "")
	servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	const n = 12
	names := func(i int) string { return fmt.Sprint(i) }

	// Credentials: the developer has one ("CI"); 12 at once, distinct names.
	var shots []volleyReq
	for i := 0; i < n; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], devTok, "POST", "/v1/credentials", fmt.Sprintf(`{"name":"c%d"}`, i))})
	}
	res := volley(t, shots)
	no5xx(t, "credentials over the limit", res, names)
	if got := countStatus(res, 201); got != 2 {
		t.Errorf("credentials: %d created at once, room for 2", got)
	}
	// One name, on a user with room: delete the new ones first.
	r := a.As(devTok, "GET", "/v1/credentials", nil)
	var list struct {
		Data []struct {
			ID, Name string
		} `json:"data"`
	}
	r.JSON(t, &list)
	for _, c := range list.Data {
		if c.Name != "CI" {
			servertest.Expect(t, a.As(devTok, "DELETE", "/v1/credentials/"+c.ID, nil), 204, "")
		}
	}
	shots = nil
	for i := 0; i < n; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], devTok, "POST", "/v1/credentials", `{"name":"same"}`)})
	}
	res = volley(t, shots)
	no5xx(t, "credentials with one name", res, names)
	if got := countStatus(res, 201); got != 1 {
		t.Errorf("credentials: %d created with one name", got)
	}

	// API tokens, over the limit and with one name.
	shots = nil
	for i := 0; i < n; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], admin, "POST", "/v1/api-tokens", fmt.Sprintf(`{"name":"k%d"}`, i))})
	}
	res = volley(t, shots)
	no5xx(t, "API tokens over the limit", res, names)
	if got := countStatus(res, 201); got != 3 {
		t.Errorf("API tokens: %d created at once, room for 3", got)
	}

	// Users with one address.
	shots = nil
	for i := 0; i < n; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], admin, "POST", "/v1/users",
			`{"email":"Twin@example.com","name":"twin","password":"a long password","roles":[]}`)})
	}
	res = volley(t, shots)
	no5xx(t, "users with one address", res, names)
	if got := countStatus(res, 201); got != 1 {
		t.Errorf("users: %d created with one address", got)
	}

	// API access enabled for one user at once.
	shots = nil
	for i := 0; i < n; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], admin, "POST", "/v1/api-access", "")})
	}
	res = volley(t, shots)
	no5xx(t, "API access twice", res, names)
	if got := countStatus(res, 201) + countStatus(res, 200); got != 1 {
		t.Errorf("API access: %d enabled at once: %d %s", got, res.resps[0].Status, res.resps[0].Body)
	}
}

// TestConflictLastAdmin attacks the last-admin rule: in an account of two
// admins, each demotes, disables or deletes the other at once, on two
// nodes. The account must keep an active admin.
func TestConflictLastAdmin(t *testing.T) {
	a, b := twoLeakNodes(t)
	op := a.AdminToken()
	unlimit(t, a, op)
	changes := [][2]string{{`{"roles":[]}`, `{"roles":[]}`}, {`{"status":"disabled"}`, `{"roles":[]}`},
		{`{"status":"disabled"}`, `{"status":"disabled"}`}, {"DELETE", "DELETE"}, {"DELETE", `{"roles":[]}`}}
	for round, c := range changes {
		bossEmail, otherEmail := fmt.Sprintf("boss%d@acct.example", round), fmt.Sprintf("other%d@acct.example", round)
		_, boss := a.CreateAccount(op, fmt.Sprintf("acct%d", round), bossEmail, memberPW)
		otherID := a.CreateUser(boss, otherEmail, memberPW, "admin")
		other := a.Login(otherEmail, memberPW)
		var me struct {
			User struct{ ID string } `json:"user"`
		}
		a.As(boss, "GET", "/v1/me", nil).JSON(t, &me)
		bossID := me.User.ID
		shot := func(n *servertest.Env, tok, id, change string) volleyReq {
			if change == "DELETE" {
				return volleyReq{req: asRequest(t, n, tok, "DELETE", "/v1/users/"+id, "")}
			}
			return volleyReq{req: asRequest(t, n, tok, "PATCH", "/v1/users/"+id, change)}
		}
		shots := []volleyReq{shot(a, boss, otherID, c[0]), shot(b, other, bossID, c[1])}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		admins := activeAdmins(t, a, op, bossEmail, otherEmail)
		if admins == 0 {
			t.Errorf("round %d (%v): no active admin left; answers %d %s / %d %s", round, c,
				res.resps[0].Status, res.resps[0].Body, res.resps[1].Status, res.resps[1].Body)
		}
	}
}

// exchangeShot is an authorization code exchange of app on env as a
// volley shot.
func exchangeShot(t *testing.T, env *servertest.Env, app thirdPartyApp, code, redirect, verifier string) volleyReq {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {app.ClientID},
		"code_verifier": {verifier}}
	if app.ClientSecret != "" {
		form.Set("client_secret", app.ClientSecret)
	}
	return volleyReq{req: formRequest(t, env.URL+"/oauth/token", form)}
}

// TestConflictCodeGrantVsUserChange attacks the authorization code
// exchange (POST /oauth/token, grant_type=authorization_code) released
// together with an admin's PATCH /v1/users/{id} of the user who
// authorised. The PATCH locks the account and then the user; the exchange
// takes the account (shared) before it locks the user. Taking them in
// opposite orders deadlocked on PostgreSQL (40P01), answered 503.
func TestConflictCodeGrantVsUserChange(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	unlimit(t, env, w.admin)
	ua := newUserAgent(t, env.URL)
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read")
	code := func() (string, string) {
		t.Helper()
		v := oauth2.GenerateVerifier()
		cb, resp, body := ua.authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), appMember, memberPW, "allow")
		if cb == nil || cb.Query().Get("code") == "" {
			t.Fatalf("no code: %v %d %.300s", cb, resp.StatusCode, body)
		}
		return cb.Query().Get("code"), v
	}
	const k = 4
	for round := 0; round < 12; round++ {
		var shots []volleyReq
		for i := 0; i < k; i++ {
			if i == k/2 {
				shots = append(shots, volleyReq{req: asRequest(t, env, w.admin, "PATCH", "/v1/users/"+w.memberID, fmt.Sprintf(`{"name":"member %d"}`, round))})
			}
			c, v := code()
			shots = append(shots, exchangeShot(t, env, w.confidential, c, appRedirect, v))
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		if t.Failed() {
			return
		}
	}
}

// TestConflictResetMFAVsConfirmTOTP attacks DELETE /v1/users/{id}/mfa
// released together with the user's POST /v1/me/mfa/totp/confirm. Both
// lock the user before the enrolment; locking the enrolment first in the
// confirmation deadlocked on PostgreSQL, answered 503.
func TestConflictResetMFAVsConfirmTOTP(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const email = "confirm@example.com"
	uid := env.CreateUser(admin, email, memberPW)
	for round := 0; round < 20; round++ {
		tok := env.Login(email, memberPW)
		r := env.As(tok, "POST", "/v1/me/mfa/totp", nil)
		servertest.Expect(t, r, 200, "")
		secret := r.Map(t)["secret"].(string)
		shots := []volleyReq{
			{req: asRequest(t, env, tok, "POST", "/v1/me/mfa/totp/confirm", fmt.Sprintf(`{"code":%q}`, totpAt(secret, 0)))},
			{req: asRequest(t, env, admin, "DELETE", "/v1/users/"+uid+"/mfa", "")},
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		if t.Failed() {
			return
		}
		servertest.Expect(t, env.As(admin, "DELETE", "/v1/users/"+uid+"/mfa", nil), 204, "")
	}
}

// TestConflictTOTPEnrolTwice attacks POST /v1/me/mfa/totp released
// several times together by a user with no enrolment. Each start replaces
// an unconfirmed enrolment, so every one succeeds. Without the user locked
// first, the losers' INSERT (store.Tx.PutTOTP: UPDATE, then INSERT when
// there was none) broke the primary key and was answered 409 "TOTP is on
// already", which was false (nothing is confirmed).
func TestConflictTOTPEnrolTwice(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	for round := 0; round < 5; round++ {
		email := fmt.Sprintf("enrol%d@example.com", round)
		env.CreateUser(admin, email, memberPW)
		tok := env.Login(email, memberPW)
		var shots []volleyReq
		for i := 0; i < 8; i++ {
			shots = append(shots, volleyReq{req: asRequest(t, env, tok, "POST", "/v1/me/mfa/totp", "")})
		}
		res := volley(t, shots)
		for i, r := range res.resps {
			if r.Status != 200 {
				t.Errorf("round %d: start %d of 8 at once: %d %s", round, i, r.Status, r.Body)
			}
		}
		if t.Failed() {
			return
		}
	}
}

// TestConflictRollVsDelete attacks, on two nodes, a roll of a client
// credential, a third-party application's secret and a webhook's secret
// released together with its delete and with a PATCH of it, and the
// developer's removal (with revoke) released with their credential's roll.
// None may be answered 5xx.
func TestConflictRollVsDelete(t *testing.T) {
	a, b := twoLeakNodes(t, insecureWebhooks)
	admin, devID, devTok, _ := developer(t, a)
	unlimit(t, a, admin)
	rc := newReceiver(t, nil)
	for round := 0; round < 4; round++ {
		r := a.As(devTok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("r%d", round)})
		servertest.Expect(t, r, 201, "")
		cred := r.Map(t)["id"].(string)
		app := registerApp(t, a, devTok, "confidential", []string{appRedirect}, nil)
		r = a.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL + "/hooks", "events": []string{"*"}})
		servertest.Expect(t, r, 201, "")
		wh := r.Map(t)["id"].(string)
		shots := []volleyReq{
			{req: asRequest(t, a, devTok, "POST", "/v1/credentials/"+cred+"/roll", `{"overlap_seconds":60}`)},
			{req: asRequest(t, b, devTok, "PATCH", "/v1/credentials/"+cred, `{"name":"renamed"}`)},
			{req: asRequest(t, b, devTok, "DELETE", "/v1/credentials/"+cred, "")},
			{req: asRequest(t, a, devTok, "POST", "/v1/apps/"+app.ID+"/roll", `{"overlap_seconds":60}`)},
			{req: asRequest(t, b, devTok, "PATCH", "/v1/apps/"+app.ID, `{"name":"renamed"}`)},
			{req: asRequest(t, b, devTok, "DELETE", "/v1/apps/"+app.ID, "")},
			{req: asRequest(t, a, admin, "POST", "/v1/webhooks/"+wh+"/roll-secret", `{"overlap_seconds":60}`)},
			{req: asRequest(t, b, admin, "PATCH", "/v1/webhooks/"+wh, `{"description":"x"}`)},
			{req: asRequest(t, b, admin, "DELETE", "/v1/webhooks/"+wh, "")},
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
	}
	r := a.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "last"})
	servertest.Expect(t, r, 201, "")
	cred := r.Map(t)["id"].(string)
	shots := []volleyReq{
		{req: asRequest(t, a, devTok, "POST", "/v1/credentials/"+cred+"/roll", `{"overlap_seconds":60}`)},
		{req: asRequest(t, b, admin, "DELETE", "/v1/developers/"+devID+"?revoke_credentials=true", "")},
		{req: asRequest(t, a, devTok, "POST", "/v1/credentials", `{"name":"during"}`)},
	}
	res := volley(t, shots)
	no5xx(t, "developer removal", res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
}

// activeAdmins counts, as the operator op, the users of emails that are
// still active admins (a deleted one is not found).
func activeAdmins(t *testing.T, env *servertest.Env, op string, emails ...string) int {
	t.Helper()
	n := 0
	for _, email := range emails {
		r := env.As(op, "GET", "/v1/users?email="+email+"&all_accounts=true", nil)
		if r.Status == 404 {
			continue
		}
		servertest.Expect(t, r, 200, "")
		s := string(r.Body)
		if strings.Contains(s, `"status":"active"`) && strings.Contains(s, `"admin"`) {
			n++
		}
	}
	return n
}
