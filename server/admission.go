package server

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/service"
)

// admitter returns the server's admission: every authenticated request
// counts against every budget of its principal under its account's and
// its own limits (package admission). In a cluster (and unless a limiter
// was configured in its place), the cluster's script charges the request
// and confirms its principal in one round trip (limiterConfirms); a
// single node charges its limiter, counting quotas on from the store.
func (s *Server) admitter() *admission.Admitter {
	var charger admission.Charger = admission.NewLocal(s.limiter, s.Service)
	if s.limiterConfirms() {
		// A quota budget Redis lost counts on from the store's count.
		s.cluster.SeedQuotasFrom(s.Service)
		charger = s.cluster
	}
	return admission.New(admission.Config{
		Auth: auth.New(auth.Config{
			Tokens: s.Service, APITokens: s.Service,
			APITokenHeader: s.cfg.APITokenHeader, UserEmailHeader: s.cfg.UserEmailHeader,
		}),
		Charger: charger, Confirms: s.limiterConfirms(), CatchUp: s.Service, Quotas: s.Service,
		Headers: ratelimit.HeaderNames{BurstRemaining: s.cfg.BurstRemainingHeader, DailyRemaining: s.cfg.DailyRemainingHeader},
		Status:  s.cfg.RateLimitStatus, OnLimited: s.Metrics.RateLimited,
		Resource: s.ownResource(),
	})
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
	case code == gatehouse.ERateLimitExceeded, code == gatehouse.EQuotaExceeded:
		o = service.Limited
	case status == http.StatusUnauthorized:
		o = service.Unauthorized
	case status == http.StatusForbidden:
		o = service.Forbidden
	}
	s.usage.Record(p, o, time.Now())
}

// ownResource is the resource of Gatehouse's own API (RFC 8707): its
// public URL, as a token request would name it (gatehouse.ResourceKey).
func (s *Server) ownResource() string {
	key, _ := gatehouse.ResourceKey(s.issuer)
	return key
}
