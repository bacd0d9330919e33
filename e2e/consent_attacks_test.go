package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/throttle"
)

// approvedDevice starts a device authorization of the world's public
// app and has the member allow it; it returns the device code.
func approvedDevice(t *testing.T, w *appsWorld) string {
	t.Helper()
	r := startDevice(w.env, w.public.ClientID, "workspaces:read")
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	resp, page := newUserAgent(t, w.env.URL).enterCode(m["user_code"].(string), "allow")
	if resp.StatusCode != 200 || !strings.Contains(page, "is connected") {
		t.Fatalf("approve: %d %s", resp.StatusCode, page)
	}
	return m["device_code"].(string)
}

// TestConsentDevicePollAfterUserDeleted: a device code the member
// approved, then an admin deletes the member before the device polls.
// RFC 8628 §3.5 / SPEC §10.4: the token endpoint answers
// authorization_pending, slow_down, access_denied, expired_token "as the
// RFC says" — a deleted user's approval must be access_denied (as for a
// disabled user or a changed password), not some other error.
func TestConsentDevicePollAfterUserDeleted(t *testing.T) {
	w := newDeviceWorld(t)
	dc := approvedDevice(t, w)
	servertest.Expect(t, w.env.As(w.admin, "DELETE", "/v1/users/"+w.memberID, nil), 204, "")
	r := poll(t, w.env, w.public, dc)
	servertest.Expect(t, r, 400, "access_denied")
}

// TestConsentCodeAfterUserDeleted: a code issued to the member, then
// the member is deleted within the code's minute: the exchange must be
// invalid_grant (RFC 6749 §5.2), never another status.
func TestConsentCodeAfterUserDeleted(t *testing.T) {
	w := newAppsWorld(t)
	conf := oauthConfig(w.env, w.public, "http://127.0.0.1:7000/callback", "workspaces:read")
	v := oauth2.GenerateVerifier()
	code := w.code(t, conf, v, "allow").Get("code")
	servertest.Expect(t, w.env.As(w.admin, "DELETE", "/v1/users/"+w.memberID, nil), 204, "")
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {w.public.ClientID}, "code": {code},
		"redirect_uri": {"http://127.0.0.1:7000/callback"}, "code_verifier": {v}}
	r := w.env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 400, "invalid_grant")
}

// TestConsentDevicePollAfterDisableAndPassword: disabled (then
// re-enabled) and password changed users' approvals give nothing.
func TestConsentDevicePollAfterDisableAndPassword(t *testing.T) {
	w := newDeviceWorld(t)
	dc := approvedDevice(t, w)
	servertest.Expect(t, w.env.As(w.admin, "PATCH", "/v1/users/"+w.memberID, map[string]string{"status": "disabled"}), 200, "")
	servertest.Expect(t, w.env.As(w.admin, "PATCH", "/v1/users/"+w.memberID, map[string]string{"status": "active"}), 200, "")
	servertest.Expect(t, poll(t, w.env, w.public, dc), 400, "access_denied")

	dc = approvedDevice(t, w)
	servertest.Expect(t, w.env.As(w.admin, "PATCH", "/v1/users/"+w.memberID, map[string]string{"password": "another-long-password-1"}), 200, "")
	servertest.Expect(t, poll(t, w.env, w.public, dc), 400, "access_denied")
}

// TestConsentDevicePollOtherClient: a device code approved for the
// public app polled by the confidential app (and vice versa) is
// invalid_grant and is not used up.
func TestConsentDevicePollOtherClient(t *testing.T) {
	w := newDeviceWorld(t)
	dc := approvedDevice(t, w)
	servertest.Expect(t, poll(t, w.env, w.confidential, dc), 400, "invalid_grant")
	other := registerApp(t, w.env, w.devTok, "public", []string{"http://127.0.0.1/other"}, nil)
	servertest.Expect(t, poll(t, w.env, other, dc), 400, "invalid_grant")
	servertest.Expect(t, poll(t, w.env, w.public, dc), 200, "")
}

