// Package admin serves Gatehouse's admin web UI at /admin: server-rendered
// pages (html/template, embedded assets) over the same service as the JSON
// API, with cookie sessions, a CSRF token on every form and strict page
// security headers.
package admin

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names: each starts with httpx.CookiePrefix, whose Set-Cookie the
// gateway never lets an upstream send.
const (
	sessionCookie = httpx.CookiePrefix + "session"
	loginCookie   = httpx.CookiePrefix + "login_csrf"
	flashCookie   = httpx.CookiePrefix + "flash"
)

// Config is what the UI needs.
type Config struct {
	Service *service.Service
	Logger  *slog.Logger
	// Prefix is the path the UI's /admin sits under (the management
	// prefix, e.g. "/gatehouse"; empty for /admin itself). Links, form
	// actions, redirects and cookie paths carry it; the handler expects
	// requests with it already stripped.
	Prefix string
	// SecureCookies makes every cookie Secure (the public URL is https).
	// Without it, cookies are Secure when the request came over TLS, to
	// Gatehouse or to a trusted proxy.
	SecureCookies bool
	// Headers are the header names the server is configured with, shown
	// on the pages that explain how to use a credential.
	Headers Headers
	// Issuer is the server's issuer, sent as iss with every
	// authorization response (RFC 9207).
	Issuer string
}

// Headers are the configurable header names the pages mention.
type Headers struct {
	APIToken, UserEmail            string
	BurstRemaining, DailyRemaining string
}

// UI is the admin web UI. Construct it with New; it is safe for concurrent
// use.
type UI struct {
	svc           *service.Service
	logger        *slog.Logger
	prefix        string
	secureCookies bool
	headers       Headers
	issuer        string
	pages         map[string]*template.Template
}

// New returns the UI of cfg.
func New(cfg Config) *UI {
	u := &UI{svc: cfg.Service, logger: cfg.Logger, prefix: cfg.Prefix,
		secureCookies: cfg.SecureCookies, headers: cfg.Headers, issuer: cfg.Issuer, pages: map[string]*template.Template{}}
	if u.logger == nil {
		u.logger = slog.Default()
	}
	funcs := template.FuncMap{"path": u.path, "when": when, "day": day, "plural": plural,
		"val": formValue, "ferr": fieldError, "formerr": formError, "checked": formChecked}
	layout := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		u.pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return u
}

// path returns the browser's path of a UI path ("/admin/users"): with the
// prefix in front. Templates call it as {{path "/admin/users"}}.
func (u *UI) path(parts ...string) string { return u.prefix + strings.Join(parts, "") }

// redirect sends the browser to a UI path with 303 See Other.
func (u *UI) redirect(w http.ResponseWriter, r *http.Request, p string) {
	http.Redirect(w, r, u.path(p), http.StatusSeeOther)
}

// page is the data every page gets.
type page struct {
	Title, Page, CSRF, Flash, Error string
	P                               *gatehouse.Principal
	Admin, Developer, Operator      bool
	// Form is a refused form shown again: what was typed and the message.
	Form *form
	// Headers are the configured header names.
	Headers Headers
	// Next is where sign-in returns to (an authorization page), if not
	// the console's home.
	Next string
}

// Handler returns the UI's routes, all under /admin; mount it at the
// prefix with the prefix stripped.
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", http.FileServerFS(static)))
	mux.HandleFunc(loginPagePattern, u.loginPage)
	mux.HandleFunc(loginPattern, u.login)
	mux.HandleFunc(loginCodePagePattern, u.loginCodePage)
	mux.HandleFunc(loginCodePattern, u.loginCode)
	mux.HandleFunc(ssoPagePattern, u.ssoPage)
	mux.HandleFunc(ssoPattern, u.sso)
	mux.HandleFunc(ssoCallbackPattern, u.ssoCallback)
	mux.HandleFunc(loginPasskeyOptionsPattern, u.loginPasskeyOptions)
	mux.HandleFunc(loginPasskeyPattern, u.loginPasskey)
	u.routes(mux)
	return secure(u.checked(mux))
}

