// Package server wires Gatehouse together: it opens the store, bootstraps
// it, builds the HTTP handler from the API, OAuth and auth packages, and
// runs the HTTP server with sane timeouts.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admin"
	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/identity"
	"github.com/gatehouse/gatehouse/leak"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/mfa"
	"github.com/gatehouse/gatehouse/oauth"
	"github.com/gatehouse/gatehouse/openapi"
	"github.com/gatehouse/gatehouse/passkey"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/prune"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/register"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sso"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/throttle"
	"github.com/gatehouse/gatehouse/token"
	"github.com/gatehouse/gatehouse/tracing"
	"github.com/gatehouse/gatehouse/tracing/serverspan"
	"github.com/gatehouse/gatehouse/webhook"
)

// Config is everything the server needs; cmd/gatehouse fills it from flags
// and GATEHOUSE_* environment variables.
type Config struct {
	Addr          string // listen address, e.g. 127.0.0.1:8080 (port 0 picks one)
	DatabaseURL   string // SQLite path or postgres:// URL
	AdminEmail    string // bootstrap operator-admin e-mail
	AdminPassword string // bootstrap password; empty generates one and prints it once
	TokenKey      string // optional HMAC key for token digests

	APITokenHeader  string // header carrying an API token
	UserEmailHeader string // act-as-user header
	RefreshGrace    time.Duration
	// DeviceCodeLifetime is how long a device code of the device
	// authorization grant works (authorize.DeviceCodeLifetime when zero).
	DeviceCodeLifetime time.Duration

	// RateLimitStatus is the status of a refusal for the rate limit (422 by
	// default; 429 is common). The header names are configurable too.
	RateLimitStatus                            int
	BurstRemainingHeader, DailyRemainingHeader string
	// Upstream, when set, turns on the gateway: requests matching no
	// Gatehouse route are authenticated and proxied there.
	Upstream string
	// GatewayRoutes, when set, is a JSON or YAML file of route rules
	// (gateway.LoadRoutes) that the gateway and /v1/auth/check enforce:
	// the scopes a method and path need, or that they are public. Without
	// it every request needs authentication and nothing more.
	GatewayRoutes string
	// PlatformScopes are platform scopes besides those GatewayRoutes
	// names (--platform-scopes): granted to accounts only by the
	// operator, never an account's custom scope (SPEC §10.8).
	PlatformScopes []gatehouse.Scope
	// ManagementPrefix, when set (e.g. "/gatehouse"), moves the management
	// API, the sample resource, /v1/auth/check and /admin under it, so that
	// the gateway can pass the API's own /v1/… paths upstream. The OAuth
	// endpoints, /authorization, /.well-known/…, /healthz, /readyz and
	// /metrics stay where they are.
	ManagementPrefix string
	// ConsoleAddr, when set, is a second listen address that serves the
	// console (the admin UI and its sign-in pages) and nothing else; the
	// main address then does not serve it (SPEC §10.8).
	ConsoleAddr string
	// ConsoleHost, when set (e.g. "admin.example.com"), serves the console
	// on the main address to requests whose Host is this name (any port),
	// and never proxies such requests upstream; requests for other hosts
	// do not get the console.
	ConsoleHost string
	// ConsoleSameOrigin serves the console on the main address beside a
	// proxied API (Upstream), as before SPEC §10.8: any page of the API
	// then shares the console's origin. Without it, with Upstream and
	// neither ConsoleAddr nor ConsoleHost, the console is not served.
	ConsoleSameOrigin bool
	// DynamicRegistration serves POST /oauth/register (RFC 7591, SPEC
	// §10.4) and advertises it in the metadata; off by default.
	DynamicRegistration bool
	// GatewayResource is the gateway's resource identifier (RFC 8707,
	// RFC 9728); empty: the issuer. Used only with Upstream.
	GatewayResource string
	// WebhookAllowInsecure lets webhook endpoints use http and reach
	// private and loopback addresses (SPEC §10.2; for tests and
	// development).
	WebhookAllowInsecure bool
	// NoWebhookDelivery makes this node write webhook events to the outbox
	// with their changes but make no deliveries (--no-webhook-delivery):
	// the other nodes of the cluster, or this one restarted without it,
	// deliver them. The zero value delivers.
	NoWebhookDelivery bool
	// ProxyTimeout bounds a proxied request's whole exchange, a slow
	// request body included (DefaultProxyTimeout; gateway.Config.Timeout).
	ProxyTimeout time.Duration
	// MaxConnsPerIP is how many connections one client address may hold
	// open at once (DefaultMaxConnsPerIP); connections beyond it are
	// closed when accepted. Trusted proxies are exempt. Zero or less: no
	// limit.
	MaxConnsPerIP int

	// PublicURL is the origin clients reach Gatehouse at
	// ("https://auth.example.com"): the OAuth issuer and every URL
	// Gatehouse advertises, never the request's Host. Empty: URLs are built
	// from the listen address and metadata is not cached publicly. An
	// https URL makes the admin UI's cookies Secure.
	PublicURL string
	// TrustedProxies are the peers whose forwarding headers are believed;
	// empty trusts none. ForwardedHeader is the kind they write, the only
	// one read (empty: X-Forwarded-For and X-Forwarded-Proto).
	TrustedProxies  httpx.TrustedProxies
	ForwardedHeader httpx.ForwardedHeader
	// TLSCert and TLSKey, when set, are PEM files of the certificate chain
	// and key: the server then speaks HTTPS and HTTP/2 itself and reads
	// them again on ReloadTLS.
	TLSCert, TLSKey string
	// ReadTimeout and WriteTimeout bound reading a whole request and
	// writing its answer (proxied requests get per-read and per-write
	// deadlines of the same lengths instead); zero means the defaults.
	ReadTimeout, WriteTimeout time.Duration
	// OpsAddr, when set, is a second listen address (plain HTTP) for
	// /metrics, /healthz and /readyz, which then answer 404 on Addr.
	OpsAddr string
	// RedisURL, when set, makes this node part of a cluster: rate limits
	// and cache invalidation go through Redis (redis:// or rediss:// for
	// one Redis, redis+cluster:// or rediss+cluster:// for a Redis
	// Cluster; see cluster.ClientOption). RedisPrefix prefixes every key
	// (tests isolate themselves with it); it must not contain "{".
	RedisURL, RedisPrefix string
	// TokenPrefix is the deployment name new secrets carry
	// (--token-prefix, SPEC §10.1); empty means the default prefixes.
	TokenPrefix string
	// GitHubScanningKeys is where GitHub's secret scanning keys are read:
	// a URL or a file (--github-scanning-keys; empty: GitHub's).
	GitHubScanningKeys string
	// Limiter, when set, replaces the in-memory rate limiter.
	Limiter ratelimit.Limiter

	// StoreTimeout bounds every call to the store and to Redis: a lost or
	// stalled one fails within it and the request is answered 503 with
	// Retry-After (store.DefaultTimeout when zero).
	StoreTimeout time.Duration

	// UsageFlushInterval is how often the per-day usage counts are written
	// to the store (DefaultUsageFlushInterval).
	UsageFlushInterval time.Duration
	// ExpiryPoll is how often credential expiry notices are looked for
	// (service.ExpiryPoll, a minute, when zero); tests shorten it.
	ExpiryPoll time.Duration

	// PasswordParams are the argon2id parameters; zero means the defaults.
	PasswordParams password.Params

	// Retention is how long audit entries, usage counts and used refresh
	// tokens are kept before pruning deletes them (prune.DefaultRetention);
	// PruneInterval is how often this node tries to prune (zero: the
	// default; negative: never).
	Retention, PruneInterval time.Duration
	// CacheSize bounds the in-memory caches, in bytes of their estimated
	// size (service.DefaultCacheBytes).
	CacheSize int64

	// Stdout receives the one-time bootstrap message; nil means os.Stdout.
	Stdout io.Writer
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultUsageFlushInterval is how often usage counts reach the store.
const DefaultUsageFlushInterval = 5 * time.Second

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr:                 "127.0.0.1:8080",
		DatabaseURL:          store.DefaultURL,
		AdminEmail:           "admin@example.com",
		APITokenHeader:       auth.DefaultAPITokenHeader,
		UserEmailHeader:      auth.DefaultUserEmailHeader,
		RefreshGrace:         service.DefaultRefreshGrace,
		RateLimitStatus:      http.StatusUnprocessableEntity,
		BurstRemainingHeader: ratelimit.DefaultHeaderNames().BurstRemaining,
		DailyRemainingHeader: ratelimit.DefaultHeaderNames().DailyRemaining,
		UsageFlushInterval:   DefaultUsageFlushInterval,
		Retention:            prune.DefaultRetention,
		CacheSize:            service.DefaultCacheBytes,
		StoreTimeout:         store.DefaultTimeout,
		ReadTimeout:          DefaultReadTimeout,
		WriteTimeout:         DefaultWriteTimeout,
		ProxyTimeout:         DefaultProxyTimeout,
		MaxConnsPerIP:        DefaultMaxConnsPerIP,
	}
}

