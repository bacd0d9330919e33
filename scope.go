package gatehouse

import (
	"fmt"
	"slices"
	"strings"
)

// Scope is one permission a credential may be limited to (SPEC §9.1): a
// built-in scope of Gatehouse's own API, or one of the account's custom
// scopes for the platform's API. A ":write" scope implies the ":read" scope
// of the same resource.
type Scope string

// The built-in scopes.
const (
	ScopeWorkspacesRead   Scope = "workspaces:read"
	ScopeWorkspacesWrite  Scope = "workspaces:write"
	ScopeUsersRead        Scope = "users:read"
	ScopeUsersWrite       Scope = "users:write"
	ScopeCredentialsRead  Scope = "credentials:read"
	ScopeCredentialsWrite Scope = "credentials:write"
	ScopeSettingsRead     Scope = "settings:read"
	ScopeSettingsWrite    Scope = "settings:write"
	ScopeAuditRead        Scope = "audit:read"
	ScopeAccountsWrite    Scope = "accounts:write"
	// ScopeUsageRead reads the account's usage counts (SPEC §10.5).
	ScopeUsageRead Scope = "usage:read"
)

// BuiltinScopes lists the built-in scopes, in a stable order.
var BuiltinScopes = Scopes{
	ScopeWorkspacesRead, ScopeWorkspacesWrite, ScopeUsersRead, ScopeUsersWrite,
	ScopeCredentialsRead, ScopeCredentialsWrite, ScopeSettingsRead, ScopeSettingsWrite,
	ScopeAuditRead, ScopeAccountsWrite, ScopeWebhooksRead, ScopeWebhooksWrite, ScopeUsageRead,
}

// Bounds on scope lists (SPEC §10.8 "Bounded work"): a list a client sends
// holds at most MaxScopes names, each of 1 to MaxScopeLen characters from
// [A-Za-z0-9:._-].
const (
	MaxScopes   = 100
	MaxScopeLen = 64
)

