package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// useRefreshSQL returns the refresh compare-and-swap: only one caller can
// see a row affected, and never for a token of a revoked family. It
// stamps used_at with usedAt, an expression of the time the caller read
// inside the transaction (its first parameter), and returns what it
// stamped: each dialect holds its own (dialect.useRefresh).
func useRefreshSQL(usedAt string) string {
	return `UPDATE tokens SET used_at = ` + usedAt + ` WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL
	AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = tokens.family_id) RETURNING used_at`
}

const appColumns = `id, account_id, user_id, client_id, access_token_ttl_days, created_at, scopes, created_by, last_used_at`

func scanApp(sc scanner) (*gatehouse.APIApplication, error) {
	var (
		a       gatehouse.APIApplication
		created int64
		scopes  sql.NullString
		used    sql.NullInt64
	)
	if err := sc.Scan(&a.ID, &a.AccountID, &a.UserID, &a.ClientID, &a.AccessTokenTTLDays, &created, &scopes, &a.CreatedBy, &used); err != nil {
		return nil, err
	}
	a.CreatedAt, a.Scopes, a.LastUsedAt = fromMicros(created), fromNullScopes(scopes), fromNullMicros(used)
	return &a, nil
}

// CreateAPIApplication stores an application. It returns conflict if the
// user already has one.
func (t *Tx) CreateAPIApplication(a *gatehouse.APIApplication) error {
	_, err := t.exec(`INSERT INTO api_applications (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.AccountID, a.UserID, a.ClientID, a.AccessTokenTTLDays, micros(a.CreatedAt), nullScopes(a.Scopes), a.CreatedBy, nullMicros(a.LastUsedAt))
	return t.s.conflict(err, "API access for this user")
}

// TouchAPIApplication records when an API access application was last used.
func (s *Store) TouchAPIApplication(ctx context.Context, clientID string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE api_applications SET last_used_at = ? WHERE client_id = ?`, micros(at), clientID)
		return err
	})
}

// APIApplication returns the user's application, or not_found.
func (s *Store) APIApplication(ctx context.Context, userID string) (*gatehouse.APIApplication, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	a, err := scanApp(s.readRow(ctx, `SELECT `+appColumns+` FROM api_applications WHERE user_id = ?`, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("API access")
	}
	return a, err
}

// APIApplication returns the user's application inside the transaction,
// locked until it ends, or not_found.
func (t *Tx) APIApplication(userID string) (*gatehouse.APIApplication, error) {
	a, err := scanApp(t.row(`SELECT `+appColumns+` FROM api_applications WHERE user_id = ?`+t.forUpdate(), userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("API access")
	}
	return a, err
}

// UpdateAPIApplicationTTL changes the lifetime of the access tokens the
// user's application issues from now on. It is revoking, as caches hold
// applications too.
func (t *Tx) UpdateAPIApplicationTTL(userID string, days int) error {
	t.revokes(gatehouse.UserSubject(userID))
	res, err := t.exec(`UPDATE api_applications SET access_token_ttl_days = ? WHERE user_id = ?`, days, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("API access")
	}
	return nil
}

// DeleteAPIApplication removes the user's application, if any, and reports
// whether there was one. Every token it issued stops working: a token of an
// application is valid only while the application exists.
func (t *Tx) DeleteAPIApplication(userID string, at time.Time) (bool, error) {
	t.revokes(gatehouse.UserSubject(userID))
	// Mark what is there now as revoked too, so that lists and
	// introspection say so plainly; validity does not depend on it.
	if _, err := t.exec(`UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND client_id IN (SELECT client_id FROM api_applications WHERE user_id = ?)`,
		micros(at), userID); err != nil {
		return false, err
	}
	res, err := t.exec(`DELETE FROM api_applications WHERE user_id = ?`, userID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// RefreshRetry is what a refresh rotation keeps, for the grace period
// only, so that a retry of the same refresh token by the same client gets
// the pair the rotation committed: the client's address, the successor
// refresh token's id and the successor pair sealed with a key that only a
// holder of the used refresh token can derive (the store never sees it).
type RefreshRetry struct {
	TokenID     string
	ClientAddr  string
	SuccessorID string
	Sealed      string
	// CreatedAt is when the rotation used the token (its used_at).
	CreatedAt time.Time
}

// RotateRefreshToken marks refresh token id used and stores its
// successors and retry (when not nil; its TokenID and CreatedAt are set
// here), atomically: the conditional update lets exactly one of any number
// of concurrent callers win. won is false (and nothing is stored) when the
// token was already used or revoked. The rotation is group committed but
// synced to disk before it returns: a lost rotation would bring the used
// refresh token back.
//
// The token is marked used by the transaction that stores its successors
// and at the moment that transaction writes it, never earlier: used_at is
// the later of now() called inside the transaction and, on PostgreSQL, the
// database's clock when the statement runs, so a write that waited out a
// stall (in the batch queue, for a connection, or in the network) is
// stamped when it happened, and a client's retry right after the stall is
// still inside the grace period.
//
// On PostgreSQL the rotation first takes the key-share lock on the account
// row that the successors' foreign key needs anyway, before it locks the
// refresh token's row: a transaction that locks the account for update and
// then marks its tokens revoked (disabling a user, or removing their admin
// role, drops their application) takes the two in the same order, so the
// two cannot deadlock.
func (s *Store) RotateRefreshToken(ctx context.Context, id string, now func() time.Time, retry *RefreshRetry, next ...*gatehouse.Token) (won bool, err error) {
	err = s.batched(ctx, true, id, func(ctx context.Context, tx *sql.Tx) error {
		won = false
		if s.d.lockAccountKey != "" && len(next) > 0 {
			if _, err := tx.ExecContext(ctx, s.q(s.d.lockAccountKey), next[0].AccountID); err != nil {
				return err
			}
		}
		var used int64
		err := s.queryRow(ctx, tx, s.d.useRefresh, micros(now().UTC()), id).Scan(&used)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		won = true
		if err := s.insertTokens(ctx, tx, next...); err != nil {
			return err
		}
		if retry == nil {
			return nil
		}
		retry.TokenID, retry.CreatedAt = id, fromMicros(used)
		_, err = s.exec(ctx, tx, `INSERT INTO refresh_retries (token_id, client_addr, successor_id, sealed, created_at) VALUES (?, ?, ?, ?, ?)`,
			retry.TokenID, retry.ClientAddr, retry.SuccessorID, retry.Sealed, used)
		return err
	})
	return won && err == nil, err
}

// RefreshRetry returns what the rotation of refresh token id kept for
// retries, or not_found (none, or already pruned).
func (s *Store) RefreshRetry(ctx context.Context, id string) (*RefreshRetry, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		r       RefreshRetry
		created int64
	)
	err := s.readRow(ctx, `SELECT token_id, client_addr, successor_id, sealed, created_at FROM refresh_retries WHERE token_id = ?`, id).
		Scan(&r.TokenID, &r.ClientAddr, &r.SuccessorID, &r.Sealed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("refresh retry")
	}
	if err != nil {
		return nil, err
	}
	r.CreatedAt = fromMicros(created)
	return &r, nil
}
