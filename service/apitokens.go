package service

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// LastUsedResolution bounds how stale an API token's last_used_at may be:
// it is written at most once per this interval per token, so using a token
// does not cost a store write per request.
const LastUsedResolution = time.Minute

// SetAPITokensExtension turns the API tokens extension of p's account on or
// off (on is required: invalid_request when nil). Admins only. Off, every
// API token of the account is refused until it is on again.
func (s *Service) SetAPITokensExtension(ctx context.Context, p *gatehouse.Principal, enabled *bool) error {
	if err := RequireAdmin(p); err != nil {
		return err
	}
	if enabled == nil {
		return gatehouse.Invalid("enabled is required")
	}
	on := *enabled
	return s.update(ctx, func(tx *store.Tx) error {
		a, err := tx.Account(p.AccountID)
		if err != nil {
			return err
		}
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		a.Settings.APITokensEnabled = on
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "extension.api_tokens", "account", a.ID,
			map[string]string{"enabled": strconv.FormatBool(on)}))
	})
}

// APITokensExtension reports whether the extension is on. Admins only.
func (s *Service) APITokensExtension(ctx context.Context, p *gatehouse.Principal) (bool, error) {
	st, err := s.Settings(ctx, p)
	return st.APITokensEnabled, err
}

// NewAPIToken is a freshly made API token; the token is shown once.
type NewAPIToken struct {
	ID string `json:"id"`
	// Canary is set on a canary token (see APITokenInput.Canary).
	Canary    bool             `json:"canary,omitempty"`
	Name      string           `json:"name"`
	Token     string           `json:"token"`
	Prefix    string           `json:"prefix"`
	Scopes    gatehouse.Scopes `json:"scopes"`
	ExpiresAt *time.Time       `json:"expires_at"`
	CreatedAt time.Time        `json:"created_at"`
	gatehouse.Plan
}

// APITokenInput is the input for CreateAPIToken.
type APITokenInput struct {
	Name      string             `json:"name"`
	Scopes    *[]gatehouse.Scope `json:"scopes"`
	ExpiresAt *time.Time         `json:"expires_at"`
	// Canary makes a token that never authorises: it is refused exactly
	// like an unknown token and every use is audited (SPEC §10.1).
	Canary bool `json:"canary"`
	// Patch sets the token's plan (SPEC §10.5).
	plan.Patch
}

