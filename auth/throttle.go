package auth

import (
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Throttle slows down password guessing (SPEC §3.4): after too many
// failures for one username or from one client address within a window,
// further attempts are refused with too_many_attempts and a Retry-After
// until the oldest failure leaves the window. The zero value is not usable;
// use NewThrottle. It is safe for concurrent use.
type Throttle struct {
	mu         sync.Mutex
	now        func() time.Time
	window     time.Duration
	perUser    int
	perAddress int
	failures   map[string][]time.Time
	sweptAt    time.Time
}

// NewThrottle returns a Throttle allowing perUser failures per username
// and perAddress failures per address within window.
func NewThrottle(perUser, perAddress int, window time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{now: now, window: window, perUser: perUser, perAddress: perAddress, failures: map[string][]time.Time{}}
}

// DefaultThrottle allows 5 failures per username and 20 per address in 5
// minutes.
func DefaultThrottle() *Throttle { return NewThrottle(5, 20, 5*time.Minute, nil) }

func userKey(username string) string { return "u:" + username }
func addrKey(addr string) string     { return "a:" + addr }

// recent drops failures older than the window and returns the rest.
func (t *Throttle) recent(key string, now time.Time) []time.Time {
	fs := t.failures[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= t.window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(t.failures, key)
		return nil
	}
	t.failures[key] = fs
	return fs
}

// Check returns too_many_attempts if username or addr has used up its
// failures; username should be normalised (lower case).
func (t *Throttle) Check(username, addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.sweep(now)
	for _, k := range []struct {
		key string
		max int
	}{{userKey(username), t.perUser}, {addrKey(addr), t.perAddress}} {
		if fs := t.recent(k.key, now); len(fs) >= k.max {
			wait := fs[len(fs)-k.max].Add(t.window).Sub(now)
			return &gatehouse.Error{Code: gatehouse.ETooManyAttempts, Message: "Too many failed attempts; try again later", RetryAfter: wait}
		}
	}
	return nil
}

// Fail records one failed attempt for username and addr.
func (t *Throttle) Fail(username, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, k := range []string{userKey(username), addrKey(addr)} {
		t.failures[k] = append(t.recent(k, now), now)
	}
}

// Succeed clears the failures of username after a successful attempt.
func (t *Throttle) Succeed(username string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failures, userKey(username))
}

// sweep drops expired entries once per window so memory stays bounded.
func (t *Throttle) sweep(now time.Time) {
	if now.Sub(t.sweptAt) < t.window {
		return
	}
	t.sweptAt = now
	for k := range t.failures {
		t.recent(k, now)
	}
}