// Defaults of the gateway's bounds (SPEC §10.8).
const (
	DefaultProxyTimeout  = 60 * time.Second
	DefaultMaxConnsPerIP = 256
)

// The HTTP server's timeouts. Read and write are configurable; the others
// are fixed.
const (
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	readHeaderTimeout   = 5 * time.Second
	idleTimeout         = 120 * time.Second
)

// Validate checks every setting that can be wrong on its own and returns
// the first problem, in words an operator can act on.
func (c Config) Validate() error {
	if _, err := store.ParseURL(c.DatabaseURL); err != nil {
		return err
	}
	for _, a := range []struct {
		setting, addr string
		required      bool
	}{{"addr", c.Addr, true}, {"ops-addr", c.OpsAddr, false}, {"console-addr", c.ConsoleAddr, false}} {
		if err := checkListenAddr(a.setting, a.addr, a.required); err != nil {
			return err
		}
	}
	for _, h := range []struct{ setting, name string }{
		{"api-token-header", c.APITokenHeader}, {"user-email-header", c.UserEmailHeader},
		{"burst-remaining-header", c.BurstRemainingHeader}, {"daily-remaining-header", c.DailyRemainingHeader},
	} {
		if !httpguts.ValidHeaderFieldName(h.name) {
			return fmt.Errorf("%s: %q is not an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~)", h.setting, h.name)
		}
	}
	if c.AdminPassword != "" {
		// Checked at every start (bootstrap or not), never echoed.
		if err := identity.CheckPassword(c.AdminPassword); err != nil {
			return fmt.Errorf("admin-password: %w", err)
		}
	}
	if err := service.CheckEmailAddress("admin-email", c.AdminEmail); err != nil {
		var ge *gatehouse.Error
		if errors.As(err, &ge) {
			return fmt.Errorf("%s (got %q)", ge.Message, c.AdminEmail)
		}
		return err
	}

	if _, err := ParsePublicURL(c.PublicURL); err != nil {
		return err
	}
	if err := CheckManagementPrefix(c.ManagementPrefix); err != nil {
		return err
	}
	if c.Upstream != "" {
		if _, err := parseUpstream(c.Upstream); err != nil {
			return err
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls-cert and tls-key go together: give both or neither")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"refresh-grace", c.RefreshGrace}, {"read-timeout", c.ReadTimeout}, {"write-timeout", c.WriteTimeout}, {"proxy-timeout", c.ProxyTimeout}, {"retention", c.Retention}, {"store-timeout", c.StoreTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s must not be negative (got %s)", d.name, d.v)
		}
	}
	if c.Retention != 0 && c.Retention < c.RefreshGrace {
		return fmt.Errorf("retention %s must not be shorter than refresh-grace %s", c.Retention, c.RefreshGrace)
	}
	if c.CacheSize < 0 {
		return fmt.Errorf("cache-size must not be negative (got %d)", c.CacheSize)
	}
	if c.RateLimitStatus != 0 && (c.RateLimitStatus < 400 || c.RateLimitStatus > 599) {
		return fmt.Errorf("rate-limit-status %d is not a 4xx or 5xx status", c.RateLimitStatus)
	}
	if c.GatewayResource != "" {
		if _, ok := gatehouse.ResourceKey(c.GatewayResource); !ok {
			return fmt.Errorf("gateway-resource %q must be an absolute http or https URI without query or fragment", c.GatewayResource)
		}
	}
	if c.ConsoleSameOrigin && (c.ConsoleAddr != "" || c.ConsoleHost != "") {
		return errors.New("console-same-origin goes alone: it serves the console on the main address, which console-addr and console-host take it away from")
	}
	if c.ConsoleHost != "" && !validHostName(c.ConsoleHost) {
		return fmt.Errorf("console-host %q must be a host name such as admin.example.com, without scheme, port or path", c.ConsoleHost)
	}
	if c.RedisURL != "" {
		if _, err := cluster.ClientOption(c.RedisURL); err != nil {
			return err
		}
	}
	for _, sc := range c.PlatformScopes {
		if !gatehouse.ValidScopeName(string(sc)) {
			return fmt.Errorf("platform-scopes: %q is not a scope name (1 to %d characters of A-Z a-z 0-9 : . _ -)", sc, gatehouse.MaxScopeLen)
		}
	}
	if c.TokenPrefix != "" {
		if err := token.CheckDeployment(c.TokenPrefix); err != nil {
			return err
		}
	}
	if strings.Contains(c.RedisPrefix, "{") {
		return fmt.Errorf("redis-prefix %q must not contain \"{\" (Redis Cluster hash tags are Gatehouse's)", c.RedisPrefix)
	}
	return nil
}

