package e2e

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// TestClusterRedisDownEveryKind: with the private Redis stopped, every
// kind of request that needs a check is answered 503
// temporarily_unavailable — never 200, never 500 — and nothing a
// refused management write asked for is changed once Redis is back.
func TestClusterRedisDownEveryKind(t *testing.T) {
	a, b, rs, admin := clusterPair(t)
	// A member, an API token, a developer's client credential.
	st, user := a.send(t, "POST", "/v1/users", map[string]any{"email": "kind@example.com", "password": memberPW}, bearer(admin)...)
	if st != 201 {
		t.Fatalf("create user: %d %v", st, user)
	}
	userID := user["id"].(string)
	member := login(t, a, "kind@example.com", memberPW)
	w := adminWaysIn(t, a, "admin@example.com", processAdminPassword)
	admin, key, grant := w.admin, w.apiToken, w.grant
	st, cc := b.send(t, "POST", "/oauth/token", grant)
	if st != 200 {
		t.Fatalf("client credentials: %d %v", st, cc)
	}
	ccTok := cc["access_token"].(string)
	st, access := a.send(t, "POST", "/v1/api-access", map[string]any{"access_token_ttl_days": 1}, bearer(admin)...)
	if st != 201 && st != 200 {
		t.Fatalf("api access: %d %v", st, access)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {access["client_id"].(string)}, "refresh_token": {access["refresh_token"].(string)}}
	appTok := access["access_token"].(string)
	// Everything cached on both nodes.
	for range 2 {
		for _, n := range []*process{a, b} {
			for _, h := range [][]string{bearer(member), bearer(admin), bearer(ccTok), {"X-API-Token", key}, {"X-API-Token", key, "X-User-Email", "kind@example.com"}} {
				if st, out := n.send(t, "GET", "/v1/me", nil, h...); st != 200 {
					t.Fatalf("before: %v: %d %v", h[0], st, out)
				}
			}
		}
	}

	rs.stop()
	type call struct {
		name, method, path string
		body               any
		headers            []string
	}
	calls := []call{
		{"bearer /v1/me", "GET", "/v1/me", nil, bearer(member)},
		{"admin bearer /v1/users", "GET", "/v1/users", nil, bearer(admin)},
		{"client credentials token /v1/me", "GET", "/v1/me", nil, bearer(ccTok)},
		{"API token", "GET", "/v1/me", nil, []string{"X-API-Token", key}},
		{"API token acting as user", "GET", "/v1/me", nil, []string{"X-API-Token", key, "X-User-Email", "kind@example.com"}},
		{"forward auth", "GET", "/v1/auth/check", nil, bearer(member)},
		{"forward auth API token", "GET", "/v1/auth/check", nil, []string{"X-API-Token", key}},
		{"password grant /authorization", "POST", "/authorization", map[string]string{"username": "kind@example.com", "password": memberPW}, nil},
		{"password grant /oauth/token", "POST", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"kind@example.com"}, "password": {memberPW}}, nil},
		{"client credentials grant", "POST", "/oauth/token", grant, nil},
		{"introspection by client", "POST", "/oauth/introspect", url.Values{"token": {member}, "client_id": grant["client_id"], "client_secret": grant["client_secret"]}, nil},
		{"introspection by bearer", "POST", "/oauth/introspect", url.Values{"token": {member}}, bearer(admin)},
		{"RFC 7009 revoke", "POST", "/oauth/revoke", map[string]string{"token": ccTok}, nil},
		{"role change", "PATCH", "/v1/users/" + userID, map[string]any{"roles": []string{"admin"}}, bearer(admin)},
		{"password change", "PATCH", "/v1/users/" + userID, map[string]any{"password": "another long password"}, bearer(admin)},
		{"disable", "PATCH", "/v1/users/" + userID, map[string]any{"status": "disabled"}, bearer(admin)},
		{"settings", "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 3}}, bearer(admin)},
		{"create workspace", "POST", "/v1/workspaces", map[string]string{"name": "w"}, bearer(admin)},
		{"delete API token", "DELETE", "/v1/api-tokens/" + w.apiTokenID, nil, bearer(admin)},
		{"delete API token via API token", "DELETE", "/v1/api-tokens/" + w.apiTokenID, nil, []string{"X-API-Token", key}},
		{"refresh grant", "POST", "/oauth/token", refresh, nil},
		{"API access token", "GET", "/v1/me", nil, bearer(appTok)},
		{"leak bulk revocation", "POST", "/v1/credentials/revoke", map[string]any{"credentials": []string{key}}, nil},
		{"delete API access", "DELETE", "/v1/api-access", nil, bearer(admin)},
		{"create user", "POST", "/v1/users", map[string]any{"email": "new@example.com", "password": memberPW}, bearer(admin)},
	}
	for _, n := range []*process{a, b} {
		for _, c := range calls {
			st, out := n.send(t, c.method, c.path, c.body, c.headers...)
			if st != 503 || out["error"] != "temporarily_unavailable" {
				t.Errorf("%s on %s with Redis down: %d %v, want 503 temporarily_unavailable", c.name, n.url, st, out)
			}
		}
	}

	// Back: nothing a refused write asked for happened.
	startRedis(t, rs.port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := a.send(t, "GET", "/v1/me", nil, bearer(admin)...)
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after Redis came back: %d", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, n := range []*process{a, b} {
		st, got := n.send(t, "GET", "/v1/users/"+userID, nil, bearer(admin)...)
		if st != 200 || got["status"] != "active" || fmt.Sprint(got["roles"]) == "[admin]" {
			t.Errorf("user after refused writes: %d %v", st, got)
		}
		for _, h := range [][]string{bearer(member), bearer(ccTok), {"X-API-Token", key}} {
			if st, out := n.send(t, "GET", "/v1/me", nil, h...); st != 200 {
				t.Errorf("after Redis is back, %v: %d %v", h[0], st, out)
			}
		}
	}
	login(t, b, "kind@example.com", memberPW) // the password is unchanged
	// The refresh token refused with 503 still works, once.
	if st, out := b.send(t, "POST", "/oauth/token", refresh); st != 200 {
		t.Errorf("refresh after the outage: %d %v", st, out)
	}
	if out, err := exec.Command("redis-cli", "-p", rs.port, "ping").CombinedOutput(); err != nil || !strings.Contains(string(out), "PONG") {
		t.Fatalf("redis: %v %s", err, out)
	}
}

