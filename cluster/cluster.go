// Package cluster keeps the shared state of a Gatehouse cluster in Redis:
// the cache generation — a counter that every node advances after a
// revoking change, paired with an epoch, a random id written whenever the
// counter has to be created, so that whatever Redis loses (a restart
// without persistence, a failover to a lagging replica, FLUSHDB) shows as a
// new state that no node has seen, never as an old one — and, beside it,
// the rate-limit budgets, so that one script per request both charges the
// request and reads the generation (Admit).
//
// The generation is kept in Shards copies (shards), each a Redis hash
// {epoch, n} under its own hash tag, and every Announce advances all of
// them; an account's budgets carry its shard's tag, so that they share a
// Redis Cluster slot with that shard and no key is read by every request.
package cluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// stateLua defines state(key, epoch, owed): it returns the shard's epoch
// and counter, creating the hash in a new epoch (the given one) when it is
// missing, after adding what this node still owes it.
const stateLua = `
local function state(key, epoch, owed)
  local v = redis.call('HMGET', key, 'epoch', 'n')
  local e, n = v[1], v[2]
  if not e then
    redis.call('HSET', key, 'epoch', epoch, 'n', 0)
    e, n = epoch, '0'
  end
  if tonumber(owed) > 0 then
    n = redis.call('HINCRBY', key, 'n', owed)
  end
  return e, tostring(n)
end
`

