// The official SDK's MCP client with its own OAuth support, connecting to
// SERVER_URL. Its redirect handler hands the authorization URL to the Go
// test (a JSON line on stdout), which drives a browser and writes the
// code back on stdin. It then calls the tool, waits for "again" on
// stdin, and calls it once more. Every step is a JSON line on stdout.
import readline from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const out = (v) => console.log(JSON.stringify(v));
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => (await lines.next()).value;

const state = {};
const provider = {
  get redirectUrl() { return process.env.REDIRECT_URL; },
  get clientMetadata() {
    return {
      client_name: "E2E agent",
      redirect_uris: [process.env.REDIRECT_URL],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  state() { return "mcp-state"; },
  clientInformation() { return state.client; },
  saveClientInformation(info) { state.client = info; out({ registered: info }); },
  tokens() { return state.tokens; },
  saveTokens(t) { state.tokens = t; out({ tokens: { scope: t.scope, token_type: t.token_type, has_refresh: !!t.refresh_token } }); },
  redirectToAuthorization(url) { out({ authorize: url.toString() }); },
  saveCodeVerifier(v) { state.verifier = v; },
  codeVerifier() { return state.verifier; },
  // What the SDK forgets when the server refuses it (invalid_grant: the
  // tokens; invalid_client: everything).
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "tokens") delete state.tokens;
    if (scope === "all" || scope === "client") delete state.client;
    if (scope === "all" || scope === "verifier") delete state.verifier;
    out({ invalidated: scope });
  },
};

const url = new URL(process.env.SERVER_URL);
async function connect() {
  const client = new Client({ name: "e2e-agent", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await client.connect(transport);
  return client;
}

let client;
try {
  client = await connect();
  out({ error: "connected without authorization" });
  process.exit(1);
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
  const code = await next();
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await transport.finishAuth(code);
  client = await connect();
}
const first = await client.callTool({ name: "whoami", arguments: {} });
out({ result: first.content[0].text });
await next(); // "again": the user has revoked the authorisation
try {
  const second = await client.callTool({ name: "whoami", arguments: {} });
  out({ second: second.content[0].text });
} catch (e) {
  // The gateway's 401, a refused refresh, and a new authorization
  // asked for end in the SDK's UnauthorizedError; anything else (a
  // network failure, another error) is reported as not unauthorized.
  out({ second_error: String(e && e.message || e), error_name: e?.constructor?.name ?? "", unauthorized: e instanceof UnauthorizedError });
}
process.exit(0);
