package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/throttle"
	_ "github.com/jackc/pgx/v5/stdlib" // reads the PostgreSQL store directly
)

const memberPW = "member password 1"

func TestPasswordGrantForms(t *testing.T) {
	env := servertest.Start(t)
	email, pw := servertest.AdminEmail, servertest.AdminPassword
	form := "username=" + strings.ReplaceAll(email, "@", "%40") + "&password=" + strings.ReplaceAll(pw, " ", "+")
	cases := []struct {
		name string
		do   func() *servertest.Response
	}{
		{"form body", func() *servertest.Response {
			return env.Request("POST", "/authorization", form, "Content-Type", "application/x-www-form-urlencoded")
		}},
		{"json body", func() *servertest.Response {
			return env.Request("POST", "/authorization", map[string]string{"username": email, "password": pw})
		}},
		{"query string", func() *servertest.Response { return env.Request("POST", "/authorization?"+form, nil) }},
		{"token endpoint", func() *servertest.Response {
			return env.Request("POST", "/oauth/token", form+"&grant_type=password", "Content-Type", "application/x-www-form-urlencoded")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.do()
			servertest.Expect(t, r, http.StatusOK, "")
			if got := r.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}
			var out struct {
				TokenType   string `json:"token_type"`
				AccessToken string `json:"access_token"`
				ExpiresIn   int    `json:"expires_in"`
			}
			r.JSON(t, &out)
			if out.TokenType != "bearer" || out.ExpiresIn != 3600 || !strings.HasPrefix(out.AccessToken, "gat_") {
				t.Fatalf("answer %s", r.Body)
			}
			me := env.As(out.AccessToken, "GET", "/v1/me", nil)
			servertest.Expect(t, me, http.StatusOK, "")
			m := me.Map(t)
			if m["user"].(map[string]any)["email"] != email || m["auth_method"] != "password" {
				t.Fatalf("me %s", me.Body)
			}
		})
	}
}

func TestPasswordGrantFailuresIdentical(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "nopass@example.com", "")
	disabled := env.CreateUser(admin, "disabled@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+disabled, map[string]string{"status": "disabled"}), 200, "")

	attempts := []struct{ name, user, pw string }{
		{"wrong password", servertest.AdminEmail, "not the password"},
		{"unknown user", "nobody@example.com", "whatever password"},
		{"disabled user, right password", "disabled@example.com", memberPW},
		{"user without password", "nopass@example.com", "some password"},
		{"upper-case unknown", "NOBODY2@EXAMPLE.COM", "x"},
	}
	var first *servertest.Response
	for _, a := range attempts {
		r := env.Request("POST", "/authorization", map[string]string{"username": a.user, "password": a.pw})
		servertest.Expect(t, r, http.StatusBadRequest, "invalid_grant")
		if first == nil {
			first = r
			if string(r.Body) != `{"error":"invalid_grant","error_description":"Invalid username or password"}`+"\n" {
				t.Fatalf("body %q", r.Body)
			}
			continue
		}
		if !bytes.Equal(r.Body, first.Body) {
			t.Errorf("%s: body %q differs from %q", a.name, r.Body, first.Body)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Cache-Control", "Pragma", "WWW-Authenticate"} {
			if r.Header.Get(h) != first.Header.Get(h) {
				t.Errorf("%s: header %s %q differs from %q", a.name, h, r.Header.Get(h), first.Header.Get(h))
			}
		}
	}
}

func TestPasswordThrottle(t *testing.T) {
	t.Run("per username", func(t *testing.T) {
		env := servertest.Start(t)
		for i := 0; i < throttle.DefaultUserAddrLimit; i++ {
			r := env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": "wrong"})
			servertest.Expect(t, r, http.StatusBadRequest, "invalid_grant")
		}
		// Even the right password is refused while throttled.
		r := env.Request("POST", "/authorization", map[string]string{"username": "ADMIN@example.com", "password": servertest.AdminPassword})
		servertest.Expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("Retry-After %q", ra)
		}
		// Another username from the same address is still served.
		env2 := env.Request("POST", "/authorization", map[string]string{"username": "other@example.com", "password": "wrong"})
		servertest.Expect(t, env2, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("per address", func(t *testing.T) {
		env := servertest.Start(t)
		for i := 0; i < throttle.DefaultAddrLimit; i++ {
			r := env.Request("POST", "/authorization", map[string]string{"username": "u" + strconv.Itoa(i) + "@example.com", "password": "wrong"})
			servertest.Expect(t, r, http.StatusBadRequest, "invalid_grant")
		}
		r := env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword},
			"X-Forwarded-For", "203.0.113.9")
		servertest.Expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
	})
}

