package store

import (
	"context"
	"database/sql"
)

// writeOp is one caller's write waiting for the batch writer. fn runs
// inside a shared transaction and must be safe to run again in a
// transaction of its own.
type writeOp struct {
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

// maxBatch bounds how many callers one write transaction serves.
const maxBatch = 256

// startBatcher starts the goroutine that writes the hot path's small writes
// (issued tokens, refresh rotations) in group commits: whatever is waiting
// when a transaction starts goes into it, so under load one commit serves
// many requests, and a lone request waits for nothing.
func (s *Store) startBatcher() {
	s.batches = make(chan writeOp, maxBatch)
	s.batcherDone = make(chan struct{})
	go func() {
		defer close(s.batcherDone)
		for first := range s.batches {
			group := []writeOp{first}
		drain:
			for len(group) < maxBatch {
				select {
				case op, ok := <-s.batches:
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
// retried alone so that one failing write fails only its own caller.
func (s *Store) writeGroup(group []writeOp) {
	ctx := context.Background()
	s.prepareHotWrites(ctx)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, op := range group {
			if err := op.fn(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, op := range group {
			op.done <- err
		}
		return
	}
	for _, op := range group {
		op.done <- s.tx(ctx, func(tx *sql.Tx) error { return op.fn(ctx, tx) })
	}
}

// batched runs fn through the batch writer (or in its own transaction when
// there is none). Once queued the write happens; the caller waits for it
// even if ctx ends, so an answer never claims less than what was stored.
func (s *Store) batched(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.batches == nil {
		return s.tx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
	done := make(chan error, 1)
	select {
	case s.batches <- writeOp{fn: fn, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-done
}

// stopBatcher lets the writer finish what is queued.
func (s *Store) stopBatcher() {
	if s.batches != nil {
		close(s.batches)
		<-s.batcherDone
		s.batches = nil
	}
}
