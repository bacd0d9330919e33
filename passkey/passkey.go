// Package passkey holds the WebAuthn relying party of the console (SPEC
// §10.6): the ceremonies that register a passkey and sign in with one, as
// a second factor after the password or alone (password-less), built on
// github.com/go-webauthn/webauthn. It keeps no state: the challenges
// waiting for their answer, the credentials and their sign counts live in
// the store, decided by the rules in service/.
package passkey

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// ChallengeLifetime is how long a challenge waits for its answer; it is
// used once at most.
const ChallengeLifetime = 2 * time.Minute

// MaxResponse is the largest answer of an authenticator accepted, in
// bytes: an attestation without certificates is well under it.
const MaxResponse = 16 << 10

// ErrRefused is the error of an answer that does not prove what it must:
// malformed, for another challenge, origin or relying party, signed by an
// unknown key, or without the user verification asked for. The detail is
// for logs, never for clients.
var ErrRefused = errors.New("passkey answer refused")

// RP is the relying party of one console origin. It is immutable and
// safe for concurrent use.
type RP struct {
	w *webauthn.WebAuthn
	// ID is the relying party ID (the console's host name), Origin the
	// origin of its pages.
	ID, Origin string
}

// New returns the relying party of the console at consoleURL (its pages'
// URL: scheme, host, optional port and path). Passkeys are bound to a host
// name, so an address without one (an IP address) or a scheme other than
// https (http only for localhost) cannot be one: the error says so, and
// which setting gives the console its URL.
func New(consoleURL, name string) (*RP, error) {
	u, err := url.Parse(consoleURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("passkeys: the console's URL %q is not a URL; set --public-url (or --console-host)", consoleURL)
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case net.ParseIP(host) != nil:
		return nil, fmt.Errorf("passkeys: the console's URL %s has an IP address, and a passkey needs a host name; set --public-url (or --console-host) to the name users reach the console at", consoleURL)
	case u.Scheme == "https":
	case u.Scheme == "http" && (host == "localhost" || strings.HasSuffix(host, ".localhost")):
	default:
		return nil, fmt.Errorf("passkeys: the console's URL %s is not https; browsers offer passkeys only to https origins (and http://localhost); set --public-url (or --console-host with TLS)", consoleURL)
	}
	origin := u.Scheme + "://" + strings.ToLower(u.Host)
	if name == "" {
		name = "Gatehouse"
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID: host, RPDisplayName: name, RPOrigins: []string{origin},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ChallengeLifetime, TimeoutUVD: ChallengeLifetime},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ChallengeLifetime, TimeoutUVD: ChallengeLifetime},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return &RP{w: w, ID: host, Origin: origin}, nil
}

// User is a user as a ceremony sees them: the handle (the user's id), the
// name shown by the authenticator, and their passkeys.
type User struct {
	Handle      []byte
	Name        string
	Credentials []webauthn.Credential
}

func (u *User) WebAuthnID() []byte                         { return u.Handle }
func (u *User) WebAuthnName() string                       { return u.Name }
func (u *User) WebAuthnDisplayName() string                { return u.Name }
func (u *User) WebAuthnCredentials() []webauthn.Credential { return u.Credentials }

var _ webauthn.User = (*User)(nil)

// Challenge is a ceremony begun: Options go to the browser
// (navigator.credentials), Session is kept by the server until the answer
// comes, and used once.
type Challenge struct {
	Options json.RawMessage
	Session []byte
}

func challenge(opts any, sd *webauthn.SessionData) (*Challenge, error) {
	o, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	s, err := json.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return &Challenge{Options: o, Session: s}, nil
}

// BeginRegistration begins registering a passkey of u: a discoverable
// credential (so that it can sign in without the password), user
// verification preferred, none of u's passkeys again.
func (rp *RP) BeginRegistration(u *User) (*Challenge, error) {
	exclude := make([]protocol.CredentialDescriptor, len(u.Credentials))
	for i, c := range u.Credentials {
		exclude[i] = c.Descriptor()
	}
	opts, sd, err := rp.w.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred,
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, err
	}
	return challenge(opts, sd)
}

