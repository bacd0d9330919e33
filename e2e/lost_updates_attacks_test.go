package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// Lost updates and broken invariants when management writes race: on
// two nodes of one cluster (one store, one Redis; PostgreSQL with
// GATEHOUSE_TEST_DATABASE=postgres), every request released together over
// connections opened in advance (volley).

// lostNodes starts two nodes sharing the store and a private Redis,
// with insecure webhooks and two platform scopes.
func lostNodes(t *testing.T) (a, b *servertest.Env) {
	return twoLeakNodes(t, insecureWebhooks, func(c *server.Config) {
		c.PlatformScopes = []gatehouse.Scope{"billing:read", "reports:read"}
	})
}

// lostPath returns the value at a dotted path of a decoded JSON object
// as text (fmt of the decoded value; objects and lists re-encoded).
func lostPath(m map[string]any, path string) string {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return "<missing>"
		}
		if v, ok = mm[k]; !ok {
			return "<missing>"
		}
	}
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case map[string]any, []any:
		b, _ := json.Marshal(v)
		return string(b)
	}
	return fmt.Sprint(v)
}

// lostItem finds the item with id in a list (limit 200), decoded.
func lostItem(t *testing.T, env *servertest.Env, tok, list, id string) map[string]any {
	t.Helper()
	r := env.As(tok, "GET", list+"?limit=200", nil)
	servertest.Expect(t, r, 200, "")
	var page struct {
		Data []map[string]any `json:"data"`
	}
	r.JSON(t, &page)
	for _, m := range page.Data {
		if m["id"] == id {
			return m
		}
	}
	t.Fatalf("%s: %s not listed: %s", list, id, r.Body)
	return nil
}

// lostField is one partial write of a subject: its request, and what
// the subject must show at path afterwards when the write answered 2xx.
type lostField struct {
	tok, method, path, body string
	at, want                string
}

// lostSubject is one object whose fields are written at once.
type lostSubject struct {
	name   string
	get    func() map[string]any
	fields []lostField
}

