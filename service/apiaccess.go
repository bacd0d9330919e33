package service

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/store"
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
		return gatehouse.InvalidField("access_token_ttl_days", fmt.Sprintf("Choose from %d to %d days.", MinAPIAccessTTLDays, MaxAPIAccessTTLDays),
			"access_token_ttl_days must be from %d to %d", MinAPIAccessTTLDays, MaxAPIAccessTTLDays)
	}
	return nil
}

// newPair returns a fresh access and refresh token of an application's
// lineage, issued under u's current epochs; neither outlives until (the
// API tokens the application was minted through; nil: no bound), and the
// answer's expires_in says when the access token stops working.
func (s *Service) newPair(u *gatehouse.User, app *gatehouse.APIApplication, familyID string, until *time.Time) (*Issued, []*gatehouse.Token) {
	ttl := time.Duration(app.AccessTokenTTLDays) * 24 * time.Hour
	rawAccess, access := s.newAccess(u, gatehouse.MethodAPIAccess, app.ClientID, familyID, ttl)
	rawRefresh := s.mint(token.RefreshToken)
	refresh := *access
	refresh.ID, refresh.Kind, refresh.Hash = gatehouse.NewID("tok"), gatehouse.KindRefresh, s.digester.Digest(rawRefresh)
	refresh.ExpiresAt = access.CreatedAt.Add(RefreshTokenLifetime)
	access.ExpiresAt, refresh.ExpiresAt = cacheUntil(access.ExpiresAt, until), cacheUntil(refresh.ExpiresAt, until)
	return &Issued{AccessToken: rawAccess, TokenType: "bearer", ExpiresIn: expiresIn(access), RefreshToken: rawRefresh},
		[]*gatehouse.Token{access, &refresh}
}

// expiresIn is a token answer's expires_in for t: whole seconds from its
// issue to its expiry.
func expiresIn(t *gatehouse.Token) int {
	return int(t.ExpiresAt.Sub(t.CreatedAt) / time.Second)
}

// APIAccessInput is the input for EnableAPIAccess.
type APIAccessInput struct {
	// AccessTokenTTLDays nil means DefaultAPIAccessTTLDays.
	AccessTokenTTLDays *int `json:"access_token_ttl_days"`
	// Scopes limits the application; nil means the creator's own scopes.
	Scopes *[]gatehouse.Scope `json:"scopes"`
	// Patch sets the application's plan (SPEC §10.5).
	plan.Patch
}

// EnableAPIAccess makes the API access application of p's user and issues
// its first access and refresh tokens. Admins only (forbidden otherwise,
// checked again in the transaction that stores the application); conflict
// if it exists; scopes as grantScopes allows.
func (s *Service) EnableAPIAccess(ctx context.Context, p *gatehouse.Principal, in APIAccessInput) (*APIAccessIssued, error) {
	if err := checkScopesFirst(in.Scopes); err != nil {
		return nil, err
	}
	if err := requireOwnAuthority(p, "enable API access"); err != nil {
		return nil, err
	}
	if err := checkPlan(gatehouse.PlanAPIApplication, in.Patch); err != nil {
		return nil, err
	}
	u, err := apiAccessAdmin(p)
	if err != nil {
		return nil, err
	}
	days := DefaultAPIAccessTTLDays
	if in.AccessTokenTTLDays != nil {
		days = *in.AccessTokenTTLDays
	}
	if err := checkTTLDays(days); err != nil {
		return nil, err
	}
	scopes, err := grantScopes(p, in.Scopes)
	if err != nil {
		return nil, err
	}
	if err := mayActOnApp(p, u, scopes); err != nil {
		return nil, err
	}
	app := &gatehouse.APIApplication{ID: gatehouse.NewID("app"), AccountID: u.AccountID, UserID: u.ID,
		ClientID: s.mint(token.ClientID), AccessTokenTTLDays: days, Scopes: scopes, CreatedBy: mintedBy(p), CreatedAt: s.now()}
	out, toks := s.newPair(u, app, gatehouse.NewID("fam"), mintedExpires(p))
	err = s.update(ctx, func(tx *store.Tx) error {
		// An application made while the user loses the admin role would
		// escape that change, and work again once the role is back.
		cur, err := lockUser(tx, u)
		if err != nil {
			return err
		}
		if !cur.IsAdmin() {
			return gatehouse.Forbidden("API access needs the admin role")
		}
		if err := tx.CreateAPIApplication(app); err != nil {
			return err
		}
		if err := tx.CreateTokens(toks...); err != nil {
			return err
		}
		details := map[string]string{"access_token_ttl_days": strconv.Itoa(days), "scopes": scopesText(scopes)}
		if app.Plan, err = s.setPlan(tx, app.AccountID, gatehouse.PlanAPIApplication, app.ClientID, in.Patch, details); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "api_access.enable", "api_application", app.ClientID, details))
	})
	if err != nil {
		return nil, err
	}
	out.Scope = scopes.String()
	return &APIAccessIssued{ClientID: app.ClientID, Issued: *out}, nil
}

