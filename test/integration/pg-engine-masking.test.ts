/**
 * Result masking through the PostgreSQL engine (column rules and detectors, text and binary result
 * formats, COPY, error texts) and what a session leaves behind: the recording (statements with
 * decisions, parameters, results with row counts), the audit log's command events, and no raw
 * secret or token anywhere in the SQLite database or the log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createLogger, type Logger } from '../../src/core/log.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { decodeDataRow, frontend, type DataRow } from '../../src/engines/postgres/protocol.js';
import { eventually, names, pgClient, psql, rejection, WireClient } from './pg-engine-support.js';

const CARD = '4111 1111 1111 1111';
const CARD_DIGITS = '4111111111111111';
const GH_TOKEN = 'ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
const SSN = '536-22-1234';

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [pg]
    rules:
      - { effect: allow, sql: { types: [select, insert, copy, tcl, listen, notify] } }
      - { effect: deny, sql: { types: [ddl] }, reason: "schema changes are blocked" }
      - { effect: mask, columns: ["customers.ssn", "customers.score", "bulk.ssn"] }
      - { effect: mask, detectors: [payment_card, api_key] }
`;

const SETUP = `
CREATE TABLE customers (id int PRIMARY KEY, name text, ssn text, notes text, profile jsonb, meta json, score int, card_no bigint);
INSERT INTO customers VALUES
  (1, 'Ada', '${SSN}', 'paid with ${CARD} yesterday', '{"github": "${GH_TOKEN}", "plan": "pro"}', '{"k": "${GH_TOKEN}"}', 42, ${CARD_DIGITS}),
  (2, 'Bob', '078-05-1120', 'no secrets here', '{"plan": "free"}', '{}', 7, 12345);
CREATE TABLE plain (id int, label text);
INSERT INTO plain VALUES (1, 'card ${CARD_DIGITS} on file'), (2, 'nothing');
CREATE TABLE bulk (id int, v text, ssn text);
INSERT INTO bulk SELECT g, 'row ' || g || CASE WHEN g % 1000 = 0 THEN ' ${CARD_DIGITS}' ELSE '' END, 's' || g FROM generate_series(1, 100000) g;
`;

/** A query whose results come back in binary format (pg's `binary` option, not in @types/pg). */
function binary(text: string, values: unknown[]): pg.QueryConfig {
  return { text, values, binary: true } as pg.QueryConfig;
}

let gw: TestGateway;
let token: string;
let logger: Logger;
let logFile: string;

before(async () => {
  logFile = join(await mkdtemp(join(tmpdir(), 'gh-pg-log-')), 'gatehouse.log');
  logger = createLogger({ level: 'debug', file: logFile });
  gw = await startTestGateway({ policy: POLICY, setupSql: SETUP, gateway: { logger } });
  token = await gw.token();
});
after(async () => {
  await gw?.close();
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  if (logFile) await rm(dirname(logFile), { recursive: true, force: true });
});

test('psql and pg (text format): column rules redact, detectors mask cards and API keys in text and JSON', async () => {
  const r = await psql(gw, token, ['-c', 'SELECT id, name, ssn, notes, profile, meta, score FROM customers ORDER BY id']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, ['1|Ada|[redacted]|paid with [card] yesterday|{"plan": "pro", "github": "[github_token]"}|{"k": "[github_token]"}|[redacted]', '2|Bob|[redacted]|no secrets here|{"plan": "free"}|{}|[redacted]', ''].join('\n'));

  const c = await pgClient(gw, token);
  try {
    for (const q of [c.query('SELECT id, name, ssn, notes, profile, meta FROM customers WHERE id = 1'), c.query('SELECT id, name, ssn, notes, profile, meta FROM customers WHERE id = $1', [1])]) {
      assert.deepEqual((await q).rows, [{ id: 1, name: 'Ada', ssn: '[redacted]', notes: 'paid with [card] yesterday', profile: { plan: 'pro', github: '[github_token]' }, meta: { k: '[github_token]' } }]);
    }
    // Aliases and expressions: the catalog still traces a column to customers.ssn; detectors see computed text.
    assert.deepEqual((await c.query("SELECT ssn AS s, 'x' || notes AS n FROM customers WHERE id = 1")).rows, [{ s: '[redacted]', n: '[redacted]' }], 'a computed column in a statement that reads a masked column is masked too (fail closed)');
    assert.deepEqual((await c.query("SELECT 'x' || notes AS n FROM customers WHERE id = 1")).rows, [{ n: 'xpaid with [card] yesterday' }]);
    // Named prepared statement reused: masked every time.
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await c.query({ name: 'notes_of', text: 'SELECT notes FROM customers WHERE id = $1', values: [1] })).rows, [{ notes: 'paid with [card] yesterday' }]);
    }
  } finally {
    await c.end();
  }
});

