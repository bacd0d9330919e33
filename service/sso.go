package service

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sso"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/throttle"
	"github.com/gatehouse/gatehouse/token"
)

// SSOLoginLifetime is how long a sign-in sent to an identity provider may
// take to come back.
const SSOLoginLifetime = 10 * time.Minute

// StartsPerHour is how many of each kind of start anyone may make — a
// single sign-on, a device authorization, a password-less passkey sign-in
// — one client network may make in an hour: generous, for a company
// behind one address; the next is too_many_attempts with Retry-After.
// Each start is a row in the store (and a single sign-on may be a request
// to the identity provider), so a flood from one network is refused
// before it writes, and cannot fill what all share (the password-less
// sign-ins waiting at once, MaxOpenPasswordlessSignIns).
const StartsPerHour = 300

// SSOStartsPerHour is StartsPerHour for single sign-on.
const SSOStartsPerHour = StartsPerHour

// startKinds is how many kinds of start share the count per client
// network (StartRules).
const startKinds = 3

// StartRules are the throttle rules of the starts anyone may make: each
// kind StartsPerHour per client network (the throttle's username is the
// kind and the network), all kinds together startKinds times that.
func StartRules() throttle.Rules {
	r := throttle.Rule{Limit: StartsPerHour, Window: time.Hour}
	return throttle.Rules{UserAddr: r, User: r, Addr: throttle.Rule{Limit: startKinds * StartsPerHour, Window: time.Hour}}
}

// reserveStart counts a start of kind (one of startKinds) from the client
// address from, before anything is read or written: too_many_attempts
// past StartsPerHour, temporarily_unavailable (what, a sentence) when the
// count cannot be kept.
func (s *Service) reserveStart(ctx context.Context, kind, from, unavailable string) error {
	_, err := s.starts.Reserve(ctx, kind+"\x00"+throttle.Network(from), from)
	if err == nil || gatehouse.ErrorCode(err) == gatehouse.ETooManyAttempts {
		return err // a refusal is not logged: a flood would flood the log too
	}
	s.logger.WarnContext(ctx, kind+": the throttle cannot be reached", "err", err)
	return errors.Join(&gatehouse.Error{Code: gatehouse.EUnavailable, Message: unavailable, RetryAfter: time.Second}, err)
}

// ErrSSORequired is joined to the password sign-in's refusal for a user
// whose account requires single sign-on.
var ErrSSORequired = errors.New("this account signs in with single sign-on")

// errSSORequired is the answer to a right password of a user whose account
// requires single sign-on: invalid_grant, as the password grant answers.
func errSSORequired() error {
	return errors.Join(gatehouse.Errorf(gatehouse.EInvalidGrant, "this account signs in with single sign-on"), ErrSSORequired)
}

