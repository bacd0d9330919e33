package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/faultproxy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// send does one request to a node with the given headers and a JSON or
// form body (url.Values), and returns the status and decoded JSON object.
func (p *process) send(t *testing.T, method, path string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	var (
		rd = strings.NewReader("")
		ct = "application/json"
	)
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		data, _ := json.Marshal(b)
		rd = strings.NewReader(string(data))
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// bearer is the header pair of a bearer token.
func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// clusterPair starts two nodes at once (they bootstrap the empty store
// concurrently) on one fresh PostgreSQL schema and a private Redis, and
// returns them with the operator-admin's token.
func clusterPair(t *testing.T) (a, b *process, rs *redisServer, admin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL := pgtest.Schema(t)
	rs = startRedis(t, "")
	redisURL := "redis://127.0.0.1:" + rs.port + "/0"
	a, b = startNode(t, dbURL, redisURL), startNode(t, dbURL, redisURL)
	a.waitReady(t)
	b.waitReady(t)
	return a, b, rs, login(t, a, "admin@example.com", processAdminPassword)
}

func login(t *testing.T, node *process, email, pw string) string {
	t.Helper()
	st, out := node.send(t, "POST", "/authorization", map[string]string{"username": email, "password": pw})
	if st != 200 {
		t.Fatalf("login %s: %d %v", email, st, out)
	}
	return out["access_token"].(string)
}

// wantStatus fails unless every node answers GET /v1/me with tok (and any
// extra headers) with status want.
func wantStatus(t *testing.T, step string, want int, tok string, nodes ...*process) {
	t.Helper()
	for i, n := range nodes {
		if st, out := n.send(t, "GET", "/v1/me", nil, bearer(tok)...); st != want {
			t.Fatalf("%s: node %d answers %d %v, want %d", step, i, st, out, want)
		}
	}
}

// TestClusterRedisLoss: whatever Redis forgets — FLUSHDB, or a restart
// without persistence — between a node caching a credential and another
// node revoking it, the revoked credential is refused on both nodes at
// every step after the revocation, however far the shared counter climbs
// again.
func TestClusterRedisLoss(t *testing.T) {
	a, b, rs, admin := clusterPair(t)
	for _, loss := range []string{"flushdb", "restart"} {
		t.Run(loss, func(t *testing.T) {
			email := loss + "@example.com"
			if st, out := a.send(t, "POST", "/v1/users", map[string]any{"email": email, "password": memberPW}, bearer(admin)...); st != 201 {
				t.Fatalf("create user: %d %v", st, out)
			}
			// A few revoking changes first, so that the shared counter is
			// past zero when the token is cached: after the loss it counts
			// up through that value again.
			changeSettings := func(step string, n int) {
				for i := range n {
					st, out := b.send(t, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"daily": 50000 + i}}, bearer(admin)...)
					if st != 200 {
						t.Fatalf("%s: settings: %d %v", step, st, out)
					}
				}
			}
			changeSettings("before caching", 3)
			tok := login(t, b, email, memberPW)
			// Both nodes validate and cache it, several times.
			for range 3 {
				wantStatus(t, "cached", 200, tok, a, b)
			}
			switch loss {
			case "flushdb":
				if out, err := exec.Command("redis-cli", "-p", rs.port, "flushdb").CombinedOutput(); err != nil {
					t.Fatalf("flushdb: %v %s", err, out)
				}
			case "restart":
				rs.stop()
				startRedis(t, rs.port)
			}
			if st, _ := b.send(t, "POST", "/oauth/revoke", map[string]string{"token": tok}); st != 200 {
				t.Fatalf("revoke on B: %d", st)
			}
			wantStatus(t, "after revoke", 401, tok, a, b)
			// Unrelated revoking changes push the shared counter past the
			// value A saw before the loss.
			for range 8 {
				changeSettings("after revoke", 1)
				wantStatus(t, "after unrelated change", 401, tok, a, b)
			}
		})
	}
}

