package service

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestThrottleNoticeLooksUpAddressesOnly: when the sign-in throttle
// refuses, the node looks up the user of an e-mail key to tell their
// account (signin.throttled), and never the key of a user's device-code
// entries, which names no address (PostgreSQL refuses a key with a NUL
// as an error, once per refusal).
func TestThrottleNoticeLooksUpAddressesOnly(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	s := New(Config{Store: st})
	p := &gatehouse.Principal{User: &gatehouse.User{ID: "usr_1"}}
	s.noticeThrottled(ctx, deviceKey(p), "203.0.113.7")
	s.noticeThrottled(ctx, "someone@example.com", "203.0.113.7")
	looked := slices.Sorted(maps.Keys(s.throttleNoticed.until))
	if want := []string{"someone@example.com"}; !slices.Equal(looked, want) {
		t.Fatalf("looked up %q, want %q", looked, want)
	}
}

// TestThrottleNoticeKeepsNoLongKey: a refused sign-in's username longer
// than any address is neither looked up nor remembered, so the notices'
// memory is bounded by an address's length, whatever a client sends.
func TestThrottleNoticeKeepsNoLongKey(t *testing.T) {
	s := New(Config{Store: openTestStore(t)})
	s.noticeThrottled(context.Background(), strings.Repeat("x", MaxEmailLen+1)+"@example.com", "203.0.113.7")
	if n := len(s.throttleNoticed.until); n != 0 {
		t.Fatalf("%d keys remembered for a username longer than any address", n)
	}
}

// TestStartsCountedPerKindAndNetwork: each kind of start anyone may make
// counts StartsPerHour per client network (one address of an IPv6 /64 is
// the next one's), a kind used up leaves the others theirs, and another
// network starts afresh.
func TestStartsCountedPerKindAndNetwork(t *testing.T) {
	ctx := context.Background()
	s := New(Config{Store: openTestStore(t)})
	for i := range StartsPerHour {
		from := "2001:db8::1"
		if i%2 == 1 {
			from = "2001:db8::2" // the same /64
		}
		if err := s.reserveStart(ctx, "device", from, "unavailable"); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	if err := s.reserveStart(ctx, "device", "2001:db8::3", "unavailable"); gatehouse.ErrorCode(err) != gatehouse.ETooManyAttempts {
		t.Fatalf("start %d of the network: %v, want too_many_attempts", StartsPerHour+1, err)
	}
	if err := s.reserveStart(ctx, "passkey", "2001:db8::1", "unavailable"); err != nil {
		t.Fatalf("another kind from the network: %v", err)
	}
	if err := s.reserveStart(ctx, "device", "2001:db8:1::1", "unavailable"); err != nil {
		t.Fatalf("another network: %v", err)
	}
}
