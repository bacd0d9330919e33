package admin

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// me is every signed-in user's own page: who they are, their password,
// their sessions and what they hold.
func (u *UI) me(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.mePage(w, r, pg, http.StatusOK)
}

func (u *UI) mePage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	ctx, id := r.Context(), pg.P.UserID()
	sessions, err := u.svc.Sessions(ctx, pg.P, id)
	if err != nil {
		return err
	}
	tokens, _, err := u.svc.UserTokenCount(ctx, pg.P, id)
	if err != nil {
		return err
	}
	var creds []*gatehouse.Credential
	if pg.Developer {
		if creds, _, err = u.svc.Credentials(ctx, pg.P, "", gatehouse.Page{Limit: gatehouse.MaxPageSize}); err != nil {
			return err
		}
	}
	var app *gatehouse.APIApplication
	if pg.Admin {
		if app, err = u.svc.APIAccess(ctx, pg.P); err != nil {
			return err
		}
	}
	grants, _, err := u.svc.Authorizations(ctx, pg.P, "", gatehouse.Page{Limit: gatehouse.MaxPageSize})
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Your account", "me"
	u.render(w, status, "me", struct {
		page
		Sessions       []service.SessionInfo
		Tokens         int
		Credentials    []*gatehouse.Credential
		APIAccess      *gatehouse.APIApplication
		Authorizations []*gatehouse.Authorization
	}{pg, sessions, tokens, creds, app, grants})
	return nil
}

func (u *UI) changePassword(w http.ResponseWriter, r *http.Request, pg page) error {
	f := r.PostForm
	if f.Get("new_password") != f.Get("repeat_password") {
		return u.refuse(w, r, pg, gatehouse.InvalidField("repeat_password", "The two new passwords differ.", "the new passwords differ"),
			"password", []string{"repeat_password"}, func(pg page, status int) error { return u.mePage(w, r, pg, status) })
	}
	err := u.svc.ChangeOwnPassword(r.Context(), pg.P, f.Get("current_password"), f.Get("new_password"), httpx.ClientAddr(r))
	if err != nil {
		return u.refuse(w, r, pg, err, "password", []string{"current_password", "new_password"}, func(pg page, status int) error {
			return u.mePage(w, r, pg, status)
		})
	}
	u.done(w, r, "/admin/me", "Password changed. Your other sessions and password sign-ins have ended.")
	return nil
}

func (u *UI) endOwnSessions(w http.ResponseWriter, r *http.Request, pg page) error {
	n, err := u.svc.EndSessions(r.Context(), pg.P, pg.P.UserID())
	if err != nil {
		return err
	}
	u.done(w, r, "/admin/me", "Signed out of "+plural(n, "other session", "other sessions")+".")
	return nil
}
