package server

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/service"
)

// limit returns the authenticator's rate-limit hook: every authenticated
// request counts against every budget of its principal (Principal.RateKeys:
// the user, the API token, or both for an API token acting as a user)
// under the account's limits, is admitted only if each has room, and
// carries the rate-limit headers of the tightest. A limiter that cannot
// decide refuses with 503.
//
// In a cluster (and unless a limiter was configured in its place), the
// cluster charges the request and reads its account's shard of the cache
// generation in one script, which is all a request served from the cache
// asks of Redis. The principal must still rest on that shard's state:
// when it does not (confirm), nothing is counted, the node folds the new
// state in and the request is validated again (auth.ErrStale) — so a
// request that the second validation refuses was never counted, and a
// request is always decided under the limits of the account as validated.
func (s *Server) limit(l ratelimit.Limiter) auth.LimitFunc {
	names := ratelimit.HeaderNames{BurstRemaining: s.cfg.BurstRemainingHeader, DailyRemaining: s.cfg.DailyRemainingHeader}.Canonical()
	status := s.cfg.RateLimitStatus
	shared := s.limiterConfirms()
	return func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal, confirm bool) error {
		ctx := r.Context()
		stored := p.Budgets()
		lim := ratelimit.FromSettings(p.Account.Settings.RateLimit)
		var (
			d   ratelimit.Decision
			err error
		)
		if shared {
			var expect *gatehouse.ClusterState
			if confirm {
				expect = &p.Basis
			}
			var (
				st      gatehouse.ClusterState
				decided bool
			)
			d, st, decided, err = s.cluster.Admit(ctx, expect, p.AccountID, stored, lim)
			if err == nil {
				s.Service.Observe(p.AccountID, st)
				if !decided {
					return auth.ErrStale
				}
			}
		} else {
			d, err = l.Allow(ctx, p.AccountID, stored, lim)
		}
		if err != nil {
			gatehouse.Logger(ctx).WarnContext(ctx, "rate limiter unavailable", "err", err)
			return &gatehouse.Error{Code: gatehouse.EUnavailable, Message: "The rate limiter is unavailable; try again shortly"}
		}
		d.SetHeaders(w.Header(), names)
		if !d.Allowed {
			s.Metrics.RateLimited()
			return &gatehouse.Error{Code: gatehouse.ERateLimitExceeded, Message: "Rate limit exceeded", RetryAfter: d.RetryAfter, Status: status}
		}
		return nil
	}
}

// answered counts an answered request in the metrics and in the usage of
// the credential that made it (or was refused): served, or refused as
// unauthorized, forbidden or over the rate limit. A request refused
// because a backing service was unavailable was neither served nor
// refused for its credential's sake and is not counted in the usage, nor
// is one whose client went away.
func (s *Server) answered(info *httpx.RequestInfo) {
	s.Metrics.Observe(info.Route, info.Status, info.Duration)
	status := info.Status
	p, code := info.Result()
	if p == nil {
		return
	}
	o := service.Served
	switch {
	case code == gatehouse.EUnavailable, code == httpx.ECanceled:
		return
	case code == gatehouse.ERateLimitExceeded:
		o = service.Limited
	case status == http.StatusUnauthorized:
		o = service.Unauthorized
	case status == http.StatusForbidden:
		o = service.Forbidden
	}
	s.usage.Record(p, o, time.Now())
}