// lockAPIAccessAdmin is lockSelf for a change of p's own API access
// application: forbidden unless p's user is still an active admin.
func lockAPIAccessAdmin(tx *store.Tx, p *gatehouse.Principal) error {
	u, err := lockSelf(tx, p)
	if err == nil && !u.IsAdmin() {
		err = gatehouse.Forbidden("API access needs the admin role")
	}
	return err
}

// APIAccess returns p's user's application, or nil if there is none.
func (s *Service) APIAccess(ctx context.Context, p *gatehouse.Principal) (*gatehouse.APIApplication, error) {
	u, err := apiAccessAdmin(p)
	if err != nil {
		return nil, err
	}
	return s.appWithPlan(ctx, u.ID)
}

// appWithPlan reads a user's application with its plan and what is left
// of its quota; nil when there is none.
func (s *Service) appWithPlan(ctx context.Context, userID string) (*gatehouse.APIApplication, error) {
	app, err := s.store.APIApplication(ctx, userID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	plans, err := s.store.Plans(ctx, app.AccountID, app.ClientID)
	if err != nil {
		return nil, err
	}
	app.Plan, err = s.withRemaining(ctx, app.AccountID, app.ClientID, plans[app.ClientID])
	return app, err
}

// UpdateAPIAccess changes the lifetime, in days, of access tokens issued
// from now on (days nil: as it is) and the application's plan.
func (s *Service) UpdateAPIAccess(ctx context.Context, p *gatehouse.Principal, days *int, patch plan.Patch) (*gatehouse.APIApplication, error) {
	u, err := apiAccessAdmin(p)
	if err != nil {
		return nil, err
	}
	if days == nil && patch.Empty() {
		return nil, gatehouse.Invalid("Nothing to change: send access_token_ttl_days or a plan field")
	}
	if days != nil {
		if err := checkTTLDays(*days); err != nil {
			return nil, err
		}
	}
	if err := checkPlan(gatehouse.PlanAPIApplication, patch); err != nil {
		return nil, err
	}
	if err := s.mayActOnOwnApp(ctx, p, u); err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx *store.Tx) error {
		// The user, then their application, read again: two changes of
		// the plan at once take turns, each applied to what the other
		// left (a plan row not there yet locks nothing), a change after
		// the application's revocation finds it gone, and one after the
		// admin's disable, demotion or deletion is refused.
		if err := lockAPIAccessAdmin(tx, p); err != nil {
			return err
		}
		app, err := tx.APIApplication(u.ID)
		if err != nil {
			return err
		}
		details := map[string]string{}
		if days != nil {
			if err := tx.UpdateAPIApplicationTTL(u.ID, *days); err != nil {
				return err
			}
			details["access_token_ttl_days"] = strconv.Itoa(*days)
		}
		if !patch.Empty() {
			if _, err := s.setPlan(tx, app.AccountID, gatehouse.PlanAPIApplication, app.ClientID, patch, details); err != nil {
				return err
			}
		}
		return s.record(tx, s.audit(ctx, p, "api_access.update", "user", u.ID, details))
	})
	if err != nil {
		return nil, err
	}
	app, err := s.appWithPlan(ctx, u.ID)
	if err == nil && app == nil {
		err = gatehouse.NotFound("API access application")
	}
	return app, err
}

// RevokeAPIAccess deletes p's user's application; every token it issued
// stops working at once (not_found when there is none).
func (s *Service) RevokeAPIAccess(ctx context.Context, p *gatehouse.Principal) error {
	u, err := apiAccessAdmin(p)
	if err != nil {
		return err
	}
	if err := s.mayActOnOwnApp(ctx, p, u); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		found, err := tx.DeleteAPIApplication(u.ID, s.now())
		if err != nil {
			return err
		}
		if !found {
			return gatehouse.NotFound("API access")
		}
		return s.record(tx, s.audit(ctx, p, "api_access.revoke", "user", u.ID, nil))
	})
}

// mayActOnApp is mayActOn for the API access application of admin u
// limited to scopes. An application has no expiry of its own (one minted
// through an API token lives only as long as that token's chain), so only
// the scopes are compared.
func mayActOnApp(p *gatehouse.Principal, u *gatehouse.User, scopes gatehouse.Scopes) error {
	return mayActOn(&gatehouse.Principal{Account: p.Account, AccountID: p.AccountID, User: p.User, Method: p.Method,
		Scopes: p.Scopes}, userReach(p.Account, u, scopes), nil)
}

