package service

import (
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
)

// grantScopes returns the scopes a new credential made by p gets. Asked
// for (requested not nil), each must be a built-in scope, one of the
// account's custom scopes or a platform scope granted to it (invalid_request otherwise) and held by p right
// now (forbidden otherwise: nobody grants what they do not hold). Not
// asked for, the new credential gets p's own credential scopes: nil, that
// is unrestricted, only when p itself is unrestricted.
func grantScopes(p *gatehouse.Principal, requested *[]gatehouse.Scope) (gatehouse.Scopes, error) {
	if requested == nil {
		return p.Scopes, nil
	}
	want, err := gatehouse.CheckScopes("scopes", *requested)
	if err != nil {
		return nil, err
	}
	if want == nil {
		want = gatehouse.Scopes{}
	}
	held := p.EffectiveScopes()
	for _, sc := range want {
		if err := knownScope(p.Account, sc); err != nil {
			return nil, err
		}
		if !held.Allows(sc) {
			return nil, gatehouse.Forbidden("You cannot grant the scope %s: you do not hold it", sc)
		}
	}
	return want, nil
}

// knownScope returns invalid_request unless sc is a built-in scope, one of
// account a's custom scopes or a platform scope granted to it.
func knownScope(a *gatehouse.Account, sc gatehouse.Scope) error {
	if slices.Contains(gatehouse.BuiltinScopes, sc) ||
		(a != nil && (slices.Contains(a.Settings.CustomScopes, sc) || slices.Contains(a.Settings.PlatformScopes, sc))) {
		return nil
	}
	return gatehouse.Invalid("Unknown scope %s; use a built-in scope, one of the account's custom_scopes or a platform scope granted to it", safeText(string(sc)))
}

// narrowScopes checks a change of a credential's scopes in account a:
// only narrowing is allowed (a set its current scopes cover), and a name
// the credential does not hold already must be known (knownScope), as
// when it was made — an unrestricted credential narrowed to a made-up
// name is invalid_request.
func narrowScopes(a *gatehouse.Account, cur gatehouse.Scopes, requested []gatehouse.Scope) (gatehouse.Scopes, error) {
	next, err := gatehouse.CheckScopes("scopes", requested)
	if err != nil {
		return nil, err
	}
	if next == nil {
		next = gatehouse.Scopes{}
	}
	for _, sc := range next {
		if !slices.Contains(cur, sc) {
			if err := knownScope(a, sc); err != nil {
				return nil, err
			}
		}
	}
	if !cur.Covers(next) {
		return nil, gatehouse.Invalid("scopes can only be narrowed")
	}
	return next, nil
}

// grantExpiry returns when a new API token or client credential made by p
// expires: the requested time (in the future), bounded by the account's
// max_credential_lifetime_days (400 past it) and by the expiry of p's own
// credential (an API token or client credential: 403 past it, as for
// acting on any credential that outlives the caller's, mayActOn) — the
// earlier of the two is also the default.
func (s *Service) grantExpiry(p *gatehouse.Principal, requested *time.Time) (*time.Time, error) {
	now := s.now()
	lifetime := s.lifetimeLimit(p.Account)
	if requested == nil {
		return earliest(lifetime, p.CredentialExpires), nil
	}
	at, err := requestedExpiry(*requested, now)
	switch {
	case err != nil:
		return nil, err
	case lifetime != nil && at.After(*lifetime):
		return nil, gatehouse.Invalid("expires_at must be at most %s", lifetime.Format(time.RFC3339))
	case p.CredentialExpires != nil && at.After(*p.CredentialExpires):
		return nil, gatehouse.Forbidden("A credential you create cannot outlive yours: expires_at must be at most %s", p.CredentialExpires.Format(time.RFC3339))
	}
	return &at, nil
}