// checked refuses, with 400, a request whose path ids or query parameters
// are not text (httpx.CheckInput): the one place the UI checks them,
// before a session or anything else is read.
func (u *UI) checked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := httpx.CheckInput(r); err != nil {
			u.fail(w, r, page{}, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// secure sets the page security headers of SPEC §8 on every answer, and
// refuses a form post that a browser says comes from another origin
// (Sec-Fetch-Site other than same-origin): a page of another port or
// host of the same site — an API behind the gateway — may share the
// console's cookies, SameSite or not, but may not post to it.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
				h.Set("Cache-Control", "no-store")
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/admin/static/") {
			// Pages may show secrets once: never cache any of them.
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// handlerFunc is a page handler with its session.
type handlerFunc func(w http.ResponseWriter, r *http.Request, pg page) error

// session requires a live session; POSTs must also carry its CSRF token.
func (u *UI) session(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			u.toLogin(w, r)
			return
		}
		p, csrf, err := u.svc.SessionPrincipal(r.Context(), c.Value)
		if err != nil {
			if gatehouse.ErrorCode(err) == gatehouse.EInvalidToken {
				u.clearCookie(w, r, sessionCookie)
				u.toLogin(w, r)
				return
			}
			u.fail(w, r, page{}, err)
			return
		}
		if r.Method == http.MethodPost {
			if err := httpx.ParseForm(w, r); err != nil {
				u.fail(w, r, page{}, err)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(csrf)) != 1 {
				u.message(w, http.StatusForbidden, "Request refused", "The form's security token is missing or out of date. Reload the page and try again.")
				return
			}
		}
		httpx.Admitted(r.Context(), p)
		if !mfaAllowed(r.URL.Path) {
			must, err := u.svc.MustEnrol(r.Context(), p)
			if err != nil {
				u.fail(w, r, page{}, err)
				return
			}
			if must {
				// The account requires a second factor: enrol first.
				u.redirect(w, r, "/admin/me/mfa")
				return
			}
		}
		pg := page{P: p, CSRF: csrf, Admin: p.IsAdmin(), Developer: p.User.Roles.Has(gatehouse.RoleDeveloper), Operator: p.IsOperator(),
			Headers: u.headers}
		if r.Method == http.MethodGet {
			pg.Flash = u.flash(w, r)
		}
		if err := fn(w, r, pg); err != nil {
			u.fail(w, r, pg, err)
		}
	})
}

// toLogin sends the browser to the sign-in page; from an authorization
// page (GET), sign-in returns there.
func (u *UI) toLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == authorizePath {
		if next := safeNext(authorizePath + "?" + r.URL.RawQuery); next != "" {
			u.redirect(w, r, "/admin/login?next="+url.QueryEscape(next))
			return
		}
	}
	if r.Method == http.MethodGet && r.URL.Path == devicePath {
		u.redirect(w, r, "/admin/login?next="+url.QueryEscape(deviceNext(r)))
		return
	}
	u.redirect(w, r, "/admin/login")
}

// render writes a page.
func (u *UI) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		u.logger.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// message renders a short page with a title and a sentence.
func (u *UI) message(w http.ResponseWriter, status int, title, msg string) {
	u.render(w, status, "message", struct {
		page
		Message string
	}{page{Title: title}, msg})
}

// fail shows an error: forbidden and not-found as pages, anything else
// generic.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, pg page, err error) {
	if httpx.ClientGone(r, err) {
		httpx.Info(r.Context()).SetErrorCode(httpx.ECanceled)
		w.WriteHeader(httpx.StatusClientClosed)
		return
	}
	if httpx.Unavailable(err) {
		// A backing service is away: 503 with Retry-After, as the API
		// answers (httpx.Error), never a 500.
		u.logger.Warn("admin request: backing service unavailable", "path", r.URL.Path, "err", err)
		err = gatehouse.Errorf(gatehouse.EUnavailable, "The service is unavailable for a moment; try again shortly.")
		w.Header().Set("Retry-After", strconv.Itoa(gatehouse.RetryAfterSeconds(httpx.DefaultRetryAfter)))
	}
	code := gatehouse.ErrorCode(err)
	status := httpx.Status(code)
	msg := gatehouse.ErrorMessage(err)
	httpx.Info(r.Context()).SetErrorCode(code)
	if status >= 500 && code != gatehouse.EUnavailable {
		u.logger.Error("admin request failed", "path", r.URL.Path, "err", err)
	}
	pg.Title = errorTitle(status)
	u.render(w, status, "message", struct {
		page
		Message string
	}{pg, msg})
}

// errorTitle names a refusal for a person.
func errorTitle(status int) string {
	switch status {
	case http.StatusForbidden:
		return "Not allowed"
	case http.StatusNotFound:
		return "Not found"
	case http.StatusConflict:
		return "Not possible"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return "Not done"
}

// done redirects to a UI path after a successful POST, with a message for
// the next page in a short-lived cookie (not the URL, where a crafted link
// could put words on the page).
func (u *UI) done(w http.ResponseWriter, r *http.Request, path, msg string) {
	if msg != "" {
		u.setCookie(w, r, flashCookie, url.QueryEscape(msg), 60)
	}
	u.redirect(w, r, path)
}

// flash returns and clears the message left by done.
func (u *UI) flash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	u.clearCookie(w, r, flashCookie)
	msg, _ := url.QueryUnescape(c.Value)
	return msg
}

// setCookie sets one of the UI's cookies: scoped to its path, HttpOnly,
// SameSite=Lax, and Secure behind TLS (SPEC §8).
func (u *UI) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: u.path("/admin"), MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: u.secureCookies || httpx.IsHTTPS(r)})
}

