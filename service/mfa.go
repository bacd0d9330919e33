package service

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mfa"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/throttle"
	"github.com/gatehouse/gatehouse/token"
)

// SignInLifetime is how long a sign-in waits for its second factor after
// the password was right.
const SignInLifetime = 5 * time.Minute

// errSecondFactor is the password grant's answer for a user who signs in
// with a second factor (SPEC §10.6).
func errSecondFactor() error {
	return gatehouse.Errorf(gatehouse.EInvalidGrant, "this user signs in with a second factor")
}

// errWrongCode is the answer to a code that is not right, or was used.
func errWrongCode() error {
	return gatehouse.InvalidField("code", "This code is not right, or was used already. Enter the current code.", "code is wrong or was used already")
}

// errSignInGone is the answer to a second step whose sign-in expired,
// was completed, or was ended by a change to the user.
func errSignInGone() error {
	return gatehouse.Errorf(gatehouse.EInvalidToken, "The sign-in expired; sign in again")
}

// signsInWithSecondFactor reports whether u must use a second factor to
// sign in: they have one, or their account's require_mfa covers them.
func (s *Service) signsInWithSecondFactor(ctx context.Context, u *gatehouse.User, a *gatehouse.Account) (bool, error) {
	if a.Settings.MFARequired(u.Roles) {
		return true, nil
	}
	f, err := s.store.Factors(ctx, u.ID)
	return f.Any(), err
}

// requireSignIn returns forbidden unless p is a console session or a
// password-grant token of a user, not narrowed to scopes: second factors
// are never managed with an API token, a client credential, or a sign-in
// token narrowed for an integration (insufficient_scope).
func requireSignIn(p *gatehouse.Principal) error {
	if err := RequireUser(p); err != nil {
		return err
	}
	if p.Method != gatehouse.MethodSession && p.Method != gatehouse.MethodPassword {
		return gatehouse.Forbidden("Your own password, second factors, sessions and authorised applications, and an admin's password and second factors, are managed from a sign-in: a console session or a password-grant token")
	}
	if p.Scopes != nil {
		// A password-grant token narrowed with scope= is a credential for
		// what it names (an integration's), not the user at the keyboard.
		return gatehouse.Errorf(gatehouse.EInsufficientScope, "This token was narrowed to %s: a password, second factors, sessions and authorised applications are managed from a sign-in that is not narrowed", p.Scopes.String())
	}
	return nil
}

// SignInStep is the outcome of a right password in the console: a
// session (Session, the cookie value shown once, and its CSRF token), or,
// for a user with a second factor, a sign-in waiting for a code (Pending,
// the cookie value of the second step).
type SignInStep struct {
	Session, CSRF string
	Pending       string
}

// SignIn checks an e-mail and password from the client address from, as
// the password grant does (CheckPassword), and starts a console session —
// or, for a user with a second factor, a sign-in that CompleteSignIn
// finishes with a code. A right password then neither counts as a failed
// attempt nor clears the user's failures: only the second factor does.
func (s *Service) SignIn(ctx context.Context, email, pw, from string) (*SignInStep, error) {
	var second bool
	u, _, err := s.checkPasswordThen(ctx, email, pw, from, true, func(u *gatehouse.User, _ *gatehouse.Account) (bool, error) {
		f, err := s.store.Factors(ctx, u.ID)
		second = f.Any()
		return second, err
	})
	if err != nil {
		return nil, err
	}
	if !second {
		cookie, csrf, err := s.startSession(ctx, u, from, nil)
		if err != nil {
			return nil, err
		}
		return &SignInStep{Session: cookie, CSRF: csrf}, nil
	}
	raw := s.mint(token.Session)
	now := s.now()
	si := &store.SignIn{ID: gatehouse.NewID("sig"), Hash: s.digester.Digest(raw), AccountID: u.AccountID, UserID: u.ID,
		ClientAddr: from, CreatedAt: now, ExpiresAt: now.Add(SignInLifetime), UserEpoch: u.Epoch, PasswordEpoch: u.PasswordEpoch}
	if err := s.store.Update(ctx, func(tx *store.Tx) error { return tx.CreateSignIn(si) }); err != nil {
		return nil, err
	}
	return &SignInStep{Pending: raw}, nil
}

