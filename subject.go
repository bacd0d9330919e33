package gatehouse

import "strconv"

// Subjects name what a revoking change affects, so that a node drops only
// the cached look-ups that rest on it: a principal rests on its account,
// its user, the credential it came through and its token family. A change
// that cannot be named so narrowly names SubjectAll.
const (
	// SubjectAll is every cached look-up.
	SubjectAll = "*"
)

// AccountSubject names everything of an account (its settings, its API
// tokens and what was minted through them).
func AccountSubject(id string) string { return "a:" + id }

// UserSubject names everything a user acts through: their tokens,
// sessions, client credentials and API access application.
func UserSubject(id string) string { return "u:" + id }

// CredentialSubject names one token, API token or session by its id.
func CredentialSubject(id string) string { return "c:" + id }

// ClientSubject names one client credential by its client id: the
// credential itself and the tokens it obtained.
func ClientSubject(clientID string) string { return "k:" + clientID }

// FamilySubject names a refresh lineage.
func FamilySubject(id string) string { return "f:" + id }

// subjectSlots is how many slots SubjectSlot spreads subjects over.
const subjectSlots = 1 << 20

// SubjectSlot returns the slot of a subject as every node of a cluster
// names it (FNV-1a): the cluster's doorbell says which slots a revocation
// touched, so that a request resting on none of them need not wait for
// its node to read the revocation log.
func SubjectSlot(subject string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(subject); i++ {
		h = (h ^ uint32(subject[i])) * 16777619
	}
	return h % subjectSlots
}

// SubjectSlots returns subjects' slots as the cluster's doorbell writes
// them: comma-separated, with a comma before and after ("*" when one of
// them is SubjectAll; empty subjects are skipped).
func SubjectSlots(subjects ...string) string {
	b := []byte{','}
	for _, s := range subjects {
		if s == SubjectAll {
			return SubjectAll
		}
		if s != "" {
			b = strconv.AppendUint(b, uint64(SubjectSlot(s)), 10)
			b = append(b, ',')
		}
	}
	return string(b)
}
