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
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.Client.Do(ctx, cmd)
}

// DoMulti runs commands in one pipeline within the deadline.
func (t timed) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.Client.DoMulti(ctx, multi...)
}

// bound returns ctx canceled after t.d. It is a cancellation, not a
// deadline: given a deadline, rueidis writes the command on the
// connection at hand, and the first command after Redis restarts fails
// on the broken connection (EOF); given a context it can cancel, it
// queues the command on a pipeline that reconnects first, and the
// cancellation still ends the wait.
func (t timed) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(t.d, cancel)
	return ctx, func() {
		timer.Stop()
		cancel()
	}
}
