/**
 * Frontend (client → server) messages: the parser the gateway runs toward the agent, and the
 * serializers it uses toward the upstream server.
 * See https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { Framer, ProtocolError, Reader, Writer, emptyMessage, typeName } from './wire.js';

/** Protocol version codes of the untyped startup-phase messages. */
export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
/** The newest 3.x minor version this codec understands (PostgreSQL 18: 3.2, variable-length cancel keys). */
export const LATEST_MINOR_VERSION = 2;
/** PostgreSQL's own cap on startup-phase packets (`MAX_STARTUP_PACKET_LENGTH`). */
export const MAX_STARTUP_PACKET_LENGTH = 10000;

interface Base<N extends string, T extends string> {
  /** Discriminant. */
  readonly name: N;
  /** The type byte as a character; `''` for untyped startup-phase messages. */
  readonly type: T;
  /** The whole message as received, header included: a view of the input when it arrived in one chunk. */
  readonly raw: Buffer;
}

export interface StartupMessage extends Base<'StartupMessage', ''> {
  readonly majorVersion: 3;
  readonly minorVersion: number;
  /** Startup parameters (`user`, `database`, `application_name`, `options`, `_pq_.*`, …), null-prototype. */
  readonly params: Readonly<Record<string, string>>;
}
export type SSLRequest = Base<'SSLRequest', ''>;
export type GSSENCRequest = Base<'GSSENCRequest', ''>;
export interface CancelRequest extends Base<'CancelRequest', ''> {
  readonly processId: number;
  /** 4 bytes in protocol 3.0, up to 256 in 3.2. */
  readonly secretKey: Buffer;
}
export interface Query extends Base<'Query', 'Q'> {
  readonly query: string;
}
export interface Parse extends Base<'Parse', 'P'> {
  /** Prepared statement name; `''` is the unnamed statement. */
  readonly statement: string;
  readonly query: string;
  readonly paramTypes: number[];
}
export interface Bind extends Base<'Bind', 'B'> {
  readonly portal: string;
  readonly statement: string;
  /** Empty: all text; one entry: applies to all; else one per parameter. */
  readonly paramFormats: number[];
  /** Parameter values as views of the input; `null` is SQL NULL. */
  readonly params: (Buffer | null)[];
  readonly resultFormats: number[];
}
export interface Describe extends Base<'Describe', 'D'> {
  /** `S`: prepared statement, `P`: portal. */
  readonly target: 'S' | 'P';
  readonly objectName: string;
}
export interface Execute extends Base<'Execute', 'E'> {
  readonly portal: string;
  /** 0: no limit. */
  readonly maxRows: number;
}
export type Sync = Base<'Sync', 'S'>;
export type Flush = Base<'Flush', 'H'>;
export interface Close extends Base<'Close', 'C'> {
  readonly target: 'S' | 'P';
  readonly objectName: string;
}
export type Terminate = Base<'Terminate', 'X'>;
/**
 * `p`: a password, SASLInitialResponse, SASLResponse or GSSResponse — which one depends on what the
 * server asked for, so the body is kept whole and `password` is set when it is a NUL-terminated string.
 */
export interface PasswordMessage extends Base<'PasswordMessage', 'p'> {
  readonly body: Buffer;
  readonly password: string | null;
}
export interface CopyData extends Base<'CopyData', 'd'> {
  readonly data: Buffer;
}
export type CopyDone = Base<'CopyDone', 'c'>;
export interface CopyFail extends Base<'CopyFail', 'f'> {
  readonly message: string;
}
export interface FunctionCall extends Base<'FunctionCall', 'F'> {
  readonly functionOid: number;
  readonly argFormats: number[];
  readonly args: (Buffer | null)[];
  readonly resultFormat: number;
}

export type StartupPhaseMessage = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;
export type FrontendMessage =
  | StartupPhaseMessage
  | Query
  | Parse
  | Bind
  | Describe
  | Execute
  | Sync
  | Flush
  | Close
  | Terminate
  | PasswordMessage
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall;

export interface FrontendParserOptions {
  /**
   * Largest typed message accepted (header included) for the message types that carry data
   * (Query, Parse, Bind, CopyData, CopyFail, FunctionCall). PostgreSQL allows 1 GiB; default 64 MiB.
   * Control messages are capped at 10000 bytes and PasswordMessage at 65536, as PostgreSQL does.
   */
  maxMessageBytes?: number;
  /** Start in the typed phase (no startup packet expected). Default false. */
  typed?: boolean;
}

const SMALL_LIMIT = 10000;
const AUTH_LIMIT = 65536;
const MiB = 1024 * 1024;

