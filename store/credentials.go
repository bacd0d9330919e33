package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

const credentialColumns = `id, account_id, user_id, name, client_id, secret_hash, created_at`

func scanCredential(sc scanner) (*gatehouse.Credential, error) {
	var (
		c       gatehouse.Credential
		created int64
	)
	if err := sc.Scan(&c.ID, &c.AccountID, &c.UserID, &c.Name, &c.ClientID, &c.SecretHash, &created); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMicros(created)
	return &c, nil
}

// CreateCredential stores a client credential.
func (s *Store) CreateCredential(ctx context.Context, c *gatehouse.Credential, audit *gatehouse.AuditEntry) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO client_credentials (`+credentialColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.AccountID, c.UserID, c.Name, c.ClientID, c.SecretHash, micros(c.CreatedAt)); err != nil {
			return s.conflict(err, "credential")
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

// Credentials lists a user's credentials.
func (s *Store) Credentials(ctx context.Context, accountID, userID string, p gatehouse.Page) ([]*gatehouse.Credential, string, error) {
	n := limit(p)
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+credentialColumns+` FROM client_credentials
		WHERE account_id = ? AND user_id = ? AND id > ? ORDER BY id LIMIT ?`), accountID, userID, p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanCredential, func(c *gatehouse.Credential) string { return c.ID })
}

// CountCredentials returns how many credentials a user has.
func (s *Store) CountCredentials(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.readRow(ctx, `SELECT COUNT(*) FROM client_credentials WHERE user_id = ?`, userID).Scan(&n)
	return n, err
}

// CredentialByClientID returns the credential with the client id, or
// not_found.
func (s *Store) CredentialByClientID(ctx context.Context, clientID string) (*gatehouse.Credential, error) {
	c, err := scanCredential(s.readRow(ctx, `SELECT `+credentialColumns+` FROM client_credentials WHERE client_id = ?`, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("credential")
	}
	return c, err
}

// DeleteCredentials deletes a user's credentials — the one with id, or all
// of them when id is "" — and revokes every token they issued. It returns
// not_found when id names no credential of the user.
func (s *Store) DeleteCredentials(ctx context.Context, accountID, userID, id string, at time.Time, audit *gatehouse.AuditEntry) error {
	return s.revokingTx(ctx, func(tx *sql.Tx) error {
		match, args := `account_id = ? AND user_id = ?`, []any{accountID, userID}
		if id != "" {
			match, args = match+` AND id = ?`, append(args, id)
		}
		if _, err := s.exec(ctx, tx, `UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL
			AND client_id IN (SELECT client_id FROM client_credentials WHERE `+match+`)`, append([]any{micros(at)}, args...)...); err != nil {
			return err
		}
		res, err := s.exec(ctx, tx, `DELETE FROM client_credentials WHERE `+match, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 && id != "" {
			return gatehouse.NotFound("credential")
		}
		return s.appendAudit(ctx, tx, audit)
	})
}
