package store_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testBootstrapClaimedOnce: the first bootstrap claims the store; a second
// stores nothing and the claim names the first account.
func testBootstrapClaimedOnce(t *testing.T, s *store.Store) {
	ctx := t.Context()
	var before error
	update(t, s, func(tx *store.Tx) error { _, before = tx.BootstrapAccountID(); return nil })
	wantCode(t, before, gatehouse.ENotFound)

	first, second := accountOf(), accountOf()
	firstAdmin, secondAdmin := userOf(first, gatehouse.RoleAdmin), userOf(second, gatehouse.RoleAdmin)
	firstAdmin.Operator, secondAdmin.Operator = true, true
	if created, err := bootstrap(ctx, s, first, firstAdmin); err != nil || !created {
		t.Fatalf("first bootstrap: created %v, %v", created, err)
	}
	if created, err := bootstrap(ctx, s, second, secondAdmin); err != nil || created {
		t.Fatalf("second bootstrap: created %v, %v", created, err)
	}
	_, err := s.Account(ctx, second.ID)
	wantCode(t, err, gatehouse.ENotFound)
	_, err = s.UserByEmail(ctx, secondAdmin.Email)
	wantCode(t, err, gatehouse.ENotFound)
	if u, err := s.UserByEmail(ctx, firstAdmin.Email); err != nil || !u.Operator || u.AccountID != first.ID {
		t.Fatalf("first admin: %+v, %v", u, err)
	}
	var claimed string
	update(t, s, func(tx *store.Tx) (err error) { claimed, err = tx.BootstrapAccountID(); return err })
	if claimed != first.ID {
		t.Fatalf("bootstrap account %q, want %q", claimed, first.ID)
	}
}

// testAccountCreateGet: an account reads back as stored, active unless
// created otherwise.
func testAccountCreateGet(t *testing.T, s *store.Store) {
	settings := gatehouse.DefaultSettings()
	settings.RateLimit.Burst, settings.TokenLifetimes.PasswordSeconds = 7, 600
	settings.PasswordGrantEnabled, settings.APITokensEnabled = false, true
	for _, tc := range []struct {
		name         string
		status, want gatehouse.AccountStatus
	}{
		{"status defaults to active", "", gatehouse.AccountActive},
		{"active", gatehouse.AccountActive, gatehouse.AccountActive},
		{"suspended", gatehouse.AccountSuspended, gatehouse.AccountSuspended},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "Acme " + tc.name, Status: tc.status, Settings: settings, CreatedAt: at}
			update(t, s, func(tx *store.Tx) error { return tx.CreateAccount(a) })
			got, err := s.Account(t.Context(), a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != a.ID || got.Name != a.Name || got.Status != tc.want || !reflect.DeepEqual(got.Settings, settings) || !got.CreatedAt.Equal(at) {
				t.Fatalf("account\n got %+v\nwant %+v with status %q", *got, *a, tc.want)
			}
		})
	}
}

// testAccountNotFound: every way to reach a missing account says
// not_found.
func testAccountNotFound(t *testing.T, s *store.Store) {
	ctx, missing := t.Context(), gatehouse.NewID("acc")
	newAccount(t, s) // the store is not empty
	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"Store.Account", func() error { _, err := s.Account(ctx, missing); return err }},
		{"Tx.Account", func() error {
			return s.Update(ctx, func(tx *store.Tx) error { _, err := tx.Account(missing); return err })
		}},
		{"Tx.UpdateAccount", func() error {
			return s.Update(ctx, func(tx *store.Tx) error {
				return tx.UpdateAccount(&gatehouse.Account{ID: missing, Name: "x", Status: gatehouse.AccountActive, Settings: gatehouse.DefaultSettings()})
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.op(), gatehouse.ENotFound) })
	}
}

// testAccountsPaging: the account list pages through every account once,
// in id order.
func testAccountsPaging(t *testing.T, s *store.Store) {
	var want []string
	for range 5 {
		want = append(want, newAccount(t, s).ID)
	}
	slices.Sort(want)
	got, sizes := pageAll(t, 2, func(p gatehouse.Page) ([]string, string, error) {
		return ids(func(a *gatehouse.Account) string { return a.ID })(s.Accounts(t.Context(), p))
	})
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("accounts %v in pages of %v, want %v in pages of [2 2 1]", got, sizes, want)
	}
}

// testAccountUpdate: name, status and settings are written; suspending and
// reactivating read back.
func testAccountUpdate(t *testing.T, s *store.Store) {
	a := newAccount(t, s)
	settings := a.Settings
	settings.RateLimit.Daily, settings.TokenLifetimes.ClientCredentialsSeconds, settings.APITokensEnabled = 10, 120, true
	for _, tc := range []struct {
		name   string
		change func(*gatehouse.Account)
	}{
		{"suspend", func(a *gatehouse.Account) { a.Status = gatehouse.AccountSuspended }},
		{"rename", func(a *gatehouse.Account) { a.Name = "Renamed" }},
		{"settings", func(a *gatehouse.Account) { a.Settings = settings }},
		{"reactivate", func(a *gatehouse.Account) { a.Status = gatehouse.AccountActive }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := s.Account(t.Context(), a.ID)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(want)
			update(t, s, func(tx *store.Tx) error { return tx.UpdateAccount(want) })
			got, err := s.Account(t.Context(), a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, *want) {
				t.Fatalf("account\n got %+v\nwant %+v", *got, *want)
			}
		})
	}
}

// testShareActiveAccount: the account shared and its status read in one
// step report active and suspended accounts as they are, a missing one as
// not_found, and a suspension holding the account when the read starts as
// the suspension leaves it (the read waits for it on PostgreSQL; SQLite
// runs one write transaction at a time).
func testShareActiveAccount(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	active := func() (got bool) {
		t.Helper()
		update(t, s, func(tx *store.Tx) (err error) { got, err = tx.ShareActiveAccount(a.ID); return err })
		return got
	}
	if !active() {
		t.Fatal("an active account read as suspended")
	}
	err := s.Update(ctx, func(tx *store.Tx) error { _, err := tx.ShareActiveAccount(gatehouse.NewID("acc")); return err })
	wantCode(t, err, gatehouse.ENotFound)

	locked, release := make(chan struct{}), make(chan struct{})
	suspended := make(chan error, 1)
	go func() {
		suspended <- s.Update(ctx, func(tx *store.Tx) error {
			held, err := tx.Account(a.ID)
			if err != nil {
				return err
			}
			held.Status = gatehouse.AccountSuspended
			if err := tx.UpdateAccount(held); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	read := make(chan bool, 1)
	go func() { read <- active() }()
	time.Sleep(100 * time.Millisecond) // the read waits for the suspension
	close(release)
	if err := <-suspended; err != nil {
		t.Fatal(err)
	}
	if <-read {
		t.Fatal("a read waiting for a suspension found the account active")
	}
}
