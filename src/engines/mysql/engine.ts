/**
 * The MySQL / MariaDB engine: Gatehouse as a MySQL server toward the agent.
 *
 * Connection phase (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html):
 * HandshakeV10 (default plugin mysql_native_password, the capabilities below); an SSLRequest is
 * answered with TLS on the listener's certificate (the client's TLS ClientHello may follow the
 * SSLRequest in the same read: those bytes are handed back to the socket before wrapping it); the
 * HandshakeResponse41's database names the Gatehouse connection; then an AuthSwitchRequest to
 * `mysql_clear_password` asks for the agent's OIDC access token as the password. Cleartext passwords
 * are taken only inside TLS, from loopback clients, or when the connection sets `allow_plaintext`.
 * After the token and the session checks pass, Gatehouse logs in to the target with the
 * connection's own credentials and answers the agent's login with OK.
 *
 * Capabilities are negotiated honestly: compression is not offered (a client that asks for it
 * anyway is refused), nor query attributes, MariaDB's extended capabilities or optional metadata;
 * those that shape packets (CLIENT_DEPRECATE_EOF, CLIENT_SESSION_TRACK, transactions) are asked of
 * the target exactly as the agent negotiated them, so answers pass through unchanged.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { isLoopbackHost } from '../../config/schema.js';
import { GatehouseError, toGatehouseError } from '../../core/errors.js';
import type { SqlCommand } from '../../core/command.js';
import type { SessionContext, Connection } from '../../core/sessions/types.js';
import { listenTcp } from '../listener.js';
import { sessionEndedBy } from '../session-end.js';
import { Deadline, MessageReader } from '../sockets.js';
import type { Engine, EngineContext, EngineListener } from '../types.js';
import {
  Capability,
  ClientParser,
  Sequence,
  ServerStatus,
  generateScramble,
  physicalPacketCount,
  server,
  type ClientMessage,
  type HandshakeResponse41,
} from './protocol.js';
import { MysqlCatalog } from './catalog.js';
import { classifyMysql } from './classify.js';
import { MysqlProxy } from './proxy.js';
import { connectUpstream, killQuery, mysqlTarget, type MysqlTarget, type MysqlUpstream } from './upstream.js';
import { errorPacket } from './wire-error.js';

const STARTUP_TIMEOUT_MS = 30_000;
const DEFAULT_VERSION = '8.0.36-gatehouse';
/** Largest command an agent may send (MySQL 8's default max_allowed_packet). */
const MAX_COMMAND_BYTES = 64 * 1024 * 1024;

const C = Capability;
/** What the gateway offers the agent (CLIENT_SSL is added when the listener has a certificate). */
const OFFERED =
  C.LONG_PASSWORD |
  C.FOUND_ROWS |
  C.LONG_FLAG |
  C.CONNECT_WITH_DB |
  C.LOCAL_FILES |
  C.IGNORE_SPACE |
  C.PROTOCOL_41 |
  C.INTERACTIVE |
  C.TRANSACTIONS |
  C.SECURE_CONNECTION |
  C.MULTI_STATEMENTS |
  C.MULTI_RESULTS |
  C.PS_MULTI_RESULTS |
  C.PLUGIN_AUTH |
  C.CONNECT_ATTRS |
  C.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  C.DEPRECATE_EOF |
  C.SESSION_TRACK;
/** Asked of the target as the agent negotiated them. */
const PASSED = C.FOUND_ROWS | C.LONG_FLAG | C.LOCAL_FILES | C.IGNORE_SPACE | C.INTERACTIVE | C.TRANSACTIONS | C.MULTI_STATEMENTS | C.MULTI_RESULTS | C.PS_MULTI_RESULTS | C.DEPRECATE_EOF | C.SESSION_TRACK;
/** The gateway's own toward the target. */
const OWN = C.LONG_PASSWORD | C.PROTOCOL_41 | C.SECURE_CONNECTION | C.PLUGIN_AUTH | C.PLUGIN_AUTH_LENENC_CLIENT_DATA | C.CONNECT_ATTRS;
/** They shape packets: the target must have the very same ones as the agent. */
const SHAPING = C.TRANSACTIONS | C.DEPRECATE_EOF | C.SESSION_TRACK;

