package httpx

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestSaneRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123":                                  true,
		"0f8fad5b-d9cb-469f-a165-70867728950e":     true,
		"Root=1-67891233-abcdef012345678912345678": true,
		"a/b+c=d@e:f_g.h":                          true,
		"":                                         false,
		strings.Repeat("a", 128):                   true,
		strings.Repeat("a", 129):                   false,
		"with space":                               false,
		"new\nline":                                false,
		`"quoted"`:                                 false,
		"<script>":                                 false,
		"é":                                        false,
	} {
		if got := saneRequestID(id); got != want {
			t.Errorf("saneRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

// logLine runs one request through Requests around h and returns
// the answer and the request's log line.
func logLine(t *testing.T, h http.Handler, r *http.Request) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	return logLineVia(t, nil, h, r)
}

// logLineVia is logLine with the server trusting the proxies trusted.
func logLineVia(t *testing.T, trusted TrustedProxies, h http.Handler, r *http.Request) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	var buf strings.Builder
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	w := httptest.NewRecorder()
	Requests(Forwarding{Proxies: trusted}, logger, nil, Recover(h)).ServeHTTP(w, r)
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no request line in %s", buf.String())
	}
	return w, line
}

func TestLogRequestID(t *testing.T) {
	var seen string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = RequestID(r.Context()) })
	// httptest's requests come from 192.0.2.1.
	proxy, err := ParseTrustedProxies("192.0.2.1/32")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		trusted TrustedProxies
		in      []string
		honour  bool
		logged  string // client_request_id in the log line
	}{
		{"sane id from a trusted proxy honoured", proxy, []string{"req-42.abc"}, true, ""},
		{"sane id from a client: replaced, logged", nil, []string{"victim-req-123"}, false, "victim-req-123"},
		{"none: generated", proxy, nil, false, ""},
		{"too long: replaced", proxy, []string{strings.Repeat("x", 200)}, false, ""},
		{"bad characters: replaced", proxy, []string{"a b\tc"}, false, ""},
		{"sent twice: replaced", proxy, []string{"one", "two"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			for _, v := range tc.in {
				r.Header.Add(RequestIDHeader, v)
			}
			w, line := logLineVia(t, tc.trusted, h, r)
			got := w.Header().Get(RequestIDHeader)
			if got == "" || got != seen || line["request_id"] != got {
				t.Fatalf("answer %q, handler %q, log %v", got, seen, line["request_id"])
			}
			if tc.honour != (len(tc.in) > 0 && got == tc.in[0]) {
				t.Fatalf("id %q for %q", got, tc.in)
			}
			if logged, _ := line["client_request_id"].(string); logged != tc.logged {
				t.Fatalf("client_request_id %q, want %q", logged, tc.logged)
			}
			if !tc.honour && !saneRequestID(got) {
				t.Fatalf("generated id %q is not sane", got)
			}
		})
	}
}

func TestLogLineNamesPrincipalAndError(t *testing.T) {
	p := &gatehouse.Principal{AccountID: "acc_1", User: &gatehouse.User{ID: "usr_1"}, Method: gatehouse.MethodAPIToken,
		CredentialID: "atk_1", ClientID: "gci_1"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		RecordPrincipal(r.Context(), p)
		Error(w, r, gatehouse.Forbidden("no"))
	})
	w, line := logLine(t, h, httptest.NewRequest("GET", "/v1/x?password=secret", nil))
	if w.Code != 403 {
		t.Fatalf("status %d", w.Code)
	}
	for k, want := range map[string]any{"status": 403.0, "account_id": "acc_1", "user_id": "usr_1", "auth_method": "api_token",
		"credential_id": "atk_1", "client_id": "gci_1", "error": "forbidden", "path": "/v1/x", "remote": "192.0.2.1"} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v", k, line[k], want)
		}
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms = %v", line["duration_ms"])
	}
	if strings.Contains(w.Body.String()+toJSON(line), "secret") {
		t.Errorf("the query string reached the log: %v", line)
	}
}

