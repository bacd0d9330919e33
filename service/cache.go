package service

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// principalCache remembers validated credentials by digest so that the hot
// path does not touch the store. An entry is used only while the store's
// generation is the one read before the entry was looked up in the store,
// so any revoking change (on this node, or reported by another) drops every
// entry at once; expiry is checked on every hit. It is safe for concurrent
// use and holds at most max entries.
type principalCache struct {
	shards [64]cacheShard
	max    int
	seed   maphash.Seed
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	p   *gatehouse.Principal
	gen uint64
}

func newPrincipalCache(max int) *principalCache {
	c := &principalCache{max: max, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].entries = map[string]cacheEntry{}
	}
	return c
}

func (c *principalCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// get returns the cached principal for key if it is still valid at now
// under generation gen.
func (c *principalCache) get(key string, gen uint64, now time.Time) (*gatehouse.Principal, bool) {
	sh := c.shard(key)
	sh.mu.RLock()
	e, ok := sh.entries[key]
	sh.mu.RUnlock()
	if !ok || e.gen != gen || (!e.p.ExpiresAt.IsZero() && !now.Before(e.p.ExpiresAt)) {
		return nil, false
	}
	return e.p, true
}

// put stores p under key for generation gen.
func (c *principalCache) put(key string, gen uint64, p *gatehouse.Principal) {
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
	sh.entries[key] = cacheEntry{p: p, gen: gen}
}
