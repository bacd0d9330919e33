package e2e

import (
	"net/url"
	"testing"

	"golang.org/x/oauth2"
)

// TestAppsTwoNodes: a third-party application's tokens, issued through
// one node, end on both nodes at once when the user revokes the
// authorization, when an admin disables the user, and when the developer
// deletes the application: the access tokens on the API and forward
// auth, and the refresh token.
func TestAppsTwoNodes(t *testing.T) {
	a, b, _, admin := clusterPair(t)
	st, out := a.send(t, "POST", "/v1/users", map[string]any{"email": "dev@example.com", "name": "Dev", "password": memberPW, "roles": []string{"developer"}}, bearer(admin)...)
	if st != 201 {
		t.Fatalf("developer: %d %v", st, out)
	}
	st, out = a.send(t, "POST", "/v1/users", map[string]any{"email": appMember, "name": "Member", "password": memberPW, "roles": []string{}}, bearer(admin)...)
	if st != 201 {
		t.Fatalf("member: %d %v", st, out)
	}
	memberID := out["id"].(string)
	dev := login(t, a, "dev@example.com", memberPW)
	const redirect = "http://127.0.0.1:7000/cb"
	register := func() (id, clientID string) {
		st, out := a.send(t, "POST", "/v1/apps", map[string]any{"name": "Sync", "type": "public", "redirect_uris": []string{redirect}}, bearer(dev)...)
		if st != 201 {
			t.Fatalf("register: %d %v", st, out)
		}
		return out["id"].(string), out["client_id"].(string)
	}
	// tokens authorises clientID through node A's pages, exchanges the
	// code on node B and refreshes on node A: the refreshed pair works on
	// both nodes, for the API and for forward auth.
	type pair struct{ access, refresh, first string }
	tokens := func(clientID string) pair {
		t.Helper()
		conf := &oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: []string{"workspaces:read"},
			Endpoint: oauth2.Endpoint{AuthURL: a.url + "/oauth/authorize", TokenURL: b.url + "/oauth/token"}}
		v := oauth2.GenerateVerifier()
		cb, resp, body := newUserAgent(t, a.url).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), appMember, memberPW, "allow")
		if cb == nil || cb.Query().Get("code") == "" {
			t.Fatalf("no code: %v %d %s", cb, resp.StatusCode, body)
		}
		st, out := b.send(t, "POST", "/oauth/token", map[string]string{"grant_type": "authorization_code", "client_id": clientID,
			"code": cb.Query().Get("code"), "redirect_uri": redirect, "code_verifier": v})
		if st != 200 {
			t.Fatalf("exchange on B: %d %v", st, out)
		}
		first := out["access_token"].(string)
		st, out = a.send(t, "POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID},
			"refresh_token": {out["refresh_token"].(string)}})
		if st != 200 || out["refresh_token"] == nil {
			t.Fatalf("refresh on A: %d %v", st, out)
		}
		p := pair{access: out["access_token"].(string), refresh: out["refresh_token"].(string), first: first}
		for _, tok := range []string{p.first, p.access} {
			wantStatus(t, "issued", 200, tok, a, b)
			wantForwardAuth(t, "issued", 200, tok, a, b)
		}
		return p
	}
	// ended checks that nothing of p works on either node: the access
	// tokens on the API and forward auth, the refresh token on A and B.
	ended := func(step string, p pair, clientID string) {
		t.Helper()
		for _, tok := range []string{p.access, p.first} {
			wantStatus(t, step, 401, tok, a, b)
			wantForwardAuth(t, step, 401, tok, a, b)
		}
		for i, n := range []*process{a, b} {
			st, out := n.send(t, "POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {p.refresh}})
			if st != 400 || out["error"] != "invalid_grant" {
				t.Fatalf("%s: node %d refreshes: %d %v", step, i, st, out)
			}
		}
	}

	appID, clientID := register()
	p := tokens(clientID)
	member := login(t, b, appMember, memberPW)
	if st, out := b.send(t, "DELETE", "/v1/me/authorizations/"+clientID, nil, bearer(member)...); st != 204 {
		t.Fatalf("revoke authorization on B: %d %v", st, out)
	}
	ended("authorization revoked on B", p, clientID)

	p = tokens(clientID)
	if st, out := b.send(t, "PATCH", "/v1/users/"+memberID, map[string]string{"status": "disabled"}, bearer(admin)...); st != 200 {
		t.Fatalf("disable on B: %d %v", st, out)
	}
	ended("user disabled on B", p, clientID)
	if st, out := a.send(t, "PATCH", "/v1/users/"+memberID, map[string]string{"status": "active"}, bearer(admin)...); st != 200 {
		t.Fatalf("enable: %d %v", st, out)
	}
	ended("user enabled again: nothing comes back", p, clientID)

	p = tokens(clientID)
	if st, out := a.send(t, "DELETE", "/v1/apps/"+appID, nil, bearer(dev)...); st != 204 {
		t.Fatalf("delete app on A: %d %v", st, out)
	}
	ended("application deleted on A", p, clientID)

	// An application whose developer is disabled is no longer the
	// account's own (the developer may still hold its secret): under
	// "approved" its tokens end on both nodes.
	_, clientID = register()
	p = tokens(clientID)
	st, me := a.send(t, "GET", "/v1/me", nil, bearer(dev)...)
	if st != 200 {
		t.Fatalf("developer: %d %v", st, me)
	}
	devID := me["user"].(map[string]any)["id"].(string)
	if st, out := b.send(t, "PATCH", "/v1/users/"+devID, map[string]string{"status": "disabled"}, bearer(admin)...); st != 200 {
		t.Fatalf("disable the developer on B: %d %v", st, out)
	}
	ended("the application's developer disabled on B", p, clientID)
	if st, out := a.send(t, "PATCH", "/v1/users/"+devID, map[string]string{"status": "active"}, bearer(admin)...); st != 200 {
		t.Fatalf("enable the developer: %d %v", st, out)
	}
	dev = login(t, a, "dev@example.com", memberPW)

	// The account's third_party_apps policy holds at every use, not only
	// at consent: "none" ends its own application's tokens on both nodes.
	_, clientID = register()
	p = tokens(clientID)
	if st, out := b.send(t, "PUT", "/v1/settings", map[string]string{"third_party_apps": "none"}, bearer(admin)...); st != 200 {
		t.Fatalf("third_party_apps none on B: %d %v", st, out)
	}
	ended("third_party_apps none on B", p, clientID)

	// A suspended publisher's application stops for every account's users:
	// an application of another account, authorised under "any".
	if st, out := a.send(t, "PUT", "/v1/settings", map[string]string{"third_party_apps": "any"}, bearer(admin)...); st != 200 {
		t.Fatalf("third_party_apps any on A: %d %v", st, out)
	}
	st, acc := a.send(t, "POST", "/v1/accounts", map[string]string{"name": "publisher", "admin_email": "boss@publisher.example", "admin_password": memberPW}, bearer(admin)...)
	if st != 201 {
		t.Fatalf("publisher account: %d %v", st, acc)
	}
	boss := login(t, a, "boss@publisher.example", memberPW)
	if st, out := a.send(t, "POST", "/v1/users", map[string]any{"email": "dev@publisher.example", "password": memberPW, "roles": []string{"developer"}}, bearer(boss)...); st != 201 {
		t.Fatalf("publisher's developer: %d %v", st, out)
	}
	dev = login(t, a, "dev@publisher.example", memberPW)
	_, clientID = register()
	p = tokens(clientID)
	if st, out := b.send(t, "PATCH", "/v1/accounts/"+acc["id"].(string), map[string]string{"status": "suspended"}, bearer(admin)...); st != 200 {
		t.Fatalf("suspend the publisher on B: %d %v", st, out)
	}
	// Its tokens end on both nodes, and the application itself is no
	// longer a client: its refresh is invalid_client.
	for _, tok := range []string{p.access, p.first} {
		wantStatus(t, "publisher suspended on B", 401, tok, a, b)
		wantForwardAuth(t, "publisher suspended on B", 401, tok, a, b)
	}
	for i, n := range []*process{a, b} {
		st, out := n.send(t, "POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {p.refresh}})
		if st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("publisher suspended: node %d refreshes: %d %v", i, st, out)
		}
	}
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: []string{"workspaces:read"},
		Endpoint: oauth2.Endpoint{AuthURL: a.url + "/oauth/authorize", TokenURL: a.url + "/oauth/token"}}
	if cb, resp, _ := newUserAgent(t, a.url).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), appMember, memberPW, "allow"); cb != nil || resp.StatusCode != 400 {
		t.Fatalf("a suspended publisher's application was authorised: %v %d", cb, resp.StatusCode)
	}
}

// wantForwardAuth fails unless every node answers forward auth
// (GET /v1/auth/check) for tok with status want.
func wantForwardAuth(t *testing.T, step string, want int, tok string, nodes ...*process) {
	t.Helper()
	for i, n := range nodes {
		if st, out := n.send(t, "GET", "/v1/auth/check", nil, bearer(tok)...); st != want {
			t.Fatalf("%s: node %d's forward auth answers %d %v, want %d", step, i, st, out, want)
		}
	}
}