// TestClusterRevokeWithoutRedis: a node that cannot reach Redis refuses a
// revoking change (503) instead of reporting success while another node
// still serves the credential; nothing is changed, and the same change made
// on a node that reaches Redis takes effect on both.
func TestClusterRevokeWithoutRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL := pgtest.Schema(t)
	rs := startRedis(t, "")
	proxy := &tcpProxy{addr: "127.0.0.1:0", target: "127.0.0.1:" + rs.port}
	proxy.start(t)
	defer proxy.cut()
	cut := startNode(t, dbURL, "redis://"+proxy.addr+"/0")
	cut.waitReady(t)
	ok := startNode(t, dbURL, "redis://127.0.0.1:"+rs.port+"/0")
	ok.waitReady(t)
	admin := login(t, ok, "admin@example.com", processAdminPassword)
	st, user := ok.send(t, "POST", "/v1/users", map[string]any{"email": "ann@example.com", "password": memberPW}, bearer(admin)...)
	if st != 201 {
		t.Fatalf("create user: %d %v", st, user)
	}
	tok := login(t, ok, "ann@example.com", memberPW)
	wantStatus(t, "before the cut", 200, tok, cut, ok)
	adminOnCut := login(t, cut, "admin@example.com", processAdminPassword)

	proxy.cut()
	// RFC 7009 revocation with the token alone needs no authentication.
	if st, out := cut.send(t, "POST", "/oauth/revoke", map[string]string{"token": tok}); st != 503 || out["error"] != "temporarily_unavailable" {
		t.Fatalf("revoke on the cut node: %d %v, want 503", st, out)
	}
	// Disabling needs an authenticated admin: refused too.
	if st, _ := cut.send(t, "PATCH", "/v1/users/"+user["id"].(string), map[string]string{"status": "disabled"}, bearer(adminOnCut)...); st != 503 {
		t.Fatalf("disable on the cut node: %d, want 503", st)
	}
	// Nothing was reported done, and nothing was done: the other node
	// still serves the token, and the user is still active.
	wantStatus(t, "after refused changes", 200, tok, ok)
	if st, got := ok.send(t, "GET", "/v1/users/"+user["id"].(string), nil, bearer(admin)...); st != 200 || got["status"] != "active" {
		t.Fatalf("user after refused disable: %d %v", st, got)
	}
	// Made where Redis answers, the revocation holds everywhere at once.
	if st, _ := ok.send(t, "POST", "/oauth/revoke", map[string]string{"token": tok}); st != 200 {
		t.Fatalf("revoke on the healthy node: %d", st)
	}
	wantStatus(t, "after revoke", 401, tok, ok)
}

// waysIn are an admin's ways into the API, made by adminWaysIn.
type waysIn struct {
	// admin is a password token of the admin, a developer too.
	admin string
	// apiToken is an API token of the account ("ci"), apiTokenID its id.
	apiToken, apiTokenID string
	// grant is the client credentials grant of the admin's credential
	// ("int").
	grant url.Values
}

// adminWaysIn turns on API tokens for the admin's account, makes one, makes
// the admin a developer and a client credential of theirs, on node.
func adminWaysIn(t *testing.T, node *process, email, pw string) waysIn {
	t.Helper()
	tok := login(t, node, email, pw)
	if st, _ := node.send(t, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}, bearer(tok)...); st != 200 {
		t.Fatalf("extension: %d", st)
	}
	st, apiTok := node.send(t, "POST", "/v1/api-tokens", map[string]string{"name": "ci"}, bearer(tok)...)
	if st != 201 {
		t.Fatalf("api token: %d %v", st, apiTok)
	}
	_, me := node.send(t, "GET", "/v1/me", nil, bearer(tok)...)
	if st, _ := node.send(t, "PUT", "/v1/developers/"+me["user"].(map[string]any)["id"].(string), nil, bearer(tok)...); st != 204 {
		t.Fatalf("developer role: %d", st)
	}
	tok = login(t, node, email, pw)
	st, cred := node.send(t, "POST", "/v1/credentials", map[string]string{"name": "int"}, bearer(tok)...)
	if st != 201 {
		t.Fatalf("credential: %d %v", st, cred)
	}
	return waysIn{admin: tok, apiToken: apiTok["token"].(string), apiTokenID: apiTok["id"].(string),
		grant: url.Values{"grant_type": {"client_credentials"}, "client_id": {cred["client_id"].(string)}, "client_secret": {cred["client_secret"].(string)}}}
}

