/**
 * The audit log: an append-only, hash-chained event log with optional signed checkpoints.
 *
 * Chain format (version 1), enough to verify a log with any SHA-256 / Ed25519 / JCS tooling:
 *
 *   Event n (seq = n, 1-based, gapless) carries `prevHash` and `hash`, both 64 lowercase hex chars.
 *     prevHash(1) = "0000000000000000000000000000000000000000000000000000000000000000"  (64 × "0")
 *     prevHash(n) = hash(n-1)
 *     hash(n)     = hex(SHA-256( UTF-8( prevHash(n) ‖ body(n) ) ))
 *   where ‖ is plain string concatenation (the 64 hex characters, then the JSON text) and
 *     body(n) = canonicalJson({ seq, ts, type, sessionId, actor, connection, data })
 *   with exactly those seven keys, absent `sessionId` / `actor` / `connection` written as `null`,
 *   `ts` in integer milliseconds since the epoch, and canonicalJson = RFC 8785 (JCS): keys sorted,
 *   no whitespace, ECMAScript number and string serialization (see ./canonical.ts). Example body:
 *     {"actor":"agent-7","connection":"prod-db","data":{"sql":"SELECT 1"},"seq":1,"sessionId":null,"ts":1764000000000,"type":"command"}
 *
 *   Checkpoint: { seq, hash, ts, keyId, signature } where `hash` is hash(seq) and
 *     signature = base64url-without-padding( Ed25519-sign( UTF-8( canonicalJson({ hash, keyId, seq, ts }) ) ) )
 *   keyId defaults to the RFC 7638 JWK thumbprint of the Ed25519 public key.
 *
 * `data` is stored as the JSON value canonicalJson describes (normalized before hashing), so what
 * a store returns re-hashes to the stored hash. Before hashing, every value under a key named
 * `token`, `password` or `authorization` (case-insensitive, `-`/`_` ignored, at any depth), or a key
 * ending in `token` or `password` (`accessToken`, `id_token`, `db-password`), is replaced by
 * `"[redacted]"`: audit events never hold credentials even if a caller passes one by mistake.
 * (`tokenId`, `jti` and the like are identifiers, not credentials, and are kept.)
 */
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { GatehouseError, toGatehouseError } from '../errors.js';
import type { AuditCheckpoint, AuditEvent, AuditEventInput, Store } from '../../store/store.js';
import { storableText } from '../text.js';
import { canonicalJson } from './canonical.js';

/** Most events written in one store transaction. */
const MAX_BATCH = 500;
/** How long events gather before they are written together, ms. */
const BATCH_WINDOW_MS = 5;

/** prevHash of event 1. */
export const GENESIS_HASH = '0'.repeat(64);

/** What replaces a credential-named value in `data`. */
export const REDACTED = '[redacted]';

/** The fields of an event that its hash covers. */
export type AuditHashFields = Pick<AuditEvent, 'seq' | 'ts' | 'type' | 'sessionId' | 'actor' | 'connection' | 'data'>;

/** `hash(n)` of the chain format above. */
export function hashAuditEvent(prevHash: string, e: AuditHashFields): string {
  const body = canonicalJson({
    seq: e.seq,
    ts: e.ts,
    type: e.type,
    sessionId: e.sessionId ?? null,
    actor: e.actor ?? null,
    connection: e.connection ?? null,
    data: e.data,
  });
  return createHash('sha256').update(prevHash + body, 'utf8').digest('hex');
}

/** The bytes a checkpoint's signature covers. */
export function checkpointBytes(c: Pick<AuditCheckpoint, 'seq' | 'hash' | 'ts' | 'keyId'>): Buffer {
  return Buffer.from(canonicalJson({ hash: c.hash, keyId: c.keyId, seq: c.seq, ts: c.ts }), 'utf8');
}

/** True for keys whose values `AuditLog` redacts. */
export function isCredentialKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_]/g, '');
  return k === 'authorization' || k.endsWith('token') || k.endsWith('password');
}

