package service

import (
	"cmp"
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// Third-party applications (SPEC §10.3): registration, consent,
// authorization codes, the authorization_code grant and its refresh, and
// users' authorizations.

// Lifetimes and bounds of third-party applications.
const (
	// CodeLifetime is how long an authorization code works.
	CodeLifetime = 60 * time.Second
	// AppAccessTokenLifetime is how long an application's access token
	// works; its refresh token lives RefreshTokenLifetime.
	AppAccessTokenLifetime = time.Hour
	// MaxAppsPerUser bounds the applications one developer registers.
	MaxAppsPerUser = 100
	// maxHomepageLen bounds an application's home page URL.
	maxHomepageLen = 2000
)

// AppInput is the input for CreateApp.
type AppInput struct {
	Name         string             `json:"name"`
	Type         string             `json:"type"`
	RedirectURIs []string           `json:"redirect_uris"`
	Scopes       *[]gatehouse.Scope `json:"scopes"`
	HomepageURL  string             `json:"homepage_url"`
	// The application's plan (SPEC §10.5): rate_limit, quota,
	// allowed_ips, metadata, external_id.
	plan.Patch
}

// AppPatch is a partial update of an application; nil fields stay.
type AppPatch struct {
	Name         *string            `json:"name"`
	RedirectURIs *[]string          `json:"redirect_uris"`
	Scopes       *[]gatehouse.Scope `json:"scopes"`
	HomepageURL  *string            `json:"homepage_url"`
	// Changes to the application's plan (SPEC §10.5).
	plan.Patch
}

// NewApp is a registered application with its secret (confidential
// applications only), shown once.
type NewApp struct {
	*gatehouse.App
	ClientSecret string `json:"client_secret,omitempty"`
}

func checkRedirectURIs(uris []string) ([]string, error) {
	if len(uris) == 0 || len(uris) > authorize.MaxRedirectURIs {
		return nil, gatehouse.InvalidField("redirect_uris", "Give 1 to 10 redirect URIs.", "redirect_uris must hold 1 to %d URIs", authorize.MaxRedirectURIs)
	}
	out := make([]string, 0, len(uris))
	for _, u := range uris {
		if err := authorize.CheckRedirectURI("redirect_uris", u); err != nil {
			return nil, err
		}
		dup := false
		for _, o := range out {
			dup = dup || o == u
		}
		if !dup {
			out = append(out, u)
		}
	}
	return out, nil
}

func checkHomepage(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if len(v) > maxHomepageLen || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || safeText(v) != v {
		return gatehouse.InvalidField("homepage_url", "Give an http or https URL.", "homepage_url must be an http or https URL")
	}
	return nil
}

// CreateApp registers a third-party application owned by p's user.
// Developers only (forbidden otherwise, checked again in the transaction
// that stores it); type confidential (with a secret, shown once) or public;
// redirect URIs by authorize.CheckRedirectURI; scopes nil for any scope
// the authorising user holds.
func (s *Service) CreateApp(ctx context.Context, p *gatehouse.Principal, in AppInput) (*NewApp, error) {
	if err := checkScopesFirst(in.Scopes); err != nil {
		return nil, err
	}
	if err := requireOwnAuthority(p, "register an application"); err != nil {
		return nil, err
	}
	u, err := requireDeveloper(p)
	if err != nil {
		return nil, err
	}
	name, err := checkName("name", in.Name, 100, true)
	if err != nil {
		return nil, err
	}
	if in.Type != gatehouse.AppConfidential && in.Type != gatehouse.AppPublic {
		return nil, gatehouse.InvalidField("type", "Choose confidential or public.", "type must be confidential or public")
	}
	uris, err := checkRedirectURIs(in.RedirectURIs)
	if err != nil {
		return nil, err
	}
	if err := checkHomepage(in.HomepageURL); err != nil {
		return nil, err
	}
	if err := checkPlan(gatehouse.PlanApp, in.Patch); err != nil {
		return nil, err
	}
	var scopes gatehouse.Scopes
	if in.Scopes != nil {
		if scopes, err = gatehouse.CheckScopes("scopes", *in.Scopes); err != nil {
			return nil, err
		}
	}
	app := &gatehouse.App{ID: gatehouse.NewID("tpa"), AccountID: u.AccountID, OwnerID: u.ID, Name: name, Type: in.Type,
		ClientID: s.mint(token.ClientID), RedirectURIs: uris, Scopes: scopes, HomepageURL: in.HomepageURL, CreatedAt: s.now()}
	out := &NewApp{App: app}
	if app.Confidential() {
		out.ClientSecret = s.mint(token.ClientSecret)
		app.SecretHash = s.digester.Digest(out.ClientSecret)
	}
	err = s.update(ctx, func(tx *store.Tx) error {
		cur, err := lockUser(tx, u)
		if err != nil {
			return err
		}
		if !cur.Roles.Has(gatehouse.RoleDeveloper) {
			return gatehouse.Forbidden("This needs the developer role")
		}
		if n, err := tx.CountApps(u.ID); err != nil {
			return err
		} else if n >= MaxAppsPerUser {
			return gatehouse.Errorf(gatehouse.ELimitReached, "A developer registers at most %d applications", MaxAppsPerUser)
		}
		if err := tx.CreateApp(app); err != nil {
			return err
		}
		details := map[string]string{"name": name, "type": app.Type,
			"client_id": app.ClientID, "redirect_uris": strings.Join(uris, " "), "scopes": scopesText(scopes)}
		if app.Plan, err = s.setPlan(tx, app.AccountID, gatehouse.PlanApp, app.ClientID, in.Patch, details); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "app.create", "app", app.ID, details))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// mayManageApp returns forbidden unless p may change app: its owner (a
// developer), or an admin of its account.
func mayManageApp(p *gatehouse.Principal, app *gatehouse.App) error {
	if app.AccountID != p.AccountID {
		return gatehouse.NotFound("application")
	}
	if p.IsAdmin() {
		return nil
	}
	if p.User != nil && p.User.ID == app.OwnerID && p.User.Roles.Has(gatehouse.RoleDeveloper) {
		return nil
	}
	return gatehouse.NotFound("application")
}

// Apps lists the applications p may manage: an admin's account's, or a
// developer's own.
func (s *Service) Apps(ctx context.Context, p *gatehouse.Principal, page gatehouse.Page) ([]*gatehouse.App, string, error) {
	owner := ""
	if !p.IsAdmin() {
		u, err := requireDeveloper(p)
		if err != nil {
			return nil, "", err
		}
		owner = u.ID
	}
	apps, next, err := s.store.Apps(ctx, p.AccountID, owner, page)
	if err != nil {
		return nil, "", err
	}
	err = fillPlans(ctx, s, p.AccountID, apps, func(a *gatehouse.App) (string, string) { return a.ClientID, a.ClientID },
		func(a *gatehouse.App) *gatehouse.Plan { return &a.Plan })
	return apps, next, err
}

// App returns an application p may manage, by id, or not_found.
func (s *Service) App(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.App, error) {
	app, err := s.store.AppByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := mayManageApp(p, app); err != nil {
		return nil, err
	}
	err = fillPlans(ctx, s, app.AccountID, []*gatehouse.App{app}, func(a *gatehouse.App) (string, string) { return a.ClientID, a.ClientID },
		func(a *gatehouse.App) *gatehouse.Plan { return &a.Plan })
	return app, err
}

// UpdateApp changes an application's name, redirect URIs, scopes or home
// page. Narrower scopes narrow its tokens at once; a redirect URI taken
// away refuses codes issued for it from then on.
func (s *Service) UpdateApp(ctx context.Context, p *gatehouse.Principal, id string, patch AppPatch) (*gatehouse.App, error) {
	if err := requireOwnAuthority(p, "change an application"); err != nil {
		return nil, err
	}
	if err := checkScopesFirst(patch.Scopes); err != nil {
		return nil, err
	}
	if err := checkPlan(gatehouse.PlanApp, patch.Patch); err != nil {
		return nil, err
	}
	var out *gatehouse.App
	err := s.update(ctx, func(tx *store.Tx) error {
		app, err := appToManage(tx, p, id, patch.RedirectURIs != nil)
		if err != nil {
			return err
		}
		details := map[string]string{}
		if patch.Name != nil {
			if app.Name, err = checkName("name", *patch.Name, 100, true); err != nil {
				return err
			}
			details["name"] = app.Name
		}
		if patch.RedirectURIs != nil {
			if app.RedirectURIs, err = checkRedirectURIs(*patch.RedirectURIs); err != nil {
				return err
			}
			details["redirect_uris"] = strings.Join(app.RedirectURIs, " ")
		}
		if patch.Scopes != nil {
			if app.Scopes, err = gatehouse.CheckScopes("scopes", *patch.Scopes); err != nil {
				return err
			}
			details["scopes"] = scopesText(app.Scopes)
		}
		if patch.HomepageURL != nil {
			if err := checkHomepage(*patch.HomepageURL); err != nil {
				return err
			}
			app.HomepageURL = *patch.HomepageURL
			details["homepage_url"] = app.HomepageURL
		}
		if err := tx.UpdateApp(app); err != nil {
			return err
		}
		if app.Plan, err = s.setPlan(tx, app.AccountID, gatehouse.PlanApp, app.ClientID, patch.Patch, details); err != nil {
			return err
		}
		out = app
		return s.record(tx, s.audit(ctx, p, "app.update", "app", app.ID, details))
	})
	return out, err
}

// appToManage returns, inside tx, the application with id id (not its
// client id), locked, if p may manage it as p's roles stand now
// (rolesNow, read before the application); not_found or forbidden
// otherwise. An application outlives its owner, so an owner disabled,
// deleted or no longer a developer, or an admin demoted, while their
// change was in flight, changes, rolls or deletes nothing.
//
// Only the owner changes where an application's codes go or rolls its
// secret (ownerOnly): those decide who gets the tokens of every user who
// authorised it, the operator too — so an admin may see, name, narrow,
// plan and delete any application of the account but not take one over. And nobody acts on
// more than they hold (mayActOn): p's effective scopes must cover what
// the application's tokens may do as its owner, so an API token or
// client credential narrower than that acts on no application.
func appToManage(tx *store.Tx, p *gatehouse.Principal, id string, ownerOnly bool) (*gatehouse.App, error) {
	asNow, err := rolesNow(tx, p)
	if err != nil {
		return nil, err
	}
	app, err := tx.App(id)
	if err != nil {
		return nil, err
	}
	if app.ID != id {
		return nil, gatehouse.NotFound("application")
	}
	if err := mayManageApp(asNow, app); err != nil {
		return nil, err
	}
	if ownerOnly && (asNow.User == nil || asNow.User.ID != app.OwnerID) {
		return nil, gatehouse.Forbidden("Only the application's owner changes its redirect URIs or rolls its secret")
	}
	var owner *gatehouse.User
	if app.OwnerID != "" {
		if owner, err = tx.UserUnlocked(app.AccountID, app.OwnerID); err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return nil, err
		}
	}
	if owner == nil || !owner.Active() {
		owner = asNow.User
	}
	return app, mayActOn(p, userReach(asNow.Account, owner, app.Scopes), nil)
}

// RollApp gives a confidential application a new secret; the old one
// works overlapSeconds more (0: not at all). A public application has no
// secret (invalid_request).
func (s *Service) RollApp(ctx context.Context, p *gatehouse.Principal, id string, overlapSeconds int) (*RolledSecret, error) {
	if err := requireOwnAuthority(p, "roll an application's secret"); err != nil {
		return nil, err
	}
	overlap, err := checkOverlap(overlapSeconds)
	if err != nil {
		return nil, err
	}
	secret := s.mint(token.ClientSecret)
	var out *RolledSecret
	err = s.update(ctx, func(tx *store.Tx) error {
		app, err := appToManage(tx, p, id, true)
		if err != nil {
			return err
		}
		if !app.Confidential() {
			return gatehouse.Invalid("A public application has no secret to roll")
		}
		app.SecretHash, app.PrevSecretHash, app.PrevExpiresAt = s.rollSecret(app.SecretHash, secret, overlap)
		if err := tx.UpdateApp(app); err != nil {
			return err
		}
		out = &RolledSecret{ID: app.ID, ClientID: app.ClientID, ClientSecret: secret}
		return s.record(tx, s.audit(ctx, p, "app.roll", "app", app.ID, map[string]string{"overlap_seconds": strconv.Itoa(int(overlap / time.Second))}))
	})
	return out, err
}

// DeleteApp deletes an application: every authorization, code and token
// of it stops working at once, on every node.
func (s *Service) DeleteApp(ctx context.Context, p *gatehouse.Principal, id string) error {
	return s.update(ctx, func(tx *store.Tx) error {
		app, err := appToManage(tx, p, id, false)
		if err != nil {
			return err
		}
		if _, err := tx.DeleteApp(app.ID, s.now()); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "app.delete", "app", app.ID, map[string]string{"name": app.Name, "client_id": app.ClientID}))
	})
}

