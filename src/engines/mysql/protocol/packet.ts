/**
 * MySQL packet framing and the basic data types, socket-free.
 *
 * - Packets: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html
 *   (3-byte little-endian payload length, 1-byte sequence id; a payload of 2^24-1 bytes or more is
 *   sent as several packets of 0xFFFFFF bytes followed by a shorter one, possibly empty)
 * - Data types: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_data_types.html
 *   (fixed-length integers, length-encoded integers and strings, NUL-terminated strings)
 * - MariaDB: https://mariadb.com/kb/en/0-packet/ and https://mariadb.com/kb/en/protocol-data-types/
 */
import { BoundedReader, Framer, ProtocolError } from '../../wire.js';
import { MAX_PACKET_PAYLOAD } from './constants.js';

export { ProtocolError } from '../../wire.js';

const MiB = 1024 * 1024;
/** MySQL's own ceiling for `max_allowed_packet`. */
export const MAX_ALLOWED_PACKET_LIMIT = 1024 * MiB;
const TWO_64 = 1n << 64n;

/**
 * One logical packet: a payload and the sequence ids it was framed with. A payload of 0xFFFFFF
 * bytes or more arrives as several physical packets; they are reassembled here.
 */
export interface Packet {
  /** Sequence id of the (first) physical packet. */
  readonly sequenceId: number;
  /** Sequence id of the last physical packet (equal to `sequenceId` unless the payload was split). */
  readonly lastSequenceId: number;
  /** The payload: a view of the input when it arrived as one physical packet in one chunk. */
  readonly payload: Buffer;
  /** Every physical packet as received, headers included: a view of the input when it arrived whole. */
  readonly raw: Buffer;
}

/** Number of physical packets that carry a payload of `length` bytes. */
export function physicalPacketCount(length: number): number {
  return Math.floor(length / MAX_PACKET_PAYLOAD) + 1;
}

/**
 * Frames a payload: one header for a payload below 0xFFFFFF bytes; otherwise chunks of 0xFFFFFF
 * bytes with consecutive sequence ids (mod 256), ending with a shorter, possibly empty, packet.
 */
export function encodePacket(payload: Uint8Array, sequenceId: number): Buffer {
  if (!Number.isInteger(sequenceId) || sequenceId < 0 || sequenceId > 255) throw new RangeError('sequence id must be an integer in [0, 255]');
  const n = physicalPacketCount(payload.length);
  const out = Buffer.allocUnsafe(payload.length + 4 * n);
  let src = 0;
  let dst = 0;
  for (let i = 0; i < n; i++) {
    const len = Math.min(MAX_PACKET_PAYLOAD, payload.length - src);
    out.writeUIntLE(len, dst, 3);
    out[dst + 3] = (sequenceId + i) & 0xff;
    out.set(payload.subarray(src, src + len), dst + 4);
    src += len;
    dst += 4 + len;
  }
  return out;
}

/**
 * Sequence ids of one exchange. Both directions share one counter: it restarts at 0 with every
 * command the client sends (and with the handshake), and each physical packet in either direction
 * takes the next id. Call `reset()` when a command starts, `receive()` for each packet read and
 * `frame()` / `forward()` for each packet written.
 */
export class Sequence {
  private id = 0;

  /** The id the next packet, in either direction, must carry. */
  get next(): number {
    return this.id;
  }

  set next(v: number) {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError('sequence id must be an integer in [0, 255]');
    this.id = v;
  }

  /** A new command starts: the next packet (the client's command) is number 0. */
  reset(): void {
    this.id = 0;
  }

  /** Checks that a received packet carries the expected id and advances past it. */
  receive(p: Packet): void {
    if (p.sequenceId !== this.id) throw new ProtocolError(`packets out of order (expected sequence id ${this.id}, got ${p.sequenceId})`);
    this.id = (p.lastSequenceId + 1) & 0xff;
  }

  /** Frames a payload with the next id(s) and advances. */
  frame(payload: Uint8Array): Buffer {
    const out = encodePacket(payload, this.id);
    this.id = (this.id + physicalPacketCount(payload.length)) & 0xff;
    return out;
  }

  /**
   * A received packet to pass on: its `raw` bytes unchanged when its ids already fit this exchange
   * (no copy), else re-framed with the next ids. Advances either way.
   */
  forward(p: Packet): Buffer {
    if (p.sequenceId === this.id) {
      this.id = (p.lastSequenceId + 1) & 0xff;
      return p.raw;
    }
    return this.frame(p.payload);
  }
}

