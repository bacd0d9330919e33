package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestUsersSearch: GET /v1/users filters by a part of the e-mail or name,
// by role and by status, and pages forwards and back through the result.
func TestUsersSearch(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	var emails []string
	for i := range 7 {
		roles := []string{}
		if i%3 == 0 {
			roles = []string{"developer"}
		}
		time.Sleep(2 * time.Millisecond) // ids order by the millisecond
		email := fmt.Sprintf("person%d@search.example", i)
		id := env.CreateUser(admin, email, memberPW, roles...)
		if i == 5 {
			servertest.Expect(t, env.As(admin, "PATCH", "/v1/users/"+id, map[string]string{"status": "disabled"}), 200, "")
		}
		emails = append(emails, email)
	}
	type page struct {
		Data []struct {
			Email string `json:"email"`
		} `json:"data"`
		Next string `json:"next_cursor"`
		Prev string `json:"prev_cursor"`
	}
	list := func(t *testing.T, query url.Values) page {
		t.Helper()
		r := env.As(admin, "GET", "/v1/users?"+query.Encode(), nil)
		servertest.Expect(t, r, 200, "")
		var p page
		r.JSON(t, &p)
		return p
	}
	emailsOf := func(p page) []string {
		var out []string
		for _, u := range p.Data {
			out = append(out, u.Email)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"part of the e-mail, any case", url.Values{"q": {"PERSON3@"}}, emails[3:4]},
		{"start of the address", url.Values{"q": {"PERSON"}}, emails},
		{"inside the address (the search matches starts only)", url.Values{"q": {"search.example"}}, nil},
		{"developers", url.Values{"role": {"developer"}}, []string{emails[0], emails[3], emails[6]}},
		{"members among the persons", url.Values{"role": {"member"}, "q": {"person"}}, []string{emails[1], emails[2], emails[4], emails[5]}},
		{"disabled", url.Values{"status": {"disabled"}}, emails[5:6]},
		{"admins", url.Values{"role": {"admin"}}, []string{servertest.AdminEmail}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := emailsOf(list(t, tc.query)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("bad filters", func(t *testing.T) {
		servertest.Expect(t, env.As(admin, "GET", "/v1/users?role=owner", nil), 400, "invalid_request")
		servertest.Expect(t, env.As(admin, "GET", "/v1/users?status=gone", nil), 400, "invalid_request")
	})
	t.Run("pages forwards and back", func(t *testing.T) {
		q := url.Values{"q": {"person"}, "limit": {"3"}}
		var forward []string
		var pages []page
		for p := list(t, q); ; {
			pages = append(pages, p)
			forward = append(forward, emailsOf(p)...)
			if p.Next == "" {
				break
			}
			q.Set("cursor", p.Next)
			p = list(t, q)
		}
		if !slices.Equal(forward, emails) || len(pages) != 3 || pages[0].Prev != "" {
			t.Fatalf("forward %v in %d pages", forward, len(pages))
		}
		q.Set("cursor", pages[2].Prev)
		if back := list(t, q); !slices.Equal(emailsOf(back), emails[3:6]) || back.Prev != pages[1].Prev {
			t.Fatalf("back from the last page: %v", emailsOf(back))
		}
	})
}
