package httpx

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestJSONBodyLength: every JSON answer, small or large, reaches the
// client with its exact Content-Length, never chunked, and with its own
// Content-Type.
func TestJSONBodyLength(t *testing.T) {
	for _, n := range []int{2, measuredBody - 1, measuredBody, measuredBody + 1, 100_000} {
		body := append(bytes.Repeat([]byte(" "), n-1), '\n')
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteJSONBody(w, http.StatusCreated, body)
			w.Header().Add("Content-Type", "a second value must not reach another answer")
		}))
		for range 2 {
			res, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated || !bytes.Equal(got, body) {
				t.Fatalf("%d bytes: status %d, %d bytes back", n, res.StatusCode, len(got))
			}
			if res.Header.Get("Content-Length") != strconv.Itoa(n) || len(res.TransferEncoding) != 0 {
				t.Errorf("%d bytes: Content-Length %q, Transfer-Encoding %v", n, res.Header.Get("Content-Length"), res.TransferEncoding)
			}
			if ct := res.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != "application/json" {
				t.Errorf("%d bytes: Content-Type %q", n, ct)
			}
		}
		srv.Close()
	}
}
