package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// Bad input in request bodies (SPEC §10.8 "No 5xx from input, on any
// store"): every JSON body of the API, the OAuth endpoints' bodies and
// the console's forms, given NUL, lone surrogates, huge values, numbers
// out of every range and values of the wrong type, is answered 4xx with a
// JSON error (the API), never 5xx, and leaves nothing behind that breaks
// a later read.

const badPlaceholder = "\x01ZZPLACEHOLDER\x01"

// badLong is a string far longer than any field may be.
var badLong = strings.Repeat("a", 100_000)

// badBadValues are raw JSON values tried in every field.
var badBadValues = []string{
	`"\u0000"`, `"a\u0000b"`, `"\ud800"`, `"\udc00"`, `"x\ud800y"`, `"` + badLong + `"`,
	`"x"`, `""`, `" "`, `{}`, `[]`, `[[]]`, `1e309`, `-1`, `0`, `9223372036854775808`, `-9223372036854775809`,
	`9223372036854775807`, `2147483648`, `-2147483649`, `1.5`, `null`, `true`,
	`["\u0000"]`, `["\ud800"]`, `["` + badLong + `"]`, `[1]`, `{"a":1}`, `{"\u0000":1}`, `{"\ud800":1}`,
	`{"` + badLong + `":1}`, `"9999-12-31T23:59:59-23:59"`, `"0000-01-01T00:00:00+23:59"`, `"9999-12-31T23:59:59Z"`,
	`"2026-13-45"`, `["a","a"]`, `"\u202e"`, `"\ufeff"`, `"` + strings.Repeat("日", 30000) + `"`,
	`[` + strings.Repeat(`"x",`, 20000) + `"x"]`,
}

// badBodyLevel are whole bodies tried on every route.
var badBodyLevel = []string{
	``, `null`, `[]`, `"x"`, `1`, `{} {}`, `{"zz_unknown":1}`, `{`, strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, "\xff", "{\"name\":\"\xff\"}", "\x00",
	`{"name":"a","name":"b"}`, `{"name":"a","NAME":"b"}`, `{"` + strings.Repeat("a", 2<<20) + `":1}`,
}

// badSet returns base (a JSON object) with the field at dotted path set to
// the raw JSON value raw.
func badSet(base map[string]any, path, raw string) string {
	cp := badCopy(base).(map[string]any)
	m := cp
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = badPlaceholder
	b, err := json.Marshal(cp)
	if err != nil {
		panic(err)
	}
	return strings.Replace(string(b), `"\u0001ZZPLACEHOLDER\u0001"`, raw, 1)
}

func badCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = badCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = badCopy(e)
		}
		return out
	}
	return v
}

// badDo sends one request and reads the whole answer.
func badDo(t *testing.T, c *http.Client, method, rawURL, contentType string, body string, headers ...string) *servertest.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	badAddr++
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", badAddr>>16&255, badAddr>>8&255, badAddr&255))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return &servertest.Response{Status: -1, Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return &servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// badAddr numbers the client addresses the probes come from (through the
// trusted proxy), so that no throttle hides what a probe would do.
var badAddr int

// badJSONError reports whether an answer is a JSON error body with a code.
func badJSONError(r *servertest.Response) bool {
	var e struct {
		Error string `json:"error"`
	}
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") && json.Unmarshal(r.Body, &e) == nil && e.Error != ""
}

func badShort(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 160 {
		return s[:160] + "…(" + strconv.Itoa(len(s)) + ")"
	}
	return s
}

// badFixture is a server with one of everything.
type badFixture struct {
	env                                     *servertest.Env
	tok, adminID, memberID                  string
	wsID, credID, apiTokenID, appID, hookID string
	accountID                               string
	credClientID, credSecret, appClientID   string
	pubClientID                             string
	c                                       *http.Client
}

