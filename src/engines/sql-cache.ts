/**
 * What the SQL classifiers of the engines share to cache their results: a small LRU map, and the
 * deep freeze that makes one classification safe to hand to every caller.
 */
import type { SqlStatement } from '../core/command.js';

/** A map that keeps at most `capacity` entries and drops the least recently used first. */
export class Lru<V> {
  readonly #map = new Map<string, V>();
  #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** A new capacity; entries beyond it are dropped at once, the least recently used first. */
  set capacity(n: number) {
    this.#capacity = n;
    while (this.#map.size > n) this.#map.delete(this.#map.keys().next().value!);
  }

  /** The value of `key`, which becomes the most recently used. */
  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.#map.set(key, value);
    if (this.#map.size > this.#capacity) this.#map.delete(this.#map.keys().next().value!);
  }

  clear(): void {
    this.#map.clear();
  }
}

/** Freezes statements, their table references and name lists: a cached result cannot be altered. */
export function freezeStatements(stmts: SqlStatement[]): readonly SqlStatement[] {
  for (const s of stmts) {
    for (const t of s.tables) Object.freeze(t);
    Object.freeze(s.tables);
    Object.freeze(s.functions);
    if (s.columns) Object.freeze(s.columns);
    Object.freeze(s);
  }
  return Object.freeze(stmts);
}
