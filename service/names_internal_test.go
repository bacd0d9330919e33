package service

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestCheckNameRefusesControlCharacters: a name is one line of text: line
// breaks, tabs, NUL, DEL, terminal escapes and C1 controls are refused,
// naming the field; letters of any script, spaces inside and emoji are
// kept (trimmed at the ends).
func TestCheckNameRefusesControlCharacters(t *testing.T) {
	for _, bad := range []string{"a\nb", "a\rb", "a\x00b", "a\tb", "ci\x1b[31m", "a\x7fb", "a\u0085b", "a\u009bb"} {
		_, err := checkName("name", bad, 200, true)
		if field, _ := gatehouse.ErrorField(err); gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest || field != "name" {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for in, want := range map[string]string{"  deploy key ": "deploy key", "Зоя's token": "Зоя's token", "ci 🚀": "ci 🚀", "東京": "東京"} {
		got, err := checkName("name", in, 200, true)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
}
