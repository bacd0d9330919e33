package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/throttle"
)

// newDeviceWorld is newAppsWorld on a server configured by configure.
func newDeviceWorld(t *testing.T, configure ...func(*server.Config)) *appsWorld {
	t.Helper()
	env := servertest.Start(t, configure...)
	w := &appsWorld{env: env}
	w.admin, _, w.devTok, _ = developer(t, env)
	w.memberID = env.CreateUser(w.admin, appMember, memberPW)
	w.confidential = registerApp(t, env, w.devTok, "confidential", []string{appRedirect}, []string{"workspaces:read", "workspaces:write", "users:read", "users:write"})
	w.public = registerApp(t, env, w.devTok, "public", []string{"http://127.0.0.1/callback"}, nil)
	w.issuer = issuerOf(t, env)["issuer"].(string)
	return w
}

// deviceConfig is x/oauth2's configuration of app for the device grant.
func deviceConfig(env *servertest.Env, app thirdPartyApp, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, Scopes: scopes,
		Endpoint: oauth2.Endpoint{DeviceAuthURL: env.URL + "/oauth/device_authorization", TokenURL: env.URL + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams}}
}

// pollRecorder is an HTTP transport that records the error code (or
// "tokens") of every answer of the token endpoint, so that a test sees
// what x/oauth2's polling loop was told.
type pollRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (p *pollRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/oauth/token") {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	var m map[string]any
	json.Unmarshal(b, &m)
	what := "tokens"
	if e, ok := m["error"].(string); ok {
		what = e
	}
	p.mu.Lock()
	p.seen = append(p.seen, what)
	p.mu.Unlock()
	return resp, nil
}

