import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Capability,
  ClientParser,
  ColumnFlag,
  ColumnType,
  Command,
  CursorType,
  MAX_PACKET_PAYLOAD,
  PacketParser,
  PayloadReader,
  PayloadWriter,
  ProtocolError,
  ResponseReader,
  Sequence,
  ServerStatus,
  client,
  decodeBinaryRow,
  decodeTextRow,
  decodeTextRowBuffers,
  encodeBinaryRow,
  encodePacket,
  encodeTextRow,
  formatBinaryValue,
  generateScramble,
  parseAuthPhasePacket,
  parseColumnDefinition,
  parseEof,
  parseErr,
  parseGreeting,
  parseOk,
  parseStmtPrepareOk,
  physicalPacketCount,
  responseKind,
  server,
  type BinaryValue,
  type ClientMessage,
  type ClientPhase,
  type Packet,
  type ResponseMessage,
  type ValueType,
} from '../../src/engines/mysql/protocol.js';
import { randomBytes } from 'node:crypto';
import { checkSplits, throwsProtocol } from '../support/codec.js';

const P41 = Capability.PROTOCOL_41;
/** What a typical modern client negotiates. */
const CAPS = (Capability.LONG_PASSWORD | P41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.TRANSACTIONS | Capability.MULTI_RESULTS | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS) >>> 0;
const DEPRECATE = (CAPS | Capability.DEPRECATE_EOF) >>> 0;

/** The decoded fields of a message without `raw` / `payload` / `sequenceId`, with null-prototype records made plain. */
function fieldsOf(m: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === 'raw' || k === 'payload' || k === 'sequenceId' || k === 'paramsRaw') continue;
    out[k] = v !== null && typeof v === 'object' && !Buffer.isBuffer(v) && !Array.isArray(v) && Object.getPrototypeOf(v) === null ? { ...v } : v;
  }
  return out;
}

/** A packet as the framer would hand it out. */
function pkt(payload: Buffer, seq = 0): Packet {
  const raw = encodePacket(payload, seq);
  return { sequenceId: seq, lastSequenceId: (seq + physicalPacketCount(payload.length) - 1) & 0xff, payload: raw.subarray(4), raw };
}

// ---------------------------------------------------------------------------------------------
// Framing and basic types
// ---------------------------------------------------------------------------------------------

test('length-encoded integers and strings round-trip at every size boundary', () => {
  const values: (number | bigint)[] = [0, 1, 250, 251, 252, 0xffff, 0x10000, 0xffffff, 0x1000000, 2 ** 32, Number.MAX_SAFE_INTEGER, 2n ** 64n - 1n];
  const sizes = [1, 1, 1, 3, 3, 3, 4, 4, 9, 9, 9, 9];
  for (const [i, v] of values.entries()) {
    const b = new PayloadWriter().lenencInt(v).finish();
    assert.equal(b.length, sizes[i], `size of ${v}`);
    assert.equal(new PayloadReader(b, 't').lenencBigInt(), BigInt(v));
    if (typeof v === 'number') assert.equal(new PayloadReader(b, 't').lenencInt(), v);
  }
  throwsProtocol(() => new PayloadReader(new PayloadWriter().lenencInt(2n ** 60n).finish(), 't').lenencInt(), /too large/);
  throwsProtocol(() => new PayloadReader(Buffer.from([0xff]), 't').lenencInt(), /prefix 0xff/);
  throwsProtocol(() => new PayloadReader(Buffer.from([0xfb]), 't').lenencInt(), /prefix 0xfb/);
  throwsProtocol(() => new PayloadReader(Buffer.from([0xfc, 1]), 't').lenencInt(), /insufficient data/);
  assert.throws(() => new PayloadWriter().lenencInt(-1), RangeError);
  assert.throws(() => new PayloadWriter().lenencInt(2n ** 64n), RangeError);
  const s = new PayloadWriter().lenencBytes('zoë').lenencBytes(null).lenencBytes(Buffer.alloc(300, 7)).finish();
  const r = new PayloadReader(s, 't');
  assert.equal(r.lenencString(), 'zoë');
  assert.equal(r.lenencBytes(true), null);
  assert.deepStrictEqual(r.lenencBytes(), Buffer.alloc(300, 7));
  r.done();
  throwsProtocol(() => new PayloadReader(Buffer.from([5, 1, 2]), 't').lenencBytes(), /insufficient data/);
  assert.throws(() => new PayloadWriter().nulString('a\0b'), RangeError);
});

test('encodePacket and PacketParser: one packet, views when whole, any split, sequence ids', () => {
  const payloads = [Buffer.alloc(0), Buffer.from([1]), Buffer.from('hello'), Buffer.alloc(1000, 9)];
  const stream = Buffer.concat(payloads.map((p, i) => encodePacket(p, i)));
  const whole = new PacketParser().push(stream);
  assert.equal(whole.length, payloads.length);
  for (const [i, p] of whole.entries()) {
    assert.deepStrictEqual(p.payload, payloads[i]);
    assert.equal(p.sequenceId, i);
    assert.equal(p.lastSequenceId, i);
    assert.equal(p.raw.buffer, stream.buffer, 'raw is a view');
    assert.equal(p.payload.buffer, stream.buffer, 'payload is a view');
  }
  for (let cut = 0; cut <= stream.length; cut++) {
    const parser = new PacketParser();
    const got = [...parser.push(stream.subarray(0, cut)), ...parser.push(stream.subarray(cut))];
    assert.deepStrictEqual(
      got.map((p) => [p.sequenceId, p.payload.toString('hex')]),
      whole.map((p) => [p.sequenceId, p.payload.toString('hex')]),
      `cut ${cut}`,
    );
    assert.ok(Buffer.concat(got.map((p) => p.raw)).equals(stream));
    assert.equal(parser.buffered, 0);
  }
  const bytewise = new PacketParser();
  const got: Packet[] = [];
  for (let i = 0; i < stream.length; i++) {
    got.push(...bytewise.push(stream.subarray(i, i + 1)));
    assert.equal(got.reduce((n, p) => n + p.raw.length, 0) + bytewise.buffered, i + 1);
  }
  assert.equal(got.length, payloads.length);
  assert.throws(() => encodePacket(Buffer.alloc(1), 256), RangeError);
});

test('payloads of 0xFFFFFF bytes and more are split at 16 MiB boundaries and reassembled, trailing empty packet included', () => {
  const M = MAX_PACKET_PAYLOAD;
  for (const size of [M - 1, M, M + 1, 2 * M, 2 * M + 5]) {
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4093) payload[i] = (i / 4093) & 0xff;
    payload[size - 1] = 0xab;
    const framed = encodePacket(payload, 254);
    const n = physicalPacketCount(size);
    assert.equal(n, Math.floor(size / M) + 1);
    assert.equal(framed.length, size + 4 * n);
    // Headers: full packets then the rest (possibly empty), ids wrapping past 255.
    let off = 0;
    for (let k = 0; k < n; k++) {
      const len = framed.readUIntLE(off, 3);
      assert.equal(len, k < n - 1 ? M : size - (n - 1) * M, `size ${size} packet ${k}`);
      assert.equal(framed[off + 3], (254 + k) & 0xff);
      off += 4 + len;
    }
    const whole = new PacketParser({ maxPayloadBytes: 64 * 1024 * 1024 }).push(framed);
    assert.equal(whole.length, 1);
    assert.equal(whole[0]!.sequenceId, 254);
    assert.equal(whole[0]!.lastSequenceId, (254 + n - 1) & 0xff);
    assert.ok(whole[0]!.payload.equals(payload), `size ${size} payload`);
    assert.ok(whole[0]!.raw.equals(framed), `size ${size} raw`);
    // In chunks that cut headers and payloads alike.
    const parser = new PacketParser({ maxPayloadBytes: 64 * 1024 * 1024 });
    const got: Packet[] = [];
    for (let i = 0; i < framed.length; i += 1_000_003) got.push(...parser.push(framed.subarray(i, i + 1_000_003)));
    assert.equal(got.length, 1);
    assert.ok(got[0]!.payload.equals(payload));
    // Around each header.
    for (let k = 1; k < n; k++) {
      const h = k * (M + 4);
      for (const cut of [h - 1, h, h + 1, h + 3, h + 4]) {
        const p = new PacketParser({ maxPayloadBytes: 64 * 1024 * 1024 });
        const parts = [...p.push(framed.subarray(0, cut)), ...p.push(framed.subarray(cut))];
        assert.equal(parts.length, 1);
        assert.ok(parts[0]!.payload.equals(payload), `size ${size} cut ${cut}`);
      }
    }
  }
});

