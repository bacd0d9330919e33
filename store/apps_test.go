package store_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// thirdPartyAppOf returns a new, unsaved third-party application of u.
func thirdPartyAppOf(u *gatehouse.User) *gatehouse.App {
	return &gatehouse.App{ID: gatehouse.NewID("tpa"), AccountID: u.AccountID, OwnerID: u.ID, Name: "Reports", Type: gatehouse.AppConfidential,
		ClientID: gatehouse.NewID("gci"), RedirectURIs: []string{"https://app.example.com/cb", "http://127.0.0.1/cb"},
		Scopes: gatehouse.Scopes{gatehouse.ScopeWorkspacesRead}, HomepageURL: "https://app.example.com", CreatedAt: at, SecretHash: "h"}
}

// testAppTokensParent: a token of a third-party application works while
// the application and an authorization given no later than the token
// exist, with the scopes both allow; revoking the authorization or
// deleting the application ends it, and a new authorization brings back
// no token issued before it, nor one a rotation of the revoked grant's
// refresh token inserts after the revocation.
func testAppTokensParent(t *testing.T, s *store.Store) {
	a := newAccount(t, s)
	u := newUser(t, s, a)
	app := thirdPartyAppOf(u)
	g := &gatehouse.Authorization{ID: gatehouse.NewID("agr"), AccountID: a.ID, UserID: u.ID, AppID: app.ID, ClientID: app.ClientID,
		Scopes: gatehouse.Scopes{gatehouse.ScopeWorkspacesRead, gatehouse.ScopeUsersRead}, GrantedAt: at}
	update(t, s, func(tx *store.Tx) error {
		if err := tx.CreateApp(app); err != nil {
			return err
		}
		return tx.Authorize(g)
	})
	got, err := s.AppByClientID(t.Context(), app.ClientID)
	if err != nil || got.ID != app.ID || len(got.RedirectURIs) != 2 || got.Scopes.String() != "workspaces:read" {
		t.Fatalf("app %+v %v", got, err)
	}
	tok := tokenOf(u, gatehouse.KindAccess, gatehouse.MethodAuthorizationCode, app.ClientID, "fam1")
	rt := tokenOf(u, gatehouse.KindRefresh, gatehouse.MethodAuthorizationCode, app.ClientID, "fam1")
	createTokens(t, s, tok, rt)
	it := issued(t, s, tok.Hash)
	if !it.Parent.Live || it.Parent.Scopes.String() != "workspaces:read" || it.Parent.ID != app.ClientID {
		t.Fatalf("parent %+v", it.Parent)
	}
	if !update(t, s, func(tx *store.Tx) error {
		found, err := tx.DeleteAuthorization(u.ID, app.ClientID, at.Add(time.Minute))
		if !found {
			t.Error("authorization not found")
		}
		return err
	}) {
		t.Fatal("revoking an authorization is not revoking")
	}
	if it := issued(t, s, tok.Hash); it.Parent.Live {
		t.Fatal("a token of a revoked authorization has a live parent")
	}
	// Consent again: the earlier token stays dead, a new one works.
	g2 := *g
	g2.ID, g2.GrantedAt = gatehouse.NewID("agr"), at.Add(2*time.Minute)
	update(t, s, func(tx *store.Tx) error { return tx.Authorize(&g2) })
	if it := issued(t, s, tok.Hash); it.Parent.Live {
		t.Fatal("a new authorization brought back an earlier token")
	}
	// A rotation of the revoked grant's refresh token that commits after
	// the revocation read the tokens inserts its pair late, stamped after
	// the new authorization: its family was marked.
	late := tokenOf(u, gatehouse.KindAccess, gatehouse.MethodAuthorizationCode, app.ClientID, "fam1")
	late.CreatedAt = at.Add(3 * time.Minute)
	createTokens(t, s, late)
	if it := issued(t, s, late.Hash); !it.FamilyRevoked {
		t.Fatal("a late rotation of a revoked grant's refresh token works under the next authorization")
	}
	tok2 := tokenOf(u, gatehouse.KindAccess, gatehouse.MethodAuthorizationCode, app.ClientID, "fam2")
	tok2.CreatedAt = at.Add(3 * time.Minute)
	createTokens(t, s, tok2)
	if it := issued(t, s, tok2.Hash); !it.Parent.Live {
		t.Fatal("a token of the new authorization is dead")
	}
	if !update(t, s, func(tx *store.Tx) error { _, err := tx.DeleteApp(app.ID, at.Add(4*time.Minute)); return err }) {
		t.Fatal("deleting an application is not revoking")
	}
	if it := issued(t, s, tok2.Hash); it.Parent.Live {
		t.Fatal("a token of a deleted application has a live parent")
	}
	if _, err := s.Authorization(t.Context(), u.ID, app.ClientID); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("authorization after the app's deletion: %v", err)
	}
}

