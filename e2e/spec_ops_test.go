package e2e

// An exactness walk of SPEC.md §10.6 (the console: second factors, single
// sign-on, sessions), §10.7 (shipping it), §10.8 (trust, second round) and
// §10.9 (faults, time and upgrades): every path, field, status, error code,
// header, flag and file those sections name, used as a user reading the
// SPEC literally would. The data-changing tests are meant to run on both
// stores (GATEHOUSE_TEST_DATABASE=postgres).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/localserver"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// specOpsTOTP computes an RFC 6238 code from the SPEC's parameters alone
// (HMAC-SHA-1, 6 digits, 30-second steps), not from the server's package.
func specOpsTOTP(secret string, step int64) string {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil {
		return ""
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	return fmt.Sprintf("%06d", v%1000000)
}

func specOpsStep() int64 { return time.Now().Unix() / 30 }

// specOpsMFA reads GET /v1/me/mfa and checks the SPEC's field types.
func specOpsMFA(t *testing.T, env *servertest.Env, tok string) (totp bool, passkeys, left float64) {
	t.Helper()
	r := env.As(tok, "GET", "/v1/me/mfa", nil)
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	var ok1, ok2, ok3 bool
	totp, ok1 = m["totp"].(bool)
	passkeys, ok2 = m["passkeys"].(float64)
	left, ok3 = m["recovery_codes_left"].(float64)
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("GET /v1/me/mfa is not {totp:bool,passkeys:N,recovery_codes_left:N}: %s", r.Body)
	}
	return
}

// TestSpecOpsTOTPWalk: §10.6 as written — enrol (not yet active), confirm
// with a code computed from RFC 6238's parameters (a neighbouring step
// included), ten recovery codes, the password grant's refusal with its
// exact description on both endpoints, each code once, DELETE with a code,
// and nothing readable of the secret or the codes in the SQLite file.
func TestSpecOpsTOTPWalk(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "zzann@example.com", memberPW)
	ann := env.Login("zzann@example.com", memberPW)

	if totp, pk, left := specOpsMFA(t, env, ann); totp || pk != 0 || left != 0 {
		t.Fatalf("before enrolment: %v %v %v", totp, pk, left)
	}
	r := env.As(ann, "POST", "/v1/me/mfa/totp", nil)
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	secret, _ := m["secret"].(string)
	uri, _ := m["otpauth_uri"].(string)
	if secret == "" || !strings.HasPrefix(uri, "otpauth://totp/") {
		t.Fatalf("enrolment answer %s", r.Body)
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("secret") != secret || (q.Get("algorithm") != "" && q.Get("algorithm") != "SHA1") ||
		(q.Get("digits") != "" && q.Get("digits") != "6") || (q.Get("period") != "" && q.Get("period") != "30") {
		t.Fatalf("otpauth_uri does not say SHA-1, 6 digits, 30 s: %s", uri)
	}
	// Not yet active: the password grant still works.
	if totp, _, _ := specOpsMFA(t, env, ann); totp {
		t.Fatal("TOTP active before confirmation")
	}
	env.Login("zzann@example.com", memberPW)

	// ±1 step: the code of the previous step confirms.
	step := specOpsStep() - 1
	r = env.As(ann, "POST", "/v1/me/mfa/totp/confirm", map[string]string{"code": specOpsTOTP(secret, step)})
	servertest.Expect(t, r, 200, "")
	var rc struct {
		Codes []string `json:"recovery_codes"`
	}
	r.JSON(t, &rc)
	if len(rc.Codes) != 10 {
		t.Fatalf("want 10 recovery codes: %s", r.Body)
	}
	seen := map[string]bool{}
	for _, c := range rc.Codes {
		if c == "" || seen[c] {
			t.Fatalf("recovery codes not distinct: %v", rc.Codes)
		}
		seen[c] = true
	}
	if totp, pk, left := specOpsMFA(t, env, ann); !totp || pk != 0 || left != 10 {
		t.Fatalf("after confirmation: %v %v %v", totp, pk, left)
	}

	// The password grant refuses them: 400 invalid_grant with the SPEC's words.
	for _, r := range []*servertest.Response{
		env.Request("POST", "/authorization", map[string]string{"username": "zzann@example.com", "password": memberPW}),
		env.Request("POST", "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"zzann@example.com"}, "password": {memberPW}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded"),
	} {
		servertest.Expect(t, r, 400, "invalid_grant")
		if !bytes.Contains(r.Body, []byte("this user signs in with a second factor")) {
			t.Fatalf("refusal without the SPEC's words: %s", r.Body)
		}
	}

	// Each code accepted once: the confirming code does not turn it off.
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": specOpsTOTP(secret, step)}), 400, "invalid_request")

	// Stored hashed / sealed: neither the secret nor a code is in the file.
	if env.DBPath != "" {
		for _, f := range []string{env.DBPath, env.DBPath + "-wal"} {
			b, _ := os.ReadFile(f)
			for _, s := range append([]string{secret}, rc.Codes...) {
				for _, form := range []string{s, strings.ReplaceAll(s, "-", "")} {
					if bytes.Contains(b, []byte(form)) {
						t.Fatalf("%s holds %q in the clear", f, form)
					}
				}
			}
		}
	}

	// A recovery code turns it off (DELETE /v1/me/mfa/totp {"code"}); the
	// same recovery code is spent.
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": rc.Codes[0]}), 204, "")
	if totp, _, _ := specOpsMFA(t, env, ann); totp {
		t.Fatal("still on")
	}
	env.Login("zzann@example.com", memberPW)
}