// ssoRequired reports whether u may not sign in with a password: their
// account requires single sign-on and they are not the operator, whose
// password is the break-glass when the provider is away.
func (s *Service) ssoRequired(ctx context.Context, u *gatehouse.User) (bool, error) {
	if u.Operator {
		return false, nil
	}
	c, err := s.store.SSOConfig(ctx, u.AccountID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return c.Required, nil
}

// ssoView returns the account's single sign-on as settings show it, nil
// when it has none.
func (s *Service) ssoView(ctx context.Context, accountID string) (*gatehouse.SSOSettings, error) {
	c, err := s.store.SSOConfig(ctx, accountID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return viewSSO(c), nil
}

func viewSSO(c *store.SSOConfig) *gatehouse.SSOSettings {
	if c == nil {
		return nil
	}
	return &gatehouse.SSOSettings{Issuer: c.Issuer, ClientID: c.ClientID, ClientSecretSet: c.SealedSecret != "",
		Domains: append([]string{}, c.Domains...), Required: c.Required}
}

// nextSSO checks an SSO patch against the account's current single
// sign-on and returns what to store (nil to remove it), with the issuer
// discovered — a provider that cannot be discovered is refused on save
// (invalid_request about sso.issuer), not at the first sign-in — and the
// single sign-on it was made from (nil for none), which writeSSO finds
// unchanged or refuses.
func (s *Service) nextSSO(ctx context.Context, accountID string, p *gatehouse.SSOPatch) (next, base *store.SSOConfig, err error) {
	base, err = s.store.SSOConfig(ctx, accountID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		base = nil
	} else if err != nil {
		return nil, nil, err
	}
	next, err = s.patchSSO(ctx, accountID, base, p)
	return next, base, err
}

// patchSSO is nextSSO's check of p against base.
func (s *Service) patchSSO(ctx context.Context, accountID string, base *store.SSOConfig, p *gatehouse.SSOPatch) (*store.SSOConfig, error) {
	var err error
	cur := &store.SSOConfig{AccountID: accountID}
	if base != nil {
		cur = base
	}
	next := *cur
	if p.Issuer != nil {
		if *p.Issuer == "" {
			return nil, nil
		}
		if next.Issuer, err = sso.CheckIssuer(*p.Issuer, s.webhookInsecure); err != nil {
			return nil, err
		}
	}
	if p.ClientID != nil {
		id, err := checkName("sso.client_id", *p.ClientID, sso.MaxClientIDLen, false)
		if err != nil {
			return nil, gatehouse.Field(err, "sso.client_id", "Give the client id the provider issued: one line, without tabs or other control characters.")
		}
		next.ClientID = id
	}
	if p.ClientSecret != nil {
		sec := *p.ClientSecret
		if len(sec) > sso.MaxSecretLen || strings.ContainsAny(sec, "\x00\r\n") {
			return nil, gatehouse.InvalidField("sso.client_secret", "Give the client secret the provider issued, on one line.", "sso.client_secret must be one line of at most %d bytes", sso.MaxSecretLen)
		}
		next.SealedSecret = ""
		if sec != "" {
			next.SealedSecret = s.ssoSealer.Seal(accountID, sec)
		}
	}
	if p.Domains != nil {
		if next.Domains, err = sso.CheckDomains(*p.Domains); err != nil {
			return nil, err
		}
	}
	if p.Required != nil {
		next.Required = *p.Required
	}
	switch {
	case next.Issuer == "":
		return nil, gatehouse.InvalidField("sso.issuer", "Give the provider's issuer URL.", "sso.issuer is required")
	case next.ClientID == "":
		return nil, gatehouse.InvalidField("sso.client_id", "Give the client id the provider issued.", "sso.client_id is required")
	case len(next.Domains) == 0:
		return nil, gatehouse.InvalidField("sso.domains", "Name at least one e-mail domain, such as example.com.", "sso.domains needs at least one domain")
	}
	s.sso.Forget(next.Issuer)
	if _, err := s.sso.Discover(ctx, next.Issuer); err != nil {
		s.logger.WarnContext(ctx, "sso: discovery failed on save", "issuer", next.Issuer, "err", err)
		return nil, err
	}
	// The stored secret was issued by the current provider, and goes to
	// whatever token endpoint the issuer names: pointing single sign-on
	// elsewhere without a new secret would hand it to that provider.
	if cur.Issuer != "" && next.Issuer != cur.Issuer && cur.SealedSecret != "" && next.SealedSecret == cur.SealedSecret {
		return nil, gatehouse.InvalidField("sso.client_secret",
			"Give the client secret the new provider issued: the stored one belongs to the previous provider.",
			"sso.client_secret is required when sso.issuer changes: the stored secret is never sent to another provider")
	}
	next.UpdatedAt = s.now()
	return &next, nil
}

// writeSSO stores (or, with next nil, removes) the account's single
// sign-on inside tx, audited as sso.update or sso.remove without the
// secret. A next made from base (nextSSO) is stored only over base: when
// another change committed since base was read — single sign-on made
// required, removed, pointed elsewhere — the save is a conflict, not an
// undoing of that change (the account's row, locked by the caller, orders
// the saves).
func (s *Service) writeSSO(ctx context.Context, tx *store.Tx, p *gatehouse.Principal, next, base *store.SSOConfig) error {
	if next == nil {
		if err := tx.DeleteSSOConfig(p.AccountID); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "sso.remove", "account", p.AccountID, nil))
	}
	prev, err := tx.SSOConfig(p.AccountID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		prev, err = nil, nil
	}
	if err != nil {
		return err
	}
	if !sameSSO(prev, base) {
		return gatehouse.Errorf(gatehouse.EConflict, "The single sign-on settings changed while this change was checked: read them again and retry")
	}
	if err := tx.PutSSOConfig(next); err != nil {
		return err
	}
	if next.Required && (prev == nil || !prev.Required) {
		if err := s.endPasswordUse(tx, p); err != nil {
			return err
		}
	}
	req := "false"
	if next.Required {
		req = "true"
	}
	return s.record(tx, s.audit(ctx, p, "sso.update", "account", p.AccountID, map[string]string{
		"issuer": next.Issuer, "client_id": next.ClientID, "domains": strings.Join(next.Domains, ","), "required": req}))
}

