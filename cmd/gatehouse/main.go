// Command gatehouse runs the Gatehouse API access server.
//
//	gatehouse serve     run the server
//	gatehouse migrate   apply database migrations and exit
//	gatehouse version   print the version and VCS revision (also --version)
//	gatehouse recover   break-glass: make an e-mail an operator-admin with a new password
//	gatehouse audit-export          every account's audit log as JSON lines
//	gatehouse reapply-revocations   re-apply revocations after a restore
//	gatehouse healthcheck  GET /healthz of the configured server; exit 0 or 1
//
// Every setting is a flag, a GATEHOUSE_* environment variable and a key of
// the --config YAML file; a flag given on the command line wins over the
// environment, which wins over the file.
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
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/logx"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/store"
)

// Version, when set at build time with -ldflags "-X main.Version=…", wins
// over the module version in the build information.
var Version = ""

// Revision, when set at build time with -ldflags "-X main.Revision=…" (as
// scripts/release.sh does), wins over the VCS revision in the build
// information.
var Revision = ""

// buildVersion returns the version (Version, else the main module's version
// from the build information: a tag, or "(devel)" for a build of a
// checkout) and the VCS revision the binary was built from ("unknown" when
// the build recorded none; "-modified" when the tree had changes).
func buildVersion() (version, revision string) {
	version, revision = Version, "unknown"
	if Revision != "" {
		revision = Revision
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if version == "" {
			version = "(unknown)"
		}
		return version, revision
	}
	if version == "" {
		version = bi.Main.Version
	}
	if version == "" {
		version = "(devel)"
	}
	modified := false
	for _, st := range bi.Settings {
		switch st.Key {
		case "vcs.revision":
			revision = st.Value
		case "vcs.modified":
			modified = st.Value == "true"
		}
	}
	if modified && revision != "unknown" {
		revision += "-modified"
	}
	if Revision != "" {
		revision = Revision
	}
	return version, revision
}

