/**
 * Terminal recording of one direction of one channel: bytes are decoded (UTF-8, split characters
 * kept whole), coalesced (a flush at most every {@link FLUSH_MS} or {@link FLUSH_BYTES}) and
 * handed on as text events, which the session masks with the log detectors before they are stored.
 *
 * Masking works on each event's text, so a secret must not be cut in two: a flush ends at the last
 * line end (or, in a long line, at whitespace well before the end), and an unterminated `-----BEGIN …`
 * block is held until its `-----END` arrives. A held tail is released after {@link HOLD_MS} or
 * {@link HOLD_BYTES}. Beyond `limit` bytes nothing more is recorded; the count of bytes left out is
 * reported once at the end.
 *
 * Binary output (a chunk holding a NUL byte or bytes that are not UTF-8) is not terminal text: it is
 * not recorded (nor scanned) but counted, and each run of it is reported as a marker
 * (`onBinary(bytes)`), so `cat` of an image or an archive costs the recording nothing.
 */
import { isUtf8 } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import type { SessionContext } from '../../core/sessions/types.js';

export const FLUSH_MS = 50;
export const FLUSH_BYTES = 16 * 1024;
export const HOLD_MS = 1000;
export const HOLD_BYTES = 64 * 1024;

export interface StreamRecorderOptions {
  /** Receives the coalesced text, in order. */
  emit: (text: string) => void;
  /** Stops recording after this many bytes (the stream itself is unaffected). */
  limit: number;
  /** Called once at close when bytes were left out. */
  onTruncated?: (skipped: number) => void;
  /** Called after each run of binary (non-text) chunks, with its length. */
  onBinary?: (bytes: number) => void;
  now?: () => number;
}

const WS = /[\s]/;

/**
 * True when a chunk is not terminal text: it holds a NUL byte, or it is not UTF-8 once up to three
 * bytes of a character split by the chunk boundary are set aside at either end.
 */
export function isBinaryChunk(c: Buffer): boolean {
  if (c.includes(0)) return true;
  let start = 0;
  while (start < 3 && start < c.length && ((c[start] as number) & 0xc0) === 0x80) start++;
  let end = c.length;
  // A lead byte near the end whose sequence the chunk cuts short.
  for (let i = Math.max(start, c.length - 3); i < c.length; i++) {
    const b = c[i] as number;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    if (need > 1 && i + need > c.length) {
      end = i;
      break;
    }
  }
  return !isUtf8(c.subarray(start, end));
}

/** Without a line end, a cut stays this many characters clear of the end of the buffer. */
const TAIL_KEEP = 128;

/**
 * Index just past the last safe cut point in `s`, or 0 when there is none: the last line end, else
 * the last whitespace at least {@link TAIL_KEEP} characters before the end — a card written in
 * groups (`4111 1111 1111 1111`) or a `password: value` pair holds whitespace and must not be split
 * at it.
 */
export function safeCut(s: string): number {
  let cut = Math.max(s.lastIndexOf('\n'), s.lastIndexOf('\r')) + 1;
  if (cut === 0) {
    for (let i = s.length - 1 - TAIL_KEEP; i >= 0; i--) {
      if (WS.test(s[i] as string)) {
        cut = i + 1;
        break;
      }
    }
  }
  const begin = s.lastIndexOf('-----BEGIN');
  if (begin >= 0 && s.indexOf('-----END', begin) < 0 && begin < cut) cut = begin;
  return cut;
}

export class StreamRecorder {
  readonly #o: StreamRecorderOptions;
  readonly #decoder = new StringDecoder('utf8');
  #buf = '';
  #bytes = 0;
  #skipped = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the text now held back was first held. */
  #heldSince: number | undefined;
  #closed = false;
  #binary = 0;

  constructor(o: StreamRecorderOptions) {
    this.#o = o;
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  push(chunk: Buffer): void {
    if (this.#closed) return;
    if (this.#bytes >= this.#o.limit) {
      this.#skipped += chunk.length;
      return;
    }
    if (isBinaryChunk(chunk)) {
      if (this.#binary === 0) this.flush(true);
      this.#binary += chunk.length;
      return;
    }
    this.#endBinary();
    let c = chunk;
    if (this.#bytes + c.length > this.#o.limit) {
      const keep = Math.max(0, this.#o.limit - this.#bytes);
      this.#skipped += c.length - keep;
      c = c.subarray(0, keep);
    }
    if (c.length === 0) return;
    this.#bytes += c.length;
    this.#buf += this.#decoder.write(c);
    if (this.#buf.length >= FLUSH_BYTES) this.flush(false);
    else this.#timer ??= setTimeout(() => this.#onTimer(), FLUSH_MS).unref();
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.flush(false);
  }

  /** Emits what can be emitted; `all` emits everything held (end of stream). */
  flush(all: boolean): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (all) this.#buf += this.#decoder.end();
    if (this.#buf === '') return;
    const now = this.#now();
    let cut = all ? this.#buf.length : safeCut(this.#buf);
    const tail = this.#buf.length - cut;
    if (tail > 0 && (tail >= HOLD_BYTES || (this.#heldSince !== undefined && now - this.#heldSince >= HOLD_MS))) cut = this.#buf.length;
    if (cut > 0) {
      const text = this.#buf.slice(0, cut);
      this.#buf = this.#buf.slice(cut);
      this.#heldSince = undefined;
      this.#o.emit(text);
    }
    if (this.#buf !== '') {
      this.#heldSince ??= now;
      const wait = Math.max(1, Math.min(FLUSH_MS, HOLD_MS - (now - this.#heldSince)));
      this.#timer = setTimeout(() => this.#onTimer(), wait).unref();
    }
  }

  #endBinary(): void {
    if (this.#binary === 0) return;
    const n = this.#binary;
    this.#binary = 0;
    this.#o.onBinary?.(n);
  }

  /** Flushes everything and reports what was left out. */
  close(): void {
    if (this.#closed) return;
    this.flush(true);
    this.#endBinary();
    this.#closed = true;
    if (this.#skipped > 0) this.#o.onTruncated?.(this.#skipped);
  }

  get recordedBytes(): number {
    return this.#bytes;
  }
}

/**
 * The recording of one terminal — an SSH exec or shell channel, a Kubernetes exec or attach: stdin
 * as input, stdout and stderr as output (one recorder when there is a terminal, which merges stderr
 * into stdout), each stopping after `limit` bytes with a note, binary output noted as a count.
 */
export class TerminalRecording {
  readonly input: StreamRecorder;
  readonly stdout: StreamRecorder;
  readonly stderr: StreamRecorder;
  protected readonly session: SessionContext;
  readonly #recorders: StreamRecorder[] = [];

  constructor(session: SessionContext, o: { limit: number; tty: boolean }) {
    this.session = session;
    const { limit } = o;
    const recorder = (type: 'input' | 'output', what: string): StreamRecorder => {
      const r = new StreamRecorder({
        limit,
        emit: (data) => session.record({ type, data }),
        onTruncated: (n) => session.record({ type: 'note', message: `recording of ${what} stopped after ${limit} bytes; ${n} more bytes were not recorded` }),
        onBinary: (n) => session.record({ type: 'note', message: `${n} bytes of binary ${what} (not recorded)` }),
      });
      this.#recorders.push(r);
      return r;
    };
    this.input = recorder('input', 'input');
    this.stdout = recorder('output', 'output');
    this.stderr = o.tty ? this.stdout : recorder('output', 'stderr');
  }

  /** Flushes and stops every recorder (idempotent). */
  close(): void {
    for (const r of this.#recorders) r.close();
  }
}