func badStart(t *testing.T) *badFixture {
	env := startOnLocalhost(t, func(c *server.Config) {
		c.DynamicRegistration = true
		c.WebhookAllowInsecure = true
		c.NoWebhookDelivery = true
		c.TrustedProxies, _ = httpx.ParseTrustedProxies("127.0.0.1/32,::1/128")
	})
	f := &badFixture{env: env, c: &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	f.tok = env.AdminToken()
	servertest.Expect(t, env.As(f.tok, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 1000000, "daily": 100000000}}), 200, "")
	me := env.As(f.tok, "GET", "/v1/me", nil).Map(t)
	f.adminID = me["user"].(map[string]any)["id"].(string)
	f.memberID = env.CreateUser(f.tok, "ann@example.com", memberPW)
	if r := env.As(f.tok, "PUT", "/v1/developers/"+f.adminID, nil); r.Status >= 300 {
		t.Fatalf("developer: %d %s", r.Status, r.Body)
	}
	f.tok = env.AdminToken()
	id := func(r *servertest.Response) string {
		t.Helper()
		if r.Status != 201 && r.Status != 200 {
			t.Fatalf("fixture: %d %s", r.Status, r.Body)
		}
		return r.Map(t)["id"].(string)
	}
	f.wsID = id(env.As(f.tok, "POST", "/v1/workspaces", map[string]any{"name": "w", "description": ""}))
	cr := env.As(f.tok, "POST", "/v1/credentials", map[string]any{"name": "c"})
	f.credID = id(cr)
	f.credClientID, _ = cr.Map(t)["client_id"].(string)
	f.credSecret, _ = cr.Map(t)["client_secret"].(string)
	pub := env.As(f.tok, "POST", "/v1/apps", map[string]any{"name": "pub", "type": "public", "redirect_uris": []string{"https://example.com/cb"}})
	id(pub)
	f.pubClientID, _ = pub.Map(t)["client_id"].(string)
	servertest.Expect(t, env.As(f.tok, "PUT", "/v1/extensions/api_tokens", map[string]any{"enabled": true}), 200, "")
	f.apiTokenID = id(env.As(f.tok, "POST", "/v1/api-tokens", map[string]any{"name": "t"}))
	f.appID = id(env.As(f.tok, "POST", "/v1/apps", map[string]any{"name": "a", "type": "confidential", "redirect_uris": []string{"https://example.com/cb"}}))
	f.hookID = id(env.As(f.tok, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/in", "events": []string{"*"}}))
	f.accountID, _ = env.CreateAccount(f.tok, "Other", "other@example.com", memberPW)
	return f
}

// reads are the GETs that must still answer 200 after the probes: what a
// probe stored must not break them.
func (f *badFixture) reads() []string {
	return []string{"/v1/me", "/v1/users?limit=200", "/v1/users/" + f.memberID, "/v1/workspaces", "/v1/workspaces/" + f.wsID,
		"/v1/credentials", "/v1/api-tokens", "/v1/apps", "/v1/apps/" + f.appID, "/v1/webhooks", "/v1/webhooks/" + f.hookID,
		"/v1/settings", "/v1/audit?limit=200", "/v1/accounts", "/v1/accounts/" + f.accountID, "/v1/api-access", "/v1/me/mfa",
		"/v1/extensions", "/v1/me/sessions", "/v1/usage"}
}

func (f *badFixture) checkReads(t *testing.T) []string {
	var bad []string
	for _, p := range f.reads() {
		r := badDo(t, f.c, "GET", f.env.URL+p, "", "", "Authorization", "Bearer "+f.tok)
		if r.Status != 200 {
			bad = append(bad, "GET "+p+": "+strconv.Itoa(r.Status)+" "+badShort(string(r.Body)))
		}
	}
	return bad
}

// badRoute is one route that reads a JSON body: a valid body, and the
// fields to spoil one at a time.
type badRoute struct {
	method, path string
	base         map[string]any
	fields       []string
}

var badPlanFields = []string{"metadata", "external_id", "allowed_ips", "rate_limit", "rate_limit.daily", "rate_limit.burst",
	"rate_limit.burst_window_seconds", "quota", "quota.limit", "quota.period"}

func (f *badFixture) apiRoutes() []badRoute {
	cred := append([]string{"name", "enabled", "scopes", "expires_at"}, badPlanFields...)
	return []badRoute{
		{"POST", "/v1/users", map[string]any{"email": "new" + "ZZN@example.com", "name": "N", "password": memberPW, "roles": []any{}},
			append([]string{"email", "name", "password", "roles"}, badPlanFields...)},
		{"PATCH", "/v1/users/" + f.memberID, map[string]any{"name": "Ann"},
			append([]string{"name", "roles", "status", "password", "revoke_credentials"}, badPlanFields...)},
		{"POST", "/v1/workspaces", map[string]any{"name": "w2ZZN", "description": "d"}, []string{"name", "description"}},
		{"POST", "/v1/me/mfa/totp/confirm", map[string]any{"code": "123456"}, []string{"code"}},
		{"DELETE", "/v1/me/mfa/totp", map[string]any{"code": "123456"}, []string{"code"}},
		{"POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": "pkc_x", "name": "k", "credential": map[string]any{}}, []string{"challenge_id", "name", "credential", "credential.id", "credential.rawId", "credential.type", "credential.response"}},
		{"PATCH", "/v1/me/mfa/passkeys/pk_0000000000000000000000000", map[string]any{"name": "k"}, []string{"name"}},
		{"PATCH", "/v1/api-access", map[string]any{"access_token_ttl_days": 30}, append([]string{"access_token_ttl_days"}, badPlanFields...)},
		{"POST", "/v1/credentials", map[string]any{"name": "c2ZZN"}, append([]string{"name", "scopes", "expires_at"}, badPlanFields...)},
		{"PATCH", "/v1/credentials/" + f.credID, map[string]any{"name": "c"}, cred},
		{"POST", "/v1/credentials/" + f.credID + "/roll", map[string]any{"overlap_seconds": 0}, []string{"overlap_seconds"}},
		{"PUT", "/v1/extensions/api_tokens", map[string]any{"enabled": true}, []string{"enabled"}},
		{"POST", "/v1/api-tokens", map[string]any{"name": "t2ZZN"}, append([]string{"name", "scopes", "expires_at", "canary"}, badPlanFields...)},
		{"PATCH", "/v1/api-tokens/" + f.apiTokenID, map[string]any{"name": "t"}, cred},
		{"POST", "/v1/api-tokens/" + f.apiTokenID + "/roll", map[string]any{"overlap_seconds": 0}, []string{"overlap_seconds"}},
		{"POST", "/v1/apps", map[string]any{"name": "a2ZZN", "type": "public", "redirect_uris": []any{"https://example.com/cb"}},
			append([]string{"name", "type", "redirect_uris", "scopes", "homepage_url"}, badPlanFields...)},
		{"PATCH", "/v1/apps/" + f.appID, map[string]any{"name": "a"}, append([]string{"name", "redirect_uris", "scopes", "homepage_url"}, badPlanFields...)},
		{"POST", "/v1/apps/" + f.appID + "/roll", map[string]any{"overlap_seconds": 0}, []string{"overlap_seconds"}},
		{"PUT", "/v1/settings", map[string]any{"max_credentials_per_user": 100}, []string{"rate_limit", "rate_limit.daily", "rate_limit.burst",
			"rate_limit.burst_window_seconds", "token_lifetimes", "token_lifetimes.password_seconds", "token_lifetimes.client_credentials_seconds",
			"custom_scopes", "max_credential_lifetime_days", "max_credentials_per_user", "max_api_tokens_per_account", "role_scopes",
			"role_scopes.developer", "role_scopes.member", "leak_policy", "require_mfa", "third_party_apps", "sso", "sso.issuer",
			"sso.client_id", "sso.client_secret", "sso.domains", "sso.required"}},
		{"POST", "/v1/accounts", map[string]any{"name": "AccZZN", "admin_email": "accZZN@example.com", "admin_password": memberPW},
			[]string{"name", "admin_email", "admin_password"}},
		{"PATCH", "/v1/accounts/" + f.accountID, map[string]any{"name": "Other"}, []string{"name", "status", "platform_scopes"}},
		{"POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/inZZN", "events": []any{"*"}}, []string{"url", "events", "description"}},
		{"PATCH", "/v1/webhooks/" + f.hookID, map[string]any{"description": "d"}, []string{"url", "events", "description", "enabled"}},
		{"POST", "/v1/webhooks/" + f.hookID + "/roll-secret", map[string]any{"overlap_seconds": 0}, []string{"overlap_seconds"}},
		{"POST", "/v1/credentials/revoke", map[string]any{"credentials": []any{"x"}}, []string{"credentials"}},
		{"POST", "/v1/api-access", map[string]any{"access_token_ttl_days": 30}, append([]string{"access_token_ttl_days", "scopes"}, badPlanFields...)},
	}
}

