package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/store"
)

// openPostgres opens a migrated store in a fresh schema of the test
// database, closed and dropped when the test ends.
func openPostgres(t *testing.T) *store.Store {
	t.Helper()
	url := pgtest.Schema(t)
	s, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Dialect() != "postgres" {
		t.Fatalf("dialect %q", s.Dialect())
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// openSQLite opens a migrated store in a temporary directory.
func openSQLite(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSmoke runs the main paths of the store on both dialects, so that
// one set of queries is seen to behave the same on each.
func TestSmoke(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.Store{
		"sqlite":   openSQLite,
		"postgres": openPostgres,
	} {
		t.Run(name, func(t *testing.T) { smoke(t, open(t)) })
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := gatehouse.ErrorCode(err); got != code {
		t.Fatalf("error %v (code %q), want code %q", err, got, code)
	}
}

func smoke(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)

	// Migrating again is a no-op.
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}

	// Bootstrap once, then never again.
	acct := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "default", Settings: gatehouse.DefaultSettings(), CreatedAt: now}
	admin := &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: acct.ID, Email: "Admin@Example.com", Name: "Admin",
		Status: gatehouse.StatusActive, Roles: gatehouse.Roles{gatehouse.RoleAdmin}, Operator: true, PasswordHash: "h", CreatedAt: now, UpdatedAt: now}
	if ok, err := s.Bootstrap(ctx, acct, admin); err != nil || !ok {
		t.Fatalf("bootstrap: %v %v", ok, err)
	}
	other := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "again", Settings: gatehouse.DefaultSettings(), CreatedAt: now}
	if ok, err := s.Bootstrap(ctx, other, &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: other.ID, Email: "x@example.com"}); err != nil || ok {
		t.Fatalf("second bootstrap: %v %v", ok, err)
	}

	// Accounts and settings.
	got, err := s.Account(ctx, acct.ID)
	if err != nil || got.Name != "default" || !got.CreatedAt.Equal(now) || got.Settings != gatehouse.DefaultSettings() {
		t.Fatalf("account %+v %v", got, err)
	}
	_, err = s.Account(ctx, "acc_missing")
	wantCode(t, err, gatehouse.ENotFound)
	st := got.Settings
	st.RateLimit.Burst, st.APITokensEnabled = 7, true
	if err := s.UpdateSettings(ctx, acct.ID, st, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Account(ctx, acct.ID); got.Settings != st {
		t.Fatalf("settings %+v, want %+v", got.Settings, st)
	}
	wantCode(t, s.UpdateSettings(ctx, "acc_missing", st, nil), gatehouse.ENotFound)
	second := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "second", Settings: gatehouse.DefaultSettings(), CreatedAt: now}
	secondAdmin := &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: second.ID, Email: "boss@second.example", Name: "Boss",
		Status: gatehouse.StatusActive, Roles: gatehouse.Roles{gatehouse.RoleAdmin}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAccount(ctx, second, secondAdmin, &gatehouse.AuditEntry{AccountID: second.ID, Action: "account.create", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	dup := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "dup", Settings: gatehouse.DefaultSettings(), CreatedAt: now}
	err = s.CreateAccount(ctx, dup, &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: dup.ID, Email: "BOSS@second.example",
		Status: gatehouse.StatusActive, CreatedAt: now, UpdatedAt: now}, nil)
	wantCode(t, err, gatehouse.EConflict)
	if _, err := s.Account(ctx, dup.ID); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("account of a failed create exists: %v", err)
	}
	accts, next, err := s.Accounts(ctx, gatehouse.Page{Limit: 1})
	if err != nil || len(accts) != 1 || next == "" {
		t.Fatalf("accounts page 1: %d %q %v", len(accts), next, err)
	}
	rest, next2, err := s.Accounts(ctx, gatehouse.Page{Limit: 5, After: next})
	if err != nil || len(rest) != 1 || next2 != "" || rest[0].ID <= accts[0].ID {
		t.Fatalf("accounts page 2: %d %q %v", len(rest), next2, err)
	}

	// Users: e-mails unique case-insensitively; paging; updates.
	u, err := s.UserByEmail(ctx, " admin@EXAMPLE.com")
	if err != nil || u.ID != admin.ID || !u.Operator || !u.IsAdmin() || u.Email != "Admin@Example.com" {
		t.Fatalf("user by email %+v %v", u, err)
	}
	var members []*gatehouse.User
	for i := range 5 {
		m := &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: acct.ID, Email: fmt.Sprintf("m%d@example.com", i), Name: "M",
			Status: gatehouse.StatusActive, Roles: gatehouse.Roles{}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateUser(ctx, m, &gatehouse.AuditEntry{AccountID: acct.ID, ActorID: admin.ID, Action: "user.create", TargetID: m.ID, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
	}
	err = s.CreateUser(ctx, &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: acct.ID, Email: "M0@example.com",
		Status: gatehouse.StatusActive, CreatedAt: now, UpdatedAt: now}, nil)
	wantCode(t, err, gatehouse.EConflict)
	var all []*gatehouse.User
	page := gatehouse.Page{Limit: 2}
	for {
		us, next, err := s.Users(ctx, acct.ID, page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, us...)
		if next == "" {
			break
		}
		page.After = next
	}
	if len(all) != 6 {
		t.Fatalf("%d users in account, want 6", len(all))
	}
	if _, err := s.User(ctx, second.ID, admin.ID); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("user seen from another account: %v", err)
	}
	m := members[0]
	m.Name, m.Roles, m.UpdatedAt = "Renamed", gatehouse.Roles{gatehouse.RoleDeveloper}, now.Add(time.Second)
	if err := s.UpdateUser(ctx, m, store.Revocation{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.User(ctx, acct.ID, m.ID); err != nil || got.Name != "Renamed" || !got.Roles.Has(gatehouse.RoleDeveloper) || !got.UpdatedAt.Equal(m.UpdatedAt) {
		t.Fatalf("updated user %+v %v", got, err)
	}
	m.Email = "admin@example.com"
	wantCode(t, s.UpdateUser(ctx, m, store.Revocation{}, nil), gatehouse.EConflict)
	m.Email = "m0@example.com"

	// Tokens: stored by hash, NULL times, revocation.
	access := &gatehouse.Token{ID: gatehouse.NewID("tok"), AccountID: acct.ID, UserID: m.ID, Kind: gatehouse.KindAccess, Hash: "hash-a",
		Method: gatehouse.MethodPassword, FamilyID: "fam", ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	refresh := &gatehouse.Token{ID: gatehouse.NewID("tok"), AccountID: acct.ID, UserID: m.ID, Kind: gatehouse.KindRefresh, Hash: "hash-r",
		Method: gatehouse.MethodPassword, FamilyID: "fam", ExpiresAt: now.Add(24 * time.Hour), UsedAt: &now, CreatedAt: now}
	if err := s.CreateTokens(ctx, access, refresh); err != nil {
		t.Fatal(err)
	}
	tok, owner, err := s.TokenByHash(ctx, "hash-a")
	if err != nil || tok.ID != access.ID || tok.UsedAt != nil || tok.RevokedAt != nil || !tok.ExpiresAt.Equal(access.ExpiresAt) || owner.ID != m.ID || owner.Name != "Renamed" {
		t.Fatalf("token %+v %+v %v", tok, owner, err)
	}
	if tok, _, err := s.TokenByHash(ctx, "hash-r"); err != nil || tok.UsedAt == nil || !tok.UsedAt.Equal(now) {
		t.Fatalf("refresh token %+v %v", tok, err)
	}
	_, _, err = s.TokenByHash(ctx, "nope")
	wantCode(t, err, gatehouse.ENotFound)
	gen := s.Generation()
	if err := s.RevokeUserTokens(ctx, m.ID, store.Revocation{RefreshTokens: true}, now); err != nil {
		t.Fatal(err)
	}
	if s.Generation() == gen {
		t.Fatal("revocation did not advance the generation")
	}
	if tok, _, _ := s.TokenByHash(ctx, "hash-r"); tok.RevokedAt == nil {
		t.Fatal("refresh token not revoked")
	}
	if tok, _, _ := s.TokenByHash(ctx, "hash-a"); tok.RevokedAt != nil {
		t.Fatal("access token revoked with the refresh tokens")
	}
	if err := s.RevokeToken(ctx, access.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, access.ID, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if tok, _, _ := s.TokenByHash(ctx, "hash-a"); tok.RevokedAt == nil || !tok.RevokedAt.Equal(now) {
		t.Fatalf("access token revoked at %v, want %v", tok.RevokedAt, now)
	}
	m.Status = gatehouse.StatusDisabled
	if err := s.UpdateUser(ctx, m, store.Revocation{AllTokens: true, APIApplication: true}, nil); err != nil {
		t.Fatal(err)
	}

	// Workspaces: owners, members, visibility, deletion.
	owner2 := members[1]
	ws := make([]*gatehouse.Workspace, 3)
	for i := range ws {
		ws[i] = &gatehouse.Workspace{ID: gatehouse.NewID("wsp"), AccountID: acct.ID, Name: fmt.Sprintf("w%d", i), OwnerID: owner2.ID, CreatedAt: now}
		if i == 2 {
			ws[i].OwnerID = "" // made by an anonymous admin
		}
		if err := s.CreateWorkspace(ctx, ws[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	viewer := members[2]
	for range 2 { // adding twice is a no-op
		if err := s.AddMember(ctx, ws[2].ID, viewer.ID, now, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.IsMember(ctx, ws[2].ID, viewer.ID); err != nil || !ok {
		t.Fatalf("is member: %v %v", ok, err)
	}
	if ids, err := s.Members(ctx, ws[2].ID); err != nil || len(ids) != 1 || ids[0] != viewer.ID {
		t.Fatalf("members %v %v", ids, err)
	}
	if got, _, err := s.Workspaces(ctx, acct.ID, "", gatehouse.Page{}); err != nil || len(got) != 3 {
		t.Fatalf("all workspaces: %d %v", len(got), err)
	}
	if got, _, err := s.Workspaces(ctx, acct.ID, owner2.ID, gatehouse.Page{}); err != nil || len(got) != 2 {
		t.Fatalf("owner's workspaces: %d %v", len(got), err)
	}
	if got, _, err := s.Workspaces(ctx, acct.ID, viewer.ID, gatehouse.Page{}); err != nil || len(got) != 1 || got[0].ID != ws[2].ID {
		t.Fatalf("member's workspaces: %d %v", len(got), err)
	}
	if got, _, err := s.Workspaces(ctx, second.ID, "", gatehouse.Page{}); err != nil || len(got) != 0 {
		t.Fatalf("another account's workspaces: %d %v", len(got), err)
	}
	if _, err := s.Workspace(ctx, second.ID, ws[0].ID); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		t.Fatalf("workspace seen from another account: %v", err)
	}
	if err := s.RemoveMember(ctx, ws[2].ID, viewer.ID, nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.IsMember(ctx, ws[2].ID, viewer.ID); ok {
		t.Fatal("still a member")
	}
	if err := s.AddMember(ctx, ws[2].ID, viewer.ID, now, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWorkspace(ctx, acct.ID, ws[2].ID, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteWorkspace(ctx, acct.ID, ws[2].ID, nil), gatehouse.ENotFound)
	wantCode(t, s.DeleteWorkspace(ctx, second.ID, ws[1].ID, nil), gatehouse.ENotFound)

	// Audit: newest first, paged, per account.
	for i := range 3 {
		time.Sleep(2 * time.Millisecond) // ids order by millisecond
		if err := s.AppendAudit(ctx, &gatehouse.AuditEntry{AccountID: acct.ID, ActorID: admin.ID, Actor: "admin@example.com",
			Action: "test", TargetType: "n", TargetID: fmt.Sprint(i), Details: map[string]string{"i": fmt.Sprint(i)}, RemoteAddr: "127.0.0.1", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	entries, next, err := s.Audit(ctx, acct.ID, gatehouse.Page{Limit: 2})
	if err != nil || len(entries) != 2 || next == "" {
		t.Fatalf("audit page 1: %d %q %v", len(entries), next, err)
	}
	if entries[0].Details["i"] != "2" || entries[1].Details["i"] != "1" || entries[0].ID <= entries[1].ID {
		t.Fatalf("audit not newest first: %+v %+v", entries[0], entries[1])
	}
	var n int
	for page := (gatehouse.Page{Limit: 2}); ; {
		es, next, err := s.Audit(ctx, acct.ID, page)
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
		if next == "" {
			break
		}
		page.After = next
	}
	// Bootstrap, five user.create and three test entries.
	if n != 9 {
		t.Fatalf("%d audit entries, want 9", n)
	}
	if es, _, err := s.Audit(ctx, second.ID, gatehouse.Page{}); err != nil || len(es) != 1 || es[0].Action != "account.create" {
		t.Fatalf("second account's audit: %+v %v", es, err)
	}
}

// TestPostgresConcurrentBootstrap starts several stores on one empty schema
// at once, each migrating and bootstrapping: the schema is migrated once
// and exactly one account and one admin result.
func TestPostgresConcurrentBootstrap(t *testing.T) {
	url := pgtest.Schema(t)
	ctx := context.Background()
	const nodes = 4
	stores := make([]*store.Store, nodes)
	for i := range stores {
		s, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	var (
		wg      sync.WaitGroup
		created = make([]bool, nodes)
		errs    = make([]error, nodes)
		start   = make(chan struct{})
	)
	for i, s := range stores {
		wg.Go(func() {
			<-start
			if errs[i] = s.Migrate(ctx); errs[i] != nil {
				return
			}
			now := time.Now().UTC()
			a := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "default", Settings: gatehouse.DefaultSettings(), CreatedAt: now}
			u := &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: a.ID, Email: fmt.Sprintf("admin%d@example.com", i), Name: "Admin",
				Status: gatehouse.StatusActive, Roles: gatehouse.Roles{gatehouse.RoleAdmin}, Operator: true, CreatedAt: now, UpdatedAt: now}
			created[i], errs[i] = s.Bootstrap(ctx, a, u)
		})
	}
	close(start)
	wg.Wait()
	n := 0
	for i := range stores {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d nodes bootstrapped, want 1", n)
	}
	accts, _, err := stores[0].Accounts(ctx, gatehouse.Page{Limit: 10})
	if err != nil || len(accts) != 1 {
		t.Fatalf("%d accounts, %v", len(accts), err)
	}
	users, _, err := stores[1].Users(ctx, accts[0].ID, gatehouse.Page{Limit: 10})
	if err != nil || len(users) != 1 || !users[0].Operator {
		t.Fatalf("users %+v, %v", users, err)
	}
}

// TestMigrationsMirrored checks that every SQLite migration has a
// PostgreSQL twin with the same number and name, and no more.
func TestMigrationsMirrored(t *testing.T) {
	names := func(dir string) []string {
		entries, err := os.ReadDir(filepath.Join("migrations", dir))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".sql") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	lite, pg := names("sqlite"), names("postgres")
	if !slices.Equal(lite, pg) {
		t.Fatalf("migrations differ:\nsqlite   %v\npostgres %v", lite, pg)
	}
}

// TestSchemasMatch migrates both dialects and compares what they made:
// the same tables, columns (with nullability) and named indexes. It also
// checks that every id column of the PostgreSQL schema sorts byte-wise.
func TestSchemasMatch(t *testing.T) {
	pgURL := pgtest.Schema(t)
	ctx := context.Background()
	pgStore, err := store.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pgStore.Close()
	if err := pgStore.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "schema.db")
	liteStore, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer liteStore.Close()
	if err := liteStore.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	lite := describe(t, "sqlite", "file:"+path,
		`SELECT m.name || '.' || c.name || CASE WHEN c."notnull" = 1 OR c.pk > 0 THEN ' not null' ELSE '' END
		   FROM sqlite_master m, pragma_table_info(m.name) c
		  WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
		 UNION ALL
		 SELECT 'index ' || name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'`)
	pg := describe(t, "pgx", pgURL,
		`SELECT table_name || '.' || column_name || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
		   FROM information_schema.columns WHERE table_schema = current_schema()
		 UNION ALL
		 SELECT 'index ' || indexname FROM pg_indexes
		  WHERE schemaname = current_schema() AND indexname NOT LIKE '%\_pkey' AND indexname NOT LIKE '%\_key'`)
	if !slices.Equal(lite, pg) {
		t.Errorf("schemas differ:\nsqlite:\n  %s\npostgres:\n  %s", strings.Join(lite, "\n  "), strings.Join(pg, "\n  "))
	}

	loose := describe(t, "pgx", pgURL,
		`SELECT table_name || '.' || column_name FROM information_schema.columns
		  WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'
		    AND (column_name = 'id' OR column_name LIKE '%\_id')
		    AND COALESCE(collation_name, '') <> 'C'`)
	if len(loose) > 0 {
		t.Errorf(`id columns without COLLATE "C" (cursors need byte-wise order): %v`, loose)
	}
}

// describe runs query on a fresh connection and returns its one text
// column, sorted.
func describe(t *testing.T, driver, dsn, query string) []string {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", driver, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
