// Package gatehouse holds the domain of the Gatehouse API access server:
// accounts, users, roles, workspaces, credentials, tokens, the authenticated
// Principal, account settings, and the one Error type. It depends on the
// standard library only; every adapter (store, HTTP, rate limiting) imports
// it and never the other way round.
package gatehouse

import (
	"slices"
	"strings"
	"sync/atomic"
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
	// UserEpoch and PasswordEpoch are the user's epochs when the token was
	// issued (see User.Epoch).
	UserEpoch, PasswordEpoch int64
	// Scopes narrows the token below its credential's scopes (OAuth
	// "scope"); nil means "as the credential".
	Scopes Scopes
}

// PasswordDerived reports whether the token came from the user's password,
// so that a password change ends it.
func (t *Token) PasswordDerived() bool { return t.Method == MethodPassword }

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
	// CredentialName is the API token's name, when an API token
	// authenticated the request (for the audit log).
	CredentialName string
	// ClientID is the application or client credential behind the token.
	ClientID string
	// ActingAs is the e-mail from the act-as-user header, if any.
	ActingAs string
	// ExpiresAt is when the credential stops working; zero for none.
	ExpiresAt time.Time
	// CredentialExpires is when the credential the request came through
	// stops working — the API token, or the client credential of a
	// client-credentials token, bounded by every API token it was minted
	// through — nil when it does not expire. Nobody acts on a credential
	// that outlives their own (SPEC §10.8).
	CredentialExpires *time.Time
	// Scopes limits what the credential may do (SPEC §9.1); nil means
	// unrestricted. What a request may do is EffectiveScopes.
	Scopes Scopes
	// Basis is, in a cluster, the state of the account's shard of the
	// shared cache generation that this principal's validity was read
	// under (zero outside a cluster, or when the node had not seen that
	// shard yet). A principal taken from the cache on the hot path is
	// served only once the rate limiter has found the shard still in this
	// state; otherwise it is validated again (see the service package).
	Basis ClusterState

	// sealed holds what Seal worked out.
	sealed *sealedPrincipal
}

type sealedPrincipal struct {
	effective Scopes
	text      string
	roles     string
	budgets   []string
	// answer is what Answer made, once.
	answer atomic.Pointer[[]byte]
}

// Answer returns render's answer for p, rendered once per sealed principal
// and shared by the requests that use it: for an answer that is a function
// of the principal alone (GET /v1/me). A process must use one render only.
// An unsealed principal's answer is rendered every time.
func (p *Principal) Answer(render func(*Principal) []byte) []byte {
	if p.sealed == nil {
		return render(p)
	}
	if b := p.sealed.answer.Load(); b != nil {
		return *b
	}
	b := render(p)
	p.sealed.answer.Store(&b)
	return b
}

// Seal works out once what is derived from p's fields — its effective
// scopes, its budgets' names — so that the requests sharing a cached
// principal do not, and returns p. Call it when p is complete: a sealed
// principal must not be changed, and the slices its methods return must
// not be modified.
func (p *Principal) Seal() *Principal {
	eff := p.RoleScopes().Intersect(p.Scopes)
	p.sealed = &sealedPrincipal{effective: eff, text: eff.String(), roles: p.Roles().String(), budgets: p.budgets()}
	return p
}

