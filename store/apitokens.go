package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

const apiTokenColumns = `id, account_id, name, prefix, token_hash, created_at, last_used_at, scopes, expires_at, enabled, created_by, revoked_at, revoked_reason, canary, line_id, rolled_to`

func scanAPIToken(sc scanner) (*gatehouse.APIToken, error) {
	var (
		t             gatehouse.APIToken
		created       int64
		used, expires sql.NullInt64
		scopes        sql.NullString
		enabled       int
		revoked       sql.NullInt64
		canary        int
	)
	if err := sc.Scan(&t.ID, &t.AccountID, &t.Name, &t.Prefix, &t.Hash, &created, &used, &scopes, &expires, &enabled, &t.CreatedBy,
		&revoked, &t.RevokedReason, &canary, &t.LineID, &t.RolledTo); err != nil {
		return nil, err
	}
	t.RevokedAt, t.Canary = fromNullMicros(revoked), canary != 0
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt = fromMicros(created), fromNullMicros(used), fromNullMicros(expires)
	t.Scopes, t.Enabled = fromNullScopes(scopes), enabled != 0
	return &t, nil
}

// CreateAPIToken stores an API token.
func (t *Tx) CreateAPIToken(k *gatehouse.APIToken) error {
	_, err := t.exec(`INSERT INTO api_tokens (`+apiTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.AccountID, k.Name, k.Prefix, k.Hash, micros(k.CreatedAt), nullMicros(k.LastUsedAt),
		nullScopes(k.Scopes), nullMicros(k.ExpiresAt), boolInt(k.Enabled), k.CreatedBy,
		nullMicros(k.RevokedAt), k.RevokedReason, boolInt(k.Canary), k.LineID, k.RolledTo)
	return t.s.conflict(err, "API token")
}

// APIToken returns an account's API token inside the transaction, locked
// until it ends, or not_found.
func (t *Tx) APIToken(accountID, id string) (*gatehouse.APIToken, error) {
	k, err := scanAPIToken(t.row(`SELECT `+apiTokenColumns+` FROM api_tokens WHERE id = ? AND account_id = ?`+t.forUpdate(), id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("API token")
	}
	return k, err
}

// UpdateAPIToken writes an API token's name, scopes, expiry and enabled
// flag. It is revoking.
func (t *Tx) UpdateAPIToken(k *gatehouse.APIToken) error {
	t.revokes(gatehouse.AccountSubject(k.AccountID))
	res, err := t.exec(`UPDATE api_tokens SET name = ?, scopes = ?, expires_at = ?, enabled = ? WHERE id = ? AND account_id = ?`,
		k.Name, nullScopes(k.Scopes), nullMicros(k.ExpiresAt), boolInt(k.Enabled), k.ID, k.AccountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("API token")
	}
	return nil
}

// APITokens lists an account's API tokens.
func (s *Store) APITokens(ctx context.Context, accountID string, p gatehouse.Page) ([]*gatehouse.APIToken, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n := p.Size()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+listedRolls(apiTokenColumns, "api_tokens")+` FROM api_tokens WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?`),
		accountID, p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanAPIToken, func(t *gatehouse.APIToken) string { return t.ID })
}

// APITokenByHash returns the API token with the digest, or not_found.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (*gatehouse.APIToken, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	t, err := scanAPIToken(s.readRow(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("API token")
	}
	return t, err
}

// DeleteAPIToken deletes an account's API token for good, and with it
// everything minted through it (API tokens, client credentials, API access
// applications, recursively): nothing minted through an API token
// outlives it.
func (t *Tx) DeleteAPIToken(accountID, id string) error {
	t.revokes(gatehouse.AccountSubject(accountID))
	res, err := t.exec(`DELETE FROM api_tokens WHERE id = ? AND account_id = ?`, id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("API token")
	}
	return t.deleteMintedBy(accountID, id)
}

// deleteMintedBy deletes what was minted through API token id.
func (t *Tx) deleteMintedBy(accountID, id string) error {
	rows, err := t.query(`SELECT id FROM api_tokens WHERE created_by = ? AND account_id = ?`, id, accountID)
	if err != nil {
		return err
	}
	var children []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		children = append(children, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, q := range []string{`DELETE FROM client_credentials WHERE created_by = ? AND account_id = ?`,
		`DELETE FROM api_applications WHERE created_by = ? AND account_id = ?`} {
		if _, err := t.exec(q, id, accountID); err != nil {
			return err
		}
	}
	for _, c := range children {
		if err := t.DeleteAPIToken(accountID, c); err != nil {
			return err
		}
	}
	return nil
}

// TouchAPIToken records when an API token was last used.
func (s *Store) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, micros(at), id)
		return err
	})
}

