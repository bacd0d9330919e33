package httpx

import (
	"net"
	"net/netip"
	"sync"

	"github.com/gatehouse/gatehouse"
)

// LimitConnsPerIP returns a listener that holds at most max open
// connections from one client network at a time (an address, an IPv6
// one by its /64: gatehouse.ClientNetwork; SPEC §10.8,
// --max-conns-per-ip): a connection beyond it is closed as soon as it is
// accepted, before a byte is read, and the listener goes on accepting.
// Connections from exempt addresses (the trusted proxies, which carry
// many clients' connections) are not counted. max <= 0 returns ln as it
// is. The listener is safe for concurrent use.
func LimitConnsPerIP(ln net.Listener, max int, exempt TrustedProxies) net.Listener {
	if max <= 0 {
		return ln
	}
	return &ipLimitListener{Listener: ln, max: max, exempt: exempt, open: map[netip.Prefix]int{}}
}

type ipLimitListener struct {
	net.Listener
	max    int
	exempt TrustedProxies

	mu   sync.Mutex
	open map[netip.Prefix]int
}

// Accept returns the next connection within the limit, closing those
// beyond it.
func (l *ipLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := peerIP(c)
		if !ok || l.exempt.Contains(ip) {
			return c, nil
		}
		block := gatehouse.ClientNetwork(ip)
		l.mu.Lock()
		n := l.open[block]
		if n >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open[block] = n + 1
		l.mu.Unlock()
		return &countedConn{Conn: c, l: l, block: block}, nil
	}
}

func (l *ipLimitListener) release(block netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[block] <= 1 {
		delete(l.open, block)
		return
	}
	l.open[block]--
}

// peerIP returns a connection's remote IP address.
func peerIP(c net.Conn) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// countedConn gives its place back once, when it is closed.
type countedConn struct {
	net.Conn
	l     *ipLimitListener
	block netip.Prefix
	once  sync.Once
}

// Close closes the connection and frees its place.
func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.block) })
	return err
}
