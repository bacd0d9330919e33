package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestRollRetryNamesReplacement: docs/scopes.md "Expiry, disabling,
// rolling": "A token is rolled once: a second roll of the same token — a
// retry whose answer was lost, or two rolls released together — is
// 409 conflict naming the replacement (… roll its replacement, atk_…,
// instead)" — with the default overlap (0) too, which ends the rolled
// token at once: the retry learns of the replacement, not that the token
// expired (which would have it make another while the first lives on).
func TestRollRetryNamesReplacement(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	for _, overlap := range []int{0, 60} {
		r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "roll-" + string(rune('a'+overlap%26))})
		servertest.Expect(t, r, 201, "")
		id := r.Map(t)["id"].(string)
		first := env.As(admin, "POST", "/v1/api-tokens/"+id+"/roll", map[string]int{"overlap_seconds": overlap})
		servertest.Expect(t, first, 201, "")
		replacement := first.Map(t)["id"].(string)
		retry := env.As(admin, "POST", "/v1/api-tokens/"+id+"/roll", map[string]int{"overlap_seconds": overlap})
		if retry.Status != 409 || !strings.Contains(string(retry.Body), replacement) {
			t.Errorf("overlap %d: retry of a roll answered %d %s; the docs promise 409 naming the replacement %s",
				overlap, retry.Status, retry.Body, replacement)
		}
	}
}

// TestUsageNamesAppTokens: docs/usage.md counts every API request "for
// ... the credential it came through"; a third-party application's tokens
// are counted under its client id as credential_kind "app", and
// credential_id=<its client id> finds them (no "unknown" row on a fresh
// store).
func TestUsageNamesAppTokens(t *testing.T) {
	w := newAppsWorld(t, func(c *server.Config) { c.UsageFlushInterval = 50 * time.Millisecond })
	env := w.env
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read")
	verifier := oauth2.GenerateVerifier()
	q := w.code(t, conf, verifier, "allow")
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		servertest.Expect(t, env.As(tok.AccessToken, "GET", "/v1/workspaces", nil), 200, "")
	}
	// The usage is flushed every 50 ms: read until the row is there.
	var (
		r     *servertest.Response
		found bool
	)
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r = env.As(w.admin, "GET", "/v1/usage?group_by=credential", nil)
		servertest.Expect(t, r, 200, "")
		var out struct {
			Data []struct {
				CredentialID   string `json:"credential_id"`
				CredentialKind string `json:"credential_kind"`
				Served         int    `json:"served"`
			} `json:"data"`
		}
		r.JSON(t, &out)
		for _, row := range out.Data {
			if row.CredentialKind == "unknown" {
				t.Fatalf("a fresh store has an %q row (credential_id %q, served %d): %s", row.CredentialKind, row.CredentialID, row.Served, r.Body)
			}
			if row.CredentialID == w.confidential.ClientID {
				found = row.CredentialKind == "app" && row.Served == 3
			}
		}
	}
	if !found {
		t.Errorf("no usage row names the application's client id %s as kind app with its 3 requests: %s", w.confidential.ClientID, r.Body)
	}
	f := env.As(w.admin, "GET", "/v1/usage?group_by=credential&credential_id="+w.confidential.ClientID, nil)
	servertest.Expect(t, f, 200, "")
	if !strings.Contains(string(f.Body), `"served":3`) {
		t.Errorf("credential_id=%s: %s; want its 3 requests", w.confidential.ClientID, f.Body)
	}
}
