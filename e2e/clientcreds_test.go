package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

type credential struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	CreatedAt    string `json:"created_at"`
}

// developer makes a developer with one credential and returns the admin
// token, the developer's id and token, and the credential.
func developer(t *testing.T, env *servertest.Env) (admin, devID, devTok string, c credential) {
	t.Helper()
	admin = env.AdminToken()
	devID = env.CreateUser(admin, "dev@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/developers/"+devID, nil), 204, "")
	devTok = env.Login("dev@example.com", memberPW)
	r := env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "CI"})
	servertest.Expect(t, r, 201, "")
	r.JSON(t, &c)
	return admin, devID, devTok, c
}

func clientToken(env *servertest.Env, c credential) *servertest.Response {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
	return env.Request("POST", "/v1/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

func accessToken(t *testing.T, r *servertest.Response) string {
	t.Helper()
	servertest.Expect(t, r, 200, "")
	return r.Map(t)["access_token"].(string)
}

func TestClientCredentials(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, devTok, c := developer(t, env)
	if c.Name != "CI" || !strings.HasPrefix(c.ClientID, "gci_") || !strings.HasPrefix(c.ClientSecret, "gcs_") || c.ID == "" || c.CreatedAt == "" {
		t.Fatalf("credential %+v", c)
	}
	// The list never shows the secret.
	list := env.As(devTok, "GET", "/v1/credentials", nil)
	if strings.Contains(string(list.Body), c.ClientSecret) || len(list.Map(t)["data"].([]any)) != 1 {
		t.Fatalf("list %s", list.Body)
	}

	// Form body and HTTP Basic.
	r := clientToken(env, c)
	servertest.Expect(t, r, 200, "")
	body := r.Map(t)
	if body["expires_in"] != 3599.0 || body["token_type"] != "bearer" || body["refresh_token"] != nil {
		t.Fatalf("token %s", r.Body)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(c.ClientID + ":" + c.ClientSecret))
	tok2 := accessToken(t, env.Request("POST", "/oauth/token", "grant_type=client_credentials",
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic "+basic))
	// The token acts as the developer.
	me := env.As(tok2, "GET", "/v1/me", nil).Map(t)
	if me["user"].(map[string]any)["id"] != devID || me["auth_method"] != "client_credentials" || me["client_id"] != c.ClientID {
		t.Fatalf("me %v", me)
	}
	servertest.Expect(t, env.As(tok2, "GET", "/v1/settings", nil), 403, "forbidden")

	// Several credentials per developer; deleting one stops its tokens.
	var c2 credential
	env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "Second"}).JSON(t, &c2)
	tok3 := accessToken(t, clientToken(env, c2))
	servertest.Expect(t, env.As(devTok, "DELETE", "/v1/credentials/"+c2.ID, nil), 204, "")
	servertest.Expect(t, env.As(tok3, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, clientToken(env, c2), 401, "invalid_client")
	servertest.Expect(t, env.As(devTok, "DELETE", "/v1/credentials/"+c2.ID, nil), 404, "not_found")
	servertest.Expect(t, env.As(tok2, "GET", "/v1/me", nil), 200, "")

	// Non-developers may not manage credentials of their own, and a
	// member none at all.
	for _, req := range []struct{ m, p string }{{"POST", "/v1/credentials"}, {"GET", "/v1/credentials"}} {
		servertest.Expect(t, env.As(admin, req.m, req.p, map[string]string{"name": "x"}), 403, "forbidden")
	}
	env.CreateUser(admin, "member@example.com", memberPW)
	member := env.Login("member@example.com", memberPW)
	for _, req := range []struct{ m, p string }{{"POST", "/v1/credentials"}, {"GET", "/v1/credentials"},
		{"GET", "/v1/credentials?user_id=" + devID}, {"DELETE", "/v1/credentials/" + c.ID}} {
		servertest.Expect(t, env.As(member, req.m, req.p, map[string]string{"name": "x"}), 403, "forbidden")
	}
	// Only admins manage the developer role.
	servertest.Expect(t, env.As(devTok, "PUT", "/v1/developers/"+devID, nil), 403, "forbidden")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/developers/usr_nobody", nil), 404, "not_found")
}

// TestAdminManagesAnyCredential: an admin lists and deletes any user's
// client credentials, also after the user lost the developer role; a
// developer sees only their own.
func TestAdminManagesAnyCredential(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, devTok, c := developer(t, env)
	tok := accessToken(t, clientToken(env, c))
	otherID := env.CreateUser(admin, "other@example.com", memberPW, "developer")
	other := env.Login("other@example.com", memberPW)
	servertest.Expect(t, env.As(other, "GET", "/v1/credentials?user_id="+devID, nil), 403, "forbidden")
	servertest.Expect(t, env.As(other, "DELETE", "/v1/credentials/"+c.ID, nil), 404, "not_found")
	servertest.Expect(t, env.As(admin, "GET", "/v1/credentials?user_id=usr_nobody", nil), 404, "not_found")
	if r := env.As(admin, "GET", "/v1/credentials?user_id="+otherID, nil); len(r.Map(t)["data"].([]any)) != 0 {
		t.Fatalf("another developer's list: %s", r.Body)
	}

	// Removing the role keeps the credential working; the admin still
	// sees it and deletes it, and its token stops at once.
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/developers/"+devID, nil), 200, "")
	servertest.Expect(t, env.As(devTok, "GET", "/v1/credentials", nil), 403, "forbidden")
	r := env.As(admin, "GET", "/v1/credentials?user_id="+devID, nil)
	servertest.Expect(t, r, 200, "")
	data := r.Map(t)["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["client_id"] != c.ClientID || strings.Contains(string(r.Body), c.ClientSecret) {
		t.Fatalf("the admin's list: %s", r.Body)
	}
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/credentials/"+c.ID, nil), 204, "")
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, clientToken(env, c), 401, "invalid_client")
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/credentials/"+c.ID, nil), 404, "not_found")
	e := findAudit(t, auditEntries(t, env, admin), "credential.delete")
	if d := e["details"].(map[string]any); d["owner_id"] != devID || d["name"] != "CI" || e["target_id"] != c.ID {
		t.Fatalf("audit entry %v", e)
	}
}

func TestRemovingDeveloperRole(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, _, c := developer(t, env)
	tok := accessToken(t, clientToken(env, c))

	r := env.As(admin, "DELETE", "/v1/developers/"+devID, nil)
	servertest.Expect(t, r, 200, "")
	if string(r.Body) != `{"active_credentials":1}`+"\n" {
		t.Fatalf("answer %s", r.Body)
	}
	// They keep working, as the reference platform documents.
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")
	tok = accessToken(t, clientToken(env, c))

	r = env.As(admin, "DELETE", "/v1/developers/"+devID+"?revoke_credentials=true", nil)
	servertest.Expect(t, r, 200, "")
	if string(r.Body) != `{"active_credentials":0}`+"\n" {
		t.Fatalf("answer %s", r.Body)
	}
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, clientToken(env, c), 401, "invalid_client")
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/developers/"+devID+"?revoke_credentials=maybe", nil), 400, "invalid_request")
}

// TestTokenEndpointErrors is RFC 6749 §5.2's error matrix, one case a row.
func TestTokenEndpointErrors(t *testing.T) {
	env := servertest.Start(t)
	_, _, _, c := developer(t, env)
	form := "application/x-www-form-urlencoded"
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	cases := []struct {
		name, method, body, ctype, authz string
		status                           int
		code, wwwAuth                    string
	}{
		{"missing grant_type", "POST", "client_id=a", form, "", 400, "invalid_request", ""},
		{"unknown grant_type", "POST", "grant_type=urn:example:unknown&code=x", form, "", 400, "unsupported_grant_type", ""},
		{"repeated parameter", "POST", "grant_type=client_credentials&grant_type=client_credentials&client_id=" + c.ClientID + "&client_secret=" + c.ClientSecret, form, "", 400, "invalid_request", ""},
		{"basic and body credentials", "POST", "grant_type=client_credentials&client_secret=" + c.ClientSecret, form, basic(c.ClientID, c.ClientSecret), 400, "invalid_request", ""},
		{"no client authentication", "POST", "grant_type=client_credentials", form, "", 401, "invalid_client", ""},
		{"wrong secret in body", "POST", "grant_type=client_credentials&client_id=" + c.ClientID + "&client_secret=gcs_wrong", form, "", 401, "invalid_client", ""},
		{"wrong secret in basic", "POST", "grant_type=client_credentials", form, basic(c.ClientID, "gcs_wrong"), 401, "invalid_client", `Basic realm="gatehouse"`},
		{"unknown client in basic", "POST", "grant_type=client_credentials", form, basic("gci_unknown", c.ClientSecret), 401, "invalid_client", `Basic realm="gatehouse"`},
		{"malformed basic", "POST", "grant_type=client_credentials", form, "Basic !!!", 400, "invalid_request", ""},
		{"bearer on the token endpoint", "POST", "grant_type=client_credentials", form, "Bearer x", 400, "invalid_request", ""},
		{"bad refresh token", "POST", "grant_type=refresh_token&client_id=gci_x&refresh_token=grt_x", form, "", 400, "invalid_grant", ""},
		{"bad password", "POST", "grant_type=password&username=admin@example.com&password=nope", form, "", 400, "invalid_grant", ""},
		{"password grant without password", "POST", "grant_type=password&username=admin@example.com", form, "", 400, "invalid_request", ""},
		{"malformed json", "POST", `{"grant_type":`, "application/json", "", 400, "invalid_request", ""},
		{"json number value", "POST", `{"grant_type":1}`, "application/json", "", 400, "invalid_request", ""},
		{"json repeated key", "POST", `{"grant_type":"password","grant_type":"password"}`, "application/json", "", 400, "invalid_request", ""},
		{"GET", "GET", "", "", "", 405, "method_not_allowed", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			var hdr []string
			if tc.ctype != "" {
				hdr = append(hdr, "Content-Type", tc.ctype)
			}
			if tc.authz != "" {
				hdr = append(hdr, "Authorization", tc.authz)
			}
			r := env.Request(tc.method, "/oauth/token", body, hdr...)
			servertest.Expect(t, r, tc.status, tc.code)
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
				t.Fatalf("caching headers %v", r.Header)
			}
			if got := r.Header.Get("WWW-Authenticate"); got != tc.wwwAuth {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.wwwAuth)
			}
		})
	}
}

