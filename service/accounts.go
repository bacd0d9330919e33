package service

import (
	"context"
	"crypto/rand"

	"github.com/gatehouse/gatehouse"
)

// NewAccount is the input for CreateAccount.
type NewAccount struct {
	Name          string `json:"name"`
	AdminEmail    string `json:"admin_email"`
	AdminPassword string `json:"admin_password"`
}

// CreateAccount makes an account with its first admin. Operators only.
func (s *Service) CreateAccount(ctx context.Context, p *gatehouse.Principal, in NewAccount) (*gatehouse.Account, *gatehouse.User, error) {
	if !p.IsOperator() {
		return nil, nil, gatehouse.Forbidden("Only an operator may create accounts")
	}
	a, admin, err := s.newAccount(in, false)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Store.CreateAccount(ctx, a, admin, s.audit(ctx, p, "account.create", "account", a.ID,
		map[string]string{"name": a.Name, "admin_email": admin.Email})); err != nil {
		return nil, nil, err
	}
	return a, admin, nil
}

func (s *Service) newAccount(in NewAccount, operator bool) (*gatehouse.Account, *gatehouse.User, error) {
	name, err := checkName("name", in.Name, MaxNameLen, true)
	if err != nil {
		return nil, nil, err
	}
	if in.AdminPassword == "" {
		return nil, nil, gatehouse.Invalid("admin_password is required")
	}
	a := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: name, Settings: gatehouse.DefaultSettings(), CreatedAt: s.now()}
	admin, err := s.newUser(a.ID, NewUser{Email: in.AdminEmail, Password: in.AdminPassword, Roles: []gatehouse.Role{gatehouse.RoleAdmin}})
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EInvalidRequest {
			return nil, nil, gatehouse.Invalid("admin_%s", gatehouse.ErrorMessage(err))
		}
		return nil, nil, err
	}
	admin.Operator = operator
	return a, admin, nil
}

// Bootstrap makes the account "default" and its operator-admin when the
// store is empty. With an empty password it generates one and returns it
// (to be shown once); otherwise it returns "". created is false when the
// store was already bootstrapped, which is safe to race.
func (s *Service) Bootstrap(ctx context.Context, email, pw string) (created bool, generated string, err error) {
	if pw == "" {
		generated = rand.Text()
		pw = generated
	}
	a, admin, err := s.newAccount(NewAccount{Name: "default", AdminEmail: email, AdminPassword: pw}, true)
	if err != nil {
		return false, "", err
	}
	created, err = s.Store.Bootstrap(ctx, a, admin)
	if !created {
		generated = ""
	}
	return created, generated, err
}
