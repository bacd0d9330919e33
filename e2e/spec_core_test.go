package e2e

// An exactness walk of SPEC.md §1–§9: every path, field, status, error
// code and header those sections name, requested the way a client that
// reads the SPEC literally would, and checked against exactly what the
// SPEC says (and, where the SPEC is silent or a later section or a docs/
// decision refines it, what docs/ says, named at the check). The tests
// that change data run on SQLite and on PostgreSQL in one run
// (specCoreBoth).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/token"
)

const specCorePW = "speccore walk pass 7"

// specCoreErr checks an error answer: status, the `error` code, and the
// body shape SPEC §4 gives every error ({"error","error_description"}).
func specCoreErr(t *testing.T, what string, r *servertest.Response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Errorf("%s: body %q is not JSON", what, r.Body)
		return nil
	}
	if m["error"] != code {
		t.Errorf("%s: error %v, want %q; body %s", what, m["error"], code, r.Body)
	}
	if d, ok := m["error_description"].(string); !ok || d == "" {
		t.Errorf("%s: error_description missing; body %s", what, r.Body)
	}
	return m
}

// specCoreOK checks a status and decodes a JSON object body.
func specCoreOK(t *testing.T, what string, r *servertest.Response, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
	}
	if status == http.StatusNoContent {
		if len(r.Body) != 0 {
			t.Errorf("%s: 204 with a body %q", what, r.Body)
		}
		return nil
	}
	var m map[string]any
	if len(r.Body) == 0 {
		return map[string]any{}
	}
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s: body %q: %v", what, r.Body, err)
	}
	return m
}

// specCoreHas checks that m has every key, and of the right JSON type
// where one is given as "key:type" (string, number, bool, object, array).
func specCoreHas(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		name, typ, _ := strings.Cut(k, ":")
		v, ok := m[name]
		if !ok {
			t.Errorf("%s: field %q missing; have %v", what, name, m)
			continue
		}
		ok = true
		switch typ {
		case "string":
			_, ok = v.(string)
		case "number":
			_, ok = v.(float64)
		case "bool":
			_, ok = v.(bool)
		case "object":
			_, ok = v.(map[string]any)
		case "array":
			_, ok = v.([]any)
		}
		if !ok {
			t.Errorf("%s: field %q is %T (%v), want %s", what, name, v, v, typ)
		}
	}
}

func specCoreLacks(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; ok {
			t.Errorf("%s: field %q present: %v", what, k, m)
		}
	}
}

func specCoreForm(env *servertest.Env, path string, v url.Values, headers ...string) *servertest.Response {
	return env.Request("POST", path, v.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
}

func specCoreBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func specCoreNoStore(t *testing.T, what string, r *servertest.Response) {
	t.Helper()
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Errorf("%s: Cache-Control=%q Pragma=%q, want no-store and no-cache (SPEC §6)", what, r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
	}
}

func specCoreList(t *testing.T, what string, r *servertest.Response) []map[string]any {
	t.Helper()
	m := specCoreOK(t, what, r, 200)
	data, ok := m["data"].([]any)
	if !ok {
		t.Fatalf("%s: no data array: %s", what, r.Body)
	}
	out := make([]map[string]any, len(data))
	for i, d := range data {
		out[i] = d.(map[string]any)
	}
	return out
}

func specCoreLogin(t *testing.T, env *servertest.Env, email, pw string) string {
	t.Helper()
	return env.Login(email, pw)
}

// specCoreVolley sends reqs released together, each over a connection
// opened in advance, and returns the answers in order.
func specCoreVolley(t *testing.T, base string, reqs []*http.Request) []*servertest.Response {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, len(reqs))
	for range reqs {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		conns <- c
	}
	var d net.Dialer
	tr := &http.Transport{MaxIdleConnsPerHost: len(reqs), DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case c := <-conns:
			return c, nil
		default:
			return d.DialContext(ctx, network, addr)
		}
	}}
	defer func() {
		tr.CloseIdleConnections()
		for len(conns) > 0 {
			(<-conns).Close()
		}
	}()
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	out := make([]*servertest.Response, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("volley %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out[i] = &servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range out {
		if r == nil {
			t.Fatalf("volley %d: no answer", i)
		}
	}
	return out
}

func specCoreReq(t *testing.T, method, u, body string, headers ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

var specCoreBase62 = regexp.MustCompile(`^[0-9A-Za-z]+$`)

// specCoreSecretShape checks SPEC §2's token strings: the kind's prefix,
// then at least 256 bits in base62 (43 characters) and a 6-character
// checksum.
func specCoreSecretShape(t *testing.T, what, s, prefix string) {
	t.Helper()
	if !strings.HasPrefix(s, prefix) {
		t.Errorf("%s %q: want prefix %s", what, s, prefix)
		return
	}
	rest := s[len(prefix):]
	if len(rest) < 43+6 || !specCoreBase62.MatchString(rest) {
		t.Errorf("%s %q: want at least 49 base62 characters after the prefix", what, s)
	}
}

// specCoreUser makes a user and returns its id and a password-grant token.
func specCoreUser(t *testing.T, env *servertest.Env, admin, email string, roles ...string) (string, string) {
	t.Helper()
	id := env.CreateUser(admin, email, specCorePW, roles...)
	return id, env.Login(email, specCorePW)
}

// ---------------------------------------------------------------------------
// §1 Model

func TestSpecCoreModel(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()

	// Email unique across the whole server, case-insensitive.
	annID, ann := specCoreUser(t, env, op, "ann@speccore.example")
	specCoreErr(t, "same email other case", env.As(op, "POST", "/v1/users", map[string]any{"email": "ANN@SpecCore.Example", "name": "x", "password": specCorePW, "roles": []string{}}), 409, "conflict")
	accID, other := env.CreateAccount(op, "Other", "boss@other.example", specCorePW)
	specCoreErr(t, "same email in another account", env.As(other, "POST", "/v1/users", map[string]any{"email": "Ann@speccore.example", "name": "x", "password": specCorePW, "roles": []string{}}), 409, "conflict")
	specCoreErr(t, "account admin email taken", env.As(op, "POST", "/v1/accounts", map[string]string{"name": "Third", "admin_email": "ANN@speccore.example", "admin_password": specCorePW}), 409, "conflict")

	// A user: roles admin/developer, status active|disabled.
	u := specCoreOK(t, "GET user", env.As(op, "GET", "/v1/users/"+annID, nil), 200)
	specCoreHas(t, "user", u, "id:string", "email:string", "name:string", "status:string", "roles:array")
	if u["status"] != "active" || len(u["roles"].([]any)) != 0 {
		t.Errorf("new plain member: %v", u)
	}
	specCoreLacks(t, "user", u, "password", "password_hash")

	// Only the operator creates accounts; the answer is {id,name,admin_id}.
	specCoreErr(t, "non-operator admin creates an account", env.As(other, "POST", "/v1/accounts", map[string]string{"name": "Nope", "admin_email": "nope@x.example", "admin_password": specCorePW}), 403, "forbidden")
	specCoreErr(t, "member creates an account", env.As(ann, "POST", "/v1/accounts", map[string]string{"name": "Nope", "admin_email": "nope@x.example", "admin_password": specCorePW}), 403, "forbidden")
	acc := specCoreOK(t, "operator creates an account", env.As(op, "POST", "/v1/accounts", map[string]string{"name": "Fourth", "admin_email": "four@x.example", "admin_password": specCorePW}), 201)
	specCoreHas(t, "account", acc, "id:string", "name:string", "admin_id:string")
	if acc["name"] != "Fourth" {
		t.Errorf("account %v", acc)
	}

	// Workspaces: the five fields; visibility.
	ws := specCoreOK(t, "ann creates a workspace", env.As(ann, "POST", "/v1/workspaces", map[string]string{"name": "Ann's", "description": "d"}), 201)
	specCoreHas(t, "workspace", ws, "id:string", "name:string", "description:string", "owner_id:string", "created_at:string")
	if ws["owner_id"] != annID || ws["name"] != "Ann's" || ws["description"] != "d" {
		t.Errorf("workspace %v", ws)
	}
	if _, err := time.Parse(time.RFC3339, ws["created_at"].(string)); err != nil {
		t.Errorf("created_at %v: %v", ws["created_at"], err)
	}
	wsID := ws["id"].(string)
	bobID, bob := specCoreUser(t, env, op, "bob@speccore.example")
	specCoreErr(t, "bob sees ann's workspace", env.As(bob, "GET", "/v1/workspaces/"+wsID, nil), 404, "not_found")
	if n := len(specCoreList(t, "bob's list", env.As(bob, "GET", "/v1/workspaces", nil))); n != 0 {
		t.Errorf("bob lists %d workspaces, want 0", n)
	}
	specCoreErr(t, "bob adds himself", env.As(bob, "PUT", "/v1/workspaces/"+wsID+"/members/"+bobID, nil), 404, "not_found")
	specCoreOK(t, "ann adds bob", env.As(ann, "PUT", "/v1/workspaces/"+wsID+"/members/"+bobID, nil), 204)
	specCoreOK(t, "again (idempotent)", env.As(ann, "PUT", "/v1/workspaces/"+wsID+"/members/"+bobID, nil), 204)
	got := specCoreOK(t, "bob sees it as a member", env.As(bob, "GET", "/v1/workspaces/"+wsID, nil), 200)
	if got["id"] != wsID {
		t.Errorf("bob's view %v", got)
	}
	specCoreErr(t, "member deletes a workspace he does not own", env.As(bob, "DELETE", "/v1/workspaces/"+wsID, nil), 403, "forbidden")
	meta := specCoreList(t, "bob's metadata", env.As(bob, "GET", "/v1/metadata/workspace", nil))
	if len(meta) != 1 || meta[0]["access"] != "member" || meta[0]["id"] != wsID {
		t.Errorf("bob's metadata %v", meta)
	}
	meta = specCoreList(t, "admin's metadata", env.As(op, "GET", "/v1/metadata/workspace", nil))
	if len(meta) != 1 || meta[0]["access"] != "admin" {
		t.Errorf("admin's metadata %v", meta)
	}
	meta = specCoreList(t, "ann's metadata", env.As(ann, "GET", "/v1/metadata/workspace", nil))
	if len(meta) != 1 || meta[0]["access"] != "owner" {
		t.Errorf("owner's metadata %v", meta)
	}
	if n := len(specCoreList(t, "admin's list", env.As(op, "GET", "/v1/workspaces", nil))); n != 1 {
		t.Errorf("admin lists %d workspaces, want all 1", n)
	}
	// Anything of another account is invisible (404), to its admin too.
	specCoreErr(t, "other account's admin GET", env.As(other, "GET", "/v1/workspaces/"+wsID, nil), 404, "not_found")
	specCoreErr(t, "other account's admin DELETE", env.As(other, "DELETE", "/v1/workspaces/"+wsID, nil), 404, "not_found")
	specCoreErr(t, "other account's admin PUT member", env.As(other, "PUT", "/v1/workspaces/"+wsID+"/members/"+annID, nil), 404, "not_found")
	specCoreErr(t, "other account's admin GET user", env.As(other, "GET", "/v1/users/"+annID, nil), 404, "not_found")
	specCoreErr(t, "other account's admin PATCH user", env.As(other, "PATCH", "/v1/users/"+annID, map[string]string{"name": "x"}), 404, "not_found")
	if n := len(specCoreList(t, "other admin's list", env.As(other, "GET", "/v1/workspaces", nil))); n != 0 {
		t.Errorf("other account lists %d workspaces", n)
	}
	for _, u := range specCoreList(t, "other admin's users", env.As(other, "GET", "/v1/users", nil)) {
		if u["account_id"] != accID {
			t.Errorf("another account's user listed: %v", u)
		}
	}
	specCoreOK(t, "ann removes bob", env.As(ann, "DELETE", "/v1/workspaces/"+wsID+"/members/"+bobID, nil), 204)
	specCoreErr(t, "bob after removal", env.As(bob, "GET", "/v1/workspaces/"+wsID, nil), 404, "not_found")
	specCoreOK(t, "owner deletes", env.As(ann, "DELETE", "/v1/workspaces/"+wsID, nil), 204)
	specCoreErr(t, "deleted workspace", env.As(op, "GET", "/v1/workspaces/"+wsID, nil), 404, "not_found")
}

// ---------------------------------------------------------------------------
// §2 Secrets

func TestSpecCoreSecrets(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID, ann := specCoreUser(t, env, op, "ann@speccore.example")
	_ = annID
	app := specCoreOK(t, "enable API access", env.As(op, "POST", "/v1/api-access", nil), 201)
	specCoreSecretShape(t, "access token", app["access_token"].(string), "gat_")
	specCoreSecretShape(t, "refresh token", app["refresh_token"].(string), "grt_")
	specCoreSecretShape(t, "client id", app["client_id"].(string), "gci_")
	specCoreSecretShape(t, "password-grant token", ann, "gat_")
	specCoreOK(t, "extension on", env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200)
	at := specCoreOK(t, "API token", env.As(op, "POST", "/v1/api-tokens", map[string]string{"name": "Zap"}), 201)
	specCoreSecretShape(t, "API token", at["token"].(string), "gak_")
	devID, _ := specCoreUser(t, env, op, "dev@speccore.example", "developer")
	_ = devID
	dev := env.Login("dev@speccore.example", specCorePW)
	cred := specCoreOK(t, "credential", env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "CI"}), 201)
	specCoreSecretShape(t, "client secret", cred["client_secret"].(string), "gcs_")
	specCoreSecretShape(t, "credential client id", cred["client_id"].(string), "gci_")

	// Garbage is rejected: a string with a good prefix and length but a
	// wrong checksum, and one never issued, are both invalid_token.
	unknown := token.New(token.AccessToken)
	last := unknown[len(unknown)-1]
	flipped := unknown[:len(unknown)-1] + map[bool]string{true: "A", false: "B"}[last != 'A']
	for name, tok := range map[string]string{"unknown": unknown, "bad checksum": flipped, "short": "gat_abc", "wrong kind": at["token"].(string)} {
		r := env.As(tok, "GET", "/v1/me", nil)
		specCoreErr(t, "bearer "+name, r, 401, "invalid_token")
	}

	// Shown once: never again in any read.
	secrets := []string{app["access_token"].(string), app["refresh_token"].(string), at["token"].(string), cred["client_secret"].(string), ann, specCorePW, servertest.AdminPassword}
	for _, p := range []string{"/v1/api-access", "/v1/api-tokens", "/v1/users", "/v1/audit?limit=200", "/v1/me"} {
		r := env.As(op, "GET", p, nil)
		for _, s := range secrets {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("GET %s shows a secret %.8s…", p, s)
			}
		}
	}
	for _, p := range []string{"/v1/credentials", "/v1/me"} {
		r := env.As(dev, "GET", p, nil)
		for _, s := range secrets {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("dev GET %s shows a secret %.8s…", p, s)
			}
		}
	}

	// A dump of the store holds no usable secret.
	dump := specCoreDump(t, env)
	for _, s := range secrets {
		if strings.Contains(dump, s) {
			t.Errorf("the store's dump contains a secret %.8s…", s)
		}
		// nor the random body alone
		if strings.HasPrefix(s, "g") && len(s) > 20 && strings.Contains(dump, s[4:40]) {
			t.Errorf("the store's dump contains the random part of %.8s…", s)
		}
	}
}

