import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Capability,
  ClientParser,
  ColumnFlag,
  ColumnType,
  Command,
  PacketParser,
  ProtocolError,
  ResponseReader,
  ServerStatus,
  client,
  decodeBinaryRow,
  decodeTextRow,
  encodeBinaryRow,
  encodePacket,
  parseAuthPhasePacket,
  parseColumnDefinition,
  parseEof,
  parseErr,
  parseGreeting,
  parseOk,
  parseStmtPrepareOk,
  server,
  type BinaryValue,
  type ClientMessage,
  type ClientPhase,
  type Packet,
  type ResponseKind,
  type ValueType,
} from '../../src/engines/mysql/protocol.js';
import { chunks, cleanProtocolError, mutate, mutation } from '../support/codec.js';

const MAX = 4096;
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const CAPS = (Capability.LONG_PASSWORD | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.TRANSACTIONS | Capability.MULTI_RESULTS | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS) >>> 0;
const capsArb = fc.constantFrom(CAPS, (CAPS | Capability.DEPRECATE_EOF) >>> 0, (CAPS | Capability.QUERY_ATTRIBUTES | Capability.SESSION_TRACK) >>> 0, (CAPS | Capability.DEPRECATE_EOF | Capability.SESSION_TRACK) >>> 0);

const text = fc.string({ maxLength: 40, unit: 'grapheme' }).map((s) => s.replaceAll('\0', ''));
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

/** Runs `fn`; it must return or throw a clean ProtocolError. */
function parsesOrProtocolError<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    cleanProtocolError(e);
    return undefined;
  }
}

/** Feeds chunks: messages or ProtocolError, and every byte is in a message or buffered. */
function feed(p: ClientParser, parts: Buffer[]): { messages: ClientMessage[]; error?: ProtocolError } {
  const messages: ClientMessage[] = [];
  let fed = 0;
  for (const part of parts) {
    try {
      messages.push(...p.push(part));
    } catch (e) {
      return { messages, error: cleanProtocolError(e) };
    }
    fed += part.length;
    assert.ok(p.buffered <= MAX + 64, `buffered ${p.buffered} within the cap`);
    assert.equal(messages.reduce((n, m) => n + m.raw.length, 0) + p.buffered, fed, 'every byte is in a message or buffered');
  }
  return { messages };
}

const phaseArb = fc.constantFrom<ClientPhase>('handshake', 'auth', 'command', 'local_infile');

function parserFor(phase: ClientPhase, caps: number, paramCounts: number[] = []): ClientParser {
  const p = new ClientParser({ phase, capabilities: caps, maxPayloadBytes: MAX });
  paramCounts.forEach((n, i) => p.registerStatement(i + 1, n));
  return p;
}

test('ClientParser: random bytes yield messages or ProtocolError, in every phase', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 }), phaseArb, capsArb, (input, cuts, phase, caps) => {
      feed(parserFor(phase, caps, [0, 1, 3]), chunks(Buffer.from(input), cuts));
    }),
    { numRuns: RUNS * 2 },
  );
});

const COMMANDS = [Command.QUIT, Command.INIT_DB, Command.QUERY, Command.FIELD_LIST, Command.STATISTICS, Command.PING, Command.CHANGE_USER, Command.RESET_CONNECTION, Command.SET_OPTION, Command.STMT_PREPARE, Command.STMT_EXECUTE, Command.STMT_SEND_LONG_DATA, Command.STMT_CLOSE, Command.STMT_RESET, Command.STMT_FETCH, Command.SHUTDOWN];

test('ClientParser: random bodies after each command byte exercise the command decoders', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...COMMANDS),
      fc.uint8Array({ maxLength: 80 }),
      capsArb,
      fc.array(fc.nat({ max: 5 }), { maxLength: 3 }),
      fc.nat({ max: 4 }),
      (cmd, body, caps, counts, id) => {
        // Aim COM_STMT_* at registered statements most of the time.
        const b = Buffer.from(body);
        if (b.length >= 4 && cmd >= Command.STMT_EXECUTE && cmd <= Command.STMT_FETCH) b.writeUInt32LE(id, 0);
        feed(parserFor('command', caps, counts), [encodePacket(Buffer.concat([Buffer.from([cmd]), b]), 0)]);
      },
    ),
    { numRuns: RUNS * 3 },
  );
});

