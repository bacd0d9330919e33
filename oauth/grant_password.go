package oauth

import (
	"context"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// PasswordThrottle limits failed password attempts per username and address.
type PasswordThrottle interface {
	Check(username, addr string) error
	Fail(username, addr string)
	Succeed(username string)
}

// PasswordGrant is the resource-owner password grant (SPEC §3.4).
type PasswordGrant struct {
	Service  *service.Service
	Throttle PasswordThrottle
}

var _ Grant = (*PasswordGrant)(nil)

// Token checks username and password and issues an access token.
func (g *PasswordGrant) Token(ctx context.Context, req *Request) (*service.Issued, error) {
	username, pw := req.Get("username"), req.Get("password")
	if username == "" || pw == "" {
		return nil, gatehouse.Invalid("username and password are required")
	}
	key := strings.ToLower(strings.TrimSpace(username))
	if err := g.Throttle.Check(key, req.ClientAddr); err != nil {
		return nil, err
	}
	out, _, err := g.Service.PasswordGrant(ctx, username, pw)
	switch gatehouse.ErrorCode(err) {
	case "":
		g.Throttle.Succeed(key)
	case gatehouse.EInvalidGrant:
		g.Throttle.Fail(key, req.ClientAddr)
	}
	return out, err
}

// Authorization serves POST /authorization: the password grant with the
// parameters in a form body, a JSON body or the query string.
func (g *PasswordGrant) Authorization(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	req, err := ParseRequest(w, r, true)
	if err != nil {
		writeError(w, r, nil, err)
		return
	}
	out, err := g.Token(r.Context(), req)
	if err != nil {
		writeError(w, r, req, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		TokenType   string `json:"token_type"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}{out.TokenType, out.AccessToken, out.ExpiresIn})
}
