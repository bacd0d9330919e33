package service

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// The audit actions of refresh tokens presented again (SPEC §10.8, §10.9).
const (
	// AuditLineageRevoked is reuse detection revoking a lineage.
	AuditLineageRevoked = "api_access.lineage_revoked"
	// AuditRefreshRetried is a used refresh token presented again by the
	// client that used it, inside the grace period.
	AuditRefreshRetried = "api_access.refresh_retried"
)

func invalidRefresh() error {
	return gatehouse.Errorf(gatehouse.EInvalidGrant, "The refresh token is invalid, expired, revoked or already used")
}

// RefreshGrant exchanges a refresh token of an API access application for
// a new access token and a new refresh token (SPEC §3.1). Each refresh
// token is used once: by the one transaction that stores its successors.
// Presented again (see refreshAgain), it is answered by the rules of
// retries and reuse detection. The new tokens are issued under the user's
// epochs and the application's client id read before the rotation, so a
// disable or an application deletion that commits meanwhile ends them
// too.
//
// scope, when not empty, narrows the new tokens (RFC 6749 §6: at most what
// the refresh token was granted; invalid_scope otherwise).
func (s *Service) RefreshGrant(ctx context.Context, clientID, raw, scope string) (*Issued, error) {
	ask, err := askedOf(scope, "")
	if err != nil {
		return nil, err
	}
	if !token.Valid(raw, token.RefreshToken) {
		return nil, invalidRefresh()
	}
	it, err := s.refreshToken(ctx, clientID, raw)
	if err != nil {
		return nil, err
	}
	if presentedAgain(it) {
		return s.refreshAgain(ctx, it, raw, ask)
	}
	if !tokenValid(it, s.now()) {
		return nil, invalidRefresh()
	}
	app, err := s.apiApplication(ctx, it.UserID)
	if err != nil || app.ClientID != it.ClientID {
		if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
			return nil, err
		}
		return nil, invalidRefresh()
	}
	granted := tokenScopes(it)
	narrowed, err := narrowRequest((&gatehouse.Principal{Account: it.Account, User: it.User, Method: it.Method}).RoleScopes().Intersect(granted), scope)
	if err != nil {
		return nil, err
	}
	out, next := s.newPair(it.User, app, it.FamilyID, tokenCredentialExpires(it))
	for _, t := range next {
		t.Scopes = it.Scopes.Intersect(narrowed)
	}
	out.Scope = granted.Intersect(narrowed).String()
	retry, err := sealRetry(raw, it.ID, gatehouse.ClientAddrFromContext(ctx), next[1].ID, out, next[0].ExpiresAt, ask)
	if err != nil {
		return nil, err
	}
	won, err := s.store.RotateRefreshToken(ctx, it.ID, s.now, retry, next...)
	if err != nil {
		return nil, err
	}
	if !won {
		// Another request used it between the read above and this write:
		// it is presented again, and answered as such.
		again, err := s.refreshToken(ctx, clientID, raw)
		if err != nil {
			return nil, err
		}
		if presentedAgain(again) {
			return s.refreshAgain(ctx, again, raw, ask)
		}
		return nil, invalidRefresh()
	}
	s.touch(ctx, "app\x00"+app.ClientID, func(at time.Time) error { return s.store.TouchAPIApplication(ctx, app.ClientID, at) })
	return out, nil
}

// refreshToken reads the refresh token raw of client clientID;
// invalid_grant when there is none.
func (s *Service) refreshToken(ctx context.Context, clientID, raw string) (*store.IssuedToken, error) {
	it, err := s.store.TokenByHash(ctx, s.digester.Digest(raw))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, invalidRefresh()
	} else if err != nil {
		return nil, err
	}
	if it.Kind != gatehouse.KindRefresh || it.Method != gatehouse.MethodAPIAccess || it.ClientID != clientID {
		return nil, invalidRefresh()
	}
	return it, nil
}

// presentedAgain reports whether it was used already and nothing else has
// ended it.
func presentedAgain(it *store.IssuedToken) bool {
	return it.UsedAt != nil && it.RevokedAt == nil && !it.FamilyRevoked
}

