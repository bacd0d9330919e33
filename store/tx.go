package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"

	"github.com/gatehouse/gatehouse/tracing"
)

// Tx is a write transaction opened by Update. Its methods write inside it;
// the revoking ones (anything that can make a validated credential stop
// working) mark it, so that whoever called Update can tell every cache once
// it commits. A Tx must not be used after its Update returns.
type Tx struct {
	s        *Store
	ctx      context.Context
	tx       *sql.Tx
	revoking bool
	// subjects are what the revoking changes affect (see Subjects).
	subjects []string
	// events: the transaction wrote a webhook event (see AddedEvents).
	events bool
	// logged is the subjects of the revocation log's entry written so far
	// ("": none written; see auditLogged).
	logged string
	// shared is the account ShareAccount last took ("" for none): a lock
	// held until the transaction ends, not taken twice.
	shared string
	// beforeLog runs before the transaction first writes the revocation
	// log (see BeforeLog); nil once it has.
	beforeLog func() error
}

// BeforeLog sets fn to run once, if the transaction revokes anything,
// before it first writes the revocation log: before it takes the change
// counter's row, which every revoking transaction of every node waits for
// until this one ends. An error from fn ends the transaction.
func (t *Tx) BeforeLog(fn func() error) { t.beforeLog = fn }

// logging runs beforeLog, once.
func (t *Tx) logging() error {
	fn := t.beforeLog
	t.beforeLog = nil
	if fn == nil {
		return nil
	}
	return fn()
}

// AddedEvents reports whether the transaction wrote a webhook event.
func (t *Tx) AddedEvents() bool { return t.events }

// Revoking reports whether the transaction holds a change that can make a
// validated credential, session or cached look-up stop working.
func (t *Tx) Revoking() bool { return t.revoking }

// Subjects returns what the transaction's revoking changes affect, as
// gatehouse.Subject names (for example "u:" and a user's id); a cached
// look-up that rests on none of them is unaffected. It holds
// gatehouse.SubjectAll when the changes cannot be named so narrowly.
func (t *Tx) Subjects() []string { return t.subjects }

// maxSubjects is the most subjects a transaction names one by one; more
// become gatehouse.SubjectAll.
const maxSubjects = 64

// revokes marks the transaction as revoking what subjects name.
func (t *Tx) revokes(subjects ...string) {
	t.revoking = true
	for _, s := range subjects {
		if slices.Contains(t.subjects, s) {
			continue
		}
		if len(t.subjects) >= maxSubjects || s == gatehouse.SubjectAll {
			t.subjects = []string{gatehouse.SubjectAll}
			return
		}
		if len(t.subjects) == 1 && t.subjects[0] == gatehouse.SubjectAll {
			return
		}
		t.subjects = append(t.subjects, s)
	}
}

// exec runs one statement inside the transaction.
func (t *Tx) exec(query string, args ...any) (sql.Result, error) {
	return t.s.exec(t.ctx, t.tx, query, args...)
}

// query runs a read of any number of rows inside the transaction.
func (t *Tx) query(query string, args ...any) (*sql.Rows, error) {
	kick(t.ctx)
	return t.tx.QueryContext(t.ctx, t.s.q(query), args...)
}

// row runs a one-row read inside the transaction.
func (t *Tx) row(query string, args ...any) *sql.Row {
	kick(t.ctx)
	return t.tx.QueryRowContext(t.ctx, t.s.q(query), args...)
}

// forUpdate returns the suffix that locks the rows a read inside a
// transaction returns until it ends: PostgreSQL needs it at READ COMMITTED;
// SQLite's write transactions are serialised already (BEGIN IMMEDIATE).
func (t *Tx) forUpdate() string { return t.s.d.lockRows }

// lockKey takes the transaction-scoped lock on key where the dialect
// has one (PostgreSQL's advisory locks); elsewhere write transactions
// take turns already.
func (t *Tx) lockKey(key int64) error {
	if t.s.d.lockKey == "" {
		return nil
	}
	_, err := t.exec(t.s.d.lockKey, key)
	return err
}

// lockInOrder returns the suffix of a read that joins the account (aliased
// a) to rows of it: it locks the account shared, as ShareAccount does, and
// then the rows of the tables aliased in aliases, in that order, for
// update ("" where write transactions are serialised already).
func (t *Tx) lockInOrder(aliases string) string {
	if t.s.d.lockAccountThen == "" {
		return ""
	}
	return t.s.d.lockAccountThen + aliases
}

// Update runs fn in one write transaction and commits it when fn returns
// nil; any error rolls everything back. Its commit is on disk before Update
// returns (on SQLite the transaction runs with synchronous=FULL, whatever
// the store's default): revocations, disables and other management changes
// are never lost to a crash once acknowledged.
//
// A revoking transaction also advances the store's change counter
// (Changes) before it commits. Each of its steps — taking the connection,
// each statement, the commit — is bounded by the store's timeout
// (Options.Timeout).
//
// A transaction the database rolls back because it deadlocked with another
// (see conflicted) is run again, fn with it, up to conflictRetries more
// times, before the error is returned: fn must give the same result run
// again after a run that was rolled back (assign what it returns on every
// path, and change nothing outside the transaction).
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	for try := 0; ; try++ {
		err := s.runUpdate(ctx, fn)
		if err == nil || !s.countConflict(err) || try == conflictRetries || ctx.Err() != nil {
			return err
		}
		gatehouse.Logger(ctx).WarnContext(ctx, ConflictRunAgain, "err", err)
	}
}

