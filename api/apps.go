package api

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// Third-party applications and users' authorizations (SPEC §10.3).

func (a *API) createApp(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.AppInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	out, err := a.Service.CreateApp(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusCreated, out)
	return nil
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	apps, next, err := a.Service.Apps(r.Context(), p, pg)
	if err != nil {
		return err
	}
	writeList(w, apps, next)
	return nil
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	app, err := a.Service.App(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, app)
	return nil
}

func (a *API) updateApp(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.AppPatch
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	app, err := a.Service.UpdateApp(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, app)
	return nil
}

func (a *API) rollApp(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in RollInput
	if err := httpx.DecodeJSON(w, r, &in, true); err != nil {
		return err
	}
	out, err := a.Service.RollApp(r.Context(), p, r.PathValue("id"), in.OverlapSeconds)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusOK, out)
	return nil
}

func (a *API) deleteApp(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.DeleteApp(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// Approval is the answer of PUT /v1/apps/{id}/approval.
type Approval struct {
	AppID    string `json:"app_id"`
	ClientID string `json:"client_id"`
	Approved bool   `json:"approved"`
}

func (a *API) approveApp(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	app, err := a.Service.ApproveApp(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, Approval{AppID: app.ID, ClientID: app.ClientID, Approved: true})
	return nil
}

func (a *API) listAuthorizations(userID string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
		pg, err := page(r)
		if err != nil {
			return err
		}
		uid := userID
		if uid == "" {
			uid = r.PathValue("id")
		}
		gs, next, err := a.Service.Authorizations(r.Context(), p, uid, pg)
		if err != nil {
			return err
		}
		writeList(w, gs, next)
		return nil
	}
}

func (a *API) revokeAuthorization(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.RevokeAuthorization(r.Context(), p, r.PathValue("id"), r.PathValue("client_id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}
