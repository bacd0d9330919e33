package token_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

func TestDeploymentPrefix(t *testing.T) {
	codes := map[token.Prefix]string{token.AccessToken: "at", token.RefreshToken: "rt", token.APIToken: "ak",
		token.ClientSecret: "cs", token.ClientID: "ci", token.Session: "se"}
	for _, name := range []string{"ab", "acme", "z9", "abcdefghijkl"} {
		for _, p := range prefixes {
			s := token.NewWith(name, p)
			if !strings.HasPrefix(s, name+"_"+codes[p]+"_") || len(s) != len(name)+4+43+6 {
				t.Fatalf("%s %s: %q", name, p, s)
			}
			if got, ok := token.Parse(s); !ok || got != p || !token.Valid(s, p) {
				t.Fatalf("Parse(%q) = %q %v", s, got, ok)
			}
			if h := token.Hint(s); h != s[:len(name)+4+4] {
				t.Fatalf("Hint(%q) = %q", s, h)
			}
		}
	}
	if token.NewWith("", token.APIToken)[:4] != "gak_" {
		t.Fatal("no deployment name: not the default prefix")
	}
	for _, bad := range []string{"", "a", "Acme", "1acme", "ac-me", "abcdefghijklm", "acme_"} {
		if bad != "" && token.CheckDeployment(bad) == nil {
			t.Errorf("CheckDeployment(%q) accepted", bad)
		}
	}
	if token.CheckDeployment("acme") != nil {
		t.Fatal("acme refused")
	}
}

// TestDeploymentParseRejects: near misses of a deployment's token —
// another kind code, a changed name (the checksum covers it), a bad
// name, a flipped body or checksum character — are refused.
func TestDeploymentParseRejects(t *testing.T) {
	good := token.NewWith("acme", token.APIToken)
	cases := map[string]string{
		"unknown code":        "acme_zz_" + good[8:],
		"other code":          "acme_at_" + good[8:],
		"name changed":        "acmf_ak_" + good[8:],
		"upper-case name":     "ACME_ak_" + good[8:],
		"name from a digit":   "1cme_ak_" + good[8:],
		"name too long":       "abcdefghijklm_ak_" + good[8:],
		"one-letter name":     "a_ak_" + good[8:],
		"no separator":        "acme-ak_" + good[8:],
		"body changed":        good[:20] + string(good[20]^1) + good[21:],
		"checksum changed":    good[:len(good)-1] + string(good[len(good)-1]^1),
		"truncated":           good[:len(good)-1],
		"default with a tail": token.New(token.APIToken) + "xx",
	}
	for name, s := range cases {
		if _, ok := token.Parse(s); ok {
			t.Errorf("%s: accepted %q", name, s)
		}
	}
}

// TestPatterns: each printed pattern, and each rule of the Gitleaks and
// TruffleHog configurations (both tools use Go's regexp), matches real
// tokens of its kind, in text, and no other kind's, no other deployment's
// and no near miss.
func TestPatterns(t *testing.T) {
	for _, dep := range []string{"", "acme"} {
		gitleaks := regexp.MustCompile(`(?m)^regex = '''(.*)'''$`).FindAllStringSubmatch(token.Gitleaks(dep), -1)
		truffle := regexp.MustCompile(`(?m)^      ([a-z_]+): '(.*)'$`).FindAllStringSubmatch(token.TruffleHog(dep), -1)
		if len(gitleaks) != 4 || len(truffle) != 4 {
			t.Fatalf("%q: %d Gitleaks rules, %d TruffleHog detectors", dep, len(gitleaks), len(truffle))
		}
		lines := token.Patterns(dep)
		for i, k := range token.Kinds {
			name, pat, _ := strings.Cut(lines[i], "\t")
			if name != k.Name {
				t.Fatalf("line %d: %q", i, lines[i])
			}
			res := []*regexp.Regexp{regexp.MustCompile(pat)}
			if k.Prefix != token.ClientID {
				res = append(res, regexp.MustCompile(gitleaks[i][1]), regexp.MustCompile(truffle[i][2]))
			}
			for _, re := range res {
				for range 50 {
					s := token.NewWith(dep, k.Prefix)
					if got := re.FindString("export KEY=\"" + s + "\"\n"); got != s {
						t.Fatalf("%s %q: found %q in text with %q", k.Name, dep, got, s)
					}
				}
				for _, other := range token.Kinds {
					if other.Prefix != k.Prefix && re.MatchString(token.NewWith(dep, other.Prefix)) {
						t.Fatalf("%s pattern %q matches a %s", k.Name, re, other.Name)
					}
				}
				s := token.NewWith(dep, k.Prefix)
				for _, miss := range []string{s[:len(s)-1], s + "x", token.NewWith(otherDeployment(dep), k.Prefix)} {
					if re.MatchString(miss) {
						t.Fatalf("%s pattern %q matches the near miss %q", k.Name, re, miss)
					}
				}
			}
		}
	}
}

func otherDeployment(dep string) string {
	if dep == "acme" {
		return "acmf"
	}
	return "acme"
}

func BenchmarkParseDeployment(b *testing.B) {
	s := token.NewWith("acme", token.AccessToken)
	b.ReportAllocs()
	for b.Loop() {
		token.Parse(s)
	}
}
