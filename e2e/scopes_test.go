package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// apiTokenWith makes an API token with the given body (name, scopes,
// expires_at) and returns its secret and id.
func apiTokenWith(t *testing.T, env *servertest.Env, admin string, body map[string]any) (secret, id string) {
	t.Helper()
	r := env.As(admin, "POST", "/v1/api-tokens", body)
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	return m["token"].(string), m["id"].(string)
}

// TestScopedAPIToken: an API token limited to workspaces:read lists
// workspaces but cannot create one (403 insufficient_scope with RFC 6750's
// header), cannot create users or credentials, and cannot mint anything
// broader than itself; with the user header it gets the user's roles
// intersected with its scopes.
func TestScopedAPIToken(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "bad", "scopes": []string{"nope:read"}}), 400, "invalid_request")
	ro, _ := apiTokenWith(t, env, admin, map[string]any{"name": "metadata reader", "scopes": []string{"workspaces:read"}})
	as := func(method, path string, body any, extra ...string) *servertest.Response {
		return env.Request(method, path, body, append([]string{"X-API-Token", ro}, extra...)...)
	}

	servertest.Expect(t, as("GET", "/v1/workspaces", nil), 200, "")
	servertest.Expect(t, as("GET", "/v1/metadata/workspace", nil), 200, "")
	r := as("POST", "/v1/workspaces", map[string]string{"name": "x"})
	servertest.Expect(t, r, 403, "insufficient_scope")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="workspaces:write"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	servertest.Expect(t, as("POST", "/v1/users", map[string]any{"email": "evil@example.com", "password": memberPW, "roles": []string{"admin"}}), 403, "insufficient_scope")
	servertest.Expect(t, as("POST", "/v1/api-tokens", map[string]any{"name": "wider"}), 403, "insufficient_scope")
	servertest.Expect(t, as("PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 1000}}), 403, "insufficient_scope")
	me := as("GET", "/v1/me", nil).Map(t)
	if me["restricted"] != true || strings.Join(anyStrings(me["scopes"]), " ") != "workspaces:read" {
		t.Fatalf("me %v", me)
	}

	// A token that may mint credentials still cannot grant more than it
	// holds, and what it mints dies with it.
	minter, minterID := apiTokenWith(t, env, admin, map[string]any{"name": "minter", "scopes": []string{"credentials:write", "workspaces:read"}})
	r = env.Request("POST", "/v1/api-tokens", map[string]any{"name": "child", "scopes": []string{"users:write"}}, "X-API-Token", minter)
	servertest.Expect(t, r, 403, "forbidden")
	r = env.Request("POST", "/v1/api-tokens", map[string]any{"name": "child"}, "X-API-Token", minter)
	servertest.Expect(t, r, 201, "")
	child := r.Map(t)
	if strings.Join(anyStrings(child["scopes"]), " ") != "credentials:write workspaces:read" {
		t.Fatalf("child token scopes %v, want the minter's", child["scopes"])
	}
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", child["token"].(string)), 200, "")
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-tokens/"+minterID, nil), 204, "")
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", child["token"].(string)), 401, "invalid_token")

	// Acting as a member: the member's role decides first (forbidden), the
	// token's scopes second.
	env.CreateUser(admin, "member@example.com", memberPW)
	servertest.Expect(t, as("GET", "/v1/settings", nil, "X-User-Email", "member@example.com"), 403, "forbidden")
	servertest.Expect(t, as("POST", "/v1/workspaces", map[string]string{"name": "x"}, "X-User-Email", "member@example.com"), 403, "insufficient_scope")
}

// TestScopedClientCredentials: x/oauth2's clientcredentials with Scopes
// gets a narrowed token and the response's scope; a scope the credential
// does not hold is invalid_scope; the token cannot do more than its scope.
func TestScopedClientCredentials(t *testing.T) {
	env := servertest.Start(t)
	_, _, devTok, _ := developer(t, env)
	r := env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "reader", "scopes": []string{"workspaces:write", "credentials:read"}})
	servertest.Expect(t, r, 201, "")
	var c credential
	r.JSON(t, &c)
	ctx := context.Background()
	cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: env.URL + "/oauth/token",
		Scopes: []string{"workspaces:read"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Extra("scope"); got != "workspaces:read" {
		t.Fatalf("scope in the token response %v", got)
	}
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
	servertest.Expect(t, env.As(tok.AccessToken, "POST", "/v1/workspaces", map[string]string{"name": "x"}), 403, "insufficient_scope")
	servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/credentials", nil), 403, "insufficient_scope")

	// Without a scope parameter the token has the credential's scopes.
	full, err := (&clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: env.URL + "/oauth/token"}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := full.Extra("scope"); got != "credentials:read workspaces:write" {
		t.Fatalf("scope without asking %v", got)
	}
	servertest.Expect(t, env.As(full.AccessToken, "POST", "/v1/workspaces", map[string]string{"name": "x"}), 201, "")

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "scope": {"users:write"}}
	servertest.Expect(t, env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_scope")

	// Introspection tells the scope.
	in := env.As(env.AdminToken(), "POST", "/oauth/introspect", url.Values{"token": {tok.AccessToken}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded").Map(t)
	if in["active"] != true || in["scope"] != "workspaces:read" || in["client_id"] != c.ClientID || in["token_type"] != "bearer" {
		t.Fatalf("introspection %v", in)
	}
}

// TestDemotionNarrowsCredentials: what a credential may do is always
// intersected with its owner's roles now — a developer who is also an admin
// reads settings with their client credential; removing the admin role
// narrows the same live token on the next request, on two nodes.
func TestDemotionNarrowsCredentials(t *testing.T) {
	a, b, _, op := clusterPair(t)
	st, u := a.send(t, "POST", "/v1/users", map[string]any{"email": "dev@example.com", "password": memberPW, "roles": []string{"admin", "developer"}}, bearer(op)...)
	if st != 201 {
		t.Fatalf("create: %d %v", st, u)
	}
	dev := login(t, a, "dev@example.com", memberPW)
	_, cred := a.send(t, "POST", "/v1/credentials", map[string]string{"name": "ops"}, bearer(dev)...)
	grant := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred["client_id"].(string)}, "client_secret": {cred["client_secret"].(string)}}
	_, cc := b.send(t, "POST", "/oauth/token", grant)
	tok := cc["access_token"].(string)
	for i, n := range []*process{a, b} {
		if st, out := n.send(t, "GET", "/v1/settings", nil, bearer(tok)...); st != 200 {
			t.Fatalf("node %d before demotion: %d %v", i, st, out)
		}
	}
	if st, out := a.send(t, "PATCH", "/v1/users/"+u["id"].(string), map[string]any{"roles": []string{"developer"}}, bearer(op)...); st != 200 {
		t.Fatalf("demote: %d %v", st, out)
	}
	for i, n := range []*process{a, b} {
		if st, out := n.send(t, "GET", "/v1/settings", nil, bearer(tok)...); st != 403 || out["error"] != "forbidden" {
			t.Fatalf("node %d after demotion: %d %v", i, st, out)
		}
		_, me := n.send(t, "GET", "/v1/me", nil, bearer(tok)...)
		if strings.Contains(strings.Join(anyStrings(me["scopes"]), " "), "settings") {
			t.Fatalf("node %d: scopes after demotion %v", i, me["scopes"])
		}
	}
}

