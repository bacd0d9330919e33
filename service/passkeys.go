package service

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mfa"
	"github.com/gatehouse/gatehouse/passkey"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// MaxPasskeys is how many passkeys one user may register.
const MaxPasskeys = 20

// MaxOpenPasswordlessSignIns bounds the password-less sign-ins waiting for
// their answer at once: anyone may begin one, and each is a row in the
// store until it expires.
const MaxOpenPasswordlessSignIns = 10000

// maxPasskeyName is the longest name of a passkey, in characters.
const maxPasskeyName = 64

// factorPasskey names a passkey in audit details.
const factorPasskey = "passkey"

// errPasskeyRefused is the answer to a passkey answer that does not prove
// what it must (a replayed, foreign or malformed assertion).
func errPasskeyRefused() error {
	return gatehouse.InvalidField("credential", "The passkey was not accepted. Try again, or use another way to sign in.", "the passkey's answer was refused")
}

// errTooManyPasskeys is the answer to a registration beyond MaxPasskeys.
func errTooManyPasskeys() error {
	return gatehouse.Errorf(gatehouse.ELimitReached, "A user may have at most %d passkeys; remove one first", MaxPasskeys)
}

// errChallengeGone is the answer to an answer whose challenge expired or
// was answered already.
func errChallengeGone() error {
	return gatehouse.InvalidField("challenge_id", "The passkey request expired or was used already. Try again.", "challenge_id is unknown, expired or used already")
}

// passkeysOn returns the relying party, or temporarily_unavailable with
// the reason passkeys are off.
func (s *Service) passkeysOn() (*passkey.RP, error) {
	if s.passkeys == nil {
		msg := "Passkeys are not available here"
		if s.passkeysOff != "" {
			msg += ": " + s.passkeysOff
		}
		return nil, gatehouse.Errorf(gatehouse.EUnavailable, "%s", msg)
	}
	return s.passkeys, nil
}

// PasskeysAvailable reports whether passkeys can be used on this server.
func (s *Service) PasskeysAvailable() bool { return s.passkeys != nil }

// PasskeyCeremony is a WebAuthn ceremony begun: the id of its challenge,
// to send back with the answer, and the options for
// navigator.credentials ({"publicKey":{…}}).
type PasskeyCeremony struct {
	ChallengeID string          `json:"challenge_id"`
	Options     json.RawMessage `json:"options"`
}

// PasskeyInfo is a passkey as its user sees it.
type PasskeyInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func passkeyInfo(k *store.Passkey) PasskeyInfo {
	out := PasskeyInfo{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt
		out.LastUsedAt = &t
	}
	return out
}

// ceremonyUser returns u as the ceremonies see them, with their passkeys.
func (s *Service) ceremonyUser(ctx context.Context, u *gatehouse.User) (*passkey.User, []*store.Passkey, error) {
	ks, err := s.store.Passkeys(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	pu := &passkey.User{Handle: []byte(u.ID), Name: u.Email}
	for _, k := range ks {
		c, err := passkey.DecodeCredential(k.Credential)
		if err != nil {
			return nil, nil, err
		}
		pu.Credentials = append(pu.Credentials, c)
	}
	return pu, ks, nil
}

// begin stores the challenge of a ceremony begun.
func (s *Service) begin(ctx context.Context, c *passkey.Challenge, purpose, userID, signInID string) (*PasskeyCeremony, error) {
	now := s.now()
	pc := &store.PasskeyChallenge{ID: gatehouse.NewID("pkc"), Purpose: purpose, UserID: userID, SignInID: signInID,
		Session: c.Session, CreatedAt: now, ExpiresAt: now.Add(passkey.ChallengeLifetime)}
	most := 0
	if purpose == store.ChallengeSignIn && userID == "" {
		most = MaxOpenPasswordlessSignIns // anyone may begin one
	}
	stored, err := s.store.CreatePasskeyChallenge(ctx, pc, most)
	if err != nil {
		return nil, err
	}
	if !stored {
		e := gatehouse.Errorf(gatehouse.EUnavailable, "Too many passkey sign-ins are under way; try again in a minute")
		e.RetryAfter = passkey.ChallengeLifetime / 2
		return nil, e
	}
	return &PasskeyCeremony{ChallengeID: pc.ID, Options: c.Options}, nil
}

// challengeFor returns the live challenge id of purpose (and of userID,
// when not empty), or errChallengeGone.
func (s *Service) challengeFor(ctx context.Context, id, purpose, userID string) (*store.PasskeyChallenge, error) {
	if id == "" || len(id) > 64 || !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return nil, errChallengeGone()
	}
	c, err := s.store.PasskeyChallenge(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, errChallengeGone()
	} else if err != nil {
		return nil, err
	}
	if c.Purpose != purpose || (userID != "" && c.UserID != userID) || !s.now().Before(c.ExpiresAt) {
		return nil, errChallengeGone()
	}
	return c, nil
}

