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
	"slices"
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
	// Rounds is how many times the baseline and the rows run, in turn
	// (at least once): each row's ratio is then the mean of its ratios to
	// the baseline run just before it, printed with their range, which
	// shows how much a shared machine's drift moves it.
	Rounds int
	// Wrk, when set, is the path of wrk, which then drives every row
	// instead of the built-in load generator.
	Wrk string
	// CPUProfile, when set, receives a CPU profile of the rows of the
	// first round (not the baseline, nor the rows' setup).
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
	// The baseline is row 0, and on a cluster the ceiling row 1; every
	// row is set up once, before the first round.
	names := []string{"bare net/http handler (baseline)"}
	scenarios := []Scenario{{Want: http.StatusOK, Next: get(bareURL)}}
	if opt.RedisURL != "" {
		ceilingURL, stop, err := startCeiling(ctx, opt.RedisURL, cfg.RedisPrefix+"ceiling:")
		if err != nil {
			return nil, err
		}
		defer stop()
		names, scenarios = append(names, ceilingName), append(scenarios, Scenario{Want: http.StatusOK, Next: get(ceilingURL)})
	}
	first := len(names) // the first of Gatehouse's own rows
	for _, row := range rows {
		sc, err := row.Setup(ctx, env, opt.Concurrency)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", row.Name, err)
		}
		names, scenarios = append(names, row.Name), append(scenarios, sc)
	}
	rounds := make([][]Result, len(scenarios))
	profiling := false
	defer func() {
		if profiling {
			pprof.StopCPUProfile()
		}
	}()
	for r := range max(opt.Rounds, 1) {
		if r == 1 && profiling {
			pprof.StopCPUProfile()
			profiling = false
		}
		for i, sc := range scenarios {
			if i == first && r == 0 && opt.CPUProfile != nil {
				if err := pprof.StartCPUProfile(opt.CPUProfile); err != nil {
					return nil, err
				}
				profiling = true
			}
			c := opt.Concurrency
			if sc.MaxConcurrency > 0 {
				c = min(c, sc.MaxConcurrency)
			}
			res, err := run(names[i], c, sc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", names[i], err)
			}
			rounds[i] = append(rounds[i], res)
		}
	}
	results := make([]Result, len(rounds))
	for i := range rounds {
		results[i] = combine(rounds[i], rounds[0])
	}
	Print(opt.Out, results, opt)
	return results, nil
}

// combine makes one result of a row's rounds: their requests, errors,
// time and CPU added up, the median of their p50s and of their p99s, and
// each round's ratio to the baseline's round (base) in Ratios.
func combine(rounds, base []Result) Result {
	out := Result{Name: rounds[0].Name, Skipped: rounds[0].Skipped}
	var allocs float64
	p50s, p99s := make([]time.Duration, len(rounds)), make([]time.Duration, len(rounds))
	for i, r := range rounds {
		out.Requests += r.Requests
		out.Errors += r.Errors
		out.Duration += r.Duration
		out.CPU += r.CPU
		out.LoadCPU += r.LoadCPU
		allocs += r.AllocsPerOp * float64(r.Requests)
		p50s[i], p99s[i] = r.P50, r.P99
		if b := base[i].RPS(); b > 0 {
			out.Ratios = append(out.Ratios, r.RPS()/b)
		}
	}
	if out.Requests > 0 {
		out.AllocsPerOp = allocs / float64(out.Requests)
	}
	out.P50, out.P99 = median(p50s), median(p99s)
	return out
}

// median returns the middle value of ds (the upper one of an even count).
func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
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
	rounds := len(results[0].Ratios)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\treq/s\tvs baseline\t")
	if rounds > 1 {
		fmt.Fprintf(tw, "rounds' range\t")
	}
	fmt.Fprintf(tw, "p50\tp99\tp99 vs baseline\tserver CPU/req\tallocs/req\terrors\t\n")
	base := results[0]
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t—\t\t\t\t\t\t\t\t\n", r.Name+" (not run: "+r.Skipped+")")
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f%%\t", r.Name, r.RPS(), 100*r.Ratio(base))
		if rounds > 1 {
			fmt.Fprintf(tw, "%.0f–%.0f%%\t", 100*slices.Min(r.Ratios), 100*slices.Max(r.Ratios))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2fx\t%s\t%.0f\t%d\t\n",
			r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), float64(r.P99)/float64(base.P99),
			r.CPUPerOp().Round(100*time.Nanosecond), r.AllocsPerOp, r.Errors)
	}
	tw.Flush()
	gen := "the built-in load generator (in this process; its CPU per request, measured once on threads of its own, is left out of the server's)"
	if opt.Wrk != "" {
		gen = "wrk (-t2, another process)"
	}
	if rounds > 1 {
		fmt.Fprintf(w, "\n%d rounds of the baseline and every row in turn: vs baseline is the mean of a row's ratios to the baseline run just before it; p50 and p99 are the rounds' medians.", rounds)
	}
	if slices.ContainsFunc(results, func(r Result) bool { return r.Name == ceilingName }) {
		fmt.Fprintf(w, "\nThe ceiling row is the baseline's handler with a cluster node's admission alone (one Redis script per batch of requests, as a node sends it): no cluster row can come nearer the baseline on this machine; the rest of the gap is the node's own path, which a single node pays too.")
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
