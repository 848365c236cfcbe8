/**
 * Passive SFTP auditing: the bytes of an `sftp` subsystem channel (RFC 4254 §6.5) pass through
 * unchanged while this parser reads the packets of draft-ietf-secsh-filexfer-02 (SFTP version 3,
 * the version OpenSSH speaks) in both directions and reports the file operations with their paths
 * and outcomes: open (mode, flags), close (bytes read and written), opendir, remove, rename,
 * mkdir, rmdir, setstat, symlink, and the OpenSSH extensions posix-rename, hardlink, lsetstat.
 *
 * Socket-free and bounded: a packet longer than {@link MAX_PACKET} is a protocol error (OpenSSH's
 * own limit is 256 KiB); of WRITE and DATA packets only the head is kept, the payload is skipped.
 */

/** Longest SFTP packet accepted, bytes. */
export const MAX_PACKET = 1024 * 1024;
/** Longest non-data packet buffered whole (paths, attributes). */
const MAX_META = 256 * 1024;
/** Bytes of a WRITE/DATA packet kept: id + handle (OpenSSH handles are ≤ 256 bytes) + offset + length. */
const DATA_HEAD = 4 + 4 + 256 + 8 + 4;

const T = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

const STATUS_TEXT = ['ok', 'end of file', 'no such file', 'permission denied', 'failure', 'bad message', 'no connection', 'connection lost', 'operation unsupported'];

const PFLAGS: [number, string][] = [
  [0x08, 'creat'],
  [0x10, 'trunc'],
  [0x20, 'excl'],
  [0x04, 'append'],
];

export class SftpProtocolError extends Error {}

/** One audited file operation, with its outcome once the server answered. */
export interface SftpOperation {
  op: 'open' | 'close' | 'opendir' | 'remove' | 'rename' | 'mkdir' | 'rmdir' | 'setstat' | 'symlink' | 'hardlink';
  path: string;
  /** rename/hardlink: the new path; symlink: the link's target. */
  to?: string;
  /** open: `read`, `write`, `read-write` plus flags (`creat`, `trunc`, `excl`, `append`). */
  mode?: string;
  /** close: bytes read and written through the handle. */
  read?: number;
  written?: number;
  /** `ok`, `permission denied`, …; `no answer` when the channel closed first. */
  outcome: string;
}

/** The operation as one line of audit text: `sftp remove /tmp/x → ok`. */
export function describeSftp(o: SftpOperation): string {
  const parts = [`sftp ${o.op}`, JSON.stringify(o.path)];
  if (o.to !== undefined) parts.push(o.op === 'symlink' ? `-> ${JSON.stringify(o.to)}` : `to ${JSON.stringify(o.to)}`);
  if (o.mode) parts.push(`(${o.mode})`);
  if (o.op === 'close') parts.push(`(read ${o.read ?? 0} bytes, wrote ${o.written ?? 0} bytes)`);
  return `${parts.join(' ')}: ${o.outcome}`;
}

class Reader {
  p = 0;
  constructor(readonly b: Buffer) {}
  u32(): number {
    if (this.p + 4 > this.b.length) throw new SftpProtocolError('truncated packet');
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.p + n > this.b.length) throw new SftpProtocolError('truncated string');
    const v = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
}

