package service

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/token"
)

// Issued is a token answer: the secrets in it are shown once.
type Issued struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// newAccess returns a fresh access token string and its row.
func (s *Service) newAccess(u *gatehouse.User, method gatehouse.AuthMethod, clientID, familyID string, ttl time.Duration) (string, *gatehouse.Token) {
	raw := token.New(token.AccessToken)
	now := s.now()
	t := &gatehouse.Token{
		ID: gatehouse.NewID("tok"), AccountID: u.AccountID, UserID: u.ID, Kind: gatehouse.KindAccess,
		Hash: s.Digester.Digest(raw), Method: method, ClientID: clientID, FamilyID: familyID,
		ExpiresAt: now.Add(ttl), CreatedAt: now,
	}
	return raw, t
}

// invalidCredentials is the one answer to every failed password grant.
func invalidCredentials() error {
	return gatehouse.Errorf(gatehouse.EInvalidGrant, "Invalid username or password")
}

// PasswordGrant checks a username and password and issues an access token
// with exactly the user's permissions (SPEC §3.4). Every kind of failure —
// unknown user, disabled user, no password, wrong password — returns the
// same invalid_grant error after about the same time. A correct password for
// an account that turned the grant off returns unauthorized_client.
func (s *Service) PasswordGrant(ctx context.Context, username, pw string) (*Issued, *gatehouse.User, error) {
	u, err := s.CheckPassword(ctx, username, pw)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.Store.Account(ctx, u.AccountID)
	if err != nil {
		return nil, nil, err
	}
	if !a.Settings.PasswordGrantEnabled {
		return nil, u, gatehouse.Errorf(gatehouse.EUnauthorizedClient, "The password grant is turned off for this account")
	}
	ttl := time.Duration(a.Settings.TokenLifetimes.PasswordSeconds) * time.Second
	raw, t := s.newAccess(u, gatehouse.MethodPassword, "", "", ttl)
	t.FamilyID = t.ID
	if err := s.Store.CreateTokens(ctx, t); err != nil {
		return nil, nil, err
	}
	return &Issued{AccessToken: raw, TokenType: "bearer", ExpiresIn: int(ttl / time.Second)}, u, nil
}

// CheckPassword returns the active user with the e-mail and password.
// Every kind of failure — unknown user, disabled user, no password, wrong
// password — is the same invalid_grant error after about the same time.
func (s *Service) CheckPassword(ctx context.Context, username, pw string) (*gatehouse.User, error) {
	u, err := s.Store.UserByEmail(ctx, username)
	if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		return nil, err
	}
	if u == nil || u.PasswordHash == "" {
		s.Passwords.VerifyDummy(pw)
		return nil, invalidCredentials()
	}
	if err := s.Passwords.Verify(pw, u.PasswordHash); err != nil {
		if !errors.Is(err, password.ErrMismatch) {
			return nil, err
		}
		return nil, invalidCredentials()
	}
	if !u.Active() {
		return nil, invalidCredentials()
	}
	return u, nil
}

// errInvalidToken is the answer for any access token that does not work.
func errInvalidToken() error {
	return gatehouse.Errorf(gatehouse.EInvalidToken, "The access token is invalid, expired or revoked")
}

// AccessPrincipal validates an access token string and returns who it acts
// as. It checks everything on every call: well-formed, known, an access
// token, not expired, not revoked, user active. Any failure is
// invalid_token; other errors are technical.
func (s *Service) AccessPrincipal(ctx context.Context, raw string) (*gatehouse.Principal, error) {
	if !token.Valid(raw, token.AccessToken) {
		return nil, errInvalidToken()
	}
	digest := s.Digester.Digest(raw)
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := s.cache.get(digest, gen, s.Now()); ok {
		s.cacheHit(true)
		return p, nil
	}
	s.cacheHit(false)
	t, u, err := s.Store.TokenByHash(ctx, digest)
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			return nil, errInvalidToken()
		}
		return nil, err
	}
	now := s.Now()
	if t.Kind != gatehouse.KindAccess || t.RevokedAt != nil || !now.Before(t.ExpiresAt) || !u.Active() || u.AccountID != t.AccountID {
		return nil, errInvalidToken()
	}
	a, err := s.Store.Account(ctx, t.AccountID)
	if err != nil {
		return nil, err
	}
	p := &gatehouse.Principal{
		Account: a, AccountID: a.ID, User: u, Method: t.Method, CredentialID: t.ID,
		ClientID: t.ClientID, ExpiresAt: t.ExpiresAt,
	}
	s.cache.put(digest, gen, p)
	return p, nil
}

// IssuedToken looks up an access or refresh token string for revocation
// and introspection. It returns not_found for strings that are not one of
// them or unknown; the token may be inactive (check Active).
func (s *Service) IssuedToken(ctx context.Context, raw string) (*gatehouse.Token, *gatehouse.User, error) {
	if !token.Valid(raw, token.AccessToken) && !token.Valid(raw, token.RefreshToken) {
		return nil, nil, gatehouse.NotFound("token")
	}
	return s.Store.TokenByHash(ctx, s.Digester.Digest(raw))
}

// TokenActive reports whether an issued token still works: not revoked,
// not expired, not used (refresh tokens), its user active.
func (s *Service) TokenActive(t *gatehouse.Token, u *gatehouse.User) bool {
	return t.RevokedAt == nil && t.UsedAt == nil && s.Now().Before(t.ExpiresAt) && u.Active()
}

// RevokeIssuedToken revokes a token (RFC 7009). Revoking a refresh token
// revokes its whole lineage, access tokens included.
func (s *Service) RevokeIssuedToken(ctx context.Context, t *gatehouse.Token) error {
	if t.Kind == gatehouse.KindRefresh {
		return s.Store.RevokeTokenFamily(ctx, t.FamilyID, s.now())
	}
	return s.Store.RevokeToken(ctx, t.ID, s.now())
}
