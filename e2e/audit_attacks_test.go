package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// auditAttackLog reads every audit entry of every account straight from the
// store, keyed by id.
func auditAttackLog(t *testing.T, env *servertest.Env) map[string]*gatehouse.AuditEntry {
	t.Helper()
	out := map[string]*gatehouse.AuditEntry{}
	err := env.Server.Store.AuditSince(context.Background(), time.Time{}, func(e *gatehouse.AuditEntry) error {
		out[e.ID] = e
		return nil
	})
	if err != nil {
		t.Fatalf("read audit: %v", err)
	}
	return out
}

// auditAttackWalker runs requests and checks the audit entries each adds.
type auditAttackWalker struct {
	t       *testing.T
	env     *servertest.Env
	seen    map[string]*gatehouse.AuditEntry
	secrets []string
}

func auditAttackNewWalker(t *testing.T, env *servertest.Env) *auditAttackWalker {
	return &auditAttackWalker{t: t, env: env, seen: auditAttackLog(t, env)}
}

// fresh returns the entries written since the last call.
func (w *auditAttackWalker) fresh() []*gatehouse.AuditEntry {
	now := auditAttackLog(w.t, w.env)
	var out []*gatehouse.AuditEntry
	for id, e := range now {
		if _, ok := w.seen[id]; !ok {
			out = append(out, e)
		}
	}
	w.seen = now
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func auditAttackActions(es []*gatehouse.AuditEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Action)
	}
	sort.Strings(out)
	return out
}

func auditAttackShow(es []*gatehouse.AuditEntry) string {
	var b strings.Builder
	for _, e := range es {
		j, _ := json.Marshal(e)
		b.WriteString(string(j) + "\n")
	}
	return b.String()
}

// do sends a request with headers (name/value pairs), wants status, and
// wants exactly the given actions written (none for a failure).
func (w *auditAttackWalker) do(name string, status int, method, path string, body any, headers []string, actions ...string) (*servertest.Response, []*gatehouse.AuditEntry) {
	w.t.Helper()
	r := w.env.Request(method, path, body, headers...)
	if r.Status != status {
		w.t.Errorf("%s: %s %s: status %d, want %d: %s", name, method, path, r.Status, status, r.Body)
	}
	// Events and audit entries commit before the answer.
	es := w.fresh()
	got := auditAttackActions(es)
	want := slices.Clone(actions)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		w.t.Errorf("%s: %s %s (%d) wrote audit %v, want %v\n%s", name, method, path, r.Status, got, want, auditAttackShow(es))
	}
	return r, es
}

func zzBearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// check fails unless e has the actor and target.
func (w *auditAttackWalker) check(name string, es []*gatehouse.AuditEntry, action, actorID, targetID string) *gatehouse.AuditEntry {
	w.t.Helper()
	for _, e := range es {
		if e.Action != action {
			continue
		}
		if actorID != "" && e.ActorID != actorID {
			w.t.Errorf("%s: %s actor_id %q, want %q (%s)", name, action, e.ActorID, actorID, auditAttackShow([]*gatehouse.AuditEntry{e}))
		}
		if targetID != "" && e.TargetID != targetID {
			w.t.Errorf("%s: %s target_id %q, want %q (%s)", name, action, e.TargetID, targetID, auditAttackShow([]*gatehouse.AuditEntry{e}))
		}
		return e
	}
	return nil
}

func (w *auditAttackWalker) secret(s ...string) { w.secrets = append(w.secrets, s...) }

// noSecrets fails if any audit entry holds a secret made during the test.
func (w *auditAttackWalker) noSecrets() {
	w.t.Helper()
	for _, e := range auditAttackLog(w.t, w.env) {
		j, _ := json.Marshal(e)
		for _, s := range w.secrets {
			if s != "" && strings.Contains(string(j), s) {
				w.t.Errorf("audit entry %s holds a secret %.10s…", j, s)
			}
		}
	}
}

func zzMust(t *testing.T, r *servertest.Response, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.Map(t)
}