// TestLostPartialWrites releases together, on two nodes, partial writes
// of different fields of one object — a user, a client credential, an API
// token, a third-party application, a webhook endpoint, the API access
// application, the account's settings (and the extension switch) and the
// account itself (the operator's PATCH, which writes the same row as the
// settings) — several rounds. None may be a 5xx, and every field whose
// write answered 2xx must be there afterwards: no write may read the
// object before another committed and write its stale copy back.
func TestLostPartialWrites(t *testing.T) {
	a, b := lostNodes(t)
	nodes := []*servertest.Env{a, b}
	op := a.AdminToken()
	unlimit(t, a, op)
	acctID, boss := a.CreateAccount(op, "lost", "boss@lost.example", memberPW)
	unlimit(t, a, boss)
	bossID := meID(t, a, boss)
	servertest.Expect(t, a.As(boss, "PUT", "/v1/developers/"+bossID, nil), 204, "")
	boss = a.Login("boss@lost.example", memberPW)
	servertest.Expect(t, a.As(boss, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	memberID := a.CreateUser(boss, "member@lost.example", memberPW)

	r := a.As(boss, "POST", "/v1/credentials", map[string]string{"name": "cred"})
	servertest.Expect(t, r, 201, "")
	credID := r.Map(t)["id"].(string)
	r = a.As(boss, "POST", "/v1/api-tokens", map[string]string{"name": "key"})
	servertest.Expect(t, r, 201, "")
	keyID := r.Map(t)["id"].(string)
	app := registerApp(t, a, boss, "confidential", []string{appRedirect}, nil)
	r = a.As(boss, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"user.*"}, "description": "d"})
	servertest.Expect(t, r, 201, "")
	hookID := r.Map(t)["id"].(string)
	enableAPIAccess(t, a, boss, nil)

	get := func(path string) func() map[string]any {
		return func() map[string]any {
			r := a.As(boss, "GET", path, nil)
			servertest.Expect(t, r, 200, "")
			return r.Map(t)
		}
	}
	base := time.Now().UTC().Add(400 * 24 * time.Hour).Truncate(time.Second)
	const rounds = 4
	for round := range rounds {
		on := round%2 == 1
		exp := base.Add(-time.Duration(round) * 24 * time.Hour).Format(time.RFC3339)
		meta := fmt.Sprintf(`{"r":%d}`, round)
		f := func(tok, method, path, body, at, want string) lostField {
			return lostField{tok, method, path, body, at, want}
		}
		plan := func(tok, method, path string) []lostField {
			return []lostField{
				f(tok, method, path, `{"metadata":`+meta+`}`, "metadata", meta),
				f(tok, method, path, fmt.Sprintf(`{"external_id":"ext-%d"}`, round), "external_id", fmt.Sprintf("ext-%d", round)),
				f(tok, method, path, fmt.Sprintf(`{"rate_limit":{"daily":%d,"burst":1000,"burst_window_seconds":20}}`, 900000+round), "rate_limit.daily", fmt.Sprint(900000+round)),
				f(tok, method, path, fmt.Sprintf(`{"quota":{"limit":%d,"period":"month"}}`, 800000+round), "quota.limit", fmt.Sprint(800000+round)),
				f(tok, method, path, fmt.Sprintf(`{"allowed_ips":["10.%d.0.0/16","127.0.0.0/8"]}`, round), "allowed_ips", fmt.Sprintf(`["10.%d.0.0/16","127.0.0.0/8"]`, round)),
			}
		}
		subjects := []lostSubject{
			{"user", get("/v1/users/" + memberID), append([]lostField{
				f(boss, "PATCH", "/v1/users/"+memberID, fmt.Sprintf(`{"name":"member %d"}`, round), "name", fmt.Sprintf("member %d", round)),
				f(boss, "PATCH", "/v1/users/"+memberID, fmt.Sprintf(`{"roles":%s}`, map[bool]string{true: `["developer"]`, false: `[]`}[on]), "roles",
					map[bool]string{true: `["developer"]`, false: `[]`}[on]),
			}, plan(boss, "PATCH", "/v1/users/"+memberID)[:4]...)},
			{"credential", func() map[string]any { return lostItem(t, a, boss, "/v1/credentials", credID) }, append([]lostField{
				f(boss, "PATCH", "/v1/credentials/"+credID, fmt.Sprintf(`{"name":"cred %d"}`, round), "name", fmt.Sprintf("cred %d", round)),
				f(boss, "PATCH", "/v1/credentials/"+credID, fmt.Sprintf(`{"enabled":%t}`, on), "enabled", fmt.Sprint(on)),
				f(boss, "PATCH", "/v1/credentials/"+credID, `{"expires_at":"`+exp+`"}`, "expires_at", exp),
			}, plan(boss, "PATCH", "/v1/credentials/"+credID)...)},
			{"API token", func() map[string]any { return lostItem(t, a, boss, "/v1/api-tokens", keyID) }, append([]lostField{
				f(boss, "PATCH", "/v1/api-tokens/"+keyID, fmt.Sprintf(`{"name":"key %d"}`, round), "name", fmt.Sprintf("key %d", round)),
				f(boss, "PATCH", "/v1/api-tokens/"+keyID, fmt.Sprintf(`{"enabled":%t}`, on), "enabled", fmt.Sprint(on)),
				f(boss, "PATCH", "/v1/api-tokens/"+keyID, `{"expires_at":"`+exp+`"}`, "expires_at", exp),
			}, plan(boss, "PATCH", "/v1/api-tokens/"+keyID)...)},
			{"application", get("/v1/apps/" + app.ID), append([]lostField{
				f(boss, "PATCH", "/v1/apps/"+app.ID, fmt.Sprintf(`{"name":"app %d"}`, round), "name", fmt.Sprintf("app %d", round)),
				f(boss, "PATCH", "/v1/apps/"+app.ID, fmt.Sprintf(`{"homepage_url":"https://h%d.example.com"}`, round), "homepage_url", fmt.Sprintf("https://h%d.example.com", round)),
				f(boss, "PATCH", "/v1/apps/"+app.ID, fmt.Sprintf(`{"redirect_uris":["https://app.example.com/cb%d"]}`, round), "redirect_uris", fmt.Sprintf(`["https://app.example.com/cb%d"]`, round)),
				f(boss, "PATCH", "/v1/apps/"+app.ID, fmt.Sprintf(`{"scopes":["workspaces:read","s%d:read"]}`, round), "scopes", fmt.Sprintf(`["s%d:read","workspaces:read"]`, round)),
			}, plan(boss, "PATCH", "/v1/apps/"+app.ID)[:4]...)},
			{"webhook", get("/v1/webhooks/" + hookID), []lostField{
				f(boss, "PATCH", "/v1/webhooks/"+hookID, fmt.Sprintf(`{"url":"http://127.0.0.1:9/hook%d"}`, round), "url", fmt.Sprintf("http://127.0.0.1:9/hook%d", round)),
				f(boss, "PATCH", "/v1/webhooks/"+hookID, fmt.Sprintf(`{"events":["user.created","%s"]}`, map[bool]string{true: "credential.*", false: "webhook.test"}[on]), "events",
					fmt.Sprintf(`["user.created","%s"]`, map[bool]string{true: "credential.*", false: "webhook.test"}[on])),
				f(boss, "PATCH", "/v1/webhooks/"+hookID, fmt.Sprintf(`{"description":"desc %d"}`, round), "description", fmt.Sprintf("desc %d", round)),
				f(boss, "PATCH", "/v1/webhooks/"+hookID, fmt.Sprintf(`{"enabled":%t}`, on), "enabled", fmt.Sprint(on)),
			}},
			{"API access", get("/v1/api-access"), append([]lostField{
				f(boss, "PATCH", "/v1/api-access", fmt.Sprintf(`{"access_token_ttl_days":%d}`, round+2), "access_token_ttl_days", fmt.Sprint(round+2)),
			}, plan(boss, "PATCH", "/v1/api-access")[:4]...)},
			{"settings and account", func() map[string]any {
				m := get("/v1/settings")()
				r := a.As(op, "GET", "/v1/accounts/"+acctID, nil)
				servertest.Expect(t, r, 200, "")
				m["account"] = r.Map(t)
				r = a.As(boss, "GET", "/v1/extensions", nil)
				servertest.Expect(t, r, 200, "")
				m["extensions"] = r.Map(t)
				return m
			}, []lostField{
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"rate_limit":{"daily":%d}}`, 50_000_000+round), "rate_limit.daily", fmt.Sprint(50_000_000+round)),
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"rate_limit":{"burst":%d}}`, 500_000+round), "rate_limit.burst", fmt.Sprint(500_000+round)),
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"token_lifetimes":{"password_seconds":%d}}`, 3000+round), "token_lifetimes.password_seconds", fmt.Sprint(3000+round)),
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"password_grant_enabled":%t}`, true), "password_grant_enabled", "true"),
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"custom_scopes":["c%d:read"]}`, round), "custom_scopes", fmt.Sprintf(`["c%d:read"]`, round)),
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"max_credentials_per_user":%d}`, 50+round), "max_credentials_per_user", fmt.Sprint(50+round)),
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"max_api_tokens_per_account":%d}`, 60+round), "max_api_tokens_per_account", fmt.Sprint(60+round)),
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"leak_policy":"%s"}`, map[bool]string{true: "notify", false: "revoke"}[on]), "leak_policy", map[bool]string{true: "notify", false: "revoke"}[on]),
				f(boss, "PUT", "/v1/settings", fmt.Sprintf(`{"third_party_apps":"%s"}`, map[bool]string{true: "any", false: "approved"}[on]), "third_party_apps", map[bool]string{true: "any", false: "approved"}[on]),
				f(boss, "PUT", "/v1/extensions/api_tokens", `{"enabled":true}`, "extensions.api_tokens.enabled", "true"),
				f(op, "PATCH", "/v1/accounts/"+acctID, fmt.Sprintf(`{"name":"lost %d"}`, round), "account.name", fmt.Sprintf("lost %d", round)),
				f(op, "PATCH", "/v1/accounts/"+acctID, fmt.Sprintf(`{"platform_scopes":%s}`, map[bool]string{true: `["billing:read"]`, false: `["billing:read","reports:read"]`}[on]),
					"platform_scopes", map[bool]string{true: `["billing:read"]`, false: `["billing:read","reports:read"]`}[on]),
			}},
		}
		var shots []volleyReq
		var fields []lostField
		var owners []int
		for si, s := range subjects {
			for _, fl := range s.fields {
				shots = append(shots, volleyReq{req: asRequest(t, nodes[len(shots)%2], fl.tok, fl.method, fl.path, fl.body)})
				fields = append(fields, fl)
				owners = append(owners, si)
			}
		}
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		for i, r := range res.resps {
			if r.Status == 503 && strings.Contains(string(r.Body), "keeps changing") {
				// TestLostChurnNo503 is about these.
				t.Logf("%s: %s %s %s: %d %s", what, shots[i].req.Method, shots[i].req.URL.Path, fields[i].body, r.Status, strings.TrimSpace(string(r.Body)))
			} else if r.Status >= 500 {
				t.Errorf("%s: %s %s %s: %d %s", what, shots[i].req.Method, shots[i].req.URL.Path, fields[i].body, r.Status, strings.TrimSpace(string(r.Body)))
			} else if r.Status/100 != 2 {
				t.Logf("%s: %s %s %s: %d %s", what, shots[i].req.Method, shots[i].req.URL.Path, fields[i].body, r.Status, strings.TrimSpace(string(r.Body)))
			}
		}
		for si, s := range subjects {
			m := s.get()
			for i, fl := range fields {
				if owners[i] != si || res.resps[i].Status/100 != 2 {
					continue
				}
				if got := lostPath(m, fl.at); got != fl.want {
					t.Errorf("%s: %s: %s %s answered %d but %s is %s, want %s", what, s.name, fl.method, fl.body, res.resps[i].Status, fl.at, got, fl.want)
				}
			}
		}
		if t.Failed() {
			return
		}
	}
}

