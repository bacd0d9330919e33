package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/localserver"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/store"
)

// settingValues are a valid value, other than the default, of each
// setting: as a flag value and as YAML. A setting missing here gets one
// guessed from its default (a bool flipped, a duration or a number raised);
// when no guess works the test asks for an entry.
func settingValues(dir string) map[string][2]string {
	return map[string][2]string{
		"addr":                   {"127.0.0.1:18080", "127.0.0.1:18080"},
		"ops-addr":               {"127.0.0.1:19090", `"127.0.0.1:19090"`},
		"database-url":           {filepath.Join(dir, "g.db"), strconv.Quote(filepath.Join(dir, "g.db"))},
		"admin-email":            {"ops@example.com", "ops@example.com"},
		"admin-password":         {"a password from a file", "'a password from a file'"},
		"token-key":              {"k3y: with a colon", `"k3y: with a colon"`},
		"api-token-header":       {"X-Key", "X-Key"},
		"user-email-header":      {"X-As", "X-As"},
		"burst-remaining-header": {"X-Burst", "X-Burst"},
		"daily-remaining-header": {"X-Daily", "X-Daily"},
		"rate-limit-status":      {"429", "429"},
		"redis-url":              {"redis://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0"},
		"redis-prefix":           {"p1:", "'p1:'"},
		"upstream":               {"http://127.0.0.1:9/", "http://127.0.0.1:9/"},
		"gateway-routes":         {filepath.Join(dir, "routes.yaml"), strconv.Quote(filepath.Join(dir, "routes.yaml"))},
		"management-prefix":      {"/gatehouse", "/gatehouse"},
		"public-url":             {"https://auth.example.com", "https://auth.example.com"},
		"trusted-proxies":        {"10.0.0.0/8,192.168.1.1", "[10.0.0.0/8, 192.168.1.1]"},
		"forwarded-header":       {"forwarded", "forwarded"},
		"tls-cert":               {filepath.Join(dir, "cert.pem"), strconv.Quote(filepath.Join(dir, "cert.pem"))},
		"tls-key":                {filepath.Join(dir, "key.pem"), strconv.Quote(filepath.Join(dir, "key.pem"))},
		"log-format":             {"json", "json"},
		"log-level":              {"debug", "debug"},
		"refresh-grace":          {"7s", "7s"},
		"read-timeout":           {"11s", "11s"},
		"write-timeout":          {"1m13s", "1m13s"},
		"console-addr":           {"127.0.0.1:18443", "127.0.0.1:18443"},
		"console-host":           {"admin.example.com", "admin.example.com"},
		"console-same-origin":    {"true", "true"},
		"dynamic-registration":   {"true", "true"},
		"gateway-resource":       {"https://api.example.com/mcp", "https://api.example.com/mcp"},
		"proxy-timeout":          {"2m", "2m"},
		"max-conns-per-ip":       {"64", "64"},
		"retention":              {"30d", "30d"},
		"cache-size":             {"256MiB", "256MiB"},
	}
}

// companions are settings that are only valid together.
var companions = map[string]string{"tls-cert": "tls-key", "tls-key": "tls-cert"}

// alone are settings that are valid only without some others, and are left
// out of the file with every setting (each is still tested on its own).
var alone = map[string]bool{"console-same-origin": true}

// serveFlags returns the flags of "gatehouse serve", read from the flag set
// a config file is applied to.
func serveFlags(t *testing.T) []*flag.Flag {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var flags []*flag.Flag
	inspectFlags = func(fs *flag.FlagSet) { fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) }) }
	defer func() { inspectFlags = nil }()
	if _, _, err := parseConfig("serve", []string{"--config", empty}, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	if len(flags) < 20 {
		t.Fatalf("only %d flags seen", len(flags))
	}
	return flags
}

type parsed struct {
	cfg any
	lo  logOptions
	err error
}

func parse(args []string, e map[string]string) parsed {
	cfg, lo, err := parseConfig("serve", args, env(e), io.Discard)
	return parsed{cfg, lo, err}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// guesses are values to try for a setting with no entry in settingValues.
func guesses(f *flag.Flag) []string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return []string{strconv.FormatBool(f.DefValue != "true")}
	}
	var out []string
	if d, err := time.ParseDuration(f.DefValue); err == nil {
		out = append(out, (d + time.Second).String())
	}
	if n, err := strconv.Atoi(f.DefValue); err == nil {
		out = append(out, strconv.Itoa(n+1))
	}
	return append(out, "x", "1", "true", "a,b", "127.0.0.1:1")
}

