package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestDeleteUserOnTwoNodes attacks SPEC §10.8's user deletion on two
// nodes sharing one store and one Redis: a user holding every kind of
// credential — a password token, a refresh token of the API access
// application, a client-credentials token, an admin UI session — uses
// each on node B (so B has them cached); an admin deletes the user on
// node A; on B every one of them is refused at once. The address is then
// free, the old id is not found anywhere, and the audit log still holds
// every entry about the user under their id.
func TestDeleteUserOnTwoNodes(t *testing.T) {
	rs := startRedis(t, "")
	dbURL := servertest.DatabaseURL(t)
	node := func(c *server.Config) {
		c.DatabaseURL = dbURL
		c.RedisURL, c.RedisPrefix = "redis://127.0.0.1:"+rs.port+"/0", "delete:"
	}
	a := servertest.Start(t, node)
	b := servertest.Start(t, node)
	admin := a.AdminToken()

	annID := a.CreateUser(admin, "ann@example.com", memberPW, "admin", "developer")
	annTok := b.Login("ann@example.com", memberPW)
	app := enableAPIAccess(t, b, annTok, nil)
	r := b.As(annTok, "POST", "/v1/credentials", map[string]string{"name": "CI"})
	servertest.Expect(t, r, http.StatusCreated, "")
	var cred credential
	r.JSON(t, &cred)
	ccTok := accessToken(t, clientToken(b, cred))
	session := uiSignIn(t, b, "ann@example.com", memberPW)
	tokens := map[string]string{"password": annTok, "api access": app.AccessToken, "client credentials": ccTok}
	for _, tok := range tokens {
		servertest.Expect(t, b.As(tok, "GET", "/v1/me", nil), http.StatusOK, "")
		servertest.Expect(t, b.As(tok, "GET", "/v1/me", nil), http.StatusOK, "") // now cached on B
	}
	if !session.live() {
		t.Fatal("ann's admin UI session does not work before the delete")
	}

	// A member may not delete; an admin of another account does not find
	// the user; nobody deletes the operator.
	a.CreateUser(admin, "bob@example.com", memberPW)
	bobTok := a.Login("bob@example.com", memberPW)
	servertest.Expect(t, a.As(bobTok, "DELETE", "/v1/users/"+annID, nil), http.StatusForbidden, "")
	otherID, other := a.CreateAccount(admin, "Other", "boss@other.example", "other admin password")
	servertest.Expect(t, a.As(other, "DELETE", "/v1/users/"+annID, nil), http.StatusNotFound, "not_found")
	operatorID := meID(t, a, admin)
	servertest.Expect(t, a.As(annTok, "DELETE", "/v1/users/"+operatorID, nil), http.StatusForbidden, "forbidden")
	servertest.Expect(t, a.As(admin, "DELETE", "/v1/users/"+operatorID, nil), http.StatusConflict, "conflict")

	servertest.Expect(t, a.As(admin, "DELETE", "/v1/users/"+annID, nil), http.StatusNoContent, "")

	// On B, at once: every credential of Ann's is refused.
	for what, tok := range tokens {
		if r := b.As(tok, "GET", "/v1/me", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("%s token after the delete: %d %s", what, r.Status, r.Body)
		}
	}
	if r := refresh(b, app.ClientID, app.RefreshToken); r.Status != http.StatusBadRequest {
		t.Errorf("refresh after the delete: %d %s", r.Status, r.Body)
	}
	if r := clientToken(b, cred); r.Status != http.StatusUnauthorized && r.Status != http.StatusBadRequest {
		t.Errorf("client credentials grant after the delete: %d %s", r.Status, r.Body)
	}
	if session.live() {
		t.Error("ann's admin UI session works after the delete")
	}
	if r := b.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW}); r.Status == http.StatusOK {
		t.Error("ann signs in after the delete")
	}

	// The user is gone: by id, in lists, by address; deleting again is 404.
	servertest.Expect(t, b.As(admin, "GET", "/v1/users/"+annID, nil), http.StatusNotFound, "not_found")
	servertest.Expect(t, b.As(admin, "DELETE", "/v1/users/"+annID, nil), http.StatusNotFound, "not_found")
	if list := string(b.As(admin, "GET", "/v1/users?limit=200", nil).Body); strings.Contains(list, annID) {
		t.Errorf("the deleted user is listed: %s", list)
	}
	if r := b.As(admin, "GET", "/v1/users?email=ann@example.com", nil); len(r.Map(t)["data"].([]any)) != 0 {
		t.Errorf("the deleted user is found by address: %s", r.Body)
	}
	// The address is free, in any account.
	newAnn := a.CreateUser(other, "Ann@Example.com", memberPW)
	if newAnn == annID {
		t.Fatal("the new user has the deleted user's id")
	}
	// The audit log keeps Ann's entries under her id, and the delete.
	var created, deleted, used bool
	for _, e := range auditEntries(t, b, admin) {
		switch {
		case e["action"] == "user.create" && e["target_id"] == annID:
			created = true
		case e["action"] == "user.delete" && e["target_id"] == annID:
			deleted = true
		case e["actor_id"] == annID:
			used = true
		}
	}
	if !created || !deleted || !used {
		t.Errorf("audit log: create %v, delete %v, Ann's own entries %v", created, deleted, used)
	}

	// The account's last admin is never deleted, by themselves or the
	// operator.
	bossID := meID(t, a, other)
	servertest.Expect(t, a.As(other, "DELETE", "/v1/users/"+bossID, nil), http.StatusConflict, "conflict")
	servertest.Expect(t, a.As(admin, "DELETE", "/v1/accounts/"+otherID+"/users/"+bossID, nil), http.StatusConflict, "conflict")
}

