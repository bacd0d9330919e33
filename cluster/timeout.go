package cluster

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// WithTimeout returns client with every command (and every script, which
// runs through Do) bounded by d, or by its context's deadline if earlier:
// a Redis that is away or stalled fails the call within d, and the caller
// answers 503, instead of holding a request.
func WithTimeout(client rueidis.Client, d time.Duration) rueidis.Client {
	return timed{Client: client, d: d}
}

// timed is a rueidis.Client whose Do and DoMulti have a deadline.
type timed struct {
	rueidis.Client
	d time.Duration
}

// Do runs one command within the deadline.
func (t timed) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.Client.Do(ctx, cmd)
}

// DoMulti runs commands in one pipeline within the deadline.
func (t timed) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.Client.DoMulti(ctx, multi...)
}
