package webhook

import (
	"math/rand/v2"
	"time"
)

// Schedule is how long after each failed attempt the next one is made:
// about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (SPEC
// §10.2), ten attempts over about three days. After the last one fails
// the endpoint is disabled.
var Schedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// MaxAttempts is how many attempts a delivery gets.
var MaxAttempts = len(Schedule) + 1

// NextAttempt returns the wait before the attempt after attempt number
// attempt (1 for the first) failed, with up to 10 % jitter either way,
// and false when that was the last attempt.
func NextAttempt(attempt int) (time.Duration, bool) {
	if attempt < 1 || attempt > len(Schedule) {
		return 0, false
	}
	d := Schedule[attempt-1]
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter, true
}
