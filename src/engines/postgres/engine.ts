/**
 * The PostgreSQL engine: Gatehouse as a PostgreSQL server toward the agent.
 *
 * Start-up (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP):
 * SSLRequest → `S` and TLS with the listener's certificate (or `N` when none is configured);
 * GSSENCRequest → `N`; CancelRequest → forwarded to the target backend it names; StartupMessage →
 * `database` names the connection, the password (AuthenticationCleartextPassword) is the agent's
 * OIDC access token. Cleartext passwords are taken only inside TLS, from loopback clients, or when
 * the connection sets `allow_plaintext`. After the token and the session checks pass, Gatehouse logs
 * in to the target with the connection's own credentials and replays its ParameterStatus messages;
 * BackendKeyData carries a key of the gateway's own, mapped to the target's for CancelRequest.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { GatehouseError, toGatehouseError } from '../../core/errors.js';
import type { Connection } from '../../core/sessions/types.js';
import { isLoopbackHost } from '../../config/schema.js';
import { listenTcp } from '../listener.js';
import { sessionEndedBy } from '../session-end.js';
import { Deadline, MessageReader } from '../sockets.js';
import type { Engine, EngineContext, EngineListener } from '../types.js';
import { CatalogResolver } from './catalog.js';
import { initClassifier } from './classify.js';
import { backend, FrontendParser, type FrontendMessage, type StartupMessage } from './protocol.js';
import { PgProxy } from './proxy.js';
import { cancelUpstream, connectUpstream, upstreamTarget, type Upstream, type UpstreamTarget } from './upstream.js';
import { errorFields } from './wire-error.js';

const STARTUP_TIMEOUT_MS = 30_000;

interface CancelEntry {
  secret: Buffer;
  target: UpstreamTarget;
  upstream: NonNullable<Upstream['key']>;
}

/** Reads start-up phase messages from the agent, one at a time, across the switch to TLS. */
class StartupReader extends MessageReader<FrontendMessage, FrontendParser> {
  constructor(socket: Socket) {
    super(socket, new FrontendParser(), { closed: () => new GatehouseError('ERR_PROTOCOL', 'client closed the connection during start-up') });
  }

