// Package service holds Gatehouse's business rules: who may do what, and what
// else must change when something changes (revocations, audit entries). The
// JSON API and the admin web UI both call it, so every rule lives here once.
//
// A Service is built once with New from a Config holding every dependency;
// its fields are never assigned afterwards. Every change that touches more
// than one row runs in one store transaction written here (see update), and
// a transaction that revokes anything advances the cache generation of this
// node and, through the Cluster, of every other node before the change is
// reported done.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/identity"
	"github.com/gatehouse/gatehouse/passkey"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/seal"
	"github.com/gatehouse/gatehouse/sso"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/throttle"
	"github.com/gatehouse/gatehouse/token"
	"github.com/gatehouse/gatehouse/webhook"
)

// DefaultRefreshGrace is how long a used refresh token may be presented
// again, by default, before its lineage is revoked (SPEC §3.1).
const DefaultRefreshGrace = 5 * time.Second

// Config is everything a Service depends on. Store, Passwords and
// Digester are required; the rest have working zero values.
type Config struct {
	Store     *store.Store
	Passwords *password.Hasher
	Digester  *token.Digester
	// Throttle counts password attempts (see CheckPassword); nil means an
	// in-memory one with the default rules (a cluster passes a shared one).
	Throttle throttle.Throttle
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// RefreshGrace is how long a used refresh token may be presented again
	// without revoking its lineage; zero means none.
	RefreshGrace time.Duration
	// DeviceCodeLifetime is how long a device code and its user code work
	// (RFC 8628); zero means authorize.DeviceCodeLifetime.
	DeviceCodeLifetime time.Duration
	// Cluster, when set, shares revoking changes with the other nodes of a
	// cluster; nil means this node is alone.
	Cluster Cluster
	// LimiterConfirms, in a cluster, tells that every principal
	// AccessPrincipal and APITokenPrincipal return is charged through a
	// rate limiter that reads its account's shard in the same step and
	// refuses to count it unless the shard is still in the principal's
	// Basis (the caller then calls Observe and validates again). Those
	// look-ups then trust this node's last view of the cluster instead of
	// reading it, and a request costs one round trip to Redis, not two.
	LimiterConfirms bool
	// ChangePoll is how often, at most, the store's counter of revoking
	// changes is read (see DefaultChangePoll); zero means the default, a
	// negative value never.
	ChangePoll time.Duration
	// ExpiryPoll is how often Run looks for expiry notices to send
	// (NoticeExpiries); zero means ExpiryPoll's default, a minute.
	ExpiryPoll time.Duration
	// OnCacheLookup, when set, is told whether each credential look-up was
	// served from the cache (for metrics).
	OnCacheLookup func(hit bool)
	// CacheBytes bounds the in-memory caches together, by the estimated
	// size of what they hold; zero means DefaultCacheBytes.
	CacheBytes int64
	// Logger receives warnings (reuse detection, unannounced changes); nil
	// means slog.Default().
	Logger *slog.Logger
	// PlatformScopes are the platform's own scopes (SPEC §10.8: those the
	// gateway's route rules name and --platform-scopes lists): granted to
	// accounts only by the operator, never an account's custom scope.
	PlatformScopes gatehouse.Scopes
	// TokenPrefix is the deployment name new secrets carry (SPEC §10.1,
	// token.NewWith); empty means the default prefixes.
	TokenPrefix string
	// WebhookSealer seals webhook endpoint secrets under the server key
	// (webhook.NewSealer); nil means one under an empty key, for tests.
	WebhookSealer *seal.Sealer
	// WebhookAllowInsecure allows http webhook URLs and private or
	// loopback addresses (--webhook-allow-insecure).
	WebhookAllowInsecure bool
	// OnWebhookEvent, when set, is called after a change committed an
	// event to deliver (the delivery worker's Wake).
	OnWebhookEvent func()
	// MFASealer seals TOTP secrets under the server key (mfa.NewSealer);
	// nil means TOTP cannot be enrolled or checked (temporarily_unavailable),
	// as in the offline commands, which only clear second factors.
	MFASealer *seal.Sealer
	// SSOSealer seals the client secrets of accounts' single sign-on under
	// the server key (sso.NewSealer); nil means one under an empty key, for
	// tests.
	SSOSealer *seal.Sealer
	// Starts counts the starts anyone may make per client address (see
	// StartRules); nil means an in-memory one with StartRules (a cluster
	// passes a shared one).
	Starts throttle.Throttle
	// Passkeys is the WebAuthn relying party of the console (passkey.New);
	// nil means passkeys cannot be registered or used
	// (temporarily_unavailable, saying PasskeysOff, the reason).
	Passkeys    *passkey.RP
	PasskeysOff string
	// Issuer names the server in authenticator apps (the otpauth URI's
	// issuer); empty means "Gatehouse".
	Issuer string
}

