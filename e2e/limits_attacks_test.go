package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/passkey"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
)

// Count limits and uniqueness rules attacked with creations released
// together (volley: connections opened in advance, last bytes sent at
// once). Each test runs on the store GATEHOUSE_TEST_DATABASE picks, so
// run them twice: once as is (SQLite), once with =postgres.

// limitTally counts a volley's answers by status and error code, and fails
// the test for any answer outside want (so any 5xx but a documented one).
func limitTally(t *testing.T, what string, res volleyResult, want map[string]bool) map[string]int {
	t.Helper()
	out := map[string]int{}
	for i, r := range res.resps {
		key := fmt.Sprint(r.Status)
		if r.Status >= 400 {
			var e struct {
				Error string `json:"error"`
			}
			r.JSON(t, &e)
			key += " " + e.Error
		}
		out[key]++
		if !want[key] {
			t.Errorf("%s: shot %d: unexpected %d %s", what, i, r.Status, strings.TrimSpace(string(r.Body)))
		}
	}
	if n := servertest.Conflicts() - res.conflicts; n > 0 {
		t.Errorf("%s: %d write transactions deadlocked and were run again", what, n)
	}
	return out
}

// limitListLen returns how many items GET path lists (one page of 200).
func limitListLen(t *testing.T, env *servertest.Env, tok, path string) int {
	t.Helper()
	r := env.As(tok, "GET", path, nil)
	servertest.Expect(t, r, 200, "")
	var l struct {
		Data []map[string]any `json:"data"`
	}
	r.JSON(t, &l)
	return len(l.Data)
}

// TestLimitsAppsPerDeveloper: "A developer registers at most 100
// applications" (docs/third-party-apps.md). At 96, ten registrations
// released together: exactly 4 are made, the rest 409 limit_reached.
func TestLimitsAppsPerDeveloper(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	unlimit(t, env, admin)
	body := func(i int) string {
		return fmt.Sprintf(`{"name":"App %d","type":"public","redirect_uris":["https://app.example.com/cb"]}`, i)
	}
	const before = service.MaxAppsPerUser - 4
	for i := 0; i < before; i++ {
		servertest.Expect(t, env.As(devTok, "POST", "/v1/apps", body(i), "Content-Type", "application/json"), 201, "")
	}
	var shots []volleyReq
	for i := 0; i < 10; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, env, devTok, "POST", "/v1/apps", body(1000+i))})
	}
	got := limitTally(t, "apps", volley(t, shots), map[string]bool{"201": true, "409 limit_reached": true})
	if got["201"] != 4 {
		t.Errorf("apps: %d registered at once with room for 4: %v", got["201"], got)
	}
	if n := limitListLen(t, env, devTok, "/v1/apps?limit=200"); n != service.MaxAppsPerUser {
		t.Errorf("apps: the developer holds %d, the limit is %d", n, service.MaxAppsPerUser)
	}
}

// TestLimitsWebhooksPerAccount: "An account has at most 50 endpoints
// (409 conflict beyond)" (docs/webhooks.md). At 45, ten creations released
// together: exactly 5 are made.
func TestLimitsWebhooksPerAccount(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	body := func(i int) string { return fmt.Sprintf(`{"url":"http://127.0.0.1:9/in%d","events":["*"]}`, i) }
	const before = service.MaxWebhooks - 5
	for i := 0; i < before; i++ {
		servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks", body(i), "Content-Type", "application/json"), 201, "")
	}
	var shots []volleyReq
	for i := 0; i < 10; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, env, admin, "POST", "/v1/webhooks", body(1000+i))})
	}
	got := limitTally(t, "webhooks", volley(t, shots), map[string]bool{"201": true, "409 conflict": true})
	if got["201"] != 5 {
		t.Errorf("webhooks: %d created at once with room for 5: %v", got["201"], got)
	}
	if n := limitListLen(t, env, admin, "/v1/webhooks?limit=200"); n != service.MaxWebhooks {
		t.Errorf("webhooks: the account holds %d, the limit is %d", n, service.MaxWebhooks)
	}
}

