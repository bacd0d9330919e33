package gatehouse_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func quotaPrincipal() *gatehouse.Principal {
	return &gatehouse.Principal{PlanBudgets: []gatehouse.PlanBudget{
		{Key: "plan:crd_x", Limits: gatehouse.RateLimitSettings{Daily: 10, Burst: 5, BurstWindowSeconds: 1}},
		{Key: "quota:crd_x", Quota: &gatehouse.Quota{Limit: 100, Period: gatehouse.QuotaMonth}},
		{Key: "quota:usr_u", Quota: &gatehouse.Quota{Limit: 10, Period: gatehouse.QuotaDay}},
	}}
}

func keys(b []gatehouse.PlanBudget) []string {
	var out []string
	for _, x := range b {
		out = append(out, x.Key+" "+x.QuotaEnds.Format(time.DateOnly))
	}
	return out
}

// TestPeriodBudgets: each quota is named after the period holding the
// instant asked about, on a sealed principal as on any other, across a
// day's and a month's end and back; the principal's own budgets are left
// as they were.
func TestPeriodBudgets(t *testing.T) {
	lastSecond := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)
	next := lastSecond.Add(time.Second)
	december := []string{"plan:crd_x 0001-01-01", "quota:crd_x@2026-12 2027-01-01", "quota:usr_u@2026-12-31 2027-01-01"}
	january := []string{"plan:crd_x 0001-01-01", "quota:crd_x@2027-01 2027-02-01", "quota:usr_u@2027-01-01 2027-01-02"}
	for _, sealed := range []bool{false, true} {
		p := quotaPrincipal()
		if sealed {
			p.Seal()
		}
		for _, step := range []struct {
			at   time.Time
			want []string
		}{{lastSecond, december}, {lastSecond.Add(-time.Hour), december}, {next, january}, {next.Add(40 * time.Hour), nil}, {lastSecond, december}} {
			got := keys(*p.PeriodBudgets(step.at))
			if step.want == nil {
				step.want = []string{"plan:crd_x 0001-01-01", "quota:crd_x@2027-01 2027-02-01", "quota:usr_u@2027-01-02 2027-01-03"}
			}
			if len(got) != len(step.want) {
				t.Fatalf("sealed %v at %v: %q, want %q", sealed, step.at, got, step.want)
			}
			for i := range got {
				if got[i] != step.want[i] {
					t.Errorf("sealed %v at %v: %q, want %q", sealed, step.at, got, step.want)
					break
				}
			}
		}
		if k := keys(p.PlanBudgets); k[1] != "quota:crd_x 0001-01-01" || k[2] != "quota:usr_u 0001-01-01" {
			t.Errorf("sealed %v: the principal's own budgets changed: %q", sealed, k)
		}
	}
}

// TestPeriodBudgetsShared: a sealed principal's requests within a period
// share one copy; one without a quota uses its own budgets.
func TestPeriodBudgetsShared(t *testing.T) {
	p := quotaPrincipal().Seal()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	if a, b := p.PeriodBudgets(now), p.PeriodBudgets(now.Add(time.Hour)); a != b {
		t.Error("a sealed principal worked its period budgets out twice in one period")
	}
	plain := &gatehouse.Principal{PlanBudgets: quotaPrincipal().PlanBudgets[:1]}
	plain.Seal()
	if got := plain.PeriodBudgets(now); got != &plain.PlanBudgets {
		t.Error("budgets without a quota were copied")
	}
}
