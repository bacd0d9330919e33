package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Third-party applications, their approvals, users' authorizations and
// authorization codes (SPEC §10.3).

const thirdPartyAppColumns = `id, account_id, owner_id, name, type, client_id, secret_hash, prev_secret_hash, prev_secret_expires_at, redirect_uris, scopes, homepage_url, created_at, last_used_at`

func scanThirdPartyApp(sc scanner) (*gatehouse.App, error) {
	var (
		a                 gatehouse.App
		prevExpires, used sql.NullInt64
		scopes            sql.NullString
		redirects         string
		created           int64
	)
	if err := sc.Scan(&a.ID, &a.AccountID, &a.OwnerID, &a.Name, &a.Type, &a.ClientID, &a.SecretHash, &a.PrevSecretHash,
		&prevExpires, &redirects, &scopes, &a.HomepageURL, &created, &used); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(redirects), &a.RedirectURIs); err != nil {
		return nil, err
	}
	a.PrevExpiresAt, a.LastUsedAt, a.CreatedAt = fromNullMicros(prevExpires), fromNullMicros(used), fromMicros(created)
	a.Scopes = fromNullScopes(scopes)
	return &a, nil
}

func redirectsText(uris []string) string {
	if uris == nil {
		uris = []string{}
	}
	b, _ := json.Marshal(uris)
	return string(b)
}

// CreateApp stores an application.
func (t *Tx) CreateApp(a *gatehouse.App) error {
	_, err := t.exec(`INSERT INTO apps (`+thirdPartyAppColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.AccountID, a.OwnerID, a.Name, a.Type, a.ClientID, a.SecretHash, a.PrevSecretHash, nullMicros(a.PrevExpiresAt),
		redirectsText(a.RedirectURIs), nullScopes(a.Scopes), a.HomepageURL, micros(a.CreatedAt), nullMicros(a.LastUsedAt))
	return t.s.conflict(err, "application")
}

// UpdateApp writes an application's name, redirect URIs, scopes, home page
// and secrets. It is revoking (narrower scopes narrow every token at once).
func (t *Tx) UpdateApp(a *gatehouse.App) error {
	t.revokes(gatehouse.ClientSubject(a.ClientID))
	res, err := t.exec(`UPDATE apps SET name = ?, redirect_uris = ?, scopes = ?, homepage_url = ?, secret_hash = ?, prev_secret_hash = ?,
		prev_secret_expires_at = ? WHERE id = ?`, a.Name, redirectsText(a.RedirectURIs), nullScopes(a.Scopes), a.HomepageURL,
		a.SecretHash, a.PrevSecretHash, nullMicros(a.PrevExpiresAt), a.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("application")
	}
	return nil
}

