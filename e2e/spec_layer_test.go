package e2e

// An exactness walk of SPEC §10 (its introduction) and §10.1–§10.5: every
// path, field, status, error code, event type and header those sections
// name, requested as a client reading the SPEC literally would, and the
// answer held to the SPEC's words. The data-changing tests run on either
// store (GATEHOUSE_TEST_DATABASE=postgres for PostgreSQL).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// specLayerHook is one delivery a specLayerReceiver got, kept raw.
type specLayerHook struct {
	Method, ContentType      string
	ID, Timestamp, Signature string
	Body                     []byte
	Event                    map[string]any
}

// specLayerReceiver is a webhook endpoint that keeps every delivery.
type specLayerReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []specLayerHook
}

func specLayerNewReceiver(t *testing.T) *specLayerReceiver {
	t.Helper()
	rc := &specLayerReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := specLayerHook{Method: r.Method, ContentType: r.Header.Get("Content-Type"), ID: r.Header.Get("webhook-id"),
			Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature"), Body: body}
		json.Unmarshal(body, &h.Event)
		rc.mu.Lock()
		rc.got = append(rc.got, h)
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent) // any 2xx is success
	}))
	t.Cleanup(rc.Close)
	return rc
}

// wait returns the first delivery of type typ for which match (if given)
// holds.
func (rc *specLayerReceiver) wait(t *testing.T, typ string, match func(specLayerHook) bool) specLayerHook {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rc.mu.Lock()
		for _, h := range rc.got {
			if h.Event["type"] == typ && (match == nil || match(h)) {
				rc.mu.Unlock()
				return h
			}
		}
		rc.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s event arrived; got %v", typ, rc.types())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rc *specLayerReceiver) types() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, h := range rc.got {
		s, _ := h.Event["type"].(string)
		out = append(out, s)
	}
	return out
}

// specLayerData is the event's data object.
func specLayerData(h specLayerHook) map[string]any {
	d, _ := h.Event["data"].(map[string]any)
	return d
}

// specLayerVerify checks a delivery's Standard Webhooks signature as the
// SPEC words it, from scratch: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>,
// the key being what the secret's base64 after whsec_ encodes. It returns
// how many of the space-separated signatures verify under secret.
func specLayerVerify(t *testing.T, h specLayerHook, secret string) int {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("secret %q is not whsec_ + base64: %v", secret, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.ID + "." + h.Timestamp + "." + string(h.Body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	n := 0
	for _, s := range strings.Split(h.Signature, " ") {
		if !strings.HasPrefix(s, "v1,") {
			t.Fatalf("signature %q is not v1,…", s)
		}
		if hmac.Equal([]byte(s), []byte(want)) {
			n++
		}
	}
	return n
}

// specLayerKeys returns the sorted keys of m.
func specLayerKeys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// specLayerHas fails unless m has every key in keys.
func specLayerHas(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q: %v", what, k, m)
		}
	}
}

func specLayerForm(v url.Values) (string, []string) {
	return v.Encode(), []string{"Content-Type", "application/x-www-form-urlencoded"}
}

// specLayerPost sends a form.
func specLayerPost(env *servertest.Env, path string, v url.Values, headers ...string) *servertest.Response {
	body, h := specLayerForm(v)
	return env.Request("POST", path, body, append(h, headers...)...)
}

// specLayerWebhook registers an endpoint for every event and returns its
// id and secret.
func specLayerWebhook(t *testing.T, env *servertest.Env, admin, u string, events ...string) (id, secret string) {
	t.Helper()
	if events == nil {
		events = []string{"*"}
	}
	r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": u, "events": events, "description": "walk"})
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	return m["id"].(string), m["secret"].(string)
}

// ---------------------------------------------------------------- §10.1

// TestSpecLayerRevokeEveryKindByHint: POST /oauth/revoke with each of the
// four token_type_hint values the SPEC names, by someone who only holds
// the secret (no authentication): 200, the secret dead at once, an API
// token and a client credential kept with "revoked_reason":"leaked" and
// revoked_at, not revived by re-enabling, rolled by their owner into a new
// secret with the same name and scopes; an access token's refresh lineage
// dies with it; each audited as credential.leaked (with where it was
// reported) and sent as the credential.leaked event.
func TestSpecLayerRevokeEveryKindByHint(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin, _, devTok, cred := developer(t, env)
	rc := specLayerNewReceiver(t)
	_, secret := specLayerWebhook(t, env, admin, rc.URL+"/h", "credential.*")
	enableAPITokens(t, env, admin)
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "Zapier", "scopes": []string{"workspaces:read"}})
	servertest.Expect(t, r, 201, "")
	var ak struct{ ID, Name, Token string }
	r.JSON(t, &ak)
	r = env.As(admin, "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 201, "")
	app := r.Map(t)
	at, rt := app["access_token"].(string), app["refresh_token"].(string)
	r = env.As(admin, "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 409, "conflict")

	for _, c := range []struct{ tok, hint string }{{ak.Token, "api_token"}, {cred.ClientSecret, "client_secret"}} {
		r := specLayerPost(env, "/oauth/revoke", url.Values{"token": {c.tok}, "token_type_hint": {c.hint}})
		servertest.Expect(t, r, 200, "")
	}
	// An access token reported by someone else who holds it (a developer
	// of the account, neither its owner nor an admin) is a leak: revoked
	// with its refresh lineage. (Sent by nobody but itself it is the
	// holder's own RFC 7009 revocation: docs/leak-response.md.)
	servertest.Expect(t, specLayerPost(env, "/oauth/revoke", url.Values{"token": {at}, "token_type_hint": {"access_token"}}, "Authorization", "Bearer "+devTok), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", ak.Token), 401, "invalid_token")
	servertest.Expect(t, clientToken(env, cred), 401, "invalid_client")
	servertest.Expect(t, env.As(at, "GET", "/v1/me", nil), 401, "invalid_token")
	// The refresh lineage went with the access token.
	servertest.Expect(t, specLayerPost(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {app["client_id"].(string)}, "refresh_token": {rt}}), 400, "invalid_grant")

	// A second API access application and a refresh token revoked by hint.
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
	r = env.As(admin, "POST", "/v1/api-access", map[string]any{"access_token_ttl_days": 2})
	servertest.Expect(t, r, 201, "")
	app2 := r.Map(t)
	if app2["token_type"] != "bearer" || app2["expires_in"] != float64(2*86400) {
		t.Errorf("api access: %v", app2)
	}
	servertest.Expect(t, specLayerPost(env, "/oauth/revoke", url.Values{"token": {app2["refresh_token"].(string)}, "token_type_hint": {"refresh_token"}}), 200, "")
	servertest.Expect(t, env.As(app2["access_token"].(string), "GET", "/v1/me", nil), 401, "invalid_token")

	// Kept, marked, not revived.
	var toks struct{ Data []map[string]any }
	env.As(admin, "GET", "/v1/api-tokens", nil).JSON(t, &toks)
	if len(toks.Data) != 1 || toks.Data[0]["revoked_reason"] != "leaked" {
		t.Fatalf("api tokens: %v", toks.Data)
	}
	if s, ok := toks.Data[0]["revoked_at"].(string); !ok {
		t.Fatalf("revoked_at %v", toks.Data[0]["revoked_at"])
	} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		t.Fatalf("revoked_at %q: %v", s, err)
	}
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+ak.ID, map[string]any{"enabled": true}), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", ak.Token), 401, "invalid_token")
	var creds struct{ Data []map[string]any }
	env.As(devTok, "GET", "/v1/credentials", nil).JSON(t, &creds)
	if len(creds.Data) != 1 || creds.Data[0]["revoked_reason"] != "leaked" || creds.Data[0]["revoked_at"] == nil {
		t.Fatalf("credentials: %v", creds.Data)
	}
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+cred.ID, map[string]any{"enabled": true}), 200, "")
	servertest.Expect(t, clientToken(env, cred), 401, "invalid_client")

	// Rolled: same name and scopes, a new secret that works.
	r = env.As(admin, "POST", "/v1/api-tokens/"+ak.ID+"/roll", map[string]any{"overlap_seconds": 0})
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("roll api token: %d %s", r.Status, r.Body)
	}
	rolled := r.Map(t)
	if rolled["name"] != "Zapier" || !sameList(rolled["scopes"], "workspaces:read") || rolled["token"] == ak.Token {
		t.Fatalf("rolled api token %v", rolled)
	}
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", rolled["token"].(string)), 200, "")
	r = env.As(devTok, "POST", "/v1/credentials/"+cred.ID+"/roll", map[string]any{"overlap_seconds": 0})
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("roll credential: %d %s", r.Status, r.Body)
	}
	var next credential
	r.JSON(t, &next)
	env.As(devTok, "GET", "/v1/credentials", nil).JSON(t, &creds)
	named := false
	for _, c := range creds.Data {
		named = named || (c["id"] == next.ID && c["id"] != cred.ID && c["client_id"] == next.ClientID && c["name"] == "CI" && c["revoked_reason"] == nil)
	}
	if !named {
		t.Errorf("the rolled credential %s is not listed with the same name: %v", next.ClientID, creds.Data)
	}
	accessToken(t, clientToken(env, next))

	// Audited and sent, with where it was reported, never a secret.
	kinds := map[string]bool{}
	for _, e := range auditEntries(t, env, admin) {
		if e["action"] == "credential.leaked" {
			d, _ := e["details"].(map[string]any)
			if d["reported_via"] != "oauth_revoke" {
				t.Errorf("credential.leaked entry %v", e)
			}
			kinds[fmt.Sprint(d["kind"])] = true
		}
	}
	for _, k := range []string{"api_token", "client_secret", "access_token"} {
		if !kinds[k] {
			t.Errorf("no credential.leaked audit entry for the %s: %v", k, kinds)
		}
	}
	for _, k := range []string{"api_token", "client_secret"} {
		h := rc.wait(t, "credential.leaked", func(h specLayerHook) bool { return specLayerData(h)["kind"] == k })
		if specLayerVerify(t, h, secret) != 1 || specLayerData(h)["reported_via"] != "oauth_revoke" {
			t.Errorf("credential.leaked event %s", h.Body)
		}
		for _, s := range []string{ak.Token, cred.ClientSecret, at, rt} {
			if strings.Contains(string(h.Body), s) {
				t.Errorf("event carries a secret: %s", h.Body)
			}
		}
	}
}