// mayActOnOwnApp is mayActOnApp for u's existing application, if any.
func (s *Service) mayActOnOwnApp(ctx context.Context, p *gatehouse.Principal, u *gatehouse.User) error {
	app, err := s.store.APIApplication(ctx, u.ID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	return mayActOnApp(p, u, app.Scopes)
}

// apiApplication returns a user's application, from memory while no
// revoking change has happened since it was read.
func (s *Service) apiApplication(ctx context.Context, userID string) (*gatehouse.APIApplication, error) {
	snap, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	if app, ok := s.apps.get(userID, snap.gen, s.clock()); ok {
		return app, nil
	}
	at := s.gen.marks.now()
	app, err := s.store.APIApplication(ctx, userID)
	if err != nil {
		return nil, err
	}
	s.apps.put(userID, snap.gen, s.gen.marks.tagged(at, gatehouse.UserSubject(userID)), app, time.Time{})
	return app, nil
}

// UserAPIAccess returns the API access application of a user of p's
// account, or nil if they have none. Admins only.
func (s *Service) UserAPIAccess(ctx context.Context, p *gatehouse.Principal, userID string) (*gatehouse.APIApplication, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	if _, err := s.store.User(ctx, p.AccountID, userID); err != nil {
		return nil, err
	}
	return s.appWithPlan(ctx, userID)
}

// APIAccessState is p's own API access application as its page shows it.
type APIAccessState struct {
	// App is the application, nil when API access is not enabled.
	App *gatehouse.APIApplication
	// LiveTokens is how many of its tokens still work.
	LiveTokens int
	// ReuseDetected, when set, is the audit entry of the last time reuse
	// detection revoked a lineage of the application.
	ReuseDetected *gatehouse.AuditEntry
}

// APIAccessStatus returns p's user's application, how many of its tokens
// work, and the last reuse detection that revoked its tokens.
func (s *Service) APIAccessStatus(ctx context.Context, p *gatehouse.Principal) (*APIAccessState, error) {
	app, err := s.APIAccess(ctx, p)
	if err != nil || app == nil {
		return &APIAccessState{}, err
	}
	out := &APIAccessState{App: app}
	if out.LiveTokens, err = s.liveTokens(ctx, store.TokenFilter{ClientID: app.ClientID}, s.clock()); err != nil {
		return nil, err
	}
	es, _, err := s.store.FindAudit(ctx, p.AccountID, gatehouse.AuditFilter{Action: AuditLineageRevoked, Target: app.ClientID},
		gatehouse.Page{Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(es) > 0 {
		out.ReuseDetected = es[0]
	}
	return out, nil
}

// ReissueAPIAccess issues a new access and refresh token, of a new
// lineage, for p's user's existing application (not_found when there is
// none) — after reuse detection revoked the old lineage, for example —
// and ends every earlier lineage of the application in the same
// transaction: the application has one live lineage, so a reissue sent
// twice (a double submit, a retry whose answer was lost) leaves working
// only the tokens of the last answer. Admins only; the secrets are shown
// once.
func (s *Service) ReissueAPIAccess(ctx context.Context, p *gatehouse.Principal) (*APIAccessIssued, error) {
	if err := requireOwnAuthority(p, "reissue API access"); err != nil {
		return nil, err
	}
	u, err := apiAccessAdmin(p)
	if err != nil {
		return nil, err
	}
	app, err := s.store.APIApplication(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if err := mayActOnApp(p, u, app.Scopes); err != nil {
		return nil, err
	}
	out, toks := s.newPair(u, app, gatehouse.NewID("fam"), nil)
	err = s.update(ctx, func(tx *store.Tx) error {
		// A lineage reissued while the admin is disabled, demoted or
		// deleted, or while the application is revoked, would be
		// acknowledged and audited in their name, yet never work.
		if err := lockAPIAccessAdmin(tx, p); err != nil {
			return err
		}
		if cur, err := tx.APIApplication(u.ID); err != nil {
			return err
		} else if cur.ID != app.ID {
			return gatehouse.NotFound("API access")
		}
		ended, err := tx.RevokeClientFamilies(app.ClientID, toks[0].FamilyID, s.now())
		if err != nil {
			return err
		}
		if err := tx.CreateTokens(toks...); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "api_access.reissue", "api_application", app.ClientID,
			map[string]string{"lineages_ended": strconv.Itoa(ended)}))
	})
	if err != nil {
		return nil, err
	}
	out.Scope = app.Scopes.String()
	return &APIAccessIssued{ClientID: app.ClientID, Issued: *out}, nil
}
