package service

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/throttle"
	"github.com/gatehouse/gatehouse/token"
)

// Issued is a token answer: the secrets in it are shown once.
type Issued struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is the granted scope, space-separated, when the token is
	// restricted (RFC 6749 §5.1).
	Scope string `json:"scope,omitempty"`
}

// newAccess returns a fresh access token string and its row, issued under
// u's current epochs.
func (s *Service) newAccess(u *gatehouse.User, method gatehouse.AuthMethod, clientID, familyID string, ttl time.Duration) (string, *gatehouse.Token) {
	raw := s.mint(token.AccessToken)
	now := s.now()
	t := &gatehouse.Token{
		ID: gatehouse.NewID("tok"), AccountID: u.AccountID, UserID: u.ID, Kind: gatehouse.KindAccess,
		Hash: s.digester.Digest(raw), Method: method, ClientID: clientID, FamilyID: familyID,
		ExpiresAt: now.Add(ttl), CreatedAt: now, UserEpoch: u.Epoch, PasswordEpoch: u.PasswordEpoch,
	}
	if familyID == "" {
		t.FamilyID = t.ID
	}
	return raw, t
}

// invalidCredentials is the one answer to every failed password grant.
func invalidCredentials() error {
	return gatehouse.Errorf(gatehouse.EInvalidGrant, "Invalid username or password")
}

// PasswordGrant checks a username and password from the client address
// from (see CheckPassword) and issues an access token with exactly the
// user's permissions (SPEC §3.4). A correct password for an account that
// turned the grant off returns unauthorized_client. scope, when not empty,
// narrows the token to scopes the user's roles allow (invalid_scope
// otherwise).
func (s *Service) PasswordGrant(ctx context.Context, username, pw, from, scope string) (*Issued, *gatehouse.User, error) {
	if _, err := requestedScopes(scope); err != nil {
		return nil, nil, err
	}
	var secondFactor bool
	u, a, err := s.checkPasswordThen(ctx, username, pw, from, true, func(u *gatehouse.User, a *gatehouse.Account) (bool, error) {
		var err error
		secondFactor, err = s.signsInWithSecondFactor(ctx, u, a)
		return secondFactor, err
	})
	if err != nil {
		return nil, nil, err
	}
	if secondFactor {
		return nil, u, errSecondFactor()
	}
	if !a.Settings.PasswordGrantEnabled {
		return nil, u, gatehouse.Errorf(gatehouse.EUnauthorizedClient, "The password grant is turned off for this account")
	}
	narrowed, err := narrowRequest((&gatehouse.Principal{Account: a, User: u, Method: gatehouse.MethodPassword}).RoleScopes(), scope)
	if err != nil {
		return nil, u, err
	}
	ttl := time.Duration(a.Settings.TokenLifetimes.PasswordSeconds) * time.Second
	raw, t := s.newAccess(u, gatehouse.MethodPassword, "", "", ttl)
	t.Scopes = narrowed
	if err := s.store.CreateTokens(ctx, t); err != nil {
		return nil, nil, err
	}
	return &Issued{AccessToken: raw, TokenType: "bearer", ExpiresIn: int(ttl / time.Second), Scope: narrowed.String()}, u, nil
}

// CheckPassword returns the active user with the e-mail and password, and
// their active account; from is the client's address. It is the one place
// a password is checked, for the password grant and the admin UI alike:
//
//   - when the hasher is already at its limits the attempt is refused at
//     once, before any other work (temporarily_unavailable with a
//     Retry-After), and is not counted;
//   - the attempt is counted by the throttle before the password is
//     checked, per e-mail and address, per e-mail and per address
//     (too_many_attempts with a Retry-After when over a limit;
//     temporarily_unavailable when the throttle cannot decide);
//   - the password is hashed under the hasher's limits (the same refusal
//     when they filled up meanwhile);
//   - every kind of failure — unknown user, disabled user, suspended
//     account, no password, wrong password — is the same invalid_grant
//     error after about the same time, and stays counted; a right password
//     clears the e-mail's failures; an attempt that was not decided is not
//     counted.
func (s *Service) CheckPassword(ctx context.Context, username, pw, from string) (*gatehouse.User, *gatehouse.Account, error) {
	return s.checkPasswordThen(ctx, username, pw, from, false, nil)
}

