// Package server wires Gatehouse together: it opens the store, bootstraps
// it, builds the HTTP handler from the API, OAuth and auth packages, and
// runs the HTTP server with sane timeouts.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/admin"
	"github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/oauth"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
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

	// RateLimitStatus is the status of a refusal for the rate limit (422 by
	// default; 429 is common). The header names are configurable too.
	RateLimitStatus                            int
	BurstRemainingHeader, DailyRemainingHeader string
	// Upstream, when set, turns on the gateway: requests matching no
	// Gatehouse route are authenticated and proxied there.
	Upstream string
	// RedisURL, when set, makes this node part of a cluster: rate limits
	// and cache invalidation go through Redis. RedisPrefix prefixes every
	// key (tests isolate themselves with it).
	RedisURL, RedisPrefix string
	// Limiter, when set, replaces the in-memory rate limiter.
	Limiter ratelimit.Limiter

	// PasswordParams are the argon2id parameters; zero means the defaults.
	PasswordParams password.Params

	// Stdout receives the one-time bootstrap message; nil means os.Stdout.
	Stdout io.Writer
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr: "127.0.0.1:8080", DatabaseURL: store.DefaultURL, AdminEmail: "admin@example.com",
		APITokenHeader: "X-API-Token", UserEmailHeader: "X-User-Email", RefreshGrace: 5 * time.Second,
		RateLimitStatus: http.StatusUnprocessableEntity, BurstRemainingHeader: "X-RateLimit-Burst-Remaining",
		DailyRemainingHeader: "X-RateLimit-Daily-Remaining",
	}
}

// Server is one Gatehouse node. Construct it with New, then Open; Close is
// safe after a failed Open.
type Server struct {
	cfg       Config
	logger    *slog.Logger
	Store     *store.Store
	Service   *service.Service
	Auth      *auth.Authenticator
	Metrics   *metrics.Metrics
	limiter   ratelimit.Limiter
	upstream  *url.URL
	redis     *redis.Client
	usage     *service.Usage
	stopUsage chan struct{}
	usageDone chan struct{}
	// closeLimiter stops a limiter the server made itself.
	closeLimiter func() error
	handler      http.Handler
	http         *http.Server
	listener     net.Listener
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
	return &Server{cfg: cfg, logger: cfg.Logger}
}

