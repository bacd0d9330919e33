package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Session is an admin UI session, stored by the digest of its cookie.
// UserEpoch and PasswordEpoch are its user's epochs when it began (see
// gatehouse.User.Epoch).
type Session struct {
	ID                       string
	Hash                     string
	UserID                   string
	CSRF                     string
	CreatedAt                time.Time
	ExpiresAt                time.Time
	UserEpoch, PasswordEpoch int64
	// ClientAddr is the client address the session was begun from.
	ClientAddr string
}

// CreateSession stores a session.
func (t *Tx) CreateSession(se *Session) error {
	_, err := t.exec(`INSERT INTO sessions (id, token_hash, user_id, csrf, created_at, expires_at, user_epoch, password_epoch, client_addr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		se.ID, se.Hash, se.UserID, se.CSRF, micros(se.CreatedAt), micros(se.ExpiresAt), se.UserEpoch, se.PasswordEpoch, se.ClientAddr)
	return err
}

// SessionByHash returns a session with its user and account, or not_found.
func (s *Store) SessionByHash(ctx context.Context, hash string) (*Session, *gatehouse.User, *gatehouse.Account, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	row := s.readRow(ctx, (`SELECT s.id, s.token_hash, s.user_id, s.csrf, s.created_at, s.expires_at, s.user_epoch, s.password_epoch, ` +
		prefixed("u.", userColumns) + `, ` + prefixed("a.", accountColumns) + `
		FROM sessions s JOIN users u ON u.id = s.user_id JOIN accounts a ON a.id = u.account_id WHERE s.token_hash = ?`), hash)
	var (
		se               Session
		created, expires int64
		a                *gatehouse.Account
	)
	u, err := scanUser(rowScanner(func(userDst ...any) error {
		var accErr error
		a, accErr = scanAccount(rowScanner(func(accDst ...any) error {
			return row.Scan(append(append([]any{&se.ID, &se.Hash, &se.UserID, &se.CSRF, &created, &expires, &se.UserEpoch, &se.PasswordEpoch},
				userDst...), accDst...)...)
		}))
		return accErr
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil, gatehouse.NotFound("session")
	}
	if err != nil {
		return nil, nil, nil, err
	}
	se.CreatedAt, se.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &se, u, a, nil
}

// rowScanner adapts a function to the scanner interface; nesting the scan
// functions of several tables through it reads one joined row.
type rowScanner func(dst ...any) error

func (f rowScanner) Scan(dst ...any) error { return f(dst...) }

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `DELETE FROM sessions WHERE id = ?`, id)
		return err
	})
}

// KeepCredential moves the session or password-derived access token with
// id onto u's current epochs, so that a change the user makes to their own
// password does not end the credential making it.
func (t *Tx) KeepCredential(id string, method gatehouse.AuthMethod, u *gatehouse.User) error {
	table := "tokens"
	switch method {
	case gatehouse.MethodSession:
		table = "sessions"
	case gatehouse.MethodPassword:
	default:
		return nil
	}
	_, err := t.exec(`UPDATE `+table+` SET user_epoch = ?, password_epoch = ? WHERE id = ? AND user_id = ?`, u.Epoch, u.PasswordEpoch, id, u.ID)
	return err
}

// Sessions returns a user's sessions that still work at now (not expired,
// begun under the user's current epochs), newest first.
func (s *Store) Sessions(ctx context.Context, userID string, now time.Time) ([]*Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT s.id, s.token_hash, s.user_id, s.csrf, s.created_at, s.expires_at, s.user_epoch, s.password_epoch, s.client_addr
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.user_id = ? AND s.expires_at > ? AND s.user_epoch = u.epoch AND s.password_epoch = u.password_epoch
		ORDER BY s.created_at DESC`), userID, micros(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Session
	for rows.Next() {
		var (
			se               Session
			created, expires int64
		)
		if err := rows.Scan(&se.ID, &se.Hash, &se.UserID, &se.CSRF, &created, &expires, &se.UserEpoch, &se.PasswordEpoch, &se.ClientAddr); err != nil {
			return nil, err
		}
		se.CreatedAt, se.ExpiresAt = fromMicros(created), fromMicros(expires)
		out = append(out, &se)
	}
	return out, rows.Err()
}

// DeleteSessions ends every session of a user except the one with id keep
// ("" for none) and returns how many it ended.
func (t *Tx) DeleteSessions(userID, keep string) (int, error) {
	res, err := t.exec(`DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, keep)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// DeleteUserSession ends the session with id of user userID and reports
// whether there was one.
func (t *Tx) DeleteUserSession(userID, id string) (bool, error) {
	res, err := t.exec(`DELETE FROM sessions WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
