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
		q := u.Query()
		for k := range q {
			for _, p := range secretParams {
				if strings.EqualFold(k, p) {
					q[k] = []string{"xxxxx"}
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
