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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlitedriver "modernc.org/sqlite" // the embedded SQLite driver
	sqlitelib "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/logx"
	"github.com/gatehouse/gatehouse/tracing"
)

//go:embed migrations
var migrations embed.FS

// DefaultURL is where the store lives when no URL is given.
const DefaultURL = "data/gatehouse.db"

// dialect isolates what differs between SQL engines: the driver, how
// placeholders are written, and how a unique violation is reported.
type dialect struct {
	name        string
	driver      string
	numbered    bool // placeholders are $1, $2… instead of ?
	isUnique    func(error) bool
	lockMigrate string // statement run first in the migration transaction
	// lockKey, when set, takes a transaction-scoped lock on one integer
	// key (Tx.lockKey): "" where write transactions are serialised
	// already.
	lockKey string
	// lockRows is the suffix that locks the rows a read inside a
	// transaction returns until it ends ("" where write transactions are
	// serialised already).
	lockRows string
	// claimRows is the suffix with which nodes claiming rows at once
	// skip each other's instead of waiting: webhook deliveries, the table
	// aliased d ("" where write transactions are serialised already).
	claimRows string
	// lockAccountKey, when set, is run with an account id before a refresh
	// rotation: it takes the lock on the account row that the successors'
	// foreign key needs anyway, first (see RotateRefreshToken).
	lockAccountKey string
	// keyShare is the suffix of a read that locks an account as
	// lockAccountKey does (Tx.ShareActiveAccount).
	keyShare string
	// lockAccountThen, when set, is the locking clause of a read that
	// joins an account (aliased a) to rows of it, before the aliases of
	// those rows: the account shared first, then the rows for update
	// (Tx.lockInOrder).
	lockAccountThen string
	// syncOn and syncOff, when set, switch a connection to commits synced
	// to disk and back (see durableTx); empty where every commit is.
	syncOn, syncOff string
	readConns       int
	writeConns      int
	maxIdleConns    int
	// useRefresh is the refresh compare-and-swap (useRefreshSQL), which
	// stamps used_at with the dialect's choice of the time.
	useRefresh string
	// nameKey is the lowercased name that user search compares, exactly
	// as its index (0008_user_search) computes it, and lowerQuery lowers a
	// search text the same way.
	nameKey    string
	lowerQuery func(string) string
	// logRevocationSQL, when set, is one statement that advances the
	// change counter and logs a revocation under its new value (subjects,
	// created_at), returning that value; "" where it takes two. A
	// revocation's round trips are most of its cost on a database across a
	// network; on SQLite one costs a function call.
	logRevocationSQL string
	// auditTargetsSQL, when set, is one statement that writes an audit
	// entry (the columns of auditColumns, then the account again) and
	// returns the account's enabled webhook endpoints (see
	// Tx.AuditTargets); "" where it takes two.
	auditTargetsSQL string
	// auditLoggedSQL, when set, is auditTargetsSQL that also logs, as
	// logRevocationSQL does, what a revoking transaction has revoked so far
	// (subjects, created_at first): it returns the new counter value with
	// each endpoint (a NULL endpoint when there is none), and no row when
	// nothing was logged (see Tx.auditLogged).
	auditLoggedSQL string
	// deleteCredentialSQL, when set, is one statement that deletes a
	// credential (account, user, id) and marks the tokens it issued
	// revoked (the time last), returning its client id; "" where it
	// takes two (see Tx.DeleteCredentials).
	deleteCredentialSQL string
}

