package e2e

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// runIn runs a command in dir and returns its combined output; it
// fails the test when the command fails.
func runIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// apiTokenStatus answers the status of GET /v1/me with the API token tok.
func apiTokenStatus(t *testing.T, node *process, tok string) int {
	t.Helper()
	st, _ := node.send(t, "GET", "/v1/me", nil, "X-API-Token", tok)
	return st
}

// consoleCookieStatus answers the status of GET /admin/me with the console
// session cookie ck (200 while it works; a redirect to the sign-in page
// once it does not).
func consoleCookieStatus(t *testing.T, node *process, ck *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest("GET", node.url+"/admin/me", nil)
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	resp, err := clientFrom("127.0.0.1", nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(resp)
	return resp.StatusCode
}

// TestBackupReapplyEveryRevocation follows docs/deploy.md's backup,
// audit-export, restore and reapply-revocations procedure on SQLite, with
// revocations made after the backup by other routes than the ones
// TestBackupRestoreReapply covers:
//   - an API token and a client secret reported leaked through
//     POST /v1/credentials/revoke (revoked by possession, audited as
//     credential.leaked);
//   - an API token rolled with no overlap (api_token.roll);
//   - a user deleted (user.delete);
//   - one console session ended (DELETE /v1/me/sessions/{id},
//     user.session_end);
//   - the API tokens extension turned off (extension.api_tokens);
//   - as a control, an API token deleted (api_token.revoke).
//
// SPEC §10.9: "gatehouse can re-apply the revocations recorded after the
// backup's time from an exported audit log"; docs/deploy.md: "So
// revocations are re-applied after every restore", "What the restored
// database cannot hold exactly is taken further, never left open: a
// credential rolled after the backup is deleted", and the list names
// "revoked ... API tokens", "revoked tokens" and "ended sessions".
func TestBackupReapplyEveryRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	testenv.RequireTool(t, "sqlite3")
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dbURL := filepath.Join(dir, "data", "gatehouse.db")
	os.MkdirAll(filepath.Dir(dbURL), 0o700)
	node := startProcess(t, dbURL)
	admin := login(t, node, "admin@example.com", processAdminPassword)

	must := func(what string, want int, f func() (int, map[string]any)) map[string]any {
		t.Helper()
		st, out := f()
		if st != want {
			t.Fatalf("%s: %d %v, want %d", what, st, out, want)
		}
		return out
	}
	userID := func(tok, email string) string {
		t.Helper()
		_, out := node.send(t, "GET", "/v1/users?email="+url.QueryEscape(email), nil, bearer(tok)...)
		return out["data"].([]any)[0].(map[string]any)["id"].(string)
	}

	// API tokens of the default account.
	must("extension on", 204, func() (int, map[string]any) {
		st, out := node.send(t, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}, bearer(admin)...)
		if st == 200 {
			st = 204
		}
		return st, out
	})
	mkToken := func(tok, name string) (id, secret string) {
		t.Helper()
		out := must("API token "+name, 201, func() (int, map[string]any) {
			return node.send(t, "POST", "/v1/api-tokens", map[string]string{"name": name}, bearer(tok)...)
		})
		return out["id"].(string), out["token"].(string)
	}
	_, leakTok := mkToken(admin, "leaked")
	rollID, rollTok := mkToken(admin, "rolled")
	ctlID, ctlTok := mkToken(admin, "deleted")

	// A developer's client credential, reported leaked later.
	must("create ann", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/users", map[string]any{"email": "ann@example.com", "password": memberPW}, bearer(admin)...)
	})
	annID := userID(admin, "ann@example.com")
	must("ann developer", 204, func() (int, map[string]any) {
		return node.send(t, "PUT", "/v1/developers/"+annID, nil, bearer(admin)...)
	})
	ann := login(t, node, "ann@example.com", memberPW)
	cred := must("credential", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/credentials", map[string]string{"name": "ci"}, bearer(ann)...)
	})
	grant := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred["client_id"].(string)}, "client_secret": {cred["client_secret"].(string)}}
	cc := must("client credentials grant", 200, func() (int, map[string]any) { return node.send(t, "POST", "/oauth/token", grant) })
	ccTok := cc["access_token"].(string)

	// A user who is deleted later.
	must("create del", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/users", map[string]any{"email": "del@example.com", "password": memberPW}, bearer(admin)...)
	})
	delID := userID(admin, "del@example.com")
	delTok := login(t, node, "del@example.com", memberPW)

	// A user with a console session ended later.
	must("create sess", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/users", map[string]any{"email": "sess@example.com", "password": memberPW, "roles": []string{"admin"}}, bearer(admin)...)
	})
	sessCookie := adminSessionCookieAs(t, clientFrom("127.0.0.1", nil), node.url, "sess@example.com", memberPW)
	sessTok := login(t, node, "sess@example.com", memberPW)
	sessions := must("sessions", 200, func() (int, map[string]any) { return node.send(t, "GET", "/v1/me/sessions", nil, bearer(sessTok)...) })
	list, _ := sessions["data"].([]any)
	if len(list) != 1 {
		t.Fatalf("sessions of sess: %v", sessions)
	}
	sessID := list[0].(map[string]any)["id"].(string)

	// A second account whose API tokens extension is turned off later.
	must("account b", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/accounts", map[string]string{"name": "b", "admin_email": "b-admin@example.com", "admin_password": memberPW}, bearer(admin)...)
	})
	bAdmin := login(t, node, "b-admin@example.com", memberPW)
	if st, out := node.send(t, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}, bearer(bAdmin)...); st/100 != 2 {
		t.Fatalf("extension on in b: %d %v", st, out)
	}
	_, extTok := mkToken(bAdmin, "b-token")

	// Controls, revoked by the routes the docs list.
	offID, offTok := mkToken(admin, "disabled")
	cred2 := must("credential 2", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/credentials", map[string]string{"name": "rolled"}, bearer(ann)...)
	})
	grant2 := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred2["client_id"].(string)}, "client_secret": {cred2["client_secret"].(string)}}
	acc := must("account c", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/accounts", map[string]string{"name": "c", "admin_email": "c-admin@example.com", "admin_password": memberPW}, bearer(admin)...)
	})
	cAdmin := login(t, node, "c-admin@example.com", memberPW)
	must("create pw", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/users", map[string]any{"email": "pw@example.com", "password": memberPW}, bearer(admin)...)
	})
	pwID := userID(admin, "pw@example.com")
	pwTok := login(t, node, "pw@example.com", memberPW)

	// An admin who loses the role after the backup.
	must("create demo", 201, func() (int, map[string]any) {
		return node.send(t, "POST", "/v1/users", map[string]any{"email": "demo@example.com", "password": memberPW, "roles": []string{"admin"}}, bearer(admin)...)
	})
	demoID := userID(admin, "demo@example.com")
	demoAsAdmin := func() int {
		tok := login(t, node, "demo@example.com", memberPW)
		st, _ := node.send(t, "GET", "/v1/settings", nil, bearer(tok)...)
		return st
	}
	if st := demoAsAdmin(); st != 200 {
		t.Fatalf("demo reads the settings as an admin before the backup: %d", st)
	}

	for what, st := range map[string]int{
		"leaked API token": apiTokenStatus(t, node, leakTok), "rolled API token": apiTokenStatus(t, node, rollTok),
		"deleted API token": apiTokenStatus(t, node, ctlTok), "b's API token": apiTokenStatus(t, node, extTok),
		"leaked credential's token": func() int { st, _ := node.send(t, "GET", "/v1/me", nil, bearer(ccTok)...); return st }(),
		"deleted user's token":      func() int { st, _ := node.send(t, "GET", "/v1/me", nil, bearer(delTok)...); return st }(),
		"ended console session":     consoleCookieStatus(t, node, sessCookie),
	} {
		if st != 200 {
			t.Fatalf("%s before the backup: %d", what, st)
		}
	}

	// The backup, as docs/deploy.md takes it.
	backupTime := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	runIn(t, dir, "sh", "-c", `mkdir -p backup && sqlite3 data/gatehouse.db ".backup 'backup/gatehouse.db'"`)
	time.Sleep(1100 * time.Millisecond) // every revocation below is after backupTime+1s at second precision

	// The revocations after the backup.
	if st, out := node.send(t, "POST", "/v1/credentials/revoke", map[string]any{"credentials": []string{leakTok, cred["client_secret"].(string)}}); st != 202 {
		t.Fatalf("bulk revoke: %d %v", st, out)
	}
	must("roll", 201, func() (int, map[string]any) {
		st, out := node.send(t, "POST", "/v1/api-tokens/"+rollID+"/roll", map[string]int{"overlap_seconds": 0}, bearer(admin)...)
		if st == 200 {
			st = 201
		}
		return st, out
	})
	must("delete control token", 204, func() (int, map[string]any) {
		return node.send(t, "DELETE", "/v1/api-tokens/"+ctlID, nil, bearer(admin)...)
	})
	must("delete del", 204, func() (int, map[string]any) { return node.send(t, "DELETE", "/v1/users/"+delID, nil, bearer(admin)...) })
	must("end one session", 204, func() (int, map[string]any) {
		return node.send(t, "DELETE", "/v1/me/sessions/"+sessID, nil, bearer(sessTok)...)
	})
	if st, out := node.send(t, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false}, bearer(bAdmin)...); st/100 != 2 {
		t.Fatalf("extension off in b: %d %v", st, out)
	}
	must("disable API token", 200, func() (int, map[string]any) {
		return node.send(t, "PATCH", "/v1/api-tokens/"+offID, map[string]bool{"enabled": false}, bearer(admin)...)
	})
	if st, out := node.send(t, "POST", "/v1/credentials/"+cred2["id"].(string)+"/roll", map[string]int{"overlap_seconds": 0}, bearer(ann)...); st/100 != 2 {
		t.Fatalf("roll credential: %d %v", st, out)
	}
	must("suspend c", 200, func() (int, map[string]any) {
		return node.send(t, "PATCH", "/v1/accounts/"+acc["id"].(string), map[string]string{"status": "suspended"}, bearer(admin)...)
	})
	must("demote demo", 200, func() (int, map[string]any) {
		return node.send(t, "PATCH", "/v1/users/"+demoID, map[string]any{"roles": []string{}}, bearer(admin)...)
	})
	must("new password for pw", 200, func() (int, map[string]any) {
		return node.send(t, "PATCH", "/v1/users/"+pwID, map[string]string{"password": "a new password 2"}, bearer(admin)...)
	})

	type check struct {
		what   string
		status func() int
		good   func(int) bool
	}
	refused := func(st int) bool { return st == 401 }
	checks := []check{
		{"API token reported leaked (credential.leaked)", func() int { return apiTokenStatus(t, node, leakTok) }, refused},
		{"client credential reported leaked: its secret (credential.leaked)", func() int { st, _ := node.send(t, "POST", "/oauth/token", grant); return st }, refused},
		{"client credential reported leaked: its token (credential.leaked)", func() int { st, _ := node.send(t, "GET", "/v1/me", nil, bearer(ccTok)...); return st }, refused},
		{"API token rolled with no overlap: the old secret (api_token.roll)", func() int { return apiTokenStatus(t, node, rollTok) }, refused},
		{"API token deleted (api_token.revoke, control)", func() int { return apiTokenStatus(t, node, ctlTok) }, refused},
		{"deleted user's password token (user.delete)", func() int { st, _ := node.send(t, "GET", "/v1/me", nil, bearer(delTok)...); return st }, refused},
		{"deleted user's password (user.delete)", func() int {
			st, _ := node.send(t, "POST", "/authorization", map[string]string{"username": "del@example.com", "password": memberPW})
			return st
		}, func(st int) bool { return st == 400 || st == 401 }},
		{"console session ended alone (user.session_end)", func() int { return consoleCookieStatus(t, node, sessCookie) }, func(st int) bool { return st != 200 }},
		{"API token of an account whose extension was turned off (extension.api_tokens)", func() int { return apiTokenStatus(t, node, extTok) }, refused},
		{"admin role removed: the user acts as an admin again (user.update roles)", demoAsAdmin, func(st int) bool { return st == 403 }},
		{"API token disabled (api_token.update, control)", func() int { return apiTokenStatus(t, node, offTok) }, refused},
		{"client credential rolled: the old secret (credential.roll, control)", func() int { st, _ := node.send(t, "POST", "/oauth/token", grant2); return st }, refused},
		{"suspended account's admin token (account.update, control)", func() int { st, _ := node.send(t, "GET", "/v1/me", nil, bearer(cAdmin)...); return st }, refused},
		{"token of a user whose password changed (user.update, control)", func() int { st, _ := node.send(t, "GET", "/v1/me", nil, bearer(pwTok)...); return st }, refused},
		{"old password of a user whose password changed (user.update, control)", func() int {
			st, _ := node.send(t, "POST", "/authorization", map[string]string{"username": "pw@example.com", "password": memberPW})
			return st
		}, func(st int) bool { return st == 400 || st == 401 }},
	}
	// Every revocation holds on the live server (the bulk endpoint works
	// just after its answer).
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range checks {
		for st := c.status(); !c.good(st); st = c.status() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d before the restore, on the live server", c.what, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Export, restore, start, re-apply: the docs' procedure.
	audit := runIn(t, dir, bin, "audit-export", "--database-url", dbURL, "--since", backupTime)
	if err := os.WriteFile(filepath.Join(dir, "audit.jsonl"), []byte(audit), 0o600); err != nil {
		t.Fatal(err)
	}
	node.kill()
	runIn(t, dir, "sh", "-c", `rm -f data/gatehouse.db-wal data/gatehouse.db-shm && cp backup/gatehouse.db data/gatehouse.db`)
	node = startProcess(t, dbURL)
	out := runIn(t, dir, bin, "reapply-revocations", "--audit", "audit.jsonl", "--since", backupTime, "--database-url", dbURL)
	t.Logf("reapply-revocations:\n%s", out)

	// The node follows within its poll of the store (a second).
	deadline = time.Now().Add(5 * time.Second)
	for _, c := range checks {
		t.Run(c.what, func(t *testing.T) {
			st := c.status()
			for !c.good(st) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				st = c.status()
			}
			if !c.good(st) {
				t.Errorf("after restore + reapply-revocations, %s works again: %d", c.what, st)
			}
		})
	}
}