// TestSpecOpsMFACodeRace: "each code accepted once" — the same current
// code sent at once on many connections to DELETE /v1/me/mfa/totp turns
// TOTP off exactly once, and concurrent confirmations of one enrolment
// hand out recovery codes exactly once.
func TestSpecOpsMFACodeRace(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "zzrace@example.com", memberPW)
	tok := env.Login("zzrace@example.com", memberPW)
	r := env.As(tok, "POST", "/v1/me/mfa/totp", nil)
	servertest.Expect(t, r, 200, "")
	secret := r.Map(t)["secret"].(string)
	step := specOpsStep()
	code := specOpsTOTP(secret, step)

	const n = 12
	var wg sync.WaitGroup
	start := make(chan struct{})
	confirmed := make([]*servertest.Response, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			confirmed[i] = env.As(tok, "POST", "/v1/me/mfa/totp/confirm", map[string]string{"code": code})
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, r := range confirmed {
		switch r.Status {
		case 200:
			ok++
		case 400, 409, 429, 503:
		default:
			t.Fatalf("confirmation answered %d %s", r.Status, r.Body)
		}
	}
	if ok != 1 {
		t.Fatalf("%d confirmations succeeded with one code, want 1", ok)
	}
	// The next step's code (or the one after) turns it off exactly once.
	off := specOpsTOTP(secret, step+1)
	start = make(chan struct{})
	deleted := make([]*servertest.Response, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			deleted[i] = env.As(tok, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": off})
		}()
	}
	close(start)
	wg.Wait()
	ok = 0
	for _, r := range deleted {
		switch r.Status {
		case 204:
			ok++
		case 400, 404, 429, 503:
		default:
			t.Fatalf("disable answered %d %s", r.Status, r.Body)
		}
	}
	if ok != 1 {
		t.Fatalf("%d disables succeeded with one code, want 1", ok)
	}
}

// TestSpecOpsMFANeedsSignIn: "These need a session or a password-grant
// token of the user themselves (never an API token or client credential)"
// — every one of the four routes, with every other kind of credential.
func TestSpecOpsMFANeedsSignIn(t *testing.T) {
	env := servertest.Start(t)
	admin, _, _, cred := developer(t, env)
	ccTok := accessToken(t, clientToken(env, cred))
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	apiTok := env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "zz"}).Map(t)["token"].(string)
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/me/mfa", ""},
		{"POST", "/v1/me/mfa/totp", "{}"},
		{"POST", "/v1/me/mfa/totp/confirm", `{"code":"123456"}`},
		{"DELETE", "/v1/me/mfa/totp", `{"code":"123456"}`},
		{"GET", "/v1/me/sessions", ""},
	}
	for _, rt := range routes {
		var body any
		if rt.body != "" {
			body = rt.body
		}
		for name, hdr := range map[string][]string{
			"client credential":  {"Authorization", "Bearer " + ccTok},
			"API token as user":  {"X-API-Token", apiTok, "X-User-Email", "dev@example.com"},
			"API token, no user": {"X-API-Token", apiTok},
		} {
			h := append([]string{"Content-Type", "application/json"}, hdr...)
			r := env.Request(rt.method, rt.path, body, h...)
			if r.Status != 403 {
				t.Errorf("%s %s with a %s: %d %s, want 403", rt.method, rt.path, name, r.Status, r.Body)
			}
		}
	}
}

// TestSpecOpsRequireMFA: "require_mfa":"none"|"admins"|"everyone" in
// settings; any other value is refused; the password grant refuses whom
// it covers with the SPEC's words.
func TestSpecOpsRequireMFA(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "zzmem@example.com", memberPW)
	env.CreateUser(admin, "zzadm@example.com", memberPW, "admin")
	r := env.As(admin, "GET", "/v1/settings", nil)
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["require_mfa"] != "none" {
		t.Fatalf("default require_mfa: %s", r.Body)
	}
	for _, bad := range []any{"all", "Admins", "", 1, true, nil} {
		r := env.As(admin, "PUT", "/v1/settings", map[string]any{"require_mfa": bad})
		if bad == nil {
			// null: "takes any subset" — an absent or null field changes nothing.
			if r.Status != 200 && r.Status != 400 {
				t.Fatalf("require_mfa null: %d %s", r.Status, r.Body)
			}
			continue
		}
		servertest.Expect(t, r, 400, "invalid_request")
	}
	grant := func(email string) *servertest.Response {
		return env.Request("POST", "/authorization", map[string]string{"username": email, "password": memberPW})
	}
	refused := func(email string) bool {
		r := grant(email)
		if r.Status == 200 {
			return false
		}
		servertest.Expect(t, r, 400, "invalid_grant")
		if !bytes.Contains(r.Body, []byte("this user signs in with a second factor")) {
			t.Fatalf("refusal words: %s", r.Body)
		}
		return true
	}
	r = env.As(admin, "PUT", "/v1/settings", map[string]any{"require_mfa": "admins"})
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["require_mfa"] != "admins" {
		t.Fatalf("PUT answer %s", r.Body)
	}
	if !refused("zzadm@example.com") || refused("zzmem@example.com") {
		t.Fatal("admins: wrong users refused")
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"require_mfa": "everyone"}), 200, "")
	if !refused("zzadm@example.com") || !refused("zzmem@example.com") {
		t.Fatal("everyone: a user not refused")
	}
	// GET /v1/me/mfa of a covered user (through the admin's token made
	// before the change) still answers the SPEC's three fields.
	specOpsMFA(t, env, admin)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"require_mfa": "none"}), 200, "")
	if refused("zzadm@example.com") || refused("zzmem@example.com") {
		t.Fatal("none: a user refused")
	}
}

