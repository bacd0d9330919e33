package admin

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

func (u *UI) routes(mux *http.ServeMux) {
	mux.Handle("GET /admin/users", u.session(u.users))
	mux.Handle("POST /admin/users", u.session(u.createUser))
	mux.Handle("POST /admin/users/{id}", u.session(u.updateUser))
	mux.Handle("GET /admin/api-access", u.session(u.apiAccess))
	mux.Handle("POST /admin/api-access/enable", u.session(u.enableAPIAccess))
	mux.Handle("POST /admin/api-access/lifetime", u.session(u.apiAccessLifetime))
	mux.Handle("POST /admin/api-access/revoke", u.session(u.revokeAPIAccess))
	mux.Handle("GET /admin/extensions", u.session(u.extensions))
	mux.Handle("POST /admin/extensions/api-tokens", u.session(u.toggleAPITokens))
	mux.Handle("POST /admin/api-tokens", u.session(u.createAPIToken))
	mux.Handle("POST /admin/api-tokens/{id}/revoke", u.session(u.revokeAPIToken))
	mux.Handle("GET /admin/developers", u.session(u.developers))
	mux.Handle("POST /admin/developers", u.session(u.addDeveloper))
	mux.Handle("GET /admin/developers/{id}/remove", u.session(u.confirmRemoveDeveloper))
	mux.Handle("POST /admin/developers/{id}/remove", u.session(u.removeDeveloper))
	mux.Handle("GET /admin/credentials", u.session(u.credentials))
	mux.Handle("POST /admin/credentials", u.session(u.createCredential))
	mux.Handle("POST /admin/credentials/{id}/delete", u.session(u.deleteCredential))
	mux.Handle("GET /admin/settings", u.session(u.settings))
	mux.Handle("POST /admin/settings", u.session(u.saveSettings))
	mux.Handle("GET /admin/usage", u.session(u.usage))
	mux.Handle("GET /admin/audit", u.session(u.audit))
}

// allUsers lists up to 200 users of the account.
func (u *UI) allUsers(r *http.Request, p *gatehouse.Principal) ([]*gatehouse.User, error) {
	users, _, err := u.svc.Users(r.Context(), p, gatehouse.Page{Limit: 200})
	return users, err
}

func (u *UI) users(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	users, err := u.allUsers(r, pg.P)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Users", "users"
	u.render(w, http.StatusOK, "users", struct {
		page
		Users []*gatehouse.User
	}{pg, users})
	return nil
}

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
	if err != nil {
		return err
	}
	done(w, r, "/admin/users", "Created "+nu.Email+".")
	return nil
}

func (u *UI) updateUser(w http.ResponseWriter, r *http.Request, pg page) error {
	rs := roles(r)
	status := gatehouse.UserStatus(r.PostForm.Get("status"))
	nu, err := u.svc.UpdateUser(r.Context(), pg.P, r.PathValue("id"), service.UserPatch{Roles: &rs, Status: &status})
	if err != nil {
		return err
	}
	done(w, r, "/admin/users", "Saved "+nu.Email+".")
	return nil
}

func (u *UI) apiAccessPage(w http.ResponseWriter, r *http.Request, pg page, issued *service.APIAccessIssued) error {
	app, err := u.svc.APIAccess(r.Context(), pg.P)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "API access", "api-access"
	data := struct {
		page
		App                         *gatehouse.APIApplication
		Issued                      *service.APIAccessIssued
		AccessSecret, RefreshSecret secret
	}{page: pg, App: app, Issued: issued}
	if issued != nil {
		data.AccessSecret = secret{"Access token", "access-token", issued.AccessToken}
		data.RefreshSecret = secret{"Refresh token", "refresh-token", issued.RefreshToken}
	}
	u.render(w, http.StatusOK, "apiaccess", data)
	return nil
}

func (u *UI) apiAccess(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.apiAccessPage(w, r, pg, nil)
}

func days(r *http.Request) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("access_token_ttl_days")))
	if err != nil {
		return 0, gatehouse.Invalid("The lifetime must be a whole number of days")
	}
	return n, nil
}

func (u *UI) enableAPIAccess(w http.ResponseWriter, r *http.Request, pg page) error {
	n, err := days(r)
	if err != nil {
		return err
	}
	issued, err := u.svc.EnableAPIAccess(r.Context(), pg.P, &n)
	if err != nil {
		return err
	}
	// The tokens are shown on this answer only, never behind a redirect.
	pg.Flash = "API access enabled."
	return u.apiAccessPage(w, r, pg, issued)
}

func (u *UI) apiAccessLifetime(w http.ResponseWriter, r *http.Request, pg page) error {
	n, err := days(r)
	if err != nil {
		return err
	}
	if _, err := u.svc.UpdateAPIAccess(r.Context(), pg.P, n); err != nil {
		return err
	}
	done(w, r, "/admin/api-access", fmt.Sprintf("New access tokens will last %d days.", n))
	return nil
}