// specCoreDump returns the store's whole content as text.
func specCoreDump(t *testing.T, env *servertest.Env) string {
	t.Helper()
	if env.DBPath != "" {
		var b strings.Builder
		matches, _ := filepath.Glob(env.DBPath + "*")
		for _, m := range matches {
			data, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
		}
		return b.String()
	}
	u, err := url.Parse(env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	base := pgtest.BaseURL()
	out, err := exec.Command("pg_dump", "--data-only", "-n", schema, base).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	if !strings.Contains(string(out), "COPY") {
		t.Fatalf("pg_dump printed no data: %.300s", out)
	}
	return string(out)
}

// ---------------------------------------------------------------------------
// §3.1 API access applications

func TestSpecCoreAPIAccess(t *testing.T) {
	const grace = 3 * time.Second
	env := servertest.Start(t, func(c *server.Config) { c.RefreshGrace = grace })
	op := env.AdminToken()
	_, member := specCoreUser(t, env, op, "ann@speccore.example")

	specCoreErr(t, "non-admin enables", env.As(member, "POST", "/v1/api-access", map[string]int{"access_token_ttl_days": 1}), 403, "forbidden")
	for _, bad := range []any{0, 366, -1, 1.5, "7"} {
		specCoreErr(t, fmt.Sprintf("ttl %v", bad), env.As(op, "POST", "/v1/api-access", map[string]any{"access_token_ttl_days": bad}), 400, "invalid_request")
	}
	off := specCoreOK(t, "GET before enable", env.As(op, "GET", "/v1/api-access", nil), 200)
	if off["enabled"] != false {
		t.Errorf("before enable: %v", off)
	}

	// Default lifetime: 1 day.
	app := specCoreOK(t, "enable default", env.As(op, "POST", "/v1/api-access", nil), 201)
	specCoreHas(t, "enable", app, "client_id:string", "access_token:string", "refresh_token:string", "token_type:string", "expires_in:number")
	if app["token_type"] != "bearer" || app["expires_in"] != 86400.0 {
		t.Errorf("enable default: %v", app)
	}
	specCoreErr(t, "second enable", env.As(op, "POST", "/v1/api-access", nil), 409, "conflict")
	specCoreErr(t, "second enable with a body", env.As(op, "POST", "/v1/api-access", map[string]int{"access_token_ttl_days": 2}), 409, "conflict")
	specCoreOK(t, "DELETE", env.As(op, "DELETE", "/v1/api-access", nil), 204)
	for _, tok := range []string{app["access_token"].(string)} {
		specCoreErr(t, "access token after DELETE", env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	}
	r := refresh(env, app["client_id"].(string), app["refresh_token"].(string))
	specCoreErr(t, "refresh after DELETE", r, 400, "invalid_grant")
	specCoreErr(t, "DELETE again", env.As(op, "DELETE", "/v1/api-access", nil), 404, "not_found")

	// 365 is the upper bound and allowed.
	app = specCoreOK(t, "enable 365", env.As(op, "POST", "/v1/api-access", map[string]int{"access_token_ttl_days": 365}), 201)
	if app["expires_in"] != 365*86400.0 {
		t.Errorf("365 days: expires_in %v", app["expires_in"])
	}
	specCoreOK(t, "DELETE", env.As(op, "DELETE", "/v1/api-access", nil), 204)

	app = specCoreOK(t, "enable 7", env.As(op, "POST", "/v1/api-access", map[string]int{"access_token_ttl_days": 7}), 201)
	if app["expires_in"] != 7*86400.0 {
		t.Errorf("7 days: expires_in %v", app["expires_in"])
	}
	clientID, at0, rt0 := app["client_id"].(string), app["access_token"].(string), app["refresh_token"].(string)
	view := specCoreOK(t, "GET", env.As(op, "GET", "/v1/api-access", nil), 200)
	specCoreHas(t, "GET", view, "enabled:bool", "client_id:string", "access_token_ttl_days:number", "created_at:string")
	specCoreLacks(t, "GET", view, "access_token", "refresh_token", "client_secret")
	if view["enabled"] != true || view["client_id"] != clientID || view["access_token_ttl_days"] != 7.0 {
		t.Errorf("GET %v", view)
	}
	me := specCoreOK(t, "me", env.As(at0, "GET", "/v1/me", nil), 200)
	if me["auth_method"] != "api_access" {
		t.Errorf("me %v", me)
	}
	specCoreErr(t, "non-admin GET", env.As(member, "GET", "/v1/api-access", nil), 403, "forbidden")

	// Refresh, JSON body, on /oauth/token.
	r = refresh(env, clientID, rt0)
	used0 := time.Now()
	ans := specCoreOK(t, "refresh JSON", r, 200)
	specCoreNoStore(t, "refresh", r)
	specCoreHas(t, "refresh", ans, "access_token:string", "token_type:string", "expires_in:number", "refresh_token:string")
	if ans["token_type"] != "bearer" || ans["expires_in"] != 7*86400.0 || ans["refresh_token"] == rt0 || ans["access_token"] == at0 {
		t.Errorf("refresh %v", ans)
	}
	specCoreSecretShape(t, "new refresh token", ans["refresh_token"].(string), "grt_")
	rt1 := ans["refresh_token"].(string)

	// PATCH: lifetime of tokens issued from then on.
	for _, bad := range []any{0, 366} {
		specCoreErr(t, fmt.Sprintf("PATCH %v", bad), env.As(op, "PATCH", "/v1/api-access", map[string]any{"access_token_ttl_days": bad}), 400, "invalid_request")
	}
	specCoreErr(t, "non-admin PATCH", env.As(member, "PATCH", "/v1/api-access", map[string]int{"access_token_ttl_days": 3}), 403, "forbidden")
	specCoreOK(t, "PATCH 30", env.As(op, "PATCH", "/v1/api-access", map[string]int{"access_token_ttl_days": 30}), 200)
	if v := specCoreOK(t, "GET", env.As(op, "GET", "/v1/api-access", nil), 200); v["access_token_ttl_days"] != 30.0 {
		t.Errorf("after PATCH %v", v)
	}
	// Refresh, form body, on /v1/oauth/token.
	r = specCoreForm(env, "/v1/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt1}})
	used1 := time.Now()
	ans = specCoreOK(t, "refresh form", r, 200)
	specCoreNoStore(t, "refresh form", r)
	if ans["expires_in"] != 30*86400.0 || ans["refresh_token"] == rt1 {
		t.Errorf("refresh after PATCH %v", ans)
	}
	at2, rt2 := ans["access_token"].(string), ans["refresh_token"].(string)

	// The used rt0 again: invalid_grant (its successor has been used, so
	// even §10.9's in-grace retry has no pair to give back).
	specCoreErr(t, "rt0 again", refresh(env, clientID, rt0), 400, "invalid_grant")
	if time.Since(used0) < grace {
		if r := env.As(at2, "GET", "/v1/me", nil); r.Status != 200 {
			t.Errorf("an in-grace retry of rt0 revoked the lineage: %d %s", r.Status, r.Body)
		}
	}
	// Missing parameters and a wrong client id.
	specCoreErr(t, "no client_id", env.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": rt2}), 400, "invalid_request")
	specCoreErr(t, "no refresh_token", env.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "client_id": clientID}), 400, "invalid_request")
	specCoreErr(t, "unknown refresh token", refresh(env, clientID, token.New(token.RefreshToken)), 400, "invalid_grant")

	// After the grace period: reuse revokes the whole lineage.
	if d := grace + 200*time.Millisecond - time.Since(used1); d > 0 {
		time.Sleep(d)
	}
	specCoreErr(t, "rt1 after grace", refresh(env, clientID, rt1), 400, "invalid_grant")
	specCoreErr(t, "access token of the lineage after reuse", env.As(at2, "GET", "/v1/me", nil), 401, "invalid_token")
	specCoreErr(t, "refresh token of the lineage after reuse", refresh(env, clientID, rt2), 400, "invalid_grant")

	// N concurrent uses of one refresh token: one rotation.
	specCoreOK(t, "DELETE", env.As(op, "DELETE", "/v1/api-access", nil), 204)
	app = specCoreOK(t, "enable", env.As(op, "POST", "/v1/api-access", nil), 201)
	clientID, rt := app["client_id"].(string), app["refresh_token"].(string)
	const n = 24
	reqs := make([]*http.Request, n)
	for i := range reqs {
		body := url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}.Encode()
		reqs[i] = specCoreReq(t, "POST", env.URL+"/oauth/token", body, "Content-Type", "application/x-www-form-urlencoded")
	}
	pairs := map[string]string{}
	for i, r := range specCoreVolley(t, env.URL, reqs) {
		switch r.Status {
		case 200:
			var m map[string]any
			json.Unmarshal(r.Body, &m)
			pairs[m["refresh_token"].(string)] = m["access_token"].(string)
		case 400:
			specCoreErr(t, fmt.Sprintf("concurrent refresh %d", i), r, 400, "invalid_grant")
		default:
			t.Errorf("concurrent refresh %d: %d %s", i, r.Status, r.Body)
		}
	}
	if len(pairs) != 1 {
		t.Fatalf("%d concurrent uses of one refresh token made %d rotations, want exactly 1", n, len(pairs))
	}
	for rtN, atN := range pairs {
		if r := env.As(atN, "GET", "/v1/me", nil); r.Status != 200 {
			t.Errorf("the one rotation's access token: %d %s", r.Status, r.Body)
		}
		specCoreOK(t, "its refresh token works", refresh(env, clientID, rtN), 200)
	}

	// Demoting or disabling revokes the application.
	for i, change := range []map[string]any{{"roles": []string{}}, {"status": "disabled"}} {
		email := fmt.Sprintf("adm%d@speccore.example", i)
		id, tok := specCoreUser(t, env, op, email, "admin")
		a := specCoreOK(t, "second admin enables", env.As(tok, "POST", "/v1/api-access", nil), 201)
		specCoreOK(t, "its token works", env.As(a["access_token"].(string), "GET", "/v1/me", nil), 200)
		specCoreOK(t, fmt.Sprintf("change %v", change), env.As(op, "PATCH", "/v1/users/"+id, change), 200)
		specCoreErr(t, fmt.Sprintf("app token after %v", change), env.As(a["access_token"].(string), "GET", "/v1/me", nil), 401, "invalid_token")
		specCoreErr(t, fmt.Sprintf("app refresh after %v", change), refresh(env, a["client_id"].(string), a["refresh_token"].(string)), 400, "invalid_grant")
	}
}

// ---------------------------------------------------------------------------
// §3.2 API tokens extension

func TestSpecCoreAPITokens(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID, ann := specCoreUser(t, env, op, "ann@speccore.example")
	_ = annID
	bobID, _ := specCoreUser(t, env, op, "bob@speccore.example")
	_, other := env.CreateAccount(op, "Other", "boss@other.example", specCorePW)

	r := env.As(op, "GET", "/v1/extensions", nil)
	if specCoreOK(t, "GET extensions", r, 200); strings.TrimSpace(string(r.Body)) != `{"api_tokens":{"enabled":false}}` {
		t.Errorf("extensions by default: %s", r.Body)
	}
	specCoreErr(t, "create while off", env.As(op, "POST", "/v1/api-tokens", map[string]string{"name": "x"}), 403, "extension_disabled")
	specCoreErr(t, "member turns it on", env.As(ann, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 403, "forbidden")
	specCoreErr(t, "enabled not a bool", env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]string{"enabled": "yes"}), 400, "invalid_request")
	specCoreErr(t, "unknown extension", env.As(op, "PUT", "/v1/extensions/nope", map[string]bool{"enabled": true}), 404, "not_found")
	r = env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true})
	if r.Status != 200 && r.Status != 204 {
		t.Fatalf("turn on: %d %s", r.Status, r.Body)
	}
	if r := env.As(op, "GET", "/v1/extensions", nil); strings.TrimSpace(string(r.Body)) != `{"api_tokens":{"enabled":true}}` {
		t.Errorf("extensions after on: %s", r.Body)
	}
	specCoreErr(t, "member creates", env.As(ann, "POST", "/v1/api-tokens", map[string]string{"name": "x"}), 403, "forbidden")
	specCoreErr(t, "member lists", env.As(ann, "GET", "/v1/api-tokens", nil), 403, "forbidden")
	specCoreErr(t, "no name", env.As(op, "POST", "/v1/api-tokens", map[string]string{}), 400, "invalid_request")

	at := specCoreOK(t, "create", env.As(op, "POST", "/v1/api-tokens", map[string]string{"name": "Zapier"}), 201)
	specCoreHas(t, "create", at, "id:string", "name:string", "token:string", "prefix:string", "created_at:string")
	tok := at["token"].(string)
	if at["name"] != "Zapier" || !strings.HasPrefix(tok, at["prefix"].(string)) || at["prefix"] == tok {
		t.Errorf("create %v", at)
	}

	// The anonymous admin: sees every workspace of its account.
	ws := specCoreOK(t, "ann's workspace", env.As(ann, "POST", "/v1/workspaces", map[string]string{"name": "A", "description": ""}), 201)
	me := specCoreOK(t, "me as anonymous admin", env.Request("GET", "/v1/me", nil, "X-API-Token", tok), 200)
	// acting_as is given when the request acts as a user (api/users.go
	// omits it otherwise; the OpenAPI document does not require it).
	specCoreHas(t, "me anonymous", me, "user", "account:object", "roles:array", "auth_method:string")
	if me["auth_method"] != "api_token" || me["anonymous"] != true || me["user"] != nil || fmt.Sprint(me["roles"]) != "[admin]" {
		t.Errorf("anonymous admin me: %v", me)
	}
	if ws := specCoreList(t, "anonymous admin lists", env.Request("GET", "/v1/workspaces", nil, "X-API-Token", tok)); len(ws) != 1 {
		t.Errorf("anonymous admin sees %d workspaces, want 1", len(ws))
	}
	specCoreOK(t, "anonymous admin GET", env.Request("GET", "/v1/workspaces/"+ws["id"].(string), nil, "X-API-Token", tok), 200)

	// Listed without the token, with last_used_at.
	list := env.As(op, "GET", "/v1/api-tokens", nil)
	items := specCoreList(t, "list", list)
	if len(items) != 1 || strings.Contains(string(list.Body), tok) {
		t.Fatalf("list %s", list.Body)
	}
	specCoreHas(t, "list item", items[0], "id:string", "name:string", "prefix:string", "created_at:string", "last_used_at")
	specCoreLacks(t, "list item", items[0], "token")

	// Acting as a user: that user's permissions.
	me = specCoreOK(t, "me as ann", env.Request("GET", "/v1/me", nil, "X-API-Token", tok, "X-User-Email", "ann@speccore.example"), 200)
	if u, _ := me["user"].(map[string]any); u == nil || u["id"] != annID || me["acting_as"] != "ann@speccore.example" || me["auth_method"] != "api_token" {
		t.Errorf("acting as ann: %v", me)
	}
	specCoreErr(t, "ann (as) on an admin route", env.Request("GET", "/v1/settings", nil, "X-API-Token", tok, "X-User-Email", "ann@speccore.example"), 403, "forbidden")
	if ws := specCoreList(t, "bob (as) lists", env.Request("GET", "/v1/workspaces", nil, "X-API-Token", tok, "X-User-Email", "bob@speccore.example")); len(ws) != 0 {
		t.Errorf("bob, acted as, sees %d workspaces", len(ws))
	}
	specCoreOK(t, "disable bob", env.As(op, "PATCH", "/v1/users/"+bobID, map[string]string{"status": "disabled"}), 200)
	var bodies []string
	for _, email := range []string{"nobody@speccore.example", "bob@speccore.example", "boss@other.example"} {
		r := env.Request("GET", "/v1/me", nil, "X-API-Token", tok, "X-User-Email", email)
		specCoreErr(t, "act as "+email, r, 403, "invalid_user")
		bodies = append(bodies, string(r.Body))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("invalid_user answers differ: %q", bodies)
	}
	// The user header with any other credential is 400 invalid_request.
	specCoreErr(t, "X-User-Email with a bearer token", env.As(ann, "GET", "/v1/me", nil, "X-User-Email", "ann@speccore.example"), 400, "invalid_request")
	specCoreErr(t, "X-User-Email alone", env.Request("GET", "/v1/me", nil, "X-User-Email", "ann@speccore.example"), 400, "invalid_request")

	// Off: existing tokens refused (401) until it is on again.
	r = env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false})
	if r.Status != 200 && r.Status != 204 {
		t.Fatalf("turn off: %d %s", r.Status, r.Body)
	}
	r = env.Request("GET", "/v1/me", nil, "X-API-Token", tok)
	specCoreErr(t, "token while off", r, 401, "invalid_token")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	specCoreErr(t, "create while off again", env.As(op, "POST", "/v1/api-tokens", map[string]string{"name": "y"}), 403, "extension_disabled")
	env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true})
	specCoreOK(t, "token on again", env.Request("GET", "/v1/me", nil, "X-API-Token", tok), 200)

	// Another account's admin cannot see or delete it.
	specCoreErr(t, "other account deletes", env.As(other, "DELETE", "/v1/api-tokens/"+at["id"].(string), nil), 404, "not_found")
	// DELETE: 204, permanent.
	specCoreOK(t, "delete", env.As(op, "DELETE", "/v1/api-tokens/"+at["id"].(string), nil), 204)
	specCoreErr(t, "token after delete", env.Request("GET", "/v1/me", nil, "X-API-Token", tok), 401, "invalid_token")
	specCoreErr(t, "delete again", env.As(op, "DELETE", "/v1/api-tokens/"+at["id"].(string), nil), 404, "not_found")
	env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false})
	env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true})
	specCoreErr(t, "deleted token after off/on", env.Request("GET", "/v1/me", nil, "X-API-Token", tok), 401, "invalid_token")
}

