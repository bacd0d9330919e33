package service

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// NewWorkspace is the input for CreateWorkspace.
type NewWorkspace struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Workspaces lists the workspaces p can see: all of the account's for an
// admin, otherwise those p owns or is a member of.
func (s *Service) Workspaces(ctx context.Context, p *gatehouse.Principal, page gatehouse.Page) ([]*gatehouse.Workspace, string, error) {
	userID := ""
	if !p.IsAdmin() {
		userID = p.UserID()
	}
	return s.store.Workspaces(ctx, p.AccountID, userID, page)
}

// CreateWorkspace makes a workspace owned by p (by nobody for the anonymous
// admin of an API token).
func (s *Service) CreateWorkspace(ctx context.Context, p *gatehouse.Principal, in NewWorkspace) (*gatehouse.Workspace, error) {
	name, err := checkName("name", in.Name, MaxNameLen, true)
	if err != nil {
		return nil, err
	}
	desc, err := checkName("description", in.Description, MaxDescriptionLen, false)
	if err != nil {
		return nil, err
	}
	w := &gatehouse.Workspace{
		ID: gatehouse.NewID("wsp"), AccountID: p.AccountID, Name: name, Description: desc,
		OwnerID: p.UserID(), CreatedAt: s.now(),
	}
	if err := s.update(ctx, func(tx *store.Tx) error {
		if _, err := requireActiveNow(tx, p); err != nil {
			return err
		}
		if err := tx.CreateWorkspace(w); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "workspace.create", "workspace", w.ID, map[string]string{"name": name}))
	}); err != nil {
		return nil, err
	}
	return w, nil
}

// Workspace returns a workspace p can see; not_found otherwise, so that the
// existence of others' workspaces is not revealed.
func (s *Service) Workspace(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.Workspace, error) {
	w, err := s.store.Workspace(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	if p.IsAdmin() || w.OwnerID == p.UserID() {
		return w, nil
	}
	ok, err := s.store.IsMember(ctx, w.ID, p.UserID())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, gatehouse.NotFound("workspace")
	}
	return w, nil
}

// manageable returns a workspace p may change: visible (else not_found) and
// owned by p or p is an admin (else forbidden).
func (s *Service) manageable(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.Workspace, error) {
	w, err := s.Workspace(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.IsAdmin() && w.OwnerID != p.UserID() {
		return nil, gatehouse.Forbidden("Only the workspace's owner or an admin may do this")
	}
	return w, nil
}

// manageableNow is manageable again inside tx for w: p's user, read
// afresh after the account (requireActiveNow), is still active and owns w
// or is still an admin. An owner disabled or deleted, or an admin demoted,
// while the request was in flight changes nothing.
func manageableNow(tx *store.Tx, p *gatehouse.Principal, w *gatehouse.Workspace) error {
	u, err := requireActiveNow(tx, p)
	if err != nil || u == nil {
		return err
	}
	if !u.IsAdmin() && w.OwnerID != u.ID {
		return gatehouse.Forbidden("Only the workspace's owner or an admin may do this")
	}
	return nil
}

// DeleteWorkspace deletes a workspace p owns (or any, for an admin).
func (s *Service) DeleteWorkspace(ctx context.Context, p *gatehouse.Principal, id string) error {
	w, err := s.manageable(ctx, p, id)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		if err := manageableNow(tx, p, w); err != nil {
			return err
		}
		if err := tx.DeleteWorkspace(p.AccountID, w.ID); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "workspace.delete", "workspace", w.ID, nil))
	})
}

// WorkspaceMembers lists the user ids of a visible workspace's members.
func (s *Service) WorkspaceMembers(ctx context.Context, p *gatehouse.Principal, id string) ([]string, error) {
	w, err := s.Workspace(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return s.store.Members(ctx, w.ID)
}

// AddWorkspaceMember adds a user of the same account to a workspace p
// manages. Adding an existing member changes nothing.
func (s *Service) AddWorkspaceMember(ctx context.Context, p *gatehouse.Principal, id, userID string) error {
	w, err := s.manageable(ctx, p, id)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		if err := manageableNow(tx, p, w); err != nil {
			return err
		}
		// The user, locked as a user's deletion locks them (which then
		// ends their memberships): a user deleted first is not_found, one
		// deleted after leaves this workspace too.
		if _, err := lockAccountUser(tx, p.AccountID, userID); err != nil {
			return err
		}
		if err := tx.AddMember(w.ID, userID, s.now()); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "workspace.member_add", "workspace", w.ID, map[string]string{"user_id": userID}))
	})
}

// RemoveWorkspaceMember removes a member from a workspace p manages.
func (s *Service) RemoveWorkspaceMember(ctx context.Context, p *gatehouse.Principal, id, userID string) error {
	w, err := s.manageable(ctx, p, id)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		if err := manageableNow(tx, p, w); err != nil {
			return err
		}
		if _, err := tx.RemoveMember(w.ID, userID); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "workspace.member_remove", "workspace", w.ID, map[string]string{"user_id": userID}))
	})
}

// WorkspaceAccess names how p reaches a workspace it can see: "owner",
// "admin" (sees every workspace of the account) or "member".
func WorkspaceAccess(p *gatehouse.Principal, w *gatehouse.Workspace) string {
	switch {
	case w.OwnerID != "" && w.OwnerID == p.UserID():
		return "owner"
	case p.IsAdmin():
		return "admin"
	}
	return "member"
}
