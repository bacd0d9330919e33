package api

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	ws, next, err := a.Service.Webhooks(r.Context(), p, pg)
	if err != nil {
		return err
	}
	writeList(w, ws, next)
	return nil
}

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.WebhookInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	wh, err := a.Service.CreateWebhook(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusCreated, wh)
	return nil
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	wh, err := a.Service.Webhook(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, wh)
	return nil
}

func (a *API) updateWebhook(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in gatehouse.WebhookPatch
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	wh, err := a.Service.UpdateWebhook(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, wh)
	return nil
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.DeleteWebhook(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

func (a *API) rollWebhookSecret(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.RollInput
	if err := httpx.DecodeJSON(w, r, &in, true); err != nil {
		return err
	}
	wh, err := a.Service.RollWebhookSecret(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusOK, wh)
	return nil
}

func (a *API) testWebhook(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	d, err := a.Service.TestWebhook(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusAccepted, d)
	return nil
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	ds, next, err := a.Service.WebhookDeliveries(r.Context(), p, r.PathValue("id"), pg)
	if err != nil {
		return err
	}
	writeList(w, ds, next)
	return nil
}

func (a *API) redeliver(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	d, err := a.Service.Redeliver(r.Context(), p, r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusAccepted, d)
	return nil
}
