package store_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// conformance is the store's conformance suite: named cases, each checking
// one concern, that every backend must pass. TestConformance runs each on a
// fresh, migrated store of every backend. The cases live beside the code
// they exercise (accounts_test.go for accounts.go, and so on).
var conformance = map[string]func(t *testing.T, s *store.Store){
	// store.go
	"migrate_again_is_a_no_op": testMigrateAgain,
	"page_size_clamping":       testPageSizeClamping,
	"close_while_writing":      testCloseWhileWriting,
	// accounts.go
	"bootstrap_is_claimed_once": testBootstrapClaimedOnce,
	"account_create_get":        testAccountCreateGet,
	"account_not_found":         testAccountNotFound,
	"accounts_list_paging":      testAccountsPaging,
	"account_update":            testAccountUpdate,
	"account_share_active":      testShareActiveAccount,
	// users.go
	"users_create_get":          testUserCreateGet,
	"users_email_unique":        testUserEmailUnique,
	"users_other_account":       testUserOtherAccount,
	"users_update":              testUserUpdate,
	"users_by_email":            testUserByEmail,
	"users_list_paging":         testUsersPaging,
	"users_find":                testUsersFind,
	"users_delete":              testUserDelete,
	"users_count_active_admins": testCountActiveAdmins,
	// tx.go
	"tx_reads_its_own_writes": testTxReadsOwnWrites,
	"tx_rolls_back_on_error":  testTxRollsBack,
	"tx_revoking":             testTxRevoking,
	"tx_revocation_log":       testRevocationLog,
	"tx_audit_targets":        testAuditTargets,
	"tx_audit_logged":         testAuditLogged,
	// tokens.go, and the refresh rotation of apiaccess.go
	"tokens_create_by_hash":       testTokensCreateByHash,
	"tokens_created_together":     testTokensCreatedTogether,
	"tokens_show_current_owner":   testTokensShowCurrentOwner,
	"tokens_parent_by_method":     testTokensParentByMethod,
	"tokens_parent_deleted":       testTokensParentDeleted,
	"tokens_family_revoked":       testTokensFamilyRevoked,
	"tokens_revoke_one":           testTokensRevokeOne,
	"refresh_rotate_exactly_once": testRotateExactlyOnce,
	"refresh_rotate_refused":      testRotateRefused,
	"hot_writes_prepared":         testHotWritesPrepared,
	// credentials.go, apitokens.go, apiaccess.go
	"credentials_create_list":    testCredentialsCreateList,
	"credentials_delete":         testCredentialsDelete,
	"credentials_delete_tokens":  testCredentialsDeleteTokens,
	"api_tokens_create_list_get": testAPITokensCreateListGet,
	"api_tokens_touch":           testAPITokensTouch,
	"api_tokens_delete":          testAPITokensDelete,
	"api_tokens_created_by":      testAPITokensCreatedBy,
	"credentials_account":        testAccountCredential,
	"credentials_name_taken":     testCredentialNameTaken,
	"api_tokens_name_taken":      testAPITokenNameTaken,
	"api_application_create":     testAPIApplicationCreate,
	"api_application_ttl":        testAPIApplicationTTL,
	"api_application_delete":     testAPIApplicationDelete,
	// sessions.go, workspaces.go, audit.go
	"sessions_create_get_delete": testSessions,
	"sessions_keep_credential":   testKeepCredential,
	"sessions_of_user":           testSessionsOfUser,
	"second_factors":             testSecondFactors,
	"sign_ins":                   testSignIns,
	"passkeys":                   testPasskeys,
	"tokens_live_count":          testLiveTokens,
	"usage_add_read":             testUsage,
	"workspaces":                 testWorkspaces,
	"workspaces_members":         testWorkspaceMembers,
	"audit_append":               testAuditAppend,
	"audit_newest_first_paging":  testAuditPaging,
	"audit_find":                 testAuditFind,
	// reveals.go
	"reveals_taken_once": testReveals,
	// apps.go
	"apps_token_parent":   testAppTokensParent,
	"apps_rung_on_status": testAppsRungOnStatus,
	"registered_clients":  testRegisteredClients,
	"apps_code_used_once": testCodeUsedOnce,
}

