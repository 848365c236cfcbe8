import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BackendParser,
  FrontendParser,
  backend,
  commandRowCount,
  decodeDataRow,
  frontend,
  serializeDataRow,
  type BackendMessage,
  type FrontendMessage,
} from '../../src/engines/postgres/protocol.js';
import { checkSplits, throwsProtocol } from '../support/codec.js';

type Msg = FrontendMessage | BackendMessage;

/** The decoded fields of a message without `raw`, with null-prototype records made plain. */
function fieldsOf(m: Msg): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === 'raw') continue;
    out[k] = v !== null && typeof v === 'object' && !Buffer.isBuffer(v) && !Array.isArray(v) ? { ...v } : v;
  }
  return out;
}

interface Case<P> {
  bytes: Buffer;
  expect: Record<string, unknown>;
  parser: () => P;
}

const startup = () => new FrontendParser();
const typed = () => new FrontendParser({ typed: true });
const key8 = Buffer.from('0102030405060708', 'hex');

const frontendCases: Case<FrontendParser>[] = [
  {
    bytes: frontend.startupMessage({ user: 'agent', database: 'prod-pg', application_name: 'psql', 'ünï': 'çødé' }),
    expect: { name: 'StartupMessage', type: '', majorVersion: 3, minorVersion: 0, params: { user: 'agent', database: 'prod-pg', application_name: 'psql', 'ünï': 'çødé' } },
    parser: startup,
  },
  {
    bytes: frontend.startupMessage({ user: 'u', _pq_x: '1' }, 2),
    expect: { name: 'StartupMessage', type: '', majorVersion: 3, minorVersion: 2, params: { user: 'u', _pq_x: '1' } },
    parser: startup,
  },
  { bytes: frontend.startupMessage({}), expect: { name: 'StartupMessage', type: '', majorVersion: 3, minorVersion: 0, params: {} }, parser: startup },
  { bytes: frontend.sslRequest(), expect: { name: 'SSLRequest', type: '' }, parser: startup },
  { bytes: frontend.gssencRequest(), expect: { name: 'GSSENCRequest', type: '' }, parser: startup },
  {
    bytes: frontend.cancelRequest(4242, -123456789),
    expect: { name: 'CancelRequest', type: '', processId: 4242, secretKey: Buffer.from('f8a432eb', 'hex') },
    parser: startup,
  },
  { bytes: frontend.cancelRequest(7, key8), expect: { name: 'CancelRequest', type: '', processId: 7, secretKey: key8 }, parser: startup },
  { bytes: frontend.query('SELECT 1; select \'é\''), expect: { name: 'Query', type: 'Q', query: "SELECT 1; select 'é'" }, parser: typed },
  { bytes: frontend.query(''), expect: { name: 'Query', type: 'Q', query: '' }, parser: typed },
  {
    bytes: frontend.parse('s1', 'SELECT $1::int, $2', [23, 4294967295]),
    expect: { name: 'Parse', type: 'P', statement: 's1', query: 'SELECT $1::int, $2', paramTypes: [23, 4294967295] },
    parser: typed,
  },
  { bytes: frontend.parse('', 'SELECT 1'), expect: { name: 'Parse', type: 'P', statement: '', query: 'SELECT 1', paramTypes: [] }, parser: typed },
  {
    bytes: frontend.bind('p1', 's1', ['42', null, Buffer.from([0, 1, 2]), ''], [0, 0, 1, 0], [1]),
    expect: {
      name: 'Bind',
      type: 'B',
      portal: 'p1',
      statement: 's1',
      paramFormats: [0, 0, 1, 0],
      params: [Buffer.from('42'), null, Buffer.from([0, 1, 2]), Buffer.alloc(0)],
      resultFormats: [1],
    },
    parser: typed,
  },
  { bytes: frontend.bind('', ''), expect: { name: 'Bind', type: 'B', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }, parser: typed },
  { bytes: frontend.describe('S', 's1'), expect: { name: 'Describe', type: 'D', target: 'S', objectName: 's1' }, parser: typed },
  { bytes: frontend.describe('P'), expect: { name: 'Describe', type: 'D', target: 'P', objectName: '' }, parser: typed },
  { bytes: frontend.execute('p1', 100), expect: { name: 'Execute', type: 'E', portal: 'p1', maxRows: 100 }, parser: typed },
  { bytes: frontend.sync(), expect: { name: 'Sync', type: 'S' }, parser: typed },
  { bytes: frontend.flush(), expect: { name: 'Flush', type: 'H' }, parser: typed },
  { bytes: frontend.close('P', 'p1'), expect: { name: 'Close', type: 'C', target: 'P', objectName: 'p1' }, parser: typed },
  { bytes: frontend.terminate(), expect: { name: 'Terminate', type: 'X' }, parser: typed },
  {
    bytes: frontend.password('eyJhbGciOi.token'),
    expect: { name: 'PasswordMessage', type: 'p', body: Buffer.from('eyJhbGciOi.token\0'), password: 'eyJhbGciOi.token' },
    parser: typed,
  },
  {
    bytes: frontend.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=abc'),
    expect: {
      name: 'PasswordMessage',
      type: 'p',
      body: Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), Buffer.from([0, 0, 0, 11]), Buffer.from('n,,n=,r=abc')]),
      password: null,
    },
    parser: typed,
  },
  { bytes: frontend.copyData(Buffer.from('1\tx\n')), expect: { name: 'CopyData', type: 'd', data: Buffer.from('1\tx\n') }, parser: typed },
  { bytes: frontend.copyDone(), expect: { name: 'CopyDone', type: 'c' }, parser: typed },
  { bytes: frontend.copyFail('aborted'), expect: { name: 'CopyFail', type: 'f', message: 'aborted' }, parser: typed },
  {
    bytes: frontend.functionCall(2345, ['x', null], [0], 1),
    expect: { name: 'FunctionCall', type: 'F', functionOid: 2345, argFormats: [0], args: [Buffer.from('x'), null], resultFormat: 1 },
    parser: typed,
  },
];

