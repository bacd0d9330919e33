package service

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// NewCredential is a freshly made credential; its secret is shown once.
type NewCredential struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret"`
	CreatedAt    time.Time `json:"created_at"`
}

// SetDeveloper grants (on) or removes the developer role of a user of p's
// account. Admins only. Removing it keeps the user's credentials working
// unless revoke is set, in which case they are deleted and their tokens
// revoked at once. It returns how many credentials remain live.
func (s *Service) SetDeveloper(ctx context.Context, p *gatehouse.Principal, userID string, on, revoke bool) (int, error) {
	if err := RequireAdmin(p); err != nil {
		return 0, err
	}
	u, err := s.Store.User(ctx, p.AccountID, userID)
	if err != nil {
		return 0, err
	}
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
	if err := s.Store.UpdateUser(ctx, u, store.Revocation{}, s.audit(ctx, p, action, "user", u.ID, nil)); err != nil {
		return 0, err
	}
	if on {
		return 0, nil
	}
	if revoke {
		if err := s.Store.DeleteCredentials(ctx, p.AccountID, u.ID, "", s.now(),
			s.audit(ctx, p, "credential.revoke_all", "user", u.ID, nil)); err != nil {
			return 0, err
		}
	}
	return s.Store.CountCredentials(ctx, u.ID)
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

// CreateCredential makes a client credential for p's user. Developers only.
func (s *Service) CreateCredential(ctx context.Context, p *gatehouse.Principal, name string) (*NewCredential, error) {
	u, err := requireDeveloper(p)
	if err != nil {
		return nil, err
	}
	if name, err = checkName("name", name, MaxNameLen, true); err != nil {
		return nil, err
	}
	secret := token.New(token.ClientSecret)
	c := &gatehouse.Credential{ID: gatehouse.NewID("crd"), AccountID: u.AccountID, UserID: u.ID, Name: name,
		ClientID: token.New(token.ClientID), SecretHash: s.Digester.Digest(secret), CreatedAt: s.now()}
	if err := s.Store.CreateCredential(ctx, c, s.audit(ctx, p, "credential.create", "credential", c.ID,
		map[string]string{"name": name, "client_id": c.ClientID})); err != nil {
		return nil, err
	}
	return &NewCredential{ID: c.ID, Name: c.Name, ClientID: c.ClientID, ClientSecret: secret, CreatedAt: c.CreatedAt}, nil
}

// Credentials lists p's user's credentials (never the secret).
func (s *Service) Credentials(ctx context.Context, p *gatehouse.Principal, page gatehouse.Page) ([]*gatehouse.Credential, string, error) {
	u, err := requireDeveloper(p)
	if err != nil {
		return nil, "", err
	}
	return s.Store.Credentials(ctx, p.AccountID, u.ID, page)
}

// DeleteCredential deletes one of p's user's credentials; its tokens stop
// working at once.
func (s *Service) DeleteCredential(ctx context.Context, p *gatehouse.Principal, id string) error {
	u, err := requireDeveloper(p)
	if err != nil {
		return err
	}
	return s.Store.DeleteCredentials(ctx, p.AccountID, u.ID, id, s.now(), s.audit(ctx, p, "credential.delete", "credential", id, nil))
}

func invalidClient() error {
	return gatehouse.Errorf(gatehouse.EInvalidClient, "Client authentication failed")
}

// ClientCredentialsGrant authenticates a client credential and issues an
// access token acting as its developer (SPEC §3.3). The secret is checked
// with a digest compared in constant time: it is high-entropy, so no slow
// hash is needed. Unknown clients, wrong secrets and disabled owners are
// invalid_client.
func (s *Service) ClientCredentialsGrant(ctx context.Context, clientID, secret string) (*Issued, error) {
	p, err := s.ClientPrincipal(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	ttl := time.Duration(p.Account.Settings.TokenLifetimes.ClientCredentialsSeconds) * time.Second
	raw, t := s.newAccess(p.User, gatehouse.MethodClientCredentials, p.ClientID, "", ttl)
	t.FamilyID = t.ID
	if err := s.Store.CreateTokens(ctx, t); err != nil {
		return nil, err
	}
	return &Issued{AccessToken: raw, TokenType: "bearer", ExpiresIn: int(ttl / time.Second)}, nil
}

// ClientPrincipal authenticates a client credential and returns its owner
// as a principal. Unknown clients, wrong secrets and disabled owners are
// invalid_client.
func (s *Service) ClientPrincipal(ctx context.Context, clientID, secret string) (*gatehouse.Principal, error) {
	if !token.Valid(clientID, token.ClientID) || !token.Valid(secret, token.ClientSecret) {
		return nil, invalidClient()
	}
	// Cached by the digest of the pair: a hit proves the same secret.
	key := "client\x00" + s.Digester.Digest(clientID+":"+secret)
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := s.cache.get(key, gen, s.Now()); ok {
		s.cacheHit(true)
		return p, nil
	}
	s.cacheHit(false)
	p, err := s.clientPrincipal(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	s.cache.put(key, gen, p)
	return p, nil
}

func (s *Service) clientPrincipal(ctx context.Context, clientID, secret string) (*gatehouse.Principal, error) {
	c, err := s.Store.CredentialByClientID(ctx, clientID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, invalidClient()
	} else if err != nil {
		return nil, err
	}
	if !s.Digester.Equal(secret, c.SecretHash) {
		return nil, invalidClient()
	}
	u, err := s.Store.User(ctx, c.AccountID, c.UserID)
	if err != nil {
		return nil, err
	}
	if !u.Active() {
		return nil, invalidClient()
	}
	a, err := s.Store.Account(ctx, c.AccountID)
	if err != nil {
		return nil, err
	}
	return &gatehouse.Principal{Account: a, AccountID: a.ID, User: u, Method: gatehouse.MethodClientCredentials,
		CredentialID: c.ID, ClientID: c.ClientID}, nil
}

// CredentialCount is a helper for views: how many credentials a user has.
func (s *Service) CredentialCount(ctx context.Context, p *gatehouse.Principal, userID string) (int, error) {
	if err := RequireAdmin(p); err != nil {
		return 0, err
	}
	if _, err := s.Store.User(ctx, p.AccountID, userID); err != nil {
		return 0, err
	}
	return s.Store.CountCredentials(ctx, userID)
}