// TestLimitsAPITokenOneName: an API token's name is unique among the
// account's live ones in any case (docs/api-tokens.md: "a second Zapier
// (or zapier) is 409 conflict"). Ten creations of Zapier in several cases
// released together, plus renames of two existing tokens to it: exactly
// one live token named so.
func TestLimitsAPITokenOneName(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	var ids []string
	for i := 0; i < 2; i++ {
		r := env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": fmt.Sprintf("other %d", i)})
		servertest.Expect(t, r, 201, "")
		ids = append(ids, r.Map(t)["id"].(string))
	}
	cases := []string{"Zapier", "zapier", "ZAPIER", "zApier"}
	var shots []volleyReq
	for i := 0; i < 10; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, env, admin, "POST", "/v1/api-tokens", fmt.Sprintf(`{"name":%q}`, cases[i%len(cases)]))})
		if i == 3 || i == 7 {
			shots = append(shots, volleyReq{req: asRequest(t, env, admin, "PATCH", "/v1/api-tokens/"+ids[i/4], `{"name":"ZAPIER"}`)})
		}
	}
	got := limitTally(t, "API tokens", volley(t, shots), map[string]bool{"200": true, "201": true, "409 conflict": true})
	if got["201"]+got["200"] != 1 {
		t.Errorf("API tokens: %d named Zapier at once: %v", got["201"]+got["200"], got)
	}
	r := env.As(admin, "GET", "/v1/api-tokens?limit=200", nil)
	servertest.Expect(t, r, 200, "")
	if n := strings.Count(strings.ToLower(string(r.Body)), `"name":"zapier"`); n != 1 {
		t.Errorf("API tokens: %d live tokens named zapier: %s", n, r.Body)
	}
}

// TestLimitsCredentialNameRenameVsCreate: a developer's credential
// names are unique among their live ones in any case, also when
// renaming (docs/oauth.md). Creations and renames to one name released
// together: exactly one live credential holds it.
func TestLimitsCredentialNameRenameVsCreate(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	unlimit(t, env, admin)
	var ids []string
	for i := 0; i < 4; i++ {
		r := env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("c%d", i)})
		servertest.Expect(t, r, 201, "")
		ids = append(ids, r.Map(t)["id"].(string))
	}
	var shots []volleyReq
	for i := 0; i < 8; i++ {
		if i%2 == 0 {
			shots = append(shots, volleyReq{req: asRequest(t, env, devTok, "PATCH", "/v1/credentials/"+ids[i/2], `{"name":"Deploy"}`)})
		} else {
			shots = append(shots, volleyReq{req: asRequest(t, env, devTok, "POST", "/v1/credentials", `{"name":"deploy"}`)})
		}
	}
	got := limitTally(t, "credentials", volley(t, shots), map[string]bool{"200": true, "201": true, "409 conflict": true})
	if got["201"]+got["200"] != 1 {
		t.Errorf("credentials: %d named deploy at once: %v", got["201"]+got["200"], got)
	}
	r := env.As(devTok, "GET", "/v1/credentials", nil)
	servertest.Expect(t, r, 200, "")
	if n := strings.Count(strings.ToLower(string(r.Body)), `"name":"deploy"`); n != 1 {
		t.Errorf("credentials: %d live credentials named deploy: %s", n, r.Body)
	}
}

