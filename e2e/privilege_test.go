package e2e

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/token"
)

// Attacks on the privilege boundaries (issue 15): operator takeover, the
// last admin, what a password change ends, who the audit log names, and
// client authentication on the password grant.

// meID returns the id of the user a token acts as.
func meID(t *testing.T, env *servertest.Env, tok string) string {
	t.Helper()
	r := env.As(tok, "GET", "/v1/me", nil)
	servertest.Expect(t, r, http.StatusOK, "")
	return r.Map(t)["user"].(map[string]any)["id"].(string)
}

// userState is what a privilege attack must not change.
type userState struct {
	Name, Status string
	Roles        []any
	Operator     bool
}

func stateOf(t *testing.T, env *servertest.Env, tok, id string) userState {
	t.Helper()
	r := env.As(tok, "GET", "/v1/users/"+id, nil)
	servertest.Expect(t, r, http.StatusOK, "")
	m := r.Map(t)
	op, _ := m["operator"].(bool)
	roles, _ := m["roles"].([]any)
	return userState{Name: m["name"].(string), Status: m["status"].(string), Roles: roles, Operator: op}
}

func sameState(a, b userState) bool {
	if a.Name != b.Name || a.Status != b.Status || a.Operator != b.Operator || len(a.Roles) != len(b.Roles) {
		return false
	}
	for i := range a.Roles {
		if a.Roles[i] != b.Roles[i] {
			return false
		}
	}
	return true
}

// uiSession is an admin UI session held by a plain HTTP client that does
// not follow redirects: the session cookie in its jar and the CSRF token
// of the last page it read.
type uiSession struct {
	t    *testing.T
	url  string
	c    *http.Client
	csrf string
}

// uiSignIn signs in to the admin UI with a password, as a browser would.
func uiSignIn(t *testing.T, env *servertest.Env, email, pw string) *uiSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	s := &uiSession{t: t, url: env.URL, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	s.get("/admin/login")
	status, _, loc := s.post("/admin/login", url.Values{"email": {email}, "password": {pw}})
	if status != http.StatusSeeOther || loc != "/admin" {
		t.Fatalf("sign in as %s: %d to %q", email, status, loc)
	}
	return s
}

func (s *uiSession) do(req *http.Request) (status int, body, location string) {
	s.t.Helper()
	resp, err := s.c.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body = string(data)
	if csrf := between(body, `name="csrf" value="`, `"`); csrf != "" {
		s.csrf = csrf
	}
	return resp.StatusCode, body, resp.Header.Get("Location")
}

// get fetches a page and keeps its CSRF token.
func (s *uiSession) get(path string) (status int, body, location string) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	return s.do(req)
}

// post submits a form with the CSRF token of the last page read.
func (s *uiSession) post(path string, form url.Values) (status int, body, location string) {
	s.t.Helper()
	form.Set("csrf", s.csrf)
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req)
}

// live reports whether the session still opens the admin UI: an ended
// session is sent to the sign-in page.
func (s *uiSession) live() bool {
	s.t.Helper()
	status, _, loc := s.get("/admin")
	return !(status == http.StatusSeeOther && loc == "/admin/login")
}

