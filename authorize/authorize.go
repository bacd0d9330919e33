// Package authorize holds the rules of the authorization code grant of
// third-party applications (SPEC §10.3) that need nothing but the
// standard library: which redirect URIs an application may register and
// how a request's redirect URI matches them (RFC 8252, RFC 9700 §2.1),
// PKCE with S256 only (RFC 7636), the authorization response and its error
// redirects with iss (RFC 9207), and what each scope allows in words, for
// the consent page. The service applies them; the token endpoint and the
// console's pages call the service.
package authorize

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Limits on what an application registers.
const (
	// MaxRedirectURIs bounds an application's redirect URIs.
	MaxRedirectURIs = 10
	// MaxRedirectURILen bounds one redirect URI.
	MaxRedirectURILen = 2000
)

// CheckRedirectURI returns an invalid_request error naming field unless
// raw may be registered as a redirect URI: an absolute https URI; or
// http on the loopback literal 127.0.0.1 or [::1] (RFC 8252 §7.3, any
// port; never "localhost", §8.3); or a private-use scheme with a dot in
// it for a native application (RFC 8252 §7.1). Never a fragment
// (RFC 6749 §3.1.2), user information, a wildcard or anything that is not
// printable ASCII.
func CheckRedirectURI(field, raw string) error {
	bad := func(why string) error {
		return gatehouse.InvalidField(field, "Redirect URIs are https, http://127.0.0.1 or http://[::1], or a private scheme: "+why+".",
			"%s: %s", field, why)
	}
	if raw == "" || len(raw) > MaxRedirectURILen {
		return bad("give a URI of at most 2000 characters")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return bad("only printable ASCII without spaces or backslashes")
		}
	}
	if strings.ContainsAny(raw, "#*") {
		return bad("no fragment and no wildcard")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return bad("an absolute URI")
	}
	// url.Parse lower-cases the scheme: judge it as written, since a
	// redirect URI is matched as written.
	if scheme, _, _ := strings.Cut(raw, ":"); scheme != strings.ToLower(scheme) {
		return bad("a scheme in lower case")
	}
	if u.User != nil {
		return bad("no user information")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" || u.Hostname() == "" {
			return bad("an https URI names a host")
		}
	case "http":
		if !loopback(u) {
			return bad("http only on 127.0.0.1 or [::1]")
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return bad("a private scheme is a reversed domain name such as com.example.app")
		}
		switch u.Scheme {
		case "javascript", "data", "file", "vbscript", "blob", "about":
			return bad("not a scheme that runs or reads anything")
		}
	}
	return nil
}

// PrivateScheme reports whether raw, a redirect URI CheckRedirectURI
// accepted, has a private-use scheme (RFC 8252 §7.1) rather than https or
// http on a loopback address. A client that registers itself may not
// name one (SPEC §10.4): any application on a device may claim a scheme.
func PrivateScheme(raw string) bool {
	scheme, _, _ := strings.Cut(raw, ":")
	return scheme != "https" && scheme != "http"
}

// loopback reports whether u is http on a loopback IP literal.
func loopback(u *url.URL) bool {
	if u.Scheme != "http" {
		return false
	}
	h := u.Hostname()
	if h != "127.0.0.1" && h != "::1" {
		return false
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// MatchRedirectURI reports whether got is one of the registered redirect
// URIs, compared as strings, exactly (RFC 9700 §2.1) — except that on a
// loopback registration (http://127.0.0.1 or http://[::1]) the port may be
// any (RFC 8252 §7.3), everything else still exact.
func MatchRedirectURI(registered []string, got string) bool {
	if got == "" {
		return false
	}
	for _, r := range registered {
		if subtle.ConstantTimeCompare([]byte(r), []byte(got)) == 1 {
			return true
		}
	}
	g, err := url.Parse(got)
	if err != nil || !loopback(g) || strings.Contains(got, "#") {
		return false
	}
	for _, r := range registered {
		ru, err := url.Parse(r)
		if err != nil || !loopback(ru) {
			continue
		}
		if ru.Hostname() == g.Hostname() && withoutPort(r, ru) == withoutPort(got, g) {
			return true
		}
	}
	return false
}

// withoutPort is raw with u's port (if any) taken out of its authority.
func withoutPort(raw string, u *url.URL) string {
	if p := u.Port(); p != "" {
		return strings.Replace(raw, u.Host, strings.TrimSuffix(u.Host, ":"+p), 1)
	}
	return raw
}

// ChallengeMethod is the only PKCE method accepted (RFC 7636 §4.2; RFC
// 9700 §2.1.1: plain is refused).
const ChallengeMethod = "S256"

// CheckChallenge returns an invalid_request error unless the request's
// code_challenge and code_challenge_method are an S256 challenge: the
// method S256 (required; an absent method would mean plain) and a
// challenge of 43 base64url characters, a SHA-256 digest.
func CheckChallenge(challenge, method string) error {
	if challenge == "" {
		return gatehouse.Invalid("code_challenge is required (PKCE with S256)")
	}
	if method != ChallengeMethod {
		return gatehouse.Invalid("code_challenge_method must be S256")
	}
	if b, err := base64.RawURLEncoding.DecodeString(challenge); err != nil || len(b) != sha256.Size || len(challenge) != 43 {
		return gatehouse.Invalid("code_challenge must be the base64url SHA-256 of the code verifier")
	}
	return nil
}

// ValidVerifier reports whether v is a code verifier of RFC 7636 §4.1: 43
// to 128 characters of [A-Za-z0-9-._~].
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// Challenge returns the S256 challenge of verifier.
func Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyPKCE reports whether verifier is well formed and its S256
// challenge is challenge, in constant time.
func VerifyPKCE(verifier, challenge string) bool {
	if !ValidVerifier(verifier) || challenge == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(Challenge(verifier)), []byte(challenge)) == 1
}

// Redirect returns the redirect URI with the parameters of an
// authorization response added to its query (RFC 6749 §4.1.2), iss among
// them (RFC 9207). An existing query of the registered URI is kept.
func Redirect(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ErrorRedirect is Redirect with an error answer (RFC 6749 §4.1.2.1).
func ErrorRedirect(redirectURI, issuer, state, code, description string) string {
	return Redirect(redirectURI, url.Values{"error": {code}, "error_description": {description}, "state": {state}, "iss": {issuer}})
}

// scopeWords says what each built-in scope lets an application do, for
// the consent page.
var scopeWords = map[gatehouse.Scope]string{
	gatehouse.ScopeWorkspacesRead:   "See the workspaces you can see",
	gatehouse.ScopeWorkspacesWrite:  "Create, change and delete your workspaces and their members",
	gatehouse.ScopeUsersRead:        "See the users of your account",
	gatehouse.ScopeUsersWrite:       "Create, change, disable and delete users of your account",
	gatehouse.ScopeCredentialsRead:  "See your API credentials",
	gatehouse.ScopeCredentialsWrite: "Create, roll and delete API credentials in your name",
	gatehouse.ScopeSettingsRead:     "See your account's settings",
	gatehouse.ScopeSettingsWrite:    "Change your account's settings",
	gatehouse.ScopeAuditRead:        "Read your account's audit log",
	gatehouse.ScopeAccountsWrite:    "Create and change accounts on this server",
}

// ScopeWords says in words what scope s lets an application do; a scope
// of the platform's own API is named as such.
func ScopeWords(s gatehouse.Scope) string {
	if w, ok := scopeWords[s]; ok {
		return w
	}
	return "Use the platform's API with the permission \u201c" + string(s) + "\u201d"
}