// TestAuditAttackRouteWalk walks the management API's state-changing routes:
// each success writes the named entry once with the real actor and
// target; each refusal writes none.
func TestAuditAttackRouteWalk(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	w := auditAttackNewWalker(t, env)
	admin := env.AdminToken()
	adminID := env.As(admin, "GET", "/v1/me", nil).Map(t)["user"].(map[string]any)["id"].(string)
	w.fresh()
	A := zzBearer(admin)
	w.secret(admin, servertest.AdminPassword, memberPW)
	w.do("settings first", 200, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 1000, "burst_window_seconds": 1}}, A, "settings.update")

	// Users.
	r, es := w.do("create user", 201, "POST", "/v1/users", map[string]any{"email": "ann@example.com", "name": "Ann", "password": memberPW, "roles": []string{}}, A, "user.create")
	ann := r.Map(t)["id"].(string)
	w.check("create user", es, "user.create", adminID, ann)
	w.do("create user dup", 409, "POST", "/v1/users", map[string]any{"email": "ann@example.com", "name": "Ann", "password": memberPW, "roles": []string{}}, A)
	w.do("create user bad", 400, "POST", "/v1/users", map[string]any{"email": "not-an-email", "name": "Ann", "password": memberPW}, A)
	_, es = w.do("update user", 200, "PATCH", "/v1/users/"+ann, map[string]any{"name": "Ann B"}, A, "user.update")
	w.check("update user", es, "user.update", adminID, ann)
	w.do("update user 404", 404, "PATCH", "/v1/users/usr_nope", map[string]any{"name": "x"}, A)
	w.do("update user bad", 400, "PATCH", "/v1/users/"+ann, map[string]any{"status": "weird"}, A)
	w.do("update self last admin", 409, "PATCH", "/v1/users/"+adminID, map[string]any{"roles": []string{}}, A)
	w.do("update user pw", 200, "PATCH", "/v1/users/"+ann, map[string]any{"password": "ann second password"}, A, "user.update")
	w.secret("ann second password")
	annTok := env.Login("ann@example.com", "ann second password")
	w.fresh()
	w.secret(annTok)
	w.do("member create user 403", 403, "POST", "/v1/users", map[string]any{"email": "x@example.com", "name": "x", "password": memberPW}, zzBearer(annTok))
	w.do("member patch 403", 403, "PATCH", "/v1/users/"+adminID, map[string]any{"name": "x"}, zzBearer(annTok))
	w.do("throttle clear", 204, "DELETE", "/v1/users/"+ann+"/throttle", nil, A, "user.throttle_clear")
	w.do("throttle clear 404", 404, "DELETE", "/v1/users/usr_nope/throttle", nil, A)
	w.do("sessions end", 200, "DELETE", "/v1/users/"+ann+"/sessions", nil, A, "user.sessions_end")
	w.do("sessions end 404", 404, "DELETE", "/v1/users/usr_nope/sessions", nil, A)
	w.do("mfa reset 404", 404, "DELETE", "/v1/users/usr_nope/mfa", nil, A)

	// Developers and credentials.
	_, es = w.do("add dev", 204, "PUT", "/v1/developers/"+ann, nil, A, "developer.add")
	w.check("add dev", es, "developer.add", adminID, ann)
	w.do("add dev 404", 404, "PUT", "/v1/developers/usr_nope", nil, A)
	w.do("add dev 403", 403, "PUT", "/v1/developers/"+ann, nil, zzBearer(annTok))
	annTok = env.Login("ann@example.com", "ann second password")
	w.fresh()
	w.secret(annTok)
	AN := zzBearer(annTok)
	r, es = w.do("create cred", 201, "POST", "/v1/credentials", map[string]any{"name": "CI"}, AN, "credential.create")
	cred := r.Map(t)
	credID := cred["id"].(string)
	w.secret(cred["client_secret"].(string))
	w.check("create cred", es, "credential.create", ann, credID)
	w.do("create cred bad", 400, "POST", "/v1/credentials", map[string]any{"name": ""}, AN)
	w.do("update cred", 200, "PATCH", "/v1/credentials/"+credID, map[string]any{"name": "CI 2"}, AN, "credential.update")
	w.do("update cred 404", 404, "PATCH", "/v1/credentials/crd_nope", map[string]any{"name": "CI 2"}, AN)
	w.do("update cred bad", 400, "PATCH", "/v1/credentials/"+credID, map[string]any{"scopes": []string{"no such scope!"}}, AN)
	r, _ = w.do("roll cred", 200, "POST", "/v1/credentials/"+credID+"/roll", map[string]any{"overlap_seconds": 0}, AN, "credential.roll")
	if m := r.Map(t); m["client_secret"] != nil {
		w.secret(m["client_secret"].(string))
	}
	w.do("roll cred 404", 404, "POST", "/v1/credentials/crd_nope/roll", map[string]any{}, AN)
	w.do("roll cred bad", 400, "POST", "/v1/credentials/"+credID+"/roll", map[string]any{"overlap_seconds": -1}, AN)
	w.do("delete cred 404", 404, "DELETE", "/v1/credentials/crd_nope", nil, AN)
	_, es = w.do("delete cred", 204, "DELETE", "/v1/credentials/"+credID, nil, AN, "credential.delete")
	w.check("delete cred", es, "credential.delete", ann, credID)
	w.do("delete cred again", 404, "DELETE", "/v1/credentials/"+credID, nil, AN)
	w.do("remove dev 404", 404, "DELETE", "/v1/developers/usr_nope", nil, A)
	_, es = w.do("remove dev", 200, "DELETE", "/v1/developers/"+ann, nil, A, "developer.remove")
	w.check("remove dev", es, "developer.remove", adminID, ann)

	// API access.
	r, es = w.do("enable api access", 201, "POST", "/v1/api-access", map[string]any{"access_token_ttl_days": 2}, A, "api_access.enable")
	aa := r.Map(t)
	w.secret(aa["access_token"].(string), aa["refresh_token"].(string))
	w.check("enable api access", es, "api_access.enable", adminID, "")
	w.do("enable api access again", 409, "POST", "/v1/api-access", map[string]any{}, A)
	w.do("enable api access member", 403, "POST", "/v1/api-access", map[string]any{}, zzBearer(annTok))
	w.do("update api access", 200, "PATCH", "/v1/api-access", map[string]any{"access_token_ttl_days": 3}, A, "api_access.update")
	w.do("update api access bad", 400, "PATCH", "/v1/api-access", map[string]any{"access_token_ttl_days": 999}, A)
	w.do("revoke api access", 204, "DELETE", "/v1/api-access", nil, A, "api_access.revoke")
	w.do("revoke api access again", 404, "DELETE", "/v1/api-access", nil, A)
	w.do("update api access none", 404, "PATCH", "/v1/api-access", map[string]any{"access_token_ttl_days": 3}, A)

	// Extension and API tokens.
	w.do("extension bad", 400, "PUT", "/v1/extensions/api_tokens", map[string]any{"enabled": "yes"}, A)
	w.do("api token off", 403, "POST", "/v1/api-tokens", map[string]any{"name": "x"}, A)
	w.do("extension on", 200, "PUT", "/v1/extensions/api_tokens", map[string]any{"enabled": true}, A, "extension.api_tokens")
	r, es = w.do("api token", 201, "POST", "/v1/api-tokens", map[string]any{"name": "Zap"}, A, "api_token.create")
	at := r.Map(t)
	atID, atTok := at["id"].(string), at["token"].(string)
	w.secret(atTok)
	w.check("api token", es, "api_token.create", adminID, atID)
	w.do("api token bad", 400, "POST", "/v1/api-tokens", map[string]any{"name": ""}, A)
	w.do("api token update", 200, "PATCH", "/v1/api-tokens/"+atID, map[string]any{"name": "Zap 2"}, A, "api_token.update")
	w.do("api token update 404", 404, "PATCH", "/v1/api-tokens/atk_nope", map[string]any{"name": "Zap 2"}, A)

	// The API token as anonymous admin, then acting as ann.
	T := []string{"X-API-Token", atTok}
	r, es = w.do("anon admin creates workspace", 201, "POST", "/v1/workspaces", map[string]any{"name": "W"}, T, "workspace.create")
	ws := r.Map(t)["id"].(string)
	if e := w.check("anon", es, "workspace.create", atID, ws); e != nil && (e.CredentialID != atID || !strings.Contains(e.Actor, atID)) {
		t.Errorf("anonymous admin entry: %s", auditAttackShow(es))
	}
	TA := []string{"X-API-Token", atTok, "X-User-Email", "ann@example.com"}
	r, es = w.do("as ann creates workspace", 201, "POST", "/v1/workspaces", map[string]any{"name": "Ann's"}, TA, "workspace.create")
	annWS := r.Map(t)["id"].(string)
	if e := w.check("as ann", es, "workspace.create", ann, annWS); e != nil && (e.CredentialID != atID || e.Actor != "ann@example.com") {
		t.Errorf("acting-as entry: %s", auditAttackShow(es))
	}
	w.do("as ann creates user 403", 403, "POST", "/v1/users", map[string]any{"email": "z@example.com", "name": "z", "password": memberPW}, TA)
	w.do("member add", 204, "PUT", "/v1/workspaces/"+ws+"/members/"+ann, nil, A, "workspace.member_add")
	w.do("member add 404", 404, "PUT", "/v1/workspaces/"+ws+"/members/usr_nope", nil, A)
	w.do("member remove", 204, "DELETE", "/v1/workspaces/"+ws+"/members/"+ann, nil, A, "workspace.member_remove")
	w.do("ws delete 404", 404, "DELETE", "/v1/workspaces/wsp_nope", nil, A)
	w.do("ws delete", 204, "DELETE", "/v1/workspaces/"+ws, nil, A, "workspace.delete")
	w.do("ws delete again", 404, "DELETE", "/v1/workspaces/"+ws, nil, A)
	w.do("ws bad", 400, "POST", "/v1/workspaces", map[string]any{"name": ""}, A)

	r, _ = w.do("api token roll", 201, "POST", "/v1/api-tokens/"+atID+"/roll", map[string]any{"overlap_seconds": 0}, A, "api_token.rolled", "api_token.roll")
	if m := r.Map(t); m["token"] != nil {
		w.secret(m["token"].(string))
	}
	w.do("api token roll 404", 404, "POST", "/v1/api-tokens/atk_nope/roll", map[string]any{}, A)
	var rolled string
	if m := r.Map(t); m["id"] != nil {
		rolled = m["id"].(string)
	}
	w.do("api token delete", 204, "DELETE", "/v1/api-tokens/"+rolled, nil, A, "api_token.revoke")
	w.do("api token delete again", 404, "DELETE", "/v1/api-tokens/"+rolled, nil, A)
	w.do("extension off", 200, "PUT", "/v1/extensions/api_tokens", map[string]any{"enabled": false}, A, "extension.api_tokens")

	// Settings.
	w.do("settings", 200, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 1000, "burst_window_seconds": 1}}, A, "settings.update")
	w.do("settings bad", 400, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": -5}}, A)
	w.do("settings member", 403, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 60}}, zzBearer(annTok))

	// Webhooks.
	r, _ = w.do("webhook create", 201, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"*"}}, A, "webhook.create")
	wh := r.Map(t)
	whID := wh["id"].(string)
	w.secret(wh["secret"].(string))
	w.do("webhook create bad", 400, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"nope.nope"}}, A)
	w.do("webhook update", 200, "PATCH", "/v1/webhooks/"+whID, map[string]any{"description": "d"}, A, "webhook.update")
	w.do("webhook update 404", 404, "PATCH", "/v1/webhooks/whk_nope", map[string]any{"description": "d"}, A)
	r, _ = w.do("webhook roll", 200, "POST", "/v1/webhooks/"+whID+"/roll-secret", map[string]any{"overlap_seconds": 0}, A, "webhook.roll")
	w.secret(r.Map(t)["secret"].(string))
	w.do("webhook roll bad", 400, "POST", "/v1/webhooks/"+whID+"/roll-secret", map[string]any{"overlap_seconds": -1}, A)
	r, _ = w.do("webhook test", 202, "POST", "/v1/webhooks/"+whID+"/test", nil, A, "webhook.test")
	dID, _ := r.Map(t)["id"].(string)
	w.do("webhook redeliver", 202, "POST", "/v1/webhooks/"+whID+"/deliveries/"+dID+"/redeliver", nil, A, "webhook.redeliver")
	w.do("webhook redeliver 404", 404, "POST", "/v1/webhooks/"+whID+"/deliveries/dlv_nope/redeliver", nil, A)
	w.do("webhook disable", 200, "PATCH", "/v1/webhooks/"+whID, map[string]any{"enabled": false}, A, "webhook.update")
	w.do("webhook test disabled", 409, "POST", "/v1/webhooks/"+whID+"/test", nil, A)
	w.do("webhook delete", 204, "DELETE", "/v1/webhooks/"+whID, nil, A, "webhook.delete")
	w.do("webhook delete again", 404, "DELETE", "/v1/webhooks/"+whID, nil, A)

	// Third-party applications (ann a developer again).
	w.do("add dev 2", 204, "PUT", "/v1/developers/"+ann, nil, A, "developer.add")
	annTok = env.Login("ann@example.com", "ann second password")
	w.fresh()
	AN = zzBearer(annTok)
	r, _ = w.do("app create", 201, "POST", "/v1/apps", map[string]any{"name": "App", "type": "confidential", "redirect_uris": []string{"https://app.example/cb"}}, AN, "app.create")
	app := r.Map(t)
	appID := app["id"].(string)
	if s, ok := app["client_secret"].(string); ok {
		w.secret(s)
	}
	w.do("app create bad", 400, "POST", "/v1/apps", map[string]any{"name": "App", "type": "confidential", "redirect_uris": []string{"http://evil.example/cb"}}, AN)
	w.do("app update", 200, "PATCH", "/v1/apps/"+appID, map[string]any{"name": "App 2"}, AN, "app.update")
	w.do("app update 404", 404, "PATCH", "/v1/apps/app_nope", map[string]any{"name": "App 2"}, AN)
	r, _ = w.do("app roll", 200, "POST", "/v1/apps/"+appID+"/roll", map[string]any{"overlap_seconds": 0}, AN, "app.roll")
	if s, ok := r.Map(t)["client_secret"].(string); ok {
		w.secret(s)
	}
	w.do("app approve", 200, "PUT", "/v1/apps/"+appID+"/approval", nil, A, "app.approve")
	w.do("app approve 404", 404, "PUT", "/v1/apps/app_nope/approval", nil, A)
	w.do("authorization revoke 404", 404, "DELETE", "/v1/me/authorizations/gci_nope", nil, AN)
	w.do("app delete", 204, "DELETE", "/v1/apps/"+appID, nil, AN, "app.delete")
	w.do("app delete again", 404, "DELETE", "/v1/apps/"+appID, nil, AN)

	// Accounts (operator) and deleting users.
	r, _ = w.do("account create", 201, "POST", "/v1/accounts", map[string]any{"name": "Other", "admin_email": "boss@other.example", "admin_password": "other admin password"}, A, "account.create")
	w.secret("other admin password")
	acct := r.Map(t)["id"].(string)
	w.do("account create dup", 409, "POST", "/v1/accounts", map[string]any{"name": "Other 2", "admin_email": "boss@other.example", "admin_password": "other admin password"}, A)
	w.do("account create member", 403, "POST", "/v1/accounts", map[string]any{"name": "X", "admin_email": "x@x.example", "admin_password": "other admin password"}, AN)
	_, es = w.do("account rename", 200, "PATCH", "/v1/accounts/"+acct, map[string]any{"name": "Other Co"}, A, "account.update", "account.update")
	_ = es
	w.do("account bad", 400, "PATCH", "/v1/accounts/"+acct, map[string]any{"status": "weird"}, A)
	w.do("account 404", 404, "PATCH", "/v1/accounts/acc_nope", map[string]any{"name": "x"}, A)
	w.do("delete user 404", 404, "DELETE", "/v1/users/usr_nope", nil, A)
	w.do("delete self", 409, "DELETE", "/v1/users/"+adminID, nil, A)
	_, es = w.do("delete user", 204, "DELETE", "/v1/users/"+ann, nil, A, "user.delete")
	w.check("delete user", es, "user.delete", adminID, ann)
	w.do("delete user again", 404, "DELETE", "/v1/users/"+ann, nil, A)

	w.noSecrets()
	_ = fmt.Sprint
	_ = url.Values{}
}

