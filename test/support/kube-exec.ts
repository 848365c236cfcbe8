/**
 * `kubectl exec` for the Kubernetes stand-in, over either transport the kubelet speaks:
 *
 * - WebSocket, the `v4.channel.k8s.io` / `v5.channel.k8s.io` channel protocol. Every binary message
 *   starts with a stream byte: 0 stdin, 1 stdout, 2 stderr, 3 error (the final `Status`, JSON),
 *   4 resize (`{"Width","Height"}`); v5 adds 255 `[255, stream]`, the client closing its stdin. The
 *   server ends the exchange by writing the Status on channel 3 and closing the WebSocket.
 * - SPDY/3.1 (client-go's `remotecommand` SPDY executor over moby/spdystream; codec in
 *   src/engines/kubernetes/spdy.ts): the client opens one stream per purpose, named by its
 *   `streamtype` header (`error`, `stdin`, `stdout`, `stderr`, `resize`), and waits for each
 *   SYN_REPLY. Once every stream the request asked for is open the command runs; stdin ends with a
 *   FIN on its stream; resize carries JSON objects, one per line. At the end the server finishes
 *   stdout and stderr (FIN), writes the Status on the error stream (JSON since v4, as over
 *   WebSocket; plain text before) with FIN, sends GOAWAY and closes the connection, as the kubelet
 *   does. Client PINGs are echoed; flow control is not enforced (spdystream does not either).
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { PassThrough, Writable, type Readable } from 'node:stream';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { FLAG_FIN, ProtocolError, SpdyEncoder, SpdyParser, headerValue, type SpdyFrame } from '../../src/engines/kubernetes/spdy.js';
import { execErrorStatus, execExitStatus, type ExecStatus } from '../../src/engines/kubernetes/status.js';

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;
export const CLOSE = 255;

/** Subprotocols the stand-in speaks, best first. */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

export interface ExecRequest {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface ExecIO {
  /** Present when the client asked for stdin; ends when the client closes it (v5) or goes away. */
  stdin: Readable | undefined;
  stdout: Writable;
  stderr: Writable;
  /** Aborted when the client disconnects. */
  signal: AbortSignal;
}

/** Runs one exec; resolves to the exit code (or rejects: an internal error on channel 3). */
export type ExecHandler = (req: ExecRequest, io: ExecIO) => Promise<number>;

/** What the stand-in remembers of each exec. */
export interface ExecRecord {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  tty: boolean;
  protocol: string;
  /** How the exec was carried. */
  transport: 'websocket' | 'SPDY/3.1';
  user: string;
  /** Everything the client sent on stdin. */
  stdin: string;
  resizes: { Width: number; Height: number }[];
  exitCode?: number;
  /** True once the client closed its stdin (a v5 close frame, or a FIN on the SPDY stdin stream). */
  stdinClosed: boolean;
  done: Promise<void>;
}

/**
 * The default handler: runs the command as a child process of the test (no shell unless the
 * command is one, as the kubelet does), in the temp directory with a minimal environment.
 */
export const spawnExec: ExecHandler = (req, io) =>
  new Promise((resolve) => {
    const [cmd = '', ...args] = req.command;
    let settled = false;
    const finish = (code: number): void => {
      if (!settled) {
        settled = true;
        resolve(code);
      }
    };
    const child = spawn(cmd, args, {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: tmpdir(), HOSTNAME: req.pod, ...(req.tty ? { TERM: 'xterm' } : {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') io.stderr.write(`OCI runtime exec failed: exec failed: unable to start container process: exec: ${JSON.stringify(cmd)}: executable file not found in $PATH: unknown\r\n`);
      else io.stderr.write(`${e.message}\n`);
      finish(e.code === 'ENOENT' ? 127 : 126);
    });
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    io.signal.addEventListener('abort', onAbort, { once: true });
    child.stdin.on('error', () => undefined);
    if (io.stdin) io.stdin.pipe(child.stdin);
    else child.stdin.end();
    child.stdout.pipe(io.stdout, { end: false });
    child.stderr.pipe(req.tty ? io.stdout : io.stderr, { end: false });
    child.on('close', (code, signal) => {
      io.signal.removeEventListener('abort', onAbort);
      finish(code ?? (signal === 'SIGKILL' ? 137 : 128));
    });
  });

function channelWriter(ws: WebSocket, channel: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (ws.readyState !== ws.OPEN) return cb();
      ws.send(Buffer.concat([Buffer.from([channel]), chunk]), { binary: true }, () => cb());
    },
  });
}

