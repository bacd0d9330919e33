package e2e

// Attacks on the OAuth 2.0 standard endpoints around the token endpoint —
// revocation, introspection, metadata (SPEC §6, §3.2, §4, §10.1):
// how a caller authenticates, what a refusal looks like, and what an
// answer promises.

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// clientBasic is the HTTP Basic header for a client credential, its
// values form-encoded (RFC 6749 §2.3.1).
func clientBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// postForm posts v form-encoded to path with extra headers (name, value,
// …).
func postForm(env *servertest.Env, path string, v url.Values, headers ...string) *servertest.Response {
	return env.Request("POST", path, v.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
}

// expectNoStore checks the caching headers every OAuth answer carries.
func expectNoStore(t *testing.T, r *servertest.Response) {
	t.Helper()
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Errorf("caching headers Cache-Control=%q Pragma=%q", r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
	}
}

// tokenWorks reports whether tok still authenticates on the API.
func tokenWorks(env *servertest.Env, tok string) bool {
	return env.As(tok, "GET", "/v1/me", nil).Status == http.StatusOK
}

// revocationEntries lists the token.revoke audit entries.
func revocationEntries(t *testing.T, env *servertest.Env, admin string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range auditEntries(t, env, admin) {
		if e["action"] == "token.revoke" {
			out = append(out, e)
		}
	}
	return out
}

// TestRevokeIntrospectClientAuthShapes: RFC 6749 §2.3 / §5.2 on the
// revocation and introspection endpoints: one authentication method per
// request, invalid_client is 401 with WWW-Authenticate: Basic exactly when
// Basic was used, every answer no-store, and no refused request revokes.
func TestRevokeIntrospectClientAuthShapes(t *testing.T) {
	env := servertest.Start(t)
	admin, _, _, c := developer(t, env)
	at := withAPIToken(t, env, admin)
	target := accessToken(t, clientToken(env, c))
	for _, path := range []string{"/oauth/revoke", "/oauth/introspect"} {
		cases := []struct {
			name    string
			v       url.Values
			headers []string
			status  int
			code    string
			wwwAuth string
		}{
			{"basic and body secret", url.Values{"client_secret": {c.ClientSecret}}, []string{"Authorization", clientBasic(c.ClientID, c.ClientSecret)}, 400, "invalid_request", ""},
			{"basic and other body client_id", url.Values{"client_id": {"gci_other"}}, []string{"Authorization", clientBasic(c.ClientID, c.ClientSecret)}, 400, "invalid_request", ""},
			{"bearer and body client_id", url.Values{"client_id": {c.ClientID}}, []string{"Authorization", "Bearer " + admin}, 400, "invalid_request", ""},
			{"bearer and body client credentials", url.Values{"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}, []string{"Authorization", "Bearer " + admin}, 400, "invalid_request", ""},
			{"API token and basic", nil, []string{"Authorization", clientBasic(c.ClientID, c.ClientSecret), "X-API-Token", at.Token}, 400, "invalid_request", ""},
			{"API token and body client credentials", url.Values{"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}, []string{"X-API-Token", at.Token}, 400, "invalid_request", ""},
			{"API token and bearer", nil, []string{"Authorization", "Bearer " + admin, "X-API-Token", at.Token}, 400, "invalid_request", ""},
			{"wrong secret in basic", nil, []string{"Authorization", clientBasic(c.ClientID, "gcs_wrong")}, 401, "invalid_client", `Basic realm="gatehouse"`},
			{"unknown client in basic", nil, []string{"Authorization", clientBasic("gci_unknown", c.ClientSecret)}, 401, "invalid_client", `Basic realm="gatehouse"`},
			{"wrong secret in body", url.Values{"client_id": {c.ClientID}, "client_secret": {"gcs_wrong"}}, nil, 401, "invalid_client", ""},
			{"secret without id in body", url.Values{"client_secret": {c.ClientSecret}}, nil, 401, "invalid_client", ""},
			{"repeated token", url.Values{"token": {target, target}}, nil, 400, "invalid_request", ""},
		}
		for _, tc := range cases {
			t.Run(strings.TrimPrefix(path, "/oauth/")+"/"+tc.name, func(t *testing.T) {
				v := url.Values{"token": {target}}
				for k, vs := range tc.v {
					v[k] = vs
				}
				r := postForm(env, path, v, tc.headers...)
				servertest.Expect(t, r, tc.status, tc.code)
				expectNoStore(t, r)
				if got := r.Header.Get("WWW-Authenticate"); got != tc.wwwAuth {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.wwwAuth)
				}
				if _, ok := r.Map(t)["error_description"]; !ok {
					t.Errorf("no error_description: %s", r.Body)
				}
			})
		}
	}
	if !tokenWorks(env, target) {
		t.Fatal("a refused revocation revoked the token")
	}
}

// TestRevokeNoOracle: RFC 7009 §2.2 — the answer for an unknown, a
// garbage, a revoked, and a live token of another account is the same 200
// with the same body, whatever the hint, so revocation is no probe; and a
// 200 never leaves the token working.
func TestRevokeNoOracle(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateAccount(admin, "Other", "boss@other.example", "other admin password 1")
	otherTok := env.Login("boss@other.example", "other admin password 1")
	revoked := env.AdminToken()
	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {revoked}}), 200, "")
	cases := map[string]string{
		"unknown well-formed": "gat_000000000000000000000000000000000000000000000000",
		"garbage":             "not-a-token",
		"revoked":             revoked,
		"other account live":  otherTok,
		"refresh-shaped":      "grt_xyz",
		"api-token-shaped":    "gak_xyz",
	}
	var first *servertest.Response
	for name, tok := range cases {
		for _, hint := range []string{"", "access_token", "refresh_token", "bogus_hint"} {
			v := url.Values{"token": {tok}}
			if hint != "" {
				v.Set("token_type_hint", hint)
			}
			r := postForm(env, "/oauth/revoke", v, "Authorization", "Bearer "+admin)
			servertest.Expect(t, r, 200, "")
			expectNoStore(t, r)
			if first == nil {
				first = r
				continue
			}
			if string(r.Body) != string(first.Body) || r.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
				t.Errorf("%s hint %q: body %q ctype %q differ from %q %q", name, hint, r.Body, r.Header.Get("Content-Type"), first.Body, first.Header.Get("Content-Type"))
			}
		}
	}
	// The other account's token, presented by our admin, stops working:
	// possession is proof (SPEC §10.1).
	if tokenWorks(env, otherTok) {
		t.Fatal("a revocation answered 200 and left the token working")
	}
}