// CompleteSignIn finishes the sign-in of the cookie pending with a TOTP
// code or a recovery code, typed from the client address from, and starts
// the console session. The code is counted by the sign-in throttle before
// it is checked (too_many_attempts); a wrong or used code is
// invalid_request about code, and the sign-in can be tried again until it
// expires; an expired, finished or ended sign-in is invalid_token, as is
// one whose user was disabled, deleted or given a new password by a
// change that committed while it was under way: the session starts only
// under the user's lock, with the user read again. Of concurrent
// completions, with one code or with several, one succeeds.
func (s *Service) CompleteSignIn(ctx context.Context, pending, code, from string) (*SignInStep, error) {
	if !token.Valid(pending, token.Session) {
		return nil, errSignInGone()
	}
	si, err := s.store.SignInByHash(ctx, s.digester.Digest(pending))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, errSignInGone()
	} else if err != nil {
		return nil, err
	}
	if !s.now().Before(si.ExpiresAt) {
		return nil, errSignInGone()
	}
	u, err := s.store.User(ctx, si.AccountID, si.UserID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, errSignInGone()
	} else if err != nil {
		return nil, err
	}
	a, err := s.store.Account(ctx, u.AccountID)
	if err != nil {
		return nil, err
	}
	if !u.Active() || !a.Active() || u.Epoch != si.UserEpoch || u.PasswordEpoch != si.PasswordEpoch {
		return nil, errSignInGone()
	}
	var cookie, csrf string
	p := &gatehouse.Principal{AccountID: u.AccountID, User: u, Method: gatehouse.MethodSession}
	err = s.withCode(ctx, p, code, from, false, func(tx *store.Tx, cur *gatehouse.User, use func() (string, bool, error)) error {
		if cur.PasswordEpoch != u.PasswordEpoch {
			return errSignInGone()
		}
		taken, err := tx.TakeSignIn(si.ID)
		if err != nil {
			return err
		}
		if !taken {
			return errSignInGone()
		}
		factor, ok, err := use()
		if err != nil {
			return err
		}
		if !ok {
			return errWrongCode()
		}
		if cookie, csrf, err = s.createSession(tx, u, from); err != nil {
			return err
		}
		if factor == factorRecovery {
			return s.auditRecoveryUse(ctx, tx, u)
		}
		return nil
	})
	if gatehouse.ErrorCode(err) == gatehouse.EForbidden {
		return nil, errSignInGone() // the user disabled or deleted meanwhile
	} else if err != nil {
		return nil, err
	}
	return &SignInStep{Session: cookie, CSRF: csrf}, nil
}

// The factors a code can be.
const (
	factorTOTP     = "totp"
	factorRecovery = "recovery_code"
)

// withCode runs fn in one transaction with p's user, locked and read
// again (lockSelf: forbidden when disabled or deleted since p
// authenticated), and with use, which checks code — a TOTP code of the
// user's confirmed enrolment or one of their recovery codes — and
// records its use (the TOTP step, or the recovery code spent) in that
// transaction, reporting which factor it was and whether it was right.
// With confirm, use checks a TOTP code of the user's unconfirmed enrolment
// instead and confirms it (recovery codes do not count then).
//
// The attempt is counted by the sign-in throttle before anything else:
// it stays counted when fn returns a wrong code (errWrongCode), clears
// the user's failures when fn succeeds, and does not count otherwise.
func (s *Service) withCode(ctx context.Context, p *gatehouse.Principal, code, from string, confirm bool, fn func(tx *store.Tx, cur *gatehouse.User, use func() (string, bool, error)) error) error {
	u := p.User
	res, err := s.reserve(ctx, gatehouse.EmailKey(u.Email), from)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx *store.Tx) error {
		// The user first, as an admin's reset of the second factors locks
		// them before it clears the factors this locks next; read again,
		// so that a disable or deletion that committed first is seen.
		cur, err := lockSelf(tx, p)
		if err != nil {
			return err
		}
		return fn(tx, cur, func() (string, bool, error) {
			ok, err := s.useTOTP(tx, u, code, confirm)
			if ok || err != nil || confirm {
				return factorTOTP, ok, err
			}
			ok, err = s.useRecoveryCode(tx, u, code)
			return factorRecovery, ok, err
		})
	})
	return s.settle(ctx, res, err)
}

