package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestConsoleLeakedCredentials: an API token and a developer's client
// credential reported found (the bulk endpoint) show in the console as
// leaked, with what to do next; Roll, in headless Chromium, shows a new
// secret once, which works, while the leaked one stays refused.
func TestConsoleLeakedCredentials(t *testing.T) {
	env := servertest.Start(t)
	admin, _, _, cred := developer(t, env)
	tok := withAPIToken(t, env, admin)
	servertest.Expect(t, env.Request("POST", "/v1/credentials/revoke", map[string][]string{"credentials": {tok.Token, cred.ClientSecret}}), 202, "")

	ctx := browser(t)
	run(t, ctx, uiLogin(env, servertest.AdminEmail, servertest.AdminPassword),
		chromedp.Navigate(env.URL+"/admin/extensions"), chromedp.WaitVisible("table", chromedp.ByQuery))
	page := pageHTML(t, ctx)
	if !strings.Contains(page, ">leaked<") || !strings.Contains(page, "Roll it for a new token") {
		t.Fatalf("the extensions page does not show the leaked API token:\n%s", page)
	}
	shot(t, ctx, "console-leaked-api-token")
	run(t, ctx, submit("Roll"))
	rolled := textOf(t, ctx, "#api-token")
	if rolled == tok.Token {
		t.Fatal("the roll showed the leaked token again")
	}
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", rolled), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token), 401, "")
	// Rolled once, it offers no second roll (which would be refused).
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/extensions"), chromedp.WaitVisible("table", chromedp.ByQuery))
	if page := pageHTML(t, ctx); !strings.Contains(page, "It has been rolled into a new token") || strings.Contains(page, ">Roll</button>") {
		t.Fatalf("the extensions page offers to roll the leaked API token again:\n%s", page)
	}
	shot(t, ctx, "console-leaked-api-token-rolled")
	// Its replacement deleted, it may be rolled again, and says so.
	var list struct {
		Data []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"data"`
	}
	env.As(admin, "GET", "/v1/api-tokens", nil).JSON(t, &list)
	for _, k := range list.Data {
		if k.ID != tok.ID && k.Name == tok.Name {
			servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-tokens/"+k.ID, nil), 204, "")
		}
	}
	run(t, ctx, chromedp.Navigate(env.URL+"/admin/extensions"), chromedp.WaitVisible("table", chromedp.ByQuery))
	if page := pageHTML(t, ctx); !strings.Contains(page, "Roll it for a new token") || !strings.Contains(page, ">Roll</button>") {
		t.Fatalf("the extensions page does not offer to roll the leaked API token whose replacement was deleted:\n%s", page)
	}

	dev := browser(t)
	run(t, dev, uiLogin(env, "dev@example.com", memberPW),
		chromedp.Navigate(env.URL+"/admin/credentials"), chromedp.WaitVisible("table", chromedp.ByQuery))
	page = pageHTML(t, dev)
	if !strings.Contains(page, ">leaked<") || !strings.Contains(page, "Roll it for a new secret") {
		t.Fatalf("the credentials page does not show the leaked credential:\n%s", page)
	}
	shot(t, dev, "console-leaked-credential")
	run(t, dev, submit("Roll"))
	id, secret := textOf(t, dev, "#new-client-id"), textOf(t, dev, "#new-client-secret")
	if secret == cred.ClientSecret {
		t.Fatal("the roll showed the leaked secret again")
	}
	servertest.Expect(t, clientToken(env, credential{ClientID: id, ClientSecret: secret}), 200, "")
	servertest.Expect(t, clientToken(env, cred), 401, "")
	run(t, dev, chromedp.Navigate(env.URL+"/admin/credentials"), chromedp.WaitVisible("table", chromedp.ByQuery))
	if page := pageHTML(t, dev); !strings.Contains(page, "It has been rolled into a new credential") || strings.Contains(page, ">Roll</button>") {
		t.Fatalf("the credentials page offers to roll the leaked credential again:\n%s", page)
	}
}