// TestSpecOpsSessionsWalk: GET /v1/me/sessions, DELETE
// /v1/me/sessions/{id}, and "admins end a user's sessions"; malformed ids
// are 400 or 404, never 5xx.
func TestSpecOpsSessionsWalk(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	annID := env.CreateUser(admin, "zzses@example.com", memberPW)
	ann := env.Login("zzses@example.com", memberPW)
	c := clientFrom("127.0.0.1", nil)
	adminSessionCookieAs(t, c, env.URL, "zzses@example.com", memberPW)
	adminSessionCookieAs(t, c, env.URL, "zzses@example.com", memberPW)
	r := env.As(ann, "GET", "/v1/me/sessions", nil)
	servertest.Expect(t, r, 200, "")
	data, _ := r.Map(t)["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("sessions %s", r.Body)
	}
	s0 := data[0].(map[string]any)
	for _, f := range []string{"id", "created_at", "expires_at", "client_addr"} {
		if _, ok := s0[f].(string); !ok {
			t.Fatalf("session field %s: %s", f, r.Body)
		}
	}
	if _, ok := s0["current"].(bool); !ok {
		t.Fatalf("session field current: %s", r.Body)
	}
	for _, id := range []string{"nope", "%00", "%ff%fe", strings.Repeat("x", 300)} {
		r := env.As(ann, "DELETE", "/v1/me/sessions/"+id, nil)
		if r.Status != 400 && r.Status != 404 {
			t.Fatalf("DELETE /v1/me/sessions/%s: %d %s", id, r.Status, r.Body)
		}
	}
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/me/sessions/"+s0["id"].(string), nil), 204, "")
	r = env.As(admin, "DELETE", "/v1/users/"+annID+"/sessions", nil)
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["ended"] != 1.0 {
		t.Fatalf("admin ended %s", r.Body)
	}
	if d := env.As(ann, "GET", "/v1/me/sessions", nil).Map(t)["data"].([]any); len(d) != 0 {
		t.Fatalf("sessions left %v", d)
	}
}

// specOpsVolley releases n copies of one request at once, each on its
// own connection opened in advance, and returns the statuses and bodies.
func specOpsVolley(t *testing.T, env *servertest.Env, n int, method, path, tok string, body func(i int) string) ([]int, []string) {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", strings.TrimPrefix(env.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	statuses, bodies := make([]int, n), make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := body(i)
			req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				method, path, strings.TrimPrefix(env.URL, "http://"), tok, len(b), b)
			<-start
			c.Write([]byte(req))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return
			}
			rb, _ := io.ReadAll(resp.Body)
			statuses[i], bodies[i] = resp.StatusCode, string(rb)
		}()
	}
	close(start)
	wg.Wait()
	return statuses, bodies
}

// TestSpecOpsCeilings: max_credentials_per_user and
// max_api_tokens_per_account in settings; "over → 409 limit_reached",
// never overshot by creations released together.
func TestSpecOpsCeilings(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env) // one credential already
	r := env.As(admin, "GET", "/v1/settings", nil)
	m := r.Map(t)
	if m["max_credentials_per_user"] != 100.0 || m["max_api_tokens_per_account"] != 500.0 {
		t.Fatalf("defaults: %s", r.Body)
	}
	for _, bad := range []map[string]any{
		{"max_credentials_per_user": 0}, {"max_credentials_per_user": 10001}, {"max_credentials_per_user": "3"},
		{"max_api_tokens_per_account": 0}, {"max_api_tokens_per_account": 100001},
	} {
		servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", bad), 400, "invalid_request")
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"max_credentials_per_user": 4, "max_api_tokens_per_account": 3}), 200, "")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")

	count := func(statuses []int, bodies []string, want int) {
		t.Helper()
		ok := 0
		for i, s := range statuses {
			switch {
			case s == 201:
				ok++
			case s == 409 && strings.Contains(bodies[i], `"limit_reached"`):
			default:
				t.Fatalf("answer %d %s", s, bodies[i])
			}
		}
		if ok != want {
			t.Fatalf("%d creations succeeded, want %d", ok, want)
		}
	}
	st, bo := specOpsVolley(t, env, 24, "POST", "/v1/credentials", devTok, func(i int) string { return fmt.Sprintf(`{"name":"c%d"}`, i) })
	count(st, bo, 3)
	st, bo = specOpsVolley(t, env, 24, "POST", "/v1/api-tokens", admin, func(i int) string { return fmt.Sprintf(`{"name":"t%d"}`, i) })
	count(st, bo, 3)
	servertest.Expect(t, env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "more"}), 409, "limit_reached")
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "more"}), 409, "limit_reached")
}