// badSweep sends every probe of routes and returns what went wrong.
func (f *badFixture) badSweep(t *testing.T, routes []badRoute, values []string, bodyLevel bool) (failures, accepted []string, count int) {
	t.Helper()
	for _, rt := range routes {
		var bodies []string
		if bodyLevel {
			bodies = append(bodies, badBodyLevel...)
		}
		for _, field := range rt.fields {
			for _, v := range values {
				bodies = append(bodies, badSet(rt.base, field, v))
			}
		}
		for _, body := range bodies {
			body = strings.ReplaceAll(body, "ZZN", strconv.Itoa(count))
			for _, ct := range []string{"application/json"} {
				count++
				r := badDo(t, f.c, rt.method, f.env.URL+rt.path, ct, body, "Authorization", "Bearer "+f.tok)
				what := rt.method + " " + rt.path + " " + badShort(body)
				badTally[rt.method+" "+badRouteName(rt.path)+" "+strconv.Itoa(r.Status)+" "+errorCode(string(r.Body))]++
				switch {
				case r.Status >= 500 || r.Status < 0:
					failures = append(failures, what+" → "+strconv.Itoa(r.Status)+" "+badShort(string(r.Body)))
				case r.Status >= 400 && !badJSONError(r):
					failures = append(failures, what+" → "+strconv.Itoa(r.Status)+" not a JSON error: "+badShort(string(r.Body)))
				case r.Status < 400:
					accepted = append(accepted, what+" → "+strconv.Itoa(r.Status))
				}
			}
		}
	}
	return failures, accepted, count
}

var badTally = map[string]int{}

