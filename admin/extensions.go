package admin

import (
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/service"
)

func (u *UI) extensions(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.extensionsPage(w, r, pg, http.StatusOK)
}

func (u *UI) extensionsPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	on, err := u.svc.APITokensExtension(r.Context(), pg.P)
	if err != nil {
		return err
	}
	p := listPage(r, gatehouse.MaxPageSize)
	toks, next, err := u.svc.APITokens(r.Context(), pg.P, p)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Extensions", "extensions"
	u.render(w, status, "extensions", struct {
		page
		Enabled bool
		Tokens  []*gatehouse.APIToken
		Pager   pager
	}{pg, on, toks, u.newPager("/admin/extensions", r.URL.Query(), p, gatehouse.Cursors{Next: next})})
	return nil
}

// toggleAPITokens turns the extension on at once; turning it off is
// confirmed first, as it stops every integration that uses an API token.
func (u *UI) toggleAPITokens(w http.ResponseWriter, r *http.Request, pg page) error {
	on := r.PostForm.Get("enabled") == "true"
	if !on && !isConfirmed(r) {
		return u.confirmAPITokensOff(w, r, pg)
	}
	if err := u.svc.SetAPITokensExtension(r.Context(), pg.P, &on); err != nil {
		return err
	}
	u.done(w, r, "/admin/extensions", map[bool]string{true: "API tokens turned on.", false: "API tokens turned off."}[on])
	return nil
}

// confirmAPITokensOff says which integrations turning the extension off
// stops.
func (u *UI) confirmAPITokensOff(w http.ResponseWriter, r *http.Request, pg page) error {
	im, err := u.svc.ExtensionOffImpact(r.Context(), pg.P)
	if err != nil {
		return err
	}
	c := confirmation{Question: "Turn the API tokens extension off?", Action: "/admin/extensions/api-tokens",
		Buttons: []button{{Label: "Turn off", Name: "enabled", Value: "false", Danger: true}}, Cancel: "/admin/extensions"}
	c.Stops = append(c.Stops, fmt.Sprintf("Every API token of the account is refused (401) until the extension is on again: %s.",
		tokenNames(im.Tokens)))
	if im.Minted > 0 {
		c.Stops = append(c.Stops, fmt.Sprintf("%s made through an API token can no longer get tokens.",
			capitalize(plural(im.Minted, "client credential", "client credentials"))))
	}
	c.Keeps = []string{"The tokens are not deleted: turning the extension on again makes them work again."}
	u.confirm(w, pg, c)
	return nil
}

// tokenNames lists API tokens by name, with their last use.
func tokenNames(ts []*gatehouse.APIToken) string {
	if len(ts) == 0 {
		return "there are none now"
	}
	s := ""
	for i, t := range ts {
		if i == 10 {
			return s + fmt.Sprintf(" and %d more", len(ts)-10)
		}
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s (%s…, last used %s)", t.Name, t.Prefix, when(t.LastUsedAt))
	}
	return s
}

func (u *UI) createAPIToken(w http.ResponseWriter, r *http.Request, pg page) error {
	t, err := u.svc.CreateAPIToken(r.Context(), pg.P, service.APITokenInput{Name: r.PostForm.Get("name")})
	if err != nil {
		return u.refuse(w, r, pg, err, "create", []string{"name"}, func(pg page, status int) error {
			return u.extensionsPage(w, r, pg, status)
		})
	}
	return u.reveal(w, r, pg, shown{
		Heading: "API token " + t.Name + " generated",
		Warning: "Keep this token safe. It is shown only this once; Gatehouse stores only a hash and cannot show it again.",
		Values:  []secret{{Label: "API token " + t.Name, ID: "api-token", Value: t.Token, Secret: true}},
		Notes: []string{fmt.Sprintf("Send it in the %s header; add %s with a user's e-mail address to act as that user.",
			u.headers.APIToken, u.headers.UserEmail)},
		Back:   "/admin/extensions",
		BackTo: "Back to extensions",
	})
}

// confirmRevokeAPIToken says what revoking an API token stops.
func (u *UI) confirmRevokeAPIToken(w http.ResponseWriter, r *http.Request, pg page) error {
	im, err := u.svc.APITokenRevokeImpact(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	t := im.Tokens[0]
	c := confirmation{Question: "Revoke the API token " + t.Name + "?", Action: "/admin/api-tokens/" + t.ID + "/revoke",
		Buttons: []button{{Label: "Revoke token", Danger: true}}, Cancel: "/admin/extensions"}
	c.Stops = append(c.Stops, fmt.Sprintf("The token %s (%s…, last used %s) is refused from the next request on, for good.",
		t.Name, t.Prefix, when(t.LastUsedAt)))
	if len(im.Tokens) > 1 {
		c.Stops = append(c.Stops, fmt.Sprintf("The API tokens made with it are revoked too: %s.", tokenNames(im.Tokens[1:])))
	}
	if im.Minted > 0 {
		c.Stops = append(c.Stops, fmt.Sprintf("%s made through it are deleted.",
			capitalize(plural(im.Minted, "client credential or API access application", "client credentials and API access applications"))))
	}
	c.Stops = append(c.Stops, "Every integration that sends it stops working.")
	u.confirm(w, pg, c)
	return nil
}

func (u *UI) revokeAPIToken(w http.ResponseWriter, r *http.Request, pg page) error {
	if !isConfirmed(r) {
		return u.confirmRevokeAPIToken(w, r, pg)
	}
	if err := u.svc.DeleteAPIToken(r.Context(), pg.P, r.PathValue("id")); err != nil {
		return err
	}
	u.done(w, r, "/admin/extensions", "Token revoked.")
	return nil
}

// rollAPIToken replaces an API token with a new one at once (a leaked one
// is rolled into a new token with the same name and scopes) and shows it,
// once.
func (u *UI) rollAPIToken(w http.ResponseWriter, r *http.Request, pg page) error {
	t, err := u.svc.RollAPIToken(r.Context(), pg.P, r.PathValue("id"), 0)
	if err != nil {
		return err
	}
	return u.reveal(w, r, pg, shown{
		Heading: "API token " + t.Name + " rolled",
		Warning: "Keep this token safe. It is shown only this once; Gatehouse stores only a hash and cannot show it again.",
		Values:  []secret{{Label: "API token " + t.Name, ID: "api-token", Value: t.Token, Secret: true}},
		Notes:   []string{"The old token no longer works. Put the new one where the old one was used."},
		Back:    "/admin/extensions",
		BackTo:  "Back to extensions",
	})
}

func (u *UI) apiToken(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.apiTokenPage(w, r, pg, http.StatusOK)
}

// apiTokenPage shows one API token with its plan and the form that
// changes it.
func (u *UI) apiTokenPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	t, err := u.svc.APIToken(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "API token "+t.Name, "extensions"
	u.render(w, status, "apitoken", struct {
		page
		Token *gatehouse.APIToken
		Plan  planView
	}{pg, t, newPlanView(pg, t.Plan, true, "/admin/api-tokens/"+t.ID+"/plan")})
	return nil
}

// apiTokenPlan sets or clears the plan of an API token.
func (u *UI) apiTokenPlan(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	t, err := u.svc.APIToken(r.Context(), pg.P, id)
	if err != nil {
		return err
	}
	return u.savePlan(w, r, pg, true, func(p plan.Patch) error {
		_, err := u.svc.UpdateAPIToken(r.Context(), pg.P, id, service.CredentialPatch{Patch: p})
		return err
	}, func(pg page, status int) error {
		return u.apiTokenPage(w, r, pg, status)
	}, "/admin/api-tokens/"+id, "the API token "+t.Name)
}