// checkFiles refuses, before anything is opened, files the settings name
// that cannot be read: the TLS certificate and key (loaded), and a file of
// GitHub's secret scanning keys (read only when GitHub reports, so a
// wrong path would otherwise fail silently then).
func (c Config) checkFiles() error {
	if c.TLSCert != "" && c.TLSKey != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("tls-cert, tls-key: %w", err)
		}
	}
	if k := c.GitHubScanningKeys; k != "" && !strings.HasPrefix(k, "https://") && !strings.HasPrefix(k, "http://") {
		if _, err := os.ReadFile(k); err != nil {
			return fmt.Errorf("github-scanning-keys: %w", err)
		}
	}
	return nil
}

// checkListenAddr refuses a listen address that is not host:port with a
// port from 0 to 65535 (the host may be empty: every interface), naming
// its setting; an empty one only when it is required.
func checkListenAddr(setting, addr string, required bool) error {
	if addr == "" {
		if required {
			return fmt.Errorf("%s is required: a listen address such as 127.0.0.1:8080", setting)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: %q is not a listen address such as 127.0.0.1:8080", setting, addr)
	}
	return nil
}

// ParsePlatformScopes reads the --platform-scopes list: names separated by
// commas or spaces.
func ParsePlatformScopes(s string) []gatehouse.Scope {
	var out []gatehouse.Scope
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, gatehouse.Scope(f))
	}
	return out
}

// ParsePublicURL checks a public URL and returns it without a trailing
// slash: http or https, a host, and nothing else (no path, query, fragment
// or user). Empty is allowed and stays empty.
func ParsePublicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("public-url %q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("public-url %q must start with https:// (or http://)", s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("public-url %q has no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || (u.Path != "" && u.Path != "/"):
		return "", fmt.Errorf("public-url %q must be an origin such as https://auth.example.com, with no path, query or user", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// fixedPaths are the paths a management prefix may not take: they stay
// where they are.
var fixedPaths = []string{"/oauth", "/v1/oauth", "/authorization", "/.well-known", "/healthz", "/readyz", "/metrics"}

// CheckManagementPrefix checks a management prefix: empty, or a path such
// as "/gatehouse" (no trailing slash) that is not one of the paths that
// stay put.
func CheckManagementPrefix(p string) error {
	if p == "" {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return fmt.Errorf("management-prefix %q must start with / and not end with one, e.g. /gatehouse", p)
	}
	for _, c := range p {
		if !(c == '/' || c == '-' || c == '_' || c == '.' || c == '~' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return fmt.Errorf("management-prefix %q may hold only letters, digits and / - _ . ~", p)
		}
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("management-prefix %q must not hold . or .. segments", p)
		}
	}
	for _, f := range fixedPaths {
		if p == f || strings.HasPrefix(p, f+"/") {
			return fmt.Errorf("management-prefix %q would sit under %s, which stays where it is", p, f)
		}
	}
	return nil
}

// validHostName reports whether h is a DNS name or IP address, as a Host
// header names it without its port.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !(c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return !strings.Contains(h, ":") || net.ParseIP(strings.Trim(h, "[]")) != nil
}

func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q is not an http(s) URL", s)
	}
	return u, nil
}