// TestSpecCoreHeaderNames: "header X-API-Token (name configurable)",
// "X-User-Email (name configurable)".
func TestSpecCoreHeaderNames(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.APITokenHeader, c.UserEmailHeader = "X-Key", "X-On-Behalf" })
	op := env.AdminToken()
	annID, _ := specCoreUser(t, env, op, "ann@speccore.example")
	tok := withAPIToken(t, env, op).Token
	specCoreOK(t, "configured token header", env.Request("GET", "/v1/me", nil, "X-Key", tok), 200)
	me := specCoreOK(t, "configured user header", env.Request("GET", "/v1/me", nil, "X-Key", tok, "X-On-Behalf", "ann@speccore.example"), 200)
	if u, _ := me["user"].(map[string]any); u == nil || u["id"] != annID {
		t.Errorf("acting as ann through the configured header: %v", me)
	}
	specCoreErr(t, "configured user header, unknown", env.Request("GET", "/v1/me", nil, "X-Key", tok, "X-On-Behalf", "nobody@x.example"), 403, "invalid_user")
	if r := env.Request("GET", "/v1/me", nil, "X-API-Token", tok); r.Status == 200 {
		t.Errorf("the default header name still authenticates after it was renamed")
	}
}

// ---------------------------------------------------------------------------
// §3.3 Developer client credentials

func TestSpecCoreDevelopers(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	devID, _ := specCoreUser(t, env, op, "dev@speccore.example")
	_, member := specCoreUser(t, env, op, "ann@speccore.example")
	_, other := env.CreateAccount(op, "Other", "boss@other.example", specCorePW)

	specCoreErr(t, "member grants", env.As(member, "PUT", "/v1/developers/"+devID, nil), 403, "forbidden")
	specCoreErr(t, "other account grants", env.As(other, "PUT", "/v1/developers/"+devID, nil), 404, "not_found")
	specCoreErr(t, "unknown user", env.As(op, "PUT", "/v1/developers/usr_nope", nil), 404, "not_found")
	dev := env.Login("dev@speccore.example", specCorePW)
	specCoreErr(t, "non-developer creates", env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "CI"}), 403, "forbidden")
	specCoreErr(t, "non-developer lists", env.As(member, "GET", "/v1/credentials", nil), 403, "forbidden")
	specCoreOK(t, "grant", env.As(op, "PUT", "/v1/developers/"+devID, nil), 204)
	u := specCoreOK(t, "user", env.As(op, "GET", "/v1/users/"+devID, nil), 200)
	if fmt.Sprint(u["roles"]) != "[developer]" {
		t.Errorf("roles after grant: %v", u["roles"])
	}

	c := specCoreOK(t, "create", env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "CI"}), 201)
	specCoreHas(t, "credential", c, "id:string", "name:string", "client_id:string", "client_secret:string", "created_at:string")
	id, cid, sec := c["id"].(string), c["client_id"].(string), c["client_secret"].(string)
	list := env.As(dev, "GET", "/v1/credentials", nil)
	items := specCoreList(t, "list", list)
	if len(items) != 1 || strings.Contains(string(list.Body), sec) || items[0]["client_id"] != cid {
		t.Errorf("list %s", list.Body)
	}
	specCoreLacks(t, "list item", items[0], "client_secret")

	// The grant: form on both paths, and HTTP Basic.
	for _, path := range []string{"/v1/oauth/token", "/oauth/token"} {
		r := specCoreForm(env, path, url.Values{"client_id": {cid}, "client_secret": {sec}, "grant_type": {"client_credentials"}})
		m := specCoreOK(t, "form "+path, r, 200)
		specCoreNoStore(t, "form "+path, r)
		specCoreHas(t, "token", m, "access_token:string", "token_type:string", "expires_in:number")
		specCoreLacks(t, "token", m, "refresh_token")
		if m["token_type"] != "bearer" || m["expires_in"] != 3599.0 {
			t.Errorf("%s: %v", path, m)
		}
	}
	r := specCoreForm(env, "/v1/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", specCoreBasic(cid, sec))
	m := specCoreOK(t, "basic", r, 200)
	tok := m["access_token"].(string)
	me := specCoreOK(t, "me", env.As(tok, "GET", "/v1/me", nil), 200)
	if u, _ := me["user"].(map[string]any); u == nil || u["id"] != devID || me["auth_method"] != "client_credentials" {
		t.Errorf("the token does not act as the developer: %v", me)
	}
	specCoreErr(t, "dev (through credential) on an admin route", env.As(tok, "GET", "/v1/settings", nil), 403, "forbidden")

	// Removing the role: the credentials keep working, and the answer says how many.
	specCoreErr(t, "member removes", env.As(member, "DELETE", "/v1/developers/"+devID, nil), 403, "forbidden")
	d := specCoreOK(t, "remove role", env.As(op, "DELETE", "/v1/developers/"+devID, nil), 200)
	if d["active_credentials"] != 1.0 {
		t.Errorf("remove role: %v", d)
	}
	specCoreOK(t, "token after role removal", env.As(tok, "GET", "/v1/me", nil), 200)
	specCoreOK(t, "grant after role removal", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", specCoreBasic(cid, sec)), 200)
	specCoreErr(t, "ex-developer creates", env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "CI2"}), 403, "forbidden")

	// ?revoke_credentials=true removes them too.
	specCoreOK(t, "grant again", env.As(op, "PUT", "/v1/developers/"+devID, nil), 204)
	d = specCoreOK(t, "remove with revoke", env.As(op, "DELETE", "/v1/developers/"+devID+"?revoke_credentials=true", nil), 200)
	specCoreHas(t, "remove with revoke", d, "active_credentials:number")
	specCoreErr(t, "token after revoke_credentials", env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	specCoreErr(t, "grant after revoke_credentials", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {cid}, "client_secret": {sec}}), 401, "invalid_client")

	// DELETE /v1/credentials/{id} → 204, its tokens stop.
	specCoreOK(t, "grant again", env.As(op, "PUT", "/v1/developers/"+devID, nil), 204)
	c = specCoreOK(t, "create 2", env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "CI"}), 201)
	tok = accessToken(t, specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)}, "client_secret": {c["client_secret"].(string)}}))
	specCoreErr(t, "other developer deletes", env.As(other, "DELETE", "/v1/credentials/"+c["id"].(string), nil), 404, "not_found")
	specCoreOK(t, "delete", env.As(dev, "DELETE", "/v1/credentials/"+c["id"].(string), nil), 204)
	specCoreErr(t, "token after delete", env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	specCoreErr(t, "delete again", env.As(dev, "DELETE", "/v1/credentials/"+c["id"].(string), nil), 404, "not_found")
	_ = id
}

// ---------------------------------------------------------------------------
// §3.4 Password grant

