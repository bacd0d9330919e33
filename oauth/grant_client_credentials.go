package oauth

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// ClientCredentialsGrant is the client credentials grant of developer
// credentials (SPEC §3.3), with client authentication by HTTP Basic or the
// form body.
type ClientCredentialsGrant struct {
	Service *service.Service
}

var _ Grant = (*ClientCredentialsGrant)(nil)

// Token authenticates the client and issues an access token.
func (g *ClientCredentialsGrant) Token(ctx context.Context, req *Request) (*service.Issued, error) {
	if req.ClientID == "" || req.ClientSecret == "" {
		return nil, gatehouse.Errorf(gatehouse.EInvalidClient, "Client authentication is required")
	}
	return g.Service.ClientCredentialsGrant(ctx, req.ClientID, req.ClientSecret, req.Get("scope"), req.ClientAddr)
}
