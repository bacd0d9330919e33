package store

import (
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// contracting lists what a migration may not do while the previous release
// still serves beside this one (docs/deploy.md, "Upgrading"): take away or
// rename what that release reads, change a column's type or constraints
// under it, or add a required column it does not know how to fill.
var contracting = []struct {
	re   *regexp.Regexp
	why  string
	skip *regexp.Regexp // a match of skip in the statement excuses it
}{
	{re: regexp.MustCompile(`\bDROP\s+(COLUMN|TABLE|VIEW|SCHEMA)\b`), why: "drops what the previous release may read"},
	{re: regexp.MustCompile(`\bRENAME\b`), why: "renames what the previous release may read"},
	{re: regexp.MustCompile(`\bALTER\s+COLUMN\b`), why: "changes a column under the previous release"},
	{re: regexp.MustCompile(`\bALTER\s+TABLE\b[^;]*\bADD\s+(COLUMN\s+)?[^;]*\bNOT\s+NULL\b`), why: "adds a required column the previous release does not fill", skip: regexp.MustCompile(`\bDEFAULT\b`)},
	{re: regexp.MustCompile(`\bTRUNCATE\b|\bDELETE\s+FROM\b`), why: "deletes rows the previous release relies on"},
}

var sqlComment = regexp.MustCompile(`--[^\n]*`)

// contractions returns why each statement of body may not run while the
// previous release serves.
func contractions(body string) []string {
	var out []string
	for _, stmt := range strings.Split(strings.ToUpper(sqlComment.ReplaceAllString(body, "")), ";") {
		for _, c := range contracting {
			if c.re.MatchString(stmt) && (c.skip == nil || !c.skip.MatchString(stmt)) {
				out = append(out, c.why+": "+strings.Join(strings.Fields(stmt), " "))
			}
		}
	}
	return out
}

func TestContractions(t *testing.T) {
	for body, bad := range map[string]bool{
		`ALTER TABLE users ADD COLUMN x TEXT NOT NULL DEFAULT ''`:           false,
		`ALTER TABLE users ADD COLUMN x TEXT`:                               false,
		`CREATE INDEX users_email ON users (lower(email) text_pattern_ops)`: false,
		`CREATE TABLE t (a TEXT NOT NULL); DROP INDEX IF EXISTS old_index`:  false,
		"-- we never DROP COLUMN here\nCREATE INDEX a ON b (c)":             false,
		`ALTER TABLE users DROP COLUMN name`:                                true,
		`alter table users rename column name to full_name`:                 true,
		`ALTER TABLE users RENAME TO people`:                                true,
		`DROP TABLE usage_daily`:                                            true,
		`ALTER TABLE users ALTER COLUMN name TYPE BIGINT`:                   true,
		`ALTER TABLE users ADD COLUMN x TEXT NOT NULL`:                      true,
		`CREATE INDEX a ON b (c); ALTER TABLE t ADD x INT NOT NULL`:         true,
	} {
		if got := len(contractions(body)) > 0; got != bad {
			t.Errorf("%q: contracting %v, want %v", body, got, bad)
		}
	}
}

// previousReleaseMigration returns the highest migration number of the
// previous release (.ci/previous-release), read from git.
func previousReleaseMigration(t *testing.T) int {
	t.Helper()
	testenv.RequireTool(t, "git")
	data, err := os.ReadFile("../.ci/previous-release")
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(data))
	out, err := exec.Command("git", "ls-tree", "--name-only", commit, "migrations/postgres/").Output()
	if err != nil {
		testenv.Missing(t, "the previous release "+commit, "clone with history (not --depth 1)")
	}
	highest := 0
	for _, path := range strings.Fields(string(out)) {
		name := path[strings.LastIndex(path, "/")+1:]
		if v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0]); err == nil && v > highest {
			highest = v
		}
	}
	if highest == 0 {
		t.Fatalf("no migrations in the previous release %s", commit)
	}
	return highest
}

// TestMigrationsOnlyExpand fails when a migration newer than the previous
// release contracts the schema (drops, renames, retypes, adds a required
// column without a default), and when the two dialects' migrations differ
// in number or name.
func TestMigrationsOnlyExpand(t *testing.T) {
	previous := previousReleaseMigration(t)
	names := map[string][]string{}
	for _, dialect := range []string{"sqlite", "postgres"} {
		entries, err := fs.ReadDir(migrations, "migrations/"+dialect)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			names[dialect] = append(names[dialect], e.Name())
			v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
			if err != nil {
				t.Fatalf("%s/%s: bad name", dialect, e.Name())
			}
			if v <= previous {
				continue
			}
			body, err := fs.ReadFile(migrations, "migrations/"+dialect+"/"+e.Name())
			if err != nil {
				t.Fatal(err)
			}
			for _, why := range contractions(string(body)) {
				t.Errorf("%s/%s (after the previous release's %04d) %s", dialect, e.Name(), previous, why)
			}
		}
	}
	if strings.Join(names["sqlite"], " ") != strings.Join(names["postgres"], " ") {
		t.Errorf("the dialects' migrations differ:\nsqlite   %v\npostgres %v", names["sqlite"], names["postgres"])
	}
}