func TestSpecCorePasswordGrant(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID, _ := specCoreUser(t, env, op, "ann@speccore.example")
	bobID, _ := specCoreUser(t, env, op, "bob@speccore.example")
	specCoreUser(t, env, op, "cat@speccore.example")

	check := func(what string, r *servertest.Response) string {
		t.Helper()
		m := specCoreOK(t, what, r, 200)
		specCoreHas(t, what, m, "token_type:string", "access_token:string", "expires_in:number")
		if m["token_type"] != "bearer" || m["expires_in"] != 3600.0 {
			t.Errorf("%s: %v", what, m)
		}
		specCoreLacks(t, what, m, "refresh_token")
		return m["access_token"].(string)
	}
	creds := url.Values{"username": {"ann@speccore.example"}, "password": {specCorePW}}
	toks := []string{
		check("form", specCoreForm(env, "/authorization", creds)),
		check("JSON", env.Request("POST", "/authorization", map[string]string{"username": "ann@speccore.example", "password": specCorePW})),
		check("query", env.Request("POST", "/authorization?"+creds.Encode(), nil)),
		check("grant_type=password on /oauth/token", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"ann@speccore.example"}, "password": {specCorePW}})),
		check("grant_type=password on /v1/oauth/token", specCoreForm(env, "/v1/oauth/token", url.Values{"grant_type": {"password"}, "username": {"ann@speccore.example"}, "password": {specCorePW}})),
	}
	for _, tok := range toks {
		me := specCoreOK(t, "me", env.As(tok, "GET", "/v1/me", nil), 200)
		if u, _ := me["user"].(map[string]any); u == nil || u["id"] != annID {
			t.Errorf("token acts as %v", me["user"])
		}
		specCoreErr(t, "member token on an admin route", env.As(tok, "GET", "/v1/settings", nil), 403, "forbidden")
	}

	// Wrong password, unknown user, disabled user: one answer, byte for byte.
	specCoreOK(t, "disable bob", env.As(op, "PATCH", "/v1/users/"+bobID, map[string]string{"status": "disabled"}), 200)
	var bodies []string
	for _, c := range [][2]string{{"ann@speccore.example", "wrong password 1"}, {"nobody@speccore.example", specCorePW}, {"bob@speccore.example", specCorePW}} {
		for _, path := range []string{"/authorization", "/oauth/token"} {
			v := url.Values{"username": {c[0]}, "password": {c[1]}}
			if path == "/oauth/token" {
				v.Set("grant_type", "password")
			}
			r := specCoreForm(env, path, v)
			specCoreErr(t, path+" "+c[0], r, 400, "invalid_grant")
			specCoreNoStore(t, path+" "+c[0], r)
			bodies = append(bodies, string(r.Body))
		}
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("invalid_grant answers differ: %q vs %q", b, bodies[0])
		}
	}

	// Repeated failures for one username → 429 with Retry-After.
	var last *servertest.Response
	for i := 0; i < 10; i++ {
		last = specCoreForm(env, "/authorization", url.Values{"username": {"cat@speccore.example"}, "password": {"wrong password 2"}})
		if last.Status == 429 {
			break
		}
	}
	specCoreErr(t, "throttled", last, 429, "too_many_attempts")
	if s, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("Retry-After %q", last.Header.Get("Retry-After"))
	}
	// Throttled even with the right password.
	specCoreErr(t, "throttled, right password", specCoreForm(env, "/authorization", url.Values{"username": {"cat@speccore.example"}, "password": {specCorePW}}), 429, "too_many_attempts")

	// A new password ends every password-derived token and not the new sign-in.
	ann := env.Login("ann@speccore.example", specCorePW)
	specCoreOK(t, "new password", env.As(op, "PATCH", "/v1/users/"+annID, map[string]string{"password": "another speccore pw 9"}), 200)
	for i, tok := range append(toks, ann) {
		specCoreErr(t, fmt.Sprintf("old token %d after a new password", i), env.As(tok, "GET", "/v1/me", nil), 401, "invalid_token")
	}
	specCoreErr(t, "old password", specCoreForm(env, "/authorization", url.Values{"username": {"ann@speccore.example"}, "password": {specCorePW}}), 400, "invalid_grant")
	specCoreOK(t, "new password signs in", specCoreForm(env, "/authorization", url.Values{"username": {"ann@speccore.example"}, "password": {"another speccore pw 9"}}), 200)

	// An admin can turn the grant off for the account.
	specCoreOK(t, "grant off", env.As(op, "PUT", "/v1/settings", map[string]any{"password_grant_enabled": false}), 200)
	r := specCoreForm(env, "/authorization", url.Values{"username": {"ann@speccore.example"}, "password": {"another speccore pw 9"}})
	if r.Status == 200 {
		t.Errorf("password grant turned off still issues a token")
	}
	specCoreErr(t, "grant off, right password (docs/api.md: unauthorized_client)", r, 400, "unauthorized_client")
	specCoreErr(t, "grant off, wrong password", specCoreForm(env, "/authorization", url.Values{"username": {"ann@speccore.example"}, "password": {"wrong password 3"}}), 400, "invalid_grant")
	specCoreOK(t, "grant on", env.As(op, "PUT", "/v1/settings", map[string]any{"password_grant_enabled": true}), 200)
	specCoreOK(t, "on again", specCoreForm(env, "/authorization", url.Values{"username": {"ann@speccore.example"}, "password": {"another speccore pw 9"}}), 200)
}

// ---------------------------------------------------------------------------
// §4 Using a token

func TestSpecCoreUsingAToken(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()

	// Missing credentials.
	r := env.Request("GET", "/v1/me", nil)
	specCoreErr(t, "no credentials", r, 401, "unauthorized")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="gatehouse"` {
		t.Errorf("no credentials: WWW-Authenticate %q", got)
	}
	// Invalid.
	for name, h := range map[string][]string{
		"garbage bearer":    {"Authorization", "Bearer not-a-token"},
		"unknown bearer":    {"Authorization", "Bearer " + token.New(token.AccessToken)},
		"garbage API token": {"X-API-Token", "nope"},
		"unknown API token": {"X-API-Token", token.New(token.APIToken)},
	} {
		r := env.Request("GET", "/v1/me", nil, h...)
		specCoreErr(t, name, r, 401, "invalid_token")
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
			t.Errorf("%s: WWW-Authenticate %q", name, got)
		}
	}

	// /v1/me for a password-grant token.
	annID, ann := specCoreUser(t, env, op, "ann@speccore.example")
	me := specCoreOK(t, "me", env.As(ann, "GET", "/v1/me", nil), 200)
	specCoreHas(t, "me", me, "user:object", "account:object", "roles:array", "auth_method:string")
	if me["auth_method"] != "password" || me["user"].(map[string]any)["id"] != annID {
		t.Errorf("me %v", me)
	}

	// Revoked: through RFC 7009 by the token itself.
	specCoreOK(t, "revoke itself", env.As(ann, "POST", "/oauth/revoke", url.Values{"token": {ann}}.Encode(), "Content-Type", "application/x-www-form-urlencoded"), 200)
	r = env.As(ann, "GET", "/v1/me", nil)
	specCoreErr(t, "revoked", r, 401, "invalid_token")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Errorf("revoked: WWW-Authenticate %q", got)
	}
	// A disabled user: their next request is 401.
	ann = env.Login("ann@speccore.example", specCorePW)
	specCoreOK(t, "disable", env.As(op, "PATCH", "/v1/users/"+annID, map[string]string{"status": "disabled"}), 200)
	specCoreErr(t, "disabled user's token", env.As(ann, "GET", "/v1/me", nil), 401, "invalid_token")
	specCoreOK(t, "re-enable", env.As(op, "PATCH", "/v1/users/"+annID, map[string]string{"status": "active"}), 200)
	specCoreErr(t, "re-enabling brings no token back", env.As(ann, "GET", "/v1/me", nil), 401, "invalid_token")

	// Expired: a credential that expires in a few seconds, and its token.
	devID, _ := specCoreUser(t, env, op, "dev@speccore.example", "developer")
	_ = devID
	dev := env.Login("dev@speccore.example", specCorePW)
	// Five to six seconds: made, granted and used before it on a loaded
	// machine under -race.
	exp := time.Now().Add(6 * time.Second).UTC().Truncate(time.Second)
	c := specCoreOK(t, "short credential", env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "short", "expires_at": exp.Format(time.RFC3339)}), 201)
	tr := specCoreOK(t, "its token", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)}, "client_secret": {c["client_secret"].(string)}}), 200)
	if e := tr["expires_in"].(float64); e > 6 || e < 0 {
		t.Errorf("expires_in %v for a credential expiring in ≤6 s", e)
	}
	tok := tr["access_token"].(string)
	specCoreOK(t, "before expiry", env.As(tok, "GET", "/v1/me", nil), 200)
	if time.Now().After(exp) {
		t.Fatal("the set-up overran the credential's expiry: make it later")
	}
	time.Sleep(time.Until(exp) + 1100*time.Millisecond)
	r = env.As(tok, "GET", "/v1/me", nil)
	specCoreErr(t, "expired", r, 401, "invalid_token")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Errorf("expired: WWW-Authenticate %q", got)
	}
	specCoreErr(t, "expired credential's grant", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)}, "client_secret": {c["client_secret"].(string)}}), 401, "invalid_client")

	// Users: POST 201, PATCH name/roles/status/password.
	ann = env.Login("ann@speccore.example", specCorePW)
	specCoreErr(t, "member creates a user", env.As(ann, "POST", "/v1/users", map[string]any{"email": "x@speccore.example", "name": "x", "password": specCorePW, "roles": []string{}}), 403, "forbidden")
	u := specCoreOK(t, "create user", env.As(op, "POST", "/v1/users", map[string]any{"email": "cy@speccore.example", "name": "Cy", "password": specCorePW, "roles": []string{"developer"}}), 201)
	specCoreHas(t, "user", u, "id:string", "email:string", "name:string", "status:string", "roles:array")
	cyID := u["id"].(string)
	u = specCoreOK(t, "patch", env.As(op, "PATCH", "/v1/users/"+cyID, map[string]any{"name": "Cyrus", "roles": []string{"admin", "developer"}}), 200)
	if u["name"] != "Cyrus" || len(u["roles"].([]any)) != 2 {
		t.Errorf("patched %v", u)
	}
	specCoreErr(t, "bad role", env.As(op, "PATCH", "/v1/users/"+cyID, map[string]any{"roles": []string{"root"}}), 400, "invalid_request")
	specCoreErr(t, "bad status", env.As(op, "PATCH", "/v1/users/"+cyID, map[string]any{"status": "gone"}), 400, "invalid_request")
	specCoreErr(t, "member patches", env.As(ann, "PATCH", "/v1/users/"+cyID, map[string]any{"name": "x"}), 403, "forbidden")
	users := specCoreList(t, "member lists users", env.As(ann, "GET", "/v1/users", nil))
	if len(users) != 4 {
		t.Errorf("member lists %d users, want 4", len(users))
	}

	// Settings: the exact defaults; PUT a subset; all-or-nothing validation.
	s := specCoreOK(t, "settings", env.As(op, "GET", "/v1/settings", nil), 200)
	want := map[string]any{
		"rate_limit":             map[string]any{"daily": 50000.0, "burst": 100.0, "burst_window_seconds": 20.0},
		"token_lifetimes":        map[string]any{"password_seconds": 3600.0, "client_credentials_seconds": 3599.0},
		"password_grant_enabled": true,
	}
	for k, v := range want {
		if fmt.Sprint(s[k]) != fmt.Sprint(v) {
			t.Errorf("settings %s = %v, want %v", k, s[k], v)
		}
	}
	specCoreErr(t, "member reads settings", env.As(ann, "GET", "/v1/settings", nil), 403, "forbidden")
	s = specCoreOK(t, "PUT subset", env.As(op, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 150}}), 200)
	if fmt.Sprint(s["rate_limit"]) != fmt.Sprint(map[string]any{"daily": 50000.0, "burst": 150.0, "burst_window_seconds": 20.0}) {
		t.Errorf("PUT subset: %v", s["rate_limit"])
	}
	for i, bad := range []map[string]any{
		{"rate_limit": map[string]int{"burst": 10}, "token_lifetimes": map[string]int{"password_seconds": 0}},
		{"rate_limit": map[string]int{"burst": 10, "daily": 0}},
		{"rate_limit": map[string]int{"burst": -1}},
		{"rate_limit": map[string]int{"burst": 10, "burst_window_seconds": 3601}},
		{"rate_limit": map[string]any{"burst": 10, "daily": 1e12}},
		{"rate_limit": map[string]int{"burst": 10}, "token_lifetimes": map[string]int{"client_credentials_seconds": 86401}},
		{"rate_limit": map[string]int{"burst": 10}, "password_grant_enabled": "no"},
		{"rate_limit": map[string]int{"burst": 10}, "nonsense": 1},
	} {
		specCoreErr(t, fmt.Sprintf("bad settings %d %v", i, bad), env.As(op, "PUT", "/v1/settings", bad), 400, "invalid_request")
	}
	s = specCoreOK(t, "settings after refused PUTs", env.As(op, "GET", "/v1/settings", nil), 200)
	if s["rate_limit"].(map[string]any)["burst"] != 150.0 || s["token_lifetimes"].(map[string]any)["password_seconds"] != 3600.0 {
		t.Errorf("a refused PUT changed something: %v", s)
	}
	s = specCoreOK(t, "PUT lifetimes", env.As(op, "PUT", "/v1/settings", map[string]any{"token_lifetimes": map[string]int{"password_seconds": 120}}), 200)
	if m := specCoreOK(t, "login after", specCoreForm(env, "/authorization", url.Values{"username": {"ann@speccore.example"}, "password": {specCorePW}}), 200); m["expires_in"] != 120.0 {
		t.Errorf("expires_in after password_seconds=120: %v", m["expires_in"])
	}

	// Lists: {"data","next_cursor"}; cursor absent on the last page.
	for i := 0; i < 3; i++ {
		specCoreOK(t, "workspace", env.As(op, "POST", "/v1/workspaces", map[string]string{"name": fmt.Sprint("w", i), "description": ""}), 201)
	}
	p1 := specCoreOK(t, "page 1", env.As(op, "GET", "/v1/workspaces?limit=2", nil), 200)
	cur, _ := p1["next_cursor"].(string)
	if len(p1["data"].([]any)) != 2 || cur == "" {
		t.Fatalf("page 1 %v", p1)
	}
	p2 := specCoreOK(t, "page 2", env.As(op, "GET", "/v1/workspaces?limit=2&cursor="+url.QueryEscape(cur), nil), 200)
	if len(p2["data"].([]any)) != 1 {
		t.Errorf("page 2 %v", p2)
	}
	if _, ok := p2["next_cursor"]; ok {
		t.Errorf("last page carries next_cursor: %v", p2)
	}
	specCoreOK(t, "limit 200", env.As(op, "GET", "/v1/workspaces?limit=200", nil), 200)
	specCoreErr(t, "limit 201", env.As(op, "GET", "/v1/workspaces?limit=201", nil), 400, "invalid_request")
	specCoreErr(t, "bad cursor", env.As(op, "GET", "/v1/workspaces?cursor=zzz", nil), 400, "invalid_request")
	for _, p := range []string{"/v1/users", "/v1/workspaces", "/v1/metadata/workspace", "/v1/audit", "/v1/api-tokens", "/v1/accounts"} {
		if p == "/v1/api-tokens" {
			env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true})
		}
		m := specCoreOK(t, "list "+p, env.As(op, "GET", p+"?limit=1", nil), 200)
		if _, ok := m["data"].([]any); !ok {
			t.Errorf("%s: no data: %v", p, m)
		}
	}

	// payload_too_large.
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `","description":""}`
	specCoreErr(t, "over 1 MiB", env.As(op, "POST", "/v1/workspaces", big, "Content-Type", "application/json"), 413, "payload_too_large")
}

