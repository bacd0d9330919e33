// Package admin serves Gatehouse's admin web UI at /admin: server-rendered
// pages (html/template, embedded assets) over the same service as the JSON
// API, with cookie sessions, a CSRF token on every form and strict page
// security headers.
package admin

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/token"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names.
const (
	sessionCookie = "gatehouse_session"
	loginCookie   = "gatehouse_login_csrf"
	flashCookie   = "gatehouse_flash"
)

// Throttle limits failed logins per username and address.
type Throttle interface {
	Check(username, addr string) error
	Fail(username, addr string)
	Succeed(username string)
}

// UI is the admin web UI. Construct it with New; it is safe for concurrent
// use.
type UI struct {
	svc      *service.Service
	throttle Throttle
	logger   *slog.Logger
	pages    map[string]*template.Template
}

// New returns the UI over svc; failed logins count against throttle.
func New(svc *service.Service, throttle Throttle, logger *slog.Logger) *UI {
	u := &UI{svc: svc, throttle: throttle, logger: logger, pages: map[string]*template.Template{}}
	layout := template.Must(template.New("layout").ParseFS(templateFS, "templates/layout.html"))
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

// page is the data every page gets.
type page struct {
	Title, Page, CSRF, Flash, Error string
	P                               *gatehouse.Principal
	Admin, Developer                bool
}

// secret is a value shown once.
type secret struct{ Label, ID, Value string }

// Handler returns the UI's routes, all under /admin.
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /admin/login", u.loginPage)
	mux.HandleFunc("POST /admin/login", u.login)
	mux.Handle("POST /admin/logout", u.session(u.logout))
	mux.Handle("GET /admin", u.session(u.home))
	mux.Handle("GET /admin/{$}", u.session(u.home))
	u.routes(mux)
	return secure(mux)
}

// secure sets the page security headers of SPEC §8 on every answer.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
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
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		p, csrf, err := u.svc.SessionPrincipal(r.Context(), c.Value)
		if err != nil {
			if gatehouse.ErrorCode(err) == gatehouse.EInvalidToken {
				clearCookie(w, r, sessionCookie)
				http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
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
		ctx := gatehouse.NewContext(r.Context(), p)
		pg := page{P: p, CSRF: csrf, Admin: p.IsAdmin(), Developer: p.User.Roles.Has(gatehouse.RoleDeveloper)}
		if r.Method == http.MethodGet {
			pg.Flash = flash(w, r)
		}
		if err := fn(w, r.WithContext(ctx), pg); err != nil {
			u.fail(w, r, pg, err)
		}
	})
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
	code := gatehouse.ErrorCode(err)
	status := httpx.Status(code)
	msg := gatehouse.ErrorMessage(err)
	if status >= 500 {
		u.logger.Error("admin request failed", "path", r.URL.Path, "err", err)
	}
	pg.Title, pg.Error = "Error", msg
	u.render(w, status, "message", struct {
		page
		Message string
	}{pg, msg})
}

// done redirects after a successful POST, with a message for the next page
// in a short-lived cookie (not the URL, where a crafted link could put
// words on the page).
func done(w http.ResponseWriter, r *http.Request, path, msg string) {
	setCookie(w, r, flashCookie, url.QueryEscape(msg), 60)
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// flash returns and clears the message left by done.
func flash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	clearCookie(w, r, flashCookie)
	msg, _ := url.QueryUnescape(c.Value)
	return msg
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/admin", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) { setCookie(w, r, name, "", -1) }

// loginErrors are the sign-in page's messages by code.
var loginErrors = map[string]string{
	"credentials": "Wrong e-mail or password.",
	"throttled":   "Too many failed attempts; try again later.",
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	csrf := token.New(token.Session)[4:]
	setCookie(w, r, loginCookie, csrf, 600)
	// The error is a code, so a crafted link cannot put words on the page.
	u.render(w, http.StatusOK, "login", page{Title: "Sign in", CSRF: csrf, Error: loginErrors[r.URL.Query().Get("error")]})
}

// login checks the password and starts a new session: a fresh id every
// time, never one the browser brought.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if err := httpx.ParseForm(w, r); err != nil {
		u.fail(w, r, page{}, err)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		u.message(w, http.StatusForbidden, "Request refused", "The sign-in form's security token is missing or out of date. Reload the page and try again.")
		return
	}
	email, pw := r.PostForm.Get("email"), r.PostForm.Get("password")
	key, addr := strings.ToLower(strings.TrimSpace(email)), httpx.ClientAddr(r)
	if err := u.throttle.Check(key, addr); err != nil {
		http.Redirect(w, r, "/admin/login?error=throttled", http.StatusSeeOther)
		return
	}
	cookie, _, err := u.svc.Login(r.Context(), email, pw)
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EInvalidGrant {
			u.throttle.Fail(key, addr)
			http.Redirect(w, r, "/admin/login?error=credentials", http.StatusSeeOther)
			return
		}
		u.fail(w, r, page{}, err)
		return
	}
	u.throttle.Succeed(key)
	clearCookie(w, r, loginCookie)
	setCookie(w, r, sessionCookie, cookie, int(service.SessionLifetime.Seconds()))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := u.svc.Logout(r.Context(), pg.P); err != nil {
		return err
	}
	clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	return nil
}

func (u *UI) home(w http.ResponseWriter, r *http.Request, pg page) error {
	switch {
	case pg.Admin:
		http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
	case pg.Developer:
		http.Redirect(w, r, "/admin/credentials", http.StatusSeeOther)
	default:
		u.message(w, http.StatusOK, "Signed in", "There is nothing here for your roles; the admin UI is for admins and developers.")
	}
	return nil
}