test('pg binary result format: text-like columns are masked, ints that would need masking are refused, the session goes on', async () => {
  const c = await pgClient(gw, token);
  try {
    const r = await c.query(binary('SELECT id, name, ssn, notes, meta, profile FROM customers WHERE id = $1', [1]));
    const row = r.rows[0] as Record<string, unknown>;
    assert.equal(row.id, 1);
    assert.equal(row.name, 'Ada');
    assert.equal(row.ssn, '[redacted]');
    assert.equal(row.notes, 'paid with [card] yesterday');
    assert.equal(row.meta, '{"k": "[github_token]"}');
    const profile = String(row.profile);
    assert.match(profile, /\[github_token\]/);
    assert.ok(!profile.includes(GH_TOKEN));

    // An int8 holding a card number: binary cannot be rewritten, so the result is refused.
    const card = await rejection(c.query(binary('SELECT card_no FROM customers WHERE id = $1', [1])));
    assert.equal(card.code, '22000');
    assert.equal(card.hint, 'gatehouse: ERR_MASKING_FAILED');
    assert.ok(!String(card.message).includes(CARD_DIGITS));
    // An int4 under a column rule: always refused in binary.
    const score = await rejection(c.query(binary('SELECT score FROM customers WHERE id = $1', [2])));
    assert.equal(score.hint, 'gatehouse: ERR_MASKING_FAILED');
    // A binary int masking would not change passes.
    assert.deepEqual((await c.query(binary('SELECT id, card_no FROM customers WHERE id = $1', [2]))).rows, [{ id: 2, card_no: '12345' }]);
    // Text format of the same column: masked, not refused.
    assert.deepEqual((await c.query('SELECT card_no FROM customers WHERE id = $1', [1])).rows, [{ card_no: '[card]' }]);
    assert.deepEqual((await c.query('SELECT count(*)::int AS n FROM customers')).rows, [{ n: 2 }]);

    // Refused inside a transaction: the transaction is still usable afterwards (the data was withheld, not the statement).
    await c.query('BEGIN');
    const mid = await rejection(c.query(binary('SELECT card_no FROM customers WHERE id > $1 ORDER BY id DESC', [0])));
    assert.equal(mid.hint, 'gatehouse: ERR_MASKING_FAILED');
    assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
});

test('COPY TO STDOUT: detectors mask the data; COPY out of a table under a column rule is refused', async () => {
  const plain = await psql(gw, token, ['-c', 'COPY plain TO STDOUT']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, '1\tcard [card] on file\n2\tnothing\n');
  for (const sql of ['COPY customers TO STDOUT', 'COPY (SELECT name, ssn FROM customers) TO STDOUT', 'COPY customers (id, name) TO STDOUT WITH (FORMAT csv)']) {
    const r = await psql(gw, token, ['-c', sql]);
    assert.notEqual(r.code, 0, sql);
    assert.equal(r.stdout, '', sql);
    assert.match(r.stderr, /COPY … TO cannot be masked column by column/, sql);
    assert.ok(!r.stderr.includes(SSN) && !r.stderr.includes(CARD_DIGITS));
  }
  const meta = await psql(gw, token, ['-c', '\\copy customers TO STDOUT']);
  assert.notEqual(meta.code, 0);
  assert.ok(!meta.stdout.includes(SSN));
  const c = await pgClient(gw, token);
  try {
    // The same through the extended protocol.
    const e = await rejection(c.query({ text: 'COPY customers TO STDOUT', queryMode: 'extended' } as pg.QueryConfig));
    assert.equal(e.code, '22000');
    assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
  } finally {
    await c.end();
  }
});

function rowText(m: DataRow): string[] {
  return decodeDataRow(m).map((v) => (v === null ? 'NULL' : v.toString('utf8')));
}

test('a large masked result to a client that stops reading: every row, in order, masked; one drain wait at a time', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  const w = await WireClient.login(gw.pgPort, token);
  try {
    w.socket.pause();
    w.write(frontend.query('SELECT id, v, ssn FROM bulk ORDER BY id'));
    await new Promise((r) => setTimeout(r, 1000));
    w.socket.resume();
    const msgs = await w.untilReady(30_000);
    const rows = msgs.filter((m): m is DataRow => m.name === 'DataRow');
    assert.equal(rows.length, 100_000);
    assert.deepEqual(rowText(rows[999]!), ['1000', 'row 1000 [card]', '[redacted]']);
    assert.ok(rows.every((m, i) => rowText(m)[0] === String(i + 1)));
    assert.deepEqual(names(msgs.slice(-2)), ['CommandComplete', 'ReadyForQuery']);
  } finally {
    w.end();
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings.filter((x) => x.name === 'MaxListenersExceededWarning').map((x) => x.message), []);
});