// answer is one answer of sendTogether.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// sendTogether sends the requests at the same moment: each on its own
// connection, opened beforehand, released together. It returns the
// answers in order.
func sendTogether(t *testing.T, env *servertest.Env, reqs ...*http.Request) []answer {
	t.Helper()
	clients := make([]*http.Client, len(reqs))
	for i := range clients {
		clients[i] = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		resp, err := clients[i].Get(env.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Cleanup(clients[i].CloseIdleConnections)
	}
	answers := make([]answer, len(reqs))
	errs := make([]error, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			<-start
			resp, err := clients[i].Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			answers[i], errs[i] = answer{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return answers
}

// releaseTogether is sendTogether for the statuses alone.
func releaseTogether(t *testing.T, env *servertest.Env, reqs ...*http.Request) []int {
	t.Helper()
	answers := sendTogether(t, env, reqs...)
	statuses := make([]int, len(answers))
	for i, a := range answers {
		statuses[i] = a.Status
	}
	return statuses
}

// TestOperatorTakeover attacks the operator through the API: an admin of
// the default account, an API token acting as the operator (in any case,
// with a trailing space), a member raising themselves, and an admin trying
// to become an operator.
func TestOperatorTakeover(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	opID := meID(t, env, op)
	env.CreateUser(op, "eve@example.com", memberPW, "admin")
	eve := env.Login("eve@example.com", memberPW)
	memberID := env.CreateUser(op, "mallory@example.com", memberPW)
	member := env.Login("mallory@example.com", memberPW)
	tok := withAPIToken(t, env, op)
	before := stateOf(t, env, op, opID)
	if !before.Operator {
		t.Fatalf("bootstrap admin is not the operator: %+v", before)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if now := stateOf(t, env, op, opID); !sameState(before, now) {
			t.Fatalf("operator changed: %+v, was %+v", now, before)
		}
		servertest.Expect(t, env.As(env.AdminToken(), "GET", "/v1/me", nil), http.StatusOK, "")
	}
	changes := []map[string]any{
		{"password": "taken over password"},
		{"roles": []string{}},
		{"roles": []string{"developer"}},
		{"roles": []string{"admin", "developer"}},
		{"status": "disabled"},
		{"name": "Not the operator"},
	}

	t.Run("an admin of the default account cannot change the operator", func(t *testing.T) {
		for _, c := range changes {
			servertest.Expect(t, env.As(eve, "PATCH", "/v1/users/"+opID, c), http.StatusForbidden, "forbidden")
		}
		servertest.Expect(t, env.As(eve, "PUT", "/v1/developers/"+opID, nil), http.StatusForbidden, "forbidden")
		servertest.Expect(t, env.As(op, "PUT", "/v1/developers/"+opID, nil), http.StatusNoContent, "")
		before = stateOf(t, env, op, opID)
		servertest.Expect(t, env.As(eve, "DELETE", "/v1/developers/"+opID, nil), http.StatusForbidden, "forbidden")
		servertest.Expect(t, env.As(eve, "DELETE", "/v1/developers/"+opID+"?revoke_credentials=true", nil), http.StatusForbidden, "forbidden")
		unchanged(t)
		servertest.Expect(t, env.As(eve, "POST", "/v1/accounts", map[string]string{"name": "Mine", "admin_email": "eve2@example.com", "admin_password": memberPW}), http.StatusForbidden, "forbidden")
	})

	t.Run("an API token acting as the operator gains no operator right", func(t *testing.T) {
		for _, email := range []string{servertest.AdminEmail, strings.ToUpper(servertest.AdminEmail), servertest.AdminEmail + " ", " Admin@Example.COM\t", ""} {
			as := func(method, path string, body any) *servertest.Response {
				h := []string{"X-API-Token", tok.Token}
				if email != "" {
					h = append(h, "X-User-Email", email)
				}
				return env.Request(method, path, body, h...)
			}
			if email != "" {
				if r := as("GET", "/v1/me", nil); r.Status != http.StatusOK || r.Map(t)["acting_as"] != servertest.AdminEmail {
					t.Fatalf("acting as %q: %d %s", email, r.Status, r.Body)
				}
			}
			servertest.Expect(t, as("POST", "/v1/accounts", map[string]string{"name": "Stolen", "admin_email": "thief@stolen.example", "admin_password": memberPW}), http.StatusForbidden, "forbidden")
			for _, c := range changes {
				servertest.Expect(t, as("PATCH", "/v1/users/"+opID, c), http.StatusForbidden, "forbidden")
			}
			servertest.Expect(t, as("DELETE", "/v1/developers/"+opID, nil), http.StatusForbidden, "forbidden")
		}
		unchanged(t)
		servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": "thief@stolen.example", "password": memberPW}), http.StatusBadRequest, "invalid_grant")
	})

	t.Run("a member cannot make themselves an admin", func(t *testing.T) {
		servertest.Expect(t, env.As(member, "PATCH", "/v1/users/"+memberID, map[string]any{"roles": []string{"admin"}}), http.StatusForbidden, "forbidden")
		servertest.Expect(t, env.As(member, "PUT", "/v1/developers/"+memberID, nil), http.StatusForbidden, "forbidden")
		servertest.Expect(t, env.Request("PATCH", "/v1/users/"+memberID, map[string]any{"roles": []string{"admin"}},
			"X-API-Token", tok.Token, "X-User-Email", "mallory@example.com"), http.StatusForbidden, "forbidden")
		servertest.Expect(t, env.As(member, "POST", "/v1/users", map[string]any{"email": "sock@example.com", "password": memberPW, "roles": []string{"admin"}}), http.StatusForbidden, "forbidden")
		if st := stateOf(t, env, op, memberID); len(st.Roles) != 0 {
			t.Fatalf("member gained roles %v", st.Roles)
		}
		servertest.Expect(t, env.As(member, "GET", "/v1/audit", nil), http.StatusForbidden, "forbidden")
	})

	t.Run("an admin cannot set the operator flag", func(t *testing.T) {
		eveID := meID(t, env, eve)
		for _, body := range []string{
			`{"operator":true}`,
			`{"Operator":true}`,
			`{"OPERATOR":true}`,
			`{"roles":["admin","operator"]}`,
			`{"roles":["operator"]}`,
		} {
			servertest.Expect(t, env.As(eve, "PATCH", "/v1/users/"+eveID, body, "Content-Type", "application/json"), http.StatusBadRequest, "invalid_request")
		}
		for _, body := range []string{
			`{"email":"op2@example.com","password":"member password 1","roles":["admin"],"operator":true}`,
			`{"email":"op2@example.com","password":"member password 1","roles":["operator"]}`,
		} {
			servertest.Expect(t, env.As(eve, "POST", "/v1/users", body, "Content-Type", "application/json"), http.StatusBadRequest, "invalid_request")
		}
		servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": "op2@example.com", "password": memberPW}), http.StatusBadRequest, "invalid_grant")
		// An account eve could make would have her as its admin, never an
		// operator: she can make none.
		servertest.Expect(t, env.As(eve, "POST", "/v1/accounts", map[string]string{"name": "Mine", "admin_email": "eve3@example.com", "admin_password": memberPW}), http.StatusForbidden, "forbidden")
		if st := stateOf(t, env, op, eveID); st.Operator {
			t.Fatal("eve became an operator")
		}
		// Nor can the admin of an account the operator made.
		_, boss := env.CreateAccount(op, "Other", "boss@other.example", "other admin password")
		bossID := meID(t, env, boss)
		servertest.Expect(t, env.As(boss, "PATCH", "/v1/users/"+bossID, `{"operator":true}`, "Content-Type", "application/json"), http.StatusBadRequest, "invalid_request")
		servertest.Expect(t, env.As(boss, "POST", "/v1/accounts", map[string]string{"name": "Mine", "admin_email": "boss2@other.example", "admin_password": memberPW}), http.StatusForbidden, "forbidden")
		servertest.Expect(t, env.As(boss, "PATCH", "/v1/users/"+opID, map[string]any{"password": "taken over password"}), http.StatusNotFound, "not_found")
	})

	t.Run("the operator still changes themselves", func(t *testing.T) {
		servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+opID, map[string]any{"name": "Operator"}), http.StatusOK, "")
		if st := stateOf(t, env, op, opID); st.Name != "Operator" || !st.Operator {
			t.Fatalf("operator %+v", st)
		}
		env.AdminToken()
	})
}

// TestPrivilegeGuardsInAdminUI drives the users page with a session cookie
// and the CSRF token: the operator and last-admin guards hold there too.
func TestPrivilegeGuardsInAdminUI(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	opID := meID(t, env, op)

	// The operator is the default account's only admin: they cannot
	// demote or disable themselves.
	opUI := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)
	opUI.get("/admin/users")
	for _, form := range []url.Values{
		{"status": {"disabled"}, "role": {"admin"}},
		{"status": {"active"}, "role": {"developer"}},
		{"status": {"active"}},
	} {
		status, body, _ := opUI.post("/admin/users/"+opID, form)
		if status != http.StatusConflict || !strings.Contains(body, "last active admin") {
			t.Fatalf("last admin through the UI %v: %d %s", form, status, body)
		}
	}
	before := stateOf(t, env, op, opID)

	// Another admin of the default account cannot change the operator.
	env.CreateUser(op, "eve@example.com", memberPW, "admin")
	memberID := env.CreateUser(op, "ann@example.com", memberPW)
	eveUI := uiSignIn(t, env, "eve@example.com", memberPW)
	if status, body, _ := eveUI.get("/admin/users/" + opID); status != http.StatusOK || !strings.Contains(body, `action="/admin/users/`+opID+`"`) {
		t.Fatalf("the operator's page %d", status)
	}
	for _, form := range []url.Values{
		{"status": {"disabled"}, "role": {"admin"}},
		{"status": {"active"}},
		{"status": {"active"}, "role": {"developer"}},
		{"status": {"active"}, "role": {"admin", "developer"}},
	} {
		status, body, _ := eveUI.post("/admin/users/"+opID, form)
		if status != http.StatusForbidden || !strings.Contains(body, "Only the operator may change the operator") {
			t.Fatalf("admin changes the operator through the UI %v: %d %s", form, status, body)
		}
	}
	if now := stateOf(t, env, op, opID); !sameState(before, now) {
		t.Fatalf("operator changed: %+v, was %+v", now, before)
	}
	opUI.get("/admin/users")
	if !opUI.live() {
		t.Fatal("the operator's session ended")
	}
	env.AdminToken()
	// The same form works on anyone else: the refusals above are the guard.
	if status, _, loc := eveUI.post("/admin/users/"+memberID, url.Values{"status": {"active"}, "role": {"developer"}}); status != http.StatusSeeOther || loc != "/admin/users/"+memberID {
		t.Fatalf("admin changes a member: %d %q", status, loc)
	}
	if st := stateOf(t, env, op, memberID); len(st.Roles) != 1 || st.Roles[0] != "developer" {
		t.Fatalf("member roles %v", st.Roles)
	}
	// The operator may demote eve, who is not the last admin, and then
	// eve's session can change nothing.
	opUI.get("/admin/users")
	eveID := findUserID(t, env, op, "eve@example.com")
	if status, _, _ := opUI.post("/admin/users/"+eveID, url.Values{"status": {"active"}}); status != http.StatusSeeOther {
		t.Fatalf("operator demotes eve: %d", status)
	}
	if status, _, _ := eveUI.post("/admin/users/"+opID, url.Values{"status": {"disabled"}}); status != http.StatusForbidden {
		t.Fatalf("demoted eve posts: %d", status)
	}
	if now := stateOf(t, env, op, opID); !sameState(before, now) {
		t.Fatalf("operator changed: %+v, was %+v", now, before)
	}
}