// Server is one Gatehouse node. Construct it with New, then Open; Close is
// safe after a failed Open.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	Store   *store.Store
	Service *service.Service
	// Admission admits every authenticated request.
	Admission *admission.Admitter
	Metrics   *metrics.Metrics
	limiter   ratelimit.Limiter
	upstream  *url.URL
	// gatewayRoutes are the gateway's route rules (nil: none).
	gatewayRoutes *gateway.Routes
	redis         rueidis.Client
	// cluster is the shared state of a cluster (nil: this node is
	// alone); it also charges every request, in place of limiter.
	cluster *cluster.Redis
	// signIn is the shared sign-in throttle of a cluster (nil: the
	// service's own, in memory).
	signIn throttle.Throttle
	// leakReports counts bulk leak reports per client address (shared
	// through Redis in a cluster); bulk serves them.
	leakReports throttle.Throttle
	// registrations counts client registrations per address (shared
	// through Redis in a cluster).
	registrations throttle.Throttle
	// starts counts the starts anyone may make — single sign-ons, device
	// authorizations, password-less passkey sign-ins — per address
	// (shared through Redis in a cluster).
	starts     throttle.Throttle
	bulk       *leak.Bulk
	githubKeys *leak.GitHubKeys
	usage      *service.Usage
	stopUsage  chan struct{}
	usageDone  chan struct{}
	// stopPrune stops the pruner and pruneDone closes when it has.
	stopPrune context.CancelFunc
	pruneDone chan struct{}
	// webhooks delivers events; stopWebhooks stops it and webhooksDone
	// closes when it has.
	webhooks     *webhook.Worker
	stopWebhooks context.CancelFunc
	webhooksDone chan struct{}
	// stopService ends the service's background work (service.Run);
	// serviceDone is closed when it has.
	stopService context.CancelFunc
	serviceDone chan struct{}
	// closeLimiter stops a limiter the server made itself.
	closeLimiter func() error
	handler      http.Handler
	http         *http.Server
	listener     net.Listener
	// console serves the console on ConsoleAddr (nil without it).
	console         *http.Server
	consoleListener net.Listener
	// ops and opsListener serve the operations endpoints on
	// Config.OpsAddr (nil without one).
	ops         *http.Server
	opsListener net.Listener
	// cert is the TLS certificate, when the server speaks HTTPS itself.
	cert *certificate
	// issuer is the base of every advertised URL: the public URL, or one
	// built from the listen address.
	issuer string
	// tracing exports traces when the OTEL_* environment asks for it
	// (nil: off).
	tracing *tracing.Tracing
}

// New returns an unopened server; it has no side effects.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.PasswordParams == (password.Params{}) {
		cfg.PasswordParams = password.DefaultParams
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.ProxyTimeout == 0 {
		cfg.ProxyTimeout = DefaultProxyTimeout
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = store.DefaultTimeout
	}
	return &Server{cfg: cfg, logger: cfg.Logger}
}

// Open checks the configuration, opens and migrates the store, connects to
// Redis in cluster mode, builds the service and the handler once,
// bootstraps the store when empty, loads the TLS certificate and starts
// listening (but not serving).
func (s *Server) Open(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	if err := s.cfg.checkFiles(); err != nil {
		return err
	}
	// A bad rules file stops the server before it touches the store.
	if s.cfg.GatewayRoutes != "" {
		routes, err := gateway.LoadRoutes(s.cfg.GatewayRoutes)
		if err != nil {
			return err
		}
		s.gatewayRoutes = routes
		s.logger.Info("gateway routes loaded", "file", s.cfg.GatewayRoutes, "routes", routes.Len())
	}
	// So does an OTEL_* setting that asks for traces Gatehouse cannot send.
	var err error
	if s.tracing, err = tracing.FromEnv(ctx); err != nil {
		return err
	}
	if s.tracing.Enabled() {
		s.logger.Info("tracing on: spans are exported over OTLP/HTTP as the OTEL_* environment says")
	}
	loc, _ := store.ParseURL(s.cfg.DatabaseURL) // checked by Validate
	fresh := false
	if loc.Dialect == "sqlite" {
		_, err := os.Stat(loc.Path)
		fresh = errors.Is(err, fs.ErrNotExist)
	}
	st, err := store.OpenWith(ctx, s.cfg.DatabaseURL, store.Options{Timeout: s.cfg.StoreTimeout})
	if err != nil {
		return err
	}
	s.Store = st
	if fresh {
		s.logger.Warn("created a new, empty SQLite store; if you expected your data here, stop and check --database-url", "path", loc.Path)
	}
	s.logger.Info("store opened", "dialect", loc.Dialect, "location", loc.String())
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if s.cfg.Upstream != "" {
		s.upstream, _ = parseUpstream(s.cfg.Upstream) // checked by Validate
	}
	if s.cfg.TLSCert != "" {
		if s.cert, err = loadCertificate(s.cfg.TLSCert, s.cfg.TLSKey); err != nil {
			return err
		}
	}
	s.Metrics = metrics.New()
	s.Metrics.CountStoreConflicts(st.Conflicts)
	s.limiter = s.cfg.Limiter
	var shared service.Cluster
	if s.cfg.RedisURL != "" {
		if err := s.openRedis(ctx); err != nil {
			return err
		}
		shared = s.cluster
	}
	if s.leakReports == nil {
		s.leakReports = throttle.NewMemory(leak.Rules())
	}
	if s.registrations == nil {
		s.registrations = throttle.NewMemory(register.Rules())
	}
	if s.starts == nil {
		s.starts = throttle.NewMemory(service.StartRules())
	}
	if s.limiter == nil && s.cluster == nil {
		mem := ratelimit.NewMemory()
		s.limiter, s.closeLimiter = mem, mem.Close
	}
	key := s.cfg.tokenKey()
	// Secrets read back (webhook signing secrets, TOTP keys) are sealed
	// under the token key, or, without one, under a random key kept in
	// the store and shared by every node.
	sealingKey := key
	if sealingKey == nil {
		if sealingKey, err = st.SealingKey(ctx); err != nil {
			return err
		}
	}
	sealer := webhook.NewSealer(sealingKey)
	rp, rpOff := s.passkeyRP()
	s.webhooks = webhook.NewWorker(webhook.WorkerConfig{Store: st, Sealer: sealer, AllowInsecure: s.cfg.WebhookAllowInsecure, Logger: s.logger})
	// The service every node and offline command has, and what only a
	// serving node adds to it.
	sc := s.cfg.serviceConfig(st, shared)
	sc.Logger, sc.Throttle, sc.Starts = s.logger, s.signIn, s.starts
	sc.RefreshGrace, sc.DeviceCodeLifetime, sc.ExpiryPoll = s.cfg.RefreshGrace, s.cfg.DeviceCodeLifetime, s.cfg.ExpiryPoll
	sc.LimiterConfirms, sc.OnCacheLookup = s.limiterConfirms(), s.Metrics.CacheLookup
	sc.CacheBytes, sc.PlatformScopes = s.cfg.CacheSize, append(s.gatewayRoutes.Scopes(), s.cfg.PlatformScopes...)
	sc.MFASealer, sc.SSOSealer, sc.Passkeys, sc.PasskeysOff = mfa.NewSealer(sealingKey), sso.NewSealer(sealingKey), rp, rpOff
	sc.WebhookSealer, sc.WebhookAllowInsecure, sc.OnWebhookEvent = sealer, s.cfg.WebhookAllowInsecure, s.webhooks.Wake
	s.Service = service.New(sc)
	if err := s.bootstrap(ctx); err != nil {
		return err
	}
	if _, err := s.Service.SeparatePlatformScopes(ctx); err != nil {
		return err
	}
	s.bulk = leak.NewBulk(s.Service, s.leakReports, s.logger)
	s.githubKeys = leak.NewGitHubKeys(s.cfg.GitHubScanningKeys)
	s.usage = service.NewUsage()
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: %w", err)
	}
	s.listener = httpx.LimitConnsPerIP(ln, s.cfg.MaxConnsPerIP, s.cfg.TrustedProxies)
	if s.cfg.ConsoleAddr != "" {
		cln, err := net.Listen("tcp", s.cfg.ConsoleAddr)
		if err != nil {
			return fmt.Errorf("console-addr: %w", err)
		}
		s.consoleListener = httpx.LimitConnsPerIP(cln, s.cfg.MaxConnsPerIP, s.cfg.TrustedProxies)
	}
	if s.upstream != nil && s.cfg.ConsoleAddr == "" && s.cfg.ConsoleHost == "" && !s.cfg.ConsoleSameOrigin {
		s.logger.Warn("the admin console is not served: with --upstream it needs an origin of its own, away from the API's pages; " +
			"set --console-addr (a second listen address) or --console-host (a host name of its own), or --console-same-origin to serve it beside the API anyway")
	}
	if err := s.openOps(); err != nil {
		return err
	}
	s.issuer, _ = ParsePublicURL(s.cfg.PublicURL) // checked by Validate
	if s.issuer == "" {
		s.issuer = s.URL()
		if host, _, _ := net.SplitHostPort(s.cfg.Addr); host == "" || !isLoopback(host) {
			s.logger.Warn("no public URL set: OAuth metadata advertises the listen address; set --public-url to the address clients use", "advertised", s.issuer)
		}
	}
	// Gatehouse's own resource is its public URL: the admission needs it.
	s.Admission = s.admitter()
	var console http.Handler
	s.handler, console = s.routes()
	s.http = s.httpServer(s.handler)
	if s.consoleListener != nil {
		s.console = s.httpServer(console)
	}
	s.stopUsage, s.usageDone = make(chan struct{}), make(chan struct{})
	go s.flushUsage()
	if s.cfg.PruneInterval >= 0 {
		s.startPruning()
	}
	s.startWebhooks()
	var bg context.Context
	bg, s.stopService = context.WithCancel(context.Background())
	s.serviceDone = make(chan struct{})
	go func() {
		defer close(s.serviceDone)
		s.Service.Run(bg)
	}()
	return nil
}