const be = () => new BackendParser();
const backendCases: Case<BackendParser>[] = [
  { bytes: backend.authenticationOk(), expect: { name: 'AuthenticationOk', type: 'R' }, parser: be },
  { bytes: backend.authenticationCleartextPassword(), expect: { name: 'AuthenticationCleartextPassword', type: 'R' }, parser: be },
  {
    bytes: backend.authenticationMD5Password(Buffer.from([1, 2, 3, 4])),
    expect: { name: 'AuthenticationMD5Password', type: 'R', salt: Buffer.from([1, 2, 3, 4]) },
    parser: be,
  },
  {
    bytes: backend.authenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']),
    expect: { name: 'AuthenticationSASL', type: 'R', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
    parser: be,
  },
  { bytes: backend.authenticationSASLContinue('r=abc,s=xyz,i=4096'), expect: { name: 'AuthenticationSASLContinue', type: 'R', data: Buffer.from('r=abc,s=xyz,i=4096') }, parser: be },
  { bytes: backend.authenticationSASLFinal('v=abc'), expect: { name: 'AuthenticationSASLFinal', type: 'R', data: Buffer.from('v=abc') }, parser: be },
  { bytes: backend.parameterStatus('server_version', '18.1'), expect: { name: 'ParameterStatus', type: 'S', parameter: 'server_version', value: '18.1' }, parser: be },
  { bytes: backend.backendKeyData(99, 12345), expect: { name: 'BackendKeyData', type: 'K', processId: 99, secretKey: Buffer.from([0, 0, 0x30, 0x39]) }, parser: be },
  { bytes: backend.backendKeyData(99, key8), expect: { name: 'BackendKeyData', type: 'K', processId: 99, secretKey: key8 }, parser: be },
  { bytes: backend.readyForQuery('I'), expect: { name: 'ReadyForQuery', type: 'Z', status: 'I' }, parser: be },
  { bytes: backend.readyForQuery('T'), expect: { name: 'ReadyForQuery', type: 'Z', status: 'T' }, parser: be },
  { bytes: backend.readyForQuery('E'), expect: { name: 'ReadyForQuery', type: 'Z', status: 'E' }, parser: be },
  {
    bytes: backend.rowDescription([
      { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeMod: -1, format: 0 },
      { name: 'ssn', tableOid: 4294967295, columnAttr: 2, typeOid: 25 },
    ]),
    expect: {
      name: 'RowDescription',
      type: 'T',
      fields: [
        { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeMod: -1, format: 0 },
        { name: 'ssn', tableOid: 4294967295, columnAttr: 2, typeOid: 25, typeSize: -1, typeMod: -1, format: 0 },
      ],
    },
    parser: be,
  },
  { bytes: backend.dataRow(['1', null, '', Buffer.from([0xff])]), expect: { name: 'DataRow', type: 'D', columnCount: 4 }, parser: be },
  { bytes: backend.commandComplete('SELECT 2'), expect: { name: 'CommandComplete', type: 'C', tag: 'SELECT 2' }, parser: be },
  { bytes: backend.emptyQueryResponse(), expect: { name: 'EmptyQueryResponse', type: 'I' }, parser: be },
  {
    bytes: backend.errorResponse({ severity: 'ERROR', code: '42501', message: 'denied by rule no-drop', detail: 'd', hint: 'h', position: 7 }),
    expect: {
      name: 'ErrorResponse',
      type: 'E',
      fields: { S: 'ERROR', V: 'ERROR', C: '42501', M: 'denied by rule no-drop', D: 'd', H: 'h', P: '7' },
      severity: 'ERROR',
      code: '42501',
      message: 'denied by rule no-drop',
    },
    parser: be,
  },
  {
    bytes: backend.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'waiting for approval' }),
    expect: {
      name: 'NoticeResponse',
      type: 'N',
      fields: { S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'waiting for approval' },
      severity: 'NOTICE',
      code: '00000',
      message: 'waiting for approval',
    },
    parser: be,
  },
  { bytes: backend.parseComplete(), expect: { name: 'ParseComplete', type: '1' }, parser: be },
  { bytes: backend.bindComplete(), expect: { name: 'BindComplete', type: '2' }, parser: be },
  { bytes: backend.closeComplete(), expect: { name: 'CloseComplete', type: '3' }, parser: be },
  { bytes: backend.noData(), expect: { name: 'NoData', type: 'n' }, parser: be },
  { bytes: backend.portalSuspended(), expect: { name: 'PortalSuspended', type: 's' }, parser: be },
  { bytes: backend.parameterDescription([23, 25]), expect: { name: 'ParameterDescription', type: 't', typeOids: [23, 25] }, parser: be },
  { bytes: backend.copyInResponse(0, [0, 0]), expect: { name: 'CopyInResponse', type: 'G', format: 0, columnFormats: [0, 0] }, parser: be },
  { bytes: backend.copyOutResponse(1, [1]), expect: { name: 'CopyOutResponse', type: 'H', format: 1, columnFormats: [1] }, parser: be },
  { bytes: backend.copyBothResponse(0, []), expect: { name: 'CopyBothResponse', type: 'W', format: 0, columnFormats: [] }, parser: be },
  { bytes: backend.copyData(Buffer.from('a\tb\n')), expect: { name: 'CopyData', type: 'd', data: Buffer.from('a\tb\n') }, parser: be },
  { bytes: backend.copyDone(), expect: { name: 'CopyDone', type: 'c' }, parser: be },
  {
    bytes: backend.notificationResponse(77, 'jobs', '{"id":1}'),
    expect: { name: 'NotificationResponse', type: 'A', processId: 77, channel: 'jobs', payload: '{"id":1}' },
    parser: be,
  },
  { bytes: backend.functionCallResponse('ok'), expect: { name: 'FunctionCallResponse', type: 'V', value: Buffer.from('ok') }, parser: be },
  { bytes: backend.functionCallResponse(null), expect: { name: 'FunctionCallResponse', type: 'V', value: null }, parser: be },
  {
    bytes: backend.negotiateProtocolVersion(0, ['_pq_.x']),
    expect: { name: 'NegotiateProtocolVersion', type: 'v', minorVersion: 0, unsupportedOptions: ['_pq_.x'] },
    parser: be,
  },
];

