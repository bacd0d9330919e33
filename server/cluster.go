package server

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/leak"
	"github.com/gatehouse/gatehouse/register"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/throttle"
)

// The cluster's shared state is the service's Cluster and the admission's
// Charger.
var (
	_ service.Cluster   = (*cluster.Redis)(nil)
	_ admission.Charger = (*cluster.Redis)(nil)
)

// limiterConfirms reports whether the cluster charges every request (a
// cluster node with no limiter configured in its place): its admission
// script then also confirms that a cached principal still rests on its
// shard's state, so the service may serve principals from its cache
// without reading the shard first (service.Config.LimiterConfirms), and
// admission charges the cluster and confirms with it (admitter). It is
// the one place this is decided.
func (s *Server) limiterConfirms() bool { return s.cluster != nil && s.cfg.Limiter == nil }

// openRedis connects to Redis for a cluster: the shared rate limiter, the
// shared sign-in throttle and the shared cache generation. A single Redis
// being down at start is not an error: requests are refused with 503 until
// it answers. A Redis Cluster must have one of its listed nodes answer at
// start, to learn where its slots are.
func (s *Server) openRedis(ctx context.Context) error {
	opt, err := cluster.ClientOption(s.cfg.RedisURL)
	if err != nil {
		return err
	}
	links := cluster.CountLinks(&opt)
	if s.redis, err = rueidis.NewClient(opt); err != nil {
		if s.redis == nil {
			return fmt.Errorf("redis: %w", err)
		}
		s.logger.Warn("redis is not reachable yet; requests get 503 until it is", "err", err)
	}
	if s.tracing.Enabled() {
		s.redis = cluster.Traced(s.redis)
	}
	// Every command has the store's deadline (--store-timeout).
	timed := cluster.WithTimeout(s.redis, s.cfg.StoreTimeout)
	s.cluster = cluster.NewRedis(timed, s.cfg.RedisPrefix)
	s.cluster.FollowLinks(links)
	s.signIn = throttle.NewRedis(timed, throttle.DefaultRules(), throttle.WithKeyPrefix(s.cfg.RedisPrefix+"th:"))
	s.leakReports = throttle.NewRedis(timed, leak.Rules(), throttle.WithKeyPrefix(s.cfg.RedisPrefix+"lk:"))
	s.registrations = throttle.NewRedis(timed, register.Rules(), throttle.WithKeyPrefix(s.cfg.RedisPrefix+"rg:"))
	s.starts = throttle.NewRedis(timed, service.StartRules(), throttle.WithKeyPrefix(s.cfg.RedisPrefix+"ss:"))
	return nil
}