// httpServer returns the HTTP server of one listener, with the timeouts
// and limits of SPEC §8.
func (s *Server) httpServer(h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	if s.cert != nil {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.cert.get}
	}
	return srv
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) bootstrap(ctx context.Context) error {
	created, generated, err := s.Service.Bootstrap(ctx, s.cfg.AdminEmail, s.cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if created {
		s.logger.Info("bootstrapped account default", "admin_email", s.cfg.AdminEmail)
		if generated != "" {
			fmt.Fprintf(s.cfg.Stdout, "\nGatehouse bootstrap: operator-admin %s, password (shown once):\n\n    %s\n\n", s.cfg.AdminEmail, generated)
		}
	}
	return nil
}

// routes builds the whole HTTP handler from what Open made, and the
// console's own handler for ConsoleAddr; it changes nothing on s.
func (s *Server) routes() (main, console http.Handler) {
	svc := s.Service

	mux := http.NewServeMux()
	pw := &oauth.PasswordGrant{Service: svc}
	tokens := oauth.NewHandler()
	tokens.OnIssued = s.Metrics.TokenIssued
	tokens.UserEmailHeader = s.Admission.Auth().UserEmailHeader()
	tokens.Register("password", pw)
	tokens.Register("refresh_token", &oauth.RefreshGrant{Service: svc})
	tokens.Register("client_credentials", &oauth.ClientCredentialsGrant{Service: svc})
	tokens.Register("authorization_code", &oauth.AuthorizationCodeGrant{Service: svc})
	tokens.Register(oauth.DeviceGrantType, &oauth.DeviceCodeGrant{Service: svc})
	std := &oauth.Endpoints{Service: svc, Admit: s.Admission, Issuer: s.issuer, IssuerConfigured: s.cfg.PublicURL != "", Grants: tokens.Grants(),
		AuthorizationCode: true, Registration: s.cfg.DynamicRegistration,
		DeviceAuthorization: true}
	if s.cfg.DynamicRegistration {
		mux.Handle("POST "+register.Path, register.New(svc, s.registrations, s.logger))
	}
	resource := s.gatewayResource()
	if resource != nil {
		mux.HandleFunc("GET "+gateway.MetadataPath, resource.Metadata)
		mux.HandleFunc("GET "+gateway.MetadataPath+"/", resource.Metadata)
	}
	mux.HandleFunc("POST /oauth/revoke", std.Revoke)
	mux.HandleFunc("POST /oauth/introspect", std.Introspect)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", std.Metadata)
	mux.Handle("/oauth/token", tokens)
	mux.Handle("/v1/oauth/token", tokens)
	mux.HandleFunc("POST /authorization", tokens.Authorization)
	mux.Handle("GET "+oauth.AuthorizePath, oauth.Authorize(svc, s.consoleAuthorizeURL()))
	mux.Handle("POST "+oauth.DeviceAuthorizationPath, oauth.DeviceAuthorization(svc, s.issuer+oauth.DevicePath))
	mux.Handle("GET "+oauth.DevicePath, oauth.Device(s.consoleURL("/admin/device")))
	s.publicOps(mux)
	// The OpenAPI document; a route missing from it fails the openapi
	// package's tests, not the server.
	doc, _, err := openapi.Build(api.Routes(), openapi.Options{Issuer: s.issuer, Prefix: s.cfg.ManagementPrefix,
		APITokenHeader: s.Admission.Auth().APITokenHeader(), UserEmailHeader: s.Admission.Auth().UserEmailHeader(), RateLimitStatus: s.cfg.RateLimitStatus})
	if err != nil {
		panic(err) // openapi.yaml is embedded: its tests catch this
	}
	mux.Handle("GET /openapi.json", openapi.Handler(doc))
	// The management API, the sample resource, forward auth and the admin
	// UI sit under the management prefix (none by default).
	prefix := s.cfg.ManagementPrefix
	(&api.API{Service: svc, Admit: s.Admission, Prefix: prefix}).Register(mux)
	mux.Handle("GET "+prefix+gateway.ExtAuthzPath, gateway.ForwardAuth(s.Admission, s.gatewayRoutes))
	mux.Handle(prefix+gateway.ExtAuthzPath+"/", gateway.ExtAuthz(s.Admission, s.gatewayRoutes))
	// Another method on the check itself is refused, not redirected to
	// the tree above (a check of "/").
	mux.Handle(prefix+gateway.ExtAuthzPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		httpx.Error(w, r, gatehouse.Errorf(gatehouse.EMethodNotAllowed, "Method %s is not allowed here", r.Method))
	}))
	mux.Handle(httpx.PrefixPattern(prefix, "POST /v1/credentials/revoke"), s.bulk)
	mux.Handle(httpx.PrefixPattern(prefix, "POST /v1/secret-scanning/github"), &leak.GitHub{Service: svc, Keys: s.githubKeys})
	publicHTTPS := s.cfg.PublicURL != "" && strings.HasPrefix(s.issuer, "https://")
	var ui http.Handler = admin.New(admin.Config{Service: svc, Logger: s.logger,
		Prefix: prefix, SecureCookies: publicHTTPS, Issuer: s.issuer, Headers: admin.Headers{
			APIToken: s.Admission.Auth().APITokenHeader(), UserEmail: s.Admission.Auth().UserEmailHeader(),
			BurstRemaining: s.cfg.BurstRemainingHeader, DailyRemaining: s.cfg.DailyRemainingHeader,
		}}).Handler()
	if prefix != "" {
		ui = http.StripPrefix(prefix, ui)
	}
	// The console keeps its own origin (SPEC §10.8): on the main address
	// only without a gateway or when asked to, else to its host name
	// alone, or on its own address; where it is not served its paths are
	// still Gatehouse's, never proxied.
	here := notServed
	switch {
	case s.cfg.ConsoleHost != "":
		here = forHost(s.cfg.ConsoleHost, ui, notServed)
	case s.cfg.ConsoleAddr != "":
	case s.upstream == nil || s.cfg.ConsoleSameOrigin:
		here = ui
	}
	mux.Handle(prefix+"/admin", here)
	mux.Handle(prefix+"/admin/", here)

	var fallback http.Handler
	if s.upstream != nil {
		fallback = gateway.NewProxy(gateway.Config{Upstream: s.upstream, Admit: s.Admission,
			ReadIdle: s.cfg.ReadTimeout, WriteIdle: s.cfg.WriteTimeout, Routes: s.gatewayRoutes, Timeout: s.cfg.ProxyTimeout,
			Resource: resource}).Handler()
		fallback = notOwn(mux, fallback)
		if prefix != "" {
			fallback = notUnder(prefix, fallback)
		}
		if s.cfg.ConsoleHost != "" {
			// The console's host name never shows the API's pages.
			fallback = forHost(s.cfg.ConsoleHost, notServed, fallback)
		}
	}
	main = httpx.JSONMux(mux, fallback)
	if s.upstream != nil {
		main = gateway.Canonicalize(main)
	}
	main = httpx.Requests(s.forwarding(), s.logger, s.answered, serverspan.Handler(s.tracing, httpx.Recover(main)))
	if s.cfg.ConsoleAddr != "" {
		cmux := http.NewServeMux()
		cmux.Handle(prefix+"/admin", ui)
		cmux.Handle(prefix+"/admin/", ui)
		cmux.Handle("GET /{$}", http.RedirectHandler(prefix+"/admin", http.StatusSeeOther))
		console = httpx.Requests(s.forwarding(), s.logger, s.answered, serverspan.Handler(s.tracing, httpx.Recover(httpx.JSONMux(cmux, nil))))
	}
	return main, console
}

