package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// TestUsageByCredential: usage counts each request once, for the user it
// was made as and the credential it came through, and counts refusals
// apart — a client credential whose developer was disabled (401), an API
// token beyond its scopes or acting as nobody of the account (403), or
// once API tokens are turned off (401) —
// while a token nobody issued is counted nowhere. The admin's usage page
// names every credential as the rest of the UI does, with its owner, and
// fits a phone and a laptop.
func TestUsageByCredential(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.UsageFlushInterval = 50 * time.Millisecond })
	admin, devID, _, c := developer(t, env)
	accountID := accountOf(t, env, admin)
	cc := accessToken(t, clientToken(env, c))
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	reader, readerID := apiTokenWith(t, env, admin, map[string]any{"name": "billing sync", "scopes": []string{"workspaces:read"}})
	asReader := func(method, path string, body any, headers ...string) *servertest.Response {
		return env.Request(method, path, body, append([]string{"X-API-Token", reader}, headers...)...)
	}

	for range 3 {
		servertest.Expect(t, env.As(cc, "GET", "/v1/me", nil), 200, "")
	}
	for range 2 {
		servertest.Expect(t, asReader("GET", "/v1/workspaces", nil), 200, "")
		servertest.Expect(t, asReader("POST", "/v1/workspaces", map[string]string{"name": "x"}), 403, "insufficient_scope")
	}
	servertest.Expect(t, asReader("GET", "/v1/me", nil, "X-User-Email", "nobody@example.com"), 403, "invalid_user")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]string{"status": "disabled"}), 200, "")
	for range 4 {
		servertest.Expect(t, env.As(cc, "GET", "/v1/me", nil), 401, "invalid_token")
	}
	servertest.Expect(t, env.As(token.New(token.AccessToken), "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false}), 200, "")
	servertest.Expect(t, asReader("GET", "/v1/workspaces", nil), 401, "invalid_token")

	waitForUsage(t, env, accountID, map[usageOf]store.UsageCounts{
		{devID, "client_credentials:" + c.ClientID}: {Served: 3, Unauthorized: 4},
		{"", "api_token:" + readerID}:               {Served: 2, Forbidden: 3, Unauthorized: 1},
	})
	rows, err := env.Server.Store.Usage(t.Context(), accountID, "2000-01-01")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Credential != "client_credentials:"+c.ClientID && r.Credential != "api_token:"+readerID && r.Credential != "password:" {
			t.Errorf("usage of a credential nobody used: %+v", r)
		}
	}

	ctx := browser(t)
	run(t, ctx, uiLogin(env, servertest.AdminEmail, servertest.AdminPassword), chromedp.Navigate(env.URL+"/admin/usage"),
		chromedp.WaitVisible("#by-credential", chromedp.ByID))
	var table [][]string
	run(t, ctx, chromedp.Evaluate(`Array.from(document.querySelectorAll("#by-credential tbody tr")).map(tr =>
		Array.from(tr.cells).map(td => td.innerText.replace(/\s+/g, " ").trim()))`, &table))
	want := map[string][]string{
		"CI Client credential":   {"dev@example.com", "3", "4", "0", "0"},
		"billing sync API token": {"the account", "2", "1", "3", "0"},
	}
	for _, row := range table {
		if w, ok := want[row[0]]; ok {
			if got := row[1:]; !slices.Equal(got, w) {
				t.Errorf("usage of %s: %q, want %q", row[0], got, w)
			}
			delete(want, row[0])
		}
	}
	if len(want) > 0 {
		t.Errorf("the usage page does not list %v; it shows %q", want, table)
	}
	if n := len(texts(t, ctx, "#by-credential td.refused")); n != 3 {
		t.Errorf("%d refused counts marked, want 3", n)
	}
	shot(t, ctx, "usage")
	bothWidths(t, ctx, "usage")
}