// ApproveApp approves an application, named by its id or client id, for
// p's account under the approved policy (admins only). Any account's
// application may be approved: its id is what the admin was given. The
// admin is read again after the account (requireAdminShared): one
// disabled, deleted or demoted while the approval was in flight lets no
// application in (forbidden).
func (s *Service) ApproveApp(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.App, error) {
	if err := requireOwnAuthority(p, "approve an application"); err != nil {
		return nil, err
	}
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	var out *gatehouse.App
	err := s.update(ctx, func(tx *store.Tx) error {
		if err := requireAdminShared(tx, p); err != nil {
			return err
		}
		app, err := tx.App(id)
		if err != nil {
			return err
		}
		if err := tx.Approve(p.AccountID, app.ID, actorID(p), s.now()); err != nil {
			return err
		}
		out = app
		return s.record(tx, s.audit(ctx, p, "app.approve", "app", app.ID, map[string]string{"client_id": app.ClientID, "publisher_account_id": app.AccountID}))
	})
	return out, err
}

func actorID(p *gatehouse.Principal) string {
	id, _ := actor(p)
	return id
}

// AuthRequest is an authorization request (RFC 6749 §4.1.1 with PKCE).
type AuthRequest struct {
	ResponseType, ClientID, RedirectURI, Scope, State string
	CodeChallenge, CodeChallengeMethod                string
	// Resource is the resource indicator (RFC 8707), "" for none.
	Resource string
}

