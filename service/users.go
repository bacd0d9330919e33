package service

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// NewUser is the input for CreateUser.
type NewUser struct {
	Email    string           `json:"email"`
	Name     string           `json:"name"`
	Password string           `json:"password"`
	Roles    []gatehouse.Role `json:"roles"`
}

// UserPatch is the input for UpdateUser; nil fields stay as they are.
type UserPatch struct {
	Name     *string               `json:"name"`
	Roles    *[]gatehouse.Role     `json:"roles"`
	Status   *gatehouse.UserStatus `json:"status"`
	Password *string               `json:"password"`
}

func checkRoles(rs []gatehouse.Role) (gatehouse.Roles, error) {
	for _, r := range rs {
		if !gatehouse.ValidRole(r) {
			return nil, gatehouse.Invalid("Unknown role %q; roles are admin and developer", string(r))
		}
	}
	return gatehouse.NormalizeRoles(rs), nil
}

// Users lists the users of p's account. Any authenticated principal may.
func (s *Service) Users(ctx context.Context, p *gatehouse.Principal, page gatehouse.Page) ([]*gatehouse.User, string, error) {
	return s.Store.Users(ctx, p.AccountID, page)
}

// User returns a user of p's account (not_found otherwise).
func (s *Service) User(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.User, error) {
	return s.Store.User(ctx, p.AccountID, id)
}

// CreateUser adds a user to p's account. Admins only. Returns
// invalid_request for bad input and conflict when the e-mail is taken
// anywhere on the server.
func (s *Service) CreateUser(ctx context.Context, p *gatehouse.Principal, in NewUser) (*gatehouse.User, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	u, err := s.newUser(p.AccountID, in)
	if err != nil {
		return nil, err
	}
	if err := s.Store.CreateUser(ctx, u, s.audit(ctx, p, "user.create", "user", u.ID,
		map[string]string{"email": u.Email, "roles": u.Roles.String()})); err != nil {
		return nil, err
	}
	return u, nil
}

func (s *Service) newUser(accountID string, in NewUser) (*gatehouse.User, error) {
	email, err := checkEmail("email", in.Email)
	if err != nil {
		return nil, err
	}
	name, err := checkName("name", in.Name, MaxNameLen, false)
	if err != nil {
		return nil, err
	}
	roles, err := checkRoles(in.Roles)
	if err != nil {
		return nil, err
	}
	hash := ""
	if in.Password != "" {
		if hash, err = s.hashPassword("password", in.Password); err != nil {
			return nil, err
		}
	}
	now := s.now()
	return &gatehouse.User{
		ID: gatehouse.NewID("usr"), AccountID: accountID, Email: email, Name: name,
		Status: gatehouse.StatusActive, Roles: roles, PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}, nil
}

// UpdateUser changes a user of p's account. Admins only. Disabling a user
// revokes every token they hold and their API access application at once
// (re-enabling brings none back); removing the admin role revokes the API
// access application; a new password revokes their refresh tokens.
func (s *Service) UpdateUser(ctx context.Context, p *gatehouse.Principal, id string, patch UserPatch) (*gatehouse.User, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	u, err := s.Store.User(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	var (
		rev     store.Revocation
		details = map[string]string{}
	)
	if patch.Name != nil {
		if u.Name, err = checkName("name", *patch.Name, MaxNameLen, false); err != nil {
			return nil, err
		}
		details["name"] = u.Name
	}
	if patch.Roles != nil {
		roles, err := checkRoles(*patch.Roles)
		if err != nil {
			return nil, err
		}
		if u.IsAdmin() && !roles.Has(gatehouse.RoleAdmin) {
			rev.APIApplication = true
		}
		u.Roles = roles
		details["roles"] = roles.String()
	}
	if patch.Status != nil {
		switch *patch.Status {
		case gatehouse.StatusActive:
		case gatehouse.StatusDisabled:
			rev.AllTokens, rev.APIApplication = true, true
		default:
			return nil, gatehouse.Invalid("status must be active or disabled")
		}
		u.Status = *patch.Status
		details["status"] = string(u.Status)
	}
	if patch.Password != nil {
		if u.PasswordHash, err = s.hashPassword("password", *patch.Password); err != nil {
			return nil, err
		}
		rev.RefreshTokens = true
		details["password"] = "changed"
	}
	u.UpdatedAt = s.now()
	if err := s.Store.UpdateUser(ctx, u, rev, s.audit(ctx, p, "user.update", "user", u.ID, details)); err != nil {
		return nil, err
	}
	return u, nil
}
