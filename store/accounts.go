package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/gatehouse/gatehouse"
)

const accountColumns = `id, name, status, settings, created_at`

func scanAccount(sc scanner) (*gatehouse.Account, error) {
	var (
		a        gatehouse.Account
		status   string
		settings string
		created  int64
	)
	if err := sc.Scan(&a.ID, &a.Name, &status, &settings, &created); err != nil {
		return nil, err
	}
	a.Status = gatehouse.AccountStatus(status)
	a.Settings = gatehouse.DefaultSettings()
	if err := json.Unmarshal([]byte(settings), &a.Settings); err != nil {
		return nil, err
	}
	a.Settings.SSO = nil // kept in sso_configs, never here
	a.CreatedAt = fromMicros(created)
	return &a, nil
}

// marshalSettings encodes settings for the accounts table, without the
// single sign-on, which has a table of its own (sso.go).
func marshalSettings(st gatehouse.Settings) ([]byte, error) {
	st.SSO = nil
	return json.Marshal(st)
}

// CreateAccount stores a new account.
func (t *Tx) CreateAccount(a *gatehouse.Account) error {
	settings, err := marshalSettings(a.Settings)
	if err != nil {
		return err
	}
	if a.Status == "" {
		a.Status = gatehouse.AccountActive
	}
	_, err = t.exec(`INSERT INTO accounts (`+accountColumns+`) VALUES (?, ?, ?, ?, ?)`,
		a.ID, a.Name, string(a.Status), string(settings), micros(a.CreatedAt))
	return err
}

// ClaimBootstrap records that the store is being bootstrapped and reports
// whether this transaction is the first to do so: of several processes
// bootstrapping one store at once, exactly one gets true.
func (t *Tx) ClaimBootstrap(accountID string) (bool, error) {
	res, err := t.exec(`INSERT INTO meta (key, value) VALUES ('bootstrap', ?) ON CONFLICT DO NOTHING`, accountID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Account returns the account with the given id, or not_found.
func (s *Store) Account(ctx context.Context, id string) (*gatehouse.Account, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	a, err := scanAccount(s.readRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("account")
	}
	return a, err
}

// Account returns the account with the given id inside the transaction,
// locked until it ends (changes that must see a stable set of the
// account's admins lock it first), or not_found.
func (t *Tx) Account(id string) (*gatehouse.Account, error) {
	a, err := scanAccount(t.row(`SELECT `+accountColumns+` FROM accounts WHERE id = ?`+t.forUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("account")
	}
	return a, err
}

// AccountActive reports, inside the transaction, whether the account with
// the given id is active (not suspended), without locking it: a caller
// that took it first (Account, ShareAccount) sees a suspension that
// committed before, and one that comes later waits for it; not_found
// when there is no such account.
func (t *Tx) AccountActive(id string) (bool, error) {
	return t.accountActive(id, "")
}

// accountActive reads whether the account id is active, with the lock
// suffix.
func (t *Tx) accountActive(id, lock string) (bool, error) {
	var status string
	err := t.row(`SELECT status FROM accounts WHERE id = ?`+lock, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return false, gatehouse.NotFound("account")
	}
	return status != string(gatehouse.AccountSuspended), err
}

// ShareAccount locks the account with the given id for the rest of the
// transaction against changes of the account itself (on PostgreSQL, the
// key-share lock the foreign keys of rows that name it take anyway),
// without excluding other transactions that only add such rows. A
// transaction that locks rows of the account's users or tokens and then
// writes rows naming the account takes it first, in the order every
// change of the account or of a user takes it (the account, then the
// user), so that the two cannot deadlock. SQLite runs one write
// transaction at a time: nothing to lock there.
func (t *Tx) ShareAccount(id string) error {
	if t.s.d.lockAccountKey == "" || t.shared == id {
		return nil // nothing to lock, or held already
	}
	if _, err := t.exec(t.s.d.lockAccountKey, id); err != nil {
		return err
	}
	t.shared = id
	return nil
}

// ShareActiveAccount is ShareAccount and AccountActive in one statement:
// it locks the account shared (on PostgreSQL; a lock that waits returns
// the account as the change it waited for left it) and reports whether it
// is active, or not_found. A write in a user's name takes it first.
func (t *Tx) ShareActiveAccount(id string) (bool, error) {
	if t.s.d.lockAccountKey == "" || t.shared == id {
		return t.AccountActive(id)
	}
	active, err := t.accountActive(id, t.s.d.keyShare)
	if err == nil {
		t.shared = id
	}
	return active, err
}

// Accounts lists all accounts, for the operator.
func (s *Store) Accounts(ctx context.Context, p gatehouse.Page) ([]*gatehouse.Account, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n := p.Size()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+accountColumns+` FROM accounts WHERE id > ? ORDER BY id LIMIT ?`), p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanAccount, func(a *gatehouse.Account) string { return a.ID })
}

// UpdateAccount writes an account's name, status and settings. It is
// revoking: cached principals carry their account, and, when its status
// changes, the tokens of the third-party applications it publishes, held
// by other accounts' users (their client's subject).
func (t *Tx) UpdateAccount(a *gatehouse.Account) error {
	t.revokes(gatehouse.AccountSubject(a.ID))
	if err := t.revokesAppsOnStatus(`SELECT status FROM accounts WHERE id = ?`, string(a.Status), "account_id", a.ID); err != nil {
		return err
	}
	settings, err := marshalSettings(a.Settings)
	if err != nil {
		return err
	}
	res, err := t.exec(`UPDATE accounts SET name = ?, status = ?, settings = ? WHERE id = ?`, a.Name, string(a.Status), string(settings), a.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("account")
	}
	return nil
}

// revokesAppsOnStatus calls revokesApps when the status read by query
// (one row, one column, for id) is not next: only a change of a
// publisher's or an owner's status changes what its applications' tokens
// rest on, and a settings change must not name every application.
func (t *Tx) revokesAppsOnStatus(query, next, column, id string) error {
	var cur string
	if err := t.row(query, id).Scan(&cur); errors.Is(err, sql.ErrNoRows) {
		return nil // the update itself answers not_found
	} else if err != nil {
		return err
	}
	if cur == next {
		return nil
	}
	return t.revokesApps(column, id)
}

// revokesApps names as revoked the third-party applications whose column
// (account_id or owner_id) is id: their tokens, held by users of any
// account, rest on their publisher's state and their owner's.
func (t *Tx) revokesApps(column, id string) error {
	rows, err := t.query(`SELECT client_id FROM apps WHERE `+column+` = ?`, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return err
		}
		t.revokes(gatehouse.ClientSubject(c))
	}
	return rows.Err()
}

// BootstrapAccountID returns the id of the account made at bootstrap.
func (t *Tx) BootstrapAccountID() (string, error) {
	var id string
	err := t.row(`SELECT value FROM meta WHERE key = 'bootstrap'`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", gatehouse.NotFound("bootstrap account")
	}
	return id, err
}
