package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver, as "pgx"

	"github.com/gatehouse/gatehouse/internal/localserver"
)

// SoakOptions shape a soak: a steady load against a `gatehouse serve`
// process with its shipped settings, sampled at a fixed interval.
type SoakOptions struct {
	// Binary is the gatehouse executable to run as the server; empty means
	// this process's own executable.
	Binary string
	// DatabaseURL is an empty PostgreSQL database (or schema, by its
	// search_path); empty means SQLite in a temporary directory.
	DatabaseURL string
	Duration    time.Duration // whole soak (10m)
	Interval    time.Duration // between samples (30s)
	Rate        int           // requests per second offered (400)
	Concurrency int           // connections (32)
	// TokenLifetime is the access-token lifetime set for both grants, in
	// seconds (the minimum, 60, so that tokens expire during the soak).
	TokenLifetime int
	// Bound is how much the last third's mean may exceed the middle
	// third's for a measure to count as flat (0.10 = 10 %).
	Bound float64
	Out   io.Writer
	// Stderr receives the server's log (warnings and errors); nil discards.
	Stderr io.Writer
	// LogLevel is the server's log level: "" is its default (info, a line
	// per request), as shipped; "warn" turns the request log off.
	LogLevel string
}

// SoakSample is one sample of a soak.
type SoakSample struct {
	At       time.Duration
	Requests int64 // in the interval
	Errors   int64 // answers other than the one expected, transport errors
	RSSBytes int64
	DBBytes  int64
	Issued   int64 // access tokens issued in the interval
}

// SoakResult is what a soak measured.
type SoakResult struct {
	Samples             []SoakSample
	RSSGrowth, DBGrowth float64 // last third's mean over the middle third's, less 1
	RSSFlat, DBFlat     bool
	Requests, Errors    int64
}