// BeginPasskeyRegistration begins registering a passkey of p's user: the
// options for navigator.credentials.create and the challenge's id, which
// FinishPasskeyRegistration takes within passkey.ChallengeLifetime, once.
// p must be a console session or password-grant token of the user
// (forbidden otherwise); limit_reached at MaxPasskeys;
// temporarily_unavailable when the server has no relying party (see
// passkey.New).
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p *gatehouse.Principal) (*PasskeyCeremony, error) {
	if err := requireSignIn(p); err != nil {
		return nil, err
	}
	rp, err := s.passkeysOn()
	if err != nil {
		return nil, err
	}
	pu, ks, err := s.ceremonyUser(ctx, p.User)
	if err != nil {
		return nil, err
	}
	if len(ks) >= MaxPasskeys {
		return nil, errTooManyPasskeys()
	}
	c, err := rp.BeginRegistration(pu)
	if err != nil {
		return nil, err
	}
	return s.begin(ctx, c, store.ChallengeRegister, p.User.ID, "")
}

// PasskeyAdded is a passkey registered, and, when it is the user's first
// second factor, their ten new recovery codes (shown once).
type PasskeyAdded struct {
	Passkey       PasskeyInfo `json:"passkey"`
	RecoveryCodes []string    `json:"recovery_codes,omitempty"`
}

// normalizePasskeyName trims a passkey's name; "" becomes "Passkey".
func normalizePasskeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Passkey"
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxPasskeyName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", gatehouse.InvalidField("name", "Give the passkey a name of at most 64 characters.", "name must be at most %d characters, without control characters", maxPasskeyName)
	}
	return name, nil
}

