package admin

import "net/http"

// route is one page of a signed-in session.
type route struct {
	pattern string
	fn      handlerFunc
}

// routes adds the pages. Every POST needs the session's CSRF token (see
// session); every destructive one asks on a confirmation page first.
func (u *UI) routes(mux *http.ServeMux) {
	for _, rt := range u.table() {
		mux.Handle(rt.pattern, u.session(rt.fn))
	}
}

// The sign-in routes, served without a session.
const (
	loginPagePattern = "GET /admin/login"
	loginPattern     = "POST /admin/login"
)

// Patterns returns the pattern ("METHOD /admin/path/{wildcard}") of every
// page of the UI: the sign-in routes, then every page that needs a
// session, in the order of the route table. Tests walk it so that a new
// page is covered by default.
func Patterns() []string {
	out := []string{loginPagePattern, loginPattern, loginCodePagePattern, loginCodePattern, ssoPagePattern, ssoPattern, ssoCallbackPattern, loginPasskeyOptionsPattern, loginPasskeyPattern}
	for _, rt := range (&UI{}).table() {
		out = append(out, rt.pattern)
	}
	return out
}

// table is the one table of the pages that need a session.
func (u *UI) table() []route {
	return []route{
		{"POST /admin/logout", u.logout},
		{"GET /admin", u.home},
		{"GET /admin/{$}", u.home},
		// Everyone's own account.
		{"GET /admin/me", u.me},
		{"POST /admin/me/password", u.changePassword},
		{"POST /admin/me/sessions/end", u.endOwnSessions},
		{"GET /admin/me/mfa", u.mfaPage},
		{"POST /admin/me/mfa/totp", u.startTOTP},
		{"GET /admin/me/mfa/totp", u.totpPage},
		{"POST /admin/me/mfa/totp/confirm", u.confirmTOTP},
		{"POST /admin/me/mfa/totp/off", u.disableTOTP},
		{"POST /admin/me/mfa/passkeys/options", u.passkeyOptions},
		{"POST /admin/me/mfa/passkeys", u.addPasskey},
		{"POST /admin/me/mfa/passkeys/{id}/rename", u.renamePasskey},
		{"GET /admin/me/mfa/passkeys/{id}/remove", u.confirmRemovePasskey},
		{"POST /admin/me/mfa/passkeys/{id}/remove", u.removePasskey},
		{"GET /admin/me/authorizations/{client_id}/revoke", u.confirmRevokeAuthorization},
		{"POST /admin/me/authorizations/{client_id}/revoke", u.revokeAuthorization},
		// Third-party applications: the authorization page (SPEC §10.3).
		{"GET " + authorizePath, u.authorizePage},
		{"POST " + authorizePath, u.authorizeDecision},
		// The device authorization grant's page (SPEC §10.4).
		{"GET " + devicePath, u.deviceEntry},
		{"POST " + devicePath, u.deviceCheck},
		{"POST " + devicePath + "/decision", u.deviceDecision},
		{"GET /admin/secrets/{id}", u.secretPage},
		// Users.
		{"GET /admin/users", u.users},
		{"POST /admin/users", u.createUser},
		{"GET /admin/users/{id}", u.user},
		{"POST /admin/users/{id}", u.updateUser},
		{"POST /admin/users/{id}/password", u.resetPassword},
		{"POST /admin/users/{id}/plan", u.userPlan},
		{"POST /admin/users/{id}/throttle", u.clearThrottle},
		{"POST /admin/users/{id}/sessions/end", u.endSessions},
		{"GET /admin/users/{id}/mfa/reset", u.confirmResetMFA},
		{"POST /admin/users/{id}/mfa/reset", u.resetMFA},
		{"GET /admin/users/{id}/authorizations/{client_id}/revoke", u.confirmRevokeAuthorization},
		{"POST /admin/users/{id}/authorizations/{client_id}/revoke", u.revokeAuthorization},
		{"GET /admin/users/{id}/delete", u.confirmDeleteUser},
		{"POST /admin/users/{id}/delete", u.deleteUser},
		// API access.
		{"GET /admin/api-access", u.apiAccess},
		{"POST /admin/api-access/enable", u.enableAPIAccess},
		{"POST /admin/api-access/lifetime", u.apiAccessLifetime},
		{"POST /admin/api-access/plan", u.apiAccessPlan},
		{"POST /admin/api-access/reissue", u.reissueAPIAccess},
		{"GET /admin/api-access/revoke", u.confirmRevokeAPIAccess},
		{"POST /admin/api-access/revoke", u.revokeAPIAccess},
		// Extensions and API tokens.
		{"GET /admin/extensions", u.extensions},
		{"POST /admin/extensions/api-tokens", u.toggleAPITokens},
		{"GET /admin/extensions/api-tokens/off", u.confirmAPITokensOff},
		{"POST /admin/api-tokens", u.createAPIToken},
		{"GET /admin/api-tokens/{id}", u.apiToken},
		{"POST /admin/api-tokens/{id}/plan", u.apiTokenPlan},
		{"GET /admin/api-tokens/{id}/revoke", u.confirmRevokeAPIToken},
		{"POST /admin/api-tokens/{id}/revoke", u.revokeAPIToken},
		{"POST /admin/api-tokens/{id}/roll", u.rollAPIToken},
		// Developers and client credentials.
		{"GET /admin/developers", u.developers},
		{"POST /admin/developers", u.addDeveloper},
		{"GET /admin/developers/{id}/remove", u.confirmRemoveDeveloper},
		{"POST /admin/developers/{id}/remove", u.removeDeveloper},
		{"GET /admin/credentials", u.credentials},
		{"POST /admin/credentials", u.createCredential},
		{"GET /admin/credentials/{id}", u.credential},
		{"POST /admin/credentials/{id}/plan", u.credentialPlan},
		{"GET /admin/credentials/{id}/delete", u.confirmDeleteCredential},
		{"POST /admin/credentials/{id}/delete", u.deleteCredential},
		{"POST /admin/credentials/{id}/roll", u.rollCredential},
		// Third-party applications: developers' own, an admin's account's.
		{"GET /admin/apps", u.apps},
		{"POST /admin/apps", u.createApp},
		{"POST /admin/apps/{id}/roll", u.rollApp},
		{"GET /admin/apps/{id}/delete", u.confirmDeleteApp},
		{"POST /admin/apps/{id}/delete", u.deleteApp},
		// Account settings, usage and the audit log.
		{"GET /admin/settings", u.settings},
		{"POST /admin/settings", u.saveSettings},
		{"POST /admin/settings/sso", u.saveSSO},
		{"GET /admin/usage", u.usage},
		{"GET /admin/audit", u.audit},
		{"GET /admin/audit/export", u.exportAudit},
		// Webhooks.
		{"GET /admin/webhooks", u.webhooks},
		{"POST /admin/webhooks", u.createWebhook},
		{"GET /admin/webhooks/{id}", u.webhook},
		{"POST /admin/webhooks/{id}/enabled", u.setWebhookEnabled},
		{"POST /admin/webhooks/{id}/test", u.testWebhook},
		{"POST /admin/webhooks/{id}/roll", u.rollWebhook},
		{"POST /admin/webhooks/{id}/deliveries/{delivery_id}/redeliver", u.redeliverWebhook},
		{"GET /admin/webhooks/{id}/delete", u.confirmDeleteWebhook},
		{"POST /admin/webhooks/{id}/delete", u.deleteWebhook},
		// The operator's accounts.
		{"GET /admin/accounts", u.accounts},
		{"POST /admin/accounts", u.createAccount},
		{"POST /admin/accounts/{id}", u.updateAccount},
	}
}