// TestSpecLayerBulkRevoke: POST /v1/credentials/revoke, no
// authentication: 1–1000 strings → exactly 202 {}; none, 1001, malformed,
// non-strings → 400; the 61st request of an address in an hour → 429
// too_many_attempts with Retry-After. Requests released together cannot
// get more than 60 through.
func TestSpecLayerBulkRevoke(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	enableAPITokens(t, env, admin)
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "leaky"})
	servertest.Expect(t, r, 201, "")
	live := r.Map(t)["token"].(string)

	r = env.Request("POST", "/v1/credentials/revoke", map[string]any{"credentials": []string{live, "garbage", "gak_unknown"}})
	servertest.Expect(t, r, 202, "")
	var body map[string]any
	r.JSON(t, &body)
	if len(body) != 0 {
		t.Fatalf("202 body %s, want {}", r.Body)
	}
	// Worked through just after the answer.
	deadline := time.Now().Add(10 * time.Second)
	for env.Request("GET", "/v1/me", nil, "X-API-Token", live).Status != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the reported API token still works")
		}
		time.Sleep(20 * time.Millisecond)
	}
	thousand := make([]string, 1000)
	for i := range thousand {
		thousand[i] = "x" + strconv.Itoa(i)
	}
	servertest.Expect(t, env.Request("POST", "/v1/credentials/revoke", map[string]any{"credentials": thousand}), 202, "")
	sent := 2
	for name, b := range map[string]any{
		"none":        map[string]any{"credentials": []string{}},
		"1001":        map[string]any{"credentials": append(thousand, "y")},
		"missing":     map[string]any{},
		"not strings": map[string]any{"credentials": []int{1, 2}},
		"not json":    "{\"credentials\":[",
		"a string":    map[string]any{"credentials": "gak_x"},
	} {
		r := env.Request("POST", "/v1/credentials/revoke", b, "Content-Type", "application/json")
		if r.Status != 400 {
			t.Errorf("%s: %d %s, want 400", name, r.Status, r.Body)
		}
		sent++
	}
	// Release the rest of the hour's 60, and more, together.
	var shots []volleyReq
	for range 70 - sent {
		req, _ := http.NewRequest("POST", env.URL+"/v1/credentials/revoke", strings.NewReader(`{"credentials":["nothing"]}`))
		req.Header.Set("Content-Type", "application/json")
		shots = append(shots, volleyReq{req: req})
	}
	res := volley(t, shots)
	ok, limited := 0, 0
	for _, r := range res.resps {
		switch r.Status {
		case 202:
			ok++
		case 429:
			servertest.Expect(t, r, 429, "too_many_attempts")
			if r.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			limited++
		default:
			t.Errorf("answer %d %s", r.Status, r.Body)
		}
	}
	// The malformed ones may or may not count; never more than 60 in all.
	if ok+2 > 60 || ok+2+(sent-2) < 60 || limited == 0 {
		t.Fatalf("%d admitted together after %d sent, %d refused", ok, sent, limited)
	}
}

// TestSpecLayerGitHubScanning: a batch in GitHub's shape signed with a
// P-256 key from a key file of GitHub's shape: 200 with one
// {"token_hash","token_type","label"} per token, token_hash the SHA-256 hex
// of the token; a bad or missing signature is 401 and revokes nothing;
// leak_policy is "revoke" by default in /v1/settings, takes "notify", and
// refuses anything else.
func TestSpecLayerGitHubScanning(t *testing.T) {
	signer := newGitHubSigner(t)
	env := servertest.Start(t, func(c *server.Config) { c.GitHubScanningKeys = signer.file })
	admin := env.AdminToken()
	r := env.As(admin, "GET", "/v1/settings", nil)
	servertest.Expect(t, r, 200, "")
	if p := r.Map(t)["leak_policy"]; p != "revoke" {
		t.Fatalf("leak_policy by default %v, want revoke", p)
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"leak_policy": "ignore"}), 400, "invalid_request")
	enableAPITokens(t, env, admin)
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "found"})
	servertest.Expect(t, r, 201, "")
	live := r.Map(t)["token"].(string)
	batch, _ := json.Marshal([]map[string]string{
		{"token": live, "type": "acme_api_token", "url": "https://github.com/o/r/blob/x/.env", "source": "content"},
		{"token": "gak_notours", "type": "acme_api_token", "url": "https://github.com/o/r", "source": "commit"},
	})
	// Unsigned, wrongly signed, signed for another body: 401, nothing revoked.
	servertest.Expect(t, postGitHub(env, batch, "", ""), 401, "")
	servertest.Expect(t, postGitHub(env, batch, signer.id, signer.sign(t, []byte("[]"))), 401, "")
	servertest.Expect(t, postGitHub(env, batch, "unknown-key", signer.sign(t, batch)), 401, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", live), 200, "")

	r = postGitHub(env, batch, signer.id, signer.sign(t, batch))
	servertest.Expect(t, r, 200, "")
	var labels []map[string]any
	r.JSON(t, &labels)
	if len(labels) != 2 {
		t.Fatalf("labels %s", r.Body)
	}
	for i, tok := range []string{live, "gak_notours"} {
		sum := sha256.Sum256([]byte(tok))
		want := map[string]any{"token_hash": hex.EncodeToString(sum[:]), "token_type": "acme_api_token", "label": []string{"true_positive", "false_positive"}[i]}
		if fmt.Sprint(labels[i]) != fmt.Sprint(want) {
			t.Errorf("label %d: %v, want %v", i, labels[i], want)
		}
	}
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", live), 401, "invalid_token")
	found := false
	for _, e := range auditEntries(t, env, admin) {
		if d, _ := e["details"].(map[string]any); e["action"] == "credential.leaked" && d["reported_via"] == "github_secret_scanning" && d["url"] == "https://github.com/o/r/blob/x/.env" {
			found = true
		}
	}
	if !found {
		t.Error("no credential.leaked entry naming GitHub and the url")
	}

	// notify: reported, not revoked.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"leak_policy": "notify"}), 200, "")
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "kept"})
	servertest.Expect(t, r, 201, "")
	kept := r.Map(t)["token"].(string)
	batch, _ = json.Marshal([]map[string]string{{"token": kept, "type": "t", "url": "u", "source": "s"}})
	r = postGitHub(env, batch, signer.id, signer.sign(t, batch))
	servertest.Expect(t, r, 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", kept), 200, "")
}

// TestSpecLayerCanary: POST /v1/api-tokens {"name","canary":true} answers
// like any token; using it is 401 invalid_token byte for byte like an
// unknown token, writes an audit entry and sends credential.canary_used
// with the client address, user agent and path.
func TestSpecLayerCanary(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin := env.AdminToken()
	rc := specLayerNewReceiver(t)
	_, secret := specLayerWebhook(t, env, admin, rc.URL+"/h", "credential.canary_used")
	enableAPITokens(t, env, admin)
	plain := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "plain"})
	servertest.Expect(t, plain, 201, "")
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "bait", "canary": true})
	servertest.Expect(t, r, 201, "")
	canary := r.Map(t)
	pm := plain.Map(t)
	delete(pm, "canary")
	delete(canary, "canary")
	if fmt.Sprint(specLayerKeys(pm)) != fmt.Sprint(specLayerKeys(canary)) {
		t.Errorf("a canary's answer has other fields: %v vs %v", specLayerKeys(canary), specLayerKeys(pm))
	}
	tok := canary["token"].(string)
	if !strings.HasPrefix(tok, "gak_") || len(tok) != len(pm["token"].(string)) {
		t.Fatalf("canary %q does not look like an API token", tok)
	}
	got := env.Request("GET", "/v1/workspaces", nil, "X-API-Token", tok, "User-Agent", "thief/1.0")
	servertest.Expect(t, got, 401, "invalid_token")
	// An unknown token of the same shape: the same bytes.
	unknown := env.Request("GET", "/v1/workspaces", nil, "X-API-Token", pm["token"].(string)[:4]+"x"+pm["token"].(string)[5:])
	servertest.Expect(t, unknown, 401, "invalid_token")
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "gone"})
	gone := r.Map(t)
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-tokens/"+gone["id"].(string), nil), 204, "")
	deleted := env.Request("GET", "/v1/workspaces", nil, "X-API-Token", gone["token"].(string), "User-Agent", "thief/1.0")
	if got.Status != deleted.Status || string(got.Body) != string(deleted.Body) || got.Header.Get("WWW-Authenticate") != deleted.Header.Get("WWW-Authenticate") {
		t.Errorf("canary %d %q %q vs deleted token %d %q %q", got.Status, got.Body, got.Header.Get("WWW-Authenticate"), deleted.Status, deleted.Body, deleted.Header.Get("WWW-Authenticate"))
	}
	h := rc.wait(t, "credential.canary_used", nil)
	d := specLayerData(h)
	if specLayerVerify(t, h, secret) != 1 || d["user_agent"] != "thief/1.0" || d["path"] != "/v1/workspaces" || !strings.Contains(fmt.Sprint(d["client_addr"], d["remote_addr"]), "127.0.0.1") {
		t.Errorf("canary event %s", h.Body)
	}
	found := false
	for _, e := range auditEntries(t, env, admin) {
		if e["action"] == "credential.canary_used" {
			found = true
		}
	}
	if !found {
		t.Error("no audit entry for the canary's use")
	}
}

// TestSpecLayerTokenPrefix: with --token-prefix every new secret is
// NAME_at_, NAME_rt_, NAME_ak_, NAME_cs_ and client ids NAME_ci_; a bad
// name is refused at start.
func TestSpecLayerTokenPrefix(t *testing.T) {
	for _, bad := range []string{"a", "1abc", "Acme", "abcdefghijklm", "ac-me", "ac_me"} {
		cfg := server.DefaultConfig()
		cfg.TokenPrefix = bad
		if cfg.Validate() == nil {
			t.Errorf("token prefix %q accepted", bad)
		}
	}
	env := servertest.Start(t, func(c *server.Config) { c.TokenPrefix = "acme2" })
	admin, _, _, cred := developer(t, env)
	re := func(kind string) *regexp.Regexp { return regexp.MustCompile(`^acme2_` + kind + `_[0-9A-Za-z]{49}$`) }
	if !re("at").MatchString(admin) || !re("cs").MatchString(cred.ClientSecret) || !re("ci").MatchString(cred.ClientID) {
		t.Fatalf("admin token %q, client %q/%q", admin, cred.ClientID, cred.ClientSecret)
	}
	r := env.As(admin, "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	if !re("rt").MatchString(m["refresh_token"].(string)) || !re("at").MatchString(m["access_token"].(string)) || !re("ci").MatchString(m["client_id"].(string)) {
		t.Fatalf("api access %v", m)
	}
	enableAPITokens(t, env, admin)
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "p"})
	if tok := r.Map(t)["token"].(string); !re("ak").MatchString(tok) {
		t.Fatalf("api token %q", tok)
	}
}

// ---------------------------------------------------------------- §10.2

// specLayerEvents is SPEC §10.2's catalogue, word for word.
var specLayerEvents = []string{"user.created", "user.updated", "user.disabled", "user.password_changed",
	"developer.added", "developer.removed", "api_access.enabled", "api_access.revoked",
	"credential.created", "credential.updated", "credential.rolled",
	"credential.deleted", "credential.expiring",
	"credential.expired", "credential.leaked", "credential.canary_used",
	"refresh_token.reuse_detected", "extension.changed", "settings.changed",
	"signin.throttled", "quota.threshold", "authorization.granted",
	"authorization.revoked", "account.suspended", "webhook.test"}

