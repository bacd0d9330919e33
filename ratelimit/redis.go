package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse"
)

// RedisLua is the limiter's Lua: it defines the local function
// decide(keys, ko, argv, ao, confirm), the decisions of a batch of
// requests over the budgets keys[ko+1 ..] with the arguments
// argv[ao+1 ..] (see redis.lua). Redis runs it on its own; a larger
// script that must decide in the same atomic step (the cluster's
// admission) runs it after keys and arguments of its own, from a
// RedisBatch.
//
//go:embed redis.lua
var RedisLua string

// Redis is a Limiter shared by every node of a cluster: one atomic Lua
// script per call (one request, or a batch decided one after the other),
// over all of its keys, keeps the same exact burst log (a list of times,
// oldest first) and the same conservative daily buckets (a hash, with
// their running total) per key as Memory, in Redis. Time is Redis's own
// clock, so nodes need not agree on the time. It is safe for concurrent
// use.
//
// Key layout: key k of account a is stored as
//
//	<prefix>{<tag>}<a>:burst:<k>   burst log
//	<prefix>{<tag>}<a>:daily:<k>   daily buckets
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
	r := &Redis{client: client, script: rueidis.NewLuaScript(RedisLua + "\nreturn decide(KEYS, 0, ARGV, 0, function() return true end)\n"),
		prefix: "gatehouse:rl:"}
	for _, o := range opts {
		o(r)
	}
	return r
}

var _ Limiter = (*Redis)(nil)

// redisValues is how many numbers the script answers per budget.
const redisValues = 5

// RedisBatch is several requests, possibly of several accounts, prepared
// for one script call that decides them one after the other, each as
// Allow alone would (see RedisLua): the keys and arguments of decide, after
// those of the caller's own script, and how to read its answer. A budget
// used by several requests of the batch is read and written once, and the
// confirm fields and limits that its requests share are sent once.
type RedisBatch struct {
	// Keys are the script's keys: the caller's, then two per budget.
	Keys []string
	// head is the caller's arguments, the clock and the ring's size.
	head []string
	// now is the clock a quota's period ends by (time.Now unless the
	// limiter was given one, as the caller's period names come from it).
	now func() time.Time
	// ko is the number of the caller's own keys.
	ko      int
	budgets map[budget]int // budget -> its number in the script
	// pairs are the distinct confirm fields, and limits and limitArgs
	// the distinct limits (four arguments each), in the order the
	// requests first used them.
	pairs     [][2]string
	limits    []Limits
	limitArgs []string
	// reqArgs are the runs' own arguments, each after a place for its
	// length; runs are the runs of identical requests, in order.
	reqArgs []string
	runs    []run
	reqs    []batched
	// seeding is set by SeedQuotas; seeds are the counts quota budgets
	// not held start from, by budget number.
	seeding bool
	seeds   map[int]int
	// seg is the arguments of the request being added (reused).
	seg []string
}

// run is a run of identical requests of a batch, which the script decides
// at once (see RedisLua): where its arguments start in reqArgs (at the
// place for its length), and how many requests it holds.
type run struct{ at, n int }

// budget names one budget of a batch.
type budget struct{ account, key string }

// batched is what reading one request's answer needs: its limits, and
// how many of its budgets are its keys (under limits, Own cleared) before
// those of limits.Own.
type batched struct {
	limits  Limits
	keys    int
	budgets int
	// skipped has bit i set when limits.Own[i] named a budget the request
	// counts against already (a request has at most a few own budgets:
	// its credential's and its user's).
	skipped uint64
}

// NewBatch starts a batch after the caller's own keys and arguments.
func (r *Redis) NewBatch(keys, args []string) *RedisBatch {
	now, clock := "", time.Now
	if r.now != nil {
		now, clock = strconv.FormatInt(r.now().UnixMicro(), 10), r.now
	}
	return &RedisBatch{Keys: keys, head: append(args, now, strconv.Itoa(DailyBuckets+1)), now: clock, ko: len(keys)}
}

// Args returns the script's arguments: the caller's, then decide's.
func (b *RedisBatch) Args() []string {
	args := make([]string, 0, len(b.head)+2+2*len(b.pairs)+len(b.limitArgs)+len(b.reqArgs))
	args = append(args, b.head...)
	args = append(args, strconv.Itoa(len(b.pairs)))
	for _, p := range b.pairs {
		args = append(args, p[0], p[1])
	}
	args = append(args, strconv.Itoa(len(b.limits)))
	args = append(args, b.limitArgs...)
	if !b.seeding {
		args = append(args, "-1")
	} else {
		args = append(args, strconv.Itoa(len(b.seeds)))
		for p, n := range b.seeds {
			args = append(args, strconv.Itoa(p), strconv.Itoa(n))
		}
	}
	start := len(args)
	args = append(args, b.reqArgs...)
	for _, r := range b.runs {
		args[start+r.at] = strconv.Itoa(r.n)
	}
	return args
}

