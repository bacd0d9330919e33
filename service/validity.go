package service

import (
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// tokenValid is the one rule for whether an issued token works at now. A
// token is valid only while everything it comes from still allows it:
//   - it is not revoked or expired, and (a refresh token) not yet used;
//   - its account is active;
//   - its user is active, of the token's account, and still in the epochs
//     the token was issued under — disabling a user advances Epoch, a new
//     password advances PasswordEpoch (which password-derived tokens also
//     depend on) — so re-enabling a user brings nothing back;
//   - its parent still exists, is enabled and has not expired: the client
//     credential or API access application named by its client id (an API
//     access token also needs its user to be an admin);
//   - its refresh family has not been revoked.
//
// Nothing here depends on a flag written onto the token by a revocation, so
// a token inserted concurrently with a revoking change is judged by the
// parent's state after that change, on SQLite and on PostgreSQL alike.
func tokenValid(it *store.IssuedToken, now time.Time) bool {
	t, u, a := it.Token, it.User, it.Account
	switch {
	case t.RevokedAt != nil, !now.Before(t.ExpiresAt), t.Kind == gatehouse.KindRefresh && t.UsedAt != nil:
		return false
	case !a.Active(), !u.Active(), u.AccountID != t.AccountID:
		return false
	case t.UserEpoch != u.Epoch, t.PasswordDerived() && t.PasswordEpoch != u.PasswordEpoch:
		return false
	case !it.Parent.Live, !it.Parent.Enabled, it.Parent.ExpiresAt != nil && !now.Before(*it.Parent.ExpiresAt), it.FamilyRevoked:
		return false
	case t.Method == gatehouse.MethodAPIAccess && !u.IsAdmin():
		return false
	}
	return true
}

// sessionValid is the same rule for an admin UI session: active account
// and user, unchanged epochs, not expired.
func sessionValid(se *store.Session, u *gatehouse.User, a *gatehouse.Account, now time.Time) bool {
	return a.Active() && u.Active() && se.UserEpoch == u.Epoch && se.PasswordEpoch == u.PasswordEpoch && now.Before(se.ExpiresAt)
}

// tokenScopes is what an issued token's credential allows now: the scopes
// its parent holds today (an owner may narrow a credential, and every
// token of it narrows at once) intersected with the token's own narrowing.
func tokenScopes(it *store.IssuedToken) gatehouse.Scopes {
	return it.Parent.Scopes.Intersect(it.Scopes)
}
