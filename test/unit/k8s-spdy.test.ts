import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createDeflate, createInflate, deflateSync, inflateSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  FLAG_FIN, FLAG_UNIDIRECTIONAL, GOAWAY, HEADERS, HeaderDeflater, MAX_COMPRESSED_HEADERS, MAX_HEADER_BLOCKS, MAX_CONTROL_FRAME, MAX_DATA_FRAME, PING, RST_STREAM, SETTINGS,
  SPDY_DICTIONARY, SYN_REPLY, SYN_STREAM, SpdyEncoder, SpdyParser, WINDOW_UPDATE, decodeHeaderBlock, encodeHeaderBlock, headerValue, type SpdyFrame, type SpdyHeaders,
} from '../../src/engines/kubernetes/spdy.js';
import { checkSplits, chunks, cleanProtocolError, mutate, mutation, throwsProtocol } from '../support/codec.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** A frame's fields as plain data: buffers as hex, `raw` left out. */
function fieldsOf(f: SpdyFrame): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) if (k !== 'raw') out[k] = Buffer.isBuffer(v) ? v.toString('hex') : v;
  return out;
}

const EXEC_HEADERS: SpdyHeaders = [['streamtype', 'stdout'], ['x-multi', 'a\0b']];

test('the SPDY/3 dictionary: 1423 bytes, as the draft gives it (first and last entries)', () => {
  assert.equal(SPDY_DICTIONARY.length, 1423);
  assert.equal(SPDY_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\u0007options');
  assert.equal(SPDY_DICTIONARY.subarray(-13).toString('latin1'), 'utf-,*,enq=0.');
});

test('every frame type round-trips, whole (a view of the input), split at every byte and byte by byte', () => {
  const cases: [string, (e: SpdyEncoder) => Buffer, Record<string, unknown>][] = [
    ['data', () => SpdyEncoder.data(5, Buffer.from('hello'), FLAG_FIN), { kind: 'data', streamId: 5, flags: 1, fin: true, data: Buffer.from('hello').toString('hex') }],
    ['empty data', () => SpdyEncoder.data(0x7fffffff, Buffer.alloc(0)), { kind: 'data', streamId: 0x7fffffff, flags: 0, fin: false, data: '' }],
    ['syn_stream', (e) => e.synStream({ streamId: 1, associatedTo: 0, priority: 7, slot: 2, flags: FLAG_UNIDIRECTIONAL, headers: EXEC_HEADERS }),
      { kind: 'syn_stream', flags: 2, streamId: 1, associatedTo: 0, priority: 7, slot: 2, fin: false, headers: EXEC_HEADERS }],
    ['syn_reply', (e) => e.synReply(3, [], FLAG_FIN), { kind: 'syn_reply', flags: 1, streamId: 3, fin: true, headers: [] }],
    ['headers', (e) => e.headers(3, [['status', '200 OK']]), { kind: 'headers', flags: 0, streamId: 3, fin: false, headers: [['status', '200 OK']] }],
    ['rst_stream', () => SpdyEncoder.rstStream(7, 5), { kind: 'rst_stream', flags: 0, streamId: 7, status: 5 }],
    ['settings', () => SpdyEncoder.settings([{ id: 7, value: 65536 }, { flags: 1, id: 4, value: 100 }], 1),
      { kind: 'settings', flags: 1, settings: [{ flags: 0, id: 7, value: 65536 }, { flags: 1, id: 4, value: 100 }] }],
    ['ping', () => SpdyEncoder.ping(0xfffffffe), { kind: 'ping', flags: 0, id: 0xfffffffe }],
    ['goaway', () => SpdyEncoder.goaway(9, 2), { kind: 'goaway', flags: 0, lastGoodStreamId: 9, status: 2 }],
    ['window_update', () => SpdyEncoder.windowUpdate(1, 0x7fffffff), { kind: 'window_update', flags: 0, streamId: 1, delta: 0x7fffffff }],
    ['unknown type (ignored by the draft, passed on here)', () => SpdyEncoder.control(0x0a, 0, Buffer.from([1, 2, 3])), { kind: 'unknown', flags: 0, type: 10, payload: '010203' }],
  ];
  for (const [label, make, expect] of cases) {
    const bytes = make(new SpdyEncoder());
    const { whole } = checkSplits(() => new SpdyParser(), bytes, expect, fieldsOf, label);
    if (whole.kind === 'data') assert.equal(whole.data.buffer, bytes.buffer, `${label}: data is a view, not a copy`);
  }
});

test('frame constants match the draft', () => {
  assert.deepEqual([SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE], [1, 2, 3, 4, 6, 7, 8, 9]);
  const ping = SpdyEncoder.ping(1);
  assert.equal(ping.toString('hex'), '800300060000000400000001', 'control bit, version 3, type, flags, length, id');
});

test('header compression is one context per direction: one zlib stream across blocks, read by real zlib both ways', async () => {
  const enc = new SpdyEncoder();
  const blocks: SpdyHeaders[] = ['error', 'stdin', 'stdout', 'stderr', 'resize'].map((t) => [['streamtype', t], ['x-request', 'kubectl exec with a long-ish header value']]);
  const frames = blocks.map((h, i) => enc.synStream({ streamId: 2 * i + 1, headers: h }));
  const parser = new SpdyParser();
  const parsed = parser.push(Buffer.concat(frames));
  assert.deepEqual(parsed.map((f) => (f.kind === 'syn_stream' ? f.headers : undefined)), blocks);
  assert.deepEqual(parsed.map((f) => (f.kind === 'syn_stream' ? headerValue(f.headers, 'streamtype') : '')), ['error', 'stdin', 'stdout', 'stderr', 'resize']);
  // a fresh parser that missed the first block cannot read the second: the context is shared
  throwsProtocol(() => new SpdyParser().push(frames[1]!), /malformed compressed SPDY header block/);

  // zlib's streaming inflater (as Go's zlib reader does) reads the encoder's blocks one by one
  const inflater = createInflate({ dictionary: SPDY_DICTIONARY });
  const got: Buffer[] = [];
  inflater.on('data', (c: Buffer) => got.push(c));
  for (const f of frames) {
    await new Promise<void>((resolve) => {
      inflater.write(f.subarray(18));
      inflater.flush(constants.Z_SYNC_FLUSH, () => resolve());
    });
  }
  assert.deepEqual(Buffer.concat(got), Buffer.concat(blocks.map(encodeHeaderBlock)));

  // and the parser reads blocks from zlib's stateful compressor (what Go's zlib writer sends)
  const deflater = createDeflate({ dictionary: SPDY_DICTIONARY, level: 9 });
  const out: Buffer[] = [];
  deflater.on('data', (c: Buffer) => out.push(c));
  const p2 = new SpdyParser();
  for (const [i, h] of blocks.entries()) {
    out.length = 0;
    await new Promise<void>((resolve) => {
      deflater.write(encodeHeaderBlock(h));
      deflater.flush(constants.Z_SYNC_FLUSH, () => resolve());
    });
    const fixed = Buffer.alloc(4);
    fixed.writeUInt32BE(2 * i + 2);
    const [f] = p2.push(SpdyEncoder.control(SYN_REPLY, 0, Buffer.concat([fixed, ...out])));
    assert.deepEqual(f?.kind === 'syn_reply' ? [f.streamId, f.headers] : f, [2 * i + 2, h]);
  }
});

test('HeaderDeflater: long, repetitive and random blocks inflate back exactly', () => {
  const d = new HeaderDeflater();
  const parts: Buffer[] = [];
  const plains: Buffer[] = [];
  const random = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919 + (i >> 3) * 31) & 0xff));
  for (const plain of [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(1000, 'x'), random, Buffer.from('content-type: text/html; charset=utf-8'.repeat(50)), random]) {
    plains.push(plain);
    parts.push(d.compress(plain));
  }
  const all = inflateSync(Buffer.concat(parts), { dictionary: SPDY_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH });
  assert.deepEqual(all, Buffer.concat(plains));
});

