package auth

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// RequireScope returns an error unless p's credential grants need:
// insufficient_scope (with RFC 6750's WWW-Authenticate) when p's roles
// allow it but the credential's scopes do not, forbidden when the roles do
// not allow it either. What the roles allow beyond the scope is left to the
// caller (the service decides it for the API).
func RequireScope(w http.ResponseWriter, p *gatehouse.Principal, need gatehouse.Scope) error {
	if p.Scopes.Allows(need) {
		return nil
	}
	return refuseScopes(w, p, gatehouse.Scopes{need})
}

// RequireScopes returns nil when p's effective scopes (the credential's
// scopes intersected with what its roles allow right now) grant every scope
// of need; otherwise forbidden when p's roles do not allow them all, and
// insufficient_scope, naming every scope of need in RFC 6750's
// WWW-Authenticate, when only the credential falls short. It is the check
// for a caller with no service behind it to decide by role (the gateway).
func RequireScopes(w http.ResponseWriter, p *gatehouse.Principal, need gatehouse.Scopes) error {
	if p.EffectiveScopes().Covers(need) {
		return nil
	}
	return refuseScopes(w, p, need)
}

// refuseScopes is the refusal of a request whose credential lacks need.
func refuseScopes(w http.ResponseWriter, p *gatehouse.Principal, need gatehouse.Scopes) error {
	if !p.RoleScopes().Covers(need) {
		return gatehouse.Forbidden("Your role does not allow this")
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+need.String()+`"`)
	if len(need) == 1 {
		return gatehouse.Errorf(gatehouse.EInsufficientScope, "The credential lacks the scope %s", need)
	}
	return gatehouse.Errorf(gatehouse.EInsufficientScope, "The credential lacks one of the scopes %s", need)
}
