/**
 * Shared building blocks of the PostgreSQL wire codec: the protocol error, a bounds-checked reader
 * over one framed message, a small growable writer, and the framing buffer both parsers use.
 */
import { GatehouseError } from '../../../core/errors.js';

/**
 * A malformed or unsupported message on a PostgreSQL connection. `message` is safe to show the
 * peer (it names the violation, never message contents); the connection must be closed after it.
 */
export class ProtocolError extends GatehouseError {
  constructor(message: string, detail?: string, cause?: unknown) {
    super('ERR_PROTOCOL', message, { ...(detail === undefined ? {} : { detail }), ...(cause === undefined ? {} : { cause }) });
  }
}

/** Reads the fields of one framed message; every read is bounds-checked against the message end. */
export class Reader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }

  fail(reason: string): never {
    throw new ProtocolError(`invalid ${this.what} message: ${reason}`);
  }

  private need(n: number): void {
    if (this.end - this.pos < n) this.fail('insufficient data left in message');
  }

  get remaining(): number {
    return this.end - this.pos;
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

  /** `n` bytes as a view of the input (no copy). */
  bytes(n: number): Buffer {
    if (n < 0) this.fail('negative length');
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
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

/**
 * Splits a byte stream into messages, holding at most one incomplete message. A message that sits in
 * one chunk is handed on as a view of that chunk; one that spans chunks is copied once, into a buffer
 * of exactly its size, allocated only when all of its bytes have arrived.
 */
export abstract class Framer<M> {
  private pieces: Buffer[] = [];
  private piecesLen = 0;
  /** Total size of the incomplete message once its header is known, else -1. */
  private need = -1;
  private failure: ProtocolError | undefined;

  /** Bytes of an incomplete message held until the rest arrives. */
  get buffered(): number {
    return this.piecesLen;
  }

  /** The error that stopped this parser, if any: a failed parser rejects all further input. */
  get error(): ProtocolError | undefined {
    return this.failure;
  }

  /** Header size for the next message (4 untyped, 5 typed, 1 single-byte). */
  protected abstract headerSize(): number;
  /** Validates a header at `pos` of `buf` (it holds `headerSize()` bytes) and returns the full size. */
  protected abstract frameSize(buf: Buffer, pos: number): number;
  /** Decodes one complete message occupying `buf[pos, pos + size)`. */
  protected abstract decode(buf: Buffer, pos: number, size: number): M;
  /** Called after each message is decoded with the number of bytes still unparsed in this chunk. */
  protected afterMessage(_m: M, _remaining: number): void {}

  /** Drops any buffered bytes and clears a failure: only for a fresh stream (e.g. after TLS). */
  protected resetFraming(): void {
    this.pieces = [];
    this.piecesLen = 0;
    this.need = -1;
    this.failure = undefined;
  }

  /**
   * Feeds bytes in and returns the messages they complete, in order. Chunks may be split anywhere.
   * Throws `ProtocolError` on malformed input; the parser then stays failed.
   */
  push(chunk: Buffer): M[] {
    if (this.failure) throw this.failure;
    const out: M[] = [];
    try {
      this.run(chunk, out);
    } catch (e) {
      this.failure = e instanceof ProtocolError ? e : new ProtocolError('malformed message', e instanceof Error ? e.message : String(e), e);
      this.pieces = [];
      this.piecesLen = 0;
      throw this.failure;
    }
    return out;
  }

  private run(chunk: Buffer, out: M[]): void {
    let pos = 0;
    if (this.piecesLen > 0) {
      const have = this.piecesLen + chunk.length;
      if (this.need < 0) {
        const h = this.headerSize();
        if (have < h) {
          this.hold(chunk);
          return;
        }
        const head = Buffer.allocUnsafe(h);
        this.gather(head, chunk);
        this.need = this.frameSize(head, 0);
      }
      if (have < this.need) {
        this.hold(chunk);
        return;
      }
      const msg = Buffer.allocUnsafe(this.need);
      const fromChunk = this.gather(msg, chunk);
      this.pieces = [];
      this.piecesLen = 0;
      this.need = -1;
      const m = this.decode(msg, 0, msg.length);
      out.push(m);
      this.afterMessage(m, chunk.length - fromChunk);
      pos = fromChunk;
    }
    const end = chunk.length;
    while (pos < end) {
      const h = this.headerSize();
      if (end - pos < h) break;
      const size = this.frameSize(chunk, pos);
      if (end - pos < size) {
        this.need = size;
        break;
      }
      const m = this.decode(chunk, pos, size);
      pos += size;
      out.push(m);
      this.afterMessage(m, end - pos);
    }
    if (pos < end) this.hold(pos === 0 ? chunk : chunk.subarray(pos));
  }

  private hold(b: Buffer): void {
    if (b.length === 0) return;
    this.pieces.push(b);
    this.piecesLen += b.length;
  }

  /** Fills `dst` from the held pieces and then the head of `chunk`; returns bytes taken from `chunk`. */
  private gather(dst: Buffer, chunk: Buffer): number {
    let off = 0;
    for (const p of this.pieces) {
      if (off >= dst.length) return 0;
      off += p.copy(dst, off, 0, Math.min(p.length, dst.length - off));
    }
    const take = dst.length - off;
    if (take > 0) chunk.copy(dst, off, 0, take);
    return take;
  }
}
