package service_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// TestReapplyRevocations: on a real SQLite store, a backup is taken
// (VACUUM INTO), revocations of every other kind than the end-to-end test
// covers are made — an API token deleted, another disabled, a lineage
// revoked by reuse detection, a refresh token revoked (RFC 7009), a
// password changed by an admin, an account suspended, an API access
// application reissued, a workspace member removed — and the audit log
// is exported. On the restored copy each credential works again until
// ReapplyRevocations runs; then each is refused, and a second run changes
// nothing.
func TestReapplyRevocations(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live, backup := filepath.Join(dir, "live.db"), filepath.Join(dir, "backup.db")
	openSvc := func(path string) (*service.Service, *store.Store) {
		st, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return service.New(service.Config{Store: st, Passwords: cheapPasswords(),
			Digester: token.NewDigester(nil), RefreshGrace: 0, Logger: slog.New(slog.DiscardHandler)}), st
	}
	svc, st := openSvc(live)
	if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	principal := func(svc *service.Service, email, password string) (*gatehouse.Principal, string) {
		t.Helper()
		out, _, err := svc.PasswordGrant(ctx, email, password, "192.0.2.1", "")
		if err != nil {
			t.Fatalf("login %s: %v", email, err)
		}
		p, err := svc.AccessPrincipal(ctx, out.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return p, out.AccessToken
	}
	op, _ := principal(svc, "op@example.com", pw)
	ann, err := svc.CreateUser(ctx, op, service.NewUser{Email: "ann@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	_, annToken := principal(svc, "ann@example.com", pw)
	on := true
	if err := svc.SetAPITokensExtension(ctx, op, &on); err != nil {
		t.Fatal(err)
	}
	deleted, err := svc.CreateAPIToken(ctx, op, service.APITokenInput{Name: "deleted"})
	if err != nil {
		t.Fatal(err)
	}
	disabled, err := svc.CreateAPIToken(ctx, op, service.APITokenInput{Name: "disabled"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := svc.EnableAPIAccess(ctx, op, service.APIAccessInput{})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := svc.CreateAccount(ctx, op, service.NewAccount{Name: "Other", AdminEmail: "bea@example.com", AdminPassword: pw})
	if err != nil {
		t.Fatal(err)
	}
	_, beaToken := principal(svc, "bea@example.com", pw)
	bea, err := svc.AccessPrincipal(ctx, beaToken)
	if err != nil {
		t.Fatal(err)
	}
	beaApp, err := svc.EnableAPIAccess(ctx, bea, service.APIAccessInput{})
	if err != nil {
		t.Fatal(err)
	}

	// An API access application reissued later, and a workspace member
	// removed later.
	_, _, err = svc.CreateAccount(ctx, op, service.NewAccount{Name: "Third", AdminEmail: "cy@example.com", AdminPassword: pw})
	if err != nil {
		t.Fatal(err)
	}
	cyP, _ := principal(svc, "cy@example.com", pw)
	cyApp, err := svc.EnableAPIAccess(ctx, cyP, service.APIAccessInput{})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := svc.CreateWorkspace(ctx, op, service.NewWorkspace{Name: "Shared"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddWorkspaceMember(ctx, op, ws.ID, ann.ID); err != nil {
		t.Fatal(err)
	}

	// The backup.
	db, err := sql.Open("sqlite", live)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`VACUUM INTO ?`, backup); err != nil {
		t.Fatal(err)
	}
	db.Close()
	backupTime := time.Now().Add(-time.Second)

	// Revocations after it.
	next, err := svc.RefreshGrant(ctx, app.ClientID, app.RefreshToken, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond) // past the zero grace
	if _, err := svc.RefreshGrant(ctx, app.ClientID, app.RefreshToken, ""); gatehouse.ErrorCode(err) != gatehouse.EInvalidGrant {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := svc.AccessPrincipal(ctx, next.AccessToken); err == nil {
		t.Fatal("reuse detection revoked nothing")
	}
	steps := []func() error{
		func() error { return svc.DeleteAPIToken(ctx, op, deleted.ID) },
		func() error {
			off := false
			_, err := svc.UpdateAPIToken(ctx, op, disabled.ID, service.CredentialPatch{Enabled: &off})
			return err
		},
		func() error {
			_, err := svc.UpdateUser(ctx, op, ann.ID, service.UserPatch{Password: ptr("another long password")})
			return err
		},
		func() error { return svc.RevokeToken(ctx, bea, "", beaApp.RefreshToken) },
		func() error { _, err := svc.ReissueAPIAccess(ctx, cyP); return err },
		func() error { return svc.RemoveWorkspaceMember(ctx, op, ws.ID, ann.ID) },
		func() error {
			_, err := svc.UpdateAccount(ctx, op, other.ID, service.AccountPatch{Status: ptr(gatehouse.AccountSuspended)})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("revocation %d: %v", i, err)
		}
	}
	var entries []*gatehouse.AuditEntry
	if err := st.AuditSince(ctx, backupTime, func(e *gatehouse.AuditEntry) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// The restored copy: everything works again.
	svc, st = openSvc(backup)
	defer st.Close()
	works := func() map[string]bool {
		ok := func(err error) bool { return err == nil }
		_, errDeleted := svc.APITokenPrincipal(ctx, deleted.Token, "")
		_, errDisabled := svc.APITokenPrincipal(ctx, disabled.Token, "")
		_, errLineage := svc.AccessPrincipal(ctx, app.AccessToken)
		_, errAnn := svc.AccessPrincipal(ctx, annToken)
		_, _, errAnnPw := svc.PasswordGrant(ctx, "ann@example.com", pw, "192.0.2.9", "")
		_, errBeaApp := svc.AccessPrincipal(ctx, beaApp.AccessToken)
		_, errBea := svc.AccessPrincipal(ctx, beaToken)
		_, errCyApp := svc.AccessPrincipal(ctx, cyApp.AccessToken)
		member, err := st.IsMember(ctx, ws.ID, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]bool{"deleted API token": ok(errDeleted), "disabled API token": ok(errDisabled), "revoked lineage": ok(errLineage),
			"password token": ok(errAnn), "old password": ok(errAnnPw), "revoked refresh token's lineage": ok(errBeaApp), "suspended account": ok(errBea),
			"lineage before a reissue": ok(errCyApp), "removed workspace member": member}
	}
	for what, ok := range works() {
		if !ok {
			t.Fatalf("%s does not work on the restored copy: the backup was taken after its revocation", what)
		}
	}
	out, err := svc.ReapplyRevocations(ctx, entries, backupTime)
	if err != nil {
		t.Fatal(err)
	}
	for what, ok := range works() {
		if ok {
			t.Errorf("%s works after the revocations were re-applied (%+v)", what, out)
		}
	}
	again, err := svc.ReapplyRevocations(ctx, entries, backupTime)
	if err != nil || len(again.Applied) != 0 {
		t.Fatalf("a second run re-applied %v, %v", again, err)
	}
	// Nothing before the backup's time is re-applied.
	if out, err := svc.ReapplyRevocations(ctx, entries, time.Now()); err != nil || len(out.Applied) != 0 {
		t.Fatalf("entries before --since re-applied: %v, %v", out, err)
	}
}

// TestReapplyPasswordChangeAcrossClocks: a password changed after the
// backup is taken away on the restored store even when the node that
// changed it ran behind the node that last changed the user before the
// backup (the restored user dated after the audit entry, within
// ReapplyClockSkew), by an admin or by the user; a second run changes
// nothing; and a password set on the restored store clearly after the
// change is kept.
func TestReapplyPasswordChangeAcrossClocks(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		action        string
		details       map[string]string
		restoredAfter time.Duration // the restored user's date after the entry's
		taken         bool
	}{
		{"admin's change, clocks agree", "user.update", map[string]string{"password": "changed"}, -time.Second, true},
		{"admin's change, the changing node 500 ms behind", "user.update", map[string]string{"password": "changed"}, 500 * time.Millisecond, true},
		{"own change, the changing node 500 ms behind", "user.password_change", nil, 500 * time.Millisecond, true},
		{"admin's change, a password set an hour after it", "user.update", map[string]string{"password": "changed"}, time.Hour, false},
		{"own change, a password set an hour after it", "user.password_change", nil, time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), "restored.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			svc := service.New(service.Config{Store: st, Passwords: cheapPasswords(), Digester: token.NewDigester(nil), Logger: slog.New(slog.DiscardHandler)})
			if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
				t.Fatal(err)
			}
			u, err := st.UserByEmail(ctx, "op@example.com")
			if err != nil {
				t.Fatal(err)
			}
			changed := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
			restored := *u
			restored.UpdatedAt = changed.Add(tc.restoredAfter)
			if err := st.Update(ctx, func(tx *store.Tx) error { return tx.UpdateUser(&restored) }); err != nil {
				t.Fatal(err)
			}
			entry := &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: u.AccountID, Actor: u.ID, Action: tc.action,
				TargetType: "user", TargetID: u.ID, Details: tc.details, CreatedAt: changed}
			for run := range 2 {
				if _, err := svc.ReapplyRevocations(ctx, []*gatehouse.AuditEntry{entry}, changed.Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
				_, _, err := svc.CheckPassword(ctx, "op@example.com", pw, "192.0.2.1")
				if taken := err != nil; taken != tc.taken {
					t.Fatalf("run %d: password taken away %v, want %v (%v)", run+1, taken, tc.taken, err)
				}
			}
		})
	}
}