// AuthRedirectError is an error of an authorization request that is
// answered by a redirect to the application (RFC 6749 §4.1.2.1): the
// client and its redirect URI are known.
type AuthRedirectError struct {
	Code, Description string
}

func (e *AuthRedirectError) Error() string { return e.Code + ": " + e.Description }

// AuthClient returns the application of an authorization request, or an
// invalid_request error that must be shown to the person, never sent to
// the redirect URI: an unknown client, or a redirect URI that is not one
// of the application's (authorize.MatchRedirectURI).
func (s *Service) AuthClient(ctx context.Context, req AuthRequest) (*gatehouse.App, error) {
	if !token.Valid(req.ClientID, token.ClientID) {
		return nil, gatehouse.Invalid("The application is not known (client_id)")
	}
	app, err := s.liveApp(ctx, req.ClientID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, gatehouse.Invalid("The application is not known (client_id)")
	} else if err != nil {
		return nil, err
	}
	if !authorize.MatchRedirectURI(app.RedirectURIs, req.RedirectURI) {
		return nil, gatehouse.Invalid("The redirect_uri is not one the application registered")
	}
	return app, nil
}

// Consent is what the consent page shows and what Allow grants.
type Consent struct {
	App *gatehouse.App
	// Publisher is the name of the application's account.
	Publisher string
	// Scopes are the scopes granted: those requested (or, when none were,
	// the application's) that the user holds now.
	Scopes gatehouse.Scopes
	// Withheld are requested scopes the user does not hold: not granted.
	Withheld gatehouse.Scopes
	// Remembered is true when the user consented to these scopes before.
	Remembered bool
	// NeedsApproval is true when the account's policy needs an admin's
	// approval of the application; an admin consenting gives it.
	NeedsApproval bool
	// Resource is the resource the tokens will be bound to (RFC 8707),
	// "" for none.
	Resource string
}

