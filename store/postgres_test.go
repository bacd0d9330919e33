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
	"sync/atomic"
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

// bootstrap claims the store's bootstrap and, if this call won it, stores
// the account and its admin, as the service does.
func bootstrap(ctx context.Context, s *store.Store, a *gatehouse.Account, u *gatehouse.User) (created bool, err error) {
	err = s.Update(ctx, func(tx *store.Tx) error {
		if created, err = tx.ClaimBootstrap(a.ID); err != nil || !created {
			return err
		}
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		return tx.CreateUser(u)
	})
	return created, err
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
			created[i], errs[i] = bootstrap(ctx, s, a, u)
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

// TestUsageCountsCarryOver builds a store as the release before per-credential
// usage left it, with counts in usage_daily, then migrates it: a user's
// counts keep their user, an API token's its token, all as served.
func TestUsageCountsCarryOver(t *testing.T) {
	for _, dialect := range []struct{ name, driver, url string }{
		{"sqlite", "sqlite", filepath.Join(t.TempDir(), "old.db")},
		{"postgres", "pgx", pgtest.Schema(t)},
	} {
		t.Run(dialect.name, func(t *testing.T) {
			ctx := t.Context()
			dsn := dialect.url
			if dialect.name == "sqlite" {
				dsn = "file:" + dsn
			}
			db, err := sql.Open(dialect.driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			for version := 1; version <= 5; version++ {
				files, _ := filepath.Glob(filepath.Join("migrations", dialect.name, fmt.Sprintf("%04d_*.sql", version)))
				if len(files) != 1 {
					t.Fatalf("migration %d: %v", version, files)
				}
				body, err := os.ReadFile(files[0])
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, string(body)); err != nil {
					t.Fatalf("%s: %v", files[0], err)
				}
				if _, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO schema_migrations VALUES (%d, 0)`, version)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO usage_daily (account_id, principal, day, count) VALUES
				('acc_1', 'user:usr_1', '2026-01-01', 5), ('acc_1', 'apitoken:atk_1', '2026-01-01', 3), ('acc_2', 'user:usr_2', '2026-01-02', 1)`); err != nil {
				t.Fatal(err)
			}
			db.Close()

			s, err := store.Open(ctx, dialect.url)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := s.Usage(ctx, "acc_1", "2026-01-01")
			want := []store.UsageRow{
				{Day: "2026-01-01", UserID: "", Credential: "api_token:atk_1", UsageCounts: store.UsageCounts{Served: 3}},
				{Day: "2026-01-01", UserID: "usr_1", Credential: "", UsageCounts: store.UsageCounts{Served: 5}},
			}
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("usage %v, %v; want %v", got, err, want)
			}
		})
	}
}

