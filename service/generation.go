package service

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Cluster rings the other nodes of a cluster when a revoking change has
// committed. Its state is kept in Shards shards, and every Announce by any
// node gives every shard a new state. A shard's state is a doorbell, not a
// record: what changed is read from the store's revocation log. It must
// never return to a state a node may have seen unless nothing was
// announced since (a fresh random value per announcement), and must change
// whenever the shared store behind it loses its memory (a restart without
// persistence, a flush). Implementations are safe for concurrent use and
// return an error when the shared store cannot be reached.
type Cluster interface {
	// Shards returns the number of shards; Shard returns an account's
	// (the one its rate-limit budgets live beside).
	Shards() int
	Shard(account string) int
	// State reads shard i's state.
	State(ctx context.Context, i int) (gatehouse.ClusterState, error)
	// Announce rings every shard for a committed revocation that touched
	// subjects.
	Announce(ctx context.Context, subjects []string) error
}

// snapshot is one immutable view of the node's caches: gen, which only a
// change that cannot be named narrowly advances (then every entry made
// before is dropped), and the state of each cluster shard last caught up
// with (nil outside a cluster). A state is published in a snapshot only
// after the node has applied every revocation the store had committed
// when it began reading the log, after it saw that state: an entry valid
// under the snapshot reflects every revocation announced before any of
// its states was read.
type snapshot struct {
	gen  uint64
	seen []gatehouse.ClusterState
}

// generations is this node's view of what was revoked: the snapshot, the
// marks of revoked subjects, and how far it has read the store's
// revocation log.
type generations struct {
	cur   atomic.Pointer[snapshot]
	marks *marks
	// applied is the store's change counter up to which the revocation
	// log was applied (-1: not read yet); written under catchUp's lock.
	applied int64
	// confirmed is when the last successful read of the log began
	// (monotonic nanoseconds since base; 0: never).
	confirmed atomic.Int64
	base      time.Time
	// catchUp serialises reads of the log; tickets orders them against
	// the sightings of new cluster states (see Service.catchUp).
	catchUp ctxMutex
	tickets atomic.Uint64
	// caughtUp is the ticket taken when the last successful read began,
	// under catchUp; failedAt the one of the last failed read, and
	// failure its error.
	caughtUp, failedAt uint64
	failure            error
	// sighted holds, per shard, the newest state a request of this node
	// read from the cluster and found new (nil: none yet): a read of the
	// log that begins after it was stored publishes it, whichever shard
	// the read was for.
	sighted []atomic.Pointer[gatehouse.ClusterState]
}

func (g *generations) init(shards int) {
	g.base = time.Now()
	g.applied = -1
	g.catchUp.init()
	g.marks = newMarks()
	g.cur.Store(&snapshot{seen: make([]gatehouse.ClusterState, shards)})
	g.sighted = make([]atomic.Pointer[gatehouse.ClusterState], shards)
}

// sight records that shard i was just read in state st.
func (g *generations) sight(i int, st gatehouse.ClusterState) {
	if p := g.sighted[i].Load(); p == nil || *p != st {
		g.sighted[i].Store(&st)
	}
}

// sightings returns the states sighted so far (the zero state for a shard
// never sighted).
func (g *generations) sightings() []gatehouse.ClusterState {
	out := make([]gatehouse.ClusterState, len(g.sighted))
	for i := range g.sighted {
		if p := g.sighted[i].Load(); p != nil {
			out[i] = *p
		}
	}
	return out
}

// load returns the current snapshot.
func (g *generations) load() *snapshot { return g.cur.Load() }

// advance drops every cache entry made so far.
func (g *generations) advance() {
	for {
		p := g.cur.Load()
		if g.cur.CompareAndSwap(p, &snapshot{gen: p.gen + 1, seen: p.seen}) {
			return
		}
	}
}

