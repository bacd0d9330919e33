package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// notDeleted is the condition that hides deleted users from every read
// by id, address or list (gatehouse.StatusDeleted).
const notDeleted = `status <> 'deleted'`

const userColumns = `id, account_id, email, name, status, roles, operator, password_hash, epoch, password_epoch, created_at, updated_at`

func scanUser(sc scanner) (*gatehouse.User, error) {
	var (
		u                gatehouse.User
		status, roles    string
		operator         int
		created, updated int64
	)
	if err := sc.Scan(&u.ID, &u.AccountID, &u.Email, &u.Name, &status, &roles, &operator, &u.PasswordHash,
		&u.Epoch, &u.PasswordEpoch, &created, &updated); err != nil {
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

// CreateUser stores a new user. It returns a conflict error if the e-mail
// is already taken anywhere on the server, compared case-insensitively.
func (t *Tx) CreateUser(u *gatehouse.User) error {
	_, err := t.exec(`INSERT INTO users (id, account_id, email, email_key, name, status, roles, operator, password_hash, epoch, password_epoch, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.AccountID, u.Email, gatehouse.EmailKey(u.Email), u.Name, string(u.Status), u.Roles.String(),
		boolInt(u.Operator), u.PasswordHash, u.Epoch, u.PasswordEpoch, micros(u.CreatedAt), micros(u.UpdatedAt))
	return t.s.conflict(err, "a user with this email")
}

// User returns a user of the given account, or not_found; users of other
// accounts are not found.
func (s *Store) User(ctx context.Context, accountID, id string) (*gatehouse.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := scanUser(s.readRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ? AND account_id = ? AND `+notDeleted, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("user")
	}
	return u, err
}

// User returns a user of the given account inside the transaction, locked
// until it ends, or not_found.
func (t *Tx) User(accountID, id string) (*gatehouse.User, error) {
	return t.user(accountID, id, t.forUpdate())
}

// UserUnlocked returns a user of the given account inside the
// transaction, as committed when the statement runs, without locking it,
// or not_found.
func (t *Tx) UserUnlocked(accountID, id string) (*gatehouse.User, error) {
	return t.user(accountID, id, "")
}

// user reads a user of the account (not deleted) with the suffix lock.
func (t *Tx) user(accountID, id, lock string) (*gatehouse.User, error) {
	u, err := scanUser(t.row(`SELECT `+userColumns+` FROM users WHERE id = ? AND account_id = ? AND `+notDeleted+lock, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("user")
	}
	return u, err
}

// UserByEmail returns the user with the given e-mail in any account,
// compared case-insensitively, or not_found.
func (s *Store) UserByEmail(ctx context.Context, email string) (*gatehouse.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := scanUser(s.readRow(ctx, `SELECT `+userColumns+` FROM users WHERE email_key = ?`, gatehouse.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("user")
	}
	return u, err
}

// UserByEmail returns the user with the given e-mail inside the
// transaction, locked until it ends, or not_found.
func (t *Tx) UserByEmail(email string) (*gatehouse.User, error) {
	u, err := scanUser(t.row(`SELECT `+userColumns+` FROM users WHERE email_key = ?`+t.forUpdate(), gatehouse.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("user")
	}
	return u, err
}

// Users lists the users of an account in id order.
func (s *Store) Users(ctx context.Context, accountID string, p gatehouse.Page) ([]*gatehouse.User, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	users, c, err := s.FindUsers(ctx, accountID, gatehouse.UserFilter{}, p)
	return users, c.Next, err
}

// userFilter returns the conditions and arguments of f, after the
// account's. The query is a prefix of the e-mail address or of the name in
// any case, matched as a range of the lowercased column so that an index
// serves it on both stores (migration 0008_user_search): every string that
// begins with q sorts, byte-wise, from q to q followed by the highest code
// point.
func (s *Store) userFilter(accountID string, f gatehouse.UserFilter) (string, []any) {
	where, args := `account_id = ? AND `+notDeleted, []any{accountID}
	if f.Query != "" {
		// The address's key is lowered in Go (gatehouse.EmailKey), the
		// name's by the database (nameKey, lowerQuery).
		lo, name := strings.ToLower(f.Query), s.d.lowerQuery(f.Query)
		where += ` AND ((email_key >= ? AND email_key < ?) OR (` + s.d.nameKey + ` >= ? AND ` + s.d.nameKey + ` < ?))`
		args = append(args, lo, lo+string(utf8.MaxRune), name, name+string(utf8.MaxRune))
	}
	switch f.Role {
	case "":
	case gatehouse.RoleMember:
		where += ` AND roles = ?`
		args = append(args, "")
	default:
		// roles is a comma-separated list: match one whole element.
		where += ` AND ',' || roles || ',' LIKE ?`
		args = append(args, "%,"+likeEscaper.Replace(string(f.Role))+",%")
	}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	return where, args
}

// likeEscaper escapes the LIKE wildcards of a search text ('!' is the
// escape character).
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

// FindUsers lists the users of an account that match f, one page in id
// order: the query matches the beginning of the e-mail address or of the
// name in any case, the role one whole role (or no role for gatehouse.RoleMember).
func (s *Store) FindUsers(ctx context.Context, accountID string, f gatehouse.UserFilter, p gatehouse.Page) ([]*gatehouse.User, gatehouse.Cursors, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, k := p.Size(), pageKeyset(p, false)
	where, args := s.userFilter(accountID, f)
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE `+where+` AND `+k.cond+` `+k.order+` LIMIT ?`),
		append(args, k.arg, n+1)...)
	if err != nil {
		return nil, gatehouse.Cursors{}, err
	}
	return collectPage(rows, n, k, p, scanUser, func(u *gatehouse.User) string { return u.ID })
}

// CountUsers counts the users of an account that match f (see FindUsers).
func (s *Store) CountUsers(ctx context.Context, accountID string, f gatehouse.UserFilter) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	where, args := s.userFilter(accountID, f)
	var n int
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM users WHERE `+where), args...).Scan(&n)
	return n, err
}

// CountActiveAdmins counts the account's active users with the admin role,
// inside the transaction (lock the account first to keep it true until
// commit).
func (t *Tx) CountActiveAdmins(accountID string) (int, error) {
	rows, err := t.query(activeRolesSQL, accountID, string(gatehouse.StatusActive))
	return countAdmins(rows, err)
}

// CountActiveAdmins counts the account's active users with the admin role.
func (s *Store) CountActiveAdmins(ctx context.Context, accountID string) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(activeRolesSQL), accountID, string(gatehouse.StatusActive))
	return countAdmins(rows, err)
}

const activeRolesSQL = `SELECT roles FROM users WHERE account_id = ? AND status = ?`

func countAdmins(rows *sql.Rows, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var roles string
		if err := rows.Scan(&roles); err != nil {
			return 0, err
		}
		if gatehouse.ParseRoles(roles).Has(gatehouse.RoleAdmin) {
			n++
		}
	}
	return n, rows.Err()
}