// ClusterState is the state of one shard of a cluster's shared cache
// generation: a counter that every revoking change advances, and the
// epoch it counts in — a random id made whenever the counter had to be
// created anew (after the shared store lost its memory). Two reads of one
// shard that return the same state have no revoking change announced
// between them. The zero value is never a shard's state.
type ClusterState struct {
	Epoch string
	N     uint64
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

// IsOperator reports whether the principal may act as the operator
// (create and manage accounts, change the operator): the operator-admin
// themselves, never through an API token acting as them.
func (p *Principal) IsOperator() bool {
	return p.Method != MethodAPIToken && p.User != nil && p.User.Operator && p.User.IsAdmin()
}

// Roles returns the principal's roles; the anonymous admin has admin.
func (p *Principal) Roles() Roles {
	if p.User == nil {
		return Roles{RoleAdmin}
	}
	return p.User.Roles
}

// RolesText returns Roles().String(), worked out once for a sealed
// principal.
func (p *Principal) RolesText() string {
	if p.sealed != nil {
		return p.sealed.roles
	}
	return p.Roles().String()
}

// RateKind is what a RateKey names.
type RateKind string

// The kinds of rate keys.
const (
	RateKindUser     RateKind = "user"
	RateKindAPIToken RateKind = "apitoken"
)

// RateKey names one budget of requests (SPEC §5): a user's, or an API
// token's. IDs are unique across accounts.
type RateKey struct {
	Kind RateKind
	ID   string
}

// String returns the key as stored, "kind:id" (e.g. "user:usr_…"): the
// rate limiter's key and the usage counts' principal. ParseRateKey reads
// it back.
func (k RateKey) String() string { return string(k.Kind) + ":" + k.ID }

// ParseRateKey returns the RateKey whose String is s; ok is false when s
// is not one.
func ParseRateKey(s string) (k RateKey, ok bool) {
	kind, id, found := strings.Cut(s, ":")
	switch RateKind(kind) {
	case RateKindUser, RateKindAPIToken:
		return RateKey{Kind: RateKind(kind), ID: id}, found
	}
	return RateKey{}, false
}

// RateKeys returns every budget a request of p counts against (SPEC §5):
// the user for user-bound credentials, the API token for an API token's
// anonymous admin, and both the user and the API token for an API token
// acting as a user. A request is admitted only if every one of them has
// room, and then counts against each, so that one user has one budget
// however many credentials act as them.
func (p *Principal) RateKeys() []RateKey {
	switch {
	case p.Method != MethodAPIToken:
		return []RateKey{{RateKindUser, p.UserID()}}
	case p.User == nil:
		return []RateKey{{RateKindAPIToken, p.CredentialID}}
	}
	return []RateKey{{RateKindUser, p.User.ID}, {RateKindAPIToken, p.CredentialID}}
}

// Budgets returns the stored names (RateKey.String) of p's RateKeys: the
// rate limiter's keys.
func (p *Principal) Budgets() []string {
	if p.sealed != nil {
		return p.sealed.budgets
	}
	return p.budgets()
}

func (p *Principal) budgets() []string {
	keys := p.RateKeys()
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.String()
	}
	return names
}

// APIApplication is an admin's "Enable API Access" application (SPEC §3.1):
// at most one per user; its tokens carry its client id.
type APIApplication struct {
	ID                 string     `json:"-"`
	AccountID          string     `json:"-"`
	UserID             string     `json:"-"`
	ClientID           string     `json:"client_id"`
	AccessTokenTTLDays int        `json:"access_token_ttl_days"`
	Scopes             Scopes     `json:"scopes"`
	CreatedBy          string     `json:"-"`
	LastUsedAt         *time.Time `json:"last_used_at"`
	CreatedAt          time.Time  `json:"created_at"`
}

// Credential is a developer's client credential (SPEC §3.3): a client id
// and a secret stored only as a digest.
type Credential struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"-"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	ClientID   string     `json:"client_id"`
	SecretHash string     `json:"-"`
	Scopes     Scopes     `json:"scopes"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Enabled    bool       `json:"enabled"`
	LastUsedAt *time.Time `json:"last_used_at"`
	CreatedAt  time.Time  `json:"created_at"`
	// CreatedBy is the API token the credential was minted through, if any.
	CreatedBy string `json:"-"`
	// PrevSecretHash is a rolled-over secret still accepted until
	// PrevSecretExpiresAt.
	PrevSecretHash      string     `json:"-"`
	PrevSecretExpiresAt *time.Time `json:"-"`
	// RevokedAt and RevokedReason mark a credential revoked for good
	// (RevokedLeaked: its secret was reported found); nothing brings it
	// back, and it stays listed so that its owner can roll it.
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
}

// RevokedLeaked is the revoked_reason of a credential or API token whose
// secret was reported found (SPEC §10.1).
const RevokedLeaked = "leaked"

// Usable reports whether the credential may authenticate at now: enabled,
// not revoked and not expired.
func (c *Credential) Usable(now time.Time) bool {
	return c.Enabled && c.RevokedAt == nil && (c.ExpiresAt == nil || now.Before(*c.ExpiresAt))
}

// APIToken is a named static token of an account (SPEC §3.2). Prefix is a
// short, non-secret beginning of the token for people to recognise it.
type APIToken struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"-"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Hash       string     `json:"-"`
	Scopes     Scopes     `json:"scopes"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Enabled    bool       `json:"enabled"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	// CreatedBy is the API token this one was minted through, if any.
	CreatedBy string `json:"-"`
	// RevokedAt and RevokedReason: as for Credential.
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
	// Canary marks a token that never authorises: every use is audited
	// (SPEC §10.1). It is never shown in answers to whoever holds it.
	Canary bool `json:"canary,omitempty"`
}

// Usable reports whether the API token may authenticate at now: enabled,
// not revoked, not a canary and not expired.
func (t *APIToken) Usable(now time.Time) bool {
	return t.Enabled && t.RevokedAt == nil && !t.Canary && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// UserFilter narrows a list of users; the zero value matches every user.
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
