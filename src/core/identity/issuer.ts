import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, jwksCache } from 'jose';
import type { ExportedJWKSCache, FetchImplementation, JWTVerifyGetKey, RemoteJWKSet } from 'jose';
import { GatehouseError } from '../errors.js';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether `url` is `https:`, or `http:` on a loopback host (development and tests only). */
export function isSecureOrLoopback(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
}

/**
 * Parses an issuer identifier (OpenID Connect Discovery 1.0 §2: an https URL with no query or fragment)
 * or throws `ERR_CONFIG`. Plain http is allowed on loopback only.
 */
export function parseIssuerUrl(issuer: string): URL {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new GatehouseError('ERR_CONFIG', `issuer ${JSON.stringify(issuer)} is not a URL`);
  }
  if (!isSecureOrLoopback(url)) {
    throw new GatehouseError('ERR_CONFIG', `issuer ${issuer} must use https (plain http only on 127.0.0.1, localhost or [::1])`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '' || issuer.includes('?') || issuer.includes('#')) {
    throw new GatehouseError('ERR_CONFIG', `issuer ${issuer} must not have a query, fragment or credentials`);
  }
  return url;
}

/** Counters shared by every issuer of one verifier. */
export interface FetchCounters {
  discoveryFetches: number;
  jwksFetches: number;
}

export interface IssuerKeysOptions {
  issuer: string;
  /** Skip discovery and use this JWKS URL. */
  jwksUri?: string;
  cooldownMs: number;
  timeoutMs: number;
  maxAgeMs: number;
  counters: FetchCounters;
}

/**
 * The signing keys of one issuer: discovery (lazy, once, shared by concurrent callers), then a jose
 * remote JWKS that caches keys and re-fetches on an unknown `kid` at most once per cooldown. While
 * the issuer is unreachable, keys already fetched keep verifying tokens, fetches are not retried
 * more than once per cooldown, and a token signed with a key not yet seen fails with
 * `ERR_ISSUER_UNAVAILABLE`.
 */
export class IssuerKeys {
  readonly issuer: string;
  readonly #opts: IssuerKeysOptions;
  #remote: RemoteJWKSet | undefined;
  #pending: Promise<RemoteJWKSet> | undefined;
  #discoveryFailedAt = Number.NEGATIVE_INFINITY;
  #fetchFailedAt = Number.NEGATIVE_INFINITY;
  readonly #cache: Partial<ExportedJWKSCache> = {};
  #stale: { uat: number; keys: JWTVerifyGetKey } | undefined;

  constructor(opts: IssuerKeysOptions) {
    this.issuer = opts.issuer;
    this.#opts = opts;
    if (opts.jwksUri !== undefined) this.#remote = this.#createRemote(checkJwksUri(opts.issuer, opts.jwksUri, 'ERR_CONFIG'));
  }

  /** Resolves the verification key for a JWS header; the `getKey` function handed to `jwtVerify`. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const remote = this.#remote ?? (await this.#discover());
    try {
      return await remote(header, token);
    } catch (e) {
      if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys || e instanceof errors.JOSENotSupported) throw e;
      const stale = this.#staleKeys();
      if (stale !== undefined) {
        try {
          return await stale(header, token);
        } catch (e2) {
          if (!(e2 instanceof errors.JWKSNoMatchingKey)) throw e2;
        }
      }
      throw unavailable(this.issuer, `JWKS fetch failed: ${describe(e)}`, e);
    }
  };

  /** Keys from the last successful fetch, for use while the issuer cannot be reached. */
  #staleKeys(): JWTVerifyGetKey | undefined {
    const { uat, jwks } = this.#cache;
    if (uat === undefined || jwks === undefined) return undefined;
    if (this.#stale?.uat !== uat) this.#stale = { uat, keys: createLocalJWKSet(jwks) };
    return this.#stale.keys;
  }

  #discover(): Promise<RemoteJWKSet> {
    if (this.#pending !== undefined) return this.#pending;
    const retryMs = Math.min(this.#opts.cooldownMs, 5000);
    if (Date.now() - this.#discoveryFailedAt < retryMs) {
      return Promise.reject(unavailable(this.issuer, 'discovery failed recently; not retrying yet'));
    }
    this.#pending = this.#fetchDiscovery().then(
      (jwksUri) => {
        this.#pending = undefined;
        return (this.#remote ??= this.#createRemote(jwksUri));
      },
      (e: unknown) => {
        this.#pending = undefined;
        this.#discoveryFailedAt = Date.now();
        throw e;
      },
    );
    return this.#pending;
  }

  async #fetchDiscovery(): Promise<URL> {
    const url = `${this.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    this.#opts.counters.discoveryFetches++;
    let doc: unknown;
    try {
      const res = await fetch(url, { redirect: 'manual', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.#opts.timeoutMs) });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      doc = await res.json();
    } catch (e) {
      throw unavailable(this.issuer, `discovery at ${url} failed: ${describe(e)}`, e);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw unavailable(this.issuer, `discovery at ${url}: not a JSON object`);
    const meta = doc as Record<string, unknown>;
    if (meta['issuer'] !== this.issuer) {
      throw unavailable(this.issuer, `discovery at ${url}: issuer ${JSON.stringify(meta['issuer'])} does not match the configured issuer exactly (OIDC Discovery §4.3)`);
    }
    if (typeof meta['jwks_uri'] !== 'string') throw unavailable(this.issuer, `discovery at ${url}: no jwks_uri`);
    return checkJwksUri(this.issuer, meta['jwks_uri'], 'ERR_ISSUER_UNAVAILABLE');
  }

  #createRemote(jwksUri: URL): RemoteJWKSet {
    const fetchJwks: FetchImplementation = async (url, init) => {
      if (Date.now() - this.#fetchFailedAt < this.#opts.cooldownMs) throw new Error('the last JWKS fetch failed recently; not retrying yet');
      this.#opts.counters.jwksFetches++;
      try {
        const res = await fetch(url, init);
        if (res.status !== 200) {
          this.#fetchFailedAt = Date.now();
          return res;
        }
        const text = await res.text();
        if (!looksLikeJwks(text)) this.#fetchFailedAt = Date.now();
        return new Response(text, { status: 200, headers: res.headers });
      } catch (e) {
        this.#fetchFailedAt = Date.now();
        throw e;
      }
    };
    return createRemoteJWKSet(jwksUri, {
      cooldownDuration: this.#opts.cooldownMs,
      cacheMaxAge: this.#opts.maxAgeMs,
      timeoutDuration: this.#opts.timeoutMs,
      [customFetch]: fetchJwks,
      [jwksCache]: this.#cache as ExportedJWKSCache,
    });
  }
}

function checkJwksUri(issuer: string, value: string, code: 'ERR_CONFIG' | 'ERR_ISSUER_UNAVAILABLE'): URL {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || !isSecureOrLoopback(url)) {
    const why = `jwks_uri ${JSON.stringify(value)} must be an https URL (plain http only on loopback)`;
    throw code === 'ERR_CONFIG' ? new GatehouseError('ERR_CONFIG', `issuer ${issuer}: ${why}`) : unavailable(issuer, why);
  }
  return url;
}

function looksLikeJwks(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && Array.isArray((v as { keys?: unknown }).keys);
  } catch {
    return false;
  }
}

function unavailable(issuer: string, detail: string, cause?: unknown): GatehouseError {
  return new GatehouseError('ERR_ISSUER_UNAVAILABLE', 'token issuer is unavailable', { detail: `issuer ${issuer}: ${detail}`, cause });
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? ` (${e.cause.message})` : '';
  return `${e.message}${cause}`;
}
