/**
 * Client → server packets: the parser the gateway runs toward the agent (it is the agent's MySQL
 * server) and the serializers it uses toward the upstream server (it is the server's client).
 *
 * - Connection phase (SSLRequest, HandshakeResponse41, AuthSwitchResponse):
 *   https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html and
 *   https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_response.html
 * - Commands: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html,
 *   COM_QUERY with query attributes: page_protocol_com_query.html, prepared statements:
 *   page_protocol_com_stmt_execute.html and neighbours.
 * - MariaDB: https://mariadb.com/kb/en/connection/ (extended capabilities in the reserved bytes),
 *   https://mariadb.com/kb/en/com_stmt_execute/ (statement id -1: the last prepared statement).
 */
import { Capability, Command, CursorType, commandName } from './constants.js';
import { PacketParser, PayloadReader, PayloadWriter, ProtocolError, type Packet } from './packet.js';
import { ColumnFlag } from './constants.js';
import { isWireType, readBinaryValue, writeBinaryValue, type BinaryValue } from './values.js';

interface Base<N extends string> {
  /** Discriminant. */
  readonly name: N;
  /** Sequence id of the (first) physical packet. */
  readonly sequenceId: number;
  /** The packet(s) as received, headers included: a view of the input when it arrived whole. */
  readonly raw: Buffer;
  /** The payload (a view of `raw` unless the payload was split over several packets). */
  readonly payload: Buffer;
}

interface CommandBase<N extends string, C extends number> extends Base<N> {
  /** The command byte. */
  readonly command: C;
}

/** The 32-byte packet a client sends instead of HandshakeResponse41 to start TLS. */
export interface SSLRequest extends Base<'SSLRequest'> {
  readonly capabilities: number;
  readonly maxPacketSize: number;
  readonly characterSet: number;
  /** MariaDB extended capabilities (the last 4 filler bytes); 0 when `CLIENT_MYSQL` is set. */
  readonly mariadbCapabilities: number;
}

export interface HandshakeResponse41 extends Base<'HandshakeResponse41'> {
  readonly capabilities: number;
  readonly maxPacketSize: number;
  readonly characterSet: number;
  readonly mariadbCapabilities: number;
  readonly user: string;
  /** The auth plugin's first answer (a scramble response, or empty). */
  readonly authResponse: Buffer;
  /** Present when CLIENT_CONNECT_WITH_DB is set: for Gatehouse, the connection name. */
  readonly database: string | undefined;
  /** Present when CLIENT_PLUGIN_AUTH is set. */
  readonly authPlugin: string | undefined;
  /** Connection attributes (CLIENT_CONNECT_ATTRS), null-prototype. */
  readonly attributes: Readonly<Record<string, string>>;
  /** MySQL 8 zstd compression level, when CLIENT_ZSTD_COMPRESSION_ALGORITHM is set. */
  readonly zstdCompressionLevel: number | undefined;
}

/** Authentication data after an AuthSwitchRequest or AuthMoreData (AuthSwitchResponse and later rounds). */
export interface AuthResponse extends Base<'AuthResponse'> {
  readonly data: Buffer;
}

/** File contents a client sends after a LOCAL INFILE request; an empty one ends the file. */
export interface LocalInfileData extends Base<'LocalInfileData'> {
  readonly data: Buffer;
}

