package gatehouse

import (
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

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
	// CredentialLine is, for an API token, the id its budgets count under
	// (APIToken.Line): the first token of its line of rolls. "" means
	// CredentialID.
	CredentialLine string
	// ClientID is the application or client credential behind the token.
	ClientID string
	// MintedThrough is, for a token of a client credential or API access
	// application minted through an API token, that API token's id ("" for
	// none): such a token never has the operator's powers (IsOperator).
	MintedThrough string
	// Resource is the resource the access token is bound to (RFC 8707),
	// in ResourceKey's form; "" when it is bound to none.
	Resource string
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
	// Rests is, in a cluster, the slots of the subjects the principal
	// rests on (SubjectSlots of its account, user, credential and token
	// family): a revocation rung since its Basis that touches none of
	// them leaves it as valid as it was.
	Rests string
	// AllowedIPs are the client networks the credential may be used from
	// — its own, or for a token, those of the credential it was issued to
	// (SPEC §10.5); nil allows every address.
	AllowedIPs AllowList
	// ExternalID and Metadata are the credential's (its Plan's), or, when
	// it has none, its user's; for forward auth, the gateway and
	// introspection.
	ExternalID string
	Metadata   json.RawMessage
	// PlanBudgets are the budgets of the rate limits set on the
	// credential and on the user (SPEC §10.5), beside RateKeys.
	PlanBudgets []PlanBudget

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
	// periods is what PeriodBudgets made, for the periods it holds.
	periods atomic.Pointer[periodBudgets]
}

// periodBudgets are a principal's PlanBudgets named for the quota periods
// that hold [start, end).
type periodBudgets struct {
	start, end time.Time
	budgets    []PlanBudget
}

// PeriodBudgets returns p's PlanBudgets with each quota's Key named after
// the period that holds now ("quota:crd_x@2026-12"), so that each period
// counts apart and a new one starts from nothing, and its QuotaEnds set to
// that period's end. It is a pointer so that a comparable value can hold
// it. A sealed principal works this out once per period and shares it:
// the budgets must not be modified.
func (p *Principal) PeriodBudgets(now time.Time) *[]PlanBudget {
	if p.sealed != nil {
		if c := p.sealed.periods.Load(); c != nil && !now.Before(c.start) && now.Before(c.end) {
			return &c.budgets
		}
	}
	var c *periodBudgets
	for i, b := range p.PlanBudgets {
		if b.Quota == nil {
			continue
		}
		if c == nil {
			c = &periodBudgets{budgets: slices.Clone(p.PlanBudgets)}
		}
		q := b.Quota.period(now)
		c.budgets[i].Key = b.Key + "@" + q.name
		c.budgets[i].QuotaEnds = q.end
		if c.start.IsZero() || q.start.After(c.start) {
			c.start = q.start
		}
		if c.end.IsZero() || q.end.Before(c.end) {
			c.end = q.end
		}
	}
	if c == nil {
		return &p.PlanBudgets
	}
	if p.sealed != nil {
		p.sealed.periods.Store(c)
	}
	return &c.budgets
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

// ClusterState is the state of one shard of a cluster's doorbell: a value
// that every revoking change sets to a fresh random one, and the epoch it
// is kept in — a random id made whenever the shard had to be created anew
// (after the shared store lost its memory). Two reads of one shard that
// return the same state have no revoking change rung between them — when
// they went on the same connections: Link is how many connections the
// node had opened to the shared store, after losing one, when the answer
// came (cluster.Links), and a state read on newer ones is another state
// whatever its epoch and value (a failover or a restart may have brought
// an older state back). The zero value is never a shard's state.
type ClusterState struct {
	Epoch string
	N     uint64
	Link  uint64
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
// themselves, never through an API token acting as them, nor through a
// credential minted through one (MintedThrough: an admin's API token
// acting as the operator may make the operator a client credential or
// API access, which must not carry the operator's powers).
func (p *Principal) IsOperator() bool {
	return p.Method != MethodAPIToken && p.MintedThrough == "" && p.User != nil && p.User.Operator && p.User.IsAdmin()
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
		return []RateKey{{RateKindAPIToken, p.credentialBudget()}}
	}
	return []RateKey{{RateKindUser, p.User.ID}, {RateKindAPIToken, p.credentialBudget()}}
}

// credentialBudget is the id p's credential's budgets count under:
// CredentialLine, or CredentialID when it has none.
func (p *Principal) credentialBudget() string {
	if p.CredentialLine != "" {
		return p.CredentialLine
	}
	return p.CredentialID
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
