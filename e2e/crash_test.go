package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// buildBinary builds cmd/gatehouse once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatehouse")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/gatehouse").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a running gatehouse serve.
type process struct {
	cmd *exec.Cmd
	url string
}

func startProcess(t *testing.T, db string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--addr", addr, "--database-url", db, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD=crash test admin password")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, url: "http://" + addr}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) kill() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// call does one request; ok is false on a transport error (the server was
// killed mid-request), in which case nothing was acknowledged.
func (p *process) call(method, path, tok string, body any) (status int, out map[string]any, ok bool) {
	var rd *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, false
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && err != io.EOF {
		return 0, nil, false
	}
	return resp.StatusCode, out, true
}

// TestCrashSafety kills a real server with SIGKILL while it issues tokens
// and disables users, several times. After each restart every acknowledged
// token still works unless its user's disabling was acknowledged, every
// acknowledged disabling holds, and SQLite's integrity check passes.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts real servers")
	}
	db := filepath.Join(t.TempDir(), "crash.db")
	p := startProcess(t, db)
	_, login, _ := p.call("POST", "/authorization", "", map[string]string{"username": "admin@example.com", "password": "crash test admin password"})
	admin := login["access_token"].(string)
	p.call("PUT", "/v1/settings", admin, map[string]any{"rate_limit": map[string]int{"burst": 1_000_000, "burst_window_seconds": 1, "daily": 100_000_000}})

	type user struct {
		id, email string
		tokens    []string
		disabled  bool // disabling acknowledged
	}
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
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for n := 0; ctx.Err() == nil; n++ {
					mu.Lock()
					u := users[len(users)-1-(n*4+w)%6]
					mu.Unlock()
					if w == 0 && n%7 == 6 {
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
					if ok && st != http.StatusOK && (st != http.StatusBadRequest || out["error"] != "invalid_grant") {
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
		time.Sleep(time.Duration(300+round*150) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()

		checkIntegrity(t, db)
		p = startProcess(t, db)
		checked := 0
		for _, u := range users {
			for _, tok := range u.tokens {
				st, _, ok := p.call("GET", "/v1/me", tok, nil)
				want := http.StatusOK
				if u.disabled {
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
		t.Logf("round %d: %d acknowledged tokens verified after SIGKILL", round, checked)
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

// TestGracefulShutdown sends SIGTERM to a real server while password-grant
// requests (about 40 ms of argon2id each) are in flight: every request the
// server accepted is answered in full, and the process exits cleanly.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	p := startProcess(t, filepath.Join(t.TempDir(), "g.db"))
	login := map[string]string{"username": "admin@example.com", "password": "crash test admin password"}
	var wg sync.WaitGroup
	results := make(chan int, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, ok := p.call("POST", "/authorization", "", login)
			if ok {
				results <- st
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(results)
	answered := 0
	for st := range results {
		answered++
		if st != http.StatusOK {
			t.Fatalf("in-flight request answered %d", st)
		}
	}
	if answered == 0 {
		t.Fatal("no request was in flight")
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	t.Logf("%d in-flight requests finished during shutdown", answered)
}