type AnyParser = { push(chunk: Buffer): Msg[]; readonly buffered: number };

function check<P extends AnyParser>(c: Case<P>, label: string): void {
  const { byteByByte } = checkSplits<Msg>(c.parser, c.bytes, c.expect, fieldsOf, label);
  assert.ok(byteByByte.raw.equals(c.bytes));
}

test('every frontend message round-trips, whole, split at every byte and byte by byte', () => {
  for (const [i, c] of frontendCases.entries()) check(c, `frontend #${i} ${String(c.expect.name)}`);
});

test('every backend message round-trips, whole, split at every byte and byte by byte', () => {
  for (const [i, c] of backendCases.entries()) check(c, `backend #${i} ${String(c.expect.name)}`);
});

test('a whole frontend session in one chunk: startup, then typed messages, each raw a view of the chunk', () => {
  const parts = [frontendCases[0]!.bytes, ...frontendCases.filter((c) => c.parser === typed).map((c) => c.bytes)];
  const chunk = Buffer.concat(parts);
  const msgs = new FrontendParser().push(chunk);
  assert.equal(msgs.length, parts.length);
  let off = 0;
  for (const [i, m] of msgs.entries()) {
    assert.equal(m.raw.buffer, chunk.buffer);
    assert.equal(m.raw.byteOffset, chunk.byteOffset + off);
    assert.ok(m.raw.equals(parts[i]!));
    off += parts[i]!.length;
  }
  assert.deepStrictEqual(
    msgs.map((m) => m.name),
    ['StartupMessage', ...frontendCases.filter((c) => c.parser === typed).map((c) => c.expect.name)],
  );
});