// versionLine is what "gatehouse version" prints.
func versionLine() string {
	v, rev := buildVersion()
	return fmt.Sprintf("gatehouse %s revision %s %s", v, rev, runtime.Version())
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gatehouse:", err)
		}
		var exit *exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
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
  token-patterns  print, per kind, the regular expression a secret scanner should use
  recover   break-glass: make --email an active operator-admin with a new password
  audit-export         write every account's audit log (after --since) as JSON lines
  reapply-revocations  after a restore: re-apply the revocations of --audit FILE made after --since
  healthcheck          GET /healthz of the configured server (on --ops-addr, if set);
                       exit 0 when it answers 200, else 1

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
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionLine())
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
		var closeLog func() error
		cfg.Logger, closeLog = logx.Open(stderr, opts.logFormat == "json", opts.level)
		defer closeLog()
		return serve(ctx, cfg)
	case "bench":
		return runBench(ctx, args[1:], getenv, stdout, stderr)
	case "recover":
		return runRecover(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	case "audit-export":
		return runAuditExport(ctx, args[1:], getenv, stdout, stderr)
	case "reapply-revocations":
		return runReapplyRevocations(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], getenv, stdout, stderr)
	case "token-patterns":
		return tokenPatterns(args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(ctx context.Context, cfg server.Config) error {
	// SIGHUP reads the TLS certificate again; listen for it before anything
	// starts, so that an early one cannot end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv := server.New(cfg)
	if err := srv.Open(ctx); err != nil {
		srv.Close()
		return err
	}
	version, revision := buildVersion()
	cfg.Logger.Info("gatehouse listening", "addr", srv.Addr(), "url", srv.Issuer(),
		"admin_ui", srv.ConsoleURL(), "tls", cfg.TLSCert != "",
		"trusted_proxies", cfg.TrustedProxies.String(), "forwarded_header", string(cfg.ForwardedHeader), "version", version, "revision", revision)
	if ops := srv.OpsAddr(); ops != "" {
		cfg.Logger.Info("ops listener: /metrics, /healthz and /readyz", "ops_addr", ops)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	for {
		select {
		case err := <-errc:
			srv.Close()
			return err
		case <-hup:
			if err := srv.ReloadTLS(); err != nil {
				cfg.Logger.Error("could not reload the TLS certificate; keeping the current one", "err", err)
			} else if cfg.TLSCert != "" {
				cfg.Logger.Info("TLS certificate reloaded", "cert", cfg.TLSCert)
			}
		case <-ctx.Done():
			cfg.Logger.Info("shutting down")
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			return srv.Shutdown(shutdownCtx)
		}
	}
}

type logOptions struct {
	logFormat, logLevel string
	level               slog.Level
}

// logLevels are the accepted --log-level values.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// parseConfig reads flags over environment variables over defaults, and
// validates the result: a setting that makes no sense is an error, never
// silently replaced.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (server.Config, logOptions, error) {
	cfg := server.DefaultConfig()
	var lo logOptions
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// str defines a string flag whose default is the built-in one — what
	// the usage text prints, so that a mistyped flag never prints a
	// secret the environment holds — and then takes the environment's
	// value, which a flag given on the command line overrides.
	str := func(p *string, flagName, env, help string) {
		fs.StringVar(p, flagName, *p, help+" ($"+env+")")
		if v := getenv(env); v != "" {
			*p = v
		}
	}
	configPath := ""
	str(&configPath, configFlag, configFileEnv, "YAML file of settings, named as these flags without the dashes (flags and the environment win over it)")
	str(&cfg.OpsAddr, "ops-addr", "GATEHOUSE_OPS_ADDR", "second listen address (plain HTTP) for /metrics, /healthz and /readyz, which then answer 404 on --addr")
	str(&cfg.Addr, "addr", "GATEHOUSE_ADDR", "listen address")
	str(&cfg.DatabaseURL, "database-url", "GATEHOUSE_DATABASE_URL", "SQLite file path (or sqlite:PATH, sqlite:///abs/path) or postgres:// URL")
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
	str(&cfg.TokenPrefix, "token-prefix", "GATEHOUSE_TOKEN_PREFIX", "deployment name new secrets start with (acme: acme_ak_…); 2-12 of a-z0-9, starting with a letter")
	str(&cfg.GitHubScanningKeys, "github-scanning-keys", "GATEHOUSE_GITHUB_SCANNING_KEYS", "URL or file of GitHub's secret scanning public keys (empty: GitHub's URL)")
	str(&cfg.RedisPrefix, "redis-prefix", "GATEHOUSE_REDIS_PREFIX", "prefix of every Redis key (to share one Redis between clusters)")
	str(&cfg.Upstream, "upstream", "GATEHOUSE_UPSTREAM", "gateway mode: proxy authenticated requests that match no Gatehouse route to this URL")
	str(&cfg.GatewayRoutes, "gateway-routes", "GATEHOUSE_GATEWAY_ROUTES", "JSON or YAML file of route rules for the gateway and /v1/auth/check: the scopes a method and path need, or public")
	str(&cfg.ManagementPrefix, "management-prefix", "GATEHOUSE_MANAGEMENT_PREFIX", "path prefix (e.g. /gatehouse) for the management API, the sample resource, /v1/auth/check and /admin")
	str(&cfg.ConsoleAddr, "console-addr", "GATEHOUSE_CONSOLE_ADDR", "second listen address serving the admin console alone (with --upstream, the console needs an origin of its own)")
	str(&cfg.ConsoleHost, "console-host", "GATEHOUSE_CONSOLE_HOST", "host name (e.g. admin.example.com) to which the main address serves the admin console, and never the upstream")
	var envErr error
	if v := getenv("GATEHOUSE_CONSOLE_SAME_ORIGIN"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErr = fmt.Errorf("GATEHOUSE_CONSOLE_SAME_ORIGIN: %q is not true or false", v)
		}
		cfg.ConsoleSameOrigin = b
	}
	fs.BoolVar(&cfg.ConsoleSameOrigin, "console-same-origin", cfg.ConsoleSameOrigin,
		"serve the admin console beside the upstream's pages, on one origin (not recommended) ($GATEHOUSE_CONSOLE_SAME_ORIGIN)")
	if v := getenv("GATEHOUSE_WEBHOOK_ALLOW_INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErr = fmt.Errorf("GATEHOUSE_WEBHOOK_ALLOW_INSECURE: %q is not true or false", v)
		}
		cfg.WebhookAllowInsecure = b
	}
	fs.BoolVar(&cfg.WebhookAllowInsecure, "webhook-allow-insecure", cfg.WebhookAllowInsecure,
		"let webhook endpoints use http and private or loopback addresses (tests and development only) ($GATEHOUSE_WEBHOOK_ALLOW_INSECURE)")
	if v := getenv("GATEHOUSE_NO_WEBHOOK_DELIVERY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErr = fmt.Errorf("GATEHOUSE_NO_WEBHOOK_DELIVERY: %q is not true or false", v)
		}
		cfg.NoWebhookDelivery = b
	}
	fs.BoolVar(&cfg.NoWebhookDelivery, "no-webhook-delivery", cfg.NoWebhookDelivery,
		"write webhook events with their changes but leave their delivery to other nodes (or to this one restarted without it) ($GATEHOUSE_NO_WEBHOOK_DELIVERY)")
	if v := getenv("GATEHOUSE_DYNAMIC_REGISTRATION"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErr = fmt.Errorf("GATEHOUSE_DYNAMIC_REGISTRATION: %q is not true or false", v)
		}
		cfg.DynamicRegistration = b
	}
	fs.BoolVar(&cfg.DynamicRegistration, "dynamic-registration", cfg.DynamicRegistration,
		"let clients register themselves at /oauth/register (RFC 7591): public, unverified, owned by no account ($GATEHOUSE_DYNAMIC_REGISTRATION)")
	str(&cfg.GatewayResource, "gateway-resource", "GATEHOUSE_GATEWAY_RESOURCE", "the gateway's resource identifier (RFC 8707/9728; default the public URL): tokens bound to another resource are refused")
	maxConns := strconv.Itoa(cfg.MaxConnsPerIP)
	str(&maxConns, "max-conns-per-ip", "GATEHOUSE_MAX_CONNS_PER_IP", "most connections one client address may hold open (trusted proxies exempt; 0: no limit)")
	str(&cfg.PublicURL, "public-url", "GATEHOUSE_PUBLIC_URL", "origin clients use (e.g. https://auth.example.com): the OAuth issuer and every advertised URL")
	platform := ""
	str(&platform, "platform-scopes", "GATEHOUSE_PLATFORM_SCOPES", "comma-separated platform scopes besides those --gateway-routes names: granted to accounts only by the operator")
	proxies := ""
	str(&proxies, "trusted-proxies", "GATEHOUSE_TRUSTED_PROXIES", "comma-separated CIDRs of proxies whose forwarding headers (--forwarded-header) are believed")
	forwarded := ""
	str(&forwarded, "forwarded-header", "GATEHOUSE_FORWARDED_HEADER", "the header the trusted proxies write the client's address in, the only one read: x-forwarded-for (with X-Forwarded-Proto; the default) or forwarded (RFC 7239)")
	str(&cfg.TLSCert, "tls-cert", "GATEHOUSE_TLS_CERT", "PEM certificate chain file: serve HTTPS and HTTP/2 (read again on SIGHUP)")
	str(&cfg.TLSKey, "tls-key", "GATEHOUSE_TLS_KEY", "PEM private key file of --tls-cert")
	lo.logFormat, lo.logLevel = "text", "info"
	str(&lo.logFormat, "log-format", "GATEHOUSE_LOG_FORMAT", "log format: text or json")
	str(&lo.logLevel, "log-level", "GATEHOUSE_LOG_LEVEL", "log level: debug, info, warn or error")
	durations := []struct {
		p          *time.Duration
		flag, text string
	}{
		{&cfg.RefreshGrace, "refresh-grace", cfg.RefreshGrace.String()},
		{&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout.String()},
		{&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout.String()},
		{&cfg.ProxyTimeout, "proxy-timeout", cfg.ProxyTimeout.String()},
		{&cfg.StoreTimeout, "store-timeout", cfg.StoreTimeout.String()},
	}
	str(&durations[0].text, "refresh-grace", "GATEHOUSE_REFRESH_GRACE", "how long a used refresh token may be retried before reuse revokes its lineage")
	str(&durations[1].text, "read-timeout", "GATEHOUSE_READ_TIMEOUT", "longest time to read a whole request (a proxied request: each read of its body)")
	str(&durations[2].text, "write-timeout", "GATEHOUSE_WRITE_TIMEOUT", "longest time to write a whole answer (a proxied request: each write of its answer)")
	str(&durations[3].text, "proxy-timeout", "GATEHOUSE_PROXY_TIMEOUT", "longest time a proxied request may last, its request body and answer included")
	str(&durations[4].text, "store-timeout", "GATEHOUSE_STORE_TIMEOUT", "longest time one database or Redis call may take before the request is answered 503 with Retry-After")
	retention, cacheSize := "90d", "128MiB"
	str(&retention, "retention", "GATEHOUSE_RETENTION", "how long audit entries, usage counts and used refresh tokens are kept (e.g. 90d, 720h)")
	str(&cacheSize, "cache-size", "GATEHOUSE_CACHE_SIZE", "bound of the in-memory caches, in bytes (e.g. 128MiB, 1GiB)")
	if err := parseFlags(fs, args); err != nil {
		return cfg, lo, err
	}
	if configPath != "" {
		if err := applyConfigFile(fs, configPath, getenv); err != nil {
			return cfg, lo, err
		}
	}
	for _, d := range durations {
		v, err := time.ParseDuration(d.text)
		switch {
		case err != nil:
			return cfg, lo, fmt.Errorf("%s: %q is not a duration (e.g. 5s, 2m)", d.flag, d.text)
		case v < 0:
			return cfg, lo, fmt.Errorf("%s: %q must not be negative", d.flag, d.text)
		case v == 0 && d.flag != "refresh-grace":
			return cfg, lo, fmt.Errorf("%s: must be longer than zero", d.flag)
		}
		*d.p = v
	}
	if envErr != nil {
		return cfg, lo, envErr
	}
	var err error
	if cfg.MaxConnsPerIP, err = strconv.Atoi(maxConns); err != nil || cfg.MaxConnsPerIP < 0 {
		return cfg, lo, fmt.Errorf("max-conns-per-ip: %q is not a number of connections (0: no limit)", maxConns)
	}
	if cfg.Retention, err = parseDays(retention); err != nil || cfg.Retention <= 0 {
		return cfg, lo, fmt.Errorf("retention: %q is not a positive duration (e.g. 90d, 720h)", retention)
	}
	if cfg.CacheSize, err = parseBytes(cacheSize); err != nil || cfg.CacheSize < 1<<20 {
		return cfg, lo, fmt.Errorf("cache-size: %q is not a size of at least 1MiB (e.g. 128MiB, 1GiB)", cacheSize)
	}
	if cfg.RateLimitStatus, err = strconv.Atoi(rlStatus); err != nil || cfg.RateLimitStatus < 400 || cfg.RateLimitStatus > 599 {
		return cfg, lo, fmt.Errorf("rate-limit-status: %q is not a 4xx or 5xx status", rlStatus)
	}
	if lo.logFormat != "text" && lo.logFormat != "json" {
		return cfg, lo, fmt.Errorf("log-format: %q is not text or json", lo.logFormat)
	}
	lvl, ok := logLevels[strings.ToLower(lo.logLevel)]
	if !ok {
		return cfg, lo, fmt.Errorf("log-level: %q is not debug, info, warn or error", lo.logLevel)
	}
	lo.level = lvl
	cfg.PlatformScopes = server.ParsePlatformScopes(platform)
	if cfg.TrustedProxies, err = httpx.ParseTrustedProxies(proxies); err != nil {
		return cfg, lo, fmt.Errorf("trusted-proxies: %w", err)
	}
	if cfg.ForwardedHeader, err = httpx.ParseForwardedHeader(forwarded); err != nil {
		return cfg, lo, fmt.Errorf("forwarded-header: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, lo, err
	}
	return cfg, lo, nil
}

// parseFlags parses a subcommand's flags and refuses anything left over:
// flag parsing stops at the first word that is not a flag, so a flag
// written without its dashes ("since 2026-01-31T04:00:00Z") would leave it
// and every flag after it unread.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (every setting is a flag: --name value)", fs.Arg(0))
	}
	return nil
}

// parseDays is time.ParseDuration that also takes whole days ("90d").
func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// byteUnits are the suffixes parseBytes takes, longest first.
var byteUnits = []struct {
	suffix string
	n      int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}

// parseBytes reads a size in bytes: a whole number, with an optional unit
// (B, KB, MB, GB, KiB, MiB, GiB).
func parseBytes(s string) (int64, error) {
	unit := int64(1)
	for _, u := range byteUnits {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(v), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/unit {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * unit, nil
}
