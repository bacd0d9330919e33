package service

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/webhook"
)

// quotaLedger counts, per quota budget and period, the requests this node
// admitted and has not yet written to the store (pending), and what the
// store held for a budget when this node first charged it (base). It is
// safe for concurrent use.
type quotaLedger struct {
	mu      sync.Mutex
	pending map[store.QuotaKey]int64
	base    map[store.QuotaKey]int64
	// loading serialises the first reads of base per budget.
	loading sync.Mutex
	// flushing is held by a flush while its counts are neither pending
	// nor yet stored, and read-held by readers of stored plus pending, so
	// that a reader counts each request exactly once.
	flushing sync.RWMutex
}

// quotaKey splits a quota's limiter key ("quota:<subject>@<period>").
func quotaKey(accountID, key string) store.QuotaKey {
	budget, period, _ := strings.Cut(key, "@")
	return store.QuotaKey{AccountID: accountID, Budget: budget, Period: period}
}

// QuotaBase returns how many requests the store counted against the quota
// budget key (with its period) of the account before this node first
// charged it: on a single node the in-memory limiter starts each budget
// from nothing, and counts on from this base, so that a restart does not
// refill a period. The store is read once per budget and period.
func (s *Service) QuotaBase(ctx context.Context, accountID, key string) (int, error) {
	l := &s.quotas
	k := quotaKey(accountID, key)
	l.mu.Lock()
	n, ok := l.base[k]
	l.mu.Unlock()
	if ok {
		return int(n), nil
	}
	l.loading.Lock()
	defer l.loading.Unlock()
	l.mu.Lock()
	n, ok = l.base[k]
	l.mu.Unlock()
	if ok {
		return int(n), nil
	}
	n, err := s.store.QuotaUse(ctx, k)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	if l.base == nil {
		l.base = map[store.QuotaKey]int64{}
	}
	l.base[k] = n
	l.mu.Unlock()
	return int(n), nil
}

// ChargeQuotas counts one admitted request against each quota budget of
// uses (limiter keys with their periods), for the next FlushQuotas, and
// sends quota.threshold for a budget this request brought to 80 % or
// 100 % of its limit (noticeQuota).
func (s *Service) ChargeQuotas(ctx context.Context, accountID string, uses []gatehouse.QuotaUse) {
	l := &s.quotas
	l.mu.Lock()
	if l.pending == nil {
		l.pending = map[store.QuotaKey]int64{}
	}
	for _, u := range uses {
		l.pending[quotaKey(accountID, u.Key)]++
	}
	l.mu.Unlock()
	for _, u := range uses {
		if stage := quotaStage(u); stage != "" {
			s.noticeQuota(ctx, accountID, u, stage)
		}
	}
}

// quotaStage returns the highest threshold of SPEC §10.5 that a quota
// budget has reached: "100" when nothing is left, "80" from 80 % of its
// limit used, "" below.
func quotaStage(u gatehouse.QuotaUse) string {
	used := u.Limit - u.Remaining
	switch {
	case u.Limit <= 0:
		return ""
	case u.Remaining <= 0:
		return "100"
	case used*5 >= u.Limit*4:
		return "80"
	}
	return ""
}

// maxQuotaNoticed bounds the thresholds this node remembers having sent.
const maxQuotaNoticed = 10_000

// quotaNotices remembers which thresholds of which budgets and periods
// this node sent (or found sent), so that the requests after a crossing
// cost the store nothing.
type quotaNotices struct {
	mu   sync.Mutex
	sent map[string]bool
}

// noticeQuota sends quota.threshold for the budget u at stage — and at
// 80 % too when a request went from below it to 100 % at once — each once
// per budget and period across the cluster (the notice's row commits with
// its event), and only when an endpoint of the account listens. Each node
// looks at the store once per budget, period and threshold; failures are
// logged, never returned: the request stands, and the next one tries
// again.
func (s *Service) noticeQuota(ctx context.Context, accountID string, u gatehouse.QuotaUse, stage string) {
	stages := []string{"80", "100"}
	if stage == "80" {
		stages = stages[:1]
	}
	n := &s.quotaNoticed
	for _, st := range stages {
		mark := accountID + "\x00" + u.Key + "\x00" + st
		n.mu.Lock()
		if n.sent == nil || len(n.sent) >= maxQuotaNoticed {
			n.sent = map[string]bool{}
		}
		seen := n.sent[mark]
		n.sent[mark] = true
		n.mu.Unlock()
		if seen {
			continue
		}
		if err := s.sendQuotaNotice(context.WithoutCancel(ctx), accountID, u, st); err != nil {
			n.mu.Lock()
			delete(n.sent, mark)
			n.mu.Unlock()
			s.logger.Warn("could not send quota.threshold", "err", err)
		}
	}
}

