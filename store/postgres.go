package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver, as "pgx"
)

// migrateLockKey is the PostgreSQL advisory lock that serialises migrations
// of every node sharing a database; the value is arbitrary but fixed
// ("gatehous" in ASCII).
const migrateLockKey = 0x67617465686f7573

var postgres = dialect{
	name:     "postgres",
	driver:   "pgx",
	numbered: true,
	isUnique: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
	},
	lockMigrate: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", int64(migrateLockKey)),
	lockKey:     "SELECT pg_advisory_xact_lock(?)",
	// READ COMMITTED: a read that a write depends on locks its rows.
	lockRows:       " FOR UPDATE",
	claimRows:      " FOR UPDATE OF d SKIP LOCKED",
	lockAccountKey: `SELECT 1 FROM accounts WHERE id = ? FOR KEY SHARE`,
	keyShare:       ` FOR KEY SHARE`,
	// A statement locks its rows in the order of its locking clauses.
	lockAccountThen: " FOR KEY SHARE OF a FOR UPDATE OF ",
	// synchronous_commit is on by default: every commit is synced.
	readConns:    20, // one pool serves reads and writes
	writeConns:   20,
	maxIdleConns: 10,
	// The database's clock when the statement runs, if later: a statement
	// held in the network is stamped when it arrives.
	useRefresh: useRefreshSQL(`GREATEST(?, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT)`),
	// Lowercased in the database's locale, compared byte-wise.
	nameKey:    `(LOWER(name) COLLATE "C")`,
	lowerQuery: strings.ToLower,
	// Data-modifying WITH: one round trip where SQLite takes two.
	logRevocationSQL: `WITH c AS (UPDATE changes SET n = n + 1 WHERE name = 'revoking' RETURNING n)
		INSERT INTO revocation_log (n, subjects, created_at) SELECT n, ?, ? FROM c RETURNING n`,
	auditTargetsSQL: `WITH a AS (INSERT INTO audit_log (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?))
		` + webhookTargetsSQL,
	auditLoggedSQL: `WITH c AS (UPDATE changes SET n = n + 1 WHERE name = 'revoking' RETURNING n),
		l AS (INSERT INTO revocation_log (n, subjects, created_at) SELECT n, ?, ? FROM c RETURNING n),
		a AS (INSERT INTO audit_log (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?))
		SELECT l.n, w.id, w.events FROM l LEFT JOIN webhook_endpoints w ON w.account_id = ? AND w.enabled = 1 ORDER BY w.id`,
	deleteCredentialSQL: `WITH d AS (DELETE FROM client_credentials WHERE account_id = ? AND user_id = ? AND id = ? RETURNING client_id),
		t AS (UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND client_id IN (SELECT client_id FROM d))
		SELECT client_id FROM d`,
}

// openPostgres opens a pool on the PostgreSQL database named by url, a
// libpq-style URL. Query parameters that pgx does not know, such as
// search_path, are sent to the server as run-time parameters, so
// "postgres://host/db?search_path=gatehouse" keeps the tables in the schema
// gatehouse (which must exist).
func openPostgres(ctx context.Context, url string, opts Options) (*Store, error) {
	db, err := sql.Open(postgres.driver, url)
	if err != nil {
		return nil, fmt.Errorf("store: open PostgreSQL: %w", err)
	}
	db.SetMaxOpenConns(postgres.writeConns)
	db.SetMaxIdleConns(postgres.maxIdleConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	s := &Store{d: postgres, db: db, rdb: db, timeout: opts.Timeout}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open PostgreSQL: %w", err)
	}
	s.startBatcher()
	return s, nil
}
