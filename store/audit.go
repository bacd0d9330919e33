package store

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/gatehouse/gatehouse"
)

const auditColumns = `id, account_id, actor_id, actor, action, target_type, target_id, details, remote_addr, created_at`

// appendAudit writes e inside tx; a nil entry writes nothing.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, e *gatehouse.AuditEntry) error {
	if e == nil {
		return nil
	}
	if e.ID == "" {
		e.ID = gatehouse.NewID("aud")
	}
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return err
		}
	}
	_, err := s.exec(ctx, tx, `INSERT INTO audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.AccountID, e.ActorID, e.Actor, e.Action, e.TargetType, e.TargetID, string(details), e.RemoteAddr, micros(e.CreatedAt))
	return err
}

// AppendAudit writes one audit entry on its own.
func (s *Store) AppendAudit(ctx context.Context, e *gatehouse.AuditEntry) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.appendAudit(ctx, tx, e) })
}

// Audit lists an account's audit log, newest first.
func (s *Store) Audit(ctx context.Context, accountID string, p gatehouse.Page) ([]*gatehouse.AuditEntry, string, error) {
	n := limit(p)
	after := p.After
	if after == "" {
		after = "~" // sorts after every id
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+auditColumns+` FROM audit_log WHERE account_id = ? AND id < ? ORDER BY id DESC LIMIT ?`), accountID, after, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanAudit, func(e *gatehouse.AuditEntry) string { return e.ID })
}

func scanAudit(sc scanner) (*gatehouse.AuditEntry, error) {
	var (
		e       gatehouse.AuditEntry
		details string
		created int64
	)
	if err := sc.Scan(&e.ID, &e.AccountID, &e.ActorID, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &details, &e.RemoteAddr, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
		return nil, err
	}
	e.CreatedAt = fromMicros(created)
	return &e, nil
}