// TestSpecLayerWebhookEndpoints: every route of §10.2 with the fields
// it names: create (secret whsec_ shown once), list, read, patch, roll
// with overlap (both secrets sign), test, deliveries with every field,
// redeliver (same webhook-id), delete; events take exact names, prefix.*
// and *; the scopes webhooks:read and webhooks:write; a member is 403.
func TestSpecLayerWebhookEndpoints(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin := env.AdminToken()
	env.CreateUser(admin, appMember, memberPW)
	member := env.Login(appMember, memberPW)
	rc := specLayerNewReceiver(t)
	servertest.Expect(t, env.As(member, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"*"}}), 403, "")
	servertest.Expect(t, env.As(member, "GET", "/v1/webhooks", nil), 403, "")

	// Every name of the catalogue, every prefix and * are taken; nothing else.
	r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL + "/all", "events": specLayerEvents, "description": "all"})
	servertest.Expect(t, r, 201, "")
	allID := r.Map(t)["id"].(string)
	prefixes := map[string]bool{}
	for _, e := range specLayerEvents {
		prefixes[strings.SplitN(e, ".", 2)[0]+".*"] = true
	}
	for p := range prefixes {
		servertest.Expect(t, env.As(admin, "PATCH", "/v1/webhooks/"+allID, map[string]any{"events": []string{p}}), 200, "")
	}
	for _, bad := range []string{"user.deleted", "nothing.*", "user*", "credential.leaked.extra", ""} {
		servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{bad}}), 400, "invalid_request")
	}
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/webhooks/"+allID, nil), 204, "")
	servertest.Expect(t, env.As(admin, "GET", "/v1/webhooks/"+allID, nil), 404, "not_found")

	r = env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL + "/h", "events": []string{"credential.*", "webhook.test", "user.created"}, "description": "ops"})
	servertest.Expect(t, r, 201, "")
	wh := r.Map(t)
	specLayerHas(t, "created webhook", wh, "id", "url", "events", "description", "enabled", "secret", "created_at")
	id, secret := wh["id"].(string), wh["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || wh["url"] != rc.URL+"/h" || wh["enabled"] != true || wh["description"] != "ops" || !sameList(wh["events"], "credential.*", "webhook.test", "user.created") {
		t.Fatalf("created: %v", wh)
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(wh["created_at"])); err != nil {
		t.Errorf("created_at: %v", err)
	}
	r = env.As(admin, "GET", "/v1/webhooks", nil)
	servertest.Expect(t, r, 200, "")
	var list struct {
		Data       []map[string]any `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	r.JSON(t, &list)
	if len(list.Data) != 1 || list.Data[0]["id"] != id || strings.Contains(string(r.Body), "whsec_") || list.NextCursor != nil {
		t.Fatalf("list: %s", r.Body)
	}
	r = env.As(admin, "GET", "/v1/webhooks/"+id, nil)
	servertest.Expect(t, r, 200, "")
	one := r.Map(t)
	specLayerHas(t, "read webhook", one, "id", "url", "events", "description", "enabled", "created_at")
	if _, ok := one["secret"]; ok {
		t.Fatalf("secret shown again: %s", r.Body)
	}
	r = env.As(admin, "PATCH", "/v1/webhooks/"+id, map[string]any{"description": "ops 2"})
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["description"] != "ops 2" {
		t.Fatalf("patch: %s", r.Body)
	}

	// Scopes: webhooks:read reads, only webhooks:write changes.
	enableAPITokens(t, env, admin)
	mk := func(scopes ...string) string {
		r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "s " + strings.Join(scopes, ","), "scopes": scopes})
		servertest.Expect(t, r, 201, "")
		return r.Map(t)["token"].(string)
	}
	reader, writer, other := mk("webhooks:read"), mk("webhooks:read", "webhooks:write"), mk("workspaces:read")
	servertest.Expect(t, env.Request("GET", "/v1/webhooks", nil, "X-API-Token", reader), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/webhooks/"+id+"/deliveries", nil, "X-API-Token", reader), 200, "")
	r = env.Request("PATCH", "/v1/webhooks/"+id, map[string]any{"description": "x"}, "X-API-Token", reader)
	servertest.Expect(t, r, 403, "insufficient_scope")
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="webhooks:write"`) {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	servertest.Expect(t, env.Request("GET", "/v1/webhooks", nil, "X-API-Token", other), 403, "insufficient_scope")
	servertest.Expect(t, env.Request("PATCH", "/v1/webhooks/"+id, map[string]any{"description": "ops 3"}, "X-API-Token", writer), 200, "")

	// A delivery, exactly as Standard Webhooks 1.0 says.
	env.CreateUser(admin, "hooked@example.com", "a long enough password")
	h := rc.wait(t, "user.created", nil)
	if h.Method != "POST" || h.ContentType != "application/json" || h.ID == "" {
		t.Fatalf("delivery %+v", h)
	}
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Fatalf("webhook-timestamp %q is not the Unix seconds of now", h.Timestamp)
	}
	if specLayerVerify(t, h, secret) != 1 {
		t.Fatalf("signature %q does not verify", h.Signature)
	}
	if k := fmt.Sprint(specLayerKeys(h.Event)); k != "[account_id data timestamp type]" {
		t.Fatalf("body keys %s: %s", k, h.Body)
	}
	if _, ok := h.Event["data"].(map[string]any); !ok {
		t.Fatalf("data is not an object: %s", h.Body)
	}

	// Roll with an overlap: two signatures, one under each secret.
	r = env.As(admin, "POST", "/v1/webhooks/"+id+"/roll-secret", map[string]any{"overlap_seconds": 3600})
	servertest.Expect(t, r, 200, "")
	secret2, _ := r.Map(t)["secret"].(string)
	if !strings.HasPrefix(secret2, "whsec_") || secret2 == secret {
		t.Fatalf("rolled: %s", r.Body)
	}
	r = env.As(admin, "POST", "/v1/webhooks/"+id+"/test", nil)
	servertest.Expect(t, r, 202, "")
	h = rc.wait(t, "webhook.test", nil)
	if len(strings.Split(h.Signature, " ")) != 2 || specLayerVerify(t, h, secret) != 1 || specLayerVerify(t, h, secret2) != 1 {
		t.Fatalf("during the overlap: %q", h.Signature)
	}

	// Deliveries with every field the SPEC names; a redelivery keeps the id.
	var ds []map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for {
		r = env.As(admin, "GET", "/v1/webhooks/"+id+"/deliveries", nil)
		servertest.Expect(t, r, 200, "")
		var l struct{ Data []map[string]any }
		r.JSON(t, &l)
		ds = l.Data
		done := len(ds) >= 2
		for _, d := range ds {
			done = done && d["status"] == "delivered"
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %s", r.Body)
		}
		time.Sleep(30 * time.Millisecond)
	}
	for _, d := range ds {
		specLayerHas(t, "delivery", d, "id", "event_id", "type", "attempt", "status", "response_status", "duration_ms", "next_attempt_at", "created_at")
		if d["response_status"] != float64(204) || d["attempt"] != float64(1) {
			t.Errorf("delivery %v", d)
		}
	}
	var testDelivery map[string]any
	for _, d := range ds {
		if d["type"] == "webhook.test" {
			testDelivery = d
		}
	}
	if testDelivery == nil || testDelivery["event_id"] != h.ID {
		t.Fatalf("no webhook.test delivery with event_id %s: %v", h.ID, ds)
	}
	servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks/"+id+"/deliveries/"+testDelivery["id"].(string)+"/redeliver", nil), 202, "")
	deadline = time.Now().Add(20 * time.Second)
	for {
		n := 0
		rc.mu.Lock()
		for _, g := range rc.got {
			if g.ID == h.ID {
				n++
			}
		}
		rc.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the redelivery of %s did not arrive with the same webhook-id", h.ID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks/"+id+"/deliveries/nope/redeliver", nil), 404, "not_found")
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/webhooks/"+id, nil), 204, "")
	servertest.Expect(t, env.As(admin, "GET", "/v1/webhooks/"+id+"/deliveries", nil), 404, "not_found")
}

// TestSpecLayerWebhookOutbound: without --webhook-allow-insecure the URL
// must be https and resolve to a public address (400 otherwise); a 410
// Gone answer disables the endpoint, audited, and nothing more is sent
// until it is enabled again.
func TestSpecLayerWebhookOutbound(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	for _, u := range []string{"http://example.com/h", "https://127.0.0.1/h", "https://10.0.0.1/h", "https://169.254.169.254/h", "https://[::1]/h", "ftp://example.com/h", "https://localhost/h"} {
		servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": u, "events": []string{"*"}}), 400, "invalid_request")
	}

	env = servertest.Start(t, insecureWebhooks)
	admin = env.AdminToken()
	var mu sync.Mutex
	hits := 0
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.WriteHeader(http.StatusGone)
	}))
	defer gone.Close()
	id, _ := specLayerWebhook(t, env, admin, gone.URL, "webhook.test", "user.*")
	servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks/"+id+"/test", nil), 202, "")
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := env.As(admin, "GET", "/v1/webhooks/"+id, nil)
		if m := r.Map(t); m["enabled"] == false {
			if m["disabled_reason"] != "gone" {
				t.Errorf("disabled: %v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("410 Gone did not disable the endpoint")
		}
		time.Sleep(20 * time.Millisecond)
	}
	servertest.Expect(t, env.As(admin, "POST", "/v1/webhooks/"+id+"/test", nil), 409, "conflict")
	env.CreateUser(admin, "after@example.com", "a long enough password")
	mu.Lock()
	before := hits
	mu.Unlock()
	if before != 1 {
		t.Errorf("%d requests reached the endpoint, want 1", before)
	}
	found := false
	for _, e := range auditEntries(t, env, admin) {
		found = found || e["action"] == "webhook.disabled"
	}
	if !found {
		t.Error("the disable is not audited")
	}
}

// ---------------------------------------------------------------- §10.3

