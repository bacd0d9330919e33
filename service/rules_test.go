package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mfa"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/token"
)

// The rules of the service, one table each, on a real SQLite store in a
// temporary directory: who may change whom, what a change ends, how
// refresh tokens and scopes behave. Each case starts from a fresh store.

// rules is a service on a fresh SQLite store with its bootstrap operator
// and a clock the test moves.
type rules struct {
	t   *testing.T
	ctx context.Context
	svc *service.Service
	op  *gatehouse.Principal

	mu  sync.Mutex
	now time.Time
}

// grace is the refresh grace of the rules' service.
const grace = 5 * time.Second

// newRules starts the rules' service; opts change its configuration.
func newRules(t *testing.T, opts ...func(*service.Config)) *rules {
	t.Helper()
	ctx := context.Background()
	st := openStore(t)
	r := &rules{t: t, ctx: ctx, now: time.Now()}
	cfg := service.Config{Store: st, Passwords: cheapPasswords(),
		Digester: token.NewDigester(nil), RefreshGrace: grace, Now: r.clock, Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	r.svc = service.New(cfg)
	if _, _, err := r.svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	r.op = r.as("op@example.com")
	return r
}

func (r *rules) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

// wait moves the clock forward by d.
func (r *rules) wait(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// signIn runs the password grant for email and returns the access token.
func (r *rules) signIn(email string) string {
	r.t.Helper()
	out, _, err := r.svc.PasswordGrant(r.ctx, email, pw, "192.0.2.1", "")
	if err != nil {
		r.t.Fatalf("sign in %s: %v", email, err)
	}
	return out.AccessToken
}

// as is the principal of a fresh password sign-in of email.
func (r *rules) as(email string) *gatehouse.Principal {
	r.t.Helper()
	p, err := r.svc.AccessPrincipal(r.ctx, r.signIn(email))
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// user makes a user of the operator's account with roles and returns it.
func (r *rules) user(email string, roles ...gatehouse.Role) *gatehouse.User {
	r.t.Helper()
	u, err := r.svc.CreateUser(r.ctx, r.op, service.NewUser{Email: email, Password: pw, Roles: roles})
	if err != nil {
		r.t.Fatalf("create %s: %v", email, err)
	}
	return u
}

// field is the request field err is about, "" for none.
func field(err error) string {
	f, _ := gatehouse.ErrorField(err)
	return f
}

// code is the error code of err, "" for none.
func code(err error) string {
	if err == nil {
		return ""
	}
	return gatehouse.ErrorCode(err)
}

var (
	admin     = gatehouse.RoleAdmin
	developer = gatehouse.RoleDeveloper
)

// TestLastAdminStays: the account's last active admin can be neither
// disabled nor demoted, not even by themselves; a second active admin
// makes both possible, and a disabled admin does not count.
func TestLastAdminStays(t *testing.T) {
	for _, tc := range []struct {
		name   string
		others []gatehouse.UserStatus // the account's other admins
		patch  service.UserPatch
		fellow bool // the first other admin makes the change (else boss)
		want   string
	}{
		{"the only admin disables themselves", nil, service.UserPatch{Status: ptr(gatehouse.StatusDisabled)}, false, gatehouse.EConflict},
		{"the only admin drops the admin role", nil, service.UserPatch{Roles: &[]gatehouse.Role{developer}}, false, gatehouse.EConflict},
		{"the only admin drops every role", nil, service.UserPatch{Roles: &[]gatehouse.Role{}}, false, gatehouse.EConflict},
		{"the other admin is disabled", []gatehouse.UserStatus{gatehouse.StatusDisabled}, service.UserPatch{Roles: &[]gatehouse.Role{}}, false, gatehouse.EConflict},
		{"another active admin: demote themselves", []gatehouse.UserStatus{gatehouse.StatusActive}, service.UserPatch{Roles: &[]gatehouse.Role{developer}}, false, ""},
		{"another active admin: demotes boss", []gatehouse.UserStatus{gatehouse.StatusActive}, service.UserPatch{Roles: &[]gatehouse.Role{}}, true, ""},
		{"another active admin: disables boss", []gatehouse.UserStatus{gatehouse.StatusActive}, service.UserPatch{Status: ptr(gatehouse.StatusDisabled)}, true, ""},
		{"the only admin renames themselves", nil, service.UserPatch{Name: ptr("Boss")}, false, ""},
		{"the only admin sets a new password", nil, service.UserPatch{Password: ptr("another long password")}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRules(t)
			// An account of its own, whose first admin is boss.
			_, boss, err := r.svc.CreateAccount(r.ctx, r.op, service.NewAccount{Name: "acme", AdminEmail: "boss@acme.example", AdminPassword: pw})
			if err != nil {
				t.Fatal(err)
			}
			bp := r.as("boss@acme.example")
			by := bp
			for i, st := range tc.others {
				email := string(rune('a'+i)) + "@acme.example"
				u, err := r.svc.CreateUser(r.ctx, bp, service.NewUser{Email: email, Password: pw, Roles: []gatehouse.Role{admin}})
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 && tc.fellow {
					by = r.as(email)
				}
				if _, err := r.svc.UpdateUser(r.ctx, bp, u.ID, service.UserPatch{Status: ptr(st)}); err != nil {
					t.Fatal(err)
				}
			}
			_, err = r.svc.UpdateUser(r.ctx, by, boss.ID, tc.patch)
			if code(err) != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if tc.want != "" {
				after, err := r.svc.User(r.ctx, bp, boss.ID)
				if err != nil || !after.Active() || !after.IsAdmin() {
					t.Fatalf("refused, yet boss is now %+v (%v)", after, err)
				}
			}
		})
	}
}

// TestOperatorOnlyChanges: only the operator changes the operator —
// another admin of the operator's account cannot rename, disable, demote
// or set the password of the operator — while the operator and the admin
// may change the admin.
func TestOperatorOnlyChanges(t *testing.T) {
	for _, tc := range []struct {
		name       string
		byOperator bool // else by ann, an admin who is not the operator
		target     string
		patch      service.UserPatch
		want       string
	}{
		{"admin renames the operator", false, "op", service.UserPatch{Name: ptr("x")}, gatehouse.EForbidden},
		{"admin disables the operator", false, "op", service.UserPatch{Status: ptr(gatehouse.StatusDisabled)}, gatehouse.EForbidden},
		{"admin demotes the operator", false, "op", service.UserPatch{Roles: &[]gatehouse.Role{}}, gatehouse.EForbidden},
		{"admin sets the operator's password", false, "op", service.UserPatch{Password: ptr("another long password")}, gatehouse.EForbidden},
		{"operator renames themselves", true, "op", service.UserPatch{Name: ptr("Op")}, ""},
		{"operator disables the admin", true, "ann", service.UserPatch{Status: ptr(gatehouse.StatusDisabled)}, ""},
		{"admin renames themselves", false, "ann", service.UserPatch{Name: ptr("Ann")}, ""},
		{"admin renames a plain user", false, "bob", service.UserPatch{Name: ptr("Bob")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRules(t)
			ids := map[string]string{"op": r.op.User.ID, "ann": r.user("ann@example.com", admin).ID, "bob": r.user("bob@example.com").ID}
			by := r.op
			if !tc.byOperator {
				by = r.as("ann@example.com")
			}
			before, err := r.svc.User(r.ctx, r.op, ids[tc.target])
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.svc.UpdateUser(r.ctx, by, ids[tc.target], tc.patch)
			if code(err) != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			after, _ := r.svc.User(r.ctx, r.op, ids[tc.target])
			if tc.want != "" && (after.Name != before.Name || after.Status != before.Status || after.PasswordEpoch != before.PasswordEpoch || after.Roles.String() != before.Roles.String()) {
				t.Fatalf("refused, yet changed: %+v → %+v", before, after)
			}
		})
	}
	t.Run("admin makes no one the operator's peer", func(t *testing.T) {
		// Operator rights never pass through a non-operator admin's
		// principal.
		r := newRules(t)
		r.user("ann@example.com", admin)
		if _, _, err := r.svc.CreateAccount(r.ctx, r.as("ann@example.com"), service.NewAccount{Name: "x", AdminEmail: "x@x.example", AdminPassword: pw}); code(err) != gatehouse.EForbidden {
			t.Fatalf("a non-operator admin made an account: %v", err)
		}
	})
}

// TestDeveloperRemovalCountsWorkingCredentials: what removing the
// developer role answers as active_credentials counts the credentials
// that still authenticate, not a disabled, expired or leaked one.
func TestDeveloperRemovalCountsWorkingCredentials(t *testing.T) {
	r := newRules(t)
	u := r.user("dev@example.com", developer)
	dev := r.as("dev@example.com")
	create := func(name string, expires *time.Time) *service.NewCredential {
		c, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: name, ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	soon := r.clock().Add(time.Hour)
	create("working", nil)
	create("expired", &soon)
	disabled := create("disabled", nil)
	if _, err := r.svc.UpdateCredential(r.ctx, dev, disabled.ID, service.CredentialPatch{Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	leaked := create("leaked", nil)
	if _, err := r.svc.RevokeLeaked(r.ctx, leaked.ClientSecret, service.LeakReport{Via: service.LeakViaRevoke}); err != nil {
		t.Fatal(err)
	}
	r.wait(2 * time.Hour)
	n, err := r.svc.SetDeveloper(r.ctx, r.op, u.ID, false, false)
	if err != nil || n != 1 {
		t.Fatalf("active_credentials %d (%v), want 1: only the working one authenticates", n, err)
	}
}

// TestDeveloperRemoval: removing the developer role — through SetDeveloper
// or a role change — keeps the user's client credentials working unless
// told to revoke them, and never touches their other credentials.
func TestDeveloperRemoval(t *testing.T) {
	for _, tc := range []struct {
		name      string
		roleEdit  bool // UpdateUser's roles (else SetDeveloper)
		revoke    bool
		ccWorks   bool
		wantCount int
	}{
		{"SetDeveloper, keep", false, false, true, 1},
		{"SetDeveloper, revoke", false, true, false, 0},
		{"role change, keep", true, false, true, 1},
		{"role change, revoke", true, true, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRules(t)
			u := r.user("dev@example.com", developer)
			dev := r.as("dev@example.com")
			pwTok := r.signIn("dev@example.com")
			cred, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "ci"})
			if err != nil {
				t.Fatal(err)
			}
			cc, err := r.svc.ClientCredentialsGrant(r.ctx, cred.ClientID, cred.ClientSecret, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if tc.roleEdit {
				_, err = r.svc.UpdateUser(r.ctx, r.op, u.ID, service.UserPatch{Roles: &[]gatehouse.Role{}, RevokeCredentials: tc.revoke})
			} else {
				_, err = r.svc.SetDeveloper(r.ctx, r.op, u.ID, false, tc.revoke)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, errTok := r.svc.AccessPrincipal(r.ctx, cc.AccessToken)
			_, errGrant := r.svc.ClientCredentialsGrant(r.ctx, cred.ClientID, cred.ClientSecret, "", "")
			if (errTok == nil) != tc.ccWorks || (errGrant == nil) != tc.ccWorks {
				t.Fatalf("client credentials: token %v, grant %v; want working %v", errTok, errGrant, tc.ccWorks)
			}
			if n, err := r.svc.CredentialCount(r.ctx, r.op, u.ID); err != nil || n != tc.wantCount {
				t.Fatalf("%d credentials (%v), want %d", n, err, tc.wantCount)
			}
			if _, err := r.svc.AccessPrincipal(r.ctx, pwTok); err != nil {
				t.Fatalf("the user's own sign-in ended: %v", err)
			}
		})
	}
}

// TestRefreshReuse: a used refresh token presented again by the same client
// inside the grace gets the committed pair and ends nothing; after the grace
// it is refused and ends its
// whole lineage (the tokens of the rotation included), not the user's
// other credentials nor a new lineage.
func TestRefreshReuse(t *testing.T) {
	for _, tc := range []struct {
		name         string
		after        time.Duration
		lineageLives bool
	}{
		{"at once", 0, true},
		{"inside the grace", grace - time.Second, true},
		{"at the end of the grace", grace, true},
		{"after the grace", grace + time.Second, false},
		{"minutes after", 10 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRules(t)
			app, err := r.svc.EnableAPIAccess(r.ctx, r.op, service.APIAccessInput{})
			if err != nil {
				t.Fatal(err)
			}
			pwTok := r.signIn("op@example.com")
			next, err := r.svc.RefreshGrant(r.ctx, app.ClientID, app.RefreshToken, "")
			if err != nil {
				t.Fatal(err)
			}
			r.wait(tc.after)
			retried, err := r.svc.RefreshGrant(r.ctx, app.ClientID, app.RefreshToken, "")
			if tc.lineageLives {
				// The same client inside the grace: a retry, answered with
				// the pair the rotation committed.
				if err != nil || retried.RefreshToken != next.RefreshToken || retried.AccessToken != next.AccessToken {
					t.Fatalf("retry inside the grace: %v, want the committed pair", err)
				}
			} else if code(err) != gatehouse.EInvalidGrant {
				t.Fatalf("reuse: %v, want invalid_grant", err)
			}
			_, errAccess := r.svc.AccessPrincipal(r.ctx, next.AccessToken)
			_, errRefresh := r.svc.RefreshGrant(r.ctx, app.ClientID, next.RefreshToken, "")
			if (errAccess == nil) != tc.lineageLives || (errRefresh == nil) != tc.lineageLives {
				t.Fatalf("the rotation's tokens: access %v, refresh %v; want alive %v", errAccess, errRefresh, tc.lineageLives)
			}
			if _, err := r.svc.AccessPrincipal(r.ctx, pwTok); err != nil {
				t.Fatalf("the user's password token ended: %v", err)
			}
			// A new lineage of the same application works.
			again, err := r.svc.ReissueAPIAccess(r.ctx, r.as("op@example.com"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.RefreshGrant(r.ctx, again.ClientID, again.RefreshToken, ""); err != nil {
				t.Fatalf("a new lineage: %v", err)
			}
		})
	}
}

// TestRefreshRetryAsksTheSame: a retry inside the grace gets the committed
// pair only for the request that made it: one asking for another scope
// (narrower, wider or none where the first narrowed) is refused, ends
// nothing, and leaves the exact retry its pair.
func TestRefreshRetryAsksTheSame(t *testing.T) {
	rd := string(gatehouse.ScopeWorkspacesRead)
	for _, tc := range []struct{ first, retry string }{
		{"", rd},
		{rd, ""},
		{rd, rd + " " + string(gatehouse.ScopeWorkspacesWrite)},
	} {
		t.Run(tc.first+"/"+tc.retry, func(t *testing.T) {
			r := newRules(t)
			app, err := r.svc.EnableAPIAccess(r.ctx, r.op, service.APIAccessInput{})
			if err != nil {
				t.Fatal(err)
			}
			next, err := r.svc.RefreshGrant(r.ctx, app.ClientID, app.RefreshToken, tc.first)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.RefreshGrant(r.ctx, app.ClientID, app.RefreshToken, tc.retry); code(err) != gatehouse.EInvalidGrant {
				t.Fatalf("a retry asking %q after %q: %v, want invalid_grant", tc.retry, tc.first, err)
			}
			exact := tc.first
			if exact != "" {
				exact = " " + exact + " " // the same scopes, spelt otherwise
			}
			same, err := r.svc.RefreshGrant(r.ctx, app.ClientID, app.RefreshToken, exact)
			if err != nil || same.AccessToken != next.AccessToken {
				t.Fatalf("the exact retry: %v, want the committed pair", err)
			}
			if _, err := r.svc.RefreshGrant(r.ctx, app.ClientID, next.RefreshToken, ""); err != nil {
				t.Fatalf("the pair after a refused retry: %v", err)
			}
		})
	}
}

// TestScopesNarrowAndCover: a credential grants only scopes its maker
// holds and the account knows; a change only narrows; a token asks only
// for scopes its credential grants.
func TestScopesNarrowAndCover(t *testing.T) {
	rd, wr := gatehouse.ScopeWorkspacesRead, gatehouse.ScopeWorkspacesWrite
	t.Run("grant", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			maker string // "admin" or "developer"
			scope []gatehouse.Scope
			want  string
		}{
			{"admin grants a scope they hold", "admin", []gatehouse.Scope{gatehouse.ScopeSettingsRead}, ""},
			{"developer grants a scope they hold", "developer", []gatehouse.Scope{rd, gatehouse.ScopeCredentialsRead}, ""},
			{"developer grants an admin's scope", "developer", []gatehouse.Scope{gatehouse.ScopeSettingsRead}, gatehouse.EForbidden},
			{"an unknown scope", "admin", []gatehouse.Scope{"billing:read"}, gatehouse.EInvalidRequest},
			{"no scope at all", "developer", []gatehouse.Scope{}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := newRules(t)
				r.user("ann@example.com", admin, developer)
				r.user("dev@example.com", developer)
				maker := r.as("ann@example.com")
				if tc.maker == "developer" {
					maker = r.as("dev@example.com")
				}
				_, err := r.svc.CreateCredential(r.ctx, maker, service.CredentialInput{Name: "c", Scopes: &tc.scope})
				if code(err) != tc.want {
					t.Fatalf("got %v, want %q", err, tc.want)
				}
			})
		}
	})
	t.Run("change", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			to   []gatehouse.Scope
			want string
		}{
			{"narrower", []gatehouse.Scope{rd}, ""},
			{"the same", []gatehouse.Scope{rd, wr}, ""},
			{"empty", []gatehouse.Scope{}, ""},
			{"wider", []gatehouse.Scope{rd, wr, gatehouse.ScopeUsersRead}, gatehouse.EInvalidRequest},
			{"sideways", []gatehouse.Scope{gatehouse.ScopeUsersRead}, gatehouse.EInvalidRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := newRules(t)
				r.user("dev@example.com", developer)
				dev := r.as("dev@example.com")
				cred, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "c", Scopes: &[]gatehouse.Scope{rd, wr}})
				if err != nil {
					t.Fatal(err)
				}
				c, err := r.svc.UpdateCredential(r.ctx, dev, cred.ID, service.CredentialPatch{Scopes: &tc.to})
				if code(err) != tc.want {
					t.Fatalf("got %v, want %q", err, tc.want)
				}
				if tc.want == "" && c.Scopes.String() != gatehouse.NormalizeScopes(tc.to).String() {
					t.Fatalf("scopes %v, want %v", c.Scopes, tc.to)
				}
			})
		}
		// An unrestricted credential narrowed to a name nobody knows is
		// refused, as on creation, and keeps its scopes.
		r := newRules(t)
		r.user("dev@example.com", developer)
		dev := r.as("dev@example.com")
		cred, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "c"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.UpdateCredential(r.ctx, dev, cred.ID, service.CredentialPatch{Scopes: &[]gatehouse.Scope{rd, "nope:nope"}}); code(err) != gatehouse.EInvalidRequest {
			t.Fatalf("narrowed to an unknown scope: %v", err)
		}
		if c, err := r.svc.Credential(r.ctx, dev, cred.ID); err != nil || c.Scopes != nil {
			t.Fatalf("after a refused change: %v %v", c.Scopes, err)
		}
		if _, err := r.svc.UpdateCredential(r.ctx, dev, cred.ID, service.CredentialPatch{Scopes: &[]gatehouse.Scope{rd}}); err != nil {
			t.Fatalf("narrowed to a known scope: %v", err)
		}
	})
	t.Run("token request", func(t *testing.T) {
		for _, tc := range []struct {
			name, scope, want, got string
		}{
			{"nothing asked: everything granted", "", "", "workspaces:read workspaces:write"},
			{"narrower", "workspaces:read", "", "workspaces:read"},
			{"more than granted", "workspaces:read users:read", gatehouse.EInvalidScope, ""},
			{"unknown", "billing:read", gatehouse.EInvalidScope, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := newRules(t)
				r.user("dev@example.com", developer)
				cred, err := r.svc.CreateCredential(r.ctx, r.as("dev@example.com"), service.CredentialInput{Name: "c", Scopes: &[]gatehouse.Scope{rd, wr}})
				if err != nil {
					t.Fatal(err)
				}
				out, err := r.svc.ClientCredentialsGrant(r.ctx, cred.ClientID, cred.ClientSecret, tc.scope, "")
				if code(err) != tc.want {
					t.Fatalf("got %v, want %q", err, tc.want)
				}
				if err == nil && out.Scope != tc.got {
					t.Fatalf("scope %q, want %q", out.Scope, tc.got)
				}
				if err == nil {
					p, err := r.svc.AccessPrincipal(r.ctx, out.AccessToken)
					if err != nil || p.EffectiveScopes().String() != tc.got {
						t.Fatalf("the token acts with %v (%v), want %q", p.EffectiveScopes(), err, tc.got)
					}
				}
			})
		}
	})
}