var sqlite = dialect{
	name:   "sqlite",
	driver: "sqlite",
	isUnique: func(err error) bool {
		var se *sqlitedriver.Error
		return errors.As(err, &se) &&
			(se.Code() == sqlitelib.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlitelib.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
	syncOn:     `PRAGMA synchronous = FULL`,
	syncOff:    `PRAGMA synchronous = NORMAL`,
	readConns:  8,
	writeConns: 1,
	// The one writer runs the statement in this process, when it runs:
	// the caller's time is the time.
	useRefresh: useRefreshSQL(`?`),
	// SQLite's LOWER folds ASCII letters only: so does the search text,
	// so that "Ölaf" finds "Ölaf Ström" (and "ölaf" does not).
	nameKey:    `LOWER(name)`,
	lowerQuery: lowerASCII,
}

// lowerASCII lowercases the ASCII letters of s only, as SQLite's LOWER.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
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
	closed     atomic.Bool
	// batches feeds the group-commit writer of issued tokens; it is nil
	// once the writer is stopped. batchMu guards it: queuing holds it for
	// reading, stopping for writing, so nothing is sent on it once closed.
	batchMu     sync.RWMutex
	batches     chan writeOp
	batcherDone chan struct{}
	// timeout bounds every call (see bound).
	timeout time.Duration
	// conflicts counts runs of write transactions the database rolled
	// back for a conflict with another (see Conflicts).
	conflicts atomic.Int64
	// stepped is when (monotonic nanoseconds since started) a write
	// transaction of this store last began a step (step): while they move,
	// the writes queued behind SQLite's one write connection wait.
	stepped atomic.Int64
}

// started is the origin of Store.stepped's clock.
var started = time.Now()

// Conflicts returns how many runs of this store's write transactions —
// Update's and the batch writer's groups and single writes — the database
// rolled back for a conflict with another transaction (a deadlock or a
// serialization failure; see conflicted). Each was run again, or failed
// its caller once its retries were spent. Nothing was lost, but a count
// that grows is a sign of two writes taking their locks in different
// orders (docs/design.md, Errors); the server exports it as
// gatehouse_store_write_conflicts_total.
func (s *Store) Conflicts() int64 { return s.conflicts.Load() }

// countConflict counts err when it is a conflict and reports whether it is.
func (s *Store) countConflict(err error) bool {
	if !conflicted(err) {
		return false
	}
	s.conflicts.Add(1)
	return true
}

// DefaultTimeout is how long, by default, one store call may take before
// it fails as unavailable (see Options.Timeout).
const DefaultTimeout = 2 * time.Second

// Options are the store's settings beyond its URL.
type Options struct {
	// Timeout bounds each call of the store — a read, a write
	// transaction, a batch of issued tokens — so that a lost or stalled
	// database fails the call (as unavailable, see IsUnavailable) rather
	// than holding it; zero means DefaultTimeout. Migrations are not
	// bounded.
	Timeout time.Duration
}

// Timeout is the deadline of every call to the store (--store-timeout).
func (s *Store) Timeout() time.Duration { return s.timeout }

// bound returns ctx with the store's deadline (or ctx's own, if earlier):
// for one read, one statement.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// watchdog ends a transaction's context when one of its steps — taking
// the connection, a statement, the commit — takes longer than the store's
// timeout: each step is bounded, not their sum, so that a transaction of
// many quick statements is not cut short while a stalled one is.
type watchdog struct {
	s *Store
	d time.Duration
	// mu guards what follows: the timer's own function reads it.
	mu    sync.Mutex
	timer *time.Timer
	// stepped is when (on Store.stepped's clock) this transaction last
	// began a step.
	stepped time.Duration
	// queued is set while the transaction waits for SQLite's one write
	// connection (awaitWriter), until its next step (kick).
	queued bool
	// stopped is set when the transaction is over.
	stopped bool
}

type watchdogKey struct{}

// watch returns ctx watched by a watchdog (see kick), and the function
// that stops it, to call when the transaction is over.
func (s *Store) watch(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{s: s, d: s.timeout, stepped: time.Since(started)}
	w.mu.Lock()
	w.timer = time.AfterFunc(s.timeout, func() {
		if w.wait() {
			return
		}
		cancel(fmt.Errorf("store: a step took longer than %s: %w", s.timeout, context.DeadlineExceeded))
	})
	w.mu.Unlock()
	return context.WithValue(ctx, watchdogKey{}, w), func() {
		w.mu.Lock()
		w.stopped = true
		w.timer.Stop()
		w.mu.Unlock()
		cancel(nil)
	}
}

// wait reports whether the watchdog, its timer fired, waits on rather
// than end the transaction: when the transaction is over, when it began a
// step since (a timer that fired as the step began), and, for a write
// queued for SQLite's write connection, while the writes ahead of it move
// — one of the store's write transactions began a step within the timeout
// (Store.step). The queue is this process's own writes, each of whose
// steps is bounded, and a burst of them must not turn into 503s; but a
// writer held (another process holding the file's write lock, a stalled
// disk) fails every write queued behind it within the timeout.
func (w *watchdog) wait() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return true
	}
	last := w.stepped
	if w.queued {
		last = max(last, time.Duration(w.s.stepped.Load()))
	}
	idle := time.Since(started) - last
	if idle >= w.d {
		return false
	}
	w.timer.Reset(w.d - idle)
	return true
}

