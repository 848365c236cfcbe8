import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { GatehouseError } from '../errors.js';
import { parseIssuerUrl } from './issuer.js';

export type DevIssuerAlgorithm = 'ES256' | 'RS256';

export interface DevIssuerOptions {
  /** Issuer identifier; where the discovery document and JWKS are served. `https:` or loopback `http:`. */
  issuer: string;
  /** Where the private key is kept as JWK JSON (mode 0600), so tokens survive restarts. Created if missing. */
  keyFile?: string;
  /** Algorithm of a newly generated key. Default `ES256`. A key loaded from `keyFile` keeps its own. */
  alg?: DevIssuerAlgorithm;
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /**
   * The server also serves `<issuer>/authorize` and `<issuer>/token` (authorization code + PKCE, the
   * demo console sign-in): list them in the discovery document. Default false.
   */
  loginEndpoints?: boolean;
}

export interface DevMintOptions {
  sub: string;
  groups?: string[];
  audience: string;
  /** Lifetime, seconds. Default 3600. */
  ttlSec?: number;
  /** `client_id`; defaults to `sub` (a client-credentials token). */
  clientId?: string;
  /** Joined into the `scope` claim. */
  scopes?: string[];
  /** More claims. The registered ones (`iss`, `sub`, `aud`, `iat`, `exp`, `jti`) cannot be overridden. */
  claims?: Record<string, unknown>;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/**
 * The built-in DEVELOPMENT token issuer used by `gatehouse demo`: one signing key, a discovery
 * document and a JWKS that any HTTP server can serve (see {@link DevIssuer.document}), and
 * {@link DevIssuer.mint} for RFC 9068-shaped access tokens. There is no token endpoint and no client
 * authentication: whoever can call `mint` can be anyone. Never trust it outside a demo.
 */
export class DevIssuer {
  readonly issuer: string;
  readonly alg: DevIssuerAlgorithm;
  readonly kid: string;
  readonly #privateKey: CryptoKey | Uint8Array;
  readonly #publicJwk: JWK;
  readonly #base: URL;
  readonly #now: () => number;
  readonly #loginEndpoints: boolean;

  private constructor(issuer: string, alg: DevIssuerAlgorithm, kid: string, privateKey: CryptoKey | Uint8Array, publicJwk: JWK, now: () => number, loginEndpoints: boolean) {
    this.issuer = issuer;
    this.alg = alg;
    this.kid = kid;
    this.#privateKey = privateKey;
    this.#publicJwk = publicJwk;
    this.#base = new URL(issuer.endsWith('/') ? issuer : `${issuer}/`);
    this.#now = now;
    this.#loginEndpoints = loginEndpoints;
  }

  /** Loads the key from `keyFile`, or generates one (and saves it there, if given). */
  static async create(opts: DevIssuerOptions): Promise<DevIssuer> {
    parseIssuerUrl(opts.issuer);
    let jwk = opts.keyFile === undefined ? undefined : await readKeyFile(opts.keyFile);
    if (jwk === undefined) {
      jwk = await generateJwk(opts.alg ?? 'ES256');
      if (opts.keyFile !== undefined) await writeKeyFile(opts.keyFile, jwk);
    }
    const alg = jwk.alg as DevIssuerAlgorithm;
    const publicJwk: JWK = { ...jwk };
    for (const m of PRIVATE_MEMBERS) delete publicJwk[m];
    const privateKey = await importJWK(jwk, alg);
    return new DevIssuer(opts.issuer, alg, jwk.kid as string, privateKey, publicJwk, opts.now ?? Date.now, opts.loginEndpoints ?? false);
  }

  /** Path of the discovery document: `<issuer path>/.well-known/openid-configuration`. */
  get discoveryPath(): string {
    return new URL('.well-known/openid-configuration', this.#base).pathname;
  }

  /** Path of the JWKS: `<issuer path>/.well-known/jwks.json`. */
  get jwksPath(): string {
    return new URL('.well-known/jwks.json', this.#base).pathname;
  }

  /**
   * OpenID Connect Discovery 1.0 §3 metadata (the members that apply to a token-only issuer, plus the
   * authorization and token endpoints when {@link DevIssuerOptions.loginEndpoints} is on).
   */
  discoveryDocument(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: new URL('.well-known/jwks.json', this.#base).href,
      ...(this.#loginEndpoints
        ? {
            authorization_endpoint: new URL('authorize', this.#base).href,
            token_endpoint: new URL('token', this.#base).href,
            response_types_supported: ['code'],
            grant_types_supported: ['authorization_code'],
            code_challenge_methods_supported: ['S256'],
            token_endpoint_auth_methods_supported: ['none'],
          }
        : { response_types_supported: ['token'] }),
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [this.alg],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'groups', 'scope'],
    };
  }

  /** The public signing key as a JWK Set. */
  jwks(): { keys: JWK[] } {
    return { keys: [{ ...this.#publicJwk }] };
  }

  /** The document to answer a GET for `pathname` with, or `undefined` (404). */
  document(pathname: string): Record<string, unknown> | undefined {
    if (pathname === this.discoveryPath) return this.discoveryDocument();
    if (pathname === this.jwksPath) return this.jwks();
    return undefined;
  }

  /** Signs an access token shaped like RFC 9068 (`typ: at+jwt`). */
  async mint(opts: DevMintOptions): Promise<string> {
    if (typeof opts.sub !== 'string' || opts.sub.length === 0) throw new GatehouseError('ERR_BAD_REQUEST', 'sub must be a non-empty string');
    if (typeof opts.audience !== 'string' || opts.audience.length === 0) throw new GatehouseError('ERR_BAD_REQUEST', 'audience must be a non-empty string');
    const ttl = opts.ttlSec ?? 3600;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new GatehouseError('ERR_BAD_REQUEST', 'ttlSec must be a positive number');
    const iat = Math.floor(this.#now() / 1000);
    const scopes = opts.scopes ?? [];
    return new SignJWT({
      ...opts.claims,
      client_id: opts.clientId ?? opts.sub,
      groups: opts.groups ?? [],
      ...(scopes.length === 0 ? {} : { scope: scopes.join(' ') }),
    })
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setSubject(opts.sub)
      .setAudience(opts.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + Math.ceil(ttl))
      .setJti(randomUUID())
      .sign(this.#privateKey);
  }
}

async function generateJwk(alg: DevIssuerAlgorithm): Promise<JWK> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return { ...jwk, kid, alg, use: 'sig' };
}

async function readKeyFile(file: string): Promise<JWK | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GatehouseError('ERR_CONFIG', `cannot read the development issuer key ${file}`, { detail: String(e), cause: e });
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch (e) {
    throw new GatehouseError('ERR_CONFIG', `development issuer key ${file} is not JSON`, { cause: e });
  }
  const alg = jwk.alg ?? (jwk.kty === 'EC' ? 'ES256' : jwk.kty === 'RSA' ? 'RS256' : undefined);
  if ((alg !== 'ES256' && alg !== 'RS256') || typeof jwk.d !== 'string') {
    throw new GatehouseError('ERR_CONFIG', `development issuer key ${file} must be a private ES256 or RS256 JWK`);
  }
  const pub: JWK = { ...jwk };
  for (const m of PRIVATE_MEMBERS) delete pub[m];
  const kid = typeof jwk.kid === 'string' && jwk.kid.length > 0 ? jwk.kid : await calculateJwkThumbprint(pub);
  return { ...jwk, alg, kid };
}

async function writeKeyFile(file: string, jwk: JWK): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}
