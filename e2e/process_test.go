package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/localserver"
)

// The tests that run gatehouse as a separate process, as an operator
// would, share these helpers: build the binary, start gatehouse serve,
// talk to it, kill it.

// processAdminPassword is the bootstrap admin's password in every process.
const processAdminPassword = "process admin password"

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

// freeAddr returns a loopback address whose port was free a moment ago.
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

// launch starts gatehouse serve on a free port with the given flags, and
// returns without waiting for it to answer, so that several processes can
// start at once. The process is killed when the test ends.
func launch(t *testing.T, flags ...string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, flags...)...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+processAdminPassword)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &process{cmd: cmd, url: "http://" + addr}
}

// startProcess starts gatehouse serve on the store db and waits until it
// answers.
func startProcess(t *testing.T, db string) *process {
	t.Helper()
	p := launch(t, "--database-url", db, "--log-level", "warn")
	p.waitReady(t)
	return p
}

// waitReady waits until the process answers /healthz.
func (p *process) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
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
	var headers []string
	if tok != "" {
		headers = []string{"Authorization", "Bearer " + tok}
	}
	r, err := (&localserver.Client{URL: p.url}).Do(context.Background(), method, path, body, headers...)
	if err != nil || (len(r.Body) > 0 && json.Unmarshal(r.Body, &out) != nil) {
		return 0, nil, false
	}
	return r.Status, out, true
}
