// Package service holds Gatehouse's business rules: who may do what, and what
// else must change when something changes (revocations, audit entries). The
// JSON API and the admin web UI both call it, so every rule lives here once.
package service

import (
	"context"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// Service implements the business rules over a store. Construct it with
// New; it is safe for concurrent use.
type Service struct {
	Store     *store.Store
	Passwords *password.Hasher
	Digester  *token.Digester
	// Now returns the current time; tests replace it.
	Now func() time.Time
	// RefreshGrace is how long a used refresh token may be presented again
	// without revoking its lineage (SPEC §3.1).
	RefreshGrace time.Duration
	// SharedGeneration, when set, is read on every credential look-up and
	// added to the store's own generation, so that a revoking change made
	// on another node of a cluster empties this node's cache before the
	// next request.
	SharedGeneration func(ctx context.Context) (uint64, error)
	// OnCacheLookup, when set, is told whether each credential look-up was
	// served from the cache (for metrics).
	OnCacheLookup func(hit bool)

	cache *principalCache
	// lastUsed remembers when each API token's last use was written.
	lastUsed sync.Map
	// apps remembers API access applications by user id (see apiApplication).
	apps sync.Map
}

// CacheSize bounds the number of validated credentials kept in memory.
const CacheSize = 200_000

// generation returns the cache generation: the store's, plus the
// cluster's when there is one.
func (s *Service) generation(ctx context.Context) (uint64, error) {
	gen := s.Store.Generation()
	if s.SharedGeneration == nil {
		return gen, nil
	}
	shared, err := s.SharedGeneration(ctx)
	if err != nil {
		return 0, gatehouse.Errorf(gatehouse.EUnavailable, "The cluster state is unavailable; try again shortly")
	}
	return gen + shared, nil
}

func (s *Service) cacheHit(hit bool) {
	if s.OnCacheLookup != nil {
		s.OnCacheLookup(hit)
	}
}

// New returns a Service over st.
func New(st *store.Store, hasher *password.Hasher, digester *token.Digester) *Service {
	return &Service{Store: st, Passwords: hasher, Digester: digester, Now: time.Now, RefreshGrace: 5 * time.Second,
		cache: newPrincipalCache(CacheSize)}
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// audit builds the audit entry for a change made by p.
func (s *Service) audit(ctx context.Context, p *gatehouse.Principal, action, targetType, targetID string, details map[string]string) *gatehouse.AuditEntry {
	e := &gatehouse.AuditEntry{
		ID: gatehouse.NewID("aud"), Action: action, TargetType: targetType, TargetID: targetID,
		Details: details, RemoteAddr: gatehouse.ClientAddrFromContext(ctx), CreatedAt: s.now(),
	}
	if p != nil {
		e.AccountID = p.AccountID
		e.ActorID, e.Actor = actor(p)
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

// RequireAdmin returns forbidden unless p is an admin of its account.
func RequireAdmin(p *gatehouse.Principal) error {
	if !p.IsAdmin() {
		return gatehouse.Forbidden("This needs the admin role")
	}
	return nil
}

// RequireUser returns forbidden unless p acts as a user (not the anonymous
// admin of an API token).
func RequireUser(p *gatehouse.Principal) error {
	if p.User == nil {
		return gatehouse.Forbidden("This needs a user; send the user header with the API token")
	}
	return nil
}

// Text limits.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 2000
	MaxEmailLen       = 254
)

// checkName validates a required, single-line, bounded name.
func checkName(field, v string, max int, required bool) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "" && required:
		return "", gatehouse.Invalid("%s is required", field)
	case utf8.RuneCountInString(v) > max:
		return "", gatehouse.Invalid("%s must be at most %d characters", field, max)
	case strings.ContainsAny(v, "\x00\r\n"):
		return "", gatehouse.Invalid("%s must be a single line", field)
	}
	return v, nil
}

// checkEmail validates and returns a plain e-mail address.
func checkEmail(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", gatehouse.Invalid("%s is required", field)
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || len(v) > MaxEmailLen || !strings.Contains(v, "@") {
		return "", gatehouse.Invalid("%s must be a plain e-mail address", field)
	}
	return v, nil
}

// checkPassword validates a new password and returns its hash.
func (s *Service) hashPassword(field, pw string) (string, error) {
	if err := password.Validate(pw); err != nil {
		return "", gatehouse.Invalid("%s: %s", field, err.Error())
	}
	return s.Passwords.Hash(pw)
}
