package api

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

func (a *API) registerAPIAccess(mux *http.ServeMux) {
	a.handle(mux, "POST /v1/api-access", a.enableAPIAccess)
	a.handle(mux, "GET /v1/api-access", a.getAPIAccess)
	a.handle(mux, "PATCH /v1/api-access", a.updateAPIAccess)
	a.handle(mux, "DELETE /v1/api-access", a.revokeAPIAccess)
}

// APIAccessInput is the body of POST and PATCH /v1/api-access.
type APIAccessInput struct {
	AccessTokenTTLDays *int `json:"access_token_ttl_days"`
}

// APIAccessView is the answer of GET /v1/api-access: never a secret.
type APIAccessView struct {
	Enabled            bool       `json:"enabled"`
	ClientID           string     `json:"client_id,omitempty"`
	AccessTokenTTLDays int        `json:"access_token_ttl_days,omitempty"`
	CreatedAt          *time.Time `json:"created_at,omitempty"`
}

func (a *API) enableAPIAccess(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in APIAccessInput
	if err := httpx.DecodeJSON(w, r, &in, true); err != nil {
		return err
	}
	out, err := a.Service.EnableAPIAccess(r.Context(), p, in.AccessTokenTTLDays)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (a *API) getAPIAccess(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	app, err := a.Service.APIAccess(r.Context(), p)
	if err != nil {
		return err
	}
	out := APIAccessView{}
	if app != nil {
		out = APIAccessView{Enabled: true, ClientID: app.ClientID, AccessTokenTTLDays: app.AccessTokenTTLDays, CreatedAt: &app.CreatedAt}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) updateAPIAccess(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in APIAccessInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	if in.AccessTokenTTLDays == nil {
		return gatehouse.Invalid("access_token_ttl_days is required")
	}
	app, err := a.Service.UpdateAPIAccess(r.Context(), p, *in.AccessTokenTTLDays)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, APIAccessView{Enabled: true, ClientID: app.ClientID, AccessTokenTTLDays: app.AccessTokenTTLDays, CreatedAt: &app.CreatedAt})
	return nil
}

func (a *API) revokeAPIAccess(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.RevokeAPIAccess(r.Context(), p); err != nil {
		return err
	}
	noContent(w)
	return nil
}
