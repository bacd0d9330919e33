package service

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// UsageFilter is what GET /v1/usage asks for (SPEC §10.5): the days from
// From to To (YYYY-MM-DD, UTC, both included; To defaults to today and
// From to the 30 days ending with To), GroupBy ("day", "user",
// "credential", or several joined by commas; "day" when empty), and
// optionally one user and one credential.
type UsageFilter struct {
	From, To     string
	GroupBy      string
	UserID       string
	CredentialID string
}

// UsageEntry is one row of GET /v1/usage: the grouped fields, and the
// requests counted by how they ended.
type UsageEntry struct {
	Day            string `json:"day,omitempty"`
	UserID         string `json:"user_id,omitempty"`
	CredentialID   string `json:"credential_id,omitempty"`
	CredentialKind string `json:"credential_kind,omitempty"`
	Served         int64  `json:"served"`
	Unauthorized   int64  `json:"unauthorized"`
	Forbidden      int64  `json:"forbidden"`
	RateLimited    int64  `json:"rate_limited"`
}

// UsagePage is one page of the usage list: its rows, the groups they are
// grouped by, and the cursor of the next page ("" on the last).
type UsagePage struct {
	Data   []UsageEntry
	Groups store.UsageGroups
	Next   string
}

// MaxUsageDays bounds the days one usage request covers.
const MaxUsageDays = 366

// usageKinds are the credential kinds of the usage list, by the
// authentication method stored with the count.
var usageKinds = map[gatehouse.AuthMethod]string{
	gatehouse.MethodAPIToken:          string(gatehouse.PlanAPIToken),
	gatehouse.MethodClientCredentials: string(gatehouse.PlanCredential),
	gatehouse.MethodAPIAccess:         string(gatehouse.PlanAPIApplication),
	gatehouse.MethodAuthorizationCode: string(gatehouse.PlanApp),
	gatehouse.MethodPassword:          "password",
}

// ListUsage returns a page of the account's usage counts (the ones the
// console's usage page shows), grouped as f asks. Admins only (scope
// usage:read). A bad date, range, grouping or cursor is invalid_request.
func (s *Service) ListUsage(ctx context.Context, p *gatehouse.Principal, f UsageFilter, pg gatehouse.Page) (*UsagePage, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	q := store.UsageQuery{AccountID: p.AccountID, UserID: f.UserID, Limit: pg.Size() + 1}
	to := s.now().UTC().Truncate(24 * time.Hour)
	if f.To != "" {
		t, err := time.Parse(time.DateOnly, f.To)
		if err != nil {
			return nil, gatehouse.InvalidField("to", "Give a date as YYYY-MM-DD.", "to must be a date (YYYY-MM-DD)")
		}
		to = t
	}
	from := to.AddDate(0, 0, -29)
	if f.From != "" {
		t, err := time.Parse(time.DateOnly, f.From)
		if err != nil {
			return nil, gatehouse.InvalidField("from", "Give a date as YYYY-MM-DD.", "from must be a date (YYYY-MM-DD)")
		}
		from = t
	}
	if from.After(to) {
		return nil, gatehouse.InvalidField("from", "The range starts after it ends.", "from must not be after to")
	}
	if to.Sub(from) >= MaxUsageDays*24*time.Hour {
		return nil, gatehouse.InvalidField("from", "Ask for at most 366 days.", "from and to may span at most %d days", MaxUsageDays)
	}
	q.From, q.To = from.Format(time.DateOnly), to.Format(time.DateOnly)
	groupBy := f.GroupBy
	if groupBy == "" {
		groupBy = "day"
	}
	for g := range strings.SplitSeq(groupBy, ",") {
		switch g {
		case "day":
			q.Groups.Day = true
		case "user":
			q.Groups.User = true
		case "credential":
			q.Groups.Credential = true
		default:
			return nil, gatehouse.InvalidField("group_by", "Group by day, user or credential.", "group_by must be day, user or credential (or several, joined by commas)")
		}
	}
	if f.CredentialID != "" {
		for m := range usageKinds {
			q.Credentials = append(q.Credentials, string(m)+":"+f.CredentialID)
		}
	}
	if pg.After != "" {
		// The cursor's bytes were checked as text, but its JSON escapes
		// decode now: a "\u0000" would reach the store as a NUL.
		if err := json.Unmarshal([]byte(pg.After), &q.After); err != nil || len(q.After) != len(store.UsageGroupRow{}.Key(q.Groups)) ||
			strings.ContainsRune(strings.Join(q.After, ""), 0) {
			return nil, gatehouse.Invalid("cursor is not one this server issued")
		}
	}
	if pg.Before != "" {
		return nil, gatehouse.Invalid("cursor is not one this server issued")
	}
	rows, err := s.store.UsageGrouped(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &UsagePage{Groups: q.Groups, Data: []UsageEntry{}}
	if len(rows) > pg.Size() {
		rows = rows[:pg.Size()]
		key, _ := json.Marshal(rows[len(rows)-1].Key(q.Groups))
		out.Next = string(key)
	}
	for _, r := range rows {
		e := UsageEntry{Day: r.Day, UserID: r.UserID, Served: r.Served, Unauthorized: r.Unauthorized, Forbidden: r.Forbidden, RateLimited: r.Limited}
		if q.Groups.Credential {
			method, id, _ := strings.Cut(r.Credential, ":")
			e.CredentialID, e.CredentialKind = id, usageKinds[gatehouse.AuthMethod(method)]
			if e.CredentialKind == "" {
				e.CredentialKind = "unknown"
			}
		}
		out.Data = append(out.Data, e)
	}
	return out, nil
}
