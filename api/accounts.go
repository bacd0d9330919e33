package api

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

func (a *API) registerAccounts(mux *http.ServeMux) {
	a.handle(mux, "POST /v1/accounts", a.createAccount)
	a.handle(mux, "GET /v1/settings", a.getSettings)
	a.handle(mux, "PUT /v1/settings", a.updateSettings)
	a.handle(mux, "GET /v1/audit", a.listAudit)
}

// AccountCreated is the answer of POST /v1/accounts.
type AccountCreated struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	AdminID string `json:"admin_id"`
}

func (a *API) createAccount(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if !p.IsOperator() {
		return gatehouse.Forbidden("Only an operator may create accounts")
	}
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

// SettingsView is the API's view of an account's settings (SPEC §4); the
// API-tokens switch has its own endpoint.
type SettingsView struct {
	RateLimit            gatehouse.RateLimitSettings `json:"rate_limit"`
	TokenLifetimes       gatehouse.TokenLifetimes    `json:"token_lifetimes"`
	PasswordGrantEnabled bool                        `json:"password_grant_enabled"`
}

func settingsView(s gatehouse.Settings) SettingsView {
	return SettingsView{RateLimit: s.RateLimit, TokenLifetimes: s.TokenLifetimes, PasswordGrantEnabled: s.PasswordGrantEnabled}
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
	if err := service.RequireAdmin(p); err != nil {
		return err
	}
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
	if err := service.RequireAdmin(p); err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	entries, next, err := a.Service.Audit(r.Context(), p, pg)
	if err != nil {
		return err
	}
	writeList(w, entries, next)
	return nil
}
