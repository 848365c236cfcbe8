/**
 * A socket-free SPDY/3.1 codec: the framing `kubectl exec`, `attach` and `port-forward` speak when
 * they do not use a WebSocket (the `SPDY/3.1` upgrade).
 *
 * - SPDY Protocol Draft 3.1, https://www.chromium.org/spdy/spdy-protocol/spdy-protocol-draft3-1/ :
 *   every frame has an 8-byte header. A control frame starts with the control bit, the version (3)
 *   and its type; a data frame with a 31-bit stream id. Both then carry 8 bits of flags (`FIN` =
 *   0x01) and a 24-bit length. SYN_STREAM, SYN_REPLY and HEADERS carry a name/value header block,
 *   zlib-compressed with the SPDY/3 dictionary (§2.6.10.1), one compression context per direction
 *   for the whole connection, each block ending on a sync flush.
 * - Kubernetes' streaming protocol on top of it: moby/spdystream as client-go uses it
 *   (`k8s.io/apimachinery/pkg/util/httpstream/spdy`, `k8s.io/client-go/tools/remotecommand`). The
 *   client opens one stream per purpose, named by the `streamtype` header (Go writes `streamType`,
 *   SPDY lower-cases it): `error`, `stdin`, `stdout`, `stderr`, `resize` (for port-forward: `data`
 *   and `error` per port, with `port` and `requestid`); the server answers each with a SYN_REPLY.
 *   The channel protocol is negotiated in the upgrade by `X-Stream-Protocol-Version`
 *   (`v4.channel.k8s.io`: the error stream carries a JSON `Status`; resize carries
 *   `{"Width":…,"Height":…}` objects).
 *
 * {@link SpdyParser} splits one direction of a connection into frames (data payloads are views of
 * the input, not copies, when a frame sits in one chunk) and decodes header blocks;
 * {@link SpdyEncoder} writes frames (header blocks as stored deflate blocks, for the stand-in and the tests). Malformed input throws
 * `ProtocolError`.
 */
import { constants, inflateSync } from 'node:zlib';
import { Framer, ProtocolError } from '../wire.js';

export { ProtocolError } from '../wire.js';

export const SPDY_VERSION = 3;
export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const FLAG_SETTINGS_CLEAR = 0x01;

export const SYN_STREAM = 1;
export const SYN_REPLY = 2;
export const RST_STREAM = 3;
export const SETTINGS = 4;
export const PING = 6;
export const GOAWAY = 7;
export const HEADERS = 8;
export const WINDOW_UPDATE = 9;

/** Largest data frame payload accepted by default: all the 24-bit length allows (16 MiB - 1). */
export const MAX_DATA_FRAME = 0xffffff;
/** Largest control frame payload accepted. */
export const MAX_CONTROL_FRAME = 64 * 1024;
/** Compressed header bytes kept per direction (see {@link HeaderInflater}). */
export const MAX_COMPRESSED_HEADERS = 256 * 1024;
/** Decompressed header bytes per direction, over the whole connection. */
export const MAX_INFLATED_HEADERS = 1024 * 1024;
/**
 * Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) per direction of a connection. An exec or attach
 * opens at most five streams (error, stdin, stdout, stderr, resize) and gets a reply to each.
 */
export const MAX_HEADER_BLOCKS = 32;

/** Name/value pairs in wire order; a value may hold several values separated by NUL. */
export type SpdyHeaders = [name: string, value: string][];

