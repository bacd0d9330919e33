package admin

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// A new secret is never in the answer to the form that made it: the
// handler stashes it for this session (service.Stash), keeps the key in a
// cookie only the reveal page receives, and redirects there. The reveal
// page shows it once; reloading it, or opening it from another session,
// says it was already shown. So a reload never makes a second secret and
// never shows one twice.

// secretCookie is the name of the cookie holding the key of reveal id.
func secretCookie(id string) string { return httpx.CookiePrefix + "secret_" + id }

// shown is what a reveal page shows: what was made, its secret values and
// where to go next.
type shown struct {
	Heading string   `json:"heading"`
	Warning string   `json:"warning"`
	Values  []secret `json:"values"`
	Notes   []string `json:"notes"`
	Back    string   `json:"back"`
	BackTo  string   `json:"back_to"`
}

// secret is one value on a reveal page; Secret is false for a value that
// is not secret, such as a client id.
type secret struct {
	Label  string `json:"label"`
	ID     string `json:"id"`
	Value  string `json:"value"`
	Secret bool   `json:"secret"`
}

// reveal stashes what to show and redirects to the page that shows it
// once.
func (u *UI) reveal(w http.ResponseWriter, r *http.Request, pg page, s shown) error {
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	ref, err := u.svc.Stash(r.Context(), pg.P, body)
	if err != nil {
		return err
	}
	id, key, _ := strings.Cut(ref, ".")
	http.SetCookie(w, &http.Cookie{Name: secretCookie(id), Value: key, Path: u.path("/admin/secrets/" + id),
		MaxAge: int(service.RevealLifetime.Seconds()), HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: u.secureCookies || httpx.IsHTTPS(r)})
	u.redirect(w, r, "/admin/secrets/"+id)
	return nil
}

// secretPage shows a stashed secret once.
func (u *UI) secretPage(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	var s shown
	c, err := r.Cookie(secretCookie(id))
	if err == nil {
		http.SetCookie(w, &http.Cookie{Name: secretCookie(id), Value: "", Path: u.path("/admin/secrets/" + id), MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: u.secureCookies || httpx.IsHTTPS(r)})
		var body []byte
		body, err = u.svc.Reveal(r.Context(), pg.P, id+"."+c.Value)
		if err == nil {
			err = json.Unmarshal(body, &s)
		}
	}
	if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound && err != http.ErrNoCookie {
		return err
	}
	if err != nil {
		pg.Title = "Already shown"
		u.render(w, http.StatusGone, "secret", struct {
			page
			Shown *shown
		}{pg, nil})
		return nil
	}
	pg.Title, pg.Page = s.Heading, ""
	u.render(w, http.StatusOK, "secret", struct {
		page
		Shown *shown
	}{pg, &s})
	return nil
}
