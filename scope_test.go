package gatehouse

import (
	"fmt"
	"strings"
	"testing"
)

func TestScopeNames(t *testing.T) {
	for _, ok := range []string{"a", "ops:admin", "chains.execute", "x_y-z", strings.Repeat("a", MaxScopeLen)} {
		if !ValidScopeName(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", " ", "a b", "a\r\nb", "é", "a\"b", "a/b", "a\x00", strings.Repeat("a", MaxScopeLen+1), strings.Repeat("a", 5000)} {
		if ValidScopeName(bad) {
			t.Errorf("%q accepted", bad)
		}
		if _, err := CheckScopes("scopes", []Scope{"ok", Scope(bad)}); ErrorCode(err) != EInvalidRequest {
			t.Errorf("CheckScopes(%q) = %v, want invalid_request", bad, err)
		}
		if bad != "" && bad != " " && bad != "a b" {
			if _, err := ParseScopeParam("scope", "ok "+bad); ErrorCode(err) != EInvalidRequest {
				t.Errorf("ParseScopeParam(%q) = %v, want invalid_request", bad, err)
			}
		}
	}
	got, err := CheckScopes("scopes", []Scope{"b", "a", "b", "c:read", "a"})
	if err != nil || got.String() != "a b c:read" {
		t.Fatalf("CheckScopes = %q, %v", got, err)
	}
	got, err = ParseScopeParam("scope", "  b a  b ")
	if err != nil || got.String() != "a b" {
		t.Fatalf("ParseScopeParam = %q, %v", got, err)
	}
}

// names returns n distinct valid scope names.
func names(n int) []Scope {
	out := make([]Scope, n)
	for i := range out {
		out[i] = Scope(fmt.Sprintf("s%07d", n-i))
	}
	return out
}

// TestScopeCountFirst: a list over MaxScopes is refused by its count
// before any name is looked at — a malformed name far down the list
// does not change the answer — and the parameter form stops reading at
// the first name past the cap.
func TestScopeCountFirst(t *testing.T) {
	list := names(100_000)
	list[50_000] = "not a scope"
	_, err := CheckScopes("scopes", list)
	if err == nil || !strings.Contains(ErrorMessage(err), "at most 100") {
		t.Fatalf("CheckScopes(100,000 names) = %v, want the count refused", err)
	}
	if _, err := CheckScopes("scopes", names(MaxScopes)); err != nil {
		t.Fatalf("CheckScopes(%d names) = %v", MaxScopes, err)
	}
	parts := make([]string, 100_000)
	for i, s := range names(100_000) {
		parts[i] = string(s)
	}
	parts[50_000] = "\x00bad"
	_, err = ParseScopeParam("scope", strings.Join(parts, " "))
	if err == nil || !strings.Contains(ErrorMessage(err), "at most 100") {
		t.Fatalf("ParseScopeParam(100,000 names) = %v, want the count refused", err)
	}
}

// TestNormalizeLinear: deduplicating a list costs O(n log n) comparisons,
// not O(n²): 100,000 names cost less than 400 times what 1,000 do (n log n
// gives about 170; a quadratic dedupe gives 10,000).
func TestNormalizeLinear(t *testing.T) {
	count := func(n int) int {
		c := 0
		in := names(n)
		in = append(in, in[:n/2]...) // duplicates
		out := normalizeScopes(in, func(a, b Scope) int { c++; return strings.Compare(string(a), string(b)) })
		if len(out) != n {
			t.Fatalf("normalize kept %d of %d distinct names", len(out), n)
		}
		return c
	}
	small, large := count(1_000), count(100_000)
	if ratio := float64(large) / float64(small); ratio > 400 {
		t.Fatalf("comparisons: %d for 1,000 names, %d for 100,000 (ratio %.0f): not linearithmic", small, large, ratio)
	}
}

func TestResourceKey(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"https://api.example.com", "https://api.example.com", true},
		{"https://API.example.com/", "https://api.example.com", true},
		{"HTTP://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/mcp", true},
		{"https://api.example.com/mcp#x", "", false},
		{"https://api.example.com/?q=1", "", false},
		{"/relative", "", false},
		{"urn:example:thing", "", false},
		{"ftp://example.com", "", false},
		{"https://user@example.com", "", false},
		{"", "", false},
	} {
		got, ok := ResourceKey(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ResourceKey(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
