/**
 * Server → client packets: the parsers the gateway runs toward the upstream server (it is the
 * server's client), the response state machine that tells a proxy where a command's answer ends,
 * and the serializers the gateway uses to answer the agent itself (it is the agent's server).
 *
 * - HandshakeV10, AuthSwitchRequest, AuthMoreData:
 *   https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets.html
 * - OK, ERR, EOF: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_response_packets.html
 * - Text result sets (column count, ColumnDefinition41, rows, CLIENT_DEPRECATE_EOF, multi-results):
 *   https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response.html
 * - LOCAL INFILE: page_protocol_com_query_response_local_infile_request.html
 * - Prepared statements: page_protocol_com_stmt_prepare.html (COM_STMT_PREPARE_OK),
 *   page_protocol_com_stmt_execute.html (binary result sets), page_protocol_com_stmt_fetch.html
 * - MariaDB: https://mariadb.com/kb/en/connection/, https://mariadb.com/kb/en/result-set-packets/,
 *   https://mariadb.com/kb/en/ok_packet/, https://mariadb.com/kb/en/err_packet/
 */
import { randomBytes } from 'node:crypto';
import { Capability, ServerStatus } from './constants.js';
import { PayloadReader, PayloadWriter, ProtocolError, type Packet } from './packet.js';
import type { ClientCommand } from './client.js';
import { decodeBinaryRow, decodeTextRow, decodeTextRowBuffers, encodeBinaryRow, encodeTextRow, type BinaryValue, type ValueType } from './values.js';

interface Base<N extends string> {
  /** Discriminant. */
  readonly name: N;
  /** Sequence id of the (first) physical packet. */
  readonly sequenceId: number;
  /** The packet(s) as received, headers included: a view of the input when it arrived whole. */
  readonly raw: Buffer;
  /** The payload. */
  readonly payload: Buffer;
}

export interface HandshakeV10 extends Base<'HandshakeV10'> {
  readonly protocolVersion: 10;
  readonly serverVersion: string;
  readonly connectionId: number;
  /** The scramble (both parts, without the trailing NUL): 20 bytes from MySQL and MariaDB. */
  readonly authPluginData: Buffer;
  readonly capabilities: number;
  readonly characterSet: number;
  readonly statusFlags: number;
  /** The default authentication plugin (CLIENT_PLUGIN_AUTH), e.g. `mysql_native_password`. */
  readonly authPlugin: string | undefined;
  /** MariaDB extended capabilities (0 from MySQL, which sets CLIENT_MYSQL). */
  readonly mariadbCapabilities: number;
}

export interface OkPacket extends Base<'OkPacket'> {
  /** 0x00, or 0xFE for the OK that ends a result set under CLIENT_DEPRECATE_EOF. */
  readonly header: 0x00 | 0xfe;
  readonly affectedRows: bigint;
  readonly lastInsertId: bigint;
  readonly statusFlags: number;
  readonly warnings: number;
  readonly info: string;
  /** Session state changes (CLIENT_SESSION_TRACK with SERVER_SESSION_STATE_CHANGED), undecoded. */
  readonly sessionStateChanges: Buffer | undefined;
}

export interface ErrPacket extends Base<'ErrPacket'> {
  readonly code: number;
  /** Five-character SQLSTATE, when the `#` marker is present. */
  readonly sqlState: string | undefined;
  readonly message: string;
}

export interface EofPacket extends Base<'EofPacket'> {
  readonly warnings: number;
  readonly statusFlags: number;
}

export interface AuthSwitchRequest extends Base<'AuthSwitchRequest'> {
  readonly plugin: string;
  /** Plugin data as sent (for the scramble-based plugins: 20 bytes and a NUL). */
  readonly data: Buffer;
}

export interface AuthMoreData extends Base<'AuthMoreData'> {
  /** E.g. 0x03 fast auth success / 0x04 perform full authentication, or a PEM public key. */
  readonly data: Buffer;
}

export interface LocalInfileRequest extends Base<'LocalInfileRequest'> {
  readonly filename: string;
}

export interface ColumnCount extends Base<'ColumnCount'> {
  readonly count: number;
}

export interface ColumnDefinition extends Base<'ColumnDefinition'>, ValueType {
  readonly catalog: string;
  readonly schema: string;
  /** Table alias as written in the query. */
  readonly table: string;
  /** Physical table name (empty for computed columns). */
  readonly orgTable: string;
  /** Column alias (the protocol's `name`; `name` here is the message discriminant). */
  readonly columnName: string;
  /** Physical column name. */
  readonly orgName: string;
  readonly characterSet: number;
  readonly columnLength: number;
  readonly type: number;
  readonly flags: number;
  readonly decimals: number;
  /** COM_FIELD_LIST only: the column's default value (`null` for NULL, `undefined` when absent). */
  readonly defaultValue: Buffer | null | undefined;
}

