package token_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/token"
)

var prefixes = []token.Prefix{token.AccessToken, token.RefreshToken, token.APIToken, token.ClientSecret, token.ClientID, token.Session}

func TestNewAndParse(t *testing.T) {
	for _, p := range prefixes {
		s := token.New(p)
		if len(s) != token.Len || !strings.HasPrefix(s, string(p)) {
			t.Fatalf("%s: %q", p, s)
		}
		got, ok := token.Parse(s)
		if !ok || got != p || !token.Valid(s, p) {
			t.Fatalf("%s: Parse(%q) = %q %v", p, s, got, ok)
		}
		if token.Valid(s, token.AccessToken) != (p == token.AccessToken) {
			t.Fatalf("%s valid as an access token", p)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := token.New(token.AccessToken)
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":             "",
		"prefix only":       "gat_",
		"unknown prefix":    "gxx_" + good[4:],
		"truncated":         good[:len(good)-1],
		"extended":          good + "a",
		"body changed":      flip(10),
		"checksum changed":  flip(len(good) - 1),
		"non-base62":        good[:10] + "-" + good[11:],
		"multibyte":         good[:10] + "é" + good[12:],
		"upper-case prefix": "GAT_" + good[4:],
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if _, ok := token.Parse(s); ok {
				t.Fatalf("accepted %q", s)
			}
		})
	}
}

func TestUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		s := token.New(token.APIToken)
		if seen[s] {
			t.Fatal("duplicate token")
		}
		seen[s] = true
	}
}

func TestHintHidesTheSecret(t *testing.T) {
	s := token.New(token.APIToken)
	h := token.Hint(s)
	if h == "" || strings.Contains(h, s[4:20]) || len(h) >= len(s)/2 {
		t.Fatalf("hint %q of %q", h, s)
	}
}

func TestDigester(t *testing.T) {
	s := token.New(token.AccessToken)
	plain, keyed, other := token.NewDigester(nil), token.NewDigester([]byte("k1")), token.NewDigester([]byte("k2"))
	if plain.Digest(s) != plain.Digest(s) || len(plain.Digest(s)) != 64 {
		t.Fatal("digest not deterministic hex SHA-256")
	}
	if plain.Digest(s) == keyed.Digest(s) || keyed.Digest(s) == other.Digest(s) {
		t.Fatal("keys make no difference")
	}
	if strings.Contains(plain.Digest(s), s[4:]) {
		t.Fatal("digest holds the secret")
	}
	if !keyed.Equal(s, keyed.Digest(s)) || keyed.Equal(s, other.Digest(s)) || keyed.Equal(token.New(token.AccessToken), keyed.Digest(s)) {
		t.Fatal("Equal wrong")
	}
}

// FuzzParse: Parse never panics, and accepts only strings of the right
// length with a known prefix.
func FuzzParse(f *testing.F) {
	for _, p := range prefixes {
		f.Add(token.New(p))
	}
	f.Add("")
	f.Add("gat_")
	f.Add(strings.Repeat("a", token.Len))
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := token.Parse(s)
		if !ok {
			return
		}
		if len(s) != token.Len || !strings.HasPrefix(s, string(p)) {
			t.Fatalf("accepted %q as %q", s, p)
		}
	})
}

var sink string

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = token.New(token.AccessToken)
	}
}

func BenchmarkParse(b *testing.B) {
	s := token.New(token.AccessToken)
	b.ReportAllocs()
	for b.Loop() {
		token.Parse(s)
	}
}

func BenchmarkDigest(b *testing.B) {
	s, d := token.New(token.AccessToken), token.NewDigester([]byte("key"))
	b.ReportAllocs()
	for b.Loop() {
		sink = d.Digest(s)
	}
}
