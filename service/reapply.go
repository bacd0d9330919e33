package service

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Reapplied is what ReapplyRevocations did: how many entries it re-applied
// by action, and how many it passed over (not revoking, before the
// backup's time, or of something the restored store does not hold).
type Reapplied struct {
	Applied map[string]int `json:"applied"`
	Skipped int            `json:"skipped"`
}

// reapply re-applies one revoking audit entry inside tx; it reports false
// when the entry revokes nothing that the store holds.
type reapply func(s *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error)

// revokingActions are the audit actions that take something away, and how
// each is re-applied after a restore. What cannot be brought back exactly
// is taken away further: a rolled credential's restored secret is the
// retired one, so the credential is deleted; a changed password's restored
// hash is the old one, so the user is left with none (an admin sets a new
// one) and every password-derived credential ends.
var revokingActions = map[string]reapply{
	"credential.delete":       deleteCredential,
	"credential.roll":         deleteCredential,
	"credential.update":       disableCredential,
	"credential.revoke_all":   deleteUserCredentials,
	"credential.leaked":       reapplyLeak,
	"api_token.revoke":        deleteAPIToken,
	"api_token.rolled":        deleteAPIToken,
	"api_token.update":        disableAPIToken,
	"extension.api_tokens":    apiTokensOff,
	"api_access.revoke":       deleteAPIAccess,
	"api_access.reissue":      endAPIAccessLineages,
	AuditLineageRevoked:       revokeFamily,
	"token.revoke":            revokeIssuedToken,
	"user.update":             reapplyUserUpdate,
	"user.delete":             deleteUser,
	"user.password_change":    forgetPassword,
	"user.sessions_end":       endSessions,
	"user.session_end":        endSession,
	"user.mfa_reset":          resetFactors,
	"user.passkey_remove":     removePasskey,
	"account.update":          suspendAccount,
	"sso.remove":              removeSSO,
	"workspace.member_remove": removeMember,
	// Third-party applications (a rolled application's restored secret is
	// the retired one, so it is deleted).
	"app.delete":               deleteApp,
	"app.roll":                 deleteApp,
	"app.authorization_revoke": revokeAuthorization,
	"app.code_reused":          revokeFamily,
}

// RevokingActions returns the audit actions ReapplyRevocations re-applies.
func RevokingActions() []string {
	out := make([]string, 0, len(revokingActions))
	for a := range revokingActions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// ReapplyRevocations re-applies, oldest first, every revoking entry of an
// exported audit log made after since (a backup's time), each in its own
// transaction that every node's cache follows: after a restore, what had
// been revoked since the backup is refused again. It is idempotent:
// entries whose target the store no longer holds, or holds revoked
// already, change nothing more. For the operator's command line only.
func (s *Service) ReapplyRevocations(ctx context.Context, entries []*gatehouse.AuditEntry, since time.Time) (*Reapplied, error) {
	es := slices.Clone(entries)
	slices.SortStableFunc(es, func(a, b *gatehouse.AuditEntry) int { return a.CreatedAt.Compare(b.CreatedAt) })
	out := &Reapplied{Applied: map[string]int{}}
	for _, e := range es {
		fn, ok := revokingActions[e.Action]
		if !ok || !e.CreatedAt.After(since) {
			out.Skipped++
			continue
		}
		applied := false
		err := s.update(ctx, func(tx *store.Tx) (err error) {
			applied, err = fn(s, tx, e, s.now())
			if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
				applied, err = false, nil
			}
			return err
		})
		if err != nil {
			return out, err
		}
		if applied {
			out.Applied[e.Action]++
		} else {
			out.Skipped++
		}
	}
	return out, nil
}

func deleteCredential(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	c, _, err := tx.AccountCredential(e.AccountID, e.TargetID)
	if err != nil {
		return false, err
	}
	n, err := tx.DeleteCredentials(e.AccountID, c.UserID, c.ID, now)
	return n > 0, err
}

func disableCredential(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	if e.Details["enabled"] != "false" {
		return false, nil
	}
	c, _, err := tx.AccountCredential(e.AccountID, e.TargetID)
	if err != nil || !c.Enabled {
		return false, err
	}
	c.Enabled = false
	return true, tx.UpdateCredential(c)
}

func deleteUserCredentials(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	n, err := tx.DeleteCredentials(e.AccountID, e.TargetID, "", now)
	return n > 0, err
}

func deleteAPIToken(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	if err := tx.DeleteAPIToken(e.AccountID, e.TargetID); err != nil {
		return false, err
	}
	return true, nil
}

