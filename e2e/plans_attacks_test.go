package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// appUserToken runs the authorization code grant of app for the user
// email and returns the access token.
func appUserToken(t *testing.T, env *servertest.Env, app thirdPartyApp, email, pw string, scopes ...string) string {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	conf := oauthConfig(env, app, appRedirect, scopes...)
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), email, pw, "allow")
	if cb == nil {
		t.Fatalf("no redirect to the application: %d %s", resp.StatusCode, body)
	}
	tok := exchange(env, app, cb.Query().Get("code"), appRedirect, verifier)
	servertest.Expect(t, tok, 200, "")
	return tok.Map(t)["access_token"].(string)
}

// TestPlansAppQuotaThresholdPerAccount: a third-party application's
// quota counts per account of its users (docs/plans.md), and
// quota.threshold is sent "once per quota, period and threshold". Each
// account's quota of the application is its own, so each account that
// listens must be told when its users reach 80 % of theirs. The notice
// row that makes it "once" is keyed by budget and period alone
// (webhook_notices.credential_id) names the account for an
// application's budget: A's crossing and B's are each told to their own
// account (the row named the budget and period alone, and once A's users
// had crossed 80 %, B's crossing was never told to B).
func TestPlansAppQuotaThresholdPerAccount(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin, _, devTok, _ := developer(t, env)
	env.CreateUser(admin, appMember, memberPW)
	app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, []string{"workspaces:read"})
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"quota": map[string]any{"limit": 5, "period": "day"}}), 200, "")

	rcA, rcB := newReceiver(t, nil), newReceiver(t, nil)
	servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rcA.URL, "events": []string{"quota.threshold"}}), 201, "")
	_, otherAdmin := env.CreateAccount(admin, "Other", "boss@other.example", "other admin password")
	servertest.Expect(t, env.As(otherAdmin, "POST", "/v1/webhooks", map[string]any{"url": rcB.URL, "events": []string{"quota.threshold"}}), 201, "")
	servertest.Expect(t, env.As(otherAdmin, "PUT", "/v1/apps/"+app.ClientID+"/approval", nil), 200, "")
	env.CreateUser(otherAdmin, "reader@other.example", memberPW)

	// Account A's member reaches 80 % of A's quota of the application.
	member := appUserToken(t, env, app, appMember, memberPW, "workspaces:read")
	for range 4 {
		servertest.Expect(t, env.As(member, "GET", "/v1/workspaces", nil), 200, "")
	}
	rcA.wait(t, "quota.threshold", 10*time.Second)

	// Account B's user reaches 80 % of B's own quota of it.
	reader := appUserToken(t, env, app, "reader@other.example", memberPW, "workspaces:read")
	for i := range 4 {
		r := env.As(reader, "GET", "/v1/workspaces", nil)
		servertest.Expect(t, r, 200, "")
		if got, want := r.Header.Get("X-RateLimit-Quota-Remaining"), string(rune('4'-i)); got != want {
			t.Fatalf("B's request %d: quota remaining %q, want %q (B's quota is its own)", i, got, want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rcB.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(rcB.all()) == 0 {
		t.Fatalf("account B's users used 4 of B's quota of 5 for the application, and B's quota.threshold webhook was never told (A got %d event(s))", len(rcA.all()))
	}
	for _, d := range rcB.all() {
		if d.Event.Data["threshold"] != "80" || d.Event.Data["used"] != "4" {
			t.Errorf("B's event %s", d.Body)
		}
	}
}

// TestPlansAppTokenLiftsOwnPlan: "nothing [an application's token]
// does may outlive the authorisation" (docs/third-party-apps.md). The
// application's plan is set by its developer to bind every token its
// users hold, in every account. A token the application holds for an
// admin of the developer's account, granted credentials:write, may not
// clear the application's own quota and allow-list (403): a lasting
// change, which would bind none of its users in any account any more and
// survive the revocation of the authorisation it was made with (it was
// made, 200).
func TestPlansAppTokenLiftsOwnPlan(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	app := registerApp(t, env, devTok, "confidential", []string{appRedirect}, []string{"credentials:write", "credentials:read", "workspaces:read"})
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"quota": map[string]any{"limit": 3, "period": "day"}}), 200, "")

	// The account's admin authorises it (as the operator: the bootstrap
	// admin of the test server).
	tok := appUserToken(t, env, app, servertest.AdminEmail, servertest.AdminPassword, "credentials:write", "credentials:read", "workspaces:read")
	r := env.As(tok, "PATCH", "/v1/apps/"+app.ID, map[string]any{"quota": nil, "allowed_ips": []string{}})
	if r.Status != http.StatusForbidden {
		t.Errorf("an application's token changed its own application's plan: %d %s", r.Status, r.Body)
	}
	got := env.As(admin, "GET", "/v1/apps/"+app.ID, nil)
	servertest.Expect(t, got, 200, "")
	if got.Map(t)["quota"] == nil {
		t.Fatalf("the application's quota set by its developer is gone, cleared by the application's own token: %s", got.Body)
	}
}