// App returns the application with id or client id, locked until the
// transaction ends, or not_found.
func (t *Tx) App(id string) (*gatehouse.App, error) {
	a, err := scanThirdPartyApp(t.row(`SELECT `+thirdPartyAppColumns+` FROM apps WHERE id = ? OR client_id = ?`+t.forUpdate(), id, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t.registered(id)
	}
	return a, err
}

// DeleteApp deletes an application, its approvals, its authorizations and
// its unused codes; every token it obtained stops working (its parent is
// gone). It is revoking; found is false when there was none.
func (t *Tx) DeleteApp(id string, at time.Time) (found bool, err error) {
	var clientID string
	err = t.row(`SELECT client_id FROM apps WHERE id = ?`, id).Scan(&clientID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	t.revokes(gatehouse.ClientSubject(clientID))
	for _, q := range []string{
		`DELETE FROM apps WHERE id = ?`,
		`DELETE FROM app_approvals WHERE app_id = ?`,
		`DELETE FROM authorizations WHERE app_id = ?`,
	} {
		if _, err := t.exec(q, id); err != nil {
			return false, err
		}
	}
	if _, err := t.exec(`UPDATE auth_codes SET used_at = ? WHERE client_id = ? AND used_at IS NULL`, micros(at), clientID); err != nil {
		return false, err
	}
	_, err = t.exec(`UPDATE tokens SET revoked_at = ? WHERE client_id = ? AND method = ? AND revoked_at IS NULL`,
		micros(at), clientID, string(gatehouse.MethodAuthorizationCode))
	return true, err
}

// AppByClientID returns the application, or the client that registered
// itself (Registered), with clientID, or not_found.
func (s *Store) AppByClientID(ctx context.Context, clientID string) (*gatehouse.App, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	a, err := scanThirdPartyApp(s.readRow(ctx, `SELECT `+thirdPartyAppColumns+` FROM apps WHERE client_id = ?`, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return s.registeredByClientID(ctx, clientID)
	}
	return a, err
}

// AppByID returns the application with id, or not_found.
func (s *Store) AppByID(ctx context.Context, id string) (*gatehouse.App, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	a, err := scanThirdPartyApp(s.readRow(ctx, `SELECT `+thirdPartyAppColumns+` FROM apps WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("application")
	}
	return a, err
}

// Apps lists an account's applications, or, with ownerID, one owner's.
func (s *Store) Apps(ctx context.Context, accountID, ownerID string, p gatehouse.Page) ([]*gatehouse.App, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n := p.Size()
	q, args := `SELECT `+thirdPartyAppColumns+` FROM apps WHERE account_id = ? AND id > ?`, []any{accountID, p.After}
	if ownerID != "" {
		q, args = q+` AND owner_id = ?`, append(args, ownerID)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(q+` ORDER BY id LIMIT ?`), append(args, n+1)...)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanThirdPartyApp, func(a *gatehouse.App) string { return a.ID })
}

// CountApps returns how many applications a user owns, inside the
// transaction.
func (t *Tx) CountApps(ownerID string) (int, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM apps WHERE owner_id = ?`, ownerID).Scan(&n)
	return n, err
}

// TouchApp records when an application was last used; an earlier time
// changes nothing.
func (s *Store) TouchApp(ctx context.Context, clientID, userID string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE apps SET last_used_at = ? WHERE client_id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
			micros(at), clientID, micros(at)); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE registered_clients SET last_used_at = ? WHERE client_id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
			micros(at), clientID, micros(at)); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `UPDATE authorizations SET last_used_at = ? WHERE client_id = ? AND user_id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
			micros(at), clientID, userID, micros(at))
		return err
	})
}

// Approve records that an account's admins approved an application; a
// second approval changes nothing.
func (t *Tx) Approve(accountID, appID, by string, at time.Time) error {
	_, err := t.exec(`INSERT INTO app_approvals (account_id, app_id, approved_by, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id, app_id) DO NOTHING`, accountID, appID, by, micros(at))
	return err
}

// Approved reports whether the account approved the application.
func (t *Tx) Approved(accountID, appID string) (bool, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM app_approvals WHERE account_id = ? AND app_id = ?`, accountID, appID).Scan(&n)
	return n > 0, err
}

// Approved reports whether the account approved the application.
func (s *Store) Approved(ctx context.Context, accountID, appID string) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int
	err := s.readRow(ctx, `SELECT COUNT(*) FROM app_approvals WHERE account_id = ? AND app_id = ?`, accountID, appID).Scan(&n)
	return n > 0, err
}

const authorizationColumns = `g.id, g.account_id, g.user_id, g.app_id, g.client_id, g.scopes, g.created_at, g.last_used_at, COALESCE(a.name, rc.name, '')`

func scanAuthorization(sc scanner) (*gatehouse.Authorization, error) {
	var (
		g       gatehouse.Authorization
		scopes  sql.NullString
		created int64
		used    sql.NullInt64
	)
	if err := sc.Scan(&g.ID, &g.AccountID, &g.UserID, &g.AppID, &g.ClientID, &scopes, &created, &used, &g.Name); err != nil {
		return nil, err
	}
	g.Scopes, g.GrantedAt, g.LastUsedAt = fromNullScopes(scopes), fromMicros(created), fromNullMicros(used)
	return &g, nil
}

// Authorization returns the user's authorization of clientID, or
// not_found.
func (s *Store) Authorization(ctx context.Context, userID, clientID string) (*gatehouse.Authorization, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	g, err := scanAuthorization(s.readRow(ctx, `SELECT `+authorizationColumns+` FROM authorizations g LEFT JOIN apps a ON a.id = g.app_id
		LEFT JOIN registered_clients rc ON rc.id = g.app_id
		WHERE g.user_id = ? AND g.client_id = ?`, userID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("authorization")
	}
	return g, err
}

// Authorizations lists a user's authorizations of applications that
// still exist.
func (s *Store) Authorizations(ctx context.Context, userID string, p gatehouse.Page) ([]*gatehouse.Authorization, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n := p.Size()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+authorizationColumns+` FROM authorizations g LEFT JOIN apps a ON a.id = g.app_id
		LEFT JOIN registered_clients rc ON rc.id = g.app_id
		WHERE g.user_id = ? AND (a.id IS NOT NULL OR rc.id IS NOT NULL) AND g.id > ? ORDER BY g.id LIMIT ?`), userID, p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanAuthorization, func(g *gatehouse.Authorization) string { return g.ID })
}

