package e2e

import (
	"github.com/gatehouse/gatehouse/password"

	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	var (
		wg      sync.WaitGroup
		first   sync.Once
		termed  atomic.Bool
		results = make(chan int, n)
		late    atomic.Int32 // answered after SIGTERM
	)
	answeredOne := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, ok := p.call("POST", "/authorization", "", login)
			if ok {
				if termed.Load() {
					late.Add(1)
				}
				results <- st
			}
			first.Do(func() { close(answeredOne) })
		}()
	}
	// The hasher takes them one after the other: once the first is
	// answered, the others were sent with it and wait in the server.
	select {
	case <-answeredOne:
	case <-time.After(30 * time.Second):
		t.Fatal("no sign-in answered in 30 s")
	}
	termed.Store(true)
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
	if late.Load() == 0 {
		t.Fatalf("no request was in flight at SIGTERM (%d answered before it)", answered)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	t.Logf("%d of %d sign-ins finished during shutdown", late.Load(), answered)
}