test('PacketParser refuses oversized payloads at the header, cumulative for split payloads, and out-of-order continuations', () => {
  throwsProtocol(() => new PacketParser({ maxPayloadBytes: 100 }).push(Buffer.from([101, 0, 0, 0])), /too large \(101/);
  const ok = new PacketParser({ maxPayloadBytes: 100 });
  assert.equal(ok.push(encodePacket(Buffer.alloc(100), 0)).length, 1);
  // A split payload counts whole: the second header pushes it past the limit.
  const M = MAX_PACKET_PAYLOAD;
  const p = new PacketParser({ maxPayloadBytes: M + 10 });
  const first = Buffer.alloc(4 + M);
  first.writeUIntLE(M, 0, 3);
  assert.deepStrictEqual(p.push(first), []);
  throwsProtocol(() => p.push(Buffer.from([11, 0, 0, 1])), /too large/);
  throwsProtocol(() => p.push(Buffer.from([0, 0, 0, 2])), /too large/);
  const q = new PacketParser();
  q.push(first);
  throwsProtocol(() => q.push(Buffer.from([0, 0, 0, 7])), /out of order \(expected sequence id 1, got 7\)/);
  // Only the header is needed to refuse; nothing is buffered.
  const r = new PacketParser({ maxPayloadBytes: 1024 });
  assert.deepStrictEqual(r.push(Buffer.from([0xff, 0xff])), []);
  throwsProtocol(() => r.push(Buffer.from([0xff, 0])), /too large/);
  assert.throws(() => new PacketParser({ maxPayloadBytes: 0 }), RangeError);
  assert.throws(() => new PacketParser({ maxPayloadBytes: 2 ** 31 }), RangeError);
});

test('Sequence: reset, receive, frame and forward', () => {
  const s = new Sequence();
  const cmd = s.frame(client.ping());
  assert.equal(cmd[3], 0);
  assert.equal(s.next, 1);
  const ok = pkt(server.ok({}, CAPS), 1);
  s.receive(ok);
  assert.equal(s.next, 2);
  throwsProtocol(() => s.receive(pkt(server.ok({}, CAPS), 5)), /out of order \(expected sequence id 2, got 5\)/);
  s.reset();
  assert.equal(s.next, 0);
  // forward: zero-copy when the ids fit, re-framed otherwise.
  const p = pkt(Buffer.from('abc'), 0);
  assert.equal(s.forward(p), p.raw);
  const moved = s.forward(pkt(Buffer.from('def'), 9));
  assert.equal(moved[3], 1);
  assert.equal(s.next, 2);
  s.next = 255;
  s.frame(Buffer.alloc(1));
  assert.equal(s.next, 0);
  assert.throws(() => (s.next = 256), RangeError);
});

// ---------------------------------------------------------------------------------------------
// Client → server messages through ClientParser
// ---------------------------------------------------------------------------------------------

interface ClientCase {
  bytes: Buffer;
  expect: Record<string, unknown>;
  parser: () => ClientParser;
}

const inPhase = (phase: ClientPhase, capabilities = CAPS) => () => new ClientParser({ phase, capabilities });
const withStatements = (capabilities = CAPS) => () => {
  const p = new ClientParser({ phase: 'command', capabilities });
  p.registerStatement(7, 6);
  p.registerStatement(8, 0);
  p.registerStatement(9, 2);
  return p;
};

const attrs = { _client_name: 'libmariadb', _os: 'Linux', 'ünï': 'çødé' };
const execParams = [
  { type: ColumnType.LONG, value: -42 },
  { type: ColumnType.LONGLONG, unsigned: true, value: 18446744073709551615n },
  { type: ColumnType.VAR_STRING, value: Buffer.from('zoë') },
  { type: ColumnType.NULL, value: null },
  { type: ColumnType.DATETIME, value: { year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 58, microsecond: 123456 } },
  { type: ColumnType.DOUBLE, value: 3.5 },
];

const clientCases: ClientCase[] = [
  {
    bytes: encodePacket(client.sslRequest({ capabilities: CAPS, characterSet: 45, maxPacketSize: 1 << 24 }), 1),
    expect: { name: 'SSLRequest', capabilities: (CAPS | Capability.SSL) >>> 0, maxPacketSize: 1 << 24, characterSet: 45, mariadbCapabilities: 0 },
    parser: () => new ClientParser(),
  },
  {
    bytes: encodePacket(
      client.handshakeResponse41({ capabilities: CAPS, user: 'agent', authResponse: Buffer.alloc(20, 1), database: 'prod-mysql', authPlugin: 'mysql_native_password', attributes: attrs }),
      1,
    ),
    expect: {
      name: 'HandshakeResponse41',
      capabilities: CAPS,
      maxPacketSize: 16 * 1024 * 1024,
      characterSet: 45,
      mariadbCapabilities: 0,
      user: 'agent',
      authResponse: Buffer.alloc(20, 1),
      database: 'prod-mysql',
      authPlugin: 'mysql_native_password',
      attributes: attrs,
      zstdCompressionLevel: undefined,
    },
    parser: () => new ClientParser(),
  },
  {
    // Old-style 1-byte auth length, MariaDB extended capabilities (CLIENT_MYSQL off), no database, zstd.
    bytes: encodePacket(
      client.handshakeResponse41({
        capabilities: (P41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.ZSTD_COMPRESSION_ALGORITHM) >>> 0,
        mariadbCapabilities: 0x1c,
        user: 'u',
        authResponse: Buffer.from('tok'),
        authPlugin: 'mysql_clear_password',
        zstdCompressionLevel: 7,
      }),
      2,
    ),
    expect: {
      name: 'HandshakeResponse41',
      capabilities: (P41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.ZSTD_COMPRESSION_ALGORITHM) >>> 0,
      maxPacketSize: 16 * 1024 * 1024,
      characterSet: 45,
      mariadbCapabilities: 0x1c,
      user: 'u',
      authResponse: Buffer.from('tok'),
      database: undefined,
      authPlugin: 'mysql_clear_password',
      attributes: {},
      zstdCompressionLevel: 7,
    },
    parser: () => new ClientParser(),
  },
  { bytes: encodePacket(client.authResponse(Buffer.from('eyJhbGciOi.token\0')), 3), expect: { name: 'AuthResponse', data: Buffer.from('eyJhbGciOi.token\0') }, parser: inPhase('auth') },
  { bytes: encodePacket(client.localInfileData(Buffer.from('1,2\n')), 2), expect: { name: 'LocalInfileData', data: Buffer.from('1,2\n') }, parser: inPhase('local_infile') },
  { bytes: encodePacket(client.quit(), 0), expect: { name: 'ComQuit', command: Command.QUIT }, parser: inPhase('command') },
  { bytes: encodePacket(client.initDb('shop'), 0), expect: { name: 'ComInitDb', command: Command.INIT_DB, schema: 'shop' }, parser: inPhase('command') },
  {
    bytes: encodePacket(client.query("SELECT 1; select 'é'"), 0),
    expect: { name: 'ComQuery', command: Command.QUERY, query: "SELECT 1; select 'é'", attributes: [] },
    parser: inPhase('command'),
  },
  {
    bytes: encodePacket(client.query('SELECT 1', { capabilities: CAPS | Capability.QUERY_ATTRIBUTES }), 0),
    expect: { name: 'ComQuery', command: Command.QUERY, query: 'SELECT 1', attributes: [] },
    parser: inPhase('command', CAPS | Capability.QUERY_ATTRIBUTES),
  },
  {
    bytes: encodePacket(
      client.query('SELECT mysql_query_attribute_string("trace")', {
        capabilities: CAPS | Capability.QUERY_ATTRIBUTES,
        attributes: [
          { type: ColumnType.VAR_STRING, name: 'trace', value: Buffer.from('abc') },
          { type: ColumnType.LONG, unsigned: true, name: 'n', value: 4000000000 },
          { type: ColumnType.NULL, name: 'nothing', value: null },
        ],
      }),
      0,
    ),
    expect: {
      name: 'ComQuery',
      command: Command.QUERY,
      query: 'SELECT mysql_query_attribute_string("trace")',
      attributes: [
        { type: ColumnType.VAR_STRING, unsigned: false, name: 'trace', value: Buffer.from('abc'), longData: false },
        { type: ColumnType.LONG, unsigned: true, name: 'n', value: 4000000000, longData: false },
        { type: ColumnType.NULL, unsigned: false, name: 'nothing', value: null, longData: false },
      ],
    },
    parser: inPhase('command', CAPS | Capability.QUERY_ATTRIBUTES),
  },
  { bytes: encodePacket(client.fieldList('users', 'e%'), 0), expect: { name: 'ComFieldList', command: Command.FIELD_LIST, table: 'users', wildcard: 'e%' }, parser: inPhase('command') },
  { bytes: encodePacket(client.statistics(), 0), expect: { name: 'ComStatistics', command: Command.STATISTICS }, parser: inPhase('command') },
  { bytes: encodePacket(client.ping(), 0), expect: { name: 'ComPing', command: Command.PING }, parser: inPhase('command') },
  {
    bytes: encodePacket(client.changeUser({ capabilities: CAPS, user: 'other', authResponse: Buffer.alloc(20, 2), database: 'db2', characterSet: 224, authPlugin: 'mysql_native_password', attributes: { a: 'b' } }), 0),
    expect: {
      name: 'ComChangeUser',
      command: Command.CHANGE_USER,
      user: 'other',
      authResponse: Buffer.alloc(20, 2),
      database: 'db2',
      characterSet: 224,
      authPlugin: 'mysql_native_password',
      attributes: { a: 'b' },
    },
    parser: inPhase('command'),
  },
  { bytes: encodePacket(client.resetConnection(), 0), expect: { name: 'ComResetConnection', command: Command.RESET_CONNECTION }, parser: inPhase('command') },
  { bytes: encodePacket(client.setOption(0), 0), expect: { name: 'ComSetOption', command: Command.SET_OPTION, option: 0 }, parser: inPhase('command') },
  { bytes: encodePacket(client.stmtPrepare('SELECT ? + ?'), 0), expect: { name: 'ComStmtPrepare', command: Command.STMT_PREPARE, query: 'SELECT ? + ?' }, parser: inPhase('command') },
  {
    bytes: encodePacket(client.stmtExecute({ statementId: 7, params: execParams }), 0),
    expect: {
      name: 'ComStmtExecute',
      command: Command.STMT_EXECUTE,
      statementId: 7,
      resolvedStatementId: 7,
      flags: 0,
      iterationCount: 1,
      newParamsBound: true,
      params: execParams.map((p) => ({ type: p.type, unsigned: p.unsigned ?? false, name: '', value: p.value, longData: false })),
    },
    parser: withStatements(),
  },
  {
    bytes: encodePacket(client.stmtExecute({ statementId: 8, flags: CursorType.READ_ONLY }), 0),
    expect: { name: 'ComStmtExecute', command: Command.STMT_EXECUTE, statementId: 8, resolvedStatementId: 8, flags: 1, iterationCount: 1, newParamsBound: false, params: [] },
    parser: withStatements(),
  },
  {
    // With query attributes: the statement's 2 parameters plus a named attribute.
    bytes: encodePacket(
      client.stmtExecute({
        statementId: 9,
        paramCount: 2,
        capabilities: CAPS | Capability.QUERY_ATTRIBUTES,
        params: [
          { type: ColumnType.TINY, value: -1 },
          { type: ColumnType.SHORT, unsigned: true, value: 65535 },
          { type: ColumnType.STRING, name: 'trace', value: Buffer.from('x') },
        ],
      }),
      0,
    ),
    expect: {
      name: 'ComStmtExecute',
      command: Command.STMT_EXECUTE,
      statementId: 9,
      resolvedStatementId: 9,
      flags: 0,
      iterationCount: 1,
      newParamsBound: true,
      params: [
        { type: ColumnType.TINY, unsigned: false, name: '', value: -1, longData: false },
        { type: ColumnType.SHORT, unsigned: true, name: '', value: 65535, longData: false },
        { type: ColumnType.STRING, unsigned: false, name: 'trace', value: Buffer.from('x'), longData: false },
      ],
    },
    parser: withStatements(CAPS | Capability.QUERY_ATTRIBUTES),
  },
  {
    // Unknown statement: the parameters stay undecoded.
    bytes: encodePacket(client.stmtExecute({ statementId: 99, params: [{ type: ColumnType.LONG, value: 1 }] }), 0),
    expect: { name: 'ComStmtExecute', command: Command.STMT_EXECUTE, statementId: 99, resolvedStatementId: undefined, flags: 0, iterationCount: 1, newParamsBound: false, params: null },
    parser: withStatements(),
  },
  {
    bytes: encodePacket(client.stmtSendLongData(9, 1, Buffer.from('chunk')), 0),
    expect: { name: 'ComStmtSendLongData', command: Command.STMT_SEND_LONG_DATA, statementId: 9, paramId: 1, data: Buffer.from('chunk') },
    parser: withStatements(),
  },
  { bytes: encodePacket(client.stmtClose(7), 0), expect: { name: 'ComStmtClose', command: Command.STMT_CLOSE, statementId: 7 }, parser: withStatements() },
  { bytes: encodePacket(client.stmtReset(7), 0), expect: { name: 'ComStmtReset', command: Command.STMT_RESET, statementId: 7 }, parser: withStatements() },
  { bytes: encodePacket(client.stmtFetch(7, 100), 0), expect: { name: 'ComStmtFetch', command: Command.STMT_FETCH, statementId: 7, rows: 100 }, parser: withStatements() },
  {
    bytes: encodePacket(client.raw(Command.SHUTDOWN), 0),
    expect: { name: 'ComUnknown', command: Command.SHUTDOWN, commandName: 'COM_SHUTDOWN', body: Buffer.alloc(0) },
    parser: inPhase('command'),
  },
  {
    bytes: encodePacket(client.raw(Command.PROCESS_KILL, Buffer.from([5, 0, 0, 0])), 0),
    expect: { name: 'ComUnknown', command: Command.PROCESS_KILL, commandName: 'COM_PROCESS_KILL', body: Buffer.from([5, 0, 0, 0]) },
    parser: inPhase('command'),
  },
  { bytes: encodePacket(client.raw(0x77, Buffer.from('zz')), 0), expect: { name: 'ComUnknown', command: 0x77, commandName: '0x77', body: Buffer.from('zz') }, parser: inPhase('command') },
];

function checkClient(c: ClientCase, label: string): void {
  const { whole } = checkSplits<ClientMessage>(c.parser, c.bytes, c.expect, fieldsOf, label);
  assert.ok(whole.payload.equals(c.bytes.subarray(4)), `${label}: payload`);
}

test('every client message round-trips, whole, split at every byte and byte by byte', () => {
  for (const [i, c] of clientCases.entries()) checkClient(c, `client #${i} ${String(c.expect.name)}`);
});

test('ClientParser: a connection from greeting answer to commands, in one chunk and at every split point', () => {
  const stream = Buffer.concat([
    encodePacket(client.handshakeResponse41({ capabilities: CAPS, user: 'agent', database: 'prod' }), 1),
    encodePacket(client.authResponse(Buffer.from('token\0')), 3),
  ]);
  const commands = Buffer.concat(clientCases.filter((c) => c.expect.name !== 'HandshakeResponse41' && String(c.expect.name).startsWith('Com') && c.expect.statementId === undefined).map((c) => c.bytes));
  const run = (parts: Buffer[]): string[] => {
    const p = new ClientParser({ serverCapabilities: CAPS });
    const names: string[] = [];
    for (const part of parts) names.push(...p.push(part).map((m) => m.name));
    return names;
  };
  // The engine switches phases between packets, so feed the connection phase first.
  const p = new ClientParser({ serverCapabilities: CAPS });
  assert.deepStrictEqual(p.push(stream).map((m) => m.name), ['HandshakeResponse41', 'AuthResponse']);
  assert.equal(p.phase, 'auth');
  assert.equal(p.capabilities, CAPS);
  p.expectCommands();
  const expected = p.push(commands).map((m) => m.name);
  assert.ok(expected.length > 10);
  assert.deepStrictEqual(expected.slice(0, 3), ['ComQuit', 'ComInitDb', 'ComQuery']);
  for (let cut = 0; cut <= commands.length; cut += 7) {
    const q = new ClientParser({ phase: 'command', capabilities: CAPS });
    assert.deepStrictEqual([...q.push(commands.subarray(0, cut)), ...q.push(commands.subarray(cut))].map((m) => m.name), expected, `cut ${cut}`);
  }
  assert.deepStrictEqual(run([stream]), ['HandshakeResponse41', 'AuthResponse']);
});

test('ClientParser: capabilities are the intersection with what the server advertised', () => {
  const p = new ClientParser({ serverCapabilities: (CAPS & ~Capability.CONNECT_ATTRS) >>> 0 });
  p.push(encodePacket(client.handshakeResponse41({ capabilities: (CAPS | Capability.QUERY_ATTRIBUTES) >>> 0, user: 'u' }), 1));
  assert.equal(p.capabilities, (CAPS & ~Capability.CONNECT_ATTRS) >>> 0);
});

test('ClientParser: SSLRequest, the TLS bytes behind it handed back, nothing in the clear until startTls()', () => {
  const ssl = encodePacket(client.sslRequest({ capabilities: CAPS }), 1);
  const hs = encodePacket(client.handshakeResponse41({ capabilities: CAPS | Capability.SSL, user: 'agent' }), 2);
  const p = new ClientParser();
  assert.deepStrictEqual(p.push(ssl).map((m) => m.name), ['SSLRequest']);
  assert.equal(p.phase, 'tls');
  assert.equal(p.takeTlsBytes().length, 0);
  p.startTls();
  assert.deepStrictEqual(p.push(hs).map((m) => m.name), ['HandshakeResponse41']);
  // The client starts TLS right after its SSLRequest: a ClientHello in the same chunk is not framed
  // as MySQL packets (its record header would read as a packet length) but handed back for TLS.
  const clientHello = Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x02, 0x00]), randomBytes(512)]);
  for (let cut = 0; cut <= ssl.length + clientHello.length; cut += 5) {
    const q = new ClientParser();
    const both = Buffer.concat([ssl, clientHello]);
    const first = q.push(both.subarray(0, Math.min(cut, both.length)));
    if (cut < ssl.length) {
      assert.equal(first.length, 0);
      assert.deepStrictEqual(q.push(both.subarray(cut)).map((m) => m.name), ['SSLRequest']);
      assert.deepStrictEqual(q.takeTlsBytes(), clientHello);
    } else {
      assert.deepStrictEqual(first.map((m) => m.name), ['SSLRequest']);
      assert.deepStrictEqual(q.takeTlsBytes(), clientHello.subarray(0, cut - ssl.length));
      // Later bytes belong to the TLS stream: the engine must not push them here.
      if (cut < both.length) throwsProtocol(() => q.push(both.subarray(cut)), /outside TLS after SSL request/);
    }
  }
  const q = new ClientParser();
  q.push(Buffer.concat([ssl, clientHello]));
  assert.equal(q.buffered, clientHello.length);
  throwsProtocol(() => q.startTls(), /not handed to TLS/);
  const r = new ClientParser();
  throwsProtocol(() => r.startTls(), /without an SSL request/);
  throwsProtocol(() => new ClientParser().takeTlsBytes(), /no SSL request/);
  // No second SSLRequest over TLS.
  const s = new ClientParser();
  s.push(ssl);
  s.startTls();
  throwsProtocol(() => s.push(ssl), /SSL request on a TLS connection/);
  // A handshake response with CLIENT_SSL but no SSLRequest is fine for the parser (the engine decides).
  assert.equal(new ClientParser().push(hs)[0]?.name, 'HandshakeResponse41');
  // An oversized first packet is refused at its header.
  throwsProtocol(() => new ClientParser().push(Buffer.from([0xff, 0xff, 0x0f, 1])), /too large/);
});

