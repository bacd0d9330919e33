package e2e

import (
	"github.com/gatehouse/gatehouse/token"

	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// logLines returns the JSON log lines with the given message.
func logLines(t *testing.T, logs *servertest.SyncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// requestLine returns the request log line with the given request id.
func requestLine(t *testing.T, logs *servertest.SyncBuffer, id string) map[string]any {
	t.Helper()
	for _, m := range logLines(t, logs, "request") {
		if m["request_id"] == id {
			return m
		}
	}
	t.Fatalf("no request line with id %q in %s", id, logs.String())
	return nil
}

// TestRequestLogsAnswerWhy checks that the request log tells who was
// refused and why: every answer carries X-Request-Id, and its log line has
// the same id, the status, the duration in milliseconds, the principal's
// ids, the credential id and the error code — and never a secret.
func TestRequestLogsAnswerWhy(t *testing.T) {
	var logs servertest.SyncBuffer
	env := servertest.Start(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	admin := env.AdminToken()
	annID := env.CreateUser(admin, "ann@example.com", memberPW)
	tok := withAPIToken(t, env, admin)

	// An API token acting as a user: the user, the account and the token.
	r := env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token, "X-User-Email", "ann@example.com", "X-Request-Id", "why-1")
	servertest.Expect(t, r, 200, "")
	// The client is no trusted proxy: its id is logged beside Gatehouse's.
	if id := r.Header.Get("X-Request-Id"); id == "" || id == "why-1" {
		t.Fatalf("request id %q", id)
	}
	line := requestLine(t, &logs, r.Header.Get("X-Request-Id"))
	for k, want := range map[string]any{"status": 200.0, "user_id": annID, "credential_id": tok.ID, "auth_method": "api_token", "path": "/v1/me",
		"client_request_id": "why-1"} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v", k, line[k], want)
		}
	}
	if line["account_id"] == nil || line["duration_ms"] == nil || line["error"] != nil {
		t.Errorf("line %v", line)
	}

	// Refusals name their error code; an id that is not sane is replaced.
	badID := "bad id <" + strings.Repeat("x", 200) + ">"
	r = env.Request("GET", "/v1/me", nil, "Authorization", "Bearer gat_garbage", "X-Request-Id", badID)
	servertest.Expect(t, r, 401, "invalid_token")
	// (A made id is random hex, which may spell "bad": compare, not search.)
	id := r.Header.Get("X-Request-Id")
	if id == "" || id == badID || strings.ContainsAny(id, " <>") || strings.Contains(id, "xxx") {
		t.Fatalf("request id %q", id)
	}
	if line := requestLine(t, &logs, id); line["error"] != "invalid_token" || line["status"] != 401.0 {
		t.Fatalf("line %v", line)
	}
	r = env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token, "X-User-Email", "nobody@example.com")
	servertest.Expect(t, r, 403, "invalid_user")
	if line := requestLine(t, &logs, r.Header.Get("X-Request-Id")); line["error"] != "invalid_user" {
		t.Fatalf("line %v", line)
	}
	// Every answer has an id, even a 404 of no route.
	if r := env.Request("GET", "/nowhere", nil); r.Header.Get("X-Request-Id") == "" {
		t.Fatal("404 without a request id")
	}

	// A throttled password attempt is a warning with the request's id.
	var last *servertest.Response
	for i := 0; i < 50; i++ {
		last = env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": "wrong " + strings.Repeat("x", i)})
		if last.Status == 429 {
			break
		}
	}
	servertest.Expect(t, last, 429, "too_many_attempts")
	warned := false
	for _, m := range logLines(t, &logs, "attempts throttled") {
		warned = warned || (m["level"] == "WARN" && m["request_id"] == last.Header.Get("X-Request-Id"))
	}
	if !warned {
		t.Fatalf("no throttle warning for %s", last.Header.Get("X-Request-Id"))
	}
	for _, s := range []string{admin, tok.Token, memberPW} {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("log holds secret %.8s…", s)
		}
	}
}

// TestUnreachableRedisIsAWarning runs a node whose Redis is not there:
// authenticated requests are refused with 503, and each refusal is a
// warning carrying its request id.
func TestUnreachableRedisIsAWarning(t *testing.T) {
	var logs servertest.SyncBuffer
	env := servertest.Start(t, func(c *server.Config) {
		c.RedisURL = "redis://" + freeAddr(t) + "/0" // nothing listens there
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	// Without Redis even sign-in fails closed (the shared throttle); a
	// well-formed token that cannot be checked is refused the same way.
	servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword}),
		503, "temporarily_unavailable")
	r := env.As(token.New(token.AccessToken), "GET", "/v1/me", nil)
	servertest.Expect(t, r, 503, "temporarily_unavailable")
	id := r.Header.Get("X-Request-Id")
	if line := requestLine(t, &logs, id); line["error"] != "temporarily_unavailable" {
		t.Fatalf("request line %v", line)
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["level"] == "WARN" && m["request_id"] == id {
			return
		}
	}
	t.Fatalf("no warning for request %s:\n%s", id, logs.String())
}