// TestLastAdmin: an account's last active admin can neither lose the role
// nor be disabled, by themselves or by an API token's anonymous admin.
func TestLastAdmin(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	opID := meID(t, env, op)
	_, boss := env.CreateAccount(op, "Solo", "boss@solo.example", "solo admin password")
	bossID := meID(t, env, boss)
	servertest.Expect(t, env.As(boss, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), http.StatusOK, "")
	r := env.As(boss, "POST", "/v1/api-tokens", map[string]string{"name": "Robot"})
	servertest.Expect(t, r, http.StatusCreated, "")
	anon := r.Map(t)["token"].(string)

	removals := []map[string]any{
		{"roles": []string{}},
		{"roles": []string{"developer"}},
		{"status": "disabled"},
		{"status": "disabled", "roles": []string{"admin"}},
		{"roles": []string{}, "name": "Boss"},
	}
	refused := func(t *testing.T, r *servertest.Response) {
		t.Helper()
		servertest.Expect(t, r, http.StatusConflict, "conflict")
		if d, _ := r.Map(t)["error_description"].(string); !strings.Contains(d, "last active admin") {
			t.Fatalf("unclear message %q", d)
		}
	}
	t.Run("by themselves", func(t *testing.T) {
		for _, c := range removals {
			refused(t, env.As(boss, "PATCH", "/v1/users/"+bossID, c))
		}
		// The operator, the default account's only admin, likewise.
		for _, c := range removals {
			refused(t, env.As(op, "PATCH", "/v1/users/"+opID, c))
		}
	})
	t.Run("by the anonymous admin of an API token", func(t *testing.T) {
		for _, c := range removals {
			refused(t, env.Request("PATCH", "/v1/users/"+bossID, c, "X-API-Token", anon))
		}
		servertest.Expect(t, env.Request("DELETE", "/v1/developers/"+bossID, nil, "X-API-Token", anon), http.StatusOK, "")
	})
	t.Run("nothing changed", func(t *testing.T) {
		if st := stateOf(t, env, boss, bossID); st.Status != "active" || len(st.Roles) != 1 || st.Roles[0] != "admin" || st.Name != "" {
			t.Fatalf("boss %+v", st)
		}
		env.Login("boss@solo.example", "solo admin password")
		servertest.Expect(t, env.As(boss, "GET", "/v1/audit", nil), http.StatusOK, "")
		env.AdminToken()
	})
	t.Run("a disabled admin does not count", func(t *testing.T) {
		id := env.CreateUser(boss, "second@solo.example", memberPW, "admin")
		servertest.Expect(t, env.As(boss, "PATCH", "/v1/users/"+id, map[string]string{"status": "disabled"}), http.StatusOK, "")
		refused(t, env.As(boss, "PATCH", "/v1/users/"+bossID, map[string]any{"roles": []string{}}))
		// Enabled again, the second admin lets boss step down; then the
		// second admin is the last.
		servertest.Expect(t, env.As(boss, "PATCH", "/v1/users/"+id, map[string]string{"status": "active"}), http.StatusOK, "")
		servertest.Expect(t, env.As(boss, "PATCH", "/v1/users/"+bossID, map[string]any{"roles": []string{"developer"}}), http.StatusOK, "")
		second := env.Login("second@solo.example", memberPW)
		refused(t, env.As(second, "PATCH", "/v1/users/"+id, map[string]any{"status": "disabled"}))
		servertest.Expect(t, env.As(second, "PATCH", "/v1/users/"+bossID, map[string]any{"roles": []string{"admin"}}), http.StatusOK, "")
	})
}

