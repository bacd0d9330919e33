package service

import (
	"context"
	"crypto/rand"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// SessionLifetime is how long an admin UI session lasts.
const SessionLifetime = 12 * time.Hour

// Login checks an e-mail and password from the client address from (with
// the same checks and answers as the password grant, see CheckPassword)
// and starts an admin UI session. It returns the session cookie value,
// shown once, and the session's CSRF token. A user with a second factor
// is forbidden here: the console signs them in with SignIn and
// CompleteSignIn.
func (s *Service) Login(ctx context.Context, email, pw, from string) (cookie, csrf string, err error) {
	step, err := s.SignIn(ctx, email, pw, from)
	if err != nil {
		return "", "", err
	}
	if step.Pending != "" {
		return "", "", gatehouse.Forbidden("This user signs in with a second factor")
	}
	return step.Session, step.CSRF, nil
}

// createSession stores a new console session of u begun from the client
// address from, inside tx, and returns its cookie value and CSRF token.
func (s *Service) createSession(tx *store.Tx, u *gatehouse.User, from string) (cookie, csrf string, err error) {
	cookie = s.mint(token.Session)
	now := s.now()
	se := &store.Session{ID: gatehouse.NewID("ses"), Hash: s.digester.Digest(cookie), UserID: u.ID,
		CSRF: rand.Text(), CreatedAt: now, ExpiresAt: now.Add(SessionLifetime),
		UserEpoch: u.Epoch, PasswordEpoch: u.PasswordEpoch, ClientAddr: from}
	if err := tx.CreateSession(se); err != nil {
		return "", "", err
	}
	return cookie, se.CSRF, nil
}

// SessionPrincipal returns the principal of a session cookie and the
// session's CSRF token. The session must still be valid (sessionValid):
// disabling the user, changing their password or suspending their account
// ends it on the next request.
func (s *Service) SessionPrincipal(ctx context.Context, cookie string) (*gatehouse.Principal, string, error) {
	if !token.Valid(cookie, token.Session) {
		return nil, "", errInvalidToken()
	}
	se, u, a, err := s.store.SessionByHash(ctx, s.digester.Digest(cookie))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, "", errInvalidToken()
	} else if err != nil {
		return nil, "", err
	}
	if !sessionValid(se, u, a, s.clock()) {
		// A session that can never work again is deleted; one of a
		// suspended account comes back when the account is reactivated.
		if a.Active() {
			_ = s.store.DeleteSession(ctx, se.ID)
		}
		return nil, "", errInvalidToken()
	}
	return &gatehouse.Principal{Account: a, AccountID: a.ID, User: u, Method: gatehouse.MethodSession,
		CredentialID: se.ID, ExpiresAt: se.ExpiresAt}, se.CSRF, nil
}

// Logout ends the session of p.
func (s *Service) Logout(ctx context.Context, p *gatehouse.Principal) error {
	return s.store.DeleteSession(ctx, p.CredentialID)
}

// SessionInfo describes one admin UI session, for lists.
type SessionInfo struct {
	ID        string
	CreatedAt time.Time
	ExpiresAt time.Time
	// ClientAddr is the client address the session was begun from.
	ClientAddr string
	// Current is the session of the request that asked.
	Current bool
}

// mayManageSessions returns forbidden unless p may see the sessions of
// user userID and, with change, end them: their own from a sign-in (a
// console session or a password-grant token — no API token, client
// credential or application's token sees or ends a user's sessions), or
// any user's of the account for an admin, where only the operator ends
// the operator's (not_found for another account's user).
func (s *Service) mayManageSessions(ctx context.Context, p *gatehouse.Principal, userID string, change bool) error {
	if userID == p.UserID() {
		return requireSignIn(p)
	}
	if err := RequireAdmin(p); err != nil {
		return err
	}
	u, err := s.store.User(ctx, p.AccountID, userID)
	if err != nil || !change {
		return err
	}
	return requireMayChange(p, u)
}

// Sessions lists the admin UI sessions of a user that still work, newest
// first: p's own (from a sign-in), or any user's of p's account for an
// admin (mayManageSessions).
func (s *Service) Sessions(ctx context.Context, p *gatehouse.Principal, userID string) ([]SessionInfo, error) {
	if err := s.mayManageSessions(ctx, p, userID, false); err != nil {
		return nil, err
	}
	ses, err := s.store.Sessions(ctx, userID, s.clock())
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, len(ses))
	for i, se := range ses {
		out[i] = SessionInfo{ID: se.ID, CreatedAt: se.CreatedAt, ExpiresAt: se.ExpiresAt, ClientAddr: se.ClientAddr,
			Current: p.Method == gatehouse.MethodSession && se.ID == p.CredentialID}
	}
	return out, nil
}

// EndSessions signs a user out of the admin UI everywhere — but for the
// session p itself uses — and returns how many sessions ended; audited as
// user.sessions_end. p's own user (from a sign-in), or any user's of p's
// account for an admin, the operator's only for the operator
// (mayManageSessions).
func (s *Service) EndSessions(ctx context.Context, p *gatehouse.Principal, userID string) (int, error) {
	if err := s.mayManageSessions(ctx, p, userID, true); err != nil {
		return 0, err
	}
	keep := ""
	if p.Method == gatehouse.MethodSession {
		keep = p.CredentialID
	}
	n := 0
	err := s.update(ctx, func(tx *store.Tx) (err error) {
		if userID != p.UserID() {
			if err := requireAdminShared(tx, p); err != nil {
				return err
			}
		}
		if n, err = tx.DeleteSessions(userID, keep); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.sessions_end", "user", userID, map[string]string{"count": strconv.Itoa(n)}))
	})
	return n, err
}