// Service implements the business rules over a store. Construct it with
// New; it is safe for concurrent use.
type Service struct {
	store *store.Store
	// quotas are the quota counts not yet written, and where a single
	// node's counts begin (quotas.go).
	quotas          quotaLedger
	passwords       *password.Hasher
	digester        *token.Digester
	throttle        throttle.Throttle
	clock           func() time.Time
	deviceLifetime  time.Duration
	refreshGrace    time.Duration
	cluster         Cluster
	limiterConfirms bool
	changePoll      time.Duration
	expiryPoll      time.Duration
	onCacheLookup   func(hit bool)
	logger          *slog.Logger
	platformScopes  gatehouse.Scopes
	tokenPrefix     string
	sealer          *seal.Sealer
	webhookInsecure bool
	onWebhookEvent  func()
	mfaSealer       *seal.Sealer
	issuer          string
	ssoSealer       *seal.Sealer
	starts          throttle.Throttle
	// sso discovers accounts' identity providers, through the client
	// webhooks use (public addresses only, unless insecure is allowed).
	sso         *sso.Client
	passkeys    *passkey.RP
	passkeysOff string

	gen        generations
	principals *cache[*gatehouse.Principal]
	apps       *cache[*gatehouse.APIApplication]
	lastUsed   *cache[struct{}]
	touches    touches
	// throttleNoticed: see noticeThrottled.
	throttleNoticed throttleNotices
	// quotaNoticed: see noticeQuota.
	quotaNoticed quotaNotices
}

// New returns a Service for cfg. It has no side effects.
func New(cfg Config) *Service {
	s := &Service{
		store: cfg.Store, passwords: cfg.Passwords, digester: cfg.Digester, throttle: cfg.Throttle, clock: cfg.Now,
		refreshGrace: cfg.RefreshGrace, deviceLifetime: cfg.DeviceCodeLifetime, cluster: cfg.Cluster, limiterConfirms: cfg.LimiterConfirms, changePoll: cfg.ChangePoll, expiryPoll: cfg.ExpiryPoll, onCacheLookup: cfg.OnCacheLookup, logger: cfg.Logger,
		touches:        touches{wake: make(chan struct{}, 1)},
		platformScopes: gatehouse.NormalizeScopes(cfg.PlatformScopes),
		tokenPrefix:    cfg.TokenPrefix,
		sealer:         cfg.WebhookSealer, webhookInsecure: cfg.WebhookAllowInsecure, onWebhookEvent: cfg.OnWebhookEvent,
		mfaSealer: cfg.MFASealer,
		issuer:    cfg.Issuer,
		ssoSealer: cfg.SSOSealer, starts: cfg.Starts,
		passkeys: cfg.Passkeys, passkeysOff: cfg.PasskeysOff,
	}
	if s.ssoSealer == nil {
		s.ssoSealer = sso.NewSealer(nil)
	}
	if s.starts == nil {
		s.starts = throttle.NewMemory(StartRules())
	}
	s.sso = sso.New(webhook.Client(s.webhookInsecure), s.now)
	if s.sealer == nil {
		s.sealer = webhook.NewSealer(nil)
	}
	if s.issuer == "" {
		s.issuer = "Gatehouse"
	}
	total := cfg.CacheBytes
	if total <= 0 {
		total = DefaultCacheBytes
	}
	// Validated credentials get most of the bound; applications and
	// last-use marks are few and small.
	shards := 0
	if s.cluster != nil {
		shards = s.cluster.Shards()
	}
	s.gen.init(shards)
	s.principals = newCache(total*7/8, principalBytes, s.gen.marks)
	s.apps = newCache(total/16, appBytes, s.gen.marks)
	s.lastUsed = newCache[struct{}](total/16, nil, nil)
	if s.deviceLifetime <= 0 {
		s.deviceLifetime = authorize.DeviceCodeLifetime
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.throttle == nil {
		s.throttle = throttle.NewMemory(throttle.DefaultRules())
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.changePoll == 0 {
		s.changePoll = DefaultChangePoll
	}
	if s.expiryPoll <= 0 {
		s.expiryPoll = ExpiryPoll
	}
	return s
}

// PasswordLimits returns how many password checks run and wait at once.
func (s *Service) PasswordLimits() password.Limits { return s.passwords.Limits() }

// Store returns the store the service works on (for commands that need it
// directly, such as the readiness check).
func (s *Service) Store() *store.Store { return s.store }

// now is the one clock of the service: UTC, truncated to what the store
// keeps.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

func (s *Service) cacheHit(hit bool) {
	if s.onCacheLookup != nil {
		s.onCacheLookup(hit)
	}
}

// unavailable is the answer when the cluster state cannot be read or
// written.
func unavailable() error {
	return gatehouse.Errorf(gatehouse.EUnavailable, "The cluster state is unavailable; try again shortly")
}

// update runs fn in one store transaction. If fn made a revoking change,
// every node is told before the change is reported done: the cluster must
// be reachable before the commit (no reachable cluster, no change: 503)
// and is rung after it (the other nodes then read what changed from the
// store's revocation log), and this node drops what the change touched
// once it commits. A failure
// to tell the cluster after the commit is answered 503 as well, and the
// cluster keeps owing the announcement until it can make it.
func (s *Service) update(ctx context.Context, fn func(tx *store.Tx) error) error {
	var subjects []string
	revoking, evented := false, false
	err := s.store.Update(ctx, func(tx *store.Tx) error {
		// Run again after a conflict (store.Update): what the run that
		// commits finds.
		evented, revoking, subjects = false, false, nil
		if s.cluster != nil {
			// A revoking change is refused when the cluster cannot be told:
			// checked before the change takes the store's change counter.
			tx.BeforeLog(func() error {
				if _, err := s.cluster.State(ctx, 0); err != nil {
					s.logger.Warn("refused a revoking change: the cluster cannot be told", "err", err)
					return unavailable()
				}
				return nil
			})
		}
		if err := fn(tx); err != nil {
			return err
		}
		evented, revoking, subjects = tx.AddedEvents(), tx.Revoking(), tx.Subjects()
		return nil
	})
	if err == nil && evented {
		s.wakeWebhooks()
	}
	if !revoking {
		return err
	}
	// Drop what it touched even after a failed commit: it is cheap and
	// never wrong.
	s.gen.revoke(subjects)
	if err == nil && s.cluster != nil {
		if aerr := s.cluster.Announce(ctx, subjects); aerr != nil {
			s.logger.Warn("a committed revoking change could not be announced to the cluster yet", "err", aerr)
			return unavailable()
		}
	}
	return err
}

// audit builds the audit entry for a change made by p: who (the user, or
// the anonymous admin), with which credential, from where.
func (s *Service) audit(ctx context.Context, p *gatehouse.Principal, action, targetType, targetID string, details map[string]string) *gatehouse.AuditEntry {
	e := &gatehouse.AuditEntry{
		ID: gatehouse.NewID("aud"), Action: action, TargetType: targetType, TargetID: targetID,
		Details: details, RemoteAddr: gatehouse.ClientAddrFromContext(ctx), CreatedAt: s.now(),
	}
	if p != nil {
		e.AccountID = p.AccountID
		e.ActorID, e.Actor = actor(p)
		e.CredentialID, e.Credential = credential(p)
	}
	return e
}

// actor names p for the audit log.
func actor(p *gatehouse.Principal) (id, name string) {
	if p.User == nil {
		return p.CredentialID, "api_token:" + p.CredentialID
	}
	return p.User.ID, p.User.Email
}

// credential names what p authenticated with, for the audit log.
func credential(p *gatehouse.Principal) (id, name string) {
	switch p.Method {
	case gatehouse.MethodAPIToken:
		return p.CredentialID, "api_token " + p.CredentialName
	case gatehouse.MethodClientCredentials, gatehouse.MethodAPIAccess:
		return p.CredentialID, string(p.Method) + " " + p.ClientID
	}
	return p.CredentialID, string(p.Method)
}

// Text limits.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 2000
	MaxEmailLen       = 254
)

// checkName validates a required, single-line, bounded name without
// control characters (C0, DEL and C1: no line breaks, NUL or terminal
// escapes). Its errors name the field, with a hint for a person.
func checkName(field, v string, max int, required bool) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "" && required:
		return "", gatehouse.InvalidField(field, "This is required.", "%s is required", field)
	case utf8.RuneCountInString(v) > max:
		return "", gatehouse.InvalidField(field, fmt.Sprintf("Use at most %d characters.", max), "%s must be at most %d characters", field, max)
	case strings.ContainsFunc(v, unicode.IsControl):
		return "", gatehouse.InvalidField(field, "Keep it on one line, without control characters.", "%s must be a single line without control characters", field)
	}
	return v, nil
}

