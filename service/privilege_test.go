package service_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// lp is a service on a real SQLite store with a clock the test moves, the
// operator (an admin of the first account) with the API tokens extension
// on, and Bob, an admin and developer of that account.
type lp struct {
	t    *testing.T
	ctx  context.Context
	svc  *service.Service
	now  atomic.Int64 // Unix microseconds
	op   *gatehouse.Principal
	bob  *gatehouse.User
	root *service.NewAPIToken // unrestricted, never expires
}

func newLP(t *testing.T) *lp {
	t.Helper()
	return newLPOn(t, openStore(t))
}

// newLPOn is newLP on the store st.
func newLPOn(t *testing.T, st *store.Store) *lp {
	t.Helper()
	ctx := context.Background()
	w := &lp{t: t, ctx: ctx}
	w.now.Store(time.Now().UnixMicro())
	w.svc = service.New(service.Config{Store: st, Passwords: cheapPasswords(),
		Digester: token.NewDigester(nil), Now: func() time.Time { return time.UnixMicro(w.now.Load()) }})
	if _, _, err := w.svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	w.op = w.login("op@example.com")
	if err := w.svc.SetAPITokensExtension(ctx, w.op, ptr(true)); err != nil {
		t.Fatal(err)
	}
	w.op = w.login("op@example.com")
	var err error
	if w.bob, err = w.svc.CreateUser(ctx, w.op, service.NewUser{Email: "bob@example.com", Password: pw,
		Roles: []gatehouse.Role{gatehouse.RoleAdmin, gatehouse.RoleDeveloper}}); err != nil {
		t.Fatal(err)
	}
	w.root = w.apiToken(w.op, "root", nil, nil)
	return w
}

func (w *lp) advance(d time.Duration) { w.now.Add(d.Microseconds()) }

func (w *lp) login(email string) *gatehouse.Principal {
	w.t.Helper()
	out, _, err := w.svc.PasswordGrant(w.ctx, email, pw, "192.0.2.1", "")
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := w.svc.AccessPrincipal(w.ctx, out.AccessToken)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *lp) apiToken(p *gatehouse.Principal, name string, scopes []gatehouse.Scope, expires *time.Time) *service.NewAPIToken {
	w.t.Helper()
	in := service.APITokenInput{Name: name, ExpiresAt: expires}
	if scopes != nil {
		in.Scopes = &scopes
	}
	k, err := w.svc.CreateAPIToken(w.ctx, p, in)
	if err != nil {
		w.t.Fatalf("CreateAPIToken %s: %v", name, err)
	}
	return k
}

// as is the principal of API token raw, acting as actAs ("" for the
// anonymous admin).
func (w *lp) as(raw, actAs string) *gatehouse.Principal {
	w.t.Helper()
	p, err := w.svc.APITokenPrincipal(w.ctx, raw, actAs)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *lp) works(raw string) bool {
	_, err := w.svc.APITokenPrincipal(w.ctx, raw, "")
	return err == nil
}

func wantForbidden(t *testing.T, what string, err error) {
	t.Helper()
	if gatehouse.ErrorCode(err) != gatehouse.EForbidden {
		t.Fatalf("%s: %v, want forbidden", what, err)
	}
}

