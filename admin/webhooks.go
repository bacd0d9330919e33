package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// The webhooks pages (docs/webhooks.md): the account's endpoints, a form
// to add one, and per endpoint its deliveries and actions. Every rule is
// the service's, as for the API.

func (u *UI) webhooks(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.webhooksPage(w, r, pg, http.StatusOK)
}

func (u *UI) webhooksPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	p := listPage(r, gatehouse.MaxPageSize)
	ws, next, err := u.svc.Webhooks(r.Context(), pg.P, p)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Webhooks", "webhooks"
	u.render(w, status, "webhooks", struct {
		page
		Webhooks []*gatehouse.Webhook
		Pager    pager
	}{pg, ws, u.newPager("/admin/webhooks", r.URL.Query(), p, gatehouse.Cursors{Next: next})})
	return nil
}

// secretShown is the reveal page of a new or rolled webhook secret.
func secretShown(wh *gatehouse.Webhook, heading string) shown {
	return shown{
		Heading: heading,
		Warning: "Keep this secret safe. It is shown only this once; Gatehouse stores it encrypted and cannot show it again.",
		Values:  []secret{{Label: "Signing secret for " + wh.URL, ID: "webhook-secret", Value: wh.Secret, Secret: true}},
		Notes:   []string{"Verify each delivery's webhook-signature with it, as Standard Webhooks 1.0 says (docs/webhooks.md)."},
		Back:    "/admin/webhooks/" + wh.ID,
		BackTo:  "Back to the webhook",
	}
}

func (u *UI) createWebhook(w http.ResponseWriter, r *http.Request, pg page) error {
	events := strings.FieldsFunc(r.PostForm.Get("events"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
	wh, err := u.svc.CreateWebhook(r.Context(), pg.P, service.WebhookInput{URL: r.PostForm.Get("url"), Events: events, Description: r.PostForm.Get("description")})
	if err != nil {
		return u.refuse(w, r, pg, err, "create", []string{"url", "events", "description"}, func(pg page, status int) error {
			return u.webhooksPage(w, r, pg, status)
		})
	}
	return u.reveal(w, r, pg, secretShown(wh, "Webhook added"))
}

func (u *UI) webhook(w http.ResponseWriter, r *http.Request, pg page) error {
	wh, err := u.svc.Webhook(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	p := listPage(r, gatehouse.DefaultPageSize)
	ds, next, err := u.svc.WebhookDeliveries(r.Context(), pg.P, wh.ID, gatehouse.Page{Limit: p.Limit, After: p.After})
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Webhook "+wh.URL, "webhooks"
	u.render(w, http.StatusOK, "webhook", struct {
		page
		Webhook    *gatehouse.Webhook
		Deliveries []*gatehouse.WebhookDelivery
		Pager      pager
	}{pg, wh, ds, u.newPager("/admin/webhooks/"+wh.ID, r.URL.Query(), p, gatehouse.Cursors{Next: next})})
	return nil
}

func (u *UI) setWebhookEnabled(w http.ResponseWriter, r *http.Request, pg page) error {
	on := r.PostForm.Get("enabled") == "true"
	wh, err := u.svc.UpdateWebhook(r.Context(), pg.P, r.PathValue("id"), gatehouse.WebhookPatch{Enabled: &on})
	if err != nil {
		return err
	}
	u.done(w, r, "/admin/webhooks/"+wh.ID, map[bool]string{true: "Webhook enabled.", false: "Webhook disabled."}[on])
	return nil
}

func (u *UI) testWebhook(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	if _, err := u.svc.TestWebhook(r.Context(), pg.P, id); err != nil {
		return err
	}
	u.done(w, r, "/admin/webhooks/"+id, "Test event sent.")
	return nil
}

func (u *UI) rollWebhook(w http.ResponseWriter, r *http.Request, pg page) error {
	overlap, err := strconv.ParseInt(r.PostForm.Get("overlap_seconds"), 10, 64)
	if err != nil {
		overlap = 0
	}
	wh, err := u.svc.RollWebhookSecret(r.Context(), pg.P, r.PathValue("id"), service.RollInput{OverlapSeconds: overlap})
	if err != nil {
		return err
	}
	return u.reveal(w, r, pg, secretShown(wh, "Webhook secret rolled"))
}

func (u *UI) redeliverWebhook(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	if _, err := u.svc.Redeliver(r.Context(), pg.P, id, r.PathValue("delivery_id")); err != nil {
		return err
	}
	u.done(w, r, "/admin/webhooks/"+id, "Sent again.")
	return nil
}

func (u *UI) confirmDeleteWebhook(w http.ResponseWriter, r *http.Request, pg page) error {
	wh, err := u.svc.Webhook(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	u.confirm(w, pg, confirmation{Question: "Delete the webhook to " + wh.URL + "?", Action: "/admin/webhooks/" + wh.ID + "/delete",
		Buttons: []button{{Label: "Delete webhook", Danger: true}}, Cancel: "/admin/webhooks/" + wh.ID,
		Stops: []string{fmt.Sprintf("Events (%s) are no longer sent to %s, and its delivery log is deleted.", strings.Join(wh.Events, ", "), wh.URL)}})
	return nil
}

func (u *UI) deleteWebhook(w http.ResponseWriter, r *http.Request, pg page) error {
	if !isConfirmed(r) {
		return u.confirmDeleteWebhook(w, r, pg)
	}
	if err := u.svc.DeleteWebhook(r.Context(), pg.P, r.PathValue("id")); err != nil {
		return err
	}
	u.done(w, r, "/admin/webhooks", "Webhook deleted.")
	return nil
}
