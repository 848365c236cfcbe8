/**
 * One proxied MySQL session after the handshake: the agent's commands go to the target once the
 * core has decided on them; the target's answers come back masked where the session's policy says.
 *
 * Protocol: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html
 * (text protocol, prepared statements, utility commands), and MariaDB's
 * https://mariadb.com/kb/en/2-text-protocol/ and https://mariadb.com/kb/en/3-binary-protocol-prepared-statements/.
 *
 * Commands are handled one at a time, in order: a command is classified, decided (and held while a
 * review is pending), then either forwarded (its answer is followed packet by packet with
 * `ResponseReader` until it ends) or answered by the gateway itself (ERR for a refusal, OK for
 * `SET gatehouse.reason = '…'`). Commands a client pipelines wait in a queue. Sequence ids are
 * kept per side: the packets of an answer pass untouched when their ids fit, and are re-framed
 * when the gateway changed something (a masked row, a refusal in the middle of a result).
 *
 * What is decided:
 * - COM_QUERY: every statement (multi-statements included); a refusal refuses the whole packet;
 * - COM_STMT_PREPARE: the statement (policy at prepare); COM_STMT_EXECUTE records its parameters;
 *   executing, fetching, resetting or closing an id the gateway did not see prepared is refused;
 * - COM_INIT_DB as `USE <db>`; COM_FIELD_LIST as `SHOW COLUMNS FROM <table>`; COM_STATISTICS as `show`;
 * - COM_PING, COM_SET_OPTION, COM_RESET_CONNECTION, COM_QUIT pass; COM_CHANGE_USER and every
 *   other command (COM_SHUTDOWN, COM_PROCESS_KILL, COM_BINLOG_DUMP, …) are refused;
 * - `LOAD DATA LOCAL INFILE`: the server's request for the file reaches the agent only when policy
 *   allowed the statement; otherwise the gateway answers the server with an empty file and the
 *   agent with an error.
 * Unqualified table names are qualified with the session's current database (`shop.users`), which
 * the gateway follows through COM_INIT_DB and `USE` (re-reading `DATABASE()` after a `USE`).
 */
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { BUILTIN_REASON_RULE } from '../../core/approvals/justification.js';
import type { SqlCommand, SqlStatement } from '../../core/command.js';
import { GatehouseError, toGatehouseError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { CommandDecision, Decision } from '../../core/policy/types.js';
import type { SessionContext } from '../../core/sessions/types.js';
import { endSessionOn, sessionEnded } from '../session-end.js';
import { classifyMysql, mysqlUseTarget } from './classify.js';
import {
  Capability,
  ResponseReader,
  Sequence,
  ServerStatus,
  client as clientPackets,
  encodePacket,
  formatBinaryValue,
  parseCommand,
  physicalPacketCount,
  server,
  type BoundValue,
  type ClientMessage,
  type ClientParser,
  type ColumnDefinition,
  type ErrInit,
  type ErrPacket,
  type Packet,
  type PacketParser,
  type ResponseKind,
} from './protocol.js';
import type { MysqlCatalog } from './catalog.js';
import { maskBinaryRow, maskTextRow, rowPlan, sampleBinaryRow, sampleTextRow, type PlanContext, type RowPlan } from './result-masking.js';
import { ER_NOT_SUPPORTED, ER_UNKNOWN_STMT, denialPacket, errorPacket } from './wire-error.js';

/** Rows of each result kept (masked) in the recording. */
const SAMPLE_ROWS = 5;
/** Pipelined commands held before the gateway stops reading from the agent. */
const QUEUE_HIGH = 64;
const LAST_PREPARED = 0xffffffff;
/** Status flags the gateway may repeat in OK packets of its own. */
const OWN_STATUS = ServerStatus.IN_TRANS | ServerStatus.AUTOCOMMIT | ServerStatus.NO_BACKSLASH_ESCAPES | ServerStatus.IN_TRANS_READONLY;
/** Character sets whose multi-byte characters can end in 0x5C (`\`): the classifier's view would differ from the server's. */
const UNSAFE_CHARSET = /(?:^|[^a-z0-9])(?:gbk|big5|sjis|cp932|gb18030)/i;

/** Qualified statements by the classifier's (cached, frozen) result and the database they were qualified with. */
const qualified = new WeakMap<readonly SqlStatement[], { db: string | undefined; out: SqlStatement[] }>();

/** A prepared statement as the gateway saw it prepared. */
interface Statement {
  id: number;
  command: SqlCommand;
  decision: CommandDecision;
  paramCount: number;
  /** Columns of the cursor its last execution opened (for COM_STMT_FETCH). */
  cursorColumns?: readonly ColumnDefinition[];
}

/** A command forwarded to the target whose answer is being followed. */
interface Op {
  kind: ResponseKind;
  reader: ResponseReader;
  /** Answered to the gateway itself (re-reading the current database); nothing reaches the agent. */
  internal?: (values: (string | null)[]) => void;
  command?: SqlCommand;
  t0: number;
  /** Results recorded (`query`, `execute`, `fetch`). */
  record: boolean;
  results: number;
  /** Masking plan of the current result set: undefined = not yet built. */
  plan?: RowPlan | null;
  /** What the command reads, for the masking plans of its results. */
  context?: PlanContext;
  rows: number;
  sample: (string | null)[][];
  /** The agent already got its answer (a refusal): the rest of the server's answer is dropped. */
  suppress: boolean;
  /** Replaces the server's final OK/ERR (a refused LOCAL INFILE request). */
  refusal?: ErrInit;
  allowInfile: boolean;
  /** The agent is sending a LOCAL INFILE file. */
  infile: boolean;
  infileBytes: number;
  prepare?: { command: SqlCommand; decision: CommandDecision };
  statement?: Statement;
  /** COM_INIT_DB: the database selected when the server says OK. */
  useDb?: string;
  /** Re-read the current database when the answer ends (the command had a USE). */
  resync: boolean;
}

export interface MysqlProxyOptions {
  client: Socket | TLSSocket;
  clientParser: ClientParser;
  server: Socket | TLSSocket;
  serverParser: PacketParser;
  /** Capabilities in force on both sides. */
  capabilities: number;
  session: SessionContext;
  logger: Logger;
  metrics: Metrics;
  idleTimeoutMs: number;
  /** Status flags of the target's login OK. */
  statusFlags: number;
  /** The target's current database after login. */
  database: string | undefined;
  /** Messages and packets already read from either side at the switch to the proxy. */
  pendingClient: ClientMessage[];
  pendingServer: Packet[];
  /** The target's catalog, for masking through views and expressions. */
  catalog?: MysqlCatalog;
  /** Stops the statement the target is running for this session (`KILL QUERY` on another connection). */
  killQuery: () => void;
  /** `KILL [QUERY] <id>` of another gateway connection of the same subject; true when handled. */
  killOwn: (id: number, query: boolean) => boolean;
  onClose: () => void;
}

function packetOf(m: { sequenceId: number; payload: Buffer; raw: Buffer }): Packet {
  return { sequenceId: m.sequenceId, lastSequenceId: (m.sequenceId + physicalPacketCount(m.payload.length) - 1) & 0xff, payload: m.payload, raw: m.raw };
}

function asDenial(d: CommandDecision): Extract<Decision, { effect: 'deny' }> {
  if (d.effect === 'deny') return d;
  return { effect: 'deny', rule: d.rule, reason: 'this command was not approved', code: 'ERR_REVIEW_DENIED' };
}

function paramText(p: BoundValue): string | null {
  if (p.longData) return '<long data>';
  const v = p.value;
  if (v === null) return null;
  if (Buffer.isBuffer(v)) return v.length > 1024 ? `${v.toString('utf8', 0, 1024)}…` : v.toString('utf8');
  return formatBinaryValue(v, { type: p.type, flags: 0 });
}

function escapeIdent(name: string): string {
  return '`' + name.replaceAll('`', '``') + '`';
}

export class MysqlProxy {
  readonly #o: MysqlProxyOptions;
  readonly #session: SessionContext;
  readonly #caps: number;
  readonly #client: Socket | TLSSocket;
  readonly #server: Socket | TLSSocket;
  readonly #parser: ClientParser;
  readonly #clientSeq = new Sequence();
  readonly #serverSeq = new Sequence();
  readonly #queue: ClientMessage[] = [];
  readonly #statements = new Map<number, Statement>();
  readonly #abort = new AbortController();
  #lastPrepared: number | undefined;
  #op: Op | undefined;
  #running = false;
  /** A command was received and its answer has not been completed yet. */
  #answering = false;
  #clientPaused = false;
  #statusFlags: number;
  #database: string | undefined;
  #idle: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: MysqlProxyOptions) {
    this.#o = o;
    this.#session = o.session;
    this.#caps = o.capabilities;
    this.#client = o.client;
    this.#server = o.server;
    this.#parser = o.clientParser;
    this.#statusFlags = o.statusFlags;
    this.#database = o.database?.toLowerCase();
    const { client, server: srv } = o;
    client.on('data', this.#onClientData);
    srv.on('data', this.#onServerData);
    endSessionOn(client, srv, this.#session.ended, (reason, tellClient, err) => this.#end(reason, tellClient, err));
    this.#armIdle();
    if (o.pendingServer.length > 0) this.#fromServer(o.pendingServer, undefined);
    if (o.pendingClient.length > 0) {
      this.#queue.push(...o.pendingClient);
      void this.#run();
    }
  }

  get sessionId(): string {
    return this.#session.id;
  }

  get identitySubject(): string {
    return this.#session.identity.subject;
  }

  /** Ends the session from outside (listener closing, `KILL` from another of the agent's connections). */
  shutdown(reason: string): void {
    this.#end(reason, true, sessionEnded(reason));
  }

  /** Stops the statement running for this session, if any (`KILL QUERY` from another connection). */
  killQuery(): void {
    if (this.#op && !this.#op.internal) this.#o.killQuery();
  }

  // --- lifetime --------------------------------------------------------------------------------

  #armIdle(): void {
    if (this.#o.idleTimeoutMs <= 0) return;
    if (this.#idle) {
      this.#idle.refresh();
      return;
    }
    this.#idle = setTimeout(() => {
      if (this.#closed) return;
      if (this.#answering || this.#queue.length > 0) {
        this.#idle?.refresh();
        return;
      }
      this.#end('idle timeout', true, new GatehouseError('ERR_SESSION_ENDED', 'terminating connection due to idle timeout'));
    }, this.#o.idleTimeoutMs).unref();
  }

  #end(reason: string, tellClient: boolean, err?: GatehouseError): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idle) clearTimeout(this.#idle);
    this.#abort.abort(reason);
    const client = this.#client;
    const srv = this.#server;
    client.off('data', this.#onClientData);
    srv.off('data', this.#onServerData);
    // Ended by the gateway mid-statement: the target must stop too, not run it to its end.
    if (tellClient && this.#op && !this.#op.internal) this.#o.killQuery();
    if (tellClient && err && client.writable) {
      const payload = server.err(errorPacket(err), this.#caps);
      // The answer to the command in flight; when idle, an unsolicited ERR (as MySQL 8 sends on its
      // idle timeout) that clients report when they next read.
      client.end(this.#answering ? this.#clientSeq.frame(payload) : encodePacket(payload, 0));
    } else client.end();
    if (srv.writable) srv.end(encodePacket(clientPackets.quit(), 0));
    setTimeout(() => {
      client.destroy();
      srv.destroy();
    }, 1000).unref();
    void this.#session.close(reason).catch((e: unknown) => this.#o.logger.error({ err: e }, 'session close failed'));
    this.#o.onClose();
  }

  #protocolFailure(e: unknown, side: 'client' | 'server'): void {
    if (this.#closed) return;
    const err = toGatehouseError(e, 'ERR_PROTOCOL');
    this.#o.logger.warn({ session: this.#session.id, side, err: err.toJSON() }, 'protocol error');
    this.#session.record({ type: 'error', code: err.code, message: `${side}: ${err.message}` });
    this.#end(`protocol error from ${side}`, true, side === 'client' ? err : new GatehouseError('ERR_UPSTREAM', 'the target database sent a malformed packet', { detail: err.message }));
  }

  // --- writing ---------------------------------------------------------------------------------

  #toClient(bufs: readonly Buffer[]): void {
    if (bufs.length === 0 || !this.#client.writable) return;
    let ok = true;
    if (bufs.length === 1) ok = this.#client.write(bufs[0]!);
    else {
      this.#client.cork();
      for (const b of bufs) ok = this.#client.write(b) && ok;
      this.#client.uncork();
    }
    if (!ok && !this.#server.isPaused()) {
      this.#server.pause();
      this.#client.once('drain', () => {
        if (!this.#closed) this.#server.resume();
      });
    }
  }

  #toServer(b: Buffer): void {
    if (!this.#server.writable) return;
    if (!this.#server.write(b) && !this.#clientPaused) {
      this.#pauseClient();
      this.#server.once('drain', () => this.#resumeClient());
    }
  }

  #pauseClient(): void {
    if (this.#clientPaused) return;
    this.#clientPaused = true;
    this.#client.pause();
  }

  #resumeClient(): void {
    if (!this.#clientPaused || this.#closed || this.#queue.length >= QUEUE_HIGH) return;
    this.#clientPaused = false;
    this.#client.resume();
  }

  /** Answers the command in flight with a payload of the gateway's own. */
  #answer(payload: Buffer): void {
    this.#answering = false;
    this.#toClient([this.#clientSeq.frame(payload)]);
  }

  #answerError(e: ErrInit): void {
    this.#answer(server.err(e, this.#caps));
  }

  #answerOk(): void {
    this.#answer(server.ok({ statusFlags: this.#statusFlags & OWN_STATUS }, this.#caps));
  }

  // --- agent → target --------------------------------------------------------------------------

  #onClientData = (chunk: Buffer): void => {
    if (this.#closed) return;
    let msgs: ClientMessage[];
    try {
      msgs = this.#parser.push(chunk);
    } catch (e) {
      this.#protocolFailure(e, 'client');
      return;
    }
    if (msgs.length === 0) return;
    for (const m of msgs) this.#queue.push(m);
    if (this.#queue.length >= QUEUE_HIGH) this.#pauseClient();
    void this.#run();
  };

  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (!this.#closed) {
        const m = this.#queue[0];
        if (m === undefined) break;
        const op = this.#op;
        if (op !== undefined && !(op.infile && m.name === 'LocalInfileData')) break;
        this.#queue.shift();
        const r = this.#fromClient(m);
        if (r !== undefined) await r;
      }
    } catch (e) {
      this.#protocolFailure(e, 'client');
    } finally {
      this.#running = false;
    }
    if (this.#queue.length < QUEUE_HIGH / 2) this.#resumeClient();
  }

  #fromClient(m: ClientMessage): Promise<void> | undefined {
    this.#armIdle();
    if (m.name === 'LocalInfileData') {
      const op = this.#op;
      if (!op?.infile) throw new GatehouseError('ERR_PROTOCOL', 'unexpected LOCAL INFILE data');
      this.#clientSeq.receive(packetOf(m));
      op.infileBytes += m.data.length;
      this.#toServer(this.#serverSeq.forward(packetOf(m)));
      if (m.data.length === 0) {
        op.infile = false;
        op.reader.localInfileSent();
        this.#session.record({ type: 'note', message: `LOCAL INFILE: ${op.infileBytes} bytes sent to the target` });
      }
      return undefined;
    }
    if (m.name === 'SSLRequest' || m.name === 'HandshakeResponse41' || m.name === 'AuthResponse') {
      throw new GatehouseError('ERR_PROTOCOL', `unexpected ${m.name} after the handshake`);
    }
    this.#clientSeq.reset();
    this.#clientSeq.receive(packetOf(m));
    // Commands without an answer.
    switch (m.name) {
      case 'ComQuit':
        this.#end('client quit', false);
        return undefined;
      case 'ComStmtClose': {
        const id = this.#resolve(m.statementId);
        if (id !== undefined && this.#statements.delete(id)) this.#forward(m);
        if (id === this.#lastPrepared) this.#lastPrepared = undefined;
        return undefined;
      }
      case 'ComStmtSendLongData': {
        const id = this.#resolve(m.statementId);
        if (id !== undefined && this.#statements.has(id)) this.#forward(m);
        return undefined;
      }
      default:
    }
    this.#answering = true;
    switch (m.name) {
      case 'ComQuery':
        return this.#query(m.query, m);
      case 'ComStmtPrepare':
        return this.#prepare(m.query, m);
      case 'ComStmtExecute':
        return this.#execute(m);
      case 'ComStmtFetch': {
        const st = this.#statements.get(this.#resolve(m.statementId) ?? -1);
        if (st === undefined || st.cursorColumns === undefined) {
          this.#answerError({ code: ER_UNKNOWN_STMT, sqlState: 'HY000', message: `Unknown prepared statement handler (${m.statementId}) given to mysqld_stmt_fetch, or it has no open cursor` });
          return undefined;
        }
        const columns = st.cursorColumns;
        if (!this.#session.masker.active) {
          this.#start(m, { kind: 'fetch', statement: st, command: st.command, record: true }, columns);
          return undefined;
        }
        return this.#planContext(st.command).then((context) => {
          if (!this.#closed) this.#start(m, { kind: 'fetch', statement: st, command: st.command, record: true, ...(context ? { context } : {}) }, columns);
        });
      }
      case 'ComStmtReset': {
        const st = this.#statements.get(this.#resolve(m.statementId) ?? -1);
        if (st === undefined) {
          this.#answerError({ code: ER_UNKNOWN_STMT, sqlState: 'HY000', message: `Unknown prepared statement handler (${m.statementId}) given to mysqld_stmt_reset` });
          return undefined;
        }
        this.#start(m, { kind: 'simple' });
        return undefined;
      }
      case 'ComInitDb':
        return this.#initDb(m.schema, m);
      case 'ComFieldList':
        return this.#fieldList(m.table, m);
      case 'ComStatistics': {
        const command: SqlCommand = { kind: 'sql', dialect: 'mysql', text: 'COM_STATISTICS', statements: [{ type: 'show', subtype: 'show_statistics', text: 'COM_STATISTICS', tables: [], functions: [] }] };
        return this.#decided(command, m, { kind: 'statistics' });
      }
      case 'ComPing':
      case 'ComSetOption':
        this.#start(m, { kind: 'simple' });
        return undefined;
      case 'ComResetConnection':
        this.#statements.clear();
        this.#lastPrepared = undefined;
        this.#start(m, { kind: 'simple' });
        return undefined;
      case 'ComChangeUser': {
        // The parser expects authentication data now; the session keeps its identity instead.
        this.#parser.expectCommands();
        for (const st of this.#statements.values()) if (st.id !== this.#lastPrepared) this.#parser.registerStatement(st.id, st.paramCount);
        const last = this.#lastPrepared === undefined ? undefined : this.#statements.get(this.#lastPrepared);
        if (last) this.#parser.registerStatement(last.id, last.paramCount);
        this.#refuseCommand('COM_CHANGE_USER', 'COM_CHANGE_USER is not supported through the gateway: open a new connection with the other token');
        return undefined;
      }
      case 'ComUnknown':
        this.#refuseCommand(m.commandName, `${m.commandName} is not supported through the gateway`);
        return undefined;
    }
  }

  /** A command the gateway never forwards: recorded as a denied unknown statement. */
  #refuseCommand(name: string, reason: string): void {
    const command: SqlCommand = { kind: 'sql', dialect: 'mysql', text: name, statements: [{ type: 'unknown', text: name, tables: [], functions: [], unknownReason: `${name} command` }] };
    const d: Extract<Decision, { effect: 'deny' }> = { effect: 'deny', rule: 'default', reason };
    this.#o.metrics.commandsTotal.inc({ protocol: 'mysql', effect: 'deny' });
    this.#session.record({ type: 'statement', command, decision: d });
    this.#answerError({ ...denialPacket(d), code: ER_NOT_SUPPORTED });
  }

  #resolve(id: number): number | undefined {
    return id === LAST_PREPARED ? this.#lastPrepared : id;
  }

  /** Sends a client packet to the target as it came (sequence ids re-framed if they differ). */
  #forward(m: { sequenceId: number; payload: Buffer; raw: Buffer }): void {
    this.#serverSeq.reset();
    this.#toServer(this.#serverSeq.forward(packetOf(m)));
  }

  #start(m: { sequenceId: number; payload: Buffer; raw: Buffer }, init: Partial<Op> & { kind: ResponseKind }, columns?: readonly ColumnDefinition[]): void {
    this.#op = this.#newOp(init, columns);
    this.#forward(m);
  }

  /** The answer to follow for a command: `init` over the defaults. */
  #newOp(init: Partial<Op> & { kind: ResponseKind }, columns?: readonly ColumnDefinition[]): Op {
    return {
      reader: new ResponseReader(init.kind, { capabilities: this.#caps, ...(columns ? { columns } : {}) }),
      t0: performance.now(),
      record: false,
      results: 0,
      rows: 0,
      sample: [],
      suppress: false,
      allowInfile: false,
      infile: false,
      infileBytes: 0,
      resync: false,
      ...init,
    };
  }

  #classify(text: string): SqlCommand {
    let statements: readonly SqlStatement[];
    try {
      const noBackslashEscapes = (this.#statusFlags & ServerStatus.NO_BACKSLASH_ESCAPES) !== 0;
      statements = classifyMysql(text, { noBackslashEscapes });
      // A SET before the last statement may change sql_mode for the statements after it: then the
      // text must lex alike in every mode.
      if (statements.length > 1 && text.includes('\\') && statements.slice(0, -1).some((s) => s.type === 'set' || s.type === 'unknown')) statements = classifyMysql(text);
    } catch (e) {
      statements = [{ type: 'unknown', text, tables: [], functions: [], unknownReason: `classifier failed: ${e instanceof Error ? e.message : String(e)}` }];
    }
    return { kind: 'sql', dialect: 'mysql', text, statements: this.#qualify(statements) };
  }

  /** Qualifies unqualified table names with the current database, following `USE` within the command. */
  #qualify(statements: readonly SqlStatement[]): SqlStatement[] {
    // The classifier returns the same frozen array for the same text: its qualified form is kept.
    const hit = qualified.get(statements);
    if (hit && hit.db === this.#database) return hit.out;
    const out = this.#qualifyNow(statements);
    if (Object.isFrozen(statements)) qualified.set(statements, { db: this.#database, out });
    return out;
  }

  #qualifyNow(statements: readonly SqlStatement[]): SqlStatement[] {
    let db = this.#database;
    return statements.map((st) => {
      if (st.type === 'use') {
        db = mysqlUseTarget(st.text);
        return st;
      }
      if (db === undefined || st.tables.every((t) => t.name.includes('.'))) return st;
      const d = db;
      return { ...st, tables: st.tables.map((t) => (t.name.includes('.') ? t : { ...t, name: `${d}.${t.name}` })) };
    });
  }

  /** The core's decision for a command, with the review hold when it asks for one. */
  async #decide(command: SqlCommand): Promise<CommandDecision> {
    let d = await this.#session.authorize(command);
    if (d.effect === 'review') {
      // MySQL has no asynchronous notice: the agent's command simply waits for the approver.
      const notify = (msg: string): void => this.#o.logger.info({ session: this.#session.id, msg }, 'command held for review');
      try {
        d = await this.#session.awaitReview(command, d, notify, this.#abort.signal);
      } catch (e) {
        const err = toGatehouseError(e);
        d = { effect: 'deny', rule: d.rule, reason: err.message, code: err.code };
      }
    }
    this.#o.metrics.commandsTotal.inc({ protocol: 'mysql', effect: d.effect });
    this.#session.record({ type: 'statement', command, decision: d });
    return d;
  }

  /** Why an allowed command must still not run (the engine's own checks); recorded. */
  #engineRefusal(command: SqlCommand): GatehouseError | undefined {
    for (const st of command.statements) {
      if ((st.subtype === 'set_names' || st.subtype === 'set_character_set') && UNSAFE_CHARSET.test(st.text)) {
        const err = new GatehouseError('ERR_ACCESS_DENIED', 'character sets whose characters can contain a backslash byte (gbk, big5, sjis, cp932, gb18030) are not allowed through the gateway');
        this.#session.record({ type: 'error', code: err.code, message: err.message });
        return err;
      }
    }
    return undefined;
  }

  /** Decides a command and, when allowed, starts it; otherwise answers with the refusal. */
  async #decided(command: SqlCommand, m: { sequenceId: number; payload: Buffer; raw: Buffer }, init: Partial<Op> & { kind: ResponseKind }): Promise<void> {
    const d = await this.#decide(command);
    if (this.#closed) return;
    if (d.effect !== 'allow') {
      this.#answerError(denialPacket(asDenial(d)));
      return;
    }
    if (d.rule === BUILTIN_REASON_RULE) {
      // `SET gatehouse.reason = '…'`: the target would reject the variable; the gateway answers.
      this.#answerOk();
      this.#session.record({ type: 'result', tag: 'SET', durationMs: 0 });
      return;
    }
    const refused = this.#engineRefusal(command);
    if (refused) {
      this.#answerError(errorPacket(refused));
      return;
    }
    const context = await this.#planContext(command);
    if (this.#closed) return;
    this.#start(m, { command, ...init, ...(context ? { context } : {}) });
  }

  /**
   * When results are masked: the tables and columns the command reads, with the catalog entries of
   * those tables loaded (views and their base columns), so that each result's plan is built at once.
   */
  async #planContext(command: SqlCommand): Promise<PlanContext | undefined> {
    if (!this.#session.masker.active) return undefined;
    const tables = new Set<string>();
    const columns = new Set<string>();
    for (const st of command.statements) {
      // Written tables too: DELETE … RETURNING and INSERT … RETURNING return their values.
      for (const t of st.tables) tables.add(t.name.includes('.') ? t.name : this.#database ? `${this.#database}.${t.name}` : t.name);
      for (const c of st.columns ?? []) columns.add(c);
    }
    const catalog = this.#o.catalog;
    const names = [...tables].filter((t) => t.includes('.'));
    if (catalog && names.length > 0 && !catalog.has(names)) {
      try {
        await catalog.load(names);
      } catch (e) {
        // Without it, every column not covered by a rule of its own gets the statement's strongest rule.
        this.#o.logger.warn({ session: this.#session.id, err: toGatehouseError(e, 'ERR_UPSTREAM').toJSON() }, 'catalog lookup failed; masking errs toward more');
      }
    }
    return { tables: [...tables], columns: [...columns], catalog };
  }

  #query(text: string, m: { sequenceId: number; payload: Buffer; raw: Buffer }): Promise<void> | undefined {
    const command = this.#classify(text);
    const kill = this.#ownKill(command);
    if (kill) return undefined;
    return this.#decided(command, m, {
      kind: 'query',
      record: true,
      allowInfile: command.statements.some((s) => s.type === 'load' && s.subtype?.endsWith('_local') === true),
      resync: command.statements.some((s) => s.type === 'use'),
    });
  }

  /** `KILL [QUERY] <id>` naming one of this agent's own gateway connections (the mysql CLI's Ctrl-C). */
  #ownKill(command: SqlCommand): boolean {
    if (command.statements.length !== 1) return false;
    const st = command.statements[0]!;
    if (st.type !== 'utility' || st.subtype !== 'kill') return false;
    const m = /^kill\s+(?:(query)\s+|connection\s+)?(\d+)\s*;?$/i.exec(st.text.trim());
    if (!m) return false;
    if (!this.#o.killOwn(Number(m[2]), m[1] !== undefined)) return false;
    const d: CommandDecision = { effect: 'allow', rule: { policy: '(builtin)', index: -3, effect: 'allow', reason: "stops one of the agent's own gateway connections" }, masks: [] };
    this.#session.record({ type: 'statement', command, decision: d });
    this.#answerOk();
    return true;
  }

  #prepare(text: string, m: { sequenceId: number; payload: Buffer; raw: Buffer }): Promise<void> {
    const command = this.#classify(text);
    return this.#decide(command).then((d) => {
      if (this.#closed) return;
      const refused = d.effect === 'allow' ? this.#engineRefusal(command) : undefined;
      if (d.effect !== 'allow' || refused || d.rule === BUILTIN_REASON_RULE) {
        // MariaDB may have pipelined an execute of "the statement prepared last" (-1): not this one.
        this.#lastPrepared = undefined;
        if (d.effect !== 'allow') this.#answerError(denialPacket(asDenial(d)));
        else this.#answerError(errorPacket(refused ?? new GatehouseError('ERR_ACCESS_DENIED', 'this statement cannot be prepared through the gateway')));
        return;
      }
      this.#start(m, { kind: 'prepare', prepare: { command, decision: d } });
    });
  }

  #execute(m: Extract<ClientMessage, { name: 'ComStmtExecute' }>): Promise<void> | undefined {
    const id = this.#resolve(m.statementId);
    const st = id === undefined ? undefined : this.#statements.get(id);
    if (st === undefined) {
      this.#answerError({ code: ER_UNKNOWN_STMT, sqlState: 'HY000', message: `Unknown prepared statement handler (${m.statementId}) given to mysqld_stmt_execute` });
      return undefined;
    }
    let params = m.params;
    if (params === null) {
      // Sent before its prepare was answered (pipelining): decode it now that the statement is known.
      try {
        const again = parseCommand(packetOf(m), { capabilities: this.#caps, statement: (sid) => this.#parser.statement(sid) });
        if (again.name === 'ComStmtExecute') params = again.params;
      } catch {
        params = null;
      }
    }
    this.#session.record({ type: 'params', params: params === null ? ['<parameters not decoded>'] : params.slice(0, st.paramCount).map(paramText) });
    const start = (context: PlanContext | undefined): void => {
      if (!this.#closed) this.#start(m, { kind: 'execute', statement: st, command: st.command, record: true, ...(context ? { context } : {}) });
    };
    if (!this.#session.masker.active) {
      start(undefined);
      return undefined;
    }
    return this.#planContext(st.command).then(start);
  }

  #initDb(schema: string, m: { sequenceId: number; payload: Buffer; raw: Buffer }): Promise<void> {
    const command = this.#classify(`USE ${escapeIdent(schema)}`);
    return this.#decided(command, m, { kind: 'simple', useDb: schema.toLowerCase() });
  }

  #fieldList(table: string, m: { sequenceId: number; payload: Buffer; raw: Buffer }): Promise<void> {
    const command = this.#classify(`SHOW COLUMNS FROM ${escapeIdent(table)}`);
    return this.#decided(command, m, { kind: 'field_list' });
  }

  // --- target → agent --------------------------------------------------------------------------

  #onServerData = (chunk: Buffer): void => {
    if (this.#closed) return;
    const before = this.#o.serverParser.buffered;
    let packets: Packet[];
    try {
      packets = this.#o.serverParser.push(chunk);
    } catch (e) {
      this.#protocolFailure(e, 'server');
      return;
    }
    if (packets.length === 0) return;
    this.#fromServer(packets, before === 0 && this.#o.serverParser.buffered === 0 ? chunk : undefined);
  };

  #fromServer(packets: readonly Packet[], whole: Buffer | undefined): void {
    const out: Buffer[] = [];
    let asReceived = true;
    for (const p of packets) {
      const op = this.#op;
      if (op === undefined) {
        this.#unsolicited(p);
        return;
      }
      let b: Buffer | undefined;
      try {
        b = this.#serverPacket(op, p);
      } catch (e) {
        this.#toClient(out);
        this.#protocolFailure(e, 'server');
        return;
      }
      if (b !== p.raw) asReceived = false;
      if (b !== undefined) out.push(b);
      if (op.reader.done) this.#finish(op);
    }
    if (asReceived && whole !== undefined && out.length === packets.length) this.#toClient([whole]);
    else this.#toClient(out);
    if (this.#op === undefined && this.#queue.length > 0) void this.#run();
  }

  /** A packet while no command is in flight: the server ends the connection (shutdown, timeout). */
  #unsolicited(p: Packet): void {
    if (p.payload[0] === 0xff) {
      const e = this.#errOf(p);
      this.#o.logger.warn({ session: this.#session.id, code: e?.code, message: e?.message }, 'target sent an error outside a command');
      this.#end('target ended the connection', true, new GatehouseError('ERR_UPSTREAM', `the target database ended the connection${e ? `: ${e.message}` : ''}`));
      return;
    }
    this.#protocolFailure(new GatehouseError('ERR_PROTOCOL', 'unexpected packet from the target outside a command'), 'server');
  }

  #errOf(p: Packet): ErrPacket | undefined {
    try {
      const r = new ResponseReader('simple', { capabilities: this.#caps }).read(p);
      return r.name === 'ErrPacket' ? r : undefined;
    } catch {
      return undefined;
    }
  }

  /** Handles one packet of the answer in flight; returns the bytes for the agent, if any. */
  #serverPacket(op: Op, p: Packet): Buffer | undefined {
    this.#serverSeq.receive(p);
    const prev = op.reader.state;
    const m = op.reader.read(p);
    if (op.internal) {
      if (m.name === 'TextRow') op.internal(op.reader.decodeTextRow(m));
      return undefined;
    }
    switch (m.name) {
      case 'ColumnCount':
        op.plan = undefined;
        op.rows = 0;
        op.sample = [];
        break;
      case 'TextRow':
      case 'BinaryRow':
        return this.#row(op, p, m.name === 'BinaryRow');
      case 'EofPacket':
        if (prev === 'rows') this.#endResult(op, { rows: op.rows });
        else if (prev === 'column_definitions_eof' && m.statusFlags & ServerStatus.CURSOR_EXISTS && op.statement) {
          op.statement.cursorColumns = [...op.reader.columns];
          this.#endResult(op, { tag: 'CURSOR' });
        }
        this.#statusFlags = m.statusFlags;
        break;
      case 'OkPacket':
        this.#statusFlags = m.statusFlags;
        if (prev === 'rows') this.#endResult(op, { rows: op.rows });
        else {
          if (op.useDb !== undefined) this.#database = op.useDb;
          this.#endResult(op, { affected: Number(m.affectedRows) });
        }
        if (op.refusal) return this.#replaceAnswer(op, op.refusal);
        break;
      case 'ErrPacket':
        if (op.refusal) return this.#replaceAnswer(op, op.refusal);
        if (op.suppress) return undefined;
        // A failed prepare: MariaDB's "statement prepared last" (-1) is no statement now.
        if (op.kind === 'prepare') this.#lastPrepared = undefined;
        this.#session.record({ type: 'error', code: String(m.code), message: m.message });
        this.#answering = false;
        return this.#maskErr(m, p);
      case 'LocalInfileRequest':
        if (op.allowInfile && this.#caps & Capability.LOCAL_FILES) {
          op.infile = true;
          this.#parser.expectLocalInfileData();
          this.#session.record({ type: 'note', message: `LOCAL INFILE: the target asked the agent for ${m.filename}` });
          break;
        }
        // Refused: the target gets an empty file (it then loads nothing), the agent an error.
        this.#toServer(this.#serverSeq.frame(Buffer.alloc(0)));
        op.reader.localInfileSent();
        op.refusal = errorPacket(new GatehouseError('ERR_ACCESS_DENIED', 'LOAD DATA LOCAL INFILE is not allowed by policy'));
        this.#session.record({ type: 'error', code: 'ERR_ACCESS_DENIED', message: `LOCAL INFILE request for ${m.filename} refused` });
        return undefined;
      case 'StmtPrepareOk': {
        const pr = op.prepare;
        if (pr) {
          const st: Statement = { id: m.statementId, command: pr.command, decision: pr.decision, paramCount: m.paramCount };
          this.#statements.set(m.statementId, st);
          this.#lastPrepared = m.statementId;
          this.#parser.registerStatement(m.statementId, m.paramCount);
        }
        break;
      }
      case 'AuthSwitchRequest':
      case 'AuthMoreData':
        throw new GatehouseError('ERR_PROTOCOL', `unexpected ${m.name} from the target`);
      default:
    }
    if (op.suppress) return undefined;
    return this.#clientSeq.forward(p);
  }

  #replaceAnswer(op: Op, e: ErrInit): Buffer | undefined {
    if (op.suppress) return undefined;
    op.suppress = true;
    this.#answering = false;
    return this.#clientSeq.frame(server.err(e, this.#caps));
  }

  /** Error texts can quote data (a duplicate key's value): detectors apply to them too. */
  #maskErr(m: ErrPacket, p: Packet): Buffer {
    const masker = this.#session.masker;
    if (!masker.active) return this.#clientSeq.forward(p);
    let masked: string;
    try {
      masked = masker.maskText(m.message);
    } catch {
      masked = 'the error message was withheld (it could not be inspected for masking)';
    }
    if (masked === m.message) return this.#clientSeq.forward(p);
    return this.#clientSeq.frame(server.err({ code: m.code, sqlState: m.sqlState ?? 'HY000', message: masked }, this.#caps));
  }

  #row(op: Op, p: Packet, binary: boolean): Buffer | undefined {
    if (op.suppress) return undefined;
    op.rows++;
    const masker = this.#session.masker;
    if (op.plan === undefined) op.plan = masker.active ? rowPlan(op.reader.columns, masker, op.context) : null;
    let payload = p.payload;
    let changed = false;
    if (op.plan && !op.plan.passthrough) {
      try {
        const onMasked = (n: number): void => this.#o.metrics.maskedValues.inc({ protocol: 'mysql' }, n);
        const out = binary ? maskBinaryRow(payload, op.plan, onMasked) : maskTextRow(payload, op.plan, onMasked);
        if (out !== undefined) {
          payload = out;
          changed = true;
        }
      } catch (e) {
        return this.#refuseResult(op, toGatehouseError(e, 'ERR_MASKING_FAILED'));
      }
    }
    if (op.record && op.rows <= SAMPLE_ROWS) {
      op.sample.push(binary ? sampleBinaryRow(payload, op.reader.columns) : sampleTextRow(payload, op.reader.columns.length));
    }
    return changed ? this.#clientSeq.frame(payload) : this.#clientSeq.forward(p);
  }

  /** Withholds the rest of an answer and tells the agent why (fail closed). */
  #refuseResult(op: Op, err: GatehouseError): Buffer | undefined {
    this.#o.logger.warn({ session: this.#session.id, err: err.toJSON() }, 'result withheld');
    this.#session.record({ type: 'error', code: err.code, message: err.message });
    return this.#replaceAnswer(op, errorPacket(err));
  }

  #endResult(op: Op, r: { rows?: number; affected?: number; tag?: string }): void {
    const now = performance.now();
    if (op.record) {
      const st = op.command?.statements[op.results];
      this.#session.record({
        type: 'result',
        tag: r.tag ?? (st ? st.type.toUpperCase() : 'OK'),
        ...(r.rows === undefined ? {} : { rows: r.rows }),
        ...(r.affected === undefined ? {} : { affected: r.affected }),
        durationMs: Math.round((now - op.t0) * 1000) / 1000,
        ...(op.sample.length > 0 ? { sample: op.sample } : {}),
      });
      this.#o.metrics.commandSeconds.observe({ protocol: 'mysql' }, (now - op.t0) / 1000);
    }
    op.results++;
    op.t0 = now;
    op.rows = 0;
    op.sample = [];
    op.plan = undefined;
  }

  /** The answer in flight is complete. */
  #finish(op: Op): void {
    this.#op = undefined;
    if (!op.internal) this.#answering = false;
    if (op.resync && !this.#closed) {
      // Which database is current after a command with USE (it may have failed midway): ask.
      this.#op = this.#newOp({
        kind: 'query',
        internal: (values) => {
          this.#database = values[0]?.toLowerCase() ?? undefined;
        },
      });
      this.#database = undefined;
      this.#serverSeq.reset();
      this.#toServer(this.#serverSeq.frame(clientPackets.query('SELECT DATABASE()')));
    }
  }
}