// TestLastAdminConcurrentDemotions: two admins demote (or disable) each
// other at the same moment, round after round; one wins, and the account
// always keeps an active admin.
func TestLastAdminConcurrentDemotions(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	_, a := env.CreateAccount(op, "Pair", "a@pair.example", "pair admin password")
	aID := meID(t, env, a)
	bID := env.CreateUser(a, "b@pair.example", memberPW, "admin")
	servertest.Expect(t, env.As(a, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 100000}}), http.StatusOK, "")
	tok := withAPIToken(t, env, a) // acts as each admin, and as the anonymous admin to restore and observe

	activeAdmins := func() int {
		t.Helper()
		r := env.Request("GET", "/v1/users", nil, "X-API-Token", tok.Token)
		servertest.Expect(t, r, http.StatusOK, "")
		n := 0
		for _, u := range r.Map(t)["data"].([]any) {
			m := u.(map[string]any)
			for _, role := range m["roles"].([]any) {
				if role == "admin" && m["status"] == "active" {
					n++
				}
			}
		}
		return n
	}
	demote := func(actor, target string, body string) *http.Request {
		req, _ := http.NewRequest("PATCH", env.URL+"/v1/users/"+target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Token", tok.Token)
		req.Header.Set("X-User-Email", actor)
		return req
	}
	const rounds = 12
	for round := range rounds {
		body := `{"roles":[]}`
		if round%2 == 1 {
			body = `{"status":"disabled"}`
		}
		if n := activeAdmins(); n != 2 {
			t.Fatalf("round %d starts with %d admins", round, n)
		}
		st := releaseTogether(t, env, demote("a@pair.example", bID, body), demote("b@pair.example", aID, body))
		n := activeAdmins()
		if n < 1 {
			t.Fatalf("round %d (%s): no active admin left; statuses %v", round, body, st)
		}
		won := 0
		for _, s := range st {
			switch s {
			case http.StatusOK:
				won++
			case http.StatusConflict, http.StatusForbidden: // the last admin, or no longer an admin
			default:
				t.Fatalf("round %d: status %d", round, s)
			}
		}
		if won != 1 || n != 1 {
			t.Fatalf("round %d (%s): %d demotions won, %d admins left; statuses %v", round, body, won, n, st)
		}
		for _, id := range []string{aID, bID} {
			servertest.Expect(t, env.Request("PATCH", "/v1/users/"+id, map[string]any{"roles": []string{"admin"}, "status": "active"}, "X-API-Token", tok.Token), http.StatusOK, "")
		}
	}
}

