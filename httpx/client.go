package httpx

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies is the set of peers whose forwarding headers
// (X-Forwarded-For, X-Forwarded-Proto, Forwarded) Gatehouse believes. The
// empty set trusts nobody: every request's client is its TCP peer.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies parses a comma-separated list of CIDRs
// ("10.0.0.0/8, 192.168.1.7/32"); a bare address means that address alone.
// An empty string is the empty set.
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not a CIDR or an IP address", part)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not a CIDR or an IP address", part)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Contains reports whether a is one of the trusted proxies.
func (t TrustedProxies) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// String lists the CIDRs, comma-separated.
func (t TrustedProxies) String() string {
	parts := make([]string, len(t))
	for i, p := range t {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// ForwardedHeader names the header in which the trusted proxies give the
// client's address and scheme. Only that one is read: were both kinds read,
// a client could send the kind its proxy does not write — which the proxy
// passes on untouched — and choose its own address.
type ForwardedHeader string

const (
	// XForwardedFor is X-Forwarded-For with X-Forwarded-Proto: the
	// default, what nginx, HAProxy's forwardfor, and most load balancers
	// write.
	XForwardedFor ForwardedHeader = "x-forwarded-for"
	// Forwarded is RFC 7239's Forwarded.
	Forwarded ForwardedHeader = "forwarded"
)

// ParseForwardedHeader reads a ForwardedHeader: "x-forwarded-for" (or "",
// the default) or "forwarded", in any case.
func ParseForwardedHeader(s string) (ForwardedHeader, error) {
	switch h := ForwardedHeader(strings.ToLower(strings.TrimSpace(s))); h {
	case "", XForwardedFor:
		return XForwardedFor, nil
	case Forwarded:
		return Forwarded, nil
	}
	return "", fmt.Errorf("forwarded header %q is not x-forwarded-for or forwarded", s)
}

// Forwarding is what Gatehouse believes of forwarding headers: those of
// the peers in Proxies, in the header Header names (XForwardedFor when
// empty).
type Forwarding struct {
	Proxies TrustedProxies
	Header  ForwardedHeader
}

// header is the header f reads.
func (f Forwarding) header() ForwardedHeader {
	if f.Header == "" {
		return XForwardedFor
	}
	return f.Header
}

// onlyOther reports whether h holds forwarding headers of the kind f does
// not read and none of the kind it does: a proxy that writes the other
// kind (a configuration to fix, worth a warning).
func (f Forwarding) onlyOther(h http.Header) bool {
	xff := len(h.Values("X-Forwarded-For")) > 0 || len(h.Values("X-Forwarded-Proto")) > 0
	fwd := len(h.Values("Forwarded")) > 0
	if f.Header == Forwarded {
		return xff && !fwd
	}
	return fwd && !xff
}

// Client is who sent a request, as far as Gatehouse can tell.
type Client struct {
	// Addr is the client's IP address: the TCP peer, or, when the peer is a
	// trusted proxy, the right-most address of the forwarding chain that is
	// not itself a trusted proxy.
	Addr string
	// HTTPS reports whether the client reached us (or the first trusted
	// proxy) over TLS.
	HTTPS bool
	// Proxied reports whether the TCP peer is a trusted proxy.
	Proxied bool
}

// ClientOf works out the client of r. It is the one place that reads
// forwarding headers, and it reads them only when the TCP peer is one of
// f.Proxies, and only the kind f.Header names:
//
//   - X-Forwarded-For (the default): the client is the right-most hop of
//     X-Forwarded-For that is not a trusted proxy; the scheme is the
//     right-most X-Forwarded-Proto value, the one the nearest proxy wrote.
//     Forwarded is ignored.
//   - Forwarded: RFC 7239 Forwarded is used the same way — the right-most
//     for= that is not a trusted proxy, and that element's proto=.
//     X-Forwarded-For and X-Forwarded-Proto are ignored.
//
// A hop that is not an IP address ("unknown", an obfuscated name, garbage)
// ends the walk: the client is then the last trusted hop seen.
func ClientOf(r *http.Request, f Forwarding) Client {
	c := Client{Addr: peerHost(r.RemoteAddr), HTTPS: r.TLS != nil}
	trusted := f.Proxies
	peer, err := netip.ParseAddr(c.Addr)
	if err != nil || !trusted.Contains(peer) {
		return c
	}
	c.Proxied = true
	h := r.Header
	if f.Header != Forwarded {
		hops := listValues(h, "X-Forwarded-For")
		if i := clientHop(hops, trusted, func(s string) string { return s }); i >= 0 {
			c.Addr = canonicalAddr(hops[i])
		}
		if protos := listValues(h, "X-Forwarded-Proto"); len(protos) > 0 {
			c.HTTPS = c.HTTPS || strings.EqualFold(protos[len(protos)-1], "https")
		}
		return c
	}
	elems := parseForwarded(listValues(h, "Forwarded"))
	if i := clientHop(elems, trusted, func(e forwardedElement) string { return e.forAddr }); i >= 0 {
		c.Addr = canonicalAddr(elems[i].forAddr)
		c.HTTPS = c.HTTPS || strings.EqualFold(elems[i].proto, "https")
	}
	return c
}

// clientHop walks hops from the right and returns the index of the
// client's hop: the first that is not a trusted proxy, or the last trusted
// one before a hop that is not an address; -1 when there is none.
func clientHop[T any](hops []T, trusted TrustedProxies, addr func(T) string) int {
	found := -1
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(addr(hops[i]))
		if !ok {
			break
		}
		found = i
		if !trusted.Contains(a) {
			break
		}
	}
	return found
}

// parseHop reads one hop of a forwarding header: an IP address, possibly
// in brackets and with a port ("[2001:db8::1]:4711", "192.0.2.1:80").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// canonicalAddr returns the address of a hop without brackets or port.
func canonicalAddr(s string) string {
	a, _ := parseHop(s)
	return a.String()
}

// listValues splits every value of a comma-separated header, in order.
func listValues(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// forwardedElement is one proxy's element of an RFC 7239 Forwarded header.
type forwardedElement struct{ forAddr, proto string }

// parseForwarded reads the elements of Forwarded (already split at commas):
// pairs separated by ";", values optionally quoted.
func parseForwarded(elems []string) []forwardedElement {
	out := make([]forwardedElement, 0, len(elems))
	for _, e := range elems {
		var fe forwardedElement
		for _, pair := range strings.Split(e, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok {
				continue
			}
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "for":
				fe.forAddr = v
			case "proto":
				fe.proto = v
			}
		}
		out = append(out, fe)
	}
	return out
}

// peerHost returns the host part of a remote address.
func peerHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is4() {
			return host // an IPv4 address parses only in its one written form
		}
		return a.Unmap().WithZone("").String()
	}
	return host
}