/**
 * Handshake collations (one byte) of character sets whose text is ASCII-compatible and cannot hide
 * a backslash inside a multi-byte character: utf8mb4, utf8mb3, latin1, ascii, binary. Others (gbk,
 * big5, sjis, cp932, gb18030, and sets the classifier cannot read) are refused.
 */
const SAFE_COLLATIONS = new Set<number>([
  // utf8mb4
  45, 46, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 255,
  // utf8mb3
  33, 76, 83, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 223,
  // latin1, ascii, binary
  5, 8, 15, 31, 47, 48, 49, 94, 11, 65, 63,
]);

const ATTRIBUTE_PASSED = /^(?:_client_name|_client_version|_os|_platform|_pid|_runtime_version|_connector_name|_connector_version|_server_host|program_name)$/;

function loopback(remote: string | undefined): boolean {
  return remote !== undefined && (isLoopbackHost(remote) || remote === '::ffff:127.0.0.1');
}

/** Reads connection-phase messages from the agent, one at a time, across the switch to TLS. */
class StartupReader extends MessageReader<ClientMessage, ClientParser> {
  constructor(socket: Socket, parser: ClientParser) {
    super(socket, parser, { closed: () => new GatehouseError('ERR_PROTOCOL', 'client closed the connection during the handshake') });
  }

  /**
   * Wraps the socket in server-side TLS after an SSLRequest. The client does not wait for an
   * answer: the start of its TLS handshake may already have been read; it goes back to the socket.
   */
  async startTls(ctx: NonNullable<EngineContext['tls']>, signal: AbortSignal): Promise<void> {
    if (this.pending > 0) throw new GatehouseError('ERR_PROTOCOL', 'received unencrypted data after the SSL request');
    this.detach();
    const raw = this.socket as Socket;
    raw.pause();
    const early = this.parser.takeTlsBytes();
    if (early.length > 0) raw.unshift(early);
    const tls = new TLSSocket(raw, { isServer: true, secureContext: ctx });
    const onAbort = (): void => void tls.destroy(new GatehouseError('ERR_PROTOCOL', 'the handshake timed out during TLS'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        tls.once('secure', resolve);
        tls.once('error', reject);
        tls.once('close', () => reject(new GatehouseError('ERR_PROTOCOL', 'client closed the connection during TLS')));
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    this.parser.startTls();
    this.replace(tls);
  }
}

interface Known {
  version: string;
  capabilities: number;
}

export class MysqlEngine implements Engine {
  readonly protocol = 'mysql' as const;
  readonly #ctx: EngineContext;
  readonly #targets = new Map<string, MysqlTarget>();
  readonly #catalogs = new Map<string, MysqlCatalog>();
  readonly #known = new Map<string, Known>();
  readonly #live = new Map<number, MysqlProxy>();
  #nextId = 1;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  async listen(host: string, port: number): Promise<EngineListener> {
    const listener = await listenTcp(host, port, {
      logger: this.#ctx.logger,
      name: 'mysql',
      startup: (socket) => this.#startup(socket),
      unexpected: 'mysql handshake failed unexpectedly',
      endSessions: () => {
        for (const p of this.#live.values()) p.shutdown('gateway shutting down');
      },
    });
    this.#probe();
    return {
      protocol: 'mysql',
      address: listener.address,
      close: async () => {
        await listener.close();
        await Promise.all([...this.#catalogs.values()].map((c) => c.close()));
      },
    };
  }

  /** The MySQL connections of the configuration, in order. */
  #mysqlConnections(): Connection[] {
    const out: Connection[] = [];
    for (const c of this.#ctx.config.connections) {
      const conn = this.#ctx.connection(c.name);
      if (conn?.type === 'mysql') out.push(conn);
    }
    return out;
  }

  /**
   * Learns each target's version and capabilities in the background (a login and COM_QUIT), so that
   * the first agent already gets the target's version in the greeting (drivers pick SQL by it).
   */
  #probe(): void {
    for (const conn of this.#mysqlConnections()) {
      void (async () => {
        try {
          const up = await connectUpstream(this.#target(conn), { capabilities: OWN, characterSet: 45 });
          this.#remember(conn.name, up);
          up.socket.end(new Sequence().frame(Buffer.of(0x01)));
        } catch (e) {
          this.#ctx.logger.debug({ connection: conn.name, err: toGatehouseError(e, 'ERR_UPSTREAM').toJSON() }, 'mysql target probe failed');
        }
      })();
    }
  }

  #remember(name: string, up: MysqlUpstream): void {
    this.#known.set(name, { version: up.greeting.serverVersion, capabilities: up.greeting.capabilities });
  }

  /** What the greeting says, before the agent has named its connection. */
  #greetingFacts(): { version: string; capabilities: number } {
    let capabilities = OFFERED;
    let version: string | undefined;
    for (const conn of this.#mysqlConnections()) {
      const k = this.#known.get(conn.name);
      if (!k) continue;
      version ??= k.version;
      // Do not offer packet shapes a known target lacks.
      capabilities &= ~(SHAPING & ~k.capabilities);
    }
    if (this.#ctx.tls) capabilities |= C.SSL;
    return { version: version ?? DEFAULT_VERSION, capabilities: capabilities >>> 0 };
  }

  /** The catalog of a connection's target (a side pool, created when first used). */
  #catalog(conn: Connection, target: MysqlTarget): MysqlCatalog {
    let c = this.#catalogs.get(conn.name);
    if (!c) this.#catalogs.set(conn.name, (c = new MysqlCatalog(target)));
    return c;
  }

  #target(conn: Connection): MysqlTarget {
    let t = this.#targets.get(conn.name);
    if (!t) this.#targets.set(conn.name, (t = mysqlTarget(conn)));
    return t;
  }

