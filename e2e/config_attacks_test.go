package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/localserver"
	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// The configuration surface of gatehouse as docs/configuration.md
// describes it, attacked through the real binary: every setting as a
// flag, a GATEHOUSE_* variable and a key of the --config file; the
// documented defaults observed on a running server; bad values refused at
// once, naming the setting, before anything starts; secrets never echoed.

// configAdminPassword is the bootstrap password of every process here.
const configAdminPassword = "zz config admin password"

// configEnv is the test's environment without any GATEHOUSE_* or OTEL_*
// variable, plus extra (an empty value is kept: it means "set but empty").
func configEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GATEHOUSE_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// configResult is what one finished run of the binary gave.
type configResult struct {
	stdout, stderr string
	code           int
	// started: the process logged "gatehouse listening" (it was then
	// killed): it accepted its configuration.
	started bool
}

func (r configResult) output() string { return r.stdout + r.stderr }

// configLockedBuf is a bytes buffer safe for concurrent use.
type configLockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *configLockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *configLockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// configRun runs the binary with args in dir until it exits, or until it
// logs "gatehouse listening" (then it is killed and started is true), or
// for at most a minute.
func configRun(t *testing.T, dir string, env map[string]string, args ...string) configResult {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = configEnv(env)
	var stdout configLockedBuf
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	started := false
	rd := bufio.NewReader(pipe)
	for {
		line, err := rd.ReadString('\n')
		stderr.WriteString(line)
		if strings.Contains(line, "gatehouse listening") && !started {
			started = true
			cmd.Process.Kill()
		}
		if err != nil {
			break
		}
	}
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after a minute:\n%s", args, stderr.String())
	}
	return configResult{stdout: stdout.String(), stderr: stderr.String(), code: code, started: started}
}

// configProc is a running gatehouse serve.
type configProc struct {
	cmd    *exec.Cmd
	url    string
	stdout *configLockedBuf
	stderr *configLockedBuf
	done   chan struct{}
}

// configServe starts gatehouse serve on a free --addr with env and args
// (GATEHOUSE_ADMIN_PASSWORD defaults to configAdminPassword), and waits
// until the address answers.
func configServe(t *testing.T, dir string, env map[string]string, args ...string) *configProc {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	if _, ok := env["GATEHOUSE_ADMIN_PASSWORD"]; !ok {
		if env == nil {
			env = map[string]string{}
		}
		env["GATEHOUSE_ADMIN_PASSWORD"] = configAdminPassword
	}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Dir = dir
	cmd.Env = configEnv(env)
	p := &configProc{cmd: cmd, url: "http://" + addr, stdout: &configLockedBuf{}, stderr: &configLockedBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Any answer at all (404 with an ops listener) means listening.
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("gatehouse serve %v exited: %v\n%s", args, cmd.ProcessState, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v\n%s", err, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM (a graceful stop writes out every log
// line) and waits for it.
func (p *configProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30 s after SIGTERM")
	}
}

// waitLog waits until the process's stderr holds s.
func (p *configProc) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *configProc) client() *localserver.Client { return &localserver.Client{URL: p.url} }

// me signs in as the bootstrap admin and returns the answer of GET /v1/me.
func (p *configProc) me(t *testing.T) *localserver.Response {
	t.Helper()
	ctx := context.Background()
	tok, err := p.client().Login(ctx, "admin@example.com", configAdminPassword)
	if err != nil {
		t.Fatalf("login: %v\n%s", err, p.stderr.String())
	}
	r, err := p.client().Do(ctx, "GET", "/v1/me", nil, "Authorization", "Bearer "+tok)
	if err != nil || r.Status != 200 {
		t.Fatalf("GET /v1/me: %v %v", err, r)
	}
	return r
}

// configWrite writes content to dir/name and returns its path.
func configWrite(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// configCheckRefused fails unless r is a refusal at start: a non-zero
// exit, no listening, no panic or stack trace, and a message holding every
// one of want.
func configCheckRefused(t *testing.T, r configResult, want ...string) {
	t.Helper()
	if r.started || r.code == 0 {
		t.Fatalf("accepted (exit %d, started %v):\n%s", r.code, r.started, r.output())
	}
	for _, bad := range []string{"panic:", "goroutine ", "runtime error", ".go:"} {
		if strings.Contains(r.output(), bad) {
			t.Fatalf("a panic or stack trace (%q):\n%s", bad, r.output())
		}
	}
	msg := configMessage(r.stderr)
	for _, w := range want {
		if !regexp.MustCompile(`(^|[^A-Za-z])` + regexp.QuoteMeta(w) + `($|[^A-Za-z-])`).MatchString(msg) {
			t.Fatalf("the message does not name %q:\n%s", w, r.stderr)
		}
	}
}

// configMessage is the error a run printed: its stderr without log lines
// and the flag usage (which would name every setting, as would the test's
// own temporary paths in the log).
func configMessage(stderr string) string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if line == "" || strings.HasPrefix(line, "time=") || strings.HasPrefix(line, "{") ||
			strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "Usage of") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// configCase is one bad configuration.
type configCase struct {
	name string
	args []string          // flags after "serve --addr 127.0.0.1:0 --database-url DIR/s.db"
	env  map[string]string // environment
	file string            // content of a --config file, when not empty
	want []string          // what the message must name
}

// configRefuse runs each case against serve, in parallel, and checks
// that it is refused before the store is created (docs/configuration.md:
// "Settings are checked before anything starts").
func configRefuse(t *testing.T, cases []configCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			db := filepath.Join(dir, "s.db")
			args := []string{"serve", "--addr", "127.0.0.1:0", "--database-url", db}
			if c.file != "" {
				args = append(args, "--config", configWrite(t, dir, "gatehouse.yaml", c.file))
			}
			args = append(args, c.args...)
			env := map[string]string{"GATEHOUSE_ADMIN_PASSWORD": configAdminPassword}
			for k, v := range c.env {
				env[k] = v
			}
			r := configRun(t, dir, env, args...)
			configCheckRefused(t, r, c.want...)
			if _, err := os.Stat(db); err == nil {
				t.Errorf("the store %s was created before the setting was refused:\n%s", db, r.output())
			}
		})
	}
}

