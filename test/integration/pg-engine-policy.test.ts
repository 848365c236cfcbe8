/**
 * Refusals through the PostgreSQL engine: every denied statement ends in SQLSTATE 42501 with the
 * rule's reason, none of a refused query runs (not even its allowed statements), and the session
 * keeps working after each refusal — in psql, the pg driver (simple and extended) and on the wire.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { frontend } from '../../src/engines/postgres/protocol.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { errorOf, names, pgClient, psql, rejection, rfqStatus, simpleQuery, WireClient } from './pg-engine-support.js';

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [pg]
    rules:
      - { effect: allow, sql: { types: [select, insert, update, tcl, copy, set, show, empty] } }
      - { effect: deny, sql: { types: [ddl] }, reason: "schema changes are blocked" }
      - { effect: deny, sql: { types: [delete] }, reason: "deletes are blocked" }
      - { effect: deny, sql: { types: [do] }, reason: "anonymous code blocks are blocked" }
      - { effect: deny, sql: { program: true }, reason: "server programs are off limits" }
      - { effect: deny, sql: { functions: [pg_read_file, pg_ls_dir] }, reason: "server files are off limits" }
`;

const SETUP = `
CREATE TABLE t (id int PRIMARY KEY, name text);
INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');
CREATE TABLE side_effects (n int);
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

/** Each refused text with the reason its error must carry. */
const DENIED: [string, RegExp][] = [
  ['DROP TABLE t', /schema changes are blocked/],
  ['DrOp TaBlE t', /schema changes are blocked/],
  ['/* comment */ drop table t', /schema changes are blocked/],
  ['-- a comment\nDROP TABLE IF EXISTS t CASCADE', /schema changes are blocked/],
  ['SELECT 1; DROP TABLE t', /schema changes are blocked/],
  ['INSERT INTO side_effects VALUES (1); DROP TABLE t', /schema changes are blocked/],
  ['TRUNCATE t', /schema changes are blocked/],
  ['DELETE FROM t', /deletes are blocked/],
  ["DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", /anonymous code blocks are blocked/],
  ["COPY t TO PROGRAM 'cat > /dev/null'", /server programs are off limits/],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', /deletes are blocked/],
  ["SELECT pg_read_file('/etc/passwd')", /server files are off limits/],
  ["SELECT name FROM t WHERE name IN (SELECT pg_ls_dir('.'))", /server files are off limits/],
];

async function tableIntact(): Promise<void> {
  const r = await gw.db!.query('SELECT count(*)::int AS n FROM t');
  assert.equal(r.rows[0].n, 3, 'table t still holds its rows');
  const s = await gw.db!.query('SELECT count(*)::int AS n FROM side_effects');
  assert.equal(s.rows[0].n, 0, 'no statement of a refused query ran');
}

