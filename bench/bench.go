package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/localserver"
	"github.com/gatehouse/gatehouse/logx"
	"github.com/gatehouse/gatehouse/server"
)

// Options control a bench run.
type Options struct {
	Concurrency int
	Duration    time.Duration // per row
	// Warmup is how long each row (the baseline too) runs unmeasured
	// before its Duration: a node's first seconds under load (its heap
	// growing, its pools and connections filling) are not its steady state.
	Warmup      time.Duration
	DatabaseURL string // empty: SQLite in a temporary directory; else an empty PostgreSQL database
	RedisURL    string // set: rate limits and invalidation through Redis (cluster mode)
	// Wrk, when set, is the path of wrk, which then drives every row
	// instead of the built-in load generator.
	Wrk string
	// CPUProfile, when set, receives a CPU profile of the rows after the
	// baseline (their setup included).
	CPUProfile io.Writer
	Out        io.Writer
	// LogLevel is the server's log level. The zero value, info, is the
	// shipped configuration: a line per request, in the text format, to a
	// file in the bench's temporary directory (as `gatehouse serve
	// 2>file`). Warn turns the request log off.
	LogLevel slog.Level
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

	cfg := localserver.Config(opt.DatabaseURL)
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	var closeLog func() error
	cfg.Logger, closeLog = logx.Open(logFile, false, opt.LogLevel)
	defer closeLog()
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = filepath.Join(dir, "bench.db")
	}
	cfg.AdminPassword = benchPassword
	cfg.RedisURL, cfg.RedisPrefix = opt.RedisURL, fmt.Sprintf("gatehouse-bench:%d:", time.Now().UnixNano())
	cfg.Upstream = strings.TrimSuffix(bareURL, "/") // the gateway rows proxy to the baseline
	srv, err := localserver.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer srv.Close()

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

	var loadPerReq time.Duration
	if opt.Wrk == "" {
		loadPerReq = calibrate(ctx, opt, Scenario{Want: http.StatusOK, Next: get(bareURL)})
	}
	run := func(name string, c int, sc Scenario) (Result, error) {
		if opt.Warmup > 0 {
			if opt.Wrk != "" {
				if _, err := RunWrk(ctx, opt.Wrk, name, c, opt.Warmup, sc); err != nil {
					return Result{}, err
				}
			} else {
				Run(ctx, name, c, opt.Warmup, sc, false, loadPerReq)
			}
		}
		if opt.Wrk != "" {
			return RunWrk(ctx, opt.Wrk, name, c, opt.Duration, sc)
		}
		return Run(ctx, name, c, opt.Duration, sc, false, loadPerReq), nil
	}
	var results []Result
	base, err := run("bare net/http handler (baseline)", opt.Concurrency, Scenario{Want: http.StatusOK, Next: get(bareURL)})
	if err != nil {
		return nil, err
	}
	results = append(results, base)
	if opt.CPUProfile != nil {
		if err := pprof.StartCPUProfile(opt.CPUProfile); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	for _, row := range rows {
		sc, err := row.Setup(ctx, env, opt.Concurrency)
		if err != nil {
			return results, fmt.Errorf("%s: %w", row.Name, err)
		}
		c := opt.Concurrency
		if sc.MaxConcurrency > 0 {
			c = min(c, sc.MaxConcurrency)
		}
		res, err := run(row.Name, c, sc)
		if err != nil {
			return results, fmt.Errorf("%s: %w", row.Name, err)
		}
		results = append(results, res)
	}
	Print(opt.Out, results, opt)
	return results, nil
}

// calibrate returns the built-in generator's CPU time per request against
// the baseline handler sc: the process's CPU per request, less the
// handler's own, measured in a second run with the generator on threads
// of its own (whose CPU is then known; see Run).
func calibrate(ctx context.Context, opt Options, sc Scenario) time.Duration {
	d := min(opt.Duration, 2*time.Second)
	shared := Run(ctx, "calibration", opt.Concurrency, d, sc, false, 0)
	own := Run(ctx, "calibration", opt.Concurrency, d, sc, true, 0)
	if shared.Requests == 0 || own.Requests == 0 {
		return 0
	}
	handler := own.CPU / time.Duration(own.Requests)
	return max(shared.CPU/time.Duration(shared.Requests)-handler, 0)
}

// Print writes the results as a table with each row's ratio to the first.
func Print(w io.Writer, results []Result, opt Options) {
	if w == nil || len(results) == 0 {
		return
	}
	if opt.LogLevel <= slog.LevelInfo {
		fmt.Fprintf(w, "Server as shipped: request log on (text, level %s, buffered, to a file).\n\n", opt.LogLevel)
	} else {
		fmt.Fprintf(w, "Request log OFF (level %s): not the shipped configuration.\n\n", opt.LogLevel)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\treq/s\tvs baseline\tp50\tp99\tp99 vs baseline\tserver CPU/req\tallocs/req\terrors\t\n")
	base := results[0]
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t—\t\t\t\t\t\t\t\t\n", r.Name+" (not run: "+r.Skipped+")")
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f%%\t%s\t%s\t%.2fx\t%s\t%.0f\t%d\t\n", r.Name, r.RPS(), 100*r.RPS()/base.RPS(),
			r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), float64(r.P99)/float64(base.P99),
			r.CPUPerOp().Round(100*time.Nanosecond), r.AllocsPerOp, r.Errors)
	}
	tw.Flush()
	gen := "the built-in load generator (in this process; its CPU per request, measured once on threads of its own, is left out of the server's)"
	if opt.Wrk != "" {
		gen = "wrk (-t2, another process)"
	}
	fmt.Fprintf(w, "\n%d connections, %s per row, driven by %s.\nServer CPU/req is the process's user+system CPU time (getrusage) across the row per request; allocations count the whole process.\n",
		opt.Concurrency, opt.Duration, gen)
}

// Do sends body as JSON, with the bearer token tok unless it is empty,
// and returns the JSON object answered; any status but want is an error.
func (e *Env) Do(method, path, tok string, body any, want int) (map[string]any, error) {
	var headers []string
	if tok != "" {
		headers = []string{"Authorization", "Bearer " + tok}
	}
	r, err := e.client().Do(context.Background(), method, path, body, headers...)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	_ = json.Unmarshal(r.Body, &out)
	if r.Status != want {
		return out, fmt.Errorf("%s %s: %d %s", method, path, r.Status, r.Body)
	}
	return out, nil
}

// Login runs the password grant and returns the access token.
func (e *Env) Login(email, pw string) (string, error) {
	return e.client().Login(context.Background(), email, pw)
}

func (e *Env) client() *localserver.Client {
	return &localserver.Client{URL: e.URL, HTTP: e.Client}
}