func TestUnauthenticatedShapes(t *testing.T) {
	env := servertest.Start(t)
	cases := []struct {
		name, authz, code, wwwAuth string
	}{
		{"no credentials", "", "unauthorized", `Bearer realm="gatehouse"`},
		{"garbage token", "Bearer nonsense", "invalid_token", `Bearer error="invalid_token"`},
		{"well-formed unknown token", "Bearer gat_000000000000000000000000000000000000000000000000", "invalid_token", `Bearer error="invalid_token"`},
		{"basic scheme", "Basic YTpi", "invalid_token", `Bearer error="invalid_token"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.authz != "" {
				hdr = []string{"Authorization", c.authz}
			}
			r := env.Request("GET", "/v1/me", nil, hdr...)
			servertest.Expect(t, r, http.StatusUnauthorized, c.code)
			if got := r.Header.Get("WWW-Authenticate"); got != c.wwwAuth {
				t.Fatalf("WWW-Authenticate %q, want %q", got, c.wwwAuth)
			}
			if _, ok := r.Map(t)["error_description"]; !ok {
				t.Fatalf("no error_description: %s", r.Body)
			}
		})
	}
}

func TestMemberForbiddenOnAdminRoutes(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	id := env.CreateUser(admin, "member@example.com", memberPW)
	dev := env.CreateUser(admin, "dev@example.com", memberPW, "developer")
	tok := env.Login("member@example.com", memberPW)
	devTok := env.Login("dev@example.com", memberPW)
	routes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/users", map[string]any{"email": "x@example.com", "password": "long enough"}},
		{"PATCH", "/v1/users/" + id, map[string]any{"roles": []string{"admin"}}},
		{"PATCH", "/v1/users/" + dev, map[string]any{"status": "disabled"}},
		{"GET", "/v1/settings", nil},
		{"PUT", "/v1/settings", map[string]any{"password_grant_enabled": false}},
		{"GET", "/v1/audit", nil},
		{"POST", "/v1/accounts", map[string]any{"name": "x", "admin_email": "y@example.com", "admin_password": "long enough"}},
	}
	for _, who := range []struct{ name, tok string }{{"member", tok}, {"developer", devTok}} {
		for _, rt := range routes {
			t.Run(who.name+" "+rt.method+" "+rt.path, func(t *testing.T) {
				servertest.Expect(t, env.As(who.tok, rt.method, rt.path, rt.body), http.StatusForbidden, "forbidden")
			})
		}
	}
	// The member's own role did not change.
	r := env.As(admin, "GET", "/v1/users/"+id, nil)
	if roles := r.Map(t)["roles"].([]any); len(roles) != 0 {
		t.Fatalf("roles changed: %s", r.Body)
	}
	// An admin who is not the operator cannot create accounts either.
	env.CreateUser(admin, "admin2@example.com", memberPW, "admin")
	servertest.Expect(t, env.As(env.Login("admin2@example.com", memberPW), "POST", "/v1/accounts",
		map[string]any{"name": "x", "admin_email": "y@example.com", "admin_password": "long enough"}), http.StatusForbidden, "forbidden")
}

func TestWorkspacePermissions(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	annID := env.CreateUser(admin, "ann@example.com", memberPW)
	bobID := env.CreateUser(admin, "bob@example.com", memberPW)
	ann, bob := env.Login("ann@example.com", memberPW), env.Login("bob@example.com", memberPW)

	r := env.As(ann, "POST", "/v1/workspaces", map[string]string{"name": "Foo", "description": "Bar"})
	servertest.Expect(t, r, http.StatusCreated, "")
	ws := r.Map(t)
	wsID := ws["id"].(string)
	if ws["owner_id"] != annID || ws["name"] != "Foo" || ws["description"] != "Bar" || ws["created_at"] == nil {
		t.Fatalf("workspace %s", r.Body)
	}

	// Bob cannot see it: 404 for everything, and an empty list.
	servertest.Expect(t, env.As(bob, "GET", "/v1/workspaces/"+wsID, nil), 404, "not_found")
	servertest.Expect(t, env.As(bob, "DELETE", "/v1/workspaces/"+wsID, nil), 404, "not_found")
	servertest.Expect(t, env.As(bob, "PUT", "/v1/workspaces/"+wsID+"/members/"+bobID, nil), 404, "not_found")
	if n := len(env.As(bob, "GET", "/v1/workspaces", nil).Map(t)["data"].([]any)); n != 0 {
		t.Fatalf("bob sees %d workspaces", n)
	}
	// The admin sees it.
	servertest.Expect(t, env.As(admin, "GET", "/v1/workspaces/"+wsID, nil), 200, "")

	// As a member Bob sees it but may not delete it.
	servertest.Expect(t, env.As(ann, "PUT", "/v1/workspaces/"+wsID+"/members/"+bobID, nil), 204, "")
	servertest.Expect(t, env.As(ann, "PUT", "/v1/workspaces/"+wsID+"/members/"+bobID, nil), 204, "")
	servertest.Expect(t, env.As(bob, "GET", "/v1/workspaces/"+wsID, nil), 200, "")
	meta := env.As(bob, "GET", "/v1/metadata/workspace", nil).Map(t)["data"].([]any)
	if len(meta) != 1 || meta[0].(map[string]any)["access"] != "member" {
		t.Fatalf("metadata %v", meta)
	}
	servertest.Expect(t, env.As(bob, "DELETE", "/v1/workspaces/"+wsID, nil), 403, "forbidden")
	members := env.As(bob, "GET", "/v1/workspaces/"+wsID+"/members", nil).Map(t)["data"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["user_id"] != bobID {
		t.Fatalf("members %v", members)
	}
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/workspaces/"+wsID+"/members/"+bobID, nil), 204, "")
	servertest.Expect(t, env.As(bob, "GET", "/v1/workspaces/"+wsID, nil), 404, "not_found")

	// The owner deletes it.
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/workspaces/"+wsID, nil), 204, "")
	servertest.Expect(t, env.As(admin, "GET", "/v1/workspaces/"+wsID, nil), 404, "not_found")
}

func TestOtherAccountIsInvisible(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	// Things in the default account.
	userID := env.CreateUser(op, "ann@example.com", memberPW)
	wsID := env.As(op, "POST", "/v1/workspaces", map[string]string{"name": "Mine"}).Map(t)["id"].(string)

	_, other := env.CreateAccount(op, "Other Inc", "boss@other.example", "other admin password")
	otherUser := env.CreateUser(other, "worker@other.example", memberPW)
	otherWS := env.As(other, "POST", "/v1/workspaces", map[string]string{"name": "Theirs"}).Map(t)["id"].(string)

	for _, c := range []struct {
		name, method, path string
		body               any
	}{
		{"get user", "GET", "/v1/users/" + userID, nil},
		{"patch user", "PATCH", "/v1/users/" + userID, map[string]string{"status": "disabled"}},
		{"get workspace", "GET", "/v1/workspaces/" + wsID, nil},
		{"delete workspace", "DELETE", "/v1/workspaces/" + wsID, nil},
		{"members", "GET", "/v1/workspaces/" + wsID + "/members", nil},
		{"add member", "PUT", "/v1/workspaces/" + wsID + "/members/" + otherUser, nil},
		{"add foreign user to own workspace", "PUT", "/v1/workspaces/" + otherWS + "/members/" + userID, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			servertest.Expect(t, env.As(other, c.method, c.path, c.body), http.StatusNotFound, "not_found")
		})
	}
	users := env.As(other, "GET", "/v1/users", nil).Map(t)["data"].([]any)
	if len(users) != 2 {
		t.Fatalf("other account lists %d users", len(users))
	}
	// Nothing changed in the default account.
	r := env.As(op, "GET", "/v1/users/"+userID, nil)
	if r.Map(t)["status"] != "active" {
		t.Fatalf("user changed: %s", r.Body)
	}
	servertest.Expect(t, env.As(op, "GET", "/v1/workspaces/"+wsID, nil), 200, "")
	// E-mails are unique across the server.
	r = env.As(other, "POST", "/v1/users", map[string]any{"email": "ANN@example.com", "password": memberPW})
	servertest.Expect(t, r, http.StatusConflict, "conflict")
}

func TestDisablingUserRevokesAtOnce(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	id := env.CreateUser(admin, "ann@example.com", memberPW)
	tok := env.Login("ann@example.com", memberPW)
	tok2 := env.Login("ann@example.com", memberPW)
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")

	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+id, map[string]string{"status": "disabled"}), 200, "")
	for _, tk := range []string{tok, tok2} {
		servertest.Expect(t, env.As(tk, "GET", "/v1/me", nil), http.StatusUnauthorized, "invalid_token")
	}
	// Re-enabling brings no token back.
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+id, map[string]string{"status": "active"}), 200, "")
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), http.StatusUnauthorized, "invalid_token")
	servertest.Expect(t, env.As(env.Login("ann@example.com", memberPW), "GET", "/v1/me", nil), 200, "")
}

func TestUserPatch(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	id := env.CreateUser(admin, "ann@example.com", memberPW)
	r := env.As(admin, "PATCH", "/v1/users/"+id, map[string]any{"name": "Ann", "roles": []string{"developer", "admin", "admin"}})
	servertest.Expect(t, r, 200, "")
	if m := r.Map(t); m["name"] != "Ann" || len(m["roles"].([]any)) != 2 {
		t.Fatalf("patched %s", r.Body)
	}
	// A new password: the old one stops working, the new one works.
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+id, map[string]any{"password": "a brand new password"}), 200, "")
	servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW}), 400, "invalid_grant")
	env.Login("ann@example.com", "a brand new password")
	for _, bad := range []map[string]any{
		{"roles": []string{"root"}},
		{"status": "sleeping"},
		{"password": "short"},
		{"name": "two\nlines"},
		{"email": "new@example.com"},
	} {
		servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+id, bad), 400, "invalid_request")
	}
	if m := env.As(admin, "GET", "/v1/users/"+id, nil).Map(t); m["name"] != "Ann" || m["status"] != "active" {
		t.Fatalf("bad patches changed the user: %v", m)
	}
}

func TestSettings(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	r := env.As(admin, "GET", "/v1/settings", nil)
	want := `{"rate_limit":{"daily":50000,"burst":100,"burst_window_seconds":20},"token_lifetimes":{"password_seconds":3600,"client_credentials_seconds":3599},"password_grant_enabled":true,"custom_scopes":[],"max_credential_lifetime_days":0,"max_credentials_per_user":100,"max_api_tokens_per_account":500,"platform_scopes":[],"role_scopes":{},"leak_policy":"revoke","require_mfa":"none","third_party_apps":"approved","sso":null}` + "\n"
	if string(r.Body) != want {
		t.Fatalf("settings %s", r.Body)
	}
	// One bad value: nothing changes.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{
		"rate_limit": map[string]int{"burst": 10, "daily": 0}}), 400, "invalid_request")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": -1}}), 400, "invalid_request")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", `{"rate_limit":{"burst":"10"}}`, "Content-Type", "application/json"), 400, "invalid_request")
	if got := env.As(admin, "GET", "/v1/settings", nil); string(got.Body) != want {
		t.Fatalf("bad PUT changed settings: %s", got.Body)
	}
	r = env.As(admin, "PUT", "/v1/settings", map[string]any{"token_lifetimes": map[string]int{"password_seconds": 600}, "password_grant_enabled": true})
	servertest.Expect(t, r, 200, "")
	var out struct {
		TokenLifetimes struct {
			PasswordSeconds int `json:"password_seconds"`
		} `json:"token_lifetimes"`
		RateLimit struct {
			Burst int `json:"burst"`
		} `json:"rate_limit"`
	}
	r.JSON(t, &out)
	if out.TokenLifetimes.PasswordSeconds != 600 || out.RateLimit.Burst != 100 {
		t.Fatalf("settings %s", r.Body)
	}
	login := env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword})
	if login.Map(t)["expires_in"].(float64) != 600 {
		t.Fatalf("lifetime not applied: %s", login.Body)
	}
	// Turning the password grant off.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"password_grant_enabled": false}), 200, "")
	servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword}),
		400, "unauthorized_client")
	servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": "wrong"}),
		400, "invalid_grant")
	// The audit log recorded the changes.
	entries := env.As(admin, "GET", "/v1/audit?limit=200", nil).Map(t)["data"].([]any)
	if len(entries) < 2 || entries[0].(map[string]any)["action"] != "settings.update" {
		t.Fatalf("audit %v", entries)
	}
}

func TestBadInput(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	json := []string{"Content-Type", "application/json"}
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"too large", "POST", "/v1/users", `{"email":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "payload_too_large"},
		{"malformed json", "POST", "/v1/users", `{"email":`, 400, "invalid_request"},
		{"not an object", "POST", "/v1/users", `[1,2]`, 400, "invalid_request"},
		{"unknown field", "POST", "/v1/users", `{"email":"a@example.com","admin":true}`, 400, "invalid_request"},
		{"trailing data", "POST", "/v1/users", `{"email":"a@example.com"} {}`, 400, "invalid_request"},
		{"invalid utf-8", "POST", "/v1/users", "{\"email\":\"a\xff@example.com\"}", 400, "invalid_request"},
		{"nul byte", "POST", "/v1/users", `{"email":"a\u0000@example.com"}`, 400, "invalid_request"},
		{"raw nul byte", "POST", "/v1/workspaces", "{\"name\":\"a\x00\"}", 400, "invalid_request"},
		{"escaped nul in a password", "POST", "/v1/users", `{"email":"n@example.com","password":"long enough\u0000"}`, 400, "invalid_request"},
		{"empty body", "POST", "/v1/workspaces", ``, 400, "invalid_request"},
		{"bad email", "POST", "/v1/users", `{"email":"not an email"}`, 400, "invalid_request"},
		{"bad limit", "GET", "/v1/users?limit=500", ``, 400, "invalid_request"},
		{"bad cursor", "GET", "/v1/users?cursor=!!!", ``, 400, "invalid_request"},
		{"unknown route", "GET", "/v1/nothing", ``, 404, "not_found"},
		{"wrong method", "DELETE", "/v1/users", ``, 405, "method_not_allowed"},
		{"token endpoint GET", "GET", "/oauth/token", ``, 405, "method_not_allowed"},
		{"form too large", "POST", "/authorization", "username=" + strings.Repeat("a", 1<<20+10), 413, "payload_too_large"},
		{"form invalid utf-8", "POST", "/authorization", "username=%ff&password=x", 400, "invalid_request"},
		{"repeated parameter", "POST", "/authorization?username=a", "username=b&password=x", 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := append([]string{"Authorization", "Bearer " + admin}, json...)
			if strings.HasPrefix(c.path, "/authorization") {
				hdr = []string{"Content-Type", "application/x-www-form-urlencoded"}
			}
			var body any
			if c.body != "" {
				body = c.body
			}
			r := env.Request(c.method, c.path, body, hdr...)
			servertest.Expect(t, r, c.status, c.code)
			if bytes.Contains(r.Body, []byte("aaaaaaaaaa")) || bytes.Contains(r.Body, []byte("sql")) {
				t.Fatalf("error echoes input: %.200s", r.Body)
			}
		})
	}
	if n := len(env.As(admin, "GET", "/v1/users", nil).Map(t)["data"].([]any)); n != 1 {
		t.Fatalf("bad input created users: %d", n)
	}
}

