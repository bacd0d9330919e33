package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

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
