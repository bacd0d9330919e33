package ratelimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/ratelimit/limitertest"
)

// testRedis connects to GATEHOUSE_TEST_REDIS_URL (default the local
// Redis); without one it skips, except under CI=true.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is unreachable: %v", url, err)
		}
		t.Skipf("Redis at %s is unreachable (%v); set GATEHOUSE_TEST_REDIS_URL", url, err)
	}
	return c
}

func TestRedis(t *testing.T) {
	c := testRedis(t)
	limitertest.Run(t, func(t *testing.T, clock func() time.Time) ratelimit.Limiter {
		prefix := fmt.Sprintf("gatehouse-test:%d:", rand.Uint64())
		t.Cleanup(func() {
			keys, _ := c.Keys(context.Background(), prefix+"*").Result()
			if len(keys) > 0 {
				c.Del(context.Background(), keys...)
			}
		})
		return ratelimit.NewRedis(c, ratelimit.WithKeyPrefix(prefix), ratelimit.WithRedisClock(clock))
	})
}

func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	l := ratelimit.NewRedis(c)
	if _, err := l.Allow(context.Background(), "k", ratelimit.Limits{Burst: 1, BurstWindow: time.Second, Daily: 1, DailyWindow: time.Hour}); err == nil {
		t.Fatal("no error without Redis")
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	opt, _ := redis.ParseURL("redis://127.0.0.1:6379/0")
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Skip("no Redis")
	}
	l := ratelimit.NewRedis(c, ratelimit.WithKeyPrefix(fmt.Sprintf("gatehouse-bench:%d:", rand.Uint64())))
	lim := ratelimit.Limits{Burst: 1 << 20, BurstWindow: time.Second, Daily: 1 << 30, DailyWindow: 24 * time.Hour}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(context.Background(), fmt.Sprint(i%100), lim)
			i++
		}
	})
}
