package api

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

func (a *API) addDeveloper(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if _, err := a.Service.SetDeveloper(r.Context(), p, r.PathValue("user_id"), true, false); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// DeveloperRemoved is the answer of DELETE /v1/developers/{user_id}.
type DeveloperRemoved struct {
	ActiveCredentials int `json:"active_credentials"`
}

func (a *API) removeDeveloper(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	revoke := false
	switch v := r.URL.Query().Get("revoke_credentials"); v {
	case "", "false":
	case "true":
		revoke = true
	default:
		return gatehouse.Invalid("revoke_credentials must be true or false")
	}
	n, err := a.Service.SetDeveloper(r.Context(), p, r.PathValue("user_id"), false, revoke)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, DeveloperRemoved{ActiveCredentials: n})
	return nil
}

func (a *API) createCredential(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.CredentialInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	c, err := a.Service.CreateCredential(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusCreated, c)
	return nil
}

func (a *API) listCredentials(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	cs, next, err := a.Service.Credentials(r.Context(), p, r.URL.Query().Get("user_id"), pg)
	if err != nil {
		return err
	}
	writeList(w, cs, next)
	return nil
}

func (a *API) deleteCredential(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.DeleteCredential(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

func (a *API) updateCredential(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.CredentialPatch
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	c, err := a.Service.UpdateCredential(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, c)
	return nil
}

// RollInput is the body of the roll endpoints.
type RollInput struct {
	OverlapSeconds int `json:"overlap_seconds"`
}

func (a *API) rollCredential(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in RollInput
	if err := httpx.DecodeJSON(w, r, &in, true); err != nil {
		return err
	}
	out, err := a.Service.RollCredential(r.Context(), p, r.PathValue("id"), in.OverlapSeconds)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusOK, out)
	return nil
}