// TestSpecLayerAppsRegistration: POST /v1/apps with the SPEC's fields:
// 201 with id and client_id, client_secret only for a confidential one;
// the redirect URIs the SPEC allows (https, http://127.0.0.1 and
// http://[::1] on any port, a private scheme) and refuses (other http,
// fragments, wildcards); GET /v1/apps, GET|PATCH|DELETE /v1/apps/{id},
// POST /v1/apps/{id}/roll; a non-developer is 403.
func TestSpecLayerAppsRegistration(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	env.CreateUser(admin, appMember, memberPW)
	member := env.Login(appMember, memberPW)
	body := func(typ string, redirects ...string) map[string]any {
		return map[string]any{"name": "Reporter", "type": typ, "redirect_uris": redirects, "scopes": []string{"workspaces:read"}, "homepage_url": "https://app.example.com"}
	}
	servertest.Expect(t, env.As(member, "POST", "/v1/apps", body("public", "https://app.example.com/cb")), 403, "")

	r := env.As(devTok, "POST", "/v1/apps", body("confidential", "https://app.example.com/cb"))
	servertest.Expect(t, r, 201, "")
	conf := r.Map(t)
	if !strings.HasPrefix(fmt.Sprint(conf["client_id"]), "gci_") || !strings.HasPrefix(fmt.Sprint(conf["client_secret"]), "gcs_") || conf["id"] == nil ||
		conf["name"] != "Reporter" || conf["type"] != "confidential" || !sameList(conf["scopes"], "workspaces:read") || conf["homepage_url"] != "https://app.example.com" {
		t.Fatalf("confidential app: %v", conf)
	}
	r = env.As(devTok, "POST", "/v1/apps", body("public", "http://127.0.0.1/cb", "http://127.0.0.1:8123/cb", "http://[::1]/cb", "http://[::1]:9/cb", "com.example.app:/oauth"))
	servertest.Expect(t, r, 201, "")
	pub := r.Map(t)
	if _, ok := pub["client_secret"]; ok {
		t.Fatalf("a public app has a secret: %v", pub)
	}
	for _, bad := range []string{"http://app.example.com/cb", "https://app.example.com/cb#frag", "https://*.example.com/cb", "https://app.example.com/*",
		"http://localhost/cb", "javascript:alert(1)", "data:text/html,x", "cb", "http://127.0.0.1/cb#x", "https://user@app.example.com/cb"} {
		servertest.Expect(t, env.As(devTok, "POST", "/v1/apps", body("public", bad)), 400, "invalid_request")
	}
	servertest.Expect(t, env.As(devTok, "POST", "/v1/apps", body("mixed", "https://app.example.com/cb")), 400, "invalid_request")

	id := conf["id"].(string)
	r = env.As(devTok, "GET", "/v1/apps", nil)
	servertest.Expect(t, r, 200, "")
	var list struct{ Data []map[string]any }
	r.JSON(t, &list)
	if len(list.Data) != 2 || strings.Contains(string(r.Body), "gcs_") {
		t.Fatalf("list: %s", r.Body)
	}
	r = env.As(devTok, "GET", "/v1/apps/"+id, nil)
	servertest.Expect(t, r, 200, "")
	if _, ok := r.Map(t)["client_secret"]; ok {
		t.Fatalf("secret shown again: %s", r.Body)
	}
	r = env.As(devTok, "PATCH", "/v1/apps/"+id, map[string]any{"name": "Reporter 2"})
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["name"] != "Reporter 2" {
		t.Fatalf("patch: %s", r.Body)
	}
	r = env.As(devTok, "POST", "/v1/apps/"+id+"/roll", map[string]any{"overlap_seconds": 0})
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("roll: %d %s", r.Status, r.Body)
	}
	if s := fmt.Sprint(r.Map(t)["client_secret"]); !strings.HasPrefix(s, "gcs_") || s == conf["client_secret"] {
		t.Fatalf("roll: %s", r.Body)
	}
	// A public app has no secret to roll.
	r = env.As(devTok, "POST", "/v1/apps/"+pub["id"].(string)+"/roll", map[string]any{})
	if r.Status < 400 || r.Status >= 500 {
		t.Fatalf("roll of a public app: %d %s", r.Status, r.Body)
	}
	servertest.Expect(t, env.As(devTok, "DELETE", "/v1/apps/"+id, nil), 204, "")
	servertest.Expect(t, env.As(devTok, "GET", "/v1/apps/"+id, nil), 404, "not_found")
}

// TestSpecLayerAuthorizationCode: the flow as §10.3 words it: the
// metadata's four members; unknown client and unknown redirect URI are an
// error page, never a redirect; plain and missing challenges are refused;
// Allow → code, state, iss; Deny → error=access_denied; the token answer's
// exact members; a code works once, and a second use revokes what it
// issued; consent is remembered; GET /v1/me/authorizations lists
// client_id, name, scopes, granted_at, last_used_at; DELETE revokes every
// token of the grant; admins see and revoke their users'.
func TestSpecLayerAuthorizationCode(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	md := issuerOf(t, env)
	if md["authorization_endpoint"] != w.issuer+"/oauth/authorize" || fmt.Sprint(md["response_types_supported"]) != "[code]" ||
		fmt.Sprint(md["code_challenge_methods_supported"]) != "[S256]" || md["authorization_response_iss_parameter_supported"] != true {
		t.Fatalf("metadata: %v", md)
	}
	s := func() url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {w.public.ClientID}, "redirect_uri": {"http://127.0.0.1:9000/callback"}, "scope": {"workspaces:read"},
			"state": {"xyz"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	}
	for name, mut := range map[string]func(url.Values){
		"unknown client":       func(q url.Values) { q.Set("client_id", "gci_nothing") },
		"unknown redirect uri": func(q url.Values) { q.Set("redirect_uri", "https://evil.example.com/cb") },
		"loopback, other path": func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9000/other") },
	} {
		q := s()
		mut(q)
		r := env.Request("GET", "/oauth/authorize?"+q.Encode(), nil)
		if r.Status != 400 || r.Header.Get("Location") != "" {
			t.Errorf("%s: %d Location %q", name, r.Status, r.Header.Get("Location"))
		}
	}
	for name, mut := range map[string]func(url.Values){
		"plain":             func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"missing challenge": func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") },
	} {
		q := s()
		mut(q)
		cb, resp, body := newUserAgent(t, env.URL).authorize("/oauth/authorize?"+q.Encode(), appMember, memberPW, "")
		if cb == nil || cb.Query().Get("code") != "" || cb.Query().Get("error") == "" || cb.Query().Get("state") != "xyz" {
			t.Errorf("%s: %v %d %.200s", name, cb, resp.StatusCode, body)
		}
	}

	// Allow: code, state and iss; any loopback port.
	v := oauth2.GenerateVerifier()
	q := s()
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(v))
	ua := newUserAgent(t, env.URL)
	cb, resp, body := ua.authorize("/oauth/authorize?"+q.Encode(), appMember, memberPW, "allow")
	if cb == nil {
		t.Fatalf("no redirect: %d %.300s", resp.StatusCode, body)
	}
	if cb.Scheme+"://"+cb.Host+cb.Path != "http://127.0.0.1:9000/callback" || cb.Query().Get("state") != "xyz" || cb.Query().Get("iss") != w.issuer || cb.Query().Get("code") == "" {
		t.Fatalf("callback %s", cb)
	}
	code := cb.Query().Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1:9000/callback"}, "client_id": {w.public.ClientID}, "code_verifier": {v}}
	r := specLayerPost(env, "/oauth/token", form)
	servertest.Expect(t, r, 200, "")
	tok := r.Map(t)
	if k := fmt.Sprint(specLayerKeys(tok)); k != "[access_token expires_in refresh_token scope token_type]" {
		t.Errorf("token answer members %s", k)
	}
	if tok["token_type"] != "bearer" || tok["scope"] != "workspaces:read" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token answer %s (Cache-Control %q)", r.Body, r.Header.Get("Cache-Control"))
	}
	at := tok["access_token"].(string)
	servertest.Expect(t, env.As(at, "GET", "/v1/workspaces", nil), 200, "")
	servertest.Expect(t, env.As(at, "GET", "/v1/users", nil), 403, "insufficient_scope")
	// The code a second time: invalid_grant, and what it issued is revoked.
	servertest.Expect(t, specLayerPost(env, "/oauth/token", form), 400, "invalid_grant")
	servertest.Expect(t, env.As(at, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	servertest.Expect(t, specLayerPost(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {w.public.ClientID}, "refresh_token": {tok["refresh_token"].(string)}}), 400, "invalid_grant")

	// Consent remembered for the same or fewer scopes: no consent page.
	v = oauth2.GenerateVerifier()
	q = s()
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(v))
	q.Set("state", "again")
	cb, resp, body = ua.authorize("/oauth/authorize?"+q.Encode(), appMember, memberPW, "")
	if cb == nil || cb.Query().Get("code") == "" {
		t.Fatalf("remembered consent: %v %d %.300s", cb, resp.StatusCode, body)
	}
	form.Set("code", cb.Query().Get("code"))
	form.Set("code_verifier", v)
	r = specLayerPost(env, "/oauth/token", form)
	servertest.Expect(t, r, 200, "")
	tok = r.Map(t)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	servertest.Expect(t, env.As(at, "GET", "/v1/workspaces", nil), 200, "")
	// Rotation.
	r = specLayerPost(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {w.public.ClientID}, "refresh_token": {rt}})
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["refresh_token"] == rt {
		t.Fatal("refresh did not rotate")
	}
	// Deny: error=access_denied with state and iss (more scopes: consent asked).
	q = s()
	q.Set("scope", "workspaces:read users:read")
	q.Set("state", "deny")
	cb, resp, body = ua.authorize("/oauth/authorize?"+q.Encode(), appMember, memberPW, "deny")
	if cb == nil || cb.Query().Get("error") != "access_denied" || cb.Query().Get("state") != "deny" || cb.Query().Get("iss") != w.issuer || cb.Query().Get("code") != "" {
		t.Fatalf("deny: %v %d %.300s", cb, resp.StatusCode, body)
	}

	// The user's authorisations, and an admin's view of them.
	member := env.Login(appMember, memberPW)
	r = env.As(member, "GET", "/v1/me/authorizations", nil)
	servertest.Expect(t, r, 200, "")
	var auths struct{ Data []map[string]any }
	r.JSON(t, &auths)
	if len(auths.Data) != 1 {
		t.Fatalf("authorizations: %s", r.Body)
	}
	a := auths.Data[0]
	specLayerHas(t, "authorization", a, "client_id", "name", "scopes", "granted_at", "last_used_at")
	if a["client_id"] != w.public.ClientID || !sameList(a["scopes"], "workspaces:read") || a["last_used_at"] == nil {
		t.Errorf("authorization %v", a)
	}
	servertest.Expect(t, env.As(member, "DELETE", "/v1/me/authorizations/"+w.public.ClientID, nil), 204, "")
	servertest.Expect(t, env.As(at, "GET", "/v1/workspaces", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(member, "DELETE", "/v1/me/authorizations/"+w.public.ClientID, nil), 404, "not_found")
}