test('name/value blocks: encode and decode, NUL-separated values kept, truncations and bad counts refused', () => {
  const h: SpdyHeaders = [['a', ''], ['streamtype', 'error'], ['multi', 'x\0y'], ['ünïcode', 'välue']];
  assert.deepEqual(decodeHeaderBlock(encodeHeaderBlock(h)), h);
  const good = encodeHeaderBlock([['name', 'value']]);
  for (let cut = 0; cut < good.length; cut++) throwsProtocol(() => decodeHeaderBlock(good.subarray(0, cut)), /truncated SPDY header|claims/);
  throwsProtocol(() => decodeHeaderBlock(Buffer.concat([good, Buffer.from([0])])), /trailing bytes/);
  throwsProtocol(() => decodeHeaderBlock(encodeHeaderBlock([['', 'v']])), /empty SPDY header name/);
  const huge = Buffer.alloc(12);
  huge.writeUInt32BE(0xffffffff, 0);
  throwsProtocol(() => decodeHeaderBlock(huge), /claims 4294967295 pairs/);
});

/** A SYN_STREAM whose compressed block holds `plain` (any bytes) with a fresh context. */
function synStreamWithPlainBlock(plain: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(1, 0);
  return SpdyEncoder.control(SYN_STREAM, 0, Buffer.concat([fixed, new HeaderDeflater().compress(plain)]));
}

