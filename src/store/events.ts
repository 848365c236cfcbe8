import { GatehouseError } from '../core/errors.js';
import type { StoreEvents, StoreTopic } from './store.js';

/**
 * Largest event payload, as JSON bytes. PostgreSQL's NOTIFY takes at most 8000 bytes including
 * Gatehouse's envelope; both backends enforce the same limit so that behaviour does not depend on
 * the store. Events are signals ("review r1 changed"), not data carriers.
 */
export const MAX_EVENT_PAYLOAD_BYTES = 7000;

type Handler = (payload: Record<string, unknown>) => void;

/** Per-process handler registry: each handler gets its own copy of the payload. */
export class TopicHub {
  readonly #handlers = new Map<StoreTopic, Set<Handler>>();
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  subscribe(topic: StoreTopic, handler: Handler): () => void {
    let set = this.#handlers.get(topic);
    if (!set) this.#handlers.set(topic, (set = new Set()));
    const entry: Handler = (p) => handler(p);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  /** Runs every handler of `topic` with a fresh parse of `json`; a throwing handler does not stop the others. */
  dispatch(topic: StoreTopic, json: string): void {
    const set = this.#handlers.get(topic);
    if (!set) return;
    for (const h of [...set]) {
      try {
        h(JSON.parse(json) as Record<string, unknown>);
      } catch (e) {
        this.#onError(e);
      }
    }
  }

  clear(): void {
    this.#handlers.clear();
  }
}

/** Serializes a payload and enforces the size limit. */
export function encodePayload(topic: StoreTopic, payload: Record<string, unknown>): string {
  const json = JSON.stringify(payload);
  if (Buffer.byteLength(json) > MAX_EVENT_PAYLOAD_BYTES) {
    throw new GatehouseError('ERR_STORE', 'event payload too large', { detail: `topic ${topic}: over ${MAX_EVENT_PAYLOAD_BYTES} bytes` });
  }
  return json;
}

/** In-process events (the SQLite store: one gateway instance). Handlers run on a later tick, never inside `publish`. */
export class LocalEvents implements StoreEvents {
  readonly #hub: TopicHub;

  constructor(onError: (err: unknown) => void) {
    this.#hub = new TopicHub(onError);
  }

  async publish(topic: StoreTopic, payload: Record<string, unknown>): Promise<void> {
    const json = encodePayload(topic, payload);
    setImmediate(() => this.#hub.dispatch(topic, json));
  }

  subscribe(topic: StoreTopic, handler: Handler): () => void {
    return this.#hub.subscribe(topic, handler);
  }

  close(): void {
    this.#hub.clear();
  }
}
