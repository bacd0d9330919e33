package prune_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/prune"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
)

// TestPruneUsageOverDays: usage is counted for nine days, from March
// into April (UTC), through a client credential and an API token, and
// pruned every day under a retention of three days, two rows a batch.
// Each day the stored counts are exactly those of the days within the
// retention, each day's exactly as recorded (two flushes a day add up),
// and the days before are gone; another account's counts are pruned
// alike. A monthly quota's count stays while the retention's cutoff is
// in its month and goes once the cutoff is in the next.
func TestPruneUsageOverDays(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			start := time.Date(2027, 3, 28, 0, 0, 0, 0, time.UTC)
			c := &clock{t: start}
			const retention = 3 * 24 * time.Hour
			p := prune.New(prune.Config{Store: st, Retention: retention, Batch: 2, Interval: time.Minute, Now: c.now})
			ann := &gatehouse.User{ID: "usr_ann"}
			cc := &gatehouse.Principal{AccountID: "acc", User: ann, Method: gatehouse.MethodClientCredentials, ClientID: "gci_1", CredentialID: "tok_1"}
			tok := &gatehouse.Principal{AccountID: "acc", Method: gatehouse.MethodAPIToken, CredentialID: "atk_1"}
			other := &gatehouse.Principal{AccountID: "acc_other", Method: gatehouse.MethodAPIToken, CredentialID: "atk_2"}
			// What day i recorded, per credential.
			want := func(i int) map[string]store.UsageCounts {
				return map[string]store.UsageCounts{
					"gci_1": {Served: int64(i + 1), Unauthorized: int64(i % 2)},
					"atk_1": {Served: int64(10 * (i + 1)), Forbidden: 1, Limited: int64(i)},
				}
			}
			usage := service.NewUsage()
			record := func(p *gatehouse.Principal, o service.Outcome, n int64, at time.Time) {
				for range n {
					usage.Record(p, o, at)
				}
			}
			for i := range 9 {
				day := start.AddDate(0, 0, i)
				w := want(i)
				// Half the day's requests just after midnight, flushed; the
				// rest just before the next, flushed again.
				for j, at := range []time.Time{day.Add(time.Second), day.Add(24*time.Hour - time.Second)} {
					c.add(at.Sub(c.now()))
					half := func(n int64) int64 { return n/2 + int64(j)*(n%2) }
					record(cc, service.Served, half(w["gci_1"].Served), at)
					record(cc, service.Unauthorized, half(w["gci_1"].Unauthorized), at)
					record(tok, service.Served, half(w["atk_1"].Served), at)
					record(tok, service.Forbidden, half(w["atk_1"].Forbidden), at)
					record(tok, service.Limited, half(w["atk_1"].Limited), at)
					record(other, service.Served, 1, at)
					if err := usage.Flush(ctx, st); err != nil {
						t.Fatal(err)
					}
				}
				if err := st.AddQuotaUse(ctx, map[store.QuotaKey]int64{{AccountID: "acc", Budget: "quota:usr_ann", Period: day.Format("2006-01")}: 1}); err != nil {
					t.Fatal(err)
				}

				deleted, held, err := p.Round(ctx)
				if err != nil || !held {
					t.Fatalf("day %d: round: %v, held %v", i, err, held)
				}
				// Days from the cutoff's are kept: the cutoff is now less
				// the retention, its day included.
				first := max(0, i-3)
				if wantPruned := map[bool]int{true: 3}[i >= 4]; deleted["old_usage_counts"] != wantPruned { // two of acc's and one of acc_other's
					t.Errorf("day %d: %d usage rows pruned, want %d", i, deleted["old_usage_counts"], wantPruned)
				}
				rows, err := st.UsageGrouped(ctx, store.UsageQuery{AccountID: "acc", From: "2027-01-01", To: "2027-12-31",
					Groups: store.UsageGroups{Day: true, Credential: true}, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]store.UsageCounts{}
				for _, r := range rows {
					id := r.Credential[strings.LastIndex(r.Credential, ":")+1:]
					got[r.Day+" "+id] = r.UsageCounts
				}
				exp := map[string]store.UsageCounts{}
				for d := first; d <= i; d++ {
					for id, n := range want(d) {
						exp[start.AddDate(0, 0, d).Format(time.DateOnly)+" "+id] = n
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(exp) {
					t.Fatalf("day %d (%s): stored\n%v\nwant\n%v", i, day.Format(time.DateOnly), got, exp)
				}
				others, err := st.UsageGrouped(ctx, store.UsageQuery{AccountID: "acc_other", From: "2027-01-01", To: "2027-12-31", Groups: store.UsageGroups{Day: true}, Limit: 100})
				if err != nil || len(others) != i-first+1 || others[0].Day != start.AddDate(0, 0, first).Format(time.DateOnly) || others[0].Served != 2 {
					t.Fatalf("day %d: the other account's days %+v, %v", i, others, err)
				}

				// March's quota count (four days) goes once the cutoff is in
				// April: on April 4th.
				march, err := st.QuotaUse(ctx, store.QuotaKey{AccountID: "acc", Budget: "quota:usr_ann", Period: "2027-03"})
				if err != nil {
					t.Fatal(err)
				}
				cutoff := c.now().Add(-retention)
				if wantMarch := int64(min(i+1, 4)); cutoff.Month() == time.April {
					wantMarch = 0
					if march != wantMarch {
						t.Fatalf("day %d: March's quota count %d after the cutoff %v", i, march, cutoff)
					}
				} else if march != wantMarch {
					t.Fatalf("day %d: March's quota count %d before the cutoff left March (%v)", i, march, cutoff)
				}
			}
			april, err := st.QuotaUse(ctx, store.QuotaKey{AccountID: "acc", Budget: "quota:usr_ann", Period: "2027-04"})
			if err != nil || april != 5 {
				t.Fatalf("April's quota count %d, %v", april, err)
			}
		})
	}
}