// TestRevokeWrongTokenTypeHint: RFC 7009 §2.1 — a wrong hint does not
// stop the server from finding the token.
func TestRevokeWrongTokenTypeHint(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)
	// Revoked by its client (its id sent too): that token alone, so the
	// refresh below still works.
	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {app.AccessToken}, "token_type_hint": {"refresh_token"}, "client_id": {app.ClientID}}), 200, "")
	if tokenWorks(env, app.AccessToken) {
		t.Fatal("access token revoked with hint refresh_token still works")
	}
	// A refresh token with the access_token hint: the lineage ends.
	out := refreshed(t, refresh(env, app.ClientID, app.RefreshToken))
	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {out.RefreshToken}, "token_type_hint": {"access_token"}}), 200, "")
	if tokenWorks(env, out.AccessToken) {
		t.Fatal("refresh token revoked with hint access_token left its access token working")
	}
	servertest.Expect(t, refresh(env, app.ClientID, out.RefreshToken), 400, "invalid_grant")
}

// TestRevokeLeakedEndsLineage: docs/oauth.md — an access or refresh token
// presented by anyone else (another account, a public client it was not
// issued to) is revoked by possession as leaked, with its refresh lineage.
func TestRevokeLeakedEndsLineage(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)
	_, other := env.CreateAccount(admin, "Other", "boss@other.example", "other admin password 1")
	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {app.AccessToken}}, "Authorization", "Bearer "+other), 200, "")
	if tokenWorks(env, app.AccessToken) {
		t.Fatal("leaked access token still works")
	}
	servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 400, "invalid_grant")

	// A public client it was not issued to (another account's API access
	// application) presenting a refresh token.
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
	app2 := enableAPIAccess(t, env, admin, nil)
	otherApp := enableAPIAccess(t, env, other, nil)
	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {app2.RefreshToken}, "client_id": {otherApp.ClientID}}), 200, "")
	if tokenWorks(env, app2.AccessToken) {
		t.Fatal("refresh token revoked by another public client left its access token working")
	}
}