// TestSpecLayerThirdPartyAppsSetting: "third_party_apps" is "approved"
// by default, takes "any" and "none" and nothing else; an application of
// another account needs this account's approval (PUT
// /v1/apps/{id}/approval by id or client id, admins only).
func TestSpecLayerThirdPartyAppsSetting(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	r := env.As(w.admin, "GET", "/v1/settings", nil)
	if v := r.Map(t)["third_party_apps"]; v != "approved" {
		t.Fatalf("third_party_apps by default %v", v)
	}
	for _, v := range []string{"any", "none", "approved"} {
		servertest.Expect(t, env.As(w.admin, "PUT", "/v1/settings", map[string]any{"third_party_apps": v}), 200, "")
	}
	servertest.Expect(t, env.As(w.admin, "PUT", "/v1/settings", map[string]any{"third_party_apps": "Any"}), 400, "invalid_request")
	// Another account's developer and application.
	_, otherAdmin := env.CreateAccount(w.admin, "vendor", "vendor@example.com", "vendor password long")
	vdev := env.CreateUser(otherAdmin, "vdev@example.com", memberPW)
	servertest.Expect(t, env.As(otherAdmin, "PUT", "/v1/developers/"+vdev, nil), 204, "")
	foreign := registerApp(t, env, env.Login("vdev@example.com", memberPW), "public", []string{"http://127.0.0.1/callback"}, nil)
	conf := oauthConfig(env, foreign, "http://127.0.0.1/callback", "workspaces:read")
	if q := w.code(t, conf, oauth2.GenerateVerifier(), ""); q.Get("error") != "access_denied" {
		t.Fatalf("an unapproved foreign app: %v", q)
	}
	servertest.Expect(t, env.As(w.devTok, "PUT", "/v1/apps/"+foreign.ClientID+"/approval", nil), 403, "")
	r = env.As(w.admin, "PUT", "/v1/apps/"+foreign.ClientID+"/approval", nil)
	if r.Status/100 != 2 {
		t.Fatalf("approval by client id: %d %s", r.Status, r.Body)
	}
	if q := w.code(t, conf, oauth2.GenerateVerifier(), "allow"); q.Get("code") == "" {
		t.Fatalf("an approved foreign app: %v", q)
	}
}

// ---------------------------------------------------------------- §10.4

// TestSpecLayerDeviceGrant: POST /oauth/device_authorization answers
// exactly the six members with expires_in 600 and interval 5, a user code
// of 8 of BCDFGHJKLMNPQRSTVWXZ as XXXX-XXXX; the token endpoint answers
// authorization_pending, slow_down, access_denied and expired_token.
func TestSpecLayerDeviceGrant(t *testing.T) {
	w := newDeviceWorld(t)
	env := w.env
	r := startDevice(env, w.public.ClientID, "workspaces:read")
	servertest.Expect(t, r, 200, "")
	da := r.Map(t)
	if k := fmt.Sprint(specLayerKeys(da)); k != "[device_code expires_in interval user_code verification_uri verification_uri_complete]" {
		t.Errorf("device authorization members %s", k)
	}
	if da["expires_in"] != float64(600) || da["interval"] != float64(5) || !userCodeRe.MatchString(fmt.Sprint(da["user_code"])) ||
		da["verification_uri"] != w.issuer+"/device" {
		t.Fatalf("device authorization %v", da)
	}
	dc := da["device_code"].(string)
	servertest.Expect(t, poll(t, env, w.public, dc), 400, "authorization_pending")
	servertest.Expect(t, poll(t, env, w.public, dc), 400, "slow_down")
	if r := env.Request("GET", "/device", nil); r.Status != 200 && r.Status != 303 {
		t.Errorf("GET /device: %d", r.Status)
	}
	ua := newUserAgent(t, env.URL)
	ua.enterCode(fmt.Sprint(da["user_code"]), "deny")
	time.Sleep(5100 * time.Millisecond) // the interval the answer asked for
	servertest.Expect(t, poll(t, env, w.public, dc), 400, "access_denied")

	short := newDeviceWorld(t, func(c *server.Config) { c.DeviceCodeLifetime = time.Second })
	r = startDevice(short.env, short.public.ClientID, "workspaces:read")
	servertest.Expect(t, r, 200, "")
	dc = r.Map(t)["device_code"].(string)
	time.Sleep(1100 * time.Millisecond)
	servertest.Expect(t, poll(t, short.env, short.public, dc), 400, "expired_token")

	// Errors of the endpoint itself.
	servertest.Expect(t, startDevice(env, "gci_nothing", "workspaces:read"), 401, "invalid_client")
}

// TestSpecLayerDynamicRegistration: POST /oauth/register is off unless
// --dynamic-registration; on, it registers public clients only (loopback
// or https redirect URIs), owned by no account, so an "approved" account
// must approve them.
func TestSpecLayerDynamicRegistration(t *testing.T) {
	off := servertest.Start(t)
	r := off.Request("POST", "/oauth/register", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "client_name": "cli"})
	if r.Status != 404 && r.Status != 403 {
		t.Fatalf("registration off: %d %s", r.Status, r.Body)
	}
	if _, ok := issuerOf(t, off)["registration_endpoint"]; ok {
		t.Error("registration_endpoint advertised while off")
	}
	w := newAppsWorld(t, func(c *server.Config) { c.DynamicRegistration = true })
	env := w.env
	if issuerOf(t, env)["registration_endpoint"] != w.issuer+"/oauth/register" {
		t.Errorf("registration_endpoint not advertised")
	}
	r = env.Request("POST", "/oauth/register", map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "client_name": "cli", "token_endpoint_auth_method": "none"})
	servertest.Expect(t, r, 201, "")
	reg := r.Map(t)
	if _, ok := reg["client_secret"]; ok || !strings.HasPrefix(fmt.Sprint(reg["client_id"]), "gci_") {
		t.Fatalf("registered %s", r.Body)
	}
	for name, b := range map[string]map[string]any{
		"confidential": {"redirect_uris": []string{"https://app.example.com/cb"}, "token_endpoint_auth_method": "client_secret_basic"},
		"http":         {"redirect_uris": []string{"http://app.example.com/cb"}},
		"private":      {"redirect_uris": []string{"com.example.app:/cb"}},
	} {
		r := env.Request("POST", "/oauth/register", b)
		if r.Status != 400 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	app := thirdPartyApp{ClientID: reg["client_id"].(string)}
	conf := oauthConfig(env, app, "http://127.0.0.1/cb", "workspaces:read")
	// Unverified: the refusal is a page that names access_denied, and only
	// a link back (docs/third-party-apps.md).
	v := oauth2.GenerateVerifier()
	cb, resp, body := newUserAgent(t, env.URL).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), appMember, memberPW, "")
	if cb != nil || resp.StatusCode != 400 || !strings.Contains(body, "access_denied") || !strings.Contains(body, "Unverified") {
		t.Fatalf("an unapproved registered client: %v %d", cb, resp.StatusCode)
	}
	servertest.Expect(t, env.As(w.admin, "PUT", "/v1/apps/"+app.ClientID+"/approval", nil), 200, "")
	if q := w.code(t, conf, oauth2.GenerateVerifier(), "allow"); q.Get("code") == "" {
		t.Fatalf("an approved registered client: %v", q)
	}
}

// TestSpecLayerProtectedResource: the gateway serves
// /.well-known/oauth-protected-resource with resource,
// authorization_servers, scopes_supported (empty without a routes file)
// and bearer_methods_supported; its 401s carry WWW-Authenticate: Bearer
// resource_metadata="…"; a token bound to another resource is refused
// there.
func TestSpecLayerProtectedResource(t *testing.T) {
	env := gatewayEnv(t, "")
	r := env.Request("GET", "/.well-known/oauth-protected-resource", nil)
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	specLayerHas(t, "protected resource metadata", m, "resource", "authorization_servers", "scopes_supported", "bearer_methods_supported")
	issuer := issuerOf(t, env)["issuer"].(string)
	if s, ok := m["scopes_supported"].([]any); !ok || len(s) != 0 {
		t.Errorf("scopes_supported without a routes file: %v", m["scopes_supported"])
	}
	if !sameList(m["authorization_servers"], issuer) {
		t.Errorf("authorization_servers %v, want [%s]", m["authorization_servers"], issuer)
	}
	r = env.Request("GET", "/api/things", nil)
	servertest.Expect(t, r, 401, "")
	if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `resource_metadata="`+issuer+`/.well-known/oauth-protected-resource"`) {
		t.Errorf("gateway 401 WWW-Authenticate %q", h)
	}
	// A token bound to another resource is refused; one bound to this one works.
	status, reg := registerClient(t, env.Client, env.URL, map[string]any{"redirect_uris": []string{"http://127.0.0.1:49152/cb"}, "client_name": "agent"})
	if status != 201 {
		t.Fatalf("register: %d %v", status, reg)
	}
	cid := reg["client_id"].(string)
	servertest.Expect(t, env.As(env.AdminToken(), "PUT", "/v1/apps/"+cid+"/approval", nil), 200, "")
	other, err := codeToken(t, env, cid, "https://other.example.com", "https://other.example.com")
	if err != nil {
		t.Fatalf("a token for another resource: %v", err)
	}
	if r := env.As(other.AccessToken, "GET", "/api/things", nil); r.Status != 401 && r.Status != 403 {
		t.Errorf("a token bound to another resource at the gateway: %d %s", r.Status, r.Body)
	}
	mine, err := codeToken(t, env, cid, m["resource"].(string), m["resource"].(string))
	if err != nil {
		t.Fatal(err)
	}
	servertest.Expect(t, env.As(mine.AccessToken, "GET", "/api/things", nil), 200, "")
}

// ---------------------------------------------------------------- §10.5

