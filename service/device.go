package service

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// The device authorization grant (RFC 8628, SPEC §10.4): a device with no
// browser asks for a device code and a user code, the person enters the
// user code on the console's device page and consents, and the device
// polls the token endpoint until the tokens come.

// DeviceAuthorization is the answer of the device authorization endpoint
// (RFC 8628 §3.2). DeviceCode is shown once; only its digest is kept.
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// StartDevice starts a device authorization of the application clientID
// (authenticated as at the token endpoint: invalid_client otherwise) for
// scope (empty: the application's scopes; a scope the application did not
// register is invalid_scope), binding its tokens to resource (RFC 8707;
// "" for none, else an absolute URI: invalid_target otherwise).
// verificationURI is the device page's URL. Past StartsPerHour device
// authorizations from the client address from in an hour, it is
// too_many_attempts, before anything is written.
func (s *Service) StartDevice(ctx context.Context, clientID, secret, scope, resource, verificationURI, from string) (*DeviceAuthorization, error) {
	if clientID == "" {
		return nil, gatehouse.Errorf(gatehouse.EInvalidClient, "Client authentication is required")
	}
	requested, err := requestedScopes(scope)
	if err != nil {
		return nil, err
	}
	bound, err := resourceParam(resource)
	if err != nil {
		return nil, err
	}
	app, err := s.appClient(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	if err := deviceGrantAllowed(app); err != nil {
		return nil, err
	}
	if requested != nil && app.Scopes != nil {
		for _, sc := range requested {
			if !app.Scopes.Allows(sc) {
				return nil, gatehouse.Errorf(gatehouse.EInvalidScope, "The application did not register scope %s", sc)
			}
		}
	}
	if err := s.reserveStart(ctx, "device", from, "Device authorization is unavailable; try again shortly"); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		raw, userCode := s.mint(token.DeviceCode), authorize.NewUserCode()
		now := s.now()
		d := &gatehouse.DeviceCode{ID: gatehouse.NewID("dvc"), DeviceHash: s.digester.Digest(raw), UserCodeHash: s.digester.Digest(userCode),
			ClientID: app.ClientID, Requested: requested, Resource: bound, Status: gatehouse.DevicePending, Interval: authorize.DeviceInterval,
			CreatedAt: now, ExpiresAt: now.Add(s.deviceLifetime)}
		err := s.update(ctx, func(tx *store.Tx) error { return tx.CreateDeviceCode(d) })
		if gatehouse.ErrorCode(err) == gatehouse.EConflict && attempt < 3 {
			continue // a user code in use already: draw another
		}
		if err != nil {
			return nil, err
		}
		return &DeviceAuthorization{DeviceCode: raw, UserCode: userCode, VerificationURI: verificationURI,
			VerificationURIComplete: verificationURI + "?" + url.Values{"user_code": {userCode}}.Encode(),
			ExpiresIn:               int(s.deviceLifetime / time.Second), Interval: int(authorize.DeviceInterval / time.Second)}, nil
	}
}

// deviceGrantAllowed refuses the device grant to a client that registered
// itself (RFC 7591): it registers for the authorization code grant only,
// and the device grant — a user code typed in on another device, whose
// consent page names the client as it named itself — is for applications
// a developer registered (unauthorized_client).
func deviceGrantAllowed(app *gatehouse.App) error {
	if app.Registered {
		return gatehouse.Errorf(gatehouse.EUnauthorizedClient, "A client that registered itself may use the authorization code grant only")
	}
	return nil
}

// DeviceConsent is what the device page asks about a user code.
type DeviceConsent struct {
	*Consent
	// UserCode is the code as entered, in its canonical form.
	UserCode string
	device   *gatehouse.DeviceCode
}

// deviceKey is the throttle's key for the user codes p's user enters:
// counted like passwords, per user and address, per user and per address.
// It is not an e-mail key (see notEmailKey).
func deviceKey(p *gatehouse.Principal) string { return notEmailKey + "device-code:" + p.User.ID }

func wrongUserCode() error {
	return gatehouse.InvalidField("user_code", "That code is not valid: it may be mistyped, expired or used already.",
		"The code is not valid, expired or used already")
}