// FinishPasskeyRegistration registers the passkey that answer (the
// browser's PublicKeyCredential as JSON) proves, for the challenge begun
// by BeginPasskeyRegistration, under name. The challenge is used once:
// invalid_request about challenge_id when it is unknown, expired, of
// another user or used; about credential when the answer is refused. When
// it is the user's first second factor, ten recovery codes are made and
// every other session, pending sign-in and password-grant token of the
// user ends, as with TOTP. limit_reached when the user holds MaxPasskeys
// by then (counted under the user's lock, so registrations finished
// together stop at the limit); forbidden when the user has been disabled
// or deleted meanwhile. Audited as user.passkey_add (and user.mfa_enable
// for the first factor).
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p *gatehouse.Principal, challengeID, name string, answer []byte) (*PasskeyAdded, error) {
	if err := requireSignIn(p); err != nil {
		return nil, err
	}
	rp, err := s.passkeysOn()
	if err != nil {
		return nil, err
	}
	if name, err = normalizePasskeyName(name); err != nil {
		return nil, err
	}
	ch, err := s.challengeFor(ctx, challengeID, store.ChallengeRegister, p.User.ID)
	if err != nil {
		return nil, err
	}
	pu, _, err := s.ceremonyUser(ctx, p.User)
	if err != nil {
		return nil, err
	}
	cred, err := rp.FinishRegistration(pu, ch.Session, answer)
	if errors.Is(err, passkey.ErrRefused) {
		s.logger.Info("passkey registration refused", "user_id", p.User.ID, "reason", err.Error())
		return nil, errPasskeyRefused()
	} else if err != nil {
		return nil, err
	}
	enc, err := passkey.EncodeCredential(cred)
	if err != nil {
		return nil, err
	}
	k := &store.Passkey{ID: gatehouse.NewID("pk"), AccountID: p.User.AccountID, UserID: p.User.ID,
		CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID), Name: name, Credential: enc,
		SignCount: cred.Authenticator.SignCount, CreatedAt: s.now()}
	out := &PasskeyAdded{}
	err = s.update(ctx, func(tx *store.Tx) error {
		out.RecoveryCodes = nil // only the run that commits shows codes
		// The user first, as in every change of their second factors.
		cur, err := lockSelf(tx, p)
		if err != nil {
			return err
		}
		if n, err := tx.CountPasskeys(p.User.ID); err != nil {
			return err
		} else if n >= MaxPasskeys {
			return errTooManyPasskeys()
		}
		if taken, err := tx.TakePasskeyChallenge(ch.ID); err != nil {
			return err
		} else if !taken {
			return errChallengeGone()
		}
		had, err := tx.HasFactors(p.User.ID)
		if err != nil {
			return err
		}
		if err := tx.CreatePasskey(k); err != nil {
			if gatehouse.ErrorCode(err) == gatehouse.EConflict {
				return gatehouse.Errorf(gatehouse.EConflict, "This passkey is registered already")
			}
			return err
		}
		if err := s.record(tx, s.audit(ctx, p, "user.passkey_add", "user", p.User.ID, map[string]string{"passkey_id": k.ID, "name": k.Name})); err != nil {
			return err
		}
		if had {
			return nil
		}
		codes := mfa.NewRecoveryCodes()
		hashes := make([]string, len(codes))
		for i, c := range codes {
			hashes[i] = s.digester.Digest(mfa.NormalizeRecoveryCode(c))
		}
		if err := tx.ReplaceRecoveryCodes(p.User.ID, hashes, s.now()); err != nil {
			return err
		}
		out.RecoveryCodes = codes
		if err := s.endPasswordOnly(tx, p, cur); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.mfa_enable", "user", p.User.ID, map[string]string{"factor": factorPasskey}))
	})
	if err != nil {
		return nil, err
	}
	out.Passkey = passkeyInfo(k)
	return out, nil
}

