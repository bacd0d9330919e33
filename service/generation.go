package service

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Cluster shares revoking changes between the nodes of a cluster. Its
// state is kept in Shards shards, and every Announce by any node advances
// every shard. A shard's state must change after every Announce, and must
// also change — never go back to a value seen before — whenever the shared
// store behind it loses its memory (a restart without persistence, a
// failover, a flush), so that no node trusts a cache filled before the
// loss. Implementations are safe for concurrent use and return an error
// when the shared store cannot be reached.
type Cluster interface {
	// Shards returns the number of shards; Shard returns an account's
	// (the one its rate-limit budgets live beside).
	Shards() int
	Shard(account string) int
	// State reads shard i's state.
	State(ctx context.Context, i int) (gatehouse.ClusterState, error)
	Announce(ctx context.Context) error
}

// snapshot is one immutable view of the node's cache generation: gen, and
// the state of each cluster shard as last seen (nil outside a cluster).
// Every gen names exactly one snapshot. A snapshot's seen states were all
// read from the cluster before the snapshot was made, so a cache entry
// filled from a store read that began after the snapshot was loaded (and
// cached under its gen) reflects every revoking change announced before
// any of those reads.
type snapshot struct {
	gen  uint64
	seen []gatehouse.ClusterState
}

// generations is this node's cache generation. It only grows: it advances
// after every revoking change committed here, and whenever a cluster
// shard's state differs from the one last seen (any change, or a new
// epoch).
type generations struct {
	cur atomic.Pointer[snapshot]
	// changes is the store's change counter as last read, and confirmed
	// when the last successful read of it began (monotonic nanoseconds
	// since base; 0: never).
	changes   atomic.Int64
	confirmed atomic.Int64
	base      time.Time
}

func (g *generations) init(shards int) {
	g.base = time.Now()
	g.cur.Store(&snapshot{seen: make([]gatehouse.ClusterState, shards)})
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

// observe folds the state of shard i, as just read from the cluster, into
// the generation and returns a snapshot that holds it: entries cached
// under it were filled after a read that returned st, so a change
// announced before this read is never hidden by one of them.
func (g *generations) observe(i int, st gatehouse.ClusterState) *snapshot {
	for {
		p := g.cur.Load()
		if p.seen[i] == st {
			return p
		}
		seen := slices.Clone(p.seen)
		seen[i] = st
		n := &snapshot{gen: p.gen + 1, seen: seen}
		if g.cur.CompareAndSwap(p, n) {
			return n
		}
	}
}

// DefaultChangePoll is how often, at most, a node reads the store's counter
// of revoking changes, so that a change made outside any node (gatehouse
// recover, a script on the database) empties its caches within that time.
const DefaultChangePoll = time.Second

// since returns the monotonic time since g was made.
func (g *generations) since() int64 { return int64(time.Since(g.base)) }

// pollChanges reads the store's change counter (within the store's
// deadline) and advances the generation when it moved; only then does it
// record when the read began as the latest confirmation.
func (s *Service) pollChanges(ctx context.Context) error {
	start := s.gen.since()
	n, err := s.store.Changes(ctx)
	if err != nil {
		return err
	}
	if s.gen.changes.Swap(n) != n {
		s.gen.advance()
	}
	for {
		c := s.gen.confirmed.Load()
		if c >= start || s.gen.confirmed.CompareAndSwap(c, start) {
			return nil
		}
	}
}

// confirmChanges makes sure the change counter was read less than the
// poll interval ago, so that nothing cached hides a change made outside
// any node for longer than that. The background poll (Run) keeps it so
// and no request waits for it; only when that poll has fallen behind —
// the store is slow or away — does a request read the counter itself,
// within the store's deadline, and a failure is 503: a request is never
// admitted from a cache whose currency cannot be confirmed.
func (s *Service) confirmChanges(ctx context.Context) error {
	if c := s.gen.confirmed.Load(); s.changePoll < 0 || c != 0 && s.gen.since()-c < int64(s.changePoll) {
		return nil
	}
	if err := s.pollChanges(ctx); err != nil {
		gatehouse.Logger(ctx).WarnContext(ctx, "store change counter unavailable", "err", err)
		return gatehouse.Errorf(gatehouse.EUnavailable, "The store is unavailable; try again shortly")
	}
	return nil
}

// generation returns the snapshot to use for a look-up that starts now,
// once confirmChanges has; with a cluster it first reads one shard's
// state (any shard: every announcement advances all of them), and answers
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
	return s.gen.observe(i, st), nil
}

// principal returns the principal cached under key, or, on a miss, the
// snapshot under which to read it from the store and cache it. With
// unconfirmed set and a rate limiter that confirms principals
// (Config.LimiterConfirms), a hit under this node's current snapshot is
// served without reading the cluster: the limiter confirms its Basis. A
// miss, and every look-up otherwise, reads the cluster first (generation),
// so that a credential read from the store is checked against a current
// state, and an unreachable cluster is 503 here as everywhere.
func (s *Service) principal(ctx context.Context, key string, unconfirmed bool) (*gatehouse.Principal, *snapshot, error) {
	if unconfirmed && s.cluster != nil && s.limiterConfirms {
		if err := s.confirmChanges(ctx); err != nil {
			return nil, nil, err
		}
		if p, ok := s.principals.get(key, s.gen.load().gen, s.clock()); ok {
			s.cacheHit(true)
			return p, nil, nil
		}
	}
	snap, err := s.generation(ctx)
	if err != nil {
		return nil, nil, err
	}
	if p, ok := s.principals.get(key, snap.gen, s.clock()); ok {
		s.cacheHit(true)
		return p, nil, nil
	}
	s.cacheHit(false)
	return nil, snap, nil
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
// read it from the cluster, into this node's generation. A principal whose
// Basis differs from it must be validated again before it is served.
func (s *Service) Observe(account string, st gatehouse.ClusterState) {
	if s.cluster != nil {
		s.gen.observe(s.cluster.Shard(account), st)
	}
}
