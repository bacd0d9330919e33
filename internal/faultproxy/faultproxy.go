// Package faultproxy is a TCP proxy that tests put between Gatehouse and a
// backing service (PostgreSQL, Redis) to break the connection the way
// networks do: pass traffic, reset every connection (RST, as a crashed
// peer or a firewall does), or hold every packet (a blackhole, as a
// partition does: nothing is refused, nothing arrives, until it heals).
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Mode is what the proxy does with traffic.
type Mode int

const (
	// Pass forwards traffic both ways.
	Pass Mode = iota
	// Reset resets every open connection and every new one with a TCP RST.
	Reset
	// Blackhole accepts connections and holds whatever is sent either way
	// until the mode changes: to Pass, when it is delivered late, as after
	// a partition heals; or to Reset, when it is dropped.
	Blackhole
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Reset:
		return "reset"
	case Blackhole:
		return "blackhole"
	}
	return "unknown"
}

// Proxy forwards connections from its listen address to a target. It is
// safe for concurrent use.
type Proxy struct {
	ln net.Listener

	mu      sync.Mutex
	target  string // guarded by mu
	mode    Mode
	changed chan struct{} // closed and replaced on every mode change
	conns   map[*net.TCPConn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target
// (host:port), in mode Pass.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, changed: make(chan struct{}), conns: map[*net.TCPConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address to connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Retarget makes new connections go to target: with Set(Reset) and
// Set(Pass) around it, what a client sees of a failover to another server
// at the same address.
func (p *Proxy) Retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Set changes the mode. Reset resets every open connection at once.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	if m == Reset {
		for c := range p.conns {
			reset(c)
		}
	}
	p.mu.Unlock()
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// reset closes c with an RST rather than a FIN.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// track records c as open; it reports false (and resets c) when the
// proxy resets or is closed.
func (p *Proxy) track(c *net.TCPConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.mode == Reset {
		reset(c)
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c *net.TCPConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// wait blocks while the mode is Blackhole; it reports whether to go on
// (Pass) or give up (Reset, or the proxy closed).
func (p *Proxy) wait() bool {
	for {
		p.mu.Lock()
		m, ch, closed := p.mode, p.changed, p.closed
		p.mu.Unlock()
		switch {
		case closed || m == Reset:
			return false
		case m == Pass:
			return true
		}
		<-ch
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c.(*net.TCPConn))
	}
}

// serve forwards one connection: it is held while the proxy is a
// blackhole, then dials the target.
func (p *Proxy) serve(c *net.TCPConn) {
	defer p.wg.Done()
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	if !p.wait() {
		reset(c)
		return
	}
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	d, err := net.Dial("tcp", target)
	if err != nil {
		reset(c)
		return
	}
	u := d.(*net.TCPConn)
	if !p.track(u) {
		reset(c)
		return
	}
	defer p.untrack(u)
	done := make(chan struct{}, 2)
	go func() { p.pipe(u, c); done <- struct{}{} }()
	go func() { p.pipe(c, u); done <- struct{}{} }()
	<-done
	// One side ended: end the other the same way (reset if resetting).
	if p.Mode() == Reset {
		reset(c)
		reset(u)
	} else {
		c.Close()
		u.Close()
	}
	<-done
}

// pipe copies src to dst, holding each chunk while the proxy is a
// blackhole.
func (p *Proxy) pipe(dst, src *net.TCPConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.CloseWrite()
			}
			return
		}
	}
}
