package e2e

import (
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// previousRelease returns the commit of the previous release, named in
// .ci/previous-release, after checking that this clone holds it.
func previousRelease(t *testing.T) string {
	t.Helper()
	testenv.RequireTool(t, "git")
	data, err := os.ReadFile("../.ci/previous-release")
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(data))
	out, err := exec.Command("git", "rev-parse", "--verify", "--quiet", commit+"^{commit}").Output()
	if err != nil {
		testenv.Missing(t, "the previous release "+commit, "clone with history (not --depth 1)")
	}
	return strings.TrimSpace(string(out))
}

// buildRelease builds cmd/gatehouse as it was at commit, from git, in a
// directory of its own, and returns the binary.
func buildRelease(t *testing.T, commit string) string {
	t.Helper()
	dir := t.TempDir()
	archive := exec.Command("sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", "..", commit, dir)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, out)
	}
	bin := filepath.Join(dir, "gatehouse-previous")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", commit, err, out)
	}
	return bin
}

// launchBinary starts bin serve as launch does for this tree's binary.
func launchBinary(t *testing.T, bin string, flags ...string) *process {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, flags...)...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+processAdminPassword)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &process{cmd: cmd, url: "http://" + addr}
	p.waitReady(t)
	return p
}

// TestRollingUpgrade runs a node of the previous release (built from git)
// beside a node of this tree on one PostgreSQL schema and one Redis, as
// during a rolling upgrade (docs/deploy.md): once with this release
// migrating the database before the old node starts, once with the old
// node serving while this one starts and migrates. Through each node it
// makes credentials and users, which the other must see, then revokes them
// — a deleted client credential, a deleted API token, a disabled user, a
// revoked API access application — and the other node must refuse each at
// once, having just served it from its cache.
func TestRollingUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and starts processes")
	}
	testenv.RequireTool(t, "go")
	oldBin := buildRelease(t, previousRelease(t))
	newBin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range []string{"new-migrates-first", "old-serves-while-new-migrates"} {
		t.Run(order, func(t *testing.T) {
			dbURL := pgtest.Schema(t)
			rs := startRedis(t, "")
			flags := []string{"--database-url", dbURL, "--redis-url", "redis://127.0.0.1:" + rs.port + "/0", "--log-level", "error"}
			var oldNode, newNode *process
			if order == "new-migrates-first" {
				newNode = launchBinary(t, newBin, flags...)
				oldNode = launchBinary(t, oldBin, flags...)
			} else {
				oldNode = launchBinary(t, oldBin, flags...)
				newNode = launchBinary(t, newBin, flags...)
			}
			checkMigrated(t, dbURL)
			admin := login(t, newNode, "admin@example.com", processAdminPassword)
			if st, _ := oldNode.send(t, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}, bearer(admin)...); st != 200 {
				t.Fatalf("API tokens extension on: %d", st)
			}
			t.Run("revoke-on-old", func(t *testing.T) { revokeAcross(t, "o", oldNode, newNode, admin) })
			t.Run("revoke-on-new", func(t *testing.T) { revokeAcross(t, "n", newNode, oldNode, admin) })
		})
	}
}

// checkMigrated checks that the database holds every migration of this
// tree, whichever node started first.
func checkMigrated(t *testing.T, dbURL string) {
	t.Helper()
	entries, err := os.ReadDir("../store/migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(entries) {
		t.Fatalf("%d migrations applied, want this release's %d", n, len(entries))
	}
}