const enum C {
  Query = 0x51,
  Parse = 0x50,
  Bind = 0x42,
  Describe = 0x44,
  Execute = 0x45,
  Sync = 0x53,
  Flush = 0x48,
  Close = 0x43,
  Terminate = 0x58,
  Password = 0x70,
  CopyData = 0x64,
  CopyDone = 0x63,
  CopyFail = 0x66,
  FunctionCall = 0x46,
}

/**
 * Parses what a client sends to a PostgreSQL server. Socket-free and bounded: feed it chunks with
 * `push()` and it returns complete messages, each with its `raw` bytes so they can be forwarded
 * unchanged. It starts in the startup phase (untyped packets) and switches to typed messages after a
 * StartupMessage. After an SSLRequest answered with `S`, the TLS stream is a new stream: call
 * `expectStartup()` (or use a new parser). Message views share memory with the pushed chunks; do not
 * reuse a chunk's memory while its messages are in use.
 */
export class FrontendParser extends Framer<FrontendMessage> {
  private readonly maxMessageBytes: number;
  private typed: boolean;

  constructor(options: FrontendParserOptions = {}) {
    super();
    const max = options.maxMessageBytes ?? 64 * MiB;
    if (!Number.isInteger(max) || max < 5 || max > 1024 * MiB) throw new RangeError('maxMessageBytes must be an integer in [5, 1 GiB]');
    this.maxMessageBytes = max;
    this.typed = options.typed ?? false;
  }

  /** True while the next message is an untyped startup-phase packet. */
  get inStartupPhase(): boolean {
    return !this.typed;
  }

  /**
   * Returns to the startup phase for a fresh stream (after the TLS or GSS handshake that followed an
   * SSLRequest/GSSENCRequest). Throws if bytes sent before the handshake are still buffered: they
   * were sent in the clear and must not be processed as if encrypted (CVE-2021-23214).
   */
  expectStartup(): void {
    if (this.error) throw this.error;
    if (this.buffered > 0) throw new ProtocolError('received unencrypted data after SSL request');
    this.resetFraming();
    this.typed = false;
  }

  protected headerSize(): number {
    return this.typed ? 5 : 4;
  }

  protected frameSize(buf: Buffer, pos: number): number {
    if (!this.typed) {
      const len = buf.readInt32BE(pos);
      if (len < 8 || len > MAX_STARTUP_PACKET_LENGTH) throw new ProtocolError('invalid length of startup packet');
      return len;
    }
    const code = buf[pos]!;
    const len = buf.readInt32BE(pos + 1);
    let limit: number;
    switch (code) {
      case C.Query:
      case C.Parse:
      case C.Bind:
      case C.CopyData:
      case C.CopyFail:
      case C.FunctionCall:
        limit = this.maxMessageBytes - 1;
        break;
      case C.Describe:
      case C.Execute:
      case C.Sync:
      case C.Flush:
      case C.Close:
      case C.Terminate:
      case C.CopyDone:
        limit = SMALL_LIMIT;
        break;
      case C.Password:
        limit = AUTH_LIMIT;
        break;
      default:
        throw new ProtocolError(`invalid frontend message type ${typeName(code)}`);
    }
    if (len < 4) throw new ProtocolError(`invalid message length ${len} for type ${typeName(code)}`);
    if (len > limit) throw new ProtocolError(`message of type ${typeName(code)} too large (${len} bytes, limit ${limit})`);
    return len + 1;
  }

  protected decode(buf: Buffer, pos: number, size: number): FrontendMessage {
    const raw = pos === 0 && size === buf.length ? buf : buf.subarray(pos, pos + size);
    return this.typed ? decodeTyped(raw) : this.decodeStartup(raw);
  }

  private decodeStartup(raw: Buffer): StartupPhaseMessage {
    const code = raw.readUInt32BE(4);
    const major = code >>> 16;
    const len = raw.length;
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      if (len !== 8) throw new ProtocolError('invalid length of startup packet');
      return { name: code === SSL_REQUEST_CODE ? 'SSLRequest' : 'GSSENCRequest', type: '', raw };
    }
    if (code === CANCEL_REQUEST_CODE) {
      if (len < 16 || len > 12 + 256) throw new ProtocolError('invalid length of cancel request packet');
      return { name: 'CancelRequest', type: '', raw, processId: raw.readInt32BE(8), secretKey: raw.subarray(12) };
    }
    if (major !== 3) {
      throw new ProtocolError(`unsupported frontend protocol ${major}.${code & 0xffff}: server supports 3.0 to 3.${LATEST_MINOR_VERSION}`);
    }
    const r = new Reader(raw, 8, len, 'startup packet');
    const params: Record<string, string> = Object.create(null) as Record<string, string>;
    for (;;) {
      const key = r.cstring();
      if (key === '') break;
      if (r.remaining === 0) r.fail(`missing value for parameter "${key}"`);
      params[key] = r.cstring();
    }
    r.done();
    this.typed = true;
    return { name: 'StartupMessage', type: '', raw, majorVersion: 3, minorVersion: code & 0xffff, params };
  }
}

