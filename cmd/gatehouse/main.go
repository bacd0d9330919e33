// Command gatehouse runs the Gatehouse API access server.
//
//	gatehouse serve     run the server
//	gatehouse migrate   apply database migrations and exit
//	gatehouse version   print the version
//
// Every setting is a flag and a GATEHOUSE_* environment variable; a flag
// given on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/store"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gatehouse:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: gatehouse <command> [flags]

commands:
  serve     run the server
  migrate   apply database migrations and exit
  version   print the version
  bench     measure the server under load and print a table

Run "gatehouse serve -h" for the settings.
`

// Main runs one command. It returns when the command is done or, for serve,
// when ctx ends (after a graceful shutdown).
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "gatehouse", Version)
		return nil
	case "migrate":
		cfg, _, err := parseConfig("migrate", args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		st, err := store.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.Migrate(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	case "serve":
		cfg, opts, err := parseConfig("serve", args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		cfg.Stdout = stdout
		cfg.Logger = newLogger(stderr, opts.logFormat, opts.logLevel)
		return serve(ctx, cfg)
	case "bench":
		return runBench(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(ctx context.Context, cfg server.Config) error {
	srv := server.New(cfg)
	if err := srv.Open(ctx); err != nil {
		srv.Close()
		return err
	}
	cfg.Logger.Info("gatehouse listening", "addr", srv.Addr(), "version", Version)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case err := <-errc:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	cfg.Logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

type logOptions struct{ logFormat, logLevel string }

// parseConfig reads flags over environment variables over defaults.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (server.Config, logOptions, error) {
	cfg := server.DefaultConfig()
	var lo logOptions
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(p *string, flagName, env, help string) {
		if v := getenv(env); v != "" {
			*p = v
		}
		fs.StringVar(p, flagName, *p, help+" ($"+env+")")
	}
	str(&cfg.Addr, "addr", "GATEHOUSE_ADDR", "listen address")
	str(&cfg.DatabaseURL, "database-url", "GATEHOUSE_DATABASE_URL", "SQLite file path or postgres:// URL")
	str(&cfg.AdminEmail, "admin-email", "GATEHOUSE_ADMIN_EMAIL", "bootstrap operator-admin e-mail")
	str(&cfg.AdminPassword, "admin-password", "GATEHOUSE_ADMIN_PASSWORD", "bootstrap operator-admin password (empty: generate and print once)")
	str(&cfg.TokenKey, "token-key", "GATEHOUSE_TOKEN_KEY", "optional HMAC key for stored token digests (changing it invalidates every token)")
	str(&cfg.APITokenHeader, "api-token-header", "GATEHOUSE_API_TOKEN_HEADER", "header that carries an API token")
	str(&cfg.UserEmailHeader, "user-email-header", "GATEHOUSE_USER_EMAIL_HEADER", "act-as-user header for API tokens")
	str(&cfg.BurstRemainingHeader, "burst-remaining-header", "GATEHOUSE_BURST_REMAINING_HEADER", "header with the requests left in the burst window")
	str(&cfg.DailyRemainingHeader, "daily-remaining-header", "GATEHOUSE_DAILY_REMAINING_HEADER", "header with the requests left in the daily window")
	rlStatus := strconv.Itoa(cfg.RateLimitStatus)
	str(&rlStatus, "rate-limit-status", "GATEHOUSE_RATE_LIMIT_STATUS", "HTTP status of a refusal for the rate limit (e.g. 429)")
	str(&cfg.RedisURL, "redis-url", "GATEHOUSE_REDIS_URL", "redis://… for a cluster: shared rate limits and revocation (empty: in memory)")
	str(&cfg.RedisPrefix, "redis-prefix", "GATEHOUSE_REDIS_PREFIX", "prefix of every Redis key (to share one Redis between clusters)")
	str(&cfg.Upstream, "upstream", "GATEHOUSE_UPSTREAM", "gateway mode: proxy authenticated requests that match no Gatehouse route to this URL")
	lo.logFormat, lo.logLevel = "text", "info"
	str(&lo.logFormat, "log-format", "GATEHOUSE_LOG_FORMAT", "log format: text or json")
	str(&lo.logLevel, "log-level", "GATEHOUSE_LOG_LEVEL", "log level: debug, info, warn or error")
	grace := cfg.RefreshGrace.String()
	str(&grace, "refresh-grace", "GATEHOUSE_REFRESH_GRACE", "how long a used refresh token may be retried before reuse revokes its lineage")
	if err := fs.Parse(args); err != nil {
		return cfg, lo, err
	}
	if fs.NArg() > 0 {
		return cfg, lo, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	d, err := time.ParseDuration(grace)
	if err != nil || d < 0 {
		return cfg, lo, fmt.Errorf("refresh-grace: %q is not a duration", grace)
	}
	cfg.RefreshGrace = d
	if cfg.RateLimitStatus, err = strconv.Atoi(rlStatus); err != nil || cfg.RateLimitStatus < 400 || cfg.RateLimitStatus > 599 {
		return cfg, lo, fmt.Errorf("rate-limit-status: %q is not a 4xx or 5xx status", rlStatus)
	}
	if lo.logFormat != "text" && lo.logFormat != "json" {
		return cfg, lo, fmt.Errorf("log-format must be text or json")
	}
	for _, h := range []string{cfg.APITokenHeader, cfg.UserEmailHeader, cfg.BurstRemainingHeader, cfg.DailyRemainingHeader} {
		if h == "" || strings.ContainsAny(h, " :\r\n") {
			return cfg, lo, fmt.Errorf("header name %q is not valid", h)
		}
	}
	return cfg, lo, nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
