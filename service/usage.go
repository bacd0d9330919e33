package service

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Usage counts authenticated requests per principal and day in memory and
// adds them to the store when flushed. A request counts for every budget it
// was charged to: one made by an API token acting as a user counts for
// both. It is safe for concurrent use.
type Usage struct {
	mu     sync.Mutex
	counts map[store.UsageKey]int64
}

// NewUsage returns an empty counter.
func NewUsage() *Usage { return &Usage{counts: map[store.UsageKey]int64{}} }

// Record counts one request of account at now for each of keys (the
// principal's RateKeys).
func (u *Usage) Record(account string, keys []gatehouse.RateKey, now time.Time) {
	day := now.UTC().Format(time.DateOnly)
	u.mu.Lock()
	for _, k := range keys {
		u.counts[store.UsageKey{AccountID: account, Principal: k, Day: day}]++
	}
	u.mu.Unlock()
}

// Flush adds the counts so far to the store.
func (u *Usage) Flush(ctx context.Context, st *store.Store) error {
	u.mu.Lock()
	counts := u.counts
	u.counts = map[store.UsageKey]int64{}
	u.mu.Unlock()
	if err := st.AddUsage(ctx, counts); err != nil {
		// Keep them for the next flush.
		u.mu.Lock()
		for k, n := range counts {
			u.counts[k] += n
		}
		u.mu.Unlock()
		return err
	}
	return nil
}

// DailyUsage is one principal's requests per day, for the usage chart.
type DailyUsage struct {
	Label string
	Days  map[string]int64
}

// AccountUsage returns the account's usage for the last days days, one
// entry per principal, labelled with the user's e-mail or the API token's
// id. A request made by an API token acting as a user is in both entries.
// Admins only.
func (s *Service) AccountUsage(ctx context.Context, p *gatehouse.Principal, days int) ([]string, []DailyUsage, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, nil, err
	}
	today := s.now()
	dates := make([]string, days)
	for i := range dates {
		dates[i] = today.AddDate(0, 0, i-days+1).Format(time.DateOnly)
	}
	rows, err := s.store.Usage(ctx, p.AccountID, dates[0])
	if err != nil {
		return nil, nil, err
	}
	byKey := map[gatehouse.RateKey]*DailyUsage{}
	var order []gatehouse.RateKey
	for _, r := range rows {
		d := byKey[r.Principal]
		if d == nil {
			d = &DailyUsage{Label: s.principalLabel(ctx, p.AccountID, r.Principal), Days: map[string]int64{}}
			byKey[r.Principal] = d
			order = append(order, r.Principal)
		}
		d.Days[r.Day] += r.Count
	}
	out := make([]DailyUsage, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return dates, out, nil
}

// principalLabel names a budget for the usage chart: the user's e-mail, or
// the API token's id.
func (s *Service) principalLabel(ctx context.Context, accountID string, k gatehouse.RateKey) string {
	switch k.Kind {
	case gatehouse.RateKindUser:
		if u, err := s.store.User(ctx, accountID, k.ID); err == nil {
			return u.Email
		}
	case gatehouse.RateKindAPIToken:
		if t, err := s.store.APITokenByID(ctx, accountID, k.ID); err == nil {
			return "API token " + t.Name
		}
		return "API token (revoked)"
	}
	return k.String()
}