// TestLimitsEmailAcrossServer: "Email (unique across the whole server,
// case-insensitive)" (SPEC §1). Admins of three accounts create a user
// with one address, the operator creates an account whose admin has it,
// all released together, in several cases: exactly one succeeds, the rest 409 conflict.
func TestLimitsEmailAcrossServer(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	for round := 0; round < 4; round++ {
		email := fmt.Sprintf("twin%d@example.com", round)
		variants := []string{email, strings.ToUpper(email), "Twin" + email[4:]}
		var shots []volleyReq
		for i := 0; i < 3; i++ {
			_, adm := env.CreateAccount(op, fmt.Sprintf("acct %d-%d", round, i), fmt.Sprintf("boss%d-%d@acct.example", round, i), memberPW)
			unlimit(t, env, adm)
			for k := 0; k < 2; k++ {
				shots = append(shots, volleyReq{req: asRequest(t, env, adm, "POST", "/v1/users",
					fmt.Sprintf(`{"email":%q,"name":"twin","password":%q,"roles":[]}`, variants[(i+k)%3], memberPW))})
			}
		}
		shots = append(shots, volleyReq{req: asRequest(t, env, op, "POST", "/v1/accounts",
			fmt.Sprintf(`{"name":"twin acct %d","admin_email":%q,"admin_password":%q}`, round, variants[2], memberPW))})
		got := limitTally(t, fmt.Sprintf("round %d", round), volley(t, shots), map[string]bool{"200": true, "201": true, "409 conflict": true})
		if got["201"]+got["200"] != 1 {
			t.Errorf("round %d: %d users got %s at once: %v", round, got["201"]+got["200"], email, got)
		}
		r := env.As(op, "GET", "/v1/users?all_accounts=true&email="+url.QueryEscape(email), nil)
		servertest.Expect(t, r, 200, "")
		if n := strings.Count(strings.ToLower(string(r.Body)), `"email":"`+email+`"`); n != 1 {
			t.Errorf("round %d: %d users hold %s: %s", round, n, email, r.Body)
		}
	}
}

// limitSecretWorks reports whether a client credential's secret gets a token.
func limitSecretWorks(t *testing.T, env *servertest.Env, clientID, secret string) bool {
	t.Helper()
	r := clientToken(env, credential{ClientID: clientID, ClientSecret: secret})
	if r.Status >= 500 {
		t.Fatalf("client credentials grant: %d %s", r.Status, r.Body)
	}
	return r.Status == 200
}

// TestLimitsCredentialRollTwoSecrets: a roll keeps at most two secrets
// of a credential working: "a roll ends any earlier roll's overlap"
// (docs/scopes.md). Six rolls with an hour's overlap released together:
// of the seven secrets, exactly two work afterwards.
func TestLimitsCredentialRollTwoSecrets(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, c := developer(t, env)
	unlimit(t, env, admin)
	for round := 0; round < 3; round++ {
		var shots []volleyReq
		for i := 0; i < 6; i++ {
			shots = append(shots, volleyReq{req: asRequest(t, env, devTok, "POST", "/v1/credentials/"+c.ID+"/roll", `{"overlap_seconds":3600}`)})
		}
		res := volley(t, shots)
		limitTally(t, "rolls", res, map[string]bool{"200": true, "201": true})
		secrets := []string{c.ClientSecret}
		for _, r := range res.resps {
			if r.Status < 300 {
				secrets = append(secrets, r.Map(t)["client_secret"].(string))
			}
		}
		working := 0
		last := ""
		for _, s := range secrets {
			if limitSecretWorks(t, env, c.ClientID, s) {
				working++
				last = s
			}
		}
		if working != 2 {
			t.Errorf("round %d: %d of %d secrets work after rolls released together, want 2", round, working, len(secrets))
		}
		c.ClientSecret = last
		if t.Failed() {
			return
		}
	}
}

// limitAppSecretWorks reports whether a confidential application's secret
// authenticates at the token endpoint: a bogus code is then invalid_grant
// (400), not invalid_client (401).
func limitAppSecretWorks(t *testing.T, env *servertest.Env, clientID, secret string) bool {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {appRedirect},
		"client_id": {clientID}, "client_secret": {secret}, "code_verifier": {strings.Repeat("v", 50)}}
	r := env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	switch r.Status {
	case 400:
		return true
	case 401:
		return false
	}
	t.Fatalf("token endpoint: %d %s", r.Status, r.Body)
	return false
}