// auditAttackPage is one page of GET /v1/audit.
type auditAttackPage struct {
	Data       []gatehouse.AuditEntry `json:"data"`
	NextCursor string                 `json:"next_cursor"`
	PrevCursor string                 `json:"prev_cursor"`
}

func auditAttackGet(t *testing.T, env *servertest.Env, tok, query string) auditAttackPage {
	t.Helper()
	r := env.As(tok, "GET", "/v1/audit?"+query, nil)
	servertest.Expect(t, r, 200, "")
	var p auditAttackPage
	r.JSON(t, &p)
	return p
}

// TestAuditAttackPagingWhileWriting pages the audit log, with each filter,
// forwards while entries are being added and backwards again: every entry
// that existed when paging began comes exactly once, newest first; the
// same filters answer alike on both stores.
func TestAuditAttackPagingWhileWriting(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 1000, "burst_window_seconds": 1}})
	ann := env.CreateUser(admin, "ann@example.com", memberPW)
	annTok := env.Login("ann@example.com", memberPW)
	for i := 0; i < 12; i++ {
		servertest.Expect(t, env.As(admin, "POST", "/v1/workspaces", map[string]any{"name": fmt.Sprint("A", i)}), 201, "")
		servertest.Expect(t, env.As(annTok, "POST", "/v1/workspaces", map[string]any{"name": fmt.Sprint("B", i)}), 201, "")
	}
	// The log as the store holds it, newest first.
	all := auditAttackLog(t, env)
	var ids []string
	for id := range all {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	match := func(q string) []string {
		v, _ := url.ParseQuery(q)
		var out []string
		for _, id := range ids {
			e := all[id]
			if a := v.Get("actor"); a != "" && e.ActorID != a && !strings.Contains(strings.ToLower(e.Actor), strings.ToLower(a)) {
				continue
			}
			if a := v.Get("action"); a != "" && !strings.HasPrefix(e.Action, a) {
				continue
			}
			if a := v.Get("target"); a != "" && e.TargetID != a && e.TargetType != a {
				continue
			}
			out = append(out, id)
		}
		return out
	}
	for _, q := range []string{"", "actor=" + ann, "actor=ANN@", "action=workspace.", "action=workspace.create", "target=workspace", "target=" + ann,
		"actor=ann&action=workspace.create&target=workspace", "from=" + time.Now().UTC().Format(time.DateOnly) + "&to=" + time.Now().UTC().Format(time.DateOnly)} {
		want := match(q)
		if strings.HasPrefix(q, "from=") {
			want = ids
		}
		var got []string
		cursor := ""
		var pages []auditAttackPage
		for i := 0; ; i++ {
			p := auditAttackGet(t, env, admin, q+"&limit=3"+cursor)
			pages = append(pages, p)
			for _, e := range p.Data {
				got = append(got, e.ID)
			}
			// Entries added while paging.
			servertest.Expect(t, env.As(annTok, "POST", "/v1/workspaces", map[string]any{"name": fmt.Sprint("C", q, i)}), 201, "")
			if p.NextCursor == "" {
				break
			}
			cursor = "&cursor=" + p.NextCursor
			if i > 100 {
				t.Fatalf("%q: paging does not end", q)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("filter %q: paged %d entries, want %d\ngot  %v\nwant %v", q, len(got), len(want), got, want)
		}
		// Backwards from the last page.
		last := pages[len(pages)-1]
		var back []string
		prev := last.PrevCursor
		for prev != "" {
			p := auditAttackGet(t, env, admin, q+"&limit=3&cursor="+prev)
			back = append(append([]string{}, auditAttackIDsOf(p.Data)...), back...)
			prev = p.PrevCursor
			if len(back) > 1000 {
				t.Fatalf("%q: backwards paging does not end", q)
			}
		}
		lastIDs := auditAttackIDsOf(last.Data)
		// Going back must give, in order, every matching entry newer than
		// the last page (including entries added since).
		if len(back) > 0 && len(lastIDs) > 0 && back[len(back)-1] <= lastIDs[0] {
			t.Errorf("filter %q: backwards paging ends at %s, not before %s", q, back[len(back)-1], lastIDs[0])
		}
		for i := 1; i < len(back); i++ {
			if back[i-1] <= back[i] {
				t.Errorf("filter %q: backwards pages out of order or repeated at %d: %v", q, i, back)
				break
			}
		}
		all = auditAttackLog(t, env)
		ids = ids[:0]
		for id := range all {
			ids = append(ids, id)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(ids)))
		want2 := match(q)
		if strings.HasPrefix(q, "from=") {
			want2 = ids
		}
		wantBack := []string{}
		for _, id := range want2 {
			if len(lastIDs) > 0 && id > lastIDs[0] {
				wantBack = append(wantBack, id)
			}
		}
		if len(lastIDs) > 0 && !slices.Equal(back, wantBack) {
			t.Errorf("filter %q: backwards gave %d entries, want %d", q, len(back), len(wantBack))
		}
	}
	// The action filter is a prefix of the action, the same on both stores,
	// letter case included: actions are lower case.
	upper := auditAttackGet(t, env, admin, "action=WORKSPACE.&limit=200")
	t.Logf("store %s: action=WORKSPACE. matches %d entries", env.Server.Store.Dialect(), len(upper.Data))
	if n := len(upper.Data); n != 0 {
		t.Errorf("store %s: action=WORKSPACE. matches %d entries; actions are lower case", env.Server.Store.Dialect(), n)
	}
	// LIKE wildcards in a filter are literal.
	for _, q := range []string{"actor=_", "actor=%25", "action=_", "action=%25"} {
		if p := auditAttackGet(t, env, admin, q+"&limit=200"); len(p.Data) != 0 {
			t.Errorf("filter %q matches %d entries", q, len(p.Data))
		}
	}
}

