package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/service"
)

// usersPerPage is the size of a page of the users list.
const usersPerPage = 50

// listPage reads the page a list link asks for (?after= or ?before=).
func listPage(r *http.Request, size int) gatehouse.Page {
	q := r.URL.Query()
	return gatehouse.Page{Limit: size, After: q.Get("after"), Before: q.Get("before")}
}

// pager is the navigation of a paged list: links to the first, previous
// and next pages ("" when there is none).
type pager struct {
	First, Prev, Next string
}

// newPager links the pages beside one page of a list at base (a UI path)
// with the query q.
func (u *UI) newPager(base string, q url.Values, p gatehouse.Page, c gatehouse.Cursors) pager {
	link := func(key, id string) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "after" && k != "before" && len(vs) > 0 && vs[0] != "" {
				v[k] = vs[:1]
			}
		}
		if key != "" {
			v.Set(key, id)
		}
		if len(v) == 0 {
			return u.path(base)
		}
		return u.path(base + "?" + v.Encode())
	}
	var out pager
	if c.Prev != "" || p.After != "" || p.Before != "" {
		out.First = link("", "")
	}
	if c.Prev != "" {
		out.Prev = link("before", c.Prev)
	}
	if c.Next != "" {
		out.Next = link("after", c.Next)
	}
	return out
}

// userFilter reads the users list's search form.
func userFilter(r *http.Request) gatehouse.UserFilter {
	q := r.URL.Query()
	return gatehouse.UserFilter{Query: q.Get("q"), Role: gatehouse.Role(q.Get("role")), Status: gatehouse.UserStatus(q.Get("status"))}
}

func (u *UI) users(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.usersPage(w, r, pg, http.StatusOK)
}

func (u *UI) usersPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	f := userFilter(r)
	p := listPage(r, usersPerPage)
	users, c, err := u.svc.Users(r.Context(), pg.P, f, p)
	total := 0
	if err == nil {
		total, err = u.svc.CountUsers(r.Context(), pg.P, f)
	}
	if refusable(err) {
		// A bad search: the search form says so, and the list is empty.
		pg.Form = &form{name: "search", values: r.URL.Query(), msg: gatehouse.ErrorMessage(err)}
		if field, hint := gatehouse.ErrorField(err); field != "" {
			pg.Form.field, pg.Form.msg = field, hint
		}
		status, users, c = http.StatusBadRequest, nil, gatehouse.Cursors{}
	} else if err != nil {
		return err
	}
	pg.Title, pg.Page = "Users", "users"
	u.render(w, status, "users", struct {
		page
		Filter    gatehouse.UserFilter
		Filtering bool
		Users     []*gatehouse.User
		Total     int
		Pager     pager
	}{pg, f, f != (gatehouse.UserFilter{}), users, total, u.newPager("/admin/users", r.URL.Query(), p, c)})
	return nil
}

// roles reads the role checkboxes of a form.
func roles(r *http.Request) []gatehouse.Role {
	out := []gatehouse.Role{}
	for _, v := range r.PostForm["role"] {
		out = append(out, gatehouse.Role(v))
	}
	return out
}

func (u *UI) createUser(w http.ResponseWriter, r *http.Request, pg page) error {
	f := r.PostForm
	nu, err := u.svc.CreateUser(r.Context(), pg.P, service.NewUser{Email: f.Get("email"), Name: f.Get("name"), Password: f.Get("password"), Roles: roles(r)})
	if gatehouse.ErrorCode(err) == gatehouse.EConflict {
		err = gatehouse.Field(err, "email", "Someone already uses this e-mail address.")
	}
	if err != nil {
		return u.refuse(w, r, pg, err, "create", []string{"email", "name", "password", "roles"}, func(pg page, status int) error {
			return u.usersPage(w, r, pg, status)
		})
	}
	// The new user is shown at once, whichever page they would be on.
	u.done(w, r, "/admin/users?q="+url.QueryEscape(nu.Email), "Created "+nu.Email+".")
	return nil
}