test('ClientParser: phases for COM_CHANGE_USER and LOCAL INFILE data', () => {
  const p = new ClientParser({ phase: 'command', capabilities: CAPS });
  p.registerStatement(1, 1);
  const [cu] = p.push(encodePacket(client.changeUser({ capabilities: CAPS, user: 'x' }), 0));
  assert.equal(cu?.name, 'ComChangeUser');
  assert.equal(p.phase, 'auth');
  assert.equal(p.statement(1), undefined, 'statements are forgotten');
  assert.equal(p.push(encodePacket(client.authResponse(Buffer.from('t\0')), 3))[0]?.name, 'AuthResponse');
  p.expectCommands();
  p.expectLocalInfileData();
  const data = p.push(Buffer.concat([encodePacket(Buffer.from('a,b\n'), 2), encodePacket(Buffer.alloc(0), 3), encodePacket(client.ping(), 0)]));
  assert.deepStrictEqual(
    data.map((m) => [m.name, m.name === 'LocalInfileData' ? m.data.toString() : '']),
    [
      ['LocalInfileData', 'a,b\n'],
      ['LocalInfileData', ''],
      ['ComPing', ''],
    ],
  );
  assert.equal(p.phase, 'command');
});

test('ClientParser: prepared statements — types reused, long data, MariaDB id -1, close and reset', () => {
  const p = new ClientParser({ phase: 'command', capabilities: CAPS });
  p.registerStatement(3, 2);
  const types = [
    { type: ColumnType.LONG, value: 1 },
    { type: ColumnType.BLOB, value: Buffer.from('x') },
  ];
  const [first] = p.push(encodePacket(client.stmtExecute({ statementId: 3, params: types }), 0));
  assert.ok(first?.name === 'ComStmtExecute' && first.params?.length === 2);
  // Re-executed without types: the previous ones apply.
  const [again] = p.push(encodePacket(client.stmtExecute({ statementId: 3, params: [{ ...types[0]!, value: 2 }, { ...types[1]!, value: null }], newParamsBound: false }), 0));
  assert.ok(again?.name === 'ComStmtExecute');
  assert.equal(again.newParamsBound, false);
  assert.deepStrictEqual(again.params?.map((x) => x.value), [2, null]);
  // Long data for parameter 1: its value is not in the execute packet.
  assert.equal(p.push(encodePacket(client.stmtSendLongData(3, 1, Buffer.from('big')), 0))[0]?.name, 'ComStmtSendLongData');
  const [long] = p.push(encodePacket(client.stmtExecute({ statementId: 3, params: [{ ...types[0]!, value: 5 }, { ...types[1]!, value: null, longData: true }] }), 0));
  assert.ok(long?.name === 'ComStmtExecute');
  assert.deepStrictEqual(long.params?.map((x) => [x.value, x.longData]), [
    [5, false],
    [null, true],
  ]);
  // The marks are consumed by the execution.
  const [after] = p.push(encodePacket(client.stmtExecute({ statementId: 3, params: [{ ...types[0]!, value: 6 }, { ...types[1]!, value: Buffer.from('y') }] }), 0));
  assert.ok(after?.name === 'ComStmtExecute');
  assert.deepStrictEqual(after.params?.[1]?.value, Buffer.from('y'));
  // MariaDB: statement id 0xFFFFFFFF is the statement prepared last.
  const [last] = p.push(encodePacket(client.stmtExecute({ statementId: 0xffffffff, params: [{ ...types[0]!, value: 7 }, { ...types[1]!, value: null }] }), 0));
  assert.ok(last?.name === 'ComStmtExecute');
  assert.equal(last.resolvedStatementId, 0xffffffff);
  assert.deepStrictEqual(last.params?.map((x) => x.value), [7, null]);
  // Reset clears long data marks; close forgets the statement.
  p.push(encodePacket(client.stmtSendLongData(3, 0, Buffer.from('z')), 0));
  p.push(encodePacket(client.stmtReset(3), 0));
  assert.equal(p.statement(3)?.longData?.size ?? 0, 0);
  p.push(encodePacket(client.stmtClose(3), 0));
  assert.equal(p.statement(3), undefined);
  const [gone] = p.push(encodePacket(client.stmtExecute({ statementId: 3, params: types }), 0));
  assert.ok(gone?.name === 'ComStmtExecute' && gone.params === null);
  // A statement executed before any types were sent cannot be decoded.
  const q = new ClientParser({ phase: 'command', capabilities: CAPS });
  q.registerStatement(4, 1);
  const [untyped] = q.push(encodePacket(client.stmtExecute({ statementId: 4, params: [{ type: ColumnType.LONG, value: 1 }], newParamsBound: false }), 0));
  assert.ok(untyped?.name === 'ComStmtExecute' && untyped.params === null);
});

