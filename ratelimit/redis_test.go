package ratelimit_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

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
	if _, err := l.Allow(ctx, "acc_1", []string{"user:usr_1", "apitoken:akt_1"}, lim); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Do(ctx, c.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{prefix + "{acc_1}acc_1:b:apitoken:akt_1", prefix + "{acc_1}acc_1:b:user:usr_1",
		prefix + "{acc_1}acc_1:d:apitoken:akt_1", prefix + "{acc_1}acc_1:d:user:usr_1"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	for _, k := range keys {
		if tag := hashTag(k); tag != "acc_1" {
			t.Errorf("%s: hash tag %q", k, tag)
		}
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
