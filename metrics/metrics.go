// Package metrics exposes Gatehouse's Prometheus metrics: requests by route
// and status, latency, tokens issued by grant, rate-limit rejections, cache
// hits, server errors and the store's write conflicts.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors of one server. The zero value is not usable;
// use New. It is safe for concurrent use.
type Metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	tokensIssued *prometheus.CounterVec
	rateLimited  prometheus.Counter
	cache        *prometheus.CounterVec
	serverErrors prometheus.Counter
	hit, miss    prometheus.Counter

	// routes holds each route's and status's collectors once looked up,
	// so that a request does not look them up by their labels again.
	mu     sync.RWMutex
	routes map[routeStatus]routeCollectors
}

type routeStatus struct {
	route  string
	status int
}

type routeCollectors struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// route returns the collectors of a route and status.
func (m *Metrics) route(route string, status int) routeCollectors {
	k := routeStatus{route, status}
	m.mu.RLock()
	c, ok := m.routes[k]
	m.mu.RUnlock()
	if ok {
		return c
	}
	c = routeCollectors{requests: m.requests.WithLabelValues(route, strconv.Itoa(status)), duration: m.duration.WithLabelValues(route)}
	m.mu.Lock()
	m.routes[k] = c
	m.mu.Unlock()
	return c
}

// New returns a Metrics with its own registry (plus Go and process
// collectors).
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_tokens_issued_total", Help: "Tokens issued by grant type.",
		}, []string{"grant"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_rate_limit_rejections_total", Help: "Requests refused for the rate limit.",
		}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_cache_lookups_total", Help: "Credential cache look-ups by result (hit or miss).",
		}, []string{"result"}),
		serverErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_http_server_errors_total",
			Help: "Requests answered with a 5xx status other than 503: internal errors and the gateway's 502s.",
		}),
	}
	m.hit, m.miss = m.cache.WithLabelValues("hit"), m.cache.WithLabelValues("miss")
	m.routes = map[routeStatus]routeCollectors{}
	m.registry.MustRegister(m.requests, m.duration, m.tokensIssued, m.rateLimited, m.cache, m.serverErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Observe counts and times one answered request by its route pattern
// ("" when no route matched; never the raw path, which would explode the
// label space), and counts the 5xx answers other than 503 as server
// errors: 503 means a backing service is unavailable, which /readyz
// reports.
func (m *Metrics) Observe(route string, status int, took time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	c := m.route(route, status)
	c.requests.Inc()
	c.duration.Observe(took.Seconds())
	if status >= 500 && status != http.StatusServiceUnavailable {
		m.serverErrors.Inc()
	}
}

// CountStoreConflicts exports conflicts, the store's count of write
// transactions the database rolled back for a conflict with another and
// the store ran again (store.Store.Conflicts), as
// gatehouse_store_write_conflicts_total. Call it once.
func (m *Metrics) CountStoreConflicts(conflicts func() int64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gatehouse_store_write_conflicts_total",
		Help: "Runs of write transactions the database rolled back for a conflict with another (deadlock, serialization failure); each was run again. Growth means two writes lock rows in different orders.",
	}, func() float64 { return float64(conflicts()) }))
}

// TokenIssued counts one token issued by grant.
func (m *Metrics) TokenIssued(grant string) { m.tokensIssued.WithLabelValues(grant).Inc() }

// RateLimited counts one request refused for the rate limit.
func (m *Metrics) RateLimited() { m.rateLimited.Inc() }

// CacheLookup counts one credential-cache look-up.
func (m *Metrics) CacheLookup(hit bool) {
	if hit {
		m.hit.Inc()
		return
	}
	m.miss.Inc()
}
