// Package gatehouse holds the domain of the Gatehouse API access server:
// accounts, users, roles, workspaces, credentials, tokens, the authenticated
// Principal, account settings, and the one Error type. It depends on the
// standard library only; every adapter (store, HTTP, rate limiting) imports
// it and never the other way round.
package gatehouse

import (
	"context"
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

// The user statuses.
const (
	StatusActive   UserStatus = "active"
	StatusDisabled UserStatus = "disabled"
)

// Account is a tenant: a customer organisation with its own users,
// credentials and settings.
type Account struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Settings  Settings  `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

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
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// IsAdmin reports whether the user holds the admin role.
func (u *User) IsAdmin() bool { return u.Roles.Has(RoleAdmin) }

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

// AuthMethod names how a request or token was authenticated.
type AuthMethod string

// The ways in (SPEC §3).
const (
	MethodPassword          AuthMethod = "password"
	MethodAPIAccess         AuthMethod = "api_access"
	MethodClientCredentials AuthMethod = "client_credentials"
	MethodAPIToken          AuthMethod = "api_token"
	MethodSession           AuthMethod = "session"
)

// TokenKind distinguishes access tokens from refresh tokens.
type TokenKind string

// The kinds of issued OAuth tokens.
const (
	KindAccess  TokenKind = "access"
	KindRefresh TokenKind = "refresh"
)

// Token is an issued access or refresh token as stored: only the hash of
// the token string is kept. ClientID is the API application or client
// credential that obtained it; FamilyID groups a refresh lineage.
type Token struct {
	ID        string
	AccountID string
	UserID    string
	Kind      TokenKind
	Hash      string
	Method    AuthMethod
	ClientID  string
	FamilyID  string
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
	CreatedAt time.Time
}

// Principal is who a request acts as, after authentication. User is nil for
// the anonymous admin of an API token (SPEC §3.2).
type Principal struct {
	// Account is the principal's account, with its current settings.
	Account   *Account
	AccountID string
	User      *User
	Method    AuthMethod
	// CredentialID is the id of what authenticated the request: the access
	// token, the API token or the session.
	CredentialID string
	// ClientID is the application or client credential behind the token.
	ClientID string
	// ActingAs is the e-mail from the act-as-user header, if any.
	ActingAs string
	// ExpiresAt is when the credential stops working; zero for none.
	ExpiresAt time.Time
}

// Anonymous reports whether the principal is an API token's anonymous admin.
func (p *Principal) Anonymous() bool { return p.User == nil }

// UserID returns the acting user's id, or "" for the anonymous admin.
func (p *Principal) UserID() string {
	if p.User == nil {
		return ""
	}
	return p.User.ID
}

// IsAdmin reports whether the principal has admin rights in its account:
// an admin user, or the anonymous admin of an API token.
func (p *Principal) IsAdmin() bool { return p.User == nil || p.User.IsAdmin() }

// IsOperator reports whether the principal may create accounts.
func (p *Principal) IsOperator() bool { return p.User != nil && p.User.Operator && p.User.IsAdmin() }

// Roles returns the principal's roles; the anonymous admin has admin.
func (p *Principal) Roles() Roles {
	if p.User == nil {
		return Roles{RoleAdmin}
	}
	return p.User.Roles
}

// RateKey is the rate-limit principal: the user for user-bound tokens,
// the API token itself for an API token (SPEC §5).
func (p *Principal) RateKey() string {
	if p.Method == MethodAPIToken {
		return "apitoken:" + p.CredentialID
	}
	return "user:" + p.UserID()
}

type principalKey struct{}

// NewContext returns a context carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal stored by NewContext, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

type clientAddrKey struct{}

// WithClientAddr returns a copy of ctx carrying the client's address, which
// the audit log records.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// ClientAddrFromContext returns the client address stored by WithClientAddr,
// or "".
func ClientAddrFromContext(ctx context.Context) string {
	s, _ := ctx.Value(clientAddrKey{}).(string)
	return s
}

// APIApplication is an admin's "Enable API Access" application (SPEC §3.1):
// at most one per user; its tokens carry its client id.
type APIApplication struct {
	ID                 string    `json:"-"`
	AccountID          string    `json:"-"`
	UserID             string    `json:"-"`
	ClientID           string    `json:"client_id"`
	AccessTokenTTLDays int       `json:"access_token_ttl_days"`
	CreatedAt          time.Time `json:"created_at"`
}

// Credential is a developer's client credential (SPEC §3.3): a client id
// and a secret stored only as a digest.
type Credential struct {
	ID         string    `json:"id"`
	AccountID  string    `json:"-"`
	UserID     string    `json:"user_id"`
	Name       string    `json:"name"`
	ClientID   string    `json:"client_id"`
	SecretHash string    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
}

// APIToken is a named static token of an account (SPEC §3.2). Prefix is a
// short, non-secret beginning of the token for people to recognise it.
type APIToken struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"-"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}
