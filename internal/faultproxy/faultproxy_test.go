package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// echo starts a line echo server and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

// TestModes: pass echoes; a blackhole holds a message (nothing comes back
// while it lasts) and delivers it when it heals; reset breaks open
// connections with ECONNRESET and resets new ones.
func TestModes(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "one"); err != nil || got != "one\n" {
		t.Fatalf("pass: %q %v", got, err)
	}

	p.Set(Blackhole)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if got, err := roundTrip(c, r, "two"); !errors.Is(err, syscall.ETIMEDOUT) && !isTimeout(err) {
		t.Fatalf("blackhole delivered %q %v", got, err)
	}
	// A new connection is accepted but held too.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r2 := bufio.NewReader(c2)
	c2.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if got, err := roundTrip(c2, r2, "new"); !isTimeout(err) {
		t.Fatalf("blackhole answered a new connection: %q %v", got, err)
	}

	p.Set(Pass)
	c.SetReadDeadline(time.Time{})
	if got, err := r.ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("held message after healing: %q %v", got, err)
	}
	c2.SetReadDeadline(time.Time{})
	if got, err := r2.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("held connection after healing: %q %v", got, err)
	}

	p.Set(Reset)
	if _, err := r.ReadString('\n'); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("open connection after reset: %v, want ECONNRESET", err)
	}
	c3, err := net.Dial("tcp", p.Addr())
	if err == nil {
		_, err = bufio.NewReader(c3).ReadString('\n')
		c3.Close()
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("new connection during reset: %v, want ECONNRESET", err)
	}

	p.Set(Pass)
	c4, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if got, err := roundTrip(c4, bufio.NewReader(c4), "back"); err != nil || got != "back\n" {
		t.Fatalf("pass again: %q %v", got, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
