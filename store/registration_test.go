package store_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testRegisteredClients: a client that registered itself reads as a
// public application owned by no account; a token it obtained keeps its
// resource, lives while the client and the user's authorization do,
// marks the client used, and ends when the client is pruned after 30
// days unused (not before).
func testRegisteredClients(t *testing.T, s *store.Store) {
	a := newAccount(t, s)
	u := newUser(t, s, a)
	rc := &gatehouse.App{ID: gatehouse.NewID("rgc"), Name: "Agent", Type: gatehouse.AppPublic, ClientID: gatehouse.NewID("gci"),
		RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: at, Registered: true}
	g := &gatehouse.Authorization{ID: gatehouse.NewID("agr"), AccountID: a.ID, UserID: u.ID, AppID: rc.ID, ClientID: rc.ClientID, GrantedAt: at}
	update(t, s, func(tx *store.Tx) error {
		if err := tx.CreateRegisteredClient(rc, "192.0.2.1"); err != nil {
			return err
		}
		return tx.Authorize(g)
	})
	got, err := s.AppByClientID(t.Context(), rc.ClientID)
	if err != nil || !got.Registered || got.AccountID != "" || got.Confidential() || got.Name != "Agent" || len(got.RedirectURIs) != 1 {
		t.Fatalf("registered client %+v %v", got, err)
	}
	update(t, s, func(tx *store.Tx) error {
		app, err := tx.App(rc.ClientID)
		if err != nil || app.ID != rc.ID || !app.Registered {
			t.Errorf("in a transaction: %+v %v", app, err)
		}
		return nil
	})
	if list, _, err := s.Authorizations(t.Context(), u.ID, gatehouse.Page{}); err != nil || len(list) != 1 || list[0].Name != "Agent" {
		t.Fatalf("authorizations %+v %v", list, err)
	}
	tok := tokenOf(u, gatehouse.KindAccess, gatehouse.MethodAuthorizationCode, rc.ClientID, "famrc")
	tok.Resource = "https://api.example.com/mcp"
	tok.ExpiresAt = at.Add(365 * 24 * time.Hour)
	createTokens(t, s, tok)
	it := issued(t, s, tok.Hash)
	if !it.Parent.Live || it.Parent.ID != rc.ClientID || it.Resource != "https://api.example.com/mcp" {
		t.Fatalf("token %+v parent %+v", it.Token, it.Parent)
	}
	used := at.Add(20 * 24 * time.Hour)
	if err := s.TouchApp(t.Context(), rc.ClientID, u.ID, used); err != nil {
		t.Fatal(err)
	}
	// 40 days after registration, 20 after its last use: kept.
	if _, err := s.Prune(t.Context(), store.Cutoffs{Now: at.Add(40 * 24 * time.Hour)}, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppByClientID(t.Context(), rc.ClientID); err != nil {
		t.Fatalf("pruned while used within 30 days: %v", err)
	}
	if _, err := s.Prune(t.Context(), store.Cutoffs{Now: used.Add(store.RegisteredUnused)}, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppByClientID(t.Context(), rc.ClientID); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("kept after 30 days unused: %v", err)
	}
	if it := issued(t, s, tok.Hash); it.Parent.Live {
		t.Fatal("a token of a pruned client has a live parent")
	}
}