function withoutSsl(payload: Buffer): Buffer {
  const b = Buffer.from(payload);
  b.writeUInt32LE((b.readUInt32LE(0) & ~Capability.SSL) >>> 0, 0);
  return b;
}

test('malformed client input throws ProtocolError and the parser stays failed', () => {
  const cases: [string, () => ClientParser, Buffer, RegExp][] = [
    ['command with sequence id 1', inPhase('command'), encodePacket(client.ping(), 1), /must have sequence id 0/],
    ['empty command', inPhase('command'), encodePacket(Buffer.alloc(0), 0), /empty payload/],
    ['COM_QUIT with a body', inPhase('command'), encodePacket(client.raw(Command.QUIT, Buffer.from('x')), 0), /trailing bytes/],
    ['COM_FIELD_LIST without terminator', inPhase('command'), encodePacket(client.raw(Command.FIELD_LIST, Buffer.from('t')), 0), /missing string terminator/],
    ['COM_SET_OPTION short', inPhase('command'), encodePacket(client.raw(Command.SET_OPTION, Buffer.from([0])), 0), /insufficient data/],
    ['COM_STMT_CLOSE long', inPhase('command'), encodePacket(client.raw(Command.STMT_CLOSE, Buffer.alloc(5)), 0), /trailing bytes/],
    ['pre-4.1 handshake response', () => new ClientParser(), encodePacket(Buffer.alloc(40), 1), /protocol 4.1/],
    ['32 bytes without CLIENT_SSL', () => new ClientParser(), encodePacket(withoutSsl(client.sslRequest({ capabilities: CAPS })), 1), /missing user name/],
    [
      'attributes longer than the packet',
      () => new ClientParser(),
      encodePacket(Buffer.concat([client.handshakeResponse41({ capabilities: CAPS, user: 'u', attributes: {} }).subarray(0, -1), Buffer.from([50])]), 1),
      /exceed packet length/,
    ],
    [
      'execute with a bad parameter type',
      withStatements(),
      encodePacket(Buffer.concat([client.raw(Command.STMT_EXECUTE, Buffer.from([9, 0, 0, 0, 0, 1, 0, 0, 0])), Buffer.from([0, 1, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0])]), 0),
      /unsupported parameter type 17/,
    ],
    ['execute with truncated values', withStatements(), encodePacket(client.stmtExecute({ statementId: 9, params: [{ type: ColumnType.LONGLONG, value: 1n }, { type: ColumnType.LONG, value: 1 }] }).subarray(0, -2), 0), /insufficient data/],
    ['execute with trailing bytes', withStatements(), encodePacket(Buffer.concat([client.stmtExecute({ statementId: 8 }), Buffer.from([1])]), 0), /trailing bytes/],
    ['query attributes with set count 2', inPhase('command', CAPS | Capability.QUERY_ATTRIBUTES), encodePacket(Buffer.from([3, 0, 2]), 0), /parameter set count 2/],
  ];
  for (const [label, make, bytes, pattern] of cases) {
    const p = make();
    assert.throws(() => p.push(bytes), (e: unknown) => e instanceof ProtocolError && pattern.test(e.message), label);
    throwsProtocol(() => p.push(encodePacket(client.ping(), 0)));
    assert.ok(p.error, label);
  }
});

// ---------------------------------------------------------------------------------------------
// Server → client messages
// ---------------------------------------------------------------------------------------------

interface ServerCase {
  bytes: Buffer;
  decode: (p: Packet) => object;
  expect: Record<string, unknown>;
}

const scramble = Buffer.from('0123456789abcdefghij');
const col = (name: string, type: number, extra: Partial<Parameters<typeof server.columnDefinition>[0]> = {}) => ({ name, type, schema: 'shop', table: 'u', orgTable: 'users', orgName: name, ...extra });