// TestPrivilegeDemotionRaces: an admin demoted or disabled while their own
// request to undo it is in flight stays demoted or disabled: the request
// is judged by the actor's roles and status when it commits, not when it
// was authenticated.
func TestPrivilegeDemotionRaces(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	_, a := env.CreateAccount(op, "Pair", "a@pair.example", "pair admin password")
	bID := env.CreateUser(a, "b@pair.example", memberPW, "admin")
	servertest.Expect(t, env.As(a, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 100000}}), http.StatusOK, "")
	tok := withAPIToken(t, env, a)
	patch := func(actor, body string) *http.Request {
		req, _ := http.NewRequest("PATCH", env.URL+"/v1/users/"+bID, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Token", tok.Token)
		req.Header.Set("X-User-Email", actor)
		return req
	}
	const rounds = 20
	for round := range rounds {
		demote, undo := `{"roles":["developer"]}`, `{"roles":["admin"],"name":"B"}`
		if round%2 == 1 {
			demote, undo = `{"status":"disabled"}`, `{"status":"active","name":"B"}`
		}
		st := releaseTogether(t, env, patch("a@pair.example", demote), patch("b@pair.example", undo))
		if st[0] != http.StatusOK || (st[1] != http.StatusOK && st[1] != http.StatusForbidden) {
			t.Fatalf("round %d: statuses %v", round, st)
		}
		b := env.Request("GET", "/v1/users/"+bID, nil, "X-API-Token", tok.Token).Map(t)
		if b["status"] == "active" && len(b["roles"].([]any)) == 1 && b["roles"].([]any)[0] == "admin" {
			t.Fatalf("round %d (%s against %s): the demoted admin undid it; statuses %v", round, undo, demote, st)
		}
		servertest.Expect(t, env.Request("PATCH", "/v1/users/"+bID, map[string]any{"roles": []string{"admin"}, "status": "active", "name": ""},
			"X-API-Token", tok.Token), http.StatusOK, "")
	}
}

// TestPasswordChangeEndsSessions: after an admin resets a user's password,
// the user's password-grant tokens and admin UI session stop working on
// the next request; their separate credentials keep working.
func TestPasswordChangeEndsSessions(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID := env.CreateUser(op, "ann@example.com", memberPW, "admin", "developer")
	viaAuthorization := env.Login("ann@example.com", memberPW)
	viaTokenEndpoint := accessToken(t, env.Request("POST", "/oauth/token",
		url.Values{"grant_type": {"password"}, "username": {"ann@example.com"}, "password": {memberPW}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded"))
	ui := uiSignIn(t, env, "ann@example.com", memberPW)
	app := enableAPIAccess(t, env, viaAuthorization, nil)
	r := env.As(viaAuthorization, "POST", "/v1/credentials", map[string]string{"name": "CI"})
	servertest.Expect(t, r, http.StatusCreated, "")
	var c credential
	r.JSON(t, &c)
	clientTok := accessToken(t, clientToken(env, c))
	servertest.Expect(t, env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), http.StatusOK, "")
	r = env.As(viaAuthorization, "POST", "/v1/api-tokens", map[string]string{"name": "Ann's"})
	servertest.Expect(t, r, http.StatusCreated, "")
	apiTok := r.Map(t)["token"].(string)
	if !ui.live() {
		t.Fatal("session not live before the change")
	}

	servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+annID, map[string]string{"password": "ann's new password"}), http.StatusOK, "")

	t.Run("password-derived access ends", func(t *testing.T) {
		for _, tok := range []string{viaAuthorization, viaTokenEndpoint} {
			servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), http.StatusUnauthorized, "invalid_token")
		}
		if ui.live() {
			t.Fatal("the admin UI session survived the password change")
		}
		servertest.Expect(t, env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW}), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("separate credentials keep working", func(t *testing.T) {
		servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), http.StatusOK, "")
		servertest.Expect(t, refresh(env, app.ClientID, app.RefreshToken), http.StatusOK, "")
		servertest.Expect(t, env.As(clientTok, "GET", "/v1/me", nil), http.StatusOK, "")
		accessToken(t, clientToken(env, c))
		servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", apiTok), http.StatusOK, "")
		servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", apiTok, "X-User-Email", "ann@example.com"), http.StatusOK, "")
		servertest.Expect(t, env.As(op, "GET", "/v1/me", nil), http.StatusOK, "")
	})
	t.Run("the new password signs in", func(t *testing.T) {
		servertest.Expect(t, env.As(env.Login("ann@example.com", "ann's new password"), "GET", "/v1/me", nil), http.StatusOK, "")
		if !uiSignIn(t, env, "ann@example.com", "ann's new password").live() {
			t.Fatal("new session not live")
		}
	})
}

