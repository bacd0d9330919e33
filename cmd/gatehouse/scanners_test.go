package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/token"
)

// gitleaksModule is the Gitleaks release the scanner test runs: built
// from the Go module proxy by go run, which keeps the executable in the
// Go build cache, so that only the first run builds it.
const gitleaksModule = "github.com/zricethezav/gitleaks/v8@v8.30.1"

// gitleaks runs Gitleaks with args and returns its combined output. When
// it cannot be built (the module proxy out of reach) the test is skipped,
// or failed under CI=true.
func gitleaks(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	goTool := testenv.RequireTool(t, "go")
	cmd := exec.Command(goTool, append([]string{"run", gitleaksModule}, args...)...)
	// A build of its own: not this module's, and none of go test's flags.
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	return cmd.CombinedOutput()
}

// gitleaksFinding is one entry of Gitleaks' JSON report.
type gitleaksFinding struct {
	RuleID    string
	Secret    string
	File      string
	StartLine int
}

// TestTokenPatternsGitleaks runs the real Gitleaks with the configuration
// gatehouse token-patterns --format gitleaks prints, for the default
// prefixes and for a deployment name, over a directory of freshly made
// secrets of every kind in the places they leak to (an .env file, YAML,
// JSON, a shell history, a URL) and of near misses (a client id, a
// truncated or extended token, another deployment's, upper case, a
// prefix run into a word). The Gatehouse rules find exactly the real
// secrets, each under its kind's rule, and nothing else; the default
// rules still apply beside them (a GitHub token is found too).
func TestTokenPatternsGitleaks(t *testing.T) {
	if out, err := gitleaks(t, "version"); err != nil {
		testenv.Missing(t, "gitleaks ("+gitleaksModule+")", fmt.Sprintf("go run cannot build it: %v\n%s", err, out))
	}
	for _, dep := range []string{"", "acme"} {
		t.Run("prefix "+deploymentName(dep), func(t *testing.T) {
			config, err := patterns(t, nil, "--token-prefix", dep, "--format", "gitleaks")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cfgFile := filepath.Join(t.TempDir(), "gitleaks.toml")
			if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			ruleOf := map[token.Prefix]string{}
			want := map[string]string{} // secret -> its rule
			var real, misses []string
			for _, k := range token.Kinds {
				if k.Prefix == token.ClientID {
					ruleOf[k.Prefix] = ""
					continue
				}
				ruleOf[k.Prefix] = deploymentName(dep) + "-" + strings.ReplaceAll(k.Name, "_", "-")
				for range 3 {
					s := token.NewWith(dep, k.Prefix)
					real = append(real, s)
					want[s] = ruleOf[k.Prefix]
				}
				s := token.NewWith(dep, k.Prefix)
				other := "acmf"
				if dep == "acme" {
					other = ""
				}
				misses = append(misses, s[:len(s)-1], s+"x", s+"9", "x"+s, strings.ToUpper(s[:4])+s[4:],
					token.NewWith(other, k.Prefix))
			}
			misses = append(misses, token.NewWith(dep, token.ClientID), token.NewWith(dep, token.Session))
			// One real secret of each kind in each of the shapes it leaks in.
			files := map[string]string{}
			for i, s := range real {
				switch i % 5 {
				case 0:
					files[".env"] += fmt.Sprintf("GATEHOUSE_KEY_%d=%s\n", i, s)
				case 1:
					files["deploy.yaml"] += fmt.Sprintf("env:\n  - name: KEY_%d\n    value: \"%s\"\n", i, s)
				case 2:
					files["config.json"] += fmt.Sprintf("{\"token\": %q}\n", s)
				case 3:
					files["history"] += fmt.Sprintf("curl -H 'Authorization: Bearer %s' https://api.example/v1/me\n", s)
				case 4:
					files["notes.md"] += fmt.Sprintf("see https://api.example/cb?token=%s&x=1 for it\n", s)
				}
			}
			for i, s := range misses {
				files["misses.txt"] += fmt.Sprintf("miss %d: %s\n", i, s)
			}
			ghp := "ghp_" + base62(36)
			files["github.txt"] = "my_token: " + ghp + "\n"
			for name, body := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			report := filepath.Join(t.TempDir(), "report.json")
			out, err := gitleaks(t, "dir", dir, "--config", cfgFile, "--report-format", "json", "--report-path", report,
				"--no-banner", "--exit-code", "0", "--redact=0")
			if err != nil {
				t.Fatalf("gitleaks: %v\n%s", err, out)
			}
			raw, err := os.ReadFile(report)
			if err != nil {
				t.Fatal(err)
			}
			var findings []gitleaksFinding
			if err := json.Unmarshal(raw, &findings); err != nil {
				t.Fatalf("report: %v\n%s", err, raw)
			}
			got := map[string]string{}
			github := false
			for _, f := range findings {
				switch {
				case strings.HasPrefix(f.RuleID, deploymentName(dep)+"-"):
					if prev, ok := got[f.Secret]; ok && prev != f.RuleID {
						t.Errorf("%s found by %s and %s", f.Secret, prev, f.RuleID)
					}
					got[f.Secret] = f.RuleID
					if want[f.Secret] == "" {
						t.Errorf("rule %s found %q (%s:%d), not a secret this deployment issued", f.RuleID, f.Secret, f.File, f.StartLine)
					}
				case f.Secret == ghp:
					github = true
				case slices.Contains(real, f.Secret):
					// A default rule may find a real secret as well.
				default:
					t.Errorf("a default rule %s found %q (%s:%d)", f.RuleID, f.Secret, filepath.Base(f.File), f.StartLine)
				}
			}
			for s, rule := range want {
				if got[s] != rule {
					t.Errorf("%s: found by %q, want %q", s, got[s], rule)
				}
			}
			if !github {
				t.Errorf("the default rules did not apply: no finding of the GitHub token; %d findings", len(findings))
			}
			if len(got) != len(real) {
				t.Errorf("%d secrets found by the Gatehouse rules, want %d", len(got), len(real))
			}
		})
	}
}

// deploymentName names a deployment's rules, as token.Gitleaks does.
func deploymentName(dep string) string {
	if dep == "" {
		return "gatehouse"
	}
	return dep
}

// base62 returns n random base62 characters.
func base62(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
