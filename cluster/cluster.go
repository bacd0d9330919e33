// Package cluster keeps the shared state of a Gatehouse cluster in Redis:
// the doorbell — a value that every node sets to a fresh random one after
// a revoking change has committed (the others then read what changed from
// the store's revocation log), paired with an epoch, a random id written
// whenever the hash has to be created, so that whatever Redis loses (a
// restart without persistence, FLUSHDB) shows as a new state — and, beside
// it, the rate-limit budgets, so that one script per request both charges
// the request and reads the doorbell (Admit). Random values, not a
// counter: a Redis that goes back in time (a failover to a lagging
// replica) and is rung again never repeats a state a node has seen.
//
// The doorbell is kept in Shards copies (shards), each a Redis hash
// {epoch, n} under its own hash tag, and every Announce rings all of them;
// an account's budgets carry its shard's tag, so that they share a Redis
// Cluster slot with that shard and no key is read by every request.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// stateLua defines state(key, rings, epoch, ring): it returns the shard's
// epoch and value, creating the hash in a new epoch (the given one) when
// it is missing, after ringing it with the value ring, touching every
// subject, when this node still owes the shard a ring (ring is "" when it
// does not). ringLua defines ringAt(key, rings, value, slots), which
// rings: the shard's value becomes value and its list of recent rings
// gains "value previous-value slots" (see gatehouse.SubjectSlots),
// keeping the newest 256.
const ringLua = `
local function ringAt(key, rings, value, slots)
  local prev = redis.call('HGET', key, 'n') or '0'
  redis.call('HSET', key, 'n', value)
  redis.call('RPUSH', rings, value .. ' ' .. prev .. ' ' .. slots)
  redis.call('LTRIM', rings, -256, -1)
end
`

const stateLua = ringLua + `
local function state(key, rings, epoch, ring)
  local v = redis.call('HMGET', key, 'epoch', 'n')
  local e, n = v[1], v[2]
  if not e then
    redis.call('HSET', key, 'epoch', epoch, 'n', 0)
    e, n = epoch, '0'
  end
  if ring ~= '' then
    ringAt(key, rings, ring, '*')
    n = ring
  end
  return e, tostring(n)
end
`

// A shard lists its 256 most recent rings (ringLua): a request validated
// under a state more rings ago is looked up again.