  /** Wraps the socket in server-side TLS; bytes the client sent in the clear before it are refused. */
  async startTls(ctx: NonNullable<EngineContext['tls']>, signal: AbortSignal): Promise<void> {
    this.parser.expectStartup();
    if (this.pending > 0) throw new GatehouseError('ERR_PROTOCOL', 'received unencrypted data after SSL request');
    this.detach();
    const tls = new TLSSocket(this.socket, { isServer: true, secureContext: ctx });
    // The start-up deadline covers the handshake too: a client that never finishes it is dropped.
    const onAbort = (): void => void tls.destroy(new GatehouseError('ERR_PROTOCOL', 'start-up timed out during the TLS handshake'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        tls.once('secure', resolve);
        tls.once('error', reject);
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    this.replace(tls);
  }
}

export class PostgresEngine implements Engine {
  readonly protocol = 'postgres' as const;
  readonly #ctx: EngineContext;
  readonly #cancel = new Map<number, CancelEntry>();
  readonly #catalogs = new Map<string, CatalogResolver>();
  readonly #targets = new Map<string, UpstreamTarget>();
  readonly #live = new Set<PgProxy>();

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  async listen(host: string, port: number): Promise<EngineListener> {
    await initClassifier();
    const listener = await listenTcp(host, port, {
      logger: this.#ctx.logger,
      name: 'postgres',
      startup: (socket) => this.#startup(socket),
      unexpected: 'postgres start-up failed unexpectedly',
      endSessions: () => {
        for (const p of this.#live) p.shutdown('gateway shutting down');
      },
    });
    return {
      protocol: 'postgres',
      address: listener.address,
      close: async () => {
        await listener.close();
        await Promise.all([...this.#catalogs.values()].map((c) => c.close().catch(() => undefined)));
      },
    };
  }

  #target(conn: Connection): UpstreamTarget {
    let t = this.#targets.get(conn.name);
    if (!t) this.#targets.set(conn.name, (t = upstreamTarget(conn)));
    return t;
  }

  #catalog(conn: Connection, t: UpstreamTarget): CatalogResolver {
    let c = this.#catalogs.get(conn.name);
    if (!c) {
      c = new CatalogResolver({
        host: t.host,
        port: t.port,
        user: t.user,
        database: t.database,
        ...(t.password === undefined ? {} : { password: t.password }),
        ...(t.tls ? { ssl: t.tls } : {}),
        application_name: 'gatehouse-catalog',
      });
      this.#catalogs.set(conn.name, c);
    }
    return c;
  }

  /** Refuses the start-up with a FATAL ErrorResponse and closes. */
  #refuse(socket: Socket | TLSSocket, err: GatehouseError, remote: string | undefined): void {
    const log = err.code === 'ERR_PROTOCOL' || err.code === 'ERR_UPSTREAM' ? 'warn' : 'info';
    this.#ctx.logger[log]({ remote, err: err.toJSON() }, 'postgres login refused');
    this.#ctx.metrics.authFailures.inc({ protocol: 'postgres', code: err.code });
    if (socket.writable) socket.end(backend.errorResponse(errorFields(err, 'FATAL')));
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  async #startup(raw: Socket): Promise<void> {
    const ctx = this.#ctx;
    const remote = raw.remoteAddress;
    const reader = new StartupReader(raw);
    const signal = AbortSignal.timeout(STARTUP_TIMEOUT_MS);
    // Not cleared: once the start-up is over nothing waits on it, and it fires once, harmlessly.
    const deadline = new Deadline(signal, () => new GatehouseError('ERR_PROTOCOL', 'start-up timed out'));
    let startup: StartupMessage | undefined;
    let encrypted = false;
    try {
      while (startup === undefined) {
        const m = await reader.next(deadline.expired);
        switch (m.name) {
          case 'SSLRequest':
            if (encrypted) throw new GatehouseError('ERR_PROTOCOL', 'SSLRequest inside TLS');
            reader.socket.write(backend.sslResponse(ctx.tls !== undefined));
            if (ctx.tls) {
              await reader.startTls(ctx.tls, signal);
              encrypted = true;
            }
            break;
          case 'GSSENCRequest':
            reader.socket.write(backend.gssencResponse());
            break;
          case 'CancelRequest':
            this.#onCancel(m.processId, m.secretKey);
            reader.detach();
            reader.socket.destroy();
            return;
          case 'StartupMessage':
            startup = m;
            break;
          default:
            throw new GatehouseError('ERR_PROTOCOL', `unexpected ${m.name} during start-up`);
        }
      }
    } catch (e) {
      reader.detach();
      this.#refuse(reader.socket, toGatehouseError(e, 'ERR_PROTOCOL'), remote);
      return;
    }
    const socket = reader.socket;
    let session: Awaited<ReturnType<EngineContext['sessions']['open']>> | undefined;
    let upstream: Upstream | undefined;
    try {
      const params = startup.params;
      if (params.replication !== undefined && params.replication !== 'false' && params.replication !== '0') {
        throw new GatehouseError('ERR_PROTOCOL', 'replication connections are not supported through the gateway');
      }
      const unsupported = Object.keys(params).filter((k) => k.startsWith('_pq_.'));
      if (startup.minorVersion > 0 || unsupported.length > 0) {
        // We speak 3.0 (BackendKeyData with 4-byte keys) and no protocol extensions.
        socket.write(backend.negotiateProtocolVersion(0, unsupported));
      }
      const name = params.database ?? params.user ?? '';
      const conn = ctx.connection(name);
      if (conn === undefined || conn.type !== 'postgres') {
        throw new GatehouseError('ERR_UNKNOWN_CONNECTION', `connection "${name}" does not exist (the database name is the Gatehouse connection name)`);
      }
      const loopback = remote !== undefined && (isLoopbackHost(remote) || remote === '::ffff:127.0.0.1');
      if (!encrypted && !loopback && conn.options.allowPlaintext !== true) {
        throw new GatehouseError('ERR_TLS_REQUIRED', 'this gateway takes tokens only over TLS: connect with sslmode=require');
      }
      socket.write(backend.authenticationCleartextPassword());
      const pw = await reader.next(deadline.expired);
      if (pw.name !== 'PasswordMessage' || pw.password === null) throw new GatehouseError('ERR_PROTOCOL', 'expected a password message');
      const token = pw.password.trim();
      if (token === '') throw new GatehouseError('ERR_UNAUTHENTICATED', 'an OIDC access token is required as the password');
      const identity = await ctx.verifyToken(token);
      session = await ctx.sessions.open({ protocol: 'postgres', identity, connection: conn, ...(remote ? { remoteAddr: remote } : {}) });
      const target = this.#target(conn);
      upstream = await connectUpstream(target, params);
      // Expired, revoked or killed while the target login was under way: the proxy would never hear of it.
      if (session.ended.aborted) throw sessionEndedBy(session.ended);
      const catalog = this.#catalog(conn, target);

      // The agent's view of the start-up: the target's parameters, the gateway's cancel key.
      const out: Buffer[] = [backend.authenticationOk()];
      let clientEncoding = 'UTF8';
      for (const p of upstream.parameters) {
        out.push(p.raw);
        if (p.parameter === 'client_encoding') clientEncoding = p.value;
      }
      let pid = 0;
      const secret = randomBytes(4);
      if (upstream.key) {
        do pid = randomInt(1, 0x7fffffff);
        while (this.#cancel.has(pid));
        this.#cancel.set(pid, { secret, target, upstream: upstream.key });
      }
      out.push(backend.backendKeyData(pid, secret), backend.readyForQuery('I'));
      socket.cork();
      for (const b of out) socket.write(b);
      socket.uncork();

      reader.detach();
      const leftover = reader.drain();
      const s = session;
      const upstreamKey = upstream.key;
      const proxy: PgProxy = new PgProxy({
        client: socket,
        clientParser: reader.parser,
        server: upstream.socket,
        serverParser: upstream.parser,
        session: s,
        catalog,
        logger: ctx.logger.child({ session: s.id }),
        metrics: ctx.metrics,
        idleTimeoutMs: conn.options.idleTimeoutMs === undefined ? ctx.idleTimeoutMs : Number(conn.options.idleTimeoutMs),
        pendingClient: leftover,
        pendingServer: upstream.rest,
        clientEncoding,
        ...(upstreamKey ? { cancelUpstream: () => cancelUpstream(target, upstreamKey) } : {}),
        onClose: () => {
          this.#live.delete(proxy);
          this.#cancel.delete(pid);
          ctx.metrics.sessionsActive.dec({ protocol: 'postgres' });
        },
      });
      this.#live.add(proxy);
      ctx.metrics.sessionsTotal.inc({ protocol: 'postgres', connection: conn.name });
      ctx.metrics.sessionsActive.inc({ protocol: 'postgres' });
    } catch (e) {
      reader.detach();
      const err = toGatehouseError(e, 'ERR_INTERNAL');
      if (err.code === 'ERR_INTERNAL') ctx.logger.error({ err: e }, 'postgres start-up failed');
      upstream?.socket.destroy();
      if (session) await session.close(`start-up failed: ${err.code}`).catch(() => undefined);
      this.#refuse(socket, err, remote);
    }
  }

  #onCancel(pid: number, secret: Buffer): void {
    const e = this.#cancel.get(pid);
    if (!e || e.secret.length !== secret.length || !timingSafeEqual(e.secret, secret)) {
      this.#ctx.logger.info({ pid }, 'cancel request for an unknown backend ignored');
      return;
    }
    cancelUpstream(e.target, e.upstream);
  }
}

/** The engine factory the composition root uses. */
export function postgresEngine(ctx: EngineContext): Engine {
  return new PostgresEngine(ctx);
}
