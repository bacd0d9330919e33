// Package localserver runs a Gatehouse server inside this process on a free
// loopback port, and talks JSON to it over HTTP. The tests (through
// internal/servertest) and the bench command start their servers and send
// their set-up requests with it.
package localserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/server"
)

// Config returns the server's default configuration for a server inside
// this process: a free loopback port, the store at databaseURL, and no
// output (no bootstrap message, no logs).
func Config(databaseURL string) server.Config {
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = databaseURL
	cfg.Stdout = io.Discard
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// Start opens a server with cfg and serves it in the background. When it
// returns an error nothing is left open; otherwise the caller stops the
// server with Shutdown or Close.
func Start(ctx context.Context, cfg server.Config) (*server.Server, error) {
	srv := server.New(cfg)
	if err := srv.Open(ctx); err != nil {
		srv.Close()
		return nil, err
	}
	go srv.Serve()
	return srv, nil
}

// Client sends requests to the server at URL. It is safe for concurrent
// use.
type Client struct {
	URL string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request to c.URL+path and reads the whole answer. body may be
// nil, a string or []byte (sent as it is), or any other value (sent as
// JSON, with its Content-Type). headers are name/value pairs. An error
// means that no complete answer arrived; any status is an answer.
func (c *Client) Do(ctx context.Context, method, path string, body any, headers ...string) (*Response, error) {
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// Login runs the password grant and returns the access token. Any answer
// but 200 is an error that carries the status and body.
func (c *Client) Login(ctx context.Context, email, password string) (string, error) {
	r, err := c.Do(ctx, "POST", "/authorization", map[string]string{"username": email, "password": password})
	if err != nil {
		return "", err
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &out) != nil || out.AccessToken == "" {
		return "", fmt.Errorf("login %s: %d %s", email, r.Status, r.Body)
	}
	return out.AccessToken, nil
}
