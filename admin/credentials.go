package admin

import (
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/service"
)

func (u *UI) credentials(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.credentialsPage(w, r, pg, http.StatusOK)
}

func (u *UI) credentialsPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	p := listPage(r, gatehouse.MaxPageSize)
	creds, next, err := u.svc.Credentials(r.Context(), pg.P, "", p)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "API credentials", "credentials"
	u.render(w, status, "credentials", struct {
		page
		Creds []*gatehouse.Credential
		Pager pager
	}{pg, creds, u.newPager("/admin/credentials", r.URL.Query(), p, gatehouse.Cursors{Next: next})})
	return nil
}

func (u *UI) createCredential(w http.ResponseWriter, r *http.Request, pg page) error {
	c, err := u.svc.CreateCredential(r.Context(), pg.P, service.CredentialInput{Name: r.PostForm.Get("name")})
	if err != nil {
		return u.refuse(w, r, pg, err, "create", []string{"name"}, func(pg page, status int) error {
			return u.credentialsPage(w, r, pg, status)
		})
	}
	return u.reveal(w, r, pg, shown{
		Heading: "Credential " + c.Name + " created",
		Warning: "Keep the client secret safe. It is shown only this once; Gatehouse stores only a hash.",
		Values: []secret{{Label: "Client id", ID: "new-client-id", Value: c.ClientID},
			{Label: "Client secret", ID: "new-client-secret", Value: c.ClientSecret, Secret: true}},
		Notes:  []string{"Exchange it for a token: POST /v1/oauth/token with grant_type=client_credentials, the client id and the secret."},
		Back:   "/admin/credentials",
		BackTo: "Back to your credentials",
	})
}

// credentialBack is where a change of credential c returns to: the
// owner's page for an admin acting on someone else's, else the
// developer's own list.
func credentialBack(p *gatehouse.Principal, c *gatehouse.Credential) string {
	if c.UserID != p.UserID() {
		return "/admin/users/" + c.UserID
	}
	return "/admin/credentials"
}

// confirmDeleteCredential says what deleting a credential stops.
func (u *UI) confirmDeleteCredential(w http.ResponseWriter, r *http.Request, pg page) error {
	ctx := r.Context()
	c, err := u.svc.Credential(ctx, pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	n, err := u.svc.LiveTokenCount(ctx, pg.P, c.ClientID)
	if err != nil {
		return err
	}
	owner := "yours"
	if c.UserID != pg.P.UserID() {
		x, err := u.svc.User(ctx, pg.P, c.UserID)
		if err != nil {
			return err
		}
		owner = "of " + x.Email
	}
	u.confirm(w, pg, confirmation{
		Question: "Delete the credential " + c.Name + "?",
		Stops: []string{
			fmt.Sprintf("The credential %s (client id %s, %s) can no longer get tokens; deleting it is permanent.", c.Name, c.ClientID, owner),
			fmt.Sprintf("Its %s working now (last used %s).", agree(n, "live token", "live tokens", "stops", "stop"), when(c.LastUsedAt)),
			"Every integration that uses this client id and secret stops working.",
		},
		Action:  "/admin/credentials/" + c.ID + "/delete",
		Buttons: []button{{Label: "Delete credential", Danger: true}},
		Cancel:  credentialBack(pg.P, c),
	})
	return nil
}

func (u *UI) deleteCredential(w http.ResponseWriter, r *http.Request, pg page) error {
	if !isConfirmed(r) {
		return u.confirmDeleteCredential(w, r, pg)
	}
	c, err := u.svc.Credential(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := u.svc.DeleteCredential(r.Context(), pg.P, c.ID); err != nil {
		return err
	}
	u.done(w, r, credentialBack(pg.P, c), "Credential "+c.Name+" deleted; its tokens no longer work.")
	return nil
}

// rollCredential gives a credential a new secret at once (a leaked one is
// rolled into a new credential with the same name and scopes) and shows
// it, once.
func (u *UI) rollCredential(w http.ResponseWriter, r *http.Request, pg page) error {
	c, err := u.svc.Credential(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	s, err := u.svc.RollCredential(r.Context(), pg.P, c.ID, 0)
	if err != nil {
		return err
	}
	return u.reveal(w, r, pg, shown{
		Heading: "Credential " + c.Name + " rolled",
		Warning: "Keep the client secret safe. It is shown only this once; Gatehouse stores only a hash.",
		Values: []secret{{Label: "Client id", ID: "new-client-id", Value: s.ClientID},
			{Label: "Client secret", ID: "new-client-secret", Value: s.ClientSecret, Secret: true}},
		Notes:  []string{"The old secret no longer works. Put the new one where the old one was used."},
		Back:   credentialBack(pg.P, c),
		BackTo: "Back to the credentials",
	})
}

func (u *UI) credential(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.credentialPage(w, r, pg, http.StatusOK)
}

// credentialPage shows one credential with its plan. Its owner changes
// the plan; an admin looking at another user's credential sees it.
func (u *UI) credentialPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	ctx := r.Context()
	c, err := u.svc.Credential(ctx, pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	back, backTo, owner := credentialBack(pg.P, c), "API credentials", ""
	pv := newPlanView(pg, c.Plan, true, "/admin/credentials/"+c.ID+"/plan")
	if c.UserID != pg.P.UserID() {
		x, err := u.svc.User(ctx, pg.P, c.UserID)
		if err != nil {
			return err
		}
		backTo, owner = x.Email, x.Email
		pv.Action, pv.Note = "", "Only its owner changes the plan of a client credential; a plan set on "+x.Email+" counts every request of theirs."
	}
	pg.Title, pg.Page = "Credential "+c.Name, "credentials"
	u.render(w, status, "credential", struct {
		page
		Cred                *gatehouse.Credential
		Owner, Back, BackTo string
		Plan                planView
	}{pg, c, owner, back, backTo, pv})
	return nil
}

// credentialPlan sets or clears the plan of one of the developer's own
// credentials.
func (u *UI) credentialPlan(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	c, err := u.svc.Credential(r.Context(), pg.P, id)
	if err != nil {
		return err
	}
	return u.savePlan(w, r, pg, true, func(p plan.Patch) error {
		_, err := u.svc.UpdateCredential(r.Context(), pg.P, id, service.CredentialPatch{Patch: p})
		return err
	}, func(pg page, status int) error {
		return u.credentialPage(w, r, pg, status)
	}, "/admin/credentials/"+id, "the credential "+c.Name)
}
