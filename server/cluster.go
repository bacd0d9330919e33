package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/ratelimit"
)

// generationKey is the Redis counter every node advances after a revoking
// change, and reads before trusting its cache of validated credentials.
const generationKey = "gatehouse:generation"

// openRedis connects to Redis for a cluster: the shared rate limiter and
// the shared cache generation. Redis being down at start is not an error:
// requests are refused with 503 until it answers.
func (s *Server) openRedis(ctx context.Context) error {
	opt, err := redis.ParseURL(s.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, time.Second, time.Second
	opt.MaxRetries = 1
	// The client's own log lines go to our logger, at debug level: the
	// refusals they cause are logged where they happen.
	redis.SetLogger(redisLogger{s.logger})
	s.redis = redis.NewClient(opt)
	s.limiter = ratelimit.NewRedis(s.redis, ratelimit.WithKeyPrefix(s.cfg.RedisPrefix+"rl:"))
	key := s.cfg.RedisPrefix + generationKey
	s.Service.SharedGeneration = func(ctx context.Context) (uint64, error) {
		n, err := s.redis.Get(ctx, key).Uint64()
		if errors.Is(err, redis.Nil) {
			return 0, nil
		}
		return n, err
	}
	s.Store.OnChange(func() {
		// Tell every node; a failure here is logged, and the nodes' next
		// look-ups fail closed only if Redis is down for them too.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.redis.Incr(ctx, key).Err(); err != nil {
			s.logger.Error("could not publish a revoking change to the cluster", "err", err)
		}
	})
	if err := s.redis.Ping(ctx).Err(); err != nil {
		s.logger.Warn("redis is not reachable yet; requests get 503 until it is", "err", err)
	}
	return nil
}

// redisLogger sends go-redis's log lines to slog at debug level.
type redisLogger struct{ logger *slog.Logger }

// Printf logs one line.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