// CheckUserCode returns what to ask p's user about the device
// authorization with the user code typed, entered from the client
// address from. Every entry is counted by the sign-in throttle before the
// code is looked up (too_many_attempts with a Retry-After when over a
// limit); a code that is not pending or has expired is an invalid_request
// about user_code and stays counted; a right code is not counted and
// clears nothing (wrong codes stay counted for their window). A
// policy that refuses the application is forbidden.
func (s *Service) CheckUserCode(ctx context.Context, p *gatehouse.Principal, typed, from string) (*DeviceConsent, error) {
	if err := RequireUser(p); err != nil {
		return nil, err
	}
	res, err := s.reserve(ctx, deviceKey(p), from)
	if err != nil {
		return nil, err
	}
	dc, err := s.checkUserCode(ctx, p, typed)
	var ge *gatehouse.Error
	switch {
	case err == nil, errors.As(err, &ge) && ge.Code == gatehouse.EForbidden:
		// A right code is not counted, and clears nothing: the user's own
		// code, typed between guesses, must not reset the guesses' count.
		if rerr := s.throttle.Release(context.WithoutCancel(ctx), res); rerr != nil && err == nil {
			return nil, rerr
		}
		return dc, err
	case errors.As(err, &ge) && ge.Field == "user_code":
		return nil, err // a wrong code stays counted
	}
	if rerr := s.throttle.Release(context.WithoutCancel(ctx), res); rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	return nil, err
}

func (s *Service) checkUserCode(ctx context.Context, p *gatehouse.Principal, typed string) (*DeviceConsent, error) {
	code, ok := authorize.NormalizeUserCode(typed)
	if !ok {
		return nil, wrongUserCode()
	}
	d, err := s.store.DeviceByUserCode(ctx, s.digester.Digest(code))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, wrongUserCode()
	} else if err != nil {
		return nil, err
	}
	if d.Status != gatehouse.DevicePending || !s.now().Before(d.ExpiresAt) {
		return nil, wrongUserCode()
	}
	app, err := s.liveApp(ctx, d.ClientID)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, wrongUserCode()
	} else if err != nil {
		return nil, err
	}
	c, err := s.consent(ctx, p, app, d.Requested)
	var re *AuthRedirectError
	if errors.As(err, &re) {
		return nil, gatehouse.Forbidden("%s cannot be authorised: %s", app.Name, re.Description)
	} else if err != nil {
		return nil, err
	}
	return &DeviceConsent{Consent: c, UserCode: code, device: d}, nil
}

// DecideDevice records p's user's answer to the device authorization with
// the user code typed (checked again as CheckUserCode does): allow grants
// the consent's scopes and lets the device's next poll have tokens, deny
// makes it access_denied. A user code is decided once: of any number of
// concurrent decisions exactly one counts, the others are invalid_request
// about user_code.
func (s *Service) DecideDevice(ctx context.Context, p *gatehouse.Principal, typed, from string, allow bool) (*DeviceConsent, error) {
	dc, err := s.CheckUserCode(ctx, p, typed, from)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := p.User
	d := *dc.device
	d.Status = gatehouse.DeviceDenied
	action := "app.device_deny"
	if allow {
		d.Status, d.AccountID, d.UserID, d.Scopes = gatehouse.DeviceApproved, u.AccountID, u.ID, dc.Scopes
		d.FamilyID, d.UserEpoch, d.PasswordEpoch = gatehouse.NewID("fam"), u.Epoch, u.PasswordEpoch
		action = "app.device_allow"
	}
	err = s.update(ctx, func(tx *store.Tx) error {
		if allow {
			if err := s.grantConsent(ctx, tx, p, dc.Consent, now); err != nil {
				return err
			}
		}
		won, err := tx.DecideDevice(&d, now)
		if err != nil {
			return err
		}
		if !won {
			return wrongUserCode()
		}
		return s.record(tx, s.audit(ctx, p, action, "app", dc.App.ID, map[string]string{"client_id": dc.App.ClientID,
			"scopes": scopesText(d.Scopes)}))
	})
	if err != nil {
		return nil, err
	}
	return dc, nil
}