// TestConfigAttackRefusesBadValues: every setting's nonsense, as a flag, a
// variable or a file key, stops serve at once with a message naming the
// setting, before the store is opened.
func TestConfigAttackRefusesBadValues(t *testing.T) {
	configRefuse(t, []configCase{
		{name: "db-scheme", args: []string{"--database-url", "mysql://u@h/db"}, want: []string{"database URL", "mysql"}},
		{name: "db-postgres-no-slashes", args: []string{"--database-url", "postgres:db"}, want: []string{"database URL"}},
		{name: "db-sqlite-query", args: []string{"--database-url", "sqlite:x.db?mode=ro"}, want: []string{"database URL"}},
		{name: "log-level", args: []string{"--log-level", "verbose"}, want: []string{"log-level"}},
		{name: "log-level-empty-flag", args: []string{"--log-level", ""}, want: []string{"log-level"}},
		{name: "log-format", args: []string{"--log-format", "xml"}, want: []string{"log-format"}},
		{name: "log-format-env", env: map[string]string{"GATEHOUSE_LOG_FORMAT": "logfmt"}, want: []string{"log-format"}},
		{name: "log-format-file", file: "log-format: yaml\n", want: []string{"log-format"}},
		{name: "read-timeout-zero", args: []string{"--read-timeout", "0s"}, want: []string{"read-timeout"}},
		{name: "write-timeout-negative", env: map[string]string{"GATEHOUSE_WRITE_TIMEOUT": "-1s"}, want: []string{"write-timeout"}},
		{name: "proxy-timeout-zero-file", file: "proxy-timeout: 0\n", want: []string{"proxy-timeout"}},
		{name: "store-timeout-word", args: []string{"--store-timeout", "soon"}, want: []string{"store-timeout"}},
		{name: "store-timeout-overflow", args: []string{"--store-timeout", "9999999999h"}, want: []string{"store-timeout"}},
		{name: "refresh-grace-negative", args: []string{"--refresh-grace", "-5s"}, want: []string{"refresh-grace"}},
		{name: "refresh-grace-no-unit", args: []string{"--refresh-grace", "5"}, want: []string{"refresh-grace"}},
		{name: "retention-zero", args: []string{"--retention", "0d"}, want: []string{"retention"}},
		{name: "retention-negative-days", args: []string{"--retention", "-1d"}, want: []string{"retention"}},
		{name: "retention-fraction-days", args: []string{"--retention", "1.5d"}, want: []string{"retention"}},
		{name: "retention-under-grace", args: []string{"--retention", "1h", "--refresh-grace", "2h"}, want: []string{"retention", "refresh-grace"}},
		{name: "cache-size-small", args: []string{"--cache-size", "1MB"}, want: []string{"cache-size"}},
		{name: "cache-size-negative", args: []string{"--cache-size", "-1GiB"}, want: []string{"cache-size"}},
		{name: "cache-size-overflow", args: []string{"--cache-size", "9223372036854775807GiB"}, want: []string{"cache-size"}},
		{name: "cache-size-unit", args: []string{"--cache-size", "128mb"}, want: []string{"cache-size"}},
		{name: "rate-limit-status-200", args: []string{"--rate-limit-status", "200"}, want: []string{"rate-limit-status"}},
		{name: "rate-limit-status-600", env: map[string]string{"GATEHOUSE_RATE_LIMIT_STATUS": "600"}, want: []string{"rate-limit-status"}},
		{name: "rate-limit-status-word", file: "rate-limit-status: too-many\n", want: []string{"rate-limit-status"}},
		{name: "rate-limit-status-hex", file: "rate-limit-status: 0x1AD\n", want: []string{"rate-limit-status"}},
		{name: "max-conns-negative", args: []string{"--max-conns-per-ip", "-1"}, want: []string{"max-conns-per-ip"}},
		{name: "max-conns-overflow", args: []string{"--max-conns-per-ip", "99999999999999999999"}, want: []string{"max-conns-per-ip"}},
		{name: "max-conns-float", file: "max-conns-per-ip: 1e3\n", want: []string{"max-conns-per-ip"}},
		{name: "public-url-path", args: []string{"--public-url", "https://auth.example.com/x"}, want: []string{"public-url"}},
		{name: "public-url-user", args: []string{"--public-url", "https://u@auth.example.com"}, want: []string{"public-url"}},
		{name: "public-url-scheme", args: []string{"--public-url", "ftp://auth.example.com"}, want: []string{"public-url"}},
		{name: "public-url-no-host", args: []string{"--public-url", "https://"}, want: []string{"public-url"}},
		{name: "trusted-proxies-cidr", args: []string{"--trusted-proxies", "10.0.0.0/33"}, want: []string{"trusted-proxies"}},
		{name: "trusted-proxies-word", file: "trusted-proxies: [10.0.0.1, proxy.internal]\n", want: []string{"trusted-proxies"}},
		{name: "forwarded-header", args: []string{"--forwarded-header", "x-real-ip"}, want: []string{"forwarded-header"}},
		{name: "console-host-port", args: []string{"--console-host", "admin.example.com:8443"}, want: []string{"console-host"}},
		{name: "console-host-scheme", args: []string{"--console-host", "https://admin.example.com"}, want: []string{"console-host"}},
		{name: "console-same-origin-with-addr", args: []string{"--console-same-origin", "--console-addr", "127.0.0.1:0"}, want: []string{"console-same-origin"}},
		{name: "console-same-origin-env", env: map[string]string{"GATEHOUSE_CONSOLE_SAME_ORIGIN": "maybe"}, want: []string{"GATEHOUSE_CONSOLE_SAME_ORIGIN"}},
		{name: "dynamic-registration-env", env: map[string]string{"GATEHOUSE_DYNAMIC_REGISTRATION": "yes please"}, want: []string{"GATEHOUSE_DYNAMIC_REGISTRATION"}},
		{name: "webhook-allow-insecure-env", env: map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_INSECURE": "2"}, want: []string{"GATEHOUSE_WEBHOOK_ALLOW_INSECURE"}},
		{name: "no-webhook-delivery-file", file: "no-webhook-delivery: sometimes\n", want: []string{"no-webhook-delivery"}},
		{name: "bool-flag-value", args: []string{"--dynamic-registration=maybe"}, want: []string{"dynamic-registration"}},
		{name: "management-prefix-slash", args: []string{"--management-prefix", "gatehouse"}, want: []string{"management-prefix"}},
		{name: "management-prefix-trailing", args: []string{"--management-prefix", "/gatehouse/"}, want: []string{"management-prefix"}},
		{name: "management-prefix-fixed", args: []string{"--management-prefix", "/oauth"}, want: []string{"management-prefix"}},
		{name: "management-prefix-dotdot", args: []string{"--management-prefix", "/a/.."}, want: []string{"management-prefix"}},
		{name: "tls-cert-alone", args: []string{"--tls-cert", "/etc/hostname"}, want: []string{"tls-cert", "tls-key"}},
		{name: "tls-key-alone", env: map[string]string{"GATEHOUSE_TLS_KEY": "/etc/hostname"}, want: []string{"tls-cert", "tls-key"}},
		{name: "upstream", args: []string{"--upstream", "upstream.internal:8080"}, want: []string{"upstream"}},
		{name: "gateway-resource", args: []string{"--gateway-resource", "https://api.example.com/mcp?x=1"}, want: []string{"gateway-resource"}},
		{name: "gateway-routes-missing", args: []string{"--gateway-routes", "/nonexistent/routes.yaml"}, want: []string{"gateway-routes", "/nonexistent/routes.yaml"}},
		{name: "platform-scopes", args: []string{"--platform-scopes", "billing,bad scope!"}, want: []string{"platform-scopes"}},
		{name: "token-prefix-upper", args: []string{"--token-prefix", "Acme"}, want: []string{"token prefix"}},
		{name: "token-prefix-long", env: map[string]string{"GATEHOUSE_TOKEN_PREFIX": "abcdefghijklm"}, want: []string{"token prefix"}},
		{name: "redis-prefix-brace", args: []string{"--redis-prefix", "a{b}"}, want: []string{"redis-prefix"}},
		{name: "redis-url-scheme", args: []string{"--redis-url", "memcached://127.0.0.1:11211"}, want: []string{"redis url"}},
		{name: "redis-url-cluster-db", args: []string{"--redis-url", "redis+cluster://127.0.0.1:6379/3"}, want: []string{"redis url"}},
		{name: "unknown-flag", args: []string{"--adress", "127.0.0.1:0"}, want: []string{"adress"}},
		{name: "stray-argument", args: []string{"now"}, want: []string{"now"}},
		{name: "otel-exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, want: []string{"OTEL_TRACES_EXPORTER"}},
		{name: "otel-protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: []string{"grpc"}},
	})
}

// TestConfigAttackFileRefusals: whatever is wrong in the --config file stops
// serve with the file (and, for what the docs list, the line) named; the
// file is never the way to a panic, a hang or a silent default.
func TestConfigAttackFileRefusals(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	// Nine levels of nine aliases under known keys: 9^9 values if expanded.
	keys := []string{"trusted-proxies", "platform-scopes", "admin-email", "token-prefix", "redis-prefix", "upstream", "public-url", "console-host", "management-prefix"}
	laughs := keys[0] + ": &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
	for i := 1; i < len(keys); i++ {
		p := fmt.Sprintf("*a%d", i-1)
		laughs += fmt.Sprintf("%s: &a%d [%s]\n", keys[i], i, strings.TrimSuffix(strings.Repeat(p+",", 9), ","))
	}
	huge := "log-format: \"" + strings.Repeat("9", 32<<20) + "\"\n"
	configRefuse(t, []configCase{
		{name: "unknown-key", file: "log-level: info\nadress: 0.0.0.0:80\n", want: []string{"gatehouse.yaml", "line 2", `unknown setting "adress"`}},
		{name: "flag-with-dashes", file: "--addr: 127.0.0.1:0\n", want: []string{"gatehouse.yaml", "line 1", "--addr"}},
		{name: "key-case", file: "Addr: 127.0.0.1:0\n", want: []string{"gatehouse.yaml", "line 1", "Addr"}},
		{name: "config-key", file: "config: /etc/other.yaml\n", want: []string{"gatehouse.yaml", "line 1", "config"}},
		{name: "duplicate", file: "addr: 127.0.0.1:0\nlog-level: warn\naddr: 127.0.0.1:0\n", want: []string{"gatehouse.yaml", "line 3", "addr"}},
		{name: "duplicate-quoted", file: "addr: 127.0.0.1:0\n\"addr\": 127.0.0.1:0\n", want: []string{"gatehouse.yaml", "line 2", "addr"}},
		{name: "duplicate-shadowed-by-flag", file: "log-level: info\nlog-level: debug\n", args: []string{"--log-level", "warn"}, want: []string{"gatehouse.yaml", "line 2", "log-level"}},
		{name: "nested", file: "addr:\n  host: 127.0.0.1\n  port: 0\n", want: []string{"gatehouse.yaml", "line 2", "addr"}},
		{name: "nested-in-list", file: "trusted-proxies:\n  - {cidr: 10.0.0.0/8}\n", want: []string{"gatehouse.yaml", "trusted-proxies"}},
		{name: "second-document", file: "log-level: info\n---\nlog-level: debug\n", want: []string{"gatehouse.yaml", "line 2", "second YAML document"}},
		{name: "not-yaml", file: "log-level: [info\n", want: []string{"gatehouse.yaml", "line 1"}},
		{name: "tab-indent", file: "addr: 127.0.0.1:0\n\tlog-level: info\n", want: []string{"gatehouse.yaml"}},
		{name: "list-root", file: "- addr: 127.0.0.1:0\n", want: []string{"gatehouse.yaml", "line 1"}},
		{name: "scalar-root", file: "addr=127.0.0.1:0\n", want: []string{"gatehouse.yaml", "line 1"}},
		{name: "merge-key", file: "log-level: info\n<<: {addr: 127.0.0.1:0}\n", want: []string{"gatehouse.yaml", "line 2"}},
		{name: "alias-key", file: "addr: &k 127.0.0.1:0\n*k : 127.0.0.1:0\n", want: []string{"gatehouse.yaml", "line 2"}},
		{name: "self-alias-list", file: "trusted-proxies: &p [10.0.0.1, *p]\n", want: []string{"gatehouse.yaml", "line 1", "trusted-proxies"}},
		{name: "billion-laughs", file: laughs, want: []string{"gatehouse.yaml", "line 2"}},
		{name: "billion-laughs-scalar-alias", file: "admin-email: &e " + strings.Repeat("x", 1<<16) + "@example.com\nupstream: *e\ntoken-prefix: *e\n", want: []string{}},
		{name: "deep-nesting", file: "trusted-proxies: " + deep + "\n", want: []string{"gatehouse.yaml"}},
		{name: "huge-value", file: huge, want: []string{"log-format"}},
		{name: "null-bool", file: "dynamic-registration:\n", want: []string{"gatehouse.yaml", "dynamic-registration"}},
		{name: "bad-value-refused-as-flag", file: "log-level: info\nconsole-same-origin: sometimes\n", want: []string{"gatehouse.yaml", "line 2", "console-same-origin"}},
		{name: "missing-file", args: []string{"--config", "/nonexistent/gatehouse.yaml"}, want: []string{"/nonexistent/gatehouse.yaml"}},
		{name: "missing-file-env", env: map[string]string{"GATEHOUSE_CONFIG": "/nonexistent/env.yaml"}, want: []string{"/nonexistent/env.yaml"}},
		{name: "directory", args: []string{"--config", "/"}, want: []string{"config"}},
		{name: "empty-config-flag-env", env: map[string]string{"GATEHOUSE_CONFIG": "/nonexistent/env.yaml"}, args: []string{"--config", "/nonexistent/flag.yaml"}, want: []string{"/nonexistent/flag.yaml"}},
	})

}

// TestConfigAttackEmptyFileAndComments: an empty file, one of comments only and
// a lone "---" set nothing: the server starts on its defaults.
func TestConfigAttackEmptyFileAndComments(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "comments": "# nothing here\n# addr: 0.0.0.0:80\n", "dashes": "---\n", "null": "~\n"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p := configServe(t, dir, nil, "--database-url", filepath.Join(dir, "s.db"), "--config", configWrite(t, dir, "g.yaml", content))
			if r := p.me(t); r.Header.Get("X-RateLimit-Burst-Remaining") == "" {
				t.Fatalf("default header missing: %v", r.Header)
			}
		})
	}
}

