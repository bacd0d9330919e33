package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// Powers lost while a request that needs them is in flight (see
// conflicts_test.go for the volleys): once the change that takes them
// away has committed, nothing the request asked for is done.

// losePowerDuring releases shots together with the operator's change of
// user uid that takes their powers away — in turn by round, a disable, a
// removal of every role, a deletion — placed at a point that moves with
// the round (of rounds). It fails the test when an answer is 5xx, when the
// change fails, or when the audit log shows uid acting after it
// (actedAfter, demotedActed).
func losePowerDuring(t *testing.T, env *servertest.Env, op, uid string, round, rounds int, shots []volleyReq) {
	t.Helper()
	off := volleyReq{req: asRequest(t, env, op, "DELETE", "/v1/users/"+uid, "")}
	switch round % 3 {
	case 0:
		off = volleyReq{req: asRequest(t, env, op, "PATCH", "/v1/users/"+uid, `{"status":"disabled"}`)}
	case 1:
		off = volleyReq{req: asRequest(t, env, op, "PATCH", "/v1/users/"+uid, `{"roles":[]}`)}
	}
	at := round * len(shots) / rounds
	shots = insertShot(shots, at, off)
	res := volley(t, shots)
	what := fmt.Sprintf("round %d", round)
	no5xx(t, what, res, shotName(shots))
	t.Logf("%s: change at %d; answers %v", what, at, statuses(res))
	if s := res.resps[at]; s.Status/100 != 2 {
		t.Fatalf("%s: %s of the user: %d %s", what, off.req.Method, s.Status, s.Body)
	}
	if round%3 == 1 {
		demotedActed(t, what, env, op, uid)
	} else {
		actedAfter(t, what, env, op, uid)
	}
}

// userOffDuring releases shots together with an admin's disable (even
// rounds) or deletion (odd rounds) of user uid, placed at a point that
// moves with the round. It fails the test when an answer is 5xx, when the
// change fails, when the audit log shows uid acting after it
// (actedAfter), or when a console session a shot began still works.
func userOffDuring(t *testing.T, env *servertest.Env, admin, uid string, round int, shots []volleyReq) {
	t.Helper()
	what := fmt.Sprintf("round %d", round)
	offAt := round / 2 % (len(shots) + 1)
	off := volleyReq{req: asRequest(t, env, admin, "PATCH", "/v1/users/"+uid, `{"status":"disabled"}`)}
	if round%2 == 1 {
		off = volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/users/"+uid, "")}
	}
	shots = insertShot(shots, offAt, off)
	res := volley(t, shots)
	no5xx(t, what, res, shotName(shots))
	t.Logf("%s: %s at %d; answers %v", what, off.req.Method, offAt, statuses(res))
	if s := res.resps[offAt]; s.Status/100 != 2 {
		t.Fatalf("%s: %s of the member: %d %s", what, off.req.Method, s.Status, s.Body)
	}
	actedAfter(t, what, env, admin, uid)
	for i, r := range res.resps {
		if s := sessionOf(r); s != "" && consoleStatus(t, env, s) != http.StatusSeeOther {
			t.Errorf("%s: the session shot %d began still works", what, i)
		}
	}
}

