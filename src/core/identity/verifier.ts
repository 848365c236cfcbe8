/*
 * Access-token verification.
 *
 * - RFC 7519 (JWT): registered claims `iss`, `sub`, `aud`, `exp`, `nbf`, `jti`; §7.2 validation.
 * - RFC 8725 (JWT BCP) §2 threats and §3 practices: algorithm allow-list per issuer, never `none`
 *   and never HMAC with a public key (§3.1, §3.2); all cryptographic operations validated (§3.3);
 *   issuer and audience always validated (§3.8, §3.9); explicit typing honoured (§3.11): a `typ`
 *   other than `JWT` or `at+jwt` is refused. Keys come only from the configured issuer's JWKS:
 *   header-supplied keys (`jwk`, `jku`, `x5u`, `x5c`) are never honoured, and `crit` is refused.
 * - RFC 9068 (JWT profile for OAuth 2.0 access tokens): `client_id`, `scope`, `groups`, `typ: at+jwt`.
 * - OpenID Connect Discovery 1.0 §4: `<issuer>/.well-known/openid-configuration`; the returned
 *   `issuer` must equal the configured one exactly (§4.3); `jwks_uri` must be https.
 */
import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { CryptoKey, JWTPayload, JWTVerifyOptions, JWTVerifyResult, KeyObject } from 'jose';
import { GatehouseError } from '../errors.js';
import { identityFromClaims } from './claims.js';
import { IssuerKeys, parseIssuerUrl } from './issuer.js';
import type { FetchCounters } from './issuer.js';
import type { Identity } from './types.js';

/** The asymmetric JWS algorithms accepted unless `allowedAlgorithms` narrows them. */
export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);

/** Every algorithm that may be configured. `none` and `HS*` are never among them. */
const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set([...DEFAULT_ALGORITHMS, 'Ed25519']);

/** Header parameters that carry or point at a key, or that demand extensions: never honoured. */
const REFUSED_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'crit'] as const;

/** `typ` values that may name an access token (RFC 7519 §5.1, RFC 9068 §2.1), compared case-insensitively. */
const ACCEPTED_TYP = new Set(['jwt', 'application/jwt', 'at+jwt', 'application/at+jwt']);

/** Longer inputs are refused before any parsing. */
const MAX_TOKEN_LENGTH = 64 * 1024;

/** One trusted token issuer. */
export interface IssuerConfig {
  /** Issuer identifier, compared exactly with the token's `iss`. `https:`, or `http:` on loopback. */
  issuer: string;
  /** Accepted audience(s): the token's `aud` must contain one of them. */
  audience: string | string[];
  /** Claim holding group names; a dotted path (`realm_access.roles`) if no top-level claim has the name. Default `groups`. */
  groupsClaim?: string;
  /** JWKS URL; when given, discovery is skipped. */
  jwksUri?: string;
  /** Accepted JWS algorithms for this issuer, a subset of the verifier's `allowedAlgorithms`. */
  algorithms?: string[];
}

export interface TokenVerifierOptions {
  issuers: IssuerConfig[];
  /** Leeway for `exp` and `nbf`, seconds. Default 30. */
  clockToleranceSec?: number;
  /** Most verified tokens remembered (LRU). 0 disables the cache. Default 10 000. */
  cacheMax?: number;
  /** Minimum time between JWKS fetches of one issuer when tokens name unknown keys, ms. Default 30 000. */
  jwksCooldownMs?: number;
  /** Age after which an issuer's JWKS is re-fetched (keys already fetched stay usable if that fails), ms. Default 600 000. */
  jwksMaxAgeMs?: number;
  /** Timeout of discovery and JWKS requests, ms. Default 5 000. */
  fetchTimeoutMs?: number;
  /** Called after verification and on every cache hit; `true` refuses the token with `ERR_TOKEN_REVOKED`. */
  isRevoked?: (id: Identity) => boolean;
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Asymmetric JWS algorithms accepted at all. Default {@link DEFAULT_ALGORITHMS}. */
  allowedAlgorithms?: string[];
}

