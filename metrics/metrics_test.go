package metrics_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/metrics"
)

// TestServerErrors: every 5xx but 503 counts as a server error, and each
// answer counts under its route and status.
func TestServerErrors(t *testing.T) {
	m := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status/{code}", func(w http.ResponseWriter, r *http.Request) {
		if code, _ := strconv.Atoi(r.PathValue("code")); code != http.StatusOK {
			w.WriteHeader(code)
		}
		w.Write([]byte("body")) // 200 without WriteHeader
	})
	h := httpx.Requests(httpx.Forwarding{}, slog.New(slog.DiscardHandler), func(i *httpx.RequestInfo) { m.Observe(i.Route, i.Status, i.Duration) }, mux)
	for _, code := range []string{"200", "400", "500", "502", "503", "503", "504"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/status/"+code, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nowhere", nil))
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		"gatehouse_http_server_errors_total 3\n",
		`gatehouse_http_requests_total{route="GET /status/{code}",status="200"} 1` + "\n",
		`gatehouse_http_requests_total{route="GET /status/{code}",status="503"} 2` + "\n",
		`gatehouse_http_requests_total{route="unmatched",status="404"} 1` + "\n",
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestStoreConflicts: the store's count of conflicted write runs is read
// at each scrape.
func TestStoreConflicts(t *testing.T) {
	m := metrics.New()
	var n int64
	m.CountStoreConflicts(func() int64 { return n })
	scrape := func() string {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	if body := scrape(); !strings.Contains(body, "gatehouse_store_write_conflicts_total 0\n") {
		t.Fatalf("metrics lack the conflicts counter at 0:\n%s", body)
	}
	n = 7
	if body := scrape(); !strings.Contains(body, "gatehouse_store_write_conflicts_total 7\n") {
		t.Fatalf("metrics lack the conflicts counter at 7")
	}
}