// TestConflictAdminOffVsAppWrites attacks an admin's writes about
// third-party applications and other users' grants — approving
// applications (PUT /v1/apps/{id}/approval), ending a member's
// authorizations (DELETE /v1/users/{id}/authorizations/{client_id}),
// deleting a developer's client credential, changing, rolling and
// deleting a developer's application — released together with the
// operator's disable, demotion or deletion of that admin
// (losePowerDuring). None may be answered 5xx, and the audit log shows
// nothing done by the admin after the change: an approval that commits
// afterwards lets an application into the account on the word of someone
// who is no longer its admin.
func TestConflictAdminOffVsAppWrites(t *testing.T) {
	w := newAppsWorld(t)
	env, op := w.env, w.admin
	unlimit(t, env, op)
	servertest.Expect(t, env.As(op, "PUT", "/v1/settings", map[string]any{"max_credentials_per_user": 1000}), 200, "")
	ua := newUserAgent(t, env.URL)
	const rounds = 9
	for round := range rounds {
		email := fmt.Sprintf("boss%d@example.com", round)
		uid := env.CreateUser(op, email, memberPW, "admin")
		boss := env.Login(email, memberPW)
		apps := make([]thirdPartyApp, 4)
		for i := range apps {
			apps[i] = registerApp(t, env, w.devTok, "confidential", []string{appRedirect}, nil)
		}
		// The member authorises the first two.
		for _, app := range apps[:2] {
			v := oauth2.GenerateVerifier()
			cb, resp, body := ua.authorize(oauthConfig(env, app, appRedirect, "workspaces:read").AuthCodeURL("s", oauth2.S256ChallengeOption(v)),
				appMember, memberPW, "allow")
			if cb == nil || cb.Query().Get("code") == "" {
				t.Fatalf("no code: %v %d %.300s", cb, resp.StatusCode, body)
			}
		}
		r := env.As(w.devTok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("c%d", round)})
		servertest.Expect(t, r, 201, "")
		cred := r.Map(t)["id"].(string)
		shot := func(method, path, body string) volleyReq {
			return volleyReq{req: asRequest(t, env, boss, method, path, body)}
		}
		shots := []volleyReq{
			shot("PUT", "/v1/apps/"+apps[2].ID+"/approval", ""),
			shot("DELETE", "/v1/users/"+w.memberID+"/authorizations/"+apps[0].ClientID, ""),
			shot("PATCH", "/v1/apps/"+apps[0].ID, `{"redirect_uris":["https://elsewhere.example.com/cb"]}`),
			shot("DELETE", "/v1/credentials/"+cred, ""),
			shot("PUT", "/v1/apps/"+apps[3].ID+"/approval", ""),
			shot("POST", "/v1/apps/"+apps[1].ID+"/roll", `{"overlap_seconds":0}`),
			shot("DELETE", "/v1/users/"+w.memberID+"/authorizations/"+apps[1].ClientID, ""),
			shot("DELETE", "/v1/apps/"+apps[3].ID, ""),
		}
		losePowerDuring(t, env, op, uid, round, rounds, shots)
		if t.Failed() {
			return
		}
	}
}

// TestConflictDeveloperOffVsAppWrites attacks a developer's changes of
// their own third-party applications — new redirect URIs, a new secret
// (roll), a deletion — released together with the operator's disable,
// removal of every role (the developer's among them) or deletion of the
// developer (losePowerDuring). None may be answered 5xx, and the audit
// log shows nothing done by the developer after the change: an
// application outlives its owner, so a secret rolled or a redirect URI
// added afterwards would hand it to someone who may no longer manage it.
func TestConflictDeveloperOffVsAppWrites(t *testing.T) {
	developerLosesPower(t, "dev", func(env *servertest.Env, dev string, shot shotAs) []volleyReq {
		apps := make([]thirdPartyApp, 3)
		for i := range apps {
			apps[i] = registerApp(t, env, dev, "confidential", []string{appRedirect}, nil)
		}
		return []volleyReq{
			shot("POST", "/v1/apps/"+apps[0].ID+"/roll", `{"overlap_seconds":60}`),
			shot("PATCH", "/v1/apps/"+apps[1].ID, `{"redirect_uris":["https://elsewhere.example.com/cb"]}`),
			shot("DELETE", "/v1/apps/"+apps[2].ID, ""),
			shot("PATCH", "/v1/apps/"+apps[0].ID, `{"name":"renamed"}`),
			shot("POST", "/v1/apps/"+apps[1].ID+"/roll", `{"overlap_seconds":0}`),
		}
	})
}

// shotAs makes a volley shot of one caller's request.
type shotAs func(method, path, body string) volleyReq

// developerLosesPower runs rounds of losePowerDuring, each against a
// fresh developer (e-mail prefix and the round) whose shots make makes
// from the developer's token, before the operator's change.
func developerLosesPower(t *testing.T, prefix string, make func(env *servertest.Env, dev string, shot shotAs) []volleyReq) {
	t.Helper()
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	const rounds = 9
	for round := range rounds {
		email := fmt.Sprintf("%s%d@example.com", prefix, round)
		uid := env.CreateUser(op, email, memberPW)
		servertest.Expect(t, env.As(op, "PUT", "/v1/developers/"+uid, nil), 204, "")
		dev := env.Login(email, memberPW)
		shots := make(env, dev, func(method, path, body string) volleyReq {
			return volleyReq{req: asRequest(t, env, dev, method, path, body)}
		})
		losePowerDuring(t, env, op, uid, round, rounds, shots)
		if t.Failed() {
			return
		}
	}
}

