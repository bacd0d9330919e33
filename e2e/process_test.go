package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// runGatehouse runs the gatehouse binary to its end, in a directory of its
// own, with env added to the environment and stdin as its input, and
// returns its exit status and output. A command still running after a
// minute is killed and fails the test.
func runGatehouse(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %v: still running after a minute (out %q err %q)", args, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
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