function formats(r: Reader): number[] {
  const n = r.count(2);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = r.int16();
  return out;
}

function values(r: Reader): (Buffer | null)[] {
  const n = r.count(4);
  const out = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) out[i] = r.value();
  return out;
}

function target(r: Reader): 'S' | 'P' {
  const t = r.byte();
  if (t !== 0x53 && t !== 0x50) r.fail(`invalid target ${typeName(t)}`);
  return t === 0x53 ? 'S' : 'P';
}

function decodeTyped(raw: Buffer): FrontendMessage {
  const end = raw.length;
  switch (raw[0]) {
    case C.Query: {
      const r = new Reader(raw, 5, end, 'Query');
      const query = r.cstring();
      r.done();
      return { name: 'Query', type: 'Q', raw, query };
    }
    case C.Parse: {
      const r = new Reader(raw, 5, end, 'Parse');
      const statement = r.cstring();
      const query = r.cstring();
      const n = r.count(4);
      const paramTypes = new Array<number>(n);
      for (let i = 0; i < n; i++) paramTypes[i] = r.uint32();
      r.done();
      return { name: 'Parse', type: 'P', raw, statement, query, paramTypes };
    }
    case C.Bind: {
      const r = new Reader(raw, 5, end, 'Bind');
      const portal = r.cstring();
      const statement = r.cstring();
      const paramFormats = formats(r);
      const params = values(r);
      const resultFormats = formats(r);
      r.done();
      if (paramFormats.length > 1 && paramFormats.length !== params.length) {
        r.fail(`${paramFormats.length} parameter formats for ${params.length} parameters`);
      }
      return { name: 'Bind', type: 'B', raw, portal, statement, paramFormats, params, resultFormats };
    }
    case C.Describe:
    case C.Close: {
      const isDescribe = raw[0] === C.Describe;
      const r = new Reader(raw, 5, end, isDescribe ? 'Describe' : 'Close');
      const t = target(r);
      const objectName = r.cstring();
      r.done();
      return isDescribe
        ? { name: 'Describe', type: 'D', raw, target: t, objectName }
        : { name: 'Close', type: 'C', raw, target: t, objectName };
    }
    case C.Execute: {
      const r = new Reader(raw, 5, end, 'Execute');
      const portal = r.cstring();
      const maxRows = r.int32();
      r.done();
      return { name: 'Execute', type: 'E', raw, portal, maxRows };
    }
    case C.Sync:
      empty(raw, 'Sync');
      return { name: 'Sync', type: 'S', raw };
    case C.Flush:
      empty(raw, 'Flush');
      return { name: 'Flush', type: 'H', raw };
    case C.Terminate:
      empty(raw, 'Terminate');
      return { name: 'Terminate', type: 'X', raw };
    case C.CopyDone:
      empty(raw, 'CopyDone');
      return { name: 'CopyDone', type: 'c', raw };
    case C.Password: {
      const body = raw.subarray(5);
      const nul = body.indexOf(0);
      const password = nul === body.length - 1 ? body.toString('utf8', 0, nul) : null;
      return { name: 'PasswordMessage', type: 'p', raw, body, password };
    }
    case C.CopyData:
      return { name: 'CopyData', type: 'd', raw, data: raw.subarray(5) };
    case C.CopyFail: {
      const r = new Reader(raw, 5, end, 'CopyFail');
      const message = r.cstring();
      r.done();
      return { name: 'CopyFail', type: 'f', raw, message };
    }
    case C.FunctionCall: {
      const r = new Reader(raw, 5, end, 'FunctionCall');
      const functionOid = r.uint32();
      const argFormats = formats(r);
      const args = values(r);
      const resultFormat = r.int16();
      r.done();
      return { name: 'FunctionCall', type: 'F', raw, functionOid, argFormats, args, resultFormat };
    }
    default:
      throw new ProtocolError(`invalid frontend message type ${typeName(raw[0]!)}`);
  }
}

function empty(raw: Buffer, what: string): void {
  if (raw.length !== 5) throw new ProtocolError(`invalid ${what} message: trailing bytes after message`);
}

// ---------------------------------------------------------------------------------------------
// Serializers (gateway as client toward the upstream server; also used by tests for round trips)
// ---------------------------------------------------------------------------------------------