test('ClientParser: random handshake responses and SSL requests', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 90 }), fc.boolean(), (caps, rest, p41) => {
      const head = Buffer.alloc(32);
      head.writeUInt32LE(p41 ? (caps | Capability.PROTOCOL_41) >>> 0 : caps, 0);
      feed(new ClientParser(), [encodePacket(Buffer.concat([head, Buffer.from(rest)]), 1)]);
    }),
    { numRuns: RUNS * 2 },
  );
});

// Valid values per binary type, for parameters and rows.
const valueFor = (t: ValueType): fc.Arbitrary<BinaryValue> => {
  const u = (t.flags & ColumnFlag.UNSIGNED) !== 0;
  switch (t.type) {
    case ColumnType.TINY:
      return u ? fc.integer({ min: 0, max: 255 }) : fc.integer({ min: -128, max: 127 });
    case ColumnType.SHORT:
    case ColumnType.YEAR:
      return u ? fc.integer({ min: 0, max: 65535 }) : fc.integer({ min: -32768, max: 32767 });
    case ColumnType.LONG:
    case ColumnType.INT24:
      return u ? fc.integer({ min: 0, max: 0xffffffff }) : fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case ColumnType.LONGLONG:
      return u ? fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) : fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case ColumnType.FLOAT:
      return fc.float({ noNaN: true });
    case ColumnType.DOUBLE:
      return fc.double({ noNaN: true });
    case ColumnType.DATE:
    case ColumnType.DATETIME:
    case ColumnType.TIMESTAMP:
      return fc.record({
        year: fc.integer({ min: 0, max: 9999 }),
        month: fc.integer({ min: 0, max: 12 }),
        day: fc.integer({ min: 0, max: 31 }),
        hour: fc.integer({ min: 0, max: 23 }),
        minute: fc.integer({ min: 0, max: 59 }),
        second: fc.integer({ min: 0, max: 59 }),
        microsecond: fc.integer({ min: 0, max: 999999 }),
      });
    case ColumnType.TIME:
      return fc.record({
        negative: fc.boolean(),
        days: fc.integer({ min: 0, max: 34 }),
        hours: fc.integer({ min: 0, max: 23 }),
        minutes: fc.integer({ min: 0, max: 59 }),
        seconds: fc.integer({ min: 0, max: 59 }),
        microseconds: fc.integer({ min: 0, max: 999999 }),
      });
    default:
      return bytes;
  }
};
const TYPES = [ColumnType.TINY, ColumnType.SHORT, ColumnType.YEAR, ColumnType.INT24, ColumnType.LONG, ColumnType.LONGLONG, ColumnType.FLOAT, ColumnType.DOUBLE, ColumnType.DATE, ColumnType.DATETIME, ColumnType.TIMESTAMP, ColumnType.TIME, ColumnType.NEWDECIMAL, ColumnType.VAR_STRING, ColumnType.STRING, ColumnType.BLOB, ColumnType.JSON, ColumnType.ENUM, ColumnType.BIT, ColumnType.GEOMETRY];
const valueType: fc.Arbitrary<ValueType> = fc.record({ type: fc.constantFrom(...TYPES), flags: fc.constantFrom(0, ColumnFlag.UNSIGNED) });
const typedValue = valueType.chain((t) => fc.tuple(fc.constant(t), fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 4, arbitrary: valueFor(t) })));

/** Normalizes what cannot round-trip exactly: zero-length date/time fields collapse. */
function normalize(t: ValueType, v: BinaryValue): BinaryValue {
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return t.type === ColumnType.FLOAT && typeof v === 'number' ? Math.fround(v) : v;
  if ('days' in v) return v.microseconds || v.negative || v.days || v.hours || v.minutes || v.seconds ? { ...v } : { ...v, negative: false };
  return { ...v };
}

test('binary rows round-trip for random columns and values', () => {
  fc.assert(
    fc.property(fc.array(typedValue, { maxLength: 20 }), (cols) => {
      const types = cols.map((c) => c[0]);
      const values = cols.map(([t, v]) => normalize(t, v));
      const payload = encodeBinaryRow(types, values);
      const back = decodeBinaryRow(payload, types);
      assert.deepStrictEqual(back, values);
      assert.ok(encodeBinaryRow(types, back).equals(payload));
    }),
    { numRuns: RUNS },
  );
});

