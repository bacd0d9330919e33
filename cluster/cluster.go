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
	"sync/atomic"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/service"
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
	// admitScript reads the shard KEYS[1] (ARGV[1..2] as stateScript) and,
	// when ARGV[3] is empty or the shard is in state {ARGV[3], ARGV[4]},
	// runs the rate limiter over KEYS[2..] with ARGV[5..]. It answers
	// {epoch, n} alone when it did not, or {epoch, n, decision…}.
	admitScript = rueidis.NewLuaScript(ratelimit.RedisLua + stateLua + `
local e, n = state(KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' and (ARGV[3] ~= e or ARGV[4] ~= n) then
  return {e, n}
end
local out = ratelimit(KEYS, 1, ARGV, 4)
table.insert(out, 1, n)
table.insert(out, 1, e)
return out
`)
)

// Redis is the shared state of a cluster. It implements service.Cluster
// and is safe for concurrent use.
type Redis struct {
	client  rueidis.Client
	prefix  string
	limiter *ratelimit.Redis
	// owed counts, per shard, announcements that failed after their
	// change committed; the next successful read of the shard makes them.
	owed [Shards]atomic.Int64
}

var _ service.Cluster = (*Redis)(nil)

// NewRedis returns the shared state on client with every key under prefix
// (which may be empty, and must not contain "{"):
//
//	<prefix>gatehouse:generation:{<tag>}   shard of the generation (hash: epoch, n)
//	<prefix>rl:{<tag>}<account>:b:<key>    burst log of a budget (ratelimit.Redis)
//	<prefix>rl:{<tag>}<account>:d:<key>    daily buckets of a budget
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
func (r *Redis) Admit(ctx context.Context, expect *gatehouse.ClusterState, account string, keys []string, l ratelimit.Limits) (d ratelimit.Decision, st gatehouse.ClusterState, ok bool, err error) {
	call, err := r.limiter.Prepare(account, keys, l)
	if err != nil {
		return d, st, false, err
	}
	i := Shard(account)
	owed := r.owed[i].Load()
	want, wantN := "", ""
	if expect != nil {
		// The zero state is never a shard's: "-" never equals an epoch.
		want, wantN = expect.Epoch, strconv.FormatUint(expect.N, 10)
		if want == "" {
			want = "-"
		}
	}
	args := make([]string, 0, 4+len(call.Args))
	args = append(args, newEpoch(), strconv.FormatInt(owed, 10), want, wantN)
	args = append(args, call.Args...)
	names := make([]string, 0, 1+len(call.Keys))
	names = append(names, r.key(i))
	names = append(names, call.Keys...)
	res, err := admitScript.Exec(ctx, r.client, names, args).ToArray()
	if err != nil {
		return d, st, false, fmt.Errorf("cluster: admit: %w", err)
	}
	r.settled(i, owed)
	if len(res) < 2 {
		return d, st, false, fmt.Errorf("cluster: unexpected answer of %d values", len(res))
	}
	e, err1 := res[0].ToString()
	n, err2 := res[1].ToString()
	if err1 != nil || err2 != nil {
		return d, st, false, fmt.Errorf("cluster: unexpected answer: %v %v", err1, err2)
	}
	if st, err = parseState(e, n); err != nil {
		return d, st, false, err
	}
	if len(res) == 2 {
		return d, st, false, nil
	}
	nums := make([]int64, len(res)-2)
	for j, v := range res[2:] {
		if nums[j], err = v.AsInt64(); err != nil {
			return d, st, false, fmt.Errorf("cluster: unexpected answer: %w", err)
		}
	}
	d, err = call.Decision(nums)
	return d, st, err == nil, err
}
