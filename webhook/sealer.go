package webhook

import "github.com/gatehouse/gatehouse/seal"

// NewSealer returns the sealer of endpoint signing secrets under the
// server key (the endpoint's id is each secret's owner).
func NewSealer(serverKey []byte) *seal.Sealer { return seal.New(serverKey, "webhook secrets") }
