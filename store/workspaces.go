package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

const workspaceColumns = `id, account_id, name, description, owner_id, created_at`

func scanWorkspace(sc scanner) (*gatehouse.Workspace, error) {
	var (
		w       gatehouse.Workspace
		created int64
	)
	if err := sc.Scan(&w.ID, &w.AccountID, &w.Name, &w.Description, &w.OwnerID, &created); err != nil {
		return nil, err
	}
	w.CreatedAt = fromMicros(created)
	return &w, nil
}

// CreateWorkspace stores a new workspace.
func (t *Tx) CreateWorkspace(w *gatehouse.Workspace) error {
	_, err := t.exec(`INSERT INTO workspaces (`+workspaceColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		w.ID, w.AccountID, w.Name, w.Description, w.OwnerID, micros(w.CreatedAt))
	return err
}

// Workspace returns a workspace of the given account, or not_found.
func (s *Store) Workspace(ctx context.Context, accountID, id string) (*gatehouse.Workspace, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	w, err := scanWorkspace(s.readRow(ctx, `SELECT `+workspaceColumns+` FROM workspaces WHERE id = ? AND account_id = ?`, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("workspace")
	}
	return w, err
}

// Workspaces lists an account's workspaces in id order: all of them when
// userID is empty, else those the user owns or is a member of.
func (s *Store) Workspaces(ctx context.Context, accountID, userID string, p gatehouse.Page) ([]*gatehouse.Workspace, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n := p.Size()
	var (
		rows *sql.Rows
		err  error
	)
	if userID == "" {
		rows, err = s.rdb.QueryContext(ctx, s.q(`SELECT `+workspaceColumns+` FROM workspaces
			WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?`), accountID, p.After, n+1)
	} else {
		rows, err = s.rdb.QueryContext(ctx, s.q(`SELECT `+workspaceColumns+` FROM workspaces
			WHERE account_id = ? AND id > ? AND (owner_id = ? OR id IN (SELECT workspace_id FROM workspace_members WHERE user_id = ?))
			ORDER BY id LIMIT ?`), accountID, p.After, userID, userID, n+1)
	}
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanWorkspace, func(w *gatehouse.Workspace) string { return w.ID })
}

// DeleteWorkspace removes a workspace of the account and its memberships,
// or returns not_found and changes nothing.
func (t *Tx) DeleteWorkspace(accountID, id string) error {
	if _, err := t.exec(`DELETE FROM workspace_members
		WHERE workspace_id IN (SELECT id FROM workspaces WHERE id = ? AND account_id = ?)`, id, accountID); err != nil {
		return err
	}
	res, err := t.exec(`DELETE FROM workspaces WHERE id = ? AND account_id = ?`, id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.NotFound("workspace")
	}
	return nil
}

// IsMember reports whether the user is a member of the workspace.
func (s *Store) IsMember(ctx context.Context, workspaceID, userID string) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int
	err := s.readRow(ctx, `SELECT COUNT(*) FROM workspace_members WHERE workspace_id = ? AND user_id = ?`, workspaceID, userID).Scan(&n)
	return n > 0, err
}

// Members lists the user ids of a workspace's members, in id order.
func (s *Store) Members(ctx context.Context, workspaceID string) ([]string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT user_id FROM workspace_members WHERE workspace_id = ? ORDER BY user_id`), workspaceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// AddMember makes the user a member of the workspace; adding a member
// twice is a no-op, and a workspace that is gone is not_found.
func (t *Tx) AddMember(workspaceID, userID string, at time.Time) error {
	// The workspace, locked: a deletion that committed first leaves none
	// (not_found), and one that comes after waits and takes the new
	// member with it.
	var id string
	if err := t.row(`SELECT id FROM workspaces WHERE id = ?`+t.forUpdate(), workspaceID).Scan(&id); errors.Is(err, sql.ErrNoRows) {
		return gatehouse.NotFound("workspace")
	} else if err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO workspace_members (workspace_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		workspaceID, userID, micros(at))
	return err
}

// RemoveMember ends a membership; removing a non-member is a no-op.
func (t *Tx) RemoveMember(workspaceID, userID string) (bool, error) {
	res, err := t.exec(`DELETE FROM workspace_members WHERE workspace_id = ? AND user_id = ?`, workspaceID, userID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
