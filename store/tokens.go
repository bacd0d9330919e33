package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// insertTokenSQL stores one token; it is on the hot path, so the batch
// writer prepares it.
const insertTokenSQL = `INSERT INTO tokens (id, account_id, user_id, kind, token_hash, method, client_id, family_id, expires_at, used_at, revoked_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const tokenColumns = `t.id, t.account_id, t.user_id, t.kind, t.token_hash, t.method, t.client_id, t.family_id, t.expires_at, t.used_at, t.revoked_at, t.created_at`

func scanToken(sc scanner, extra ...any) (*gatehouse.Token, error) {
	var (
		t                gatehouse.Token
		kind, method     string
		expires, created int64
		used, revoked    sql.NullInt64
	)
	dst := append([]any{&t.ID, &t.AccountID, &t.UserID, &kind, &t.Hash, &method, &t.ClientID, &t.FamilyID, &expires, &used, &revoked, &created}, extra...)
	if err := sc.Scan(dst...); err != nil {
		return nil, err
	}
	t.Kind, t.Method = gatehouse.TokenKind(kind), gatehouse.AuthMethod(method)
	t.ExpiresAt, t.CreatedAt = fromMicros(expires), fromMicros(created)
	t.UsedAt, t.RevokedAt = fromNullMicros(used), fromNullMicros(revoked)
	return &t, nil
}

func (s *Store) insertTokens(ctx context.Context, tx *sql.Tx, toks ...*gatehouse.Token) error {
	for _, t := range toks {
		if _, err := s.exec(ctx, tx, insertTokenSQL,
			t.ID, t.AccountID, t.UserID, string(t.Kind), t.Hash, string(t.Method), t.ClientID, t.FamilyID,
			micros(t.ExpiresAt), nullMicros(t.UsedAt), nullMicros(t.RevokedAt), micros(t.CreatedAt)); err != nil {
			return err
		}
	}
	return nil
}

// CreateTokens stores issued tokens (for example an access token and its
// refresh token) in one transaction.
func (s *Store) CreateTokens(ctx context.Context, toks ...*gatehouse.Token) error {
	return s.batched(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.insertTokens(ctx, tx, toks...) })
}

// TokenByHash returns the token with the given digest and the user it
// belongs to, or not_found. It does not check expiry or revocation.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*gatehouse.Token, *gatehouse.User, error) {
	row := s.readRow(ctx, (`SELECT ` + tokenColumns + `, ` + prefixed("u.", userColumns) + `
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?`), hash)
	var (
		u                gatehouse.User
		status, roles    string
		operator         int
		created, updated int64
	)
	t, err := scanToken(row, &u.ID, &u.AccountID, &u.Email, &u.Name, &status, &roles, &operator, &u.PasswordHash, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, gatehouse.NotFound("token")
	}
	if err != nil {
		return nil, nil, err
	}
	u.Status, u.Roles, u.Operator = gatehouse.UserStatus(status), gatehouse.ParseRoles(roles), operator != 0
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return t, &u, nil
}

// RevokeToken marks one token revoked; revoking a revoked token is a no-op.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) error {
	return s.revokingTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(at), id)
		return err
	})
}

// RevokeUserTokens applies rev to one user's credentials.
func (s *Store) RevokeUserTokens(ctx context.Context, userID string, rev Revocation, at time.Time) error {
	return s.revokingTx(ctx, func(tx *sql.Tx) error { return s.revokeForUser(ctx, tx, userID, rev, at) })
}

// prefixed qualifies each column of a comma-separated list with p.
func prefixed(p, columns string) string {
	out := make([]byte, 0, len(columns)*2)
	out = append(out, p...)
	for i := 0; i < len(columns); i++ {
		out = append(out, columns[i])
		if columns[i] == ' ' && i > 0 && columns[i-1] == ',' {
			out = append(out, p...)
		}
	}
	return string(out)
}
