package gatehouse_test

import (
	"net/netip"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestClientNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1/32",
		"::ffff:192.0.2.1":        "192.0.2.1/32",
		"2001:db8::1":             "2001:db8::/64",
		"2001:db8:0:0:ffff:1:2:3": "2001:db8::/64",
		"fe80::1%eth0":            "fe80::/64",
		"64:ff9b::192.0.2.1":      "64:ff9b::c000:201/128",
		"64:ff9b:1:2::5":          "64:ff9b:1:2::5/128",
		"::1":                     "::1/128",
	} {
		if got := gatehouse.ClientNetwork(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("ClientNetwork(%s) = %s, want %s", in, got, want)
		}
	}
}
