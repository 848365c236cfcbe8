import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackendParser, FrontendParser, ProtocolError, backend, decodeDataRow, frontend, type BackendMessage, type FrontendMessage } from '../../src/engines/postgres/protocol.js';
import { chunks, cleanProtocolError, mutate, mutation } from '../support/codec.js';

const MAX = 4096;
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);

const text = fc.string({ maxLength: 40, unit: 'grapheme' }).map((s) => s.replaceAll('\0', ''));
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const value = fc.oneof(fc.constant(null), bytes);

/** A valid typed frontend message. */
const frontendMessage: fc.Arbitrary<Buffer> = fc.oneof(
  text.map((q) => frontend.query(q)),
  fc.tuple(text, text, fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 4 })).map(([n, q, t]) => frontend.parse(n, q, t)),
  fc
    .tuple(text, text, fc.array(value, { maxLength: 4 }), fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 1 }))
    .map(([p, s, v, f]) => frontend.bind(p, s, v, f, f)),
  fc.tuple(fc.constantFrom<'S' | 'P'>('S', 'P'), text).map(([t, n]) => frontend.describe(t, n)),
  fc.tuple(text, fc.integer()).map(([p, n]) => frontend.execute(p, n)),
  fc.constant(frontend.sync()),
  fc.constant(frontend.flush()),
  fc.tuple(fc.constantFrom<'S' | 'P'>('S', 'P'), text).map(([t, n]) => frontend.close(t, n)),
  text.map((p) => frontend.password(p)),
  bytes.map((d) => frontend.copyData(d)),
  fc.constant(frontend.copyDone()),
  text.map((m) => frontend.copyFail(m)),
  fc.tuple(fc.nat(), fc.array(value, { maxLength: 3 })).map(([oid, a]) => frontend.functionCall(oid, a)),
);

const frontendStream = fc
  .tuple(fc.dictionary(text.filter((s) => s !== ''), text, { maxKeys: 3 }), fc.array(frontendMessage, { maxLength: 12 }))
  .map(([params, msgs]) => Buffer.concat([frontend.startupMessage(params), ...msgs, frontend.terminate()]));

const backendMessage: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(backend.authenticationOk()),
  fc.constant(backend.authenticationCleartextPassword()),
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((s) => backend.authenticationMD5Password(s)),
  fc.array(text.filter((s) => s !== ''), { maxLength: 3 }).map((m) => backend.authenticationSASL(m)),
  bytes.map((d) => backend.authenticationSASLContinue(d)),
  fc.tuple(text, text).map(([k, v]) => backend.parameterStatus(k, v)),
  fc.tuple(fc.integer(), fc.integer()).map(([p, k]) => backend.backendKeyData(p, k)),
  fc.constantFrom<'I' | 'T' | 'E'>('I', 'T', 'E').map((s) => backend.readyForQuery(s)),
  fc.array(fc.record({ name: text, typeOid: fc.nat({ max: 0xffffffff }), tableOid: fc.nat({ max: 0xffffffff }), columnAttr: fc.integer({ min: -32768, max: 32767 }) }), { maxLength: 4 }).map((f) =>
    backend.rowDescription(f),
  ),
  fc.array(value, { maxLength: 5 }).map((v) => backend.dataRow(v)),
  text.map((t) => backend.commandComplete(t)),
  fc.constant(backend.emptyQueryResponse()),
  fc.tuple(text, text).map(([m, d]) => backend.errorResponse({ severity: 'ERROR', code: '42501', message: m, detail: d })),
  text.map((m) => backend.noticeResponse({ severity: 'NOTICE', code: '00000', message: m })),
  fc.constantFrom(backend.parseComplete(), backend.bindComplete(), backend.closeComplete(), backend.noData(), backend.portalSuspended(), backend.copyDone()),
  fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 4 }).map((t) => backend.parameterDescription(t)),
  fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 4 }).map((f) => backend.copyOutResponse(0, f)),
  bytes.map((d) => backend.copyData(d)),
  fc.tuple(fc.integer(), text, text).map(([p, c, m]) => backend.notificationResponse(p, c, m)),
  value.map((v) => backend.functionCallResponse(v)),
);
const backendStream = fc.array(backendMessage, { maxLength: 16 }).map((m) => Buffer.concat(m));

type Parser = { push(c: Buffer): (FrontendMessage | BackendMessage)[]; readonly buffered: number };

/**
 * Feeds the chunks; the parser must only return messages or throw ProtocolError. Every byte is
 * accounted for: the messages' raws plus what is buffered are exactly the input consumed so far.
 */
