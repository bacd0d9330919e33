// Package throttletest is the conformance suite every throttle.Throttle
// must pass: reservations that hold under concurrency, the three counters
// and their rolling windows, Retry-After, success, release and clearing,
// and input of any size.
package throttletest

import (
	"github.com/gatehouse/gatehouse/internal/testenv"

	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/throttle"
)

// Clock is the suites' settable fake clock.
type Clock = testenv.Clock

// NewClock returns a clock at a fixed, arbitrary time.
func NewClock() *Clock { return testenv.NewClock() }

// New makes a fresh, empty throttle with rules, reading time from clock.
type New func(t *testing.T, rules throttle.Rules, clock func() time.Time) throttle.Throttle

// Rules are the suite's rules: small numbers, each counter its own.
var Rules = throttle.Rules{
	UserAddr: throttle.Rule{Limit: 3, Window: 10 * time.Minute},
	User:     throttle.Rule{Limit: 10, Window: time.Hour},
	Addr:     throttle.Rule{Limit: 20, Window: 10 * time.Minute},
}

// tester wraps a throttle with helpers that fail the test on technical
// errors.
type tester struct {
	t  *testing.T
	th throttle.Throttle
}

// reserve returns the reservation and whether it was granted; a refusal
// must be too_many_attempts with a positive Retry-After.
func (x tester) reserve(user, addr string) (throttle.Reservation, time.Duration, bool) {
	x.t.Helper()
	r, err := x.th.Reserve(context.Background(), user, addr)
	if err == nil {
		return r, 0, true
	}
	var ge *gatehouse.Error
	if !errors.As(err, &ge) || ge.Code != gatehouse.ETooManyAttempts || ge.RetryAfter <= 0 {
		x.t.Fatalf("reserve %.40q from %.40q: %v", user, addr, err)
	}
	return r, ge.RetryAfter, false
}

// fail makes n failed attempts and fails the test if one is refused.
func (x tester) fail(n int, user, addr string) {
	x.t.Helper()
	for i := 0; i < n; i++ {
		if _, _, ok := x.reserve(user, addr); !ok {
			x.t.Fatalf("failure %d of %s from %s refused", i+1, user, addr)
		}
	}
}

func (x tester) allowed(user, addr string) bool {
	x.t.Helper()
	_, _, ok := x.reserve(user, addr)
	return ok
}

func (x tester) succeed(r throttle.Reservation) {
	x.t.Helper()
	if err := x.th.Succeed(context.Background(), r); err != nil {
		x.t.Fatal(err)
	}
}

func (x tester) release(r throttle.Reservation) {
	x.t.Helper()
	if err := x.th.Release(context.Background(), r); err != nil {
		x.t.Fatal(err)
	}
}

