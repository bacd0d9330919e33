package password

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLimits holds the hashing turns directly: beyond Concurrency running
// and Queue waiting, every kind of hash is refused at once with ErrBusy,
// before any hashing; a waiter runs when a turn frees, and leaves the queue
// when its context ends.
func TestLimits(t *testing.T) {
	h := New(Params{Memory: 1024, Time: 1, Threads: 1}, WithLimits(Limits{Concurrency: 2, Queue: 1}))
	ctx := context.Background()
	hash, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- h.Verify(ctx, "correct horse", hash) }()
	select {
	case err := <-waited:
		t.Fatalf("ran beyond the concurrency limit: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	// Running 2, waiting 1: everything else is refused, at once.
	if !h.Busy() {
		t.Fatal("not busy with a full queue")
	}
	for name, try := range map[string]func() error{
		"verify": func() error { return h.Verify(ctx, "correct horse", hash) },
		"dummy":  func() error { return h.VerifyDummy(ctx, "x") },
	} {
		start := time.Now()
		if err := try(); !errors.Is(err, ErrBusy) {
			t.Fatalf("%s with a full queue: %v", name, err)
		}
		if d := time.Since(start); d > 20*time.Millisecond {
			t.Fatalf("%s refused after %v", name, d)
		}
	}
	// Setting a password (authenticated callers) is never refused for the
	// queue: it waits for a running turn, within its context.
	hctx, hcancel := context.WithTimeout(ctx, 30*time.Millisecond)
	if _, err := h.Hash(hctx, "another password"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hash with every turn taken: %v, want to wait until its context ends", err)
	}
	hcancel()
	r1()
	if err := <-waited; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	// A waiter whose context ends leaves the queue.
	r3, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := h.Verify(cctx, "correct horse", hash); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	r2()
	r3()
	if h.Busy() || len(h.admit) != 0 || len(h.run) != 0 {
		t.Fatalf("turns left taken: %d admitted, %d running", len(h.admit), len(h.run))
	}
	if err := h.VerifyDummy(ctx, "x"); err != nil {
		t.Fatal(err)
	}
}
