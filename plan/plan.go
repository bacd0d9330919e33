// Package plan holds the rules of what is set on a credential or a user
// beyond its own fields (SPEC §10.5, gatehouse.Plan): which client
// addresses may use it, its metadata and its external id — how a patch
// changes one and what a valid one is. The service applies them inside
// the transaction that saves the subject; the hot path reads the result
// from the principal (gatehouse.Principal.AllowedIPs).
package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// Patch is a partial update of a gatehouse.Plan; nil fields stay as they
// are. An empty list clears the allow-list, an empty object the metadata
// and an empty string the external id.
type Patch struct {
	AllowedIPs *[]string        `json:"allowed_ips"`
	Metadata   *json.RawMessage `json:"metadata"`
	ExternalID *string          `json:"external_id"`
	// RateLimit sets the subject's own rate limit (all three fields), or
	// with null removes it.
	RateLimit RateLimitPatch `json:"rate_limit"`
	// Quota sets the subject's quota, or with null removes it.
	Quota QuotaPatch `json:"quota"`
}

// QuotaPatch is the quota of a Patch: Set when the field was sent, Value
// nil when it was null.
type QuotaPatch struct {
	Set   bool
	Value *gatehouse.Quota
}

// UnmarshalJSON reads null or an object of limit and period.
func (q *QuotaPatch) UnmarshalJSON(b []byte) error {
	q.Set, q.Value = true, nil
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var v struct {
		Limit  *int                  `json:"limit"`
		Period gatehouse.QuotaPeriod `json:"period"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Limit == nil {
		return gatehouse.InvalidField("quota", "Give limit and period", "quota must be null or an object of limit (a whole number) and period")
	}
	q.Value = &gatehouse.Quota{Limit: *v.Limit, Period: v.Period}
	return nil
}

// RateLimitPatch is the rate_limit of a Patch: Set when the field was
// sent, Value nil when it was null.
type RateLimitPatch struct {
	Set   bool
	Value *gatehouse.RateLimitSettings
}

// UnmarshalJSON reads null or an object with exactly daily, burst and
// burst_window_seconds.
func (r *RateLimitPatch) UnmarshalJSON(b []byte) error {
	r.Set, r.Value = true, nil
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var v struct {
		Daily              *int `json:"daily"`
		Burst              *int `json:"burst"`
		BurstWindowSeconds *int `json:"burst_window_seconds"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Daily == nil || v.Burst == nil || v.BurstWindowSeconds == nil {
		return gatehouse.InvalidField("rate_limit", "Give daily, burst and burst_window_seconds",
			"rate_limit must be null or an object of daily, burst and burst_window_seconds, each a whole number")
	}
	r.Value = &gatehouse.RateLimitSettings{Daily: *v.Daily, Burst: *v.Burst, BurstWindowSeconds: *v.BurstWindowSeconds}
	return nil
}

// Empty reports whether the patch changes nothing.
func (p Patch) Empty() bool {
	return p.AllowedIPs == nil && p.Metadata == nil && p.ExternalID == nil && !p.RateLimit.Set && !p.Quota.Set
}

// Apply returns pl changed by p, checked and in its normal form, for a
// subject of kind (users take no allowed_ips). It returns invalid_request
// errors naming the field at fault.
func Apply(kind gatehouse.PlanKind, pl gatehouse.Plan, p Patch) (gatehouse.Plan, error) {
	if p.AllowedIPs != nil {
		if kind == gatehouse.PlanUser && len(*p.AllowedIPs) > 0 {
			return pl, gatehouse.InvalidField("allowed_ips", "Set allowed addresses on a credential", "allowed_ips is set on credentials, not users")
		}
		ips, err := normalIPs(*p.AllowedIPs)
		if err != nil {
			return pl, err
		}
		pl.AllowedIPs = ips
	}
	if p.Metadata != nil {
		md, err := normalMetadata(*p.Metadata)
		if err != nil {
			return pl, err
		}
		pl.Metadata = md
	}
	if p.ExternalID != nil {
		if err := checkExternalID(*p.ExternalID); err != nil {
			return pl, err
		}
		pl.ExternalID = *p.ExternalID
	}
	if p.RateLimit.Set {
		if err := checkRateLimit(p.RateLimit.Value); err != nil {
			return pl, err
		}
		pl.RateLimit = p.RateLimit.Value
	}
	if p.Quota.Set {
		if q := p.Quota.Value; q != nil {
			if q.Limit < 1 || q.Limit > gatehouse.MaxQuotaLimit {
				return pl, gatehouse.InvalidField("quota.limit", fmt.Sprintf("Enter a whole number from 1 to %d.", gatehouse.MaxQuotaLimit),
					"quota.limit must be between 1 and %d", gatehouse.MaxQuotaLimit)
			}
			if q.Period != gatehouse.QuotaDay && q.Period != gatehouse.QuotaMonth {
				return pl, gatehouse.InvalidField("quota.period", "Choose day or month.", "quota.period must be day or month")
			}
		}
		pl.Quota = p.Quota.Value
	}
	return pl, nil
}

// normalIPs checks an allow-list and returns it masked, deduplicated, in
// its given order; nil for an empty one.
func normalIPs(in []string) ([]string, error) {
	if len(in) > gatehouse.MaxAllowedIPs {
		return nil, gatehouse.InvalidField("allowed_ips", "Too many networks", "allowed_ips holds at most %d networks", gatehouse.MaxAllowedIPs)
	}
	var out []string
	for _, s := range in {
		if len(s) > 64 {
			return nil, gatehouse.InvalidField("allowed_ips", "Not an address or CIDR prefix", "allowed_ips: an entry is too long")
		}
		p, err := gatehouse.ParseNetwork(s)
		if err != nil {
			e := err.(*gatehouse.Error)
			e.Field, e.Message = "allowed_ips", "allowed_ips: "+e.Message
			return nil, e
		}
		n := p.String()
		dup := false
		for _, o := range out {
			dup = dup || o == n
		}
		if !dup {
			out = append(out, n)
		}
	}
	return out, nil
}

// normalMetadata checks that raw is a JSON object of at most
// gatehouse.MaxMetadataBytes once compacted, and returns it compacted;
// nil for an empty object or null.
func normalMetadata(raw json.RawMessage) (json.RawMessage, error) {
	bad := func(format string, args ...any) error {
		return gatehouse.InvalidField("metadata", "Metadata must be a JSON object of at most 4 KiB", format, args...)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, bad("metadata is not valid JSON")
	}
	b := buf.Bytes()
	if bytes.Equal(b, []byte("null")) || bytes.Equal(b, []byte("{}")) {
		return nil, nil
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, bad("metadata must be a JSON object")
	}
	if len(b) > gatehouse.MaxMetadataBytes {
		return nil, bad("metadata is %d bytes; at most %d", len(b), gatehouse.MaxMetadataBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, bad("metadata must be a JSON object")
	}
	// Metadata is kept as written and echoed back (lists, introspection,
	// forward auth): what a strict client could not decode is refused.
	if !portable(obj) {
		return nil, bad("metadata holds a number out of a double's range")
	}
	if gatehouse.LoneSurrogate(b) {
		return nil, bad("metadata holds a \\u escape of half a UTF-16 pair")
	}
	return json.RawMessage(bytes.Clone(b)), nil
}

// portable reports whether every number in v, a JSON value decoded with
// UseNumber, fits a 64-bit float (as every JSON decoder can read it).
func portable(v any) bool {
	switch v := v.(type) {
	case json.Number:
		_, err := strconv.ParseFloat(string(v), 64)
		return err == nil
	case map[string]any:
		for _, e := range v {
			if !portable(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !portable(e) {
				return false
			}
		}
	}
	return true
}

// checkExternalID checks an external id: at most MaxExternalIDLen
// characters of valid UTF-8 without control characters.
func checkExternalID(s string) error {
	bad := func(format string, args ...any) error {
		return gatehouse.InvalidField("external_id", "At most 128 characters, no control characters", format, args...)
	}
	if !utf8.ValidString(s) {
		return bad("external_id is not valid UTF-8")
	}
	if utf8.RuneCountInString(s) > gatehouse.MaxExternalIDLen {
		return bad("external_id is longer than %d characters", gatehouse.MaxExternalIDLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bad("external_id contains a control character")
		}
	}
	return nil
}

// checkRateLimit checks a plan's rate limit against the bounds of the
// account's (nil: none).
func checkRateLimit(rl *gatehouse.RateLimitSettings) error {
	if rl == nil {
		return nil
	}
	for _, f := range []struct {
		name      string
		v, lo, hi int
	}{
		{"rate_limit.daily", rl.Daily, 1, gatehouse.MaxDailyLimit},
		{"rate_limit.burst", rl.Burst, 1, gatehouse.MaxBurstLimit},
		{"rate_limit.burst_window_seconds", rl.BurstWindowSeconds, 1, gatehouse.MaxBurstWindowSeconds},
	} {
		if f.v < f.lo || f.v > f.hi {
			return gatehouse.InvalidField(f.name, fmt.Sprintf("Enter a whole number from %d to %d.", f.lo, f.hi),
				"%s must be between %d and %d", f.name, f.lo, f.hi)
		}
	}
	return nil
}