// TestPasswordChangeByUserKeepsTheirCredential: a user's own password
// change ends their other password-derived tokens and sessions but keeps
// the token it was made with; through an API token acting as them it is
// refused and ends nothing.
func TestPasswordChangeByUserKeepsTheirCredential(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID := env.CreateUser(op, "ann@example.com", memberPW, "admin")
	tok := withAPIToken(t, env, op)
	current := env.Login("ann@example.com", memberPW)
	other := env.Login("ann@example.com", memberPW)
	ui := uiSignIn(t, env, "ann@example.com", memberPW)

	servertest.Expect(t, env.As(current, "PATCH", "/v1/users/"+annID, map[string]string{"password": "ann's second password"}), http.StatusOK, "")
	servertest.Expect(t, env.As(current, "GET", "/v1/me", nil), http.StatusOK, "")
	servertest.Expect(t, env.As(other, "GET", "/v1/me", nil), http.StatusUnauthorized, "invalid_token")
	if ui.live() {
		t.Fatal("another session survived the user's own password change")
	}
	// Again, with the credential kept the first time.
	servertest.Expect(t, env.As(current, "PATCH", "/v1/users/"+annID, map[string]string{"password": "ann's third password"}), http.StatusOK, "")
	servertest.Expect(t, env.As(current, "GET", "/v1/me", nil), http.StatusOK, "")
	servertest.Expect(t, env.As(op, "GET", "/v1/me", nil), http.StatusOK, "")

	// Through an API token acting as her, the change is refused — her
	// own password is set only from a sign-in — and ends nothing.
	fresh := env.Login("ann@example.com", "ann's third password")
	servertest.Expect(t, env.Request("PATCH", "/v1/users/"+annID, map[string]string{"password": "ann's fourth password"},
		"X-API-Token", tok.Token, "X-User-Email", "ann@example.com"), http.StatusForbidden, "forbidden")
	for _, tk := range []string{current, fresh} {
		servertest.Expect(t, env.As(tk, "GET", "/v1/me", nil), http.StatusOK, "")
	}
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", tok.Token, "X-User-Email", "ann@example.com"), http.StatusOK, "")
	env.Login("ann@example.com", "ann's third password")
}

// TestAuditNamesCredential: a change made with an API token acting as a
// user is logged with the user and the API token.
func TestAuditNamesCredential(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID := env.CreateUser(op, "ann@example.com", memberPW, "admin")
	memberID := env.CreateUser(op, "bob@example.com", memberPW)
	tok := withAPIToken(t, env, op)

	servertest.Expect(t, env.Request("PATCH", "/v1/users/"+memberID, map[string]string{"name": "Bob"},
		"X-API-Token", tok.Token, "X-User-Email", "ANN@example.com"), http.StatusOK, "")
	servertest.Expect(t, env.Request("POST", "/v1/workspaces", map[string]string{"name": "Robot's"}, "X-API-Token", tok.Token), http.StatusCreated, "")
	servertest.Expect(t, env.As(op, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 90}}), http.StatusOK, "")

	entries := auditEntries(t, env, op)
	e := findAudit(t, entries, "user.update")
	if e["actor_id"] != annID || e["actor"] != "ann@example.com" || e["credential_id"] != tok.ID ||
		!strings.Contains(e["credential"].(string), "Zapier") || e["target_id"] != memberID {
		t.Fatalf("acting as a user: %v", e)
	}
	e = findAudit(t, entries, "workspace.create")
	if e["actor_id"] != tok.ID || e["credential_id"] != tok.ID || !strings.Contains(e["credential"].(string), "Zapier") {
		t.Fatalf("anonymous admin: %v", e)
	}
	e = findAudit(t, entries, "settings.update")
	if e["actor"] != servertest.AdminEmail || e["credential"] != "password" || e["credential_id"] == nil || e["credential_id"] == "" {
		t.Fatalf("password token: %v", e)
	}
	if strings.Contains(string(env.As(op, "GET", "/v1/audit?limit=200", nil).Body), tok.Token) {
		t.Fatal("audit log holds the API token")
	}
}

