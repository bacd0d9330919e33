// The authorization code flow of Gatehouse with oauth4webapi: discovery,
// the authorization URL (state, PKCE S256), the callback's state and iss,
// the exchange, /v1/me, a refresh, and the code used again. JSON lines on
// stdout: {"authorize": URL}, then, once the callback URL the browser was
// sent to is written on stdin, {"result": {…}}. e2e/apps_node_test.go
// drives headless Chromium between the two.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET (empty for a public
// client), REDIRECT_URI, SCOPE.
import readline from 'node:readline'
import * as oauth from 'oauth4webapi'

const env = process.env
const out = (v) => console.log(JSON.stringify(v))
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const insecure = { [oauth.allowInsecureRequests]: true }
const issuer = new URL(env.ISSUER)
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
const client = { client_id: env.CLIENT_ID }
const auth = env.CLIENT_SECRET ? oauth.ClientSecretBasic(env.CLIENT_SECRET) : oauth.None()

const verifier = oauth.generateRandomCodeVerifier()
const state = oauth.generateRandomState()
const authURL = new URL(as.authorization_endpoint)
for (const [k, v] of Object.entries({
  client_id: env.CLIENT_ID, redirect_uri: env.REDIRECT_URI, response_type: 'code', scope: env.SCOPE, state,
  code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
})) authURL.searchParams.set(k, v)
out({ authorize: authURL.href })
const callback = new URL((await lines.next()).value)

// Checks state and iss (RFC 9207: the metadata says it is sent).
const params = oauth.validateAuthResponse(as, client, callback, state)
const tokens = await oauth.processAuthorizationCodeResponse(as, client,
  await oauth.authorizationCodeGrantRequest(as, client, auth, params, env.REDIRECT_URI, verifier, insecure))
const me = await (await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL('/v1/me', issuer), undefined, undefined, insecure)).json()
const refreshed = await oauth.processRefreshTokenResponse(as, client,
  await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, insecure))

// The code again: refused, and what it issued is revoked.
let reuse = ''
try {
  await oauth.processAuthorizationCodeResponse(as, client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, env.REDIRECT_URI, verifier, insecure))
} catch (e) {
  reuse = e?.error ?? e?.cause?.error ?? String(e)
}
out({ result: {
  access_token: tokens.access_token, scope: tokens.scope, token_type: tokens.token_type,
  me_method: me.auth_method, me_user: me.user?.email,
  refreshed_access_token: refreshed.access_token, refreshed_refresh: refreshed.refresh_token !== tokens.refresh_token,
  reuse,
} })
process.exit(0)