function feed(p: Parser, parts: Buffer[], max: number): { messages: (FrontendMessage | BackendMessage)[]; error?: ProtocolError } {
  const messages: (FrontendMessage | BackendMessage)[] = [];
  let fed = 0;
  for (const part of parts) {
    try {
      messages.push(...p.push(part));
    } catch (e) {
      return { messages, error: cleanProtocolError(e) };
    }
    fed += part.length;
    assert.ok(p.buffered <= Math.max(max, 10000), `buffered ${p.buffered} within the cap`);
    const consumed = messages.reduce((n, m) => n + m.raw.length, 0);
    assert.equal(consumed + p.buffered, fed, 'every byte is in a message or buffered');
  }
  return { messages };
}

test('FrontendParser: random bytes yield messages or ProtocolError, in both phases', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (input, cuts, typed) => {
      const buf = Buffer.from(input);
      feed(new FrontendParser({ maxMessageBytes: MAX, typed }), chunks(buf, cuts), MAX);
    }),
    { numRuns: RUNS * 2 },
  );
});

test('FrontendParser: random bytes after a valid type byte and length exercise the decoders', () => {
  const types = 'QPBDESHCXpdcfF';
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 80 }), fc.integer({ min: -4, max: 4 }), (type, body, skew) => {
      const b = Buffer.alloc(5 + body.length);
      b[0] = type.charCodeAt(0);
      b.writeInt32BE(body.length + 4 + skew, 1);
      b.set(body, 5);
      feed(new FrontendParser({ maxMessageBytes: MAX, typed: true }), [b], MAX);
    }),
    { numRuns: RUNS * 2 },
  );
});

test('FrontendParser: valid streams parse the same whatever the chunking', () => {
  fc.assert(
    fc.property(frontendStream, fc.array(fc.nat(), { maxLength: 8 }), (stream, cuts) => {
      const whole = feed(new FrontendParser({ maxMessageBytes: 1 << 20 }), [stream], 1 << 20);
      assert.equal(whole.error, undefined);
      const split = feed(new FrontendParser({ maxMessageBytes: 1 << 20 }), chunks(stream, cuts), 1 << 20);
      assert.equal(split.error, undefined);
      assert.deepStrictEqual(
        split.messages.map((m) => ({ ...m })),
        whole.messages.map((m) => ({ ...m })),
      );
      assert.equal(whole.messages.at(-1)?.name, 'Terminate');
    }),
    { numRuns: RUNS },
  );
});

test('FrontendParser: mutated valid streams yield messages or ProtocolError, never anything else', () => {
  fc.assert(
    fc.property(frontendStream, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), (stream, muts, cuts) => {
      const input = mutate(stream, muts);
      feed(new FrontendParser({ maxMessageBytes: MAX }), chunks(input, cuts), MAX);
    }),
    { numRuns: RUNS * 2 },
  );
});

test('BackendParser: random bytes yield messages or ProtocolError; DataRows decode or throw ProtocolError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 }), (input, cuts) => {
      const { messages } = feed(new BackendParser({ maxMessageBytes: MAX }), chunks(Buffer.from(input), cuts), MAX);
      for (const m of messages) if (m.name === 'DataRow') decodeOrProtocolError(m);
    }),
    { numRuns: RUNS * 2 },
  );
});

function decodeOrProtocolError(m: { raw: Buffer }): void {
  try {
    decodeDataRow(m);
  } catch (e) {
    if (!(e instanceof ProtocolError) || e.cause !== undefined) throw e;
  }
}

test('BackendParser: valid streams parse the same whatever the chunking; mutated ones fail cleanly', () => {
  fc.assert(
    fc.property(backendStream, fc.array(fc.nat(), { maxLength: 8 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (stream, cuts, muts) => {
      const whole = feed(new BackendParser(), [stream], 1 << 30);
      assert.equal(whole.error, undefined);
      const split = feed(new BackendParser(), chunks(stream, cuts), 1 << 30);
      assert.deepStrictEqual(
        split.messages.map((m) => ({ ...m })),
        whole.messages.map((m) => ({ ...m })),
      );
      for (const m of whole.messages) if (m.name === 'DataRow') decodeDataRow(m);
      const broken = feed(new BackendParser({ maxMessageBytes: MAX }), chunks(mutate(stream, muts), cuts), MAX);
      for (const m of broken.messages) if (m.name === 'DataRow') decodeOrProtocolError(m);
    }),
    { numRuns: RUNS },
  );
});

test('a huge declared length never allocates: the header alone is refused', () => {
  fc.assert(
    fc.property(fc.integer({ min: MAX, max: 0x7fffffff }), fc.constantFrom(...'QPBdF'), (len, type) => {
      const header = Buffer.alloc(5);
      header[0] = type.charCodeAt(0);
      header.writeInt32BE(len, 1);
      const p = new FrontendParser({ maxMessageBytes: MAX, typed: true });
      assert.throws(() => p.push(header), ProtocolError);
      assert.equal(p.buffered, 0);
    }),
    { numRuns: RUNS },
  );
});
