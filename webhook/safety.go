package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Outbound limits (SPEC §10.2).
const (
	// Timeout bounds one delivery attempt, from dialling to the end of
	// the answer: any 2xx within it is success.
	Timeout = 10 * time.Second
	// MaxAnswer is how much of an answer's body is read.
	MaxAnswer = 64 << 10
	// MaxURLLen bounds an endpoint's URL.
	MaxURLLen = 2048
)

// ErrRefusedAddress is returned (wrapped) when a delivery's connection
// would reach an address deliveries may not reach: loopback, private,
// link-local, and the other non-public ranges, unless insecure targets
// are allowed.
var ErrRefusedAddress = errors.New("webhook: the address is not a public one")

// CheckURL checks an endpoint URL's form: absolute, https (or http when
// insecure targets are allowed), a host, no user information, no
// fragment, at most MaxURLLen bytes as given and as escaped to be sent. It
// resolves nothing; see
// CheckAddresses.
func CheckURL(raw string, allowInsecure bool) (*url.URL, error) {
	bad := func(hint string) error {
		return gatehouse.InvalidField("url", hint, "url: %s", strings.ToLower(hint[:1])+hint[1:])
	}
	if raw == "" {
		return nil, bad("This is required.")
	}
	if len(raw) > MaxURLLen {
		return nil, bad(fmt.Sprintf("Use at most %d characters.", MaxURLLen))
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, bad("Give an absolute URL such as https://example.com/hooks.")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowInsecure:
	case u.Scheme == "http":
		return nil, bad("Use https: plain http is allowed only with --webhook-allow-insecure.")
	default:
		return nil, bad("Use an https URL.")
	}
	if u.User != nil {
		return nil, bad("Put no user name or password in the URL.")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, bad("Put no fragment (#…) in the URL.")
	}
	if len(u.String()) > MaxURLLen {
		// What is stored and sent is the URL escaped (é is %C3%A9): it
		// must fit too, or no delivery could ever be made to it.
		return nil, bad(fmt.Sprintf("Use at most %d characters, escaped as sent.", MaxURLLen))
	}
	return u, nil
}

// CheckAddresses resolves u's host and checks that every address it
// resolves to is public (unless allowInsecure). Deliveries check again at
// each connection (Dialer), since DNS can change.
func CheckAddresses(ctx context.Context, u *url.URL, allowInsecure bool) error {
	if allowInsecure {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return checkAddr(ip)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return gatehouse.InvalidField("url", "The host name does not resolve.", "url: the host %s does not resolve", host)
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// nonPublic are the ranges beyond what netip's predicates name that no
// delivery may reach: "this network", shared address space (CGNAT),
// IETF protocol assignments, benchmarking, reserved, the 6to4 relay,
// NAT64, IPv4-compatible and IPv4-translated IPv6, Teredo (each of which
// can embed any IPv4 address), deprecated site-local IPv6, ORCHIDv2,
// discard-only and documentation.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("192.88.99.0/24"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("::ffff:0:0:0/96"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2001:2::/48"),
	netip.MustParsePrefix("2001:20::/28"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// Public reports whether a is an address deliveries may reach without
// --webhook-allow-insecure.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func checkAddr(a netip.Addr) error {
	if Public(a) {
		return nil
	}
	return gatehouse.InvalidField("url", "The URL must reach a public address (private and loopback ones are allowed only with --webhook-allow-insecure).",
		"url: %s is not a public address", a.Unmap())
}

// Dialer returns a dialer that refuses, at each connection, an address
// that is not public (unless allowInsecure): the check DNS cannot slip
// past between the URL's check and the delivery.
func Dialer(allowInsecure bool) *net.Dialer {
	d := &net.Dialer{Timeout: Timeout}
	if !allowInsecure {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("webhook: dialling %s: %w", address, ErrRefusedAddress)
			}
			if !Public(ap.Addr()) {
				return fmt.Errorf("webhook: %s: %w", ap.Addr().Unmap(), ErrRefusedAddress)
			}
			return nil
		}
	}
	return d
}

// Client returns the HTTP client deliveries use: the safe dialer, no
// proxy from the environment, no redirects followed (a 3xx is an answer,
// and not a 2xx), Timeout for the whole exchange, bounded header size.
func Client(allowInsecure bool) *http.Client {
	tr := &http.Transport{
		DialContext:            Dialer(allowInsecure).DialContext,
		TLSHandshakeTimeout:    Timeout,
		ResponseHeaderTimeout:  Timeout,
		MaxResponseHeaderBytes: MaxAnswer,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// drain reads at most MaxAnswer bytes of an answer's body and closes it.
func drain(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, MaxAnswer))
	body.Close()
}
