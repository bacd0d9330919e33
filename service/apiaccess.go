package service

import (
	"context"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/token"
)

// API access limits (SPEC §3.1).
const (
	MinAPIAccessTTLDays     = 1
	MaxAPIAccessTTLDays     = 365
	DefaultAPIAccessTTLDays = 1
	// RefreshTokenLifetime is how long an unused refresh token works.
	RefreshTokenLifetime = 90 * 24 * time.Hour
)

// APIAccessIssued is the answer to enabling API access; its secrets are
// shown once.
type APIAccessIssued struct {
	ClientID string `json:"client_id"`
	Issued
}

// apiAccessAdmin returns p's user if p may manage API access: a real user
// with the admin role.
func apiAccessAdmin(p *gatehouse.Principal) (*gatehouse.User, error) {
	if err := RequireUser(p); err != nil {
		return nil, err
	}
	if !p.User.IsAdmin() {
		return nil, gatehouse.Forbidden("API access needs the admin role")
	}
	return p.User, nil
}

func checkTTLDays(days int) error {
	if days < MinAPIAccessTTLDays || days > MaxAPIAccessTTLDays {
		return gatehouse.Invalid("access_token_ttl_days must be from %d to %d", MinAPIAccessTTLDays, MaxAPIAccessTTLDays)
	}
	return nil
}

// newPair returns a fresh access and refresh token of an application's
// lineage.
func (s *Service) newPair(u *gatehouse.User, app *gatehouse.APIApplication, familyID string) (*Issued, []*gatehouse.Token) {
	ttl := time.Duration(app.AccessTokenTTLDays) * 24 * time.Hour
	rawAccess, access := s.newAccess(u, gatehouse.MethodAPIAccess, app.ClientID, familyID, ttl)
	rawRefresh := token.New(token.RefreshToken)
	refresh := *access
	refresh.ID, refresh.Kind, refresh.Hash = gatehouse.NewID("tok"), gatehouse.KindRefresh, s.Digester.Digest(rawRefresh)
	refresh.ExpiresAt = access.CreatedAt.Add(RefreshTokenLifetime)
	return &Issued{AccessToken: rawAccess, TokenType: "bearer", ExpiresIn: int(ttl / time.Second), RefreshToken: rawRefresh},
		[]*gatehouse.Token{access, &refresh}
}

// EnableAPIAccess makes the API access application of p's user and issues
// its first access and refresh tokens. Admins only (forbidden otherwise);
// conflict if it exists; ttlDays nil means the default.
func (s *Service) EnableAPIAccess(ctx context.Context, p *gatehouse.Principal, ttlDays *int) (*APIAccessIssued, error) {
	u, err := apiAccessAdmin(p)
	if err != nil {
		return nil, err
	}
	days := DefaultAPIAccessTTLDays
	if ttlDays != nil {
		days = *ttlDays
	}
	if err := checkTTLDays(days); err != nil {
		return nil, err
	}
	app := &gatehouse.APIApplication{ID: gatehouse.NewID("app"), AccountID: u.AccountID, UserID: u.ID,
		ClientID: token.New(token.ClientID), AccessTokenTTLDays: days, CreatedAt: s.now()}
	out, toks := s.newPair(u, app, gatehouse.NewID("fam"))
	if err := s.Store.CreateAPIApplication(ctx, app, toks, s.audit(ctx, p, "api_access.enable", "api_application", app.ClientID,
		map[string]string{"access_token_ttl_days": strconv.Itoa(days)})); err != nil {
		return nil, err
	}
	return &APIAccessIssued{ClientID: app.ClientID, Issued: *out}, nil
}

// APIAccess returns p's user's application, or nil if there is none.
func (s *Service) APIAccess(ctx context.Context, p *gatehouse.Principal) (*gatehouse.APIApplication, error) {
	u, err := apiAccessAdmin(p)
	if err != nil {
		return nil, err
	}
	app, err := s.Store.APIApplication(ctx, u.ID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, nil
	}
	return app, err
}

