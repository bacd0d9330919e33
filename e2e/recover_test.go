package e2e

import (
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// TestRecover is the break-glass procedure on SQLite and PostgreSQL with
// the server running: the only admin is locked out (disabled directly in
// the database, the state no API call can reach), `gatehouse recover`
// makes them an active operator-admin with a new password read from
// standard input, the running server lets them in at once, their old
// password token stops working, and the audit log records it. The admin
// had turned TOTP on over HTTP first: recover clears it, so the new
// password alone signs them in, by the password grant and in the console.
func TestRecover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dbURL, driver, dsn := filepath.Join(t.TempDir(), "gatehouse.db"), "sqlite", ""
			dsn = "file:" + dbURL + "?_pragma=busy_timeout(10000)"
			if dialect == "postgres" {
				dbURL = pgtest.Schema(t)
				driver, dsn = "pgx", dbURL
			}
			node := startProcess(t, dbURL)
			node.waitReady(t)
			old := login(t, node, "admin@example.com", processAdminPassword)
			wantStatus(t, "before", 200, old, node)

			// The admin turns TOTP on over HTTP: from then on the password
			// alone signs them in nowhere.
			st, enrol := node.send(t, "POST", "/v1/me/mfa/totp", nil, bearer(old)...)
			secret, _ := enrol["secret"].(string)
			if st != 200 || len(secret) != 32 {
				t.Fatalf("TOTP enrolment: %d %v", st, enrol)
			}
			st, confirmed := node.send(t, "POST", "/v1/me/mfa/totp/confirm", map[string]string{"code": totpAt(secret, 0)}, bearer(old)...)
			if codes, _ := confirmed["recovery_codes"].([]any); st != 200 || len(codes) != 10 {
				t.Fatalf("TOTP confirmation: %d %v", st, confirmed)
			}
			if st, out := node.send(t, "POST", "/authorization", map[string]string{"username": "admin@example.com", "password": processAdminPassword}); st != 400 || !strings.Contains(mustJSON(out), "second factor") {
				t.Fatalf("the password grant of an admin with TOTP: %d %v", st, out)
			}

			// Lock the only admin out behind the server's back.
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`UPDATE users SET status = 'disabled', roles = '' WHERE email_key = 'admin@example.com'`); err != nil {
				t.Fatal(err)
			}
			if st, _ := node.send(t, "POST", "/authorization", map[string]string{"username": "admin@example.com", "password": processAdminPassword}); st != 400 {
				t.Fatalf("locked-out admin logs in: %d", st)
			}

			bin, err := buildBinary()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "recover", "--email", "Admin@Example.com", "--password-stdin", "--database-url", dbURL)
			cmd.Env = os.Environ()
			cmd.Stdin = strings.NewReader("a brand new long password\n")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("recover: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "a brand new long password") {
				t.Fatalf("recover printed the password it was given: %s", out)
			}

			// The new password alone signs them in, by the password grant
			// and in the console: recover cleared the second factor.
			tok := login(t, node, "admin@example.com", "a brand new long password")
			adminSessionCookieAs(t, clientFrom("127.0.0.1", nil), node.url, "admin@example.com", "a brand new long password")
			if st, mfa := node.send(t, "GET", "/v1/me/mfa", nil, bearer(tok)...); st != 200 || mfa["totp"] != false || mfa["recovery_codes_left"] != 0.0 {
				t.Fatalf("second factors after recover: %d %v", st, mfa)
			}
			st, me := node.send(t, "GET", "/v1/me", nil, bearer(tok)...)
			user, _ := me["user"].(map[string]any)
			if st != 200 || user["operator"] != true || user["status"] != "active" || !strings.Contains(strings.Join(anyStrings(me["roles"]), ","), "admin") {
				t.Fatalf("after recover: %d %v", st, me)
			}
			// The old password token ends: at once on a cache miss, and
			// within the store poll interval where it was cached.
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, _ := node.send(t, "GET", "/v1/me", nil, bearer(old)...)
				if st == 401 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the old token still answers %d after recover", st)
				}
				time.Sleep(100 * time.Millisecond)
			}
			st, audit := node.send(t, "GET", "/v1/audit", nil, bearer(tok)...)
			if st != 200 || !strings.Contains(mustJSON(audit), `"user.recover"`) || !strings.Contains(mustJSON(audit), `"second_factors_cleared":"1"`) {
				t.Fatalf("audit after recover: %d %v", st, audit)
			}
		})
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
