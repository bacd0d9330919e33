package httpx

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Limits of the input a request carries outside its body, checked by
// CheckInput before any handler runs.
const (
	// MaxPathSegmentBytes bounds one segment of a request's path: ids
	// are about 30 bytes, and no name in a path comes near it.
	MaxPathSegmentBytes = 256
	// MaxQueryValueBytes bounds one query parameter's name or value:
	// filters (an e-mail address is at most 254 bytes) and cursors are
	// far shorter.
	MaxQueryValueBytes = 1024
	// MaxQueryParams bounds how many parameters a query string holds.
	MaxQueryParams = 64
)

// CheckInput returns an invalid_request error when the path or the query
// string of r is not input Gatehouse reads: every path segment and every
// query parameter name and value must be valid UTF-8 (which refuses
// overlong encodings) without NUL and within the limits above, and the
// query string must parse. The JSON API and the admin UI call it once for
// every request, before authentication and before any store call, so no
// store ever sees a path id, filter or cursor it cannot hold (PostgreSQL
// refuses invalid UTF-8 and NUL in text). Cursors that decode to text
// are checked again where they are decoded (CheckText).
func CheckInput(r *http.Request) error {
	for seg := range strings.SplitSeq(r.URL.Path, "/") {
		if err := checkPiece("path", seg, MaxPathSegmentBytes); err != nil {
			return err
		}
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return gatehouse.Invalid("The query string is malformed")
	}
	n := 0
	for k, vs := range q {
		if err := checkPiece("query parameter name", k, MaxQueryValueBytes); err != nil {
			return err
		}
		for _, v := range vs {
			if n++; n > MaxQueryParams {
				return gatehouse.Invalid("The query string has more than %d parameters", MaxQueryParams)
			}
			if err := checkPiece("query parameter "+quoteName(k), v, MaxQueryValueBytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPiece checks one path segment or query name or value.
func checkPiece(what, s string, max int) error {
	if len(s) > max {
		return gatehouse.Invalid("A %s is longer than %d bytes", what, max)
	}
	return CheckText(what, s)
}

// quoteName quotes a query parameter's name for a message; the name has
// been checked already.
func quoteName(k string) string { return "'" + k + "'" }