// CheckAuthRequest checks an authorization request of app by p's user
// (after AuthClient) and returns what to ask for consent. Errors are
// *AuthRedirectError (to send to the redirect URI) or technical.
func (s *Service) CheckAuthRequest(ctx context.Context, p *gatehouse.Principal, app *gatehouse.App, req AuthRequest) (*Consent, error) {
	if req.ResponseType != "code" {
		return nil, &AuthRedirectError{"unsupported_response_type", "response_type must be code"}
	}
	if err := authorize.CheckChallenge(req.CodeChallenge, req.CodeChallengeMethod); err != nil {
		return nil, &AuthRedirectError{"invalid_request", gatehouse.ErrorMessage(err)}
	}
	if req.Resource != "" {
		if _, ok := gatehouse.ResourceKey(req.Resource); !ok {
			return nil, &AuthRedirectError{"invalid_target", "resource must be an absolute http or https URI without a query or fragment"}
		}
	}
	if err := RequireUser(p); err != nil {
		return nil, &AuthRedirectError{"access_denied", "a user signs in to authorise an application"}
	}
	requested, err := requestedScopes(req.Scope)
	if err != nil {
		return nil, &AuthRedirectError{"invalid_scope", "the scope parameter is not a list of scope names"}
	}
	c, err := s.consent(ctx, p, app, requested)
	if err != nil {
		return nil, err
	}
	c.Resource, _ = gatehouse.ResourceKey(req.Resource)
	return c, nil
}

// consent checks that p's user may grant app the requested scopes (nil:
// the application's) and returns what to ask. Errors are
// *AuthRedirectError or technical.
func (s *Service) consent(ctx context.Context, p *gatehouse.Principal, app *gatehouse.App, requested gatehouse.Scopes) (*Consent, error) {
	if requested == nil {
		requested = app.Scopes
	}
	if requested != nil && app.Scopes != nil {
		for _, sc := range requested {
			if !app.Scopes.Allows(sc) {
				return nil, &AuthRedirectError{"invalid_scope", "the application did not register scope " + string(sc)}
			}
		}
	}
	holds := p.RoleScopes()
	c := &Consent{App: app, Scopes: holds.Intersect(requested), Publisher: app.AccountID}
	for _, sc := range requested {
		if !holds.Allows(sc) {
			c.Withheld = append(c.Withheld, sc)
		}
	}
	if len(c.Scopes) == 0 {
		return nil, &AuthRedirectError{"invalid_scope", "the user holds none of the requested scopes"}
	}
	if pub, err := s.store.Account(ctx, app.AccountID); err == nil {
		c.Publisher = pub.Name
	}
	switch p.Account.Settings.AppsPolicy() {
	case gatehouse.AppsNone:
		return nil, &AuthRedirectError{"access_denied", "this account does not allow third-party applications"}
	case gatehouse.AppsApproved:
		if app.AccountID != p.AccountID || !s.appOwned(ctx, app) {
			ok, err := s.store.Approved(ctx, p.AccountID, app.ID)
			if err != nil {
				return nil, err
			}
			if !ok && !p.IsAdmin() {
				return nil, &AuthRedirectError{"access_denied", "an admin of this account has not approved the application"}
			}
			c.NeedsApproval = !ok
		}
	}
	if g, err := s.store.Authorization(ctx, p.User.ID, app.ClientID); err == nil {
		c.Remembered = !c.NeedsApproval && g.Scopes.Covers(c.Scopes)
	} else if gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		return nil, err
	}
	return c, nil
}

