package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// More conflicting writes released together (see conflicts_test.go):
// each test here fails when the server answers one of them 5xx, or when
// what they leave breaks a rule.

// shotName names a volley shot by its method and path.
func shotName(shots []volleyReq) func(i int) string {
	return func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path }
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
		shots = append(shots[:at], append([]volleyReq{suspend}, shots[at:]...)...)

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
