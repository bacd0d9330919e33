package service

import (
	"context"
	"slices"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/store"
)

// NewUser is the input for CreateUser.
type NewUser struct {
	Email    string           `json:"email"`
	Name     string           `json:"name"`
	Password string           `json:"password"`
	Roles    []gatehouse.Role `json:"roles"`
	// Patch sets the user's metadata and external id (SPEC §10.5).
	plan.Patch
}

// UserPatch is the input for UpdateUser; nil fields stay as they are.
type UserPatch struct {
	Name     *string               `json:"name"`
	Roles    *[]gatehouse.Role     `json:"roles"`
	Status   *gatehouse.UserStatus `json:"status"`
	Password *string               `json:"password"`
	// RevokeCredentials, when the patch takes the developer role away,
	// deletes the user's client credentials too (otherwise they keep
	// working, as DELETE /v1/developers/{id} does).
	RevokeCredentials bool `json:"revoke_credentials"`
	// Patch changes the user's metadata and external id (SPEC §10.5).
	plan.Patch
}

func checkRoles(rs []gatehouse.Role) (gatehouse.Roles, error) {
	for _, r := range rs {
		if !gatehouse.ValidRole(r) {
			return nil, gatehouse.Invalid("Unknown role %q; roles are admin and developer", string(r))
		}
	}
	return gatehouse.NormalizeRoles(rs), nil
}

// MaxQueryLen bounds the text of a search.
const MaxQueryLen = 200

// searchHint is the hint of a search text that checkName refused.
const searchHint = "Search for at most 200 characters on one line, without tabs or other control characters."

// checkUserFilter validates a filter of users (invalid_request).
func checkUserFilter(f gatehouse.UserFilter) (gatehouse.UserFilter, error) {
	q, err := checkName("q", f.Query, MaxQueryLen, false)
	if err != nil {
		return f, gatehouse.Field(err, "q", searchHint)
	}
	f.Query = q
	switch f.Role {
	case "", gatehouse.RoleAdmin, gatehouse.RoleDeveloper, gatehouse.RoleMember:
	default:
		return f, gatehouse.Invalid("role must be admin, developer or member")
	}
	switch f.Status {
	case "", gatehouse.StatusActive, gatehouse.StatusDisabled:
	default:
		return f, gatehouse.Invalid("status must be active or disabled")
	}
	return f, nil
}

// Users lists the users of p's account that match f, one page in id order
// (invalid_request for a bad filter). Any authenticated principal may.
func (s *Service) Users(ctx context.Context, p *gatehouse.Principal, f gatehouse.UserFilter, page gatehouse.Page) ([]*gatehouse.User, gatehouse.Cursors, error) {
	f, err := checkUserFilter(f)
	if err != nil {
		return nil, gatehouse.Cursors{}, err
	}
	us, cur, err := s.store.FindUsers(ctx, p.AccountID, f, page)
	if err != nil {
		return nil, cur, err
	}
	err = fillPlans(ctx, s, p.AccountID, us, func(u *gatehouse.User) (string, string) { return u.ID, u.ID },
		func(u *gatehouse.User) *gatehouse.Plan { return &u.Plan })
	return us, cur, err
}

// CountUsers counts the users of p's account that match f.
func (s *Service) CountUsers(ctx context.Context, p *gatehouse.Principal, f gatehouse.UserFilter) (int, error) {
	f, err := checkUserFilter(f)
	if err != nil {
		return 0, err
	}
	return s.store.CountUsers(ctx, p.AccountID, f)
}