// TestClientCredentialsWithCurl runs the reference guide's request, then
// creates a workspace with the token.
func TestClientCredentialsWithCurl(t *testing.T) {
	curl := testenv.RequireTool(t, "curl")
	env := servertest.Start(t)
	_, _, _, c := developer(t, env)
	out, err := exec.Command(curl, "-s", "--request", "POST", "--url", env.URL+"/v1/oauth/token",
		"--header", "Content-Type: application/x-www-form-urlencoded",
		"--data-urlencode", "client_id="+c.ClientID, "--data-urlencode", "client_secret="+c.ClientSecret,
		"--data-urlencode", "grant_type=client_credentials").Output()
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.ExpiresIn != 3599 {
		t.Fatalf("curl got %s", out)
	}
	out, err = exec.Command(curl, "-s", "-w", "\n%{http_code}", "--request", "POST", "--url", env.URL+"/v1/workspaces",
		"--header", "Authorization: Bearer "+tok.AccessToken, "--header", "Content-Type: application/json",
		"--data", `{"name":"Foo","description":"Bar"}`).Output()
	if err != nil || !strings.HasSuffix(string(out), "\n201") || !strings.Contains(string(out), `"name":"Foo"`) {
		t.Fatalf("create workspace: %v %s", err, out)
	}
}