// Run runs the suite.
func Run(t *testing.T, newThrottle New) {
	start := func(t *testing.T) (tester, *Clock) {
		clock := NewClock()
		return tester{t, newThrottle(t, Rules, clock.Now)}, clock
	}

	t.Run("parallel guesses from one address stop at the limit", func(t *testing.T) {
		x, _ := start(t)
		var granted, refused atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := x.th.Reserve(context.Background(), "ann@example.com", "192.0.2.1"); err == nil {
					granted.Add(1)
				} else if gatehouse.ErrorCode(err) == gatehouse.ETooManyAttempts {
					refused.Add(1)
				} else {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if granted.Load() != int32(Rules.UserAddr.Limit) || refused.Load() != 200-int32(Rules.UserAddr.Limit) {
			t.Fatalf("%d granted, %d refused; want %d granted", granted.Load(), refused.Load(), Rules.UserAddr.Limit)
		}
	})

	t.Run("parallel guesses from many addresses stop at the username cap", func(t *testing.T) {
		x, _ := start(t)
		var granted atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := x.th.Reserve(context.Background(), "ann@example.com", fmt.Sprintf("198.51.100.%d", i)); err == nil {
					granted.Add(1)
				} else if gatehouse.ErrorCode(err) != gatehouse.ETooManyAttempts {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if granted.Load() != int32(Rules.User.Limit) {
			t.Fatalf("%d granted, want %d", granted.Load(), Rules.User.Limit)
		}
		// At the cap even a clean address waits.
		if x.allowed("ann@example.com", "203.0.113.1") {
			t.Fatal("granted over the username cap")
		}
		if !x.allowed("bob@example.com", "203.0.113.1") {
			t.Fatal("another username refused")
		}
	})

	t.Run("a clean address is not blocked below the username cap", func(t *testing.T) {
		x, _ := start(t)
		x.fail(Rules.UserAddr.Limit, "admin@example.com", "192.0.2.66")
		if x.allowed("admin@example.com", "192.0.2.66") {
			t.Fatal("granted over the per-address limit for the username")
		}
		r, _, ok := x.reserve("admin@example.com", "192.0.2.10")
		if !ok {
			t.Fatal("a clean address is blocked by another address's failures")
		}
		x.succeed(r)
	})

	t.Run("per address across usernames", func(t *testing.T) {
		x, _ := start(t)
		for i := 0; i < Rules.Addr.Limit; i++ {
			x.fail(1, fmt.Sprintf("user%d@example.com", i), "192.0.2.7")
		}
		if x.allowed("someone@example.com", "192.0.2.7") {
			t.Fatal("granted over the address limit")
		}
		if !x.allowed("someone@example.com", "192.0.2.8") {
			t.Fatal("another address refused")
		}
	})

	t.Run("an IPv6 address counts as its /64", func(t *testing.T) {
		x, _ := start(t)
		// Parallel guesses at one user, each from another address of one
		// /64 (written in different forms): the /64 gets one address's.
		var granted atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				addr := fmt.Sprintf("2001:db8:1:2:%x::%x", i, i+1)
				if i%3 == 0 {
					addr = fmt.Sprintf("2001:0DB8:0001:0002:%04X:0000:0000:%04X", i, i+1)
				}
				if _, err := x.th.Reserve(context.Background(), "ann@example.com", addr); err == nil {
					granted.Add(1)
				} else if gatehouse.ErrorCode(err) != gatehouse.ETooManyAttempts {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if granted.Load() != int32(Rules.UserAddr.Limit) {
			t.Fatalf("%d granted from one /64, want %d", granted.Load(), Rules.UserAddr.Limit)
		}
		if !x.allowed("ann@example.com", "2001:db8:1:3::1") {
			t.Fatal("the next /64 refused")
		}
		// Across usernames too.
		for i := 0; i < Rules.Addr.Limit; i++ {
			x.fail(1, fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("2001:db8:9:9::%x", i+1))
		}
		if x.allowed("someone@example.com", "2001:db8:9:9:ffff:ffff:ffff:ffff") {
			t.Fatal("granted over the address limit from elsewhere in the /64")
		}
		// An IPv4 address is itself, written either way.
		for i := 0; i < Rules.Addr.Limit; i++ {
			x.fail(1, fmt.Sprintf("v4user%d@example.com", i), "::ffff:192.0.2.200")
		}
		if x.allowed("someone@example.com", "192.0.2.200") {
			t.Fatal("an IPv4-mapped address counted apart from its IPv4 address")
		}
		if !x.allowed("someone@example.com", "192.0.2.201") {
			t.Fatal("the next IPv4 address refused")
		}
	})

	t.Run("retry after is when the blocking failure leaves", func(t *testing.T) {
		x, clock := start(t)
		x.fail(1, "ann@example.com", "192.0.2.1")
		clock.Add(2 * time.Minute)
		x.fail(2, "ann@example.com", "192.0.2.1")
		clock.Add(2 * time.Minute)
		_, wait, ok := x.reserve("ann@example.com", "192.0.2.1")
		if ok || wait != Rules.UserAddr.Window-4*time.Minute {
			t.Fatalf("granted %v, Retry-After %v; want %v", ok, wait, Rules.UserAddr.Window-4*time.Minute)
		}
		clock.Add(wait - time.Millisecond)
		if x.allowed("ann@example.com", "192.0.2.1") {
			t.Fatal("granted before Retry-After")
		}
		clock.Add(time.Millisecond)
		if !x.allowed("ann@example.com", "192.0.2.1") {
			t.Fatal("refused at Retry-After")
		}
	})

	t.Run("retry after of the username cap", func(t *testing.T) {
		x, clock := start(t)
		for i := 0; i < Rules.User.Limit; i++ {
			x.fail(1, "ann@example.com", fmt.Sprintf("198.51.100.%d", i))
			clock.Add(time.Minute)
		}
		// The first failure is Limit minutes old.
		_, wait, ok := x.reserve("ann@example.com", "203.0.113.1")
		if want := Rules.User.Window - time.Duration(Rules.User.Limit)*time.Minute; ok || wait != want {
			t.Fatalf("granted %v, Retry-After %v; want %v", ok, wait, want)
		}
		clock.Add(wait)
		if !x.allowed("ann@example.com", "203.0.113.1") {
			t.Fatal("refused after the first failure left the window")
		}
	})

	t.Run("refusals do not count", func(t *testing.T) {
		x, clock := start(t)
		x.fail(Rules.UserAddr.Limit, "ann@example.com", "192.0.2.1")
		for i := 0; i < 50; i++ {
			if x.allowed("ann@example.com", "192.0.2.1") {
				t.Fatal("granted over the limit")
			}
			clock.Add(time.Second)
		}
		clock.Add(Rules.UserAddr.Window - 50*time.Second)
		x.fail(Rules.UserAddr.Limit, "ann@example.com", "192.0.2.1")
		if x.allowed("ann@example.com", "192.0.2.1") {
			t.Fatal("granted over the limit in the next window")
		}
	})

	t.Run("success clears the username everywhere", func(t *testing.T) {
		x, _ := start(t)
		x.fail(Rules.UserAddr.Limit-1, "ann@example.com", "192.0.2.1")
		x.fail(Rules.UserAddr.Limit, "ann@example.com", "192.0.2.2")
		r, _, ok := x.reserve("ann@example.com", "192.0.2.1")
		if !ok {
			t.Fatal("last attempt refused")
		}
		x.succeed(r)
		x.fail(Rules.UserAddr.Limit, "ann@example.com", "192.0.2.1")
		x.fail(Rules.UserAddr.Limit, "ann@example.com", "192.0.2.2")
	})

	t.Run("success and release free the address", func(t *testing.T) {
		x, _ := start(t)
		for i := 0; i < Rules.Addr.Limit-1; i++ {
			x.fail(1, fmt.Sprintf("user%d@example.com", i), "192.0.2.7")
		}
		for _, done := range []func(throttle.Reservation){x.succeed, x.release} {
			r, _, ok := x.reserve("ann@example.com", "192.0.2.7")
			if !ok {
				t.Fatal("refused below the address limit")
			}
			done(r)
		}
		x.fail(1, "last@example.com", "192.0.2.7")
		if x.allowed("ann@example.com", "192.0.2.7") {
			t.Fatal("granted over the address limit")
		}
	})

	t.Run("release forgets the attempt", func(t *testing.T) {
		x, _ := start(t)
		x.fail(Rules.UserAddr.Limit-1, "ann@example.com", "192.0.2.1")
		for i := 0; i < 10; i++ {
			r, _, ok := x.reserve("ann@example.com", "192.0.2.1")
			if !ok {
				t.Fatalf("undecided attempt %d counted", i)
			}
			x.release(r)
		}
		x.fail(1, "ann@example.com", "192.0.2.1")
		if x.allowed("ann@example.com", "192.0.2.1") {
			t.Fatal("granted over the limit")
		}
	})

	t.Run("clear lifts the username's throttle", func(t *testing.T) {
		x, _ := start(t)
		for i := 0; i < Rules.User.Limit; i++ {
			x.fail(1, "ann@example.com", fmt.Sprintf("198.51.100.%d", i))
		}
		x.fail(Rules.UserAddr.Limit, "bob@example.com", "192.0.2.1")
		if x.allowed("ann@example.com", "192.0.2.1") {
			t.Fatal("granted at the cap")
		}
		if err := x.th.Clear(context.Background(), "ann@example.com"); err != nil {
			t.Fatal(err)
		}
		x.fail(Rules.UserAddr.Limit, "ann@example.com", "198.51.100.0")
		if x.allowed("bob@example.com", "192.0.2.1") {
			t.Fatal("clearing one username cleared another")
		}
		if err := x.th.Clear(context.Background(), "nobody@example.com"); err != nil {
			t.Fatalf("clear of an unknown username: %v", err)
		}
	})

	t.Run("input of any size", func(t *testing.T) {
		x, _ := start(t)
		big := strings.Repeat("a", 1<<20)
		x.fail(Rules.UserAddr.Limit, big+"1", big)
		if x.allowed(big+"1", big) {
			t.Fatal("granted over the limit")
		}
		if !x.allowed(big+"2", big) {
			t.Fatal("usernames that differ only at the end share a count")
		}
	})

	t.Run("the zero reservation is nothing", func(t *testing.T) {
		x, _ := start(t)
		x.fail(Rules.UserAddr.Limit, "ann@example.com", "192.0.2.1")
		x.succeed(throttle.Reservation{})
		x.release(throttle.Reservation{})
		if x.allowed("ann@example.com", "192.0.2.1") {
			t.Fatal("the zero reservation cleared something")
		}
	})
}
