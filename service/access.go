package service

import (
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Who may do what: every service method starts with one of these, and the
// HTTP layers check nothing themselves.

// RequireAdmin returns forbidden unless p is an admin of its account.
func RequireAdmin(p *gatehouse.Principal) error {
	if !p.IsAdmin() {
		return gatehouse.Forbidden("This needs the admin role")
	}
	return nil
}

// requireAdminNow is RequireAdmin again inside a transaction that has
// locked p's account. Every change of users locks the account row first,
// so any demotion or disable of p's user has committed by now: read
// afresh, an admin demoted or disabled (even if enabled again since: a
// new epoch) while their request was in flight changes no user (they
// cannot undo their own demotion in a race). The
// anonymous admin of an API token passes.
func requireAdminNow(tx *store.Tx, p *gatehouse.Principal) error {
	if err := requireAccountActiveNow(tx, p.AccountID); err != nil {
		return err
	}
	if p.User == nil {
		return nil
	}
	u, err := tx.User(p.AccountID, p.User.ID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound || (err == nil && !(u.Active() && u.IsAdmin() && u.Epoch == p.User.Epoch)) {
		return gatehouse.Forbidden("This needs the admin role")
	}
	return err
}

// requireAccountActiveNow refuses, inside a transaction that took the
// account (locked or shared), a write in the name of an account suspended
// meanwhile: a suspension that committed first is seen (invalid_token, as
// the account's every credential is from then on), one that comes later
// waits for this write. A write in flight when its account is suspended
// thus changes nothing, as one of a user disabled meanwhile.
func requireAccountActiveNow(tx *store.Tx, accountID string) error {
	active, err := tx.AccountActive(accountID)
	if err == nil && !active {
		return accountSuspended()
	}
	return err
}

func accountSuspended() error {
	return gatehouse.Errorf(gatehouse.EInvalidToken, "This account is suspended")
}

// requireOperatorNow returns forbidden unless p, read again inside tx, is
// still the operator: an active admin of the epoch p authenticated in
// (the operator flag is never taken away, so losing the admin role or
// being disabled is losing the operator's power). It takes p's account
// shared (requireAdminShared); a change of another account calls it
// before locking that account, a change of p's own after.
func requireOperatorNow(tx *store.Tx, p *gatehouse.Principal) error {
	err := requireAdminShared(tx, p)
	if gatehouse.ErrorCode(err) == gatehouse.EForbidden {
		return gatehouse.Forbidden("Only the operator may manage accounts")
	}
	return err
}

// requireActiveNow reads again, inside tx, the user p acts as, for a
// write made in their name, and returns them (nil for the anonymous admin
// of an API token, who passes). It takes the account shared first: a
// disable or deletion of the user locks the account, so one that
// committed first is seen here (forbidden) and one that comes later waits
// for this write. The user's row is read, not locked, so a write that
// then locks another user (a member added) holds one user lock only and
// cannot deadlock with another that takes them the other way round.
//
// The account and the user are two statements, not one join: on
// PostgreSQL (READ COMMITTED) a statement that waits for the account's
// lock reads every row it does not lock from the snapshot it began with,
// so a user read in the same statement would be the user as they were
// before the disable it waited for.
func requireActiveNow(tx *store.Tx, p *gatehouse.Principal) (*gatehouse.User, error) {
	if p.User == nil {
		return nil, requireAccountActiveNow(tx, p.AccountID)
	}
	active, err := tx.ShareActiveAccount(p.AccountID)
	if err != nil {
		return nil, err
	}
	if !active {
		return nil, accountSuspended()
	}
	u, err := tx.UserUnlocked(p.AccountID, p.User.ID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound || (err == nil && (!u.Active() || u.Epoch != p.User.Epoch)) {
		return nil, gatehouse.Forbidden("This user has been disabled")
	}
	return u, err
}

// requireAdminShared is requireAdminNow for a transaction that takes p's
// account shared rather than locked, and then locks another user or their
// rows (an admin's reset of a user's second factors): p's user is read
// after the account (requireActiveNow), not locked, and must still be an
// active admin.
func requireAdminShared(tx *store.Tx, p *gatehouse.Principal) error {
	u, err := requireActiveNow(tx, p)
	if gatehouse.ErrorCode(err) == gatehouse.EForbidden || (err == nil && u != nil && !u.IsAdmin()) {
		return gatehouse.Forbidden("This needs the admin role")
	}
	return err
}

// rolesNow returns, inside tx, p as its roles stand now, for a rule that
// judges by them who may change what (mayManageApp,
// mayManageCredential): its user read again after the account, by
// requireActiveNow (forbidden when disabled or deleted since the request
// authenticated), so that a demotion or a developer's removal that
// committed first is seen, and one that comes later waits. It carries
// p's account, user and method only: p's scopes are judged on p.
func rolesNow(tx *store.Tx, p *gatehouse.Principal) (*gatehouse.Principal, error) {
	u, err := requireActiveNow(tx, p)
	if err != nil {
		return nil, err
	}
	return &gatehouse.Principal{Account: p.Account, AccountID: p.AccountID, User: u, Method: p.Method}, nil
}

// RequireUser returns forbidden unless p acts as a user (not the anonymous
// admin of an API token).
func RequireUser(p *gatehouse.Principal) error {
	if p.User == nil {
		return gatehouse.Forbidden("This needs a user; send the user header with the API token")
	}
	return nil
}

// RequireOperator returns forbidden unless p is the operator.
func RequireOperator(p *gatehouse.Principal) error {
	if !p.IsOperator() {
		return gatehouse.Forbidden("Only the operator may manage accounts")
	}
	return nil
}

// lockUser reads again, inside tx, the user u a request authenticated as,
// for a change that makes a credential on their behalf, and returns it
// locked: its account, then its row, the order UpdateUser locks them in,
// so the two cannot deadlock. A role removal or disable that committed
// first is seen here; one that commits later sees the new credential.
// The caller checks the role on the result. Forbidden if the user has been
// disabled or deleted since the request authenticated.
func lockUser(tx *store.Tx, u *gatehouse.User) (*gatehouse.User, error) {
	if _, err := tx.Account(u.AccountID); err != nil {
		return nil, err
	}
	cur, err := tx.User(u.AccountID, u.ID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, gatehouse.Forbidden("This user has been deleted")
	}
	if err != nil {
		return nil, err
	}
	if !cur.Active() || cur.Epoch != u.Epoch {
		return nil, gatehouse.Forbidden("This user has been disabled")
	}
	return cur, nil
}

// lockAccountUser takes, inside tx, the account shared and then one of
// its users locked, and returns the user (not_found when gone): the order
// in which a change of the account or of a user, a user's deletion and a
// reset of their second factors take them. A transaction that then locks
// the user's own rows (second factors, sign-ins, memberships) and writes
// rows naming the user or the account takes these first, so that it
// cannot deadlock with any of those changes. The account is only shared
// (store.Tx.ShareAccount): the account's token issuance, which shares it
// too, does not wait for such a transaction.
func lockAccountUser(tx *store.Tx, accountID, userID string) (*gatehouse.User, error) {
	if err := tx.ShareAccount(accountID); err != nil {
		return nil, err
	}
	return tx.User(accountID, userID)
}

// lockSelf is lockAccountUser for p's own user, for a change of their
// own second factors: the account shared, then the user locked, and
// returned. A disable or deletion of the user locks the account, so one
// that committed first is seen here (forbidden, as for a user disabled
// since the request authenticated) and one that comes later waits for
// this change.
func lockSelf(tx *store.Tx, p *gatehouse.Principal) (*gatehouse.User, error) {
	u, err := lockAccountUser(tx, p.AccountID, p.User.ID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound || (err == nil && (!u.Active() || u.Epoch != p.User.Epoch)) {
		return nil, gatehouse.Forbidden("This user has been disabled")
	}
	return u, err
}

// lockAccountFor locks account id (tx.Account) for a change by p,
// and reads p again inside tx: for p's own account after locking it, as
// an admin (requireAdminNow), for another as the operator
// (requireOperatorNow) before locking it — p's account is always taken
// first, so two such changes cannot deadlock. An operator or admin
// demoted or disabled while the request was in flight changes nothing.
func lockAccountFor(tx *store.Tx, p *gatehouse.Principal, id string) (*gatehouse.Account, error) {
	if id != p.AccountID {
		if err := requireOperatorNow(tx, p); err != nil {
			return nil, err
		}
		return tx.Account(id)
	}
	a, err := tx.Account(id)
	if err != nil {
		return nil, err
	}
	return a, requireAdminNow(tx, p)
}
