package store_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testCredentialsCreateList: a user's credentials list, count and read
// back by client id; client ids are unique.
func testCredentialsCreateList(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	u, other := newUser(t, s, a, gatehouse.RoleDeveloper), newUser(t, s, a, gatehouse.RoleDeveloper)
	var want []*gatehouse.Credential
	update(t, s, func(tx *store.Tx) error {
		for range 3 {
			c := credentialOf(u)
			if err := tx.CreateCredential(c); err != nil {
				return err
			}
			want = append(want, c)
		}
		return tx.CreateCredential(credentialOf(other))
	})
	slices.SortFunc(want, func(x, y *gatehouse.Credential) int { return strings.Compare(x.ID, y.ID) })

	t.Run("list", func(t *testing.T) {
		got, sizes := pageAll(t, 2, func(p gatehouse.Page) ([]string, string, error) {
			return ids(func(c *gatehouse.Credential) string { return c.ID })(s.Credentials(ctx, a.ID, u.ID, p))
		})
		wantIDs := make([]string, len(want))
		for i, c := range want {
			wantIDs[i] = c.ID
		}
		if !slices.Equal(got, wantIDs) || !slices.Equal(sizes, []int{2, 1}) {
			t.Fatalf("credentials %v in pages of %v, want %v in pages of [2 1]", got, sizes, wantIDs)
		}
		if cs, _, err := s.Credentials(ctx, newAccount(t, s).ID, u.ID, gatehouse.Page{}); err != nil || len(cs) != 0 {
			t.Fatalf("through another account: %d credentials, %v", len(cs), err)
		}
	})
	t.Run("count", func(t *testing.T) {
		var inTx int
		update(t, s, func(tx *store.Tx) (err error) { inTx, err = tx.CountLiveCredentials(u.ID, time.Now()); return err })
		n, err := s.CountCredentials(ctx, u.ID)
		if err != nil || n != 3 || inTx != 3 {
			t.Fatalf("count %d (in a transaction %d), %v; want 3", n, inTx, err)
		}
		if n, err := s.CountCredentials(ctx, gatehouse.NewID("usr")); err != nil || n != 0 {
			t.Fatalf("count of a user without credentials: %d, %v", n, err)
		}
	})
	t.Run("by client id", func(t *testing.T) {
		w := want[1]
		got, err := s.CredentialByClientID(ctx, w.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != w.ID || got.AccountID != w.AccountID || got.UserID != w.UserID || got.Name != w.Name ||
			got.ClientID != w.ClientID || got.SecretHash != w.SecretHash || !got.CreatedAt.Equal(w.CreatedAt) {
			t.Fatalf("credential\n got %+v\nwant %+v", *got, *w)
		}
		_, err = s.CredentialByClientID(ctx, gatehouse.NewID("gcc"))
		wantCode(t, err, gatehouse.ENotFound)
	})
	t.Run("client id taken", func(t *testing.T) {
		dup := credentialOf(other)
		dup.ClientID = want[0].ClientID
		wantCode(t, s.Update(ctx, func(tx *store.Tx) error { return tx.CreateCredential(dup) }), gatehouse.EConflict)
	})
}

// testCredentialsDelete: DeleteCredentials deletes one credential or all
// of a user's and reports how many, never another user's or account's.
func testCredentialsDelete(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	u, other := newUser(t, s, a, gatehouse.RoleDeveloper), newUser(t, s, a, gatehouse.RoleDeveloper)
	cs := []*gatehouse.Credential{credentialOf(u), credentialOf(u), credentialOf(u)}
	kept := credentialOf(other)
	update(t, s, func(tx *store.Tx) error {
		for _, c := range append(cs, kept) {
			if err := tx.CreateCredential(c); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name              string
		accountID, userID string
		id                string
		want              int
		gone              []*gatehouse.Credential
	}{
		{"through another account", b.ID, u.ID, cs[0].ID, 0, nil},
		{"another user's", a.ID, u.ID, kept.ID, 0, nil},
		{"unknown id", a.ID, u.ID, gatehouse.NewID("crd"), 0, nil},
		{"one", a.ID, u.ID, cs[0].ID, 1, cs[:1]},
		{"the same again", a.ID, u.ID, cs[0].ID, 0, cs[:1]},
		{"all", a.ID, u.ID, "", 2, cs},
		{"all again", a.ID, u.ID, "", 0, cs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n int
			update(t, s, func(tx *store.Tx) (err error) {
				n, err = tx.DeleteCredentials(tc.accountID, tc.userID, tc.id, at)
				return err
			})
			if n != tc.want {
				t.Fatalf("deleted %d, want %d", n, tc.want)
			}
			for _, c := range append(cs, kept) {
				_, err := s.CredentialByClientID(ctx, c.ClientID)
				if slices.Contains(tc.gone, c) {
					wantCode(t, err, gatehouse.ENotFound)
				} else if err != nil {
					t.Fatalf("credential %s: %v", c.ID, err)
				}
			}
		})
	}
	if n, err := s.CountCredentials(ctx, other.ID); err != nil || n != 1 {
		t.Fatalf("other user's credentials: %d, %v", n, err)
	}
}

// testAccountCredential: any user's credential of the account reads back
// by id with its owner; another account's is not found; a user's own
// credential reads back for that user only.
func testAccountCredential(t *testing.T, s *store.Store) {
	f := newFixture(t, s)
	update(t, s, func(tx *store.Tx) error {
		c, owner, err := tx.AccountCredential(f.account.ID, f.cred.ID)
		if err != nil || c.UserID != f.user.ID || c.ClientID != f.cred.ClientID || c.Name != f.cred.Name {
			t.Fatalf("credential %+v, %v", c, err)
		}
		if owner.ID != f.user.ID || owner.Email != f.user.Email || owner.Status != f.user.Status {
			t.Fatalf("owner %+v", owner)
		}
		_, _, err = tx.AccountCredential(gatehouse.NewID("acc"), f.cred.ID)
		wantCode(t, err, gatehouse.ENotFound)
		if c, err := tx.Credential(f.account.ID, f.user.ID, f.cred.ID); err != nil || c.ID != f.cred.ID {
			t.Fatalf("own credential %+v, %v", c, err)
		}
		_, err = tx.Credential(f.account.ID, f.member.ID, f.cred.ID)
		wantCode(t, err, gatehouse.ENotFound)
		return nil
	})
}

// testCredentialNameTaken: a name is taken by another live credential of
// the same user, in any case (Unicode's, not ASCII's alone); not by an expired one, the one excepted, or
// another user's.
func testCredentialNameTaken(t *testing.T, s *store.Store) {
	f := newFixture(t, s) // f.cred is named "ci"
	expired := credentialOf(f.user)
	expired.Name, expired.ExpiresAt = "Old", &at
	update(t, s, func(tx *store.Tx) error { return tx.CreateCredential(expired) })
	umlaut := credentialOf(f.user)
	umlaut.Name = "Ärger"
	update(t, s, func(tx *store.Tx) error { return tx.CreateCredential(umlaut) })
	for _, tc := range []struct {
		name, user, try, except string
		taken                   bool
	}{
		{"same name", f.user.ID, "ci", "", true},
		{"any case", f.user.ID, "CI", "", true},
		{"any case beyond ASCII", f.user.ID, "äRGER", "", true},
		{"renaming itself beyond ASCII", f.user.ID, "ÄRGER", umlaut.ID, false},
		{"renaming itself", f.user.ID, "CI", f.cred.ID, false},
		{"expired one", f.user.ID, "old", "", false},
		{"another user", f.member.ID, "ci", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			update(t, s, func(tx *store.Tx) error {
				taken, err := tx.CredentialNameTaken(f.account.ID, tc.user, tc.try, tc.except, at.Add(time.Second))
				if err != nil || taken != tc.taken {
					t.Fatalf("taken %v, %v; want %v", taken, err, tc.taken)
				}
				return nil
			})
		})
	}
}

// testCredentialsDeleteTokens: deleting a credential revokes its client
// and marks the tokens it issued revoked, and no other's; deleting one
// that is not there is no revocation.
func testCredentialsDeleteTokens(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	u := newUser(t, s, a, gatehouse.RoleDeveloper)
	c, kept := credentialOf(u), credentialOf(u)
	issued := tokenOf(u, gatehouse.KindAccess, gatehouse.MethodClientCredentials, c.ClientID, "")
	other := tokenOf(u, gatehouse.KindAccess, gatehouse.MethodClientCredentials, kept.ClientID, "")
	update(t, s, func(tx *store.Tx) error {
		if err := tx.CreateCredential(c); err != nil {
			return err
		}
		if err := tx.CreateCredential(kept); err != nil {
			return err
		}
		return tx.CreateTokens(issued, other)
	})
	head, _, _, err := s.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if !update(t, s, func(tx *store.Tx) (err error) { n, err = tx.DeleteCredentials(a.ID, u.ID, c.ID, at); return err }) || n != 1 {
		t.Fatalf("delete: %d, not revoking", n)
	}
	_, log, complete, err := s.RevocationsSince(ctx, head)
	if err != nil || !complete || len(log) != 1 || !slices.Contains(log[0].Subjects, gatehouse.ClientSubject(c.ClientID)) {
		t.Fatalf("revocation log %+v %v %v", log, complete, err)
	}
	for _, tc := range []struct {
		tok     *gatehouse.Token
		revoked bool
	}{{issued, true}, {other, false}} {
		it, err := s.TokenByHash(ctx, tc.tok.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if (it.RevokedAt != nil) != tc.revoked {
			t.Fatalf("token of %s: revoked_at %v, want revoked %v", tc.tok.ClientID, it.RevokedAt, tc.revoked)
		}
	}
	if update(t, s, func(tx *store.Tx) (err error) { n, err = tx.DeleteCredentials(a.ID, u.ID, c.ID, at); return err }) || n != 0 {
		t.Fatalf("deleting it again: %d, or revoking", n)
	}
}