// TestOperatorFindsAndDeletesAnyAddress: the operator finds which account
// holds an address (GET /v1/users?email=E&all_accounts=true) and deletes
// that user (DELETE /v1/accounts/{id}/users/{user_id}); nobody else may
// do either, and the account's own admins see the delete in their log.
func TestOperatorFindsAndDeletesAnyAddress(t *testing.T) {
	env := servertest.Start(t)
	operator := env.AdminToken()
	otherID, other := env.CreateAccount(operator, "Squatters", "boss@squat.example", "other admin password")
	squatID := env.CreateUser(other, "ceo@victim.example", memberPW)

	// The operator finds the address and its account, in any case.
	r := env.As(operator, "GET", "/v1/users?email=CEO@victim.example&all_accounts=true", nil)
	servertest.Expect(t, r, http.StatusOK, "")
	data := r.Map(t)["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("found %s", r.Body)
	}
	found := data[0].(map[string]any)
	acc, _ := found["account"].(map[string]any)
	if found["id"] != squatID || acc["id"] != otherID || acc["name"] != "Squatters" {
		t.Fatalf("found %s", r.Body)
	}
	// An address nobody holds: an empty list.
	r = env.As(operator, "GET", "/v1/users?email=nobody@victim.example&all_accounts=true", nil)
	if servertest.Expect(t, r, http.StatusOK, ""); len(r.Map(t)["data"].([]any)) != 0 {
		t.Fatalf("found %s", r.Body)
	}
	// Nobody else searches every account, or deletes through the operator's route.
	servertest.Expect(t, env.As(other, "GET", "/v1/users?email=admin@example.com&all_accounts=true", nil), http.StatusForbidden, "forbidden")
	servertest.Expect(t, env.As(other, "DELETE", "/v1/accounts/"+otherID+"/users/"+squatID, nil), http.StatusForbidden, "")
	servertest.Expect(t, env.As(operator, "GET", "/v1/users?email=x@example.com&all_accounts=maybe", nil), http.StatusBadRequest, "invalid_request")
	// Without all_accounts, only the caller's account is searched.
	if r := env.As(other, "GET", "/v1/users?email=admin@example.com", nil); len(r.Map(t)["data"].([]any)) != 0 {
		t.Fatalf("an admin found a user of another account: %s", r.Body)
	}

	// The user's id under the wrong account is not found.
	servertest.Expect(t, env.As(operator, "DELETE", "/v1/accounts/"+meAccount(t, env, operator)+"/users/"+squatID, nil), http.StatusNotFound, "not_found")
	servertest.Expect(t, env.As(operator, "DELETE", "/v1/accounts/"+otherID+"/users/"+squatID, nil), http.StatusNoContent, "")
	// The address is free for the real owner.
	env.CreateUser(operator, "ceo@victim.example", memberPW)
	// The account's admins see the delete in their log.
	if e := findAudit(t, auditEntries(t, env, other), "user.delete"); e["target_id"] != squatID {
		t.Fatalf("audit entry %v", e)
	}
}

