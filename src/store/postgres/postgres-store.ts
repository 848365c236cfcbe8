import { randomUUID } from 'node:crypto';
import pg from 'pg';
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
  StoreEvents,
  StoreTopic,
} from '../store.js';
import { TopicHub, encodePayload } from '../events.js';
import { checkLink, redactUrl, storeError, urlPassword } from '../errors.js';
import { assertOrdered, latestVersion, postgresMigrations } from '../migrations/index.js';
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
  pgPlaceholder as ph,
  reviewsQuery,
  sessionsQuery,
} from '../queries.js';

export interface PostgresStoreOptions {
  /** This gateway instance's id; carried as `origin` in event envelopes. Default: a random UUID. */
  instanceId?: string;
  /** Pool size. Default 10. */
  poolSize?: number;
  /** NOTIFY channel. Default `gatehouse_events`. */
  channel?: string;
  /** Background errors: idle pool clients, the event listener, throwing event handlers. Default: ignored. */
  onError?: (err: unknown) => void;
}

type Row = Record<string, unknown>;

const MIGRATION_LOCK = 0x67617465; // "gate"
const SAFE_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const jsonb = (kind: string): string => (kind === 'json' ? '::jsonb' : '');

/**
 * The shared store: PostgreSQL through a `pg` pool, for several gateway instances. Audit appends
 * lock the single `audit_head` row, so the chain is serialized across instances. Events go over
 * `LISTEN/NOTIFY` on one dedicated connection that reconnects with backoff (events published
 * while it is reconnecting are not delivered to this instance).
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly events: PgEvents;
  readonly instanceId: string;
  readonly #pool: pg.Pool;
  readonly #secret: string | undefined;
  #closed = false;

  private constructor(pool: pg.Pool, events: PgEvents, instanceId: string, secret: string | undefined) {
    this.#pool = pool;
    this.events = events;
    this.instanceId = instanceId;
    this.#secret = secret;
  }

  /**
   * Connects the pool and the event listener. Does not migrate (see `migrate()`).
   * @throws GatehouseError `ERR_STORE` when the database cannot be reached; the message never
   *   carries the URL's password.
   */
  static async connect(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    assertOrdered(postgresMigrations);
    const channel = opts.channel ?? 'gatehouse_events';
    if (!SAFE_IDENTIFIER.test(channel)) throw new GatehouseError('ERR_CONFIG', 'invalid event channel name', { detail: channel });
    const onError = opts.onError ?? (() => {});
    const secret = urlPassword(url);
    const instanceId = opts.instanceId ?? randomUUID();
    const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, application_name: 'gatehouse' });
    pool.on('error', (e) => onError(storeError(e, 'postgres pool', secret)));
    const events = new PgEvents(url, channel, instanceId, pool, onError, secret);
    try {
      await pool.query('SELECT 1');
      await events.start();
    } catch (e) {
      await events.close().catch(() => {});
      await pool.end().catch(() => {});
      const err = storeError(e, `connect ${redactUrl(url)}`, secret);
      throw new GatehouseError('ERR_STORE', 'cannot connect to the store', { detail: err.detail, cause: e });
    }
    return new PostgresStore(pool, events, instanceId, secret);
  }

  async migrate(): Promise<number> {
    return this.#tx('migrate', async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      const current = await currentVersion(c);
      const latest = latestVersion(postgresMigrations);
      if (current > latest) {
        throw new GatehouseError('ERR_STORE', 'store schema is newer than this Gatehouse', { detail: `schema ${current}, known ${latest}` });
      }
      for (const m of postgresMigrations) {
        if (m.version <= current) continue;
        await c.query(m.up);
        await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      }
      return currentVersion(c);
    });
  }

  async schemaVersion(): Promise<number> {
    return this.#run('schemaVersion', async () => {
      const r = await this.#pool.query<Row>(`SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`);
      return r.rows[0]?.exists ? currentVersion(this.#pool) : 0;
    });
  }

  async ping(): Promise<void> {
    await this.#run('ping', () => this.#pool.query('SELECT 1'));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.events.close();
    await this.#pool.end();
  }

  async createSession(s: SessionRecord): Promise<void> {
    await this.#insert('createSession', rows.sessions, s);
  }

  async endSession(id: string, endedAt: number, reason: string): Promise<void> {
    await this.#run('endSession', () =>
      this.#pool.query('UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL', [endedAt, reason, id]),
    );
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    return this.#one('getSession', rows.sessions, { text: `SELECT ${columnList(rows.sessions)} FROM sessions WHERE id = $1`, params: [id] });
  }

  async listSessions(q: SessionQuery = {}): Promise<SessionRecord[]> {
    return this.#all('listSessions', rows.sessions, sessionsQuery(q, ph));
  }

  async appendAudit(input: AuditEventInput, build: (head: AuditHead | undefined) => Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'>): Promise<AuditEvent> {
    const [event] = await this.appendAuditBatch([input], (head) => build(head));
    return event!;
  }

  async appendAuditBatch(inputs: readonly AuditEventInput[], build: (head: AuditHead | undefined, input: AuditEventInput) => Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'>): Promise<AuditEvent[]> {
    return this.#tx('appendAudit', async (c) => {
      const r = await c.query<Row>('SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE');
      const row = r.rows[0];
      if (!row) throw new GatehouseError('ERR_STORE', 'store error', { detail: 'audit_head row missing' });
      const seq = Number(row.seq);
      let head = seq > 0 ? { seq, hash: String(row.hash) } : undefined;
      const out: AuditEvent[] = [];
      for (const input of inputs) {
        const link = build(head, input);
        checkLink(head, link);
        const event: AuditEvent = { ...input, ...link };
        await c.query(insertSql(rows.auditEvents, ph, jsonb), rows.encodeRow(rows.auditEvents, event));
        head = { seq: link.seq, hash: link.hash };
        out.push(event);
      }
      if (head) await c.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [head.seq, head.hash]);
      return out;
    });
  }

  async listAudit(q: AuditQuery = {}): Promise<AuditEvent[]> {
    return this.#all('listAudit', rows.auditEvents, auditQuery(q, ph));
  }

  async auditHead(): Promise<AuditHead | undefined> {
    return this.#run('auditHead', async () => {
      const r = await this.#pool.query<Row>('SELECT seq, hash FROM audit_head WHERE id = 1');
      const row = r.rows[0];
      return row && Number(row.seq) > 0 ? { seq: Number(row.seq), hash: String(row.hash) } : undefined;
    });
  }

  async addCheckpoint(c: AuditCheckpoint): Promise<void> {
    await this.#insert('addCheckpoint', rows.auditCheckpoints, c);
  }

  async listCheckpoints(): Promise<AuditCheckpoint[]> {
    return this.#all('listCheckpoints', rows.auditCheckpoints, {
      text: `SELECT ${columnList(rows.auditCheckpoints)} FROM audit_checkpoints ORDER BY seq ASC, id ASC`,
      params: [],
    });
  }

  async createReview(r: ReviewRecord): Promise<void> {
    await this.#insert('createReview', rows.reviews, r);
  }

  async getReview(id: string): Promise<ReviewRecord | undefined> {
    return this.#one('getReview', rows.reviews, { text: `SELECT ${columnList(rows.reviews)} FROM reviews WHERE id = $1`, params: [id] });
  }

  async listReviews(q: { state?: ReviewState; subject?: string; connection?: string; limit?: number } = {}): Promise<ReviewRecord[]> {
    return this.#all('listReviews', rows.reviews, reviewsQuery(q, ph));
  }

  async updateReview(id: string, from: ReviewState, patch: Partial<Omit<ReviewRecord, 'id'>>): Promise<ReviewRecord | undefined> {
    return this.#one('updateReview', rows.reviews, casUpdateSql(rows.reviews, rows.patchColumns(rows.reviews, patch), id, from, ph, jsonb));
  }

  async findApprovedReview(subject: string, connection: string, fingerprint: string, now: number): Promise<ReviewRecord | undefined> {
    return this.#one('findApprovedReview', rows.reviews, approvedReviewQuery(subject, connection, fingerprint, now, ph));
  }

  async createGrant(g: GrantRecord): Promise<void> {
    await this.#insert('createGrant', rows.grants, g);
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    return this.#one('getGrant', rows.grants, { text: `SELECT ${columnList(rows.grants)} FROM grants WHERE id = $1`, params: [id] });
  }

  async listGrants(q: { state?: GrantState; subject?: string; connection?: string; limit?: number } = {}): Promise<GrantRecord[]> {
    return this.#all('listGrants', rows.grants, grantsQuery(q, ph));
  }

  async updateGrant(id: string, from: GrantState, patch: Partial<Omit<GrantRecord, 'id'>>): Promise<GrantRecord | undefined> {
    return this.#one('updateGrant', rows.grants, casUpdateSql(rows.grants, rows.patchColumns(rows.grants, patch), id, from, ph, jsonb));
  }

  async activeGrant(subject: string, connection: string, now: number): Promise<GrantRecord | undefined> {
    return this.#one('activeGrant', rows.grants, activeGrantQuery(subject, connection, now, ph));
  }

  async addRevocation(r: RevocationRecord): Promise<void> {
    await this.#insert('addRevocation', rows.revocations, r);
  }

  async listRevocations(): Promise<RevocationRecord[]> {
    return this.#all('listRevocations', rows.revocations, {
      text: `SELECT ${columnList(rows.revocations)} FROM revocations ORDER BY created_at ASC, id ASC`,
      params: [],
    });
  }

  async removeRevocation(id: string): Promise<boolean> {
    return this.#run('removeRevocation', async () => ((await this.#pool.query('DELETE FROM revocations WHERE id = $1', [id])).rowCount ?? 0) > 0);
  }

  async appendRecording(events: RecordingEvent[]): Promise<void> {
    if (events.length === 0) return;
    const n = rows.recordings.columns.length;
    const values = events.map((_, i) => `(${rows.recordings.columns.map((c, j) => `$${i * n + j + 1}${jsonb(c.kind)}`).join(', ')})`);
    const params = events.flatMap((e) => rows.encodeRow(rows.recordings, e));
    await this.#run('appendRecording', () =>
      this.#pool.query(`INSERT INTO recordings (${columnList(rows.recordings)}) VALUES ${values.join(', ')}`, params),
    );
  }

  async readRecording(sessionId: string, afterSeq = 0, limit?: number): Promise<RecordingEvent[]> {
    const base = `SELECT ${columnList(rows.recordings)} FROM recordings WHERE session_id = $1 AND seq > $2 ORDER BY seq ASC`;
    return this.#all(
      'readRecording',
      rows.recordings,
      limit === undefined ? { text: base, params: [sessionId, afterSeq] } : { text: `${base} LIMIT $3`, params: [sessionId, afterSeq, Math.max(0, Math.floor(limit))] },
    );
  }

  async #insert<T>(op: string, t: rows.Table<T>, record: T): Promise<void> {
    await this.#run(op, () => this.#pool.query(insertSql(t, ph, jsonb), rows.encodeRow(t, record)));
  }

  async #one<T>(op: string, t: rows.Table<T>, sql: Sql): Promise<T | undefined> {
    return this.#run(op, async () => {
      const r = await this.#pool.query<Row>(sql.text, sql.params);
      return r.rows[0] ? rows.decodeRow(t, r.rows[0]) : undefined;
    });
  }

  async #all<T>(op: string, t: rows.Table<T>, sql: Sql): Promise<T[]> {
    return this.#run(op, async () => (await this.#pool.query<Row>(sql.text, sql.params)).rows.map((r) => rows.decodeRow(t, r)));
  }

  async #tx<T>(op: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#run(op, async () => {
      const c = await this.#pool.connect();
      let broken: Error | undefined;
      try {
        await c.query('BEGIN');
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch((re: Error) => (broken = re));
        throw e;
      } finally {
        c.release(broken);
      }
    });
  }

  async #run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new GatehouseError('ERR_STORE', 'store is closed', { detail: op });
    try {
      return await fn();
    } catch (e) {
      throw storeError(e, `postgres ${op}`, this.#secret);
    }
  }
}

