package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

const auditColumns = `id, account_id, actor_id, actor, action, target_type, target_id, details, remote_addr, created_at, credential_id, credential`

// Audit writes e inside the transaction; a nil entry writes nothing.
func (t *Tx) Audit(e *gatehouse.AuditEntry) error {
	if e == nil {
		return nil
	}
	if t.loggable() {
		_, err := t.auditLogged(e)
		return err
	}
	args, err := auditArgs(e)
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

// AuditTargets writes e (not nil) inside the transaction and returns the
// enabled webhook endpoints of its account, who may be sent the events
// it reports: Audit and WebhookTargets, in one round trip where the
// dialect can.
func (t *Tx) AuditTargets(e *gatehouse.AuditEntry) ([]WebhookTarget, error) {
	if t.loggable() {
		return t.auditLogged(e)
	}
	q := t.s.d.auditTargetsSQL
	if q == "" {
		if err := t.Audit(e); err != nil {
			return nil, err
		}
		return t.WebhookTargets(e.AccountID)
	}
	args, err := auditArgs(e)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(q, append(args, e.AccountID)...)
	if err != nil {
		return nil, err
	}
	return collectAll(rows, scanWebhookTarget)
}

// loggable reports whether an audit entry written now also writes the
// revocation log's entry, in one statement: in a revoking transaction,
// where the dialect can.
func (t *Tx) loggable() bool { return t.revoking && t.s.d.auditLoggedSQL != "" }

// auditLogged writes e (not nil) and the revocation log's entry for what
// the transaction has revoked so far in one statement, and returns the
// enabled webhook endpoints of e's account. The audit entry is mostly a
// revoking change's last write: its commit then logs nothing more
// (logRevocation), one round trip fewer.
func (t *Tx) auditLogged(e *gatehouse.AuditEntry) ([]WebhookTarget, error) {
	args, err := auditArgs(e)
	if err != nil {
		return nil, err
	}
	if err := t.logging(); err != nil {
		return nil, err
	}
	list, at := t.revocationEntry()
	rows, err := t.query(t.s.d.auditLoggedSQL, append(append([]any{list, at}, args...), e.AccountID)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []WebhookTarget
	logged := false
	for rows.Next() {
		var n int64
		var id, events sql.NullString
		if err := rows.Scan(&n, &id, &events); err != nil {
			return nil, err
		}
		logged = true
		if id.Valid {
			w := WebhookTarget{ID: id.String}
			if err := json.Unmarshal([]byte(events.String), &w.Events); err != nil {
				return nil, err
			}
			out = append(out, w)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !logged {
		return nil, errors.New("store: the revocation log was not written (no change counter)")
	}
	t.logged = list
	return out, nil
}

// auditArgs returns the values of e's auditColumns, giving it an id if it
// has none.
func auditArgs(e *gatehouse.AuditEntry) ([]any, error) {
	if e.ID == "" {
		e.ID = gatehouse.NewID("aud")
	}
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return nil, err
		}
	}
	return []any{e.ID, e.AccountID, e.ActorID, e.Actor, e.Action, e.TargetType, e.TargetID, string(details), e.RemoteAddr, micros(e.CreatedAt),
		e.CredentialID, e.Credential}, nil
}

// Audit lists an account's audit log, newest first.
func (s *Store) Audit(ctx context.Context, accountID string, p gatehouse.Page) ([]*gatehouse.AuditEntry, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	es, c, err := s.FindAudit(ctx, accountID, gatehouse.AuditFilter{}, p)
	return es, c.Next, err
}

// FindAudit lists the entries of an account's audit log that match f,
// one page, newest first: "after" is older, "before" newer.
func (s *Store) FindAudit(ctx context.Context, accountID string, f gatehouse.AuditFilter, p gatehouse.Page) ([]*gatehouse.AuditEntry, gatehouse.Cursors, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, k := p.Size(), pageKeyset(p, true)
	where, args := `account_id = ?`, []any{accountID}
	if f.Actor != "" {
		where += ` AND (actor_id = ? OR LOWER(actor) LIKE ? ESCAPE '!')`
		args = append(args, f.Actor, "%"+likeEscaper.Replace(strings.ToLower(f.Actor))+"%")
	}
	if f.Action != "" {
		// A prefix compared as it is, in letter case too, on both stores
		// (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
		where += ` AND SUBSTR(action, 1, ?) = ?`
		args = append(args, utf8.RuneCountInString(f.Action), f.Action)
	}
	if f.Target != "" {
		where += ` AND (target_id = ? OR target_type = ?)`
		args = append(args, f.Target, f.Target)
	}
	if !f.Since.IsZero() {
		where += ` AND created_at >= ?`
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		where += ` AND created_at < ?`
		args = append(args, micros(f.Until))
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+auditColumns+` FROM audit_log WHERE `+where+` AND `+k.cond+` `+k.order+` LIMIT ?`),
		append(args, k.arg, n+1)...)
	if err != nil {
		return nil, gatehouse.Cursors{}, err
	}
	return collectPage(rows, n, k, p, scanAudit, func(e *gatehouse.AuditEntry) string { return e.ID })
}

func scanAudit(sc scanner) (*gatehouse.AuditEntry, error) {
	var (
		e       gatehouse.AuditEntry
		details string
		created int64
	)
	if err := sc.Scan(&e.ID, &e.AccountID, &e.ActorID, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &details, &e.RemoteAddr, &created,
		&e.CredentialID, &e.Credential); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
		return nil, err
	}
	e.CreatedAt = fromMicros(created)
	return &e, nil
}

// AuditSince calls fn with every audit entry of every account made after
// since, oldest first (for exports that outlive the database, such as
// re-applying revocations after a restore).
func (s *Store) AuditSince(ctx context.Context, since time.Time, fn func(*gatehouse.AuditEntry) error) error {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+auditColumns+` FROM audit_log WHERE created_at > ? ORDER BY created_at, id`), micros(since))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