// TestRecoverEndsConsoleSessions: docs/deploy.md, Break-glass
// recovery: "their admin UI sessions and password-grant tokens end".
// The operator holds a console session and a password token on a running
// node; `gatehouse recover` runs beside it; both stop working.
func TestRecoverEndsConsoleSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dbURL := filepath.Join(t.TempDir(), "gatehouse.db")
	node := startProcess(t, dbURL)
	tok := login(t, node, "admin@example.com", processAdminPassword)
	ck := adminSessionCookieAs(t, clientFrom("127.0.0.1", nil), node.url, "admin@example.com", processAdminPassword)
	if st := consoleCookieStatus(t, node, ck); st != 200 {
		t.Fatalf("console before recover: %d", st)
	}
	cmd := exec.Command(bin, "recover", "--email", "admin@example.com", "--database-url", dbURL)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("recover: %v\n%s", err, out)
	}
	fields := strings.Fields(string(out))
	newPW := fields[len(fields)-1]
	deadline := time.Now().Add(5 * time.Second)
	for {
		stTok, _ := node.send(t, "GET", "/v1/me", nil, bearer(tok)...)
		stCk := consoleCookieStatus(t, node, ck)
		if stTok == 401 && stCk != 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after recover: the old password token answers %d, the old console session %d", stTok, stCk)
		}
		time.Sleep(100 * time.Millisecond)
	}
	login(t, node, "admin@example.com", newPW)
	if st, _ := node.send(t, "POST", "/authorization", map[string]string{"username": "admin@example.com", "password": processAdminPassword}); st == 200 {
		t.Fatal("the old password still signs in after recover")
	}
}

