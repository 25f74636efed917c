// A real MCP client that signs in by itself: the MCP TypeScript SDK's Streamable HTTP client with its
// OAuth support. Given only the server's URL it meets the 401, reads the protected resource metadata the
// challenge names, discovers the authorization server, asks for the scopes the challenge offers with
// PKCE and `resource`, and (after the scripted login and consent of browser.mjs) exchanges the code and
// retries. The client is pre-registered with provider.mjs as `mcp-client`.
//
// Usage: node mcp-client.mjs MCP_URL USER TOOL 'ARGUMENTS_JSON'
// Prints one JSON line: {"scope": <granted scopes>, "stepUps": <403 step-ups>, "result": <the tool's result>}.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { REDIRECT_URI, authorize } from './browser.mjs';

const [url, user, tool, args] = process.argv.slice(2);

class ScriptedUser {
  code = undefined;
  #tokens = undefined;
  #verifier = undefined;
  get redirectUrl() { return REDIRECT_URI; }
  get clientMetadata() {
    return {
      client_name: 'Sluice e2e MCP client', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'],
      response_types: ['code'], token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return { client_id: 'mcp-client' }; }
  tokens() { return this.#tokens; }
  saveTokens(tokens) { this.#tokens = tokens; }
  saveCodeVerifier(verifier) { this.#verifier = verifier; }
  codeVerifier() { return this.#verifier; }
  async redirectToAuthorization(authorizationUrl) { this.code = await authorize(authorizationUrl, user); }
}

const provider = new ScriptedUser();
const client = new Client({ name: 'sluice-e2e-sdk-oauth', version: '1.0.0' });
let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
try {
  await client.connect(transport);
} catch (e) {
  if (!(e instanceof UnauthorizedError) || !provider.code) throw e;
  await transport.finishAuth(provider.code);
  // A transport that has started cannot start again: the signed-in connection is a new one.
  transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await client.connect(transport);
}
// A 403 insufficient_scope makes the SDK ask the user for more (step-up); the call is then made again.
let stepUps = 0;
let result;
for (;;) {
  provider.code = undefined;
  try {
    result = await client.callTool({ name: tool, arguments: JSON.parse(args) });
    break;
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !provider.code || stepUps >= 2) throw e;
    stepUps += 1;
    await transport.finishAuth(provider.code);
  }
}
console.log(JSON.stringify({ scope: provider.tokens()?.scope, stepUps, result }));
await client.close();
