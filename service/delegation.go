package service

import "github.com/gatehouse/gatehouse"

// requireOwnAuthority refuses a third-party application's token (an
// authorisation, which its user or an admin may revoke at any time) what
// would outlive that authorisation: a new secret of any kind — a client
// credential, an API token, API access, an application's secret, a
// webhook endpoint's secret or where its events go — a password (of a
// user or a new account's admin), a single sign-on provider, or a change
// or approval of an application (its redirect URIs, scopes or plan, or
// another application let into the account). The
// application keeps what its scopes allow while it is authorised, and
// nothing after. what names the refused act in the answer.
func requireOwnAuthority(p *gatehouse.Principal, what string) error {
	if p.Method == gatehouse.MethodAuthorizationCode {
		return gatehouse.Forbidden("An application's token cannot %s: it would outlive the application's authorisation. Use your own sign-in or credential.", what)
	}
	return nil
}
