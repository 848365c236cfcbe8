/**
 * The MySQL wire codec and upstream authenticator against the machine's real MariaDB 10.11
 * (127.0.0.1:3306, root without a password): login with mysql_native_password, text result sets,
 * prepared statements with binary rows, multi-statement queries, cursors, LOCAL INFILE, payloads
 * over 16 MiB. caching_sha2_password (which MariaDB does not have) runs against a small server
 * written here with the codec's server side, with and without TLS; the same server side is checked
 * against a real client (mysql2) doing mysql_clear_password, text queries and prepared statements.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash, generateKeyPairSync, privateDecrypt, constants as cryptoConstants } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket, createSecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import mysql2 from 'mysql2/promise';
import { UpstreamAuthenticator, nativePasswordScramble, type UpstreamCredentials } from '../../src/engines/mysql/auth.js';
import {
  Capability,
  ClientParser,
  ColumnFlag,
  ColumnType,
  CursorType,
  MAX_PACKET_PAYLOAD,
  PacketParser,
  ResponseReader,
  Sequence,
  ServerStatus,
  SetOption,
  client,
  decodeTextRow,
  generateScramble,
  parseAuthPhasePacket,
  parseGreeting,
  responseKind,
  server,
  type BinaryValue,
  type ClientMessage,
  type ColumnDefinition,
  type HandshakeOptions,
  type HandshakeV10,
  type OkPacket,
  type Packet,
  type ResponseKind,
  type ResponseMessage,
} from '../../src/engines/mysql/index.js';
import { makeTestCert, type TestCert } from '../support/tls.js';

const HOST = process.env.MYSQL_HOST_TEST ?? '127.0.0.1';
const PORT = Number(process.env.MYSQL_PORT_TEST ?? 3306);
const BASE = (Capability.LONG_PASSWORD | Capability.LONG_FLAG | Capability.PROTOCOL_41 | Capability.TRANSACTIONS | Capability.SECURE_CONNECTION | Capability.MULTI_RESULTS | Capability.PS_MULTI_RESULTS | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_ATTRS) >>> 0;
const WITH_EOF = BASE;
const DEPRECATE = (BASE | Capability.DEPRECATE_EOF) >>> 0;

/** A client built from the codec alone: packets in, payloads out, over a raw socket (or TLS). */
class WireClient {
  private queue: Packet[] = [];
  private waiting: { resolve: (p: Packet) => void; reject: (e: unknown) => void } | undefined;
  private failure: unknown;
  readonly parser = new PacketParser({ maxPayloadBytes: 64 * 1024 * 1024 });
  readonly seq = new Sequence();
  stream: Duplex;
  capabilities = 0;
  greeting!: HandshakeV10;

  constructor(stream: Duplex) {
    this.stream = stream;
    this.attach(stream);
  }

  attach(stream: Duplex): void {
    this.stream = stream;
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const p of this.parser.push(chunk)) this.deliver(p);
      } catch (e) {
        this.fail(e);
      }
    });
    stream.on('error', (e) => this.fail(e));
  }

  private fail(e: unknown): void {
    this.failure = e;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(e);
  }

  private deliver(p: Packet): void {
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w.resolve(p);
    } else this.queue.push(p);
  }

  next(): Promise<Packet> {
    if (this.failure) return Promise.reject(this.failure);
    const p = this.queue.shift();
    if (p) {
      this.seq.receive(p);
      return Promise.resolve(p);
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for a packet')), 20000);
      this.waiting = {
        resolve: (x) => {
          clearTimeout(t);
          try {
            this.seq.receive(x);
            resolve(x);
          } catch (e) {
            reject(e);
          }
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
    });
  }

  send(payload: Buffer): void {
    this.stream.write(this.seq.frame(payload));
  }

  /** Sends a command and reads its whole answer with the response state machine. */
  async command(payload: Buffer, kind: ResponseKind, columns?: readonly ColumnDefinition[]): Promise<{ rr: ResponseReader; msgs: ResponseMessage[] }> {
    this.seq.reset();
    this.send(payload);
    const rr = new ResponseReader(kind, { capabilities: this.capabilities, ...(columns ? { columns } : {}) });
    const msgs: ResponseMessage[] = [];
    while (!rr.done) {
      const m = rr.read(await this.next());
      msgs.push(m);
      if (m.name === 'LocalInfileRequest') return { rr, msgs };
    }
    return { rr, msgs };
  }

  /** A text query: its result sets as rows of strings, and its OK packets. */
  async query(sql: string): Promise<{ sets: { columns: string[]; rows: (string | null)[][] }[]; oks: OkPacket[]; error?: { code: number; message: string } }> {
    const { rr, msgs } = await this.command(client.query(sql), 'query');
    void rr;
    const sets: { columns: string[]; rows: (string | null)[][] }[] = [];
    const oks: OkPacket[] = [];
    let columnCount = 0;
    for (const m of msgs) {
      if (m.name === 'ColumnCount') {
        sets.push({ columns: [], rows: [] });
        columnCount = m.count;
      } else if (m.name === 'ColumnDefinition') sets.at(-1)!.columns.push(m.columnName);
      else if (m.name === 'TextRow') sets.at(-1)!.rows.push(decodeTextRow(m.payload, columnCount));
      else if (m.name === 'OkPacket' && m.header === 0) oks.push(m);
      else if (m.name === 'ErrPacket') return { sets, oks, error: { code: m.code, message: m.message } };
    }
    return { sets, oks };
  }

  async ok(sql: string): Promise<void> {
    const r = await this.query(sql);
    assert.equal(r.error, undefined, `${sql}: ${r.error?.message}`);
  }

  close(): void {
    this.seq.reset();
    this.send(client.quit());
    this.stream.end();
  }
}

