package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// SSOConfig is an account's OpenID Connect provider as stored: the client
// secret sealed under the server key.
type SSOConfig struct {
	AccountID    string
	Issuer       string
	ClientID     string
	SealedSecret string
	Domains      []string
	Required     bool
	UpdatedAt    time.Time
}

const ssoColumns = `account_id, issuer, client_id, sealed_secret, domains, required, updated_at`

func scanSSOConfig(sc scanner) (*SSOConfig, error) {
	var (
		c        SSOConfig
		domains  string
		required int
		updated  int64
	)
	if err := sc.Scan(&c.AccountID, &c.Issuer, &c.ClientID, &c.SealedSecret, &domains, &required, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, gatehouse.NotFound("single sign-on")
		}
		return nil, err
	}
	if err := json.Unmarshal([]byte(domains), &c.Domains); err != nil {
		return nil, err
	}
	c.Required = required != 0
	c.UpdatedAt = fromMicros(updated)
	return &c, nil
}

// SSOConfig returns the single sign-on of an account, or not_found.
func (s *Store) SSOConfig(ctx context.Context, accountID string) (*SSOConfig, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return scanSSOConfig(s.readRow(ctx, `SELECT `+ssoColumns+` FROM sso_configs WHERE account_id = ?`, accountID))
}

// SSOConfigs returns the single sign-on of every account, for finding the
// account of an e-mail domain.
func (s *Store) SSOConfigs(ctx context.Context) ([]*SSOConfig, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+ssoColumns+` FROM sso_configs ORDER BY account_id`))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*SSOConfig
	for rows.Next() {
		c, err := scanSSOConfig(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SSOConfig returns, inside the transaction and locked until it ends, the
// single sign-on of an account, or not_found.
func (t *Tx) SSOConfig(accountID string) (*SSOConfig, error) {
	return scanSSOConfig(t.row(`SELECT `+ssoColumns+` FROM sso_configs WHERE account_id = ?`+t.forUpdate(), accountID))
}

// PutSSOConfig stores an account's single sign-on, replacing the one it had.
func (t *Tx) PutSSOConfig(c *SSOConfig) error {
	domains, err := json.Marshal(c.Domains)
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO sso_configs (`+ssoColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
		sealed_secret = excluded.sealed_secret, domains = excluded.domains, required = excluded.required,
		updated_at = excluded.updated_at`,
		c.AccountID, c.Issuer, c.ClientID, c.SealedSecret, string(domains), boolInt(c.Required), micros(c.UpdatedAt))
	return err
}

// DeleteSSOConfig removes an account's single sign-on and the sign-ins of
// it under way.
func (t *Tx) DeleteSSOConfig(accountID string) error {
	if _, err := t.exec(`DELETE FROM sso_logins WHERE account_id = ?`, accountID); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM sso_configs WHERE account_id = ?`, accountID)
	return err
}

// SSOLogin is a sign-in sent to an account's OpenID provider: the digests
// of the state it carries and of the browser's cookie.
type SSOLogin struct {
	ID         string
	StateHash  string
	CookieHash string
	AccountID  string
	ClientAddr string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// CreateSSOLogin stores a sign-in sent to a provider, and deletes the ones
// that expired before it began.
func (t *Tx) CreateSSOLogin(l *SSOLogin) error {
	if _, err := t.exec(`DELETE FROM sso_logins WHERE expires_at <= ?`, micros(l.CreatedAt)); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO sso_logins (id, state_hash, cookie_hash, account_id, client_addr, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.StateHash, l.CookieHash, l.AccountID, l.ClientAddr, micros(l.CreatedAt), micros(l.ExpiresAt))
	return err
}

// TakeSSOLogin deletes and returns the sign-in whose state has the digest
// stateHash, or not_found: of concurrent callbacks with one state, one
// takes it, and a state never works twice.
func (t *Tx) TakeSSOLogin(stateHash string) (*SSOLogin, error) {
	var (
		l                SSOLogin
		created, expires int64
	)
	err := t.row(`DELETE FROM sso_logins WHERE state_hash = ? RETURNING id, state_hash, cookie_hash, account_id, client_addr, created_at, expires_at`, stateHash).
		Scan(&l.ID, &l.StateHash, &l.CookieHash, &l.AccountID, &l.ClientAddr, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("single sign-on")
	}
	if err != nil {
		return nil, err
	}
	l.CreatedAt, l.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &l, nil
}