// ---------------------------------------------------------------------------
// §5 Rate limits

func specCoreRLHeaders(t *testing.T, what string, r *servertest.Response, burst, daily int) {
	t.Helper()
	if got := r.Header.Get("X-RateLimit-Burst-Remaining"); got != strconv.Itoa(burst) {
		t.Errorf("%s: X-RateLimit-Burst-Remaining %q, want %d", what, got, burst)
	}
	if got := r.Header.Get("X-RateLimit-Daily-Remaining"); got != strconv.Itoa(daily) {
		t.Errorf("%s: X-RateLimit-Daily-Remaining %q, want %d", what, got, daily)
	}
}

var specCoreRateLimit = regexp.MustCompile(`^"(burst|daily)";r=(\d+);t=(\d+)$`)

func TestSpecCoreRateLimits(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	var toks []string
	for i := 0; i < 5; i++ {
		_, tok := specCoreUser(t, env, op, fmt.Sprintf("m%d@speccore.example", i), "developer")
		toks = append(toks, tok)
	}
	apiTok := withAPIToken(t, env, op).Token

	// Default headers for a fresh principal.
	r := env.As(toks[0], "GET", "/v1/me", nil)
	specCoreRLHeaders(t, "default", r, 99, 49999)
	if got := r.Header.Get("RateLimit-Policy"); got != `"burst";q=100;w=20, "daily";q=50000;w=86400` {
		t.Errorf("RateLimit-Policy %q", got)
	}
	if m := specCoreRateLimit.FindStringSubmatch(r.Header.Get("RateLimit")); m == nil || m[1] != "burst" || m[2] != "99" {
		t.Errorf("RateLimit %q", r.Header.Get("RateLimit"))
	} else if n, _ := strconv.Atoi(m[3]); n < 1 || n > 20 {
		t.Errorf("RateLimit t=%d", n)
	}

	specCoreOK(t, "burst 10", env.As(op, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 10}}), 200)
	// Sequential: exact remaining counts after each request.
	for i := 1; i < 10; i++ {
		r := env.As(toks[0], "GET", "/v1/me", nil)
		specCoreOK(t, "within limit", r, 200)
		specCoreRLHeaders(t, fmt.Sprint("request ", i+1), r, 10-(i+1), 50000-(i+1))
		if got := r.Header.Get("RateLimit-Policy"); got != `"burst";q=10;w=20, "daily";q=50000;w=86400` {
			t.Errorf("RateLimit-Policy %q", got)
		}
	}
	r = env.As(toks[0], "GET", "/v1/me", nil)
	if r.Status != 422 || strings.TrimSpace(string(r.Body)) != `{"error":"rate_limit_exceeded","error_description":"Rate limit exceeded"}` {
		t.Errorf("over the limit: %d %s", r.Status, r.Body)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 20 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	specCoreRLHeaders(t, "refused", r, 0, 49990)
	if m := specCoreRateLimit.FindStringSubmatch(r.Header.Get("RateLimit")); m == nil || m[1] != "burst" || m[2] != "0" || m[3] != r.Header.Get("Retry-After") {
		t.Errorf("refused: RateLimit %q, Retry-After %q", r.Header.Get("RateLimit"), r.Header.Get("Retry-After"))
	}
	r = env.As(toks[0], "GET", "/v1/me", nil)
	specCoreRLHeaders(t, "refused again (refusals not counted)", r, 0, 49990)

	volley := func(n int, headers ...string) (ok, limited int) {
		reqs := make([]*http.Request, n)
		for i := range reqs {
			h := headers
			if len(h) == 0 {
				h = []string{"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i)}
			}
			reqs[i] = specCoreReq(t, "GET", env.URL+"/v1/me", "", h...)
		}
		for _, r := range specCoreVolley(t, env.URL, reqs) {
			switch r.Status {
			case 200:
				ok++
			case 422:
				limited++
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("422 without Retry-After")
				}
			default:
				t.Errorf("volley answer %d %s", r.Status, r.Body)
			}
		}
		return
	}
	// Concurrent, with a forged X-Forwarded-For on every request.
	if ok, limited := volley(40, "Authorization", "Bearer "+toks[1]); ok != 10 || limited != 30 {
		t.Errorf("40 concurrent requests with burst 10: %d admitted, %d refused", ok, limited)
	}
	reqs := make([]*http.Request, 30)
	for i := range reqs {
		reqs[i] = specCoreReq(t, "GET", env.URL+"/v1/me", "", "Authorization", "Bearer "+toks[2], "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
	}
	admitted := 0
	for _, r := range specCoreVolley(t, env.URL, reqs) {
		if r.Status == 200 {
			admitted++
		}
	}
	if admitted != 10 {
		t.Errorf("forged X-Forwarded-For: %d admitted, want 10", admitted)
	}

	// An API token acting as a user counts against the user and the token.
	for i := 0; i < 4; i++ {
		specCoreOK(t, "m3 own", env.As(toks[3], "GET", "/v1/me", nil), 200)
	}
	if ok, _ := volley(12, "X-API-Token", apiTok, "X-User-Email", "m3@speccore.example"); ok != 6 {
		t.Errorf("API token acting as m3 (4 of 10 used): %d admitted, want 6", ok)
	}
	if ok, _ := volley(12, "X-API-Token", apiTok); ok != 4 {
		t.Errorf("the API token anonymously (6 of 10 used acting as m3): %d admitted, want 4", ok)
	}

	// Several credential kinds of one user: one budget.
	c := specCoreOK(t, "m4 credential", env.As(toks[4], "POST", "/v1/credentials", map[string]string{"name": "CI"}), 201) // 1
	cc := accessToken(t, specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)}, "client_secret": {c["client_secret"].(string)}}))
	pw2 := env.Login("m4@speccore.example", specCorePW)
	reqs = nil
	for i := 0; i < 10; i++ {
		for _, tok := range []string{toks[4], cc, pw2} {
			reqs = append(reqs, specCoreReq(t, "GET", env.URL+"/v1/me", "", "Authorization", "Bearer "+tok))
		}
	}
	admitted = 0
	for _, r := range specCoreVolley(t, env.URL, reqs) {
		if r.Status == 200 {
			admitted++
		}
	}
	if admitted != 9 {
		t.Errorf("one user through three tokens of two kinds (1 of 10 used): %d admitted, want 9", admitted)
	}
}

// TestSpecCoreRateLimitStatus: "(status configurable, e.g. 429)".
func TestSpecCoreRateLimitStatus(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.RateLimitStatus = 429 })
	op := env.AdminToken()
	specCoreOK(t, "burst 1", env.As(op, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 1}}), 200)
	r := env.As(op, "GET", "/v1/me", nil)
	specCoreErr(t, "over the limit", r, 429, "rate_limit_exceeded")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("no Retry-After")
	}
}

// ---------------------------------------------------------------------------
// §6 Standards around the token endpoint

// specCoreDescChars is RFC 6749 §5.2's error_description alphabet.
var specCoreDescChars = regexp.MustCompile(`^[\x20-\x21\x23-\x5B\x5D-\x7E]*$`)

func TestSpecCoreTokenEndpoint(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	devID, _ := specCoreUser(t, env, op, "dev@speccore.example", "developer")
	_ = devID
	dev := env.Login("dev@speccore.example", specCorePW)
	c := specCoreOK(t, "credential", env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "CI"}), 201)
	cid, sec := c["client_id"].(string), c["client_secret"].(string)
	_, member := specCoreUser(t, env, op, "ann@speccore.example")

	for _, path := range []string{"/oauth/token", "/v1/oauth/token"} {
		type tc struct {
			name    string
			method  string
			body    string
			headers []string
			status  int
			code    string
		}
		form := "application/x-www-form-urlencoded"
		cases := []tc{
			{"GET", "GET", "", nil, 405, "method_not_allowed"},
			{"no grant_type", "POST", "client_id=" + cid, nil, 400, "invalid_request"},
			{"unknown grant_type", "POST", "grant_type=magic", nil, 400, "unsupported_grant_type"},
			{"grant_type twice", "POST", "grant_type=client_credentials&grant_type=client_credentials&client_id=" + cid + "&client_secret=" + sec, nil, 400, "invalid_request"},
			{"client_id twice", "POST", "grant_type=client_credentials&client_id=" + cid + "&client_id=" + cid + "&client_secret=" + sec, nil, 400, "invalid_request"},
			// A body client_id equal to Basic's is not a second authentication
			// (oauth/request.go clientAuth); another one is.
			{"Basic and another body client_id", "POST", "grant_type=client_credentials&client_id=" + token.New(token.ClientID), []string{"Authorization", specCoreBasic(cid, sec)}, 400, "invalid_request"},
			{"Basic and body client_id and secret", "POST", "grant_type=client_credentials&client_id=" + cid + "&client_secret=" + sec, []string{"Authorization", specCoreBasic(cid, sec)}, 400, "invalid_request"},
			{"Basic and body client_secret", "POST", "grant_type=client_credentials&client_secret=" + sec, []string{"Authorization", specCoreBasic(cid, sec)}, 400, "invalid_request"},
			{"Basic, wrong secret", "POST", "grant_type=client_credentials", []string{"Authorization", specCoreBasic(cid, token.New(token.ClientSecret))}, 401, "invalid_client"},
			{"Basic, unknown client", "POST", "grant_type=client_credentials", []string{"Authorization", specCoreBasic(token.New(token.ClientID), sec)}, 401, "invalid_client"},
			{"body, wrong secret", "POST", "grant_type=client_credentials&client_id=" + cid + "&client_secret=" + token.New(token.ClientSecret), nil, 401, "invalid_client"},
			{"no client authentication", "POST", "grant_type=client_credentials", nil, 401, "invalid_client"},
			{"password grant, no username", "POST", "grant_type=password&password=x", nil, 400, "invalid_request"},
			{"password grant, wrong password", "POST", "grant_type=password&username=ann%40speccore.example&password=nope+nope+nope", nil, 400, "invalid_grant"},
			{"refresh, unknown", "POST", "grant_type=refresh_token&client_id=" + cid + "&refresh_token=" + token.New(token.RefreshToken), nil, 400, "invalid_grant"},
			{"refresh, garbage", "POST", "grant_type=refresh_token&client_id=" + cid + "&refresh_token=garbage", nil, 400, "invalid_grant"},
			{"malformed form", "POST", "grant_type=%zz", nil, 400, "invalid_request"},
		}
		for _, c := range cases {
			h := append([]string{"Content-Type", form}, c.headers...)
			var body any
			if c.body != "" {
				body = c.body
			}
			r := env.Request(c.method, path, body, h...)
			what := path + " " + c.name
			m := specCoreErr(t, what, r, c.status, c.code)
			specCoreNoStore(t, what, r)
			if d, _ := m["error_description"].(string); !specCoreDescChars.MatchString(d) {
				t.Errorf("%s: error_description %q outside RFC 6749 §5.2's characters", what, d)
			}
			wa := r.Header.Get("WWW-Authenticate")
			basic := len(c.headers) > 0 && strings.HasPrefix(c.headers[1], "Basic")
			switch {
			case c.code == "invalid_client" && basic:
				if !strings.HasPrefix(wa, "Basic") {
					t.Errorf("%s: WWW-Authenticate %q, want Basic", what, wa)
				}
			case strings.HasPrefix(wa, "Basic"):
				t.Errorf("%s: WWW-Authenticate %q without Basic client auth", what, wa)
			}
			if c.status == 405 && r.Header.Get("Allow") == "" {
				t.Errorf("%s: 405 without Allow", what)
			}
		}
		// A success is no-store too.
		r := specCoreForm(env, path, url.Values{"grant_type": {"client_credentials"}}, "Authorization", specCoreBasic(cid, sec))
		specCoreOK(t, path+" success", r, 200)
		specCoreNoStore(t, path+" success", r)
	}
	// /authorization is the password grant's token endpoint too.
	r := specCoreForm(env, "/authorization", url.Values{"username": {"ann@speccore.example"}, "password": {specCorePW}})
	specCoreOK(t, "/authorization", r, 200)
	specCoreNoStore(t, "/authorization success", r)
	specCoreErr(t, "/authorization, username twice", specCoreForm(env, "/authorization", url.Values{"username": {"ann@speccore.example", "ann@speccore.example"}, "password": {specCorePW}}), 400, "invalid_request")
	specCoreErr(t, "/authorization, body and query", env.Request("POST", "/authorization?username=ann%40speccore.example", "username=ann%40speccore.example&password="+url.QueryEscape(specCorePW), "Content-Type", "application/x-www-form-urlencoded"), 400, "invalid_request")

	// RFC 7009 revocation.
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	for name, tok := range map[string]string{"unknown access token": token.New(token.AccessToken), "garbage": "garbage", "unknown refresh token": token.New(token.RefreshToken)} {
		r := env.Request("POST", "/oauth/revoke", url.Values{"token": {tok}}.Encode(), form...)
		if r.Status != 200 {
			t.Errorf("revoke %s: %d %s", name, r.Status, r.Body)
		}
	}
	specCoreErr(t, "revoke, no token", env.Request("POST", "/oauth/revoke", "", form...), 400, "invalid_request")
	specCoreErr(t, "revoke GET", env.Request("GET", "/oauth/revoke", nil), 405, "method_not_allowed")
	victim := env.Login("ann@speccore.example", specCorePW)
	specCoreOK(t, "admin revokes ann's token", env.As(op, "POST", "/oauth/revoke", url.Values{"token": {victim}}.Encode(), form...), 200)
	specCoreErr(t, "ann's token after admin revocation", env.As(victim, "GET", "/v1/me", nil), 401, "invalid_token")
	victim = env.Login("ann@speccore.example", specCorePW)
	specCoreOK(t, "owner's other token revokes", env.As(member, "POST", "/oauth/revoke", url.Values{"token": {victim}}.Encode(), form...), 200)
	specCoreErr(t, "after owner revocation", env.As(victim, "GET", "/v1/me", nil), 401, "invalid_token")
	specCoreErr(t, "revoke with a bad bearer", env.As("garbage", "POST", "/oauth/revoke", url.Values{"token": {token.New(token.AccessToken)}}.Encode(), form...), 401, "invalid_token")
	specCoreErr(t, "revoke with a wrong client secret", env.Request("POST", "/oauth/revoke", url.Values{"token": {token.New(token.AccessToken)}}.Encode(), append(form, "Authorization", specCoreBasic(cid, token.New(token.ClientSecret)))...), 401, "invalid_client")

	// RFC 7662 introspection.
	target := env.Login("ann@speccore.example", specCorePW)
	r = env.Request("POST", "/oauth/introspect", url.Values{"token": {target}}.Encode(), append(form, "Authorization", specCoreBasic(cid, sec))...)
	in := specCoreOK(t, "introspect as a developer credential", r, 200)
	specCoreHas(t, "introspection", in, "active:bool", "token_type:string", "exp:number", "scope:string", "username:string")
	if in["active"] != true || in["token_type"] != "bearer" || in["username"] != "ann@speccore.example" {
		t.Errorf("introspection %v", in)
	}
	in = specCoreOK(t, "introspect as admin", env.As(op, "POST", "/oauth/introspect", url.Values{"token": {target}}.Encode(), form...), 200)
	if in["active"] != true {
		t.Errorf("admin introspection %v", in)
	}
	specCoreErr(t, "introspect as a member", env.As(member, "POST", "/oauth/introspect", url.Values{"token": {target}}.Encode(), form...), 403, "forbidden")
	specCoreErr(t, "introspect unauthenticated", env.Request("POST", "/oauth/introspect", url.Values{"token": {target}}.Encode(), form...), 401, "invalid_client")
	r = env.As(op, "POST", "/oauth/introspect", url.Values{"token": {token.New(token.AccessToken)}}.Encode(), form...)
	if specCoreOK(t, "introspect unknown", r, 200); strings.TrimSpace(string(r.Body)) != `{"active":false}` {
		t.Errorf("unknown token introspection %s", r.Body)
	}

	// RFC 8414 metadata.
	md := specCoreOK(t, "metadata", env.Request("GET", "/.well-known/oauth-authorization-server", nil), 200)
	specCoreHas(t, "metadata", md, "issuer:string", "token_endpoint:string", "revocation_endpoint:string", "introspection_endpoint:string", "grant_types_supported:array", "token_endpoint_auth_methods_supported:array")
	for _, g := range []string{"password", "refresh_token", "client_credentials"} {
		if !strings.Contains(fmt.Sprint(md["grant_types_supported"]), g) {
			t.Errorf("grant_types_supported %v lacks %s", md["grant_types_supported"], g)
		}
	}
	for _, k := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
		if !strings.HasPrefix(md[k].(string), md["issuer"].(string)) {
			t.Errorf("%s %v not under issuer %v", k, md[k], md["issuer"])
		}
	}
	if md["token_endpoint"] != env.URL+"/oauth/token" {
		t.Errorf("token_endpoint %v, want %s/oauth/token", md["token_endpoint"], env.URL)
	}
}