// UpdateAPIAccess changes the lifetime, in days, of access tokens issued
// from now on.
func (s *Service) UpdateAPIAccess(ctx context.Context, p *gatehouse.Principal, days int) (*gatehouse.APIApplication, error) {
	u, err := apiAccessAdmin(p)
	if err != nil {
		return nil, err
	}
	if err := checkTTLDays(days); err != nil {
		return nil, err
	}
	if err := s.Store.UpdateAPIApplicationTTL(ctx, u.ID, days, s.audit(ctx, p, "api_access.update", "user", u.ID,
		map[string]string{"access_token_ttl_days": strconv.Itoa(days)})); err != nil {
		return nil, err
	}
	return s.Store.APIApplication(ctx, u.ID)
}

// RevokeAPIAccess deletes p's user's application; every token it issued
// stops working at once.
func (s *Service) RevokeAPIAccess(ctx context.Context, p *gatehouse.Principal) error {
	u, err := apiAccessAdmin(p)
	if err != nil {
		return err
	}
	return s.Store.DeleteAPIApplication(ctx, u.ID, s.now(), s.audit(ctx, p, "api_access.revoke", "user", u.ID, nil))
}

func invalidRefresh() error {
	return gatehouse.Errorf(gatehouse.EInvalidGrant, "The refresh token is invalid, expired, revoked or already used")
}

// RefreshGrant exchanges a refresh token of an API access application for
// a new access token and a new refresh token (SPEC §3.1). Each refresh
// token works once, even under concurrent use. A used one presented again
// is invalid_grant; presented later than the grace period after its use,
// it also revokes its whole lineage (RFC 9700 §4.14.2).
func (s *Service) RefreshGrant(ctx context.Context, clientID, raw string) (*Issued, error) {
	if !token.Valid(raw, token.RefreshToken) {
		return nil, invalidRefresh()
	}
	t, u, err := s.Store.TokenByHash(ctx, s.Digester.Digest(raw))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, invalidRefresh()
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if t.Kind != gatehouse.KindRefresh || t.Method != gatehouse.MethodAPIAccess || t.ClientID != clientID ||
		t.RevokedAt != nil || !now.Before(t.ExpiresAt) {
		return nil, invalidRefresh()
	}
	if t.UsedAt != nil {
		return nil, s.refreshReused(ctx, t, now)
	}
	app, err := s.apiApplication(ctx, u.ID)
	if err != nil || app.ClientID != t.ClientID || !u.Active() || !u.IsAdmin() {
		if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return nil, err
		}
		return nil, invalidRefresh()
	}
	out, next := s.newPair(u, app, t.FamilyID)
	won, err := s.Store.RotateRefreshToken(ctx, t.ID, now, next...)
	if err != nil {
		return nil, err
	}
	if !won {
		// Another request used it a moment ago: inside the grace period.
		return nil, invalidRefresh()
	}
	return out, nil
}

// refreshReused handles a used refresh token presented again.
func (s *Service) refreshReused(ctx context.Context, t *gatehouse.Token, now time.Time) error {
	if now.Sub(*t.UsedAt) > s.RefreshGrace {
		if err := s.Store.RevokeTokenFamily(ctx, t.FamilyID, now); err != nil {
			return err
		}
		_ = s.Store.AppendAudit(ctx, &gatehouse.AuditEntry{
			ID: gatehouse.NewID("aud"), AccountID: t.AccountID, ActorID: t.UserID, Actor: "reuse-detection",
			Action: "api_access.lineage_revoked", TargetType: "api_application", TargetID: t.ClientID,
			RemoteAddr: gatehouse.ClientAddrFromContext(ctx), CreatedAt: now,
		})
	}
	return invalidRefresh()
}

// cachedApp is an application remembered under a cache generation.
type cachedApp struct {
	app *gatehouse.APIApplication
	gen uint64
}

// apiApplication returns a user's application, from memory while no
// revoking change has happened since it was read.
func (s *Service) apiApplication(ctx context.Context, userID string) (*gatehouse.APIApplication, error) {
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	if v, ok := s.apps.Load(userID); ok && v.(cachedApp).gen == gen {
		return v.(cachedApp).app, nil
	}
	app, err := s.Store.APIApplication(ctx, userID)
	if err != nil {
		return nil, err
	}
	s.apps.Store(userID, cachedApp{app, gen})
	return app, nil
}