// TestSpecOpsActsOnNoMore: "Creating, rolling, updating (enabled,
// scopes, expires_at) or deleting a credential through the API requires
// the caller's effective scopes to cover the target's scopes and the
// expires_at of the caller's own credential ... not to be earlier than the
// target's; otherwise 403 forbidden." And what an API token created stops
// working while it is disabled or the extension is off.
func TestSpecOpsActsOnNoMore(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	soon := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "narrow",
		"scopes": []string{"credentials:read", "credentials:write"}, "expires_at": soon.Format(time.RFC3339)})
	servertest.Expect(t, r, 201, "")
	narrow := r.Map(t)
	nTok, nID := narrow["token"].(string), narrow["id"].(string)
	r = env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "wide"})
	servertest.Expect(t, r, 201, "")
	wideID := r.Map(t)["id"].(string)

	as := func(method, path string, body any) *servertest.Response {
		return env.Request(method, path, body, "X-API-Token", nTok, "Content-Type", "application/json")
	}
	// Wider scopes, or a later expiry, than the caller's: 403 forbidden.
	servertest.Expect(t, as("POST", "/v1/api-tokens", `{"name":"x","scopes":["users:write"],"expires_at":"`+soon.Add(-time.Hour).Format(time.RFC3339)+`"}`), 403, "forbidden")
	// (A later expires_at on creation: TestSpecOpsCreateLaterExpiryForbidden.)
	servertest.Expect(t, as("PATCH", "/v1/api-tokens/"+wideID, `{"enabled":false}`), 403, "forbidden")
	servertest.Expect(t, as("POST", "/v1/api-tokens/"+wideID+"/roll", `{"overlap_seconds":0}`), 403, "forbidden")
	servertest.Expect(t, as("DELETE", "/v1/api-tokens/"+wideID, nil), 403, "forbidden")
	// Within both: allowed.
	r = as("POST", "/v1/api-tokens", `{"name":"child","scopes":["credentials:read"],"expires_at":"`+soon.Add(-time.Hour).Format(time.RFC3339)+`"}`)
	servertest.Expect(t, r, 201, "")
	child := r.Map(t)["token"].(string)
	use := func() int {
		return env.Request("GET", "/v1/api-tokens", nil, "X-API-Token", child).Status
	}
	if use() != 200 {
		t.Fatal("the child does not work")
	}
	// Disabled parent: the child stops; enabled again: it works again.
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+nID, map[string]any{"enabled": false}), 200, "")
	if s := use(); s != 401 {
		t.Fatalf("child of a disabled API token: %d", s)
	}
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+nID, map[string]any{"enabled": true}), 200, "")
	if s := use(); s != 200 {
		t.Fatalf("child after enabling: %d", s)
	}
	// Extension off.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false}), 200, "")
	if s := use(); s != 401 {
		t.Fatalf("child with the extension off: %d", s)
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	// Rolled parent: the child follows the new token; deleting the new
	// one ends it.
	r = env.As(admin, "POST", "/v1/api-tokens/"+nID+"/roll", map[string]any{"overlap_seconds": 0})
	servertest.Expect(t, r, 201, "")
	newID := r.Map(t)["id"].(string)
	if s := use(); s != 200 {
		t.Fatalf("child after the roll: %d", s)
	}
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-tokens/"+newID, nil), 204, "")
	if s := use(); s != 401 {
		t.Fatalf("child of a deleted (rolled) API token: %d", s)
	}
}

// TestSpecOpsScopeShape: "Scope lists are capped at 100 names of at
// most 64 characters from [A-Za-z0-9:._-], checked before anything else".
func TestSpecOpsScopeShape(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("s%d", i)
	}
	for name, scopes := range map[string][]string{
		"101 names":  many,
		"65 chars":   {strings.Repeat("a", 65)},
		"space":      {"a b"},
		"slash":      {"a/b"},
		"non-ascii":  {"é"},
		"empty":      {""},
		"NUL":        {"a\x00"},
		"custom 101": many,
	} {
		for _, target := range []string{"/v1/api-tokens"} {
			r := env.As(admin, "POST", target, map[string]any{"name": "x", "scopes": scopes})
			if r.Status != 400 {
				t.Errorf("%s on %s: %d %s", name, target, r.Status, r.Body)
			}
		}
		servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"custom_scopes": scopes}), 400, "invalid_request")
	}
	// 100 names of 64 characters from the set are a valid shape.
	ok := make([]string, 100)
	for i := range ok {
		ok[i] = fmt.Sprintf("zz:%s%03d", strings.Repeat("A.b_c-", 10)[:58], i)
		if len(ok[i]) != 64 {
			t.Fatalf("len %d", len(ok[i]))
		}
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"custom_scopes": ok}), 200, "")
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "x", "scopes": ok}), 201, "")
}

// TestSpecOpsCreateLaterExpiryForbidden: SPEC §10.8 "Creating ... a
// credential through the API requires ... the expires_at of the caller's
// own credential (an API token or client credential, if it has one) not
// to be earlier than the target's; otherwise 403 forbidden." An API token
// expiring in two days creates one expiring a day later, and a client
// credential's token creates a credential outliving it.
func TestSpecOpsCreateLaterExpiryForbidden(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	soon := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "short", "expires_at": soon.Format(time.RFC3339)})
	servertest.Expect(t, r, 201, "")
	tok := r.Map(t)["token"].(string)
	later := soon.Add(24 * time.Hour).Format(time.RFC3339)
	r = env.Request("POST", "/v1/api-tokens", `{"name":"later","expires_at":"`+later+`"}`,
		"X-API-Token", tok, "Content-Type", "application/json")
	if r.Status != 403 {
		t.Errorf("POST /v1/api-tokens through an API token expiring %s, target expiring %s: %d %s, want 403 forbidden",
			soon.Format(time.RFC3339), later, r.Status, r.Body)
	}
	// A developer's short-lived client credential creates a longer one.
	devID := env.CreateUser(admin, "zzdev@example.com", memberPW)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/developers/"+devID, nil), 204, "")
	dev := env.Login("zzdev@example.com", memberPW)
	r = env.As(dev, "POST", "/v1/credentials", map[string]any{"name": "short", "expires_at": soon.Format(time.RFC3339)})
	servertest.Expect(t, r, 201, "")
	var c credential
	r.JSON(t, &c)
	cc := accessToken(t, clientToken(env, c))
	r = env.As(cc, "POST", "/v1/credentials", map[string]any{"name": "later", "expires_at": later})
	if r.Status != 403 {
		t.Errorf("POST /v1/credentials through a client credential expiring %s, target expiring %s: %d %s, want 403 forbidden",
			soon.Format(time.RFC3339), later, r.Status, r.Body)
	}
	// The same callers within their own expiry are allowed: the refusal
	// above is about the expiry alone.
	servertest.Expect(t, env.As(cc, "POST", "/v1/credentials", map[string]any{"name": "ok", "expires_at": soon.Add(-time.Hour).Format(time.RFC3339)}), 201, "")
}