/** Runs `handler` over an accepted WebSocket and fills `record`. */
export function serveExec(ws: WebSocket, protocol: string, req: ExecRequest, handler: ExecHandler, record: Omit<ExecRecord, 'done'>): Promise<void> {
  const abort = new AbortController();
  const stdin = req.stdin ? new PassThrough() : undefined;
  const supportsClose = protocol.startsWith('v5.');
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const buf = isBinary ? data : Buffer.from(data);
    if (buf.length === 0) return;
    const ch = buf[0];
    const payload = buf.subarray(1);
    if (supportsClose && ch === CLOSE) {
      if (payload[0] === STDIN && stdin && !stdin.writableEnded) {
        record.stdinClosed = true;
        stdin.end();
      }
      return;
    }
    if (ch === STDIN && stdin && !stdin.writableEnded) {
      record.stdin += payload.toString('utf8');
      stdin.write(payload);
    } else if (ch === RESIZE) {
      try {
        record.resizes.push(JSON.parse(payload.toString('utf8')) as { Width: number; Height: number });
      } catch {
        // a malformed resize is ignored, as the kubelet does
      }
    }
  });
  ws.on('close', () => {
    abort.abort();
    if (stdin && !stdin.writableEnded) stdin.end();
  });
  ws.on('error', () => undefined);
  const io: ExecIO = { stdin, stdout: channelWriter(ws, STDOUT), stderr: channelWriter(ws, STDERR), signal: abort.signal };
  const status = handler(req, io).then(
    (code) => {
      record.exitCode = code;
      return execExitStatus(code, req.command);
    },
    (e: unknown) => execErrorStatus(`error executing command in container: ${e instanceof Error ? e.message : String(e)}`),
  );
  return status.then(async (st) => {
    // everything written to stdout/stderr goes out before the status
    await Promise.all([flush(io.stdout), flush(io.stderr)]);
    if (ws.readyState !== ws.OPEN) return;
    await new Promise<void>((resolve) => {
      ws.send(Buffer.concat([Buffer.from([ERROR]), Buffer.from(JSON.stringify(st))]), { binary: true }, () => {
        ws.close(1000);
        resolve();
      });
    });
  });
}

function flush(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (w.writableFinished || w.destroyed) return resolve();
    w.once('finish', () => resolve());
    w.once('error', () => resolve());
    if (!w.writableEnded) w.end();
  });
}

/** The `X-Stream-Protocol-Version` the server picks: the client's first one it speaks (httpstream.Handshake). */
export function negotiateStreamProtocol(offered: readonly string[], supported: readonly string[]): string | undefined {
  const client = offered.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  return client.find((p) => supported.includes(p));
}

