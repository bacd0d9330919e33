package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/identity"
)

const credentialColumns = `id, account_id, user_id, name, client_id, secret_hash, created_at, scopes, expires_at, enabled, created_by, last_used_at, prev_secret_hash, prev_secret_expires_at, revoked_at, revoked_reason, rolled_to`

func scanCredential(sc scanner) (*gatehouse.Credential, error) {
	var (
		c                          gatehouse.Credential
		created                    int64
		expires, used, prevExpires sql.NullInt64
		scopes                     sql.NullString
		enabled                    int
		revoked                    sql.NullInt64
	)
	if err := sc.Scan(&c.ID, &c.AccountID, &c.UserID, &c.Name, &c.ClientID, &c.SecretHash, &created,
		&scopes, &expires, &enabled, &c.CreatedBy, &used, &c.PrevSecretHash, &prevExpires, &revoked, &c.RevokedReason, &c.RolledTo); err != nil {
		return nil, err
	}
	c.RevokedAt = fromNullMicros(revoked)
	c.CreatedAt, c.ExpiresAt, c.LastUsedAt, c.PrevSecretExpiresAt = fromMicros(created), fromNullMicros(expires), fromNullMicros(used), fromNullMicros(prevExpires)
	c.Scopes, c.Enabled = fromNullScopes(scopes), enabled != 0
	return &c, nil
}

// CreateCredential stores a client credential.
func (t *Tx) CreateCredential(c *gatehouse.Credential) error {
	_, err := t.exec(`INSERT INTO client_credentials (`+credentialColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.AccountID, c.UserID, c.Name, c.ClientID, c.SecretHash, micros(c.CreatedAt),
		nullScopes(c.Scopes), nullMicros(c.ExpiresAt), boolInt(c.Enabled), c.CreatedBy, nullMicros(c.LastUsedAt),
		c.PrevSecretHash, nullMicros(c.PrevSecretExpiresAt), nullMicros(c.RevokedAt), c.RevokedReason, c.RolledTo)
	return t.s.conflict(err, "credential")
}

// Credential returns a user's credential inside the transaction, locked
// until it ends, or not_found. It locks what it reads in the lock order
// (ownedCredential).
func (t *Tx) Credential(accountID, userID, id string) (*gatehouse.Credential, error) {
	c, _, err := t.ownedCredential(` AND u.id = ?`, accountID, id, userID)
	return c, err
}

// UpdateCredential writes a credential's name, scopes, expiry, enabled
// flag and secrets. It is revoking.
func (t *Tx) UpdateCredential(c *gatehouse.Credential) error {
	t.revokes(gatehouse.ClientSubject(c.ClientID))
	res, err := t.exec(`UPDATE client_credentials SET name = ?, scopes = ?, expires_at = ?, enabled = ?, secret_hash = ?,
		prev_secret_hash = ?, prev_secret_expires_at = ? WHERE id = ? AND account_id = ?`,
		c.Name, nullScopes(c.Scopes), nullMicros(c.ExpiresAt), boolInt(c.Enabled), c.SecretHash,
		c.PrevSecretHash, nullMicros(c.PrevSecretExpiresAt), c.ID, c.AccountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("credential")
	}
	return nil
}

// TouchCredential records when a client credential was last used.
func (s *Store) TouchCredential(ctx context.Context, id string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE client_credentials SET last_used_at = ? WHERE id = ?`, micros(at), id)
		return err
	})
}

// TouchCredentialByClientID records when a client credential, named by
// its client id, was last used (one of its access tokens); a time earlier
// than the one recorded changes nothing.
func (s *Store) TouchCredentialByClientID(ctx context.Context, clientID string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE client_credentials SET last_used_at = ? WHERE client_id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
			micros(at), clientID, micros(at))
		return err
	})
}

// Credentials lists a user's credentials.
func (s *Store) Credentials(ctx context.Context, accountID, userID string, p gatehouse.Page) ([]*gatehouse.Credential, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n := p.Size()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+listedRolls(credentialColumns, "client_credentials")+` FROM client_credentials
		WHERE account_id = ? AND user_id = ? AND id > ? ORDER BY id LIMIT ?`), accountID, userID, p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanCredential, func(c *gatehouse.Credential) string { return c.ID })
}

// CountCredentials returns how many credentials a user has.
func (s *Store) CountCredentials(ctx context.Context, userID string) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int
	err := s.readRow(ctx, `SELECT COUNT(*) FROM client_credentials WHERE user_id = ?`, userID).Scan(&n)
	return n, err
}

// CountWorkingCredentials returns, inside the transaction, how many of a
// user's credentials still authenticate at now: enabled, not revoked and
// not expired (what DELETE /v1/developers/{id} answers as
// active_credentials).
func (t *Tx) CountWorkingCredentials(userID string, now time.Time) (int, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM client_credentials WHERE user_id = ? AND enabled = 1 AND revoked_at IS NULL
		AND (expires_at IS NULL OR expires_at > ?)`, userID, micros(now)).Scan(&n)
	return n, err
}