// UpdateUser writes u's name, e-mail, status, roles, operator flag,
// password hash and epochs. It is revoking: the user's cached credentials
// are looked up again, and, when their status changes, the tokens of the
// third-party applications they registered.
func (t *Tx) UpdateUser(u *gatehouse.User) error {
	t.revokes(gatehouse.UserSubject(u.ID))
	if err := t.revokesAppsOnStatus(`SELECT status FROM users WHERE id = ?`, string(u.Status), "owner_id", u.ID); err != nil {
		return err
	}
	res, err := t.exec(`UPDATE users SET email = ?, email_key = ?, name = ?, status = ?, roles = ?, operator = ?, password_hash = ?,
		epoch = ?, password_epoch = ?, updated_at = ? WHERE id = ? AND account_id = ?`,
		u.Email, gatehouse.EmailKey(u.Email), u.Name, string(u.Status), u.Roles.String(), boolInt(u.Operator), u.PasswordHash,
		u.Epoch, u.PasswordEpoch, micros(u.UpdatedAt), u.ID, u.AccountID)
	if err != nil {
		return t.s.conflict(err, "a user with this email")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("user")
	}
	return nil
}

// EndPasswordUse ends, for every user of the account but the operator,
// what a sign-in began — their password-grant tokens, console sessions
// and pending sign-ins — by advancing their password epochs, as of at. It
// is revoking (the whole account's cached principals).
func (t *Tx) EndPasswordUse(accountID string, at time.Time) error {
	t.revokes(gatehouse.AccountSubject(accountID))
	if _, err := t.exec(`UPDATE users SET password_epoch = password_epoch + 1, updated_at = ? WHERE account_id = ? AND operator = 0 AND `+notDeleted,
		micros(at), accountID); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM sign_ins WHERE account_id = ? AND user_id IN (SELECT id FROM users WHERE account_id = ? AND operator = 0)`, accountID, accountID)
	return err
}

// DeletedEmailKey is the address key a deleted user's row keeps: it frees
// the address (no address, which always holds "@", has this key) and stays
// unique.
func DeletedEmailKey(id string) string { return "deleted:" + id }

// DeleteUser deletes user u of its account as of at: the row stays under
// its id with status deleted, no roles, no password and both epochs
// advanced (every token and session of the user stops working, and any
// issued while this commits), its address freed (DeletedEmailKey), the
// user leaves every workspace, and their second factors — TOTP enrolment,
// passkeys, recovery codes (ClearFactors) — are deleted with them. It
// returns not_found when u is not there or deleted already. It is revoking. The caller deletes the user's
// client credentials and API access application in the same transaction.
func (t *Tx) DeleteUser(u *gatehouse.User, at time.Time) error {
	t.revokes(gatehouse.UserSubject(u.ID))
	if err := t.revokesApps("owner_id", u.ID); err != nil {
		return err
	}
	res, err := t.exec(`UPDATE users SET status = ?, email_key = ?, roles = '', operator = 0, password_hash = '',
		epoch = epoch + 1, password_epoch = password_epoch + 1, updated_at = ? WHERE id = ? AND account_id = ? AND `+notDeleted,
		string(gatehouse.StatusDeleted), DeletedEmailKey(u.ID), micros(at), u.ID, u.AccountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("user")
	}
	if _, err = t.exec(`DELETE FROM workspace_members WHERE user_id = ?`, u.ID); err != nil {
		return err
	}
	_, err = t.ClearFactors(u.ID)
	return err
}