// TestRevokePublicClientWithSecret: a public client (the API access
// application) sending a secret is invalid_client, on revocation and on
// the token endpoint, and nothing is revoked; with an empty Basic secret
// it is the public client it is.
func TestRevokePublicClientWithSecret(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)
	r := postForm(env, "/oauth/revoke", url.Values{"token": {app.AccessToken}}, "Authorization", clientBasic(app.ClientID, "gcs_whatever"))
	servertest.Expect(t, r, 401, "invalid_client")
	if r.Header.Get("WWW-Authenticate") != `Basic realm="gatehouse"` {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	if !tokenWorks(env, app.AccessToken) {
		t.Fatal("a refused revocation revoked the token")
	}
	r = postForm(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {app.RefreshToken}}, "Authorization", clientBasic(app.ClientID, "gcs_whatever"))
	servertest.Expect(t, r, 401, "invalid_client")
	expectNoStore(t, r)
	if r.Header.Get("WWW-Authenticate") != `Basic realm="gatehouse"` {
		t.Errorf("token endpoint WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	r = postForm(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {app.RefreshToken}}, "Authorization", clientBasic(app.ClientID, ""))
	servertest.Expect(t, r, 200, "")
}

// TestRevokeBearerWithBodyClient: a bearer token is always authenticated
// — a revoked one is invalid_token — and a bearer token with a client id
// or secret in the body is invalid_request (RFC 6749 §2.3: one method per
// request), never a revocation that drops the bearer token: neither an
// invalid one (unchecked) nor an admin's (unaudited). An admin's
// revocation by bearer token alone is audited.
func TestRevokeBearerWithBodyClient(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	env.CreateUser(op, "second@example.com", memberPW, "admin")
	second := env.Login("second@example.com", memberPW)
	app := enableAPIAccess(t, env, second, nil)
	dead := env.AdminToken()
	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {dead}}), 200, "")

	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {"gat_unknown"}}, "Authorization", "Bearer "+dead), 401, "invalid_token")
	for name, bearer := range map[string]string{"revoked bearer": dead, "admin bearer": op} {
		for _, body := range []url.Values{{"client_id": {app.ClientID}}, {"client_secret": {"gcs_whatever"}}} {
			body.Set("token", app.AccessToken)
			r := postForm(env, "/oauth/revoke", body, "Authorization", "Bearer "+bearer)
			servertest.Expect(t, r, 400, "invalid_request")
			expectNoStore(t, r)
		}
		if !tokenWorks(env, app.AccessToken) {
			t.Fatalf("%s with a body client: refused, yet the token was revoked", name)
		}
	}
	if n := len(revocationEntries(t, env, op)); n != 0 {
		t.Fatalf("%d token.revoke entries after refused revocations", n)
	}
	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {app.RefreshToken}}, "Authorization", "Bearer "+op), 200, "")
	if tokenWorks(env, app.AccessToken) {
		t.Fatal("an admin's revocation of a refresh token left its access token working")
	}
	entries := revocationEntries(t, env, op)
	if len(entries) != 1 || entries[0]["actor"] != servertest.AdminEmail {
		t.Fatalf("token.revoke entries %v, want one by %s", entries, servertest.AdminEmail)
	}
}

// TestIntrospectBearerWithBodyClientCredentials: RFC 6749 §2.3 — "The
// client MUST NOT use more than one authentication method in each
// request". Introspection with a bearer token (invalid or valid) and
// client credentials in the body is invalid_request, not served on the
// body's credentials with the bearer token unchecked.
func TestIntrospectBearerWithBodyClientCredentials(t *testing.T) {
	env := servertest.Start(t)
	admin, _, _, c := developer(t, env)
	target := accessToken(t, clientToken(env, c))
	for name, bearer := range map[string]string{"unknown bearer": "gat_000000000000000000000000000000000000000000000000", "admin bearer": admin} {
		r := postForm(env, "/oauth/introspect", url.Values{"token": {target}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}},
			"Authorization", "Bearer "+bearer)
		servertest.Expect(t, r, 400, "invalid_request")
		if strings.Contains(string(r.Body), "active") {
			t.Errorf("%s: introspected anyway: %s", name, r.Body)
		}
	}
	// Each alone works.
	for _, r := range []*servertest.Response{
		postForm(env, "/oauth/introspect", url.Values{"token": {target}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}),
		postForm(env, "/oauth/introspect", url.Values{"token": {target}}, "Authorization", "Bearer "+admin),
	} {
		servertest.Expect(t, r, 200, "")
		if r.Map(t)["active"] != true {
			t.Fatalf("introspection %s", r.Body)
		}
	}
}

