package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// withKey sends a request with API token key, acting as actAs when not "".
func withKey(env *servertest.Env, key, actAs, method, path string, body any) *servertest.Response {
	h := []string{"X-API-Token", key}
	if actAs != "" {
		h = append(h, "X-User-Email", actAs)
	}
	return env.Request(method, path, body, h...)
}

// newKey makes an API token with admin's bearer token (or with key
// parent, when not "") and returns its id and secret.
func newKey(t *testing.T, env *servertest.Env, admin, parent string, body map[string]any) (id, secret string) {
	t.Helper()
	var r *servertest.Response
	if parent != "" {
		r = withKey(env, parent, "", "POST", "/v1/api-tokens", body)
	} else {
		r = env.As(admin, "POST", "/v1/api-tokens", body)
	}
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	return m["id"].(string), m["token"].(string)
}

// TestNarrowCannotActOnWide attacks SPEC §10.8 "Nobody acts on more than
// they hold" over HTTP: an API token limited to credentials:write, and one
// that expires, try to roll, disable, narrow, shorten and delete an
// unrestricted, never-expiring API token of their account; a client
// credential limited to credentials:write does the same to its
// developer's unrestricted credential. Every attempt is 403 forbidden and
// nothing changes: the wide credentials keep working, unchanged. Run on
// both stores (GATEHOUSE_TEST_DATABASE).
func TestNarrowCannotActOnWide(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	wideID, wide := newKey(t, env, admin, "", map[string]any{"name": "wide"})
	_, narrow := newKey(t, env, admin, "", map[string]any{"name": "narrow", "scopes": []string{"credentials:write"}})
	_, short := newKey(t, env, admin, "", map[string]any{"name": "short", "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	before := entry(t, env, admin, "/v1/api-tokens", wideID)
	soon := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	attacks := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/api-tokens/" + wideID + "/roll", map[string]any{"overlap_seconds": 2592000}},
		{"PATCH", "/v1/api-tokens/" + wideID, map[string]any{"enabled": false}},
		{"PATCH", "/v1/api-tokens/" + wideID, map[string]any{"scopes": []string{"users:read"}}},
		{"PATCH", "/v1/api-tokens/" + wideID, map[string]any{"expires_at": soon}},
		{"DELETE", "/v1/api-tokens/" + wideID, nil},
	}
	for _, key := range []string{narrow, short} {
		for _, a := range attacks {
			servertest.Expect(t, withKey(env, key, "", a.method, a.path, a.body), 403, "forbidden")
		}
	}
	if after := entry(t, env, admin, "/v1/api-tokens", wideID); before != after {
		t.Fatalf("refused attacks changed the wide token:\n%s\n%s", before, after)
	}
	servertest.Expect(t, withKey(env, wide, "", "GET", "/v1/me", nil), 200, "")

	// Client credentials of one developer.
	env.CreateUser(admin, "dev@example.com", memberPW, "developer")
	dev := env.Login("dev@example.com", memberPW)
	var wideCred, narrowCred struct {
		ID, ClientID, ClientSecret string
	}
	r := env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "wide"})
	servertest.Expect(t, r, 201, "")
	r.JSON(t, &wideCred)
	wideClient, wideSecret := r.Map(t)["client_id"].(string), r.Map(t)["client_secret"].(string)
	r = env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "narrow", "scopes": []string{"credentials:write"}})
	servertest.Expect(t, r, 201, "")
	r.JSON(t, &narrowCred)
	credsBefore := entry(t, env, dev, "/v1/credentials", wideCred.ID)
	narrowCred.ClientID, narrowCred.ClientSecret = r.Map(t)["client_id"].(string), r.Map(t)["client_secret"].(string)
	tok := ccGrant(t, env, narrowCred.ClientID, narrowCred.ClientSecret)
	for _, a := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/credentials/" + wideCred.ID + "/roll", map[string]any{"overlap_seconds": 2592000}},
		{"PATCH", "/v1/credentials/" + wideCred.ID, map[string]any{"enabled": false}},
		{"PATCH", "/v1/credentials/" + wideCred.ID, map[string]any{"scopes": []string{"workspaces:read"}}},
		{"DELETE", "/v1/credentials/" + wideCred.ID, nil},
	} {
		servertest.Expect(t, env.As(tok, a.method, a.path, a.body), 403, "forbidden")
	}
	if after := entry(t, env, dev, "/v1/credentials", wideCred.ID); credsBefore != after {
		t.Fatalf("refused attacks changed the credentials:\n%s\n%s", credsBefore, after)
	}
	r = env.Request("POST", "/oauth/token", "grant_type=client_credentials&client_id="+wideClient+"&client_secret="+wideSecret,
		"Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 200, "")
}