// TestPasswordEpochs: a new password ends every password-derived token and
// admin UI session of the user, except the one making the change when it
// is the user's own; the user's separate credentials keep working, and the
// new password signs in.
func TestPasswordEpochs(t *testing.T) {
	for _, tc := range []struct {
		name string
		// by: "admin" (another admin sets it), "self" (UpdateUser with
		// the user's own password token), "own" (ChangeOwnPassword).
		by            string
		makerSurvives bool
	}{
		{"another admin sets it", "admin", false},
		{"the user sets it as an admin", "self", true},
		{"the user changes their own", "own", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRules(t)
			u := r.user("ann@example.com", admin, developer)
			other := r.signIn("ann@example.com")
			maker := r.signIn("ann@example.com")
			session, _, err := r.svc.Login(r.ctx, "ann@example.com", pw, "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			ann, err := r.svc.AccessPrincipal(r.ctx, maker)
			if err != nil {
				t.Fatal(err)
			}
			app, err := r.svc.EnableAPIAccess(r.ctx, ann, service.APIAccessInput{})
			if err != nil {
				t.Fatal(err)
			}
			cred, err := r.svc.CreateCredential(r.ctx, ann, service.CredentialInput{Name: "ci"})
			if err != nil {
				t.Fatal(err)
			}
			const next = "another long password"
			switch tc.by {
			case "admin":
				_, err = r.svc.UpdateUser(r.ctx, r.op, u.ID, service.UserPatch{Password: ptr(next)})
			case "self":
				_, err = r.svc.UpdateUser(r.ctx, ann, u.ID, service.UserPatch{Password: ptr(next)})
			default:
				err = r.svc.ChangeOwnPassword(r.ctx, ann, pw, next, "192.0.2.1")
			}
			if err != nil {
				t.Fatal(err)
			}
			works := func(err error) bool { return err == nil }
			_, errOther := r.svc.AccessPrincipal(r.ctx, other)
			_, errMaker := r.svc.AccessPrincipal(r.ctx, maker)
			_, _, errSession := r.svc.SessionPrincipal(r.ctx, session)
			_, errApp := r.svc.AccessPrincipal(r.ctx, app.AccessToken)
			_, errCred := r.svc.ClientCredentialsGrant(r.ctx, cred.ClientID, cred.ClientSecret, "", "")
			got := map[string]bool{"other sign-in": works(errOther), "maker": works(errMaker), "session": works(errSession),
				"API access": works(errApp), "client credential": works(errCred)}
			want := map[string]bool{"other sign-in": false, "maker": tc.makerSurvives, "session": false, "API access": true, "client credential": true}
			if !equal(got, want) {
				t.Fatalf("after the change: %v, want %v", got, want)
			}
			if _, _, err := r.svc.PasswordGrant(r.ctx, "ann@example.com", pw, "192.0.2.1", ""); err == nil {
				t.Fatal("the old password still signs in")
			}
			if _, _, err := r.svc.PasswordGrant(r.ctx, "ann@example.com", next, "192.0.2.1", ""); err != nil {
				t.Fatalf("the new password: %v", err)
			}
		})
	}
}