// TestOAuth2Clients uses golang.org/x/oauth2 unchanged.
func TestOAuth2Clients(t *testing.T) {
	env := servertest.Start(t)
	_, devID, _, c := developer(t, env)
	ctx := context.Background()
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: env.URL + "/v1/oauth/token", AuthStyle: style}
		resp, err := cc.Client(ctx).Get(env.URL + "/v1/me")
		if err != nil {
			t.Fatal(err)
		}
		var me struct {
			User struct{ ID string } `json:"user"`
		}
		json.NewDecoder(resp.Body).Decode(&me)
		resp.Body.Close()
		if resp.StatusCode != 200 || me.User.ID != devID {
			t.Fatalf("style %v: %d %+v", style, resp.StatusCode, me)
		}
	}
	pc := &oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := pc.PasswordCredentialsToken(ctx, "dev@example.com", memberPW)
	if err != nil || tok.AccessToken == "" || tok.Expiry.IsZero() {
		t.Fatalf("password token %+v %v", tok, err)
	}
	if _, err := pc.PasswordCredentialsToken(ctx, "dev@example.com", "wrong"); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := (&clientcredentials.Config{ClientID: c.ClientID, ClientSecret: "gcs_nope", TokenURL: env.URL + "/oauth/token"}).Token(ctx); err == nil ||
		!strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestRevocationAndIntrospection(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, c := developer(t, env)
	form := func(v url.Values) (string, []string) {
		return v.Encode(), []string{"Content-Type", "application/x-www-form-urlencoded"}
	}
	tok := accessToken(t, clientToken(env, c))

	// Introspection by the developer's credential (Basic).
	body, hdr := form(url.Values{"token": {tok}})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret))
	r := env.Request("POST", "/oauth/introspect", body, append(hdr, "Authorization", basic)...)
	servertest.Expect(t, r, 200, "")
	in := r.Map(t)
	if in["active"] != true || in["client_id"] != c.ClientID || in["username"] != "dev@example.com" || in["token_type"] != "bearer" || in["exp"] == nil {
		t.Fatalf("introspection %s", r.Body)
	}
	// By an admin's bearer token; a member may not.
	r = env.Request("POST", "/oauth/introspect", body, append(hdr, "Authorization", "Bearer "+admin)...)
	if r.Map(t)["active"] != true {
		t.Fatalf("admin introspection %s", r.Body)
	}
	env.CreateUser(admin, "member@example.com", memberPW)
	servertest.Expect(t, env.Request("POST", "/oauth/introspect", body, append(hdr, "Authorization", "Bearer "+env.Login("member@example.com", memberPW))...), 403, "forbidden")
	servertest.Expect(t, env.Request("POST", "/oauth/introspect", body, hdr...), 401, "invalid_client")
	// Another account's admin learns nothing.
	_, other := env.CreateAccount(admin, "Other", "boss@other.example", "other admin password")
	r = env.Request("POST", "/oauth/introspect", body, append(hdr, "Authorization", "Bearer "+other)...)
	if string(r.Body) != `{"active":false}`+"\n" {
		t.Fatalf("other account introspection %s", r.Body)
	}
	// ... but holding it is proof enough to revoke it (SPEC §10.1): a 200
	// never leaves it working.
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", body, append(hdr, "Authorization", "Bearer "+other)...), 200, "")
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	tok = accessToken(t, clientToken(env, c))
	body, _ = form(url.Values{"token": {tok}})

	// Revocation with the token itself; unknown tokens get 200 too.
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", body, hdr...), 200, "")
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	r = env.Request("POST", "/oauth/introspect", body, append(hdr, "Authorization", basic)...)
	if r.Map(t)["active"] != false {
		t.Fatalf("revoked token introspects %s", r.Body)
	}
	unknown, _ := form(url.Values{"token": {"gat_unknown"}})
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", unknown, hdr...), 200, "")
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", "", hdr...), 400, "invalid_request")
	// The owner revokes with their own password-grant token.
	body, _ = form(url.Values{"token": {accessToken(t, clientToken(env, c))}})
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", body, append(hdr, "Authorization", "Bearer "+devTok)...), 200, "")

	// Revoking a refresh token ends its lineage.
	app := enableAPIAccess(t, env, admin, nil)
	body, _ = form(url.Values{"token": {app.RefreshToken}, "token_type_hint": {"refresh_token"}})
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", body, hdr...), 200, "")
	servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 400, "invalid_grant")
}