// TestSpecOpsNo5xxFromInput: "Invalid UTF-8 or NUL in a path id, a query
// filter or a cursor → 400 invalid_request (or 404), before any store
// call" — on every route with an id and every list filter.
func TestSpecOpsNo5xxFromInput(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	bad := []string{"%ff", "%00", "a%00b", "%c0%af", "%ed%a0%80", "x%fe%ff"}
	paths := []string{
		"GET /v1/users/{}", "PATCH /v1/users/{}", "DELETE /v1/users/{}", "DELETE /v1/users/{}/sessions", "GET /v1/users/{}/sessions",
		"DELETE /v1/users/{}/mfa", "DELETE /v1/users/{}/throttle", "DELETE /v1/me/sessions/{}", "GET /v1/workspaces/{}",
		"PUT /v1/developers/{}", "PATCH /v1/credentials/{}", "DELETE /v1/credentials/{}", "POST /v1/credentials/{}/roll",
		"PATCH /v1/api-tokens/{}", "DELETE /v1/api-tokens/{}", "GET /v1/apps/{}", "GET /v1/accounts/{}", "PATCH /v1/accounts/{}",
		"DELETE /v1/accounts/{}/users/{}", "GET /v1/webhooks/{}", "GET /v1/webhooks/{}/deliveries",
		"DELETE /v1/me/authorizations/{}", "PATCH /v1/me/mfa/passkeys/{}",
	}
	for _, p := range paths {
		method, path, _ := strings.Cut(p, " ")
		for _, b := range bad {
			var body any
			if method == "PATCH" || method == "POST" || method == "PUT" {
				body = map[string]any{}
			}
			r := env.As(admin, method, strings.ReplaceAll(path, "{}", b), body)
			if r.Status != 400 && r.Status != 404 {
				t.Errorf("%s with id %q: %d %s", p, b, r.Status, r.Body)
			} else if r.Status == 400 && !strings.Contains(string(r.Body), `"invalid_request"`) {
				t.Errorf("%s with id %q: 400 %s, want invalid_request", p, b, r.Body)
			}
		}
	}
	queries := []string{
		"/v1/users?email=", "/v1/users?cursor=", "/v1/users?all_accounts=true&email=", "/v1/audit?action=", "/v1/audit?cursor=",
		"/v1/audit?target_id=", "/v1/usage?cursor=", "/v1/credentials?cursor=", "/v1/api-tokens?cursor=", "/v1/workspaces?cursor=",
		"/v1/accounts?cursor=", "/v1/webhooks?cursor=",
	}
	for _, q := range queries {
		for _, b := range bad {
			r := env.As(admin, "GET", q+b, nil)
			if r.Status >= 500 || (r.Status != 400 && r.Status != 404 && r.Status != 200) {
				t.Errorf("GET %s%s: %d %s", q, b, r.Status, r.Body)
			}
			if r.Status == 200 && (strings.Contains(q, "cursor=") || strings.Contains(q, "email=")) {
				t.Errorf("GET %s%s: 200 %s, want 400 invalid_request", q, b, r.Body)
			}
		}
	}
}