// DeviceGrant answers a poll of the token endpoint with a device code
// (RFC 8628 §3.4, §3.5). The client authenticates as for CodeGrant and
// must be the one the code was issued to (invalid_grant otherwise).
// While no one has decided, the answer is authorization_pending, or
// slow_down when the poll came sooner than the interval after the last
// one (the interval then grows by 5 s for every later poll); a denial is
// access_denied; past its lifetime, expired_token. After approval the
// first poll gets an access and a refresh token of the user's
// authorization, with the granted scopes; the code is then used: of any
// number of concurrent polls exactly one gets tokens, the others
// invalid_grant. The tokens are bound to the resource the device asked
// for, or, when it asked for none, to the poll's resource (BindResource:
// another than the device's is invalid_target, and uses nothing).
func (s *Service) DeviceGrant(ctx context.Context, clientID, secret, raw, resource string) (*Issued, error) {
	if clientID == "" {
		return nil, gatehouse.Errorf(gatehouse.EInvalidClient, "Client authentication is required")
	}
	asked, err := resourceParam(resource)
	if err != nil {
		return nil, err
	}
	app, err := s.appClient(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	if err := deviceGrantAllowed(app); err != nil {
		return nil, err
	}
	invalid := func() error {
		return gatehouse.Errorf(gatehouse.EInvalidGrant, "The device code is invalid or already used")
	}
	if !token.Valid(raw, token.DeviceCode) {
		return nil, invalid()
	}
	hash := s.digester.Digest(raw)
	var (
		out     *Issued
		outcome error
	)
	err = s.update(ctx, func(tx *store.Tx) error {
		out, outcome = nil, nil // as the run that commits finds them
		d, err := tx.DeviceByHash(hash)
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			outcome = invalid()
			return nil
		} else if err != nil {
			return err
		}
		now := s.now()
		switch {
		case d.ClientID != app.ClientID || d.UsedAt != nil:
			outcome = invalid()
			return nil
		case !now.Before(d.ExpiresAt):
			outcome = gatehouse.Errorf(gatehouse.EExpiredToken, "The device code has expired; start again")
			return nil
		case d.Status == gatehouse.DeviceDenied:
			outcome = gatehouse.Errorf(gatehouse.EAccessDenied, "The user denied the request, or ended the authorization it was approved under")
			return nil
		case d.Status == gatehouse.DevicePending:
			interval := d.Interval
			outcome = gatehouse.Errorf(gatehouse.EAuthorizationPending, "The user has not answered yet")
			if pollTooSoon(d.LastPolledAt, now, interval) {
				interval += authorize.SlowDownStep
				outcome = &gatehouse.Error{Code: gatehouse.ESlowDown, Message: "Polling too fast: wait the interval, now " +
					interval.String() + ", between polls", RetryAfter: interval}
			}
			return tx.PollDevice(d.ID, interval, now)
		}
		// Approved: the resource, the account (shared), the authorization,
		// then the code, as CodeGrant.
		bound, err := BindResource(d.Resource, asked)
		if err != nil {
			outcome = err
			return nil
		}
		if err := tx.ShareAccount(d.AccountID); err != nil {
			return err
		}
		if _, err := tx.Authorization(d.UserID, d.ClientID); err != nil {
			if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
				outcome = gatehouse.Errorf(gatehouse.EAccessDenied, "The authorization was revoked")
				return nil
			}
			return err
		}
		won, err := tx.UseDevice(d.ID, now)
		if err != nil {
			return err
		}
		if !won {
			outcome = invalid()
			return nil
		}
		u, err := tx.User(d.AccountID, d.UserID)
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			u, err = nil, nil // deleted since it approved
		}
		if err != nil {
			return err
		}
		if u == nil || !u.Active() || u.Epoch != d.UserEpoch || u.PasswordEpoch != d.PasswordEpoch {
			outcome = gatehouse.Errorf(gatehouse.EAccessDenied, "The user can no longer authorise the application")
			return nil
		}
		if active, err := tx.AccountActive(d.AccountID); err != nil {
			return err
		} else if !active {
			outcome = gatehouse.Errorf(gatehouse.EAccessDenied, "The user's account is suspended")
			return nil
		}
		if ok, err := s.admits(ctx, d.AccountID, app); err != nil {
			return err
		} else if !ok {
			outcome = gatehouse.Errorf(gatehouse.EAccessDenied, "The user's account no longer allows the application")
			return nil
		}
		var toks []*gatehouse.Token
		out, toks = s.newAppPair(u, app.ClientID, d.FamilyID, d.Scopes, bound)
		return tx.CreateTokens(toks...)
	})
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		return nil, outcome
	}
	return out, nil
}

// pollTooSoon reports whether a device's poll at now came sooner than
// interval after its previous one (last; nil for none) — slow_down (RFC
// 8628 §3.5). A tenth of the interval is forgiven: a client that waits
// the interval between sending its polls sees them arrive that far apart
// only give or take the network's and the store's delays, and must not be
// slowed down for them.
func pollTooSoon(last *time.Time, now time.Time, interval time.Duration) bool {
	return last != nil && now.Sub(*last) < interval-interval/10
}
