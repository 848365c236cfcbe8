/**
 * The gateway's own connection to the target PostgreSQL server: TCP, optional TLS (SSLRequest,
 * protocol-flow §55.2.10), the startup packet with the connection's credentials, authentication
 * (SCRAM-SHA-256, md5, cleartext, trust) and the startup replies up to the first ReadyForQuery.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { GatehouseError } from '../../core/errors.js';
import type { Connection } from '../../core/sessions/types.js';
import { Deadline, MessageReader, asUpstreamError, connectTcp, startTargetTls, targetTlsOptions, upstreamError, type TargetTlsOptions } from '../sockets.js';
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
  const tlsOpt = conn.options.tls as TargetTlsOptions | undefined;
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
    target.tls = targetTlsOptions(host, tlsOpt, verify, target.sslmode === 'verify-ca');
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

/** Startup parameters an agent may pass through to the target (the rest stay at the gateway). */
export const PASSTHROUGH_PARAMS = new Set(['application_name', 'client_encoding', 'datestyle', 'timezone', 'intervalstyle', 'extra_float_digits']);

/**
 * Connects and logs in to the target. `clientParams` are the agent's startup parameters; only
 * {@link PASSTHROUGH_PARAMS} reach the server. Throws `ERR_UPSTREAM` (detail for the log only).
 */
export async function connectUpstream(target: UpstreamTarget, clientParams: Readonly<Record<string, string>>): Promise<Upstream> {
  const signal = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  let socket: Socket | TLSSocket = await connectTcp(target.host, target.port, signal);
  const deadline = new Deadline(signal, () => upstreamError('start-up timed out'));
  const parser = new BackendParser();
  const reader = new MessageReader<BackendMessage>(socket, parser, {
    closed: () => upstreamError('the server closed the connection during start-up'),
    error: (e) => upstreamError(`${e.name}: ${e.message}`, e),
  });
  try {
    if (target.sslmode !== 'disable') {
      parser.expectEncryptionResponse();
      socket.write(frontend.sslRequest());
      const answer = await reader.next(deadline.expired);
      if (answer.name !== 'EncryptionResponse') throw upstreamError(`unexpected ${answer.name} in answer to SSLRequest`);
      if (answer.accepted) {
        reader.detach();
        socket = await startTargetTls(socket as Socket, target.host, target.port, target.tls, deadline.expired);
        reader.replace(socket);
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
      const m = await reader.next(deadline.expired);
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
          deadline.clear();
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
    deadline.clear();
    reader.detach();
    socket.destroy();
    throw asUpstreamError(e);
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