test('a session stream parses identically at every split point and in odd-sized chunks', () => {
  const chunk = Buffer.concat([frontendCases[0]!.bytes, ...frontendCases.filter((c) => c.parser === typed).map((c) => c.bytes)]);
  const expected = new FrontendParser().push(chunk).map(fieldsOf);
  for (let cut = 0; cut <= chunk.length; cut += 3) {
    const p = new FrontendParser();
    const got = [...p.push(chunk.subarray(0, cut)), ...p.push(chunk.subarray(cut))].map(fieldsOf);
    assert.deepStrictEqual(got, expected, `cut ${cut}`);
  }
  for (const size of [1, 2, 7, 64]) {
    const p = new FrontendParser();
    const got: Record<string, unknown>[] = [];
    for (let i = 0; i < chunk.length; i += size) got.push(...p.push(chunk.subarray(i, i + size)).map(fieldsOf));
    assert.deepStrictEqual(got, expected, `chunks of ${size}`);
  }
});

test('a backend stream parses identically at every split point; raws are views when whole', () => {
  const chunk = Buffer.concat(backendCases.map((c) => c.bytes));
  const whole = new BackendParser().push(chunk);
  assert.equal(whole.length, backendCases.length);
  for (const m of whole) assert.equal(m.raw.buffer, chunk.buffer);
  const expected = whole.map(fieldsOf);
  for (let cut = 0; cut <= chunk.length; cut++) {
    const p = new BackendParser();
    const got = [...p.push(chunk.subarray(0, cut)), ...p.push(chunk.subarray(cut))];
    assert.deepStrictEqual(got.map(fieldsOf), expected, `cut ${cut}`);
    assert.ok(Buffer.concat(got.map((m) => m.raw)).equals(chunk));
  }
});

test('DataRow values decode lazily as views and rebuild with serializeDataRow', () => {
  const bytes = backend.dataRow(['1', null, 'Zoë', '', Buffer.from([0, 0xff])]);
  const [m] = new BackendParser().push(bytes);
  assert.equal(m?.name, 'DataRow');
  const values = decodeDataRow(m);
  assert.deepStrictEqual(values, [Buffer.from('1'), null, Buffer.from('Zoë'), Buffer.alloc(0), Buffer.from([0, 0xff])]);
  assert.equal(values[0]!.buffer, bytes.buffer);
  const masked = serializeDataRow([values[0]!, null, '***', values[3]!, values[4]!]);
  assert.deepStrictEqual(decodeDataRow({ raw: masked }), [Buffer.from('1'), null, Buffer.from('***'), Buffer.alloc(0), Buffer.from([0, 0xff])]);
  assert.ok(serializeDataRow(values).equals(bytes));
  assert.ok(serializeDataRow([]).equals(Buffer.from([0x44, 0, 0, 0, 6, 0, 0])));
});

