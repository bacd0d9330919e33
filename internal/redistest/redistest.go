// Package redistest gives tests a Redis: the one on this machine (or
// GATEHOUSE_TEST_REDIS_URL), or a Redis Cluster of three masters that the
// test starts on free ports and stops when it ends. Run runs a test
// against both.
package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// EnvURL names the Redis tests use instead of the local one.
const EnvURL = "GATEHOUSE_TEST_REDIS_URL"

// URL returns the test Redis's URL.
func URL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Client connects to the test Redis; without one the test is skipped
// (failed under CI=true). The client is closed when the test ends.
func Client(t testing.TB) rueidis.Client {
	t.Helper()
	return connect(t, URL())
}

func connect(t testing.TB, url string) rueidis.Client {
	t.Helper()
	opt, err := cluster.ClientOption(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rueidis.NewClient(opt)
	if err == nil {
		err = c.Do(context.Background(), c.B().Ping().Build()).Error()
		t.Cleanup(c.Close)
	}
	if err != nil {
		testenv.Missing(t, "Redis", fmt.Sprintf("%s is unreachable (%v); set %s", url, err, EnvURL))
	}
	return c
}

// Prefix returns a fresh key prefix; every key under it is deleted when
// the test ends (on every master of a cluster).
func Prefix(t testing.TB, c rueidis.Client) string {
	t.Helper()
	p := fmt.Sprintf("gatehouse-test:%d:", rand.Uint64())
	t.Cleanup(func() {
		ctx := context.Background()
		for _, n := range c.Nodes() {
			keys, _ := n.Do(ctx, n.B().Keys().Pattern(p+"*").Build()).AsStrSlice()
			for _, k := range keys {
				c.Do(ctx, c.B().Del().Key(k).Build())
			}
		}
	})
	return p
}

// Backend is a Redis a test runs against: its URL for Gatehouse's
// configuration, and a client.
type Backend struct {
	Name   string
	URL    string
	Client rueidis.Client
}

// Run runs f as two subtests: against the test Redis, and against a Redis
// Cluster of three masters started for it (Cluster).
func Run(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Run("Redis", func(t *testing.T) {
		f(t, Backend{Name: "Redis", URL: URL(), Client: Client(t)})
	})
	t.Run("Cluster", func(t *testing.T) {
		url := Cluster(t)
		f(t, Backend{Name: "Cluster", URL: url, Client: connect(t, url)})
	})
}

// Cluster starts a Redis Cluster of three masters (no replicas) on free
// loopback ports, each in a temporary directory, and returns its
// redis+cluster:// URL (see docs/configuration.md). The servers are
// killed when the test ends. It needs redis-server and redis-cli.
func Cluster(t testing.TB) string {
	t.Helper()
	server := testenv.RequireTool(t, "redis-server")
	cli := testenv.RequireTool(t, "redis-cli")
	var addrs []string
	for range 3 {
		port := freePort(t)
		dir := t.TempDir()
		cmd := exec.Command(server, "--port", port, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--save", "", "--appendonly", "no", "--dir", dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		addrs = append(addrs, "127.0.0.1:"+port)
	}
	for _, a := range addrs {
		waitPing(t, cli, a)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Wait until every node agrees the cluster is up.
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		for {
			out, _ := exec.Command(cli, "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ready on %s:\n%s", a, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return "redis+cluster://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
}

func waitPing(t testing.TB, cli, addr string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	for range 200 {
		if out, err := exec.Command(cli, "-h", host, "-p", port, "ping").Output(); err == nil && strings.TrimSpace(string(out)) == "PONG" {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s did not start", addr)
}

// freePort returns a loopback port that was free a moment ago, whose
// cluster bus port (+10000) is free too.
func freePort(t testing.TB) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return strconv.Itoa(port)
	}
	t.Fatal("no free port")
	return ""
}