const serverCases: ServerCase[] = [
  {
    bytes: encodePacket(
      server.handshakeV10({ serverVersion: '8.0.36-gatehouse', connectionId: 77, authPluginData: scramble, capabilities: CAPS | Capability.SSL, authPlugin: 'caching_sha2_password', statusFlags: 2 }),
      0,
    ),
    decode: parseGreeting,
    expect: {
      name: 'HandshakeV10',
      protocolVersion: 10,
      serverVersion: '8.0.36-gatehouse',
      connectionId: 77,
      authPluginData: scramble,
      capabilities: (CAPS | Capability.SSL) >>> 0,
      characterSet: 45,
      statusFlags: 2,
      authPlugin: 'caching_sha2_password',
      mariadbCapabilities: 0,
    },
  },
  {
    // MariaDB: CLIENT_MYSQL off, extended capabilities in the reserved bytes.
    bytes: encodePacket(
      server.handshakeV10({ serverVersion: '5.5.5-10.11.6-MariaDB', connectionId: 1, authPluginData: scramble, capabilities: (CAPS & ~Capability.LONG_PASSWORD) >>> 0, mariadbCapabilities: 0x1d, characterSet: 8 }),
      0,
    ),
    decode: parseGreeting,
    expect: {
      name: 'HandshakeV10',
      protocolVersion: 10,
      serverVersion: '5.5.5-10.11.6-MariaDB',
      connectionId: 1,
      authPluginData: scramble,
      capabilities: (CAPS & ~Capability.LONG_PASSWORD) >>> 0,
      characterSet: 8,
      statusFlags: ServerStatus.AUTOCOMMIT,
      authPlugin: 'mysql_native_password',
      mariadbCapabilities: 0x1d,
    },
  },
  {
    bytes: encodePacket(server.err({ code: 1040, sqlState: '08004', message: 'Too many connections' }, P41), 0),
    decode: parseGreeting,
    expect: { name: 'ErrPacket', code: 1040, sqlState: '08004', message: 'Too many connections' },
  },
  {
    bytes: encodePacket(server.ok({ affectedRows: 3, lastInsertId: 2n ** 40n, statusFlags: 3, warnings: 1, info: 'Rows matched: 3' }, CAPS), 1),
    decode: (p) => parseOk(p, CAPS),
    expect: { name: 'OkPacket', header: 0, affectedRows: 3n, lastInsertId: 2n ** 40n, statusFlags: 3, warnings: 1, info: 'Rows matched: 3', sessionStateChanges: undefined },
  },
  {
    bytes: encodePacket(server.ok({ info: 'i', sessionStateChanges: Buffer.from([0, 5, 4, 's', 'c', 'h', 'm'].map((x) => (typeof x === 'string' ? x.charCodeAt(0) : x))) }, CAPS | Capability.SESSION_TRACK), 1),
    decode: (p) => parseOk(p, CAPS | Capability.SESSION_TRACK),
    expect: {
      name: 'OkPacket',
      header: 0,
      affectedRows: 0n,
      lastInsertId: 0n,
      statusFlags: ServerStatus.AUTOCOMMIT | ServerStatus.SESSION_STATE_CHANGED,
      warnings: 0,
      info: 'i',
      sessionStateChanges: Buffer.from([0, 5, 4, 0x73, 0x63, 0x68, 0x6d]),
    },
  },
  {
    bytes: encodePacket(server.ok({}, CAPS | Capability.SESSION_TRACK), 1),
    decode: (p) => parseOk(p, CAPS | Capability.SESSION_TRACK),
    expect: { name: 'OkPacket', header: 0, affectedRows: 0n, lastInsertId: 0n, statusFlags: 2, warnings: 0, info: '', sessionStateChanges: undefined },
  },
  {
    bytes: encodePacket(server.eof({ statusFlags: ServerStatus.MORE_RESULTS_EXISTS, warnings: 2 }, DEPRECATE), 5),
    decode: (p) => parseOk(p, DEPRECATE),
    expect: { name: 'OkPacket', header: 0xfe, affectedRows: 0n, lastInsertId: 0n, statusFlags: ServerStatus.MORE_RESULTS_EXISTS, warnings: 2, info: '', sessionStateChanges: undefined },
  },
  {
    bytes: encodePacket(server.err({ code: 1142, sqlState: '42000', message: 'denied by rule no-drop: DROP TABLE' }, CAPS), 1),
    decode: (p) => parseErr(p, CAPS),
    expect: { name: 'ErrPacket', code: 1142, sqlState: '42000', message: 'denied by rule no-drop: DROP TABLE' },
  },
  { bytes: encodePacket(server.err({ code: 1105, message: 'x' }, 0), 1), decode: (p) => parseErr(p, 0), expect: { name: 'ErrPacket', code: 1105, sqlState: undefined, message: 'x' } },
  { bytes: encodePacket(server.eof({ warnings: 1, statusFlags: 0x22 }, CAPS), 3), decode: (p) => parseEof(p, CAPS), expect: { name: 'EofPacket', warnings: 1, statusFlags: 0x22 } },
  {
    bytes: encodePacket(server.authSwitchRequest('mysql_clear_password'), 2),
    decode: (p) => parseAuthPhasePacket(p, CAPS),
    expect: { name: 'AuthSwitchRequest', plugin: 'mysql_clear_password', data: Buffer.alloc(0) },
  },
  {
    bytes: encodePacket(server.authSwitchRequest('mysql_native_password', Buffer.concat([scramble, Buffer.from([0])])), 2),
    decode: (p) => parseAuthPhasePacket(p, CAPS),
    expect: { name: 'AuthSwitchRequest', plugin: 'mysql_native_password', data: Buffer.concat([scramble, Buffer.from([0])]) },
  },
  { bytes: encodePacket(server.authMoreData(Buffer.from([3])), 2), decode: (p) => parseAuthPhasePacket(p, CAPS), expect: { name: 'AuthMoreData', data: Buffer.from([3]) } },
  {
    bytes: encodePacket(server.columnDefinition(col('ssn', ColumnType.VAR_STRING, { characterSet: 45, columnLength: 44, flags: ColumnFlag.NOT_NULL, decimals: 0 })), 2),
    decode: (p) => parseColumnDefinition(p),
    expect: {
      name: 'ColumnDefinition',
      catalog: 'def',
      schema: 'shop',
      table: 'u',
      orgTable: 'users',
      columnName: 'ssn',
      orgName: 'ssn',
      characterSet: 45,
      columnLength: 44,
      type: ColumnType.VAR_STRING,
      flags: ColumnFlag.NOT_NULL,
      decimals: 0,
      defaultValue: undefined,
    },
  },
  {
    bytes: encodePacket(server.columnDefinition(col('n', ColumnType.LONG, { defaultValue: '42' }), true), 1),
    decode: (p) => parseColumnDefinition(p, true),
    expect: {
      name: 'ColumnDefinition',
      catalog: 'def',
      schema: 'shop',
      table: 'u',
      orgTable: 'users',
      columnName: 'n',
      orgName: 'n',
      characterSet: 45,
      columnLength: 0,
      type: ColumnType.LONG,
      flags: 0,
      decimals: 0,
      defaultValue: Buffer.from('42'),
    },
  },
  {
    bytes: encodePacket(server.stmtPrepareOk({ statementId: 12, columnCount: 3, paramCount: 2, warnings: 1 }), 1),
    decode: parseStmtPrepareOk,
    expect: { name: 'StmtPrepareOk', statementId: 12, columnCount: 3, paramCount: 2, warnings: 1 },
  },
];

test('every server message round-trips, whole, split at every byte and byte by byte', () => {
  for (const [i, c] of serverCases.entries()) {
    const label = `server #${i} ${String(c.expect.name)}`;
    const decodeAll = (packets: Packet[]) => packets.map((p) => c.decode(p));
    const whole = new PacketParser().push(c.bytes);
    assert.equal(whole.length, 1, label);
    const m = c.decode(whole[0]!) as { raw: Buffer };
    assert.deepStrictEqual(fieldsOf(m), c.expect, label);
    assert.equal(m.raw.buffer, c.bytes.buffer, `${label}: raw is a view`);
    for (let cut = 0; cut <= c.bytes.length; cut++) {
      const p = new PacketParser();
      const got = decodeAll([...p.push(c.bytes.subarray(0, cut)), ...p.push(c.bytes.subarray(cut))]);
      assert.equal(got.length, 1, `${label} split at ${cut}`);
      assert.deepStrictEqual(fieldsOf(got[0]!), c.expect, `${label} split at ${cut}`);
    }
    const p = new PacketParser();
    const got: Packet[] = [];
    for (let k = 0; k < c.bytes.length; k++) got.push(...p.push(c.bytes.subarray(k, k + 1)));
    assert.deepStrictEqual(fieldsOf(c.decode(got[0]!)), c.expect, `${label} byte-by-byte`);
  }
});