// CreateAPIToken makes a named API token. Admins only; extension_disabled
// while the extension is off; scopes and expiry as grantScopes and
// grantExpiry allow.
func (s *Service) CreateAPIToken(ctx context.Context, p *gatehouse.Principal, in APITokenInput) (*NewAPIToken, error) {
	if err := checkScopesFirst(in.Scopes); err != nil {
		return nil, err
	}
	if err := requireOwnAuthority(p, "create an API token"); err != nil {
		return nil, err
	}
	if err := checkPlan(gatehouse.PlanAPIToken, in.Patch); err != nil {
		return nil, err
	}
	on, err := s.APITokensExtension(ctx, p)
	if err != nil {
		return nil, err
	}
	if !on {
		return nil, gatehouse.Errorf(gatehouse.EExtensionDisabled, "The API tokens extension is off for this account")
	}
	name, err := checkName("name", in.Name, MaxNameLen, true)
	if err != nil {
		return nil, err
	}
	scopes, err := grantScopes(p, in.Scopes)
	if err != nil {
		return nil, err
	}
	expires, err := s.grantExpiry(p, in.ExpiresAt)
	if err != nil {
		return nil, err
	}
	if err := mayActOn(p, apiTokenReach(p.Account, &gatehouse.APIToken{Scopes: scopes}), expires); err != nil {
		return nil, err
	}
	t := &gatehouse.APIToken{ID: gatehouse.NewID("atk"), AccountID: p.AccountID, Name: name, Scopes: scopes,
		ExpiresAt: expires, Enabled: true, CreatedBy: mintedBy(p), CreatedAt: s.now(), Canary: in.Canary}
	details := map[string]string{}
	raw, err := s.storeAPIToken(ctx, p, t, "api_token.create", details, func(tx *store.Tx) error {
		a, err := lockAPITokenAdmin(tx, p, true) // lock: see APITokenNameTaken and apiTokenRoom
		if err != nil {
			return err
		}
		if err := apiTokenRoom(tx, a, t.CreatedAt); err != nil {
			return err
		}
		return apiTokenNameFree(tx, t, "", t.CreatedAt)
	}, func(tx *store.Tx) (err error) {
		t.Plan, err = s.setPlan(tx, t.AccountID, gatehouse.PlanAPIToken, t.ID, in.Patch, details)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &NewAPIToken{ID: t.ID, Name: t.Name, Token: raw, Prefix: t.Prefix, Scopes: t.Scopes, ExpiresAt: t.ExpiresAt, CreatedAt: t.CreatedAt,
		Canary: t.Canary, Plan: t.Plan}, nil
}

// lockAPITokenAdmin begins, inside tx, every change of p's account's API
// tokens: it takes the account (locked when lock, to count or name its
// tokens, and returned; shared otherwise, and nil returned) and then
// reads p's user afresh (requireAdminNow), before any API token row. A
// disable, deletion or demotion of p's user locks the account too, so it
// has committed by now (and the change is forbidden) or waits for this
// one: an admin whose change came first mints, rolls or alters no API
// token, and the account always comes before its tokens.
func lockAPITokenAdmin(tx *store.Tx, p *gatehouse.Principal, lock bool) (*gatehouse.Account, error) {
	var a *gatehouse.Account
	var err error
	if lock {
		a, err = tx.Account(p.AccountID)
	} else {
		err = tx.ShareAccount(p.AccountID)
	}
	if err != nil {
		return nil, err
	}
	return a, requireAdminNow(tx, p)
}

// apiTokenNameFree returns conflict, about the name, when t's account has
// another live API token than except with t's name (any case). The
// account must be locked in tx.
func apiTokenNameFree(tx *store.Tx, t *gatehouse.APIToken, except string, now time.Time) error {
	taken, err := tx.APITokenNameTaken(t.AccountID, t.Name, except, now)
	if err != nil {
		return err
	}
	if taken {
		return nameTaken("API token")
	}
	return nil
}

// storeAPIToken gives t a fresh secret and stores it with its audit entry;
// it returns the secret, shown once.
func (s *Service) storeAPIToken(ctx context.Context, p *gatehouse.Principal, t *gatehouse.APIToken, action string, details map[string]string, also ...func(*store.Tx) error) (string, error) {
	raw := s.mint(token.APIToken)
	t.Prefix, t.Hash = token.Hint(raw), s.digester.Digest(raw)
	err := s.update(ctx, func(tx *store.Tx) error {
		for _, f := range also {
			if err := f(tx); err != nil {
				return err
			}
		}
		if err := tx.CreateAPIToken(t); err != nil {
			return err
		}
		details["name"], details["prefix"], details["scopes"] = t.Name, t.Prefix, scopesText(t.Scopes)
		return s.record(tx, s.audit(ctx, p, action, "api_token", t.ID, details))
	})
	return raw, err
}

// UpdateAPIToken renames, disables or enables an API token, narrows its
// scopes or brings its expiry forward. Admins only. A disabled token is
// refused until enabled again, on every node.
func (s *Service) UpdateAPIToken(ctx context.Context, p *gatehouse.Principal, id string, patch CredentialPatch) (*gatehouse.APIToken, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	if err := checkScopesFirst(patch.Scopes); err != nil {
		return nil, err
	}
	if err := checkPlan(gatehouse.PlanAPIToken, patch.Patch); err != nil {
		return nil, err
	}
	var out *gatehouse.APIToken
	err := s.update(ctx, func(tx *store.Tx) error {
		// A new name is checked against the others: the account locked.
		if _, err := lockAPITokenAdmin(tx, p, patch.Name != nil); err != nil {
			return err
		}
		t, err := tx.APIToken(p.AccountID, id)
		if err != nil {
			return err
		}
		if patch.actsOn() {
			if err := mayActOn(p, apiTokenReach(p.Account, t), t.ExpiresAt); err != nil {
				return err
			}
		}
		details, err := s.applyPatch(p.Account, patch, &t.Name, &t.Enabled, &t.Scopes, &t.ExpiresAt)
		if err != nil {
			return err
		}
		if t.Plan, err = s.setPlan(tx, t.AccountID, gatehouse.PlanAPIToken, t.ID, patch.Patch, details); err != nil {
			return err
		}
		if patch.Name != nil {
			if err := apiTokenNameFree(tx, t, t.ID, s.now()); err != nil {
				return err
			}
		}
		if err := tx.UpdateAPIToken(t); err != nil {
			return err
		}
		out = t
		return s.record(tx, s.audit(ctx, p, "api_token.update", "api_token", t.ID, details))
	})
	return out, err
}

// RollAPIToken makes a new API token with the same name and scopes as
// token id, which stops working overlapSeconds later (0: at once). The new
// token expires when the old one did, bounded like a new token by the
// account's max_credential_lifetime_days, and takes over everything minted
// through the old one. Admins only, and only on a token p may act on
// (mayActOn).
// A token revoked for good (leaked) is rolled the same way and stays
// revoked, and what was minted through it stays with it: ended. A token is rolled once: a roll of one already replaced (a
// retried roll, or two released together) is conflict, naming the
// replacement to roll instead; an expired one is conflict too. A line of
// rolls keeps at most two tokens live: the token this one replaced, if
// still in its overlap, stops now.
func (s *Service) RollAPIToken(ctx context.Context, p *gatehouse.Principal, id string, overlapSeconds int) (*NewAPIToken, error) {
	if err := requireOwnAuthority(p, "roll an API token"); err != nil {
		return nil, err
	}
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	overlap, err := checkOverlap(overlapSeconds)
	if err != nil {
		return nil, err
	}
	next := &gatehouse.APIToken{ID: gatehouse.NewID("atk"), AccountID: p.AccountID, Enabled: true, CreatedAt: s.now()}
	raw, err := s.storeAPIToken(ctx, p, next, "api_token.roll", map[string]string{}, func(tx *store.Tx) error {
		// The account locked: a roll of a token revoked for good names
		// its replacement after a name that is free again (see
		// APITokenNameTaken).
		a, err := lockAPITokenAdmin(tx, p, true)
		if err != nil {
			return err
		}
		old, err := tx.APIToken(p.AccountID, id)
		if err != nil {
			return err
		}
		if err := mayActOn(p, apiTokenReach(a, old), old.ExpiresAt); err != nil {
			return err
		}
		// A roll made already is named first: a retry of a roll whose
		// answer was lost finds the token it rolled ended (no overlap),
		// and must learn of its replacement, not make another token.
		if err := markRolled(tx.MarkAPITokenRolled(p.AccountID, old.ID, next.ID)); err != nil {
			return err
		}
		if old.ExpiresAt != nil && !old.ExpiresAt.After(next.CreatedAt) {
			// Its replacement would expire with it.
			return gatehouse.Errorf(gatehouse.EConflict, "This API token has expired; make a new one")
		}
		// A line of rolls keeps two tokens live at most: the one old
		// replaced, if still in its overlap, stops now — a change of that
		// token, which p must be able to make too.
		ended, err := s.endRolledInto(tx, p, a, old.ID, next.CreatedAt)
		if err != nil {
			return err
		}
		next.Name, next.Scopes, next.CreatedBy, next.Canary = old.Name, old.Scopes, old.CreatedBy, old.Canary
		if old.RevokedAt != nil {
			// A leaked token's name is free for a new token: one made
			// since (outside its line of rolls) keeps it.
			if taken, err := tx.APITokenNameTakenOutsideLine(p.AccountID, old.Name, old.Line(), next.CreatedAt); err != nil {
				return err
			} else if taken {
				return nameTaken("API token")
			}
		}
		// Its budgets go on counting where the old one's do.
		next.LineID = old.Line()
		next.ExpiresAt = earliest(old.ExpiresAt, s.lifetimeLimit(a))
		until := s.now().Add(overlap)
		if old.ExpiresAt == nil || until.Before(*old.ExpiresAt) {
			old.ExpiresAt = &until
		}
		if err := tx.UpdateAPIToken(old); err != nil {
			return err
		}
		// The new token keeps the old one's plan.
		pl, err := tx.Plan(p.AccountID, id)
		if err != nil {
			return err
		}
		if err := tx.SetPlan(p.AccountID, gatehouse.PlanAPIToken, next.ID, pl, next.CreatedAt); err != nil {
			return err
		}
		next.Plan = pl
		// What was minted through the old token moves to the new one —
		// unless the old one leaked: then whoever held its secret may have
		// minted it, and it stays ended with the leaked token.
		if old.RevokedAt == nil {
			if err := tx.ReparentMinted(p.AccountID, id, next.ID); err != nil {
				return err
			}
		}
		// Audited after the roll's revoking writes: the entry takes the
		// store's change counter (with the revocation log), which every
		// revoking change of every node waits for, so it is taken last,
		// not held while the minted rows are updated.
		details := map[string]string{
			"overlap_seconds": strconv.Itoa(overlapSeconds), "expires_at": old.ExpiresAt.Format(time.RFC3339), "replaced_by": next.ID}
		if ended != "" {
			details["ended_overlap_of"] = ended
		}
		return s.record(tx, s.audit(ctx, p, "api_token.rolled", "api_token", old.ID, details))
	})
	if err != nil {
		return nil, err
	}
	return &NewAPIToken{ID: next.ID, Name: next.Name, Token: raw, Prefix: next.Prefix, Scopes: next.Scopes, ExpiresAt: next.ExpiresAt,
		CreatedAt: next.CreatedAt, Plan: next.Plan}, nil
}

// endRolledInto ends now the overlap of the API tokens a roll replaced by
// token id (see store.Tx.RolledInto), for a roll of id by p in account a
// (locked): ending one is a change of it, refused (forbidden) unless p
// may act on it as on the token rolled (mayActOn: a narrowed replacement's
// roll does not end an unrestricted predecessor its caller could not
// disable). It returns the ids of those it ended, space-separated.
func (s *Service) endRolledInto(tx *store.Tx, p *gatehouse.Principal, a *gatehouse.Account, id string, now time.Time) (string, error) {
	prev, err := tx.RolledInto(p.AccountID, id, now)
	if err != nil {
		return "", err
	}
	var ended []string
	for _, t := range prev {
		if err := mayActOn(p, apiTokenReach(a, t), t.ExpiresAt); err != nil {
			return "", gatehouse.Forbidden("This roll would end the overlap of %s, the token this one replaced, which this credential may not change; roll it once that overlap is over", t.ID)
		}
		t.ExpiresAt = &now
		if err := tx.UpdateAPIToken(t); err != nil {
			return "", err
		}
		ended = append(ended, t.ID)
	}
	return strings.Join(ended, " "), nil
}

// apiTokenRoom returns limit_reached when account a (locked in tx) has
// max_api_tokens_per_account live API tokens already.
func apiTokenRoom(tx *store.Tx, a *gatehouse.Account, now time.Time) error {
	n, err := tx.CountAPITokens(a.ID, now)
	if err != nil {
		return err
	}
	if max := a.Settings.MaxAPITokensPerAccount; n >= max {
		return gatehouse.Errorf(gatehouse.ELimitReached, "This account has %d API tokens, its limit (max_api_tokens_per_account); delete one first", max)
	}
	return nil
}

// APITokens lists the account's API tokens (never the token). Admins only.
func (s *Service) APITokens(ctx context.Context, p *gatehouse.Principal, page gatehouse.Page) ([]*gatehouse.APIToken, string, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, "", err
	}
	s.settleTouches(ctx)
	ts, next, err := s.store.APITokens(ctx, p.AccountID, page)
	if err != nil {
		return nil, "", err
	}
	err = fillPlans(ctx, s, p.AccountID, ts, func(t *gatehouse.APIToken) (string, string) { return t.ID, t.Line() },
		func(t *gatehouse.APIToken) *gatehouse.Plan { return &t.Plan })
	return ts, next, err
}

// APIToken returns one API token of the account (never the token), with
// its plan and what is left of its quota. Admins only.
func (s *Service) APIToken(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.APIToken, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	s.settleTouches(ctx)
	t, err := s.store.APITokenByID(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	plans, err := s.store.Plans(ctx, p.AccountID, t.ID)
	if err != nil {
		return nil, err
	}
	t.Plan, err = s.withRemaining(ctx, p.AccountID, t.Line(), plans[t.ID])
	return t, err
}

// DeleteAPIToken revokes an API token for good, and everything minted
// through it. Admins only, and only a token p may act on (mayActOn).
func (s *Service) DeleteAPIToken(ctx context.Context, p *gatehouse.Principal, id string) error {
	if err := RequireAdmin(p); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		if _, err := lockAPITokenAdmin(tx, p, false); err != nil {
			return err
		}
		t, err := tx.APIToken(p.AccountID, id)
		if err != nil {
			return err
		}
		if err := mayActOn(p, apiTokenReach(p.Account, t), t.ExpiresAt); err != nil {
			return err
		}
		if err := tx.DeleteAPIToken(p.AccountID, id); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "api_token.revoke", "api_token", id, nil))
	})
}

