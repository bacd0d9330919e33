package service

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// cachedPrincipal is a principal as a validation builds it: its own user
// and account, read from the store, sealed.
func cachedPrincipal(i int) *gatehouse.Principal {
	acc := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: fmt.Sprintf("Account %d", i), Status: gatehouse.AccountActive,
		Settings: gatehouse.DefaultSettings(), CreatedAt: time.Now()}
	u := &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: acc.ID, Email: fmt.Sprintf("user%d@example.com", i), Name: fmt.Sprintf("User %d", i),
		Status: gatehouse.StatusActive, Roles: gatehouse.Roles{gatehouse.RoleAdmin, gatehouse.RoleDeveloper}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	return (&gatehouse.Principal{Account: acc, AccountID: acc.ID, User: u, Method: gatehouse.MethodAPIAccess, CredentialID: gatehouse.NewID("tok"),
		ClientID: "gci_" + fmt.Sprintf("%049d", i), ExpiresAt: time.Now().Add(time.Hour), Scopes: gatehouse.Scopes{"users:read", "workspaces:read"}}).Seal()
}

// renderMe is an answer to /v1/me of the same shape as the API's.
func renderMe(p *gatehouse.Principal) []byte {
	b, _ := json.Marshal(map[string]any{"user": p.User, "account": p.Account, "roles": p.Roles(), "auth_method": p.Method,
		"client_id": p.ClientID, "scopes": p.EffectiveScopes(), "credential_expires_at": p.ExpiresAt})
	return b
}

// TestCacheBytesUnderChurn fills a principal cache bounded at 8 MiB with
// 30,000 principals, as validations and /v1/me answers would, across
// changing generations: its estimate never passes the bound, and the heap
// it holds afterwards is within the estimate's reach (the estimate is
// neither far too low nor far too high).
func TestCacheBytesUnderChurn(t *testing.T) {
	const budget = 8 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newCache(budget, principalBytes, nil)
	for i := range 30_000 {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		p := cachedPrincipal(i)
		c.put(hex.EncodeToString(sum[:]), uint64(i/20_000), tags{}, p, p.ExpiresAt)
		p.Answer(renderMe)
		if i%500 == 0 {
			if b, _ := c.usage(); b > budget {
				t.Fatalf("after %d puts the cache holds an estimated %d bytes, over %d", i, b, budget)
			}
		}
	}
	b, n := c.usage()
	if b > budget || n < 1000 {
		t.Fatalf("cache holds %d entries, %d bytes estimated (bound %d)", n, b, budget)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if held > budget*3/2 || held < budget/3 {
		t.Fatalf("the cache holds %d bytes of heap for an estimate of %d (bound %d): the estimate is off", held, b, budget)
	}
	t.Logf("%d entries, %d bytes estimated, %d bytes of heap (%.0f bytes an entry)", n, b, held, float64(held)/float64(n))
	runtime.KeepAlive(c)
}

// TestCacheDropsStaleFirst: a full shard drops the entries of older
// generations before current ones.
func TestCacheDropsStaleFirst(t *testing.T) {
	c := newCache[struct{}](64*(entryOverhead+8)*4, nil, nil) // four 8-byte keys a shard
	keys := []string{}
	for i := 0; len(keys) < 4; i++ {
		k := fmt.Sprintf("k%07d", i)
		if c.shard(k) == &c.shards[0] {
			keys = append(keys, k)
		}
	}
	c.put(keys[0], 1, tags{}, struct{}{}, time.Time{})
	c.put(keys[1], 2, tags{}, struct{}{}, time.Time{})
	c.put(keys[2], 2, tags{}, struct{}{}, time.Time{})
	c.put(keys[3], 2, tags{}, struct{}{}, time.Time{})
	for i := 0; ; i++ {
		k := fmt.Sprintf("n%07d", i)
		if c.shard(k) == &c.shards[0] {
			c.put(k, 2, tags{}, struct{}{}, time.Time{})
			break
		}
	}
	if _, ok := c.get(keys[0], 1, time.Now()); ok {
		t.Fatal("the stale entry was kept")
	}
	for _, k := range keys[1:] {
		if _, ok := c.get(k, 2, time.Now()); !ok {
			t.Fatalf("current entry %s was dropped while a stale one could go", k)
		}
	}
}

// TestCacheSweepsDeadEntries: a cache far from its bound does not keep
// entries that can never be used again. 200,000 puts of already expired
// entries and of an older generation's leave at most a couple of sweeps'
// worth in each shard, and live entries stay.
func TestCacheSweepsDeadEntries(t *testing.T) {
	c := newCache[struct{}](1<<30, nil, nil)
	live := make([]string, 100)
	for i := range live {
		live[i] = fmt.Sprintf("live%d", i)
		c.put(live[i], 2, tags{}, struct{}{}, time.Now().Add(time.Hour))
	}
	past := time.Now().Add(-time.Second)
	for i := range 200_000 {
		c.put(fmt.Sprintf("dead%d", i), 2, tags{}, struct{}{}, past)
	}
	if _, n := c.usage(); n > len(c.shards)*(2*minSweep)+len(live) {
		t.Fatalf("%d entries held after 200,000 expired ones passed through", n)
	}
	c.put("stale", 1, tags{}, struct{}{}, time.Time{})
	for i := range 200_000 {
		c.put(fmt.Sprintf("next%d", i), 3, tags{}, struct{}{}, past)
	}
	if _, ok := c.get("stale", 1, time.Now()); ok {
		t.Fatal("an entry of an older generation outlived many sweeps")
	}
	c.put("fresh", 3, tags{}, struct{}{}, time.Time{})
	if _, ok := c.get("fresh", 3, time.Now()); !ok {
		t.Fatal("a live entry was not kept")
	}
}
