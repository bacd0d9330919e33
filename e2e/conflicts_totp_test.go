package e2e

import (
	"fmt"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TOTP and recovery codes under conflicting writes released together
// (see conflicts_test.go and conflicts_passkeys_test.go).

// totpMemberShots makes a member with TOTP and returns their id and what
// they do at once, as volley shots. With TOTP on: a sign-in's second step
// with a TOTP code and two with recovery codes, from the client addresses
// from(0) to from(2), and turning TOTP off with a recovery code. While
// enrolling (a passkey on, which keeps the recovery codes, and a TOTP
// enrolment waiting): the enrolment's confirmation and two sign-ins'
// second steps with recovery codes.
func totpMemberShots(t *testing.T, env *servertest.Env, admin, email string, enrolling bool, from func(int) string) (string, []volleyReq) {
	t.Helper()
	uid := env.CreateUser(admin, email, memberPW)
	tok := env.Login(email, memberPW)
	secret, codes := enrolTOTP(t, env, tok)
	signIn := func(i int, code string) volleyReq {
		return codeShot(t, env.URL, from(i), startSignIn(t, env.URL, from(i), email, memberPW), code)
	}
	if !enrolling {
		return uid, []volleyReq{
			signIn(0, totpAt(secret, 1)),
			signIn(1, codes[0]),
			{req: asRequest(t, env, tok, "DELETE", "/v1/me/mfa/totp", fmt.Sprintf(`{"code":%q}`, codes[1]))},
			signIn(2, codes[2]),
		}
	}
	addPasskey(t, env, tok, newSoftKey(t, env), "key")
	servertest.Expect(t, env.As(tok, "DELETE", "/v1/me/mfa/totp", map[string]string{"code": codes[9]}), 204, "")
	r := env.As(tok, "POST", "/v1/me/mfa/totp", nil)
	servertest.Expect(t, r, 200, "")
	var e struct {
		Secret string `json:"secret"`
	}
	r.JSON(t, &e)
	return uid, []volleyReq{
		signIn(0, codes[0]),
		{req: asRequest(t, env, tok, "POST", "/v1/me/mfa/totp/confirm", fmt.Sprintf(`{"code":%q}`, totpAt(e.Secret, 0)))},
		signIn(1, codes[1]),
	}
}

// TestConflictTOTPUserOff attacks an admin's disable (PATCH
// /v1/users/{id} {"status":"disabled"}, even rounds) or deletion (DELETE
// /v1/users/{id}, odd rounds) of a member released together with the
// member's sign-ins with a TOTP code or a recovery code, and with their
// turning TOTP off (TOTP on) or confirming its enrolment (enrolling,
// every other pair of rounds). None may be answered 5xx or deadlock; the
// audit log shows nothing done by the member after the disable or
// deletion (actedAfter), and no session a sign-in answered works
// afterwards.
func TestConflictTOTPUserOff(t *testing.T) {
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const rounds = 12
	for round := range rounds {
		from := func(i int) string { return loopback(round*4 + i) }
		uid, shots := totpMemberShots(t, env, admin, fmt.Sprintf("totpoff%d@example.com", round), round/2%2 == 1, from)
		userOffDuring(t, env, admin, uid, round, shots)
		if t.Failed() {
			return
		}
	}
}

// TestConflictTOTPEnrolVsUserOff attacks a member's TOTP enrolments
// (POST /v1/me/mfa/totp, each answering a secret) released together with
// an admin's disable (even rounds) or deletion (odd rounds) of the
// member (userOffDuring). None may be answered 5xx, and the audit log
// shows no enrolment by the member after the change: an enrolment that
// committed after a disable left a secret its caller knows waiting for
// the member's confirmation once enabled again.
func TestConflictTOTPEnrolVsUserOff(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const rounds = 10
	for round := range rounds {
		email := fmt.Sprintf("totpenrol%d@example.com", round)
		uid := env.CreateUser(admin, email, memberPW)
		tok := env.Login(email, memberPW)
		shots := make([]volleyReq, 4)
		for i := range shots {
			shots[i] = volleyReq{req: asRequest(t, env, tok, "POST", "/v1/me/mfa/totp", "")}
		}
		userOffDuring(t, env, admin, uid, round, shots)
		if t.Failed() {
			return
		}
	}
}
