// Package testenv decides what a test does when something it needs from
// the machine is missing, such as a program or a database: it is skipped,
// except under CI=true, where it fails, so that CI never passes by
// skipping.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Missing skips t because what is not available, or fails it under CI=true.
// reason says why, and how to provide it.
func Missing(t testing.TB, what, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI: %s", what, reason)
	}
	t.Skipf("%s is not available: %s", what, reason)
}

// RequireTool returns the path of the first of names that is an installed
// program, looked up as exec.LookPath does (a name with a slash is a path).
// When none is, it calls Missing with the first name.
func RequireTool(t testing.TB, names ...string) string {
	t.Helper()
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	Missing(t, names[0], "not installed (looked for "+strings.Join(names, ", ")+")")
	return ""
}

// Clock is a settable fake clock for the conformance suites, safe for
// concurrent use.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock at a fixed, arbitrary time.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Add moves the clock forward.
func (c *Clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
