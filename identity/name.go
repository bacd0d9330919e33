package identity

import (
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// NameKey is the one form in which two names of credentials are compared
// for uniqueness ("unique in any case"): compatibility characters composed
// (NFKC: a fullwidth "Ｆｕｌｌ" is "Full", a no-break space a space),
// invisible characters dropped (a zero-width space, a direction mark),
// then Unicode case folded in full, not ASCII only ("ΔΈΛΤΑ" is "δέλτα",
// the Kelvin sign a "k", "ß" "ss", a capital dotted "İ" an "i"), and
// composed again. It does not depend on a database's collation, so both
// stores judge a name alike.
func NameKey(name string) string {
	s := strings.Map(func(r rune) rune {
		if invisible(r) && r != ' ' {
			return -1
		}
		return r
	}, norm.NFKC.String(name))
	// Full folding keeps the dot of "İ" as a combining mark after its "i".
	return norm.NFKC.String(strings.ReplaceAll(cases.Fold().String(s), "i\u0307", "i"))
}