// TestSessionsFromASignIn: a user sees and ends their own console
// sessions and authorised applications only from a sign-in — a console
// session or a password-grant token — never with a client credential or
// an API token acting as them; an admin sees any user's, but only the
// operator ends the operator's sessions or authorizations, or clears the
// operator's sign-in throttle. A refusal ends nothing.
func TestSessionsFromASignIn(t *testing.T) {
	r := newRules(t)
	opID := r.op.User.ID
	r.user("ann@example.com", admin)
	bobID := r.user("bob@example.com", developer).ID
	session := func(email string) (string, *gatehouse.Principal) {
		step, err := r.svc.SignIn(r.ctx, email, pw, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := r.svc.SessionPrincipal(r.ctx, step.Session)
		if err != nil {
			t.Fatal(err)
		}
		return step.Session, p
	}
	bobCookie, console := session("bob@example.com")
	opCookie, _ := session("op@example.com")
	bob, ann := r.as("bob@example.com"), r.as("ann@example.com")
	cred, err := r.svc.CreateCredential(r.ctx, bob, service.CredentialInput{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := r.svc.ClientPrincipal(r.ctx, cred.ClientID, cred.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SetAPITokensExtension(r.ctx, r.op, ptr(true)); err != nil {
		t.Fatal(err)
	}
	tok, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	asBob, err := r.svc.APITokenPrincipal(r.ctx, tok.Token, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	stillWorks := func(cookie string) {
		t.Helper()
		if _, _, err := r.svc.SessionPrincipal(r.ctx, cookie); err != nil {
			t.Fatalf("a refusal ended a session: %v", err)
		}
	}
	for _, tc := range []struct {
		name string
		by   *gatehouse.Principal
		of   string
		end  bool
		want string
	}{
		{"bob's console session lists his", console, bobID, false, ""},
		{"bob's password token lists his", bob, bobID, false, ""},
		{"bob's client credential lists his", client, bobID, false, gatehouse.EForbidden},
		{"an API token acting as bob lists his", asBob, bobID, false, gatehouse.EForbidden},
		{"bob's client credential ends his", client, bobID, true, gatehouse.EForbidden},
		{"an API token acting as bob ends his", asBob, bobID, true, gatehouse.EForbidden},
		{"an admin lists the operator's", ann, opID, false, ""},
		{"an admin ends the operator's", ann, opID, true, gatehouse.EForbidden},
	} {
		var err error
		if tc.end {
			_, err = r.svc.EndSessions(r.ctx, tc.by, tc.of)
		} else {
			_, err = r.svc.Sessions(r.ctx, tc.by, tc.of)
		}
		if code(err) != tc.want {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.want)
		}
		stillWorks(bobCookie)
		stillWorks(opCookie)
	}
	list, err := r.svc.Sessions(r.ctx, console, bobID)
	if err != nil || len(list) != 1 {
		t.Fatalf("bob's sessions: %v %v", list, err)
	}
	for _, p := range []*gatehouse.Principal{client, asBob} {
		if err := r.svc.EndSession(r.ctx, p, list[0].ID); code(err) != gatehouse.EForbidden {
			t.Fatalf("ended one session with %s: %v", p.Method, err)
		}
	}
	stillWorks(bobCookie)
	for _, p := range []*gatehouse.Principal{client, asBob} {
		if _, _, err := r.svc.Authorizations(r.ctx, p, "", gatehouse.Page{Limit: 10}); code(err) != gatehouse.EForbidden {
			t.Fatalf("listed bob's authorizations with %s: %v", p.Method, err)
		}
		if err := r.svc.RevokeAuthorization(r.ctx, p, "", "app_x"); code(err) != gatehouse.EForbidden {
			t.Fatalf("ended bob's authorization with %s: %v", p.Method, err)
		}
	}
	if _, _, err := r.svc.Authorizations(r.ctx, bob, "", gatehouse.Page{Limit: 10}); err != nil {
		t.Fatalf("bob's own, from a sign-in: %v", err)
	}
	if _, err := r.svc.ClearThrottle(r.ctx, ann, opID); code(err) != gatehouse.EForbidden {
		t.Fatalf("an admin cleared the operator's throttle: %v", err)
	}
	if _, err := r.svc.ClearThrottle(r.ctx, ann, bobID); err != nil {
		t.Fatalf("an admin clears bob's throttle: %v", err)
	}
	if err := r.svc.RevokeAuthorization(r.ctx, ann, opID, "app_x"); code(err) != gatehouse.EForbidden {
		t.Fatalf("an admin ended the operator's authorization: %v", err)
	}
	if err := r.svc.RevokeAuthorization(r.ctx, r.op, opID, "app_x"); code(err) != gatehouse.ENotFound {
		t.Fatalf("the operator's own: %v", err)
	}
	// What may end them does.
	if n, err := r.svc.EndSessions(r.ctx, ann, bobID); err != nil || n != 1 {
		t.Fatalf("an admin ends bob's: %d %v", n, err)
	}
	if n, err := r.svc.EndSessions(r.ctx, r.op, opID); err != nil || n != 1 {
		t.Fatalf("the operator ends their own from a password token: %d %v", n, err)
	}
}

// TestOwnPasswordAndFactorsFromASignIn: a credential that is not a sign-in
// (an API token acting as its user, a client credential) never sets its
// own user's password or an admin's, nor removes their second factors —
// the operator's least of all — while an admin's sign-in still does both,
// for themselves and for others, and the same API token still does both
// for users who are not admins.
func TestOwnPasswordAndFactorsFromASignIn(t *testing.T) {
	r := newRules(t)
	opID := r.op.User.ID
	annID := r.user("ann@example.com", admin, developer).ID
	bobID := r.user("bob@example.com", developer).ID
	ann := r.as("ann@example.com")
	cred, err := r.svc.CreateCredential(r.ctx, ann, service.CredentialInput{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	annClient, err := r.svc.ClientPrincipal(r.ctx, cred.ClientID, cred.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SetAPITokensExtension(r.ctx, r.op, ptr(true)); err != nil {
		t.Fatal(err)
	}
	tok, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	actingAs := func(email string) *gatehouse.Principal {
		p, err := r.svc.APITokenPrincipal(r.ctx, tok.Token, email)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	newPW := "another long pass phrase"
	emails := map[string]string{opID: "op@example.com", annID: "ann@example.com", bobID: "bob@example.com"}
	for _, tc := range []struct {
		name string
		by   *gatehouse.Principal
		of   string
		want string
	}{
		{"an API token acting as the operator, on the operator", actingAs("op@example.com"), opID, gatehouse.EForbidden},
		{"an API token acting as ann, on ann", actingAs("ann@example.com"), annID, gatehouse.EForbidden},
		{"ann's client credential, on ann", annClient, annID, gatehouse.EForbidden},
		{"an API token acting as the operator, on ann, an admin", actingAs("op@example.com"), annID, gatehouse.EForbidden},
		{"ann's client credential, on bob", annClient, bobID, ""},
		{"an API token acting as the operator, on bob", actingAs("op@example.com"), bobID, ""},
		{"ann's password token, on ann", ann, annID, ""},
		{"the operator's password token, on the operator", r.op, opID, ""},
	} {
		_, err := r.svc.UpdateUser(r.ctx, tc.by, tc.of, service.UserPatch{Password: &newPW})
		if code(err) != tc.want {
			t.Fatalf("%s sets the password: %v, want %q", tc.name, err, tc.want)
		}
		if err := r.svc.ResetSecondFactors(r.ctx, tc.by, tc.of); code(err) != tc.want {
			t.Fatalf("%s removes the second factors: %v, want %q", tc.name, err, tc.want)
		}
		if tc.want != "" {
			// A refused change changed nothing: the old password signs in.
			if _, err := r.svc.SignIn(r.ctx, emails[tc.of], pw, "192.0.2.1"); err != nil {
				t.Fatalf("%s: the old password no longer signs in: %v", tc.name, err)
			}
		}
	}
	if _, err := r.svc.SignIn(r.ctx, "op@example.com", newPW, "192.0.2.1"); err != nil {
		t.Fatalf("the operator's own change: %v", err)
	}
}

// TestCustomScopesGrantNoPlatformScope: an account's custom scopes may
// not grant a platform scope, neither by its name nor through the
// ":write grants :read" rule; scopes that grant none are kept.
func TestCustomScopesGrantNoPlatformScope(t *testing.T) {
	r := newRules(t, func(c *service.Config) { c.PlatformScopes = gatehouse.Scopes{"ledger:read", "ops:admin"} })
	ctx, svc, op := r.ctx, r.svc, r.op
	for _, tc := range []struct {
		scope gatehouse.Scope
		want  string
	}{
		{"ledger:read", gatehouse.EInvalidRequest},
		{"ledger:write", gatehouse.EInvalidRequest},
		{"ops:admin", gatehouse.EInvalidRequest},
		{"ops:write", ""},
		{"ledger:audit", ""},
		{"reports:write", ""},
	} {
		_, err := svc.UpdateSettings(ctx, op, gatehouse.SettingsPatch{CustomScopes: &[]gatehouse.Scope{"reports:read", tc.scope}})
		if code(err) != tc.want {
			t.Fatalf("custom scope %s: %v, want %q", tc.scope, err, tc.want)
		}
		st, err := svc.Settings(ctx, op)
		if err != nil {
			t.Fatal(err)
		}
		if kept := slices.Contains(st.CustomScopes, tc.scope); kept != (tc.want == "") {
			t.Fatalf("custom scope %s: stored %v", tc.scope, st.CustomScopes)
		}
	}
}

// TestStalePrincipalChangesNothing: a write judges its caller as they
// stand when it commits, not as they stood when the request
// authenticated. Each case takes a principal, then takes its power away
// (the developer role, the account's admin role, the operator's, or the
// user itself by a disable, or a disable and enable: a new epoch), and
// then writes with the principal taken before: the checks made before
// the transaction pass on it, the transaction refuses with forbidden and
// nothing changes. The same interleaving is what a request in flight
// during the change meets.
func TestStalePrincipalChangesNothing(t *testing.T) {
	disable := func(r *rules, by *gatehouse.Principal, u *gatehouse.User) {
		r.t.Helper()
		if _, err := r.svc.UpdateUser(r.ctx, by, u.ID, service.UserPatch{Status: ptr(gatehouse.StatusDisabled)}); err != nil {
			r.t.Fatal(err)
		}
	}
	reenable := func(r *rules, by *gatehouse.Principal, u *gatehouse.User) {
		r.t.Helper()
		disable(r, by, u)
		if _, err := r.svc.UpdateUser(r.ctx, by, u.ID, service.UserPatch{Status: ptr(gatehouse.StatusActive)}); err != nil {
			r.t.Fatal(err)
		}
	}
	dropDeveloper := func(r *rules, _ *gatehouse.Principal, u *gatehouse.User) {
		r.t.Helper()
		if _, err := r.svc.SetDeveloper(r.ctx, r.op, u.ID, false, false); err != nil {
			r.t.Fatal(err)
		}
	}
	// A developer with a credential; write is the stale write, kept
	// checks what must not have changed.
	developerCase := func(take func(*rules, *gatehouse.Principal, *gatehouse.User), secretWorks bool,
		write func(r *rules, dev *gatehouse.Principal, credID string) error) func(t *testing.T) {
		return func(t *testing.T) {
			r := newRules(t)
			u := r.user("dev@example.com", developer)
			dev := r.as("dev@example.com")
			cred, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "ci"})
			if err != nil {
				t.Fatal(err)
			}
			take(r, r.op, u)
			if err := write(r, dev, cred.ID); code(err) != gatehouse.EForbidden {
				t.Fatalf("got %v, want forbidden", err)
			}
			c, err := r.svc.Credential(r.ctx, r.op, cred.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "ci" || !c.Enabled {
				t.Fatalf("refused, yet changed: %+v", c)
			}
			if secretWorks {
				// The role is gone but the credentials were kept: its
				// secret is still the one it had.
				if _, err := r.svc.ClientCredentialsGrant(r.ctx, cred.ClientID, cred.ClientSecret, "", ""); err != nil {
					t.Fatalf("the credential's secret stopped working: %v", err)
				}
			}
		}
	}
	update := func(r *rules, dev *gatehouse.Principal, id string) error {
		_, err := r.svc.UpdateCredential(r.ctx, dev, id, service.CredentialPatch{Name: ptr("renamed"), Enabled: ptr(false)})
		return err
	}
	roll := func(r *rules, dev *gatehouse.Principal, id string) error {
		_, err := r.svc.RollCredential(r.ctx, dev, id, 0)
		return err
	}
	t.Run("developer role removed, then UpdateCredential", developerCase(dropDeveloper, true, update))
	t.Run("developer disabled, then UpdateCredential", developerCase(disable, false, update))
	t.Run("developer role removed, then RollCredential", developerCase(dropDeveloper, true, roll))
	t.Run("developer disabled and enabled again, then RollCredential", developerCase(reenable, true, roll))

	t.Run("user disabled and enabled again, then EnrolTOTP", func(t *testing.T) {
		r := newRules(t, func(c *service.Config) { c.MFASealer = mfa.NewSealer([]byte("test key")) })
		u := r.user("ann@example.com")
		ann := r.as("ann@example.com")
		reenable(r, r.op, u)
		if _, err := r.svc.EnrolTOTP(r.ctx, ann); code(err) != gatehouse.EForbidden {
			t.Fatalf("got %v, want forbidden", err)
		}
		if _, err := r.svc.PendingTOTP(r.ctx, r.as("ann@example.com")); code(err) != gatehouse.ENotFound {
			t.Fatalf("a TOTP secret was enrolled for the stale caller: %v", err)
		}
	})

	t.Run("admin disabled and enabled again, then CreateUser", func(t *testing.T) {
		r := newRules(t)
		u := r.user("ann@example.com", admin)
		ann := r.as("ann@example.com")
		reenable(r, r.op, u)
		if _, err := r.svc.CreateUser(r.ctx, ann, service.NewUser{Email: "x@example.com", Password: pw}); code(err) != gatehouse.EForbidden {
			t.Fatalf("got %v, want forbidden", err)
		}
		if _, err := r.svc.UserByEmail(r.ctx, r.op, "x@example.com"); code(err) != gatehouse.ENotFound {
			t.Fatalf("the stale admin's user was made: %v", err)
		}
	})

	// The operator, disabled or demoted by a second operator, then
	// acting on accounts.
	for _, take := range []struct {
		name  string
		patch service.UserPatch
	}{
		{"disabled", service.UserPatch{Status: ptr(gatehouse.StatusDisabled)}},
		{"demoted", service.UserPatch{Roles: &[]gatehouse.Role{}}},
	} {
		// other is another account, member a member of it (not its
		// admin, whom no one may delete).
		operatorCase := func(write func(r *rules, op *gatehouse.Principal, other *gatehouse.Account, member *gatehouse.User) error,
			kept func(r *rules, other *gatehouse.Account, member *gatehouse.User) error) func(t *testing.T) {
			return func(t *testing.T) {
				r := newRules(t)
				other, _, err := r.svc.CreateAccount(r.ctx, r.op, service.NewAccount{Name: "other", AdminEmail: "a@other.example", AdminPassword: pw})
				if err != nil {
					t.Fatal(err)
				}
				member, err := r.svc.CreateUser(r.ctx, r.as("a@other.example"), service.NewUser{Email: "m@other.example", Password: pw})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.svc.Recover(r.ctx, "op2@example.com", pw); err != nil {
					t.Fatal(err)
				}
				if _, err := r.svc.UpdateUser(r.ctx, r.as("op2@example.com"), r.op.User.ID, take.patch); err != nil {
					t.Fatal(err)
				}
				if err := write(r, r.op, other, member); code(err) != gatehouse.EForbidden {
					t.Fatalf("got %v, want forbidden", err)
				}
				if err := kept(r, other, member); err != nil {
					t.Fatal(err)
				}
			}
		}
		accounts := func(want int) func(r *rules, _ *gatehouse.Account, _ *gatehouse.User) error {
			return func(r *rules, _ *gatehouse.Account, _ *gatehouse.User) error {
				all, _, err := r.svc.Accounts(r.ctx, r.as("op2@example.com"), gatehouse.Page{})
				if err == nil && len(all) != want {
					err = fmt.Errorf("%d accounts, want %d", len(all), want)
				}
				return err
			}
		}
		t.Run("operator "+take.name+", then CreateAccount", operatorCase(
			func(r *rules, op *gatehouse.Principal, _ *gatehouse.Account, _ *gatehouse.User) error {
				_, _, err := r.svc.CreateAccount(r.ctx, op, service.NewAccount{Name: "x", AdminEmail: "x@x.example", AdminPassword: pw})
				return err
			}, accounts(2)))
		t.Run("operator "+take.name+", then UpdateAccount", operatorCase(
			func(r *rules, op *gatehouse.Principal, other *gatehouse.Account, _ *gatehouse.User) error {
				_, err := r.svc.UpdateAccount(r.ctx, op, other.ID, service.AccountPatch{Status: ptr(gatehouse.AccountSuspended)})
				return err
			}, func(r *rules, other *gatehouse.Account, _ *gatehouse.User) error {
				a, err := r.svc.Account(r.ctx, r.as("op2@example.com"), other.ID)
				if err == nil && a.Status != gatehouse.AccountActive {
					err = fmt.Errorf("the account is %s", a.Status)
				}
				return err
			}))
		t.Run("operator "+take.name+", then DeleteAccountUser", operatorCase(
			func(r *rules, op *gatehouse.Principal, other *gatehouse.Account, member *gatehouse.User) error {
				return r.svc.DeleteAccountUser(r.ctx, op, other.ID, member.ID)
			}, func(r *rules, _ *gatehouse.Account, member *gatehouse.User) error {
				_, _, err := r.svc.PasswordGrant(r.ctx, member.Email, pw, "192.0.2.1", "")
				return err
			}))
	}
}

// TestRollOnce: an API token, and a client credential revoked for good,
// are replaced by a roll once. A second roll of the same one — a retry
// whose answer was lost, or a leaked secret rolled again — is conflict
// naming the replacement, which rolls as usual; so neither the
// account's max_api_tokens_per_account nor the owner's
// max_credentials_per_user, nor a name's uniqueness, is passed by rolling
// one token or credential again and again. A live credential rolls in
// place as often as asked.
func TestRollOnce(t *testing.T) {
	setup := func(t *testing.T) (*rules, *gatehouse.Principal) {
		r := newRules(t)
		on := true
		if err := r.svc.SetAPITokensExtension(r.ctx, r.op, &on); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.UpdateSettings(r.ctx, r.op, gatehouse.SettingsPatch{MaxAPITokensPerAccount: ptr(1), MaxCredentialsPerUser: ptr(1)}); err != nil {
			t.Fatal(err)
		}
		r.user("dev@example.com", developer)
		return r, r.as("dev@example.com")
	}
	// again rolls id a second time, wants conflict naming replacement,
	// then rolls the replacement.
	again := func(t *testing.T, roll func(id string) (string, error), id, replacement string) {
		t.Helper()
		if _, err := roll(id); code(err) != gatehouse.EConflict || !strings.Contains(gatehouse.ErrorMessage(err), replacement) {
			t.Fatalf("second roll: %v, want conflict naming %s", err, replacement)
		}
		if _, err := roll(replacement); err != nil {
			t.Fatalf("the replacement does not roll: %v", err)
		}
	}
	for _, leaked := range []bool{false, true} {
		t.Run(fmt.Sprintf("API token, leaked %v", leaked), func(t *testing.T) {
			r, _ := setup(t)
			tok, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "zapier"})
			if err != nil {
				t.Fatal(err)
			}
			if leaked {
				if _, err := r.svc.RevokeLeaked(r.ctx, tok.Token, service.LeakReport{Via: service.LeakViaRevoke}); err != nil {
					t.Fatal(err)
				}
			}
			roll := func(id string) (string, error) {
				out, err := r.svc.RollAPIToken(r.ctx, r.op, id, 3600)
				if err != nil {
					return "", err
				}
				return out.ID, nil
			}
			next, err := roll(tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			again(t, roll, tok.ID, next)
			ts, _, err := r.svc.APITokens(r.ctx, r.op, gatehouse.Page{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != 3 { // the first, its replacement, and the replacement's
				t.Fatalf("%d API tokens, want 3", len(ts))
			}
		})
	}
	t.Run("credential revoked for good", func(t *testing.T) {
		r, dev := setup(t)
		cred, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.RevokeLeaked(r.ctx, cred.ClientSecret, service.LeakReport{Via: service.LeakViaRevoke}); err != nil {
			t.Fatal(err)
		}
		var replacement string
		roll := func(id string) (string, error) {
			out, err := r.svc.RollCredential(r.ctx, dev, id, 0)
			if err != nil {
				return "", err
			}
			if replacement == "" {
				cs, _, err := r.svc.Credentials(r.ctx, dev, "", gatehouse.Page{})
				if err != nil {
					return "", err
				}
				for _, c := range cs {
					if c.ClientID == out.ClientID {
						replacement = c.ID
					}
				}
			}
			return out.ClientID, nil
		}
		if _, err := roll(cred.ID); err != nil || replacement == "" {
			t.Fatalf("first roll: %v (replacement %q)", err, replacement)
		}
		again(t, roll, cred.ID, replacement)
		if n, err := r.svc.CredentialCount(r.ctx, r.op, dev.User.ID); err != nil || n != 2 {
			t.Fatalf("%d credentials (%v), want 2: the revoked one and its one replacement", n, err)
		}
	})
	t.Run("leaked, its name taken since", func(t *testing.T) {
		// A leaked token's or credential's name is free for a new one;
		// its roll then does not make a second live holder of the name.
		r, _ := setup(t)
		if _, err := r.svc.UpdateSettings(r.ctx, r.op, gatehouse.SettingsPatch{MaxAPITokensPerAccount: ptr(3), MaxCredentialsPerUser: ptr(3)}); err != nil {
			t.Fatal(err)
		}
		dev := r.as("dev@example.com") // with the account's new settings
		tok, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "zapier"})
		if err != nil {
			t.Fatal(err)
		}
		cred, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{tok.Token, cred.ClientSecret} {
			if _, err := r.svc.RevokeLeaked(r.ctx, secret, service.LeakReport{Via: service.LeakViaRevoke}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "Zapier"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "CI"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.RollAPIToken(r.ctx, r.op, tok.ID, 0); code(err) != gatehouse.EConflict || field(err) != "name" {
			t.Fatalf("API token roll: %v, want conflict about the name", err)
		}
		if _, err := r.svc.RollCredential(r.ctx, dev, cred.ID, 0); code(err) != gatehouse.EConflict || field(err) != "name" {
			t.Fatalf("credential roll: %v, want conflict about the name", err)
		}
	})
	t.Run("a line of rolls keeps two tokens live", func(t *testing.T) {
		// A rolls into B with an hour's overlap; B leaks and rolls into
		// C: A stops at once, and B's leak does not stop its own line's
		// roll for the name A still held.
		r, _ := setup(t)
		a, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "zapier"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.svc.RollAPIToken(r.ctx, r.op, a.ID, 3600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.APITokenPrincipal(r.ctx, a.Token, ""); err != nil {
			t.Fatalf("A in its overlap: %v", err)
		}
		if _, err := r.svc.RevokeLeaked(r.ctx, b.Token, service.LeakReport{Via: service.LeakViaRevoke}); err != nil {
			t.Fatal(err)
		}
		c, err := r.svc.RollAPIToken(r.ctx, r.op, b.ID, 3600)
		if err != nil {
			t.Fatalf("the leaked replacement does not roll: %v", err)
		}
		if _, err := r.svc.APITokenPrincipal(r.ctx, a.Token, ""); err == nil {
			t.Fatal("A, two rolls back, still works")
		}
		if _, err := r.svc.APITokenPrincipal(r.ctx, c.Token, ""); err != nil {
			t.Fatalf("C: %v", err)
		}
	})
	t.Run("ending a predecessor is a change of it", func(t *testing.T) {
		// A (unrestricted) rolls into B with an hour's overlap, B is
		// narrowed to credentials:write. A token of that scope may roll
		// B, but not end A's overlap — it may not disable A either — so
		// its roll is refused and A still works; the admin's roll of B
		// ends A and says so in the audit log.
		r, _ := setup(t)
		if _, err := r.svc.UpdateSettings(r.ctx, r.op, gatehouse.SettingsPatch{MaxAPITokensPerAccount: ptr(10)}); err != nil {
			t.Fatal(err)
		}
		r.op = r.as("op@example.com")
		a, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "zapier"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.svc.RollAPIToken(r.ctx, r.op, a.ID, 3600)
		if err != nil {
			t.Fatal(err)
		}
		narrow := []gatehouse.Scope{"credentials:write"}
		if _, err := r.svc.UpdateAPIToken(r.ctx, r.op, b.ID, service.CredentialPatch{Scopes: &narrow}); err != nil {
			t.Fatal(err)
		}
		limited, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "limited", Scopes: &narrow})
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.svc.APITokenPrincipal(r.ctx, limited.Token, "")
		if err != nil {
			t.Fatal(err)
		}
		off := false
		if _, err := r.svc.UpdateAPIToken(r.ctx, p, a.ID, service.CredentialPatch{Enabled: &off}); code(err) != gatehouse.EForbidden {
			t.Fatalf("the limited token disables A: %v, want forbidden", err)
		}
		if _, err := r.svc.RollAPIToken(r.ctx, p, b.ID, 3600); code(err) != gatehouse.EForbidden || !strings.Contains(gatehouse.ErrorMessage(err), a.ID) {
			t.Fatalf("the limited token's roll of B, which would end A: %v, want forbidden naming A", err)
		}
		if _, err := r.svc.APITokenPrincipal(r.ctx, a.Token, ""); err != nil {
			t.Fatalf("A, in its overlap, was ended by a refused roll: %v", err)
		}
		if _, err := r.svc.APITokenPrincipal(r.ctx, b.Token, ""); err != nil {
			t.Fatalf("B after a refused roll: %v", err)
		}
		if _, err := r.svc.RollAPIToken(r.ctx, r.op, b.ID, 3600); err != nil {
			t.Fatalf("the admin's roll of B: %v", err)
		}
		if _, err := r.svc.APITokenPrincipal(r.ctx, a.Token, ""); err == nil {
			t.Fatal("A, two rolls back, still works")
		}
		es, _, err := r.svc.Audit(r.ctx, r.op, service.AuditQuery{Action: "api_token.rolled", Target: b.ID}, gatehouse.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Details["ended_overlap_of"] != a.ID {
			t.Fatalf("B's roll audited %+v, want one entry naming A's overlap ended", es)
		}
	})
	t.Run("deleted replacement, expired token", func(t *testing.T) {
		r, _ := setup(t)
		a, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "zapier"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.RevokeLeaked(r.ctx, a.Token, service.LeakReport{Via: service.LeakViaRevoke}); err != nil {
			t.Fatal(err)
		}
		// Rolled with an overlap: the roll does not end it at once.
		b, err := r.svc.RollAPIToken(r.ctx, r.op, a.ID, 3600)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.svc.DeleteAPIToken(r.ctx, r.op, b.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.RollAPIToken(r.ctx, r.op, a.ID, 0); err != nil {
			t.Fatalf("a leaked token whose replacement was deleted does not roll again: %v", err)
		}
		if _, err := r.svc.RollAPIToken(r.ctx, r.op, a.ID, 0); code(err) != gatehouse.EConflict {
			t.Fatalf("a third roll: %v, want conflict", err)
		}
		if _, err := r.svc.UpdateSettings(r.ctx, r.op, gatehouse.SettingsPatch{MaxAPITokensPerAccount: ptr(10)}); err != nil {
			t.Fatal(err)
		}
		short, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "short", ExpiresAt: ptr(r.clock().Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		r.wait(2 * time.Hour)
		if _, err := r.svc.RollAPIToken(r.ctx, r.op, short.ID, 0); code(err) != gatehouse.EConflict || !strings.Contains(gatehouse.ErrorMessage(err), "expired") {
			t.Fatalf("an expired API token rolls: %v", err)
		}
	})
	t.Run("live credential rolls in place", func(t *testing.T) {
		r, dev := setup(t)
		cred, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			out, err := r.svc.RollCredential(r.ctx, dev, cred.ID, 0)
			if err != nil || out.ClientID != cred.ClientID {
				t.Fatalf("roll %d: %v %v", i, out, err)
			}
		}
	})
}

// TestReissueEndsEarlierLineages: an API access application has one live
// lineage. Each reissue ends the lineages before it — the enable's, and
// an earlier reissue's whose answer was lost (a double submit) — so only
// the tokens of the last answer work, access and refresh alike.
func TestReissueEndsEarlierLineages(t *testing.T) {
	r := newRules(t)
	r.user("ann@example.com", admin)
	ann := r.as("ann@example.com")
	enabled, err := r.svc.EnableAPIAccess(r.ctx, ann, service.APIAccessInput{})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := r.svc.ReissueAPIAccess(r.ctx, ann)
	if err != nil {
		t.Fatal(err)
	}
	last, err := r.svc.ReissueAPIAccess(r.ctx, ann)
	if err != nil {
		t.Fatal(err)
	}
	works := func(is service.Issued) (access, refresh bool) {
		_, errA := r.svc.AccessPrincipal(r.ctx, is.AccessToken)
		_, errR := r.svc.RefreshGrant(r.ctx, enabled.ClientID, is.RefreshToken, "")
		return errA == nil, errR == nil
	}
	for _, tc := range []struct {
		name string
		is   service.Issued
		want bool
	}{{"the enable's", enabled.Issued, false}, {"the lost reissue's", lost.Issued, false}, {"the last reissue's", last.Issued, true}} {
		if a, rf := works(tc.is); a != tc.want || rf != tc.want {
			t.Errorf("%s tokens: access works %v, refresh works %v; want %v", tc.name, a, rf, tc.want)
		}
	}
}

// TestAppsTakenOverByNoOne: only an application's owner changes where its
// codes go or rolls its secret; an admin renames and deletes it; a
// credential narrower than what the application's tokens may do as its
// owner acts on it not at all.
func TestAppsTakenOverByNoOne(t *testing.T) {
	redirect := []string{"https://app.example.com/cb"}
	elsewhere := []string{"https://evil.example.net/cb"}
	name := "Renamed"
	for _, tc := range []struct {
		name string
		who  string // "owner", "admin" or "narrow owner"
		act  string // "redirect", "rename", "roll" or "delete"
		want string
	}{
		{"owner changes the redirect URIs", "owner", "redirect", ""},
		{"owner rolls the secret", "owner", "roll", ""},
		{"admin changes the redirect URIs", "admin", "redirect", gatehouse.EForbidden},
		{"admin rolls the secret", "admin", "roll", gatehouse.EForbidden},
		{"admin renames", "admin", "rename", ""},
		{"admin deletes", "admin", "delete", ""},
		{"owner narrowed to credentials:write changes the redirect URIs", "narrow owner", "redirect", gatehouse.EForbidden},
		{"owner narrowed to credentials:write deletes", "narrow owner", "delete", gatehouse.EForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRules(t)
			r.user("ann@example.com", admin)
			r.user("dev@example.com", developer)
			app, err := r.svc.CreateApp(r.ctx, r.as("dev@example.com"), service.AppInput{Name: "A", Type: "confidential", RedirectURIs: redirect})
			if err != nil {
				t.Fatal(err)
			}
			p := r.as("dev@example.com")
			switch tc.who {
			case "admin":
				p = r.as("ann@example.com")
			case "narrow owner":
				out, _, err := r.svc.PasswordGrant(r.ctx, "dev@example.com", pw, "192.0.2.1", "credentials:write")
				if err != nil {
					t.Fatal(err)
				}
				if p, err = r.svc.AccessPrincipal(r.ctx, out.AccessToken); err != nil {
					t.Fatal(err)
				}
			}
			switch tc.act {
			case "redirect":
				_, err = r.svc.UpdateApp(r.ctx, p, app.ID, service.AppPatch{RedirectURIs: &elsewhere})
			case "rename":
				_, err = r.svc.UpdateApp(r.ctx, p, app.ID, service.AppPatch{Name: &name})
			case "roll":
				_, err = r.svc.RollApp(r.ctx, p, app.ID, 0)
			case "delete":
				err = r.svc.DeleteApp(r.ctx, p, app.ID)
			}
			if code(err) != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestGiveNoMoreThanHeld: a restricted credential gives no user a role or
// a password beyond what it holds, nor sets single sign-on; an
// unrestricted admin does, and a user made with neither is not governed.
func TestGiveNoMoreThanHeld(t *testing.T) {
	secret := "a long enough pass phrase"
	for _, tc := range []struct {
		name   string
		scopes string // "" for an unrestricted sign-in
		in     service.NewUser
		want   string
	}{
		{"unrestricted makes an admin with a password", "", service.NewUser{Email: "x@example.com", Password: secret, Roles: []gatehouse.Role{admin}}, ""},
		{"users:write makes an admin with a password", "users:write", service.NewUser{Email: "x@example.com", Password: secret, Roles: []gatehouse.Role{admin}}, gatehouse.EForbidden},
		{"users:write makes an admin without a password", "users:write", service.NewUser{Email: "x@example.com", Roles: []gatehouse.Role{admin}}, gatehouse.EForbidden},
		{"users:write makes a member with a password", "users:write", service.NewUser{Email: "x@example.com", Password: secret}, gatehouse.EForbidden},
		{"users:write makes a member with neither", "users:write", service.NewUser{Email: "x@example.com"}, ""},
		{"member's scopes and users:write make a member with a password", "users:write users:read workspaces:read workspaces:write", service.NewUser{Email: "x@example.com", Password: secret}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRules(t)
			out, _, err := r.svc.PasswordGrant(r.ctx, "op@example.com", pw, "192.0.2.1", tc.scopes)
			if err != nil {
				t.Fatal(err)
			}
			p, err := r.svc.AccessPrincipal(r.ctx, out.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.CreateUser(r.ctx, p, tc.in); code(err) != tc.want {
				t.Fatalf("create: got %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("a role or a password given by a change", func(t *testing.T) {
		r := newRules(t)
		u := r.user("ann@example.com")
		out, _, err := r.svc.PasswordGrant(r.ctx, "op@example.com", pw, "192.0.2.1", "users:write")
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.svc.AccessPrincipal(r.ctx, out.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		name := "Ann"
		if _, err := r.svc.UpdateUser(r.ctx, p, u.ID, service.UserPatch{Name: &name}); err != nil {
			t.Fatalf("rename: %v", err)
		}
		if _, err := r.svc.UpdateUser(r.ctx, p, u.ID, service.UserPatch{Roles: &[]gatehouse.Role{admin}}); code(err) != gatehouse.EForbidden {
			t.Fatalf("made an admin: %v", err)
		}
		if _, err := r.svc.SetDeveloper(r.ctx, p, u.ID, true, false); code(err) != gatehouse.EForbidden {
			t.Fatalf("made a developer: %v", err)
		}
	})
}

// TestSuspendedAccountWritesNothing: a principal authenticated before its
// account's suspension — a write in flight — changes nothing after it
// (invalid_token), as its admin or as its API token's anonymous admin;
// after reactivation it writes again.
func TestSuspendedAccountWritesNothing(t *testing.T) {
	r := newRules(t)
	acc, _, err := r.svc.CreateAccount(r.ctx, r.op, service.NewAccount{Name: "Bee", AdminEmail: "boss@bee.example", AdminPassword: pw})
	if err != nil {
		t.Fatal(err)
	}
	boss := r.as("boss@bee.example")
	on := true
	if err := r.svc.SetAPITokensExtension(r.ctx, boss, &on); err != nil {
		t.Fatal(err)
	}
	tok, err := r.svc.CreateAPIToken(r.ctx, boss, service.APITokenInput{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	anon, err := r.svc.APITokenPrincipal(r.ctx, tok.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	status := func(s gatehouse.AccountStatus) {
		t.Helper()
		if _, err := r.svc.UpdateAccount(r.ctx, r.op, acc.ID, service.AccountPatch{Status: &s}); err != nil {
			t.Fatal(err)
		}
	}
	writes := map[string]func(p *gatehouse.Principal) error{
		"create a user": func(p *gatehouse.Principal) error {
			_, err := r.svc.CreateUser(r.ctx, p, service.NewUser{Email: gatehouse.NewID("u") + "@bee.example"})
			return err
		},
		"make a workspace": func(p *gatehouse.Principal) error {
			_, err := r.svc.CreateWorkspace(r.ctx, p, service.NewWorkspace{Name: "w"})
			return err
		},
		"make an API token": func(p *gatehouse.Principal) error {
			_, err := r.svc.CreateAPIToken(r.ctx, p, service.APITokenInput{Name: gatehouse.NewID("t")})
			return err
		},
	}
	status(gatehouse.AccountSuspended)
	for name, write := range writes {
		for who, p := range map[string]*gatehouse.Principal{"admin": boss, "API token": anon} {
			if err := write(p); code(err) != gatehouse.EInvalidToken {
				t.Errorf("%s, as the suspended account's %s: %v", name, who, err)
			}
		}
	}
	status(gatehouse.AccountActive)
	for name, write := range writes {
		if err := write(boss); err != nil {
			t.Errorf("%s after reactivation: %v", name, err)
		}
	}
}

// TestLifetimeBoundHoldsForWhatExists: max_credential_lifetime_days set
// after a credential and an API token were made bounds them too (they
// stop working past it), a patch's expiry stays within it, and raising it
// lengthens nothing.
func TestLifetimeBoundHoldsForWhatExists(t *testing.T) {
	r := newRules(t)
	r.user("dev@example.com", developer)
	dev := r.as("dev@example.com")
	cred, err := r.svc.CreateCredential(r.ctx, dev, service.CredentialInput{Name: "forever"})
	if err != nil {
		t.Fatal(err)
	}
	on := true
	if err := r.svc.SetAPITokensExtension(r.ctx, r.op, &on); err != nil {
		t.Fatal(err)
	}
	tok, err := r.svc.CreateAPIToken(r.ctx, r.op, service.APITokenInput{Name: "forever"})
	if err != nil {
		t.Fatal(err)
	}
	setMax := func(days int) {
		t.Helper()
		if _, err := r.svc.UpdateSettings(r.ctx, r.op, gatehouse.SettingsPatch{MaxCredentialLifetimeDays: &days}); err != nil {
			t.Fatal(err)
		}
	}
	setMax(2)
	far := r.clock().Add(10 * 24 * time.Hour)
	if _, err := r.svc.UpdateCredential(r.ctx, dev, cred.ID, service.CredentialPatch{ExpiresAt: &far}); code(err) != gatehouse.EInvalidRequest {
		t.Fatalf("a patch beyond the bound: %v", err)
	}
	setMax(30) // raised: lengthens nothing
	r.wait(47 * time.Hour)
	if _, err := r.svc.ClientPrincipal(r.ctx, cred.ClientID, cred.ClientSecret); err != nil {
		t.Fatalf("the credential before the bound: %v", err)
	}
	if _, err := r.svc.APITokenPrincipal(r.ctx, tok.Token, ""); err != nil {
		t.Fatalf("the API token before the bound: %v", err)
	}
	r.wait(2 * time.Hour)
	if _, err := r.svc.ClientPrincipal(r.ctx, cred.ClientID, cred.ClientSecret); err == nil {
		t.Fatal("the credential made before the bound works past it")
	}
	if _, err := r.svc.APITokenPrincipal(r.ctx, tok.Token, ""); err == nil {
		t.Fatal("the API token made before the bound works past it")
	}
}
