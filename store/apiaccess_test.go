package store_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// checkApplication fails the test unless got is want as stored.
func checkApplication(t *testing.T, got, want *gatehouse.APIApplication) {
	t.Helper()
	if got == nil || got.ID != want.ID || got.AccountID != want.AccountID || got.UserID != want.UserID || got.ClientID != want.ClientID ||
		got.AccessTokenTTLDays != want.AccessTokenTTLDays || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("API application\n got %+v\nwant %+v", got, want)
	}
}

// testAPIApplicationCreate: a user has at most one application, read
// back by user.
func testAPIApplicationCreate(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	u := newUser(t, s, a, gatehouse.RoleDeveloper)
	_, err := s.APIApplication(ctx, u.ID)
	wantCode(t, err, gatehouse.ENotFound)
	app := applicationOf(u)
	app.AccessTokenTTLDays = 30
	update(t, s, func(tx *store.Tx) error { return tx.CreateAPIApplication(app) })
	got, err := s.APIApplication(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkApplication(t, got, app)
	second := applicationOf(u)
	wantCode(t, s.Update(ctx, func(tx *store.Tx) error { return tx.CreateAPIApplication(second) }), gatehouse.EConflict)
	if got, err := s.APIApplication(ctx, u.ID); err != nil || got.ID != app.ID {
		t.Fatalf("after a second create: %+v, %v", got, err)
	}
	other := newUser(t, s, a)
	update(t, s, func(tx *store.Tx) error { return tx.CreateAPIApplication(applicationOf(other)) })
}

// testAPIApplicationTTL: the lifetime of the application's tokens changes;
// a user without an application is not found.
func testAPIApplicationTTL(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	for _, days := range []int{7, 90} {
		update(t, s, func(tx *store.Tx) error { return tx.UpdateAPIApplicationTTL(f.user.ID, days) })
		want := *f.app
		want.AccessTokenTTLDays = days
		got, err := s.APIApplication(ctx, f.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkApplication(t, got, &want)
	}
	wantCode(t, s.Update(ctx, func(tx *store.Tx) error { return tx.UpdateAPIApplicationTTL(f.member.ID, 7) }), gatehouse.ENotFound)
}

// testAPIApplicationDelete: deleting reports whether there was an
// application; the second time there is none.
func testAPIApplicationDelete(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	other := applicationOf(f.member)
	update(t, s, func(tx *store.Tx) error { return tx.CreateAPIApplication(other) })
	for _, want := range []bool{true, false} {
		var found bool
		update(t, s, func(tx *store.Tx) (err error) { found, err = tx.DeleteAPIApplication(f.user.ID, at); return err })
		if found != want {
			t.Fatalf("found = %v, want %v", found, want)
		}
		_, err := s.APIApplication(ctx, f.user.ID)
		wantCode(t, err, gatehouse.ENotFound)
	}
	if got, err := s.APIApplication(ctx, f.member.ID); err != nil || got.ID != other.ID {
		t.Fatalf("another user's application: %+v, %v", got, err)
	}
	if it := issued(t, s, f.access.Hash); it.Parent.Live {
		t.Fatal("token of the deleted application still has a parent")
	}
}
