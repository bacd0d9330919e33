package ratelimit_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/ratelimit/limitertest"
)

func TestMemory(t *testing.T) {
	limitertest.Run(t, func(t *testing.T, clock func() time.Time) ratelimit.Limiter {
		m := ratelimit.NewMemory(ratelimit.WithClock(clock), ratelimit.WithSweep(0))
		t.Cleanup(func() { m.Close() })
		return m
	})
}

func TestEviction(t *testing.T) {
	clock := limitertest.NewClock()
	m := ratelimit.NewMemory(ratelimit.WithClock(clock.Now), ratelimit.WithSweep(0))
	defer m.Close()
	lim := ratelimit.Limits{Burst: 10, BurstWindow: 20 * time.Second, Daily: 100, DailyWindow: 24 * time.Hour}
	for i := 0; i < 1000; i++ {
		m.Allow(t.Context(), "acc_1", []string{fmt.Sprint(i)}, lim)
	}
	clock.Add(time.Hour)
	m.Sweep()
	if m.Len() != 1000 {
		t.Fatalf("%d principals after an hour; the daily window still counts them", m.Len())
	}
	clock.Add(24 * time.Hour)
	m.Sweep()
	if m.Len() != 0 {
		t.Fatalf("%d principals left after a day", m.Len())
	}
}

// TestMemoryLifecycle: NewMemory starts nothing, the first Allow starts
// the sweep, and Close stops it whenever it is called, as often as it is.
func TestMemoryLifecycle(t *testing.T) {
	lim := ratelimit.Limits{Burst: 10, BurstWindow: time.Second, Daily: 100, DailyWindow: time.Hour}
	t.Run("constructed, never used", func(t *testing.T) {
		before := runtime.NumGoroutine()
		m := ratelimit.NewMemory()
		if n := runtime.NumGoroutine(); n > before {
			t.Fatalf("NewMemory started %d goroutines", n-before)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the sweep runs after the first Allow", func(t *testing.T) {
		clock := limitertest.NewClock()
		m := ratelimit.NewMemory(ratelimit.WithClock(clock.Now), ratelimit.WithSweep(time.Millisecond))
		defer m.Close()
		if _, err := m.Allow(t.Context(), "acc_1", []string{"k"}, lim); err != nil {
			t.Fatal(err)
		}
		clock.Add(48 * time.Hour)
		for deadline := time.Now().Add(10 * time.Second); m.Len() != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the idle principal was never swept")
			}
		}
	})
	t.Run("used after Close", func(t *testing.T) {
		m := ratelimit.NewMemory(ratelimit.WithSweep(time.Millisecond))
		m.Allow(t.Context(), "acc_1", []string{"k"}, lim)
		m.Close()
		before := runtime.NumGoroutine()
		if d, err := m.Allow(t.Context(), "acc_1", []string{"k"}, lim); err != nil || !d.Allowed || d.BurstRemaining != 8 {
			t.Fatalf("after Close: %+v, %v", d, err)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Fatalf("Allow after Close started %d goroutines", n-before)
		}
		m.Close()
	})
}