// badRouteName drops the ids from a path, for the tally.
func badRouteName(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.Contains(s, "_") && len(s) > 20 {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

// TestBadBodiesSweepAPI spoils every field of every JSON body of the API.
func TestBadBodiesSweepAPI(t *testing.T) {
	f := badStart(t)
	errors0 := serverErrors(t, f.env)
	failures, accepted, n := f.badSweep(t, f.apiRoutes(), badBadValues, true)
	failures = append(failures, f.checkReads(t)...)
	if e := serverErrors(t, f.env); e != errors0 {
		failures = append(failures, fmt.Sprintf("server errors %d → %d", errors0, e))
	}
	var keys []string
	for k := range badTally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("tally: %s × %d", k, badTally[k])
	}
	sort.Strings(accepted)
	for _, a := range accepted {
		t.Logf("accepted: %s", a)
	}
	if len(failures) > 0 {
		t.Errorf("%d failures of %d probes:\n%s", len(failures), n, strings.Join(failures, "\n"))
	}
}

// TestBadBodiesExpiryPastYear9999: an expires_at whose offset puts it in
// year 10000 once in UTC ("9999-12-31T23:59:59-23:59" is
// 10000-01-01T23:58:59Z) is a valid RFC 3339 time to the decoder, but no
// answer could hold it (encoding/json refuses years past 9999): it is
// refused 400 invalid_request on every route that takes one, nothing is
// stored, and the lists still answer (it was stored and answered 500,
// and every later list answered 500 too).
func TestBadBodiesExpiryPastYear9999(t *testing.T) {
	f := badStart(t)
	errors0 := serverErrors(t, f.env)
	for _, c := range []struct{ kind, id string }{{"credentials", f.credID}, {"api-tokens", f.apiTokenID}} {
		r := badDo(t, f.c, "PATCH", f.env.URL+"/v1/"+c.kind+"/"+c.id, "application/json", `{"expires_at":"9999-12-31T23:59:59-23:59"}`,
			"Authorization", "Bearer "+f.tok)
		if r.Status != 400 || errorCode(string(r.Body)) != "invalid_request" {
			t.Errorf("PATCH /v1/%s/{id} expires_at in year 10000: %d %s", c.kind, r.Status, r.Body)
		}
		if r := badDo(t, f.c, "GET", f.env.URL+"/v1/"+c.kind, "", "", "Authorization", "Bearer "+f.tok); r.Status != 200 {
			t.Errorf("GET /v1/%s after it: %d %s", c.kind, r.Status, r.Body)
		}
	}
	// The console shows what the API cannot.
	ck := adminSessionCookie(t, f.c, f.env.URL)
	for _, p := range []string{"/admin/credentials", "/admin/credentials/" + f.credID, "/admin/api-tokens/" + f.apiTokenID, "/admin/extensions"} {
		r := badDo(t, f.c, "GET", f.env.URL+p, "", "", "Cookie", ck.Name+"="+ck.Value)
		t.Logf("console GET %s after it: %d", p, r.Status)
	}
	// Made with it, where no lifetime limit bounds it.
	servertest.Expect(t, f.env.As(f.tok, "PUT", "/v1/settings", map[string]any{"max_credential_lifetime_days": 0}), 200, "")
	for _, c := range []struct{ kind, body string }{{"credentials", `{"name":"y10k","expires_at":"9999-12-31T23:59:59-23:59"}`},
		{"api-tokens", `{"name":"y10k","expires_at":"9999-12-31T23:59:59-23:59"}`}} {
		r := badDo(t, f.c, "POST", f.env.URL+"/v1/"+c.kind, "application/json", c.body, "Authorization", "Bearer "+f.tok)
		if r.Status != 400 || errorCode(string(r.Body)) != "invalid_request" {
			t.Errorf("POST /v1/%s expires_at in year 10000: %d %s", c.kind, r.Status, r.Body)
		}
	}
	// The refused creations must have left nothing behind.
	if r := badDo(t, f.c, "GET", f.env.URL+"/admin/credentials", "", "", "Cookie", ck.Name+"="+ck.Value); strings.Contains(string(r.Body), "y10k") {
		t.Errorf("a credential named y10k was stored by the request answered 500 (its secret never shown)")
	}
	if e := serverErrors(t, f.env); e != errors0 {
		t.Errorf("server errors %d → %d", errors0, e)
	}
}

// TestBadBodiesPasskeyLongCredentialID registers a passkey whose
// credential id is far longer than any authenticator makes (WebAuthn caps
// it at 1023 bytes): refused 400, or stored — never a 5xx.
func TestBadBodiesPasskeyLongCredentialID(t *testing.T) {
	env := startOnLocalhost(t)
	tok := env.AdminToken()
	errors0 := serverErrors(t, env)
	for _, n := range []int{1023, 1024, 3000, 20000} {
		k := newSoftKey(t, env)
		k.id = []byte(strings.Repeat("k", n))
		s := passkeyAddShot(t, env, tok, k, "long"+strconv.Itoa(n))
		body, _ := io.ReadAll(s.req.Body)
		r := badDo(t, &http.Client{Timeout: 30 * time.Second}, "POST", env.URL+"/v1/me/mfa/passkeys", "application/json", string(body), "Authorization", "Bearer "+tok)
		t.Logf("credential id of %d bytes: %d %s", n, r.Status, badShort(string(r.Body)))
		if r.Status >= 500 || (r.Status >= 400 && !badJSONError(r)) {
			t.Errorf("credential id of %d bytes: %d %s", n, r.Status, badShort(string(r.Body)))
		}
	}
	if r := env.As(tok, "GET", "/v1/me/mfa/passkeys", nil); r.Status != 200 {
		t.Errorf("list: %d %s", r.Status, r.Body)
	}
	if e := serverErrors(t, env); e != errors0 {
		t.Errorf("server errors %d → %d", errors0, e)
	}
}

// badBadForm are form values (already escaped) tried in every parameter.
var badBadForm = []string{"%00", "a%00b", "%ff", "%c0%af", "%ed%a0%80", "%fe%ff", badLong, "%e6%97%a5" + strings.Repeat("%e6%97%a5", 30000),
	"", "+", "-1", "0", "9223372036854775808", "1e309", "1.5", "%5B%5D", "%7B%7D", "null", "x%0d%0ay", strings.Repeat("a+", 5000)}

// badOAuth is one OAuth endpoint and a valid set of its parameters.
type badOAuth struct {
	path   string
	params map[string]string
	spoil  []string
}

func (f *badFixture) oauthRoutes(refresh string) []badOAuth {
	return []badOAuth{
		{"/oauth/token", map[string]string{"grant_type": "password", "username": servertest.AdminEmail, "password": servertest.AdminPassword},
			[]string{"grant_type", "username", "password", "scope", "resource", "client_id", "zz"}},
		{"/oauth/token", map[string]string{"grant_type": "client_credentials", "client_id": f.credClientID, "client_secret": f.credSecret},
			[]string{"client_id", "client_secret", "scope", "resource"}},
		{"/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": refresh}, []string{"refresh_token", "scope", "client_id"}},
		{"/oauth/token", map[string]string{"grant_type": "authorization_code", "client_id": f.pubClientID, "code": "x", "redirect_uri": "https://example.com/cb", "code_verifier": strings.Repeat("v", 50)},
			[]string{"client_id", "code", "redirect_uri", "code_verifier", "resource"}},
		{"/oauth/token", map[string]string{"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": f.pubClientID, "device_code": "x"},
			[]string{"client_id", "device_code"}},
		{"/v1/oauth/token", map[string]string{"grant_type": "password", "username": servertest.AdminEmail, "password": servertest.AdminPassword},
			[]string{"username", "password", "scope"}},
		{"/authorization", map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword},
			[]string{"username", "password", "scope", "grant_type", "resource"}},
		{"/oauth/revoke", map[string]string{"token": "x", "token_type_hint": "access_token", "client_id": f.credClientID, "client_secret": f.credSecret},
			[]string{"token", "token_type_hint", "client_id", "client_secret"}},
		{"/oauth/introspect", map[string]string{"token": "x", "client_id": f.credClientID, "client_secret": f.credSecret},
			[]string{"token", "token_type_hint", "client_id", "client_secret"}},
		{"/oauth/device_authorization", map[string]string{"client_id": f.pubClientID, "scope": "users:read"},
			[]string{"client_id", "scope", "resource"}},
	}
}

