package store_test

import (
	"context"

	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/store"
)

// The scale benchmarks load many rows straight into a fresh store, in one
// statement each (not through the API), then measure the reads the request
// path makes against them, reporting percentiles of single calls:
//
//	go test ./store -run '^$' -bench 'ColdTokenValidation|UserSearch' -benchtime 20000x
//
// GATEHOUSE_BENCH_TOKENS and GATEHOUSE_BENCH_USERS change the row counts
// (default 1,000,000 tokens and 50,000 users).

// benchStore opens a fresh, migrated store of dialect.
func benchStore(b *testing.B, dialect string) *store.Store {
	b.Helper()
	url := b.TempDir() + "/gatehouse.db"
	if dialect == "postgres" {
		url = pgtest.Schema(b)
	}
	s, err := store.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchCount returns the number in the environment variable name, or def.
func benchCount(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q", name, v)
		}
		return n
	}
	return def
}

// seriesSQL returns a SELECT of the integers 1..n as column i in the
// store's dialect, to be followed by the select list's FROM.
func series(s *store.Store) (with, from string) {
	if s.Dialect() == "postgres" {
		return "", "generate_series(1, ?) AS n(i)"
	}
	return "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) ", "n"
}

// randomHex is a SQL expression of 64 random hex digits, as a digest.
func randomHex(s *store.Store) string {
	if s.Dialect() == "postgres" {
		return "md5(random()::text) || md5(random()::text)"
	}
	return "lower(hex(randomblob(32)))"
}

// percentiles records single-call durations and reports p50 and p99.
type percentiles []time.Duration

func (p percentiles) report(b *testing.B) {
	if len(p) == 0 {
		return
	}
	slices.Sort(p)
	at := func(q float64) float64 { return float64(p[int(q*float64(len(p)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// explain returns the plan of query on s.
func explain(b testing.TB, s *store.Store, query string, args ...any) string {
	b.Helper()
	prefix := "EXPLAIN QUERY PLAN "
	if s.Dialect() == "postgres" {
		prefix = "EXPLAIN "
	}
	rows, err := s.BulkDB().Query(s.Rebind(prefix+query), args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1]))
	}
	return strings.Join(lines, "\n")
}

// fullScan reports whether a plan reads the whole of table (named alias
// in the query): the big tables must be reached through an index (the
// small ones may be scanned when the planner finds it cheaper).
func fullScan(plan, table, alias string) bool {
	for _, line := range strings.Split(plan, "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "Seq Scan on "+table+" ") || line == "SCAN "+alias || strings.HasPrefix(line, "SCAN "+table) {
			return true
		}
	}
	return false
}

// BenchmarkColdTokenValidation measures the store's half of validating a
// token that no cache holds: the one statement (TokenByHash) that reads the
// token, its user, account, parent and lineage, among a million tokens.
//
// The rows are loaded here, once per store, not in the sub-benchmarks,
// which the testing package runs more than once.
func BenchmarkColdTokenValidation(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		func() {
			ctx := context.Background()
			s := benchStore(b, dialect)
			a := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "Acme", Settings: gatehouse.DefaultSettings(), CreatedAt: at}
			u := &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: a.ID, Email: newEmail(), Name: "User", Status: gatehouse.StatusActive,
				PasswordHash: "argon2id$digest", CreatedAt: at, UpdatedAt: at}
			if err := s.Update(ctx, func(tx *store.Tx) error {
				if err := tx.CreateAccount(a); err != nil {
					return err
				}
				return tx.CreateUser(u)
			}); err != nil {
				b.Fatal(err)
			}
			n := benchCount(b, "GATEHOUSE_BENCH_TOKENS", 1_000_000)
			with, from := series(s)
			exp := time.Now().Add(time.Hour).UnixMicro()
			load := with + `INSERT INTO tokens (id, account_id, user_id, kind, token_hash, method, client_id, family_id, expires_at, created_at, user_epoch, password_epoch)
				SELECT 'tok' || i, ?, ?, 'access', ` + randomHex(s) + `, 'password', '', 'fam' || i, ?, ?, 0, 0 FROM ` + from
			args := []any{n, a.ID, u.ID, exp, at.UnixMicro()}
			if dialect == "postgres" {
				load = `INSERT INTO tokens (id, account_id, user_id, kind, token_hash, method, client_id, family_id, expires_at, created_at, user_epoch, password_epoch)
				SELECT 'tok' || i, ?, ?, 'access', ` + randomHex(s) + `, 'password', '', 'fam' || i, ?, ?, 0, 0 FROM ` + from
				args = []any{a.ID, u.ID, exp, at.UnixMicro(), n}
			}
			start := time.Now()
			if _, err := s.BulkDB().ExecContext(ctx, s.Rebind(load), args...); err != nil {
				b.Fatal(err)
			}
			analyze := "ANALYZE"
			if _, err := s.BulkDB().ExecContext(ctx, analyze); err != nil {
				b.Fatal(err)
			}
			b.Logf("%d tokens loaded in %v", n, time.Since(start).Round(time.Millisecond))
			hashes := sample(b, s, `SELECT token_hash FROM tokens ORDER BY random() LIMIT 20000`)
			plan := explain(b, s, store.TokenByHashSQL, hashes[0])
			b.Logf("plan:\n%s", plan)
			if fullScan(plan, "tokens", "t") {
				b.Fatalf("validation reads a whole table:\n%s", plan)
			}
			b.Run(dialect, func(b *testing.B) {
				var times percentiles
				for i := 0; i < b.N; i++ {
					h := hashes[rand.IntN(len(hashes))]
					t0 := time.Now()
					if _, err := s.TokenByHash(ctx, h); err != nil {
						b.Fatal(err)
					}
					times = append(times, time.Since(t0))
				}
				b.StopTimer()
				times.report(b)
			})
		}()
	}
}