// Passkeys returns the passkeys of p's user, oldest first.
func (s *Service) Passkeys(ctx context.Context, p *gatehouse.Principal) ([]PasskeyInfo, error) {
	if err := requireSignIn(p); err != nil {
		return nil, err
	}
	ks, err := s.store.Passkeys(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	out := make([]PasskeyInfo, len(ks))
	for i, k := range ks {
		out[i] = passkeyInfo(k)
	}
	return out, nil
}

// validPasskeyID reports whether id can name a passkey, before any store
// call.
func validPasskeyID(id string) bool {
	return id != "" && len(id) <= 64 && utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// RenamePasskey renames a passkey of p's user; not_found when they have
// no such passkey, forbidden when they have been disabled or deleted
// meanwhile. Audited as user.passkey_rename.
func (s *Service) RenamePasskey(ctx context.Context, p *gatehouse.Principal, id, name string) (*PasskeyInfo, error) {
	if err := requireSignIn(p); err != nil {
		return nil, err
	}
	if !validPasskeyID(id) {
		return nil, gatehouse.NotFound("passkey")
	}
	name, err := normalizePasskeyName(name)
	if err != nil {
		return nil, err
	}
	var out PasskeyInfo
	err = s.update(ctx, func(tx *store.Tx) error {
		// The user first, as in every change of their second factors.
		if _, err := lockSelf(tx, p); err != nil {
			return err
		}
		if err := tx.RenamePasskey(p.User.ID, id, name); err != nil {
			return err
		}
		k, err := tx.Passkey(p.User.ID, id)
		if err != nil {
			return err
		}
		out = passkeyInfo(k)
		return s.record(tx, s.audit(ctx, p, "user.passkey_rename", "user", p.User.ID, map[string]string{"passkey_id": id, "name": name}))
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// PasskeyByID returns a passkey of p's user; not_found when there is none.
func (s *Service) PasskeyByID(ctx context.Context, p *gatehouse.Principal, id string) (*PasskeyInfo, error) {
	ks, err := s.Passkeys(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		if k.ID == id {
			return &k, nil
		}
	}
	return nil, gatehouse.NotFound("passkey")
}

// RemovePasskey removes a passkey of p's user; not_found when they have no
// such passkey, forbidden when they have been disabled or deleted
// meanwhile. With it the last second factor gone, the recovery codes go
// too, and a user whose account requires a second factor is led to enrol
// again. Audited as user.passkey_remove (and user.mfa_disable for the
// last factor). The user is locked first, so that what is left is
// decided after any other change of their second factors: a passkey
// added or removed at the same moment is seen, and the recovery codes go
// exactly when nothing is left.
func (s *Service) RemovePasskey(ctx context.Context, p *gatehouse.Principal, id string) error {
	if err := requireSignIn(p); err != nil {
		return err
	}
	if !validPasskeyID(id) {
		return gatehouse.NotFound("passkey")
	}
	return s.update(ctx, func(tx *store.Tx) error {
		if _, err := lockSelf(tx, p); err != nil {
			return err
		}
		if err := tx.DeletePasskey(p.User.ID, id); err != nil {
			return err
		}
		if err := s.record(tx, s.audit(ctx, p, "user.passkey_remove", "user", p.User.ID, map[string]string{"passkey_id": id})); err != nil {
			return err
		}
		left, err := tx.HasFactors(p.User.ID)
		if err != nil || left {
			return err
		}
		if err := tx.ReplaceRecoveryCodes(p.User.ID, nil, time.Time{}); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.mfa_disable", "user", p.User.ID, map[string]string{"factor": factorPasskey}))
	})
}

// pendingSignIn returns the live pending sign-in of the cookie pending and
// its user, or invalid_token (errSignInGone).
func (s *Service) pendingSignIn(ctx context.Context, pending string) (*store.SignIn, *gatehouse.User, error) {
	if !token.Valid(pending, token.Session) {
		return nil, nil, errSignInGone()
	}
	si, err := s.store.SignInByHash(ctx, s.digester.Digest(pending))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, nil, errSignInGone()
	} else if err != nil {
		return nil, nil, err
	}
	if !s.now().Before(si.ExpiresAt) {
		return nil, nil, errSignInGone()
	}
	u, err := s.activeUser(ctx, si.AccountID, si.UserID)
	if err != nil {
		return nil, nil, err
	}
	if u.Epoch != si.UserEpoch || u.PasswordEpoch != si.PasswordEpoch {
		return nil, nil, errSignInGone()
	}
	return si, u, nil
}

// activeUser returns an active user of an active account, or
// errSignInGone.
func (s *Service) activeUser(ctx context.Context, accountID, userID string) (*gatehouse.User, error) {
	u, err := s.store.User(ctx, accountID, userID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, errSignInGone()
	} else if err != nil {
		return nil, err
	}
	a, err := s.store.Account(ctx, u.AccountID)
	if err != nil {
		return nil, err
	}
	if !u.Active() || !a.Active() {
		return nil, errSignInGone()
	}
	return u, nil
}

// BeginPasskeySignIn begins a console sign-in with a passkey: with pending
// (the cookie of a sign-in whose password was right), as its second
// factor, for one of that user's passkeys; with pending empty, a
// password-less sign-in with any discoverable passkey that verifies its
// user (temporarily_unavailable while MaxOpenPasswordlessSignIns wait;
// too_many_attempts past StartsPerHour from the client address from, so
// that one network cannot fill that room). invalid_token when the pending
// sign-in is gone; invalid_request when its user has no passkey.
func (s *Service) BeginPasskeySignIn(ctx context.Context, pending, from string) (*PasskeyCeremony, error) {
	rp, err := s.passkeysOn()
	if err != nil {
		return nil, err
	}
	if pending == "" {
		if err := s.reserveStart(ctx, "passkey", from, "Passkey sign-in is unavailable; try again shortly"); err != nil {
			return nil, err
		}
		// At most MaxOpenPasswordlessSignIns wait at once (begin).
		c, err := rp.BeginLogin(nil)
		if err != nil {
			return nil, err
		}
		return s.begin(ctx, c, store.ChallengeSignIn, "", "")
	}
	si, u, err := s.pendingSignIn(ctx, pending)
	if err != nil {
		return nil, err
	}
	pu, _, err := s.ceremonyUser(ctx, u)
	if err != nil {
		return nil, err
	}
	if len(pu.Credentials) == 0 {
		return nil, gatehouse.Errorf(gatehouse.EInvalidRequest, "This user has no passkey; enter a code")
	}
	c, err := rp.BeginLogin(pu)
	if err != nil {
		return nil, err
	}
	return s.begin(ctx, c, store.ChallengeSecondFactor, u.ID, si.ID)
}

// PasskeySignIn finishes a console sign-in begun by BeginPasskeySignIn
// (pending as given there) with answer, the browser's assertion as JSON,
// from the client address from, and starts the session. The challenge is
// used once — by the answer that signs in or by one refused — so a
// replayed assertion is refused (invalid_request about challenge_id); an
// assertion of another challenge, origin or user, or of
// an unknown passkey, is invalid_request about credential, counted by the
// sign-in throttle when its user is known. A passkey whose signature
// counter did not grow may have been copied: the sign-in is refused and
// audited as user.passkey_clone_warning. A sign-in whose passkey was
// removed, or whose user was disabled, deleted or given a new password,
// by a change that committed while it was under way is refused as an
// answer not accepted (credential), and not taken for a copy: the
// session starts only under the user's lock, with the passkey still
// there. A password-less sign-in of a
// user whose account requires single sign-on is refused as their password
// is (invalid_grant joined with ErrSSORequired, not counted, not audited);
// the passkey as the second factor, after single sign-on or the
// operator's password, is not. Audited as user.passkey_sign_in.
func (s *Service) PasskeySignIn(ctx context.Context, pending, challengeID string, answer []byte, from string) (*SignInStep, error) {
	rp, err := s.passkeysOn()
	if err != nil {
		return nil, err
	}
	purpose := store.ChallengeSignIn
	var si *store.SignIn
	if pending != "" {
		purpose = store.ChallengeSecondFactor
		if si, _, err = s.pendingSignIn(ctx, pending); err != nil {
			return nil, err
		}
	}
	ch, err := s.challengeFor(ctx, challengeID, purpose, "")
	if err != nil {
		return nil, err
	}
	if si != nil && ch.SignInID != si.ID {
		return nil, errChallengeGone()
	}
	a, err := passkey.ParseAssertion(answer)
	if err != nil {
		s.logger.Info("passkey sign-in refused", "reason", err.Error())
		return nil, errPasskeyRefused()
	}
	k, err := s.store.PasskeyByCredentialID(ctx, base64.RawURLEncoding.EncodeToString(a.CredentialID))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		s.logger.Info("passkey sign-in refused", "reason", "unknown credential")
		return nil, errPasskeyRefused()
	} else if err != nil {
		return nil, err
	}
	if ch.UserID != "" && k.UserID != ch.UserID {
		return nil, errPasskeyRefused()
	}
	u, err := s.activeUser(ctx, k.AccountID, k.UserID)
	if gatehouse.ErrorCode(err) == gatehouse.EInvalidToken {
		return nil, errPasskeyRefused() // a disabled or deleted user's passkey
	} else if err != nil {
		return nil, err
	}
	res, err := s.reserve(ctx, gatehouse.EmailKey(u.Email), from)
	if err != nil {
		return nil, err
	}
	var (
		cookie, csrf    string
		cloned, refused bool
	)
	err = func() error {
		pu, _, err := s.ceremonyUser(ctx, u)
		if err != nil {
			return err
		}
		cred, err := rp.FinishLogin(pu, ch.Session, a)
		if errors.Is(err, passkey.ErrRefused) {
			s.logger.Info("passkey sign-in refused", "user_id", u.ID, "reason", err.Error())
			// A refused answer uses the challenge up too.
			if err := s.store.Update(ctx, func(tx *store.Tx) error { _, err := tx.TakePasskeyChallenge(ch.ID); return err }); err != nil {
				return err
			}
			return errPasskeyRefused()
		} else if err != nil {
			return err
		}
		if si == nil {
			// Password-less, the passkey stands for the password: refused as
			// the password is when the account requires single sign-on (the
			// operator's break-glass aside), after the answer proved the
			// passkey so that the refusal tells nothing to who has none. The
			// challenge is used up; the attempt is released, not counted.
			required, err := s.ssoRequired(ctx, u)
			if err != nil {
				return err
			}
			if required {
				if err := s.store.Update(ctx, func(tx *store.Tx) error { _, err := tx.TakePasskeyChallenge(ch.ID); return err }); err != nil {
					return err
				}
				return errSSORequired()
			}
		}
		p := &gatehouse.Principal{AccountID: u.AccountID, User: u, Method: gatehouse.MethodSession}
		return s.update(ctx, func(tx *store.Tx) error {
			cloned, refused = false, false // as the run that commits finds them
			// The user first, as in every change of their second factors:
			// read again, so that a disable, deletion or change of
			// password that committed first refuses the sign-in (one that
			// comes later ends its session).
			cur, err := lockAccountUser(tx, u.AccountID, u.ID)
			if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
				refused = true
			} else if err != nil {
				return err
			} else if !cur.Active() || cur.Epoch != u.Epoch || cur.PasswordEpoch != u.PasswordEpoch {
				refused = true
			}
			if taken, err := tx.TakePasskeyChallenge(ch.ID); err != nil {
				return err
			} else if !taken {
				return errChallengeGone()
			}
			if refused {
				return nil // the challenge used up, nothing else
			}
			if si != nil {
				if taken, err := tx.TakeSignIn(si.ID); err != nil {
					return err
				} else if !taken {
					return errSignInGone()
				}
			}
			fresh, err := tx.UsePasskey(k.ID, cred.Authenticator.SignCount, s.now())
			if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
				// Removed (or reset) meanwhile: refused, not a copied key.
				refused = true
				return nil
			} else if err != nil {
				return err
			}
			if cred.Authenticator.CloneWarning || !fresh {
				// The library's advice: the counter did not grow, so the key
				// may have been copied. Refuse, and say so in the audit log.
				cloned = true
				return s.record(tx, s.audit(ctx, p, "user.passkey_clone_warning", "user", u.ID, map[string]string{"passkey_id": k.ID}))
			}
			if cookie, csrf, err = s.createSession(tx, u, from); err != nil {
				return err
			}
			mode := "second_factor"
			if si == nil {
				mode = "passwordless"
			}
			return s.record(tx, s.audit(ctx, p, "user.passkey_sign_in", "user", u.ID, map[string]string{"passkey_id": k.ID, "mode": mode}))
		})
	}()
	if err == nil && (cloned || refused) {
		err = errPasskeyRefused()
	}
	if err = s.settle(ctx, res, err); err != nil {
		return nil, err
	}
	return &SignInStep{Session: cookie, CSRF: csrf}, nil
}
