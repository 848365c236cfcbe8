import pg from 'pg';
import type { ColumnRef } from '../../core/masking/types.js';

interface TableInfo {
  schema: string;
  table: string;
  /** pg_class.relkind: `r` table, `p` partitioned, `v` view, `m` materialized view, `f` foreign, … */
  kind: string;
  columns: Map<number, string>;
  /** Views: the base-table columns the view reads (through nested views), from pg_depend. */
  base?: ColumnRef[];
}

/** Where one result column comes from. */
export interface ResolvedColumn {
  ref: ColumnRef;
  /** `table`: a column of a table; `view`: a view's column (see `base`); `computed`: an expression. */
  origin: 'table' | 'view' | 'computed';
  /** For `view`: the base columns the view reads. */
  base?: readonly ColumnRef[];
}

const VIEW_KINDS = new Set(['v', 'm']);
const MAX_VIEW_DEPTH = 8;

/**
 * Maps RowDescription's (table OID, attribute number) to `schema.table.column` using the target's
 * own catalog, over a side connection with the gateway's credentials. Results are cached per
 * connection; a table's entry is refreshed when a column number is not found (ALTER TABLE). Views
 * also carry the base columns they read (pg_depend of their rewrite rule), so column rules on a
 * base table can follow a value through a view.
 */
export class CatalogResolver {
  readonly #pool: pg.Pool;
  readonly #tables = new Map<number, TableInfo | null>();
  readonly #inflight = new Map<number, Promise<void>>();
  readonly #byName = new Map<string, ColumnRef[] | null>();

  constructor(config: pg.PoolConfig) {
    this.#pool = new pg.Pool({ ...config, max: 2, idleTimeoutMillis: 30_000, allowExitOnIdle: true });
    this.#pool.on('error', () => undefined);
  }

  /** Column sources for a RowDescription, or undefined when a lookup is needed first (see `load`). */
  resolveCached(fields: readonly { name: string; tableOid: number; columnAttr: number }[]): ResolvedColumn[] | undefined {
    const out: ResolvedColumn[] = [];
    for (const f of fields) {
      if (f.tableOid === 0) {
        out.push({ ref: { column: f.name }, origin: 'computed' });
        continue;
      }
      const t = this.#tables.get(f.tableOid);
      if (t === undefined) return undefined;
      const col = t?.columns.get(f.columnAttr);
      if (t && col === undefined) return undefined;
      if (!t || col === undefined) {
        out.push({ ref: { column: f.name }, origin: 'computed' });
        continue;
      }
      const ref = { schema: t.schema, table: t.table, column: col };
      out.push(VIEW_KINDS.has(t.kind) ? { ref, origin: 'view', base: t.base ?? [] } : { ref, origin: 'table' });
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
    await this.#loadOids([...missing], 0);
  }

  async #loadOids(oids: number[], depth: number): Promise<void> {
    const waits: Promise<void>[] = [];
    const fetch: number[] = [];
    for (const oid of oids) {
      const p = this.#inflight.get(oid);
      if (p) waits.push(p);
      else fetch.push(oid);
    }
    if (fetch.length > 0) {
      const p = this.#fetch(fetch, depth).finally(() => {
        for (const oid of fetch) this.#inflight.delete(oid);
      });
      for (const oid of fetch) this.#inflight.set(oid, p);
      waits.push(p);
    }
    await Promise.all(waits);
  }

  async #fetch(oids: number[], depth: number): Promise<void> {
    const r = await this.#pool.query<{ oid: number; nspname: string; relname: string; relkind: string; attnum: number; attname: string }>(
      `SELECT c.oid::int AS oid, n.nspname, c.relname, c.relkind::text AS relkind, a.attnum::int AS attnum, a.attname
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.oid = ANY($1::oid[])`,
      [oids],
    );
    const found = new Map<number, TableInfo>();
    for (const row of r.rows) {
      let t = found.get(row.oid);
      if (!t) found.set(row.oid, (t = { schema: row.nspname, table: row.relname, kind: row.relkind, columns: new Map() }));
      t.columns.set(row.attnum, row.attname);
    }
    const views = [...found.entries()].filter(([, t]) => VIEW_KINDS.has(t.kind)).map(([oid]) => oid);
    if (views.length > 0) await this.#viewBases(views, found, depth);
    for (const oid of oids) this.#tables.set(oid, found.get(oid) ?? null);
  }

  /** Fills `base` of the views: the relation columns their rewrite rules depend on, through nested views. */
  async #viewBases(views: number[], found: Map<number, TableInfo>, depth: number): Promise<void> {
    const r = await this.#pool.query<{ view: number; oid: number; attnum: number }>(
      `SELECT DISTINCT rw.ev_class::int AS view, d.refobjid::int AS oid, d.refobjsubid::int AS attnum
         FROM pg_catalog.pg_rewrite rw
         JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid
                                     AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> rw.ev_class
        WHERE rw.ev_class = ANY($1::oid[])`,
      [views],
    );
    const deps = new Set(r.rows.map((x) => x.oid));
    if (depth < MAX_VIEW_DEPTH) await this.#loadOids([...deps].filter((o) => !found.has(o) && !this.#tables.has(o)), depth + 1);
    const info = (oid: number): TableInfo | undefined => found.get(oid) ?? this.#tables.get(oid) ?? undefined;
    for (const v of views) {
      const base: ColumnRef[] = [];
      for (const d of r.rows) {
        if (d.view !== v) continue;
        const t = info(d.oid);
        if (!t) continue;
        if (VIEW_KINDS.has(t.kind)) base.push(...(t.base ?? []));
        else if (d.attnum === 0) for (const c of t.columns.values()) base.push({ schema: t.schema, table: t.table, column: c });
        else {
          const c = t.columns.get(d.attnum);
          if (c !== undefined) base.push({ schema: t.schema, table: t.table, column: c });
        }
      }
      found.get(v)!.base = base;
    }
  }

  /**
   * The columns of tables named in a statement (`public.users`, `users`), resolved with the target
   * login's search path. Unknown names resolve to nothing.
   */
  async columnsOf(names: readonly string[]): Promise<ColumnRef[]> {
    const todo = names.filter((n) => !this.#byName.has(n));
    if (todo.length > 0) {
      const r = await this.#pool.query<{ name: string; nspname: string; relname: string; attname: string }>(
        `SELECT x.name, n.nspname, c.relname, a.attname
           FROM unnest($1::text[]) AS x(name)
           JOIN pg_catalog.pg_class c ON c.oid = to_regclass(x.name)
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped`,
        [todo],
      );
      const got = new Map<string, ColumnRef[]>();
      for (const row of r.rows) {
        let l = got.get(row.name);
        if (!l) got.set(row.name, (l = []));
        l.push({ schema: row.nspname, table: row.relname, column: row.attname });
      }
      for (const n of todo) this.#byName.set(n, got.get(n) ?? null);
    }
    return names.flatMap((n) => this.#byName.get(n) ?? []);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
