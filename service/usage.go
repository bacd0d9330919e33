package service

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Outcome is how an API request ended, for the usage counts.
type Outcome int

// The outcomes counted apart.
const (
	// Served is every request that was admitted, whatever it answered.
	Served Outcome = iota
	// Unauthorized is a credential recognised but refused (401): expired,
	// revoked by its parent, or with an act-as header naming nobody.
	Unauthorized
	// Forbidden is a request its credential may not make (403).
	Forbidden
	// Limited is a request refused by the rate limit.
	Limited
)

// usageKey is store.UsageKey before its credential is spelt out, so that
// counting a request builds no string.
type usageKey struct {
	account, day, user string
	method             gatehouse.AuthMethod
	credential         string
}

// Usage counts API requests per account, day, user and credential in
// memory, each outcome apart, and adds them to the store when flushed. A
// request made by an API token acting as a user is one request, of that
// user through that token. It is safe for concurrent use.
type Usage struct {
	mu     sync.Mutex
	counts map[usageKey]store.UsageCounts
	// day is the UTC day of the last request counted, from dayStart to
	// dayEnd.
	day              string
	dayStart, dayEnd time.Time
}

// NewUsage returns an empty counter.
func NewUsage() *Usage { return &Usage{counts: map[usageKey]store.UsageCounts{}} }

// Record counts one request of p that ended in o at now. Requests of the
// admin UI's sessions are not API usage and are not counted.
func (u *Usage) Record(p *gatehouse.Principal, o Outcome, now time.Time) {
	if p == nil || p.Method == gatehouse.MethodSession {
		return
	}
	k := usageKey{account: p.AccountID, method: p.Method, credential: usageCredentialID(p)}
	if p.User != nil {
		k.user = p.User.ID
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !now.Before(u.dayEnd) || now.Before(u.dayStart) {
		u.dayStart = now.UTC().Truncate(24 * time.Hour)
		u.day, u.dayEnd = u.dayStart.Format(time.DateOnly), u.dayStart.AddDate(0, 0, 1)
	}
	k.day = u.day
	c := u.counts[k]
	switch o {
	case Served:
		c.Served++
	case Unauthorized:
		c.Unauthorized++
	case Forbidden:
		c.Forbidden++
	case Limited:
		c.Limited++
	}
	u.counts[k] = c
}

// usageCredentialID names the credential behind p within its method: the
// API token's id, the client id of a client credential, API access
// application or third-party application (its tokens from the code and
// device grants), nothing for the password grant (its user tells it
// apart).
func usageCredentialID(p *gatehouse.Principal) string {
	switch p.Method {
	case gatehouse.MethodAPIToken:
		return p.CredentialID
	case gatehouse.MethodClientCredentials, gatehouse.MethodAPIAccess, gatehouse.MethodAuthorizationCode:
		return p.ClientID
	}
	return ""
}

// Flush adds the counts so far to the store.
func (u *Usage) Flush(ctx context.Context, st *store.Store) error {
	u.mu.Lock()
	counts := u.counts
	u.counts = map[usageKey]store.UsageCounts{}
	u.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	stored := make(map[store.UsageKey]store.UsageCounts, len(counts))
	for k, n := range counts {
		sk := store.UsageKey{AccountID: k.account, Day: k.day, UserID: k.user, Credential: string(k.method) + ":" + k.credential}
		c := stored[sk]
		c.Add(n)
		stored[sk] = c
	}
	if err := st.AddUsage(ctx, stored); err != nil {
		// Keep them for the next flush.
		u.mu.Lock()
		for k, n := range counts {
			c := u.counts[k]
			c.Add(n)
			u.counts[k] = c
		}
		u.mu.Unlock()
		return err
	}
	return nil
}

// UsageReport is an account's API usage over its last days.
type UsageReport struct {
	// Dates are the days covered, oldest first (YYYY-MM-DD, UTC).
	Dates []string
	// ByUser is each user's requests — whatever credential they came
	// through — and then each API token's made acting as nobody, most
	// served first. Days counts the served requests of each date.
	ByUser []DailyUsage
	// ByCredential is each credential's requests, most first.
	ByCredential []CredentialUsage
}

// DailyUsage is the requests made as one user (or by one API token acting
// as nobody).
type DailyUsage struct {
	Label string
	Days  map[string]int64
	store.UsageCounts
}

// CredentialUsage is the requests that came through one credential.
type CredentialUsage struct {
	// Kind says what the credential is ("API token", "Client credential",
	// "API access", "Password grant"); Name is its name, Owner the e-mail
	// of the user it belongs to ("" for API tokens, which are the
	// account's).
	Kind, Name, Owner string
	store.UsageCounts
}

// AccountUsage reports the account's usage for the last days days, by user
// and by credential, each named as the admin UI names it. Admins only.
func (s *Service) AccountUsage(ctx context.Context, p *gatehouse.Principal, days int) (*UsageReport, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	today := s.now()
	out := &UsageReport{Dates: make([]string, days)}
	for i := range out.Dates {
		out.Dates[i] = today.AddDate(0, 0, i-days+1).Format(time.DateOnly)
	}
	rows, err := s.store.Usage(ctx, p.AccountID, out.Dates[0])
	if err != nil {
		return nil, err
	}
	names := usageNames{s: s, ctx: ctx, accountID: p.AccountID, users: map[string]string{}}
	byUser := map[string]*DailyUsage{}
	byCred := map[string]*CredentialUsage{}
	for _, r := range rows {
		who := "user\x00" + r.UserID
		if r.UserID == "" {
			who = r.Credential
		}
		d := byUser[who]
		if d == nil {
			d = &DailyUsage{Days: map[string]int64{}}
			if r.UserID != "" {
				d.Label = names.user(r.UserID)
			} else {
				named := names.credential(r.Credential, "")
				d.Label = named.Kind + " " + named.Name
			}
			byUser[who] = d
		}
		d.Days[r.Day] += r.Served
		d.Add(r.UsageCounts)

		// The password grant and counts of before credentials were
		// recorded are told apart by their user.
		which := r.Credential
		if _, id, _ := strings.Cut(r.Credential, ":"); id == "" {
			which += "\x00" + r.UserID
		}
		c := byCred[which]
		if c == nil {
			named := names.credential(r.Credential, r.UserID)
			c = &named
			byCred[which] = c
		}
		c.Add(r.UsageCounts)
	}
	for _, d := range byUser {
		out.ByUser = append(out.ByUser, *d)
	}
	slices.SortFunc(out.ByUser, func(a, b DailyUsage) int {
		return cmp.Or(cmp.Compare(b.Served, a.Served), cmp.Compare(a.Label, b.Label))
	})
	for _, c := range byCred {
		out.ByCredential = append(out.ByCredential, *c)
	}
	slices.SortFunc(out.ByCredential, func(a, b CredentialUsage) int {
		return cmp.Or(cmp.Compare(b.Served+b.Refused(), a.Served+a.Refused()),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Owner, b.Owner))
	})
	return out, nil
}