// admits reports whether the third_party_apps policy of the account
// accountID admits app for its users now, as the application's tokens are
// judged at every use (appAllowed): none admits nothing; approved, an
// application an admin of the account approved, or the account's own
// while its owner is active. A grant that was consented under a policy
// since tightened (a code, a device approval) then issues nothing, rather
// than tokens refused at their first use.
//
// It reads without locking anything: the tokens are judged again at every
// use, so a policy changed a moment after this read still ends them.
func (s *Service) admits(ctx context.Context, accountID string, app *gatehouse.App) (bool, error) {
	a, err := s.store.Account(ctx, accountID)
	if err != nil || !a.Active() {
		// A suspended account's users get nothing from any application.
		return false, err
	}
	switch a.Settings.AppsPolicy() {
	case gatehouse.AppsNone:
		return false, nil
	case gatehouse.AppsApproved:
		if app.AccountID == accountID && s.appOwned(ctx, app) {
			return true, nil
		}
		return s.store.Approved(ctx, accountID, app.ID)
	}
	return true, nil
}

// appOwned reports whether app's owner is still an active user: an
// application whose owner is disabled or gone — who may still hold its
// secret — is owned by none, and needs an admin's approval under the
// approved policy.
func (s *Service) appOwned(ctx context.Context, app *gatehouse.App) bool {
	u, err := s.store.User(ctx, app.AccountID, app.OwnerID)
	return err == nil && u.Active()
}

// Authorize records p's user's consent (remembering it; an admin's
// consent approves the application for the account when the policy needs
// it) and returns an authorization code for req, good for CodeLifetime,
// once. Call it after CheckAuthRequest.
func (s *Service) Authorize(ctx context.Context, p *gatehouse.Principal, c *Consent, req AuthRequest) (string, error) {
	raw := s.mint(token.AuthCode)
	now := s.now()
	u := p.User
	code := &gatehouse.AuthCode{ID: gatehouse.NewID("acd"), Hash: s.digester.Digest(raw), AccountID: u.AccountID, UserID: u.ID,
		ClientID: c.App.ClientID, RedirectURI: req.RedirectURI, Challenge: req.CodeChallenge, Scopes: c.Scopes,
		FamilyID: gatehouse.NewID("fam"), UserEpoch: u.Epoch, PasswordEpoch: u.PasswordEpoch, CreatedAt: now, ExpiresAt: now.Add(CodeLifetime)}
	code.Resource, _ = gatehouse.ResourceKey(req.Resource)
	err := s.update(ctx, func(tx *store.Tx) error {
		if err := s.grantConsent(ctx, tx, p, c, now); err != nil {
			return err
		}
		return tx.CreateCode(code)
	})
	if err != nil {
		return "", err
	}
	return raw, nil
}

// grantConsent records, inside tx, p's user's consent c: the
// application's approval when an admin gives it, and the authorization
// (widened to c's scopes) unless it was remembered.
func (s *Service) grantConsent(ctx context.Context, tx *store.Tx, p *gatehouse.Principal, c *Consent, now time.Time) error {
	u := p.User
	if _, err := lockUser(tx, u); err != nil {
		return err
	}
	if c.NeedsApproval {
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		if err := tx.Approve(p.AccountID, c.App.ID, u.ID, now); err != nil {
			return err
		}
		if err := s.record(tx, s.audit(ctx, p, "app.approve", "app", c.App.ID, map[string]string{"client_id": c.App.ClientID,
			"publisher_account_id": c.App.AccountID, "by": "consent"})); err != nil {
			return err
		}
	}
	if !c.Remembered {
		scopes := c.Scopes
		if g, err := tx.Authorization(u.ID, c.App.ClientID); err == nil {
			scopes = gatehouse.NormalizeScopes(append(append([]gatehouse.Scope{}, g.Scopes...), c.Scopes...))
		} else if gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return err
		}
		if err := tx.Authorize(&gatehouse.Authorization{ID: gatehouse.NewID("agr"), AccountID: u.AccountID, UserID: u.ID,
			AppID: c.App.ID, ClientID: c.App.ClientID, Scopes: scopes, GrantedAt: now}); err != nil {
			return err
		}
		if err := s.record(tx, s.audit(ctx, p, "app.authorize", "app", c.App.ID, map[string]string{"client_id": c.App.ClientID,
			"scopes": scopesText(scopes)})); err != nil {
			return err
		}
	}
	return nil
}