func (u *UI) revokeAPIAccess(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := u.svc.RevokeAPIAccess(r.Context(), pg.P); err != nil {
		return err
	}
	done(w, r, "/admin/api-access", "API access revoked; its tokens no longer work.")
	return nil
}

func (u *UI) extensionsPage(w http.ResponseWriter, r *http.Request, pg page, created *service.NewAPIToken) error {
	on, err := u.svc.APITokensExtension(r.Context(), pg.P)
	if err != nil {
		return err
	}
	toks, _, err := u.svc.APITokens(r.Context(), pg.P, gatehouse.Page{Limit: 200})
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Extensions", "extensions"
	data := struct {
		page
		Enabled     bool
		Tokens      []*gatehouse.APIToken
		NewToken    *service.NewAPIToken
		TokenSecret secret
	}{page: pg, Enabled: on, Tokens: toks, NewToken: created}
	if created != nil {
		data.TokenSecret = secret{"API token " + created.Name, "api-token", created.Token}
	}
	u.render(w, http.StatusOK, "extensions", data)
	return nil
}

func (u *UI) extensions(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.extensionsPage(w, r, pg, nil)
}

func (u *UI) toggleAPITokens(w http.ResponseWriter, r *http.Request, pg page) error {
	on := r.PostForm.Get("enabled") == "true"
	if err := u.svc.SetAPITokensExtension(r.Context(), pg.P, on); err != nil {
		return err
	}
	done(w, r, "/admin/extensions", map[bool]string{true: "API tokens turned on.", false: "API tokens turned off."}[on])
	return nil
}

func (u *UI) createAPIToken(w http.ResponseWriter, r *http.Request, pg page) error {
	t, err := u.svc.CreateAPIToken(r.Context(), pg.P, r.PostForm.Get("name"))
	if err != nil {
		return err
	}
	pg.Flash = "Token generated."
	return u.extensionsPage(w, r, pg, t)
}

func (u *UI) revokeAPIToken(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := u.svc.DeleteAPIToken(r.Context(), pg.P, r.PathValue("id")); err != nil {
		return err
	}
	done(w, r, "/admin/extensions", "Token revoked.")
	return nil
}

type developerRow struct {
	User  *gatehouse.User
	Count int
}

func (u *UI) developersPage(w http.ResponseWriter, r *http.Request, pg page, confirm *gatehouse.User, count int) error {
	users, err := u.allUsers(r, pg.P)
	if err != nil {
		return err
	}
	var devs []developerRow
	var others []*gatehouse.User
	for _, x := range users {
		if !x.Roles.Has(gatehouse.RoleDeveloper) {
			others = append(others, x)
			continue
		}
		n, err := u.svc.CredentialCount(r.Context(), pg.P, x.ID)
		if err != nil {
			return err
		}
		devs = append(devs, developerRow{x, n})
	}
	pg.Title, pg.Page = "Developers", "developers"
	u.render(w, http.StatusOK, "developers", struct {
		page
		Developers   []developerRow
		Others       []*gatehouse.User
		Confirm      *gatehouse.User
		ConfirmCount int
	}{pg, devs, others, confirm, count})
	return nil
}

func (u *UI) developers(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	return u.developersPage(w, r, pg, nil, 0)
}

func (u *UI) addDeveloper(w http.ResponseWriter, r *http.Request, pg page) error {
	if _, err := u.svc.SetDeveloper(r.Context(), pg.P, r.PostForm.Get("user_id"), true, false); err != nil {
		return err
	}
	done(w, r, "/admin/developers", "Developer added.")
	return nil
}

