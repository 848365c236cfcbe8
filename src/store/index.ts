import { GatehouseError } from '../core/errors.js';
import type { Store } from './store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { PostgresStore } from './postgres/postgres-store.js';

export type * from './store.js';
export { SqliteStore } from './sqlite/sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite/sqlite-store.js';
export { PostgresStore } from './postgres/postgres-store.js';
export type { PostgresStoreOptions } from './postgres/postgres-store.js';

export interface OpenStoreOptions {
  /** This gateway instance's id (event origin, session ownership). Default: a random UUID. */
  instanceId?: string;
  /** Background errors (event listener, idle connections, throwing event handlers). Default: ignored. */
  onError?: (err: unknown) => void;
}

/**
 * Opens the store named by `url` and applies pending migrations.
 *
 * - `sqlite:./data/gatehouse.db` (relative to the working directory), `sqlite:/abs/path.db`,
 *   `sqlite:///abs/path.db`, `sqlite::memory:`: the embedded store; the file's directory is created.
 * - `postgres://…`, `postgresql://…`: the shared store (any `pg` connection string).
 *
 * @throws GatehouseError `ERR_CONFIG` for an unknown scheme, `ERR_STORE` when the store cannot be
 *   opened or migrated (public messages never carry the URL or its password).
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  let store: Store;
  if (scheme === 'sqlite') {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new GatehouseError('ERR_CONFIG', 'store URL has no database path', { detail: url });
    store = new SqliteStore(path, opts);
  } else if (scheme === 'postgres' || scheme === 'postgresql') {
    store = await PostgresStore.connect(url, opts);
  } else {
    throw new GatehouseError('ERR_CONFIG', `unsupported store URL scheme ${scheme ? `'${scheme}:'` : '(none)'}; use sqlite: or postgres://`);
  }
  try {
    await store.migrate();
  } catch (e) {
    await store.close().catch(() => {});
    throw e;
  }
  return store;
}
