package server

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// limit returns the authenticator's rate-limit hook: every authenticated
// request counts against its principal (the user, or the API token for an
// anonymous API-token request) under the account's limits, and carries the
// rate-limit headers. A limiter that cannot decide refuses with 503.
func (s *Server) limit(l ratelimit.Limiter) func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	names := ratelimit.HeaderNames{BurstRemaining: s.cfg.BurstRemainingHeader, DailyRemaining: s.cfg.DailyRemainingHeader}
	status := s.cfg.RateLimitStatus
	return func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
		d, err := l.Allow(r.Context(), p.RateKey(), ratelimit.FromSettings(p.Account.Settings.RateLimit))
		if err != nil {
			s.logger.Warn("rate limiter unavailable", "err", err)
			return &gatehouse.Error{Code: gatehouse.EUnavailable, Message: "The rate limiter is unavailable; try again shortly"}
		}
		d.SetHeaders(w.Header(), names)
		if !d.Allowed {
			s.Metrics.RateLimited()
			return &gatehouse.Error{Code: gatehouse.ERateLimitExceeded, Message: "Rate limit exceeded", RetryAfter: d.RetryAfter, Status: status}
		}
		s.usage.Record(p, time.Now())
		return nil
	}
}