// endPasswordUse, as single sign-on becomes required, signs every user of
// p's account but the operator out of what a sign-in began (sessions,
// password-grant tokens, pending sign-ins), so that nobody keeps the
// console or the API through a password or a passkey alone — offboarding
// at the provider then ends everyone's access. The credential p acts
// through is kept, so the admin who made the change is not signed out by
// it.
func (s *Service) endPasswordUse(tx *store.Tx, p *gatehouse.Principal) error {
	if err := tx.EndPasswordUse(p.AccountID, s.now()); err != nil {
		return err
	}
	if p.User == nil || p.User.Operator || p.User.AccountID != p.AccountID {
		return nil
	}
	u, err := tx.User(p.AccountID, p.User.ID)
	if err != nil {
		return err
	}
	return tx.KeepCredential(p.CredentialID, p.Method, u)
}

// ssoConfig returns the account's provider for a sign-in, with its client
// secret opened.
func (s *Service) ssoConfig(c *store.SSOConfig, redirectURL string) (sso.Config, error) {
	cfg := sso.Config{Issuer: c.Issuer, ClientID: c.ClientID, RedirectURL: redirectURL, Domains: c.Domains}
	if c.SealedSecret != "" {
		sec, err := s.ssoSealer.Open(c.AccountID, c.SealedSecret)
		if err != nil {
			return cfg, errors.Join(gatehouse.Errorf(gatehouse.EConflict, "The single sign-on's client secret does not open under this server's key; an admin sets it again"), err)
		}
		cfg.ClientSecret = sec
	}
	return cfg, nil
}

// errNoSSO is the answer to a single sign-on asked for an address or an
// account that has none.
func errNoSSO() error {
	return gatehouse.InvalidField("email", "Single sign-on is not set up for this address. Sign in with your password.",
		"no single sign-on is set up for this address or account")
}

// ssoFor finds the single sign-on of a sign-in: the account's, when
// accountID is given; otherwise that of the one account whose allowed
// domains hold the address's domain, or, when several do, that of the
// user with the address if theirs is one of them.
func (s *Service) ssoFor(ctx context.Context, email, accountID string) (*store.SSOConfig, error) {
	if accountID != "" {
		if _, err := checkName("account", accountID, MaxQueryLen, false); err != nil {
			return nil, errNoSSO()
		}
		c, err := s.store.SSOConfig(ctx, accountID)
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			return nil, errNoSSO()
		}
		return c, err
	}
	key := gatehouse.EmailKey(email)
	if len(key) > MaxEmailLen || sso.Domain(key) == "" {
		return nil, gatehouse.InvalidField("email", "Enter your e-mail address.", "email must be an e-mail address")
	}
	all, err := s.store.SSOConfigs(ctx)
	if err != nil {
		return nil, err
	}
	var claims []*store.SSOConfig
	for _, c := range all {
		if sso.Allowed(key, c.Domains) {
			claims = append(claims, c)
		}
	}
	switch len(claims) {
	case 0:
		return nil, errNoSSO()
	case 1:
		return claims[0], nil
	}
	// Two accounts claim the domain: the one of the user with the
	// address, if it is one of them; else neither is guessed. Only
	// here does the answer depend on whether the address is a user's
	// (docs/sso.md): anywhere else an address that is a user's and one
	// that is not are answered alike.
	u, err := s.store.UserByEmail(ctx, key)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, errNoSSO()
	} else if err != nil {
		return nil, err
	}
	for _, c := range claims {
		if c.AccountID == u.AccountID {
			return c, nil
		}
	}
	return nil, errNoSSO()
}

// SSOStart is a sign-in sent to an identity provider: the URL to send the
// browser to, and the value of the cookie that binds the sign-in to that
// browser (shown once; the callback needs it).
type SSOStart struct {
	URL, Binding string
}

