package e2e

import (
	"fmt"
	"strings"
	"testing"

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

// insertShot inserts shot into shots at i.
func insertShot(shots []volleyReq, i int, shot volleyReq) []volleyReq {
	return append(shots[:i], append([]volleyReq{shot}, shots[i:]...)...)
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
