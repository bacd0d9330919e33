package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/gatehouse/gatehouse/bench"
)

// runBench runs `gatehouse bench`: an in-process server on SQLite (or the
// database in GATEHOUSE_BENCH_DATABASE_URL) under a built-in load generator.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conc := fs.Int("c", 64, "concurrent connections")
	dur := fs.Duration("d", 5*time.Second, "duration of each row")
	scale := fs.Bool("scale", false, "scale mode: 1,000,000 stored tokens, 100,000 active principals; cold validation p99 and RSS")
	tokens := fs.Int("tokens", 1_000_000, "stored tokens in scale mode")
	principals := fs.Int("principals", 100_000, "active principals in scale mode")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scale {
		_, err := bench.Scale(ctx, bench.ScaleOptions{Tokens: *tokens, Principals: *principals, Samples: 10_000,
			DatabaseURL: getenv("GATEHOUSE_BENCH_DATABASE_URL"), Out: stdout})
		return err
	}
	_, err := bench.Main(ctx, bench.Options{
		Concurrency: *conc, Duration: *dur, Out: stdout,
		DatabaseURL: getenv("GATEHOUSE_BENCH_DATABASE_URL"), RedisURL: getenv("GATEHOUSE_BENCH_REDIS_URL"),
	}, bench.DefaultRows())
	return err
}
