package service

import (
	"context"
	"encoding/json"

	"github.com/gatehouse/gatehouse"
)

// Settings returns p's account settings. Admins only.
func (s *Service) Settings(ctx context.Context, p *gatehouse.Principal) (gatehouse.Settings, error) {
	if err := RequireAdmin(p); err != nil {
		return gatehouse.Settings{}, err
	}
	a, err := s.Store.Account(ctx, p.AccountID)
	if err != nil {
		return gatehouse.Settings{}, err
	}
	return a.Settings, nil
}

// UpdateSettings applies patch to p's account settings: every value is
// validated, or nothing changes. Admins only.
func (s *Service) UpdateSettings(ctx context.Context, p *gatehouse.Principal, patch gatehouse.SettingsPatch) (gatehouse.Settings, error) {
	cur, err := s.Settings(ctx, p)
	if err != nil {
		return cur, err
	}
	next, err := patch.Apply(cur)
	if err != nil {
		return cur, err
	}
	body, _ := json.Marshal(patch)
	if err := s.Store.UpdateSettings(ctx, p.AccountID, next, s.audit(ctx, p, "settings.update", "account", p.AccountID,
		map[string]string{"change": string(body)})); err != nil {
		return cur, err
	}
	return next, nil
}

// Audit lists p's account's audit log, newest first. Admins only.
func (s *Service) Audit(ctx context.Context, p *gatehouse.Principal, page gatehouse.Page) ([]*gatehouse.AuditEntry, string, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, "", err
	}
	return s.Store.Audit(ctx, p.AccountID, page)
}