func (u *UI) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	u.setCookie(w, r, name, "", -1)
}

// loginErrors are the sign-in page's messages by code.
var loginErrors = map[string]string{
	"credentials": "Wrong e-mail or password.",
	"expired":     "The sign-in expired; sign in again.",
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	// The error is a code, so a crafted link cannot put words on the page.
	u.loginForm(w, r, http.StatusOK, loginErrors[r.URL.Query().Get("error")])
}

// loginForm renders the sign-in form with a fresh CSRF token. After a
// refused sign-in the form keeps the e-mail address that was typed (never
// the password).
func (u *UI) loginForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := rand.Text()
	u.setCookie(w, r, loginCookie, csrf, 600)
	pg := page{Title: "Sign in", CSRF: csrf, Error: msg, Next: safeNext(r.URL.Query().Get("next"))}
	if r.Method == http.MethodPost {
		pg.Next = safeNext(r.PostForm.Get("next"))
		pg.Form = &form{name: "login", values: url.Values{"email": {r.PostForm.Get("email")}}}
	}
	u.render(w, status, "login", struct {
		page
		PasskeysOn bool
	}{pg, u.svc.PasskeysAvailable()})
}

// setRetryAfter sets Retry-After to the wait err names (a second when it
// names none) and returns the wait.
func setRetryAfter(w http.ResponseWriter, err error) time.Duration {
	var ge *gatehouse.Error
	wait := time.Second
	if errors.As(err, &ge) && ge.RetryAfter > 0 {
		wait = ge.RetryAfter
	}
	w.Header().Set("Retry-After", strconv.Itoa(gatehouse.RetryAfterSeconds(wait)))
	return wait
}

// loginRefused answers a sign-in that was not checked — throttled (429) or
// the server too busy (503) — with the form, the wait in words and
// Retry-After.
func (u *UI) loginRefused(w http.ResponseWriter, r *http.Request, err error) {
	wait := setRetryAfter(w, err)
	msg := "Signing in is not possible right now; try again in a moment."
	if gatehouse.ErrorCode(err) == gatehouse.ETooManyAttempts {
		msg = "Too many failed attempts; try again in " + inWords(wait) + "."
	}
	u.loginForm(w, r, httpx.Status(gatehouse.ErrorCode(err)), msg)
}

// inWords rounds d up to whole minutes.
func inWords(d time.Duration) string {
	if d < time.Minute {
		return "a minute"
	}
	m := int((d + time.Minute - 1) / time.Minute)
	if m == 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}

// ssoRequiredMessage answers a sign-in — a password, or a passkey without
// one — of a user whose account requires single sign-on.
const ssoRequiredMessage = "This account signs in with single sign-on: use Sign in with SSO."

// login checks the password and starts a new session: a fresh id every
// time, never one the browser brought.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if !u.signInForm(w, r) {
		return
	}
	step, err := u.svc.SignIn(r.Context(), r.PostForm.Get("email"), r.PostForm.Get("password"), httpx.ClientAddr(r))
	switch gatehouse.ErrorCode(err) {
	case "":
	case gatehouse.EInvalidGrant:
		if errors.Is(err, service.ErrSSORequired) {
			u.loginForm(w, r, http.StatusForbidden, ssoRequiredMessage)
			return
		}
		u.loginForm(w, r, http.StatusUnauthorized, loginErrors["credentials"])
		return
	case gatehouse.ETooManyAttempts, gatehouse.EUnavailable:
		u.loginRefused(w, r, err)
		return
	default:
		u.fail(w, r, page{}, err)
		return
	}
	if step.Pending != "" {
		// A second factor follows; the CSRF cookie serves that form too.
		u.setCookie(w, r, signInCookie, step.Pending, int(service.SignInLifetime.Seconds()))
		to := "/admin/login/code"
		if next := safeNext(r.PostForm.Get("next")); next != "" {
			to += "?" + url.Values{"next": {next}}.Encode()
		}
		u.redirect(w, r, to)
		return
	}
	u.signedIn(w, r, step.Session)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := u.svc.Logout(r.Context(), pg.P); err != nil {
		return err
	}
	u.clearCookie(w, r, sessionCookie)
	u.redirect(w, r, "/admin/login")
	return nil
}

// home sends each user to where their roles start: admins to the users,
// developers to their credentials, everyone else to their own account.
func (u *UI) home(w http.ResponseWriter, r *http.Request, pg page) error {
	to := "/admin/me"
	switch {
	case pg.Admin:
		to = "/admin/users"
	case pg.Developer:
		to = "/admin/credentials"
	}
	// A message for the home page (one of a new sign-in) goes on to the
	// page the home page is.
	u.done(w, r, to, pg.Flash)
	return nil
}
