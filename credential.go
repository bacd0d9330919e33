package gatehouse

import (
	"time"
)

// APIApplication is an admin's "Enable API Access" application (SPEC §3.1):
// at most one per user; its tokens carry its client id.
type APIApplication struct {
	ID                 string     `json:"-"`
	AccountID          string     `json:"-"`
	UserID             string     `json:"-"`
	ClientID           string     `json:"client_id"`
	AccessTokenTTLDays int        `json:"access_token_ttl_days"`
	Scopes             Scopes     `json:"scopes"`
	CreatedBy          string     `json:"-"`
	LastUsedAt         *time.Time `json:"last_used_at"`
	CreatedAt          time.Time  `json:"created_at"`
	// Plan is what is set on the application (SPEC §10.5), where it was
	// read; its subject is the client id.
	Plan
}

// Credential is a developer's client credential (SPEC §3.3): a client id
// and a secret stored only as a digest.
type Credential struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"-"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	ClientID   string     `json:"client_id"`
	SecretHash string     `json:"-"`
	Scopes     Scopes     `json:"scopes"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Enabled    bool       `json:"enabled"`
	LastUsedAt *time.Time `json:"last_used_at"`
	CreatedAt  time.Time  `json:"created_at"`
	// CreatedBy is the API token the credential was minted through, if any.
	CreatedBy string `json:"-"`
	// PrevSecretHash is a rolled-over secret still accepted until
	// PrevSecretExpiresAt.
	PrevSecretHash      string     `json:"-"`
	PrevSecretExpiresAt *time.Time `json:"-"`
	// RevokedAt and RevokedReason mark a credential revoked for good
	// (RevokedLeaked: its secret was reported found); nothing brings it
	// back, and it stays listed so that its owner can roll it.
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
	// RolledTo is the id of what replaced it in a roll, when a roll made
	// a new one (an API token; a credential revoked for good); "" for
	// none. A roll of one already replaced is refused.
	RolledTo string `json:"-"`
	// Plan is what is set on the credential (SPEC §10.5), where it was
	// read.
	Plan
}

// RevokedLeaked is the revoked_reason of a credential or API token whose
// secret was reported found (SPEC §10.1).
const RevokedLeaked = "leaked"

// Usable reports whether the credential may authenticate at now: enabled,
// not revoked and not expired.
func (c *Credential) Usable(now time.Time) bool {
	return c.Enabled && c.RevokedAt == nil && (c.ExpiresAt == nil || now.Before(*c.ExpiresAt))
}

// APIToken is a named static token of an account (SPEC §3.2). Prefix is a
// short, non-secret beginning of the token for people to recognise it.
type APIToken struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"-"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Hash       string     `json:"-"`
	Scopes     Scopes     `json:"scopes"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Enabled    bool       `json:"enabled"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	// CreatedBy is the API token this one was minted through, if any.
	CreatedBy string `json:"-"`
	// RevokedAt and RevokedReason: as for Credential.
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
	// RolledTo is the id of what replaced it in a roll, when a roll made
	// a new one (an API token; a credential revoked for good); "" for
	// none. A roll of one already replaced is refused.
	RolledTo string `json:"-"`
	// Canary marks a token that never authorises: every use is audited
	// (SPEC §10.1). It is never shown in answers to whoever holds it.
	Canary bool `json:"canary,omitempty"`
	// LineID is the first token of the line of rolls this one comes from,
	// "" when it was rolled from none (see Line).
	LineID string `json:"-"`
	// Plan is what is set on the token (SPEC §10.5), where it was read.
	Plan
}

// Line returns the id the token's budgets count under — the account's
// per-token limit, its plan's rate limit and quota: the first token of its
// line of rolls, so that rolling a token neither refills its budgets nor,
// while the old one still works, doubles them.
func (t *APIToken) Line() string {
	if t.LineID != "" {
		return t.LineID
	}
	return t.ID
}

// Usable reports whether the API token may authenticate at now: enabled,
// not revoked, not a canary and not expired.
func (t *APIToken) Usable(now time.Time) bool {
	return t.Enabled && t.RevokedAt == nil && !t.Canary && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// UserFilter narrows a list of users; the zero value matches every user.
