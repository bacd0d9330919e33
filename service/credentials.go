package service

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// NewCredential is a freshly made credential; its secret is shown once.
type NewCredential struct {
	ID           string           `json:"id"`
	Name         string           `json:"name"`
	ClientID     string           `json:"client_id"`
	ClientSecret string           `json:"client_secret"`
	Scopes       gatehouse.Scopes `json:"scopes"`
	ExpiresAt    *time.Time       `json:"expires_at"`
	CreatedAt    time.Time        `json:"created_at"`
	gatehouse.Plan
}

// SetDeveloper grants (on) or removes the developer role of a user of p's
// account. Admins only. Removing it keeps the user's credentials working
// unless revoke is set, in which case they are deleted and their tokens
// stop working at once. The role change, the deletion and their audit
// entries are one transaction. It returns how many of the user's
// credentials still authenticate: enabled, not revoked, not expired.
func (s *Service) SetDeveloper(ctx context.Context, p *gatehouse.Principal, userID string, on, revoke bool) (int, error) {
	if err := RequireAdmin(p); err != nil {
		return 0, err
	}
	live := 0
	err := s.update(ctx, func(tx *store.Tx) error {
		// The account first, like every change of users: see requireAdminNow.
		if _, err := tx.Account(p.AccountID); err != nil {
			return err
		}
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		u, err := tx.User(p.AccountID, userID)
		if err != nil {
			return err
		}
		if err := requireMayChange(p, u); err != nil {
			return err
		}
		reach := userReach(p.Account, u, nil) // what u's credentials may do before the change
		roles := gatehouse.Roles{}
		for _, r := range u.Roles {
			if r != gatehouse.RoleDeveloper {
				roles = append(roles, r)
			}
		}
		action := "developer.remove"
		if on {
			roles, action = append(roles, gatehouse.RoleDeveloper), "developer.add"
		}
		u.Roles, u.UpdatedAt = gatehouse.NormalizeRoles(roles), s.now()
		if on {
			if err := mayGive(p, u); err != nil {
				return err
			}
		}
		if err := tx.UpdateUser(u); err != nil {
			return err
		}
		if err := s.record(tx, s.audit(ctx, p, action, "user", u.ID, nil)); err != nil {
			return err
		}
		if on {
			return nil
		}
		if revoke {
			if err := s.revokeAllCredentials(ctx, tx, p, u, reach); err != nil {
				return err
			}
		}
		live, err = tx.CountWorkingCredentials(u.ID, s.now())
		return err
	})
	return live, err
}

// requireDeveloper returns p's user if it has the developer role.
func requireDeveloper(p *gatehouse.Principal) (*gatehouse.User, error) {
	if err := RequireUser(p); err != nil {
		return nil, err
	}
	if !p.User.Roles.Has(gatehouse.RoleDeveloper) {
		return nil, gatehouse.Forbidden("This needs the developer role")
	}
	return p.User, nil
}

// requireDeveloperNow is requireDeveloper inside tx, on p's user as it
// stands now (rolesNow: the account shared, then the user read): a
// developer who lost the role, or was disabled or deleted, while their
// request was in flight changes none of their credentials. The caller
// then locks the user and the credential (tx.Credential), in the order a
// role change takes them.
func requireDeveloperNow(tx *store.Tx, p *gatehouse.Principal) error {
	asNow, err := rolesNow(tx, p)
	if err != nil {
		return err
	}
	_, err = requireDeveloper(asNow)
	return err
}

// CredentialInput is the input for CreateCredential.
type CredentialInput struct {
	Name string `json:"name"`
	// Scopes limits the credential; nil means the creator's own scopes
	// (unrestricted for an unrestricted creator).
	Scopes *[]gatehouse.Scope `json:"scopes"`
	// ExpiresAt, when set, ends the credential (see grantExpiry).
	ExpiresAt *time.Time `json:"expires_at"`
	// Patch sets the credential's plan (SPEC §10.5).
	plan.Patch
}

