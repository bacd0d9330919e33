package store_test

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// workspaceIDs lists the ids of the account's workspaces visible to
// userID (all when empty).
func workspaceIDs(t *testing.T, s *store.Store, accountID, userID string) []string {
	t.Helper()
	got, _ := pageAll(t, 2, func(p gatehouse.Page) ([]string, string, error) {
		return ids(func(w *gatehouse.Workspace) string { return w.ID })(s.Workspaces(t.Context(), accountID, userID, p))
	})
	return got
}

// testWorkspaces: workspaces read back and list within their account,
// and are deleted once, only through it.
func testWorkspaces(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	owner := newUser(t, s, a)
	ws := []*gatehouse.Workspace{workspaceOf(a, owner.ID), workspaceOf(a, owner.ID), workspaceOf(a, "")}
	update(t, s, func(tx *store.Tx) error {
		for _, w := range append(ws, workspaceOf(b, "")) {
			if err := tx.CreateWorkspace(w); err != nil {
				return err
			}
		}
		return nil
	})
	for _, w := range ws {
		got, err := s.Workspace(ctx, a.ID, w.ID)
		if err != nil || got.ID != w.ID || got.AccountID != a.ID || got.Name != w.Name || got.Description != w.Description ||
			got.OwnerID != w.OwnerID || !got.CreatedAt.Equal(w.CreatedAt) {
			t.Fatalf("workspace %+v, %v; want %+v", got, err, w)
		}
	}
	_, err := s.Workspace(ctx, b.ID, ws[0].ID)
	wantCode(t, err, gatehouse.ENotFound)

	all := []string{ws[0].ID, ws[1].ID, ws[2].ID}
	slices.Sort(all)
	if got := workspaceIDs(t, s, a.ID, ""); !slices.Equal(got, all) {
		t.Fatalf("account's workspaces %v, want %v", got, all)
	}
	owned := []string{ws[0].ID, ws[1].ID}
	slices.Sort(owned)
	if got := workspaceIDs(t, s, a.ID, owner.ID); !slices.Equal(got, owned) {
		t.Fatalf("owner's workspaces %v, want %v", got, owned)
	}

	del := func(accountID, id string) error {
		return s.Update(ctx, func(tx *store.Tx) error { return tx.DeleteWorkspace(accountID, id) })
	}
	wantCode(t, del(b.ID, ws[0].ID), gatehouse.ENotFound)
	if err := del(a.ID, ws[0].ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, del(a.ID, ws[0].ID), gatehouse.ENotFound)
	_, err = s.Workspace(ctx, a.ID, ws[0].ID)
	wantCode(t, err, gatehouse.ENotFound)
	if got := workspaceIDs(t, s, a.ID, ""); len(got) != 2 || slices.Contains(got, ws[0].ID) {
		t.Fatalf("workspaces after a delete: %v", got)
	}
}

// testWorkspaceMembers: memberships are added once, make the workspace
// visible to the member, are removed, and go with their workspace.
func testWorkspaceMembers(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	owner, viewer, stranger := newUser(t, s, a), newUser(t, s, a), newUser(t, s, a)
	w, owned := workspaceOf(a, ""), workspaceOf(a, owner.ID)
	update(t, s, func(tx *store.Tx) error {
		if err := tx.CreateWorkspace(w); err != nil {
			return err
		}
		return tx.CreateWorkspace(owned)
	})
	member := func(t *testing.T, userID string) bool {
		t.Helper()
		ok, err := s.IsMember(ctx, w.ID, userID)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	members := func(t *testing.T, id string) []string {
		t.Helper()
		got, err := s.Members(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	for range 2 { // adding twice is a no-op
		update(t, s, func(tx *store.Tx) error { return tx.AddMember(w.ID, viewer.ID, at) })
	}
	update(t, s, func(tx *store.Tx) error { return tx.AddMember(w.ID, owner.ID, at) })
	want := []string{viewer.ID, owner.ID}
	slices.Sort(want)
	if got := members(t, w.ID); !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if !member(t, viewer.ID) || member(t, stranger.ID) {
		t.Fatal("IsMember wrong for the viewer or a stranger")
	}
	if got := workspaceIDs(t, s, a.ID, viewer.ID); !slices.Equal(got, []string{w.ID}) {
		t.Fatalf("viewer's workspaces %v, want %v", got, []string{w.ID})
	}
	both := []string{w.ID, owned.ID}
	slices.Sort(both)
	if got := workspaceIDs(t, s, a.ID, owner.ID); !slices.Equal(got, both) {
		t.Fatalf("owner and member's workspaces %v, want %v", got, both)
	}
	if got := workspaceIDs(t, s, a.ID, stranger.ID); len(got) != 0 {
		t.Fatalf("stranger's workspaces %v", got)
	}

	for i := range 2 { // removing a non-member is a no-op
		var removed bool
		update(t, s, func(tx *store.Tx) (err error) { removed, err = tx.RemoveMember(w.ID, viewer.ID); return err })
		if removed != (i == 0) {
			t.Fatalf("removal %d reported %v", i, removed)
		}
	}
	if member(t, viewer.ID) || !member(t, owner.ID) {
		t.Fatal("IsMember wrong after removing the viewer")
	}
	if got := workspaceIDs(t, s, a.ID, viewer.ID); len(got) != 0 {
		t.Fatalf("removed viewer's workspaces %v", got)
	}

	// A delete through another account finds nothing and changes nothing,
	// even when the transaction goes on to commit.
	var elsewhere error
	other := newAccount(t, s)
	update(t, s, func(tx *store.Tx) error { elsewhere = tx.DeleteWorkspace(other.ID, w.ID); return nil })
	wantCode(t, elsewhere, gatehouse.ENotFound)
	if got := members(t, w.ID); !slices.Equal(got, []string{owner.ID}) {
		t.Fatalf("members after a delete through another account: %v, want %v", got, []string{owner.ID})
	}

	update(t, s, func(tx *store.Tx) error { return tx.DeleteWorkspace(a.ID, w.ID) })
	if got := members(t, w.ID); len(got) != 0 || member(t, owner.ID) {
		t.Fatalf("members of a deleted workspace: %v", got)
	}
}