// Open opens and migrates the store, bootstraps it when empty, builds the
// handler and starts listening (but not serving).
func (s *Server) Open(ctx context.Context) error {
	st, err := store.Open(ctx, s.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	s.Store = st
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	var key []byte
	if s.cfg.TokenKey != "" {
		key = []byte(s.cfg.TokenKey)
	}
	s.Service = service.New(st, password.New(s.cfg.PasswordParams), token.NewDigester(key))
	s.Service.RefreshGrace = s.cfg.RefreshGrace
	if err := s.bootstrap(ctx); err != nil {
		return err
	}
	if s.cfg.Upstream != "" {
		u, err := url.Parse(s.cfg.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("upstream %q is not an http(s) URL", s.cfg.Upstream)
		}
		s.upstream = u
	}
	s.Metrics = metrics.New()
	s.limiter = s.cfg.Limiter
	if s.cfg.RedisURL != "" {
		if err := s.openRedis(ctx); err != nil {
			return err
		}
	}
	if s.limiter == nil {
		mem := ratelimit.NewMemory()
		s.limiter, s.closeLimiter = mem, mem.Close
	}
	s.Service.OnCacheLookup = s.Metrics.CacheLookup
	s.usage = service.NewUsage()
	s.stopUsage, s.usageDone = make(chan struct{}), make(chan struct{})
	go s.flushUsage()
	s.handler = s.routes()
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.listener = ln
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	return nil
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

// routes builds the whole HTTP handler.
func (s *Server) routes() http.Handler {
	svc := s.Service
	s.Auth = auth.New(svc, svc)
	s.Auth.APITokenHeader, s.Auth.UserEmailHeader = s.cfg.APITokenHeader, s.cfg.UserEmailHeader
	s.Auth.Limit = s.limit(s.limiter)

	mux := http.NewServeMux()
	throttle := auth.DefaultThrottle()
	pw := &oauth.PasswordGrant{Service: svc, Throttle: throttle}
	tokens := oauth.NewHandler()
	tokens.OnIssued = s.Metrics.TokenIssued
	tokens.Register("password", pw)
	tokens.Register("refresh_token", &oauth.RefreshGrant{Service: svc})
	tokens.Register("client_credentials", &oauth.ClientCredentialsGrant{Service: svc})
	std := &oauth.Endpoints{Service: svc, Auth: s.Auth}
	mux.HandleFunc("POST /oauth/revoke", std.Revoke)
	mux.HandleFunc("POST /oauth/introspect", std.Introspect)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", std.Metadata)
	mux.Handle("/oauth/token", tokens)
	mux.Handle("/v1/oauth/token", tokens)
	mux.HandleFunc("POST /authorization", tokens.Authorization)
	mux.Handle("GET /metrics", s.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	(&api.API{Service: svc, Auth: s.Auth}).Register(mux)
	mux.Handle("GET /v1/auth/check", s.Auth.Require(http.HandlerFunc(gateway.Check)))
	ui := admin.New(svc, throttle, s.logger).Handler()
	mux.Handle("/admin", ui)
	mux.Handle("/admin/", ui)

	var fallback http.Handler
	if s.upstream != nil {
		fallback = gateway.NewProxy(s.upstream, s.Auth, s.logger).Handler()
	}
	var h http.Handler = s.Metrics.Middleware(httpx.JSONMux(mux, fallback))
	h = httpx.ClientInfo(h)
	h = httpx.Recover(h)
	return httpx.Log(s.logger, h)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out, status := map[string]any{"status": "ok", "store": true}, http.StatusOK
	if err := s.Store.Ping(ctx); err != nil {
		s.logger.Warn("store not ready", "err", err)
		out["store"], out["status"], status = false, "unavailable", http.StatusServiceUnavailable
	}
	if s.redis != nil {
		out["redis"] = true
		if err := s.redis.Ping(ctx).Err(); err != nil {
			s.logger.Warn("redis not ready", "err", err)
			out["redis"], out["status"], status = false, "unavailable", http.StatusServiceUnavailable
		}
	}
	httpx.WriteJSON(w, status, out)
}

// Handler returns the server's HTTP handler (after Open).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the address the server listens on (after Open).
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL returns the server's base URL (after Open).
func (s *Server) URL() string { return "http://" + s.Addr() }

// Serve serves HTTP until Shutdown or Close; it returns nil after a clean
// shutdown.
func (s *Server) Serve() error {
	if err := s.http.Serve(s.listener); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits for in-flight ones to finish
// (or ctx to end), then closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	return errors.Join(append(errs, s.release())...)
}

// flushUsage writes the usage counts to the store every few seconds, and
// once more when the server stops.
func (s *Server) flushUsage() {
	defer close(s.usageDone)
	t := time.NewTicker(5 * time.Second)
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
	if err := s.usage.Flush(ctx, s.Store); err != nil {
		s.logger.Warn("could not write usage counts", "err", err)
	}
}

// release closes what Open made besides the HTTP server.
func (s *Server) release() error {
	var errs []error
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
		errs = append(errs, s.redis.Close())
		s.redis = nil
	}
	errs = append(errs, s.Store.Close())
	return errors.Join(errs...)
}

// Close stops the server at once and releases everything. It is safe after
// a failed Open.
func (s *Server) Close() error {
	var errs []error
	if s.http != nil {
		errs = append(errs, s.http.Close())
	} else if s.listener != nil {
		errs = append(errs, s.listener.Close())
	}
	return errors.Join(append(errs, s.release())...)
}