/** Runs `handler` over an accepted SPDY/3.1 connection (the `101` already written) and fills `record`. */
export function serveSpdyExec(socket: Duplex, head: Buffer, protocol: string, req: ExecRequest, handler: ExecHandler, record: Omit<ExecRecord, 'done'>): Promise<void> {
  const parser = new SpdyParser();
  const encoder = new SpdyEncoder();
  const abort = new AbortController();
  const stdin = req.stdin ? new PassThrough() : undefined;
  /** stream id of each `streamtype`, and back */
  const ids = new Map<string, number>();
  const types = new Map<number, string>();
  const expected = 1 + Number(req.stdin) + Number(req.stdout) + Number(req.stderr) + Number(req.tty);
  let resizeText = '';
  let lastStream = 0;
  let started = false;
  const send = (b: Buffer): void => {
    if (socket.writable) socket.write(b);
  };
  const endStdin = (): void => {
    if (stdin && !stdin.writableEnded) stdin.end();
  };
  return new Promise<void>((resolve) => {
    const onFrame = (f: SpdyFrame): void => {
      switch (f.kind) {
        case 'syn_stream': {
          const type = headerValue(f.headers, 'streamtype') ?? '';
          lastStream = f.streamId;
          types.set(f.streamId, type);
          ids.set(type, f.streamId);
          send(encoder.synReply(f.streamId, []));
          if (type === 'stdin' && f.fin) endStdin();
          if (!started && ids.size >= expected) {
            started = true;
            run().then(resolve, resolve);
          }
          return;
        }
        case 'data': {
          const type = types.get(f.streamId);
          if (type === 'stdin' && stdin && !stdin.writableEnded) {
            if (f.data.length > 0) {
              record.stdin += f.data.toString('utf8');
              stdin.write(Buffer.from(f.data));
            }
            if (f.fin) {
              record.stdinClosed = true;
              endStdin();
            }
          } else if (type === 'resize') {
            resizeText += f.data.toString('utf8');
            for (let nl = resizeText.indexOf('\n'); nl !== -1; nl = resizeText.indexOf('\n')) {
              const line = resizeText.slice(0, nl);
              resizeText = resizeText.slice(nl + 1);
              try {
                record.resizes.push(JSON.parse(line) as { Width: number; Height: number });
              } catch {
                // a malformed resize is ignored, as the kubelet does
              }
            }
          }
          return;
        }
        case 'rst_stream':
          if (types.get(f.streamId) === 'stdin') endStdin();
          return;
        case 'ping':
          send(SpdyEncoder.ping(f.id));
          return;
        case 'goaway':
          socket.end();
          return;
        default:
      }
    };
    const feed = (c: Buffer): void => {
      let frames: SpdyFrame[];
      try {
        frames = parser.push(c);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        socket.destroy();
        return;
      }
      for (const f of frames) onFrame(f);
    };
    socket.on('data', feed);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      abort.abort();
      endStdin();
      if (!started) resolve();
    });
    if (head.length > 0) feed(head);

    const writer = (type: string): Writable =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          const id = ids.get(type);
          if (id === undefined || !socket.writable) return cb();
          socket.write(SpdyEncoder.data(id, chunk), () => cb());
        },
      });
    const run = async (): Promise<void> => {
      const io: ExecIO = { stdin, stdout: writer('stdout'), stderr: writer('stderr'), signal: abort.signal };
      let st: ExecStatus;
      try {
        const code = await handler(req, io);
        record.exitCode = code;
        st = execExitStatus(code, req.command);
      } catch (e) {
        st = execErrorStatus(`error executing command in container: ${e instanceof Error ? e.message : String(e)}`);
      }
      await Promise.all([flush(io.stdout), flush(io.stderr)]);
      if (!socket.writable) return;
      const frames: Buffer[] = [];
      for (const t of ['stdout', 'stderr']) {
        const id = ids.get(t);
        if (id !== undefined) frames.push(SpdyEncoder.data(id, Buffer.alloc(0), FLAG_FIN));
      }
      // v4 and later: the Status as JSON; before: the message of a failure, nothing on success
      const json = protocol.startsWith('v4.') || protocol.startsWith('v5.');
      const body = json ? JSON.stringify(st) : st.status === 'Success' ? '' : (st.message ?? '');
      frames.push(SpdyEncoder.data(ids.get('error') ?? 1, Buffer.from(body), FLAG_FIN), SpdyEncoder.goaway(lastStream));
      await new Promise<void>((done) => socket.end(Buffer.concat(frames), () => done()));
    };
  });
}