// TestLimitsAppRollTwoSecrets: "two secrets at most: a roll ends any
// earlier roll's overlap" (docs/third-party-apps.md). Six rolls of a
// confidential application released together: two secrets work after.
func TestLimitsAppRollTwoSecrets(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	unlimit(t, env, admin)
	app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, nil)
	if !limitAppSecretWorks(t, env, app.ClientID, app.ClientSecret) || limitAppSecretWorks(t, env, app.ClientID, app.ClientSecret+"x") {
		t.Fatal("the probe of a secret does not tell")
	}
	for round := 0; round < 3; round++ {
		var shots []volleyReq
		for i := 0; i < 6; i++ {
			shots = append(shots, volleyReq{req: asRequest(t, env, devTok, "POST", "/v1/apps/"+app.ID+"/roll", `{"overlap_seconds":3600}`)})
		}
		res := volley(t, shots)
		limitTally(t, "app rolls", res, map[string]bool{"200": true, "201": true})
		secrets := []string{app.ClientSecret}
		for _, r := range res.resps {
			if r.Status < 300 {
				secrets = append(secrets, r.Map(t)["client_secret"].(string))
			}
		}
		working, last := 0, ""
		for _, s := range secrets {
			if limitAppSecretWorks(t, env, app.ClientID, s) {
				working++
				last = s
			}
		}
		if working != 2 {
			t.Errorf("round %d: %d of %d secrets work after rolls released together, want 2", round, working, len(secrets))
		}
		app.ClientSecret = last
		if t.Failed() {
			return
		}
	}
}

// TestLimitsPasswordlessSignInsWaiting: "Anyone may begin a
// password-less sign-in, so at most 10,000 wait at once (then 503 with
// Retry-After until some expire)" (docs/console-security.md). With 10
// places left, 40 beginnings released together: exactly 10 are begun,
// the rest 503, and the store then holds 10,000 waiting sign-ins.
func TestLimitsPasswordlessSignInsWaiting(t *testing.T) {
	env := startOnLocalhost(t)
	csrf, cookie := adminLoginForm(t, env.URL)
	begin := func() *http.Request {
		return formRequest(t, env.URL+"/admin/login/passkey/options", url.Values{"csrf": {csrf}}, "Cookie", "gatehouse_login_csrf="+cookie)
	}
	const left = 10
	// All but left begun already, straight in the store (the route is
	// what is attacked, not the filling).
	fill := service.MaxOpenPasswordlessSignIns - left
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	now := time.Now()
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(fill) {
				c := &store.PasskeyChallenge{ID: gatehouse.NewID("pkc"), Purpose: store.ChallengeSignIn, Session: []byte(`{}`),
					CreatedAt: now, ExpiresAt: now.Add(passkey.ChallengeLifetime)}
				if _, err := env.Server.Store.CreatePasskeyChallenge(context.Background(), c, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var shots []volleyReq
	for i := 0; i < 4*left; i++ {
		shots = append(shots, volleyReq{req: begin()})
	}
	got := limitTally(t, "password-less beginnings", volley(t, shots), map[string]bool{"200": true, "503 temporarily_unavailable": true, "503 unavailable": true})
	if got["200"] != left {
		t.Errorf("%d password-less sign-ins begun at once with room for %d: %v", got["200"], left, got)
	}
	n, err := env.Server.Store.LivePasskeyChallenges(context.Background(), store.ChallengeSignIn, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n > service.MaxOpenPasswordlessSignIns {
		t.Errorf("%d password-less sign-ins wait, the limit is %d", n, service.MaxOpenPasswordlessSignIns)
	}
}

// TestLimitsAPIAccessQuota: "a quota never admits more than its limit
// in its period, under any concurrency" (docs/security.md), on an API
// access application's plan (docs/plans.md): a quota of 5, then 20
// requests with its access token released together: exactly 5 admitted,
// the rest 422 quota_exceeded.
func TestLimitsAPIAccessQuota(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	r := env.As(admin, "POST", "/v1/api-access", map[string]any{"quota": map[string]any{"limit": 5, "period": "day"}})
	servertest.Expect(t, r, 201, "")
	tok := r.Map(t)["access_token"].(string)
	var shots []volleyReq
	for i := 0; i < 20; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, env, tok, "GET", "/v1/me", "")})
	}
	got := limitTally(t, "API access quota", volley(t, shots), map[string]bool{"200": true, "422 quota_exceeded": true})
	if got["200"] != 5 {
		t.Errorf("API access quota of 5: %d admitted at once: %v", got["200"], got)
	}
}

