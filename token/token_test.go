package token_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"strings"
	"sync"
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

// TestHintHidesTheSecret: a hint is the kind prefix and the first four
// characters of the body, and nothing more of the token.
func TestHintHidesTheSecret(t *testing.T) {
	for _, p := range prefixes {
		for i := 0; i < 100; i++ {
			s := token.New(p)
			if h, want := token.Hint(s), s[:len(p)+4]; h != want {
				t.Fatalf("Hint(%q) = %q, want %q", s, h, want)
			}
		}
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

// TestDigestIsHMAC pins the keyed digest to HMAC-SHA-256 and the plain one
// to SHA-256, for strings of every length up to past the pooled buffer's
// bound, from many goroutines at once: the pooled HMACs must never mix
// one string into another's digest.
func TestDigestIsHMAC(t *testing.T) {
	key := []byte("server key")
	keyed, plain := token.NewDigester(key), token.NewDigester(nil)
	want := func(k []byte, s string) string {
		if k == nil {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		}
		m := hmac.New(sha256.New, k)
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 1100 {
				s := strings.Repeat(string(rune('a'+g)), n%37) + strings.Repeat("x", n)
				if got := keyed.Digest(s); got != want(key, s) {
					t.Errorf("keyed digest of a %d-byte string: %s, want %s", len(s), got, want(key, s))
					return
				}
				if got := plain.Digest(s); got != want(nil, s) {
					t.Errorf("plain digest of a %d-byte string: %s", len(s), got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestParseDoesNotAllocate: Parse runs on every authenticated request.
func TestParseDoesNotAllocate(t *testing.T) {
	s := token.New(token.AccessToken)
	if n := testing.AllocsPerRun(100, func() { token.Parse(s) }); n != 0 {
		t.Fatalf("Parse allocates %v times", n)
	}
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// withChecksum appends to prefix and body the checksum of SPEC §2: their
// CRC-32 (IEEE) written as six base62 digits, most significant first.
func withChecksum(prefixAndBody string) string {
	sum := crc32.ChecksumIEEE([]byte(prefixAndBody))
	digits := make([]byte, 6)
	for i := range digits {
		digits[5-i] = alphabet[sum%62]
		sum /= 62
	}
	return prefixAndBody + string(digits)
}

// FuzzParse checks Parse against the token format, computed here
// independently of the package:
//   - a string Parse accepts is a known prefix, base62 characters and the
//     checksum of the rest, Len characters in all;
//   - a token built to the format from any body parses as its kind;
//   - changing any one character of a valid token makes it invalid.
func FuzzParse(f *testing.F) {
	for i, p := range prefixes {
		f.Add(token.New(p), uint8(i), uint8(i))
	}
	f.Add("", uint8(0), uint8(0))
	f.Add("gat_", uint8(1), uint8(61))
	f.Add(strings.Repeat("a", token.Len), uint8(2), uint8(255))
	f.Fuzz(func(t *testing.T, s string, kind, to uint8) {
		if p, ok := token.Parse(s); ok {
			if len(s) != token.Len || s[:4] != string(p) || strings.Trim(s[4:], alphabet) != "" || withChecksum(s[:token.Len-6]) != s {
				t.Fatalf("accepted %q as %q", s, p)
			}
			flipEach(t, s, to)
		}

		// A token built from s's bytes round-trips.
		p := prefixes[int(kind)%len(prefixes)]
		body := make([]byte, token.Len-len(p)-6)
		for i := range body {
			if i < len(s) {
				body[i] = alphabet[int(s[i])%len(alphabet)]
			} else {
				body[i] = alphabet[i%len(alphabet)]
			}
		}
		built := withChecksum(string(p) + string(body))
		if got, ok := token.Parse(built); !ok || got != p || !token.Valid(built, p) {
			t.Fatalf("Parse(%q) = %q, %v; want %q", built, got, ok, p)
		}
		flipEach(t, built, to)
	})
}

// flipEach checks that s with any one character replaced by another
// base62 character, chosen by to, does not parse.
func flipEach(t *testing.T, s string, to uint8) {
	t.Helper()
	for i := range len(s) {
		c := alphabet[int(to)%len(alphabet)]
		if c == s[i] {
			c = alphabet[(int(to)+1)%len(alphabet)]
		}
		flipped := s[:i] + string(c) + s[i+1:]
		if p, ok := token.Parse(flipped); ok {
			t.Fatalf("%q with character %d changed: %q accepted as %q", s, i, flipped, p)
		}
	}
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