// checkPasswordThen is CheckPassword with a question asked after a right
// password: when secondStep says the sign-in goes on to a second factor,
// the attempt is released rather than clearing the username's failures,
// so that a known password cannot wipe the count of wrong codes. With
// signIn (the console's sign-in and the password grant, not the check of
// a current password), a right password of a user whose account requires
// single sign-on is refused (errSSORequired), and released, not counted.
func (s *Service) checkPasswordThen(ctx context.Context, username, pw, from string, signIn bool, secondStep func(*gatehouse.User, *gatehouse.Account) (bool, error)) (*gatehouse.User, *gatehouse.Account, error) {
	if s.passwords.Busy() {
		return nil, nil, password.ErrBusy
	}
	key := gatehouse.EmailKey(username)
	res, err := s.reserve(ctx, key, from)
	if err != nil {
		return nil, nil, err
	}
	u, a, err := s.checkPassword(ctx, key, pw)
	if err == nil && signIn {
		var required bool
		if required, err = s.ssoRequired(ctx, u); err == nil && required {
			if rerr := s.throttle.Release(context.WithoutCancel(ctx), res); rerr != nil {
				return nil, nil, s.throttleDown(ctx, rerr)
			}
			return nil, nil, errSSORequired()
		}
	}
	if err == nil && secondStep != nil {
		var more bool
		if more, err = secondStep(u, a); err == nil && more {
			if rerr := s.throttle.Release(context.WithoutCancel(ctx), res); rerr != nil {
				return nil, nil, s.throttleDown(ctx, rerr)
			}
			return u, a, nil
		}
	}
	switch gatehouse.ErrorCode(err) {
	case "":
		// The user is known; a failure to clear their count only leaves it
		// to expire.
		_ = s.throttle.Succeed(context.WithoutCancel(ctx), res)
		return u, a, nil
	case gatehouse.EInvalidGrant:
		return nil, nil, err
	}
	// Not decided (the store or the hasher was unavailable): the attempt
	// does not count.
	if rerr := s.throttle.Release(context.WithoutCancel(ctx), res); rerr != nil {
		return nil, nil, errors.Join(err, rerr)
	}
	return nil, nil, err
}

// reserve counts a sign-in attempt — a password or a second factor — of
// the e-mail key from the client address before it is checked (SPEC §9.3).
func (s *Service) reserve(ctx context.Context, key, from string) (throttle.Reservation, error) {
	res, err := s.throttle.Reserve(ctx, key, from)
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.ETooManyAttempts {
			gatehouse.Logger(ctx).WarnContext(ctx, "sign-in throttled", "client_addr", from)
			s.noticeThrottled(ctx, key, from)
			return res, err
		}
		return res, s.throttleDown(ctx, err)
	}
	return res, nil
}

// throttleDown is the answer when the sign-in throttle cannot be reached.
func (s *Service) throttleDown(ctx context.Context, err error) error {
	gatehouse.Logger(ctx).WarnContext(ctx, "sign-in throttle unavailable", "err", err)
	return errors.Join(&gatehouse.Error{Code: gatehouse.EUnavailable,
		Message: "Sign-in is unavailable; try again shortly", RetryAfter: time.Second}, err)
}

// checkPassword looks up the e-mail key and checks the password, the user
// and their account.
func (s *Service) checkPassword(ctx context.Context, key, pw string) (*gatehouse.User, *gatehouse.Account, error) {
	var u *gatehouse.User
	if len(key) <= MaxEmailLen {
		var err error
		if u, err = s.store.UserByEmail(ctx, key); err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return nil, nil, err
		}
	}
	if u == nil || u.PasswordHash == "" {
		if err := s.passwords.VerifyDummy(ctx, pw); err != nil {
			return nil, nil, err
		}
		return nil, nil, invalidCredentials()
	}
	if err := s.passwords.Verify(ctx, pw, u.PasswordHash); err != nil {
		if !errors.Is(err, password.ErrMismatch) {
			return nil, nil, err
		}
		return nil, nil, invalidCredentials()
	}
	if !u.Active() {
		return nil, nil, invalidCredentials()
	}
	a, err := s.store.Account(ctx, u.AccountID)
	if err != nil {
		return nil, nil, err
	}
	if !a.Active() {
		return nil, nil, invalidCredentials()
	}
	return u, a, nil
}