// TestAuditRevocationByOthers: RFC 7009 revocations by an admin or by
// another credential of the owner are audited; revoking a token with
// itself is not.
func TestAuditRevocationByOthers(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	annID := env.CreateUser(op, "ann@example.com", memberPW)
	revoke := func(tok string, authz ...string) {
		t.Helper()
		var hdr []string
		if len(authz) > 0 {
			hdr = []string{"Authorization", "Bearer " + authz[0]}
		}
		r := env.Request("POST", "/oauth/revoke", url.Values{"token": {tok}}.Encode(),
			append(hdr, "Content-Type", "application/x-www-form-urlencoded")...)
		servertest.Expect(t, r, http.StatusOK, "")
		servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), http.StatusUnauthorized, "invalid_token")
	}
	revocations := func() []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, e := range auditEntries(t, env, op) {
			if e["action"] == "token.revoke" {
				out = append(out, e)
			}
		}
		return out
	}

	revoke(env.Login("ann@example.com", memberPW), op)
	got := revocations()
	if len(got) != 1 {
		t.Fatalf("%d revocation entries after an admin's revocation", len(got))
	}
	e := got[0]
	d, _ := e["details"].(map[string]any)
	if e["actor"] != servertest.AdminEmail || e["target_type"] != "token" || e["target_id"] == "" || d["user_id"] != annID ||
		e["credential"] != "password" || e["remote_addr"] != "127.0.0.1" {
		t.Fatalf("entry %v", e)
	}

	// With itself, in the body or as the bearer: no entry.
	revoke(env.Login("ann@example.com", memberPW))
	self := env.Login("ann@example.com", memberPW)
	revoke(self, self)
	servertest.Expect(t, env.Request("POST", "/oauth/revoke", "token=gat_unknown", "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Bearer "+op), http.StatusOK, "")
	if got := revocations(); len(got) != 1 {
		t.Fatalf("%d revocation entries, want 1: %v", len(got), got)
	}

	// With another token of hers: audited, with her as the actor.
	revoke(env.Login("ann@example.com", memberPW), env.Login("ann@example.com", memberPW))
	got = revocations()
	if len(got) != 2 || got[0]["actor_id"] != annID {
		t.Fatalf("owner's revocation: %v", got)
	}
}

// TestPasswordGrantClientAuthentication: client credentials presented on
// the password grant are verified; wrong or unknown ones are invalid_client
// (RFC 6749 §3.2.1), and no token is issued.
func TestPasswordGrantClientAuthentication(t *testing.T) {
	env := servertest.Start(t)
	_, _, _, c := developer(t, env)
	app := enableAPIAccess(t, env, env.AdminToken(), nil)
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	const realm = `Basic realm="gatehouse"`
	unknownID, unknownSecret := token.New(token.ClientID), token.New(token.ClientSecret)
	creds := "username=dev@example.com&password=" + url.QueryEscape(memberPW)
	cases := []struct {
		name, extra, authz string
		status             int
		code, wwwAuth      string
	}{
		{"no client", "", "", 200, "", ""},
		{"empty basic, as x/oauth2 sends without a client", "", basic("", ""), 200, "", ""},
		{"developer credential in basic", "", basic(c.ClientID, c.ClientSecret), 200, "", ""},
		{"developer credential in body", "&client_id=" + c.ClientID + "&client_secret=" + c.ClientSecret, "", 200, "", ""},
		{"wrong secret in basic", "", basic(c.ClientID, "gcs_wrong"), 401, "invalid_client", realm},
		{"well-formed unknown client in basic", "", basic(unknownID, unknownSecret), 401, "invalid_client", realm},
		{"garbage client in basic", "", basic("nobody", "nothing"), 401, "invalid_client", realm},
		{"client id alone in basic", "", basic(c.ClientID, ""), 401, "invalid_client", realm},
		{"secret alone in basic", "", basic("", c.ClientSecret), 401, "invalid_client", realm},
		{"wrong secret in body", "&client_id=" + c.ClientID + "&client_secret=gcs_wrong", "", 401, "invalid_client", ""},
		{"well-formed unknown client in body", "&client_id=" + unknownID + "&client_secret=" + unknownSecret, "", 401, "invalid_client", ""},
		{"unknown client id alone in body", "&client_id=gci_unknown", "", 401, "invalid_client", ""},
		{"secret alone in body", "&client_secret=" + c.ClientSecret, "", 401, "invalid_client", ""},
		{"API access client id in body", "&client_id=" + app.ClientID, "", 401, "invalid_client", ""},
	}
	for _, path := range []string{"/oauth/token", "/authorization"} {
		for _, tc := range cases {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				body := creds + tc.extra
				if path == "/oauth/token" {
					body += "&grant_type=password"
				}
				hdr := []string{"Content-Type", "application/x-www-form-urlencoded"}
				if tc.authz != "" {
					hdr = append(hdr, "Authorization", tc.authz)
				}
				r := env.Request("POST", path, body, hdr...)
				servertest.Expect(t, r, tc.status, tc.code)
				if got := r.Header.Get("WWW-Authenticate"); got != tc.wwwAuth {
					t.Fatalf("WWW-Authenticate %q, want %q", got, tc.wwwAuth)
				}
				if tc.status == 200 {
					servertest.Expect(t, env.As(accessToken(t, r), "GET", "/v1/me", nil), 200, "")
				} else if strings.Contains(string(r.Body), "access_token") {
					t.Fatalf("token issued: %s", r.Body)
				}
			})
		}
	}
	t.Run("a wrong client is refused before the password is looked at", func(t *testing.T) {
		r := env.Request("POST", "/oauth/token", "grant_type=password&username=dev@example.com&password=wrong",
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", basic(c.ClientID, "gcs_wrong"))
		servertest.Expect(t, r, 401, "invalid_client")
	})
	t.Run("golang.org/x/oauth2", func(t *testing.T) {
		ctx := context.Background()
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			good := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/oauth/token", AuthStyle: style}}
			if _, err := good.PasswordCredentialsToken(ctx, "dev@example.com", memberPW); err != nil {
				t.Fatalf("style %d with the right client: %v", style, err)
			}
			bad := &oauth2.Config{ClientID: c.ClientID, ClientSecret: "gcs_wrong", Endpoint: oauth2.Endpoint{TokenURL: env.URL + "/oauth/token", AuthStyle: style}}
			if _, err := bad.PasswordCredentialsToken(ctx, "dev@example.com", memberPW); err == nil || !strings.Contains(err.Error(), "invalid_client") {
				t.Fatalf("style %d with a wrong client: %v", style, err)
			}
		}
	})
	t.Run("refresh grant", func(t *testing.T) {
		// The API access application is a public client: its id alone.
		r := refresh(env, app.ClientID, app.RefreshToken)
		servertest.Expect(t, r, 200, "")
		rt := r.Map(t)["refresh_token"].(string)
		// A secret presented with it is verified, and wrong.
		r = env.Request("POST", "/oauth/token", "grant_type=refresh_token&refresh_token="+rt,
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", basic(app.ClientID, "gcs_wrong"))
		servertest.Expect(t, r, 401, "invalid_client")
		if r.Header.Get("WWW-Authenticate") != realm {
			t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
		servertest.Expect(t, env.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "client_id": app.ClientID,
			"client_secret": unknownSecret, "refresh_token": rt}), 401, "invalid_client")
		// The refresh token was not spent by the refused requests.
		servertest.Expect(t, refresh(env, app.ClientID, rt), 200, "")
	})
}

