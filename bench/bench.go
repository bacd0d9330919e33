package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/server"
)

// Options control a bench run.
type Options struct {
	Concurrency int
	Duration    time.Duration // per row
	DatabaseURL string        // empty: SQLite in a temporary directory; else an empty PostgreSQL database
	RedisURL    string        // set: rate limits and invalidation through Redis (cluster mode)
	Out         io.Writer
}

// Row is one benchmark scenario: setup prepares it against the running
// server and returns the request maker and expected status.
type Row struct {
	Name  string
	Setup func(ctx context.Context, e *Env, concurrency int) (Scenario, error)
}

// Env is the running server a bench drives, and what setup made in it.
type Env struct {
	URL string
	// BareURL is the baseline handler, which is also the gateway's upstream.
	BareURL     string
	Server      *server.Server
	Client      *http.Client
	AdminToken  string
	AdminEmail  string
	AdminPasswd string
}

const benchPassword = "bench admin password"

// Main runs the bench and prints the table.
func Main(ctx context.Context, opt Options, rows []Row) ([]Result, error) {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 64
	}
	if opt.Duration <= 0 {
		opt.Duration = 5 * time.Second
	}
	dir, err := os.MkdirTemp("", "gatehouse-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The baseline: a bare net/http handler on its own listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}` + "\n"))
	})}
	go bare.Serve(ln)
	defer bare.Close()
	bareURL := "http://" + ln.Addr().String() + "/"

	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = opt.DatabaseURL
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = filepath.Join(dir, "bench.db")
	}
	cfg.AdminPassword = benchPassword
	cfg.RedisURL, cfg.RedisPrefix = opt.RedisURL, fmt.Sprintf("gatehouse-bench:%d:", time.Now().UnixNano())
	cfg.Upstream = strings.TrimSuffix(bareURL, "/") // the gateway rows proxy to the baseline
	cfg.Stdout = io.Discard
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv := server.New(cfg)
	if err := srv.Open(ctx); err != nil {
		srv.Close()
		return nil, err
	}
	defer srv.Close()
	go srv.Serve()

	client := NewClient(opt.Concurrency)
	env := &Env{URL: srv.URL(), BareURL: bareURL, Server: srv, Client: client, AdminEmail: cfg.AdminEmail, AdminPasswd: benchPassword}
	if env.AdminToken, err = env.Login(cfg.AdminEmail, benchPassword); err != nil {
		return nil, err
	}
	// Lift the account's limits so the bench measures the server, not the
	// limiter's refusals.
	if _, err := env.Do("PUT", "/v1/settings", env.AdminToken, map[string]any{
		"rate_limit": map[string]int{"daily": 100_000_000, "burst": 1_000_000, "burst_window_seconds": 1}}, http.StatusOK); err != nil {
		return nil, err
	}

	var results []Result
	base := Run(ctx, "bare net/http handler (baseline)", client, opt.Concurrency, opt.Duration, Scenario{Want: http.StatusOK,
		Next: func(int, int) *http.Request {
			req, _ := http.NewRequest("GET", bareURL, nil)
			return req
		}})
	results = append(results, base)
	for _, row := range rows {
		sc, err := row.Setup(ctx, env, opt.Concurrency)
		if err != nil {
			return results, fmt.Errorf("%s: %w", row.Name, err)
		}
		results = append(results, Run(ctx, row.Name, client, opt.Concurrency, opt.Duration, sc))
	}
	Print(opt.Out, results, opt)
	return results, nil
}

// Print writes the results as a table with each row's ratio to the first.
func Print(w io.Writer, results []Result, opt Options) {
	if w == nil || len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\treq/s\tvs baseline\tp50\tp99\tp99 vs baseline\tallocs/req\terrors\t\n")
	base := results[0]
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f%%\t%s\t%s\t%.2fx\t%.0f\t%d\t\n", r.Name, r.RPS(), 100*r.RPS()/base.RPS(),
			r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), float64(r.P99)/float64(base.P99), r.AllocsPerOp, r.Errors)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d connections, %s per row; allocations count the whole process (server and load generator).\n",
		opt.Concurrency, opt.Duration)
}

// Do sends a JSON request and checks the status.
func (e *Env) Do(method, path, tok string, body any, want int) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &out)
	if resp.StatusCode != want {
		return out, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return out, nil
}

// Login runs the password grant.
func (e *Env) Login(email, pw string) (string, error) {
	out, err := e.Do("POST", "/authorization", "", map[string]string{"username": email, "password": pw}, http.StatusOK)
	if err != nil {
		return "", err
	}
	return out["access_token"].(string), nil
}
