package store

import (
	"context"
	"database/sql"
)

// UsageKey names the requests of one day (YYYY-MM-DD, UTC) in one account
// made as one user through one credential. UserID is empty for an API
// token acting as nobody; Credential is the service's name for the
// credential ("<method>:<id>").
type UsageKey struct {
	AccountID  string
	Day        string
	UserID     string
	Credential string
}

// UsageCounts counts requests by how they ended: served, or refused as
// unauthorized (401), forbidden (403) or over a rate limit.
type UsageCounts struct {
	Served, Unauthorized, Forbidden, Limited int64
}

// Add adds o to c.
func (c *UsageCounts) Add(o UsageCounts) {
	c.Served += o.Served
	c.Unauthorized += o.Unauthorized
	c.Forbidden += o.Forbidden
	c.Limited += o.Limited
}

// Refused is the number of requests refused for any reason counted.
func (c UsageCounts) Refused() int64 { return c.Unauthorized + c.Forbidden + c.Limited }

// AddUsage adds counts of requests to the stored ones.
func (s *Store) AddUsage(ctx context.Context, counts map[UsageKey]UsageCounts) error {
	ctx, cancel := s.watch(ctx)
	defer cancel()
	if len(counts) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for k, n := range counts {
			if _, err := s.exec(ctx, tx, `INSERT INTO usage_counts (account_id, day, user_id, credential, served, unauthorized, forbidden, limited)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (account_id, day, user_id, credential) DO UPDATE SET
					served = usage_counts.served + excluded.served,
					unauthorized = usage_counts.unauthorized + excluded.unauthorized,
					forbidden = usage_counts.forbidden + excluded.forbidden,
					limited = usage_counts.limited + excluded.limited`,
				k.AccountID, k.Day, k.UserID, k.Credential, n.Served, n.Unauthorized, n.Forbidden, n.Limited); err != nil {
				return err
			}
		}
		return nil
	})
}

// UsageRow is the requests of one day made as one user through one
// credential.
type UsageRow struct {
	Day, UserID, Credential string
	UsageCounts
}

// Usage returns an account's usage since day (YYYY-MM-DD), ordered by day,
// user and credential.
func (s *Store) Usage(ctx context.Context, accountID, since string) ([]UsageRow, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT day, user_id, credential, served, unauthorized, forbidden, limited
		FROM usage_counts WHERE account_id = ? AND day >= ? ORDER BY day, user_id, credential`), accountID, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		var r UsageRow
		if err := rows.Scan(&r.Day, &r.UserID, &r.Credential, &r.Served, &r.Unauthorized, &r.Forbidden, &r.Limited); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