async function currentVersion(q: pg.Pool | pg.PoolClient): Promise<number> {
  const r = await q.query<Row>('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations');
  return Number(r.rows[0]?.v ?? 0);
}

const TOPICS: ReadonlySet<string> = new Set<StoreTopic>(['review', 'grant', 'revocation', 'session.kill', 'policy']);

/**
 * Events over `LISTEN/NOTIFY`. Envelope: `{"topic": …, "payload": {…}, "origin": instanceId}`.
 * Every notification (this instance's own included) reaches local handlers exactly once, through
 * the listening connection; `publish` itself never calls handlers.
 */
export class PgEvents implements StoreEvents {
  readonly #hub: TopicHub;
  #client: pg.Client | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #backoffMs = 100;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly instanceId: string,
    private readonly pool: pg.Pool,
    private readonly onError: (err: unknown) => void,
    private readonly secret: string | undefined,
  ) {
    this.#hub = new TopicHub(onError);
  }

  /** Opens the listening connection; rejects if it cannot. */
  async start(): Promise<void> {
    await this.#listen();
  }

  async publish(topic: StoreTopic, payload: Record<string, unknown>): Promise<void> {
    if (this.#closed) throw new GatehouseError('ERR_STORE', 'store is closed', { detail: 'publish' });
    const json = encodePayload(topic, payload);
    const envelope = `{"topic":${JSON.stringify(topic)},"origin":${JSON.stringify(this.instanceId)},"payload":${json}}`;
    try {
      await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, envelope]);
    } catch (e) {
      throw storeError(e, `postgres publish ${topic}`, this.secret);
    }
  }

  subscribe(topic: StoreTopic, handler: (payload: Record<string, unknown>) => void): () => void {
    return this.#hub.subscribe(topic, handler);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#hub.clear();
    const c = this.#client;
    this.#client = undefined;
    if (c) await c.end().catch(() => {});
  }

  async #listen(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, application_name: 'gatehouse-events' });
    c.on('error', (e) => this.#lost(c, e));
    c.on('end', () => this.#lost(c));
    c.on('notification', (msg) => {
      if (msg.channel !== this.channel || msg.payload === undefined) return;
      this.#deliver(msg.payload);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${this.channel}`);
    } catch (e) {
      await c.end().catch(() => {});
      throw e;
    }
    if (this.#closed) {
      await c.end().catch(() => {});
      return;
    }
    this.#client = c;
    this.#backoffMs = 100;
  }

  #deliver(raw: string): void {
    try {
      const env = JSON.parse(raw) as { topic?: unknown; payload?: unknown };
      if (typeof env.topic !== 'string' || !TOPICS.has(env.topic) || env.payload === null || typeof env.payload !== 'object') return;
      this.#hub.dispatch(env.topic as StoreTopic, JSON.stringify(env.payload));
    } catch (e) {
      this.onError(e);
    }
  }

  #lost(c: pg.Client, e?: Error): void {
    if (this.#client !== c) return;
    this.#client = undefined;
    c.end().catch(() => {});
    if (this.#closed) return;
    this.onError(storeError(e ?? new Error('event listener connection ended'), 'postgres events', this.secret));
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#timer) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, 5000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#listen().catch((e: unknown) => {
        this.onError(storeError(e, 'postgres events reconnect', this.secret));
        this.#schedule();
      });
    }, delay);
    this.#timer.unref();
  }
}
