package gatehouse

import "time"

// The third_party_apps policies of an account (SPEC §10.3).
const (
	// AppsAny lets the account's users authorise any application.
	AppsAny = "any"
	// AppsApproved lets them authorise the account's own applications,
	// and others once an admin of the account approved them.
	AppsApproved = "approved"
	// AppsNone lets them authorise none.
	AppsNone = "none"
)

// AppsPolicy returns the account's third_party_apps policy; an account
// stored before the setting existed has the default, AppsApproved.
func (s Settings) AppsPolicy() string {
	if s.ThirdPartyApps == "" {
		return AppsApproved
	}
	return s.ThirdPartyApps
}

// The kinds of third-party application (RFC 6749 §2.1).
const (
	AppConfidential = "confidential"
	AppPublic       = "public"
)

// App is a third-party application a developer registered (SPEC §10.3).
// A confidential application has a secret, stored only as a digest; a
// public one has none. Both use PKCE.
type App struct {
	ID           string     `json:"id"`
	AccountID    string     `json:"account_id"`
	OwnerID      string     `json:"owner_id"`
	Name         string     `json:"name"`
	Type         string     `json:"type"`
	ClientID     string     `json:"client_id"`
	RedirectURIs []string   `json:"redirect_uris"`
	Scopes       Scopes     `json:"scopes"`
	HomepageURL  string     `json:"homepage_url"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
	// Plan is what is set on the application (SPEC §10.5), where it was
	// read: its limits count per account whose users use it.
	Plan
	// SecretHash and PrevSecretHash are digests of the current and, after
	// a roll with overlap, the previous secret (until PrevExpiresAt).
	SecretHash     string     `json:"-"`
	PrevSecretHash string     `json:"-"`
	PrevExpiresAt  *time.Time `json:"-"`
	// Registered is true for a client that registered itself (RFC 7591,
	// SPEC §10.4): public, owned by no account (AccountID and OwnerID
	// empty), unverified.
	Registered bool `json:"-"`
}

// Confidential reports whether the application authenticates with a
// secret.
func (a *App) Confidential() bool { return a.Type == AppConfidential }

// Authorization is a user's consent to an application (SPEC §10.3): the
// scopes the user granted it. Every token of the grant works only while
// the authorization exists.
type Authorization struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"-"`
	UserID     string     `json:"user_id"`
	AppID      string     `json:"app_id"`
	ClientID   string     `json:"client_id"`
	Name       string     `json:"name"`
	Scopes     Scopes     `json:"scopes"`
	GrantedAt  time.Time  `json:"granted_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// AuthCode is an authorization code as stored: its digest, what it was
// issued for, and when it was used (SPEC §10.3: 60 s, once).
type AuthCode struct {
	ID            string
	Hash          string
	AccountID     string
	UserID        string
	ClientID      string
	RedirectURI   string
	Challenge     string
	Scopes        Scopes
	FamilyID      string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        *time.Time
	UserEpoch     int64
	PasswordEpoch int64
	// Resource is the resource the code's tokens are bound to (RFC
	// 8707), in ResourceKey's form; "" for none.
	Resource string
}

// The states of a device authorization (RFC 8628).
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
)

// DeviceCode is a device authorization (RFC 8628) as stored: the digests
// of its device code and user code, the application and scopes it asks
// for, its state, who decided it and with what, the polling interval it
// is held to, and when it was used (once, for tokens).
type DeviceCode struct {
	ID           string
	DeviceHash   string
	UserCodeHash string
	ClientID     string
	// Requested are the scopes the device asked for; nil means the
	// application's.
	Requested Scopes
	// Resource is the resource (RFC 8707) the device asked its tokens to
	// be bound to, in ResourceKey's form; "" for none.
	Resource string
	Status   string
	// AccountID, UserID, Scopes, FamilyID and the epochs are set when a
	// user approves.
	AccountID     string
	UserID        string
	Scopes        Scopes
	FamilyID      string
	UserEpoch     int64
	PasswordEpoch int64
	// Interval is how long the device must wait between polls; it grows
	// by 5 s at each poll that came too soon (RFC 8628 §3.5).
	Interval     time.Duration
	LastPolledAt *time.Time
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UsedAt       *time.Time
}
