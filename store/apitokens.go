package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

const apiTokenColumns = `id, account_id, name, prefix, token_hash, created_at, last_used_at`

func scanAPIToken(sc scanner) (*gatehouse.APIToken, error) {
	var (
		t       gatehouse.APIToken
		created int64
		used    sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.AccountID, &t.Name, &t.Prefix, &t.Hash, &created, &used); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsedAt = fromMicros(created), fromNullMicros(used)
	return &t, nil
}

// CreateAPIToken stores an API token.
func (s *Store) CreateAPIToken(ctx context.Context, t *gatehouse.APIToken, audit *gatehouse.AuditEntry) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO api_tokens (`+apiTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.AccountID, t.Name, t.Prefix, t.Hash, micros(t.CreatedAt), nullMicros(t.LastUsedAt)); err != nil {
			return s.conflict(err, "API token")
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

// APITokens lists an account's API tokens.
func (s *Store) APITokens(ctx context.Context, accountID string, p gatehouse.Page) ([]*gatehouse.APIToken, string, error) {
	n := limit(p)
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+apiTokenColumns+` FROM api_tokens WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?`),
		accountID, p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanAPIToken, func(t *gatehouse.APIToken) string { return t.ID })
}

// APITokenByHash returns the API token with the digest, or not_found.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (*gatehouse.APIToken, error) {
	t, err := scanAPIToken(s.readRow(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("API token")
	}
	return t, err
}

// DeleteAPIToken deletes an account's API token for good.
func (s *Store) DeleteAPIToken(ctx context.Context, accountID, id string, audit *gatehouse.AuditEntry) error {
	return s.revokingTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM api_tokens WHERE id = ? AND account_id = ?`, id, accountID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return gatehouse.NotFound("API token")
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

// TouchAPIToken records when an API token was last used.
func (s *Store) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, micros(at), id)
		return err
	})
}