// CreateCredential makes a client credential for p's user. Developers only:
// the role is checked again in the transaction that stores the credential,
// so one made concurrently with the role's removal (or the user's disable)
// is either removed by it or refused (forbidden). Scopes and expiry as
// grantScopes and grantExpiry allow.
func (s *Service) CreateCredential(ctx context.Context, p *gatehouse.Principal, in CredentialInput) (*NewCredential, error) {
	if err := checkScopesFirst(in.Scopes); err != nil {
		return nil, err
	}
	if err := requireOwnAuthority(p, "create a credential"); err != nil {
		return nil, err
	}
	if err := checkPlan(gatehouse.PlanCredential, in.Patch); err != nil {
		return nil, err
	}
	u, err := requireDeveloper(p)
	if err != nil {
		return nil, err
	}
	name, err := checkName("name", in.Name, MaxNameLen, true)
	if err != nil {
		return nil, err
	}
	scopes, err := grantScopes(p, in.Scopes)
	if err != nil {
		return nil, err
	}
	expires, err := s.grantExpiry(p, in.ExpiresAt)
	if err != nil {
		return nil, err
	}
	if err := mayActOn(p, userReach(p.Account, u, scopes), expires); err != nil {
		return nil, err
	}
	secret := s.mint(token.ClientSecret)
	c := &gatehouse.Credential{ID: gatehouse.NewID("crd"), AccountID: u.AccountID, UserID: u.ID, Name: name,
		ClientID: s.mint(token.ClientID), SecretHash: s.digester.Digest(secret), Scopes: scopes, ExpiresAt: expires,
		Enabled: true, CreatedBy: mintedBy(p), CreatedAt: s.now()}
	err = s.update(ctx, func(tx *store.Tx) error {
		cur, err := lockUser(tx, u)
		if err != nil {
			return err
		}
		if !cur.Roles.Has(gatehouse.RoleDeveloper) {
			return gatehouse.Forbidden("This needs the developer role")
		}
		if err := credentialRoom(tx, p.Account, cur, c.CreatedAt); err != nil {
			return err
		}
		if err := credentialNameFree(tx, c, "", c.CreatedAt); err != nil {
			return err
		}
		if err := tx.CreateCredential(c); err != nil {
			return err
		}
		details := map[string]string{"name": name, "client_id": c.ClientID, "scopes": scopesText(scopes)}
		if c.Plan, err = s.setPlan(tx, c.AccountID, gatehouse.PlanCredential, c.ID, in.Patch, details); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "credential.create", "credential", c.ID, details))
	})
	if err != nil {
		return nil, err
	}
	return &NewCredential{ID: c.ID, Name: c.Name, ClientID: c.ClientID, ClientSecret: secret, Scopes: c.Scopes,
		ExpiresAt: c.ExpiresAt, CreatedAt: c.CreatedAt, Plan: c.Plan}, nil
}

// credentialNameFree returns conflict, about the name, when c's owner has
// another live credential than except with c's name (any case). The owner
// must be locked in tx.
func credentialNameFree(tx *store.Tx, c *gatehouse.Credential, except string, now time.Time) error {
	taken, err := tx.CredentialNameTaken(c.AccountID, c.UserID, c.Name, except, now)
	if err != nil {
		return err
	}
	if taken {
		return nameTaken("credential")
	}
	return nil
}

// credentialRoom returns limit_reached when user u (locked in tx) has the
// max_credentials_per_user of account a live credentials already. The
// account's settings are as the request authenticated under; a change of
// the ceiling that commits meanwhile is seen by the next creation.
func credentialRoom(tx *store.Tx, a *gatehouse.Account, u *gatehouse.User, now time.Time) error {
	max := gatehouse.DefaultMaxCredentialsPerUser
	if a != nil {
		max = a.Settings.MaxCredentialsPerUser
	}
	n, err := tx.CountLiveCredentials(u.ID, now)
	if err != nil {
		return err
	}
	if n >= max {
		return gatehouse.Errorf(gatehouse.ELimitReached, "This user has %d client credentials, the limit (max_credentials_per_user); delete one first", max)
	}
	return nil
}

// nameTaken is the conflict of a name already in use by a live
// credential of the same owner.
func nameTaken(what string) error {
	return gatehouse.Field(gatehouse.Errorf(gatehouse.EConflict, "A live %s with this name already exists", what),
		"name", "This name is already in use; choose another.")
}