/** Counters for metrics and tests. */
export interface TokenVerifierStats {
  /** Tokens that reached signature verification. */
  verifications: number;
  /** Tokens answered from the cache of verified tokens. */
  cacheHits: number;
  /** Entries in that cache now. */
  cacheSize: number;
  discoveryFetches: number;
  jwksFetches: number;
}

interface Trusted {
  config: IssuerConfig;
  audience: string[];
  algorithms: string[];
  groupsClaim: string;
  keys: IssuerKeys;
}

/**
 * Verifies OAuth 2.0 / OpenID Connect JWT access tokens from a fixed set of trusted issuers and
 * turns them into {@link Identity} values. Protocol-agnostic: engines hand it the token they
 * received as a password or bearer credential.
 *
 * Every failure is a `GatehouseError`: `ERR_TOKEN_EXPIRED`, `ERR_TOKEN_REVOKED`,
 * `ERR_ISSUER_UNAVAILABLE` (the issuer's keys cannot be fetched) or `ERR_TOKEN_INVALID` with a
 * public message naming what was wrong. Tokens are never logged or kept: the cache of verified
 * tokens is keyed by their SHA-256.
 *
 * @example
 * const verifier = new TokenVerifier({ issuers: [{ issuer: 'https://example.okta.com/oauth2/default', audience: 'api://gatehouse' }] });
 * const identity = await verifier.verify(token);
 */
export class TokenVerifier {
  readonly #issuers = new Map<string, Trusted>();
  readonly #toleranceSec: number;
  readonly #cacheMax: number;
  readonly #cache = new Map<string, Identity>();
  readonly #isRevoked: ((id: Identity) => boolean) | undefined;
  readonly #now: () => number;
  readonly #counters: FetchCounters = { discoveryFetches: 0, jwksFetches: 0 };
  #verifications = 0;
  #cacheHits = 0;

