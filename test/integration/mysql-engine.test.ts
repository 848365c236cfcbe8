/**
 * The MySQL engine against the machine's real MariaDB 10.11, driven by the real `mysql` client
 * (MariaDB's, with mysql_clear_password built in) and by mysql2: allowed and refused statements
 * (comments, executable comments, case, multi-statements, prepared statements), masking in the
 * text and binary protocols, USE / COM_INIT_DB, the utility commands, LOAD DATA LOCAL INFILE,
 * packets over 16 MiB, and what is recorded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ColumnType, MAX_PACKET_PAYLOAD, client } from '../../src/engines/mysql/index.js';
import { WireClient, mysql2Connect, mysqlCli, rejection, rootQuery, startMysqlGateway, until, type MysqlGateway } from './mysql-engine-support.js';

const POLICY = `policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [prod-mysql]
    rules:
      - { effect: deny, sql: { subtypes: ["drop_*", truncate] }, reason: "dropping is not allowed" }
      - { effect: deny, sql: { functions: [load_file, sleep, benchmark] }, reason: "this function is not allowed" }
      - { effect: deny, sql: { program: true }, reason: "statements that reach the server's files are not allowed" }
      - { effect: deny, sql: { tables: ["mysql.*", "*_secret.*"] }, reason: "these tables are off limits" }
      - { effect: allow, sql: { types: [select, insert, update, show, set, tcl, empty, explain] } }
      - { effect: allow, sql: { types: [use] }, regex: '(?i)^use\\s+\`?gh_mysql_[0-9a-f]+(_secret)?\`?$' }
      - { effect: mask, columns: ["users.ssn", "users.salary"], detectors: [payment_card], strategy: redact }
  - name: loaders
    subjects: { client_id: [agent-c] }
    connections: [prod-mysql]
    rules:
      - { effect: allow, sql: { types: [select, insert, load, show, set, empty] } }
`;

const SETUP = `
CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100), ssn VARCHAR(20), card VARCHAR(30), salary INT);
INSERT INTO users VALUES (1, 'ada@example.com', '123-45-6789', '4111 1111 1111 1111', 5000), (2, 'bob@example.com', '987-65-4321', 'not a card', 6000);
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50));
INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');
CREATE TABLE blobs (id INT PRIMARY KEY, body LONGTEXT);
CREATE VIEW users_v AS SELECT id, email, ssn FROM users;
CREATE VIEW users_vv AS SELECT id, CONCAT('x', ssn) AS shown FROM users_v;
`;

describe('MySQL engine: statements, masking, commands', () => {
  let g: MysqlGateway;
  let secretDb: string;
  let originalMaxPacket: string | undefined;

  before(async () => {
    // Packets over 16 MiB need a larger max_allowed_packet (read by each new connection).
    const [row] = (await rootQuery('SELECT @@global.max_allowed_packet AS m')) as { m: string }[];
    originalMaxPacket = String(row!.m);
    await rootQuery('SET GLOBAL max_allowed_packet = 67108864');
    g = await startMysqlGateway({ policy: POLICY, setupMysql: SETUP });
    secretDb = `${g.db.database}_secret`;
    await rootQuery(`CREATE DATABASE \`${secretDb}\`; CREATE TABLE \`${secretDb}\`.notes (id INT, body TEXT); INSERT INTO \`${secretDb}\`.notes VALUES (1, 'classified'); GRANT ALL ON \`${secretDb}\`.* TO '${g.db.user}'@'%', '${g.db.user}'@'localhost', '${g.db.user}'@'127.0.0.1'`);
  });

  after(async () => {
    await g?.close();
    if (secretDb) await rootQuery(`DROP DATABASE IF EXISTS \`${secretDb}\``);
    if (originalMaxPacket) await rootQuery(`SET GLOBAL max_allowed_packet = ${originalMaxPacket}`);
  });

  async function itemsExist(): Promise<boolean> {
    const rows = (await g.db.query("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'items'")) as unknown[];
    return (rows[1] as { n: number }[])[0]!.n === 1;
  }

  test('mysql CLI: an allowed SELECT returns the rows, masked by column and by detector', async () => {
    const token = await g.token();
    const r = await mysqlCli(g.port, token, ['-e', 'SELECT id, email, ssn, card, salary FROM users ORDER BY id']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, ['id\temail\tssn\tcard\tsalary', '1\tada@example.com\t[redacted]\t[card]\t[redacted]', '2\tbob@example.com\t[redacted]\tnot a card\t[redacted]', ''].join('\n'));
    const items = await mysqlCli(g.port, token, ['--skip-column-names', '-e', 'select name from items where id in (1, 3) order by id']);
    assert.equal(items.stdout, 'one\nthree\n');
  });

  test('mysql CLI: DROP and its evasions are refused with 1142 and the rule reason; nothing runs', async () => {
    const token = await g.token();
    const attempts = [
      'DROP TABLE items',
      'dRoP tAbLe items',
      'DROP/**/TABLE items',
      '/*!50000 DROP TABLE items */',
      '/*!DROP*/ TABLE items',
      '/*M!100000 DROP TABLE items */',
      'DROP -- a comment\nTABLE items',
      'DROP # a comment\nTABLE items',
      'TRUNCATE items',
      'drop table if exists `items`',
    ];
    for (const sql of attempts) {
      const r = await mysqlCli(g.port, token, ['--comments', '-e', sql]);
      assert.notEqual(r.code, 0, sql);
      assert.match(r.stderr, /ERROR 1142 \(42000\).*gatehouse: dropping is not allowed/, `${sql}: ${r.stderr}`);
    }
    // A multi-statement packet (the CLI sends one with a custom delimiter) is refused whole.
    const multi = await mysqlCli(g.port, token, ['--comments'], { input: 'DELIMITER //\nSELECT 1; DROP TABLE items //\n' });
    assert.match(multi.stderr, /ERROR 1142.*dropping is not allowed/);
    assert.doesNotMatch(multi.stdout, /^1$/m, 'the SELECT before the DROP did not run either');
    assert.equal(await itemsExist(), true);
  });

  test('mysql CLI: dangerous functions, INTO OUTFILE, system tables and unknown statements are refused', async () => {
    const token = await g.token();
    const cases: [string, RegExp][] = [
      ["SELECT LOAD_FILE('/etc/passwd')", /this function is not allowed/],
      ['SELECT SLEEP(1)', /this function is not allowed/],
      ["SELECT BENCHMARK(1000000, MD5('x'))", /this function is not allowed/],
      ['select/**/sleep(1)', /this function is not allowed/],
      ["SELECT * FROM items INTO OUTFILE '/tmp/gh-out.txt'", /reach the server's files/],
      ['SELECT user, password FROM mysql.user', /off limits/],
      ['SELECT $$ what is this', /no policy allows this/],
      ['SET STATEMENT max_statement_time=1 FOR DROP TABLE items', /no policy allows this/],
      ['GRANT ALL ON *.* TO nobody', /no policy allows this/],
    ];
    for (const [sql, re] of cases) {
      const r = await mysqlCli(g.port, token, ['--comments', '-e', sql]);
      assert.match(r.stderr, /ERROR 1142 \(42000\)/, `${sql}: ${r.stderr}`);
      assert.match(r.stderr, re, sql);
    }
  });

  test('mysql2: text protocol and binary protocol rows are masked; numbers that would need masking fail closed', async () => {
    const c = await mysql2Connect(g.port, await g.token());
    const [text] = await c.query('SELECT id, email, ssn, card FROM users ORDER BY id');
    assert.deepStrictEqual(text, [
      { id: 1, email: 'ada@example.com', ssn: '[redacted]', card: '[card]' },
      { id: 2, email: 'bob@example.com', ssn: '[redacted]', card: 'not a card' },
    ]);
    // Aliases keep their origin (org_table, org_name): still masked.
    const [aliased] = await c.query('SELECT u.ssn AS x FROM users u WHERE id = 1');
    assert.deepStrictEqual(aliased, [{ x: '[redacted]' }]);
    const [bin] = await c.execute('SELECT id, email, ssn, card FROM users WHERE id = ?', [1]);
    assert.deepStrictEqual(bin, [{ id: 1, email: 'ada@example.com', ssn: '[redacted]', card: '[card]' }]);
    // An INT column under a column rule cannot carry "[redacted]" in the binary protocol: refused.
    const e = await rejection(c.execute('SELECT id, salary FROM users WHERE id = ?', [1]));
    assert.match(e.message, /could not be inspected for masking.*ERR_MASKING_FAILED/);
    // The session goes on.
    const [ok] = await c.execute('SELECT name FROM items WHERE id = ?', [2]);
    assert.deepStrictEqual(ok, [{ name: 'two' }]);
    await c.end();
  });

  test('column rules follow values through expressions, views, derived tables, CTEs, UNIONs and subqueries', async () => {
    const c = await mysql2Connect(g.port, await g.token());
    const one = async (sql: string): Promise<unknown[]> => ((await c.query(sql)) as unknown as [Record<string, unknown>[]])[0].map((r) => Object.values(r)[0]);
    assert.deepStrictEqual(await one('SELECT CONCAT(ssn) FROM users ORDER BY id'), ['[redacted]', '[redacted]']);
    assert.deepStrictEqual(await one('SELECT LOWER(u.ssn) AS x FROM users u WHERE id = 1'), ['[redacted]']);
    assert.deepStrictEqual(await one('SELECT x FROM (SELECT ssn AS x FROM users) t ORDER BY x'), ['[redacted]', '[redacted]']);
    assert.deepStrictEqual(await one('WITH w AS (SELECT ssn FROM users) SELECT * FROM w'), ['[redacted]', '[redacted]']);
    assert.deepStrictEqual(await one('SELECT email FROM users WHERE id = 1 UNION ALL SELECT ssn FROM users WHERE id = 1'), ['[redacted]', '[redacted]']);
    assert.deepStrictEqual(await one('SELECT (SELECT ssn FROM users WHERE id = 1) AS sub'), ['[redacted]']);
    assert.deepStrictEqual(await one('SELECT ssn FROM users_v WHERE id = 1'), ['[redacted]']);
    assert.deepStrictEqual(await one('SELECT shown FROM users_vv WHERE id = 1'), ['[redacted]'], 'through a view of a view');
    // View columns whose base column no rule covers stay readable; so do computed columns of unmasked columns.
    const [view] = await c.query('SELECT id, email FROM users_v WHERE id = 1');
    assert.deepStrictEqual(view, [{ id: 1, email: 'ada@example.com' }]);
    assert.deepStrictEqual(await one('SELECT UPPER(email) FROM users WHERE id = 1'), ['ADA@EXAMPLE.COM']);
    assert.deepStrictEqual(await one('SELECT COUNT(*) FROM users'), [2]);
    // Binary protocol: a computed string column is rewritten like any other.
    const [bin] = (await c.execute('SELECT CONCAT(ssn, ?) AS s FROM users WHERE id = 1', ['!'])) as unknown as [Record<string, unknown>[]];
    assert.deepStrictEqual(bin, [{ s: '[redacted]' }]);
    await c.end();
  });

  test('mysql2: prepared statements are decided at prepare; their parameters are recorded at execute', async () => {
    const c = await mysql2Connect(g.port, await g.token());
    const e = await rejection(c.execute('DROP TABLE items'));
    assert.equal(e.errno, 1142);
    assert.match(e.message, /dropping is not allowed/);
    const e2 = await rejection(c.prepare('/*!50000 DROP */ TABLE items'));
    assert.equal(e2.errno, 1142);
    await c.execute('INSERT INTO items VALUES (?, ?)', [100, 'param-value-4242']);
    const [rows] = await c.execute('SELECT name FROM items WHERE id = ?', [100]);
    assert.deepStrictEqual(rows, [{ name: 'param-value-4242' }]);
    await c.end();
    assert.equal(await itemsExist(), true);
    const admin = await g.token({ clientId: 'auditor-1' });
    const events = await until(async () => {
      const sessions = (await api(admin, 'GET', '/api/sessions?connection=prod-mysql')) as { id: string }[];
      for (const s of sessions) {
        const ev = (await api(admin, 'GET', `/api/sessions/${s.id}/recording`)) as { type: string; data: Record<string, unknown> }[];
        if (ev.some((x) => x.type === 'params' && JSON.stringify(x.data).includes('param-value-4242'))) return ev;
      }
      return undefined;
    }, 'the recording with the parameters');
    const insert = events.find((x) => x.type === 'statement' && String(x.data.command).startsWith('INSERT INTO items'));
    assert.equal(insert?.data.effect, 'allow');
    const drop = events.find((x) => x.type === 'statement' && x.data.command === 'DROP TABLE items');
    assert.equal(drop?.data.effect, 'deny');
    assert.ok(events.some((x) => x.type === 'params' && JSON.stringify(x.data.params) === JSON.stringify(['100', 'param-value-4242'])));
    assert.ok(events.some((x) => x.type === 'result' && x.data.rows === 1 && JSON.stringify(x.data.sample) === JSON.stringify([['param-value-4242']])));
  });

  test('multi-statements: one refused statement refuses the whole packet; allowed ones run in order', async () => {
    const c = await mysql2Connect(g.port, await g.token(), { multipleStatements: true });
    for (const sql of ['SELECT 1; DROP TABLE items', 'select 1;drop table items;', "SELECT 'a;b'; DROP TABLE items", 'SELECT 1; SELECT * FROM mysql.user']) {
      const e = await rejection(c.query(sql));
      assert.equal(e.errno, 1142, sql);
    }
    const [sets] = (await c.query("SELECT 1 AS a; INSERT INTO items VALUES (200, 'multi'); SELECT name FROM items WHERE id = 200")) as unknown as [unknown[]];
    assert.deepStrictEqual(sets[0], [{ a: 1 }]);
    assert.deepStrictEqual(sets[2], [{ name: 'multi' }]);
    await c.end();
    assert.equal(await itemsExist(), true);
  });

  test('USE and COM_INIT_DB: the target database is policy-checked and unqualified tables are qualified with it', async () => {
    const token = await g.token();
    // The CLI's `use` is COM_INIT_DB.
    const sys = await mysqlCli(g.port, token, ['-e', 'use mysql']);
    assert.match(sys.stderr, /ERROR 1142.*no policy allows this/);
    const other = await mysqlCli(g.port, token, ['-e', `use ${secretDb}; select * from notes`]);
    assert.match(other.stderr, /ERROR 1142.*these tables are off limits/, other.stderr);
    assert.doesNotMatch(other.stdout, /classified/);
    const c = await mysql2Connect(g.port, token, { multipleStatements: true });
    assert.match((await rejection(c.query(`USE ${secretDb}; SELECT * FROM notes`))).message, /off limits/);
    await c.query(`USE ${secretDb}`);
    assert.match((await rejection(c.query('SELECT * FROM notes'))).message, /off limits/);
    assert.match((await rejection(c.query('SELECT * FROM items'))).message, /off limits/, `${secretDb}.items is off limits too`);
    await c.query(`USE \`${g.db.database}\``);
    const [rows] = await c.query('SELECT COUNT(*) AS n FROM items WHERE id <= 3');
    assert.deepStrictEqual(rows, [{ n: 3 }]);
    await c.end();
    // The connection named as the user, a schema in the database field (mysqlslap, some JDBC set-ups): decided as USE.
    const byUser = await mysql2Connect(g.port, token, { user: 'prod-mysql', database: g.db.database });
    const [n] = await byUser.query('SELECT DATABASE() AS db');
    assert.deepStrictEqual(n, [{ db: g.db.database }]);
    await byUser.end();
    const refused = await rejection(mysql2Connect(g.port, token, { user: 'prod-mysql', database: 'mysql' }));
    assert.equal(refused.errno, 1044);
    assert.match(refused.message, /database mysql: no policy allows this/);
  });

  test('COM_FIELD_LIST, COM_STATISTICS, COM_PING pass; COM_CHANGE_USER and unsupported commands are refused; unknown statement ids too', async () => {
    const c = await WireClient.login(g.port, await g.token());
    const fields = await c.command(client.fieldList('items'), 'field_list');
    assert.deepStrictEqual(fields.filter((m) => m.name === 'ColumnDefinition').map((m) => (m.name === 'ColumnDefinition' ? m.columnName : '')), ['id', 'name']);
    // COM_FIELD_LIST is decided as SHOW COLUMNS FROM <current database>.<table>.
    assert.equal((await c.command(client.initDb(secretDb), 'simple'))[0]?.name, 'OkPacket');
    const refusedFields = await c.command(client.fieldList('notes'), 'field_list');
    assert.equal(refusedFields.length, 1);
    assert.match(refusedFields[0]?.name === 'ErrPacket' ? refusedFields[0].message : '', /off limits/);
    assert.equal((await c.command(client.initDb(g.db.database), 'simple'))[0]?.name, 'OkPacket');
    assert.equal((await c.command(client.initDb('mysql'), 'simple'))[0]?.name, 'ErrPacket');
    const stats = await c.command(client.statistics(), 'statistics');
    assert.match(stats[0]?.name === 'Statistics' ? stats[0].text : '', /Uptime/);
    assert.equal((await c.command(client.ping(), 'simple'))[0]?.name, 'OkPacket');
    const change = await c.command(client.changeUser({ capabilities: c.capabilities, user: 'root', database: 'mysql' }), 'simple');
    assert.equal(change[0]?.name, 'ErrPacket');
    assert.match(change[0]?.name === 'ErrPacket' ? change[0].message : '', /COM_CHANGE_USER is not supported/);
    for (const cmd of [client.raw(0x08), client.raw(0x0c, Buffer.from([1, 0, 0, 0])), client.raw(0x12, Buffer.alloc(10))]) {
      const r = await c.command(cmd, 'simple');
      assert.equal(r[0]?.name, 'ErrPacket');
      assert.match(r[0]?.name === 'ErrPacket' ? r[0].message : '', /not supported through the gateway/);
    }
    const exec = await c.command(client.stmtExecute({ statementId: 12345, params: [] }), 'execute');
    assert.equal(exec[0]?.name === 'ErrPacket' ? exec[0].code : 0, 1243);
    // After all that the session still works.
    assert.deepStrictEqual((await c.query('SELECT name FROM items WHERE id = 1')).rows, [['one']]);
    c.close();
  });

  test('MariaDB pipelining: a COM_STMT_EXECUTE of "the statement prepared last" sent before the prepare is answered', async () => {
    const c = await WireClient.login(g.port, await g.token());
    c.sendCommand(client.stmtPrepare('SELECT name, ? AS echo FROM items WHERE id = 3'));
    c.sendCommand(client.stmtExecute({ statementId: 0xffffffff, params: [{ type: ColumnType.VAR_STRING, value: Buffer.from('pipelined') }] }));
    c.seq.next = 1;
    const prep = await c.answer('prepare');
    assert.equal(prep[0]?.name, 'StmtPrepareOk');
    c.seq.next = 1;
    const rows = await c.answer('execute');
    const row = rows.find((m) => m.name === 'BinaryRow');
    assert.ok(row && row.payload.includes(Buffer.from('pipelined')) && row.payload.includes(Buffer.from('three')));
    // A refused prepare followed by an execute of "the last one" does not run an older statement.
    c.sendCommand(client.stmtPrepare('DROP TABLE items'));
    c.sendCommand(client.stmtExecute({ statementId: 0xffffffff, params: [] }));
    c.seq.next = 1;
    const refused = await c.answer('prepare');
    assert.equal(refused[0]?.name === 'ErrPacket' ? refused[0].code : 0, 1142);
    c.seq.next = 1;
    const exec = await c.answer('execute');
    assert.equal(exec[0]?.name === 'ErrPacket' ? exec[0].code : 0, 1243);
    c.close();
    assert.equal(await itemsExist(), true);
  });

  test('LOAD DATA LOCAL INFILE: refused unless policy allows it, then the file is relayed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gh-infile-'));
    try {
      const file = join(dir, 'rows.tsv');
      await writeFile(file, '500\tfrom-file-1\n501\tfrom-file-2\n');
      const sql = `LOAD DATA LOCAL INFILE '${file}' INTO TABLE items`;
      const refused = await mysqlCli(g.port, await g.token(), ['--local-infile=1', '-e', sql]);
      assert.match(refused.stderr, /ERROR 1142.*reach the server's files/);
      const loaded = await mysqlCli(g.port, await g.token({ clientId: 'agent-c' }), ['--local-infile=1', '-e', `${sql}; SELECT name FROM items WHERE id >= 500 ORDER BY id`]);
      assert.equal(loaded.code, 0, loaded.stderr);
      assert.match(loaded.stdout, /from-file-1\nfrom-file-2/);
      // A client that does not offer local files is refused by the server itself.
      const noLocal = await mysqlCli(g.port, await g.token({ clientId: 'agent-c' }), ['--local-infile=0', '-e', sql.replace('INTO TABLE items', 'REPLACE INTO TABLE items')]);
      assert.notEqual(noLocal.code, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('packets over 16 MiB: a query and a row pass through the gateway; a masked session refuses a value it cannot inspect', async () => {
    const big = 'y'.repeat(MAX_PACKET_PAYLOAD + 5000);
    // Again here: another test file may have restored the global meanwhile (each new session reads it).
    await rootQuery('SET GLOBAL max_allowed_packet = 67108864');
    const c = await mysql2Connect(g.port, await g.token({ clientId: 'agent-c' }));
    await c.query(`INSERT INTO blobs VALUES (1, '${big}')`);
    const [len] = await c.query('SELECT LENGTH(body) AS n FROM blobs WHERE id = 1');
    assert.deepStrictEqual(len, [{ n: big.length }]);
    const [rows] = (await c.query('SELECT body FROM blobs WHERE id = 1')) as unknown as [{ body: string }[]];
    assert.equal(rows[0]!.body.length, big.length);
    assert.ok(rows[0]!.body === big);
    const [bin] = (await c.execute('SELECT body FROM blobs WHERE id = ?', [1])) as unknown as [{ body: string }[]];
    assert.equal(bin[0]!.body.length, big.length);
    await c.end();
    // agent-a's session has detectors: a 16 MiB value is over the masking size limit, so it is withheld.
    const a = await mysql2Connect(g.port, await g.token());
    const e = await rejection(a.query('SELECT body FROM blobs WHERE id = 1'));
    assert.match(e.message, /ERR_MASKING_FAILED/);
    const [small] = await a.query('SELECT LENGTH(body) AS n FROM blobs WHERE id = 1');
    assert.deepStrictEqual(small, [{ n: big.length }]);
    await a.end();
  });

  test('mysql CLI with --compress works (compression is not offered, so not used); SET gatehouse.reason is answered by the gateway', async () => {
    const token = await g.token();
    const r = await mysqlCli(g.port, token, ['--compress', '--skip-column-names', '-e', "SET gatehouse.reason = 'ticket 42'; SELECT name FROM items WHERE id = 2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'two\n');
  });

  async function api(token: string, method: string, path: string, body?: unknown): Promise<unknown> {
    const r = await fetch(`http://127.0.0.1:${g.gw.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return r.json();
  }
});
