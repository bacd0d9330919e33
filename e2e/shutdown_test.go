package e2e

import (
	"github.com/gatehouse/gatehouse/password"

	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown sends SIGTERM to a real server while password-grant
// requests (about 40 ms of argon2id each) are in flight: every request the
// server accepted is answered in full, and the process exits cleanly.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	p := startProcess(t, filepath.Join(t.TempDir(), "g.db"))
	login := map[string]string{"username": "admin@example.com", "password": processAdminPassword}
	// As many as the hasher takes at once (running and waiting); beyond
	// that a sign-in is refused with 503 by design.
	l := password.DefaultLimits(password.DefaultParams)
	n := l.Concurrency + l.Queue
	var wg sync.WaitGroup
	results := make(chan int, n)
	for i := 0; i < n; i++ {
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
