package admin

import "net/http"

// routes adds the pages. Every POST needs the session's CSRF token (see
// session); every destructive one asks on a confirmation page first.
func (u *UI) routes(mux *http.ServeMux) {
	h := func(pattern string, fn handlerFunc) { mux.Handle(pattern, u.session(fn)) }
	// Everyone's own account.
	h("GET /admin/me", u.me)
	h("POST /admin/me/password", u.changePassword)
	h("POST /admin/me/sessions/end", u.endOwnSessions)
	h("GET /admin/secrets/{id}", u.secretPage)
	// Users.
	h("GET /admin/users", u.users)
	h("POST /admin/users", u.createUser)
	h("GET /admin/users/{id}", u.user)
	h("POST /admin/users/{id}", u.updateUser)
	h("POST /admin/users/{id}/password", u.resetPassword)
	h("POST /admin/users/{id}/throttle", u.clearThrottle)
	h("POST /admin/users/{id}/sessions/end", u.endSessions)
	// API access.
	h("GET /admin/api-access", u.apiAccess)
	h("POST /admin/api-access/enable", u.enableAPIAccess)
	h("POST /admin/api-access/lifetime", u.apiAccessLifetime)
	h("POST /admin/api-access/reissue", u.reissueAPIAccess)
	h("GET /admin/api-access/revoke", u.confirmRevokeAPIAccess)
	h("POST /admin/api-access/revoke", u.revokeAPIAccess)
	// Extensions and API tokens.
	h("GET /admin/extensions", u.extensions)
	h("POST /admin/extensions/api-tokens", u.toggleAPITokens)
	h("GET /admin/extensions/api-tokens/off", u.confirmAPITokensOff)
	h("POST /admin/api-tokens", u.createAPIToken)
	h("GET /admin/api-tokens/{id}/revoke", u.confirmRevokeAPIToken)
	h("POST /admin/api-tokens/{id}/revoke", u.revokeAPIToken)
	// Developers and client credentials.
	h("GET /admin/developers", u.developers)
	h("POST /admin/developers", u.addDeveloper)
	h("GET /admin/developers/{id}/remove", u.confirmRemoveDeveloper)
	h("POST /admin/developers/{id}/remove", u.removeDeveloper)
	h("GET /admin/credentials", u.credentials)
	h("POST /admin/credentials", u.createCredential)
	h("GET /admin/credentials/{id}/delete", u.confirmDeleteCredential)
	h("POST /admin/credentials/{id}/delete", u.deleteCredential)
	// Account settings, usage and the audit log.
	h("GET /admin/settings", u.settings)
	h("POST /admin/settings", u.saveSettings)
	h("GET /admin/usage", u.usage)
	h("GET /admin/audit", u.audit)
	h("GET /admin/audit/export", u.exportAudit)
	// The operator's accounts.
	h("GET /admin/accounts", u.accounts)
	h("POST /admin/accounts", u.createAccount)
	h("POST /admin/accounts/{id}", u.updateAccount)
}
