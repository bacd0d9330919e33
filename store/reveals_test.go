package store_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testReveals: a reveal is taken once, only by its session and before it
// expires; making one clears the expired ones.
func testReveals(t *testing.T, s *store.Store) {
	mk := func(expires time.Time) *store.Reveal {
		return &store.Reveal{ID: gatehouse.NewID("rev"), SessionID: "ses_1", Sealed: "sealed " + gatehouse.NewID("x"), CreatedAt: at, ExpiresAt: expires}
	}
	take := func(r *store.Reveal, session string, now time.Time) (sealed string, err error) {
		t.Helper()
		err = s.Update(t.Context(), func(tx *store.Tx) (err error) { sealed, err = tx.TakeReveal(r.ID, session, now); return err })
		return sealed, err
	}
	a, b, old := mk(at.Add(time.Minute)), mk(at.Add(time.Minute)), mk(at.Add(time.Minute))
	update(t, s, func(tx *store.Tx) error {
		for _, r := range []*store.Reveal{a, b, old} {
			if err := tx.CreateReveal(r); err != nil {
				return err
			}
		}
		return nil
	})
	_, err := take(a, "ses_2", at)
	wantCode(t, err, gatehouse.ENotFound)
	if got, err := take(a, "ses_1", at); err != nil || got != a.Sealed {
		t.Fatalf("taken %q, %v", got, err)
	}
	_, err = take(a, "ses_1", at)
	wantCode(t, err, gatehouse.ENotFound)
	_, err = take(b, "ses_1", at.Add(time.Minute))
	wantCode(t, err, gatehouse.ENotFound)
	// A reveal made after old expired removes it.
	later := mk(at.Add(time.Hour))
	later.CreatedAt = at.Add(2 * time.Minute)
	update(t, s, func(tx *store.Tx) error { return tx.CreateReveal(later) })
	_, err = take(old, "ses_1", at)
	wantCode(t, err, gatehouse.ENotFound)
}
