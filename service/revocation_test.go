package service_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/token"
)

const pw = "a long enough password"

// world is a service on a real SQLite store with an operator and a target
// user holding one credential of every kind.
type world struct {
	t      *testing.T
	ctx    context.Context
	svc    *service.Service
	op     *gatehouse.Principal
	target *gatehouse.User
	// The target's credentials.
	passwordToken, appAccess, appRefresh, appClient, ccToken, session string
	cred                                                              *service.NewCredential
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	st := openStore(t)
	var err error
	svc := service.New(service.Config{Store: st, Passwords: cheapPasswords(),
		Digester: token.NewDigester(nil)})
	if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: ctx, svc: svc}
	w.op = w.principal("op@example.com")
	w.target, err = svc.CreateUser(ctx, w.op, service.NewUser{Email: "ann@example.com", Password: pw,
		Roles: []gatehouse.Role{gatehouse.RoleAdmin, gatehouse.RoleDeveloper}})
	if err != nil {
		t.Fatal(err)
	}
	ann := w.principal("ann@example.com")
	w.passwordToken = w.login("ann@example.com")
	app, err := svc.EnableAPIAccess(ctx, ann, service.APIAccessInput{})
	if err != nil {
		t.Fatal(err)
	}
	w.appAccess, w.appRefresh, w.appClient = app.AccessToken, app.RefreshToken, app.ClientID
	if w.cred, err = svc.CreateCredential(ctx, ann, service.CredentialInput{Name: "ci"}); err != nil {
		t.Fatal(err)
	}
	cc, err := svc.ClientCredentialsGrant(ctx, w.cred.ClientID, w.cred.ClientSecret, "", "")
	if err != nil {
		t.Fatal(err)
	}
	w.ccToken = cc.AccessToken
	if w.session, _, err = svc.Login(ctx, "ann@example.com", pw, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	return w
}

// principal is the user with email as a password-grant request sees them.
func (w *world) principal(email string) *gatehouse.Principal {
	w.t.Helper()
	p, err := w.svc.AccessPrincipal(w.ctx, w.login(email))
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) login(email string) string {
	w.t.Helper()
	out, _, err := w.svc.PasswordGrant(w.ctx, email, pw, "192.0.2.1", "")
	if err != nil {
		w.t.Fatalf("login %s: %v", email, err)
	}
	return out.AccessToken
}

// works reports which of the target's credentials still work.
func (w *world) works() map[string]bool {
	ok := func(err error) bool { return err == nil }
	_, errPw := w.svc.AccessPrincipal(w.ctx, w.passwordToken)
	_, errApp := w.svc.AccessPrincipal(w.ctx, w.appAccess)
	_, errCC := w.svc.AccessPrincipal(w.ctx, w.ccToken)
	_, errGrant := w.svc.ClientCredentialsGrant(w.ctx, w.cred.ClientID, w.cred.ClientSecret, "", "")
	_, _, errSession := w.svc.SessionPrincipal(w.ctx, w.session)
	return map[string]bool{"password token": ok(errPw), "API access token": ok(errApp), "client-credentials token": ok(errCC),
		"client-credentials grant": ok(errGrant), "admin UI session": ok(errSession)}
}

func ptr[T any](v T) *T { return &v }

// TestUpdateUserRevocationMatrix: what each change of a user ends, and
// what it leaves working, checked through the service on real SQLite.
func TestUpdateUserRevocationMatrix(t *testing.T) {
	all := func(v bool) map[string]bool {
		return map[string]bool{"password token": v, "API access token": v, "client-credentials token": v,
			"client-credentials grant": v, "admin UI session": v}
	}
	for _, tc := range []struct {
		name  string
		patch service.UserPatch
		want  map[string]bool
	}{
		{"rename", service.UserPatch{Name: ptr("Ann B")}, all(true)},
		{"disable", service.UserPatch{Status: ptr(gatehouse.StatusDisabled)}, all(false)},
		{"remove the admin role", service.UserPatch{Roles: &[]gatehouse.Role{gatehouse.RoleDeveloper}},
			map[string]bool{"password token": true, "API access token": false, "client-credentials token": true,
				"client-credentials grant": true, "admin UI session": true}},
		{"new password", service.UserPatch{Password: ptr("another long password")},
			map[string]bool{"password token": false, "API access token": true, "client-credentials token": true,
				"client-credentials grant": true, "admin UI session": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if got := w.works(); !equal(got, all(true)) {
				t.Fatalf("before: %v", got)
			}
			if _, err := w.svc.UpdateUser(w.ctx, w.op, w.target.ID, tc.patch); err != nil {
				t.Fatal(err)
			}
			if got := w.works(); !equal(got, tc.want) {
				t.Fatalf("after: %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("re-enabling brings nothing back", func(t *testing.T) {
		w := newWorld(t)
		for _, st := range []gatehouse.UserStatus{gatehouse.StatusDisabled, gatehouse.StatusActive} {
			if _, err := w.svc.UpdateUser(w.ctx, w.op, w.target.ID, service.UserPatch{Status: ptr(st)}); err != nil {
				t.Fatal(err)
			}
		}
		want := all(false)
		want["client-credentials grant"] = true // the credential itself survives; its old tokens do not
		if got := w.works(); !equal(got, want) {
			t.Fatalf("after disable and enable: %v, want %v", got, want)
		}
	})
}

// TestSetDeveloperRevocationMatrix: removing the developer role keeps the
// credentials unless told to revoke them; either way the answer counts what
// stays live.
func TestSetDeveloperRevocationMatrix(t *testing.T) {
	for _, tc := range []struct {
		name     string
		revoke   bool
		live     int
		ccWorks  bool
		pwWorks  bool
		appWorks bool
	}{
		{"keep credentials", false, 1, true, true, true},
		{"revoke credentials", true, 0, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			live, err := w.svc.SetDeveloper(w.ctx, w.op, w.target.ID, false, tc.revoke)
			if err != nil || live != tc.live {
				t.Fatalf("SetDeveloper: %d, %v; want %d live", live, err, tc.live)
			}
			got := w.works()
			if got["client-credentials token"] != tc.ccWorks || got["client-credentials grant"] != tc.ccWorks ||
				got["password token"] != tc.pwWorks || got["API access token"] != tc.appWorks {
				t.Fatalf("after: %v", got)
			}
		})
	}
}

func equal(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
