package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Third-party applications (SPEC §10.3): a developer registers, lists,
// rolls the secret of and deletes their own; an admin lists every
// application of the account and deletes (revokes) any. The rules are the
// service's, as for /v1/apps.

// rollOverlaps are the overlaps the roll form offers, in seconds.
var rollOverlaps = []struct {
	Seconds int
	Label   string
}{{0, "no time: it stops at once"}, {3600, "1 hour"}, {86400, "1 day"}, {7 * 86400, "7 days"}}

func (u *UI) apps(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.appsPage(w, r, pg, http.StatusOK)
}

func (u *UI) appsPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	p := listPage(r, gatehouse.MaxPageSize)
	apps, next, err := u.svc.Apps(r.Context(), pg.P, p)
	if err != nil {
		return err
	}
	owners := map[string]string{}
	if pg.Admin {
		for _, a := range apps {
			if _, ok := owners[a.OwnerID]; ok || a.OwnerID == "" {
				continue
			}
			owners[a.OwnerID] = a.OwnerID
			if x, err := u.svc.User(r.Context(), pg.P, a.OwnerID); err == nil {
				owners[a.OwnerID] = x.Email
			}
		}
	}
	pg.Title, pg.Page = "Applications", "apps"
	u.render(w, status, "apps", struct {
		page
		Apps     []*gatehouse.App
		Owners   map[string]string
		Overlaps any
		Pager    pager
	}{pg, apps, owners, rollOverlaps, u.newPager("/admin/apps", r.URL.Query(), p, gatehouse.Cursors{Next: next})})
	return nil
}

// fieldsOf splits a text area or a text field into its lines or words.
func fieldsOf(s string) []string { return strings.Fields(s) }

func (u *UI) createApp(w http.ResponseWriter, r *http.Request, pg page) error {
	f := r.PostForm
	in := service.AppInput{Name: f.Get("name"), Type: f.Get("type"), RedirectURIs: fieldsOf(f.Get("redirect_uris")),
		HomepageURL: strings.TrimSpace(f.Get("homepage_url"))}
	if s := fieldsOf(f.Get("scopes")); len(s) > 0 {
		scopes := make([]gatehouse.Scope, len(s))
		for i, x := range s {
			scopes[i] = gatehouse.Scope(x)
		}
		in.Scopes = &scopes
	}
	a, err := u.svc.CreateApp(r.Context(), pg.P, in)
	if err != nil {
		return u.refuse(w, r, pg, err, "create", []string{"name", "type", "redirect_uris", "scopes", "homepage_url"}, func(pg page, status int) error {
			return u.appsPage(w, r, pg, status)
		})
	}
	values := []secret{{Label: "Client id", ID: "new-client-id", Value: a.ClientID}}
	warning := "A public application has no secret: it proves itself with PKCE alone."
	if a.ClientSecret != "" {
		values = append(values, secret{Label: "Client secret", ID: "new-client-secret", Value: a.ClientSecret, Secret: true})
		warning = "Keep the client secret safe. It is shown only this once; Gatehouse stores only a hash."
	}
	return u.reveal(w, r, pg, shown{
		Heading: "Application " + a.Name + " registered",
		Warning: warning,
		Values:  values,
		Notes:   []string{"Send users to GET /oauth/authorize with this client id, a registered redirect URI and a PKCE S256 challenge; exchange the code at POST /oauth/token."},
		Back:    "/admin/apps",
		BackTo:  "Back to the applications",
	})
}

// rollApp gives a confidential application a new secret, the old one
// working for the chosen overlap, and shows it once.
func (u *UI) rollApp(w http.ResponseWriter, r *http.Request, pg page) error {
	a, err := u.svc.App(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	overlap, err := strconv.Atoi(r.PostForm.Get("overlap_seconds"))
	if err != nil {
		return gatehouse.InvalidField("overlap_seconds", "Choose how long the old secret keeps working.", "overlap_seconds must be a number")
	}
	s, err := u.svc.RollApp(r.Context(), pg.P, a.ID, overlap)
	if err != nil {
		return err
	}
	note := "The old secret no longer works. Put the new one where the old one was used."
	if overlap > 0 {
		note = fmt.Sprintf("The old secret keeps working for %s more: put the new one where the old one was used before then.", overlapWords(overlap))
	}
	return u.reveal(w, r, pg, shown{
		Heading: "Secret of " + a.Name + " rolled",
		Warning: "Keep the client secret safe. It is shown only this once; Gatehouse stores only a hash.",
		Values: []secret{{Label: "Client id", ID: "new-client-id", Value: s.ClientID},
			{Label: "Client secret", ID: "new-client-secret", Value: s.ClientSecret, Secret: true}},
		Notes:  []string{note},
		Back:   "/admin/apps",
		BackTo: "Back to the applications",
	})
}

func overlapWords(seconds int) string {
	for _, o := range rollOverlaps {
		if o.Seconds == seconds {
			return o.Label
		}
	}
	return strconv.Itoa(seconds) + " seconds"
}

// confirmDeleteApp says what deleting an application stops.
func (u *UI) confirmDeleteApp(w http.ResponseWriter, r *http.Request, pg page) error {
	a, err := u.svc.App(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	u.confirm(w, pg, confirmation{
		Question: "Delete the application " + a.Name + "?",
		Stops: []string{
			fmt.Sprintf("The application %s (client id %s) can no longer ask anyone for consent or get tokens; deleting it is permanent.", a.Name, a.ClientID),
			"Every authorisation users gave it, every code and every token it holds stop working at once, on every node.",
		},
		Action:  "/admin/apps/" + a.ID + "/delete",
		Buttons: []button{{Label: "Delete application", Danger: true}},
		Cancel:  "/admin/apps",
	})
	return nil
}

func (u *UI) deleteApp(w http.ResponseWriter, r *http.Request, pg page) error {
	if !isConfirmed(r) {
		return u.confirmDeleteApp(w, r, pg)
	}
	a, err := u.svc.App(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := u.svc.DeleteApp(r.Context(), pg.P, a.ID); err != nil {
		return err
	}
	u.done(w, r, "/admin/apps", "Application "+a.Name+" deleted; its authorisations and tokens no longer work.")
	return nil
}
