package gatehouse

import (
	"fmt"
	"slices"
)

// Settings are an account's own configuration (SPEC §4): rate limits, token
// lifetimes, whether the password grant and the API tokens extension are on.
type Settings struct {
	RateLimit            RateLimitSettings `json:"rate_limit"`
	TokenLifetimes       TokenLifetimes    `json:"token_lifetimes"`
	PasswordGrantEnabled bool              `json:"password_grant_enabled"`
	APITokensEnabled     bool              `json:"api_tokens_enabled"`
	// CustomScopes are the account's own scopes for the platform's API,
	// granted to every user and usable on every credential kind.
	CustomScopes Scopes `json:"custom_scopes"`
	// MaxCredentialLifetimeDays, when not zero, bounds the expires_at of
	// new API tokens and client credentials.
	MaxCredentialLifetimeDays int `json:"max_credential_lifetime_days"`
	// MaxCredentialsPerUser bounds the live client credentials of one user.
	MaxCredentialsPerUser int `json:"max_credentials_per_user"`
	// MaxAPITokensPerAccount bounds the account's live API tokens.
	MaxAPITokensPerAccount int `json:"max_api_tokens_per_account"`
	// PlatformScopes are the platform scopes (SPEC §10.8: named by the
	// gateway's route rules or --platform-scopes) the operator granted
	// the account; admins cannot change them.
	PlatformScopes Scopes `json:"platform_scopes"`
	// RoleScopes maps a role ("admin", "developer", or "member": every
	// user) to the granted platform scopes its users hold.
	RoleScopes map[string]Scopes `json:"role_scopes"`
	// LeakPolicy is what a secret of the account reported found by GitHub
	// secret scanning does: LeakRevoke (the default) or LeakNotify (audit
	// only). SPEC §10.1.
	LeakPolicy string `json:"leak_policy"`
	// RequireMFA is who of the account must sign in to the console with a
	// second factor (SPEC §10.6): MFANone (the default; "" reads as it),
	// MFAAdmins or MFAEveryone.
	RequireMFA string `json:"require_mfa"`
	// ThirdPartyApps is which third-party applications the account's
	// users may authorise (SPEC §10.3): AppsAny, AppsApproved (the
	// default; "" reads as it) or AppsNone.
	ThirdPartyApps string `json:"third_party_apps"`
	// SSO is the account's OpenID Connect single sign-on, nil when it has
	// none. It is kept apart from the other settings (the client secret
	// is sealed) and filled in by the service; the account's stored
	// settings never hold it.
	SSO *SSOSettings `json:"sso"`
}

// The require_mfa policies.
const (
	MFANone     = "none"
	MFAAdmins   = "admins"
	MFAEveryone = "everyone"
)

// MFARequired reports whether the account's policy requires a user with
// roles to have a second factor.
func (s Settings) MFARequired(roles Roles) bool {
	switch s.RequireMFA {
	case MFAEveryone:
		return true
	case MFAAdmins:
		return roles.Has(RoleAdmin)
	}
	return false
}

// The keys of Settings.RoleScopes: the roles, and "member" for every user.
const RoleScopeMember = "member"

// RoleScopeKeys lists the keys RoleScopes takes.
var RoleScopeKeys = []string{string(RoleAdmin), string(RoleDeveloper), RoleScopeMember}

// platformScopesOf returns the platform scopes the account's users with
// roles (anonymous: an API token's anonymous admin) hold: those mapped to
// their roles that the operator granted the account.
func (s Settings) platformScopesOf(roles Roles, anonymous bool) Scopes {
	var out Scopes
	add := func(key string) {
		for _, sc := range s.RoleScopes[key] {
			if slices.Contains(s.PlatformScopes, sc) {
				out = append(out, sc)
			}
		}
	}
	if !anonymous {
		add(RoleScopeMember)
	}
	for _, r := range roles {
		add(string(r))
	}
	return out
}

// The leak policies.
const (
	LeakRevoke = "revoke"
	LeakNotify = "notify"
)

// RateLimitSettings are the two rolling windows of SPEC §5.
type RateLimitSettings struct {
	Daily              int `json:"daily"`
	Burst              int `json:"burst"`
	BurstWindowSeconds int `json:"burst_window_seconds"`
}