// TestLostChurnNo503 releases together, on two nodes, an admin's writes
// that revoke nothing a member holds — the metadata of the admin's own
// client credential (a plan change), or the account's
// max_api_tokens_per_account — and a member's GET /v1/me. The member's
// requests are unrelated to those writes: SPEC §10.9 "requests of
// unrelated principals ... get no 503", and every racing request answers
// 2xx or a clear 4xx.
func TestLostChurnNo503(t *testing.T) {
	a, b := lostNodes(t)
	nodes := []*servertest.Env{a, b}
	op := a.AdminToken()
	unlimit(t, a, op)
	_, boss := a.CreateAccount(op, "churn", "boss@churn.example", memberPW)
	unlimit(t, a, boss)
	bossID := meID(t, a, boss)
	servertest.Expect(t, a.As(boss, "PUT", "/v1/developers/"+bossID, nil), 204, "")
	boss = a.Login("boss@churn.example", memberPW)
	r := a.As(boss, "POST", "/v1/credentials", map[string]string{"name": "cred"})
	servertest.Expect(t, r, 201, "")
	credID := r.Map(t)["id"].(string)
	a.CreateUser(boss, "member@churn.example", memberPW)
	member := a.Login("member@churn.example", memberPW)
	for _, n := range nodes {
		servertest.Expect(t, n.As(member, "GET", "/v1/me", nil), 200, "")
	}
	const writes, reads, rounds = 12, 12, 4
	for _, kind := range []string{"credential metadata", "settings"} {
		member503, write503, served := 0, 0, 0
		var sample string
		for round := range rounds {
			var shots []volleyReq
			for i := range writes {
				if kind == "settings" {
					shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], boss, "PUT", "/v1/settings", fmt.Sprintf(`{"max_api_tokens_per_account":%d}`, 100+round*writes+i))})
				} else {
					shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], boss, "PATCH", "/v1/credentials/"+credID, fmt.Sprintf(`{"metadata":{"n":%d}}`, round*writes+i))})
				}
			}
			for i := range reads {
				shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], member, "GET", "/v1/me", "")})
			}
			res := volley(t, shots)
			for i, r := range res.resps {
				switch {
				case i >= writes && r.Status == 503:
					member503++
					sample = string(r.Body)
				case i >= writes && r.Status == 200:
					served++
				case i >= writes:
					t.Errorf("%s: member GET /v1/me: %d %s", kind, r.Status, r.Body)
				case r.Status >= 500:
					write503++
					sample = string(r.Body)
				}
			}
		}
		t.Logf("%s: member's GET /v1/me: %d served, %d answered 503; admin's writes: %d answered 5xx", kind, served, member503, write503)
		if member503 > 0 || write503 > 0 {
			t.Errorf("%s: %d of the member's %d requests and %d of the admin's %d writes answered 5xx, e.g. %s",
				kind, member503, reads*rounds, write503, writes*rounds, strings.TrimSpace(sample))
		}
	}
}

