package e2e

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

func TestHealthAndReady(t *testing.T) {
	env := servertest.Start(t)
	servertest.Expect(t, env.Request("GET", "/healthz", nil), 200, "")
	r := env.Request("GET", "/readyz", nil)
	servertest.Expect(t, r, 200, "")
	if r.Map(t)["store"] != true {
		t.Fatalf("readyz %s", r.Body)
	}
}

func TestMetrics(t *testing.T) {
	env := servertest.Start(t)
	tok := env.AdminToken()
	env.As(tok, "GET", "/v1/me", nil)
	env.Request("GET", "/v1/me", nil)
	r := env.Request("GET", "/metrics", nil)
	servertest.Expect(t, r, 200, "")
	for _, want := range []string{
		`gatehouse_http_requests_total{route="GET /v1/me",status="200"} 1`,
		`gatehouse_http_requests_total{route="GET /v1/me",status="401"} 1`,
		`gatehouse_tokens_issued_total{grant="password"} 1`,
		`gatehouse_http_request_duration_seconds_bucket{route="POST /authorization"`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestLogsHoldNoSecrets runs the flows with JSON debug logging and checks
// that no issued secret or password appears in the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	var logs servertest.SyncBuffer
	env := servertest.Start(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	ann := env.Login("ann@example.com", memberPW)
	// A password in the query string, a failed login, a bad token.
	env.Request("POST", "/authorization?username=ann@example.com&password="+strings.ReplaceAll(memberPW, " ", "+"), nil)
	env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": "wrong password 9"})
	env.Request("GET", "/v1/me", nil, "Authorization", "Bearer "+ann+"x")
	env.As(ann, "GET", "/v1/me", nil)
	// Every other kind of secret: refresh tokens, client secrets, API tokens.
	app := enableAPIAccess(t, env, admin, nil)
	refresh(env, app.ClientID, app.RefreshToken)
	refresh(env, app.ClientID, app.RefreshToken) // a retry: answered with the same pair
	servertest.Expect(t, env.As(admin, "PUT", "/v1/developers/"+env.CreateUser(admin, "dev@example.com", memberPW), nil), 204, "")
	var c credential
	env.As(env.Login("dev@example.com", memberPW), "POST", "/v1/credentials", map[string]string{"name": "x"}).JSON(t, &c)
	clientToken(env, c)
	clientToken(env, credential{ClientID: c.ClientID, ClientSecret: c.ClientSecret + "x"})
	tok := withAPIToken(t, env, admin)
	env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token, "X-User-Email", "nobody@example.com")
	out := logs.String()
	if !strings.Contains(out, `"path":"/authorization"`) {
		t.Fatalf("no request logs captured: %.300s", out)
	}
	for _, s := range []string{admin, ann, memberPW, "wrong password 9", servertest.AdminPassword,
		app.AccessToken, app.RefreshToken, c.ClientSecret, tok.Token} {
		if strings.Contains(out, s) {
			t.Errorf("log holds secret %.8s…", s)
		}
	}
}
