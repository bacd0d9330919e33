package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Session is an admin UI session, stored by the digest of its cookie.
type Session struct {
	ID        string
	Hash      string
	UserID    string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, se *Session) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO sessions (id, token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			se.ID, se.Hash, se.UserID, se.CSRF, micros(se.CreatedAt), micros(se.ExpiresAt))
		return err
	})
}

// SessionByHash returns a session and its user, or not_found.
func (s *Store) SessionByHash(ctx context.Context, hash string) (*Session, *gatehouse.User, error) {
	row := s.readRow(ctx, (`SELECT s.id, s.token_hash, s.user_id, s.csrf, s.created_at, s.expires_at, ` + prefixed("u.", userColumns) + `
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`), hash)
	var (
		se               Session
		created, expires int64
	)
	u, err := scanUser(rowScanner(func(dst ...any) error {
		return row.Scan(append([]any{&se.ID, &se.Hash, &se.UserID, &se.CSRF, &created, &expires}, dst...)...)
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, gatehouse.NotFound("session")
	}
	if err != nil {
		return nil, nil, err
	}
	se.CreatedAt, se.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &se, u, nil
}

// rowScanner adapts a function to the scanner interface.
type rowScanner func(dst ...any) error

func (f rowScanner) Scan(dst ...any) error { return f(dst...) }

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `DELETE FROM sessions WHERE id = ?`, id)
		return err
	})
}

// AddUsage adds counts of requests per principal and day (YYYY-MM-DD).
func (s *Store) AddUsage(ctx context.Context, counts map[[3]string]int64) error {
	if len(counts) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for k, n := range counts {
			if _, err := s.exec(ctx, tx, `INSERT INTO usage_daily (account_id, principal, day, count) VALUES (?, ?, ?, ?)
				ON CONFLICT (account_id, principal, day) DO UPDATE SET count = usage_daily.count + excluded.count`,
				k[0], k[1], k[2], n); err != nil {
				return err
			}
		}
		return nil
	})
}

// UsageRow is one principal's requests on one day.
type UsageRow struct {
	Principal, Day string
	Count          int64
}

// Usage returns an account's usage since day (YYYY-MM-DD), by day.
func (s *Store) Usage(ctx context.Context, accountID, since string) ([]UsageRow, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT principal, day, count FROM usage_daily WHERE account_id = ? AND day >= ? ORDER BY day, principal`), accountID, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		var r UsageRow
		if err := rows.Scan(&r.Principal, &r.Day, &r.Count); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
