package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/service"
)

// TestAppCodeLifetimeAndReuse: a code works for 60 seconds, once; a
// second use revokes what the first issued, refresh tokens included; and
// it issues nothing once the account's policy no longer allows the
// application.
func TestAppCodeLifetimeAndReuse(t *testing.T) {
	w := newRefreshWorld(t)
	ctx := gatehouse.WithRequestScope(context.Background(), from("192.0.2.1"))
	if _, err := w.svc.SetDeveloper(ctx, w.admin, w.admin.User.ID, true, false); err != nil {
		t.Fatal(err)
	}
	out, _, err := w.svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := w.svc.AccessPrincipal(ctx, out.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "https://app.example.com/cb"
	app, err := w.svc.CreateApp(ctx, dev, service.AppInput{Name: "Reports", Type: gatehouse.AppPublic, RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	const verifier = "v0123456789012345678901234567890123456789abcdef"
	code := func() string {
		t.Helper()
		req := service.AuthRequest{ResponseType: "code", ClientID: app.ClientID, RedirectURI: redirect, Scope: "workspaces:read",
			CodeChallenge: authorize.Challenge(verifier), CodeChallengeMethod: "S256"}
		a, err := w.svc.AuthClient(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		c, err := w.svc.CheckAuthRequest(ctx, dev, a, req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := w.svc.Authorize(ctx, dev, c, req)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	refused := func(step string, err error) {
		t.Helper()
		if gatehouse.ErrorCode(err) != gatehouse.EInvalidGrant {
			t.Fatalf("%s: %v, want invalid_grant", step, err)
		}
	}

	stale := code()
	w.clock.add(service.CodeLifetime)
	_, err = w.svc.CodeGrant(ctx, app.ClientID, "", stale, redirect, verifier, "")
	refused("a code after 60 s", err)

	fresh := code()
	w.clock.add(service.CodeLifetime - time.Second)
	got, err := w.svc.CodeGrant(ctx, app.ClientID, "", fresh, redirect, verifier, "")
	if err != nil {
		t.Fatalf("a code at 59 s: %v", err)
	}
	if got.Scope != "workspaces:read" || got.RefreshToken == "" || got.ExpiresIn != 3600 {
		t.Fatalf("issued %+v", got)
	}
	next, err := w.svc.AppRefreshGrant(ctx, app.ClientID, "", got.RefreshToken, "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.CodeGrant(ctx, app.ClientID, "", fresh, redirect, verifier, "")
	refused("the code again", err)
	for _, tok := range []string{got.AccessToken, next.AccessToken} {
		if _, err := w.svc.AccessPrincipal(ctx, tok); gatehouse.ErrorCode(err) != gatehouse.EInvalidToken {
			t.Fatalf("a token issued from a reused code: %v", err)
		}
	}
	_, err = w.svc.AppRefreshGrant(ctx, app.ClientID, "", next.RefreshToken, "", "")
	refused("the lineage's refresh token", err)
	if len(w.audited("app.code_reused")) != 1 {
		t.Fatal("the reuse is not audited")
	}

	// A code consented before the account turned third-party applications
	// off issues nothing.
	before := code()
	none := gatehouse.AppsNone
	if _, err := w.svc.UpdateSettings(ctx, w.admin, gatehouse.SettingsPatch{ThirdPartyApps: &none}); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.CodeGrant(ctx, app.ClientID, "", before, redirect, verifier, "")
	refused("a code consented before the none policy", err)
}

// TestAppReapplyRevocations: after a restore, a revoked authorisation and
// a deleted application are revoked again from the exported audit log.
func TestAppReapplyRevocations(t *testing.T) {
	w := newRefreshWorld(t)
	ctx := gatehouse.WithRequestScope(context.Background(), from("192.0.2.1"))
	if _, err := w.svc.SetDeveloper(ctx, w.admin, w.admin.User.ID, true, false); err != nil {
		t.Fatal(err)
	}
	out, _, err := w.svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := w.svc.AccessPrincipal(ctx, out.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	const redirect, verifier = "https://app.example.com/cb", "v0123456789012345678901234567890123456789abcdef"
	issue := func(app *service.NewApp) string {
		t.Helper()
		req := service.AuthRequest{ResponseType: "code", ClientID: app.ClientID, RedirectURI: redirect, Scope: "workspaces:read",
			CodeChallenge: authorize.Challenge(verifier), CodeChallengeMethod: "S256"}
		c, err := w.svc.CheckAuthRequest(ctx, dev, app.App, req)
		if err != nil {
			t.Fatal(err)
		}
		code, err := w.svc.Authorize(ctx, dev, c, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.svc.CodeGrant(ctx, app.ClientID, "", code, redirect, verifier, "")
		if err != nil {
			t.Fatal(err)
		}
		return got.AccessToken
	}
	a1, err := w.svc.CreateApp(ctx, dev, service.AppInput{Name: "One", Type: gatehouse.AppPublic, RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := w.svc.CreateApp(ctx, dev, service.AppInput{Name: "Two", Type: gatehouse.AppPublic, RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := issue(a1), issue(a2)
	w.clock.add(time.Second)
	log := []*gatehouse.AuditEntry{
		{Action: "app.authorization_revoke", TargetID: dev.User.ID, Details: map[string]string{"client_id": a1.ClientID}, CreatedAt: w.clock.now()},
		{Action: "app.delete", TargetID: a2.ID, CreatedAt: w.clock.now()},
	}
	r, err := w.svc.ReapplyRevocations(ctx, log, w.clock.now().Add(-time.Minute))
	if err != nil || r.Applied["app.authorization_revoke"] != 1 || r.Applied["app.delete"] != 1 {
		t.Fatalf("reapplied %+v %v", r, err)
	}
	for _, tok := range []string{t1, t2} {
		if _, err := w.svc.AccessPrincipal(ctx, tok); gatehouse.ErrorCode(err) != gatehouse.EInvalidToken {
			t.Fatalf("a token after the re-applied revocation: %v", err)
		}
	}
}