func TestHeaders(t *testing.T) {
	lim := ratelimit.Limits{Burst: 100, BurstWindow: 20 * time.Second, Daily: 50000, DailyWindow: 24 * time.Hour}
	cases := []struct {
		name string
		d    ratelimit.Decision
		want map[string]string
	}{
		{"burst nearer", ratelimit.Decision{Allowed: true, Limits: lim, BurstRemaining: 57, DailyRemaining: 49000,
			BurstReset: 11500 * time.Millisecond, DailyReset: time.Hour},
			map[string]string{"X-RateLimit-Burst-Remaining": "57", "X-RateLimit-Daily-Remaining": "49000",
				"RateLimit-Policy": `"burst";q=100;w=20, "daily";q=50000;w=86400`, "RateLimit": `"burst";r=57;t=12`, "Retry-After": ""}},
		{"daily nearer", ratelimit.Decision{Allowed: true, Limits: lim, BurstRemaining: 90, DailyRemaining: 10,
			BurstReset: time.Second, DailyReset: 90 * time.Second},
			map[string]string{"RateLimit": `"daily";r=10;t=90`}},
		{"refused", ratelimit.Decision{Limits: lim, RetryAfter: 2100 * time.Millisecond, BurstReset: 3 * time.Second},
			map[string]string{"X-RateLimit-Burst-Remaining": "0", "RateLimit": `"burst";r=0;t=3`, "Retry-After": "3"}},
		{"refused, tiny wait", ratelimit.Decision{Limits: lim, RetryAfter: time.Millisecond}, map[string]string{"Retry-After": "1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			c.d.SetHeaders(h, ratelimit.DefaultHeaderNames())
			for k, v := range c.want {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
		})
	}
}

// TestHeadersNearestWindow: RateLimit names the window with the smallest
// share of its limit left — the burst, the daily window or the quota —
// with that window's reset (a quota's: the end of its period), and
// RateLimit-Policy names the quota beside the two windows.
func TestHeadersNearestWindow(t *testing.T) {
	lim := ratelimit.Limits{Burst: 100, BurstWindow: 20 * time.Second, Daily: 50000, DailyWindow: 24 * time.Hour}
	quota := func(limit, remaining int, reset time.Duration, exceeded bool) ratelimit.QuotaDecision {
		return ratelimit.QuotaDecision{Set: true, Limit: limit, Remaining: remaining, Reset: reset, Exceeded: exceeded}
	}
	cases := []struct {
		name        string
		d           ratelimit.Decision
		rateLimit   string
		retryAfter  string
		quotaHeader string
	}{
		{"burst, no quota", ratelimit.Decision{Allowed: true, Limits: lim, BurstRemaining: 97, DailyRemaining: 49997, BurstReset: 20 * time.Second, DailyReset: time.Hour},
			`"burst";r=97;t=20`, "", ""},
		{"burst ties daily", ratelimit.Decision{Allowed: true, Limits: lim, BurstRemaining: 50, DailyRemaining: 25000, BurstReset: time.Second, DailyReset: time.Hour},
			`"burst";r=50;t=1`, "", ""},
		{"daily, no quota", ratelimit.Decision{Allowed: true, Limits: lim, BurstRemaining: 90, DailyRemaining: 10, BurstReset: time.Second, DailyReset: 90 * time.Second},
			`"daily";r=10;t=90`, "", ""},
		{"quota nearest", ratelimit.Decision{Allowed: true, Limits: lim, BurstRemaining: 98, DailyRemaining: 49998, BurstReset: 20 * time.Second, DailyReset: time.Hour,
			Quota: quota(3, 1, 1000*time.Second, false)},
			`"quota";r=1;t=1000`, "", "1"},
		{"quota used up", ratelimit.Decision{Limits: lim, BurstRemaining: 97, DailyRemaining: 49997, BurstReset: 20 * time.Second, DailyReset: time.Hour,
			RetryAfter: 82328 * time.Second, Quota: quota(3, 0, 82328*time.Second, true)},
			`"quota";r=0;t=82328`, "82328", "0"},
		{"quota and burst used up", ratelimit.Decision{Limits: lim, BurstRemaining: 0, DailyRemaining: 49900, BurstReset: 5 * time.Second, DailyReset: time.Hour,
			RetryAfter: 3600 * time.Second, Quota: quota(1000, 0, 3600*time.Second, true)},
			`"quota";r=0;t=3600`, "3600", "0"},
		{"burst nearer than quota", ratelimit.Decision{Limits: lim, BurstRemaining: 0, DailyRemaining: 49900, BurstReset: 5 * time.Second, DailyReset: time.Hour,
			RetryAfter: 5 * time.Second, Quota: quota(1000, 400, 3600*time.Second, false)},
			`"burst";r=0;t=5`, "5", "400"},
		{"daily nearer than quota", ratelimit.Decision{Allowed: true, Limits: lim, BurstRemaining: 99, DailyRemaining: 100, BurstReset: time.Second, DailyReset: 90 * time.Second,
			Quota: quota(1000, 500, 3600*time.Second, false)},
			`"daily";r=100;t=90`, "", "500"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			c.d.SetHeaders(h, ratelimit.DefaultHeaderNames())
			if got := h.Values("RateLimit"); len(got) != 1 || got[0] != c.rateLimit {
				t.Errorf("RateLimit = %q, want %q", got, c.rateLimit)
			}
			if got := h.Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, c.retryAfter)
			}
			if got := h.Get("X-RateLimit-Quota-Remaining"); got != c.quotaHeader {
				t.Errorf("X-RateLimit-Quota-Remaining = %q, want %q", got, c.quotaHeader)
			}
			policy := h.Get("RateLimit-Policy")
			if want := c.quotaHeader != ""; strings.Contains(policy, `"quota";q=`) != want {
				t.Errorf("RateLimit-Policy %q (a quota: %v)", policy, want)
			}
		})
	}
}

