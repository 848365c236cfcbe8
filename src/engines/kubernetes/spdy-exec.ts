/**
 * `kubectl exec` / `kubectl attach` over SPDY/3.1 through Gatehouse (kubectl's protocol before
 * 1.30, and its fallback when a WebSocket upgrade fails).
 *
 * The bytes are relayed both ways unchanged, chunk by chunk: SPDY/3.1 has per-stream flow control
 * and one header compression context per direction, so frames cannot be rewritten in place without
 * re-encoding the connection. The codec (./spdy.ts) only *observes* each direction to record the
 * terminal: the agent's SYN_STREAMs name each stream (`streamtype`: `error`, `stdin`, `stdout`,
 * `stderr`, `resize`); data on stdin is recorded as input, on stdout/stderr as output, on resize
 * (JSON `{"Width","Height"}`, one per line) as terminal size, and the Status on the error stream
 * gives the exit code. Because the output is not rewritten, an exec over SPDY is refused while the
 * session masks (the engine does that; WebSocket exec masks).
 *
 * Malformed SPDY from either side closes both sides and is recorded. When the session ends (token
 * expiry, revocation, kill) the API server's side is cut and, if the agent's byte stream sits at a
 * frame boundary, the agent gets a `Failure` Status on the exec's error stream first (kubectl prints
 * it), as over WebSocket.
 */
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { SessionContext } from '../../core/sessions/types.js';
import { ExecRecording } from './exec.js';
import { FLAG_FIN, ProtocolError, SpdyEncoder, SpdyParser, headerValue, type SpdyFrame } from './spdy.js';

/** Bytes of the error stream's Status kept (the kubelet's are a few hundred). */
const MAX_STATUS = 64 * 1024;
/** A resize message longer than this (without its newline) is not recorded. */
const MAX_RESIZE = 4096;

export interface SpdyExecOptions {
  /** The agent's socket, after Gatehouse relayed the API server's `101`. */
  client: Duplex;
  /** The API server's socket, after its `101`. */
  upstream: Duplex;
  /** Bytes the agent sent after its upgrade request, and the API server after its `101`. */
  clientHead: Buffer;
  upstreamHead: Buffer;
  session: SessionContext;
  /** Aborts when the session ends. */
  ended: AbortSignal;
  tty: boolean;
  logger: Logger;
  onClose(result: { exitCode?: number; reason: string; durationMs: number }): void;
}

/** One exec/attach over SPDY/3.1: a byte relay with a frame-level observer on each direction. */
export class SpdyExecProxy {
  readonly #o: SpdyExecOptions;
  readonly #rec: ExecRecording;
  readonly #t0 = performance.now();
  readonly #fromClient = new SpdyParser();
  readonly #fromUpstream = new SpdyParser();
  /** `streamtype` of each stream the agent opened. */
  readonly #types = new Map<number, string>();
  /** Streams the API server has finished (FIN). */
  readonly #upstreamDone = new Set<number>();
  #status: Buffer[] = [];
  #statusLen = 0;
  #statusTaken = false;
  #resize = '';
  #exitCode: number | undefined;
  #closed = false;