// TestNarrowCannotActOnWide: a credential cannot roll, update or delete
// one that can do more than it, or outlives it (SPEC §10.8) — API tokens
// and client credentials alike — and nothing changes.
func TestNarrowCannotActOnWide(t *testing.T) {
	w := newLP(t)
	soon := time.UnixMicro(w.now.Load()).Add(time.Hour)
	narrow := w.as(w.apiToken(w.op, "narrow", []gatehouse.Scope{gatehouse.ScopeCredentialsWrite}, nil).Token, "")
	expiring := w.as(w.apiToken(w.op, "expiring", nil, &soon).Token, "")
	for _, c := range []struct {
		name string
		p    *gatehouse.Principal
	}{{"narrow scopes", narrow}, {"earlier expiry", expiring}} {
		_, err := w.svc.RollAPIToken(w.ctx, c.p, w.root.ID, 3600)
		wantForbidden(t, c.name+": roll", err)
		_, err = w.svc.UpdateAPIToken(w.ctx, c.p, w.root.ID, service.CredentialPatch{Enabled: ptr(false)})
		wantForbidden(t, c.name+": disable", err)
		_, err = w.svc.UpdateAPIToken(w.ctx, c.p, w.root.ID, service.CredentialPatch{Scopes: &[]gatehouse.Scope{"users:read"}})
		wantForbidden(t, c.name+": narrow", err)
		_, err = w.svc.UpdateAPIToken(w.ctx, c.p, w.root.ID, service.CredentialPatch{ExpiresAt: &soon})
		wantForbidden(t, c.name+": expire", err)
		wantForbidden(t, c.name+": delete", w.svc.DeleteAPIToken(w.ctx, c.p, w.root.ID))
		if !w.works(w.root.Token) {
			t.Fatalf("%s: the wide token stopped working", c.name)
		}
	}
	// The wide one may act on the narrow one.
	if _, err := w.svc.UpdateAPIToken(w.ctx, w.as(w.root.Token, ""), narrow.CredentialID, service.CredentialPatch{Enabled: ptr(false)}); err != nil {
		t.Fatalf("wide disables narrow: %v", err)
	}

	// Client credentials: Bob's unrestricted one, and a narrow one of his
	// whose token tries to act on it.
	bob := w.login("bob@example.com")
	wide, err := w.svc.CreateCredential(w.ctx, bob, service.CredentialInput{Name: "wide"})
	if err != nil {
		t.Fatal(err)
	}
	small, err := w.svc.CreateCredential(w.ctx, bob, service.CredentialInput{Name: "small", Scopes: &[]gatehouse.Scope{gatehouse.ScopeCredentialsWrite}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := w.svc.ClientCredentialsGrant(w.ctx, small.ClientID, small.ClientSecret, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := w.svc.AccessPrincipal(w.ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.RollCredential(w.ctx, cp, wide.ID, 2592000)
	wantForbidden(t, "credential roll", err)
	_, err = w.svc.UpdateCredential(w.ctx, cp, wide.ID, service.CredentialPatch{Enabled: ptr(false)})
	wantForbidden(t, "credential disable", err)
	wantForbidden(t, "credential delete", w.svc.DeleteCredential(w.ctx, cp, wide.ID))
	if _, err := w.svc.ClientCredentialsGrant(w.ctx, wide.ClientID, wide.ClientSecret, "", ""); err != nil {
		t.Fatalf("the wide credential stopped working: %v", err)
	}
	// Creating wider than held: forbidden too.
	_, err = w.svc.CreateCredential(w.ctx, cp, service.CredentialInput{Name: "x", Scopes: &[]gatehouse.Scope{gatehouse.ScopeUsersWrite}})
	wantForbidden(t, "credential create wider", err)

	// Creating one that outlives the caller's own credential: forbidden,
	// not a bad request (SPEC §10.8); as long-lived as it: made.
	ends := time.UnixMicro(w.now.Load()).Add(48 * time.Hour)
	short, err := w.svc.CreateCredential(w.ctx, bob, service.CredentialInput{Name: "short", ExpiresAt: &ends})
	if err != nil {
		t.Fatal(err)
	}
	stok, err := w.svc.ClientCredentialsGrant(w.ctx, short.ClientID, short.ClientSecret, "", "")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := w.svc.AccessPrincipal(w.ctx, stok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	later := ends.Add(24 * time.Hour)
	_, err = w.svc.CreateCredential(w.ctx, sp, service.CredentialInput{Name: "longer", ExpiresAt: &later})
	wantForbidden(t, "credential create outliving the caller's", err)
	if _, err := w.svc.CreateCredential(w.ctx, sp, service.CredentialInput{Name: "as long", ExpiresAt: &ends}); err != nil {
		t.Fatalf("a credential expiring with the caller's: %v", err)
	}
}

// TestRollBounds: a roll is bounded by max_credential_lifetime_days like a
// new credential, and overlap_seconds is checked before it becomes a
// duration.
func TestRollBounds(t *testing.T) {
	w := newLP(t)
	if _, err := w.svc.UpdateSettings(w.ctx, w.op, gatehouse.SettingsPatch{MaxCredentialLifetimeDays: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	op := w.login("op@example.com")
	for _, bad := range []int{-1, 2592001, 9223372037, 1 << 62} {
		_, err := w.svc.RollAPIToken(w.ctx, op, w.root.ID, bad)
		if gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
			t.Fatalf("overlap %d: %v, want invalid_request", bad, err)
		}
	}
	if !w.works(w.root.Token) {
		t.Fatal("a refused roll changed the token")
	}
	next, err := w.svc.RollAPIToken(w.ctx, op, w.root.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	limit := time.UnixMicro(w.now.Load()).AddDate(0, 0, 1)
	if next.ExpiresAt == nil || next.ExpiresAt.After(limit) {
		t.Fatalf("rolled token expires %v, want at most %v", next.ExpiresAt, limit)
	}
	bob := w.login("bob@example.com")
	c, err := w.svc.CreateCredential(w.ctx, bob, service.CredentialInput{Name: "c", ExpiresAt: &limit})
	if err != nil {
		t.Fatal(err)
	}
	w.advance(12 * time.Hour)
	if _, err := w.svc.RollCredential(w.ctx, w.login("bob@example.com"), c.ID, 0); err != nil {
		t.Fatal(err)
	}
	got, err := w.svc.Credential(w.ctx, w.login("bob@example.com"), c.ID)
	if err != nil || got.ExpiresAt == nil || got.ExpiresAt.After(limit) {
		t.Fatalf("rolled credential: %v, %v", got, err)
	}
}

// minted is what an API token made through the service, acting as Bob:
// a client credential and its token, an API access application's tokens,
// and an API token.
type minted struct {
	cred             *service.NewCredential
	ccToken          string
	appAccess, appRT string
	appClient        string
	child            *service.NewAPIToken
}

func (w *lp) mint(parent string) *minted {
	w.t.Helper()
	p := w.as(parent, "bob@example.com")
	m := &minted{}
	var err error
	if m.cred, err = w.svc.CreateCredential(w.ctx, p, service.CredentialInput{Name: "minted"}); err != nil {
		w.t.Fatal(err)
	}
	cc, err := w.svc.ClientCredentialsGrant(w.ctx, m.cred.ClientID, m.cred.ClientSecret, "", "")
	if err != nil {
		w.t.Fatal(err)
	}
	m.ccToken = cc.AccessToken
	app, err := w.svc.EnableAPIAccess(w.ctx, p, service.APIAccessInput{})
	if err != nil {
		w.t.Fatal(err)
	}
	m.appAccess, m.appClient = app.AccessToken, app.ClientID
	// A running refresh lineage: refreshed once already.
	r, err := w.svc.RefreshGrant(w.ctx, app.ClientID, app.RefreshToken, "")
	if err != nil {
		w.t.Fatal(err)
	}
	m.appAccess, m.appRT = r.AccessToken, r.RefreshToken
	m.child = w.apiToken(w.as(parent, ""), "child", nil, nil)
	return m
}

// alive reports which of m still work (without using up the refresh
// token: it is refreshed only when alive is told to).
func (w *lp) alive(m *minted, refresh bool) map[string]bool {
	_, errCC := w.svc.AccessPrincipal(w.ctx, m.ccToken)
	_, errGrant := w.svc.ClientCredentialsGrant(w.ctx, m.cred.ClientID, m.cred.ClientSecret, "", "")
	_, errApp := w.svc.AccessPrincipal(w.ctx, m.appAccess)
	out := map[string]bool{"client-credentials token": errCC == nil, "client-credentials grant": errGrant == nil,
		"API access token": errApp == nil, "child API token": w.works(m.child.Token)}
	if refresh {
		r, err := w.svc.RefreshGrant(w.ctx, m.appClient, m.appRT, "")
		out["refresh"] = err == nil
		if err == nil {
			m.appAccess, m.appRT = r.AccessToken, r.RefreshToken
		}
	}
	return out
}

func allIs(t *testing.T, what string, got map[string]bool, want bool) {
	t.Helper()
	for k, v := range got {
		if v != want {
			t.Fatalf("%s: %s works=%v, want %v (%v)", what, k, v, want, got)
		}
	}
}

// TestMintedFollowParent: whatever an API token minted stops working while
// that token is disabled, expired, deleted (after a roll, the new token)
// or the extension is off — a running refresh lineage included — and
// works again when the token is enabled or the extension is on again.
func TestMintedFollowParent(t *testing.T) {
	t.Run("disable", func(t *testing.T) {
		w := newLP(t)
		m := w.mint(w.root.Token)
		allIs(t, "before", w.alive(m, true), true)
		op := w.login("op@example.com")
		if _, err := w.svc.UpdateAPIToken(w.ctx, op, w.root.ID, service.CredentialPatch{Enabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		allIs(t, "parent disabled", w.alive(m, true), false)
		if _, err := w.svc.UpdateAPIToken(w.ctx, op, w.root.ID, service.CredentialPatch{Enabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		allIs(t, "parent enabled again", w.alive(m, true), true)
	})
	t.Run("roll then delete the new token", func(t *testing.T) {
		w := newLP(t)
		m := w.mint(w.root.Token)
		op := w.login("op@example.com")
		next, err := w.svc.RollAPIToken(w.ctx, op, w.root.ID, 3600)
		if err != nil {
			t.Fatal(err)
		}
		allIs(t, "after the roll", w.alive(m, true), true)
		if err := w.svc.DeleteAPIToken(w.ctx, op, next.ID); err != nil {
			t.Fatal(err)
		}
		got := w.alive(m, true)
		if !w.works(w.root.Token) {
			t.Fatal("the old token's overlap ended early")
		}
		allIs(t, "new token deleted", got, false)
	})
	t.Run("expiry", func(t *testing.T) {
		w := newLP(t)
		at := time.UnixMicro(w.now.Load()).Add(10 * time.Minute)
		parent := w.apiToken(w.op, "expiring", nil, &at)
		m := w.mint(parent.Token)
		allIs(t, "before", w.alive(m, false), true)
		w.advance(11 * time.Minute)
		allIs(t, "parent expired", w.alive(m, true), false)
	})
	t.Run("extension off", func(t *testing.T) {
		w := newLP(t)
		m := w.mint(w.root.Token)
		allIs(t, "before", w.alive(m, false), true)
		if err := w.svc.SetAPITokensExtension(w.ctx, w.op, ptr(false)); err != nil {
			t.Fatal(err)
		}
		allIs(t, "extension off", w.alive(m, true), false)
		if err := w.svc.SetAPITokensExtension(w.ctx, w.op, ptr(true)); err != nil {
			t.Fatal(err)
		}
		allIs(t, "extension on", w.alive(m, true), true)
	})
	t.Run("grandchildren", func(t *testing.T) {
		w := newLP(t)
		m := w.mint(w.root.Token)
		g := w.apiToken(w.as(m.child.Token, ""), "grandchild", nil, nil)
		if !w.works(g.Token) {
			t.Fatal("grandchild does not work")
		}
		if _, err := w.svc.UpdateAPIToken(w.ctx, w.login("op@example.com"), w.root.ID, service.CredentialPatch{Enabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		if w.works(g.Token) {
			t.Fatal("grandchild works while the grandparent is disabled")
		}
	})
}

// TestCeilings: API tokens per account and credentials per user are
// capped, and concurrent creations at the limit never overshoot it.
func TestCeilings(t *testing.T) {
	w := newLP(t)
	if _, err := w.svc.UpdateSettings(w.ctx, w.op, gatehouse.SettingsPatch{MaxAPITokensPerAccount: ptr(5), MaxCredentialsPerUser: ptr(3)}); err != nil {
		t.Fatal(err)
	}
	op, bob := w.login("op@example.com"), w.login("bob@example.com")
	var madeTok, madeCred, limited atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := w.svc.CreateAPIToken(w.ctx, op, service.APITokenInput{Name: "t" + string(rune('a'+i))})
			count(t, err, &madeTok, &limited)
		}()
		go func() {
			defer wg.Done()
			_, err := w.svc.CreateCredential(w.ctx, bob, service.CredentialInput{Name: "c" + string(rune('a'+i))})
			count(t, err, &madeCred, &limited)
		}()
	}
	wg.Wait()
	// The account had one API token (root) already.
	if madeTok.Load() != 4 || madeCred.Load() != 3 || limited.Load() != 33 {
		t.Fatalf("made %d API tokens and %d credentials, %d refused; want 4, 3, 33", madeTok.Load(), madeCred.Load(), limited.Load())
	}
}

func count(t *testing.T, err error, made, limited *atomic.Int32) {
	switch gatehouse.ErrorCode(err) {
	case "":
		made.Add(1)
	case gatehouse.ELimitReached:
		limited.Add(1)
	default:
		t.Errorf("create: %v", err)
	}
}