// TestSpecCoreXOAuth2: "golang.org/x/oauth2 (clientcredentials,
// PasswordCredentialsToken, refresh via TokenSource) works against it
// unchanged".
func TestSpecCoreXOAuth2(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	specCoreUser(t, env, op, "dev@speccore.example", "developer")
	dev := env.Login("dev@speccore.example", specCorePW)
	c := specCoreOK(t, "credential", env.As(dev, "POST", "/v1/credentials", map[string]string{"name": "CI"}), 201)
	ctx := context.Background()
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		for _, p := range []string{"/oauth/token", "/v1/oauth/token"} {
			cc := clientcredentials.Config{ClientID: c["client_id"].(string), ClientSecret: c["client_secret"].(string), TokenURL: env.URL + p, AuthStyle: style}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Errorf("clientcredentials %v %s: %v", style, p, err)
				continue
			}
			if tok.TokenType != "bearer" || tok.RefreshToken != "" || time.Until(tok.Expiry) > 3600*time.Second {
				t.Errorf("clientcredentials token %+v", tok)
			}
			specCoreOK(t, "cc token", env.As(tok.AccessToken, "GET", "/v1/me", nil), 200)
			cfg := oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: env.URL + p, AuthStyle: style}}
			pt, err := cfg.PasswordCredentialsToken(ctx, "dev@speccore.example", specCorePW)
			if err != nil {
				t.Errorf("PasswordCredentialsToken %v %s: %v", style, p, err)
				continue
			}
			specCoreOK(t, "password token", env.As(pt.AccessToken, "GET", "/v1/me", nil), 200)
		}
	}
	// Refresh through TokenSource.
	app := specCoreOK(t, "enable", env.As(op, "POST", "/v1/api-access", nil), 201)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		cfg := oauth2.Config{ClientID: app["client_id"].(string), Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/oauth/token", AuthStyle: style}}
		old := &oauth2.Token{AccessToken: app["access_token"].(string), RefreshToken: app["refresh_token"].(string), Expiry: time.Now().Add(-time.Minute)}
		nt, err := cfg.TokenSource(ctx, old).Token()
		if err != nil {
			t.Fatalf("TokenSource refresh %v: %v", style, err)
		}
		if nt.RefreshToken == "" || nt.RefreshToken == old.RefreshToken || nt.AccessToken == old.AccessToken {
			t.Errorf("refreshed %+v", nt)
		}
		specCoreOK(t, "refreshed token", env.As(nt.AccessToken, "GET", "/v1/me", nil), 200)
		app["access_token"], app["refresh_token"] = nt.AccessToken, nt.RefreshToken
	}
}

// ---------------------------------------------------------------------------
// §7 Putting it in front of an API

func TestSpecCoreForwardAuth(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID, ann := specCoreUser(t, env, op, "ann@speccore.example", "developer")
	apiTok := withAPIToken(t, env, op).Token
	acc := specCoreOK(t, "me", env.As(ann, "GET", "/v1/me", nil), 200)["account"].(map[string]any)["id"].(string)

	check := func(what string, r *servertest.Response, email, roles, method string) {
		t.Helper()
		specCoreOK(t, what, r, 200)
		for k, v := range map[string]string{
			"X-Gatehouse-User-Id": annID, "X-Gatehouse-Account-Id": acc, "X-Gatehouse-User-Email": email,
			"X-Gatehouse-Roles": roles, "X-Gatehouse-Auth-Method": method,
		} {
			if got := r.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", what, k, got, v)
			}
		}
		for _, k := range []string{"X-RateLimit-Burst-Remaining", "X-RateLimit-Daily-Remaining", "RateLimit-Policy", "RateLimit"} {
			if r.Header.Get(k) == "" {
				t.Errorf("%s: no %s", what, k)
			}
		}
	}
	check("bearer", env.As(ann, "GET", "/v1/auth/check", nil), "ann@speccore.example", "developer", "password")
	if r := env.As(ann, "GET", "/v1/auth/check", nil); r.Header.Get("X-Request-Id") == "" {
		t.Errorf("forward auth answer without X-Request-Id")
	}
	check("API token acting", env.Request("GET", "/v1/auth/check", nil, "X-API-Token", apiTok, "X-User-Email", "ann@speccore.example"), "ann@speccore.example", "developer", "api_token")
	r := env.Request("GET", "/v1/auth/check", nil)
	specCoreErr(t, "no credentials", r, 401, "unauthorized")
	if r.Header.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	r = env.As("garbage", "GET", "/v1/auth/check", nil)
	specCoreErr(t, "bad token", r, 401, "invalid_token")
	if r.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	specCoreErr(t, "invalid user", env.Request("GET", "/v1/auth/check", nil, "X-API-Token", apiTok, "X-User-Email", "nobody@x.example"), 403, "invalid_user")
	specCoreOK(t, "burst 3", env.As(op, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 3}}), 200)
	var last *servertest.Response
	for i := 0; i < 4; i++ {
		last = env.As(ann, "GET", "/v1/auth/check", nil)
	}
	specCoreErr(t, "forward auth over the limit", last, 422, "rate_limit_exceeded")
	if last.Header.Get("Retry-After") == "" {
		t.Errorf("forward auth 422 without Retry-After")
	}
}

func TestSpecCoreGateway(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Write([]byte(`{"upstream":true}`))
	}))
	t.Cleanup(up.Close)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL; c.ConsoleSameOrigin = true })
	op := env.AdminToken()
	annID, ann := specCoreUser(t, env, op, "ann@speccore.example")
	apiTok := withAPIToken(t, env, op).Token

	specCoreErr(t, "unauthenticated", env.Request("GET", "/things/1", nil), 401, "unauthorized")
	if len(seen) != 0 {
		t.Fatalf("an unauthenticated request reached the upstream")
	}
	forged := []string{"X-Gatehouse-User-Id", "usr_evil", "X-Gatehouse-Roles", "admin", "x-gatehouse-account-id", "acc_evil", "X-Gatehouse-Whatever", "1"}
	for name, h := range map[string][]string{
		"bearer":   append([]string{"Authorization", "Bearer " + ann}, forged...),
		"APItoken": append([]string{"X-API-Token", apiTok, "X-User-Email", "ann@speccore.example"}, forged...),
	} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		r := env.Request("GET", "/things/1?x=1", nil, h...)
		if r.Status != 200 || !strings.Contains(string(r.Body), "upstream") {
			t.Errorf("%s: proxied %d %s", name, r.Status, r.Body)
			continue
		}
		if r.Header.Get("X-RateLimit-Burst-Remaining") == "" {
			t.Errorf("%s: proxied answer without rate-limit headers", name)
		}
		if r.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: proxied answer without X-Request-Id (SPEC §9.2)", name)
		}
		mu.Lock()
		got := seen[len(seen)-1]
		mu.Unlock()
		for _, k := range []string{"Authorization", "X-Api-Token"} {
			if got.Get(k) != "" {
				t.Errorf("%s: credential header %s reached the upstream", name, k)
			}
		}
		if strings.Contains(fmt.Sprint(got), ann) || strings.Contains(fmt.Sprint(got), apiTok) {
			t.Errorf("%s: a credential reached the upstream: %v", name, got)
		}
		if got.Get("X-Gatehouse-User-Id") != annID || len(got.Values("X-Gatehouse-User-Id")) != 1 || got.Get("X-Gatehouse-User-Email") != "ann@speccore.example" ||
			got.Get("X-Gatehouse-Roles") != "" || got.Get("X-Gatehouse-Whatever") != "" || got.Get("X-Gatehouse-Account-Id") == "acc_evil" || got.Get("X-Gatehouse-Account-Id") == "" {
			t.Errorf("%s: upstream headers %v", name, got)
		}
	}
}

// ---------------------------------------------------------------------------
// §8 Running it, §9.2 request ids

func TestSpecCoreRunning(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	_, ann := specCoreUser(t, env, op, "ann@speccore.example")

	var answers []*servertest.Response
	keep := func(r *servertest.Response) *servertest.Response { answers = append(answers, r); return r }
	h := specCoreOK(t, "healthz", keep(env.Request("GET", "/healthz", nil)), 200)
	if h["status"] != "ok" {
		t.Errorf("healthz %v", h)
	}
	specCoreOK(t, "readyz", keep(env.Request("GET", "/readyz", nil)), 200)
	m := keep(env.Request("GET", "/metrics", nil))
	if m.Status != 200 || !strings.Contains(string(m.Body), "gatehouse_http_requests_total") {
		t.Errorf("metrics %d %.200s", m.Status, m.Body)
	}

	// Bad input: 4xx JSON, nothing stored.
	count := func() int {
		return len(specCoreList(t, "workspaces", env.As(op, "GET", "/v1/workspaces?limit=200", nil)))
	}
	before := count()
	for name, c := range map[string]struct {
		body   string
		status int
		code   string
	}{
		"over 1 MiB":      {`{"name":"` + strings.Repeat("x", 1<<20) + `","description":""}`, 413, "payload_too_large"},
		"malformed JSON":  {`{"name":"x",`, 400, "invalid_request"},
		"invalid UTF-8":   {"{\"name\":\"\xff\xfe\",\"description\":\"\"}", 400, "invalid_request"},
		"NUL escaped":     {`{"name":"a\u0000b","description":""}`, 400, "invalid_request"},
		"NUL raw":         {"{\"name\":\"a\x00b\",\"description\":\"\"}", 400, "invalid_request"},
		"unknown field":   {`{"name":"x","description":"","owner_id":"usr_x"}`, 400, "invalid_request"},
		"wrong type":      {`{"name":7,"description":""}`, 400, "invalid_request"},
		"trailing data":   {`{"name":"x","description":""} {}`, 400, "invalid_request"},
		"JSON null":       {`null`, 400, "invalid_request"},
		"duplicated keys": {`{"name":"x","name":"y","description":""}`, 400, "invalid_request"},
	} {
		specCoreErr(t, name, keep(env.As(ann, "POST", "/v1/workspaces", c.body, "Content-Type", "application/json")), c.status, c.code)
	}
	if after := count(); after != before {
		t.Errorf("bad input stored %d workspaces", after-before)
	}
	// Error bodies never echo secrets.
	secret := "s3cret-value-never-echoed"
	r := keep(env.As(op, "POST", "/v1/users", `{"email":"x@speccore.example","password":"`+secret+`","name":`, "Content-Type", "application/json"))
	if r.Status != 400 || strings.Contains(string(r.Body), secret) {
		t.Errorf("malformed user: %d %s", r.Status, r.Body)
	}
	r = keep(env.As(op, "POST", "/v1/users", map[string]any{"email": "x@speccore.example", "password": secret + "\x00", "name": "x", "roles": []string{}}))
	if r.Status != 400 || strings.Contains(string(r.Body), secret) {
		t.Errorf("NUL password: %d %s", r.Status, r.Body)
	}

	// Admin UI pages: framing, sniffing.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(env.URL + "/admin/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("/admin/login: %d %v", resp.StatusCode, resp.Header)
	}

	// Audit: who, what, when, from where; admins only.
	specCoreOK(t, "a change", keep(env.As(op, "PATCH", "/v1/users/"+specCoreOK(t, "me", env.As(ann, "GET", "/v1/me", nil), 200)["user"].(map[string]any)["id"].(string), map[string]string{"name": "Ann L"})), 200)
	entries := specCoreList(t, "audit", keep(env.As(op, "GET", "/v1/audit", nil)))
	if len(entries) == 0 {
		t.Fatal("empty audit log")
	}
	specCoreHas(t, "audit entry", entries[0], "actor:string", "action:string", "created_at:string", "remote_addr:string", "target_id:string")
	if !strings.HasPrefix(entries[0]["action"].(string), "user.") || entries[0]["actor"] != servertest.AdminEmail {
		t.Errorf("newest audit entry %v", entries[0])
	}
	specCoreErr(t, "member reads the audit log", keep(env.As(ann, "GET", "/v1/audit", nil)), 403, "forbidden")
	keep(env.Request("GET", "/v1/nope", nil))
	keep(env.Request("DELETE", "/oauth/token", nil))

	// §9.2: every response carries X-Request-Id.
	for _, r := range answers {
		if r.Header.Get("X-Request-Id") == "" {
			t.Errorf("an answer %d %.80s without X-Request-Id", r.Status, r.Body)
		}
	}
}

