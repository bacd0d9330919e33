package service

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// NewAccount is the input for CreateAccount.
type NewAccount struct {
	Name          string `json:"name"`
	AdminEmail    string `json:"admin_email"`
	AdminPassword string `json:"admin_password"`
}

// CreateAccount makes an account with its first admin. Operators only.
func (s *Service) CreateAccount(ctx context.Context, p *gatehouse.Principal, in NewAccount) (*gatehouse.Account, *gatehouse.User, error) {
	if err := RequireOperator(p); err != nil {
		return nil, nil, err
	}
	if err := requireOwnAuthority(p, "set a password"); err != nil {
		return nil, nil, err
	}
	a, admin, err := s.newAccount(ctx, in, false)
	if err != nil {
		return nil, nil, err
	}
	err = s.update(ctx, func(tx *store.Tx) error {
		if err := requireOperatorNow(tx, p); err != nil {
			return err
		}
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		if err := tx.CreateUser(admin); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "account.create", "account", a.ID,
			map[string]string{"name": a.Name, "admin_email": admin.Email}))
	})
	if err != nil {
		return nil, nil, err
	}
	return a, admin, nil
}

func (s *Service) newAccount(ctx context.Context, in NewAccount, operator bool) (*gatehouse.Account, *gatehouse.User, error) {
	name, err := checkName("name", in.Name, MaxNameLen, true)
	if err != nil {
		return nil, nil, err
	}
	if in.AdminPassword == "" {
		return nil, nil, gatehouse.Invalid("admin_password is required")
	}
	a := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: name, Status: gatehouse.AccountActive,
		Settings: gatehouse.DefaultSettings(), CreatedAt: s.now()}
	admin, err := s.newUser(ctx, a.ID, NewUser{Email: in.AdminEmail, Password: in.AdminPassword, Roles: []gatehouse.Role{gatehouse.RoleAdmin}})
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EInvalidRequest {
			return nil, nil, gatehouse.Invalid("admin_%s", gatehouse.ErrorMessage(err))
		}
		return nil, nil, err
	}
	admin.Operator = operator
	return a, admin, nil
}

// Accounts lists every account. Operators only.
func (s *Service) Accounts(ctx context.Context, p *gatehouse.Principal, page gatehouse.Page) ([]*gatehouse.Account, string, error) {
	if err := RequireOperator(p); err != nil {
		return nil, "", err
	}
	return s.store.Accounts(ctx, page)
}

// Account returns one account. Operators only.
func (s *Service) Account(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.Account, error) {
	if err := RequireOperator(p); err != nil {
		return nil, err
	}
	return s.store.Account(ctx, id)
}

// AccountPatch is the input for UpdateAccount; nil fields stay as they are.
type AccountPatch struct {
	Name   *string                  `json:"name"`
	Status *gatehouse.AccountStatus `json:"status"`
	// PlatformScopes replaces the platform scopes granted to the account
	// (each must be one of Config.PlatformScopes).
	PlatformScopes *[]gatehouse.Scope `json:"platform_scopes"`
}

// UpdateAccount renames, suspends or reactivates an account. Operators
// only; the operator's own account cannot be suspended (conflict).
// Suspending refuses every credential and session of the account at once,
// on every node; reactivating brings back what had not expired.
func (s *Service) UpdateAccount(ctx context.Context, p *gatehouse.Principal, id string, patch AccountPatch) (*gatehouse.Account, error) {
	if err := RequireOperator(p); err != nil {
		return nil, err
	}
	var name string
	if patch.Name != nil {
		var err error
		if name, err = checkName("name", *patch.Name, MaxNameLen, true); err != nil {
			return nil, err
		}
	}
	if st := patch.Status; st != nil && *st != gatehouse.AccountActive && *st != gatehouse.AccountSuspended {
		return nil, gatehouse.Invalid("status must be active or suspended")
	}
	var platform gatehouse.Scopes
	if patch.PlatformScopes != nil {
		var err error
		if platform, err = s.checkPlatformScopes(*patch.PlatformScopes); err != nil {
			return nil, err
		}
	}
	var out *gatehouse.Account
	err := s.update(ctx, func(tx *store.Tx) error {
		a, err := lockAccountFor(tx, p, id)
		if err != nil {
			return err
		}
		details := map[string]string{}
		if patch.Name != nil {
			a.Name, details["name"] = name, name
		}
		if patch.Status != nil {
			if *patch.Status == gatehouse.AccountSuspended && a.ID == p.AccountID {
				return gatehouse.Errorf(gatehouse.EConflict, "The operator's own account cannot be suspended")
			}
			a.Status, details["status"] = *patch.Status, string(*patch.Status)
		}
		if patch.PlatformScopes != nil {
			a.Settings.PlatformScopes, details["platform_scopes"] = platform, scopesText(platform)
		}
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		out = a
		e := s.audit(ctx, p, "account.update", "account", a.ID, details)
		if err := s.record(tx, e); err != nil {
			return err
		}
		// The account's own admins see it in their log too.
		mirror := *e
		mirror.ID, mirror.AccountID = gatehouse.NewID("aud"), a.ID
		if a.ID == p.AccountID {
			return nil
		}
		return s.record(tx, &mirror)
	})
	return out, err
}

// checkPlatformScopes checks a grant of platform scopes: each must be a
// platform scope of this server.
func (s *Service) checkPlatformScopes(in []gatehouse.Scope) (gatehouse.Scopes, error) {
	ss, err := gatehouse.CheckScopes("platform_scopes", in)
	if err != nil {
		return nil, err
	}
	for _, sc := range ss {
		if !slices.Contains(s.platformScopes, sc) {
			return nil, gatehouse.InvalidField("platform_scopes", fmt.Sprintf("%s is not a platform scope of this server.", sc),
				"platform_scopes: %s is not a platform scope (name it in --gateway-routes or --platform-scopes)", sc)
		}
	}
	if ss == nil {
		ss = gatehouse.Scopes{}
	}
	return ss, nil
}

