// Package limitertest is the conformance suite every ratelimit.Limiter
// must pass: exactness under concurrency, rolling (not fixed) windows,
// refusals that do not count, the daily window over a fake clock, and
// requests that count against several keys at once, and a plan's monthly
// quota across the month's end.
package limitertest

import (
	"github.com/gatehouse/gatehouse/internal/testenv"

	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// Clock is the suites' settable fake clock.
type Clock = testenv.Clock

// NewClock returns a clock at a fixed, arbitrary time.
func NewClock() *Clock { return testenv.NewClock() }

// New makes a fresh limiter reading time from clock; keys must not collide
// with other tests' keys.
type New func(t *testing.T, clock func() time.Time) ratelimit.Limiter

func limits(burst int, bw time.Duration, daily int) ratelimit.Limits {
	return ratelimit.Limits{Burst: burst, BurstWindow: bw, Daily: daily, DailyWindow: 24 * time.Hour}
}

// account is the account of every key in the suite but one case's.
const account = "acc_test"

// allow runs one request of account against keys and fails the test on an
// error.
func allow(t *testing.T, l ratelimit.Limiter, lim ratelimit.Limits, keys ...string) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), account, keys, lim)
	if err != nil {
		t.Fatalf("allow %v: %v", keys, err)
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
				d := allow(t, l, lim, "concurrent")
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
			if allow(t, l, lim, "boundary").Allowed {
				admitted++
			}
		}
		clock.Add(100 * time.Millisecond) // past the boundary
		for i := 0; i < 10; i++ {
			if allow(t, l, lim, "boundary").Allowed {
				admitted++
			}
		}
		if admitted != 10 {
			t.Fatalf("%d admitted within 2 s, want 10", admitted)
		}
		// Exactly when the first ten leave the window, ten more fit.
		clock.Add(2*time.Second - 100*time.Millisecond)
		d := allow(t, l, lim, "boundary")
		if !d.Allowed || d.BurstRemaining != 9 {
			t.Fatalf("after the window: %+v", d)
		}
	})
	t.Run("retry after is when room appears", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(2, 10*time.Second, 50000)
		allow(t, l, lim, "retry")
		clock.Add(3 * time.Second)
		allow(t, l, lim, "retry")
		d := allow(t, l, lim, "retry")
		if d.Allowed || d.RetryAfter != 7*time.Second {
			t.Fatalf("decision %+v", d)
		}
		clock.Add(7*time.Second - time.Millisecond)
		if allow(t, l, lim, "retry").Allowed {
			t.Fatal("admitted before Retry-After")
		}
		clock.Add(time.Millisecond)
		if !allow(t, l, lim, "retry").Allowed {
			t.Fatal("refused at Retry-After")
		}
	})
	t.Run("refusals do not count", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(3, 10*time.Second, 50000)
		for i := 0; i < 3; i++ {
			allow(t, l, lim, "refused")
		}
		for i := 0; i < 50; i++ {
			if allow(t, l, lim, "refused").Allowed {
				t.Fatal("over the limit admitted")
			}
			clock.Add(100 * time.Millisecond)
		}
		// 5 s passed; the first three leave at 10 s; refusals added nothing.
		clock.Add(5 * time.Second)
		for i := 0; i < 3; i++ {
			if !allow(t, l, lim, "refused").Allowed {
				t.Fatalf("request %d refused after the window", i)
			}
		}
	})
	t.Run("daily window exact", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(1000, time.Second, 5)
		for i := 0; i < 5; i++ {
			d := allow(t, l, lim, "daily")
			if !d.Allowed || d.DailyRemaining != 4-i {
				t.Fatalf("request %d: %+v", i, d)
			}
			clock.Add(time.Hour)
		}
		d := allow(t, l, lim, "daily")
		if d.Allowed || d.DailyRemaining != 0 || d.RetryAfter <= 0 {
			t.Fatalf("sixth: %+v", d)
		}
		// No window of 24 h ever holds more than 5: step through two days.
		var times []time.Time
		for i := 0; i < 48*4; i++ {
			clock.Add(15 * time.Minute)
			if allow(t, l, lim, "daily").Allowed {
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
			if !allow(t, l, lim, fmt.Sprintf("key-%d", i)).Allowed {
				t.Fatalf("key %d refused", i)
			}
		}
	})
	t.Run("limits can change", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		for i := 0; i < 5; i++ {
			allow(t, l, limits(10, time.Minute, 100), "change")
		}
		if allow(t, l, limits(5, time.Minute, 100), "change").Allowed {
			t.Fatal("admitted over a lowered limit")
		}
		d := allow(t, l, limits(20, time.Minute, 100), "change")
		if !d.Allowed || d.BurstRemaining != 14 {
			t.Fatalf("raised limit: %+v", d)
		}
	})
	runMultiKey(t, newLimiter)
	runQuota(t, newLimiter)
}

