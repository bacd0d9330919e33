package identity

import (
	"sort"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// scriptNames are the scripts a letter may belong to, in a fixed order;
// Common and Inherited (digits, punctuation, combining marks) belong to
// none.
var scriptNames = func() []string {
	var out []string
	for name := range unicode.Scripts {
		if name != "Common" && name != "Inherited" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}()

// scriptOf returns the script of r, or "" for Common and Inherited.
func scriptOf(r rune) string {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		return "Latin"
	case r < 0x80:
		return ""
	}
	for _, name := range scriptNames {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	return ""
}

// mixes are the sets of scripts one part of an address may combine
// (Unicode TS #39's "highly restrictive" level): Japanese, Chinese with
// Bopomofo and Korean writing, each with Latin.
var mixes = []map[string]bool{
	{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
	{"Latin": true, "Han": true, "Bopomofo": true},
	{"Latin": true, "Han": true, "Hangul": true},
}

// mixedScripts reports whether part holds letters of scripts that no
// single writing system combines (a Cyrillic "а" among Latin letters).
func mixedScripts(part string) bool {
	seen := map[string]bool{}
	for _, r := range part {
		if s := scriptOf(r); s != "" {
			seen[s] = true
		}
	}
	if len(seen) <= 1 {
		return false
	}
	for _, m := range mixes {
		all := true
		for s := range seen {
			all = all && m[s]
		}
		if all {
			return false
		}
	}
	return true
}

// invisible reports whether r is drawn as nothing or changes how what
// surrounds it is drawn: format characters (zero-width spaces and joiners,
// bidirectional controls, the soft hyphen, the byte-order mark), other
// default-ignorable code points, variation selectors, controls and
// spaces other than the ASCII one.
func invisible(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Variation_Selector, r) || unicode.IsControl(r) ||
		(unicode.IsSpace(r) && r != ' ')
}

// CheckEmail returns a *Refusal naming the rule when addr could pass for
// another address: it holds an invisible or format character, it is not
// in Unicode normal form C (an accent written as a separate combining
// mark) or KC (a fullwidth or other compatibility character), it holds a
// full stop IDNA reads as a dot, or its local part or a label of its
// domain mixes scripts. addr
// is otherwise assumed to be a plain address already (the caller parses
// it).
func CheckEmail(addr string) error {
	for _, r := range addr {
		if invisible(r) {
			return &Refusal{"email must not contain invisible or formatting characters (such as a zero-width space or a direction mark)",
				"Remove the invisible characters from this address."}
		}
	}
	if !norm.NFC.IsNormalString(addr) {
		return &Refusal{"email must be in Unicode normal form C (accents composed with their letters)",
			"Type the accented letters of this address directly."}
	}
	if !norm.NFKC.IsNormalString(addr) {
		// Fullwidth letters, ligatures, circled or superscript forms:
		// each stands for a plain character it is not.
		return &Refusal{"email must not contain fullwidth or other compatibility characters (such as a fullwidth ａ)",
			"Type this address with ordinary letters and digits."}
	}
	if strings.ContainsAny(addr, "。．｡") {
		// Read as a dot by IDNA: admin@example.com。 would pass for
		// admin@example.com.
		return &Refusal{"email must not contain ideographic or fullwidth full stops",
			"Type the dots of this address as an ordinary full stop (.)."}
	}
	at := strings.LastIndexByte(addr, '@')
	parts := []string{addr[:max(at, 0)]}
	parts = append(parts, strings.Split(addr[at+1:], ".")...)
	for _, p := range parts {
		if mixedScripts(p) {
			return &Refusal{"email must not mix scripts within one part (such as a Cyrillic letter among Latin ones)",
				"This address mixes alphabets (for example a Cyrillic letter among Latin ones); type it again."}
		}
	}
	return nil
}
