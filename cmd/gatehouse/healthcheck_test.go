package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestHealthURL(t *testing.T) {
	for _, c := range []struct {
		cfg  server.Config
		want string
	}{
		{server.Config{Addr: ":8080"}, "http://127.0.0.1:8080/healthz"},
		{server.Config{Addr: "0.0.0.0:8080"}, "http://127.0.0.1:8080/healthz"},
		{server.Config{Addr: "[::]:8080"}, "http://[::1]:8080/healthz"},
		{server.Config{Addr: "10.1.2.3:80"}, "http://10.1.2.3:80/healthz"},
		{server.Config{Addr: ":8443", TLSCert: "c", TLSKey: "k"}, "https://127.0.0.1:8443/healthz"},
		{server.Config{Addr: ":8443", TLSCert: "c", TLSKey: "k", OpsAddr: "127.0.0.1:9090"}, "http://127.0.0.1:9090/healthz"},
	} {
		if got, err := healthURL(c.cfg); err != nil || got != c.want {
			t.Errorf("%+v: %q %v, want %q", c.cfg, got, err, c.want)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "nonsense"} {
		if got, err := healthURL(server.Config{Addr: addr}); err == nil {
			t.Errorf("%s: %q", addr, got)
		}
	}
}

// TestHealthcheck runs "gatehouse healthcheck" against nothing, then
// against a running "gatehouse serve" (whose configuration it reads the same
// way), with and without an ops listener.
func TestHealthcheck(t *testing.T) {
	for _, withOps := range []bool{false, true} {
		addr, ops := freeAddr(t), ""
		e := map[string]string{
			"GATEHOUSE_DATABASE_URL":   filepath.Join(t.TempDir(), "g.db"),
			"GATEHOUSE_ADDR":           addr,
			"GATEHOUSE_ADMIN_PASSWORD": "healthcheck test password",
		}
		if withOps {
			ops = freeAddr(t)
			e["GATEHOUSE_OPS_ADDR"] = ops
		}
		var out bytes.Buffer
		err := Main(context.Background(), []string{"healthcheck"}, env(e), &out, io.Discard)
		var exit *exitError
		if !errors.As(err, &exit) || exit.code != 1 {
			t.Fatalf("healthcheck of nothing: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var serr servertest.SyncBuffer
		go func() { done <- Main(ctx, []string{"serve"}, env(e), io.Discard, &serr) }()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(serr.String(), "gatehouse listening") {
			if time.Now().After(deadline) {
				t.Fatalf("serve did not start: %s", serr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		want := "http://" + addr + "/healthz"
		if withOps {
			want = "http://" + ops + "/healthz"
		}
		out.Reset()
		if err := Main(context.Background(), []string{"healthcheck"}, env(e), &out, io.Discard); err != nil || !strings.Contains(out.String(), want) {
			t.Fatalf("healthcheck (ops %v): %v %q", withOps, err, out.String())
		}
		if withOps {
			// The public listener answers 404 for /healthz: a check sent
			// there fails.
			err := Main(context.Background(), []string{"healthcheck", "--ops-addr", ""}, env(map[string]string{"GATEHOUSE_ADDR": addr}), io.Discard, io.Discard)
			if !errors.As(err, &exit) || exit.code != 1 || !strings.Contains(err.Error(), "404") {
				t.Fatalf("healthcheck of the public listener: %v", err)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