function tcp(port: number, host = HOST): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

/** Connects and authenticates with the codec; throws the authenticator's ERR_UPSTREAM on refusal. */
async function login(creds: UpstreamCredentials, options: HandshakeOptions = {}, port = PORT, tls?: { ca: string }): Promise<WireClient> {
  const sock = await tcp(port);
  const c = new WireClient(sock);
  try {
    const g = parseGreeting(await c.next());
    if (g.name !== 'HandshakeV10') throw new Error(`server refused: ${g.message}`);
    c.greeting = g;
    const auth = new UpstreamAuthenticator(creds);
    if (tls) {
      c.send(auth.sslRequest(g, options));
      sock.removeAllListeners('data');
      const secure = tlsConnect({ socket: sock, ca: tls.ca, servername: 'localhost' });
      await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
      c.parser.assertEmpty();
      c.attach(secure);
    }
    c.send(auth.handshakeResponse(g, options, tls !== undefined));
    while (!auth.authenticated) {
      const reply = auth.respond(parseAuthPhasePacket(await c.next(), auth.capabilities));
      if (reply) c.send(reply);
    }
    c.capabilities = auth.capabilities;
    return c;
  } catch (e) {
    c.stream.destroy();
    throw e;
  }
}

const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const DB = `gh_codec_${suffix}`;
const USER = `gh_native_${suffix}`;
const PASSWORD = `pw-${randomBytes(6).toString('hex')}-ü`;
let root: WireClient;
let originalMaxPacket = '';

before(async () => {
  root = await login({ user: 'root' }, { capabilities: DEPRECATE });
  originalMaxPacket = (await root.query('SELECT @@global.max_allowed_packet')).sets[0]!.rows[0]![0]!;
  await root.ok(`CREATE DATABASE ${DB} CHARACTER SET utf8mb4`);
  await root.ok(`CREATE USER '${USER}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('${PASSWORD}')`);
  await root.ok(`GRANT ALL ON ${DB}.* TO '${USER}'@'%'`);
});

after(async () => {
  await root.ok(`DROP DATABASE IF EXISTS ${DB}`);
  await root.ok(`DROP USER IF EXISTS '${USER}'@'%'`);
  if (originalMaxPacket) await root.ok(`SET GLOBAL max_allowed_packet = ${originalMaxPacket}`);
  root.close();
});

const user = (extra: Partial<UpstreamCredentials> = {}): UpstreamCredentials => ({ user: USER, password: PASSWORD, database: DB, ...extra });

test('mysql_native_password login; text result sets with NULLs and UTF-8, with and without CLIENT_DEPRECATE_EOF', async () => {
  for (const caps of [WITH_EOF, DEPRECATE]) {
    const c = await login(user(), { capabilities: caps, attributes: { program_name: 'gatehouse-test' } });
    assert.match(c.greeting.serverVersion, /MariaDB/);
    assert.equal(c.greeting.authPlugin, 'mysql_native_password');
    assert.equal((c.capabilities & Capability.DEPRECATE_EOF) !== 0, caps === DEPRECATE);
    const { rr, msgs } = await c.command(client.query("SELECT 1 AS n, NULL AS nothing, 'Zoë' AS name, DATABASE() AS db"), 'query');
    assert.deepStrictEqual(
      msgs.map((m) => m.name),
      caps === WITH_EOF
        ? ['ColumnCount', 'ColumnDefinition', 'ColumnDefinition', 'ColumnDefinition', 'ColumnDefinition', 'EofPacket', 'TextRow', 'EofPacket']
        : ['ColumnCount', 'ColumnDefinition', 'ColumnDefinition', 'ColumnDefinition', 'ColumnDefinition', 'TextRow', 'OkPacket'],
    );
    assert.deepStrictEqual(rr.columns.map((col) => col.columnName), ['n', 'nothing', 'name', 'db']);
    assert.deepStrictEqual(rr.decodeTextRow(msgs.find((m) => m.name === 'TextRow') as never), ['1', null, 'Zoë', DB]);
    // An error, then the session goes on.
    const err = await c.query('SELECT * FROM no_such_table');
    assert.equal(err.error?.code, 1146);
    const again = await c.query('SELECT 2');
    assert.deepStrictEqual(again.sets[0]!.rows, [['2']]);
    c.close();
  }
});

test('a wrong password is refused by the server (1045)', async () => {
  await assert.rejects(login(user({ password: 'wrong' })), (e: unknown) => {
    assert.ok(e instanceof Error && 'code' in e && e.code === 'ERR_UPSTREAM');
    assert.match((e as { detail?: string }).detail ?? '', /server error 1045 \(28000\): Access denied/);
    return true;
  });
});