func disableAPIToken(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	if e.Details["enabled"] != "false" {
		return false, nil
	}
	k, err := tx.APIToken(e.AccountID, e.TargetID)
	if err != nil || !k.Enabled {
		return false, err
	}
	k.Enabled = false
	return true, tx.UpdateAPIToken(k)
}

func deleteAPIAccess(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	return tx.DeleteAPIApplication(e.TargetID, now)
}

func revokeFamily(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	f := e.Details["family_id"]
	if f == "" {
		return false, nil
	}
	if done, err := tx.FamilyRevoked(f); err != nil || done {
		return false, err
	}
	return true, tx.RevokeTokenFamily(f, now)
}

func deleteApp(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	return tx.DeleteApp(e.TargetID, now)
}

func revokeAuthorization(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	c := e.Details["client_id"]
	if c == "" {
		return false, nil
	}
	return tx.DeleteAuthorization(e.TargetID, c, now)
}

func revokeIssuedToken(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	kind, family, revoked, err := tx.TokenFamily(e.TargetID)
	if err != nil || revoked {
		return false, err
	}
	if kind == gatehouse.KindRefresh {
		return true, tx.RevokeTokenFamily(family, now)
	}
	return true, tx.RevokeToken(e.TargetID, now)
}

func apiTokensOff(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	if e.Details["enabled"] != "false" {
		return false, nil
	}
	a, err := tx.Account(e.TargetID)
	if err != nil || !a.Settings.APITokensEnabled {
		return false, err
	}
	a.Settings.APITokensEnabled = false
	return true, tx.UpdateAccount(a)
}

// reapplyLeak re-applies a leaked secret's revocation (an entry whose
// action is "revoked"; one that only notified changes nothing), by the
// kind of what leaked. A leaked application secret is not named in the
// entry, so both of the application's secrets end.
func reapplyLeak(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	if e.Details["action"] != "revoked" {
		return false, nil
	}
	switch e.TargetType {
	case "token":
		kind, family, revoked, err := tx.TokenFamily(e.TargetID)
		if err != nil {
			return false, err
		}
		if family != "" {
			if done, err := tx.FamilyRevoked(family); err != nil {
				return false, err
			} else if !done {
				return true, tx.RevokeTokenFamily(family, now)
			}
		}
		if revoked || kind == "" {
			return false, nil
		}
		return true, tx.RevokeToken(e.TargetID, now)
	case "api_token":
		return tx.RevokeAPITokenForGood(e.AccountID, e.TargetID, now, gatehouse.RevokedLeaked)
	case "credential":
		return tx.RevokeCredentialForGood(e.AccountID, e.TargetID, now, gatehouse.RevokedLeaked)
	case "session":
		return tx.EndSession(e.TargetID)
	case "authorization_code":
		return tx.UseCode(e.TargetID, now)
	case "device_code":
		return tx.UseDevice(e.TargetID, now)
	case "app":
		return tx.EndAppSecrets(e.TargetID)
	}
	return false, nil
}

// endAPIAccessLineages re-applies a reissue of an API access application:
// the lineage it issued is not in the restored store, so every lineage of
// the application there ends (the admin reissues).
func endAPIAccessLineages(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	n, err := tx.RevokeClientFamilies(e.TargetID, "", now)
	return n > 0, err
}

// deleteUser re-applies a user's deletion with its consequences (their
// credentials and API access application end).
func deleteUser(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	u, err := lockAccountThenUser(tx, e)
	if err != nil {
		return false, err
	}
	if err := tx.DeleteUser(u, now); err != nil {
		return false, err
	}
	if _, err := tx.DeleteCredentials(u.AccountID, u.ID, "", now); err != nil {
		return false, err
	}
	_, err = tx.DeleteAPIApplication(u.ID, now)
	return true, err
}

func endSession(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	return tx.EndSession(e.TargetID)
}

// resetFactors re-applies an admin's reset of a user's second factors (a
// lost or stolen device): every factor the restored store holds predates
// it.
func resetFactors(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	if _, err := lockAccountThenUser(tx, e); err != nil {
		return false, err
	}
	n, err := tx.ClearFactors(e.TargetID)
	if err != nil {
		return false, err
	}
	return n > 0, tx.DeleteSignIns(e.TargetID)
}

func removePasskey(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	id := e.Details["passkey_id"]
	if id == "" {
		return false, nil
	}
	if err := tx.DeletePasskey(e.TargetID, id); err != nil {
		return false, err
	}
	return true, nil
}

