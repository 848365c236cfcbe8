/**
 * Shared building blocks of the PostgreSQL wire codec: a bounds-checked reader over one framed
 * message and a small growable writer, and (from the engines' common wire module) the protocol error
 * and the framing buffer both parsers use.
 */
import { BoundedReader } from '../../wire.js';

export { Framer, ProtocolError } from '../../wire.js';

/** Reads the fields of one framed message; every read is bounds-checked against the message end. */
export class Reader extends BoundedReader {
  constructor(buf: Buffer, start: number, end: number, what: string) {
    super(buf, start, end, what, 'message');
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A NUL-terminated string, decoded as UTF-8. */
  cstring(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) this.fail('missing string terminator');
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** The rest of the message as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  /** A count followed by at least `minEach` bytes per item: rejects counts the message cannot hold. */
  count(minEach: number): number {
    const n = this.uint16();
    if (n * minEach > this.end - this.pos) this.fail('count exceeds message length');
    return n;
  }

  /** Int32 length-prefixed value; -1 is SQL NULL. */
  value(): Buffer | null {
    const len = this.int32();
    if (len === -1) return null;
    if (len < 0) this.fail(`invalid value length ${len}`);
    return this.bytes(len);
  }

  done(): void {
    if (this.pos !== this.end) this.fail('trailing bytes after message');
  }
}

/** Builds one message. Not reused across calls: the returned buffer is owned by the caller. */
export class Writer {
  private buf: Buffer;
  private pos: number;

  /** `type` is the message type byte, or 0 for an untyped (startup-phase) message. */
  constructor(
    private readonly type: number,
    sizeHint = 64,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, 16) + 5);
    this.pos = type === 0 ? 4 : 5;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  uint16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** A NUL-terminated UTF-8 string; a NUL inside `s` would end it early, so it is refused. */
  cstring(s: string): this {
    if (s.includes('\0')) throw new RangeError('string field contains a NUL character');
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(n + 1);
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Int32 length-prefixed value; `null` is written as -1 (SQL NULL). */
  value(v: Uint8Array | string | null): this {
    if (v === null) return this.int32(-1);
    if (typeof v === 'string') {
      const n = Buffer.byteLength(v, 'utf8');
      this.int32(n);
      this.ensure(n);
      this.buf.write(v, this.pos, n, 'utf8');
      this.pos += n;
      return this;
    }
    return this.int32(v.length).bytes(v);
  }

  /** Writes the length header and returns the message. */
  finish(): Buffer {
    if (this.type === 0) {
      this.buf.writeInt32BE(this.pos, 0);
    } else {
      this.buf[0] = this.type;
      this.buf.writeInt32BE(this.pos - 1, 1);
    }
    return this.buf.subarray(0, this.pos);
  }
}

/** A message with no body: the type byte and length 4. */
export function emptyMessage(type: string): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(4, 1);
  return b;
}

/** Renders a type byte for error messages: `'Q'` or `0x00`. */
export function typeName(code: number): string {
  return code >= 0x20 && code < 0x7f ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16).padStart(2, '0')}`;
}
