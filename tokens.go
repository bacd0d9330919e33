package gatehouse

import (
	"time"
)

// AuthMethod names how a request or token was authenticated.
type AuthMethod string

// The ways in (SPEC §3).
const (
	MethodPassword          AuthMethod = "password"
	MethodAPIAccess         AuthMethod = "api_access"
	MethodClientCredentials AuthMethod = "client_credentials"
	MethodAPIToken          AuthMethod = "api_token"
	MethodSession           AuthMethod = "session"
	// MethodAuthorizationCode is a token a third-party application
	// obtained with the authorization code grant (SPEC §10.3).
	MethodAuthorizationCode AuthMethod = "authorization_code"
)

// TokenKind distinguishes access tokens from refresh tokens.
type TokenKind string

// The kinds of issued OAuth tokens.
const (
	KindAccess  TokenKind = "access"
	KindRefresh TokenKind = "refresh"
)

// Token is an issued access or refresh token as stored: only the hash of
// the token string is kept. ClientID is the API application or client
// credential that obtained it; FamilyID groups a refresh lineage.
type Token struct {
	ID        string
	AccountID string
	UserID    string
	Kind      TokenKind
	Hash      string
	Method    AuthMethod
	ClientID  string
	FamilyID  string
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
	CreatedAt time.Time
	// UserEpoch and PasswordEpoch are the user's epochs when the token was
	// issued (see User.Epoch).
	UserEpoch, PasswordEpoch int64
	// Scopes narrows the token below its credential's scopes (OAuth
	// "scope"); nil means "as the credential".
	Scopes Scopes
	// Resource is the resource the token is bound to (RFC 8707, SPEC
	// §10.4), in ResourceKey's form; "" for none.
	Resource string
}

// PasswordDerived reports whether the token came from the user's password,
// so that a password change ends it.
func (t *Token) PasswordDerived() bool { return t.Method == MethodPassword }