// UpdateCredential renames, disables or enables one of p's user's
// credentials, narrows its scopes or brings its expiry forward. A disabled
// credential and every token from it are refused until it is enabled
// again, on every node.
func (s *Service) UpdateCredential(ctx context.Context, p *gatehouse.Principal, id string, patch CredentialPatch) (*gatehouse.Credential, error) {
	if err := checkScopesFirst(patch.Scopes); err != nil {
		return nil, err
	}
	if err := checkPlan(gatehouse.PlanCredential, patch.Patch); err != nil {
		return nil, err
	}
	u, err := requireDeveloper(p)
	if err != nil {
		return nil, err
	}
	var out *gatehouse.Credential
	err = s.update(ctx, func(tx *store.Tx) error {
		if err := requireDeveloperNow(tx, p); err != nil {
			return err
		}
		c, err := tx.Credential(p.AccountID, u.ID, id)
		if err != nil {
			return err
		}
		if patch.actsOn() {
			if err := mayActOn(p, userReach(p.Account, u, c.Scopes), c.ExpiresAt); err != nil {
				return err
			}
		}
		details, err := s.applyPatch(p.Account, patch, &c.Name, &c.Enabled, &c.Scopes, &c.ExpiresAt)
		if err != nil {
			return err
		}
		if c.Plan, err = s.setPlan(tx, c.AccountID, gatehouse.PlanCredential, c.ID, patch.Patch, details); err != nil {
			return err
		}
		if patch.Name != nil {
			// tx.Credential locked the user: see CredentialNameTaken.
			if err := credentialNameFree(tx, c, c.ID, s.now()); err != nil {
				return err
			}
		}
		if err := tx.UpdateCredential(c); err != nil {
			return err
		}
		out = c
		return s.record(tx, s.audit(ctx, p, "credential.update", "credential", c.ID, details))
	})
	return out, err
}

