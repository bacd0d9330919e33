package api

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// codeInput is the body of the routes that take a second-factor code.
type codeInput struct {
	Code string `json:"code"`
}

func (a *API) getMFA(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	st, err := a.Service.SecondFactors(r.Context(), p)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, st)
	return nil
}

func (a *API) enrolTOTP(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := httpx.DecodeJSON(w, r, &struct{}{}, true); err != nil {
		return err
	}
	e, err := a.Service.EnrolTOTP(r.Context(), p)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusOK, e)
	return nil
}

// RecoveryCodes is the answer of POST /v1/me/mfa/totp/confirm: the
// recovery codes, shown once.
type RecoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

func (a *API) confirmTOTP(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in codeInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	codes, err := a.Service.ConfirmTOTP(r.Context(), p, in.Code, httpx.ClientAddr(r))
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusOK, RecoveryCodes{RecoveryCodes: codes})
	return nil
}

func (a *API) disableTOTP(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in codeInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	if err := a.Service.DisableTOTP(r.Context(), p, in.Code, httpx.ClientAddr(r)); err != nil {
		return err
	}
	noContent(w)
	return nil
}

func (a *API) resetMFA(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.ResetSecondFactors(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// Session is a console session as the API lists it.
type Session struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ClientAddr string    `json:"client_addr"`
	Current    bool      `json:"current"`
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal, userID string) error {
	ses, err := a.Service.Sessions(r.Context(), p, userID)
	if err != nil {
		return err
	}
	out := make([]Session, len(ses))
	for i, se := range ses {
		out[i] = Session{ID: se.ID, CreatedAt: se.CreatedAt, ExpiresAt: se.ExpiresAt, ClientAddr: se.ClientAddr, Current: se.Current}
	}
	writeList(w, out, "")
	return nil
}

func (a *API) mySessions(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if p.User == nil {
		return gatehouse.Forbidden("This needs a user; send the user header with the API token")
	}
	return a.listSessions(w, r, p, p.User.ID)
}

func (a *API) userSessions(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	return a.listSessions(w, r, p, r.PathValue("id"))
}

func (a *API) endMySession(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.EndSession(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// SessionsEnded is the answer of DELETE /v1/users/{id}/sessions.
type SessionsEnded struct {
	Ended int `json:"ended"`
}

func (a *API) endUserSessions(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	n, err := a.Service.EndSessions(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, SessionsEnded{Ended: n})
	return nil
}
