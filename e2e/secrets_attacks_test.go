package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/oidcprovider"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// secretsFixture collects every secret a run made, by kind.
type secretsFixture struct {
	t       *testing.T
	env     *servertest.Env
	logs    *servertest.SyncBuffer
	secrets map[string]string // what -> raw secret
	// noStore lists answers carrying a secret that lack Cache-Control: no-store.
	noStore []string
}

func (f *secretsFixture) add(what, s string) {
	f.t.Helper()
	if s == "" {
		f.t.Fatalf("%s: empty secret", what)
	}
	f.secrets[what] = s
}

// secretsCarry records a creation answer that carries a secret and
// checks its caching headers.
func (f *secretsFixture) carry(what string, r *servertest.Response) {
	f.t.Helper()
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		f.noStore = append(f.noStore, what+" (Cache-Control "+cc+")")
	}
}

func secretsStart(t *testing.T, configure ...func(*server.Config)) *secretsFixture {
	logs := &servertest.SyncBuffer{}
	opts := append([]func(*server.Config){func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.WebhookAllowInsecure = true
		c.DynamicRegistration = true
	}}, configure...)
	env := servertest.Start(t, opts...)
	return &secretsFixture{t: t, env: env, logs: logs, secrets: map[string]string{}}
}

// secretsLeaks returns, for each secret found in data, its name.
func secretsLeaks(secrets map[string]string, data []byte) []string {
	var out []string
	s := string(data)
	for what, sec := range secrets {
		probe := sec
		if len(sec) >= 24 {
			// the part after any public prefix
			probe = sec[len(sec)/2:]
		}
		if strings.Contains(s, sec) || strings.Contains(s, probe) || strings.Contains(s, url.QueryEscape(sec)) {
			out = append(out, what)
		}
	}
	return out
}

