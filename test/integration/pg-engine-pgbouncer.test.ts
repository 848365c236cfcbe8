/**
 * The gateway in front of a connection pooler: Gatehouse → PgBouncer (session and transaction
 * pooling) → PostgreSQL. Queries, masking, refusals and query cancel must work, and the pooler
 * must survive the gateway's cancel requests.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PG_HOST, PG_PORT, createTestDatabase, type TestDatabase } from '../support/pg.js';
import { freePort } from '../support/net.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { eventually, pgClient, psql, rejection } from './pg-engine-support.js';

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    rules:
      - { effect: allow, sql: { types: [select, insert, tcl] } }
      - { effect: deny, sql: { types: [ddl] }, reason: "schema changes are blocked" }
      - { effect: mask, detectors: [payment_card] }
`;

interface Bouncer {
  port: number;
  child: ChildProcess;
}

let dir: string;
let db: TestDatabase;
let gw: TestGateway;
let token: string;
const bouncers: Bouncer[] = [];

function hasPgbouncer(): boolean {
  try {
    execFileSync('pgbouncer', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Starts PgBouncer (as the postgres OS user when we are root: it refuses to run as root). */
async function startBouncer(mode: 'session' | 'transaction'): Promise<Bouncer> {
  const port = await freePort();
  const ini = join(dir, `pgbouncer-${mode}.ini`);
  await writeFile(
    ini,
    [
      '[databases]',
      `* = host=${PG_HOST} port=${PG_PORT}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      `pool_mode = ${mode}`,
      'unix_socket_dir =',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  await chmod(ini, 0o644);
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : {};
  const child = spawn('pgbouncer', [ini], { stdio: 'ignore', ...ids });
  await eventually(
    () =>
      new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    5000,
    'PgBouncer to listen',
  );
  const b = { port, child };
  bouncers.push(b);
  return b;
}

const skip = hasPgbouncer() ? false : 'pgbouncer is not installed';

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'gh-pgbouncer-'));
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'userlist.txt'), '"postgres" ""\n');
  await chmod(join(dir, 'userlist.txt'), 0o644);
  db = await createTestDatabase('gh_bnc');
  await db.query("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'card 4111111111111111'), (2, 'plain')");
  const session = await startBouncer('session');
  const transaction = await startBouncer('transaction');
  gw = await startTestGateway({
    policy: POLICY,
    noDatabase: true,
    connections: [
      `  - { name: bnc_session, type: postgres, target: "postgres://postgres@127.0.0.1:${session.port}/${db.name}" }`,
      `  - { name: bnc_tx, type: postgres, target: "postgres://postgres@127.0.0.1:${transaction.port}/${db.name}" }`,
    ].join('\n'),
  });
  token = await gw.token();
});
after(async () => {
  await gw?.close();
  for (const b of bouncers) b.child.kill('SIGTERM');
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

for (const connection of ['bnc_session', 'bnc_tx']) {
  test(`through PgBouncer (${connection}): queries, masking, refusals, and cancel that leaves the pooler running`, { skip }, async () => {
    const url = gw.pgUrl(token, connection);
    const r = await psql(gw, token, ['-c', 'SELECT id, v FROM t ORDER BY id'], { env: { PGDATABASE: connection } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1|card [card]\n2|plain\n');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      assert.deepEqual((await c.query('SELECT v FROM t WHERE id = $1', [1])).rows, [{ v: 'card [card]' }]);
      assert.match((await rejection(c.query('DROP TABLE t'))).message, /schema changes are blocked/);
      for (let i = 0; i < 2; i++) {
        const running = rejection(c.query('SELECT pg_sleep(20)'));
        await eventually(async () => (await db.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'")).rowCount, 5000, 'the query to run');
        const canceller = new pg.Client({ connectionString: url }) as pg.Client & { cancel(client: pg.Client, query: unknown): void };
        canceller.cancel(c, (c as unknown as { activeQuery: unknown }).activeQuery);
        assert.equal((await running).code, '57014');
        assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
      }
    } finally {
      await c.end();
    }
    // The pooler is still up and serving new sessions.
    const again = await pgClient(gw, token, { connectionString: url });
    try {
      assert.deepEqual((await again.query('SELECT count(*)::int AS n FROM t')).rows, [{ n: 2 }]);
    } finally {
      await again.end();
    }
    for (const b of bouncers) assert.equal(b.child.exitCode, null, 'PgBouncer is still running');
  });
}
