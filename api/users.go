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
	if ce := p.CredentialExpires; ce != nil && (out.CredentialExpires == nil || ce.Before(*out.CredentialExpires)) {
		// A token stops working with its credential when that ends first.
		out.CredentialExpires = ce
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
	if q.Has("email") || q.Has("all_accounts") {
		return a.userByEmail(w, r, p)
	}
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

// FoundUser is a user found by address in any account, with the account
// that holds it (GET /v1/users?email=E&all_accounts=true).
type FoundUser struct {
	*gatehouse.User
	Account AccountRef `json:"account"`
}

// AccountRef names an account.
type AccountRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// userByEmail answers GET /v1/users?email=E: the list of the one user of
// the caller's account with that address (none when there is none), or,
// with all_accounts=true (the operator only), of any account, naming it.
func (a *API) userByEmail(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	q := r.URL.Query()
	email := q.Get("email")
	if email == "" {
		return gatehouse.Invalid("email is required with all_accounts")
	}
	var all bool
	switch v := q.Get("all_accounts"); v {
	case "", "false":
	case "true":
		all = true
	default:
		return gatehouse.Invalid("all_accounts must be true or false")
	}
	if all {
		u, acc, err := a.Service.UserAnywhere(r.Context(), p, email)
		if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
			writeList(w, []FoundUser{}, "")
			return nil
		}
		if err != nil {
			return err
		}
		writeList(w, []FoundUser{{User: u, Account: AccountRef{ID: acc.ID, Name: acc.Name}}}, "")
		return nil
	}
	u, err := a.Service.UserByEmail(r.Context(), p, email)
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		writeList(w, []*gatehouse.User{}, "")
		return nil
	}
	if err != nil {
		return err
	}
	writeList(w, []*gatehouse.User{u}, "")
	return nil
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.DeleteUser(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

func (a *API) deleteAccountUser(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.DeleteAccountUser(r.Context(), p, r.PathValue("id"), r.PathValue("user_id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}
