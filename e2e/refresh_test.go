package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// refreshShot is a refresh request for volley, from the client address
// from, with any more fields given as name, value pairs.
func refreshShot(t *testing.T, env *servertest.Env, from, clientID, rt string, fields ...string) volleyReq {
	t.Helper()
	form := map[string]string{"grant_type": "refresh_token", "client_id": clientID, "refresh_token": rt}
	for i := 0; i+1 < len(fields); i += 2 {
		form[fields[i]] = fields[i+1]
	}
	body, _ := json.Marshal(form)
	req, err := http.NewRequest("POST", env.URL+"/oauth/token", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return volleyReq{req: req, from: from}
}

// refreshFrom sends one refresh from the client address from, with any
// more fields given as name, value pairs.
func refreshFrom(t *testing.T, env *servertest.Env, from, clientID, rt string, fields ...string) *servertest.Response {
	t.Helper()
	return volley(t, []volleyReq{refreshShot(t, env, from, clientID, rt, fields...)}).resps[0]
}

// refreshed decodes a 200 refresh answer.
func refreshed(t *testing.T, r *servertest.Response) apiAccess {
	t.Helper()
	servertest.Expect(t, r, http.StatusOK, "")
	var out apiAccess
	r.JSON(t, &out)
	return out
}

// one is a single client's address for refreshVolley.
func one(int) string { return loopback(1) }

// refreshVolley presents the refresh token rt n times at once (volley),
// the i-th to nodes[i%len(nodes)] from the client address from(i).
func refreshVolley(t *testing.T, nodes []*servertest.Env, n int, from func(int) string, clientID, rt string) []*servertest.Response {
	t.Helper()
	shots := make([]volleyReq, n)
	for i := range shots {
		shots[i] = refreshShot(t, nodes[i%len(nodes)], from(i), clientID, rt)
	}
	return volley(t, shots).resps
}

// onlyWinner checks that exactly one of resps is a refreshed pair and
// every other invalid_grant, and returns the pair.
func onlyWinner(t *testing.T, resps []*servertest.Response) apiAccess {
	t.Helper()
	var won []apiAccess
	for _, r := range resps {
		switch r.Status {
		case http.StatusOK:
			won = append(won, refreshed(t, r))
		default:
			servertest.Expect(t, r, http.StatusBadRequest, "invalid_grant")
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d refreshes succeeded, want exactly one", len(won))
	}
	return won[0]
}

// samePair checks that every one of resps is the same refreshed pair and
// returns it: one rotation committed.
func samePair(t *testing.T, resps []*servertest.Response) apiAccess {
	t.Helper()
	pair := refreshed(t, resps[0])
	for _, r := range resps[1:] {
		if got := refreshed(t, r); got.RefreshToken != pair.RefreshToken || got.AccessToken != pair.AccessToken {
			t.Fatalf("two rotations committed")
		}
	}
	return pair
}

// TestRefreshRetrySafe: a retry by the same client inside the grace period
// gets the pair the first attempt committed, and nothing is revoked.
func TestRefreshRetrySafe(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)
	first := refreshed(t, refreshFrom(t, env, loopback(1), app.ClientID, app.RefreshToken))
	again := refreshed(t, refreshFrom(t, env, loopback(1), app.ClientID, app.RefreshToken))
	if again.AccessToken != first.AccessToken || again.RefreshToken != first.RefreshToken {
		t.Fatalf("the retry got another pair")
	}
	servertest.Expect(t, env.As(again.AccessToken, "GET", "/v1/me", nil), 200, "")
	e := findAudit(t, auditEntries(t, env, admin), "api_access.refresh_retried")
	if e["remote_addr"] != loopback(1) {
		t.Fatalf("retry audited as %v", e)
	}
	refreshed(t, refreshFrom(t, env, loopback(1), app.ClientID, again.RefreshToken))
}

// TestRefreshRetryAsksTheSame: a retry inside the grace period gets the
// kept pair only when it asks for what the request that used the token
// asked for. A "retry" asking for a narrower scope (or, first narrow, for
// none) is refused — the kept pair holds other scopes than it asks for —
// and revokes nothing: the exact retry still gets the pair, and the pair
// still refreshes.
func TestRefreshRetryAsksTheSame(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)
	first := refreshed(t, refreshFrom(t, env, loopback(1), app.ClientID, app.RefreshToken))
	servertest.Expect(t, refreshFrom(t, env, loopback(1), app.ClientID, app.RefreshToken, "scope", "users:read"), 400, "invalid_grant")
	findAudit(t, auditEntries(t, env, admin), "api_access.refresh_retried")
	again := refreshed(t, refreshFrom(t, env, loopback(1), app.ClientID, app.RefreshToken))
	if again.AccessToken != first.AccessToken || again.RefreshToken != first.RefreshToken {
		t.Fatalf("the exact retry got another pair")
	}
	narrow := refreshed(t, refreshFrom(t, env, loopback(1), app.ClientID, again.RefreshToken, "scope", "users:read"))
	if narrow.Scope != "users:read" {
		t.Fatalf("narrowed refresh: scope %q", narrow.Scope)
	}
	servertest.Expect(t, refreshFrom(t, env, loopback(1), app.ClientID, again.RefreshToken), 400, "invalid_grant")
	servertest.Expect(t, refreshFrom(t, env, loopback(1), app.ClientID, again.RefreshToken, "scope", "users:read  users:read"), 200, "")
	servertest.Expect(t, env.As(narrow.AccessToken, "GET", "/v1/users", nil), 200, "")
	refreshed(t, refreshFrom(t, env, loopback(1), app.ClientID, narrow.RefreshToken, "scope", "users:read"))
}

