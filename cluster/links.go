package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"
)

// Links counts the connections a Redis client has opened again since it
// lost one. Such a connection may lead to another server than those
// before it — a failover to a replica, a restart from an older snapshot:
// either breaks the connections to the server it replaces — whose shards
// may be in a state this node has seen before, from before revocations it
// was never rung for: a state read on newer connections is therefore
// never taken for one read on older ones (gatehouse.ClusterState.Link),
// and the node reads the revocation log before it trusts it. The client's
// first connections, opened one by one as it first uses each, change
// nothing: no server went away before them.
type Links struct {
	n      atomic.Uint64 // connections opened since one was lost
	closed atomic.Uint64 // connections lost (see countedConn)
}

// Count returns how many connections were opened since the client first
// lost one.
func (l *Links) Count() uint64 {
	if l == nil {
		return 0
	}
	return l.n.Load()
}

// CountLinks makes the client of opt count the connections it opens in
// the Links it returns: each is counted once it is open, before any
// command is sent on it, when one of the client's connections was lost
// before.
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
		if err != nil {
			return nil, err
		}
		if l.closed.Load() > 0 {
			l.n.Add(1)
		}
		return &countedConn{Conn: c, closed: &l.closed}, nil
	}
	return l
}

// countedConn is a connection whose loss Links counts: the first error it
// reads or writes other than a deadline's — the reset or end a failover
// or a restart brings, which comes before the client opens another in its
// place. The client closing it (a Redis Cluster's topology changed, the
// client closed) is no loss.
type countedConn struct {
	net.Conn
	closed *atomic.Uint64
	once   sync.Once
}

// lost counts the connection as lost, once.
func (c *countedConn) lost() { c.once.Do(func() { c.closed.Add(1) }) }

// failed counts the connection lost at an error that is neither a
// deadline (the client reads an idle connection under one; one it gives
// up on after one, it closes) nor the client's own closing of it.
func (c *countedConn) failed(err error) {
	var ne net.Error
	if err != nil && !errors.Is(err, net.ErrClosed) && !(errors.As(err, &ne) && ne.Timeout()) {
		c.lost()
	}
}

// Read reads, counting the connection lost at its first failure.
func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.failed(err)
	return n, err
}

// Write writes, counting the connection lost at its first failure.
func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.failed(err)
	return n, err
}

// FollowLinks makes r label every state it reads with the count of l, the
// Links of its client's connections (CountLinks), and confirm no state
// read on older connections than the script's. Call it before r is used.
func (r *Redis) FollowLinks(l *Links) { r.links = l }