// ---------------------------------------------------------------------------
// §9 Since the first release

func TestSpecCoreLeastPrivilege(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	specCoreOK(t, "extension on", env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200)

	// API token with scopes.
	at := specCoreOK(t, "scoped API token", env.As(op, "POST", "/v1/api-tokens", map[string]any{"name": "ro", "scopes": []string{"workspaces:read"}}), 201)
	if fmt.Sprint(at["scopes"]) != "[workspaces:read]" {
		t.Errorf("scopes %v", at["scopes"])
	}
	tok := at["token"].(string)
	specCoreOK(t, "read", env.Request("GET", "/v1/workspaces", nil, "X-API-Token", tok), 200)
	r := env.Request("POST", "/v1/workspaces", map[string]string{"name": "x", "description": ""}, "X-API-Token", tok)
	specCoreErr(t, "write", r, 403, "insufficient_scope")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="workspaces:write"` {
		t.Errorf("insufficient_scope WWW-Authenticate %q", got)
	}
	specCoreErr(t, "unknown scope", env.As(op, "POST", "/v1/api-tokens", map[string]any{"name": "bad", "scopes": []string{"nope:nope"}}), 400, "invalid_request")
	fa := env.Request("GET", "/v1/auth/check", nil, "X-API-Token", tok)
	if fa.Status != 200 || fa.Header.Get("X-Gatehouse-Scopes") != "workspaces:read" {
		t.Errorf("forward auth scopes %d %q", fa.Status, fa.Header.Get("X-Gatehouse-Scopes"))
	}

	// Client credentials with scopes; OAuth scope narrows.
	devID, dev := specCoreUser(t, env, op, "dev@speccore.example", "developer")
	_ = devID
	c := specCoreOK(t, "scoped credential", env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "CI", "scopes": []string{"workspaces:read", "workspaces:write"}}), 201)
	cid, sec := c["client_id"].(string), c["client_secret"].(string)
	g := specCoreOK(t, "narrowed grant", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"workspaces:read"}}, "Authorization", specCoreBasic(cid, sec)), 200)
	if g["scope"] != "workspaces:read" {
		t.Errorf("narrowed grant scope %v", g["scope"])
	}
	specCoreErr(t, "scope not held", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"settings:read"}}, "Authorization", specCoreBasic(cid, sec)), 400, "invalid_scope")
	nt := g["access_token"].(string)
	specCoreErr(t, "narrowed token writes", env.As(nt, "POST", "/v1/workspaces", map[string]string{"name": "x", "description": ""}), 403, "insufficient_scope")
	in := specCoreOK(t, "introspect", env.As(op, "POST", "/oauth/introspect", url.Values{"token": {nt}}.Encode(), "Content-Type", "application/x-www-form-urlencoded"), 200)
	if in["scope"] != "workspaces:read" || in["token_type"] != "bearer" {
		t.Errorf("introspection %v", in)
	}
	// Effective = credential scopes ∩ the owner's permissions: a
	// developer's credential with settings:read cannot read settings.
	c2 := env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "wide", "scopes": []string{"settings:read"}})
	if c2.Status == 201 {
		ct := accessToken(t, specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", specCoreBasic(c2.Map(t)["client_id"].(string), c2.Map(t)["client_secret"].(string))))
		if r := env.As(ct, "GET", "/v1/settings", nil); r.Status == 200 {
			t.Errorf("a member developer's settings:read credential reads settings")
		}
	}

	// API access with scopes.
	app := specCoreOK(t, "scoped API access", env.As(op, "POST", "/v1/api-access", map[string]any{"scopes": []string{"users:read"}}), 201)
	if app["scope"] != "users:read" {
		t.Errorf("API access answer scope %v", app["scope"])
	}
	specCoreErr(t, "API access token outside its scope", env.As(app["access_token"].(string), "GET", "/v1/workspaces", nil), 403, "insufficient_scope")
	// Public client revokes with client_id alone (RFC 7009 §2.1).
	specCoreOK(t, "public client revoke", env.Request("POST", "/oauth/revoke", url.Values{"token": {app["refresh_token"].(string)}, "client_id": {app["client_id"].(string)}}.Encode(), "Content-Type", "application/x-www-form-urlencoded"), 200)
	specCoreErr(t, "revoked refresh token", refresh(env, app["client_id"].(string), app["refresh_token"].(string)), 400, "invalid_grant")
	specCoreErr(t, "its access token (lineage)", env.As(app["access_token"].(string), "GET", "/v1/users", nil), 401, "invalid_token")

	// PATCH: name, enabled, narrower scopes, earlier expires_at.
	full := specCoreOK(t, "full token", env.As(op, "POST", "/v1/api-tokens", map[string]any{"name": "full", "expires_at": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)}), 201)
	fid, ftok := full["id"].(string), full["token"].(string)
	specCoreOK(t, "rename", env.As(op, "PATCH", "/v1/api-tokens/"+fid, map[string]any{"name": "renamed"}), 200)
	specCoreOK(t, "disable", env.As(op, "PATCH", "/v1/api-tokens/"+fid, map[string]any{"enabled": false}), 200)
	specCoreErr(t, "disabled token", env.Request("GET", "/v1/me", nil, "X-API-Token", ftok), 401, "invalid_token")
	specCoreOK(t, "enable", env.As(op, "PATCH", "/v1/api-tokens/"+fid, map[string]any{"enabled": true}), 200)
	specCoreOK(t, "enabled token", env.Request("GET", "/v1/me", nil, "X-API-Token", ftok), 200)
	specCoreOK(t, "narrow", env.As(op, "PATCH", "/v1/api-tokens/"+fid, map[string]any{"scopes": []string{"workspaces:read", "users:read"}}), 200)
	specCoreErr(t, "narrowed applies at once", env.Request("GET", "/v1/settings", nil, "X-API-Token", ftok), 403, "insufficient_scope")
	if r := env.As(op, "PATCH", "/v1/api-tokens/"+fid, map[string]any{"scopes": []string{"workspaces:read", "settings:read"}}); r.Status < 400 || r.Status >= 500 {
		t.Errorf("widening scopes: %d %s", r.Status, r.Body)
	}
	specCoreOK(t, "earlier expiry", env.As(op, "PATCH", "/v1/api-tokens/"+fid, map[string]any{"expires_at": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}), 200)
	if r := env.As(op, "PATCH", "/v1/api-tokens/"+fid, map[string]any{"expires_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)}); r.Status < 400 || r.Status >= 500 {
		t.Errorf("later expiry: %d %s", r.Status, r.Body)
	}
	// Roll with overlap 0: the new token works, the old at once not.
	rolled := specCoreOK(t, "roll", env.As(op, "POST", "/v1/api-tokens/"+fid+"/roll", map[string]int{"overlap_seconds": 0}), 201)
	specCoreOK(t, "rolled token", env.Request("GET", "/v1/workspaces", nil, "X-API-Token", rolled["token"].(string)), 200)
	specCoreErr(t, "old token after roll", env.Request("GET", "/v1/workspaces", nil, "X-API-Token", ftok), 401, "invalid_token")
	if rolled["name"] != "renamed" || fmt.Sprint(rolled["scopes"]) != "[users:read workspaces:read]" {
		t.Errorf("rolled %v", rolled)
	}
	cr := specCoreOK(t, "credential roll", env.As(dev, "POST", "/v1/credentials/"+c["id"].(string)+"/roll", map[string]int{"overlap_seconds": 0}), 200)
	specCoreHas(t, "credential roll", cr, "client_id:string", "client_secret:string")
	if cr["client_id"] != cid || cr["client_secret"] == sec {
		t.Errorf("credential roll %v", cr)
	}
	specCoreErr(t, "old secret after roll", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", specCoreBasic(cid, sec)), 401, "invalid_client")
	specCoreOK(t, "new secret", specCoreForm(env, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", specCoreBasic(cid, cr["client_secret"].(string))), 200)
	specCoreErr(t, "overlap out of range", env.As(op, "POST", "/v1/api-tokens/"+rolled["id"].(string)+"/roll", map[string]int{"overlap_seconds": -1}), 400, "invalid_request")

	// Every credential kind has last_used_at.
	deadline := time.Now().Add(5 * time.Second)
	for {
		items := specCoreList(t, "API tokens", env.As(op, "GET", "/v1/api-tokens", nil))
		used := false
		for _, it := range items {
			if it["id"] == at["id"] && it["last_used_at"] != nil {
				used = true
			}
		}
		if used {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("last_used_at of a used API token is still empty: %v", items)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSpecCoreTrust(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	opMe := specCoreOK(t, "me", env.As(op, "GET", "/v1/me", nil), 200)
	opID := opMe["user"].(map[string]any)["id"].(string)
	opAcc := opMe["account"].(map[string]any)["id"].(string)
	accID, boss := env.CreateAccount(op, "Other", "boss@other.example", specCorePW)
	bossID := specCoreOK(t, "boss me", env.As(boss, "GET", "/v1/me", nil), 200)["user"].(map[string]any)["id"].(string)

	// Operators: GET /v1/accounts, GET|PATCH /v1/accounts/{id}.
	accs := specCoreList(t, "accounts", env.As(op, "GET", "/v1/accounts", nil))
	if len(accs) != 2 {
		t.Errorf("accounts %v", accs)
	}
	for _, a := range accs {
		specCoreHas(t, "account", a, "id:string", "name:string", "status:string", "created_at:string")
	}
	specCoreErr(t, "non-operator lists accounts", env.As(boss, "GET", "/v1/accounts", nil), 403, "forbidden")
	specCoreErr(t, "non-operator reads an account", env.As(boss, "GET", "/v1/accounts/"+accID, nil), 403, "forbidden")
	a := specCoreOK(t, "GET account", env.As(op, "GET", "/v1/accounts/"+accID, nil), 200)
	if a["status"] != "active" || a["name"] != "Other" {
		t.Errorf("account %v", a)
	}
	specCoreErr(t, "bad status", env.As(op, "PATCH", "/v1/accounts/"+accID, map[string]string{"status": "gone"}), 400, "invalid_request")
	specCoreErr(t, "suspend the operator's own", env.As(op, "PATCH", "/v1/accounts/"+opAcc, map[string]string{"status": "suspended"}), 409, "conflict")
	a = specCoreOK(t, "suspend", env.As(op, "PATCH", "/v1/accounts/"+accID, map[string]string{"status": "suspended"}), 200)
	if a["status"] != "suspended" {
		t.Errorf("suspended %v", a)
	}
	specCoreErr(t, "suspended account's token", env.As(boss, "GET", "/v1/me", nil), 401, "invalid_token")
	if r := specCoreForm(env, "/authorization", url.Values{"username": {"boss@other.example"}, "password": {specCorePW}}); r.Status == 200 {
		t.Errorf("a suspended account's admin signs in")
	}
	specCoreOK(t, "reactivate", env.As(op, "PATCH", "/v1/accounts/"+accID, map[string]string{"status": "active"}), 200)
	boss = env.Login("boss@other.example", specCorePW)

	// The last active admin cannot lose the role or be disabled.
	specCoreErr(t, "last admin demoted", env.As(boss, "PATCH", "/v1/users/"+bossID, map[string]any{"roles": []string{}}), 409, "conflict")
	specCoreErr(t, "last admin disabled", env.As(boss, "PATCH", "/v1/users/"+bossID, map[string]any{"status": "disabled"}), 409, "conflict")
	if r := specCoreOK(t, "operator renames the account", env.As(op, "PATCH", "/v1/accounts/"+accID, map[string]any{"name": "Other2"}), 200); r["name"] != "Other2" {
		t.Errorf("renamed %v", r)
	}
	// Only the operator may change the operator.
	_, adm2 := specCoreUser(t, env, op, "adm2@speccore.example", "admin")
	specCoreErr(t, "admin renames the operator", env.As(adm2, "PATCH", "/v1/users/"+opID, map[string]any{"name": "x"}), 403, "forbidden")
	specCoreErr(t, "admin disables the operator", env.As(adm2, "PATCH", "/v1/users/"+opID, map[string]any{"status": "disabled"}), 403, "forbidden")
	specCoreOK(t, "the operator still works", env.As(op, "GET", "/v1/me", nil), 200)
}

// ---------------------------------------------------------------------------
// Edges of §4–§6: headers on every answer they are promised on.

// TestSpecCoreHeadersOnEveryAnswer: §5 "Every authenticated response
// carries X-RateLimit-Burst-Remaining and X-RateLimit-Daily-Remaining" —
// refusals after authentication included; §6 "Cache-Control: no-store and
// Pragma: no-cache on every token-endpoint answer, errors included" and
// §9.1 "error_description keeps to RFC 6749 §5.2's characters".
func TestSpecCoreHeadersOnEveryAnswer(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	_, ann := specCoreUser(t, env, op, "ann@speccore.example")
	specCoreUser(t, env, op, "dev@speccore.example", "developer")
	dev := env.Login("dev@speccore.example", specCorePW)
	c := specCoreOK(t, "credential", env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "CI", "scopes": []string{"workspaces:read"}}), 201)
	cid, sec := c["client_id"].(string), c["client_secret"].(string)

	// Authenticated answers of every kind carry the rate-limit headers.
	n := 0
	for name, r := range map[string]*servertest.Response{
		"200":             env.As(ann, "GET", "/v1/me", nil),
		"403 admin route": env.As(ann, "GET", "/v1/settings", nil),
		"404 workspace":   env.As(ann, "GET", "/v1/workspaces/wsp_nope", nil),
		"400 bad body":    env.As(ann, "POST", "/v1/workspaces", `{"name":`, "Content-Type", "application/json"),
		"201 created":     env.As(ann, "POST", "/v1/workspaces", map[string]string{"name": "x", "description": ""}),
		"introspect 403":  env.As(ann, "POST", "/oauth/introspect", "token="+ann, "Content-Type", "application/x-www-form-urlencoded"),
		"revoke 200":      env.As(ann, "POST", "/oauth/revoke", "token="+token.New(token.AccessToken), "Content-Type", "application/x-www-form-urlencoded"),
		"auth check 200":  env.As(ann, "GET", "/v1/auth/check", nil),
		"413 after auth":  env.As(ann, "POST", "/v1/workspaces", `{"name":"`+strings.Repeat("a", 1<<20)+`"}`, "Content-Type", "application/json"),
	} {
		n++
		if r.Header.Get("X-RateLimit-Burst-Remaining") == "" || r.Header.Get("X-RateLimit-Daily-Remaining") == "" || r.Header.Get("RateLimit-Policy") == "" {
			t.Errorf("authenticated answer %s (%d %s) without the rate-limit headers", name, r.Status, r.Body[:min(len(r.Body), 100)])
		}
	}

	// Every token-endpoint answer: no-store, and RFC 6749 §5.2 characters.
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	answers := map[string]*servertest.Response{
		"413":                       env.Request("POST", "/oauth/token", "grant_type=password&username="+strings.Repeat("a", 1<<20+10), form...),
		"JSON duplicated key":       env.Request("POST", "/oauth/token", `{"grant_type":"password","grant_type":"password","username":"a","password":"b"}`, "Content-Type", "application/json"),
		"malformed JSON":            env.Request("POST", "/oauth/token", `{"grant_type":`, "Content-Type", "application/json"),
		"JSON not strings":          env.Request("POST", "/oauth/token", `{"grant_type":1}`, "Content-Type", "application/json"),
		"query and body":            env.Request("POST", "/oauth/token?grant_type=password", "grant_type=password&username=a&password=b", form...),
		"bearer on token endpoint":  env.Request("POST", "/oauth/token", "grant_type=client_credentials", append(form, "Authorization", "Bearer "+ann)...),
		"malformed Basic":           env.Request("POST", "/oauth/token", "grant_type=client_credentials", append(form, "Authorization", "Basic !!!")...),
		"invalid_scope unknown":     env.Request("POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"zz:unknown"}}.Encode(), append(form, "Authorization", specCoreBasic(cid, sec))...),
		"invalid_scope not held":    env.Request("POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"settings:read"}}.Encode(), append(form, "Authorization", specCoreBasic(cid, sec))...),
		"invalid_scope bad chars":   env.Request("POST", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {`a"b\c`}}.Encode(), append(form, "Authorization", specCoreBasic(cid, sec))...),
		"unsupported grant quoted":  env.Request("POST", "/oauth/token", url.Values{"grant_type": {`x"y\z`}}.Encode(), form...),
		"PUT":                       env.Request("PUT", "/oauth/token", nil),
		"HEAD-less OPTIONS":         env.Request("OPTIONS", "/v1/oauth/token", nil),
		"text/plain":                env.Request("POST", "/oauth/token", "grant_type=password", "Content-Type", "text/plain"),
		"NUL in param":              env.Request("POST", "/oauth/token", "grant_type=password&username=a%00b&password=c", form...),
		"invalid UTF-8 in param":    env.Request("POST", "/oauth/token", "grant_type=password&username=a%ffb&password=c", form...),
		"password grant with a cid": env.Request("POST", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"ann@speccore.example"}, "password": {specCorePW}, "client_id": {cid}}.Encode(), form...),
	}
	// Throttle answers too.
	var last *servertest.Response
	for i := 0; i < 10; i++ {
		last = env.Request("POST", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"dev@speccore.example"}, "password": {"wrong wrong 1"}}.Encode(), form...)
		if last.Status == 429 {
			break
		}
	}
	answers["429"] = last
	for name, r := range answers {
		if r.Status < 400 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
			continue
		}
		specCoreNoStore(t, name, r)
		var m map[string]any
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Errorf("%s: %d body %q not JSON", name, r.Status, r.Body)
			continue
		}
		d, _ := m["error_description"].(string)
		if d == "" || !specCoreDescChars.MatchString(d) {
			t.Errorf("%s: error_description %q (RFC 6749 §5.2 allows %%x20-21 / %%x23-5B / %%x5D-7E)", name, d)
		}
		if _, ok := m["error"].(string); !ok {
			t.Errorf("%s: no error code: %s", name, r.Body)
		}
	}
	// And the other OAuth endpoints' errors keep the same alphabet.
	for name, r := range map[string]*servertest.Response{
		"revoke bad client":     env.Request("POST", "/oauth/revoke", "token=x", append(form, "Authorization", specCoreBasic(cid, token.New(token.ClientSecret)))...),
		"introspect no client":  env.Request("POST", "/oauth/introspect", "token=x", form...),
		"introspect twice":      env.Request("POST", "/oauth/introspect", "token=x&token=y", append(form, "Authorization", specCoreBasic(cid, sec))...),
		"authorization quoted":  env.Request("POST", "/authorization", url.Values{"username": {`a"b\c@x.example`}, "password": {"pw"}}.Encode(), form...),
		"authorization missing": env.Request("POST", "/authorization", "username=a", form...),
	} {
		var m map[string]any
		if r.Status < 400 || json.Unmarshal(r.Body, &m) != nil {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
			continue
		}
		if d, _ := m["error_description"].(string); d == "" || !specCoreDescChars.MatchString(d) {
			t.Errorf("%s: error_description %q", name, d)
		}
	}
}