test('decodeDataRow validates what the parser left undecoded', () => {
  const good = backend.dataRow(['abc']);
  const bad = Buffer.from(good);
  bad.writeInt32BE(100, 7);
  const [m] = new BackendParser().push(bad);
  throwsProtocol(() => decodeDataRow(m!), /insufficient data/);
  const short = Buffer.from(good);
  short.writeInt32BE(1, 7);
  throwsProtocol(() => decodeDataRow({ raw: short }), /trailing bytes/);
  const negative = Buffer.from(good);
  negative.writeInt32BE(-2, 7);
  throwsProtocol(() => decodeDataRow({ raw: negative }), /invalid value length/);
});

test('commandRowCount reads counts from tags', () => {
  assert.equal(commandRowCount('INSERT 0 5'), 5);
  assert.equal(commandRowCount('UPDATE 3'), 3);
  assert.equal(commandRowCount('SELECT 10'), 10);
  assert.equal(commandRowCount('MERGE 2'), 2);
  assert.equal(commandRowCount('COPY 7'), 7);
  assert.equal(commandRowCount('CREATE TABLE'), undefined);
  assert.equal(commandRowCount('BEGIN'), undefined);
});

test('startup phase: SSLRequest keeps the parser in startup; expectStartup() restarts a TLS stream', () => {
  const p = new FrontendParser();
  assert.equal(p.inStartupPhase, true);
  assert.deepStrictEqual(p.push(frontend.sslRequest()).map((m) => m.name), ['SSLRequest']);
  assert.equal(p.inStartupPhase, true);
  p.expectStartup();
  const [m] = p.push(frontend.startupMessage({ user: 'a', database: 'b' }));
  assert.equal(m?.name, 'StartupMessage');
  assert.equal(p.inStartupPhase, false);
  assert.equal(p.push(frontend.query('select 1'))[0]?.name, 'Query');
  p.expectStartup();
  assert.equal(p.inStartupPhase, true);

  // Refused SSL: the client goes on in the clear with a startup packet.
  const q = new FrontendParser();
  const msgs = q.push(Buffer.concat([frontend.sslRequest(), frontend.startupMessage({ user: 'a' }), frontend.query('x')]));
  assert.deepStrictEqual(msgs.map((x) => x.name), ['SSLRequest', 'StartupMessage', 'Query']);
});

test('bytes buffered before the TLS handshake are refused (CVE-2021-23214)', () => {
  const p = new FrontendParser();
  const startupBytes = frontend.startupMessage({ user: 'a' });
  const msgs = p.push(Buffer.concat([frontend.sslRequest(), startupBytes.subarray(0, 6)]));
  assert.deepStrictEqual(msgs.map((m) => m.name), ['SSLRequest']);
  assert.equal(p.buffered, 6);
  throwsProtocol(() => p.expectStartup(), /unencrypted data/);
});

