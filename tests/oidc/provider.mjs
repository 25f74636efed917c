// A real OpenID provider (npm `oidc-provider`, an OpenID-certified implementation) on loopback, for Sluice's
// OAuth end-to-end tests. It issues JWT access tokens (RFC 9068, ES256) for the resource a client names
// with RFC 8707 `resource`, to a public client that must use PKCE, with the built-in login and consent
// pages that the test client (client.mjs) drives over HTTP.
//
// Besides the provider's own endpoints it serves one route for the tests: POST /__test/mint signs a token
// with the provider's own keys (or a stranger's, or none) from the header and claims in the body, so that
// the tests can present precisely wrong tokens: expired, wrong audience or issuer, unknown kid, alg none,
// HS256 keyed with the public key, tampered claims.
//
// Usage: node provider.mjs   (prints one JSON line: {"issuer": "http://127.0.0.1:PORT"}; stops on SIGTERM
// or when stdin closes)
import http from 'node:http';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';
// What each account's tokens carry besides their scopes: the role claim the gateway can map.
const ROLES = { cy: 'analyst' };

async function key(alg, kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { privateKey, publicKey, jwk };
}

const ec = await key('ES256', 'ec-1');
const rsa = await key('RS256', 'rsa-1');
const stranger = await key('ES256', 'stranger-1');

let handle = (_req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handle(req, res));
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'mcp-client',
    client_name: 'Sluice e2e MCP client',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [ec.jwk, rsa.jwk] },
  pkce: { required: () => true },
  findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: 'sluice:query sluice:schema sluice:sandbox sluice:fs_write sluice:admin',
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => (ROLES[token.accountId] ? { sluice_role: ROLES[token.accountId] } : undefined),
});
provider.on('server_error', (_ctx, err) => { console.error('provider error', err); });

const b64 = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

// Signs `claims` under `header` with the key named by `signer`.
async function mint({ header, claims, signer, tamper }) {
  let token;
  switch (signer) {
    case 'ec':
    case 'rsa':
    case 'stranger': {
      const k = { ec, rsa, stranger }[signer];
      token = await new jose.SignJWT(claims).setProtectedHeader({ alg: k.jwk.alg, kid: k.jwk.kid, typ: 'at+jwt', ...header }).sign(k.privateKey);
      break;
    }
    case 'none':
      token = `${b64({ alg: 'none', ...header })}.${b64(claims)}.`;
      break;
    case 'hs-public': {
      // The algorithm-confusion forgery: HMAC keyed with the provider's published RSA key.
      const pem = await jose.exportSPKI(rsa.publicKey);
      token = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'rsa-1', typ: 'at+jwt', ...header }).sign(new TextEncoder().encode(pem));
      break;
    }
    default:
      throw new Error(`unknown signer ${signer}`);
  }
  if (tamper) {
    const [h, , s] = token.split('.');
    token = `${h}.${b64({ ...claims, ...tamper })}.${s}`;
  }
  return token;
}

const callback = provider.callback();
handle = async (req, res) => {
  if (req.method === 'POST' && req.url === '/__test/mint') {
    let body = '';
    for await (const chunk of req) body += chunk;
    try {
      const token = await mint(JSON.parse(body));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token }));
    } catch (e) {
      res.statusCode = 400;
      res.end(String(e));
    }
    return;
  }
  callback(req, res);
};

console.log(JSON.stringify({ issuer }));
const stop = () => { server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
