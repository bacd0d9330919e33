package mfa

import (
	"encoding/base32"
	"strings"
	"testing"
	"time"
)

// TestCodeRFC6238 checks the SHA-1 vectors of RFC 6238 Appendix B (their
// last six digits).
func TestCodeRFC6238(t *testing.T) {
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	} {
		if got := Code(secret, Step(time.Unix(tc.unix, 0))); got != tc.want {
			t.Errorf("at %d: code %q, want %q", tc.unix, got, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	secret := NewSecret()
	now := time.Unix(1_700_000_015, 0)
	cur := Step(now)
	for _, tc := range []struct {
		name string
		code string
		step int64
		ok   bool
	}{
		{"current", Code(secret, cur), cur, true},
		{"previous step", Code(secret, cur-1), cur - 1, true},
		{"next step", Code(secret, cur+1), cur + 1, true},
		{"with a space", Code(secret, cur)[:3] + " " + Code(secret, cur)[3:], cur, true},
		{"two steps ago", Code(secret, cur-2), 0, false},
		{"two steps ahead", Code(secret, cur+2), 0, false},
		{"five digits", Code(secret, cur)[:5], 0, false},
		{"letters", "abcdef", 0, false},
		{"empty", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "two steps ago" && (tc.code == Code(secret, cur) || tc.code == Code(secret, cur-1) || tc.code == Code(secret, cur+1)) {
				t.Skip("the random secret repeats a code across steps")
			}
			step, ok := Match(secret, tc.code, now)
			if ok != tc.ok || (ok && step != tc.step) {
				t.Fatalf("Match = %d, %v; want %d, %v", step, ok, tc.step, tc.ok)
			}
		})
	}
	if _, ok := Match("not base32!", "123456", now); ok {
		t.Fatal("a broken secret matched")
	}
}

func TestURI(t *testing.T) {
	u := URI("Gatehouse", "ann@example.com", "JBSWY3DPEHPK3PXP")
	for _, want := range []string{"otpauth://totp/Gatehouse:ann@example.com?", "secret=JBSWY3DPEHPK3PXP", "issuer=Gatehouse", "digits=6", "period=30", "algorithm=SHA1"} {
		if !strings.Contains(u, want) {
			t.Errorf("%s lacks %s", u, want)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes := NewRecoveryCodes()
	if len(codes) != RecoveryCodes {
		t.Fatalf("%d codes", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		n := NormalizeRecoveryCode(c)
		if n == "" || len(c) != 19 || seen[n] {
			t.Fatalf("code %q (normal %q) is malformed or repeated", c, n)
		}
		seen[n] = true
		if got := NormalizeRecoveryCode(" " + strings.ToLower(c) + " "); got != n {
			t.Fatalf("lower case %q normalises to %q, want %q", c, got, n)
		}
	}
	for _, bad := range []string{"", "ABCD", "ABCD-EFGH-JKMN-PQR!", "ABCD-EFGH-JKMN-PQRS-T", strings.Repeat("A", 100)} {
		if NormalizeRecoveryCode(bad) != "" {
			t.Errorf("%q was accepted", bad)
		}
	}
	if NormalizeRecoveryCode("O1IL-0000-0000-0000") != "0111000000000000" {
		t.Error("Crockford's look-alikes are not read as digits")
	}
}
