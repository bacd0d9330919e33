package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/server"
)

type apiAccess struct {
	ClientID     string `json:"client_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

func enableAPIAccess(t *testing.T, env *servertest.Env, tok string, body any) apiAccess {
	t.Helper()
	r := env.As(tok, "POST", "/v1/api-access", body)
	servertest.Expect(t, r, http.StatusCreated, "")
	var out apiAccess
	r.JSON(t, &out)
	return out
}

func refresh(env *servertest.Env, clientID, rt string) *servertest.Response {
	return env.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "client_id": clientID, "refresh_token": rt})
}

func TestAPIAccessLifecycle(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)
	if app.TokenType != "bearer" || app.ExpiresIn != 86400 || app.ClientID[:4] != "gci_" || app.AccessToken[:4] != "gat_" || app.RefreshToken[:4] != "grt_" {
		t.Fatalf("enable %+v", app)
	}
	me := env.As(app.AccessToken, "GET", "/v1/me", nil).Map(t)
	if me["auth_method"] != "api_access" || me["client_id"] != app.ClientID {
		t.Fatalf("me %v", me)
	}
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-access", nil), http.StatusConflict, "conflict")

	// GET shows no secret, and the access token's use above as the last.
	r := env.As(admin, "GET", "/v1/api-access", nil)
	var view map[string]any
	r.JSON(t, &view)
	if view["enabled"] != true || view["client_id"] != app.ClientID || view["access_token_ttl_days"] != 1.0 || view["created_at"] == nil || view["scopes"] != nil ||
		view["last_used_at"] == nil || len(view) != 6 {
		t.Fatalf("view %s", r.Body)
	}
	// The lifetime applies to tokens issued from then on.
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-access", map[string]int{"access_token_ttl_days": 30}), 200, "")
	r = refresh(env, app.ClientID, app.RefreshToken)
	servertest.Expect(t, r, 200, "")
	var next apiAccess
	r.JSON(t, &next)
	if next.ExpiresIn != 30*86400 || next.RefreshToken == app.RefreshToken || next.AccessToken == app.AccessToken {
		t.Fatalf("refresh %+v", next)
	}
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Fatalf("headers %v", r.Header)
	}
	for _, bad := range []any{map[string]int{"access_token_ttl_days": 0}, map[string]int{"access_token_ttl_days": 366}, map[string]string{"access_token_ttl_days": "7"}} {
		servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-access", bad), 400, "invalid_request")
	}

	// Revoke: every token of the application stops at once.
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
	servertest.Expect(t, env.As(next.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, refresh(env, app.ClientID, next.RefreshToken), 400, "invalid_grant")
	if v := env.As(admin, "GET", "/v1/api-access", nil).Map(t); v["enabled"] != false {
		t.Fatalf("after revoke %v", v)
	}
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 404, "not_found")
	// It can be enabled again, with a lifetime in days.
	again := enableAPIAccess(t, env, admin, map[string]int{"access_token_ttl_days": 7})
	if again.ExpiresIn != 7*86400 || again.ClientID == app.ClientID {
		t.Fatalf("again %+v", again)
	}
}

func TestAPIAccessNeedsAdmin(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "dev@example.com", memberPW, "developer")
	dev := env.Login("dev@example.com", memberPW)
	for _, m := range []string{"POST", "GET", "PATCH", "DELETE"} {
		servertest.Expect(t, env.As(dev, m, "/v1/api-access", map[string]int{"access_token_ttl_days": 2}), 403, "forbidden")
	}
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-access", map[string]int{"access_token_ttl_days": 400}), 400, "invalid_request")
}

func TestAPIAccessDemoteAndDisable(t *testing.T) {
	for _, c := range []struct {
		name  string
		patch map[string]any
	}{
		{"demote", map[string]any{"roles": []string{"developer"}}},
		{"disable", map[string]any{"status": "disabled"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := servertest.Start(t)
			op := env.AdminToken()
			id := env.CreateUser(op, "boss@example.com", memberPW, "admin")
			app := enableAPIAccess(t, env, env.Login("boss@example.com", memberPW), nil)
			servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 200, "")
			servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+id, c.patch), 200, "")
			servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
			servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 400, "invalid_grant")
			// Restoring the user brings nothing back.
			servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+id, map[string]any{"roles": []string{"admin"}, "status": "active"}), 200, "")
			servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
			servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 400, "invalid_grant")
			if v := env.As(env.Login("boss@example.com", memberPW), "GET", "/v1/api-access", nil).Map(t); v["enabled"] != false {
				t.Fatalf("application survived: %v", v)
			}
		})
	}
}

func TestRefreshReuse(t *testing.T) {
	t.Run("inside the grace period", func(t *testing.T) {
		env := servertest.Start(t)
		app := enableAPIAccess(t, env, env.AdminToken(), nil)
		var next, again apiAccess
		refresh(env, app.ClientID, app.RefreshToken).JSON(t, &next)
		// The same client's retry gets the same pair.
		refresh(env, app.ClientID, app.RefreshToken).JSON(t, &again)
		if again.RefreshToken != next.RefreshToken {
			t.Fatalf("a retry inside the grace period got another pair")
		}
		// The lineage is kept; once the successor is used, the old token
		// is refused.
		servertest.Expect(t, env.As(next.AccessToken, "GET", "/v1/me", nil), 200, "")
		servertest.Expect(t, refresh(env, app.ClientID, next.RefreshToken), 200, "")
		servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 400, "invalid_grant")
	})
	t.Run("after the grace period", func(t *testing.T) {
		env := servertest.Start(t, func(c *server.Config) { c.RefreshGrace = 50 * time.Millisecond })
		admin := env.AdminToken()
		app := enableAPIAccess(t, env, admin, nil)
		var next, newest apiAccess
		refresh(env, app.ClientID, app.RefreshToken).JSON(t, &next)
		refresh(env, app.ClientID, next.RefreshToken).JSON(t, &newest)
		servertest.Expect(t, env.As(newest.AccessToken, "GET", "/v1/me", nil), 200, "")
		time.Sleep(100 * time.Millisecond)
		servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 400, "invalid_grant")
		// The whole lineage is revoked: the newest tokens stop working.
		servertest.Expect(t, env.As(newest.AccessToken, "GET", "/v1/me", nil), 401, "invalid_token")
		servertest.Expect(t, refresh(env, app.ClientID, newest.RefreshToken), 400, "invalid_grant")
		findAudit(t, auditEntries(t, env, admin), "api_access.lineage_revoked")
	})
	t.Run("wrong client or kind", func(t *testing.T) {
		env := servertest.Start(t)
		app := enableAPIAccess(t, env, env.AdminToken(), nil)
		servertest.Expect(t, refresh(env, "gci_other", app.RefreshToken), 400, "invalid_grant")
		servertest.Expect(t, refresh(env, app.ClientID, app.AccessToken), 400, "invalid_grant")
		servertest.Expect(t, refresh(env, app.ClientID, "grt_garbage"), 400, "invalid_grant")
		servertest.Expect(t, env.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": app.RefreshToken}), 400, "invalid_request")
		// None of that used the token up.
		servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 200, "")
	})
}

// TestRefreshWithCurl sends the reference guide's own request with curl.
func TestRefreshWithCurl(t *testing.T) {
	curl := testenv.RequireTool(t, "curl")
	env := servertest.Start(t)
	app := enableAPIAccess(t, env, env.AdminToken(), nil)
	body := `{"grant_type":"refresh_token", "client_id": "` + app.ClientID + `", "refresh_token":"` + app.RefreshToken + `"}`
	out, err := exec.Command(curl, "-s", "-d", body, "-H", "Content-Type: application/json", "-X", "POST", env.URL+"/oauth/token").Output()
	if err != nil {
		t.Fatal(err)
	}
	var got apiAccess
	if err := json.Unmarshal(out, &got); err != nil || got.AccessToken == "" || got.RefreshToken == "" || got.TokenType != "bearer" {
		t.Fatalf("curl got %s", out)
	}
	// The form body works as well, on /v1/oauth/token.
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {app.ClientID}, "refresh_token": {got.RefreshToken}}.Encode()
	out, err = exec.Command(curl, "-s", "-d", form, env.URL+"/v1/oauth/token").Output()
	if err != nil || json.Unmarshal(out, &got) != nil || got.AccessToken == "" {
		t.Fatalf("form refresh: %v %s", err, out)
	}
}

// TestOAuth2TokenSourceRefreshes lets golang.org/x/oauth2 refresh an
// expired token through the server, unchanged.
func TestOAuth2TokenSourceRefreshes(t *testing.T) {
	env := servertest.Start(t)
	app := enableAPIAccess(t, env, env.AdminToken(), nil)
	cfg := &oauth2.Config{ClientID: app.ClientID, Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.Background()
	src := cfg.TokenSource(ctx, &oauth2.Token{AccessToken: app.AccessToken, RefreshToken: app.RefreshToken, Expiry: time.Now().Add(-time.Minute)})
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == app.AccessToken || tok.RefreshToken == app.RefreshToken || !tok.Valid() {
		t.Fatalf("token %+v", tok)
	}
	resp, err := oauth2.NewClient(ctx, oauth2.StaticTokenSource(tok)).Get(env.URL + "/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/v1/me with the refreshed token: %d", resp.StatusCode)
	}
}