// gatewayResource is the gateway's resource (RFC 9728): --gateway-resource,
// else the issuer; nil without a gateway.
func (s *Server) gatewayResource() *gateway.Resource {
	if s.upstream == nil {
		return nil
	}
	id := s.cfg.GatewayResource
	if id == "" {
		id = s.issuer
	}
	r, _ := gateway.NewResource(id, s.issuer, s.gatewayRoutes.Scopes()) // checked by Validate
	return r
}

// consoleAuthorizeURL is where /oauth/authorize sends the browser: the
// console's authorization page, on the console's own host name when it
// has one (the issuer's scheme and port), on the console's own address
// when it has one (the issuer's host name when that address is a
// wildcard, the console listener's scheme and port), else on this
// address.
func (s *Server) consoleAuthorizeURL() string { return s.consoleURL("/admin/authorize") }

// consoleURL is the URL of the console's page at path (as
// consoleAuthorizeURL).
func (s *Server) consoleURL(path string) string {
	p := s.cfg.ManagementPrefix + path
	u, err := url.Parse(s.issuer)
	if err != nil || u.Scheme == "" {
		return p
	}
	switch {
	case s.cfg.ConsoleHost != "":
		host := s.cfg.ConsoleHost
		if port := u.Port(); port != "" {
			host = net.JoinHostPort(host, port)
		}
		return u.Scheme + "://" + host + p
	case s.consoleListener != nil:
		host, port, err := net.SplitHostPort(s.consoleListener.Addr().String())
		if err != nil {
			return p
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = u.Hostname()
		}
		scheme := "http://"
		if s.cert != nil {
			scheme = "https://"
		}
		return scheme + net.JoinHostPort(host, port) + p
	}
	return p
}