test('malformed server packets throw ProtocolError', () => {
  const hs = server.handshakeV10({ serverVersion: 'v', connectionId: 1, authPluginData: scramble, capabilities: CAPS });
  const bad9 = Buffer.from(hs);
  bad9[0] = 9;
  throwsProtocol(() => parseGreeting(pkt(bad9)), /unsupported protocol version 9/);
  throwsProtocol(() => parseGreeting(pkt(hs.subarray(0, 20))), /insufficient data|terminator/);
  throwsProtocol(() => parseGreeting(pkt(Buffer.concat([hs, Buffer.from('x')]))), /trailing bytes/);
  const no41 = server.handshakeV10({ serverVersion: 'v', connectionId: 1, authPluginData: scramble, capabilities: CAPS & ~P41 });
  throwsProtocol(() => parseGreeting(pkt(no41)), /protocol 4.1/);
  throwsProtocol(() => parseOk(pkt(Buffer.from([0x00, 0xff])), CAPS), /length-encoded integer prefix 0xff/);
  throwsProtocol(() => parseOk(pkt(Buffer.from([0x01, 0, 0, 2, 0, 0, 0])), CAPS), /invalid header 0x1/);
  throwsProtocol(() => parseEof(pkt(Buffer.from([0xfe, 0, 0, 2, 0, 0])), CAPS), /trailing bytes/);
  throwsProtocol(() => parseAuthPhasePacket(pkt(Buffer.from([0xfe])), CAPS), /old password authentication/);
  throwsProtocol(() => parseAuthPhasePacket(pkt(Buffer.from([0x42])), CAPS), /unexpected header 0x42/);
  throwsProtocol(() => parseAuthPhasePacket(pkt(Buffer.alloc(0)), CAPS), /\(empty\)/);
  const colBytes = server.columnDefinition(col('a', ColumnType.LONG));
  const badFixed = Buffer.from(colBytes);
  badFixed[colBytes.length - 13] = 0x0b;
  throwsProtocol(() => parseColumnDefinition(pkt(badFixed)), /fixed-fields length 11/);
  throwsProtocol(() => parseColumnDefinition(pkt(colBytes.subarray(0, colBytes.length - 1))), /insufficient data/);
  throwsProtocol(() => parseStmtPrepareOk(pkt(Buffer.from([0xff, 1]))), /invalid header/);
});

test('server serializers validate their input', () => {
  assert.throws(() => server.handshakeV10({ serverVersion: 'v', connectionId: 1, authPluginData: Buffer.alloc(20), capabilities: CAPS }), /NUL/);
  assert.throws(() => server.handshakeV10({ serverVersion: 'v', connectionId: 1, authPluginData: Buffer.from('short'), capabilities: CAPS }), RangeError);
  assert.throws(() => server.err({ code: 1, sqlState: '4200', message: 'x' }, CAPS), RangeError);
  assert.throws(() => server.ok({ sessionStateChanges: Buffer.from([1]) }, CAPS), RangeError);
  assert.throws(() => server.textResultSet({ columns: [], rows: [] }, CAPS), RangeError);
  const s = generateScramble();
  assert.equal(s.length, 20);
  assert.ok(!s.includes(0) && !s.includes(0x24) && s.every((b) => b < 128));
});

// ---------------------------------------------------------------------------------------------
// Rows and values
// ---------------------------------------------------------------------------------------------

test('text rows decode to strings (or views) and re-serialize byte for byte', () => {
  const values = ['1', null, '', 'Zoë', 'x'.repeat(300)];
  const payload = encodeTextRow(values);
  assert.deepStrictEqual(decodeTextRow(payload), values);
  assert.deepStrictEqual(decodeTextRow(payload, 5), values);
  const views = decodeTextRowBuffers(payload);
  assert.equal(views[0]!.buffer, payload.buffer);
  assert.ok(encodeTextRow(views).equals(payload));
  throwsProtocol(() => decodeTextRow(payload, 4), /more than 4 values/);
  throwsProtocol(() => decodeTextRow(payload, 6), /5 values for 6 columns/);
  throwsProtocol(() => decodeTextRow(Buffer.from([5, 0x41])), /insufficient data/);
  assert.deepStrictEqual(decodeTextRow(Buffer.alloc(0), 0), []);
});

const valueCases: [string, ValueType, BinaryValue][] = [
  ['tiny -128', { type: ColumnType.TINY, flags: 0 }, -128],
  ['tiny 255 unsigned', { type: ColumnType.TINY, flags: ColumnFlag.UNSIGNED }, 255],
  ['short -32768', { type: ColumnType.SHORT, flags: 0 }, -32768],
  ['year 2024', { type: ColumnType.YEAR, flags: ColumnFlag.UNSIGNED }, 2024],
  ['int24', { type: ColumnType.INT24, flags: 0 }, -8388608],
  ['long min', { type: ColumnType.LONG, flags: 0 }, -2147483648],
  ['long max unsigned', { type: ColumnType.LONG, flags: ColumnFlag.UNSIGNED }, 4294967295],
  ['longlong min', { type: ColumnType.LONGLONG, flags: 0 }, -(2n ** 63n)],
  ['longlong max unsigned', { type: ColumnType.LONGLONG, flags: ColumnFlag.UNSIGNED }, 2n ** 64n - 1n],
  ['float', { type: ColumnType.FLOAT, flags: 0 }, 1.5],
  ['double', { type: ColumnType.DOUBLE, flags: 0 }, -1234.5678e200],
  ['decimal', { type: ColumnType.NEWDECIMAL, flags: 0 }, Buffer.from('-12345.6789')],
  ['old decimal', { type: ColumnType.DECIMAL, flags: 0 }, Buffer.from('1.0')],
  ['varchar', { type: ColumnType.VARCHAR, flags: 0 }, Buffer.from('v')],
  ['var_string', { type: ColumnType.VAR_STRING, flags: 0 }, Buffer.from('Zoë')],
  ['string', { type: ColumnType.STRING, flags: 0 }, Buffer.alloc(0)],
  ['enum', { type: ColumnType.ENUM, flags: 0 }, Buffer.from('red')],
  ['set', { type: ColumnType.SET, flags: 0 }, Buffer.from('a,b')],
  ['bit', { type: ColumnType.BIT, flags: 0 }, Buffer.from([0x81])],
  ['tiny blob', { type: ColumnType.TINY_BLOB, flags: 0 }, Buffer.from([0, 1])],
  ['medium blob', { type: ColumnType.MEDIUM_BLOB, flags: 0 }, Buffer.alloc(70000, 3)],
  ['long blob', { type: ColumnType.LONG_BLOB, flags: 0 }, Buffer.from('l')],
  ['blob', { type: ColumnType.BLOB, flags: 0 }, Buffer.from('b')],
  ['geometry', { type: ColumnType.GEOMETRY, flags: 0 }, Buffer.from([0, 0, 0, 0, 1, 1])],
  ['json', { type: ColumnType.JSON, flags: 0 }, Buffer.from('{"a":1}')],
  ['date zero', { type: ColumnType.DATE, flags: 0 }, { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, microsecond: 0 }],
  ['date', { type: ColumnType.DATE, flags: 0 }, { year: 2024, month: 2, day: 29, hour: 0, minute: 0, second: 0, microsecond: 0 }],
  ['datetime', { type: ColumnType.DATETIME, flags: 0 }, { year: 1999, month: 12, day: 31, hour: 23, minute: 59, second: 59, microsecond: 0 }],
  ['datetime micro', { type: ColumnType.DATETIME, flags: 0 }, { year: 2000, month: 1, day: 1, hour: 0, minute: 0, second: 0, microsecond: 1 }],
  ['timestamp', { type: ColumnType.TIMESTAMP, flags: 0 }, { year: 2038, month: 1, day: 19, hour: 3, minute: 14, second: 7, microsecond: 999999 }],
  ['time zero', { type: ColumnType.TIME, flags: 0 }, { negative: false, days: 0, hours: 0, minutes: 0, seconds: 0, microseconds: 0 }],
  ['time', { type: ColumnType.TIME, flags: 0 }, { negative: true, days: 34, hours: 22, minutes: 59, seconds: 59, microseconds: 0 }],
  ['time micro', { type: ColumnType.TIME, flags: 0 }, { negative: false, days: 0, hours: 1, minutes: 2, seconds: 3, microseconds: 500000 }],
];

test('binary rows: every MYSQL_TYPE_* value encoding round-trips, with the NULL bitmap at offset 2', () => {
  const columns = valueCases.map((c) => c[1]);
  const values = valueCases.map((c) => c[2]);
  const payload = encodeBinaryRow(columns, values);
  assert.deepStrictEqual(decodeBinaryRow(payload, columns), values);
  // Re-serializes to the same bytes.
  assert.ok(encodeBinaryRow(columns, decodeBinaryRow(payload, columns)).equals(payload));
  // NULLs anywhere; the first column's bit is bit 2 of the first byte.
  const one = [{ type: ColumnType.LONG, flags: 0 }];
  assert.deepStrictEqual([...encodeBinaryRow(one, [null])], [0x00, 0x04]);
  assert.deepStrictEqual([...encodeBinaryRow(one, [7])], [0x00, 0x00, 7, 0, 0, 0]);
  const seven = Array.from({ length: 7 }, () => ({ type: ColumnType.TINY, flags: 0 }));
  const nulls = [null, 1, null, 2, 3, 4, null];
  const bytes = encodeBinaryRow(seven, nulls);
  assert.deepStrictEqual([...bytes.subarray(0, 3)], [0x00, 0x14, 0x01]);
  assert.deepStrictEqual(decodeBinaryRow(bytes, seven), nulls);
  // The shortest date/time encodings, as MySQL sends them.
  const lengthOf = (c: number) => encodeBinaryRow([valueCases[c]![1]], [valueCases[c]![2]])[2];
  const idx = (label: string) => valueCases.findIndex((c) => c[0] === label);
  assert.deepStrictEqual(['date zero', 'date', 'datetime', 'datetime micro', 'time zero', 'time', 'time micro'].map((l) => lengthOf(idx(l))), [0, 4, 7, 11, 0, 8, 12]);
  for (const [label, t, v] of valueCases) {
    const p = encodeBinaryRow([t], [v]);
    assert.deepStrictEqual(decodeBinaryRow(p, [t]), [v], label);
  }
});

