// Package limitertest is the conformance suite every ratelimit.Limiter
// must pass: exactness under concurrency, rolling (not fixed) windows,
// refusals that do not count, and the daily window over a fake clock.
package limitertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/ratelimit"
)

// Clock is a settable fake clock, safe for concurrent use.
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

// New makes a fresh limiter reading time from clock; keys must not collide
// with other tests' keys.
type New func(t *testing.T, clock func() time.Time) ratelimit.Limiter

func limits(burst int, bw time.Duration, daily int) ratelimit.Limits {
	return ratelimit.Limits{Burst: burst, BurstWindow: bw, Daily: daily, DailyWindow: 24 * time.Hour}
}

func allow(t *testing.T, l ratelimit.Limiter, key string, lim ratelimit.Limits) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key, lim)
	if err != nil {
		t.Fatalf("allow: %v", err)
	}
	return d
}

// Run runs the suite.
func Run(t *testing.T, newLimiter New) {
	t.Run("concurrent burst is exact", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(100, 20*time.Second, 50000)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			allowed int
			seen    = map[int]int{}
		)
		for i := 0; i < 150; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := allow(t, l, "concurrent", lim)
				mu.Lock()
				defer mu.Unlock()
				if d.Allowed {
					allowed++
					seen[d.BurstRemaining]++
				} else if d.BurstRemaining != 0 || d.RetryAfter <= 0 {
					t.Errorf("refused with remaining %d, retry %v", d.BurstRemaining, d.RetryAfter)
				}
			}()
		}
		wg.Wait()
		if allowed != 100 {
			t.Fatalf("%d admitted, want 100", allowed)
		}
		for r := 0; r < 100; r++ {
			if seen[r] != 1 {
				t.Fatalf("remaining %d seen %d times", r, seen[r])
			}
		}
	})
	t.Run("rolling window across a boundary", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(10, 2*time.Second, 50000)
		// Align just before a 2-second boundary, as a fixed window would.
		clock.Add(2*time.Second - time.Duration(clock.Now().UnixNano()%int64(2*time.Second)) - 50*time.Millisecond)
		admitted := 0
		for i := 0; i < 10; i++ {
			if allow(t, l, "boundary", lim).Allowed {
				admitted++
			}
		}
		clock.Add(100 * time.Millisecond) // past the boundary
		for i := 0; i < 10; i++ {
			if allow(t, l, "boundary", lim).Allowed {
				admitted++
			}
		}
		if admitted != 10 {
			t.Fatalf("%d admitted within 2 s, want 10", admitted)
		}
		// Exactly when the first ten leave the window, ten more fit.
		clock.Add(2*time.Second - 100*time.Millisecond)
		d := allow(t, l, "boundary", lim)
		if !d.Allowed || d.BurstRemaining != 9 {
			t.Fatalf("after the window: %+v", d)
		}
	})
	t.Run("retry after is when room appears", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(2, 10*time.Second, 50000)
		allow(t, l, "retry", lim)
		clock.Add(3 * time.Second)
		allow(t, l, "retry", lim)
		d := allow(t, l, "retry", lim)
		if d.Allowed || d.RetryAfter != 7*time.Second {
			t.Fatalf("decision %+v", d)
		}
		clock.Add(7*time.Second - time.Millisecond)
		if allow(t, l, "retry", lim).Allowed {
			t.Fatal("admitted before Retry-After")
		}
		clock.Add(time.Millisecond)
		if !allow(t, l, "retry", lim).Allowed {
			t.Fatal("refused at Retry-After")
		}
	})
	t.Run("refusals do not count", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(3, 10*time.Second, 50000)
		for i := 0; i < 3; i++ {
			allow(t, l, "refused", lim)
		}
		for i := 0; i < 50; i++ {
			if allow(t, l, "refused", lim).Allowed {
				t.Fatal("over the limit admitted")
			}
			clock.Add(100 * time.Millisecond)
		}
		// 5 s passed; the first three leave at 10 s; refusals added nothing.
		clock.Add(5 * time.Second)
		for i := 0; i < 3; i++ {
			if !allow(t, l, "refused", lim).Allowed {
				t.Fatalf("request %d refused after the window", i)
			}
		}
	})
	t.Run("daily window exact", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(1000, time.Second, 5)
		for i := 0; i < 5; i++ {
			d := allow(t, l, "daily", lim)
			if !d.Allowed || d.DailyRemaining != 4-i {
				t.Fatalf("request %d: %+v", i, d)
			}
			clock.Add(time.Hour)
		}
		d := allow(t, l, "daily", lim)
		if d.Allowed || d.DailyRemaining != 0 || d.RetryAfter <= 0 {
			t.Fatalf("sixth: %+v", d)
		}
		// No window of 24 h ever holds more than 5: step through two days.
		var times []time.Time
		for i := 0; i < 48*4; i++ {
			clock.Add(15 * time.Minute)
			if allow(t, l, "daily", lim).Allowed {
				times = append(times, clock.Now())
			}
		}
		for i := range times {
			n := 0
			for j := i; j < len(times) && times[j].Sub(times[i]) < 24*time.Hour; j++ {
				n++
			}
			if n > 5 {
				t.Fatalf("%d admitted within 24 h from %v", n, times[i])
			}
		}
		if len(times) < 5 {
			t.Fatalf("only %d admitted in two days", len(times))
		}
	})
	t.Run("keys are independent", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(1, time.Minute, 10)
		for i := 0; i < 20; i++ {
			if !allow(t, l, fmt.Sprintf("key-%d", i), lim).Allowed {
				t.Fatalf("key %d refused", i)
			}
		}
	})
	t.Run("limits can change", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		for i := 0; i < 5; i++ {
			allow(t, l, "change", limits(10, time.Minute, 100))
		}
		if allow(t, l, "change", limits(5, time.Minute, 100)).Allowed {
			t.Fatal("admitted over a lowered limit")
		}
		d := allow(t, l, "change", limits(20, time.Minute, 100))
		if !d.Allowed || d.BurstRemaining != 14 {
			t.Fatalf("raised limit: %+v", d)
		}
	})
}
