package admin

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// ssoCookie binds a single sign-on under way to the browser that began it.
const ssoCookie = httpx.CookiePrefix + "sso"

// The single sign-on routes, served without a session (SPEC §10.6).
const (
	ssoPagePattern     = "GET /admin/sso"
	ssoPattern         = "POST /admin/sso"
	ssoCallbackPattern = "GET " + ssoCallbackPath
	ssoCallbackPath    = "/admin/sso/callback"
)

// SSOCallbackPath is the path of the console's single sign-on callback
// (under the management prefix): the redirect URI registered at each
// identity provider is the public URL followed by it.
const SSOCallbackPath = ssoCallbackPath

// redirectURL is the callback registered at identity providers: built from
// the configured issuer, never from the request.
func (u *UI) redirectURL() string { return u.issuer + u.path(ssoCallbackPath) }

// ssoPage asks for the address whose account's provider signs in. With
// ?account=ID it is a link to that account's provider (a bookmark, the
// provider's own portal): followed from the console's own pages or by the
// person themselves (a bookmark, the address bar), in a browser that
// holds no session, it sends the browser to the provider at once. From
// another site — or with a session that the sign-in would replace — it
// asks first, with a form to post: a page elsewhere must not sign its
// visitor in as a user of an account whose provider its author runs
// (login CSRF). A page's fetch, image or frame gets the address form and
// starts nothing (nor counts against the address's starts), so that a
// page elsewhere cannot spend an office's starts.
func (u *UI) ssoPage(w http.ResponseWriter, r *http.Request) {
	acc := r.URL.Query().Get("account")
	if acc == "" || !topLevelNavigation(r) {
		u.ssoForm(w, r, http.StatusOK, "")
		return
	}
	current, held := u.currentSession(r)
	if u.ownNavigation(r) && !held {
		u.startSSO(w, r, "", acc, false)
		return
	}
	csrf := rand.Text()
	u.setCookie(w, r, loginCookie, csrf, 600)
	pg := struct {
		page
		Account, Current string
		SignedIn         bool
	}{page: page{Title: "Sign in with SSO", CSRF: csrf}, Account: acc, SignedIn: held}
	if current != nil {
		pg.Current = current.User.Email
	}
	u.render(w, http.StatusOK, "sso_account", pg)
}

// topLevelNavigation reports whether r is a browser's navigation of a
// whole page, by its fetch metadata; a client that sends none (not a
// browser, or an old one) is taken at its word.
func topLevelNavigation(r *http.Request) bool {
	mode, dest := r.Header.Get("Sec-Fetch-Mode"), r.Header.Get("Sec-Fetch-Dest")
	return (mode == "" || mode == "navigate") && (dest == "" || dest == "document")
}

// ownNavigation reports whether r was begun by the console's own pages or
// by the person at the browser (Sec-Fetch-Site same-origin, or none: a
// bookmark, the address bar). A browser that sends no fetch metadata (an
// old one, or not a browser) must show the console's own origin in Origin
// or Referer; without either it is taken to come from elsewhere.
func (u *UI) ownNavigation(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
		return u.ownOrigin(r.Header.Get("Origin")) || u.ownOrigin(r.Header.Get("Referer"))
	}
	return false
}

// ownOrigin reports whether the URL s has the origin of the console's
// public URL (the issuer, from configuration, never from the request).
func (u *UI) ownOrigin(s string) bool {
	if s == "" || u.issuer == "" {
		return false
	}
	got, err := url.Parse(s)
	if err != nil || got.Host == "" {
		return false
	}
	want, err := url.Parse(u.issuer)
	return err == nil && strings.EqualFold(got.Scheme, want.Scheme) && strings.EqualFold(got.Host, want.Host)
}

// currentSession returns the principal of the console session the
// browser holds, and whether it may hold one: a session cookie that the
// service did not say is ended (when the store cannot tell, the browser
// is taken to hold one, with no principal).
func (u *UI) currentSession(r *http.Request) (*gatehouse.Principal, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, false
	}
	p, _, err := u.svc.SessionPrincipal(r.Context(), c.Value)
	switch {
	case err == nil:
		return p, true
	case gatehouse.ErrorCode(err) == gatehouse.EInvalidToken:
		return nil, false
	}
	return nil, true
}