// entry is the JSON of the element with id in the list at path.
func entry(t *testing.T, env *servertest.Env, tok, path, id string) string {
	t.Helper()
	var list struct{ Data []map[string]any }
	env.As(tok, "GET", path, nil).JSON(t, &list)
	for _, e := range list.Data {
		if e["id"] == id {
			b, _ := json.Marshal(e)
			return string(b)
		}
	}
	t.Fatalf("%s: no %s", path, id)
	return ""
}

// ccGrant runs the client credentials grant.
func ccGrant(t *testing.T, env *servertest.Env, id, secret string) string {
	t.Helper()
	r := env.Request("POST", "/oauth/token", "grant_type=client_credentials&client_id="+url.QueryEscape(id)+"&client_secret="+url.QueryEscape(secret),
		"Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 200, "")
	return r.Map(t)["access_token"].(string)
}

// TestBoundedInput: overlap_seconds past its bound (including one that
// would overflow a duration), malformed scope names in a PATCH, and lists
// of 100,000 scope names on every route that takes them are 400, and
// nothing changes.
func TestBoundedInput(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	id, key := newKey(t, env, admin, "", map[string]any{"name": "k"})
	before := env.As(admin, "GET", "/v1/api-tokens", nil).Body
	for _, n := range []int64{9223372037, -1, 2592001} {
		servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens/"+id+"/roll", map[string]any{"overlap_seconds": n}), 400, "invalid_request")
	}
	for _, bad := range []any{[]string{""}, []string{" "}, []string{"a b"}, []string{"a\r\nb"}, []string{strings.Repeat("x", 5000)}} {
		servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+id, map[string]any{"scopes": bad}), 400, "invalid_request")
	}
	many := make([]string, 100_000)
	for i := range many {
		many[i] = "s" + strconv.Itoa(i)
	}
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+id, map[string]any{"scopes": many}), 400, "invalid_request")
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "x", "scopes": many}), 400, "invalid_request")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"custom_scopes": many}), 400, "invalid_request")
	form := "grant_type=password&username=" + url.QueryEscape(servertest.AdminEmail) + "&password=" + url.QueryEscape(servertest.AdminPassword) +
		"&scope=" + url.QueryEscape(strings.Join(many, " "))
	for _, path := range []string{"/authorization", "/oauth/token"} {
		servertest.Expect(t, env.Request("POST", path, form, "Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_scope")
	}
	if after := env.As(admin, "GET", "/v1/api-tokens", nil).Body; !bytes.Equal(before, after) {
		t.Fatalf("refused changes changed the tokens:\n%s\n%s", before, after)
	}
	servertest.Expect(t, withKey(env, key, "", "GET", "/v1/me", nil), 200, "")
}

// TestCeilingsUnderConcurrency: 50 creations released together at a
// ceiling of 10 make exactly 10 API tokens (and 10 client credentials of
// one developer); the other 40 are 409 limit_reached. Both stores.
func TestCeilingsUnderConcurrency(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"max_api_tokens_per_account": 10, "max_credentials_per_user": 10}), 200, "")
	env.CreateUser(admin, "dev@example.com", memberPW, "developer")
	dev := env.Login("dev@example.com", memberPW)
	for _, c := range []struct {
		tok, path string
	}{{admin, "/v1/api-tokens"}, {dev, "/v1/credentials"}} {
		reqs := make([]*http.Request, 50)
		for i := range reqs {
			body, _ := json.Marshal(map[string]string{"name": "n" + strconv.Itoa(i)})
			reqs[i], _ = http.NewRequest("POST", env.URL+c.path, bytes.NewReader(body))
			reqs[i].Header.Set("Authorization", "Bearer "+c.tok)
			reqs[i].Header.Set("Content-Type", "application/json")
		}
		counts := map[string]int{}
		for _, a := range sendTogether(t, env, reqs...) {
			var e struct{ Error string }
			json.Unmarshal(a.Body, &e)
			counts[strconv.Itoa(a.Status)+" "+e.Error]++
		}
		if counts["201 "] != 10 || counts["409 limit_reached"] != 40 {
			t.Fatalf("%s: %v, want 10 created and 40 limit_reached", c.path, counts)
		}
	}
}

