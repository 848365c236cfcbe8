/**
 * The SQLite store's background writer: a worker thread with its own connection to the same
 * database file (WAL lets it write while the main connection reads), so that the high-volume
 * appends — audit events and recording events, several per statement on a busy gateway — cost the
 * event loop a message, not the transaction.
 *
 * Each job is one transaction: an optional guard (a query whose single row must equal an expected
 * value, e.g. the audit chain head) and batches of parameter rows for prepared statements.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface WriteBatch {
  sql: string;
  rows: unknown[][];
}

export interface WriteGuard {
  sql: string;
  /** Column → expected value of the guard query's row. */
  expect: Record<string, unknown>;
}

/** Thrown when a guard does not hold (another writer moved what the job was built on). */
export class GuardFailed extends Error {
  override readonly name = 'GuardFailed';
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
const cache = new Map();
const prep = (sql) => { let s = cache.get(sql); if (!s) { s = db.prepare(sql); cache.set(sql, s); } return s; };
parentPort.on('message', (m) => {
  if (m.close) { try { db.close(); } catch {} parentPort.postMessage({ id: m.id, ok: true }); return; }
  try {
    db.transaction(() => {
      if (m.guard) {
        const row = prep(m.guard.sql).get() || {};
        for (const k of Object.keys(m.guard.expect)) {
          if (row[k] !== m.guard.expect[k]) { const e = new Error('guard failed on ' + k); e.guard = true; throw e; }
        }
      }
      for (const b of m.batches) { const s = prep(b.sql); for (const r of b.rows) s.run(r); }
    }).immediate();
    parentPort.postMessage({ id: m.id, ok: true });
  } catch (e) {
    parentPort.postMessage({ id: m.id, ok: false, guard: !!(e && e.guard), message: String((e && e.message) || e), code: e && e.code });
  }
});
`;

interface Pending {
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class BackgroundWriter {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  #failure: Error | undefined;
  #closing: Promise<void> | undefined;

  constructor(path: string, busyTimeoutMs: number) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, busyTimeoutMs, module }, execArgv: [] });
    this.#worker.unref();
    this.#worker.on('message', (m: { id: number; ok: boolean; guard?: boolean; message?: string; code?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve();
      else p.reject(m.guard ? new GuardFailed(m.message) : Object.assign(new Error(m.message), { code: m.code }));
    });
    const fail = (e: Error): void => {
      this.#failure = e;
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => {
      if (this.#pending.size > 0) fail(new Error(`store writer exited (${code})`));
    });
  }

  /** Runs one transaction on the writer's connection. */
  run(batches: WriteBatch[], guard?: WriteGuard): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, batches, ...(guard ? { guard } : {}) });
    });
  }

  /** Waits for the jobs sent so far, closes the writer's connection and stops the thread. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#failure) {
        const id = this.#next++;
        await new Promise<void>((resolve) => {
          this.#pending.set(id, { resolve, reject: () => resolve() });
          this.#worker.postMessage({ id, close: true });
        });
      }
      this.#failure ??= new Error('store writer closed');
      await this.#worker.terminate();
    })();
    return this.#closing;
  }
}