var (
	// stateScript answers {epoch, n} of the shard KEYS[1] (its rings
	// KEYS[2]; ARGV: new epoch, owed ring or "").
	stateScript = rueidis.NewLuaScript(stateLua + `
local e, n = state(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return {e, n}
`)
	// announceScript rings the shard KEYS[1] (its rings KEYS[2]): its
	// value becomes ARGV[2], in a new epoch (ARGV[1]) when it is missing,
	// touching the slots ARGV[3].
	announceScript = rueidis.NewLuaScript(ringLua + `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
ringAt(KEYS[1], KEYS[2], ARGV[2], ARGV[3])
return 1
`)
	// announceAllScript is announceScript for every shard at once, on a
	// Redis that is not a cluster (all keys on one server): KEYS are the
	// shards' pairs (doorbell, rings) in order; ARGV[1] the value,
	// ARGV[2] the slots, ARGV[2+k] shard k's new epoch.
	announceAllScript = rueidis.NewLuaScript(ringLua + `
for i = 1, #KEYS, 2 do
  redis.call('HSETNX', KEYS[i], 'epoch', ARGV[2 + (i + 1) / 2])
  ringAt(KEYS[i], KEYS[i + 1], ARGV[1], ARGV[2])
end
return 1
`)
	// admitScript reads the shard KEYS[1] (its rings KEYS[2]; ARGV[1..2]
	// as stateScript) and decides a batch of requests over KEYS[3..] with
	// ARGV[3..] (see ratelimit.RedisLua): a request whose two fields are
	// empty always; one whose fields are an epoch and "value|slots" when
	// the shard is in that epoch and either has that value or was rung
	// since, every ring since is listed, and none touched any of the slots
	// (a request resting on what no revocation since touched is as valid
	// as it was). It answers {epoch, n, decisions…}.
	admitScript = rueidis.NewLuaScript(ratelimit.RedisLua + stateLua + `
local e, n = state(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
-- back[k] is the k-th newest ring listed; the list is read from its
-- newest end in chunks that double, as far back as a request needs (a
-- node behind by a few rings reads a few, not the whole list).
local back, listed, ended = {}, 0, false
local function ring(k)
  while k > listed and not ended do
    local take = math.max(listed, 8)
    local got = redis.call('LRANGE', KEYS[2], -(listed + take), -(listed + 1))
    for j = #got, 1, -1 do
      back[#back + 1] = got[j]
    end
    if #got < take then
      ended = true
    end
    listed = listed + take
  end
  return back[k]
end
-- The listed rings are parsed once per batch, newest first, as far back
-- as a request needs, while they chain from the shard's value now (each
-- entry is "value previous-value slots"; a ring that was not listed — a
-- node of the previous release adds 1 to the value — or one that touched
-- everything ends the chain): at[v] is the first k whose previous value is
-- v, first[slot] the first k that touched slot.
local parsed, chained, newest, at, first = 0, true, n, {}, {}
local function parseNext()
  if not chained then
    return false
  end
  local value, prev, touched = string.match(ring(parsed + 1) or '', '^(%S+) (%S+) (%S+)$')
  if value == nil or value ~= newest or touched == '*' then
    chained = false
    return false
  end
  parsed, newest = parsed + 1, prev
  for slot in string.gmatch(touched, '%d+') do
    if first[slot] == nil then
      first[slot] = parsed
    end
  end
  if at[prev] == nil then
    at[prev] = parsed
  end
  return true
end
-- untouched reports whether the shard went from value since to its value
-- now through listed rings alone, none of which touched the slots.
local function untouched(since, slots)
  if slots == '' then
    return false
  end
  while at[since] == nil do
    if not parseNext() then
      return false
    end
  end
  local k = at[since]
  for slot in string.gmatch(slots, '%d+') do
    local f = first[slot]
    if f ~= nil and f <= k then
      return false
    end
  end
  return true
end
local out = decide(KEYS, 2, ARGV, 2, function(epoch, want)
  if epoch == '' then
    return true
  end
  if epoch ~= e then
    return false
  end
  local bar = string.find(want, '|', 1, true)
  local count, slots = want, ''
  if bar then
    count, slots = string.sub(want, 1, bar - 1), string.sub(want, bar + 1)
  end
  return count == n or untouched(count, slots)
end)
table.insert(out, 1, n)
table.insert(out, 1, e)
return out
`)
)

// maxBatch is the most requests one admission script decides.
const maxBatch = 128

// batchTimeout bounds one admission script's round trip. A batch is not
// cancelled with the request that happens to send it, since it carries
// other requests too.
const batchTimeout = 5 * time.Second

// Redis is the shared state of a cluster. It implements the service's
// Cluster interface (asserted where it is wired, in server) and is safe
// for concurrent use.
type Redis struct {
	client  rueidis.Client
	prefix  string
	limiter *ratelimit.Redis
	// owed holds, per shard, the rings that failed after their change
	// committed; the next successful read of the shard makes one.
	owed [Shards]owed
	// queues hold, per shard, the admissions waiting for the script in
	// flight (see Admit).
	queues [Shards]queue
	// counts, when set, seeds the quota budgets Redis does not hold
	// (SeedQuotasFrom).
	counts QuotaCounts
	// links, when set, counts the client's connections (FollowLinks).
	links *Links
}

// QuotaCounts reads how many requests the cluster counted against a quota
// budget in its period, as its store holds them (the service: what every
// node wrote there, and what this node has not written yet).
type QuotaCounts interface {
	QuotaUsed(ctx context.Context, accountID, key string) (int, error)
}

