package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed redis.lua
var redisScript string

// Redis is a Limiter shared by every node of a cluster: one atomic Lua
// script per request keeps the same exact burst log (a sorted set) and the
// same conservative daily buckets (a hash) as Memory, in Redis. Time is
// Redis's own clock, so nodes need not agree on the time. It is safe for
// concurrent use.
type Redis struct {
	client *redis.Client
	script *redis.Script
	prefix string
	// now, when set, replaces Redis's clock (tests).
	now func() time.Time
}

// RedisOption configures NewRedis.
type RedisOption func(*Redis)

// WithKeyPrefix puts every key under prefix (default "gatehouse:rl:").
func WithKeyPrefix(prefix string) RedisOption { return func(r *Redis) { r.prefix = prefix } }

// WithRedisClock makes the script use now instead of Redis's clock.
func WithRedisClock(now func() time.Time) RedisOption { return func(r *Redis) { r.now = now } }

// NewRedis returns a limiter on client.
func NewRedis(client *redis.Client, opts ...RedisOption) *Redis {
	r := &Redis{client: client, script: redis.NewScript(redisScript), prefix: "gatehouse:rl:"}
	for _, o := range opts {
		o(r)
	}
	return r
}

var _ Limiter = (*Redis)(nil)

// Allow runs the script. An error means Redis could not be reached or
// answered badly; the caller must refuse the request.
func (r *Redis) Allow(ctx context.Context, key string, l Limits) (Decision, error) {
	now := ""
	if r.now != nil {
		now = strconv.FormatInt(r.now().UnixMicro(), 10)
	}
	span := max((l.DailyWindow.Microseconds()+DailyBuckets-1)/DailyBuckets, 1)
	member := strconv.FormatUint(rand.Uint64(), 36)
	res, err := r.script.Run(ctx, r.client, []string{r.prefix + "b:" + key, r.prefix + "d:" + key},
		now, l.BurstWindow.Microseconds(), l.Burst, span, l.Daily, member, DailyBuckets+1).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 6 {
		return Decision{}, fmt.Errorf("ratelimit: redis: unexpected answer %v", res)
	}
	us := func(v int64) time.Duration { return time.Duration(max(v, 0)) * time.Microsecond }
	d := Decision{Allowed: res[0] == 1, Limits: l,
		BurstRemaining: max(0, l.Burst-int(res[1])), DailyRemaining: max(0, l.Daily-int(res[2])),
		BurstReset: us(res[3]), DailyReset: us(res[4]), RetryAfter: us(res[5])}
	return d, nil
}

// Ping reports whether Redis answers.
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }
