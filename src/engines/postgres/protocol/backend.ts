/**
 * Backend (server → client) messages: the parser the gateway runs toward the upstream server, and the
 * serializers it uses to answer the agent itself.
 * See https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { Framer, ProtocolError, Reader, Writer, emptyMessage, typeName } from './wire.js';

interface Base<N extends string, T extends string> {
  /** Discriminant. */
  readonly name: N;
  /** The type byte as a character. */
  readonly type: T;
  /** The whole message as received, header included: a view of the input when it arrived in one chunk. */
  readonly raw: Buffer;
}

export type AuthenticationOk = Base<'AuthenticationOk', 'R'>;
export type AuthenticationKerberosV5 = Base<'AuthenticationKerberosV5', 'R'>;
export type AuthenticationCleartextPassword = Base<'AuthenticationCleartextPassword', 'R'>;
export interface AuthenticationMD5Password extends Base<'AuthenticationMD5Password', 'R'> {
  readonly salt: Buffer;
}
export type AuthenticationGSS = Base<'AuthenticationGSS', 'R'>;
export interface AuthenticationGSSContinue extends Base<'AuthenticationGSSContinue', 'R'> {
  readonly data: Buffer;
}
export type AuthenticationSSPI = Base<'AuthenticationSSPI', 'R'>;
export interface AuthenticationSASL extends Base<'AuthenticationSASL', 'R'> {
  readonly mechanisms: string[];
}
export interface AuthenticationSASLContinue extends Base<'AuthenticationSASLContinue', 'R'> {
  readonly data: Buffer;
}
export interface AuthenticationSASLFinal extends Base<'AuthenticationSASLFinal', 'R'> {
  readonly data: Buffer;
}
export type AuthenticationMessage =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationGSSContinue
  | AuthenticationSSPI
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal;

export interface ParameterStatus extends Base<'ParameterStatus', 'S'> {
  readonly parameter: string;
  readonly value: string;
}
export interface BackendKeyData extends Base<'BackendKeyData', 'K'> {
  readonly processId: number;
  /** 4 bytes in protocol 3.0, up to 256 in 3.2. */
  readonly secretKey: Buffer;
}
export type TransactionStatus = 'I' | 'T' | 'E';
export interface ReadyForQuery extends Base<'ReadyForQuery', 'Z'> {
  /** `I` idle, `T` in a transaction block, `E` in a failed transaction block. */
  readonly status: TransactionStatus;
}
export interface FieldDescription {
  readonly name: string;
  /** OID of the source table, or 0. */
  readonly tableOid: number;
  /** Attribute number of the source column, or 0. */
  readonly columnAttr: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeMod: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}
export interface RowDescription extends Base<'RowDescription', 'T'> {
  readonly fields: FieldDescription[];
}
/** Values are not decoded until asked: use `decodeDataRow()`. */
export interface DataRow extends Base<'DataRow', 'D'> {
  readonly columnCount: number;
}
export interface CommandComplete extends Base<'CommandComplete', 'C'> {
  readonly tag: string;
}
export type EmptyQueryResponse = Base<'EmptyQueryResponse', 'I'>;

/**
 * Error and notice fields by their one-letter code: `S` severity (localized), `V` severity, `C`
 * SQLSTATE, `M` message, `D` detail, `H` hint, `P` position, `p` internal position, `q` internal query,
 * `W` where, `s` schema, `t` table, `c` column, `d` data type, `n` constraint, `F` file, `L` line, `R` routine.
 */
export type NoticeFields = Readonly<Record<string, string>>;
export interface ErrorResponse extends Base<'ErrorResponse', 'E'> {
  readonly fields: NoticeFields;
  /** `V` (non-localized) when present, else `S`. */
  readonly severity: string;
  readonly code: string;
  readonly message: string;
}
export interface NoticeResponse extends Base<'NoticeResponse', 'N'> {
  readonly fields: NoticeFields;
  readonly severity: string;
  readonly code: string;
  readonly message: string;
}
export type ParseComplete = Base<'ParseComplete', '1'>;
export type BindComplete = Base<'BindComplete', '2'>;
export type CloseComplete = Base<'CloseComplete', '3'>;
export type NoData = Base<'NoData', 'n'>;
export type PortalSuspended = Base<'PortalSuspended', 's'>;
export interface ParameterDescription extends Base<'ParameterDescription', 't'> {
  readonly typeOids: number[];
}
interface CopyResponse<N extends string, T extends string> extends Base<N, T> {
  /** 0 text, 1 binary (overall). */
  readonly format: number;
  readonly columnFormats: number[];
}
export type CopyInResponse = CopyResponse<'CopyInResponse', 'G'>;
export type CopyOutResponse = CopyResponse<'CopyOutResponse', 'H'>;
export type CopyBothResponse = CopyResponse<'CopyBothResponse', 'W'>;
export interface CopyData extends Base<'CopyData', 'd'> {
  readonly data: Buffer;
}
export type CopyDone = Base<'CopyDone', 'c'>;
export interface NotificationResponse extends Base<'NotificationResponse', 'A'> {
  readonly processId: number;
  readonly channel: string;
  readonly payload: string;
}
export interface FunctionCallResponse extends Base<'FunctionCallResponse', 'V'> {
  readonly value: Buffer | null;
}
export interface NegotiateProtocolVersion extends Base<'NegotiateProtocolVersion', 'v'> {
  readonly minorVersion: number;
  /** Protocol options (`_pq_.*`) the server did not recognize. */
  readonly unsupportedOptions: string[];
}
/** The single byte a server answers an SSLRequest or GSSENCRequest with. */
export interface EncryptionResponse extends Base<'EncryptionResponse', 'S' | 'N' | 'G'> {
  readonly accepted: boolean;
}

export type BackendMessage =
  | AuthenticationMessage
  | ParameterStatus
  | BackendKeyData
  | ReadyForQuery
  | RowDescription
  | DataRow
  | CommandComplete
  | EmptyQueryResponse
  | ErrorResponse
  | NoticeResponse
  | ParseComplete
  | BindComplete
  | CloseComplete
  | NoData
  | PortalSuspended
  | ParameterDescription
  | CopyInResponse
  | CopyOutResponse
  | CopyBothResponse
  | CopyData
  | CopyDone
  | NotificationResponse
  | FunctionCallResponse
  | NegotiateProtocolVersion
  | EncryptionResponse;

export interface BackendParserOptions {
  /** Largest message accepted, header included. Default 1 GiB (PostgreSQL's own limit). */
  maxMessageBytes?: number;
}

const MiB = 1024 * 1024;

/**
 * Parses what a PostgreSQL server sends. Every message carries its `raw` bytes (a view of the input
 * when it arrived in one chunk) so a proxy can pass it on unchanged; only small control messages are
 * decoded eagerly, DataRow values only on `decodeDataRow()`. Before the startup packet, call
 * `expectEncryptionResponse()` if an SSLRequest/GSSENCRequest was sent: the answer is one untyped byte.
 */
export class BackendParser extends Framer<BackendMessage> {
  private readonly maxMessageBytes: number;
  private single = false;

  constructor(options: BackendParserOptions = {}) {
    super();
    const max = options.maxMessageBytes ?? 1024 * MiB;
    if (!Number.isInteger(max) || max < 5 || max > 1024 * MiB + 1) throw new RangeError('maxMessageBytes must be an integer in [5, 1 GiB]');
    this.maxMessageBytes = max;
  }

  /**
   * The next byte is the server's one-byte answer to SSLRequest/GSSENCRequest. Anything the server sends
   * after it, before the handshake, is refused (CVE-2021-23222).
   */
  expectEncryptionResponse(): void {
    if (this.error) throw this.error;
    if (this.buffered > 0) throw new ProtocolError('unexpected data before encryption response');
    this.single = true;
  }

  protected headerSize(): number {
    return this.single ? 1 : 5;
  }

  protected frameSize(buf: Buffer, pos: number): number {
    if (this.single) return 1;
    const len = buf.readInt32BE(pos + 1);
    if (len < 4) throw new ProtocolError(`invalid message length ${len} for type ${typeName(buf[pos]!)}`);
    if (len > this.maxMessageBytes - 1) throw new ProtocolError(`message of type ${typeName(buf[pos]!)} too large (${len} bytes)`);
    return len + 1;
  }

  protected decode(buf: Buffer, pos: number, size: number): BackendMessage {
    const raw = pos === 0 && size === buf.length ? buf : buf.subarray(pos, pos + size);
    if (this.single) {
      const b = raw[0]!;
      // 'E': a server too old for SSL answers with an ErrorResponse; the caller sees it as refusal.
      if (b !== 0x53 && b !== 0x4e && b !== 0x47) throw new ProtocolError(`invalid encryption response ${typeName(b)}`);
      const type = String.fromCharCode(b) as 'S' | 'N' | 'G';
      return { name: 'EncryptionResponse', type, raw, accepted: type !== 'N' };
    }
    return decodeBackend(raw);
  }

  protected override afterMessage(m: BackendMessage, remaining: number): void {
    if (m.name !== 'EncryptionResponse') return;
    this.single = false;
    if (remaining > 0) throw new ProtocolError('received unencrypted data after SSL response');
  }
}

function fields(r: Reader): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (;;) {
    const code = r.byte();
    if (code === 0) break;
    out[String.fromCharCode(code)] = r.cstring();
  }
  r.done();
  return out;
}

function copyResponse(raw: Buffer, what: string): { format: number; columnFormats: number[] } {
  const r = new Reader(raw, 5, raw.length, what);
  const format = r.byte();
  const n = r.count(2);
  const columnFormats = new Array<number>(n);
  for (let i = 0; i < n; i++) columnFormats[i] = r.int16();
  r.done();
  return { format, columnFormats };
}

function noBody<M>(raw: Buffer, what: string, m: M): M {
  if (raw.length !== 5) throw new ProtocolError(`invalid ${what} message: trailing bytes after message`);
  return m;
}

function decodeAuth(raw: Buffer): AuthenticationMessage {
  const r = new Reader(raw, 5, raw.length, 'Authentication');
  const kind = r.int32();
  switch (kind) {
    case 0:
      r.done();
      return { name: 'AuthenticationOk', type: 'R', raw };
    case 2:
      r.done();
      return { name: 'AuthenticationKerberosV5', type: 'R', raw };
    case 3:
      r.done();
      return { name: 'AuthenticationCleartextPassword', type: 'R', raw };
    case 5: {
      const salt = r.bytes(4);
      r.done();
      return { name: 'AuthenticationMD5Password', type: 'R', raw, salt };
    }
    case 7:
      r.done();
      return { name: 'AuthenticationGSS', type: 'R', raw };
    case 8:
      return { name: 'AuthenticationGSSContinue', type: 'R', raw, data: r.rest() };
    case 9:
      r.done();
      return { name: 'AuthenticationSSPI', type: 'R', raw };
    case 10: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      r.done();
      return { name: 'AuthenticationSASL', type: 'R', raw, mechanisms };
    }
    case 11:
      return { name: 'AuthenticationSASLContinue', type: 'R', raw, data: r.rest() };
    case 12:
      return { name: 'AuthenticationSASLFinal', type: 'R', raw, data: r.rest() };
    default:
      return r.fail(`unsupported authentication request ${kind}`);
  }
}

function decodeBackend(raw: Buffer): BackendMessage {
  const end = raw.length;
  switch (raw[0]) {
    case 0x52 /* R */:
      return decodeAuth(raw);
    case 0x53 /* S */: {
      const r = new Reader(raw, 5, end, 'ParameterStatus');
      const parameter = r.cstring();
      const value = r.cstring();
      r.done();
      return { name: 'ParameterStatus', type: 'S', raw, parameter, value };
    }
    case 0x4b /* K */: {
      if (end < 5 + 8 || end > 5 + 4 + 256) throw new ProtocolError('invalid BackendKeyData message: bad length');
      return { name: 'BackendKeyData', type: 'K', raw, processId: raw.readInt32BE(5), secretKey: raw.subarray(9) };
    }
    case 0x5a /* Z */: {
      const r = new Reader(raw, 5, end, 'ReadyForQuery');
      const s = r.byte();
      r.done();
      if (s !== 0x49 && s !== 0x54 && s !== 0x45) r.fail(`invalid transaction status ${typeName(s)}`);
      return { name: 'ReadyForQuery', type: 'Z', raw, status: String.fromCharCode(s) as TransactionStatus };
    }
    case 0x54 /* T */: {
      const r = new Reader(raw, 5, end, 'RowDescription');
      const n = r.count(19);
      const fieldList = new Array<FieldDescription>(n);
      for (let i = 0; i < n; i++) {
        fieldList[i] = {
          name: r.cstring(),
          tableOid: r.uint32(),
          columnAttr: r.int16(),
          typeOid: r.uint32(),
          typeSize: r.int16(),
          typeMod: r.int32(),
          format: r.int16(),
        };
      }
      r.done();
      return { name: 'RowDescription', type: 'T', raw, fields: fieldList };
    }
    case 0x44 /* D */: {
      if (end < 7) throw new ProtocolError('invalid DataRow message: insufficient data left in message');
      return { name: 'DataRow', type: 'D', raw, columnCount: raw.readUInt16BE(5) };
    }
    case 0x43 /* C */: {
      const r = new Reader(raw, 5, end, 'CommandComplete');
      const tag = r.cstring();
      r.done();
      return { name: 'CommandComplete', type: 'C', raw, tag };
    }
    case 0x49 /* I */:
      return noBody(raw, 'EmptyQueryResponse', { name: 'EmptyQueryResponse', type: 'I', raw });
    case 0x45 /* E */:
    case 0x4e /* N */: {
      const isError = raw[0] === 0x45;
      const f = fields(new Reader(raw, 5, end, isError ? 'ErrorResponse' : 'NoticeResponse'));
      const common = { raw, fields: f, severity: f.V ?? f.S ?? '', code: f.C ?? '', message: f.M ?? '' };
      return isError ? { name: 'ErrorResponse', type: 'E', ...common } : { name: 'NoticeResponse', type: 'N', ...common };
    }
    case 0x31 /* 1 */:
      return noBody(raw, 'ParseComplete', { name: 'ParseComplete', type: '1', raw });
    case 0x32 /* 2 */:
      return noBody(raw, 'BindComplete', { name: 'BindComplete', type: '2', raw });
    case 0x33 /* 3 */:
      return noBody(raw, 'CloseComplete', { name: 'CloseComplete', type: '3', raw });
    case 0x6e /* n */:
      return noBody(raw, 'NoData', { name: 'NoData', type: 'n', raw });
    case 0x73 /* s */:
      return noBody(raw, 'PortalSuspended', { name: 'PortalSuspended', type: 's', raw });
    case 0x63 /* c */:
      return noBody(raw, 'CopyDone', { name: 'CopyDone', type: 'c', raw });
    case 0x74 /* t */: {
      const r = new Reader(raw, 5, end, 'ParameterDescription');
      const n = r.count(4);
      const typeOids = new Array<number>(n);
      for (let i = 0; i < n; i++) typeOids[i] = r.uint32();
      r.done();
      return { name: 'ParameterDescription', type: 't', raw, typeOids };
    }
    case 0x47 /* G */:
      return { name: 'CopyInResponse', type: 'G', raw, ...copyResponse(raw, 'CopyInResponse') };
    case 0x48 /* H */:
      return { name: 'CopyOutResponse', type: 'H', raw, ...copyResponse(raw, 'CopyOutResponse') };
    case 0x57 /* W */:
      return { name: 'CopyBothResponse', type: 'W', raw, ...copyResponse(raw, 'CopyBothResponse') };
    case 0x64 /* d */:
      return { name: 'CopyData', type: 'd', raw, data: raw.subarray(5) };
    case 0x41 /* A */: {
      const r = new Reader(raw, 5, end, 'NotificationResponse');
      const processId = r.int32();
      const channel = r.cstring();
      const payload = r.cstring();
      r.done();
      return { name: 'NotificationResponse', type: 'A', raw, processId, channel, payload };
    }
    case 0x56 /* V */: {
      const r = new Reader(raw, 5, end, 'FunctionCallResponse');
      const value = r.value();
      r.done();
      return { name: 'FunctionCallResponse', type: 'V', raw, value };
    }
    case 0x76 /* v */: {
      const r = new Reader(raw, 5, end, 'NegotiateProtocolVersion');
      const minorVersion = r.int32();
      const n = r.int32();
      if (n < 0 || n > r.remaining) r.fail('bad option count');
      const unsupportedOptions: string[] = [];
      for (let i = 0; i < n; i++) unsupportedOptions.push(r.cstring());
      r.done();
      return { name: 'NegotiateProtocolVersion', type: 'v', raw, minorVersion, unsupportedOptions };
    }
    default:
      throw new ProtocolError(`invalid backend message type ${typeName(raw[0]!)}`);
  }
}