test('wire: Execute with a row limit (PortalSuspended) masks every batch', async () => {
  const w = await WireClient.login(gw.pgPort, token);
  try {
    w.write(frontend.parse('', 'SELECT id, ssn, notes FROM customers ORDER BY id'), frontend.bind('', '', []), frontend.execute('', 1), frontend.flush());
    const first: string[] = [];
    for (let m = await w.next(); ; m = await w.next()) {
      first.push(m.name === 'DataRow' ? rowText(m).join('|') : m.name);
      if (m.name === 'PortalSuspended') break;
    }
    assert.deepEqual(first, ['ParseComplete', 'BindComplete', '1|[redacted]|paid with [card] yesterday', 'PortalSuspended']);
    w.write(frontend.execute('', 1), frontend.execute('', 1), frontend.sync());
    const rest = await w.untilReady();
    assert.deepEqual(
      rest.map((m) => (m.name === 'DataRow' ? rowText(m).join('|') : m.name)),
      ['2|[redacted]|no secrets here', 'PortalSuspended', 'CommandComplete', 'ReadyForQuery'],
    );
  } finally {
    w.end();
  }
});

test('NOTIFY payloads the agent receives are masked by the detectors', async () => {
  const listener = await pgClient(gw, token);
  const other = await pgClient(gw, token);
  try {
    const got: string[] = [];
    listener.on('notification', (n) => got.push(n.payload ?? ''));
    await listener.query('LISTEN gh_leak');
    await other.query("SELECT pg_notify('gh_leak', notes) FROM customers WHERE id = 1");
    await other.query(`NOTIFY gh_leak, 'key ${GH_TOKEN}'`);
    await other.query("NOTIFY gh_leak, 'harmless'");
    await eventually(() => got.length === 3, 5000, 'the notifications');
    assert.deepEqual(got, ['paid with [card] yesterday', 'key [github_token]', 'harmless']);
  } finally {
    await listener.end();
    await other.end();
  }
});

test('with a client_encoding other than UTF8, masked results and COPY data are withheld (fail closed)', async () => {
  for (const enc of ['LATIN1', 'SQL_ASCII']) {
    const rows = await psql(gw, token, ['-c', 'SELECT notes FROM customers WHERE id = 1'], { env: { PGCLIENTENCODING: enc } });
    assert.equal(rows.stdout, '', enc);
    assert.match(rows.stderr, /can only be masked with client_encoding UTF8/, enc);
    const copy = await psql(gw, token, ['-c', 'COPY plain TO STDOUT'], { env: { PGCLIENTENCODING: enc } });
    assert.ok(!copy.stdout.includes(CARD_DIGITS), enc);
    assert.match(copy.stderr, /can only be masked with client_encoding UTF8/, enc);
    assert.match(copy.stderr, /ERR_MASKING_FAILED/, enc);
  }
});