test('malformed frames are ProtocolErrors, and the parser stays failed', () => {
  const v2 = Buffer.from('800200010000000a00000001000000000000', 'hex');
  const p = new SpdyParser();
  throwsProtocol(() => p.push(v2), /^unsupported SPDY version 2$/);
  throwsProtocol(() => p.push(SpdyEncoder.ping(1)), /unsupported SPDY version 2/);

  // the header alone is refused: nothing is held for an oversize frame
  assert.equal(MAX_DATA_FRAME, 0xffffff, 'by default every length the 24-bit field allows');
  const bigData = Buffer.alloc(8);
  bigData.writeUInt32BE(1, 0);
  bigData.writeUInt32BE(1024 * 1024 + 1, 4);
  throwsProtocol(() => new SpdyParser({ maxDataFrame: 1024 * 1024 }).push(bigData), /SPDY data frame of 1048577 bytes exceeds 1048576/);
  assert.equal(new SpdyParser().push(bigData).length, 0, 'within the default bound: waits for the rest');
  const bigControl = Buffer.from(SpdyEncoder.control(SYN_STREAM, 0, Buffer.alloc(0)));
  bigControl.writeUInt32BE(MAX_CONTROL_FRAME + 1, 4);
  throwsProtocol(() => new SpdyParser().push(bigControl), /SPDY control frame of 65537 bytes exceeds 65536/);

  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.data(0, Buffer.from('x'))), /data frame on stream 0/);
  throwsProtocol(() => new SpdyParser().push(new SpdyEncoder().synStream({ streamId: 0, headers: [] })), /type 1 on stream 0/);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(PING, 0, Buffer.alloc(8))), /type 6 with a length of 8/);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(RST_STREAM, 0, Buffer.alloc(4))), /type 3 with a length of 4/);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(GOAWAY, 0, Buffer.alloc(4))), /type 7 with a length of 4/);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(WINDOW_UPDATE, 0, Buffer.alloc(12))), /type 9 with a length of 12/);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(SYN_STREAM, 0, Buffer.alloc(6))), /type 1 with a length of 6/);
  const settings = Buffer.from(SpdyEncoder.settings([{ id: 1, value: 1 }]));
  settings.writeUInt32BE(2, 8);
  throwsProtocol(() => new SpdyParser().push(settings), /SETTINGS frame of 12 bytes for 2 entries/);

  // header blocks: not zlib, empty, truncated name or value, trailing bytes
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(1, 0);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(SYN_STREAM, 0, Buffer.concat([fixed, Buffer.from('not a zlib stream')]))), /malformed compressed SPDY header block/);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(SYN_STREAM, 0, fixed)), /empty compressed SPDY header block/);
  const truncatedName = Buffer.from('00000001' + '00000010' + '6162636465666768', 'hex');
  throwsProtocol(() => new SpdyParser().push(synStreamWithPlainBlock(truncatedName)), /truncated SPDY header name/);
  const truncatedValue = Buffer.from('00000001' + '00000001' + '61' + '00000010' + '6263', 'hex');
  throwsProtocol(() => new SpdyParser().push(synStreamWithPlainBlock(truncatedValue)), /truncated SPDY header value/);
  // a compressed block with another dictionary
  const otherDict = deflateSync(encodeHeaderBlock([['a', 'b']]), { dictionary: Buffer.from('another dictionary'), finishFlush: constants.Z_SYNC_FLUSH });
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(SYN_REPLY, 0, Buffer.concat([fixed.subarray(0, 4), otherDict]))), /malformed compressed SPDY header block/);
  // a decompression bomb: 2 MiB of zeros in a couple of KiB
  const bomb = deflateSync(Buffer.alloc(2 * 1024 * 1024), { dictionary: SPDY_DICTIONARY });
  assert.ok(bomb.length < MAX_CONTROL_FRAME);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(SYN_REPLY, 0, Buffer.concat([fixed.subarray(0, 4), bomb]))), /^SPDY header blocks decompress to more than 1048576 bytes/);
});

test('compressed header bytes are bounded per connection direction', () => {
  const enc = new SpdyEncoder();
  const p = new SpdyParser();
  const noise = (n: number): string => randomBytes(n).toString('base64').slice(0, n);
  let compressed = 0;
  let i = 0;
  assert.throws(() => {
    for (;;) {
      const f = enc.synStream({ streamId: 2 * i++ + 1, headers: [['x-noise', noise(40_000)]] });
      compressed += f.length - 18;
      p.push(f);
    }
  }, /exceed 262144 compressed bytes/);
  assert.ok(compressed > MAX_COMPRESSED_HEADERS);
  // and the decompressed bytes: a small block that inflates to 2 MiB (a decompression bomb)
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(1, 0);
  const bomb = deflateSync(Buffer.alloc(2 << 20), { dictionary: SPDY_DICTIONARY, level: 9 });
  assert.ok(bomb.length < 4096);
  throwsProtocol(() => new SpdyParser().push(SpdyEncoder.control(SYN_STREAM, 0, Buffer.concat([fixed, bomb]))), /decompress to more than 1048576 bytes/);
});