// TestConflictOwnPasswordVsUserOff attacks users' changes of their own
// password — members' in the console (POST /admin/me/password), an
// admin's with their password-grant token (PATCH /v1/users/{own id}), each
// hashing the new password before its transaction — released together
// with the operator's disable of each (even rounds) or new password for
// each (odd rounds). A change of one's own password keeps the credential
// making it, moved onto the user's epochs: one that committed after the
// disable moved the session onto the disable's new epoch, so re-enabling
// the member brought it back, and one that committed after the
// operator's new password replaced it and kept the session or token the
// operator's change had ended. Whatever the order, the credential is dead
// afterwards (even once the user is enabled again) and the operator's
// password is the user's.
func TestConflictOwnPasswordVsUserOff(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	const members = 2 // and one admin
	for round := range 10 {
		var (
			shots []volleyReq
			live  []func() bool // whether the credential making user i's change still works
			ids   []string
		)
		opPW := fmt.Sprintf("the operator's password %d", round)
		next := fmt.Sprintf("their own new password %d", round)
		email := func(i int) string { return fmt.Sprintf("own%d-%d@example.com", round, i) }
		for i := range members + 1 {
			if i < members {
				ids = append(ids, env.CreateUser(op, email(i), memberPW))
				s := uiSignIn(t, env, email(i), memberPW)
				_, body, _ := s.get("/admin/me")
				f := formFields(t, body, "/admin/me/password")
				f.Set("current_password", memberPW)
				f.Set("new_password", next)
				f.Set("repeat_password", next)
				ua := &userAgent{t: t, base: env.URL, c: s.c} // the session's cookies, for its form as a shot
				shots, live = append(shots, ua.formShot("/admin/me/password", f)), append(live, s.live)
			} else {
				ids = append(ids, env.CreateUser(op, email(i), memberPW, "admin"))
				tok := env.Login(email(i), memberPW)
				shots = append(shots, volleyReq{req: asRequest(t, env, tok, "PATCH", "/v1/users/"+ids[i], fmt.Sprintf(`{"password":%q}`, next))})
				live = append(live, func() bool { return env.As(tok, "GET", "/v1/me", nil).Status == 200 })
			}
			off := asRequest(t, env, op, "PATCH", "/v1/users/"+ids[i], `{"status":"disabled"}`)
			if round%2 == 1 {
				off = asRequest(t, env, op, "PATCH", "/v1/users/"+ids[i], fmt.Sprintf(`{"password":%q}`, opPW))
			}
			shots = append(shots, volleyReq{req: off})
		}
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: answers %v", what, statuses(res))
		for i, uid := range ids {
			if s := res.resps[2*i+1]; s.Status != 200 {
				t.Fatalf("%s: the operator's change: %d %s", what, s.Status, s.Body)
			}
			if round%2 == 0 {
				servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+uid, map[string]string{"status": "active"}), 200, "")
			} else if r := env.Request("POST", "/authorization", map[string]string{"username": email(i), "password": opPW}); r.Status != 200 {
				t.Errorf("%s: user %d: the operator's password does not sign in: %d %s", what, i, r.Status, r.Body)
			}
			if live[i]() {
				t.Errorf("%s: user %d: the credential that changed the password still works after the operator's change", what, i)
			}
		}
		if t.Failed() {
			return
		}
	}
}

// TestConflictAdminOffVsAPIAccessWrites attacks an admin's changes of
// their own API access application — its token lifetime (PATCH
// /v1/api-access) and a reissued lineage (the console's POST
// /admin/api-access/reissue) — released together with the operator's
// disable, demotion or deletion of that admin (losePowerDuring). None may
// be answered 5xx, and the audit log shows nothing done by the admin after
// the change: a reissue that commits afterwards answers with tokens that
// never work, audited in the name of someone who may no longer act.
func TestConflictAdminOffVsAPIAccessWrites(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	const rounds = 9
	reissued := 0
	for round := range rounds {
		email := fmt.Sprintf("boss%d@example.com", round)
		uid := env.CreateUser(op, email, memberPW, "admin")
		boss := env.Login(email, memberPW)
		if r := env.As(boss, "POST", "/v1/api-access", nil); r.Status != 201 && r.Status != 200 {
			t.Fatalf("enable API access: %d %s", r.Status, r.Body)
		}
		session := consoleSession(t, env, email, memberPW)
		page := env.Request("GET", "/admin/api-access", nil, "Cookie", "gatehouse_session="+session)
		csrf := between(string(page.Body), `name="csrf" value="`, `"`)
		if csrf == "" {
			t.Fatalf("API access page: %d %.300s", page.Status, page.Body)
		}
		var shots []volleyReq
		for i := range 8 {
			if i%2 == 0 {
				shots = append(shots, volleyReq{req: asRequest(t, env, boss, "PATCH", "/v1/api-access", fmt.Sprintf(`{"access_token_ttl_days":%d}`, 10+i))})
			} else {
				shots = append(shots, volleyReq{req: formRequest(t, env.URL+"/admin/api-access/reissue", url.Values{"csrf": {csrf}},
					"Cookie", "gatehouse_session="+session, "Sec-Fetch-Site", "same-origin")})
			}
		}
		losePowerDuring(t, env, op, uid, round, rounds, shots)
		for _, e := range auditWhere(t, env, op, "actor="+uid) {
			if e.Action == "api_access.reissue" {
				reissued++
			}
		}
	}
	// The console's reissue went through before the change in some
	// rounds: the shots were real.
	if reissued == 0 {
		t.Fatal("no lineage reissued in any round")
	}
}

