package e2e

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/service"
)

// TestBackupRestoreReapply follows docs/deploy.md's backup section on
// SQLite and PostgreSQL with its own commands: a backup is taken, three
// kinds of credential are revoked (a disabled user's password token, a
// deleted API access application's token, a deleted client credential
// and its token), the audit log is exported, the backup is restored — and
// the revoked credentials work again, as the docs warn — then
// `gatehouse reapply-revocations` makes each of them refused again on the
// running server.
func TestBackupRestoreReapply(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	run := runIn
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			var dbURL, schema string
			switch dialect {
			case "sqlite":
				testenv.RequireTool(t, "sqlite3")
				dbURL = filepath.Join(dir, "data", "gatehouse.db")
				os.MkdirAll(filepath.Dir(dbURL), 0o700)
			case "postgres":
				testenv.RequireTool(t, "pg_dump")
				testenv.RequireTool(t, "pg_restore")
				dbURL = pgtest.Schema(t)
				u, _ := url.Parse(dbURL)
				schema = u.Query().Get("search_path")
			}
			node := startProcess(t, dbURL)
			admin := login(t, node, "admin@example.com", processAdminPassword)
			if st, _ := node.send(t, "POST", "/v1/users", map[string]any{"email": "ann@example.com", "password": memberPW}, bearer(admin)...); st != 201 {
				t.Fatalf("create ann: %d", st)
			}
			_, me := node.send(t, "GET", "/v1/users?q=ann", nil, bearer(admin)...)
			annID := me["data"].([]any)[0].(map[string]any)["id"].(string)
			ann := login(t, node, "ann@example.com", memberPW)
			_, app := node.send(t, "POST", "/v1/api-access", nil, bearer(admin)...)
			appToken := app["access_token"].(string)
			if st, _ := node.send(t, "PUT", "/v1/developers/"+annID, nil, bearer(admin)...); st != 204 {
				t.Fatalf("make ann a developer: %d", st)
			}
			_, cred := node.send(t, "POST", "/v1/credentials", map[string]string{"name": "ci"}, bearer(ann)...)
			grant := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred["client_id"].(string)}, "client_secret": {cred["client_secret"].(string)}}
			_, cc := node.send(t, "POST", "/oauth/token", grant)
			ccToken := cc["access_token"].(string)
			tokens := map[string]string{"disabled user's token": ann, "API access token": appToken, "client-credentials token": ccToken}
			for what, tok := range tokens {
				if st, _ := node.send(t, "GET", "/v1/me", nil, bearer(tok)...); st != 200 {
					t.Fatalf("%s before the backup: %d", what, st)
				}
			}

			// The backup, with the docs' commands, in a directory that does
			// not exist yet.
			backupTime := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
			switch dialect {
			case "sqlite":
				run(t, dir, "sh", "-c", `mkdir -p backup && sqlite3 data/gatehouse.db ".backup 'backup/gatehouse-$(date +%F).db'"`)
			case "postgres":
				run(t, dir, "sh", "-c", `mkdir -p backup && pg_dump --format=custom -n "$1" --file=backup/gatehouse-$(date +%F).dump "$2"`, "sh", schema, pgtest.BaseURL())
			}

			// Revocations after the backup.
			if st, _ := node.send(t, "DELETE", "/v1/credentials/"+cred["id"].(string), nil, bearer(ann)...); st != 204 {
				t.Fatalf("delete credential: %d", st)
			}
			if st, _ := node.send(t, "PATCH", "/v1/users/"+annID, map[string]any{"status": "disabled"}, bearer(admin)...); st != 200 {
				t.Fatalf("disable ann: %d", st)
			}
			if st, _ := node.send(t, "DELETE", "/v1/api-access", nil, bearer(admin)...); st != 204 {
				t.Fatalf("delete API access: %d", st)
			}
			for what, tok := range tokens {
				if st, _ := node.send(t, "GET", "/v1/me", nil, bearer(tok)...); st != 401 {
					t.Fatalf("%s after its revocation: %d", what, st)
				}
			}
			// The audit log leaves with the operator before the restore.
			audit := run(t, dir, bin, "audit-export", "--database-url", dbURL, "--since", backupTime)
			if err := os.WriteFile(filepath.Join(dir, "audit.jsonl"), []byte(audit), 0o600); err != nil {
				t.Fatal(err)
			}

			// Restore, as the docs say, and start again.
			node.kill()
			switch dialect {
			case "sqlite":
				run(t, dir, "sh", "-c", `rm -f data/gatehouse.db-wal data/gatehouse.db-shm && cp backup/gatehouse-$(date +%F).db data/gatehouse.db`)
			case "postgres":
				db, err := sql.Open("pgx", pgtest.BaseURL())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(`DROP SCHEMA "` + schema + `" CASCADE`); err != nil {
					t.Fatal(err)
				}
				db.Close()
				run(t, dir, "sh", "-c", `pg_restore --no-owner --dbname="$1" backup/gatehouse-$(date +%F).dump`, "sh", pgtest.BaseURL())
			}
			node = startProcess(t, dbURL)
			for what, tok := range tokens {
				if st, _ := node.send(t, "GET", "/v1/me", nil, bearer(tok)...); st != 200 {
					t.Fatalf("%s after the restore: %d; the restore should have brought it back", what, st)
				}
			}

			out := run(t, dir, bin, "reapply-revocations", "--audit", "audit.jsonl", "--since", backupTime, "--database-url", dbURL)
			if !strings.Contains(out, "credential.delete") || !strings.Contains(out, "user.update") || !strings.Contains(out, "api_access.revoke") {
				t.Fatalf("reapply-revocations said:\n%s", out)
			}
			// The running node follows within its poll of the store.
			deadline := time.Now().Add(10 * time.Second)
			for what, tok := range tokens {
				for {
					st, _ := node.send(t, "GET", "/v1/me", nil, bearer(tok)...)
					if st == 401 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s after reapply-revocations: %d", what, st)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			if st, _ := node.send(t, "POST", "/oauth/token", grant); st != 401 {
				t.Fatalf("the deleted credential grants again: %d", st)
			}
			// Running it again changes nothing more.
			if out := run(t, dir, bin, "reapply-revocations", "--audit", "audit.jsonl", "--since", backupTime, "--database-url", dbURL); !strings.Contains(out, "0 revocations re-applied") {
				t.Fatalf("a second run re-applied something:\n%s", out)
			}
		})
	}
}