// TestLimitsAppQuotaTogether: a third-party application's quota counts
// per account of its users (docs/plans.md) and never admits more than
// its limit under concurrency (docs/security.md): a quota of 6, two users
// of one account, 24 requests through their tokens released together:
// exactly 6 admitted.
func TestLimitsAppQuotaTogether(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	unlimit(t, env, admin)
	users := []string{"qa1@example.com", "qa2@example.com"}
	for _, u := range users {
		env.CreateUser(admin, u, memberPW)
	}
	app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, []string{"workspaces:read"})
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"quota": map[string]any{"limit": 6, "period": "day"}}), 200, "")
	var toks []string
	for _, email := range users {
		verifier := oauth2.GenerateVerifier()
		conf := oauthConfig(env, app, appRedirect, "workspaces:read")
		cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), email, memberPW, "allow")
		if cb == nil {
			t.Fatalf("no redirect to the application: %d %s", resp.StatusCode, body)
		}
		tok := exchange(env, app, cb.Query().Get("code"), appRedirect, verifier)
		servertest.Expect(t, tok, 200, "")
		toks = append(toks, tok.Map(t)["access_token"].(string))
	}
	var shots []volleyReq
	for i := 0; i < 24; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, env, toks[i%2], "GET", "/v1/workspaces", "")})
	}
	got := limitTally(t, "app quota", volley(t, shots), map[string]bool{"200": true, "422 quota_exceeded": true})
	if got["200"] != 6 {
		t.Errorf("application quota of 6: %d admitted at once: %v", got["200"], got)
	}
}

// TestLimitsListBounds: "Each redirect URI (1 to 10 …)"
// (docs/third-party-apps.md) and "custom_scopes: at most 100 names"
// (docs/api.md): one more is 400 invalid_request on creation and on
// change, and nothing is stored.
func TestLimitsListBounds(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	uris := func(n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, fmt.Sprintf("https://app.example.com/cb%d", i))
		}
		return out
	}
	r := env.As(devTok, "POST", "/v1/apps", map[string]any{"name": "x", "type": "public", "redirect_uris": uris(11)})
	servertest.Expect(t, r, 400, "invalid_request")
	r = env.As(devTok, "POST", "/v1/apps", map[string]any{"name": "x", "type": "public", "redirect_uris": uris(10)})
	servertest.Expect(t, r, 201, "")
	id := r.Map(t)["id"].(string)
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+id, map[string]any{"redirect_uris": uris(11)}), 400, "invalid_request")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+id, map[string]any{"redirect_uris": []string{}}), 400, "invalid_request")
	if n := len(env.As(devTok, "GET", "/v1/apps/"+id, nil).Map(t)["redirect_uris"].([]any)); n != 10 {
		t.Errorf("the application holds %d redirect URIs after refused changes", n)
	}
	var scopes []string
	for i := 0; i < 101; i++ {
		scopes = append(scopes, fmt.Sprintf("reports:s%d", i))
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"custom_scopes": scopes}), 400, "invalid_request")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"custom_scopes": scopes[:100]}), 200, "")
}
