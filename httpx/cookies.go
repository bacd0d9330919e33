package httpx

import "strings"

// CookiePrefix starts the name of every cookie Gatehouse sets (the admin
// console's session, sign-in and flash cookies, a secret's reveal
// cookie). The gateway drops an upstream's Set-Cookie for any name with
// it (SPEC §10.8).
const CookiePrefix = "gatehouse_"

// IsGatehouseCookie reports whether a cookie name is one of Gatehouse's:
// it starts with CookiePrefix, in any case.
func IsGatehouseCookie(name string) bool {
	return len(name) >= len(CookiePrefix) && strings.EqualFold(name[:len(CookiePrefix)], CookiePrefix)
}
