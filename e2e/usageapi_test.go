package e2e

import (
	"encoding/base64"
	"encoding/csv"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
)

// TestUsageAPI: GET /v1/usage adds up to exactly the requests the test
// made — released together from many goroutines — by day, by user and by
// credential, filtered by user and by credential, page by page and as
// CSV; a member may not read it; bad input is 400 naming the field.
func TestUsageAPI(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.UsageFlushInterval = 50 * time.Millisecond })
	admin, devID, _, c := developer(t, env)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 100000, "daily": 1000000}}), 200, "")
	cc := accessToken(t, clientToken(env, c))
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	reader, readerID := apiTokenWith(t, env, admin, map[string]any{"name": "billing sync", "scopes": []string{"workspaces:read"}})

	var wg sync.WaitGroup
	start := make(chan struct{})
	do := func(n int, f func()) {
		for range n {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; f() }()
		}
	}
	// One request each first, so that the rest find their credential
	// cached.
	servertest.Expect(t, env.As(cc, "GET", "/v1/me", nil), 200, "")
	servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", reader), 200, "")
	const ccServed, ccForbidden, tokServed = 37, 5, 23
	do(ccServed-1, func() { servertest.Expect(t, env.As(cc, "GET", "/v1/me", nil), 200, "") })
	do(ccForbidden, func() { servertest.Expect(t, env.As(cc, "GET", "/v1/audit", nil), 403, "") })
	close(start)
	wg.Wait()
	for range tokServed - 1 {
		servertest.Expect(t, env.Request("GET", "/v1/workspaces", nil, "X-API-Token", reader), 200, "")
	}
	today := time.Now().UTC().Format(time.DateOnly)

	var list func(query string) []service.UsageEntry
	list = func(query string) []service.UsageEntry {
		t.Helper()
		r := env.As(admin, "GET", "/v1/usage?"+query, nil)
		servertest.Expect(t, r, 200, "")
		var out struct {
			Data []service.UsageEntry `json:"data"`
			Next string               `json:"next_cursor"`
		}
		r.JSON(t, &out)
		if out.Next != "" {
			q, _ := url.ParseQuery(query)
			q.Set("cursor", out.Next)
			return append(out.Data, list(q.Encode())...)
		}
		return out.Data
	}
	byCred := func() map[string]service.UsageEntry {
		out := map[string]service.UsageEntry{}
		for _, e := range list("group_by=credential&limit=1") {
			out[e.CredentialKind+":"+e.CredentialID] = e
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := byCred()
		a, b := got["client_credential:"+c.ClientID], got["api_token:"+readerID]
		if a.Served == ccServed && a.Forbidden == ccForbidden && b.Served == tokServed {
			if a.Unauthorized != 0 || a.RateLimited != 0 || b.Forbidden != 0 || b.Unauthorized != 0 || b.RateLimited != 0 {
				t.Fatalf("refusals counted that never happened: %+v %+v", a, b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage by credential %+v %+v, want served %d forbidden %d and served %d", a, b, ccServed, ccForbidden, tokServed)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// By user: the developer's requests are the credential's and the one
	// that made it (with the developer's own token); the API token acted
	// as nobody.
	for _, e := range list("group_by=user") {
		if e.UserID == devID && (e.Served != ccServed+1 || e.Forbidden != ccForbidden) {
			t.Errorf("by user, the developer: %+v", e)
		}
		if e.Day != "" || e.CredentialID != "" {
			t.Errorf("a field not grouped by: %+v", e)
		}
	}
	// By day and credential, filtered: one row of today.
	if got := list("group_by=day,credential&credential_id=" + readerID + "&from=" + today + "&to=" + today); len(got) != 1 ||
		got[0].Day != today || got[0].Served != tokServed || got[0].CredentialKind != "api_token" {
		t.Errorf("the token's day: %+v", got)
	}
	if got := list("group_by=day&user_id=" + devID); len(got) != 1 || got[0].Day != today || got[0].Served != ccServed+1 || got[0].Forbidden != ccForbidden {
		t.Errorf("the developer's days: %+v", got)
	}
	if got := list("group_by=day&from=2000-01-01&to=2000-01-31"); len(got) != 0 {
		t.Errorf("usage of days nothing happened on: %+v", got)
	}

	// CSV, by Accept and by format.
	for _, headers := range [][]string{{"Accept", "text/csv"}, nil} {
		path := "/v1/usage?group_by=credential&credential_id=" + c.ClientID
		if headers == nil {
			path += "&format=csv"
		}
		r := env.Request("GET", path, nil, append([]string{"Authorization", "Bearer " + admin}, headers...)...)
		servertest.Expect(t, r, 200, "")
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("Content-Type %q", ct)
		}
		recs, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		if err != nil || len(recs) != 2 || strings.Join(recs[0], ",") != "credential_id,credential_kind,served,unauthorized,forbidden,rate_limited" ||
			strings.Join(recs[1], ",") != c.ClientID+",client_credential,37,0,5,0" {
			t.Fatalf("CSV %q (%v)", r.Body, err)
		}
	}

	// A member may not; bad input is 400 naming the field.
	env.CreateUser(admin, "member@example.com", memberPW)
	servertest.Expect(t, env.As(env.Login("member@example.com", memberPW), "GET", "/v1/usage", nil), 403, "")
	for _, q := range []string{"from=yesterday", "to=2026-02-30", "from=2026-02-02&to=2026-02-01", "from=2020-01-01&to=2026-01-01",
		"group_by=week", "group_by=day,", "format=xml", "cursor=bm90IGpzb24", "limit=0", "limit=100000"} {
		servertest.Expect(t, env.As(admin, "GET", "/v1/usage?"+q, nil), 400, "invalid_request")
	}
	// A cursor whose text is clean but whose JSON escapes decode to a NUL
	// (which PostgreSQL refuses) is 400 before any store call, as CSV too.
	for _, q := range []string{"group_by=user", "group_by=day", "group_by=credential", "group_by=day,user"} {
		key := `["\u0000"]`
		if q == "group_by=day,user" {
			key = `["2026-01-01","a\u0000b"]`
		}
		cur := base64.RawURLEncoding.EncodeToString([]byte(key))
		servertest.Expect(t, env.As(admin, "GET", "/v1/usage?"+q+"&cursor="+cur, nil), 400, "invalid_request")
		servertest.Expect(t, env.As(admin, "GET", "/v1/usage?"+q+"&cursor="+cur, nil, "Accept", "text/csv"), 400, "")
	}
}

// TestUsageOddParameters: odd forms of the usage API's parameters (dates
// that do not exist, times and zones, signed years, reversed or too long
// ranges, odd group_by, format and limit spellings, forged cursors) are
// 400 invalid_request in JSON, even when CSV is asked for, never a 5xx;
// the extremes of the calendar and unknown ids are 200.
func TestUsageOddParameters(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	bad := []string{
		"from=2026-02-30", "to=2026-13-01", "from=2026-1-1", "to=2026-01-01T00:00:00Z", "from=2026-01-01%2B01:00",
		"from=-2026-01-01", "to=%2B2026-01-01", "from=2026-01-02&to=2026-01-01", "from=2024-01-01&to=2025-01-01",
		"from=0000-01-01&to=9999-12-31", "group_by=DAY", "group_by=day,", "group_by=,", "group_by=day;user", "group_by=day%20",
		"format=CSV", "format=xml", "limit=0", "limit=-1", "limit=1e3", "limit=99999999999999999999",
		"cursor=%21%21", "cursor=" + cursorOf("[1]"), "cursor=" + cursorOf("null"), "cursor=" + cursorOf(`["a","b","c","d"]`),
		"cursor=" + cursorOf(`["\u0000"]`), "cursor=" + cursorOf("{}"), "group_by=user&cursor=" + cursorOf(`["x","y"]`),
		"to=20260101",
	}
	for _, q := range bad {
		for _, csv := range []bool{false, true} {
			var h []string
			if csv {
				h = []string{"Accept", "text/csv"}
			}
			r := env.As(admin, "GET", "/v1/usage?"+q, nil, h...)
			if r.Status != 400 {
				t.Errorf("%s (csv %v): %d %s", q, csv, r.Status, r.Body)
				continue
			}
			if r.Map(t)["error"] != "invalid_request" {
				t.Errorf("%s: %s", q, r.Body)
			}
		}
	}
	for _, q := range []string{"from=0001-01-01&to=0001-12-31", "from=9999-12-31&to=9999-12-31", "group_by=day,day,user", "cursor=" + cursorOf(`["9999-12-31"]`),
		"user_id=usr_nope&credential_id=x", "credential_id=" + url.QueryEscape("password:"), "group_by=credential&cursor=" + cursorOf(`[""]`)} {
		r := env.As(admin, "GET", "/v1/usage?"+q, nil)
		if r.Status != 200 {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
}

// cursorOf is s as a usage cursor is spelt (base64url, no padding).
func cursorOf(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