// TestSpecCoreConflictsUnderConcurrency: §3.1 "A second enable while one
// exists → 409 {"error":"conflict"}" and §1 "Email (unique across the
// whole server, case-insensitive)", with the competing requests released
// together on both stores.
func TestSpecCoreConflictsUnderConcurrency(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	_, boss := env.CreateAccount(op, "Other", "boss@other.example", specCorePW)
	const n = 16
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = specCoreReq(t, "POST", env.URL+"/v1/api-access", `{"access_token_ttl_days":2}`, "Authorization", "Bearer "+op, "Content-Type", "application/json")
	}
	created := 0
	var tok string
	for i, r := range specCoreVolley(t, env.URL, reqs) {
		switch r.Status {
		case 201:
			created++
			var m map[string]any
			json.Unmarshal(r.Body, &m)
			tok = m["access_token"].(string)
		case 409:
			specCoreErr(t, fmt.Sprint("enable ", i), r, 409, "conflict")
		default:
			t.Errorf("enable %d: %d %s", i, r.Status, r.Body)
		}
	}
	if created != 1 {
		t.Fatalf("%d concurrent enables created %d applications", n, created)
	}
	specCoreOK(t, "the one application's token", env.As(tok, "GET", "/v1/me", nil), 200)

	// One address, in several cases, from two accounts at once.
	for i := range reqs {
		email := "Case@SpecCore.example"
		if i%2 == 1 {
			email = strings.ToLower(email)
		}
		who := op
		if i%3 == 0 {
			who = boss
		}
		body := fmt.Sprintf(`{"email":%q,"name":"x","password":%q,"roles":[]}`, email, specCorePW)
		reqs[i] = specCoreReq(t, "POST", env.URL+"/v1/users", body, "Authorization", "Bearer "+who, "Content-Type", "application/json")
	}
	created = 0
	for i, r := range specCoreVolley(t, env.URL, reqs) {
		switch r.Status {
		case 201:
			created++
		case 409:
			specCoreErr(t, fmt.Sprint("create ", i), r, 409, "conflict")
		default:
			t.Errorf("create %d: %d %s", i, r.Status, r.Body)
		}
	}
	if created != 1 {
		t.Errorf("%d concurrent creations of one address made %d users", n, created)
	}
}

// TestSpecCoreActAsHeaderOnTokenEndpoint: SPEC §3.2 "The user header is
// honoured only with an API token; sent with any other credential it is
// 400 invalid_request." Client credentials at the token endpoint, and a
// username and password at /authorization, are credentials: a client that
// asks for a token acting as ann must not silently get one acting as
// someone else.
func TestSpecCoreActAsHeaderOnTokenEndpoint(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	specCoreUser(t, env, op, "ann@speccore.example")
	specCoreUser(t, env, op, "dev@speccore.example", "developer")
	dev := env.Login("dev@speccore.example", specCorePW)
	c := specCoreOK(t, "credential", env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "CI"}), 201)
	form := []string{"Content-Type", "application/x-www-form-urlencoded", "X-User-Email", "ann@speccore.example"}
	for name, r := range map[string]*servertest.Response{
		"client_credentials (Basic)": env.Request("POST", "/oauth/token", "grant_type=client_credentials", append(form, "Authorization", specCoreBasic(c["client_id"].(string), c["client_secret"].(string)))...),
		"client_credentials (body)":  env.Request("POST", "/v1/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)}, "client_secret": {c["client_secret"].(string)}}.Encode(), form...),
		"password grant":             env.Request("POST", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"dev@speccore.example"}, "password": {specCorePW}}.Encode(), form...),
		"/authorization":             env.Request("POST", "/authorization", url.Values{"username": {"dev@speccore.example"}, "password": {specCorePW}}.Encode(), form...),
	} {
		if r.Status == 200 {
			who := specCoreOK(t, "me", env.As(r.Map(t)["access_token"].(string), "GET", "/v1/me", nil), 200)["user"].(map[string]any)["email"]
			t.Errorf("%s with X-User-Email: ann@speccore.example answered 200, a token acting as %v; want 400 invalid_request", name, who)
			continue
		}
		specCoreErr(t, name, r, 400, "invalid_request")
	}
}

// TestSpecCoreActiveCredentialsCount: SPEC §3.3 "DELETE
// /v1/developers/{user_id} → 200 {"active_credentials":N}: existing
// credentials keep working (as the reference platform documents) and the
// answer says how many". N is the number that keep working: a disabled,
// an expired and a leaked (revoked for good) credential are not active.
func TestSpecCoreActiveCredentialsCount(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	devID, dev := specCoreUser(t, env, op, "dev@speccore.example", "developer")
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	exp := time.Now().Add(5 * time.Second).UTC().Truncate(time.Second) // four to five seconds to make them all
	live := specCoreOK(t, "live", env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "live"}), 201)
	specCoreOK(t, "short", env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "short", "expires_at": exp.Format(time.RFC3339)}), 201)
	off := specCoreOK(t, "off", env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "off"}), 201)
	specCoreOK(t, "disable", env.As(dev, "PATCH", "/v1/credentials/"+off["id"].(string), map[string]any{"enabled": false}), 200)
	leaked := specCoreOK(t, "leaked", env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "leaked"}), 201)
	specCoreOK(t, "report leaked", env.Request("POST", "/oauth/revoke", "token="+leaked["client_secret"].(string), form...), 200)
	if time.Now().After(exp) {
		t.Fatal("the set-up overran the short credential's expiry: make it later")
	}
	time.Sleep(time.Until(exp) + 1100*time.Millisecond)

	working := 0
	for _, c := range []map[string]any{live, off, leaked} {
		r := env.Request("POST", "/oauth/token", "grant_type=client_credentials", append(form, "Authorization", specCoreBasic(c["client_id"].(string), c["client_secret"].(string)))...)
		if r.Status == 200 {
			working++
		}
	}
	if working != 1 {
		t.Fatalf("%d credentials work, want 1 (the set-up is wrong)", working)
	}
	d := specCoreOK(t, "remove the role", env.As(op, "DELETE", "/v1/developers/"+devID, nil), 200)
	if d["active_credentials"] != 1.0 {
		t.Errorf("active_credentials %v: of the developer's 4 credentials only 1 keeps working (one expired, one disabled, one revoked as leaked)", d["active_credentials"])
	}
}
