package service

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/store"
)

// OpenTestStore opens the store at path (a SQLite file, or a PostgreSQL
// URL), migrated; it is closed when the test ends. The package's own
// tests use it through openTestStore, the external ones through
// openStoreAt.
func OpenTestStore(t *testing.T, path string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// openTestStore returns a migrated SQLite store in t's temporary
// directory.
func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	return OpenTestStore(t, filepath.Join(t.TempDir(), "gatehouse.db"))
}
