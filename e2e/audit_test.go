package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// auditEntries returns the account's whole audit log, newest first.
func auditEntries(t *testing.T, env *servertest.Env, admin string) []map[string]any {
	t.Helper()
	var out []map[string]any
	path := "/v1/audit?limit=2"
	for {
		r := env.As(admin, "GET", path, nil)
		servertest.Expect(t, r, 200, "")
		m := r.Map(t)
		for _, e := range m["data"].([]any) {
			out = append(out, e.(map[string]any))
		}
		next, ok := m["next_cursor"].(string)
		if !ok {
			return out
		}
		path = "/v1/audit?limit=2&cursor=" + next
	}
}

// findAudit returns the newest entry with the action, failing if none.
func findAudit(t *testing.T, entries []map[string]any, action string) map[string]any {
	t.Helper()
	for _, e := range entries {
		if e["action"] == action {
			return e
		}
	}
	t.Fatalf("no audit entry %q in %v", action, entries)
	return nil
}

func TestAuditLog(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	id := env.CreateUser(admin, "ann@example.com", memberPW)
	env.As(admin, "PATCH", "/v1/users/"+id, map[string]any{"roles": []string{"developer"}, "password": "another password 2"})
	env.As(admin, "PATCH", "/v1/users/"+id, map[string]any{"status": "disabled"})
	ws := env.As(admin, "POST", "/v1/workspaces", map[string]string{"name": "W"}).Map(t)["id"].(string)
	env.As(admin, "PUT", "/v1/workspaces/"+ws+"/members/"+id, nil)
	env.As(admin, "DELETE", "/v1/workspaces/"+ws+"/members/"+id, nil)
	env.As(admin, "DELETE", "/v1/workspaces/"+ws, nil)
	env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 50}})
	env.CreateAccount(admin, "Other", "boss@other.example", "other admin password")

	entries := auditEntries(t, env, admin)
	for _, c := range []struct{ action, targetType, targetID string }{
		{"user.create", "user", id},
		{"user.update", "user", id},
		{"workspace.create", "workspace", ws},
		{"workspace.member_add", "workspace", ws},
		{"workspace.member_remove", "workspace", ws},
		{"workspace.delete", "workspace", ws},
		{"settings.update", "account", ""},
		{"account.create", "account", ""},
	} {
		t.Run(c.action, func(t *testing.T) {
			e := findAudit(t, entries, c.action)
			if e["actor"] != servertest.AdminEmail || e["actor_id"] == "" || e["target_type"] != c.targetType ||
				e["remote_addr"] != "127.0.0.1" || e["created_at"] == nil {
				t.Fatalf("entry %v", e)
			}
			if c.targetID != "" && e["target_id"] != c.targetID {
				t.Fatalf("target %v, want %s", e["target_id"], c.targetID)
			}
		})
	}
	// Newest first; the disabling is recorded with its status.
	var sawDisable bool
	for _, e := range entries {
		if d, _ := e["details"].(map[string]any); e["action"] == "user.update" && d["status"] == "disabled" {
			sawDisable = true
		}
	}
	if !sawDisable || entries[0]["action"] != "account.create" {
		t.Fatalf("order or details wrong: %v", entries[0])
	}
	// No secret in the log.
	raw := string(env.As(admin, "GET", "/v1/audit?limit=200", nil).Body)
	for _, s := range []string{memberPW, "another password 2", "other admin password", admin} {
		if strings.Contains(raw, s) {
			t.Fatalf("audit log holds a secret")
		}
	}
	// Another account's admin sees none of it.
	_, other := env.CreateAccount(admin, "Third", "boss@third.example", "third admin password")
	if n := len(auditEntries(t, env, other)); n != 0 {
		t.Fatalf("other account sees %d entries", n)
	}
}

