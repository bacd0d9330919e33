package e2e

import (
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// setPlanFields fills the Plan form of the page the browser is on (the
// ids of the "plan" template) and saves it.
func setPlanFields(fields map[string]string) chromedp.Tasks {
	var tasks chromedp.Tasks
	for id, v := range fields {
		tasks = append(tasks, chromedp.SetValue("#"+id, v, chromedp.ByID))
	}
	return append(tasks, submit("Save plan"), flashSays("Saved the plan"))
}

// flashSays waits for the page's message to hold text.
func flashSays(text string) chromedp.Action {
	return chromedp.WaitVisible(`//div[contains(@class, "flash") and contains(., "`+text+`")]`, chromedp.BySearch)
}

// TestPlansConsoleChromium: in headless Chromium, a developer sets a
// quota of 3 a day and an allow-list on their client credential and an
// admin sets a rate limit on the developer and a monthly quota and an
// allow-list on an API token, each on its page's Plan form.
// Over HTTP they hold: the credential's token is refused from outside the
// allow-list (403 ip_not_allowed, behind a trusted proxy) and its 4th
// request of the day is refused with 422 quota_exceeded, the remaining
// quota on the page is the API's; the developer's third request in the
// burst window is refused. Cleared on the same forms, none of them holds.
func TestPlansConsoleChromium(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) {
		c.TrustedProxies, _ = httpx.ParseTrustedProxies("127.0.0.1/32,::1/128")
	})
	admin, devID, devTok, cred := developer(t, env)
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
	tok := accessToken(t, env.Request("POST", "/v1/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}}.Encode(),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, from("203.0.113.5")...)...))
	me := func(addr string) *servertest.Response {
		return env.Request("GET", "/v1/me", nil, append([]string{"Authorization", "Bearer " + tok}, from(addr)...)...)
	}
	// apiRemaining is the credential's quota.remaining as the API reads it
	// back (-1 for no quota).
	apiRemaining := func() int {
		r := env.As(devTok, "GET", "/v1/credentials", nil)
		servertest.Expect(t, r, 200, "")
		for _, c := range r.Map(t)["data"].([]any) {
			c := c.(map[string]any)
			if c["id"] != cred.ID {
				continue
			}
			if q, ok := c["quota"].(map[string]any); ok {
				return int(q["remaining"].(float64))
			}
			return -1
		}
		t.Fatal("the credential is not listed")
		return 0
	}

	// The developer sets the credential's plan.
	dev := browser(t)
	run(t, dev, uiLogin(env, "dev@example.com", memberPW),
		chromedp.Navigate(env.URL+"/admin/credentials"),
		chromedp.Click(`//a[normalize-space()="CI"]`, chromedp.BySearch),
		chromedp.WaitVisible("#plan-quota-limit", chromedp.ByID),
		chromedp.SetValue("#plan-quota-period", "day", chromedp.ByID),
		setPlanFields(map[string]string{"plan-quota-limit": "3", "plan-allowed-ips": "203.0.113.0/24\n2001:db8::/32"}))
	if flash := textOf(t, dev, ".flash"); !strings.Contains(flash, "Saved the plan of the credential CI") {
		t.Fatalf("flash %q", flash)
	}
	if q := textOf(t, dev, "#plan-quota"); !strings.Contains(q, "3 requests a day") || textOf(t, dev, "#quota-remaining") != "3" {
		t.Fatalf("the page shows the quota as %q", q)
	}
	if ips := textOf(t, dev, "#plan-allowed"); ips != "203.0.113.0/24, 2001:db8::/32" {
		t.Fatalf("the page shows the allow-list as %q", ips)
	}
	shot(t, dev, "console-credential-plan")

	// The allow-list holds, and a refusal is charged nothing.
	servertest.Expect(t, me("198.51.100.1"), 403, "ip_not_allowed")
	servertest.Expect(t, me("203.0.113.5"), 200, "")
	// The page reads back what the API does.
	run(t, dev, chromedp.Reload(), chromedp.WaitVisible("#quota-remaining", chromedp.ByID))
	if page, api := textOf(t, dev, "#quota-remaining"), apiRemaining(); page != "2" || api != 2 {
		t.Fatalf("after one request the page shows %s left, the API %d; want 2", page, api)
	}
	servertest.Expect(t, me("203.0.113.77"), 200, "")
	servertest.Expect(t, me("203.0.113.5"), 200, "")
	r := me("203.0.113.5")
	servertest.Expect(t, r, 422, "quota_exceeded")
	if r.Header.Get("X-RateLimit-Quota-Remaining") != "0" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over the quota: headers %v", r.Header)
	}
	servertest.Expect(t, me("198.51.100.1"), 403, "ip_not_allowed")
	run(t, dev, chromedp.Reload(), chromedp.WaitVisible("#quota-remaining", chromedp.ByID))
	if page, api := textOf(t, dev, "#quota-remaining"), apiRemaining(); page != "0" || api != 0 {
		t.Fatalf("after the quota the page shows %s left, the API %d; want 0", page, api)
	}

	// An admin sets the developer's own rate limit on their page.
	adm := browser(t)
	run(t, adm, uiLogin(env, servertest.AdminEmail, servertest.AdminPassword),
		chromedp.Navigate(env.URL+"/admin/users/"+devID), chromedp.WaitVisible("#plan-daily", chromedp.ByID),
		setPlanFields(map[string]string{"plan-daily": "1000", "plan-burst": "2", "plan-window": "600"}))
	if rl := textOf(t, adm, "#plan-rate-limit"); rl != "1000 requests a day, 2 per 600 seconds" {
		t.Fatalf("the page shows the rate limit as %q", rl)
	}
	shot(t, adm, "console-user-plan")
	// An API token's plan is set on its page, reached from Extensions.
	apiTok := withAPIToken(t, env, admin)
	run(t, adm, chromedp.Navigate(env.URL+"/admin/extensions"),
		chromedp.Click(`//a[normalize-space()="Zapier"]`, chromedp.BySearch),
		chromedp.WaitVisible("#plan-quota-limit", chromedp.ByID),
		chromedp.SetValue("#plan-quota-period", "month", chromedp.ByID),
		setPlanFields(map[string]string{"plan-quota-limit": "1000", "plan-allowed-ips": "192.0.2.0/24, 198.51.100.7"}))
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, append([]string{"X-API-Token", apiTok.Token}, from("192.0.2.9")...)...), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, append([]string{"X-API-Token", apiTok.Token}, from("203.0.113.5")...)...), 403, "ip_not_allowed")
	run(t, adm, chromedp.Reload(), chromedp.WaitVisible("#quota-remaining", chromedp.ByID))
	if left := textOf(t, adm, "#quota-remaining"); left != "999" || !strings.Contains(textOf(t, adm, "#plan-quota"), "left this month") {
		t.Fatalf("the API token's page shows %s left: %q", left, textOf(t, adm, "#plan-quota"))
	}
	shot(t, adm, "console-api-token-plan")
	if got := fmtPlan(env.As(admin, "GET", "/v1/users/"+devID, nil).Map(t)); got != "rate_limit=1000/2/600 quota=none allowed_ips=[]" {
		t.Fatalf("the API reads the user's plan back as %s", got)
	}
	servertest.Expect(t, env.As(devTok, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, env.As(devTok, "GET", "/v1/me", nil), 200, "")
	r = env.As(devTok, "GET", "/v1/me", nil)
	servertest.Expect(t, r, 422, "rate_limit_exceeded")
	if !strings.Contains(r.Header.Get("RateLimit-Policy"), `"burst";q=2;w=600`) {
		t.Fatalf("the refusal names %q", r.Header.Get("RateLimit-Policy"))
	}

	// A bad network is refused on the form, next to its field, and
	// changes nothing.
	run(t, dev, chromedp.SetValue("#plan-allowed-ips", "203.0.113.0/24\n10.0.0.300", chromedp.ByID), submit("Save plan"),
		chromedp.WaitVisible("#plan-allowed-ips-error", chromedp.ByID))
	if msg := textOf(t, dev, "#plan-allowed-ips-error"); msg != `allowed_ips: "10.0.0.300" is not an IP address or a CIDR prefix` {
		t.Fatalf("the refusal says %q", msg)
	}
	shot(t, dev, "console-credential-plan-refused")
	if ips := textOf(t, dev, "#plan-allowed"); ips != "203.0.113.0/24, 2001:db8::/32" {
		t.Fatalf("a refused form changed the allow-list to %q", ips)
	}
	bothWidths(t, dev, "the credential page")
	servertest.Expect(t, me("198.51.100.1"), 403, "ip_not_allowed")

	// Both cleared in the console: none of the limits holds any more.
	run(t, adm, chromedp.Navigate(env.URL+"/admin/users/"+devID), chromedp.WaitVisible("#plan-daily", chromedp.ByID),
		submit("Clear plan"), flashSays("Cleared the plan"))
	if flash := textOf(t, adm, ".flash"); !strings.Contains(flash, "Cleared the plan of dev@example.com") {
		t.Fatalf("flash %q", flash)
	}
	if rl := textOf(t, adm, "#plan-rate-limit"); rl != "none of its own" {
		t.Fatalf("after clearing the page shows the rate limit as %q", rl)
	}
	run(t, dev, submit("Clear plan"), flashSays("Cleared the plan"))
	if q, ips := textOf(t, dev, "#plan-quota"), textOf(t, dev, "#plan-allowed"); q != "none" || ips != "any" {
		t.Fatalf("after clearing the page shows quota %q, allowed %q", q, ips)
	}
	shot(t, dev, "console-credential-plan-cleared")
	if apiRemaining() != -1 {
		t.Fatal("the API still reads a quota back")
	}
	for i := range 5 {
		servertest.Expect(t, me("198.51.100."+strconv.Itoa(i+1)), 200, "")
		servertest.Expect(t, env.As(devTok, "GET", "/v1/me", nil), 200, "")
	}
}