// TestConfigAttackDefaultsObserved: with nothing configured, the running server
// does what the table's defaults say: text logs at info with a line per
// request, X-RateLimit-*-Remaining headers, no trusted proxy (a forged
// X-Forwarded-For is not the client), x-forwarded-for as the header kind,
// no TLS, the bootstrap admin admin@example.com, and 127.0.0.1:8080 as the
// address the health check looks at.
func TestConfigAttackDefaultsObserved(t *testing.T) {
	dir := t.TempDir()
	p := configServe(t, dir, nil, "--database-url", filepath.Join(dir, "s.db"))
	p.waitLog(t, "gatehouse listening")
	log := p.stderr.String()
	for _, want := range []string{`level=INFO msg="gatehouse listening"`, "tls=false", `trusted_proxies=""`, "forwarded_header=x-forwarded-for", "admin_email=admin@example.com"} {
		if !strings.Contains(log, want) {
			t.Errorf("the start log has no %q:\n%s", want, log)
		}
	}
	if !strings.HasPrefix(log, "time=") {
		t.Errorf("the default log format is not text:\n%s", log)
	}
	r := p.me(t)
	for _, h := range []string{"X-RateLimit-Burst-Remaining", "X-RateLimit-Daily-Remaining"} {
		if r.Header.Get(h) == "" {
			t.Errorf("default header %s missing: %v", h, r.Header)
		}
	}
	// A forged X-Forwarded-For from an untrusted peer is not the client.
	if _, err := p.client().Do(context.Background(), "GET", "/v1/config-forged", nil, "X-Forwarded-For", "203.0.113.77"); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "/v1/config-forged")
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(line, "/v1/config-forged") {
			if strings.Contains(line, "203.0.113.77") || !strings.Contains(line, "remote=127.0.0.1") {
				t.Errorf("request line: %s", line)
			}
		}
	}
	// No DEBUG lines at the default level.
	if strings.Contains(p.stderr.String(), "level=DEBUG") {
		t.Errorf("debug lines at the default level")
	}
	// The health check's default target is the default address.
	def := configRun(t, dir, nil, "healthcheck")
	if !strings.Contains(def.output(), "127.0.0.1:8080/healthz") {
		t.Errorf("healthcheck without settings does not look at 127.0.0.1:8080: %q", def.output())
	}
	// The health check finds this server through the same settings.
	ok := configRun(t, dir, map[string]string{"GATEHOUSE_ADDR": strings.TrimPrefix(p.url, "http://")}, "healthcheck")
	if ok.code != 0 || !strings.Contains(ok.stdout, "healthy") {
		t.Errorf("healthcheck of the running server: %d %s", ok.code, ok.output())
	}
}

