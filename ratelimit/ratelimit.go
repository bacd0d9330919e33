// Package ratelimit enforces per-principal request limits over two rolling
// windows (SPEC §5): a short burst window, counted exactly with a log of
// admitted requests, and a long daily window, counted in fine buckets that
// each count for their whole span, so that no window of either length ever
// holds more admitted requests than its limit.
package ratelimit

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Limits are one principal's limits.
type Limits struct {
	Burst       int           // requests per BurstWindow
	BurstWindow time.Duration // e.g. 20s
	Daily       int           // requests per DailyWindow
	DailyWindow time.Duration // 24h
}

// FromSettings converts account settings to Limits with a 24-hour daily
// window.
func FromSettings(s gatehouse.RateLimitSettings) Limits {
	return Limits{Burst: s.Burst, BurstWindow: time.Duration(s.BurstWindowSeconds) * time.Second,
		Daily: s.Daily, DailyWindow: 24 * time.Hour}
}

// Decision is the outcome of one Allow.
type Decision struct {
	Allowed bool
	Limits  Limits
	// BurstRemaining and DailyRemaining are exact after this request (0
	// when refused).
	BurstRemaining, DailyRemaining int
	// BurstReset and DailyReset are how long until the oldest counted
	// request leaves that window (0 when none is counted).
	BurstReset, DailyReset time.Duration
	// RetryAfter is, when refused, how long until a request would be
	// admitted.
	RetryAfter time.Duration
}

// Limiter admits or refuses one request for key. Implementations are safe
// for concurrent use. A non-nil error means the limiter could not decide
// (its backend is unreachable); callers must then refuse the request with
// 503, never serve it unlimited.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limits) (Decision, error)
}

// HeaderNames are the configurable names of the two X- headers.
type HeaderNames struct{ BurstRemaining, DailyRemaining string }

// DefaultHeaderNames returns X-RateLimit-Burst-Remaining and
// X-RateLimit-Daily-Remaining.
func DefaultHeaderNames() HeaderNames {
	return HeaderNames{BurstRemaining: "X-RateLimit-Burst-Remaining", DailyRemaining: "X-RateLimit-Daily-Remaining"}
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// SetHeaders writes the remaining counts, the IETF draft's RateLimit-Policy
// and RateLimit pair (the window nearest to running out), and, when the
// request was refused, Retry-After.
func (d Decision) SetHeaders(h http.Header, names HeaderNames) {
	l := d.Limits
	h.Set(names.BurstRemaining, strconv.Itoa(d.BurstRemaining))
	h.Set(names.DailyRemaining, strconv.Itoa(d.DailyRemaining))
	var b strings.Builder
	b.WriteString(`"burst";q=`)
	b.WriteString(strconv.Itoa(l.Burst))
	b.WriteString(";w=")
	b.WriteString(strconv.Itoa(seconds(l.BurstWindow)))
	b.WriteString(`, "daily";q=`)
	b.WriteString(strconv.Itoa(l.Daily))
	b.WriteString(";w=")
	b.WriteString(strconv.Itoa(seconds(l.DailyWindow)))
	h.Set("RateLimit-Policy", b.String())
	name, r, t := "burst", d.BurstRemaining, d.BurstReset
	// Compare remaining/quota without division: daily/Daily < burst/Burst.
	if int64(d.DailyRemaining)*int64(max(l.Burst, 1)) < int64(d.BurstRemaining)*int64(max(l.Daily, 1)) {
		name, r, t = "daily", d.DailyRemaining, d.DailyReset
	}
	h.Set("RateLimit", `"`+name+`";r=`+strconv.Itoa(r)+";t="+strconv.Itoa(seconds(t)))
	if !d.Allowed {
		h.Set("Retry-After", strconv.Itoa(max(1, seconds(d.RetryAfter))))
	}
}