// lostNo5xx fails for every 5xx of res.
func lostNo5xx(t *testing.T, what string, shots []volleyReq, res volleyResult) {
	t.Helper()
	for i, r := range res.resps {
		switch {
		case r.Status >= 500:
			t.Errorf("%s: %s %s: %d %s", what, shots[i].req.Method, shots[i].req.URL.Path, r.Status, strings.TrimSpace(string(r.Body)))
		}
	}
}

// TestLostUniqueAddresses releases together, on two nodes, the
// operator's POST /v1/accounts naming one admin address and an admin's
// POST /v1/users of another account with the same address in other
// cases: the address is unique across the server (SPEC §1), so exactly
// one is 201 and every other 409 conflict, never 5xx.
func TestLostUniqueAddresses(t *testing.T) {
	a, b := lostNodes(t)
	nodes := []*servertest.Env{a, b}
	op := a.AdminToken()
	unlimit(t, a, op)
	_, boss := a.CreateAccount(op, "uniq", "boss@uniq.example", memberPW)
	unlimit(t, a, boss)
	for round := range 4 {
		email := fmt.Sprintf("Twin%d@uniq.example", round)
		var shots []volleyReq
		for i := range 12 {
			e := email
			if i%3 == 1 {
				e = strings.ToUpper(email)
			} else if i%3 == 2 {
				e = strings.ToLower(email)
			}
			if i%2 == 0 {
				shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], op, "POST", "/v1/accounts",
					fmt.Sprintf(`{"name":"twin %d %d","admin_email":%q,"admin_password":%q}`, round, i, e, memberPW))})
			} else {
				shots = append(shots, volleyReq{req: asRequest(t, nodes[(i/2)%2], boss, "POST", "/v1/users",
					fmt.Sprintf(`{"email":%q,"name":"twin","password":%q,"roles":["admin"]}`, e, memberPW))})
			}
		}
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		lostNo5xx(t, what, shots, res)
		created, conflicts := countStatus(res, 201), 0
		for i, r := range res.resps {
			if r.Status == 409 && strings.Contains(string(r.Body), `"conflict"`) {
				conflicts++
			} else if r.Status != 201 && !isChurn(r) {
				t.Errorf("%s: %s %s: %d %s", what, shots[i].req.Method, shots[i].req.URL.Path, r.Status, r.Body)
			}
		}
		if created != 1 {
			t.Errorf("%s: %d created with one address (%d conflicts): %v", what, created, conflicts, statuses(res))
		}
		r := a.As(op, "GET", "/v1/users?email="+strings.ToLower(email)+"&all_accounts=true", nil)
		servertest.Expect(t, r, 200, "")
	}
}