// TestMintedDieWithParentOnTwoNodes attacks "nothing minted through an API
// token outlives it" (SPEC §10.8) on two nodes sharing a store and a Redis:
// through an API token acting as an admin and developer, node A mints a
// client credential (and its token), an API access application (refreshed
// once: a running lineage) and a child API token; each change to the
// parent, made on A, refuses every one of them on B at once — disabling
// it, rolling it and deleting the new token, its expiry, turning the
// extension off.
func TestMintedDieWithParentOnTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis")
	}
	rs := startRedis(t, "")
	redisURL := "redis://127.0.0.1:" + rs.port + "/0"
	a := servertest.Start(t, func(c *server.Config) { c.RedisURL = redisURL })
	b := servertest.Start(t, func(c *server.Config) { c.RedisURL, c.DatabaseURL = redisURL, a.DatabaseURL })
	admin := a.AdminToken()
	servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")

	type children struct {
		ccID, ccSecret, ccToken, appClient, appAccess, appRefresh, child string
	}
	n := 0
	mint := func(parent string) *children {
		t.Helper()
		n++
		user := "m" + strconv.Itoa(n) + "@example.com"
		a.CreateUser(admin, user, memberPW, "admin", "developer")
		c := &children{}
		r := withKey(a, parent, user, "POST", "/v1/credentials", map[string]any{"name": "minted"})
		servertest.Expect(t, r, 201, "")
		m := r.Map(t)
		c.ccID, c.ccSecret = m["client_id"].(string), m["client_secret"].(string)
		c.ccToken = ccGrant(t, a, c.ccID, c.ccSecret)
		r = withKey(a, parent, user, "POST", "/v1/api-access", map[string]any{})
		servertest.Expect(t, r, 201, "")
		m = r.Map(t)
		c.appClient = m["client_id"].(string)
		r = a.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "client_id": c.appClient, "refresh_token": m["refresh_token"].(string)})
		servertest.Expect(t, r, 200, "")
		m = r.Map(t)
		c.appAccess, c.appRefresh = m["access_token"].(string), m["refresh_token"].(string)
		_, c.child = newKey(t, a, "", parent, map[string]any{"name": "child of " + user})
		return c
	}
	// check asserts on B that every child works (or none does), the
	// refresh included when refresh is set.
	check := func(what string, c *children, want bool, refresh bool) {
		t.Helper()
		ok := func(st int) bool { return st == 200 }
		got := map[string]bool{
			"client-credentials token": ok(b.As(c.ccToken, "GET", "/v1/me", nil).Status),
			"client-credentials grant": ok(b.Request("POST", "/oauth/token", "grant_type=client_credentials&client_id="+c.ccID+"&client_secret="+c.ccSecret,
				"Content-Type", "application/x-www-form-urlencoded").Status),
			"API access token": ok(b.As(c.appAccess, "GET", "/v1/me", nil).Status),
			"child API token":  ok(withKey(b, c.child, "", "GET", "/v1/me", nil).Status),
		}
		if refresh {
			r := b.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "client_id": c.appClient, "refresh_token": c.appRefresh})
			got["refresh"] = ok(r.Status)
			if r.Status == 200 {
				m := r.Map(t)
				c.appAccess, c.appRefresh = m["access_token"].(string), m["refresh_token"].(string)
			}
		}
		for k, v := range got {
			if v != want {
				t.Fatalf("%s: on B, %s works=%v, want %v (%v)", what, k, v, want, got)
			}
		}
	}

	t.Run("disable", func(t *testing.T) {
		pid, parent := newKey(t, a, admin, "", map[string]any{"name": "p-disable"})
		c := mint(parent)
		check("before", c, true, true)
		servertest.Expect(t, a.As(admin, "PATCH", "/v1/api-tokens/"+pid, map[string]any{"enabled": false}), 200, "")
		check("parent disabled", c, false, true)
		servertest.Expect(t, a.As(admin, "PATCH", "/v1/api-tokens/"+pid, map[string]any{"enabled": true}), 200, "")
		check("parent enabled again", c, true, true)
	})
	t.Run("roll then delete", func(t *testing.T) {
		pid, parent := newKey(t, a, admin, "", map[string]any{"name": "p-roll"})
		c := mint(parent)
		check("before", c, true, false)
		r := a.As(admin, "POST", "/v1/api-tokens/"+pid+"/roll", map[string]any{"overlap_seconds": 3600})
		servertest.Expect(t, r, 201, "")
		next := r.Map(t)["id"].(string)
		check("after the roll", c, true, true)
		servertest.Expect(t, a.As(admin, "DELETE", "/v1/api-tokens/"+next, nil), 204, "")
		servertest.Expect(t, withKey(b, parent, "", "GET", "/v1/me", nil), 200, "") // the old one, in its overlap
		check("new token deleted", c, false, true)
	})
	t.Run("expiry", func(t *testing.T) {
		// Ten seconds: minting and checking on two nodes must end before
		// it, under -race on a loaded machine.
		at := time.Now().Add(10 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
		_, parent := newKey(t, a, admin, "", map[string]any{"name": "p-expiry", "expires_at": at.Format(time.RFC3339)})
		c := mint(parent)
		check("before", c, true, false)
		if time.Now().After(at) {
			t.Fatal("the set-up overran the parent's expiry: make it later")
		}
		time.Sleep(time.Until(at) + 100*time.Millisecond)
		check("parent expired", c, false, true)
	})
	t.Run("extension off", func(t *testing.T) {
		_, parent := newKey(t, a, admin, "", map[string]any{"name": "p-ext"})
		c := mint(parent)
		check("before", c, true, true)
		servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false}), 200, "")
		check("extension off", c, false, true)
		servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
		check("extension on again", c, true, true)
	})
}

