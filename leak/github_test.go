package leak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// keyServer serves GitHub's key list, {"public_keys":[…]}, as set, and
// counts the requests it answers.
type keyServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	status  int
	body    []byte
}

func newKeyServer(t *testing.T) *keyServer {
	s := &keyServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/meta/public_keys/secret_scanning" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// publish sets the keys served: identifier -> key.
func (s *keyServer) publish(t *testing.T, keys map[string]*ecdsa.PublicKey) {
	t.Helper()
	var list []map[string]any
	for id, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, map[string]any{"key_identifier": id, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true})
	}
	body, _ := json.Marshal(map[string]any{"public_keys": list})
	s.serve(http.StatusOK, body)
}

func (s *keyServer) serve(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func newKey(t *testing.T, curve elliptic.Curve) *ecdsa.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

// TestGitHubKeysFromURL: the keys are fetched from the URL on first use
// and cached; a signature naming an unknown identifier reads them again,
// but not more often than once per keysRefresh however many such
// signatures arrive, even when they arrive together, and even when no
// read has succeeded yet; a rotated key is found after a re-read; an
// error answer, a body past the bound or garbage keep the keys read
// before; only P-256 keys are used.
func TestGitHubKeysFromURL(t *testing.T) {
	srv := newKeyServer(t)
	clock := testenv.NewClock()
	keys := NewGitHubKeys(srv.URL + "/meta/public_keys/secret_scanning")
	keys.now = clock.Now
	ctx := context.Background()
	fetches := func(want int64, when string) {
		t.Helper()
		if got := srv.fetches.Load(); got != want {
			t.Fatalf("%s: %d fetches, want %d", when, got, want)
		}
	}
	key := func(id string) (*ecdsa.PublicKey, error) { return keys.Key(ctx, id) }

	// The first reads fail: they too are bounded.
	srv.serve(http.StatusServiceUnavailable, []byte(`{"message":"busy"}`))
	if _, err := key("k1"); err == nil {
		t.Fatal("a key from a 503")
	}
	for range 5 {
		if _, err := key("k1"); err == nil {
			t.Fatal("a key with nothing read")
		}
	}
	fetches(1, "after a failed first read and five more requests")

	k1, p384 := newKey(t, elliptic.P256()), newKey(t, elliptic.P384())
	srv.publish(t, map[string]*ecdsa.PublicKey{"k1": k1, "p384": p384})
	clock.Add(keysRefresh)
	if got, err := key("k1"); err != nil || !got.Equal(k1) {
		t.Fatalf("k1: %v %v", got, err)
	}
	fetches(2, "the first good read")
	for range 10 {
		if got, err := key("k1"); err != nil || !got.Equal(k1) {
			t.Fatalf("k1 again: %v", err)
		}
	}
	fetches(2, "known keys")
	if _, err := key("p384"); err == nil {
		t.Fatal("a P-384 key was used")
	}
	fetches(2, "an identifier not used, within the bound")

	// Forged identifiers, one after another and 50 at once: no fetch
	// until the bound has passed, then exactly one.
	for i := range 20 {
		if _, err := key("forged-" + strings.Repeat("x", i)); err == nil {
			t.Fatal("a forged identifier found")
		}
	}
	clock.Add(keysRefresh - time.Nanosecond)
	if _, err := key("forged"); err == nil {
		t.Fatal("forged found")
	}
	fetches(2, "forged identifiers within the bound")
	clock.Add(time.Nanosecond)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := key("forged-together-" + strings.Repeat("y", i)); err == nil {
				t.Error("a forged identifier found")
			}
		}()
	}
	wg.Wait()
	fetches(3, "50 forged identifiers together past the bound")

	// GitHub rotates: k2 is found on the re-read once the bound allows,
	// and k1, no longer listed, is gone after it.
	k2 := newKey(t, elliptic.P256())
	srv.publish(t, map[string]*ecdsa.PublicKey{"k2": k2})
	if _, err := key("k2"); err == nil {
		t.Fatal("k2 found before a re-read")
	}
	clock.Add(keysRefresh)
	if got, err := key("k2"); err != nil || !got.Equal(k2) {
		t.Fatalf("k2 after the bound: %v %v", got, err)
	}
	fetches(4, "the rotation")
	if _, err := key("k1"); err == nil {
		t.Fatal("k1 still used after GitHub dropped it")
	}

	// Failed re-reads keep the keys read before.
	for _, bad := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"an error answer", http.StatusInternalServerError, []byte(`{"public_keys":[]}`)},
		{"garbage", http.StatusOK, []byte(`<html>`)},
		// A key list past 1 MiB (a valid one, padded) is not read whole.
		{"a body past the bound", http.StatusOK, []byte(`{"public_keys":[],"pad":"` + strings.Repeat("a", 1<<20) + `"}`)},
	} {
		srv.serve(bad.status, bad.body)
		clock.Add(keysRefresh)
		if _, err := key("k3"); err == nil {
			t.Fatalf("%s: k3 found", bad.name)
		}
		if got, err := key("k2"); err != nil || !got.Equal(k2) {
			t.Fatalf("%s: k2 lost: %v", bad.name, err)
		}
	}
	fetches(7, "three failed re-reads")
}
