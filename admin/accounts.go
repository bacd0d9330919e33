package admin

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// accounts is the operator's list of every account: rename, suspend,
// reactivate, create.
func (u *UI) accounts(w http.ResponseWriter, r *http.Request, pg page) error {
	p := listPage(r, gatehouse.DefaultPageSize)
	list, next, err := u.svc.Accounts(r.Context(), pg.P, p)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Accounts", "accounts"
	u.render(w, http.StatusOK, "accounts", struct {
		page
		Accounts []*gatehouse.Account
		Own      string
		Pager    pager
	}{pg, list, pg.P.AccountID, u.newPager("/admin/accounts", r.URL.Query(), p, gatehouse.Cursors{Next: next})})
	return nil
}

// createAccount makes an account with its first admin.
func (u *UI) createAccount(w http.ResponseWriter, r *http.Request, pg page) error {
	in := service.NewAccount{Name: r.PostForm.Get("name"), AdminEmail: r.PostForm.Get("admin_email"),
		AdminPassword: r.PostForm.Get("admin_password")}
	a, _, err := u.svc.CreateAccount(r.Context(), pg.P, in)
	if err != nil {
		return err
	}
	u.done(w, r, "/admin/accounts", "Created the account "+a.Name+".")
	return nil
}

// updateAccount renames an account, reactivates it at once, or suspends
// it after a confirmation that says what stops.
func (u *UI) updateAccount(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	var patch service.AccountPatch
	if name := r.PostForm.Get("name"); name != "" {
		patch.Name = &name
	}
	if st := gatehouse.AccountStatus(r.PostForm.Get("status")); st != "" {
		if st == gatehouse.AccountSuspended && !isConfirmed(r) {
			a, err := u.svc.Account(r.Context(), pg.P, id)
			if err != nil {
				return err
			}
			u.confirm(w, pg, confirmation{Question: "Suspend the account " + a.Name + "?",
				Action: "/admin/accounts/" + id, Cancel: "/admin/accounts",
				Buttons: []button{{Label: "Suspend", Name: "status", Value: string(gatehouse.AccountSuspended), Danger: true}},
				Stops: []string{"Every token, API token, client credential and admin UI session of the account is refused (401) at once, on every node.",
					"Its users cannot sign in (the password grant answers invalid_grant)."},
				Keeps: []string{"Nothing is deleted: reactivating the account makes whatever has not expired work again."}})
			return nil
		}
		patch.Status = &st
	}
	a, err := u.svc.UpdateAccount(r.Context(), pg.P, id, patch)
	if err != nil {
		return err
	}
	u.done(w, r, "/admin/accounts", "Saved the account "+a.Name+" ("+string(a.Status)+").")
	return nil
}