// APITokensCreatedBy lists the account's API tokens that a user made
// (created or rolled, as the audit log records), in id order.
func (s *Store) APITokensCreatedBy(ctx context.Context, accountID, userID string) ([]*gatehouse.APIToken, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+apiTokenColumns+` FROM api_tokens WHERE account_id = ? AND id IN
		(SELECT target_id FROM audit_log WHERE account_id = ? AND actor_id = ? AND action IN (?, ?)) ORDER BY id`),
		accountID, accountID, userID, "api_token.create", "api_token.roll")
	if err != nil {
		return nil, err
	}
	return collectAll(rows, scanAPIToken)
}

// APITokenNameTaken reports, inside the transaction, whether an account
// has another live API token (not expired at now) than except with the
// name, compared as identity.NameKey compares names. Lock the account
// first (Tx.Account) so the answer holds until commit.
func (t *Tx) APITokenNameTaken(accountID, name, except string, now time.Time) (bool, error) {
	return t.nameTaken(name, `SELECT name FROM api_tokens WHERE account_id = ? AND id <> ?
		AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`, accountID, except, micros(now))
}

// APITokenByID returns an account's API token, or not_found.
func (s *Store) APITokenByID(ctx context.Context, accountID, id string) (*gatehouse.APIToken, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	t, err := scanAPIToken(s.readRow(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE id = ? AND account_id = ?`, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("API token")
	}
	return t, err
}

// MintedBy returns the API tokens minted through API token id, and how
// many client credentials and API access applications were.
func (s *Store) MintedBy(ctx context.Context, accountID, id string) ([]*gatehouse.APIToken, int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+apiTokenColumns+` FROM api_tokens WHERE created_by = ? AND account_id = ? ORDER BY id`), id, accountID)
	if err != nil {
		return nil, 0, err
	}
	toks, err := collectAll(rows, scanAPIToken)
	if err != nil {
		return nil, 0, err
	}
	var n int
	err = s.rdb.QueryRowContext(ctx, s.q(`SELECT (SELECT COUNT(*) FROM client_credentials WHERE created_by = ? AND account_id = ?)
		+ (SELECT COUNT(*) FROM api_applications WHERE created_by = ? AND account_id = ?)`), id, accountID, id, accountID).Scan(&n)
	return toks, n, err
}

// CountMinted counts the account's client credentials made through an
// API token.
func (s *Store) CountMinted(ctx context.Context, accountID string) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM client_credentials WHERE created_by <> '' AND account_id = ?`), accountID).Scan(&n)
	return n, err
}

// CountAPITokens counts, inside the transaction, an account's API tokens
// that have not expired at now (the ceiling max_api_tokens_per_account).
// Lock the account first (Tx.Account) so the count holds until commit.
func (t *Tx) CountAPITokens(accountID string, now time.Time) (int, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM api_tokens WHERE account_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
		accountID, micros(now)).Scan(&n)
	return n, err
}

// ReparentMinted makes everything minted through API token from (API
// tokens, client credentials, API access applications) minted through
// to instead: a rolled token's successor takes over what it minted, so
// that those die with the successor, not with the token it replaced. It is
// revoking.
func (t *Tx) ReparentMinted(accountID, from, to string) error {
	t.revokes(gatehouse.AccountSubject(accountID))
	for _, table := range []string{"api_tokens", "client_credentials", "api_applications"} {
		if _, err := t.exec(`UPDATE `+table+` SET created_by = ? WHERE created_by = ? AND account_id = ?`, to, from, accountID); err != nil {
			return err
		}
	}
	return nil
}

// Lineage is the state of the chain of API tokens something was minted
// through: the API token named by its created_by, the token that one was
// minted through, and so on. What was minted works only while every link
// exists, is enabled and has not expired (SPEC §10.8).
type Lineage struct {
	// Complete is false when a link is missing (deleted) or the chain is
	// deeper than MaxLineage.
	Complete bool
	// Enabled is whether every link is enabled.
	Enabled bool
	// ExpiresAt is the earliest expiry of a link (nil: none expires).
	ExpiresAt *time.Time
}

