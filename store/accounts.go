package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gatehouse/gatehouse"
)

const accountColumns = `id, name, settings, created_at`

func scanAccount(sc scanner) (*gatehouse.Account, error) {
	var (
		a        gatehouse.Account
		settings string
		created  int64
	)
	if err := sc.Scan(&a.ID, &a.Name, &settings, &created); err != nil {
		return nil, err
	}
	a.Settings = gatehouse.DefaultSettings()
	if err := json.Unmarshal([]byte(settings), &a.Settings); err != nil {
		return nil, err
	}
	a.CreatedAt = fromMicros(created)
	return &a, nil
}

// CreateAccount stores a new account together with its first admin, in one
// transaction. It returns a conflict error if the admin's e-mail is taken.
func (s *Store) CreateAccount(ctx context.Context, a *gatehouse.Account, admin *gatehouse.User, audit *gatehouse.AuditEntry) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return s.createAccount(ctx, tx, a, admin, audit)
	})
}

func (s *Store) createAccount(ctx context.Context, tx *sql.Tx, a *gatehouse.Account, admin *gatehouse.User, audit *gatehouse.AuditEntry) error {
	settings, err := json.Marshal(a.Settings)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO accounts (`+accountColumns+`) VALUES (?, ?, ?, ?)`,
		a.ID, a.Name, string(settings), micros(a.CreatedAt)); err != nil {
		return err
	}
	if err := s.insertUser(ctx, tx, admin); err != nil {
		return err
	}
	return s.appendAudit(ctx, tx, audit)
}

// Bootstrap creates the first account and its operator-admin if the store
// has never been bootstrapped, and reports whether it did. Of several
// processes bootstrapping one store at once, exactly one creates them.
func (s *Store) Bootstrap(ctx context.Context, a *gatehouse.Account, admin *gatehouse.User) (bool, error) {
	created := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `INSERT INTO meta (key, value) VALUES ('bootstrap', ?) ON CONFLICT DO NOTHING`, a.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		created = true
		return s.createAccount(ctx, tx, a, admin, &gatehouse.AuditEntry{
			AccountID: a.ID, ActorID: admin.ID, Actor: "bootstrap", Action: "account.bootstrap",
			TargetType: "account", TargetID: a.ID, CreatedAt: a.CreatedAt,
		})
	})
	if err != nil {
		return false, s.conflict(err, "user")
	}
	return created, nil
}

// Account returns the account with the given id, or not_found.
func (s *Store) Account(ctx context.Context, id string) (*gatehouse.Account, error) {
	a, err := scanAccount(s.readRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("account")
	}
	return a, err
}

// Accounts lists all accounts, for the operator.
func (s *Store) Accounts(ctx context.Context, p gatehouse.Page) ([]*gatehouse.Account, string, error) {
	n := limit(p)
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+accountColumns+` FROM accounts WHERE id > ? ORDER BY id LIMIT ?`), p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanAccount, func(a *gatehouse.Account) string { return a.ID })
}

// UpdateSettings replaces an account's settings.
func (s *Store) UpdateSettings(ctx context.Context, accountID string, st gatehouse.Settings, audit *gatehouse.AuditEntry) error {
	settings, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.revokingTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE accounts SET settings = ? WHERE id = ?`, string(settings), accountID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return gatehouse.NotFound("account")
		}
		return s.appendAudit(ctx, tx, audit)
	})
}

// EmailKey is the case-insensitive form under which e-mails are unique.
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }
