package service_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/service"
)

// A device polling on the interval is never slowed down for the jitter of
// its polls' arrival (a tenth of the interval), and one polling sooner is.
func TestPollTooSoon(t *testing.T) {
	last := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		after, interval time.Duration
		want            bool
	}{
		{0, 5 * time.Second, true},
		{4 * time.Second, 5 * time.Second, true},
		{4499 * time.Millisecond, 5 * time.Second, true},
		{4500 * time.Millisecond, 5 * time.Second, false},
		{5 * time.Second, 5 * time.Second, false},
		{5 * time.Second, 10 * time.Second, true},
		{8999 * time.Millisecond, 10 * time.Second, true},
		{9 * time.Second, 10 * time.Second, false},
		{time.Minute, 10 * time.Second, false},
	} {
		if got := service.PollTooSoon(&last, last.Add(c.after), c.interval); got != c.want {
			t.Errorf("a poll %s after the last, interval %s: too soon %v, want %v", c.after, c.interval, got, c.want)
		}
	}
	if service.PollTooSoon(nil, last, 5*time.Second) {
		t.Error("a first poll is never too soon")
	}
}
