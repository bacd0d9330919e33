package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// DailyBuckets is how many buckets the daily window is cut into: a request
// counts until its whole bucket has left the window, so the limiter never
// over-admits and under-admits by at most one bucket span (15 minutes of a
// 24-hour window).
const DailyBuckets = 96

const shardCount = 256

// Memory is the in-memory Limiter: exact, lock-sharded, with idle
// principals evicted by a background sweep that the first Allow starts.
// A request over several keys locks each of their shards once, in
// ascending order, so that concurrent requests over overlapping keys never
// deadlock. Construct it with NewMemory and stop the sweep with Close. It
// is safe for concurrent use.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [shardCount]shard

	sweepEvery time.Duration
	// started is set once the sweep has been started, or ruled out by
	// WithSweep(0) or Close.
	started atomic.Bool
	mu      sync.Mutex    // guards stop and done
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the sweeper returns
}

type shard struct {
	mu     sync.Mutex
	states map[stateKey]*state
}

// stateKey names one budget: a key within its account.
type stateKey struct{ account, key string }

// state is one principal's counters.
type state struct {
	// ring holds the admitted requests' times (unix nanoseconds) within the
	// burst window, oldest at head.
	ring    []int64
	head, n int
	// buckets count admitted requests per daily bucket, in a ring of
	// DailyBuckets+1 whose every bucket counts; cur is the absolute number
	// (time / span) of the newest bucket, first that of the oldest non-empty
	// one, total the sum.
	buckets    []uint32
	cur, first int64
	total      uint32
	span       int64 // bucket span in nanoseconds
	// last is the time of the newest admitted request.
	last int64
	// keep is how long after last the state still matters; burstWin is
	// the burst window of the last call.
	keep, burstWin int64
}

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory)

// WithClock makes the limiter read time from now (tests use a fake clock).
func WithClock(now func() time.Time) MemoryOption { return func(m *Memory) { m.now = now } }

// WithSweep evicts idle principals every interval (default one minute; 0
// turns the background sweep off).
func WithSweep(interval time.Duration) MemoryOption {
	return func(m *Memory) { m.sweepEvery = interval }
}

