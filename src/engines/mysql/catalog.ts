/**
 * What the target's catalog says about the tables a statement reads, for masking: whether a name is
 * a base table or a view, its columns, and for a view the base columns it reads (its definition, from
 * `information_schema.VIEWS`, classified like any statement; nested views followed). Looked up over a
 * side connection with the gateway's credentials (mysql2, at most two connections), cached per
 * target for a minute.
 *
 * MySQL column definitions name the table and column a value comes from only when the value is a
 * column read directly; for a view's columns they name the view, for derived tables and CTEs their
 * alias, for expressions nothing. The masking plan uses this catalog to tell those cases apart.
 */
import mysql2 from 'mysql2/promise';
import type { ColumnRef } from '../../core/masking/types.js';
import { classifyMysql } from './classify.js';
import type { MysqlTarget } from './upstream.js';

export interface CatalogEntry {
  kind: 'table' | 'view';
  schema: string;
  table: string;
  /** Column names, lower-cased. */
  columns: string[];
  /** Views: the base-table columns the view may read values from (through nested views). */
  base?: ColumnRef[];
}

const TTL_MS = 60_000;
const MAX_VIEW_DEPTH = 8;

interface Cached {
  entry: CatalogEntry | null;
  at: number;
}

function splitName(name: string, db: string | undefined): { schema: string; table: string } | undefined {
  const dot = name.indexOf('.');
  if (dot >= 0) return { schema: name.slice(0, dot), table: name.slice(dot + 1) };
  return db === undefined ? undefined : { schema: db, table: name };
}

export class MysqlCatalog {
  readonly #pool: mysql2.Pool;
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(target: MysqlTarget) {
    this.#pool = mysql2.createPool({
      host: target.host,
      port: target.port,
      user: target.user,
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls ? { ssl: { ...target.tls } as mysql2.SslOptions } : {}),
      connectionLimit: 2,
      maxIdle: 0,
      idleTimeout: 30_000,
      connectAttributes: { program_name: 'gatehouse-catalog' },
    } as mysql2.PoolOptions);
  }

  /** The entry for `schema.table` (lower-cased): null = no such table or view; undefined = not loaded. */
  get(name: string): CatalogEntry | null | undefined {
    const c = this.#cache.get(name);
    if (c === undefined || Date.now() - c.at > TTL_MS) return undefined;
    return c.entry;
  }

  /** True when every name is cached. */
  has(names: readonly string[]): boolean {
    return names.every((n) => this.get(n) !== undefined);
  }

  /** Loads the entries of qualified names (`schema.table`, lower-cased) not cached. */
  async load(names: readonly string[], depth = 0): Promise<void> {
    const waits: Promise<void>[] = [];
    const fetch: string[] = [];
    for (const n of new Set(names)) {
      if (this.get(n) !== undefined) continue;
      const p = this.#inflight.get(n);
      if (p) waits.push(p);
      else fetch.push(n);
    }
    if (fetch.length > 0) {
      const p = this.#fetch(fetch, depth).finally(() => {
        for (const n of fetch) this.#inflight.delete(n);
      });
      for (const n of fetch) this.#inflight.set(n, p);
      waits.push(p);
    }
    await Promise.all(waits);
  }

  async #fetch(names: string[], depth: number): Promise<void> {
    const parts = names.map((n) => splitName(n, undefined)).filter((p): p is { schema: string; table: string } => p !== undefined);
    if (parts.length === 0) return;
    const where = parts.map(() => '(LOWER(t.TABLE_SCHEMA) = ? AND LOWER(t.TABLE_NAME) = ?)').join(' OR ');
    const args = parts.flatMap((p) => [p.schema, p.table]);
    const [rows] = await this.#pool.query<mysql2.RowDataPacket[]>(
      `SELECT LOWER(t.TABLE_SCHEMA) AS s, LOWER(t.TABLE_NAME) AS t, t.TABLE_TYPE AS kind, v.VIEW_DEFINITION AS def,
              (SELECT GROUP_CONCAT(LOWER(c.COLUMN_NAME) ORDER BY c.ORDINAL_POSITION SEPARATOR '\\n') FROM information_schema.COLUMNS c
                WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME) AS cols
         FROM information_schema.TABLES t
         LEFT JOIN information_schema.VIEWS v ON v.TABLE_SCHEMA = t.TABLE_SCHEMA AND v.TABLE_NAME = t.TABLE_NAME
        WHERE ${where}`,
      args,
    );
    const now = Date.now();
    const found = new Set<string>();
    const views: { name: string; entry: CatalogEntry; def: string }[] = [];
    for (const r of rows) {
      const name = `${String(r.s)}.${String(r.t)}`;
      found.add(name);
      const entry: CatalogEntry = { kind: String(r.kind).toUpperCase().includes('VIEW') ? 'view' : 'table', schema: String(r.s), table: String(r.t), columns: r.cols ? String(r.cols).split('\n') : [] };
      if (entry.kind === 'view') views.push({ name, entry, def: String(r.def ?? '') });
      else this.#cache.set(name, { entry, at: now });
    }
    for (const n of names) if (!found.has(n)) this.#cache.set(n, { entry: null, at: now });
    for (const v of views) {
      v.entry.base = await this.#viewBase(v.entry.schema, v.def, depth);
      this.#cache.set(v.name, { entry: v.entry, at: now });
    }
  }

  /** The base columns a view definition reads: its referenced columns on its tables, through nested views. */
  async #viewBase(schema: string, definition: string, depth: number): Promise<ColumnRef[]> {
    const statements = definition ? classifyMysql(definition) : [];
    const tables = statements.flatMap((s) => s.tables.filter((t) => t.access === 'read').map((t) => (t.name.includes('.') ? t.name : `${schema}.${t.name}`)));
    const columns = [...new Set(statements.flatMap((s) => s.columns ?? ['*']))];
    if (statements.length === 0 || statements.some((s) => s.type === 'unknown')) columns.push('*');
    if (depth < MAX_VIEW_DEPTH) await this.load(tables, depth + 1);
    const out: ColumnRef[] = [];
    for (const t of new Set(tables)) {
      const e = this.get(t);
      const p = splitName(t, schema)!;
      if (e?.kind === 'view') out.push(...(e.base ?? []));
      const names = columns.includes('*') ? [...(e?.columns ?? []), ...columns.filter((c) => c !== '*')] : columns;
      for (const c of names) out.push({ schema: p.schema, table: p.table, column: c });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }
}