export interface PacketParserOptions {
  /**
   * Largest logical payload accepted, in bytes (a split payload counts whole). Default 64 MiB
   * (MySQL 8's default `max_allowed_packet`); at most 1 GiB.
   */
  maxPayloadBytes?: number;
}

/**
 * Splits a byte stream into logical packets. Socket-free and bounded: a declared length that would
 * take the payload past `maxPayloadBytes` fails at its header, before its data is buffered. A packet
 * that sits in one chunk is handed on as a view of that chunk; one that spans chunks is copied once,
 * when all of its bytes have arrived; a split payload is joined into one buffer. Throws
 * `ProtocolError` on malformed framing; the parser then stays failed.
 */
export class PacketParser extends Framer<Packet> {
  private max: number;
  /** Physical packets of a split payload whose last packet has not arrived. */
  private parts: Buffer[] = [];
  private partsLen = 0;
  private logicalLen = 0;
  private firstSeq = 0;
  private lastSeq = 0;

  constructor(options: PacketParserOptions = {}) {
    super('packet');
    this.max = checkMax(options.maxPayloadBytes ?? 64 * MiB);
  }

  /** The payload limit; lowering or raising it applies from the next packet header on. */
  get maxPayloadBytes(): number {
    return this.max;
  }

  set maxPayloadBytes(v: number) {
    this.max = checkMax(v);
  }

  /** Bytes held until the rest of a packet arrives. */
  override get buffered(): number {
    return super.buffered + this.partsLen;
  }

  /**
   * Drops nothing and checks nothing is held: for a stream that restarts (the TLS handshake after an
   * SSLRequest). Throws if bytes are buffered: they were sent in the clear and must not be used.
   */
  assertEmpty(what = 'received unencrypted data after SSL request'): void {
    if (this.error) throw this.error;
    if (this.buffered > 0) throw new ProtocolError(what);
  }

  protected override discard(): void {
    this.parts = [];
    this.partsLen = 0;
  }

  protected headerSize(): number {
    return 4;
  }

  protected frameSize(buf: Buffer, pos: number): number {
    const len = buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16);
    const seq = buf[pos + 3]!;
    if (this.parts.length > 0 && seq !== ((this.lastSeq + 1) & 0xff)) {
      throw new ProtocolError(`packets out of order (expected sequence id ${(this.lastSeq + 1) & 0xff}, got ${seq})`);
    }
    if (this.logicalLen + len > this.max) {
      throw new ProtocolError(`packet too large (${this.logicalLen + len} bytes or more, limit ${this.max})`);
    }
    return len + 4;
  }

  /** One complete physical packet (header included): a packet, or nothing while a split payload continues. */
  protected decode(buf: Buffer, pos: number, size: number): Packet | undefined {
    const phys = pos === 0 && size === buf.length ? buf : buf.subarray(pos, pos + size);
    const len = size - 4;
    const seq = phys[3]!;
    if (this.parts.length === 0 && len < MAX_PACKET_PAYLOAD) return { sequenceId: seq, lastSequenceId: seq, payload: phys.subarray(4), raw: phys };
    if (this.parts.length === 0) this.firstSeq = seq;
    this.parts.push(phys);
    this.partsLen += phys.length;
    this.logicalLen += len;
    this.lastSeq = seq;
    if (len === MAX_PACKET_PAYLOAD) return undefined;
    const raw = Buffer.concat(this.parts, this.partsLen);
    const payload = Buffer.allocUnsafe(this.logicalLen);
    let off = 0;
    for (const p of this.parts) off += p.copy(payload, off, 4);
    this.parts = [];
    this.partsLen = 0;
    this.logicalLen = 0;
    return { sequenceId: this.firstSeq, lastSequenceId: seq, payload, raw };
  }
}

function checkMax(max: number): number {
  if (!Number.isInteger(max) || max < 1 || max > MAX_ALLOWED_PACKET_LIMIT) throw new RangeError('maxPayloadBytes must be an integer in [1, 1 GiB]');
  return max;
}

/** Reads the fields of one payload; every read is bounds-checked against the payload end. */
export class PayloadReader extends BoundedReader {
  constructor(buf: Buffer, what: string, start = 0, end = buf.length) {
    super(buf, start, end, what, 'packet');
  }

  /** The next byte without consuming it, or -1 at the end. */
  peek(): number {
    return this.pos < this.end ? this.buf[this.pos]! : -1;
  }