// TestConfigAttackPrecedence: flag over environment over file over default,
// setting by setting, observed on the running server: the rate-limit
// header names (HTTP), the log format and level (the log), the config file
// named by GATEHOUSE_CONFIG, and an empty variable that does not count.
func TestConfigAttackPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := configWrite(t, dir, "g.yaml", strings.Join([]string{
		"burst-remaining-header: X-File-Burst",
		"daily-remaining-header: X-File-Daily",
		"log-format: json",
		"log-level: warn",
		"admin-email: file-admin@example.com",
		"",
	}, "\n"))
	env := map[string]string{
		"GATEHOUSE_CONFIG":                 file,
		"GATEHOUSE_BURST_REMAINING_HEADER": "X-Env-Burst",
		"GATEHOUSE_DAILY_REMAINING_HEADER": "X-Env-Daily",
		"GATEHOUSE_LOG_LEVEL":              "", // empty: does not win over the file
		"GATEHOUSE_ADMIN_EMAIL":            "",
	}
	p := configServe(t, dir, env, "--database-url", filepath.Join(dir, "s.db"), "--burst-remaining-header", "X-Flag-Burst")
	ctx := context.Background()
	tok, err := p.client().Login(ctx, "file-admin@example.com", configAdminPassword)
	if err != nil {
		t.Fatalf("the file's admin-email was not used: %v\n%s", err, p.stderr.String())
	}
	r, err := p.client().Do(ctx, "GET", "/v1/me", nil, "Authorization", "Bearer "+tok)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("X-Flag-Burst") == "" || r.Header.Get("X-Env-Burst") != "" || r.Header.Get("X-File-Burst") != "" || r.Header.Get("X-RateLimit-Burst-Remaining") != "" {
		t.Errorf("burst header: the flag must win: %v", r.Header)
	}
	if r.Header.Get("X-Env-Daily") == "" || r.Header.Get("X-File-Daily") != "" || r.Header.Get("X-RateLimit-Daily-Remaining") != "" {
		t.Errorf("daily header: the environment must win over the file: %v", r.Header)
	}
	p.stop(t)
	log := p.stderr.String()
	if strings.Contains(log, "gatehouse listening") || strings.Contains(log, "level=") {
		t.Errorf("the file's log-level warn and log-format json were not used:\n%s", log)
	}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line != "" && !strings.HasPrefix(line, "{") {
			t.Errorf("not a JSON line: %s", line)
		}
	}

	// The environment over the file for the log format; the flag over both
	// for the level.
	dir2 := t.TempDir()
	file2 := configWrite(t, dir2, "g.yaml", "log-format: json\nlog-level: error\n")
	p2 := configServe(t, dir2, map[string]string{"GATEHOUSE_LOG_FORMAT": "text", "GATEHOUSE_LOG_LEVEL": "warn"},
		"--database-url", filepath.Join(dir2, "s.db"), "--config", file2, "--log-level", "INFO")
	p2.waitLog(t, `level=INFO msg="gatehouse listening"`)
}

