package service

import (
	"context"
	"sync"
	"time"
)

// maxPendingTouches bounds the last-use marks waiting to be written; a
// mark that finds no room is dropped (and made again on a later use).
const maxPendingTouches = 10_000

// touchWrite writes one last_used_at.
type touchWrite func(ctx context.Context, at time.Time) error

// pendingTouch is a last-use mark waiting for the background writer.
type pendingTouch struct {
	at    time.Time
	write touchWrite
}

// touches holds the last-use marks waiting to be written while Run runs.
type touches struct {
	running bool // Run is running; guarded by mu
	mu      sync.Mutex
	pending map[string]pendingTouch
	wake    chan struct{}
	// writing is held while marks are written, so that settleTouches
	// returns only after every mark taken before it was called is stored.
	writing sync.Mutex
}

// Run does the service's background work until ctx ends: it reads the
// store's revocation log every half poll interval (so that requests find
// it confirmed, see confirmChanges, and never wait for it), and writes
// last-use times (touch) as they come, and every expiry poll sends the
// credential expiry notices due (NoticeExpiries). Every store call it makes has the
// store's deadline. Without Run, requests do both themselves.
func (s *Service) Run(ctx context.Context) {
	s.touches.mu.Lock()
	s.touches.running = true
	s.touches.mu.Unlock()
	var wg sync.WaitGroup
	if s.changePoll > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(s.changePoll / 2)
			defer t.Stop()
			failing := false // logged once when it starts and once when it ends
			for {
				err := s.catchUp(ctx)
				switch {
				case err != nil && !failing && ctx.Err() == nil:
					s.logger.Warn("cannot read the store's revocation log; cached credentials are not served until it can", "err", err)
					failing = true
				case err == nil && failing:
					s.logger.Info("the store's revocation log is readable again")
					failing = false
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.expiryPoll)
		defer t.Stop()
		for {
			if _, err := s.NoticeExpiries(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("could not send credential expiry notices; trying again", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			s.touches.mu.Lock()
			s.touches.running = false
			s.touches.mu.Unlock()
			s.writeTouches(context.WithoutCancel(ctx))
			return
		case <-s.touches.wake:
			s.writeTouches(ctx)
		}
	}
}

// mark reports whether a use of the credential named key at now is to be
// written: at most once per LastUsedResolution, so that using a
// credential does not cost a store write per request.
func (s *Service) mark(key string, now time.Time) bool {
	if _, ok := s.lastUsed.get(key, 0, now); ok {
		return false
	}
	s.lastUsed.put(key, 0, tags{}, struct{}{}, now.Add(LastUsedResolution))
	return true
}

// touch records a use of the credential named key (see mark), writing it
// at once; touchLater leaves it to the background.
func (s *Service) touch(_ context.Context, key string, write func(at time.Time) error) {
	now := s.clock()
	if !s.mark(key, now) {
		return
	}
	if err := write(now.UTC()); err != nil {
		s.lastUsed.drop(key)
	}
}

// touchLater records a use of the credential named key (see mark). While
// Run runs the write is left to it, with a context of its own, and no
// request waits for it; otherwise it is made here.
func (s *Service) touchLater(ctx context.Context, key string, write touchWrite) {
	now := s.clock()
	if !s.mark(key, now) {
		return
	}
	t := &s.touches
	t.mu.Lock()
	if t.running {
		queued := len(t.pending) < maxPendingTouches
		if queued {
			if t.pending == nil {
				t.pending = make(map[string]pendingTouch)
			}
			t.pending[key] = pendingTouch{at: now.UTC(), write: write}
		}
		t.mu.Unlock()
		if !queued {
			s.lastUsed.drop(key)
			return
		}
		select {
		case t.wake <- struct{}{}:
		default:
		}
		return
	}
	t.mu.Unlock()
	if err := write(ctx, now.UTC()); err != nil {
		s.lastUsed.drop(key)
	}
}

// writeTouches writes every waiting last-use mark; one that fails is
// dropped, to be made again on a later use.
func (s *Service) writeTouches(ctx context.Context) {
	t := &s.touches
	t.writing.Lock()
	defer t.writing.Unlock()
	t.mu.Lock()
	pending := t.pending
	t.pending = nil
	t.mu.Unlock()
	for key, p := range pending {
		if err := p.write(ctx, p.at); err != nil {
			s.lastUsed.drop(key)
			if ctx.Err() == nil {
				s.logger.Warn("could not write a last-use time", "err", err)
			}
		}
	}
}

// settleTouches writes the last-use marks made so far before a list that
// shows them is read, so that a list reflects every use it follows.
func (s *Service) settleTouches(ctx context.Context) {
	s.writeTouches(ctx)
}