// SeedQuotasFrom makes a quota budget that Redis does not hold — Redis
// lost its data, or the budget's period is new — count on from what c
// says the cluster counted, not from nothing: the first request to find
// it so reads c and sends its admission again with that count, which
// Redis takes only if the budget is still not held (another node may have
// seeded it meanwhile). So a Redis that loses its data refills a quota by
// at most what the nodes had not yet written to the store. It is set
// before the node serves.
func (r *Redis) SeedQuotasFrom(c QuotaCounts) { r.counts = c }

// owed counts one shard's failed rings (failed) and how many of them the
// rings since made cover (made): the shard is owed a ring while failed is
// ahead. A read that starts with failed at f rings when it is ahead and,
// once its script has run, raises made to f: its ring came after every
// change those failures were for, and a failure counted after it started
// is still owed. Concurrent reads may each ring; none settles a failure
// it did not see.
type owed struct{ failed, made atomic.Int64 }

// due returns the failure count a read of the shard is to settle, or 0
// when the shard is owed nothing.
func (o *owed) due() int64 {
	if f := o.failed.Load(); f > o.made.Load() {
		return f
	}
	return 0
}

// fail records a ring that could not be made.
func (o *owed) fail() { o.failed.Add(1) }

// settle records that a read which started owing f made its ring.
func (o *owed) settle(f int64) {
	for {
		m := o.made.Load()
		if f <= m || o.made.CompareAndSwap(m, f) {
			return
		}
	}
}

// inFlight is the most admission scripts of one shard a node has in Redis
// at once. Redis runs a node's scripts in the order it sends them, each
// atomic, so any number decide exactly what they would one after the
// other; one lets the most requests gather into each. Two were measured
// against one (docs/performance.md): no gain beyond the noise, and
// higher p99s.
const inFlight = 1

// queue is one shard's admissions: while inFlight batches of them are in
// Redis, the next gathers; it is sent, whole, by its first admission when
// a batch returns.
type queue struct {
	mu      sync.Mutex
	busy    int // batches in flight, or about to be sent
	waiting []*admission
}

// admission is one request waiting in a queue, and then its answer.
type admission struct {
	expect  *gatehouse.ClusterState
	rests   string
	account string
	keys    []string
	limits  ratelimit.Limits

	seeds map[string]int // quota budget key -> its seed, when resent

	d        ratelimit.Decision
	st       gatehouse.ClusterState
	ok       bool
	unseeded bool
	err      error

	// done is signalled when the answer is in, or when the admission is
	// to send the next batch (lead).
	done  chan struct{}
	lead  bool
	batch []*admission // what a lead is to send
}

// NewRedis returns the shared state on client with every key under prefix
// (which may be empty, and must not contain "{"):
//
//	<prefix>gatehouse:generation:{<tag>}   shard of the doorbell (hash: epoch, n)
//	<prefix>rl:{<tag>}<account>:burst:<key>    burst log of a budget (ratelimit.Redis)
//	<prefix>rl:{<tag>}<account>:daily:<key>    daily buckets of a budget
//
// where tag is the shard's hash tag (Tag; an account's budgets use its
// shard's). The limiter options (a clock, in tests) apply to Admit. It
// does not contact Redis.
func NewRedis(client rueidis.Client, prefix string, opts ...ratelimit.RedisOption) *Redis {
	opts = append([]ratelimit.RedisOption{ratelimit.WithKeyPrefix(prefix + "rl:"),
		ratelimit.WithHashTag(func(account string) string { return tags[Shard(account)] })}, opts...)
	return &Redis{client: client, prefix: prefix, limiter: ratelimit.NewRedis(client, opts...)}
}

// key returns the Redis key of shard i of the doorbell.
func (r *Redis) key(i int) string { return r.prefix + "gatehouse:generation:{" + tags[i] + "}" }