// notServed answers a console path where the console is not served.
var notServed http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	httpx.Error(w, r, gatehouse.Errorf(gatehouse.ENotFound, "The console is not served here"))
})

// forHost sends requests whose Host names host (any port, any case) to
// yes, the others to no.
func forHost(host string, yes, no http.Handler) http.Handler {
	host = strings.TrimSuffix(host, ".")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Host
		if hp, _, err := net.SplitHostPort(h); err == nil {
			h = hp
		}
		h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
		if strings.EqualFold(h, strings.Trim(host, "[]")) {
			yes.ServeHTTP(w, r)
			return
		}
		no.ServeHTTP(w, r)
	})
}

// notUnder answers 404 for paths under prefix, which belong to Gatehouse,
// and passes every other request to next.
func notUnder(prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/") {
			httpx.Error(w, r, gatehouse.NotFound("route"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notOwn returns next (the gateway) behind a 404 for the other spellings
// of Gatehouse's own routes (docs/gateway.md: they are never proxied): a
// path that, in lower case and without a trailing slash — as the route
// rules read it (gateway.Routes.Match) — is a route of mux, for any
// method, is not the upstream's. /OAUTH/TOKEN, /V1/Users/ and, with an
// ops listener, /Metrics answer 404; /metrics/x and /v1/things go on.
func notOwn(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := strings.ToLower(r.URL.Path); p != r.URL.Path || (len(p) > 1 && strings.HasSuffix(p, "/")) {
			if len(p) > 1 {
				p = strings.TrimSuffix(p, "/")
			}
			if routed(mux, r, p) || routed(mux, r, p+"/") {
				httpx.Error(w, r, gatehouse.NotFound("route"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routed reports whether mux has a route for r's method and headers at
// path, with some method (httpx.Routed).
func routed(mux *http.ServeMux, r *http.Request, path string) bool {
	probe := r.Clone(r.Context())
	probe.URL.Path, probe.URL.RawPath = path, ""
	return httpx.Routed(mux, probe)
}

// ready answers /readyz: 200 when the store answers and takes a write
// (a full disk or a read-only database is not ready, though reads still
// work) and, in a cluster, Redis answers; 503 with Retry-After otherwise.
// The checks run side by side, each with the store's deadline of its own,
// so that a stalled store is not reported as Redis down too, and the
// answer comes within one deadline.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	check := func(fn func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
		defer cancel()
		return fn(ctx)
	}
	var storeErr, redisErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		storeErr = check(func(ctx context.Context) error {
			if err := s.Store.Ping(ctx); err != nil {
				return err
			}
			return s.Store.CheckWrite(ctx)
		})
	})
	if s.cluster != nil {
		// Reading the shared generation also settles any announcement of a
		// revoking change this node still owes the cluster.
		wg.Go(func() { redisErr = check(s.cluster.Settle) })
	}
	wg.Wait()
	ctx := r.Context()
	out, status := map[string]any{"status": "ok", "store": true}, http.StatusOK
	if storeErr != nil {
		gatehouse.Logger(ctx).WarnContext(ctx, "store not ready", "err", storeErr)
		out["store"], out["status"], status = false, "unavailable", http.StatusServiceUnavailable
	}
	if s.cluster != nil {
		out["redis"] = true
		if redisErr != nil {
			gatehouse.Logger(ctx).WarnContext(ctx, "redis not ready", "err", redisErr)
			out["redis"], out["status"], status = false, "unavailable", http.StatusServiceUnavailable
		}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(gatehouse.RetryAfterSeconds(httpx.DefaultRetryAfter)))
	}
	httpx.WriteJSON(w, status, out)
}

// Handler returns the server's HTTP handler (after Open).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the address the server listens on (after Open).
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL returns the base URL of the listen address (after Open): https when
// the server speaks TLS itself.
func (s *Server) URL() string {
	if s.cert != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// passkeyRP derives the WebAuthn relying party of the console from its
// configured public URL: https://CONSOLE-HOST (http only when neither
// --tls-cert nor an https --public-url says TLS) with --console-host, else
// --public-url when the console is served on the main address. Without
// one, or with one a passkey cannot be bound to (an IP address, plain
// http other than localhost), passkeys are off and the reason is logged
// and returned to every passkey request.
func (s *Server) passkeyRP() (*passkey.RP, string) {
	public, _ := ParsePublicURL(s.cfg.PublicURL)
	var console string
	switch {
	case s.cfg.ConsoleHost != "":
		scheme := "http://"
		if s.cfg.TLSCert != "" || strings.HasPrefix(public, "https://") {
			scheme = "https://"
		}
		console = scheme + s.cfg.ConsoleHost
	case s.cfg.ConsoleAddr != "":
		off := "the console has its own address (--console-addr) and no host name; set --console-host to the name users reach it at"
		s.logger.Warn("passkeys are off: " + off)
		return nil, off
	case public != "":
		console = public
	default:
		off := "no public URL is set; set --public-url (or --console-host) to the https address users reach the console at"
		s.logger.Info("passkeys are off: " + off)
		return nil, off
	}
	rp, err := passkey.New(console, "Gatehouse")
	if err != nil {
		s.logger.Warn("passkeys are off", "reason", err.Error())
		return nil, strings.TrimPrefix(err.Error(), "passkeys: ")
	}
	return rp, ""
}

// Issuer returns the base of every URL the server advertises (after Open):
// the public URL, or URL when none is set.
func (s *Server) Issuer() string { return s.issuer }

// ConsoleURL returns where the console is served (after Open): its own
// address, its host name on the main address, or the main address; ""
// when it is not served.
func (s *Server) ConsoleURL() string {
	scheme := "http://"
	if s.cert != nil {
		scheme = "https://"
	}
	path := s.cfg.ManagementPrefix + "/admin"
	switch {
	case s.consoleListener != nil:
		return scheme + s.consoleListener.Addr().String() + path
	case s.cfg.ConsoleHost != "":
		return scheme + s.cfg.ConsoleHost + path
	case s.upstream == nil || s.cfg.ConsoleSameOrigin:
		return s.issuer + path
	}
	return ""
}

// ConsoleAddr returns the console's own listen address (after Open), or
// "" without one.
func (s *Server) ConsoleAddr() string {
	if s.consoleListener == nil {
		return ""
	}
	return s.consoleListener.Addr().String()
}

// Serve serves HTTP (HTTPS and HTTP/2 with a TLS certificate) until
// Shutdown or Close, on the main address and the console's; it returns nil
// after a clean shutdown.
func (s *Server) Serve() error {
	go s.serveOps()
	if s.console == nil {
		return serveOn(s.http, s.listener, s.cert != nil)
	}
	// Both listeners, until both stop; one failing stops the other.
	errc := make(chan error, 2)
	go func() { errc <- serveOn(s.console, s.consoleListener, s.cert != nil) }()
	go func() { errc <- serveOn(s.http, s.listener, s.cert != nil) }()
	first := <-errc
	if first != nil {
		s.console.Close()
		s.http.Close()
	}
	return errors.Join(first, <-errc)
}

// serveOn serves srv on ln until it is shut down or closed.
func serveOn(srv *http.Server, ln net.Listener, tls bool) error {
	var err error
	if tls {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ReloadTLS reads the TLS certificate and key files again; new connections
// get the new certificate, and on error the old one stays. It does nothing
// without TLS.
func (s *Server) ReloadTLS() error {
	if s.cert == nil {
		return nil
	}
	return s.cert.reload()
}

// Shutdown stops accepting requests and waits for in-flight ones to finish
// (or ctx to end), then closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.console != nil {
		errs = append(errs, s.console.Shutdown(ctx))
	}
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.ops != nil {
		errs = append(errs, s.ops.Shutdown(ctx))
	}
	if s.bulk != nil {
		s.bulk.Wait()
	}
	return errors.Join(append(errs, s.release())...)
}

// flushUsage writes the usage counts to the store every
// UsageFlushInterval, and once more when the server stops.
func (s *Server) flushUsage() {
	defer close(s.usageDone)
	every := s.cfg.UsageFlushInterval
	if every <= 0 {
		every = DefaultUsageFlushInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.stopUsage:
			s.writeUsage()
			return
		}
		s.writeUsage()
	}
}

func (s *Server) writeUsage() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Service.FlushQuotas(ctx); err != nil {
		s.logger.Warn("could not write quota counts", "err", err)
	}
	if err := s.usage.Flush(ctx, s.Store); err != nil {
		s.logger.Warn("could not write usage counts", "err", err)
	}
}

// startPruning starts the pruner (package prune): expired and ended rows
// are deleted continuously, by one node of a cluster at a time.
func (s *Server) startPruning() {
	p := prune.New(prune.Config{Store: s.Store, Retention: s.cfg.Retention, RefreshGrace: s.cfg.RefreshGrace,
		Interval: s.cfg.PruneInterval, Pause: 10 * time.Millisecond, Logger: s.logger})
	ctx, cancel := context.WithCancel(context.Background())
	s.stopPrune, s.pruneDone = cancel, make(chan struct{})
	go func() {
		defer close(s.pruneDone)
		p.Run(ctx)
	}()
}

// startWebhooks starts the delivery of webhook events (package
// webhook): every node delivers, each due delivery claimed by one,
// unless NoWebhookDelivery.
func (s *Server) startWebhooks() {
	if s.cfg.NoWebhookDelivery {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWebhooks, s.webhooksDone = cancel, make(chan struct{})
	go func() {
		defer close(s.webhooksDone)
		s.webhooks.Run(ctx)
	}()
}

// release closes what Open made besides the HTTP server.
func (s *Server) release() error {
	var errs []error
	if s.stopWebhooks != nil {
		s.stopWebhooks()
		<-s.webhooksDone
		s.stopWebhooks = nil
	}
	if s.stopPrune != nil {
		s.stopPrune()
		<-s.pruneDone
		s.stopPrune = nil
	}
	if s.stopService != nil {
		s.stopService()
		<-s.serviceDone
		s.stopService = nil
	}
	if s.stopUsage != nil {
		close(s.stopUsage)
		<-s.usageDone
		s.stopUsage = nil
	}
	if s.closeLimiter != nil {
		errs = append(errs, s.closeLimiter())
		s.closeLimiter = nil
	}
	if s.redis != nil {
		s.redis.Close()
		s.redis = nil
	}
	errs = append(errs, s.Store.Close())
	// A buffered log (logx) holds the last requests' lines: write them out
	// now that no request is in flight.
	if f, ok := s.logger.Handler().(interface{ Flush() error }); ok {
		f.Flush()
	}
	if s.tracing != nil {
		// The spans still buffered go out, within a bound.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.tracing.Shutdown(ctx))
		cancel()
		s.tracing = nil
	}
	return errors.Join(errs...)
}

// Close stops the server at once and releases everything. It is safe after
// a failed Open.
func (s *Server) Close() error {
	var errs []error
	if s.console != nil {
		errs = append(errs, s.console.Close())
	} else if s.consoleListener != nil {
		errs = append(errs, s.consoleListener.Close())
	}
	if s.http != nil {
		errs = append(errs, s.http.Close())
	} else if s.listener != nil {
		errs = append(errs, s.listener.Close())
	}
	if s.ops != nil {
		errs = append(errs, s.ops.Close())
	}
	if s.opsListener != nil {
		s.opsListener.Close() // already closed once served
	}
	return errors.Join(append(errs, s.release())...)
}

// forwarding is what the server believes of forwarding headers.
func (s *Server) forwarding() httpx.Forwarding {
	return httpx.Forwarding{Proxies: s.cfg.TrustedProxies, Header: s.cfg.ForwardedHeader}
}
