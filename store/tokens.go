package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// insertTokenSQL stores one token; it is on the hot path, so the batch
// writer prepares it.
const insertTokenSQL = `INSERT INTO tokens (id, account_id, user_id, kind, token_hash, method, client_id, family_id, expires_at, used_at, revoked_at, created_at, user_epoch, password_epoch, scopes, resource)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const tokenColumns = `t.id, t.account_id, t.user_id, t.kind, t.token_hash, t.method, t.client_id, t.family_id, t.expires_at, t.used_at, t.revoked_at, t.created_at, t.user_epoch, t.password_epoch, t.scopes, t.resource`

func scanToken(sc scanner, extra ...any) (*gatehouse.Token, error) {
	var (
		t                gatehouse.Token
		kind, method     string
		expires, created int64
		used, revoked    sql.NullInt64
		scopes           sql.NullString
	)
	dst := append([]any{&t.ID, &t.AccountID, &t.UserID, &kind, &t.Hash, &method, &t.ClientID, &t.FamilyID, &expires, &used, &revoked, &created,
		&t.UserEpoch, &t.PasswordEpoch, &scopes, &t.Resource}, extra...)
	if err := sc.Scan(dst...); err != nil {
		return nil, err
	}
	t.Scopes = fromNullScopes(scopes)
	t.Kind, t.Method = gatehouse.TokenKind(kind), gatehouse.AuthMethod(method)
	t.ExpiresAt, t.CreatedAt = fromMicros(expires), fromMicros(created)
	t.UsedAt, t.RevokedAt = fromNullMicros(used), fromNullMicros(revoked)
	return &t, nil
}

func (s *Store) insertTokens(ctx context.Context, tx *sql.Tx, toks ...*gatehouse.Token) error {
	for _, t := range toks {
		if _, err := s.exec(ctx, tx, insertTokenSQL, tokenArgs(nil, t)...); err != nil {
			return err
		}
	}
	return nil
}

// tokenArgs appends the values of insertTokenSQL's placeholders for t.
func tokenArgs(args []any, t *gatehouse.Token) []any {
	return append(args, t.ID, t.AccountID, t.UserID, string(t.Kind), t.Hash, string(t.Method), t.ClientID, t.FamilyID,
		micros(t.ExpiresAt), nullMicros(t.UsedAt), nullMicros(t.RevokedAt), micros(t.CreatedAt), t.UserEpoch, t.PasswordEpoch,
		nullScopes(t.Scopes), t.Resource)
}

// insertTokensHead and tokenRow make up a many-row insert of tokens.
const (
	insertTokensHead = `INSERT INTO tokens (id, account_id, user_id, kind, token_hash, method, client_id, family_id, expires_at, used_at, revoked_at, created_at, user_epoch, password_epoch, scopes, resource) VALUES `
	tokenRow         = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// maxTokenRows bounds one statement's rows (16 values each, within
	// both databases' limits on placeholders).
	maxTokenRows = 128
)

// insertTokenRows stores toks with as few statements as it can: one per
// maxTokenRows tokens, so that a group of issued tokens costs the batch
// writer one round trip to PostgreSQL, not one per token.
func (s *Store) insertTokenRows(ctx context.Context, tx *sql.Tx, toks []*gatehouse.Token) error {
	if len(toks) == 1 {
		return s.insertTokens(ctx, tx, toks...) // the prepared statement
	}
	for len(toks) > 0 {
		n := min(len(toks), maxTokenRows)
		var q strings.Builder
		q.WriteString(insertTokensHead)
		args := make([]any, 0, 16*n)
		for i, t := range toks[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(tokenRow)
			args = tokenArgs(args, t)
		}
		if _, err := tx.ExecContext(ctx, s.q(q.String()), args...); err != nil {
			return err
		}
		toks = toks[n:]
	}
	return nil
}

// CreateTokens stores issued tokens (for example an access token and its
// refresh token) in one group-committed transaction: durable against a
// process crash, not against power loss (synchronous=NORMAL on SQLite),
// which is harmless for a token nobody has received yet. The tokens of a
// group are inserted together (insertTokenRows).
func (s *Store) CreateTokens(ctx context.Context, toks ...*gatehouse.Token) error {
	return s.queue(ctx, writeOp{tokens: toks, fn: func(ctx context.Context, tx *sql.Tx) error { return s.insertTokens(ctx, tx, toks...) }})
}

// CreateTokens stores issued tokens inside the transaction.
func (t *Tx) CreateTokens(toks ...*gatehouse.Token) error {
	return t.s.insertTokens(t.ctx, t.tx, toks...)
}

// IssuedToken is a stored token with everything that decides whether it
// still works: its user and account, its parent (the client credential or
// API access application named by its client id) and whether its refresh
// family was revoked.
type IssuedToken struct {
	*gatehouse.Token
	User          *gatehouse.User
	Account       *gatehouse.Account
	Parent        Parent
	FamilyRevoked bool
}

// Parent is the state of what an issued token comes from. Tokens of the
// password grant have no parent row: Live and Enabled, unrestricted.
type Parent struct {
	Live, Enabled bool
	ExpiresAt     *time.Time
	// Scopes are the parent's current scopes (nil: unrestricted).
	Scopes gatehouse.Scopes
	// ID is the credential's id or the application's client id.
	ID string
	// AccountID is, for a third-party application, the account that
	// publishes it (where its plan is kept), which may not be the
	// token's; "" for every other parent.
	AccountID string
	// PublisherSuspended is, for a third-party application, whether the
	// account that publishes it is suspended; Approved whether the token's
	// account has approved the application; OwnerActive whether the
	// developer who registered it is an active user.
	PublisherSuspended, Approved, OwnerActive bool
	// MintedBy is the API token the parent was minted through ("" for
	// none), and Lineage the state of that token's chain: the parent, and
	// every token it issued, works only while the chain is live and the
	// account's API tokens extension is on.
	MintedBy string
	Lineage  Lineage
}

// tokenByHashSQL reads a token with its user, account, parent and family
// in one statement.
var tokenByHashSQL = `SELECT ` + tokenColumns + `, ` + prefixed("u.", userColumns) + `, ` + prefixed("a.", accountColumns) + `,
	c.id, CASE WHEN c.revoked_at IS NULL THEN c.enabled ELSE 0 END, c.expires_at, c.scopes, c.created_by, p.client_id, p.scopes, p.created_by,
	(SELECT COUNT(*) FROM revoked_families f WHERE f.family_id = t.family_id), COALESCE(ta.client_id, rc.client_id),
	CASE WHEN ta.client_id IS NULL THEN rc.scopes ELSE ta.scopes END, g.id, g.scopes, ta.account_id, pa.status, ou.status,
	CASE WHEN COALESCE(ta.id, rc.id) IS NULL THEN 0 ELSE
		(SELECT COUNT(*) FROM app_approvals ap WHERE ap.account_id = t.account_id AND ap.app_id = COALESCE(ta.id, rc.id)) END
	FROM tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = t.account_id
	LEFT JOIN client_credentials c ON t.method = '` + string(gatehouse.MethodClientCredentials) + `' AND c.client_id = t.client_id
	LEFT JOIN api_applications p ON t.method = '` + string(gatehouse.MethodAPIAccess) + `' AND p.client_id = t.client_id
	LEFT JOIN apps ta ON t.method = '` + string(gatehouse.MethodAuthorizationCode) + `' AND ta.client_id = t.client_id
	LEFT JOIN accounts pa ON pa.id = ta.account_id
	LEFT JOIN users ou ON ou.id = ta.owner_id
	LEFT JOIN registered_clients rc ON t.method = '` + string(gatehouse.MethodAuthorizationCode) + `' AND rc.client_id = t.client_id
	LEFT JOIN authorizations g ON t.method = '` + string(gatehouse.MethodAuthorizationCode) + `' AND g.user_id = t.user_id
		AND g.client_id = t.client_id AND g.created_at <= t.created_at
	WHERE t.token_hash = ?`

// TokenByHash returns the token with the given digest and what decides its
// validity, or not_found. It decides nothing itself.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*IssuedToken, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	row := s.readRow(ctx, tokenByHashSQL, hash)
	var (
		it                   IssuedToken
		family               int
		credID, appClient    sql.NullString
		credScopes, appScope sql.NullString
		credEnabled          sql.NullInt64
		credExpires          sql.NullInt64
		credBy, appBy        sql.NullString
		tpClient, tpScopes   sql.NullString
		grantID, grantScopes sql.NullString
		tpAccount, pubStatus sql.NullString
		ownerStatus          sql.NullString
		approvals            int
		err                  error
	)
	it.Token, err = scanToken(rowScanner(func(tokenDst ...any) error {
		var userErr error
		it.User, userErr = scanUser(rowScanner(func(userDst ...any) error {
			var accErr error
			it.Account, accErr = scanAccount(rowScanner(func(accDst ...any) error {
				return row.Scan(append(append(append(tokenDst, userDst...), accDst...),
					&credID, &credEnabled, &credExpires, &credScopes, &credBy, &appClient, &appScope, &appBy, &family,
					&tpClient, &tpScopes, &grantID, &grantScopes, &tpAccount, &pubStatus, &ownerStatus, &approvals)...)
			}))
			return accErr
		}))
		return userErr
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("token")
	}
	if err != nil {
		return nil, err
	}
	switch it.Method {
	case gatehouse.MethodClientCredentials:
		it.Parent = Parent{Live: credID.Valid, Enabled: credEnabled.Int64 != 0, ExpiresAt: fromNullMicros(credExpires),
			Scopes: fromNullScopes(credScopes), ID: credID.String, MintedBy: credBy.String}
	case gatehouse.MethodAPIAccess:
		it.Parent = Parent{Live: appClient.Valid, Enabled: true, Scopes: fromNullScopes(appScope), ID: appClient.String, MintedBy: appBy.String}
	case gatehouse.MethodAuthorizationCode:
		// A third-party application's token works while the application
		// exists and the user's authorization, given no later than the
		// token was issued, does; it allows what both allow today.
		it.Parent = Parent{Live: tpClient.Valid && grantID.Valid, Enabled: true, ID: tpClient.String, AccountID: tpAccount.String,
			Scopes:             fromNullScopes(tpScopes).Intersect(fromNullScopes(grantScopes)),
			PublisherSuspended: gatehouse.AccountStatus(pubStatus.String) == gatehouse.AccountSuspended, Approved: approvals > 0,
			OwnerActive: gatehouse.UserStatus(ownerStatus.String) == gatehouse.StatusActive}
	default:
		it.Parent = Parent{Live: true, Enabled: true}
	}
	it.FamilyRevoked = family > 0
	// Read after the token and its parent: a revoking change of the chain
	// that committed before this read is seen here.
	if it.Parent.Lineage, err = s.Lineage(ctx, it.AccountID, it.Parent.MintedBy); err != nil {
		return nil, err
	}
	return &it, nil
}

// RevokeToken marks one token revoked; revoking a revoked token is a no-op.
func (t *Tx) RevokeToken(id string, at time.Time) error {
	_, err := t.RevokeLiveToken(id, at)
	return err
}

// RevokeLiveToken is RevokeToken reporting whether it revoked anything (a
// token revoked already, or by a transaction that committed while this
// one waited for its row, is not revoked again): the change is audited
// once, however many revoke it at once.
func (t *Tx) RevokeLiveToken(id string, at time.Time) (bool, error) {
	t.revokes(gatehouse.CredentialSubject(id))
	res, err := t.exec(`UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(at), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// RevokeTokenFamily revokes every token of a refresh lineage, including any
