package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

// patterns runs gatehouse token-patterns with args and the environment e,
// and returns what it printed.
func patterns(t *testing.T, e map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Main(context.Background(), append([]string{"token-patterns"}, args...), env(e), &out, &errb)
	return out.String(), err
}

// TestTokenPatternsCommand: the command prints, for the deployment named
// by --token-prefix (over GATEHOUSE_TOKEN_PREFIX) or none, the kinds'
// patterns one a line (the default format), or the Gitleaks or the
// TruffleHog configuration; an invalid name or format is an error and
// prints nothing.
func TestTokenPatternsCommand(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		dep  string
	}{
		{"default", nil, nil, ""},
		{"flag", nil, []string{"--token-prefix", "acme"}, "acme"},
		{"environment", map[string]string{"GATEHOUSE_TOKEN_PREFIX": "acme"}, nil, "acme"},
		{"flag over environment", map[string]string{"GATEHOUSE_TOKEN_PREFIX": "acme"}, []string{"--token-prefix", "zeta9"}, "zeta9"},
	} {
		want := map[string]string{
			"text":       strings.Join(token.Patterns(c.dep), "\n") + "\n",
			"gitleaks":   token.Gitleaks(c.dep),
			"trufflehog": token.TruffleHog(c.dep),
		}
		for format, w := range want {
			args := append(append([]string{}, c.args...), "--format", format)
			got, err := patterns(t, c.env, args...)
			if err != nil || got != w {
				t.Errorf("%s, --format %s: %v\n%s\nwant\n%s", c.name, format, err, got, w)
			}
		}
		if got, err := patterns(t, c.env, c.args...); err != nil || got != want["text"] {
			t.Errorf("%s, no --format: %v\n%s", c.name, err, got)
		}
	}
	text, _ := patterns(t, nil)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 5 || lines[2] != `api_token	\bgak_[0-9A-Za-z]{49}\b` {
		t.Errorf("default patterns:\n%s", text)
	}
	for _, bad := range [][]string{
		{"--token-prefix", "Acme"}, {"--token-prefix", "a"}, {"--token-prefix", "acme_"},
		{"--format", "json"}, {"--format", ""}, {"--nope"},
	} {
		if out, err := patterns(t, nil, bad...); err == nil || out != "" {
			t.Errorf("%v: %v, printed %q", bad, err, out)
		}
	}
	if out, err := patterns(t, map[string]string{"GATEHOUSE_TOKEN_PREFIX": "Bad-Name"}); err == nil || out != "" {
		t.Errorf("an invalid GATEHOUSE_TOKEN_PREFIX: %v, printed %q", err, out)
	}
}

// TestTokenPatternsDocs: what docs/leak-response.md shows under "Scanner
// patterns" is what the command prints: the text block whole, and every
// line of the Gitleaks and TruffleHog blocks, rule by rule, in the
// printed configuration; the default prefix's pattern it names is
// printed, and every token-patterns command line it gives runs.
func TestTokenPatternsDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/leak-response.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc)
	if i := strings.Index(section, "## Scanner patterns"); i < 0 {
		t.Fatal("no Scanner patterns section")
	} else {
		section = section[i:]
	}
	if i := strings.Index(section, "\n## GitHub secret scanning"); i > 0 {
		section = section[:i]
	}
	blocks := regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != 3 || blocks[0][1] != "" || blocks[1][1] != "toml" || blocks[2][1] != "yaml" {
		t.Fatalf("want a text, a toml and a yaml block, found %d", len(blocks))
	}
	// The documented blocks are acme's.
	text, _ := patterns(t, nil, "--token-prefix", "acme")
	if blocks[0][2] != text {
		t.Errorf("the documented patterns:\n%s\nthe command prints:\n%s", blocks[0][2], text)
	}
	for i, format := range map[int]string{1: "gitleaks", 2: "trufflehog"} {
		printed, _ := patterns(t, nil, "--token-prefix", "acme", "--format", format)
		sep := map[string]string{"gitleaks": "\n\n", "trufflehog": "\n  - "}[format]
		for _, part := range strings.Split(blocks[i][2], sep) {
			if !strings.Contains(printed, part) {
				t.Errorf("%s: the documented %q is not in what the command prints:\n%s", format, part, printed)
			}
		}
	}
	defaults, _ := patterns(t, nil)
	for _, p := range regexp.MustCompile("`(\\\\bg[a-z]{2}_\\[0-9A-Za-z\\]\\{49\\}\\\\b)`").FindAllStringSubmatch(section, -1) {
		if !strings.Contains(defaults, "\t"+p[1]+"\n") {
			t.Errorf("the documented default pattern %s is not printed", p[1])
		}
	}
	cmds := regexp.MustCompile("`gatehouse token-patterns([^`>]*)").FindAllStringSubmatch(section, -1)
	if len(cmds) < 3 {
		t.Fatalf("%d token-patterns command lines", len(cmds))
	}
	for _, c := range cmds {
		args := strings.Fields(strings.NewReplacer("[", "", "]", "").Replace(c[1]))
		if out, err := patterns(t, nil, args...); err != nil || out == "" {
			t.Errorf("gatehouse token-patterns%s: %v", c[1], err)
		}
	}
}
