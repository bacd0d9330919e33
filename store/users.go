package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

const userColumns = `id, account_id, email, name, status, roles, operator, password_hash, created_at, updated_at`

func scanUser(sc scanner) (*gatehouse.User, error) {
	var (
		u                gatehouse.User
		status, roles    string
		operator         int
		created, updated int64
	)
	if err := sc.Scan(&u.ID, &u.AccountID, &u.Email, &u.Name, &status, &roles, &operator, &u.PasswordHash, &created, &updated); err != nil {
		return nil, err
	}
	u.Status = gatehouse.UserStatus(status)
	u.Roles = gatehouse.ParseRoles(roles)
	u.Operator = operator != 0
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Store) insertUser(ctx context.Context, tx *sql.Tx, u *gatehouse.User) error {
	_, err := s.exec(ctx, tx, `INSERT INTO users (id, account_id, email, email_key, name, status, roles, operator, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.AccountID, u.Email, EmailKey(u.Email), u.Name, string(u.Status), u.Roles.String(),
		boolInt(u.Operator), u.PasswordHash, micros(u.CreatedAt), micros(u.UpdatedAt))
	return s.conflict(err, "a user with this email")
}

// CreateUser stores a new user. It returns a conflict error if the e-mail
// is already taken anywhere on the server, compared case-insensitively.
func (s *Store) CreateUser(ctx context.Context, u *gatehouse.User, audit *gatehouse.AuditEntry) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.insertUser(ctx, tx, u); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

// User returns a user of the given account, or not_found; users of other
// accounts are not found.
func (s *Store) User(ctx context.Context, accountID, id string) (*gatehouse.User, error) {
	u, err := scanUser(s.readRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ? AND account_id = ?`, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("user")
	}
	return u, err
}

// UserByEmail returns the user with the given e-mail in any account,
// compared case-insensitively, or not_found.
func (s *Store) UserByEmail(ctx context.Context, email string) (*gatehouse.User, error) {
	u, err := scanUser(s.readRow(ctx, `SELECT `+userColumns+` FROM users WHERE email_key = ?`, EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("user")
	}
	return u, err
}

// Users lists the users of an account in id order.
func (s *Store) Users(ctx context.Context, accountID string, p gatehouse.Page) ([]*gatehouse.User, string, error) {
	n := limit(p)
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?`), accountID, p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanUser, func(u *gatehouse.User) string { return u.ID })
}

// Revocation says which of a user's credentials an update revokes in the
// same transaction.
type Revocation struct {
	// AllTokens revokes every access and refresh token of the user.
	AllTokens bool
	// RefreshTokens revokes the user's refresh tokens.
	RefreshTokens bool
	// APIApplication removes the user's API access application and revokes
	// every token it issued.
	APIApplication bool
}

// UpdateUser writes u's name, e-mail, status, roles and password hash, and
// applies rev, in one transaction.
func (s *Store) UpdateUser(ctx context.Context, u *gatehouse.User, rev Revocation, audit *gatehouse.AuditEntry) error {
	return s.revokingTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE users SET email = ?, email_key = ?, name = ?, status = ?, roles = ?, password_hash = ?, updated_at = ?
			WHERE id = ? AND account_id = ?`,
			u.Email, EmailKey(u.Email), u.Name, string(u.Status), u.Roles.String(), u.PasswordHash, micros(u.UpdatedAt), u.ID, u.AccountID)
		if err != nil {
			return s.conflict(err, "a user with this email")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return gatehouse.NotFound("user")
		}
		if err := s.revokeForUser(ctx, tx, u.ID, rev, u.UpdatedAt); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

func (s *Store) revokeForUser(ctx context.Context, tx *sql.Tx, userID string, rev Revocation, at time.Time) error {
	if rev.AllTokens {
		if _, err := s.exec(ctx, tx, `UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, micros(at), userID); err != nil {
			return err
		}
	}
	if rev.RefreshTokens {
		if _, err := s.exec(ctx, tx, `UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND kind = ? AND revoked_at IS NULL`,
			micros(at), userID, string(gatehouse.KindRefresh)); err != nil {
			return err
		}
	}
	if rev.APIApplication {
		if _, err := s.exec(ctx, tx, `UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND client_id IN (SELECT client_id FROM api_applications WHERE user_id = ?)`,
			micros(at), userID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM api_applications WHERE user_id = ?`, userID); err != nil {
			return err
		}
	}
	return nil
}