// revoke drops the cache entries that rest on subjects (all of them for
// SubjectAll).
func (g *generations) revoke(subjects []string) {
	if len(subjects) == 0 || slices.Contains(subjects, gatehouse.SubjectAll) {
		g.advance()
		return
	}
	g.marks.revoke(subjects)
}

// publish records that shard i is in state st, once the node has caught
// up with it, and returns a snapshot that holds it.
func (g *generations) publish(i int, st gatehouse.ClusterState) *snapshot {
	for {
		p := g.cur.Load()
		if p.seen[i] == st {
			return p
		}
		seen := slices.Clone(p.seen)
		seen[i] = st
		n := &snapshot{gen: p.gen, seen: seen}
		if g.cur.CompareAndSwap(p, n) {
			return n
		}
	}
}

// publishAll records the states sts (sightings; a zero state is left
// out), once the node has caught up with each of them, in one snapshot.
func (g *generations) publishAll(sts []gatehouse.ClusterState) {
	for {
		p := g.cur.Load()
		var seen []gatehouse.ClusterState
		for i, st := range sts {
			if st != (gatehouse.ClusterState{}) && p.seen[i] != st {
				if seen == nil {
					seen = slices.Clone(p.seen)
				}
				seen[i] = st
			}
		}
		if seen == nil || g.cur.CompareAndSwap(p, &snapshot{gen: p.gen, seen: seen}) {
			return
		}
	}
}

// DefaultChangePoll is how often, at most, a node reads the store's
// revocation log without being rung, so that a change made outside any
// node of this release (gatehouse recover, a node of the previous release,
// a script on the database) reaches its caches within that time.
const DefaultChangePoll = time.Second

// since returns the monotonic time since g was made.
func (g *generations) since() int64 { return int64(time.Since(g.base)) }

// catchUp applies, within the store's deadline, every revocation the
// store has committed since the node last read its log, unless a read
// that began after catchUp was called has done so meanwhile: a caller
// that has just seen a new cluster state learns of everything announced
// before it. A gap in the log (a change by a process that keeps none, or
// more than one read returns) drops every cache entry. Every state
// sighted before the read began is published with it, so that each
// shard's principals rest on a state the node has read lately, and the
// cluster's check of them walks few rings.
//
// A caller waits no longer than the store's deadline in all, counted
// from its call, and shares the outcome of a read that began after it
// called, a failure too: when the store is stalled, requests that ask
// together are answered 503 together, within the deadline, rather than
// each in turn after the reads of those before it.
func (s *Service) catchUp(ctx context.Context) error {
	mine := s.gen.tickets.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.store.Timeout())
	defer cancel()
	if err := s.gen.catchUp.lock(ctx); err != nil {
		return err
	}
	defer s.gen.catchUp.Unlock()
	if g := &s.gen; g.caughtUp <= mine && g.failedAt > mine {
		return g.failure
	}
	return s.catchUpLocked(ctx, mine)
}

// ctxMutex is a mutual exclusion lock whose wait a context ends.
type ctxMutex struct{ ch chan struct{} }

func (m *ctxMutex) init() { m.ch = make(chan struct{}, 1) }

