package mfa

import "github.com/gatehouse/gatehouse/seal"

// NewSealer returns the sealer of TOTP secrets under the server key.
func NewSealer(serverKey []byte) *seal.Sealer { return seal.New(serverKey, "totp secrets") }