// TestIntrospectWithAPIToken: SPEC §6 — introspection's caller
// authenticates as a developer credential or admin; SPEC §3.2 — an API
// token without a user header is an anonymous admin of its account, and
// §4 takes the API-token header wherever a token is used. The API token
// is authenticated like on the API: a garbage one is invalid_token; acting
// as a member it is that member (forbidden), as an unknown user
// invalid_user.
func TestIntrospectWithAPIToken(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	at := withAPIToken(t, env, admin)
	env.CreateUser(admin, "ann@example.com", memberPW)
	target := env.AdminToken()
	r := postForm(env, "/oauth/introspect", url.Values{"token": {target}}, "X-API-Token", at.Token)
	servertest.Expect(t, r, 200, "")
	expectNoStore(t, r)
	if m := r.Map(t); m["active"] != true || m["username"] != servertest.AdminEmail {
		t.Fatalf("an API token (anonymous admin) introspecting a live token of its account: %s", r.Body)
	}
	servertest.Expect(t, postForm(env, "/oauth/introspect", url.Values{"token": {target}}, "X-API-Token", "gak_garbage"), 401, "invalid_token")
	servertest.Expect(t, postForm(env, "/oauth/introspect", url.Values{"token": {target}}, "X-API-Token", at.Token, "X-User-Email", "ann@example.com"), 403, "forbidden")
	servertest.Expect(t, postForm(env, "/oauth/introspect", url.Values{"token": {target}}, "X-API-Token", at.Token, "X-User-Email", "nobody@example.com"), 403, "invalid_user")
	r = postForm(env, "/oauth/introspect", url.Values{"token": {target}}, "X-API-Token", at.Token, "X-User-Email", servertest.AdminEmail)
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["active"] != true {
		t.Fatalf("an API token acting as an admin: %s", r.Body)
	}
}

