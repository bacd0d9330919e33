package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testTxReadsOwnWrites: Tx.Account, Tx.User and the other reads of a
// transaction see what it wrote; readers outside see it only after commit.
func testTxReadsOwnWrites(t *testing.T, s *store.Store) {
	ctx := t.Context()
	other := newAccount(t, s)
	a := accountOf()
	u := userOf(a, gatehouse.RoleAdmin)
	outside := func() error { _, err := s.Account(ctx, a.ID); return err }
	update(t, s, func(tx *store.Tx) error {
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		if err := tx.CreateUser(u); err != nil {
			return err
		}
		if got, err := tx.Account(a.ID); err != nil || got.ID != a.ID || got.Name != a.Name || got.Status != gatehouse.AccountActive {
			return fail("Tx.Account: %+v, %v", got, err)
		}
		if got, err := tx.User(a.ID, u.ID); err != nil || got.ID != u.ID || got.Email != u.Email || !got.IsAdmin() {
			return fail("Tx.User: %+v, %v", got, err)
		}
		if _, err := tx.User(other.ID, u.ID); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return fail("Tx.User through another account: %v", err)
		}
		if got, err := tx.UserByEmail(strings.ToUpper(u.Email)); err != nil || got.ID != u.ID {
			return fail("Tx.UserByEmail: %+v, %v", got, err)
		}
		if n, err := tx.CountActiveAdmins(a.ID); err != nil || n != 1 {
			return fail("Tx.CountActiveAdmins: %d, %v", n, err)
		}
		if err := tx.CreateCredential(credentialOf(u)); err != nil {
			return err
		}
		if n, err := tx.CountLiveCredentials(u.ID, time.Now()); err != nil || n != 1 {
			return fail("Tx.CountLiveCredentials: %d, %v", n, err)
		}
		if err := outside(); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return fail("uncommitted account seen outside the transaction: %v", err)
		}
		return nil
	})
	if err := outside(); err != nil {
		t.Fatalf("committed account: %v", err)
	}
}

// testTxRollsBack: when the function of Update fails, nothing it wrote is
// kept, audit entries and revocations included, and Update returns its
// error.
func testTxRollsBack(t *testing.T, s *store.Store) {
	ctx := t.Context()
	errFailed := errors.New("failed on purpose")
	for _, tc := range []struct {
		name string
		last func(tx *store.Tx, f *fixture) error
		want func(error) bool
	}{
		{"function fails", func(*store.Tx, *fixture) error { return errFailed },
			func(err error) bool { return errors.Is(err, errFailed) }},
		{"write fails", func(tx *store.Tx, f *fixture) error {
			dup := userOf(f.account)
			dup.Email = f.member.Email
			return tx.CreateUser(dup)
		}, func(err error) bool { return gatehouse.ErrorCode(err) == gatehouse.EConflict }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, s)
			a := accountOf()
			u := userOf(a)
			cred, key, ws := credentialOf(f.member), apiTokenOf(f.account), workspaceOf(f.account, f.user.ID)
			tok := tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodPassword, "", gatehouse.NewID("fam"))
			disabled := *f.user
			disabled.Status, disabled.Epoch = gatehouse.StatusDisabled, disabled.Epoch+1
			err := s.Update(ctx, func(tx *store.Tx) error {
				for _, write := range []func() error{
					func() error { return tx.CreateAccount(a) },
					func() error { return tx.CreateUser(u) },
					func() error { return tx.CreateCredential(cred) },
					func() error { return tx.CreateAPIToken(key) },
					func() error { return tx.CreateWorkspace(ws) },
					func() error { return tx.CreateTokens(tok) },
					func() error {
						return tx.Audit(&gatehouse.AuditEntry{AccountID: f.account.ID, Action: "user.disable", CreatedAt: at})
					},
					func() error {
						return tx.Audit(&gatehouse.AuditEntry{AccountID: a.ID, Action: "account.create", CreatedAt: at})
					},
					func() error { return tx.UpdateUser(&disabled) },
					func() error { return tx.RevokeTokenFamily(f.refresh.FamilyID, at) },
					func() error { _, err := tx.DeleteCredentials(f.account.ID, f.user.ID, "", at); return err },
					func() error { return tx.AddMember(f.workspace.ID, f.member.ID, at) },
					func() error {
						return tx.Audit(&gatehouse.AuditEntry{AccountID: f.account.ID, Action: "more", CreatedAt: at})
					},
				} {
					if err := write(); err != nil {
						return fail("a write before the failure: %v", err)
					}
				}
				return tc.last(tx, f)
			})
			if !tc.want(err) {
				t.Fatalf("Update returned %v", err)
			}
			for _, c := range []struct {
				what string
				err  error
			}{
				{"account", func() error { _, err := s.Account(ctx, a.ID); return err }()},
				{"user", func() error { _, err := s.UserByEmail(ctx, u.Email); return err }()},
				{"credential", func() error { _, err := s.CredentialByClientID(ctx, cred.ClientID); return err }()},
				{"API token", func() error { _, err := s.APITokenByHash(ctx, key.Hash); return err }()},
				{"workspace", func() error { _, err := s.Workspace(ctx, f.account.ID, ws.ID); return err }()},
				{"token", func() error { _, err := s.TokenByHash(ctx, tok.Hash); return err }()},
			} {
				if gatehouse.ErrorCode(c.err) != gatehouse.ENotFound {
					t.Errorf("%s of the failed transaction: %v, want not_found", c.what, c.err)
				}
			}
			for _, accountID := range []string{f.account.ID, a.ID} {
				if es, _, err := s.Audit(ctx, accountID, gatehouse.Page{}); err != nil || len(es) != 0 {
					t.Errorf("audit of %s: %d entries, %v; want none", accountID, len(es), err)
				}
			}
			if got, err := s.User(ctx, f.account.ID, f.user.ID); err != nil || got.Status != gatehouse.StatusActive || got.Epoch != f.user.Epoch {
				t.Errorf("user after a rolled back disable: %+v, %v", got, err)
			}
			if it := issued(t, s, f.refresh.Hash); it.FamilyRevoked || it.RevokedAt != nil {
				t.Errorf("family revoked by a rolled back transaction")
			}
			if _, err := s.CredentialByClientID(ctx, f.cred.ClientID); err != nil {
				t.Errorf("credential deleted by a rolled back transaction: %v", err)
			}
			if ok, err := s.IsMember(ctx, f.workspace.ID, f.member.ID); err != nil || ok {
				t.Errorf("membership of a rolled back transaction: %v, %v", ok, err)
			}
		})
	}
}

