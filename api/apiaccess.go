package api

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/service"
)

// APIAccessInput is the body of PATCH /v1/api-access (POST takes
// service.APIAccessInput).
type APIAccessInput struct {
	AccessTokenTTLDays *int `json:"access_token_ttl_days"`
	plan.Patch
}

// APIAccessView is the answer of GET /v1/api-access: never a secret.
type APIAccessView struct {
	Enabled            bool             `json:"enabled"`
	ClientID           string           `json:"client_id,omitempty"`
	AccessTokenTTLDays int              `json:"access_token_ttl_days,omitempty"`
	Scopes             gatehouse.Scopes `json:"scopes"`
	LastUsedAt         *time.Time       `json:"last_used_at,omitempty"`
	CreatedAt          *time.Time       `json:"created_at,omitempty"`
	gatehouse.Plan
}

func (a *API) enableAPIAccess(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.APIAccessInput
	if err := httpx.DecodeJSON(w, r, &in, true); err != nil {
		return err
	}
	out, err := a.Service.EnableAPIAccess(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusCreated, out)
	return nil
}

func (a *API) getAPIAccess(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	app, err := a.Service.APIAccess(r.Context(), p)
	if err != nil {
		return err
	}
	out := APIAccessView{}
	if app != nil {
		out = APIAccessView{Enabled: true, ClientID: app.ClientID, AccessTokenTTLDays: app.AccessTokenTTLDays, Scopes: app.Scopes,
			LastUsedAt: app.LastUsedAt, CreatedAt: &app.CreatedAt, Plan: app.Plan}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) updateAPIAccess(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in APIAccessInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	app, err := a.Service.UpdateAPIAccess(r.Context(), p, in.AccessTokenTTLDays, in.Patch)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, APIAccessView{Enabled: true, ClientID: app.ClientID, AccessTokenTTLDays: app.AccessTokenTTLDays, CreatedAt: &app.CreatedAt,
		Plan: app.Plan})
	return nil
}

func (a *API) revokeAPIAccess(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.RevokeAPIAccess(r.Context(), p); err != nil {
		return err
	}
	noContent(w)
	return nil
}
