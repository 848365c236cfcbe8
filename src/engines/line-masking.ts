/**
 * Masking of a terminal's output for the agent, a line at a time: what the SSH engine's exec and
 * shell channels and the Kubernetes engine's exec/attach streams pass through when the session's
 * policy masks. The bytes are decoded as UTF-8 (strictly: output that is not text cannot be
 * inspected, and the stream is ended — fail closed), each complete line is masked with the session's
 * detectors and handed on; a partial line waits up to {@link HOLD_MS} for its end, so a secret a
 * program writes in two pieces is still seen whole, and is masked on its own after that (a prompt,
 * a progress bar). A line longer than {@link HOLD_MAX} is masked without waiting.
 */
import { GatehouseError } from '../core/errors.js';

/** How long a partial output line waits for its end before it is masked on its own. */
export const HOLD_MS = 15;
/** A partial line longer than this (in UTF-16 units) is masked and sent without waiting. */
export const HOLD_MAX = 16 * 1024;

export interface LineMaskerOptions {
  /** The session's masking of free text (`session.masker.maskText`). */
  mask(text: string): string;
  /** Receives the masked output, in order. */
  emit(masked: Buffer): void;
  /** A failure in a timer-driven emit (the stream must then be ended). */
  fail(err: GatehouseError): void;
  /** What the output is, for the error (`exec output`). */
  what: string;
}

export class LineMasker {
  readonly #o: LineMaskerOptions;
  readonly #strict = new TextDecoder('utf-8', { fatal: true });
  #pending = '';
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: LineMaskerOptions) {
    this.#o = o;
  }

  /** Takes output bytes; emits what can be masked now. Throws `ERR_MASKING_FAILED` on output that is not UTF-8. */
  push(data: Buffer): void {
    if (this.#closed) return;
    const text = this.#pending + this.#decode(data, true);
    const nl = text.lastIndexOf('\n');
    if (nl === -1 && text.length < HOLD_MAX) {
      this.#pending = text;
      this.#arm();
      return;
    }
    const cut = nl === -1 ? text.length : nl + 1;
    this.#pending = text.slice(cut);
    this.#emit(text.slice(0, cut));
    if (this.#pending !== '') this.#arm();
    else this.#disarm();
  }

  /** Emits what is held back (at the end of the output). Throws like {@link push} on a cut UTF-8 sequence. */
  flush(): void {
    if (this.#closed) return;
    this.#disarm();
    const rest = this.#pending + this.#decode(Buffer.alloc(0), false);
    this.#pending = '';
    this.#emit(rest);
  }

  /** Drops what is held back (the stream ended another way). */
  close(): void {
    this.#closed = true;
    this.#disarm();
    this.#pending = '';
  }

  #decode(data: Buffer, stream: boolean): string {
    try {
      return this.#strict.decode(data, { stream });
    } catch {
      this.close();
      throw new GatehouseError('ERR_MASKING_FAILED', `${this.#o.what} that is not UTF-8 text cannot be inspected for masking; it was ended`);
    }
  }

  #arm(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const text = this.#pending;
      this.#pending = '';
      try {
        this.#emit(text);
      } catch (e) {
        this.close();
        this.#o.fail(e instanceof GatehouseError ? e : new GatehouseError('ERR_MASKING_FAILED', `${this.#o.what} could not be masked; it was ended`));
      }
    }, HOLD_MS);
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #emit(text: string): void {
    if (text === '') return;
    this.#o.emit(Buffer.from(this.#o.mask(text), 'utf8'));
  }
}
