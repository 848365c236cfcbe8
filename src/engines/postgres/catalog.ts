import pg from 'pg';
import type { ColumnRef } from '../../core/masking/types.js';

interface TableInfo {
  schema: string;
  table: string;
  columns: Map<number, string>;
}

/**
 * Maps RowDescription's (table OID, attribute number) to `schema.table.column` using the target's
 * own catalog, over a side connection with the gateway's credentials. Results are cached per
 * connection; a table's entry is refreshed when a column number is not found (ALTER TABLE).
 */
export class CatalogResolver {
  readonly #pool: pg.Pool;
  readonly #tables = new Map<number, TableInfo | null>();
  readonly #inflight = new Map<number, Promise<void>>();

  constructor(config: pg.PoolConfig) {
    this.#pool = new pg.Pool({ ...config, max: 2, idleTimeoutMillis: 30_000, allowExitOnIdle: true });
    this.#pool.on('error', () => undefined);
  }

  /** Column sources for a RowDescription, or undefined when a lookup is needed first (see `load`). */
  resolveCached(fields: readonly { name: string; tableOid: number; columnAttr: number }[]): ColumnRef[] | undefined {
    const out: ColumnRef[] = [];
    for (const f of fields) {
      if (f.tableOid === 0) {
        out.push({ column: f.name });
        continue;
      }
      const t = this.#tables.get(f.tableOid);
      if (t === undefined) return undefined;
      const col = t?.columns.get(f.columnAttr);
      if (t && col === undefined) return undefined;
      out.push(t && col !== undefined ? { schema: t.schema, table: t.table, column: col } : { column: f.name });
    }
    return out;
  }

  /** Loads the tables a RowDescription references (those not cached, or stale). */
  async load(fields: readonly { tableOid: number; columnAttr: number }[]): Promise<void> {
    const missing = new Set<number>();
    for (const f of fields) {
      if (f.tableOid === 0) continue;
      const t = this.#tables.get(f.tableOid);
      if (t === undefined || (t && !t.columns.has(f.columnAttr))) missing.add(f.tableOid);
    }
    const waits: Promise<void>[] = [];
    const fetch: number[] = [];
    for (const oid of missing) {
      const p = this.#inflight.get(oid);
      if (p) waits.push(p);
      else fetch.push(oid);
    }
    if (fetch.length > 0) {
      const p = this.#fetch(fetch).finally(() => {
        for (const oid of fetch) this.#inflight.delete(oid);
      });
      for (const oid of fetch) this.#inflight.set(oid, p);
      waits.push(p);
    }
    await Promise.all(waits);
  }

  async #fetch(oids: number[]): Promise<void> {
    const r = await this.#pool.query<{ oid: number; nspname: string; relname: string; attnum: number; attname: string }>(
      `SELECT c.oid::int AS oid, n.nspname, c.relname, a.attnum::int AS attnum, a.attname
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.oid = ANY($1::oid[])`,
      [oids],
    );
    const found = new Map<number, TableInfo>();
    for (const row of r.rows) {
      let t = found.get(row.oid);
      if (!t) found.set(row.oid, (t = { schema: row.nspname, table: row.relname, columns: new Map() }));
      t.columns.set(row.attnum, row.attname);
    }
    for (const oid of oids) this.#tables.set(oid, found.get(oid) ?? null);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
