/**
 * `kubectl exec` over WebSocket for the Kubernetes stand-in: the `v4.channel.k8s.io` /
 * `v5.channel.k8s.io` channel protocol. Every binary message starts with a stream byte:
 * 0 stdin, 1 stdout, 2 stderr, 3 error (the final `Status`, JSON), 4 resize (`{"Width","Height"}`);
 * v5 adds 255 `[255, stream]`, the client closing its stdin. The server ends the exchange by writing
 * the Status on channel 3 and closing the WebSocket.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { PassThrough, Writable, type Readable } from 'node:stream';
import type { WebSocket } from 'ws';
import { execErrorStatus, execExitStatus } from '../../src/engines/kubernetes/status.js';

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
  user: string;
  /** Everything the client sent on stdin. */
  stdin: string;
  resizes: { Width: number; Height: number }[];
  exitCode?: number;
  /** True once the client closed its stdin with a v5 close frame. */
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