// TestSpecOpsPeople: "Passwords are counted in characters (at least 8;
// Unicode-normalised) and refused when they are on a list of common
// passwords (400 naming the rule). E-mail addresses with invisible or
// format characters, or that mix scripts in one part, are refused. An
// admin may delete a user of their account (DELETE /v1/users/{id} → 204:
// every credential of theirs revoked, the address freed, audit entries
// kept); the operator finds which account holds an address with GET
// /v1/users?email=E&all_accounts=true (operator only; the answer names
// the account) and deletes with DELETE /v1/accounts/{id}/users/{user_id}."
func TestSpecOpsPeople(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	create := func(tok, email, pw string) *servertest.Response {
		return env.As(tok, "POST", "/v1/users", map[string]any{"email": email, "password": pw})
	}
	// Seven characters of two bytes each: refused; eight: accepted.
	r := create(op, "zz7@example.com", strings.Repeat("é", 7))
	servertest.Expect(t, r, 400, "invalid_request")
	if !strings.Contains(string(r.Body), "password") {
		t.Fatalf("refusal does not name the rule: %s", r.Body)
	}
	servertest.Expect(t, create(op, "zz8@example.com", "ñçüéøåßż"), 201, "")
	// (Unicode normalisation of the password itself:
	// TestSpecOpsPasswordNormalised.)
	// Common passwords.
	for _, pw := range []string{"password", "12345678", "Password123", "qwertyuiop"} {
		r := create(op, "zzcommon@example.com", pw)
		servertest.Expect(t, r, 400, "invalid_request")
		if !strings.Contains(string(r.Body), "common") {
			t.Errorf("%q: refusal does not name the rule: %s", pw, r.Body)
		}
	}
	// E-mail addresses.
	for _, e := range []string{"zz\u200bann@example.com", "zz\u00adann@example.com", "p\u0430ypal@example.com", "zz\u202eann@example.com", "zzann@ex\u0430mple.com"} {
		servertest.Expect(t, create(op, e, memberPW), 400, "invalid_request")
	}

	// Delete a user: 204, credentials revoked, address freed, audit kept.
	accID, accAdmin := env.CreateAccount(op, "ZZ Other", "zzboss@other.example", memberPW)
	devID := env.CreateUser(accAdmin, "zzgone@other.example", memberPW, "developer")
	devTok := env.Login("zzgone@other.example", memberPW)
	r = env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": "CI"})
	servertest.Expect(t, r, 201, "")
	var c credential
	r.JSON(t, &c)
	ccTok := accessToken(t, clientToken(env, c))
	// Operator finds the address: the answer names the account.
	r = env.As(op, "GET", "/v1/users?email=zzgone@other.example&all_accounts=true", nil)
	servertest.Expect(t, r, 200, "")
	if !strings.Contains(string(r.Body), accID) || !strings.Contains(string(r.Body), devID) {
		t.Fatalf("operator's look-up does not name the account: %s", r.Body)
	}
	// Operator only.
	servertest.Expect(t, env.As(accAdmin, "GET", "/v1/users?email=zzgone@other.example&all_accounts=true", nil), 403, "forbidden")
	servertest.Expect(t, env.As(accAdmin, "DELETE", "/v1/users/"+devID, nil), 204, "")
	servertest.Expect(t, env.As(devTok, "GET", "/v1/me", nil), 401, "invalid_token")
	servertest.Expect(t, env.As(ccTok, "GET", "/v1/me", nil), 401, "invalid_token")
	if r := clientToken(env, c); r.Status == 200 {
		t.Fatalf("a deleted user's credential still gets tokens: %s", r.Body)
	}
	audit := string(env.As(accAdmin, "GET", "/v1/audit?limit=200", nil).Body)
	if !strings.Contains(audit, devID) {
		t.Fatal("the deleted user's audit entries are gone")
	}
	// The address is free again; the operator deletes through the account.
	id2 := env.CreateUser(accAdmin, "zzgone@other.example", memberPW)
	servertest.Expect(t, env.As(accAdmin, "DELETE", "/v1/accounts/"+accID+"/users/"+id2, nil), 403, "forbidden")
	servertest.Expect(t, env.As(op, "DELETE", "/v1/accounts/"+accID+"/users/"+id2, nil), 204, "")
	servertest.Expect(t, env.As(op, "DELETE", "/v1/accounts/"+accID+"/users/"+id2, nil), 404, "not_found")
	r = env.As(op, "GET", "/v1/users?email=zzgone@other.example&all_accounts=true", nil)
	servertest.Expect(t, r, 200, "")
	if strings.Contains(string(r.Body), id2) {
		t.Fatalf("deleted user still found: %s", r.Body)
	}
}

// TestSpecOpsRequestID: "A client's X-Request-Id is kept only from
// trusted proxies; otherwise Gatehouse makes one."
func TestSpecOpsRequestID(t *testing.T) {
	env := servertest.Start(t)
	r := env.Request("GET", "/healthz", nil, "X-Request-Id", "zz-client-chosen-id")
	got := r.Header.Get("X-Request-Id")
	if got == "" || got == "zz-client-chosen-id" {
		t.Fatalf("untrusted client's X-Request-Id: answer carries %q", got)
	}
	trusted := servertest.Start(t, func(c *server.Config) {
		tp, err := httpx.ParseTrustedProxies("127.0.0.1/32")
		if err != nil {
			t.Fatal(err)
		}
		c.TrustedProxies = tp
	})
	r = trusted.Request("GET", "/healthz", nil, "X-Request-Id", "zz-proxy-chosen-id")
	if got := r.Header.Get("X-Request-Id"); got != "zz-proxy-chosen-id" {
		t.Fatalf("trusted proxy's X-Request-Id: answer carries %q", got)
	}
}

