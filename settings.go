package gatehouse

// Settings are an account's own configuration (SPEC §4): rate limits, token
// lifetimes, whether the password grant and the API tokens extension are on.
type Settings struct {
	RateLimit            RateLimitSettings `json:"rate_limit"`
	TokenLifetimes       TokenLifetimes    `json:"token_lifetimes"`
	PasswordGrantEnabled bool              `json:"password_grant_enabled"`
	APITokensEnabled     bool              `json:"api_tokens_enabled"`
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

// SettingsPatch is a partial update of Settings; nil fields stay as they are.
type SettingsPatch struct {
	RateLimit *struct {
		Daily              *int `json:"daily"`
		Burst              *int `json:"burst"`
		BurstWindowSeconds *int `json:"burst_window_seconds"`
	} `json:"rate_limit"`
	TokenLifetimes *struct {
		PasswordSeconds          *int `json:"password_seconds"`
		ClientCredentialsSeconds *int `json:"client_credentials_seconds"`
	} `json:"token_lifetimes"`
	PasswordGrantEnabled *bool `json:"password_grant_enabled"`
}

// Apply returns s with the patch applied, or an invalid_request error naming
// the first value out of bounds; s itself is never modified.
func (p SettingsPatch) Apply(s Settings) (Settings, error) {
	check := func(name string, v *int, lo, hi int, dst *int) error {
		if v == nil {
			return nil
		}
		if *v < lo || *v > hi {
			return Invalid("%s must be between %d and %d", name, lo, hi)
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
	return out, nil
}
