package throttle_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/throttle"
	"github.com/gatehouse/gatehouse/throttle/throttletest"
)

// testPrefix returns a key prefix of the test's own, whose keys are
// deleted when it ends.
func testPrefix(t *testing.T, c rueidis.Client) string { return redistest.Prefix(t, c) + "th:" }

// TestRedis runs the throttle suite against a Redis and a Redis Cluster.
func TestRedis(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		throttletest.Run(t, func(t *testing.T, rules throttle.Rules, clock func() time.Time) throttle.Throttle {
			return throttle.NewRedis(b.Client, rules, throttle.WithKeyPrefix(testPrefix(t, b.Client)), throttle.WithRedisClock(clock))
		})
	})
}

// TestRedisShared shows that two throttles on one Redis — two nodes — keep
// one count, and that the keys stay small and expire.
func TestRedisShared(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := testPrefix(t, c)
	rules := throttletest.Rules
	a, b := throttle.NewRedis(c, rules, throttle.WithKeyPrefix(prefix)), throttle.NewRedis(c, rules, throttle.WithKeyPrefix(prefix))
	big := strings.Repeat("x", 1<<20)
	for i := 0; i < rules.UserAddr.Limit; i++ {
		node := []throttle.Throttle{a, b}[i%2]
		if _, err := node.Reserve(ctx, big, "192.0.2.1"); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	for _, node := range []throttle.Throttle{a, b} {
		if _, err := node.Reserve(ctx, big, "192.0.2.1"); gatehouse.ErrorCode(err) != gatehouse.ETooManyAttempts {
			t.Fatalf("over the limit: %v", err)
		}
	}
	keys, err := c.Do(ctx, c.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %v, want one per username and one per address", keys)
	}
	for _, k := range keys {
		if len(k) > len(prefix)+40 {
			t.Fatalf("key %q is not bounded", k[:80])
		}
		ms, err := c.Do(ctx, c.B().Pttl().Key(k).Build()).AsInt64()
		ttl := time.Duration(ms) * time.Millisecond
		if err != nil || ttl <= 0 || ttl > rules.User.Window+time.Second {
			t.Fatalf("key %s expires in %v (%v)", k, ttl, err)
		}
	}
	if err := b.Clear(ctx, big); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(ctx, big, "192.0.2.1"); err != nil {
		t.Fatalf("after a clear on the other node: %v", err)
	}
}

func TestRedisUnreachable(t *testing.T) {
	c, _ := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"127.0.0.1:1"}, ForceSingleClient: true,
		DisableCache: true, Dialer: net.Dialer{Timeout: 100 * time.Millisecond}})
	defer c.Close()
	th := throttle.NewRedis(c, throttle.DefaultRules())
	ctx := context.Background()
	if _, err := th.Reserve(ctx, "ann@example.com", "192.0.2.1"); err == nil || gatehouse.ErrorCode(err) == gatehouse.ETooManyAttempts {
		t.Fatalf("reserve without Redis: %v", err)
	}
	if err := th.Clear(ctx, "ann@example.com"); err == nil {
		t.Fatal("clear without Redis: no error")
	}
}
