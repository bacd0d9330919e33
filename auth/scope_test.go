package auth

import (
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestRequireScopes(t *testing.T) {
	account := &gatehouse.Account{Settings: gatehouse.Settings{CustomScopes: gatehouse.Scopes{"chains:execute", "metadata:read"}}}
	member := &gatehouse.User{} // no role: a member
	for _, tc := range []struct {
		name      string
		p         *gatehouse.Principal
		need      gatehouse.Scopes
		wantCode  string // "" for allowed
		wantScope string // the WWW-Authenticate header
	}{
		{"unrestricted token, custom scope", &gatehouse.Principal{Account: account}, gatehouse.Scopes{"chains:execute"}, "", ""},
		{"token holds it", &gatehouse.Principal{Account: account, Scopes: gatehouse.Scopes{"chains:execute"}}, gatehouse.Scopes{"chains:execute"}, "", ""},
		{"write implies read", &gatehouse.Principal{Account: account, Scopes: gatehouse.Scopes{"workspaces:write"}}, gatehouse.Scopes{"workspaces:read"}, "", ""},
		{"token lacks it", &gatehouse.Principal{Account: account, Scopes: gatehouse.Scopes{"workspaces:read"}}, gatehouse.Scopes{"chains:execute"},
			gatehouse.EInsufficientScope, `Bearer error="insufficient_scope", scope="chains:execute"`},
		{"token lacks one of two", &gatehouse.Principal{Account: account, Scopes: gatehouse.Scopes{"chains:execute"}}, gatehouse.Scopes{"chains:execute", "metadata:read"},
			gatehouse.EInsufficientScope, `Bearer error="insufficient_scope", scope="chains:execute metadata:read"`},
		{"role does not allow it", &gatehouse.Principal{Account: account, User: member}, gatehouse.Scopes{gatehouse.ScopeSettingsRead}, gatehouse.EForbidden, ""},
		{"scope the account does not define", &gatehouse.Principal{Account: account}, gatehouse.Scopes{"billing:write"}, gatehouse.EForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := RequireScopes(w, tc.p, tc.need)
			if got := gatehouse.ErrorCode(err); err != nil && got != tc.wantCode || err == nil && tc.wantCode != "" {
				t.Fatalf("RequireScopes = %v, want code %q", err, tc.wantCode)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.wantScope {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tc.wantScope)
			}
		})
	}
}