// TestAuditCredentialChanges covers credentials, tokens and extensions.
func TestAuditCredentialChanges(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, devTok, c := developer(t, env)
	env.As(devTok, "DELETE", "/v1/credentials/"+c.ID, nil)
	env.As(admin, "DELETE", "/v1/developers/"+devID, nil)
	app := enableAPIAccess(t, env, admin, nil)
	env.As(admin, "PATCH", "/v1/api-access", map[string]int{"access_token_ttl_days": 3})
	env.As(admin, "DELETE", "/v1/api-access", nil)
	tok := withAPIToken(t, env, admin)
	env.As(admin, "DELETE", "/v1/api-tokens/"+tok.ID, nil)
	env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false})

	entries := auditEntries(t, env, admin)
	for _, c := range []struct{ action, actor string }{
		{"developer.add", servertest.AdminEmail},
		{"credential.create", "dev@example.com"},
		{"credential.delete", "dev@example.com"},
		{"developer.remove", servertest.AdminEmail},
		{"api_access.enable", servertest.AdminEmail},
		{"api_access.update", servertest.AdminEmail},
		{"api_access.revoke", servertest.AdminEmail},
		{"extension.api_tokens", servertest.AdminEmail},
		{"api_token.create", servertest.AdminEmail},
		{"api_token.revoke", servertest.AdminEmail},
	} {
		t.Run(c.action, func(t *testing.T) {
			e := findAudit(t, entries, c.action)
			if e["actor"] != c.actor || e["remote_addr"] != "127.0.0.1" || e["target_id"] == "" {
				t.Fatalf("entry %v", e)
			}
		})
	}
	raw := string(env.As(admin, "GET", "/v1/audit?limit=200", nil).Body)
	for _, secret := range []string{c.ClientSecret, app.AccessToken, app.RefreshToken, tok.Token} {
		if strings.Contains(raw, secret) {
			t.Fatal("audit log holds a secret")
		}
	}
}

// TestAuditFilters: GET /v1/audit filters by actor, action, target and a
// range of days, and pages older and back newer.
func TestAuditFilters(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	ann := env.CreateUser(admin, "ann@example.com", memberPW, "admin")
	bob := env.CreateUser(admin, "bob@example.com", memberPW)
	annTok := env.Login("ann@example.com", memberPW)
	env.As(annTok, "PATCH", "/v1/users/"+bob, map[string]any{"name": "Bob"})
	env.As(annTok, "PATCH", "/v1/users/"+bob, map[string]any{"roles": []string{"developer"}})
	env.As(annTok, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 50}})
	actions := func(t *testing.T, query string) (out []string) {
		t.Helper()
		r := env.As(admin, "GET", "/v1/audit?"+query, nil)
		servertest.Expect(t, r, 200, "")
		for _, e := range r.Map(t)["data"].([]any) {
			out = append(out, e.(map[string]any)["action"].(string)+" "+e.(map[string]any)["target_id"].(string))
		}
		return out
	}
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"actor by e-mail", "actor=ANN@example", []string{"settings.update " + accountOf(t, env, admin), "user.update " + bob, "user.update " + bob}},
		{"actor and action", "actor=" + ann + "&action=user.", []string{"user.update " + bob, "user.update " + bob}},
		{"target", "target=" + bob, []string{"user.update " + bob, "user.update " + bob, "user.create " + bob}},
		{"target and action", "target=" + ann + "&action=user.create", []string{"user.create " + ann}},
		{"today", "from=" + today + "&to=" + today + "&action=user.create", []string{"user.create " + bob, "user.create " + ann}},
		{"from tomorrow", "from=" + tomorrow, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := actions(t, tc.query); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("bad filters", func(t *testing.T) {
		servertest.Expect(t, env.As(admin, "GET", "/v1/audit?from=yesterday", nil), 400, "invalid_request")
		servertest.Expect(t, env.As(admin, "GET", "/v1/audit?from="+tomorrow+"&to="+today, nil), 400, "invalid_request")
		servertest.Expect(t, env.As(annTok, "GET", "/v1/audit", nil), 200, "")
		servertest.Expect(t, env.As(env.Login("bob@example.com", memberPW), "GET", "/v1/audit", nil), 403, "forbidden")
	})
	t.Run("older and back newer", func(t *testing.T) {
		first := env.As(admin, "GET", "/v1/audit?limit=2", nil).Map(t)
		older := env.As(admin, "GET", "/v1/audit?limit=2&cursor="+first["next_cursor"].(string), nil).Map(t)
		if _, ok := first["prev_cursor"]; ok {
			t.Fatal("the newest page has a way to newer entries")
		}
		back := env.As(admin, "GET", "/v1/audit?limit=2&cursor="+older["prev_cursor"].(string), nil).Map(t)
		if fmt.Sprint(back["data"]) != fmt.Sprint(first["data"]) {
			t.Fatalf("back to the newest page: %v, want %v", back["data"], first["data"])
		}
	})
}

func accountOf(t *testing.T, env *servertest.Env, tok string) string {
	t.Helper()
	return env.As(tok, "GET", "/v1/me", nil).Map(t)["account"].(map[string]any)["id"].(string)
}
