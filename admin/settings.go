package admin

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// settingsFields are the settings form's fields, named as the API names
// them, so that a refusal lands next to its field.
var settingsFields = []string{"rate_limit.burst", "rate_limit.burst_window_seconds", "rate_limit.daily",
	"token_lifetimes.password_seconds", "token_lifetimes.client_credentials_seconds",
	"password_grant_enabled", "custom_scopes", "max_credential_lifetime_days", "require_mfa"}

func (u *UI) settings(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.settingsPage(w, r, pg, http.StatusOK)
}

func (u *UI) settingsPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	s, err := u.svc.Settings(r.Context(), pg.P)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Settings", "settings"
	sso := gatehouse.SSOSettings{}
	if s.SSO != nil {
		sso = *s.SSO
	}
	u.render(w, status, "settings", struct {
		page
		Settings     gatehouse.Settings
		CustomScopes string
		SSO          gatehouse.SSOSettings
		SSODomains   string
		SSOCallback  string
		Limits       map[string]int
	}{pg, s, strings.Join(scopeNames(s.CustomScopes), "\n"), sso, strings.Join(sso.Domains, "\n"), u.redirectURL(), map[string]int{
		"daily": gatehouse.MaxDailyLimit, "burst": gatehouse.MaxBurstLimit, "window": gatehouse.MaxBurstWindowSeconds,
		"minLifetime": gatehouse.MinTokenLifetimeSeconds, "password": gatehouse.MaxPasswordSeconds,
		"client": gatehouse.MaxClientCredentialsSecs, "credentialDays": gatehouse.MaxCredentialLifetimeDaysMax,
	}})
	return nil
}

func scopeNames(ss gatehouse.Scopes) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func (u *UI) saveSettings(w http.ResponseWriter, r *http.Request, pg page) error {
	patch, err := settingsPatch(r)
	if err == nil {
		_, err = u.svc.UpdateSettings(r.Context(), pg.P, patch)
	}
	if err != nil {
		return u.refuse(w, r, pg, err, "settings", settingsFields, func(pg page, status int) error {
			return u.settingsPage(w, r, pg, status)
		})
	}
	u.done(w, r, "/admin/settings", "Settings saved.")
	return nil
}

// settingsPatch reads the settings form: every setting, all at once.
func settingsPatch(r *http.Request) (gatehouse.SettingsPatch, error) {
	var patch gatehouse.SettingsPatch
	nums := make(map[string]*int, 6)
	for _, f := range []string{"rate_limit.burst", "rate_limit.burst_window_seconds", "rate_limit.daily",
		"token_lifetimes.password_seconds", "token_lifetimes.client_credentials_seconds", "max_credential_lifetime_days"} {
		n, err := number(r, f)
		if err != nil {
			return patch, err
		}
		nums[f] = &n
	}
	patch.RateLimit = &gatehouse.RateLimitPatch{Daily: nums["rate_limit.daily"], Burst: nums["rate_limit.burst"],
		BurstWindowSeconds: nums["rate_limit.burst_window_seconds"]}
	patch.TokenLifetimes = &gatehouse.TokenLifetimesPatch{PasswordSeconds: nums["token_lifetimes.password_seconds"],
		ClientCredentialsSeconds: nums["token_lifetimes.client_credentials_seconds"]}
	patch.MaxCredentialLifetimeDays = nums["max_credential_lifetime_days"]
	pw := r.PostForm.Get("password_grant_enabled") == "true"
	patch.PasswordGrantEnabled = &pw
	scopes := []gatehouse.Scope{}
	for _, s := range strings.Fields(r.PostForm.Get("custom_scopes")) {
		scopes = append(scopes, gatehouse.Scope(s))
	}
	patch.CustomScopes = &scopes
	if v := r.PostForm.Get("require_mfa"); v != "" {
		patch.RequireMFA = &v
	}
	return patch, nil
}

// ssoFields are the single sign-on form's fields, named as the API names
// them.
var ssoFields = []string{"sso.issuer", "sso.client_id", "sso.client_secret", "sso.domains"}

// saveSSO sets the account's single sign-on from its form (an empty
// secret keeps the one kept), or turns it off.
func (u *UI) saveSSO(w http.ResponseWriter, r *http.Request, pg page) error {
	f := r.PostForm
	var p gatehouse.SSOPatch
	if f.Get("remove") == "true" {
		off := ""
		p.Issuer = &off
	} else {
		issuer, id := strings.TrimSpace(f.Get("sso.issuer")), strings.TrimSpace(f.Get("sso.client_id"))
		domains := strings.Fields(strings.ReplaceAll(f.Get("sso.domains"), ",", " "))
		required := f.Get("sso.required") == "true"
		p = gatehouse.SSOPatch{Issuer: &issuer, ClientID: &id, Domains: &domains, Required: &required}
		if issuer == "" {
			return u.refuse(w, r, pg, gatehouse.InvalidField("sso.issuer", "Give the provider's issuer URL.", "sso.issuer is required"),
				"sso", ssoFields, func(pg page, status int) error { return u.settingsPage(w, r, pg, status) })
		}
		if sec := f.Get("sso.client_secret"); sec != "" {
			p.ClientSecret = &sec
		}
	}
	if _, err := u.svc.UpdateSettings(r.Context(), pg.P, gatehouse.SSOSettingsPatch(&p)); err != nil {
		return u.refuse(w, r, pg, err, "sso", ssoFields, func(pg page, status int) error {
			return u.settingsPage(w, r, pg, status)
		})
	}
	if p.Issuer != nil && *p.Issuer == "" {
		u.done(w, r, "/admin/settings", "Single sign-on turned off.")
		return nil
	}
	u.done(w, r, "/admin/settings", "Single sign-on saved.")
	return nil
}
