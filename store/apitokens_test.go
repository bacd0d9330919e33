package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// checkAPIToken fails the test unless got is want as stored.
func checkAPIToken(t *testing.T, got, want *gatehouse.APIToken) {
	t.Helper()
	if got == nil || got.ID != want.ID || got.AccountID != want.AccountID || got.Name != want.Name || got.Prefix != want.Prefix ||
		got.Hash != want.Hash || !got.CreatedAt.Equal(want.CreatedAt) || !sameTime(got.LastUsedAt, want.LastUsedAt) {
		t.Fatalf("API token\n got %+v\nwant %+v", got, want)
	}
}

// testAPITokensCreateListGet: an account's API tokens list in id order
// and read back by digest; digests are unique.
func testAPITokensCreateListGet(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	var want []string
	keys := map[string]*gatehouse.APIToken{}
	update(t, s, func(tx *store.Tx) error {
		for range 3 {
			k := apiTokenOf(a)
			if err := tx.CreateAPIToken(k); err != nil {
				return err
			}
			want, keys[k.ID] = append(want, k.ID), k
		}
		return tx.CreateAPIToken(apiTokenOf(b))
	})
	slices.Sort(want)
	got, sizes := pageAll(t, 2, func(p gatehouse.Page) ([]string, string, error) {
		return ids(func(k *gatehouse.APIToken) string { return k.ID })(s.APITokens(ctx, a.ID, p))
	})
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{2, 1}) {
		t.Fatalf("API tokens %v in pages of %v, want %v in pages of [2 1]", got, sizes, want)
	}
	for _, k := range keys {
		got, err := s.APITokenByHash(ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		checkAPIToken(t, got, k)
	}
	_, err := s.APITokenByHash(ctx, gatehouse.NewID("digest"))
	wantCode(t, err, gatehouse.ENotFound)
	dup := apiTokenOf(b)
	dup.Hash = keys[want[0]].Hash
	wantCode(t, s.Update(ctx, func(tx *store.Tx) error { return tx.CreateAPIToken(dup) }), gatehouse.EConflict)
}

// testAPITokensTouch: TouchAPIToken records the last use of one token.
func testAPITokensTouch(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	other := apiTokenOf(f.account)
	update(t, s, func(tx *store.Tx) error { return tx.CreateAPIToken(other) })
	for _, used := range []time.Time{at.Add(time.Minute), at.Add(time.Hour)} {
		if err := s.TouchAPIToken(ctx, f.apiToken.ID, used); err != nil {
			t.Fatal(err)
		}
		want := *f.apiToken
		want.LastUsedAt = &used
		got, err := s.APITokenByHash(ctx, f.apiToken.Hash)
		if err != nil {
			t.Fatal(err)
		}
		checkAPIToken(t, got, &want)
	}
	if got, err := s.APITokenByHash(ctx, other.Hash); err != nil || got.LastUsedAt != nil {
		t.Fatalf("untouched token: %+v, %v", got, err)
	}
	if err := s.TouchAPIToken(ctx, gatehouse.NewID("apt"), at); err != nil {
		t.Fatalf("touching an unknown token: %v", err)
	}
}

// testAPITokensDelete: an API token is deleted only through its own
// account, once.
func testAPITokensDelete(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	kept := apiTokenOf(f.account)
	update(t, s, func(tx *store.Tx) error { return tx.CreateAPIToken(kept) })
	del := func(accountID, id string) error {
		return s.Update(ctx, func(tx *store.Tx) error { return tx.DeleteAPIToken(accountID, id) })
	}
	wantCode(t, del(newAccount(t, s).ID, f.apiToken.ID), gatehouse.ENotFound)
	if _, err := s.APITokenByHash(ctx, f.apiToken.Hash); err != nil {
		t.Fatalf("deleted through another account: %v", err)
	}
	if err := del(f.account.ID, f.apiToken.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.APITokenByHash(ctx, f.apiToken.Hash)
	wantCode(t, err, gatehouse.ENotFound)
	wantCode(t, del(f.account.ID, f.apiToken.ID), gatehouse.ENotFound)
	if ks, _, err := s.APITokens(ctx, f.account.ID, gatehouse.Page{}); err != nil || len(ks) != 1 || ks[0].ID != kept.ID {
		t.Fatalf("tokens left: %+v, %v", ks, err)
	}
}

// testAPITokensCreatedBy: the tokens a user created or rolled, as the
// audit log of their account records, in id order.
func testAPITokensCreatedBy(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	mine, rolled, theirs := apiTokenOf(f.account), apiTokenOf(f.account), apiTokenOf(f.account)
	update(t, s, func(tx *store.Tx) error {
		for i, k := range []*gatehouse.APIToken{mine, rolled, theirs} {
			if err := tx.CreateAPIToken(k); err != nil {
				return err
			}
			actor, action := f.user.ID, []string{"api_token.create", "api_token.roll", "api_token.create"}[i]
			if k == theirs {
				actor = f.member.ID
			}
			if err := tx.Audit(&gatehouse.AuditEntry{AccountID: f.account.ID, ActorID: actor, Action: action, TargetType: "api_token", TargetID: k.ID, CreatedAt: at}); err != nil {
				return err
			}
		}
		// Another change of a token names it too, and is not a creation.
		return tx.Audit(&gatehouse.AuditEntry{AccountID: f.account.ID, ActorID: f.user.ID, Action: "api_token.update", TargetType: "api_token", TargetID: theirs.ID, CreatedAt: at})
	})
	got, err := s.APITokensCreatedBy(ctx, f.account.ID, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	want := []string{mine.ID, rolled.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("created by the user: %v, want %v", ids, want)
	}
	if got, err := s.APITokensCreatedBy(ctx, newAccount(t, s).ID, f.user.ID); err != nil || len(got) != 0 {
		t.Fatalf("in another account: %v, %v", got, err)
	}
}

// testAPITokenNameTaken: a name is taken by another live API token of the
// account, in any case (Unicode's, not ASCII's alone), fullwidth or with an
// invisible character; not by an expired one, the one excepted, or another
// account's.
func testAPITokenNameTaken(t *testing.T, s *store.Store) {
	f := newFixture(t, s) // f.apiToken is named "deploy"
	expired := apiTokenOf(f.account)
	expired.Name, expired.ExpiresAt = "Old", &at
	update(t, s, func(tx *store.Tx) error { return tx.CreateAPIToken(expired) })
	greek := apiTokenOf(f.account)
	greek.Name = "Δέλτα"
	update(t, s, func(tx *store.Tx) error { return tx.CreateAPIToken(greek) })
	other := newAccount(t, s)
	for _, tc := range []struct {
		name, account, try, except string
		taken                      bool
	}{
		{"same name", f.account.ID, "deploy", "", true},
		{"any case", f.account.ID, "Deploy", "", true},
		{"any case beyond ASCII", f.account.ID, "ΔΈΛΤΑ", "", true},
		{"fullwidth", f.account.ID, "ｄｅｐｌｏｙ", "", true},
		{"an invisible character", f.account.ID, "dep\u200bloy", "", true},
		{"another name", f.account.ID, "deploy 2", "", false},
		{"renaming itself", f.account.ID, "DEPLOY", f.apiToken.ID, false},
		{"expired one", f.account.ID, "old", "", false},
		{"another account", other.ID, "deploy", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			update(t, s, func(tx *store.Tx) error {
				taken, err := tx.APITokenNameTaken(tc.account, tc.try, tc.except, at.Add(time.Second))
				if err != nil || taken != tc.taken {
					t.Fatalf("taken %v, %v; want %v", taken, err, tc.taken)
				}
				return nil
			})
		})
	}
}
