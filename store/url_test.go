package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/store"
)

func TestParseURL(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, dialect, path, err string
	}{
		{in: "", dialect: "sqlite", path: filepath.Join(wd, store.DefaultURL)},
		{in: "data/g.db", dialect: "sqlite", path: filepath.Join(wd, "data/g.db")},
		{in: "/var/lib/g.db", dialect: "sqlite", path: "/var/lib/g.db"},
		{in: "sqlite:///var/lib/g.db", dialect: "sqlite", path: "/var/lib/g.db"},
		{in: "sqlite:rel/g.db", dialect: "sqlite", path: filepath.Join(wd, "rel/g.db")},
		{in: "sqlite://rel/g.db", dialect: "sqlite", path: filepath.Join(wd, "rel/g.db")},
		{in: "./odd:name.db", dialect: "sqlite", path: filepath.Join(wd, "odd:name.db")},
		{in: "postgres://u:secret@db/gatehouse?sslmode=disable", dialect: "postgres"},
		{in: "postgresql://db/gatehouse", dialect: "postgres"},
		{in: "mysql://u:secret@db/gatehouse", err: `scheme "mysql" is not supported`},
		{in: "MySQL://db", err: "not supported"},
		{in: "odd:name.db", err: "not supported"},
		{in: "postgres:db", err: "postgres://"},
		{in: "sqlite:", err: "empty"},
		{in: "sqlite:g.db?mode=ro", err: "?"},
	} {
		loc, err := store.ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one with %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("%q: error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || loc.Dialect != tc.dialect || loc.Path != tc.path {
			t.Errorf("%q: %+v %v, want %s %q", tc.in, loc, err, tc.dialect, tc.path)
		}
	}
	loc, _ := store.ParseURL("postgres://u:secret@db/gatehouse")
	if strings.Contains(loc.String(), "secret") {
		t.Errorf("location %q shows the password", loc)
	}
}

// TestOpenExisting: the commands that work on a store directly open only
// one a server made — a missing SQLite file, or an empty file or
// PostgreSQL schema, is an error naming --database-url, and no store is
// made where the path pointed — and open a migrated one.
func TestOpenExisting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo", "gatehuose.db")
	if _, err := store.OpenExisting(ctx, missing); err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Fatalf("a missing file: %v, want an error naming --database-url", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Fatalf("opening a missing store made %s: %v", filepath.Dir(missing), err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenExisting(ctx, empty); err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Fatalf("an empty file: %v, want an error naming --database-url", err)
	}
	made := filepath.Join(dir, "gatehouse.db")
	s, err := store.Open(ctx, made)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = store.OpenExisting(ctx, made)
	if err != nil {
		t.Fatalf("a migrated store: %v", err)
	}
	s.Close()
	t.Run("postgres", func(t *testing.T) {
		if _, err := store.OpenExisting(ctx, pgtest.Schema(t)); err == nil || !strings.Contains(err.Error(), "--database-url") {
			t.Fatalf("an empty PostgreSQL schema: %v, want an error naming --database-url", err)
		}
	})
}