// TestReapplyVsRefreshReleasedTogether: after a restore, `gatehouse
// reapply-revocations` re-applies an admin's disable while clients of
// the admin's API access application — restored, and still refreshing —
// rotate their lineage, several admins at a time. Every admin ends
// disabled and every lineage dead, whichever came first, and the two
// take their locks in one order: PostgreSQL counts no deadlock (the
// re-applied change once locked the user without the account first, then
// wrote the application's token rows, while a rotation held a token row
// and waited for that user's row).
func TestReapplyVsRefreshReleasedTogether(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	svc := env.Server.Service
	ctx := t.Context()
	type admin struct {
		id  string
		app apiAccess
	}
	const rounds, width = 12, 4
	var admins [rounds][width]admin
	for r := range rounds {
		for i := range width {
			email := fmt.Sprintf("restored%d-%d@example.com", r, i)
			admins[r][i].id = env.CreateUser(op, email, memberPW, "admin")
			admins[r][i].app = enableAPIAccess(t, env, env.Login(email, memberPW), nil)
		}
	}
	var account struct {
		Account struct {
			ID string `json:"id"`
		} `json:"account"`
	}
	env.As(op, "GET", "/v1/me", nil).JSON(t, &account)
	deadlocks := pgDeadlocksSince(t, env)
	conflicts := servertest.Conflicts()
	var rotated [rounds][width]*service.Issued
	for r := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range width {
			a := admins[r][i]
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				now := time.Now()
				entry := &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: account.Account.ID, Actor: "user", Action: "user.update",
					TargetType: "user", TargetID: a.id, CreatedAt: now, Details: map[string]string{"status": string(gatehouse.StatusDisabled)}}
				if _, err := svc.ReapplyRevocations(ctx, []*gatehouse.AuditEntry{entry}, now.Add(-time.Hour)); err != nil {
					t.Errorf("reapply: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				<-start
				out, err := svc.RefreshGrant(ctx, a.app.ClientID, a.app.RefreshToken, "")
				if err != nil && gatehouse.ErrorCode(err) != gatehouse.EInvalidGrant {
					t.Errorf("refresh: %v", err)
				}
				rotated[r][i] = out
			}()
		}
		close(start)
		wg.Wait()
	}
	for r := range rounds {
		for i, a := range admins[r] {
			var u struct {
				Status string `json:"status"`
			}
			env.As(op, "GET", "/v1/users/"+a.id, nil).JSON(t, &u)
			if u.Status != "disabled" {
				t.Fatalf("admin %d-%d: %s after the reapply", r, i, u.Status)
			}
			servertest.Expect(t, env.As(a.app.AccessToken, "GET", "/v1/me", nil), 401, "")
			servertest.Expect(t, refresh(env, a.app.ClientID, a.app.RefreshToken), 400, "invalid_grant")
			if out := rotated[r][i]; out != nil {
				servertest.Expect(t, env.As(out.AccessToken, "GET", "/v1/me", nil), 401, "")
				servertest.Expect(t, refresh(env, a.app.ClientID, out.RefreshToken), 400, "invalid_grant")
			}
		}
	}
	if n := servertest.Conflicts() - conflicts; n > 0 {
		t.Errorf("%d write transactions deadlocked with another and were run again", n)
	}
	if n := deadlocks(); n > 0 {
		t.Fatalf("PostgreSQL counted %d deadlocks while re-applied disables and refreshes ran together", n)
	}
}
