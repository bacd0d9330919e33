package service

import (
	"context"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// Where a leaked secret was reported (the audit entry's "reported_via").
const (
	// LeakViaRevoke is RFC 7009 revocation, POST /oauth/revoke.
	LeakViaRevoke = "oauth_revoke"
	// LeakViaBulk is the unauthenticated POST /v1/credentials/revoke.
	LeakViaBulk = "bulk_revoke"
	// LeakViaGitHub is GitHub secret scanning.
	LeakViaGitHub = "github_secret_scanning"
)

// LeakReport says who reported a secret found, and where.
type LeakReport struct {
	// Via is one of the LeakVia* constants.
	Via string
	// Caller is whoever authenticated the report, if anyone.
	Caller *gatehouse.Principal
	// URL and Source are where the reporter found it (GitHub's "url" and
	// "source"), if known.
	URL, Source string
	// NotifyOnly reports whether the owning account asked to be told
	// only, not to have the secret revoked (its leak_policy); nil means
	// revoke.
	NotifyOnly func(*gatehouse.Account) bool
}

// LeakOutcome is what a reported string turned out to be.
type LeakOutcome struct {
	// Kind is the secret's kind (access_token, refresh_token, api_token,
	// client_secret, session), or "" for a string that is none.
	Kind string
	// Known reports that this server issued it (working or not).
	Known bool
	// Revoked reports that this report made it stop working.
	Revoked bool
}

// leakKinds names the kinds of secret string.
var leakKinds = map[token.Prefix]string{
	token.AccessToken: "access_token", token.RefreshToken: "refresh_token", token.APIToken: "api_token",
	token.ClientSecret: "client_secret", token.Session: "session",
	token.AuthCode: "authorization_code", token.DeviceCode: "device_code",
}

// RevokeLeaked revokes, by possession, any secret this server issued
// (SPEC §10.1): holding the string is the proof. An access or refresh
// token is revoked with its refresh lineage; an API token or a client
// credential is kept, revoked for good with revoked_reason "leaked"
// (re-enabling does not bring it back; its owner may roll it); an admin
// console session ends. Every node stops accepting it before this
// returns (see update). Each revocation is audited as credential.leaked
// in the owner's account, with where it was reported. Unknown strings,
// garbage and secrets already revoked change nothing and are no error.
func (s *Service) RevokeLeaked(ctx context.Context, raw string, rep LeakReport) (LeakOutcome, error) {
	kind, ok := token.Parse(raw)
	out := LeakOutcome{Kind: leakKinds[kind]}
	if !ok || out.Kind == "" {
		return LeakOutcome{}, nil
	}
	digest := s.digester.Digest(raw)
	switch kind {
	case token.AccessToken, token.RefreshToken:
		it, err := s.store.TokenByHash(ctx, digest)
		if err != nil {
			return notFoundIsNothing(out, err)
		}
		out.Known = true
		lineage := it.FamilyID != "" && !it.FamilyRevoked
		if it.RevokedAt != nil && !lineage {
			return out, nil
		}
		return s.leaked(ctx, out, it.Account, rep, "token", it.ID, map[string]string{"user_id": it.UserID, "client_id": it.ClientID},
			func(tx *store.Tx) (bool, error) {
				// Changed only if this revoked something: reports of one
				// secret at once audit it once.
				var family bool
				if lineage {
					var err error
					if family, err = tx.RevokeLiveFamily(it.FamilyID, s.now()); err != nil {
						return false, err
					}
				}
				token, err := tx.RevokeLiveToken(it.ID, s.now())
				return family || token, err
			})
	case token.APIToken:
		t, err := s.store.APITokenByHash(ctx, digest)
		if err != nil {
			return notFoundIsNothing(out, err)
		}
		out.Known = true
		if t.RevokedAt != nil {
			return out, nil
		}
		a, err := s.store.Account(ctx, t.AccountID)
		if err != nil {
			return out, err
		}
		return s.leaked(ctx, out, a, rep, "api_token", t.ID, map[string]string{"name": t.Name, "prefix": t.Prefix},
			func(tx *store.Tx) (bool, error) {
				return tx.RevokeAPITokenForGood(t.AccountID, t.ID, s.now(), gatehouse.RevokedLeaked)
			})
	case token.ClientSecret:
		c, err := s.store.CredentialBySecretHash(ctx, digest, s.now())
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			return s.leakedAppSecret(ctx, out, digest, rep)
		}
		if err != nil {
			return out, err
		}
		out.Known = true
		if c.RevokedAt != nil {
			return out, nil
		}
		a, err := s.store.Account(ctx, c.AccountID)
		if err != nil {
			return out, err
		}
		return s.leaked(ctx, out, a, rep, "credential", c.ID, map[string]string{"name": c.Name, "client_id": c.ClientID, "user_id": c.UserID},
			func(tx *store.Tx) (bool, error) {
				return tx.RevokeCredentialForGood(c.AccountID, c.ID, s.now(), gatehouse.RevokedLeaked)
			})
	case token.Session:
		se, u, a, err := s.store.SessionByHash(ctx, digest)
		if err != nil {
			return notFoundIsNothing(out, err)
		}
		out.Known = true
		return s.leaked(ctx, out, a, rep, "session", se.ID, map[string]string{"user_id": u.ID},
			func(tx *store.Tx) (bool, error) { return tx.EndSession(se.ID) })
	case token.AuthCode:
		c, err := s.store.CodeByHash(ctx, digest)
		if err != nil {
			return notFoundIsNothing(out, err)
		}
		out.Known = true
		if c.UsedAt != nil || !s.now().Before(c.ExpiresAt) {
			return out, nil // redeemed (its reuse revokes what it issued) or dead
		}
		a, err := s.store.Account(ctx, c.AccountID)
		if err != nil {
			return out, err
		}
		return s.leaked(ctx, out, a, rep, "authorization_code", c.ID, map[string]string{"client_id": c.ClientID, "user_id": c.UserID},
			func(tx *store.Tx) (bool, error) { return tx.UseCode(c.ID, s.now()) })
	case token.DeviceCode:
		d, err := s.store.DeviceByHash(ctx, digest)
		if err != nil {
			return notFoundIsNothing(out, err)
		}
		out.Known = true
		if d.UsedAt != nil || !s.now().Before(d.ExpiresAt) {
			return out, nil
		}
		use := func(tx *store.Tx) (bool, error) { return tx.UseDevice(d.ID, s.now()) }
		if d.AccountID == "" {
			// No one has answered it yet: there is no owner to tell, and
			// no policy but to end it.
			err := s.update(ctx, func(tx *store.Tx) error {
				var err error
				out.Revoked, err = use(tx)
				return err
			})
			return out, err
		}
		a, err := s.store.Account(ctx, d.AccountID)
		if err != nil {
			return out, err
		}
		return s.leaked(ctx, out, a, rep, "device_code", d.ID, map[string]string{"client_id": d.ClientID, "user_id": d.UserID}, use)
	}
	return out, nil
}

