package e2e

import (
	"bytes"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/token"
)

type apiToken struct {
	ID, Name, Token, Prefix string
	CreatedAt               string `json:"created_at"`
}

// withAPIToken turns the extension on and makes a token.
func withAPIToken(t *testing.T, env *servertest.Env, admin string) apiToken {
	t.Helper()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "Zapier"})
	servertest.Expect(t, r, 201, "")
	var tok apiToken
	r.JSON(t, &tok)
	return tok
}

func TestAPITokensExtension(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	if string(env.As(admin, "GET", "/v1/extensions", nil).Body) != `{"api_tokens":{"enabled":false}}`+"\n" {
		t.Fatal("extension on by default")
	}
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "x"}), 403, "extension_disabled")
	tok := withAPIToken(t, env, admin)
	if tok.Name != "Zapier" || !strings.HasPrefix(tok.Token, "gak_") || !strings.HasPrefix(tok.Token, tok.Prefix) || tok.ID == "" || tok.CreatedAt == "" {
		t.Fatalf("token %+v", tok)
	}
	if string(env.As(admin, "GET", "/v1/extensions", nil).Body) != `{"api_tokens":{"enabled":true}}`+"\n" {
		t.Fatal("extension not on")
	}
	// Used as the anonymous admin.
	r := env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token)
	servertest.Expect(t, r, 200, "")
	if m := r.Map(t); m["anonymous"] != true || m["auth_method"] != "api_token" || m["user"] != nil {
		t.Fatalf("me %s", r.Body)
	}
	// The list shows last use, never the token.
	r = env.As(admin, "GET", "/v1/api-tokens", nil)
	if strings.Contains(string(r.Body), tok.Token) {
		t.Fatal("list shows the token")
	}
	item := r.Map(t)["data"].([]any)[0].(map[string]any)
	if item["last_used_at"] == nil || item["prefix"] != tok.Prefix || item["name"] != "Zapier" {
		t.Fatalf("list item %v", item)
	}
	// Extension off: refused until it is on again.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false}), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token), 401, "invalid_token")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token), 200, "")
	// Revoked: refused on the next request, for good.
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-tokens/"+tok.ID, nil), 204, "")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token), 401, "invalid_token")
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/api-tokens/"+tok.ID, nil), 404, "not_found")

	// Members may not manage tokens or the extension.
	env.CreateUser(admin, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)
	servertest.Expect(t, env.As(ann, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false}), 403, "forbidden")
	servertest.Expect(t, env.As(ann, "POST", "/v1/api-tokens", map[string]string{"name": "x"}), 403, "forbidden")
	servertest.Expect(t, env.As(ann, "GET", "/v1/api-tokens", nil), 403, "forbidden")
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]any{}), 400, "invalid_request")
}

func TestActAsUser(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID := env.CreateUser(op, "ann@example.com", memberPW)
	env.CreateUser(op, "bob@example.com", memberPW)
	disabled := env.CreateUser(op, "gone@example.com", memberPW)
	env.As(op, "PATCH", "/v1/users/"+disabled, map[string]string{"status": "disabled"})
	_, other := env.CreateAccount(op, "Other", "boss@other.example", "other admin password")
	env.CreateUser(other, "carol@other.example", memberPW)
	tok := withAPIToken(t, env, op)
	bobWS := env.As(env.Login("bob@example.com", memberPW), "POST", "/v1/workspaces", map[string]string{"name": "Bob's"}).Map(t)["id"].(string)

	// Acting as Ann: exactly her permissions.
	as := func(email, method, path string, body any) *servertest.Response {
		return env.Request(method, path, body, "X-API-Token", tok.Token, "X-User-Email", email)
	}
	r := as("ANN@example.com", "GET", "/v1/me", nil)
	servertest.Expect(t, r, 200, "")
	if m := r.Map(t); m["user"].(map[string]any)["id"] != annID || m["acting_as"] != "ann@example.com" || m["anonymous"] != false {
		t.Fatalf("me %s", r.Body)
	}
	servertest.Expect(t, as("ann@example.com", "GET", "/v1/workspaces/"+bobWS, nil), 404, "not_found")
	servertest.Expect(t, as("ann@example.com", "GET", "/v1/settings", nil), 403, "forbidden")
	// The anonymous admin sees Bob's workspace.
	servertest.Expect(t, env.Request("GET", "/v1/workspaces/"+bobWS, nil, "X-API-Token", tok.Token), 200, "")

	// Unknown, disabled and other-account users: the same 403, byte for byte.
	var first []byte
	for _, email := range []string{"nobody@example.com", "gone@example.com", "carol@other.example", "boss@other.example"} {
		r := as(email, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 403, "invalid_user")
		if first == nil {
			first = r.Body
		} else if !bytes.Equal(first, r.Body) {
			t.Fatalf("%s: %s differs from %s", email, r.Body, first)
		}
	}
	// The user header with any other credential is a bad request.
	servertest.Expect(t, env.As(op, "GET", "/v1/me", nil, "X-User-Email", "ann@example.com"), 400, "invalid_request")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-User-Email", "ann@example.com"), 400, "invalid_request")
	// Repeated headers are bad requests.
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token, "X-User-Email", "ann@example.com", "X-User-Email", "bob@example.com"), 400, "invalid_request")
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token, "X-API-Token", tok.Token), 400, "invalid_request")
	// Disabling the acted-as user takes effect on the next request.
	servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+annID, map[string]string{"status": "disabled"}), 200, "")
	servertest.Expect(t, as("ann@example.com", "GET", "/v1/me", nil), 403, "invalid_user")
}