// TestRestoreOfABadFile: a restore that puts a truncated copy or
// garbage in place of gatehouse.db is refused with a clear error by
// `gatehouse migrate` and `gatehouse serve` — an exit, never a panic, and
// the file is not replaced by a fresh empty store.
func TestRestoreOfABadFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	testenv.RequireTool(t, "sqlite3")
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	node := startProcess(t, good)
	login(t, node, "admin@example.com", processAdminPassword)
	node.kill()
	runIn(t, dir, "sqlite3", "good.db", "PRAGMA wal_checkpoint(TRUNCATE);")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)/3],
		"garbage":   []byte(strings.Repeat("not a database at all\n", 400)),
		"header":    data[:100],
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name, "gatehouse.db")
			os.MkdirAll(filepath.Dir(path), 0o700)
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"migrate", "--database-url", path}, {"serve", "--addr", freeAddr(t), "--database-url", path}} {
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+processAdminPassword)
				done := make(chan struct{})
				var out []byte
				var err error
				go func() { out, err = cmd.CombinedOutput(); close(done) }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					<-done
					t.Fatalf("%s on a %s file kept running:\n%s", args[0], name, out)
				}
				if err == nil {
					t.Errorf("%s on a %s file succeeded:\n%s", args[0], name, out)
				}
				if s := string(out); strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") {
					t.Errorf("%s on a %s file panicked:\n%s", args[0], name, s)
				}
				after, _ := os.ReadFile(path)
				if len(after) < len(bad) {
					t.Errorf("%s on a %s file shrank it from %d to %d bytes", args[0], name, len(bad), len(after))
				}
			}
		})
	}
}

// TestMigrateTwiceAndAtOnce: `gatehouse migrate` applies each
// migration exactly once, run again or by several processes at once on
// one fresh PostgreSQL schema (docs/deploy.md, Migrations and bootstrap).
func TestMigrateTwiceAndAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dbURL := pgtest.Schema(t)
	const n = 4
	errs := make(chan string, n)
	for range n {
		go func() {
			cmd := exec.Command(bin, "migrate", "--database-url", dbURL)
			cmd.Env = os.Environ()
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs <- fmt.Sprintf("%v: %s", err, out)
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if e := <-errs; e != "" {
			t.Errorf("a concurrent migrate failed: %s", e)
		}
	}
	out, err := exec.Command(bin, "migrate", "--database-url", dbURL).CombinedOutput()
	if err != nil {
		t.Fatalf("migrate again: %v\n%s", err, out)
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var total, distinct int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total != distinct || total == 0 {
		t.Fatalf("schema_migrations: %d rows, %d versions", total, distinct)
	}
	node := startProcess(t, dbURL)
	login(t, node, "admin@example.com", processAdminPassword)
}