func removeSSO(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	if _, err := tx.SSOConfig(e.TargetID); err != nil {
		return false, err
	}
	return true, tx.DeleteSSOConfig(e.TargetID)
}

func removeMember(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	u := e.Details["user_id"]
	if u == "" {
		return false, nil
	}
	return tx.RemoveMember(e.TargetID, u)
}

// reapplyUserUpdate re-applies what a user change took away: a disable
// (new epochs, no API access application), the loss of a role (taken
// again; the admin role's loss also ends the API access application), a
// new password (see forgetPassword; only while the user has not changed
// since the entry). A role the entry gave is not given again.
func reapplyUserUpdate(s *Service, tx *store.Tx, e *gatehouse.AuditEntry, now time.Time) (bool, error) {
	u, err := lockAccountThenUser(tx, e)
	if err != nil {
		return false, err
	}
	changed, dropApp := false, false
	if e.Details["status"] == string(gatehouse.StatusDisabled) && u.Active() {
		u.Status, changed, dropApp = gatehouse.StatusDisabled, true, true
		u.Epoch++
		u.PasswordEpoch++
	}
	if roles, ok := e.Details["roles"]; ok {
		kept := strings.Fields(strings.ReplaceAll(roles, ",", " "))
		left := slices.DeleteFunc(slices.Clone(u.Roles), func(r gatehouse.Role) bool { return !slices.Contains(kept, string(r)) })
		if len(left) != len(u.Roles) {
			u.Roles, changed = left, true
		}
		dropApp = dropApp || !slices.Contains(kept, string(gatehouse.RoleAdmin))
	}
	if e.Details["password"] == "changed" && passwordKept(u, e) {
		u.PasswordHash, changed = "", true
		u.PasswordEpoch++
	}
	if changed {
		// Dated as the change re-applied, so a later entry of the same
		// user still applies and this one does not twice.
		u.UpdatedAt = e.CreatedAt
		if err := tx.UpdateUser(u); err != nil {
			return false, err
		}
	}
	if dropApp {
		dropped, err := tx.DeleteAPIApplication(u.ID, now)
		if err != nil {
			return false, err
		}
		changed = changed || dropped
	}
	return changed, nil
}

// lockAccountThenUser locks the account of entry e and then its target
// user, as the change re-applied did (UpdateUser): in the order every
// write takes them, and with the account locked for update, so that the
// account's token issuance and refresh rotations wait before they lock a
// token row this change then writes (docs/design.md, Errors).
func lockAccountThenUser(tx *store.Tx, e *gatehouse.AuditEntry) (*gatehouse.User, error) {
	if _, err := tx.Account(e.AccountID); err != nil {
		return nil, err
	}
	return tx.User(e.AccountID, e.TargetID)
}

// ReapplyClockSkew is how far apart the clocks of the nodes that wrote a
// store may be for a re-applied password change: the restored user's
// last change is taken for one the backup holds unless it is dated this
// much after the password change the audit entry records. Dates written
// by two nodes cannot order changes finer than their clocks agree.
const ReapplyClockSkew = time.Minute

// passwordKept reports whether the restored user u still holds a password
// that the password change of entry e replaced: they have one, and their
// last change is not dated clearly after e's (a new password set after
// the restore; ReapplyClockSkew). A password already taken away — this
// entry re-applied once — is not taken twice.
func passwordKept(u *gatehouse.User, e *gatehouse.AuditEntry) bool {
	return u.PasswordHash != "" && u.UpdatedAt.Before(e.CreatedAt.Add(ReapplyClockSkew))
}

// forgetPassword re-applies a password change whose new hash the restored
// store does not hold: the user keeps no password and every
// password-derived token and session ends.
func forgetPassword(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	u, err := lockAccountThenUser(tx, e)
	if err != nil || !passwordKept(u, e) {
		return false, err
	}
	u.PasswordHash, u.UpdatedAt = "", e.CreatedAt
	u.PasswordEpoch++
	return true, tx.UpdateUser(u)
}

func endSessions(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	n, err := tx.DeleteSessions(e.TargetID, "")
	return n > 0, err
}

func suspendAccount(_ *Service, tx *store.Tx, e *gatehouse.AuditEntry, _ time.Time) (bool, error) {
	if e.Details["status"] != string(gatehouse.AccountSuspended) {
		return false, nil
	}
	a, err := tx.Account(e.TargetID)
	if err != nil || !a.Active() {
		return false, err
	}
	a.Status = gatehouse.AccountSuspended
	return true, tx.UpdateAccount(a)
}