// specLayerPlan is a full plan as the SPEC names its fields.
func specLayerPlan(extra map[string]any) map[string]any {
	m := map[string]any{
		"rate_limit":  map[string]any{"daily": 1000, "burst": 50, "burst_window_seconds": 60},
		"quota":       map[string]any{"limit": 100, "period": "month"},
		"allowed_ips": []string{"203.0.113.0/24", "2001:db8::/32", "127.0.0.1"},
		"metadata":    map[string]any{"plan": "free", "seats": 3},
		"external_id": "cus_42",
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// specLayerCheckPlan checks a resource's plan as read back.
func specLayerCheckPlan(t *testing.T, what string, m map[string]any, ips bool, remaining bool) {
	t.Helper()
	rl, _ := m["rate_limit"].(map[string]any)
	q, _ := m["quota"].(map[string]any)
	md, _ := m["metadata"].(map[string]any)
	if rl["daily"] != float64(1000) || rl["burst"] != float64(50) || rl["burst_window_seconds"] != float64(60) {
		t.Errorf("%s: rate_limit %v", what, m["rate_limit"])
	}
	if q["limit"] != float64(100) || q["period"] != "month" {
		t.Errorf("%s: quota %v", what, m["quota"])
	}
	if _, ok := q["remaining"].(float64); ok != remaining {
		t.Errorf("%s: quota %v (remaining expected: %v)", what, q, remaining)
	}
	if md["plan"] != "free" || md["seats"] != float64(3) || m["external_id"] != "cus_42" {
		t.Errorf("%s: metadata %v external_id %v", what, m["metadata"], m["external_id"])
	}
	if ips && !sameList(m["allowed_ips"], "203.0.113.0/24", "2001:db8::/32", "127.0.0.1/32") {
		t.Errorf("%s: allowed_ips %v", what, m["allowed_ips"])
	}
}

// specLayerFind returns the item of a list answer with id (under key).
func specLayerFind(t *testing.T, r *servertest.Response, key, id string) map[string]any {
	t.Helper()
	servertest.Expect(t, r, 200, "")
	var l struct{ Data []map[string]any }
	r.JSON(t, &l)
	for _, d := range l.Data {
		if d[key] == id {
			return d
		}
	}
	t.Fatalf("%s %s not listed: %s", key, id, r.Body)
	return nil
}

// TestSpecLayerPlanFields: rate_limit, quota, allowed_ips, metadata and
// external_id on every credential kind (API tokens, client credentials,
// API access applications, OAuth applications) and rate_limit, quota,
// metadata, external_id on users; quota's remaining read back in lists;
// bad values 400 naming the field, nothing stored.
func TestSpecLayerPlanFields(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, cred := developer(t, env)
	enableAPITokens(t, env, admin)

	r := env.As(admin, "POST", "/v1/api-tokens", specLayerPlan(map[string]any{"name": "planned"}))
	servertest.Expect(t, r, 201, "")
	ak := r.Map(t)
	specLayerCheckPlan(t, "api token answer", ak, true, false)
	specLayerCheckPlan(t, "api token list", specLayerFind(t, env.As(admin, "GET", "/v1/api-tokens", nil), "id", ak["id"].(string)), true, true)

	r = env.As(devTok, "PATCH", "/v1/credentials/"+cred.ID, specLayerPlan(nil))
	servertest.Expect(t, r, 200, "")
	specLayerCheckPlan(t, "credential patch", r.Map(t), true, false)
	specLayerCheckPlan(t, "credential list", specLayerFind(t, env.As(devTok, "GET", "/v1/credentials", nil), "id", cred.ID), true, true)

	r = env.As(admin, "POST", "/v1/api-access", specLayerPlan(nil))
	servertest.Expect(t, r, 201, "")
	r = env.As(admin, "GET", "/v1/api-access", nil)
	servertest.Expect(t, r, 200, "")
	specLayerCheckPlan(t, "api access", r.Map(t), true, true)

	r = env.As(devTok, "POST", "/v1/apps", specLayerPlan(map[string]any{"name": "planned app", "type": "public", "redirect_uris": []string{"http://127.0.0.1/cb"}}))
	servertest.Expect(t, r, 201, "")
	app := r.Map(t)
	specLayerCheckPlan(t, "app answer", app, true, false)
	r = env.As(devTok, "GET", "/v1/apps/"+app["id"].(string), nil)
	servertest.Expect(t, r, 200, "")
	specLayerCheckPlan(t, "app read", r.Map(t), true, true)

	user := specLayerPlan(map[string]any{"email": "planned@example.com", "name": "P", "password": "a long enough password", "roles": []string{}})
	servertest.Expect(t, env.As(admin, "POST", "/v1/users", user), 400, "invalid_request") // users take no allow-list
	delete(user, "allowed_ips")
	r = env.As(admin, "POST", "/v1/users", user)
	servertest.Expect(t, r, 201, "")
	uid := r.Map(t)["id"].(string)
	specLayerCheckPlan(t, "user answer", r.Map(t), false, false)
	r = env.As(admin, "GET", "/v1/users/"+uid, nil)
	servertest.Expect(t, r, 200, "")
	specLayerCheckPlan(t, "user read", r.Map(t), false, true)
	specLayerCheckPlan(t, "user list", specLayerFind(t, env.As(admin, "GET", "/v1/users?limit=200", nil), "id", uid), false, true)

	// Bad values: 400 naming the field; nothing stored.
	big := map[string]any{"k": strings.Repeat("x", 4100)}
	for field, v := range map[string]any{
		"metadata":                   big,
		"metadata ":                  []int{1},
		"external_id":                strings.Repeat("e", 129),
		"allowed_ips":                []string{"10.0.0.300"},
		"quota.period":               map[string]any{"limit": 5, "period": "week"},
		"quota.limit":                map[string]any{"limit": 0, "period": "day"},
		"rate_limit.burst":           map[string]any{"daily": 10, "burst": -1, "burst_window_seconds": 20},
		"rate_limit.daily":           map[string]any{"daily": "x", "burst": 1, "burst_window_seconds": 20},
		"rate_limit.burst_window_ss": map[string]any{"daily": 10, "burst": 1, "burst_window_seconds": 0},
	} {
		key := strings.TrimSpace(strings.SplitN(field, ".", 2)[0])
		r := env.As(admin, "PATCH", "/v1/api-tokens/"+ak["id"].(string), map[string]any{key: v})
		servertest.Expect(t, r, 400, "invalid_request")
		if !strings.Contains(string(r.Body), key) {
			t.Errorf("%s: the error does not name %s: %s", field, key, r.Body)
		}
	}
	specLayerCheckPlan(t, "api token after refusals", specLayerFind(t, env.As(admin, "GET", "/v1/api-tokens", nil), "id", ak["id"].(string)), true, true)
	// 128 characters (not bytes) is the limit.
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+ak["id"].(string), map[string]any{"external_id": strings.Repeat("é", 128)}), 200, "")
	// Empty values clear (docs/plans.md).
	r = env.As(admin, "PATCH", "/v1/api-tokens/"+ak["id"].(string), map[string]any{"rate_limit": nil, "quota": nil, "allowed_ips": []string{}, "metadata": map[string]any{}, "external_id": ""})
	servertest.Expect(t, r, 200, "")
	got := specLayerFind(t, env.As(admin, "GET", "/v1/api-tokens", nil), "id", ak["id"].(string))
	for _, k := range []string{"rate_limit", "quota", "allowed_ips", "metadata", "external_id"} {
		if v, ok := got[k]; ok && v != nil && fmt.Sprint(v) != "[]" && fmt.Sprint(v) != "map[]" && v != "" {
			t.Errorf("cleared %s reads %v", k, v)
		}
	}
}

// TestSpecLayerQuotaExact: a daily quota of 5 on an API token; 16
// requests released together over connections opened in advance: exactly
// 5 served, each X-RateLimit-Quota-Remaining from 4 to 0 seen once, the
// "quota" policy in RateLimit-Policy; the rest 422 quota_exceeded with
// Retry-After and not charged (the token's daily budget and the quota's
// remaining show only the 5); quota.threshold at 80 % and 100 %, once
// each; the status follows --rate-limit-status.
func TestSpecLayerQuotaExact(t *testing.T) {
	for _, status := range []int{422, 429} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			env := servertest.Start(t, insecureWebhooks, func(c *server.Config) { c.RateLimitStatus = status })
			admin := env.AdminToken()
			rc := specLayerNewReceiver(t)
			_, secret := specLayerWebhook(t, env, admin, rc.URL, "quota.threshold")
			enableAPITokens(t, env, admin)
			r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "metered", "quota": map[string]any{"limit": 5, "period": "day"}})
			servertest.Expect(t, r, 201, "")
			tok := r.Map(t)
			id, secretTok := tok["id"].(string), tok["token"].(string)
			var shots []volleyReq
			for range 16 {
				req, _ := http.NewRequest("GET", env.URL+"/v1/workspaces", nil)
				req.Header.Set("X-API-Token", secretTok)
				shots = append(shots, volleyReq{req: req})
			}
			res := volley(t, shots)
			seen := map[string]int{}
			served := 0
			daily := 50000
			for _, r := range res.resps {
				switch r.Status {
				case 200:
					served++
					seen[r.Header.Get("X-RateLimit-Quota-Remaining")]++
					if p := r.Header.Get("RateLimit-Policy"); !regexp.MustCompile(`"quota";q=5;w=\d+`).MatchString(p) {
						t.Errorf("RateLimit-Policy %q has no quota policy", p)
					}
					if d, err := strconv.Atoi(r.Header.Get("X-RateLimit-Daily-Remaining")); err == nil && d < daily {
						daily = d
					}
				case status:
					servertest.Expect(t, r, status, "quota_exceeded")
					ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
					if err != nil || ra <= 0 || ra > 86400 {
						t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
					}
					if r.Header.Get("X-RateLimit-Quota-Remaining") != "0" {
						t.Errorf("a refusal's X-RateLimit-Quota-Remaining %q", r.Header.Get("X-RateLimit-Quota-Remaining"))
					}
				default:
					t.Errorf("answer %d %s", r.Status, r.Body)
				}
			}
			if served != 5 {
				t.Fatalf("%d served of a quota of 5", served)
			}
			for _, n := range []string{"0", "1", "2", "3", "4"} {
				if seen[n] != 1 {
					t.Errorf("X-RateLimit-Quota-Remaining %s seen %d times: %v", n, seen[n], seen)
				}
			}
			if daily != 50000-5 {
				t.Errorf("the token's daily budget went to %d after 5 served: refusals were charged", daily)
			}
			q := specLayerFind(t, env.As(admin, "GET", "/v1/api-tokens", nil), "id", id)["quota"].(map[string]any)
			if q["remaining"] != float64(0) || q["limit"] != float64(5) || q["period"] != "day" {
				t.Errorf("quota read back %v", q)
			}
			// Raising the limit by one admits exactly one more: nothing refused was charged.
			servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+id, map[string]any{"quota": map[string]any{"limit": 6, "period": "day"}}), 200, "")
			servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", secretTok), 200, "")
			servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", secretTok), status, "quota_exceeded")
			// 80 % and 100 %: once each.
			for _, th := range []string{"80", "100"} {
				h := rc.wait(t, "quota.threshold", func(h specLayerHook) bool { return fmt.Sprint(specLayerData(h)["threshold"]) == th })
				d := specLayerData(h)
				if specLayerVerify(t, h, secret) != 1 || fmt.Sprint(d["period"]) != time.Now().UTC().Format("2006-01-02") || d["credential_id"] != id {
					t.Errorf("quota.threshold %s", h.Body)
				}
			}
			time.Sleep(200 * time.Millisecond)
			n := map[string]int{}
			for _, h := range rc.got {
				n[fmt.Sprint(specLayerData(h)["threshold"])+"/"+fmt.Sprint(specLayerData(h)["limit"])]++
			}
			if n["80/5"] != 1 || n["100/5"] != 1 {
				t.Errorf("threshold events %v", n)
			}
		})
	}
}

