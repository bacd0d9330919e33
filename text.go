package gatehouse

import "strconv"

// LoneSurrogate reports whether the JSON text b escapes half of a UTF-16
// surrogate pair on its own (\ud800 without a low half after it, or a low
// half alone), which is no character: decoders replace it (encoding/json with
// U+FFFD), or fail. The request decoders refuse such a text, so that no
// value is stored other than as written (httpx.DecodeJSON, plan
// metadata).
func LoneSurrogate(b []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		if !ok {
			i++ // another escape: skip its character
			continue
		}
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r <= 0xdbff:
			low, ok := hex4(i + 6)
			if !ok || low < 0xdc00 || low > 0xdfff {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}
