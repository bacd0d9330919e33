package oauth

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// PasswordGrant is the resource-owner password grant (SPEC §3.4). The
// service counts every attempt against the sign-in throttle before it
// checks the password (service.CheckPassword).
type PasswordGrant struct {
	Service *service.Service
}

var _ Grant = (*PasswordGrant)(nil)

// Token verifies the client credentials presented, if any, then checks
// username and password and issues an access token.
func (g *PasswordGrant) Token(ctx context.Context, req *Request) (*service.Issued, error) {
	if err := authenticateClient(ctx, g.Service, req, false); err != nil {
		return nil, err
	}
	username, pw := req.Get("username"), req.Get("password")
	if username == "" || pw == "" {
		return nil, gatehouse.Invalid("username and password are required")
	}
	out, _, err := g.Service.PasswordGrant(ctx, username, pw, req.ClientAddr, req.Get("scope"))
	return out, err
}
