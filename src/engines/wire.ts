/**
 * What the socket-free wire codecs of the engines share: the protocol error and the bounded framing
 * buffer. Each protocol keeps its own frame headers, byte order and field readers and writers.
 */
import { GatehouseError } from '../core/errors.js';

/**
 * A malformed or unsupported message or packet on an agent's or a target's connection. `message` is
 * safe to show the peer (it names the violation, never the contents); the connection must be closed
 * after it.
 */
export class ProtocolError extends GatehouseError {
  constructor(message: string, detail?: string, cause?: unknown) {
    super('ERR_PROTOCOL', message, { ...(detail === undefined ? {} : { detail }), ...(cause === undefined ? {} : { cause }) });
  }
}

/**
 * Splits a byte stream into frames, holding at most one incomplete frame. A frame that sits in one
 * chunk is handed on as a view of that chunk; one that spans chunks is copied once, into a buffer of
 * exactly its size, allocated only when all of its bytes have arrived. Subclasses read the headers
 * (and so set the bound on a frame's size) and decode the frames.
 */
export abstract class Framer<M> {
  private pieces: Buffer[] = [];
  private piecesLen = 0;
  /** Total size of the incomplete frame once its header is known, else -1. */
  private need = -1;
  private failure: ProtocolError | undefined;

  /** `unit` names a frame (`message`, `packet`) in the error that wraps an unexpected failure. */
  constructor(private readonly unit = 'message') {}

  /** Bytes of an incomplete frame held until the rest arrives. */
  get buffered(): number {
    return this.piecesLen;
  }

  /** The error that stopped this parser, if any: a failed parser rejects all further input. */
  get error(): ProtocolError | undefined {
    return this.failure;
  }

  /** Header size for the next frame. */
  protected abstract headerSize(): number;
  /** Validates a header at `pos` of `buf` (it holds `headerSize()` bytes) and returns the full size. */
  protected abstract frameSize(buf: Buffer, pos: number): number;
  /** Decodes one complete frame occupying `buf[pos, pos + size)`; `undefined` when it completes no message yet. */
  protected abstract decode(buf: Buffer, pos: number, size: number): M | undefined;
  /** Called after each message is decoded with the number of bytes still unparsed in this chunk. */
  protected afterMessage(_m: M, _remaining: number): void {}
  /** Called when the parser fails: drop whatever else a subclass holds. */
  protected discard(): void {}

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
      this.failure = e instanceof ProtocolError ? e : new ProtocolError(`malformed ${this.unit}`, e instanceof Error ? e.message : String(e), e);
      this.pieces = [];
      this.piecesLen = 0;
      this.discard();
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
      if (m !== undefined) {
        out.push(m);
        this.afterMessage(m, chunk.length - fromChunk);
      }
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
      if (m !== undefined) {
        out.push(m);
        this.afterMessage(m, end - pos);
      }
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

/**
 * A bounds-checked cursor over one frame, `buf[pos, end)`: each protocol's field readers (byte order,
 * integer widths, string forms) build on it. Every read past `end` fails with a ProtocolError that
 * names the frame (`invalid <what> <unit>: …`) and never its contents.
 */
export class BoundedReader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
    /** What the frame is (`StartupMessage`, `COM_QUERY`). */
    readonly what: string,
    /** What a frame is called in this protocol (`message`, `packet`). */
    private readonly unit: string,
  ) {
    this.pos = start;
  }

  fail(reason: string): never {
    throw new ProtocolError(`invalid ${this.what} ${this.unit}: ${reason}`);
  }

  protected need(n: number): void {
    if (this.end - this.pos < n) this.fail(`insufficient data left in ${this.unit}`);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** `n` bytes as a view of the input (no copy). */
  bytes(n: number): Buffer {
    if (n < 0) this.fail('negative length');
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}
