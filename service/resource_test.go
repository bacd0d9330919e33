package service

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestBindResource: a bound grant keeps its resource and refuses another;
// an unbound one takes the request's; neither binds nothing.
func TestBindResource(t *testing.T) {
	const a, b = "https://a.example.com", "https://b.example.com/mcp"
	for _, tc := range []struct {
		granted, asked, want string
		refused              bool
	}{
		{"", "", "", false},
		{"", a, a, false},
		{a, "", a, false},
		{a, a, a, false},
		{a, b, "", true},
	} {
		got, err := BindResource(tc.granted, tc.asked)
		if got != tc.want || (err != nil) != tc.refused || (err != nil && gatehouse.ErrorCode(err) != gatehouse.EInvalidTarget) {
			t.Errorf("BindResource(%q, %q) = %q, %v", tc.granted, tc.asked, got, err)
		}
	}
	if _, err := resourceParam("https://a.example.com/#f"); gatehouse.ErrorCode(err) != gatehouse.EInvalidTarget {
		t.Errorf("a fragment: %v", err)
	}
}
