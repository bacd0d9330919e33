package admin

import (
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// developerRow is a developer with their live credentials.
type developerRow struct {
	User        *gatehouse.User
	Credentials []*gatehouse.Credential
	More        bool
}

// findSize is how many users a search for a new developer shows.
const findSize = 20

func (u *UI) developers(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	ctx := r.Context()
	p := listPage(r, usersPerPage)
	devs, c, err := u.svc.Users(ctx, pg.P, gatehouse.UserFilter{Role: gatehouse.RoleDeveloper}, p)
	if err != nil {
		return err
	}
	total, err := u.svc.CountUsers(ctx, pg.P, gatehouse.UserFilter{Role: gatehouse.RoleDeveloper})
	if err != nil {
		return err
	}
	rows := make([]developerRow, len(devs))
	for i, d := range devs {
		cs, next, err := u.svc.Credentials(ctx, pg.P, d.ID, gatehouse.Page{Limit: 20})
		if err != nil {
			return err
		}
		rows[i] = developerRow{d, cs, next != ""}
	}
	// Adding a developer starts with a search, so that every user can be
	// found however many there are.
	find := r.URL.Query().Get("find")
	var found []*gatehouse.User
	more := false
	if find != "" {
		var fc gatehouse.Cursors
		found, fc, err = u.svc.Users(ctx, pg.P, gatehouse.UserFilter{Query: find}, gatehouse.Page{Limit: findSize})
		if refusable(err) {
			pg.Form = &form{name: "find", values: r.URL.Query(), field: "find", msg: "Search for at most 200 characters on one line, without tabs or other control characters."}
			found, err = nil, nil
		}
		if err != nil {
			return err
		}
		more = fc.Next != ""
	}
	pg.Title, pg.Page = "Developers", "developers"
	u.render(w, http.StatusOK, "developers", struct {
		page
		Developers []developerRow
		Total      int
		Pager      pager
		Find       string
		Found      []*gatehouse.User
		MoreFound  bool
	}{pg, rows, total, u.newPager("/admin/developers", r.URL.Query(), p, c), find, found, more})
	return nil
}

func (u *UI) addDeveloper(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PostForm.Get("user_id")
	if _, err := u.svc.SetDeveloper(r.Context(), pg.P, id, true, false); err != nil {
		return err
	}
	x, err := u.svc.User(r.Context(), pg.P, id)
	if err != nil {
		return err
	}
	u.done(w, r, "/admin/developers", x.Email+" is a developer now.")
	return nil
}

// confirmRemoveDeveloper says which credentials stay live and offers to
// revoke them.
func (u *UI) confirmRemoveDeveloper(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	x, err := u.svc.User(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	cs, err := u.svc.AllCredentials(r.Context(), pg.P, x.ID)
	if err != nil {
		return err
	}
	c := confirmation{Question: "Remove the developer role of " + x.Email + "?", Action: "/admin/developers/" + x.ID + "/remove",
		Cancel: "/admin/developers"}
	c.Stops = []string{x.Email + " can no longer make or manage client credentials of their own."}
	if len(cs) == 0 {
		c.Keeps = []string{x.Email + " has no client credentials."}
		c.Buttons = []button{{Label: "Remove developer role", Name: "revoke", Value: "false", Danger: true}}
	} else {
		c.Keeps = []string{fmt.Sprintf("%s has %s. Removing the developer role keeps %s working unless you revoke %s too: %s.",
			x.Email, plural(len(cs), "live API credential", "live API credentials"),
			map[bool]string{true: "it", false: "them"}[len(cs) == 1], map[bool]string{true: "it", false: "them"}[len(cs) == 1],
			credentialNames(cs))}
		c.Buttons = []button{
			{Label: "Remove role and revoke credentials", Name: "revoke", Value: "true", Danger: true},
			{Label: "Remove role, keep credentials", Name: "revoke", Value: "false"},
		}
	}
	u.confirm(w, pg, c)
	return nil
}

func (u *UI) removeDeveloper(w http.ResponseWriter, r *http.Request, pg page) error {
	if !isConfirmed(r) {
		return u.confirmRemoveDeveloper(w, r, pg)
	}
	revoke := r.PostForm.Get("revoke") == "true"
	n, err := u.svc.SetDeveloper(r.Context(), pg.P, r.PathValue("id"), false, revoke)
	if err != nil {
		return err
	}
	msg := "Developer removed."
	if n > 0 {
		msg = fmt.Sprintf("Developer removed; %s still live.", plural(n, "credential", "credentials"))
	} else if revoke {
		msg = "Developer removed and their credentials revoked."
	}
	u.done(w, r, "/admin/developers", msg)
	return nil
}