// nodeShot is a request to a node with the given headers, for volley.
func nodeShot(t *testing.T, n *process, method, path string, headers ...string) volleyReq {
	t.Helper()
	req, err := http.NewRequest(method, n.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return volleyReq{req: req}
}

// waitAllReady waits for /readyz of every node (unauthenticated: it
// charges nothing).
func waitAllReady(t *testing.T, nodes ...*process) {
	t.Helper()
	for _, n := range nodes {
		deadline := time.Now().Add(15 * time.Second)
		for {
			st, _ := n.send(t, "GET", "/readyz", nil)
			if st == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready: %d", n.url, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// userWaysIn makes a developer user with three ways in that all count
// against the user's budget: a password token, a client-credentials
// token of the user's credential, and the account's API token acting as
// the user. It returns the header sets.
func userWaysIn(t *testing.T, a, b *process, admin, email string) (userID string, kinds [][]string) {
	t.Helper()
	st, user := a.send(t, "POST", "/v1/users", map[string]any{"email": email, "password": memberPW}, bearer(admin)...)
	if st != 201 {
		t.Fatalf("create user: %d %v", st, user)
	}
	userID = user["id"].(string)
	if st, _ := a.send(t, "PUT", "/v1/developers/"+userID, nil, bearer(admin)...); st != 204 {
		t.Fatalf("developer: %d", st)
	}
	tok := login(t, a, email, memberPW)
	st, cred := a.send(t, "POST", "/v1/credentials", map[string]string{"name": "c"}, bearer(tok)...)
	if st != 201 {
		t.Fatalf("credential: %d %v", st, cred)
	}
	st, cc := b.send(t, "POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {cred["client_id"].(string)}, "client_secret": {cred["client_secret"].(string)}})
	if st != 200 {
		t.Fatalf("client credentials: %d %v", st, cc)
	}
	if st, _ := a.send(t, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}, bearer(admin)...); st != 200 {
		t.Fatalf("extension: %d", st)
	}
	st, k := a.send(t, "POST", "/v1/api-tokens", map[string]string{"name": "k-" + email}, bearer(admin)...)
	if st != 201 {
		t.Fatalf("api token: %d %v", st, k)
	}
	return userID, [][]string{bearer(tok), bearer(cc["access_token"].(string)), {"X-API-Token", k["token"].(string), "X-User-Email", email}}
}

// volleyWaysIn releases n requests of the user, spread over the nodes and
// the ways in, together over connections opened in advance, and returns
// how many were admitted, failing on anything but 200 and want refusal.
func volleyWaysIn(t *testing.T, step string, n int, nodes []*process, kinds [][]string, refusal string) (admitted int, remaining map[string]int) {
	t.Helper()
	var shots []volleyReq
	for i := range n {
		shots = append(shots, nodeShot(t, nodes[i%len(nodes)], "GET", "/v1/me", kinds[(i/len(nodes))%len(kinds)]...))
	}
	res := volley(t, shots)
	remaining = map[string]int{}
	for i, r := range res.resps {
		switch {
		case r.Status == 200:
			admitted++
			remaining[r.Header.Get("X-RateLimit-Burst-Remaining")+"/"+r.Header.Get("X-RateLimit-Quota-Remaining")]++
		case r.Status == 422 && r.Map(t)["error"] == refusal:
		default:
			t.Errorf("%s: request %d: %d %s", step, i, r.Status, r.Body)
		}
	}
	return admitted, remaining
}

// TestClusterBurstAcrossWaysInAndRestart: SPEC §5 "Never admit
// more than the limit in any window of that length, under any
// concurrency and across all nodes of a cluster", "One user cannot escape
// their limit with several tokens, several credential kinds". A burst of
// 10 (an hour's window) shared by a user's password token, client
// credentials token and an API token acting as the user, on two nodes,
// requests released together: exactly 10. After a Redis restart without
// its data the windows start empty (docs/deploy.md): exactly 10 again,
// never more.
func TestClusterBurstAcrossWaysInAndRestart(t *testing.T) {
	a, b, rs, admin := clusterPair(t)
	_, kinds := userWaysIn(t, a, b, admin, "burst@example.com")
	if st, out := a.send(t, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"daily": 50000, "burst": 10, "burst_window_seconds": 3600}}, bearer(admin)...); st != 200 {
		t.Fatalf("settings: %d %v", st, out)
	}
	nodes := []*process{a, b}
	got, rem := volleyWaysIn(t, "first", 36, nodes, kinds, "rate_limit_exceeded")
	if got != 9 { // the user's POST /v1/credentials counted in the hour too
		t.Fatalf("first volley: %d admitted, want 9 (remaining seen %v)", got, rem)
	}
	for k, c := range rem {
		if c != 1 {
			t.Errorf("first volley: remaining %q seen %d times", k, c)
		}
	}
	rs.stop()
	startRedis(t, rs.port)
	waitAllReady(t, a, b)
	// Each node's client has several connections, each broken by the
	// restart and opened again on its first use. A request whose script
	// was out while one of them reopened is decided again (its count
	// stays: one less, never more — cluster.Redis.admit). The admin's
	// requests, released together, reopen them all first.
	warm := make([]volleyReq, 0, 32)
	for i := range 32 {
		warm = append(warm, nodeShot(t, nodes[i%2], "GET", "/v1/me", bearer(admin)...))
	}
	for i, r := range volley(t, warm).resps {
		if r.Status != 200 && r.Status != 422 {
			t.Fatalf("warm-up %d after the restart: %d %s", i, r.Status, r.Body)
		}
	}
	got, rem = volleyWaysIn(t, "after restart", 36, nodes, kinds, "rate_limit_exceeded")
	if got != 10 {
		t.Fatalf("after a Redis restart: %d admitted, want 10 (remaining seen %v)", got, rem)
	}
	for _, n := range nodes {
		for _, h := range kinds {
			if st, out := n.send(t, "GET", "/v1/me", nil, h...); st != 422 {
				t.Fatalf("after the volley: %d %v", st, out)
			}
		}
	}
}

// TestClusterReadyMeansServed: once /readyz answers 200 again after a
// Redis restart, authenticated requests are served (docs/deploy.md: "200
// again by itself when the dependency is back"): the first use of each
// connection the restart broke is sent again on a new one, not answered
// 503 (cluster.WithTimeout).
func TestClusterReadyMeansServed(t *testing.T) {
	a, b, rs, admin := clusterPair(t)
	nodes := []*process{a, b}
	_, kinds := userWaysIn(t, a, b, admin, "ready@example.com")
	bad := 0
	for round := range 5 {
		rs.stop()
		rs = startRedis(t, rs.port)
		waitAllReady(t, a, b)
		var shots []volleyReq
		for i := range 24 {
			shots = append(shots, nodeShot(t, nodes[i%2], "GET", "/v1/me", kinds[(i/2)%3]...))
		}
		for i, r := range volley(t, shots).resps {
			if r.Status != 200 {
				bad++
				t.Errorf("round %d request %d after /readyz said 200: %d %s", round, i, r.Status, r.Body)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d requests refused after /readyz answered 200", bad)
	}
}

// TestClusterRedisRestartDuringRevocation: the revocation on A passes its
// check that Redis answers, then waits on the store's change counter
// (held by the test) while Redis is restarted without its data; when it
// commits, whatever A answers, a 2xx must hold on B at once, and a 503
// must hold on B once Redis is back and B has caught up.
func TestClusterRedisRestartDuringRevocation(t *testing.T) {
	dbURL := pgtest.Schema(t)
	rs := startRedis(t, "")
	redisURL := "redis://127.0.0.1:" + rs.port + "/0"
	a, b := startNode(t, dbURL, redisURL), startNode(t, dbURL, redisURL)
	a.waitReady(t)
	b.waitReady(t)
	admin := login(t, a, "admin@example.com", processAdminPassword)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i := range 3 {
		email := fmt.Sprintf("during%d@example.com", i)
		if st, out := a.send(t, "POST", "/v1/users", map[string]any{"email": email, "password": memberPW}, bearer(admin)...); st != 201 {
			t.Fatalf("create user: %d %v", st, out)
		}
		tok := login(t, b, email, memberPW)
		for range 3 {
			wantStatus(t, "cached", 200, tok, a, b)
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`SELECT n FROM changes WHERE name = 'revoking' FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
		var holder int
		if err := tx.QueryRow(`SELECT pg_backend_pid()`).Scan(&holder); err != nil {
			t.Fatal(err)
		}
		answer := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("POST", a.url+"/oauth/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answer <- 0
				return
			}
			resp.Body.Close()
			answer <- resp.StatusCode
		}()
		// Once the revocation waits for the counter, it has checked Redis.
		pgtest.AwaitBlocked(t, db, holder, fmt.Sprintf("trial %d: the revocation waits for the change counter", i))
		rs.stop()
		rs = startRedis(t, rs.port)
		tx.Rollback()
		st := <-answer
		t.Logf("trial %d: revocation answered %d", i, st)
		switch st {
		case 200:
			for j, n := range []*process{b, a} {
				if st, out := n.send(t, "GET", "/v1/me", nil, bearer(tok)...); st != 401 {
					t.Errorf("trial %d: revocation acknowledged 200, node %d answers %d %v", i, j, st, out)
				}
			}
		case 503:
		default:
			t.Errorf("trial %d: revocation answered %d", i, st)
		}
		time.Sleep(1100 * time.Millisecond)
		waitAllReady(t, a, b)
		for j, n := range []*process{b, a} {
			for range 3 { // a stale connection may 503 once
				if st, _ := n.send(t, "GET", "/v1/me", nil, bearer(tok)...); st != 503 {
					if st != 401 {
						t.Errorf("trial %d: node %d answers %d after the revocation committed", i, j, st)
					}
					break
				}
			}
		}
	}
}