test('binary rows: malformed input and values that do not fit', () => {
  const cols = [{ type: ColumnType.LONG, flags: 0 }];
  throwsProtocol(() => decodeBinaryRow(Buffer.from([0x01, 0, 1, 0, 0, 0]), cols), /missing 0x00 header/);
  throwsProtocol(() => decodeBinaryRow(Buffer.from([0x00, 0, 1, 0]), cols), /insufficient data/);
  throwsProtocol(() => decodeBinaryRow(Buffer.from([0x00, 0, 1, 0, 0, 0, 9]), cols), /trailing bytes/);
  throwsProtocol(() => decodeBinaryRow(Buffer.from([0x00, 0x08]), cols), /bits past the last column/);
  throwsProtocol(() => decodeBinaryRow(Buffer.from([0x00, 0x05]), cols), /reserved bits/);
  throwsProtocol(() => decodeBinaryRow(Buffer.from([0x00, 0, 5, 1, 2, 3, 4, 5]), [{ type: ColumnType.DATE, flags: 0 }]), /date\/time length 5/);
  throwsProtocol(() => decodeBinaryRow(Buffer.from([0x00, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0]), [{ type: ColumnType.TIME, flags: 0 }]), /time sign/);
  throwsProtocol(() => decodeBinaryRow(Buffer.from([0x00, 0]), [{ type: ColumnType.TIME2, flags: 0 }]), /unsupported value type 19/);
  assert.throws(() => encodeBinaryRow(cols, [2 ** 31]), RangeError);
  assert.throws(() => encodeBinaryRow(cols, ['x' as unknown as number]), RangeError);
  assert.throws(() => encodeBinaryRow([{ type: ColumnType.LONGLONG, flags: 0 }], [2n ** 63n]), RangeError);
  assert.throws(() => encodeBinaryRow([{ type: ColumnType.DATE, flags: 0 }], [5]), RangeError);
  assert.throws(() => encodeBinaryRow(cols, []), RangeError);
});

test('formatBinaryValue renders values as the text protocol would', () => {
  assert.equal(formatBinaryValue(null, { type: ColumnType.LONG, flags: 0 }), null);
  assert.equal(formatBinaryValue(-5n, { type: ColumnType.LONGLONG, flags: 0 }), '-5');
  assert.equal(formatBinaryValue(Buffer.from('ü'), { type: ColumnType.VAR_STRING, flags: 0 }), 'ü');
  assert.equal(formatBinaryValue({ year: 2024, month: 2, day: 9, hour: 0, minute: 0, second: 0, microsecond: 0 }, { type: ColumnType.DATE, flags: 0 }), '2024-02-09');
  assert.equal(formatBinaryValue({ year: 2024, month: 2, day: 9, hour: 1, minute: 2, second: 3, microsecond: 40 }, { type: ColumnType.DATETIME, flags: 0, decimals: 6 }), '2024-02-09 01:02:03.000040');
  assert.equal(formatBinaryValue({ negative: true, days: 1, hours: 2, minutes: 3, seconds: 4, microseconds: 0 }, { type: ColumnType.TIME, flags: 0 }), '-26:03:04');
});

// ---------------------------------------------------------------------------------------------
// The response state machine
// ---------------------------------------------------------------------------------------------

/** Frames payloads with consecutive ids from 1 (the command was 0) and reads them through a fresh reader. */
function drive(kind: ConstructorParameters<typeof ResponseReader>[0], payloads: Buffer[], caps: number, columns?: ConstructorParameters<typeof ResponseReader>[1]['columns']) {
  const stream = Buffer.concat(payloads.map((p, i) => encodePacket(p, i + 1)));
  const rr = new ResponseReader(kind, { capabilities: caps, ...(columns ? { columns } : {}) });
  const msgs: ResponseMessage[] = [];
  const doneAfter: boolean[] = [];
  for (const p of new PacketParser().push(stream)) {
    msgs.push(rr.read(p));
    doneAfter.push(rr.done);
  }
  return { rr, msgs, doneAfter, stream };
}

const userCols = [col('id', ColumnType.LONG, { flags: ColumnFlag.NOT_NULL | ColumnFlag.PRI_KEY }), col('email', ColumnType.VAR_STRING)];

test('ResponseReader: text result set with and without CLIENT_DEPRECATE_EOF', () => {
  for (const caps of [CAPS, DEPRECATE]) {
    const set = server.textResultSet({ columns: userCols, rows: [['1', 'a@x.io'], ['2', null]] }, caps);
    const { rr, msgs, doneAfter } = drive('query', set, caps);
    assert.deepStrictEqual(
      msgs.map((m) => m.name),
      caps === CAPS
        ? ['ColumnCount', 'ColumnDefinition', 'ColumnDefinition', 'EofPacket', 'TextRow', 'TextRow', 'EofPacket']
        : ['ColumnCount', 'ColumnDefinition', 'ColumnDefinition', 'TextRow', 'TextRow', 'OkPacket'],
    );
    assert.deepStrictEqual(doneAfter.map((d, i) => d === (i === doneAfter.length - 1)), doneAfter.map(() => true), 'done only after the last packet');
    assert.deepStrictEqual(rr.columns.map((c) => [c.columnName, c.orgTable, c.type]), [
      ['id', 'users', ColumnType.LONG],
      ['email', 'users', ColumnType.VAR_STRING],
    ]);
    const rows = msgs.filter((m) => m.name === 'TextRow');
    assert.deepStrictEqual(rows.map((r) => rr.decodeTextRow(r as { name: 'TextRow'; raw: Buffer; payload: Buffer; sequenceId: number })), [
      ['1', 'a@x.io'],
      ['2', null],
    ]);
    assert.equal(rr.resultCount, 1);
    throwsProtocol(() => rr.read(pkt(server.ok({}, caps), 9)), /after the end of the response/);
  }
});

test('ResponseReader: multi-results (SERVER_MORE_RESULTS_EXISTS) end only with the last result', () => {
  const MORE = ServerStatus.MORE_RESULTS_EXISTS | ServerStatus.AUTOCOMMIT;
  for (const caps of [CAPS, DEPRECATE]) {
    const payloads = [
      server.ok({ affectedRows: 1, statusFlags: MORE }, caps),
      ...server.textResultSet({ columns: [col('a', ColumnType.LONG)], rows: [['1']], statusFlags: MORE }, caps),
      ...server.textResultSet({ columns: [col('b', ColumnType.LONG)], rows: [], statusFlags: MORE }, caps),
      server.ok({ affectedRows: 2 }, caps),
    ];
    const { rr, msgs, doneAfter } = drive('query', payloads, caps);
    assert.equal(msgs.length, payloads.length);
    assert.equal(doneAfter.indexOf(true), payloads.length - 1);
    assert.equal(rr.resultCount, 4);
    assert.deepStrictEqual(rr.columns.map((c) => c.columnName), ['b']);
  }
  // An ERR ends the whole answer, whatever came before.
  const withErr = [server.ok({ statusFlags: MORE }, CAPS), server.err({ code: 1064, sqlState: '42000', message: 'syntax' }, CAPS)];
  const { doneAfter, msgs } = drive('query', withErr, CAPS);
  assert.deepStrictEqual(doneAfter, [false, true]);
  assert.equal(msgs[1]!.name, 'ErrPacket');
});

test('ResponseReader: an ERR in the middle of rows ends the answer', () => {
  const set = server.textResultSet({ columns: userCols, rows: [['1', 'x']] }, CAPS);
  const payloads = [...set.slice(0, -1), server.err({ code: 1317, sqlState: '70100', message: 'Query execution was interrupted' }, CAPS)];
  const { msgs, doneAfter } = drive('query', payloads, CAPS);
  assert.equal(msgs.at(-1)!.name, 'ErrPacket');
  assert.equal(doneAfter.at(-1), true);
});

test('ResponseReader: a row whose first value is 16 MiB or longer is a row, not an EOF (split packets)', () => {
  const big = Buffer.alloc(MAX_PACKET_PAYLOAD + 10, 0x61);
  for (const caps of [CAPS, DEPRECATE]) {
    const set = server.textResultSet({ columns: [col('blob', ColumnType.LONG_BLOB)], rows: [[big]] }, caps);
    const stream = Buffer.concat(set.map((p, i) => encodePacket(p, i + 1)));
    const rr = new ResponseReader('query', { capabilities: caps });
    const parser = new PacketParser();
    const msgs: ResponseMessage[] = [];
    for (let i = 0; i < stream.length; i += 4_000_000) for (const p of parser.push(stream.subarray(i, i + 4_000_000))) msgs.push(rr.read(p));
    const row = msgs.find((m) => m.name === 'TextRow');
    assert.ok(row && row.name === 'TextRow');
    assert.equal(row.payload[0], 0xfe, 'first byte is the 8-byte length prefix');
    const [value] = rr.decodeTextRowBuffers(row);
    assert.ok(value?.equals(big));
    assert.ok(rr.done);
  }
});

