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
}

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
		RateLimit:            RateLimitSettings{Daily: 50000, Burst: 100, BurstWindowSeconds: 20},
		TokenLifetimes:       TokenLifetimes{PasswordSeconds: 3600, ClientCredentialsSeconds: 3599},
		PasswordGrantEnabled: true,
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
}

// Bounds on custom scopes and credential lifetimes.
const (
	MaxCustomScopes              = 100
	MaxCredentialLifetimeDaysMax = 3650
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
		cs := NormalizeScopes(*p.CustomScopes)
		if len(cs) > MaxCustomScopes {
			return s, InvalidField("custom_scopes", fmt.Sprintf("Give at most %d scopes.", MaxCustomScopes),
				"custom_scopes may hold at most %d scopes", MaxCustomScopes)
		}
		for _, c := range cs {
			if !ValidScopeName(string(c)) || slices.Contains(BuiltinScopes, c) {
				return s, InvalidField("custom_scopes",
					fmt.Sprintf("%q cannot be a scope: use new names of 1 to %d characters, without quotes, one per line.", string(c), MaxScopeLen),
					"custom_scopes: each must be a new scope name of 1 to %d printable characters without spaces or quotes", MaxScopeLen)
			}
		}
		out.CustomScopes = cs
	}
	if err := check("max_credential_lifetime_days", p.MaxCredentialLifetimeDays, 0, MaxCredentialLifetimeDaysMax, &out.MaxCredentialLifetimeDays); err != nil {
		return s, err
	}
	return out, nil
}
