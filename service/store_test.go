package service_test

import (
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
)

// openStore opens a migrated SQLite store in t's temporary directory; it is
// closed when the test ends.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "g.db"))
}

// openStoreAt opens the store at path (a SQLite file, or a PostgreSQL
// URL), migrated; it is closed when the test ends. Several may share one
// path, as nodes share a database.
func openStoreAt(t *testing.T, path string) *store.Store {
	t.Helper()
	return service.OpenTestStore(t, path)
}

// cheapPasswords hashes passwords with the least work argon2id allows:
// the tests are about rules, not hashing.
func cheapPasswords() *password.Hasher {
	return password.New(password.Params{Memory: 1024, Time: 1, Threads: 1})
}
