package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/password"
)

func TestCommonListIsBundled(t *testing.T) {
	if n := CommonPasswords(); n < 10000 {
		t.Fatalf("the common-password list holds %d passwords, want at least 10,000", n)
	}
}

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		pw   string
		rule string // a word of the rule, "" for accepted
	}{
		{"correct horse battery staple", ""},
		{"member password 1", ""},
		{"Zq7!vB2#", ""},
		{"日本語のパスワード", ""},                              // 9 characters in 27 bytes
		{"🔑🔑", "at least 8"},                           // 8 bytes, 2 characters
		{"éééé", "at least 8"},                         // 8 bytes, 4 characters
		{"e\u0301e\u0301e\u0301e\u0301", "at least 8"}, // 8 code points, 4 characters once normalised
		{"short", "at least 8"},
		{"Zx9!" + strings.Repeat("\u0958\u0959", 170), "at most"}, // 1024 bytes, 2044 once in NFC
		{"        ", "one character"},
		{"zzzzzzzzzzzz", "one character"},
		{"password", "common"},
		{"12345678", "common"},
		{"PassWord1", "common"},
		{"  password1  ", "common"},
		{"ｐａｓｓｗｏｒｄ", "common"}, // full-width
		{"qwertyuiop", "common"},
		{"iloveyou", "common"},
		{strings.Repeat("ab", password.MaxLen/2+1), "at most"},
	} {
		err := CheckPassword(c.pw)
		var r *Refusal
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%q refused: %v", c.pw, err)
		case c.rule != "" && (!errors.As(err, &r) || !strings.Contains(r.Rule, c.rule) || r.Hint == ""):
			t.Errorf("%q: %v, want the rule %q", c.pw, err, c.rule)
		}
	}
}

func TestCheckEmail(t *testing.T) {
	for _, c := range []struct {
		addr string
		rule string
	}{
		{"ann@example.com", ""},
		{"ann.o-brien+tag@mail.example.co.uk", ""},
		{"rené@example.com", ""},
		{"иван@пример.рф", ""},      // Cyrillic throughout
		{"ivan@пример.example", ""}, // each label one script
		{"田中たなか@example.jp", ""},    // Han with Hiragana: Japanese
		{"ann\u200b@example.com", "invisible"},
		{"an\u200dn@example.com", "invisible"},
		{"ann@exa\u202emple.com", "invisible"},
		{"ann\u00ad@example.com", "invisible"},
		{"\ufeffann@example.com", "invisible"},
		{"ann\ufe0f@example.com", "invisible"},
		{"\u0430nn@example.com", "mix scripts"},     // Cyrillic а among Latin
		{"ann@ex\u0430mple.com", "mix scripts"},     // in the domain
		{"ann@example.c\u03bfm", "mix scripts"},     // Greek ο
		{"rene\u0301@example.com", "normal form"},   // a combining accent
		{"\uff41dmin@example.com", "compatibility"}, // a fullwidth a
		{"ad\ufb01n@example.com", "compatibility"},  // the fi ligature
		{"admin@example.com\u3002", "full stop"},    // an ideographic full stop
		{"admin@example\uff0ecom", "compatibility"}, // a fullwidth full stop
		{"adm\u0131n@example.com", ""},              // a dotless ı is a Latin letter
	} {
		err := CheckEmail(c.addr)
		var r *Refusal
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%q refused: %v", c.addr, err)
		case c.rule != "" && (!errors.As(err, &r) || !strings.Contains(r.Rule, c.rule) || r.Hint == ""):
			t.Errorf("%q: %v, want the rule %q", c.addr, err, c.rule)
		}
	}
}

func TestNameKey(t *testing.T) {
	same := [][2]string{
		{"Zapier", "zapier"},
		{"Δέλτα", "ΔΈΛΤΑ"},
		{"Kelvin", "\u212aelvin"}, // KELVIN SIGN
		{"Straße", "STRASSE"},
		{"Ärger", "äRGER"},
		{"Full", "Ｆｕｌｌ"},
		{"Hidden", "Hid\u200bden"},
		{"Café", "Cafe\u0301"},
		{"ci deploy", "ci\u00a0deploy"},
		{"İSTANBUL", "istanbul"},
	}
	for _, p := range same {
		if NameKey(p[0]) != NameKey(p[1]) {
			t.Errorf("NameKey(%q) = %q, NameKey(%q) = %q: want one name", p[0], NameKey(p[0]), p[1], NameKey(p[1]))
		}
	}
	different := [][2]string{
		{"ci deploy", "cideploy"},
		{"token 1", "token 2"},
		{"istanbul", "ıstanbul"}, // dotless i is a letter of its own
	}
	for _, p := range different {
		if NameKey(p[0]) == NameKey(p[1]) {
			t.Errorf("NameKey(%q) = NameKey(%q) = %q: want two names", p[0], p[1], NameKey(p[0]))
		}
	}
}
