package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if err := Main(context.Background(), []string{"version"}, env(nil), &out, &errb); err != nil || !strings.HasPrefix(out.String(), "gatehouse ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := Main(context.Background(), []string{"nope"}, env(nil), &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := Main(context.Background(), []string{"serve", "--refresh-grace", "soon"}, env(nil), &out, &errb); err == nil {
		t.Fatal("bad duration accepted")
	}
}

func TestFlagsOverEnvironment(t *testing.T) {
	cfg, lo, err := parseConfig("serve", []string{"--addr", "127.0.0.1:9999"}, env(map[string]string{
		"GATEHOUSE_ADDR": "127.0.0.1:1111", "GATEHOUSE_DATABASE_URL": "/tmp/x.db", "GATEHOUSE_LOG_FORMAT": "json",
		"GATEHOUSE_API_TOKEN_HEADER": "X-Auth-Token",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9999" || cfg.DatabaseURL != "/tmp/x.db" || lo.logFormat != "json" || cfg.APITokenHeader != "X-Auth-Token" {
		t.Fatalf("config %+v %+v", cfg, lo)
	}
}

// TestServeAndMigrate runs the real commands: migrate, then serve until the
// context ends, with a graceful shutdown.
func TestServeAndMigrate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "g.db")
	e := env(map[string]string{"GATEHOUSE_DATABASE_URL": db, "GATEHOUSE_ADDR": "127.0.0.1:0"})
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"migrate"}, e, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var sout, serr servertest.SyncBuffer
	go func() { done <- Main(ctx, []string{"serve"}, e, &sout, &serr) }()
	// The generated password is printed once.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(sout.String(), "shown once") {
		if time.Now().After(deadline) {
			t.Fatalf("no bootstrap message; stderr %s", serr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestBinary builds the command as the README does and checks it serves.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gatehouse")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:18181", "--database-url", filepath.Join(dir, "g.db"))
	cmd.Env = append(cmd.Environ(), "GATEHOUSE_ADMIN_PASSWORD=binary test password")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var resp *http.Response
	var err error
	for i := 0; i < 200; i++ {
		if resp, err = http.Get("http://127.0.0.1:18181/healthz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, err = http.Post("http://127.0.0.1:18181/authorization?username=admin@example.com&password=binary+test+password", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("authorization %d", resp.StatusCode)
	}
}
