package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/server"
)

// healthcheckTimeout bounds one "gatehouse healthcheck".
const healthcheckTimeout = 5 * time.Second

// exitError is an error that ends the process with its own exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// runHealthcheck asks the server that the configuration describes for
// GET /healthz, on the ops listener when there is one: nil when it answers
// 200, else an exitError with status 1 (what container engines read as
// unhealthy). It needs no shell and no other program, so that it works in
// an image that holds nothing but the binary.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := parseConfig("healthcheck", args, getenv, stderr)
	if err != nil {
		return &exitError{1, err}
	}
	url, err := healthURL(cfg)
	if err != nil {
		return &exitError{1, err}
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &exitError{1, err}
	}
	// The check connects to this machine's own listener, whose certificate
	// names the public host, not the loopback address: it proves that the
	// server answers, and sends nothing secret.
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		Proxy:           nil,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return &exitError{1, fmt.Errorf("healthcheck: %w", err)}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusNotFound && cfg.OpsAddr == "" {
		// A server with an ops listener answers /healthz there only. The
		// health check is another process: it reads the environment and
		// the config file, never the flags given to serve.
		return &exitError{1, fmt.Errorf("healthcheck: GET %s: %s: the server serves /healthz on its ops listener; "+
			"give the health check the same ops address (GATEHOUSE_OPS_ADDR or ops-addr in the config file, not a flag of serve alone)", url, resp.Status)}
	}
	if resp.StatusCode != http.StatusOK {
		return &exitError{1, fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)}
	}
	fmt.Fprintf(stdout, "healthy: GET %s: %s\n", url, resp.Status)
	return nil
}

// healthURL is the /healthz URL of the server cfg describes: on the ops
// address when set (plain HTTP), else on the listen address (HTTPS with a
// TLS certificate); a wildcard host (":8080", "0.0.0.0", "::") means this
// machine's loopback address.
func healthURL(cfg server.Config) (string, error) {
	addr, scheme := cfg.Addr, "http"
	if cfg.OpsAddr != "" {
		addr = cfg.OpsAddr
	} else if cfg.TLSCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("healthcheck: address %q: %w", addr, err)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("healthcheck: address %q has no fixed port", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", nil
}
