package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// TestDependencyFailuresAre503: every kind of dependency failure — lost,
// refused, stalled, a full disk, and the service's own
// temporarily_unavailable — is answered 503 temporarily_unavailable with
// Retry-After, never 500; a bug is still a 500.
func TestDependencyFailuresAre503(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("query: %w", pgconn.ErrConnClosed),
		&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		fmt.Errorf("dial: %w", syscall.ECONNREFUSED),
		fmt.Errorf("write: %w", syscall.ENOSPC),
		context.DeadlineExceeded,
		gatehouse.Errorf(gatehouse.EUnavailable, "The cluster state is unavailable"),
	} {
		rec := httptest.NewRecorder()
		httpx.Error(rec, httptest.NewRequest("GET", "/v1/me", nil), err)
		var body httpx.ErrorBody
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusServiceUnavailable || body.Error != gatehouse.EUnavailable || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("%v: %d %+v Retry-After %q, want 503 temporarily_unavailable with Retry-After 1", err, rec.Code, body, rec.Header().Get("Retry-After"))
		}
	}
	rec := httptest.NewRecorder()
	httpx.Error(rec, httptest.NewRequest("GET", "/v1/me", nil), errors.New("a bug"))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("a bug: %d, want 500", rec.Code)
	}
}

// TestClientGoneIs499: a request whose client went away, failing because
// of it, is recorded as 499 client_closed_request, not as a server error.
func TestClientGoneIs499(t *testing.T) {
	var info *httpx.RequestInfo
	h := httpx.Requests(httpx.Forwarding{}, slog.New(slog.DiscardHandler), func(i *httpx.RequestInfo) { info = i }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.Error(w, r, fmt.Errorf("store: %w", r.Context().Err()))
	}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/me", nil).WithContext(ctx))
	if _, code := info.Result(); info.Status != httpx.StatusClientClosed || code != httpx.ECanceled {
		t.Fatalf("client gone: status %d code %q, want 499 %s", info.Status, code, httpx.ECanceled)
	}
	// A refusal of its own is still answered as it is.
	h = httpx.Requests(httpx.Forwarding{}, slog.New(slog.DiscardHandler), func(i *httpx.RequestInfo) { info = i }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.Error(w, r, gatehouse.Errorf(gatehouse.EInvalidToken, "no"))
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/me", nil).WithContext(ctx))
	if info.Status != http.StatusUnauthorized {
		t.Fatalf("a refusal with the client gone: %d, want 401", info.Status)
	}
}
