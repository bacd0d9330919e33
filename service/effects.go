package service

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// What a change would stop: worked out before a change is made, from the
// same rules that make it, so that the admin UI can say exactly what will
// stop working and ask for a confirmation first.

// UserChange is what a change of a user would do.
type UserChange struct {
	// User is the user as they are now.
	User *gatehouse.User
	// Self is set when the change is the asking admin's own.
	Self                                 bool
	Disables, LosesAdmin, LosesDeveloper bool
	// Sessions is how many admin UI sessions end (disabling).
	Sessions int
	// Tokens is how many issued tokens stop working: all of the user's
	// when disabling, the API access application's when losing admin.
	Tokens int
	// APIAccess is the API access application the change deletes.
	APIAccess *gatehouse.APIApplication
	// Credentials are the user's client credentials: they stop working
	// when the user is disabled, and stay live after the developer role
	// goes unless revoked too.
	Credentials []*gatehouse.Credential
}

// NeedsConfirmation reports whether the change stops something working,
// leaves credentials live without a role, or takes the admin's own
// rights: it should then be confirmed first.
func (c *UserChange) NeedsConfirmation() bool {
	return c.Disables || (c.LosesAdmin && (c.Self || c.APIAccess != nil)) || (c.LosesDeveloper && len(c.Credentials) > 0)
}

// PreviewUserChange works out what UpdateUser would do with patch, with
// the same checks and refusals (forbidden, not_found, conflict for the
// last admin, invalid_request), and changes nothing.
func (s *Service) PreviewUserChange(ctx context.Context, p *gatehouse.Principal, id string, patch UserPatch) (*UserChange, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	c, err := s.checkUserPatch(ctx, patch, false)
	if err != nil {
		return nil, err
	}
	u, err := s.store.User(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	if err := requireMayChange(p, u); err != nil {
		return nil, err
	}
	after := *u
	e := c.apply(&after)
	if e.removesLastAdmin {
		n, err := s.store.CountActiveAdmins(ctx, p.AccountID)
		if err != nil {
			return nil, err
		}
		if n <= 1 {
			return nil, lastAdmin()
		}
	}
	out := &UserChange{User: u, Self: u.ID == p.UserID(), Disables: e.disables, LosesAdmin: e.losesAdmin, LosesDeveloper: e.losesDeveloper}
	now := s.clock()
	if e.dropApp {
		app, err := s.store.APIApplication(ctx, u.ID)
		switch {
		case err == nil:
			out.APIAccess = app
			if !e.disables {
				if out.Tokens, err = s.liveTokens(ctx, store.TokenFilter{ClientID: app.ClientID}, now); err != nil {
					return nil, err
				}
			}
		case gatehouse.ErrorCode(err) != gatehouse.ENotFound:
			return nil, err
		}
	}
	if e.disables {
		ses, err := s.store.Sessions(ctx, u.ID, now)
		if err != nil {
			return nil, err
		}
		out.Sessions = len(ses)
		if out.Tokens, err = s.liveTokens(ctx, store.TokenFilter{UserID: u.ID}, now); err != nil {
			return nil, err
		}
	}
	if e.disables || e.losesDeveloper {
		if out.Credentials, err = s.allCredentials(ctx, u); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// liveTokens counts the issued tokens matching f that work at now.
func (s *Service) liveTokens(ctx context.Context, f store.TokenFilter, now time.Time) (int, error) {
	byMethod, err := s.store.LiveTokens(ctx, f, now)
	n := 0
	for _, c := range byMethod {
		n += c
	}
	return n, err
}

// allCredentials lists every client credential of u.
func (s *Service) allCredentials(ctx context.Context, u *gatehouse.User) ([]*gatehouse.Credential, error) {
	return allPages(func(p gatehouse.Page) ([]*gatehouse.Credential, string, error) {
		return s.store.Credentials(ctx, u.AccountID, u.ID, p)
	})
}

// AllCredentials lists every client credential of user userID, page after
// page, by the rules of Credentials.
func (s *Service) AllCredentials(ctx context.Context, p *gatehouse.Principal, userID string) ([]*gatehouse.Credential, error) {
	return allPages(func(page gatehouse.Page) ([]*gatehouse.Credential, string, error) {
		return s.Credentials(ctx, p, userID, page)
	})
}

// allPages reads a list to its end with list, a page of the largest size
// at a time.
func allPages[T any](list func(gatehouse.Page) ([]T, string, error)) ([]T, error) {
	var out []T
	page := gatehouse.Page{Limit: gatehouse.MaxPageSize}
	for {
		items, next, err := list(page)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		page.After = next
	}
}

// LiveTokenCount counts the issued tokens of a client id (a client
// credential or an API access application) of p's account that still
// work. Admins, and a developer for their own credential.
func (s *Service) LiveTokenCount(ctx context.Context, p *gatehouse.Principal, clientID string) (int, error) {
	if !p.IsAdmin() {
		c, err := s.store.CredentialByClientID(ctx, clientID)
		if err != nil {
			return 0, err
		}
		if err := mayManageCredential(p, c); err != nil {
			return 0, err
		}
	}
	return s.liveTokens(ctx, store.TokenFilter{ClientID: clientID}, s.clock())
}

// UserTokenCount counts the issued tokens of a user of p's account that
// still work, and their admin UI sessions. The user themselves, or an
// admin.
func (s *Service) UserTokenCount(ctx context.Context, p *gatehouse.Principal, userID string) (tokens, sessions int, err error) {
	if err := s.mayManageSessions(ctx, p, userID, false); err != nil {
		return 0, 0, err
	}
	now := s.clock()
	if tokens, err = s.liveTokens(ctx, store.TokenFilter{UserID: userID}, now); err != nil {
		return 0, 0, err
	}
	ses, err := s.store.Sessions(ctx, userID, now)
	return tokens, len(ses), err
}

// APITokenImpact is what revoking one API token, or turning the
// extension off, stops.
type APITokenImpact struct {
	// Tokens are the API tokens that stop working.
	Tokens []*gatehouse.APIToken
	// Minted is how many client credentials (and, when revoking, API
	// access applications) made through those tokens stop working.
	Minted int
}

// APITokenRevokeImpact works out what revoking API token id stops: the
// token, every token minted through it, and what those minted. Admins
// only; not_found for another account's.
func (s *Service) APITokenRevokeImpact(ctx context.Context, p *gatehouse.Principal, id string) (*APITokenImpact, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	t, err := s.store.APITokenByID(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	out := &APITokenImpact{Tokens: []*gatehouse.APIToken{t}}
	for i := 0; i < len(out.Tokens); i++ {
		minted, creds, err := s.store.MintedBy(ctx, p.AccountID, out.Tokens[i].ID)
		if err != nil {
			return nil, err
		}
		out.Tokens, out.Minted = append(out.Tokens, minted...), out.Minted+creds
	}
	return out, nil
}

// ExtensionOffImpact works out what turning the API tokens extension off
// stops: every usable API token of the account, and every credential made
// through one. Admins only.
func (s *Service) ExtensionOffImpact(ctx context.Context, p *gatehouse.Principal) (*APITokenImpact, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	out := &APITokenImpact{}
	now := s.clock()
	page := gatehouse.Page{Limit: gatehouse.MaxPageSize}
	for {
		ts, next, err := s.store.APITokens(ctx, p.AccountID, page)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if t.Usable(now) {
				out.Tokens = append(out.Tokens, t)
			}
		}
		if next == "" {
			break
		}
		page.After = next
	}
	n, err := s.store.CountMinted(ctx, p.AccountID)
	out.Minted = n
	return out, err
}