// TestRefreshThiefFirst: a thief who refreshes a stolen refresh token
// first, from another address, gets a pair that stops working the moment
// the real client presents the same token inside the grace period; the
// reuse is audited with both addresses.
func TestRefreshThiefFirst(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)
	thief, client := loopback(66), loopback(7)
	stolen := refreshed(t, refreshFrom(t, env, thief, app.ClientID, app.RefreshToken))
	servertest.Expect(t, env.As(stolen.AccessToken, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, refreshFrom(t, env, client, app.ClientID, app.RefreshToken), 400, "invalid_grant")
	servertest.Expect(t, env.As(stolen.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, refreshFrom(t, env, thief, app.ClientID, stolen.RefreshToken), 400, "invalid_grant")
	e := findAudit(t, auditEntries(t, env, admin), "api_access.lineage_revoked")
	details, _ := e["details"].(map[string]any)
	if e["remote_addr"] != client || details["used_by"] != thief {
		t.Fatalf("reuse audited as %v", e)
	}
}

// TestRefreshConcurrentAddresses: 40 presentations of one refresh token
// at once, each over a connection opened in advance. From 40 client
// addresses exactly one succeeds and the lineage is revoked; from one
// address, exactly one rotation commits and every answer is its pair.
func TestRefreshConcurrentAddresses(t *testing.T) {
	const n = 40
	t.Run("many clients", func(t *testing.T) {
		env := servertest.Start(t)
		app := enableAPIAccess(t, env, env.AdminToken(), nil)
		won := onlyWinner(t, refreshVolley(t, []*servertest.Env{env}, n, loopback, app.ClientID, app.RefreshToken))
		servertest.Expect(t, env.As(won.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
	})
	t.Run("one client", func(t *testing.T) {
		env := servertest.Start(t)
		app := enableAPIAccess(t, env, env.AdminToken(), nil)
		rt := app.RefreshToken
		for range 3 {
			pair := samePair(t, refreshVolley(t, []*servertest.Env{env}, n, one, app.ClientID, rt))
			servertest.Expect(t, env.As(pair.AccessToken, "GET", "/v1/me", nil), 200, "")
			rt = pair.RefreshToken
		}
	})
}

// TestRefreshAcrossTwoNodes: one refresh token presented 40 times at once,
// half to each of two nodes sharing PostgreSQL and Redis, each over a
// connection opened in advance. From 40 client addresses exactly one
// succeeds and its pair stops working on both nodes; from one address
// exactly one rotation commits and every answer, from either node, is its
// pair, and a later reuse on one node revokes the lineage's access token
// that the other node holds cached.
func TestRefreshAcrossTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes")
	}
	const n = 40
	nodes := func(t *testing.T) (a, b *servertest.Env) {
		dbURL := pgtest.Schema(t)
		redisURL := "redis://127.0.0.1:" + startRedis(t, "").port + "/0"
		a = servertest.Start(t, func(c *server.Config) { c.DatabaseURL, c.RedisURL = dbURL, redisURL })
		b = servertest.Start(t, func(c *server.Config) { c.DatabaseURL, c.RedisURL = dbURL, redisURL })
		return a, b
	}
	t.Run("many clients", func(t *testing.T) {
		a, b := nodes(t)
		app := enableAPIAccess(t, a, a.AdminToken(), nil)
		won := onlyWinner(t, refreshVolley(t, []*servertest.Env{a, b}, n, loopback, app.ClientID, app.RefreshToken))
		for _, node := range []*servertest.Env{a, b} {
			servertest.Expect(t, node.As(won.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
			servertest.Expect(t, refreshFrom(t, node, loopback(1), app.ClientID, won.RefreshToken), 400, "invalid_grant")
		}
	})
	t.Run("one client", func(t *testing.T) {
		a, b := nodes(t)
		app := enableAPIAccess(t, a, a.AdminToken(), nil)
		rt := app.RefreshToken
		var last struct {
			apiAccess
			prev string // the refresh token it was rotated from
		}
		for range 3 {
			pair := samePair(t, refreshVolley(t, []*servertest.Env{a, b}, n, one, app.ClientID, rt))
			servertest.Expect(t, a.As(pair.AccessToken, "GET", "/v1/me", nil), 200, "")
			servertest.Expect(t, b.As(pair.AccessToken, "GET", "/v1/me", nil), 200, "")
			last.apiAccess, last.prev = pair, rt
			rt = pair.RefreshToken
		}
		// The last rotated token again, from another address, on node A:
		// a reuse, which revokes the lineage. Node B, which has the
		// lineage's access token cached, refuses it at once.
		servertest.Expect(t, refreshFrom(t, a, loopback(99), app.ClientID, last.prev), 400, "invalid_grant")
		servertest.Expect(t, b.As(last.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
		servertest.Expect(t, a.As(last.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
	})
}

// TestRefreshEmptyBasicPair: an empty HTTP Basic pair counts as no client
// (docs/oauth.md), so a refresh with it and the application's client id in
// the body is the public client's refresh; the same pair with a password
// grant asks for no client either.
func TestRefreshEmptyBasicPair(t *testing.T) {
	env := servertest.Start(t)
	app := enableAPIAccess(t, env, env.AdminToken(), nil)
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {app.ClientID}, "refresh_token": {app.RefreshToken}}
	r := env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic Og==")
	servertest.Expect(t, env.As(refreshed(t, r).AccessToken, "GET", "/v1/me", nil), 200, "")
	pw := url.Values{"grant_type": {"password"}, "username": {servertest.AdminEmail}, "password": {servertest.AdminPassword}}
	servertest.Expect(t, env.Request("POST", "/oauth/token", pw.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic Og=="), 200, "")
	// A secret in the body beside a Basic pair naming a client is still
	// credentials sent twice.
	form.Set("client_secret", "x")
	servertest.Expect(t, env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic YTpi"), 400, "invalid_request")
}
