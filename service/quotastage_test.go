package service_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// The thresholds of quota.threshold (SPEC §10.5): 80 % of the limit used,
// and nothing left.
func TestQuotaStage(t *testing.T) {
	for _, c := range []struct {
		limit, remaining int
		want             string
	}{
		{10, 10, ""}, {10, 3, ""}, {10, 2, "80"}, {10, 1, "80"}, {10, 0, "100"},
		{1, 0, "100"}, {4, 1, ""}, {5, 1, "80"}, {1000, 201, ""}, {1000, 200, "80"}, {0, 0, ""},
	} {
		if got := service.QuotaStage(gatehouse.QuotaUse{Key: "quota:x@2026-12", Limit: c.limit, Remaining: c.remaining}); got != c.want {
			t.Errorf("limit %d, remaining %d: %q, want %q", c.limit, c.remaining, got, c.want)
		}
	}
}