  /** Refuses the login with an ERR packet and closes. */
  #refuse(socket: Socket | TLSSocket, seq: Sequence, caps: number, err: GatehouseError, remote: string | undefined): void {
    const log = err.code === 'ERR_PROTOCOL' || err.code === 'ERR_UPSTREAM' || err.code === 'ERR_INTERNAL' ? 'warn' : 'info';
    this.#ctx.logger[log]({ remote, err: err.toJSON() }, 'mysql login refused');
    this.#ctx.metrics.authFailures.inc({ protocol: 'mysql', code: err.code });
    if (socket.writable) {
      try {
        socket.end(seq.frame(server.err(errorPacket(err, 'login'), caps | C.PROTOCOL_41)));
      } catch {
        socket.end();
      }
    }
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  /** The schema a login selects besides its connection is decided as `USE <schema>` (never held for review). */
  async #checkSchema(session: SessionContext, schema: string): Promise<void> {
    const text = `USE \`${schema.replaceAll('`', '``')}\``;
    const command: SqlCommand = { kind: 'sql', dialect: 'mysql', text, statements: [...classifyMysql(text)] };
    let d = await session.authorize(command);
    if (d.effect === 'review') d = { effect: 'deny', rule: d.rule, reason: 'selecting this database needs a review: connect without it and run USE', code: 'ERR_REVIEW_REQUIRED' };
    this.#ctx.metrics.commandsTotal.inc({ protocol: 'mysql', effect: d.effect });
    session.record({ type: 'statement', command, decision: d });
    if (d.effect !== 'allow') throw new GatehouseError('ERR_ACCESS_DENIED', `database ${schema}: ${d.reason}`);
  }

  async #startup(raw: Socket): Promise<void> {
    const ctx = this.#ctx;
    const remote = raw.remoteAddress;
    const signal = AbortSignal.timeout(STARTUP_TIMEOUT_MS);
    // Not cleared: once the handshake is over nothing waits on it, and it fires once, harmlessly.
    const deadline = new Deadline(signal, () => new GatehouseError('ERR_PROTOCOL', 'the handshake timed out'));
    const facts = this.#greetingFacts();
    const offered = facts.capabilities;
    const id = this.#nextId++;
    if (this.#nextId > 0xffffffff) this.#nextId = 1;
    const parser = new ClientParser({ serverCapabilities: offered, maxPayloadBytes: MAX_COMMAND_BYTES });
    const reader = new StartupReader(raw, parser);
    const seq = new Sequence();
    let caps = offered;
    const receive = (m: ClientMessage): void => seq.receive({ sequenceId: m.sequenceId, lastSequenceId: (m.sequenceId + physicalPacketCount(m.payload.length) - 1) & 0xff, payload: m.payload, raw: m.raw });
    let hello: HandshakeResponse41;
    let encrypted = false;
    try {
      raw.write(seq.frame(server.handshakeV10({ serverVersion: facts.version, connectionId: id, authPluginData: generateScramble(), capabilities: offered, characterSet: 45, statusFlags: ServerStatus.AUTOCOMMIT, authPlugin: 'mysql_native_password' })));
      let m = await reader.next(deadline.expired);
      if (m.name === 'SSLRequest') {
        receive(m);
        if (!ctx.tls) throw new GatehouseError('ERR_PROTOCOL', 'SSL was requested but this listener has no certificate');
        await reader.startTls(ctx.tls, signal);
        encrypted = true;
        m = await reader.next(deadline.expired);
      }
      if (m.name !== 'HandshakeResponse41') throw new GatehouseError('ERR_PROTOCOL', `expected a handshake response, got ${m.name}`);
      receive(m);
      hello = m;
      caps = parser.capabilities;
    } catch (e) {
      reader.detach();
      this.#refuse(reader.socket, seq, caps, toGatehouseError(e, 'ERR_PROTOCOL'), remote);
      return;
    }
    const socket = reader.socket;
    let session: SessionContext | undefined;
    let upstream: MysqlUpstream | undefined;
    try {
      if (hello.capabilities & (C.COMPRESS | C.ZSTD_COMPRESSION_ALGORITHM)) {
        throw new GatehouseError('ERR_PROTOCOL', 'compression is not supported through the gateway (connect without --compress)');
      }
      if (!(caps & C.PLUGIN_AUTH) || !(caps & C.SECURE_CONNECTION)) throw new GatehouseError('ERR_PROTOCOL', 'the client must support pluggable authentication (MySQL 5.5 or later)');
      if (!SAFE_COLLATIONS.has(hello.characterSet)) {
        throw new GatehouseError('ERR_PROTOCOL', `character set ${hello.characterSet} is not supported through the gateway: use utf8mb4 (gbk, big5, sjis, cp932 and gb18030 can hide a backslash inside a character)`);
      }
      // The database names the connection; tools that send a real schema there (mysqlslap, JDBC
      // URLs) may name the connection as the user instead: the schema is then selected, as USE.
      let conn = hello.database ? ctx.connection(hello.database) : undefined;
      let schema: string | undefined;
      if (conn?.type !== 'mysql') {
        const byUser = ctx.connection(hello.user);
        if (byUser?.type === 'mysql') {
          conn = byUser;
          schema = hello.database || undefined;
        }
      }
      if (conn === undefined || conn.type !== 'mysql') {
        throw new GatehouseError('ERR_UNKNOWN_CONNECTION', `connection "${hello.database || hello.user}" does not exist (the database name, or else the user name, is the Gatehouse connection name)`);
      }
      if (!encrypted && !loopback(remote) && conn.options.allowPlaintext !== true) {
        throw new GatehouseError('ERR_TLS_REQUIRED', 'this gateway takes tokens only over TLS: connect with --ssl (or ssl-mode=REQUIRED)');
      }
      let password: Buffer;
      if (hello.authPlugin === 'mysql_clear_password') password = hello.authResponse;
      else {
        socket.write(seq.frame(server.authSwitchRequest('mysql_clear_password')));
        parser.expectAuthResponse();
        const pw = await reader.next(deadline.expired);
        if (pw.name !== 'AuthResponse') throw new GatehouseError('ERR_PROTOCOL', `expected the password, got ${pw.name}`);
        receive(pw);
        password = pw.data;
      }
      const token = password.toString('utf8').replace(/\0+$/, '').trim();
      if (token === '') throw new GatehouseError('ERR_UNAUTHENTICATED', 'an OIDC access token is required as the password (mysql: --enable-cleartext-plugin --password=$TOKEN)');
      const identity = await ctx.verifyToken(token);
      session = await ctx.sessions.open({ protocol: 'mysql', identity, connection: conn, ...(remote ? { remoteAddr: remote } : {}) });
      let target = this.#target(conn);
      if (schema !== undefined) {
        await this.#checkSchema(session, schema);
        target = { ...target, database: schema };
      }
      const attributes: Record<string, string> = {};
      for (const [k, v] of Object.entries(hello.attributes)) if (ATTRIBUTE_PASSED.test(k)) attributes[k] = v.slice(0, 256);
      attributes.gatehouse_session = session.id;
      attributes.gatehouse_subject = identity.subject.slice(0, 256);
      upstream = await connectUpstream(target, { capabilities: (caps & PASSED) | OWN, characterSet: hello.characterSet, attributes });
      this.#remember(conn.name, upstream);
      if ((upstream.capabilities & SHAPING) !== (caps & SHAPING)) {
        const missing = Object.entries(C)
          .filter(([, bit]) => SHAPING & bit & caps & ~upstream!.capabilities)
          .map(([k]) => `CLIENT_${k}`);
        throw new GatehouseError('ERR_UPSTREAM', `the target database does not support ${missing.join(', ')}, which this client uses; reconnect`);
      }
      // Expired, revoked or killed while the target login was under way: the proxy would never hear of it.
      if (session.ended.aborted) throw sessionEndedBy(session.ended);
      socket.write(seq.frame(server.ok({ statusFlags: upstream.statusFlags & (ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS | ServerStatus.NO_BACKSLASH_ESCAPES) }, caps)));
      parser.expectCommands();
      reader.detach();
      const up = upstream;
      const s = session;
      const subject = identity.subject;
      const proxy: MysqlProxy = new MysqlProxy({
        client: socket,
        clientParser: parser,
        server: up.socket,
        serverParser: up.parser,
        capabilities: caps,
        session: s,
        logger: ctx.logger.child({ session: s.id }),
        metrics: ctx.metrics,
        idleTimeoutMs: conn.options.idleTimeoutMs === undefined ? ctx.idleTimeoutMs : Number(conn.options.idleTimeoutMs),
        statusFlags: up.statusFlags,
        database: target.database,
        pendingClient: reader.drain(),
        pendingServer: up.rest,
        ...(s.masker.active ? { catalog: this.#catalog(conn, this.#target(conn)) } : {}),
        killQuery: () => {
          killQuery(target, up.greeting.connectionId).catch((e: unknown) => ctx.logger.warn({ session: s.id, err: toGatehouseError(e, 'ERR_UPSTREAM').toJSON() }, 'could not stop the statement on the target'));
        },
        killOwn: (other, query) => {
          const p = this.#live.get(other);
          if (p === undefined || p.identitySubject !== subject) return false;
          if (query) p.killQuery();
          else p.shutdown(`killed by the agent from connection ${id}`);
          return true;
        },
        onClose: () => {
          this.#live.delete(id);
          ctx.metrics.sessionsActive.dec({ protocol: 'mysql' });
        },
      });
      this.#live.set(id, proxy);
      ctx.metrics.sessionsTotal.inc({ protocol: 'mysql', connection: conn.name });
      ctx.metrics.sessionsActive.inc({ protocol: 'mysql' });
    } catch (e) {
      reader.detach();
      const err = toGatehouseError(e, 'ERR_INTERNAL');
      if (err.code === 'ERR_INTERNAL') ctx.logger.error({ err: e }, 'mysql handshake failed');
      upstream?.socket.destroy();
      if (session) await session.close(`start-up failed: ${err.code}`).catch(() => undefined);
      this.#refuse(socket, seq, caps, err, remote);
    }
  }
}

/** The engine factory the composition root uses. */
export function mysqlEngine(ctx: EngineContext): Engine {
  return new MysqlEngine(ctx);
}
