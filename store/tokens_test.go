package store_test

import (
	"maps"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testTokensCreatedTogether: many callers issuing at once — their tokens
// inserted by the batch writer in statements of many rows, beyond one
// statement's rows — each read back with every field.
func testTokensCreatedTogether(t *testing.T, s *store.Store) {
	a := newAccount(t, s)
	u := newUser(t, s, a, gatehouse.RoleDeveloper)
	const callers = 300
	toks := make([][]*gatehouse.Token, callers)
	var wg sync.WaitGroup
	for i := range toks {
		family := gatehouse.NewID("fam")
		toks[i] = []*gatehouse.Token{tokenOf(u, gatehouse.KindAccess, gatehouse.MethodPassword, "", family),
			tokenOf(u, gatehouse.KindRefresh, gatehouse.MethodPassword, "", family)}
		toks[i][0].Scopes = gatehouse.Scopes{gatehouse.ScopeUsersRead}
		toks[i][1].UserEpoch = int64(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.CreateTokens(t.Context(), toks[i]...); err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for _, pair := range toks {
		for _, want := range pair {
			checkToken(t, issued(t, s, want.Hash).Token, want)
		}
	}
}

// testTokensCreateByHash: tokens stored through the group-committed path
// or inside a transaction read back by digest with every field, their user
// and their account.
func testTokensCreateByHash(t *testing.T, s *store.Store) {
	for _, tc := range []struct {
		name   string
		create func(t *testing.T, toks ...*gatehouse.Token)
	}{
		{"Store.CreateTokens", func(t *testing.T, toks ...*gatehouse.Token) { createTokens(t, s, toks...) }},
		{"Tx.CreateTokens", func(t *testing.T, toks ...*gatehouse.Token) {
			update(t, s, func(tx *store.Tx) error { return tx.CreateTokens(toks...) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccount(t, s)
			u := newUser(t, s, a, gatehouse.RoleDeveloper)
			family := gatehouse.NewID("fam")
			access := tokenOf(u, gatehouse.KindAccess, gatehouse.MethodPassword, "", family)
			access.UserEpoch, access.PasswordEpoch = 4, 2
			refresh := tokenOf(u, gatehouse.KindRefresh, gatehouse.MethodPassword, "", family)
			used := at.Add(time.Minute)
			refresh.UsedAt, refresh.ExpiresAt = &used, at.Add(24*time.Hour)
			tc.create(t, access, refresh)
			for _, want := range []*gatehouse.Token{access, refresh} {
				got := issued(t, s, want.Hash)
				checkToken(t, got.Token, want)
				if got.User == nil || got.User.ID != u.ID || got.User.Email != u.Email || !got.User.Roles.Has(gatehouse.RoleDeveloper) {
					t.Fatalf("token's user %+v, want %+v", got.User, u)
				}
				if got.Account == nil || got.Account.ID != a.ID || !reflect.DeepEqual(got.Account.Settings, a.Settings) {
					t.Fatalf("token's account %+v, want %+v", got.Account, a)
				}
				if !got.Parent.Live || got.FamilyRevoked {
					t.Fatalf("fresh password token: parent live %v, family revoked %v", got.Parent.Live, got.FamilyRevoked)
				}
			}
		})
	}
	t.Run("unknown digest", func(t *testing.T) {
		_, err := s.TokenByHash(t.Context(), gatehouse.NewID("digest"))
		wantCode(t, err, gatehouse.ENotFound)
	})
}

// testTokensShowCurrentOwner: TokenByHash reports the user and account as
// they are now, not as they were when the token was issued.
func testTokensShowCurrentOwner(t *testing.T, s *store.Store) {
	f := newFixture(t, s)
	u, a := *f.user, *f.account
	u.Status, u.Epoch, u.PasswordEpoch = gatehouse.StatusDisabled, u.Epoch+1, u.PasswordEpoch+1
	a.Status = gatehouse.AccountSuspended
	update(t, s, func(tx *store.Tx) error {
		if err := tx.UpdateUser(&u); err != nil {
			return err
		}
		return tx.UpdateAccount(&a)
	})
	got := issued(t, s, f.access.Hash)
	checkUser(t, got.User, &u)
	if got.Account.Status != gatehouse.AccountSuspended {
		t.Fatalf("token's account status %q, want suspended", got.Account.Status)
	}
	if got.UserEpoch != f.access.UserEpoch || got.PasswordEpoch != f.access.PasswordEpoch {
		t.Fatalf("token epochs %d/%d changed with the user's", got.UserEpoch, got.PasswordEpoch)
	}
}

// testTokensParentByMethod: a token's parent is the client credential for
// the client-credentials method and the API access application for the
// API access method, found by client id; a password token has none.
func testTokensParentByMethod(t *testing.T, s *store.Store) {
	f := newFixture(t, s)
	for _, tc := range []struct {
		name     string
		method   gatehouse.AuthMethod
		clientID string
		live     bool
	}{
		{"client credentials of a credential", gatehouse.MethodClientCredentials, f.cred.ClientID, true},
		{"client credentials of an application", gatehouse.MethodClientCredentials, f.app.ClientID, false},
		{"client credentials of nothing", gatehouse.MethodClientCredentials, gatehouse.NewID("gcc"), false},
		{"API access of an application", gatehouse.MethodAPIAccess, f.app.ClientID, true},
		{"API access of a credential", gatehouse.MethodAPIAccess, f.cred.ClientID, false},
		{"API access of nothing", gatehouse.MethodAPIAccess, gatehouse.NewID("gci"), false},
		{"password", gatehouse.MethodPassword, "", true},
		{"password with a client id", gatehouse.MethodPassword, gatehouse.NewID("gci"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tokenOf(f.user, gatehouse.KindAccess, tc.method, tc.clientID, gatehouse.NewID("fam"))
			createTokens(t, s, tok)
			if got := issued(t, s, tok.Hash); got.Parent.Live != tc.live {
				t.Fatalf("ParentLive = %v, want %v", got.Parent.Live, tc.live)
			}
		})
	}
}

// testTokensParentDeleted: deleting a credential or an application ends
// its tokens, those issued before (marked revoked too) and any issued
// with its client id after; password tokens have no parent to lose.
func testTokensParentDeleted(t *testing.T, s *store.Store) {
	for _, tc := range []struct {
		name   string
		method gatehouse.AuthMethod
		parent func(f *fixture) string
		drop   func(tx *store.Tx, f *fixture) error
		live   bool // after the drop
	}{
		{"one credential", gatehouse.MethodClientCredentials, func(f *fixture) string { return f.cred.ClientID },
			func(tx *store.Tx, f *fixture) error {
				n, err := tx.DeleteCredentials(f.account.ID, f.user.ID, f.cred.ID, at)
				if err == nil && n != 1 {
					return fail("deleted %d credentials, want 1", n)
				}
				return err
			}, false},
		{"all credentials", gatehouse.MethodClientCredentials, func(f *fixture) string { return f.cred.ClientID },
			func(tx *store.Tx, f *fixture) error {
				_, err := tx.DeleteCredentials(f.account.ID, f.user.ID, "", at)
				return err
			}, false},
		{"API access application", gatehouse.MethodAPIAccess, func(f *fixture) string { return f.app.ClientID },
			func(tx *store.Tx, f *fixture) error {
				found, err := tx.DeleteAPIApplication(f.user.ID, at)
				if err == nil && !found {
					return fail("application not found")
				}
				return err
			}, false},
		{"password", gatehouse.MethodPassword, func(*fixture) string { return "" },
			func(tx *store.Tx, f *fixture) error {
				if _, err := tx.DeleteCredentials(f.account.ID, f.user.ID, "", at); err != nil {
					return err
				}
				_, err := tx.DeleteAPIApplication(f.user.ID, at)
				return err
			}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, s)
			clientID := tc.parent(f)
			before := tokenOf(f.user, gatehouse.KindAccess, tc.method, clientID, gatehouse.NewID("fam"))
			createTokens(t, s, before)
			if got := issued(t, s, before.Hash); !got.Parent.Live {
				t.Fatal("parent not live before the drop")
			}
			update(t, s, func(tx *store.Tx) error { return tc.drop(tx, f) })
			got := issued(t, s, before.Hash)
			if got.Parent.Live != tc.live {
				t.Fatalf("token issued before: ParentLive = %v, want %v", got.Parent.Live, tc.live)
			}
			if marked := got.RevokedAt != nil; marked == tc.live || (marked && !got.RevokedAt.Equal(at)) {
				t.Fatalf("token issued before: revoked at %s with its parent live %v", describeTime(got.RevokedAt), tc.live)
			}
			after := tokenOf(f.user, gatehouse.KindAccess, tc.method, clientID, gatehouse.NewID("fam"))
			createTokens(t, s, after)
			if got := issued(t, s, after.Hash); got.Parent.Live != tc.live || got.RevokedAt != nil {
				t.Fatalf("token issued after: ParentLive = %v (want %v), revoked at %s", got.Parent.Live, tc.live, describeTime(got.RevokedAt))
			}
		})
	}
}

// testTokensFamilyRevoked: revoking a refresh family ends every token of
// it, including one stored in it after the revocation, and no other.
func testTokensFamilyRevoked(t *testing.T, s *store.Store) {
	f := newFixture(t, s)
	other := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, gatehouse.NewID("fam"))
	createTokens(t, s, other)
	family := f.refresh.FamilyID
	for range 2 { // revoking twice is a no-op
		update(t, s, func(tx *store.Tx) error { return tx.RevokeTokenFamily(family, at) })
	}
	update(t, s, func(tx *store.Tx) error { return tx.RevokeTokenFamily(family, at.Add(time.Hour)) })
	late := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodAPIAccess, f.app.ClientID, family)
	createTokens(t, s, late)
	for _, tc := range []struct {
		name      string
		tok       *gatehouse.Token
		revoked   bool
		revokedAt *time.Time
	}{
		{"access token of the family", f.access, true, &at},
		{"refresh token of the family", f.refresh, true, &at},
		{"token added after the revocation", late, true, nil},
		{"token of another family", other, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := issued(t, s, tc.tok.Hash)
			if got.FamilyRevoked != tc.revoked || !sameTime(got.RevokedAt, tc.revokedAt) {
				t.Fatalf("FamilyRevoked = %v, revoked at %s; want %v, %s",
					got.FamilyRevoked, describeTime(got.RevokedAt), tc.revoked, describeTime(tc.revokedAt))
			}
		})
	}
}