// refreshAgain answers a used refresh token presented again (SPEC §3.1,
// §10.8, §10.9):
//
//   - later than the grace period after its use: reuse detection revokes
//     its whole lineage (RFC 9700 §4.14.2);
//   - inside the grace period from another client address than the one
//     that used it: a stolen token, and the lineage is revoked too;
//   - inside the grace period from the same client address: a retry of a
//     request whose answer may have been lost. It gets the pair the
//     rotation committed, while that pair's refresh token is unused and
//     valid, and only when it asks for what the request that used the
//     token asked for (the same scope and resource parameters: the pair
//     was made for those); otherwise invalid_grant, and nothing is
//     revoked.
//
// Every case is audited. A token used by a release that kept nothing for
// retries is refused inside the grace period without a revocation, as
// before.
func (s *Service) refreshAgain(ctx context.Context, it *store.IssuedToken, raw string, ask retryAsk) (*Issued, error) {
	now := s.now()
	if now.Sub(*it.UsedAt) > s.refreshGrace {
		return nil, s.revokeLineage(ctx, it, now, "used again after the grace period", nil)
	}
	addr := gatehouse.ClientAddrFromContext(ctx)
	r, err := s.store.RefreshRetry(ctx, it.ID)
	if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		return nil, err
	}
	if r == nil {
		return nil, s.retried(ctx, it, now, "refused: nothing kept for retries")
	}
	if r.ClientAddr != addr {
		return nil, s.revokeLineage(ctx, it, now, "used again inside the grace period from another client address",
			map[string]string{"used_by": r.ClientAddr})
	}
	out, expires, asked, ok := openRetry(raw, r)
	if !ok {
		return nil, s.retried(ctx, it, now, "refused: the kept pair does not open")
	}
	if asked != ask {
		return nil, s.retried(ctx, it, now, "refused: another scope or resource than the request that used it")
	}
	succ, err := s.store.TokenByHash(ctx, s.digester.Digest(out.RefreshToken))
	if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
		return nil, err
	}
	if err != nil || !tokenValid(succ, now) || !now.Before(expires) {
		return nil, s.retried(ctx, it, now, "refused: the successor was used or ended")
	}
	if err := s.auditRetry(ctx, it, now, "answered with the committed pair"); err != nil {
		return nil, err
	}
	out.TokenType = "bearer"
	out.ExpiresIn = int(expires.Sub(now) / time.Second)
	return out, nil
}

// retried audits a refused same-client retry inside the grace period and
// returns invalid_grant (or the error that kept it from being audited).
func (s *Service) retried(ctx context.Context, it *store.IssuedToken, now time.Time, outcome string) error {
	if err := s.auditRetry(ctx, it, now, outcome); err != nil {
		return err
	}
	return invalidRefresh()
}

// auditRetry audits a same-client retry inside the grace period.
func (s *Service) auditRetry(ctx context.Context, it *store.IssuedToken, now time.Time, outcome string) error {
	return s.update(ctx, func(tx *store.Tx) error {
		return s.record(tx, reuseEntry(ctx, it, now, AuditRefreshRetried, map[string]string{"family_id": it.FamilyID, "outcome": outcome}))
	})
}

// revokeLineage is reuse detection: it revokes the whole lineage of it and
// audits why, in one transaction, and returns invalid_grant. A lineage
// revoked already (by another presentation at the same moment) is not
// audited again.
func (s *Service) revokeLineage(ctx context.Context, it *store.IssuedToken, now time.Time, reason string, details map[string]string) error {
	s.logger.Warn("refresh token reuse detected; revoking its lineage", "reason", reason,
		"account_id", it.AccountID, "user_id", it.UserID, "client_id", it.ClientID, "family_id", it.FamilyID)
	d := map[string]string{"family_id": it.FamilyID, "reason": reason}
	for k, v := range details {
		d[k] = v
	}
	err := s.update(ctx, func(tx *store.Tx) error {
		if revoked, err := tx.RevokeLiveFamily(it.FamilyID, now); err != nil || !revoked {
			return err
		}
		return s.record(tx, reuseEntry(ctx, it, now, AuditLineageRevoked, d))
	})
	if err != nil {
		return err
	}
	return invalidRefresh()
}

