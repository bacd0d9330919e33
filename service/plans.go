package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/store"
)

// setPlan applies patch to the plan of the subject id (of kind) inside tx
// and stores it, adding what changed to details (the audit entry of the
// change the patch came with). It returns the plan now in force. The
// caller has locked the subject's own row in tx: a plan row not there yet
// locks nothing, and two patches that both read no plan would each store
// theirs alone.
func (s *Service) setPlan(tx *store.Tx, accountID string, kind gatehouse.PlanKind, id string, patch plan.Patch, details map[string]string) (gatehouse.Plan, error) {
	cur, err := tx.Plan(accountID, id)
	if err != nil || patch.Empty() {
		return cur, err
	}
	next, err := plan.Apply(kind, cur, patch)
	if err != nil {
		return cur, err
	}
	if err := tx.SetPlan(accountID, kind, id, next, s.now()); err != nil {
		return cur, err
	}
	if patch.AllowedIPs != nil {
		details["allowed_ips"] = strings.Join(next.AllowedIPs, ",")
	}
	if patch.Metadata != nil {
		details["metadata"] = string(next.Metadata)
	}
	if patch.ExternalID != nil {
		details["external_id"] = next.ExternalID
	}
	if patch.Quota.Set {
		details["quota"] = "none"
		if q := next.Quota; q != nil {
			details["quota"] = fmt.Sprintf("limit=%d period=%s", q.Limit, q.Period)
		}
	}
	if patch.RateLimit.Set {
		details["rate_limit"] = "none"
		if rl := next.RateLimit; rl != nil {
			details["rate_limit"] = fmt.Sprintf("daily=%d burst=%d burst_window_seconds=%d", rl.Daily, rl.Burst, rl.BurstWindowSeconds)
		}
	}
	return next, nil
}

// checkPlan checks a patch before any other work, so that a request with
// a bad one fails fast with the field at fault.
func checkPlan(kind gatehouse.PlanKind, patch plan.Patch) error {
	_, err := plan.Apply(kind, gatehouse.Plan{}, patch)
	return err
}

// fillPlans sets the plan of every item of a list (of one account) from
// the store, in one read: ids names an item's subject, whose plan it is,
// and the id its budgets count under (the subject's own, but for a rolled
// API token), at its plan.
func fillPlans[T any](ctx context.Context, s *Service, accountID string, items []T, ids func(T) (subject, budget string), at func(T) *gatehouse.Plan) error {
	subjects := make([]string, len(items))
	for i, it := range items {
		subjects[i], _ = ids(it)
	}
	plans, err := s.store.Plans(ctx, accountID, subjects...)
	if err != nil {
		return err
	}
	for _, it := range items {
		subject, budget := ids(it)
		if *at(it), err = s.withRemaining(ctx, accountID, budget, plans[subject]); err != nil {
			return err
		}
	}
	return nil
}

// planPrincipal gives p what the plans of its credential (subject cred,
// "" for none, whose budgets count under budget: cred, but for a rolled API
// token) and its user say: the allow-list of the credential, and the
// external id and metadata of the credential, or of the user when the
// credential sets none. One read, on a cache miss only — two for a
// third-party application of another account (credAccount, where its plan
// is kept; "" for p's own): its budgets then count per account of its
// users, like every budget of p.
func (s *Service) planPrincipal(ctx context.Context, p *gatehouse.Principal, cred, budget, credAccount string) error {
	plans, err := s.store.Plans(ctx, p.AccountID, cred, p.UserID())
	if err != nil {
		return err
	}
	if credAccount != "" && credAccount != p.AccountID && cred != "" {
		own, err := s.store.Plans(ctx, credAccount, cred)
		if err != nil {
			return err
		}
		plans[cred] = own[cred]
	}
	c, u := plans[cred], plans[p.UserID()]
	if cred == "" {
		c = gatehouse.Plan{}
	}
	if p.User != nil {
		p.User.Plan = u
	}
	// Stored allow-lists were checked when they were written.
	if p.AllowedIPs, err = gatehouse.ParseAllowList(c.AllowedIPs); err != nil {
		return err
	}
	if len(c.AllowedIPs) > 0 && p.AllowedIPs == nil {
		p.AllowedIPs = gatehouse.AllowList{}
	}
	p.ExternalID, p.Metadata = c.ExternalID, c.Metadata
	if p.ExternalID == "" && len(p.Metadata) == 0 {
		p.ExternalID, p.Metadata = u.ExternalID, u.Metadata
	}
	p.PlanBudgets = nil
	if c.RateLimit != nil {
		p.PlanBudgets = append(p.PlanBudgets, gatehouse.PlanBudget{Key: PlanBudgetKey(budget), Limits: *c.RateLimit})
	}
	if u.RateLimit != nil {
		p.PlanBudgets = append(p.PlanBudgets, gatehouse.PlanBudget{Key: PlanBudgetKey(p.UserID()), Limits: *u.RateLimit})
	}
	// A quota's key is completed with its period once per period
	// (gatehouse.Principal.PeriodBudgets, through ratelimit.ForPrincipal).
	if c.Quota != nil {
		p.PlanBudgets = append(p.PlanBudgets, gatehouse.PlanBudget{Key: "quota:" + budget, Quota: c.Quota})
	}
	if u.Quota != nil {
		p.PlanBudgets = append(p.PlanBudgets, gatehouse.PlanBudget{Key: "quota:" + p.UserID(), Quota: u.Quota})
	}
	return nil
}

// PlanBudgetKey is the rate limiter's key of the budget of the plan of
// subject id (a credential or a user), apart from the account's budgets
// of the same user or API token (gatehouse.RateKey).
func PlanBudgetKey(id string) string { return "plan:" + id }
