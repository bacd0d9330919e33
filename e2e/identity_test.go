package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestIdentityRulesOverHTTP sends passwords that are short in characters
// or common, and look-alike addresses, to every way in that sets one —
// a new user, a new account's admin, a reset, one's own change — and
// checks each is 400 naming the rule and writes nothing (issue 28, SPEC
// §10.8 "People are who they seem").
func TestIdentityRulesOverHTTP(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	annID := env.CreateUser(admin, "ann@example.com", memberPW)
	users := func() int {
		return len(env.As(admin, "GET", "/v1/users?limit=200", nil).Map(t)["data"].([]any))
	}
	before := users()

	badPasswords := map[string]string{
		"🔑🔑":       "at least 8 characters",
		"éééé":     "at least 8 characters",
		"        ": "one character repeated",
		"password": "common passwords",
		"12345678": "common passwords",
		"Iloveyou": "common passwords",
	}
	badEmails := map[string]string{
		"b\u200bob@example.com":  "invisible",
		"\u0430lice@example.com": "mix scripts",
		"rene\u0301@example.com": "normal form",
		"bob@exa\u202emple.com":  "invisible",
	}
	refused := func(r *servertest.Response, rule string) {
		t.Helper()
		servertest.Expect(t, r, http.StatusBadRequest, "invalid_request")
		if !strings.Contains(string(r.Body), rule) {
			t.Errorf("refusal does not name the rule %q: %s", rule, r.Body)
		}
	}
	for pw, rule := range badPasswords {
		refused(env.As(admin, "POST", "/v1/users", map[string]any{"email": "new@example.com", "password": pw, "roles": []string{}}), rule)
		refused(env.As(admin, "PATCH", "/v1/users/"+annID, map[string]any{"password": pw}), rule)
		refused(env.As(admin, "POST", "/v1/accounts", map[string]string{"name": "N", "admin_email": "n@example.com", "admin_password": pw}), rule)
	}
	for email, rule := range badEmails {
		refused(env.As(admin, "POST", "/v1/users", map[string]any{"email": email, "password": memberPW, "roles": []string{}}), rule)
		refused(env.As(admin, "POST", "/v1/accounts", map[string]string{"name": "N", "admin_email": email, "admin_password": memberPW}), rule)
	}
	if n := users(); n != before {
		t.Fatalf("users %d → %d", before, n)
	}
	if r := env.As(admin, "GET", "/v1/accounts", nil); len(r.Map(t)["data"].([]any)) != 1 {
		t.Fatalf("an account was made: %s", r.Body)
	}
	// Ann's password is unchanged, and her own change is held to the rules.
	ann := env.Login("ann@example.com", memberPW)
	s := uiSignIn(t, env, "ann@example.com", memberPW)
	s.get("/admin/me")
	status, body, _ := s.post("/admin/me/password", map[string][]string{"current_password": {memberPW}, "new_password": {"qwertyuiop"}, "repeat_password": {"qwertyuiop"}})
	if status != http.StatusBadRequest || !strings.Contains(body, "most common passwords") {
		t.Fatalf("own change to a common password: %d %s", status, between(body, "<main", "</main>"))
	}
	servertest.Expect(t, env.As(ann, "GET", "/v1/me", nil), http.StatusOK, "")
	// Good ones pass: characters, not bytes, and a script of its own.
	env.CreateUser(admin, "иван@пример.рф", "日本語のパスワードです")
	env.Login("иван@пример.рф", "日本語のパスワードです")
}