  constructor(o: SpdyExecOptions) {
    this.#o = o;
    this.#rec = new ExecRecording(o.session, o.tty);
    const { client, upstream } = o;
    client.on('error', () => this.#finish('client error'));
    upstream.on('error', () => this.#finish('API server error'));
    this.#relay(upstream, client, this.#fromUpstream, (f) => this.#onUpstream(f), 'the API server', o.upstreamHead);
    this.#relay(client, upstream, this.#fromClient, (f) => this.#onClient(f), 'the agent', o.clientHead);
    client.once('close', () => this.#finish('client closed the stream'));
    upstream.once('close', () => this.#finish('exec ended'));
    const onEnded = (): void => this.#sessionEnded();
    if (o.ended.aborted) onEnded();
    else {
      o.ended.addEventListener('abort', onEnded, { once: true });
      client.once('close', () => o.ended.removeEventListener('abort', onEnded));
    }
  }

  /** Forwards `from`'s chunks to `to` unchanged, after the parser has looked at them. */
  #relay(from: Duplex, to: Duplex, parser: SpdyParser, onFrame: (f: SpdyFrame) => void, side: string, head: Buffer): void {
    const observe = (c: Buffer): boolean => {
      if (this.#closed) return false;
      try {
        for (const f of parser.push(c)) onFrame(f);
        return true;
      } catch (e) {
        this.#malformed(side, e);
        return false;
      }
    };
    if (head.length > 0 && observe(head)) to.write(head);
    from.on('data', (c: Buffer) => {
      if (!observe(c)) return;
      if (!to.write(c)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.once('end', () => {
      if (!this.#closed) to.end();
    });
  }

  #onClient(f: SpdyFrame): void {
    if (f.kind === 'syn_stream') {
      const type = headerValue(f.headers, 'streamtype');
      if (type !== undefined) this.#types.set(f.streamId, type);
      return;
    }
    if (f.kind !== 'data' || f.data.length === 0) return;
    const type = this.#types.get(f.streamId);
    if (type === 'stdin') this.#rec.input.push(f.data);
    else if (type === 'resize') this.#onResize(f.data);
  }

  #onResize(data: Buffer): void {
    let text = this.#resize + data.toString('utf8');
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n')) {
      const line = text.slice(0, nl).trim();
      text = text.slice(nl + 1);
      if (line !== '') this.#rec.resize(Buffer.from(line));
    }
    this.#resize = text.length > MAX_RESIZE ? '' : text;
  }

  #onUpstream(f: SpdyFrame): void {
    if (f.kind !== 'data') {
      if (f.kind === 'rst_stream') this.#upstreamDone.add(f.streamId);
      return;
    }
    if (f.fin) this.#upstreamDone.add(f.streamId);
    const type = this.#types.get(f.streamId);
    if (type === 'stdout') this.#rec.stdout.push(f.data);
    else if (type === 'stderr') this.#rec.stderr.push(f.data);
    else if (type === 'error') {
      if (this.#statusLen + f.data.length <= MAX_STATUS) {
        this.#status.push(Buffer.from(f.data));
        this.#statusLen += f.data.length;
      }
      if (f.fin) this.#takeStatus();
    }
  }

  #takeStatus(): void {
    if (this.#statusTaken || this.#statusLen === 0) return;
    this.#statusTaken = true;
    this.#rec.close();
    this.#exitCode = this.#rec.status(Buffer.concat(this.#status));
    this.#status = [];
  }

  #malformed(side: string, e: unknown): void {
    const err = e instanceof ProtocolError ? e : new ProtocolError('internal error in the SPDY exec proxy', e instanceof Error ? e.message : String(e));
    const message = `malformed SPDY from ${side}: ${err.message}; the exec was closed`;
    this.#o.session.record({ type: 'error', code: err.code, message });
    this.#o.logger.info({ session: this.#o.session.id, err: err.toJSON() }, 'spdy exec closed');
    this.#finish(message);
    this.#o.client.destroy();
    this.#o.upstream.destroy();
  }

  /** The session ended: cut the API server, tell the agent on the error stream if that can be done cleanly. */
  #sessionEnded(): void {
    if (this.#closed) return;
    const err = new GatehouseError('ERR_SESSION_ENDED', `gatehouse: session ended: ${String(this.#o.ended.reason ?? 'session ended')}`);
    this.#o.logger.info({ session: this.#o.session.id, err: err.toJSON() }, 'exec ended by the gateway');
    this.#o.session.record({ type: 'error', code: err.code, message: err.message });
    const { client, upstream } = this.#o;
    upstream.destroy();
    const errorStream = [...this.#types].find(([, t]) => t === 'error')?.[0];
    // Only between two frames of the API server's: a frame cut short cannot be followed by ours.
    if (errorStream !== undefined && !this.#upstreamDone.has(errorStream) && this.#fromUpstream.buffered === 0 && client.writable) {
      const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: err.message, reason: 'Forbidden', code: 403 };
      const frames: Buffer[] = [SpdyEncoder.data(errorStream, Buffer.from(JSON.stringify(status)), FLAG_FIN)];
      for (const [id, t] of this.#types) if ((t === 'stdout' || t === 'stderr') && !this.#upstreamDone.has(id)) frames.push(SpdyEncoder.data(id, Buffer.alloc(0), FLAG_FIN));
      client.write(Buffer.concat(frames));
    }
    this.#finish(err.message);
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#takeStatus();
    this.#rec.close();
    const { client, upstream } = this.#o;
    // let what is queued go out, then make sure both are gone
    client.end();
    upstream.end();
    setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, 2000).unref();
    this.#o.onClose({ ...(this.#exitCode === undefined ? {} : { exitCode: this.#exitCode }), reason, durationMs: performance.now() - this.#t0 });
  }
}
