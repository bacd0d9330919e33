package service

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// SessionLifetime is how long an admin UI session lasts.
const SessionLifetime = 12 * time.Hour

// Login checks an e-mail and password (with the same answers as the
// password grant) and starts an admin UI session. It returns the session
// cookie value, shown once, and the session's CSRF token.
func (s *Service) Login(ctx context.Context, email, pw string) (cookie, csrf string, err error) {
	u, err := s.CheckPassword(ctx, email, pw)
	if err != nil {
		return "", "", err
	}
	cookie = token.New(token.Session)
	now := s.now()
	se := &store.Session{ID: gatehouse.NewID("ses"), Hash: s.Digester.Digest(cookie), UserID: u.ID,
		CSRF: token.New(token.Session)[4:], CreatedAt: now, ExpiresAt: now.Add(SessionLifetime)}
	if err := s.Store.CreateSession(ctx, se); err != nil {
		return "", "", err
	}
	return cookie, se.CSRF, nil
}

// SessionPrincipal returns the principal of a session cookie and the
// session's CSRF token. The user must still be active: disabling a user
// ends their sessions on the next request.
func (s *Service) SessionPrincipal(ctx context.Context, cookie string) (*gatehouse.Principal, string, error) {
	if !token.Valid(cookie, token.Session) {
		return nil, "", errInvalidToken()
	}
	se, u, err := s.Store.SessionByHash(ctx, s.Digester.Digest(cookie))
	if gatehouse.ErrorCode(err) == gatehouse.ENotFound {
		return nil, "", errInvalidToken()
	} else if err != nil {
		return nil, "", err
	}
	if !u.Active() || !s.Now().Before(se.ExpiresAt) {
		_ = s.Store.DeleteSession(ctx, se.ID)
		return nil, "", errInvalidToken()
	}
	a, err := s.Store.Account(ctx, u.AccountID)
	if err != nil {
		return nil, "", err
	}
	return &gatehouse.Principal{Account: a, AccountID: a.ID, User: u, Method: gatehouse.MethodSession,
		CredentialID: se.ID, ExpiresAt: se.ExpiresAt}, se.CSRF, nil
}

// Logout ends the session of p.
func (s *Service) Logout(ctx context.Context, p *gatehouse.Principal) error {
	return s.Store.DeleteSession(ctx, p.CredentialID)
}

// Usage counts authenticated requests per principal and day in memory and
// adds them to the store when flushed. It is safe for concurrent use.
type Usage struct {
	mu     sync.Mutex
	counts map[[3]string]int64
}

// NewUsage returns an empty counter.
func NewUsage() *Usage { return &Usage{counts: map[[3]string]int64{}} }

// Record counts one request of p at now.
func (u *Usage) Record(p *gatehouse.Principal, now time.Time) {
	k := [3]string{p.AccountID, p.RateKey(), now.UTC().Format(time.DateOnly)}
	u.mu.Lock()
	u.counts[k]++
	u.mu.Unlock()
}

// Flush adds the counts so far to the store.
func (u *Usage) Flush(ctx context.Context, st *store.Store) error {
	u.mu.Lock()
	counts := u.counts
	u.counts = map[[3]string]int64{}
	u.mu.Unlock()
	if err := st.AddUsage(ctx, counts); err != nil {
		// Keep them for the next flush.
		u.mu.Lock()
		for k, n := range counts {
			u.counts[k] += n
		}
		u.mu.Unlock()
		return err
	}
	return nil
}

// DailyUsage is one principal's requests per day, for the usage chart.
type DailyUsage struct {
	Label string
	Days  map[string]int64
}

// AccountUsage returns the account's usage for the last days days, one
// entry per principal, labelled with the user's e-mail or the API token's
// name. Admins only.
func (s *Service) AccountUsage(ctx context.Context, p *gatehouse.Principal, days int) ([]string, []DailyUsage, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, nil, err
	}
	today := s.Now().UTC()
	dates := make([]string, days)
	for i := range dates {
		dates[i] = today.AddDate(0, 0, i-days+1).Format(time.DateOnly)
	}
	rows, err := s.Store.Usage(ctx, p.AccountID, dates[0])
	if err != nil {
		return nil, nil, err
	}
	byKey := map[string]*DailyUsage{}
	var order []string
	for _, r := range rows {
		d := byKey[r.Principal]
		if d == nil {
			d = &DailyUsage{Label: s.principalLabel(ctx, p.AccountID, r.Principal), Days: map[string]int64{}}
			byKey[r.Principal] = d
			order = append(order, r.Principal)
		}
		d.Days[r.Day] += r.Count
	}
	out := make([]DailyUsage, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return dates, out, nil
}

func (s *Service) principalLabel(ctx context.Context, accountID, key string) string {
	switch {
	case len(key) > 5 && key[:5] == "user:":
		if u, err := s.Store.User(ctx, accountID, key[5:]); err == nil {
			return u.Email
		}
	case len(key) > 9 && key[:9] == "apitoken:":
		return "API token " + key[9:]
	}
	return key
}
