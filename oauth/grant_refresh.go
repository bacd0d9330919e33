package oauth

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// RefreshGrant is the refresh_token grant of API access applications (SPEC
// §3.1): a JSON or form body with client_id and refresh_token.
type RefreshGrant struct {
	Service *service.Service
}

var _ Grant = (*RefreshGrant)(nil)

// Token rotates the refresh token. The API access application is a public
// client: its id alone; a secret presented with it is verified (and fails).
//
// A refresh token of a third-party application (SPEC §10.3) is rotated
// by the application's rules: a confidential application authenticates
// with its secret, a public one with its id alone.
func (g *RefreshGrant) Token(ctx context.Context, req *Request) (*service.Issued, error) {
	if g.Service.IsAppClient(ctx, req.ClientID) {
		rt := req.Get("refresh_token")
		if rt == "" {
			return nil, gatehouse.Invalid("refresh_token is required")
		}
		return g.Service.AppRefreshGrant(ctx, req.ClientID, req.ClientSecret, rt, req.Get("scope"), req.Get("resource"))
	}
	if err := authenticateClient(ctx, g.Service, req, true); err != nil {
		return nil, err
	}
	rt := req.Get("refresh_token")
	if rt == "" {
		return nil, gatehouse.Invalid("refresh_token is required")
	}
	if req.ClientID == "" {
		return nil, gatehouse.Invalid("client_id is required")
	}
	return g.Service.RefreshGrant(ctx, req.ClientID, rt, req.Get("scope"))
}
