package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/server"
)

// mcpDir returns e2e/mcp with its npm packages installed, or skips.
func mcpDir(t *testing.T) (node, dir string) {
	t.Helper()
	node = testenv.RequireTool(t, "node")
	dir, err := filepath.Abs("mcp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil {
		testenv.Missing(t, "e2e/mcp/node_modules", "run `npm ci` in e2e/mcp (Node.js and npm)")
	}
	return node, dir
}

// nodeLines runs a node script in dir and returns its JSON lines, one
// object each, and its stdin.
func nodeLines(t *testing.T, ctx context.Context, node, dir, script string, env ...string) (<-chan map[string]any, io.WriteCloser, *strings.Builder) {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = &servertestWriter{b: stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan map[string]any, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	return lines, stdin, stderr
}

// servertestWriter is a strings.Builder safe for the process's writer.
type servertestWriter struct{ b *strings.Builder }

func (w *servertestWriter) Write(p []byte) (int, error) { return w.b.Write(p) }

func nextLine(t *testing.T, lines <-chan map[string]any, stderr *strings.Builder, key string) any {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("node ended before %q; stderr:\n%s", key, stderr.String())
			}
			if v, ok := m[key]; ok {
				return v
			}
			t.Logf("node: %v", m)
		case <-timeout:
			t.Fatalf("no %q from node; stderr:\n%s", key, stderr.String())
		}
	}
}

// TestMCPAgent: the official MCP TypeScript SDK on both sides. A small MCP
// server (streamable HTTP, one tool) runs behind Gatehouse's gateway; the
// SDK's client, with its own OAuth support and nothing configured but the
// server's URL, gets a 401 naming the protected-resource metadata,
// discovers the authorization server, registers itself (RFC 7591), and
// sends the user to the authorization endpoint with PKCE and the
// resource; headless Chromium signs in and consents on the page that
// marks the client unverified; the code goes back to the client, whose
// tool call then succeeds as that user. The user revokes the
// authorisation, and the next call fails.
func TestMCPAgent(t *testing.T) {
	node, dir := mcpDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srvLines, _, srvErr := nodeLines(t, ctx, node, dir, "server.mjs")
	port := nextLine(t, srvLines, srvErr, "listening").(float64)
	upstream := "http://127.0.0.1:" + strconv.Itoa(int(port))
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream = upstream
		c.DynamicRegistration = true
		c.ConsoleSameOrigin = true
	})
	bctx := browser(t)

	// Where the agent's redirect lands: the Go test's loopback listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan url.Values, 1)
	cb := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Query():
		default:
		}
		rw.Write([]byte("<!doctype html><title>Done</title><p>You can close this window.</p>"))
	})}
	go cb.Serve(ln)
	t.Cleanup(func() { cb.Close() })
	redirect := "http://" + ln.Addr().String() + "/callback"

	lines, stdin, stderr := nodeLines(t, ctx, node, dir, "client.mjs", "SERVER_URL="+env.URL+"/mcp", "REDIRECT_URL="+redirect)
	reg, _ := nextLine(t, lines, stderr, "registered").(map[string]any)
	clientID, _ := reg["client_id"].(string)
	if !strings.HasPrefix(clientID, "gci_") || reg["token_endpoint_auth_method"] != "none" {
		t.Fatalf("registration: %v", reg)
	}
	authURL, _ := nextLine(t, lines, stderr, "authorize").(string)
	au, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := au.Query()
	if !strings.HasPrefix(authURL, env.URL+"/oauth/authorize?") || q.Get("code_challenge_method") != "S256" || q.Get("client_id") != clientID {
		t.Fatalf("authorization URL %s", authURL)
	}
	if q.Get("resource") == "" {
		t.Fatalf("the agent sent no resource: %s", authURL)
	}

	run(t, bctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(authURL),
		chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", servertest.AdminEmail, chromedp.ByID),
		chromedp.SendKeys("#password", servertest.AdminPassword, chromedp.ByID),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("section.consent", chromedp.ByQuery),
	)
	text := textOf(t, bctx, "section.consent")
	for _, want := range []string{"Unverified application", "E2E agent", "approves it for every user"} {
		if !strings.Contains(text, want) {
			t.Fatalf("consent page lacks %q:\n%s", want, text)
		}
	}
	bothWidths(t, bctx, "consent page of an unverified client")
	run(t, bctx, chromedp.EmulateViewport(390, 900))
	shot(t, bctx, "consent-unverified-390")
	run(t, bctx, chromedp.EmulateViewport(1280, 900))
	shot(t, bctx, "consent-unverified-1280")
	run(t, bctx, submit("Allow"))
	var cbq url.Values
	select {
	case cbq = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the browser did not reach the agent's redirect URI")
	}
	if cbq.Get("code") == "" || cbq.Get("iss") != env.URL {
		t.Fatalf("callback %v", cbq)
	}
	io.WriteString(stdin, cbq.Get("code")+"\n")
	if r, _ := nextLine(t, lines, stderr, "result").(string); r != "hello "+servertest.AdminEmail {
		t.Fatalf("tool result %q", r)
	}
	if who, _ := nextLine(t, srvLines, srvErr, "called").(string); who != servertest.AdminEmail {
		t.Fatalf("the upstream was called by %q", who)
	}

	// The user ends the authorisation; the agent's next call fails with
	// the SDK's UnauthorizedError: the gateway answered 401, the refresh
	// token was refused as invalid_grant (the SDK forgets its tokens), and
	// the SDK sent the user to authorize again. The upstream never sees
	// the call.
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/me/authorizations/"+clientID, nil), 204, "")
	io.WriteString(stdin, "again\n")
	var refused, reauthorize bool
	for second := false; !second; {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("node ended before the second call's outcome; stderr:\n%s", stderr.String())
			}
			switch {
			case m["invalidated"] != nil:
				if m["invalidated"] != "tokens" {
					t.Fatalf("the SDK forgot %v", m)
				}
				refused = true
			case m["authorize"] != nil:
				reauthorize = refused
			case m["second"] != nil:
				t.Fatalf("the call after revocation succeeded: %v", m)
			case m["second_error"] != nil:
				if m["unauthorized"] != true || m["error_name"] != "UnauthorizedError" {
					t.Fatalf("the call after revocation failed otherwise than unauthorized: %v", m)
				}
				second = true
			default:
				t.Logf("node: %v", m)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("no outcome of the second call; stderr:\n%s", stderr.String())
		}
	}
	if !reauthorize {
		t.Fatalf("the SDK did not start a new authorization after its refresh token was refused (refused %v)", refused)
	}
	select {
	case m := <-srvLines:
		t.Fatalf("the upstream was reached after revocation: %v", m)
	case <-time.After(300 * time.Millisecond):
	}
}
