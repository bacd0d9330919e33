package oauth

import (
	"context"
	"strings"

	"github.com/gatehouse/gatehouse"
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
