/**
 * `kubectl exec` / `kubectl attach` through Gatehouse: a frame-level proxy of the Kubernetes
 * WebSocket channel protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io`, and the older
 * `v3`/`v2`/`channel.k8s.io`), between the agent's WebSocket and one to the API server
 * (RFC 6455: each binary message carries one channel byte, then the payload).
 *
 * Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (the final `Status`, JSON since v4), 4 resize
 * (`{"Width":…,"Height":…}`, since v3); v5 adds 255, "close stream" (`[255, channel]`).
 *
 * - stdin is recorded as terminal input, resizes as terminal resizes, stdout/stderr as output: the
 *   session's recording then plays back as asciicast v2. Recording goes through the SSH engine's
 *   `StreamRecorder` (coalesced, never cut inside a secret, binary output counted, not stored; at
 *   most {@link EXEC_RECORD_LIMIT} per stream, {@link TTY_RECORD_LIMIT} with a terminal). The core
 *   masks what is recorded.
 * - When the session masks, stdout/stderr are decoded as UTF-8 and masked before the agent sees
 *   them. Output is masked a line at a time: a partial line is held back up to 15 ms (../line-masking.ts) for
 *   the rest of it, so a secret written in two pieces is still seen whole. Output that is not UTF-8
 *   cannot be inspected and ends the exec (fail closed).
 * - When the session ends (token expiry, revocation, kill) the exec ends: the agent gets a
 *   `Failure` Status on the error channel (kubectl prints it and exits non-zero).
 */
