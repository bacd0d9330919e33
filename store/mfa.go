package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// TOTP is a user's TOTP enrolment. Sealed is the secret sealed under the
// server key (mfa.Sealer); Confirmed is false until a code proved it.
// LastStep is the last time step whose code was accepted.
type TOTP struct {
	UserID    string
	Sealed    string
	CreatedAt time.Time
	Confirmed bool
	LastStep  int64
}

// Factors is what second factors a user has.
type Factors struct {
	// TOTP is a confirmed TOTP enrolment.
	TOTP bool
	// Passkeys counts the user's passkeys.
	Passkeys int
	// RecoveryCodesLeft counts the unused recovery codes.
	RecoveryCodesLeft int
}

// Any reports whether the user has a second factor to sign in with.
func (f Factors) Any() bool { return f.TOTP || f.Passkeys > 0 }

// PutTOTP stores a new, unconfirmed TOTP enrolment of a user in place of
// an unconfirmed one; conflict when a confirmed one exists.
func (t *Tx) PutTOTP(x *TOTP) error {
	res, err := t.exec(`UPDATE mfa_totp SET sealed = ?, created_at = ?, last_step = 0 WHERE user_id = ? AND confirmed_at IS NULL`,
		x.Sealed, micros(x.CreatedAt), x.UserID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	_, err = t.exec(`INSERT INTO mfa_totp (user_id, sealed, created_at, last_step) VALUES (?, ?, ?, 0)`, x.UserID, x.Sealed, micros(x.CreatedAt))
	return t.s.conflict(err, "a confirmed TOTP enrolment")
}

// TOTP returns a user's TOTP enrolment, confirmed or not, or not_found.
func (t *Tx) TOTP(userID string) (*TOTP, error) {
	return scanTOTP(t.row(`SELECT user_id, sealed, created_at, confirmed_at, last_step FROM mfa_totp WHERE user_id = ?`+t.forUpdate(), userID))
}

// TOTP returns a user's TOTP enrolment, confirmed or not, or not_found.
func (s *Store) TOTP(ctx context.Context, userID string) (*TOTP, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return scanTOTP(s.readRow(ctx, `SELECT user_id, sealed, created_at, confirmed_at, last_step FROM mfa_totp WHERE user_id = ?`, userID))
}

func scanTOTP(row *sql.Row) (*TOTP, error) {
	var (
		x         TOTP
		created   int64
		confirmed sql.NullInt64
	)
	err := row.Scan(&x.UserID, &x.Sealed, &created, &confirmed, &x.LastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("TOTP enrolment")
	}
	if err != nil {
		return nil, err
	}
	x.CreatedAt, x.Confirmed = fromMicros(created), confirmed.Valid
	return &x, nil
}

// UseTOTPStep records that the code of step was accepted for a user and
// reports whether it was: only when step is later than every step accepted
// before, in one conditional statement, so that of concurrent uses of one
// code exactly one is accepted, on either store. confirm also marks an
// unconfirmed enrolment confirmed at at; without it, an unconfirmed
// enrolment accepts nothing.
func (t *Tx) UseTOTPStep(userID string, step int64, confirm bool, at time.Time) (bool, error) {
	q := `UPDATE mfa_totp SET last_step = ? WHERE user_id = ? AND last_step < ? AND confirmed_at IS NOT NULL`
	args := []any{step, userID, step}
	if confirm {
		q = `UPDATE mfa_totp SET last_step = ?, confirmed_at = ? WHERE user_id = ? AND last_step < ? AND confirmed_at IS NULL`
		args = []any{step, micros(at), userID, step}
	}
	res, err := t.exec(q, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UseTOTPStep is Tx.UseTOTPStep for a confirmed enrolment, in a
// transaction of its own.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) (ok bool, err error) {
	err = s.Update(ctx, func(tx *Tx) error {
		ok, err = tx.UseTOTPStep(userID, step, false, time.Time{})
		return err
	})
	return ok, err
}

// DeleteTOTP removes a user's TOTP enrolment and reports whether there
// was a confirmed one.
func (t *Tx) DeleteTOTP(userID string) (bool, error) {
	var confirmed int
	if err := t.row(`SELECT COUNT(*) FROM mfa_totp WHERE user_id = ? AND confirmed_at IS NOT NULL`, userID).Scan(&confirmed); err != nil {
		return false, err
	}
	_, err := t.exec(`DELETE FROM mfa_totp WHERE user_id = ?`, userID)
	return confirmed == 1, err
}

// ReplaceRecoveryCodes replaces a user's recovery codes by the ones with
// the given digests (none deletes them all).
func (t *Tx) ReplaceRecoveryCodes(userID string, hashes []string, at time.Time) error {
	if _, err := t.exec(`DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := t.exec(`INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`, userID, h, micros(at)); err != nil {
			return err
		}
	}
	return nil
}

// UseRecoveryCode marks the user's unused recovery code with the digest
// used at at and reports whether there was one: one conditional
// statement, so a code is used once however many try it together.
func (t *Tx) UseRecoveryCode(userID, hash string, at time.Time) (bool, error) {
	res, err := t.exec(`UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`, micros(at), userID, hash)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Factors returns what second factors a user has.
func (s *Store) Factors(ctx context.Context, userID string) (Factors, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var f Factors
	var totp int
	err := s.readRow(ctx, `SELECT (SELECT COUNT(*) FROM mfa_totp WHERE user_id = ? AND confirmed_at IS NOT NULL),
		(SELECT COUNT(*) FROM passkeys WHERE user_id = ?),
		(SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL)`, userID, userID, userID).Scan(&totp, &f.Passkeys, &f.RecoveryCodesLeft)
	f.TOTP = totp == 1
	return f, err
}

// ClearFactors removes every second factor (TOTP and passkeys) and
// recovery code of a user and returns how many factors it removed.
func (t *Tx) ClearFactors(userID string) (int, error) {
	had, err := t.DeleteTOTP(userID)
	if err != nil {
		return 0, err
	}
	n, err := t.DeletePasskeys(userID)
	if err != nil {
		return 0, err
	}
	if had {
		n++
	}
	return n, t.ReplaceRecoveryCodes(userID, nil, time.Time{})
}

// HasFactors reports, inside the transaction, whether a user has a
// second factor (a confirmed TOTP enrolment or a passkey).
func (t *Tx) HasFactors(userID string) (bool, error) {
	var n int
	err := t.row(`SELECT (SELECT COUNT(*) FROM mfa_totp WHERE user_id = ? AND confirmed_at IS NOT NULL) + (SELECT COUNT(*) FROM passkeys WHERE user_id = ?)`, userID, userID).Scan(&n)
	return n > 0, err
}

// SignIn is a sign-in waiting for its second factor, stored by the digest
// of its cookie. The epochs are the user's when the password was checked.
type SignIn struct {
	ID                       string
	Hash                     string
	AccountID                string
	UserID                   string
	ClientAddr               string
	CreatedAt                time.Time
	ExpiresAt                time.Time
	UserEpoch, PasswordEpoch int64
}

// CreateSignIn stores a pending sign-in, and deletes the ones that expired
// before it began.
func (t *Tx) CreateSignIn(si *SignIn) error {
	if _, err := t.exec(`DELETE FROM sign_ins WHERE expires_at <= ?`, micros(si.CreatedAt)); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO sign_ins (id, token_hash, account_id, user_id, client_addr, created_at, expires_at, user_epoch, password_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		si.ID, si.Hash, si.AccountID, si.UserID, si.ClientAddr, micros(si.CreatedAt), micros(si.ExpiresAt), si.UserEpoch, si.PasswordEpoch)
	return err
}

// SignInByHash returns the pending sign-in with the cookie digest, or
// not_found.
func (s *Store) SignInByHash(ctx context.Context, hash string) (*SignIn, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		si               SignIn
		created, expires int64
	)
	err := s.readRow(ctx, `SELECT id, token_hash, account_id, user_id, client_addr, created_at, expires_at, user_epoch, password_epoch FROM sign_ins WHERE token_hash = ?`, hash).
		Scan(&si.ID, &si.Hash, &si.AccountID, &si.UserID, &si.ClientAddr, &created, &expires, &si.UserEpoch, &si.PasswordEpoch)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("sign-in")
	}
	if err != nil {
		return nil, err
	}
	si.CreatedAt, si.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &si, nil
}

// TakeSignIn deletes the pending sign-in with id and reports whether it
// was there: of concurrent completions of one sign-in, one takes it.
func (t *Tx) TakeSignIn(id string) (bool, error) {
	res, err := t.exec(`DELETE FROM sign_ins WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeleteSignIns deletes every pending sign-in of a user.
func (t *Tx) DeleteSignIns(userID string) error {
	_, err := t.exec(`DELETE FROM sign_ins WHERE user_id = ?`, userID)
	return err
}

// SealingKey returns the key the server seals TOTP secrets with when no
// token key is configured: 32 random bytes made by the first node that
// asks and kept in the store, so every node of a cluster shares it. A
// copy of the database then holds the key beside what it seals; a
// deployment that sets a token key keeps the key out of the store.
func (s *Store) SealingKey(ctx context.Context) ([]byte, error) {
	var enc string
	rctx, cancel := s.bound(ctx)
	err := s.readRow(rctx, `SELECT value FROM meta WHERE key = 'sealing_key'`).Scan(&enc)
	cancel()
	if err == nil {
		return base64.RawStdEncoding.DecodeString(enc)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	err = s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.exec(`INSERT INTO meta (key, value) VALUES ('sealing_key', ?) ON CONFLICT DO NOTHING`, base64.RawStdEncoding.EncodeToString(fresh)); err != nil {
			return err
		}
		return tx.row(`SELECT value FROM meta WHERE key = 'sealing_key'`).Scan(&enc)
	})
	if err != nil {
		return nil, err
	}
	return base64.RawStdEncoding.DecodeString(enc)
}