// TestLostAdminsTriangle: an account of two admins; at once, on two
// nodes, each admin demotes, disables or deletes the other while the
// operator deletes one or both (DELETE /v1/accounts/{id}/users/{id}).
// The account must keep an active admin (SPEC §9.3), and nothing is 5xx.
func TestLostAdminsTriangle(t *testing.T) {
	a, b := lostNodes(t)
	op := a.AdminToken()
	unlimit(t, a, op)
	for round := range 6 {
		bossEmail, otherEmail := fmt.Sprintf("boss%d@tri.example", round), fmt.Sprintf("other%d@tri.example", round)
		acct, boss := a.CreateAccount(op, fmt.Sprintf("tri%d", round), bossEmail, memberPW)
		otherID := a.CreateUser(boss, otherEmail, memberPW, "admin")
		other := a.Login(otherEmail, memberPW)
		bossID := meID(t, a, boss)
		changes := []string{`{"roles":[]}`, `{"status":"disabled"}`, "DELETE"}
		shot := func(n *servertest.Env, tok, id, change string) volleyReq {
			if change == "DELETE" {
				return volleyReq{req: asRequest(t, n, tok, "DELETE", "/v1/users/"+id, "")}
			}
			return volleyReq{req: asRequest(t, n, tok, "PATCH", "/v1/users/"+id, change)}
		}
		shots := []volleyReq{
			shot(a, boss, otherID, changes[round%3]),
			shot(b, other, bossID, changes[(round+1)%3]),
			{req: asRequest(t, b, op, "DELETE", "/v1/accounts/"+acct+"/users/"+bossID, "")},
		}
		if round >= 3 {
			shots = append(shots, volleyReq{req: asRequest(t, a, op, "DELETE", "/v1/accounts/"+acct+"/users/"+otherID, "")})
		}
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		lostNo5xx(t, what, shots, res)
		admins := activeAdmins(t, a, op, bossEmail, otherEmail)
		if admins == 0 {
			t.Errorf("%s: no active admin left; answers %v", what, statuses(res))
		}
	}
}