// TestOperatorSessionsAndSignInsAreTheOperators attacks "only the operator
// changes the operator" for sessions and the sign-in throttle, and "a
// user's sessions are managed from a sign-in", over HTTP: an admin who is
// not the operator sees the operator's sessions but neither signs the
// operator out (API and console, whose page offers no such button) nor
// clears the operator's failed sign-ins; an API token acting as a user
// neither lists nor ends that user's sessions. The operator's console
// session survives every attempt.
func TestOperatorSessionsAndSignInsAreTheOperators(t *testing.T) {
	env := servertest.Start(t)
	op := env.AdminToken()
	var me map[string]any
	env.As(op, "GET", "/v1/me", nil).JSON(t, &me)
	opID := me["user"].(map[string]any)["id"].(string)
	annID := env.CreateUser(op, "ann@example.com", memberPW, "admin")
	ann := env.Login("ann@example.com", memberPW)
	opConsole := uiSignIn(t, env, servertest.AdminEmail, servertest.AdminPassword)

	servertest.Expect(t, env.As(ann, "GET", "/v1/users/"+opID+"/sessions", nil), 200, "")
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/users/"+opID+"/sessions", nil), 403, "forbidden")
	servertest.Expect(t, env.As(ann, "DELETE", "/v1/users/"+opID+"/throttle", nil), 403, "forbidden")
	servertest.Expect(t, env.As(op, "DELETE", "/v1/users/"+annID+"/throttle", nil), 204, "")

	annConsole := uiSignIn(t, env, "ann@example.com", memberPW)
	_, page, _ := annConsole.get("/admin/users/" + opID)
	for _, button := range []string{"Sign out everywhere", "Clear failed sign-ins", "Reset second factor"} {
		if strings.Contains(page, button) {
			t.Errorf("the operator's page offers %q to another admin", button)
		}
	}
	if status, _, loc := annConsole.post("/admin/users/"+opID+"/sessions/end", url.Values{}); status == http.StatusSeeOther && loc == "/admin/users/"+opID {
		t.Errorf("the console signed the operator out for another admin")
	}
	if !opConsole.live() {
		t.Fatal("another admin ended the operator's console session")
	}

	servertest.Expect(t, env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	tok, _ := apiTokenWith(t, env, op, map[string]any{"name": "sync"})
	for _, m := range []string{"GET", "DELETE"} {
		path := "/v1/me/sessions"
		if m == "DELETE" {
			path += "/ses_x"
		}
		servertest.Expect(t, env.Request(m, path, nil, "X-API-Token", tok, "X-User-Email", servertest.AdminEmail), 403, "forbidden")
	}
	if !opConsole.live() {
		t.Fatal("an API token acting as the operator ended their console session")
	}
	// The operator's own password sign-in manages them.
	var list struct{ Data []map[string]any }
	env.As(op, "GET", "/v1/me/sessions", nil).JSON(t, &list)
	if len(list.Data) != 1 {
		t.Fatalf("the operator's sessions: %v", list.Data)
	}
	servertest.Expect(t, env.As(op, "DELETE", "/v1/users/"+opID+"/sessions", nil), 200, "")
	if opConsole.live() {
		t.Fatal("the operator's own sign-out left the session working")
	}
}
