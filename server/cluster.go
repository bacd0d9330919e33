package server

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/throttle"
)

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
	if s.redis, err = rueidis.NewClient(opt); err != nil {
		if s.redis == nil {
			return fmt.Errorf("redis: %w", err)
		}
		s.logger.Warn("redis is not reachable yet; requests get 503 until it is", "err", err)
	}
	if s.tracing.Enabled() {
		s.redis = cluster.Traced(s.redis)
	}
	s.cluster = cluster.NewRedis(s.redis, s.cfg.RedisPrefix)
	s.signIn = throttle.NewRedis(s.redis, throttle.DefaultRules(), throttle.WithKeyPrefix(s.cfg.RedisPrefix+"th:"))
	return nil
}