// TestLostDeleteVsRecreate releases together, on two nodes, an admin's
// DELETE /v1/users/{id} of a developer with a credential and POSTs of a
// new user with the same address: each POST is 201 (after the delete
// freed the address) or 409, never 5xx; at most one user holds the
// address afterwards, and a new one inherits nothing of the old (no
// developer role, no credential, the old tokens dead).
func TestLostDeleteVsRecreate(t *testing.T) {
	a, b := lostNodes(t)
	nodes := []*servertest.Env{a, b}
	op := a.AdminToken()
	unlimit(t, a, op)
	_, boss := a.CreateAccount(op, "recreate", "boss@re.example", memberPW)
	unlimit(t, a, boss)
	for round := range 4 {
		email := fmt.Sprintf("dev%d@re.example", round)
		devID := a.CreateUser(boss, email, memberPW)
		servertest.Expect(t, a.As(boss, "PUT", "/v1/developers/"+devID, nil), 204, "")
		dev := a.Login(email, memberPW)
		r := a.As(dev, "POST", "/v1/credentials", map[string]string{"name": "old"})
		servertest.Expect(t, r, 201, "")
		var c credential
		r.JSON(t, &c)
		shots := []volleyReq{{req: asRequest(t, a, boss, "DELETE", "/v1/users/"+devID, "")}}
		for i := range 6 {
			shots = append(shots, volleyReq{req: asRequest(t, nodes[(i+1)%2], boss, "POST", "/v1/users",
				fmt.Sprintf(`{"email":%q,"name":"new","password":"another password 9","roles":[]}`, email))})
		}
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		lostNo5xx(t, what, shots, res)
		if s := res.resps[0].Status; s != 204 && !isChurn(res.resps[0]) {
			t.Errorf("%s: delete: %d %s", what, s, res.resps[0].Body)
		}
		if n := countStatus(res, 201); n > 1 {
			t.Errorf("%s: %d users created with one address", what, n)
		}
		for _, n := range nodes {
			servertest.Expect(t, n.As(dev, "GET", "/v1/me", nil), 401, "invalid_token")
			servertest.Expect(t, clientToken(n, c), 401, "invalid_client")
		}
		r = a.As(op, "GET", "/v1/users?email="+email+"&all_accounts=true", nil)
		servertest.Expect(t, r, 200, "")
		if created := countStatus(res, 201); (created == 1) != !strings.Contains(string(r.Body), `"data":[]`) {
			t.Errorf("%s: %d created, and the address now finds %s", what, created, r.Body)
		}
		if created := countStatus(res, 201); created == 1 {
			s := string(r.Body)
			if strings.Contains(s, devID) || strings.Contains(s, "developer") {
				t.Errorf("%s: the new user inherits the old: %s", what, s)
			}
			for _, n := range nodes {
				lr := n.Request("POST", "/authorization", map[string]string{"username": email, "password": "another password 9"})
				if lr.Status != 200 {
					old := n.Request("POST", "/authorization", map[string]string{"username": email, "password": memberPW})
					t.Errorf("%s: the new user (answers %v) cannot sign in: %d %s; with the old password: %d %s; lookup %s",
						what, statuses(res), lr.Status, lr.Body, old.Status, old.Body, s)
					continue
				}
				newTok := lr.Map(t)["access_token"].(string)
				servertest.Expect(t, n.As(newTok, "GET", "/v1/credentials", nil), 403, "forbidden")
			}
		}
	}
}

