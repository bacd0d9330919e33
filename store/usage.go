package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
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

// UsageGroups says which of a usage row's key columns a UsageQuery groups
// by; the counts of the rest are added together.
type UsageGroups struct {
	Day, User, Credential bool
}

// UsageQuery selects an account's usage counts: the days from From to To
// (YYYY-MM-DD, both included), optionally of one user and of some
// credentials (stored names, "<method>:<id>"), grouped by Groups, in the
// order of the grouped columns, at most Limit rows after the group
// After names (a key of a row of the page before, see UsageGroupRow.Key).
type UsageQuery struct {
	AccountID   string
	From, To    string
	UserID      string
	Credentials []string
	Groups      UsageGroups
	After       []string
	Limit       int
}

// UsageGroupRow is one row of a UsageQuery: the grouped columns (empty
// when not grouped by) and the counts added over the rest.
type UsageGroupRow struct {
	Day, UserID, Credential string
	UsageCounts
}

// Key returns the values of the grouped columns of r, in the query's
// order: what UsageQuery.After takes to list the rows after r.
func (r UsageGroupRow) Key(g UsageGroups) []string {
	var out []string
	if g.Day {
		out = append(out, r.Day)
	}
	if g.User {
		out = append(out, r.UserID)
	}
	if g.Credential {
		out = append(out, r.Credential)
	}
	return out
}

// UsageGrouped returns the rows of q. The grouped columns order the rows
// and page them (keyset: a row after the After key, compared column by
// column), so a page costs the rows it holds and never an offset.
func (s *Store) UsageGrouped(ctx context.Context, q UsageQuery) ([]UsageGroupRow, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var cols []string
	if q.Groups.Day {
		cols = append(cols, "day")
	}
	if q.Groups.User {
		cols = append(cols, "user_id")
	}
	if q.Groups.Credential {
		cols = append(cols, "credential")
	}
	where := []string{"account_id = ?", "day >= ?", "day <= ?"}
	args := []any{q.AccountID, q.From, q.To}
	if q.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, q.UserID)
	}
	if len(q.Credentials) > 0 {
		where = append(where, "credential IN (?"+strings.Repeat(", ?", len(q.Credentials)-1)+")")
		for _, c := range q.Credentials {
			args = append(args, c)
		}
	}
	if len(q.After) > 0 && len(q.After) == len(cols) {
		// (a, b) > (x, y) spelt out, for both stores and their planners.
		var or []string
		for i := range cols {
			var and []string
			for j := 0; j < i; j++ {
				and = append(and, cols[j]+" = ?")
				args = append(args, q.After[j])
			}
			and = append(and, cols[i]+" > ?")
			args = append(args, q.After[i])
			or = append(or, "("+strings.Join(and, " AND ")+")")
		}
		where = append(where, "("+strings.Join(or, " OR ")+")")
	}
	sel := "SELECT "
	for _, c := range cols {
		sel += c + ", "
	}
	query := sel + `SUM(served), SUM(unauthorized), SUM(forbidden), SUM(limited) FROM usage_counts WHERE ` + strings.Join(where, " AND ")
	if len(cols) > 0 {
		query += " GROUP BY " + strings.Join(cols, ", ") + " ORDER BY " + strings.Join(cols, ", ")
		query += " LIMIT " + strconv.Itoa(max(q.Limit, 1))
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []UsageGroupRow
	for rows.Next() {
		var r UsageGroupRow
		var dest []any
		if q.Groups.Day {
			dest = append(dest, &r.Day)
		}
		if q.Groups.User {
			dest = append(dest, &r.UserID)
		}
		if q.Groups.Credential {
			dest = append(dest, &r.Credential)
		}
		var n [4]sql.NullInt64
		dest = append(dest, &n[0], &n[1], &n[2], &n[3])
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		r.Served, r.Unauthorized, r.Forbidden, r.Limited = n[0].Int64, n[1].Int64, n[2].Int64, n[3].Int64
		if len(cols) == 0 && !n[0].Valid {
			continue // nothing counted at all
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// QuotaKey names the count of one quota's budget in one period.
type QuotaKey struct {
	AccountID, Budget, Period string
}

// AddQuotaUse adds admitted requests to the stored quota counts.
func (s *Store) AddQuotaUse(ctx context.Context, counts map[QuotaKey]int64) error {
	ctx, cancel := s.watch(ctx)
	defer cancel()
	if len(counts) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for k, n := range counts {
			if _, err := s.exec(ctx, tx, `INSERT INTO quota_counts (account_id, budget, period, used) VALUES (?, ?, ?, ?)
				ON CONFLICT (account_id, budget, period) DO UPDATE SET used = quota_counts.used + excluded.used`,
				k.AccountID, k.Budget, k.Period, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// QuotaUse returns the stored count of one quota's budget in one period
// (0 when none is stored).
func (s *Store) QuotaUse(ctx context.Context, k QuotaKey) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT used FROM quota_counts WHERE account_id = ? AND budget = ? AND period = ?`),
		k.AccountID, k.Budget, k.Period).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}
