import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { GatehouseError } from '../../core/errors.js';
import type {
  AuditCheckpoint,
  AuditEvent,
  AuditEventInput,
  AuditHead,
  AuditQuery,
  GrantRecord,
  GrantState,
  RecordingEvent,
  ReviewRecord,
  ReviewState,
  RevocationRecord,
  SessionQuery,
  SessionRecord,
  Store,
} from '../store.js';
import { LocalEvents } from '../events.js';
import { checkLink, storeError } from '../errors.js';
import { assertOrdered, latestVersion, sqliteMigrations } from '../migrations/index.js';
import { BackgroundWriter } from './writer.js';
import type { Migration } from '../migrations/index.js';
import * as rows from '../rows.js';
import type { Sql } from '../queries.js';
import {
  activeGrantQuery,
  approvedReviewQuery,
  auditQuery,
  casUpdateSql,
  columnList,
  grantsQuery,
  insertSql,
  reviewsQuery,
  sessionsQuery,
  sqlitePlaceholder as ph,
} from '../queries.js';

export interface SqliteStoreOptions {
  /** This gateway instance's id (recorded on sessions by callers; informational here). */
  instanceId?: string;
  /** How long a writer waits for another process's lock before failing, ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Errors thrown by event handlers. Default: ignored. */
  onError?: (err: unknown) => void;
  /**
   * Write audit and recording events on a worker thread with its own connection (file databases
   * only). Default true.
   */
  backgroundWrites?: boolean;
}

type Row = Record<string, unknown>;