  int1(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  int2(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  int3(): number {
    this.need(3);
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  int4(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  int8(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A length-encoded integer as a bigint (0xFB, NULL, and 0xFF are refused). */
  lenencBigInt(): bigint {
    const first = this.int1();
    if (first < 0xfb) return BigInt(first);
    switch (first) {
      case 0xfc:
        return BigInt(this.int2());
      case 0xfd:
        return BigInt(this.int3());
      case 0xfe:
        return this.int8();
      default:
        return this.fail(`invalid length-encoded integer prefix 0x${first.toString(16)}`);
    }
  }

  /** A length-encoded integer that must fit in a JavaScript number (counts, lengths). */
  lenencInt(): number {
    const first = this.int1();
    if (first < 0xfb) return first;
    switch (first) {
      case 0xfc:
        return this.int2();
      case 0xfd:
        return this.int3();
      case 0xfe: {
        const v = this.int8();
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail('length-encoded integer too large');
        return Number(v);
      }
      default:
        return this.fail(`invalid length-encoded integer prefix 0x${first.toString(16)}`);
    }
  }

  /** A length-encoded string as a view of the payload; `null` for the NULL marker (0xFB) when allowed. */
  lenencBytes(): Buffer;
  lenencBytes(allowNull: true): Buffer | null;
  lenencBytes(allowNull = false): Buffer | null {
    if (allowNull && this.peek() === 0xfb) {
      this.pos++;
      return null;
    }
    const n = this.lenencInt();
    return this.bytes(n);
  }

  lenencString(): string {
    const b = this.lenencBytes();
    return b.toString('utf8');
  }

  /** A NUL-terminated string as a view (terminator consumed). */
  nulBytes(): Buffer {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) this.fail('missing string terminator');
    const v = this.buf.subarray(this.pos, nul);
    this.pos = nul + 1;
    return v;
  }

  nulString(): string {
    return this.nulBytes().toString('utf8');
  }

  /** The rest of the payload as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  restString(): string {
    return this.rest().toString('utf8');
  }

  done(): void {
    if (this.pos !== this.end) this.fail('trailing bytes after packet');
  }
}

/** Builds one payload. Not reused across calls: the returned buffer is owned by the caller. */
export class PayloadWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(sizeHint = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, 16));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  get length(): number {
    return this.pos;
  }

  int1(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  int2(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v & 0xffff, this.pos);
    this.pos += 2;
    return this;
  }

  int3(v: number): this {
    this.ensure(3);
    this.buf.writeUIntLE(v & 0xffffff, this.pos, 3);
    this.pos += 3;
    return this;
  }

  int4(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  int8(v: bigint | number): this {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), this.pos);
    this.pos += 8;
    return this;
  }

  /** A length-encoded integer (0 to 2^64-1). */
  lenencInt(v: number | bigint): this {
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`length-encoded integer must be a non-negative integer, got ${v}`);
      if (v < 0xfb) return this.int1(v);
      if (v <= 0xffff) return this.int1(0xfc).int2(v);
      if (v <= 0xffffff) return this.int1(0xfd).int3(v);
      return this.int1(0xfe).int8(v);
    }
    if (v < 0n || v >= TWO_64) throw new RangeError('length-encoded integer out of range');
    return v < 0xfbn ? this.lenencInt(Number(v)) : v <= 0xffffffn ? this.lenencInt(Number(v)) : this.int1(0xfe).int8(v);
  }

  /** A length-encoded string (UTF-8 for strings); `null` writes the NULL marker 0xFB. */
  lenencBytes(v: Uint8Array | string | null): this {
    if (v === null) return this.int1(0xfb);
    if (typeof v === 'string') {
      const n = Buffer.byteLength(v, 'utf8');
      this.lenencInt(n);
      this.ensure(n);
      this.buf.write(v, this.pos, n, 'utf8');
      this.pos += n;
      return this;
    }
    return this.lenencInt(v.length).bytes(v);
  }

  /** A NUL-terminated UTF-8 string; a NUL inside `s` would end it early, so it is refused. */
  nulString(s: string | Uint8Array): this {
    if (typeof s !== 'string') {
      if (s.includes(0)) throw new RangeError('string field contains a NUL byte');
      return this.bytes(s).int1(0);
    }
    if (s.includes('\0')) throw new RangeError('string field contains a NUL character');
    return this.string(s).int1(0);
  }

  /** A UTF-8 string without length or terminator (`string<EOF>`, `string<fix>`). */
  string(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(n);
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }

  floatLE(v: number): this {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
    return this;
  }

  doubleLE(v: number): this {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
    return this;
  }

  /** The payload (no header: frame it with `encodePacket` or `Sequence.frame`). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
