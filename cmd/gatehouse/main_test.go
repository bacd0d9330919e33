package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testcert"
	"github.com/gatehouse/gatehouse/server"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if err := Main(context.Background(), []string{"version"}, env(nil), &out, &errb); err != nil || !strings.HasPrefix(out.String(), "gatehouse ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := Main(context.Background(), []string{"nope"}, env(nil), &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := Main(context.Background(), []string{"serve", "--refresh-grace", "soon"}, env(nil), &out, &errb); err == nil {
		t.Fatal("bad duration accepted")
	}
}

func TestFlagsOverEnvironment(t *testing.T) {
	cfg, lo, err := parseConfig("serve", []string{"--addr", "127.0.0.1:9999"}, env(map[string]string{
		"GATEHOUSE_ADDR": "127.0.0.1:1111", "GATEHOUSE_DATABASE_URL": "/tmp/x.db", "GATEHOUSE_LOG_FORMAT": "json",
		"GATEHOUSE_API_TOKEN_HEADER": "X-Auth-Token",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9999" || cfg.DatabaseURL != "/tmp/x.db" || lo.logFormat != "json" || cfg.APITokenHeader != "X-Auth-Token" {
		t.Fatalf("config %+v %+v", cfg, lo)
	}
}

// TestServeAndMigrate runs the real commands: migrate, then serve until the
// context ends, with a graceful shutdown.
func TestServeAndMigrate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "g.db")
	e := env(map[string]string{"GATEHOUSE_DATABASE_URL": db, "GATEHOUSE_ADDR": "127.0.0.1:0"})
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"migrate"}, e, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var sout, serr servertest.SyncBuffer
	go func() { done <- Main(ctx, []string{"serve"}, e, &sout, &serr) }()
	// The generated password is printed once.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(sout.String(), "shown once") {
		if time.Now().After(deadline) {
			t.Fatalf("no bootstrap message; stderr %s", serr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestBinary builds the command as the README does and checks it serves.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gatehouse")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// The binary prints the revision its build information holds (none
	// when the build did not stamp one, e.g. under -buildvcs=false).
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	wantRev := "revision unknown"
	for _, line := range strings.Split(string(info), "\n") {
		if _, rev, ok := strings.Cut(line, "vcs.revision="); ok {
			wantRev = "revision " + strings.TrimSpace(rev)
		}
	}
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil || !strings.HasPrefix(string(out), "gatehouse (devel) "+wantRev) {
			t.Fatalf("%s: %v %q, want %q", arg, err, out, wantRev)
		}
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:18181", "--database-url", filepath.Join(dir, "g.db"))
	cmd.Env = append(cmd.Environ(), "GATEHOUSE_ADMIN_PASSWORD=binary test password")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var resp *http.Response
	for i := 0; i < 200; i++ {
		if resp, err = http.Get("http://127.0.0.1:18181/healthz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, err = http.Post("http://127.0.0.1:18181/authorization?username=admin@example.com&password=binary+test+password", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("authorization %d", resp.StatusCode)
	}
}

// TestConfigRefusesNonsense checks that settings that make no sense are
// errors that say what is wrong, and that sane ones are read as meant.
func TestConfigRefusesNonsense(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // part of the error; empty: no error
	}{
		{name: "defaults", want: ""},
		{name: "mysql URL", args: []string{"--database-url", "mysql://u:p@db/gatehouse"}, want: `scheme "mysql" is not supported`},
		{name: "mysql URL from the environment", env: map[string]string{"GATEHOUSE_DATABASE_URL": "mysql://db/x"}, want: "not supported"},
		{name: "unknown scheme", args: []string{"--database-url", "sqlserver://db"}, want: "not supported"},
		{name: "postgres URL", args: []string{"--database-url", "postgres://u:p@db:5432/gatehouse?sslmode=disable"}},
		{name: "postgres without //", args: []string{"--database-url", "postgres:db"}, want: "postgres://"},
		{name: "sqlite URL", args: []string{"--database-url", "sqlite:///var/lib/gatehouse/g.db"}},
		{name: "plain path", args: []string{"--database-url", "data/g.db"}},
		{name: "log level verbose", args: []string{"--log-level", "verbose"}, want: `log-level: "verbose"`},
		{name: "log level WARN", args: []string{"--log-level", "WARN"}},
		{name: "log level from the environment", env: map[string]string{"GATEHOUSE_LOG_LEVEL": "trace"}, want: "log-level"},
		{name: "log format", args: []string{"--log-format", "xml"}, want: "log-format"},
		{name: "negative grace", args: []string{"--refresh-grace", "-1s"}, want: "refresh-grace: \"-1s\" must not be negative"},
		{name: "negative read timeout", args: []string{"--read-timeout", "-5s"}, want: "read-timeout"},
		{name: "zero write timeout", args: []string{"--write-timeout", "0s"}, want: "write-timeout: must be longer than zero"},
		{name: "timeout not a duration", args: []string{"--read-timeout", "30"}, want: "not a duration"},
		{name: "zero grace is allowed", args: []string{"--refresh-grace", "0s"}},
		{name: "public URL with a path", args: []string{"--public-url", "https://auth.example.com/x"}, want: "public-url"},
		{name: "public URL without scheme", args: []string{"--public-url", "auth.example.com"}, want: "public-url"},
		{name: "public URL ftp", args: []string{"--public-url", "ftp://auth.example.com"}, want: "public-url"},
		{name: "public URL", args: []string{"--public-url", "https://auth.example.com/"}},
		{name: "trusted proxies", args: []string{"--trusted-proxies", "10.0.0.0/8, 192.168.1.1"}},
		{name: "trusted proxy name", args: []string{"--trusted-proxies", "lb.internal"}, want: "trusted-proxies"},
		{name: "trusted proxy bad CIDR", env: map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/40"}, want: "trusted-proxies"},
		{name: "cert without key", args: []string{"--tls-cert", "c.pem"}, want: "tls-cert and tls-key"},
		{name: "prefix", args: []string{"--management-prefix", "/gatehouse"}},
		{name: "prefix with trailing slash", args: []string{"--management-prefix", "/gatehouse/"}, want: "management-prefix"},
		{name: "prefix without slash", args: []string{"--management-prefix", "gatehouse"}, want: "management-prefix"},
		{name: "prefix over the token endpoint", args: []string{"--management-prefix", "/oauth/x"}, want: "stays where it is"},
		{name: "prefix with dots", args: []string{"--management-prefix", "/a/../b"}, want: "management-prefix"},
		{name: "upstream", args: []string{"--upstream", "localhost:9000"}, want: "upstream"},
		{name: "zero proxy timeout", args: []string{"--proxy-timeout", "0s"}, want: "proxy-timeout: must be longer than zero"},
		{name: "proxy timeout from the environment", env: map[string]string{"GATEHOUSE_PROXY_TIMEOUT": "soon"}, want: "proxy-timeout"},
		{name: "max conns not a number", args: []string{"--max-conns-per-ip", "many"}, want: "max-conns-per-ip"},
		{name: "max conns negative", env: map[string]string{"GATEHOUSE_MAX_CONNS_PER_IP": "-1"}, want: "max-conns-per-ip"},
		{name: "max conns off", args: []string{"--max-conns-per-ip", "0"}},
		{name: "console host with a port", args: []string{"--console-host", "admin.example.com:8443"}, want: "console-host"},
		{name: "console host URL", args: []string{"--console-host", "https://admin.example.com"}, want: "console-host"},
		{name: "console host", args: []string{"--console-host", "admin.example.com"}},
		{name: "same origin and console addr", args: []string{"--console-same-origin", "--console-addr", "127.0.0.1:9090"}, want: "console-same-origin goes alone"},
		{name: "same origin not a boolean", env: map[string]string{"GATEHOUSE_CONSOLE_SAME_ORIGIN": "yes please"}, want: "GATEHOUSE_CONSOLE_SAME_ORIGIN"},
		{name: "retention in days", args: []string{"--retention", "30d"}},
		{name: "retention in hours", env: map[string]string{"GATEHOUSE_RETENTION": "720h"}},
		{name: "retention zero", args: []string{"--retention", "0d"}, want: "retention"},
		{name: "retention words", args: []string{"--retention", "a month"}, want: "retention"},
		{name: "retention shorter than the grace", args: []string{"--retention", "1s", "--refresh-grace", "5s"}, want: "shorter than refresh-grace"},
		{name: "cache size", args: []string{"--cache-size", "64MiB"}},
		{name: "cache size in bytes", env: map[string]string{"GATEHOUSE_CACHE_SIZE": "200000000"}},
		{name: "cache size too small", args: []string{"--cache-size", "1KB"}, want: "cache-size"},
		{name: "cache size unit", args: []string{"--cache-size", "64 parsecs"}, want: "cache-size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseConfig("serve", tc.args, env(tc.env), io.Discard)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

// TestEdgeSettings reads the console and gateway bounds from flags and
// from the environment, and their defaults.
func TestEdgeSettings(t *testing.T) {
	cfg, _, err := parseConfig("serve", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ProxyTimeout != 60*time.Second || cfg.MaxConnsPerIP != 256 || cfg.ConsoleSameOrigin || cfg.ConsoleAddr != "" || cfg.ConsoleHost != "" {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg, _, err = parseConfig("serve", []string{"--console-same-origin", "--max-conns-per-ip", "10"}, env(map[string]string{
		"GATEHOUSE_PROXY_TIMEOUT": "90s", "GATEHOUSE_MAX_CONNS_PER_IP": "5",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ProxyTimeout != 90*time.Second || cfg.MaxConnsPerIP != 10 || !cfg.ConsoleSameOrigin {
		t.Fatalf("config %+v", cfg)
	}
	cfg, _, err = parseConfig("serve", nil, env(map[string]string{
		"GATEHOUSE_CONSOLE_ADDR": "127.0.0.1:9090", "GATEHOUSE_CONSOLE_HOST": "Admin.Example.com", "GATEHOUSE_CONSOLE_SAME_ORIGIN": "false",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConsoleAddr != "127.0.0.1:9090" || cfg.ConsoleHost != "Admin.Example.com" || cfg.ConsoleSameOrigin {
		t.Fatalf("config %+v", cfg)
	}
}

// TestConfigSizes: --retention and --cache-size are read as meant.
func TestConfigSizes(t *testing.T) {
	cfg, _, err := parseConfig("serve", []string{"--retention", "30d", "--cache-size", "64MiB"}, env(nil), io.Discard)
	if err != nil || cfg.Retention != 30*24*time.Hour || cfg.CacheSize != 64<<20 {
		t.Fatalf("retention %s, cache size %d, %v", cfg.Retention, cfg.CacheSize, err)
	}
	cfg, _, err = parseConfig("serve", nil, env(nil), io.Discard)
	if err != nil || cfg.Retention != 90*24*time.Hour || cfg.CacheSize != 128<<20 {
		t.Fatalf("defaults: retention %s, cache size %d, %v", cfg.Retention, cfg.CacheSize, err)
	}
}

func TestConfigValues(t *testing.T) {
	cfg, lo, err := parseConfig("serve", []string{"--public-url", "https://auth.example.com/", "--read-timeout", "3s",
		"--log-level", "debug"}, env(map[string]string{
		"GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1", "GATEHOUSE_MANAGEMENT_PREFIX": "/gatehouse",
		"GATEHOUSE_WRITE_TIMEOUT": "2m", "GATEHOUSE_TLS_CERT": "c.pem", "GATEHOUSE_TLS_KEY": "k.pem",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != "https://auth.example.com/" || cfg.TrustedProxies.String() != "10.0.0.0/8,127.0.0.1/32" ||
		cfg.ManagementPrefix != "/gatehouse" || cfg.ReadTimeout != 3*time.Second || cfg.WriteTimeout != 2*time.Minute ||
		cfg.TLSCert != "c.pem" || cfg.TLSKey != "k.pem" || lo.level != slog.LevelDebug {
		t.Fatalf("config %+v %+v", cfg, lo)
	}
}

// TestUnknownDatabaseSchemeCreatesNothing runs serve with a mysql:// URL:
// it fails with a clear message and leaves no directory or file behind.
func TestUnknownDatabaseSchemeCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var errb bytes.Buffer
	err := Main(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--database-url", "mysql://root@db/gatehouse"}, env(nil), io.Discard, &errb)
	if err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("serve: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestGatewayRoutesFlag reads --gateway-routes over GATEHOUSE_GATEWAY_ROUTES,
// and runs serve with bad rules files: each stops the server before it
// creates a store, with a message naming the file and what is wrong.
func TestGatewayRoutesFlag(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg, _, err := parseConfig("serve", nil, env(map[string]string{"GATEHOUSE_GATEWAY_ROUTES": "env.yaml"}), io.Discard)
	if err != nil || cfg.GatewayRoutes != "env.yaml" {
		t.Fatalf("from the environment: %q %v", cfg.GatewayRoutes, err)
	}
	cfg, _, err = parseConfig("serve", []string{"--gateway-routes", "flag.json"}, env(map[string]string{"GATEHOUSE_GATEWAY_ROUTES": "env.yaml"}), io.Discard)
	if err != nil || cfg.GatewayRoutes != "flag.json" {
		t.Fatalf("flag over the environment: %q %v", cfg.GatewayRoutes, err)
	}
	files := map[string]string{
		"unknown.yaml": "routes:\n  - pattern: GET /v1/items/\n    scope: [items:read]\n",
		"neither.json": `{"routes": [{"pattern": "GET /v1/items/"}]}`,
		"pattern.yaml": "routes:\n  - pattern: GET /v1/items/{id\n    scopes: [items:read]\n",
		"routes.conf":  `{"routes": []}`,
	}
	for name, text := range files {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{
		"unknown.yaml": `gateway-routes unknown.yaml: line 3: unknown field "scope"`,
		"neither.json": `gateway-routes neither.json: route 1 (pattern "GET /v1/items/"): needs scopes, or public: true`,
		"pattern.yaml": `gateway-routes pattern.yaml: route 1 (pattern "GET /v1/items/{id"): parsing "GET /v1/items/{id": at offset 14: bad wildcard segment (must end with '}')`,
		"routes.conf":  "gateway-routes routes.conf: the file name must end in .json, .yaml or .yml",
		"missing.yaml": "gateway-routes: open missing.yaml: no such file or directory",
	} {
		err := Main(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--database-url", "sqlite:state/g.db",
			"--gateway-routes", name}, env(nil), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serve with %s: %v, want %q", name, err, want)
		}
	}
	if _, err := os.Stat("state"); err == nil {
		t.Fatal("a bad rules file let serve create the store")
	}
}

// TestSQLitePathLoggedAbsolute starts serve with a relative SQLite path and
// checks that the log names the absolute file and says a new store was
// created, once: the second start on the same file says nothing of the kind.
func TestSQLitePathLoggedAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for i, wantNew := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		var serr servertest.SyncBuffer
		done := make(chan error, 1)
		go func() {
			done <- Main(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--database-url", "sqlite:state/g.db"},
				env(map[string]string{"GATEHOUSE_ADMIN_PASSWORD": "a long enough password"}), io.Discard, &serr)
		}()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(serr.String(), "gatehouse listening") {
			if time.Now().After(deadline) {
				t.Fatalf("start %d: %s", i, serr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		abs := filepath.Join(dir, "state", "g.db")
		if !strings.Contains(serr.String(), "location="+abs) {
			t.Fatalf("start %d: no absolute path %s in %s", i, abs, serr.String())
		}
		if got := strings.Contains(serr.String(), "created a new, empty SQLite store"); got != wantNew {
			t.Fatalf("start %d: new-store line %v, want %v:\n%s", i, got, wantNew, serr.String())
		}
	}
}

// TestServeTLSReloadsOnSIGHUP serves HTTPS from the real command and sends
// the process SIGHUP after renewing the certificate files: new connections
// get the new certificate, and the server keeps running.
func TestServeTLSReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewAuthority(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := ca.Issue(t, certFile, keyFile, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var serr servertest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--database-url", filepath.Join(dir, "g.db"),
			"--tls-cert", certFile, "--tls-key", keyFile, "--log-format", "json"},
			env(map[string]string{"GATEHOUSE_ADMIN_PASSWORD": "a long enough password"}), io.Discard, &serr)
	}()
	addr := ""
	deadline := time.Now().Add(20 * time.Second)
	for addr == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line: %s", serr.String())
		}
		time.Sleep(20 * time.Millisecond)
		for _, line := range strings.Split(serr.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "gatehouse listening" {
				addr, _ = m["addr"].(string)
				if m["url"] != "https://"+addr {
					t.Fatalf("listening line %s", line)
				}
			}
		}
	}
	serial := func() string {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true}}
		resp, err := c.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("served %s", resp.Proto)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	if serial() != first.SerialNumber.String() {
		t.Fatal("not the first certificate")
	}
	second := ca.Issue(t, certFile, keyFile, "127.0.0.1")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for serial() != second.SerialNumber.String() {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("still the old certificate after SIGHUP: %s", serr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(serr.String(), "TLS certificate reloaded") {
		t.Fatalf("no reload line: %s", serr.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPlatformScopesFlag reads --platform-scopes (commas or spaces) over
// GATEHOUSE_PLATFORM_SCOPES, and a malformed name stops the server.
func TestPlatformScopesFlag(t *testing.T) {
	cfg, _, err := parseConfig("serve", []string{"--platform-scopes", "ops:admin, billing.read"},
		env(map[string]string{"GATEHOUSE_PLATFORM_SCOPES": "env:x"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(cfg.PlatformScopes); string(got) != `["ops:admin","billing.read"]` {
		t.Fatalf("platform scopes %s", got)
	}
	cfg.PlatformScopes = server.ParsePlatformScopes("ok bad/name")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "platform-scopes") {
		t.Fatalf("a malformed platform scope: %v", err)
	}
}