// ValidScopeName reports whether s is a well-formed scope name: 1 to
// MaxScopeLen characters from [A-Za-z0-9:._-].
func ValidScopeName(s string) bool {
	if s == "" || len(s) > MaxScopeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckScopes is the one check of a scope list a client sends (a JSON
// list of a credential, a settings change): the count first, before any
// other work, then each name's shape, then a sort and dedupe in
// O(n log n). field names the list in the error (invalid_request). nil
// stays nil (unrestricted).
func CheckScopes(field string, in []Scope) (Scopes, error) {
	if in == nil {
		return nil, nil
	}
	if len(in) > MaxScopes {
		return nil, tooManyScopes(field)
	}
	for _, s := range in {
		if !ValidScopeName(string(s)) {
			return nil, badScope(field, string(s))
		}
	}
	return NormalizeScopes(in), nil
}

// ParseScopeParam is CheckScopes for a space-separated list (the OAuth
// scope parameter): it stops reading at the first name past MaxScopes, so
// a request of any size costs at most MaxScopes+1 names of work. "" is the
// empty set.
func ParseScopeParam(field, s string) (Scopes, error) {
	out := make([]Scope, 0, 8)
	for rest := s; ; {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			break
		}
		if len(out) == MaxScopes {
			return nil, tooManyScopes(field)
		}
		name, after, _ := strings.Cut(rest, " ")
		if !ValidScopeName(name) {
			return nil, badScope(field, name)
		}
		out, rest = append(out, Scope(name)), after
	}
	return NormalizeScopes(out), nil
}

func tooManyScopes(field string) error {
	return InvalidField(field, fmt.Sprintf("Give at most %d scopes.", MaxScopes), "%s may hold at most %d scopes", field, MaxScopes)
}

func badScope(field, name string) error {
	shown := name
	if len(shown) > 20 {
		shown = shown[:20] + "..."
	}
	return InvalidField(field,
		fmt.Sprintf("Scope names are 1 to %d characters of letters, digits and : . _ -", MaxScopeLen),
		"%s: '%s' is not a scope name (1 to %d characters of A-Z a-z 0-9 : . _ -)", field, safeASCII(shown), MaxScopeLen)
}

// safeASCII keeps the printable ASCII of s (for error messages).
func safeASCII(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

// Scopes is a set of scopes, kept sorted and without duplicates. The nil
// set means "unrestricted": it allows every scope. An empty, non-nil set
// allows none.
type Scopes []Scope

// NormalizeScopes returns ss sorted and deduplicated, nil only for nil, in
// O(n log n).
func NormalizeScopes(ss []Scope) Scopes {
	return normalizeScopes(ss, func(a, b Scope) int { return strings.Compare(string(a), string(b)) })
}

// normalizeScopes is NormalizeScopes with the comparison given (a test
// counts the comparisons).
func normalizeScopes(ss []Scope, cmp func(a, b Scope) int) Scopes {
	if ss == nil {
		return nil
	}
	out := slices.Clone(Scopes(ss))
	if out == nil {
		out = Scopes{}
	}
	slices.SortFunc(out, cmp)
	return slices.Compact(out)
}

// ParseScopes splits a space-separated scope list in the stored form
// (written by Gatehouse itself, so not checked); "" is the empty set.
func ParseScopes(s string) Scopes {
	fields := strings.Fields(s)
	out := make([]Scope, len(fields))
	for i, f := range fields {
		out[i] = Scope(f)
	}
	return NormalizeScopes(out)
}

// Unrestricted reports whether the set allows every scope.
func (ss Scopes) Unrestricted() bool { return ss == nil }

// Allows reports whether the set grants need: the set is unrestricted, it
// holds need, or need is a ":read" scope whose ":write" it holds.
func (ss Scopes) Allows(need Scope) bool {
	if ss == nil || slices.Contains(ss, need) {
		return true
	}
	if res, ok := strings.CutSuffix(string(need), ":read"); ok {
		return slices.Contains(ss, Scope(res+":write"))
	}
	return false
}

// Covers reports whether the set grants every scope of other (an
// unrestricted other is covered only by an unrestricted set).
func (ss Scopes) Covers(other Scopes) bool {
	if ss == nil {
		return true
	}
	if other == nil {
		return false
	}
	for _, s := range other {
		if !ss.Allows(s) {
			return false
		}
	}
	return true
}

// Intersect returns the scopes both sets grant: nil only when both are
// unrestricted.
func (ss Scopes) Intersect(other Scopes) Scopes {
	switch {
	case ss == nil:
		return other
	case other == nil:
		return ss
	}
	out := Scopes{}
	for _, s := range ss {
		if other.Allows(s) {
			out = append(out, s)
		}
	}
	for _, s := range other {
		if ss.Allows(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return NormalizeScopes(out)
}

// String joins the set with spaces, the form of the OAuth scope field and
// of X-Gatehouse-Scopes; the unrestricted set is "".
func (ss Scopes) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, " ")
}

// RoleScopes returns the scopes a principal's roles allow right now, with
// the account's custom scopes allowed to every user, and the platform
// scopes the operator granted the account to the roles its admins mapped
// them to (Settings.RoleScopes): a member reads and writes workspaces and reads users; a developer
// also manages their credentials; an admin (and the anonymous admin of an
// API token) also manages users, credentials and settings and reads the
// audit log; the operator also manages accounts.
func (p *Principal) RoleScopes() Scopes {
	out := Scopes{ScopeWorkspacesRead, ScopeWorkspacesWrite, ScopeUsersRead}
	roles := p.Roles()
	if roles.Has(RoleDeveloper) || roles.Has(RoleAdmin) {
		out = append(out, ScopeCredentialsRead, ScopeCredentialsWrite)
	}
	if roles.Has(RoleAdmin) {
		out = append(out, ScopeUsersWrite, ScopeSettingsRead, ScopeSettingsWrite, ScopeAuditRead, ScopeWebhooksRead, ScopeWebhooksWrite, ScopeUsageRead)
	}
	if p.IsOperator() {
		out = append(out, ScopeAccountsWrite)
	}
	if p.Account != nil {
		out = append(out, p.Account.Settings.CustomScopes...)
		out = append(out, p.Account.Settings.platformScopesOf(roles, p.User == nil)...)
	}
	return NormalizeScopes(out)
}

// EffectiveScopes is what the request may do: the credential's scopes
// intersected with what the principal's roles allow right now, so that a
// demotion narrows every credential of the user on the next request.
func (p *Principal) EffectiveScopes() Scopes {
	if p.sealed != nil {
		return p.sealed.effective
	}
	return p.RoleScopes().Intersect(p.Scopes)
}

// EffectiveScopesText is EffectiveScopes as a space-separated string (the
// OAuth scope parameter's form).
func (p *Principal) EffectiveScopesText() string {
	if p.sealed != nil {
		return p.sealed.text
	}
	return p.EffectiveScopes().String()
}