// testTxRevoking: a transaction is revoking exactly when it holds a
// revoking verb; creates, audit entries and reads leave it unmarked.
func testTxRevoking(t *testing.T, s *store.Store) {
	for _, tc := range []struct {
		name string
		want bool
		fn   func(tx *store.Tx, f *fixture) error
	}{
		{"nothing", false, func(*store.Tx, *fixture) error { return nil }},
		{"reads", false, func(tx *store.Tx, f *fixture) error {
			if _, err := tx.Account(f.account.ID); err != nil {
				return err
			}
			if _, err := tx.User(f.account.ID, f.user.ID); err != nil {
				return err
			}
			if _, err := tx.UserByEmail(f.user.Email); err != nil {
				return err
			}
			if _, err := tx.CountActiveAdmins(f.account.ID); err != nil {
				return err
			}
			_, err := tx.CountLiveCredentials(f.user.ID, time.Now())
			return err
		}},
		{"ClaimBootstrap", false, func(tx *store.Tx, f *fixture) error { _, err := tx.ClaimBootstrap(f.account.ID); return err }},
		{"CreateAccount", false, func(tx *store.Tx, _ *fixture) error { return tx.CreateAccount(accountOf()) }},
		{"CreateUser", false, func(tx *store.Tx, f *fixture) error { return tx.CreateUser(userOf(f.account)) }},
		{"CreateCredential", false, func(tx *store.Tx, f *fixture) error { return tx.CreateCredential(credentialOf(f.member)) }},
		{"CreateAPIApplication", false, func(tx *store.Tx, f *fixture) error { return tx.CreateAPIApplication(applicationOf(f.member)) }},
		{"CreateAPIToken", false, func(tx *store.Tx, f *fixture) error { return tx.CreateAPIToken(apiTokenOf(f.account)) }},
		{"CreateTokens", false, func(tx *store.Tx, f *fixture) error {
			return tx.CreateTokens(tokenOf(f.member, gatehouse.KindAccess, gatehouse.MethodPassword, "", gatehouse.NewID("fam")))
		}},
		{"CreateSession", false, func(tx *store.Tx, f *fixture) error { return tx.CreateSession(sessionOf(f.member)) }},
		{"CreateWorkspace", false, func(tx *store.Tx, f *fixture) error { return tx.CreateWorkspace(workspaceOf(f.account, f.member.ID)) }},
		{"AddMember", false, func(tx *store.Tx, f *fixture) error { return tx.AddMember(f.workspace.ID, f.member.ID, at) }},
		{"Audit", false, func(tx *store.Tx, f *fixture) error {
			return tx.Audit(&gatehouse.AuditEntry{AccountID: f.account.ID, Action: "user.create", CreatedAt: at})
		}},
		{"UpdateUser", true, func(tx *store.Tx, f *fixture) error {
			u := *f.user
			u.Name = "Renamed"
			return tx.UpdateUser(&u)
		}},
		{"UpdateAccount", true, func(tx *store.Tx, f *fixture) error {
			a := *f.account
			a.Status = gatehouse.AccountSuspended
			return tx.UpdateAccount(&a)
		}},
		{"UpdateAPIApplicationTTL", true, func(tx *store.Tx, f *fixture) error { return tx.UpdateAPIApplicationTTL(f.user.ID, 7) }},
		{"DeleteAPIApplication", true, func(tx *store.Tx, f *fixture) error {
			_, err := tx.DeleteAPIApplication(f.user.ID, at)
			return err
		}},
		{"DeleteCredentials", true, func(tx *store.Tx, f *fixture) error {
			_, err := tx.DeleteCredentials(f.account.ID, f.user.ID, f.cred.ID, at)
			return err
		}},
		{"DeleteAPIToken", true, func(tx *store.Tx, f *fixture) error { return tx.DeleteAPIToken(f.account.ID, f.apiToken.ID) }},
		{"RevokeToken", true, func(tx *store.Tx, f *fixture) error { return tx.RevokeToken(f.access.ID, at) }},
		{"RevokeTokenFamily", true, func(tx *store.Tx, f *fixture) error { return tx.RevokeTokenFamily(f.refresh.FamilyID, at) }},
		{"create then revoke", true, func(tx *store.Tx, f *fixture) error {
			if err := tx.CreateCredential(credentialOf(f.member)); err != nil {
				return err
			}
			return tx.RevokeToken(f.access.ID, at)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, s)
			got := update(t, s, func(tx *store.Tx) error {
				if tx.Revoking() {
					return fail("revoking before any write")
				}
				return tc.fn(tx, f)
			})
			if got != tc.want {
				t.Fatalf("Revoking() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestUpdateSurvivesReopen: what Update committed, and what the
// group-committed writes stored, is in the SQLite file after the store is
// closed and opened again.
func TestUpdateSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	open := func() *store.Store {
		t.Helper()
		s, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			t.Fatal(err)
		}
		return s
	}

	s := open()
	f := newFixture(t, s)
	update(t, s, func(tx *store.Tx) error {
		u := *f.member
		u.Status, u.Epoch = gatehouse.StatusDisabled, 1
		if err := tx.UpdateUser(&u); err != nil {
			return err
		}
		return tx.Audit(&gatehouse.AuditEntry{AccountID: f.account.ID, Action: "user.disable", TargetID: u.ID, CreatedAt: at})
	})
	next := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, f.refresh.FamilyID)
	used := at.Add(time.Minute)
	if won, err := s.RotateRefreshToken(ctx, f.refresh.ID, clockAt(used), nil, next); err != nil || !won {
		t.Fatalf("rotate: %v, %v", won, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = open()
	defer s.Close()
	if got, err := s.User(ctx, f.account.ID, f.member.ID); err != nil || got.Status != gatehouse.StatusDisabled || got.Epoch != 1 {
		t.Fatalf("user after reopening: %+v, %v", got, err)
	}
	if es, _, err := s.Audit(ctx, f.account.ID, gatehouse.Page{}); err != nil || len(es) != 1 || es[0].Action != "user.disable" {
		t.Fatalf("audit after reopening: %+v, %v", es, err)
	}
	if it := issued(t, s, f.refresh.Hash); !sameTime(it.UsedAt, &used) {
		t.Fatalf("rotated token used at %s after reopening, want %s", describeTime(it.UsedAt), describeTime(&used))
	}
	checkToken(t, issued(t, s, next.Hash).Token, next)
	if _, _, _, err := s.SessionByHash(ctx, f.session.Hash); err != nil {
		t.Fatalf("session after reopening: %v", err)
	}
}

// testRevocationLog: every revoking transaction advances the change
// counter and logs what it revoked, in order; a counter that moved without
// an entry, or went back, or ran too far ahead, is reported incomplete.
func testRevocationLog(t *testing.T, s *store.Store) {
	ctx := t.Context()
	since := func(after int64) (int64, []store.Revocation, bool) {
		t.Helper()
		head, log, complete, err := s.RevocationsSince(ctx, after)
		if err != nil {
			t.Fatalf("RevocationsSince(%d): %v", after, err)
		}
		return head, log, complete
	}
	start, _, _ := since(0)
	if head, log, complete := since(start); head != start || len(log) != 0 || !complete {
		t.Fatalf("nothing since the head: %d %v %v", head, log, complete)
	}
	f := newFixture(t, s)
	update(t, s, func(tx *store.Tx) error { return tx.RevokeToken(f.access.ID, at) })
	update(t, s, func(tx *store.Tx) error { return tx.DeleteAPIToken(f.account.ID, f.apiToken.ID) })
	head, log, complete := since(start)
	if head != start+2 || !complete || len(log) != 2 || log[0].N != start+1 || log[1].N != start+2 {
		t.Fatalf("after two revocations: head %d, log %+v, complete %v", head, log, complete)
	}
	if !slices.Contains(log[0].Subjects, gatehouse.CredentialSubject(f.access.ID)) || slices.Contains(log[1].Subjects, gatehouse.CredentialSubject(f.access.ID)) {
		t.Fatalf("subjects %v, %v", log[0].Subjects, log[1].Subjects)
	}
	if _, log, complete := since(start + 1); len(log) != 1 || log[0].N != start+2 || !complete {
		t.Fatalf("after the first: %+v %v", log, complete)
	}
	if _, log, complete := since(head + 1); len(log) != 0 || complete {
		t.Fatalf("a counter behind the reader: %+v %v", log, complete)
	}
	// Advanced by a process that keeps no log: a gap.
	bump := func(by int) {
		t.Helper()
		if _, err := s.BulkDB().ExecContext(ctx, s.Rebind(`UPDATE changes SET n = n + ? WHERE name = 'revoking'`), by); err != nil {
			t.Fatal(err)
		}
	}
	bump(1)
	if h, log, complete := since(start); h != head+1 || len(log) != 2 || complete {
		t.Fatalf("after a gap: head %d, log %+v, complete %v", h, log, complete)
	}
	bump(1000)
	if h, log, complete := since(start); h != head+1001 || len(log) != 0 || complete {
		t.Fatalf("too far behind: head %d, log %+v, complete %v", h, log, complete)
	}
}

// testAuditTargets: AuditTargets writes the entry and returns the enabled
// endpoints of its account alone; a failed write returns no endpoints and
// leaves nothing.
func testAuditTargets(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	hook := func(acc *gatehouse.Account, enabled bool, events ...string) *store.WebhookEndpoint {
		return &store.WebhookEndpoint{Webhook: gatehouse.Webhook{ID: gatehouse.NewID("whk"), AccountID: acc.ID, URL: "https://example.com/hook",
			Events: events, Enabled: enabled, CreatedAt: at, UpdatedAt: at}, Sealed: "sealed"}
	}
	on, off, other := hook(a, true, "user.*"), hook(a, false, "*"), hook(b, true, "*")
	on2 := hook(a, true, "credential.deleted")
	update(t, s, func(tx *store.Tx) error {
		for _, w := range []*store.WebhookEndpoint{on, off, other, on2} {
			if err := tx.CreateWebhook(w); err != nil {
				return err
			}
		}
		return nil
	})
	e := &gatehouse.AuditEntry{AccountID: a.ID, Action: "user.create", TargetType: "user", TargetID: "usr_1",
		Details: map[string]string{"email": "a@example.com"}, CreatedAt: at}
	var got []store.WebhookTarget
	update(t, s, func(tx *store.Tx) (err error) {
		got, err = tx.AuditTargets(e)
		return err
	})
	want := []store.WebhookTarget{{ID: on.ID, Events: on.Events}, {ID: on2.ID, Events: on2.Events}}
	slices.SortFunc(want, func(x, y store.WebhookTarget) int { return strings.Compare(x.ID, y.ID) })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("targets %v, want %v", got, want)
	}
	entries, _, err := s.Audit(ctx, a.ID, gatehouse.Page{})
	if err != nil || len(entries) != 1 || entries[0].ID != e.ID || entries[0].Details["email"] != "a@example.com" {
		t.Fatalf("audit log %+v, %v", entries, err)
	}
	// The same id again: refused, and the transaction with it.
	err = s.Update(ctx, func(tx *store.Tx) error {
		got, err := tx.AuditTargets(&gatehouse.AuditEntry{ID: e.ID, AccountID: a.ID, Action: "user.create", CreatedAt: at})
		if err == nil {
			return fmt.Errorf("a duplicate entry was written, targets %v", got)
		}
		return err
	})
	if err == nil || strings.Contains(err.Error(), "duplicate entry was written") {
		t.Fatalf("duplicate audit id: %v", err)
	}
	if entries, _, err := s.Audit(ctx, a.ID, gatehouse.Page{}); err != nil || len(entries) != 1 {
		t.Fatalf("audit log after the failed write: %d entries, %v", len(entries), err)
	}
}

// testAuditLogged: in a revoking transaction, an audit entry written with
// the revocation log's entry in one statement (where the dialect can)
// still returns the account's endpoints; the log holds one entry for the
// transaction when nothing was revoked after the audit entry, and an entry
// with every subject when something was; an audit entry of a transaction
// that revokes nothing logs nothing.
func testAuditLogged(t *testing.T, s *store.Store) {
	ctx := t.Context()
	f := newFixture(t, s)
	hook := &store.WebhookEndpoint{Webhook: gatehouse.Webhook{ID: gatehouse.NewID("whk"), AccountID: f.account.ID, URL: "https://example.com/hook",
		Events: []string{"*"}, Enabled: true, CreatedAt: at, UpdatedAt: at}, Sealed: "sealed"}
	update(t, s, func(tx *store.Tx) error { return tx.CreateWebhook(hook) })
	head := func() int64 {
		t.Helper()
		n, err := s.Changes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	entry := func() *gatehouse.AuditEntry {
		return &gatehouse.AuditEntry{AccountID: f.account.ID, Action: "credential.delete", TargetType: "credential", TargetID: f.cred.ID, CreatedAt: at}
	}
	start := head()
	var got []store.WebhookTarget
	update(t, s, func(tx *store.Tx) (err error) {
		if err := tx.RevokeToken(f.access.ID, at); err != nil {
			return err
		}
		got, err = tx.AuditTargets(entry())
		return err
	})
	if len(got) != 1 || got[0].ID != hook.ID || fmt.Sprint(got[0].Events) != "[*]" {
		t.Fatalf("targets %+v", got)
	}
	h, log, complete, err := s.RevocationsSince(ctx, start)
	if err != nil || h != start+1 || len(log) != 1 || !complete || !slices.Contains(log[0].Subjects, gatehouse.CredentialSubject(f.access.ID)) {
		t.Fatalf("audit last: head %d, log %+v, %v, %v", h, log, complete, err)
	}
	// Revoked after its audit entry: the last entry names everything.
	update(t, s, func(tx *store.Tx) error {
		if err := tx.RevokeToken(f.refresh.ID, at); err != nil {
			return err
		}
		if err := tx.Audit(entry()); err != nil {
			return err
		}
		return tx.DeleteAPIToken(f.account.ID, f.apiToken.ID)
	})
	h, log, complete, err = s.RevocationsSince(ctx, start+1)
	if err != nil || !complete || len(log) == 0 || h != log[len(log)-1].N {
		t.Fatalf("revoked after the audit: head %d, log %+v, %v, %v", h, log, complete, err)
	}
	last := log[len(log)-1].Subjects
	if !slices.Contains(last, gatehouse.CredentialSubject(f.refresh.ID)) || len(last) < 2 {
		t.Fatalf("revoked after the audit: last entry %v", last)
	}
	// Nothing revoked: nothing logged.
	before := head()
	update(t, s, func(tx *store.Tx) error { return tx.Audit(entry()) })
	if n := head(); n != before {
		t.Fatalf("an audit entry alone advanced the counter %d -> %d", before, n)
	}
}
