package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestOperatorAccountsUI: the operator lists, creates, renames, suspends
// (after a confirmation that says what stops) and reactivates accounts in
// the admin UI; an ordinary admin has no such page.
func TestOperatorAccountsUI(t *testing.T) {
	env := servertest.Start(t)
	c := clientFrom("127.0.0.1", nil)
	session := adminSessionCookie(t, c, env.URL)
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", env.URL+path, nil)
		req.AddCookie(session)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(resp)
	}
	post := func(path string, form url.Values) (int, string, string) {
		t.Helper()
		_, page := get("/admin/accounts")
		form.Set("csrf", between(page, `name="csrf" value="`, `"`))
		req, _ := http.NewRequest("POST", env.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(session)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Location"), readAll(resp)
	}

	st, body := get("/admin/accounts")
	if st != 200 || !strings.Contains(body, `value="default"`) || !strings.Contains(body, "your account") {
		t.Fatalf("accounts page: %d %.300s", st, body)
	}
	if st, loc, _ := post("/admin/accounts", url.Values{"name": {"tenant"}, "admin_email": {"boss@tenant.example"}, "admin_password": {memberPW}}); st != 303 || !strings.HasSuffix(loc, "/admin/accounts") {
		t.Fatalf("create: %d %s", st, loc)
	}
	boss := env.Login("boss@tenant.example", memberPW)
	accID := env.As(boss, "GET", "/v1/me", nil).Map(t)["account"].(map[string]any)["id"].(string)

	// Suspending asks first and changes nothing until confirmed.
	st, _, body = post("/admin/accounts/"+accID, url.Values{"status": {"suspended"}})
	if st != 200 || !strings.Contains(body, "Suspend the account tenant?") || !strings.Contains(body, "refused (401)") {
		t.Fatalf("suspend without confirming: %d %.400s", st, body)
	}
	servertest.Expect(t, env.As(boss, "GET", "/v1/me", nil), 200, "")
	if st, _, _ := post("/admin/accounts/"+accID, url.Values{"status": {"suspended"}, "confirmed": {"yes"}}); st != 303 {
		t.Fatalf("confirmed suspend: %d", st)
	}
	servertest.Expect(t, env.As(boss, "GET", "/v1/me", nil), 401, "invalid_token")
	if _, body := get("/admin/accounts"); !strings.Contains(body, "suspended") {
		t.Fatal("the list does not show the suspension")
	}
	if st, _, _ := post("/admin/accounts/"+accID, url.Values{"status": {"active"}, "name": {"tenant two"}}); st != 303 {
		t.Fatalf("reactivate: %d", st)
	}
	servertest.Expect(t, env.As(boss, "GET", "/v1/me", nil), 200, "")
	if _, body := get("/admin/accounts"); !strings.Contains(body, `value="tenant two"`) {
		t.Fatal("the rename does not show")
	}

	// A tenant's admin has no accounts page.
	bossSession := adminSessionCookieAs(t, c, env.URL, "boss@tenant.example", memberPW)
	req, _ := http.NewRequest("GET", env.URL+"/admin/accounts", nil)
	req.AddCookie(bossSession)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(resp); resp.StatusCode != http.StatusForbidden || strings.Contains(body, `value="default"`) {
		t.Fatalf("a tenant admin on the accounts page: %d", resp.StatusCode)
	}
}
