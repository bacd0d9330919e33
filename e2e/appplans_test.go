package e2e

import (
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestPlansThirdPartyApp: a third-party application takes a plan like
// every credential kind (SPEC §10.5). Its developer sets a quota of 3 a
// day, an allow-list and metadata on it; the tokens its users hold are
// refused from another address (403 ip_not_allowed, not charged), admitted
// 3 times a day and then refused with 422 quota_exceeded — counted per
// account of its users, so a user of another account that approved the
// application has 3 of their own — and carry the metadata to
// introspection. A bad plan is 400 and changes nothing; clearing the plan
// lifts it from the tokens already issued.
func TestPlansThirdPartyApp(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.TrustedProxies, _ = httpx.ParseTrustedProxies("127.0.0.1/32,::1/128") })
	admin, _, devTok, cred := developer(t, env)
	env.CreateUser(admin, appMember, memberPW)
	app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, []string{"workspaces:read"})

	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"quota": map[string]any{"limit": 0, "period": "day"}}), 400, "invalid_request")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"allowed_ips": []string{"not a network"}}), 400, "invalid_request")
	r := env.As(devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"quota": map[string]any{"limit": 3, "period": "day"},
		"allowed_ips": []string{"203.0.113.0/24"}, "external_id": "partner-7", "metadata": map[string]string{"tier": "partner"}})
	servertest.Expect(t, r, 200, "")
	if m := r.Map(t); m["external_id"] != "partner-7" || m["quota"].(map[string]any)["limit"] != float64(3) {
		t.Fatalf("the plan set: %s", r.Body)
	}

	userToken := func(env *servertest.Env, email, pw string) string {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		conf := oauthConfig(env, app, appRedirect, "workspaces:read")
		cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), email, pw, "allow")
		if cb == nil {
			t.Fatalf("no redirect to the application: %d %s", resp.StatusCode, body)
		}
		tok := exchange(env, app, cb.Query().Get("code"), appRedirect, verifier)
		servertest.Expect(t, tok, 200, "")
		return tok.Map(t)["access_token"].(string)
	}
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
	member := userToken(env, appMember, memberPW)
	for range 4 {
		servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, append([]string{"Authorization", "Bearer " + member}, from("198.51.100.1")...)...), 403, "ip_not_allowed")
	}
	for i := range 3 {
		r := env.Request("GET", "/v1/workspaces", nil, append([]string{"Authorization", "Bearer " + member}, from("203.0.113.5")...)...)
		servertest.Expect(t, r, 200, "")
		if got, want := r.Header.Get("X-RateLimit-Quota-Remaining"), string(rune('2'-i)); got != want {
			t.Fatalf("request %d: quota remaining %q, want %q", i, got, want)
		}
	}
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, append([]string{"Authorization", "Bearer " + member}, from("203.0.113.5")...)...), 422, "quota_exceeded")

	// Introspection by the developer's client credential names the plan's
	// external id and metadata.
	form := url.Values{"token": {member}, "client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}}
	r = env.Request("POST", "/oauth/introspect", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 200, "")
	if in := r.Map(t); in["active"] != true || in["external_id"] != "partner-7" || in["metadata"].(map[string]any)["tier"] != "partner" {
		t.Fatalf("introspection: %s", r.Body)
	}

	// Another account approves the application; its user has a quota of
	// their account's own.
	_, otherAdmin := env.CreateAccount(admin, "Other", "boss@other.example", "other admin password")
	servertest.Expect(t, env.As(otherAdmin, "PUT", "/v1/apps/"+app.ClientID+"/approval", nil), 200, "")
	env.CreateUser(otherAdmin, "reader@other.example", memberPW)
	reader := userToken(env, "reader@other.example", memberPW)
	for range 3 {
		servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, append([]string{"Authorization", "Bearer " + reader}, from("203.0.113.6")...)...), 200, "")
	}
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, append([]string{"Authorization", "Bearer " + reader}, from("203.0.113.6")...)...), 422, "quota_exceeded")
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, append([]string{"Authorization", "Bearer " + reader}, from("198.51.100.1")...)...), 403, "ip_not_allowed")

	// Cleared: the tokens already issued are free of it at once.
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"quota": nil, "allowed_ips": []string{}}), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, append([]string{"Authorization", "Bearer " + member}, from("198.51.100.1")...)...), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, append([]string{"Authorization", "Bearer " + reader}, from("198.51.100.1")...)...), 200, "")
	if r := env.As(devTok, "GET", "/v1/apps/"+app.ID, nil); r.Map(t)["quota"] != nil || r.Map(t)["external_id"] != "partner-7" {
		t.Fatalf("the plan after clearing: %s", r.Body)
	}
}
