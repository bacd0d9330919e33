package gatehouse

import "net/netip"

// Embedded-IPv4 ranges: IPv6 addresses whose /64 is shared by many IPv4
// hosts (NAT64's well-known and local-use prefixes, RFC 6052 and RFC 8215,
// and the deprecated IPv4-compatible addresses with the loopback ::1).
var embeddedIPv4 = []netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("::/96"),
}

// ClientNetwork is the network a client address is counted as by every
// per-address limit: an IPv4 address (or an IPv4-mapped IPv6 one) is
// itself; an IPv6 address is its /64, the smallest block one subscriber
// is given, so that stepping through one's own /64 gains nothing — except
// in the ranges that embed IPv4 addresses (NAT64, IPv4-compatible), where
// one address stands for one IPv4 host and is itself. The zone is
// dropped.
func ClientNetwork(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	for _, p := range embeddedIPv4 {
		if p.Contains(a) {
			return netip.PrefixFrom(a, 128)
		}
	}
	return netip.PrefixFrom(a, 64).Masked()
}
