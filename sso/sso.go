package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/seal"
)

// MaxIssuerLen bounds an issuer URL; MaxClientIDLen and MaxSecretLen the
// client's id and secret; MaxDomains the allowed e-mail domains.
const (
	MaxIssuerLen   = 512
	MaxClientIDLen = 256
	MaxSecretLen   = 1024
	MaxDomains     = 50
)

// DiscoveryTTL is how long a discovered provider (and its keys, which
// go-oidc fetches again for an unknown key id) is kept before discovery
// runs again.
const DiscoveryTTL = 10 * time.Minute

// Config is one account's provider as the relying party uses it.
type Config struct {
	Issuer, ClientID, ClientSecret string
	// RedirectURL is the console's callback, registered at the provider.
	RedirectURL string
	Domains     []string
}

// Identity is who a provider signed in: a verified e-mail address of an
// allowed domain, and the provider's subject.
type Identity struct {
	Subject, Email string
}

// Refusal is a sign-in the provider's answer does not allow: Reason is a
// short code for the audit log (nonce, token, email_missing,
// email_invalid, email_unverified, domain, provider, exchange), Message a sentence for
// the person. It is an outcome, not a failure of the server.
type Refusal struct {
	Reason, Message string
	Err             error
}

func (r *Refusal) Error() string { return "sso: refused (" + r.Reason + "): " + r.Message }
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(reason, msg string, err error) error {
	return &Refusal{Reason: reason, Message: msg, Err: err}
}

// Client discovers providers and runs the flow against them. Construct it
// with New; it is safe for concurrent use.
type Client struct {
	http *http.Client
	now  func() time.Time

	mu        sync.Mutex
	providers map[string]cached
}

type cached struct {
	p       *oidc.Provider
	fetched time.Time
}

// New returns a client whose requests to providers go through hc (nil
// means http.DefaultClient), with time from now (nil means time.Now).
func New(hc *http.Client, now func() time.Time) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	if now == nil {
		now = time.Now
	}
	return &Client{http: hc, now: now, providers: map[string]cached{}}
}

// CheckIssuer checks an issuer URL's form: absolute, https (or http when
// insecure is allowed), a host, no user information, query or fragment,
// at most MaxIssuerLen bytes. It returns the URL without a trailing
// slash.
func CheckIssuer(raw string, allowInsecure bool) (string, error) {
	bad := func(hint string) error {
		return gatehouse.InvalidField("sso.issuer", hint, "sso.issuer: %s", strings.ToLower(hint[:1])+hint[1:])
	}
	if len(raw) > MaxIssuerLen {
		return "", bad(fmt.Sprintf("Use at most %d characters.", MaxIssuerLen))
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", bad("Give the provider's issuer URL, such as https://login.example.com.")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowInsecure:
	case u.Scheme == "http":
		return "", bad("Use https: plain http is allowed only with --webhook-allow-insecure.")
	default:
		return "", bad("Use an https URL.")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
		return "", bad("Put no user name, query or fragment in the issuer URL.")
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// CheckDomains returns the domains in lower case, each a host name, at
// least one and at most MaxDomains, without repeats.
func CheckDomains(in []string) ([]string, error) {
	bad := func(hint string) error {
		return gatehouse.InvalidField("sso.domains", hint, "sso.domains: %s", strings.ToLower(hint[:1])+hint[1:])
	}
	if len(in) == 0 {
		return nil, bad("Name at least one e-mail domain, such as example.com.")
	}
	if len(in) > MaxDomains {
		return nil, bad(fmt.Sprintf("Name at most %d domains.", MaxDomains))
	}
	var out []string
	for _, d := range in {
		d = strings.ToLower(strings.TrimSpace(d))
		if !hostName(d) {
			return nil, bad("Give domains as host names, such as example.com, without @.")
		}
		dup := false
		for _, o := range out {
			dup = dup || o == d
		}
		if !dup {
			out = append(out, d)
		}
	}
	return out, nil
}

// hostName reports whether d is a DNS name of letters, digits, hyphens and
// dots, with at least one dot.
func hostName(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Domain returns the domain of an e-mail address in lower case, or "".
func Domain(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 1 || i == len(email)-1 {
		return ""
	}
	return strings.ToLower(email[i+1:])
}

// Allowed reports whether email's domain is one of domains.
func Allowed(email string, domains []string) bool {
	d := Domain(email)
	if d == "" {
		return false
	}
	for _, x := range domains {
		if x == d {
			return true
		}
	}
	return false
}

// Discover returns the provider of issuer, from the cache when it was
// discovered less than DiscoveryTTL ago. The discovery document's issuer
// must be issuer exactly (go-oidc checks it). A provider that cannot be
// discovered is invalid_request about sso.issuer; the cause is in the
// wrapped error, for logs.
func (c *Client) Discover(ctx context.Context, issuer string) (*oidc.Provider, error) {
	c.mu.Lock()
	e, ok := c.providers[issuer]
	c.mu.Unlock()
	if ok && c.now().Sub(e.fetched) < DiscoveryTTL {
		return e.p, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.http), issuer)
	if err != nil {
		return nil, errors.Join(gatehouse.InvalidField("sso.issuer",
			"The provider's discovery document could not be read at this issuer, or names another issuer.",
			"sso.issuer: no OpenID provider could be discovered at this issuer"), err)
	}
	c.mu.Lock()
	c.providers[issuer] = cached{p: p, fetched: c.now()}
	c.mu.Unlock()
	return p, nil
}

// Forget drops the cached provider of issuer (after its configuration
// changed).
func (c *Client) Forget(issuer string) {
	c.mu.Lock()
	delete(c.providers, issuer)
	c.mu.Unlock()
}

// NewBinding returns a new random value for the browser's cookie of one
// sign-in; the PKCE verifier and the nonce derive from it (Verifier,
// Nonce).
func NewBinding() string { return rand.Text() + rand.Text() }

// derive returns a value of binding for one purpose: base64url of
// SHA-256, 43 characters (a valid PKCE verifier).
func derive(binding, purpose string) string {
	sum := sha256.Sum256([]byte("gatehouse sso v1\x00" + purpose + "\x00" + binding))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Verifier returns the PKCE code verifier of a sign-in's binding.
func Verifier(binding string) string { return derive(binding, "pkce") }

// Nonce returns the OpenID nonce of a sign-in's binding.
func Nonce(binding string) string { return derive(binding, "nonce") }

func (cfg Config) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: cfg.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "email"}}
}