// Soak runs a steady mix against a gatehouse serve process: of every 200
// requests, one password grant, 20 client-credentials issuances and 179
// GET /v1/me with one of the recently issued tokens chosen at random, with
// both grants' token lifetime at opt.TokenLifetime so that tokens are
// created and expire throughout. Every opt.Interval it prints the server
// process's RSS (/proc/PID/status) and the database's size (SQLite: the
// file, its WAL and shared memory; PostgreSQL: every relation of the
// schema, indexes and TOAST included), and at the end whether both are
// flat after warm-up: the last third's mean within opt.Bound of the middle
// third's.
func Soak(ctx context.Context, opt SoakOptions) (SoakResult, error) {
	var res SoakResult
	if opt.Duration <= 0 {
		opt.Duration = 10 * time.Minute
	}
	if opt.Interval <= 0 {
		opt.Interval = 30 * time.Second
	}
	if opt.Rate <= 0 {
		opt.Rate = 400
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 32
	}
	if opt.TokenLifetime <= 0 {
		opt.TokenLifetime = 60
	}
	if opt.Bound <= 0 {
		opt.Bound = 0.10
	}
	out, bin, err := processDefaults(&opt.Stderr, opt.Out, opt.Binary)
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "gatehouse-soak")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	dbURL := opt.DatabaseURL
	var size func(context.Context) (int64, error)
	if dbURL == "" {
		path := filepath.Join(dir, "soak.db")
		dbURL = path
		size = func(context.Context) (int64, error) { return sqliteSize(path), nil }
	} else {
		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			return res, err
		}
		defer db.Close()
		size = func(ctx context.Context) (int64, error) { return postgresSize(ctx, db) }
	}
	srv, err := startNode(ctx, bin, opt.Stderr, opt.LogLevel, "--database-url", dbURL)
	if err != nil {
		return res, err
	}
	defer srv.Stop()

	// The account: limits lifted (the soak measures memory and disk, not
	// refusals), short token lifetimes, a developer with a credential.
	c := &localserver.Client{URL: srv.URL, HTTP: NewClient(4)}
	const adminEmail = "admin@example.com"
	admin, err := c.Login(ctx, adminEmail, processAdminPassword)
	if err != nil {
		return res, err
	}
	call := func(method, path, tok string, body any, want int) (map[string]any, error) {
		r, err := c.Do(ctx, method, path, body, "Authorization", "Bearer "+tok)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		if r.Status != want {
			return nil, fmt.Errorf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		return m, nil
	}
	if _, err := call("PUT", "/v1/settings", admin, map[string]any{
		"rate_limit":      map[string]int{"daily": 100_000_000, "burst": 1_000_000, "burst_window_seconds": 1},
		"token_lifetimes": map[string]int{"password_seconds": opt.TokenLifetime, "client_credentials_seconds": opt.TokenLifetime},
	}, http.StatusOK); err != nil {
		return res, err
	}
	const devEmail = "soak-dev@example.com"
	if _, err := call("POST", "/v1/users", admin, map[string]any{"email": devEmail, "password": benchPassword, "roles": []string{"developer"}}, http.StatusCreated); err != nil {
		return res, err
	}
	dev, err := c.Login(ctx, devEmail, benchPassword)
	if err != nil {
		return res, err
	}
	cred, err := call("POST", "/v1/credentials", dev, map[string]string{"name": "soak"}, http.StatusCreated)
	if err != nil {
		return res, err
	}
	ccBody := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred["client_id"].(string)}, "client_secret": {cred["client_secret"].(string)}}.Encode()
	pwBody := url.Values{"username": {devEmail}, "password": {benchPassword}}.Encode()

	// Recently issued tokens, which the GETs use; each is replaced well
	// before it expires.
	var ring struct {
		sync.Mutex
		toks []string
		next int
	}
	ring.toks = []string{dev}
	keep := func(body []byte) {
		var t struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(body, &t) != nil || t.AccessToken == "" {
			return
		}
		ring.Lock()
		if len(ring.toks) < 512 {
			ring.toks = append(ring.toks, t.AccessToken)
		} else {
			ring.toks[ring.next] = t.AccessToken
			ring.next = (ring.next + 1) % len(ring.toks)
		}
		ring.Unlock()
	}
	pick := func() string {
		ring.Lock()
		defer ring.Unlock()
		return ring.toks[rand.IntN(len(ring.toks))]
	}

	var reqs, errs, issued atomic.Int64
	loadCtx, stop := context.WithTimeout(ctx, opt.Duration)
	defer stop()
	var wg sync.WaitGroup
	per := time.Duration(float64(time.Second) * float64(opt.Concurrency) / float64(opt.Rate))
	start := time.Now()
	for w := 0; w < opt.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cl := &client{}
			defer cl.close()
			next := start.Add(time.Duration(rand.Int64N(int64(per))))
			for n := w; loadCtx.Err() == nil; n += opt.Concurrency {
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d):
					case <-loadCtx.Done():
						return
					}
				}
				next = next.Add(per)
				var req *http.Request
				issue := true
				switch {
				case n%200 == 0:
					req = formPost(srv.URL+"/authorization", pwBody)
				case n%10 == 0:
					req = formPost(srv.URL+"/oauth/token", ccBody)
				default:
					issue = false
					req, _ = http.NewRequest("GET", srv.URL+"/v1/me", nil)
					req.Header.Set("Authorization", "Bearer "+pick())
				}
				status, body, err := cl.do(req, issue)
				if loadCtx.Err() != nil {
					return
				}
				reqs.Add(1)
				if err != nil || status != http.StatusOK {
					errs.Add(1)
					continue
				}
				if issue {
					issued.Add(1)
					keep(body)
				}
			}
		}(w)
	}

	fmt.Fprintf(out, "soak: %s at %d req/s offered over %d connections, token lifetime %d s, sampled every %s (server pid %d, %s)\nserver %s\n",
		opt.Duration, opt.Rate, opt.Concurrency, opt.TokenLifetime, opt.Interval, srv.cmd.Process.Pid, storeName(opt.DatabaseURL), logNote(opt.LogLevel))
	fmt.Fprintf(out, "%8s %9s %7s %9s %9s %9s\n", "t", "req/s", "errors", "RSS MiB", "DB MiB", "issued")
	var lastReqs, lastErrs, lastIssued int64
	tick := time.NewTicker(opt.Interval)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-tick.C:
		case <-loadCtx.Done():
			done = true
		}
		now := time.Now()
		if done && len(res.Samples) > 0 && now.Sub(start)-res.Samples[len(res.Samples)-1].At < opt.Interval/2 {
			break // the ticker's last sample was the end
		}
		db, err := size(ctx)
		if err != nil {
			return res, err
		}
		r, e, i := reqs.Load(), errs.Load(), issued.Load()
		s := SoakSample{At: now.Sub(start).Round(time.Second), Requests: r - lastReqs, Errors: e - lastErrs,
			RSSBytes: srv.RSS(), DBBytes: db, Issued: i - lastIssued}
		lastReqs, lastErrs, lastIssued = r, e, i
		res.Samples = append(res.Samples, s)
		elapsed := s.At
		if len(res.Samples) > 1 {
			elapsed = s.At - res.Samples[len(res.Samples)-2].At
		}
		fmt.Fprintf(out, "%8s %9.0f %7d %9.1f %9.1f %9d\n", s.At, float64(s.Requests)/elapsed.Seconds(), s.Errors,
			float64(s.RSSBytes)/(1<<20), float64(s.DBBytes)/(1<<20), s.Issued)
	}
	wg.Wait()
	res.Requests, res.Errors = reqs.Load(), errs.Load()
	if len(res.Samples) < 3 {
		return res, errors.New("soak: fewer than 3 samples; make the duration at least three intervals")
	}
	third := len(res.Samples) / 3
	mid, last := res.Samples[third:2*third], res.Samples[len(res.Samples)-third:]
	mean := func(ss []SoakSample, f func(SoakSample) int64) float64 {
		var t float64
		for _, s := range ss {
			t += float64(f(s))
		}
		return t / float64(len(ss))
	}
	rssOf := func(s SoakSample) int64 { return s.RSSBytes }
	dbOf := func(s SoakSample) int64 { return s.DBBytes }
	res.RSSGrowth = mean(last, rssOf)/mean(mid, rssOf) - 1
	res.DBGrowth = mean(last, dbOf)/mean(mid, dbOf) - 1
	res.RSSFlat, res.DBFlat = res.RSSGrowth <= opt.Bound, res.DBGrowth <= opt.Bound
	verdict := func(flat bool) string {
		if flat {
			return "flat"
		}
		return "NOT flat"
	}
	fmt.Fprintf(out, "%d requests, %d errors. Last third against middle third (means): RSS %+.1f%% (%s), database %+.1f%% (%s); bound +%.0f%%.\n",
		res.Requests, res.Errors, 100*res.RSSGrowth, verdict(res.RSSFlat), 100*res.DBGrowth, verdict(res.DBFlat), 100*opt.Bound)
	return res, nil
}

// storeName names the store of a database URL for the report.
func storeName(databaseURL string) string {
	if databaseURL == "" {
		return "SQLite"
	}
	return "PostgreSQL"
}

// sqliteSize is the size of a SQLite database on disk: the file, its WAL
// and its shared-memory file.
func sqliteSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// postgresSize is the size of every relation of the connection's schema
// (its first search_path entry), indexes and TOAST included: what this
// server's data takes, whatever else shares the database.
func postgresSize(ctx context.Context, db *sql.DB) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
		WHERE ns.nspname = current_schema() AND c.relkind IN ('r', 'm')`).Scan(&n)
	return n, err
}
