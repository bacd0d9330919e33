package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/ratelimit/limitertest"
)

// TestQuotaAcrossPeriods: a monthly quota admits exactly its limit in a
// month, refuses the rest with quota_exceeded's wait until the month ends
// (charging nothing), and starts again from nothing at the first instant
// of the next month (UTC) — not a second before; a daily one the same at
// midnight.
func TestQuotaAcrossPeriods(t *testing.T) {
	clock := limitertest.NewClock()
	set := func(at time.Time) { clock.Add(at.Sub(clock.Now())) }
	m := ratelimit.NewMemory(ratelimit.WithClock(clock.Now), ratelimit.WithSweep(0))
	p := &gatehouse.Principal{Account: &gatehouse.Account{ID: "acc", Settings: gatehouse.DefaultSettings()}, AccountID: "acc",
		PlanBudgets: []gatehouse.PlanBudget{
			{Key: "quota:month", Quota: &gatehouse.Quota{Limit: 5, Period: gatehouse.QuotaMonth}},
		}}
	start := time.Date(2027, 1, 31, 23, 59, 0, 0, time.UTC)
	set(start)
	allow := func() ratelimit.Decision {
		t.Helper()
		d, err := m.Allow(context.Background(), "acc", []string{"user:u"}, ratelimit.ForPrincipal(p, clock.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := range 5 {
		if d := allow(); !d.Allowed || d.Quota.Remaining != 4-i || d.Quota.Limit != 5 || d.Quota.Exceeded {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	for range 3 {
		d := allow()
		if d.Allowed || !d.Quota.Exceeded || d.Quota.Remaining != 0 || d.RetryAfter != time.Minute {
			t.Fatalf("over the quota: %+v", d)
		}
	}
	set(start.Add(time.Minute - time.Nanosecond))
	if d := allow(); d.Allowed {
		t.Fatalf("admitted in the last instant of the month: %+v", d)
	}
	set(start.Add(time.Minute))
	for i := range 5 {
		if d := allow(); !d.Allowed || d.Quota.Remaining != 4-i {
			t.Fatalf("February, request %d: %+v", i, d)
		}
	}
	if d := allow(); d.Allowed || d.RetryAfter != 28*24*time.Hour {
		t.Fatalf("over February's quota: %+v", d)
	}
	// The account's budget was charged for the ten admitted only.
	d, _ := m.Allow(context.Background(), "acc", []string{"user:u"}, ratelimit.FromSettings(gatehouse.DefaultSettings().RateLimit))
	if want := gatehouse.DefaultSettings().RateLimit.Daily - 11; d.DailyRemaining != want {
		t.Fatalf("account budget remaining %d, want %d", d.DailyRemaining, want)
	}

	// A daily quota ends at midnight.
	q := gatehouse.Quota{Limit: 1, Period: gatehouse.QuotaDay}
	name, end := q.Current(time.Date(2027, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 5*3600)))
	if name != "2027-03-01" || !end.Equal(time.Date(2027, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("daily period %s until %v", name, end)
	}
}
