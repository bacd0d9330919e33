package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// signInForm parses a sign-in form and checks its CSRF token against the
// sign-in cookie; when either fails it answers, and reports false.
func (u *UI) signInForm(w http.ResponseWriter, r *http.Request) bool {
	if err := httpx.ParseForm(w, r); err != nil {
		u.fail(w, r, page{}, err)
		return false
	}
	if !loginCSRF(r) {
		u.message(w, http.StatusForbidden, "Request refused", "The sign-in form's security token is missing or out of date. Reload the page and try again.")
		return false
	}
	return true
}

// signedIn ends a finished sign-in: the sign-in cookies go, the session's
// comes, and the browser goes on to the page it asked for, or the console.
// A session of another user that the browser held is ended, not left
// behind the new cookie, and the new page says so: one browser is never
// switched from one user to another without a word.
func (u *UI) signedIn(w http.ResponseWriter, r *http.Request, session string) {
	replaced := u.endReplaced(r, session)
	u.clearCookie(w, r, signInCookie)
	u.clearCookie(w, r, loginCookie)
	u.setCookie(w, r, sessionCookie, session, int(service.SessionLifetime.Seconds()))
	msg := u.elsewhere(r.Context(), session)
	if replaced != "" {
		msg = strings.TrimSpace("You were signed out as " + replaced + ". " + msg)
	}
	if msg != "" {
		u.setCookie(w, r, flashCookie, url.QueryEscape(msg), 60)
	}
	if next := safeNext(r.PostForm.Get("next")); next != "" {
		u.redirect(w, r, next)
		return
	}
	u.redirect(w, r, "/admin")
}

// endReplaced ends the console session the browser held when it is of
// another user than the new session's, and returns that user's address
// ("" when there was none, or it was the same user's). A session that
// cannot be ended is logged; the sign-in stands regardless, its cookie in
// the old one's place.
func (u *UI) endReplaced(r *http.Request, session string) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || c.Value == session {
		return ""
	}
	old, _, err := u.svc.SessionPrincipal(r.Context(), c.Value)
	if err != nil {
		return ""
	}
	now, _, err := u.svc.SessionPrincipal(r.Context(), session)
	if err != nil || now.User.ID == old.User.ID {
		return ""
	}
	if err := u.svc.Logout(r.Context(), old); err != nil {
		u.logger.Warn("sign-in: the replaced session could not be ended", "err", err)
	}
	return old.User.Email
}

// elsewhere is what a new sign-in tells its user of the other sessions
// they hold — how many, and where and when the latest began — or "" when
// there are none (or they cannot be read: the sign-in stands regardless).
func (u *UI) elsewhere(ctx context.Context, session string) string {
	p, _, err := u.svc.SessionPrincipal(ctx, session)
	if err != nil {
		return ""
	}
	all, err := u.svc.Sessions(ctx, p, p.UserID())
	if err != nil {
		return ""
	}
	var others []service.SessionInfo
	for _, se := range all {
		if !se.Current {
			others = append(others, se)
		}
	}
	if len(others) == 0 {
		return ""
	}
	latest := slices.MaxFunc(others, func(a, b service.SessionInfo) int { return a.CreatedAt.Compare(b.CreatedAt) })
	where := ""
	if latest.ClientAddr != "" {
		where = " from " + latest.ClientAddr
	}
	return fmt.Sprintf("You are also signed in elsewhere: %s, the latest begun %s%s. Not you? End them under Your account.",
		plural(len(others), "other session", "other sessions"), latest.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"), where)
}
