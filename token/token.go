// Package token makes and checks Gatehouse's secret strings (SPEC §2): a
// fixed prefix per kind, 43 base62 characters from crypto/rand (at least 256
// bits), and a 6-character base62 checksum, so that leaked secrets are easy
// to recognise and garbage is rejected without a store look-up. It also
// digests token strings for storage: only digests are ever stored.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"strings"
	"sync"
)

// Prefix identifies the kind of a token string.
type Prefix string

// The token prefixes.
const (
	AccessToken  Prefix = "gat_"
	RefreshToken Prefix = "grt_"
	APIToken     Prefix = "gak_"
	ClientSecret Prefix = "gcs_"
	ClientID     Prefix = "gci_"
	// Session is the admin UI's session cookie value.
	Session Prefix = "gse_"
	// AuthCode is an authorization code (SPEC §10.3).
	AuthCode Prefix = "gac_"
	// DeviceCode is a device code of the device authorization grant
	// (RFC 8628).
	DeviceCode Prefix = "gdc_"
)

const (
	alphabet    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	prefixLen   = 4
	bodyLen     = 43 // 43 * log2(62) = 256.03 bits
	checksumLen = 6  // 62^6 > 2^32
	// Len is the length of every token string.
	Len = prefixLen + bodyLen + checksumLen
)

var prefixes = []Prefix{AccessToken, RefreshToken, APIToken, ClientSecret, ClientID, Session, AuthCode, DeviceCode}

// New returns a fresh token string of the given kind. It panics only if the
// system's random source fails, which crypto/rand documents never happens.
func New(p Prefix) string {
	var b [Len]byte
	copy(b[:], p)
	fill(b[prefixLen : prefixLen+bodyLen])
	sum := checksum(string(b[:prefixLen+bodyLen]))
	copy(b[prefixLen+bodyLen:], sum[:])
	return string(b[:])
}

// fill writes random base62 symbols into body.
func fill(body []byte) {
	var rnd [64]byte
	n := 0
	for n < len(body) {
		_, _ = rand.Read(rnd[:])
		for _, c := range rnd {
			// 248 = 4*62: rejection sampling keeps every symbol equally likely.
			if c < 248 && n < len(body) {
				body[n] = alphabet[c%62]
				n++
			}
		}
	}
}

// checksum returns the checksum of a token's prefix and body: their CRC-32
// (IEEE) in checksumLen base62 digits, most significant first. It reads
// the string itself, so that Parse can check a string without copying it.
func checksum(data string) [checksumLen]byte {
	crc := ^uint32(0)
	// Eight bytes a step (slicing-by-8), then the rest one by one.
	for len(data) >= 8 {
		crc ^= uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		crc = crcTables[7][crc&0xff] ^ crcTables[6][crc>>8&0xff] ^ crcTables[5][crc>>16&0xff] ^ crcTables[4][crc>>24] ^
			crcTables[3][data[4]] ^ crcTables[2][data[5]] ^ crcTables[1][data[6]] ^ crcTables[0][data[7]]
		data = data[8:]
	}
	for i := 0; i < len(data); i++ {
		crc = crcTables[0][byte(crc)^data[i]] ^ crc>>8
	}
	sum := ^crc
	var digits [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		digits[i] = alphabet[sum%62]
		sum /= 62
	}
	return digits
}

// crcTables are the slicing-by-8 tables of CRC-32 (IEEE): crcTables[0] is
// the byte-wise table, crcTables[k][b] the CRC of b followed by k zero
// bytes.
var crcTables = func() (t [8][256]uint32) {
	t[0] = *crc32.IEEETable
	for b := range 256 {
		c := t[0][b]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][b] = c
		}
	}
	return t
}()

// Parse reports the kind of s if s is a well-formed token string: a known
// prefix — a kind's own (gat_ …) or a deployment's (acme_at_ …, see
// NewWith) —, the exact length, the base62 alphabet and a matching
// checksum. It makes no store look-up and does not allocate.
func Parse(s string) (Prefix, bool) {
	if len(s) != Len {
		return parseDeployment(s)
	}
	var p Prefix
	for _, known := range prefixes {
		if s[:prefixLen] == string(known) {
			p = known
			break
		}
	}
	if p == "" {
		return "", false
	}
	for i := prefixLen; i < Len; i++ {
		if !isBase62(s[i]) {
			return "", false
		}
	}
	if want := checksum(s[:prefixLen+bodyLen]); string(want[:]) != s[prefixLen+bodyLen:] {
		return "", false
	}
	return p, true
}

// Valid reports whether s is a well-formed token string of kind p.
func Valid(s string, p Prefix) bool {
	got, ok := Parse(s)
	return ok && got == p
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// hintLen is how many characters of the random body a hint shows: 4 of 43,
// about 24 of the 256 bits.
const hintLen = 4

// Hint returns a short, non-secret prefix of s for display in lists: the
// kind prefix and the first four characters of the body, such as
// "gak_Ab3x" or "acme_ak_Ab3x". A string too short to be a token is
// returned as it is.
func Hint(s string) string {
	if len(s) > Len && len(s) >= bodyLen+checksumLen {
		return s[:len(s)-bodyLen-checksumLen+hintLen]
	}
	if len(s) < prefixLen+hintLen {
		return s
	}
	return s[:prefixLen+hintLen]
}

// Digester turns token strings into the digests the store keeps: HMAC-SHA-256
// under a server key, or plain SHA-256 when the key is empty. The zero value
// uses plain SHA-256. It is safe for concurrent use.
type Digester struct {
	key []byte
	// macs holds keyed HMACs ready for reuse (*keyedMAC), so that a digest
	// costs neither the key schedule nor an allocation.
	macs sync.Pool
}

// keyedMAC is an HMAC under the Digester's key with scratch buffers for
// the message and the sum.
type keyedMAC struct {
	mac      hash.Hash
	buf, sum []byte
}

// NewDigester returns a Digester keyed with key (which may be empty).
func NewDigester(key []byte) *Digester {
	d := &Digester{key: append([]byte(nil), key...)}
	d.macs.New = func() any { return &keyedMAC{mac: hmac.New(sha256.New, d.key)} }
	return d
}

// Digest returns the lower-case hex digest of s.
func (d *Digester) Digest(s string) string {
	var out [2 * sha256.Size]byte
	if d == nil || len(d.key) == 0 {
		// A token fits the stack buffer, so hashing it allocates nothing.
		var buf [128]byte
		msg := append(buf[:0], s...)
		sum := sha256.Sum256(msg)
		clear(msg)
		hex.Encode(out[:], sum[:])
		return string(out[:])
	}
	m := d.macs.Get().(*keyedMAC)
	m.buf = append(m.buf[:0], s...)
	m.mac.Reset()
	m.mac.Write(m.buf)
	m.sum = m.mac.Sum(m.sum[:0])
	clear(m.buf) // the message is a secret: not kept in the pool
	hex.Encode(out[:], m.sum)
	if cap(m.buf) <= maxPooledMessage {
		d.macs.Put(m)
	}
	return string(out[:])
}

// maxPooledMessage bounds the scratch buffer a pooled HMAC keeps: a token
// is well under it, and a huge string handed in is not kept.
const maxPooledMessage = 1024

// Equal compares a token string with a stored digest in constant time.
func (d *Digester) Equal(s, digest string) bool {
	return hmac.Equal([]byte(d.Digest(s)), []byte(strings.ToLower(digest)))
}
