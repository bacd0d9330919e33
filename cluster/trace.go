package cluster

import (
	"context"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/attribute"

	"github.com/gatehouse/gatehouse/tracing"
)

// Traced wraps c so that each command or pipeline sent under a traced
// request is a span of its own ("redis EVALSHA", "redis pipeline"), named
// by the command alone: keys and arguments, which name accounts and hold
// digests, are never recorded. The rate limiter, the sign-in throttle and
// the cluster's shared state all go through the one client, so they are
// all traced. A batch of admissions (Redis.Admit) is one span, in the
// trace of the request that sent it.
func Traced(c rueidis.Client) rueidis.Client { return traced{c} }

type traced struct{ rueidis.Client }

var redisSystem = attribute.String("db.system.name", "redis")

func (t traced) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	name := "redis"
	if cs := cmd.Commands(); len(cs) > 0 {
		name += " " + cs[0]
	}
	ctx, span := tracing.Start(ctx, name, redisSystem)
	res := t.Client.Do(ctx, cmd)
	tracing.End(span, redisErr(res.Error()))
	return res
}

func (t traced) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	ctx, span := tracing.Start(ctx, "redis pipeline", redisSystem, attribute.Int("db.operation.batch.size", len(multi)))
	res := t.Client.DoMulti(ctx, multi...)
	var err error
	for _, r := range res {
		if err = redisErr(r.Error()); err != nil {
			break
		}
	}
	tracing.End(span, err)
	return res
}

// redisErr is err unless it is Redis's "no such key" answer, which is not
// a failure.
func redisErr(err error) error {
	if rueidis.IsRedisNil(err) {
		return nil
	}
	return err
}
