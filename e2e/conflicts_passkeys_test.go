package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// Passkeys under conflicting writes released together (see
// conflicts_test.go): registration, sign-in, rename and removal by their
// user against one another, against the user's disable or deletion and
// against an admin's reset of the user's second factors. Each test fails
// when the server answers one of them 5xx, when a write deadlocked, or
// when what they leave breaks a rule of docs/console-security.md.

// passkeyMember makes a member with n passkeys and returns a
// password-grant token of theirs made before the first (which adding it
// keeps), their id, the keys and the passkeys' ids.
func passkeyMember(t *testing.T, env *servertest.Env, admin, email string, n int) (tok, uid string, keys []*softKey, ids []string) {
	t.Helper()
	uid = env.CreateUser(admin, email, memberPW)
	tok = env.Login(email, memberPW)
	for i := range n {
		k := newSoftKey(t, env)
		keys = append(keys, k)
		ids = append(ids, addPasskey(t, env, tok, k, fmt.Sprintf("key %d", i)))
	}
	return tok, uid, keys, ids
}

// passkeyEntries returns the audit log's passkey and second-factor
// entries about user uid, oldest first.
func passkeyEntries(t *testing.T, env *servertest.Env, admin, uid string) []gatehouse.AuditEntry {
	t.Helper()
	var out []gatehouse.AuditEntry
	for _, e := range auditWhere(t, env, admin, "target="+uid) {
		if strings.HasPrefix(e.Action, "user.passkey_") || strings.HasPrefix(e.Action, "user.mfa_") {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b gatehouse.AuditEntry) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// factorsAgree fails the test unless the user of tok has n passkeys and
// recovery codes exactly when they have a second factor: with the last
// factor removed the codes go, and the first factor added makes them.
func factorsAgree(t *testing.T, what string, env *servertest.Env, tok string, n int) {
	t.Helper()
	var f struct {
		TOTP              bool `json:"totp"`
		Passkeys          int  `json:"passkeys"`
		RecoveryCodesLeft int  `json:"recovery_codes_left"`
	}
	r := env.As(tok, "GET", "/v1/me/mfa", nil)
	servertest.Expect(t, r, 200, "")
	r.JSON(t, &f)
	if f.Passkeys != n {
		t.Errorf("%s: %d passkeys left, want %d", what, f.Passkeys, n)
	}
	if (f.TOTP || f.Passkeys > 0) != (f.RecoveryCodesLeft > 0) {
		t.Errorf("%s: second factors and recovery codes disagree: %+v", what, f)
	}
}

// signInsAfter fails the test when the audit log shows a sign-in with a
// passkey after the passkey was gone (removed at cut, or, with id empty,
// every passkey of the user), or any clone warning: a passkey removed
// while its sign-in was under way is not a copied key.
func signInsAfter(t *testing.T, what string, entries []gatehouse.AuditEntry, id string, cut time.Time) {
	t.Helper()
	for _, e := range entries {
		switch {
		case e.Action == "user.passkey_clone_warning":
			t.Errorf("%s: %s for passkey %s", what, e.Action, e.Details["passkey_id"])
		case e.Action == "user.passkey_sign_in" && (id == "" || e.Details["passkey_id"] == id) && e.CreatedAt.After(cut):
			t.Errorf("%s: a sign-in with passkey %s at %s, after it was gone at %s", what, e.Details["passkey_id"],
				e.CreatedAt.Format("15:04:05.000000"), cut.Format("15:04:05.000000"))
		}
	}
}

// refusedNow fails the test unless a sign-in with k, tried now, is
// refused.
func refusedNow(t *testing.T, what string, env *servertest.Env, k *softKey, from string) {
	t.Helper()
	r := volley(t, []volleyReq{passkeySignInShot(t, env, k, from, "", "")}).resps[0]
	if r.Status != http.StatusUnauthorized || sessionOf(r) != "" {
		t.Errorf("%s: a sign-in with a passkey that is gone: %d %s", what, r.Status, r.Header.Get("Location"))
	}
}

// TestConflictPasskeyRemoveVsSignIn attacks a passkey's removal (DELETE
// /v1/me/mfa/passkeys/{id}) released together with sign-ins by it
// (password-less, and as the second factor after the password) and its
// renames; in even rounds the user's only passkey is removed while they
// add another, in odd rounds both of their two are removed at once. None
// may be answered 5xx or deadlock. The documents promise that a removed
// passkey signs in no more, not that the sessions it began before end:
// so no sign-in with it is audited after its removal, a sign-in tried
// afterwards is refused, and none is taken for a copied key
// (user.passkey_clone_warning). The user is left with the passkeys the
// answers say, and recovery codes exactly when a passkey is left.
func TestConflictPasskeyRemoveVsSignIn(t *testing.T) {
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const rounds = 10
	for round := range rounds {
		what := fmt.Sprintf("round %d", round)
		email := fmt.Sprintf("remove%d@example.com", round)
		both := round%2 == 1
		n := 1
		if both {
			n = 2
		}
		tok, uid, keys, ids := passkeyMember(t, env, admin, email, n)
		from := func(i int) string { return loopback(round*8 + i) }
		var shots []volleyReq
		for i := range 4 {
			second := ""
			if i == 3 {
				second = email
			}
			shots = append(shots, passkeySignInShot(t, env, keys[i%n], from(i), second, memberPW))
		}
		for i := range 2 {
			shots = append(shots, volleyReq{req: asRequest(t, env, tok, "PATCH", "/v1/me/mfa/passkeys/"+ids[0], fmt.Sprintf(`{"name":"renamed %d"}`, i))})
		}
		var added *softKey
		if both {
			shots = append(shots, volleyReq{req: asRequest(t, env, tok, "DELETE", "/v1/me/mfa/passkeys/"+ids[1], "")})
		} else {
			added = newSoftKey(t, env)
			shots = append(shots, passkeyAddShot(t, env, tok, added, "new"))
		}
		removeAt := round / 2 % (len(shots) + 1)
		shots = insertShot(shots, removeAt, volleyReq{req: asRequest(t, env, tok, "DELETE", "/v1/me/mfa/passkeys/"+ids[0], "")})
		res := volley(t, shots)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: removal at %d; answers %v", what, removeAt, statuses(res))
		if s := res.resps[removeAt]; s.Status != 204 {
			t.Fatalf("%s: removal: %d %s", what, s.Status, s.Body)
		}
		left := n - 1
		if last := res.resps[len(shots)-1]; both && last.Status == 204 {
			left--
		} else if !both && last.Status == 201 {
			left++
		}
		entries := passkeyEntries(t, env, admin, uid)
		sessions := 0
		for _, r := range res.resps {
			if sessionOf(r) != "" {
				sessions++
			}
		}
		signIns := 0
		for _, e := range entries {
			switch {
			case e.Action == "user.passkey_sign_in":
				signIns++
			case e.Action == "user.passkey_remove":
				signInsAfter(t, what, entries, e.Details["passkey_id"], e.CreatedAt)
			}
		}
		if signIns != sessions {
			t.Errorf("%s: %d sessions began, %d passkey sign-ins audited", what, sessions, signIns)
		}
		refusedNow(t, what, env, keys[0], from(6))
		if both {
			refusedNow(t, what, env, keys[1], from(7))
		}
		factorsAgree(t, what, env, tok, left)
		if t.Failed() {
			return
		}
	}
}

// TestConflictPasskeyLimit attacks the limit of 20 passkeys a user
// (docs/console-security.md: 409 limit_reached): a user with 18 begins
// ten registrations, each while there is room, and finishes six of them
// at once; then, at 20, removes two while finishing the four others.
// None may be answered 5xx or deadlock, and the user never holds more
// than 20.
func TestConflictPasskeyLimit(t *testing.T) {
	const limit = 20
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	tok, _, _, ids := passkeyMember(t, env, admin, "many@example.com", limit-2)
	count := func() int {
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		r := env.As(tok, "GET", "/v1/me/mfa/passkeys", nil)
		servertest.Expect(t, r, 200, "")
		r.JSON(t, &list)
		return len(list.Data)
	}

	var begun []volleyReq
	for i := range 10 {
		begun = append(begun, passkeyAddShot(t, env, tok, newSoftKey(t, env), fmt.Sprintf("more %d", i)))
	}
	shots := begun[:6]
	res := volley(t, shots)
	no5xx(t, "six at 18", res, shotName(shots))
	t.Logf("six at 18: answers %v", statuses(res))
	if got := countStatus(res, 201); got != 2 {
		t.Errorf("six at 18: %d added, room for 2", got)
	}
	for i, r := range res.resps {
		if r.Status != 201 && !(r.Status == 409 && strings.Contains(string(r.Body), `"limit_reached"`)) {
			t.Errorf("six at 18: shot %d: %d %s", i, r.Status, r.Body)
		}
	}
	if n := count(); n > limit {
		t.Fatalf("six at 18: the user holds %d passkeys", n)
	}

	before := count()
	shots = insertShot(begun[6:], 1, volleyReq{req: asRequest(t, env, tok, "DELETE", "/v1/me/mfa/passkeys/"+ids[0], "")})
	shots = insertShot(shots, 3, volleyReq{req: asRequest(t, env, tok, "DELETE", "/v1/me/mfa/passkeys/"+ids[1], "")})
	res = volley(t, shots)
	no5xx(t, "four and two removals at 20", res, shotName(shots))
	t.Logf("four and two removals at 20: answers %v", statuses(res))
	if n, want := count(), before+countStatus(res, 201)-countStatus(res, 204); n != want || n > limit {
		t.Errorf("four and two removals at %d: the user holds %d passkeys, answers say %d", before, n, want)
	}
}

// memberPasskeyShots are what a member with the passkey k (id) does at
// once, as volley shots: two registrations of new passkeys, sign-ins with
// k (password-less, and as the second factor after the password) from
// the client addresses from(0) to from(2), its rename and its removal.
func memberPasskeyShots(t *testing.T, env *servertest.Env, tok, email string, k *softKey, id string, from func(int) string) []volleyReq {
	t.Helper()
	return []volleyReq{
		passkeyAddShot(t, env, tok, newSoftKey(t, env), "second"),
		passkeySignInShot(t, env, k, from(0), "", ""),
		passkeySignInShot(t, env, k, from(1), email, memberPW),
		{req: asRequest(t, env, tok, "PATCH", "/v1/me/mfa/passkeys/"+id, `{"name":"renamed"}`)},
		passkeySignInShot(t, env, k, from(2), "", ""),
		passkeyAddShot(t, env, tok, newSoftKey(t, env), "third"),
		{req: asRequest(t, env, tok, "DELETE", "/v1/me/mfa/passkeys/"+id, "")},
	}
}

// TestConflictPasskeyUserOff attacks an admin's disable (PATCH
// /v1/users/{id} {"status":"disabled"}, even rounds) or deletion
// (DELETE /v1/users/{id}, odd rounds) of a member released together with
// the member's passkey registrations, sign-ins with their passkey
// (password-less and as the second factor), its rename and its removal.
// None may be answered 5xx or deadlock; the audit log shows nothing done
// by the member after the disable or deletion (actedAfter), and no
// session a sign-in answered works afterwards.
func TestConflictPasskeyUserOff(t *testing.T) {
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const rounds = 10
	for round := range rounds {
		what := fmt.Sprintf("round %d", round)
		email := fmt.Sprintf("off%d@example.com", round)
		tok, uid, keys, ids := passkeyMember(t, env, admin, email, 1)
		from := func(i int) string { return loopback(round*8 + i) }
		shots := memberPasskeyShots(t, env, tok, email, keys[0], ids[0], from)
		userOffDuring(t, env, admin, uid, round, shots)
		refusedNow(t, what, env, keys[0], from(6))
		if t.Failed() {
			return
		}
	}
}

// TestConflictPasskeyResetVsAdd attacks an admin's reset of a member's
// second factors (DELETE /v1/users/{id}/mfa) released together with the
// member's passkey registrations, sign-ins with their passkey
// (password-less and as the second factor), its rename and its removal.
// None may be answered 5xx or deadlock. Afterwards the member holds
// exactly the passkeys added after the reset, with recovery codes exactly
// when they hold one; no sign-in is audited after the reset nor taken
// for a copied key, and the passkey from before signs in no more.
func TestConflictPasskeyResetVsAdd(t *testing.T) {
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const rounds = 10
	for round := range rounds {
		what := fmt.Sprintf("round %d", round)
		email := fmt.Sprintf("reset%d@example.com", round)
		tok, uid, keys, ids := passkeyMember(t, env, admin, email, 1)
		from := func(i int) string { return loopback(round*8 + i) }
		shots := memberPasskeyShots(t, env, tok, email, keys[0], ids[0], from)
		resetAt := round % (len(shots) + 1)
		shots = insertShot(shots, resetAt, volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/users/"+uid+"/mfa", "")})
		res := volley(t, shots)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: reset at %d; answers %v", what, resetAt, statuses(res))
		if s := res.resps[resetAt]; s.Status != 204 {
			t.Fatalf("%s: reset: %d %s", what, s.Status, s.Body)
		}
		entries := passkeyEntries(t, env, admin, uid)
		var reset time.Time
		for _, e := range entries {
			if e.Action == "user.mfa_reset" {
				reset = e.CreatedAt
			}
		}
		if reset.IsZero() {
			t.Fatalf("%s: no user.mfa_reset in the audit log", what)
		}
		signInsAfter(t, what, entries, "", reset)
		added := 0
		for _, e := range entries {
			if e.Action == "user.passkey_add" && e.CreatedAt.After(reset) {
				added++
			}
		}
		factorsAgree(t, what, env, tok, added)
		refusedNow(t, what, env, keys[0], from(6))
		if t.Failed() {
			return
		}
	}
}

// TestConflictFirstPasskeyVsNewPassword attacks an admin's new password
// for a member (PATCH /v1/users/{id} {"password": …}) released together
// with the member's registration of their first passkey. A first second
// factor ends the member's other password-derived access but keeps the
// credential that added it; a new password set meanwhile ends that
// credential too, and the registration must not bring it back: once both
// have answered, the member's token is refused.
func TestConflictFirstPasskeyVsNewPassword(t *testing.T) {
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const rounds = 8
	for round := range rounds {
		what := fmt.Sprintf("round %d", round)
		tok, uid, _, _ := passkeyMember(t, env, admin, fmt.Sprintf("first%d@example.com", round), 0)
		shots := []volleyReq{passkeyAddShot(t, env, tok, newSoftKey(t, env), "first")}
		shots = insertShot(shots, round%2, volleyReq{req: asRequest(t, env, admin, "PATCH", "/v1/users/"+uid, `{"password":"an admin's new password"}`)})
		res := volley(t, shots)
		no5xx(t, what, res, shotName(shots))
		t.Logf("%s: answers %v", what, statuses(res))
		if s := res.resps[round%2]; s.Status != http.StatusOK {
			t.Fatalf("%s: the new password: %d %s", what, s.Status, s.Body)
		}
		if r := env.As(tok, "GET", "/v1/me", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("%s: the member's token after the admin's new password: %d, want 401", what, r.Status)
		}
	}
}
