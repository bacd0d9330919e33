package admission

import (
	"context"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// QuotaBase reads how much of a quota budget's current period a store
// kept (the service), so that a single node's restart does not refill it.
type QuotaBase interface {
	QuotaBase(ctx context.Context, accountID, key string) (int, error)
}

// Local is a single node's Charger: a limiter (memory, or a Redis limiter
// configured in the cluster's place) that confirms nothing. Quotas count
// on from what the store kept.
type Local struct {
	limiter ratelimit.Limiter
	quotas  QuotaBase
}

// NewLocal returns a Charger on l, counting quotas on from quotas (nil:
// from zero).
func NewLocal(l ratelimit.Limiter, quotas QuotaBase) *Local {
	return &Local{limiter: l, quotas: quotas}
}

// Admit charges the request to l; it confirms nothing, so expect and
// rests are not read and confirmed is true.
func (c *Local) Admit(ctx context.Context, _ *gatehouse.ClusterState, _, account string, keys []string, l ratelimit.Limits) (ratelimit.Decision, gatehouse.ClusterState, bool, error) {
	shared := true // l.Own is the principal's (ratelimit.ForPrincipal)
	for i := 0; c.quotas != nil && l.Own != nil && i < len(*l.Own); i++ {
		b := (*l.Own)[i]
		if b.Quota == nil {
			continue
		}
		n, err := c.quotas.QuotaBase(ctx, account, b.Key)
		if err != nil {
			return ratelimit.Decision{}, gatehouse.ClusterState{}, false, err
		}
		if shared {
			own := slices.Clone(*l.Own)
			l.Own, shared = &own, false
		}
		(*l.Own)[i].QuotaCharged = n
	}
	d, err := c.limiter.Allow(ctx, account, keys, l)
	return d, gatehouse.ClusterState{}, true, err
}