// testTokensRevokeOne: RevokeToken revokes one token, keeps the first
// revocation time, and leaves its family alone.
func testTokensRevokeOne(t *testing.T, s *store.Store) {
	f := newFixture(t, s)
	later := at.Add(time.Minute)
	update(t, s, func(tx *store.Tx) error { return tx.RevokeToken(f.access.ID, at) })
	update(t, s, func(tx *store.Tx) error { return tx.RevokeToken(f.access.ID, later) })
	update(t, s, func(tx *store.Tx) error { return tx.RevokeToken(gatehouse.NewID("tok"), at) })
	if got := issued(t, s, f.access.Hash); !sameTime(got.RevokedAt, &at) || got.FamilyRevoked {
		t.Fatalf("revoked token: revoked at %s, family revoked %v; want %s, false", describeTime(got.RevokedAt), got.FamilyRevoked, describeTime(&at))
	}
	if got := issued(t, s, f.refresh.Hash); got.RevokedAt != nil || got.FamilyRevoked {
		t.Fatalf("its sibling: revoked at %s, family revoked %v", describeTime(got.RevokedAt), got.FamilyRevoked)
	}
}

// testRotateExactlyOnce: of 50 concurrent rotations of one refresh token
// exactly one wins, round after round; only the winner's successor is
// stored and the rotated token is marked used.
func testRotateExactlyOnce(t *testing.T, s *store.Store) {
	const rounds, racers = 10, 50
	f := newFixture(t, s)
	cur := f.refresh
	for round := range rounds {
		next := make([]*gatehouse.Token, racers)
		won := make([]bool, racers)
		// Ahead of the real clock: PostgreSQL stamps the later of the two.
		used := time.Now().UTC().Truncate(time.Microsecond).Add(time.Hour + time.Duration(round+1)*time.Second)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range next {
			next[i] = tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, cur.FamilyID)
			wg.Go(func() {
				<-start
				var err error
				if won[i], err = s.RotateRefreshToken(t.Context(), cur.ID, clockAt(used), nil, next[i]); err != nil {
					t.Errorf("round %d, rotation %d: %v", round, i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		var winner *gatehouse.Token
		for i, ok := range won {
			if !ok {
				continue
			}
			if winner != nil {
				t.Fatalf("round %d: more than one rotation won", round)
			}
			winner = next[i]
		}
		if winner == nil {
			t.Fatalf("round %d: no rotation won", round)
		}
		checkToken(t, issued(t, s, winner.Hash).Token, winner)
		for i, tok := range next {
			if _, err := s.TokenByHash(t.Context(), tok.Hash); !won[i] && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
				t.Fatalf("round %d: a losing rotation's successor: %v, want not_found", round, err)
			}
		}
		if got := issued(t, s, cur.Hash); !sameTime(got.UsedAt, &used) {
			t.Fatalf("round %d: rotated token used at %s, want %s", round, describeTime(got.UsedAt), describeTime(&used))
		}
		cur = winner
	}
}

// testRotateRefused: a used, revoked, or revoked-family refresh token
// does not rotate; nothing is stored and no error is returned.
func testRotateRefused(t *testing.T, s *store.Store) {
	for _, tc := range []struct {
		name string
		// prepare returns the stored refresh token to rotate, in a state
		// that refuses rotation.
		prepare func(t *testing.T, f *fixture) *gatehouse.Token
	}{
		{"used", func(t *testing.T, f *fixture) *gatehouse.Token {
			next := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, f.refresh.FamilyID)
			if won, err := s.RotateRefreshToken(t.Context(), f.refresh.ID, clockAt(at), nil, next); err != nil || !won {
				t.Fatalf("first rotation: %v, %v", won, err)
			}
			return f.refresh
		}},
		{"revoked", func(t *testing.T, f *fixture) *gatehouse.Token {
			update(t, s, func(tx *store.Tx) error { return tx.RevokeToken(f.refresh.ID, at) })
			return f.refresh
		}},
		{"revoked family", func(t *testing.T, f *fixture) *gatehouse.Token {
			update(t, s, func(tx *store.Tx) error { return tx.RevokeTokenFamily(f.refresh.FamilyID, at) })
			return f.refresh
		}},
		{"added to a revoked family", func(t *testing.T, f *fixture) *gatehouse.Token {
			update(t, s, func(tx *store.Tx) error { return tx.RevokeTokenFamily(f.refresh.FamilyID, at) })
			late := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, f.refresh.FamilyID)
			createTokens(t, s, late)
			return late
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, s)
			cur := tc.prepare(t, f)
			before := issued(t, s, cur.Hash)
			next := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, cur.FamilyID)
			won, err := s.RotateRefreshToken(t.Context(), cur.ID, clockAt(at.Add(time.Hour)), nil, next)
			if err != nil || won {
				t.Fatalf("rotation: won %v, %v; want refused without error", won, err)
			}
			_, err = s.TokenByHash(t.Context(), next.Hash)
			wantCode(t, err, gatehouse.ENotFound)
			checkToken(t, issued(t, s, cur.Hash).Token, before.Token)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		f := newFixture(t, s)
		next := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, f.refresh.FamilyID)
		if won, err := s.RotateRefreshToken(t.Context(), gatehouse.NewID("tok"), clockAt(at), nil, next); err != nil || won {
			t.Fatalf("rotation of an unknown token: won %v, %v", won, err)
		}
	})
}