// TestConsentUnverifiedShowsWhereCodeGoes: a self-registered client
// registers a harmless-looking loopback redirect URI first and a remote
// https one second, and asks for authorisation with the second. mcp.md:
// the consent page "says the client is unverified (it named itself),
// where it returns to"; "Unverified on the consent page, with the
// client's redirect URI shown". The page must name the redirect URI the
// code will be sent to, not another one it registered.
func TestConsentUnverifiedShowsWhereCodeGoes(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.DynamicRegistration = true })
	status, reg := registerClient(t, env.Client, env.URL, map[string]any{"client_name": "Local CLI",
		"redirect_uris": []string{"http://127.0.0.1/cb", "https://collector.attacker.example/cb"}})
	if status != 201 {
		t.Fatalf("register: %d %v", status, reg)
	}
	clientID := reg["client_id"].(string)
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: "https://collector.attacker.example/cb",
		Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/oauth/authorize", TokenURL: env.URL + "/oauth/token"}}
	v := oauth2.GenerateVerifier()
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), servertest.AdminEmail, servertest.AdminPassword, "")
	if cb != nil || resp.StatusCode != 200 || !strings.Contains(body, "Unverified application") {
		t.Fatalf("no consent page: %v %d %s", cb, resp.StatusCode, body)
	}
	i := strings.Index(body, "returning to")
	if i < 0 {
		t.Fatalf("no redirect URI shown: %s", body)
	}
	if shown := body[i:min(len(body), i+80)]; !strings.Contains(shown, "collector.attacker.example") {
		t.Fatalf("the unverified consent page does not name where the code goes (https://collector.attacker.example/cb); it says: %s",
			shown)
	}
}

// consoleSignedIn returns a user agent signed in to the console as email.
func consoleSignedIn(t *testing.T, env *servertest.Env, email, pw string) *userAgent {
	t.Helper()
	ua := newUserAgent(t, env.URL)
	_, page := ua.do("GET", "/admin/login", nil)
	f := formFields(t, page, "/admin/login")
	f.Set("email", email)
	f.Set("password", pw)
	if resp, _ := ua.do("POST", "/admin/login", f); resp.StatusCode != 303 {
		t.Fatalf("sign-in %s: %d", email, resp.StatusCode)
	}
	return ua
}