// liveApp returns the third-party application (or registered client)
// with clientID, or not_found — also when the account that publishes it
// is suspended: a suspended account's applications stop everywhere.
func (s *Service) liveApp(ctx context.Context, clientID string) (*gatehouse.App, error) {
	app, err := s.store.AppByClientID(ctx, clientID)
	if err != nil || app.AccountID == "" {
		return app, err
	}
	pub, err := s.store.Account(ctx, app.AccountID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound || (err == nil && !pub.Active()) {
		return nil, gatehouse.NotFound("application")
	}
	return app, err
}

// appClient authenticates a third-party application at the token
// endpoint: a confidential one by its secret (or its previous one during
// a roll's overlap), a public one by its id alone and never with a
// secret. Anything else is invalid_client.
func (s *Service) appClient(ctx context.Context, clientID, secret string) (*gatehouse.App, error) {
	app, err := s.liveApp(ctx, clientID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, invalidClient()
	} else if err != nil {
		return nil, err
	}
	if !app.Confidential() {
		if secret != "" {
			return nil, invalidClient()
		}
		return app, nil
	}
	current := secret != "" && s.digester.Equal(secret, app.SecretHash)
	previous := secret != "" && app.PrevSecretHash != "" && app.PrevExpiresAt != nil && s.clock().Before(*app.PrevExpiresAt) &&
		s.digester.Equal(secret, app.PrevSecretHash)
	if !current && !previous {
		return nil, invalidClient()
	}
	return app, nil
}

// AuthenticateApp authenticates a third-party application as at the token
// endpoint (appClient) and returns its client id; invalid_client
// otherwise.
func (s *Service) AuthenticateApp(ctx context.Context, clientID, secret string) (string, error) {
	app, err := s.appClient(ctx, clientID, secret)
	if err != nil {
		return "", err
	}
	return app.ClientID, nil
}

// IsAppClient reports whether clientID names a third-party application.
func (s *Service) IsAppClient(ctx context.Context, clientID string) bool {
	if clientID == "" {
		return false
	}
	_, err := s.store.AppByClientID(ctx, clientID)
	return err == nil
}

func invalidCode() error {
	return gatehouse.Errorf(gatehouse.EInvalidGrant, "The authorization code is invalid, expired or already used")
}

// CodeGrant exchanges an authorization code (SPEC §10.3, RFC 6749 §4.1.3,
// RFC 7636 §4.6) for an access token and a refresh token acting as the
// user, with the scopes granted. The client authenticates (appClient);
// the code must be its, unexpired, unused, for the same redirect URI,
// and the verifier's S256 must be the code's challenge. A code is used
// once: of any number of concurrent exchanges exactly one wins, and any
// other — then or later — revokes every token issued from the code.
//
// resource (RFC 8707), when given, must be the code's resource when the
// code has one (invalid_target otherwise); the tokens are bound to the
// code's resource, or else to resource (BindResource).
func (s *Service) CodeGrant(ctx context.Context, clientID, secret, raw, redirectURI, verifier, resource string) (*Issued, error) {
	asked, err := resourceParam(resource)
	if err != nil {
		return nil, err
	}
	app, err := s.appClient(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	if !token.Valid(raw, token.AuthCode) {
		return nil, invalidCode()
	}
	code, err := s.store.CodeByHash(ctx, s.digester.Digest(raw))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, invalidCode()
	} else if err != nil {
		return nil, err
	}
	if code.ClientID != app.ClientID {
		return nil, invalidCode()
	}
	if code.UsedAt != nil {
		return nil, s.codeReused(ctx, code)
	}
	now := s.now()
	// The code's redirect URI must still be the application's: one taken
	// away since (a domain the developer lost) redeems nothing.
	if !now.Before(code.ExpiresAt) || code.RedirectURI != redirectURI || !authorize.MatchRedirectURI(app.RedirectURIs, code.RedirectURI) ||
		!authorize.VerifyPKCE(verifier, code.Challenge) {
		return nil, invalidCode()
	}
	bound, err := BindResource(code.Resource, asked)
	if err != nil {
		return nil, err
	}
	if ok, err := s.admits(ctx, code.AccountID, app); err != nil {
		return nil, err
	} else if !ok {
		return nil, invalidCode()
	}
	var (
		out   *Issued
		reuse bool
	)
	err = s.update(ctx, func(tx *store.Tx) error {
		out, reuse = nil, false // as the run that commits finds them
		// The account (shared) before the user's rows, as a change of the
		// user takes them; then the authorization, then the code: the
		// order revoking an authorization or deleting the application
		// takes them in.
		if err := tx.ShareAccount(code.AccountID); err != nil {
			return err
		}
		if _, err := tx.Authorization(code.UserID, code.ClientID); err != nil {
			if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
				return invalidCode()
			}
			return err
		}
		won, err := tx.UseCode(code.ID, now)
		if err != nil {
			return err
		}
		if !won {
			reuse = true
			return nil
		}
		u, err := tx.User(code.AccountID, code.UserID)
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			return invalidCode() // deleted since it consented
		}
		if err != nil {
			return err
		}
		if !u.Active() || u.Epoch != code.UserEpoch || u.PasswordEpoch != code.PasswordEpoch {
			return invalidCode()
		}
		if active, err := tx.AccountActive(code.AccountID); err != nil || !active {
			return cmp.Or(err, invalidCode()) // suspended since it consented
		}
		var toks []*gatehouse.Token
		out, toks = s.newAppPair(u, app.ClientID, code.FamilyID, code.Scopes, bound)
		return tx.CreateTokens(toks...)
	})
	if err != nil {
		return nil, err
	}
	if reuse {
		return nil, s.codeReused(ctx, code)
	}
	return out, nil
}