export type ComQuit = CommandBase<'ComQuit', 0x01>;
export interface ComInitDb extends CommandBase<'ComInitDb', 0x02> {
  readonly schema: string;
}
/** A typed, optionally named value: a COM_QUERY query attribute or a COM_STMT_EXECUTE parameter. */
export interface BoundValue {
  /** `MYSQL_TYPE_*`. */
  readonly type: number;
  readonly unsigned: boolean;
  /** Name (query attributes); `''` for anonymous parameters. */
  readonly name: string;
  /** `null` for SQL NULL, and for a parameter whose value was sent with COM_STMT_SEND_LONG_DATA. */
  readonly value: BinaryValue;
  /** The value was sent earlier with COM_STMT_SEND_LONG_DATA and is not in this packet. */
  readonly longData: boolean;
}
export interface ComQuery extends CommandBase<'ComQuery', 0x03> {
  /**
   * The statement text, decoded as UTF-8 (the bytes are in `payload`). Only ASCII-compatible
   * connection character sets keep the classifier's view equal to the server's: refuse the
   * multi-byte sets whose characters can end in 0x5C (gbk, big5, sjis, cp932, gb18030).
   */
  readonly query: string;
  /** Query attributes (CLIENT_QUERY_ATTRIBUTES), else empty. */
  readonly attributes: BoundValue[];
}
export interface ComFieldList extends CommandBase<'ComFieldList', 0x04> {
  readonly table: string;
  readonly wildcard: string;
}
export type ComStatistics = CommandBase<'ComStatistics', 0x09>;
export type ComPing = CommandBase<'ComPing', 0x0e>;
export interface ComChangeUser extends CommandBase<'ComChangeUser', 0x11> {
  readonly user: string;
  readonly authResponse: Buffer;
  readonly database: string;
  readonly characterSet: number | undefined;
  readonly authPlugin: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
}
export type ComResetConnection = CommandBase<'ComResetConnection', 0x1f>;
export interface ComSetOption extends CommandBase<'ComSetOption', 0x1b> {
  /** 0: MYSQL_OPTION_MULTI_STATEMENTS_ON, 1: MYSQL_OPTION_MULTI_STATEMENTS_OFF. */
  readonly option: number;
}
export interface ComStmtPrepare extends CommandBase<'ComStmtPrepare', 0x16> {
  readonly query: string;
}
export interface ComStmtExecute extends CommandBase<'ComStmtExecute', 0x17> {
  /** As sent; 0xFFFFFFFF (MariaDB) means the statement prepared last. */
  readonly statementId: number;
  /** The statement id after resolving 0xFFFFFFFF, when the parser knows it. */
  readonly resolvedStatementId: number | undefined;
  /** `CursorType` bits. */
  readonly flags: number;
  readonly iterationCount: number;
  /** Whether this execution sent (new) parameter types. */
  readonly newParamsBound: boolean;
  /**
   * The parameters (then any query attributes) with their values, or `null` when the parser could
   * not decode them: the statement is unknown to it (see `ClientParser.registerStatement`) or no
   * parameter types were ever sent for it. `paramsRaw` holds the undecoded bytes either way.
   */
  readonly params: BoundValue[] | null;
  /** The bytes after `iteration_count` (NULL bitmap, types, values). */
  readonly paramsRaw: Buffer;
}
export interface ComStmtSendLongData extends CommandBase<'ComStmtSendLongData', 0x18> {
  readonly statementId: number;
  readonly paramId: number;
  readonly data: Buffer;
}
export interface ComStmtClose extends CommandBase<'ComStmtClose', 0x19> {
  readonly statementId: number;
}
export interface ComStmtReset extends CommandBase<'ComStmtReset', 0x1a> {
  readonly statementId: number;
}
export interface ComStmtFetch extends CommandBase<'ComStmtFetch', 0x1c> {
  readonly statementId: number;
  readonly rows: number;
}
/** Any other command byte (COM_SHUTDOWN, COM_PROCESS_KILL, COM_BINLOG_DUMP, …): refuse it. */
export interface ComUnknown extends CommandBase<'ComUnknown', number> {
  /** The command's name (`COM_SHUTDOWN`) or its byte in hex. */
  readonly commandName: string;
  readonly body: Buffer;
}

export type ClientCommand =
  | ComQuit
  | ComInitDb
  | ComQuery
  | ComFieldList
  | ComStatistics
  | ComPing
  | ComChangeUser
  | ComResetConnection
  | ComSetOption
  | ComStmtPrepare
  | ComStmtExecute
  | ComStmtSendLongData
  | ComStmtClose
  | ComStmtReset
  | ComStmtFetch
  | ComUnknown;

export type ClientMessage = SSLRequest | HandshakeResponse41 | AuthResponse | LocalInfileData | ClientCommand;

/** What the parser expects next from the client. */
export type ClientPhase = 'handshake' | 'tls' | 'auth' | 'command' | 'local_infile';

/** Connection-phase packets are small; MySQL caps connection attributes at 64 KiB. */
const CONNECTION_PHASE_LIMIT = 128 * 1024;
const SSL_REQUEST_LENGTH = 32;
const LAST_PREPARED = 0xffffffff;

/** What the decoder of COM_STMT_EXECUTE needs to know about a prepared statement. */
export interface StatementInfo {
  /** `num_params` of its COM_STMT_PREPARE_OK. */
  readonly paramCount: number;
  /** Parameter types of the last execution that sent them (`type`, `unsigned`, `name`). */
  types?: { type: number; unsigned: boolean; name: string }[];
  /** Parameters that received COM_STMT_SEND_LONG_DATA since the last execution. */
  longData?: Set<number>;
}

export interface ClientParserOptions {
  /** Largest command payload accepted in the command phase. Default 64 MiB, at most 1 GiB. */
  maxPayloadBytes?: number;
  /**
   * The capabilities the gateway advertised in its HandshakeV10: once the client answers, the
   * negotiated set is the intersection. Default: what the client sends.
   */
  serverCapabilities?: number;
  /** Start in this phase (tests, or a parser taking over after the handshake). Default 'handshake'. */
  phase?: ClientPhase;
  /** Negotiated capabilities when starting past the handshake. */
  capabilities?: number;
}

