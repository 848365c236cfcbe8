/**
 * The gateway's own connection to the target MySQL / MariaDB server: TCP, optional TLS (SSLRequest,
 * then TLS, then the handshake response), and authentication with the credentials Gatehouse holds
 * (mysql_native_password, caching_sha2_password fast and full paths, sha256_password; see auth.ts).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
 *
 * Target URL: `mysql://user:password@host:3306/database`, with optional query parameters
 * `ssl-mode` (`DISABLED`, `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`; default
 * `VERIFY_IDENTITY` when the connection has `tls:` options, else `DISABLED`),
 * `allow-public-key-retrieval=true` (caching_sha2_password full authentication without TLS may ask
 * the server for its RSA key) and `server-public-key=/path/key.pem` (the key, pinned).
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { GatehouseError } from '../../core/errors.js';
import type { Connection } from '../../core/sessions/types.js';
import { UpstreamAuthenticator } from './auth.js';
import { Capability, MAX_ALLOWED_PACKET_LIMIT, PacketParser, Sequence, client, parseAuthPhasePacket, parseGreeting, type HandshakeV10, type Packet } from './protocol.js';

export type SslMode = 'disabled' | 'preferred' | 'required' | 'verify_ca' | 'verify_identity';

/** Where and how to reach a target, parsed once per connection. */
export interface MysqlTarget {
  host: string;
  port: number;
  user: string;
  password?: string;
  database?: string;
  sslMode: SslMode;
  tls?: ConnectionOptions;
  allowPublicKeyRetrieval: boolean;
  serverPublicKey?: string;
}

const SSL_MODES: readonly SslMode[] = ['disabled', 'preferred', 'required', 'verify_ca', 'verify_identity'];