// codeReused revokes everything issued from a code presented again and
// audits it (RFC 6749 §4.1.2), then returns invalid_grant.
func (s *Service) codeReused(ctx context.Context, code *gatehouse.AuthCode) error {
	now := s.now()
	s.logger.Warn("authorization code used again; revoking what it issued", "account_id", code.AccountID, "user_id", code.UserID,
		"client_id", code.ClientID, "family_id", code.FamilyID)
	err := s.update(ctx, func(tx *store.Tx) error {
		if err := tx.RevokeTokenFamily(code.FamilyID, now); err != nil {
			return err
		}
		return s.record(tx, &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: code.AccountID, ActorID: code.UserID,
			Actor: "reuse-detection", Action: "app.code_reused", TargetType: "app", TargetID: code.ClientID,
			RemoteAddr: gatehouse.ClientAddrFromContext(ctx), CreatedAt: now, Details: map[string]string{"family_id": code.FamilyID}})
	})
	if err != nil {
		return err
	}
	return invalidCode()
}

// newAppPair returns a fresh access and refresh token of an application's
// grant for u, limited to scopes.
func (s *Service) newAppPair(u *gatehouse.User, clientID, familyID string, scopes gatehouse.Scopes, resource string) (*Issued, []*gatehouse.Token) {
	rawAccess, access := s.newAccess(u, gatehouse.MethodAuthorizationCode, clientID, familyID, AppAccessTokenLifetime)
	access.Scopes, access.Resource = scopes, resource
	rawRefresh := s.mint(token.RefreshToken)
	refresh := *access
	refresh.ID, refresh.Kind, refresh.Hash = gatehouse.NewID("tok"), gatehouse.KindRefresh, s.digester.Digest(rawRefresh)
	refresh.ExpiresAt = access.CreatedAt.Add(RefreshTokenLifetime)
	return &Issued{AccessToken: rawAccess, TokenType: "bearer", ExpiresIn: int(AppAccessTokenLifetime / time.Second),
		RefreshToken: rawRefresh, Scope: scopes.String()}, []*gatehouse.Token{access, &refresh}
}

