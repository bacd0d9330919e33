// Package sso is the relying party of OpenID Connect single sign-on to the
// console (SPEC §10.6): an account's provider is found by discovery, the
// browser is sent to it with the authorization code flow, PKCE (S256), a
// state and a nonce, and the ID token that comes back is verified by
// go-oidc (signature, issuer, audience, expiry) before the nonce, the
// e-mail address, its verification and its domain are checked here.
//
// The package holds no state but a short cache of discovered providers;
// what a sign-in under way is, and who it signs in, is service/sso.go's.
package sso