test('pg: each denied statement gets 42501 with the rule reason, and the session goes on', async () => {
  const c = await pgClient(gw, token);
  try {
    for (const [sql, reason] of DENIED) {
      const e = await rejection(c.query(sql));
      assert.equal(e.code, '42501', `${sql}: ${e.message}`);
      assert.match(e.message, reason, sql);
      assert.match(e.message, /^gatehouse: /);
      assert.match(e.detail ?? '', /^Refused by rule agents#\d+/);
      assert.equal(e.hint, 'gatehouse: ERR_ACCESS_DENIED');
      assert.deepEqual((await c.query('SELECT count(*)::int AS n FROM t')).rows, [{ n: 3 }], `session after ${sql}`);
    }
  } finally {
    await c.end();
  }
  await tableIntact();
});

test('psql: denied statements print the gateway error and nothing else; later commands run', async () => {
  const one = await psql(gw, token, ['-c', 'SELECT 1; DROP TABLE t']);
  assert.equal(one.stdout, '', 'the SELECT of a refused query is not executed');
  assert.match(one.stderr, /ERROR: {2}gatehouse: schema changes are blocked/);
  assert.notEqual(one.code, 0);
  const side = await psql(gw, token, ['-c', 'INSERT INTO side_effects VALUES (1); DROP TABLE t']);
  assert.match(side.stderr, /schema changes are blocked/);
  // psql -f sends each statement of a script as its own Query: only single statements here.
  const single = DENIED.filter(([sql]) => !/^(SELECT 1|INSERT INTO side_effects VALUES \(1\));/.test(sql));
  const script = `${single.map(([sql]) => `${sql};`).join('\n')}\nSELECT 'alive', count(*) FROM t;\n`;
  const r = await psql(gw, token, ['-f', '-'], { input: script });
  assert.equal((r.stderr.match(/ERROR: {2}gatehouse: /g) ?? []).length, single.length, r.stderr);
  assert.doesNotMatch(r.stderr, /syntax error/);
  assert.equal(r.stdout, 'alive|3\n');
  await tableIntact();
});

test('pg extended protocol: refused Parse, refused named statement, parameters', async () => {
  const c = await pgClient(gw, token);
  try {
    const del = await rejection(c.query('DELETE FROM t WHERE id = $1', [1]));
    assert.equal(del.code, '42501');
    assert.match(del.message, /deletes are blocked/);
    const file = await rejection(c.query('SELECT pg_read_file($1)', ['/etc/passwd']));
    assert.equal(file.code, '42501');
    assert.match(file.message, /server files are off limits/);
    // DROP through Parse/Bind/Execute: with a parameter (refused at Parse, before the server could
    // object to the parameter count) and without one.
    for (const q of [{ text: 'DROP TABLE t', values: [1] }, { text: 'DROP TABLE t', queryMode: 'extended' }, { text: 'DrOp /* x */ TaBlE t CASCADE', values: ['x'] }] as pg.QueryConfig[]) {
      const e = await rejection(c.query(q));
      assert.equal(e.code, '42501', e.message);
      assert.match(e.message, /schema changes are blocked/);
    }
    for (let i = 0; i < 2; i++) {
      const named = await rejection(c.query({ name: 'dropper', text: 'DROP TABLE t' }));
      assert.equal(named.code, '42501');
    }
    const cte = await rejection(c.query({ text: 'WITH d AS (DELETE FROM t WHERE id = $1 RETURNING *) SELECT * FROM d', values: [2] }));
    assert.equal(cte.code, '42501');
    assert.deepEqual((await c.query('SELECT name FROM t WHERE id = $1', [3])).rows, [{ name: 'three' }]);
  } finally {
    await c.end();
  }
  await tableIntact();
});

test('unparseable SQL is refused by the gateway, not answered with the server syntax error', async () => {
  const c = await pgClient(gw, token);
  try {
    for (const garbage of ['this is not sql at all', 'SELEC * FRM t', 'SELECT (((', '\u0001\u0002 binary junk']) {
      const e = await rejection(c.query(garbage));
      assert.equal(e.code, '42501', `${garbage}: ${e.message}`);
      assert.match(e.message, /^gatehouse: /);
      assert.doesNotMatch(e.message, /syntax error at or near/);
      assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
    }
    const ext = await rejection(c.query('SELEC $1', [1]));
    assert.equal(ext.code, '42501');
  } finally {
    await c.end();
  }
});

test('wire: fast-path FunctionCall is refused; Bind of a statement the gateway never saw is refused', async () => {
  const w = await WireClient.login(gw.pgPort, token);
  try {
    // 2624 is pg_read_file(text) in pg_proc; the gateway never looks, it refuses every fast-path call.
    w.write(frontend.functionCall(2624, ['/etc/passwd']));
    const fc = await w.untilReady();
    assert.deepEqual(names(fc), ['ErrorResponse', 'ReadyForQuery']);
    assert.equal(errorOf(fc)!.code, '42501');
    assert.match(errorOf(fc)!.message, /fast-path function calls are not allowed/);
    assert.equal(rfqStatus(fc), 'I');

    w.write(frontend.bind('', 'never_prepared', []), frontend.execute(''), frontend.sync());
    const b = await w.untilReady();
    assert.deepEqual(names(b), ['ErrorResponse', 'ReadyForQuery']);
    assert.equal(errorOf(b)!.code, '42501');

    w.write(frontend.execute('no_such_portal'), frontend.sync());
    const ex = await w.untilReady();
    assert.equal(names(ex).at(-1), 'ReadyForQuery');
    assert.ok(errorOf(ex));

    const ok = await simpleQuery(w, 'SELECT 1');
    assert.deepEqual(names(ok), ['RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery']);
  } finally {
    w.end();
  }
  await tableIntact();
});

test('wire: a refused Parse followed by Describe/Bind/Execute skips to Sync; the next Sync group runs', async () => {
  const w = await WireClient.login(gw.pgPort, token);
  try {
    w.write(
      frontend.parse('s1', 'DROP TABLE t'),
      frontend.describe('S', 's1'),
      frontend.bind('p1', 's1', []),
      frontend.describe('P', 'p1'),
      frontend.execute('p1'),
      frontend.sync(),
      frontend.parse('s2', 'SELECT count(*) FROM t'),
      frontend.bind('p2', 's2', []),
      frontend.describe('P', 'p2'),
      frontend.execute('p2'),
      frontend.sync(),
    );
    const a = await w.untilReady();
    assert.deepEqual(names(a), ['ErrorResponse', 'ReadyForQuery']);
    assert.equal(errorOf(a)!.code, '42501');
    const b = await w.untilReady();
    assert.deepEqual(names(b), ['ParseComplete', 'BindComplete', 'RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery']);
    // The refused statement name stays unusable.
    w.write(frontend.bind('', 's1', []), frontend.execute(''), frontend.sync());
    assert.equal(errorOf(await w.untilReady())!.code, '42501');
  } finally {
    w.end();
  }
  await tableIntact();
});