// TestSecretsEveryKindNowhereElse makes a secret of every kind, uses
// each, and then looks for the raw strings in the store, the logs (at
// debug), the audit log and its export, webhook payloads, usage (JSON and
// CSV), metrics and every later read of the objects.
func TestSecretsEveryKindNowhereElse(t *testing.T) {
	f := secretsStart(t)
	env := f.env
	ctx := context.Background()
	rc := newReceiver(t, nil)

	admin := env.AdminToken()
	f.add("admin password-grant token", admin)
	f.add("bootstrap admin password", servertest.AdminPassword)
	f.add("member password", memberPW)

	// Webhook endpoint: signing secret, and its roll.
	r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL + "/hook", "events": []string{"*"}})
	servertest.Expect(t, r, 201, "")
	wh := r.Map(t)
	f.add("webhook secret", wh["secret"].(string))
	f.carry("POST /v1/webhooks", r)
	whID := wh["id"].(string)
	r = env.As(admin, "POST", "/v1/webhooks/"+whID+"/roll-secret", map[string]any{"overlap_seconds": 60})
	servertest.Expect(t, r, 200, "")
	f.add("webhook rolled secret", r.Map(t)["secret"].(string))
	f.carry("POST /v1/webhooks/{id}/roll-secret", r)

	// API access application and a refresh.
	r = env.As(admin, "POST", "/v1/api-access", map[string]any{"access_token_ttl_days": 1})
	servertest.Expect(t, r, 201, "")
	f.carry("POST /v1/api-access", r)
	aa := r.Map(t)
	f.add("api access token", aa["access_token"].(string))
	f.add("api access refresh token", aa["refresh_token"].(string))
	r = refresh(env, aa["client_id"].(string), aa["refresh_token"].(string))
	servertest.Expect(t, r, 200, "")
	f.carry("refresh grant", r)
	rr := r.Map(t)
	f.add("refreshed access token", rr["access_token"].(string))
	f.add("refreshed refresh token", rr["refresh_token"].(string))
	servertest.Expect(t, env.As(rr["access_token"].(string), "GET", "/v1/me", nil), 200, "")

	// API tokens, used, rolled.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "zz"})
	servertest.Expect(t, r, 201, "")
	f.carry("POST /v1/api-tokens", r)
	at := r.Map(t)
	f.add("api token", at["token"].(string))
	if len(secretsLeaks(map[string]string{"x": at["token"].(string)}, r.Body)) != 1 {
		t.Fatal("the leak finder does not find a token where it is")
	}
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", at["token"].(string)), 200, "")
	r = env.As(admin, "POST", "/v1/api-tokens/"+at["id"].(string)+"/roll", map[string]any{"overlap_seconds": 60})
	servertest.Expect(t, r, 201, "")
	f.carry("POST /v1/api-tokens/{id}/roll", r)
	f.add("rolled api token", r.Map(t)["token"].(string))

	// Developer credentials, grant, roll.
	devID := env.CreateUser(admin, "dev@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/developers/"+devID, nil), 204, "")
	devTok := env.Login("dev@example.com", memberPW)
	f.add("developer password token", devTok)
	r = env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "CI"})
	servertest.Expect(t, r, 201, "")
	f.carry("POST /v1/credentials", r)
	var c credential
	r.JSON(t, &c)
	f.add("client secret", c.ClientSecret)
	f.add("client credentials token", accessToken(t, clientToken(env, c)))
	r = env.As(devTok, "POST", "/v1/credentials/"+c.ID+"/roll", map[string]any{"overlap_seconds": 60})
	if r.Status/100 != 2 {
		t.Fatalf("roll credential: %d %s", r.Status, r.Body)
	}
	f.carry("POST /v1/credentials/{id}/roll", r)
	f.add("rolled client secret", r.Map(t)["client_secret"].(string))

	// Third-party applications: secret, roll, code flow, device flow.
	env.CreateUser(admin, appMember, memberPW)
	conf := registerApp(t, env, devTok, "confidential", []string{appRedirect}, []string{"workspaces:read"})
	f.add("app client secret", conf.ClientSecret)
	r = env.As(devTok, "POST", "/v1/apps/"+conf.ID+"/roll", map[string]any{"overlap_seconds": 600})
	if r.Status/100 != 2 {
		t.Fatalf("roll app: %d %s", r.Status, r.Body)
	}
	f.carry("POST /v1/apps/{id}/roll", r)
	f.add("rolled app client secret", r.Map(t)["client_secret"].(string))
	pub := registerApp(t, env, devTok, "public", []string{"http://127.0.0.1/callback"}, nil)
	w := &appsWorld{env: env, admin: admin, devTok: devTok, confidential: conf, public: pub, issuer: issuerOf(t, env)["issuer"].(string)}
	oc := oauthConfig(env, conf, appRedirect, "workspaces:read")
	verifier := oauth2.GenerateVerifier()
	q := w.code(t, oc, verifier, "allow")
	f.add("authorization code", q.Get("code"))
	f.add("pkce verifier", verifier)
	r = exchange(env, conf, q.Get("code"), appRedirect, verifier)
	servertest.Expect(t, r, 200, "")
	f.carry("authorization_code grant", r)
	ct := r.Map(t)
	f.add("code access token", ct["access_token"].(string))
	f.add("code refresh token", ct["refresh_token"].(string))
	servertest.Expect(t, env.As(ct["access_token"].(string), "GET", "/v1/workspaces", nil), 200, "")
	// The code used again (revokes what it issued): its error body.
	r = exchange(env, conf, q.Get("code"), appRedirect, verifier)
	servertest.Expect(t, r, 400, "invalid_grant")

	r = startDevice(env, pub.ClientID, "workspaces:read")
	servertest.Expect(t, r, 200, "")
	f.carry("POST /oauth/device_authorization", r)
	dm := r.Map(t)
	f.add("device code", dm["device_code"].(string))
	userCode := dm["user_code"].(string)
	f.add("user code", userCode)
	f.add("user code bare", strings.ReplaceAll(userCode, "-", ""))
	resp, page := newUserAgent(t, env.URL).enterCode(userCode, "allow")
	if resp.StatusCode != 200 || !strings.Contains(page, "is connected") {
		t.Fatalf("approve: %d %s", resp.StatusCode, page)
	}
	r = poll(t, env, pub, dm["device_code"].(string))
	servertest.Expect(t, r, 200, "")
	f.add("device access token", r.Map(t)["access_token"].(string))
	f.add("device refresh token", r.Map(t)["refresh_token"].(string))

	// Dynamic registration: public clients, no secret or registration
	// access token handed out.
	st, reg := registerClient(t, env.Client, env.URL, map[string]any{"client_name": "zz agent", "redirect_uris": []string{"http://127.0.0.1/cb"}})
	if st != 201 {
		t.Fatalf("register: %d %v", st, reg)
	}
	for _, k := range []string{"client_secret", "registration_access_token"} {
		if v, ok := reg[k].(string); ok && v != "" {
			f.add("dynamic registration "+k, v)
		}
	}

	// TOTP and recovery codes of another user.
	env.CreateUser(admin, "mfa@example.com", memberPW)
	mfaTok := env.Login("mfa@example.com", memberPW)
	f.add("mfa user token", mfaTok)
	totpSecret, codes := enrolTOTP(t, env, mfaTok)
	f.add("totp secret", totpSecret)
	for i, c := range codes {
		f.add("recovery code "+string(rune('a'+i)), c)
		// and without its dashes
		f.add("recovery code bare "+string(rune('a'+i)), strings.ReplaceAll(c, "-", ""))
	}
	servertest.Expect(t, env.As(mfaTok, "GET", "/v1/me/mfa", nil), 200, "")

	// Passwords set by an admin and at account creation; a password change.
	newPW := "zz new password 77"
	uid := env.CreateUser(admin, "pw@example.com", "zz first password 55")
	f.add("user first password", "zz first password 55")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+uid, map[string]any{"password": newPW}), 200, "")
	f.add("user new password", newPW)
	_, otherAdmin := env.CreateAccount(admin, "zz other", "zzadmin@example.net", "zz account admin pw 9")
	f.add("new account admin password", "zz account admin pw 9")
	f.add("new account admin token", otherAdmin)

	// A console session.
	session := consoleSession(t, env, servertest.AdminEmail, servertest.AdminPassword)
	f.add("console session cookie", session)

	// Single sign-on: client secret (sealed).
	op := oidcprovider.Start(t, "gatehouse-console", "zz sso client secret 123")
	r = env.As(admin, "PUT", "/v1/settings", map[string]any{"sso": map[string]any{
		"issuer": op.URL, "client_id": op.ClientID, "client_secret": "zz sso client secret 123", "domains": []string{"example.org"}}})
	servertest.Expect(t, r, 200, "")
	f.add("sso client secret", "zz sso client secret 123")

	// Failing uses of secrets: wrong secrets, revoked tokens, leaked secrets.
	servertest.Expect(t, env.As(f.secrets["api access token"]+"x", "GET", "/v1/me", nil), 401, "")
	servertest.Expect(t, env.Request("POST", "/authorization", url.Values{"username": {"pw@example.com"}, "password": {"zz wrong password 1"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_grant")
	f.add("wrong password", "zz wrong password 1")
	// A password in the query string (SPEC §3.4 allows it).
	r = env.Request("POST", "/authorization?"+url.Values{"username": {"pw@example.com"}, "password": {newPW}}.Encode(), nil)
	servertest.Expect(t, r, 200, "")
	f.add("query password token", r.Map(t)["access_token"].(string))

	// Tokens in query strings: not taken as credentials, never logged.
	for _, p := range []string{"/v1/me?access_token=", "/v1/auth/check?access_token=", "/v1/workspaces?api_token="} {
		r := env.Request("GET", p+url.QueryEscape(f.secrets["client credentials token"]), nil)
		if r.Status == 200 {
			t.Errorf("GET %s<token>: %d, a token in the query string is taken", p, r.Status)
		}
	}
	r = env.Request("GET", "/v1/me?api_token="+url.QueryEscape(f.secrets["rolled api token"]), nil)
	if r.Status == 200 {
		t.Errorf("an API token in the query string is taken")
	}

	// Changes answer the object without its secret.
	for _, p := range []struct {
		tok, method, path string
		body              any
	}{
		{admin, "PATCH", "/v1/webhooks/" + whID, map[string]any{"description": "zz"}},
		{admin, "PATCH", "/v1/api-access", map[string]any{"access_token_ttl_days": 2}},
		{admin, "PATCH", "/v1/api-tokens/" + at["id"].(string), map[string]any{"name": "zz2"}},
		{devTok, "PATCH", "/v1/credentials/" + c.ID, map[string]any{"name": "CI2"}},
		{devTok, "PATCH", "/v1/apps/" + conf.ID, map[string]any{"name": "zz app"}},
		{admin, "PUT", "/v1/apps/" + conf.ID + "/approval", nil},
		{admin, "POST", "/v1/webhooks/" + whID + "/test", nil},
		{admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"daily": 60000}}},
	} {
		r := env.As(p.tok, p.method, p.path, p.body)
		if r.Status/100 != 2 {
			t.Errorf("%s %s: %d %s", p.method, p.path, r.Status, r.Body)
		}
		if leaks := secretsLeaks(f.secrets, r.Body); len(leaks) > 0 {
			t.Errorf("%s %s answers secrets %v", p.method, p.path, leaks)
		}
	}

	// Error answers to requests carrying secrets never echo them.
	var errBodies []byte
	form := func(v url.Values, headers ...string) []byte {
		r := env.Request("POST", "/oauth/token", v.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
		if r.Status/100 == 2 {
			t.Errorf("token request %v succeeded", v)
		}
		return r.Body
	}
	// a client secret of another client
	errBodies = append(errBodies, form(url.Values{"grant_type": {"client_credentials"}, "client_id": {conf.ClientID}, "client_secret": {f.secrets["rolled client secret"]}})...)
	// a refresh token with the wrong client
	errBodies = append(errBodies, form(url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ClientID}, "client_secret": {f.secrets["rolled client secret"]}, "refresh_token": {f.secrets["refreshed refresh token"]}})...)
	// a refresh token as an authorization code, a device code as a refresh token
	errBodies = append(errBodies, form(url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ClientID}, "code": {f.secrets["code refresh token"]}, "redirect_uri": {"http://127.0.0.1/callback"}, "code_verifier": {verifier}})...)
	errBodies = append(errBodies, form(url.Values{"grant_type": {"refresh_token"}, "client_id": {pub.ClientID}, "refresh_token": {f.secrets["device code"]}})...)
	// secrets repeated, in Basic and the body, unknown grant
	errBodies = append(errBodies, form(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {f.secrets["rolled client secret"]}},
		"Authorization", clientBasic(c.ClientID, f.secrets["rolled client secret"]))...)
	errBodies = append(errBodies, form(url.Values{"grant_type": {"zz_" + f.secrets["api token"]}, "client_id": {c.ClientID}, "client_secret": {f.secrets["rolled client secret"]}})...)
	// tokens where they do not belong
	for _, h := range [][]string{
		{"Authorization", "Bearer " + f.secrets["api token"]},
		{"Authorization", "Bearer " + f.secrets["client secret"]},
		{"Authorization", "Basic " + f.secrets["api access token"]},
		{"X-API-Token", f.secrets["code access token"]},
		{"X-API-Token", f.secrets["rolled api token"], "X-User-Email", "nobody@example.com"},
		{"Authorization", "Bearer " + f.secrets["code access token"], "X-User-Email", appMember},
		{"Authorization", "Bearer " + f.secrets["code access token"] + " " + f.secrets["api token"]},
	} {
		r := env.Request("GET", "/v1/me", nil, h...)
		errBodies = append(errBodies, r.Body...)
		errBodies = append(errBodies, []byte(r.Header.Get("WWW-Authenticate"))...)
	}
	for _, p := range []string{"/oauth/introspect", "/oauth/revoke"} {
		r := env.Request("POST", p, url.Values{"token": {f.secrets["code access token"]}, "token_type_hint": {f.secrets["api token"]}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", clientBasic(c.ClientID, "gcs_wrong"))
		errBodies = append(errBodies, r.Body...)
	}
	if leaks := secretsLeaks(f.secrets, errBodies); len(leaks) > 0 {
		t.Errorf("error answers echo secrets: %v", leaks)
	}

	// A leaked API token reported in bulk: revoked, and its string kept nowhere.
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "zz leaked"})
	servertest.Expect(t, r, 201, "")
	leaked := r.Map(t)["token"].(string)
	f.add("leaked api token", leaked)
	bulkReport(t, env, leaked, "gak_notatoken", f.secrets["wrong password"])
	waitStatus(t, 401, func() int { return env.Request("GET", "/v1/me", nil, "X-API-Token", leaked).Status })

	// Usage flush, webhook deliveries.
	time.Sleep(200 * time.Millisecond)
	rc.wait(t, "settings.changed", 20*time.Second)
	_ = ctx

	// ---- where secrets must not be ----
	check := func(where string, data []byte, allowed ...string) {
		t.Helper()
		sec := map[string]string{}
		for k, v := range f.secrets {
			sec[k] = v
		}
		for _, a := range allowed {
			delete(sec, a)
		}
		if leaks := secretsLeaks(sec, data); len(leaks) > 0 {
			t.Errorf("%s holds raw secrets: %v", where, leaks)
		}
	}

	// Responses carrying a secret must not be cached (the webhook
	// answers are TestSecretsWebhookSecretAnswersNoStore's).
	var uncached []string
	for _, n := range f.noStore {
		if !strings.Contains(n, "/v1/webhooks") {
			uncached = append(uncached, n)
		}
	}
	if len(uncached) > 0 {
		t.Errorf("answers carrying a secret without Cache-Control: no-store: %v", uncached)
	}

	// The store.
	if err := env.Server.Store.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	check("the database", storedBytes(t, env))

	// Audit log (all pages) and its export.
	var audit []byte
	cursor := ""
	for range 50 {
		p := "/v1/audit?limit=200"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := env.As(admin, "GET", p, nil)
		servertest.Expect(t, r, 200, "")
		audit = append(audit, r.Body...)
		next, _ := r.Map(t)["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	check("GET /v1/audit", audit)
	for _, format := range []string{"jsonl", "csv"} {
		req, _ := http.NewRequest("GET", env.URL+"/admin/audit/export?format="+format, nil)
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: session})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(b) < 100 {
			t.Fatalf("audit export %s: %d %s", format, resp.StatusCode, b)
		}
		check("audit export "+format, b)
	}

	// Usage, JSON and CSV.
	day := time.Now().UTC().Format("2006-01-02")
	for _, g := range []string{"day", "user", "credential"} {
		r := env.As(admin, "GET", "/v1/usage?from="+day+"&to="+day+"&group_by="+g, nil)
		servertest.Expect(t, r, 200, "")
		check("usage "+g, r.Body)
		r = env.As(admin, "GET", "/v1/usage?from="+day+"&to="+day+"&group_by="+g, nil, "Accept", "text/csv")
		check("usage csv "+g, r.Body)
	}

	// Metrics.
	r = env.Request("GET", "/metrics", nil)
	servertest.Expect(t, r, 200, "")
	check("/metrics", r.Body)

	// Webhook payloads (the signing secrets are not in them either).
	var payloads []byte
	for _, d := range rc.all() {
		payloads = append(payloads, d.Body...)
		payloads = append(payloads, d.Signature...)
	}
	check("webhook payloads", payloads)

	// Later reads of each object.
	for _, p := range []struct{ tok, path string }{
		{admin, "/v1/webhooks"}, {admin, "/v1/webhooks/" + whID}, {admin, "/v1/webhooks/" + whID + "/deliveries"},
		{admin, "/v1/api-access"}, {admin, "/v1/api-tokens"}, {devTok, "/v1/credentials"}, {admin, "/v1/credentials?user_id=" + devID},
		{devTok, "/v1/apps"}, {devTok, "/v1/apps/" + conf.ID}, {admin, "/v1/settings"}, {admin, "/v1/users"},
		{env.Login(appMember, memberPW), "/v1/me/authorizations"}, {admin, "/v1/me/sessions"}, {admin, "/v1/me"},
		{mfaTok, "/v1/me/mfa"}, {admin, "/v1/extensions"},
	} {
		r := env.As(p.tok, "GET", p.path, nil)
		servertest.Expect(t, r, 200, "")
		check("GET "+p.path, r.Body)
	}
	// A second TOTP enrolment while on does not show the active secret.
	r = env.As(mfaTok, "POST", "/v1/me/mfa/totp", nil)
	if strings.Contains(string(r.Body), totpSecret) {
		t.Errorf("a second enrolment shows the active TOTP secret: %d", r.Status)
	}

	// Console pages after the first show.
	for _, p := range []string{"/admin", "/admin/extensions", "/admin/apps", "/admin/webhooks", "/admin/webhooks/" + whID,
		"/admin/credentials", "/admin/api-access", "/admin/settings", "/admin/audit", "/admin/users", "/admin/me", "/admin/me/mfa"} {
		req, _ := http.NewRequest("GET", env.URL+p, nil)
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: session})
		resp, err := noRedirects().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check("console "+p, b, "console session cookie")
	}

	// Finally, the logs, at debug level (request lines, warnings).
	time.Sleep(100 * time.Millisecond)
	if !strings.Contains(f.logs.String(), `"msg":"request"`) {
		t.Fatal("no request lines logged: the test reads the wrong log")
	}
	check("the server log", []byte(f.logs.String()))
}

