package store

import (
	"context"
	"database/sql"

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
}

// Revoking reports whether the transaction holds a change that can make a
// validated credential, session or cached look-up stop working.
func (t *Tx) Revoking() bool { return t.revoking }

// revokes marks the transaction as revoking.
func (t *Tx) revokes() { t.revoking = true }

// exec runs one statement inside the transaction.
func (t *Tx) exec(query string, args ...any) (sql.Result, error) {
	return t.s.exec(t.ctx, t.tx, query, args...)
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
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	ctx, cancel := s.watch(ctx)
	defer cancel()
	return s.durableTx(ctx, func(tx *sql.Tx) error {
		t := &Tx{s: s, ctx: ctx, tx: tx}
		if err := fn(t); err != nil {
			return err
		}
		if t.revoking {
			if _, err := t.exec(`UPDATE changes SET n = n + 1 WHERE name = 'revoking'`); err != nil {
				return err
			}
		}
		return nil
	})
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
	kick(ctx)
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