// Add appends one request of account against keys under l. It is decided
// only if the caller's script confirms the two fields (the plain limiter
// confirms every request). It returns an error when account or keys is
// empty.
func (r *Redis) Add(b *RedisBatch, account string, keys []string, l Limits, field1, field2 string) error {
	if account == "" || len(keys) == 0 {
		return ErrNoKeys
	}
	base := l
	base.Own = nil
	b.seg = append(b.seg[:0], strconv.Itoa(b.pair(field1, field2)), "")
	n := 0
	// add counts the request against budget k under the limits li gives,
	// unless it counts against k already: a repeated key counts once, under
	// its first limits, as Memory counts it. It reports whether k was added.
	add := func(k string, li func() int) bool {
		p, ok := b.budgets[budget{account, k}]
		if !ok {
			if b.budgets == nil {
				b.budgets = map[budget]int{}
			}
			tag := account
			if r.tag != nil {
				tag = r.tag(account)
			}
			base := r.prefix + "{" + tag + "}" + account + ":"
			b.Keys = append(b.Keys, base+"burst:"+k, base+"daily:"+k)
			p = (len(b.Keys) - b.ko) / 2
			b.budgets[budget{account, k}] = p
		}
		ps := strconv.Itoa(p)
		for i := 2; i < len(b.seg); i += 2 {
			if b.seg[i] == ps {
				return false
			}
		}
		b.seg = append(b.seg, ps, strconv.Itoa(li()))
		n++
		return true
	}
	baseSet := b.limitSet(base)
	for _, k := range keys {
		add(k, func() int { return baseSet })
	}
	q := batched{limits: l, keys: n}
	own := l.own()
	for i := range own {
		if !add(own[i].Key, func() int { return b.limitSet(ownLimits(&own[i])) }) {
			q.skipped |= 1 << i
		}
	}
	q.budgets = n
	b.seg[1] = strconv.Itoa(n)
	b.reqs = append(b.reqs, q)
	// The same request as the run before joins it (a run's budgets are
	// distinct, as every request's are).
	if k := len(b.runs) - 1; k >= 0 && slices.Equal(b.reqArgs[b.runs[k].at+1:], b.seg) {
		b.runs[k].n++
		return nil
	}
	b.runs = append(b.runs, run{at: len(b.reqArgs), n: 1})
	b.reqArgs = append(append(b.reqArgs, ""), b.seg...)
	return nil
}

// SeedQuotas makes the batch's quota budgets that Redis does not hold —
// lost with Redis's data, or new with their period — wait for a seed:
// a request counting against one is answered Unseeded, nothing counted,
// until it is sent again with Seed. Without it such a budget counts from
// nothing.
func (b *RedisBatch) SeedQuotas() { b.seeding = true }

// Seed gives the quota budget key of account, which a request already
// added counts against, the count it starts from if Redis does not hold
// it (the highest, if given twice). It is ignored when Redis does.
func (b *RedisBatch) Seed(account, key string, n int) {
	p, ok := b.budgets[budget{account, key}]
	if !ok {
		return
	}
	if b.seeds == nil {
		b.seeds = map[int]int{}
	}
	if old, ok := b.seeds[p]; !ok || n > old {
		b.seeds[p] = n
	}
}

// pair returns the number (from 1) of the confirm fields f1, f2 in b,
// adding them if they are new. The newest are looked at first: the
// requests of a batch mostly share them.
func (b *RedisBatch) pair(f1, f2 string) int {
	for i := len(b.pairs) - 1; i >= 0; i-- {
		if b.pairs[i] == [2]string{f1, f2} {
			return i + 1
		}
	}
	b.pairs = append(b.pairs, [2]string{f1, f2})
	return len(b.pairs)
}

// limitSet returns the number (from 1) of the limits l in b, adding them
// if they are new.
func (b *RedisBatch) limitSet(l Limits) int {
	for i := len(b.limits) - 1; i >= 0; i-- {
		if b.limits[i] == l {
			return i + 1
		}
	}
	span := max((l.DailyWindow.Microseconds()+DailyBuckets-1)/DailyBuckets, 1)
	b.limits = append(b.limits, l)
	b.limitArgs = append(b.limitArgs, strconv.FormatInt(l.BurstWindow.Microseconds(), 10), strconv.Itoa(l.Burst),
		strconv.FormatInt(span, 10), strconv.Itoa(l.Daily))
	return len(b.limits)
}

// BatchDecision is the answer to one request of a batch: Decided is false
// when the caller's script did not confirm it, or when it is Unseeded (a
// quota budget it counts against waits for a seed, see SeedQuotas);
// nothing was counted then.
type BatchDecision struct {
	Decided  bool
	Unseeded bool
	Decision
}