// backends are the stores the suite runs on, each opened fresh and
// migrated. PostgreSQL cases skip when it is not available (and fail under
// CI=true; see internal/pgtest).
var backends = []struct {
	name string
	open func(*testing.T) *store.Store
}{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

// TestConformance runs every conformance case on every backend, each on a
// store of its own.
func TestConformance(t *testing.T) {
	names := slices.Sorted(maps.Keys(conformance))
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, name := range names {
				t.Run(name, func(t *testing.T) { conformance[name](t, b.open(t)) })
			}
		})
	}
}

// at is when the suite's records are made: fixed, and in whole
// microseconds, the precision the store keeps.
var at = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// update runs fn in one transaction of s, fails the test if it does not
// commit, and reports whether the transaction was marked revoking. fn must
// not write through s itself: on SQLite the transaction holds the only
// write connection.
func update(t *testing.T, s *store.Store, fn func(tx *store.Tx) error) (revoking bool) {
	t.Helper()
	err := s.Update(t.Context(), func(tx *store.Tx) error {
		err := fn(tx)
		revoking = tx.Revoking()
		return err
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	return revoking
}

// wantCode fails the test unless err carries the error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := gatehouse.ErrorCode(err); got != code {
		t.Fatalf("error %v (code %q), want code %q", err, got, code)
	}
}

// newEmail returns an e-mail address no other user has.
func newEmail() string { return gatehouse.NewID("u") + "@example.com" }

// accountOf returns a new, unsaved account with the default settings.
func accountOf() *gatehouse.Account {
	return &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "Acme", Settings: gatehouse.DefaultSettings(), CreatedAt: at}
}

// newAccount stores a new account.
func newAccount(t *testing.T, s *store.Store) *gatehouse.Account {
	t.Helper()
	a := accountOf()
	update(t, s, func(tx *store.Tx) error { return tx.CreateAccount(a) })
	return a
}

// userOf returns a new, unsaved, active user of a with a fresh e-mail.
func userOf(a *gatehouse.Account, roles ...gatehouse.Role) *gatehouse.User {
	return &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: a.ID, Email: newEmail(), Name: "User", Status: gatehouse.StatusActive,
		Roles: gatehouse.NormalizeRoles(roles), PasswordHash: "argon2id$digest", CreatedAt: at, UpdatedAt: at}
}

// createUser stores u.
func createUser(t *testing.T, s *store.Store, u *gatehouse.User) *gatehouse.User {
	t.Helper()
	update(t, s, func(tx *store.Tx) error { return tx.CreateUser(u) })
	return u
}

// newUser stores a new, active user of a.
func newUser(t *testing.T, s *store.Store, a *gatehouse.Account, roles ...gatehouse.Role) *gatehouse.User {
	t.Helper()
	return createUser(t, s, userOf(a, roles...))
}

// credentialOf returns a new, unsaved client credential of u.
func credentialOf(u *gatehouse.User) *gatehouse.Credential {
	return &gatehouse.Credential{ID: gatehouse.NewID("crd"), AccountID: u.AccountID, UserID: u.ID, Name: "ci",
		ClientID: gatehouse.NewID("gcc"), SecretHash: gatehouse.NewID("digest"), CreatedAt: at}
}

// applicationOf returns a new, unsaved API access application of u.
func applicationOf(u *gatehouse.User) *gatehouse.APIApplication {
	return &gatehouse.APIApplication{ID: gatehouse.NewID("app"), AccountID: u.AccountID, UserID: u.ID,
		ClientID: gatehouse.NewID("gci"), AccessTokenTTLDays: 1, CreatedAt: at}
}