// confirmRemoveDeveloper warns how many credentials stay live.
func (u *UI) confirmRemoveDeveloper(w http.ResponseWriter, r *http.Request, pg page) error {
	target, err := u.svc.User(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	n, err := u.svc.CredentialCount(r.Context(), pg.P, target.ID)
	if err != nil {
		return err
	}
	return u.developersPage(w, r, pg, target, n)
}

func (u *UI) removeDeveloper(w http.ResponseWriter, r *http.Request, pg page) error {
	revoke := r.PostForm.Get("revoke") == "true"
	n, err := u.svc.SetDeveloper(r.Context(), pg.P, r.PathValue("id"), false, revoke)
	if err != nil {
		return err
	}
	done(w, r, "/admin/developers", fmt.Sprintf("Developer removed; %d credential(s) still live.", n))
	return nil
}

func (u *UI) credentialsPage(w http.ResponseWriter, r *http.Request, pg page, created *service.NewCredential) error {
	creds, _, err := u.svc.Credentials(r.Context(), pg.P, gatehouse.Page{Limit: 200})
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "API credentials", "credentials"
	u.render(w, http.StatusOK, "credentials", struct {
		page
		Creds   []*gatehouse.Credential
		NewCred *service.NewCredential
	}{pg, creds, created})
	return nil
}

func (u *UI) credentials(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.credentialsPage(w, r, pg, nil)
}

func (u *UI) createCredential(w http.ResponseWriter, r *http.Request, pg page) error {
	c, err := u.svc.CreateCredential(r.Context(), pg.P, r.PostForm.Get("name"))
	if err != nil {
		return err
	}
	pg.Flash = "Credential created."
	return u.credentialsPage(w, r, pg, c)
}

func (u *UI) deleteCredential(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := u.svc.DeleteCredential(r.Context(), pg.P, r.PathValue("id")); err != nil {
		return err
	}
	done(w, r, "/admin/credentials", "Credential deleted; its tokens no longer work.")
	return nil
}

func (u *UI) settings(w http.ResponseWriter, r *http.Request, pg page) error {
	s, err := u.svc.Settings(r.Context(), pg.P)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Rate limits", "settings"
	u.render(w, http.StatusOK, "settings", struct {
		page
		Settings gatehouse.Settings
	}{pg, s})
	return nil
}

func (u *UI) saveSettings(w http.ResponseWriter, r *http.Request, pg page) error {
	num := func(name string) (*int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get(name)))
		if err != nil {
			return nil, gatehouse.Invalid("%s must be a whole number", strings.ReplaceAll(name, "_", " "))
		}
		return &n, nil
	}
	var patch gatehouse.SettingsPatch
	patch.RateLimit = &struct {
		Daily              *int `json:"daily"`
		Burst              *int `json:"burst"`
		BurstWindowSeconds *int `json:"burst_window_seconds"`
	}{}
	var err error
	if patch.RateLimit.Burst, err = num("burst"); err != nil {
		return err
	}
	if patch.RateLimit.BurstWindowSeconds, err = num("burst_window_seconds"); err != nil {
		return err
	}
	if patch.RateLimit.Daily, err = num("daily"); err != nil {
		return err
	}
	pw := r.PostForm.Get("password_grant_enabled") == "true"
	patch.PasswordGrantEnabled = &pw
	if _, err := u.svc.UpdateSettings(r.Context(), pg.P, patch); err != nil {
		return err
	}
	done(w, r, "/admin/settings", "Settings saved.")
	return nil
}

func (u *UI) audit(w http.ResponseWriter, r *http.Request, pg page) error {
	var p gatehouse.Page
	p.Limit = 50
	if c := r.URL.Query().Get("cursor"); c != "" {
		p.After = c
	}
	entries, next, err := u.svc.Audit(r.Context(), pg.P, p)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Audit log", "audit"
	u.render(w, http.StatusOK, "audit", struct {
		page
		Entries []*gatehouse.AuditEntry
		Next    string
	}{pg, entries, next})
	return nil
}

var palette = []string{"#2b59c3", "#e8710a", "#1a7f37", "#b42318", "#8250df", "#0e7490", "#a16207", "#be185d"}

type series struct {
	Label, Color string
	Total        int64
}

func (u *UI) usage(w http.ResponseWriter, r *http.Request, pg page) error {
	dates, rows, err := u.svc.AccountUsage(r.Context(), pg.P, 14)
	if err != nil {
		return err
	}
	var legend []series
	for i, s := range rows {
		var total int64
		for _, n := range s.Days {
			total += n
		}
		legend = append(legend, series{s.Label, palette[i%len(palette)], total})
	}
	pg.Title, pg.Page = "Usage", "usage"
	u.render(w, http.StatusOK, "usage", struct {
		page
		Dates  []string
		Series []series
		Chart  template.HTML
	}{pg, dates, legend, chart(dates, rows)})
	return nil
}

// chart draws stacked bars of requests per day as SVG. Every value in it is
// a number or a date the server made, so it is safe as HTML.
func chart(dates []string, rows []service.DailyUsage) template.HTML {
	const width, height, pad = 700, 220, 30
	var max int64 = 1
	for _, d := range dates {
		var sum int64
		for _, s := range rows {
			sum += s.Days[d]
		}
		if sum > max {
			max = sum
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="Requests per day">`, width, height+pad)
	bw := (width - pad) / len(dates)
	for i, d := range dates {
		x := pad + i*bw
		y := height
		for j, s := range rows {
			n := s.Days[d]
			if n == 0 {
				continue
			}
			h := int(int64(height-pad) * n / max)
			y -= h
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d</title></rect>`,
				x+2, y, bw-4, h, palette[j%len(palette)], template.HTMLEscapeString(s.Label), n)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, x+bw/2, height+16, d[5:])
	}
	fmt.Fprintf(&b, `<text x="0" y="%d">%d</text><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d9dee7"/>`, pad, max, pad, height, width, height)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