// userView is everything the page of one user shows.
type userView struct {
	page
	User        *gatehouse.User
	Self        bool
	Credentials []*gatehouse.Credential
	MoreCreds   bool
	APIAccess   *gatehouse.APIApplication
	APITokens   []*gatehouse.APIToken
	Sessions    []service.SessionInfo
	MFA         *service.MFAStatus
	Tokens      int
	// Authorizations are the third-party applications they authorised.
	Authorizations []*gatehouse.Authorization
	ByThem         []*gatehouse.AuditEntry
	AboutThem      []*gatehouse.AuditEntry
	AuditByURL     string
	AuditOnURL     string
	// Plan is the user's plan and the form that changes it.
	Plan planView
}

func (u *UI) user(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.userPage(w, r, pg, http.StatusOK)
}

func (u *UI) userPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	x, err := u.svc.User(ctx, pg.P, id)
	if err != nil {
		return err
	}
	v := userView{User: x, Self: x.ID == pg.P.UserID()}
	var next string
	if v.Credentials, next, err = u.svc.Credentials(ctx, pg.P, x.ID, gatehouse.Page{Limit: gatehouse.MaxPageSize}); err != nil {
		return err
	}
	v.MoreCreds = next != ""
	if v.APIAccess, err = u.svc.UserAPIAccess(ctx, pg.P, x.ID); err != nil {
		return err
	}
	if v.APITokens, err = u.svc.APITokensCreatedBy(ctx, pg.P, x.ID); err != nil {
		return err
	}
	if v.Sessions, err = u.svc.Sessions(ctx, pg.P, x.ID); err != nil {
		return err
	}
	if v.MFA, err = u.svc.UserSecondFactors(ctx, pg.P, x.ID); err != nil {
		return err
	}
	if v.Tokens, _, err = u.svc.UserTokenCount(ctx, pg.P, x.ID); err != nil {
		return err
	}
	if v.Authorizations, _, err = u.svc.Authorizations(ctx, pg.P, x.ID, gatehouse.Page{Limit: gatehouse.MaxPageSize}); err != nil {
		return err
	}
	recent := gatehouse.Page{Limit: 10}
	if v.ByThem, _, err = u.svc.Audit(ctx, pg.P, service.AuditQuery{Actor: x.ID}, recent); err != nil {
		return err
	}
	if v.AboutThem, _, err = u.svc.Audit(ctx, pg.P, service.AuditQuery{Target: x.ID}, recent); err != nil {
		return err
	}
	v.AuditByURL = u.path("/admin/audit?" + url.Values{"actor": {x.ID}}.Encode())
	v.AuditOnURL = u.path("/admin/audit?" + url.Values{"target": {x.ID}}.Encode())
	pg.Title, pg.Page = x.Email, "users"
	v.page = pg
	v.Plan = newPlanView(pg, x.Plan, false, "/admin/users/"+x.ID+"/plan")
	u.render(w, status, "user", v)
	return nil
}

// userPatch reads the roles and status form of the user page.
func userPatch(r *http.Request) service.UserPatch {
	rs := roles(r)
	status := gatehouse.UserStatus(r.PostForm.Get("status"))
	return service.UserPatch{Roles: &rs, Status: &status, RevokeCredentials: r.PostForm.Get("revoke_credentials") == "true"}
}

// updateUser changes a user's roles and status. A change that stops
// something working, leaves credentials live or takes the admin's own
// rights is shown on a confirmation page first.
func (u *UI) updateUser(w http.ResponseWriter, r *http.Request, pg page) error {
	id, patch := r.PathValue("id"), userPatch(r)
	refused := func(err error) error {
		return u.refuse(w, r, pg, err, "change", []string{"role", "status"}, func(pg page, status int) error {
			return u.userPage(w, r, pg, status)
		})
	}
	if !isConfirmed(r) {
		ch, err := u.svc.PreviewUserChange(r.Context(), pg.P, id, patch)
		if err != nil {
			return refused(err)
		}
		if ch.NeedsConfirmation() {
			u.confirm(w, pg, u.userChangeConfirmation(ch, r.PostForm))
			return nil
		}
	}
	nu, err := u.svc.UpdateUser(r.Context(), pg.P, id, patch)
	if err != nil {
		return refused(err)
	}
	if nu.ID == pg.P.UserID() && !nu.IsAdmin() {
		u.done(w, r, "/admin", "You are no longer an admin.")
		return nil
	}
	u.done(w, r, "/admin/users/"+nu.ID, "Saved "+nu.Email+".")
	return nil
}

