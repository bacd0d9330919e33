package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testSecondFactors: an enrolment is confirmed once; a step is accepted
// only when later than the last, once among many at the same moment; a
// recovery code is spent once; clearing removes them all; the sealing key
// is made once and read back.
func testSecondFactors(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	uid := f.user.ID
	if _, err := s.TOTP(ctx, uid); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("no enrolment: %v", err)
	}
	update(t, s, func(tx *store.Tx) error { return tx.PutTOTP(&store.TOTP{UserID: uid, Sealed: "v1.a", CreatedAt: at}) })
	update(t, s, func(tx *store.Tx) error { return tx.PutTOTP(&store.TOTP{UserID: uid, Sealed: "v1.b", CreatedAt: at}) })
	if x, err := s.TOTP(ctx, uid); err != nil || x.Sealed != "v1.b" || x.Confirmed {
		t.Fatalf("replaced enrolment: %+v %v", x, err)
	}
	if ok, _ := s.UseTOTPStep(ctx, uid, 10); ok {
		t.Fatal("an unconfirmed enrolment accepted a step")
	}
	var ok bool
	update(t, s, func(tx *store.Tx) (err error) { ok, err = tx.UseTOTPStep(uid, 10, true, at); return err })
	if f2, _ := s.Factors(ctx, uid); !ok || !f2.TOTP || !f2.Any() {
		t.Fatalf("confirm: %v %+v", ok, f2)
	}
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.PutTOTP(&store.TOTP{UserID: uid, Sealed: "v1.c", CreatedAt: at}) }); gatehouse.ErrorCode(err) != gatehouse.EConflict {
		t.Fatalf("a new enrolment over a confirmed one: %v", err)
	}
	for _, step := range []int64{10, 9} {
		if ok, err := s.UseTOTPStep(ctx, uid, step); ok || err != nil {
			t.Fatalf("step %d after 10: %v %v", step, ok, err)
		}
	}
	// Twenty at once with step 11: one wins.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range 20 {
		wg.Go(func() {
			ok, err := s.UseTOTPStep(ctx, uid, 11)
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
		t.Fatalf("%d uses of one step won", wins)
	}

	update(t, s, func(tx *store.Tx) error { return tx.ReplaceRecoveryCodes(uid, []string{"h1", "h2", "h3"}, at) })
	wins = 0
	for range 10 {
		wg.Go(func() {
			var ok bool
			if err := s.Update(ctx, func(tx *store.Tx) (err error) {
				ok, err = tx.UseRecoveryCode(uid, "h2", at.Add(time.Minute))
				return err
			}); err != nil {
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
	if f2, _ := s.Factors(ctx, uid); wins != 1 || f2.RecoveryCodesLeft != 2 {
		t.Fatalf("recovery code: %d wins, %+v", wins, f2)
	}
	var n int
	update(t, s, func(tx *store.Tx) (err error) { n, err = tx.ClearFactors(uid); return err })
	if f2, _ := s.Factors(ctx, uid); n != 1 || f2.TOTP || f2.RecoveryCodesLeft != 0 {
		t.Fatalf("cleared %d: %+v", n, f2)
	}

	k1, err := s.SealingKey(ctx)
	if err != nil || len(k1) != 32 {
		t.Fatalf("sealing key: %d %v", len(k1), err)
	}
	if k2, _ := s.SealingKey(ctx); string(k1) != string(k2) {
		t.Fatal("the sealing key changed")
	}
}

// testSignIns: a pending sign-in reads back by digest and is taken once.
func testSignIns(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	si := &store.SignIn{ID: "sig_1", Hash: "hash-1", AccountID: f.user.AccountID, UserID: f.user.ID, ClientAddr: "192.0.2.1",
		CreatedAt: at, ExpiresAt: at.Add(5 * time.Minute), UserEpoch: f.user.Epoch, PasswordEpoch: f.user.PasswordEpoch}
	update(t, s, func(tx *store.Tx) error { return tx.CreateSignIn(si) })
	got, err := s.SignInByHash(ctx, "hash-1")
	if err != nil || *got != *si {
		t.Fatalf("read back %+v %v, want %+v", got, err, si)
	}
	var first, second bool
	update(t, s, func(tx *store.Tx) (err error) { first, err = tx.TakeSignIn(si.ID); return err })
	update(t, s, func(tx *store.Tx) (err error) { second, err = tx.TakeSignIn(si.ID); return err })
	if !first || second {
		t.Fatalf("taken %v then %v", first, second)
	}
	if _, err := s.SignInByHash(ctx, "hash-1"); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("after taking: %v", err)
	}
}
