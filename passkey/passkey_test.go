package passkey

import (
	"strings"
	"testing"
)

func TestNewDerivesTheRelyingParty(t *testing.T) {
	cases := []struct {
		name, url, id, origin, err string
	}{
		{name: "https host", url: "https://Admin.Example.com/admin", id: "admin.example.com", origin: "https://admin.example.com"},
		{name: "https host and port", url: "https://auth.example.com:8443", id: "auth.example.com", origin: "https://auth.example.com:8443"},
		{name: "localhost over http", url: "http://localhost:8080", id: "localhost", origin: "http://localhost:8080"},
		{name: "IP address", url: "https://127.0.0.1:8443", err: "IP address"},
		{name: "IPv6 address", url: "https://[::1]:8443", err: "IP address"},
		{name: "plain http", url: "http://auth.example.com", err: "not https"},
		{name: "no host", url: "/admin", err: "not a URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rp, err := New(c.url, "")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "--public-url") {
					t.Fatalf("New(%q) = %v, want an error about %q naming the setting", c.url, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rp.ID != c.id || rp.Origin != c.origin {
				t.Fatalf("New(%q) = %q %q, want %q %q", c.url, rp.ID, rp.Origin, c.id, c.origin)
			}
		})
	}
}

func TestRefusesGarbage(t *testing.T) {
	for _, in := range []string{"", "{}", "null", `{"id":"x","type":"public-key"}`, strings.Repeat("a", MaxResponse+1)} {
		if _, err := ParseAssertion([]byte(in)); err == nil {
			t.Errorf("ParseAssertion(%.20q) accepted", in)
		}
	}
}