// userChangeConfirmation says what a change of a user stops.
func (u *UI) userChangeConfirmation(ch *service.UserChange, posted url.Values) confirmation {
	x := ch.User
	c := confirmation{Action: "/admin/users/" + x.ID, Cancel: "/admin/users/" + x.ID,
		Hidden: url.Values{"role": posted["role"], "status": {posted.Get("status")}}}
	who := subject(x.Email, ch.Self)
	names := credentialNames(ch.Credentials)
	switch {
	case ch.Disables:
		c.Question = "Disable " + x.Email + "?"
		c.Stops = append(c.Stops, who+" can no longer sign in, here or with the password grant.")
		if ch.Sessions > 0 {
			c.Stops = append(c.Stops, fmt.Sprintf("Their %s now.", agree(ch.Sessions, "admin UI session", "admin UI sessions", "ends", "end")))
		}
		if ch.Tokens > 0 {
			c.Stops = append(c.Stops, fmt.Sprintf("Their %s working for good; enabling %s again brings none back.",
				agree(ch.Tokens, "live token", "live tokens", "stops", "stop"), map[bool]string{true: "yourself", false: "them"}[ch.Self]))
		}
		if len(ch.Credentials) > 0 {
			c.Stops = append(c.Stops, fmt.Sprintf("Their %s (%s) can no longer get tokens while the user is disabled.",
				plural(len(ch.Credentials), "client credential", "client credentials"), names))
		}
		c.Stops = append(c.Stops, fmt.Sprintf("API tokens that act as %s with the %s header are refused.", x.Email, u.headers.UserEmail))
		c.Buttons = []button{{Label: "Disable " + x.Email, Danger: true}}
	case ch.LosesAdmin && ch.Self:
		c.Question = "Remove your own admin role?"
		c.Stops = append(c.Stops, "You lose every admin page at once; only another admin can give the role back.")
		c.Buttons = []button{{Label: "Remove my admin role", Danger: true}}
	default:
		c.Question = "Change the roles of " + x.Email + "?"
		c.Buttons = []button{{Label: "Save changes", Danger: true}}
	}
	if ch.LosesAdmin && ch.APIAccess != nil {
		c.Stops = append(c.Stops, fmt.Sprintf("The API access application (client id %s) is deleted; its %s working.",
			ch.APIAccess.ClientID, agree(ch.Tokens, "live token", "live tokens", "stops", "stop")))
	}
	if ch.LosesDeveloper && !ch.Disables && len(ch.Credentials) > 0 {
		c.Keeps = append(c.Keeps, fmt.Sprintf("Without the developer role, %s keep working unless you revoke them: %s.",
			plural(len(ch.Credentials), "client credential", "client credentials"), names))
		c.Buttons = []button{
			{Label: "Remove role and revoke credentials", Name: "revoke_credentials", Value: "true", Danger: true},
			{Label: "Remove role, keep credentials", Name: "revoke_credentials", Value: "false"},
		}
	}
	return c
}

// credentialNames lists credentials by name and client id.
func credentialNames(cs []*gatehouse.Credential) string {
	parts := make([]string, 0, len(cs))
	for i, c := range cs {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-10))
			break
		}
		parts = append(parts, c.Name+" ("+c.ClientID+")")
	}
	return strings.Join(parts, ", ")
}

// subject is who a sentence of a confirmation starts with: "You" for the
// admin themselves, else the address exactly as it is written (an
// address is never capitalised: "ops@example.com" stays so).
func subject(email string, self bool) string {
	if self {
		return "You"
	}
	return email
}

// capitalize makes the first letter of a sentence upper case.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (u *UI) resetPassword(w http.ResponseWriter, r *http.Request, pg page) error {
	pw := r.PostForm.Get("password")
	nu, err := u.svc.UpdateUser(r.Context(), pg.P, r.PathValue("id"), service.UserPatch{Password: &pw})
	if err != nil {
		return u.refuse(w, r, pg, err, "password", []string{"password"}, func(pg page, status int) error {
			return u.userPage(w, r, pg, status)
		})
	}
	u.done(w, r, "/admin/users/"+nu.ID, "New password set for "+nu.Email+"; their password sign-ins and sessions ended.")
	return nil
}

