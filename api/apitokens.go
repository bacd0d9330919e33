package api

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// Extension is the state of one extension.
type Extension struct {
	Enabled bool `json:"enabled"`
}

// Extensions is the answer of GET /v1/extensions.
type Extensions struct {
	APITokens Extension `json:"api_tokens"`
}

func (a *API) getExtensions(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	on, err := a.Service.APITokensExtension(r.Context(), p)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, Extensions{APITokens: Extension{Enabled: on}})
	return nil
}

func (a *API) setAPITokensExtension(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in struct {
		Enabled *bool `json:"enabled"`
	}
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	if err := a.Service.SetAPITokensExtension(r.Context(), p, in.Enabled); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, Extension{Enabled: *in.Enabled})
	return nil
}

func (a *API) createAPIToken(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.APITokenInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	t, err := a.Service.CreateAPIToken(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusCreated, t)
	return nil
}

func (a *API) listAPITokens(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	ts, next, err := a.Service.APITokens(r.Context(), p, pg)
	if err != nil {
		return err
	}
	writeList(w, ts, next)
	return nil
}

func (a *API) deleteAPIToken(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.DeleteAPIToken(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

func (a *API) updateAPIToken(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.CredentialPatch
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	t, err := a.Service.UpdateAPIToken(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, t)
	return nil
}

func (a *API) rollAPIToken(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in RollInput
	if err := httpx.DecodeJSON(w, r, &in, true); err != nil {
		return err
	}
	t, err := a.Service.RollAPIToken(r.Context(), p, r.PathValue("id"), in.OverlapSeconds)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusCreated, t)
	return nil
}