// TestConflictDeveloperOffVsCredentialWrites attacks a developer's
// changes of their own client credentials — renames, disables, new
// secrets (roll, with and without overlap) — released together with the
// operator's disable, removal of every role or deletion of the developer
// (losePowerDuring). None may be answered 5xx, and the audit log shows
// nothing done by the developer after the change: a credential outlives
// its owner's role ("remove role, keep credentials"), so a secret rolled
// afterwards would hand it to a caller who may no longer manage it.
func TestConflictDeveloperOffVsCredentialWrites(t *testing.T) {
	developerLosesPower(t, "cdev", func(env *servertest.Env, dev string, shot shotAs) []volleyReq {
		creds := make([]string, 3)
		for i := range creds {
			r := env.As(dev, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("c%d", i)})
			servertest.Expect(t, r, 201, "")
			creds[i] = r.Map(t)["id"].(string)
		}
		return []volleyReq{
			shot("POST", "/v1/credentials/"+creds[0]+"/roll", `{"overlap_seconds":60}`),
			shot("PATCH", "/v1/credentials/"+creds[1], `{"name":"renamed"}`),
			shot("PATCH", "/v1/credentials/"+creds[2], `{"enabled":false}`),
			shot("POST", "/v1/credentials/"+creds[1]+"/roll", `{"overlap_seconds":0}`),
			shot("PATCH", "/v1/credentials/"+creds[0], `{"name":"renamed too"}`),
		}
	})
}

// TestConflictOperatorOffVsAccountWrites attacks an operator's changes of
// accounts — a new account with an admin of the operator's choosing,
// another account renamed and suspended, a user of another account
// deleted — released together with another operator's disable (even
// rounds) or demotion (odd rounds) of that operator, who loses the
// operator's power with their admin role. None may be answered 5xx, and
// the audit log shows nothing done by the operator after the change.
func TestConflictOperatorOffVsAccountWrites(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	const rounds = 8
	for round := range rounds {
		email := fmt.Sprintf("op%d@example.com", round)
		victim, err := env.Server.Service.Recover(t.Context(), email, memberPW)
		if err != nil {
			t.Fatal(err)
		}
		tok := env.Login(email, memberPW)
		other, otherAdmin := env.CreateAccount(op, fmt.Sprintf("other %d", round), fmt.Sprintf("admin@other%d.example", round), memberPW)
		member := env.CreateUser(otherAdmin, fmt.Sprintf("m@other%d.example", round), memberPW)
		shot := func(method, path, body string) volleyReq {
			return volleyReq{req: asRequest(t, env, tok, method, path, body)}
		}
		shots := []volleyReq{
			shot("POST", "/v1/accounts", fmt.Sprintf(`{"name":"new %d","admin_email":"admin@new%d.example","admin_password":%q}`, round, round, memberPW)),
			shot("PATCH", "/v1/accounts/"+other, `{"name":"renamed"}`),
			shot("DELETE", "/v1/accounts/"+other+"/users/"+member, ""),
			shot("PATCH", "/v1/accounts/"+other, `{"status":"suspended"}`),
		}
		change := `{"status":"disabled"}`
		if round%2 == 1 {
			change = `{"roles":[]}`
		}
		at := round / 2 % (len(shots) + 1)
		shots = insertShot(shots, at, volleyReq{req: asRequest(t, env, op, "PATCH", "/v1/users/"+victim.ID, change)})
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: change at %d; answers %v", what, at, statuses(res))
		if s := res.resps[at]; s.Status/100 != 2 {
			t.Fatalf("%s: the change of the operator: %d %s", what, s.Status, s.Body)
		}
		if round%2 == 1 {
			demotedActed(t, what, env, op, victim.ID)
		} else {
			actedAfter(t, what, env, op, victim.ID)
		}
		if t.Failed() {
			return
		}
	}
}
