package gatehouse

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// idEncoding is Crockford's base32 in lower case; its alphabet is in ASCII
// order, so ids sort by creation time.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns an opaque, time-ordered, unique id such as
// "usr_01jd3s5w6q7x8y9z0abcdefghj": 48 bits of milliseconds then 80 random
// bits. Ids are not secret.
func NewID(prefix string) string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	_, _ = rand.Read(b[6:])
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}
