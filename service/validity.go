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
//   - its refresh family has not been revoked;
//   - a third-party application's token: the application's publisher is
//     not suspended and the account's third_party_apps policy allows it
//     now (appAllowed);
//   - if its parent was minted through an API token, every API token of
//     that chain exists, is enabled and has not expired, and the
//     account's API tokens extension is on (SPEC §10.8: nothing minted
//     through an API token outlives it). A roll moves the chain to the
//     new token (store.Tx.ReparentMinted).
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
	case !mintedLive(it.Parent.MintedBy, it.Parent.Lineage, a, now):
		return false
	case t.Method == gatehouse.MethodAuthorizationCode && !appAllowed(it.Parent, a):
		return false
	}
	return true
}

// appAllowed is the rule for a third-party application's token at each
// use, not only at consent: its publisher's account is not suspended, and
// the token's account allows the application now — any under "any", one
// it approved, or publishes itself through a developer still active,
// under "approved", none under "none".
func appAllowed(app store.Parent, a *gatehouse.Account) bool {
	if app.PublisherSuspended {
		return false
	}
	switch a.Settings.AppsPolicy() {
	case gatehouse.AppsNone:
		return false
	case gatehouse.AppsApproved:
		return app.Approved || (app.AccountID == a.ID && app.OwnerActive)
	}
	return true
}

// mintedLive is the rule for what was minted through API token by (""
// for nothing): its chain of API tokens is live and the account's API
// tokens extension is on.
func mintedLive(by string, l store.Lineage, a *gatehouse.Account, now time.Time) bool {
	return by == "" || (l.Live(now) && a.Settings.APITokensEnabled)
}

// tokenCredentialExpires is when the credential behind an issued token
// stops working: its client credential's expiry, bounded by the API
// tokens it was minted through (nil: never).
func tokenCredentialExpires(it *store.IssuedToken) *time.Time {
	var at *time.Time
	if it.Method == gatehouse.MethodClientCredentials {
		at = it.Parent.ExpiresAt
	}
	if it.Parent.MintedBy != "" {
		at = earliest(at, it.Parent.Lineage.ExpiresAt)
	}
	return at
}

// tokenExpires is when an issued token stops working at the latest: its
// own expiry or its credential's, whichever comes first (tokenValid
// refuses it from either on).
func tokenExpires(it *store.IssuedToken) time.Time {
	return cacheUntil(it.ExpiresAt, tokenCredentialExpires(it))
}

// cacheUntil is how long a principal may be cached: until its own expiry
// (zero: none) or its credential's, whichever comes first.
func cacheUntil(expires time.Time, credential *time.Time) time.Time {
	if credential != nil && (expires.IsZero() || credential.Before(expires)) {
		return *credential
	}
	return expires
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