// Authorize records the user's consent to an application for scopes,
// widening an existing authorization (its grant time stays) or making a
// new one.
func (t *Tx) Authorize(g *gatehouse.Authorization) error {
	res, err := t.exec(`UPDATE authorizations SET scopes = ? WHERE user_id = ? AND client_id = ?`, nullScopes(g.Scopes), g.UserID, g.ClientID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	_, err = t.exec(`INSERT INTO authorizations (id, account_id, user_id, app_id, client_id, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.AccountID, g.UserID, g.AppID, g.ClientID, nullScopes(g.Scopes), micros(g.GrantedAt))
	return t.s.conflict(err, "authorization")
}

// Authorization returns the user's authorization of clientID inside the
// transaction, locked, or not_found.
func (t *Tx) Authorization(userID, clientID string) (*gatehouse.Authorization, error) {
	lock := t.forUpdate()
	if lock != "" {
		lock += " OF g" // not the application's side of the outer joins
	}
	g, err := scanAuthorization(t.row(`SELECT `+authorizationColumns+` FROM authorizations g LEFT JOIN apps a ON a.id = g.app_id
		LEFT JOIN registered_clients rc ON rc.id = g.app_id
		WHERE g.user_id = ? AND g.client_id = ?`+lock, userID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("authorization")
	}
	return g, err
}

// DeleteAuthorization ends the user's authorization of clientID: its
// unused codes, the devices approved under it that have not polled yet
// (denied), and every token it issued stop working, and so does every
// token a rotation of one of its refresh tokens inserts meanwhile: the
// refresh families that can still grow are marked revoked, as
// RevokeTokenFamily marks one. (Marking the tokens alone misses those a
// rotation commits after the marking read the table; the user's next
// consent to the application would then bring them back.) It is
// revoking; found is false when there was none.
func (t *Tx) DeleteAuthorization(userID, clientID string, at time.Time) (found bool, err error) {
	t.revokes(gatehouse.UserSubject(userID))
	// A device the user approved under this authorization and that has not
	// polled yet is denied: a later authorization of the same application
	// is not its. Its row first, as a poll locks it before the
	// authorization.
	if _, err := t.exec(`UPDATE device_codes SET status = ? WHERE user_id = ? AND client_id = ? AND status = ? AND used_at IS NULL`,
		gatehouse.DeviceDenied, userID, clientID, gatehouse.DeviceApproved); err != nil {
		return false, err
	}
	res, err := t.exec(`DELETE FROM authorizations WHERE user_id = ? AND client_id = ?`, userID, clientID)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	if _, err := t.exec(`UPDATE auth_codes SET used_at = ? WHERE user_id = ? AND client_id = ? AND used_at IS NULL`, micros(at), userID, clientID); err != nil {
		return false, err
	}
	if _, err := t.exec(`INSERT INTO revoked_families (family_id, revoked_at) SELECT DISTINCT family_id, CAST(? AS BIGINT) FROM tokens
		WHERE user_id = ? AND client_id = ? AND method = ? AND kind = ? AND revoked_at IS NULL AND expires_at > ?
		ON CONFLICT (family_id) DO NOTHING`, micros(at), userID, clientID, string(gatehouse.MethodAuthorizationCode),
		string(gatehouse.KindRefresh), micros(at)); err != nil {
		return false, err
	}
	_, err = t.exec(`UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND client_id = ? AND method = ? AND revoked_at IS NULL`,
		micros(at), userID, clientID, string(gatehouse.MethodAuthorizationCode))
	return n > 0, err
}

const codeColumns = `id, code_hash, account_id, user_id, client_id, redirect_uri, challenge, scopes, family_id, user_epoch, password_epoch, created_at, expires_at, used_at, resource`

func scanCode(sc scanner) (*gatehouse.AuthCode, error) {
	var (
		c                gatehouse.AuthCode
		scopes           sql.NullString
		created, expires int64
		used             sql.NullInt64
	)
	if err := sc.Scan(&c.ID, &c.Hash, &c.AccountID, &c.UserID, &c.ClientID, &c.RedirectURI, &c.Challenge, &scopes, &c.FamilyID,
		&c.UserEpoch, &c.PasswordEpoch, &created, &expires, &used, &c.Resource); err != nil {
		return nil, err
	}
	c.Scopes, c.CreatedAt, c.ExpiresAt, c.UsedAt = fromNullScopes(scopes), fromMicros(created), fromMicros(expires), fromNullMicros(used)
	return &c, nil
}

// CreateCode stores an authorization code (its digest).
func (t *Tx) CreateCode(c *gatehouse.AuthCode) error {
	_, err := t.exec(`INSERT INTO auth_codes (`+codeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Hash, c.AccountID, c.UserID, c.ClientID, c.RedirectURI, c.Challenge, nullScopes(c.Scopes), c.FamilyID,
		c.UserEpoch, c.PasswordEpoch, micros(c.CreatedAt), micros(c.ExpiresAt), nullMicros(c.UsedAt), c.Resource)
	return err
}

// CodeByHash returns the code with digest hash, or not_found.
func (s *Store) CodeByHash(ctx context.Context, hash string) (*gatehouse.AuthCode, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c, err := scanCode(s.readRow(ctx, `SELECT `+codeColumns+` FROM auth_codes WHERE code_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("code")
	}
	return c, err
}

// UseCode marks code id used at at, if it was not: won is true for exactly
// one of any number of concurrent callers.
func (t *Tx) UseCode(id string, at time.Time) (won bool, err error) {
	res, err := t.exec(`UPDATE auth_codes SET used_at = ? WHERE id = ? AND used_at IS NULL`, micros(at), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