/** `data` with credential-named values replaced by `REDACTED`, at any depth. Does not modify its argument. */
export function redactCredentials(data: Record<string, unknown>): Record<string, unknown> {
  return redact(data, new Set()) as Record<string, unknown>;
}

function redact(v: unknown, stack: Set<object>): unknown {
  if (v === null || typeof v !== 'object') return v;
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return redact((toJSON as () => unknown).call(v), stack);
  if (stack.has(v)) throw new TypeError('audit data has a circular structure');
  stack.add(v);
  try {
    if (Array.isArray(v)) return v.map((x) => redact(x, stack));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = isCredentialKey(k) && x !== undefined && x !== null ? REDACTED : redact(x, stack);
    return out;
  } finally {
    stack.delete(v);
  }
}

/** An Ed25519 private key: a KeyObject, a PEM string (PKCS#8), or a private JWK (`{kty:'OKP', crv:'Ed25519', d, x}`). */
export type Ed25519PrivateKeyInput = KeyObject | string | JsonWebKey;
/** An Ed25519 key to verify with: a KeyObject (public or private), a PEM string (SPKI or PKCS#8), or a JWK. */
export type Ed25519PublicKeyInput = KeyObject | string | JsonWebKey;

/** Loads an Ed25519 private key. @throws GatehouseError `ERR_CONFIG` */
export function loadSigningKey(k: Ed25519PrivateKeyInput): KeyObject {
  let key: KeyObject;
  try {
    key = isKeyObject(k) ? k : typeof k === 'string' ? createPrivateKey(k) : createPrivateKey({ key: k, format: 'jwk' });
  } catch (e) {
    throw new GatehouseError('ERR_CONFIG', 'audit signing key cannot be read', { detail: e instanceof Error ? e.message : String(e) });
  }
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
    throw new GatehouseError('ERR_CONFIG', 'audit signing key must be an Ed25519 private key', { detail: `${key.type} ${key.asymmetricKeyType ?? ''}` });
  }
  return key;
}

/** Loads an Ed25519 public key (derived from a private one if given). @throws GatehouseError `ERR_CONFIG` */
export function loadVerifyKey(k: Ed25519PublicKeyInput): KeyObject {
  let key: KeyObject;
  try {
    key = isKeyObject(k) ? (k.type === 'public' ? k : createPublicKey(k)) : typeof k === 'string' ? createPublicKey(k) : createPublicKey({ key: k, format: 'jwk' });
  } catch (e) {
    throw new GatehouseError('ERR_CONFIG', 'audit verification key cannot be read', { detail: e instanceof Error ? e.message : String(e) });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new GatehouseError('ERR_CONFIG', 'audit verification key must be an Ed25519 key', { detail: key.asymmetricKeyType ?? '' });
  }
  return key;
}

/** RFC 7638 JWK thumbprint (base64url SHA-256) of an Ed25519 key. */
export function keyThumbprint(k: Ed25519PublicKeyInput): string {
  const jwk = loadVerifyKey(k).export({ format: 'jwk' });
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${String(jwk.x)}"}`).digest('base64url');
}

function isKeyObject(k: unknown): k is KeyObject {
  return typeof k === 'object' && k !== null && typeof (k as KeyObject).export === 'function' && 'type' in k;
}

export interface AuditLogOptions {
  /**
   * Failures of `record()` (fire-and-forget) and of automatic checkpoints. Gets a GatehouseError
   * (`ERR_STORE` for store failures) and the event that was lost, if any.
   * Default: written to stderr without the event's data.
   */
  onError?: (err: GatehouseError, input?: AuditEventInput) => void;
  /** Ed25519 private key; enables `checkpoint()` and `checkpointEvery`. */
  signingKey?: Ed25519PrivateKeyInput;
  /** Key id written on checkpoints. Default: the key's RFC 7638 thumbprint. */
  keyId?: string;
  /** Write a signed checkpoint after every event whose seq is a multiple of this. Needs `signingKey`. */
  checkpointEvery?: number;
  /** Clock for checkpoint timestamps. Default `Date.now`. */
  now?: () => number;
}