func TestAPITokenGarbage(t *testing.T) {
	env := servertest.Start(t)
	tok := withAPIToken(t, env, env.AdminToken())
	sameLength := token.New(token.APIToken)
	flipped := tok.Token[:10] + string(rune(tok.Token[10]^1)) + tok.Token[11:]
	for name, v := range map[string]string{
		"prefix of a real token":  tok.Token[:30],
		"same-length wrong token": sameLength,
		"one character changed":   flipped,
		"access token in header":  env.AdminToken(),
		"garbage":                 "hello",
	} {
		t.Run(name, func(t *testing.T) {
			servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", v), 401, "invalid_token")
		})
	}
}

// TestAPITokenHeaderCRLF sends a raw request with CR in a header value.
func TestAPITokenHeaderCRLF(t *testing.T) {
	env := servertest.Start(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("GET /v1/me HTTP/1.1\r\nHost: x\r\nX-API-Token: gak_a\rX-User-Email: a@b.c\r\n\r\n"))
	buf := make([]byte, 512)
	n, _ := conn.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 400") {
		t.Fatalf("answer %q", buf[:n])
	}
}

// TestAPITokenWithCurl sends the reference guide's request shape with
// curl, with the default header names and with another vendor's.
func TestAPITokenWithCurl(t *testing.T) {
	curl := testenv.RequireTool(t, "curl")
	for _, c := range []struct{ name, tokenHeader, userHeader string }{
		{"default names", "x-api-token", "x-user-email"},
		{"other vendor's names", "x-auth-token", "x-act-as"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := servertest.Start(t, func(cfg *server.Config) {
				if c.tokenHeader != "x-api-token" {
					cfg.APITokenHeader, cfg.UserEmailHeader = "X-Auth-Token", "X-Act-As"
				}
			})
			admin := env.AdminToken()
			id := env.CreateUser(admin, "ann@example.com", memberPW)
			tok := withAPIToken(t, env, admin)
			out, err := exec.Command(curl, "-s", "-H", "Accept: application/json", "-H", c.tokenHeader+": "+tok.Token,
				"-H", c.userHeader+": ann@example.com", env.URL+"/v1/me").Output()
			if err != nil || !strings.Contains(string(out), `"id":"`+id+`"`) || !strings.Contains(string(out), `"acting_as":"ann@example.com"`) {
				t.Fatalf("curl: %v %s", err, out)
			}
		})
	}
}

func TestAPITokenRateLimitedPerToken(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	tok := withAPIToken(t, env, admin)
	r := env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token)
	if r.Header.Get("X-RateLimit-Burst-Remaining") != "99" {
		t.Fatalf("the API token has its own budget: %v", r.Header)
	}
}

// TestEmptyActAsHeader: SPEC §3.2 — the act-as header makes an API
// token's request act as that user, "an active user of the same account,
// else 403 invalid_user", and is 400 invalid_request with any other
// credential. Sent empty or blank it names nobody: 403 invalid_user with
// an API token (it was taken for no header, and the request became the
// token's anonymous admin, also through the gateway, whose upstream saw
// X-Gatehouse-Roles: admin), 400 with a bearer token.
func TestEmptyActAsHeader(t *testing.T) {
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) { c.Upstream = up.URL })
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	tok := withAPIToken(t, env, admin)

	for _, blank := range []string{"", "   "} {
		// Raw bytes, so that the header is surely on the wire.
		a := sendRaw(t, strings.TrimPrefix(env.URL, "http://"), "GET", "/v1/me", "X-API-Token", tok.Token, "X-User-Email", blank)
		if a.Status != 403 {
			t.Errorf("X-User-Email %q with an API token: %d %s, want 403 invalid_user (not the anonymous admin)", blank, a.Status, a.Body)
		}
		hits := up.hits.Load()
		r := env.Request("GET", "/orders/1", nil, "X-API-Token", tok.Token, "X-User-Email", blank)
		if r.Status != 403 || up.hits.Load() != hits {
			t.Errorf("gateway, X-User-Email %q: %d, upstream saw roles %q", blank, r.Status, up.last().Get("X-Gatehouse-Roles"))
		}
		r = env.As(admin, "GET", "/v1/me", nil, "X-User-Email", blank)
		if r.Status != 400 {
			t.Errorf("X-User-Email %q with a bearer token: %d, want 400 invalid_request", blank, r.Status)
		}
	}
}
