package ratelimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/ratelimit/limitertest"
)

// TestRedis runs the limiter suite against a Redis and a Redis Cluster.
func TestRedis(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		limitertest.Run(t, func(t *testing.T, clock func() time.Time) ratelimit.Limiter {
			return ratelimit.NewRedis(b.Client, ratelimit.WithKeyPrefix(redistest.Prefix(t, b.Client)), ratelimit.WithRedisClock(clock))
		})
	})
}

// TestRedisKeyLayout checks the documented layout: every key of one
// request carries the account as its Redis Cluster hash tag, so that one
// script can update them all in one slot.
func TestRedisKeyLayout(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	l := ratelimit.NewRedis(c, ratelimit.WithKeyPrefix(prefix))
	lim := ratelimit.Limits{Burst: 10, BurstWindow: time.Minute, Daily: 100, DailyWindow: 24 * time.Hour}
	written := time.Now()
	if _, err := l.Allow(ctx, "acc_1", []string{"user:usr_1", "apitoken:akt_1"}, lim); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Do(ctx, c.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{prefix + "{acc_1}acc_1:burst:apitoken:akt_1", prefix + "{acc_1}acc_1:burst:user:usr_1",
		prefix + "{acc_1}acc_1:daily:apitoken:akt_1", prefix + "{acc_1}acc_1:daily:user:usr_1"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	for _, k := range keys {
		if tag := hashTag(k); tag != "acc_1" {
			t.Errorf("%s: hash tag %q", k, tag)
		}
		// Each key outlives what it counts: the log its burst window,
		// the buckets the daily window.
		ttl, err := c.Do(ctx, c.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		want := lim.BurstWindow
		if strings.Contains(k, ":daily:") {
			want = lim.DailyWindow
		}
		// (less the time since the write: a loaded machine may take a
		// while to get here)
		if got := time.Duration(ttl) * time.Millisecond; got < want-time.Since(written) || got > want+2*time.Hour {
			t.Errorf("%s: expires in %s, want at least %s", k, got, want)
		}
	}
}

// TestRedisQuotaKeepsNoLog: a quota's budget, whose burst never binds,
// is counted in its buckets alone — no list of its requests' times grows
// with traffic — while a plan's rate limit beside it keeps its log.
func TestRedisQuotaKeepsNoLog(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, c)
	l := ratelimit.NewRedis(c, ratelimit.WithKeyPrefix(prefix))
	own := []gatehouse.PlanBudget{
		{Key: "plan:rate", Limits: gatehouse.RateLimitSettings{Daily: 100, Burst: 50, BurstWindowSeconds: 60}},
		{Key: "plan:quota", Quota: &gatehouse.Quota{Limit: 3, Period: gatehouse.QuotaMonth}},
	}
	a := &gatehouse.Account{ID: "acc_1"}
	a.Settings.RateLimit = gatehouse.RateLimitSettings{Daily: 100, Burst: 10, BurstWindowSeconds: 60}
	lim := ratelimit.ForPrincipal(&gatehouse.Principal{AccountID: a.ID, Account: a, PlanBudgets: own}, time.Now())
	for i := range 4 {
		d, err := l.Allow(ctx, "acc_1", []string{"user:usr_1"}, lim)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != (i < 3) || d.Quota.Remaining != max(2-i, 0) {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	keys, err := c.Do(ctx, c.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	var logs, buckets []string
	for _, k := range keys {
		switch {
		case strings.Contains(k, ":burst:"):
			logs = append(logs, strings.TrimPrefix(k, prefix+"{acc_1}acc_1:burst:"))
		case strings.Contains(k, ":daily:"):
			buckets = append(buckets, strings.TrimPrefix(k, prefix+"{acc_1}acc_1:daily:"))
		}
	}
	slices.Sort(logs)
	slices.Sort(buckets)
	if want := []string{"plan:rate", "user:usr_1"}; !slices.Equal(logs, want) {
		t.Errorf("burst logs %q, want %q (none for the quota)", logs, want)
	}
	if len(buckets) != 3 || !strings.HasPrefix(buckets[0], "plan:quota@") {
		t.Errorf("daily buckets %q, want the user's, the rate limit's and the quota's period's", buckets)
	}
}

// hashTag returns the part of key that Redis Cluster hashes to choose its
// slot: between the first "{" and the next "}", if not empty; else the
// whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

func TestRedisUnreachable(t *testing.T) {
	c, _ := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:1"}, ForceSingleClient: true,
		DisableCache: true, Dialer: net.Dialer{Timeout: 100 * time.Millisecond}})
	defer c.Close()
	l := ratelimit.NewRedis(c)
	if _, err := l.Allow(context.Background(), "acc_1", []string{"k"}, ratelimit.Limits{Burst: 1, BurstWindow: time.Second, Daily: 1, DailyWindow: time.Hour}); err == nil {
		t.Fatal("no error without Redis")
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	c := redistest.Client(b)
	l := ratelimit.NewRedis(c, ratelimit.WithKeyPrefix(redistest.Prefix(b, c)))
	lim := ratelimit.Limits{Burst: 1 << 20, BurstWindow: time.Second, Daily: 1 << 30, DailyWindow: 24 * time.Hour}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(context.Background(), "acc_bench", []string{fmt.Sprint(i % 100)}, lim)
			i++
		}
	})
}

// BenchmarkRedisAllowAll decides batches of 32 requests of one busy
// principal, the shape of a busy cluster node's admissions, one batch a
// millisecond of the limiter's clock (so that its burst logs hold a
// second's requests and lose as many as they gain), and reports the Redis
// server's own time per request (from INFO commandstats): the part of an
// admission that the script's work costs. With plans, each request also
// counts against a credential's and a user's own limits and a quota.
func BenchmarkRedisAllowAll(b *testing.B) {
	lim := ratelimit.Limits{Burst: 1 << 20, BurstWindow: time.Second, Daily: 1 << 30, DailyWindow: 24 * time.Hour}
	plans := lim
	huge := gatehouse.RateLimitSettings{Burst: 1 << 20, BurstWindowSeconds: 1, Daily: 1 << 30}
	plans.Own = &[]gatehouse.PlanBudget{{Key: "plan:credential:c", Limits: huge}, {Key: "plan:user:u", Limits: huge},
		{Key: "quota:credential:c@2027-01", Quota: &gatehouse.Quota{Limit: 1 << 30, Period: gatehouse.QuotaMonth}}}
	for _, bc := range []struct {
		name string
		lim  ratelimit.Limits
	}{{"account", lim}, {"plans", plans}} {
		b.Run(bc.name, func(b *testing.B) {
			c := redistest.Client(b)
			clock := limitertest.NewClock()
			l := ratelimit.NewRedis(c, ratelimit.WithKeyPrefix(redistest.Prefix(b, c)), ratelimit.WithRedisClock(clock.Now))
			reqs := make([]ratelimit.Request, 32)
			for i := range reqs {
				reqs[i] = ratelimit.Request{Account: "acc_bench", Keys: []string{"credential:c", "user:u"}, Limits: bc.lim}
			}
			ctx := context.Background()
			// A second of batches first, so that the logs are full.
			for range 1000 {
				clock.Add(time.Millisecond)
				if _, err := l.AllowAll(ctx, reqs); err != nil {
					b.Fatal(err)
				}
			}
			before := scriptMicros(b, c)
			for b.Loop() {
				clock.Add(time.Millisecond)
				if _, err := l.AllowAll(ctx, reqs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((scriptMicros(b, c)-before)*1000/float64(b.N*len(reqs)), "redis-ns/req")
		})
	}
}

// scriptMicros returns the time Redis has spent in scripts, in µs.
func scriptMicros(b *testing.B, c rueidis.Client) float64 {
	info, err := c.Do(context.Background(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		for _, f := range strings.Split(strings.TrimSpace(line), ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += n
			}
		}
	}
	return total
}

// TestRedisAgreesWithMemory drives the Redis limiter and the in-memory one
// through the same long random schedule — bursts, idle gaps, whole windows
// going by, daily buckets leaving the ring, requests over one or two keys,
// batches of requests decided in one script — and requires the same
// decision, to the microsecond, every time: the script keeps its counts in
// another shape (a list, a hash with a running total) and reads and
// writes each budget once per batch, but must decide exactly as the
// reference does, one request after the other.
func TestRedisAgreesWithMemory(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		limits := []ratelimit.Limits{
			{Burst: 5, BurstWindow: 10 * time.Second, Daily: 40, DailyWindow: time.Hour},
			{Burst: 30, BurstWindow: time.Second, Daily: 400, DailyWindow: 24 * time.Hour},
			// A whole day's limit admitted, and then refused, within one batch.
			{Burst: 1000, BurstWindow: time.Second, Daily: 6, DailyWindow: time.Hour},
		}
		// Each schedule draws every request's limits from its list; the
		// last mixes them within batches, as an account whose settings
		// change while its requests are in flight does.
		// Plans: a credential's own burst and day, and a monthly quota,
		// beside the account's limits.
		plans := limits[1]
		plans.Own = &[]gatehouse.PlanBudget{
			{Key: "credential:c", Limits: gatehouse.RateLimitSettings{Burst: 4, BurstWindowSeconds: 2, Daily: 120}},
			{Key: "quota:credential:c@2027-01", Quota: &gatehouse.Quota{Limit: 300, Period: gatehouse.QuotaMonth}},
		}
		// A quota alone, far below what the account's limits have room
		// for: it is what ends a run's admissions.
		quota := limits[1]
		quota.Own = &[]gatehouse.PlanBudget{
			{Key: "quota:user:q@2027-01", Quota: &gatehouse.Quota{Limit: 50, Period: gatehouse.QuotaMonth}},
		}
		// Own budgets naming a key twice, or a key the request counts
		// against already: each counts once, under its first limits.
		overlap := limits[1]
		overlap.Own = &[]gatehouse.PlanBudget{
			{Key: "user:b", Limits: gatehouse.RateLimitSettings{Burst: 3, BurstWindowSeconds: 2, Daily: 90}},
			{Key: "plan:x", Limits: gatehouse.RateLimitSettings{Burst: 6, BurstWindowSeconds: 1, Daily: 150}},
			{Key: "plan:x", Limits: gatehouse.RateLimitSettings{Burst: 1, BurstWindowSeconds: 9, Daily: 5}},
		}
		limits = append(limits, plans, quota, overlap)
		schedules := [][]ratelimit.Limits{limits[0:1], limits[1:2], limits[2:3], limits[3:4], limits[4:5], limits[5:6], limits}
		for _, lims := range schedules {
			lim := lims[0]
			name := fmt.Sprintf("burst %d per %s, %d per %s", lim.Burst, lim.BurstWindow, lim.Daily, lim.DailyWindow)
			if len(lims) > 1 {
				name = "mixed limits"
			} else if lim.Own != nil {
				name = map[int]string{1: "quota", 2: "plans", 3: "repeated keys"}[len(*lim.Own)]
			}
			t.Run(name, func(t *testing.T) {
				clock := limitertest.NewClock()
				mem := ratelimit.NewMemory(ratelimit.WithClock(clock.Now), ratelimit.WithSweep(0))
				red := ratelimit.NewRedis(b.Client, ratelimit.WithKeyPrefix(redistest.Prefix(t, b.Client)), ratelimit.WithRedisClock(clock.Now))
				rng := rand.New(rand.NewPCG(1, uint64(lim.Burst)))
				keySets := [][]string{{"user:a"}, {"user:b"}, {"apitoken:t", "user:a"}, {"user:a", "user:b"}}
				// Mostly short steps; now and then a burst window, a daily
				// bucket, a fifth of the day or the whole day goes by.
				gaps := []time.Duration{0, time.Microsecond, 7 * time.Millisecond, 40 * time.Millisecond, 300 * time.Millisecond}
				long := []time.Duration{lim.BurstWindow, lim.DailyWindow / 96, lim.DailyWindow / 5, lim.DailyWindow + lim.DailyWindow/96}
				ctx := context.Background()
				admitted, refused := 0, 0
				for step := range 2000 {
					switch r := rng.IntN(100); {
					case r < 4:
						clock.Add(long[rng.IntN(len(long))])
					case r < 60:
						clock.Add(gaps[rng.IntN(len(gaps))] + time.Duration(rng.IntN(1000))*time.Microsecond)
					}
					// A batch of one to a dozen requests in one script,
					// decided as the reference decides them one by one;
					// half of them repeat the request before (a run the
					// script decides at once).
					batch := make([]ratelimit.Request, 1+rng.IntN(12)*rng.IntN(2))
					for j := range batch {
						if j > 0 && rng.IntN(2) == 0 {
							batch[j] = batch[j-1]
							continue
						}
						batch[j] = ratelimit.Request{Account: "acc_diff", Keys: keySets[rng.IntN(len(keySets))], Limits: lims[rng.IntN(len(lims))]}
					}
					got, err := red.AllowAll(ctx, batch)
					if err != nil {
						t.Fatal(err)
					}
					for j, q := range batch {
						want, err := mem.Allow(ctx, q.Account, q.Keys, q.Limits)
						if err != nil {
							t.Fatal(err)
						}
						if got[j] != want {
							t.Fatalf("step %d, request %d of %d, keys %v: redis %+v, memory %+v", step, j+1, len(batch), q.Keys, got[j], want)
						}
						if want.Allowed {
							admitted++
						} else {
							refused++
						}
					}
				}
				// The schedule must have both admitted and refused a good
				// share, or it compared nothing interesting.
				if admitted < 40 || refused < 100 {
					t.Fatalf("%d admitted, %d refused: the schedule does not exercise the limits", admitted, refused)
				}
				if testing.Verbose() {
					t.Logf("%d admitted, %d refused", admitted, refused)
				}
			})
		}
	})
}