// Read reads decide's answer: one BatchDecision per request, in order.
func (b *RedisBatch) Read(res []int64) ([]BatchDecision, error) {
	out := make([]BatchDecision, len(b.reqs))
	// A quota's period ends by this node's clock, as its name was chosen.
	now := time.Now()
	if b.now != nil {
		now = b.now()
	}
	first := 0 // the run's first request
	for _, r := range b.runs {
		if len(res) == 0 {
			return nil, fmt.Errorf("ratelimit: redis: answer ends at request %d of %d", first+1, len(b.reqs))
		}
		status := res[0]
		res = res[1:]
		if status == 0 || status == -1 {
			for k := range r.n {
				out[first+k].Unseeded = status == -1
			}
			first += r.n
			continue
		}
		m := redisValues * b.reqs[first].budgets
		admitted := int(status - 1)
		if admitted < 0 || admitted > r.n || len(res) < m {
			return nil, fmt.Errorf("ratelimit: redis: unexpected answer to request %d: %d", first+1, status)
		}
		values, refused := res[:m], res[:m]
		res = res[m:]
		if admitted > 0 && admitted < r.n {
			if len(res) < m {
				return nil, fmt.Errorf("ratelimit: redis: answer ends at request %d of %d", first+admitted+1, len(b.reqs))
			}
			refused, res = res[:m], res[m:]
		}
		for k := range r.n {
			if k < admitted {
				out[first+k] = BatchDecision{Decided: true, Decision: b.reqs[first+k].decision(true, values, k, now)}
			} else {
				out[first+k] = BatchDecision{Decided: true, Decision: b.reqs[first+k].decision(false, refused, 0, now)}
			}
		}
		first += r.n
	}
	if len(res) != 0 {
		return nil, fmt.Errorf("ratelimit: redis: %d values past the last request", len(res))
	}
	return out, nil
}

// decision reads the script's values for request q, admitted or not: per
// budget, burst used, day used, the two resets and the wait, each count
// higher by more (the k-th admitted request of a run is answered the
// first's values, k-1 higher where it counts).
func (q batched) decision(allowed bool, values []int64, more int, now time.Time) Decision {
	us := func(v int64) time.Duration { return time.Duration(max(v, 0)) * time.Microsecond }
	l, own := q.limits, q.limits.own()
	l.Own = nil
	var (
		d       Decision
		started bool
		b       *gatehouse.PlanBudget
	)
	next := 0 // the next of the plans' budgets
	for j := range q.budgets {
		if j >= q.keys {
			// The plans' budgets, in order, but those skipped.
			for q.skipped&(1<<next) != 0 {
				next++
			}
			b = &own[next]
			l = ownLimits(b)
			next++
		}
		v := values[redisValues*j:]
		burst := int(v[0])
		if l.Burst < UnboundedBurst {
			burst += more
		}
		k := Decision{Allowed: allowed, Limits: l,
			BurstRemaining: max(0, l.Burst-burst), DailyRemaining: max(0, l.Daily-int(v[1])-more),
			BurstReset: us(v[2]), DailyReset: us(v[3]), RetryAfter: us(v[4])}
		d.merge(k, b, &started, now)
	}
	return d
}

// Allow decides one request in a script call of its own. An error means
// Redis could not be reached or answered badly, or account or keys is
// empty; the caller must refuse the request.
func (r *Redis) Allow(ctx context.Context, account string, keys []string, l Limits) (Decision, error) {
	ds, err := r.AllowAll(ctx, []Request{{Account: account, Keys: keys, Limits: l}})
	if err != nil {
		return Decision{}, err
	}
	return ds[0], nil
}

// Request is one request for AllowAll.
type Request struct {
	Account string
	Keys    []string
	Limits  Limits
}

// AllowAll decides several requests, in order, in one script call: each
// exactly as Allow would have, one after the other, at the same instant.
func (r *Redis) AllowAll(ctx context.Context, reqs []Request) ([]Decision, error) {
	b := r.NewBatch(nil, nil)
	for _, q := range reqs {
		if err := r.Add(b, q.Account, q.Keys, q.Limits, "", ""); err != nil {
			return nil, err
		}
	}
	res, err := r.script.Exec(ctx, r.client, b.Keys, b.Args()).AsIntSlice()
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis: %w", err)
	}
	bd, err := b.Read(res)
	if err != nil {
		return nil, err
	}
	ds := make([]Decision, len(bd))
	for i, d := range bd {
		if !d.Decided {
			return nil, fmt.Errorf("ratelimit: redis: request %d not decided", i+1)
		}
		ds[i] = d.Decision
	}
	return ds, nil
}