// TestConfigAttackEmptyAddrRefused: an empty listen address (an empty "addr:"
// in the file, or --addr "") is nonsense: it must be refused, not turned
// into every interface on a random port in place of the documented
// 127.0.0.1:8080.
func TestConfigAttackEmptyAddrRefused(t *testing.T) {
	for name, c := range map[string]configCase{
		"file-null":  {file: "addr:\n"},
		"file-empty": {file: "addr: \"\"\n"},
		"flag-empty": {args: []string{"--addr", ""}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := []string{"serve", "--database-url", filepath.Join(dir, "s.db"), "--log-level", "info"}
			if c.file != "" {
				args = append(args, "--config", configWrite(t, dir, "g.yaml", c.file))
			}
			args = append(args, c.args...)
			r := configRun(t, dir, map[string]string{"GATEHOUSE_ADMIN_PASSWORD": configAdminPassword}, args...)
			if r.started {
				m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(r.stderr)
				t.Fatalf("an empty addr started a server listening on %v (the default is 127.0.0.1:8080):\n%s", m, r.stderr)
			}
			configCheckRefused(t, r, "addr")
		})
	}
}

// TestConfigAttackListenAddressesCheckedFirst: a listen address that does not
// parse, or a certificate file that cannot be read, is a setting that makes
// no sense: it must stop serve before the store is created and bootstrapped
// (a generated admin password printed for a server that never ran), and
// the message must say which setting.
func TestConfigAttackListenAddressesCheckedFirst(t *testing.T) {
	configRefuse(t, []configCase{
		{name: "addr", args: []string{"--addr", "nonsense"}, want: []string{"addr", "nonsense"}},
		{name: "ops-addr", args: []string{"--ops-addr", "bogus"}, want: []string{"ops-addr", "bogus"}},
		{name: "ops-addr-file", file: "ops-addr: 127.0.0.1:99999\n", want: []string{"ops-addr"}},
		{name: "console-addr", args: []string{"--console-addr", "nowhere"}, want: []string{"console-addr"}},
		{name: "tls-files-missing", args: []string{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}, want: []string{"/nonexistent/cert.pem"}},
	})
}