// TestSpecLayerAllowedIPs: a request from outside a credential's
// allowed_ips is 403 ip_not_allowed, carries no rate-limit headers, is not
// charged to any budget and is counted as forbidden in the usage; every
// credential kind, and the client credentials grant itself.
func TestSpecLayerAllowedIPs(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.UsageFlushInterval = 50 * time.Millisecond })
	admin, _, devTok, cred := developer(t, env)
	enableAPITokens(t, env, admin)
	far := []string{"203.0.113.0/24", "2001:db8::/32"}
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "fenced", "allowed_ips": far})
	servertest.Expect(t, r, 201, "")
	ak := r.Map(t)
	app := r
	_ = app
	ct := accessToken(t, clientToken(env, cred))
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+cred.ID, map[string]any{"allowed_ips": far}), 200, "")
	r = env.As(admin, "POST", "/v1/api-access", map[string]any{"allowed_ips": far})
	servertest.Expect(t, r, 201, "")
	apiAccess := r.Map(t)["access_token"].(string)
	before := env.As(admin, "GET", "/v1/me", nil).Header.Get("X-RateLimit-Daily-Remaining")

	check := func(name string, r *servertest.Response) {
		t.Helper()
		servertest.Expect(t, r, 403, "ip_not_allowed")
		for _, h := range []string{"X-RateLimit-Burst-Remaining", "X-RateLimit-Daily-Remaining", "RateLimit", "RateLimit-Policy"} {
			if r.Header.Get(h) != "" {
				t.Errorf("%s: a refusal carries %s", name, h)
			}
		}
	}
	for range 3 {
		check("api token", env.Request("GET", "/v1/workspaces", nil, "X-API-Token", ak["token"].(string)))
		check("client credential token", env.As(ct, "GET", "/v1/workspaces", nil))
		check("api access token", env.As(apiAccess, "GET", "/v1/workspaces", nil))
		check("forward auth", env.As(apiAccess, "GET", "/v1/auth/check", nil))
	}
	check("client credentials grant", clientToken(env, cred))
	// The admin's own budget (the API access token acts as the admin) is untouched.
	after := env.As(admin, "GET", "/v1/me", nil).Header.Get("X-RateLimit-Daily-Remaining")
	b, _ := strconv.Atoi(before)
	a, _ := strconv.Atoi(after)
	if a != b-1 {
		t.Errorf("daily remaining %s then %s: refused requests were charged", before, after)
	}
	// Counted as forbidden for the API token.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := env.As(admin, "GET", "/v1/usage?group_by=credential&credential_id="+ak["id"].(string), nil)
		servertest.Expect(t, r, 200, "")
		var u struct{ Data []map[string]any }
		r.JSON(t, &u)
		if len(u.Data) == 1 && u.Data[0]["forbidden"] == float64(3) {
			if u.Data[0]["served"] != float64(0) || u.Data[0]["credential_kind"] != "api_token" {
				t.Errorf("usage %v", u.Data[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Widened to this address: served.
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+ak["id"].(string), map[string]any{"allowed_ips": append(far, "127.0.0.0/8")}), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", ak["token"].(string)), 200, "")
}

// TestSpecLayerMetadataOut: metadata and external_id come back in
// introspection and, as X-Gatehouse-External-Id, from forward auth; a
// credential's win over its user's.
func TestSpecLayerMetadataOut(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, devTok, cred := developer(t, env)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{"external_id": "usr_7", "metadata": map[string]any{"tier": "gold"}}), 200, "")
	pw := env.Login("dev@example.com", memberPW)
	r := env.As(pw, "GET", "/v1/auth/check", nil)
	servertest.Expect(t, r, 200, "")
	if r.Header.Get("X-Gatehouse-External-Id") != "usr_7" {
		t.Errorf("forward auth for a password token: X-Gatehouse-External-Id %q", r.Header.Get("X-Gatehouse-External-Id"))
	}
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+cred.ID, map[string]any{"external_id": "cus_42", "metadata": map[string]any{"plan": "free"}}), 200, "")
	ct := accessToken(t, clientToken(env, cred))
	r = env.As(ct, "GET", "/v1/auth/check", nil)
	servertest.Expect(t, r, 200, "")
	if r.Header.Get("X-Gatehouse-External-Id") != "cus_42" {
		t.Errorf("forward auth: X-Gatehouse-External-Id %q", r.Header.Get("X-Gatehouse-External-Id"))
	}
	in := introspectAs(t, env, admin, ct)
	md, _ := in["metadata"].(map[string]any)
	if in["active"] != true || in["external_id"] != "cus_42" || md["plan"] != "free" {
		t.Errorf("introspection %v", in)
	}
	in = introspectAs(t, env, admin, pw)
	md, _ = in["metadata"].(map[string]any)
	if in["external_id"] != "usr_7" || md["tier"] != "gold" {
		t.Errorf("introspection of a password token %v", in)
	}
}

// TestSpecLayerUsage: GET /v1/usage with from, to, group_by
// day|user|credential, user_id, credential_id → {"data":[…],"next_cursor"}
// rows of exactly the SPEC's members; Accept: text/csv gives CSV; the
// scope usage:read; bad input 400.
func TestSpecLayerUsage(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.UsageFlushInterval = 50 * time.Millisecond })
	admin, devID, _, cred := developer(t, env)
	enableAPITokens(t, env, admin)
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "u"})
	ak := r.Map(t)
	ct := accessToken(t, clientToken(env, cred))
	for range 4 {
		servertest.Expect(t, env.As(ct, "GET", "/v1/workspaces", nil), 200, "")
	}
	servertest.Expect(t, env.As(ct, "GET", "/v1/users", nil), 200, "")
	for range 2 {
		servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", ak["token"].(string)), 200, "")
	}
	today := time.Now().UTC().Format("2006-01-02")
	q := "from=" + today + "&to=" + today
	var rows []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = env.As(admin, "GET", "/v1/usage?"+q+"&group_by=credential&credential_id="+cred.ClientID, nil)
		servertest.Expect(t, r, 200, "")
		var u struct{ Data []map[string]any }
		r.JSON(t, &u)
		rows = u.Data
		if len(rows) == 1 && rows[0]["served"] == float64(5) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if k := fmt.Sprint(specLayerKeys(rows[0])); k != "[credential_id credential_kind forbidden rate_limited served unauthorized]" {
		t.Errorf("credential row members %s", k)
	}
	if rows[0]["credential_id"] != cred.ClientID || rows[0]["credential_kind"] != "client_credential" {
		t.Errorf("row %v", rows[0])
	}
	r = env.As(admin, "GET", "/v1/usage?"+q+"&group_by=user&user_id="+devID, nil)
	servertest.Expect(t, r, 200, "")
	var u struct{ Data []map[string]any }
	r.JSON(t, &u)
	if len(u.Data) != 1 || fmt.Sprint(specLayerKeys(u.Data[0])) != "[forbidden rate_limited served unauthorized user_id]" || u.Data[0]["served"] != float64(6) { // 5 through the credential, 1 making it
		t.Errorf("user rows %s", r.Body)
	}
	r = env.As(admin, "GET", "/v1/usage?"+q+"&group_by=day", nil)
	servertest.Expect(t, r, 200, "")
	u.Data = nil
	r.JSON(t, &u)
	if len(u.Data) != 1 || u.Data[0]["day"] != today || fmt.Sprint(specLayerKeys(u.Data[0])) != "[day forbidden rate_limited served unauthorized]" {
		t.Errorf("day rows %s", r.Body)
	}
	// CSV by Accept.
	r = env.As(admin, "GET", "/v1/usage?"+q+"&group_by=credential", nil, "Accept", "text/csv")
	servertest.Expect(t, r, 200, "")
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("csv %q: %v", r.Body, err)
	}
	if strings.Join(recs[0], ",") != "credential_id,credential_kind,served,unauthorized,forbidden,rate_limited" {
		t.Errorf("csv header %q", recs[0])
	}
	// Paging: next_cursor while more remain.
	r = env.As(admin, "GET", "/v1/usage?"+q+"&group_by=credential&limit=1", nil)
	servertest.Expect(t, r, 200, "")
	if c, _ := r.Map(t)["next_cursor"].(string); c == "" {
		t.Errorf("no next_cursor with two rows a page of one: %s", r.Body)
	}
	// usage:read.
	env.CreateUser(admin, appMember, memberPW)
	servertest.Expect(t, env.As(env.Login(appMember, memberPW), "GET", "/v1/usage", nil), 403, "")
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "narrow", "scopes": []string{"workspaces:read"}})
	servertest.Expect(t, env.Request("GET", "/v1/usage", nil, "X-API-Token", r.Map(t)["token"].(string)), 403, "insufficient_scope")
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "reader", "scopes": []string{"usage:read"}})
	servertest.Expect(t, env.Request("GET", "/v1/usage", nil, "X-API-Token", r.Map(t)["token"].(string)), 200, "")
	for _, bad := range []string{"from=2026-13-01", "from=" + today + "&to=2000-01-01", "group_by=week", "from=2024-01-01&to=2026-01-01", "cursor=zzz"} {
		servertest.Expect(t, env.As(admin, "GET", "/v1/usage?"+bad, nil), 400, "invalid_request")
	}
}

