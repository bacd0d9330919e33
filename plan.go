package gatehouse

import (
	"encoding/json"
	"net/netip"
	"sync/atomic"
	"time"
)

// Plan is what is set on one credential (an API token, a client
// credential, an API access application) or one user beyond its kind's
// own fields (SPEC §10.5): the client addresses it may be used from, and
// the caller's own description of it. The zero value sets nothing: usable
// from anywhere, no metadata, no external id.
type Plan struct {
	// AllowedIPs are the networks (CIDR, or one address) requests through
	// the credential may come from; empty allows every address. Users
	// have none.
	AllowedIPs []string `json:"allowed_ips,omitempty"`
	// Metadata is a JSON object of the caller's (at most MaxMetadataBytes);
	// nil for none.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// ExternalID is the caller's own id for the subject (at most
	// MaxExternalIDLen characters).
	ExternalID string `json:"external_id,omitempty"`
	// RateLimit, when set, is a budget of the subject's own, counted
	// beside the account's (SPEC §10.5): every request through the
	// credential, or made as the user, must have room in it too.
	RateLimit *RateLimitSettings `json:"rate_limit,omitempty"`
	// Quota, when set, bounds the requests of each calendar period (UTC),
	// beside every rate limit.
	Quota *Quota `json:"quota,omitempty"`
}

// QuotaPeriod is the calendar period a Quota counts in.
type QuotaPeriod string

// The quota periods, in UTC.
const (
	QuotaDay   QuotaPeriod = "day"
	QuotaMonth QuotaPeriod = "month"
)

// Quota is at most Limit requests per Period, the count starting again at
// the period's start (UTC).
type Quota struct {
	Limit  int         `json:"limit"`
	Period QuotaPeriod `json:"period"`
	// Remaining is, where a quota is read back (SPEC §10.5), how many
	// requests are left of the current period; nil elsewhere.
	Remaining *int `json:"remaining,omitempty"`
}

// QuotaUse is where one quota budget stands after an admitted request:
// its limiter key ("quota:<subject>@<period>"), its limit and the
// requests left of the period.
type QuotaUse struct {
	Key              string
	Limit, Remaining int
}

// MaxQuotaLimit bounds a quota's limit.
const MaxQuotaLimit = 1_000_000_000

// Current returns the name of the period that holds now ("2026-12-03" or
// "2026-12") and when it ends.
func (q Quota) Current(now time.Time) (name string, end time.Time) {
	p := q.period(now)
	return p.name, p.end
}

// period returns the period that holds now.
func (q Quota) period(now time.Time) *period {
	month := q.Period == QuotaMonth
	last := &lastPeriod[0]
	if month {
		last = &lastPeriod[1]
	}
	// Every request with a quota asks; the answer changes once a period.
	if p := last.Load(); p != nil && !now.Before(p.start) && now.Before(p.end) {
		return p
	}
	now = now.UTC()
	y, m, d := now.Date()
	p := &period{start: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), end: time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC), name: now.Format(time.DateOnly)}
	if month {
		p = &period{start: time.Date(y, m, 1, 0, 0, 0, 0, time.UTC), end: time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC), name: now.Format("2006-01")}
	}
	last.Store(p)
	return p
}

// period is a quota period worked out: [start, end) and its name.
type period struct {
	start, end time.Time
	name       string
}

// lastPeriod holds the day and the month Current last worked out.
var lastPeriod [2]atomic.Pointer[period]

// The bounds of a Plan (SPEC §10.5).
const (
	MaxMetadataBytes = 4096
	MaxExternalIDLen = 128
	MaxAllowedIPs    = 100
)

// Empty reports whether p sets nothing.
func (p Plan) Empty() bool {
	return len(p.AllowedIPs) == 0 && len(p.Metadata) == 0 && p.ExternalID == "" && p.RateLimit == nil && p.Quota == nil
}

// PlanKind is the kind of what a Plan is set on.
type PlanKind string

// The kinds of plan subjects.
const (
	PlanUser           PlanKind = "user"
	PlanAPIToken       PlanKind = "api_token"
	PlanCredential     PlanKind = "client_credential"
	PlanAPIApplication PlanKind = "api_application"
	PlanApp            PlanKind = "app"
)

// AllowList is a parsed allow-list of client networks. A nil AllowList
// allows every address; an AllowList is safe for concurrent use.
type AllowList []netip.Prefix

// Allows reports whether the client address addr (as httpx decided it)
// is in one of the networks. An address that does not parse is allowed
// only by a nil AllowList.
func (l AllowList) Allows(addr string) bool {
	if l == nil {
		return true
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseAllowList parses networks as stored in a Plan (CIDR prefixes or
// single addresses, IPv4 or IPv6); nil for none.
func ParseAllowList(networks []string) (AllowList, error) {
	if len(networks) == 0 {
		return nil, nil
	}
	out := make(AllowList, 0, len(networks))
	for _, n := range networks {
		p, err := ParseNetwork(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParseNetwork parses one allow-list entry: a CIDR prefix, or one address
// (a /32 or /128). The prefix is returned masked; an IPv4-mapped IPv6
// address is its IPv4 address.
func ParseNetwork(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, Invalid("%q has a zone; allowed_ips takes addresses and CIDR prefixes", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, Invalid("%q is not an IP address or a CIDR prefix", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, Invalid("%q is not an IP address or a CIDR prefix", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// CheckAddr returns ip_not_allowed when the principal's credential may
// not be used from the client address addr (SPEC §10.5), nil otherwise.
func (p *Principal) CheckAddr(addr string) error {
	if p.AllowedIPs.Allows(addr) {
		return nil
	}
	return Errorf(EIPNotAllowed, "This credential may not be used from this address")
}

// PlanBudget is a budget of requests with limits of its own: a
// credential's or a user's plan's rate limit (SPEC §10.5), counted beside
// the account's budgets. Key names it within its account.
type PlanBudget struct {
	Key    string
	Limits RateLimitSettings
	// Quota, when set, makes the budget a quota's instead (Limits unused):
	// Key then names the plan, and the limiter counts each period apart.
	Quota *Quota
	// QuotaEnds is, for a request's quota budget (ratelimit.ForPrincipal),
	// when the period its Key names ends; zero elsewhere.
	QuotaEnds time.Time
	// QuotaCharged is, for a request's quota budget, what was counted in
	// its period before the limiter began counting it (what a single
	// node's store kept across a restart); the limiter allows only the
	// rest.
	QuotaCharged int
}