// TestHeaderNamesStrip: Strip removes every header SetHeaders writes on
// an admitted request, under the configured names and in any case, and
// leaves Retry-After and the rest alone.
func TestHeaderNamesStrip(t *testing.T) {
	names := ratelimit.HeaderNames{BurstRemaining: "x-burst-left", DailyRemaining: "X-Day-Left"}
	h := http.Header{}
	ratelimit.Decision{Allowed: true, Limits: ratelimit.Limits{Burst: 10, BurstWindow: time.Second, Daily: 100, DailyWindow: 24 * time.Hour},
		Quota: ratelimit.QuotaDecision{Set: true, Limit: 5, Remaining: 4, Reset: time.Hour}}.SetHeaders(h, names)
	written := len(h)
	if written != 5 {
		t.Fatalf("SetHeaders wrote %d headers: %v", written, h)
	}
	h.Set("Retry-After", "7")
	h.Set("Content-Type", "application/json")
	names.Strip(h)
	if len(h) != 2 || h.Get("Retry-After") != "7" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("after Strip: %v", h)
	}
}

var sink ratelimit.Decision

// unlimited are limits no benchmark reaches.
var unlimited = ratelimit.Limits{Burst: 1 << 30, BurstWindow: 20 * time.Second, Daily: 1 << 30, DailyWindow: 24 * time.Hour}

// benchAccount is the account of every benchmark's keys.
const benchAccount = "acc_bench"

// principalKeys returns the keys of n distinct requests: a user each, and
// with actingAs also an API token acting as them.
func principalKeys(n int, actingAs bool) [][]string {
	keys := make([][]string, n)
	for i := range keys {
		keys[i] = []string{fmt.Sprintf("user:%d", i)}
		if actingAs {
			keys[i] = append(keys[i], fmt.Sprintf("apitoken:%d", i))
		}
	}
	return keys
}

func BenchmarkAllow(b *testing.B) {
	m := ratelimit.NewMemory(ratelimit.WithSweep(0))
	defer m.Close()
	keys := principalKeys(1024, false)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink, _ = m.Allow(b.Context(), benchAccount, keys[i%len(keys)], unlimited)
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	m := ratelimit.NewMemory(ratelimit.WithSweep(0))
	defer m.Close()
	keys := principalKeys(4096, false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Allow(b.Context(), benchAccount, keys[i%len(keys)], unlimited)
			i += 7
		}
	})
}

// BenchmarkAllowActingAs measures requests of API tokens acting as users:
// two keys each.
func BenchmarkAllowActingAs(b *testing.B) {
	m := ratelimit.NewMemory(ratelimit.WithSweep(0))
	defer m.Close()
	keys := principalKeys(1024, true)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink, _ = m.Allow(b.Context(), benchAccount, keys[i%len(keys)], unlimited)
	}
}

// BenchmarkMemoryPerPrincipal reports the heap held per active principal
// with the default limits, each having made a few requests.
func BenchmarkMemoryPerPrincipal(b *testing.B) {
	const n = 100_000
	lim := ratelimit.Limits{Burst: 100, BurstWindow: 20 * time.Second, Daily: 50000, DailyWindow: 24 * time.Hour}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := ratelimit.NewMemory(ratelimit.WithSweep(0))
		for i := 0; i < n; i++ {
			key := []string{fmt.Sprintf("user:%d", i)} // the limiter keeps its keys: they count
			for j := 0; j < 3; j++ {
				m.Allow(b.Context(), benchAccount, key, lim)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/principal")
		runtime.KeepAlive(m)
		m.Close()
	}
}
