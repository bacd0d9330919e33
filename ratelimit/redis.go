package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// RedisLua is the limiter's Lua: it defines the local function
// ratelimit(keys, ko, argv, ao), one decision over the budgets
// keys[ko+1 ..] with the arguments argv[ao+1 .. ao+7]. Redis runs it on its
// own; a larger script that must decide in the same atomic step (the
// cluster's admission) runs it after keys and arguments of its own, from a
// RedisCall.
//
//go:embed redis.lua
var RedisLua string

// Redis is a Limiter shared by every node of a cluster: one atomic Lua
// script per request, over all of its keys, keeps the same exact burst log
// (a sorted set) and the same conservative daily buckets (a hash) per key
// as Memory, in Redis. Time is Redis's own clock, so nodes need not agree
// on the time. It is safe for concurrent use.
//
// Key layout: key k of account a is stored as
//
//	<prefix>{<tag>}<a>:b:<k>   burst log
//	<prefix>{<tag>}<a>:d:<k>   daily buckets
//
// where tag is a Redis Cluster hash tag: the account itself, or what
// WithHashTag makes of it. Every key of one request (a user and the API
// token acting as them) then lives in one slot and one script can update
// them atomically. The prefix must therefore not contain "{".
type Redis struct {
	client rueidis.Client
	script *rueidis.Lua
	prefix string
	tag    func(account string) string
	// now, when set, replaces Redis's clock (tests).
	now func() time.Time
}

// RedisOption configures NewRedis.
type RedisOption func(*Redis)

// WithKeyPrefix puts every key under prefix (default "gatehouse:rl:"),
// which must not contain "{" (see Redis).
func WithKeyPrefix(prefix string) RedisOption { return func(r *Redis) { r.prefix = prefix } }

// WithHashTag makes tag(account) the hash tag of the account's keys
// instead of the account itself, so that they share a slot with other
// keys (the cluster puts them beside its generation shard). The result
// must not contain "}".
func WithHashTag(tag func(account string) string) RedisOption {
	return func(r *Redis) { r.tag = tag }
}

// WithRedisClock makes the script use now instead of Redis's clock.
func WithRedisClock(now func() time.Time) RedisOption { return func(r *Redis) { r.now = now } }

// NewRedis returns a limiter on client.
func NewRedis(client rueidis.Client, opts ...RedisOption) *Redis {
	r := &Redis{client: client, script: rueidis.NewLuaScript(RedisLua + "\nreturn ratelimit(KEYS, 0, ARGV, 0)\n"), prefix: "gatehouse:rl:"}
	for _, o := range opts {
		o(r)
	}
	return r
}

var _ Limiter = (*Redis)(nil)

// redisValues is how many numbers the script answers per key.
const redisValues = 5

// RedisCall is one Allow prepared for the script: the budget keys and the
// arguments of ratelimit (see RedisLua), and how to read its answer.
type RedisCall struct {
	Keys, Args []string
	limits     Limits
}

// Prepare returns the call for one request of account against keys under
// l. It returns an error when account or keys is empty.
func (r *Redis) Prepare(account string, keys []string, l Limits) (RedisCall, error) {
	if account == "" || len(keys) == 0 {
		return RedisCall{}, errNoKeys
	}
	tag := account
	if r.tag != nil {
		tag = r.tag(account)
	}
	base := r.prefix + "{" + tag + "}" + account + ":"
	names := make([]string, 0, 2*len(keys))
	for i, k := range keys {
		if slices.Contains(keys[:i], k) {
			continue // a repeated key counts once
		}
		names = append(names, base+"b:"+k, base+"d:"+k)
	}
	now := ""
	if r.now != nil {
		now = strconv.FormatInt(r.now().UnixMicro(), 10)
	}
	span := max((l.DailyWindow.Microseconds()+DailyBuckets-1)/DailyBuckets, 1)
	args := []string{now, strconv.FormatInt(l.BurstWindow.Microseconds(), 10), strconv.Itoa(l.Burst),
		strconv.FormatInt(span, 10), strconv.Itoa(l.Daily), strconv.FormatUint(rand.Uint64(), 36), strconv.Itoa(DailyBuckets + 1)}
	return RedisCall{Keys: names, Args: args, limits: l}, nil
}

// Decision reads the script's answer.
func (c RedisCall) Decision(res []int64) (Decision, error) {
	n, l := len(c.Keys)/2, c.limits
	if len(res) != 1+redisValues*n {
		return Decision{}, fmt.Errorf("ratelimit: redis: unexpected answer %v", res)
	}
	us := func(v int64) time.Duration { return time.Duration(max(v, 0)) * time.Microsecond }
	var d Decision
	for i := range n {
		v := res[1+redisValues*i:]
		k := Decision{Allowed: res[0] == 1, Limits: l,
			BurstRemaining: max(0, l.Burst-int(v[0])), DailyRemaining: max(0, l.Daily-int(v[1])),
			BurstReset: us(v[2]), DailyReset: us(v[3]), RetryAfter: us(v[4])}
		if i == 0 {
			d = k
		} else {
			d.fold(k)
		}
	}
	return d, nil
}

// Allow runs the script over the keys. An error means Redis could not be
// reached or answered badly, or account or keys is empty; the caller must
// refuse the request.
func (r *Redis) Allow(ctx context.Context, account string, keys []string, l Limits) (Decision, error) {
	c, err := r.Prepare(account, keys, l)
	if err != nil {
		return Decision{}, err
	}
	res, err := r.script.Exec(ctx, r.client, c.Keys, c.Args).AsIntSlice()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return c.Decision(res)
}