// TestLostWebhookTestVsDelete releases together, on two nodes, POST
// /v1/webhooks/{id}/test, a redelivery, a PATCH and the endpoint's
// DELETE: every answer 2xx or a clear 4xx, and afterwards the endpoint
// and its deliveries are gone on both nodes.
func TestLostWebhookTestVsDelete(t *testing.T) {
	a, b := lostNodes(t)
	nodes := []*servertest.Env{a, b}
	admin := a.AdminToken()
	unlimit(t, a, admin)
	for round := range 4 {
		r := a.As(admin, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"*"}})
		servertest.Expect(t, r, 201, "")
		id := r.Map(t)["id"].(string)
		r = a.As(admin, "POST", "/v1/webhooks/"+id+"/test", nil)
		servertest.Expect(t, r, 202, "")
		first := r.Map(t)["id"]
		if first == nil {
			t.Fatalf("test delivery: %s", r.Body)
		}
		var shots []volleyReq
		for i := range 8 {
			shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], admin, "POST", "/v1/webhooks/"+id+"/test", "")})
		}
		shots = insertShot(shots, round, volleyReq{req: asRequest(t, nodes[round%2], admin, "DELETE", "/v1/webhooks/"+id, "")})
		shots = append(shots,
			volleyReq{req: asRequest(t, b, admin, "POST", fmt.Sprintf("/v1/webhooks/%s/deliveries/%s/redeliver", id, first), "")},
			volleyReq{req: asRequest(t, a, admin, "PATCH", "/v1/webhooks/"+id, `{"description":"x"}`)},
			volleyReq{req: asRequest(t, b, admin, "POST", "/v1/webhooks/"+id+"/roll-secret", `{"overlap_seconds":0}`)})
		res := volley(t, shots)
		what := fmt.Sprintf("round %d", round)
		lostNo5xx(t, what, shots, res)
		for i, r := range res.resps {
			if r.Status/100 != 2 && r.Status != 404 && !isChurn(r) {
				t.Errorf("%s: %s %s: %d %s", what, shots[i].req.Method, shots[i].req.URL.Path, r.Status, r.Body)
			}
		}
		for _, n := range nodes {
			servertest.Expect(t, n.As(admin, "GET", "/v1/webhooks/"+id, nil), 404, "not_found")
			servertest.Expect(t, n.As(admin, "GET", "/v1/webhooks/"+id+"/deliveries", nil), 404, "not_found")
		}
	}
}

// TestLostCaps releases creations over a cap together, on two nodes:
// webhook endpoints (at most 50 an account) and applications (at most
// 100 a developer). Exactly the room left is created, the rest refused
// with a 4xx, never 5xx.
func TestLostCaps(t *testing.T) {
	a, b := lostNodes(t)
	nodes := []*servertest.Env{a, b}
	admin, _, devTok, _ := developer(t, a)
	unlimit(t, a, admin)
	for i := range 48 {
		servertest.Expect(t, a.As(admin, "POST", "/v1/webhooks", map[string]any{"url": fmt.Sprintf("http://127.0.0.1:9/h%d", i), "events": []string{"user.created"}}), 201, "")
	}
	for i := range 98 {
		r := a.As(devTok, "POST", "/v1/apps", map[string]any{"name": fmt.Sprintf("app %d", i), "type": "public", "redirect_uris": []string{appRedirect}})
		servertest.Expect(t, r, 201, "")
	}
	var shots []volleyReq
	for i := range 8 {
		shots = append(shots, volleyReq{req: asRequest(t, nodes[i%2], admin, "POST", "/v1/webhooks", fmt.Sprintf(`{"url":"http://127.0.0.1:9/x%d","events":["user.created"]}`, i))})
		shots = append(shots, volleyReq{req: asRequest(t, nodes[(i+1)%2], devTok, "POST", "/v1/apps", fmt.Sprintf(`{"name":"more %d","type":"public","redirect_uris":[%q]}`, i, appRedirect))})
	}
	res := volley(t, shots)
	lostNo5xx(t, "caps", shots, res)
	hooks, apps := 0, 0
	for i, r := range res.resps {
		if r.Status == 201 {
			if i%2 == 0 {
				hooks++
			} else {
				apps++
			}
		} else if r.Status/100 != 4 && !isChurn(r) {
			t.Errorf("%s %s: %d %s", shots[i].req.Method, shots[i].req.URL.Path, r.Status, r.Body)
		}
	}
	if hooks != 2 || apps != 2 {
		t.Errorf("created %d webhooks (room for 2) and %d applications (room for 2): %v", hooks, apps, statuses(res))
	}
}