/** A text-protocol row: decode with `decodeTextRow(payload)` or `ResponseReader.decodeTextRow`. */
export type TextRow = Base<'TextRow'>;
/** A binary-protocol row: decode with `decodeBinaryRow(payload, columns)` or `ResponseReader.decodeBinaryRow`. */
export type BinaryRow = Base<'BinaryRow'>;

export interface StmtPrepareOk extends Base<'StmtPrepareOk'> {
  readonly statementId: number;
  readonly columnCount: number;
  readonly paramCount: number;
  readonly warnings: number;
}

/** The human-readable answer to COM_STATISTICS. */
export interface Statistics extends Base<'Statistics'> {
  readonly text: string;
}

export type AuthPhaseMessage = OkPacket | ErrPacket | AuthSwitchRequest | AuthMoreData;
export type ResponseMessage =
  | OkPacket
  | ErrPacket
  | EofPacket
  | LocalInfileRequest
  | ColumnCount
  | ColumnDefinition
  | TextRow
  | BinaryRow
  | StmtPrepareOk
  | Statistics
  | AuthSwitchRequest
  | AuthMoreData;

function base<N extends string>(name: N, p: Packet): Base<N> {
  return { name, sequenceId: p.sequenceId, raw: p.raw, payload: p.payload };
}

// ---------------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------------

/** The first packet from a server: HandshakeV10, or ERR when it refuses the connection outright. */
export function parseGreeting(p: Packet): HandshakeV10 | ErrPacket {
  if (p.payload[0] === 0xff) return parseErr(p, Capability.PROTOCOL_41);
  return parseHandshakeV10(p);
}