// TestBadBodiesSweepOAuth spoils every parameter of the OAuth endpoints,
// form-encoded and as JSON, and the dynamic registration's metadata.
func TestBadBodiesSweepOAuth(t *testing.T) {
	f := badStart(t)
	errors0 := serverErrors(t, f.env)
	login := badDo(t, f.c, "POST", f.env.URL+"/oauth/token", "application/x-www-form-urlencoded",
		"grant_type=password&username="+url.QueryEscape(servertest.AdminEmail)+"&password="+url.QueryEscape(servertest.AdminPassword))
	var pair struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(login.Body, &pair)
	var failures []string
	n := 0
	check := func(what string, r *servertest.Response) {
		n++
		badTally[what[:strings.Index(what, " ")]+" "+strconv.Itoa(r.Status)+" "+errorCode(string(r.Body))]++
		if r.Status >= 500 || r.Status < 0 || (r.Status >= 400 && !badJSONError(r)) {
			failures = append(failures, badShort(what)+" → "+strconv.Itoa(r.Status)+" "+badShort(string(r.Body)))
		}
	}
	for _, rt := range f.oauthRoutes(pair.RefreshToken) {
		for _, field := range rt.spoil {
			for _, v := range badBadForm {
				var parts []string
				for k, pv := range rt.params {
					if k != field {
						parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(pv))
					}
				}
				body := strings.Join(append(parts, field+"="+v), "&")
				check(rt.path+" form "+body, badDo(t, f.c, "POST", f.env.URL+rt.path, "application/x-www-form-urlencoded", body))
				// As the parameter's name too.
				body = strings.Join(append(parts, v+"="+v), "&")
				check(rt.path+" form "+body, badDo(t, f.c, "POST", f.env.URL+rt.path, "application/x-www-form-urlencoded", body))
			}
			base := map[string]any{}
			for k, pv := range rt.params {
				base[k] = pv
			}
			for _, v := range badBadValues {
				body := badSet(base, field, v)
				check(rt.path+" json "+body, badDo(t, f.c, "POST", f.env.URL+rt.path, "application/json", body))
			}
		}
		for _, body := range badBodyLevel {
			check(rt.path+" json "+body, badDo(t, f.c, "POST", f.env.URL+rt.path, "application/json", body))
			check(rt.path+" form "+body, badDo(t, f.c, "POST", f.env.URL+rt.path, "application/x-www-form-urlencoded", body))
			check(rt.path+" text "+body, badDo(t, f.c, "POST", f.env.URL+rt.path, "text/plain", body))
		}
	}
	reg := map[string]any{"redirect_uris": []any{"https://example.com/cb"}, "client_name": "Reg"}
	for _, field := range []string{"redirect_uris", "token_endpoint_auth_method", "grant_types", "response_types", "client_name", "client_uri", "scope", "zz"} {
		for _, v := range badBadValues {
			body := badSet(reg, field, v)
			r := badDo(t, f.c, "POST", f.env.URL+"/oauth/register", "application/json", body)
			if r.Status == 429 {
				break
			}
			check("/oauth/register json "+body, r)
		}
	}
	failures = append(failures, f.checkReads(t)...)
	if e := serverErrors(t, f.env); e != errors0 {
		failures = append(failures, fmt.Sprintf("server errors %d → %d", errors0, e))
	}
	var keys []string
	for k := range badTally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("tally: %s × %d", k, badTally[k])
	}
	if len(failures) > 0 {
		t.Errorf("%d failures of %d probes:\n%s", len(failures), n, strings.Join(failures, "\n"))
	}
}

