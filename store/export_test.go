package store

import (
	"database/sql"

	"github.com/gatehouse/gatehouse"
)

// Hooks for the benchmarks of package store_test: the write pool, to
// bulk-load rows without going through the API, the validation query, to
// explain its plan, and the dialect's placeholders.

// BulkDB returns the store's write pool.
func (s *Store) BulkDB() *sql.DB { return s.db }

// Rebind rewrites query's placeholders for the store's dialect.
func (s *Store) Rebind(query string) string { return s.q(query) }

// TokenByHashSQL is the one statement that reads a token and everything
// that decides its validity.
var TokenByHashSQL = tokenByHashSQL

// AccountCredentialSQL is the statement that reads and locks a credential
// of an account with its owner (Tx.AccountCredential).
func (s *Store) AccountCredentialSQL() string {
	return ownedCredentialSQL("", s.d.lockAccountThen+"u, c")
}

// UserFilterSQL is the condition and arguments of a user search.
func (s *Store) UserFilterSQL(accountID string, f gatehouse.UserFilter) (string, []any) {
	return s.userFilter(accountID, f)
}

// HotWritesUnprepared returns the hot path's writes that the batch writer
// has not prepared.
func (s *Store) HotWritesUnprepared() []string {
	var left []string
	for _, q := range s.hotWrites() {
		if _, ok := s.writeStmts.Load(q); !ok {
			left = append(left, q)
		}
	}
	return left
}
