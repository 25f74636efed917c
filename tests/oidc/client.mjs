// An OAuth 2.1 public client doing the real authorization-code flow with PKCE (S256) and a resource
// indicator (RFC 8707) against the provider of provider.mjs, with scripted login and consent
// (browser.mjs).
//
// Usage: node client.mjs ISSUER RESOURCE USER "SCOPES"
// Prints one JSON line: the token endpoint's answer ({"access_token": …, "scope": …, …}).
import crypto from 'node:crypto';
import { REDIRECT_URI, authorize } from './browser.mjs';

const [issuer, resource, user, scope] = process.argv.slice(2);
const CLIENT_ID = 'mcp-client';

const metadata = await (await fetch(new URL('/.well-known/openid-configuration', issuer))).json();
const verifier = crypto.randomBytes(32).toString('base64url');
const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
const auth = new URL(metadata.authorization_endpoint);
for (const [k, v] of Object.entries({
  client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope,
  state: crypto.randomBytes(8).toString('hex'), code_challenge: challenge, code_challenge_method: 'S256', resource,
})) auth.searchParams.set(k, v);
const code = await authorize(auth, user);

const tokenRes = await fetch(metadata.token_endpoint, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: CLIENT_ID,
    code_verifier: verifier, resource,
  }).toString(),
});
const tokens = await tokenRes.json();
if (tokenRes.status !== 200) {
  console.error(`token request refused: HTTP ${tokenRes.status} ${JSON.stringify(tokens)}`);
  process.exit(1);
}
console.log(JSON.stringify(tokens));
