package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/service"
)

// The console's authorization page (SPEC §10.3): GET /oauth/authorize
// sends the browser here; the person signs in, sees the consent page, and
// Allow or Deny sends them back to the application.
const authorizePath = "/admin/authorize"

// authParams are the parameters of an authorization request.
var authParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "resource"}

// authRequest reads an authorization request from v; a parameter sent
// twice is refused (RFC 6749 §3.1), shown as a page.
func authRequest(v url.Values) (service.AuthRequest, error) {
	for _, k := range authParams {
		if len(v[k]) > 1 {
			return service.AuthRequest{}, gatehouse.Invalid("The authorization request repeats %s", k)
		}
	}
	return service.AuthRequest{ResponseType: v.Get("response_type"), ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"),
		Scope: v.Get("scope"), State: v.Get("state"), CodeChallenge: v.Get("code_challenge"),
		CodeChallengeMethod: v.Get("code_challenge_method"), Resource: v.Get("resource")}, nil
}

// safeNext returns next if it is an authorization page or the device
// page of this console (the only places sign-in returns to), else "".
func safeNext(next string) string {
	if strings.ContainsAny(next, "\\\r\n") {
		return ""
	}
	if strings.HasPrefix(next, authorizePath+"?") || next == devicePath || strings.HasPrefix(next, devicePath+"?") {
		return next
	}
	return ""
}

// consentPage is the consent page's data.
type consentPage struct {
	page
	Consent *service.Consent
	Words   []scopeLine
	Hidden  url.Values
	// ReturnTo is where the code goes: the request's redirect URI, or the
	// application's one when the request named none.
	ReturnTo string
}

// authErrorPage is a refused request of a self-registered client, shown
// with a link back instead of a redirect.
type authErrorPage struct {
	page
	App               *gatehouse.App
	Code, Description string
	Return, Host      string
}

type scopeLine struct {
	Scope gatehouse.Scope
	Words string
}

func lines(ss gatehouse.Scopes) []scopeLine {
	out := make([]scopeLine, 0, len(ss))
	for _, s := range ss {
		out = append(out, scopeLine{s, authorize.ScopeWords(s)})
	}
	return out
}

// checkAuth checks an authorization request for pg's user: the client and
// its redirect URI first (a refusal is a page, never a redirect), then the
// rest (a refusal goes back to the application). ok is false when the
// answer has been written.
func (u *UI) checkAuth(w http.ResponseWriter, r *http.Request, pg page, v url.Values) (service.AuthRequest, *service.Consent, bool, error) {
	req, err := authRequest(v)
	if err != nil {
		return req, nil, false, err
	}
	app, err := u.svc.AuthClient(r.Context(), req)
	if err != nil {
		return req, nil, false, err
	}
	c, err := u.svc.CheckAuthRequest(r.Context(), pg.P, app, req)
	var re *service.AuthRedirectError
	if errors.As(err, &re) {
		back := authorize.ErrorRedirect(req.RedirectURI, u.issuer, req.State, re.Code, re.Description)
		if app.Registered {
			// A client that registered itself is nobody's: its redirect
			// URI is not trusted to receive the person without their
			// say (RFC 9700 §4.11.2), so the error is shown with a link.
			host := req.RedirectURI
			if ru, err := url.Parse(req.RedirectURI); err == nil {
				host = ru.Host
			}
			pg.Title = "Request refused"
			u.render(w, http.StatusBadRequest, "autherror", authErrorPage{page: pg, App: app, Code: re.Code,
				Description: re.Description, Return: back, Host: host})
			return req, nil, false, nil
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return req, nil, false, nil
	}
	if err != nil {
		return req, nil, false, err
	}
	return req, c, true, nil
}

// authorizePage answers GET /admin/authorize: the consent page, or, when
// the user consented to these scopes before, the code at once.
func (u *UI) authorizePage(w http.ResponseWriter, r *http.Request, pg page) error {
	req, c, ok, err := u.checkAuth(w, r, pg, r.URL.Query())
	if !ok {
		return err
	}
	if c.Remembered {
		return u.allow(w, r, pg, c, req)
	}
	hidden := url.Values{}
	for _, k := range authParams {
		if v := r.URL.Query().Get(k); v != "" {
			hidden.Set(k, v)
		}
	}
	// The form's answer redirects to the application: let the browser
	// follow it (form-action covers redirects after a submission).
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self' "+
		formTarget(req.RedirectURI)+"; base-uri 'none'")
	pg.Title, pg.Page = "Authorise "+c.App.Name, "authorize"
	returnTo := req.RedirectURI
	if returnTo == "" && len(c.App.RedirectURIs) > 0 {
		returnTo = c.App.RedirectURIs[0]
	}
	u.render(w, http.StatusOK, "consent", consentPage{page: pg, Consent: c, Words: lines(c.Scopes), Hidden: hidden, ReturnTo: returnTo})
	return nil
}

// formTarget is the CSP source of a redirect URI: its origin, or its
// private scheme.
func formTarget(redirectURI string) string {
	ru, err := url.Parse(redirectURI)
	if err != nil {
		return "'none'"
	}
	if ru.Scheme == "https" || ru.Scheme == "http" {
		return ru.Scheme + "://" + ru.Host
	}
	return ru.Scheme + ":"
}

// authorizeDecision answers POST /admin/authorize (the session's CSRF
// token checked): Allow sends a code, Deny access_denied.
func (u *UI) authorizeDecision(w http.ResponseWriter, r *http.Request, pg page) error {
	req, c, ok, err := u.checkAuth(w, r, pg, r.PostForm)
	if !ok {
		return err
	}
	if r.PostForm.Get("decision") != "allow" {
		http.Redirect(w, r, authorize.ErrorRedirect(req.RedirectURI, u.issuer, req.State, "access_denied", "the user denied the request"), http.StatusSeeOther)
		return nil
	}
	return u.allow(w, r, pg, c, req)
}

// allow issues the code and sends it to the application, with state and
// iss (RFC 9207).
func (u *UI) allow(w http.ResponseWriter, r *http.Request, pg page, c *service.Consent, req service.AuthRequest) error {
	code, err := u.svc.Authorize(r.Context(), pg.P, c, req)
	if err != nil {
		return err
	}
	http.Redirect(w, r, authorize.Redirect(req.RedirectURI, url.Values{"code": {code}, "state": {req.State}, "iss": {u.issuer}}), http.StatusSeeOther)
	return nil
}
