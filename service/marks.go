package service

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/gatehouse/gatehouse"
)

// markSlots is how many slots marks keeps: subjects share a slot by hash,
// so a revocation may also drop look-ups of another subject of its slot —
// never keep one of its own.
const markSlots = 1 << 14

// maxTags is the most subjects one cached look-up rests on (a principal:
// its account, user, credential, client and token family).
const maxTags = 5

// marks records, per subject, when it was last revoked on this node: a
// tick of its own clock, which advances with every revocation applied. A
// cached look-up remembers the tick read before its value was read from
// the store and the slots of the subjects it rests on (tags), and is used
// only while none of those slots was marked after that tick. So revoking a
// user's credential drops that user's look-ups, not every node's whole
// cache. Safe for concurrent use.
type marks struct {
	tick atomic.Uint64
	slot [markSlots]atomic.Uint64
	seed maphash.Seed
}

func newMarks() *marks { return &marks{seed: maphash.MakeSeed()} }

// tags are what a cached entry rests on: the marks' tick before its value
// was read, and its subjects' slots.
type tags struct {
	at    uint64
	n     uint8
	slots [maxTags]uint16
}

// now returns the tick to record before a look-up reads the store.
func (m *marks) now() uint64 { return m.tick.Load() }

func (m *marks) index(subject string) uint16 {
	return uint16(maphash.String(m.seed, subject) % markSlots)
}

// tagged returns the tags of a value read after tick at that rests on
// subjects (at most maxTags; empty ones are skipped).
func (m *marks) tagged(at uint64, subjects ...string) tags {
	t := tags{at: at}
	for _, s := range subjects {
		if s != "" && int(t.n) < maxTags {
			t.slots[t.n] = m.index(s)
			t.n++
		}
	}
	return t
}

// clean reports whether no subject of t was revoked after t.at.
func (m *marks) clean(t tags) bool {
	for _, i := range t.slots[:t.n] {
		if m.slot[i].Load() > t.at {
			return false
		}
	}
	return true
}

// revoke marks subjects revoked now: every entry tagged with one of them
// and read before this call is no longer clean. SubjectAll is not handled
// here (see generations.advance).
func (m *marks) revoke(subjects []string) {
	t := m.tick.Add(1)
	for _, s := range subjects {
		sl := &m.slot[m.index(s)]
		for {
			v := sl.Load()
			if v >= t || sl.CompareAndSwap(v, t) {
				break
			}
		}
	}
}

// principalSubjects names what a cached principal rests on: its account,
// its user ("u:" alone for none, as a credential owned by no user names
// it), the credential it came through, the client behind it and, for a
// token, its family.
func principalSubjects(p *gatehouse.Principal, family string) [maxTags]string {
	var f, k string
	if family != "" {
		f = gatehouse.FamilySubject(family)
	}
	if p.ClientID != "" {
		k = gatehouse.ClientSubject(p.ClientID)
	}
	return [maxTags]string{gatehouse.AccountSubject(p.AccountID), gatehouse.UserSubject(p.UserID()), gatehouse.CredentialSubject(p.CredentialID), k, f}
}
