package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// planColumns are the columns of a plan this release reads and writes.
const planColumns = `allowed_ips, metadata, external_id, rate_daily, rate_burst, rate_burst_window, quota_limit, quota_period`

func scanPlan(sc scanner, extra ...any) (gatehouse.Plan, error) {
	var (
		p                    gatehouse.Plan
		ips, md              string
		daily, burst, window sql.NullInt64
		quota                sql.NullInt64
		period               string
	)
	if err := sc.Scan(append([]any{&ips, &md, &p.ExternalID, &daily, &burst, &window, &quota, &period}, extra...)...); err != nil {
		return p, err
	}
	if quota.Valid {
		p.Quota = &gatehouse.Quota{Limit: int(quota.Int64), Period: gatehouse.QuotaPeriod(period)}
	}
	if daily.Valid && burst.Valid && window.Valid {
		p.RateLimit = &gatehouse.RateLimitSettings{Daily: int(daily.Int64), Burst: int(burst.Int64), BurstWindowSeconds: int(window.Int64)}
	}
	if ips != "" {
		p.AllowedIPs = strings.Split(ips, ",")
	}
	if md != "" {
		p.Metadata = json.RawMessage(md)
	}
	return p, nil
}

// SetPlan stores the plan of subject id (of kind, in account), replacing
// any before; an empty plan removes the row. It is revoking, of the
// account (every cached principal rests on its account): a narrower
// allow-list or a lower limit must reach every cached principal of the
// subject at once, and plans change seldom.
func (t *Tx) SetPlan(accountID string, kind gatehouse.PlanKind, id string, p gatehouse.Plan, at time.Time) error {
	t.revokes(gatehouse.AccountSubject(accountID))
	if kind == gatehouse.PlanApp {
		// Its tokens live in the accounts of its users.
		t.revokes(gatehouse.ClientSubject(id))
	}
	if p.Empty() {
		_, err := t.exec(`DELETE FROM plans WHERE subject_id = ? AND account_id = ?`, id, accountID)
		return err
	}
	var daily, burst, window sql.NullInt64
	if rl := p.RateLimit; rl != nil {
		daily, burst, window = sql.NullInt64{Int64: int64(rl.Daily), Valid: true}, sql.NullInt64{Int64: int64(rl.Burst), Valid: true},
			sql.NullInt64{Int64: int64(rl.BurstWindowSeconds), Valid: true}
	}
	var (
		quota  sql.NullInt64
		period string
	)
	if q := p.Quota; q != nil {
		quota, period = sql.NullInt64{Int64: int64(q.Limit), Valid: true}, string(q.Period)
	}
	_, err := t.exec(`INSERT INTO plans (subject_id, account_id, subject_kind, allowed_ips, metadata, external_id,
			rate_daily, rate_burst, rate_burst_window, quota_limit, quota_period, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (subject_id) DO UPDATE SET allowed_ips = excluded.allowed_ips, metadata = excluded.metadata,
			external_id = excluded.external_id, rate_daily = excluded.rate_daily, rate_burst = excluded.rate_burst,
			rate_burst_window = excluded.rate_burst_window, quota_limit = excluded.quota_limit,
			quota_period = excluded.quota_period, updated_at = excluded.updated_at`,
		id, accountID, string(kind), strings.Join(p.AllowedIPs, ","), string(p.Metadata), p.ExternalID, daily, burst, window,
		quota, period, micros(at))
	return err
}

// Plan returns the plan of subject id inside the transaction, locked
// until it ends; the zero Plan when none is set.
func (t *Tx) Plan(accountID, id string) (gatehouse.Plan, error) {
	p, err := scanPlan(t.row(`SELECT `+planColumns+` FROM plans WHERE subject_id = ? AND account_id = ?`+t.forUpdate(), id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.Plan{}, nil
	}
	return p, err
}

// Plans returns the plans set on the subjects ids of an account, by id;
// a subject without one is missing from the map. Empty ids are skipped.
func (s *Store) Plans(ctx context.Context, accountID string, ids ...string) (map[string]gatehouse.Plan, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	args := []any{accountID}
	var in strings.Builder
	for _, id := range ids {
		if id == "" {
			continue
		}
		if len(args) > 1 {
			in.WriteString(", ")
		}
		in.WriteString("?")
		args = append(args, id)
	}
	out := map[string]gatehouse.Plan{}
	if len(args) == 1 {
		return out, nil
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+planColumns+`, subject_id FROM plans WHERE account_id = ? AND subject_id IN (`+in.String()+`)`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		p, err := scanPlan(rows, &id)
		if err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, rows.Err()
}