// RolledSecret is the answer to rolling a client secret; the secret is
// shown once.
type RolledSecret struct {
	// ID is the credential's or application's id: a leaked credential's
	// roll makes a new credential, whose id this is.
	ID           string `json:"id"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// MaxRollOverlap bounds how long a rolled-over secret or API token keeps
// working.
const MaxRollOverlap = 30 * 24 * time.Hour

// checkOverlap bounds a roll's overlap_seconds before it becomes a
// duration (a value past MaxRollOverlap, however large, is
// invalid_request, never a wrapped-around duration).
func checkOverlap(seconds int) (time.Duration, error) {
	if max := int(MaxRollOverlap / time.Second); seconds < 0 || seconds > max {
		return 0, gatehouse.InvalidField("overlap_seconds", fmt.Sprintf("Enter a whole number from 0 to %d.", max),
			"overlap_seconds must be from 0 to %d", max)
	}
	return time.Duration(seconds) * time.Second, nil
}

// RollCredential gives one of p's user's credentials a new secret: same
// client id, the old secret accepted for overlap more (0: not at all).
// The credential's expiry is bounded like a new one's by the account's
// max_credential_lifetime_days; only a credential p may act on
// (mayActOn).
// A credential revoked for good is rolled into a new one instead (see
// rollRevokedCredential).
func (s *Service) RollCredential(ctx context.Context, p *gatehouse.Principal, id string, overlapSeconds int) (*RolledSecret, error) {
	if err := requireOwnAuthority(p, "roll a credential"); err != nil {
		return nil, err
	}
	u, err := requireDeveloper(p)
	if err != nil {
		return nil, err
	}
	overlap, err := checkOverlap(overlapSeconds)
	if err != nil {
		return nil, err
	}
	secret := s.mint(token.ClientSecret)
	var out *RolledSecret
	err = s.update(ctx, func(tx *store.Tx) error {
		if err := requireDeveloperNow(tx, p); err != nil {
			return err
		}
		a := p.Account
		c, err := tx.Credential(p.AccountID, u.ID, id)
		if err != nil {
			return err
		}
		if err := mayActOn(p, userReach(a, u, c.Scopes), c.ExpiresAt); err != nil {
			return err
		}
		if c.RevokedAt != nil {
			out, err = s.rollRevokedCredential(ctx, tx, p, c, secret)
			return err
		}
		c.ExpiresAt = earliest(c.ExpiresAt, s.lifetimeLimit(a))
		c.SecretHash, c.PrevSecretHash, c.PrevSecretExpiresAt = s.rollSecret(c.SecretHash, secret, overlap)
		if err := tx.UpdateCredential(c); err != nil {
			return err
		}
		out = &RolledSecret{ID: c.ID, ClientID: c.ClientID, ClientSecret: secret}
		details := map[string]string{"overlap_seconds": strconv.Itoa(int(overlap / time.Second))}
		if c.ExpiresAt != nil {
			details["expires_at"] = c.ExpiresAt.Format(time.RFC3339)
		}
		return s.record(tx, s.audit(ctx, p, "credential.roll", "credential", c.ID, details))
	})
	return out, err
}

// scopesText is the audit log's form of a scope set.
func scopesText(ss gatehouse.Scopes) string {
	if ss == nil {
		return "unrestricted"
	}
	return ss.String()
}

// credentialOwner returns the user whose credentials p asks for with
// userID: p's own user when userID is "" (developers only), or any user of
// p's account for an admin (not_found for another account's).
func (s *Service) credentialOwner(ctx context.Context, p *gatehouse.Principal, userID string) (string, error) {
	if userID == "" || (userID == p.UserID() && !p.IsAdmin()) {
		u, err := requireDeveloper(p)
		if err != nil {
			return "", err
		}
		return u.ID, nil
	}
	if err := RequireAdmin(p); err != nil {
		return "", err
	}
	if _, err := s.store.User(ctx, p.AccountID, userID); err != nil {
		return "", err
	}
	return userID, nil
}

// Credentials lists client credentials (never the secret): p's user's own
// when userID is "" (developers only), or those of any user of p's
// account for an admin — including credentials that outlived their
// owner's developer role.
func (s *Service) Credentials(ctx context.Context, p *gatehouse.Principal, userID string, page gatehouse.Page) ([]*gatehouse.Credential, string, error) {
	owner, err := s.credentialOwner(ctx, p, userID)
	if err != nil {
		return nil, "", err
	}
	s.settleTouches(ctx)
	cs, next, err := s.store.Credentials(ctx, p.AccountID, owner, page)
	if err != nil {
		return nil, "", err
	}
	err = fillPlans(ctx, s, p.AccountID, cs, func(c *gatehouse.Credential) (string, string) { return c.ID, c.ID },
		func(c *gatehouse.Credential) *gatehouse.Plan { return &c.Plan })
	return cs, next, err
}

// mayManageCredential is the one rule for who may see one credential and
// delete it: its owner while a developer, and the account's admins.
// Anyone else gets forbidden, or not_found for another user's credential.
func mayManageCredential(p *gatehouse.Principal, c *gatehouse.Credential) error {
	if err := mayManageCredentials(p); err != nil || p.IsAdmin() {
		return err
	}
	if c.UserID != p.UserID() {
		return gatehouse.NotFound("credential")
	}
	return nil
}

// mayManageCredentials returns forbidden unless p may manage some
// credential: an admin, or a developer (their own).
func mayManageCredentials(p *gatehouse.Principal) error {
	if p.IsAdmin() {
		return nil
	}
	_, err := requireDeveloper(p)
	return err
}

// Credential returns a credential of p's account as mayManageCredential
// allows, with its plan and what is left of its quota.
func (s *Service) Credential(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.Credential, error) {
	if err := mayManageCredentials(p); err != nil {
		return nil, err
	}
	c, err := s.store.CredentialByID(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	if err := mayManageCredential(p, c); err != nil {
		return nil, err
	}
	plans, err := s.store.Plans(ctx, p.AccountID, c.ID)
	if err != nil {
		return nil, err
	}
	c.Plan, err = s.withRemaining(ctx, p.AccountID, c.ID, plans[c.ID])
	return c, err
}

// DeleteCredential deletes a credential — the owner's own, or any of the
// account's for an admin (mayManageCredential, as p's roles stand when it
// commits: rolesNow) — and its tokens stop working at once.
func (s *Service) DeleteCredential(ctx context.Context, p *gatehouse.Principal, id string) error {
	// Refuse before reading anything when p may delete no credential.
	if err := mayManageCredentials(p); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		asNow, err := rolesNow(tx, p)
		if err != nil {
			return err
		}
		c, owner, err := tx.AccountCredential(p.AccountID, id)
		if err != nil {
			return err
		}
		if err := mayManageCredential(asNow, c); err != nil {
			return err
		}
		if err := mayActOn(p, userReach(p.Account, owner, c.Scopes), c.ExpiresAt); err != nil {
			return err
		}
		if _, err := tx.DeleteCredentials(p.AccountID, c.UserID, c.ID, s.now()); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "credential.delete", "credential", c.ID,
			map[string]string{"name": c.Name, "client_id": c.ClientID, "owner_id": c.UserID}))
	})
}

func invalidClient() error {
	return gatehouse.Errorf(gatehouse.EInvalidClient, "Client authentication failed")
}

// ClientCredentialsGrant authenticates a client credential and issues an
// access token acting as its developer (SPEC §3.3). The secret is checked
// with a digest compared in constant time: it is high-entropy, so no slow
// hash is needed. Unknown clients, wrong secrets, disabled or expired
// credentials and disabled owners are invalid_client; a client address
// (from) outside the credential's allowed_ips is ip_not_allowed. scope, when not
// empty, narrows the token (RFC 6749 §3.3): a scope the credential does not
// grant is invalid_scope.
func (s *Service) ClientCredentialsGrant(ctx context.Context, clientID, secret, scope, from string) (*Issued, error) {
	if _, err := requestedScopes(scope); err != nil {
		return nil, err
	}
	p, err := s.ClientPrincipal(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	if err := p.CheckAddr(from); err != nil {
		return nil, err
	}
	narrowed, err := narrowRequest(p.EffectiveScopes(), scope)
	if err != nil {
		return nil, err
	}
	ttl := time.Duration(p.Account.Settings.TokenLifetimes.ClientCredentialsSeconds) * time.Second
	raw, t := s.newAccess(p.User, gatehouse.MethodClientCredentials, p.ClientID, "", ttl)
	t.Scopes = narrowed
	// It stops working with its credential (tokenValid): it says so.
	t.ExpiresAt = cacheUntil(t.ExpiresAt, p.CredentialExpires)
	if err := s.store.CreateTokens(ctx, t); err != nil {
		return nil, err
	}
	s.touchCredential(ctx, p.CredentialID)
	return &Issued{AccessToken: raw, TokenType: "bearer", ExpiresIn: expiresIn(t),
		Scope: p.Scopes.Intersect(narrowed).String()}, nil
}

// requestedScopes parses an OAuth scope parameter, before any other work
// of a grant (gatehouse.ParseScopeParam: bounded, linear): nil for "",
// invalid_scope for a malformed or too long list.
func requestedScopes(scope string) (gatehouse.Scopes, error) {
	if scope == "" {
		return nil, nil
	}
	want, err := gatehouse.ParseScopeParam("scope", scope)
	if err != nil {
		return nil, gatehouse.Errorf(gatehouse.EInvalidScope, "%s", gatehouse.ErrorMessage(err))
	}
	if len(want) == 0 {
		// Spaces alone name no scope (RFC 6749 §3.3: one or more): not a
		// request for a token that can do nothing.
		return nil, gatehouse.Errorf(gatehouse.EInvalidScope, "The scope parameter names no scope: leave it out, or name at least one")
	}
	return want, nil
}

// narrowRequest parses an OAuth scope parameter against what the client
// may do: "" asks for nothing narrower (nil); any scope not in allowed is
// invalid_scope.
func narrowRequest(allowed gatehouse.Scopes, scope string) (gatehouse.Scopes, error) {
	want, err := requestedScopes(scope)
	if err != nil || want == nil {
		return want, err
	}
	for _, sc := range want {
		if !allowed.Allows(sc) {
			return nil, gatehouse.Errorf(gatehouse.EInvalidScope, "The requested scope is not granted to this client")
		}
	}
	return want, nil
}

// ClientPrincipal authenticates a client credential and returns its owner
// as a principal. Unknown clients, wrong secrets and disabled owners are
// invalid_client.
func (s *Service) ClientPrincipal(ctx context.Context, clientID, secret string) (*gatehouse.Principal, error) {
	if !token.Valid(clientID, token.ClientID) || !token.Valid(secret, token.ClientSecret) {
		return nil, invalidClient()
	}
	// Cached by the digest of the pair: a hit proves the same secret.
	key := "client\x00" + s.digester.Digest(clientID+":"+secret)
	p, f, err := s.principal(ctx, key, false)
	if p != nil || err != nil {
		return p, err
	}
	p, err = s.clientPrincipal(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	s.putPrincipal(key, f, p, "", p.ExpiresAt)
	return p, nil
}

// touchCredential writes a client credential's last_used_at at most once
// per LastUsedResolution.
func (s *Service) touchCredential(ctx context.Context, id string) {
	s.touchLater(ctx, "crd\x00"+id, func(ctx context.Context, at time.Time) error { return s.store.TouchCredential(ctx, id, at) })
}

func (s *Service) clientPrincipal(ctx context.Context, clientID, secret string) (*gatehouse.Principal, error) {
	c, err := s.store.CredentialByClientID(ctx, clientID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, invalidClient()
	} else if err != nil {
		return nil, err
	}
	now := s.clock()
	current := s.digester.Equal(secret, c.SecretHash)
	previous := c.PrevSecretHash != "" && c.PrevSecretExpiresAt != nil && now.Before(*c.PrevSecretExpiresAt) &&
		s.digester.Equal(secret, c.PrevSecretHash)
	if !(current || previous) || !c.Usable(now) {
		return nil, invalidClient()
	}
	u, err := s.store.User(ctx, c.AccountID, c.UserID)
	if err != nil {
		return nil, err
	}
	a, err := s.store.Account(ctx, c.AccountID)
	if err != nil {
		return nil, err
	}
	lineage, err := s.store.Lineage(ctx, c.AccountID, c.CreatedBy)
	if err != nil {
		return nil, err
	}
	if !u.Active() || !a.Active() || !mintedLive(c.CreatedBy, lineage, a, now) {
		return nil, invalidClient()
	}
	p := &gatehouse.Principal{Account: a, AccountID: a.ID, User: u, Method: gatehouse.MethodClientCredentials,
		CredentialID: c.ID, ClientID: c.ClientID, Scopes: c.Scopes, CredentialExpires: c.ExpiresAt}
	if c.CreatedBy != "" {
		p.CredentialExpires = earliest(c.ExpiresAt, lineage.ExpiresAt)
	}
	// Cached no longer than the credential (and what it was minted
	// through), or the rolled secret, works.
	if p.CredentialExpires != nil {
		p.ExpiresAt = *p.CredentialExpires
	}
	if previous && !current && (p.ExpiresAt.IsZero() || c.PrevSecretExpiresAt.Before(p.ExpiresAt)) {
		p.ExpiresAt = *c.PrevSecretExpiresAt
	}
	if err := s.planPrincipal(ctx, p, c.ID, c.ID, ""); err != nil {
		return nil, err
	}
	return p, nil
}

// CredentialCount is a helper for views: how many credentials a user has.
func (s *Service) CredentialCount(ctx context.Context, p *gatehouse.Principal, userID string) (int, error) {
	if err := RequireAdmin(p); err != nil {
		return 0, err
	}
	if _, err := s.store.User(ctx, p.AccountID, userID); err != nil {
		return 0, err
	}
	return s.store.CountCredentials(ctx, userID)
}

// rollSecret returns the hashes of a client secret rolled from the one
// hashed current to secret: the new secret's, and the old one's with when
// it stops — kept for overlap, none without one.
func (s *Service) rollSecret(current, secret string, overlap time.Duration) (hash, prev string, prevUntil *time.Time) {
	if overlap > 0 {
		until := s.now().Add(overlap)
		prev, prevUntil = current, &until
	}
	return s.digester.Digest(secret), prev, prevUntil
}