// a concurrent rotation is inserting: the family itself is marked.
func (t *Tx) RevokeTokenFamily(familyID string, at time.Time) error {
	_, err := t.RevokeLiveFamily(familyID, at)
	return err
}

// RevokeLiveFamily is RevokeTokenFamily reporting whether the lineage was
// live until now (its mark new), as RevokeLiveToken does.
func (t *Tx) RevokeLiveFamily(familyID string, at time.Time) (bool, error) {
	marked, err := t.markFamilyRevoked(familyID, at)
	if err != nil {
		return false, err
	}
	_, err = t.exec(`UPDATE tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`, micros(at), familyID)
	return marked, err
}

// markFamilyRevoked marks a refresh lineage revoked: every rule that
// judges a token of it (validity, a refresh's use, the live counts) reads
// the mark, so its tokens stop working without their rows being written.
// It reports whether the mark is new.
func (t *Tx) markFamilyRevoked(familyID string, at time.Time) (bool, error) {
	t.revokes(gatehouse.FamilySubject(familyID))
	res, err := t.exec(`INSERT INTO revoked_families (family_id, revoked_at) VALUES (?, ?) ON CONFLICT (family_id) DO NOTHING`,
		familyID, micros(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
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

// TokenFilter chooses the tokens LiveTokens counts: a user's, or those of
// one client id (a client credential or an API access application).
type TokenFilter struct {
	UserID, ClientID string
}

// LiveTokens counts the issued tokens matching f that still work at now,
// by how they were obtained: not revoked, expired or used, of an active
// user and issued under the user's current epochs, and not of a revoked
// refresh family. (What an issued token comes from is checked again on
// every use; this count is for people deciding on a change.)
func (s *Store) LiveTokens(ctx context.Context, f TokenFilter, now time.Time) (map[gatehouse.AuthMethod]int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	where, args := `t.revoked_at IS NULL AND t.expires_at > ?`, []any{micros(now)}
	if f.UserID != "" {
		where, args = where+` AND t.user_id = ?`, append(args, f.UserID)
	}
	if f.ClientID != "" {
		where, args = where+` AND t.client_id = ?`, append(args, f.ClientID)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT t.method, COUNT(*) FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE `+where+` AND u.status = ? AND t.user_epoch = u.epoch
		AND (t.method <> ? OR t.password_epoch = u.password_epoch)
		AND (t.kind <> ? OR t.used_at IS NULL)
		AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = t.family_id)
		GROUP BY t.method`), append(args, string(gatehouse.StatusActive), string(gatehouse.MethodPassword), string(gatehouse.KindRefresh))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[gatehouse.AuthMethod]int{}
	for rows.Next() {
		var (
			method string
			n      int
		)
		if err := rows.Scan(&method, &n); err != nil {
			return nil, err
		}
		out[gatehouse.AuthMethod(method)] = n
	}
	return out, rows.Err()
}

// TokenFamily returns the kind and refresh family of the token with id,
// and whether it is revoked (itself or its family), or not_found.
func (t *Tx) TokenFamily(id string) (kind gatehouse.TokenKind, familyID string, revoked bool, err error) {
	var (
		k       string
		at      sql.NullInt64
		revFams int
	)
	err = t.row(`SELECT kind, family_id, revoked_at, (SELECT COUNT(*) FROM revoked_families f WHERE f.family_id = tokens.family_id)
		FROM tokens WHERE id = ?`, id).Scan(&k, &familyID, &at, &revFams)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, gatehouse.NotFound("token")
	}
	return gatehouse.TokenKind(k), familyID, at.Valid || revFams > 0, err
}

// FamilyRevoked reports whether the refresh family is revoked.
func (t *Tx) FamilyRevoked(familyID string) (bool, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM revoked_families WHERE family_id = ?`, familyID).Scan(&n)
	return n > 0, err
}

// RevokeClientFamilies revokes, inside the transaction, every refresh
// lineage of client clientID (an API access application's) except keep:
// the lineages a reissue replaces. It marks each lineage and writes none
// of its tokens' rows, so that it takes no lock a refresh of the lineage
// holds while waiting for the user's row, which the reissue holds (a
// refresh in flight stores tokens of a lineage that is marked already,
// dead on arrival). It returns how many it revoked.
func (t *Tx) RevokeClientFamilies(clientID, keep string, at time.Time) (int, error) {
	rows, err := t.query(`SELECT DISTINCT family_id FROM tokens WHERE client_id = ? AND family_id <> '' AND family_id <> ?
		AND family_id NOT IN (SELECT family_id FROM revoked_families)`, clientID, keep)
	if err != nil {
		return 0, err
	}
	var families []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			rows.Close()
			return 0, err
		}
		families = append(families, f)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	for _, f := range families {
		if _, err := t.markFamilyRevoked(f, at); err != nil {
			return 0, err
		}
	}
	return len(families), nil
}