// badForm is one console form and a valid set of its fields.
type badForm struct {
	path   string
	fields [][2]string
}

// TestBadBodiesSweepConsole spoils every field of every console form,
// posted with the session's cookie and CSRF token: never a 5xx.
func TestBadBodiesSweepConsole(t *testing.T) {
	f := badStart(t)
	servertest.Expect(t, f.env.As(f.tok, "POST", "/v1/api-access", map[string]any{}), 201, "")
	ck := adminSessionCookie(t, f.c, f.env.URL)
	cookie := ck.Name + "=" + ck.Value
	page := badDo(t, f.c, "GET", f.env.URL+"/admin/users", "", "", "Cookie", cookie)
	csrf := between(string(page.Body), `name="csrf" value="`, `"`)
	if csrf == "" {
		t.Fatalf("no csrf: %d %.300s", page.Status, page.Body)
	}
	errors0 := serverErrors(t, f.env)
	plan := [][2]string{{"rate_limit.daily", "1000"}, {"rate_limit.burst", "10"}, {"rate_limit.burst_window_seconds", "60"},
		{"quota.limit", "100"}, {"quota.period", "day"}, {"allowed_ips", "10.0.0.0/8"}}
	forms := []badForm{
		{"/admin/users", [][2]string{{"email", "newZZN@example.com"}, {"name", "N"}, {"password", memberPW}, {"role", "developer"}}},
		{"/admin/users/" + f.memberID, [][2]string{{"role", "developer"}, {"status", "active"}, {"revoke_credentials", "false"}}},
		{"/admin/users/" + f.memberID + "/password", [][2]string{{"password", memberPW + "2"}}},
		{"/admin/users/" + f.memberID + "/plan", plan[:5]},
		{"/admin/api-access/lifetime", [][2]string{{"access_token_ttl_days", "30"}}},
		{"/admin/api-access/plan", plan},
		{"/admin/api-tokens", [][2]string{{"name", "tZZN"}}},
		{"/admin/api-tokens/" + f.apiTokenID + "/plan", plan},
		{"/admin/api-tokens/" + f.apiTokenID + "/roll", [][2]string{{"overlap_seconds", "0"}}},
		{"/admin/developers", [][2]string{{"user_id", f.memberID}}},
		{"/admin/developers/" + f.memberID + "/remove", [][2]string{{"revoke", "false"}, {"confirmed", "no"}}},
		{"/admin/credentials", [][2]string{{"name", "cZZN"}}},
		{"/admin/credentials/" + f.credID + "/plan", plan},
		{"/admin/credentials/" + f.credID + "/roll", [][2]string{{"overlap_seconds", "0"}}},
		{"/admin/apps", [][2]string{{"name", "aZZN"}, {"type", "public"}, {"redirect_uris", "https://example.com/cb"}, {"homepage_url", "https://example.com"}, {"scopes", "users:read"}}},
		{"/admin/apps/" + f.appID + "/roll", [][2]string{{"overlap_seconds", "0"}}},
		{"/admin/settings", [][2]string{{"rate_limit.burst", "1000000"}, {"rate_limit.burst_window_seconds", "60"}, {"rate_limit.daily", "100000000"},
			{"token_lifetimes.password_seconds", "3600"}, {"token_lifetimes.client_credentials_seconds", "3600"}, {"max_credential_lifetime_days", "0"},
			{"password_grant_enabled", "true"}, {"custom_scopes", "zz:read"}, {"require_mfa", "off"}}},
		{"/admin/settings/sso", [][2]string{{"sso.issuer", "x"}, {"sso.client_id", "c"}, {"sso.client_secret", "s"}, {"sso.domains", "example.com"}, {"sso.required", "false"}}},
		{"/admin/webhooks", [][2]string{{"url", "http://127.0.0.1:9/fZZN"}, {"events", "*"}, {"description", "d"}}},
		{"/admin/webhooks/" + f.hookID + "/enabled", [][2]string{{"enabled", "true"}}},
		{"/admin/webhooks/" + f.hookID + "/roll", [][2]string{{"overlap_seconds", "0"}}},
		{"/admin/accounts", [][2]string{{"name", "AZZN"}, {"admin_email", "aZZN@example.com"}, {"admin_password", memberPW}}},
		{"/admin/accounts/" + f.accountID, [][2]string{{"name", "Other"}, {"status", "active"}}},
		{"/admin/me/password", [][2]string{{"current_password", "wrong password here"}, {"new_password", memberPW + "3"}, {"repeat_password", memberPW + "3"}}},
		{"/admin/me/mfa/totp/confirm", [][2]string{{"code", "123456"}}},
		{"/admin/me/mfa/totp/off", [][2]string{{"code", "123456"}}},
		{"/admin/me/mfa/passkeys/pk_0000000000000000000000000/rename", [][2]string{{"name", "k"}}},
		{"/admin/me/mfa/passkeys", [][2]string{{"challenge_id", "pkc_x"}, {"name", "k"}, {"credential", "{}"}}},
		{"/admin/device", [][2]string{{"user_code", "ABCD-EFGH"}}},
		{"/admin/device/decision", [][2]string{{"user_code", "ABCD-EFGH"}, {"decision", "allow"}}},
		{"/admin/authorize", [][2]string{{"client_id", f.pubClientID}, {"redirect_uri", "https://example.com/cb"}, {"response_type", "code"},
			{"code_challenge", strings.Repeat("c", 43)}, {"code_challenge_method", "S256"}, {"scope", "users:read"}, {"state", "s"}, {"decision", "deny"}}},
	}
	var failures []string
	n := 0
	tally := map[string]int{}
	send := func(path, body string) {
		n++
		body = strings.ReplaceAll(body, "ZZN", strconv.Itoa(n))
		r := badDo(t, f.c, "POST", f.env.URL+path, "application/x-www-form-urlencoded", body, "Cookie", cookie)
		tally[badRouteName(path)+" "+strconv.Itoa(r.Status)]++
		if r.Status >= 500 || r.Status < 0 {
			failures = append(failures, "POST "+path+" "+badShort(body)+" → "+strconv.Itoa(r.Status)+" "+badShort(string(r.Body)))
		}
	}
	enc := func(kv [][2]string, skip string, extra string) string {
		parts := []string{"csrf=" + url.QueryEscape(csrf)}
		for _, p := range kv {
			if p[0] != skip {
				parts = append(parts, url.QueryEscape(p[0])+"="+url.QueryEscape(p[1]))
			}
		}
		if extra != "" {
			parts = append(parts, extra)
		}
		return strings.Join(parts, "&")
	}
	for _, fm := range forms {
		for _, fld := range fm.fields {
			for _, v := range badBadForm {
				send(fm.path, enc(fm.fields, fld[0], url.QueryEscape(fld[0])+"="+v))
				send(fm.path, enc(fm.fields, fld[0], url.QueryEscape(fld[0])+"="+v+"&"+url.QueryEscape(fld[0])+"=x"))
			}
		}
		for _, v := range badBadForm {
			send(fm.path, enc(fm.fields, "", v+"=1"))
		}
		for _, body := range []string{"%", "a=%zz", "\xff", "csrf=" + csrf + "&\xff=1", "csrf=" + csrf + "&" + strings.Repeat("a", 2<<20)} {
			send(fm.path, body)
		}
	}
	// The sign-in form, without a session.
	for _, fld := range []string{"email", "password", "next", "csrf"} {
		for _, v := range badBadForm {
			r := badDo(t, f.c, "POST", f.env.URL+"/admin/login", "application/x-www-form-urlencoded",
				"email=x%40example.com&password=p&"+fld+"="+v)
			n++
			if r.Status >= 500 || r.Status < 0 {
				failures = append(failures, "POST /admin/login "+fld+"="+badShort(v)+" → "+strconv.Itoa(r.Status)+" "+badShort(string(r.Body)))
			}
		}
	}
	failures = append(failures, f.checkReads(t)...)
	for _, p := range []string{"/admin/users", "/admin/users/" + f.memberID, "/admin/credentials", "/admin/credentials/" + f.credID,
		"/admin/api-tokens/" + f.apiTokenID, "/admin/apps", "/admin/settings", "/admin/webhooks", "/admin/webhooks/" + f.hookID,
		"/admin/accounts", "/admin/audit", "/admin/api-access", "/admin/developers", "/admin/extensions", "/admin/me", "/admin/usage"} {
		if r := badDo(t, f.c, "GET", f.env.URL+p, "", "", "Cookie", cookie); r.Status != 200 {
			failures = append(failures, "GET "+p+": "+strconv.Itoa(r.Status)+" "+badShort(string(r.Body)))
		}
	}
	if e := serverErrors(t, f.env); e != errors0 {
		failures = append(failures, fmt.Sprintf("server errors %d → %d", errors0, e))
	}
	var keys []string
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("tally: %s × %d", k, tally[k])
	}
	if len(failures) > 0 {
		t.Errorf("%d failures of %d probes:\n%s", len(failures), n, strings.Join(failures, "\n"))
	}
}