// TestSpecOpsLastUsed: "last_used_at of every credential kind is the
// time of its last authenticated use (for an API access application, any
// of its tokens' use)."
func TestSpecOpsLastUsed(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, c := developer(t, env)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "zzlu"})
	servertest.Expect(t, r, 201, "")
	apiTok := r.Map(t)["token"].(string)
	r = env.As(admin, "POST", "/v1/api-access", nil)
	servertest.Expect(t, r, 201, "")
	appBody := r.Map(t)
	lastUsed := func(tok, path string) any {
		r := env.As(tok, "GET", path, nil)
		servertest.Expect(t, r, 200, "")
		m := r.Map(t)
		if d, ok := m["data"].([]any); ok && len(d) > 0 {
			return d[0].(map[string]any)["last_used_at"]
		}
		return m["last_used_at"]
	}
	if lastUsed(admin, "/v1/api-tokens") != nil || lastUsed(devTok, "/v1/credentials") != nil {
		t.Fatal("last_used_at set before any use")
	}
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", apiTok), 200, "")
	cc := accessToken(t, clientToken(env, c))
	servertest.Expect(t, env.As(cc, "GET", "/v1/me", nil), 200, "")
	if at, ok := appBody["access_token"].(string); ok {
		servertest.Expect(t, env.As(at, "GET", "/v1/me", nil), 200, "")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, b, d := lastUsed(admin, "/v1/api-tokens"), lastUsed(devTok, "/v1/credentials"), lastUsed(admin, "/v1/api-access")
		if a != nil && b != nil && (d != nil || appBody["access_token"] == nil) {
			for _, v := range []any{a, b} {
				ts, err := time.Parse(time.RFC3339, v.(string))
				if err != nil || time.Since(ts) > time.Minute || time.Until(ts) > 5*time.Second {
					t.Fatalf("last_used_at %v", v)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last_used_at not set after use: api token %v, credential %v, api access %v (%v)", a, b, d, appBody)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSpecOpsPasswordNormalised: SPEC §10.8 "Passwords are counted in
// characters (at least 8; Unicode-normalised)". A password set as typed on
// one keyboard (decomposed, NFD: "e" + U+0301) and typed on another
// (composed, NFC: U+00E9) is the same password once normalised.
func TestSpecOpsPasswordNormalised(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	servertest.Expect(t, env.As(op, "POST", "/v1/users", map[string]any{"email": "zznfd@example.com", "password": "Ange\u0301lique pass"}), 201, "")
	r := env.Request("POST", "/authorization", map[string]string{"username": "zznfd@example.com", "password": "Ang\u00e9lique pass"})
	if r.Status != 200 {
		t.Fatalf("password set in NFD, signed in with its NFC form: %d %s", r.Status, r.Body)
	}
}

// TestSpecOpsConfigOpsHealthcheck: §10.7 "--config FILE (YAML): every
// flag; flags and environment override the file"; "--ops-addr ADDR:
// /metrics, /healthz, /readyz on a second listener (and off the public one
// when set)"; the image's HEALTHCHECK "through gatehouse healthcheck"
// (exit 0 healthy, 1 not); "gatehouse recover also clears the operator's
// second factors".
func TestSpecOpsConfigOpsHealthcheck(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "g.db")
	fileAddr, flagAddr, ops, envOps := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "gatehouse.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("addr: %s\nops-addr: %s\ndatabase-url: %s\nlog-level: warn\nadmin-password: %q\n", fileAddr, ops, db, processAdminPassword)), 0o600)

	// Healthcheck with nothing listening: exit 1, saying why.
	code, out, errOut := runGatehouse(t, nil, "", "healthcheck", "--config", cfg)
	if code != 1 || out+errOut == "" {
		t.Fatalf("healthcheck with no server: exit %d %q %q", code, out, errOut)
	}

	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	// The flag wins over the file's addr, the environment over its ops-addr.
	cmd := exec.Command(bin, "serve", "--config", cfg, "--addr", flagAddr)
	cmd.Env = append(os.Environ(), "GATEHOUSE_OPS_ADDR="+envOps)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pub, opsURL := "http://"+flagAddr, "http://"+envOps
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(opsURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ops listener at the environment's address: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, a := range []string{fileAddr, ops} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Fatalf("something listens at the file's address %s, overridden", a)
		}
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		resp, err := http.Get(opsURL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("ops %s: %v %v", p, err, resp)
		}
		resp.Body.Close()
		resp, err = http.Get(pub + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !strings.Contains(string(b), `"not_found"`) {
			t.Fatalf("public %s with --ops-addr: %d %s", p, resp.StatusCode, b)
		}
	}
	// Healthcheck, told the same settings: exit 0.
	code, out, errOut = runGatehouse(t, []string{"GATEHOUSE_OPS_ADDR=" + envOps}, "", "healthcheck", "--config", cfg, "--addr", flagAddr)
	if code != 0 {
		t.Fatalf("healthcheck of a healthy server: exit %d %q %q", code, out, errOut)
	}

	// The operator turns TOTP on, then loses it: gatehouse recover.
	c := &localserver.Client{URL: pub}
	r, err := c.Do(context.Background(), "POST", "/authorization", map[string]string{"username": "admin@example.com", "password": processAdminPassword})
	if err != nil || r.Status != 200 {
		t.Fatalf("operator sign-in: %v %v", err, r)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(r.Body, &tok)
	auth := []string{"Authorization", "Bearer " + tok.AccessToken}
	r, _ = c.Do(context.Background(), "POST", "/v1/me/mfa/totp", nil, auth...)
	var e struct {
		Secret string `json:"secret"`
	}
	json.Unmarshal(r.Body, &e)
	r, _ = c.Do(context.Background(), "POST", "/v1/me/mfa/totp/confirm", map[string]string{"code": specOpsTOTP(e.Secret, specOpsStep())}, auth...)
	if r.Status != 200 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	r, _ = c.Do(context.Background(), "POST", "/authorization", map[string]string{"username": "admin@example.com", "password": processAdminPassword})
	if r.Status != 400 {
		t.Fatalf("operator with TOTP still gets password tokens: %d", r.Status)
	}
	code, out, errOut = runGatehouse(t, nil, "a brand new recovery pw\n", "recover", "--config", cfg, "--email", "admin@example.com", "--password-stdin")
	if code != 0 || !strings.Contains(out, "admin@example.com") {
		t.Fatalf("recover: exit %d %q %q", code, out, errOut)
	}
	r, _ = c.Do(context.Background(), "POST", "/authorization", map[string]string{"username": "admin@example.com", "password": "a brand new recovery pw"})
	if r.Status != 200 {
		t.Fatalf("after recover, the operator's password grant: %d %s (second factors not cleared?)", r.Status, r.Body)
	}
	json.Unmarshal(r.Body, &tok)
	r, _ = c.Do(context.Background(), "GET", "/v1/me/mfa", nil, "Authorization", "Bearer "+tok.AccessToken)
	if !strings.Contains(string(r.Body), `"totp":false`) {
		t.Fatalf("after recover: %s", r.Body)
	}

	// A bad settings file: an error naming the line, a non-zero exit.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("addr: 127.0.0.1:0\nadress: x\n"), 0o600)
	code, _, errOut = runGatehouse(t, nil, "", "serve", "--config", bad)
	if code == 0 || !strings.Contains(errOut, "line 2") || !strings.Contains(errOut, "adress") {
		t.Fatalf("unknown key: exit %d %q", code, errOut)
	}
	// version.
	code, out, _ = runGatehouse(t, nil, "", "version")
	if code != 0 || !strings.Contains(out, "go1.") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// TestSpecOpsOpenAPIDocument: "GET /openapi.json: an OpenAPI 3.1
// document of every management route, with request and response schemas,
// error codes, security schemes and each route's scope".
func TestSpecOpsOpenAPIDocument(t *testing.T) {
	env := servertest.Start(t)
	r := env.Request("GET", "/openapi.json", nil)
	servertest.Expect(t, r, 200, "")
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	r.JSON(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	if len(doc.Components.SecuritySchemes) == 0 {
		t.Fatal("no security schemes")
	}
	for _, rt := range []string{
		"GET /v1/me/mfa", "POST /v1/me/mfa/totp", "POST /v1/me/mfa/totp/confirm", "DELETE /v1/me/mfa/totp",
		"GET /v1/me/sessions", "DELETE /v1/me/sessions/{id}", "DELETE /v1/users/{id}", "GET /v1/users",
		"DELETE /v1/accounts/{id}/users/{user_id}", "PATCH /v1/accounts/{id}", "PUT /v1/settings",
		"DELETE /v1/users/{id}/sessions",
	} {
		method, path, _ := strings.Cut(rt, " ")
		raw, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s is not in /openapi.json", rt)
			continue
		}
		var op map[string]any
		json.Unmarshal(raw, &op)
		if _, ok := op["x-gatehouse-scope"]; !ok && !strings.HasPrefix(path, "/v1/me/") {
			t.Errorf("%s: no scope named", rt)
		}
		resp, _ := op["responses"].(map[string]any)
		if len(resp) == 0 {
			t.Errorf("%s: no responses", rt)
		}
		hasErr := false
		for code := range resp {
			if code[0] == '4' {
				hasErr = true
			}
		}
		if !hasErr {
			t.Errorf("%s: no error answers", rt)
		}
		if (method == "POST" || method == "PUT" || method == "PATCH") && op["requestBody"] == nil && path != "/v1/me/mfa/totp" {
			t.Errorf("%s: no request schema", rt)
		}
	}
}

// TestSpecOpsStoreStall: §10.9 "a request waiting on a lost or stalled
// dependency is answered 503 temporarily_unavailable with Retry-After
// within it — never a 500, never a hang" — another process holds SQLite's
// write lock; writes released together are 503 with Retry-After.
func TestSpecOpsStoreStall(t *testing.T) {
	if os.Getenv(servertest.EnvDatabase) == "postgres" {
		t.Skip("SQLite's write lock; PostgreSQL's locked table is TestPgFaultsLockedTable")
	}
	env := servertest.Start(t, func(c *server.Config) { c.StoreTimeout = 300 * time.Millisecond })
	admin := env.AdminToken()
	db, err := sql.Open("sqlite", "file:"+env.DBPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	const n = 16
	answers := make([]*servertest.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = env.As(admin, "POST", "/v1/workspaces", map[string]string{"name": fmt.Sprintf("stalled %d", i)})
		}()
	}
	wg.Wait()
	ready := env.Request("GET", "/readyz", nil)
	conn.ExecContext(context.Background(), "ROLLBACK")
	for i, r := range answers {
		if r.Status != 503 || !strings.Contains(string(r.Body), `"temporarily_unavailable"`) || r.Header.Get("Retry-After") == "" {
			t.Errorf("write %d with the store locked: %d %s Retry-After=%q", i, r.Status, r.Body, r.Header.Get("Retry-After"))
		}
	}
	if ready.Status != 503 {
		t.Errorf("/readyz while the write lock was held: %d %s, want 503", ready.Status, ready.Body)
	}
	// Writes work again once the lock is released: the first may still
	// find a step of this loaded machine slower than the short timeout.
	after := env.As(admin, "POST", "/v1/workspaces", map[string]string{"name": "after"})
	for deadline := time.Now().Add(10 * time.Second); after.Status == 503 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		after = env.As(admin, "POST", "/v1/workspaces", map[string]string{"name": "after"})
	}
	servertest.Expect(t, after, 201, "")
}

// TestSpecOpsImageHealthcheckFollowsOpsAddr: the image's HEALTHCHECK is
// `/gatehouse healthcheck` with the image's environment only
// (GATEHOUSE_ADDR=:8080, Containerfile), another process than serve. With
// the ops address given as a flag of serve alone it asks the public
// listener, where /healthz is 404, and says what to set (docs/deploy.md);
// with GATEHOUSE_OPS_ADDR in the environment it follows it.
func TestSpecOpsImageHealthcheckFollowsOpsAddr(t *testing.T) {
	dir := t.TempDir()
	addr, ops := freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	imageEnv := []string{"GATEHOUSE_ADDR=:" + port, "GATEHOUSE_DATABASE_URL=" + filepath.Join(dir, "gatehouse.db")}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--ops-addr", ops, "--log-level", "warn")
	cmd.Env = append(os.Environ(), append(imageEnv, "GATEHOUSE_ADMIN_PASSWORD="+processAdminPassword)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + ops + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, out, errOut := runGatehouse(t, imageEnv, "", "healthcheck")
	if code != 1 || !strings.Contains(errOut, "404") || !strings.Contains(errOut, "GATEHOUSE_OPS_ADDR") {
		t.Errorf("health check of `serve --ops-addr %s` without the ops address in its environment: exit %d %q %q, want 1 naming GATEHOUSE_OPS_ADDR", ops, code, out, errOut)
	}
	code, out, errOut = runGatehouse(t, append(imageEnv, "GATEHOUSE_OPS_ADDR="+ops), "", "healthcheck")
	if code != 0 {
		t.Errorf("health check with GATEHOUSE_OPS_ADDR=%s: exit %d %q %q, want 0", ops, code, out, errOut)
	}
}
