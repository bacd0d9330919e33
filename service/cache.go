package service

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// DefaultCacheBytes is the default bound, in bytes, of the service's
// in-memory caches together (--cache-size).
const DefaultCacheBytes = 128 << 20

// cache is the one bounded in-memory cache of the service: validated
// credentials, API access applications, last-use marks. An entry is used
// only while the cache generation is the one read before the entry's value
// was read from the store, so any revoking change (on this node, or
// announced by another) drops every entry at once; an entry with an expiry
// is dropped when it passes. It holds at most maxBytes of entries by their
// estimated size (see put) and is safe for concurrent use.
type cache[V any] struct {
	shards   [64]cacheShard[V]
	maxBytes int64
	// marks, when set, tells which entries a revocation made unusable
	// (see marks); nil: only the generation does.
	marks *marks
	// size estimates what a value holds beyond the entry itself.
	size func(V) int
	seed maphash.Seed
}

type cacheShard[V any] struct {
	mu      sync.RWMutex
	entries map[string]cacheEntry[V]
	bytes   int64
	// puts counts the puts since the shard was last swept, and kept the
	// entries the sweep left (see put).
	puts, kept int
}

type cacheEntry[V any] struct {
	v       V
	gen     uint64
	tags    tags
	expires time.Time // zero: never
	size    int64
}

// entryOverhead is what an entry costs besides its key's bytes and its
// value's estimate: the map's slot and hash, the key's header, the entry
// struct.
const entryOverhead = 112

// newCache returns a cache of at most maxBytes; size estimates a value's
// own bytes (nil: none beyond the entry).
func newCache[V any](maxBytes int64, size func(V) int, m *marks) *cache[V] {
	c := &cache[V]{maxBytes: maxBytes, size: size, seed: maphash.MakeSeed(), marks: m}
	for i := range c.shards {
		c.shards[i].entries = map[string]cacheEntry[V]{}
	}
	return c
}

func (c *cache[V]) shard(key string) *cacheShard[V] {
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// get returns the value cached under key if it is still valid at now under
// generation gen.
func (c *cache[V]) get(key string, gen uint64, now time.Time) (V, bool) {
	e, ok := c.entry(key, gen, now)
	return e.v, ok
}

// entry returns the entry cached under key if it is still valid at now
// under generation gen: of that generation, not expired, and resting on no
// subject revoked since it was read.
func (c *cache[V]) entry(key string, gen uint64, now time.Time) (cacheEntry[V], bool) {
	sh := c.shard(key)
	sh.mu.RLock()
	e, ok := sh.entries[key]
	sh.mu.RUnlock()
	if !ok || !c.live(e, gen, now) {
		return cacheEntry[V]{}, false
	}
	return e, true
}

// live reports whether e can still be used at now under generation gen.
func (c *cache[V]) live(e cacheEntry[V], gen uint64, now time.Time) bool {
	return e.gen == gen && (e.expires.IsZero() || now.Before(e.expires)) && (c.marks == nil || c.marks.clean(e.tags))
}

// put stores v under key for generation gen, resting on t, until expires
// (zero: no expiry). A shard over its share of the bound drops the entries
// of older generations first, then others in the map's (random) order,
// until the new entry fits; an entry larger than a whole shard's share is
// not kept.
func (c *cache[V]) put(key string, gen uint64, t tags, v V, expires time.Time) {
	n := int64(len(key) + entryOverhead)
	if c.size != nil {
		n += int64(c.size(v))
	}
	budget := c.maxBytes / int64(len(c.shards))
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.entries[key]; ok {
		delete(sh.entries, key)
		sh.bytes -= old.size
	}
	if n > budget {
		return
	}
	if sh.bytes+n > budget {
		for k, e := range sh.entries {
			if e.gen != gen {
				delete(sh.entries, k)
				sh.bytes -= e.size
			}
		}
		for k, e := range sh.entries {
			if sh.bytes+n <= budget {
				break
			}
			delete(sh.entries, k)
			sh.bytes -= e.size
		}
	}
	sh.entries[key] = cacheEntry[V]{v: v, gen: gen, tags: t, expires: expires, size: n}
	sh.bytes += n
	// Once a shard has had as many puts as its last sweep left entries, it
	// drops those that can never be used again (expired, revoked, or of an
	// older generation): memory follows what is live, not what passed
	// through, at a cost of about two entries visited per put.
	if sh.puts++; sh.puts >= max(sh.kept, minSweep) {
		now := time.Now()
		for k, e := range sh.entries {
			if !c.live(e, gen, now) {
				delete(sh.entries, k)
				sh.bytes -= e.size
			}
		}
		sh.puts, sh.kept = 0, len(sh.entries)
	}
}

// minSweep is the fewest puts between two sweeps of a shard.
const minSweep = 64

// drop removes key.
func (c *cache[V]) drop(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	if e, ok := sh.entries[key]; ok {
		delete(sh.entries, key)
		sh.bytes -= e.size
	}
	sh.mu.Unlock()
}

// usage returns the estimated bytes and the number of entries held.
func (c *cache[V]) usage() (bytes int64, entries int) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		bytes, entries = bytes+sh.bytes, entries+len(sh.entries)
		sh.mu.RUnlock()
	}
	return bytes, entries
}

// principalBytes estimates what a cached principal holds: its structs
// (principal, user, account and settings, the sealed part and the answer
// to /v1/me that Answer makes later) and every string and list it points
// to. Measured against the heap by TestCacheBytesUnderChurn.
func principalBytes(p *gatehouse.Principal) int {
	const fixed = 1600 // structs, slice headers, the answer's fixed part
	n := fixed + len(p.AccountID) + len(p.CredentialID) + len(p.CredentialName) + len(p.CredentialLine) + len(p.ClientID) + len(p.ActingAs) + scopesBytes(p.Scopes)
	if u := p.User; u != nil {
		// Strings of the user appear again in the answer.
		n += 2*(len(u.ID)+len(u.AccountID)+len(u.Email)+len(u.Name)) + len(u.PasswordHash) + 24*len(u.Roles)
	}
	if a := p.Account; a != nil {
		n += 2*(len(a.ID)+len(a.Name)) + 2*scopesBytes(a.Settings.CustomScopes)
	}
	// The sealed effective scopes and their text.
	return n + 2*scopesBytes(p.Scopes)
}

// scopesBytes estimates a list of scopes: each one's header and bytes.
func scopesBytes(s gatehouse.Scopes) int {
	n := 0
	for _, sc := range s {
		n += 16 + len(sc)
	}
	return n
}

// appBytes estimates a cached API access application.
func appBytes(a *gatehouse.APIApplication) int {
	return 256 + len(a.ID) + len(a.AccountID) + len(a.UserID) + len(a.ClientID) + len(a.CreatedBy) + scopesBytes(a.Scopes)
}
