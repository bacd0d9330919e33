package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// writeOp is one caller's write waiting for the batch writer. fn runs
// inside a shared transaction and must be safe to run again in a
// transaction of its own.
type writeOp struct {
	fn func(ctx context.Context, tx *sql.Tx) error
	// tokens, when set, are tokens to insert: in a group they are inserted
	// together with the other ops' (fn does the same alone).
	tokens []*gatehouse.Token
	// durable asks for the commit to be synced to disk (see durableTx).
	durable bool
	// lock is the row fn locks for update, when it locks one (a rotated
	// refresh token's id): a group runs its ops in the order of their
	// locks, so that two nodes' groups lock rows in the same order and
	// cannot deadlock.
	lock string
	done chan error
}

// maxBatch bounds how many callers one write transaction serves.
const maxBatch = 256

// startBatcher starts the goroutine that writes the hot path's small writes
// (issued tokens, refresh rotations) in group commits: whatever is waiting
// when a transaction starts goes into it, so under load one commit serves
// many requests, and a lone request waits for nothing.
func (s *Store) startBatcher() {
	batches, done := make(chan writeOp, maxBatch), make(chan struct{})
	s.batches, s.batcherDone = batches, done
	go func() {
		defer close(done)
		for first := range batches {
			group := []writeOp{first}
		drain:
			for len(group) < maxBatch {
				select {
				case op, ok := <-batches:
					if !ok {
						break drain
					}
					group = append(group, op)
				default:
					break drain
				}
			}
			s.writeGroup(group)
		}
	}()
}

// writeGroup runs a group in one transaction; if that fails, each op is
// retried alone so that one failing write fails only its own caller. A
// group the database rolled back for a conflict (on PostgreSQL, two
// nodes' groups that lock the same rows in opposite orders deadlock, and
// one of them is aborted) is retried alone too: nothing of it was written.
//
// Each step of the group's transaction (and of each retry) is bounded by
// the store's timeout (see watch); when the group failed because the
// database is unavailable,
// every op gets that error at once rather than a retry that would wait
// out the timeout again.
func (s *Store) writeGroup(group []writeOp) {
	pctx, pcancel := s.bound(context.Background())
	s.prepareHotWrites(pctx)
	pcancel()
	ctx, cancel := s.watch(context.Background())
	defer cancel()
	commit := s.tx
	for _, op := range group {
		if op.durable {
			commit = s.durableTx
			break
		}
	}
	slices.SortStableFunc(group, func(a, b writeOp) int { return strings.Compare(a.lock, b.lock) })
	var tokens []*gatehouse.Token
	for _, op := range group {
		tokens = append(tokens, op.tokens...)
	}
	err := commit(ctx, func(tx *sql.Tx) error {
		if err := s.insertTokenRows(ctx, tx, tokens); err != nil {
			return err
		}
		for _, op := range group {
			if op.tokens != nil {
				continue
			}
			if err := op.fn(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || !s.countConflict(err) && (len(group) == 1 || IsUnavailable(err)) {
		for _, op := range group {
			op.done <- err
		}
		return
	}
	for _, op := range group {
		op.done <- s.writeAlone(op)
	}
}

// conflictRetries is how many times a write the database rolled back for
// a conflict with another transaction is run again before its caller is
// told.
const conflictRetries = 3

// writeAlone runs op in a transaction of its own, again when the database
// rolls it back for a conflict (see conflicted): another node's group may
// hold the same rows, locked in another order.
func (s *Store) writeAlone(op writeOp) error {
	commit := s.tx
	if op.durable {
		commit = s.durableTx
	}
	for try := 0; ; try++ {
		ctx, cancel := s.watch(context.Background())
		err := commit(ctx, func(tx *sql.Tx) error { return op.fn(ctx, tx) })
		cancel()
		if err == nil || !s.countConflict(err) || try == conflictRetries {
			return err
		}
	}
}

// batched runs fn through the batch writer (or in its own transaction when
// there is none); durable asks for its commit to be synced to disk, and
// lock names the row fn locks for update ("" for none; see writeOp). Once
// queued the write happens; the caller waits for it even if ctx ends, so
// an answer never claims less than what was stored.
func (s *Store) batched(ctx context.Context, durable bool, lock string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.queue(ctx, writeOp{fn: fn, durable: durable, lock: lock})
}

// queue runs op through the batch writer, as batched. The writer bounds
// each group by the store's timeout, so the wait for room in the queue
// and for the write is bounded too.
func (s *Store) queue(ctx context.Context, op writeOp) error {
	ctx, span := s.span(ctx)
	defer span.End()
	s.batchMu.RLock()
	if s.batches == nil {
		s.batchMu.RUnlock()
		ctx, cancel := s.watch(ctx)
		defer cancel()
		return s.durableTx(ctx, func(tx *sql.Tx) error { return op.fn(ctx, tx) })
	}
	done := make(chan error, 1)
	op.done = done
	select {
	case s.batches <- op:
		s.batchMu.RUnlock()
	case <-ctx.Done():
		s.batchMu.RUnlock()
		return ctx.Err()
	}
	return <-done
}

// stopBatcher lets the writer finish what is queued. Writes queued after
// it run in transactions of their own (and fail once the store is closed).
func (s *Store) stopBatcher() {
	s.batchMu.Lock()
	batches := s.batches
	s.batches = nil
	s.batchMu.Unlock()
	if batches != nil {
		close(batches)
		<-s.batcherDone
	}
}