// TestCredentialLifecycle: a rolled client secret works with the old
// secret only inside the overlap; a disabled credential and its tokens are
// 401 until enabled again; an expired one is 401; a rolled API token keeps
// its name and scopes and the old one stops after the overlap.
func TestCredentialLifecycle(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, c := developer(t, env)

	// Windows of seconds, slept out from when they surely ended, so that
	// a loaded machine can neither close one before it is used nor keep it
	// open after.
	r := env.As(devTok, "POST", "/v1/credentials/"+c.ID+"/roll", map[string]int{"overlap_seconds": 5})
	overlapEnds := time.Now().Add(5 * time.Second)
	servertest.Expect(t, r, 200, "")
	rolled := r.Map(t)
	if rolled["client_id"] != c.ClientID || rolled["client_secret"] == c.ClientSecret {
		t.Fatalf("roll %v", rolled)
	}
	newer := credential{ClientID: c.ClientID, ClientSecret: rolled["client_secret"].(string)}
	servertest.Expect(t, clientToken(env, c), 200, "")
	servertest.Expect(t, clientToken(env, newer), 200, "")
	time.Sleep(time.Until(overlapEnds) + 100*time.Millisecond)
	servertest.Expect(t, clientToken(env, c), 401, "invalid_client")
	tok := accessToken(t, clientToken(env, newer))

	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]bool{"enabled": false}), 200, "")
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, clientToken(env, newer), 401, "invalid_client")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"scopes": []string{"workspaces:read"}}), 200, "")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"scopes": []string{"workspaces:write"}}), 400, "invalid_request")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"expires_at": time.Now().Add(-time.Hour)}), 400, "invalid_request")

	// Expiry, bounded by the account's maximum lifetime.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]int{"max_credential_lifetime_days": 30}), 200, "")
	servertest.Expect(t, env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "long", "expires_at": time.Now().AddDate(0, 0, 31)}), 400, "invalid_request")
	shortEnds := time.Now().Add(5 * time.Second)
	r = env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "short", "expires_at": shortEnds})
	servertest.Expect(t, r, 201, "")
	var short credential
	r.JSON(t, &short)
	stok := accessToken(t, clientToken(env, short))
	time.Sleep(time.Until(shortEnds) + 100*time.Millisecond)
	servertest.Expect(t, clientToken(env, short), 401, "invalid_client")
	servertest.Expect(t, env.As(stok, "GET", "/v1/me", nil), 401, "invalid_token")

	// API tokens: expired → 401; roll keeps name and scopes, the old one
	// stops after the overlap.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	old, oldID := apiTokenWith(t, env, admin, map[string]any{"name": "zap", "scopes": []string{"workspaces:read"}})
	r = env.As(admin, "POST", "/v1/api-tokens/"+oldID+"/roll", map[string]int{"overlap_seconds": 5})
	overlapEnds = time.Now().Add(5 * time.Second)
	servertest.Expect(t, r, 201, "")
	next := r.Map(t)
	if next["name"] != "zap" || strings.Join(anyStrings(next["scopes"]), " ") != "workspaces:read" {
		t.Fatalf("rolled token %v", next)
	}
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", old), 200, "")
	time.Sleep(time.Until(overlapEnds) + 100*time.Millisecond)
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", old), 401, "invalid_token")
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", next["token"].(string)), 200, "")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+next["id"].(string), map[string]bool{"enabled": false}), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", next["token"].(string)), 401, "invalid_token")
	list := env.As(admin, "GET", "/v1/api-tokens", nil).Map(t)["data"].([]any)
	for _, x := range list {
		if m := x.(map[string]any); m["id"] == next["id"] && (m["enabled"] != false || m["last_used_at"] == nil) {
			t.Fatalf("listed token %v", m)
		}
	}
}