/**
 * The column values of a DataRow as views of its bytes (`null` is SQL NULL). Validates the message:
 * throws `ProtocolError` if the values do not exactly fill it.
 */
export function decodeDataRow(msg: Pick<DataRow, 'raw'>): (Buffer | null)[] {
  const raw = msg.raw;
  const r = new Reader(raw, 5, raw.length, 'DataRow');
  const n = r.count(4);
  const out = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) out[i] = r.value();
  r.done();
  return out;
}

/** The row count at the end of a CommandComplete tag (`INSERT 0 5`, `UPDATE 3`, `SELECT 10`, `COPY 2`), if any. */
export function commandRowCount(tag: string): number | undefined {
  const sp = tag.lastIndexOf(' ');
  if (sp < 0) return undefined;
  const verb = tag.slice(0, tag.indexOf(' '));
  switch (verb) {
    case 'INSERT':
    case 'UPDATE':
    case 'DELETE':
    case 'SELECT':
    case 'MERGE':
    case 'MOVE':
    case 'FETCH':
    case 'COPY': {
      const n = Number(tag.slice(sp + 1));
      return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Serializers (gateway answering the agent as a server; also used by tests for round trips)
// ---------------------------------------------------------------------------------------------

/** What an ErrorResponse or NoticeResponse carries, by name. Empty or missing fields are left out. */
export interface NoticeInit {
  /** `ERROR`, `FATAL`, `PANIC` (errors); `WARNING`, `NOTICE`, `DEBUG`, `INFO`, `LOG` (notices). Sent as both `S` and `V`. */
  severity: string;
  /** SQLSTATE, e.g. `42501` (insufficient_privilege), `08P01` (protocol_violation). */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the query. */
  position?: number;
  internalPosition?: number;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: number;
  routine?: string;
}

const NOTICE_FIELDS: readonly [keyof NoticeInit, string][] = [
  ['detail', 'D'],
  ['hint', 'H'],
  ['position', 'P'],
  ['internalPosition', 'p'],
  ['internalQuery', 'q'],
  ['where', 'W'],
  ['schema', 's'],
  ['table', 't'],
  ['column', 'c'],
  ['dataType', 'd'],
  ['constraint', 'n'],
  ['file', 'F'],
  ['line', 'L'],
  ['routine', 'R'],
];

/** Error texts may quote user input: a NUL would cut the field short, so it is dropped. */
function text(v: string | number): string {
  const s = String(v);
  return s.includes('\0') ? s.replaceAll('\0', '') : s;
}

function notice(type: number, init: NoticeInit): Buffer {
  const w = new Writer(type, 64 + init.message.length);
  const severity = text(init.severity);
  w.byte(0x53).cstring(severity).byte(0x56).cstring(severity).byte(0x43).cstring(text(init.code)).byte(0x4d).cstring(text(init.message));
  for (const [key, code] of NOTICE_FIELDS) {
    const v = init[key];
    if (v === undefined || v === '') continue;
    w.byte(code.charCodeAt(0)).cstring(text(v));
  }
  return w.byte(0).finish();
}

function authMessage(kind: number, extra?: Uint8Array): Buffer {
  const w = new Writer(0x52, 8 + (extra?.length ?? 0)).int32(kind);
  if (extra) w.bytes(extra);
  return w.finish();
}

function constant(b: Buffer): () => Buffer {
  return () => b;
}

const READY: Record<TransactionStatus, Buffer> = {
  I: new Writer(0x5a, 1).byte(0x49).finish(),
  T: new Writer(0x5a, 1).byte(0x54).finish(),
  E: new Writer(0x5a, 1).byte(0x45).finish(),
};

/** A field of a RowDescription to serialize; omitted numbers default to 0 (typeSize -1, typeMod -1). */
export interface FieldInit {
  name: string;
  tableOid?: number;
  columnAttr?: number;
  typeOid: number;
  typeSize?: number;
  typeMod?: number;
  format?: number;
}

/**
 * Backend message serializers. Each returns a new buffer except the constant messages (no body, or a
 * fixed one such as `authenticationOk` and `readyForQuery`), which return shared buffers the caller
 * must not modify. String fields must not contain NUL (RangeError), except in `errorResponse` and
 * `noticeResponse`, which drop it.
 */
export const backend = {
  authenticationOk: constant(authMessage(0)),
  authenticationCleartextPassword: constant(authMessage(3)),
  authenticationMD5Password(salt: Uint8Array): Buffer {
    if (salt.length !== 4) throw new RangeError('MD5 salt must be 4 bytes');
    return authMessage(5, salt);
  },
  authenticationSASL(mechanisms: readonly string[]): Buffer {
    const w = new Writer(0x52, 32).int32(10);
    for (const m of mechanisms) w.cstring(m);
    return w.byte(0).finish();
  },
  authenticationSASLContinue(data: Uint8Array | string): Buffer {
    return authMessage(11, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  },
  authenticationSASLFinal(data: Uint8Array | string): Buffer {
    return authMessage(12, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  },
  parameterStatus(parameter: string, value: string): Buffer {
    return new Writer(0x53, parameter.length + value.length + 2).cstring(parameter).cstring(value).finish();
  },
  backendKeyData(processId: number, secretKey: Uint8Array | number): Buffer {
    const w = new Writer(0x4b, 12).int32(processId);
    if (typeof secretKey === 'number') return w.int32(secretKey).finish();
    if (secretKey.length < 4 || secretKey.length > 256) throw new RangeError('cancel key must be 4 to 256 bytes');
    return w.bytes(secretKey).finish();
  },
  readyForQuery(status: TransactionStatus): Buffer {
    return READY[status];
  },
  errorResponse(init: NoticeInit): Buffer {
    return notice(0x45, init);
  },
  noticeResponse(init: NoticeInit): Buffer {
    return notice(0x4e, init);
  },
  commandComplete(tag: string): Buffer {
    return new Writer(0x43, tag.length + 1).cstring(tag).finish();
  },
  emptyQueryResponse: constant(emptyMessage('I')),
  rowDescription(fieldList: readonly FieldInit[]): Buffer {
    const w = new Writer(0x54, 2 + fieldList.length * 32).uint16(fieldList.length);
    for (const f of fieldList) {
      w.cstring(f.name)
        .uint32(f.tableOid ?? 0)
        .int16(f.columnAttr ?? 0)
        .uint32(f.typeOid)
        .int16(f.typeSize ?? -1)
        .int32(f.typeMod ?? -1)
        .int16(f.format ?? 0);
    }
    return w.finish();
  },
  /** Strings are written as UTF-8 (text format); `null` is SQL NULL. */
  dataRow(values: readonly (Uint8Array | string | null)[]): Buffer {
    return serializeDataRow(values);
  },
  parseComplete: constant(emptyMessage('1')),
  bindComplete: constant(emptyMessage('2')),
  closeComplete: constant(emptyMessage('3')),
  noData: constant(emptyMessage('n')),
  portalSuspended: constant(emptyMessage('s')),
  parameterDescription(typeOids: readonly number[]): Buffer {
    const w = new Writer(0x74, 2 + typeOids.length * 4).uint16(typeOids.length);
    for (const t of typeOids) w.uint32(t);
    return w.finish();
  },
  copyInResponse: (format: number, columnFormats: readonly number[]): Buffer => copyResponseMessage(0x47, format, columnFormats),
  copyOutResponse: (format: number, columnFormats: readonly number[]): Buffer => copyResponseMessage(0x48, format, columnFormats),
  copyBothResponse: (format: number, columnFormats: readonly number[]): Buffer => copyResponseMessage(0x57, format, columnFormats),
  copyData(data: Uint8Array): Buffer {
    return new Writer(0x64, data.length).bytes(data).finish();
  },
  copyDone: constant(emptyMessage('c')),
  notificationResponse(processId: number, channel: string, payload: string): Buffer {
    return new Writer(0x41, 8 + channel.length + payload.length).int32(processId).cstring(channel).cstring(payload).finish();
  },
  functionCallResponse(value: Uint8Array | string | null): Buffer {
    return new Writer(0x56, 8).value(value).finish();
  },
  negotiateProtocolVersion(minorVersion: number, unsupportedOptions: readonly string[] = []): Buffer {
    const w = new Writer(0x76, 16).int32(minorVersion).int32(unsupportedOptions.length);
    for (const o of unsupportedOptions) w.cstring(o);
    return w.finish();
  },
  /** The one-byte answer to SSLRequest: `S` (go ahead with TLS) or `N` (refused; send a startup packet). */
  sslResponse(accept: boolean): Buffer {
    return accept ? SSL_YES : SSL_NO;
  },
  /** The one-byte answer to GSSENCRequest; Gatehouse always refuses (`N`). */
  gssencResponse(): Buffer {
    return SSL_NO;
  },
};

const SSL_YES = Buffer.from('S');
const SSL_NO = Buffer.from('N');

function copyResponseMessage(type: number, format: number, columnFormats: readonly number[]): Buffer {
  const w = new Writer(type, 3 + columnFormats.length * 2).byte(format).uint16(columnFormats.length);
  for (const f of columnFormats) w.int16(f);
  return w.finish();
}

/**
 * Builds a DataRow from column values (a masked row). Buffers are written as they are, strings as
 * UTF-8, `null` as SQL NULL. Sized exactly in one allocation.
 */
export function serializeDataRow(values: readonly (Uint8Array | string | null)[]): Buffer {
  let size = 7;
  const n = values.length;
  if (n > 0xffff) throw new RangeError('too many columns');
  for (let i = 0; i < n; i++) {
    const v = values[i];
    size += 4 + (v === null || v === undefined ? 0 : typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length);
  }
  const b = Buffer.allocUnsafe(size);
  b[0] = 0x44;
  b.writeInt32BE(size - 1, 1);
  b.writeUInt16BE(n, 5);
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      b.writeInt32BE(-1, pos);
      pos += 4;
    } else if (typeof v === 'string') {
      const len = b.write(v, pos + 4, 'utf8');
      b.writeInt32BE(len, pos);
      pos += 4 + len;
    } else {
      b.writeInt32BE(v.length, pos);
      b.set(v, pos + 4);
      pos += 4 + v.length;
    }
  }
  return b;
}