import { performance } from 'node:perf_hooks';
import type { WebSocket, RawData } from 'ws';
import { GatehouseError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { SessionContext } from '../../core/sessions/types.js';
import { LineMasker } from '../line-masking.js';
import { TerminalRecording, type StreamRecorder } from '../ssh/recorder.js';

/** The channel protocols Gatehouse proxies, best first. */
export const CHANNEL_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CLOSE = 255;
/** Pause the sending side when this much is queued toward the other. */
const HIGH_WATER = 1024 * 1024;
/** Bytes recorded per stream of an exec without a terminal, and with one (an interactive shell). */
export const EXEC_RECORD_LIMIT = 1024 * 1024;
export const TTY_RECORD_LIMIT = 16 * 1024 * 1024;

export interface ExecProxyOptions {
  client: WebSocket;
  upstream: WebSocket;
  session: SessionContext;
  /** Aborts when the session ends. */
  ended: AbortSignal;
  /** The exec has a terminal (`tty=true`): stderr is part of stdout, the recording limit is larger. */
  tty: boolean;
  logger: Logger;
  onClose(result: { exitCode?: number; reason: string; durationMs: number }): void;
}

/** Output of one channel toward the agent, masked a line at a time when the session masks. */
class OutputChannel {
  readonly #proxy: ExecProxy;
  readonly #recorder: StreamRecorder;
  readonly #masker: LineMasker | undefined;

  constructor(ch: number, proxy: ExecProxy, masking: boolean, recorder: StreamRecorder) {
    this.#proxy = proxy;
    this.#recorder = recorder;
    this.#masker = masking
      ? new LineMasker({
          mask: (text) => proxy.session.masker.maskText(text),
          emit: (bytes) => {
            recorder.push(bytes);
            proxy.toClient(Buffer.concat([Buffer.from([ch]), bytes]));
          },
          fail: (err) => proxy.guard(() => {
            throw err;
          }),
          what: 'exec output',
        })
      : undefined;
  }

  push(frame: Buffer): void {
    if (this.#masker) return this.#masker.push(frame.subarray(1));
    this.#proxy.toClient(frame);
    if (frame.length > 1) this.#recorder.push(frame.subarray(1));
  }

  /** Sends what is held back (before the error channel, at the end). */
  flush(): void {
    this.#masker?.flush();
  }
}

/** One exec/attach stream between the agent and the API server. */
export class ExecProxy {
  readonly session: SessionContext;
  readonly #o: ExecProxyOptions;
  readonly #binary: boolean;
  readonly #v5: boolean;
  readonly #out: Map<number, OutputChannel>;
  readonly #rec: ExecRecording;
  readonly #t0 = performance.now();
  #exitCode: number | undefined;
  #closed = false;

  constructor(o: ExecProxyOptions) {
    this.#o = o;
    this.session = o.session;
    const protocol = o.upstream.protocol;
    this.#binary = !protocol.startsWith('base64.');
    this.#v5 = protocol === 'v5.channel.k8s.io';
    const masking = o.session.masker.active;
    this.#rec = new ExecRecording(o.session, o.tty);
    this.#out = new Map([
      [STDOUT, new OutputChannel(STDOUT, this, masking, this.#rec.stdout)],
      [STDERR, new OutputChannel(STDERR, this, masking, this.#rec.stderr)],
    ]);
    const { client, upstream } = o;
    client.on('message', (data, isBinary) => this.guard(() => this.#fromClient(toBuffer(data), isBinary)));
    upstream.on('message', (data, isBinary) => this.guard(() => this.#fromUpstream(toBuffer(data), isBinary)));
    client.on('close', () => this.#finish('client closed the stream'));
    upstream.on('close', (code) => this.#finish(code === 1000 || code === 1005 ? 'exec ended' : `API server closed the stream (${code})`));
    client.on('error', (e) => this.#finish(`client error: ${e.message}`));
    upstream.on('error', (e) => this.#finish(`API server error: ${e.message}`));
    const onEnded = (): void => this.#fail(new GatehouseError('ERR_SESSION_ENDED', `gatehouse: session ended: ${String(o.ended.reason ?? 'session ended')}`));
    if (o.ended.aborted) onEnded();
    else o.ended.addEventListener('abort', onEnded, { once: true });
    client.once('close', () => o.ended.removeEventListener('abort', onEnded));
  }

  /** Runs `f`; a masking failure ends the exec with an error Status (fail closed). */
  guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.#fail(e instanceof GatehouseError ? e : new GatehouseError('ERR_INTERNAL', 'internal error in the exec proxy'));
    }
  }

  toClient(frame: Buffer): void {
    this.#send(this.#o.client, this.#o.upstream, frame, true);
  }

  #send(to: WebSocket, from: WebSocket, data: Buffer, binary: boolean): void {
    if (to.readyState !== to.OPEN) return;
    to.send(data, { binary }, () => {
      if (to.bufferedAmount < HIGH_WATER && from.isPaused) from.resume();
    });
    if (to.bufferedAmount >= HIGH_WATER && !from.isPaused) from.pause();
  }

  #fromClient(buf: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    if (this.#binary && isBinary && buf.length > 0) {
      const ch = buf[0];
      if (ch === STDIN && buf.length > 1) this.#rec.input.push(buf.subarray(1));
      else if (ch === RESIZE) this.#rec.resize(buf.subarray(1));
      else if (ch === CLOSE && !this.#v5) return;
    }
    this.#send(this.#o.upstream, this.#o.client, buf, isBinary);
  }

  #fromUpstream(buf: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    if (!this.#binary || !isBinary || buf.length === 0) {
      this.#send(this.#o.client, this.#o.upstream, buf, isBinary);
      return;
    }
    const ch = buf[0] ?? 0;
    const out = this.#out.get(ch);
    if (out) {
      out.push(buf);
      return;
    }
    if (ch === ERROR) {
      for (const o of this.#out.values()) o.flush();
      this.#rec.close();
      this.#exitCode = this.#rec.status(buf.subarray(1));
    }
    this.#send(this.#o.client, this.#o.upstream, buf, true);
  }

  /** Ends the exec on the gateway's side: the agent gets a Failure on the error channel. */
  #fail(err: GatehouseError): void {
    if (this.#closed) return;
    this.#o.logger.info({ session: this.session.id, err: err.toJSON() }, 'exec ended by the gateway');
    this.session.record({ type: 'error', code: err.code, message: err.message });
    try {
      for (const o of this.#out.values()) o.flush();
    } catch {
      // the output held back is dropped: it could not be masked
    }
    const { client, upstream } = this.#o;
    const body = this.#o.upstream.protocol.startsWith('v4.') || this.#v5
      ? JSON.stringify({ metadata: {}, status: 'Failure', message: err.message, reason: err.code === 'ERR_SESSION_ENDED' ? 'Forbidden' : 'InternalError', code: err.code === 'ERR_SESSION_ENDED' ? 403 : 500 })
      : err.message;
    if (client.readyState === client.OPEN) client.send(Buffer.concat([Buffer.from([ERROR]), Buffer.from(body)]), { binary: true }, () => client.close(1000));
    upstream.terminate();
    this.#finish(err.message);
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const { client, upstream } = this.#o;
    try {
      for (const o of this.#out.values()) o.flush();
    } catch {
      // dropped: it could not be masked
    }
    this.#rec.close();
    if (upstream.readyState === upstream.OPEN) upstream.close(1000);
    else if (upstream.readyState === upstream.CONNECTING) upstream.terminate();
    if (client.readyState === client.OPEN) {
      // let the error-channel frame go out first
      setImmediate(() => client.readyState === client.OPEN && client.close(1000));
    }
    setTimeout(() => {
      client.terminate();
      upstream.terminate();
    }, 2000).unref();
    this.#o.onClose({ ...(this.#exitCode === undefined ? {} : { exitCode: this.#exitCode }), reason, durationMs: performance.now() - this.#t0 });
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * The terminal recording of one exec or attach, whatever carries it (WebSocket channels or SPDY
 * streams): stdin as input, stdout and stderr as output (one recorder with a terminal, where stderr
 * is part of stdout), resizes, and the final Status.
 */
export class ExecRecording extends TerminalRecording {
  constructor(session: SessionContext, tty: boolean) {
    super(session, { limit: tty ? TTY_RECORD_LIMIT : EXEC_RECORD_LIMIT, tty });
  }

  /** A resize message (`{"Width":…,"Height":…}`); a malformed one is not recorded (the kubelet ignores it too). */
  resize(json: Buffer): void {
    try {
      const r = JSON.parse(json.toString('utf8')) as { Width?: unknown; Height?: unknown };
      if (typeof r.Width === 'number' && typeof r.Height === 'number') this.session.record({ type: 'resize', cols: r.Width, rows: r.Height });
    } catch {
      // not recorded
    }
  }

  /** The final Status of the error channel: noted, and its exit code returned. */
  status(payload: Buffer): number | undefined {
    if (payload.length > 0) this.session.record({ type: 'note', message: `exec status: ${payload.toString('utf8').slice(0, 500)}` });
    return exitCodeOf(payload);
  }
}

/** The exit code in an error-channel Status (0 for Success), if it says. */
export function exitCodeOf(payload: Buffer): number | undefined {
  try {
    const s = JSON.parse(payload.toString('utf8')) as { status?: string; details?: { causes?: { reason?: string; message?: string }[] } };
    if (s.status === 'Success') return 0;
    const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
    return cause?.message === undefined ? undefined : Number(cause.message);
  } catch {
    return undefined;
  }
}