// TokenLifetimes are the access-token lifetimes of the password and client
// credentials grants, in seconds.
type TokenLifetimes struct {
	PasswordSeconds          int `json:"password_seconds"`
	ClientCredentialsSeconds int `json:"client_credentials_seconds"`
}

// DefaultSettings returns the settings of a new account.
func DefaultSettings() Settings {
	return Settings{
		RateLimit:              RateLimitSettings{Daily: 50000, Burst: 100, BurstWindowSeconds: 20},
		TokenLifetimes:         TokenLifetimes{PasswordSeconds: 3600, ClientCredentialsSeconds: 3599},
		PasswordGrantEnabled:   true,
		MaxCredentialsPerUser:  DefaultMaxCredentialsPerUser,
		MaxAPITokensPerAccount: DefaultMaxAPITokensPerAccount,
		LeakPolicy:             LeakRevoke,
		RequireMFA:             MFANone,
		ThirdPartyApps:         AppsApproved,
	}
}

// Bounds on settings values; PUT /v1/settings rejects anything outside.
const (
	MaxDailyLimit            = 100_000_000
	MaxBurstLimit            = 1_000_000
	MaxBurstWindowSeconds    = 3600
	MinTokenLifetimeSeconds  = 60
	MaxPasswordSeconds       = 30 * 86400
	MaxClientCredentialsSecs = 86400
)

// RateLimitPatch is a partial update of RateLimitSettings.
type RateLimitPatch struct {
	Daily              *int `json:"daily"`
	Burst              *int `json:"burst"`
	BurstWindowSeconds *int `json:"burst_window_seconds"`
}

// TokenLifetimesPatch is a partial update of TokenLifetimes.
type TokenLifetimesPatch struct {
	PasswordSeconds          *int `json:"password_seconds"`
	ClientCredentialsSeconds *int `json:"client_credentials_seconds"`
}

// SettingsPatch is a partial update of Settings; nil fields stay as they are.
type SettingsPatch struct {
	RateLimit                 *RateLimitPatch      `json:"rate_limit"`
	TokenLifetimes            *TokenLifetimesPatch `json:"token_lifetimes"`
	PasswordGrantEnabled      *bool                `json:"password_grant_enabled"`
	CustomScopes              *[]Scope             `json:"custom_scopes"`
	MaxCredentialLifetimeDays *int                 `json:"max_credential_lifetime_days"`
	MaxCredentialsPerUser     *int                 `json:"max_credentials_per_user"`
	MaxAPITokensPerAccount    *int                 `json:"max_api_tokens_per_account"`
	RoleScopes                *map[string][]Scope  `json:"role_scopes"`
	LeakPolicy                *string              `json:"leak_policy"`
	RequireMFA                *string              `json:"require_mfa"`
	ThirdPartyApps            *string              `json:"third_party_apps"`
	// SSO changes the single sign-on; the service applies it (Apply
	// ignores it), since its secret is sealed and its issuer discovered.
	SSO *SSOPatch `json:"sso"`
}

// Bounds on custom scopes and credential lifetimes.
const (
	MaxCustomScopes              = MaxScopes
	MaxCredentialLifetimeDaysMax = 3650
)

// Ceilings on credentials (SPEC §10.8 "Bounded work"): their defaults and
// the most an admin may set. Over the ceiling, creating is limit_reached.
const (
	DefaultMaxCredentialsPerUser  = 100
	DefaultMaxAPITokensPerAccount = 500
	MaxCredentialsPerUserMax      = 10_000
	MaxAPITokensPerAccountMax     = 100_000
)

