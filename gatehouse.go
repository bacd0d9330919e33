// Package gatehouse holds the domain of the Gatehouse API access server:
// accounts, users, roles, workspaces, credentials, tokens, the authenticated
// Principal, account settings, and the one Error type. It depends on the
// standard library only; every adapter (store, HTTP, rate limiting) imports
// it and never the other way round.
package gatehouse

import (
	"slices"
	"strings"
	"time"
)

// Role is a permission a user holds within their account.
type Role string

// The roles a user can hold. A user with no role is a plain member.
const (
	RoleAdmin     Role = "admin"
	RoleDeveloper Role = "developer"
)

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool { return r == RoleAdmin || r == RoleDeveloper }

// Roles is a set of roles, kept sorted and without duplicates.
type Roles []Role

// NormalizeRoles returns rs sorted and deduplicated; it never returns nil.
func NormalizeRoles(rs []Role) Roles {
	out := make(Roles, 0, len(rs))
	for _, r := range rs {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Has reports whether the set contains r.
func (rs Roles) Has(r Role) bool { return slices.Contains(rs, r) }

// String joins the roles with commas, the form used in the store and in
// identity headers.
func (rs Roles) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, ",")
}

// ParseRoles splits a comma-separated role list as produced by Roles.String.
func ParseRoles(s string) Roles {
	if s == "" {
		return Roles{}
	}
	parts := strings.Split(s, ",")
	rs := make([]Role, len(parts))
	for i, p := range parts {
		rs[i] = Role(p)
	}
	return NormalizeRoles(rs)
}

// UserStatus is whether a user may sign in and use tokens.
type UserStatus string

// The user statuses. A deleted user is never shown or found again: the
// row stays, under its id, only so that the audit log and what it
// created keep naming it; its address is free for a new user.
const (
	StatusActive   UserStatus = "active"
	StatusDisabled UserStatus = "disabled"
	StatusDeleted  UserStatus = "deleted"
)

// AccountStatus is whether an account's users and credentials may be used.
type AccountStatus string

// The account statuses: a suspended account's every credential and session
// is refused until it is active again.
const (
	AccountActive    AccountStatus = "active"
	AccountSuspended AccountStatus = "suspended"
)

// Account is a tenant: a customer organisation with its own users,
// credentials and settings.
type Account struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Status    AccountStatus `json:"status"`
	Settings  Settings      `json:"-"`
	CreatedAt time.Time     `json:"created_at"`
}

// Active reports whether the account may be used.
func (a *Account) Active() bool { return a.Status != AccountSuspended }

// User belongs to exactly one account. Email is unique across the server,
// compared case-insensitively. PasswordHash is empty for users without a
// password and is never serialised.
type User struct {
	ID           string     `json:"id"`
	AccountID    string     `json:"account_id"`
	Email        string     `json:"email"`
	Name         string     `json:"name"`
	Status       UserStatus `json:"status"`
	Roles        Roles      `json:"roles"`
	Operator     bool       `json:"operator"`
	PasswordHash string     `json:"-"`
	// Epoch advances whenever the user is disabled, PasswordEpoch whenever
	// their password changes (or they are disabled): a token or session
	// works only while the epochs it was issued under are current.
	Epoch         int64     `json:"-"`
	PasswordEpoch int64     `json:"-"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Plan is what is set on the user (SPEC §10.5), where it was read.
	Plan
}

// IsAdmin reports whether the user holds the admin role.
func (u *User) IsAdmin() bool { return u.Roles.Has(RoleAdmin) }

// EmailKey is the one normal form of an e-mail address for look-ups and
// uniqueness: trimmed and lower-cased.
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Active reports whether the user may authenticate.
func (u *User) Active() bool { return u.Status == StatusActive }

// Workspace is the built-in sample resource that shows permissions at work.
// OwnerID is empty for workspaces made by an anonymous admin.
type Workspace struct {
	ID          string    `json:"id"`
	AccountID   string    `json:"-"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	OwnerID     string    `json:"owner_id"`
	CreatedAt   time.Time `json:"created_at"`
}

type UserFilter struct {
	// Query matches a part of the e-mail address or the name, in any case.
	Query string
	// Role is RoleAdmin, RoleDeveloper, RoleMember (users without a role)
	// or "" for any.
	Role Role
	// Status is StatusActive, StatusDisabled or "" for any.
	Status UserStatus
}

// RoleMember names, in filters only, the users who hold no role.
const RoleMember Role = "member"