// platformRoutes name the platform scopes ops:admin, ledger:read and
// chains:execute.
const platformRoutes = `{"routes": [
  {"pattern": "/ops/", "scopes": ["ops:admin"]},
  {"pattern": "GET /ledger/", "scopes": ["ledger:read"]},
  {"pattern": "POST /v1/chains/{id}/execute", "scopes": ["chains:execute"]}
]}`

// TestPlatformScopesAreTheOperators attacks SPEC §10.8 "Platform scopes
// are the operator's": a tenant naming a platform scope (from the route
// rules or --platform-scopes) among its custom scopes, mapping one it was
// not granted, or granting itself one, is refused; the operator's grant
// and the admin's role mapping decide who passes a platform route, and
// taking the grant back ends it at once. An account that named a platform
// scope among its custom scopes before the server knew it loses it at the
// next start, keeping its other custom scopes. Both stores.
func TestPlatformScopesAreTheOperators(t *testing.T) {
	routes := writeRoutes(t, "routes.json", platformRoutes)
	env := servertest.Start(t, func(c *server.Config) {
		c.GatewayRoutes, c.PlatformScopes = routes, server.ParsePlatformScopes("billing:admin")
	})
	op := env.AdminToken()
	bID, bAdmin := env.CreateAccount(op, "tenant b", "admin@b.example", memberPW)
	check := func(tok, method, uri string) int {
		return env.Request("GET", "/v1/auth/check", nil, "Authorization", "Bearer "+tok, "X-Forwarded-Method", method, "X-Forwarded-Uri", uri).Status
	}
	for _, sc := range []string{"ops:admin", "chains:execute", "billing:admin"} {
		servertest.Expect(t, env.As(bAdmin, "PUT", "/v1/settings", map[string]any{"custom_scopes": []string{"reports:read", sc}}), 400, "invalid_request")
		servertest.Expect(t, env.As(bAdmin, "PUT", "/v1/settings", map[string]any{"role_scopes": map[string][]string{"member": {sc}}}), 400, "invalid_request")
		servertest.Expect(t, env.As(bAdmin, "PATCH", "/v1/accounts/"+bID, map[string]any{"platform_scopes": []string{sc}}), 403, "forbidden")
	}
	// Nor one that grants a platform scope: a :write scope grants its
	// :read.
	r := env.As(bAdmin, "PUT", "/v1/settings", map[string]any{"custom_scopes": []string{"ledger:write"}})
	servertest.Expect(t, r, 400, "invalid_request")
	if !strings.Contains(string(r.Body), "ledger:read") {
		t.Fatalf("the refusal names no platform scope: %s", r.Body)
	}
	servertest.Expect(t, env.As(bAdmin, "PUT", "/v1/settings", map[string]any{"custom_scopes": []string{"reports:read"}}), 200, "")
	env.CreateUser(bAdmin, "member@b.example", memberPW)
	env.CreateUser(bAdmin, "dev@b.example", memberPW, "developer")
	member, dev := env.Login("member@b.example", memberPW), env.Login("dev@b.example", memberPW)
	for _, tok := range []string{bAdmin, member, dev} {
		if st := check(tok, "GET", "/ops/secret"); st != 403 {
			t.Fatalf("/ops/ before any grant: %d", st)
		}
		if st := check(tok, "GET", "/ledger/2026"); st != 403 {
			t.Fatalf("/ledger/ before any grant: %d", st)
		}
	}

	// The operator grants; only a platform scope of this server.
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bID, map[string]any{"platform_scopes": []string{"reports:read"}}), 400, "invalid_request")
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bID, map[string]any{"platform_scopes": []string{"ops:admin"}}), 200, "")
	if st := check(dev, "GET", "/ops/secret"); st != 403 {
		t.Fatalf("granted to the account but mapped to no role: %d", st)
	}
	servertest.Expect(t, env.As(bAdmin, "PUT", "/v1/settings", map[string]any{"role_scopes": map[string][]string{"developer": {"ops:admin"}}}), 200, "")
	if st := check(dev, "GET", "/ops/secret"); st != 200 {
		t.Fatalf("a developer with ops:admin mapped: %d", st)
	}
	if st := check(member, "GET", "/ops/secret"); st != 403 {
		t.Fatalf("a member without the mapping: %d", st)
	}
	// Taken back: refused at once.
	servertest.Expect(t, env.As(op, "PATCH", "/v1/accounts/"+bID, map[string]any{"platform_scopes": []string{}}), 200, "")
	if st := check(dev, "GET", "/ops/secret"); st != 403 {
		t.Fatalf("after the grant is taken back: %d", st)
	}
}

