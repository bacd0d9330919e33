package store_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testMigrateAgain: migrating a migrated store changes nothing and keeps
// the data.
func testMigrateAgain(t *testing.T, s *store.Store) {
	a := newAccount(t, s)
	for i := range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("migration %d after the first: %v", i+1, err)
		}
	}
	got, err := s.Account(t.Context(), a.ID)
	if err != nil || got.Name != a.Name {
		t.Fatalf("account after migrating again: %+v, %v", got, err)
	}
}

// testPageSizeClamping: lists return Page.Size items: the default for an
// unset or negative limit, at most the maximum.
func testPageSizeClamping(t *testing.T, s *store.Store) {
	a := newAccount(t, s)
	const stored = gatehouse.MaxPageSize + 1
	update(t, s, func(tx *store.Tx) error {
		for range stored {
			if err := tx.CreateWorkspace(workspaceOf(a, "")); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		limit, want int
	}{
		{0, gatehouse.DefaultPageSize},
		{-3, gatehouse.DefaultPageSize},
		{1, 1},
		{gatehouse.MaxPageSize, gatehouse.MaxPageSize},
		{gatehouse.MaxPageSize + 1, gatehouse.MaxPageSize},
		{10_000, gatehouse.MaxPageSize},
	} {
		t.Run(strconv.Itoa(tc.limit), func(t *testing.T) {
			page, next, err := s.Workspaces(t.Context(), a.ID, "", gatehouse.Page{Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) != tc.want || next != page[len(page)-1].ID {
				t.Fatalf("limit %d: %d workspaces, next %q; want %d and a cursor at the last", tc.limit, len(page), next, tc.want)
			}
		})
	}
	rest, next, err := s.Workspaces(t.Context(), a.ID, "", gatehouse.Page{Limit: 10_000, After: ""})
	if err != nil {
		t.Fatal(err)
	}
	last, end, err := s.Workspaces(t.Context(), a.ID, "", gatehouse.Page{Limit: 10_000, After: next})
	if err != nil || len(rest)+len(last) != stored || len(last) != 1 || end != "" {
		t.Fatalf("after a clamped page: %d more, next %q, %v; want 1 more and no cursor", len(last), end, err)
	}
}

// testCloseWhileWriting: closing the store while hot writes are being
// queued ends each writer with an error, never a panic or a race.
func testCloseWhileWriting(t *testing.T, s *store.Store) {
	f := newFixture(t, s)
	var (
		wg      sync.WaitGroup
		written atomic.Int64
		errs    = make([]error, 8)
	)
	for i := range errs {
		wg.Go(func() {
			for {
				tok := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodPassword, "", gatehouse.NewID("fam"))
				if errs[i] = s.CreateTokens(t.Context(), tok); errs[i] != nil {
					return
				}
				written.Add(1)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); written.Load() < 100; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes in 10s", written.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("writer %d stopped without an error", i)
		}
	}
}