// TestConfigAttackBootstrapSettingsCheckedFirst: an admin e-mail or password
// the bootstrap will refuse is known before the store is touched.
func TestConfigAttackBootstrapSettingsCheckedFirst(t *testing.T) {
	configRefuse(t, []configCase{
		{name: "admin-email", args: []string{"--admin-email", "not-an-email"}, want: []string{"admin-email"}},
		{name: "admin-password-short", env: map[string]string{"GATEHOUSE_ADMIN_PASSWORD": "short"}, want: []string{"admin-password"}},
	})
}

// TestConfigAttackHeaderNamesValidated: a header-name setting that is no HTTP
// header name (RFC 9110 token) is nonsense: refused, naming the setting.
// Today only "", space, ":" and CR/LF are refused, and the message names
// the value but not the setting.
func TestConfigAttackHeaderNamesValidated(t *testing.T) {
	configRefuse(t, []configCase{
		{name: "empty-api-token-header", file: "api-token-header: \"\"\n", want: []string{"api-token-header"}},
		{name: "empty-user-email-header", file: "user-email-header:\n", want: []string{"user-email-header"}},
		{name: "space", args: []string{"--burst-remaining-header", "X Burst"}, want: []string{"burst-remaining-header"}},
		{name: "parens", args: []string{"--api-token-header", "X(Token)"}, want: []string{"api-token-header"}},
		{name: "non-ascii", args: []string{"--daily-remaining-header", "X-Dåily"}, want: []string{"daily-remaining-header"}},
		{name: "tab", args: []string{"--user-email-header", "X-User\tEmail"}, want: []string{"user-email-header"}},
	})
}