// TestSecretsWebhookSecretAnswersNoStore: the answers of POST
// /v1/webhooks and POST /v1/webhooks/{id}/roll-secret carry the
// endpoint's signing secret ("shown this once", docs/webhooks.md) and, like
// every other answer that carries a secret (api-tokens, credentials, apps,
// api-access, TOTP, registration), must not be stored by a cache.
func TestSecretsWebhookSecretAnswersNoStore(t *testing.T) {
	f := secretsStart(t)
	env := f.env
	admin := env.AdminToken()
	r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"*"}})
	servertest.Expect(t, r, 201, "")
	if s, _ := r.Map(t)["secret"].(string); !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("no secret in %s", r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("POST /v1/webhooks answers the signing secret with Cache-Control %q, want no-store", cc)
	}
	id := r.Map(t)["id"].(string)
	r = env.As(admin, "POST", "/v1/webhooks/"+id+"/roll-secret", map[string]any{"overlap_seconds": 0})
	servertest.Expect(t, r, 200, "")
	if s, _ := r.Map(t)["secret"].(string); !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("no secret in %s", r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("POST /v1/webhooks/{id}/roll-secret answers the signing secret with Cache-Control %q, want no-store", cc)
	}
	// For comparison: the other creation answers carrying a secret.
	r = env.As(admin, "POST", "/v1/api-access", nil)
	servertest.Expect(t, r, 201, "")
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("POST /v1/api-access Cache-Control %q", cc)
	}
}
