package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// The console's device page (SPEC §10.4, RFC 8628 §3.3): GET /device
// sends the browser here; the person signs in, enters the code their
// device shows, sees what the application asks for, and allows or denies
// it. Every code entered counts in the sign-in throttle.
const devicePath = "/admin/device"

// devicePage is the device page's data: the code entry form, or, once a
// code was recognised, the consent.
type devicePage struct {
	page
	UserCode string
	Consent  *service.DeviceConsent
	Words    []scopeLine
	Done     string
}

// deviceEntry answers GET /admin/device: the code entry form, filled in
// from verification_uri_complete's user_code.
func (u *UI) deviceEntry(w http.ResponseWriter, r *http.Request, pg page) error {
	code := r.URL.Query().Get("user_code")
	if len(code) > 64 {
		code = ""
	}
	pg.Title, pg.Page = "Connect a device", "device"
	u.render(w, http.StatusOK, "device", devicePage{page: pg, UserCode: code})
	return nil
}

// deviceCheck answers POST /admin/device (the session's CSRF token
// checked): a recognised code shows the consent, a wrong one the form
// again.
func (u *UI) deviceCheck(w http.ResponseWriter, r *http.Request, pg page) error {
	typed := r.PostForm.Get("user_code")
	c, err := u.svc.CheckUserCode(r.Context(), pg.P, typed, httpx.ClientAddr(r))
	if err != nil {
		return u.deviceRefused(w, pg, typed, err)
	}
	pg.Title, pg.Page = "Authorise "+c.App.Name, "device"
	u.render(w, http.StatusOK, "device", devicePage{page: pg, UserCode: c.UserCode, Consent: c, Words: lines(c.Scopes)})
	return nil
}

// deviceDecision answers POST /admin/device/decision (CSRF checked):
// Allow lets the device's next poll have tokens, Deny refuses it.
func (u *UI) deviceDecision(w http.ResponseWriter, r *http.Request, pg page) error {
	typed := r.PostForm.Get("user_code")
	allow := r.PostForm.Get("decision") == "allow"
	c, err := u.svc.DecideDevice(r.Context(), pg.P, typed, httpx.ClientAddr(r), allow)
	if err != nil {
		return u.deviceRefused(w, pg, typed, err)
	}
	pg.Title, pg.Page = "Device connected", "device"
	done := c.App.Name + " is connected. Return to your device; you can close this page."
	if !allow {
		pg.Title = "Request denied"
		done = "Nothing was shared with " + c.App.Name + ". Return to your device; you can close this page."
	}
	u.render(w, http.StatusOK, "device", devicePage{page: pg, Done: done})
	return nil
}

// deviceRefused shows the code entry form again with why a code was
// refused; a throttled entry says when to try again. Other errors are the
// caller's to show.
func (u *UI) deviceRefused(w http.ResponseWriter, pg page, typed string, err error) error {
	var ge *gatehouse.Error
	if !errors.As(err, &ge) {
		return err
	}
	status := http.StatusBadRequest
	switch {
	case ge.Code == gatehouse.ETooManyAttempts:
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(gatehouse.RetryAfterSeconds(ge.RetryAfter)))
		pg.Error = "Too many codes were entered. Wait a while, then try again."
	case ge.Field == "user_code":
		pg.Error = ge.Hint
	default:
		return err
	}
	if len(typed) > 64 {
		typed = ""
	}
	pg.Title, pg.Page = "Connect a device", "device"
	u.render(w, status, "device", devicePage{page: pg, UserCode: strings.TrimSpace(typed)})
	return nil
}

// deviceNext is where sign-in returns to from the device page.
func deviceNext(r *http.Request) string {
	next := devicePath
	if c := r.URL.Query().Get("user_code"); c != "" && len(c) <= 64 {
		next += "?" + url.Values{"user_code": {c}}.Encode()
	}
	return next
}