// TestConfigAttackSecretsNotInUsage: a mistyped flag prints the usage; secrets
// kept in the environment, as the docs advise, must not be in it.
func TestConfigAttackSecretsNotInUsage(t *testing.T) {
	secrets := map[string]string{
		"GATEHOUSE_ADMIN_PASSWORD": "zz-admin-pw-SECRET-1",
		"GATEHOUSE_TOKEN_KEY":      "zz-token-key-SECRET-2",
		"GATEHOUSE_DATABASE_URL":   "postgres://gatehouse:zz-db-pw-SECRET-3@127.0.0.1:1/gatehouse",
		"GATEHOUSE_REDIS_URL":      "redis://:zz-redis-pw-SECRET-4@127.0.0.1:1/0",
	}
	for _, cmd := range [][]string{{"serve", "--adress", "x"}, {"migrate", "--bogus"}, {"healthcheck", "--bogus"}, {"recover", "--bogus"}} {
		t.Run(cmd[0], func(t *testing.T) {
			t.Parallel()
			r := configRun(t, t.TempDir(), secrets, cmd...)
			if r.code == 0 {
				t.Fatalf("a bad flag was accepted: %s", r.output())
			}
			for k, v := range secrets {
				if i := strings.Index(v, "SECRET"); strings.Contains(r.output(), v[:i+8]) {
					t.Errorf("%s's secret is in the output of %v:\n%s", k, cmd, r.output())
				}
			}
		})
	}
}

// TestConfigAttackSecretsNotInErrors: a database or Redis URL that is refused
// is named without its password; the password is never in the message.
func TestConfigAttackSecretsNotInErrors(t *testing.T) {
	const secret = "ZZSECRETPW"
	for name, args := range map[string][]string{
		"pg-unreachable":      {"--database-url", "postgres://u:" + secret + "@127.0.0.1:1/db"},
		"pg-bad-port":         {"--database-url", "postgres://u:" + secret + "@127.0.0.1:bad/db"},
		"pg-bad-escape":       {"--database-url", "postgres://u:" + secret + "%ZZ@127.0.0.1/db"},
		"pg-bad-sslmode":      {"--database-url", "postgres://u:" + secret + "@127.0.0.1/db?sslmode=bogus"},
		"pg-query-password":   {"--database-url", "postgres://u@127.0.0.1/db?password=" + secret + "&sslmode=bogus"},
		"pg-no-slashes":       {"--database-url", "postgres:u:" + secret + "@127.0.0.1/db"},
		"redis-no-scheme":     {"--redis-url", "gatehouse:" + secret + "@127.0.0.1:6379"},
		"redis-bad-port":      {"--redis-url", "redis://:" + secret + "@127.0.0.1:bad/0"},
		"redis-bad-escape":    {"--redis-url", "redis://:" + secret + "%zz@127.0.0.1:6379/0"},
		"redis-bad-db":        {"--redis-url", "redis://:" + secret + "@127.0.0.1:6379/x"},
		"admin-password":      {"--admin-password", secret[:5]},
		"admin-password-file": {"--config", "FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for i, a := range args {
				if a == "FILE" {
					args[i] = configWrite(t, dir, "g.yaml", "admin-password: "+secret[:5]+"\ntoken-key: "+secret+"\n")
				}
			}
			r := configRun(t, dir, nil, append([]string{"serve", "--addr", "127.0.0.1:0", "--database-url", filepath.Join(dir, "s.db")}, args...)...)
			if r.started || r.code == 0 {
				t.Fatalf("accepted: %s", r.output())
			}
			if strings.Contains(r.output(), secret) || (strings.HasPrefix(name, "admin") && strings.Contains(r.output(), secret[:5])) {
				t.Errorf("the secret is in the output:\n%s", r.output())
			}
		})
	}
}

// TestConfigAttackSecretsNotLoggedWhileServing: a server given an admin
// password, a token key and a PostgreSQL URL with a password (in the
// user information and as the libpq "password" query parameter) logs
// none of them, at debug level, from start to a graceful stop.
func TestConfigAttackSecretsNotLoggedWhileServing(t *testing.T) {
	base := pgtest.Schema(t)
	const pw, key, dbpw, qpw = "zz-admin-PW-secret", "zz-token-KEY-secret", "zzDBuserinfoSECRET", "zzDBquerySECRET"
	u := strings.Replace(base, "postgres@", "postgres:"+dbpw+"@", 1) + "&password=" + qpw
	if !strings.Contains(u, dbpw) {
		t.Fatalf("cannot put a password in %s", base)
	}
	dir := t.TempDir()
	p := configServe(t, dir, map[string]string{"GATEHOUSE_ADMIN_PASSWORD": pw, "GATEHOUSE_TOKEN_KEY": key, "GATEHOUSE_DATABASE_URL": u}, "--log-level", "debug")
	ctx := context.Background()
	tok, err := p.client().Login(ctx, "admin@example.com", pw)
	if err != nil {
		t.Fatal(err)
	}
	p.client().Login(ctx, "admin@example.com", pw+"-wrong")
	p.client().Do(ctx, "GET", "/v1/me?password="+pw, nil, "Authorization", "Bearer "+tok)
	p.stop(t)
	out := p.stdout.String() + p.stderr.String()
	for name, s := range map[string]string{"admin password": pw, "token key": key, "database password": dbpw, "database password in the query": qpw} {
		if strings.Contains(out, s) {
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, s) {
					t.Errorf("the %s is logged: %s", name, line)
				}
			}
		}
	}
}