// usageNames names the users and credentials of one account's usage,
// looking each user up once.
type usageNames struct {
	s         *Service
	ctx       context.Context
	accountID string
	users     map[string]string
}

// user returns the e-mail of the user with id, or says it was deleted.
func (n usageNames) user(id string) string {
	if email, ok := n.users[id]; ok {
		return email
	}
	email := "a deleted user"
	if u, err := n.s.store.User(n.ctx, n.accountID, id); err == nil {
		email = u.Email
	}
	n.users[id] = email
	return email
}

// credential names the credential stored as cred ("<method>:<id>") that
// requests of the user with userID came through.
func (n usageNames) credential(cred, userID string) CredentialUsage {
	method, id, _ := strings.Cut(cred, ":")
	var out CredentialUsage
	if userID != "" {
		out.Owner = n.user(userID)
	}
	switch gatehouse.AuthMethod(method) {
	case gatehouse.MethodAPIToken:
		out.Kind, out.Name, out.Owner = "API token", "a deleted API token", ""
		if t, err := n.s.store.APITokenByID(n.ctx, n.accountID, id); err == nil {
			out.Name = t.Name
		}
	case gatehouse.MethodClientCredentials:
		out.Kind, out.Name = "Client credential", "a deleted client credential"
		if c, err := n.s.store.CredentialByClientID(n.ctx, id); err == nil && c.AccountID == n.accountID {
			out.Name = c.Name
		}
	case gatehouse.MethodAPIAccess:
		out.Kind, out.Name = "API access", "API access application"
	case gatehouse.MethodPassword:
		out.Kind, out.Name = "Password grant", "password grant tokens"
	default:
		out.Kind, out.Name = "Not recorded", "counted before credentials were recorded"
	}
	return out
}
