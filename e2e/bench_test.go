package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
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
