package service

import (
	"context"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// DeleteUser deletes a user of p's account (SPEC §10.8). Admins only
// (forbidden); the operator is never deleted, nor the account's last
// active admin (conflict). In one transaction:
//   - the user's epochs advance, so every token and admin UI session they
//     hold stops working on every node at once, and any issued while the
//     delete commits is dead on arrival;
//   - their client credentials and API access application are deleted
//     (with every token those issued);
//   - they leave every workspace, and their address is free for a new
//     user anywhere on the server;
//   - the audit log keeps every entry about them, under their id, and
//     gains user.delete.
//
// The user is not_found afterwards, by id, address or list.
func (s *Service) DeleteUser(ctx context.Context, p *gatehouse.Principal, id string) error {
	if err := RequireAdmin(p); err != nil {
		return err
	}
	return s.deleteUser(ctx, p, p.AccountID, id)
}

// DeleteAccountUser is DeleteUser for the operator, in any account
// (DELETE /v1/accounts/{id}/users/{user_id}); the entry user.delete is
// written to that account's audit log and, when it is another, to the
// operator's too.
func (s *Service) DeleteAccountUser(ctx context.Context, p *gatehouse.Principal, accountID, id string) error {
	if err := RequireOperator(p); err != nil {
		return err
	}
	return s.deleteUser(ctx, p, accountID, id)
}

func (s *Service) deleteUser(ctx context.Context, p *gatehouse.Principal, accountID, id string) error {
	return s.update(ctx, func(tx *store.Tx) error {
		// Lock the account first: see requireAnotherAdmin. For
		// another account, the operator is read again first.
		if _, err := lockAccountFor(tx, p, accountID); err != nil {
			return err
		}
		u, err := tx.User(accountID, id)
		if err != nil {
			return err
		}
		if err := requireMayChange(p, u); err != nil {
			return err
		}
		if u.Operator {
			return gatehouse.Errorf(gatehouse.EConflict, "The operator cannot be deleted")
		}
		if u.Active() && u.IsAdmin() {
			if err := requireAnotherAdmin(tx, u); err != nil {
				return err
			}
		}
		now := s.now()
		if err := tx.DeleteUser(u, now); err != nil {
			return err
		}
		n, err := tx.DeleteCredentials(u.AccountID, u.ID, "", now)
		if err != nil {
			return err
		}
		if _, err := tx.DeleteAPIApplication(u.ID, now); err != nil {
			return err
		}
		e := s.audit(ctx, p, "user.delete", "user", u.ID,
			map[string]string{"email": u.Email, "credentials": strconv.Itoa(n)})
		if err := s.record(tx, e); err != nil {
			return err
		}
		if u.AccountID != p.AccountID {
			mirror := *e
			mirror.ID, mirror.AccountID = gatehouse.NewID("aud"), u.AccountID
			return s.record(tx, &mirror)
		}
		return nil
	})
}

// UserAnywhere returns the user with the address email in any account and
// that account: the operator's look-up (GET /v1/users?email=E
// &all_accounts=true), forbidden to anyone else, not_found when no user
// holds the address.
func (s *Service) UserAnywhere(ctx context.Context, p *gatehouse.Principal, email string) (*gatehouse.User, *gatehouse.Account, error) {
	if err := RequireOperator(p); err != nil {
		return nil, nil, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.store.Account(ctx, u.AccountID)
	if err != nil {
		return nil, nil, err
	}
	return u, a, nil
}

// UserByEmail returns the user of p's account with the address email, or
// not_found (a user of another account is not found).
func (s *Service) UserByEmail(ctx context.Context, p *gatehouse.Principal, email string) (*gatehouse.User, error) {
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	if u.AccountID != p.AccountID {
		return nil, gatehouse.NotFound("user")
	}
	return u, nil
}
