package authorize

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func TestCheckRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/callback", true},
		{"https://app.example.com:8443/cb?x=1", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:51234/callback", true},
		{"http://[::1]:8080/cb", true},
		{"com.example.app:/oauth2redirect", true},
		{"com.example.app://callback", true},
		{"Com.Example.App:/cb", false},
		{"COM.EXAMPLE.APP:/cb", false},
		{"HTTPS://app.example.com/callback", false},
		{"Http://127.0.0.1/callback", false},
		{"http://localhost:8080/cb", false},
		{"http://app.example.com/cb", false},
		{"https://app.example.com/cb#frag", false},
		{"https://app.example.com/cb#", false},
		{"https://*.example.com/cb", false},
		{"https://user:pw@app.example.com/cb", false},
		{"https:///cb", false},
		{"/relative/cb", false},
		{"myapp:/cb", false},
		{"javascript:alert(1)", false},
		{"data:text/html,hi", false},
		{"https://app.example.com/c b", false},
		{"https://app.example.com/\u00e9", false},
		{"https://app.example.com\\@evil.com/", false},
		{"", false},
		{"https://a.example.com/" + strings.Repeat("a", 2000), false},
	} {
		err := CheckRedirectURI("redirect_uris", tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("CheckRedirectURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func TestMatchRedirectURI(t *testing.T) {
	reg := []string{"https://app.example.com/callback", "http://127.0.0.1/cb", "http://[::1]:9000/cb", "https://app.example.com:8443/x"}
	for _, tc := range []struct {
		got string
		ok  bool
	}{
		{"https://app.example.com/callback", true},
		{"https://app.example.com/callbacK", false},
		{"https://app.example.com/callback/", false},
		{"https://app.example.com/callbac", false},
		{"https://app.example.com/callback?x=1", false},
		{"https://app.example.com/callback#x", false},
		{"https://APP.example.com/callback", false},
		{"https://app.example.com:443/callback", false},
		{"https://app.example.com:8444/x", false},
		{"https://app.example.com.evil.com/callback", false},
		{"https://evil.com/?https://app.example.com/callback", false},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:51000/cb", true},
		{"http://127.0.0.1:51000/cb/", false},
		{"http://127.0.0.1:51000/cb#f", false},
		{"http://[::1]:1234/cb", true},
		{"http://[::1]/cb", true},
		{"http://127.0.0.1:51000/other", false},
		{"http://localhost:51000/cb", false},
		{"http://127.0.0.2/cb", false},
		{"", false},
	} {
		if got := MatchRedirectURI(reg, tc.got); got != tc.ok {
			t.Errorf("MatchRedirectURI(%q) = %v, want %v", tc.got, got, tc.ok)
		}
	}
}

func TestPKCE(t *testing.T) {
	// The challenge agrees with golang.org/x/oauth2's.
	rfcV := oauth2.GenerateVerifier()
	rfcC := oauth2.S256ChallengeFromVerifier(rfcV)
	if Challenge(rfcV) != rfcC {
		t.Fatalf("Challenge = %s, want %s", Challenge(rfcV), rfcC)
	}
	if !VerifyPKCE(rfcV, rfcC) {
		t.Error("x/oauth2's verifier is refused")
	}
	other := strings.Repeat("a", 43)
	for name, tc := range map[string]struct{ v, c string }{
		"verifier of another challenge": {other, rfcC},
		"no challenge (downgrade)":      {rfcV, ""},
		"no verifier":                   {"", rfcC},
		"plain: verifier as challenge":  {rfcC, rfcC},
		"short verifier":                {rfcV[:42], Challenge(rfcV[:42])},
		"long verifier":                 {strings.Repeat("a", 129), Challenge(strings.Repeat("a", 129))},
		"bad character":                 {strings.Repeat("a", 42) + "+", Challenge(strings.Repeat("a", 42) + "+")},
	} {
		if VerifyPKCE(tc.v, tc.c) {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, tc := range map[string]struct {
		c, m string
		ok   bool
	}{
		"s256":           {rfcC, "S256", true},
		"plain":          {rfcC, "plain", false},
		"no method":      {rfcC, "", false},
		"lower case":     {rfcC, "s256", false},
		"no challenge":   {"", "S256", false},
		"short":          {rfcC[:42], "S256", false},
		"not base64url":  {strings.Repeat("+", 43), "S256", false},
		"verifier-sized": {strings.Repeat("a", 64), "S256", false},
	} {
		if err := CheckChallenge(tc.c, tc.m); (err == nil) != tc.ok {
			t.Errorf("%s: CheckChallenge = %v, want ok=%v", name, err, tc.ok)
		}
	}
}

func TestRedirectKeepsQueryAndAddsIss(t *testing.T) {
	got := Redirect("https://app.example.com/cb?keep=1", url.Values{"code": {"c"}, "state": {"s&x"}, "iss": {"https://gh.example"}, "empty": {""}})
	u, _ := url.Parse(got)
	q := u.Query()
	if q.Get("keep") != "1" || q.Get("code") != "c" || q.Get("state") != "s&x" || q.Get("iss") != "https://gh.example" || q.Has("empty") {
		t.Fatalf("Redirect = %s", got)
	}
}

func TestUserCode(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := NewUserCode()
		if len(c) != 9 || c[4] != '-' {
			t.Fatalf("user code %q", c)
		}
		for i, r := range c {
			if i != 4 && !strings.ContainsRune(UserCodeAlphabet, r) {
				t.Fatalf("user code %q has %q", c, r)
			}
		}
		if n, ok := NormalizeUserCode(strings.ToLower(strings.ReplaceAll(c, "-", " "))); !ok || n != c {
			t.Fatalf("normalize %q: %q %v", c, n, ok)
		}
		seen[c] = true
	}
	if len(seen) < 990 {
		t.Fatalf("only %d distinct codes of 1000", len(seen))
	}
	for _, bad := range []string{"", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "ВCDF-GHJK", strings.Repeat("B", 100)} {
		if _, ok := NormalizeUserCode(bad); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
}
