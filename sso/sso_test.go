package sso

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestCheckIssuer(t *testing.T) {
	for _, tc := range []struct {
		in       string
		insecure bool
		want     string
	}{
		{"https://login.example.com/", false, "https://login.example.com"},
		{"https://login.example.com/realms/acme", false, "https://login.example.com/realms/acme"},
		{"http://127.0.0.1:9000", true, "http://127.0.0.1:9000"},
		{"http://login.example.com", false, ""},
		{"ftp://login.example.com", true, ""},
		{"https://u:p@login.example.com", false, ""},
		{"https://login.example.com/?a=b", false, ""},
		{"https://login.example.com/#x", false, ""},
		{"login.example.com", false, ""},
	} {
		got, err := CheckIssuer(tc.in, tc.insecure)
		if tc.want == "" {
			if f, _ := gatehouse.ErrorField(err); f != "sso.issuer" {
				t.Errorf("%q: err %v, want one about sso.issuer", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckDomains(t *testing.T) {
	got, err := CheckDomains([]string{" Example.COM", "example.com", "acme.co.uk"})
	if err != nil || len(got) != 2 || got[0] != "example.com" || got[1] != "acme.co.uk" {
		t.Fatalf("%v, %v", got, err)
	}
	for _, bad := range [][]string{nil, {"@example.com"}, {"localhost"}, {"ex ample.com"}, {"-a.com"}, {"a..com"}, {"exämple.com"}} {
		if _, err := CheckDomains(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAllowed(t *testing.T) {
	d := []string{"example.com"}
	for email, want := range map[string]bool{
		"ann@example.com": true, "Ann@EXAMPLE.com": true, "ann@sub.example.com": false,
		"ann@example.com.evil.org": false, "example.com": false, "@example.com": false, "ann@": false,
		"a@b@example.com": true, // the domain is after the last @; the address rules are identity's
	} {
		if got := Allowed(email, d); got != want {
			t.Errorf("%q: %v, want %v", email, got, want)
		}
	}
}

func TestDerived(t *testing.T) {
	b := NewBinding()
	v, n := Verifier(b), Nonce(b)
	if len(v) < 43 || len(v) > 128 || v == n || Verifier(b) != v || Verifier(NewBinding()) == v {
		t.Fatalf("verifier %q nonce %q", v, n)
	}
}
