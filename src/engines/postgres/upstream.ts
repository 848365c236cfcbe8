/**
 * The gateway's own connection to the target PostgreSQL server: TCP, optional TLS (SSLRequest,
 * protocol-flow §55.2.10), the startup packet with the connection's credentials, authentication
 * (SCRAM-SHA-256, md5, cleartext, trust) and the startup replies up to the first ReadyForQuery.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { GatehouseError } from '../../core/errors.js';
import type { Connection } from '../../core/sessions/types.js';
import { UpstreamAuthenticator } from './auth.js';
import { BackendParser, frontend, type BackendKeyData, type BackendMessage, type ParameterStatus } from './protocol.js';

/** Where and how to reach a target, parsed once per connection. */
export interface UpstreamTarget {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** `disable`: plain TCP; `prefer`: TLS if the server offers it; `require`/`verify-*`: TLS or fail. */
  sslmode: 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
  tls?: ConnectionOptions;
}

/** Parses `postgres://user:pw@host:port/db?sslmode=…` plus the connection's `tls:` options. */
export function upstreamTarget(conn: Connection): UpstreamTarget {
  const u = new URL(conn.target);
  const tlsOpt = conn.options.tls as { ca?: string; rejectUnauthorized?: boolean; servername?: string; cert?: string; key?: string } | undefined;
  const mode = (u.searchParams.get('sslmode') ?? (tlsOpt ? 'verify-full' : 'disable')) as UpstreamTarget['sslmode'];
  if (!['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'allow'].includes(mode)) {
    throw new GatehouseError('ERR_CONFIG', `connection ${conn.name}: unsupported sslmode ${mode}`);
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const target: UpstreamTarget = {
    host,
    port: u.port === '' ? 5432 : Number(u.port),
    user: decodeURIComponent(u.username) || 'postgres',
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres',
    sslmode: mode === ('allow' as string) ? 'prefer' : mode,
  };
  if (u.password !== '') target.password = decodeURIComponent(u.password);
  if (target.sslmode !== 'disable') {
    const verify = target.sslmode === 'verify-ca' || target.sslmode === 'verify-full';
    target.tls = {
      rejectUnauthorized: tlsOpt?.rejectUnauthorized ?? verify,
      // No SNI for an IP address (RFC 6066); the certificate is then checked against `host`.
      ...(tlsOpt?.servername !== undefined || isIP(host) === 0 ? { servername: tlsOpt?.servername ?? host } : {}),
      ...(tlsOpt?.ca ? { ca: readFileSync(tlsOpt.ca) } : {}),
      ...(tlsOpt?.cert && tlsOpt.key ? { cert: readFileSync(tlsOpt.cert), key: readFileSync(tlsOpt.key) } : {}),
      ...(target.sslmode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    };
  }
  return target;
}

/** A logged-in upstream connection, ready for queries. */
export interface Upstream {
  socket: Socket | TLSSocket;
  parser: BackendParser;
  /** The server's ParameterStatus messages (raw), to replay to the agent. */
  parameters: ParameterStatus[];
  key: BackendKeyData | undefined;
  /** Messages after the first ReadyForQuery that arrived in the same read (normally none). */
  rest: BackendMessage[];
}

const CONNECT_TIMEOUT_MS = 10_000;

function upstreamError(detail: string, cause?: unknown): GatehouseError {
  return new GatehouseError('ERR_UPSTREAM', 'could not connect to the target database', { detail, cause });
}

/** Reads whole backend messages from a socket, one at a time. */
class Reader {
  readonly #queue: BackendMessage[] = [];
  #wake: (() => void) | undefined;
  #failure: unknown;
  #onData = (chunk: Buffer): void => {
    try {
      this.#queue.push(...this.parser.push(chunk));
    } catch (e) {
      this.#failure = e;
    }
    this.#notify();
  };
  #onEnd = (): void => {
    this.#failure ??= upstreamError('the server closed the connection during start-up');
    this.#notify();
  };
  #onError = (e: Error): void => {
    this.#failure ??= upstreamError(`${e.name}: ${e.message}`, e);
    this.#notify();
  };

  constructor(
    public socket: Socket | TLSSocket,
    readonly parser: BackendParser,
  ) {
    this.#attach();
  }

  #attach(): void {
    this.socket.on('data', this.#onData);
    this.socket.on('end', this.#onEnd);
    this.socket.on('close', this.#onEnd);
    this.socket.on('error', this.#onError);
  }

  detach(): void {
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.off('close', this.#onEnd);
    this.socket.off('error', this.#onError);
  }

  /** Switches to a new (TLS) socket over the same stream. */
  replace(socket: Socket | TLSSocket): void {
    this.detach();
    this.socket = socket;
    this.#attach();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async next(): Promise<BackendMessage> {
    for (;;) {
      const m = this.#queue.shift();
      if (m) return m;
      if (this.#failure) throw this.#failure;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  drain(): BackendMessage[] {
    return this.#queue.splice(0);
  }
}

function connectTcp(host: string, port: number, signal: AbortSignal): Promise<Socket> {
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

/** Startup parameters an agent may pass through to the target (the rest stay at the gateway). */
export const PASSTHROUGH_PARAMS = new Set(['application_name', 'client_encoding', 'datestyle', 'timezone', 'intervalstyle', 'extra_float_digits']);

/**
 * Connects and logs in to the target. `clientParams` are the agent's startup parameters; only
 * {@link PASSTHROUGH_PARAMS} reach the server. Throws `ERR_UPSTREAM` (detail for the log only).
 */
export async function connectUpstream(target: UpstreamTarget, clientParams: Readonly<Record<string, string>>): Promise<Upstream> {
  const signal = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  let socket: Socket | TLSSocket = await connectTcp(target.host, target.port, signal);
  // One deadline for the whole start-up (one listener, not one per message).
  let expire: (e: GatehouseError) => void = () => undefined;
  const timedOut = new Promise<never>((_, reject) => (expire = reject));
  timedOut.catch(() => undefined);
  const onTimeout = (): void => expire(upstreamError('start-up timed out'));
  signal.addEventListener('abort', onTimeout, { once: true });
  const parser = new BackendParser();
  const reader = new Reader(socket, parser);
  try {
    if (target.sslmode !== 'disable') {
      parser.expectEncryptionResponse();
      socket.write(frontend.sslRequest());
      const answer = await Promise.race([reader.next(), timedOut]);
      if (answer.name !== 'EncryptionResponse') throw upstreamError(`unexpected ${answer.name} in answer to SSLRequest`);
      if (answer.accepted) {
        reader.detach();
        const tls = tlsConnect({ host: target.host, ...target.tls, socket: socket as Socket });
        await Promise.race([
          new Promise<void>((resolve, reject) => {
            tls.once('secureConnect', resolve);
            tls.once('error', (e) => reject(upstreamError(`TLS to ${target.host}:${target.port}: ${e.message}`, e)));
          }),
          timedOut,
        ]);
        tls.setNoDelay(true);
        socket = tls;
        reader.replace(tls);
      } else if (target.sslmode !== 'prefer') {
        throw upstreamError(`server at ${target.host}:${target.port} refused TLS (sslmode=${target.sslmode})`);
      }
    }
    const params: Record<string, string> = { user: target.user, database: target.database };
    for (const [k, v] of Object.entries(clientParams)) if (PASSTHROUGH_PARAMS.has(k.toLowerCase())) params[k] = v;
    socket.write(frontend.startupMessage(params));
    const auth = new UpstreamAuthenticator({ user: target.user, ...(target.password === undefined ? {} : { password: target.password }) });
    const parameters: ParameterStatus[] = [];
    let key: BackendKeyData | undefined;
    for (;;) {
      const m = await Promise.race([reader.next(), timedOut]);
      switch (m.name) {
        case 'ErrorResponse':
          throw upstreamError(`server refused the login: ${m.code} ${m.message}`);
        case 'NoticeResponse':
        case 'NegotiateProtocolVersion':
          break;
        case 'ParameterStatus':
          parameters.push(m);
          break;
        case 'BackendKeyData':
          key = m;
          break;
        case 'ReadyForQuery':
          if (!auth.authenticated) throw upstreamError('ReadyForQuery before authentication');
          reader.detach();
          signal.removeEventListener('abort', onTimeout);
          return { socket, parser, parameters, key, rest: reader.drain() };
        default:
          if (m.name.startsWith('Authentication')) {
            const reply = await auth.respond(m as Parameters<UpstreamAuthenticator['respond']>[0]);
            if (reply) socket.write(reply);
            break;
          }
          throw upstreamError(`unexpected ${m.name} during start-up`);
      }
    }
  } catch (e) {
    signal.removeEventListener('abort', onTimeout);
    reader.detach();
    socket.destroy();
    if (e instanceof GatehouseError) throw e.code === 'ERR_UPSTREAM' ? e : upstreamError(e.detail ?? e.message, e);
    throw upstreamError(e instanceof Error ? e.message : String(e), e);
  }
}

/** Sends a CancelRequest for the upstream backend `key` (fire and forget; errors are ignored). */
export function cancelUpstream(target: UpstreamTarget, key: BackendKeyData): void {
  const s = netConnect({ host: target.host, port: target.port });
  s.on('error', () => s.destroy());
  s.setTimeout(5000, () => s.destroy());
  // As libpq does: send, then wait for the server to close. Half-closing first makes PgBouncer
  // (1.18) see an unexpected EOF on the cancel connection and abort.
  s.once('connect', () => s.write(frontend.cancelRequest(key.processId, key.secretKey)));
  s.resume();
}