// TestClusterSuspendAccount: suspending an account refuses its password
// tokens, API tokens, client credentials and admin UI sessions on both
// nodes at once, and its
// password grant answers the usual invalid_grant; reactivating brings them
// back. The operator's own account cannot be suspended.
func TestClusterSuspendAccount(t *testing.T) {
	a, b, _, op := clusterPair(t)
	st, acc := a.send(t, "POST", "/v1/accounts", map[string]string{"name": "tenant", "admin_email": "boss@tenant.example", "admin_password": memberPW}, bearer(op)...)
	if st != 201 {
		t.Fatalf("create account: %d %v", st, acc)
	}
	w := adminWaysIn(t, a, "boss@tenant.example", memberPW)
	boss, key, grant := w.admin, w.apiToken, w.grant
	st, cc := b.send(t, "POST", "/oauth/token", grant)
	if st != 200 {
		t.Fatalf("client credentials: %d %v", st, cc)
	}
	ccTok := cc["access_token"].(string)

	browser := clientFrom("127.0.0.1", nil) // no redirects followed
	session := adminSessionCookieAs(t, browser, a.url, "boss@tenant.example", memberPW)
	check := func(step string, want int) {
		t.Helper()
		for i, n := range []*process{a, b} {
			req, _ := http.NewRequest("GET", n.url+"/admin/users", nil)
			req.AddCookie(session)
			resp, err := browser.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if ok := resp.StatusCode == http.StatusOK; ok != (want == 200) {
				t.Fatalf("%s: admin UI session on node %d: %d %s", step, i, resp.StatusCode, resp.Header.Get("Location"))
			}
			for name, h := range map[string][]string{"password token": bearer(boss), "client credentials token": bearer(ccTok), "API token": {"X-API-Token", key}} {
				if st, out := n.send(t, "GET", "/v1/me", nil, h...); st != want {
					t.Fatalf("%s: %s on node %d: %d %v, want %d", step, name, i, st, out, want)
				}
			}
		}
	}
	check("active", 200)
	accID := acc["id"].(string)
	if st, out := a.send(t, "PATCH", "/v1/accounts/"+accID, map[string]string{"status": "suspended"}, bearer(op)...); st != 200 || out["status"] != "suspended" {
		t.Fatalf("suspend: %d %v", st, out)
	}
	check("suspended", 401)
	if st, out := b.send(t, "POST", "/authorization", map[string]string{"username": "boss@tenant.example", "password": memberPW}); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("password grant of a suspended account: %d %v", st, out)
	}
	if st, _ := b.send(t, "POST", "/oauth/token", grant); st != 401 {
		t.Fatalf("client credentials grant of a suspended account: %d", st)
	}
	if st, out := b.send(t, "PATCH", "/v1/accounts/"+accID, map[string]string{"status": "active"}, bearer(op)...); st != 200 || out["status"] != "active" {
		t.Fatalf("reactivate: %d %v", st, out)
	}
	check("reactivated", 200)

	// Operators only, and never the operator's own account.
	if st, _ := a.send(t, "GET", "/v1/accounts", nil, bearer(boss)...); st != 403 {
		t.Fatalf("accounts list by a tenant admin: %d", st)
	}
	st, list := a.send(t, "GET", "/v1/accounts?limit=1", nil, bearer(op)...)
	if st != 200 || len(list["data"].([]any)) != 1 || list["next_cursor"] == nil {
		t.Fatalf("accounts list: %d %v", st, list)
	}
	_, opMe := a.send(t, "GET", "/v1/me", nil, bearer(op)...)
	opAcc := opMe["account"].(map[string]any)["id"].(string)
	if st, out := a.send(t, "PATCH", "/v1/accounts/"+opAcc, map[string]string{"status": "suspended"}, bearer(op)...); st != 409 {
		t.Fatalf("suspending the operator's account: %d %v", st, out)
	}
}

