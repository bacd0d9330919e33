// Package store keeps Gatehouse's state in SQL: one store over database/sql
// for SQLite (embedded, WAL) and, as a second dialect of the same queries,
// PostgreSQL. Schema changes are embedded, numbered migrations per dialect,
// each applied in its own transaction. Only digests of secrets are stored.
//
// Methods return *gatehouse.Error values with code not_found or conflict
// for the expected failures; any other error is a technical failure.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the embedded SQLite driver

	"github.com/gatehouse/gatehouse"
)

//go:embed migrations
var migrations embed.FS

// DefaultURL is where the store lives when no URL is given.
const DefaultURL = "data/gatehouse.db"

// dialect isolates what differs between SQL engines: the driver, how
// placeholders are written, and how a unique violation is reported.
type dialect struct {
	name         string
	driver       string
	numbered     bool // placeholders are $1, $2… instead of ?
	isUnique     func(error) bool
	lockMigrate  string // statement run first in the migration transaction
	readConns    int
	writeConns   int
	maxIdleConns int
}

var sqlite = dialect{
	name:   "sqlite",
	driver: "sqlite",
	isUnique: func(err error) bool {
		return strings.Contains(err.Error(), "UNIQUE constraint failed") ||
			strings.Contains(err.Error(), "PRIMARY KEY constraint failed")
	},
	readConns:  8,
	writeConns: 1,
}

// Store is Gatehouse's SQL store. It is safe for concurrent use. The zero
// value is not usable; use Open.
type Store struct {
	d     dialect
	db    *sql.DB // writes (one connection on SQLite)
	rdb   *sql.DB // reads
	binds sync.Map
	// readStmts caches prepared read statements by query. (Writes are not
	// prepared: preparing needs a connection, and on SQLite the only write
	// connection is held by the transaction that wants the statement.)
	readStmts sync.Map
	// writeStmts holds the prepared hot writes (see prepareHotWrites).
	writeStmts sync.Map
	// generation counts committed changes that can make a validated
	// credential stop working (revocations, user and settings changes).
	generation atomic.Uint64
	closed     atomic.Bool
	// batches feeds the group-commit writer of issued tokens.
	batches     chan writeOp
	batcherDone chan struct{}
	// onChange, when set, is called after each such change (a cluster
	// publishes it to the other nodes).
	onChange func()
}

// Generation returns a number that grows with every committed change that
// can make a credential stop working. Caches of validated credentials keep
// an entry only while the generation is the one they saw when filling it.
func (s *Store) Generation() uint64 { return s.generation.Load() }

// Invalidate advances the generation, as if a revoking change had been
// committed here. A cluster calls it when another node reports a change.
func (s *Store) Invalidate() { s.generation.Add(1) }

// OnChange sets a function called after every revoking change committed
// through this store. Set it before serving.
func (s *Store) OnChange(fn func()) { s.onChange = fn }

// revokingTx runs fn in a write transaction and, once it has committed,
// advances the generation and reports the change.
func (s *Store) revokingTx(ctx context.Context, fn func(*sql.Tx) error) error {
	err := s.tx(ctx, fn)
	// Advance even after a failed commit: it is cheap and never wrong.
	s.generation.Add(1)
	if err == nil && s.onChange != nil {
		s.onChange()
	}
	return err
}

// Open connects to the store named by url: a postgres:// URL for PostgreSQL,
// anything else (a path, or sqlite:PATH) for an SQLite file, created with
// its directory if missing. It does not migrate; call Migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	if url == "" {
		url = DefaultURL
	}
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return openPostgres(ctx, url)
	}
	return openSQLite(ctx, url)
}

func openSQLite(ctx context.Context, url string) (*Store, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite://"), "sqlite:")
	if path == "" {
		return nil, errors.New("store: empty SQLite path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create directory: %w", err)
		}
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(ON)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	s := &Store{d: sqlite}
	var err error
	if s.db, err = sql.Open(sqlite.driver, dsn); err != nil {
		return nil, err
	}
	if s.rdb, err = sql.Open(sqlite.driver, dsn); err != nil {
		s.Close()
		return nil, err
	}
	s.db.SetMaxOpenConns(sqlite.writeConns)
	s.rdb.SetMaxOpenConns(sqlite.readConns)
	s.rdb.SetMaxIdleConns(sqlite.readConns)
	s.db.SetConnMaxIdleTime(0)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.startBatcher()
	return s, nil
}