// TestPlansQuotaExactAcrossWaysIn: a user with a quota of 9 a day and
// a burst of their own, reached through a client credential with a
// quota of 5, a password-grant token and an API token acting as them
// with a quota of 4, 60 requests released together over connections
// opened beforehand: exactly 9 admitted in all, never more than 5
// through the credential or 4 through the API token; the user's quota
// then reads back 0 and the refusals were charged to nothing.
func TestPlansQuotaExactAcrossWaysIn(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, devTok, _ := developer(t, env)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{
		"quota":      map[string]any{"limit": 9, "period": "day"},
		"rate_limit": map[string]int{"daily": 1000, "burst": 50, "burst_window_seconds": 600}}), 200, "")
	r := env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "q5", "quota": map[string]any{"limit": 5, "period": "month"}})
	servertest.Expect(t, r, 201, "")
	var c credential
	r.JSON(t, &c)
	cc := accessToken(t, clientToken(env, c))
	apiTok, _ := apiTokenWith(t, env, admin, map[string]any{"name": "as dev", "quota": map[string]any{"limit": 4, "period": "day"}})
	// The developer's own requests above counted: creating the credential.
	used := 1
	ways := [][]string{{"Authorization", "Bearer " + cc}, {"Authorization", "Bearer " + devTok}, {"X-API-Token", apiTok, "X-User-Email", "dev@example.com"}}
	const n = 60
	client, _ := preconnected(t, env.URL, n)
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		admitted = make([]int, len(ways))
		other    = map[string]int{}
		start    = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", env.URL+"/v1/me", nil)
			h := ways[i%len(ways)]
			for k := 0; k < len(h); k += 2 {
				req.Header.Set(h[k], h[k+1])
			}
			<-start
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case resp.StatusCode == 200:
				admitted[i%len(ways)]++
			case resp.StatusCode == 422 && strings.Contains(string(body), "quota_exceeded"):
			default:
				other[resp.Status+" "+string(body)]++
			}
		})
	}
	close(start)
	wg.Wait()
	if len(other) > 0 {
		t.Errorf("other answers %v", other)
	}
	total := admitted[0] + admitted[1] + admitted[2]
	if total != 9-used || admitted[0] > 5 || admitted[2] > 4 {
		t.Fatalf("admitted %v (credential, password, API token): want %d in all, at most 5 and 4", admitted, 9-used)
	}
	u := env.As(admin, "GET", "/v1/users/"+devID, nil)
	servertest.Expect(t, u, 200, "")
	if q := u.Map(t)["quota"].(map[string]any); q["remaining"] != float64(0) {
		t.Fatalf("the user's quota reads back %v", q)
	}
}

// TestPlansLeakedCredentialRollShedsPlan: a client credential whose
// secret leaked is revoked for good, and its roll "makes a new credential
// with the same name, scopes and expiry" (docs/leak-response.md) — and
// the same plan: the allow-list its owner set (the CI key that works only
// from the build network), its quota, rate limit, metadata and external
// id (the replacement had none, and worked from any address without
// limit). A rolled API token, leaked or not, keeps its plan
// (RollAPIToken); an ordinary roll of a credential keeps its id, and so
// its plan.
func TestPlansLeakedCredentialRollShedsPlan(t *testing.T) {
	env := servertest.Start(t)
	_, _, devTok, _ := developer(t, env)
	r := env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "build",
		"allowed_ips": []string{"203.0.113.0/24"}, "quota": map[string]any{"limit": 3, "period": "month"},
		"rate_limit":  map[string]int{"daily": 100, "burst": 5, "burst_window_seconds": 60},
		"external_id": "cus_42", "metadata": map[string]string{"tier": "free"}})
	servertest.Expect(t, r, 201, "")
	var c credential
	r.JSON(t, &c)
	// From here (127.0.0.1, outside the list) the credential is refused.
	servertest.Expect(t, clientToken(env, c), 403, "ip_not_allowed")

	// The secret leaks and is reported; the owner rolls it.
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", url.Values{"token": {c.ClientSecret}, "token_type_hint": {"client_secret"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded"), 200, "")
	r = env.As(devTok, "POST", "/v1/credentials/"+c.ID+"/roll", map[string]any{})
	servertest.Expect(t, r, 200, "")
	next := credential{ClientID: r.Map(t)["client_id"].(string), ClientSecret: r.Map(t)["client_secret"].(string)}

	// The replacement's plan, as listed.
	list := env.As(devTok, "GET", "/v1/credentials", nil)
	servertest.Expect(t, list, 200, "")
	var found map[string]any
	for _, it := range list.Map(t)["data"].([]any) {
		if m := it.(map[string]any); m["client_id"] == next.ClientID {
			found = m
		}
	}
	if found == nil {
		t.Fatalf("the replacement is not listed: %s", list.Body)
	}
	if found["allowed_ips"] == nil || found["quota"] == nil || found["rate_limit"] == nil || found["external_id"] != "cus_42" {
		t.Errorf("the leaked credential's replacement has lost its plan: %v", found)
	}
	// And it works from the address the plan refused.
	if g := clientToken(env, next); g.Status != http.StatusForbidden {
		t.Fatalf("the replacement of a credential allowed only from 203.0.113.0/24 issues tokens to 127.0.0.1: %d %s", g.Status, g.Body)
	}
}