func TestMetadata(t *testing.T) {
	env := servertest.Start(t)
	r := env.Request("GET", "/.well-known/oauth-authorization-server", nil)
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	if m["issuer"] != env.URL || m["token_endpoint"] != env.URL+"/oauth/token" || m["revocation_endpoint"] != env.URL+"/oauth/revoke" ||
		m["introspection_endpoint"] != env.URL+"/oauth/introspect" || len(m["grant_types_supported"].([]any)) != 5 ||
		m["device_authorization_endpoint"] != env.URL+"/oauth/device_authorization" ||
		m["authorization_endpoint"] != env.URL+"/oauth/authorize" {
		t.Fatalf("metadata %s", r.Body)
	}
}

// TestCredentialNamesUnique: a name is unique among an owner's live
// credentials, in any case, for client credentials and API tokens alike
// (409); another owner, or a deleted credential, frees it.
func TestCredentialNamesUnique(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, c := developer(t, env) // c is named "CI"
	servertest.Expect(t, env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "ci"}), 409, "conflict")
	r := env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "Deploy"})
	servertest.Expect(t, r, 201, "")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+r.Map(t)["id"].(string), map[string]string{"name": "CI"}), 409, "conflict")
	env.CreateUser(admin, "dev2@example.com", memberPW, "developer")
	servertest.Expect(t, env.As(env.Login("dev2@example.com", memberPW), "POST", "/v1/credentials", map[string]string{"name": "CI"}), 201, "")
	servertest.Expect(t, env.As(devTok, "DELETE", "/v1/credentials/"+c.ID, nil), 204, "")
	servertest.Expect(t, env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "CI"}), 201, "")

	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "Zapier"})
	servertest.Expect(t, r, 201, "")
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "ZAPIER"}), 409, "conflict")
	// Rolling keeps the name: the old token is on its way out.
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens/"+r.Map(t)["id"].(string)+"/roll", map[string]int{"overlap_seconds": 60}), 201, "")
}

// TestPatchUserRevokesCredentials: PATCH /v1/users/{id} taking the
// developer role away keeps the credentials working, unless it asks to
// revoke them too.
func TestPatchUserRevokesCredentials(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, _, c := developer(t, env)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{"roles": []string{}}), 200, "")
	tok := accessToken(t, clientToken(env, c))
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{"roles": []string{"developer"}}), 200, "")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{"roles": []string{}, "revoke_credentials": true}), 200, "")
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, clientToken(env, c), 401, "invalid_client")
	findAudit(t, auditEntries(t, env, admin), "credential.revoke_all")
}
