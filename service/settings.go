package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Settings returns p's account settings. Admins only.
func (s *Service) Settings(ctx context.Context, p *gatehouse.Principal) (gatehouse.Settings, error) {
	if err := RequireAdmin(p); err != nil {
		return gatehouse.Settings{}, err
	}
	a, err := s.store.Account(ctx, p.AccountID)
	if err != nil {
		return gatehouse.Settings{}, err
	}
	st := a.Settings
	if st.SSO, err = s.ssoView(ctx, p.AccountID); err != nil {
		return gatehouse.Settings{}, err
	}
	return st, nil
}

// UpdateSettings applies patch to p's account settings: every value is
// validated, or nothing changes. Admins only.
func (s *Service) UpdateSettings(ctx context.Context, p *gatehouse.Principal, patch gatehouse.SettingsPatch) (gatehouse.Settings, error) {
	if err := RequireAdmin(p); err != nil {
		return gatehouse.Settings{}, err
	}
	// Scope lists are checked before any other work.
	if patch.CustomScopes != nil {
		if _, err := gatehouse.CheckScopes("custom_scopes", *patch.CustomScopes); err != nil {
			return gatehouse.Settings{}, err
		}
		for _, sc := range *patch.CustomScopes {
			switch ps := s.platformScopeGranted(sc); {
			case ps == sc:
				return gatehouse.Settings{}, gatehouse.InvalidField("custom_scopes", fmt.Sprintf("%s is a platform scope: the operator grants it.", sc),
					"custom_scopes: %s is a platform scope; the operator grants it to the account (platform_scopes) and admins map it to roles (role_scopes)", sc)
			case ps != "":
				return gatehouse.Settings{}, gatehouse.InvalidField("custom_scopes", fmt.Sprintf("%s would grant the platform scope %s: the operator grants it.", sc, ps),
					"custom_scopes: %s would grant the platform scope %s (a :write scope grants its :read); the operator grants platform scopes to the account (platform_scopes)", sc, ps)
			}
		}
	}
	if patch.RoleScopes != nil {
		if len(*patch.RoleScopes) > len(gatehouse.RoleScopeKeys) {
			return gatehouse.Settings{}, gatehouse.Invalid("role_scopes maps at most admin, developer and member")
		}
		for k, v := range *patch.RoleScopes {
			if _, err := gatehouse.CheckScopes("role_scopes."+k, v); err != nil {
				return gatehouse.Settings{}, err
			}
		}
	}
	// The single sign-on is checked, and its issuer discovered, before
	// the transaction: discovery is a request to the provider.
	var nextSSO, ssoBase *store.SSOConfig
	if patch.SSO != nil {
		// A provider the caller chooses signs people in to the console.
		if err := requireOwnAuthority(p, "set up single sign-on"); err != nil {
			return gatehouse.Settings{}, err
		}
		// It signs anyone in as any admin of the account: a restricted
		// credential must hold what an admin may do (mayGive).
		if err := mayGive(p, &gatehouse.User{Roles: gatehouse.Roles{gatehouse.RoleAdmin}}); err != nil {
			return gatehouse.Settings{}, err
		}
		var err error
		if nextSSO, ssoBase, err = s.nextSSO(ctx, p.AccountID, patch.SSO); err != nil {
			return gatehouse.Settings{}, err
		}
	}
	var next gatehouse.Settings
	err := s.update(ctx, func(tx *store.Tx) error {
		a, err := tx.Account(p.AccountID)
		if err != nil {
			return err
		}
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		before := a.Settings.MaxCredentialLifetimeDays
		if next, err = patch.Apply(a.Settings); err != nil {
			return err
		}
		a.Settings = next
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		capped := 0
		if days := next.MaxCredentialLifetimeDays; days > 0 && (before <= 0 || days < before) {
			// A lowered bound holds for what exists too: nothing of the
			// account lives longer than it from now on.
			if capped, err = tx.CapCredentialExpiry(a.ID, s.lifetimeLimit(a).Truncate(time.Microsecond)); err != nil {
				return err
			}
		}
		if patch.SSO != nil {
			if err := s.writeSSO(ctx, tx, p, nextSSO, ssoBase); err != nil {
				return err
			}
			next.SSO = viewSSO(nextSSO)
		} else {
			c, err := tx.SSOConfig(p.AccountID)
			if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
				return err
			}
			next.SSO = viewSSO(c)
		}
		logged := patch
		logged.SSO = patch.SSO.Redacted()
		body, _ := json.Marshal(logged)
		details := map[string]string{"change": string(body)}
		if capped > 0 {
			details["credentials_capped"] = strconv.Itoa(capped)
		}
		return s.record(tx, s.audit(ctx, p, "settings.update", "account", p.AccountID, details))
	})
	return next, err
}

// AuditQuery is a filter of the audit log as people and the API write it
// (see gatehouse.AuditFilter): From and To are days (YYYY-MM-DD, in UTC,
// both included) or RFC 3339 times; empty means no bound.
type AuditQuery struct {
	Actor, Action, Target, From, To string
}

// Filter checks q and returns it as a filter (invalid_request, naming the
// field, for a bad value).
func (q AuditQuery) Filter() (gatehouse.AuditFilter, error) {
	f := gatehouse.AuditFilter{}
	for _, v := range []struct {
		field, hint string
		in          string
		out         *string
	}{
		{"actor", searchHint, q.Actor, &f.Actor},
		{"action", searchHint, q.Action, &f.Action},
		{"target", searchHint, q.Target, &f.Target},
	} {
		text, err := checkName(v.field, v.in, MaxQueryLen, false)
		if err != nil {
			return f, gatehouse.Field(err, v.field, v.hint)
		}
		*v.out = text
	}
	var err error
	if f.Since, err = auditTime("from", q.From, false); err != nil {
		return f, err
	}
	if f.Until, err = auditTime("to", q.To, true); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, gatehouse.InvalidField("to", "Choose a day on or after the first one.", "to must be after from")
	}
	return f, nil
}

// auditTime reads a bound of the audit log's time range: a day (the
// start of the day, or of the next day when end is set, so that the day
// is included) or an RFC 3339 time.
func auditTime(field, v string, end bool) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, gatehouse.InvalidField(field, "Enter a day such as 2026-03-01.", "%s must be a date (YYYY-MM-DD) or an RFC 3339 time", field)
}

// Audit lists the entries of p's account's audit log that match q, one
// page, newest first ("after" is older). Admins only.
func (s *Service) Audit(ctx context.Context, p *gatehouse.Principal, q AuditQuery, page gatehouse.Page) ([]*gatehouse.AuditEntry, gatehouse.Cursors, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, gatehouse.Cursors{}, err
	}
	f, err := q.Filter()
	if err != nil {
		return nil, gatehouse.Cursors{}, err
	}
	return s.store.FindAudit(ctx, p.AccountID, f, page)
}

// MaxAuditExport bounds how many entries one export holds.
const MaxAuditExport = 100_000

// AuditExport calls fn with every entry of p's account's audit log that
// matches q, newest first, up to MaxAuditExport. Admins only.
func (s *Service) AuditExport(ctx context.Context, p *gatehouse.Principal, q AuditQuery, fn func(*gatehouse.AuditEntry) error) error {
	page := gatehouse.Page{Limit: gatehouse.MaxPageSize}
	for n := 0; n < MaxAuditExport; {
		es, c, err := s.Audit(ctx, p, q, page)
		if err != nil {
			return err
		}
		for _, e := range es {
			if n == MaxAuditExport {
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
			n++
		}
		if c.Next == "" {
			return nil
		}
		page.After = c.Next
	}
	return nil
}