// TestConfigFileGivesEverySetting sets each flag of "gatehouse serve" from
// a config file, one at a time and then all in one file, and checks that
// the file gives the same configuration as the flag, which differs from
// the default: no setting is missing from the file or ignored in it.
func TestConfigFileGivesEverySetting(t *testing.T) {
	dir := t.TempDir()
	values := settingValues(dir)
	var all, allFile []string
	for _, f := range serveFlags(t) {
		if f.Name == configFlag {
			continue
		}
		// A setting that is only valid with a companion is given with it,
		// by flag and in the file alike.
		withFlag, withFile := []string{}, ""
		if c, ok := companions[f.Name]; ok {
			withFlag, withFile = []string{"--" + c + "=" + values[c][0]}, c+": "+values[c][1]+"\n"
		}
		def := parse(nil, nil)
		if def.err != nil {
			t.Fatalf("defaults: %v", def.err)
		}
		cands := [][2]string{}
		if v, ok := values[f.Name]; ok {
			cands = append(cands, v)
		} else {
			for _, g := range guesses(f) {
				cands = append(cands, [2]string{g, strconv.Quote(g)})
			}
		}
		found := false
		for _, v := range cands {
			// --name=value, the one form boolean flags take too.
			byFlag := parse(append(append([]string{}, withFlag...), "--"+f.Name+"="+v[0]), nil)
			if byFlag.err != nil || reflect.DeepEqual(byFlag, def) {
				continue
			}
			file := writeConfig(t, "# one setting\n"+withFile+f.Name+": "+v[1]+"\n")
			byFile := parse([]string{"--config", file}, nil)
			if byFile.err != nil {
				t.Errorf("%s: %s from a file: %v", f.Name, v[1], byFile.err)
			} else if !reflect.DeepEqual(byFile, byFlag) {
				t.Errorf("%s: the file gives %+v, the flag %+v", f.Name, byFile, byFlag)
			}
			if !alone[f.Name] {
				all = append(all, "--"+f.Name+"="+v[0])
				allFile = append(allFile, f.Name+": "+v[1])
			}
			found = true
			break
		}
		if !found {
			t.Errorf("no value of --%s changes the configuration; add one to settingValues", f.Name)
		}
	}
	byFlags := parse(all, nil)
	byFile := parse([]string{"--config", writeConfig(t, strings.Join(allFile, "\n")+"\n")}, nil)
	if byFlags.err != nil || byFile.err != nil || !reflect.DeepEqual(byFile, byFlags) {
		t.Fatalf("every setting: file %+v (%v), flags %+v (%v)", byFile, byFile.err, byFlags, byFlags.err)
	}
	t.Logf("a file with every setting:\n%s", strings.Join(allFile, "\n"))
}

// TestConfigPrecedence: flags over the environment over the file over the
// defaults, setting by setting.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "addr: 127.0.0.1:1001\nlog-format: json\nredis-prefix: file\nread-timeout: 3s\n")
	cfg, lo, err := parseConfig("serve", []string{"--config", file, "--addr", "127.0.0.1:1003"}, env(map[string]string{
		"GATEHOUSE_ADDR": "127.0.0.1:1002", "GATEHOUSE_REDIS_PREFIX": "env",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:1003" || cfg.RedisPrefix != "env" || lo.logFormat != "json" || cfg.ReadTimeout != 3*time.Second || cfg.WriteTimeout != 60*time.Second {
		t.Fatalf("addr %s prefix %s format %s read %s write %s", cfg.Addr, cfg.RedisPrefix, lo.logFormat, cfg.ReadTimeout, cfg.WriteTimeout)
	}
	// The file may be named by the environment too, and the flag given
	// after the settings it would lose to.
	cfg, _, err = parseConfig("serve", []string{"--addr", "127.0.0.1:1004"}, env(map[string]string{"GATEHOUSE_CONFIG": file}), io.Discard)
	if err != nil || cfg.Addr != "127.0.0.1:1004" || cfg.RedisPrefix != "file" {
		t.Fatalf("%v %s %s", err, cfg.Addr, cfg.RedisPrefix)
	}
}

// TestConfigFileRefusals: what is wrong in a file is refused with the file
// and line named, before anything starts.
func TestConfigFileRefusals(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"addr: 127.0.0.1:8080\n# a comment\nadress: 127.0.0.1:9090\n", `line 3: unknown setting "adress"`},
		{"\n\nlog-level: debug\n--addr: x\n", `line 4: unknown setting "--addr"`},
		{"config: other.yaml\n", `line 1: unknown setting "config"`},
		{"addr: a\naddr: b\n", `line 2: "addr" is set again (first on line 1)`},
		{"tls-cert:\n  file: x\n", `line 2: tls-cert: a value must be a plain value or a list`},
		{"trusted-proxies:\n  - 10.0.0.0/8\n  - {a: b}\n", `line 2: trusted-proxies: a list may hold only plain values`},
		{"- addr\n", `line 1: the file must be a mapping`},
		{"addr: x\n---\nlog-level: debug\n", `line 2: a second YAML document`},
		{"addr: [unclosed\n", `yaml:`},
		{"Addr: 127.0.0.1:1\n", `line 1: unknown setting "Addr"`},
	} {
		file := writeConfig(t, c.text)
		_, _, err := parseConfig("serve", []string{"--config", file}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%q: %v, want %q", c.text, err, c.want)
		}
	}
	// A value its setting refuses is refused as the flag would be.
	_, _, err := parseConfig("serve", []string{"--config", writeConfig(t, "log-format: xml\n")}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "log-format") {
		t.Errorf("log-format xml: %v", err)
	}
	_, _, err = parseConfig("serve", []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, env(nil), io.Discard)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// The command fails the same way.
	err = Main(context.Background(), []string{"serve", "--config", writeConfig(t, "adress: x\n")}, env(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("serve: %v", err)
	}
}

