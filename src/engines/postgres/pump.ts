/**
 * Moves parsed messages from one socket to another in order, with backpressure. A handler decides
 * per message: forward it raw (`true`), drop it (`false`), or send other bytes (a Buffer or a list).
 * When every message of a chunk is forwarded raw and the chunk held whole messages only, the chunk
 * itself is written: no copy on the hot path. A handler may return a Promise (a policy decision, a
 * review hold, a catalog lookup); the pump then stops reading its source until it settles, so order
 * is kept.
 */
import type { Duplex } from 'node:stream';

export type PumpResult = boolean | Buffer | readonly Buffer[];

export interface Framing<M> {
  push(chunk: Buffer): M[];
  readonly buffered: number;
}

interface Item<M> {
  msgs: M[];
  whole: Buffer | undefined;
  i: number;
}

export class Pump<M extends { raw: Buffer }> {
  readonly #queue: Item<M>[] = [];
  #running = false;
  #pauses = 0;
  #stopped = false;
  #draining = false;

  constructor(
    private readonly source: Duplex,
    private readonly framing: Framing<M>,
    private readonly sink: { write(b: Buffer): boolean; cork(): void; uncork(): void; once(ev: 'drain', f: () => void): unknown },
    private readonly handle: (m: M) => PumpResult | Promise<PumpResult>,
    private readonly fail: (e: unknown) => void,
  ) {
    source.on('data', this.#onData);
  }

  /** Stops consuming (the session is ending). */
  stop(): void {
    this.#stopped = true;
    this.source.off('data', this.#onData);
    this.#queue.length = 0;
  }

  /** Feeds messages that were read before the pump existed (start-up leftovers). */
  inject(msgs: M[]): void {
    if (msgs.length === 0) return;
    this.#queue.push({ msgs, whole: undefined, i: 0 });
    if (!this.#running) void this.#run();
  }

  #onData = (chunk: Buffer): void => {
    if (this.#stopped) return;
    let msgs: M[];
    const before = this.framing.buffered;
    try {
      msgs = this.framing.push(chunk);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (msgs.length === 0) return;
    const whole = before === 0 && this.framing.buffered === 0 ? chunk : undefined;
    this.#queue.push({ msgs, whole, i: 0 });
    if (!this.#running) void this.#run();
  };

  #pause(): void {
    if (this.#pauses++ === 0) this.source.pause();
  }

  #resume(): void {
    if (--this.#pauses === 0 && !this.#stopped) this.source.resume();
  }

  #write(b: Buffer): void {
    // One wait per congestion: every write while the sink is full returns false too.
    if (!this.sink.write(b) && !this.#draining) {
      this.#draining = true;
      this.#pause();
      this.sink.once('drain', () => {
        this.#draining = false;
        this.#resume();
      });
    }
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0 && !this.#stopped) {
        const item = this.#queue[0]!;
        const start = item.i;
        let out: Buffer[] | undefined;
        let awaited = false;
        for (; item.i < item.msgs.length && !this.#stopped; item.i++) {
          const m = item.msgs[item.i]!;
          let r = this.handle(m);
          if (r instanceof Promise) {
            // Write what is decided so far before waiting: the far side may need it to answer.
            this.#flush(out ?? item.msgs.slice(start, item.i).map((x) => x.raw));
            out = [];
            awaited = true;
            this.#pause();
            try {
              r = await r;
            } finally {
              this.#resume();
            }
            if (this.#stopped) return;
          }
          if (r === true) {
            if (out !== undefined) out.push(m.raw);
            continue;
          }
          out ??= item.msgs.slice(start, item.i).map((x) => x.raw);
          if (r === false) continue;
          if (Buffer.isBuffer(r)) out.push(r);
          else out.push(...r);
        }
        if (this.#stopped) return;
        this.#queue.shift();
        if (out !== undefined) this.#flush(out);
        else if (item.whole !== undefined && !awaited && start === 0) this.#write(item.whole);
        else this.#flush(item.msgs.slice(start).map((x) => x.raw));
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.#running = false;
    }
  }

  #flush(bufs: readonly Buffer[]): void {
    if (bufs.length === 0) return;
    if (bufs.length === 1) {
      this.#write(bufs[0]!);
      return;
    }
    this.sink.cork();
    for (const b of bufs) this.#write(b);
    this.sink.uncork();
  }
}