func TestPagination(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"} {
		env.CreateUser(admin, e, "")
	}
	seen := map[string]bool{}
	path := "/v1/users?limit=2"
	pages := 0
	for {
		m := env.As(admin, "GET", path, nil).Map(t)
		pages++
		for _, u := range m["data"].([]any) {
			id := u.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("user %s twice", id)
			}
			seen[id] = true
		}
		next, ok := m["next_cursor"].(string)
		if !ok {
			break
		}
		path = "/v1/users?limit=2&cursor=" + next
	}
	if len(seen) != 5 || pages != 3 {
		t.Fatalf("%d users in %d pages", len(seen), pages)
	}
}

// TestNoSecretsStored reads the database files and finds no token,
// password or other secret in them.
func TestNoSecretsStored(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	secrets := []string{admin, env.Login("ann@example.com", memberPW), memberPW, servertest.AdminPassword}
	// Make sure the writes reached the files.
	ctx := context.Background()
	if err := env.Server.Store.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	data := storedBytes(t, env)
	if !bytes.Contains(data, []byte("ann@example.com")) {
		t.Fatal("the database files do not hold the data; the test reads the wrong files")
	}
	for _, s := range secrets {
		if bytes.Contains(data, []byte(s)) || bytes.Contains(data, []byte(s[len(s)/2:])) {
			t.Errorf("the database holds secret %.8s…", s)
		}
	}
}

