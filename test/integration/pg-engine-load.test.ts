/**
 * The PostgreSQL engine under concurrent load: 50 sessions at once, each with its own queries, and
 * pgbench (select-only, prepared, and the TPC-B-like default) through the gateway.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PG_HOST, PG_PORT } from '../support/pg.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { eventually, pgClient, rejection } from './pg-engine-support.js';

const run = promisify(execFile);

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [pg]
    rules:
      - { effect: allow, sql: { types: [select, insert, update, tcl, set, show, empty] } }
      - { effect: deny, sql: { types: [ddl, delete] }, reason: "blocked" }
`;

let gw: TestGateway;
let token: string;

before(async () => {
  gw = await startTestGateway({ policy: POLICY, setupSql: 'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g;' });
  token = await gw.token();
  // pgbench's tables, created on the target directly (DDL is refused through the gateway).
  await run('pgbench', ['-i', '-s', '1', '-q', '-h', PG_HOST, '-p', String(PG_PORT), '-U', 'postgres', gw.db!.name]);
});
after(async () => {
  await gw?.close();
});

test('50 concurrent sessions, each running its own queries, get their own answers', async () => {
  const sessions = await Promise.all(Array.from({ length: 50 }, () => pgClient(gw, token)));
  try {
    await Promise.all(
      sessions.map(async (c, i) => {
        for (let j = 0; j < 10; j++) {
          const id = ((i * 10 + j) % 1000) + 1;
          const r = j % 2 === 0 ? await c.query(`SELECT id, v FROM t WHERE id = ${id}`) : await c.query('SELECT id, v FROM t WHERE id = $1', [id]);
          assert.equal(r.rows[0].id, id);
        }
        const big = await c.query('SELECT count(*)::int AS n, max(id) AS m FROM t WHERE id > $1', [i]);
        assert.deepEqual(big.rows, [{ n: 1000 - i, m: 1000 }]);
        if (i % 10 === 0) assert.equal((await rejection(c.query('DELETE FROM t'))).code, '42501');
        const all = await c.query('SELECT v FROM t ORDER BY id');
        assert.equal(all.rowCount, 1000);
      }),
    );
  } finally {
    await Promise.all(sessions.map((c) => c.end()));
  }
  assert.equal((await gw.db!.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 1000);
  await eventually(() => gw.gateway.parts.sessions.live().length === 0, 5000, 'every session to end');
});

async function pgbench(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('pgbench', ['-n', '-h', '127.0.0.1', '-p', String(gw.pgPort), '-U', 'agent', ...args, 'pg'], { env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' }, timeout: 60_000 });
}

function processed(out: string): number {
  const m = /number of transactions actually processed: (\d+)/.exec(out);
  return m ? Number(m[1]) : -1;
}

test('pgbench -S -c 8 -t 200 through the gateway', async () => {
  const r = await pgbench(['-S', '-c', '8', '-t', '200']);
  assert.equal(processed(r.stdout), 1600, r.stdout + r.stderr);
  assert.match(r.stdout, /number of failed transactions: 0/);
});

test('pgbench with prepared statements (-M prepared) and the extended protocol (-M extended)', async () => {
  for (const mode of ['prepared', 'extended']) {
    const r = await pgbench(['-S', '-M', mode, '-c', '4', '-t', '100']);
    assert.equal(processed(r.stdout), 400, `${mode}: ${r.stdout}${r.stderr}`);
  }
});

test('pgbench TPC-B-like (updates, inserts, transactions) through the gateway', async () => {
  const before = (await gw.db!.query('SELECT count(*)::int AS n FROM pgbench_history')).rows[0].n as number;
  const r = await pgbench(['-c', '4', '-t', '50']);
  assert.equal(processed(r.stdout), 200, r.stdout + r.stderr);
  const after = (await gw.db!.query('SELECT count(*)::int AS n FROM pgbench_history')).rows[0].n as number;
  assert.equal(after - before, 200);
});