// ConflictRunAgain is the warning logged when Update runs a transaction
// again after a conflict: harmless to the caller, who waited for the
// database to notice it (deadlock_timeout, a second by default), but a
// sign of two writes taking their locks in different orders
// (docs/design.md, Errors).
const ConflictRunAgain = "a write transaction deadlocked with another and was run again"

// runUpdate is one run of Update's transaction.
func (s *Store) runUpdate(ctx context.Context, fn func(*Tx) error) error {
	ctx, cancel := s.watch(ctx)
	defer cancel()
	return s.durableTx(ctx, func(tx *sql.Tx) error {
		t := &Tx{s: s, ctx: ctx, tx: tx}
		if err := fn(t); err != nil {
			return err
		}
		if t.revoking {
			return t.logRevocation()
		}
		return nil
	})
}

// logRevocation advances the store's change counter and records, under
// its new value, what the transaction revokes (the revocation log). A
// process that advances the counter without a log entry — a release that
// kept no log, a change made by hand — leaves a gap, which readers of the
// log take as "anything may have changed".
func (t *Tx) logRevocation() error {
	list, at := t.revocationEntry()
	if list == t.logged {
		return nil // written with the audit entry, and nothing revoked since
	}
	if err := t.logging(); err != nil {
		return err
	}
	var n int64
	if q := t.s.d.logRevocationSQL; q != "" {
		return t.row(q, list, at).Scan(&n)
	}
	if err := t.row(`UPDATE changes SET n = n + 1 WHERE name = 'revoking' RETURNING n`).Scan(&n); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO revocation_log (n, subjects, created_at) VALUES (?, ?, ?)`, n, list, at)
	return err
}

// revocationEntry returns the revocation log's entry for what the
// transaction has revoked so far: its subjects (gatehouse.SubjectAll when
// none is named), space-separated, and the time.
func (t *Tx) revocationEntry() (string, int64) {
	subjects := t.subjects
	if len(subjects) == 0 {
		subjects = []string{gatehouse.SubjectAll}
	}
	return strings.Join(subjects, " "), micros(time.Now())
}

// Changes returns the number of revoking transactions ever committed to
// the store, by any process.
func (s *Store) Changes(ctx context.Context) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.readRow(ctx, `SELECT n FROM changes WHERE name = 'revoking'`).Scan(&n)
	return n, err
}

// Revocation is one entry of the revocation log: the change counter's
// value its transaction committed, and what it revoked.
type Revocation struct {
	N        int64
	Subjects []string
}

// maxLogRead is the most log entries RevocationsSince returns at once.
const maxLogRead = 1000

// RevocationsSince returns the store's change counter and the revocation
// log's entries after after, oldest first, up to the counter; complete is
// false when some counter values in between have no entry (a gap: pruned,
// or written by a process that keeps no log) or when there were more than
// one read returns, and then the entries are not enough to tell what
// changed.
func (s *Store) RevocationsSince(ctx context.Context, after int64) (head int64, log []Revocation, complete bool, err error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// The counter and the entries after after, in one read (one snapshot,
	// one round trip): a row with no entry when there is none to return.
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT c.n, l.n, l.subjects FROM changes c
		LEFT JOIN revocation_log l ON l.n > ? AND l.n <= c.n AND c.n <= ?
		WHERE c.name = 'revoking' ORDER BY l.n`), after, after+maxLogRead)
	if err != nil {
		return 0, nil, false, err
	}
	defer rows.Close()
	read := false
	for rows.Next() {
		var n sql.NullInt64
		var subjects sql.NullString
		if err := rows.Scan(&head, &n, &subjects); err != nil {
			return 0, nil, false, err
		}
		read = true
		if n.Valid {
			log = append(log, Revocation{N: n.Int64, Subjects: strings.Fields(subjects.String)})
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, false, err
	}
	if !read {
		return 0, nil, false, sql.ErrNoRows
	}
	return head, log, int64(len(log)) == head-after, nil
}

// durableTx runs fn in a write transaction whose commit is synced to disk.
// SQLite allows changing synchronous only outside a transaction, so the
// write connection is taken, switched to FULL for this one transaction and
// switched back.
func (s *Store) durableTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	if s.d.syncOn == "" {
		return s.tx(ctx, fn) // every commit is synced already
	}
	ctx, span := s.span(ctx)
	defer func() { tracing.End(span, err) }()
	s.awaitWriter(ctx)
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	s.stepOf(ctx)
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, s.d.syncOn); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), s.d.syncOff)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	kick(ctx)
	return tx.Commit()
}
