/**
 * The PostgreSQL engine passes allowed traffic through unchanged: psql and the pg driver, simple and
 * extended protocol, named prepared statements, pipelines, NOTICE, LISTEN/NOTIFY, COPY both ways,
 * Terminate, and transaction state (ReadyForQuery) after server errors and gateway refusals.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { decodeDataRow, frontend, type BackendMessage, type CommandComplete, type DataRow } from '../../src/engines/postgres/protocol.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { errorOf, eventually, names, pgClient, psql, rejection, rfqStatus, simpleQuery, WireClient } from './pg-engine-support.js';

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [pg]
    rules:
      - { effect: allow, sql: { types: [select, insert, update, tcl, copy, listen, notify, set, show, empty] } }
      - { effect: deny, sql: { types: [ddl] }, reason: "schema changes are blocked" }
      - { effect: deny, sql: { types: [delete] }, reason: "deletes are blocked" }
`;

const SETUP = `
CREATE TABLE t (id int PRIMARY KEY, name text);
INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');
CREATE TABLE c (id int, note text);
CREATE FUNCTION say(msg text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'said: %', msg; RETURN 1; END $$;
`;

let gw: TestGateway;
let token: string;

before(async () => {
  gw = await startTestGateway({ policy: POLICY, setupSql: SETUP });
  token = await gw.token();
});
after(async () => {
  await gw?.close();
});

function rows(msgs: readonly BackendMessage[]): (string | null)[][] {
  return msgs.filter((m): m is DataRow => m.name === 'DataRow').map((m) => decodeDataRow(m).map((v) => (v === null ? null : v.toString('utf8'))));
}

function tags(msgs: readonly BackendMessage[]): string[] {
  return msgs.filter((m): m is CommandComplete => m.name === 'CommandComplete').map((m) => m.tag);
}

test('psql: a SELECT, and several statements in one Query', async () => {
  const r = await psql(gw, token, ['-c', 'SELECT name FROM t ORDER BY id']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'one\ntwo\nthree\n');
  const multi = await psql(gw, token, ['-c', "SELECT 1; SELECT 'b'; SELECT count(*) FROM t"]);
  assert.equal(multi.code, 0, multi.stderr);
  assert.equal(multi.stdout, '1\nb\n3\n');
});

test('pg: simple query, several result sets, extended protocol with parameters', async () => {
  const c = await pgClient(gw, token);
  try {
    const r = await c.query('SELECT id, name FROM t ORDER BY id');
    assert.deepEqual(r.rows, [
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
      { id: 3, name: 'three' },
    ]);
    const multi = (await c.query('SELECT 1 AS a; SELECT 2 AS b')) as unknown as pg.QueryResult[];
    assert.deepEqual(
      multi.map((x) => x.rows),
      [[{ a: 1 }], [{ b: 2 }]],
    );
    const p = await c.query('SELECT name FROM t WHERE id = $1 OR name = $2 ORDER BY id', [2, 'three']);
    assert.deepEqual(p.rows, [{ name: 'two' }, { name: 'three' }]);
    const n = await c.query('SELECT $1::text IS NULL AS isnull', [null]);
    assert.deepEqual(n.rows, [{ isnull: true }]);
  } finally {
    await c.end();
  }
});

test('pg: a named prepared statement is parsed once and reused', async () => {
  const c = await pgClient(gw, token);
  try {
    for (const id of [1, 2, 3, 2]) {
      const r = await c.query({ name: 'by_id', text: 'SELECT name FROM t WHERE id = $1', values: [id] });
      assert.deepEqual(r.rows, [{ name: ['one', 'two', 'three'][id - 1] }]);
    }
    const upstream = await gw.db!.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'by_id'");
    assert.equal(upstream.rows[0].n, 0, 'prepared on the gateway session, not visible to another backend');
  } finally {
    await c.end();
  }
});

test('pg: queries issued without awaiting come back in order', async () => {
  const c = await pgClient(gw, token);
  try {
    const ps = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? c.query(`SELECT ${i} AS n`) : c.query('SELECT $1::int AS n', [i])));
    const denied = c.query('DROP TABLE t').catch((e: Error & { code?: string }) => e.code);
    const after = c.query('SELECT 99 AS n');
    const rs = await Promise.all(ps);
    assert.deepEqual(
      rs.map((r) => r.rows[0].n),
      Array.from({ length: 30 }, (_, i) => i),
    );
    assert.equal(await denied, '42501');
    assert.equal((await after).rows[0].n, 99);
  } finally {
    await c.end();
  }
});

test('wire: a pipeline of extended and simple queries with a refusal in the middle is answered in order', async () => {
  const w = await WireClient.login(gw.pgPort, token);
  try {
    const ext = (sql: string, params: string[] = []): Buffer[] => [frontend.parse('', sql), frontend.bind('', '', params), frontend.execute('', 0), frontend.sync()];
    w.write(
      ...ext('SELECT $1::int + 1 AS n', ['1']),
      frontend.query('SELECT 42'),
      ...ext('DROP TABLE t'),
      ...ext('SELECT $1::int * 2', ['21']),
      frontend.query('SELECT 1; DROP TABLE t'),
      frontend.query('SELECT 7'),
    );
    const a = await w.untilReady();
    assert.deepEqual(names(a), ['ParseComplete', 'BindComplete', 'DataRow', 'CommandComplete', 'ReadyForQuery']);
    assert.deepEqual(rows(a), [['2']]);
    const b = await w.untilReady();
    assert.deepEqual(rows(b), [['42']]);
    const c = await w.untilReady();
    assert.deepEqual(names(c), ['ErrorResponse', 'ReadyForQuery']);
    assert.equal(errorOf(c)!.code, '42501');
    assert.match(errorOf(c)!.message, /schema changes are blocked/);
    const d = await w.untilReady();
    assert.deepEqual(rows(d), [['42']]);
    const e = await w.untilReady();
    assert.deepEqual(names(e), ['ErrorResponse', 'ReadyForQuery']);
    assert.equal(errorOf(e)!.code, '42501');
    const f = await w.untilReady();
    assert.deepEqual(rows(f), [['7']]);
    assert.equal(rfqStatus(f), 'I');
  } finally {
    w.end();
  }
});

test('NOTICE reaches psql and pg', async () => {
  const r = await psql(gw, token, ['-c', "SELECT say('hello')"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '1\n');
  assert.match(r.stderr, /NOTICE: {2}said: hello/);
  const c = await pgClient(gw, token);
  try {
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.query("SELECT say('one')");
    await c.query('SELECT say($1)', ['two']);
    assert.deepEqual(notices, ['said: one', 'said: two']);
  } finally {
    await c.end();
  }
});

test('LISTEN/NOTIFY pass through', async () => {
  const listener = await pgClient(gw, token);
  const notifier = await pgClient(gw, token);
  try {
    const got: { channel: string; payload?: string }[] = [];
    listener.on('notification', (n) => got.push({ channel: n.channel, payload: n.payload }));
    await listener.query('LISTEN gh_chan');
    await notifier.query("NOTIFY gh_chan, 'first'");
    await notifier.query("SELECT pg_notify('gh_chan', 'second')");
    await eventually(() => got.length >= 2, 5000, 'notifications');
    assert.deepEqual(got, [
      { channel: 'gh_chan', payload: 'first' },
      { channel: 'gh_chan', payload: 'second' },
    ]);
  } finally {
    await listener.end();
    await notifier.end();
  }
});

test('psql: COPY FROM STDIN and COPY TO STDOUT, \\copy both ways, and a failing COPY', async () => {
  const inRes = await psql(gw, token, ['-c', 'COPY c FROM STDIN'], { input: '1\tfirst\n2\tsecond\n\\.\n' });
  assert.equal(inRes.code, 0, inRes.stderr);
  const meta = await psql(gw, token, ['-c', '\\copy c FROM STDIN'], { input: '3\tthird\n' });
  assert.equal(meta.code, 0, meta.stderr);
  assert.deepEqual((await gw.db!.query('SELECT id, note FROM c ORDER BY id')).rows, [
    { id: 1, note: 'first' },
    { id: 2, note: 'second' },
    { id: 3, note: 'third' },
  ]);
  const out = await psql(gw, token, ['-c', 'COPY (SELECT id, note FROM c ORDER BY id) TO STDOUT']);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, '1\tfirst\n2\tsecond\n3\tthird\n');
  const metaOut = await psql(gw, token, ['-c', '\\copy t TO STDOUT WITH (FORMAT csv)']);
  assert.equal(metaOut.code, 0, metaOut.stderr);
  assert.equal(metaOut.stdout, '1,one\n2,two\n3,three\n');
  const bad = await psql(gw, token, ['-v', 'ON_ERROR_STOP=0', '-f', '-'], { input: "COPY c FROM STDIN;\nnot-a-number\tx\n\\.\nSELECT 'still here';\n" });
  assert.match(bad.stderr, /invalid input syntax for type integer/);
  assert.match(bad.stdout, /still here/);
  assert.equal((await gw.db!.query('SELECT count(*)::int AS n FROM c')).rows[0].n, 3);
});

test('psql: a large COPY FROM STDIN (100k rows) streams through', async () => {
  const input = Array.from({ length: 100_000 }, (_, i) => `${i + 1000}\tbulk row ${i}`).join('\n') + '\n';
  const r = await psql(gw, token, ['-c', 'COPY c FROM STDIN'], { input, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'COPY 100000');
  const n = await gw.db!.query('SELECT count(*)::int AS n, max(id) AS m FROM c WHERE id >= 1000');
  assert.deepEqual(n.rows, [{ n: 100_000, m: 100_999 }]);
  await gw.db!.query('DELETE FROM c WHERE id >= 1000');
});

test('wire: COPY FROM STDIN with CopyFail leaves the session usable', async () => {
  const w = await WireClient.login(gw.pgPort, token);
  try {
    w.write(frontend.query('COPY c FROM STDIN'));
    assert.equal((await w.next()).name, 'CopyInResponse');
    w.write(frontend.copyData(Buffer.from('9\tnine\n')), frontend.copyFail('client gave up'));
    const r = await w.untilReady();
    assert.match(errorOf(r)!.message, /client gave up/);
    assert.equal(rfqStatus(r), 'I');
    assert.deepEqual(rows(await simpleQuery(w, 'SELECT count(*) FROM c WHERE id = 9')), [['0']]);
  } finally {
    w.end();
  }
});

test('Terminate ends the session and the target backend', async () => {
  const w = await WireClient.login(gw.pgPort, token, { application_name: 'gh-terminate' });
  const backends = async (): Promise<number> => (await gw.db!.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'gh-terminate'")).rows[0].n as number;
  assert.equal(await backends(), 1);
  const live = await gw.gateway.parts.store.listSessions({ live: true });
  w.end();
  await eventually(() => w.closed, 5000, 'the gateway to close the connection');
  await eventually(async () => (await backends()) === 0, 5000, 'the target backend to exit');
  await eventually(
    async () => {
      const all = await gw.gateway.parts.store.listSessions();
      const ended = all.filter((s) => live.some((l) => l.id === s.id) && s.endReason === 'client terminated the session');
      return ended.length > 0;
    },
    5000,
    'the session to be recorded as ended',
  );
});

test('wire: transaction status after BEGIN, a server error, and ROLLBACK', async () => {
  const w = await WireClient.login(gw.pgPort, token, { application_name: 'gh-idle-tx' });
  try {
    assert.equal(rfqStatus(await simpleQuery(w, 'BEGIN')), 'T');
    assert.equal(rfqStatus(await simpleQuery(w, 'SELECT 1')), 'T');
    // Idle in transaction: the target holds the transaction open while the agent thinks.
    await eventually(
      async () => (await gw.db!.query("SELECT state FROM pg_stat_activity WHERE application_name = 'gh-idle-tx'")).rows[0]?.state === 'idle in transaction',
      5000,
      'idle in transaction',
    );
    await new Promise((r) => setTimeout(r, 300));
    const div = await simpleQuery(w, 'SELECT 1/0');
    assert.equal(errorOf(div)!.code, '22012');
    assert.equal(rfqStatus(div), 'E');
    const aborted = await simpleQuery(w, 'SELECT 1');
    assert.equal(errorOf(aborted)!.code, '25P02');
    assert.equal(rfqStatus(aborted), 'E');
    const rb = await simpleQuery(w, 'ROLLBACK');
    assert.deepEqual(tags(rb), ['ROLLBACK']);
    assert.equal(rfqStatus(rb), 'I');
  } finally {
    w.end();
  }
});

test('wire: a gateway refusal inside BEGIN aborts the transaction: COMMIT rolls back', async () => {
  const w = await WireClient.login(gw.pgPort, token);
  try {
    assert.equal(rfqStatus(await simpleQuery(w, 'BEGIN')), 'T');
    assert.equal(rfqStatus(await simpleQuery(w, "INSERT INTO t VALUES (10, 'ten')")), 'T');
    const denied = await simpleQuery(w, 'DROP TABLE t');
    assert.equal(errorOf(denied)!.code, '42501');
    assert.equal(rfqStatus(denied), 'E');
    const commit = await simpleQuery(w, 'COMMIT');
    assert.deepEqual(tags(commit), ['ROLLBACK']);
    assert.equal(rfqStatus(commit), 'I');
    assert.deepEqual(rows(await simpleQuery(w, 'SELECT count(*) FROM t WHERE id = 10')), [['0']]);

    // The same through the extended protocol.
    assert.equal(rfqStatus(await simpleQuery(w, 'BEGIN')), 'T');
    w.write(frontend.parse('', 'INSERT INTO t VALUES ($1, $2)'), frontend.bind('', '', ['11', 'eleven']), frontend.execute(''), frontend.sync());
    assert.equal(rfqStatus(await w.untilReady()), 'T');
    w.write(frontend.parse('', 'DELETE FROM t WHERE id = $1'), frontend.bind('', '', ['11']), frontend.execute(''), frontend.sync());
    const ext = await w.untilReady();
    assert.equal(errorOf(ext)!.code, '42501');
    assert.match(errorOf(ext)!.message, /deletes are blocked/);
    assert.equal(rfqStatus(ext), 'E');
    assert.deepEqual(tags(await simpleQuery(w, 'COMMIT')), ['ROLLBACK']);
    assert.deepEqual(rows(await simpleQuery(w, 'SELECT count(*) FROM t WHERE id = 11')), [['0']]);
  } finally {
    w.end();
  }
});

test('pg and psql: COMMIT after a refusal in a transaction returns ROLLBACK', async () => {
  const c = await pgClient(gw, token);
  try {
    await c.query('BEGIN');
    await c.query("UPDATE t SET name = 'uno' WHERE id = 1");
    assert.equal((await rejection(c.query('DELETE FROM t WHERE id = $1', [2]))).code, '42501');
    assert.equal((await rejection(c.query('SELECT 1'))).code, '25P02');
    assert.equal((await c.query('COMMIT')).command, 'ROLLBACK');
    assert.deepEqual((await c.query('SELECT name FROM t WHERE id = 1')).rows, [{ name: 'one' }]);
  } finally {
    await c.end();
  }
  const r = await psql(gw, token, ['-f', '-'], { input: "BEGIN;\nUPDATE t SET name = 'uno' WHERE id = 1;\nDROP TABLE t;\nCOMMIT;\nSELECT name FROM t WHERE id = 1;\n" });
  assert.match(r.stderr, /schema changes are blocked/);
  assert.deepEqual(r.stdout.trim().split('\n'), ['BEGIN', 'UPDATE 1', 'ROLLBACK', 'one']);
});

test('without any mask rule the agent gets raw values, but recordings and audit still hold none', async () => {
  const card = '4111 1111 1111 1111';
  const c = await pgClient(gw, token);
  try {
    assert.deepEqual((await c.query(`SELECT '${card}' AS card`)).rows, [{ card }]);
    assert.deepEqual((await c.query('SELECT $1::text AS card', [card.replace(/ /g, '')])).rows, [{ card: card.replace(/ /g, '') }]);
  } finally {
    await c.end();
  }
  await gw.gateway.parts.sessions.flush();
  await gw.gateway.parts.audit.flush();
  for (const f of (await readdir(gw.dir)).filter((x) => x.startsWith('gatehouse.db'))) {
    const bytes = await readFile(join(gw.dir, f));
    for (const secret of [card, card.replace(/ /g, ''), token]) assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `${secret.slice(0, 8)}… in ${f}`);
  }
});
