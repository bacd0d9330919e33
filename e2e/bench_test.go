package e2e

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/logx"
	"github.com/gatehouse/gatehouse/server"
)

// BenchmarkClientCredentialsIssuance issues client-credentials tokens
// through the real server's HTTP handler and reports tokens/s.
func BenchmarkClientCredentialsIssuance(b *testing.B) {
	env := servertest.Start(b)
	admin := env.AdminToken()
	env.CreateUser(admin, "dev@example.com", memberPW, "developer")
	r := env.As(env.Login("dev@example.com", memberPW), "POST", "/v1/credentials", map[string]string{"name": "bench"})
	var c credential
	r.JSON(b, &c)
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}.Encode()
	handler := env.Server.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", "/oauth/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = "127.0.0.1:1234"
			w := &discardWriter{h: http.Header{}}
			handler.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(s int) { w.status = s }

// BenchmarkRefresh rotates refresh tokens through the real server's HTTP
// handler, one chain per goroutine, and reports refreshes/s.
func BenchmarkRefresh(b *testing.B) {
	env := servertest.Start(b)
	op := env.AdminToken()
	var n atomic.Int64
	handler := env.Server.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		b.StopTimer()
		email := "admin" + strconv.FormatInt(n.Add(1), 10) + "@example.com"
		env.CreateUser(op, email, memberPW, "admin")
		r := env.As(env.Login(email, memberPW), "POST", "/v1/api-access", nil)
		var app apiAccess
		r.JSON(b, &app)
		rt := app.RefreshToken
		b.StartTimer()
		for pb.Next() {
			body := url.Values{"grant_type": {"refresh_token"}, "client_id": {app.ClientID}, "refresh_token": {rt}}.Encode()
			req, _ := http.NewRequest("POST", "/oauth/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = "127.0.0.1:1234"
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d %s", w.Code, w.Body)
			}
			var out apiAccess
			json.Unmarshal(w.Body.Bytes(), &out)
			rt = out.RefreshToken
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "refreshes/s")
}

// BenchmarkMe serves the authenticated GET /v1/me through the real
// server's HTTP handler (the hot path of an authenticated request, without
// the sockets): see docs/performance.md for its CPU profile.
func BenchmarkMe(b *testing.B) { benchmarkMe(b) }

// BenchmarkMeLogged is BenchmarkMe as shipped: the server writes its
// request log line at info, through the buffered writer, to a file.
func BenchmarkMeLogged(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "server.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	logger, closeLog := logx.Open(f, false, slog.LevelInfo)
	defer closeLog()
	benchmarkMe(b, func(cfg *server.Config) { cfg.Logger = logger })
}

func benchmarkMe(b *testing.B, configure ...func(*server.Config)) {
	env := servertest.Start(b, configure...)
	admin := env.AdminToken()
	// Limits out of reach: the limiter runs, but never refuses.
	servertest.Expect(b, env.As(admin, "PUT", "/v1/settings", map[string]any{
		"rate_limit": map[string]int{"daily": 100_000_000, "burst": 1_000_000, "burst_window_seconds": 1}}), 200, "")
	auth := "Bearer " + admin
	handler := env.Server.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", "/v1/me", nil)
			req.Header.Set("Authorization", auth)
			req.RemoteAddr = "127.0.0.1:1234"
			w := &discardWriter{h: http.Header{}}
			handler.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	})
}