// leakedAppSecret revokes a third-party application's client secret by
// possession: the secret works no more, current or previous, and the
// application's owner rolls a new one; its users' grants and tokens stay.
func (s *Service) leakedAppSecret(ctx context.Context, out LeakOutcome, digest string, rep LeakReport) (LeakOutcome, error) {
	app, err := s.store.AppBySecretHash(ctx, digest, s.now())
	if err != nil {
		return notFoundIsNothing(out, err)
	}
	out.Known = true
	a, err := s.store.Account(ctx, app.AccountID)
	if err != nil {
		return out, err
	}
	return s.leaked(ctx, out, a, rep, "app", app.ID, map[string]string{"name": app.Name, "client_id": app.ClientID, "owner_id": app.OwnerID},
		func(tx *store.Tx) (bool, error) { return tx.RevokeAppSecret(app.ID, digest) })
}

// notFoundIsNothing turns not_found into an unknown string's outcome.
func notFoundIsNothing(out LeakOutcome, err error) (LeakOutcome, error) {
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return out, nil
	}
	return out, err
}

// leaked runs revoke (unless the account's policy is to be told only)
// and writes the credential.leaked entry in the same transaction.
func (s *Service) leaked(ctx context.Context, out LeakOutcome, a *gatehouse.Account, rep LeakReport, targetType, targetID string,
	details map[string]string, revoke func(*store.Tx) (bool, error)) (LeakOutcome, error) {
	notify := rep.NotifyOnly != nil && rep.NotifyOnly(a)
	details["kind"], details["reported_via"] = out.Kind, rep.Via
	if rep.URL != "" {
		details["url"] = rep.URL
	}
	if rep.Source != "" {
		details["source"] = rep.Source
	}
	// The reporter is named only to its own account.
	var by *gatehouse.Principal
	if rep.Caller != nil && rep.Caller.AccountID == a.ID {
		by = rep.Caller
	}
	err := s.update(ctx, func(tx *store.Tx) error {
		out.Revoked = false // as the run that commits finds it
		if !notify {
			changed, err := revoke(tx)
			if err != nil || !changed {
				return err
			}
			out.Revoked = true
		}
		if notify {
			details["action"] = "notified"
		} else {
			details["action"] = "revoked"
		}
		e := s.audit(ctx, by, "credential.leaked", targetType, targetID, details)
		e.AccountID = a.ID
		return s.record(tx, e)
	})
	if err != nil {
		return LeakOutcome{Kind: out.Kind, Known: true}, err
	}
	return out, nil
}

