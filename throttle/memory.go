package throttle

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// DefaultMaxEntries bounds the attempts a Memory holds. Every held attempt
// went through a password hash (undecided ones are released), so a node
// reaches it only at thousands of hashes a second for a whole window.
const DefaultMaxEntries = 1 << 20

// ErrFull is returned by Memory.Reserve when it holds its maximum of
// attempts even after dropping the expired ones; the caller refuses the
// attempt.
var ErrFull = errors.New("throttle: too many attempts held")

// Memory is the in-process Throttle. Each username has one log of its
// attempts (time, address digest) and each address one log of its own;
// entries leave when their window has passed, on use and in a sweep at most
// once a minute, and at most a fixed number are held in all. Construct it
// with NewMemory; it is safe for concurrent use and needs no Close.
type Memory struct {
	rules      Rules
	now        func() time.Time
	maxEntries int
	sweepEvery time.Duration

	mu      sync.Mutex
	users   map[digest][]userEntry
	addrs   map[digest][]addrEntry
	held    int
	sweptAt int64
	lastID  uint64
	// peak is the most logs held since the maps were last rebuilt: Go
	// maps keep their size after deletes, so a sweep rebuilds them once
	// most of a burst has gone.
	peak int
}

// userEntry is one attempt in a username's log.
type userEntry struct {
	at   int64 // unix nanoseconds
	addr digest
	id   uint64
}

// addrEntry is one attempt in an address's log.
type addrEntry struct {
	at int64
	id uint64
}

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory)

// WithClock makes the throttle read time from now (tests use a fake clock).
func WithClock(now func() time.Time) MemoryOption { return func(m *Memory) { m.now = now } }

// WithMaxEntries bounds the attempts held (default DefaultMaxEntries).
func WithMaxEntries(n int) MemoryOption { return func(m *Memory) { m.maxEntries = n } }

// NewMemory returns an empty in-memory throttle with rules.
func NewMemory(rules Rules, opts ...MemoryOption) *Memory {
	m := &Memory{rules: rules, now: time.Now, maxEntries: DefaultMaxEntries, sweepEvery: time.Minute,
		users: map[digest][]userEntry{}, addrs: map[digest][]addrEntry{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

var _ Throttle = (*Memory)(nil)

// Reserve counts one attempt if every counter has room.
func (m *Memory) Reserve(_ context.Context, username, addr string) (Reservation, error) {
	r := Reservation{user: userDigest(username), addr: addrDigest(addr)}
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now-m.sweptAt >= int64(m.sweepEvery) {
		m.sweep(now)
	}
	ul := m.pruneUser(r.user, now)
	al := m.pruneAddr(r.addr, now)

	var wait int64
	// Per username: the entries younger than the window, oldest first.
	uw := int64(m.rules.User.Window)
	first := 0
	for first < len(ul) && ul[first].at <= now-uw {
		first++
	}
	if n := len(ul) - first; n >= m.rules.User.Limit {
		wait = max(wait, ul[first+n-m.rules.User.Limit].at+uw-now)
	}
	// Per username and address: count, then find the one that must leave.
	pw := int64(m.rules.UserAddr.Window)
	pairs := 0
	for _, e := range ul {
		if e.addr == r.addr && e.at > now-pw {
			pairs++
		}
	}
	if pairs >= m.rules.UserAddr.Limit {
		skip := pairs - m.rules.UserAddr.Limit
		for _, e := range ul {
			if e.addr == r.addr && e.at > now-pw {
				if skip == 0 {
					wait = max(wait, e.at+pw-now)
					break
				}
				skip--
			}
		}
	}
	// Per address (its log holds only entries within its window).
	if n := len(al); n >= m.rules.Addr.Limit {
		wait = max(wait, al[n-m.rules.Addr.Limit].at+int64(m.rules.Addr.Window)-now)
	}
	if wait > 0 {
		return Reservation{}, refused(time.Duration(wait))
	}

	if m.held+2 > m.maxEntries {
		m.sweep(now)
		if m.held+2 > m.maxEntries {
			return Reservation{}, ErrFull
		}
	}
	m.lastID++
	r.id = m.lastID
	m.users[r.user] = append(ul, userEntry{at: now, addr: r.addr, id: r.id})
	m.addrs[r.addr] = append(al, addrEntry{at: now, id: r.id})
	m.held += 2
	m.peak = max(m.peak, len(m.users)+len(m.addrs))
	return r, nil
}

// Succeed clears the username's log and drops the attempt from its
// address's log.
func (m *Memory) Succeed(_ context.Context, r Reservation) error {
	if r.id == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held -= len(m.users[r.user])
	delete(m.users, r.user)
	m.dropAddr(r)
	return nil
}

// Release drops the attempt from both logs.
func (m *Memory) Release(_ context.Context, r Reservation) error {
	if r.id == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ul, ok := m.users[r.user]; ok {
		if i := slices.IndexFunc(ul, func(e userEntry) bool { return e.id == r.id }); i >= 0 {
			m.setUser(r.user, slices.Delete(ul, i, i+1))
			m.held--
		}
	}
	m.dropAddr(r)
	return nil
}

// Clear drops the username's log.
func (m *Memory) Clear(_ context.Context, username string) error {
	u := userDigest(username)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held -= len(m.users[u])
	delete(m.users, u)
	return nil
}

// Len returns the number of attempts held (each counts once per log).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held
}

func (m *Memory) dropAddr(r Reservation) {
	al, ok := m.addrs[r.addr]
	if !ok {
		return
	}
	if i := slices.IndexFunc(al, func(e addrEntry) bool { return e.id == r.id }); i >= 0 {
		m.setAddr(r.addr, slices.Delete(al, i, i+1))
		m.held--
	}
}

// pruneUser drops the entries of a username's log that no counter needs.
func (m *Memory) pruneUser(u digest, now int64) []userEntry {
	ul := m.users[u]
	keep := int64(m.rules.userKeep())
	i := 0
	for i < len(ul) && ul[i].at <= now-keep {
		i++
	}
	if i > 0 {
		m.held -= i
		ul = ul[:copy(ul, ul[i:])]
		m.setUser(u, ul)
	}
	return ul
}

// pruneAddr drops the entries of an address's log older than its window.
func (m *Memory) pruneAddr(a digest, now int64) []addrEntry {
	al := m.addrs[a]
	i := 0
	for i < len(al) && al[i].at <= now-int64(m.rules.Addr.Window) {
		i++
	}
	if i > 0 {
		m.held -= i
		al = al[:copy(al, al[i:])]
		m.setAddr(a, al)
	}
	return al
}

func (m *Memory) setUser(u digest, ul []userEntry) {
	if len(ul) == 0 {
		delete(m.users, u)
		return
	}
	m.users[u] = ul
}

func (m *Memory) setAddr(a digest, al []addrEntry) {
	if len(al) == 0 {
		delete(m.addrs, a)
		return
	}
	m.addrs[a] = al
}

// sweep drops every expired entry and every empty log.
func (m *Memory) sweep(now int64) {
	m.sweptAt = now
	for u := range m.users {
		m.pruneUser(u, now)
	}
	for a := range m.addrs {
		m.pruneAddr(a, now)
	}
	if n := len(m.users) + len(m.addrs); n < m.peak/4 {
		m.users, m.addrs, m.peak = rebuilt(m.users), rebuilt(m.addrs), n
	}
}

// rebuilt returns a copy of m sized for what it holds now.
func rebuilt[V any](m map[digest]V) map[digest]V {
	out := make(map[digest]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