func (u *UI) ssoForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := rand.Text()
	u.setCookie(w, r, loginCookie, csrf, 600)
	pg := page{Title: "Sign in with SSO", CSRF: csrf, Error: msg}
	if r.Method == http.MethodPost {
		pg.Form = &form{name: "sso", values: url.Values{"email": {r.PostForm.Get("email")}}}
	}
	u.render(w, status, "sso", pg)
}

// sso starts the single sign-on of the typed address, or of the account
// of a link's question (ssoPage). Both forms carry the sign-in form's
// CSRF token, and secure refuses a post from another origin.
func (u *UI) sso(w http.ResponseWriter, r *http.Request) {
	if !u.signInForm(w, r) {
		return
	}
	if acc := r.PostForm.Get("account"); acc != "" {
		u.startSSO(w, r, "", acc, true)
		return
	}
	u.startSSO(w, r, r.PostForm.Get("email"), "", true)
}

// startSSO sends the browser to the provider. After a form post it
// answers with a page that moves on by itself (a redirect would be
// refused by the page's form-action policy); after a link, with 303.
func (u *UI) startSSO(w http.ResponseWriter, r *http.Request, email, account string, posted bool) {
	st, err := u.svc.StartSSO(r.Context(), email, account, u.redirectURL(), httpx.ClientAddr(r))
	switch gatehouse.ErrorCode(err) {
	case "":
	case gatehouse.EInvalidRequest:
		msg := gatehouse.ErrorMessage(err)
		if _, hint := gatehouse.ErrorField(err); hint != "" {
			msg = hint
		}
		u.ssoForm(w, r, http.StatusBadRequest, msg)
		return
	case gatehouse.ETooManyAttempts, gatehouse.EUnavailable:
		// As the sign-in throttle is answered: the form, the wait in
		// words and Retry-After.
		wait := setRetryAfter(w, err)
		msg := "Single sign-on is not possible right now; try again in a moment."
		if gatehouse.ErrorCode(err) == gatehouse.ETooManyAttempts {
			msg = "Too many sign-ins were started from your address; try again in " + inWords(wait) + "."
		}
		httpx.Info(r.Context()).SetErrorCode(gatehouse.ErrorCode(err))
		u.ssoForm(w, r, httpx.Status(gatehouse.ErrorCode(err)), msg)
		return
	default:
		u.fail(w, r, page{}, err)
		return
	}
	u.setCookie(w, r, ssoCookie, st.Binding, int(service.SSOLoginLifetime.Seconds()))
	if !posted {
		http.Redirect(w, r, st.URL, http.StatusSeeOther)
		return
	}
	u.render(w, http.StatusOK, "sso_continue", struct {
		page
		To string
	}{page{Title: "Sign in with SSO"}, st.URL})
}

// ssoCallback completes a single sign-on: a session, the second step for a
// user with a second factor, or a page saying why not.
func (u *UI) ssoCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cb := service.SSOCallback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
	if c, err := r.Cookie(ssoCookie); err == nil {
		cb.Binding = c.Value
	}
	u.clearCookie(w, r, ssoCookie)
	step, err := u.svc.FinishSSO(r.Context(), cb, u.redirectURL(), httpx.ClientAddr(r))
	if errors.Is(err, service.ErrSSORefused) {
		httpx.Info(r.Context()).SetErrorCode(gatehouse.ErrorCode(err))
		u.render(w, http.StatusForbidden, "sso_refused", struct {
			page
			Message string
		}{page{Title: "Single sign-on refused"}, gatehouse.ErrorMessage(err)})
		return
	} else if err != nil {
		u.fail(w, r, page{}, err)
		return
	}
	if step.Pending != "" {
		u.setCookie(w, r, signInCookie, step.Pending, int(service.SignInLifetime.Seconds()))
		u.redirect(w, r, "/admin/login/code")
		return
	}
	u.signedIn(w, r, step.Session)
}