// meAccount returns the account id of the caller of tok.
func meAccount(t *testing.T, env *servertest.Env, tok string) string {
	t.Helper()
	r := env.As(tok, "GET", "/v1/me", nil)
	servertest.Expect(t, r, http.StatusOK, "")
	return r.Map(t)["account"].(map[string]any)["id"].(string)
}

// TestConsoleDeletesUser deletes a user from the console: a confirmation
// page says what ends and what the audit log keeps, only its form
// deletes, and the user's session ends. Disabling a user who has no
// session does not speak of "0 admin UI sessions", nor capitalise their
// address.
func TestConsoleDeletesUser(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	annID := env.CreateUser(admin, "ann@example.com", memberPW)
	bobID := env.CreateUser(admin, "bob@example.com", memberPW)
	ann := uiSignIn(t, env, "ann@example.com", memberPW)
	s := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)

	_, page, _ := s.get("/admin/users/" + annID)
	if !strings.Contains(page, "/admin/users/"+annID+"/delete") {
		t.Fatal("the user page has no delete link")
	}
	status, page, _ := s.get("/admin/users/" + annID + "/delete")
	if status != http.StatusOK || !strings.Contains(page, "Delete ann@example.com?") || !strings.Contains(page, "audit log keeps") {
		t.Fatalf("confirmation: %d %.300s", status, page)
	}
	// A post that did not come from the confirmation changes nothing.
	if status, _, loc := s.post("/admin/users/"+annID+"/delete", url.Values{}); status != http.StatusSeeOther || loc != "/admin/users/"+annID+"/delete" {
		t.Fatalf("unconfirmed delete: %d to %q", status, loc)
	}
	servertest.Expect(t, env.As(admin, "GET", "/v1/users/"+annID, nil), http.StatusOK, "")
	s.get("/admin/users/" + annID + "/delete")
	if status, _, loc := s.post("/admin/users/"+annID+"/delete", url.Values{"confirmed": {"yes"}}); status != http.StatusSeeOther || loc != "/admin/users" {
		t.Fatalf("delete: %d to %q", status, loc)
	}
	servertest.Expect(t, env.As(admin, "GET", "/v1/users/"+annID, nil), http.StatusNotFound, "not_found")
	if ann.live() {
		t.Fatal("the deleted user's console session still works")
	}
	if e := findAudit(t, auditEntries(t, env, admin), "user.delete"); e["target_id"] != annID {
		t.Fatalf("audit %v", e)
	}

	// Bob has no session and no token: the disable confirmation says
	// nothing of zero sessions or tokens.
	s.get("/admin/users/" + bobID)
	_, page, _ = s.post("/admin/users/"+bobID, url.Values{"status": {"disabled"}})
	// An address starts a sentence as it is written, never capitalised.
	if !strings.Contains(page, "Disable bob@example.com?") || !strings.Contains(page, "bob@example.com can no longer sign in") ||
		strings.Contains(page, "Bob@example.com") || strings.Contains(page, " 0 admin UI session") || strings.Contains(page, " 0 live token") {
		t.Fatalf("disable confirmation: %s", between(page, "<main", "</main>"))
	}
}