// requestDetails is what the HTTP layer's request scope tells about a
// request besides its client address (httpx.RequestInfo).
type requestDetails interface {
	UserAgent() string
	Path() string
}

// maxCanaryText bounds the user agent and path a canary's entry keeps.
const maxCanaryText = 512

// canaryUsed audits a use of canary token t — credential.canary_used, with
// the client address, user agent and path — and returns the answer to
// give, exactly that of an unknown token. The entry is written even when
// the answer is then refused; failing to write it is an error (logged).
func (s *Service) canaryUsed(ctx context.Context, t *gatehouse.APIToken) error {
	details := map[string]string{"name": t.Name, "prefix": t.Prefix, "client_addr": gatehouse.ClientAddrFromContext(ctx)}
	if rd, ok := gatehouse.RequestScopeOf(ctx).(requestDetails); ok {
		details["user_agent"], details["path"] = clip(rd.UserAgent(), maxCanaryText), clip(rd.Path(), maxCanaryText)
	}
	err := s.store.Update(ctx, func(tx *store.Tx) error {
		e := s.audit(ctx, nil, "credential.canary_used", "api_token", t.ID, details)
		e.AccountID, e.Actor = t.AccountID, "canary"
		return s.record(tx, e)
	})
	if err != nil {
		gatehouse.Logger(ctx).Error("a canary token was used but its audit entry could not be written", "api_token", t.ID, "err", err)
	} else {
		s.wakeWebhooks()
	}
	return errInvalidAPIToken()
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// rollRevokedCredential replaces a credential revoked for good with a new
// one of the same owner, name, scopes and expiry: a new client id and the
// new secret. The revoked one stays listed, refused, and is replaced once:
// a second roll of it is conflict (markRolled), as is a roll while
// another live credential of the owner has its name. One replacement for
// one revoked credential keeps the owner's usable credentials as many as
// before; the revoked one stays counted by max_credentials_per_user until
// it is deleted. The caller has locked the owner (tx.Credential).
func (s *Service) rollRevokedCredential(ctx context.Context, tx *store.Tx, p *gatehouse.Principal, old *gatehouse.Credential, secret string) (*RolledSecret, error) {
	c := &gatehouse.Credential{ID: gatehouse.NewID("crd"), AccountID: old.AccountID, UserID: old.UserID, Name: old.Name,
		ClientID: s.mint(token.ClientID), SecretHash: s.digester.Digest(secret), Scopes: old.Scopes, ExpiresAt: old.ExpiresAt,
		Enabled: true, CreatedBy: old.CreatedBy, CreatedAt: s.now()}
	if err := markRolled(tx.MarkCredentialRolled(old.AccountID, old.ID, c.ID)); err != nil {
		return nil, err
	}
	if err := credentialNameFree(tx, c, old.ID, c.CreatedAt); err != nil {
		return nil, err
	}
	if err := tx.CreateCredential(c); err != nil {
		return nil, err
	}
	// The replacement keeps the plan — its allowed addresses, limits,
	// quota, external id and metadata — as a rolled API token does: a leak
	// is no time to lift them.
	pl, err := tx.Plan(old.AccountID, old.ID)
	if err != nil {
		return nil, err
	}
	if !pl.Empty() {
		if err := tx.SetPlan(c.AccountID, gatehouse.PlanCredential, c.ID, pl, c.CreatedAt); err != nil {
			return nil, err
		}
	}
	if err := s.record(tx, s.audit(ctx, p, "credential.roll", "credential", c.ID,
		map[string]string{"rolled_from": old.ID, "client_id": c.ClientID})); err != nil {
		return nil, err
	}
	return &RolledSecret{ID: c.ID, ClientID: c.ClientID, ClientSecret: secret}, nil
}

// markRolled turns what a store's mark of a roll returns — the
// replacement an earlier roll made, if any — into conflict naming it.
func markRolled(prev string, err error) error {
	if err == nil && prev != "" {
		return gatehouse.Errorf(gatehouse.EConflict, "This was rolled already: roll its replacement, %s, instead", prev)
	}
	return err
}

// mint returns a fresh secret or client id of kind p under the
// deployment's prefix.
func (s *Service) mint(p token.Prefix) string { return token.NewWith(s.tokenPrefix, p) }
