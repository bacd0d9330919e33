package testenv_test

import (
	"os/exec"
	"runtime"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

func TestRequireTool(t *testing.T) {
	want, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	if got := testenv.RequireTool(t, "gatehouse-no-such-program", "go"); got != want {
		t.Fatalf("RequireTool = %q, want %q", got, want)
	}
}

// TestMissing runs Missing in a subtest, with and without CI=true.
func TestMissing(t *testing.T) {
	for _, c := range []struct {
		ci             string
		skipped, fails bool
	}{
		{"", true, false},
		{"false", true, false},
		{"true", false, true},
	} {
		t.Run("CI="+c.ci, func(t *testing.T) {
			t.Setenv("CI", c.ci)
			rec := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				testenv.RequireTool(rec, "gatehouse-no-such-program")
			}()
			<-done
			if rec.skipped != c.skipped || rec.failed != c.fails {
				t.Fatalf("skipped %v, failed %v; want %v, %v", rec.skipped, rec.failed, c.skipped, c.fails)
			}
		})
	}
}

// recorder notes a skip or a fatal failure instead of acting on it; both
// end the goroutine, as testing does.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(string, ...any) {
	r.skipped = true
	runtime.Goexit()
}

func (r *recorder) Fatalf(string, ...any) {
	r.failed = true
	runtime.Goexit()
}