/**
 * Parses what a client sends to a MySQL server. Socket-free and bounded: feed it chunks with
 * `push()` and it returns complete messages, each with its `raw` bytes so they can be forwarded
 * unchanged. The meaning of a packet depends on the conversation, so the parser has a phase:
 *
 * - `handshake`: an SSLRequest or a HandshakeResponse41 (then phase `auth`). After an SSLRequest
 *   the client starts its TLS handshake at once, without waiting for an answer, so the bytes that
 *   followed the SSLRequest in the same chunk are the start of that handshake, never MySQL packets:
 *   the parser stops framing (phase `tls`) and hands them back with `takeTlsBytes()`. The engine
 *   removes its data listener, pauses the socket, puts those bytes back (`socket.unshift(bytes)`)
 *   and wraps the socket in server-side TLS; once it is up, `startTls()` and feed the decrypted
 *   stream. Any byte pushed in phase `tls` is refused;
 * - `auth`: every packet is an `AuthResponse` (after an AuthSwitchRequest or AuthMoreData the
 *   engine sent); call `expectCommands()` once the engine has sent OK;
 * - `command`: commands, each with sequence id 0. COM_CHANGE_USER switches back to `auth`;
 * - `local_infile`: after the engine passed on a LOCAL INFILE request (`expectLocalInfileData()`):
 *   data packets until an empty one, then `command` again.
 *
 * COM_STMT_EXECUTE parameters can only be decoded with the statement's parameter count from its
 * COM_STMT_PREPARE_OK: call `registerStatement()` when the server answers a prepare. The parser
 * itself tracks the parameter types bound by earlier executions, COM_STMT_SEND_LONG_DATA, and
 * forgets statements on COM_STMT_CLOSE, COM_RESET_CONNECTION and COM_CHANGE_USER.
 */
export class ClientParser {
  private readonly packets: PacketParser;
  private readonly maxCommandBytes: number;
  private readonly serverCapabilities: number | undefined;
  private state: ClientPhase;
  private caps: number;
  private readonly statements = new Map<number, StatementInfo>();
  private lastPrepared: number | undefined;
  private failure: ProtocolError | undefined;
  /** Handshake-phase bytes of the first packet, framed here (what follows an SSLRequest is TLS). */
  private hsPieces: Buffer[] = [];
  private hsLen = 0;
  private hsNeed = -1;
  private tlsBytes: Buffer | undefined;
  private secured = false;

  constructor(options: ClientParserOptions = {}) {
    this.maxCommandBytes = options.maxPayloadBytes ?? 64 * 1024 * 1024;
    this.state = options.phase ?? 'handshake';
    this.packets = new PacketParser({ maxPayloadBytes: this.maxCommandBytes });
    this.limitForPhase();
    this.serverCapabilities = options.serverCapabilities;
    this.caps = options.capabilities ?? 0;
  }

  get phase(): ClientPhase {
    return this.state;
  }

  /** The negotiated capabilities (set from the HandshakeResponse41, or by the engine). */
  get capabilities(): number {
    return this.caps;
  }

  set capabilities(v: number) {
    this.caps = v >>> 0;
  }

  /** Bytes held: an incomplete packet, or TLS bytes not yet taken with `takeTlsBytes()`. */
  get buffered(): number {
    return this.packets.buffered + this.hsLen + (this.tlsBytes?.length ?? 0);
  }

  get error(): ProtocolError | undefined {
    return this.failure ?? this.packets.error;
  }

  /**
   * The bytes that arrived after the SSLRequest in the same chunk: the start of the client's TLS
   * handshake, to be handed to the TLS layer (`socket.unshift()` before wrapping). Empty when none.
   */
  takeTlsBytes(): Buffer {
    if (this.state !== 'tls') throw new ProtocolError('no SSL request was received');
    const b = this.tlsBytes ?? Buffer.alloc(0);
    this.tlsBytes = undefined;
    return b;
  }

  /** The TLS stream is up after an SSLRequest: expect the HandshakeResponse41 on it. */
  startTls(): void {
    if (this.error) throw this.error;
    if (this.state !== 'tls') throw new ProtocolError('TLS started without an SSL request');
    if (this.tlsBytes?.length) throw new ProtocolError('the TLS bytes that followed the SSL request were not handed to TLS');
    this.packets.assertEmpty();
    this.secured = true;
    this.state = 'handshake';
  }

  /** The engine sent an AuthSwitchRequest or AuthMoreData: the next packets are auth data. */
  expectAuthResponse(): void {
    this.state = 'auth';
    this.limitForPhase();
  }

  /** The engine sent OK for the authentication: commands follow. */
  expectCommands(): void {
    this.state = 'command';
    this.limitForPhase();
  }

  /** The engine passed a LOCAL INFILE request on: file data packets follow, until an empty one. */
  expectLocalInfileData(): void {
    this.state = 'local_infile';
    this.limitForPhase();
  }

  /** A prepared statement's parameter count, from the server's COM_STMT_PREPARE_OK. */
  registerStatement(statementId: number, paramCount: number): void {
    this.statements.set(statementId >>> 0, { paramCount });
    this.lastPrepared = statementId >>> 0;
  }

  /** What the parser knows about a statement (0xFFFFFFFF: the one prepared last). */
  statement(statementId: number): StatementInfo | undefined {
    const id = statementId === LAST_PREPARED ? this.lastPrepared : statementId;
    return id === undefined ? undefined : this.statements.get(id);
  }

  forgetStatements(): void {
    this.statements.clear();
    this.lastPrepared = undefined;
  }

