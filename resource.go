package gatehouse

import (
	"net/url"
	"strings"
)

// maxResourceLen bounds a resource indicator.
const maxResourceLen = 2000

// ResourceKey returns the form in which a resource indicator (RFC 8707
// §2) is stored and compared: an absolute http or https URI without a
// fragment or a query, its scheme and host in lower case, and an empty
// path written as "/" dropped ("https://api.example.com/" and
// "https://api.example.com" name one resource). ok is false for anything
// else, which the authorization server refuses with invalid_target.
func ResourceKey(v string) (key string, ok bool) {
	if v == "" || len(v) > maxResourceLen || strings.ContainsAny(v, "#\x00\r\n\t ") {
		return "", false
	}
	u, err := url.Parse(v)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	path := u.EscapedPath()
	if path == "/" {
		path = ""
	}
	return scheme + "://" + strings.ToLower(u.Host) + path, true
}
