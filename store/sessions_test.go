package store_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// checkSession fails the test unless got is want as stored.
func checkSession(t *testing.T, got, want *store.Session) {
	t.Helper()
	if got == nil || got.ID != want.ID || got.Hash != want.Hash || got.UserID != want.UserID || got.CSRF != want.CSRF ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		got.UserEpoch != want.UserEpoch || got.PasswordEpoch != want.PasswordEpoch {
		t.Fatalf("session\n got %+v\nwant %+v", got, want)
	}
}

// testSessions: a session reads back by digest with its user and account,
// until it is deleted.
func testSessions(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	other := sessionOf(f.member)
	other.UserEpoch, other.PasswordEpoch = 2, 3
	update(t, s, func(tx *store.Tx) error { return tx.CreateSession(other) })
	for _, want := range []*store.Session{f.session, other} {
		se, u, a, err := s.SessionByHash(ctx, want.Hash)
		if err != nil {
			t.Fatal(err)
		}
		checkSession(t, se, want)
		if u == nil || u.ID != want.UserID || a == nil || a.ID != f.account.ID || !reflect.DeepEqual(a.Settings, f.account.Settings) {
			t.Fatalf("session's user %+v and account %+v", u, a)
		}
	}
	_, _, _, err := s.SessionByHash(ctx, gatehouse.NewID("digest"))
	wantCode(t, err, gatehouse.ENotFound)
	for range 2 { // deleting twice is a no-op
		if err := s.DeleteSession(ctx, f.session.ID); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _, err = s.SessionByHash(ctx, f.session.Hash)
	wantCode(t, err, gatehouse.ENotFound)
	if _, _, _, err := s.SessionByHash(ctx, other.Hash); err != nil {
		t.Fatalf("another session after a delete: %v", err)
	}
}

// testKeepCredential: KeepCredential moves the user's own session or
// password token onto the user's current epochs, and nothing else.
func testKeepCredential(t *testing.T, s *store.Store) {
	f := newFixture(t, s)
	u := *f.user
	u.Epoch, u.PasswordEpoch = 1, 2
	update(t, s, func(tx *store.Tx) error { return tx.UpdateUser(&u) })
	password := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodPassword, "", gatehouse.NewID("fam"))
	otherPassword := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodPassword, "", gatehouse.NewID("fam"))
	memberPassword := tokenOf(f.member, gatehouse.KindAccess, gatehouse.MethodPassword, "", gatehouse.NewID("fam"))
	createTokens(t, s, password, otherPassword, memberPassword)
	otherSession, memberSession := sessionOf(f.user), sessionOf(f.member)
	update(t, s, func(tx *store.Tx) error {
		if err := tx.CreateSession(otherSession); err != nil {
			return err
		}
		return tx.CreateSession(memberSession)
	})
	epochs := func(t *testing.T, c any) [2]int64 {
		t.Helper()
		switch c := c.(type) {
		case *gatehouse.Token:
			it := issued(t, s, c.Hash)
			return [2]int64{it.UserEpoch, it.PasswordEpoch}
		case *store.Session:
			se, _, _, err := s.SessionByHash(t.Context(), c.Hash)
			if err != nil {
				t.Fatal(err)
			}
			return [2]int64{se.UserEpoch, se.PasswordEpoch}
		}
		panic("no epochs")
	}
	kept, old := [2]int64{1, 2}, [2]int64{0, 0}
	for _, tc := range []struct {
		name   string
		id     string
		method gatehouse.AuthMethod
		cred   any // whose epochs are checked
		want   [2]int64
	}{
		{"session", f.session.ID, gatehouse.MethodSession, f.session, kept},
		{"password token", password.ID, gatehouse.MethodPassword, password, kept},
		{"API access token", f.access.ID, gatehouse.MethodAPIAccess, f.access, old},
		{"another user's session", memberSession.ID, gatehouse.MethodSession, memberSession, old},
		{"another user's password token", memberPassword.ID, gatehouse.MethodPassword, memberPassword, old},
		{"session id as a password token", otherSession.ID, gatehouse.MethodPassword, otherSession, old},
	} {
		t.Run(tc.name, func(t *testing.T) {
			update(t, s, func(tx *store.Tx) error { return tx.KeepCredential(tc.id, tc.method, &u) })
			if got := epochs(t, tc.cred); got != tc.want {
				t.Fatalf("epochs %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("others untouched", func(t *testing.T) {
		for _, c := range []any{otherPassword, otherSession} {
			if got := epochs(t, c); got != old {
				t.Fatalf("epochs %v of a credential not kept", got)
			}
		}
	})
}

// testUsage: usage counts add up per account, day, user and credential,
// each outcome apart, and read back in order from a given day.
func testUsage(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	key := func(account, day, user, cred string) store.UsageKey { return store.UsageKey{account, day, user, cred} }
	served := func(n int64) store.UsageCounts { return store.UsageCounts{Served: n} }
	for _, counts := range []map[store.UsageKey]store.UsageCounts{
		{
			key(a.ID, "2026-01-01", "u1", "password:"):       served(2),
			key(a.ID, "2026-01-02", "u1", "password:"):       served(1),
			key(a.ID, "2026-01-02", "u2", "api_token:atk_1"): {Served: 4, Forbidden: 1},
			key(a.ID, "2026-01-02", "", "api_token:atk_1"):   {Unauthorized: 2, Limited: 3},
			key(b.ID, "2026-01-01", "u9", "password:"):       served(7),
		},
		{
			key(a.ID, "2026-01-01", "u1", "password:"):       {Served: 3, Limited: 1},
			key(a.ID, "2026-01-02", "u2", "api_token:atk_1"): {Forbidden: 2},
		},
		nil,
	} {
		if err := s.AddUsage(ctx, counts); err != nil {
			t.Fatal(err)
		}
	}
	row := func(day, user, cred string, c store.UsageCounts) store.UsageRow {
		return store.UsageRow{day, user, cred, c}
	}
	for _, tc := range []struct {
		name, account, since string
		want                 []store.UsageRow
	}{
		{"all days", a.ID, "2026-01-01", []store.UsageRow{
			row("2026-01-01", "u1", "password:", store.UsageCounts{Served: 5, Limited: 1}),
			row("2026-01-02", "", "api_token:atk_1", store.UsageCounts{Unauthorized: 2, Limited: 3}),
			row("2026-01-02", "u1", "password:", served(1)),
			row("2026-01-02", "u2", "api_token:atk_1", store.UsageCounts{Served: 4, Forbidden: 3}),
		}},
		{"from the second day", a.ID, "2026-01-02", []store.UsageRow{
			row("2026-01-02", "", "api_token:atk_1", store.UsageCounts{Unauthorized: 2, Limited: 3}),
			row("2026-01-02", "u1", "password:", served(1)),
			row("2026-01-02", "u2", "api_token:atk_1", store.UsageCounts{Served: 4, Forbidden: 3}),
		}},
		{"after the last day", a.ID, "2026-01-03", nil},
		{"another account", b.ID, "2025-12-01", []store.UsageRow{row("2026-01-01", "u9", "password:", served(7))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Usage(ctx, tc.account, tc.since)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("usage %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// testSessionsOfUser: a user's working sessions list newest first, without
// expired ones or ones of an old epoch; DeleteSessions ends all but one.
func testSessionsOfUser(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	newer, expired, stale, others := sessionOf(f.user), sessionOf(f.user), sessionOf(f.user), sessionOf(f.member)
	newer.CreatedAt = at.Add(time.Minute)
	expired.ExpiresAt = at.Add(time.Minute)
	stale.PasswordEpoch = f.user.PasswordEpoch - 1
	update(t, s, func(tx *store.Tx) error {
		for _, se := range []*store.Session{newer, expired, stale, others} {
			if err := tx.CreateSession(se); err != nil {
				return err
			}
		}
		return nil
	})
	list := func() (ids []string) {
		t.Helper()
		ses, err := s.Sessions(ctx, f.user.ID, at.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, se := range ses {
			ids = append(ids, se.ID)
		}
		return ids
	}
	if got, want := list(), []string{newer.ID, f.session.ID}; !slices.Equal(got, want) {
		t.Fatalf("sessions %v, want %v", got, want)
	}
	var n int
	update(t, s, func(tx *store.Tx) (err error) { n, err = tx.DeleteSessions(f.user.ID, newer.ID); return err })
	if got := list(); n != 3 || !slices.Equal(got, []string{newer.ID}) {
		t.Fatalf("after ending the others (%d): %v", n, got)
	}
	if _, _, _, err := s.SessionByHash(ctx, others.Hash); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
}