const SYNC = emptyMessage('S');
const FLUSH = emptyMessage('H');
const TERMINATE = emptyMessage('X');
const COPY_DONE = emptyMessage('c');

function untyped(code: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(code, 4);
  return b;
}

function toBytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/**
 * Frontend message serializers. Each returns a new buffer except the constant no-body messages
 * (`sync`, `flush`, `terminate`, `copyDone`, `sslRequest`, `gssencRequest`), which return shared
 * buffers the caller must not modify. String fields must not contain NUL (RangeError).
 */
export const frontend = {
  startupMessage(params: Readonly<Record<string, string>>, minorVersion = 0): Buffer {
    const w = new Writer(0, 128).int32(PROTOCOL_3_0 | minorVersion);
    for (const [k, v] of Object.entries(params)) w.cstring(k).cstring(v);
    return w.byte(0).finish();
  },
  sslRequest: ((b) => () => b)(untyped(SSL_REQUEST_CODE)),
  gssencRequest: ((b) => () => b)(untyped(GSSENC_REQUEST_CODE)),
  /** `secretKey` as received in BackendKeyData (bytes), or a 4-byte key as a number. */
  cancelRequest(processId: number, secretKey: Uint8Array | number): Buffer {
    const w = new Writer(0, 16).int32(CANCEL_REQUEST_CODE).int32(processId);
    if (typeof secretKey === 'number') return w.int32(secretKey).finish();
    if (secretKey.length < 4 || secretKey.length > 256) throw new RangeError('cancel key must be 4 to 256 bytes');
    return w.bytes(secretKey).finish();
  },
  query(text: string): Buffer {
    return new Writer(C.Query, text.length + 1).cstring(text).finish();
  },
  parse(statement: string, query: string, paramTypes: readonly number[] = []): Buffer {
    const w = new Writer(C.Parse, statement.length + query.length + 4 + paramTypes.length * 4).cstring(statement).cstring(query).uint16(paramTypes.length);
    for (const t of paramTypes) w.uint32(t);
    return w.finish();
  },
  bind(
    portal: string,
    statement: string,
    params: readonly (Uint8Array | string | null)[] = [],
    paramFormats: readonly number[] = [],
    resultFormats: readonly number[] = [],
  ): Buffer {
    const w = new Writer(C.Bind, 64).cstring(portal).cstring(statement).uint16(paramFormats.length);
    for (const f of paramFormats) w.int16(f);
    w.uint16(params.length);
    for (const p of params) w.value(p);
    w.uint16(resultFormats.length);
    for (const f of resultFormats) w.int16(f);
    return w.finish();
  },
  describe(target: 'S' | 'P', objectName = ''): Buffer {
    return new Writer(C.Describe).byte(target.charCodeAt(0)).cstring(objectName).finish();
  },
  execute(portal = '', maxRows = 0): Buffer {
    return new Writer(C.Execute).cstring(portal).int32(maxRows).finish();
  },
  close(target: 'S' | 'P', objectName = ''): Buffer {
    return new Writer(C.Close).byte(target.charCodeAt(0)).cstring(objectName).finish();
  },
  sync: (): Buffer => SYNC,
  flush: (): Buffer => FLUSH,
  terminate: (): Buffer => TERMINATE,
  /** Cleartext password, or an MD5 response (`md5…`) from `md5PasswordResponse`. */
  password(password: string): Buffer {
    return new Writer(C.Password, password.length + 1).cstring(password).finish();
  },
  saslInitialResponse(mechanism: string, data: Uint8Array | string | null): Buffer {
    const w = new Writer(C.Password, 64).cstring(mechanism);
    return (data === null ? w.int32(-1) : w.value(toBytes(data))).finish();
  },
  saslResponse(data: Uint8Array | string): Buffer {
    return new Writer(C.Password, 128).bytes(toBytes(data)).finish();
  },
  copyData(data: Uint8Array): Buffer {
    return new Writer(C.CopyData, data.length).bytes(data).finish();
  },
  copyDone: (): Buffer => COPY_DONE,
  copyFail(message: string): Buffer {
    return new Writer(C.CopyFail).cstring(message).finish();
  },
  functionCall(functionOid: number, args: readonly (Uint8Array | string | null)[], argFormats: readonly number[] = [], resultFormat = 0): Buffer {
    const w = new Writer(C.FunctionCall).uint32(functionOid).uint16(argFormats.length);
    for (const f of argFormats) w.int16(f);
    w.uint16(args.length);
    for (const a of args) w.value(a);
    return w.int16(resultFormat).finish();
  },
};