// TestConsentCSRFAcrossSessions: the consent form and the device
// decision posted with another session's (another user's, or the same
// user's other session's) CSRF token, or from another site, are refused
// and issue nothing; the consent and device pages cannot be framed.
func TestConsentCSRFAcrossSessions(t *testing.T) {
	w := newDeviceWorld(t)
	env := w.env
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:write")
	victim := newUserAgent(t, env.URL)
	_, resp, page := victim.authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), appMember, memberPW, "")
	if resp.StatusCode != 200 {
		t.Fatalf("consent page %d", resp.StatusCode)
	}
	for _, h := range []string{"X-Frame-Options", "Content-Security-Policy"} {
		if v := resp.Header.Get(h); !strings.Contains(v, "DENY") && !strings.Contains(v, "frame-ancestors 'none'") {
			t.Errorf("consent page %s: %q", h, v)
		}
	}
	victimForm := formFields(t, page, "/admin/authorize")
	victimForm.Set("decision", "allow")
	// The attacker's own session (the admin, and the member's second
	// session) and its token.
	for _, who := range []struct{ email, pw string }{{servertest.AdminEmail, servertest.AdminPassword}, {appMember, memberPW}} {
		att := consoleSignedIn(t, env, who.email, who.pw)
		_, _, ap := att.authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), who.email, who.pw, "")
		attForm := formFields(t, ap, "/admin/authorize")
		g := url.Values{}
		for k, v := range victimForm {
			g[k] = v
		}
		g.Set("csrf", attForm.Get("csrf"))
		if resp, _ := victim.do("POST", "/admin/authorize", g); resp.StatusCode != 403 || resp.Header.Get("Location") != "" {
			t.Errorf("token of %s's other session on the victim's: %d %q", who.email, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, site := range []string{"cross-site", "same-site", "none"} {
		sh := victim.formShot("/admin/authorize", victimForm)
		sh.req.Header.Set("Sec-Fetch-Site", site)
		resp, err := victim.c.Do(sh.req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("consent posted with Sec-Fetch-Site %s: %d %q", site, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// The device decision.
	r := startDevice(env, w.public.ClientID, "workspaces:read")
	servertest.Expect(t, r, 200, "")
	uc, dc := r.Map(t)["user_code"].(string), r.Map(t)["device_code"].(string)
	member := consoleSignedIn(t, env, appMember, memberPW)
	resp, page = member.do("GET", "/admin/device?user_code="+url.QueryEscape(uc), nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("device page %d %v", resp.StatusCode, resp.Header)
	}
	admin := consoleSignedIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	_, apage := admin.do("GET", "/admin/device", nil)
	f := formFields(t, page, "/admin/device")
	f.Set("user_code", uc)
	resp, page = member.do("POST", "/admin/device", f)
	if resp.StatusCode != 200 {
		t.Fatalf("code: %d", resp.StatusCode)
	}
	d := formFields(t, page, "/admin/device/decision")
	d.Set("decision", "allow")
	bad := url.Values{}
	for k, v := range d {
		bad[k] = v
	}
	bad.Set("csrf", formFields(t, apage, "/admin/device").Get("csrf"))
	if resp, _ := member.do("POST", "/admin/device/decision", bad); resp.StatusCode != 403 {
		t.Errorf("device decision with the admin's token: %d", resp.StatusCode)
	}
	bad.Del("csrf")
	if resp, _ := member.do("POST", "/admin/device/decision", bad); resp.StatusCode != 403 {
		t.Errorf("device decision without a token: %d", resp.StatusCode)
	}
	sh := member.formShot("/admin/device/decision", d)
	sh.req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := member.c.Do(sh.req); err != nil || resp.StatusCode != 403 {
		t.Errorf("device decision cross-site: %v %v", resp, err)
	}
	servertest.Expect(t, poll(t, env, w.public, dc), 400, "authorization_pending")
}

// TestConsentRedirectVariants: loopback redirects with user
// information, a fragment, another host or a trailing dot are never
// redirected to; a remembered consent for fewer scopes does not cover
// more.
func TestConsentRedirectVariants(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	for _, ru := range []string{
		"http://evil@127.0.0.1:7000/callback", "http://127.0.0.1:7000@evil.example/callback", "http://127.0.0.1:7000/callback#x",
		"http://127.0.0.2:7000/callback", "http://[::1]:7000/callback", "http://127.0.0.1.:7000/callback", "https://127.0.0.1:7000/callback",
		"http://127.0.0.1:7000/Callback", "http://127.0.0.1:7000//callback", "http://127.0.0.1:7000/callback?x", "http://127.0.0.1:/callback",
		"http://127.0.0.1:7000:8000/callback", "http://0x7f.0.0.1:7000/callback", "http://127.1:7000/callback", "HTTP://127.0.0.1:7000/callback",
		"javascript://127.0.0.1/callback", "data:text/html,x", "com.example.app:/oauth/", "com.example.app://oauth",
	} {
		q := url.Values{"response_type": {"code"}, "client_id": {w.public.ClientID}, "redirect_uri": {ru}, "state": {"s"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		resp, body := newUserAgent(t, env.URL).do("GET", "/oauth/authorize?"+q.Encode(), nil)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("redirect_uri %q: %d %q %s", ru, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	// Remembered consent for workspaces:read does not cover users:read.
	small := oauthConfig(env, w.public, "http://127.0.0.1:7000/callback", "workspaces:read")
	w.code(t, small, oauth2.GenerateVerifier(), "allow")
	if q := w.code(t, small, oauth2.GenerateVerifier(), ""); q.Get("code") == "" {
		t.Fatalf("remembered consent: %v", q)
	}
	big := oauthConfig(env, w.public, "http://127.0.0.1:7000/callback", "workspaces:read", "users:read")
	cb, resp, _ := newUserAgent(t, env.URL).authorize(big.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), appMember, memberPW, "")
	if cb != nil || resp.StatusCode != 200 {
		t.Fatalf("more scopes than remembered went without the page: %v %d", cb, resp.StatusCode)
	}
	// Nor does asking for nothing (the application's scopes: any the
	// user holds).
	all := oauthConfig(env, w.public, "http://127.0.0.1:7000/callback")
	cb, resp, _ = newUserAgent(t, env.URL).authorize(all.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), appMember, memberPW, "")
	if cb != nil || resp.StatusCode != 200 {
		t.Fatalf("no scope went without the page: %v %d", cb, resp.StatusCode)
	}
}

// TestConsentCodeGuessingAcrossAddresses: one signed-in user enters 250
// wrong user codes, each from its own client address, all released
// together: the per-user count (throttle.DefaultUserLimit an hour) holds,
// so at most that many are looked up and the rest are 429.
func TestConsentCodeGuessingAcrossAddresses(t *testing.T) {
	w := newDeviceWorld(t)
	env := w.env
	member := consoleSignedIn(t, env, appMember, memberPW)
	_, page := member.do("GET", "/admin/device", nil)
	f := formFields(t, page, "/admin/device")
	const n = 250
	shots := make([]volleyReq, n)
	for i := range shots {
		g := url.Values{"csrf": {f.Get("csrf")}, "user_code": {fmt.Sprintf("BBBB-%c%c%c%c", authorize.UserCodeAlphabet[i%20], authorize.UserCodeAlphabet[(i/20)%20], 'B', 'C')}}
		sh := member.formShot("/admin/device", g)
		sh.from = loopback(i)
		shots[i] = sh
	}
	res := volley(t, shots)
	st := map[int]int{}
	for _, r := range res.resps {
		st[r.Status]++
	}
	t.Logf("statuses %v", st)
	if st[400] > throttle.DefaultUserLimit || st[400]+st[429] != n {
		t.Fatalf("guesses from %d addresses: %v; want at most %d looked up", n, st, throttle.DefaultUserLimit)
	}
}

// TestConsentBadInputNo5xx: malformed answers to the consent and device
// forms (repeated parameters, invalid UTF-8, NUL, huge values, unknown
// decisions) are 4xx, never 5xx, and issue nothing.
func TestConsentBadInputNo5xx(t *testing.T) {
	w := newDeviceWorld(t)
	env := w.env
	member := consoleSignedIn(t, env, appMember, memberPW)
	conf := oauthConfig(env, w.public, "http://127.0.0.1:7000/callback", "workspaces:read")
	_, _, page := member.authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), appMember, memberPW, "")
	base := formFields(t, page, "/admin/authorize")
	csrf := base.Get("csrf")
	mut := func(f func(url.Values)) url.Values {
		g := url.Values{}
		for k, v := range base {
			g[k] = append([]string(nil), v...)
		}
		f(g)
		return g
	}
	cases := map[string]url.Values{
		"repeat client_id":    mut(func(g url.Values) { g.Add("client_id", w.confidential.ClientID) }),
		"repeat redirect_uri": mut(func(g url.Values) { g.Add("redirect_uri", "https://evil.example/") }),
		"repeat scope":        mut(func(g url.Values) { g.Add("scope", "users:write") }),
		"bad utf8 state":      mut(func(g url.Values) { g.Set("state", "\xff\xfe") }),
		"nul state":           mut(func(g url.Values) { g.Set("state", "a\x00b") }),
		"huge state":          mut(func(g url.Values) { g.Set("state", strings.Repeat("s", 1<<20)) }),
		"huge scope":          mut(func(g url.Values) { g.Set("scope", strings.Repeat("a:read ", 20000)) }),
		"bad resource":        mut(func(g url.Values) { g.Set("resource", "https://x.example/#f") }),
		"no client":           mut(func(g url.Values) { g.Del("client_id") }),
		"bad challenge":       mut(func(g url.Values) { g.Set("code_challenge", strings.Repeat("~", 43)) }),
		"decision weird":      mut(func(g url.Values) { g.Set("decision", "\xff") }),
	}
	for name, f := range cases {
		f.Set("decision", f.Get("decision"))
		if f.Get("decision") == "" {
			f.Set("decision", "allow")
		}
		resp, body := member.do("POST", "/admin/authorize", f)
		loc := resp.Header.Get("Location")
		if resp.StatusCode >= 500 || (strings.Contains(loc, "code=") && name != "huge state" && name != "decision weird") {
			t.Errorf("%s: %d %q %.200s", name, resp.StatusCode, loc, body)
		}
	}
	for _, uc := range []string{"\xff\xfe", "a\x00b", strings.Repeat("B", 100000), "ＢＣＤＦ-ＧＨＪＫ", "ſſſſ-ſſſſ", "%00"} {
		for _, p := range []string{"/admin/device", "/admin/device/decision"} {
			resp, body := member.do("POST", p, url.Values{"csrf": {csrf}, "user_code": {uc}, "decision": {"allow"}})
			if resp.StatusCode >= 500 || resp.StatusCode == 200 {
				t.Errorf("%s %q: %d %.200s", p, uc, resp.StatusCode, body)
			}
		}
		resp, _ := member.do("GET", "/device?user_code="+url.QueryEscape(uc), nil)
		if resp.StatusCode >= 500 {
			t.Errorf("GET /device %q: %d", uc, resp.StatusCode)
		}
	}
	// The token endpoint with odd device codes.
	for _, dc := range []string{"gdc_", "gdc_" + strings.Repeat("A", 5000), "\xff", "gac_x"} {
		r := poll(t, env, w.public, dc)
		if r.Status >= 500 {
			t.Errorf("poll %q: %d %s", dc, r.Status, r.Body)
		}
	}
}

// TestConsentPollVolley: ten polls of a pending device code released
// together: one is authorization_pending, the rest slow_down (none
// slips past the interval); after approval, ten polls together give
// tokens once.
func TestConsentPollVolley(t *testing.T) {
	w := newDeviceWorld(t)
	env := w.env
	r := startDevice(env, w.public.ClientID, "workspaces:read")
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	form := url.Values{"grant_type": {authorize.DeviceGrantType}, "client_id": {w.public.ClientID}, "device_code": {m["device_code"].(string)}}
	shots := func() []volleyReq {
		s := make([]volleyReq, 10)
		for i := range s {
			s[i] = volleyReq{req: formRequest(t, env.URL+"/oauth/token", form)}
		}
		return s
	}
	count := func(res volleyResult) map[string]int {
		c := map[string]int{}
		for _, p := range res.resps {
			if p.Status == 200 {
				c["tokens"]++
				continue
			}
			e, _ := p.Map(t)["error"].(string)
			c[fmt.Sprint(p.Status, " ", e)]++
		}
		return c
	}
	c := count(volley(t, shots()))
	if c["400 authorization_pending"] != 1 || c["400 slow_down"] != 9 {
		t.Errorf("pending volley: %v", c)
	}
	if resp, page := newUserAgent(t, env.URL).enterCode(m["user_code"].(string), "allow"); resp.StatusCode != 200 {
		t.Fatalf("allow %d %s", resp.StatusCode, page)
	}
	c = count(volley(t, shots()))
	if c["tokens"] != 1 || c["400 invalid_grant"] != 9 {
		t.Errorf("approved volley: %v", c)
	}
}
