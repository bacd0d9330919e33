package throttle

import (
	"context"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

//go:embed reserve.lua
var reserveScript string

// DefaultKeyPrefix is where Redis keeps the logs unless told otherwise.
const DefaultKeyPrefix = "gatehouse:th:"

// Redis is a Throttle shared by every node of a cluster: each username's
// and each address's log is a sorted set, and one Lua script decides and
// counts an attempt atomically. Time is Redis's own clock, so nodes need
// not agree on the time. An unreachable Redis is an error from every
// method, never a free pass. It is safe for concurrent use.
//
// Every key carries the hash tag {th}, so that one script can touch a
// username's and an address's log in a Redis Cluster: all of them live in
// one slot, which sign-ins (bounded by password hashing) cannot make hot.
// The prefix must not contain "{".
type Redis struct {
	client rueidis.Client
	script *rueidis.Lua
	rules  Rules
	prefix string
	// now, when set, replaces Redis's clock (tests).
	now func() time.Time
}

// RedisOption configures NewRedis.
type RedisOption func(*Redis)

// WithKeyPrefix puts every key under prefix (default DefaultKeyPrefix).
func WithKeyPrefix(prefix string) RedisOption { return func(r *Redis) { r.prefix = prefix } }

// WithRedisClock makes the script use now instead of Redis's clock.
func WithRedisClock(now func() time.Time) RedisOption { return func(r *Redis) { r.now = now } }

// NewRedis returns a throttle with rules on client.
func NewRedis(client rueidis.Client, rules Rules, opts ...RedisOption) *Redis {
	r := &Redis{client: client, script: rueidis.NewLuaScript(reserveScript), rules: rules, prefix: DefaultKeyPrefix}
	for _, o := range opts {
		o(r)
	}
	return r
}

var _ Throttle = (*Redis)(nil)

func (r *Redis) userKey(u digest) string { return r.prefix + "{th}u:" + u.String() }
func (r *Redis) addrKey(a digest) string { return r.prefix + "{th}a:" + a.String() }

// forgetScript deletes KEYS[1] when ARGV[1] is empty, or else removes
// ARGV[1] from it, and removes ARGV[2] from KEYS[2], atomically.
var forgetScript = rueidis.NewLuaScript(`
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`)

// member is an attempt's name in its username's log.
func member(res Reservation) string { return res.addr.String() + ":" + strconv.FormatUint(res.id, 36) }

// Reserve runs the script.
func (r *Redis) Reserve(ctx context.Context, username, addr string) (Reservation, error) {
	res := Reservation{user: userDigest(username), addr: addrDigest(addr), id: max(rand.Uint64(), 1)}
	now := ""
	if r.now != nil {
		now = strconv.FormatInt(r.now().UnixMicro(), 10)
	}
	us := func(d time.Duration) string { return strconv.FormatInt(max(d.Microseconds(), 1), 10) }
	out, err := r.script.Exec(ctx, r.client, []string{r.userKey(res.user), r.addrKey(res.addr)}, []string{
		now, res.addr.String(), strconv.FormatUint(res.id, 36),
		strconv.Itoa(r.rules.UserAddr.Limit), us(r.rules.UserAddr.Window), strconv.Itoa(r.rules.User.Limit), us(r.rules.User.Window),
		strconv.Itoa(r.rules.Addr.Limit), us(r.rules.Addr.Window)}).AsIntSlice()
	if err != nil {
		return Reservation{}, fmt.Errorf("throttle: redis: %w", err)
	}
	if len(out) != 2 {
		return Reservation{}, fmt.Errorf("throttle: redis: unexpected answer %v", out)
	}
	if out[0] != 1 {
		return Reservation{}, refused(time.Duration(out[1]) * time.Microsecond)
	}
	return res, nil
}

// Succeed deletes the username's log and the attempt from its address's
// log, in one script.
func (r *Redis) Succeed(ctx context.Context, res Reservation) error {
	if res.id == 0 {
		return nil
	}
	err := forgetScript.Exec(ctx, r.client, []string{r.userKey(res.user), r.addrKey(res.addr)},
		[]string{"", strconv.FormatUint(res.id, 36)}).Error()
	if err != nil {
		return fmt.Errorf("throttle: redis: %w", err)
	}
	return nil
}

// Release removes the attempt from both logs, in one script.
func (r *Redis) Release(ctx context.Context, res Reservation) error {
	if res.id == 0 {
		return nil
	}
	err := forgetScript.Exec(ctx, r.client, []string{r.userKey(res.user), r.addrKey(res.addr)},
		[]string{member(res), strconv.FormatUint(res.id, 36)}).Error()
	if err != nil {
		return fmt.Errorf("throttle: redis: %w", err)
	}
	return nil
}

// Clear deletes the username's log.
func (r *Redis) Clear(ctx context.Context, username string) error {
	if err := r.client.Do(ctx, r.client.B().Del().Key(r.userKey(userDigest(username))).Build()).Error(); err != nil {
		return fmt.Errorf("throttle: redis: %w", err)
	}
	return nil
}