// TestSpecLayerListsPagedAndAudited: §10's "every list paged, every
// change audited" for the lists and changes §10.2–§10.3 add: webhooks,
// deliveries, apps, and a user's authorisations (also as an admin sees
// them, GET|DELETE /v1/users/{id}/authorizations) answer
// {"data","next_cursor"} with ?limit=; a garbage cursor is 400; app,
// webhook and authorisation changes are in the audit log. Consent given
// for more scopes is remembered for fewer.
func TestSpecLayerListsPagedAndAudited(t *testing.T) {
	w := newAppsWorld(t, insecureWebhooks)
	env := w.env
	rc := specLayerNewReceiver(t)
	whID, _ := specLayerWebhook(t, env, w.admin, rc.URL+"/a")
	specLayerWebhook(t, env, w.admin, rc.URL+"/b", "webhook.test")
	servertest.Expect(t, env.As(w.admin, "POST", "/v1/webhooks/"+whID+"/test", nil), 202, "")
	servertest.Expect(t, env.As(w.admin, "POST", "/v1/webhooks/"+whID+"/test", nil), 202, "")

	// Consent for two scopes, then fewer: no consent page.
	conf := oauthConfig(env, w.confidential, appRedirect, "workspaces:read", "users:read")
	code := w.code(t, conf, oauth2.GenerateVerifier(), "allow").Get("code")
	if code == "" {
		t.Fatal("no code")
	}
	fewer := oauthConfig(env, w.confidential, appRedirect, "workspaces:read")
	v := oauth2.GenerateVerifier()
	cb, resp, _ := newUserAgent(t, env.URL).authorize(fewer.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), appMember, memberPW, "")
	if cb == nil || cb.Query().Get("code") == "" {
		t.Fatalf("consent for fewer scopes asked again: %d", resp.StatusCode)
	}
	pub := oauthConfig(env, w.public, "http://127.0.0.1/callback", "workspaces:read")
	w.code(t, pub, oauth2.GenerateVerifier(), "allow")

	member := env.Login(appMember, memberPW)
	for who, path := range map[string]string{
		"webhooks":                  "/v1/webhooks",
		"deliveries":                "/v1/webhooks/" + whID + "/deliveries",
		"apps":                      "/v1/apps",
		"me/authorizations":         "/v1/me/authorizations",
		"users/{id}/authorizations": "/v1/users/" + w.memberID + "/authorizations",
	} {
		tok := w.admin
		if who == "me/authorizations" {
			tok = member
		}
		if who == "apps" {
			tok = w.devTok
		}
		deadline := time.Now().Add(10 * time.Second)
		var seen []string
		for {
			seen = nil
			next := path + "?limit=1"
			for range 10 {
				r := env.As(tok, "GET", next, nil)
				servertest.Expect(t, r, 200, "")
				var page struct {
					Data       []map[string]any `json:"data"`
					NextCursor string           `json:"next_cursor"`
				}
				r.JSON(t, &page)
				if len(page.Data) > 1 {
					t.Fatalf("%s: %d items on a page of 1", who, len(page.Data))
				}
				for _, d := range page.Data {
					seen = append(seen, fmt.Sprint(d["id"], d["client_id"]))
				}
				if page.NextCursor == "" {
					break
				}
				next = path + "?limit=1&cursor=" + url.QueryEscape(page.NextCursor)
			}
			if len(seen) >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(seen) < 2 {
			t.Errorf("%s: walked %v, want at least 2 items one a page", who, seen)
		}
		if r := env.As(tok, "GET", path+"?cursor=%ff%00", nil); r.Status != 400 {
			t.Errorf("%s with a garbage cursor: %d %s", who, r.Status, r.Body)
		}
	}
	// An admin revokes a user's authorisation.
	servertest.Expect(t, env.As(w.admin, "DELETE", "/v1/users/"+w.memberID+"/authorizations/"+w.public.ClientID, nil), 204, "")
	servertest.Expect(t, env.As(w.admin, "DELETE", "/v1/users/"+w.memberID+"/authorizations/"+w.public.ClientID, nil), 404, "not_found")

	// Audited.
	servertest.Expect(t, env.As(w.devTok, "PATCH", "/v1/apps/"+w.public.ID, map[string]any{"name": "renamed"}), 200, "")
	servertest.Expect(t, env.As(w.devTok, "DELETE", "/v1/apps/"+w.public.ID, nil), 204, "")
	actions := map[string]bool{}
	for _, e := range auditEntries(t, env, w.admin) {
		actions[fmt.Sprint(e["action"])] = true
	}
	var missing []string
	for _, prefix := range []string{"app.create", "app.update", "app.delete", "webhook.create", "webhook.test", "app.authorize", "app.authorization_revoke"} {
		found := false
		for a := range actions {
			found = found || strings.HasPrefix(a, prefix)
		}
		if !found {
			missing = append(missing, prefix)
		}
	}
	if len(missing) > 0 {
		t.Errorf("not audited: %v (actions: %v)", missing, actions)
	}
}

// TestSpecLayerMetadataBound: metadata is a JSON object of at most 4 KiB
// (4096 bytes compacted: exactly 4096 is taken, 4097 refused);
// external_id at most 128 characters.
func TestSpecLayerMetadataBound(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	uid := env.CreateUser(admin, "m@example.com", memberPW)
	// {"k":"…"} is 8 bytes around the value.
	for n, want := range map[int]int{4096 - 8: 200, 4097 - 8: 400} {
		r := env.As(admin, "PATCH", "/v1/users/"+uid, map[string]any{"metadata": map[string]any{"k": strings.Repeat("x", n)}})
		if r.Status != want {
			t.Errorf("metadata of %d bytes: %d %s, want %d", n+8, r.Status, r.Body, want)
		}
	}
	// Whitespace does not count: the object is stored compacted.
	spaced := `{"metadata": {"k"  :  "` + strings.Repeat("x", 4096-8) + `"   }}`
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+uid, spaced), 200, "")
	for _, bad := range []string{`{"metadata":"x"}`, `{"metadata":[1]}`, `{"metadata":5}`, `{"metadata":{"a":1,"A":2}}`, `{"metadata":{"a":1e400}}`} {
		servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+uid, bad), 400, "invalid_request")
	}
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+uid, map[string]any{"external_id": strings.Repeat("x", 128)}), 200, "")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+uid, map[string]any{"external_id": strings.Repeat("x", 129)}), 400, "invalid_request")
}

// TestSpecLayerEveryBudget: "a request is admitted only if every budget
// it counts against and every limit set on its credential and user allow
// it": a user quota of 4 and a credential quota of 10, requests released
// together through the credential and an API token acting as the user →
// exactly 4 admitted; X-RateLimit-Quota-Remaining is the fewest left; a
// credential burst of 3 → exactly 3 of 12 released together.
func TestSpecLayerEveryBudget(t *testing.T) {
	env := servertest.Start(t)
	admin, devID, devTok, cred := developer(t, env)
	enableAPITokens(t, env, admin)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+devID, map[string]any{"quota": map[string]any{"limit": 4, "period": "month"}}), 200, "")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+cred.ID, map[string]any{"quota": map[string]any{"limit": 10, "period": "day"}}), 200, "")
	ct := accessToken(t, clientToken(env, cred))
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "as user"})
	ak := r.Map(t)["token"].(string)
	var shots []volleyReq
	for i := range 14 {
		req, _ := http.NewRequest("GET", env.URL+"/v1/workspaces", nil)
		if i%2 == 0 {
			req.Header.Set("Authorization", "Bearer "+ct)
		} else {
			req.Header.Set("X-API-Token", ak)
			req.Header.Set("X-User-Email", "dev@example.com")
		}
		shots = append(shots, volleyReq{req: req})
	}
	res := volley(t, shots)
	served, seen := 0, map[string]int{}
	for _, r := range res.resps {
		switch r.Status {
		case 200:
			served++
			seen[r.Header.Get("X-RateLimit-Quota-Remaining")]++
		case 422:
			servertest.Expect(t, r, 422, "quota_exceeded")
		default:
			t.Errorf("%d %s", r.Status, r.Body)
		}
	}
	// The developer already used 1 of the month's 4 (POST /v1/credentials
	// came before the quota): 4 admitted now would mean the quota counts
	// only from when it was set; fewer than 4 that it counts the month.
	if served < 3 || served > 4 {
		t.Fatalf("%d admitted under a user quota of 4: %v", served, seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("quota remaining %s seen %d times", k, n)
		}
	}
	if seen["0"] != 1 {
		t.Errorf("the last admitted did not see 0 left (the user's): %v", seen)
	}

	// A burst of 3 on an API token.
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "bursty", "rate_limit": map[string]any{"daily": 1000, "burst": 3, "burst_window_seconds": 600}})
	servertest.Expect(t, r, 201, "")
	bt := r.Map(t)["token"].(string)
	shots = nil
	for range 12 {
		req, _ := http.NewRequest("GET", env.URL+"/v1/workspaces", nil)
		req.Header.Set("X-API-Token", bt)
		shots = append(shots, volleyReq{req: req})
	}
	res = volley(t, shots)
	served = 0
	for _, r := range res.resps {
		switch r.Status {
		case 200:
			served++
		case 422:
			servertest.Expect(t, r, 422, "rate_limit_exceeded")
			if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Header.Get("RateLimit-Policy"), `"burst";q=3;w=600`) {
				t.Errorf("refusal headers %v", r.Header)
			}
		default:
			t.Errorf("%d %s", r.Status, r.Body)
		}
	}
	if served != 3 {
		t.Fatalf("%d admitted under a burst of 3", served)
	}
}

// TestSpecLayerAccessTokenSelfVersusLeak: SPEC §10.1, "An access or
// refresh token is revoked with its refresh lineage" — an access token
// sent to /oauth/revoke with no other credential (its finder looks like
// its holder) takes its refresh token with it, and so does one reported
// through the bulk endpoint; an admin revoking one access token of a
// lineage ends that token alone.
func TestSpecLayerAccessTokenSelfVersusLeak(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	r := env.As(admin, "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 201, "")
	app := r.Map(t)
	cid := app["client_id"].(string)
	// An admin revokes the first access token alone: its refresh token
	// still works.
	servertest.Expect(t, env.As(admin, "POST", "/oauth/revoke", "token="+app["access_token"].(string), "Content-Type", "application/x-www-form-urlencoded"), 200, "")
	servertest.Expect(t, env.As(app["access_token"].(string), "GET", "/v1/me", nil), 401, "invalid_token")
	r = specLayerPost(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {cid}, "refresh_token": {app["refresh_token"].(string)}})
	servertest.Expect(t, r, 200, "")
	own := r.Map(t)
	// Sent by itself: the lineage ends.
	servertest.Expect(t, specLayerPost(env, "/oauth/revoke", url.Values{"token": {own["access_token"].(string)}, "token_type_hint": {"access_token"}}), 200, "")
	servertest.Expect(t, env.As(own["access_token"].(string), "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, specLayerPost(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {cid}, "refresh_token": {own["refresh_token"].(string)}}), 400, "invalid_grant")
	// Its client revoking, with its id, the access token a refresh
	// replaced: that token alone; the new pair works.
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
	r = env.As(admin, "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 201, "")
	first := r.Map(t)
	cid = first["client_id"].(string)
	r = specLayerPost(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {cid}, "refresh_token": {first["refresh_token"].(string)}})
	servertest.Expect(t, r, 200, "")
	second := r.Map(t)
	servertest.Expect(t, specLayerPost(env, "/oauth/revoke", url.Values{"token": {first["access_token"].(string)}, "client_id": {cid}}), 200, "")
	servertest.Expect(t, env.As(first["access_token"].(string), "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(second["access_token"].(string), "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, specLayerPost(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {cid}, "refresh_token": {second["refresh_token"].(string)}}), 200, "")
	// Reported through the bulk endpoint: the lineage ends, for a new one.
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-access", nil), 204, "")
	r = env.As(admin, "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 201, "")
	next := r.Map(t)
	cid = next["client_id"].(string)
	servertest.Expect(t, env.Request("POST", "/v1/credentials/revoke", map[string]any{"credentials": []string{next["access_token"].(string)}}), 202, "")
	deadline := time.Now().Add(10 * time.Second)
	for env.As(next["access_token"].(string), "GET", "/v1/me", nil).Status != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the reported access token still works")
		}
		time.Sleep(20 * time.Millisecond)
	}
	servertest.Expect(t, specLayerPost(env, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {cid}, "refresh_token": {next["refresh_token"].(string)}}), 400, "invalid_grant")
}
