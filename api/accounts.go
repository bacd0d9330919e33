package api

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// AccountCreated is the answer of POST /v1/accounts.
type AccountCreated struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	AdminID string `json:"admin_id"`
}

func (a *API) createAccount(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.NewAccount
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	acc, admin, err := a.Service.CreateAccount(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, AccountCreated{ID: acc.ID, Name: acc.Name, AdminID: admin.ID})
	return nil
}

func (a *API) listAccounts(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	accounts, next, err := a.Service.Accounts(r.Context(), p, pg)
	if err != nil {
		return err
	}
	writeList(w, accounts, next)
	return nil
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	acc, err := a.Service.Account(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, acc)
	return nil
}

func (a *API) updateAccount(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.AccountPatch
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	acc, err := a.Service.UpdateAccount(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, acc)
	return nil
}

// SettingsView is the API's view of an account's settings (SPEC §4); the
// API-tokens switch has its own endpoint.
type SettingsView struct {
	RateLimit                 gatehouse.RateLimitSettings `json:"rate_limit"`
	TokenLifetimes            gatehouse.TokenLifetimes    `json:"token_lifetimes"`
	PasswordGrantEnabled      bool                        `json:"password_grant_enabled"`
	CustomScopes              gatehouse.Scopes            `json:"custom_scopes"`
	MaxCredentialLifetimeDays int                         `json:"max_credential_lifetime_days"`
	MaxCredentialsPerUser     int                         `json:"max_credentials_per_user"`
	MaxAPITokensPerAccount    int                         `json:"max_api_tokens_per_account"`
	PlatformScopes            gatehouse.Scopes            `json:"platform_scopes"`
	RoleScopes                map[string]gatehouse.Scopes `json:"role_scopes"`
	LeakPolicy                string                      `json:"leak_policy"`
	RequireMFA                string                      `json:"require_mfa"`
	ThirdPartyApps            string                      `json:"third_party_apps"`
	// SSO is the account's single sign-on, null when it has none.
	SSO *gatehouse.SSOSettings `json:"sso"`
}

func settingsView(s gatehouse.Settings) SettingsView {
	cs := s.CustomScopes
	if cs == nil {
		cs = gatehouse.Scopes{}
	}
	v := SettingsView{RateLimit: s.RateLimit, TokenLifetimes: s.TokenLifetimes, PasswordGrantEnabled: s.PasswordGrantEnabled,
		CustomScopes: cs, MaxCredentialLifetimeDays: s.MaxCredentialLifetimeDays,
		MaxCredentialsPerUser: s.MaxCredentialsPerUser, MaxAPITokensPerAccount: s.MaxAPITokensPerAccount,
		PlatformScopes: s.PlatformScopes, RoleScopes: s.RoleScopes, LeakPolicy: s.LeakPolicy, RequireMFA: s.RequireMFA,
		ThirdPartyApps: s.AppsPolicy(), SSO: s.SSO}
	if v.RequireMFA == "" {
		v.RequireMFA = gatehouse.MFANone
	}
	if v.PlatformScopes == nil {
		v.PlatformScopes = gatehouse.Scopes{}
	}
	if v.RoleScopes == nil {
		v.RoleScopes = map[string]gatehouse.Scopes{}
	}
	return v
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	s, err := a.Service.Settings(r.Context(), p)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, settingsView(s))
	return nil
}

func (a *API) updateSettings(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in gatehouse.SettingsPatch
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	s, err := a.Service.UpdateSettings(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, settingsView(s))
	return nil
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	entries, c, err := a.Service.Audit(r.Context(), p, service.AuditQuery{Actor: q.Get("actor"), Action: q.Get("action"),
		Target: q.Get("target"), From: q.Get("from"), To: q.Get("to")}, pg)
	if err != nil {
		return err
	}
	writePage(w, entries, c)
	return nil
}