// User returns a user of p's account (not_found otherwise).
func (s *Service) User(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.User, error) {
	u, err := s.store.User(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	plans, err := s.store.Plans(ctx, p.AccountID, u.ID)
	if err != nil {
		return nil, err
	}
	u.Plan, err = s.withRemaining(ctx, p.AccountID, u.ID, plans[u.ID])
	return u, err
}

// CreateUser adds a user to p's account. Admins only. Returns
// invalid_request for bad input and conflict when the e-mail is taken
// anywhere on the server.
func (s *Service) CreateUser(ctx context.Context, p *gatehouse.Principal, in NewUser) (*gatehouse.User, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	if in.Password != "" {
		if err := requireOwnAuthority(p, "set a password"); err != nil {
			return nil, err
		}
	}
	if err := checkPlan(gatehouse.PlanUser, in.Patch); err != nil {
		return nil, err
	}
	u, err := s.newUser(ctx, p.AccountID, in)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Account(p.AccountID); err != nil { // lock: see requireAdminNow
			return err
		}
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		if in.Password != "" || len(u.Roles) > 0 {
			if err := mayGive(p, u); err != nil {
				return err
			}
		}
		if err := tx.CreateUser(u); err != nil {
			return err
		}
		details := map[string]string{"email": u.Email, "roles": u.Roles.String()}
		if u.Plan, err = s.setPlan(tx, u.AccountID, gatehouse.PlanUser, u.ID, in.Patch, details); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.create", "user", u.ID, details))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func (s *Service) newUser(ctx context.Context, accountID string, in NewUser) (*gatehouse.User, error) {
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
		if hash, err = s.hashPassword(ctx, "password", in.Password); err != nil {
			return nil, err
		}
	}
	now := s.now()
	return &gatehouse.User{
		ID: gatehouse.NewID("usr"), AccountID: accountID, Email: email, Name: name,
		Status: gatehouse.StatusActive, Roles: roles, PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}, nil
}

// requireMayChange returns forbidden unless p may change user u: only the
// operator may change the operator (password, roles, status, name).
func requireMayChange(p *gatehouse.Principal, u *gatehouse.User) error {
	if u.Operator && !p.IsOperator() {
		return gatehouse.Forbidden("Only the operator may change the operator")
	}
	return nil
}

// requireAnotherAdmin returns conflict if removing u's admin role or
// disabling u would leave u's account without an active admin. The account
// row must be locked in tx first, so that two such changes cannot both
// see the other admin.
func requireAnotherAdmin(tx *store.Tx, u *gatehouse.User) error {
	n, err := tx.CountActiveAdmins(u.AccountID)
	if err != nil {
		return err
	}
	if n <= 1 {
		return lastAdmin()
	}
	return nil
}

func lastAdmin() error {
	return gatehouse.Errorf(gatehouse.EConflict, "This is the account's last active admin; make another user an admin first")
}

// checkedPatch is a UserPatch after validation: the values to write.
type checkedPatch struct {
	UserPatch
	name, pwHash string
	roles        gatehouse.Roles
}