// lifetimeLimit is the latest expiry a credential made or rolled now may
// have in account a (max_credential_lifetime_days), or nil.
func (s *Service) lifetimeLimit(a *gatehouse.Account) *time.Time {
	if a == nil || a.Settings.MaxCredentialLifetimeDays <= 0 {
		return nil
	}
	l := s.now().AddDate(0, 0, a.Settings.MaxCredentialLifetimeDays).UTC()
	return &l
}

// earliest returns the earlier of two expiries (nil: never).
func earliest(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || a.Before(*b):
		return a
	}
	return b
}

// mayActOn is the one rule for acting on a credential (SPEC §10.8 "Nobody
// acts on more than they hold"): creating, rolling, updating (enabled,
// scopes, expires_at) or deleting an API token, client credential or API
// access application whose effective scopes are reach and which expires
// at expires (nil: never) needs p's effective scopes to cover reach and
// p's own credential not to expire before it. Forbidden otherwise, before
// anything changes.
func mayActOn(p *gatehouse.Principal, reach gatehouse.Scopes, expires *time.Time) error {
	if !p.EffectiveScopes().Covers(reach) {
		return gatehouse.Forbidden("This credential can do more than yours: you cannot act on it")
	}
	if ce := p.CredentialExpires; ce != nil && (expires == nil || ce.Before(*expires)) {
		return gatehouse.Forbidden("This credential outlives yours: you cannot act on it")
	}
	return nil
}

// mayGive is the same rule for a user: a restricted credential (one with
// scopes) that gives a user a role or a password — a way to act as them —
// must cover what that user may then do, so that a token limited to
// users:write makes no admin it could then sign in as. An unrestricted
// caller holds its roles' whole power already.
func mayGive(p *gatehouse.Principal, u *gatehouse.User) error {
	if p.Scopes == nil {
		return nil
	}
	if !p.EffectiveScopes().Covers(userReach(p.Account, u, nil)) {
		return gatehouse.Forbidden("This credential cannot give a user more than it holds: use a credential that holds what the user may do")
	}
	return nil
}

// apiTokenReach is what API token t of account a may do: the anonymous
// admin's scopes, narrowed by t's.
func apiTokenReach(a *gatehouse.Account, t *gatehouse.APIToken) gatehouse.Scopes {
	return (&gatehouse.Principal{Account: a, AccountID: a.ID}).RoleScopes().Intersect(t.Scopes)
}

// userReach is what a credential of owner (in account a) limited to
// scopes may do: the owner's role scopes, narrowed by scopes.
func userReach(a *gatehouse.Account, owner *gatehouse.User, scopes gatehouse.Scopes) gatehouse.Scopes {
	return (&gatehouse.Principal{Account: a, AccountID: a.ID, User: owner}).RoleScopes().Intersect(scopes)
}

// requestedExpiry is a requested expires_at in UTC to the microsecond,
// as stored: after now, and within year 9999 — RFC 3339 (and JSON) has no
// later year, and a time that is 9999 at its own offset may be 10000 in
// UTC, which no answer could then show.
func requestedExpiry(requested, now time.Time) (time.Time, error) {
	at := requested.UTC().Truncate(time.Microsecond)
	switch {
	case !at.After(now):
		return at, gatehouse.Invalid("expires_at must be in the future")
	case at.Year() > 9999:
		return at, gatehouse.Invalid("expires_at must be within the year 9999 (UTC)")
	}
	return at, nil
}

// earlierExpiry checks a change of a credential's expiry in account a:
// only earlier (and still in the future), and within the account's
// max_credential_lifetime_days from now when it sets one.
func (s *Service) earlierExpiry(a *gatehouse.Account, cur *time.Time, requested time.Time) (*time.Time, error) {
	at, err := requestedExpiry(requested, s.now())
	if err != nil {
		return nil, err
	}
	if cur != nil && at.After(*cur) {
		return nil, gatehouse.Invalid("expires_at can only be made earlier")
	}
	if limit := s.lifetimeLimit(a); limit != nil && at.After(*limit) {
		return nil, gatehouse.Invalid("expires_at must be at most %s", limit.Format(time.RFC3339))
	}
	return &at, nil
}

