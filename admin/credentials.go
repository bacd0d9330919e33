package admin

import (
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse"
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
