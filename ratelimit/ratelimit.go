// Package ratelimit enforces per-principal request limits over two rolling
// windows (SPEC §5): a short burst window, counted exactly with a log of
// admitted requests, and a long daily window, counted in fine buckets that
// each count for their whole span, so that no window of either length ever
// holds more admitted requests than its limit.
package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Limits are one principal's limits.
type Limits struct {
	Burst       int           // requests per BurstWindow
	BurstWindow time.Duration // e.g. 20s
	Daily       int           // requests per DailyWindow
	DailyWindow time.Duration // 24h
	// Own, when set, are more budgets of the request, each with limits of
	// its own (a credential's or a user's, SPEC §10.5): the request is
	// admitted only if they have room too, and is counted against them in
	// the same atomic step. Their keys name budgets of the same account;
	// a key named twice (or one of the request's keys) counts once, under
	// its first limits.
	Own *[]gatehouse.PlanBudget
	// quota marks the limits of a quota's budget.
	quota bool
}

// quotaWindow is the daily window of a quota's budget: longer than any
// period, so that nothing counted in a period leaves it before its end
// (each period is a budget of its own, see ForPrincipal).
const quotaWindow = 32 * 24 * time.Hour

// UnboundedBurst is a burst limit that never binds: a budget with it
// keeps no log of its requests' times, in memory or in Redis, only its
// daily count. A quota's budget has it.
const UnboundedBurst = 1 << 30

// ownLimits are the limits of a budget of Limits.Own, over a 24-hour
// daily window; a quota's count its limit over quotaWindow, with a burst
// that never binds.
func ownLimits(b *gatehouse.PlanBudget) Limits {
	if b.Quota != nil {
		return Limits{Burst: UnboundedBurst, BurstWindow: time.Second, Daily: max(b.Quota.Limit-b.QuotaCharged, 0), DailyWindow: quotaWindow, quota: true}
	}
	return Limits{Burst: b.Limits.Burst, BurstWindow: time.Duration(b.Limits.BurstWindowSeconds) * time.Second,
		Daily: b.Limits.Daily, DailyWindow: 24 * time.Hour}
}

// own returns l's own budgets (nil for none).
func (l Limits) own() []gatehouse.PlanBudget {
	if l.Own == nil {
		return nil
	}
	return *l.Own
}

// ForPrincipal returns the limits of a request of p at now: its
// account's, and the budgets of its credential's and its user's plans,
// each quota's named after its period at now (Principal.PeriodBudgets).
// The budgets are shared: a limiter must not modify them.
func ForPrincipal(p *gatehouse.Principal, now time.Time) Limits {
	l := FromSettings(p.Account.Settings.RateLimit)
	if len(p.PlanBudgets) > 0 {
		l.Own = p.PeriodBudgets(now)
	}
	return l
}

// FromSettings converts account settings to Limits with a 24-hour daily
// window.
func FromSettings(s gatehouse.RateLimitSettings) Limits {
	return Limits{Burst: s.Burst, BurstWindow: time.Duration(s.BurstWindowSeconds) * time.Second,
		Daily: s.Daily, DailyWindow: 24 * time.Hour}
}

// QuotaDecision is what a request's quota said: the fewest remaining of
// its quotas (after this request), and, when one of them refused it,
// Exceeded, with the wait until its period ends.
type QuotaDecision struct {
	Set       bool
	Limit     int
	Remaining int
	Reset     time.Duration // until the period ends
	Exceeded  bool
	// Uses are each quota budget's own standing (a request counts
	// against at most two: its credential's and its user's); unused
	// entries have no Key.
	Uses [2]gatehouse.QuotaUse
}

// Decision is the outcome of one Allow. For a request that counts against
// several keys, each window reports the key with the fewest requests
// remaining (and that key's reset), and RetryAfter the longest wait among
// the keys that refused it.
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
	// Quota is what the quotas of Limits.Own said (SPEC §10.5).
	Quota QuotaDecision
}