// TestPlatformScopesMigration: custom scopes stored before the server
// named them platform scopes stop being granted at the next start; the
// account's other custom scopes stay.
func TestPlatformScopesMigration(t *testing.T) {
	before := servertest.Start(t)
	op := before.AdminToken()
	_, bAdmin := before.CreateAccount(op, "tenant b", "admin@b.example", memberPW)
	servertest.Expect(t, before.As(bAdmin, "PUT", "/v1/settings", map[string]any{"custom_scopes": []string{"ops:admin", "ledger:write", "reports:read"}}), 200, "")
	routes := writeRoutes(t, "routes.json", platformRoutes)
	after := servertest.Start(t, func(c *server.Config) { c.DatabaseURL, c.GatewayRoutes = before.DatabaseURL, routes })
	bAdmin = after.Login("admin@b.example", memberPW)
	if got := after.As(bAdmin, "GET", "/v1/settings", nil).Map(t)["custom_scopes"]; len(got.([]any)) != 1 || got.([]any)[0] != "reports:read" {
		t.Fatalf("custom scopes after the start: %v", got)
	}
	for _, uri := range []string{"/ops/x", "/ledger/x"} {
		r := after.Request("GET", "/v1/auth/check", nil, "Authorization", "Bearer "+bAdmin, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", uri)
		servertest.Expect(t, r, 403, "")
	}
}
