package e2e

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestRollOnceReleasedTogether attacks the rule that a roll replaces an
// API token, or a client credential revoked for good, once: eight rolls
// of one, released together over connections opened in advance through
// two nodes on one store, make exactly one replacement; every other roll
// is 409 conflict naming it (a retry whose answer was lost learns which
// token to roll next), none is 5xx. Before, each roll made a live
// replacement of its own: as many live API tokens of one name as rolls,
// past max_api_tokens_per_account, and as many live credentials as rolls
// of a leaked one, past max_credentials_per_user.
func TestRollOnceReleasedTogether(t *testing.T) {
	a, b := twoLeakNodes(t)
	nodes := []*servertest.Env{a, b}
	op := a.AdminToken()
	unlimit(t, a, op)
	servertest.Expect(t, a.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, a.As(op, "PUT", "/v1/settings", map[string]any{"max_api_tokens_per_account": 3, "max_credentials_per_user": 2}), 200, "")
	uid := a.CreateUser(op, "roller@example.com", memberPW)
	servertest.Expect(t, a.As(op, "PUT", "/v1/developers/"+uid, nil), 204, "")
	dev := a.Login("roller@example.com", memberPW)

	// rollTogether releases eight rolls of path by tok through both nodes
	// and returns what the one that made a replacement answered (made
	// reads it from a 2xx answer); the others must be 409 naming the
	// replacement's id (named turns the answer into it).
	rollTogether := func(what, tok, path string, made func(m map[string]any) string, named func(made string) string) string {
		t.Helper()
		var shots []volleyReq
		for i := range 8 {
			shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], tok, "POST", path, `{"overlap_seconds":3600}`)})
		}
		res := churned(t, volley(t, shots))
		no5xx(t, what, res, shotName(shots))
		var answers []string
		for _, r := range res.resps {
			if r.Status/100 == 2 {
				answers = append(answers, made(r.Map(t)))
			}
		}
		if len(answers) != 1 {
			t.Fatalf("%s: %d rolls made a replacement (%v), want exactly one", what, len(answers), statuses(res))
		}
		id := named(answers[0])
		for i, r := range res.resps {
			if r.Status/100 != 2 && r.Status != 0 && (r.Status != 409 || !strings.Contains(string(r.Body), id)) {
				t.Errorf("%s: roll %d: %d %s, want 409 naming %s", what, i, r.Status, r.Body, id)
			}
		}
		t.Logf("%s: answers %v", what, statuses(res))
		return answers[0]
	}
	same := func(id string) string { return id }

	for _, leaked := range []bool{false, true} {
		what := fmt.Sprintf("API token, leaked %v", leaked)
		r := a.As(op, "POST", "/v1/api-tokens", map[string]string{"name": fmt.Sprintf("zapier %v", leaked)})
		servertest.Expect(t, r, 201, "")
		tok := r.Map(t)
		if leaked {
			servertest.Expect(t, a.Request("POST", "/oauth/revoke", map[string]string{"token": tok["token"].(string)}), 200, "")
		}
		rollTogether(what, op, "/v1/api-tokens/"+tok["id"].(string)+"/roll", func(m map[string]any) string { return m["id"].(string) }, same)
	}
	// The account holds what it held before the rolls and one replacement
	// each: the first token (live for its overlap) and the leaked one
	// (refused), and their replacements.
	r := a.As(op, "GET", "/v1/api-tokens", nil)
	servertest.Expect(t, r, 200, "")
	if n := len(r.Map(t)["data"].([]any)); n != 4 {
		t.Fatalf("%d API tokens after the rolls, want 4: %s", n, r.Body)
	}

	r = a.As(dev, "POST", "/v1/credentials", map[string]string{"name": "ci"})
	servertest.Expect(t, r, 201, "")
	cred := r.Map(t)
	servertest.Expect(t, a.Request("POST", "/oauth/revoke", map[string]string{"token": cred["client_secret"].(string)}), 200, "")
	// A credential's roll answers its client id: the replacement's id is
	// read from the developer's list.
	byClientID := func(clientID string) string {
		r := a.As(dev, "GET", "/v1/credentials", nil)
		servertest.Expect(t, r, 200, "")
		for _, c := range r.Map(t)["data"].([]any) {
			if c := c.(map[string]any); c["client_id"] == clientID {
				return c["id"].(string)
			}
		}
		t.Fatalf("no credential of client id %s: %s", clientID, r.Body)
		return ""
	}
	rollTogether("credential revoked for good", dev, "/v1/credentials/"+cred["id"].(string)+"/roll",
		func(m map[string]any) string { return m["client_id"].(string) }, byClientID)
	r = a.As(dev, "GET", "/v1/credentials", nil)
	servertest.Expect(t, r, 200, "")
	if n := len(r.Map(t)["data"].([]any)); n != 2 {
		t.Fatalf("%d credentials after the rolls, want the revoked one and one replacement: %s", n, r.Body)
	}
}