// merge adds to d the decision k of one budget, whose plan budget is b
// (nil for one of the request's keys); started reports whether d holds a
// key's decision already. A quota's decision goes to d.Quota alone: its
// window is not one of the rate limit's.
func (d *Decision) merge(k Decision, b *gatehouse.PlanBudget, started *bool, now time.Time) {
	if b != nil && b.Quota != nil {
		q := &d.Quota
		for i := range q.Uses {
			if q.Uses[i].Key == "" {
				q.Uses[i] = gatehouse.QuotaUse{Key: b.Key, Limit: b.Quota.Limit, Remaining: k.DailyRemaining}
				break
			}
		}
		if !q.Set || k.DailyRemaining < q.Remaining {
			q.Remaining = k.DailyRemaining
			q.Limit = b.Quota.Limit
		}
		q.Set = true
		if !b.QuotaEnds.IsZero() {
			q.Reset = max(q.Reset, b.QuotaEnds.Sub(now))
		}
		if !k.Allowed && k.DailyRemaining == 0 {
			q.Exceeded = true
			d.RetryAfter = max(d.RetryAfter, q.Reset)
		}
		return
	}
	if !*started {
		q, retry := d.Quota, d.RetryAfter
		*d = k
		d.Quota, d.RetryAfter = q, max(retry, k.RetryAfter)
		*started = true
		return
	}
	d.fold(k)
}

// fold merges into d the decision for another key of the same request:
// the tightest window wins (on a tie, the later reset), with its limits
// (the binding ones, for the headers), and the longest Retry-After.
func (d *Decision) fold(k Decision) {
	if k.BurstRemaining < d.BurstRemaining || k.BurstRemaining == d.BurstRemaining && k.BurstReset > d.BurstReset {
		d.BurstRemaining, d.BurstReset = k.BurstRemaining, k.BurstReset
		d.Limits.Burst, d.Limits.BurstWindow = k.Limits.Burst, k.Limits.BurstWindow
	}
	if k.DailyRemaining < d.DailyRemaining || k.DailyRemaining == d.DailyRemaining && k.DailyReset > d.DailyReset {
		d.DailyRemaining, d.DailyReset = k.DailyRemaining, k.DailyReset
		d.Limits.Daily, d.Limits.DailyWindow = k.Limits.Daily, k.Limits.DailyWindow
	}
	d.RetryAfter = max(d.RetryAfter, k.RetryAfter)
}

// Limiter admits or refuses one request that counts against every key in
// keys, all of them budgets of one account (a user and an API token acting
// as them, say). The request is admitted only if every key has room in
// both windows, and is then counted against every key, atomically: no key
// ever admits more than its limit in any window, under any concurrency,
// and a request refused for one key counts against none. A key repeated in
// keys counts once. A key names the same budget only within its account.
//
// Implementations are safe for concurrent use. A non-nil error means the
// limiter could not decide (its backend is unreachable, or account or keys
// is empty); callers must then refuse the request with 503, never serve it
// unlimited.
type Limiter interface {
	Allow(ctx context.Context, account string, keys []string, l Limits) (Decision, error)
}

// ErrNoKeys is the answer to a request without an account or keys.
var ErrNoKeys = errors.New("ratelimit: a request needs an account and at least one key")

// HeaderNames are the configurable names of the two X- headers.
type HeaderNames struct{ BurstRemaining, DailyRemaining string }

// DefaultHeaderNames returns X-RateLimit-Burst-Remaining and
// X-RateLimit-Daily-Remaining.
func DefaultHeaderNames() HeaderNames {
	return HeaderNames{BurstRemaining: "X-RateLimit-Burst-Remaining", DailyRemaining: "X-RateLimit-Daily-Remaining"}
}

// seconds rounds d up to whole seconds, for the windows and resets of the
// RateLimit headers (Retry-After is gatehouse.RetryAfterSeconds).
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// policy is one RateLimit-Policy value and the limits it describes.
type policy struct {
	limits Limits
	value  string
}

// lastPolicy is the policy written last: most requests share their limits
// with the one before, and so its text.
var lastPolicy atomic.Pointer[policy]

// policyText returns the RateLimit-Policy value of l.
func policyText(l Limits) string {
	l.Own = nil
	if p := lastPolicy.Load(); p != nil && p.limits == l {
		return p.value
	}
	var b strings.Builder
	b.WriteString(`"burst";q=`)
	b.WriteString(strconv.Itoa(l.Burst))
	b.WriteString(";w=")
	b.WriteString(strconv.Itoa(seconds(l.BurstWindow)))
	b.WriteString(`, "daily";q=`)
	b.WriteString(strconv.Itoa(l.Daily))
	b.WriteString(";w=")
	b.WriteString(strconv.Itoa(seconds(l.DailyWindow)))
	lastPolicy.Store(&policy{limits: l, value: b.String()})
	return b.String()
}