/** Frames SFTP packets from a byte stream; calls `onPacket(type, body, length)` with the whole body or, for data packets, its head. */
class Framer {
  #head = Buffer.alloc(0);
  #skip = 0;
  /** Bytes of the current packet to skip once its head has been read. */
  #skipAfter = 0;
  #type = 0;
  #len = 0;
  #body: Buffer[] = [];
  #bodyHave = 0;
  #bodyWant = 0;
  #inBody = false;
  constructor(
    readonly dataType: number,
    readonly onPacket: (type: number, body: Buffer, length: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let c = chunk;
    while (c.length > 0) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, c.length);
        this.#skip -= n;
        c = c.subarray(n);
        continue;
      }
      if (!this.#inBody) {
        const need = 5 - this.#head.length;
        const take = c.subarray(0, need);
        this.#head = this.#head.length === 0 ? Buffer.from(take) : Buffer.concat([this.#head, take]);
        c = c.subarray(take.length);
        if (this.#head.length < 5) return;
        this.#len = this.#head.readUInt32BE(0);
        this.#type = this.#head[4] ?? 0;
        this.#head = Buffer.alloc(0);
        if (this.#len < 1 || this.#len > MAX_PACKET) throw new SftpProtocolError(`packet length ${this.#len} out of bounds`);
        const bodyLen = this.#len - 1;
        const isData = this.#type === this.dataType;
        if (!isData && bodyLen > MAX_META) throw new SftpProtocolError(`packet of type ${this.#type} too long (${this.#len} bytes)`);
        this.#bodyWant = isData ? Math.min(bodyLen, DATA_HEAD) : bodyLen;
        this.#skipAfter = bodyLen - this.#bodyWant;
        this.#body = [];
        this.#bodyHave = 0;
        this.#inBody = true;
        if (this.#bodyWant === 0) this.#emit();
        continue;
      }
      const n = Math.min(this.#bodyWant - this.#bodyHave, c.length);
      this.#body.push(c.subarray(0, n));
      this.#bodyHave += n;
      c = c.subarray(n);
      if (this.#bodyHave === this.#bodyWant) this.#emit();
    }
  }

  #emit(): void {
    this.#inBody = false;
    this.#skip = this.#skipAfter;
    this.#skipAfter = 0;
    const body = this.#body.length === 1 ? (this.#body[0] as Buffer) : Buffer.concat(this.#body);
    this.#body = [];
    this.onPacket(this.#type, body, this.#len);
  }
}

interface Pending {
  op: SftpOperation;
  /** open/opendir: the handle from the HANDLE reply is tracked under this path. */
  track?: 'file' | 'dir';
  /** close: the handle's counts, read when the answer comes (reads still in flight count). */
  handle?: HandleInfo;
}

interface HandleInfo {
  path: string;
  dir: boolean;
  read: number;
  written: number;
}

/**
 * Audits one sftp channel. Feed `client()` with what the agent sends and `server()` with what the
 * target answers; both return the operations completed by that chunk. `end()` returns those still
 * unanswered when the channel closes.
 */
export class SftpAuditor {
  readonly #pending = new Map<number, Pending>();
  readonly #handles = new Map<string, HandleInfo>();
  /** READ requests in flight, by id: their DATA answers count for the handle. */
  readonly #reads = new Map<number, HandleInfo>();
  #out: SftpOperation[] = [];
  readonly #client: Framer;
  readonly #server: Framer;
  /** Requests seen (any type), for tests and metrics. */
  requests = 0;

  constructor() {
    this.#client = new Framer(T.WRITE, (t, b, l) => this.#onClient(t, b, l));
    this.#server = new Framer(T.DATA, (t, b, l) => this.#onServer(t, b, l));
  }

  client(chunk: Buffer): SftpOperation[] {
    this.#client.push(chunk);
    return this.#take();
  }

  server(chunk: Buffer): SftpOperation[] {
    this.#server.push(chunk);
    return this.#take();
  }

  /** Operations without an answer, and the open handles (closed by the channel's end). */
  end(): SftpOperation[] {
    for (const p of this.#pending.values()) this.#out.push({ ...p.op, ...(p.handle ? { read: p.handle.read, written: p.handle.written } : {}), outcome: 'no answer' });
    this.#pending.clear();
    for (const h of this.#handles.values()) if (!h.dir) this.#out.push({ op: 'close', path: h.path, read: h.read, written: h.written, outcome: 'channel closed' });
    this.#handles.clear();
    return this.#take();
  }

  #take(): SftpOperation[] {
    if (this.#out.length === 0) return [];
    const o = this.#out;
    this.#out = [];
    return o;
  }

  #onClient(type: number, body: Buffer, length: number): void {
    this.requests++;
    if (type === T.INIT) return;
    const r = new Reader(body);
    const id = r.u32();
    const expect = (op: SftpOperation['op'], path: string, extra: Partial<SftpOperation> = {}, track?: Pending['track'], handle?: HandleInfo): void => {
      this.#pending.set(id, { op: { op, path, outcome: 'pending', ...extra }, ...(track ? { track } : {}), ...(handle ? { handle } : {}) });
    };
    switch (type) {
      case T.OPEN: {
        const path = r.str();
        const pflags = r.u32();
        const rw = (pflags & 0x01 ? 1 : 0) | (pflags & 0x02 ? 2 : 0);
        const mode = [rw === 3 ? 'read-write' : rw === 2 ? 'write' : 'read', ...PFLAGS.filter(([f]) => pflags & f).map(([, n]) => n)].join(', ');
        expect('open', path, { mode }, 'file');
        break;
      }
      case T.OPENDIR:
        expect('opendir', r.str(), {}, 'dir');
        break;
      case T.CLOSE: {
        const handle = r.bytes().toString('latin1');
        const h = this.#handles.get(handle);
        if (h && !h.dir) expect('close', h.path, {}, undefined, h);
        this.#handles.delete(handle);
        break;
      }
      case T.READ: {
        const h = this.#handles.get(r.bytes().toString('latin1'));
        if (h) this.#reads.set(id, h);
        break;
      }
      case T.WRITE: {
        const handle = r.bytes().toString('latin1');
        const h = this.#handles.get(handle);
        // The data's length is what the packet carries after id, handle, offset and the length field.
        if (h) h.written += Math.max(0, length - 1 - 4 - 4 - handle.length - 8 - 4);
        break;
      }
      case T.REMOVE:
        expect('remove', r.str());
        break;
      case T.MKDIR:
        expect('mkdir', r.str());
        break;
      case T.RMDIR:
        expect('rmdir', r.str());
        break;
      case T.SETSTAT:
        expect('setstat', r.str());
        break;
      case T.FSETSTAT: {
        const h = this.#handles.get(r.bytes().toString('latin1'));
        if (h) expect('setstat', h.path);
        break;
      }
      case T.RENAME: {
        const from = r.str();
        expect('rename', from, { to: r.str() });
        break;
      }
      case T.SYMLINK: {
        // OpenSSH sends (target, link) — the reverse of the draft; both are reported as sent.
        const a = r.str();
        expect('symlink', r.str(), { to: a });
        break;
      }
      case T.EXTENDED: {
        const name = r.str();
        if (name === 'posix-rename@openssh.com' || name === 'hardlink@openssh.com') {
          const from = r.str();
          expect(name.startsWith('posix') ? 'rename' : 'hardlink', from, { to: r.str() });
        } else if (name === 'lsetstat@openssh.com') {
          expect('setstat', r.str());
        }
        break;
      }
      default:
        break;
    }
  }

  #onServer(type: number, body: Buffer, length: number): void {
    if (type === T.VERSION) return;
    const r = new Reader(body);
    const id = r.u32();
    if (type === T.DATA) {
      const h = this.#reads.get(id);
      this.#reads.delete(id);
      if (h) h.read += Math.max(0, length - 1 - 4 - 4);
      return;
    }
    if (type === T.STATUS) this.#reads.delete(id);
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    if (p.handle) {
      p.op.read = p.handle.read;
      p.op.written = p.handle.written;
    }
    if (type === T.HANDLE) {
      const handle = r.bytes().toString('latin1');
      if (p.track) this.#handles.set(handle, { path: p.op.path, dir: p.track === 'dir', read: 0, written: 0 });
      this.#out.push({ ...p.op, outcome: 'ok' });
      return;
    }
    if (type === T.STATUS) {
      const code = r.u32();
      this.#out.push({ ...p.op, outcome: STATUS_TEXT[code] ?? `status ${code}` });
      return;
    }
    this.#out.push({ ...p.op, outcome: `reply type ${type}` });
  }
}