test('server error texts quoting data are masked too', async () => {
  const c = await pgClient(gw, token);
  try {
    const e = await rejection(c.query(`SELECT '${GH_TOKEN}'::int`));
    assert.equal(e.code, '22P02');
    assert.match(e.message, /invalid input syntax for type integer/);
    assert.ok(!e.message.includes(GH_TOKEN), e.message);
    await c.query('BEGIN');
    const dup = await rejection(c.query(`INSERT INTO customers (id, name) VALUES (1, 'x')`));
    assert.equal(dup.code, '23505');
    await c.query('ROLLBACK');
  } finally {
    await c.end();
  }
});

test('recording, audit and at-rest secrecy: decisions, params, row counts; no raw card, key or token in the store or the log', async () => {
  const before = new Set((await gw.gateway.parts.store.listSessions()).map((s) => s.id));
  const c = await pgClient(gw, token);
  let sessionId: string;
  try {
    sessionId = await eventually(async () => (await gw.gateway.parts.store.listSessions({ live: true })).find((s) => !before.has(s.id))?.id, 5000, 'the session');
    await c.query('SELECT id, notes FROM customers ORDER BY id');
    await c.query('SELECT id FROM customers WHERE notes LIKE $1 OR name = $2', [`%${CARD}%`, GH_TOKEN]);
    await c.query(`SELECT id FROM customers WHERE notes LIKE '%${CARD_DIGITS}%' OR ssn = '${SSN}'`);
    await rejection(c.query('DROP TABLE customers'));
    await c.query("INSERT INTO plain VALUES (3, 'three'), (4, 'four')");
  } finally {
    await c.end();
  }
  await gw.gateway.parts.sessions.flush();
  const events = await eventually(async () => {
    const ev = await gw.gateway.parts.store.readRecording(sessionId);
    return ev.some((e) => e.type === 'result' && e.data.affected === 2) ? ev : undefined;
  }, 5000, 'the recording');

  const statements = events.filter((e) => e.type === 'statement');
  assert.deepEqual(
    statements.map((e) => e.data.effect),
    ['allow', 'allow', 'allow', 'deny', 'allow'],
  );
  const denied = statements[3]!.data;
  assert.equal(denied.rule, 'agents#1');
  assert.equal(denied.reason, 'schema changes are blocked');
  assert.deepEqual(denied.statements, [{ type: 'ddl', subtype: 'drop_table', tables: [{ name: 'customers', access: 'write' }], functions: [] }]);
  const params = events.find((e) => e.type === 'params');
  assert.deepEqual(params?.data.params, ['%[card]%', '[github_token]']);
  const results = events.filter((e) => e.type === 'result');
  assert.equal(results[0]!.data.tag, 'SELECT 2');
  assert.equal(results[0]!.data.rows, 2);
  assert.deepEqual(results[0]!.data.sample, [
    ['1', 'paid with [card] yesterday'],
    ['2', 'no secrets here'],
  ]);
  assert.ok(results.some((r) => r.data.tag === 'INSERT 0 2' && r.data.affected === 2));
  for (const e of events) assert.ok(!JSON.stringify(e.data).includes(CARD_DIGITS));

  await gw.gateway.parts.audit.flush();
  const audit = (await gw.gateway.parts.store.listAudit()).filter((a) => a.sessionId === sessionId);
  const commands = audit.filter((a) => a.type === 'command');
  assert.equal(commands.length, 5);
  assert.deepEqual(
    commands.map((a) => a.data.effect),
    ['allow', 'allow', 'allow', 'deny', 'allow'],
  );
  assert.match(String(commands[2]!.data.command), /\[card\]/);
  assert.ok(audit.some((a) => a.type === 'session.start') && audit.some((a) => a.type === 'session.end'));

  // Nothing raw at rest: the SQLite files (database, WAL) and the gateway's log.
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  const files = (await readdir(gw.dir)).filter((f) => f.startsWith('gatehouse.db')).map((f) => join(gw.dir, f));
  files.push(logFile);
  const log = await readFile(logFile, 'utf8');
  assert.match(log, /session opened/, 'the log is written');
  for (const f of files) {
    const bytes = await readFile(f);
    for (const secret of [CARD_DIGITS, CARD, GH_TOKEN, SSN, token]) {
      assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `${secret.slice(0, 12)}… found in ${f}`);
    }
  }
});
