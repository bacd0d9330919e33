package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// useRefreshSQL is the refresh compare-and-swap: only one caller can see
// a row affected.
const useRefreshSQL = `UPDATE tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL`

const appColumns = `id, account_id, user_id, client_id, access_token_ttl_days, created_at`

func scanApp(sc scanner) (*gatehouse.APIApplication, error) {
	var (
		a       gatehouse.APIApplication
		created int64
	)
	if err := sc.Scan(&a.ID, &a.AccountID, &a.UserID, &a.ClientID, &a.AccessTokenTTLDays, &created); err != nil {
		return nil, err
	}
	a.CreatedAt = fromMicros(created)
	return &a, nil
}

// CreateAPIApplication stores an application with its first tokens. It
// returns conflict if the user already has one.
func (s *Store) CreateAPIApplication(ctx context.Context, a *gatehouse.APIApplication, toks []*gatehouse.Token, audit *gatehouse.AuditEntry) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO api_applications (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			a.ID, a.AccountID, a.UserID, a.ClientID, a.AccessTokenTTLDays, micros(a.CreatedAt)); err != nil {
			return s.conflict(err, "API access for this user")
		}
		if err := s.insertTokens(ctx, tx, toks...); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

// APIApplication returns the user's application, or not_found.
func (s *Store) APIApplication(ctx context.Context, userID string) (*gatehouse.APIApplication, error) {
	a, err := scanApp(s.readRow(ctx, `SELECT `+appColumns+` FROM api_applications WHERE user_id = ?`, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("API access")
	}
	return a, err
}

// UpdateAPIApplicationTTL changes the lifetime of the access tokens the
// user's application issues from now on. It advances the generation, as
// caches hold applications too.
func (s *Store) UpdateAPIApplicationTTL(ctx context.Context, userID string, days int, audit *gatehouse.AuditEntry) error {
	return s.revokingTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE api_applications SET access_token_ttl_days = ? WHERE user_id = ?`, days, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return gatehouse.NotFound("API access")
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

// DeleteAPIApplication removes the user's application and revokes every
// token it issued.
func (s *Store) DeleteAPIApplication(ctx context.Context, userID string, at time.Time, audit *gatehouse.AuditEntry) error {
	return s.revokingTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM api_applications WHERE user_id = ?`), userID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return gatehouse.NotFound("API access")
		}
		if err := s.revokeForUser(ctx, tx, userID, Revocation{APIApplication: true}, at); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

// RotateRefreshToken marks refresh token id used and stores its
// successors, atomically: the conditional update lets exactly one of any
// number of concurrent callers win. won is false (and nothing is stored)
// when the token was already used or revoked.
func (s *Store) RotateRefreshToken(ctx context.Context, id string, at time.Time, next ...*gatehouse.Token) (won bool, err error) {
	err = s.batched(ctx, func(ctx context.Context, tx *sql.Tx) error {
		won = false
		res, err := s.exec(ctx, tx, useRefreshSQL, micros(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		won = true
		return s.insertTokens(ctx, tx, next...)
	})
	return won && err == nil, err
}

// RevokeTokenFamily revokes every token of a lineage.
func (s *Store) RevokeTokenFamily(ctx context.Context, familyID string, at time.Time) error {
	return s.revokingTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`, micros(at), familyID)
		return err
	})
}