test('DML: OK packets with affected rows and last insert id', async () => {
  const c = await login(user(), { capabilities: DEPRECATE });
  await c.ok('CREATE TABLE counters (id INT AUTO_INCREMENT PRIMARY KEY, n INT)');
  const ins = await c.query('INSERT INTO counters (n) VALUES (1), (2), (3)');
  assert.equal(ins.oks[0]!.affectedRows, 3n);
  assert.equal(ins.oks[0]!.lastInsertId, 1n);
  assert.match(ins.oks[0]!.info, /Records: 3/);
  const upd = await c.query('UPDATE counters SET n = n + 1 WHERE id > 1');
  assert.equal(upd.oks[0]!.affectedRows, 2n);
  c.close();
});

const TYPES_TABLE = `CREATE TABLE types (
  id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, bi BIGINT, bu BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dec1 DECIMAL(10,2), dt DATE, dtm DATETIME(6), ts TIMESTAMP NULL, tm TIME(3), yr YEAR,
  vc VARCHAR(20), ch CHAR(3), bl BLOB, tx TEXT, js JSON, en ENUM('red','green'), st SET('a','b'), bt BIT(8))`;

test('prepared statements: parameters in the binary protocol, binary rows of every type, reset and close', async () => {
  for (const caps of [WITH_EOF, DEPRECATE]) {
    const c = await login(user(), { capabilities: caps });
    await c.ok('DROP TABLE IF EXISTS types');
    await c.ok(TYPES_TABLE);
    await c.ok(`INSERT INTO types VALUES
      (1, -128, 255, -32768, -8388608, -9223372036854775808, 18446744073709551615, 1.5, -2.25, 12345678.99, '2024-02-29',
       '2024-02-29 23:59:58.123456', '2038-01-19 03:14:07', '-838:59:58.5', 2024, 'Zoë', 'abc', x'00ff10', 'text', '{"a": 1}', 'green', 'a,b', b'10000001'),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    const prep = await c.command(client.stmtPrepare('SELECT * FROM types WHERE id >= ? AND vc <=> ? ORDER BY id'), 'prepare');
    const ok = prep.msgs[0]!;
    assert.ok(ok.name === 'StmtPrepareOk');
    assert.equal(ok.paramCount, 2);
    assert.equal(ok.columnCount, 23);
    assert.equal(prep.rr.params.length, 2);
    assert.equal(prep.rr.columns.length, 23);
    const exec = await c.command(client.stmtExecute({ statementId: ok.statementId, params: [{ type: ColumnType.LONG, value: 1 }, { type: ColumnType.VAR_STRING, value: Buffer.from('Zoë') }] }), 'execute');
    const rows = exec.msgs.filter((m) => m.name === 'BinaryRow').map((m) => exec.rr.decodeBinaryRow(m as never));
    assert.equal(rows.length, 1);
    const byName = Object.fromEntries(exec.rr.columns.map((col, i) => [col.columnName, rows[0]![i]])) as Record<string, BinaryValue>;
    assert.equal(byName.id, 1);
    assert.equal(byName.ti, -128);
    assert.equal(byName.tu, 255);
    assert.equal(byName.si, -32768);
    assert.equal(byName.mi, -8388608);
    assert.equal(byName.bi, -9223372036854775808n);
    assert.equal(byName.bu, 18446744073709551615n);
    assert.equal(byName.f, 1.5);
    assert.equal(byName.d, -2.25);
    assert.deepStrictEqual(byName.dec1, Buffer.from('12345678.99'));
    assert.deepStrictEqual(byName.dt, { year: 2024, month: 2, day: 29, hour: 0, minute: 0, second: 0, microsecond: 0 });
    assert.deepStrictEqual(byName.dtm, { year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 58, microsecond: 123456 });
    assert.deepStrictEqual(byName.ts, { year: 2038, month: 1, day: 19, hour: 3, minute: 14, second: 7, microsecond: 0 });
    assert.deepStrictEqual(byName.tm, { negative: true, days: 34, hours: 22, minutes: 59, seconds: 58, microseconds: 500000 });
    assert.equal(byName.yr, 2024);
    assert.deepStrictEqual(byName.vc, Buffer.from('Zoë'));
    assert.deepStrictEqual(byName.ch, Buffer.from('abc'));
    assert.deepStrictEqual(byName.bl, Buffer.from([0, 0xff, 0x10]));
    assert.deepStrictEqual(byName.tx, Buffer.from('text'));
    assert.deepStrictEqual(byName.js, Buffer.from('{"a": 1}'));
    assert.deepStrictEqual(byName.en, Buffer.from('green'));
    assert.deepStrictEqual(byName.st, Buffer.from('a,b'));
    assert.deepStrictEqual(byName.bt, Buffer.from([0x81]));
    const unsignedCols = exec.rr.columns.filter((col) => col.flags & ColumnFlag.UNSIGNED).map((col) => col.columnName);
    assert.ok(unsignedCols.includes('bu') && unsignedCols.includes('tu'));
    // The rows re-serialize byte for byte.
    const first = exec.msgs.find((m) => m.name === 'BinaryRow')!;
    assert.ok(server.binaryRow(exec.rr.columns, rows[0]!).equals(first.payload));

    // Re-executed without types (the server keeps the previous ones), NULL parameter matches the NULL row.
    const again = await c.command(client.stmtExecute({ statementId: ok.statementId, params: [{ type: ColumnType.LONG, value: 2 }, { type: ColumnType.VAR_STRING, value: null }], newParamsBound: false }), 'execute');
    const nullRows = again.msgs.filter((m) => m.name === 'BinaryRow').map((m) => again.rr.decodeBinaryRow(m as never));
    assert.equal(nullRows.length, 1);
    assert.equal(nullRows[0]![0], 2);
    assert.ok(nullRows[0]!.slice(1).every((v) => v === null));

    // Parameters of every type go in; the server echoes them back.
    const echo = await c.command(client.stmtPrepare('SELECT ?, ?, ?, ?, ?, ?, ?, ?'), 'prepare');
    const echoId = (echo.msgs[0] as { statementId: number }).statementId;
    const params = [
      { type: ColumnType.TINY, value: -5 },
      { type: ColumnType.LONGLONG, unsigned: true, value: 2n ** 63n + 5n },
      { type: ColumnType.DOUBLE, value: 0.125 },
      { type: ColumnType.DATETIME, value: { year: 2001, month: 2, day: 3, hour: 4, minute: 5, second: 6, microsecond: 7 } },
      { type: ColumnType.TIME, value: { negative: false, days: 1, hours: 2, minutes: 3, seconds: 4, microseconds: 0 } },
      { type: ColumnType.BLOB, value: Buffer.from([1, 2, 3]) },
      { type: ColumnType.NULL, value: null },
      { type: ColumnType.STRING, value: Buffer.from('é') },
    ];
    const e2 = await c.command(client.stmtExecute({ statementId: echoId, params }), 'execute');
    const echoed = e2.rr.decodeBinaryRow(e2.msgs.find((m) => m.name === 'BinaryRow') as never);
    assert.equal(Number(echoed[0]), -5);
    assert.equal(echoed[1], 2n ** 63n + 5n);
    assert.equal(echoed[2], 0.125);
    assert.deepStrictEqual(echoed[3], { year: 2001, month: 2, day: 3, hour: 4, minute: 5, second: 6, microsecond: 7 });
    assert.deepStrictEqual(echoed[4], { negative: false, days: 1, hours: 2, minutes: 3, seconds: 4, microseconds: 0 });
    assert.deepStrictEqual(echoed[5], Buffer.from([1, 2, 3]));
    assert.equal(echoed[6], null);
    assert.deepStrictEqual(echoed[7], Buffer.from('é'));

    // Long data, then reset, close: a closed statement is unknown to the server.
    c.seq.reset();
    c.send(client.stmtSendLongData(echoId, 5, Buffer.from('long ')));
    c.seq.reset();
    c.send(client.stmtSendLongData(echoId, 5, Buffer.from('data')));
    const e3 = await c.command(client.stmtExecute({ statementId: echoId, params: params.map((p, i) => (i === 5 ? { ...p, value: null, longData: true } : p)) }), 'execute');
    assert.deepStrictEqual(e3.rr.decodeBinaryRow(e3.msgs.find((m) => m.name === 'BinaryRow') as never)[5], Buffer.from('long data'));
    const reset = await c.command(client.stmtReset(echoId), 'simple');
    assert.equal(reset.msgs[0]!.name, 'OkPacket');
    c.seq.reset();
    c.send(client.stmtClose(echoId));
    const gone = await c.command(client.stmtExecute({ statementId: echoId, params }), 'execute');
    assert.ok(gone.msgs[0]!.name === 'ErrPacket' && gone.msgs[0]!.code === 1243);
    c.close();
  }
});

test('a multi-statement query (CLIENT_MULTI_STATEMENTS) returns several results, followed to the end', async () => {
  for (const caps of [WITH_EOF, DEPRECATE]) {
    const c = await login(user(), { capabilities: (caps | Capability.MULTI_STATEMENTS) >>> 0 });
    assert.ok(c.capabilities & Capability.MULTI_STATEMENTS);
    await c.ok('CREATE TABLE IF NOT EXISTS multi (a INT)');
    const { rr, msgs } = await c.command(client.query('SELECT 1 AS a; INSERT INTO multi VALUES (1), (2); SELECT a FROM multi ORDER BY a; SELECT "x" AS s, NULL AS n'), 'query');
    assert.equal(rr.resultCount, 4);
    const ends = msgs.filter((m) => m.name === 'OkPacket' || m.name === 'EofPacket');
    const last = ends.at(-1) as { statusFlags: number };
    assert.equal(last.statusFlags & ServerStatus.MORE_RESULTS_EXISTS, 0);
    assert.ok(ends.slice(0, -1).some((m) => (m as { statusFlags: number }).statusFlags & ServerStatus.MORE_RESULTS_EXISTS));
    const r = await c.query('DELETE FROM multi; SELECT COUNT(*) FROM multi');
    assert.equal(r.oks[0]!.affectedRows, 2n);
    assert.deepStrictEqual(r.sets[0]!.rows, [['0']]);
    // An error in the middle ends the answer; the session goes on.
    const bad = await c.query('SELECT 1; SELECT * FROM nope; SELECT 3');
    assert.equal(bad.error?.code, 1146);
    assert.deepStrictEqual((await c.query('SELECT 4')).sets[0]!.rows, [['4']]);
    await c.ok('DROP TABLE multi');
    c.close();
  }
});

test('COM_SET_OPTION, COM_PING, COM_INIT_DB, COM_FIELD_LIST, COM_STATISTICS, COM_RESET_CONNECTION, COM_CHANGE_USER', async () => {
  for (const caps of [WITH_EOF, DEPRECATE]) {
    const c = await login(user(), { capabilities: (caps | Capability.MULTI_STATEMENTS) >>> 0 });
    const off = await c.command(client.setOption(SetOption.MULTI_STATEMENTS_OFF), 'simple');
    assert.equal(off.msgs[0]!.name, caps === WITH_EOF ? 'EofPacket' : 'OkPacket');
    assert.equal((await c.query('SELECT 1; SELECT 2')).error?.code, 1064);
    await c.command(client.setOption(SetOption.MULTI_STATEMENTS_ON), 'simple');
    assert.equal((await c.query('SELECT 1; SELECT 2')).sets.length, 2);
    assert.equal((await c.command(client.ping(), 'simple')).msgs[0]!.name, 'OkPacket');
    assert.equal((await c.command(client.initDb('information_schema'), 'simple')).msgs[0]!.name, 'OkPacket');
    assert.ok((await c.command(client.initDb('no_such_db_x'), 'simple')).msgs[0]!.name === 'ErrPacket');
    await c.command(client.initDb(DB), 'simple');
    await c.ok('CREATE TABLE IF NOT EXISTS fl (id INT NOT NULL DEFAULT 7, name VARCHAR(5))');
    const fl = await c.command(client.fieldList('fl'), 'field_list');
    const defs = fl.msgs.filter((m) => m.name === 'ColumnDefinition');
    assert.deepStrictEqual(defs.map((d) => (d.name === 'ColumnDefinition' ? [d.columnName, d.orgTable, d.defaultValue?.toString() ?? null] : [])), [
      ['id', 'fl', '7'],
      ['name', 'fl', null],
    ]);
    const st = await c.command(client.statistics(), 'statistics');
    assert.ok(st.msgs[0]!.name === 'Statistics' && /Uptime/.test(st.msgs[0]!.text));
    await c.ok('SET @x = 5');
    assert.equal((await c.command(client.resetConnection(), 'simple')).msgs[0]!.name, 'OkPacket');
    assert.deepStrictEqual((await c.query('SELECT @x')).sets[0]!.rows, [[null]]);
    // COM_CHANGE_USER to root (no password), answering a method switch if the server asks.
    c.seq.reset();
    c.send(client.changeUser({ capabilities: c.capabilities, user: 'root', authResponse: Buffer.alloc(0), database: DB, authPlugin: 'mysql_native_password' }));
    const rr = new ResponseReader(responseKind({ name: 'ComChangeUser' } as never)!, { capabilities: c.capabilities });
    for (;;) {
      const m = rr.read(await c.next());
      if (m.name === 'AuthSwitchRequest') c.send(nativePasswordScramble('', m.data.subarray(0, 20)));
      if (rr.done) {
        assert.equal(m.name, 'OkPacket');
        break;
      }
    }
    assert.match((await c.query('SELECT CURRENT_USER()')).sets[0]!.rows[0]![0] ?? '', /^root@/);
    await c.ok('DROP TABLE fl');
    c.close();
  }
});

test('a cursor: COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY ends after the definitions; rows come with COM_STMT_FETCH', async () => {
  for (const caps of [WITH_EOF, DEPRECATE]) {
    const c = await login(user(), { capabilities: caps });
    const prep = await c.command(client.stmtPrepare('SELECT seq FROM seq_1_to_5'), 'prepare');
    const id = (prep.msgs[0] as { statementId: number }).statementId;
    const exec = await c.command(client.stmtExecute({ statementId: id, flags: CursorType.READ_ONLY }), 'execute');
    assert.equal(exec.msgs.filter((m) => m.name === 'BinaryRow').length, 0);
    assert.ok(exec.rr.statusFlags & ServerStatus.CURSOR_EXISTS);
    const got: BinaryValue[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await c.command(client.stmtFetch(id, 2), 'fetch', exec.rr.columns);
      for (const m of f.msgs) if (m.name === 'BinaryRow') got.push(f.rr.decodeBinaryRow(m)[0]!);
      if (f.rr.statusFlags & ServerStatus.LAST_ROW_SENT) break;
    }
    assert.deepStrictEqual(got, [1n, 2n, 3n, 4n, 5n]);
    c.close();
  }
});

test('LOCAL INFILE: the request, the file from the client, then OK', async (t) => {
  const c = await login(user(), { capabilities: (DEPRECATE | Capability.LOCAL_FILES) >>> 0 });
  const enabled = (await c.query('SELECT @@local_infile')).sets[0]!.rows[0]![0];
  if (enabled !== '1') {
    t.skip('local_infile is disabled on this server');
    c.close();
    return;
  }
  await c.ok('CREATE TABLE IF NOT EXISTS li (a INT, b VARCHAR(10))');
  const { rr, msgs } = await c.command(client.query("LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE li FIELDS TERMINATED BY ','"), 'query');
  const req = msgs.at(-1)!;
  assert.ok(req.name === 'LocalInfileRequest' && req.filename === 'rows.csv');
  c.send(client.localInfileData(Buffer.from('1,one\n2,two\n')));
  c.send(client.localInfileData(Buffer.from('3,three\n')));
  c.send(client.localInfileData(Buffer.alloc(0)));
  rr.localInfileSent();
  const ok = rr.read(await c.next());
  assert.ok(ok.name === 'OkPacket' && ok.affectedRows === 3n && rr.done);
  assert.deepStrictEqual((await c.query('SELECT a, b FROM li ORDER BY a')).sets[0]!.rows, [
    ['1', 'one'],
    ['2', 'two'],
    ['3', 'three'],
  ]);
  await c.ok('DROP TABLE li');
  c.close();
});

test('payloads over 16 MiB are split into packets and reassembled, both ways', async () => {
  await root.ok('SET GLOBAL max_allowed_packet = 67108864');
  const c = await login(user(), { capabilities: DEPRECATE, maxPacketSize: 64 * 1024 * 1024 });
  const n = MAX_PACKET_PAYLOAD + 1000;
  // Server to client: a row of more than 16 MiB.
  const { rr, msgs } = await c.command(client.query(`SELECT REPEAT('a', ${n}) AS big, 'end' AS tail`), 'query');
  const row = msgs.find((m) => m.name === 'TextRow')!;
  assert.ok(row.raw.length > n && row.payload.length > MAX_PACKET_PAYLOAD);
  const [big, tail] = rr.decodeTextRowBuffers(row as never);
  assert.equal(big!.length, n);
  assert.ok(big!.every((b) => b === 0x61));
  assert.deepStrictEqual(tail, Buffer.from('end'));
  // Client to server: a COM_QUERY of more than 16 MiB (and one of exactly 2^24-1 bytes: an empty trailing packet).
  for (const size of [n, MAX_PACKET_PAYLOAD]) {
    const prefix = "SELECT LENGTH('";
    const suffix2 = "') AS len";
    const sql = prefix + 'x'.repeat(size - 1 - prefix.length - suffix2.length) + suffix2;
    assert.equal(client.query(sql).length, size);
    const r = await c.query(sql);
    assert.deepStrictEqual(r.sets[0]!.rows, [[String(size - 1 - prefix.length - suffix2.length)]]);
  }
  c.close();
});

// ---------------------------------------------------------------------------------------------
// A small server built from the codec's server side
// ---------------------------------------------------------------------------------------------

interface TestServerOptions {
  plugin: 'caching_sha2_password' | 'mysql_native_password';
  /** The password the server checks. */
  password: string;
  /** caching_sha2: force the full authentication path (as after a cache miss). */
  fullAuth?: boolean;
  /** Switch to mysql_clear_password after the handshake response (the gateway's own login). */
  clearPassword?: boolean;
  tls?: TestCert;
}

interface TestServer {
  port: number;
  /** What the server saw: the cleartext passwords / tokens received, and the commands. */
  seen: { cleartext: string[]; commands: ClientMessage[]; tls: boolean[] };
  close(): Promise<void>;
}

const SERVER_CAPS = (BASE | Capability.CONNECT_WITH_DB | Capability.DEPRECATE_EOF | Capability.SSL) >>> 0;

/** Answers the handshake, then queries with canned result sets. Socket code lives here, not in the codec. */
async function startTestServer(opts: TestServerOptions): Promise<TestServer> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const seen: TestServer['seen'] = { cleartext: [], commands: [], tls: [] };
  const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest();
  const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest();
  const stored2 = sha256(sha256(opts.password));
  const nativeStored = sha1(sha1(opts.password));
  const context = opts.tls ? createSecureContext({ cert: opts.tls.cert, key: opts.tls.key }) : undefined;

  const srv: Server = createServer((sock) => {
    const scramble = generateScramble();
    const seq = new Sequence();
    const parser = new ClientParser({ serverCapabilities: SERVER_CAPS });
    let caps = 0;
    let stream: Duplex = sock;
    let state: 'handshake' | 'fast' | 'full' | 'key' | 'clear' | 'native' | 'ready' = 'handshake';
    let nextStatement = 1;
    const send = (payload: Buffer) => stream.write(seq.frame(payload));
    const sendAll = (payloads: Buffer[]) => stream.write(Buffer.concat(payloads.map((p) => seq.frame(p))));
    const ok = () => {
      send(server.ok({}, caps));
      parser.expectCommands();
      state = 'ready';
    };
    const deny = () => {
      send(server.err({ code: 1045, sqlState: '28000', message: 'Access denied' }, caps));
      stream.end();
    };
    const checkPassword = (pw: Buffer) => {
      const s = pw.toString('utf8').replace(/\0$/, '');
      seen.cleartext.push(s);
      if (s === opts.password) ok();
      else deny();
    };
    const onData = (chunk: Buffer) => {
      let msgs: ClientMessage[];
      try {
        msgs = parser.push(chunk);
      } catch {
        stream.destroy();
        return;
      }
      for (const m of msgs) {
        if (m.name !== 'SSLRequest' && m.name !== 'HandshakeResponse41' && m.name.startsWith('Com')) seq.reset();
        seq.receive({ sequenceId: m.sequenceId, lastSequenceId: m.sequenceId, payload: m.payload, raw: m.raw });
        if (m.name === 'SSLRequest') {
          // The client's TLS handshake may already be behind the SSLRequest: give it back to the socket.
          sock.removeAllListeners('data');
          sock.pause();
          const early = parser.takeTlsBytes();
          if (early.length > 0) sock.unshift(early);
          const secure = new TLSSocket(sock, { isServer: true, secureContext: context! });
          secure.once('secure', () => parser.startTls());
          secure.on('data', onData);
          secure.on('error', () => sock.destroy());
          stream = secure;
          continue;
        }
        if (m.name === 'HandshakeResponse41') {
          caps = parser.capabilities;
          seen.tls.push(stream !== sock);
          if (opts.clearPassword) {
            state = 'clear';
            send(server.authSwitchRequest('mysql_clear_password'));
          } else if (opts.plugin === 'mysql_native_password') {
            const mix = sha1(Buffer.concat([scramble, nativeStored]));
            const stage1 = Buffer.from(m.authResponse.map((b, i) => b ^ mix[i]!));
            if (m.authResponse.length === 20 && sha1(stage1).equals(nativeStored)) ok();
            else deny();
          } else {
            // caching_sha2_password: verify the scramble, then fast success or full authentication.
            const mix = sha256(Buffer.concat([stored2, scramble]));
            const stage1 = Buffer.from(m.authResponse.map((b, i) => b ^ mix[i]!));
            if (!sha256(stage1).equals(stored2)) {
              deny();
              continue;
            }
            if (opts.fullAuth) {
              state = 'full';
              send(server.authMoreData(Buffer.from([0x04])));
            } else {
              send(server.authMoreData(Buffer.from([0x03])));
              ok();
            }
          }
          continue;
        }
        if (m.name === 'AuthResponse') {
          if (state === 'clear') checkPassword(m.data);
          else if (state === 'full' && stream !== sock) checkPassword(m.data);
          else if (state === 'full' && m.data.length === 1 && m.data[0] === 0x02) {
            state = 'key';
            send(server.authMoreData(Buffer.from(publicKey)));
          } else if (state === 'key') {
            const plain = privateDecrypt({ key: privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, m.data);
            checkPassword(Buffer.from(plain.map((b, i) => b ^ scramble[i % 20]!)));
          } else deny();
          continue;
        }
        seen.commands.push(m);
        switch (m.name) {
          case 'ComQuery':
            if (/^select 1$/i.test(m.query)) sendAll(server.textResultSet({ columns: [{ name: '1', type: ColumnType.LONGLONG }], rows: [['1']] }, caps));
            else if (/^select @@version_comment/i.test(m.query)) sendAll(server.textResultSet({ columns: [{ name: '@@version_comment', type: ColumnType.VAR_STRING }], rows: [['Gatehouse']] }, caps));
            else
              sendAll(
                server.textResultSet(
                  {
                    columns: [
                      { name: 'id', type: ColumnType.LONG, table: 'users', orgTable: 'users', schema: 'shop' },
                      { name: 'email', type: ColumnType.VAR_STRING, table: 'users', orgTable: 'users', schema: 'shop' },
                    ],
                    rows: [
                      ['1', 'zoë@example.com'],
                      ['2', null],
                    ],
                  },
                  caps,
                ),
              );
            break;
          case 'ComStmtPrepare': {
            const id = nextStatement++;
            const params = (m.query.match(/\?/g) ?? []).map(() => ({ name: '?', type: ColumnType.VAR_STRING }));
            parser.registerStatement(id, params.length);
            sendAll(server.prepareResponse({ statementId: id, params, columns: [{ name: 'n', type: ColumnType.LONGLONG }, { name: 'when', type: ColumnType.DATETIME }, { name: 'echo', type: ColumnType.VAR_STRING }] }, caps));
            break;
          }
          case 'ComStmtExecute': {
            const echo = m.params?.[0]?.value ?? null;
            sendAll(
              server.binaryResultSet(
                {
                  columns: [
                    { name: 'n', type: ColumnType.LONGLONG },
                    { name: 'when', type: ColumnType.DATETIME },
                    { name: 'echo', type: ColumnType.VAR_STRING },
                  ],
                  rows: [[42n, { year: 2024, month: 5, day: 6, hour: 7, minute: 8, second: 9, microsecond: 0 }, Buffer.isBuffer(echo) ? echo : Buffer.from(String(echo))]],
                },
                caps,
              ),
            );
            break;
          }
          case 'ComPing':
          case 'ComInitDb':
          case 'ComResetConnection':
          case 'ComStmtReset':
            send(server.ok({}, caps));
            break;
          case 'ComQuit':
            stream.end();
            break;
          case 'ComStmtClose':
            break;
          default:
            send(server.err({ code: 1047, sqlState: '08S01', message: 'Unknown command' }, caps));
        }
      }
    };
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
    send(server.handshakeV10({ serverVersion: '8.0.36-gatehouse-test', connectionId: 7, authPluginData: scramble, capabilities: SERVER_CAPS, authPlugin: opts.plugin }));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        srv.close(() => resolve());
        srv.unref();
      }),
  };
}

let cert: TestCert | undefined;
const servers: TestServer[] = [];

before(async () => {
  cert = await makeTestCert();
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await cert?.cleanup();
});

async function testServer(opts: TestServerOptions): Promise<TestServer> {
  const s = await startTestServer(opts);
  servers.push(s);
  return s;
}

test('caching_sha2_password against a hand-written server: fast path, full path with the RSA key, full path over TLS', async () => {
  const fast = await testServer({ plugin: 'caching_sha2_password', password: 'sha2-secret' });
  const a = await login({ user: 'svc', password: 'sha2-secret' }, { capabilities: DEPRECATE }, fast.port);
  assert.deepStrictEqual((await a.query('select 1')).sets[0]!.rows, [['1']]);
  assert.deepStrictEqual(fast.seen.cleartext, []);
  a.close();
  await assert.rejects(login({ user: 'svc', password: 'wrong' }, {}, fast.port), /upstream authentication failed/);

  const full = await testServer({ plugin: 'caching_sha2_password', password: 'sha2-secret', fullAuth: true });
  // Without TLS and without permission to fetch the key, the password is not sent.
  await assert.rejects(login({ user: 'svc', password: 'sha2-secret' }, {}, full.port), (e: unknown) => /allowPublicKeyRetrieval/.test((e as { detail?: string }).detail ?? ''));
  const b = await login({ user: 'svc', password: 'sha2-secret', allowPublicKeyRetrieval: true }, { capabilities: DEPRECATE }, full.port);
  assert.deepStrictEqual(full.seen.cleartext, ['sha2-secret'], 'the server decrypted the RSA-encrypted password');
  assert.deepStrictEqual((await b.query('SELECT * FROM users')).sets[0]!.rows, [
    ['1', 'zoë@example.com'],
    ['2', null],
  ]);
  b.close();

  const overTls = await testServer({ plugin: 'caching_sha2_password', password: 'sha2-secret', fullAuth: true, tls: cert! });
  const c = await login({ user: 'svc', password: 'sha2-secret' }, { capabilities: DEPRECATE }, overTls.port, { ca: cert!.cert });
  assert.deepStrictEqual(overTls.seen.tls, [true]);
  assert.deepStrictEqual(overTls.seen.cleartext, ['sha2-secret'], 'cleartext inside TLS');
  assert.equal((await c.command(client.ping(), 'simple')).msgs[0]!.name, 'OkPacket');
  c.close();
});

test('the server side against a real client (mysql2): AuthSwitchRequest to mysql_clear_password, text query, prepared statement', async () => {
  const srv = await testServer({ plugin: 'mysql_native_password', password: 'eyJ.token.sig', clearPassword: true });
  const conn = await mysql2.createConnection({ host: '127.0.0.1', port: srv.port, user: 'agent', password: 'eyJ.token.sig', database: 'prod-mysql', enableCleartextPlugin: true });
  assert.deepStrictEqual(srv.seen.cleartext, ['eyJ.token.sig'], 'the token arrived as cleartext');
  const [rows, fields] = await conn.query('SELECT id, email FROM users');
  assert.deepStrictEqual(rows, [
    { id: 1, email: 'zoë@example.com' },
    { id: 2, email: null },
  ]);
  assert.deepStrictEqual((fields as { name: string; orgTable: string }[]).map((f) => [f.name, f.orgTable]), [
    ['id', 'users'],
    ['email', 'users'],
  ]);
  const [stmtRows] = await conn.execute('SELECT n, `when`, echo FROM t WHERE x = ?', ['hello']);
  assert.deepStrictEqual(JSON.parse(JSON.stringify(stmtRows, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))), [{ n: 42, when: JSON.parse(JSON.stringify(new Date(2024, 4, 6, 7, 8, 9))), echo: 'hello' }]);
  const exec = srv.seen.commands.find((m) => m.name === 'ComStmtExecute');
  assert.ok(exec && exec.name === 'ComStmtExecute' && exec.params?.[0]?.value?.toString() === 'hello');
  await conn.ping();
  await conn.end();
  for (let i = 0; i < 100 && !srv.seen.commands.some((m) => m.name === 'ComQuit'); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepStrictEqual(
    srv.seen.commands.map((m) => m.name).filter((n) => n !== 'ComStmtClose'),
    ['ComQuery', 'ComStmtPrepare', 'ComStmtExecute', 'ComPing', 'ComQuit'],
  );
  // A real client that refuses cleartext without TLS cannot log in.
  await assert.rejects(mysql2.createConnection({ host: '127.0.0.1', port: srv.port, user: 'agent', password: 'x' }), /mysql_clear_password|Authentication/);
});
