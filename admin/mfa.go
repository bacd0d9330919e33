package admin

import (
	"crypto/rand"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"rsc.io/qr"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// signInCookie holds the sign-in that waits for its second factor.
const signInCookie = httpx.CookiePrefix + "sign_in"

// The second step of signing in, served without a session.
const (
	loginCodePagePattern = "GET /admin/login/code"
	loginCodePattern     = "POST /admin/login/code"
)

// loginCodePage asks for the second factor of a sign-in whose password
// was right.
func (u *UI) loginCodePage(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(signInCookie); err != nil {
		u.redirect(w, r, "/admin/login")
		return
	}
	u.loginCodeForm(w, r, http.StatusOK, "")
}

func (u *UI) loginCodeForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c, err := r.Cookie(loginCookie)
	csrf := ""
	if err == nil {
		csrf = c.Value
	} else {
		csrf = rand.Text()
		u.setCookie(w, r, loginCookie, csrf, 600)
	}
	next := safeNext(r.URL.Query().Get("next"))
	if r.Method == http.MethodPost {
		next = safeNext(r.PostForm.Get("next"))
	}
	u.render(w, status, "login_code", struct {
		page
		PasskeysOn bool
	}{page{Title: "Second step", CSRF: csrf, Error: msg, Next: next}, u.svc.PasskeysAvailable()})
}

// loginCode checks the code of the second step and starts the session.
func (u *UI) loginCode(w http.ResponseWriter, r *http.Request) {
	if !u.signInForm(w, r) {
		return
	}
	pending, err := r.Cookie(signInCookie)
	if err != nil {
		u.redirect(w, r, "/admin/login?error=expired")
		return
	}
	step, err := u.svc.CompleteSignIn(r.Context(), pending.Value, r.PostForm.Get("code"), httpx.ClientAddr(r))
	switch gatehouse.ErrorCode(err) {
	case "":
	case gatehouse.EInvalidRequest:
		u.loginCodeForm(w, r, http.StatusUnauthorized, "That code is not right, or was used already. Enter the current code of your app, or a recovery code.")
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

// mfaAllowed reports whether a page may be seen by a user who must enrol
// a second factor first: the enrolment pages and signing out.
func mfaAllowed(path string) bool {
	return path == "/admin/logout" || path == "/admin/me/mfa" || strings.HasPrefix(path, "/admin/me/mfa/") ||
		strings.HasPrefix(path, "/admin/secrets/")
}

// mfaPage shows the user's second factors.
func (u *UI) mfaPage(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.mfaPageStatus(w, r, pg, http.StatusOK)
}

func (u *UI) mfaPageStatus(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	st, err := u.svc.SecondFactors(r.Context(), pg.P)
	if err != nil {
		return err
	}
	ks, err := u.svc.Passkeys(r.Context(), pg.P)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Second factor", "me"
	u.render(w, status, "mfa", struct {
		page
		MFA        *service.MFAStatus
		Passkeys   []service.PasskeyInfo
		PasskeysOn bool
	}{pg, st, ks, u.svc.PasskeysAvailable()})
	return nil
}

// startTOTP makes a new TOTP secret and shows it.
func (u *UI) startTOTP(w http.ResponseWriter, r *http.Request, pg page) error {
	if _, err := u.svc.EnrolTOTP(r.Context(), pg.P); err != nil {
		return err
	}
	u.redirect(w, r, "/admin/me/mfa/totp")
	return nil
}

// totpPage shows the unconfirmed secret, as text and as a QR code, and
// asks for a code of it.
func (u *UI) totpPage(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.totpPageStatus(w, r, pg, http.StatusOK)
}

func (u *UI) totpPageStatus(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	e, err := u.svc.PendingTOTP(r.Context(), pg.P)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		u.redirect(w, r, "/admin/me/mfa")
		return nil
	}
	if err != nil {
		return err
	}
	svg, err := qrSVG(e.OTPAuthURI)
	if err != nil {
		return err
	}
	pg.Title, pg.Page = "Set up an authenticator app", "me"
	u.render(w, status, "totp", struct {
		page
		Secret, URI string
		QR          template.HTML
	}{pg, groupSecret(e.Secret), e.OTPAuthURI, svg})
	return nil
}

// groupSecret writes a base32 secret in groups of four, easier to type.
func groupSecret(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// qrSVG draws the QR code of text as inline SVG: one path of dark
// modules, so the page's Content-Security-Policy needs no image source.
func qrSVG(text string) (template.HTML, error) {
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return "", err
	}
	var d strings.Builder
	for y := 0; y < c.Size; y++ {
		for x := 0; x < c.Size; x++ {
			if c.Black(x, y) {
				fmt.Fprintf(&d, "M%d %dh1v1h-1z", x+4, y+4)
			}
		}
	}
	n := c.Size + 8
	// Only digits and fixed letters go into the markup.
	return template.HTML(fmt.Sprintf(`<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="QR code of the secret"><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`,
		n, n, n, n, d.String())), nil
}

// confirmTOTP turns TOTP on with a code and shows the recovery codes once.
func (u *UI) confirmTOTP(w http.ResponseWriter, r *http.Request, pg page) error {
	codes, err := u.svc.ConfirmTOTP(r.Context(), pg.P, r.PostForm.Get("code"), httpx.ClientAddr(r))
	if err != nil {
		return u.refuse(w, r, pg, err, "totp", []string{"code"}, func(pg page, status int) error {
			return u.totpPageStatus(w, r, pg, status)
		})
	}
	s := shown{Heading: "TOTP is on", Warning: "Keep these recovery codes somewhere safe. Each signs you in once when your authenticator app is not at hand. They are shown only now.",
		Notes: []string{"Your other sessions have ended: they began with the password alone."},
		Back:  "/admin/me/mfa", BackTo: "Done"}
	for i, c := range codes {
		s.Values = append(s.Values, secret{Label: fmt.Sprintf("Recovery code %d", i+1), ID: fmt.Sprintf("recovery-%d", i+1), Value: c, Secret: true})
	}
	return u.reveal(w, r, pg, s)
}

// disableTOTP turns TOTP off with a code.
func (u *UI) disableTOTP(w http.ResponseWriter, r *http.Request, pg page) error {
	if err := u.svc.DisableTOTP(r.Context(), pg.P, r.PostForm.Get("code"), httpx.ClientAddr(r)); err != nil {
		return u.refuse(w, r, pg, err, "totp_off", []string{"code"}, func(pg page, status int) error {
			return u.mfaPageStatus(w, r, pg, status)
		})
	}
	msg := "TOTP is off, and your recovery codes are gone."
	if st, err := u.svc.SecondFactors(r.Context(), pg.P); err == nil && st.Passkeys > 0 {
		msg = "TOTP is off. Your passkeys and recovery codes still work."
	}
	u.done(w, r, "/admin/me/mfa", msg)
	return nil
}