// SeparatePlatformScopes removes from every account's custom_scopes those
// that grant a platform scope (platformScopeGranted: SPEC §10.8, an
// account can never grant itself a platform scope), once the server knows them, at start. The other custom scopes
// are kept as they are; each removal is audited in the account's log and
// the operator grants platform scopes with UpdateAccount. It returns how
// many accounts changed.
func (s *Service) SeparatePlatformScopes(ctx context.Context) (int, error) {
	if len(s.platformScopes) == 0 {
		return 0, nil
	}
	changed := 0
	page := gatehouse.Page{Limit: gatehouse.MaxPageSize}
	for {
		accounts, next, err := s.store.Accounts(ctx, page)
		if err != nil {
			return changed, err
		}
		for _, acc := range accounts {
			if !slices.ContainsFunc(acc.Settings.CustomScopes, func(sc gatehouse.Scope) bool { return s.platformScopeGranted(sc) != "" }) {
				continue
			}
			var removed gatehouse.Scopes // set by the run that commits
			err := s.update(ctx, func(tx *store.Tx) error {
				removed = nil
				a, err := tx.Account(acc.ID)
				if err != nil {
					return err
				}
				var keep gatehouse.Scopes
				for _, sc := range a.Settings.CustomScopes {
					if s.platformScopeGranted(sc) != "" {
						removed = append(removed, sc)
					} else {
						keep = append(keep, sc)
					}
				}
				if len(removed) == 0 {
					return nil
				}
				if keep == nil {
					keep = gatehouse.Scopes{}
				}
				a.Settings.CustomScopes = keep
				if err := tx.UpdateAccount(a); err != nil {
					return err
				}
				return s.record(tx, &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: a.ID, Actor: "platform-scopes",
					Action: "settings.platform_scopes_separated", TargetType: "account", TargetID: a.ID, CreatedAt: s.now(),
					Details: map[string]string{"removed": removed.String()}})
			})
			if err != nil {
				return changed, err
			}
			if len(removed) > 0 {
				changed++
				s.logger.Warn("removed platform scopes from an account's custom scopes; grant them with PATCH /v1/accounts/{id} {\"platform_scopes\"}",
					"account_id", acc.ID, "scopes", removed.String())
			}
		}
		if next == "" {
			return changed, nil
		}
		page.After = next
	}
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
	a, admin, err := s.newAccount(ctx, NewAccount{Name: "default", AdminEmail: email, AdminPassword: pw}, true)
	if err != nil {
		return false, "", err
	}
	err = s.update(ctx, func(tx *store.Tx) error {
		if created, err = tx.ClaimBootstrap(a.ID); err != nil || !created {
			return err
		}
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		if err := tx.CreateUser(admin); err != nil {
			return err
		}
		return s.record(tx, &gatehouse.AuditEntry{
			ID: gatehouse.NewID("aud"), AccountID: a.ID, ActorID: admin.ID, Actor: "bootstrap", Action: "account.bootstrap",
			TargetType: "account", TargetID: a.ID, CreatedAt: a.CreatedAt,
		})
	})
	if err != nil || !created {
		return false, "", err
	}
	return true, generated, nil
}

// Recover is the break-glass way back in (gatehouse recover): it makes the
// user with e-mail email an active operator-admin of their account —
// creating them in the bootstrap account when absent — with password pw,
// ends their sessions and password-derived tokens, clears their second
// factors (SPEC §10.6), and audits it. It works
// on the store directly, whether or not a server is running; a running
// cluster learns of it through the store's epochs on the next look-up that
// misses its cache.
func (s *Service) Recover(ctx context.Context, email, pw string) (*gatehouse.User, error) {
	addr, err := checkEmail("email", email)
	if err != nil {
		return nil, err
	}
	hash, err := s.hashPassword(ctx, "password", pw)
	if err != nil {
		return nil, err
	}
	var out *gatehouse.User
	err = s.update(ctx, func(tx *store.Tx) error {
		u, err := tx.UserByEmail(addr)
		created := false
		switch {
		case gatehouse.ErrorCode(err) == gatehouse.ENotFound:
			accountID, err := tx.BootstrapAccountID()
			if err != nil {
				return err
			}
			now := s.now()
			u = &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: accountID, Email: addr, Status: gatehouse.StatusActive,
				CreatedAt: now, UpdatedAt: now}
			created = true
		case err != nil:
			return err
		}
		u.Roles = gatehouse.NormalizeRoles(append(u.Roles, gatehouse.RoleAdmin))
		u.Status, u.Operator, u.PasswordHash, u.UpdatedAt = gatehouse.StatusActive, true, hash, s.now()
		u.PasswordEpoch++
		if created {
			err = tx.CreateUser(u)
		} else {
			err = tx.UpdateUser(u)
		}
		if err != nil {
			return err
		}
		// The operator may have lost the second factor too (SPEC §10.6).
		factors, err := tx.ClearFactors(u.ID)
		if err != nil {
			return err
		}
		if err := tx.DeleteSignIns(u.ID); err != nil {
			return err
		}
		out = u
		return s.record(tx, &gatehouse.AuditEntry{
			ID: gatehouse.NewID("aud"), AccountID: u.AccountID, ActorID: u.ID, Actor: "recover", Action: "user.recover",
			TargetType: "user", TargetID: u.ID, CreatedAt: s.now(), Details: map[string]string{"second_factors_cleared": strconv.Itoa(factors)},
		})
	})
	return out, err
}