// TestReissueEndsEarlierLineagesOnEveryNode: an API access application
// has one live lineage. Its tokens from the enable (POST /v1/api-access),
// in use on node B, stop there — access and refresh — once the admin
// reissues in node A's console, and twice-submitted reissues leave only
// one lineage working.
func TestReissueEndsEarlierLineagesOnEveryNode(t *testing.T) {
	a, b := twoLeakNodes(t)
	op := a.AdminToken()
	unlimit(t, a, op)
	a.CreateUser(op, "boss@example.com", memberPW, "admin")
	boss := a.Login("boss@example.com", memberPW)
	r := a.As(boss, "POST", "/v1/api-access", nil)
	servertest.Expect(t, r, 201, "")
	enabled := r.Map(t)
	access, refresh, clientID := enabled["access_token"].(string), enabled["refresh_token"].(string), enabled["client_id"].(string)
	servertest.Expect(t, b.As(access, "GET", "/v1/me", nil), 200, "") // cached on B

	session := consoleSession(t, a, "boss@example.com", memberPW)
	page := a.Request("GET", "/admin/api-access", nil, "Cookie", "gatehouse_session="+session)
	csrf := between(string(page.Body), `name="csrf" value="`, `"`)
	if csrf == "" {
		t.Fatalf("API access page: %d %.300s", page.Status, page.Body)
	}
	reissue := func() volleyReq {
		return volleyReq{req: formRequest(t, a.URL+"/admin/api-access/reissue", url.Values{"csrf": {csrf}},
			"Cookie", "gatehouse_session="+session, "Sec-Fetch-Site", "same-origin")}
	}
	// A double submit: two reissues released together.
	res := volley(t, []volleyReq{reissue(), reissue()})
	no5xx(t, "reissue", res, func(int) string { return "reissue" })
	for i, s := range res.resps {
		if s.Status/100 != 2 && s.Status/100 != 3 {
			t.Fatalf("reissue %d: %d %.300s", i, s.Status, s.Body)
		}
	}
	servertest.Expect(t, b.As(access, "GET", "/v1/me", nil), 401, "")
	servertest.Expect(t, b.Request("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID},
		"refresh_token": {refresh}}.Encode(), "Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_grant")
	// One lineage works: the audit log shows two reissues, the second of
	// which ended the first's.
	ended := map[string]int{}
	for _, e := range auditWhere(t, a, op, "action=api_access.reissue") {
		ended[e.Details["lineages_ended"]]++
	}
	if ended["1"] != 2 {
		t.Fatalf("reissues ended %v lineages, want two reissues ending one each (the enable's, then the first reissue's)", ended)
	}
}

// TestReissueVsRefreshReleasedTogether attacks a reissue (the console's
// "Issue new tokens") released together with a refresh of the lineage it
// ends, a round for each of several admins. Whichever commits first, the
// lineage is over afterwards: the refresh is refused, or the tokens it
// answered with never work. And the two take their locks in one order:
// on PostgreSQL no deadlock is counted while they run (the reissue once
// updated the lineage's token rows while holding the admin's row, which
// a refresh's new tokens wait for while holding the used token's row —
// each rolled back the other, a second's stall for a whole batch of
// token issuance).
func TestReissueVsRefreshReleasedTogether(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	deadlocks := pgDeadlocksSince(t, env)
	const rounds = 16
	refreshedFirst := 0
	for round := range rounds {
		email := fmt.Sprintf("reissuer%d@example.com", round)
		env.CreateUser(op, email, memberPW, "admin")
		app := enableAPIAccess(t, env, env.Login(email, memberPW), nil)
		session := consoleSession(t, env, email, memberPW)
		page := env.Request("GET", "/admin/api-access", nil, "Cookie", "gatehouse_session="+session)
		csrf := between(string(page.Body), `name="csrf" value="`, `"`)
		if csrf == "" {
			t.Fatalf("API access page: %d %.300s", page.Status, page.Body)
		}
		shots := []volleyReq{
			{req: formRequest(t, env.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {app.ClientID},
				"refresh_token": {app.RefreshToken}})},
			{req: formRequest(t, env.URL+"/admin/api-access/reissue", url.Values{"csrf": {csrf}},
				"Cookie", "gatehouse_session="+session, "Sec-Fetch-Site", "same-origin")},
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return []string{"refresh", "reissue"}[i] })
		if s := res.resps[1].Status; s/100 != 2 && s/100 != 3 {
			t.Fatalf("round %d: reissue %d %.300s", round, s, res.resps[1].Body)
		}
		// The enable's lineage is over, whatever the refresh got.
		servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 401, "")
		servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 400, "invalid_grant")
		switch got := res.resps[0]; got.Status {
		case 200:
			refreshedFirst++
			var next apiAccess
			got.JSON(t, &next)
			servertest.Expect(t, env.As(next.AccessToken, "GET", "/v1/me", nil), 401, "")
			servertest.Expect(t, refresh(env, app.ClientID, next.RefreshToken), 400, "invalid_grant")
		case 400:
		default:
			t.Fatalf("round %d: refresh %d %.300s", round, got.Status, got.Body)
		}
	}
	t.Logf("the refresh came first in %d of %d rounds", refreshedFirst, rounds)
	if n := deadlocks(); n > 0 {
		t.Fatalf("PostgreSQL counted %d deadlocks while reissues and refreshes ran together", n)
	}
}

// pgDeadlocksSince returns how many deadlocks PostgreSQL has counted in
// env's database since it was called — none are expected anywhere
// (docs/design.md, Errors); always 0 on SQLite, whose writes do not
// interleave. A backend reports its count within PostgreSQL's statistics
// interval, so the reading waits for a change until that has passed.
func pgDeadlocksSince(t *testing.T, env *servertest.Env) func() int64 {
	t.Helper()
	if env.DBPath != "" {
		return func() int64 { return 0 }
	}
	db, err := sql.Open("pgx", env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	read := func() int64 {
		var n int64
		if err := db.QueryRow(`SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := read()
	return func() int64 {
		n := read()
		for deadline := time.Now().Add(11 * time.Second); n == before && time.Now().Before(deadline); n = read() {
			time.Sleep(250 * time.Millisecond)
		}
		return n - before
	}
}