// apiTokenOf returns a new, unsaved API token of a.
func apiTokenOf(a *gatehouse.Account) *gatehouse.APIToken {
	return &gatehouse.APIToken{ID: gatehouse.NewID("apt"), AccountID: a.ID, Name: "deploy", Prefix: "gat_ab12",
		Hash: gatehouse.NewID("digest"), CreatedAt: at}
}

// tokenOf returns a new, unsaved OAuth token of u.
func tokenOf(u *gatehouse.User, kind gatehouse.TokenKind, method gatehouse.AuthMethod, clientID, familyID string) *gatehouse.Token {
	return &gatehouse.Token{ID: gatehouse.NewID("tok"), AccountID: u.AccountID, UserID: u.ID, Kind: kind, Hash: gatehouse.NewID("digest"),
		Method: method, ClientID: clientID, FamilyID: familyID, ExpiresAt: at.Add(time.Hour), CreatedAt: at}
}

// sessionOf returns a new, unsaved admin UI session of u, under u's
// current epochs.
func sessionOf(u *gatehouse.User) *store.Session {
	return &store.Session{ID: gatehouse.NewID("ses"), Hash: gatehouse.NewID("digest"), UserID: u.ID, CSRF: gatehouse.NewID("csrf"),
		CreatedAt: at, ExpiresAt: at.Add(12 * time.Hour), UserEpoch: u.Epoch, PasswordEpoch: u.PasswordEpoch}
}

// workspaceOf returns a new, unsaved workspace of a owned by ownerID
// (empty for one made by an anonymous admin).
func workspaceOf(a *gatehouse.Account, ownerID string) *gatehouse.Workspace {
	return &gatehouse.Workspace{ID: gatehouse.NewID("wsp"), AccountID: a.ID, Name: "Workspace", Description: "for tests", OwnerID: ownerID, CreatedAt: at}
}

// createTokens stores tokens through the store's group-committed path.
func createTokens(t *testing.T, s *store.Store, toks ...*gatehouse.Token) {
	t.Helper()
	if err := s.CreateTokens(t.Context(), toks...); err != nil {
		t.Fatalf("create tokens: %v", err)
	}
}

// issued returns the stored token with the digest, failing the test if
// there is none.
func issued(t *testing.T, s *store.Store, hash string) *store.IssuedToken {
	t.Helper()
	it, err := s.TokenByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("token by hash: %v", err)
	}
	return it
}

// fixture is an account with one of everything, for cases that need
// things to change or delete.
type fixture struct {
	account   *gatehouse.Account
	user      *gatehouse.User // an active admin owning everything below
	member    *gatehouse.User // an active user with nothing
	cred      *gatehouse.Credential
	app       *gatehouse.APIApplication
	apiToken  *gatehouse.APIToken
	access    *gatehouse.Token // the application's tokens, one refresh family
	refresh   *gatehouse.Token
	session   *store.Session
	workspace *gatehouse.Workspace
}

// newFixture stores a fixture in one transaction.
func newFixture(t *testing.T, s *store.Store) *fixture {
	t.Helper()
	f := &fixture{account: accountOf()}
	f.user, f.member = userOf(f.account, gatehouse.RoleAdmin), userOf(f.account)
	f.cred, f.app, f.apiToken = credentialOf(f.user), applicationOf(f.user), apiTokenOf(f.account)
	family := gatehouse.NewID("fam")
	f.access = tokenOf(f.user, gatehouse.KindAccess, gatehouse.MethodAPIAccess, f.app.ClientID, family)
	f.refresh = tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, family)
	f.session = sessionOf(f.user)
	f.workspace = workspaceOf(f.account, f.user.ID)
	update(t, s, func(tx *store.Tx) error {
		for _, write := range []func() error{
			func() error { return tx.CreateAccount(f.account) },
			func() error { return tx.CreateUser(f.user) },
			func() error { return tx.CreateUser(f.member) },
			func() error { return tx.CreateCredential(f.cred) },
			func() error { return tx.CreateAPIApplication(f.app) },
			func() error { return tx.CreateAPIToken(f.apiToken) },
			func() error { return tx.CreateTokens(f.access, f.refresh) },
			func() error { return tx.CreateSession(f.session) },
			func() error { return tx.CreateWorkspace(f.workspace) },
		} {
			if err := write(); err != nil {
				return err
			}
		}
		return nil
	})
	return f
}

