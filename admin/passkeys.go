package admin

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// The passkey steps of signing in, served without a session: the options
// of a ceremony (JSON, fetched by admin.js), and the answer.
const (
	loginPasskeyOptionsPattern = "POST /admin/login/passkey/options"
	loginPasskeyPattern        = "POST /admin/login/passkey"
)

// loginCSRF checks the sign-in form's CSRF token of a parsed form.
func loginCSRF(r *http.Request) bool {
	c, err := r.Cookie(loginCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) == 1
}

// pendingOf returns the pending sign-in's cookie when the form asks for
// the second step ("second"), else "" (password-less).
func pendingOf(r *http.Request) (string, bool) {
	if r.PostForm.Get("second") == "" {
		return "", true
	}
	c, err := r.Cookie(signInCookie)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

// loginPasskeyOptions begins a passkey sign-in and answers the options as
// JSON.
func (u *UI) loginPasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if err := httpx.ParseForm(w, r); err != nil {
		httpx.Error(w, r, err)
		return
	}
	if !loginCSRF(r) {
		httpx.Error(w, r, gatehouse.Forbidden("The sign-in form's security token is missing or out of date. Reload the page and try again."))
		return
	}
	pending, ok := pendingOf(r)
	if !ok {
		httpx.Error(w, r, gatehouse.Errorf(gatehouse.EInvalidToken, "The sign-in expired; sign in again"))
		return
	}
	c, err := u.svc.BeginPasskeySignIn(r.Context(), pending, httpx.ClientAddr(r))
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, c)
}

// loginPasskey checks a passkey's answer and starts the session.
func (u *UI) loginPasskey(w http.ResponseWriter, r *http.Request) {
	if !u.signInForm(w, r) {
		return
	}
	pending, ok := pendingOf(r)
	if !ok {
		u.redirect(w, r, "/admin/login?error=expired")
		return
	}
	step, err := u.svc.PasskeySignIn(r.Context(), pending, r.PostForm.Get("challenge_id"), []byte(r.PostForm.Get("credential")), httpx.ClientAddr(r))
	switch gatehouse.ErrorCode(err) {
	case "":
	case gatehouse.EInvalidRequest:
		const msg = "The passkey was not accepted, or its request expired. Try again."
		if pending != "" {
			u.loginCodeForm(w, r, http.StatusUnauthorized, msg)
		} else {
			u.loginForm(w, r, http.StatusUnauthorized, msg)
		}
		return
	case gatehouse.EInvalidGrant:
		if errors.Is(err, service.ErrSSORequired) {
			u.loginForm(w, r, http.StatusForbidden, ssoRequiredMessage)
			return
		}
		u.fail(w, r, page{}, err)
		return
	case gatehouse.EInvalidToken:
		u.clearCookie(w, r, signInCookie)
		u.redirect(w, r, "/admin/login?error=expired")
		return
	case gatehouse.ETooManyAttempts, gatehouse.EUnavailable:
		u.loginRefused(w, r, err)
		return
	default:
		u.fail(w, r, page{}, err)
		return
	}
	u.signedIn(w, r, step.Session)
}

// passkeyOptions begins registering a passkey and answers the options as
// JSON (fetched by admin.js).
func (u *UI) passkeyOptions(w http.ResponseWriter, r *http.Request, pg page) error {
	c, err := u.svc.BeginPasskeyRegistration(r.Context(), pg.P)
	if err != nil {
		httpx.Error(w, r, err)
		return nil
	}
	httpx.WriteJSON(w, http.StatusOK, c)
	return nil
}

// addPasskey registers the passkey of the browser's answer, and shows the
// recovery codes once when it is the first second factor.
func (u *UI) addPasskey(w http.ResponseWriter, r *http.Request, pg page) error {
	out, err := u.svc.FinishPasskeyRegistration(r.Context(), pg.P, r.PostForm.Get("challenge_id"), r.PostForm.Get("name"), []byte(r.PostForm.Get("credential")))
	if err != nil {
		return u.refuse(w, r, pg, err, "passkey", []string{"name", "credential", "challenge_id"}, func(pg page, status int) error {
			return u.mfaPageStatus(w, r, pg, status)
		})
	}
	if len(out.RecoveryCodes) == 0 {
		u.done(w, r, "/admin/me/mfa", "Passkey "+out.Passkey.Name+" added.")
		return nil
	}
	s := shown{Heading: "Passkey added", Warning: "Keep these recovery codes somewhere safe. Each signs you in once when your passkey is not at hand. They are shown only now.",
		Notes: []string{"Your other sessions have ended: they began with the password alone."},
		Back:  "/admin/me/mfa", BackTo: "Done"}
	for i, c := range out.RecoveryCodes {
		s.Values = append(s.Values, secret{Label: fmt.Sprintf("Recovery code %d", i+1), ID: fmt.Sprintf("recovery-%d", i+1), Value: c, Secret: true})
	}
	return u.reveal(w, r, pg, s)
}

// renamePasskey renames a passkey.
func (u *UI) renamePasskey(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	k, err := u.svc.RenamePasskey(r.Context(), pg.P, id, r.PostForm.Get("name"))
	if err != nil {
		return u.refuse(w, r, pg, err, "rename-"+id, []string{"name"}, func(pg page, status int) error {
			return u.mfaPageStatus(w, r, pg, status)
		})
	}
	u.done(w, r, "/admin/me/mfa", "Passkey renamed to "+k.Name+".")
	return nil
}

// confirmRemovePasskey asks before a passkey is removed.
func (u *UI) confirmRemovePasskey(w http.ResponseWriter, r *http.Request, pg page) error {
	k, err := u.svc.PasskeyByID(r.Context(), pg.P, r.PathValue("id"))
	if err != nil {
		return err
	}
	st, err := u.svc.SecondFactors(r.Context(), pg.P)
	if err != nil {
		return err
	}
	stops := []string{"Signing in with the passkey " + k.Name + ", with or without your password."}
	if !st.TOTP && st.Passkeys == 1 {
		stops = append(stops, "Your recovery codes: this is your last second factor, so you sign in with your password alone until you set up another.")
	}
	pg.Page = "me"
	u.confirm(w, pg, confirmation{
		Question: "Remove the passkey " + k.Name + "?",
		Stops:    stops,
		Keeps:    []string{"Your sessions, tokens and credentials keep working. The passkey stays in your authenticator until you delete it there."},
		Action:   "/admin/me/mfa/passkeys/" + url.PathEscape(k.ID) + "/remove",
		Cancel:   "/admin/me/mfa",
		Buttons:  []button{{Label: "Remove passkey", Danger: true}},
	})
	return nil
}

// removePasskey removes a passkey, once confirmed.
func (u *UI) removePasskey(w http.ResponseWriter, r *http.Request, pg page) error {
	id := r.PathValue("id")
	if !isConfirmed(r) {
		u.redirect(w, r, "/admin/me/mfa/passkeys/"+url.PathEscape(id)+"/remove")
		return nil
	}
	if err := u.svc.RemovePasskey(r.Context(), pg.P, id); err != nil {
		return err
	}
	u.done(w, r, "/admin/me/mfa", "Passkey removed.")
	return nil
}
