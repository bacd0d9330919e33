package api

import (
	"encoding/base64"
	"encoding/csv"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// listUsage answers GET /v1/usage (SPEC §10.5): JSON, or CSV when the
// request accepts text/csv (or asks format=csv), with the next page's
// cursor in a Link header.
func (a *API) listUsage(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	q := r.URL.Query()
	pg, err := page(r)
	if err != nil {
		return err
	}
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	out, err := a.Service.ListUsage(r.Context(), p, service.UsageFilter{From: q.Get("from"), To: q.Get("to"), GroupBy: q.Get("group_by"),
		UserID: q.Get("user_id"), CredentialID: q.Get("credential_id")}, pg)
	if err != nil {
		return err
	}
	if !asCSV {
		writeList(w, out.Data, out.Next)
		return nil
	}
	if out.Next != "" {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte(out.Next)))
		w.Header().Set("Link", "<"+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	var head []string
	if out.Groups.Day {
		head = append(head, "day")
	}
	if out.Groups.User {
		head = append(head, "user_id")
	}
	if out.Groups.Credential {
		head = append(head, "credential_id", "credential_kind")
	}
	_ = cw.Write(append(head, "served", "unauthorized", "forbidden", "rate_limited"))
	for _, e := range out.Data {
		var rec []string
		if out.Groups.Day {
			rec = append(rec, e.Day)
		}
		if out.Groups.User {
			rec = append(rec, e.UserID)
		}
		if out.Groups.Credential {
			rec = append(rec, e.CredentialID, e.CredentialKind)
		}
		for _, n := range []int64{e.Served, e.Unauthorized, e.Forbidden, e.RateLimited} {
			rec = append(rec, strconv.FormatInt(n, 10))
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return nil
}

// wantsCSV reports whether the usage is asked for as CSV: format=csv, or
// an Accept header that names text/csv. Any other format is
// invalid_request.
func wantsCSV(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("format") {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, gatehouse.InvalidField("format", "Ask for json or csv.", "format must be json or csv")
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/csv" {
			return true, nil
		}
	}
	return false, nil
}