test('ResponseReader: LOCAL INFILE request waits for the client, then OK', () => {
  const rr = new ResponseReader('query', { capabilities: CAPS });
  const req = rr.read(pkt(server.localInfileRequest('/etc/passwd'), 1));
  assert.ok(req.name === 'LocalInfileRequest' && req.filename === '/etc/passwd');
  assert.equal(rr.state, 'local_infile');
  throwsProtocol(() => rr.read(pkt(server.ok({}, CAPS), 2)), /waits for LOCAL INFILE data/);
  const rr2 = new ResponseReader('query', { capabilities: CAPS });
  rr2.read(pkt(server.localInfileRequest('x.csv'), 1));
  rr2.localInfileSent();
  const ok = rr2.read(pkt(server.ok({ affectedRows: 3 }, CAPS), 4));
  assert.ok(ok.name === 'OkPacket' && ok.affectedRows === 3n && rr2.done);
  throwsProtocol(() => new ResponseReader('query', { capabilities: CAPS }).localInfileSent(), /no LOCAL INFILE request/);
  throwsProtocol(() => drive('execute', [server.localInfileRequest('x')], CAPS), /expected OK, ERR or a result set/);
});

test('ResponseReader: COM_STMT_PREPARE response with and without CLIENT_DEPRECATE_EOF', () => {
  for (const caps of [CAPS, DEPRECATE]) {
    const payloads = server.prepareResponse({ statementId: 5, params: [col('?', ColumnType.NULL), col('?', ColumnType.NULL)], columns: userCols }, caps);
    const { rr, msgs, doneAfter } = drive('prepare', payloads, caps);
    assert.equal(msgs[0]!.name, 'StmtPrepareOk');
    assert.equal(doneAfter.indexOf(true), payloads.length - 1);
    assert.equal(rr.params.length, 2);
    assert.deepStrictEqual(rr.columns.map((c) => c.columnName), ['id', 'email']);
    for (const [params, columns] of [
      [[], []],
      [[col('?', ColumnType.LONG)], []],
      [[], [col('x', ColumnType.LONG)]],
    ] as const) {
      const p = server.prepareResponse({ statementId: 1, params, columns }, caps);
      const d = drive('prepare', p, caps);
      assert.equal(d.doneAfter.indexOf(true), p.length - 1, `${params.length} params ${columns.length} columns`);
    }
  }
  const { doneAfter } = drive('prepare', [server.err({ code: 1146, sqlState: '42S02', message: 'no table' }, CAPS)], CAPS);
  assert.deepStrictEqual(doneAfter, [true]);
});

test('ResponseReader: binary result sets (COM_STMT_EXECUTE), cursors and COM_STMT_FETCH', () => {
  const cols = [col('id', ColumnType.LONGLONG, { flags: ColumnFlag.UNSIGNED }), col('at', ColumnType.DATETIME), col('note', ColumnType.BLOB)];
  const rows: BinaryValue[][] = [
    [1n, { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5, microsecond: 0 }, Buffer.from('x')],
    [2n, null, null],
  ];
  for (const caps of [CAPS, DEPRECATE]) {
    const set = server.binaryResultSet({ columns: cols, rows }, caps);
    const { rr, msgs } = drive('execute', set, caps);
    const got = msgs.filter((m) => m.name === 'BinaryRow').map((m) => rr.decodeBinaryRow(m as never));
    assert.deepStrictEqual(got, rows);
    assert.ok(rr.done);
    // A cursor: definitions, then the EOF (or 0xFE OK) with SERVER_STATUS_CURSOR_EXISTS ends the answer.
    const cursorEnd = { statusFlags: ServerStatus.CURSOR_EXISTS | ServerStatus.AUTOCOMMIT };
    const cursor = [server.columnCount(3), ...cols.map((c) => server.columnDefinition(c)), caps === CAPS ? server.eofPacket(cursorEnd, caps) : server.eof(cursorEnd, caps)];
    const c = drive('execute', cursor, caps);
    assert.equal(c.doneAfter.indexOf(true), cursor.length - 1);
    // Its rows come with COM_STMT_FETCH.
    const fetch = [...rows.map((r) => server.binaryRow(cols, r)), server.eof({ statusFlags: ServerStatus.CURSOR_EXISTS | ServerStatus.LAST_ROW_SENT }, caps)];
    const f = drive('fetch', fetch, caps, c.rr.columns);
    assert.deepStrictEqual(f.msgs.filter((m) => m.name === 'BinaryRow').map((m) => f.rr.decodeBinaryRow(m as never)), rows);
    assert.ok(f.rr.done);
  }
  assert.throws(() => new ResponseReader('fetch', { capabilities: CAPS }), RangeError);
  throwsProtocol(() => drive('execute', [server.columnCount(1), server.columnDefinition(col('a', ColumnType.LONG)), server.eofPacket({}, CAPS), Buffer.from([0x01, 0])], CAPS), /invalid binary row/);
});

test('ResponseReader: field list, statistics, simple commands and COM_CHANGE_USER', () => {
  for (const caps of [CAPS, DEPRECATE]) {
    const fl = [server.columnDefinition(col('id', ColumnType.LONG, { defaultValue: null }), true), server.columnDefinition(col('n', ColumnType.LONG, { defaultValue: '0' }), true), server.eof({}, caps)];
    const { msgs, doneAfter } = drive('field_list', fl, caps);
    assert.deepStrictEqual(msgs.map((m) => m.name), ['ColumnDefinition', 'ColumnDefinition', caps === CAPS ? 'EofPacket' : 'OkPacket']);
    assert.ok(msgs[1]!.name === 'ColumnDefinition' && msgs[1]!.defaultValue?.toString() === '0');
    assert.deepStrictEqual(doneAfter, [false, false, true]);
    // COM_SET_OPTION answers with EOF (an OK under CLIENT_DEPRECATE_EOF).
    assert.deepStrictEqual(drive('simple', [server.eof({}, caps)], caps).doneAfter, [true]);
  }
  const st = drive('statistics', [server.statistics('Uptime: 5  Threads: 1')], CAPS);
  assert.ok(st.msgs[0]!.name === 'Statistics' && st.msgs[0]!.text.startsWith('Uptime') && st.rr.done);
  assert.deepStrictEqual(drive('simple', [server.ok({}, CAPS)], CAPS).doneAfter, [true]);
  assert.deepStrictEqual(drive('simple', [server.err({ code: 1, message: 'x' }, CAPS)], CAPS).doneAfter, [true]);
  throwsProtocol(() => drive('simple', [server.columnCount(1)], CAPS), /expected OK, ERR or EOF/);
  const cu = drive('change_user', [server.authSwitchRequest('mysql_native_password', scramble), server.ok({}, CAPS)], CAPS);
  assert.deepStrictEqual(cu.msgs.map((m) => m.name), ['AuthSwitchRequest', 'OkPacket']);
  assert.deepStrictEqual(cu.doneAfter, [false, true]);
});

test('ResponseReader: streams of responses parse identically at every split point', () => {
  const payloads = [
    ...server.textResultSet({ columns: userCols, rows: [['1', 'a'], ['2', null]], statusFlags: ServerStatus.MORE_RESULTS_EXISTS }, CAPS),
    server.ok({ affectedRows: 7, info: 'done' }, CAPS),
  ];
  const { msgs, stream } = drive('query', payloads, CAPS);
  const expected = msgs.map(fieldsOf);
  for (let cut = 0; cut <= stream.length; cut++) {
    const parser = new PacketParser();
    const rr = new ResponseReader('query', { capabilities: CAPS });
    const got = [...parser.push(stream.subarray(0, cut)), ...parser.push(stream.subarray(cut))].map((p) => fieldsOf(rr.read(p)));
    assert.deepStrictEqual(got, expected, `cut ${cut}`);
    assert.ok(rr.done);
  }
});

test('responseKind maps each command to its answer', () => {
  const p = new ClientParser({ phase: 'command', capabilities: CAPS });
  p.registerStatement(1, 0);
  const kinds = p
    .push(
      Buffer.concat(
        [client.query('x'), client.stmtExecute({ statementId: 1 }), client.stmtPrepare('x'), client.fieldList('t'), client.stmtFetch(1, 1), client.statistics(), client.changeUser({ capabilities: CAPS, user: 'u' })].map((b) =>
          encodePacket(b, 0),
        ),
      ),
    )
    .map((m) => (m.name.startsWith('Com') ? responseKind(m as never) : 'n/a'));
  assert.deepStrictEqual(kinds, ['query', 'execute', 'prepare', 'field_list', 'fetch', 'statistics', 'change_user']);
  const q = new ClientParser({ phase: 'command', capabilities: CAPS });
  const none = q.push(Buffer.concat([client.stmtClose(1), client.stmtSendLongData(1, 0, Buffer.alloc(1)), client.ping(), client.quit()].map((b) => encodePacket(b, 0))));
  assert.deepStrictEqual(none.map((m) => responseKind(m as never)), [undefined, undefined, 'simple', undefined]);
  assert.throws(() => new ResponseReader('query', { capabilities: CAPS | Capability.OPTIONAL_RESULTSET_METADATA }), RangeError);
});