// Apply returns s with the patch applied, or an invalid_request error naming
// the first value out of bounds; s itself is never modified.
func (p SettingsPatch) Apply(s Settings) (Settings, error) {
	check := func(name string, v *int, lo, hi int, dst *int) error {
		if v == nil {
			return nil
		}
		if *v < lo || *v > hi {
			return InvalidField(name, fmt.Sprintf("Enter a whole number from %d to %d.", lo, hi), "%s must be between %d and %d", name, lo, hi)
		}
		*dst = *v
		return nil
	}
	out := s
	if rl := p.RateLimit; rl != nil {
		if err := check("rate_limit.daily", rl.Daily, 1, MaxDailyLimit, &out.RateLimit.Daily); err != nil {
			return s, err
		}
		if err := check("rate_limit.burst", rl.Burst, 1, MaxBurstLimit, &out.RateLimit.Burst); err != nil {
			return s, err
		}
		if err := check("rate_limit.burst_window_seconds", rl.BurstWindowSeconds, 1, MaxBurstWindowSeconds, &out.RateLimit.BurstWindowSeconds); err != nil {
			return s, err
		}
	}
	if tl := p.TokenLifetimes; tl != nil {
		if err := check("token_lifetimes.password_seconds", tl.PasswordSeconds, MinTokenLifetimeSeconds, MaxPasswordSeconds, &out.TokenLifetimes.PasswordSeconds); err != nil {
			return s, err
		}
		if err := check("token_lifetimes.client_credentials_seconds", tl.ClientCredentialsSeconds, MinTokenLifetimeSeconds, MaxClientCredentialsSecs, &out.TokenLifetimes.ClientCredentialsSeconds); err != nil {
			return s, err
		}
	}
	if p.PasswordGrantEnabled != nil {
		out.PasswordGrantEnabled = *p.PasswordGrantEnabled
	}
	if p.CustomScopes != nil {
		cs, err := CheckScopes("custom_scopes", *p.CustomScopes)
		if err != nil {
			return s, err
		}
		for _, c := range cs {
			if slices.Contains(BuiltinScopes, c) {
				return s, InvalidField("custom_scopes", fmt.Sprintf("%s is a built-in scope; use a new name.", c),
					"custom_scopes: %s is a built-in scope", c)
			}
		}
		out.CustomScopes = cs
	}
	if err := check("max_credential_lifetime_days", p.MaxCredentialLifetimeDays, 0, MaxCredentialLifetimeDaysMax, &out.MaxCredentialLifetimeDays); err != nil {
		return s, err
	}
	if p.RoleScopes != nil {
		rs := map[string]Scopes{}
		for k, v := range *p.RoleScopes {
			if !slices.Contains(RoleScopeKeys, k) {
				return s, InvalidField("role_scopes", "Map admin, developer or member.", "role_scopes: %q is not admin, developer or member", safeASCII(k))
			}
			ss, err := CheckScopes("role_scopes."+k, v)
			if err != nil {
				return s, err
			}
			for _, sc := range ss {
				if !slices.Contains(out.PlatformScopes, sc) {
					return s, InvalidField("role_scopes", fmt.Sprintf("%s is not a platform scope granted to this account.", sc),
						"role_scopes.%s: %s is not a platform scope the operator granted to this account", k, sc)
				}
			}
			if ss == nil {
				ss = Scopes{}
			}
			rs[k] = ss
		}
		out.RoleScopes = rs
	}
	if err := check("max_credentials_per_user", p.MaxCredentialsPerUser, 1, MaxCredentialsPerUserMax, &out.MaxCredentialsPerUser); err != nil {
		return s, err
	}
	if err := check("max_api_tokens_per_account", p.MaxAPITokensPerAccount, 1, MaxAPITokensPerAccountMax, &out.MaxAPITokensPerAccount); err != nil {
		return s, err
	}
	if p.LeakPolicy != nil {
		if *p.LeakPolicy != LeakRevoke && *p.LeakPolicy != LeakNotify {
			return s, InvalidField("leak_policy", "Choose revoke or notify.", "leak_policy must be revoke or notify")
		}
		out.LeakPolicy = *p.LeakPolicy
	}
	if p.RequireMFA != nil {
		if *p.RequireMFA != MFANone && *p.RequireMFA != MFAAdmins && *p.RequireMFA != MFAEveryone {
			return s, InvalidField("require_mfa", "Choose none, admins or everyone.", "require_mfa must be none, admins or everyone")
		}
		out.RequireMFA = *p.RequireMFA
	}
	if p.ThirdPartyApps != nil {
		if v := *p.ThirdPartyApps; v != AppsAny && v != AppsApproved && v != AppsNone {
			return s, InvalidField("third_party_apps", "Choose any, approved or none.", "third_party_apps must be any, approved or none")
		}
		out.ThirdPartyApps = *p.ThirdPartyApps
	}
	return out, nil
}
