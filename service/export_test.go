package service

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// FailAfterEvent runs, for the tests of other packages, a transaction
// that records a user.created event for p's account and then fails with
// err: nothing of it may be delivered.
var FailAfterEvent = func(ctx context.Context, s *Service, p *gatehouse.Principal, err error) error {
	return s.update(ctx, func(tx *store.Tx) error {
		if e := s.record(tx, s.audit(ctx, p, "user.create", "user", "usr_never", nil)); e != nil {
			return e
		}
		return err
	})
}

// QuotaStage exposes quotaStage to the tests.
var QuotaStage = quotaStage

// PollTooSoon exposes pollTooSoon to the tests.
var PollTooSoon = pollTooSoon
