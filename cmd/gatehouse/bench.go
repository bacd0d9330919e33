package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/bench"
)

// runBench runs `gatehouse bench`: an in-process server on SQLite (or the
// database in GATEHOUSE_BENCH_DATABASE_URL) under a built-in load generator
// or wrk.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conc := fs.Int("c", 64, "concurrent connections")
	dur := fs.Duration("d", 5*time.Second, "duration of each row")
	rounds := fs.Int("rounds", 1, "how many times the baseline and the rows run in turn: each row's ratio is then the mean over the rounds, with its range")
	warmup := fs.Duration("warmup", 2*time.Second, "how long each row runs unmeasured before it is measured")
	scale := fs.Bool("scale", false, "scale mode: 1,000,000 stored tokens, 100,000 active principals; cold validation p99 and RSS")
	tokens := fs.Int("tokens", 1_000_000, "stored tokens in scale mode")
	principals := fs.Int("principals", 100_000, "active principals in scale mode")
	only := fs.String("rows", "", "run only the rows whose name contains one of these comma-separated words (the baseline always runs)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the rows (not the baseline's) to this file")
	wrk := fs.String("wrk", "", "path of wrk, to drive every row with it instead of the built-in load generator (e.g. /usr/bin/wrk)")
	logLevel := fs.String("log-level", "info", "the server's log level: info (as shipped: a line per request) or warn (request log off)")
	soak := fs.Duration("soak", 0, "soak mode for this long (e.g. 10m): a steady mix against a gatehouse serve process, its RSS and database size every -soak-interval")
	soakRate := fs.Int("soak-rate", 400, "requests per second offered in soak mode")
	soakInterval := fs.Duration("soak-interval", 30*time.Second, "how often soak mode samples RSS and database size")
	churn := fs.Bool("churn", false, "churn mode: two gatehouse serve processes on GATEHOUSE_BENCH_DATABASE_URL (PostgreSQL) and GATEHOUSE_BENCH_REDIS_URL; unrelated principals' throughput with and without revocations, -d per phase")
	churnRate := fs.Int("churn-rate", 100, "revocations per second in churn mode")
	churnControl := fs.Bool("churn-control", false, "churn mode: each round also runs a control phase, the same revocations through a third node of another cluster (its own Redis prefix), which the measured nodes do not hear of: what the revocations' own work costs by sharing the machine")
	churnRounds := fs.Int("churn-rounds", 2, "rounds of phases (quiet, then churn, then with -churn-control the control) in churn mode: more and shorter phases average out a shared machine's drift")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	level, ok := logLevels[strings.ToLower(*logLevel)]
	if !ok {
		return fmt.Errorf("log-level: %q is not debug, info, warn or error", *logLevel)
	}
	if *churn {
		_, err := bench.Churn(ctx, bench.ChurnOptions{Duration: *dur, Rate: *churnRate, Rounds: *churnRounds, Control: *churnControl, Concurrency: *conc,
			DatabaseURL: getenv("GATEHOUSE_BENCH_DATABASE_URL"), RedisURL: getenv("GATEHOUSE_BENCH_REDIS_URL"), Out: stdout, Stderr: stderr,
			LogLevel: strings.ToLower(*logLevel)})
		return err
	}
	if *soak > 0 {
		_, err := bench.Soak(ctx, bench.SoakOptions{Duration: *soak, Rate: *soakRate, Interval: *soakInterval,
			DatabaseURL: getenv("GATEHOUSE_BENCH_DATABASE_URL"), Out: stdout, Stderr: stderr, LogLevel: strings.ToLower(*logLevel)})
		return err
	}
	if *scale {
		_, err := bench.Scale(ctx, bench.ScaleOptions{Tokens: *tokens, Principals: *principals, Samples: 10_000,
			DatabaseURL: getenv("GATEHOUSE_BENCH_DATABASE_URL"), Out: stdout})
		return err
	}
	var profile io.Writer
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		profile = f
	}
	rows := bench.DefaultRows()
	if *only != "" {
		rows = slices.DeleteFunc(rows, func(r bench.Row) bool {
			for _, w := range strings.Split(*only, ",") {
				if w != "" && strings.Contains(r.Name, w) {
					return false
				}
			}
			return true
		})
	}
	_, err := bench.Main(ctx, bench.Options{
		Concurrency: *conc, Duration: *dur, Rounds: *rounds, Warmup: *warmup, Out: stdout, Wrk: *wrk, CPUProfile: profile, LogLevel: level,
		DatabaseURL: getenv("GATEHOUSE_BENCH_DATABASE_URL"), RedisURL: getenv("GATEHOUSE_BENCH_REDIS_URL"),
	}, rows)
	return err
}
