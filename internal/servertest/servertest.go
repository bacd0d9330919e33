// Package servertest starts a real Gatehouse server on a free port with an
// SQLite store in a temporary directory, and gives tests a small HTTP client
// for it: internal/localserver's, failing the test where that returns an
// error, or where an answer breaks the server's OpenAPI document.
//
// With GATEHOUSE_TEST_DATABASE=postgres in the environment, the store is
// instead a fresh schema of the PostgreSQL test database (see
// internal/pgtest), dropped when the test ends.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/localserver"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/store"
)

// Admin credentials of the bootstrap operator-admin.
const (
	AdminEmail    = "admin@example.com"
	AdminPassword = "correct horse battery staple"
)

// FastPasswords are cheap argon2id parameters for tests.
var FastPasswords = password.Params{Memory: 1024, Time: 1, Threads: 1}

// Env is a running server and a client for it.
type Env struct {
	T      testing.TB
	Server *server.Server
	URL    string
	Client *http.Client
	// DatabaseURL is the store the server uses.
	DatabaseURL string
	// DBPath is the SQLite file, or empty on PostgreSQL.
	DBPath string

	contract contract // the server's OpenAPI document, for every answer
}

// EnvDatabase is the environment variable that chooses the tests' store:
// "sqlite" (the default) or "postgres".
const EnvDatabase = "GATEHOUSE_TEST_DATABASE"

// DatabaseURL returns the URL of a new, empty store for one test, removed
// when the test ends: an SQLite file in a temporary directory, or a fresh
// PostgreSQL schema when EnvDatabase is "postgres". Several servers may
// share it.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	switch db := os.Getenv(EnvDatabase); db {
	case "", "sqlite":
		return filepath.Join(t.TempDir(), "gatehouse.db")
	case "postgres":
		return pgtest.Schema(t)
	default:
		t.Fatalf("%s=%q: want sqlite or postgres", EnvDatabase, db)
		return ""
	}
}

// Start runs a server until the test ends. configure, if given, adjusts the
// configuration before the server opens.
func Start(t testing.TB, configure ...func(*server.Config)) *Env {
	t.Helper()
	cfg := localserver.Config(DatabaseURL(t))
	cfg.AdminEmail, cfg.AdminPassword = AdminEmail, AdminPassword
	cfg.PasswordParams = FastPasswords
	// A loaded test machine (the race detector, other packages' tests on
	// the same cores) can hold one store call longer than the shipped 2 s
	// deadline without anything being wrong; the fault suite sets its own
	// short deadlines where the deadline is what it tests.
	cfg.StoreTimeout = TestStoreTimeout
	logs := &testLog{t: t}
	t.Cleanup(logs.stop)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := localserver.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	env := &Env{T: t, Server: srv, URL: srv.URL(), Client: &http.Client{Timeout: 30 * time.Second}, DatabaseURL: cfg.DatabaseURL}
	if srv.Store.Dialect() == "sqlite" {
		env.DBPath = cfg.DatabaseURL
	}
	return env
}

// TestStoreTimeout is the store deadline of the servers Start runs.
const TestStoreTimeout = 10 * time.Second

// testLog writes the server's warnings and errors to the test's log, so
// that a failing test shows why the server answered as it did. It stops
// when the test's clean-up has shut the server down: a test may not log
// once it has ended.
type testLog struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

// conflicts counts the warnings store.ConflictRunAgain of every server
// started here (see Conflicts).
var conflicts atomic.Int64

// Conflicts returns how many write transactions of the servers started
// here deadlocked with another and were run again (store.Update): a test
// that releases conflicting writes together fails when it grows.
func Conflicts() int64 { return conflicts.Load() }

func (l *testLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(store.ConflictRunAgain)) {
		conflicts.Add(1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// Response is a finished HTTP exchange.
type Response localserver.Response

// JSON decodes the body into v, failing the test if it is not JSON.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// Map decodes the body as a JSON object.
func (r *Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Request sends a request. body may be nil, a string (sent as is), or any
// other value (sent as JSON). headers are name/value pairs. An answer the
// server's OpenAPI document does not allow fails the test (see
// checkContract).
func (e *Env) Request(method, path string, body any, headers ...string) *Response {
	e.T.Helper()
	r, err := e.client().Do(context.Background(), method, path, body, headers...)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	e.checkContract(method, path, headers, r)
	return (*Response)(r)
}

func (e *Env) client() *localserver.Client {
	return &localserver.Client{URL: e.URL, HTTP: e.Client}
}

// As sends a request with a bearer token.
func (e *Env) As(tok, method, path string, body any, headers ...string) *Response {
	e.T.Helper()
	return e.Request(method, path, body, append([]string{"Authorization", "Bearer " + tok}, headers...)...)
}

// Login runs the password grant and returns the access token.
func (e *Env) Login(email, pw string) string {
	e.T.Helper()
	tok, err := e.client().Login(context.Background(), email, pw)
	if err != nil {
		e.T.Fatal(err)
	}
	return tok
}

// AdminToken logs in as the bootstrap admin.
func (e *Env) AdminToken() string { return e.Login(AdminEmail, AdminPassword) }

// CreateUser makes a user through the API as admin token adminTok and
// returns its id.
func (e *Env) CreateUser(adminTok, email, pw string, roles ...string) string {
	e.T.Helper()
	if roles == nil {
		roles = []string{}
	}
	r := e.As(adminTok, "POST", "/v1/users", map[string]any{"email": email, "name": email, "password": pw, "roles": roles})
	if r.Status != http.StatusCreated {
		e.T.Fatalf("create user %s: %d %s", email, r.Status, r.Body)
	}
	return r.Map(e.T)["id"].(string)
}

// CreateAccount makes another account with its admin (as the operator)
// and returns the new admin's token.
func (e *Env) CreateAccount(operatorTok, name, adminEmail, adminPW string) (accountID, adminTok string) {
	e.T.Helper()
	r := e.As(operatorTok, "POST", "/v1/accounts", map[string]string{"name": name, "admin_email": adminEmail, "admin_password": adminPW})
	if r.Status != http.StatusCreated {
		e.T.Fatalf("create account: %d %s", r.Status, r.Body)
	}
	return r.Map(e.T)["id"].(string), e.Login(adminEmail, adminPW)
}

// Expect fails the test unless r has the given status and, if code is not
// empty, the given error code.
func Expect(t testing.TB, r *Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if code != "" {
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Error != code {
			t.Fatalf("error %q, want %q; body %s", e.Error, code, r.Body)
		}
	}
}

// SyncBuffer collects output written from several goroutines (logs of a
// running server) and reads it back safely.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