export function parseHandshakeV10(p: Packet): HandshakeV10 {
  const r = new PayloadReader(p.payload, 'HandshakeV10');
  const version = r.int1();
  if (version !== 10) r.fail(`unsupported protocol version ${version}`);
  const serverVersion = r.nulString();
  const connectionId = r.int4();
  const part1 = r.bytes(8);
  if (r.int1() !== 0) r.fail('non-zero filler');
  const low = r.int2();
  const characterSet = r.int1();
  const statusFlags = r.int2();
  const capabilities = (low | (r.int2() << 16)) >>> 0;
  if ((capabilities & Capability.PROTOCOL_41) === 0) r.fail('server does not support protocol 4.1');
  const authDataLength = r.int1();
  const reserved = r.bytes(10);
  const mariadbCapabilities = capabilities & Capability.LONG_PASSWORD ? 0 : reserved.readUInt32LE(6);
  let part2: Buffer = Buffer.alloc(0);
  if (capabilities & Capability.SECURE_CONNECTION) {
    part2 = r.bytes(Math.max(13, authDataLength - 8));
    if (part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
  }
  let authPlugin: string | undefined;
  if (capabilities & Capability.PLUGIN_AUTH) {
    // Some old servers omit the terminator of the plugin name.
    const nul = r.buf.indexOf(0, r.pos);
    authPlugin = nul >= 0 && nul < r.end ? r.nulString() : r.restString();
  }
  r.done();
  return {
    ...base('HandshakeV10', p),
    protocolVersion: 10,
    serverVersion,
    connectionId,
    authPluginData: Buffer.concat([part1, part2]),
    capabilities,
    characterSet,
    statusFlags,
    authPlugin,
    mariadbCapabilities,
  };
}

/** An OK packet (header 0x00, or 0xFE when it ends a result set under CLIENT_DEPRECATE_EOF). */
export function parseOk(p: Packet, capabilities: number): OkPacket {
  const r = new PayloadReader(p.payload, 'OK');
  const header = r.int1();
  if (header !== 0x00 && header !== 0xfe) r.fail(`invalid header 0x${header.toString(16)}`);
  const affectedRows = r.lenencBigInt();
  const lastInsertId = r.lenencBigInt();
  let statusFlags = 0;
  let warnings = 0;
  if (capabilities & Capability.PROTOCOL_41) {
    statusFlags = r.int2();
    warnings = r.int2();
  } else if (capabilities & Capability.TRANSACTIONS) {
    statusFlags = r.int2();
  }
  let info = '';
  let sessionStateChanges: Buffer | undefined;
  if (capabilities & Capability.SESSION_TRACK) {
    if (r.remaining > 0) info = r.lenencString();
    if (statusFlags & ServerStatus.SESSION_STATE_CHANGED && r.remaining > 0) sessionStateChanges = r.lenencBytes();
  } else {
    info = r.restString();
  }
  r.done();
  return { ...base('OkPacket', p), header: header as 0x00 | 0xfe, affectedRows, lastInsertId, statusFlags, warnings, info, sessionStateChanges };
}

export function parseErr(p: Packet, capabilities: number): ErrPacket {
  const r = new PayloadReader(p.payload, 'ERR');
  if (r.int1() !== 0xff) r.fail('invalid header');
  const code = r.int2();
  let sqlState: string | undefined;
  if (capabilities & Capability.PROTOCOL_41 && r.peek() === 0x23) {
    r.pos++;
    sqlState = r.bytes(5).toString('latin1');
  }
  return { ...base('ErrPacket', p), code, sqlState, message: r.restString() };
}

export function parseEof(p: Packet, capabilities: number): EofPacket {
  const r = new PayloadReader(p.payload, 'EOF');
  if (r.int1() !== 0xfe) r.fail('invalid header');
  let warnings = 0;
  let statusFlags = 0;
  if (capabilities & Capability.PROTOCOL_41) {
    warnings = r.int2();
    statusFlags = r.int2();
  }
  r.done();
  return { ...base('EofPacket', p), warnings, statusFlags };
}

/** A packet during authentication (after HandshakeResponse41 or COM_CHANGE_USER). */
export function parseAuthPhasePacket(p: Packet, capabilities: number): AuthPhaseMessage {
  switch (p.payload[0]) {
    case 0x00:
      return parseOk(p, capabilities);
    case 0xff:
      return parseErr(p, capabilities);
    case 0xfe: {
      const r = new PayloadReader(p.payload, 'AuthSwitchRequest', 1);
      if (r.remaining === 0) r.fail('old password authentication is not supported');
      const plugin = r.nulString();
      return { ...base('AuthSwitchRequest', p), plugin, data: r.rest() };
    }
    case 0x01:
      return { ...base('AuthMoreData', p), data: p.payload.subarray(1) };
    default:
      throw new ProtocolError(`invalid authentication packet: unexpected header ${p.payload.length === 0 ? '(empty)' : `0x${p.payload[0]!.toString(16)}`}`);
  }
}

export function parseColumnDefinition(p: Packet, fieldList = false): ColumnDefinition {
  const r = new PayloadReader(p.payload, 'ColumnDefinition');
  const catalog = r.lenencString();
  const schema = r.lenencString();
  const table = r.lenencString();
  const orgTable = r.lenencString();
  const columnName = r.lenencString();
  const orgName = r.lenencString();
  const fixed = r.lenencInt();
  if (fixed !== 0x0c) r.fail(`invalid fixed-fields length ${fixed}`);
  const characterSet = r.int2();
  const columnLength = r.int4();
  const type = r.int1();
  const flags = r.int2();
  const decimals = r.int1();
  r.bytes(2);
  let defaultValue: Buffer | null | undefined;
  if (fieldList && r.remaining > 0) defaultValue = r.lenencBytes(true);
  r.done();
  return { ...base('ColumnDefinition', p), catalog, schema, table, orgTable, columnName, orgName, characterSet, columnLength, type, flags, decimals, defaultValue };
}

export function parseStmtPrepareOk(p: Packet): StmtPrepareOk {
  const r = new PayloadReader(p.payload, 'COM_STMT_PREPARE_OK');
  if (r.int1() !== 0x00) r.fail('invalid header');
  const statementId = r.int4();
  const columnCount = r.int2();
  const paramCount = r.int2();
  r.int1();
  const warnings = r.remaining > 0 ? r.int2() : 0;
  r.done();
  return { ...base('StmtPrepareOk', p), statementId, columnCount, paramCount, warnings };
}

// ---------------------------------------------------------------------------------------------
// The response state machine
// ---------------------------------------------------------------------------------------------

/**
 * What kind of answer a command gets:
 * - `query`: COM_QUERY: OK, ERR, LOCAL INFILE request, or text result sets (several with
 *   SERVER_MORE_RESULTS_EXISTS);
 * - `execute`: COM_STMT_EXECUTE: OK, ERR or binary result sets (several for CALL);
 * - `prepare`: COM_STMT_PREPARE: COM_STMT_PREPARE_OK with parameter and column definitions, or ERR;
 * - `field_list`: COM_FIELD_LIST: column definitions with defaults, then EOF;
 * - `fetch`: COM_STMT_FETCH: binary rows of an open cursor, then EOF;
 * - `statistics`: COM_STATISTICS: one string;
 * - `change_user`: COM_CHANGE_USER: the authentication exchange, ending with OK or ERR;
 * - `simple`: everything else that is answered: one OK, ERR or EOF.
 */
export type ResponseKind = 'query' | 'execute' | 'prepare' | 'field_list' | 'fetch' | 'statistics' | 'change_user' | 'simple';

/** The response a command gets, or `undefined` when the server sends none (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA). */
export function responseKind(cmd: ClientCommand): ResponseKind | undefined {
  switch (cmd.name) {
    case 'ComQuery':
      return 'query';
    case 'ComStmtExecute':
      return 'execute';
    case 'ComStmtPrepare':
      return 'prepare';
    case 'ComFieldList':
      return 'field_list';
    case 'ComStmtFetch':
      return 'fetch';
    case 'ComStatistics':
      return 'statistics';
    case 'ComChangeUser':
      return 'change_user';
    case 'ComQuit':
    case 'ComStmtClose':
    case 'ComStmtSendLongData':
      return undefined;
    default:
      return 'simple';
  }
}

export type ResponseState =
  | 'first'
  | 'column_definitions'
  | 'column_definitions_eof'
  | 'rows'
  | 'local_infile'
  | 'local_infile_response'
  | 'prepare_params'
  | 'prepare_params_eof'
  | 'prepare_columns'
  | 'prepare_columns_eof'
  | 'auth'
  | 'done';

export interface ResponseReaderOptions {
  /** The capabilities negotiated with the server (CLIENT_DEPRECATE_EOF, CLIENT_SESSION_TRACK, …). */
  capabilities: number;
  /** `fetch`: the columns of the cursor's result set (from the COM_STMT_EXECUTE that opened it). */
  columns?: readonly ColumnDefinition[];
  /** Largest column count accepted in a result set. Default 65535. */
  maxColumns?: number;
}

/**
 * Follows the answer to one command, packet by packet, so that a proxy knows what each packet is
 * and where the answer ends. Create one per command with the command's `responseKind()`, then call
 * `read(packet)` for every packet the server sends until `done` is true:
 *
 * ```ts
 * const rr = new ResponseReader(responseKind(cmd)!, { capabilities });
 * while (!rr.done) {
 *   const m = rr.read(await nextPacket());
 *   if (m.name === 'TextRow') forward(mask(rr.decodeTextRow(m)));   // or forward m.raw untouched
 *   else if (m.name === 'LocalInfileRequest') { refuse or relay the file, then rr.localInfileSent(); }
 *   else forward(m.raw);
 * }
 * ```
 *
 * Multi-results (SERVER_MORE_RESULTS_EXISTS on the OK or EOF that ends a result) continue in the
 * same reader; an ERR always ends the answer. With CLIENT_DEPRECATE_EOF the EOF after the column
 * definitions is absent and rows end with an OK packet whose header is 0xFE. A COM_STMT_EXECUTE
 * that opens a cursor ends after its column definitions (SERVER_STATUS_CURSOR_EXISTS); its rows
 * come with COM_STMT_FETCH. CLIENT_OPTIONAL_RESULTSET_METADATA and MariaDB's metadata cache are
 * not supported: do not negotiate them. Throws `ProtocolError` for a packet that cannot come next.
 */
export class ResponseReader {
  private s: ResponseState;
  private readonly caps: number;
  private readonly deprecateEof: boolean;
  private readonly maxColumns: number;
  private cols: ColumnDefinition[] = [];
  private prepareParams: ColumnDefinition[] = [];
  private pendingColumns = 0;
  private pendingParams = 0;
  private results = 0;
  private lastStatus = 0;

  constructor(
    readonly kind: ResponseKind,
    options: ResponseReaderOptions,
  ) {
    this.caps = options.capabilities;
    this.deprecateEof = (options.capabilities & Capability.DEPRECATE_EOF) !== 0;
    this.maxColumns = options.maxColumns ?? 65535;
    if (options.capabilities & Capability.OPTIONAL_RESULTSET_METADATA) throw new RangeError('CLIENT_OPTIONAL_RESULTSET_METADATA is not supported');
    if (kind === 'fetch') {
      if (!options.columns) throw new RangeError('a fetch response needs the cursor columns');
      this.cols = [...options.columns];
      this.s = 'rows';
    } else if (kind === 'field_list') {
      this.s = 'column_definitions';
    } else {
      this.s = 'first';
    }
  }

  get state(): ResponseState {
    return this.s;
  }

  /** True once the answer is complete: the next packet belongs to the next command. */
  get done(): boolean {
    return this.s === 'done';
  }

  /** Column definitions of the current result set (of the prepared statement, for `prepare`). */
  get columns(): readonly ColumnDefinition[] {
    return this.cols;
  }

  /** Parameter definitions (for `prepare`). */
  get params(): readonly ColumnDefinition[] {
    return this.prepareParams;
  }

  /** Results completed so far (result sets and OK packets). */
  get resultCount(): number {
    return this.results;
  }

  /** Status flags of the last OK or EOF. */
  get statusFlags(): number {
    return this.lastStatus;
  }

  /** The client's file (or its refusal, an empty packet) has been sent after a LOCAL INFILE request. */
  localInfileSent(): void {
    if (this.s !== 'local_infile') throw new ProtocolError('no LOCAL INFILE request is pending');
    this.s = 'local_infile_response';
  }

  decodeTextRow(row: TextRow): (string | null)[] {
    return decodeTextRow(row.payload, this.cols.length);
  }

  decodeTextRowBuffers(row: TextRow): (Buffer | null)[] {
    return decodeTextRowBuffers(row.payload, this.cols.length);
  }

  decodeBinaryRow(row: BinaryRow): BinaryValue[] {
    return decodeBinaryRow(row.payload, this.cols);
  }

  read(p: Packet): ResponseMessage {
    const first = p.payload.length > 0 ? p.payload[0]! : -1;
    switch (this.s) {
      case 'first':
        return this.first(p, first);
      case 'column_definitions': {
        if (first === 0xff) return this.end(parseErr(p, this.caps));
        if (this.kind === 'field_list') {
          if (this.isTerminator(p, first)) return this.endOfResult(p);
          return parseColumnDefinition(p, true);
        }
        const def = parseColumnDefinition(p);
        this.cols.push(def);
        if (--this.pendingColumns === 0) this.s = this.deprecateEof ? 'rows' : 'column_definitions_eof';
        return def;
      }
      case 'column_definitions_eof': {
        const eof = this.expectEof(p, first);
        if (eof.name === 'ErrPacket') return eof;
        if (eof.statusFlags & ServerStatus.CURSOR_EXISTS && this.kind === 'execute') {
          this.results++;
          this.lastStatus = eof.statusFlags;
          this.s = eof.statusFlags & ServerStatus.MORE_RESULTS_EXISTS ? 'first' : 'done';
        } else {
          this.s = 'rows';
        }
        return eof;
      }
      case 'rows':
        if (first === 0xff) return this.end(parseErr(p, this.caps));
        if (this.isTerminator(p, first)) return this.endOfResult(p);
        if (first < 0) throw new ProtocolError('invalid row: empty packet');
        if (this.kind === 'query') return base('TextRow', p);
        if (first !== 0x00) throw new ProtocolError(`invalid binary row: header 0x${first.toString(16)}`);
        return base('BinaryRow', p);
      case 'local_infile':
        throw new ProtocolError('unexpected packet from the server while it waits for LOCAL INFILE data');
      case 'local_infile_response':
        if (first === 0xff) return this.end(parseErr(p, this.caps));
        if (first === 0x00) return this.ok(parseOk(p, this.caps));
        throw new ProtocolError('invalid response after LOCAL INFILE data: expected OK or ERR');
      case 'prepare_params': {
        if (first === 0xff) return this.end(parseErr(p, this.caps));
        const def = parseColumnDefinition(p);
        this.prepareParams.push(def);
        if (--this.pendingParams === 0) this.s = this.deprecateEof ? this.afterParams() : 'prepare_params_eof';
        return def;
      }
      case 'prepare_params_eof': {
        const eof = this.expectEof(p, first);
        if (eof.name === 'EofPacket') this.s = this.afterParams();
        return eof;
      }
      case 'prepare_columns': {
        if (first === 0xff) return this.end(parseErr(p, this.caps));
        const def = parseColumnDefinition(p);
        this.cols.push(def);
        if (--this.pendingColumns === 0) this.s = this.deprecateEof ? 'done' : 'prepare_columns_eof';
        return def;
      }
      case 'prepare_columns_eof': {
        const eof = this.expectEof(p, first);
        this.s = 'done';
        return eof;
      }
      case 'auth': {
        const m = parseAuthPhasePacket(p, this.caps);
        if (m.name === 'OkPacket') return this.ok(m);
        if (m.name === 'ErrPacket') return this.end(m);
        return m;
      }
      case 'done':
        throw new ProtocolError('unexpected packet after the end of the response');
    }
  }

  private first(p: Packet, first: number): ResponseMessage {
    switch (this.kind) {
      case 'statistics':
        if (first === 0xff) return this.end(parseErr(p, this.caps));
        this.s = 'done';
        return { ...base('Statistics', p), text: p.payload.toString('utf8') };
      case 'simple':
        if (first === 0xff) return this.end(parseErr(p, this.caps));
        if (first === 0x00) return this.ok(parseOk(p, this.caps));
        if (first === 0xfe) {
          const m = this.isTerminator(p, first) ? this.terminator(p) : undefined;
          if (m) {
            this.lastStatus = m.statusFlags;
            this.s = 'done';
            return m;
          }
        }
        throw new ProtocolError('invalid response: expected OK, ERR or EOF');
      case 'change_user':
        this.s = 'auth';
        return this.read(p);
      case 'prepare': {
        if (first === 0xff) return this.end(parseErr(p, this.caps));
        const ok = parseStmtPrepareOk(p);
        if (ok.columnCount > this.maxColumns) throw new ProtocolError(`too many columns (${ok.columnCount})`);
        this.pendingParams = ok.paramCount;
        this.pendingColumns = ok.columnCount;
        this.s = ok.paramCount > 0 ? 'prepare_params' : this.afterParams();
        return ok;
      }
      default:
    }
    // query, execute
    if (first === 0xff) return this.end(parseErr(p, this.caps));
    if (first === 0x00) return this.ok(parseOk(p, this.caps));
    if (first === 0xfb && this.kind === 'query') {
      this.s = 'local_infile';
      return { ...base('LocalInfileRequest', p), filename: p.payload.toString('utf8', 1) };
    }
    if (first === 0xfe || first === 0xfb || first < 0) throw new ProtocolError('invalid response: expected OK, ERR or a result set');
    const r = new PayloadReader(p.payload, 'column count');
    const count = r.lenencInt();
    r.done();
    if (count === 0 || count > this.maxColumns) r.fail(`invalid column count ${count}`);
    this.cols = [];
    this.pendingColumns = count;
    this.s = 'column_definitions';
    return { ...base('ColumnCount', p), count };
  }

  private afterParams(): ResponseState {
    return this.pendingColumns > 0 ? 'prepare_columns' : 'done';
  }

  /** 0xFE and short enough not to be a row whose first value is 2^24 bytes or longer. */
  private isTerminator(p: Packet, first: number): boolean {
    return first === 0xfe && p.payload.length < (this.deprecateEof ? 0xffffff : 9);
  }

  private terminator(p: Packet): OkPacket | EofPacket {
    return this.deprecateEof ? parseOk(p, this.caps) : parseEof(p, this.caps);
  }

  private expectEof(p: Packet, first: number): EofPacket | ErrPacket {
    if (first === 0xff) return this.end(parseErr(p, this.caps));
    return parseEof(p, this.caps);
  }

  private endOfResult(p: Packet): OkPacket | EofPacket {
    const m = this.terminator(p);
    this.results++;
    this.lastStatus = m.statusFlags;
    this.s = m.statusFlags & ServerStatus.MORE_RESULTS_EXISTS && this.kind !== 'fetch' && this.kind !== 'field_list' ? 'first' : 'done';
    return m;
  }

  private ok(m: OkPacket): OkPacket {
    this.results++;
    this.lastStatus = m.statusFlags;
    this.s = m.statusFlags & ServerStatus.MORE_RESULTS_EXISTS && (this.kind === 'query' || this.kind === 'execute') ? 'first' : 'done';
    return m;
  }

  private end(m: ErrPacket): ErrPacket {
    this.s = 'done';
    return m;
  }
}

// ---------------------------------------------------------------------------------------------
// Serializers (gateway as server toward the agent; also used by tests for round trips)
// ---------------------------------------------------------------------------------------------

/**
 * A 20-byte scramble as MySQL makes them: random bytes in 1..127, never NUL or `$`, so that old
 * clients treating it as a C string work.
 */
export function generateScramble(length = 20): Buffer {
  const b = randomBytes(length);
  for (let i = 0; i < length; i++) {
    let v = b[i]! & 0x7f;
    if (v === 0 || v === 0x24) v++;
    b[i] = v;
  }
  return b;
}

export interface HandshakeV10Init {
  serverVersion: string;
  connectionId: number;
  /** The scramble, at least 8 bytes (20 for the password plugins); no NUL bytes. */
  authPluginData: Uint8Array;
  capabilities: number;
  /** Default 45 (utf8mb4_general_ci). */
  characterSet?: number;
  /** Default SERVER_STATUS_AUTOCOMMIT. */
  statusFlags?: number;
  /** Written when CLIENT_PLUGIN_AUTH is set; default `mysql_native_password`. */
  authPlugin?: string;
  /** MariaDB extended capabilities, written when CLIENT_MYSQL (bit 0) is not set. */
  mariadbCapabilities?: number;
}

export interface OkInit {
  affectedRows?: number | bigint;
  lastInsertId?: number | bigint;
  statusFlags?: number;
  warnings?: number;
  info?: string;
  sessionStateChanges?: Uint8Array;
  /** 0xFE for the OK that ends a result set under CLIENT_DEPRECATE_EOF. Default 0x00. */
  header?: 0x00 | 0xfe;
}

export interface ErrInit {
  code: number;
  /** Five characters; default `HY000`. */
  sqlState?: string;
  message: string;
}

export interface ColumnDefinitionInit {
  catalog?: string;
  schema?: string;
  table?: string;
  orgTable?: string;
  name: string;
  orgName?: string;
  /** Default 45 (utf8mb4_general_ci); 63 for binary. */
  characterSet?: number;
  columnLength?: number;
  type: number;
  flags?: number;
  decimals?: number;
  /** COM_FIELD_LIST only. */
  defaultValue?: Uint8Array | string | null;
}

function okPayload(init: OkInit, capabilities: number): Buffer {
  const w = new PayloadWriter(32).int1(init.header ?? 0x00).lenencInt(init.affectedRows ?? 0).lenencInt(init.lastInsertId ?? 0);
  let status = init.statusFlags ?? ServerStatus.AUTOCOMMIT;
  if (init.sessionStateChanges) status |= ServerStatus.SESSION_STATE_CHANGED;
  if (capabilities & Capability.PROTOCOL_41) w.int2(status).int2(init.warnings ?? 0);
  else if (capabilities & Capability.TRANSACTIONS) w.int2(status);
  if (capabilities & Capability.SESSION_TRACK) {
    if (init.info || init.sessionStateChanges) w.lenencBytes(init.info ?? '');
    if (init.sessionStateChanges) w.lenencBytes(init.sessionStateChanges);
  } else {
    if (init.sessionStateChanges) throw new RangeError('session state changes need CLIENT_SESSION_TRACK');
    w.string(init.info ?? '');
  }
  return w.finish();
}

/**
 * Server packet payloads. Frame them with `encodePacket(payload, seq)` or `Sequence.frame()`.
 * Functions taking `capabilities` write what the negotiated capabilities call for.
 */
export const server = {
  handshakeV10(init: HandshakeV10Init): Buffer {
    const caps = init.capabilities >>> 0;
    const data = Buffer.from(init.authPluginData);
    if (data.length < 8) throw new RangeError('auth plugin data must be at least 8 bytes');
    if (data.includes(0)) throw new RangeError('auth plugin data must not contain NUL bytes');
    const w = new PayloadWriter(128).int1(10).nulString(init.serverVersion).int4(init.connectionId).bytes(data.subarray(0, 8)).int1(0);
    w.int2(caps & 0xffff).int1(init.characterSet ?? 45).int2(init.statusFlags ?? ServerStatus.AUTOCOMMIT).int2(caps >>> 16);
    w.int1(caps & Capability.PLUGIN_AUTH ? data.length + 1 : 0).zeros(6).int4(caps & Capability.LONG_PASSWORD ? 0 : (init.mariadbCapabilities ?? 0));
    if (caps & Capability.SECURE_CONNECTION) {
      const part2 = data.subarray(8);
      w.bytes(part2).zeros(Math.max(13, part2.length + 1) - part2.length);
    }
    if (caps & Capability.PLUGIN_AUTH) w.nulString(init.authPlugin ?? 'mysql_native_password');
    return w.finish();
  },
  /** Asks the client to authenticate with another plugin, e.g. `mysql_clear_password` to receive the token. */
  authSwitchRequest(plugin: string, data: Uint8Array = Buffer.alloc(0)): Buffer {
    return new PayloadWriter(32 + data.length).int1(0xfe).nulString(plugin).bytes(data).finish();
  },
  authMoreData(data: Uint8Array): Buffer {
    return new PayloadWriter(1 + data.length).int1(0x01).bytes(data).finish();
  },
  ok(init: OkInit, capabilities: number): Buffer {
    return okPayload(init, capabilities);
  },
  /** ERR with the `#` SQL state marker under CLIENT_PROTOCOL_41. */
  err(init: ErrInit, capabilities: number): Buffer {
    const state = init.sqlState ?? 'HY000';
    if (!/^[0-9A-Z]{5}$/.test(state)) throw new RangeError('SQL state must be five characters 0-9 A-Z');
    const w = new PayloadWriter(16 + init.message.length).int1(0xff).int2(init.code);
    if (capabilities & Capability.PROTOCOL_41) w.int1(0x23).string(state);
    return w.string(init.message).finish();
  },
  /** The packet that ends rows: EOF, or under CLIENT_DEPRECATE_EOF an OK with header 0xFE. */
  eof(init: { warnings?: number; statusFlags?: number }, capabilities: number): Buffer {
    if (capabilities & Capability.DEPRECATE_EOF) return okPayload({ ...init, header: 0xfe }, capabilities & ~Capability.SESSION_TRACK);
    return server.eofPacket(init, capabilities);
  },
  /** A classic EOF packet whatever the capabilities (after definitions without CLIENT_DEPRECATE_EOF). */
  eofPacket(init: { warnings?: number; statusFlags?: number }, capabilities: number): Buffer {
    const w = new PayloadWriter(5).int1(0xfe);
    if (capabilities & Capability.PROTOCOL_41) w.int2(init.warnings ?? 0).int2(init.statusFlags ?? ServerStatus.AUTOCOMMIT);
    return w.finish();
  },
  localInfileRequest(filename: string): Buffer {
    return new PayloadWriter(1 + filename.length).int1(0xfb).string(filename).finish();
  },
  columnCount(count: number): Buffer {
    return new PayloadWriter(9).lenencInt(count).finish();
  },
  columnDefinition(def: ColumnDefinitionInit, fieldList = false): Buffer {
    const w = new PayloadWriter(64)
      .lenencBytes(def.catalog ?? 'def')
      .lenencBytes(def.schema ?? '')
      .lenencBytes(def.table ?? '')
      .lenencBytes(def.orgTable ?? '')
      .lenencBytes(def.name)
      .lenencBytes(def.orgName ?? '')
      .lenencInt(0x0c)
      .int2(def.characterSet ?? 45)
      .int4(def.columnLength ?? 0)
      .int1(def.type)
      .int2(def.flags ?? 0)
      .int1(def.decimals ?? 0)
      .int2(0);
    if (fieldList && def.defaultValue !== undefined) w.lenencBytes(def.defaultValue);
    return w.finish();
  },
  textRow: (values: readonly (string | Uint8Array | null)[]): Buffer => encodeTextRow(values),
  binaryRow: (columns: readonly { type: number; flags?: number }[], values: readonly BinaryValue[]): Buffer =>
    encodeBinaryRow(columns.map((c) => ({ type: c.type, flags: c.flags ?? 0 })), values),
  stmtPrepareOk(init: { statementId: number; columnCount: number; paramCount: number; warnings?: number }): Buffer {
    return new PayloadWriter(12).int1(0).int4(init.statementId).int2(init.columnCount).int2(init.paramCount).int1(0).int2(init.warnings ?? 0).finish();
  },
  statistics: (text: string): Buffer => Buffer.from(text, 'utf8'),
  /**
   * A whole text result set: column count, definitions, EOF (without CLIENT_DEPRECATE_EOF), rows,
   * and the terminator. `statusFlags` go on the terminator (add SERVER_MORE_RESULTS_EXISTS when
   * another result follows).
   */
  textResultSet(
    set: { columns: readonly ColumnDefinitionInit[]; rows: readonly (readonly (string | Uint8Array | null)[])[]; statusFlags?: number; warnings?: number },
    capabilities: number,
  ): Buffer[] {
    return resultSet(set.columns, set.rows.map((r) => encodeTextRow(r)), set, capabilities);
  },
  /** A whole binary result set (the answer to COM_STMT_EXECUTE). */
  binaryResultSet(
    set: { columns: readonly ColumnDefinitionInit[]; rows: readonly (readonly BinaryValue[])[]; statusFlags?: number; warnings?: number },
    capabilities: number,
  ): Buffer[] {
    const types = set.columns.map((c) => ({ type: c.type, flags: c.flags ?? 0 }));
    return resultSet(set.columns, set.rows.map((r) => encodeBinaryRow(types, r)), set, capabilities);
  },
  /** The whole answer to COM_STMT_PREPARE. */
  prepareResponse(init: { statementId: number; params: readonly ColumnDefinitionInit[]; columns: readonly ColumnDefinitionInit[]; warnings?: number }, capabilities: number): Buffer[] {
    const out = [server.stmtPrepareOk({ statementId: init.statementId, columnCount: init.columns.length, paramCount: init.params.length, warnings: init.warnings ?? 0 })];
    for (const defs of [init.params, init.columns]) {
      if (defs.length === 0) continue;
      for (const d of defs) out.push(server.columnDefinition(d));
      if (!(capabilities & Capability.DEPRECATE_EOF)) out.push(server.eofPacket({}, capabilities));
    }
    return out;
  },
};

function resultSet(
  columns: readonly ColumnDefinitionInit[],
  rows: Buffer[],
  end: { statusFlags?: number; warnings?: number },
  capabilities: number,
): Buffer[] {
  if (columns.length === 0) throw new RangeError('a result set needs at least one column');
  const out = [server.columnCount(columns.length), ...columns.map((c) => server.columnDefinition(c))];
  if (!(capabilities & Capability.DEPRECATE_EOF)) out.push(server.eofPacket({ statusFlags: end.statusFlags ?? ServerStatus.AUTOCOMMIT }, capabilities));
  out.push(...rows, server.eof({ statusFlags: end.statusFlags ?? ServerStatus.AUTOCOMMIT, warnings: end.warnings ?? 0 }, capabilities));
  return out;
}