func auditAttackIDsOf(es []gatehouse.AuditEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// auditAttackEvents returns, per type, the distinct events delivered (or
// pending) to endpoint id.
func auditAttackEvents(t *testing.T, env *servertest.Env, admin, id string) map[string]int {
	t.Helper()
	seen := map[string]string{}
	cursor := ""
	for {
		r := env.As(admin, "GET", "/v1/webhooks/"+id+"/deliveries?limit=200"+cursor, nil)
		servertest.Expect(t, r, 200, "")
		var p struct {
			Data []struct {
				EventID string `json:"event_id"`
				Type    string `json:"type"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		r.JSON(t, &p)
		for _, d := range p.Data {
			seen[d.EventID] = d.Type
		}
		if p.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + p.NextCursor
	}
	out := map[string]int{}
	for _, typ := range seen {
		out[typ]++
	}
	return out
}

// TestAuditAttackEventsMatchEntries: each audited change sends its event once,
// and a change refused after its entry was built sends none.
func TestAuditAttackEventsMatchEntries(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin := env.AdminToken()
	env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 1000, "burst_window_seconds": 1}})
	r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"*"}})
	servertest.Expect(t, r, 201, "")
	wh := r.Map(t)["id"].(string)
	count := func() map[string]int { return auditAttackEvents(t, env, admin, wh) }
	step := func(name string, want map[string]int, f func()) {
		t.Helper()
		before := count()
		f()
		after := count()
		diff := map[string]int{}
		for k, v := range after {
			if v-before[k] != 0 {
				diff[k] = v - before[k]
			}
		}
		if fmt.Sprint(diff) != fmt.Sprint(want) {
			t.Errorf("%s: events %v, want %v", name, diff, want)
		}
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "Zap"})
	servertest.Expect(t, r, 201, "")
	at := r.Map(t)["id"].(string)
	step("API token roll", map[string]int{"credential.rolled": 1}, func() {
		servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens/"+at+"/roll", map[string]any{"overlap_seconds": 60}), 201, "")
	})
	_, devID, devTok, c := developer(t, env)
	step("credential roll", map[string]int{"credential.rolled": 1}, func() {
		servertest.Expect(t, env.As(devTok, "POST", "/v1/credentials/"+c.ID+"/roll", map[string]any{"overlap_seconds": 60}), 200, "")
	})
	// A narrowed API token may not remove every credential of the
	// developer: the role change, its entry and its event all roll back.
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "Narrow", "scopes": []string{"credentials:write", "credentials:read", "users:write", "users:read"}})
	servertest.Expect(t, r, 201, "")
	narrow := r.Map(t)["token"].(string)
	step("refused developer removal", map[string]int{}, func() {
		r := env.Request("DELETE", "/v1/developers/"+devID+"?revoke_credentials=true", nil, "X-API-Token", narrow)
		if r.Status < 400 {
			t.Errorf("a narrowed token removed the developer: %d %s", r.Status, r.Body)
		}
	})
	es := auditWhere(t, env, admin, "target="+devID)
	for _, e := range es {
		if e.Action == "developer.remove" {
			t.Errorf("a refused developer removal left an entry: %+v", e)
		}
	}
}

// TestAuditAttackReuseDetectedOnce: a used refresh token presented again, by
// several requests at once after the grace period, revokes its lineage
// once: one audit entry, one refresh_token.reuse_detected event.
func TestAuditAttackReuseDetectedOnce(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks, func(c *server.Config) { c.RefreshGrace = 50 * time.Millisecond })
	admin := env.AdminToken()
	env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 1000, "burst_window_seconds": 1}})
	r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"refresh_token.*"}})
	servertest.Expect(t, r, 201, "")
	wh := r.Map(t)["id"].(string)
	for round := 0; round < 3; round++ {
		app := enableAPIAccess(t, env, admin, nil)
		servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), 200, "")
		time.Sleep(200 * time.Millisecond)
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				refresh(env, app.ClientID, app.RefreshToken)
			}()
		}
		wg.Wait()
		n := 0
		for _, e := range auditAttackLog(t, env) {
			if e.Action == "api_access.lineage_revoked" && e.TargetID == app.ClientID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("round %d: %d api_access.lineage_revoked entries for one lineage, want 1", round, n)
		}
		servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
	}
	t.Logf("events: %v", auditAttackEvents(t, env, admin, wh))
}

// TestAuditAttackLeakReportedOnce: one leaked secret reported by several
// finders at once is revoked, audited and announced once.
func TestAuditAttackLeakReportedOnce(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin := env.AdminToken()
	env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"burst": 1000, "burst_window_seconds": 1}})
	r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"credential.leaked"}})
	servertest.Expect(t, r, 201, "")
	wh := r.Map(t)["id"].(string)
	env.CreateUser(admin, "ann@example.com", memberPW)
	tok := withAPIToken(t, env, admin)
	app := enableAPIAccess(t, env, admin, nil)
	for _, c := range []struct{ name, secret string }{
		{"password-grant access token", env.Login("ann@example.com", memberPW)},
		{"API access access token", app.AccessToken},
		{"API token", tok.Token},
	} {
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				env.Request("POST", "/v1/credentials/revoke", map[string]any{"credentials": []string{c.secret}})
			}()
		}
		wg.Wait()
	}
	// The bulk route revokes after answering: let it finish.
	time.Sleep(2 * time.Second)
	per := map[string]int{}
	for _, e := range auditAttackLog(t, env) {
		if e.Action == "credential.leaked" {
			per[e.TargetType+" "+e.TargetID]++
		}
	}
	for k, v := range per {
		if v != 1 {
			t.Errorf("%s: %d credential.leaked entries for one secret reported at once by several, want 1", k, v)
		}
	}
	t.Logf("events: %v", auditAttackEvents(t, env, admin, wh))
}

// TestAuditAttackRFC7009: an RFC 7009 revocation by someone other than the
// token is audited once; a token revoking itself writes nothing; a
// refused revocation writes nothing.
func TestAuditAttackRFC7009(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	w := auditAttackNewWalker(t, env)
	form := func(tok string) string { return url.Values{"token": {tok}}.Encode() }
	ct := []string{"Content-Type", "application/x-www-form-urlencoded"}
	a1 := env.Login("ann@example.com", memberPW)
	w.fresh()
	w.do("self revoke", 200, "POST", "/oauth/revoke", form(a1), append(zzBearer(a1), ct...))
	a2 := env.Login("ann@example.com", memberPW)
	a3 := env.Login("ann@example.com", memberPW)
	w.fresh()
	_, es := w.do("revoke by own other token", 200, "POST", "/oauth/revoke", form(a2), append(zzBearer(a3), ct...), "token.revoke")
	_ = es
	a4 := env.Login("ann@example.com", memberPW)
	w.fresh()
	w.do("admin revokes", 200, "POST", "/oauth/revoke", form(a4), append(zzBearer(admin), ct...), "token.revoke")
	w.do("admin revokes again (already revoked)", 200, "POST", "/oauth/revoke", form(a4), append(zzBearer(admin), ct...))
	w.do("unknown token", 200, "POST", "/oauth/revoke", form("gat_nothing"), append(zzBearer(admin), ct...))
	w.noSecrets()
}

// TestAuditAttackReadOnlyAndIsolated: no route changes or deletes the audit
// log, and another account's admin reads none of it — by the API, the
// console page or the export.
func TestAuditAttackReadOnlyAndIsolated(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	ann := env.CreateUser(admin, "ann@example.com", memberPW)
	before := auditAttackLog(t, env)
	var someID string
	for id := range before {
		someID = id
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		for _, p := range []string{"/v1/audit", "/v1/audit/" + someID} {
			r, err := env.Client.Do(func() *http.Request {
				req, _ := http.NewRequest(m, env.URL+p, strings.NewReader(`{}`))
				req.Header.Set("Authorization", "Bearer "+admin)
				req.Header.Set("Content-Type", "application/json")
				return req
			}())
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode < 400 {
				t.Errorf("%s %s: %d", m, p, r.StatusCode)
			}
		}
	}
	after := auditAttackLog(t, env)
	if len(after) != len(before) {
		t.Errorf("audit log changed: %d -> %d", len(before), len(after))
	}
	_, other := env.CreateAccount(admin, "Other", "boss@other.example", "other admin password")
	if p := auditAttackGet(t, env, other, "limit=200"); len(p.Data) != 0 {
		for _, e := range p.Data {
			if e.TargetID == ann || e.ActorID == ann {
				t.Errorf("other account sees %+v", e)
			}
		}
	}
	for _, q := range []string{"actor=" + ann, "target=" + ann, "actor=admin@example.com", "action=user."} {
		if p := auditAttackGet(t, env, other, q+"&limit=200"); len(p.Data) != 0 {
			t.Errorf("other account's filter %q sees %d entries", q, len(p.Data))
		}
	}
	s := uiSignIn(t, env, "boss@other.example", "other admin password")
	for _, p := range []string{"/admin/audit", "/admin/audit?target=" + ann, "/admin/audit/export?format=jsonl", "/admin/audit/export?format=csv"} {
		status, body, _ := s.get(p)
		if status != 200 {
			t.Errorf("%s: %d", p, status)
		}
		if (!strings.Contains(p, "target=") && strings.Contains(body, ann)) || strings.Contains(body, "ann@example.com") || strings.Contains(body, "user.create") {
			t.Errorf("%s shows the other account's entries", p)
		}
	}
}