var (
	// stateScript answers {epoch, n} of the shard KEYS[1] (ARGV: new
	// epoch, owed).
	stateScript = rueidis.NewLuaScript(stateLua + `
local e, n = state(KEYS[1], ARGV[1], ARGV[2])
return {e, n}
`)
	// announceScript advances the shard KEYS[1], in a new epoch (ARGV[1])
	// when it is missing.
	announceScript = rueidis.NewLuaScript(`
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'n', 1)
  return 1
end
return redis.call('HINCRBY', KEYS[1], 'n', 1)
`)
	// admitScript reads the shard KEYS[1] (ARGV[1..2] as stateScript) and
	// decides a batch of requests over KEYS[2..] with ARGV[3..] (see
	// ratelimit.RedisLua): a request whose two fields are empty always,
	// one whose fields are an epoch and a counter only when the shard is
	// in that state. It answers {epoch, n, decisions…}.
	admitScript = rueidis.NewLuaScript(ratelimit.RedisLua + stateLua + `
local e, n = state(KEYS[1], ARGV[1], ARGV[2])
local out = decide(KEYS, 1, ARGV, 2, function(epoch, count)
  return epoch == '' or (epoch == e and count == n)
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
	// owed counts, per shard, announcements that failed after their
	// change committed; the next successful read of the shard makes them.
	owed [Shards]atomic.Int64
	// queues hold, per shard, the admissions waiting for the script in
	// flight (see Admit).
	queues [Shards]queue
}

// queue is one shard's admissions: while one batch of them is in Redis,
// the next gathers; the first of it sends it when the batch before
// returns.
type queue struct {
	mu      sync.Mutex
	busy    bool // a batch is in flight, or about to be sent
	waiting []*admission
}

// admission is one request waiting in a queue, and then its answer.
type admission struct {
	expect  *gatehouse.ClusterState
	account string
	keys    []string
	limits  ratelimit.Limits

	d   ratelimit.Decision
	st  gatehouse.ClusterState
	ok  bool
	err error

	// done is signalled when the answer is in, or when the admission is
	// to send the next batch (lead).
	done chan struct{}
	lead bool
}

// NewRedis returns the shared state on client with every key under prefix
// (which may be empty, and must not contain "{"):
//
//	<prefix>gatehouse:generation:{<tag>}   shard of the generation (hash: epoch, n)
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

// key returns the Redis key of shard i of the generation.
func (r *Redis) key(i int) string { return r.prefix + "gatehouse:generation:{" + tags[i] + "}" }

// newEpoch returns a fresh random epoch id.
func newEpoch() string { return rand.Text() }

// Shards returns the number of shards.
func (r *Redis) Shards() int { return Shards }

// Shard returns the shard of an account.
func (r *Redis) Shard(account string) int { return Shard(account) }

// State reads shard i of the shared generation (one round trip), settling
// any announcement this node still owes it.
func (r *Redis) State(ctx context.Context, i int) (gatehouse.ClusterState, error) {
	owed := r.owed[i].Load()
	res, err := stateScript.Exec(ctx, r.client, []string{r.key(i)}, []string{newEpoch(), strconv.FormatInt(owed, 10)}).AsStrSlice()
	if err != nil {
		return gatehouse.ClusterState{}, fmt.Errorf("cluster: read generation: %w", err)
	}
	if len(res) != 2 {
		return gatehouse.ClusterState{}, fmt.Errorf("cluster: unexpected answer %q", res)
	}
	r.settled(i, owed)
	return parseState(res[0], res[1])
}

// settled records that owed announcements of shard i were made.
func (r *Redis) settled(i int, owed int64) {
	if owed > 0 {
		r.owed[i].Add(-owed)
	}
}

func parseState(epoch, n string) (gatehouse.ClusterState, error) {
	v, err := strconv.ParseUint(n, 10, 64)
	if err != nil || epoch == "" {
		return gatehouse.ClusterState{}, fmt.Errorf("cluster: bad state %q %q", epoch, n)
	}
	return gatehouse.ClusterState{Epoch: epoch, N: v}, nil
}

// Settle reads every shard, making every announcement this node still
// owes (the readiness check): one pipelined round trip.
func (r *Redis) Settle(ctx context.Context) error {
	var owed [Shards]int64
	calls := make([]rueidis.LuaExec, Shards)
	for i := range calls {
		owed[i] = r.owed[i].Load()
		calls[i] = rueidis.LuaExec{Keys: []string{r.key(i)}, Args: []string{newEpoch(), strconv.FormatInt(owed[i], 10)}}
	}
	var first error
	for i, res := range stateScript.ExecMulti(ctx, r.client, calls...) {
		if err := res.Error(); err != nil {
			if first == nil {
				first = fmt.Errorf("cluster: read generation: %w", err)
			}
			continue
		}
		r.settled(i, owed[i])
	}
	return first
}

// Announce advances every shard of the shared generation, in one
// pipelined round trip. When a shard cannot be advanced, the node owes it
// the announcement and makes it with its next successful read of that
// shard.
func (r *Redis) Announce(ctx context.Context) error {
	calls := make([]rueidis.LuaExec, Shards)
	for i := range calls {
		calls[i] = rueidis.LuaExec{Keys: []string{r.key(i)}, Args: []string{newEpoch()}}
	}
	var first error
	for i, res := range announceScript.ExecMulti(ctx, r.client, calls...) {
		if err := res.Error(); err != nil {
			r.owed[i].Add(1)
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
// state *expect — when it is not, ok is false and nothing is counted. The
// shard's state is returned either way.
//
// Concurrent requests of one shard share a script: while a batch is in
// Redis the next one gathers, and is sent, whole, when it returns, so that
// a busy node sends one script per round trip and shard rather than one
// per request. The script decides a batch's requests one after the other,
// each exactly as it would have alone.
func (r *Redis) Admit(ctx context.Context, expect *gatehouse.ClusterState, account string, keys []string, l ratelimit.Limits) (d ratelimit.Decision, st gatehouse.ClusterState, ok bool, err error) {
	if account == "" || len(keys) == 0 {
		return d, st, false, ratelimit.ErrNoKeys
	}
	i := Shard(account)
	a := admissions.Get().(*admission)
	a.expect, a.account, a.keys, a.limits = expect, account, keys, l
	defer a.release()
	q := &r.queues[i]
	q.mu.Lock()
	q.waiting = append(q.waiting, a)
	if q.busy {
		q.mu.Unlock()
		<-a.done
		if !a.lead {
			return a.d, a.st, a.ok, a.err
		}
		q.mu.Lock()
	}
	// a is the first waiting: send it and those after it.
	q.busy = true
	n := min(len(q.waiting), maxBatch)
	batch := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	q.mu.Unlock()

	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	r.admit(bctx, i, batch)
	cancel()

	q.mu.Lock()
	var next *admission
	if len(q.waiting) > 0 {
		next = q.waiting[0]
		next.lead = true
	} else {
		q.busy = false
		q.waiting = nil
	}
	q.mu.Unlock()
	for _, b := range batch[1:] {
		b.done <- struct{}{}
	}
	if next != nil {
		next.done <- struct{}{}
	}
	return a.d, a.st, a.ok, a.err
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
	owed := r.owed[i].Load()
	b := r.limiter.NewBatch([]string{r.key(i)}, []string{newEpoch(), strconv.FormatInt(owed, 10)})
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
			want, wantN = a.expect.Epoch, lastNText
			if want == "" {
				want = "-"
			}
		}
		if err := r.limiter.Add(b, a.account, a.keys, a.limits, want, wantN); err != nil {
			fail(err)
			return
		}
	}
	res, err := admitScript.Exec(ctx, r.client, b.Keys, b.Args()).ToArray()
	if err != nil {
		fail(fmt.Errorf("cluster: admit: %w", err))
		return
	}
	r.settled(i, owed)
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
	st, err := parseState(e, n)
	if err != nil {
		fail(err)
		return
	}
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
		a.st, a.d, a.ok = st, ds[j].Decision, ds[j].Decided
	}
}
