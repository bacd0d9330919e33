package store

import (
	"context"
	"database/sql"

	"github.com/gatehouse/gatehouse"
)

// tokenBatch is one caller's tokens waiting for the batch writer.
type tokenBatch struct {
	toks []*gatehouse.Token
	done chan error
}

// maxBatch bounds how many callers one write transaction serves.
const maxBatch = 256

// startBatcher starts the goroutine that writes issued tokens in group
// commits: whatever is waiting when a transaction starts goes into it, so
// under load one commit serves many requests, and with one request there
// is no added wait.
func (s *Store) startBatcher() {
	s.batches = make(chan tokenBatch, maxBatch)
	s.batcherDone = make(chan struct{})
	go func() {
		defer close(s.batcherDone)
		for first := range s.batches {
			group := []tokenBatch{first}
		drain:
			for len(group) < maxBatch {
				select {
				case b, ok := <-s.batches:
					if !ok {
						break drain
					}
					group = append(group, b)
				default:
					break drain
				}
			}
			s.writeGroup(group)
		}
	}()
}

// writeGroup inserts a group in one transaction; if that fails, each
// caller's tokens are retried alone so one bad insert fails only its own
// caller.
func (s *Store) writeGroup(group []tokenBatch) {
	ctx := context.Background()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, b := range group {
			if err := s.insertTokens(ctx, tx, b.toks...); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, b := range group {
			b.done <- err
		}
		return
	}
	for _, b := range group {
		b.done <- s.tx(ctx, func(tx *sql.Tx) error { return s.insertTokens(ctx, tx, b.toks...) })
	}
}

// stopBatcher lets the writer finish what is queued.
func (s *Store) stopBatcher() {
	if s.batches != nil {
		close(s.batches)
		<-s.batcherDone
		s.batches = nil
	}
}