// FinishRegistration checks the browser's answer to the registration
// session began, and returns the new credential; ErrRefused (joined with
// the detail) when it does not prove one.
func (rp *RP) FinishRegistration(u *User, session, answer []byte) (*webauthn.Credential, error) {
	sd, err := readSession(session)
	if err != nil {
		return nil, err
	}
	if len(answer) > MaxResponse {
		return nil, ErrRefused
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return nil, refused(err)
	}
	c, err := rp.w.CreateCredential(u, *sd, parsed)
	if err != nil {
		return nil, refused(err)
	}
	return c, nil
}

// BeginLogin begins a sign-in with a passkey of u, after u's password
// (user verification preferred); with u nil, a password-less sign-in with
// any discoverable passkey, user verification required: the passkey is
// then both factors.
func (rp *RP) BeginLogin(u *User) (*Challenge, error) {
	var (
		opts *protocol.CredentialAssertion
		sd   *webauthn.SessionData
		err  error
	)
	if u == nil {
		opts, sd, err = rp.w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	} else {
		opts, sd, err = rp.w.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	}
	if err != nil {
		return nil, err
	}
	return challenge(opts, sd)
}

// Assertion is a parsed answer to a sign-in challenge.
type Assertion struct {
	parsed *protocol.ParsedCredentialAssertionData
	// CredentialID is the raw id of the passkey that answered, UserHandle
	// the user handle it carries (empty when the authenticator gave none).
	CredentialID, UserHandle []byte
}

// ParseAssertion parses a browser's answer to a sign-in challenge
// (ErrRefused when it is not one), so that the passkey's user can be
// found before it is checked.
func ParseAssertion(answer []byte) (*Assertion, error) {
	if len(answer) > MaxResponse {
		return nil, ErrRefused
	}
	p, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return nil, refused(err)
	}
	return &Assertion{parsed: p, CredentialID: p.RawID, UserHandle: p.Response.UserHandle}, nil
}

// FinishLogin checks an assertion against the sign-in session began for
// u (nil user at the beginning: password-less, for the user the passkey
// belongs to, u here). It returns the credential with its new sign count;
// Authenticator.CloneWarning is set when the count did not grow, a sign
// that the key was copied. ErrRefused when the assertion does not prove
// u's passkey.
func (rp *RP) FinishLogin(u *User, session []byte, a *Assertion) (*webauthn.Credential, error) {
	sd, err := readSession(session)
	if err != nil {
		return nil, err
	}
	var c *webauthn.Credential
	if len(sd.UserID) == 0 {
		c, err = rp.w.ValidateDiscoverableLogin(func(_, handle []byte) (webauthn.User, error) {
			if string(handle) != string(u.Handle) {
				return nil, errors.New("user handle of another user")
			}
			return u, nil
		}, *sd, a.parsed)
	} else {
		c, err = rp.w.ValidateLogin(u, *sd, a.parsed)
	}
	if err != nil {
		return nil, refused(err)
	}
	return c, nil
}

func readSession(b []byte) (*webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if err := json.Unmarshal(b, &sd); err != nil {
		return nil, fmt.Errorf("passkey challenge: %w", err)
	}
	return &sd, nil
}

// refused joins ErrRefused with the library's detail.
func refused(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Errorf("%w: %s: %s", ErrRefused, pe.Details, pe.DevInfo)
	}
	return fmt.Errorf("%w: %v", ErrRefused, err)
}

// EncodeCredential and DecodeCredential write a credential as the store
// keeps it (JSON, public key and flags: nothing secret).
func EncodeCredential(c *webauthn.Credential) (string, error) {
	b, err := json.Marshal(c)
	return string(b), err
}

// DecodeCredential reads a credential written by EncodeCredential.
func DecodeCredential(s string) (webauthn.Credential, error) {
	var c webauthn.Credential
	err := json.Unmarshal([]byte(s), &c)
	return c, err
}