// Close closes the store's connections. It is safe to call on a store whose
// Open failed half way, and more than once.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	s.stopBatcher()
	s.closed.Store(true)
	for _, m := range []*sync.Map{&s.readStmts, &s.writeStmts} {
		m.Range(func(k, v any) bool {
			v.(*sql.Stmt).Close()
			m.Delete(k)
			return true
		})
	}
	var errs []error
	if s.rdb != nil && s.rdb != s.db {
		errs = append(errs, s.rdb.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}

// Dialect names the SQL engine: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return err
	}
	return s.rdb.PingContext(ctx)
}

// q rewrites a query written with ? placeholders for the store's dialect.
func (s *Store) q(query string) string {
	if !s.d.numbered {
		return query
	}
	if v, ok := s.binds.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	out := b.String()
	s.binds.Store(query, out)
	return out
}

// tx runs fn in a write transaction and commits if fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// exec runs one statement on tx with the dialect's placeholders.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if v, ok := s.writeStmts.Load(query); ok {
		return tx.StmtContext(ctx, v.(*sql.Stmt)).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.q(query), args...)
}

// hotWrites are the writes of the hot path. The batch writer prepares
// them while it holds no transaction: on SQLite the one write connection
// cannot prepare a statement while a transaction holds it.
var hotWrites = []string{insertTokenSQL, useRefreshSQL}

// prepareHotWrites prepares whatever of hotWrites is not prepared yet.
func (s *Store) prepareHotWrites(ctx context.Context) {
	for _, q := range hotWrites {
		if _, ok := s.writeStmts.Load(q); ok {
			continue
		}
		stmt, err := s.db.PrepareContext(ctx, s.q(q))
		if err != nil {
			return // not migrated yet, or the database is away: try next time
		}
		s.writeStmts.Store(q, stmt)
	}
}

// readRow runs a one-row read on the read pool with a prepared statement.
func (s *Store) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	stmt, err := s.prepared(ctx, &s.readStmts, s.rdb, query)
	if err != nil {
		// Let the row carry the error: QueryRowContext on the pool does.
		return s.rdb.QueryRowContext(ctx, s.q(query), args...)
	}
	return stmt.QueryRowContext(ctx, args...)
}

// prepared returns the statement for query, prepared once per pool: the
// hot path then skips SQL compilation.
func (s *Store) prepared(ctx context.Context, cache *sync.Map, db *sql.DB, query string) (*sql.Stmt, error) {
	if s.closed.Load() {
		return nil, errors.New("store: closed")
	}
	if v, ok := cache.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	stmt, err := db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	if v, loaded := cache.LoadOrStore(query, stmt); loaded {
		stmt.Close()
		return v.(*sql.Stmt), nil
	}
	return stmt, nil
}

// conflict turns a unique violation into a conflict error.
func (s *Store) conflict(err error, what string) error {
	if err != nil && s.d.isUnique(err) {
		return gatehouse.Errorf(gatehouse.EConflict, "%s already exists", what)
	}
	return err
}

// Migrate applies every embedded migration the store has not applied yet,
// each in its own transaction, and is safe when several processes migrate
// the same store at once.
func (s *Store) Migrate(ctx context.Context) error {
	dir := "migrations/" + s.d.name
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("store: migration %s: bad name", name)
		}
		body, err := migrations.ReadFile(dir + "/" + name)
		if err != nil {
			return err
		}
		if err := s.migrateOne(ctx, version, string(body)); err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
	}
	return nil
}

func (s *Store) migrateOne(ctx context.Context, version int, body string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if s.d.lockMigrate != "" {
			if _, err := tx.ExecContext(ctx, s.d.lockMigrate); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, body); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, micros(time.Now()))
		return err
	})
}

// micros encodes a time for the store.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros decodes a stored time.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// nullMicros encodes an optional time.
func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

// fromNullMicros decodes an optional time.
func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// limit clamps a page size into 1…200, defaulting to 50.
func limit(p gatehouse.Page) int {
	switch {
	case p.Limit <= 0:
		return 50
	case p.Limit > 200:
		return 200
	}
	return p.Limit
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// collect reads rows with scan and reports the id to continue after when
// more than n rows exist (the query asks for n+1).
func collect[T any](rows *sql.Rows, n int, scan func(scanner) (T, error), id func(T) string) ([]T, string, error) {
	defer rows.Close()
	out := make([]T, 0, n)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > n {
		out = out[:n]
		next = id(out[n-1])
	}
	return out, next, nil
}
