package admission_test

import (
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/ratelimit"
)

func benchAdmit(b *testing.B, plans bool) {
	v := fixture(1 << 30)
	p := v.principals["t"]
	p.Account.Settings.RateLimit = gatehouse.RateLimitSettings{Daily: 1 << 30, Burst: 1 << 30, BurstWindowSeconds: 1}
	if plans {
		huge := gatehouse.RateLimitSettings{Daily: 100_000_000, Burst: 1_000_000, BurstWindowSeconds: 1}
		p.PlanBudgets = []gatehouse.PlanBudget{{Key: "plan:crd_x", Limits: huge}, {Key: "plan:usr_u", Limits: huge},
			{Key: "quota:crd_x", Quota: &gatehouse.Quota{Limit: 1_000_000_000, Period: gatehouse.QuotaMonth}}}
	}
	// Sealed, as the service's cache hands principals out.
	v.principals["t"] = *p.Seal()
	mem := ratelimit.NewMemory()
	defer mem.Close()
	a := admission.New(admission.Config{Auth: auth.New(auth.Config{Tokens: v}), Charger: admission.NewLocal(mem, nil), Headers: ratelimit.DefaultHeaderNames()})
	r := request("t")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := httptest.NewRecorder()
		if _, err := a.Admit(w, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAdmit(b *testing.B)      { benchAdmit(b, false) }
func BenchmarkAdmitPlans(b *testing.B) { benchAdmit(b, true) }
