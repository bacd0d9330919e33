package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// redisServer runs a private redis-server on a free port, so the test can
// stop and restart it without disturbing anything else.
type redisServer struct {
	t    *testing.T
	port string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, port string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	if port == "" {
		port = strings.Split(freeAddr(t), ":")[1]
	}
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &redisServer{t: t, port: port, cmd: cmd}
	t.Cleanup(r.stop)
	for i := 0; i < 100; i++ {
		if out, err := exec.Command("redis-cli", "-p", port, "ping").Output(); err == nil && strings.TrimSpace(string(out)) == "PONG" {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return nil
}

func (r *redisServer) stop() {
	if r.cmd != nil {
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		r.cmd.Wait()
		r.cmd = nil
	}
}

// startNode runs a real gatehouse serve process of a cluster.
func startNode(t *testing.T, dbURL, redisURL string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--addr", addr, "--database-url", dbURL, "--redis-url", redisURL, "--log-level", "error")
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD=cluster admin password")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, url: "http://" + addr}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

func (p *process) waitReady(t *testing.T) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("node did not start")
}

// TestTwoNodeCluster runs two real gatehouse processes on one PostgreSQL
// schema and one Redis.
func TestTwoNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL := pgtest.Schema(t)
	rs := startRedis(t, "")
	redisURL := "redis://127.0.0.1:" + rs.port + "/0"

	// Concurrent bootstrap on the empty database: one account, one admin.
	a, b := startNode(t, dbURL, redisURL), startNode(t, dbURL, redisURL)
	a.waitReady(t)
	b.waitReady(t)
	login := map[string]string{"username": "admin@example.com", "password": "cluster admin password"}
	_, out, _ := a.call("POST", "/authorization", "", login)
	admin := out["access_token"].(string)
	st, users, _ := b.call("GET", "/v1/users", admin, nil)
	if st != 200 || len(users["data"].([]any)) != 1 {
		t.Fatalf("users after concurrent bootstrap: %d %v", st, users)
	}
	st, accounts, _ := a.call("POST", "/v1/accounts", admin, map[string]string{"name": "x", "admin_email": "x@example.com", "admin_password": "long enough pw"})
	if st != 201 || accounts["id"] == nil {
		t.Fatalf("account: %d %v", st, accounts)
	}

	// A token from A works on B; revoke on A → 401 on B at once.
	_, out, _ = a.call("POST", "/authorization", "", login)
	tok := out["access_token"].(string)
	if st, _, _ := b.call("GET", "/v1/me", tok, nil); st != 200 {
		t.Fatalf("token from A on B: %d", st)
	}
	if st, _, _ := a.call("POST", "/oauth/revoke", "", map[string]string{"token": tok}); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if st, _, _ := b.call("GET", "/v1/me", tok, nil); st != 401 {
		t.Fatalf("revoked on A, B answers %d", st)
	}

	// Disable on B → 401 on A at once.
	_, u, _ := a.call("POST", "/v1/users", admin, map[string]any{"email": "ann@example.com", "password": memberPW})
	_, out, _ = b.call("POST", "/authorization", "", map[string]string{"username": "ann@example.com", "password": memberPW})
	ann := out["access_token"].(string)
	if st, _, _ := a.call("GET", "/v1/me", ann, nil); st != 200 {
		t.Fatalf("ann on A: %d", st)
	}
	if st, _, _ := b.call("PATCH", "/v1/users/"+u["id"].(string), admin, map[string]string{"status": "disabled"}); st != 200 {
		t.Fatalf("disable: %d", st)
	}
	if st, _, _ := a.call("GET", "/v1/me", ann, nil); st != 401 {
		t.Fatalf("disabled on B, A answers %d", st)
	}

	// 150 concurrent requests split across A and B with burst 100.
	a.call("POST", "/v1/users", admin, map[string]any{"email": "bob@example.com", "password": memberPW})
	_, out, _ = a.call("POST", "/authorization", "", map[string]string{"username": "bob@example.com", "password": memberPW})
	bob := out["access_token"].(string)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
	)
	for i := 0; i < 150; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			node := a
			if i%2 == 1 {
				node = b
			}
			st, _, _ := node.call("GET", "/v1/me", bob, nil)
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if counts[200] != 100 || counts[422] != 50 {
		t.Fatalf("statuses %v, want 100×200 and 50×422", counts)
	}

	// Redis stopped → 503; restarted → served again.
	rs.stop()
	st, body, _ := a.call("GET", "/v1/me", admin, nil)
	if st != 503 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("without Redis: %d %v", st, body)
	}
	if st, _, _ := b.call("GET", "/readyz", "", nil); st != 503 {
		t.Fatalf("readyz without Redis: %d", st)
	}
	startRedis(t, rs.port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, _ = a.call("GET", "/v1/me", admin, nil)
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after Redis came back: %d", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