test('binary and text row decoders: random payloads decode or throw ProtocolError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.array(valueType, { maxLength: 8 }), fc.option(fc.nat({ max: 8 })), (payload, types, count) => {
      const b = Buffer.from(payload);
      parsesOrProtocolError(() => decodeBinaryRow(b, types));
      parsesOrProtocolError(() => decodeTextRow(b, count ?? undefined));
    }),
    { numRuns: RUNS * 2 },
  );
});

/** A valid client command payload. */
const commandArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(client.ping()),
  fc.constant(client.statistics()),
  fc.constant(client.resetConnection()),
  text.map((t) => client.query(t)),
  text.map((t) => client.initDb(t)),
  text.map((t) => client.stmtPrepare(t)),
  fc.tuple(text, text).map(([t, w]) => client.fieldList(t, w)),
  fc.nat({ max: 1 }).map((o) => client.setOption(o)),
  // Long data only for statements without parameters: the generated executions carry every value.
  fc.tuple(fc.nat({ max: 2 }), fc.nat({ max: 3 }), bytes).map(([s, p, d]) => client.stmtSendLongData(s, p, d)),
  fc.nat({ max: 3 }).map((s) => client.stmtReset(s)),
  fc.tuple(fc.nat({ max: 3 }), fc.nat()).map(([s, n]) => client.stmtFetch(s, n)),
  fc.array(typedValue, { minLength: 3, maxLength: 3 }).map((ps) => client.stmtExecute({ statementId: 3, params: ps.map(([t, v]) => ({ type: t.type, unsigned: (t.flags & ColumnFlag.UNSIGNED) !== 0, value: v })) })),
);
const commandStream = fc.array(commandArb, { maxLength: 12 }).map((cmds) => Buffer.concat([...cmds.map((c) => encodePacket(c, 0)), encodePacket(client.quit(), 0)]));

test('ClientParser: valid command streams parse the same whatever the chunking; mutated ones fail cleanly', () => {
  fc.assert(
    fc.property(commandStream, fc.array(fc.nat(), { maxLength: 8 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (stream, cuts, muts) => {
      const strip = (ms: ClientMessage[]) => ms.map((m) => ({ ...m, raw: undefined, payload: undefined, paramsRaw: undefined }));
      const whole = feed(parserFor('command', CAPS, [0, 0, 3]), [stream]);
      assert.equal(whole.error, undefined);
      assert.equal(whole.messages.at(-1)?.name, 'ComQuit');
      const split = feed(parserFor('command', CAPS, [0, 0, 3]), chunks(stream, cuts));
      assert.equal(split.error, undefined);
      assert.deepStrictEqual(strip(split.messages), strip(whole.messages));
      feed(parserFor('command', CAPS, [0, 0, 3]), chunks(mutate(stream, muts), cuts));
    }),
    { numRuns: RUNS },
  );
});

test('server packet parsers: random payloads parse or throw ProtocolError', () => {
  const parsers: ((p: Packet, caps: number) => unknown)[] = [
    (p) => parseGreeting(p),
    parseOk,
    parseErr,
    parseEof,
    parseAuthPhasePacket,
    (p) => parseColumnDefinition(p),
    (p) => parseColumnDefinition(p, true),
    (p) => parseStmtPrepareOk(p),
  ];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat({ max: 255 }), capsArb, fc.integer({ min: 0, max: 0xffffffff }), (payload, first, caps, rawCaps) => {
      const b = Buffer.from(payload);
      if (b.length > 0) b[0] = first;
      const p: Packet = { sequenceId: 1, lastSequenceId: 1, payload: b, raw: encodePacket(b, 1) };
      for (const parse of parsers) {
        parsesOrProtocolError(() => parse(p, caps));
        parsesOrProtocolError(() => parse(p, rawCaps));
      }
    }),
    { numRuns: RUNS * 3 },
  );
});

test('server greetings: mutated valid HandshakeV10 packets parse or throw ProtocolError', () => {
  fc.assert(
    fc.property(text, fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(CAPS, (CAPS & ~Capability.LONG_PASSWORD) >>> 0), fc.array(mutation, { maxLength: 4 }), (version, id, caps, muts) => {
      const hs = server.handshakeV10({ serverVersion: version, connectionId: id, authPluginData: Buffer.from('abcdefghijklmnopqrst'), capabilities: caps, mariadbCapabilities: 0x1d });
      const m = mutate(hs, muts);
      parsesOrProtocolError(() => parseGreeting({ sequenceId: 0, lastSequenceId: 0, payload: m, raw: encodePacket(m, 0) }));
    }),
    { numRuns: RUNS },
  );
});