interface Base {
  flags: number;
  /** The frame's bytes: a view of the input when the frame sat in one chunk. */
  raw: Buffer;
}
export interface DataFrame extends Base { kind: 'data'; streamId: number; fin: boolean; data: Buffer }
export interface SynStreamFrame extends Base { kind: 'syn_stream'; streamId: number; associatedTo: number; priority: number; slot: number; fin: boolean; headers: SpdyHeaders }
export interface SynReplyFrame extends Base { kind: 'syn_reply'; streamId: number; fin: boolean; headers: SpdyHeaders }
export interface RstStreamFrame extends Base { kind: 'rst_stream'; streamId: number; status: number }
export interface SettingsFrame extends Base { kind: 'settings'; settings: { flags: number; id: number; value: number }[] }
export interface PingFrame extends Base { kind: 'ping'; id: number }
export interface GoAwayFrame extends Base { kind: 'goaway'; lastGoodStreamId: number; status: number }
export interface HeadersFrame extends Base { kind: 'headers'; streamId: number; fin: boolean; headers: SpdyHeaders }
export interface WindowUpdateFrame extends Base { kind: 'window_update'; streamId: number; delta: number }
/** A control frame of a type SPDY/3.1 does not define: the draft says to ignore it. */
export interface UnknownFrame extends Base { kind: 'unknown'; type: number; payload: Buffer }
export type SpdyFrame = DataFrame | SynStreamFrame | SynReplyFrame | RstStreamFrame | SettingsFrame | PingFrame | GoAwayFrame | HeadersFrame | WindowUpdateFrame | UnknownFrame;

/** The first value of header `name` (names are lower case on the wire). */
export function headerValue(headers: SpdyHeaders, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v.split('\0')[0];
  return undefined;
}

// --- the SPDY/3 header dictionary (draft 3.1, §2.6.10.1) -------------------------------------------

/** Length-prefixed entries, then a tail of plain text: together the 1423 bytes of the dictionary. */
const DICT_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow',
  'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5',
  'content-range', 'content-type', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning', 'www-authenticate', 'method', 'get',
  'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
];
const DICT_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found' +
  '500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ' +
  'Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,' +
  'text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const SPDY_DICTIONARY: Buffer = (() => {
  const parts: Buffer[] = [];
  for (const w of DICT_WORDS) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    parts.push(len, Buffer.from(w, 'latin1'));
  }
  parts.push(Buffer.from(DICT_TAIL, 'latin1'));
  return Buffer.concat(parts);
})();

// --- header blocks -------------------------------------------------------------------------------

