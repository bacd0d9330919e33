package service

import (
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

// grantScopes returns the scopes a new credential made by p gets. Asked
// for (requested not nil), each must be a built-in scope or one of the
// account's custom scopes (invalid_request otherwise) and held by p right
// now (forbidden otherwise: nobody grants what they do not hold). Not
// asked for, the new credential gets p's own credential scopes: nil, that
// is unrestricted, only when p itself is unrestricted.
func grantScopes(p *gatehouse.Principal, requested *[]gatehouse.Scope) (gatehouse.Scopes, error) {
	if requested == nil {
		return p.Scopes, nil
	}
	want := gatehouse.NormalizeScopes(*requested)
	if want == nil {
		want = gatehouse.Scopes{}
	}
	var custom gatehouse.Scopes
	if p.Account != nil {
		custom = p.Account.Settings.CustomScopes
	}
	held := p.EffectiveScopes()
	for _, sc := range want {
		if !slices.Contains(gatehouse.BuiltinScopes, sc) && !slices.Contains(custom, sc) {
			return nil, gatehouse.Invalid("Unknown scope %s; use a built-in scope or one of the account's custom_scopes", safeText(string(sc)))
		}
		if !held.Allows(sc) {
			return nil, gatehouse.Forbidden("You cannot grant the scope %s: you do not hold it", sc)
		}
	}
	return want, nil
}

// narrowScopes checks a change of a credential's scopes: only narrowing is
// allowed (a set its current scopes cover).
func narrowScopes(cur gatehouse.Scopes, requested []gatehouse.Scope) (gatehouse.Scopes, error) {
	next := gatehouse.NormalizeScopes(requested)
	if next == nil {
		next = gatehouse.Scopes{}
	}
	if !cur.Covers(next) {
		return nil, gatehouse.Invalid("scopes can only be narrowed")
	}
	return next, nil
}

// grantExpiry returns when a new API token or client credential made by p
// expires: the requested time (in the future), bounded by the account's
// max_credential_lifetime_days and, for a credential minted through an API
// token, by that token's own expiry — which is also the default.
func (s *Service) grantExpiry(p *gatehouse.Principal, requested *time.Time) (*time.Time, error) {
	now := s.now()
	var limit *time.Time
	if p.Account != nil && p.Account.Settings.MaxCredentialLifetimeDays > 0 {
		l := now.AddDate(0, 0, p.Account.Settings.MaxCredentialLifetimeDays)
		limit = &l
	}
	if p.Method == gatehouse.MethodAPIToken && !p.ExpiresAt.IsZero() && (limit == nil || p.ExpiresAt.Before(*limit)) {
		l := p.ExpiresAt.UTC()
		limit = &l
	}
	if requested == nil {
		return limit, nil
	}
	at := requested.UTC().Truncate(time.Microsecond)
	switch {
	case !at.After(now):
		return nil, gatehouse.Invalid("expires_at must be in the future")
	case limit != nil && at.After(*limit):
		return nil, gatehouse.Invalid("expires_at must be at most %s", limit.Format(time.RFC3339))
	}
	return &at, nil
}

// earlierExpiry checks a change of a credential's expiry: only earlier
// (and still in the future).
func (s *Service) earlierExpiry(cur *time.Time, requested time.Time) (*time.Time, error) {
	at := requested.UTC().Truncate(time.Microsecond)
	if !at.After(s.now()) {
		return nil, gatehouse.Invalid("expires_at must be in the future")
	}
	if cur != nil && at.After(*cur) {
		return nil, gatehouse.Invalid("expires_at can only be made earlier")
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
}

// applyPatch applies patch to a credential's fields, by the rules every
// credential kind shares — a name is required, scopes only narrow, expiry
// only comes earlier — and returns the audit details of what changed.
func (s *Service) applyPatch(patch CredentialPatch, name *string, enabled *bool, scopes *gatehouse.Scopes, expires **time.Time) (map[string]string, error) {
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
		if *scopes, err = narrowScopes(*scopes, *patch.Scopes); err != nil {
			return nil, err
		}
		details["scopes"] = scopesText(*scopes)
	}
	if patch.ExpiresAt != nil {
		if *expires, err = s.earlierExpiry(*expires, *patch.ExpiresAt); err != nil {
			return nil, err
		}
		details["expires_at"] = (*expires).Format(time.RFC3339)
	}
	return details, nil
}