// TestAdmittedIsTheRequestsPrincipal: gatehouse.FromContext answers the
// principal a request was admitted as, and only that one: a credential
// recorded but refused is named in the log line and never trusted, and
// one request's principal never reaches another's, however many run at
// once.
func TestAdmittedIsTheRequestsPrincipal(t *testing.T) {
	refused := &gatehouse.Principal{AccountID: "acc_r", Method: gatehouse.MethodPassword, CredentialID: "tok_r"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gatehouse.FromContext(r.Context()) != nil {
			t.Error("a principal before admission")
		}
		if r.URL.Query().Get("refuse") != "" {
			RecordPrincipal(r.Context(), refused)
			if gatehouse.FromContext(r.Context()) != nil {
				t.Error("a refused credential's principal is trusted")
			}
			Error(w, r, gatehouse.Errorf(gatehouse.EInvalidToken, "no"))
			return
		}
		id := r.URL.Query().Get("id")
		Admitted(r.Context(), &gatehouse.Principal{AccountID: "acc_" + id, CredentialID: id})
		if p := gatehouse.FromContext(r.Context()); p == nil || p.CredentialID != id {
			t.Errorf("request %s acts as %+v", id, p)
		}
		if gatehouse.ClientAddrFromContext(r.Context()) != "192.0.2.1" {
			t.Errorf("client %q", gatehouse.ClientAddrFromContext(r.Context()))
		}
	})
	_, line := logLine(t, h, httptest.NewRequest("GET", "/x?refuse=1", nil))
	if line["credential_id"] != "tok_r" || line["error"] != gatehouse.EInvalidToken {
		t.Errorf("refused line %v", line)
	}
	_, line = logLine(t, h, httptest.NewRequest("GET", "/x?id=tok_a", nil))
	if line["credential_id"] != "tok_a" || line["account_id"] != "acc_tok_a" {
		t.Errorf("admitted line %v", line)
	}
	all := Requests(Forwarding{}, slog.New(slog.DiscardHandler), nil, h)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for n := range 200 {
				all.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", fmt.Sprintf("/x?id=tok_%d_%d", g, n), nil))
			}
		})
	}
	wg.Wait()
	if gatehouse.FromContext(context.Background()) != nil || gatehouse.ClientAddrFromContext(context.Background()) != "" {
		t.Error("a principal or client outside any request")
	}
}

// TestRequestsTellsDone: done sees each request's route pattern, status,
// size and duration.
func TestRequestsTellsDone(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("12345"))
	})
	var got *RequestInfo
	h := Requests(Forwarding{}, slog.New(slog.DiscardHandler), func(i *RequestInfo) { got = i }, mux)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/items/7", nil))
	if got == nil || got.Route != "GET /items/{id}" || got.Status != http.StatusAccepted || got.Bytes != 5 || got.Duration <= 0 {
		t.Fatalf("done saw %+v", got)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nowhere", nil))
	if got.Route != "" || got.Status != http.StatusNotFound {
		t.Fatalf("unmatched: done saw route %q status %d", got.Route, got.Status)
	}
}

// TestRequestsCountsAnswersCutShort: a handler ended by
// http.ErrAbortHandler (a proxied stream cut by its timeout, its client or
// its upstream) is logged and counted all the same — with the status it
// wrote, or 499 when it wrote none — and the panic goes on to the server,
// which ends the connection.
func TestRequestsCountsAnswersCutShort(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wrote  bool
		status int
	}{{"a stream begun", true, http.StatusOK}, {"nothing answered", false, StatusClientClosed}} {
		t.Run(tc.name, func(t *testing.T) {
			var buf strings.Builder
			var got *RequestInfo
			h := Requests(Forwarding{}, slog.New(slog.NewJSONHandler(&buf, nil)), func(i *RequestInfo) { got = i },
				Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tc.wrote {
						w.Write([]byte("data: 1\n\n"))
					}
					panic(http.ErrAbortHandler)
				})))
			func() {
				defer func() {
					if v := recover(); v != http.ErrAbortHandler {
						t.Fatalf("the server got %v, want http.ErrAbortHandler", v)
					}
				}()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/sse", nil))
			}()
			if got == nil || got.Status != tc.status {
				t.Fatalf("done saw %+v, want status %d", got, tc.status)
			}
			if !strings.Contains(buf.String(), `"msg":"request"`) || !strings.Contains(buf.String(), `"status":`+strconv.Itoa(tc.status)) {
				t.Fatalf("log %s", buf.String())
			}
		})
	}
}

func TestRequestIDOnPanic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	w, line := logLine(t, h, httptest.NewRequest("GET", "/", nil))
	if w.Code != 500 || w.Header().Get(RequestIDHeader) == "" || line["error"] != gatehouse.EInternal {
		t.Fatalf("%d %v %v", w.Code, w.Header(), line)
	}
}

func TestPrefixPattern(t *testing.T) {
	for _, tc := range [][3]string{
		{"", "GET /v1/me", "GET /v1/me"},
		{"/gatehouse", "GET /v1/me", "GET /gatehouse/v1/me"},
		{"/gatehouse", "/admin/", "/gatehouse/admin/"},
		{"/a/b", "DELETE /v1/workspaces/{id}", "DELETE /a/b/v1/workspaces/{id}"},
	} {
		if got := PrefixPattern(tc[0], tc[1]); got != tc[2] {
			t.Errorf("PrefixPattern(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestUnavailableIsAWarning checks that a backing service that cannot be
// reached is answered 503 and logged as a warning with the request id.
func TestUnavailableIsAWarning(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Error(w, r, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	})
	w := httptest.NewRecorder()
	Requests(Forwarding{}, logger, nil, h).ServeHTTP(w, httptest.NewRequest("GET", "/v1/me", nil))
	if w.Code != 503 {
		t.Fatalf("status %d", w.Code)
	}
	id := w.Header().Get(RequestIDHeader)
	if !strings.Contains(buf.String(), `"level":"WARN","msg":"backing service unavailable"`) || strings.Count(buf.String(), `"request_id":"`+id+`"`) != 2 {
		t.Fatalf("log %s", buf.String())
	}
}
