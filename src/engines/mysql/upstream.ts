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
import type { Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { GatehouseError } from '../../core/errors.js';
import type { Connection } from '../../core/sessions/types.js';
import { Deadline, MessageReader, asUpstreamError, connectTcp, startTargetTls, targetTlsOptions, upstreamError, type TargetTlsOptions } from '../sockets.js';
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
  const tlsOpt = conn.options.tls as TargetTlsOptions | undefined;
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
    target.tls = targetTlsOptions(host, tlsOpt, verify, target.sslMode === 'verify_ca');
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

/**
 * Connects and logs in to the target with the gateway's credentials. Throws `ERR_UPSTREAM` (the
 * server's or the network's words in `detail`, for the log only).
 */
export async function connectUpstream(target: MysqlTarget, options: UpstreamLoginOptions): Promise<MysqlUpstream> {
  const signal = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  let socket: Socket | TLSSocket = await connectTcp(target.host, target.port, signal);
  const deadline = new Deadline(signal, () => upstreamError('handshake timed out'));
  // The server's rows may be as large as its max_allowed_packet allows (1 GiB at most).
  const parser = new PacketParser({ maxPayloadBytes: MAX_ALLOWED_PACKET_LIMIT });
  const reader = new MessageReader<Packet>(socket, parser, {
    closed: () => upstreamError('the server closed the connection during the handshake'),
    error: (e) => upstreamError(`${e.name}: ${e.message}`, e),
  });
  const seq = new Sequence();
  try {
    const first = await reader.next(deadline.expired);
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
        socket = await startTargetTls(socket as Socket, target.host, target.port, target.tls, deadline.expired);
        parser.assertEmpty('the server sent unencrypted data after the SSL request');
        reader.replace(socket);
        encrypted = true;
      } else if (target.sslMode !== 'preferred') {
        throw upstreamError(`server at ${target.host}:${target.port} does not support TLS (ssl-mode=${target.sslMode})`);
      }
    }
    socket.write(seq.frame(auth.handshakeResponse(greeting, hs, encrypted)));
    let statusFlags = greeting.statusFlags;
    while (!auth.authenticated) {
      const p = await reader.next(deadline.expired);
      seq.receive(p);
      const m = parseAuthPhasePacket(p, auth.capabilities);
      if (m.name === 'OkPacket') statusFlags = m.statusFlags;
      const reply = auth.respond(m);
      if (reply) socket.write(seq.frame(reply));
    }
    reader.detach();
    deadline.clear();
    return { socket, parser, greeting, capabilities: auth.capabilities, statusFlags, rest: reader.drain(), encrypted };
  } catch (e) {
    deadline.clear();
    reader.detach();
    socket.destroy();
    throw asUpstreamError(e);
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
