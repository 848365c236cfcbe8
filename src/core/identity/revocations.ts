import type { RevocationKind, RevocationRecord } from '../../store/store.js';
import type { Identity } from './types.js';

export interface RevocationSetOptions {
  /** Clock, milliseconds since the epoch. Defaults to `Date.now`. */
  now?: () => number;
}

/**
 * The revocations in force, indexed for O(1) lookups on the token-verification hot path.
 * Holds {@link RevocationRecord}s by kind (`subject`, `client_id`, `token_id`); a record whose
 * `expiresAt` has passed is ignored (and dropped when met). Load it from the store at start-up
 * and keep it current from the store's `revocation` events.
 */
export class RevocationSet {
  readonly #now: () => number;
  readonly #byId = new Map<string, RevocationRecord>();
  /** `kind \0 value` → records with that kind and value, by id. */
  readonly #byValue = new Map<string, Map<string, RevocationRecord>>();

  constructor(options: RevocationSetOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Number of records held, lapsed ones included until they are met or removed. */
  get size(): number {
    return this.#byId.size;
  }

  /** Replaces the whole set. */
  load(records: Iterable<RevocationRecord>): void {
    this.#byId.clear();
    this.#byValue.clear();
    for (const r of records) this.add(r);
  }

  /** Adds a record, or replaces the one with the same id. */
  add(record: RevocationRecord): void {
    this.remove(record.id);
    this.#byId.set(record.id, record);
    const key = slot(record.kind, record.value);
    let bucket = this.#byValue.get(key);
    if (bucket === undefined) this.#byValue.set(key, (bucket = new Map()));
    bucket.set(record.id, record);
  }

  /** Removes a record by id; returns whether it was held. */
  remove(id: string): boolean {
    const record = this.#byId.get(id);
    if (record === undefined) return false;
    this.#byId.delete(id);
    const key = slot(record.kind, record.value);
    const bucket = this.#byValue.get(key);
    bucket?.delete(id);
    if (bucket?.size === 0) this.#byValue.delete(key);
    return true;
  }

  /** The revocation in force that refuses this identity (by subject, client id or token id), if any. */
  has(identity: Identity): RevocationRecord | undefined {
    return (
      this.#find('subject', identity.subject) ??
      (identity.clientId === undefined ? undefined : this.#find('client_id', identity.clientId)) ??
      (identity.tokenId === undefined ? undefined : this.#find('token_id', identity.tokenId))
    );
  }

  /** `has(identity) !== undefined`; shaped for `TokenVerifier`'s `isRevoked` option. */
  readonly isRevoked = (identity: Identity): boolean => this.has(identity) !== undefined;

  #find(kind: RevocationKind, value: string): RevocationRecord | undefined {
    const bucket = this.#byValue.get(slot(kind, value));
    if (bucket === undefined) return undefined;
    const now = this.#now();
    for (const record of bucket.values()) {
      if (record.expiresAt === undefined || record.expiresAt > now) return record;
      this.remove(record.id);
    }
    return undefined;
  }
}

function slot(kind: RevocationKind, value: string): string {
  return `${kind}\0${value}`;
}
