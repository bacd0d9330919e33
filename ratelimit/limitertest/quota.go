package limitertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// runQuota runs the cases of a plan's quota (SPEC §10.5): a period is
// named by the caller's clock (ratelimit.ForPrincipal), so that a new
// month's budget starts from nothing at its first instant.
func runQuota(t *testing.T, newLimiter New) {
	t.Run("a monthly quota rolls over at the month's first instant", func(t *testing.T) {
		// 20 requests released together in January's last minute against
		// a quota of 5: exactly 5 admitted, each remaining count seen
		// once, the rest refused until February's first instant (not a
		// nanosecond before) and charged nothing; February admits 5 again,
		// then waits 28 days.
		clock := NewClock()
		l := newLimiter(t, clock.Now)
		start := time.Date(2027, 1, 31, 23, 59, 0, 0, time.UTC)
		set := func(at time.Time) { clock.Add(at.Sub(clock.Now())) }
		set(start)
		settings := gatehouse.DefaultSettings()
		p := &gatehouse.Principal{Account: &gatehouse.Account{ID: account, Settings: settings}, AccountID: account,
			PlanBudgets: []gatehouse.PlanBudget{{Key: "quota:month", Quota: &gatehouse.Quota{Limit: 5, Period: gatehouse.QuotaMonth}}}}
		request := func() (ratelimit.Decision, error) {
			return l.Allow(context.Background(), account, []string{"user:q"}, ratelimit.ForPrincipal(p, clock.Now()))
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			start20  = make(chan struct{})
			admitted int
			seen     = map[int]int{}
		)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start20
				d, err := request()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("allow: %v", err)
				case d.Allowed:
					admitted++
					seen[d.Quota.Remaining]++
					if d.Quota.Limit != 5 || d.Quota.Exceeded {
						t.Errorf("admitted: %+v", d.Quota)
					}
				case !d.Quota.Exceeded || d.Quota.Remaining != 0 || d.RetryAfter != time.Minute:
					t.Errorf("over the quota: %+v, retry after %v (want the minute to February)", d.Quota, d.RetryAfter)
				}
			}()
		}
		close(start20)
		wg.Wait()
		if admitted != 5 {
			t.Fatalf("January: %d admitted, want 5", admitted)
		}
		for r := range 5 {
			if seen[r] != 1 {
				t.Fatalf("January: remaining %d seen %d times: %v", r, seen[r], seen)
			}
		}
		allow := func() ratelimit.Decision {
			t.Helper()
			d, err := request()
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		set(start.Add(time.Minute - time.Nanosecond))
		if d := allow(); d.Allowed || !d.Quota.Exceeded {
			t.Fatalf("admitted in January's last instant: %+v", d)
		}
		set(start.Add(time.Minute))
		for i := range 5 {
			if d := allow(); !d.Allowed || d.Quota.Remaining != 4-i || d.Quota.Exceeded {
				t.Fatalf("February, request %d: %+v", i, d)
			}
		}
		if d := allow(); d.Allowed || !d.Quota.Exceeded || d.RetryAfter != 28*24*time.Hour {
			t.Fatalf("over February's quota: %+v, retry after %v", d.Quota, d.RetryAfter)
		}
		// The account's own budget was charged for the ten admitted only
		// (this request is the eleventh).
		d, err := l.Allow(context.Background(), account, []string{"user:q"}, ratelimit.FromSettings(settings.RateLimit))
		if err != nil || d.DailyRemaining != settings.RateLimit.Daily-11 {
			t.Fatalf("the account's day after 10 admitted: remaining %d (want %d), %v", d.DailyRemaining, settings.RateLimit.Daily-11, err)
		}
	})
}
