package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Passkey is a user's WebAuthn credential. CredentialID is the base64url
// of the authenticator's raw credential id; Credential is the WebAuthn
// library's record of it (passkey.EncodeCredential); SignCount is the last
// signature counter accepted.
type Passkey struct {
	ID           string
	AccountID    string
	UserID       string
	CredentialID string
	Name         string
	Credential   string
	SignCount    uint32
	CreatedAt    time.Time
	LastUsedAt   time.Time
}

const passkeyColumns = `id, account_id, user_id, credential_id, name, credential, sign_count, created_at, last_used_at`

func scanPasskey(row scanner) (*Passkey, error) {
	var (
		k       Passkey
		created int64
		used    sql.NullInt64
		count   int64
	)
	err := row.Scan(&k.ID, &k.AccountID, &k.UserID, &k.CredentialID, &k.Name, &k.Credential, &count, &created, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("passkey")
	}
	if err != nil {
		return nil, err
	}
	k.SignCount, k.CreatedAt = uint32(count), fromMicros(created)
	if used.Valid {
		k.LastUsedAt = fromMicros(used.Int64)
	}
	return &k, nil
}

// CreatePasskey stores a new passkey; conflict when its credential id is
// registered already (to anyone).
func (t *Tx) CreatePasskey(k *Passkey) error {
	_, err := t.exec(`INSERT INTO passkeys (`+passkeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
		k.ID, k.AccountID, k.UserID, k.CredentialID, k.Name, k.Credential, int64(k.SignCount), micros(k.CreatedAt))
	return t.s.conflict(err, "a passkey with this credential")
}

// Passkeys returns a user's passkeys, oldest first.
func (s *Store) Passkeys(ctx context.Context, userID string) ([]*Passkey, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = ? ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Passkey
	for rows.Next() {
		k, err := scanPasskey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// PasskeyByCredentialID returns the passkey with the base64url credential
// id, or not_found.
func (s *Store) PasskeyByCredentialID(ctx context.Context, credentialID string) (*Passkey, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return scanPasskey(s.readRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = ?`, credentialID))
}

// Passkey returns the passkey id of a user inside the transaction, or
// not_found.
func (t *Tx) Passkey(userID, id string) (*Passkey, error) {
	return scanPasskey(t.row(`SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = ? AND id = ?`+t.forUpdate(), userID, id))
}

// RenamePasskey renames the passkey id of a user; not_found when there is
// none.
func (t *Tx) RenamePasskey(userID, id, name string) error {
	res, err := t.exec(`UPDATE passkeys SET name = ? WHERE user_id = ? AND id = ?`, name, userID, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("passkey")
	}
	return nil
}

// DeletePasskey removes the passkey id of a user; not_found when there is
// none.
func (t *Tx) DeletePasskey(userID, id string) error {
	res, err := t.exec(`DELETE FROM passkeys WHERE user_id = ? AND id = ?`, userID, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("passkey")
	}
	return nil
}

// UsePasskey records a sign-in with the passkey id: its new signature
// counter and the time. It reports whether count is larger than every
// counter accepted before (or both are zero) — in one conditional
// statement, so that of concurrent sign-ins with one counter value, one
// counts — and not_found when the passkey is gone: a passkey removed
// while its sign-in was under way is not one whose counter did not grow.
func (t *Tx) UsePasskey(id string, count uint32, at time.Time) (bool, error) {
	res, err := t.exec(`UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE id = ? AND (sign_count < ? OR (? = 0 AND sign_count = 0))`,
		int64(count), micros(at), id, int64(count), int64(count))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, err
	}
	var n int
	if err := t.row(`SELECT COUNT(*) FROM passkeys WHERE id = ?`, id).Scan(&n); err != nil {
		return false, err
	}
	if n == 0 {
		return false, gatehouse.NotFound("passkey")
	}
	return false, nil
}

// CountPasskeys counts a user's passkeys inside the transaction.
func (t *Tx) CountPasskeys(userID string) (int, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM passkeys WHERE user_id = ?`, userID).Scan(&n)
	return n, err
}

// DeletePasskeys removes every passkey of a user and returns how many.
func (t *Tx) DeletePasskeys(userID string) (int, error) {
	res, err := t.exec(`DELETE FROM passkeys WHERE user_id = ?`, userID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// The purposes of a passkey challenge.
const (
	ChallengeRegister     = "register"
	ChallengeSecondFactor = "second_factor"
	ChallengeSignIn       = "sign_in"
)

// PasskeyChallenge is a WebAuthn ceremony waiting for the browser's
// answer. Session is the library's session data (the challenge).
type PasskeyChallenge struct {
	ID        string
	Purpose   string
	UserID    string
	SignInID  string
	Session   []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// challengesLockKey is the key (Tx.lockKey) that serialises the
// creations of challenges bounded in number ("pkchalng" in ASCII).
const challengesLockKey = 0x706b6368616c6e67

// CreatePasskeyChallenge stores a challenge, and deletes the ones that
// expired before it began. With most > 0, it stores it only while fewer
// than most challenges of its purpose are live, and reports whether it
// did: the count and the insert are one transaction, and such creations
// take turns, so that creations released together never exceed most.
func (s *Store) CreatePasskeyChallenge(ctx context.Context, c *PasskeyChallenge, most int) (stored bool, err error) {
	err = s.Update(ctx, func(tx *Tx) error {
		stored = false
		if most > 0 {
			if err := tx.lockKey(challengesLockKey); err != nil {
				return err
			}
		}
		if _, err := tx.exec(`DELETE FROM passkey_challenges WHERE expires_at <= ?`, micros(c.CreatedAt)); err != nil {
			return err
		}
		if most > 0 {
			var n int
			if err := tx.row(`SELECT COUNT(*) FROM passkey_challenges WHERE purpose = ? AND expires_at > ?`, c.Purpose, micros(c.CreatedAt)).Scan(&n); err != nil {
				return err
			}
			if n >= most {
				return nil
			}
		}
		_, err := tx.exec(`INSERT INTO passkey_challenges (id, purpose, user_id, sign_in_id, session, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Purpose, c.UserID, c.SignInID, string(c.Session), micros(c.CreatedAt), micros(c.ExpiresAt))
		stored = err == nil
		return err
	})
	return stored, err
}

// PasskeyChallenge returns the challenge id, or not_found.
func (s *Store) PasskeyChallenge(ctx context.Context, id string) (*PasskeyChallenge, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		c                PasskeyChallenge
		session          string
		created, expires int64
	)
	err := s.readRow(ctx, `SELECT id, purpose, user_id, sign_in_id, session, created_at, expires_at FROM passkey_challenges WHERE id = ?`, id).
		Scan(&c.ID, &c.Purpose, &c.UserID, &c.SignInID, &session, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("passkey challenge")
	}
	if err != nil {
		return nil, err
	}
	c.Session, c.CreatedAt, c.ExpiresAt = []byte(session), fromMicros(created), fromMicros(expires)
	return &c, nil
}

// TakePasskeyChallenge deletes the challenge id and reports whether it was
// there: of concurrent answers to one challenge, one takes it.
func (t *Tx) TakePasskeyChallenge(id string) (bool, error) {
	res, err := t.exec(`DELETE FROM passkey_challenges WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// LivePasskeyChallenges counts the challenges of purpose that have not
// expired at now.
func (s *Store) LivePasskeyChallenges(ctx context.Context, purpose string, now time.Time) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int
	err := s.readRow(ctx, `SELECT COUNT(*) FROM passkey_challenges WHERE purpose = ? AND expires_at > ?`, purpose, micros(now)).Scan(&n)
	return n, err
}