  private limitForPhase(): void {
    const connection = this.state === 'handshake' || this.state === 'tls' || this.state === 'auth';
    this.packets.maxPayloadBytes = connection ? Math.min(CONNECTION_PHASE_LIMIT, this.maxCommandBytes) : this.maxCommandBytes;
  }

  /**
   * Feeds bytes in and returns the messages they complete. Throws `ProtocolError` on malformed
   * input; the parser then stays failed. Message views share memory with the pushed chunks.
   */
  push(chunk: Buffer): ClientMessage[] {
    if (this.failure) throw this.failure;
    const out: ClientMessage[] = [];
    try {
      if (this.state === 'tls') {
        if (chunk.length > 0) throw new ProtocolError('received data outside TLS after SSL request');
        return out;
      }
      let rest = chunk;
      if (this.state === 'handshake') {
        const first = this.frameHandshake(chunk);
        if (!first) return out;
        out.push(this.decode(first.packet));
        if ((this.state as ClientPhase) === 'tls') {
          if (first.rest.length > 0) this.tlsBytes = first.rest;
          return out;
        }
        rest = first.rest;
      }
      if (rest.length > 0) for (const p of this.packets.push(rest)) out.push(this.decode(p));
    } catch (e) {
      this.failure = e instanceof ProtocolError ? e : new ProtocolError('malformed packet', e instanceof Error ? e.message : String(e), e);
      throw this.failure;
    }
    return out;
  }

  /** Frames the one packet of the handshake phase by hand and returns it with the bytes after it. */
  private frameHandshake(chunk: Buffer): { packet: Packet; rest: Buffer } | undefined {
    this.hsPieces.push(chunk);
    this.hsLen += chunk.length;
    if (this.hsNeed < 0) {
      if (this.hsLen < 4) return undefined;
      const head = this.hsPieces.length === 1 ? chunk : Buffer.concat(this.hsPieces, this.hsLen);
      const len = head[0]! | (head[1]! << 8) | (head[2]! << 16);
      const limit = this.packets.maxPayloadBytes;
      if (len > limit) throw new ProtocolError(`packet too large (${len} bytes, limit ${limit})`);
      this.hsNeed = len + 4;
      if (this.hsPieces.length > 1) this.hsPieces = [head];
    }
    if (this.hsLen < this.hsNeed) return undefined;
    const buf = this.hsPieces.length === 1 ? this.hsPieces[0]! : Buffer.concat(this.hsPieces, this.hsLen);
    const raw = buf.subarray(0, this.hsNeed);
    const rest = buf.subarray(this.hsNeed);
    this.hsPieces = [];
    this.hsLen = 0;
    this.hsNeed = -1;
    return { packet: { sequenceId: raw[3]!, lastSequenceId: raw[3]!, payload: raw.subarray(4), raw }, rest };
  }

  private decode(p: Packet): ClientMessage {
    switch (this.state) {
      case 'handshake': {
        const m = parseHandshakeResponse(p);
        if (m.name === 'SSLRequest') {
          if (this.secured) throw new ProtocolError('SSL request on a TLS connection');
          this.state = 'tls';
        } else {
          this.caps = this.serverCapabilities === undefined ? m.capabilities : (m.capabilities & this.serverCapabilities) >>> 0;
          this.state = 'auth';
        }
        return m;
      }
      case 'auth':
        return { name: 'AuthResponse', sequenceId: p.sequenceId, raw: p.raw, payload: p.payload, data: p.payload };
      case 'local_infile':
        if (p.payload.length === 0) {
          this.state = 'command';
          this.limitForPhase();
        }
        return { name: 'LocalInfileData', sequenceId: p.sequenceId, raw: p.raw, payload: p.payload, data: p.payload };
      case 'command':
        return this.command(p);
      default:
        throw new ProtocolError('received data outside TLS after SSL request');
    }
  }

  private command(p: Packet): ClientCommand {
    if (p.sequenceId !== 0) throw new ProtocolError(`packets out of order (a command must have sequence id 0, got ${p.sequenceId})`);
    const m = parseCommand(p, { capabilities: this.caps, statement: (id) => this.statement(id) });
    switch (m.name) {
      case 'ComStmtPrepare':
        // Until its answer is registered, "the statement prepared last" (-1) is not known: an
        // execute pipelined behind this prepare must not be decoded as one of an older statement.
        this.lastPrepared = undefined;
        break;
      case 'ComStmtClose': {
        const id = m.statementId === LAST_PREPARED ? this.lastPrepared : m.statementId;
        if (id !== undefined) this.statements.delete(id);
        if (id === this.lastPrepared) this.lastPrepared = undefined;
        break;
      }
      case 'ComStmtReset':
        this.statement(m.statementId)?.longData?.clear();
        break;
      case 'ComResetConnection':
        this.forgetStatements();
        break;
      case 'ComChangeUser':
        this.forgetStatements();
        this.state = 'auth';
        this.limitForPhase();
        break;
      default:
    }
    return m;
  }
}