// TestRevokeWithAPIToken: SPEC §6 — revocation as an admin of the token's
// account; SPEC §3.2 — an API token acts as an anonymous admin. A garbage
// API token is refused as on the API; a valid one revokes a member's token
// as an admin, audited with the API token as actor (docs/oauth.md).
func TestRevokeWithAPIToken(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	at := withAPIToken(t, env, op)
	env.CreateUser(op, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", "gak_garbage"), 401, "invalid_token")
	r := postForm(env, "/oauth/revoke", url.Values{"token": {ann}}, "X-API-Token", "gak_garbage")
	servertest.Expect(t, r, 401, "invalid_token")
	expectNoStore(t, r)
	if !tokenWorks(env, ann) {
		t.Fatal("a revocation with a garbage API token revoked the token")
	}
	servertest.Expect(t, postForm(env, "/oauth/revoke", url.Values{"token": {ann}}, "X-API-Token", at.Token), 200, "")
	if tokenWorks(env, ann) {
		t.Fatal("not revoked")
	}
	entries := revocationEntries(t, env, op)
	if len(entries) != 1 || entries[0]["credential_id"] != at.ID {
		t.Fatalf("token.revoke entries %v, want one made with API token %s", entries, at.ID)
	}
}

// TestRevokeIntrospectActAsWithoutAPIToken: SPEC §3.2 — "The user header
// is honoured only with an API token; sent with any other credential it
// is 400 invalid_request": with a bearer token, a client credential (Basic
// or body) or a public client id, on introspection and revocation alike,
// and nothing is revoked.
func TestRevokeIntrospectActAsWithoutAPIToken(t *testing.T) {
	env := servertest.Start(t)
	admin, _, _, c := developer(t, env)
	app := enableAPIAccess(t, env, admin, nil)
	target := accessToken(t, clientToken(env, c))
	cases := []struct {
		name    string
		v       url.Values
		headers []string
	}{
		{"bearer", nil, []string{"Authorization", "Bearer " + admin}},
		{"basic", nil, []string{"Authorization", clientBasic(c.ClientID, c.ClientSecret)}},
		{"body client credentials", url.Values{"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}, nil},
		{"public client id", url.Values{"client_id": {app.ClientID}}, nil},
		{"no credential", nil, nil},
	}
	for _, path := range []string{"/oauth/introspect", "/oauth/revoke"} {
		for _, tc := range cases {
			t.Run(strings.TrimPrefix(path, "/oauth/")+"/"+tc.name, func(t *testing.T) {
				v := url.Values{"token": {target}}
				for k, vs := range tc.v {
					v[k] = vs
				}
				r := postForm(env, path, v, append(tc.headers, "X-User-Email", servertest.AdminEmail)...)
				servertest.Expect(t, r, 400, "invalid_request")
				expectNoStore(t, r)
			})
		}
	}
	if !tokenWorks(env, target) {
		t.Fatal("a refused revocation revoked the token")
	}
}

// TestIntrospectExpBoundedByCredential: a client-credentials token stops
// working when its credential expires (docs/scopes.md), so introspection's
// exp (RFC 7662 §2.2: when the token expires) is the credential's expiry
// when that comes first, not the token's own.
func TestIntrospectExpBoundedByCredential(t *testing.T) {
	env := servertest.Start(t)
	_, _, devTok, c := developer(t, env)
	credExp := time.Now().Add(10 * time.Minute).UTC().Truncate(time.Second)
	r := env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "short", "expires_at": credExp.Format(time.RFC3339)})
	servertest.Expect(t, r, 201, "")
	var short credential
	r.JSON(t, &short)
	tok := accessToken(t, clientToken(env, short))
	long := accessToken(t, clientToken(env, c))
	exp := func(tok string) int64 {
		t.Helper()
		in := postForm(env, "/oauth/introspect", url.Values{"token": {tok}}, "Authorization", clientBasic(c.ClientID, c.ClientSecret))
		servertest.Expect(t, in, 200, "")
		m := in.Map(t)
		if m["active"] != true {
			t.Fatalf("introspection %s", in.Body)
		}
		return int64(m["exp"].(float64))
	}
	if got := exp(tok); got != credExp.Unix() {
		t.Errorf("introspection exp %s, want the credential's expiry %s (the token is refused from then on)", time.Unix(got, 0).UTC(), credExp)
	}
	// A credential without expiry leaves the token's own.
	if got := exp(long); got <= credExp.Unix() {
		t.Errorf("exp %s of a token of a credential without expiry is not its own (%s or later)", time.Unix(got, 0).UTC(), credExp)
	}
}

// TestOAuthMetadataMatchesServer: every endpoint the RFC 8414 document
// names answers, and every grant type and client authentication method it
// advertises works.
func TestOAuthMetadataMatchesServer(t *testing.T) {
	env := servertest.Start(t)
	_, _, _, c := developer(t, env)
	r := env.Request("GET", "/.well-known/oauth-authorization-server", nil)
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("metadata content type %q", r.Header.Get("Content-Type"))
	}
	for _, k := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint", "device_authorization_endpoint"} {
		u, _ := m[k].(string)
		if !strings.HasPrefix(u, env.URL) {
			t.Fatalf("%s %q", k, u)
		}
		r := postForm(env, strings.TrimPrefix(u, env.URL), url.Values{"x": {"y"}})
		if r.Status == 404 || r.Status == 405 || r.Status >= 500 {
			t.Errorf("%s %s answered %d", k, u, r.Status)
		}
	}
	for _, g := range toStrings(m["grant_types_supported"]) {
		if postForm(env, "/oauth/token", url.Values{"grant_type": {g}}).Map(t)["error"] == "unsupported_grant_type" {
			t.Errorf("advertised grant %s is unsupported", g)
		}
	}
	methods := strings.Join(toStrings(m["token_endpoint_auth_methods_supported"]), " ")
	for _, want := range []string{"client_secret_basic", "client_secret_post", "none"} {
		if !strings.Contains(methods, want) {
			t.Errorf("token_endpoint_auth_methods_supported %q lacks %s", methods, want)
		}
	}
	accessToken(t, postForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", clientBasic(c.ClientID, c.ClientSecret)))
	accessToken(t, postForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}))
	tok := accessToken(t, clientToken(env, c))
	for _, r := range []*servertest.Response{
		postForm(env, "/oauth/introspect", url.Values{"token": {tok}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}),
		postForm(env, "/oauth/introspect", url.Values{"token": {tok}}, "Authorization", clientBasic(c.ClientID, c.ClientSecret)),
	} {
		servertest.Expect(t, r, 200, "")
		if r.Map(t)["active"] != true {
			t.Errorf("introspection %s", r.Body)
		}
	}
	r = postForm(env, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}})
	servertest.Expect(t, r, 400, "unsupported_grant_type")
	expectNoStore(t, r)
}