// testLiveTokens: only tokens that still work count, by method, for a user
// or for one client id.
func testLiveTokens(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	cc := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodClientCredentials, f.cred.ClientID, "")
	pw := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodPassword, "", "")
	oldPW := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodPassword, "", "")
	oldPW.PasswordEpoch = f.user.PasswordEpoch - 1
	expired := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodClientCredentials, f.cred.ClientID, "")
	expired.ExpiresAt = at.Add(time.Minute)
	used := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, gatehouse.NewID("fam"))
	used.UsedAt = &at
	memberTok := tokenOf(f.member, gatehouse.KindAccess, gatehouse.MethodPassword, "", "")
	createTokens(t, s, cc, pw, oldPW, expired, used, memberTok)
	now := at.Add(30 * time.Minute)
	count := func(f store.TokenFilter) map[gatehouse.AuthMethod]int {
		t.Helper()
		m, err := s.LiveTokens(ctx, f, now)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := map[gatehouse.AuthMethod]int{gatehouse.MethodAPIAccess: 2, gatehouse.MethodClientCredentials: 1, gatehouse.MethodPassword: 1}
	if got := count(store.TokenFilter{UserID: f.user.ID}); !maps.Equal(got, want) {
		t.Fatalf("user's live tokens %v, want %v", got, want)
	}
	if got := count(store.TokenFilter{ClientID: f.cred.ClientID}); !maps.Equal(got, map[gatehouse.AuthMethod]int{gatehouse.MethodClientCredentials: 1}) {
		t.Fatalf("credential's live tokens %v", got)
	}
	update(t, s, func(tx *store.Tx) error { return tx.RevokeTokenFamily(f.access.FamilyID, at) })
	delete(want, gatehouse.MethodAPIAccess)
	if got := count(store.TokenFilter{UserID: f.user.ID}); !maps.Equal(got, want) {
		t.Fatalf("after revoking the family %v, want %v", got, want)
	}
}

// clockAt is a clock stopped at t.
func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// testHotWritesPrepared: once the batch writer has written a group, every
// write of the hot path is a prepared statement, and a rotation through
// the prepared compare-and-swap still wins once. (A hot write the
// database cannot prepare costs a failed round trip, and an error in the
// database's log, with every group.)
func testHotWritesPrepared(t *testing.T, s *store.Store) {
	f := newFixture(t, s)
	cur := f.refresh
	for round := range 2 {
		next := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, cur.FamilyID)
		at := time.Now().UTC().Truncate(time.Microsecond).Add(time.Hour + time.Duration(round)*time.Second)
		if won, err := s.RotateRefreshToken(t.Context(), cur.ID, clockAt(at), nil, next); err != nil || !won {
			t.Fatalf("rotation %d: won %v, %v", round, won, err)
		}
		if won, err := s.RotateRefreshToken(t.Context(), cur.ID, clockAt(at), nil, next); err != nil || won {
			t.Fatalf("rotation %d again: won %v, %v", round, won, err)
		}
		if left := s.HotWritesUnprepared(); len(left) > 0 {
			t.Fatalf("after rotation %d, not prepared: %q", round, left)
		}
		cur = next
	}
}
