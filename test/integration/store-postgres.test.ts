// The store conformance suite against the machine's PostgreSQL (127.0.0.1:5432, trust), on a fresh
// database per run, plus what only the shared store does: events across instances (LISTEN/NOTIFY).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { openStore } from '../../src/store/index.js';
import type { PostgresStore, Store } from '../../src/store/index.js';
import { isGatehouseError } from '../../src/core/errors.js';
import { postgresMigrations } from '../../src/store/migrations/index.js';
import { collect, runStoreConformance } from '../support/store-conformance.js';
import { createTestDatabase } from '../support/pg.js';
import type { TestDatabase } from '../support/pg.js';

let db: TestDatabase | undefined;
const database = async (): Promise<TestDatabase> => (db ??= await createTestDatabase('gh_store'));

after(async () => {
  await db?.drop();
});

runStoreConformance('postgres', async () => openStore((await database()).url));

describe('postgres store specifics', () => {
  const opened: Store[] = [];
  const open = async (opts: { instanceId?: string; channel?: string } = {}): Promise<PostgresStore> => {
    const s = (await openStore((await database()).url, opts)) as PostgresStore;
    opened.push(s);
    return s;
  };
  after(async () => {
    for (const s of opened) await s.close();
  });

  it('migrates to the same schema version as the SQLite store, and records it in the database', async () => {
    const store = await open();
    assert.equal(store.kind, 'postgres');
    assert.equal(await store.schemaVersion(), postgresMigrations.length);
    const r = await (await database()).query('SELECT MAX(version) AS v FROM schema_migrations');
    assert.equal(Number(r.rows[0].v), postgresMigrations.length);
  });

  it('delivers events published on one instance to subscribers on another (LISTEN/NOTIFY), exactly once', async () => {
    const a = await open({ instanceId: 'gw-a' });
    const b = await open({ instanceId: 'gw-b' });
    const marker = randomUUID();
    const onB = collect(b, 'session.kill', 2);
    const onA = collect(a, 'session.kill', 2);
    let bGrants = 0;
    const offGrant = b.events.subscribe('grant', () => bGrants++);
    await a.events.publish('session.kill', { marker, sessionId: 's-1', nested: { n: [1, 2] } });
    await b.events.publish('session.kill', { marker, sessionId: 's-2' });
    const [gotB, gotA] = await Promise.all([onB.done, onA.done]);
    const expected = [{ marker, sessionId: 's-1', nested: { n: [1, 2] } }, { marker, sessionId: 's-2' }];
    assert.deepEqual(gotB, expected);
    assert.deepEqual(gotA, expected);
    // Nothing arrives late (no duplicates) and other topics stay quiet.
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(gotB.length, 2);
    assert.equal(bGrants, 0);
    onA.unsubscribe();
    onB.unsubscribe();
    offGrant();
  });

  it('keeps instances on different channels apart', async () => {
    const a = await open({ channel: 'gh_test_channel_a' });
    const b = await open({ channel: 'gh_test_channel_b' });
    let crossed = 0;
    const off = b.events.subscribe('policy', () => crossed++);
    const own = collect(a, 'policy', 1);
    await a.events.publish('policy', { v: 1 });
    assert.deepEqual(await own.done, [{ v: 1 }]);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(crossed, 0);
    off();
    own.unsubscribe();
  });

  it('serializes audit appends from two instances into one gapless chain', async () => {
    const a = await open();
    const b = await open();
    const head0 = await a.auditHead();
    const link = (i: number) => (head: { seq: number; hash: string } | undefined) => ({
      seq: (head?.seq ?? 0) + 1,
      prevHash: head?.hash ?? '0'.repeat(64),
      hash: `${String(i).padStart(4, '0')}${randomUUID().replace(/-/g, '')}`.padEnd(64, 'f'),
    });
    const n = 20;
    await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? a : b).appendAudit({ ts: 1, type: 'x', data: { i } }, link(i))));
    const start = (head0?.seq ?? 0) + 1;
    const chain = await b.listAudit({ afterSeq: start - 1 });
    assert.deepEqual(chain.map((e) => e.seq), Array.from({ length: n }, (_, i) => start + i));
    chain.forEach((e, i) => assert.equal(e.prevHash, i === 0 ? (head0?.hash ?? '0'.repeat(64)) : chain[i - 1]!.hash));
  });

  it('never echoes the password of an unreachable URL', async () => {
    await assert.rejects(
      openStore('postgres://postgres:hunter2-secret@127.0.0.1:1/nowhere'),
      (e) => isGatehouseError(e, 'ERR_STORE') && !e.message.includes('hunter2') && !(e.detail ?? '').includes('hunter2'),
    );
  });
});
