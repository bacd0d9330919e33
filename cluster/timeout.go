package cluster

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
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

// Do runs one command within the deadline, once more when the connection
// it went on turned out to be broken (see broken).
func (t timed) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	cmd = cmd.Pin()
	res := t.Client.Do(ctx, cmd)
	if broken(res.Error()) && ctx.Err() == nil {
		res = t.Client.Do(ctx, cmd)
	}
	return res
}

// DoMulti runs commands in one pipeline within the deadline, once more
// when every one of them met a broken connection.
func (t timed) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	for i := range multi {
		multi[i] = multi[i].Pin()
	}
	res := t.Client.DoMulti(ctx, multi...)
	for _, r := range res {
		if !broken(r.Error()) {
			return res
		}
	}
	if ctx.Err() == nil {
		res = t.Client.DoMulti(ctx, multi...)
	}
	return res
}

// broken reports whether err is a connection found closed or reset — a
// Redis that restarted or failed over since the connection was opened,
// which the client opens anew on its next use — rather than Redis's
// answer, a deadline or a timeout. Such a command is sent once more: the
// first use of each connection a restart broke fails so, and /readyz,
// which read Redis on another, already answers 200. A command whose
// answer was lost after Redis ran it runs twice: a script then counts a
// request twice, never admits more than a limit.
func broken(err error) bool {
	if _, answer := rueidis.IsRedisErr(err); err == nil || answer {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
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
