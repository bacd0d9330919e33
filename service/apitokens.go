package service

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/token"
)

// LastUsedResolution bounds how stale an API token's last_used_at may be:
// it is written at most once per this interval per token, so using a token
// does not cost a store write per request.
const LastUsedResolution = time.Minute

// SetAPITokensExtension turns the API tokens extension of p's account on or
// off. Admins only. Off, every API token of the account is refused until it
// is on again.
func (s *Service) SetAPITokensExtension(ctx context.Context, p *gatehouse.Principal, on bool) error {
	if err := RequireAdmin(p); err != nil {
		return err
	}
	a, err := s.Store.Account(ctx, p.AccountID)
	if err != nil {
		return err
	}
	a.Settings.APITokensEnabled = on
	return s.Store.UpdateSettings(ctx, a.ID, a.Settings, s.audit(ctx, p, "extension.api_tokens", "account", a.ID,
		map[string]string{"enabled": strconv.FormatBool(on)}))
}

// APITokensExtension reports whether the extension is on. Admins only.
func (s *Service) APITokensExtension(ctx context.Context, p *gatehouse.Principal) (bool, error) {
	st, err := s.Settings(ctx, p)
	return st.APITokensEnabled, err
}

// NewAPIToken is a freshly made API token; the token is shown once.
type NewAPIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Token     string    `json:"token"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateAPIToken makes a named API token. Admins only; extension_disabled
// while the extension is off.
func (s *Service) CreateAPIToken(ctx context.Context, p *gatehouse.Principal, name string) (*NewAPIToken, error) {
	on, err := s.APITokensExtension(ctx, p)
	if err != nil {
		return nil, err
	}
	if !on {
		return nil, gatehouse.Errorf(gatehouse.EExtensionDisabled, "The API tokens extension is off for this account")
	}
	if name, err = checkName("name", name, MaxNameLen, true); err != nil {
		return nil, err
	}
	raw := token.New(token.APIToken)
	t := &gatehouse.APIToken{ID: gatehouse.NewID("atk"), AccountID: p.AccountID, Name: name, Prefix: token.Hint(raw),
		Hash: s.Digester.Digest(raw), CreatedAt: s.now()}
	if err := s.Store.CreateAPIToken(ctx, t, s.audit(ctx, p, "api_token.create", "api_token", t.ID,
		map[string]string{"name": name, "prefix": t.Prefix})); err != nil {
		return nil, err
	}
	return &NewAPIToken{ID: t.ID, Name: t.Name, Token: raw, Prefix: t.Prefix, CreatedAt: t.CreatedAt}, nil
}

// APITokens lists the account's API tokens (never the token). Admins only.
func (s *Service) APITokens(ctx context.Context, p *gatehouse.Principal, page gatehouse.Page) ([]*gatehouse.APIToken, string, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, "", err
	}
	return s.Store.APITokens(ctx, p.AccountID, page)
}

// DeleteAPIToken revokes an API token for good. Admins only.
func (s *Service) DeleteAPIToken(ctx context.Context, p *gatehouse.Principal, id string) error {
	if err := RequireAdmin(p); err != nil {
		return err
	}
	return s.Store.DeleteAPIToken(ctx, p.AccountID, id, s.audit(ctx, p, "api_token.revoke", "api_token", id, nil))
}

func errInvalidAPIToken() error {
	return gatehouse.Errorf(gatehouse.EInvalidToken, "The API token is invalid or revoked")
}

// APITokenPrincipal authenticates an API token (SPEC §3.2). Without actAs
// the principal is the anonymous admin of the token's account; with it,
// the active user of the same account with that e-mail — any other e-mail
// is invalid_user, the same answer for unknown, disabled and other-account
// users. A token of an account whose extension is off is invalid_token.
func (s *Service) APITokenPrincipal(ctx context.Context, raw, actAs string) (*gatehouse.Principal, error) {
	if !token.Valid(raw, token.APIToken) {
		return nil, errInvalidAPIToken()
	}
	digest := s.Digester.Digest(raw)
	key := digest + "\x00" + strings.ToLower(actAs)
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := s.cache.get(key, gen, s.Now()); ok {
		s.cacheHit(true)
		s.touchAPIToken(ctx, p.CredentialID)
		return p, nil
	}
	s.cacheHit(false)
	t, err := s.Store.APITokenByHash(ctx, digest)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, errInvalidAPIToken()
	} else if err != nil {
		return nil, err
	}
	a, err := s.Store.Account(ctx, t.AccountID)
	if err != nil {
		return nil, err
	}
	if !a.Settings.APITokensEnabled {
		return nil, gatehouse.Errorf(gatehouse.EInvalidToken, "API tokens are turned off for this account")
	}
	p := &gatehouse.Principal{Account: a, AccountID: a.ID, Method: gatehouse.MethodAPIToken, CredentialID: t.ID}
	if actAs != "" {
		u, err := s.Store.UserByEmail(ctx, actAs)
		if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return nil, err
		}
		if u == nil || !u.Active() || u.AccountID != a.ID {
			return nil, gatehouse.Errorf(gatehouse.EInvalidUser, "The user header does not name an active user of this account")
		}
		p.User, p.ActingAs = u, u.Email
	}
	s.cache.put(key, gen, p)
	s.touchAPIToken(ctx, t.ID)
	return p, nil
}

// touchAPIToken writes last_used_at at most once per LastUsedResolution.
func (s *Service) touchAPIToken(ctx context.Context, id string) {
	now := s.Now()
	if v, ok := s.lastUsed.Load(id); ok && now.Sub(v.(time.Time)) < LastUsedResolution {
		return
	}
	s.lastUsed.Store(id, now)
	if err := s.Store.TouchAPIToken(ctx, id, now.UTC()); err != nil {
		s.lastUsed.Delete(id)
	}
}