// AppRefreshGrant rotates a refresh token of a third-party application
// (SPEC §10.3) with the rules of RefreshGrant: once each, retries inside
// the grace period, reuse detection revoking the lineage. The client
// authenticates as for CodeGrant.
//
// resource binds the new tokens as for CodeGrant, against the refresh
// token's resource.
func (s *Service) AppRefreshGrant(ctx context.Context, clientID, secret, raw, scope, resource string) (*Issued, error) {
	asked, err := resourceParam(resource)
	if err != nil {
		return nil, err
	}
	ask, err := askedOf(scope, asked)
	if err != nil {
		return nil, err
	}
	app, err := s.appClient(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	if !token.Valid(raw, token.RefreshToken) {
		return nil, invalidRefresh()
	}
	lookup := func() (*store.IssuedToken, error) {
		it, err := s.store.TokenByHash(ctx, s.digester.Digest(raw))
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			return nil, invalidRefresh()
		} else if err != nil {
			return nil, err
		}
		if it.Kind != gatehouse.KindRefresh || it.Method != gatehouse.MethodAuthorizationCode || it.ClientID != app.ClientID {
			return nil, invalidRefresh()
		}
		return it, nil
	}
	it, err := lookup()
	if err != nil {
		return nil, err
	}
	if presentedAgain(it) {
		return s.refreshAgain(ctx, it, raw, ask)
	}
	if !tokenValid(it, s.now()) {
		return nil, invalidRefresh()
	}
	bound, err := BindResource(it.Resource, asked)
	if err != nil {
		return nil, err
	}
	granted := tokenScopes(it)
	narrowed, err := narrowRequest((&gatehouse.Principal{Account: it.Account, User: it.User, Method: it.Method}).RoleScopes().Intersect(granted), scope)
	if err != nil {
		return nil, err
	}
	out, next := s.newAppPair(it.User, app.ClientID, it.FamilyID, it.Scopes.Intersect(narrowed), bound)
	out.Scope = granted.Intersect(narrowed).String()
	retry, err := sealRetry(raw, it.ID, gatehouse.ClientAddrFromContext(ctx), next[1].ID, out, next[0].ExpiresAt, ask)
	if err != nil {
		return nil, err
	}
	won, err := s.store.RotateRefreshToken(ctx, it.ID, s.now, retry, next...)
	if err != nil {
		return nil, err
	}
	if !won {
		again, err := lookup()
		if err != nil {
			return nil, err
		}
		if presentedAgain(again) {
			return s.refreshAgain(ctx, again, raw, ask)
		}
		return nil, invalidRefresh()
	}
	return out, nil
}

// Authorizations lists the applications a user authorised: p's own
// (userID empty or p's), or, for an admin, any user's of the account.
func (s *Service) Authorizations(ctx context.Context, p *gatehouse.Principal, userID string, page gatehouse.Page) ([]*gatehouse.Authorization, string, error) {
	uid, err := s.authorizationsOf(ctx, p, userID, false)
	if err != nil {
		return nil, "", err
	}
	return s.store.Authorizations(ctx, uid, page)
}

// Authorization returns one authorization of a user (p's own, or any
// user's of the account for an admin), or not_found.
func (s *Service) Authorization(ctx context.Context, p *gatehouse.Principal, userID, clientID string) (*gatehouse.Authorization, error) {
	uid, err := s.authorizationsOf(ctx, p, userID, false)
	if err != nil {
		return nil, err
	}
	return s.store.Authorization(ctx, uid, clientID)
}

// authorizationsOf returns the user whose authorizations p may see and,
// with change, end: p's own from a sign-in (requireSignIn), or any user's
// of the account for an admin, where only the operator ends the
// operator's. A third-party application's token manages none.
func (s *Service) authorizationsOf(ctx context.Context, p *gatehouse.Principal, userID string, change bool) (string, error) {
	if err := RequireUser(p); err != nil {
		return "", err
	}
	if p.Method == gatehouse.MethodAuthorizationCode {
		// An application sees and ends no other application's grant
		// (RevokeAuthorization lets it end its own).
		return "", gatehouse.Forbidden("A third-party application's token does not manage authorised applications")
	}
	if userID == "" || userID == p.User.ID {
		// One's own, from a sign-in, as sessions and second factors.
		return p.User.ID, requireSignIn(p)
	}
	if err := RequireAdmin(p); err != nil {
		return "", err
	}
	u, err := s.store.User(ctx, p.AccountID, userID)
	if err != nil {
		return "", err
	}
	if change {
		if err := requireMayChange(p, u); err != nil {
			return "", err
		}
	}
	return u.ID, nil
}

// RevokeAuthorization ends a user's authorization of the application
// clientID (p's own, or any user's of the account for an admin): every
// token of the grant stops working at once, on every node (not_found
// when there is none).
//
// A third-party application's token may end only its own grant (a
// "disconnect" in the application). An admin ending another user's is
// read again after the account (requireAdminShared): one disabled,
// deleted or demoted meanwhile ends nothing (forbidden).
func (s *Service) RevokeAuthorization(ctx context.Context, p *gatehouse.Principal, userID, clientID string) error {
	uid := ""
	if p.Method == gatehouse.MethodAuthorizationCode && (userID == "" || userID == p.UserID()) && clientID == p.ClientID {
		uid = p.User.ID
	} else {
		var err error
		if uid, err = s.authorizationsOf(ctx, p, userID, true); err != nil {
			return err
		}
	}
	return s.update(ctx, func(tx *store.Tx) error {
		if uid != p.UserID() {
			if err := requireAdminShared(tx, p); err != nil {
				return err
			}
		}
		found, err := tx.DeleteAuthorization(uid, clientID, s.now())
		if err != nil {
			return err
		}
		if !found {
			return gatehouse.NotFound("authorization")
		}
		return s.record(tx, s.audit(ctx, p, "app.authorization_revoke", "user", uid, map[string]string{"client_id": clientID}))
	})
}
