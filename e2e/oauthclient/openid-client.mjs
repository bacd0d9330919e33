// flow.mjs with openid-client (which builds on oauth4webapi): discovery,
// the authorization URL (state, PKCE S256), the callback's state and iss,
// the exchange, /v1/me, refresh, and the code used again. Same
// environment, input and output as flow.mjs.
import readline from 'node:readline'
import * as client from 'openid-client'

const env = process.env
const out = (v) => console.log(JSON.stringify(v))
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const auth = env.CLIENT_SECRET ? client.ClientSecretBasic(env.CLIENT_SECRET) : client.None()
const config = await client.discovery(new URL(env.ISSUER), env.CLIENT_ID, env.CLIENT_SECRET || undefined, auth,
  { algorithm: 'oauth2', execute: [client.allowInsecureRequests] })
const verifier = client.randomPKCECodeVerifier()
const state = client.randomState()
out({ authorize: client.buildAuthorizationUrl(config, {
  redirect_uri: env.REDIRECT_URI, scope: env.SCOPE, state,
  code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
}).href })
const callback = new URL((await lines.next()).value)

const checks = { pkceCodeVerifier: verifier, expectedState: state }
const tokens = await client.authorizationCodeGrant(config, callback, checks)
const me = await (await client.fetchProtectedResource(config, tokens.access_token, new URL('/v1/me', env.ISSUER), 'GET')).json()
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
let reuse = ''
try {
  await client.authorizationCodeGrant(config, callback, checks)
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
