package identity

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse/password"
)

// MinPasswordChars is the fewest characters a new password may have,
// counted after Unicode normalisation (NFC): "🔑🔑" is two characters,
// an "é" written as "e" and a combining accent is one.
const MinPasswordChars = 8

//go:embed common-passwords.txt.gz
var commonGz []byte

// common returns the set of common passwords (see
// common-passwords.README.md), read from the embedded list the first time
// it is needed.
var common = sync.OnceValue(func() map[string]struct{} {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		panic("identity: the embedded common-password list is damaged: " + err.Error())
	}
	set := make(map[string]struct{}, 20000)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := passwordKey(sc.Text()); w != "" {
			set[w] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		panic("identity: the embedded common-password list is damaged: " + err.Error())
	}
	return set
})

// CommonPasswords returns how many passwords the common-password list
// holds.
func CommonPasswords() int { return len(common()) }

// passwordKey is the form in which a password is compared with the common
// list: compatibility-normalised (NFKC, so full-width "ｐａｓｓ" is
// "pass"), trimmed and lower-cased.
func passwordKey(pw string) string {
	return strings.ToLower(strings.TrimSpace(norm.NFKC.String(pw)))
}

// CheckPassword returns a *Refusal naming the rule when pw may not be a
// new password: at most password.MaxLen bytes, as written and in NFC (what
// hashing takes, which a few characters make longer), at least
// MinPasswordChars characters after NFC normalisation, not one character
// repeated, and not on the list of the 20,000 most common passwords
// (compared without case, surrounding spaces or compatibility
// differences).
func CheckPassword(pw string) error {
	tooLong := &Refusal{fmt.Sprintf("password must be at most %d bytes", password.MaxLen),
		fmt.Sprintf("Use at most %d bytes.", password.MaxLen)}
	if len(pw) > password.MaxLen {
		return tooLong
	}
	nfc := norm.NFC.String(pw)
	if len(nfc) > password.MaxLen {
		return tooLong
	}
	if utf8.RuneCountInString(nfc) < MinPasswordChars {
		return &Refusal{fmt.Sprintf("password must be at least %d characters (counted after Unicode normalisation)", MinPasswordChars),
			fmt.Sprintf("Use at least %d characters.", MinPasswordChars)}
	}
	if first, _ := utf8.DecodeRuneInString(nfc); strings.Trim(nfc, string(first)) == "" {
		return &Refusal{"password must not be one character repeated", "Do not repeat a single character."}
	}
	if _, ok := common()[passwordKey(pw)]; ok {
		return &Refusal{"password is on the list of common passwords; choose one that is not",
			"This is one of the most common passwords; choose another."}
	}
	return nil
}