/**
 * Appends events to the hash chain through `store.appendAuditBatch`. Appends are queued and
 * written in call order, those queued within a few milliseconds of each other in one transaction, so
 * `record()` costs the hot path no I/O; `append()` is the same queue, awaited; `flush()` waits for
 * everything queued so far. Each event's input is snapshotted
 * (normalized and redacted) when it is queued, so later mutation by the caller has no effect.
 */
export class AuditLog {
  /** The checkpoint key id, when a signing key is configured. */
  readonly keyId: string | undefined;
  readonly #store: Store;
  readonly #onError: (err: GatehouseError, input?: AuditEventInput) => void;
  readonly #key: KeyObject | undefined;
  readonly #every: number;
  readonly #now: () => number;
  readonly #queue: { prepared: Prepared; resolve: (e: AuditEvent) => void; reject: (e: unknown) => void }[] = [];
  #draining: Promise<void> | undefined;
  #pending = 0;

  /** @throws GatehouseError `ERR_CONFIG` for an unusable signing key or `checkpointEvery` without one. */
  constructor(store: Store, opts: AuditLogOptions = {}) {
    this.#store = store;
    this.#onError = opts.onError ?? defaultOnError;
    this.#key = opts.signingKey === undefined ? undefined : loadSigningKey(opts.signingKey);
    this.keyId = this.#key ? (opts.keyId ?? keyThumbprint(this.#key)) : undefined;
    this.#every = opts.checkpointEvery ?? 0;
    if (!Number.isInteger(this.#every) || this.#every < 0) throw new GatehouseError('ERR_CONFIG', 'audit checkpointEvery must be a positive integer');
    if (this.#every > 0 && !this.#key) throw new GatehouseError('ERR_CONFIG', 'audit checkpointEvery needs a signing key');
    this.#now = opts.now ?? Date.now;
  }

  /** Events queued and not yet written. */
  get pending(): number {
    return this.#pending;
  }

  /** Queues an event and returns at once; a failure goes to `onError`. Never throws. */
  record(input: AuditEventInput): void {
    this.append(input).catch((e: unknown) => this.#onError(toGatehouseError(e, 'ERR_STORE'), input));
  }

  /**
   * Queues an event and resolves with it once written (with its seq and hashes).
   * @throws GatehouseError `ERR_INTERNAL` for a malformed event (non-integer `ts`, empty `type`),
   *   `ERR_STORE` when the store fails.
   */
  append(input: AuditEventInput): Promise<AuditEvent> {
    let prepared: Prepared;
    try {
      prepared = prepare(input);
    } catch (e) {
      return Promise.reject(toGatehouseError(e));
    }
    return new Promise<AuditEvent>((resolve, reject) => {
      this.#queue.push({ prepared, resolve, reject });
      this.#pending++;
      this.#kick();
    });
  }

  /** Resolves when every event queued before this call has been written (or has failed). */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /**
   * Signs and stores a checkpoint at the current head (after everything queued so far).
   * Resolves undefined for an empty log.
   * @throws GatehouseError `ERR_CONFIG` without a signing key, `ERR_STORE` when the store fails.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    if (!this.#key) throw new GatehouseError('ERR_CONFIG', 'no audit signing key configured');
    await this.flush();
    try {
      const head = await this.#store.auditHead();
      return head ? await this.#sign(head.seq, head.hash) : undefined;
    } catch (e) {
      throw toGatehouseError(e, 'ERR_STORE');
    }
  }

  async #sign(seq: number, hash: string): Promise<AuditCheckpoint> {
    const key = this.#key!;
    const keyId = this.keyId!;
    const ts = this.#now();
    const signature = sign(null, checkpointBytes({ seq, hash, ts, keyId }), key).toString('base64url');
    const c: AuditCheckpoint = { seq, hash, ts, keyId, signature };
    await this.#store.addCheckpoint(c);
    return c;
  }

  /**
   * Starts a drain after a short window, so that the events queued meanwhile (one per statement on a
   * busy gateway) are written in one transaction.
   */
  #kick(): void {
    if (this.#draining) return;
    this.#draining = new Promise<void>((resolve) => setTimeout(resolve, BATCH_WINDOW_MS))
      .then(() => this.#drain())
      .finally(() => {
        this.#draining = undefined;
        if (this.#queue.length > 0) this.#kick();
      });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      const byEvent = new Map<AuditEventInput, Prepared>(batch.map((b) => [b.prepared.event, b.prepared]));
      try {
        const written = await this.#store.appendAuditBatch(
          batch.map((b) => b.prepared.event),
          (head, event) => {
            const seq = (head?.seq ?? 0) + 1;
            const prevHash = head?.hash ?? GENESIS_HASH;
            const p = byEvent.get(event);
            return { seq, prevHash, hash: p ? hashPrepared(prevHash, p, seq) : hashAuditEvent(prevHash, { ...event, seq }) };
          },
        );
        batch.forEach((b, i) => b.resolve(written[i]!));
        if (this.#every > 0) {
          for (const w of written) {
            if (w.seq % this.#every === 0) await this.#sign(w.seq, w.hash).catch((e: unknown) => this.#onError(toGatehouseError(e, 'ERR_STORE')));
          }
        }
      } catch (e) {
        const err = toGatehouseError(e, 'ERR_STORE');
        for (const b of batch) b.reject(err);
      } finally {
        this.#pending -= batch.length;
      }
    }
  }
}

/** Validates and snapshots an input: data normalized to plain JSON and credential values redacted. */
function prepare(input: AuditEventInput): Prepared {
  if (!Number.isSafeInteger(input.ts)) throw new GatehouseError('ERR_INTERNAL', 'internal error', { detail: `audit event ts must be integer ms, got ${String(input.ts)}` });
  if (typeof input.type !== 'string' || input.type === '') throw new GatehouseError('ERR_INTERNAL', 'internal error', { detail: 'audit event type must be a non-empty string' });
  const dataJson = canonicalJson(redactCredentials(input.data ?? {}));
  const data = JSON.parse(dataJson) as unknown;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new GatehouseError('ERR_INTERNAL', 'internal error', { detail: 'audit event data must be an object' });
  }
  const event: AuditEventInput = { ts: input.ts, type: storableText(String(input.type)), data: data as Record<string, unknown> };
  if (input.sessionId !== undefined) event.sessionId = storableText(String(input.sessionId));
  if (input.actor !== undefined) event.actor = storableText(String(input.actor));
  if (input.connection !== undefined) event.connection = storableText(String(input.connection));
  return { event, dataJson };
}

/** An event as queued, with its `data` already in canonical JSON (so it is serialized once). */
interface Prepared {
  event: AuditEventInput;
  dataJson: string;
}

/**
 * `hash(n)` of a prepared event: the same bytes as {@link hashAuditEvent}, with the body assembled
 * from its canonical parts (keys in JCS order: actor, connection, data, seq, sessionId, ts, type).
 */
function hashPrepared(prevHash: string, p: Prepared, seq: number): string {
  const e = p.event;
  const str = (v: string | undefined): string => (v === undefined ? 'null' : JSON.stringify(v));
  const body = `{"actor":${str(e.actor)},"connection":${str(e.connection)},"data":${p.dataJson},"seq":${seq},"sessionId":${str(e.sessionId)},"ts":${e.ts},"type":${str(e.type)}}`;
  return createHash('sha256').update(prevHash + body, 'utf8').digest('hex');
}

function defaultOnError(err: GatehouseError, input?: AuditEventInput): void {
  console.error('gatehouse: audit write failed', JSON.stringify({ ...err.toJSON(), type: input?.type, sessionId: input?.sessionId }));
}
