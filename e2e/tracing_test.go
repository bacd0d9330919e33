package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes every
// ExportTraceServiceRequest posted to /v1/traces and keeps its spans and
// the raw bodies.
type otlpReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	spans  []*tracepb.Span
	attrs  []*commonpb.KeyValue // every attribute: resource, scope, span, event, link
	bodies [][]byte
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP receiver: %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("OTLP receiver: %v", err)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			t.Errorf("OTLP receiver: %v", err)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			t.Errorf("OTLP receiver: not an ExportTraceServiceRequest: %v", err)
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, data)
		for _, rs := range req.ResourceSpans {
			rc.attrs = append(rc.attrs, rs.GetResource().GetAttributes()...)
			for _, ss := range rs.ScopeSpans {
				rc.attrs = append(rc.attrs, ss.GetScope().GetAttributes()...)
				for _, sp := range ss.Spans {
					rc.spans = append(rc.spans, sp)
					rc.attrs = append(rc.attrs, sp.Attributes...)
					for _, e := range sp.Events {
						rc.attrs = append(rc.attrs, e.Attributes...)
					}
					for _, l := range sp.Links {
						rc.attrs = append(rc.attrs, l.Attributes...)
					}
				}
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// attr returns span's string attribute key, or "".
func attr(sp *tracepb.Span, key string) string {
	for _, kv := range sp.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// TestTracing runs a gateway node in a cluster (Redis) with the OTEL_*
// environment pointing at an in-process OTLP receiver, and checks what it
// exported: one trace per request, whose server span is the parent of the
// store, Redis, password and upstream spans the request made; the
// upstream sees the same trace (a client's traceparent is taken as the
// parent); and no token, password or query string in any attribute, nor
// anywhere in what was exported.
func TestTracing(t *testing.T) {
	rcv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "gatehouse-e2e")
	redis := redistest.Client(t)
	up := newUpstream(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.Upstream, c.ConsoleSameOrigin = up.URL, true
		c.RedisURL, c.RedisPrefix = redistest.URL(), redistest.Prefix(t, redis)
	})

	// Every request is recorded by its request id, the answer's.
	var ids []string
	record := func(r *servertest.Response, status int) *servertest.Response {
		t.Helper()
		servertest.Expect(t, r, status, "")
		ids = append(ids, r.Header.Get("X-Request-Id"))
		return r
	}
	login := record(env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword}), 200).Map(t)
	admin := login["access_token"].(string)
	const memberPassword = "tracing member password 1"
	record(env.As(admin, "POST", "/v1/users", map[string]any{"email": "ann@example.com", "name": "Ann", "password": memberPassword, "roles": []string{"developer"}}), 201)
	apiTok := withAPIToken(t, env, admin).Token
	member := env.Login("ann@example.com", memberPassword)

	// Through the gateway: with the client's traceparent, then without.
	clientTrace, clientSpan := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	const querySecret = "query-secret-8c1d0f"
	record(env.As(member, "GET", "/orders/42?api_key="+querySecret, nil, "traceparent", "00-"+clientTrace+"-"+clientSpan+"-01", "tracestate", "vendor=abc"), 200)
	record(env.Request("GET", "/orders/43?access_token="+querySecret, nil, "X-API-Token", apiTok), 200)
	up.mu.Lock()
	upHeaders := up.headers
	up.mu.Unlock()
	if len(upHeaders) != 2 {
		t.Fatalf("upstream got %d requests, want 2", len(upHeaders))
	}

	// Shutting down exports every span still buffered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()

	byID := map[string]*tracepb.Span{} // span id → span
	for _, sp := range rcv.spans {
		byID[hex.EncodeToString(sp.SpanId)] = sp
	}
	// server returns the request's one server span.
	server := func(reqID string) *tracepb.Span {
		t.Helper()
		var found []*tracepb.Span
		for _, sp := range rcv.spans {
			if sp.Kind == tracepb.Span_SPAN_KIND_SERVER && attr(sp, "gatehouse.request_id") == reqID {
				found = append(found, sp)
			}
		}
		if len(found) != 1 {
			t.Fatalf("request %s: %d server spans, want 1", reqID, len(found))
		}
		return found[0]
	}
	// under returns the names of the spans of srv's trace below it, each
	// checked to descend from srv, and the spans by name.
	under := func(srv *tracepb.Span) map[string][]*tracepb.Span {
		t.Helper()
		out := map[string][]*tracepb.Span{}
		for _, sp := range rcv.spans {
			if !bytes.Equal(sp.TraceId, srv.TraceId) || sp == srv {
				continue
			}
			if sp.Kind == tracepb.Span_SPAN_KIND_SERVER {
				t.Errorf("trace %x holds a second server span %q: one trace per request", srv.TraceId, sp.Name)
			}
			p := sp
			for p != nil && p != srv {
				p = byID[hex.EncodeToString(p.ParentSpanId)]
			}
			if p != srv {
				t.Errorf("span %q of trace %x does not descend from the server span %q", sp.Name, srv.TraceId, srv.Name)
			}
			out[sp.Name] = append(out[sp.Name], sp)
		}
		return out
	}
	has := func(spans map[string][]*tracepb.Span, what string, prefix string) {
		t.Helper()
		for name := range spans {
			if strings.HasPrefix(name, prefix) {
				return
			}
		}
		names := make([]string, 0, len(spans))
		for n := range spans {
			names = append(names, n)
		}
		t.Errorf("%s: no %q span among %v", what, prefix, names)
	}

	traces := map[string]string{} // trace id → request id
	for _, id := range ids {
		srv := server(id)
		tid := hex.EncodeToString(srv.TraceId)
		if other, ok := traces[tid]; ok {
			t.Errorf("requests %s and %s share trace %s", other, id, tid)
		}
		traces[tid] = id
		names := []string{}
		for name, sps := range under(srv) {
			names = append(names, fmt.Sprintf("%s×%d", name, len(sps)))
		}
		sort.Strings(names)
		t.Logf("%s (trace %s): %v", srv.Name, tid, names)
	}

	// The password grant: the hash check, the store and the sign-in
	// throttle in Redis.
	srv := server(ids[0])
	if srv.Name != "POST /authorization" || attr(srv, "http.route") != "/authorization" {
		t.Errorf("password grant span %q route %q", srv.Name, attr(srv, "http.route"))
	}
	spans := under(srv)
	has(spans, "password grant", "password.Verify")
	has(spans, "password grant", "store.")
	has(spans, "password grant", "redis ")
	// Creating a user hashes the password and writes in a transaction.
	spans = under(server(ids[1]))
	has(spans, "create user", "password.Hash")
	has(spans, "create user", "store.Update")
	has(spans, "create user", "redis ") // admission and the cluster's announcements

	// The gateway: the client's trace continues, and the upstream is a
	// child span whose id the upstream got in traceparent.
	for i, id := range ids[2:] {
		srv := server(id)
		spans := under(srv)
		has(spans, "gateway", "redis ")
		ups := spans["GET upstream"]
		if len(ups) != 1 || ups[0].Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Fatalf("gateway request %d: upstream spans %v", i, ups)
		}
		parts := strings.Split(upHeaders[i].Get("Traceparent"), "-")
		if len(parts) != 4 || parts[1] != hex.EncodeToString(srv.TraceId) || parts[2] != hex.EncodeToString(ups[0].SpanId) {
			t.Errorf("gateway request %d: upstream got traceparent %q; trace %x, upstream span %x", i, upHeaders[i].Get("Traceparent"), srv.TraceId, ups[0].SpanId)
		}
		if i == 0 {
			if hex.EncodeToString(srv.TraceId) != clientTrace || hex.EncodeToString(srv.ParentSpanId) != clientSpan {
				t.Errorf("the client's traceparent is not the parent: trace %x parent %x", srv.TraceId, srv.ParentSpanId)
			}
			if got := upHeaders[i].Get("Tracestate"); got != "vendor=abc" {
				t.Errorf("upstream got tracestate %q, want the client's", got)
			}
		}
	}

	// No secret in any attribute, nor anywhere in the export.
	secrets := []string{servertest.AdminPassword, memberPassword, admin, member, apiTok, querySecret}
	for _, kv := range rcv.attrs {
		v := kv.Value.String()
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Errorf("attribute %s holds the secret %.8s…", kv.Key, s)
			}
		}
	}
	for _, b := range rcv.bodies {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("an export holds the secret %.8s…", s)
			}
		}
	}
	if len(rcv.attrs) == 0 {
		t.Fatal("no attributes exported")
	}
}