// TestBadBodiesGitHubScanning: a correctly signed GitHub secret-scanning
// batch whose strings hold NUL, invalid UTF-8, lone surrogates, values of
// the wrong type or that is not an array, is answered below 500 with a
// JSON error when refused, and leaves the audit log readable.
func TestBadBodiesGitHubScanning(t *testing.T) {
	signer := newGitHubSigner(t)
	env := servertest.Start(t, func(c *server.Config) { c.GitHubScanningKeys = signer.file })
	tok := env.AdminToken()
	servertest.Expect(t, env.As(tok, "PUT", "/v1/extensions/api_tokens", map[string]any{"enabled": true}), 200, "")
	errors0 := serverErrors(t, env)
	var failures []string
	for i, tmpl := range []string{
		`[{"token":"TOK","type":"t","url":"a\u0000b","source":"s"}]`,
		`[{"token":"TOK","type":"t","url":"u","source":"\u0000"}]`,
		`[{"token":"TOK\u0000","type":"t","url":"u","source":"s"}]`,
		"[{\"token\":\"TOK\",\"type\":\"t\",\"url\":\"\xff\xfe\",\"source\":\"s\"}]",
		`[{"token":"TOK","type":"\u0000","url":"u","source":"s"}]`,
		`[{"token":"TOK","type":"t","url":"\ud800","source":"s"}]`,
		`[{"token":"TOK","type":"t","url":"` + badLong + `","source":"s"}]`,
		`[{"token":1e309}]`, `[{"token":null}]`, `[null]`, `[]`, `{}`, `null`, `[1]`, `"x"`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		`[{"token":"TOK","token":"x"}]`, `[{"token":"TOK","zz":1}]`,
		"\xff", "\x00", ``,
	} {
		at := env.As(tok, "POST", "/v1/api-tokens", map[string]any{"name": "gh" + strconv.Itoa(i)})
		secret, _ := at.Map(t)["token"].(string)
		body := []byte(strings.ReplaceAll(tmpl, "TOK", secret))
		r := postGitHub(env, body, signer.id, signer.sign(t, body))
		if r.Status >= 500 || (r.Status >= 400 && !badJSONError((*servertest.Response)(r))) {
			failures = append(failures, badShort(tmpl)+" → "+strconv.Itoa(r.Status)+" "+badShort(string(r.Body)))
		}
		t.Logf("%s → %d %s", badShort(tmpl), r.Status, badShort(string(r.Body)))
	}
	if r := env.As(tok, "GET", "/v1/audit?limit=200", nil); r.Status != 200 {
		failures = append(failures, "GET /v1/audit: "+strconv.Itoa(r.Status))
	}
	if e := serverErrors(t, env); e != errors0 {
		failures = append(failures, fmt.Sprintf("server errors %d → %d", errors0, e))
	}
	if len(failures) > 0 {
		t.Errorf("%d failures:\n%s", len(failures), strings.Join(failures, "\n"))
	}
}

// TestBadBodiesLoneSurrogateInText: half of a UTF-16 surrogate pair
// escaped alone ("x\ud800y") is no text: every JSON body holding one is
// refused 400, as metadata always was, rather than stored changed
// (encoding/json turns it into U+FFFD).
func TestBadBodiesLoneSurrogateInText(t *testing.T) {
	f := badStart(t)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/workspaces", `{"name":"x\ud800y","description":""}`},
		{"POST", "/v1/users", `{"email":"sur@example.com","name":"x\ud800y","password":"` + memberPW + `","roles":[]}`},
		{"PATCH", "/v1/users/" + f.memberID, `{"external_id":"x\ud800y"}`},
		{"PATCH", "/v1/webhooks/" + f.hookID, `{"description":"x\ud800y"}`},
		{"POST", "/v1/api-tokens", `{"name":"x\udc00y"}`},
	} {
		r := badDo(t, f.c, c.method, f.env.URL+c.path, "application/json", c.body, "Authorization", "Bearer "+f.tok)
		if r.Status != 400 || errorCode(string(r.Body)) != "invalid_request" {
			t.Errorf("%s %s %s: %d %s", c.method, badRouteName(c.path), c.body, r.Status, badShort(string(r.Body)))
		}
	}
}
