package service

import (
	"context"
	"maps"
	"slices"
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