// TestPublicClientRevocation: the API access application is a public
// client, so it revokes its tokens with its client_id and no secret (RFC
// 7009 §2.1); a client_id the token was not issued to revokes nothing.
func TestPublicClientRevocation(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)
	form := func(v url.Values) *servertest.Response {
		return env.Request("POST", "/oauth/revoke", v.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}
	// Whoever holds a secret may revoke it (SPEC §10.1): a 200 never leaves
	// it working, whatever client id came with it.
	servertest.Expect(t, form(url.Values{"token": {app.RefreshToken}, "client_id": {"gci_" + strings.Repeat("x", 49)}}), 200, "")
	servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, form(url.Values{"token": {app.RefreshToken}, "client_id": {app.ClientID}}), 200, "")
	servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 400, "invalid_grant")
	servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
}

// TestBlankScopeParameter: a scope parameter of spaces alone names no
// scope (RFC 6749 §3.3: one or more). On every grant that takes one it is
// invalid_scope, never a token restricted to nothing answered without a
// scope field (which reads as "everything the grant allows"), and the
// refresh token is not used by the refusal.
func TestBlankScopeParameter(t *testing.T) {
	env := servertest.Start(t)
	admin, _, _, c := developer(t, env)
	app := enableAPIAccess(t, env, admin, nil)
	for _, tc := range []struct {
		grant string
		form  map[string]string
	}{
		{"refresh", map[string]string{"grant_type": "refresh_token", "client_id": app.ClientID, "refresh_token": app.RefreshToken}},
		{"password", map[string]string{"grant_type": "password", "username": servertest.AdminEmail, "password": servertest.AdminPassword}},
		{"client credentials", map[string]string{"grant_type": "client_credentials", "client_id": c.ClientID, "client_secret": c.ClientSecret}},
	} {
		for _, blank := range []string{" ", "   "} {
			tc.form["scope"] = blank
			servertest.Expect(t, env.Request("POST", "/oauth/token", tc.form), 400, "invalid_scope")
		}
		delete(tc.form, "scope")
		servertest.Expect(t, env.Request("POST", "/oauth/token", tc.form), 200, "")
	}
}
