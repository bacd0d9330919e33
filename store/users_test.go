package store_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testUserCreateGet: a user reads back with every field as stored.
func testUserCreateGet(t *testing.T, s *store.Store) {
	a := newAccount(t, s)
	for _, tc := range []struct {
		name string
		user func() *gatehouse.User
	}{
		{"member", func() *gatehouse.User { return userOf(a) }},
		{"operator admin", func() *gatehouse.User {
			u := userOf(a, gatehouse.RoleDeveloper, gatehouse.RoleAdmin)
			u.Operator, u.Email, u.Name = true, "Boss@Example.com", "Boss"
			return u
		}},
		{"disabled with epochs", func() *gatehouse.User {
			u := userOf(a, gatehouse.RoleDeveloper)
			u.Status, u.Epoch, u.PasswordEpoch, u.PasswordHash = gatehouse.StatusDisabled, 3, 5, ""
			u.UpdatedAt = at.Add(time.Second)
			return u
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := createUser(t, s, tc.user())
			got, err := s.User(t.Context(), a.ID, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkUser(t, got, want)
		})
	}
}

// testUserEmailUnique: an e-mail is taken server-wide, whatever its case
// and surrounding space; a conflicting create or update stores nothing.
func testUserEmailUnique(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	taken := userOf(a)
	taken.Email = "Taken@Example.com"
	createUser(t, s, taken)
	for _, tc := range []struct {
		name, email string
		account     *gatehouse.Account
	}{
		{"same", "Taken@Example.com", a},
		{"lower case", "taken@example.com", a},
		{"upper case", "TAKEN@EXAMPLE.COM", a},
		{"surrounding space", "  taken@example.com\t", a},
		{"another account", "taken@example.com", b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := userOf(tc.account)
			u.Email = tc.email
			wantCode(t, s.Update(ctx, func(tx *store.Tx) error { return tx.CreateUser(u) }), gatehouse.EConflict)
			_, err := s.User(ctx, tc.account.ID, u.ID)
			wantCode(t, err, gatehouse.ENotFound)
		})
	}
	t.Run("another address", func(t *testing.T) {
		u := userOf(a)
		u.Email = "taken2@example.com"
		createUser(t, s, u)
	})
	t.Run("update to a taken address", func(t *testing.T) {
		other := newUser(t, s, b)
		changed := *other
		changed.Email, changed.Name = " TAKEN@example.com", "Changed"
		wantCode(t, s.Update(ctx, func(tx *store.Tx) error { return tx.UpdateUser(&changed) }), gatehouse.EConflict)
		got, err := s.User(ctx, b.ID, other.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkUser(t, got, other)
	})
}

// testUserOtherAccount: a user is not found, nor changed, through another
// account.
func testUserOtherAccount(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	u := newUser(t, s, a, gatehouse.RoleAdmin)
	for _, tc := range []struct {
		name string
		op   func(accountID string) error
	}{
		{"Store.User", func(accountID string) error { _, err := s.User(ctx, accountID, u.ID); return err }},
		{"Tx.User", func(accountID string) error {
			return s.Update(ctx, func(tx *store.Tx) error { _, err := tx.User(accountID, u.ID); return err })
		}},
		{"Tx.UpdateUser", func(accountID string) error {
			changed := *u
			changed.AccountID = accountID
			return s.Update(ctx, func(tx *store.Tx) error { return tx.UpdateUser(&changed) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.op(b.ID), gatehouse.ENotFound)
			if err := tc.op(a.ID); err != nil {
				t.Fatalf("through its own account: %v", err)
			}
		})
	}
	got, err := s.User(ctx, a.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, u)
}

// testUserUpdate: each field UpdateUser writes reads back, and the others
// stay as they were.
func testUserUpdate(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	u := newUser(t, s, a, gatehouse.RoleDeveloper)
	for _, tc := range []struct {
		name   string
		change func(*gatehouse.User)
	}{
		{"name", func(u *gatehouse.User) { u.Name = "Renamed" }},
		{"roles", func(u *gatehouse.User) { u.Roles = gatehouse.Roles{gatehouse.RoleAdmin, gatehouse.RoleDeveloper} }},
		{"no roles", func(u *gatehouse.User) { u.Roles = gatehouse.Roles{} }},
		{"disable", func(u *gatehouse.User) { u.Status = gatehouse.StatusDisabled }},
		{"epochs", func(u *gatehouse.User) { u.Epoch, u.PasswordEpoch = u.Epoch+1, u.PasswordEpoch+2 }},
		{"enable", func(u *gatehouse.User) { u.Status = gatehouse.StatusActive }},
		{"operator", func(u *gatehouse.User) { u.Operator = true }},
		{"password", func(u *gatehouse.User) { u.PasswordHash = "argon2id$other" }},
		{"email", func(u *gatehouse.User) { u.Email = "New@Example.com" }},
		{"updated at", func(u *gatehouse.User) { u.UpdatedAt = u.UpdatedAt.Add(time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := s.User(ctx, a.ID, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(want)
			update(t, s, func(tx *store.Tx) error { return tx.UpdateUser(want) })
			got, err := s.User(ctx, a.ID, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkUser(t, got, want)
		})
	}
	t.Run("email frees the old address", func(t *testing.T) {
		_, err := s.UserByEmail(ctx, u.Email)
		wantCode(t, err, gatehouse.ENotFound)
		if got, err := s.UserByEmail(ctx, "new@example.com"); err != nil || got.ID != u.ID {
			t.Fatalf("by new address: %+v, %v", got, err)
		}
	})
	t.Run("missing user", func(t *testing.T) {
		missing := userOf(a)
		wantCode(t, s.Update(ctx, func(tx *store.Tx) error { return tx.UpdateUser(missing) }), gatehouse.ENotFound)
	})
}

// testUserByEmail: a user is found by e-mail in any case and with
// surrounding space, outside and inside a transaction; the stored address
// keeps its case.
func testUserByEmail(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	newUser(t, s, a) // someone else
	u := userOf(a, gatehouse.RoleAdmin)
	u.Email = "Admin@Example.com"
	createUser(t, s, u)
	lookups := []struct {
		name string
		find func(email string) (*gatehouse.User, error)
	}{
		{"Store.UserByEmail", func(email string) (*gatehouse.User, error) { return s.UserByEmail(ctx, email) }},
		{"Tx.UserByEmail", func(email string) (found *gatehouse.User, err error) {
			err = s.Update(ctx, func(tx *store.Tx) error { found, err = tx.UserByEmail(email); return err })
			return found, err
		}},
	}
	for _, l := range lookups {
		for _, tc := range []struct {
			name, email string
			found       bool
		}{
			{"as stored", "Admin@Example.com", true},
			{"lower case", "admin@example.com", true},
			{"upper case", "ADMIN@EXAMPLE.COM", true},
			{"surrounding space", " admin@example.COM  ", true},
			{"unknown", "nobody@example.com", false},
			{"prefix", "admin@example.co", false},
		} {
			t.Run(l.name+"/"+tc.name, func(t *testing.T) {
				got, err := l.find(tc.email)
				if !tc.found {
					wantCode(t, err, gatehouse.ENotFound)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				checkUser(t, got, u)
			})
		}
	}
}

// testUsersPaging: an account's users page through once each, in id
// order, without other accounts' users.
func testUsersPaging(t *testing.T, s *store.Store) {
	a, b := newAccount(t, s), newAccount(t, s)
	var want []string
	for range 5 {
		want = append(want, newUser(t, s, a).ID)
	}
	newUser(t, s, b)
	slices.Sort(want)
	got, sizes := pageAll(t, 2, func(p gatehouse.Page) ([]string, string, error) {
		return ids(func(u *gatehouse.User) string { return u.ID })(s.Users(t.Context(), a.ID, p))
	})
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("users %v in pages of %v, want %v in pages of [2 2 1]", got, sizes, want)
	}
}

// testCountActiveAdmins: only the account's active users with the admin
// role count, as they are now.
func testCountActiveAdmins(t *testing.T, s *store.Store) {
	a, b := newAccount(t, s), newAccount(t, s)
	admin := newUser(t, s, a, gatehouse.RoleAdmin)
	newUser(t, s, a, gatehouse.RoleDeveloper, gatehouse.RoleAdmin)
	disabled := userOf(a, gatehouse.RoleAdmin)
	disabled.Status = gatehouse.StatusDisabled
	createUser(t, s, disabled)
	newUser(t, s, a, gatehouse.RoleDeveloper)
	newUser(t, s, a)
	newUser(t, s, b, gatehouse.RoleAdmin)
	count := func(t *testing.T, accountID string) (n int) {
		t.Helper()
		update(t, s, func(tx *store.Tx) (err error) { n, err = tx.CountActiveAdmins(accountID); return err })
		return n
	}
	if n := count(t, a.ID); n != 2 {
		t.Fatalf("%d active admins, want 2", n)
	}
	if n := count(t, b.ID); n != 1 {
		t.Fatalf("other account: %d active admins, want 1", n)
	}
	admin.Status = gatehouse.StatusDisabled
	update(t, s, func(tx *store.Tx) error { return tx.UpdateUser(admin) })
	if n := count(t, a.ID); n != 1 {
		t.Fatalf("after disabling one: %d active admins, want 1", n)
	}
	if n := count(t, gatehouse.NewID("acc")); n != 0 {
		t.Fatalf("unknown account: %d active admins", n)
	}
}

// testUsersFind: the filter matches a part of the e-mail or name in any
// case, whole roles, no role, and a status; wildcards in the query match
// themselves; pages run both ways and stay within the account.
func testUsersFind(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	mk := func(email, name string, status gatehouse.UserStatus, roles ...gatehouse.Role) *gatehouse.User {
		u := userOf(a, roles...)
		u.Email, u.Name, u.Status = email, name, status
		return createUser(t, s, u)
	}
	ann := mk("Ann.Lee-"+newEmail(), "Ann Lee", gatehouse.StatusActive, gatehouse.RoleAdmin)
	bob := mk("bob-"+newEmail(), "Bob 100% Real", gatehouse.StatusDisabled, gatehouse.RoleDeveloper)
	cat := mk("cat-"+newEmail(), "Catherine_x", gatehouse.StatusActive)
	dev := mk("dan-"+newEmail(), "Dan", gatehouse.StatusActive, gatehouse.RoleAdmin, gatehouse.RoleDeveloper)
	other := userOf(b)
	other.Name = "Ann Lee"
	createUser(t, s, other)
	for _, tc := range []struct {
		name string
		f    gatehouse.UserFilter
		want []*gatehouse.User
	}{
		{"all", gatehouse.UserFilter{}, []*gatehouse.User{ann, bob, cat, dev}},
		{"email prefix any case", gatehouse.UserFilter{Query: "ANN.LEE"}, []*gatehouse.User{ann}},
		{"name prefix any case", gatehouse.UserFilter{Query: "cATH"}, []*gatehouse.User{cat}},
		{"a part inside is not a prefix", gatehouse.UserFilter{Query: "therine"}, nil},
		{"percent is literal", gatehouse.UserFilter{Query: "bob 100%"}, []*gatehouse.User{bob}},
		{"percent matches nothing else", gatehouse.UserFilter{Query: "bob%"}, nil},
		{"underscore is literal", gatehouse.UserFilter{Query: "Catherine_"}, []*gatehouse.User{cat}},
		{"underscore matches nothing else", gatehouse.UserFilter{Query: "Cat_"}, nil},
		{"a whole e-mail address", gatehouse.UserFilter{Query: cat.Email}, []*gatehouse.User{cat}},
		{"no match", gatehouse.UserFilter{Query: "zz%"}, nil},
		{"admins", gatehouse.UserFilter{Role: gatehouse.RoleAdmin}, []*gatehouse.User{ann, dev}},
		{"developers", gatehouse.UserFilter{Role: gatehouse.RoleDeveloper}, []*gatehouse.User{bob, dev}},
		{"members", gatehouse.UserFilter{Role: gatehouse.RoleMember}, []*gatehouse.User{cat}},
		{"disabled", gatehouse.UserFilter{Status: gatehouse.StatusDisabled}, []*gatehouse.User{bob}},
		{"active developers named d", gatehouse.UserFilter{Query: "d", Role: gatehouse.RoleDeveloper, Status: gatehouse.StatusActive}, []*gatehouse.User{dev}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, c, err := s.FindUsers(ctx, a.ID, tc.f, gatehouse.Page{})
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs, wantIDs []string
			for _, u := range got {
				gotIDs = append(gotIDs, u.ID)
			}
			for _, u := range tc.want {
				wantIDs = append(wantIDs, u.ID)
			}
			slices.Sort(wantIDs) // ids made in one millisecond order at random
			if !slices.Equal(gotIDs, wantIDs) || c != (gatehouse.Cursors{}) {
				t.Fatalf("found %v (cursors %+v), want %v", gotIDs, c, wantIDs)
			}
			if n, err := s.CountUsers(ctx, a.ID, tc.f); err != nil || n != len(tc.want) {
				t.Fatalf("count %d, %v; want %d", n, err, len(tc.want))
			}
		})
	}
	t.Run("names beyond ASCII", func(t *testing.T) {
		// Both stores find a name by its own letters, the ASCII ones in
		// any case (SQLite's LOWER folds no others).
		olaf := userOf(b)
		olaf.Name = "Ölaf Ström"
		olaf = createUser(t, s, olaf)
		for _, q := range []string{"Ölaf", "ÖLAF Str", "Ölaf Ström"} {
			got, _, err := s.FindUsers(ctx, b.ID, gatehouse.UserFilter{Query: q}, gatehouse.Page{})
			if err != nil || len(got) != 1 || got[0].ID != olaf.ID {
				t.Fatalf("%q found %v (%v), want %s", q, got, err, olaf.ID)
			}
		}
	})
	t.Run("pages both ways", func(t *testing.T) {
		all := []string{ann.ID, bob.ID, cat.ID, dev.ID}
		slices.Sort(all)
		list := func(p gatehouse.Page) ([]string, gatehouse.Cursors) {
			t.Helper()
			us, c, err := s.FindUsers(ctx, a.ID, gatehouse.UserFilter{}, p)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, u := range us {
				out = append(out, u.ID)
			}
			return out, c
		}
		first, c1 := list(gatehouse.Page{Limit: 3})
		if !slices.Equal(first, all[:3]) || c1.Next != all[2] || c1.Prev != "" {
			t.Fatalf("first page %v %+v", first, c1)
		}
		second, c2 := list(gatehouse.Page{Limit: 3, After: c1.Next})
		if !slices.Equal(second, all[3:]) || c2.Next != "" || c2.Prev != all[3] {
			t.Fatalf("second page %v %+v", second, c2)
		}
		back, c3 := list(gatehouse.Page{Limit: 3, Before: c2.Prev})
		if !slices.Equal(back, all[:3]) || c3.Next != all[2] || c3.Prev != "" {
			t.Fatalf("back to the first page %v %+v", back, c3)
		}
		mid, c4 := list(gatehouse.Page{Limit: 2, Before: all[3]})
		if !slices.Equal(mid, all[1:3]) || c4.Next != all[2] || c4.Prev != all[1] {
			t.Fatalf("page before the last %v %+v", mid, c4)
		}
	})
}

// testUserDelete: deleting a user is revoking; the user is found by no
// read (id, address, list, count), cannot be deleted twice, and its
// address is free for a new user in any case; their second factors —
// TOTP, passkeys, recovery codes — go with them, another user's stay.
func testUserDelete(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	keep := newUser(t, s, a, gatehouse.RoleAdmin)
	u := newUser(t, s, a)
	at := time.Now().UTC()
	for i, uid := range []string{u.ID, keep.ID} {
		n := strconv.Itoa(i)
		update(t, s, func(tx *store.Tx) error {
			if err := tx.PutTOTP(&store.TOTP{UserID: uid, Sealed: "v1." + n, CreatedAt: at}); err != nil {
				return err
			}
			if _, err := tx.UseTOTPStep(uid, 10, true, at); err != nil {
				return err
			}
			if err := tx.CreatePasskey(&store.Passkey{ID: "pk_del" + n, AccountID: a.ID, UserID: uid, CredentialID: "ZGVs" + n,
				Name: "Laptop", Credential: "{}", CreatedAt: at}); err != nil {
				return err
			}
			return tx.ReplaceRecoveryCodes(uid, []string{"code" + n + "a", "code" + n + "b"}, at)
		})
		if f, err := s.Factors(ctx, uid); err != nil || !f.TOTP || f.Passkeys != 1 || f.RecoveryCodesLeft != 2 {
			t.Fatalf("factors before the delete: %+v %v", f, err)
		}
	}
	if !update(t, s, func(tx *store.Tx) error { return tx.DeleteUser(u, at) }) {
		t.Fatal("deleting a user is not revoking")
	}
	if f, err := s.Factors(ctx, u.ID); err != nil || f.TOTP || f.Passkeys != 0 || f.RecoveryCodesLeft != 0 {
		t.Fatalf("a deleted user's second factors are left: %+v %v", f, err)
	}
	if _, err := s.TOTP(ctx, u.ID); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("a deleted user's TOTP enrolment is left: %v", err)
	}
	if _, err := s.PasskeyByCredentialID(ctx, "ZGVs0"); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("a deleted user's passkey is left: %v", err)
	}
	if f, err := s.Factors(ctx, keep.ID); err != nil || !f.TOTP || f.Passkeys != 1 || f.RecoveryCodesLeft != 2 {
		t.Fatalf("another user's factors after the delete: %+v %v", f, err)
	}
	wantCode(t, func() error { _, err := s.User(ctx, a.ID, u.ID); return err }(), gatehouse.ENotFound)
	wantCode(t, s.Update(ctx, func(tx *store.Tx) error { _, err := tx.User(a.ID, u.ID); return err }), gatehouse.ENotFound)
	wantCode(t, func() error { _, err := s.UserByEmail(ctx, u.Email); return err }(), gatehouse.ENotFound)
	list, _, err := s.FindUsers(ctx, a.ID, gatehouse.UserFilter{}, gatehouse.Page{Limit: 200})
	if err != nil || len(list) != 1 || list[0].ID != keep.ID {
		t.Fatalf("list after the delete: %v %v", list, err)
	}
	if n, err := s.CountUsers(ctx, a.ID, gatehouse.UserFilter{}); err != nil || n != 1 {
		t.Fatalf("count after the delete: %d %v", n, err)
	}
	wantCode(t, s.Update(ctx, func(tx *store.Tx) error { return tx.DeleteUser(u, at) }), gatehouse.ENotFound)
	// The address is free, in any case.
	again := userOf(a)
	again.Email = strings.ToUpper(u.Email)
	createUser(t, s, again)
}
