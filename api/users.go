package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// Me is the answer of GET /v1/me.
type Me struct {
	User              *gatehouse.User    `json:"user"`
	Account           *gatehouse.Account `json:"account"`
	Roles             gatehouse.Roles    `json:"roles"`
	AuthMethod        string             `json:"auth_method"`
	ActingAs          string             `json:"acting_as,omitempty"`
	Anonymous         bool               `json:"anonymous"`
	ClientID          string             `json:"client_id,omitempty"`
	CredentialExpires *time.Time         `json:"credential_expires_at,omitempty"`
	// Scopes are what this request may do: the credential's scopes
	// intersected with the roles' (SPEC §9.1).
	Scopes gatehouse.Scopes `json:"scopes"`
	// Restricted reports whether the credential itself carries scopes.
	Restricted bool `json:"restricted"`
}

// me answers with what a principal is; the answer depends on the
// principal alone, so a cached principal's is encoded once.
func (a *API) me(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	body := p.Answer(encodeMe)
	if body == nil {
		return errors.New("api: /v1/me cannot be encoded")
	}
	httpx.WriteJSONBody(w, http.StatusOK, body)
	return nil
}

// encodeMe returns the JSON of p's Me, or nil if it cannot be encoded.
func encodeMe(p *gatehouse.Principal) []byte {
	out := Me{User: p.User, Account: p.Account, Roles: p.Roles(), AuthMethod: string(p.Method),
		ActingAs: p.ActingAs, Anonymous: p.Anonymous(), ClientID: p.ClientID,
		Scopes: p.EffectiveScopes(), Restricted: !p.Scopes.Unrestricted()}
	if !p.ExpiresAt.IsZero() {
		out.CredentialExpires = &p.ExpiresAt
	}
	b, err := httpx.EncodeJSON(out)
	if err != nil {
		return nil
	}
	return b
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := gatehouse.UserFilter{Query: q.Get("q"), Role: gatehouse.Role(q.Get("role")), Status: gatehouse.UserStatus(q.Get("status"))}
	users, c, err := a.Service.Users(r.Context(), p, f, pg)
	if err != nil {
		return err
	}
	writePage(w, users, c)
	return nil
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.NewUser
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	u, err := a.Service.CreateUser(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, u)
	return nil
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	u, err := a.Service.User(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.UserPatch
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	u, err := a.Service.UpdateUser(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (a *API) clearThrottle(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if _, err := a.Service.ClearThrottle(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}
