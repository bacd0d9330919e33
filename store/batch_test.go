package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestGroupRolledBackRunsAlone: when the database rolls a group back for a
// conflict with another transaction (a deadlock with another node's
// group), every op of the group runs again alone, so none of its callers
// is told of a conflict it had no part in; and an op rolled back again
// alone runs once more. An op that fails alone for any other reason still
// fails its own caller only.
func TestGroupRolledBackRunsAlone(t *testing.T) {
	s := openTemp(t)
	deadlock := &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
	broken := errors.New("broken")
	// Each op fails with the errors given, one per run, then succeeds.
	op := func(errs ...error) (writeOp, *int) {
		runs := new(int)
		return writeOp{fn: func(ctx context.Context, tx *sql.Tx) error {
			*runs++
			if *runs <= len(errs) {
				return errs[*runs-1]
			}
			_, err := tx.ExecContext(ctx, `SELECT 1`)
			return err
		}, done: make(chan error, 1)}, runs
	}
	a, aRuns := op(deadlock, deadlock) // the group's conflict, then again alone
	b, bRuns := op()
	c, cRuns := op(broken) // not reached in the group; broken alone
	s.writeGroup([]writeOp{a, b, c})
	for name, want := range map[string]struct {
		op   writeOp
		runs *int
		n    int
		err  error
	}{"a": {a, aRuns, 3, nil}, "b": {b, bRuns, 1, nil}, "c": {c, cRuns, 1, broken}} {
		if err := <-want.op.done; !errors.Is(err, want.err) {
			t.Errorf("op %s: %v, want %v", name, err, want.err)
		}
		if *want.runs != want.n {
			t.Errorf("op %s ran %d times, want %d", name, *want.runs, want.n)
		}
	}
	// Each rolled-back run is counted: the group's, and a's first alone.
	if n := s.Conflicts(); n != 2 {
		t.Errorf("Conflicts() = %d after the group, want 2", n)
	}
	// An op rolled back every time is told, after its run in the group
	// and its retries alone.
	d, dRuns := op(deadlock, deadlock, deadlock, deadlock, deadlock, deadlock)
	s.writeGroup([]writeOp{d})
	if err := <-d.done; !RolledBack(err) {
		t.Errorf("an op rolled back every time: %v", err)
	}
	if *dRuns != 2+conflictRetries {
		t.Errorf("an op rolled back every time ran %d times, want %d", *dRuns, 2+conflictRetries)
	}
	if n, want := s.Conflicts(), int64(2+2+conflictRetries); n != want {
		t.Errorf("Conflicts() = %d, want %d: every run rolled back is counted", n, want)
	}
}

// TestGroupRunsInLockOrder: a group runs its ops in the order of the rows
// they lock, whatever order they came in, so that two nodes' groups lock
// shared rows in one order (TestRotationsOnTwoNodes is the race itself).
func TestGroupRunsInLockOrder(t *testing.T) {
	s := openTemp(t)
	var ran []string
	var group []writeOp
	for _, lock := range []string{"tok_c", "", "tok_a", "tok_b", ""} {
		group = append(group, writeOp{lock: lock, done: make(chan error, 1), fn: func(context.Context, *sql.Tx) error {
			ran = append(ran, lock)
			return nil
		}})
	}
	s.writeGroup(group)
	for _, op := range group {
		if err := <-op.done; err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"", "", "tok_a", "tok_b", "tok_c"}; !slices.Equal(ran, want) {
		t.Fatalf("ran in the order %q, want %q", ran, want)
	}
}

// openTemp opens a migrated SQLite store in a temporary directory.
func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
