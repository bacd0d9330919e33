package gatehouse

// SSOSettings are an account's OpenID Connect single sign-on (SPEC §10.6)
// as the settings show them: the client secret is never shown, only
// whether one is kept (sealed under the server key).
type SSOSettings struct {
	// Issuer is the OpenID provider's issuer URL; its discovery document
	// is at Issuer + "/.well-known/openid-configuration".
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// ClientSecretSet reports whether a client secret is kept.
	ClientSecretSet bool `json:"client_secret_set"`
	// Domains are the e-mail domains a signed-in address may have.
	Domains []string `json:"domains"`
	// Required turns password sign-in off for the account's users (the
	// operator aside: the break-glass).
	Required bool `json:"required"`
}

// SSOPatch changes an account's single sign-on. An empty Issuer removes
// it; otherwise the result needs an issuer, a client id and at least one
// domain, and a ClientSecret that is nil keeps the one already kept.
type SSOPatch struct {
	Issuer       *string   `json:"issuer"`
	ClientID     *string   `json:"client_id"`
	ClientSecret *string   `json:"client_secret"`
	Domains      *[]string `json:"domains"`
	Required     *bool     `json:"required"`
}

// Redacted returns p with the client secret, if any, replaced by a mark,
// for the audit log.
func (p *SSOPatch) Redacted() *SSOPatch {
	if p == nil || p.ClientSecret == nil {
		return p
	}
	q := *p
	mark := "(new secret)"
	q.ClientSecret = &mark
	return &q
}

// SSOSettingsPatch returns the settings patch that changes only the
// single sign-on.
func SSOSettingsPatch(p *SSOPatch) SettingsPatch { return SettingsPatch{SSO: p} }