// mintedBy is the API token a credential made by p is minted through, or
// "".
func mintedBy(p *gatehouse.Principal) string {
	if p.Method == gatehouse.MethodAPIToken {
		return p.CredentialID
	}
	return ""
}

// mintedExpires is when what p mints through its API token stops working
// with it (validity by parent): p's credential's expiry when p is an API
// token, else nil.
func mintedExpires(p *gatehouse.Principal) *time.Time {
	if mintedBy(p) == "" {
		return nil
	}
	return p.CredentialExpires
}

// checkScopesFirst checks a requested scope list before any other work of
// a request (count, then shape; gatehouse.CheckScopes).
func checkScopesFirst(requested *[]gatehouse.Scope) error {
	if requested == nil {
		return nil
	}
	_, err := gatehouse.CheckScopes("scopes", *requested)
	return err
}

// actsOn reports whether a patch changes what a credential can do or how
// long (enabled, scopes, expires_at): the changes mayActOn governs.
func (patch CredentialPatch) actsOn() bool {
	return patch.Enabled != nil || patch.Scopes != nil || patch.ExpiresAt != nil || !patch.Patch.Empty()
}

// safeText shortens client-sent text before it appears in a message, and
// keeps it to the characters RFC 6749 §5.2 allows in error_description.
func safeText(s string) string {
	out := make([]byte, 0, min(len(s), 40))
	for i := 0; i < len(s) && len(out) < 40; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			out = append(out, c)
		}
	}
	return string(out)
}

// CredentialPatch is the input for UpdateCredential and UpdateAPIToken; nil
// fields stay as they are.
type CredentialPatch struct {
	Name      *string            `json:"name"`
	Enabled   *bool              `json:"enabled"`
	Scopes    *[]gatehouse.Scope `json:"scopes"`
	ExpiresAt *time.Time         `json:"expires_at"`
	// Patch changes the credential's plan (SPEC §10.5).
	plan.Patch
}

// applyPatch applies patch to a credential's fields in account a, by the
// rules every credential kind shares — a name is required, scopes only narrow, expiry
// only comes earlier — and returns the audit details of what changed.
func (s *Service) applyPatch(a *gatehouse.Account, patch CredentialPatch, name *string, enabled *bool, scopes *gatehouse.Scopes, expires **time.Time) (map[string]string, error) {
	details := map[string]string{}
	var err error
	if patch.Name != nil {
		if *name, err = checkName("name", *patch.Name, MaxNameLen, true); err != nil {
			return nil, err
		}
		details["name"] = *name
	}
	if patch.Enabled != nil {
		*enabled, details["enabled"] = *patch.Enabled, strconv.FormatBool(*patch.Enabled)
	}
	if patch.Scopes != nil {
		if *scopes, err = narrowScopes(a, *scopes, *patch.Scopes); err != nil {
			return nil, err
		}
		details["scopes"] = scopesText(*scopes)
	}
	if patch.ExpiresAt != nil {
		if *expires, err = s.earlierExpiry(a, *expires, *patch.ExpiresAt); err != nil {
			return nil, err
		}
		details["expires_at"] = (*expires).Format(time.RFC3339)
	}
	return details, nil
}

// platformScopeGranted returns the platform scope that holding sc would
// grant — sc itself, or X:read for sc X:write (gatehouse.Scopes.Allows) —
// or "" when it grants none. An account's custom scopes must grant none
// (SPEC §10.8): only the operator grants platform scopes.
func (s *Service) platformScopeGranted(sc gatehouse.Scope) gatehouse.Scope {
	for _, ps := range s.platformScopes {
		if (gatehouse.Scopes{sc}).Allows(ps) {
			return ps
		}
	}
	return ""
}