// awaitWriter marks the watchdog of ctx, if any, queued while an SQLite
// write transaction waits for the store's one write connection (see
// watchdog.wait); the next kick ends the wait. (PostgreSQL's pool wait
// stays bounded by the timeout alone.)
func (s *Store) awaitWriter(ctx context.Context) {
	if s.d.name != sqlite.name {
		return
	}
	if w, ok := ctx.Value(watchdogKey{}).(*watchdog); ok {
		w.mu.Lock()
		w.queued = true
		w.mu.Unlock()
	}
}

// step notes that one of the store's write transactions, watched or not,
// begins a step — the writes queued behind it are moving — and returns
// when, on Store.stepped's clock.
func (s *Store) step() time.Duration {
	now := time.Since(started)
	s.stepped.Store(int64(now))
	return now
}

// stepOf starts a new step of the write transaction of ctx: kick when it
// is watched, else step, so that the writes queued behind it wait on.
func (s *Store) stepOf(ctx context.Context) {
	if !kick(ctx) {
		s.step()
	}
}

// kick starts a new step of the transaction watched in ctx, if any: the
// step has the store's timeout from now. It reports whether there was
// one.
func kick(ctx context.Context) bool {
	w, ok := ctx.Value(watchdogKey{}).(*watchdog)
	if ok {
		now := w.s.step()
		w.mu.Lock()
		w.stepped, w.queued = now, false
		w.timer.Reset(w.d)
		w.mu.Unlock()
	}
	return ok
}

// Location is where a store lives, as named by a database URL.
type Location struct {
	// Dialect is "sqlite" or "postgres".
	Dialect string
	// Path is the SQLite file, absolute.
	Path string
	// URL is the PostgreSQL URL as given.
	URL string
}

// String names the location for a log line: the SQLite file, or the
// PostgreSQL URL without its password.
func (l Location) String() string {
	if l.Dialect == "sqlite" {
		return l.Path
	}
	return logx.RedactURL(l.URL)
}

// ParseURL reads a database URL: postgres:// or postgresql:// for
// PostgreSQL; sqlite:///abs/path, sqlite:path or a plain file path for
// SQLite (made absolute against the working directory; empty means
// DefaultURL). Any other scheme ("mysql://…") is an error, so that a typo
// never becomes a fresh SQLite file.
func ParseURL(raw string) (Location, error) {
	if raw == "" {
		raw = DefaultURL
	}
	scheme, rest, hasScheme := strings.Cut(raw, ":")
	if !hasScheme || !isScheme(scheme) {
		return sqliteLocation(raw)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if !strings.HasPrefix(rest, "//") {
			return Location{}, fmt.Errorf("database URL %q: want postgres://user:password@host/db", logx.RedactURL(raw))
		}
		return Location{Dialect: "postgres", URL: raw}, nil
	case "sqlite", "sqlite3":
		// sqlite:///abs/path and sqlite://rel/path name a file like
		// sqlite:path does.
		return sqliteLocation(strings.TrimPrefix(rest, "//"))
	}
	return Location{}, fmt.Errorf("database URL scheme %q is not supported: use postgres://… for PostgreSQL, or sqlite:PATH or a file path for SQLite", scheme)
}