// StartSSO begins a single sign-on for the address email (or for the
// account accountID, when given) from the client address from, with
// redirectURL the console's callback: it stores the sign-in (the digests
// of its state and of its cookie, for SSOLoginLifetime) and returns where
// to send the browser. invalid_request about email when no single sign-on
// is set up for it. Every call is counted per client address first, found
// or not: past SSOStartsPerHour it is too_many_attempts with Retry-After,
// before any store or provider is asked; temporarily_unavailable when the
// count cannot be kept.
func (s *Service) StartSSO(ctx context.Context, email, accountID, redirectURL, from string) (*SSOStart, error) {
	if err := s.reserveStart(ctx, "sso", from, "Single sign-on is unavailable; try again shortly"); err != nil {
		return nil, err
	}
	c, err := s.ssoFor(ctx, email, accountID)
	if err != nil {
		return nil, err
	}
	a, err := s.store.Account(ctx, c.AccountID)
	if err != nil {
		return nil, err
	}
	if !a.Active() {
		return nil, errNoSSO()
	}
	cfg, err := s.ssoConfig(c, redirectURL)
	if err != nil {
		return nil, err
	}
	binding, state := sso.NewBinding(), rand.Text()
	to, err := s.sso.AuthURL(ctx, cfg, state, binding)
	if err != nil {
		s.logger.WarnContext(ctx, "sso: discovery failed", "issuer", cfg.Issuer, "err", err)
		return nil, errors.Join(gatehouse.Errorf(gatehouse.EUnavailable, "The identity provider cannot be reached; try again shortly"), err)
	}
	now := s.now()
	l := &store.SSOLogin{ID: gatehouse.NewID("sso"), StateHash: s.digester.Digest(state), CookieHash: s.digester.Digest(binding),
		AccountID: c.AccountID, ClientAddr: from, CreatedAt: now, ExpiresAt: now.Add(SSOLoginLifetime)}
	if err := s.store.Update(ctx, func(tx *store.Tx) error { return tx.CreateSSOLogin(l) }); err != nil {
		return nil, err
	}
	return &SSOStart{URL: to, Binding: binding}, nil
}

// SSOCallback is what the identity provider sent back to the console's
// callback, and the browser's cookie of the sign-in.
type SSOCallback struct {
	Binding, State, Code string
	// Error is the provider's error parameter, if it sent one.
	Error string
}

// ErrSSORefused is joined to every refusal of FinishSSO: the sign-in is
// over and no session began.
var ErrSSORefused = errors.New("single sign-on refused")

// refuseSSO audits a refused single sign-on of the account (none when the
// sign-in could not be found) and returns the refusal: forbidden, with
// the sentence for the person.
func (s *Service) refuseSSO(ctx context.Context, accountID, reason, msg, email string) error {
	if accountID != "" {
		d := map[string]string{"reason": reason}
		if email != "" {
			d["email"] = email
		}
		e := s.audit(ctx, nil, "sso.refused", "account", accountID, d)
		e.AccountID = accountID
		if err := s.update(ctx, func(tx *store.Tx) error { return s.record(tx, e) }); err != nil {
			return err
		}
	}
	return errors.Join(gatehouse.Forbidden("%s", msg), ErrSSORefused)
}

