package e2e

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// TestReleaseScript builds a release with scripts/release.sh for this
// machine's architecture and checks what it promises: a static binary,
// SHA256SUMS that match it, the version and revision stamped in, and the
// exit status of "gatehouse healthcheck" that a container engine reads.
func TestReleaseScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release")
	}
	if os.Getenv(servertest.EnvDatabase) == "postgres" {
		t.Skip("a release does not depend on the store; run once, on SQLite")
	}
	testenv.RequireTool(t, "bash")
	testenv.RequireTool(t, "git")
	testenv.RequireTool(t, "sha256sum")
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skipf("releases are for linux/amd64 and linux/arm64, this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	script, err := filepath.Abs("../scripts/release.sh")
	if err != nil {
		t.Fatal(err)
	}
	// A version that is not a tag is refused before anything is built.
	if out, err := exec.Command(script, "1.0", t.TempDir()).CombinedOutput(); exitCode(err) != 2 {
		t.Fatalf("version 1.0: %v %s", err, out)
	}

	const version = "v9.8.7-rc.1"
	dir := t.TempDir()
	cmd := exec.Command(script, version, dir)
	cmd.Env = append(os.Environ(), "RELEASE_ARCHS="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	name := "gatehouse-linux-" + runtime.GOARCH
	bin := filepath.Join(dir, name)

	// SHA256SUMS: one line, "HASH  NAME", the hash of the file.
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; string(sums) != want {
		t.Fatalf("SHA256SUMS %q, want %q", sums, want)
	}
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil || !strings.Contains(string(out), name+": OK") {
		t.Fatalf("sha256sum -c: %v %s", err, out)
	}

	// Static: no program interpreter and no shared library.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the binary is dynamically linked (program header %v)", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary needs %v", libs)
	}

	// The version and the revision the script stamped.
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	revision := strings.TrimSpace(string(head))
	if dirty, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(dirty) > 0 {
		revision += "-modified"
	}
	out, err := exec.Command(bin, "version").Output()
	if want := "gatehouse " + version + " revision " + revision + " go"; err != nil || !strings.HasPrefix(string(out), want) {
		t.Fatalf("version: %v %q, want %q", err, out, want)
	}

	// gatehouse healthcheck: 1 while nothing answers, 0 once it does.
	addr := freeAddr(t)
	health := func() (int, string) {
		c := exec.Command(bin, "healthcheck")
		c.Env = []string{"GATEHOUSE_ADDR=" + addr}
		out, err := c.CombinedOutput()
		return exitCode(err), string(out)
	}
	if code, out := health(); code != 1 {
		t.Fatalf("healthcheck of nothing: exit %d %s", code, out)
	}
	srv := exec.Command(bin, "serve")
	srv.Env = []string{"GATEHOUSE_ADDR=" + addr, "GATEHOUSE_DATABASE_URL=" + filepath.Join(dir, "g.db"),
		"GATEHOUSE_ADMIN_PASSWORD=release test password"}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	for i := 0; ; i++ {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			break
		}
		if i == 600 {
			t.Fatal("the released binary does not serve")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, out := health(); code != 0 {
		t.Fatalf("healthcheck of a running server: exit %d %s", code, out)
	}
	srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
}

// exitCode is a finished command's exit status (-1 if it did not run).
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	return -1
}