// clientFrom returns the client Requests worked out; without it (a
// handler served on its own) it is the TCP peer, trusting no header.
func clientFrom(r *http.Request) Client {
	if i := Info(r.Context()); i != nil {
		return i.Client
	}
	return ClientOf(r, Forwarding{})
}

// ClientAddr returns the client's IP address as Requests worked it out:
// for the password throttle, the audit log and the logs. Forwarding
// headers count only from trusted proxies.
func ClientAddr(r *http.Request) string { return clientFrom(r).Addr }

// IsHTTPS reports whether the client used TLS, to Gatehouse itself or to
// the trusted proxy in front of it.
func IsHTTPS(r *http.Request) bool { return clientFrom(r).HTTPS }

// FromTrustedProxy reports whether the request came through a trusted
// proxy, whose forwarding headers may then be passed on.
func FromTrustedProxy(r *http.Request) bool { return clientFrom(r).Proxied }

// ForwardedFor returns the X-Forwarded-For chain that a proxy in front of
// an upstream passes on for r, before its own peer: behind a trusted proxy
// that writes X-Forwarded-For, that chain; behind one that writes
// Forwarded, the client's address alone (a client's own X-Forwarded-For,
// which such a proxy passes on untouched, goes no further) when Forwarded
// gave one; nil when the peer is no trusted proxy.
func ForwardedFor(r *http.Request) []string {
	i := Info(r.Context())
	if i == nil || !i.Client.Proxied {
		return nil
	}
	if i.forwarded == Forwarded {
		if i.Client.Addr == peerHost(r.RemoteAddr) {
			return nil // no hop: the peer, which the caller adds
		}
		return []string{i.Client.Addr}
	}
	return r.Header["X-Forwarded-For"]
}