// lock takes the lock, or returns ctx's error when ctx ends first.
func (m *ctxMutex) lock(ctx context.Context) error {
	select {
	case m.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lock takes the lock, waiting as long as it takes.
func (m *ctxMutex) Lock() { m.ch <- struct{}{} }

// TryLock takes the lock if it is free and reports whether it did.
func (m *ctxMutex) TryLock() bool {
	select {
	case m.ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// Unlock releases the lock.
func (m *ctxMutex) Unlock() { <-m.ch }

// catchUpLocked is catchUp for a caller that holds its lock and took
// ticket mine when it saw what it must catch up with.
func (s *Service) catchUpLocked(ctx context.Context, mine uint64) error {
	g := &s.gen
	if g.caughtUp > mine {
		return nil
	}
	ticket := g.tickets.Add(1)
	start := g.since()
	var sighted []gatehouse.ClusterState
	if s.cluster != nil {
		sighted = g.sightings()
	}
	head, log, complete, err := s.store.RevocationsSince(ctx, g.applied)
	if err != nil {
		g.failedAt, g.failure = ticket, err
		return err
	}
	switch {
	case g.applied < 0 || !complete:
		if head != g.applied {
			g.advance()
		}
	default:
		for _, r := range log {
			g.revoke(r.Subjects)
		}
	}
	g.applied, g.caughtUp = head, ticket
	if sighted != nil {
		g.publishAll(sighted)
	}
	for {
		c := g.confirmed.Load()
		if c >= start || g.confirmed.CompareAndSwap(c, start) {
			return nil
		}
	}
}

// confirmChanges makes sure the revocation log was read less than the
// poll interval ago, so that nothing cached hides a change made outside
// any node for longer than that. The background poll (Run) keeps it so
// and no request waits for it; only when that poll has fallen behind —
// the store is slow or away — does a request read the log itself, within
// the store's deadline, and a failure is 503: a request is never admitted
// from a cache whose currency cannot be confirmed.
func (s *Service) confirmChanges(ctx context.Context) error {
	if c := s.gen.confirmed.Load(); s.changePoll < 0 || c != 0 && s.gen.since()-c < int64(s.changePoll) {
		return nil
	}
	if err := s.catchUp(ctx); err != nil {
		gatehouse.Logger(ctx).WarnContext(ctx, "store revocation log unavailable", "err", err)
		return gatehouse.Errorf(gatehouse.EUnavailable, "The store is unavailable; try again shortly")
	}
	return nil
}

// observe returns a snapshot that holds state st for shard i, as just
// read from the cluster: when st is new to this node, it first catches up
// with the revocation log (503 when it cannot).
func (s *Service) observe(ctx context.Context, i int, st gatehouse.ClusterState) (*snapshot, error) {
	if p := s.gen.load(); p.seen[i] == st {
		return p, nil
	}
	s.gen.sight(i, st)
	if err := s.catchUp(ctx); err != nil {
		gatehouse.Logger(ctx).WarnContext(ctx, "store revocation log unavailable", "err", err)
		return nil, gatehouse.Errorf(gatehouse.EUnavailable, "The store is unavailable; try again shortly")
	}
	return s.gen.publish(i, st), nil
}

// generation returns the snapshot to use for a look-up that starts now,
// once confirmChanges has; with a cluster it first reads one shard's
// state (any shard: every announcement rings all of them), and answers
// 503 when it cannot.
func (s *Service) generation(ctx context.Context) (*snapshot, error) {
	if err := s.confirmChanges(ctx); err != nil {
		return nil, err
	}
	if s.cluster == nil {
		return s.gen.load(), nil
	}
	i := rand.IntN(len(s.gen.load().seen))
	st, err := s.cluster.State(ctx, i)
	if err != nil {
		gatehouse.Logger(ctx).WarnContext(ctx, "cluster state unavailable (Redis)", "err", err)
		return nil, unavailable()
	}
	return s.observe(ctx, i, st)
}

// fill is where a look-up that missed the cache reads the store from:
// the snapshot it caches its answer under, and the marks' tick before the
// read.
type fill struct {
	snap *snapshot
	at   uint64
}

// principal returns the principal cached under key, or, on a miss, the
// fill under which to read it from the store and cache it (putPrincipal).
// With unconfirmed set and a rate limiter that confirms principals
// (Config.LimiterConfirms), a hit under this node's current snapshot is
// served without reading the cluster: the limiter confirms its Basis. A
// miss, and every look-up otherwise, reads the cluster first (generation),
// so that a credential read from the store is checked against a current
// state, and an unreachable cluster is 503 here as everywhere.
func (s *Service) principal(ctx context.Context, key string, unconfirmed bool) (*gatehouse.Principal, fill, error) {
	if unconfirmed && s.cluster != nil && s.limiterConfirms {
		if err := s.confirmChanges(ctx); err != nil {
			return nil, fill{}, err
		}
		if p := s.cached(key, s.gen.load()); p != nil {
			return p, fill{}, nil
		}
	}
	snap, err := s.generation(ctx)
	if err != nil {
		return nil, fill{}, err
	}
	if p := s.cached(key, snap); p != nil {
		return p, fill{}, nil
	}
	s.cacheHit(false)
	return nil, fill{snap: snap, at: s.gen.marks.now()}, nil
}

// cached returns the principal cached under key if it is valid under snap
// (nil otherwise), resting on the state snap holds for its account's
// shard: a principal cached under an earlier state that no revocation
// since touched is valid under this one too, and is cached again with it
// as its Basis (a copy: a cached principal is never changed).
func (s *Service) cached(key string, snap *snapshot) *gatehouse.Principal {
	e, ok := s.principals.entry(key, snap.gen, s.clock())
	if !ok {
		return nil
	}
	s.cacheHit(true)
	p := e.v
	if st := s.basis(snap, p.AccountID); p.Basis != st {
		q := *p
		q.Basis = st
		s.principals.put(key, e.gen, e.tags, &q, e.expires)
		p = &q
	}
	return p
}

// putPrincipal caches p, read from the store under f, until expires; p
// rests on its account, user, credential and token family (family, when
// it came through a token).
func (s *Service) putPrincipal(key string, f fill, p *gatehouse.Principal, family string, expires time.Time) {
	p.Basis = s.basis(f.snap, p.AccountID)
	subjects := principalSubjects(p, family)
	if s.cluster != nil {
		p.Rests = gatehouse.SubjectSlots(subjects[:]...)
	}
	s.principals.put(key, f.snap.gen, s.gen.marks.tagged(f.at, subjects[:]...), p.Seal(), expires)
}

// basis returns the state of account's shard in snap (see
// gatehouse.Principal.Basis).
func (s *Service) basis(snap *snapshot, account string) gatehouse.ClusterState {
	if s.cluster == nil {
		return gatehouse.ClusterState{}
	}
	return snap.seen[s.cluster.Shard(account)]
}

// Observe folds the state of account's shard, as the rate limiter just
// read it from the cluster, into this node's view, catching up with the
// revocation log when it is new (503 when the log cannot be read). A
// principal whose Basis differs from it must be looked up again before it
// is served.
func (s *Service) Observe(ctx context.Context, account string, st gatehouse.ClusterState) error {
	if s.cluster == nil {
		return nil
	}
	_, err := s.observe(ctx, s.cluster.Shard(account), st)
	return err
}

// noticeEvery is how often, at most, requests admitted under a state new
// to their node make it catch up (Notice): under many revocations a
// second, the node reads the log a few dozen times a second, not once per
// revocation, and requests rest on the doorbell's list of recent rings
// meanwhile.
const noticeEvery = 25 * time.Millisecond

// Notice is Observe for a request the limiter admitted under a state new
// to this node (a revocation rung that did not touch it): the node
// catches up unless it did less than noticeEvery ago or another request
// is already doing so, and the request never waits for one; a failure is
// left to the next request.
func (s *Service) Notice(ctx context.Context, account string, st gatehouse.ClusterState) {
	if s.cluster == nil {
		return
	}
	i := s.cluster.Shard(account)
	if s.gen.load().seen[i] == st {
		return
	}
	s.gen.sight(i, st)
	if s.gen.since()-s.gen.confirmed.Load() < int64(noticeEvery) || !s.gen.catchUp.TryLock() {
		return
	}
	// The read publishes st with the other sightings (catchUpLocked).
	_ = s.catchUpLocked(ctx, s.gen.tickets.Add(1))
	s.gen.catchUp.Unlock()
}