// runMultiKey runs the cases of requests that count against several keys
// (a user and an API token acting as them): one budget per key, admitted
// only if every key has room, counted against every key or none.
func runMultiKey(t *testing.T, newLimiter New) {
	t.Run("plan budgets with their own limits are exact together", func(t *testing.T) {
		// 270 requests released together through three credentials of one
		// user: the user's burst is 100, the user's plan allows 40 a day,
		// one credential's plan 15 a burst; the third credential has no
		// plan. Each budget binds exactly whatever order the requests
		// arrive in, no budget is charged for a refusal, and the headers
		// show the binding limit.
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		user := gatehouse.PlanBudget{Key: "plan:user", Limits: gatehouse.RateLimitSettings{Daily: 40, Burst: 1000, BurstWindowSeconds: 20}}
		cred := gatehouse.PlanBudget{Key: "plan:cred", Limits: gatehouse.RateLimitSettings{Daily: 1000, Burst: 15, BurstWindowSeconds: 60}}
		withCred, userOnly := []gatehouse.PlanBudget{user, cred}, []gatehouse.PlanBudget{user}
		lims := []ratelimit.Limits{limits(100, 20*time.Second, 50000), limits(100, 20*time.Second, 50000), limits(100, 20*time.Second, 50000)}
		lims[0].Own, lims[1].Own = &withCred, &userOnly
		sent := []int{100, 100, 70}
		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			mu       sync.Mutex
			admitted = make([]int, 3)
		)
		for c, n := range sent {
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					d, err := l.Allow(context.Background(), account, []string{"user"}, lims[c])
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						t.Errorf("allow: %v", err)
					case d.Allowed:
						admitted[c]++
					case d.RetryAfter <= 0:
						t.Errorf("refused without a wait: %+v", d)
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		// The user's burst of 100 is spent exactly: 40 at most can pass
		// the user's plan and 70 are sent without one, so 110 ask for
		// 100. The plans bind below it whatever the order.
		underPlan := admitted[0] + admitted[1]
		if admitted[0] > 15 || underPlan > 40 || admitted[0]+admitted[1]+admitted[2] != 100 {
			t.Fatalf("admitted %v: want at most 15 through the credential, 40 under the user's plan, exactly 100 in all", admitted)
		}
		// Refusals charged nothing: the credential's budget holds exactly
		// what it admitted.
		clock.Add(61 * time.Second)
		d := allow(t, l, ratelimit.Limits{Burst: 1000, BurstWindow: time.Minute, Daily: 1000, DailyWindow: 24 * time.Hour}, "plan:cred")
		if !d.Allowed || d.DailyRemaining != 1000-admitted[0]-1 {
			t.Fatalf("the credential's budget after %d admitted: %+v", admitted[0], d)
		}
		// Nor the user's plan: exactly what is left of its 40 passes, one
		// at a time, and then the headers name its limit.
		for i := 0; i < 40-underPlan; i++ {
			if d := allow(t, l, lims[1], "user"); !d.Allowed {
				t.Fatalf("request %d of the %d left under the user's plan refused: %+v", i+1, 40-underPlan, d)
			}
		}
		d, err := l.Allow(context.Background(), account, []string{"user"}, lims[1])
		if err != nil || d.Allowed || d.DailyRemaining != 0 || d.Limits.Daily != 40 || d.RetryAfter <= 0 {
			t.Fatalf("over the user's plan: %+v %v", d, err)
		}
	})
	t.Run("shared budget is exact under concurrency", func(t *testing.T) {
		// A user's own token and two API tokens acting as them: 300
		// requests released together share the user's burst of 100.
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(100, 20*time.Second, 50000)
		credentials := [][]string{{"user"}, {"user", "token-1"}, {"token-2", "user"}}
		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			mu       sync.Mutex
			admitted = make([]int, len(credentials))
			seen     = map[int]int{}
		)
		for i := 0; i < 300; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := i % len(credentials)
				<-start
				d, err := l.Allow(context.Background(), account, credentials[c], lim)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("allow %v: %v", credentials[c], err)
				case d.Allowed:
					admitted[c]++
					seen[d.BurstRemaining]++
				case d.BurstRemaining != 0 || d.RetryAfter <= 0:
					t.Errorf("refused with remaining %d, retry %v", d.BurstRemaining, d.RetryAfter)
				}
			}()
		}
		close(start)
		wg.Wait()
		if total := admitted[0] + admitted[1] + admitted[2]; total != 100 {
			t.Fatalf("%d admitted in all (%v by credential), want 100", total, admitted)
		}
		for r := 0; r < 100; r++ {
			if seen[r] != 1 {
				t.Fatalf("remaining %d seen %d times", r, seen[r])
			}
		}
		if allow(t, l, lim, "user").Allowed {
			t.Fatal("the user admitted over their limit")
		}
		// Each API token's own budget was charged for what it was admitted,
		// and only for that.
		for i, tok := range []string{"token-1", "token-2"} {
			n := admitted[i+1]
			if d := allow(t, l, lim, tok); !d.Allowed || d.BurstRemaining != 100-n-1 || d.DailyRemaining != 50000-n-1 {
				t.Fatalf("%s, admitted %d times with the user: %+v", tok, n, d)
			}
		}
	})
	t.Run("a refusal by one key counts against none", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(3, 10*time.Second, 5)
		for i := 0; i < 3; i++ {
			allow(t, l, lim, "spent")
		}
		for i := 0; i < 20; i++ {
			d := allow(t, l, lim, "fresh", "spent")
			if d.Allowed || d.BurstRemaining != 0 || d.RetryAfter != 10*time.Second-time.Duration(i)*100*time.Millisecond {
				t.Fatalf("request %d with the spent key: %+v", i, d)
			}
			clock.Add(100 * time.Millisecond)
		}
		// The key with room was not charged for the refusals.
		if d := allow(t, l, lim, "fresh"); !d.Allowed || d.BurstRemaining != 2 || d.DailyRemaining != 4 {
			t.Fatalf("fresh after the refusals: %+v", d)
		}
		// Nor was the spent key: its daily window holds its own 3 only.
		clock.Add(8 * time.Second)
		d := allow(t, l, lim, "spent", "fresh")
		if !d.Allowed || d.BurstRemaining != 1 || d.DailyRemaining != 1 {
			t.Fatalf("both after the burst window: %+v", d)
		}
	})
	t.Run("tightest remaining and longest retry after", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(2, 10*time.Second, 100)
		// Admitted: the key with fewer left speaks for the window.
		allow(t, l, lim, "a")
		clock.Add(time.Second)
		d := allow(t, l, lim, "b", "a")
		if !d.Allowed || d.BurstRemaining != 0 || d.BurstReset != 9*time.Second || d.DailyRemaining != 98 {
			t.Fatalf("admitted: %+v", d)
		}
		// Refused by both: the later of their waits.
		clock.Add(9 * time.Second) // a's first leaves; b's leaves in 1 s
		allow(t, l, lim, "c")
		allow(t, l, lim, "c")
		clock.Add(3 * time.Second)
		allow(t, l, lim, "d")
		allow(t, l, lim, "d")
		clock.Add(time.Second)
		d = allow(t, l, lim, "c", "d")
		if d.Allowed || d.BurstRemaining != 0 || d.RetryAfter != 9*time.Second || d.BurstReset != 9*time.Second {
			t.Fatalf("refused by both: %+v", d)
		}
		clock.Add(6 * time.Second) // c has room again, d not yet
		if d = allow(t, l, lim, "c", "d"); d.Allowed || d.RetryAfter != 3*time.Second {
			t.Fatalf("refused by one: %+v", d)
		}
		clock.Add(3 * time.Second)
		if d = allow(t, l, lim, "c", "d"); !d.Allowed || d.BurstRemaining != 1 || d.DailyRemaining != 97 {
			t.Fatalf("after both waits: %+v", d)
		}
	})
	t.Run("a key's decisions are unchanged by keys with room", func(t *testing.T) {
		// The same requests, one key alone and one key with a new,
		// never-limiting companion each time: the same decisions.
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(10, 5*time.Second, 12)
		for i := 0; i < 30; i++ {
			alone := allow(t, l, lim, "alone")
			paired := allow(t, l, lim, "paired", fmt.Sprintf("companion-%d", i))
			if alone != paired {
				t.Fatalf("request %d: alone %+v, paired %+v", i, alone, paired)
			}
			clock.Add(700 * time.Millisecond)
		}
	})
	t.Run("a key alone or with others is one budget", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(9, time.Minute, 50000)
		ways := [][]string{{"user"}, {"user", "token-1"}, {"token-2", "user"}}
		for i := 0; i < 9; i++ {
			d := allow(t, l, lim, ways[i%3]...)
			if !d.Allowed || d.BurstRemaining != 8-i {
				t.Fatalf("request %d %v: %+v", i, ways[i%3], d)
			}
		}
		for _, w := range ways {
			if allow(t, l, lim, w...).Allowed {
				t.Fatalf("%v admitted over the user's limit", w)
			}
		}
	})
	t.Run("a repeated key counts once", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(10, time.Minute, 100)
		if d := allow(t, l, lim, "k", "k", "k"); !d.Allowed || d.BurstRemaining != 9 || d.DailyRemaining != 99 {
			t.Fatalf("repeated: %+v", d)
		}
		if d := allow(t, l, lim, "k"); d.BurstRemaining != 8 {
			t.Fatalf("after: %+v", d)
		}
	})
	t.Run("overlapping keys in any order never deadlock", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(1<<20, time.Minute, 1<<30)
		// Requests over overlapping keys in opposite orders, at once; a
		// limiter that locks per key in the order given deadlocks here.
		orders := [][]string{{"p", "q"}, {"q", "p"}, {"q", "r", "s"}, {"s", "r", "p"}, {"r", "q"}}
		const rounds = 100
		var wg sync.WaitGroup
		for _, keys := range orders {
			for g := 0; g < 2; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < rounds; i++ {
						if _, err := l.Allow(context.Background(), account, keys, lim); err != nil {
							t.Errorf("allow %v: %v", keys, err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		// Every key was charged once per request it was in.
		want := map[string]int{}
		for _, keys := range orders {
			for _, k := range keys {
				want[k] += 2 * rounds
			}
		}
		for k, n := range want {
			if d := allow(t, l, lim, k); d.BurstRemaining != lim.Burst-n-1 {
				t.Errorf("%s: remaining %d after %d requests, want %d", k, d.BurstRemaining, n, lim.Burst-n-1)
			}
		}
	})
	t.Run("keys are per account", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(1, time.Minute, 10)
		allow(t, l, lim, "k")
		d, err := l.Allow(context.Background(), "acc_other", []string{"k"}, lim)
		if err != nil || !d.Allowed {
			t.Fatalf("the same key in another account: %+v, %v", d, err)
		}
	})
	t.Run("a request needs an account and a key", func(t *testing.T) {
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		lim := limits(1, time.Minute, 10)
		if _, err := l.Allow(context.Background(), account, nil, lim); err == nil {
			t.Error("no keys: no error")
		}
		if _, err := l.Allow(context.Background(), "", []string{"k"}, lim); err == nil {
			t.Error("no account: no error")
		}
	})
}