// useTOTP checks a TOTP code of u inside tx and records its step: a code
// is accepted only for a step later than the last accepted, so each code
// works once and never after a later one (see store.Tx.UseTOTPStep).
func (s *Service) useTOTP(tx *store.Tx, u *gatehouse.User, code string, confirm bool) (bool, error) {
	code = mfa.NormalizeCode(code)
	if len(code) != mfa.Digits {
		return false, nil
	}
	x, err := tx.TOTP(u.ID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if x.Confirmed == confirm {
		return false, nil
	}
	secret, err := s.openSecret(u.ID, x.Sealed)
	if err != nil {
		return false, err
	}
	step, ok := mfa.Match(secret, code, s.now())
	if !ok {
		return false, nil
	}
	return tx.UseTOTPStep(u.ID, step, confirm, s.now())
}

// useRecoveryCode spends one of u's recovery codes inside tx.
func (s *Service) useRecoveryCode(tx *store.Tx, u *gatehouse.User, code string) (bool, error) {
	n := mfa.NormalizeRecoveryCode(code)
	if n == "" {
		return false, nil
	}
	return tx.UseRecoveryCode(u.ID, s.digester.Digest(n), s.now())
}

// openSecret opens a sealed TOTP secret of user id.
func (s *Service) openSecret(id, sealed string) (string, error) {
	if s.mfaSealer == nil {
		return "", gatehouse.Errorf(gatehouse.EUnavailable, "Second factors are not available here")
	}
	secret, err := s.mfaSealer.Open(id, sealed)
	if err != nil {
		// Sealed under another server key: the token key changed.
		return "", errors.Join(gatehouse.Errorf(gatehouse.EConflict, "The TOTP secret does not open under this server's key; an admin can reset the second factor"), err)
	}
	return secret, nil
}

// auditRecoveryUse audits the use of a recovery code by u, with how many
// are left.
func (s *Service) auditRecoveryUse(ctx context.Context, tx *store.Tx, u *gatehouse.User) error {
	p := &gatehouse.Principal{AccountID: u.AccountID, User: u, Method: gatehouse.MethodSession}
	return s.record(tx, s.audit(ctx, p, "user.recovery_code_use", "user", u.ID, nil))
}

// settle decides a counted attempt by the outcome of its check.
func (s *Service) settle(ctx context.Context, res throttle.Reservation, err error) error {
	ctx = context.WithoutCancel(ctx)
	var ge *gatehouse.Error
	switch {
	case err == nil:
		_ = s.throttle.Succeed(ctx, res)
		return nil
	case errors.As(err, &ge) && (ge.Field == "code" || ge.Field == "credential"):
		return err // a wrong code or passkey answer stays counted
	}
	if rerr := s.throttle.Release(ctx, res); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// startSession starts a console session of u in a transaction of its own
// (with more, when set, run in it too).
func (s *Service) startSession(ctx context.Context, u *gatehouse.User, from string, more func(*store.Tx) error) (cookie, csrf string, err error) {
	err = s.store.Update(ctx, func(tx *store.Tx) error {
		if cookie, csrf, err = s.createSession(tx, u, from); err != nil {
			return err
		}
		if more != nil {
			return more(tx)
		}
		return nil
	})
	return cookie, csrf, err
}

// TOTPEnrolment is a new TOTP secret, not yet active, and its otpauth URI
// (for a QR code); both shown once.
type TOTPEnrolment struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

// EnrolTOTP starts p's TOTP enrolment with a new secret, stored sealed
// under the server key; it is active once ConfirmTOTP proves a code of it.
// Starting again replaces an unconfirmed secret; conflict when TOTP is
// already on. p must be a console session or password-grant token of
// the user (forbidden otherwise). Audited as user.totp_enrol.
func (s *Service) EnrolTOTP(ctx context.Context, p *gatehouse.Principal) (*TOTPEnrolment, error) {
	if err := requireSignIn(p); err != nil {
		return nil, err
	}
	if s.mfaSealer == nil {
		return nil, gatehouse.Errorf(gatehouse.EUnavailable, "Second factors are not available here")
	}
	secret := mfa.NewSecret()
	x := &store.TOTP{UserID: p.User.ID, Sealed: s.mfaSealer.Seal(p.User.ID, secret), CreatedAt: s.now()}
	if err := s.update(ctx, func(tx *store.Tx) error {
		// The user first: enrolments started at once then replace one
		// another rather than collide, and none deadlocks with a reset.
		// Read again locked: a user disabled (or disabled and enabled
		// again) while the request was in flight enrols nothing.
		if _, err := lockSelf(tx, p); err != nil {
			return err
		}
		if err := tx.PutTOTP(x); err != nil {
			if gatehouse.ErrorCode(err) == gatehouse.EConflict {
				return gatehouse.Errorf(gatehouse.EConflict, "TOTP is on already; turn it off first to enrol another device")
			}
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.totp_enrol", "user", p.User.ID, nil))
	}); err != nil {
		return nil, err
	}
	return &TOTPEnrolment{Secret: secret, OTPAuthURI: mfa.URI(s.issuer, p.User.Email, secret)}, nil
}

// ConfirmTOTP turns p's enrolled TOTP on with a code of its secret, typed
// from the client address from (counted by the sign-in throttle), and
// returns ten new recovery codes, shown once and stored as digests. Every
// other console session, pending sign-in and password-grant token of the
// user ends — they began with the password alone — but the credential p
// came with. conflict when TOTP is on already; invalid_request about code
// for a wrong code; forbidden when the user has been disabled, deleted or
// given a new password meanwhile. Audited as user.mfa_enable.
func (s *Service) ConfirmTOTP(ctx context.Context, p *gatehouse.Principal, code, from string) ([]string, error) {
	if err := requireSignIn(p); err != nil {
		return nil, err
	}
	codes := mfa.NewRecoveryCodes()
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = s.digester.Digest(mfa.NormalizeRecoveryCode(c))
	}
	err := s.withCode(ctx, p, code, from, true, func(tx *store.Tx, cur *gatehouse.User, use func() (string, bool, error)) error {
		x, err := tx.TOTP(p.User.ID)
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			return gatehouse.Errorf(gatehouse.EConflict, "Start a TOTP enrolment first (POST /v1/me/mfa/totp)")
		} else if err != nil {
			return err
		}
		if x.Confirmed {
			return gatehouse.Errorf(gatehouse.EConflict, "TOTP is on already")
		}
		if _, ok, err := use(); err != nil {
			return err
		} else if !ok {
			return errWrongCode()
		}
		if err := tx.ReplaceRecoveryCodes(p.User.ID, hashes, s.now()); err != nil {
			return err
		}
		if err := s.endPasswordOnly(tx, p, cur); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.mfa_enable", "user", p.User.ID, map[string]string{"factor": factorTOTP}))
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// endPasswordOnly ends, inside tx, every console session, pending sign-in
// and password-grant token of p's user but p's own credential: those
// began with the password alone. p's credential is kept only if nothing
// ended it meanwhile (requireEpochsKept: forbidden when the user was
// disabled or given a new password while the change was in flight), so
// that keeping it never brings it back. u is p's user as the caller
// locked it in tx (lockSelf).
func (s *Service) endPasswordOnly(tx *store.Tx, p *gatehouse.Principal, u *gatehouse.User) error {
	if err := requireEpochsKept(p, u); err != nil {
		return err
	}
	u.PasswordEpoch++
	u.UpdatedAt = s.now()
	if err := tx.UpdateUser(u); err != nil {
		return err
	}
	if err := tx.DeleteSignIns(u.ID); err != nil {
		return err
	}
	return tx.KeepCredential(p.CredentialID, p.Method, u)
}

// DisableTOTP turns p's TOTP off, and deletes their recovery codes, with a
// current TOTP code or a recovery code (counted by the sign-in throttle).
// not_found when TOTP is not on; invalid_request about code for a wrong
// code; forbidden when the user has been disabled or deleted meanwhile. A
// user whose account requires a second factor is led to enrol
// again at their next console page. Audited as user.mfa_disable.
func (s *Service) DisableTOTP(ctx context.Context, p *gatehouse.Principal, code, from string) error {
	if err := requireSignIn(p); err != nil {
		return err
	}
	f, err := s.store.Factors(ctx, p.User.ID)
	if err != nil {
		return err
	}
	if !f.TOTP {
		return gatehouse.NotFound("TOTP enrolment")
	}
	return s.withCode(ctx, p, code, from, false, func(tx *store.Tx, _ *gatehouse.User, use func() (string, bool, error)) error {
		factor, ok, err := use()
		if err != nil {
			return err
		}
		if !ok {
			return errWrongCode()
		}
		if _, err := tx.DeleteTOTP(p.User.ID); err != nil {
			return err
		}
		if left, err := tx.HasFactors(p.User.ID); err != nil {
			return err
		} else if !left {
			if err := tx.ReplaceRecoveryCodes(p.User.ID, nil, time.Time{}); err != nil {
				return err
			}
		}
		return s.record(tx, s.audit(ctx, p, "user.mfa_disable", "user", p.User.ID, map[string]string{"factor": factorTOTP, "proved_with": factor}))
	})
}

// MFAStatus is what second factors a user has (GET /v1/me/mfa).
type MFAStatus struct {
	TOTP              bool `json:"totp"`
	Passkeys          int  `json:"passkeys"`
	RecoveryCodesLeft int  `json:"recovery_codes_left"`
	// Required tells that the account's require_mfa covers the user.
	Required bool `json:"required"`
}

// SecondFactors returns p's second factors. p must be a console session
// or password-grant token of the user.
func (s *Service) SecondFactors(ctx context.Context, p *gatehouse.Principal) (*MFAStatus, error) {
	if err := requireSignIn(p); err != nil {
		return nil, err
	}
	f, err := s.store.Factors(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	return &MFAStatus{TOTP: f.TOTP, Passkeys: f.Passkeys, RecoveryCodesLeft: f.RecoveryCodesLeft, Required: p.Account != nil && p.Account.Settings.MFARequired(p.User.Roles)}, nil
}

// MustEnrol reports whether p, a console session, must enrol a second
// factor before anything else: their account's require_mfa covers them
// and they have none.
func (s *Service) MustEnrol(ctx context.Context, p *gatehouse.Principal) (bool, error) {
	if p.User == nil || p.Account == nil || !p.Account.Settings.MFARequired(p.User.Roles) {
		return false, nil
	}
	f, err := s.store.Factors(ctx, p.User.ID)
	return !f.Any(), err
}

// ResetSecondFactors removes every second factor and recovery code of a
// user of p's account (an admin; not_found for another account's user),
// for a user who lost them; the user signs in with the password alone
// again, and is led to enrol if require_mfa covers them. Only the
// operator may reset the operator's. Audited as user.mfa_reset.
func (s *Service) ResetSecondFactors(ctx context.Context, p *gatehouse.Principal, userID string) error {
	if err := RequireAdmin(p); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		if err := requireAdminShared(tx, p); err != nil {
			return err
		}
		u, err := tx.User(p.AccountID, userID)
		if err != nil {
			return err
		}
		if u.Operator && !p.IsOperator() {
			return gatehouse.Forbidden("Only the operator may change the operator")
		}
		if u.ID == p.UserID() || u.IsAdmin() {
			// Removing one's own second factors, or an admin's, is
			// managed from a sign-in, as enrolling them is.
			if err := requireSignIn(p); err != nil {
				return err
			}
		}
		n, err := tx.ClearFactors(u.ID)
		if err != nil {
			return err
		}
		if err := tx.DeleteSignIns(u.ID); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "user.mfa_reset", "user", u.ID, map[string]string{"count": strconv.Itoa(n)}))
	})
}

// EndSession ends one console session of p's own user, from a sign-in
// (requireSignIn); not_found when they have no such session. Audited as
// user.session_end.
func (s *Service) EndSession(ctx context.Context, p *gatehouse.Principal, id string) error {
	if err := requireSignIn(p); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		ok, err := tx.DeleteUserSession(p.User.ID, id)
		if err != nil {
			return err
		}
		if !ok {
			return gatehouse.NotFound("session")
		}
		return s.record(tx, s.audit(ctx, p, "user.session_end", "session", id, nil))
	})
}

