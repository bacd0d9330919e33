package service

import (
	"hash/maphash"
	"sync"
	"time"
)

// cache is the one bounded in-memory cache of the service: validated
// credentials, API access applications, last-use marks. An entry is used
// only while the cache generation is the one read before the entry's value
// was read from the store, so any revoking change (on this node, or
// announced by another) drops every entry at once; an entry with an expiry
// is dropped when it passes. It holds at most max entries and is safe for
// concurrent use.
type cache[V any] struct {
	shards [64]cacheShard[V]
	max    int
	seed   maphash.Seed
}

type cacheShard[V any] struct {
	mu      sync.RWMutex
	entries map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	gen     uint64
	expires time.Time // zero: never
}

func newCache[V any](max int) *cache[V] {
	c := &cache[V]{max: max, seed: maphash.MakeSeed()}
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
	sh := c.shard(key)
	sh.mu.RLock()
	e, ok := sh.entries[key]
	sh.mu.RUnlock()
	if !ok || e.gen != gen || (!e.expires.IsZero() && !now.Before(e.expires)) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put stores v under key for generation gen until expires (zero: no
// expiry).
func (c *cache[V]) put(key string, gen uint64, v V, expires time.Time) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.entries) >= c.max/len(c.shards) {
		// Full: drop stale entries, or everything if none is stale.
		for k, e := range sh.entries {
			if e.gen != gen {
				delete(sh.entries, k)
			}
		}
		if len(sh.entries) >= c.max/len(c.shards) {
			clear(sh.entries)
		}
	}
	sh.entries[key] = cacheEntry[V]{v: v, gen: gen, expires: expires}
}

// drop removes key.
func (c *cache[V]) drop(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	delete(sh.entries, key)
	sh.mu.Unlock()
}
