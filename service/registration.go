package service

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// Dynamic client registration (RFC 7591, SPEC §10.4): a client — an AI
// agent, a command-line tool — registers itself, with no account and no
// credential. What it gets is narrow on purpose: a public client (PKCE,
// no secret) of the authorization code grant, with the redirect URIs
// registered applications may have but private schemes, owned by no account (so an account
// under the "approved" policy must approve it, which an admin's consent
// does), marked unverified on the consent page, and removed after
// store.RegisteredUnused without use.

// Registration is a client's registration request (RFC 7591 §2): the
// metadata Gatehouse reads; any other member is ignored (§2).
type Registration struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	Scope                   string   `json:"scope"`
}

// RegisteredClient is the answer to a registration (RFC 7591 §3.2.1).
type RegisteredClient struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope,omitempty"`
}

// The grant and response types a registered client may use.
var (
	registeredGrants    = []string{"authorization_code", "refresh_token"}
	registeredResponses = []string{"code"}
)

func badMetadata(format string, args ...any) error {
	return gatehouse.Errorf(gatehouse.EInvalidClientMetadata, format, args...)
}

// ParseRegistration reads a registration request's members from raw (a
// JSON object); members of the wrong type are invalid_client_metadata.
func ParseRegistration(raw map[string]json.RawMessage) (Registration, error) {
	var in Registration
	for name, dst := range map[string]any{"redirect_uris": &in.RedirectURIs, "token_endpoint_auth_method": &in.TokenEndpointAuthMethod,
		"grant_types": &in.GrantTypes, "response_types": &in.ResponseTypes, "client_name": &in.ClientName, "client_uri": &in.ClientURI,
		"scope": &in.Scope} {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return in, badMetadata("%s has the wrong type", name)
		}
	}
	return in, nil
}

// RegisterClient registers a public client from the client address addr
// (for the record). Errors: invalid_redirect_uri for missing or refused
// redirect URIs (authorize.CheckRedirectURI, as for applications),
// invalid_client_metadata for an authentication method other than none,
// a grant or response type other than the authorization code's, a name
// or home page out of bounds, or a malformed scope.
func (s *Service) RegisterClient(ctx context.Context, in Registration, addr string) (*RegisteredClient, error) {
	if in.Scope != "" {
		if _, err := requestedScopes(in.Scope); err != nil {
			return nil, badMetadata("scope is not a list of scope names")
		}
	}
	if len(in.RedirectURIs) == 0 {
		return nil, gatehouse.Errorf(gatehouse.EInvalidRedirectURI, "redirect_uris is required")
	}
	uris, err := checkRedirectURIs(in.RedirectURIs)
	if err != nil {
		return nil, gatehouse.Errorf(gatehouse.EInvalidRedirectURI, "%s", gatehouse.ErrorMessage(err))
	}
	for _, u := range uris {
		if authorize.PrivateScheme(u) {
			return nil, gatehouse.Errorf(gatehouse.EInvalidRedirectURI,
				"A client that registers itself redirects to https or to http://127.0.0.1 or http://[::1]: a private scheme (%s) is for applications a developer registers", u)
		}
	}
	if m := in.TokenEndpointAuthMethod; m != "" && m != "none" {
		return nil, badMetadata("Only public clients register here: token_endpoint_auth_method must be none")
	}
	for _, g := range in.GrantTypes {
		if !slices.Contains(registeredGrants, g) {
			return nil, badMetadata("grant_types may hold only authorization_code and refresh_token")
		}
	}
	for _, r := range in.ResponseTypes {
		if !slices.Contains(registeredResponses, r) {
			return nil, badMetadata("response_types may hold only code")
		}
	}
	name := in.ClientName
	if name == "" {
		name = "Unnamed client"
	}
	if name, err = checkName("client_name", name, 100, true); err != nil {
		return nil, badMetadata("%s", gatehouse.ErrorMessage(err))
	}
	if err := checkHomepage(in.ClientURI); err != nil {
		return nil, badMetadata("client_uri must be an http or https URL")
	}
	var scopes gatehouse.Scopes
	if in.Scope != "" {
		scopes, _ = requestedScopes(in.Scope)
	}
	app := &gatehouse.App{ID: gatehouse.NewID("rgc"), Name: name, Type: gatehouse.AppPublic, ClientID: s.mint(token.ClientID),
		RedirectURIs: uris, Scopes: scopes, HomepageURL: in.ClientURI, CreatedAt: s.now(), Registered: true}
	if err := s.update(ctx, func(tx *store.Tx) error {
		if err := tx.CreateRegisteredClient(app, addr); err != nil {
			return err
		}
		e, err := s.registrationAudit(ctx, tx, app, addr)
		if err != nil {
			return err
		}
		return s.record(tx, e)
	}); err != nil {
		return nil, err
	}
	s.logger.Info("client registered itself", "client_id", app.ClientID, "name", name, "remote", addr)
	out := &RegisteredClient{ClientID: app.ClientID, ClientIDIssuedAt: app.CreatedAt.Unix(), ClientName: name, ClientURI: in.ClientURI,
		RedirectURIs: uris, GrantTypes: registeredGrants, ResponseTypes: registeredResponses, TokenEndpointAuthMethod: "none",
		Scope: scopes.String()}
	return out, nil
}

// registrationAudit is the audit entry of a client that registered
// itself: client.register, in the bootstrap (the operator's) account's log
// — a registered client is no account's — by no user, with the client's
// name, how many redirect URIs it named and their hosts, and the client
// address it came from. There is no secret to leak: the client is public.
func (s *Service) registrationAudit(ctx context.Context, tx *store.Tx, app *gatehouse.App, addr string) (*gatehouse.AuditEntry, error) {
	var hosts []string
	for _, u := range app.RedirectURIs {
		h := u
		if p, err := url.Parse(u); err == nil {
			if h = p.Hostname(); h == "" {
				h = p.Scheme + ":" // a private scheme's URI
			}
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	e := s.audit(ctx, nil, "client.register", "client", app.ClientID, map[string]string{
		"client_name": app.Name, "redirect_uris": strconv.Itoa(len(app.RedirectURIs)),
		"redirect_hosts": strings.Join(hosts, ","), "client_addr": addr})
	e.Actor = "dynamic_registration"
	id, err := tx.BootstrapAccountID()
	switch gatehouse.ErrorCode(err) {
	case "":
		e.AccountID = id
	case gatehouse.ENotFound: // no bootstrap (a bare store): the entry is no account's
	default:
		return nil, err
	}
	if e.RemoteAddr == "" {
		e.RemoteAddr = addr
	}
	return e, nil
}

// RegisteredUnused is how long a client that registered itself is kept
// without use.
const RegisteredUnused = store.RegisteredUnused