// Live reports whether what the lineage holds up still works at now.
func (l Lineage) Live(now time.Time) bool {
	return l.Complete && l.Enabled && (l.ExpiresAt == nil || now.Before(*l.ExpiresAt))
}

// MaxLineage bounds how many API tokens deep a chain of mintings is
// followed; a deeper chain counts as broken.
const MaxLineage = 32

// lineageSQL follows created_by from one API token up to a token minted
// by nobody, in one statement.
const lineageSQL = `WITH RECURSIVE chain(id, created_by, enabled, expires_at, depth) AS (
	SELECT id, created_by, enabled, expires_at, 1 FROM api_tokens WHERE id = ? AND account_id = ?
	UNION ALL
	SELECT k.id, k.created_by, k.enabled, k.expires_at, chain.depth + 1 FROM api_tokens k JOIN chain ON k.id = chain.created_by
	WHERE k.account_id = ? AND chain.created_by <> '' AND chain.depth < ?)
	SELECT COUNT(*), COALESCE(MIN(enabled), 0), MIN(expires_at),
		COALESCE((SELECT created_by FROM chain ORDER BY depth DESC LIMIT 1), 'missing') FROM chain`

// Lineage reads the chain of API tokens from id (an API token of the
// account) up; id "" is the empty chain, complete.
func (s *Store) Lineage(ctx context.Context, accountID, id string) (Lineage, error) {
	if id == "" {
		return Lineage{Complete: true, Enabled: true}, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		n, enabled int
		expires    sql.NullInt64
		top        string
	)
	if err := s.readRow(ctx, lineageSQL, id, accountID, accountID, MaxLineage).Scan(&n, &enabled, &expires, &top); err != nil {
		return Lineage{}, err
	}
	return Lineage{Complete: n > 0 && top == "", Enabled: enabled != 0, ExpiresAt: fromNullMicros(expires)}, nil
}

// MarkAPITokenRolled records, inside the transaction, that an account's
// API token id was replaced by to in a roll, unless another roll replaced
// it first: it then returns that replacement's id and marks nothing. The
// mark is one conditional update, so of rolls of one token released
// together exactly one marks it, whichever node runs it.
func (t *Tx) MarkAPITokenRolled(accountID, id, to string) (string, error) {
	return t.markRolled("api_tokens", "API token", accountID, id, to)
}

// RolledInto returns the API tokens of an account that a roll replaced
// by token id and that still work (in their overlap), locked until the
// transaction ends. A token is rolled once, so there is at most one
// unless the store was written by hand.
func (t *Tx) RolledInto(accountID, id string, now time.Time) ([]*gatehouse.APIToken, error) {
	rows, err := t.query(`SELECT `+apiTokenColumns+` FROM api_tokens WHERE account_id = ? AND rolled_to = ?
		AND (expires_at IS NULL OR expires_at > ?) ORDER BY id`+t.forUpdate(), accountID, id, micros(now))
	if err != nil {
		return nil, err
	}
	return collectAll(rows, scanAPIToken)
}

// APITokenNameTakenOutsideLine is APITokenNameTaken for a roll of a token
// of line (gatehouse.APIToken.Line): the line's own tokens do not count.
func (t *Tx) APITokenNameTakenOutsideLine(accountID, name, line string, now time.Time) (bool, error) {
	return t.nameTaken(name, `SELECT name FROM api_tokens WHERE account_id = ? AND id <> ? AND line_id <> ?
		AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`, accountID, line, line, micros(now))
}

// CapCredentialExpiry brings the expiry of every API token and client
// credential of the account that expires later than until (or never)
// forward to until, as a revoking change every node's cache follows, and
// returns how many it changed: a lowered max_credential_lifetime_days
// bounds the credentials that exist too.
func (t *Tx) CapCredentialExpiry(accountID string, until time.Time) (int, error) {
	t.revokes(gatehouse.AccountSubject(accountID))
	n := 0
	for _, table := range []string{"api_tokens", "client_credentials"} {
		res, err := t.exec(`UPDATE `+table+` SET expires_at = ? WHERE account_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
			micros(until), accountID, micros(until))
		if err != nil {
			return n, err
		}
		c, _ := res.RowsAffected()
		n += int(c)
	}
	return n, nil
}
