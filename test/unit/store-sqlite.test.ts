import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore, SqliteStore } from '../../src/store/index.js';
import { assertOrdered, postgresMigrations, sqliteMigrations } from '../../src/store/migrations/index.js';
import { isGatehouseError } from '../../src/core/errors.js';
import { runStoreConformance } from '../support/store-conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

runStoreConformance('sqlite in memory', () => openStore('sqlite::memory:'));
runStoreConformance('sqlite file', () => openStore(`sqlite:${join(dir, 'nested', 'dir', 'gatehouse.db')}`));

describe('sqlite store specifics', () => {
  it('creates the directory of the database file and uses WAL with synchronous=NORMAL', async () => {
    const path = join(dir, 'a', 'b', 'wal.db');
    const store = await openStore(`sqlite://${path}`);
    assert.ok(existsSync(path));
    await store.close();
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
    const raw = new SqliteStore(path);
    assert.equal(await raw.schemaVersion(), sqliteMigrations.length);
    await raw.close();
  });

  it('reports version 0 before migrating and the latest after', async () => {
    const store = new SqliteStore(':memory:');
    assert.equal(await store.schemaVersion(), 0);
    assert.equal(await store.migrate(), sqliteMigrations.length);
    await store.close();
  });

  it('refuses a database whose schema is newer than this code', async () => {
    const path = join(dir, 'future.db');
    (await openStore(`sqlite:${path}`)).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('future');
    db.close();
    await assert.rejects(openStore(`sqlite:${path}`), (e) => isGatehouseError(e, 'ERR_STORE') && /newer/.test(e.message));
  });

  it('keeps a relative path relative to the working directory', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const store = await openStore('sqlite:./rel/data.db');
      assert.equal((store as SqliteStore).path, join(dir, 'rel', 'data.db'));
      await store.close();
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('openStore', () => {
  it('rejects an unknown scheme or an empty path with ERR_CONFIG, without echoing the URL', async () => {
    await assert.rejects(openStore('mysql://root:hunter2@localhost/x'), (e) => isGatehouseError(e, 'ERR_CONFIG') && !e.message.includes('hunter2'));
    await assert.rejects(openStore('./data/gatehouse.db'), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    await assert.rejects(openStore('sqlite:'), (e) => isGatehouseError(e, 'ERR_CONFIG'));
  });

  it('reports an unopenable file as ERR_STORE', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    await assert.rejects(openStore(`sqlite:${join(file, 'x.db')}`), (e) => isGatehouseError(e, 'ERR_STORE'));
  });
});

describe('migrations', () => {
  it('are numbered 1..n in order for both backends', () => {
    assertOrdered(sqliteMigrations);
    assertOrdered(postgresMigrations);
    assert.equal(sqliteMigrations.length, postgresMigrations.length);
  });
});