// TestConfigAttackShadowedFileValueStillChecked: the file is checked whole;
// a bad value in it is an error even when the environment or a flag
// overrides that setting today (else the day the variable goes, the
// server does not start).
func TestConfigAttackShadowedFileValueStillChecked(t *testing.T) {
	configRefuse(t, []configCase{
		{name: "bool-under-env", file: "dynamic-registration: maybe\n", env: map[string]string{"GATEHOUSE_DYNAMIC_REGISTRATION": "false"}, want: []string{"gatehouse.yaml", "dynamic-registration"}},
		{name: "bool-under-flag", file: "webhook-allow-insecure: perhaps\n", args: []string{"--webhook-allow-insecure=false"}, want: []string{"gatehouse.yaml", "webhook-allow-insecure"}},
	})
}

// TestConfigAttackSubcommandsShareConfig: migrate and healthcheck read the same
// flags, variables and file, and refuse the same nonsense; healthcheck goes
// to the ops address of the file; recover refuses a bad file.
func TestConfigAttackSubcommandsShareConfig(t *testing.T) {
	dir := t.TempDir()
	bad := configWrite(t, dir, "bad.yaml", "log-level: info\nadress: x\n")
	for _, cmd := range [][]string{
		{"migrate", "--config", bad},
		{"healthcheck", "--config", bad},
		{"recover", "--config", bad, "--email", "a@example.com"},
	} {
		r := configRun(t, dir, nil, cmd...)
		configCheckRefused(t, r, "bad.yaml", "line 2", "adress")
	}
	for _, cmd := range [][]string{{"migrate", "--log-level", "loud"}, {"healthcheck", "--read-timeout", "0s"}} {
		r := configRun(t, dir, nil, cmd...)
		configCheckRefused(t, r, strings.TrimPrefix(cmd[1], "--"))
	}
	if r := configRun(t, dir, map[string]string{"GATEHOUSE_DATABASE_URL": "mysql://x"}, "migrate"); r.code == 0 || !strings.Contains(r.stderr, "mysql") {
		t.Errorf("migrate with a bad database URL: %d %s", r.code, r.output())
	}
	// migrate on a good file applies the migrations to its database.
	db := filepath.Join(dir, "m.db")
	good := configWrite(t, dir, "good.yaml", "database-url: "+db+"\n")
	if r := configRun(t, dir, nil, "migrate", "--config", good); r.code != 0 || !strings.Contains(r.stdout, "migrations applied") {
		t.Fatalf("migrate: %d %s", r.code, r.output())
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("migrate did not use the file's database-url: %v", err)
	}
	// healthcheck finds the ops listener through the file.
	ops := freeAddr(t)
	file := configWrite(t, dir, "ops.yaml", "ops-addr: "+ops+"\n")
	configServe(t, dir, nil, "--database-url", filepath.Join(dir, "s.db"), "--config", file)
	if r := configRun(t, dir, nil, "healthcheck", "--config", file); r.code != 0 || !strings.Contains(r.stdout, ops) {
		t.Errorf("healthcheck through the file's ops-addr: %d %s", r.code, r.output())
	}
	if r := configRun(t, dir, map[string]string{"GATEHOUSE_OPS_ADDR": "127.0.0.1:1"}, "healthcheck", "--config", file); r.code != 1 {
		t.Errorf("the environment's ops-addr must win over the file's: %d %s", r.code, r.output())
	}
}

// TestConfigAttackGitHubKeysFileChecked: --github-scanning-keys names a URL or
// a file; a file that does not exist is nonsense known at start.
func TestConfigAttackGitHubKeysFileChecked(t *testing.T) {
	configRefuse(t, []configCase{
		{name: "missing-file", args: []string{"--github-scanning-keys", "/nonexistent/github-keys.json"}, want: []string{"github-scanning-keys"}},
	})
}

// TestConfigAttackMaxConnsPerIPZeroIsNoLimit: 0 is documented as no limit: the
// server starts and serves many connections from one address.
func TestConfigAttackMaxConnsPerIPZeroIsNoLimit(t *testing.T) {
	dir := t.TempDir()
	p := configServe(t, dir, nil, "--database-url", filepath.Join(dir, "s.db"), "--max-conns-per-ip", "0", "--log-level", "warn")
	addr := strings.TrimPrefix(p.url, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The last one is served.
	last := conns[len(conns)-1]
	fmt.Fprintf(last, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	last.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(last).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("connection 300 with no limit: %q %v", line, err)
	}
}

// TestConfigAttackMaxConnsPerIPDefault: by default one client address holds at
// most 256 connections; the next is closed as it is accepted.
func TestConfigAttackMaxConnsPerIPDefault(t *testing.T) {
	dir := t.TempDir()
	p := configServe(t, dir, nil, "--database-url", filepath.Join(dir, "s.db"), "--log-level", "warn")
	addr := strings.TrimPrefix(p.url, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 256; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The 256th is served: it counts, so all before it were accepted.
	fmt.Fprintf(conns[255], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	conns[255].SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(conns[255]).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("connection 256: %q %v", line, err)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, extra)
	fmt.Fprintf(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(extra).ReadString('\n'); err == nil {
		t.Fatalf("connection 257 was served: %q", line)
	}
}