/** The uncompressed name/value block: a 32-bit count, then length-prefixed names and values. */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(headers.length);
  parts.push(count);
  for (const [n, v] of headers) {
    for (const s of [n, v]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

/** Parses an uncompressed name/value block; it must be used exactly. */
export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  if (block.length < 4) throw new ProtocolError('truncated SPDY header block');
  const count = block.readUInt32BE(0);
  // every pair takes at least 9 bytes (two lengths, a name of one byte or more)
  if (count > (block.length - 4) / 9) throw new ProtocolError(`SPDY header block claims ${count} pairs in ${block.length} bytes`);
  const out: SpdyHeaders = [];
  let p = 4;
  const field = (what: string): string => {
    if (p + 4 > block.length) throw new ProtocolError(`truncated SPDY header ${what} length`);
    const len = block.readUInt32BE(p);
    p += 4;
    if (len > block.length - p) throw new ProtocolError(`truncated SPDY header ${what}`);
    const s = block.toString('utf8', p, p + len);
    p += len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = field('name');
    if (name === '') throw new ProtocolError('empty SPDY header name');
    out.push([name, field('value')]);
  }
  if (p !== block.length) throw new ProtocolError('trailing bytes after the SPDY header block');
  return out;
}

/**
 * The receiving side of one direction's header compression context. Node 20 has no public
 * synchronous *stateful* inflate (the zlib stream classes are asynchronous), so this keeps every
 * compressed header byte seen so far in this direction and inflates all of them again for each
 * block, with `Z_SYNC_FLUSH` as the finishing flush, taking the output past what earlier blocks
 * produced. Header blocks are small and few (one per stream and reply), and the kept bytes are
 * bounded by {@link MAX_COMPRESSED_HEADERS}, so the repeated work stays small.
 */
export class HeaderInflater {
  #chunks: Buffer[] = [];
  #compressed = 0;
  #produced = 0;

  inflate(block: Buffer): Buffer {
    if (block.length === 0) throw new ProtocolError('empty compressed SPDY header block');
    // Each block re-inflates everything before it: the count bounds that work (many tiny blocks
    // would otherwise make it quadratic, on the event loop).
    if (this.#chunks.length >= MAX_HEADER_BLOCKS) throw new ProtocolError(`more than ${MAX_HEADER_BLOCKS} SPDY header blocks on this connection`);
    this.#compressed += block.length;
    if (this.#compressed > MAX_COMPRESSED_HEADERS) throw new ProtocolError(`SPDY header blocks exceed ${MAX_COMPRESSED_HEADERS} compressed bytes on this connection`);
    this.#chunks.push(Buffer.from(block));
    let out: Buffer;
    try {
      out = inflateSync(this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks), {
        dictionary: SPDY_DICTIONARY,
        finishFlush: constants.Z_SYNC_FLUSH,
        maxOutputLength: MAX_INFLATED_HEADERS,
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new ProtocolError(`SPDY header blocks decompress to more than ${MAX_INFLATED_HEADERS} bytes on this connection`);
      throw new ProtocolError('malformed compressed SPDY header block', e instanceof Error ? e.message : String(e));
    }
    if (out.length <= this.#produced) throw new ProtocolError('SPDY header block decompresses to nothing');
    const fresh = out.subarray(this.#produced);
    this.#produced = out.length;
    return fresh;
  }
}

// --- the parser ----------------------------------------------------------------------------------

/** Splits one direction of a SPDY/3.1 connection into frames. */
export class SpdyParser extends Framer<SpdyFrame> {
  readonly #inflater = new HeaderInflater();
  readonly #maxData: number;

  /** `maxDataFrame`: the largest data frame payload accepted (default {@link MAX_DATA_FRAME}). */
  constructor(opts: { maxDataFrame?: number } = {}) {
    super('SPDY frame');
    this.#maxData = opts.maxDataFrame ?? MAX_DATA_FRAME;
  }

  protected headerSize(): number {
    return 8;
  }

  protected frameSize(buf: Buffer, pos: number): number {
    const first = buf.readUInt32BE(pos);
    const length = buf.readUInt32BE(pos + 4) & 0xffffff;
    if (first & 0x80000000) {
      const version = (first >>> 16) & 0x7fff;
      if (version !== SPDY_VERSION) throw new ProtocolError(`unsupported SPDY version ${version}`);
      if (length > MAX_CONTROL_FRAME) throw new ProtocolError(`SPDY control frame of ${length} bytes exceeds ${MAX_CONTROL_FRAME}`);
    } else if (length > this.#maxData) {
      throw new ProtocolError(`SPDY data frame of ${length} bytes exceeds ${this.#maxData}`);
    }
    return 8 + length;
  }

  protected decode(buf: Buffer, pos: number, size: number): SpdyFrame {
    const raw = buf.subarray(pos, pos + size);
    const first = raw.readUInt32BE(0);
    const flags = raw[4] as number;
    const len = size - 8;
    if (!(first & 0x80000000)) {
      const streamId = first & 0x7fffffff;
      if (streamId === 0) throw new ProtocolError('SPDY data frame on stream 0');
      return { kind: 'data', streamId, flags, fin: (flags & FLAG_FIN) !== 0, data: raw.subarray(8), raw };
    }
    const type = first & 0xffff;
    const need = (n: number, exact = true): void => {
      if (exact ? len !== n : len < n) throw new ProtocolError(`SPDY control frame of type ${type} with a length of ${len}`);
    };
    const streamOf = (at: number): number => {
      const id = raw.readUInt32BE(at) & 0x7fffffff;
      if (id === 0) throw new ProtocolError(`SPDY control frame of type ${type} on stream 0`);
      return id;
    };
    const fin = (flags & FLAG_FIN) !== 0;
    switch (type) {
      case SYN_STREAM: {
        need(10, false);
        const streamId = streamOf(8);
        return { kind: 'syn_stream', flags, raw, streamId, associatedTo: raw.readUInt32BE(12) & 0x7fffffff, priority: (raw[16] as number) >> 5, slot: raw[17] as number, fin, headers: this.#headers(raw.subarray(18)) };
      }
      case SYN_REPLY:
      case HEADERS: {
        need(4, false);
        const streamId = streamOf(8);
        const headers = this.#headers(raw.subarray(12));
        return type === SYN_REPLY ? { kind: 'syn_reply', flags, raw, streamId, fin, headers } : { kind: 'headers', flags, raw, streamId, fin, headers };
      }
      case RST_STREAM:
        need(8);
        return { kind: 'rst_stream', flags, raw, streamId: streamOf(8), status: raw.readUInt32BE(12) };
      case SETTINGS: {
        need(4, false);
        const n = raw.readUInt32BE(8);
        if (len !== 4 + 8 * n) throw new ProtocolError(`SPDY SETTINGS frame of ${len} bytes for ${n} entries`);
        const settings: SettingsFrame['settings'] = [];
        for (let i = 0; i < n; i++) {
          const at = 12 + 8 * i;
          settings.push({ flags: raw[at] as number, id: raw.readUInt32BE(at) & 0xffffff, value: raw.readUInt32BE(at + 4) });
        }
        return { kind: 'settings', flags, raw, settings };
      }
      case PING:
        need(4);
        return { kind: 'ping', flags, raw, id: raw.readUInt32BE(8) };
      case GOAWAY:
        need(8);
        return { kind: 'goaway', flags, raw, lastGoodStreamId: raw.readUInt32BE(8) & 0x7fffffff, status: raw.readUInt32BE(12) };
      case WINDOW_UPDATE:
        need(8);
        return { kind: 'window_update', flags, raw, streamId: raw.readUInt32BE(8) & 0x7fffffff, delta: raw.readUInt32BE(12) & 0x7fffffff };
      default:
        return { kind: 'unknown', flags, raw, type, payload: raw.subarray(8) };
    }
  }

  #headers(compressed: Buffer): SpdyHeaders {
    return decodeHeaderBlock(this.#inflater.inflate(compressed));
  }
}

// --- the encoder ---------------------------------------------------------------------------------

/** The zlib header naming the SPDY dictionary: CM 8, a 32 KiB window, FDICT, then the DICTID. */
const ZLIB_HEADER: Buffer = (() => {
  const cmf = 0x78;
  let flg = 0x20; // FLEVEL 0 (fastest), FDICT
  flg += 31 - ((cmf * 256 + flg) % 31);
  const h = Buffer.alloc(6);
  h[0] = cmf;
  h[1] = flg;
  h.writeUInt32BE(adler32(SPDY_DICTIONARY), 2);
  return h;
})();

function adler32(b: Buffer): number {
  let a = 1;
  let s = 0;
  for (const x of b) {
    a = (a + x) % 65521;
    s = (s + a) % 65521;
  }
  return ((s << 16) | a) >>> 0;
}

/** Deflate's largest stored block (RFC 1951 §3.2.4: LEN is 16 bits). */
const MAX_STORED = 0xffff;

/** A non-final stored block: BFINAL 0, BTYPE 00, padding to the byte, LEN, NLEN, the bytes. */
function storedBlock(piece: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt16LE(piece.length, 1);
  h.writeUInt16LE(~piece.length & 0xffff, 3);
  return Buffer.concat([h, piece]);
}

/**
 * The sending side of one direction's header compression context, for the stand-in API server and
 * the tests (the gateway relays header blocks as they come and never writes one). It writes each
 * header block as deflate *stored* blocks (RFC 1951 §3.2.4) of one zlib stream that names the SPDY
 * dictionary (RFC 1950): valid input for every inflater — Go's, which kubectl uses, and zlib — and
 * each ending on a sync flush (an empty stored block), as SPDY requires. It does not
 * compress: Node's zlib has no synchronous stateful deflate, and a header block is a few hundred bytes.
 */
export class HeaderDeflater {
  #started = false;

  compress(plain: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.#started) {
      this.#started = true;
      parts.push(ZLIB_HEADER);
    }
    for (let off = 0; off < plain.length; off += MAX_STORED) parts.push(storedBlock(plain.subarray(off, off + MAX_STORED)));
    // The sync flush: an empty stored block. Go's inflater (kubectl's) hands out a stored block's
    // bytes only when the next block begins, so without it a header block would never complete.
    parts.push(storedBlock(Buffer.alloc(0)));
    return Buffer.concat(parts);
  }
}

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > 0xffffff) throw new RangeError('SPDY frame payload too large');
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, 0);
  h.writeUInt32BE(((flags << 24) | payload.length) >>> 0, 4);
  return Buffer.concat([h, payload]);
}

function words(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
}

/** Writes the frames of one direction of a connection (its header compression context included). */
export class SpdyEncoder {
  readonly #deflater = new HeaderDeflater();

  /** A data frame (payload up to 16 MiB - 1). */
  static data(streamId: number, payload: Buffer, flags = 0): Buffer {
    if (payload.length > 0xffffff) throw new RangeError('SPDY data frame payload too large');
    const h = Buffer.alloc(8);
    h.writeUInt32BE(streamId & 0x7fffffff, 0);
    h.writeUInt32BE(((flags << 24) | payload.length) >>> 0, 4);
    return Buffer.concat([h, payload]);
  }

  /** Any control frame, its payload as given (for frames this encoder has no method for). */
  static control(type: number, flags: number, payload: Buffer): Buffer {
    return controlFrame(type, flags, payload);
  }

  /** The compressed form of a header block, advancing this direction's compression context. */
  compressHeaders(headers: SpdyHeaders): Buffer {
    return this.#deflater.compress(encodeHeaderBlock(headers));
  }

  synStream(o: { streamId: number; headers: SpdyHeaders; associatedTo?: number; priority?: number; slot?: number; flags?: number }): Buffer {
    const fixed = Buffer.alloc(10);
    fixed.writeUInt32BE(o.streamId & 0x7fffffff, 0);
    fixed.writeUInt32BE((o.associatedTo ?? 0) & 0x7fffffff, 4);
    fixed[8] = ((o.priority ?? 0) & 7) << 5;
    fixed[9] = o.slot ?? 0;
    return controlFrame(SYN_STREAM, o.flags ?? 0, Buffer.concat([fixed, this.compressHeaders(o.headers)]));
  }

  synReply(streamId: number, headers: SpdyHeaders, flags = 0): Buffer {
    return controlFrame(SYN_REPLY, flags, Buffer.concat([words(streamId & 0x7fffffff), this.compressHeaders(headers)]));
  }

  headers(streamId: number, headers: SpdyHeaders, flags = 0): Buffer {
    return controlFrame(HEADERS, flags, Buffer.concat([words(streamId & 0x7fffffff), this.compressHeaders(headers)]));
  }

  static rstStream(streamId: number, status: number): Buffer {
    return controlFrame(RST_STREAM, 0, words(streamId & 0x7fffffff, status));
  }

  static settings(settings: { flags?: number; id: number; value: number }[], flags = 0): Buffer {
    const p = Buffer.alloc(4 + 8 * settings.length);
    p.writeUInt32BE(settings.length, 0);
    settings.forEach((s, i) => {
      p.writeUInt32BE((((s.flags ?? 0) << 24) | (s.id & 0xffffff)) >>> 0, 4 + 8 * i);
      p.writeUInt32BE(s.value >>> 0, 8 + 8 * i);
    });
    return controlFrame(SETTINGS, flags, p);
  }

  static ping(id: number): Buffer {
    return controlFrame(PING, 0, words(id));
  }

  static goaway(lastGoodStreamId: number, status = 0): Buffer {
    return controlFrame(GOAWAY, 0, words(lastGoodStreamId & 0x7fffffff, status));
  }

  static windowUpdate(streamId: number, delta: number): Buffer {
    return controlFrame(WINDOW_UPDATE, 0, words(streamId & 0x7fffffff, delta & 0x7fffffff));
  }
}