// CredentialByClientID returns the credential with the client id, or
// not_found.
func (s *Store) CredentialByClientID(ctx context.Context, clientID string) (*gatehouse.Credential, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c, err := scanCredential(s.readRow(ctx, `SELECT `+credentialColumns+` FROM client_credentials WHERE client_id = ?`, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("credential")
	}
	return c, err
}

// DeleteCredentials deletes a user's credentials — the one with id, or all
// of them when id is "" — and returns how many it deleted. Every token they
// issued stops working: a client-credentials token is valid only while its
// credential exists.
func (t *Tx) DeleteCredentials(accountID, userID, id string, at time.Time) (int, error) {
	if id != "" {
		return t.deleteCredential(accountID, userID, id, at)
	}
	match, args := `account_id = ? AND user_id = ?`, []any{accountID, userID}
	t.revokes(gatehouse.UserSubject(userID))
	// Mark the tokens there now as revoked too, for lists and
	// introspection; validity does not depend on it.
	if _, err := t.exec(`UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL
		AND client_id IN (SELECT client_id FROM client_credentials WHERE `+match+`)`, append([]any{micros(at)}, args...)...); err != nil {
		return 0, err
	}
	res, err := t.exec(`DELETE FROM client_credentials WHERE `+match, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// revokesClient marks the transaction as revoking the client credential
// that match selects; when there is none, the change changes nothing and
// the transaction is not marked.
func (t *Tx) revokesClient(match string, args ...any) error {
	var clientID string
	err := t.row(`SELECT client_id FROM client_credentials WHERE `+match, args...).Scan(&clientID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		t.revokes(gatehouse.ClientSubject(clientID))
	}
	return nil
}

// deleteCredential is DeleteCredentials for one credential: the
// transaction revokes its client id, or, when there is none, changes
// nothing and is not marked.
func (t *Tx) deleteCredential(accountID, userID, id string, at time.Time) (int, error) {
	var clientID string
	q, args := t.s.d.deleteCredentialSQL, []any{accountID, userID, id, micros(at)}
	if q == "" {
		q, args = `DELETE FROM client_credentials WHERE account_id = ? AND user_id = ? AND id = ? RETURNING client_id`, args[:3]
	}
	err := t.row(q, args...).Scan(&clientID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, err
	}
	t.revokes(gatehouse.ClientSubject(clientID))
	if t.s.d.deleteCredentialSQL == "" {
		// Mark the tokens it issued revoked too, for lists and
		// introspection; validity does not depend on it.
		if _, err := t.exec(`UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND client_id = ?`, micros(at), clientID); err != nil {
			return 0, err
		}
	}
	return 1, nil
}

// ownedCredentialSQL is ownedCredential's statement: its arguments are
// the account, the credential and those of and; lock locks its rows.
func ownedCredentialSQL(and, lock string) string {
	return `SELECT ` + prefixed("u.", userColumns) + `, ` + prefixed("c.", credentialColumns) + `
		FROM accounts a, users u, client_credentials c
		WHERE a.id = ? AND c.id = ? AND c.account_id = a.id AND u.id = c.user_id AND u.` + notDeleted + and + lock
}

// AccountCredential returns a credential of the account, whoever owns it,
// and its owner, inside the transaction, both locked until it ends, or
// not_found. It locks what it reads in the lock order (ownedCredential).
func (t *Tx) AccountCredential(accountID, id string) (*gatehouse.Credential, *gatehouse.User, error) {
	return t.ownedCredential(``, accountID, id)
}

// ownedCredential reads the credential id of the account and its owner
// (not deleted), with the further condition and, where the dialect locks
// rows, locks the account shared, then the owner, then the credential: the
// order in which a change of the account or of the user takes them before
// it reaches the user's credentials (docs/design.md, Errors). A credential
// locked before its owner deadlocked with the owner's deletion.
//
// The owner is reached by its key from the credential's user_id, never
// through the account's users: PostgreSQL, without statistics on a small
// users table (it analyses one only after 50 changes), otherwise walked
// every user of the account and looked the credential up once for each.
// That the owner is of the account is checked on what was read.
func (t *Tx) ownedCredential(and string, accountID, id string, args ...any) (*gatehouse.Credential, *gatehouse.User, error) {
	row := t.row(ownedCredentialSQL(and, t.lockInOrder("u, c")), append([]any{accountID, id}, args...)...)
	var u *gatehouse.User
	c, err := scanCredential(rowScanner(func(cd ...any) error {
		var err error
		u, err = scanUser(rowScanner(func(ud ...any) error { return row.Scan(append(ud, cd...)...) }))
		return err
	}))
	if errors.Is(err, sql.ErrNoRows) || err == nil && u.AccountID != accountID {
		return nil, nil, gatehouse.NotFound("credential")
	}
	return c, u, err
}

// CredentialByID returns a credential of the account, whoever owns it, or
// not_found.
func (s *Store) CredentialByID(ctx context.Context, accountID, id string) (*gatehouse.Credential, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c, err := scanCredential(s.readRow(ctx, `SELECT `+credentialColumns+` FROM client_credentials WHERE id = ? AND account_id = ?`, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("credential")
	}
	return c, err
}

// CredentialNameTaken reports, inside the transaction, whether a user has
// another live credential (not expired at now) than except with the
// name, compared as identity.NameKey compares names. Lock the user first
// (Tx.User, or Tx.Credential, which locks the credential's owner) so the
// answer holds until commit.
func (t *Tx) CredentialNameTaken(accountID, userID, name, except string, now time.Time) (bool, error) {
	return t.nameTaken(name, `SELECT name FROM client_credentials WHERE account_id = ? AND user_id = ? AND id <> ?
		AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`, accountID, userID, except, micros(now))
}

// nameTaken reports whether one of the names query selects is name as
// identity.NameKey compares them. The comparison is made here, not by the
// database, whose LOWER folds ASCII only on SQLite and follows the
// database's locale on PostgreSQL.
func (t *Tx) nameTaken(name, query string, args ...any) (bool, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	key := identity.NameKey(name)
	for rows.Next() {
		var other string
		if err := rows.Scan(&other); err != nil {
			return false, err
		}
		if identity.NameKey(other) == key {
			return true, nil
		}
	}
	return false, rows.Err()
}

// CountLiveCredentials counts, inside the transaction, a user's client
// credentials that have not expired at now (the ceiling
// max_credentials_per_user). Lock the user first so the count holds until
// commit.
func (t *Tx) CountLiveCredentials(userID string, now time.Time) (int, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM client_credentials WHERE user_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
		userID, micros(now)).Scan(&n)
	return n, err
}

// MarkCredentialRolled is MarkAPITokenRolled for a client credential that
// a roll replaces with another (one revoked for good; a roll in place
// marks nothing).
func (t *Tx) MarkCredentialRolled(accountID, id, to string) (string, error) {
	return t.markRolled("client_credentials", "credential", accountID, id, to)
}

// listedRolls is columns (ending in rolled_to) for a list of table's
// rows, where a roll whose replacement has been deleted since reads as
// none: such a row may be rolled again (markRolled), and a list offers
// it so.
func listedRolls(columns, table string) string {
	return strings.TrimSuffix(columns, "rolled_to") + `CASE WHEN rolled_to <> '' AND EXISTS (SELECT 1 FROM ` + table +
		` r WHERE r.id = ` + table + `.rolled_to) THEN rolled_to ELSE '' END`
}

// markRolled marks row id of table (API tokens or client credentials, of
// account accountID) replaced by to unless it is already, and returns the
// replacement it had ("" when marked now); not_found (what) without it.
// A replacement deleted since does not count: the mark then moves to to,
// by a conditional update on the replacement it found, so that of rolls
// released together one still wins.
func (t *Tx) markRolled(table, what, accountID, id, to string) (string, error) {
	prev := ""
	for range 4 {
		res, err := t.exec(`UPDATE `+table+` SET rolled_to = ? WHERE id = ? AND account_id = ? AND rolled_to = ?`, to, id, accountID, prev)
		if err != nil {
			return "", err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return "", err
		}
		var cur string
		err = t.row(`SELECT rolled_to FROM `+table+` WHERE id = ? AND account_id = ?`, id, accountID).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return "", gatehouse.NotFound(what)
		} else if err != nil || cur == "" {
			return "", err
		}
		var held int
		if err := t.row(`SELECT COUNT(*) FROM `+table+` WHERE id = ?`, cur).Scan(&held); err != nil || held > 0 {
			return cur, err
		}
		prev = cur
	}
	return "", gatehouse.Errorf(gatehouse.EConflict, "This %s is being rolled; try again", what)
}