/**
 * The embedded store: one SQLite file (or `:memory:`) through better-sqlite3. WAL journal,
 * `synchronous = NORMAL` (durable across process crashes; the last transactions may be lost on
 * power failure), busy timeout for a second process such as the CLI. Calls are synchronous
 * underneath and short; every statement is prepared once and cached by its text. Events are
 * in-process only: a SQLite store serves one gateway instance.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly events: LocalEvents;
  readonly instanceId: string;
  /** Absolute path of the database file, or `:memory:`. */
  readonly path: string;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement<unknown[], Row>>();
  readonly #migrations: readonly Migration[];
  readonly #writer: BackgroundWriter | undefined;
  /** The audit chain head as this store last wrote it (undefined: empty chain; null: read it first). */
  #head: AuditHead | undefined | null = null;
  /** Audit appends run one after another (each builds on the head the previous one left). */
  #auditTail: Promise<unknown> = Promise.resolve();

  constructor(path: string, opts: SqliteStoreOptions = {}) {
    this.path = path === ':memory:' ? path : resolve(path);
    this.instanceId = opts.instanceId ?? randomUUID();
    this.events = new LocalEvents(opts.onError ?? (() => {}));
    this.#migrations = sqliteMigrations;
    assertOrdered(this.#migrations);
    try {
      if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
      this.#db = new Database(this.path);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
      this.#db.pragma('foreign_keys = ON');
      this.#writer = this.path !== ':memory:' && opts.backgroundWrites !== false ? new BackgroundWriter(this.path, Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))) : undefined;
    } catch (e) {
      throw new GatehouseError('ERR_STORE', 'cannot open the store', { detail: `sqlite ${this.path}: ${String(e)}`, cause: e });
    }
  }

  async migrate(): Promise<number> {
    return this.#run('migrate', () => {
      this.#db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      const apply = this.#db.transaction(() => {
        const current = this.#currentVersion();
        const latest = latestVersion(this.#migrations);
        if (current > latest) {
          throw new GatehouseError('ERR_STORE', 'store schema is newer than this Gatehouse', { detail: `schema ${current}, known ${latest}` });
        }
        for (const m of this.#migrations) {
          if (m.version <= current) continue;
          this.#db.exec(m.up);
          this.#db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
        }
        return this.#currentVersion();
      });
      return apply.immediate();
    });
  }

  async schemaVersion(): Promise<number> {
    return this.#run('schemaVersion', () => {
      const exists = this.#db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get();
      return exists ? this.#currentVersion() : 0;
    });
  }

  async ping(): Promise<void> {
    this.#run('ping', () => this.#get({ text: 'SELECT 1 AS ok', params: [] }));
  }

  async close(): Promise<void> {
    this.events.close();
    await this.#auditTail.catch(() => undefined);
    await this.#writer?.close().catch(() => undefined);
    if (this.#db.open) this.#db.close();
    this.#statements.clear();
  }

  async createSession(s: SessionRecord): Promise<void> {
    this.#run('createSession', () => this.#stmt(insertSql(rows.sessions, ph)).run(rows.encodeRow(rows.sessions, s)));
  }

  async endSession(id: string, endedAt: number, reason: string): Promise<void> {
    this.#run('endSession', () =>
      this.#stmt('UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL').run(endedAt, reason, id),
    );
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    return this.#run('getSession', () => this.#one(rows.sessions, { text: `SELECT ${columnList(rows.sessions)} FROM sessions WHERE id = ?`, params: [id] }));
  }

  async listSessions(q: SessionQuery = {}): Promise<SessionRecord[]> {
    return this.#run('listSessions', () => this.#all(rows.sessions, sessionsQuery(q, ph)));
  }

  async appendAudit(input: AuditEventInput, build: (head: AuditHead | undefined) => Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'>): Promise<AuditEvent> {
    const [event] = await this.appendAuditBatch([input], (head) => build(head));
    return event!;
  }

  async appendAuditBatch(inputs: readonly AuditEventInput[], build: (head: AuditHead | undefined, input: AuditEventInput) => Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'>): Promise<AuditEvent[]> {
    const writer = this.#writer;
    if (!writer) return this.#appendAuditHere(inputs, build);
    const job = this.#auditTail.then(async () => {
      if (!this.#db.open) throw new GatehouseError('ERR_STORE', 'store is closed', { detail: 'appendAudit' });
      try {
        if (this.#head === null) this.#head = this.#readHead();
        const start = this.#head;
        let head = start;
        const out: AuditEvent[] = [];
        const encoded: unknown[][] = [];
        for (const input of inputs) {
          const link = build(head, input);
          checkLink(head, link);
          const event: AuditEvent = { ...input, ...link };
          encoded.push(rows.encodeRow(rows.auditEvents, event));
          head = { seq: link.seq, hash: link.hash };
          out.push(event);
        }
        if (head === undefined || head === start) return out;
        await writer.run(
          [
            { sql: insertSql(rows.auditEvents, ph), rows: encoded },
            { sql: 'UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1', rows: [[head.seq, head.hash]] },
          ],
          { sql: 'SELECT seq, hash FROM audit_head WHERE id = 1', expect: start === undefined ? { seq: 0 } : { seq: start.seq, hash: start.hash } },
        );
        this.#head = head;
        return out;
      } catch (e) {
        this.#head = null;
        throw storeError(e, 'sqlite appendAudit');
      }
    });
    this.#auditTail = job.catch(() => undefined);
    return job;
  }

  #readHead(): AuditHead | undefined {
    const r = this.#stmt('SELECT seq, hash FROM audit_head WHERE id = 1').get() as { seq: number; hash: string } | undefined;
    return r && r.seq > 0 ? { seq: r.seq, hash: r.hash } : undefined;
  }

  /** Appends on the main connection (in-memory databases, or background writes turned off). */
  #appendAuditHere(inputs: readonly AuditEventInput[], build: (head: AuditHead | undefined, input: AuditEventInput) => Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'>): AuditEvent[] {
    return this.#run('appendAudit', () => {
      const tx = this.#db.transaction(() => {
        let head = this.#readHead();
        const insert = this.#stmt(insertSql(rows.auditEvents, ph));
        const out: AuditEvent[] = [];
        for (const input of inputs) {
          const link = build(head, input);
          checkLink(head, link);
          const event: AuditEvent = { ...input, ...link };
          insert.run(rows.encodeRow(rows.auditEvents, event));
          head = { seq: link.seq, hash: link.hash };
          out.push(event);
        }
        if (head) this.#stmt('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(head.seq, head.hash);
        return out;
      });
      return tx.immediate();
    });
  }

  async listAudit(q: AuditQuery = {}): Promise<AuditEvent[]> {
    return this.#run('listAudit', () => this.#all(rows.auditEvents, auditQuery(q, ph)));
  }

  async auditHead(): Promise<AuditHead | undefined> {
    return this.#run('auditHead', () => this.#readHead());
  }

  async addCheckpoint(c: AuditCheckpoint): Promise<void> {
    this.#run('addCheckpoint', () => this.#stmt(insertSql(rows.auditCheckpoints, ph)).run(rows.encodeRow(rows.auditCheckpoints, c)));
  }

  async listCheckpoints(): Promise<AuditCheckpoint[]> {
    return this.#run('listCheckpoints', () =>
      this.#all(rows.auditCheckpoints, { text: `SELECT ${columnList(rows.auditCheckpoints)} FROM audit_checkpoints ORDER BY seq ASC, id ASC`, params: [] }),
    );
  }

  async createReview(r: ReviewRecord): Promise<void> {
    this.#run('createReview', () => this.#stmt(insertSql(rows.reviews, ph)).run(rows.encodeRow(rows.reviews, r)));
  }

  async getReview(id: string): Promise<ReviewRecord | undefined> {
    return this.#run('getReview', () => this.#one(rows.reviews, { text: `SELECT ${columnList(rows.reviews)} FROM reviews WHERE id = ?`, params: [id] }));
  }

  async listReviews(q: { state?: ReviewState; subject?: string; connection?: string; limit?: number } = {}): Promise<ReviewRecord[]> {
    return this.#run('listReviews', () => this.#all(rows.reviews, reviewsQuery(q, ph)));
  }

  async updateReview(id: string, from: ReviewState, patch: Partial<Omit<ReviewRecord, 'id'>>): Promise<ReviewRecord | undefined> {
    return this.#run('updateReview', () => this.#one(rows.reviews, casUpdateSql(rows.reviews, rows.patchColumns(rows.reviews, patch), id, from, ph)));
  }

  async findApprovedReview(subject: string, connection: string, fingerprint: string, now: number): Promise<ReviewRecord | undefined> {
    return this.#run('findApprovedReview', () => this.#one(rows.reviews, approvedReviewQuery(subject, connection, fingerprint, now, ph)));
  }

  async createGrant(g: GrantRecord): Promise<void> {
    this.#run('createGrant', () => this.#stmt(insertSql(rows.grants, ph)).run(rows.encodeRow(rows.grants, g)));
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    return this.#run('getGrant', () => this.#one(rows.grants, { text: `SELECT ${columnList(rows.grants)} FROM grants WHERE id = ?`, params: [id] }));
  }

  async listGrants(q: { state?: GrantState; subject?: string; connection?: string; limit?: number } = {}): Promise<GrantRecord[]> {
    return this.#run('listGrants', () => this.#all(rows.grants, grantsQuery(q, ph)));
  }

  async updateGrant(id: string, from: GrantState, patch: Partial<Omit<GrantRecord, 'id'>>): Promise<GrantRecord | undefined> {
    return this.#run('updateGrant', () => this.#one(rows.grants, casUpdateSql(rows.grants, rows.patchColumns(rows.grants, patch), id, from, ph)));
  }

  async activeGrant(subject: string, connection: string, now: number): Promise<GrantRecord | undefined> {
    return this.#run('activeGrant', () => this.#one(rows.grants, activeGrantQuery(subject, connection, now, ph)));
  }

  async addRevocation(r: RevocationRecord): Promise<void> {
    this.#run('addRevocation', () => this.#stmt(insertSql(rows.revocations, ph)).run(rows.encodeRow(rows.revocations, r)));
  }

  async listRevocations(): Promise<RevocationRecord[]> {
    return this.#run('listRevocations', () =>
      this.#all(rows.revocations, { text: `SELECT ${columnList(rows.revocations)} FROM revocations ORDER BY created_at ASC, id ASC`, params: [] }),
    );
  }

  async removeRevocation(id: string): Promise<boolean> {
    return this.#run('removeRevocation', () => this.#stmt('DELETE FROM revocations WHERE id = ?').run(id).changes > 0);
  }

  async appendRecording(events: RecordingEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.#writer) {
      if (!this.#db.open) throw new GatehouseError('ERR_STORE', 'store is closed', { detail: 'appendRecording' });
      try {
        await this.#writer.run([{ sql: insertSql(rows.recordings, ph), rows: events.map((e) => rows.encodeRow(rows.recordings, e)) }]);
      } catch (e) {
        throw storeError(e, 'sqlite appendRecording');
      }
      return;
    }
    this.#run('appendRecording', () => {
      const insert = this.#stmt(insertSql(rows.recordings, ph));
      this.#db.transaction(() => {
        for (const e of events) insert.run(rows.encodeRow(rows.recordings, e));
      })();
    });
  }

  async readRecording(sessionId: string, afterSeq = 0, limit?: number): Promise<RecordingEvent[]> {
    return this.#run('readRecording', () => {
      const base = `SELECT ${columnList(rows.recordings)} FROM recordings WHERE session_id = ? AND seq > ? ORDER BY seq ASC`;
      return this.#all(
        rows.recordings,
        limit === undefined ? { text: base, params: [sessionId, afterSeq] } : { text: `${base} LIMIT ?`, params: [sessionId, afterSeq, Math.max(0, Math.floor(limit))] },
      );
    });
  }

  #currentVersion(): number {
    const r = this.#db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number };
    return r.v;
  }

  #stmt(text: string): Database.Statement<unknown[], Row> {
    let s = this.#statements.get(text);
    if (!s) {
      s = this.#db.prepare<unknown[], Row>(text);
      this.#statements.set(text, s);
    }
    return s;
  }

  #get(sql: Sql): Row | undefined {
    return this.#stmt(sql.text).get(sql.params);
  }

  #one<T>(t: rows.Table<T>, sql: Sql): T | undefined {
    const r = this.#get(sql);
    return r ? rows.decodeRow(t, r) : undefined;
  }

  #all<T>(t: rows.Table<T>, sql: Sql): T[] {
    return this.#stmt(sql.text).all(sql.params).map((r) => rows.decodeRow(t, r));
  }

  #run<T>(op: string, fn: () => T): T {
    if (!this.#db.open) throw new GatehouseError('ERR_STORE', 'store is closed', { detail: op });
    try {
      return fn();
    } catch (e) {
      throw storeError(e, `sqlite ${op}`);
    }
  }
}