test('malformed frontend input throws ProtocolError with a clear message and the parser stays failed', () => {
  const typedMsg = (type: string, body: Buffer, len = body.length + 4): Buffer => {
    const b = Buffer.alloc(5 + body.length);
    b[0] = type.charCodeAt(0);
    b.writeInt32BE(len, 1);
    body.copy(b, 5);
    return b;
  };
  const cases: [string, Buffer, RegExp, boolean?][] = [
    ['negative length', typedMsg('Q', Buffer.from('x\0'), -5), /invalid message length -5/],
    ['length below 4', typedMsg('Q', Buffer.alloc(0), 3), /invalid message length 3/],
    ['unknown type byte', typedMsg('?', Buffer.from('x\0')), /invalid frontend message type '\?'/],
    ['NUL type byte', typedMsg('\0', Buffer.alloc(0)), /invalid frontend message type 0x00/],
    ['query without NUL', typedMsg('Q', Buffer.from('select 1')), /missing string terminator/],
    ['query with trailing bytes', typedMsg('Q', Buffer.from('select 1\0x')), /trailing bytes/],
    ['sync with a body', typedMsg('S', Buffer.from('x')), /Sync message: trailing bytes/],
    ['describe of unknown target', typedMsg('D', Buffer.from('Xname\0')), /invalid target 'X'/],
    ['bind count exceeding message', typedMsg('B', Buffer.from([0, 0, 0, 0, 0xff, 0xff])), /count exceeds message length/],
    ['bind value length -2', typedMsg('B', Buffer.from([0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0])), /invalid value length -2/],
    ['bind value longer than message', typedMsg('B', Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0])), /insufficient data/],
    ['bind with mismatched formats', frontend.bind('', '', ['a', 'b', 'c'], [0, 1]), /2 parameter formats for 3 parameters/],
    ['parse truncated oid list', typedMsg('P', Buffer.from([0, 0x41, 0, 0, 2, 0, 0, 0, 23, 0])), /count exceeds|insufficient/],
    ['execute missing maxRows', typedMsg('E', Buffer.from('p\0')), /insufficient data/],
    ['oversized control message', typedMsg('S', Buffer.alloc(0), 20000), /too large/],
  ];
  for (const [label, bytes, pattern] of cases) {
    const p = new FrontendParser({ typed: true });
    throwsProtocol(() => p.push(bytes), pattern);
    throwsProtocol(() => p.push(frontend.sync()));
    assert.ok(p.error, label);
  }
});

test('an oversized declared length fails at the header, before its data arrives', () => {
  const p = new FrontendParser({ typed: true, maxMessageBytes: 1024 });
  const header = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]);
  throwsProtocol(() => p.push(header), /too large/);
  const q = new FrontendParser({ typed: true, maxMessageBytes: 1024 });
  assert.deepStrictEqual(q.push(header.subarray(0, 2)), []);
  throwsProtocol(() => q.push(header.subarray(2)), /too large/);
  const ok = new FrontendParser({ typed: true, maxMessageBytes: 1024 });
  assert.equal(ok.push(frontend.query('x'.repeat(1018)))[0]?.name, 'Query');
  throwsProtocol(() => new FrontendParser({ typed: true, maxMessageBytes: 1024 }).push(frontend.query('x'.repeat(1019))), /too large/);
});

test('malformed startup packets', () => {
  const packet = (code: number, body: Buffer = Buffer.alloc(0), len = 8 + body.length): Buffer => {
    const b = Buffer.alloc(8 + body.length);
    b.writeInt32BE(len, 0);
    b.writeUInt32BE(code, 4);
    body.copy(b, 8);
    return b;
  };
  throwsProtocol(() => new FrontendParser().push(packet(196608, Buffer.alloc(0), 7)), /invalid length of startup packet/);
  throwsProtocol(() => new FrontendParser().push(packet(196608, Buffer.alloc(0), 10001)), /invalid length of startup packet/);
  throwsProtocol(() => new FrontendParser().push(packet(196608, Buffer.alloc(0), -1)), /invalid length of startup packet/);
  throwsProtocol(() => new FrontendParser().push(packet(0x00020000)), /unsupported frontend protocol 2\.0/);
  throwsProtocol(() => new FrontendParser().push(packet(0x00040001)), /unsupported frontend protocol 4\.1/);
  throwsProtocol(() => new FrontendParser().push(packet(80877103, Buffer.alloc(4))), /invalid length/);
  throwsProtocol(() => new FrontendParser().push(packet(80877102, Buffer.alloc(4))), /cancel request/);
  throwsProtocol(() => new FrontendParser().push(packet(196608, Buffer.from('user\0'))), /missing value for parameter "user"/);
  throwsProtocol(() => new FrontendParser().push(packet(196608, Buffer.from('user\0a'))), /missing string terminator/);
  throwsProtocol(() => new FrontendParser().push(packet(196608, Buffer.from('user\0a\0\0x'))), /trailing bytes/);
  assert.equal(new FrontendParser().push(packet(196608, Buffer.from('\0')))[0]?.name, 'StartupMessage');
});

