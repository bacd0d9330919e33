package service_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mfa"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// factors is a service with a sealer, a clock the test moves, its
// operator and a member, ann.
type factors struct {
	t       *testing.T
	ctx     context.Context
	svc     *service.Service
	st      *store.Store
	op, ann *gatehouse.Principal

	mu  sync.Mutex
	now time.Time
}

func newFactors(t *testing.T) *factors {
	t.Helper()
	f := &factors{t: t, ctx: context.Background(), now: time.Unix(1_800_000_000, 0)}
	f.st = openStore(t)
	f.svc = service.New(service.Config{Store: f.st, Passwords: password.New(password.Params{Memory: 1024, Time: 1, Threads: 1}),
		Digester: token.NewDigester(nil), Now: f.clock, Logger: slog.New(slog.DiscardHandler), MFASealer: mfa.NewSealer([]byte("test key"))})
	if _, _, err := f.svc.Bootstrap(f.ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	f.op = f.as("op@example.com")
	if _, err := f.svc.CreateUser(f.ctx, f.op, service.NewUser{Email: "ann@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	f.ann = f.as("ann@example.com")
	return f
}

func (f *factors) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *factors) wait(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *factors) as(email string) *gatehouse.Principal {
	f.t.Helper()
	out, _, err := f.svc.PasswordGrant(f.ctx, email, pw, "192.0.2.1", "")
	if err != nil {
		f.t.Fatalf("sign in %s: %v", email, err)
	}
	p, err := f.svc.AccessPrincipal(f.ctx, out.AccessToken)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// enrol turns TOTP on for p at the current step and returns the secret
// and the recovery codes.
func (f *factors) enrol(p *gatehouse.Principal) (string, []string) {
	f.t.Helper()
	e, err := f.svc.EnrolTOTP(f.ctx, p)
	if err != nil {
		f.t.Fatal(err)
	}
	codes, err := f.svc.ConfirmTOTP(f.ctx, p, mfa.Code(e.Secret, mfa.Step(f.clock())), "192.0.2.1")
	if err != nil {
		f.t.Fatal(err)
	}
	return e.Secret, codes
}

// code is the TOTP code at the current step plus k.
func (f *factors) code(secret string, k int64) string { return mfa.Code(secret, mfa.Step(f.clock())+k) }

// TestTOTPSteps: a code works once; after a step was used no earlier one
// does; the window is one step either side; a sign-in expires.
func TestTOTPSteps(t *testing.T) {
	f := newFactors(t)
	secret, codes := f.enrol(f.ann)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes", len(codes))
	}
	signIn := func() string {
		t.Helper()
		step, err := f.svc.SignIn(f.ctx, "ann@example.com", pw, "192.0.2.9")
		if err != nil || step.Pending == "" || step.Session != "" {
			t.Fatalf("password step: %+v %v", step, err)
		}
		return step.Pending
	}
	complete := func(pending, code string) string {
		step, err := f.svc.CompleteSignIn(f.ctx, pending, code, "192.0.2.9")
		if err != nil {
			return string(gatehouse.ErrorCode(err))
		}
		if _, _, err := f.svc.SessionPrincipal(f.ctx, step.Session); err != nil {
			t.Fatalf("the new session does not work: %v", err)
		}
		return "session"
	}
	var p string
	for _, tc := range []struct {
		name, code, want string
		wait             time.Duration
	}{
		{"the confirming code again", f.code(secret, 0), "invalid_request", 0},
		{"two steps ahead", f.code(secret, 2), "invalid_request", 0},
		{"next step", f.code(secret, 1), "session", 0},
		{"next step again", f.code(secret, 1), "invalid_request", 0},
		{"a step later, the one before it", f.code(secret, 0), "invalid_request", mfa.Period},
		{"two steps later, the current", f.code(secret, 3), "session", 2 * mfa.Period},
	} {
		f.wait(tc.wait)
		p = signIn()
		if got := complete(p, tc.code); got != tc.want {
			t.Fatalf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// A finished sign-in is gone; so is one that waited too long.
	if got := complete(p, codes[0]); got != "invalid_token" {
		t.Fatalf("a finished sign-in again: %s", got)
	}
	p = signIn()
	f.wait(service.SignInLifetime)
	if got := complete(p, f.code(secret, 0)); got != "invalid_token" {
		t.Fatalf("expired sign-in: %s", got)
	}
	// Login, the one-step sign-in, refuses the user.
	if _, _, err := f.svc.Login(f.ctx, "ann@example.com", pw, "192.0.2.9"); gatehouse.ErrorCode(err) != gatehouse.EForbidden {
		t.Fatalf("Login: %v", err)
	}
}

// TestRequireMFA: the account's policy covers admins or everyone; a user
// it covers is refused by the password grant and must enrol.
func TestRequireMFA(t *testing.T) {
	f := newFactors(t)
	policy := func(v string) {
		t.Helper()
		if _, err := f.svc.UpdateSettings(f.ctx, f.op, gatehouse.SettingsPatch{RequireMFA: &v}); err != nil {
			t.Fatal(err)
		}
	}
	bad := "sometimes"
	if _, err := f.svc.UpdateSettings(f.ctx, f.op, gatehouse.SettingsPatch{RequireMFA: &bad}); gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
		t.Fatalf("require_mfa %q: %v", bad, err)
	}
	grant := func(email string) string {
		_, _, err := f.svc.PasswordGrant(f.ctx, email, pw, "192.0.2.1", "")
		return gatehouse.ErrorMessage(err)
	}
	session := func(email string) *gatehouse.Principal {
		t.Helper()
		cookie, _, err := f.svc.Login(f.ctx, email, pw, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := f.svc.SessionPrincipal(f.ctx, cookie)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	policy(gatehouse.MFAAdmins)
	if grant("op@example.com") != "this user signs in with a second factor" || grant("ann@example.com") != "" {
		t.Fatal("admins: the grant does not follow the policy")
	}
	opSession := session("op@example.com")
	if must, err := f.svc.MustEnrol(f.ctx, opSession); err != nil || !must {
		t.Fatalf("the operator need not enrol: %v %v", must, err)
	}
	policy(gatehouse.MFAEveryone)
	if grant("ann@example.com") != "this user signs in with a second factor" {
		t.Fatal("everyone: ann still gets tokens")
	}
	annSession := session("ann@example.com")
	f.enrol(annSession)
	if must, _ := f.svc.MustEnrol(f.ctx, annSession); must {
		t.Fatal("enrolled, ann must still enrol")
	}
	policy(gatehouse.MFANone)
	if grant("op@example.com") != "" {
		t.Fatal("none: the operator is refused")
	}
}

// TestResetAndRecover: an admin resets a user's second factors (only the
// operator resets the operator's), and gatehouse recover clears the
// operator's.
// TestResetReapplied: an admin's reset of a user's second factors (a lost
// device) is re-applied after a restore brought the factor back.
func TestResetReapplied(t *testing.T) {
	f := newFactors(t)
	since := f.clock()
	f.wait(time.Minute)
	f.enrol(f.ann)
	if err := f.svc.ResetSecondFactors(f.ctx, f.op, f.ann.User.ID); err != nil {
		t.Fatal(err)
	}
	var entries []*gatehouse.AuditEntry
	if err := f.st.AuditSince(f.ctx, since, func(e *gatehouse.AuditEntry) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	f.ann = f.as("ann@example.com")
	f.enrol(f.ann) // what the restored store holds: the factor before the reset
	out, err := f.svc.ReapplyRevocations(f.ctx, entries, since)
	if err != nil || out.Applied["user.mfa_reset"] != 1 {
		t.Fatalf("re-applied %+v, %v", out, err)
	}
	if st, _ := f.svc.SecondFactors(f.ctx, f.ann); st.TOTP || st.RecoveryCodesLeft != 0 {
		t.Fatalf("after the reset was re-applied: %+v", st)
	}
}

func TestResetAndRecover(t *testing.T) {
	f := newFactors(t)
	f.enrol(f.op)
	f.enrol(f.ann)
	if _, err := f.svc.CreateUser(f.ctx, f.op, service.NewUser{Email: "boss@example.com", Password: pw, Roles: []gatehouse.Role{gatehouse.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	boss := f.as("boss@example.com")
	if err := f.svc.ResetSecondFactors(f.ctx, boss, f.op.User.ID); gatehouse.ErrorCode(err) != gatehouse.EForbidden {
		t.Fatalf("an admin resets the operator's: %v", err)
	}
	if err := f.svc.ResetSecondFactors(f.ctx, f.ann, f.ann.User.ID); gatehouse.ErrorCode(err) != gatehouse.EForbidden {
		t.Fatalf("a member resets: %v", err)
	}
	if err := f.svc.ResetSecondFactors(f.ctx, boss, f.ann.User.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.svc.SecondFactors(f.ctx, f.ann); st.TOTP || st.RecoveryCodesLeft != 0 {
		t.Fatalf("after the reset: %+v", st)
	}
	if _, _, err := f.svc.PasswordGrant(f.ctx, "op@example.com", pw, "192.0.2.1", ""); !strings.Contains(gatehouse.ErrorMessage(err), "second factor") {
		t.Fatalf("the operator's grant: %v", err)
	}
	if _, err := f.svc.Recover(f.ctx, "op@example.com", "a brand new long password"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.PasswordGrant(f.ctx, "op@example.com", "a brand new long password", "192.0.2.1", ""); err != nil {
		t.Fatalf("after recover: %v", err)
	}
}
