package e2e

import (
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/internal/testenv"
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
	bin := testenv.RequireTool(t, "redis-server")
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

// startNode starts a gatehouse serve process of a cluster, without waiting
// for it to answer.
func startNode(t *testing.T, dbURL, redisURL string) *process {
	t.Helper()
	return launch(t, "--database-url", dbURL, "--redis-url", redisURL, "--log-level", "error")
}

// TestTwoNodeCluster runs two real gatehouse processes on one PostgreSQL
// schema and one Redis.
func TestTwoNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	rs := startRedis(t, "")
	a, admin := twoNodes(t, "redis://127.0.0.1:"+rs.port+"/0")

	// Redis stopped → 503; restarted → served again.
	rs.stop()
	st, body, _ := a.call("GET", "/v1/me", admin, nil)
	if st != 503 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("without Redis: %d %v", st, body)
	}
	if st, _, _ := a.call("GET", "/readyz", "", nil); st != 503 {
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

// TestTwoNodeRedisCluster runs two real gatehouse processes on one
// PostgreSQL schema and a Redis Cluster of three masters: the same
// revocations across nodes and the same exact shared limit.
func TestTwoNodeRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	twoNodes(t, redistest.Cluster(t))
}

// twoNodes starts two nodes on a fresh PostgreSQL schema and redisURL,
// checks that they bootstrap once, that a revocation or a disable on one
// holds on the other at once, and that 150 requests split between them
// meet one burst limit of 100 exactly. It returns the first node and the
// operator-admin's token.
func twoNodes(t *testing.T, redisURL string) (*process, string) {
	t.Helper()
	dbURL := pgtest.Schema(t)

	// Concurrent bootstrap on the empty database: one account, one admin.
	a, b := startNode(t, dbURL, redisURL), startNode(t, dbURL, redisURL)
	a.waitReady(t)
	b.waitReady(t)
	login := map[string]string{"username": "admin@example.com", "password": processAdminPassword}
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
	return a, admin
}
