package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
)

// scaleUsers is how many users TestAdminUIAtScale makes besides its named
// ones: more than a page of the API's largest list (200).
const scaleUsers = 260

// principalOf returns the service principal of a user, as if signed in
// with a password, to set up an account quickly through the service.
func principalOf(t *testing.T, env *servertest.Env, email string) *gatehouse.Principal {
	t.Helper()
	ctx := context.Background()
	u, err := env.Server.Store.UserByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	a, err := env.Server.Store.Account(ctx, u.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	return &gatehouse.Principal{Account: a, AccountID: a.ID, User: u, Method: gatehouse.MethodPassword}
}

// texts returns the text of every element matching a CSS selector.
func texts(t *testing.T, ctx context.Context, sel string) []string {
	t.Helper()
	var out []string
	run(t, ctx, chromedp.Evaluate(`Array.from(document.querySelectorAll(`+jsString(sel)+`)).map(e => e.textContent.trim())`, &out))
	return out
}

func jsString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// exists reports whether an element matches a CSS selector.
func exists(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	var ok bool
	run(t, ctx, chromedp.Evaluate(`document.querySelector(`+jsString(sel)+`) !== null`, &ok))
	return ok
}

// valueOf returns the value of a form field.
func valueOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var v string
	run(t, ctx, chromedp.Evaluate(`document.querySelector(`+jsString(sel)+`).value`, &v))
	return v
}

// follow opens the link that matches a CSS selector, as a click on it
// would, and waits for the page.
func follow(t *testing.T, ctx context.Context, env *servertest.Env, sel string) {
	t.Helper()
	goTo(t, ctx, env, textAttr(t, ctx, sel, "href"))
}

// goTo opens a UI path and waits for the page.
func goTo(t *testing.T, ctx context.Context, env *servertest.Env, path string) {
	t.Helper()
	run(t, ctx, chromedp.Navigate(env.URL+path), chromedp.WaitReady("main", chromedp.ByQuery))
}

// oneMessage fails the test unless the page shows exactly one error
// message, and it is the one with the given id (next to its field).
func oneMessage(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	msgs := texts(t, ctx, ".field-error, .form-error, .flash.error")
	if len(msgs) != 1 || !exists(t, ctx, "#"+id) {
		t.Fatalf("messages %q, want one at #%s", msgs, id)
	}
	return msgs[0]
}

// dangerFirstAsks checks every destructive control of the page: no
// destructive button outside a confirmation page, and every destructive
// link opens a confirmation page that says what stops and has the button
// that does it.
func dangerFirstAsks(t *testing.T, ctx context.Context, env *servertest.Env, path string) int {
	t.Helper()
	goTo(t, ctx, env, path)
	var controls []struct{ Tag, Href, Label string }
	run(t, ctx, chromedp.Evaluate(`Array.from(document.querySelectorAll('.danger')).map(e => ({Tag: e.tagName,
		Href: e.getAttribute('href') || '', Label: e.textContent.trim()}))`, &controls))
	for _, c := range controls {
		if c.Tag != "A" {
			t.Fatalf("%s: the destructive button %q acts without asking", path, c.Label)
		}
		goTo(t, ctx, env, c.Href)
		if !exists(t, ctx, "section.confirm ul.stops li") || !exists(t, ctx, "section.confirm form button.danger") {
			t.Fatalf("%s: %q (%s) does not lead to a confirmation that says what stops", path, c.Label, c.Href)
		}
	}
	return len(controls)
}

