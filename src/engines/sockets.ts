/**
 * Socket-level helpers the database engines share for the start-up of a connection, on both sides:
 * a reader of whole messages from a socket (across the switch to TLS), one deadline for a whole
 * start-up, and toward the target the TCP connect, the TLS options and upgrade, and the
 * `ERR_UPSTREAM` error that tells the agent the target could not be reached. The protocols' own
 * messages and their order stay in each engine.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { GatehouseError } from '../core/errors.js';

/** What ends a reader: the peer closing the connection, or a socket error. */
export interface ReaderFailures {
  /** The failure when the peer ends or closes the connection. */
  closed: () => unknown;
  /** The failure on a socket error (default: as `closed`). */
  error?: (e: Error) => unknown;
}

/** Reads whole messages from a socket, one at a time, until it is detached; survives a switch to TLS. */
export class MessageReader<M, P extends { push(chunk: Buffer): M[] } = { push(chunk: Buffer): M[] }> {
  readonly #queue: M[] = [];
  #wake: (() => void) | undefined;
  #failure: unknown;
  #socket: Socket | TLSSocket;
  #onData = (chunk: Buffer): void => {
    try {
      this.#queue.push(...this.parser.push(chunk));
    } catch (e) {
      this.#failure = e;
    }
    this.#notify();
  };
  #onEnd = (): void => {
    this.#failure ??= this.failures.closed();
    this.#notify();
  };
  #onError = (e: Error): void => {
    this.#failure ??= this.failures.error ? this.failures.error(e) : this.failures.closed();
    this.#notify();
  };

  constructor(
    socket: Socket | TLSSocket,
    readonly parser: P,
    private readonly failures: ReaderFailures,
  ) {
    this.#socket = socket;
    this.#attach();
  }

  get socket(): Socket | TLSSocket {
    return this.#socket;
  }

  /** Messages read and not yet taken. */
  get pending(): number {
    return this.#queue.length;
  }

  #attach(): void {
    this.#socket.on('data', this.#onData);
    this.#socket.on('end', this.#onEnd);
    this.#socket.on('close', this.#onEnd);
    this.#socket.on('error', this.#onError);
  }

  detach(): void {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.off('error', this.#onError);
  }

  /** Switches to a new (TLS) socket over the same stream. */
  replace(socket: Socket | TLSSocket): void {
    this.detach();
    this.#socket = socket;
    this.#attach();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** The next message; rejects with the reader's failure, or with `expired` when it rejects first. */
  async next(expired?: Promise<never>): Promise<M> {
    for (;;) {
      const m = this.#queue.shift();
      if (m) return m;
      if (this.#failure) throw this.#failure;
      const woken = new Promise<void>((resolve) => (this.#wake = resolve));
      await (expired ? Promise.race([woken, expired]) : woken);
    }
  }

  /** Takes the messages read and not yet taken. */
  drain(): M[] {
    return this.#queue.splice(0);
  }
}

/**
 * One deadline for a whole start-up, with one listener on its signal (not one per wait): `expired`
 * rejects with `error()` when the signal aborts, until `clear()`.
 */
export class Deadline {
  readonly expired: Promise<never>;
  readonly #signal: AbortSignal;
  readonly #onAbort: () => void;

  constructor(signal: AbortSignal, error: () => unknown) {
    let expire: (e: unknown) => void = () => undefined;
    this.expired = new Promise<never>((_, reject) => (expire = reject));
    this.expired.catch(() => undefined);
    this.#signal = signal;
    this.#onAbort = () => expire(error());
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  clear(): void {
    this.#signal.removeEventListener('abort', this.#onAbort);
  }
}

/** The error an agent gets when the gateway cannot log in to the target; `detail` is for the log only. */
export function upstreamError(detail: string, cause?: unknown): GatehouseError {
  return new GatehouseError('ERR_UPSTREAM', 'could not connect to the target database', { detail, ...(cause === undefined ? {} : { cause }) });
}

/** Anything thrown during the login to the target, as `ERR_UPSTREAM` (its words kept as detail). */
export function asUpstreamError(e: unknown): GatehouseError {
  if (e instanceof GatehouseError) return e.code === 'ERR_UPSTREAM' ? e : upstreamError(e.detail ?? e.message, e);
  return upstreamError(e instanceof Error ? e.message : String(e), e);
}

/** Connects over TCP (no Nagle); `signal` aborts the attempt, and only the attempt. */
export function connectTcp(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port, noDelay: true });
    const fail = (e: Error): void => {
      signal.removeEventListener('abort', onAbort);
      s.destroy();
      reject(upstreamError(`connect ${host}:${port}: ${e.message}`, e));
    };
    // Removed once connected: the start-up deadline must not destroy a live session's socket.
    const onAbort = (): void => fail(new Error('timed out'));
    s.once('connect', () => {
      s.off('error', fail);
      signal.removeEventListener('abort', onAbort);
      resolve(s);
    });
    s.once('error', fail);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A connection's `tls:` options toward its target. */
export interface TargetTlsOptions {
  ca?: string;
  rejectUnauthorized?: boolean;
  servername?: string;
  cert?: string;
  key?: string;
}

/**
 * The TLS options toward a target at `host`: the certificate is verified when `verify` (unless the
 * connection's `rejectUnauthorized` says otherwise), and its host name too unless `verifyCaOnly`.
 */
export function targetTlsOptions(host: string, tlsOpt: TargetTlsOptions | undefined, verify: boolean, verifyCaOnly: boolean): ConnectionOptions {
  return {
    rejectUnauthorized: tlsOpt?.rejectUnauthorized ?? verify,
    // No SNI for an IP address (RFC 6066); the certificate is then checked against `host`.
    ...(tlsOpt?.servername !== undefined || isIP(host) === 0 ? { servername: tlsOpt?.servername ?? host } : {}),
    ...(tlsOpt?.ca ? { ca: readFileSync(tlsOpt.ca) } : {}),
    ...(tlsOpt?.cert && tlsOpt.key ? { cert: readFileSync(tlsOpt.cert), key: readFileSync(tlsOpt.key) } : {}),
    ...(verifyCaOnly ? { checkServerIdentity: () => undefined } : {}),
  };
}

/** Starts TLS toward the target over a connected socket; rejects with `ERR_UPSTREAM`, or with `expired`. */
export async function startTargetTls(socket: Socket, host: string, port: number, options: ConnectionOptions | undefined, expired: Promise<never>): Promise<TLSSocket> {
  const tls = tlsConnect({ host, ...options, socket });
  await Promise.race([
    new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', (e) => reject(upstreamError(`TLS to ${host}:${port}: ${e.message}`, e)));
    }),
    expired,
  ]);
  tls.setNoDelay(true);
  return tls;
}
