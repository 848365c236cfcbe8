/**
 * Test helpers for token verification: locally generated signing keys, a signer that can build
 * hostile tokens (any header, any alg), and a tiny loopback HTTP server that serves an OpenID
 * Connect discovery document and a JWKS, counts requests, and can play dead.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

let kidSeq = 0;

export async function makeKey(alg = 'RS256', kid = `k${++kidSeq}-${alg}`): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

/**
 * Signs `claims` with `key` exactly as given (nothing added). `header` members are merged over
 * `{ alg, kid }`; a member set to `undefined` is left out.
 */
export async function sign(key: TestKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const merged = JSON.parse(JSON.stringify({ alg: key.alg, kid: key.kid, ...header })) as { alg: string };
  return new SignJWT(claims).setProtectedHeader(merged).sign(key.privateKey);
}

/** Signs any header and claims with an RS256 key, bypassing every check a JOSE library would make. */
export async function signRawRs256(key: TestKey, header: Record<string, unknown>, claims: Record<string, unknown>): Promise<string> {
  const input = `${b64url(header)}.${b64url(claims)}`;
  const sig = await globalThis.crypto.subtle.sign({ name: 'RSASSA-PKCS1-v1_5' }, key.privateKey, Buffer.from(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

export function b64url(value: string | Buffer | Record<string, unknown>): string {
  const buf = typeof value === 'string' ? Buffer.from(value) : Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value));
  return buf.toString('base64url');
}

/** A compact JWS with an HMAC signature: what an attacker builds for the RS/HS confusion attack. */
export function signHmac(header: Record<string, unknown>, claims: Record<string, unknown>, secret: string | Buffer): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  const alg = String(header['alg']);
  const hash = alg === 'HS384' ? 'sha384' : alg === 'HS512' ? 'sha512' : 'sha256';
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

export type ServerMode = 'up' | 'reset' | 'error';

export interface JwksServer {
  /** `http://127.0.0.1:<port>` (the issuer identifier served in discovery). */
  issuer: string;
  jwksUri: string;
  /** Requests served so far, by document. */
  readonly requests: { discovery: number; jwks: number };
  /** Keys published in the JWKS. */
  keys: JWK[];
  /** `up`: serve; `reset`: drop connections; `error`: answer 503. */
  mode: ServerMode;
  /** Overrides the `issuer` member of the discovery document. */
  discoveryIssuer?: string;
  /** Overrides the `jwks_uri` member of the discovery document. */
  discoveryJwksUri?: string;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[] = []): Promise<JwksServer> {
  const state: JwksServer = {
    issuer: '',
    jwksUri: '',
    requests: { discovery: 0, jwks: 0 },
    keys,
    mode: 'up',
    close: async () => {},
  };
  const server = createServer((req, res) => {
    if (state.mode === 'reset') {
      req.socket.destroy();
      return;
    }
    if (state.mode === 'error') {
      res.writeHead(503).end();
      return;
    }
    const path = new URL(req.url ?? '/', state.issuer).pathname;
    if (path === '/.well-known/openid-configuration') {
      state.requests.discovery++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: state.discoveryIssuer ?? state.issuer, jwks_uri: state.discoveryJwksUri ?? state.jwksUri }));
    } else if (path === '/jwks') {
      state.requests.jwks++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: state.keys }));
    } else {
      res.writeHead(404).end();
    }
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  state.issuer = `http://127.0.0.1:${port}`;
  state.jwksUri = `${state.issuer}/jwks`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