// storedBytes returns everything the server's store holds: the SQLite
// files, or on PostgreSQL every row of every table, as text.
func storedBytes(t *testing.T, env *servertest.Env) []byte {
	t.Helper()
	var data []byte
	if env.DBPath != "" {
		for _, f := range []string{env.DBPath, env.DBPath + "-wal"} {
			b, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			data = append(data, b...)
		}
		return data
	}
	db, err := sql.Open("pgx", env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var text sql.NullString
		if err := db.QueryRow(`SELECT string_agg(t::text, E'\n') FROM ` + table + ` t`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		data = append(data, text.String...)
	}
	return data
}

// TestConcurrentBootstrap starts several servers on one empty database at
// once: exactly one account and one admin result.
func TestConcurrentBootstrap(t *testing.T) {
	url := servertest.DatabaseURL(t)
	var wg sync.WaitGroup
	servers := make([]*server.Server, 4)
	errs := make([]error, len(servers))
	for i := range servers {
		cfg := server.DefaultConfig()
		cfg.Addr, cfg.DatabaseURL = "127.0.0.1:0", url
		cfg.AdminEmail, cfg.AdminPassword = servertest.AdminEmail, servertest.AdminPassword
		cfg.PasswordParams = servertest.FastPasswords
		servers[i] = server.New(cfg)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = servers[i].Open(context.Background())
		}(i)
	}
	wg.Wait()
	for i, s := range servers {
		defer s.Close()
		if errs[i] != nil {
			t.Fatalf("server %d: %v", i, errs[i])
		}
	}
	accounts, _, err := servers[0].Store.Accounts(context.Background(), pageAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts) != 1 {
		t.Fatalf("%d accounts", len(accounts))
	}
	users, _, err := servers[0].Store.Users(context.Background(), accounts[0].ID, pageAll)
	if err != nil || len(users) != 1 || !users[0].Operator {
		t.Fatalf("users %v, %v", users, err)
	}
}