// FinishSSO completes the single sign-on of cb, from the client address
// from, with redirectURL the callback the sign-in was started with. The
// sign-in is taken once: its state must name a stored sign-in begun less
// than SSOLoginLifetime ago whose cookie is cb.Binding. The code is
// redeemed with the PKCE verifier, the ID token verified (issuer,
// audience, expiry, signature, nonce), and its e-mail address must be
// present, verified and of an allowed domain, and be the address of an
// active user of that account: users are never created here. Then a
// console session starts — or, for a user with a second factor, the
// sign-in's second step (Pending), as after a password.
//
// Every refusal is forbidden joined with ErrSSORefused, with a sentence
// saying why, and is audited as sso.refused with its reason; a provider
// that cannot be reached is temporarily_unavailable.
func (s *Service) FinishSSO(ctx context.Context, cb SSOCallback, redirectURL, from string) (*SignInStep, error) {
	if cb.State == "" || len(cb.State) > 512 || len(cb.Binding) > 512 {
		return nil, s.refuseSSO(ctx, "", "state", "This sign-in was not started in this browser, or it expired. Start again.", "")
	}
	var l *store.SSOLogin
	err := s.store.Update(ctx, func(tx *store.Tx) (err error) {
		l, err = tx.TakeSSOLogin(s.digester.Digest(cb.State))
		return err
	})
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, s.refuseSSO(ctx, "", "state", "This sign-in was used already, expired, or was not started in this browser. Start again.", "")
	} else if err != nil {
		return nil, err
	}
	// The state is spent whoever presents it: a callback URL that leaked
	// to another browser is refused there and no longer works here.
	if cb.Binding == "" || l.CookieHash != s.digester.Digest(cb.Binding) {
		return nil, s.refuseSSO(ctx, l.AccountID, "state", "This sign-in was not started in this browser. Start again.", "")
	}
	if !s.now().Before(l.ExpiresAt) {
		return nil, s.refuseSSO(ctx, l.AccountID, "expired", "This sign-in took too long and expired. Start again.", "")
	}
	if cb.Error != "" {
		return nil, s.refuseSSO(ctx, l.AccountID, "provider", "The identity provider did not sign you in ("+safeASCIIWord(cb.Error)+").", "")
	}
	if cb.Code == "" || len(cb.Code) > 2048 {
		return nil, s.refuseSSO(ctx, l.AccountID, "exchange", "The identity provider sent no code back.", "")
	}
	c, err := s.store.SSOConfig(ctx, l.AccountID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, s.refuseSSO(ctx, l.AccountID, "removed", "Single sign-on is no longer set up for this account.", "")
	} else if err != nil {
		return nil, err
	}
	cfg, err := s.ssoConfig(c, redirectURL)
	if err != nil {
		return nil, err
	}
	id, err := s.sso.Exchange(ctx, cfg, cb.Code, cb.Binding)
	var ref *sso.Refusal
	if errors.As(err, &ref) {
		s.logger.InfoContext(ctx, "sso: refused", "account_id", l.AccountID, "reason", ref.Reason, "err", ref.Err)
		return nil, s.refuseSSO(ctx, l.AccountID, ref.Reason, ref.Message, "")
	} else if err != nil {
		return nil, err
	}
	key := gatehouse.EmailKey(id.Email)
	u, err := s.store.UserByEmail(ctx, key)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound || (err == nil && u.AccountID != l.AccountID) {
		return nil, s.refuseSSO(ctx, l.AccountID, "unknown_user", "No user of this account has the address "+key+". An admin of the account adds users before they sign in.", key)
	} else if err != nil {
		return nil, err
	}
	a, err := s.store.Account(ctx, u.AccountID)
	if err != nil {
		return nil, err
	}
	if !u.Active() || !a.Active() {
		return nil, s.refuseSSO(ctx, l.AccountID, "disabled", "This user or account is disabled.", key)
	}
	if u.Operator {
		// The account's admins choose its provider, and a provider they run
		// can assert any address: the operator, whom only the operator may
		// change, signs in with their own password and second factor.
		return nil, s.refuseSSO(ctx, l.AccountID, "operator", "The operator signs in with their password, not with single sign-on.", key)
	}
	f, err := s.store.Factors(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	p := &gatehouse.Principal{Account: a, AccountID: u.AccountID, User: u, Method: gatehouse.MethodSession}
	signedIn := s.audit(ctx, p, "user.sso_sign_in", "user", u.ID, map[string]string{"issuer": c.Issuer, "subject": id.Subject})
	if f.Any() {
		// The provider stands for the password: the second factor follows.
		raw := s.mint(token.Session)
		now := s.now()
		si := &store.SignIn{ID: gatehouse.NewID("sig"), Hash: s.digester.Digest(raw), AccountID: u.AccountID, UserID: u.ID,
			ClientAddr: from, CreatedAt: now, ExpiresAt: now.Add(SignInLifetime), UserEpoch: u.Epoch, PasswordEpoch: u.PasswordEpoch}
		if err := s.update(ctx, func(tx *store.Tx) error {
			if err := tx.CreateSignIn(si); err != nil {
				return err
			}
			return s.record(tx, signedIn)
		}); err != nil {
			return nil, err
		}
		return &SignInStep{Pending: raw}, nil
	}
	cookie, csrf, err := s.startSession(ctx, u, from, func(tx *store.Tx) error { return s.record(tx, signedIn) })
	if err != nil {
		return nil, err
	}
	return &SignInStep{Session: cookie, CSRF: csrf}, nil
}

// safeASCIIWord keeps an OAuth error code's characters (RFC 6749: %x20-21
// / %x23-5B / %x5D-7E, here letters, digits, _ and -), at most 64.
func safeASCIIWord(s string) string {
	var b strings.Builder
	for _, c := range s {
		if b.Len() == 64 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "error"
	}
	return b.String()
}

// sameSSO reports whether a and b (nil for none) are one stored single
// sign-on, unchanged.
func sameSSO(a, b *store.SSOConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Issuer == b.Issuer && a.ClientID == b.ClientID && a.SealedSecret == b.SealedSecret &&
		slices.Equal(a.Domains, b.Domains) && a.Required == b.Required && a.UpdatedAt.Equal(b.UpdatedAt)
}
