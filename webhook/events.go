package webhook

import (
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Types is the catalogue of event types (SPEC §10.2).
var Types = []string{
	"user.created", "user.updated", "user.disabled", "user.password_changed",
	"developer.added", "developer.removed",
	"api_access.enabled", "api_access.revoked",
	"credential.created", "credential.updated", "credential.rolled", "credential.deleted",
	"credential.expiring", "credential.expired", "credential.leaked", "credential.canary_used",
	"refresh_token.reuse_detected", "extension.changed", "settings.changed",
	"signin.throttled", "quota.threshold", "authorization.granted", "authorization.revoked",
	"account.suspended", "webhook.test",
}

// MaxPatterns bounds an endpoint's list of event patterns.
const MaxPatterns = 64

// Match reports whether an endpoint subscribed with patterns receives an
// event of type typ: a pattern is an exact type, "prefix.*" or "*".
func Match(patterns []string, typ string) bool {
	for _, p := range patterns {
		if p == "*" || p == typ {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, ".*"); ok && strings.HasPrefix(typ, prefix+".") {
			return true
		}
	}
	return false
}

// CheckPatterns checks an endpoint's event patterns: 1 to MaxPatterns,
// each an event type of the catalogue, "prefix.*" for a prefix of one, or
// "*". It returns them without repeats, in the order given.
func CheckPatterns(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, gatehouse.InvalidField("events", "Choose at least one event.", "events must name at least one event type or pattern")
	}
	if len(patterns) > MaxPatterns {
		return nil, gatehouse.InvalidField("events", "Choose fewer events.", "events holds at most %d patterns", MaxPatterns)
	}
	out := make([]string, 0, len(patterns))
	for _, p := range patterns {
		if !knownPattern(p) {
			if len(p) > 64 {
				p = p[:64] + "…"
			}
			return nil, gatehouse.InvalidField("events", "Use event types such as credential.leaked, patterns such as credential.*, or *.",
				"events: %q is not an event type, a prefix.* pattern or *", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func knownPattern(p string) bool {
	if p == "*" || slices.Contains(Types, p) {
		return true
	}
	prefix, ok := strings.CutSuffix(p, ".*")
	if !ok || prefix == "" {
		return false
	}
	for _, t := range Types {
		if strings.HasPrefix(t, prefix+".") {
			return true
		}
	}
	return false
}
