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
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, err := bench.Main(ctx, bench.Options{
		Concurrency: *conc, Duration: *dur, Out: stdout,
		DatabaseURL: getenv("GATEHOUSE_BENCH_DATABASE_URL"),
	}, bench.DefaultRows())
	return err
}
