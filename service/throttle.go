package service

import (
	"context"
	"errors"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// ClearThrottle forgets the failed sign-ins of a user of p's account, from
// every address, so that they can sign in again at once (SPEC §9.3). Admins
// only, and the operator's only for the operator (requireMayChange: no
// other admin lifts the throttle on guesses at the operator's password); a
// user of another account is not_found. Failures counted against
// client addresses stay. The audit entry is written first, so no clear goes
// unrecorded; temporarily_unavailable when the throttle cannot be reached.
func (s *Service) ClearThrottle(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.User, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	u, err := s.store.User(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	if err := requireMayChange(p, u); err != nil {
		return nil, err
	}
	if err := s.update(ctx, func(tx *store.Tx) error {
		if err := requireAdminShared(tx, p); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.throttle_clear", "user", u.ID, nil))
	}); err != nil {
		return nil, err
	}
	if err := s.throttle.Clear(ctx, gatehouse.EmailKey(u.Email)); err != nil {
		return nil, errors.Join(gatehouse.Errorf(gatehouse.EUnavailable, "The sign-in throttle is unavailable; try again shortly"), err)
	}
	return u, nil
}
