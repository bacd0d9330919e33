package e2e

import (
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// storeDB opens env's store (SQLite or PostgreSQL) for counting rows; it is
// closed when the test ends.
func storeDB(t *testing.T, env *servertest.Env) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", env.DatabaseURL
	if env.DBPath != "" {
		driver, dsn = "sqlite", "file:"+env.DBPath+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// refreshTokensOf counts the refresh tokens an application has issued.
func refreshTokensOf(t *testing.T, db *sql.DB, clientID string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM tokens WHERE client_id = $1 AND kind = 'refresh'`, clientID).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// postShot is a volley POST of body with its content type and any more
// headers, from the client address from.
func postShot(t *testing.T, env *servertest.Env, from, path, ctype, body string, headers ...string) volleyReq {
	t.Helper()
	req, err := http.NewRequest("POST", env.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return volleyReq{req: req, from: from}
}

// TestRefreshVsSelfRevoke: a refresh token presented 20 times at once by
// its client, released together with 5 RFC 7009 revocations of it: every
// revocation answers 200, at most one rotation commits, and nothing the
// refreshes obtained works afterwards.
func TestRefreshVsSelfRevoke(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	db := storeDB(t, env)
	for round := range 3 {
		if round > 0 {
			servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
		}
		app := enableAPIAccess(t, env, admin, nil)
		var shots []volleyReq
		for range 20 {
			shots = append(shots, refreshShot(t, env, loopback(3), app.ClientID, app.RefreshToken))
		}
		form := url.Values{"token": {app.RefreshToken}, "client_id": {app.ClientID}}.Encode()
		for range 5 {
			shots = append(shots, postShot(t, env, loopback(3), "/oauth/revoke", "application/x-www-form-urlencoded", form))
		}
		var got []apiAccess
		for i, r := range volley(t, shots).resps {
			switch {
			case i >= 20:
				servertest.Expect(t, r, 200, "")
			case r.Status == 200:
				got = append(got, refreshed(t, r))
			default:
				servertest.Expect(t, r, 400, "invalid_grant")
			}
		}
		if n := refreshTokensOf(t, db, app.ClientID); n > 2 {
			t.Fatalf("round %d: %d refresh tokens in the lineage, want at most 2", round, n)
		}
		for _, p := range got {
			servertest.Expect(t, env.As(p.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
			servertest.Expect(t, refreshFrom(t, env, loopback(3), app.ClientID, p.RefreshToken), 400, "invalid_grant")
		}
	}
}

// TestRefreshVsDeleteAndReenable: a refresh volley released together with
// the application's deletion, then a new enable: nothing the old lineage
// answered works, with the old client id or the new one, and the new
// application does.
func TestRefreshVsDeleteAndReenable(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	for range 3 {
		app := enableAPIAccess(t, env, admin, nil)
		var shots []volleyReq
		for range 20 {
			shots = append(shots, refreshShot(t, env, loopback(4), app.ClientID, app.RefreshToken))
		}
		del, _ := http.NewRequest("DELETE", env.URL+"/v1/api-access", nil)
		del.Header.Set("Authorization", "Bearer "+admin)
		shots = append(shots, volleyReq{req: del, from: loopback(5)})
		resps := volley(t, shots).resps
		servertest.Expect(t, resps[20], 204, "")
		again := enableAPIAccess(t, env, admin, nil)
		for _, r := range resps[:20] {
			if r.Status != 200 {
				servertest.Expect(t, r, 400, "invalid_grant")
				continue
			}
			p := refreshed(t, r)
			servertest.Expect(t, env.As(p.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
			servertest.Expect(t, refreshFrom(t, env, loopback(4), app.ClientID, p.RefreshToken), 400, "invalid_grant")
			servertest.Expect(t, refreshFrom(t, env, loopback(4), again.ClientID, p.RefreshToken), 400, "invalid_grant")
		}
		servertest.Expect(t, env.As(again.AccessToken, "GET", "/v1/me", nil), 200, "")
		servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
	}
}