// PendingTOTP returns p's TOTP enrolment that waits for its confirmation,
// so that the console can show its secret and QR code until a code
// confirms it; not_found when there is none (or it is on already).
func (s *Service) PendingTOTP(ctx context.Context, p *gatehouse.Principal) (*TOTPEnrolment, error) {
	if err := requireSignIn(p); err != nil {
		return nil, err
	}
	x, err := s.store.TOTP(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	if x.Confirmed {
		return nil, gatehouse.NotFound("TOTP enrolment")
	}
	secret, err := s.openSecret(p.User.ID, x.Sealed)
	if err != nil {
		return nil, err
	}
	return &TOTPEnrolment{Secret: secret, OTPAuthURI: mfa.URI(s.issuer, p.User.Email, secret)}, nil
}

// UserSecondFactors returns the second factors of a user of p's account,
// for an admin (not_found for another account's user).
func (s *Service) UserSecondFactors(ctx context.Context, p *gatehouse.Principal, userID string) (*MFAStatus, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	u, err := s.store.User(ctx, p.AccountID, userID)
	if err != nil {
		return nil, err
	}
	f, err := s.store.Factors(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &MFAStatus{TOTP: f.TOTP, Passkeys: f.Passkeys, RecoveryCodesLeft: f.RecoveryCodesLeft, Required: p.Account != nil && p.Account.Settings.MFARequired(u.Roles)}, nil
}