// nearest returns the window RateLimit names: the one with the smallest
// share of its limit remaining — burst, daily or, when the request has
// one, the quota (until its period ends) — with its remaining count and
// reset. Burst wins a tie with daily; the quota wins a tie with a later
// reset than the other's, so that a request refused for its quota is told
// of the quota's wait.
func (d Decision) nearest() (name string, remaining int, reset time.Duration) {
	l := d.Limits
	name, remaining, reset, limit := "burst", d.BurstRemaining, d.BurstReset, max(l.Burst, 1)
	// Compare remaining/limit without division: daily/Daily < burst/Burst.
	if int64(d.DailyRemaining)*int64(limit) < int64(remaining)*int64(max(l.Daily, 1)) {
		name, remaining, reset, limit = "daily", d.DailyRemaining, d.DailyReset, max(l.Daily, 1)
	}
	if q := d.Quota; q.Set {
		ours, theirs := int64(q.Remaining)*int64(limit), int64(remaining)*int64(max(q.Limit, 1))
		if ours < theirs || ours == theirs && q.Reset > reset {
			name, remaining, reset = "quota", q.Remaining, q.Reset
		}
	}
	return name, remaining, reset
}

// The canonical forms of the draft's header names (what http.Header.Set
// would make of them), so that they need not be worked out per request.
const (
	headerPolicy    = "Ratelimit-Policy"
	headerRateLimit = "Ratelimit"
	// headerQuotaRemaining is X-RateLimit-Quota-Remaining (SPEC §10.5).
	headerQuotaRemaining = "X-Ratelimit-Quota-Remaining"
)

// SetHeaders writes the remaining counts, the IETF draft's RateLimit-Policy
// and RateLimit pair (the window nearest to running out: see nearest),
// and, when the request was refused, Retry-After.
func (d Decision) SetHeaders(h http.Header, names HeaderNames) {
	l := d.Limits
	name, r, t := d.nearest()
	// One string holds the counted values (and, with a quota, its policy
	// and remaining count) and one array the header values; each header
	// gets a slice of it that cannot grow into the next.
	var buf [256]byte
	b := strconv.AppendInt(buf[:0], int64(d.BurstRemaining), 10)
	burstEnd := len(b)
	b = strconv.AppendInt(b, int64(d.DailyRemaining), 10)
	dailyEnd := len(b)
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(r), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, int64(seconds(t)), 10)
	rateEnd := len(b)
	policy := policyText(l)
	q := d.Quota
	if q.Set {
		// The policy with the quota's, and the quota's remaining count,
		// in the same string.
		b = append(b, policy...)
		b = append(b, `, "quota";q=`...)
		b = strconv.AppendInt(b, int64(q.Limit), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, int64(seconds(q.Reset)), 10)
	}
	policyEnd := len(b)
	if q.Set {
		b = strconv.AppendInt(b, int64(q.Remaining), 10)
	}
	counted := string(b)
	v := [...]string{counted[:burstEnd], counted[burstEnd:dailyEnd], policy, counted[dailyEnd:rateEnd], counted[policyEnd:]}
	if q.Set {
		v[2] = counted[rateEnd:policyEnd]
	}
	vs := v[:]
	h[textproto.CanonicalMIMEHeaderKey(names.BurstRemaining)] = vs[0:1:1]
	h[textproto.CanonicalMIMEHeaderKey(names.DailyRemaining)] = vs[1:2:2]
	h[headerPolicy] = vs[2:3:3]
	h[headerRateLimit] = vs[3:4:4]
	if q.Set {
		h[headerQuotaRemaining] = vs[4:5:5]
	}
	if !d.Allowed {
		h.Set("Retry-After", strconv.Itoa(gatehouse.RetryAfterSeconds(d.RetryAfter)))
	}
}

// Strip removes from h every header SetHeaders writes on an admitted
// request: the two remaining counts under these names, RateLimit-Policy,
// RateLimit and X-RateLimit-Quota-Remaining — not Retry-After, which it
// writes only on a refusal. The gateway strips them from an upstream's
// answer to an admitted request, so that the client gets Gatehouse's
// values alone.
func (n HeaderNames) Strip(h http.Header) {
	for _, k := range [...]string{n.BurstRemaining, n.DailyRemaining, headerPolicy, headerRateLimit, headerQuotaRemaining} {
		h.Del(k)
	}
}

// Canonical returns the names in their canonical form (see
// http.CanonicalHeaderKey), in which SetHeaders writes them at no cost.
func (n HeaderNames) Canonical() HeaderNames {
	return HeaderNames{BurstRemaining: textproto.CanonicalMIMEHeaderKey(n.BurstRemaining),
		DailyRemaining: textproto.CanonicalMIMEHeaderKey(n.DailyRemaining)}
}