// isScheme reports whether s looks like a URL scheme (RFC 3986 §3.1) of
// two characters or more (so that a Windows drive letter is a path).
func isScheme(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func sqliteLocation(path string) (Location, error) {
	if path == "" {
		return Location{}, errors.New("database URL: empty SQLite path")
	}
	if strings.ContainsAny(path, "?#") {
		return Location{}, fmt.Errorf("database URL: SQLite path %q holds ? or #", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Location{}, fmt.Errorf("database URL: SQLite path %q: %w", path, err)
	}
	return Location{Dialect: "sqlite", Path: abs}, nil
}

// Open connects to the store named by url (see ParseURL): PostgreSQL, or
// an SQLite file, created with its directory if missing. It does not
// migrate; call Migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWith(ctx, url, Options{})
}

// OpenWith is Open with opts.
func OpenWith(ctx context.Context, url string, opts Options) (*Store, error) {
	loc, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if loc.Dialect == "postgres" {
		return openPostgres(ctx, loc.URL, opts)
	}
	return openSQLite(ctx, loc.Path, opts)
}

// OpenExisting opens, as Open does, a store that must be there already:
// one a server has made (migrations recorded), never a new one. The
// commands that work on a store directly use it, so that a mistyped
// --database-url is an error rather than a new, empty store that they
// would report success on.
func OpenExisting(ctx context.Context, url string) (*Store, error) {
	loc, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if loc.Dialect == "sqlite" {
		if _, err := os.Stat(loc.Path); err != nil {
			return nil, fmt.Errorf("no Gatehouse store at %s (check --database-url): %w", loc, err)
		}
	}
	s, err := Open(ctx, url)
	if err != nil {
		return nil, err
	}
	var n int
	err = s.readRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
	if err == nil && n > 0 {
		// Other tools name their table schema_migrations too: one of
		// Gatehouse's own tables must be there.
		err = s.readRow(ctx, `SELECT COUNT(*) FROM api_tokens WHERE 1 = 0`).Scan(&n)
	} else if err == nil {
		err = errors.New("no migration has been applied")
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("no Gatehouse store at %s (check --database-url): %w", loc, err)
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	// busy_timeout first: switching to WAL needs a lock that another
	// process opening the same file may hold for a moment.
	// Its wait is the store's timeout: SQLite's busy wait does not end
	// when the call's context does, and a write must fail within the
	// timeout while another process holds the file's write lock.
	dsn := "file:" + path + "?_pragma=busy_timeout(" + strconv.FormatInt(opts.Timeout.Milliseconds(), 10) + ")&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(ON)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	s := &Store{d: sqlite, timeout: opts.Timeout}
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
	if err := pingWhileBusy(ctx, s, sqliteOpenWait); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.startBatcher()
	return s, nil
}

// sqliteOpenWait bounds how long opening an SQLite file waits for other
// processes that hold it locked.
const sqliteOpenWait = 15 * time.Second

// pingWhileBusy pings s until it answers, retrying for up to wait while
// SQLite reports the file busy. SQLite skips the busy handler in a few
// places — switching the journal to WAL, reading a WAL index another
// connection is rebuilding — so several processes opening one new file at
// once can see SQLITE_BUSY despite busy_timeout.
func pingWhileBusy(ctx context.Context, s *Store, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := 5 * time.Millisecond
	for {
		err := s.Ping(ctx)
		if err == nil || !isSQLiteBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// isSQLiteBusy reports whether err is SQLite's "database is locked" or
// "table is locked", whatever the extended code.
func isSQLiteBusy(err error) bool {
	var se *sqlitedriver.Error
	if !errors.As(err, &se) {
		return false
	}
	primary := se.Code() & 0xff
	return primary == sqlitelib.SQLITE_BUSY || primary == sqlitelib.SQLITE_LOCKED
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
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	ctx, span := s.span(ctx)
	defer func() { tracing.End(span, err) }()
	s.awaitWriter(ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	s.stepOf(ctx)
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	s.stepOf(ctx)
	return tx.Commit()
}

// exec runs one statement on tx with the dialect's placeholders.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := s.hotStmt(ctx, tx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.q(query), args...)
}

// queryRow runs a one-row statement on tx with the dialect's
// placeholders.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := s.hotStmt(ctx, tx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, s.q(query), args...)
}

// hotStmt starts a step of tx's (kick) and returns query's prepared
// statement on tx when query is a hot write that the batch writer has
// prepared, nil otherwise.
func (s *Store) hotStmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	kick(ctx)
	if v, ok := s.writeStmts.Load(query); ok {
		return tx.StmtContext(ctx, v.(*sql.Stmt))
	}
	return nil
}

// hotWrites returns the writes of the hot path, in the store's dialect.
// The batch writer prepares them while it holds no transaction: on SQLite
// the one write connection cannot prepare a statement while a transaction
// holds it.
func (s *Store) hotWrites() []string { return []string{insertTokenSQL, s.d.useRefresh} }

// prepareHotWrites prepares whatever of hotWrites is not prepared yet.
func (s *Store) prepareHotWrites(ctx context.Context) {
	for _, q := range s.hotWrites() {
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
	ctx, span := s.span(ctx)
	defer span.End()
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
		return nil, errClosed
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
		// SQLite's busy wait is the store's timeout; another process
		// starting on the same file may hold its lock longer, as at open.
		deadline := time.Now().Add(sqliteOpenWait)
		for {
			err := s.migrateOne(ctx, version, string(body))
			if err == nil {
				break
			}
			if !isSQLiteBusy(err) || time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("store: migration %s: %w", name, err)
			}
			time.Sleep(20 * time.Millisecond)
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

// collectAll reads every row with scan.
func collectAll[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// nullScopes encodes a scope set: NULL for unrestricted, else the
// space-separated names ("" for the empty set).
func nullScopes(ss gatehouse.Scopes) sql.NullString {
	if ss == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: ss.String(), Valid: true}
}

// fromNullScopes decodes a scope set stored by nullScopes.
func fromNullScopes(v sql.NullString) gatehouse.Scopes {
	if !v.Valid {
		return nil
	}
	if ss := gatehouse.ParseScopes(v.String); ss != nil {
		return ss
	}
	return gatehouse.Scopes{}
}

// keyset is one page of a list ordered by id: the condition on id, its
// argument and the order to read in. A list in descending order (newest
// first) reads "after" as smaller ids. A page before an id is read in the
// opposite order and turned round by collectPage.
type keyset struct {
	cond    string
	arg     string
	order   string
	reverse bool
}

// pageKeyset returns the keyset of p for a list ordered by id, ascending
// or descending.
func pageKeyset(p gatehouse.Page, descending bool) keyset {
	asc := keyset{cond: `id > ?`, arg: p.After, order: `ORDER BY id`}
	desc := keyset{cond: `id < ?`, arg: p.After, order: `ORDER BY id DESC`}
	if p.After == "" && p.Before == "" {
		desc.arg = "~" // sorts after every id
	}
	if p.After == "" && p.Before != "" {
		// Read backwards from Before.
		asc, desc = keyset{cond: `id < ?`, arg: p.Before, order: `ORDER BY id DESC`, reverse: true},
			keyset{cond: `id > ?`, arg: p.Before, order: `ORDER BY id`, reverse: true}
	}
	if descending {
		return desc
	}
	return asc
}

// collectPage reads the rows of a keyset query that asked for n+1 rows and
// returns the page in the list's order with the cursors beside it.
func collectPage[T any](rows *sql.Rows, n int, k keyset, p gatehouse.Page, scan func(scanner) (T, error), id func(T) string) ([]T, gatehouse.Cursors, error) {
	out, more, err := collect(rows, n, scan, id)
	if err != nil {
		return nil, gatehouse.Cursors{}, err
	}
	var c gatehouse.Cursors
	if !k.reverse {
		c.Next = more
		if p.After != "" && len(out) > 0 {
			c.Prev = id(out[0])
		}
		return out, c, nil
	}
	slices.Reverse(out)
	if len(out) > 0 {
		c.Next = id(out[len(out)-1])
		if more != "" {
			c.Prev = id(out[0])
		}
	}
	return out, c, nil
}
