package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"

	"github.com/redis/rueidis"
)

// Links counts the connections a Redis client has opened. A new one may
// lead to another server than those before it — a failover to a replica,
// a restart from an older snapshot — whose shards may be in a state this
// node has seen before, from before revocations it was never rung for: a
// state read on newer connections is therefore never taken for one read
// on older ones (gatehouse.ClusterState.Link), and the node reads the
// revocation log before it trusts it.
type Links struct{ n atomic.Uint64 }

// Count returns how many connections were opened so far.
func (l *Links) Count() uint64 {
	if l == nil {
		return 0
	}
	return l.n.Load()
}

// CountLinks makes the client of opt count the connections it opens in
// the Links it returns: each is counted once it is open, before any
// command is sent on it.
func CountLinks(opt *rueidis.ClientOption) *Links {
	l := new(Links)
	dial := opt.DialCtxFn
	opt.DialCtxFn = func(ctx context.Context, dst string, d *net.Dialer, tc *tls.Config) (net.Conn, error) {
		var (
			c   net.Conn
			err error
		)
		switch {
		case dial != nil:
			c, err = dial(ctx, dst, d, tc)
		case tc != nil:
			c, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", dst)
		default:
			c, err = d.DialContext(ctx, "tcp", dst)
		}
		if err == nil {
			l.n.Add(1)
		}
		return c, err
	}
	return l
}

// FollowLinks makes r label every state it reads with the count of l, the
// Links of its client's connections (CountLinks), and confirm no state
// read on older connections than the script's. Call it before r is used.
func (r *Redis) FollowLinks(l *Links) { r.links = l }
