package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's own example: this signature of
// this message under this secret is what every verifier accepts.
func TestSignMatchesTheSpecificationsExample(t *testing.T) {
	key, err := SecretKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestSignaturesDuringARollCarryBoth(t *testing.T) {
	k1, _ := SecretKey(NewSecret())
	k2, _ := SecretKey(NewSecret())
	ts := time.Unix(1700000000, 0)
	h := Signatures([][]byte{k2, k1}, "msg_1", ts, []byte("{}"))
	if len(strings.Fields(h)) != 2 {
		t.Fatalf("header %q: want two signatures", h)
	}
	for i, k := range [][]byte{k1, k2} {
		if !Verify(k, h, "msg_1", ts, []byte("{}")) {
			t.Errorf("key %d does not verify %q", i, h)
		}
	}
	if Verify(k1, h, "msg_1", ts, []byte(`{"x":1}`)) || Verify(k1, h, "msg_2", ts, []byte("{}")) || Verify(k1, h, "msg_1", ts.Add(time.Second), []byte("{}")) {
		t.Error("a changed body, id or timestamp verified")
	}
}

func TestNewSecretIsAWhsecOf32Bytes(t *testing.T) {
	s := NewSecret()
	k, err := SecretKey(s)
	if err != nil || len(k) != 32 || !strings.HasPrefix(s, "whsec_") || s == NewSecret() {
		t.Fatalf("secret %q: key %d bytes, err %v", s, len(k), err)
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!", "sk_abc"} {
		if _, err := SecretKey(bad); err == nil {
			t.Errorf("SecretKey(%q) succeeded", bad)
		}
	}
}

func TestSealerOpensOnlyItsOwn(t *testing.T) {
	a, b := NewSealer([]byte("server key one")), NewSealer([]byte("server key two"))
	sealed := a.Seal("whk_1", "whsec_abc")
	if strings.Contains(sealed, "whsec") {
		t.Fatal("the sealed form shows the secret")
	}
	if got, err := a.Open("whk_1", sealed); err != nil || got != "whsec_abc" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := b.Open("whk_1", sealed); err == nil {
		t.Error("another server key opened it")
	}
	if _, err := a.Open("whk_2", sealed); err == nil {
		t.Error("it opened for another endpoint")
	}
	if _, err := a.Open("whk_1", "garbage"); err == nil {
		t.Error("garbage opened")
	}
}

func TestMatchAndPatterns(t *testing.T) {
	cases := []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{[]string{"*"}, "user.created", true},
		{[]string{"credential.*"}, "credential.leaked", true},
		{[]string{"credential.*"}, "user.created", false},
		{[]string{"user.created"}, "user.created", true},
		{[]string{"user.created"}, "user.updated", false},
		{[]string{"user.*"}, "users.created", false},
	}
	for _, c := range cases {
		if got := Match(c.patterns, c.typ); got != c.want {
			t.Errorf("Match(%v, %s) = %v", c.patterns, c.typ, got)
		}
	}
	if got, err := CheckPatterns([]string{"credential.*", "*", "user.created", "credential.*"}); err != nil || len(got) != 3 {
		t.Errorf("CheckPatterns = %v, %v", got, err)
	}
	for _, bad := range [][]string{nil, {}, {"nope"}, {"user."}, {".*"}, {"nope.*"}, {"user.created.*"}, {"**"}, {strings.Repeat("a", 1000)}} {
		if _, err := CheckPatterns(bad); err == nil {
			t.Errorf("CheckPatterns(%q) accepted", bad)
		}
	}
	for _, typ := range Types {
		if !Match([]string{typ}, typ) {
			t.Errorf("%s does not match itself", typ)
		}
	}
}

func TestPublicAddresses(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1", "fc00::1",
		"0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "255.255.255.255", "64:ff9b::a00:1", "::",
		"::127.0.0.1", "::ffff:0:7f00:1", "fec0::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.88.99.1", "2001:2::1", "2001:20::1"} {
		if Public(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as public", a)
		}
	}
	for _, a := range []string{"1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"} {
		if !Public(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as not public", a)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, good := range []string{"https://example.com/hook", "https://example.com:8443/a?b=c"} {
		if _, err := CheckURL(good, false); err != nil {
			t.Errorf("CheckURL(%s): %v", good, err)
		}
	}
	for _, bad := range []string{"", "http://example.com/", "ftp://example.com/", "https://", "https://user:pw@example.com/", "https://example.com/#x",
		"/relative", "https://example.com/" + strings.Repeat("a", MaxURLLen),
		"https://example.com/" + strings.Repeat("é", 1000)} { // fits as typed, not escaped
		if _, err := CheckURL(bad, false); err == nil {
			t.Errorf("CheckURL(%q) accepted", bad)
		}
	}
	if _, err := CheckURL("http://127.0.0.1:8080/", true); err != nil {
		t.Errorf("insecure http refused with the flag: %v", err)
	}
	for _, host := range []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "localhost"} {
		u, _ := CheckURL("https://"+host+"/hook", false)
		if err := CheckAddresses(context.Background(), u, false); err == nil {
			t.Errorf("%s accepted", host)
		}
		if err := CheckAddresses(context.Background(), u, true); err != nil {
			t.Errorf("%s refused with the flag: %v", host, err)
		}
	}
}

// The client refuses at connection time, whatever the URL said, and
// never follows a redirect.
func TestClientRefusesPrivateAddressesAndRedirects(t *testing.T) {
	hits := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	defer redirect.Close()
	if _, err := Client(false).Post(target.URL, "application/json", nil); err == nil || !strings.Contains(err.Error(), ErrRefusedAddress.Error()) {
		t.Errorf("a loopback address was reached: %v", err)
	}
	resp, err := Client(true).Post(redirect.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hits != 0 {
		t.Errorf("status %d, %d hits at the redirect's target: want 302 and none", resp.StatusCode, hits)
	}
}

func TestScheduleIsAboutThreeDays(t *testing.T) {
	var total time.Duration
	for i := 1; ; i++ {
		d, ok := NextAttempt(i)
		if !ok {
			if i != MaxAttempts {
				t.Fatalf("the last attempt is %d, want %d", i, MaxAttempts)
			}
			break
		}
		base := Schedule[i-1]
		if d < base-base/10 || d > base+base/10 {
			t.Errorf("attempt %d waits %s, want %s ± 10%%", i, d, base)
		}
		total += d
	}
	if total < 60*time.Hour || total > 90*time.Hour {
		t.Errorf("the retries span %s, want about three days", total)
	}
	if _, ok := NextAttempt(0); ok {
		t.Error("attempt 0 has a next")
	}
}