/** Parses `mysql://user:pw@host:port/db?ssl-mode=…` plus the connection's `tls:` options. */
export function mysqlTarget(conn: Connection): MysqlTarget {
  const u = new URL(conn.target);
  const tlsOpt = conn.options.tls as { ca?: string; rejectUnauthorized?: boolean; servername?: string; cert?: string; key?: string } | undefined;
  const q = (k: string): string | null => u.searchParams.get(k) ?? u.searchParams.get(k.replaceAll('-', '_')) ?? u.searchParams.get(k.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase()));
  const modeRaw = (q('ssl-mode') ?? (tlsOpt ? 'verify_identity' : 'disabled')).toLowerCase().replaceAll('-', '_') as SslMode;
  if (!SSL_MODES.includes(modeRaw)) throw new GatehouseError('ERR_CONFIG', `connection ${conn.name}: unsupported ssl-mode ${modeRaw}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const pinned = q('server-public-key');
  const target: MysqlTarget = {
    host,
    port: u.port === '' ? 3306 : Number(u.port),
    user: decodeURIComponent(u.username) || 'root',
    sslMode: modeRaw,
    allowPublicKeyRetrieval: /^(1|true|yes)$/i.test(q('allow-public-key-retrieval') ?? ''),
    ...(db ? { database: db } : {}),
    ...(pinned ? { serverPublicKey: readFileSync(pinned, 'utf8') } : {}),
  };
  if (u.password !== '') target.password = decodeURIComponent(u.password);
  if (target.sslMode !== 'disabled') {
    const verify = target.sslMode === 'verify_ca' || target.sslMode === 'verify_identity';
    target.tls = {
      rejectUnauthorized: tlsOpt?.rejectUnauthorized ?? verify,
      // No SNI for an IP address (RFC 6066); the certificate is then checked against `host`.
      ...(tlsOpt?.servername !== undefined || isIP(host) === 0 ? { servername: tlsOpt?.servername ?? host } : {}),
      ...(tlsOpt?.ca ? { ca: readFileSync(tlsOpt.ca) } : {}),
      ...(tlsOpt?.cert && tlsOpt.key ? { cert: readFileSync(tlsOpt.cert), key: readFileSync(tlsOpt.key) } : {}),
      ...(target.sslMode === 'verify_ca' ? { checkServerIdentity: () => undefined } : {}),
    };
  }
  return target;
}

/** A logged-in upstream connection, ready for commands. */
export interface MysqlUpstream {
  socket: Socket | TLSSocket;
  /** Frames what the server sends from now on (bytes after the OK already pushed). */
  parser: PacketParser;
  greeting: HandshakeV10;
  /** Capabilities negotiated with the server. */
  capabilities: number;
  /** Status flags of the server's OK (autocommit, NO_BACKSLASH_ESCAPES, …). */
  statusFlags: number;
  /** Packets after the OK that arrived in the same read (normally none). */
  rest: Packet[];
  encrypted: boolean;
}

export interface UpstreamLoginOptions {
  /** Capabilities to ask for (intersected with the server's). */
  capabilities: number;
  characterSet: number;
  attributes?: Readonly<Record<string, string>>;
}

const CONNECT_TIMEOUT_MS = 10_000;

function upstreamError(detail: string, cause?: unknown): GatehouseError {
  return new GatehouseError('ERR_UPSTREAM', 'could not connect to the target database', { detail, ...(cause === undefined ? {} : { cause }) });
}

/** Reads whole packets from a socket, one at a time. */
class Reader {
  readonly #queue: Packet[] = [];
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
    this.#failure ??= upstreamError('the server closed the connection during the handshake');
    this.#notify();
  };
  #onError = (e: Error): void => {
    this.#failure ??= upstreamError(`${e.name}: ${e.message}`, e);
    this.#notify();
  };

  constructor(
    public socket: Socket | TLSSocket,
    readonly parser: PacketParser,
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

  get pending(): number {
    return this.#queue.length;
  }

  async next(timedOut: Promise<never>): Promise<Packet> {
    for (;;) {
      const p = this.#queue.shift();
      if (p) return p;
      if (this.#failure) throw this.#failure;
      await Promise.race([new Promise<void>((resolve) => (this.#wake = resolve)), timedOut]);
    }
  }

  drain(): Packet[] {
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

/**
 * Connects and logs in to the target with the gateway's credentials. Throws `ERR_UPSTREAM` (the
 * server's or the network's words in `detail`, for the log only).
 */
export async function connectUpstream(target: MysqlTarget, options: UpstreamLoginOptions): Promise<MysqlUpstream> {
  const signal = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  let socket: Socket | TLSSocket = await connectTcp(target.host, target.port, signal);
  let expire: (e: GatehouseError) => void = () => undefined;
  const timedOut = new Promise<never>((_, reject) => (expire = reject));
  timedOut.catch(() => undefined);
  const onTimeout = (): void => expire(upstreamError('handshake timed out'));
  signal.addEventListener('abort', onTimeout, { once: true });
  // The server's rows may be as large as its max_allowed_packet allows (1 GiB at most).
  const parser = new PacketParser({ maxPayloadBytes: MAX_ALLOWED_PACKET_LIMIT });
  const reader = new Reader(socket, parser);
  const seq = new Sequence();
  try {
    const first = await reader.next(timedOut);
    seq.receive(first);
    const greeting = parseGreeting(first);
    if (greeting.name === 'ErrPacket') throw upstreamError(`server refused the connection: ${greeting.code} ${greeting.message}`);
    const auth = new UpstreamAuthenticator({
      user: target.user,
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.database === undefined ? {} : { database: target.database }),
      allowPublicKeyRetrieval: target.allowPublicKeyRetrieval,
      ...(target.serverPublicKey === undefined ? {} : { serverPublicKey: target.serverPublicKey }),
    });
    const hs = { capabilities: options.capabilities, characterSet: options.characterSet, maxPacketSize: MAX_ALLOWED_PACKET_LIMIT, ...(options.attributes ? { attributes: options.attributes } : {}) };
    let encrypted = false;
    if (target.sslMode !== 'disabled') {
      if (greeting.capabilities & Capability.SSL) {
        socket.write(seq.frame(auth.sslRequest(greeting, hs)));
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
        parser.assertEmpty('the server sent unencrypted data after the SSL request');
        reader.replace(tls);
        encrypted = true;
      } else if (target.sslMode !== 'preferred') {
        throw upstreamError(`server at ${target.host}:${target.port} does not support TLS (ssl-mode=${target.sslMode})`);
      }
    }
    socket.write(seq.frame(auth.handshakeResponse(greeting, hs, encrypted)));
    let statusFlags = greeting.statusFlags;
    while (!auth.authenticated) {
      const p = await reader.next(timedOut);
      seq.receive(p);
      const m = parseAuthPhasePacket(p, auth.capabilities);
      if (m.name === 'OkPacket') statusFlags = m.statusFlags;
      const reply = auth.respond(m);
      if (reply) socket.write(seq.frame(reply));
    }
    reader.detach();
    signal.removeEventListener('abort', onTimeout);
    return { socket, parser, greeting, capabilities: auth.capabilities, statusFlags, rest: reader.drain(), encrypted };
  } catch (e) {
    signal.removeEventListener('abort', onTimeout);
    reader.detach();
    socket.destroy();
    if (e instanceof GatehouseError) throw e.code === 'ERR_UPSTREAM' ? e : upstreamError(e.detail ?? e.message, e);
    throw upstreamError(e instanceof Error ? e.message : String(e), e);
  }
}

/**
 * Stops the statement running on the server's connection `threadId` (`KILL QUERY`), from a
 * connection of its own. Fire and forget: errors are only returned to the log.
 */
export async function killQuery(target: MysqlTarget, threadId: number): Promise<void> {
  const up = await connectUpstream(target, { capabilities: Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.TRANSACTIONS, characterSet: 45 });
  await new Promise<void>((resolve) => {
    const done = (): void => {
      up.socket.destroy();
      resolve();
    };
    up.socket.setTimeout(5000, done);
    up.socket.once('data', () => {
      up.socket.end(encodeQuit());
      done();
    });
    up.socket.once('error', done);
    up.socket.once('close', done);
    up.socket.write(new Sequence().frame(client.query(`KILL QUERY ${Math.trunc(threadId)}`)));
  });
}

function encodeQuit(): Buffer {
  return new Sequence().frame(client.quit());
}
