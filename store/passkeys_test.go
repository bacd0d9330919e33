package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testPasskeys: a credential id is registered once; a sign count is
// accepted only when larger than the last, once among many at the same
// moment, and a passkey gone is not_found; a challenge is taken once
// among many; passkeys count as second factors, and clearing the factors
// (an admin's reset, `gatehouse recover`) removes them.
func testPasskeys(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	uid := f.user.ID
	k := &store.Passkey{ID: "pk_1", AccountID: f.user.AccountID, UserID: uid, CredentialID: "Y3JlZA", Name: "Laptop", Credential: "{}", SignCount: 1, CreatedAt: at}
	update(t, s, func(tx *store.Tx) error { return tx.CreatePasskey(k) })
	dup := *k
	dup.ID = "pk_2"
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.CreatePasskey(&dup) }); gatehouse.ErrorCode(err) != gatehouse.EConflict {
		t.Fatalf("the same credential twice: %v", err)
	}
	if fs, err := s.Factors(ctx, uid); err != nil || fs.Passkeys != 1 || !fs.Any() || fs.TOTP {
		t.Fatalf("factors: %+v %v", fs, err)
	}
	if got, err := s.PasskeyByCredentialID(ctx, "Y3JlZA"); err != nil || got.UserID != uid || got.SignCount != 1 || !got.LastUsedAt.IsZero() {
		t.Fatalf("by credential id: %+v %v", got, err)
	}
	update(t, s, func(tx *store.Tx) error { return tx.RenamePasskey(uid, "pk_1", "Work laptop") })
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.RenamePasskey("usr_other", "pk_1", "x") }); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("rename another's passkey: %v", err)
	}
	// Counters: 1 was accepted; 1 again and 0 are not; 5 once of twenty.
	for _, c := range []uint32{1, 0} {
		var ok bool
		update(t, s, func(tx *store.Tx) (err error) { ok, err = tx.UsePasskey("pk_1", c, at); return err })
		if ok {
			t.Fatalf("count %d after 1 accepted", c)
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range 20 {
		wg.Go(func() {
			var ok bool
			err := s.Update(ctx, func(tx *store.Tx) (err error) { ok, err = tx.UsePasskey("pk_1", 5, at.Add(time.Second)); return err })
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if ok {
				wins++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("count 5 accepted %d times", wins)
	}
	ks, err := s.Passkeys(ctx, uid)
	if err != nil || len(ks) != 1 || ks[0].Name != "Work laptop" || ks[0].SignCount != 5 || ks[0].LastUsedAt.IsZero() {
		t.Fatalf("list: %+v %v", ks, err)
	}

	// A challenge is taken once of twenty.
	if _, err := s.CreatePasskeyChallenge(ctx, &store.PasskeyChallenge{ID: "pkc_1", Purpose: store.ChallengeSignIn, Session: []byte(`{}`), CreatedAt: at, ExpiresAt: at.Add(time.Minute)}, 0); err != nil {
		t.Fatal(err)
	}
	if c, err := s.PasskeyChallenge(ctx, "pkc_1"); err != nil || c.Purpose != store.ChallengeSignIn || string(c.Session) != "{}" {
		t.Fatalf("challenge: %+v %v", c, err)
	}
	wins = 0
	for range 20 {
		wg.Go(func() {
			var ok bool
			err := s.Update(ctx, func(tx *store.Tx) (err error) { ok, err = tx.TakePasskeyChallenge("pkc_1"); return err })
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if ok {
				wins++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("challenge taken %d times", wins)
	}
	if _, err := s.PasskeyChallenge(ctx, "pkc_1"); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("a taken challenge: %v", err)
	}

	// Clearing the factors removes the passkey and counts it.
	var n int
	update(t, s, func(tx *store.Tx) (err error) { n, err = tx.ClearFactors(uid); return err })
	if fs, _ := s.Factors(ctx, uid); n != 1 || fs.Any() || fs.Passkeys != 0 {
		t.Fatalf("cleared %d: %+v", n, fs)
	}
	// A sign-in with a passkey gone finds it gone, not stale.
	if err := s.Update(ctx, func(tx *store.Tx) error { _, err := tx.UsePasskey("pk_1", 9, at); return err }); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("a removed passkey used: %v", err)
	}
	update(t, s, func(tx *store.Tx) (err error) {
		if n, err = tx.CountPasskeys(uid); err != nil {
			return err
		}
		return tx.CreatePasskey(k)
	})
	if n != 0 {
		t.Fatalf("%d passkeys counted after clearing", n)
	}
	update(t, s, func(tx *store.Tx) (err error) { n, err = tx.CountPasskeys(uid); return err })
	if n != 1 {
		t.Fatalf("%d passkeys counted, 1 made", n)
	}
}