// TestPlansConsoleForms: the Plan forms of a credential, an API token, an
// API access application and a user refuse bad input — a negative or a
// huge number, an unknown period, a bad network, half a rate limit — with
// 400 and the service's message next to the field, and change nothing;
// good input is what the API reads back.
func TestPlansConsoleForms(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, devTok, cred := developer(t, env)
	apiTok := withAPIToken(t, env, admin)
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-access", map[string]any{}), 201, "")
	adm := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	dev := uiSignIn(t, env, "dev@example.com", memberPW)

	// planOf reads a subject's plan back from the API, as JSON text.
	planOf := func(kind string) string {
		var r *servertest.Response
		var item map[string]any
		switch kind {
		case "credential":
			r = env.As(devTok, "GET", "/v1/credentials", nil)
		case "api token":
			r = env.As(admin, "GET", "/v1/api-tokens", nil)
		case "api access":
			r = env.As(admin, "GET", "/v1/api-access", nil)
		case "user":
			r = env.As(admin, "GET", "/v1/users/"+devID, nil)
		}
		servertest.Expect(t, r, 200, "")
		item = r.Map(t)
		if data, ok := item["data"].([]any); ok {
			item = data[0].(map[string]any)
		}
		return fmtPlan(item)
	}
	good := url.Values{"rate_limit.daily": {"500"}, "rate_limit.burst": {"20"}, "rate_limit.burst_window_seconds": {"60"},
		"quota.limit": {"100"}, "quota.period": {"month"}, "allowed_ips": {"10.1.2.3/8, 192.0.2.1\n2001:db8::/32"}}
	subjects := []struct {
		kind, page, action string
		s                  *uiSession
		ips                bool
		want               string
	}{
		{"credential", "/admin/credentials/" + cred.ID, "/admin/credentials/" + cred.ID + "/plan", dev, true,
			"rate_limit=500/20/60 quota=100/month allowed_ips=[10.0.0.0/8 192.0.2.1/32 2001:db8::/32]"},
		{"api token", "/admin/api-tokens/" + apiTok.ID, "/admin/api-tokens/" + apiTok.ID + "/plan", adm, true,
			"rate_limit=500/20/60 quota=100/month allowed_ips=[10.0.0.0/8 192.0.2.1/32 2001:db8::/32]"},
		{"api access", "/admin/api-access", "/admin/api-access/plan", adm, true,
			"rate_limit=500/20/60 quota=100/month allowed_ips=[10.0.0.0/8 192.0.2.1/32 2001:db8::/32]"},
		{"user", "/admin/users/" + devID, "/admin/users/" + devID + "/plan", adm, false,
			"rate_limit=500/20/60 quota=100/month allowed_ips=[]"},
	}
	bad := []struct {
		name, field, value, message string
		ipsOnly                     bool
	}{
		{"negative quota", "quota.limit", "-1", "Enter a whole number from 1 to 1000000000.", false},
		{"quota over the maximum", "quota.limit", "1000000001", "Enter a whole number from 1 to 1000000000.", false},
		{"huge quota", "quota.limit", "99999999999999999999999999", "Enter a whole number from 1 to 1000000000.", false},
		{"unknown period", "quota.period", "week", "Choose day or month.", false},
		{"negative daily", "rate_limit.daily", "-5", "Enter a whole number from 1 to ", false},
		{"huge burst", "rate_limit.burst", "1e400", "Enter a whole number; leave all three empty for no rate limit of its own.", false},
		{"huge window", "rate_limit.burst_window_seconds", "184467440737095516150", "Enter a whole number from 1 to ", false},
		{"half a rate limit", "rate_limit.burst", "", "Enter a whole number; leave all three empty for no rate limit of its own.", false},
		{"not a number", "quota.limit", "three", "Enter a whole number; leave it empty for no quota.", false},
		{"bad network", "allowed_ips", "10.0.0.0/8\n10.0.0.300", `allowed_ips: "10.0.0.300" is not an IP address or a CIDR prefix`, true},
		{"bad prefix", "allowed_ips", "203.0.113.0/33", `allowed_ips: "203.0.113.0/33" is not an IP address or a CIDR prefix`, true},
	}
	for _, sub := range subjects {
		t.Run(sub.kind, func(t *testing.T) {
			if status, body, _ := sub.s.get(sub.page); status != 200 || !strings.Contains(body, `id="plan"`) {
				t.Fatalf("%s: %d, no Plan section", sub.page, status)
			}
			status, _, loc := sub.s.post(sub.action, cloneForm(good))
			if status != http.StatusSeeOther || loc != sub.page {
				t.Fatalf("saving the plan: %d to %q", status, loc)
			}
			before := planOf(sub.kind)
			if before != sub.want {
				t.Fatalf("after saving the API reads %s, want %s", before, sub.want)
			}
			for _, b := range bad {
				if b.ipsOnly && !sub.ips {
					continue
				}
				t.Run(b.name, func(t *testing.T) {
					f := cloneForm(good)
					f.Set(b.field, b.value)
					sub.s.get(sub.page)
					status, body, _ := sub.s.post(sub.action, f)
					if status != http.StatusBadRequest {
						t.Fatalf("status %d, want 400", status)
					}
					errText := html.UnescapeString(between(body, `<p class="field-error" id="`, `</p>`))
					if !strings.Contains(errText, b.message) || !strings.Contains(body, `aria-invalid="true"`) {
						t.Fatalf("the page says %q next to a field, want %q", errText, b.message)
					}
					// What was typed is shown again, to be corrected.
					if b.value != "" && b.field != "quota.period" && !strings.Contains(html.UnescapeString(body), b.value) {
						t.Fatalf("the page does not show %q again", b.value)
					}
					if after := planOf(sub.kind); after != before {
						t.Fatalf("a refused form changed the plan: %s, then %s", before, after)
					}
				})
			}
			// Clearing leaves nothing.
			if status, _, _ := sub.s.post(sub.action, url.Values{}); status != http.StatusSeeOther {
				t.Fatalf("clearing: %d", status)
			}
			if got := planOf(sub.kind); got != "rate_limit=none quota=none allowed_ips=[]" {
				t.Fatalf("after clearing the API reads %s", got)
			}
		})
	}
	// A developer who is no admin may not set a user's plan.
	dev.get("/admin/credentials")
	if status, _, _ := dev.post("/admin/users/"+devID+"/plan", cloneForm(good)); status != http.StatusForbidden {
		t.Fatalf("a developer set a user's plan: %d", status)
	}
	if got := planOf("user"); got != "rate_limit=none quota=none allowed_ips=[]" {
		t.Fatalf("the API reads %s", got)
	}
}

// fmtPlan writes the rate limit, quota and allow-list of a resource as
// the API answers it.
func fmtPlan(m map[string]any) string {
	rl, q := "none", "none"
	if v, ok := m["rate_limit"].(map[string]any); ok {
		rl = strconv.Itoa(int(v["daily"].(float64))) + "/" + strconv.Itoa(int(v["burst"].(float64))) + "/" +
			strconv.Itoa(int(v["burst_window_seconds"].(float64)))
	}
	if v, ok := m["quota"].(map[string]any); ok {
		q = strconv.Itoa(int(v["limit"].(float64))) + "/" + v["period"].(string)
	}
	var ips []string
	if l, ok := m["allowed_ips"].([]any); ok {
		for _, s := range l {
			ips = append(ips, s.(string))
		}
	}
	return "rate_limit=" + rl + " quota=" + q + " allowed_ips=[" + strings.Join(ips, " ") + "]"
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
