package httpx

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestLimitConnsPerIP accepts real TCP connections from two loopback
// addresses through a listener capped at 2 per address, the second
// address exempt: the third from the first address is closed unread, the
// exempt one is not counted, and closing one frees its place.
func TestLimitConnsPerIP(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitConnsPerIP(inner, 2, TrustedProxies{netip.MustParsePrefix("127.0.0.3/32")})
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func(ip string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c (EOF on read).
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	}
	a1, a2 := dial("127.0.0.1"), dial("127.0.0.1")
	s1, s2 := <-accepted, <-accepted
	a3 := dial("127.0.0.1")
	if !closedByServer(a3) {
		t.Fatal("a third connection from one address was kept")
	}
	for range 3 {
		dial("127.0.0.3") // exempt: all accepted
		<-accepted
	}
	// The two kept ones still work.
	for _, pair := range [][2]net.Conn{{a1, s1}, {a2, s2}} {
		pair[0].Write([]byte("x"))
		pair[1].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := pair[1].Read(make([]byte, 1)); err != nil {
			t.Fatalf("kept connection: %v", err)
		}
	}
	// Closing one (on the server's side, as net/http does) frees a place.
	s1.Close()
	dial("127.0.0.1")
	select {
	case c := <-accepted:
		if c == nil {
			t.Fatal("listener closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no place freed")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestIsGatehouseCookie(t *testing.T) {
	for name, want := range map[string]bool{
		"gatehouse_session": true, "GATEHOUSE_flash": true, "gatehouse_": true, "gatehouse": false, "gatehouses": false, "app": false, "": false,
	} {
		if got := IsGatehouseCookie(name); got != want {
			t.Errorf("IsGatehouseCookie(%q) = %v", name, got)
		}
	}
}