// NewMemory returns an in-memory limiter. It starts nothing: the first
// Allow starts the background sweep.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{now: time.Now, seed: maphash.MakeSeed(), sweepEvery: time.Minute}
	for i := range m.shards {
		m.shards[i].states = map[stateKey]*state{}
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

var _ Limiter = (*Memory)(nil)

// entry is one key of a call to Allow: its shard and, under the shard's
// lock, its state.
type entry struct {
	key   string
	shard int
	l     Limits
	b     *gatehouse.PlanBudget // the plan's budget, nil for a key
	st    *state
}

// Allow admits the request if every key has room in both windows, and
// then counts it against every key.
func (m *Memory) Allow(_ context.Context, account string, keys []string, l Limits) (Decision, error) {
	if account == "" || len(keys) == 0 {
		return Decision{}, ErrNoKeys
	}
	if !m.started.Load() {
		m.startSweep()
	}
	// The distinct keys, each with its limits, ordered by shard; room for
	// four on the stack (a user and an API token acting as them, and the
	// budgets of their plans).
	var buf [4]entry
	es := buf[:0]
	base, own := l, l.own()
	base.Own = nil
	add := func(k string, l Limits, b *gatehouse.PlanBudget) {
		for _, e := range es {
			if e.key == k {
				return
			}
		}
		e := entry{key: k, shard: int(maphash.String(m.seed, k) % shardCount), l: l, b: b}
		i := len(es)
		es = append(es, e)
		for ; i > 0 && es[i-1].shard > e.shard; i-- {
			es[i] = es[i-1]
		}
		es[i] = e
	}
	for _, k := range keys {
		add(k, base, nil)
	}
	for i := range own {
		add(own[i].Key, ownLimits(&own[i]), &own[i])
	}
	for i, e := range es {
		if i == 0 || e.shard != es[i-1].shard {
			m.shards[e.shard].mu.Lock()
		}
	}
	now := m.now().UnixNano()
	room := true
	for i := range es {
		sh, sk := &m.shards[es[i].shard], stateKey{account, es[i].key}
		st := sh.states[sk]
		if st == nil {
			st = &state{}
			sh.states[sk] = st
		}
		es[i].st = st
		room = st.check(now, es[i].l) && room
	}
	var (
		d       Decision
		started bool
	)
	at := time.Unix(0, now)
	for i := range es {
		if room {
			es[i].st.add(now, es[i].l)
		}
		d.merge(es[i].st.decision(now, es[i].l, room), es[i].b, &started, at)
	}
	for i, e := range es {
		if i == 0 || e.shard != es[i-1].shard {
			m.shards[e.shard].mu.Unlock()
		}
	}
	return d, nil
}

// check brings st up to now under l (dropping what left the windows) and
// reports whether both windows have room for one more request.
func (st *state) check(now int64, l Limits) bool {
	st.resize(l)
	burstWin := int64(l.BurstWindow)
	for st.n > 0 && st.ring[st.head] <= now-burstWin {
		st.head = (st.head + 1) % len(st.ring)
		st.n--
	}
	st.advance(now / st.span)
	return st.n < l.Burst && int(st.total) < l.Daily
}

// add counts one request at now, after check found room; its time is
// logged only under a burst limit that can bind.
func (st *state) add(now int64, l Limits) {
	if l.Burst < UnboundedBurst {
		if st.n == len(st.ring) {
			st.regrow(min(max(2*len(st.ring), 8), l.Burst), st.n)
		}
		st.ring[(st.head+st.n)%len(st.ring)] = now
		st.n++
	}
	b := now / st.span
	st.buckets[mod(b, len(st.buckets))]++
	st.total++
	if st.total == 1 {
		st.first = b
	}
	st.last = now
}

// decision reports st at now, after check (and add, when admitted).
func (st *state) decision(now int64, l Limits, allowed bool) Decision {
	d := Decision{Allowed: allowed, Limits: l}
	burstWin := int64(l.BurstWindow)
	burstUsed, dayUsed := st.n, int(st.total)
	d.BurstRemaining = max(0, l.Burst-burstUsed)
	d.DailyRemaining = max(0, l.Daily-dayUsed)
	if st.n > 0 {
		d.BurstReset = time.Duration(st.ring[st.head] + burstWin - now)
	}
	// The daily reset: when the oldest counted bucket leaves the window.
	if st.total > 0 {
		d.DailyReset = time.Duration(st.leaves(st.first) - now)
	}
	if !allowed {
		// The wait for this key's own full windows; a key with room waits
		// for nothing.
		var wait time.Duration
		if burstUsed >= l.Burst {
			// The request that must leave is the (used-limit+1)-th oldest.
			i := burstUsed - l.Burst
			wait = time.Duration(st.ring[(st.head+i)%len(st.ring)] + burstWin - now)
		}
		if dayUsed >= l.Daily {
			left := dayUsed
			for k, b := st.first, now/st.span; k <= b; k++ {
				left -= int(st.buckets[mod(k, len(st.buckets))])
				if left < l.Daily {
					wait = max(wait, time.Duration(st.leaves(k)-now))
					break
				}
			}
		}
		d.RetryAfter = wait
	}
	return d
}

// resize fits the state to the limits, keeping the newest requests when a
// limit shrinks.
func (st *state) resize(l Limits) {
	// The span is rounded up, so DailyBuckets spans cover the window.
	span := max((int64(l.DailyWindow)+DailyBuckets-1)/DailyBuckets, 1)
	if st.span != span {
		// A new daily window: keep what is counted, re-bucketed
		// conservatively into the newest bucket.
		total := st.total
		st.buckets = make([]uint32, DailyBuckets+1)
		st.span, st.cur, st.total, st.first = span, 0, 0, 0
		if total > 0 {
			st.cur = st.last / span
			st.buckets[mod(st.cur, len(st.buckets))] = total
			st.total, st.first = total, st.cur
		}
	}
	if burst := max(l.Burst, 1); st.n > burst {
		st.regrow(burst, burst) // a lowered limit: keep the newest
	}
	st.keep = max(int64(l.BurstWindow), int64(l.DailyWindow)+span)
	st.burstWin = int64(l.BurstWindow)
}

// regrow gives the burst log room for capacity entries, keeping the newest
// keep of them in order. The log grows with use up to the burst limit, so a
// high limit costs memory only when it is used.
func (st *state) regrow(capacity, keep int) {
	ring := make([]int64, capacity)
	keep = min(keep, st.n)
	for i := 0; i < keep; i++ {
		ring[i] = st.ring[(st.head+st.n-keep+i)%len(st.ring)]
	}
	st.ring, st.head, st.n = ring, 0, keep
}

// advance moves the newest bucket to b, dropping the buckets that leave
// the ring.
func (st *state) advance(b int64) {
	if b <= st.cur {
		return
	}
	n := len(st.buckets)
	if b-st.cur >= int64(n) {
		clear(st.buckets)
		st.total = 0
	} else {
		for k := st.cur + 1; k <= b; k++ {
			i := mod(k, n)
			st.total -= st.buckets[i]
			st.buckets[i] = 0
		}
	}
	st.cur = b
	// The oldest bucket still in the ring is b-n+1.
	if st.first < b-int64(n)+1 {
		st.first = b - int64(n) + 1
	}
	for st.total > 0 && st.buckets[mod(st.first, n)] == 0 {
		st.first++
	}
}

// leaves returns when the requests of bucket k stop counting: when the
// bucket drops out of the ring.
func (st *state) leaves(k int64) int64 { return (k + int64(len(st.buckets))) * st.span }

func mod(k int64, n int) int {
	r := int(k % int64(n))
	if r < 0 {
		r += n
	}
	return r
}

// Len returns the number of principals with state.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.states)
		sh.mu.Unlock()
	}
	return n
}

// Sweep evicts every principal with nothing left in either window.
func (m *Memory) Sweep() {
	now := m.now().UnixNano()
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, st := range sh.states {
			switch {
			case now-st.last >= st.keep:
				delete(sh.states, k)
			case st.n > 0 && now-st.last >= st.burstWin:
				// Nothing left in the burst window: drop the log.
				st.ring, st.head, st.n = nil, 0, 0
			}
		}
		sh.mu.Unlock()
	}
}

// startSweep starts the background sweep, unless it has been started,
// turned off or closed already.
func (m *Memory) startSweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started.Load() {
		return
	}
	m.started.Store(true)
	if m.sweepEvery <= 0 {
		return
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go m.sweeper(m.stop, m.done)
}

func (m *Memory) sweeper(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(m.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Close stops the background sweep and waits for it to return; no sweep
// starts after it. The limiter still decides requests after Close. Close is
// safe to call more than once, and on a limiter that never started a sweep.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started.Store(true)
	if m.stop != nil {
		close(m.stop)
		<-m.done
		m.stop, m.done = nil, nil
	}
	return nil
}
