package service

import (
	"context"
	"encoding/json"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// RevokeToken revokes any secret this server issued (RFC 7009, SPEC §6 and
// §10.1); revoking a refresh token revokes its whole lineage. caller is who
// authenticated the request, or nil when the request carries only the
// token itself (holding a token is enough to revoke it). appClientID is
// the client id a public client sent without a secret (RFC 7009 §2.1), or
// of a confidential application that authenticated with its secret.
// An access or refresh token revoked by its owner, an admin of its account
// or itself is revoked as before (audited unless by itself); any other
// secret — an API token, a client secret, a console session — and a token
// presented by anyone else is revoked by possession as leaked (see
// RevokeLeaked). Unknown tokens are not an error, and nothing answered
// success still works.
func (s *Service) RevokeToken(ctx context.Context, caller *gatehouse.Principal, appClientID, raw string) error {
	if kind, ok := token.Parse(raw); ok && kind != token.AccessToken && kind != token.RefreshToken {
		_, err := s.RevokeLeaked(ctx, raw, LeakReport{Via: LeakViaRevoke, Caller: caller})
		return err
	}
	it, err := s.issuedToken(ctx, raw)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	if (caller != nil && (caller.AccountID != it.AccountID || (!caller.IsAdmin() && caller.UserID() != it.UserID))) ||
		(appClientID != "" && appClientID != it.ClientID) {
		// Not the owner's: possession is proof enough (SPEC §10.1), and
		// answering 200 while it still works is never allowed.
		_, err := s.RevokeLeaked(ctx, raw, LeakReport{Via: LeakViaRevoke, Caller: caller})
		return err
	}
	// An access token sent with nothing else — no credential, no client
	// id — is revoked by possession alone: its finder and its holder look
	// the same, so, as a leaked one is (SPEC §10.1), with its refresh
	// lineage; RFC 7009 §2.1 allows it. Its holder's act all the same:
	// nothing is audited as leaked. Its client (with its id, or its
	// secret), its user or an admin revoking one access token ends that
	// token alone: a client that revokes the token a refresh replaced keeps
	// the new pair.
	lineage := it.FamilyID != "" && (it.Kind == gatehouse.KindRefresh || (caller == nil && appClientID == ""))
	return s.update(ctx, func(tx *store.Tx) error {
		var revoked bool
		var err error
		if lineage {
			revoked, err = tx.RevokeLiveFamily(it.FamilyID, s.now())
		}
		if err == nil && it.Kind != gatehouse.KindRefresh {
			var one bool
			one, err = tx.RevokeLiveToken(it.ID, s.now())
			revoked = revoked || one
		}
		// Revoked already (again, or by another revocation at the same
		// moment): nothing changed, nothing to audit.
		if err != nil || !revoked || caller == nil || caller.CredentialID == it.ID {
			return err
		}
		return s.record(tx, s.audit(ctx, caller, "token.revoke", "token", it.ID,
			map[string]string{"kind": string(it.Kind), "auth_method": string(it.Method), "user_id": it.UserID}))
	})
}

// Introspection is the RFC 7662 answer.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	Method    string `json:"auth_method,omitempty"`
	// ExternalID and Metadata are the credential's, or its user's (SPEC
	// §10.5; gatehouse.Principal.ExternalID).
	ExternalID string          `json:"external_id,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

// Introspect describes a token (RFC 7662) to a caller that authenticated
// with a developer's client credential or as an admin (forbidden
// otherwise). A token that does not work, or belongs to another account,
// is {"active":false}. Its exp is when it stops working: its own expiry or
// its credential's, whichever comes first (tokenValid refuses it from
// either on).
func (s *Service) Introspect(ctx context.Context, caller *gatehouse.Principal, raw string) (*Introspection, error) {
	if caller.Method == gatehouse.MethodAuthorizationCode {
		// An application's token, even an admin's: applications do not
		// introspect, whatever their user may do.
		return nil, gatehouse.Errorf(gatehouse.EInvalidClient, "An application's token does not introspect: authenticate with a developer's client credential or an admin's own token")
	}
	if caller.Method != gatehouse.MethodClientCredentials && !caller.IsAdmin() {
		return nil, gatehouse.Forbidden("Introspection needs a client credential or the admin role")
	}
	if token.Valid(raw, token.APIToken) {
		return s.introspectAPIToken(ctx, caller, raw)
	}
	it, err := s.issuedToken(ctx, raw)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return &Introspection{}, nil
	} else if err != nil {
		return nil, err
	}
	if it.AccountID != caller.AccountID || !tokenValid(it, s.clock()) {
		return &Introspection{}, nil
	}
	p := &gatehouse.Principal{Account: it.Account, AccountID: it.AccountID, User: it.User, Method: it.Method, Scopes: tokenScopes(it)}
	if err := s.planPrincipal(ctx, p, it.Parent.ID, it.Parent.ID, it.Parent.AccountID); err != nil {
		return nil, err
	}
	return &Introspection{Active: true, Scope: p.EffectiveScopes().String(), ClientID: it.ClientID, Username: it.User.Email, TokenType: "bearer",
		Exp: tokenExpires(it).Unix(), Iat: it.CreatedAt.Unix(), Sub: it.UserID, AccountID: it.AccountID, Method: string(it.Method),
		ExternalID: p.ExternalID, Metadata: p.Metadata}, nil
}

// introspectAPIToken describes an API token: active while it works for
// its account (the anonymous admin's scopes, as it would act without the
// user header).
func (s *Service) introspectAPIToken(ctx context.Context, caller *gatehouse.Principal, raw string) (*Introspection, error) {
	// The answer must be current: read the cluster, whatever the hot path
	// trusts.
	if !token.Valid(raw, token.APIToken) {
		return &Introspection{}, nil
	}
	p, err := s.apiTokenPrincipal(ctx, raw, "", false)
	switch {
	case err != nil && gatehouse.ErrorCode(err) != gatehouse.EInvalidToken:
		return nil, err
	case err != nil, p.AccountID != caller.AccountID:
		return &Introspection{}, nil
	}
	out := &Introspection{Active: true, Scope: p.EffectiveScopes().String(), TokenType: "bearer", Sub: p.CredentialID,
		AccountID: p.AccountID, Method: string(p.Method), ExternalID: p.ExternalID, Metadata: p.Metadata}
	if !p.ExpiresAt.IsZero() {
		out.Exp = p.ExpiresAt.Unix()
	}
	return out, nil
}