// TestEnvOfFlag: the environment variable a setting of the file yields to
// is the one its flag documents.
func TestEnvOfFlag(t *testing.T) {
	for _, f := range serveFlags(t) {
		want := "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if got := envOfFlag(f); got != want {
			t.Errorf("--%s: %s, want %s", f.Name, got, want)
		}
		if !strings.Contains(f.Usage, "($"+want+")") {
			t.Errorf("--%s does not name $%s", f.Name, want)
		}
	}
}

// TestComposeFile: compose.yaml is YAML, and every GATEHOUSE_* variable it
// sets is a setting of "gatehouse serve".
func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range serveFlags(t) {
		known[envOfFlag(f)] = true
	}
	nodes := 0
	for name, s := range compose.Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, "GATEHOUSE_") {
				if !known[k] {
					t.Errorf("%s: %s is not a setting", name, k)
				}
				if k == "GATEHOUSE_REDIS_URL" {
					nodes++
				}
			}
		}
	}
	if nodes != 2 || compose.Services["postgres"].Image == "" || compose.Services["redis"].Image == "" {
		t.Fatalf("compose.yaml is not two nodes on PostgreSQL and Redis: %+v", compose.Services)
	}
}

// TestRecoverReadsConfigFile: the break-glass command finds the store
// through serve's config file, unless its own flag names another.
func TestRecoverReadsConfigFile(t *testing.T) {
	dir := t.TempDir()
	inFile, onFlag := filepath.Join(dir, "file.db"), filepath.Join(dir, "flag.db")
	for _, db := range []string{inFile, onFlag} {
		cfg := localserver.Config(db)
		cfg.PasswordParams = servertest.FastPasswords
		srv, err := localserver.Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
	}
	file := writeConfig(t, "addr: 0.0.0.0:8080\nops-addr: 127.0.0.1:9090\nlog-format: json\ndatabase-url: "+strconv.Quote(inFile)+"\n")
	var out strings.Builder
	if err := Main(context.Background(), []string{"recover", "--email", "ops@example.com", "--config", file}, env(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ops@example.com is now an active operator-admin") || !hasUser(t, inFile, "ops@example.com") || hasUser(t, onFlag, "ops@example.com") {
		t.Fatalf("recover with the file: %q", out.String())
	}
	err := Main(context.Background(), []string{"recover", "--email", "dev@example.com", "--database-url", onFlag},
		env(map[string]string{"GATEHOUSE_CONFIG": file}), io.Discard, io.Discard)
	if err != nil || !hasUser(t, onFlag, "dev@example.com") || hasUser(t, inFile, "dev@example.com") {
		t.Fatalf("recover with the flag over the file: %v", err)
	}
	// A file with a wrong key stops recover too.
	err = Main(context.Background(), []string{"recover", "--email", "ops@example.com", "--config", writeConfig(t, "databse-url: x\n")}, env(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("wrong key: %v", err)
	}
}

// hasUser reports whether the SQLite store at path has a user with email.
func hasUser(t *testing.T, path, email string) bool {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.UserByEmail(context.Background(), email)
	return err == nil
}
