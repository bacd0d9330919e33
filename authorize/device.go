package authorize

import (
	"crypto/rand"
	"strings"
	"time"
)

// The device authorization grant (RFC 8628, SPEC §10.4).
const (
	// DeviceCodeLifetime is how long a device code and its user code
	// work, by default.
	DeviceCodeLifetime = 600 * time.Second
	// DeviceInterval is how long a device waits between polls at first.
	DeviceInterval = 5 * time.Second
	// SlowDownStep is what each too-early poll adds to the interval
	// (RFC 8628 §3.5).
	SlowDownStep = 5 * time.Second
	// UserCodeAlphabet is the alphabet of user codes: consonants only, so
	// that no code spells a word and none is mistaken for a digit (RFC
	// 8628 §6.1).
	UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	// UserCodeLen is how many characters of UserCodeAlphabet a user code
	// has (20^8: about 34 bits).
	UserCodeLen = 8
	// DeviceGrantType is the grant type of the token endpoint.
	DeviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"
)

// NewUserCode returns a fresh user code, shown as XXXX-XXXX.
func NewUserCode() string {
	var b [UserCodeLen]byte
	n := 0
	for n < UserCodeLen {
		var rnd [16]byte
		_, _ = rand.Read(rnd[:])
		for _, c := range rnd {
			// 240 = 12*20: rejection sampling keeps every letter equally likely.
			if c < 240 && n < UserCodeLen {
				b[n] = UserCodeAlphabet[c%20]
				n++
			}
		}
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// NormalizeUserCode returns the user code a person typed in its canonical
// form (upper case, dash in the middle), ignoring case, spaces and
// dashes; ok is false when what is left is not UserCodeLen characters of
// UserCodeAlphabet.
func NormalizeUserCode(typed string) (code string, ok bool) {
	if len(typed) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(typed) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
		case r < 0x80 && strings.IndexByte(UserCodeAlphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	s := b.String()
	if len(s) != UserCodeLen {
		return "", false
	}
	return s[:4] + "-" + s[4:], true
}
