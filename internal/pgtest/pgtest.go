// Package pgtest gives tests a PostgreSQL schema of their own on the
// machine's test database, so that runs in parallel do not collide.
//
// The database is named by the environment variable GATEHOUSE_TEST_POSTGRES_URL
// (default DefaultURL). When it cannot be reached the test is skipped, except
// under CI=true, where it fails: CI never silently skips PostgreSQL.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver, as "pgx"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// EnvURL is the environment variable that names the test database.
const EnvURL = "GATEHOUSE_TEST_POSTGRES_URL"

// DefaultURL is the test database used when EnvURL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseURL returns the test database's URL, from EnvURL or DefaultURL.
func BaseURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// Schema creates a new, empty schema in the test database, drops it with
// everything in it when the test ends, and returns the database URL with
// search_path set to it: a store opened on that URL keeps its tables there.
// Anything using the URL must be closed before the test's cleanups run,
// for example with a t.Cleanup registered after Schema returns.
func Schema(t testing.TB) string {
	t.Helper()
	base := BaseURL()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", EnvURL)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		testenv.Missing(t, "PostgreSQL", fmt.Sprintf("%v; set %s or start it on 127.0.0.1:5432", err, EnvURL))
	}
	name := newName()
	_, err = db.ExecContext(ctx, "CREATE SCHEMA "+name)
	db.Close()
	if err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", base)
		if err == nil {
			defer db.Close()
			_, err = db.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE")
		}
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// newName returns a fresh schema name that needs no quoting.
func newName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "gh_test_" + strings.ToLower(time.Now().UTC().Format("20060102t150405")) + "_" + hex.EncodeToString(b[:])
}

// AwaitBlocked waits, for up to 10 s, until some backend of db's database
// waits for a lock that the backend holder (its pg_backend_pid) holds, and
// fails t when none does: what must is named by what ("the deletion
// waits for the account's lock").
func AwaitBlocked(t testing.TB, db *sql.DB, holder int, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waiting int
		if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, holder).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never seen: %s", what)
		}
	}
}
