package cluster_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/ratelimit/limitertest"
)

// storeCounts stands in for the store's quota counts: what it says the
// cluster counted, and how often it was asked.
type storeCounts struct {
	n     atomic.Int64
	reads atomic.Int64
	down  atomic.Bool // the store cannot be read
}

func (c *storeCounts) QuotaUsed(context.Context, string, string) (int, error) {
	c.reads.Add(1)
	if c.down.Load() {
		return 0, errors.New("store down")
	}
	return int(c.n.Load()), nil
}

// TestLimiterSeeded runs the limiter conformance suite with quota budgets
// seeded from a store that counted nothing: seeding changes no decision.
func TestLimiterSeeded(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		limitertest.Run(t, func(t *testing.T, clock func() time.Time) ratelimit.Limiter {
			r := cluster.NewRedis(b.Client, redistest.Prefix(t, b.Client), ratelimit.WithRedisClock(clock))
			r.SeedQuotasFrom(&storeCounts{})
			return limiter{r}
		})
	})
}

// TestQuotaSeededAfterLoss: a quota budget Redis does not hold — its
// period is new, or Redis lost its data — counts on from what the store
// counted, read once when the budget is first met, not from nothing; a
// loss while requests are released together over many goroutines admits
// exactly what is left, whichever of them seeds it.
func TestQuotaSeededAfterLoss(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		c := b.Client
		ctx := context.Background()
		pfx := redistest.Prefix(t, c)
		r := cluster.NewRedis(c, pfx)
		counts := &storeCounts{}
		r.SeedQuotasFrom(counts)
		p := &gatehouse.Principal{Account: &gatehouse.Account{ID: "acc_q", Settings: gatehouse.DefaultSettings()}, AccountID: "acc_q",
			PlanBudgets: []gatehouse.PlanBudget{{Key: "quota:cred_1", Quota: &gatehouse.Quota{Limit: 10, Period: gatehouse.QuotaMonth}}}}
		admit := func() ratelimit.Decision {
			t.Helper()
			d, _, ok, err := r.Admit(ctx, nil, "", p.AccountID, []string{"credential:cred_1"}, ratelimit.ForPrincipal(p, time.Now()))
			if err != nil || !ok {
				t.Fatalf("admit: %v (decided %v)", err, ok)
			}
			return d
		}
		lose := func() {
			t.Helper()
			for _, n := range c.Nodes() {
				keys, err := n.Do(ctx, n.B().Keys().Pattern(pfx+"*").Build()).AsStrSlice()
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if err := n.Do(ctx, n.B().Del().Key(k).Build()).Error(); err != nil {
						t.Fatal(err)
					}
				}
			}
		}

		// While the store cannot be read, a budget that needs its seed is
		// not decided on a guess: an error (503 to the client), nothing
		// counted.
		counts.down.Store(true)
		if _, _, _, err := r.Admit(ctx, nil, "", p.AccountID, []string{"credential:cred_1"}, ratelimit.ForPrincipal(p, time.Now())); err == nil {
			t.Fatal("admitted with the store down and the quota not held")
		}
		counts.down.Store(false)
		counts.reads.Store(0)

		// The store counted 7 of the month's 10 before Redis held it.
		counts.n.Store(7)
		for i := range 3 {
			if d := admit(); !d.Allowed || d.Quota.Remaining != 2-i {
				t.Fatalf("request %d: %+v", i, d)
			}
		}
		if d := admit(); d.Allowed || !d.Quota.Exceeded {
			t.Fatalf("past the seeded quota: %+v", d)
		}
		if got := counts.reads.Load(); got != 1 {
			t.Fatalf("store read %d times, want once (when the budget was first met)", got)
		}

		// Redis loses everything; the store has 4 by then. Twenty
		// requests released together: exactly 6 admitted.
		lose()
		counts.n.Store(4)
		var wg sync.WaitGroup
		var admitted, exceeded atomic.Int64
		start := make(chan struct{})
		for range 20 {
			wg.Go(func() {
				<-start
				d, _, ok, err := r.Admit(ctx, nil, "", p.AccountID, []string{"credential:cred_1"}, ratelimit.ForPrincipal(p, time.Now()))
				switch {
				case err != nil || !ok:
					t.Errorf("admit: %v (decided %v)", err, ok)
				case d.Allowed:
					admitted.Add(1)
				case d.Quota.Exceeded:
					exceeded.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if admitted.Load() != 6 || exceeded.Load() != 14 {
			t.Fatalf("after the loss: %d admitted, %d over the quota; want 6 and 14", admitted.Load(), exceeded.Load())
		}
		// Held again: a store that now says otherwise is not asked.
		reads := counts.reads.Load()
		counts.n.Store(0)
		if d := admit(); d.Allowed {
			t.Fatalf("admitted after the seeded budget was used up: %+v", d)
		}
		if counts.reads.Load() != reads {
			t.Fatal("the store was read for a budget Redis holds")
		}
	})
}