const col = fc.record({ name: text, type: fc.constantFrom(...TYPES), flags: fc.constantFrom(0, ColumnFlag.UNSIGNED), orgTable: text });
const responseArb = fc.tuple(capsArb, fc.array(col, { minLength: 1, maxLength: 4 }), fc.nat({ max: 3 }), fc.boolean()).chain(([caps, cols, rowCount, more]) =>
  fc.tuple(
    fc.constant(caps),
    fc.constant(cols),
    fc.array(fc.tuple(...cols.map((c) => fc.oneof(fc.constant(null), valueFor({ type: c.type, flags: c.flags })))), { minLength: rowCount, maxLength: rowCount }),
    fc.constant(more),
  ),
);

test('ResponseReader: valid binary and text responses always end; mutated ones yield messages or ProtocolError', () => {
  fc.assert(
    fc.property(responseArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), ([caps, cols, rows, more], muts, cuts) => {
      const end = { statusFlags: more ? ServerStatus.MORE_RESULTS_EXISTS : 0 };
      const bin = [...server.binaryResultSet({ columns: cols, rows: rows as BinaryValue[][], ...end }, caps), ...(more ? [server.ok({}, caps)] : [])];
      const txt = [...server.textResultSet({ columns: cols, rows: rows.map((r) => r.map((v) => (v === null ? null : Buffer.isBuffer(v) ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)))), ...end }, caps), ...(more ? [server.ok({}, caps)] : [])];
      for (const [kind, payloads] of [['execute', bin], ['query', txt]] as [ResponseKind, Buffer[]][]) {
        const stream = Buffer.concat(payloads.map((p, i) => encodePacket(p, (i + 1) & 0xff)));
        const rr = new ResponseReader(kind, { capabilities: caps });
        const parser = new PacketParser();
        for (const part of chunks(stream, cuts)) {
          for (const p of parser.push(part)) {
            const m = rr.read(p);
            if (m.name === 'BinaryRow') rr.decodeBinaryRow(m);
            if (m.name === 'TextRow') rr.decodeTextRow(m);
          }
        }
        assert.ok(rr.done, `${kind} response ends`);
        // Mutated: every packet is a message or a clean ProtocolError.
        const broken = mutate(stream, muts);
        const rr2 = new ResponseReader(kind, { capabilities: caps });
        const parser2 = new PacketParser({ maxPayloadBytes: MAX });
        parsesOrProtocolError(() => {
          for (const part of chunks(broken, cuts)) {
            for (const p of parser2.push(part)) {
              const m = rr2.read(p);
              if (m.name === 'BinaryRow') parsesOrProtocolError(() => rr2.decodeBinaryRow(m));
              if (m.name === 'TextRow') parsesOrProtocolError(() => rr2.decodeTextRow(m));
            }
          }
        });
      }
    }),
    { numRuns: RUNS },
  );
});

test('ResponseReader: random packet sequences for every response kind', () => {
  const kinds: ResponseKind[] = ['query', 'execute', 'prepare', 'field_list', 'statistics', 'change_user', 'simple'];
  fc.assert(
    fc.property(fc.constantFrom(...kinds), capsArb, fc.array(fc.tuple(fc.nat({ max: 255 }), fc.uint8Array({ maxLength: 40 })), { minLength: 1, maxLength: 8 }), (kind, caps, packets) => {
      const rr = new ResponseReader(kind, { capabilities: caps });
      parsesOrProtocolError(() => {
        for (const [first, rest] of packets) {
          const payload = Buffer.concat([Buffer.from([first]), Buffer.from(rest)]);
          rr.read({ sequenceId: 1, lastSequenceId: 1, payload, raw: encodePacket(payload, 1) });
        }
      });
    }),
    { numRuns: RUNS * 2 },
  );
});

test('a huge declared length never allocates: the header alone is refused', () => {
  fc.assert(
    fc.property(fc.integer({ min: MAX + 1, max: 0xffffff }), fc.nat({ max: 255 }), (len, seq) => {
      const header = Buffer.from([len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, seq]);
      const p = new PacketParser({ maxPayloadBytes: MAX });
      assert.throws(() => p.push(header), ProtocolError);
      assert.equal(p.buffered, 0);
      const c = new ClientParser({ phase: 'command', capabilities: CAPS, maxPayloadBytes: MAX });
      assert.throws(() => c.push(header), ProtocolError);
    }),
    { numRuns: RUNS },
  );
});