// testCodeUsedOnce: of many concurrent uses of one code exactly one wins.
func testCodeUsedOnce(t *testing.T, s *store.Store) {
	a := newAccount(t, s)
	u := newUser(t, s, a)
	c := &gatehouse.AuthCode{ID: gatehouse.NewID("acd"), Hash: gatehouse.NewID("digest"), AccountID: a.ID, UserID: u.ID, ClientID: "gci_x",
		RedirectURI: "https://app.example.com/cb", Challenge: "c", FamilyID: "fam", CreatedAt: at, ExpiresAt: at.Add(time.Minute)}
	update(t, s, func(tx *store.Tx) error { return tx.CreateCode(c) })
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(t.Context(), func(tx *store.Tx) error {
				won, err := tx.UseCode(c.ID, at)
				if won {
					mu.Lock()
					wins++
					mu.Unlock()
				}
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d uses won", wins)
	}
	got, err := s.CodeByHash(t.Context(), c.Hash)
	if err != nil || got.UsedAt == nil {
		t.Fatalf("code %+v %v", got, err)
	}
}

// testAppsRungOnStatus: a change of an account's or an owner's status
// names the applications they publish (their tokens, held by any
// account's users, rest on it); any other change of the account or the
// user names the account or the user alone, however many applications
// they have.
func testAppsRungOnStatus(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	u := newUser(t, s, a)
	app := thirdPartyAppOf(u)
	update(t, s, func(tx *store.Tx) error { return tx.CreateApp(app) })
	subjects := func(change func(tx *store.Tx) error) []string {
		t.Helper()
		head, _, _, err := s.RevocationsSince(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !update(t, s, change) {
			t.Fatal("not revoking")
		}
		_, log, complete, err := s.RevocationsSince(ctx, head)
		if err != nil || !complete || len(log) != 1 {
			t.Fatalf("revocation log %+v %v %v", log, complete, err)
		}
		return log[0].Subjects
	}
	client := gatehouse.ClientSubject(app.ClientID)
	a.Name = "renamed"
	if got := subjects(func(tx *store.Tx) error { return tx.UpdateAccount(a) }); slices.Contains(got, client) {
		t.Fatalf("a rename named the application: %v", got)
	}
	a.Status = gatehouse.AccountSuspended
	if got := subjects(func(tx *store.Tx) error { return tx.UpdateAccount(a) }); !slices.Contains(got, client) {
		t.Fatalf("a suspension did not name the application: %v", got)
	}
	u.Name = "Renamed"
	if got := subjects(func(tx *store.Tx) error { return tx.UpdateUser(u) }); slices.Contains(got, client) {
		t.Fatalf("a rename of the owner named the application: %v", got)
	}
	u.Status = gatehouse.StatusDisabled
	if got := subjects(func(tx *store.Tx) error { return tx.UpdateUser(u) }); !slices.Contains(got, client) {
		t.Fatalf("disabling the owner did not name the application: %v", got)
	}
}