// errInvalidToken is the answer for any access token that does not work.
func errInvalidToken() error {
	return gatehouse.Errorf(gatehouse.EInvalidToken, "The access token is invalid, expired or revoked")
}

// AccessPrincipal validates an access token string and returns who it acts
// as. Every rule of tokenValid is checked on every call (from a cache that
// every revoking change empties). Any failure is invalid_token; other
// errors are technical. In a cluster whose rate limiter confirms
// principals (Config.LimiterConfirms), a principal served from the cache
// rests on this node's last view of the cluster (its Basis), and must be
// charged through that limiter before it is trusted.
func (s *Service) AccessPrincipal(ctx context.Context, raw string) (*gatehouse.Principal, error) {
	if !token.Valid(raw, token.AccessToken) {
		return nil, errInvalidToken()
	}
	digest := s.digester.Digest(raw)
	p, f, err := s.principal(ctx, digest, true)
	if p != nil || err != nil {
		s.touchParent(ctx, p)
		return p, err
	}
	it, err := s.store.TokenByHash(ctx, digest)
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			return nil, errInvalidToken()
		}
		return nil, err
	}
	p = &gatehouse.Principal{
		Account: it.Account, AccountID: it.Account.ID, User: it.User, Method: it.Method, CredentialID: it.ID,
		ClientID: it.ClientID, Resource: it.Resource, ExpiresAt: it.ExpiresAt, Scopes: tokenScopes(it), Basis: s.basis(f.snap, it.Account.ID),
		CredentialExpires: tokenCredentialExpires(it), MintedThrough: it.Parent.MintedBy,
	}
	if it.Kind != gatehouse.KindAccess || !tokenValid(it, s.clock()) {
		return nil, gatehouse.Refused(errInvalidToken(), p)
	}
	if err := s.planPrincipal(ctx, p, it.Parent.ID, it.Parent.ID, it.Parent.AccountID); err != nil {
		return nil, err
	}
	s.putPrincipal(digest, f, p, it.FamilyID, cacheUntil(p.ExpiresAt, p.CredentialExpires))
	s.touchParent(ctx, p)
	return p, nil
}

// touchParent records the use of an access token as a use of the
// credential it was issued to (SPEC §10.8 "Last use"): its API access
// application, or its client credential. Like every last-use mark it is
// written at most once per LastUsedResolution per credential, so using a
// token costs no store write per request.
func (s *Service) touchParent(ctx context.Context, p *gatehouse.Principal) {
	if p == nil || p.ClientID == "" {
		return
	}
	switch p.Method {
	case gatehouse.MethodAPIAccess:
		s.touchApp(ctx, p.ClientID)
	case gatehouse.MethodClientCredentials:
		s.touch(ctx, "crdc\x00"+p.ClientID, func(at time.Time) error { return s.store.TouchCredentialByClientID(ctx, p.ClientID, at) })
	case gatehouse.MethodAuthorizationCode:
		uid := p.User.ID
		s.touch(ctx, "tpa\x00"+p.ClientID+"\x00"+uid, func(at time.Time) error { return s.store.TouchApp(ctx, p.ClientID, uid, at) })
	}
}

// touchApp records a use of the API access application clientID (the
// same mark its refresh writes).
func (s *Service) touchApp(ctx context.Context, clientID string) {
	s.touch(ctx, "app\x00"+clientID, func(at time.Time) error { return s.store.TouchAPIApplication(ctx, clientID, at) })
}

// issuedToken looks up an access or refresh token string for revocation
// and introspection. It returns not_found for strings that are not one of
// them or unknown; the token may be invalid (check tokenValid).
func (s *Service) issuedToken(ctx context.Context, raw string) (*store.IssuedToken, error) {
	if !token.Valid(raw, token.AccessToken) && !token.Valid(raw, token.RefreshToken) {
		return nil, gatehouse.NotFound("token")
	}
	return s.store.TokenByHash(ctx, s.digester.Digest(raw))
}