// rings returns the Redis key of shard i's list of recent rings.
func (r *Redis) rings(i int) string { return r.prefix + "gatehouse:rings:{" + tags[i] + "}" }

// keys returns shard i's two keys.
func (r *Redis) keys(i int) []string { return []string{r.key(i), r.rings(i)} }

// newEpoch returns a fresh random epoch id.
func newEpoch() string { return rand.Text() }

// newRing returns a fresh random doorbell value: a decimal below 2^62, so
// that a node of the previous release, which adds 1 to it, still can.
func newRing() string {
	var b [8]byte
	rand.Read(b[:])
	return strconv.FormatUint(binary.LittleEndian.Uint64(b[:])>>2|1, 10)
}

// ringArg is the ring argument of the state script: a fresh value when
// this node owes the shard rings (due > 0), "" otherwise.
func ringArg(due int64) string {
	if due > 0 {
		return newRing()
	}
	return ""
}

// Shards returns the number of shards.
func (r *Redis) Shards() int { return Shards }

// Shard returns the shard of an account.
func (r *Redis) Shard(account string) int { return Shard(account) }

// State reads shard i of the shared generation (one round trip), settling
// any announcement this node still owes it.
func (r *Redis) State(ctx context.Context, i int) (gatehouse.ClusterState, error) {
	due := r.owed[i].due()
	res, err := stateScript.Exec(ctx, r.client, r.keys(i), []string{newEpoch(), ringArg(due)}).AsStrSlice()
	if err != nil {
		return gatehouse.ClusterState{}, fmt.Errorf("cluster: read generation: %w", err)
	}
	if len(res) != 2 {
		return gatehouse.ClusterState{}, fmt.Errorf("cluster: unexpected answer %q", res)
	}
	r.owed[i].settle(due)
	return parseState(res[0], res[1], r.links.Count())
}

// parseState returns the state of a script's answer, labelled with the
// count of connections opened when the answer came (Links): a node
// publishes a state only after a read of the revocation log that begins
// later, so the label never claims more than that read covers.
func parseState(epoch, n string, link uint64) (gatehouse.ClusterState, error) {
	v, err := strconv.ParseUint(n, 10, 64)
	if err != nil || epoch == "" {
		return gatehouse.ClusterState{}, fmt.Errorf("cluster: bad state %q %q", epoch, n)
	}
	return gatehouse.ClusterState{Epoch: epoch, N: v, Link: link}, nil
}

// Settle reads every shard, making every announcement this node still
// owes (the readiness check): one pipelined round trip.
func (r *Redis) Settle(ctx context.Context) error {
	var due [Shards]int64
	calls := make([]rueidis.LuaExec, Shards)
	for i := range calls {
		due[i] = r.owed[i].due()
		calls[i] = rueidis.LuaExec{Keys: r.keys(i), Args: []string{newEpoch(), ringArg(due[i])}}
	}
	var first error
	for i, res := range stateScript.ExecMulti(ctx, r.client, calls...) {
		if err := res.Error(); err != nil {
			if first == nil {
				first = fmt.Errorf("cluster: read generation: %w", err)
			}
			continue
		}
		r.owed[i].settle(due[i])
	}
	return first
}