// reuseEntry is the audit entry of a refresh token presented again.
func reuseEntry(ctx context.Context, it *store.IssuedToken, now time.Time, action string, details map[string]string) *gatehouse.AuditEntry {
	return &gatehouse.AuditEntry{
		ID: gatehouse.NewID("aud"), AccountID: it.AccountID, ActorID: it.UserID, Actor: "reuse-detection",
		Action: action, TargetType: "api_application", TargetID: it.ClientID,
		RemoteAddr: gatehouse.ClientAddrFromContext(ctx), CreatedAt: now, Details: details,
	}
}

// keptPair is what a rotation seals for retries.
type keptPair struct {
	AccessToken  string `json:"a"`
	RefreshToken string `json:"r"`
	Scope        string `json:"s,omitempty"`
	// Expires is when the access token expires, in Unix microseconds.
	Expires int64 `json:"e"`
	// Asked is what the rotating request asked for; nil in a pair kept by
	// a release before it, which answers only a retry that asks for
	// nothing narrower and no resource.
	Asked *retryAsk `json:"q,omitempty"`
}

// retryAsk is what a refresh request asks for beside its refresh token,
// normalised: a retry gets the kept pair only when it asks for the same.
type retryAsk struct {
	Scope    string `json:"s,omitempty"`
	Resource string `json:"r,omitempty"`
}

// askedOf normalises a refresh request's scope and (already normalised)
// resource parameters; invalid_scope for a malformed scope.
func askedOf(scope, resource string) (retryAsk, error) {
	want, err := requestedScopes(scope)
	if err != nil {
		return retryAsk{}, err
	}
	ask := retryAsk{Resource: resource}
	if want != nil {
		ask.Scope = want.String()
	}
	return ask, nil
}

// retryCipher is the AEAD that seals a rotation's pair for retries. Its
// key is derived from the used refresh token itself, under a label of its
// own (the store keeps only a digest of the token under another), so the
// sealed pair opens only for someone who presents that refresh token: a
// copy of the database reveals nothing.
func retryCipher(raw string) (cipher.AEAD, error) {
	key := sha256.Sum256([]byte("gatehouse refresh retry v1\x00" + raw))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealRetry returns the record a rotation of refresh token raw (id) keeps
// for retries by the client at addr of the request that asked for ask: out
// sealed under retryCipher(raw).
func sealRetry(raw, id, addr, successorID string, out *Issued, accessExpires time.Time, ask retryAsk) (*store.RefreshRetry, error) {
	aead, err := retryCipher(raw)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(keptPair{AccessToken: out.AccessToken, RefreshToken: out.RefreshToken, Scope: out.Scope, Expires: accessExpires.UnixMicro(), Asked: &ask})
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, plain, []byte(id+"\x00"+successorID))
	return &store.RefreshRetry{ClientAddr: addr, SuccessorID: successorID, Sealed: base64.RawStdEncoding.EncodeToString(sealed)}, nil
}

// openRetry opens what sealRetry kept, with the refresh token presented,
// and returns with it what the request that rotated asked for.
func openRetry(raw string, r *store.RefreshRetry) (*Issued, time.Time, retryAsk, bool) {
	aead, err := retryCipher(raw)
	if err != nil {
		return nil, time.Time{}, retryAsk{}, false
	}
	b, err := base64.RawStdEncoding.DecodeString(r.Sealed)
	if err != nil || len(b) < aead.NonceSize() {
		return nil, time.Time{}, retryAsk{}, false
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(r.TokenID+"\x00"+r.SuccessorID))
	if err != nil {
		return nil, time.Time{}, retryAsk{}, false
	}
	var k keptPair
	if json.Unmarshal(plain, &k) != nil {
		return nil, time.Time{}, retryAsk{}, false
	}
	var asked retryAsk
	if k.Asked != nil {
		asked = *k.Asked
	}
	return &Issued{AccessToken: k.AccessToken, RefreshToken: k.RefreshToken, Scope: k.Scope}, time.UnixMicro(k.Expires), asked, true
}