  constructor(options: TokenVerifierOptions) {
    this.#toleranceSec = nonNegative(options.clockToleranceSec, 30, 'clockToleranceSec');
    this.#cacheMax = Math.floor(nonNegative(options.cacheMax, 10_000, 'cacheMax'));
    const cooldownMs = nonNegative(options.jwksCooldownMs, 30_000, 'jwksCooldownMs');
    const maxAgeMs = nonNegative(options.jwksMaxAgeMs, 600_000, 'jwksMaxAgeMs');
    const timeoutMs = Math.floor(nonNegative(options.fetchTimeoutMs, 5_000, 'fetchTimeoutMs'));
    this.#isRevoked = options.isRevoked;
    this.#now = options.now ?? Date.now;

    const allowed = options.allowedAlgorithms ?? [...DEFAULT_ALGORITHMS];
    checkAlgorithms(allowed, ASYMMETRIC_ALGORITHMS, 'allowedAlgorithms');
    if (options.issuers.length === 0) throw new GatehouseError('ERR_CONFIG', 'at least one token issuer must be configured');
    for (const config of options.issuers) {
      parseIssuerUrl(config.issuer);
      if (this.#issuers.has(config.issuer)) throw new GatehouseError('ERR_CONFIG', `issuer ${config.issuer} is configured twice`);
      const audience = typeof config.audience === 'string' ? [config.audience] : [...config.audience];
      if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a.length === 0)) {
        throw new GatehouseError('ERR_CONFIG', `issuer ${config.issuer}: audience must be one or more non-empty strings`);
      }
      const algorithms = config.algorithms ?? allowed;
      checkAlgorithms(algorithms, new Set(allowed), `issuer ${config.issuer}: algorithms`);
      const groupsClaim = config.groupsClaim ?? 'groups';
      if (groupsClaim.length === 0) throw new GatehouseError('ERR_CONFIG', `issuer ${config.issuer}: groupsClaim must not be empty`);
      const keys = new IssuerKeys({
        issuer: config.issuer,
        ...(config.jwksUri === undefined ? {} : { jwksUri: config.jwksUri }),
        cooldownMs,
        timeoutMs,
        maxAgeMs,
        counters: this.#counters,
      });
      this.#issuers.set(config.issuer, { config, audience, algorithms: [...algorithms], groupsClaim, keys });
    }
  }

  /** The configured issuer identifiers. */
  get issuers(): string[] {
    return [...this.#issuers.keys()];
  }

  /** Verifies `token` and returns its identity, or throws a `GatehouseError`. */
  async verify(token: string): Promise<Identity> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid('token is malformed');
    const key = createHash('sha256').update(token).digest('base64url');
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#cacheHits++;
      if (this.#expired(cached)) {
        this.#cache.delete(key);
        throw expired(cached.issuer);
      }
      this.#cache.delete(key);
      this.#cache.set(key, cached);
      this.#checkRevoked(cached);
      return cached;
    }

    const trusted = this.#screen(token);
    const payload = await this.#verifySignature(token, trusted);
    const identity = identityFromClaims(trusted.config.issuer, payload, trusted.groupsClaim);
    if (this.#expired(identity)) throw expired(identity.issuer);
    this.#checkRevoked(identity);
    this.#remember(key, identity);
    return identity;
  }

  /** Forgets every verified token (after a configuration change, or for tests). */
  clearCache(): void {
    this.#cache.clear();
  }

  /** Counters since construction, for metrics and tests. */
  stats(): TokenVerifierStats {
    return {
      verifications: this.#verifications,
      cacheHits: this.#cacheHits,
      cacheSize: this.#cache.size,
      discoveryFetches: this.#counters.discoveryFetches,
      jwksFetches: this.#counters.jwksFetches,
    };
  }

  /** Checks done before any cryptography: shape, header parameters, algorithm, issuer. */
  #screen(token: string): Trusted {
    if (token.split('.').length !== 3) throw invalid('token is malformed', 'not a compact JWS (three parts)');
    let header: Record<string, unknown>;
    let payload: JWTPayload;
    try {
      header = decodeProtectedHeader(token) as Record<string, unknown>;
      payload = decodeJwt(token);
    } catch (e) {
      throw invalid('token is malformed', e instanceof Error ? e.message : undefined);
    }
    const alg = header['alg'];
    if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.has(alg)) throw invalid('token algorithm is not accepted', `alg ${JSON.stringify(alg)}`);
    for (const name of REFUSED_HEADERS) {
      if (Object.hasOwn(header, name)) throw invalid(`token header "${name}" is not accepted`);
    }
    const typ = header['typ'];
    if (typ !== undefined && (typeof typ !== 'string' || !ACCEPTED_TYP.has(typ.toLowerCase()))) {
      throw invalid('token type is not accepted', `typ ${JSON.stringify(typ)}`);
    }
    const iss = payload.iss;
    const trusted = typeof iss === 'string' ? this.#issuers.get(iss) : undefined;
    if (trusted === undefined) throw invalid('token issuer is not accepted', `iss ${JSON.stringify(iss)} is not a configured issuer`);
    if (!trusted.algorithms.includes(alg)) throw invalid('token algorithm is not accepted', `issuer ${trusted.config.issuer}: alg ${alg}`);
    return trusted;
  }

  async #verifySignature(token: string, trusted: Trusted): Promise<JWTPayload> {
    const options: JWTVerifyOptions = {
      issuer: trusted.config.issuer,
      audience: trusted.audience,
      algorithms: trusted.algorithms,
      clockTolerance: this.#toleranceSec,
      requiredClaims: ['exp', 'iss', 'sub'],
      currentDate: new Date(this.#now()),
    };
    this.#verifications++;
    try {
      let result: JWTVerifyResult;
      try {
        result = await jwtVerify(token, trusted.keys.getKey, options);
      } catch (e) {
        if (!(e instanceof errors.JWKSMultipleMatchingKeys)) throw e;
        result = await verifyWithCandidates(token, e, options);
      }
      return result.payload;
    } catch (e) {
      throw mapError(e, trusted.config.issuer);
    }
  }

  #expired(id: Identity): boolean {
    return id.expiresAt <= this.#now() - this.#toleranceSec * 1000;
  }

  #checkRevoked(id: Identity): void {
    if (this.#isRevoked?.(id) === true) {
      throw new GatehouseError('ERR_TOKEN_REVOKED', 'token has been revoked', { detail: `issuer ${id.issuer}: sub ${id.subject} is revoked` });
    }
  }

  #remember(key: string, id: Identity): void {
    if (this.#cacheMax === 0) return;
    while (this.#cache.size >= this.#cacheMax) {
      const oldest = this.#cache.keys().next();
      if (oldest.done === true) break;
      this.#cache.delete(oldest.value);
    }
    this.#cache.set(key, id);
  }
}