// pageAll lists from the first page with the given limit to the last,
// following the cursors, and returns every id in order and the size of
// each page.
func pageAll(t *testing.T, limit int, list func(gatehouse.Page) ([]string, string, error)) (ids []string, sizes []int) {
	t.Helper()
	p := gatehouse.Page{Limit: limit}
	for range 1000 {
		page, next, err := list(p)
		if err != nil {
			t.Fatalf("list after %q: %v", p.After, err)
		}
		ids, sizes = append(ids, page...), append(sizes, len(page))
		if next == "" {
			return ids, sizes
		}
		if len(page) == 0 || next != page[len(page)-1] {
			t.Fatalf("cursor %q after a page ending in %v", next, page)
		}
		p.After = next
	}
	t.Fatal("paging does not end")
	return nil, nil
}

// ids turns a list method's results into ids, for pageAll.
func ids[T any](id func(T) string) func([]T, string, error) ([]string, string, error) {
	return func(list []T, next string, err error) ([]string, string, error) {
		out := make([]string, len(list))
		for i, v := range list {
			out[i] = id(v)
		}
		return out, next, err
	}
}

// sameTime reports whether two optional times are both unset or equal.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// describeTime formats an optional time for failure messages.
func describeTime(v *time.Time) string {
	if v == nil {
		return "<nil>"
	}
	return v.Format(time.RFC3339Nano)
}

// checkUser fails the test unless got is want as stored: every field,
// with roles in their normal form.
func checkUser(t *testing.T, got, want *gatehouse.User) {
	t.Helper()
	if got == nil {
		t.Fatal("no user")
	}
	mismatch := got.ID != want.ID || got.AccountID != want.AccountID || got.Email != want.Email || got.Name != want.Name ||
		got.Status != want.Status || !slices.Equal(got.Roles, gatehouse.NormalizeRoles(want.Roles)) || got.Operator != want.Operator ||
		got.PasswordHash != want.PasswordHash || got.Epoch != want.Epoch || got.PasswordEpoch != want.PasswordEpoch ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt)
	if mismatch {
		t.Fatalf("user\n got %+v\nwant %+v", *got, *want)
	}
}

// checkToken fails the test unless got is want as stored: every field.
func checkToken(t *testing.T, got, want *gatehouse.Token) {
	t.Helper()
	if got == nil {
		t.Fatal("no token")
	}
	mismatch := got.ID != want.ID || got.AccountID != want.AccountID || got.UserID != want.UserID || got.Kind != want.Kind ||
		got.Hash != want.Hash || got.Method != want.Method || got.ClientID != want.ClientID || got.FamilyID != want.FamilyID ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !sameTime(got.UsedAt, want.UsedAt) || !sameTime(got.RevokedAt, want.RevokedAt) ||
		!got.CreatedAt.Equal(want.CreatedAt) || got.UserEpoch != want.UserEpoch || got.PasswordEpoch != want.PasswordEpoch
	if mismatch {
		t.Fatalf("token\n got %+v (used %s, revoked %s)\nwant %+v (used %s, revoked %s)",
			*got, describeTime(got.UsedAt), describeTime(got.RevokedAt), *want, describeTime(want.UsedAt), describeTime(want.RevokedAt))
	}
}

// fail returns an error for a check made inside a transaction, where the
// test must not stop before the transaction ends.
func fail(format string, args ...any) error { return fmt.Errorf("check: "+format, args...) }
