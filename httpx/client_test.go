package httpx

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "", want: ""},
		{in: "10.0.0.0/8, 192.168.1.7", want: "10.0.0.0/8,192.168.1.7/32"},
		{in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{in: "::1, 2001:db8::/32", want: "::1/128,2001:db8::/32"},
		{in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{in: "10.0.0.0/8,,", want: "10.0.0.0/8"},
		{in: "10.0.0.0/33", bad: true},
		{in: "proxy.internal", bad: true},
		{in: "10.0.0.0/8 192.168.0.0/16", bad: true},
	} {
		got, err := ParseTrustedProxies(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("%q: err %v, want error %v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && got.String() != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got.String(), tc.want)
		}
	}
}

func TestClientOf(t *testing.T) {
	trusted, err := ParseTrustedProxies("127.0.0.1, 10.0.0.0/8, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		remote  string
		tls     bool
		header  ForwardedHeader // "" is the default, X-Forwarded-For
		headers [][2]string
		want    Client
	}{
		{name: "untrusted peer: headers ignored", remote: "198.51.100.9:4000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"}, {"Forwarded", "for=203.0.113.8;proto=https"}},
			want:    Client{Addr: "198.51.100.9"}},
		{name: "untrusted peer over TLS", remote: "198.51.100.9:4000", tls: true, want: Client{Addr: "198.51.100.9", HTTPS: true}},
		{name: "trusted peer without headers", remote: "127.0.0.1:5000", want: Client{Addr: "127.0.0.1", Proxied: true}},
		{name: "right-most untrusted hop", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7, 198.51.100.2"}},
			want:    Client{Addr: "198.51.100.2", Proxied: true}},
		{name: "trusted hops skipped", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7, 10.0.0.5"}},
			want:    Client{Addr: "203.0.113.7", Proxied: true}},
		{name: "several header lines in order", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "198.51.100.1"}, {"X-Forwarded-For", "203.0.113.7, 10.0.0.5"}},
			want:    Client{Addr: "203.0.113.7", Proxied: true}},
		{name: "every hop trusted: the left-most", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "10.0.0.9, 10.0.0.5"}},
			want:    Client{Addr: "10.0.0.9", Proxied: true}},
		{name: "garbage ends the walk at the last trusted hop", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7, garbage, 10.0.0.5"}},
			want:    Client{Addr: "10.0.0.5", Proxied: true}},
		{name: "garbage right away: the peer", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7, <script>"}},
			want:    Client{Addr: "127.0.0.1", Proxied: true}},
		{name: "hop with port and brackets", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "[2001:db9::1]:443"}},
			want:    Client{Addr: "2001:db9::1", Proxied: true}},
		{name: "proto from the nearest proxy", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "http, https"}},
			want:    Client{Addr: "203.0.113.7", HTTPS: true, Proxied: true}},
		{name: "a client's proto is not the nearest proxy's", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https, http"}},
			want:    Client{Addr: "203.0.113.7", Proxied: true}},
		{name: "X-Forwarded-For read: a client's Forwarded is ignored", remote: "127.0.0.1:5000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7"}, {"Forwarded", "for=198.51.100.66;proto=https"}},
			want:    Client{Addr: "203.0.113.7", Proxied: true}},
		{name: "X-Forwarded-For read: Forwarded alone is ignored", remote: "127.0.0.1:5000",
			headers: [][2]string{{"Forwarded", "for=198.51.100.66;proto=https"}},
			want:    Client{Addr: "127.0.0.1", Proxied: true}},
		{name: "X-Forwarded-For given by name", remote: "127.0.0.1:5000", header: XForwardedFor,
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7"}, {"Forwarded", "for=198.51.100.66"}},
			want:    Client{Addr: "203.0.113.7", Proxied: true}},
		{name: "Forwarded", remote: "127.0.0.1:5000", header: Forwarded,
			headers: [][2]string{{"Forwarded", `for=198.51.100.66, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1`}},
			want:    Client{Addr: "198.51.100.66", Proxied: true}},
		{name: "Forwarded: proto of the client's element", remote: "127.0.0.1:5000", header: Forwarded,
			headers: [][2]string{{"Forwarded", `for=198.51.100.66;proto=https, for=10.0.0.3;proto=http`}},
			want:    Client{Addr: "198.51.100.66", HTTPS: true, Proxied: true}},
		{name: "Forwarded: unknown", remote: "127.0.0.1:5000", header: Forwarded,
			headers: [][2]string{{"Forwarded", `for=unknown;proto=https`}},
			want:    Client{Addr: "127.0.0.1", Proxied: true}},
		// The attack: behind a proxy that writes Forwarded and passes a
		// client's X-Forwarded-* on, the client cannot choose its address
		// or scheme.
		{name: "Forwarded read: a client's X-Forwarded-For is ignored", remote: "127.0.0.1:5000", header: Forwarded,
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.5"}, {"X-Forwarded-Proto", "https"}, {"Forwarded", "for=198.51.100.9;proto=http"}},
			want:    Client{Addr: "198.51.100.9", Proxied: true}},
		{name: "Forwarded read: X-Forwarded-For alone is ignored", remote: "127.0.0.1:5000", header: Forwarded,
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.5"}},
			want:    Client{Addr: "127.0.0.1", Proxied: true}},
		{name: "IPv4-mapped peer", remote: "[::ffff:127.0.0.1]:5000",
			headers: [][2]string{{"X-Forwarded-For", "203.0.113.7"}},
			want:    Client{Addr: "203.0.113.7", Proxied: true}},
		{name: "IPv6 trusted peer", remote: "[2001:db8::5]:5000",
			headers: [][2]string{{"X-Forwarded-For", "::ffff:203.0.113.7"}},
			want:    Client{Addr: "203.0.113.7", Proxied: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			if got := ClientOf(r, Forwarding{Proxies: trusted, Header: tc.header}); got != tc.want {
				t.Fatalf("ClientOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestClientIsTheOneAnswer checks that ClientAddr and IsHTTPS answer what
// Requests decided, and trust nothing without it.
func TestClientIsTheOneAnswer(t *testing.T) {
	trusted, _ := ParseTrustedProxies("127.0.0.1")
	var addr string
	var https bool
	h := Requests(Forwarding{Proxies: trusted}, slog.New(slog.DiscardHandler), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, https = ClientAddr(r), IsHTTPS(r)
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	r.Header.Set("X-Forwarded-Proto", "https")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if addr != "203.0.113.7" || !https {
		t.Fatalf("behind a trusted proxy: %q %v", addr, https)
	}
	// Without the middleware nothing is trusted.
	if ClientAddr(r) != "127.0.0.1" || IsHTTPS(r) {
		t.Fatalf("without Requests: %q %v", ClientAddr(r), IsHTTPS(r))
	}
}

// TestPeerHost: the TCP peer's address in its one canonical form, however
// the listener wrote it.
func TestPeerHost(t *testing.T) {
	for remote, want := range map[string]string{
		"127.0.0.1:1234":           "127.0.0.1",
		"198.51.100.9:80":          "198.51.100.9",
		"[::ffff:198.51.100.9]:80": "198.51.100.9",
		"[2001:DB8:0:0::1]:443":    "2001:db8::1",
		"[fe80::1%eth0]:443":       "fe80::1",
		"not an address":           "not an address",
		"@:0":                      "@",
	} {
		if got := peerHost(remote); got != want {
			t.Errorf("peerHost(%q) = %q, want %q", remote, got, want)
		}
	}
}

// TestForwardingWarnsOnce: a trusted proxy that sends only the kind of
// forwarding header Gatehouse is not told to read is warned about, once;
// the kind it reads, or a stranger's headers, are not.
func TestForwardingWarnsOnce(t *testing.T) {
	trusted, _ := ParseTrustedProxies("127.0.0.1")
	for _, tc := range []struct {
		name   string
		header ForwardedHeader
		remote string
		sent   [2]string
		warns  int
	}{
		{"Forwarded to an X-Forwarded-For reader", "", "127.0.0.1:1", [2]string{"Forwarded", "for=203.0.113.7"}, 1},
		{"X-Forwarded-For to a Forwarded reader", Forwarded, "127.0.0.1:1", [2]string{"X-Forwarded-For", "203.0.113.7"}, 1},
		{"the header it reads", Forwarded, "127.0.0.1:1", [2]string{"Forwarded", "for=203.0.113.7"}, 0},
		{"a stranger's", "", "198.51.100.1:1", [2]string{"Forwarded", "for=203.0.113.7"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			h := Requests(Forwarding{Proxies: trusted, Header: tc.header}, slog.New(slog.NewTextHandler(&out, nil)), nil,
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			for range 3 {
				r := httptest.NewRequest("GET", "/", nil)
				r.RemoteAddr = tc.remote
				r.Header.Set(tc.sent[0], tc.sent[1])
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
			if got := strings.Count(out.String(), "--forwarded-header"); got != tc.warns {
				t.Fatalf("%d warnings, want %d: %s", got, tc.warns, out.String())
			}
		})
	}
}

func TestParseForwardedHeader(t *testing.T) {
	for in, want := range map[string]ForwardedHeader{"": XForwardedFor, "X-Forwarded-For": XForwardedFor, " forwarded ": Forwarded} {
		if got, err := ParseForwardedHeader(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"x-real-ip", "forwarded,x-forwarded-for", "both"} {
		if _, err := ParseForwardedHeader(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