/** No `kid` and several keys of the right type: try each (jose's documented pattern). */
async function verifyWithCandidates(token: string, candidates: errors.JWKSMultipleMatchingKeys, options: JWTVerifyOptions): Promise<JWTVerifyResult> {
  for await (const key of candidates as unknown as AsyncIterable<CryptoKey | KeyObject>) {
    try {
      return await jwtVerify(token, key, options);
    } catch (e) {
      if (!(e instanceof errors.JWSSignatureVerificationFailed)) throw e;
    }
  }
  throw new errors.JWSSignatureVerificationFailed();
}

function mapError(e: unknown, issuer: string): GatehouseError {
  if (e instanceof GatehouseError) return e;
  const detail = `issuer ${issuer}: ${e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e)}`;
  if (e instanceof errors.JWTExpired) return new GatehouseError('ERR_TOKEN_EXPIRED', 'token expired', { detail });
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.reason === 'missing') return invalid(`token is missing the "${e.claim}" claim`, detail);
    switch (e.claim) {
      case 'aud':
        return invalid('token audience is not accepted', detail);
      case 'iss':
        return invalid('token issuer is not accepted', detail);
      case 'nbf':
        return invalid(e.reason === 'invalid' ? 'token "nbf" claim is invalid' : 'token is not yet valid', detail);
      case 'exp':
        return invalid('token expiry is invalid', detail);
      default:
        return invalid(`token "${e.claim}" claim is invalid`, detail);
    }
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return invalid('token signature is invalid', detail);
  if (e instanceof errors.JWKSNoMatchingKey) return invalid('unknown signing key', detail);
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) return invalid('token algorithm is not accepted', detail);
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return invalid('token is malformed', detail);
  if (e instanceof errors.JWKInvalid || e instanceof errors.JWKSInvalid) {
    return new GatehouseError('ERR_ISSUER_UNAVAILABLE', 'token issuer is unavailable', { detail, cause: e });
  }
  if (e instanceof TypeError && /modulusLength/.test(e.message)) return invalid('token signing key is not accepted', detail);
  return new GatehouseError('ERR_INTERNAL', 'internal error', { detail, cause: e });
}

function invalid(message: string, detail?: string): GatehouseError {
  return new GatehouseError('ERR_TOKEN_INVALID', message, detail === undefined ? {} : { detail });
}

function expired(issuer: string): GatehouseError {
  return new GatehouseError('ERR_TOKEN_EXPIRED', 'token expired', { detail: `issuer ${issuer}` });
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new GatehouseError('ERR_CONFIG', `${name} must be a non-negative number`);
  return value;
}

function checkAlgorithms(algorithms: readonly string[], permitted: ReadonlySet<string>, what: string): void {
  if (algorithms.length === 0) throw new GatehouseError('ERR_CONFIG', `${what} must name at least one algorithm`);
  for (const alg of algorithms) {
    if (!permitted.has(alg)) {
      const why = alg === 'none' || /^HS\d+$/.test(alg) ? '"none" and HMAC algorithms are never accepted' : `accepted: ${[...permitted].join(', ')}`;
      throw new GatehouseError('ERR_CONFIG', `${what}: algorithm ${JSON.stringify(alg)} is not accepted (${why})`);
    }
  }
}