// CheckEmailAddress returns an invalid_request error naming field unless v
// is an e-mail address a user may have (the bootstrap admin's is checked
// before anything starts).
func CheckEmailAddress(field, v string) error {
	_, err := checkEmail(field, v)
	return err
}

// checkEmail validates and returns a plain e-mail address.
func checkEmail(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", gatehouse.InvalidField(field, "Enter an e-mail address.", "%s is required", field)
	}
	if err := identity.CheckEmail(v); err != nil {
		return "", refused(field, err)
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || len(v) > MaxEmailLen || !strings.Contains(v, "@") {
		return "", gatehouse.InvalidField(field, "Enter a plain e-mail address, such as ann@example.com.", "%s must be a plain e-mail address", field)
	}
	return v, nil
}

// hashPassword validates a new password and returns its hash.
func (s *Service) hashPassword(ctx context.Context, field, pw string) (string, error) {
	if err := checkNewPassword(field, pw); err != nil {
		return "", err
	}
	return s.passwords.Hash(ctx, pw)
}

// checkNewPassword returns an invalid_request error about field, naming
// the rule, when pw may not be a new password (identity.CheckPassword).
func checkNewPassword(field, pw string) error {
	if err := identity.CheckPassword(pw); err != nil {
		return refused(field, err)
	}
	return nil
}

// refused turns an identity rule's refusal of field into an
// invalid_request error that names the field and the rule.
func refused(field string, err error) error {
	var r *identity.Refusal
	if !errors.As(err, &r) {
		return err
	}
	return gatehouse.InvalidField(field, r.Hint, "%s: %s", field, r.Rule)
}