// Announce rings every shard of the doorbell for a revocation that
// touched subjects, in one round trip: one script on a single Redis, one
// per shard, pipelined, on a Redis Cluster. When a shard cannot be
// rung, the node owes it a ring and makes it, touching every subject,
// with its next successful read of that shard.
func (r *Redis) Announce(ctx context.Context, subjects []string) error {
	slots := gatehouse.SubjectSlots(subjects...)
	if len(subjects) == 0 {
		slots = gatehouse.SubjectAll
	}
	value := newRing()
	if r.client.Mode() != rueidis.ClientModeCluster {
		// One server holds every shard: one script rings them all.
		keys, args := make([]string, 0, 2*Shards), make([]string, 2, 2+Shards)
		args[0], args[1] = value, slots
		for i := range Shards {
			keys = append(keys, r.keys(i)...)
			args = append(args, newEpoch())
		}
		if err := announceAllScript.Exec(ctx, r.client, keys, args).Error(); err != nil {
			for i := range r.owed {
				r.owed[i].fail()
			}
			return fmt.Errorf("cluster: announce: %w", err)
		}
		return nil
	}
	calls := make([]rueidis.LuaExec, Shards)
	for i := range calls {
		calls[i] = rueidis.LuaExec{Keys: r.keys(i), Args: []string{newEpoch(), value, slots}}
	}
	var first error
	for i, res := range announceScript.ExecMulti(ctx, r.client, calls...) {
		if err := res.Error(); err != nil {
			r.owed[i].fail()
			if first == nil {
				first = fmt.Errorf("cluster: announce: %w", err)
			}
		}
	}
	return first
}

// Admit charges one request of account to its budgets keys under l and
// reads the state of the account's shard, in one script. With expect
// nil the request is always decided; otherwise only when the shard is in
// state *expect, or was rung since only for revocations that touched none
// of the subject slots rests (gatehouse.SubjectSlots; "" for none known)
// — otherwise ok is false and nothing is counted. The shard's state is
// returned either way.
//
// Concurrent requests of one shard share a script: while inFlight batches
// are in Redis the next one gathers, and is sent, whole, when one returns,
// so that a busy node sends a few scripts per round trip and shard rather
// than one per request. The script decides a batch's requests one after
// the other, each exactly as it would have alone.
func (r *Redis) Admit(ctx context.Context, expect *gatehouse.ClusterState, rests, account string, keys []string, l ratelimit.Limits) (d ratelimit.Decision, st gatehouse.ClusterState, ok bool, err error) {
	if account == "" || len(keys) == 0 {
		return d, st, false, ratelimit.ErrNoKeys
	}
	d, st, ok, unseeded, err := r.admitOne(ctx, expect, rests, account, keys, l, nil)
	if !unseeded || err != nil {
		return d, st, ok, err
	}
	// A quota budget of the request was not held: once more, with what
	// the store counted for each of its quota budgets.
	seeds := map[string]int{}
	for j := 0; l.Own != nil && j < len(*l.Own); j++ {
		b := (*l.Own)[j]
		if b.Quota == nil {
			continue
		}
		if seeds[b.Key], err = r.counts.QuotaUsed(ctx, account, b.Key); err != nil {
			return d, st, false, fmt.Errorf("cluster: quota count: %w", err)
		}
	}
	d, st, ok, unseeded, err = r.admitOne(ctx, expect, rests, account, keys, l, seeds)
	if unseeded && err == nil {
		err = errors.New("cluster: a quota budget was not seeded")
	}
	return d, st, ok, err
}

// admitOne is Admit's one admission, with its quota budgets' seeds when
// resent; unseeded reports that it was not decided for want of them.
func (r *Redis) admitOne(ctx context.Context, expect *gatehouse.ClusterState, rests, account string, keys []string, l ratelimit.Limits, seeds map[string]int) (d ratelimit.Decision, st gatehouse.ClusterState, ok, unseeded bool, err error) {
	i := Shard(account)
	a := admissions.Get().(*admission)
	a.expect, a.rests, a.account, a.keys, a.limits, a.seeds = expect, rests, account, keys, l, seeds
	defer a.release()
	q := &r.queues[i]
	q.mu.Lock()
	q.waiting = append(q.waiting, a)
	var batch []*admission
	if q.busy >= inFlight {
		q.mu.Unlock()
		<-a.done
		if !a.lead {
			return a.d, a.st, a.ok, a.unseeded, a.err
		}
		batch = a.batch
	} else {
		q.busy++
		batch = q.take()
		q.mu.Unlock()
	}

	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	r.admit(bctx, i, batch)
	cancel()

	// Hand the slot on to the first waiting, with what it is to send.
	q.mu.Lock()
	var next *admission
	if len(q.waiting) > 0 {
		next = q.waiting[0]
		next.lead, next.batch = true, q.take()
	} else {
		q.busy--
	}
	q.mu.Unlock()
	for _, b := range batch[1:] {
		b.done <- struct{}{}
	}
	if next != nil {
		next.done <- struct{}{}
	}
	return a.d, a.st, a.ok, a.unseeded, a.err
}