// checkUserPatch validates patch; hash, when set, hashes a new password
// (slow: never inside a transaction).
func (s *Service) checkUserPatch(ctx context.Context, patch UserPatch, hash bool) (checkedPatch, error) {
	c := checkedPatch{UserPatch: patch}
	if err := checkPlan(gatehouse.PlanUser, patch.Patch); err != nil {
		return c, err
	}
	var err error
	if patch.Name != nil {
		if c.name, err = checkName("name", *patch.Name, MaxNameLen, false); err != nil {
			return c, err
		}
	}
	if patch.Roles != nil {
		if c.roles, err = checkRoles(*patch.Roles); err != nil {
			return c, err
		}
	}
	if patch.Status != nil && *patch.Status != gatehouse.StatusActive && *patch.Status != gatehouse.StatusDisabled {
		return c, gatehouse.InvalidField("status", "Choose active or disabled.", "status must be active or disabled")
	}
	if patch.Password != nil {
		if err := checkNewPassword("password", *patch.Password); err != nil {
			return c, err
		}
		if hash {
			if c.pwHash, err = s.passwords.Hash(ctx, *patch.Password); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// patchEffect is what applying a patch to a user does besides writing it.
type patchEffect struct {
	details                    map[string]string
	disables, dropApp          bool
	losesAdmin, losesDeveloper bool
	removesLastAdmin           bool
}

// apply changes u as c says and reports the consequences; wasActiveAdmin
// is read before.
func (c checkedPatch) apply(u *gatehouse.User) patchEffect {
	e := patchEffect{details: map[string]string{}}
	wasActiveAdmin := u.Active() && u.IsAdmin()
	if c.Name != nil {
		u.Name, e.details["name"] = c.name, c.name
	}
	if c.Roles != nil {
		e.losesAdmin = u.IsAdmin() && !c.roles.Has(gatehouse.RoleAdmin)
		e.losesDeveloper = u.Roles.Has(gatehouse.RoleDeveloper) && !c.roles.Has(gatehouse.RoleDeveloper)
		e.dropApp = e.losesAdmin
		u.Roles, e.details["roles"] = c.roles, c.roles.String()
	}
	if c.Status != nil {
		if *c.Status == gatehouse.StatusDisabled && u.Active() {
			u.Epoch++
			e.disables, e.dropApp = true, true
		}
		u.Status, e.details["status"] = *c.Status, string(*c.Status)
	}
	if c.Password != nil {
		u.PasswordHash, e.details["password"] = c.pwHash, "changed"
		u.PasswordEpoch++
	}
	e.removesLastAdmin = wasActiveAdmin && !(u.Active() && u.IsAdmin())
	return e
}

// UpdateUser changes a user of p's account, in one transaction with its
// consequences and audit entry. Admins only; only the operator may change
// the operator; the account's last active admin can neither lose the role
// nor be disabled (conflict).
//   - Disabling advances the user's epoch: every token and session they
//     hold, and any issued while the disable commits, stops working for
//     good (re-enabling brings none back); their API access application is
//     deleted.
//   - Removing the admin role deletes the API access application.
//   - Removing the developer role keeps their client credentials working,
//     unless RevokeCredentials is set: then they are deleted too.
//   - A new password advances the password epoch: every password-derived
//     token and admin UI session of the user stops working, except the
//     credential making the change when it is the user's own. Separate
//     credentials (API tokens, client credentials, the API access
//     application) keep working.
func (s *Service) UpdateUser(ctx context.Context, p *gatehouse.Principal, id string, patch UserPatch) (*gatehouse.User, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	if patch.Password != nil {
		if err := requireOwnAuthority(p, "set a password"); err != nil {
			return nil, err
		}
	}
	// Validate and hash outside the transaction: nothing is locked while
	// the slow hash runs.
	c, err := s.checkUserPatch(ctx, patch, true)
	if err != nil {
		return nil, err
	}
	var out *gatehouse.User
	err = s.update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Account(p.AccountID); err != nil { // lock: see requireAnotherAdmin
			return err
		}
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		u, err := tx.User(p.AccountID, id)
		if err != nil {
			return err
		}
		if err := requireMayChange(p, u); err != nil {
			return err
		}
		if patch.Password != nil && u.ID == p.UserID() {
			if err := requireEpochsKept(p, u); err != nil {
				return err
			}
		}
		becomesAdmin := c.Roles != nil && c.roles.Has(gatehouse.RoleAdmin)
		if patch.Password != nil && (u.ID == p.UserID() || u.IsAdmin() || becomesAdmin) {
			// A credential that is not a sign-in (an application's token,
			// an API token, a client credential) never sets its own user's
			// password, nor an admin's: that would hand it an admin's
			// console.
			if err := requireSignIn(p); err != nil {
				return err
			}
		}
		reach := userReach(p.Account, u, nil) // what u's credentials may do before the change
		had := slices.Clone(u.Roles)
		e := c.apply(u)
		if patch.Password != nil || slices.ContainsFunc(u.Roles, func(r gatehouse.Role) bool { return !had.Has(r) }) {
			if err := mayGive(p, u); err != nil {
				return err
			}
		}
		if e.removesLastAdmin {
			if err := requireAnotherAdmin(tx, u); err != nil {
				return err
			}
		}
		u.UpdatedAt = s.now()
		if err := tx.UpdateUser(u); err != nil {
			return err
		}
		if u.Plan, err = s.setPlan(tx, u.AccountID, gatehouse.PlanUser, u.ID, patch.Patch, e.details); err != nil {
			return err
		}
		if e.dropApp {
			if _, err := tx.DeleteAPIApplication(u.ID, u.UpdatedAt); err != nil {
				return err
			}
		}
		if patch.Password != nil && p.UserID() == u.ID && u.Active() {
			// The user's own change keeps the credential it was made with.
			if err := tx.KeepCredential(p.CredentialID, p.Method, u); err != nil {
				return err
			}
		}
		out = u
		if err := s.record(tx, s.audit(ctx, p, "user.update", "user", u.ID, e.details)); err != nil {
			return err
		}
		if e.losesDeveloper && patch.RevokeCredentials {
			return s.revokeAllCredentials(ctx, tx, p, u, reach)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// requireEpochsKept returns forbidden unless u, p's own user read again
// inside the transaction, is still in the epochs it was in when p
// authenticated. A change of one's own password keeps the credential
// making it, moved onto the user's new epochs (store.Tx.KeepCredential):
// a credential that a disable or another new password ended while the
// change was in flight must not be brought back so, nor its change
// replace that password.
func requireEpochsKept(p *gatehouse.Principal, u *gatehouse.User) error {
	if u.Epoch != p.User.Epoch || u.PasswordEpoch != p.User.PasswordEpoch {
		return gatehouse.Forbidden("Your password was changed or your user disabled meanwhile; sign in again")
	}
	return nil
}

// revokeAllCredentials deletes every client credential of u inside tx,
// with its audit entry.
func (s *Service) revokeAllCredentials(ctx context.Context, tx *store.Tx, p *gatehouse.Principal, u *gatehouse.User, reach gatehouse.Scopes) error {
	// Nobody acts on more than they hold: every credential of u at once
	// is acted on as u's widest could be — unrestricted, never expiring.
	if err := mayActOn(p, reach, nil); err != nil {
		return err
	}
	n, err := tx.DeleteCredentials(u.AccountID, u.ID, "", s.now())
	if err != nil {
		return err
	}
	return s.record(tx, s.audit(ctx, p, "credential.revoke_all", "user", u.ID, map[string]string{"count": strconv.Itoa(n)}))
}

// ChangeOwnPassword sets a new password for p's own user after checking
// the current one, from the client address from, with the password
// grant's throttle (a wrong current password is invalid_request about
// current_password; too_many_attempts when throttled). As with UpdateUser,
// every password-derived token and admin UI session of the user ends,
// except the credential making the change. The user is read again under
// the account's lock (lockUser, requireEpochsKept): one disabled, or
// given a new password by an admin, while the change was in flight
// changes nothing (forbidden).
func (s *Service) ChangeOwnPassword(ctx context.Context, p *gatehouse.Principal, current, next, from string) error {
	if err := RequireUser(p); err != nil {
		return err
	}
	if p.Method != gatehouse.MethodSession && p.Method != gatehouse.MethodPassword {
		return gatehouse.Forbidden("Change your password with your password, from a sign-in")
	}
	if err := checkNewPassword("new_password", next); err != nil {
		return err
	}
	if _, _, err := s.CheckPassword(ctx, p.User.Email, current, from); err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.EInvalidGrant {
			return gatehouse.InvalidField("current_password", "This is not your current password.", "current_password is wrong")
		}
		return err
	}
	hash, err := s.passwords.Hash(ctx, next)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		u, err := lockUser(tx, p.User)
		if err != nil {
			return err
		}
		if err := requireEpochsKept(p, u); err != nil {
			return err
		}
		u.PasswordHash, u.UpdatedAt = hash, s.now()
		u.PasswordEpoch++
		if err := tx.UpdateUser(u); err != nil {
			return err
		}
		if err := tx.KeepCredential(p.CredentialID, p.Method, u); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.password_change", "user", u.ID, nil))
	})
}