// AuthURL returns where to send the browser: the provider's authorization
// endpoint with the code flow, state, the nonce and the PKCE challenge of
// binding.
func (c *Client) AuthURL(ctx context.Context, cfg Config, state, binding string) (string, error) {
	p, err := c.Discover(ctx, cfg.Issuer)
	if err != nil {
		return "", err
	}
	return cfg.oauth2(p).AuthCodeURL(state, oidc.Nonce(Nonce(binding)), oauth2.S256ChallengeOption(Verifier(binding))), nil
}

// claims are the ID token's claims the sign-in reads.
type claims struct {
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"`
}

// verified reads email_verified: true, or the string "true" some
// providers send.
func (c claims) verified() bool {
	switch v := c.EmailVerified.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// Exchange redeems code with the PKCE verifier of binding, verifies the
// ID token (signature by the provider's keys, issuer, audience = the
// client id, expiry) and its nonce, and returns the identity if its
// e-mail address is present, verified and of an allowed domain. A refused
// answer is a *Refusal; a provider that cannot be reached is
// temporarily_unavailable.
func (c *Client) Exchange(ctx context.Context, cfg Config, code, binding string) (*Identity, error) {
	p, err := c.Discover(ctx, cfg.Issuer)
	if err != nil {
		return nil, errors.Join(gatehouse.Errorf(gatehouse.EUnavailable, "The identity provider cannot be reached; try again shortly"), err)
	}
	tok, err := cfg.oauth2(p).Exchange(oidc.ClientContext(ctx, c.http), code, oauth2.VerifierOption(Verifier(binding)))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, refuse("exchange", "The identity provider did not accept the sign-in's code.", err)
		}
		return nil, errors.Join(gatehouse.Errorf(gatehouse.EUnavailable, "The identity provider cannot be reached; try again shortly"), err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refuse("token", "The identity provider sent no ID token.", nil)
	}
	idt, err := p.VerifierContext(oidc.ClientContext(ctx, c.http), &oidc.Config{ClientID: cfg.ClientID, Now: c.now}).Verify(ctx, raw)
	if err != nil {
		return nil, refuse("token", "The identity provider's ID token is not valid for this console (issuer, audience, signature or expiry).", err)
	}
	if idt.Nonce != Nonce(binding) {
		return nil, refuse("nonce", "The ID token was not issued for this sign-in (its nonce does not match).", nil)
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		return nil, refuse("token", "The ID token's claims cannot be read.", err)
	}
	if cl.Email == "" {
		return nil, refuse("email_missing", "The identity provider sent no e-mail address.", nil)
	}
	if !utf8.ValidString(cl.Email) || strings.IndexFunc(cl.Email, unicode.IsControl) >= 0 {
		// No user has such an address (a NUL, another control
		// character, broken UTF-8): refused before any look-up, which a
		// NUL would fail on PostgreSQL.
		return nil, refuse("email_invalid", "The identity provider sent an address no user of this console can have.", nil)
	}
	if !cl.verified() {
		return nil, refuse("email_unverified", "The identity provider has not verified this e-mail address.", nil)
	}
	if !Allowed(cl.Email, cfg.Domains) {
		return nil, refuse("domain", "This e-mail address's domain is not allowed to sign in to this account.", nil)
	}
	return &Identity{Subject: idt.Subject, Email: cl.Email}, nil
}

// NewSealer returns the sealer of client secrets under the server key.
func NewSealer(serverKey []byte) *seal.Sealer { return seal.New(serverKey, "sso client secrets") }