func errInvalidAPIToken() error {
	return gatehouse.Errorf(gatehouse.EInvalidToken, "The API token is invalid or revoked")
}

// APITokenPrincipal authenticates an API token (SPEC §3.2). Without actAs
// the principal is the anonymous admin of the token's account; with it,
// the active user of the same account with that e-mail — any other e-mail
// is invalid_user, the same answer for unknown, disabled and other-account
// users. A token of an account whose extension is off, or that is
// suspended, is invalid_token.
func (s *Service) APITokenPrincipal(ctx context.Context, raw, actAs string) (*gatehouse.Principal, error) {
	if !token.Valid(raw, token.APIToken) {
		return nil, errInvalidAPIToken()
	}
	return s.apiTokenPrincipal(ctx, raw, actAs, true)
}

// apiTokenPrincipal is APITokenPrincipal for a token string of the right
// form; unconfirmed is as for Service.principal.
func (s *Service) apiTokenPrincipal(ctx context.Context, raw, actAs string, unconfirmed bool) (*gatehouse.Principal, error) {
	digest := s.digester.Digest(raw)
	key := digest + "\x00" + gatehouse.EmailKey(actAs)
	p, f, err := s.principal(ctx, key, unconfirmed)
	if err != nil {
		return nil, err
	}
	if p != nil {
		s.touchAPIToken(ctx, p.CredentialID)
		return p, nil
	}
	t, err := s.store.APITokenByHash(ctx, digest)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, errInvalidAPIToken()
	} else if err != nil {
		return nil, err
	}
	if t.Canary {
		return nil, s.canaryUsed(ctx, t)
	}
	a, err := s.store.Account(ctx, t.AccountID)
	if err != nil {
		return nil, err
	}
	p = &gatehouse.Principal{Account: a, AccountID: a.ID, Method: gatehouse.MethodAPIToken, CredentialID: t.ID, CredentialName: t.Name,
		CredentialLine: t.LineID, Scopes: t.Scopes, Basis: s.basis(f.snap, a.ID)}
	lineage, err := s.store.Lineage(ctx, t.AccountID, t.CreatedBy)
	if err != nil {
		return nil, err
	}
	p.CredentialExpires = t.ExpiresAt
	if t.CreatedBy != "" {
		p.CredentialExpires = earliest(t.ExpiresAt, lineage.ExpiresAt)
	}
	if p.CredentialExpires != nil {
		p.ExpiresAt = *p.CredentialExpires
	}
	if !a.Active() || !t.Usable(s.clock()) || !mintedLive(t.CreatedBy, lineage, a, s.clock()) {
		return nil, gatehouse.Refused(errInvalidAPIToken(), p)
	}
	if !a.Settings.APITokensEnabled {
		return nil, gatehouse.Refused(gatehouse.Errorf(gatehouse.EInvalidToken, "API tokens are turned off for this account"), p)
	}
	if actAs != "" {
		u, err := s.store.UserByEmail(ctx, actAs)
		if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return nil, err
		}
		if u == nil || !u.Active() || u.AccountID != a.ID {
			return nil, gatehouse.Refused(gatehouse.Errorf(gatehouse.EInvalidUser, "The user header does not name an active user of this account"), p)
		}
		p.User, p.ActingAs = u, u.Email
	}
	if err := s.planPrincipal(ctx, p, t.ID, t.Line(), ""); err != nil {
		return nil, err
	}
	s.putPrincipal(key, f, p, "", p.ExpiresAt)
	s.touchAPIToken(ctx, t.ID)
	return p, nil
}

// touchAPIToken writes last_used_at at most once per LastUsedResolution.
func (s *Service) touchAPIToken(ctx context.Context, id string) {
	s.touchLater(ctx, "atk\x00"+id, func(ctx context.Context, at time.Time) error { return s.store.TouchAPIToken(ctx, id, at) })
}

// APITokensCreatedBy lists the API tokens a user of p's account created
// or rolled, as the audit log records. Admins only.
func (s *Service) APITokensCreatedBy(ctx context.Context, p *gatehouse.Principal, userID string) ([]*gatehouse.APIToken, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	return s.store.APITokensCreatedBy(ctx, p.AccountID, userID)
}