// TestRotationsOnTwoNodes: two stores on one PostgreSQL database, as two
// nodes of a cluster, each rotate the same refresh tokens at once, one in
// the opposite order of the other. Each node's batch writer commits its
// rotations in groups, so two groups may lock the same rows in opposite
// orders; PostgreSQL then aborts one of them (a deadlock), which must cost
// no caller anything: every rotation answers without an error, and each
// token is rotated exactly once.
func TestRotationsOnTwoNodes(t *testing.T) {
	const rounds, tokens = 20, 24
	url := pgtest.Schema(t)
	var a, b *store.Store
	for _, s := range []**store.Store{&a, &b} {
		var err error
		if *s, err = store.Open(context.Background(), url); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*s).Close() })
	}
	if err := a.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, a)
	for round := range rounds {
		cur := make([]*gatehouse.Token, tokens)
		for i := range cur {
			cur[i] = tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, gatehouse.NewID("fam"))
		}
		update(t, a, func(tx *store.Tx) error { return tx.CreateTokens(cur...) })
		used := time.Now().UTC().Truncate(time.Microsecond).Add(time.Hour)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			won   [2][tokens]bool
		)
		for n, s := range []*store.Store{a, b} {
			for k := range tokens {
				i := k
				if n == 1 {
					i = tokens - 1 - k
				}
				next := tokenOf(f.user, gatehouse.KindRefresh, gatehouse.MethodAPIAccess, f.app.ClientID, cur[i].FamilyID)
				wg.Go(func() {
					<-start
					var err error
					if won[n][i], err = s.RotateRefreshToken(t.Context(), cur[i].ID, clockAt(used), nil, next); err != nil {
						t.Errorf("round %d: node %d's rotation of token %d: %v", round, n, i, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		for i := range tokens {
			if won[0][i] == won[1][i] {
				t.Fatalf("round %d: token %d rotated by node 0: %v, by node 1: %v; want exactly one", round, i, won[0][i], won[1][i])
			}
		}
	}
}

// TestUpdateRunsADeadlockAgain: two transactions that lock two users in
// opposite orders deadlock; PostgreSQL rolls one back (40P01), and Update
// runs it again, fn with it, so that both succeed. Without the retry one
// of them failed. The store's step timeout is long: each transaction
// waits for the other to take its first lock, which on a loaded machine
// can take longer than the default.
func TestUpdateRunsADeadlockAgain(t *testing.T) {
	s, err := store.OpenWith(t.Context(), pgtest.Schema(t), store.Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s)
	var (
		wg      sync.WaitGroup
		holding sync.WaitGroup // each holds its first lock
		runs    [2]atomic.Int32
		errs    [2]error
	)
	holding.Add(2)
	order := [2][2]string{{f.user.ID, f.member.ID}, {f.member.ID, f.user.ID}}
	for i := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(t.Context(), func(tx *store.Tx) error {
				first := runs[i].Add(1) == 1
				if _, err := tx.User(f.account.ID, order[i][0]); err != nil {
					return err
				}
				if first {
					holding.Done()
					holding.Wait()
				}
				_, err := tx.User(f.account.ID, order[i][1])
				return err
			})
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("errors %v, %v", errs[0], errs[1])
	}
	if n := runs[0].Load() + runs[1].Load(); n != 3 {
		t.Fatalf("%d runs of the two transactions, want 3 (one rolled back and run again)", n)
	}
	if n := s.Conflicts(); n != 1 {
		t.Fatalf("Conflicts() = %d, want 1: the run PostgreSQL rolled back", n)
	}
}

// TestPostgresCredentialReachesItsOwnerByKey: reading a credential of an
// account with its owner (every change of a credential does) looks the
// owner up by its key. On a users table PostgreSQL has no statistics for
// yet — it analyses a table only after 50 changes, so a small account's
// never is — a join through the account's users walked every user of the
// account and looked the credential up once for each.
func TestPostgresCredentialReachesItsOwnerByKey(t *testing.T) {
	s := openPostgres(t)
	a := newAccount(t, s)
	var users []*gatehouse.User
	for range 30 {
		users = append(users, newUser(t, s, a, gatehouse.RoleDeveloper))
	}
	c := credentialOf(users[17])
	update(t, s, func(tx *store.Tx) error { return tx.CreateCredential(c) })

	text := explain(t, s, s.AccountCredentialSQL(), a.ID, c.ID)
	if !strings.Contains(text, "users_pkey on users u") || !strings.Contains(text, "client_credentials_pkey on client_credentials c") {
		t.Errorf("the credential and its owner are not read by their keys:\n%s", text)
	}

	// What it reads is right, and another account's credential is not found.
	other := newAccount(t, s)
	update(t, s, func(tx *store.Tx) error {
		got, owner, err := tx.AccountCredential(a.ID, c.ID)
		if err != nil || got.ID != c.ID || owner.ID != users[17].ID {
			t.Errorf("AccountCredential: %v, %v, %v", got, owner, err)
		}
		if _, _, err := tx.AccountCredential(other.ID, c.ID); gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			t.Errorf("through another account: %v, want not_found", err)
		}
		return nil
	})
}