// userPlan sets or clears the rate limit and quota of a user: every
// request made as them counts against it.
func (u *UI) userPlan(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	x, err := u.svc.User(r.Context(), pg.P, id)
	if err != nil {
		return err
	}
	return u.savePlan(w, r, pg, false, func(p plan.Patch) error {
		_, err := u.svc.UpdateUser(r.Context(), pg.P, id, service.UserPatch{Patch: p})
		return err
	}, func(pg page, status int) error {
		return u.userPage(w, r, pg, status)
	}, "/admin/users/"+id, x.Email)
}

func (u *UI) clearThrottle(w http.ResponseWriter, r *http.Request, pg page) error {
	nu, err := u.svc.ClearThrottle(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	u.done(w, r, "/admin/users/"+nu.ID, "Cleared the failed sign-ins of "+nu.Email+"; they can sign in again.")
	return nil
}

func (u *UI) endSessions(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	n, err := u.svc.EndSessions(r.Context(), pg.P, id)
	if err != nil {
		return err
	}
	u.done(w, r, "/admin/users/"+id, capitalize(plural(n, "session", "sessions"))+" ended.")
	return nil
}

// confirmDeleteUser asks before deleting a user, saying what ends and
// what the audit log keeps.
func (u *UI) confirmDeleteUser(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	x, err := u.svc.User(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	who := subject(x.Email, x.ID == pg.P.UserID())
	u.confirm(w, pg, confirmation{
		Question: "Delete " + x.Email + "?",
		Stops: []string{
			who + " can no longer sign in, here or with the password grant; every admin UI session and token ends at once, on every node.",
			"Their client credentials and API access application are deleted, with every token they issued.",
			fmt.Sprintf("API tokens that act as %s with the %s header are refused.", x.Email, u.headers.UserEmail),
			"They leave every workspace. This cannot be undone.",
		},
		Keeps: []string{
			"The audit log keeps every entry by or about them, under their id " + x.ID + ".",
			"The address " + x.Email + " is free again: a new user may be created with it.",
		},
		Action:  "/admin/users/" + x.ID + "/delete",
		Cancel:  "/admin/users/" + x.ID,
		Buttons: []button{{Label: "Delete " + x.Email, Danger: true}},
	})
	return nil
}

// deleteUser deletes a user after the confirmation page.
func (u *UI) deleteUser(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	if !isConfirmed(r) {
		u.redirect(w, r, "/admin/users/"+id+"/delete")
		return nil
	}
	x, err := u.svc.User(r.Context(), pg.P, id)
	if err != nil {
		return err
	}
	if err := u.svc.DeleteUser(r.Context(), pg.P, id); err != nil {
		return err
	}
	if x.ID == pg.P.UserID() {
		u.clearCookie(w, r, sessionCookie)
		u.redirect(w, r, "/admin/login")
		return nil
	}
	u.done(w, r, "/admin/users", "Deleted "+x.Email+"; every credential of theirs has ended.")
	return nil
}

// confirmResetMFA asks before removing a user's second factors.
func (u *UI) confirmResetMFA(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	x, err := u.svc.User(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	u.confirm(w, pg, confirmation{
		Question: "Reset the second factor of " + x.Email + "?",
		Stops: []string{
			"Their authenticator app and recovery codes stop working: they sign in with their password alone until they set up a new one.",
		},
		Keeps:   []string{"Their sessions, tokens and credentials keep working. An account that requires a second factor leads them to set one up at their next page."},
		Action:  "/admin/users/" + x.ID + "/mfa/reset",
		Cancel:  "/admin/users/" + x.ID,
		Buttons: []button{{Label: "Reset second factor", Danger: true}},
	})
	return nil
}

// resetMFA removes a user's second factors, once confirmed.
func (u *UI) resetMFA(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	if !isConfirmed(r) {
		u.redirect(w, r, "/admin/users/"+id+"/mfa/reset")
		return nil
	}
	if err := u.svc.ResetSecondFactors(r.Context(), pg.P, id); err != nil {
		return err
	}
	u.done(w, r, "/admin/users/"+id, "Second factor reset.")
	return nil
}