function readAttributes(r: PayloadReader): Record<string, string> {
  const attrs = Object.create(null) as Record<string, string>;
  const total = r.lenencInt();
  if (total > r.remaining) r.fail('connection attributes exceed packet length');
  const end = r.pos + total;
  const sub = new PayloadReader(r.buf, r.what, r.pos, end);
  while (sub.remaining > 0) {
    const k = sub.lenencString();
    attrs[k] = sub.lenencString();
  }
  r.pos = end;
  return attrs;
}

/** Decodes the client's answer to HandshakeV10: an SSLRequest or a HandshakeResponse41. */
export function parseHandshakeResponse(p: Packet): SSLRequest | HandshakeResponse41 {
  const r = new PayloadReader(p.payload, 'handshake response');
  const capabilities = r.int4();
  if ((capabilities & Capability.PROTOCOL_41) === 0) r.fail('client does not support protocol 4.1');
  const maxPacketSize = r.int4();
  const characterSet = r.int1();
  const filler = r.bytes(23);
  for (let i = 0; i < 19; i++) if (filler[i] !== 0) r.fail('non-zero filler');
  const mariadbCapabilities = capabilities & Capability.LONG_PASSWORD ? 0 : filler.readUInt32LE(19);
  const base = { sequenceId: p.sequenceId, raw: p.raw, payload: p.payload, capabilities, maxPacketSize, characterSet, mariadbCapabilities };
  if (r.remaining === 0) {
    if (p.payload.length !== SSL_REQUEST_LENGTH || (capabilities & Capability.SSL) === 0) r.fail('missing user name');
    return { name: 'SSLRequest', ...base };
  }
  const user = r.nulString();
  let authResponse: Buffer;
  if (capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.lenencBytes();
  else if (capabilities & Capability.SECURE_CONNECTION) authResponse = r.bytes(r.int1());
  else authResponse = r.nulBytes();
  let database: string | undefined;
  let authPlugin: string | undefined;
  let attributes = Object.create(null) as Record<string, string>;
  let zstdCompressionLevel: number | undefined;
  if (capabilities & Capability.CONNECT_WITH_DB) database = r.remaining > 0 ? r.nulString() : '';
  if (capabilities & Capability.PLUGIN_AUTH && r.remaining > 0) authPlugin = r.nulString();
  if (capabilities & Capability.CONNECT_ATTRS && r.remaining > 0) attributes = readAttributes(r);
  if (capabilities & Capability.ZSTD_COMPRESSION_ALGORITHM && r.remaining > 0) zstdCompressionLevel = r.int1();
  r.done();
  return { name: 'HandshakeResponse41', ...base, user, authResponse, database, authPlugin, attributes, zstdCompressionLevel };
}

export interface ParseCommandContext {
  /** Negotiated capabilities (CLIENT_QUERY_ATTRIBUTES changes COM_QUERY and COM_STMT_EXECUTE). */
  capabilities: number;
  /** Looks up a prepared statement for COM_STMT_EXECUTE (0xFFFFFFFF: the last one prepared). */
  statement?: (statementId: number) => StatementInfo | undefined;
}

/**
 * Decodes one command-phase packet. For COM_STMT_EXECUTE, `ctx.statement` supplies the parameter
 * count; the returned parameter types are stored back into the `StatementInfo` (they apply to later
 * executions that do not re-send them) and its long-data marks are cleared.
 */
export function parseCommand(p: Packet, ctx: ParseCommandContext): ClientCommand {
  const payload = p.payload;
  if (payload.length === 0) throw new ProtocolError('invalid command packet: empty payload');
  const command = payload[0]!;
  const r = new PayloadReader(payload, commandName(command), 1);
  const base = { sequenceId: p.sequenceId, raw: p.raw, payload };
  switch (command) {
    case Command.QUIT:
      r.done();
      return { name: 'ComQuit', command, ...base };
    case Command.INIT_DB:
      return { name: 'ComInitDb', command, ...base, schema: r.restString() };
    case Command.QUERY: {
      const attributes = ctx.capabilities & Capability.QUERY_ATTRIBUTES ? readQueryAttributes(r) : [];
      return { name: 'ComQuery', command, ...base, query: r.restString(), attributes };
    }
    case Command.FIELD_LIST: {
      const table = r.nulString();
      return { name: 'ComFieldList', command, ...base, table, wildcard: r.restString() };
    }
    case Command.STATISTICS:
      r.done();
      return { name: 'ComStatistics', command, ...base };
    case Command.PING:
      r.done();
      return { name: 'ComPing', command, ...base };
    case Command.CHANGE_USER: {
      const user = r.nulString();
      const authResponse = ctx.capabilities & Capability.SECURE_CONNECTION ? r.bytes(r.int1()) : r.nulBytes();
      const database = r.nulString();
      let characterSet: number | undefined;
      let authPlugin: string | undefined;
      let attributes = Object.create(null) as Record<string, string>;
      if (r.remaining > 0) characterSet = r.int2();
      if (ctx.capabilities & Capability.PLUGIN_AUTH && r.remaining > 0) authPlugin = r.nulString();
      if (ctx.capabilities & Capability.CONNECT_ATTRS && r.remaining > 0) attributes = readAttributes(r);
      r.done();
      return { name: 'ComChangeUser', command, ...base, user, authResponse, database, characterSet, authPlugin, attributes };
    }
    case Command.RESET_CONNECTION:
      r.done();
      return { name: 'ComResetConnection', command, ...base };
    case Command.SET_OPTION: {
      const option = r.int2();
      r.done();
      return { name: 'ComSetOption', command, ...base, option };
    }
    case Command.STMT_PREPARE:
      return { name: 'ComStmtPrepare', command, ...base, query: r.restString() };
    case Command.STMT_EXECUTE:
      return parseStmtExecute(r, base, ctx);
    case Command.STMT_SEND_LONG_DATA: {
      const statementId = r.int4();
      const paramId = r.int2();
      const info = ctx.statement?.(statementId);
      if (info && paramId < info.paramCount) (info.longData ??= new Set()).add(paramId);
      return { name: 'ComStmtSendLongData', command, ...base, statementId, paramId, data: r.rest() };
    }
    case Command.STMT_CLOSE: {
      const statementId = r.int4();
      r.done();
      return { name: 'ComStmtClose', command, ...base, statementId };
    }
    case Command.STMT_RESET: {
      const statementId = r.int4();
      r.done();
      return { name: 'ComStmtReset', command, ...base, statementId };
    }
    case Command.STMT_FETCH: {
      const statementId = r.int4();
      const rows = r.int4();
      r.done();
      return { name: 'ComStmtFetch', command, ...base, statementId, rows };
    }
    default:
      return { name: 'ComUnknown', command, ...base, commandName: commandName(command), body: r.rest() };
  }
}

function checkType(r: PayloadReader, type: number): void {
  if (!isWireType(type)) r.fail(`unsupported parameter type ${type}`);
}

/** COM_QUERY query attributes: count, set count (1), NULL bitmap, bind flag, typed names, values. */
function readQueryAttributes(r: PayloadReader): BoundValue[] {
  const count = r.lenencInt();
  const setCount = r.lenencInt();
  if (setCount !== 1) r.fail(`unsupported parameter set count ${setCount}`);
  if (count === 0) return [];
  if (count * 3 > r.remaining) r.fail('parameter count exceeds packet length');
  const bitmap = r.bytes((count + 7) >> 3);
  if (r.int1() !== 1) r.fail('query attributes must bind their types');
  const types: { type: number; unsigned: boolean; name: string }[] = [];
  for (let i = 0; i < count; i++) {
    const type = r.int1();
    const flag = r.int1();
    checkType(r, type);
    types.push({ type, unsigned: (flag & 0x80) !== 0, name: r.lenencString() });
  }
  return readValues(r, bitmap, types, undefined);
}

function readValues(r: PayloadReader, bitmap: Buffer, types: readonly { type: number; unsigned: boolean; name: string }[], longData: ReadonlySet<number> | undefined): BoundValue[] {
  const out: BoundValue[] = [];
  for (const [i, t] of types.entries()) {
    if (longData?.has(i)) {
      out.push({ ...t, value: null, longData: true });
      continue;
    }
    const isNull = (bitmap[i >> 3]! & (1 << (i & 7))) !== 0;
    const value = isNull ? null : readBinaryValue(r, { type: t.type, flags: t.unsigned ? ColumnFlag.UNSIGNED : 0 });
    out.push({ ...t, value, longData: false });
  }
  return out;
}

function parseStmtExecute(r: PayloadReader, base: { sequenceId: number; raw: Buffer; payload: Buffer }, ctx: ParseCommandContext): ComStmtExecute {
  const statementId = r.int4();
  const flags = r.int1();
  const iterationCount = r.int4();
  const paramsRaw = r.buf.subarray(r.pos, r.end);
  const info = ctx.statement?.(statementId);
  const command = Command.STMT_EXECUTE;
  const unknown = (newParamsBound: boolean): ComStmtExecute => ({
    name: 'ComStmtExecute',
    command,
    ...base,
    statementId,
    resolvedStatementId: undefined,
    flags,
    iterationCount,
    newParamsBound,
    params: null,
    paramsRaw,
  });
  if (!info) return unknown(false);
  const resolvedStatementId = statementId;
  const attrs = (ctx.capabilities & Capability.QUERY_ATTRIBUTES) !== 0;
  let count = info.paramCount;
  if (attrs && (info.paramCount > 0 || flags & CursorType.PARAMETER_COUNT_AVAILABLE)) {
    count = r.lenencInt();
    if (count < info.paramCount) r.fail(`${count} parameters for a statement with ${info.paramCount}`);
  }
  const longData = info.longData;
  info.longData = undefined;
  if (count === 0) {
    r.done();
    return { name: 'ComStmtExecute', command, ...base, statementId, resolvedStatementId, flags, iterationCount, newParamsBound: false, params: [], paramsRaw };
  }
  if (count * 1 > r.remaining) r.fail('parameter count exceeds packet length');
  const bitmap = r.bytes((count + 7) >> 3);
  const bound = r.int1();
  if (bound > 1) r.fail(`invalid new-params-bound flag ${bound}`);
  let types = info.types;
  if (bound === 1) {
    types = [];
    for (let i = 0; i < count; i++) {
      const type = r.int1();
      const flag = r.int1();
      checkType(r, type);
      types.push({ type, unsigned: (flag & 0x80) !== 0, name: attrs ? r.lenencString() : '' });
    }
    info.types = types;
  } else if (!types || types.length !== count) {
    return unknown(false);
  }
  const params = readValues(r, bitmap, types, longData);
  r.done();
  return { name: 'ComStmtExecute', command, ...base, statementId, resolvedStatementId, flags, iterationCount, newParamsBound: bound === 1, params, paramsRaw };
}

// ---------------------------------------------------------------------------------------------
// Serializers (gateway as client toward the upstream server; also used by tests for round trips)
// ---------------------------------------------------------------------------------------------

export interface HandshakeResponseInit {
  capabilities: number;
  /** Default 16 MiB. */
  maxPacketSize?: number;
  /** Default 45 (utf8mb4_general_ci). */
  characterSet?: number;
  mariadbCapabilities?: number;
  user: string;
  authResponse?: Uint8Array;
  /** Written when CLIENT_CONNECT_WITH_DB is set. */
  database?: string;
  /** Written when CLIENT_PLUGIN_AUTH is set. */
  authPlugin?: string;
  /** Written when CLIENT_CONNECT_ATTRS is set. */
  attributes?: Readonly<Record<string, string>>;
  zstdCompressionLevel?: number;
}

function head(w: PayloadWriter, init: { capabilities: number; maxPacketSize?: number; characterSet?: number; mariadbCapabilities?: number }): PayloadWriter {
  w.int4(init.capabilities).int4(init.maxPacketSize ?? 16 * 1024 * 1024).int1(init.characterSet ?? 45).zeros(19);
  return w.int4(init.capabilities & Capability.LONG_PASSWORD ? 0 : (init.mariadbCapabilities ?? 0));
}

function writeAttributes(w: PayloadWriter, attrs: Readonly<Record<string, string>>): void {
  const inner = new PayloadWriter(128);
  for (const [k, v] of Object.entries(attrs)) inner.lenencBytes(k).lenencBytes(v);
  w.lenencBytes(inner.finish());
}

export interface BoundValueInit {
  type: number;
  unsigned?: boolean;
  name?: string;
  value: BinaryValue;
  /** Sent earlier with COM_STMT_SEND_LONG_DATA: written as neither NULL nor a value. */
  longData?: boolean;
}

function writeBound(w: PayloadWriter, values: readonly BoundValueInit[], withTypes: boolean, withNames: boolean): void {
  const bitmap = Buffer.alloc((values.length + 7) >> 3);
  values.forEach((v, i) => {
    if (v.value === null && !v.longData) bitmap[i >> 3]! |= 1 << (i & 7);
  });
  w.bytes(bitmap).int1(withTypes ? 1 : 0);
  if (withTypes) {
    for (const v of values) {
      w.int1(v.type).int1(v.unsigned ? 0x80 : 0);
      if (withNames) w.lenencBytes(v.name ?? '');
    }
  }
  for (const v of values) {
    if (v.value !== null && !v.longData) writeBinaryValue(w, { type: v.type, flags: v.unsigned ? ColumnFlag.UNSIGNED : 0 }, v.value);
  }
}

function cmd(code: number, size = 1): PayloadWriter {
  return new PayloadWriter(size).int1(code);
}

/**
 * Client packet payloads. Frame them with `encodePacket(payload, seq)` or `Sequence.frame()`.
 * String fields that are NUL-terminated on the wire must not contain NUL (RangeError).
 */
export const client = {
  /** HandshakeResponse41; the fields written follow `capabilities`. */
  handshakeResponse41(init: HandshakeResponseInit): Buffer {
    const caps = init.capabilities;
    const w = head(new PayloadWriter(128), init).nulString(init.user);
    const auth = init.authResponse ?? Buffer.alloc(0);
    if (caps & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) w.lenencBytes(auth);
    else if (caps & Capability.SECURE_CONNECTION) {
      if (auth.length > 255) throw new RangeError('auth response longer than 255 bytes needs CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA');
      w.int1(auth.length).bytes(auth);
    } else w.nulString(auth);
    if (caps & Capability.CONNECT_WITH_DB) w.nulString(init.database ?? '');
    if (caps & Capability.PLUGIN_AUTH) w.nulString(init.authPlugin ?? '');
    if (caps & Capability.CONNECT_ATTRS) writeAttributes(w, init.attributes ?? {});
    if (caps & Capability.ZSTD_COMPRESSION_ALGORITHM) w.int1(init.zstdCompressionLevel ?? 3);
    return w.finish();
  },
  /** The 32-byte SSLRequest (CLIENT_SSL is added to `capabilities`). */
  sslRequest(init: { capabilities: number; maxPacketSize?: number; characterSet?: number; mariadbCapabilities?: number }): Buffer {
    return head(new PayloadWriter(32), { ...init, capabilities: (init.capabilities | Capability.SSL) >>> 0 }).finish();
  },
  /** AuthSwitchResponse and any later round of auth data. */
  authResponse(data: Uint8Array): Buffer {
    return Buffer.from(data);
  },
  /** One packet of a LOCAL INFILE file; an empty one ends it. */
  localInfileData(data: Uint8Array): Buffer {
    return Buffer.from(data);
  },
  quit: (): Buffer => cmd(Command.QUIT).finish(),
  initDb: (schema: string): Buffer => cmd(Command.INIT_DB, schema.length + 1).string(schema).finish(),
  /** COM_QUERY; with CLIENT_QUERY_ATTRIBUTES in `capabilities` the attribute block is written (maybe empty). */
  query(text: string, options: { capabilities?: number; attributes?: readonly BoundValueInit[] } = {}): Buffer {
    const w = cmd(Command.QUERY, text.length + 8);
    if ((options.capabilities ?? 0) & Capability.QUERY_ATTRIBUTES) {
      const attrs = options.attributes ?? [];
      w.lenencInt(attrs.length).lenencInt(1);
      if (attrs.length > 0) writeBound(w, attrs, true, true);
    } else if (options.attributes?.length) throw new RangeError('query attributes need CLIENT_QUERY_ATTRIBUTES');
    return w.string(text).finish();
  },
  fieldList: (table: string, wildcard = ''): Buffer => cmd(Command.FIELD_LIST, 32).nulString(table).string(wildcard).finish(),
  statistics: (): Buffer => cmd(Command.STATISTICS).finish(),
  ping: (): Buffer => cmd(Command.PING).finish(),
  changeUser(init: { capabilities: number; user: string; authResponse?: Uint8Array; database?: string; characterSet?: number; authPlugin?: string; attributes?: Readonly<Record<string, string>> }): Buffer {
    const w = cmd(Command.CHANGE_USER, 64).nulString(init.user);
    const auth = init.authResponse ?? Buffer.alloc(0);
    if (init.capabilities & Capability.SECURE_CONNECTION) {
      if (auth.length > 255) throw new RangeError('auth response longer than 255 bytes');
      w.int1(auth.length).bytes(auth);
    } else w.nulString(auth);
    w.nulString(init.database ?? '').int2(init.characterSet ?? 45);
    if (init.capabilities & Capability.PLUGIN_AUTH) w.nulString(init.authPlugin ?? '');
    if (init.capabilities & Capability.CONNECT_ATTRS) writeAttributes(w, init.attributes ?? {});
    return w.finish();
  },
  resetConnection: (): Buffer => cmd(Command.RESET_CONNECTION).finish(),
  setOption: (option: number): Buffer => cmd(Command.SET_OPTION, 3).int2(option).finish(),
  stmtPrepare: (query: string): Buffer => cmd(Command.STMT_PREPARE, query.length + 1).string(query).finish(),
  /**
   * COM_STMT_EXECUTE. `paramCount` is the statement's `num_params` (default `params.length`); with
   * CLIENT_QUERY_ATTRIBUTES, `params` may add named attributes after the statement's parameters.
   * `newParamsBound: false` omits the types (the server reuses the previous execution's).
   */
  stmtExecute(init: {
    statementId: number;
    params?: readonly BoundValueInit[];
    paramCount?: number;
    flags?: number;
    iterationCount?: number;
    newParamsBound?: boolean;
    capabilities?: number;
  }): Buffer {
    const params = init.params ?? [];
    const paramCount = init.paramCount ?? params.length;
    const flags = init.flags ?? 0;
    const attrs = ((init.capabilities ?? 0) & Capability.QUERY_ATTRIBUTES) !== 0;
    if (!attrs && params.length !== paramCount) throw new RangeError(`${params.length} values for ${paramCount} parameters`);
    if (params.length < paramCount) throw new RangeError(`${params.length} values for ${paramCount} parameters`);
    const w = cmd(Command.STMT_EXECUTE, 16 + params.length * 12).int4(init.statementId).int1(flags).int4(init.iterationCount ?? 1);
    if (attrs && (paramCount > 0 || flags & CursorType.PARAMETER_COUNT_AVAILABLE)) w.lenencInt(params.length);
    if (params.length > 0) writeBound(w, params, init.newParamsBound ?? true, attrs);
    return w.finish();
  },
  stmtSendLongData: (statementId: number, paramId: number, data: Uint8Array): Buffer =>
    cmd(Command.STMT_SEND_LONG_DATA, 7 + data.length).int4(statementId).int2(paramId).bytes(data).finish(),
  stmtClose: (statementId: number): Buffer => cmd(Command.STMT_CLOSE, 5).int4(statementId).finish(),
  stmtReset: (statementId: number): Buffer => cmd(Command.STMT_RESET, 5).int4(statementId).finish(),
  stmtFetch: (statementId: number, rows: number): Buffer => cmd(Command.STMT_FETCH, 9).int4(statementId).int4(rows).finish(),
  /** Any command byte with a raw body (tests, and commands this codec does not model). */
  raw: (command: number, body: Uint8Array = Buffer.alloc(0)): Buffer => cmd(command, 1 + body.length).bytes(body).finish(),
};