func (p *pollRecorder) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// poll sends one poll of the token endpoint by hand.
func poll(t *testing.T, env *servertest.Env, app thirdPartyApp, deviceCode string) *servertest.Response {
	t.Helper()
	form := url.Values{"grant_type": {authorize.DeviceGrantType}, "client_id": {app.ClientID}, "device_code": {deviceCode}}
	if app.ClientSecret != "" {
		form.Set("client_secret", app.ClientSecret)
	}
	return env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

var userCodeRe = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// checkDeviceAuth checks the answer of the device authorization endpoint.
func checkDeviceAuth(t *testing.T, w *appsWorld, da *oauth2.DeviceAuthResponse, lifetime time.Duration) {
	t.Helper()
	if !userCodeRe.MatchString(da.UserCode) || !strings.HasPrefix(da.DeviceCode, "gdc_") || da.VerificationURI != w.issuer+"/device" ||
		da.VerificationURIComplete != w.issuer+"/device?user_code="+da.UserCode || da.Interval != 5 ||
		time.Until(da.Expiry) > lifetime || time.Until(da.Expiry) < lifetime-30*time.Second {
		t.Fatalf("device authorization %+v", da)
	}
}

// enterCode signs in as the member (if needed) on a plain user agent,
// enters userCode on the device page and answers decision; it returns
// the last page.
func (a *userAgent) enterCode(userCode, decision string) (*http.Response, string) {
	a.t.Helper()
	resp, body := a.do("GET", "/device?user_code="+url.QueryEscape(userCode), nil)
	for range 10 {
		switch {
		case resp.StatusCode == http.StatusSeeOther:
			resp, body = a.do("GET", resp.Header.Get("Location"), nil)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/login"`):
			f := formFields(a.t, body, "/admin/login")
			f.Set("email", appMember)
			f.Set("password", memberPW)
			resp, body = a.do("POST", "/admin/login", f)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/device/decision"`):
			f := formFields(a.t, body, "/admin/device/decision")
			f.Set("decision", decision)
			return a.do("POST", "/admin/device/decision", f)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/device"`):
			f := formFields(a.t, body, "/admin/device")
			f.Set("user_code", userCode)
			resp, body = a.do("POST", "/admin/device", f)
		default:
			return resp, body
		}
	}
	a.t.Fatal("too many steps")
	return nil, ""
}

// TestDeviceFlow: golang.org/x/oauth2's DeviceAuth and
// DeviceAccessToken against Gatehouse, with headless Chromium signing in
// on /device, entering the code and allowing: the device is told
// authorization_pending, then slow_down when it polls too fast (and the
// client's own loop is slowed down too), then gets tokens that act as the
// user with the scopes granted, that refresh, and that stop when the user
// revokes the authorisation. Two polls released together after approval:
// exactly one gets tokens. A denial is access_denied. The metadata
// advertises the endpoint and the grant. The pages fit 390 and 1280 px.
func TestDeviceFlow(t *testing.T) {
	ctx := browser(t)
	w := newDeviceWorld(t)
	env := w.env
	md := issuerOf(t, env)
	if md["device_authorization_endpoint"] != w.issuer+"/oauth/device_authorization" ||
		!strings.Contains(strings.Join(toStrings(md["grant_types_supported"]), " "), authorize.DeviceGrantType) {
		t.Fatalf("metadata %v", md)
	}

	rec := &pollRecorder{}
	cctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rec, Timeout: 30 * time.Second})
	conf := deviceConfig(env, w.public, "workspaces:read", "users:read", "users:write")
	da, err := conf.DeviceAuth(cctx)
	if err != nil {
		t.Fatal(err)
	}
	checkDeviceAuth(t, w, da, 600*time.Second)

	// Before anyone answers: pending, and a poll right after it is
	// slow_down, with the interval now 10 s for this device code.
	servertest.Expect(t, poll(t, env, w.public, da.DeviceCode), 400, "authorization_pending")
	servertest.Expect(t, poll(t, env, w.public, da.DeviceCode), 400, "slow_down")
	// Another client's id, or garbage: invalid_grant, and no tokens.
	servertest.Expect(t, poll(t, env, w.confidential, da.DeviceCode), 400, "invalid_grant")
	servertest.Expect(t, poll(t, env, w.public, "gdc_nonsense"), 400, "invalid_grant")

	// The client polls every 5 s, as it was told at first: its first poll
	// comes 5 s after the slow_down, inside the 10 s now required, so it
	// is slowed down too, and waits 10 s from then on.
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := conf.DeviceAccessToken(cctx, da)
		done <- result{tok, err}
	}()

	// Chromium: /device with the code, sign-in, the code filled in,
	// consent in words, Allow.
	run(t, ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(da.VerificationURIComplete),
		chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", appMember, chromedp.ByID),
		chromedp.SendKeys("#password", memberPW, chromedp.ByID),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#user_code", chromedp.ByID),
	)
	var filled string
	run(t, ctx, chromedp.Value("#user_code", &filled, chromedp.ByID))
	if filled != da.UserCode {
		t.Fatalf("the code field holds %q, want %q", filled, da.UserCode)
	}
	bothWidths(t, ctx, "device code page")
	run(t, ctx, chromedp.EmulateViewport(390, 900))
	shot(t, ctx, "device-code-390")
	run(t, ctx, chromedp.EmulateViewport(1280, 900))
	shot(t, ctx, "device-code-1280")

	run(t, ctx, submit("Continue"), chromedp.WaitVisible(`form[action$="/admin/device/decision"]`, chromedp.ByQuery))
	text := textOf(t, ctx, "section.device")
	for _, want := range []string{"Reporting public", "default", da.UserCode, appMember, "See the workspaces you can see", "See the users of your account", "users:read"} {
		if !strings.Contains(text, want) {
			t.Fatalf("device consent lacks %q:\n%s", want, text)
		}
	}
	bothWidths(t, ctx, "device consent page")
	run(t, ctx, chromedp.EmulateViewport(390, 900))
	shot(t, ctx, "device-consent-390")
	run(t, ctx, chromedp.EmulateViewport(1280, 900))
	shot(t, ctx, "device-consent-1280")

	// Allow once the client has been slowed down (an approved code gets
	// its tokens at the next poll, however soon).
	for deadline := time.Now().Add(30 * time.Second); !slices.Contains(rec.list(), "slow_down"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the client was never slowed down: %v", rec.list())
		}
	}
	run(t, ctx, submit("Allow"), chromedp.WaitVisible("p.done", chromedp.ByQuery))
	if s := textOf(t, ctx, "p.done"); !strings.Contains(s, "Reporting public is connected") {
		t.Fatalf("done page: %s", s)
	}
	bothWidths(t, ctx, "device done page")
	run(t, ctx, chromedp.EmulateViewport(390, 900))
	shot(t, ctx, "device-done-390")
	run(t, ctx, chromedp.EmulateViewport(1280, 900))
	shot(t, ctx, "device-done-1280")

	var res result
	select {
	case res = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("no tokens; the client was told %v", rec.list())
	}
	if res.err != nil {
		t.Fatalf("DeviceAccessToken: %v (told %v)", res.err, rec.list())
	}
	seen := rec.list()
	// The client's polls: slow_down first, tokens last.
	client := seen
	if len(client) < 2 || client[0] != "slow_down" || client[len(client)-1] != "tokens" {
		t.Fatalf("the client was told %v, want slow_down first and tokens last", seen)
	}
	for _, s := range client[1 : len(client)-1] {
		if s != "authorization_pending" {
			t.Fatalf("the client was told %v", seen)
		}
	}
	tok := res.tok
	if tok.RefreshToken == "" || tok.Extra("scope") == nil {
		t.Fatalf("token %+v", tok)
	}
	granted := tok.Extra("scope").(string)
	// The member holds users:read but not users:write: granted only what
	// both the request and the user's permissions allow.
	if strings.Contains(granted, "users:write") || !strings.Contains(granted, "workspaces:read") {
		t.Fatalf("granted %q", granted)
	}
	me := env.As(tok.AccessToken, "GET", "/v1/me", nil)
	servertest.Expect(t, me, 200, "")
	if m, _ := me.Map(t)["user"].(map[string]any); m["email"] != appMember {
		t.Fatalf("/v1/me: %s", me.Body)
	}
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/users", nil), 200, "")
	// The device code is used: polling again is invalid_grant.
	servertest.Expect(t, poll(t, env, w.public, da.DeviceCode), 400, "invalid_grant")
	// The user code is used too.
	agent := newUserAgent(t, env.URL)
	if resp, body := agent.enterCode(da.UserCode, "allow"); resp.StatusCode != 400 || !strings.Contains(body, "not valid") {
		t.Fatalf("a used user code: %d %s", resp.StatusCode, body)
	}

	// Refresh rotates, as for the authorization code grant.
	rf := env.Request("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {w.public.ClientID},
		"refresh_token": {tok.RefreshToken}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, rf, 200, "")
	var rotated struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	rf.JSON(t, &rotated)
	if rotated.RefreshToken == "" || rotated.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %s", rf.Body)
	}
	servertest.Expect(t, env.As(rotated.AccessToken, "GET", "/v1/me", nil), 200, "")

	// Two polls released together after approval: exactly one gets tokens.
	da2, err := conf.DeviceAuth(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := agent.enterCode(da2.UserCode, "allow"); resp.StatusCode != 200 || !strings.Contains(body, "is connected") {
		t.Fatalf("allow: %d %s", resp.StatusCode, body)
	}
	form := url.Values{"grant_type": {authorize.DeviceGrantType}, "client_id": {w.public.ClientID}, "device_code": {da2.DeviceCode}}
	shots := make([]volleyReq, 8)
	for i := range shots {
		shots[i] = volleyReq{req: formRequest(t, env.URL+"/oauth/token", form)}
	}
	won := 0
	for _, r := range volley(t, shots).resps {
		switch {
		case r.Status == 200:
			won++
		case r.Status == 400 && strings.Contains(string(r.Body), `"invalid_grant"`):
		default:
			t.Fatalf("a concurrent poll: %d %s", r.Status, r.Body)
		}
	}
	if won != 1 {
		t.Fatalf("%d of 8 concurrent polls got tokens, want exactly 1", won)
	}

	// Revoking the authorisation ends the device's tokens.
	memberTok := env.Login(appMember, memberPW)
	servertest.Expect(t, env.As(memberTok, "DELETE", "/v1/me/authorizations/"+w.public.ClientID, nil), 204, "")
	servertest.Expect(t, env.As(rotated.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")

	// Denial: the client is told access_denied.
	da3, err := conf.DeviceAuth(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := agent.enterCode(da3.UserCode, "deny"); resp.StatusCode != 200 || !strings.Contains(body, "Nothing was shared") {
		t.Fatalf("deny: %d %s", resp.StatusCode, body)
	}
	_, err = conf.DeviceAccessToken(cctx, da3)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "access_denied" {
		t.Fatalf("after a denial: %v", err)
	}
}

// TestDeviceFlowExpiry: with a device code lifetime of 2 s, a client
// still polling afterwards is told expired_token, and the user code is
// no longer accepted on the device page.
func TestDeviceFlowExpiry(t *testing.T) {
	w := newDeviceWorld(t, func(c *server.Config) { c.DeviceCodeLifetime = 2 * time.Second })
	env := w.env
	conf := deviceConfig(env, w.confidential, "workspaces:read")
	// x/oauth2 sends only client_id to the device authorization endpoint;
	// a confidential application authenticates there too (RFC 8628 §3.1).
	da, err := conf.DeviceAuth(context.Background(), oauth2.SetAuthURLParam("client_secret", w.confidential.ClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	checkDeviceAuth(t, w, da, 2*time.Second)
	// x/oauth2 stops by itself at the expiry; a client that does not is
	// told by the server.
	keep := *da
	keep.Expiry = time.Time{}
	_, err = conf.DeviceAccessToken(context.Background(), &keep)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "expired_token" {
		t.Fatalf("after the lifetime: %v", err)
	}
	if resp, body := newUserAgent(t, env.URL).enterCode(da.UserCode, "allow"); resp.StatusCode != 400 || !strings.Contains(body, "not valid") {
		t.Fatalf("an expired user code: %d %s", resp.StatusCode, body)
	}
	// Bad input to the device authorization endpoint: 4xx, never 5xx.
	for _, tc := range []struct {
		form   url.Values
		status int
		code   string
	}{
		{url.Values{}, 401, "invalid_client"},
		{url.Values{"client_id": {"gci_unknown"}}, 401, "invalid_client"},
		{url.Values{"client_id": {w.public.ClientID}, "scope": {"not a scope!"}}, 400, "invalid_scope"},
		{url.Values{"client_id": {w.confidential.ClientID}}, 401, "invalid_client"},
		{url.Values{"client_id": {w.confidential.ClientID}, "client_secret": {w.confidential.ClientSecret}, "scope": {"accounts:write"}}, 400, "invalid_scope"},
	} {
		r := env.Request("POST", "/oauth/device_authorization", tc.form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		servertest.Expect(t, r, tc.status, tc.code)
	}
}

// recordingJar keeps the last value of every cookie a server set, to
// send them by hand.
type recordingJar struct {
	http.CookieJar
	set map[string]string
}

func (j *recordingJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.set, c.Name)
		} else {
			j.set[c.Name] = c.Value
		}
	}
	j.CookieJar.SetCookies(u, cs)
}

// TestDeviceCodeGuessing: 10,000 guessed user codes from one address, sent
// concurrently over 50 connections opened in advance (200 each, back to
// back, all starting together), by a signed-in user: none is accepted,
// at most the throttle's per-user-and-address allowance is even looked
// up, and every other is refused by the throttle with 429 and
// Retry-After. The right code is then refused too, until the window
// passes.
func TestDeviceCodeGuessing(t *testing.T) {
	w := newDeviceWorld(t)
	env := w.env
	da, err := deviceConfig(env, w.public, "workspaces:read").DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	agent := newUserAgent(t, env.URL)
	jar := &recordingJar{CookieJar: agent.c.Jar, set: map[string]string{}}
	agent.c.Jar = jar
	resp, body := agent.enterCode("", "")
	if resp.StatusCode != 400 || !strings.Contains(body, `action="/admin/device"`) {
		t.Fatalf("entry page: %d %s", resp.StatusCode, body)
	}
	f := formFields(t, body, "/admin/device")
	base, _ := url.Parse(env.URL)
	var cookie string
	for name, value := range jar.set {
		cookie += name + "=" + value + "; "
	}

	const conns, each = 50, 200
	guess := func() string {
		var b [8]byte
		rand.Read(b[:])
		s := make([]byte, 0, 9)
		for i, c := range b {
			if i == 4 {
				s = append(s, '-')
			}
			s = append(s, authorize.UserCodeAlphabet[int(c)%len(authorize.UserCodeAlphabet)])
		}
		if string(s) == da.UserCode {
			return "BBBB-BBBB"
		}
		return string(s)
	}
	request := func() []byte {
		form := url.Values{"csrf": {f.Get("csrf")}, "user_code": {guess()}}.Encode()
		return fmt.Appendf(nil, "POST /admin/device HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
			base.Host, cookie, len(form), form)
	}
	open := make([]net.Conn, conns)
	for i := range open {
		c, err := net.DialTimeout("tcp", base.Host, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		open[i] = c
	}
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		noRetry  int
		sample   []string
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errs     = make(chan error, conns)
	)
	for _, c := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := bufio.NewReader(c)
			<-start
			for range each {
				c.SetDeadline(time.Now().Add(60 * time.Second))
				if _, err := c.Write(request()); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(rd, nil)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode >= 500 && len(sample) < 3 {
					sample = append(sample, fmt.Sprintf("%d %s", resp.StatusCode, b))
				}
				statuses[resp.StatusCode]++
				if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
					noRetry++
				}
				mu.Unlock()
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a connection failed: %v", err)
	}
	t.Logf("%d guesses in %v: %v %q", conns*each, time.Since(began), statuses, sample)
	// On a loaded machine (the race detector, other work) a few requests
	// may wait longer than the store timeout for their session and be
	// answered 503 temporarily_unavailable: refused, never accepted. The
	// throttle must still be what answers nearly all of them.
	unavailable := statuses[503]
	if statuses[200] != 0 || statuses[400] > throttle.DefaultUserAddrLimit || statuses[400]+statuses[429]+unavailable != conns*each ||
		statuses[429] < conns*each*95/100 || noRetry != 0 {
		t.Fatalf("10,000 guesses: %v (%d 429 without Retry-After); want none accepted, at most %d looked up, the rest refused by the throttle (429)",
			statuses, noRetry, throttle.DefaultUserAddrLimit)
	}
	for _, s := range sample {
		if !strings.HasPrefix(s, "503 ") || !strings.Contains(s, "unavailable") {
			t.Fatalf("a guess answered %s", s)
		}
	}
	// The right code is refused by the throttle now too.
	f.Set("user_code", da.UserCode)
	if resp, _ := agent.do("POST", "/admin/device", f); resp.StatusCode != 429 {
		t.Fatalf("the right code after the guesses: %d, want 429", resp.StatusCode)
	}
}

// TestDeviceCodeRightCodeClearsNothing: a signed-in user who types their
// own right code between guesses clears none of the guesses' count: over
// 40 rounds of three guesses and the right code, at most the throttle's
// allowance of wrong codes is looked up (400); the rest are refused (429).
func TestDeviceCodeRightCodeClearsNothing(t *testing.T) {
	w := newDeviceWorld(t)
	da, err := deviceConfig(w.env, w.public, "workspaces:read").DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	agent := newUserAgent(t, w.env.URL)
	resp, body := agent.enterCode("", "")
	if resp.StatusCode != 400 {
		t.Fatalf("entry page: %d %s", resp.StatusCode, body)
	}
	f := formFields(t, body, "/admin/device")
	wrong := []string{"BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD"}
	statuses := map[int]int{}
	rightAccepted := 0
	for range 40 {
		for _, g := range wrong {
			f.Set("user_code", g)
			resp, _ := agent.do("POST", "/admin/device", f)
			statuses[resp.StatusCode]++
		}
		f.Set("user_code", da.UserCode)
		if resp, _ := agent.do("POST", "/admin/device", f); resp.StatusCode == 200 {
			rightAccepted++
		}
	}
	if statuses[400] > throttle.DefaultUserAddrLimit || statuses[400]+statuses[429] != 3*40 {
		t.Fatalf("guesses between right codes: %v; want at most %d looked up (400), the rest 429", statuses, throttle.DefaultUserAddrLimit)
	}
	if rightAccepted == 0 {
		t.Fatal("the right code was never accepted")
	}
}

// TestDeviceResourceBinding: resource (RFC 8707) on the device
// authorization request binds the tokens the poll gets, as on the
// authorize request: such a token is refused by Gatehouse's own API and
// taken by forward auth; a poll asking another resource is invalid_target
// and uses nothing; a malformed resource is invalid_target at once; a
// device that asked for none is bound by its poll's.
func TestDeviceResourceBinding(t *testing.T) {
	const resourceA, resourceB = "https://api-a.example.com/mcp", "https://api-b.example.com/mcp"
	w := newDeviceWorld(t)
	env := w.env
	start := func(resource string) *oauth2.DeviceAuthResponse {
		t.Helper()
		var opts []oauth2.AuthCodeOption
		if resource != "" {
			opts = append(opts, oauth2.SetAuthURLParam("resource", resource))
		}
		da, err := deviceConfig(env, w.public, "workspaces:read").DeviceAuth(context.Background(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if resp, body := newUserAgent(t, env.URL).enterCode(da.UserCode, "allow"); resp.StatusCode != 200 {
			t.Fatalf("allow: %d %s", resp.StatusCode, body)
		}
		return da
	}
	pollFor := func(da *oauth2.DeviceAuthResponse, resource string) *servertest.Response {
		t.Helper()
		form := url.Values{"grant_type": {authorize.DeviceGrantType}, "client_id": {w.public.ClientID}, "device_code": {da.DeviceCode}}
		if resource != "" {
			form.Set("resource", resource)
		}
		return env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}

	// Asked for A, polled for B: invalid_target, and the code still works.
	da := start(resourceA)
	servertest.Expect(t, pollFor(da, resourceB), 400, "invalid_target")
	r := pollFor(da, "")
	servertest.Expect(t, r, 200, "")
	forA := r.Map(t)["access_token"].(string)
	servertest.Expect(t, env.As(forA, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(forA, "GET", "/v1/auth/check", nil), 200, "")
	// Its refresh keeps the binding.
	refreshed := env.Request("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {w.public.ClientID},
		"refresh_token": {r.Map(t)["refresh_token"].(string)}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, refreshed, 200, "")
	servertest.Expect(t, env.As(refreshed.Map(t)["access_token"].(string), "GET", "/v1/workspaces", nil), 401, "invalid_token")

	// Asked for none, polled for B: bound to B.
	da = start("")
	r = pollFor(da, resourceB)
	servertest.Expect(t, r, 200, "")
	servertest.Expect(t, env.As(r.Map(t)["access_token"].(string), "GET", "/v1/workspaces", nil), 401, "invalid_token")

	// Neither: unbound, as before resource indicators.
	da = start("")
	r = pollFor(da, "")
	servertest.Expect(t, r, 200, "")
	servertest.Expect(t, env.As(r.Map(t)["access_token"].(string), "GET", "/v1/workspaces", nil), 200, "")

	// A malformed resource: invalid_target before any code is made.
	bad := env.Request("POST", "/oauth/device_authorization", url.Values{"client_id": {w.public.ClientID}, "resource": {"not a uri"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, bad, 400, "invalid_target")
}

// TestDevicePolicyAtPoll: a device the user allowed gets nothing once the
// user's account no longer allows third-party applications: its poll is
// access_denied, not tokens refused at their first use.
func TestDevicePolicyAtPoll(t *testing.T) {
	w := newDeviceWorld(t)
	da, err := deviceConfig(w.env, w.public, "workspaces:read").DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := newUserAgent(t, w.env.URL).enterCode(da.UserCode, "allow"); resp.StatusCode != 200 {
		t.Fatalf("allow: %d %s", resp.StatusCode, body)
	}
	servertest.Expect(t, w.env.As(w.admin, "PUT", "/v1/settings", map[string]string{"third_party_apps": "none"}), 200, "")
	servertest.Expect(t, poll(t, w.env, w.public, da.DeviceCode), 400, "access_denied")
	servertest.Expect(t, poll(t, w.env, w.public, da.DeviceCode), 400, "invalid_grant")
}

// startDevice asks the device authorization endpoint for a device code of
// the public client clientID and scope.
func startDevice(env *servertest.Env, clientID, scope string) *servertest.Response {
	form := url.Values{"client_id": {clientID}, "scope": {scope}}
	return env.Request("POST", "/oauth/device_authorization", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// TestDeviceApprovalEndsWithAuthorization: a device code the user
// approved, then the user revokes the application's authorisation
// (DELETE /v1/me/authorizations/{client_id}: "every token of that grant
// ends", its unused codes too). The approval must end with it: when the
// user later authorises the same application again (from a browser), the
// device that was approved before the revocation — e.g. an attacker's,
// approved by a phished user who then noticed and revoked — must not get
// tokens.
func TestDeviceApprovalEndsWithAuthorization(t *testing.T) {
	w := newDeviceWorld(t)
	env := w.env
	r := startDevice(env, w.public.ClientID, "workspaces:read")
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	userCode, deviceCode := m["user_code"].(string), m["device_code"].(string)

	resp, page := newUserAgent(t, env.URL).enterCode(userCode, "allow")
	if resp.StatusCode != 200 || !strings.Contains(page, "is connected") {
		t.Fatalf("approve: %d %s", resp.StatusCode, page)
	}
	// The user notices and revokes the authorisation before the device
	// polled.
	memberTok := env.Login(appMember, memberPW)
	servertest.Expect(t, env.As(memberTok, "DELETE", "/v1/me/authorizations/"+w.public.ClientID, nil), 204, "")
	servertest.Expect(t, poll(t, env, w.public, deviceCode), 400, "access_denied")

	// Later the user authorises the same application again, themselves.
	pconf := oauthConfig(env, w.public, "http://127.0.0.1:7000/callback", "workspaces:read")
	v := oauth2.GenerateVerifier()
	if _, err := pconf.Exchange(context.Background(), w.code(t, pconf, v, "allow").Get("code"), oauth2.VerifierOption(v)); err != nil {
		t.Fatal(err)
	}
	// The device approved under the revoked authorisation gets nothing.
	servertest.Expect(t, poll(t, env, w.public, deviceCode), 400, "access_denied")
}

// TestDevicePollVsRevokeReleasedTogether: an approved device's polls and the
// revocation of the user's authorisation, released together: once both
// answered, nothing the device got works, and the two took their locks in
// one order (the device's row, then the authorization): no conflict was
// run again and PostgreSQL counted no deadlock.
func TestDevicePollVsRevokeReleasedTogether(t *testing.T) {
	w := newDeviceWorld(t)
	env := w.env
	memberTok := env.Login(appMember, memberPW)
	conflicts0, deadlocks := servertest.Conflicts(), pgDeadlocksSince(t, env)
	for round := range 5 {
		r := startDevice(env, w.public.ClientID, "workspaces:read")
		servertest.Expect(t, r, 200, "")
		m := r.Map(t)
		if resp, page := newUserAgent(t, env.URL).enterCode(m["user_code"].(string), "allow"); resp.StatusCode != 200 || !strings.Contains(page, "is connected") {
			t.Fatalf("approve: %d %s", resp.StatusCode, page)
		}
		form := url.Values{"grant_type": {authorize.DeviceGrantType}, "client_id": {w.public.ClientID},
			"device_code": {m["device_code"].(string)}}
		del, _ := http.NewRequest("DELETE", env.URL+"/v1/me/authorizations/"+w.public.ClientID, nil)
		del.Header.Set("Authorization", "Bearer "+memberTok)
		shots := []volleyReq{{req: del}}
		for range 4 {
			shots = append(shots, volleyReq{req: formRequest(t, env.URL+"/oauth/token", form)})
		}
		res := volley(t, shots)
		if res.resps[0].Status != 204 {
			t.Fatalf("round %d: revoke %d", round, res.resps[0].Status)
		}
		won := 0
		for _, p := range res.resps[1:] {
			if p.Status == 200 {
				won++
				at := p.Map(t)["access_token"].(string)
				if r := env.As(at, "GET", "/v1/workspaces", nil); r.Status != 401 {
					t.Fatalf("round %d: a device token obtained during the revocation works: %d", round, r.Status)
				}
			}
		}
		if won > 1 {
			t.Fatalf("round %d: %d polls got tokens", round, won)
		}
	}
	if n := servertest.Conflicts() - conflicts0; n != 0 {
		t.Errorf("%d write transactions deadlocked and were run again", n)
	}
	if n := deadlocks(); n != 0 {
		t.Errorf("PostgreSQL counted %d deadlocks", n)
	}
}