// redisCLI runs redis-cli against the private Redis on port and returns
// its answer, trimmed.
func redisCLI(t *testing.T, port string, args ...string) string {
	t.Helper()
	out, err := exec.Command("redis-cli", append([]string{"-p", port}, args...)...).Output()
	if err != nil {
		t.Fatalf("redis-cli %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// laggingReplica makes the Redis on port a copy of the one on primary as
// it is now, then detaches it: a replica that will miss every write made
// after this, as one that lags does.
func laggingReplica(t *testing.T, port, primary string) {
	t.Helper()
	redisCLI(t, primary, "CONFIG", "SET", "repl-diskless-sync-delay", "0")
	redisCLI(t, port, "REPLICAOF", "127.0.0.1", primary)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(redisCLI(t, port, "INFO", "replication"), "master_link_status:up") ||
		redisCLI(t, port, "DBSIZE") != redisCLI(t, primary, "DBSIZE") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	redisCLI(t, port, "REPLICAOF", "NO", "ONE")
}

// sendPast is send, again while node answers 503 (a node reconnecting to
// Redis: the first use of each connection a failover broke fails), for
// ten seconds at most.
func (p *process) sendPast(t *testing.T, method, path string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, out := p.send(t, method, path, body, headers...)
		if st != 503 || time.Now().After(deadline) {
			return st, out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterRevocationSurvivesFailover: SPEC §10.9, a revocation holds on
// every node even if Redis rolls back to an older state — a failover to a
// replica that had not received the revocation's ring. Both nodes cache a
// user's token; a replica copies Redis and falls behind; the token is
// revoked on A (200, A rings the primary); the nodes' address then leads
// to the replica (their connections reset, as a failover does), whose
// doorbell is exactly in the state B validated the token under. B's very
// next answer (after any 503 while it reconnects) must be 401, not the
// token served from its cache: a node that connects to Redis anew reads
// the revocation log before it trusts a state again.
func TestClusterRevocationSurvivesFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL := pgtest.Schema(t)
	primary, replica := startRedis(t, ""), startRedis(t, "")
	proxy, err := faultproxy.Start("127.0.0.1:" + primary.port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	redisURL := "redis://" + proxy.Addr() + "/0"
	a, b := startNode(t, dbURL, redisURL), startNode(t, dbURL, redisURL)
	a.waitReady(t)
	b.waitReady(t)
	admin := login(t, a, "admin@example.com", processAdminPassword)
	for trial := range 4 {
		email := fmt.Sprintf("failover%d@example.com", trial)
		if st, out := a.sendPast(t, "POST", "/v1/users", map[string]any{"email": email, "password": memberPW}, bearer(admin)...); st != 201 {
			t.Fatalf("create user: %d %v", st, out)
		}
		st, out := b.sendPast(t, "POST", "/authorization", map[string]string{"username": email, "password": memberPW})
		if st != 200 {
			t.Fatalf("login: %d %v", st, out)
		}
		tok := out["access_token"].(string)
		for range 3 {
			for _, n := range []*process{a, b} {
				if st, out := n.sendPast(t, "GET", "/v1/me", nil, bearer(tok)...); st != 200 {
					t.Fatalf("cached: %d %v", st, out)
				}
			}
		}
		laggingReplica(t, replica.port, primary.port)
		if st, _ := a.sendPast(t, "POST", "/oauth/revoke", map[string]string{"token": tok}); st != 200 {
			t.Fatalf("revoke on A: %d", st)
		}
		proxy.Retarget("127.0.0.1:" + replica.port)
		proxy.Set(faultproxy.Reset)
		proxy.Set(faultproxy.Pass)
		for i, n := range []*process{b, a} {
			if st, out := n.sendPast(t, "GET", "/v1/me", nil, bearer(tok)...); st != 401 {
				t.Fatalf("trial %d: a token revoked on A is answered %d %v on node %d after a failover to a replica that missed the ring", trial, st, out, i)
			}
		}
		primary, replica = replica, primary
	}
}
