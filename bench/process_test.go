package bench

import (
	"bytes"
	"os"
	"testing"
)

// TestNodeLogKeepsWarningsOnly: a node logs as shipped (a line per
// request) to a file of its own; when it stops, only its warnings and
// errors reach the bench's stderr, and the file is gone.
func TestNodeLogKeepsWarningsOnly(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "node-*.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := "time=1 level=INFO msg=request method=GET path=/v1/me status=200\n" +
		"time=2 level=WARN msg=\"rate limiter unavailable\" err=x\n" +
		"time=3 level=DEBUG msg=detail\n" +
		"time=4 level=ERROR msg=\"store unavailable\"\n" +
		"panic: something\n"
	if _, err := f.WriteString(lines); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	n := &node{log: f, stderr: &stderr}
	n.closeLog()
	want := "time=2 level=WARN msg=\"rate limiter unavailable\" err=x\n" +
		"time=4 level=ERROR msg=\"store unavailable\"\n" +
		"panic: something\n"
	if got := stderr.String(); got != want {
		t.Errorf("stderr got\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("the node's log is still there: %v", err)
	}
}

func TestLogNote(t *testing.T) {
	for level, shipped := range map[string]bool{"": true, "info": true, "INFO": true, "warn": false, "error": false} {
		if got := logNote(level); bytes.Contains([]byte(got), []byte("as shipped")) != shipped {
			t.Errorf("logNote(%q) = %q", level, got)
		}
	}
}