// sample returns the one text column of query's rows.
func sample(b *testing.B, s *store.Store, query string) []string {
	b.Helper()
	rows, err := s.BulkDB().Query(query)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			b.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(out) == 0 {
		b.Fatal("no rows to sample")
	}
	return out
}

// BenchmarkUserSearch measures GET /v1/users?q= 's reads (a page and the
// count of what matches) among 50,000 users of one account, for a query
// that begins an e-mail address.
func BenchmarkUserSearch(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		func() {
			ctx := context.Background()
			s := benchStore(b, dialect)
			a := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "Acme", Settings: gatehouse.DefaultSettings(), CreatedAt: at}
			if err := s.Update(ctx, func(tx *store.Tx) error { return tx.CreateAccount(a) }); err != nil {
				b.Fatal(err)
			}
			n := benchCount(b, "GATEHOUSE_BENCH_USERS", 50_000)
			with, from := series(s)
			cols := `INSERT INTO users (id, account_id, email, email_key, name, status, roles, operator, password_hash, created_at, updated_at)
				SELECT 'usr' || i, ?, 'User' || i || '@Example.com', 'user' || i || '@example.com', 'Person ' || i, 'active', '', 0, 'argon2id$digest', ?, ? FROM ` + from
			args := []any{a.ID, at.UnixMicro(), at.UnixMicro(), n}
			if dialect == "sqlite" {
				args = append([]any{n}, args[:3]...)
			}
			if _, err := s.BulkDB().ExecContext(ctx, s.Rebind(with+cols), args...); err != nil {
				b.Fatal(err)
			}
			if _, err := s.BulkDB().ExecContext(ctx, "ANALYZE"); err != nil {
				b.Fatal(err)
			}
			f := gatehouse.UserFilter{Query: "USER4242"}
			where, wargs := s.UserFilterSQL(a.ID, f)
			for _, q := range []string{`SELECT COUNT(*) FROM users WHERE ` + where, `SELECT id FROM users WHERE ` + where + ` ORDER BY id LIMIT 51`} {
				plan := explain(b, s, q, wargs...)
				b.Logf("%s\n%s", q, plan)
				if fullScan(plan, "users", "users") {
					b.Fatalf("user search reads every user:\n%s", plan)
				}
			}
			b.Run(dialect, func(b *testing.B) {
				var times percentiles
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					users, _, err := s.FindUsers(ctx, a.ID, f, gatehouse.Page{Limit: 50})
					if err != nil {
						b.Fatal(err)
					}
					count, err := s.CountUsers(ctx, a.ID, f)
					if err != nil {
						b.Fatal(err)
					}
					times = append(times, time.Since(t0))
					if len(users) != min(count, 50) || count == 0 {
						b.Fatalf("%d users on the page, %d counted", len(users), count)
					}
				}
				b.StopTimer()
				times.report(b)
			})
		}()
	}
}
