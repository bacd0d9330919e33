package api

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// passkeyInput is the body of POST /v1/me/mfa/passkeys: the challenge
// begun by POST /v1/me/mfa/passkeys/options, a name, and the browser's
// PublicKeyCredential as JSON (PublicKeyCredential.toJSON()).
type passkeyInput struct {
	ChallengeID string          `json:"challenge_id"`
	Name        string          `json:"name"`
	Credential  json.RawMessage `json:"credential"`
}

// passkeyName is the body of PATCH /v1/me/mfa/passkeys/{id}.
type passkeyName struct {
	Name string `json:"name"`
}

func (a *API) listPasskeys(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	ks, err := a.Service.Passkeys(r.Context(), p)
	if err != nil {
		return err
	}
	writeList(w, ks, "")
	return nil
}

func (a *API) beginPasskey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := httpx.DecodeJSON(w, r, &struct{}{}, true); err != nil {
		return err
	}
	c, err := a.Service.BeginPasskeyRegistration(r.Context(), p)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusOK, c)
	return nil
}

func (a *API) addPasskey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in passkeyInput
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	if len(in.Credential) == 0 || in.Credential[0] != '{' {
		return gatehouse.InvalidField("credential", "", "credential must be the PublicKeyCredential as a JSON object")
	}
	out, err := a.Service.FinishPasskeyRegistration(r.Context(), p, in.ChallengeID, in.Name, in.Credential)
	if err != nil {
		return err
	}
	httpx.WriteSecret(w, http.StatusCreated, out)
	return nil
}

func (a *API) renamePasskey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in passkeyName
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	k, err := a.Service.RenamePasskey(r.Context(), p, r.PathValue("id"), in.Name)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, k)
	return nil
}

func (a *API) removePasskey(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.RemovePasskey(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}