/** Feeds chunks; returns the frames and the clean ProtocolError, if any. Checks byte accounting. */
function feed(p: SpdyParser, parts: Buffer[]): { frames: SpdyFrame[]; error?: Error } {
  const frames: SpdyFrame[] = [];
  let fed = 0;
  for (const part of parts) {
    try {
      frames.push(...p.push(part));
    } catch (e) {
      return { frames, error: cleanProtocolError(e) };
    }
    fed += part.length;
    assert.equal(frames.reduce((n, f) => n + f.raw.length, 0) + p.buffered, fed, 'every byte is in a frame or buffered');
  }
  return { frames };
}

const headersArb = fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 20 })), { maxLength: 4 });
const frameArb = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 0x7fffffff }), fc.uint8Array({ maxLength: 64 }), fc.boolean()).map(([id, d, fin]) => (_e: SpdyEncoder) => SpdyEncoder.data(id, Buffer.from(d), fin ? FLAG_FIN : 0)),
  fc.tuple(fc.integer({ min: 1, max: 99 }), headersArb).map(([id, h]) => (e: SpdyEncoder) => e.synStream({ streamId: id, headers: h })),
  fc.tuple(fc.integer({ min: 1, max: 99 }), headersArb).map(([id, h]) => (e: SpdyEncoder) => e.synReply(id, h)),
  fc.tuple(fc.integer({ min: 1, max: 99 }), headersArb).map(([id, h]) => (e: SpdyEncoder) => e.headers(id, h)),
  fc.tuple(fc.integer({ min: 1, max: 99 }), fc.nat()).map(([id, s]) => () => SpdyEncoder.rstStream(id, s)),
  fc.nat().map((id) => () => SpdyEncoder.ping(id)),
  fc.nat().map((id) => () => SpdyEncoder.goaway(id)),
  fc.tuple(fc.nat(), fc.nat()).map(([id, d]) => () => SpdyEncoder.windowUpdate(id, d)),
  fc.array(fc.record({ id: fc.nat({ max: 0xffffff }), value: fc.nat() }), { maxLength: 3 }).map((s) => () => SpdyEncoder.settings(s)),
);
const streamArb = fc.array(frameArb, { minLength: 1, maxLength: 10 }).map((makers) => {
  const e = new SpdyEncoder();
  return Buffer.concat(makers.map((m) => m(e)));
});

test('fuzz: random bytes yield frames or a clean ProtocolError, whatever the chunking', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 }), (input, cuts) => {
      feed(new SpdyParser(), chunks(Buffer.from(input), cuts));
    }),
    { numRuns: RUNS * 2 },
  );
});

test('fuzz: random bodies behind valid control headers exercise every decoder', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 11 }), fc.nat({ max: 255 }), fc.uint8Array({ maxLength: 80 }), (type, flags, body) => {
      feed(new SpdyParser(), [SpdyEncoder.control(type, flags, Buffer.from(body))]);
    }),
    { numRuns: RUNS * 3 },
  );
});

test('fuzz: valid streams parse the same whatever the chunking; mutated ones yield frames or a clean ProtocolError', () => {
  fc.assert(
    fc.property(streamArb, fc.array(fc.nat(), { maxLength: 8 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (stream, cuts, muts) => {
      const whole = feed(new SpdyParser(), [stream]);
      assert.equal(whole.error, undefined);
      const split = feed(new SpdyParser(), chunks(stream, cuts));
      assert.equal(split.error, undefined);
      assert.deepEqual(split.frames.map(fieldsOf), whole.frames.map(fieldsOf));
      feed(new SpdyParser(), chunks(mutate(stream, muts), cuts));
    }),
    { numRuns: RUNS },
  );
});

test('header blocks are bounded in number per connection direction (each re-inflates the ones before it)', () => {
  const enc = new SpdyEncoder();
  const p = new SpdyParser();
  for (let i = 0; i < MAX_HEADER_BLOCKS; i++) p.push(enc.synStream({ streamId: 2 * i + 1, headers: [['streamtype', 'stdout']] }));
  throwsProtocol(() => p.push(enc.synStream({ streamId: 2 * MAX_HEADER_BLOCKS + 1, headers: [['streamtype', 'stdout']] })), /more than 32 SPDY header blocks on this connection/);
});
