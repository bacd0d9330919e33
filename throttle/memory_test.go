package throttle_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/throttle"
	"github.com/gatehouse/gatehouse/throttle/throttletest"
)

func TestMemory(t *testing.T) {
	throttletest.Run(t, func(t *testing.T, rules throttle.Rules, clock func() time.Time) throttle.Throttle {
		return throttle.NewMemory(rules, throttle.WithClock(clock))
	})
}

// TestMemoryBounded shows that the memory throttle forgets what has left
// every window, holds no more than its maximum, and keeps nothing of the
// size of what it is sent.
func TestMemoryBounded(t *testing.T) {
	ctx := context.Background()
	t.Run("expired attempts are swept", func(t *testing.T) {
		clock := throttletest.NewClock()
		m := throttle.NewMemory(throttletest.Rules, throttle.WithClock(clock.Now))
		for i := 0; i < 1000; i++ {
			if _, err := m.Reserve(ctx, fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250)); err != nil {
				t.Fatal(err)
			}
		}
		if m.Len() != 2000 {
			t.Fatalf("%d entries held, want 2000", m.Len())
		}
		clock.Add(throttletest.Rules.User.Window)
		// Any call sweeps once the sweep interval has passed.
		if _, err := m.Reserve(ctx, "x@example.com", "10.9.9.9"); err != nil {
			t.Fatal(err)
		}
		if m.Len() != 2 {
			t.Fatalf("%d entries held after every window passed, want 2", m.Len())
		}
	})
	t.Run("a full throttle fails closed", func(t *testing.T) {
		m := throttle.NewMemory(throttletest.Rules, throttle.WithMaxEntries(10))
		for i := 0; i < 5; i++ {
			if _, err := m.Reserve(ctx, fmt.Sprint(i), fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := m.Reserve(ctx, "one more", "one more")
		if err != throttle.ErrFull || gatehouse.ErrorCode(err) == gatehouse.ETooManyAttempts {
			t.Fatalf("reserve when full: %v", err)
		}
	})
	t.Run("1 MB usernames cost nothing", func(t *testing.T) {
		m := throttle.NewMemory(throttle.DefaultRules())
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 0; i < 800; i++ {
			name := strings.Repeat("x", 1<<20-8) + fmt.Sprintf("%08d", i)
			if _, err := m.Reserve(ctx, name, fmt.Sprintf("10.0.%d.%d", i/200, i%200)); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("800 attempts with 1 MB usernames: heap grew %d KiB", grown>>10)
		if grown > 4<<20 {
			t.Fatalf("heap grew %d MiB for 800 attempts", grown>>20)
		}
		runtime.KeepAlive(m)
	})
}

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                   "192.0.2.1",
		"::ffff:192.0.2.1":            "192.0.2.1",
		"2001:db8::1":                 "2001:db8::/64",
		"2001:db8:0:0:ffff:1:2:3":     "2001:db8::/64",
		"2001:DB8:0:1::1":             "2001:db8:0:1::/64",
		"fe80::1%eth0":                "fe80::/64",
		"not an address":              "not an address",
		"":                            "",
		"2001:db8::1:2:3:4:5:6:7:8:9": "2001:db8::1:2:3:4:5:6:7:8:9",
		// Ranges that embed IPv4 hosts: each address is one host.
		"64:ff9b::192.0.2.1":   "64:ff9b::c000:201",
		"64:ff9b::203.0.113.7": "64:ff9b::cb00:7107",
		"64:ff9b:1::c000:201":  "64:ff9b:1::c000:201",
		"::1":                  "::1",
		"::192.0.2.1":          "::c000:201",
	} {
		if got := throttle.Network(in); got != want {
			t.Errorf("Network(%q) = %q, want %q", in, got, want)
		}
	}
}