// revokeAcross makes principals through via, checks that other sees and
// serves them, revokes each through via and checks that other refuses it
// on the very next request, after an unrelated revocation through other.
func revokeAcross(t *testing.T, tag string, via, other *process, admin string) {
	t.Helper()
	both := []*process{via, other}
	mustStatus := func(what string, want, got int) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: %d, want %d", what, got, want)
		}
	}
	user := func(name string, roles []string) string {
		t.Helper()
		st, u := via.send(t, "POST", "/v1/users", map[string]any{"email": name + "-" + tag + "@example.com", "password": memberPW, "roles": roles}, bearer(admin)...)
		mustStatus("create "+name, 201, st)
		id := u["id"].(string)
		// What via acknowledged, other reads.
		st, got := other.send(t, "GET", "/v1/users/"+id, nil, bearer(admin)...)
		mustStatus("read "+name+" on the other node", 200, st)
		if got["email"] != u["email"] {
			t.Fatalf("%s on the other node: %v", name, got)
		}
		return id
	}
	// served checks that tok is served by both nodes, twice each, so that
	// each has it cached.
	served := func(what string, header []string) {
		t.Helper()
		for _, n := range append(both, both...) {
			st, _ := n.send(t, "GET", "/v1/me", nil, header...)
			mustStatus(what+" served", 200, st)
		}
	}

	// A developer's client credential.
	devID := user("dev", nil)
	mustStatus("make a developer", 204, first(via.send(t, "PUT", "/v1/developers/"+devID, nil, bearer(admin)...)))
	dev := login(t, other, "dev-"+tag+"@example.com", memberPW)
	st, cred := via.send(t, "POST", "/v1/credentials", map[string]string{"name": "ci"}, bearer(dev)...)
	mustStatus("create credential", 201, st)
	st, list := other.send(t, "GET", "/v1/credentials?user_id="+devID, nil, bearer(admin)...)
	if st != 200 || len(list["data"].([]any)) != 1 {
		t.Fatalf("the credential on the other node: %d %v", st, list)
	}
	grant := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred["client_id"].(string)}, "client_secret": {cred["client_secret"].(string)}}
	st, cc := other.send(t, "POST", "/oauth/token", grant)
	mustStatus("client-credentials grant on the other node", 200, st)
	ccToken := cc["access_token"].(string)
	served("client-credentials token", bearer(ccToken))

	// An API token.
	st, apiTok := via.send(t, "POST", "/v1/api-tokens", map[string]string{"name": "ci-" + tag}, bearer(admin)...)
	mustStatus("create API token", 201, st)
	apiHeader := []string{"X-API-Token", apiTok["token"].(string)}
	served("API token", apiHeader)

	// A member's password token.
	memberID := user("member", nil)
	member := login(t, other, "member-"+tag+"@example.com", memberPW)
	served("member token", bearer(member))

	// An admin's API access application.
	user("owner", []string{"admin"})
	owner := login(t, via, "owner-"+tag+"@example.com", memberPW)
	st, app := via.send(t, "POST", "/v1/api-access", nil, bearer(owner)...)
	mustStatus("enable API access", 201, st)
	served("API access token", bearer(app["access_token"].(string)))

	// nudge makes an unrelated revoking change through other, between a
	// revocation through via and the check on other: a ring of this
	// release after one of the previous release must not hide it.
	bystander := user("bystander", nil)
	status := "disabled"
	nudge := func() {
		t.Helper()
		mustStatus("nudge", 200, first(other.send(t, "PATCH", "/v1/users/"+bystander, map[string]any{"status": status}, bearer(admin)...)))
		if status == "disabled" {
			status = "active"
		} else {
			status = "disabled"
		}
	}

	// Revoke each through via; other refuses it at once.
	mustStatus("delete credential", 204, first(via.send(t, "DELETE", "/v1/credentials/"+cred["id"].(string), nil, bearer(dev)...)))
	nudge()
	mustStatus("deleted credential's token on the other node", 401, first(other.send(t, "GET", "/v1/me", nil, bearer(ccToken)...)))
	mustStatus("deleted credential's grant on the other node", 401, first(other.send(t, "POST", "/oauth/token", grant)))

	mustStatus("delete API token", 204, first(via.send(t, "DELETE", "/v1/api-tokens/"+apiTok["id"].(string), nil, bearer(admin)...)))
	nudge()
	mustStatus("deleted API token on the other node", 401, first(other.send(t, "GET", "/v1/me", nil, apiHeader...)))

	mustStatus("disable member", 200, first(via.send(t, "PATCH", "/v1/users/"+memberID, map[string]any{"status": "disabled"}, bearer(admin)...)))
	nudge()
	mustStatus("disabled member on the other node", 401, first(other.send(t, "GET", "/v1/me", nil, bearer(member)...)))

	mustStatus("revoke API access", 204, first(via.send(t, "DELETE", "/v1/api-access", nil, bearer(owner)...)))
	nudge()
	mustStatus("revoked API access token on the other node", 401, first(other.send(t, "GET", "/v1/me", nil, bearer(app["access_token"].(string))...)))
	st, _ = other.send(t, "POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {app["refresh_token"].(string)}, "client_id": {app["client_id"].(string)}})
	if st != 400 && st != 401 {
		t.Fatalf("revoked API access refresh on the other node: %d", st)
	}
}

// first returns its first argument.
func first[A, B any](a A, _ B) A { return a }