// TestMeIsEachPrincipals: GET /v1/me is encoded once per cached
// principal; requests of several users' tokens, released together, must
// each get their own user's answer, and a new token after a change gets
// the changed answer.
func TestMeIsEachPrincipals(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	users := map[string]string{} // token -> user id
	var renamed string
	for i := range 4 {
		email := fmt.Sprintf("me%d@example.com", i)
		id := env.CreateUser(admin, email, "correct horse battery staple")
		users[env.Login(email, "correct horse battery staple")] = id
		renamed = id // me3
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan string, 200)
	for tok, id := range users {
		for range 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := env.As(tok, "GET", "/v1/me", nil)
				if r.Status != 200 {
					errs <- fmt.Sprintf("status %d", r.Status)
					return
				}
				if got := r.Map(t)["user"].(map[string]any)["id"]; got != id {
					errs <- fmt.Sprintf("token of %s answered as %v", id, got)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// A renamed user's next token says the new name.
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+renamed, map[string]any{"name": "Renamed"}), 200, "")
	fresh := env.Login("me3@example.com", "correct horse battery staple")
	if got := env.As(fresh, "GET", "/v1/me", nil).Map(t)["user"].(map[string]any)["name"]; got != "Renamed" {
		t.Fatalf("after the rename: name %v", got)
	}
}