test('startup parameters cannot pollute prototypes', () => {
  const [m] = new FrontendParser().push(frontend.startupMessage({ ['__proto__']: 'x', constructor: 'y', user: 'u' }));
  assert.equal(m?.name, 'StartupMessage');
  if (m?.name !== 'StartupMessage') return;
  assert.equal(m.params['__proto__'], 'x');
  assert.equal(Object.getPrototypeOf(m.params), null);
  assert.equal(({} as Record<string, unknown>)['x'], undefined);
});

test('backend: encryption response byte, and data after it is refused (CVE-2021-23222)', () => {
  const p = new BackendParser();
  p.expectEncryptionResponse();
  const [m] = p.push(Buffer.from('S'));
  assert.deepStrictEqual(fieldsOf(m!), { name: 'EncryptionResponse', type: 'S', accepted: true });
  const n = new BackendParser();
  n.expectEncryptionResponse();
  assert.deepStrictEqual(n.push(Buffer.from('N')).map(fieldsOf), [{ name: 'EncryptionResponse', type: 'N', accepted: false }]);
  assert.equal(n.push(backend.authenticationOk())[0]?.name, 'AuthenticationOk');
  const bad = new BackendParser();
  bad.expectEncryptionResponse();
  throwsProtocol(() => bad.push(Buffer.concat([Buffer.from('S'), backend.authenticationOk()])), /unencrypted data after SSL response/);
  const junk = new BackendParser();
  junk.expectEncryptionResponse();
  throwsProtocol(() => junk.push(Buffer.from('E')), /invalid encryption response/);
});

test('malformed backend input throws ProtocolError', () => {
  const raw = (type: string, body: Buffer, len = body.length + 4): Buffer => {
    const b = Buffer.alloc(5 + body.length);
    b[0] = type.charCodeAt(0);
    b.writeInt32BE(len, 1);
    body.copy(b, 5);
    return b;
  };
  const cases: [Buffer, RegExp][] = [
    [raw('?', Buffer.alloc(0)), /invalid backend message type/],
    [raw('Z', Buffer.from('Q')), /invalid transaction status 'Q'/],
    [raw('Z', Buffer.from('II')), /trailing bytes/],
    [raw('R', Buffer.from([0, 0, 0, 99])), /unsupported authentication request 99/],
    [raw('R', Buffer.from([0, 0, 0, 5, 1, 2])), /insufficient data/],
    [raw('T', Buffer.from([0, 1, 0x61])), /count exceeds|insufficient|terminator/],
    [raw('E', Buffer.from('Mmsg')), /missing string terminator/],
    [raw('K', Buffer.from([0, 0, 0, 1])), /BackendKeyData/],
    [raw('D', Buffer.alloc(0)), /DataRow/],
    [raw('C', Buffer.alloc(0), 2), /invalid message length 2/],
    [raw('1', Buffer.from('x')), /trailing bytes/],
  ];
  for (const [bytes, pattern] of cases) throwsProtocol(() => new BackendParser().push(bytes), pattern);
  throwsProtocol(() => new BackendParser({ maxMessageBytes: 100 }).push(Buffer.from([0x44, 0x10, 0, 0, 0])), /too large/);
});

test('serializers refuse NUL inside string fields; error texts drop it', () => {
  assert.throws(() => frontend.query('select 1\0; drop table x'), RangeError);
  assert.throws(() => frontend.startupMessage({ user: 'a\0b' }), RangeError);
  const [m] = new BackendParser().push(backend.errorResponse({ severity: 'ERROR', code: '42501', message: 'table "a\0b" denied', detail: 'x\0' }));
  assert.ok(m?.name === 'ErrorResponse');
  assert.equal(m.message, 'table "ab" denied');
  assert.equal(m.fields.D, 'x');
});

test('parser options are validated', () => {
  assert.throws(() => new FrontendParser({ maxMessageBytes: 2 }), RangeError);
  assert.throws(() => new FrontendParser({ maxMessageBytes: 2 ** 31 }), RangeError);
  assert.throws(() => new BackendParser({ maxMessageBytes: 1.5 }), RangeError);
});
