package logx

import (
	"net/url"
	"strings"
)

// secretParams are the query parameters of a connection URL that carry a
// password (libpq reads password and sslpassword from the query too).
var secretParams = []string{"password", "sslpassword"}

// RedactURL returns a connection URL fit for a log line or an error
// message: the password of its user information and of its query
// replaced by xxxxx. A URL that does not parse, or has no "//" (whose
// user information url.URL cannot tell apart), keeps only its scheme.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		if scheme, _, ok := strings.Cut(raw, "://"); ok && !strings.ContainsAny(scheme, "@:/") {
			return scheme + "://…"
		}
		return "…"
	case u.Opaque != "":
		return u.Scheme + ":…"
	}
	if u.RawQuery != "" {
		// Only a secret's value changes; the rest stays as written.
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			key, _, _ := strings.Cut(part, "=")
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
			for _, p := range secretParams {
				if strings.EqualFold(key, p) {
					parts[i] = key + "=xxxxx"
				}
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.Redacted()
}