// sendQuotaNotice writes quota.threshold for budget u at stage, unless a
// node did already or no endpoint of the account listens.
func (s *Service) sendQuotaNotice(ctx context.Context, accountID string, u gatehouse.QuotaUse, stage string) error {
	k := quotaKey(accountID, u.Key)
	subject := strings.TrimPrefix(k.Budget, "quota:")
	kind := "credential"
	if strings.HasPrefix(subject, "usr_") {
		kind = "user"
	}
	// A notice is sent once per budget, period and stage. A user's, client
	// credential's or API token's budget is one account's; an
	// application's (named by its client id) counts apart in each account
	// its users use it from, so its notices are each account's own.
	notice := k.Budget + "@" + k.Period
	if !strings.HasPrefix(subject, "usr_") && !strings.HasPrefix(subject, "crd_") && !strings.HasPrefix(subject, "atk_") {
		notice += "@" + accountID
	}
	now := s.now()
	e := &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: accountID, Actor: "gatehouse", Action: "quota.threshold",
		TargetType: kind, TargetID: subject, Details: map[string]string{"period": k.Period, "threshold": stage,
			"limit": strconv.Itoa(u.Limit), "used": strconv.Itoa(u.Limit - u.Remaining)}, CreatedAt: now}
	return s.update(ctx, func(tx *store.Tx) error {
		targets, err := tx.WebhookTargets(accountID)
		if err != nil || !slices.ContainsFunc(targets, func(t store.WebhookTarget) bool { return webhook.Match(t.Events, e.Action) }) {
			return err // nobody listens: nothing to write
		}
		fresh, err := tx.AddNotice(notice, "quota"+stage, time.Unix(0, 0), now)
		if err != nil || !fresh {
			return err
		}
		return s.emit(tx, e)
	})
}

// FlushQuotas adds the requests charged since the last flush to the
// stored quota counts; on failure they are kept for the next.
func (s *Service) FlushQuotas(ctx context.Context) error {
	l := &s.quotas
	l.flushing.Lock()
	defer l.flushing.Unlock()
	l.mu.Lock()
	counts := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	if err := s.store.AddQuotaUse(ctx, counts); err != nil {
		l.mu.Lock()
		if l.pending == nil {
			l.pending = map[store.QuotaKey]int64{}
		}
		for k, n := range counts {
			l.pending[k] += n
		}
		l.mu.Unlock()
		return err
	}
	return nil
}

// withRemaining returns pl with its quota's remaining count of the
// current period filled in (the stored count and what this node has not
// written yet), leaving pl's own quota untouched.
func (s *Service) withRemaining(ctx context.Context, accountID, subjectID string, pl gatehouse.Plan) (gatehouse.Plan, error) {
	if pl.Quota == nil {
		return pl, nil
	}
	q := *pl.Quota
	name, _ := q.Current(s.now())
	used, err := s.quotaUsed(ctx, store.QuotaKey{AccountID: accountID, Budget: "quota:" + subjectID, Period: name})
	if err != nil {
		return pl, err
	}
	left := max(int64(q.Limit)-used, 0)
	r := int(left)
	q.Remaining = &r
	pl.Quota = &q
	return pl, nil
}

// QuotaUsed returns how many requests the cluster counted against the
// quota budget key (with its period) of the account: what every node wrote
// to the store, and what this node has not written yet. A cluster seeds a
// quota budget that Redis lost with it (cluster.QuotaCounts).
func (s *Service) QuotaUsed(ctx context.Context, accountID, key string) (int, error) {
	n, err := s.quotaUsed(ctx, quotaKey(accountID, key))
	return int(n), err
}

// quotaUsed returns the stored count of k and what this node has not
// written yet, each request counted once even while a flush runs.
func (s *Service) quotaUsed(ctx context.Context, k store.QuotaKey) (int64, error) {
	s.quotas.flushing.RLock()
	defer s.quotas.flushing.RUnlock()
	used, err := s.store.QuotaUse(ctx, k)
	if err != nil {
		return 0, err
	}
	s.quotas.mu.Lock()
	used += s.quotas.pending[k]
	s.quotas.mu.Unlock()
	return used, nil
}