// take removes the next batch from the waiting admissions; q.mu is held.
func (q *queue) take() []*admission {
	n := min(len(q.waiting), maxBatch)
	batch := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	return batch
}

// admissions recycles admissions and their channels: a busy node makes
// one per request.
var admissions = sync.Pool{New: func() any { return &admission{done: make(chan struct{}, 1)} }}

// release returns a, answered, to the pool: it is called by the request
// that made it, once it has read its answer, when no batch refers to it
// any longer (its sender signals done last).
func (a *admission) release() {
	*a = admission{done: a.done}
	admissions.Put(a)
}

// admit sends one batch of shard i's admissions and gives each its answer.
func (r *Redis) admit(ctx context.Context, i int, batch []*admission) {
	fail := func(err error) {
		for _, a := range batch {
			a.err = err
		}
	}
	link := r.links.Count()
	due := r.owed[i].due()
	b := r.limiter.NewBatch(r.keys(i), []string{newEpoch(), ringArg(due)})
	if r.counts != nil {
		b.SeedQuotas()
	}
	// The requests of a batch mostly expect one state: its counter is
	// written out once.
	var lastN uint64
	lastNText := "0"
	for _, a := range batch {
		want, wantN := "", ""
		if a.expect != nil {
			if a.expect.N != lastN {
				lastN, lastNText = a.expect.N, strconv.FormatUint(a.expect.N, 10)
			}
			// The zero state is never a shard's: "-" never equals an epoch.
			// Nor is a state read on older connections than this script
			// goes on: the server may be another, its state older.
			want, wantN = a.expect.Epoch, lastNText
			if want == "" || a.expect.Link != link {
				want = "-"
			}
			if a.rests != "" && a.rests != gatehouse.SubjectAll {
				wantN += "|" + a.rests
			}
		}
		if err := r.limiter.Add(b, a.account, a.keys, a.limits, want, wantN); err != nil {
			fail(err)
			return
		}
		for k, n := range a.seeds {
			b.Seed(a.account, k, n)
		}
	}
	res, err := admitScript.Exec(ctx, r.client, b.Keys, b.Args()).ToArray()
	if err != nil {
		fail(fmt.Errorf("cluster: admit: %w", err))
		return
	}
	r.owed[i].settle(due)
	if len(res) < 2 {
		fail(fmt.Errorf("cluster: unexpected answer of %d values", len(res)))
		return
	}
	e, err1 := res[0].ToString()
	n, err2 := res[1].ToString()
	if err1 != nil || err2 != nil {
		fail(fmt.Errorf("cluster: unexpected answer: %v %v", err1, err2))
		return
	}
	now := r.links.Count()
	st, err := parseState(e, n, now)
	if err != nil {
		fail(err)
		return
	}
	// A connection opened while the script was out may be the one it went
	// on: what it confirmed is not confirmed (what it counted stays
	// counted — never more than a limit, one less in a failover's moment).
	moved := now != link
	nums := make([]int64, len(res)-2)
	for j, v := range res[2:] {
		if nums[j], err = v.AsInt64(); err != nil {
			fail(fmt.Errorf("cluster: unexpected answer: %w", err))
			return
		}
	}
	ds, err := b.Read(nums)
	if err != nil {
		fail(err)
		return
	}
	for j, a := range batch {
		a.st, a.d, a.ok, a.unseeded = st, ds[j].Decision, ds[j].Decided && !(moved && a.expect != nil), ds[j].Unseeded
	}
}
