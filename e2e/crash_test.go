package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestCrashSafety kills a real server with SIGKILL while it issues tokens,
// revokes some (RFC 7009) and disables users, several times. Every answer
// before the kill is 2xx, 4xx or 503 with Retry-After. After each restart
// every acknowledged token still works unless its revocation or its
// user's disabling was acknowledged, every acknowledged revocation and
// disabling holds, and SQLite's integrity check passes.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts real servers")
	}
	db := filepath.Join(t.TempDir(), "crash.db")
	p := startProcess(t, db)
	_, login, _ := p.call("POST", "/authorization", "", map[string]string{"username": "admin@example.com", "password": processAdminPassword})
	admin := login["access_token"].(string)
	p.call("PUT", "/v1/settings", admin, map[string]any{"rate_limit": map[string]int{"burst": 1_000_000, "burst_window_seconds": 1, "daily": 100_000_000}})

	type user struct {
		id, email string
		tokens    []string
		disabled  bool // disabling acknowledged
		// maybeDisabled: a disabling was sent; if its answer never came,
		// the restarted server says whether it committed.
		maybeDisabled bool
	}
	revoked := map[string]bool{} // revocation acknowledged
	unknown := map[string]bool{} // revocation sent, not acknowledged
	var (
		mu    sync.Mutex
		users []*user
	)
	for round := 0; round < 4; round++ {
		// Users for this round.
		for i := 0; i < 6; i++ {
			email := fmt.Sprintf("r%du%d@example.com", round, i)
			st, out, _ := p.call("POST", "/v1/users", admin, map[string]any{"email": email, "password": "crash user password"})
			if st != http.StatusCreated {
				t.Fatalf("create user: %d %v", st, out)
			}
			users = append(users, &user{id: out["id"].(string), email: email})
		}
		// Load: log in repeatedly and disable users, until killed.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		// Workers 0–3 log in (0 also disables users); worker 4 revokes.
		for w := 0; w < 5; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for n := 0; ctx.Err() == nil; n++ {
					mu.Lock()
					u := users[len(users)-1-(n*4+w)%6]
					mu.Unlock()
					if w == 4 {
						// The newest of every user's second tokens not yet
						// revoked (the others stay live).
						mu.Lock()
						var tok string
						for _, v := range users {
							for i, c := range v.tokens {
								if i%2 == 1 && !revoked[c] && !unknown[c] {
									tok = c
								}
							}
						}
						if tok != "" {
							unknown[tok] = true
						}
						mu.Unlock()
						if tok == "" {
							time.Sleep(10 * time.Millisecond) // nothing to revoke yet
							continue
						}
						a := faultCall(p.url, "POST", "/oauth/revoke", "", map[string]string{"token": tok})
						if problem := a.check(); problem != "" && a.err == nil {
							t.Errorf("revoke: %s", problem)
						}
						if a.err == nil && a.status == http.StatusOK {
							mu.Lock()
							revoked[tok] = true
							delete(unknown, tok)
							mu.Unlock()
						}
						continue
					}
					if w == 0 && n%7 == 6 {
						mu.Lock()
						u.maybeDisabled = true
						mu.Unlock()
						st, _, ok := p.call("PATCH", "/v1/users/"+u.id, admin, map[string]string{"status": "disabled"})
						if ok && st == http.StatusOK {
							mu.Lock()
							u.disabled = true
							mu.Unlock()
						}
						continue
					}
					st, out, ok := p.call("POST", "/authorization?"+url.Values{"username": {u.email}, "password": {"crash user password"}}.Encode(), "", nil)
					// invalid_grant is the answer once the user is disabled.
					if ok && st != http.StatusOK && (st != http.StatusBadRequest || out["error"] != "invalid_grant") && (st != http.StatusServiceUnavailable || out["error"] != "temporarily_unavailable") {
						t.Errorf("login %s: %d %v", u.email, st, out)
					}
					if ok && st == http.StatusOK {
						mu.Lock()
						u.tokens = append(u.tokens, out["access_token"].(string))
						mu.Unlock()
					}
				}
			}(w)
		}
		// Kill only once this round has acknowledged a login: password
		// hashing queues on a loaded machine.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			acknowledged := false
			for _, u := range users[len(users)-6:] {
				acknowledged = acknowledged || len(u.tokens) > 0
			}
			mu.Unlock()
			if acknowledged {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no login acknowledged in 30 s", round)
			}
		}
		time.Sleep(time.Duration(300+round*150) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()

		checkIntegrity(t, db)
		p = startProcess(t, db)
		// A disabling whose answer never came: the server now says.
		for _, u := range users {
			if u.maybeDisabled && !u.disabled {
				st, out, ok := p.call("GET", "/v1/users/"+u.id, admin, nil)
				if !ok || st != http.StatusOK {
					t.Fatalf("round %d: user %s: %d %v", round, u.email, st, out)
				}
				u.disabled = out["status"] == "disabled"
			}
		}
		checked := 0
		for _, u := range users {
			for _, tok := range u.tokens {
				if unknown[tok] {
					continue // revoked or not: the answer never came
				}
				st, _, ok := p.call("GET", "/v1/me", tok, nil)
				want := http.StatusOK
				if u.disabled || revoked[tok] {
					want = http.StatusUnauthorized
				}
				if !ok || st != want {
					t.Fatalf("round %d: token of %s (disabled %v): %d, want %d", round, u.email, u.disabled, st, want)
				}
				checked++
			}
		}
		if checked == 0 {
			t.Fatalf("round %d: no token was acknowledged before the kill", round)
		}
		t.Logf("round %d: %d acknowledged tokens (%d revoked) verified after SIGKILL", round, checked, len(revoked))
	}
}

func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q %v", res, err)
	}
}
