package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// RevokeAPITokenForGood marks an API token revoked at at with reason,
// unless it already is; it reports whether it changed it. The token is
// kept (listed, rollable) but nothing authenticates with it again:
// UpdateAPIToken never writes these columns. It is also disabled, so that
// a node of the previous release, which knows no revoked_at, refuses it
// too during a rolling upgrade. It is revoking.
func (t *Tx) RevokeAPITokenForGood(accountID, id string, at time.Time, reason string) (bool, error) {
	t.revokes(gatehouse.AccountSubject(accountID))
	res, err := t.exec(`UPDATE api_tokens SET revoked_at = ?, revoked_reason = ?, enabled = 0 WHERE id = ? AND account_id = ? AND revoked_at IS NULL`,
		micros(at), reason, id, accountID)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// RevokeCredentialForGood marks a client credential revoked at at with
// reason, unless it already is (disabled too, for a node of the previous
// release during a rolling upgrade), and marks the tokens it issued revoked
// (for lists and introspection: validity follows the credential); it
// reports whether it changed the credential. It is revoking.
func (t *Tx) RevokeCredentialForGood(accountID, id string, at time.Time, reason string) (bool, error) {
	if err := t.revokesClient(`id = ? AND account_id = ?`, id, accountID); err != nil {
		return false, err
	}
	res, err := t.exec(`UPDATE client_credentials SET revoked_at = ?, revoked_reason = ?, enabled = 0 WHERE id = ? AND account_id = ? AND revoked_at IS NULL`,
		micros(at), reason, id, accountID)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	_, err = t.exec(`UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND method = ?
		AND client_id IN (SELECT client_id FROM client_credentials WHERE id = ? AND account_id = ?)`,
		micros(at), string(gatehouse.MethodClientCredentials), id, accountID)
	return true, err
}

// CredentialBySecretHash returns the client credential whose current
// secret has the digest, or whose rolled-over secret has it and still
// works at now (its overlap not over), or not_found: a secret a roll
// ended is nobody's, and a report of it must not reach the credential
// that replaced it.
func (s *Store) CredentialBySecretHash(ctx context.Context, hash string, now time.Time) (*gatehouse.Credential, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c, err := scanCredential(s.readRow(ctx, `SELECT `+credentialColumns+` FROM client_credentials
		WHERE secret_hash = ? OR (prev_secret_hash = ? AND prev_secret_expires_at > ?) ORDER BY id LIMIT 1`, hash, hash, micros(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("credential")
	}
	return c, err
}

// AppBySecretHash returns the third-party application whose current
// client secret has digest hash, or whose previous one has it and still
// works at now, or not_found (as CredentialBySecretHash).
func (s *Store) AppBySecretHash(ctx context.Context, hash string, now time.Time) (*gatehouse.App, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	a, err := scanThirdPartyApp(s.readRow(ctx, `SELECT `+thirdPartyAppColumns+` FROM apps
		WHERE secret_hash = ? OR (prev_secret_hash = ? AND prev_secret_expires_at > ?) ORDER BY id LIMIT 1`, hash, hash, micros(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("app")
	}
	return a, err
}

// RevokeAppSecret makes the client secret of application id with digest
// hash, current or previous, work no more (its owner rolls a new one),
// and reports whether it still did. The application's grants and tokens
// stay: they were not what leaked.
func (t *Tx) RevokeAppSecret(id, hash string) (bool, error) {
	res, err := t.exec(`UPDATE apps SET
		secret_hash = CASE WHEN secret_hash = ? THEN '' ELSE secret_hash END,
		prev_secret_hash = CASE WHEN prev_secret_hash = ? THEN '' ELSE prev_secret_hash END,
		prev_secret_expires_at = CASE WHEN prev_secret_hash = ? THEN NULL ELSE prev_secret_expires_at END
		WHERE id = ? AND (secret_hash = ? OR prev_secret_hash = ?)`, hash, hash, hash, id, hash, hash)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// EndAppSecrets makes both client secrets of application id, current and
// previous, work no more (its owner rolls a new one), and reports whether
// one still did: a leak re-applied after a restore, when which of them
// leaked is not known.
func (t *Tx) EndAppSecrets(id string) (bool, error) {
	res, err := t.exec(`UPDATE apps SET secret_hash = '', prev_secret_hash = '', prev_secret_expires_at = NULL
		WHERE id = ? AND (secret_hash <> '' OR prev_secret_hash <> '')`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// DeviceByHash returns the device authorization whose device code has
// digest hash, or not_found.
func (s *Store) DeviceByHash(ctx context.Context, hash string) (*gatehouse.DeviceCode, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	d, err := scanDevice(s.readRow(ctx, `SELECT `+deviceColumns+` FROM device_codes WHERE device_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("device code")
	}
	return d, err
}

// EndSession deletes a session inside the transaction and reports whether
// it was there.
func (t *Tx) EndSession(id string) (bool, error) {
	t.revokes(gatehouse.CredentialSubject(id))
	res, err := t.exec(`DELETE FROM sessions WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
