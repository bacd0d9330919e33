package gatehouse

import (
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
)

// BuiltinScopes lists the built-in scopes, in a stable order.
var BuiltinScopes = Scopes{
	ScopeWorkspacesRead, ScopeWorkspacesWrite, ScopeUsersRead, ScopeUsersWrite,
	ScopeCredentialsRead, ScopeCredentialsWrite, ScopeSettingsRead, ScopeSettingsWrite,
	ScopeAuditRead, ScopeAccountsWrite,
}

// MaxScopeLen bounds the length of one scope name.
const MaxScopeLen = 100

// ValidScopeName reports whether s is a well-formed scope name: 1 to
// MaxScopeLen printable ASCII characters other than space, '"' and '\'
// (RFC 6749 §3.3's scope-token).
func ValidScopeName(s string) bool {
	if s == "" || len(s) > MaxScopeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Scopes is a set of scopes, kept sorted and without duplicates. The nil
// set means "unrestricted": it allows every scope. An empty, non-nil set
// allows none.
type Scopes []Scope

// NormalizeScopes returns ss sorted and deduplicated, nil only for nil.
func NormalizeScopes(ss []Scope) Scopes {
	if ss == nil {
		return nil
	}
	out := make(Scopes, 0, len(ss))
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// ParseScopes splits a space-separated scope list (the OAuth "scope"
// parameter, the stored form); "" is the empty set.
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
// the account's custom scopes (the platform's own API) allowed to every
// user: a member reads and writes workspaces and reads users; a developer
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
		out = append(out, ScopeUsersWrite, ScopeSettingsRead, ScopeSettingsWrite, ScopeAuditRead)
	}
	if p.IsOperator() {
		out = append(out, ScopeAccountsWrite)
	}
	if p.Account != nil {
		out = append(out, p.Account.Settings.CustomScopes...)
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