// TestAdminUIAtScale walks the admin UI of an account with more users
// than any page holds, as its admins, a developer and a member would:
// every user is reachable by paging and by search, a reload of a page that
// showed a secret never shows or makes a second one, every destructive
// control asks first, a refused form keeps what was typed, no page
// scrolls sideways at 390 or 1280 px, and a member has a home page with
// navigation and Log out.
func TestAdminUIAtScale(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) {
		c.UsageFlushInterval = 100 * time.Millisecond
		c.RefreshGrace = 0
	})
	ctx := context.Background()
	svc := env.Server.Service
	adminP := principalOf(t, env, servertest.AdminEmail)

	// The account: scaleUsers users made through the service, every
	// eighth a developer with three credentials; and a developer, a member
	// and a second admin who sign in.
	var emails []string
	var developers []string
	start := time.Now()
	for i := range scaleUsers {
		in := service.NewUser{Email: fmt.Sprintf("user%03d@scale.example", i), Name: fmt.Sprintf("Person %03d", i)}
		if i%8 == 0 {
			in.Roles = []gatehouse.Role{gatehouse.RoleDeveloper}
		}
		u, err := svc.CreateUser(ctx, adminP, in)
		if err != nil {
			t.Fatal(err)
		}
		emails = append(emails, u.Email)
		if i%8 == 0 {
			developers = append(developers, u.Email)
		}
	}
	for _, in := range []service.NewUser{
		{Email: "dev@scale.example", Name: "Dev", Password: memberPW, Roles: []gatehouse.Role{gatehouse.RoleDeveloper}},
		{Email: "member@scale.example", Name: "Member", Password: memberPW},
		{Email: "boss2@scale.example", Name: "Second admin", Password: memberPW, Roles: []gatehouse.Role{gatehouse.RoleAdmin}},
	} {
		if _, err := svc.CreateUser(ctx, adminP, in); err != nil {
			t.Fatal(err)
		}
		emails = append(emails, in.Email)
	}
	emails = append(emails, servertest.AdminEmail)
	creds := map[string][]*service.NewCredential{}
	for _, email := range developers {
		p := principalOf(t, env, email)
		for _, name := range []string{"ci", "deploy", "backup"} {
			c, err := svc.CreateCredential(ctx, p, service.CredentialInput{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			creds[email] = append(creds[email], c)
		}
	}
	t.Logf("made %d users and %d credentials in %v", len(emails), 3*len(developers), time.Since(start))
	slices.Sort(emails)

	admin := browserFor(t, 8*time.Minute)
	run(t, admin, uiLogin(env, servertest.AdminEmail, servertest.AdminPassword))

	t.Run("every user by paging", func(t *testing.T) {
		goTo(t, admin, env, "/admin/users")
		if c := textOf(t, admin, ".count"); !strings.Contains(c, fmt.Sprintf("%d users in this account", len(emails))) {
			t.Fatalf("count %q", c)
		}
		shot(t, admin, "users")
		var seen, first []string
		pages := 0
		for {
			page := texts(t, admin, "table.users td[data-label=User] a")
			if pages == 0 {
				first = page
			}
			seen, pages = append(seen, page...), pages+1
			if !exists(t, admin, "a[rel=next]") {
				break
			}
			follow(t, admin, env, "a[rel=next]")
		}
		sorted := slices.Sorted(slices.Values(seen))
		if !slices.Equal(sorted, emails) || len(seen) != len(emails) || pages != (len(emails)+49)/50 {
			t.Fatalf("paging showed %d users in %d pages, want all %d once", len(seen), pages, len(emails))
		}
		// And back, page by page, to the first.
		for back := 1; back < pages; back++ {
			follow(t, admin, env, "a[rel=prev]")
		}
		if page := texts(t, admin, "table.users td[data-label=User] a"); !slices.Equal(page, first) || exists(t, admin, "a[rel=prev]") {
			t.Fatalf("back at the first page: %v", page)
		}
	})

	t.Run("every user by search", func(t *testing.T) {
		// Typed into the search box, by a part of the name.
		goTo(t, admin, env, "/admin/users")
		run(t, admin, chromedp.SendKeys("#q", "person 137", chromedp.ByID), chromedp.Click(`//button[normalize-space()="Search"]`, chromedp.BySearch),
			chromedp.WaitVisible(`//td//a[contains(., "user137@scale.example")]`, chromedp.BySearch))
		if c := textOf(t, admin, ".count"); c != "1 user matches." {
			t.Fatalf("count %q", c)
		}
		// By role and status.
		goTo(t, admin, env, "/admin/users?role=developer")
		if c := textOf(t, admin, ".count"); c != fmt.Sprintf("%d users match.", len(developers)+1) {
			t.Fatalf("developers: %q", c)
		}
		// Every user, by e-mail address: the page over a plain HTTP
		// session for each, and in the browser for every 40th.
		ui := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
		for i, email := range emails {
			status, page, _ := ui.get("/admin/users?q=" + url.QueryEscape(email))
			if status != http.StatusOK || !strings.Contains(page, ">1 user matches.</p>") || !strings.Contains(page, ">"+html.EscapeString(email)+"</a>") {
				t.Fatalf("searching %s: %d, the page does not find that one user", email, status)
			}
			if i%40 != 0 {
				continue
			}
			goTo(t, admin, env, "/admin/users?q="+url.QueryEscape(email))
			if got := texts(t, admin, "table.users td[data-label=User] a"); !slices.Contains(got, email) {
				t.Fatalf("searching %s found %v", email, got)
			}
		}
	})

	devEmail := developers[3]
	devID := findUserID(t, env, env.AdminToken(), devEmail)
	t.Run("a user's page shows what they hold", func(t *testing.T) {
		goTo(t, admin, env, "/admin/users?q=user024")
		run(t, admin, chromedp.Click(`//td//a[contains(., "`+devEmail+`")]`, chromedp.BySearch), chromedp.WaitVisible("dl.facts", chromedp.ByQuery))
		got := slices.Sorted(slices.Values(texts(t, admin, "td[data-label=Name]")))
		if !slices.Equal(got, []string{"backup", "ci", "deploy"}) {
			t.Fatalf("credentials on the user's page: %v", got)
		}
		shot(t, admin, "user")
	})

	t.Run("removing the developer role shows what stays live", func(t *testing.T) {
		c := creds[devEmail][0]
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}.Encode()
		tok := accessToken(t, env.Request("POST", "/oauth/token", form, "Content-Type", "application/x-www-form-urlencoded"))
		goTo(t, admin, env, "/admin/users/"+devID)
		run(t, admin, chromedp.Click(`input[name=role][value=developer]`, chromedp.ByQuery), submit("Save"),
			chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
		if keeps := textOf(t, admin, "ul.keeps"); !strings.Contains(keeps, "3 client credentials keep working") || !strings.Contains(keeps, c.ClientID) {
			t.Fatalf("the confirmation says %q", keeps)
		}
		shot(t, admin, "confirm-role")
		bothWidths(t, admin, "the confirmation of a role change")
		// Nothing changed yet.
		if r := env.As(env.AdminToken(), "GET", "/v1/users/"+devID, nil).Map(t); !strings.Contains(fmt.Sprint(r["roles"]), "developer") {
			t.Fatalf("changed before the confirmation: %v", r)
		}
		run(t, admin, submit("Remove role, keep credentials"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
		if w := textOf(t, admin, "p.warning"); !strings.Contains(w, "still get tokens") {
			t.Fatalf("warning %q", w)
		}
		servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")
		// The admin deletes one of them, after a confirmation.
		run(t, admin, chromedp.Click(`//tr[td[normalize-space()="ci"]]//a[normalize-space()="Delete"]`, chromedp.BySearch),
			chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
		if stops := textOf(t, admin, "ul.stops"); !strings.Contains(stops, "1 live token") || !strings.Contains(stops, "of "+devEmail) {
			t.Fatalf("the confirmation says %q", stops)
		}
		servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")
		run(t, admin, submit("Delete credential"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
		servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
		if got := slices.Sorted(slices.Values(texts(t, admin, "td[data-label=Name]"))); !slices.Equal(got, []string{"backup", "deploy"}) {
			t.Fatalf("left: %v", got)
		}
	})

	t.Run("adding a developer by search", func(t *testing.T) {
		goTo(t, admin, env, "/admin/developers")
		run(t, admin, chromedp.SendKeys("#find", "user259", chromedp.ByID), submit("Find"),
			chromedp.Click(`//button[@aria-label="Add user259@scale.example as a developer"]`, chromedp.BySearch),
			chromedp.WaitVisible(".flash", chromedp.ByQuery))
		if !slices.Contains(texts(t, admin, "td[data-label=Developer] a"), "user259@scale.example") {
			t.Fatal("the new developer is not listed")
		}
		shot(t, admin, "developers-scale")
	})

	dev := browser(t)
	run(t, dev, uiLogin(env, "dev@scale.example", memberPW))
	member := browser(t)
	boss2 := browser(t)
	run(t, boss2, uiLogin(env, "boss2@scale.example", memberPW))

	t.Run("a refused form keeps its values", func(t *testing.T) {
		// A taken e-mail address: the name and roles stay, one message
		// next to the address.
		goTo(t, admin, env, "/admin/users")
		run(t, admin, chromedp.SendKeys("#new-email", "user001@scale.example", chromedp.ByID), chromedp.SendKeys("#new-name", "Kept Name", chromedp.ByID),
			chromedp.Click(`#new-user ~ form input[value=developer]`, chromedp.ByQuery), submit("Create user"),
			chromedp.WaitVisible("#new-email-error", chromedp.ByID))
		if msg := oneMessage(t, admin, "new-email-error"); !strings.Contains(msg, "already uses this e-mail") {
			t.Fatalf("message %q", msg)
		}
		var ticked bool
		run(t, admin, chromedp.Evaluate(`document.querySelector('#new-user ~ form input[value=developer]').checked`, &ticked))
		if valueOf(t, admin, "#new-email") != "user001@scale.example" || valueOf(t, admin, "#new-name") != "Kept Name" || !ticked {
			t.Fatal("the form lost what was typed")
		}
		bothWidths(t, admin, "the refused users form")
		shot(t, admin, "refused-form")

		// Settings: one value out of bounds keeps every other one typed.
		goTo(t, admin, env, "/admin/settings")
		run(t, admin, chromedp.SetValue("#burst", "77", chromedp.ByID), chromedp.SetValue("#daily", "100000001", chromedp.ByID),
			submit("Save settings"), chromedp.WaitVisible("#daily-error", chromedp.ByID))
		if msg := oneMessage(t, admin, "daily-error"); msg != "Enter a whole number from 1 to 100000000." {
			t.Fatalf("message %q", msg)
		}
		var pwGrant bool
		run(t, admin, chromedp.Evaluate(`document.querySelector('input[name=password_grant_enabled]').checked`, &pwGrant))
		if valueOf(t, admin, "#burst") != "77" || valueOf(t, admin, "#daily") != "100000001" || valueOf(t, admin, "#password-seconds") != "3600" || !pwGrant {
			t.Fatal("the settings form lost what was typed")
		}
		if b := env.As(env.AdminToken(), "GET", "/v1/settings", nil).Map(t)["rate_limit"].(map[string]any)["burst"]; b != 100.0 {
			t.Fatalf("a refused form changed the burst to %v", b)
		}
		shot(t, admin, "settings-refused")

		// API access: a lifetime out of range.
		goTo(t, admin, env, "/admin/api-access")
		run(t, admin, chromedp.SetValue("#ttl", "400", chromedp.ByID), submit("Enable API Access"), chromedp.WaitVisible("#ttl-error", chromedp.ByID))
		if msg := oneMessage(t, admin, "ttl-error"); msg != "Choose from 1 to 365 days." || valueOf(t, admin, "#ttl") != "400" {
			t.Fatalf("message %q, value %q", msg, valueOf(t, admin, "#ttl"))
		}

		// Their own password: a wrong current one.
		goTo(t, boss2, env, "/admin/me")
		run(t, boss2, chromedp.SendKeys("#current-password", "not my password", chromedp.ByID),
			chromedp.SendKeys("#new-password", "a new password 1", chromedp.ByID), chromedp.SendKeys("#repeat-password", "a new password 1", chromedp.ByID),
			submit("Change password"), chromedp.WaitVisible("#current-password-error", chromedp.ByID))
		if msg := oneMessage(t, boss2, "current-password-error"); msg != "This is not your current password." {
			t.Fatalf("message %q", msg)
		}

		// A credential name the developer already uses.
		goTo(t, dev, env, "/admin/credentials")
		run(t, dev, chromedp.SendKeys("#cred-name", "first", chromedp.ByID), submit("Create credential"), chromedp.WaitVisible("#new-client-secret", chromedp.ByID))
		goTo(t, dev, env, "/admin/credentials")
		run(t, dev, chromedp.SendKeys("#cred-name", "FIRST", chromedp.ByID), submit("Create credential"), chromedp.WaitVisible("#cred-name-error", chromedp.ByID))
		if msg := oneMessage(t, dev, "cred-name-error"); !strings.Contains(msg, "already in use") || valueOf(t, dev, "#cred-name") != "FIRST" {
			t.Fatalf("message %q", msg)
		}
	})

	t.Run("a reload never shows a second secret", func(t *testing.T) {
		adminTok := env.AdminToken()
		// API tokens.
		goTo(t, admin, env, "/admin/extensions")
		run(t, admin, submit("Turn on"), chromedp.WaitVisible("#token-name", chromedp.ByID),
			chromedp.SendKeys("#token-name", "Robot", chromedp.ByID), submit("Generate token"))
		tok := textOf(t, admin, "#api-token")
		shot(t, admin, "secret")
		bothWidths(t, admin, "the page of a new API token")
		run(t, admin, chromedp.Reload(), chromedp.WaitVisible(".already-shown", chromedp.ByQuery))
		if strings.Contains(pageHTML(t, admin), tok) {
			t.Fatal("the API token was shown again")
		}
		shot(t, admin, "already-shown")
		bothWidths(t, admin, "the already-shown page")
		named := 0
		for _, x := range env.As(adminTok, "GET", "/v1/api-tokens", nil).Map(t)["data"].([]any) {
			if x.(map[string]any)["name"] == "Robot" {
				named++
			}
		}
		if named != 1 {
			t.Fatalf("%d tokens named Robot after a reload", named)
		}
		// A duplicate name is refused, the name kept.
		goTo(t, admin, env, "/admin/extensions")
		run(t, admin, chromedp.SendKeys("#token-name", "robot", chromedp.ByID), submit("Generate token"), chromedp.WaitVisible("#token-name-error", chromedp.ByID))
		oneMessage(t, admin, "token-name-error")

		// API access.
		goTo(t, admin, env, "/admin/api-access")
		run(t, admin, chromedp.SetValue("#ttl", "7", chromedp.ByID), submit("Enable API Access"))
		access, refreshTok, clientID := textOf(t, admin, "#access-token"), textOf(t, admin, "#refresh-token"), textOf(t, admin, "#client-id")
		bothWidths(t, admin, "the page of new API access tokens")
		run(t, admin, chromedp.Reload(), chromedp.WaitVisible(".already-shown", chromedp.ByQuery))
		if html := pageHTML(t, admin); strings.Contains(html, access) || strings.Contains(html, refreshTok) {
			t.Fatal("API access tokens shown again")
		}
		goTo(t, admin, env, "/admin/api-access")
		if c := textOf(t, admin, "main .card p.muted"); !strings.HasPrefix(c, "2 tokens work now") {
			t.Fatalf("after a reload: %q", c)
		}

		// A developer's credential.
		goTo(t, dev, env, "/admin/credentials")
		run(t, dev, chromedp.SendKeys("#cred-name", "nightly", chromedp.ByID), submit("Create credential"))
		secret := textOf(t, dev, "#new-client-secret")
		bothWidths(t, dev, "the page of a new client secret")
		run(t, dev, chromedp.Reload(), chromedp.WaitVisible(".already-shown", chromedp.ByQuery))
		if strings.Contains(pageHTML(t, dev), secret) {
			t.Fatal("the client secret was shown again")
		}
		goTo(t, dev, env, "/admin/credentials")
		if got := texts(t, dev, "td[data-label=Name]"); !slices.Equal(got, []string{"first", "nightly"}) {
			t.Fatalf("credentials after a reload: %v", got)
		}
		// Another session cannot open a reveal, even with its address.
		run(t, dev, chromedp.Navigate(env.URL+"/admin/credentials"), chromedp.SendKeys("#cred-name", "weekly", chromedp.ByID), submit("Create credential"),
			chromedp.WaitVisible("#new-client-secret", chromedp.ByID))
		var loc string
		run(t, dev, chromedp.Location(&loc))
		goTo(t, admin, env, strings.TrimPrefix(loc, env.URL))
		if !exists(t, admin, ".already-shown") {
			t.Fatal("another session opened a reveal")
		}

		// After reuse detection: the page says what happened and offers
		// new tokens, shown once as well.
		body := url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {refreshTok}}.Encode()
		servertest.Expect(t, env.Request("POST", "/oauth/token", body, "Content-Type", "application/x-www-form-urlencoded"), 200, "")
		time.Sleep(10 * time.Millisecond)
		servertest.Expect(t, env.Request("POST", "/oauth/token", body, "Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_grant")
		goTo(t, admin, env, "/admin/api-access")
		if w := textOf(t, admin, "section.warning"); !strings.Contains(w, "already been used was presented again") || !strings.Contains(w, "UTC") {
			t.Fatalf("after reuse detection the page says %q", w)
		}
		shot(t, admin, "api-access-reuse")
		bothWidths(t, admin, "the API access page after reuse detection")
		run(t, admin, submit("Issue new tokens"))
		fresh := textOf(t, admin, "#access-token")
		servertest.Expect(t, env.As(fresh, "GET", "/v1/me", nil), 200, "")
		run(t, admin, chromedp.Reload(), chromedp.WaitVisible(".already-shown", chromedp.ByQuery))
		if strings.Contains(pageHTML(t, admin), fresh) {
			t.Fatal("the new tokens were shown again")
		}
		goTo(t, admin, env, "/admin/api-access")
		if exists(t, admin, "section.warning") {
			t.Fatal("the warning stays after new tokens")
		}
		_ = tok
	})

	t.Run("every destructive control asks first", func(t *testing.T) {
		n := 0
		for _, path := range []string{"/admin/users/" + devID, "/admin/developers", "/admin/api-access", "/admin/extensions", "/admin/me", "/admin/users"} {
			n += dangerFirstAsks(t, admin, env, path)
		}
		n += dangerFirstAsks(t, dev, env, "/admin/credentials")
		if n < 8 {
			t.Fatalf("only %d destructive controls found", n)
		}
		// The forms that change a user: disabling and demoting oneself.
		victim := findUserID(t, env, env.AdminToken(), "user002@scale.example")
		goTo(t, admin, env, "/admin/users/"+victim)
		run(t, admin, chromedp.SetValue("#status", "disabled", chromedp.ByID), submit("Save"), chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
		if stops := textOf(t, admin, "ul.stops"); !strings.Contains(stops, "can no longer sign in") {
			t.Fatalf("disabling says %q", stops)
		}
		shot(t, admin, "confirm-disable")
		bothWidths(t, admin, "the confirmation of a disable")
		run(t, admin, submit("Disable user002@scale.example"), chromedp.WaitVisible(".flash", chromedp.ByQuery))
		if st := env.As(env.AdminToken(), "GET", "/v1/users/"+victim, nil).Map(t)["status"]; st != "disabled" {
			t.Fatalf("status %v after the confirmation", st)
		}
		bossID := findUserID(t, env, env.AdminToken(), "boss2@scale.example")
		goTo(t, boss2, env, "/admin/users/"+bossID)
		run(t, boss2, chromedp.Click(`input[name=role][value=admin]`, chromedp.ByQuery), submit("Save"), chromedp.WaitVisible("section.confirm", chromedp.ByQuery))
		if q := textOf(t, boss2, "section.confirm h1"); q != "Remove your own admin role?" {
			t.Fatalf("demoting oneself asks %q", q)
		}
		run(t, boss2, chromedp.Click(`//a[normalize-space()="Cancel"]`, chromedp.BySearch), chromedp.WaitVisible("dl.facts", chromedp.ByQuery))
		if roles := fmt.Sprint(env.As(env.AdminToken(), "GET", "/v1/users/"+bossID, nil).Map(t)["roles"]); roles != "[admin]" {
			t.Fatalf("roles %s after cancelling", roles)
		}
		// Turning the extension off names the tokens it stops.
		goTo(t, admin, env, "/admin/extensions/api-tokens/off")
		if stops := textOf(t, admin, "ul.stops"); !strings.Contains(stops, "Robot") {
			t.Fatalf("turning off says %q", stops)
		}
	})

	t.Run("a member's home page", func(t *testing.T) {
		run(t, member, uiLogin(env, "member@scale.example", memberPW))
		var loc string
		run(t, member, chromedp.Location(&loc))
		if !strings.HasSuffix(loc, "/admin/me") {
			t.Fatalf("a member lands on %s", loc)
		}
		nav := texts(t, member, "header nav a")
		if !slices.Equal(nav, []string{"Your account"}) || !exists(t, member, `header form[action$="/admin/logout"] button`) {
			t.Fatalf("a member's navigation %v", nav)
		}
		shot(t, member, "home-member")
		bothWidths(t, member, "a member's home page")
		goTo(t, member, env, "/admin/users")
		if c := textOf(t, member, "h1"); c != "Not allowed" || !exists(t, member, "header nav") {
			t.Fatalf("a member on the users page sees %q", c)
		}
		run(t, member, submit("Log out"), chromedp.WaitVisible("#email", chromedp.ByID))
	})

	t.Run("audit log", func(t *testing.T) {
		goTo(t, admin, env, "/admin/audit")
		first := texts(t, admin, "table.audit td.when")
		follow(t, admin, env, "a[rel=next]")
		follow(t, admin, env, "a[rel=prev]")
		// The clicks navigate; the page read may still be loading, so look
		// again for a moment before judging.
		back := texts(t, admin, "table.audit td.when")
		for deadline := time.Now().Add(5 * time.Second); !slices.Equal(back, first) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			back = texts(t, admin, "table.audit td.when")
		}
		if !slices.Equal(back, first) || len(first) != 50 {
			t.Fatalf("older then newer: %d entries, then %d", len(first), len(back))
		}
		today := time.Now().UTC().Format(time.DateOnly)
		goTo(t, admin, env, "/admin/audit?"+url.Values{"actor": {"admin@example"}, "action": {"credential."}, "from": {today}, "to": {today}}.Encode())
		got := texts(t, admin, "table.audit td[data-label=What] strong")
		if len(got) == 0 {
			t.Fatal("no entries match")
		}
		for _, a := range got {
			if !strings.HasPrefix(a, "credential.") {
				t.Fatalf("filtered by credential. shows %s", a)
			}
		}
		shot(t, admin, "audit-filtered")
		noSideScroll(t, admin, "the filtered audit log")
		// The export holds the filtered entries, as CSV and JSON lines.
		var csvText, jsonl string
		csvURL, _ := url.Parse(textAttr(t, admin, `a[href*="format=csv"]`, "href"))
		jlURL, _ := url.Parse(textAttr(t, admin, `a[href*="format=jsonl"]`, "href"))
		run(t, admin, chromedp.Evaluate(`fetch(`+jsString(csvURL.String())+`).then(r => r.text())`, &csvText, awaitPromise),
			chromedp.Evaluate(`fetch(`+jsString(jlURL.String())+`).then(r => r.text())`, &jsonl, awaitPromise))
		lines := strings.Split(strings.TrimSpace(csvText), "\n")
		if len(lines) != len(got)+1 || !strings.HasPrefix(lines[0], "time,actor,") || !strings.Contains(lines[1], ",credential.") {
			t.Fatalf("CSV export %q", csvText)
		}
		if n := len(strings.Split(strings.TrimSpace(jsonl), "\n")); n != len(got) || !strings.Contains(jsonl, `"action":"credential.`) {
			t.Fatalf("JSON lines export %q", jsonl)
		}
		// A bad date is refused next to its field, the filter kept.
		goTo(t, admin, env, "/admin/audit?from="+today+"&to=2000-01-01&actor=admin")
		if msg := oneMessage(t, admin, "to-error"); !strings.Contains(msg, "on or after") || valueOf(t, admin, "#actor") != "admin" {
			t.Fatalf("message %q", msg)
		}
	})

	t.Run("nothing scrolls sideways", func(t *testing.T) {
		pages := map[context.Context][]string{
			admin: {"/admin/users", "/admin/users?after=" + url.QueryEscape(findUserID(t, env, env.AdminToken(), "user100@scale.example")),
				"/admin/users?q=zzz", "/admin/users/" + devID, "/admin/developers", "/admin/developers?find=user", "/admin/api-access",
				"/admin/api-access/revoke", "/admin/extensions", "/admin/extensions/api-tokens/off", "/admin/settings", "/admin/usage",
				"/admin/audit", "/admin/audit?action=user.", "/admin/me", "/admin/developers/" + devID + "/remove",
				"/admin/secrets/rev_gone"},
			dev:    {"/admin/credentials", "/admin/me"},
			member: {"/admin/login"},
		}
		for browserCtx, paths := range pages {
			for _, width := range []int64{390, 1280} {
				run(t, browserCtx, chromedp.EmulateViewport(width, 900))
				for _, p := range paths {
					goTo(t, browserCtx, env, p)
					noSideScroll(t, browserCtx, fmt.Sprintf("%s at %d px", p, width))
				}
			}
			run(t, browserCtx, chromedp.EmulateViewport(1280, 900))
		}
		run(t, admin, chromedp.EmulateViewport(390, 844))
		goTo(t, admin, env, "/admin/users/"+devID)
		bothWidths(t, admin, "a user's page")
		run(t, admin, chromedp.EmulateViewport(390, 844))
		shotScreen(t, admin, "user-mobile")
		goTo(t, admin, env, "/admin/audit")
		shotScreen(t, admin, "audit-mobile")
		run(t, admin, chromedp.EmulateViewport(1280, 900))
	})
}

// awaitPromise makes chromedp.Evaluate wait for a promise's value.
func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// textAttr returns an attribute of the first element matching sel.
func textAttr(t *testing.T, ctx context.Context, sel, attr string) string {
	t.Helper()
	var v string
	run(t, ctx, chromedp.Evaluate(`document.querySelector(`+jsString(sel)+`).getAttribute(`+jsString(attr)+`)`, &v))
	return v
}
