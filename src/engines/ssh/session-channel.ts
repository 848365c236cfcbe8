/**
 * One SSH `session` channel (RFC 4254 §6) between the agent and the target, through Gatehouse.
 *
 * The channel's requests arrive in order: `pty-req` (§6.2) and `env` (§6.4) are kept until the
 * request that starts the session — `exec`, `shell` or `subsystem` (§6.5) — which the core decides
 * (policy, review hold). Allowed: Gatehouse opens the same kind of channel on its own connection to
 * the target, with the pty and the allowed environment, and relays both ways with backpressure:
 * stdin, stdout, extended data (stderr, §5.2), EOF, `window-change` (§6.7), `signal` (§6.9),
 * `exit-status` / `exit-signal` (§6.10, sent after the last byte of output, before EOF and CLOSE).
 * Refused: a `gatehouse: …` line on stderr and exit status 126 (./messages.ts). Terminal input and
 * output are recorded (./recorder.ts); sftp channels are audited operation by operation
 * (./sftp-audit.ts, draft-ietf-secsh-filexfer-02). When the session masks, exec and shell output
 * reaches the agent masked a line at a time (../line-masking.ts; output that is not UTF-8 ends the
 * channel) and subsystems (sftp) are refused: their bytes cannot be masked.
 */
import type { Readable, Writable } from 'node:stream';
import type ssh2 from 'ssh2';
import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { SshCommand } from '../../core/command.js';
import { GatehouseError, toGatehouseError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { CommandDecision } from '../../core/policy/types.js';
import type { SessionContext } from '../../core/sessions/types.js';
import { LineMasker } from '../line-masking.js';
import { denialText, errorText, exitFor, EXIT_GATEWAY, EXIT_REFUSED } from './messages.js';
import { TerminalRecording } from './recorder.js';
import { describeSftp, SftpAuditor, type SftpOperation } from './sftp-audit.js';

/** Per channel and direction, terminal recording stops after this many bytes (shells). */
export const SHELL_RECORD_LIMIT = 16 * 1024 * 1024;
/** Per channel and direction, for exec channels (builds print a lot; bulk copies print more). */
export const EXEC_RECORD_LIMIT = 1024 * 1024;
/** The environment variable that carries the agent's justification for reviews; never passed on. */
export const REASON_ENV = 'GATEHOUSE_REASON';

/** What a channel needs from its SSH connection. */
export interface ChannelHost {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly allowEnv: ReadonlySet<string>;
  /** The session, or the error that refused the connection after a valid token. */
  readonly session: SessionContext | undefined;
  readonly refusal: GatehouseError | undefined;
  /** Gatehouse's connection to the target (rejects with ERR_UPSTREAM). */
  upstream(): Promise<ssh2.Client>;
  /** The target cannot be used or the connection was refused: ends the whole connection once the channel said why. */
  fatal(err: GatehouseError): void;
  /** Data moved: resets the idle timer. */
  touch(): void;
  /** Agent forwarding was allowed on this channel: relay the target's agent channels to the agent. */
  agentAllowed(): boolean;
  enableAgent(): void;
  channelClosed(c: SessionChannel): void;
}

type Kind = 'exec' | 'shell' | 'subsystem';

/** Waits until everything written so far has been handed to the SSH layer (or the stream is gone). */
function drained(w: Writable, gone: Promise<void>): Promise<void> {
  if (!w.writable || w.writableEnded) return Promise.resolve();
  return Promise.race([new Promise<void>((resolve) => w.write(Buffer.alloc(0), () => resolve())), gone]);
}

/** What {@link rawChannel} reaches into: ssh2's channel state and protocol writer (not public API). */
interface ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal?: unknown; windowChange?: unknown } };
}

/**
 * The target-side channel's id and protocol writer while requests may still be sent on it. ssh2's
 * own `signal()` and `setWindow()` go quiet once Gatehouse has sent EOF (the agent closed stdin),
 * but RFC 4254 allows channel requests until CLOSE: a `sleep` whose stdin is closed can still be
 * interrupted. Falls back to the public calls if ssh2's internals change.
 */
function rawChannel(up: ssh2.ClientChannel): { id: number; protocol: { signal(id: number, name: string): void; windowChange(id: number, rows: number, cols: number, height: number, width: number): void } } | undefined {
  const c = up as unknown as ChannelInternals;
  const id = c.outgoing?.id;
  const state = c.outgoing?.state;
  const p = c._client?._protocol;
  if (typeof id !== 'number' || (state !== 'open' && state !== 'eof') || !p || typeof p.signal !== 'function' || typeof p.windowChange !== 'function') return undefined;
  return { id, protocol: p as { signal(id: number, name: string): void; windowChange(id: number, rows: number, cols: number, height: number, width: number): void } };
}

/** Copies `src` into `dst` with backpressure; `tap` sees each chunk first and may throw to stop the copy. */
function relay(src: Readable, dst: Writable, tap: ((c: Buffer) => void) | undefined, onTapError: (e: unknown) => void, onData: () => void): void {
  let stopped = false;
  let waiting = false;
  src.on('data', (chunk: Buffer) => {
    if (stopped) return;
    onData();
    if (tap) {
      try {
        tap(chunk);
      } catch (e) {
        stopped = true;
        onTapError(e);
        return;
      }
    }
    if (dst.writable && !dst.write(chunk) && !waiting) {
      waiting = true;
      src.pause();
      dst.once('drain', () => {
        waiting = false;
        src.resume();
      });
    }
  });
}

/**
 * Copies `src` into `dst` masked a line at a time (../line-masking.ts), with backpressure; `record`
 * sees what the agent gets. Output that is not UTF-8 text stops the copy through `onFail`.
 */
function maskedRelay(src: Readable, dst: Writable, mask: (text: string) => string, record: ((c: Buffer) => void) | undefined, onFail: (e: unknown) => void, onData: () => void): void {
  let stopped = false;
  let waiting = false;
  const fail = (e: unknown): void => {
    if (stopped) return;
    stopped = true;
    lines.close();
    onFail(e);
  };
  const lines = new LineMasker({
    mask,
    what: 'output',
    fail,
    emit: (masked) => {
      record?.(masked);
      if (dst.writable && !dst.write(masked) && !waiting) {
        waiting = true;
        src.pause();
        dst.once('drain', () => {
          waiting = false;
          src.resume();
        });
      }
    },
  });
  src.on('data', (chunk: Buffer) => {
    if (stopped) return;
    onData();
    try {
      lines.push(chunk);
    } catch (e) {
      fail(e);
    }
  });
  // Before the channel's own end handling (registered later): the held-back tail goes out first.
  src.once('end', () => {
    if (stopped) return;
    try {
      lines.flush();
    } catch (e) {
      fail(e);
    }
  });
}

export class SessionChannel {
  readonly #host: ChannelHost;
  #pty: PseudoTtyInfo | undefined;
  readonly #env: Record<string, string> = {};
  #agent = false;
  #started = false;
  #ch: ServerChannel | undefined;
  #up: ssh2.ClientChannel | undefined;
  #kind: Kind | undefined;
  #finished = false;
  #gone = false;
  #recording: TerminalRecording | undefined;
  /** The target's exit-status or exit-signal (RFC 4254 §6.10), once it has come. */
  #upExit: { code?: number; signal?: string; dump?: boolean; desc?: string } | undefined;
  #sftp: SftpAuditor | undefined;
  #sftpCommand: SshCommand | undefined;
  #sftpDecision: CommandDecision | undefined;
  /** Aborts a review hold when the agent hangs up or interrupts. */
  readonly #hold = new AbortController();
  #closedResolve!: () => void;
  readonly #closed = new Promise<void>((r) => (this.#closedResolve = r));

  constructor(host: ChannelHost, session: Session) {
    this.#host = host;
    session.on('pty', (accept, reject, info) => this.#onPty(accept, reject, info));
    session.on('env', (accept, reject, info) => this.#onEnv(accept, reject, info.key, info.val));
    session.on('window-change', (accept, _reject, info) => {
      accept?.();
      this.#resize(info.cols, info.rows, info.width, info.height);
    });
    session.on('signal', (accept, _reject, info) => {
      accept?.();
      this.#signal(info.name);
    });
    session.on('auth-agent', (accept, reject) => void this.#onAgent(accept, reject));
    session.on('x11', (_accept, reject) => {
      this.#host.session?.record({ type: 'note', message: 'X11 forwarding request refused (not supported through Gatehouse)' });
      reject?.();
    });
    session.on('exec', (accept, reject, info) => void this.#start('exec', accept, reject, info.command));
    session.on('shell', (accept, reject) => void this.#start('shell', accept, reject, undefined));
    session.on('subsystem', (accept, reject, info) => void this.#start('subsystem', accept, reject, info.name));
    session.on('close', () => this.#onClientClose());
  }

  get isPty(): boolean {
    return this.#pty !== undefined;
  }

  #nl(): string {
    return this.#pty ? '\r\n' : '\n';
  }

  #onPty(accept: (() => void) | undefined, reject: (() => void) | undefined, info: PseudoTtyInfo): void {
    if (this.#started) return reject?.();
    this.#pty = info;
    accept?.();
  }

  #onEnv(accept: (() => void) | undefined, reject: (() => void) | undefined, key: string, val: string): void {
    if (key === REASON_ENV) {
      if (this.#host.session) this.#host.session.justification = val.slice(0, 2000);
      return accept?.();
    }
    if (this.#started || !this.#host.allowEnv.has(key)) {
      this.#host.logger.debug({ env: key }, 'ssh env request dropped (not in ssh.allow_env)');
      return reject?.();
    }
    this.#env[key] = val;
    accept?.();
  }

  async #onAgent(accept: (() => void) | undefined, reject: (() => void) | undefined): Promise<void> {
    try {
      await this.#decideAgent(accept, reject);
    } catch (e) {
      this.#host.logger.error({ err: e }, 'ssh agent forwarding request failed');
      reject?.();
    }
  }

  async #decideAgent(accept: (() => void) | undefined, reject: (() => void) | undefined): Promise<void> {
    const s = this.#host.session;
    if (!s || this.#started) return reject?.();
    const cmd: SshCommand = { kind: 'ssh', channel: 'agent' };
    const d = await s.authorize(cmd);
    this.#host.metrics.commandsTotal.inc({ protocol: 'ssh', effect: d.effect === 'allow' ? 'allow' : 'deny' });
    // Agent forwarding is decided, never held: a review cannot be answered inside a channel request.
    const decision: CommandDecision = d.effect === 'review' ? { effect: 'deny', rule: d.rule, reason: 'agent forwarding cannot wait for a review', code: 'ERR_ACCESS_DENIED' } : d;
    s.record({ type: 'statement', command: cmd, decision });
    if (decision.effect !== 'allow') return reject?.();
    this.#agent = true;
    this.#host.enableAgent();
    accept?.();
  }

  #resize(cols: number, rows: number, width: number, height: number): void {
    if (this.#pty) this.#pty = { ...this.#pty, cols, rows, width, height };
    if (this.#up) {
      this.#host.session?.record({ type: 'resize', cols, rows });
      try {
        const raw = rawChannel(this.#up);
        if (raw) raw.protocol.windowChange(raw.id, rows, cols, height, width);
        else this.#up.setWindow(rows, cols, height, width);
      } catch {
        // The target's channel is gone.
      }
    }
  }

  #signal(name: string): void {
    if (this.#up) {
      try {
        const raw = rawChannel(this.#up);
        if (raw) raw.protocol.signal(raw.id, name);
        else this.#up.signal(name);
      } catch (e) {
        this.#host.logger.debug({ err: e, signal: name }, 'ssh signal not relayed');
      }
    } else if (/^(SIG)?(INT|TERM|KILL|HUP|QUIT)$/i.test(name)) {
      this.#hold.abort(`interrupted by ${name}`);
    }
  }

  #say(msg: string): void {
    const ch = this.#ch;
    if (ch && ch.stderr.writable) ch.stderr.write(`${msg}${this.#nl()}`);
  }

  #command(kind: Kind, arg: string | undefined): SshCommand {
    if (kind === 'exec') return { kind: 'ssh', channel: 'exec', command: arg ?? '' };
    if (kind === 'shell') return { kind: 'ssh', channel: 'shell' };
    if (arg === 'sftp') return { kind: 'ssh', channel: 'sftp' };
    return { kind: 'ssh', channel: 'subsystem', command: arg ?? '' };
  }

  async #start(kind: Kind, accept: () => ServerChannel, reject: (() => void) | undefined, arg: string | undefined): Promise<void> {
    if (this.#started) return reject?.();
    this.#started = true;
    this.#kind = kind;
    const ch = accept();
    if (!ch) return;
    this.#ch = ch;
    ch.on('error', () => undefined);
    ch.stderr.on('error', () => undefined);
    ch.once('close', () => this.#onClientClose());
    try {
      await this.#run(kind, ch, arg);
    } catch (e) {
      const err = toGatehouseError(e);
      if (err.code === 'ERR_INTERNAL') this.#host.logger.error({ err: e }, 'ssh channel failed');
      this.#say(errorText(err));
      await this.#finish({ code: exitFor(err) });
    }
  }

  async #run(kind: Kind, ch: ServerChannel, arg: string | undefined): Promise<void> {
    const host = this.#host;
    if (host.refusal || !host.session) {
      const err = host.refusal ?? new GatehouseError('ERR_INTERNAL', 'no session');
      this.#say(errorText(err));
      await this.#finish({ code: exitFor(err) });
      host.fatal(err);
      return;
    }
    const s = host.session;
    const cmd = this.#command(kind, arg);
    let d = await s.authorize(cmd);
    if (d.effect === 'review') {
      const stop = (): void => this.#hold.abort('session ended');
      s.ended.addEventListener('abort', stop, { once: true });
      try {
        d = await s.awaitReview(cmd, d, (m) => this.#say(`gatehouse: ${m}`), this.#hold.signal);
      } catch (e) {
        const err = toGatehouseError(e);
        d = { effect: 'deny', rule: d.rule, reason: err.message, code: err.code };
      } finally {
        s.ended.removeEventListener('abort', stop);
      }
    }
    host.metrics.commandsTotal.inc({ protocol: 'ssh', effect: d.effect });
    if (cmd.channel === 'sftp') {
      this.#sftpCommand = cmd;
      this.#sftpDecision = d;
    }
    if (d.effect === 'allow' && kind === 'subsystem' && s.masker.active) {
      // sftp and other subsystems carry file contents and binary data: nothing to mask them with.
      const err = new GatehouseError('ERR_MASKING_FAILED', `${cmd.channel === 'sftp' ? 'sftp' : `the ${arg ?? ''} subsystem`} cannot be inspected for masking; it is refused while this session masks output`);
      s.record({ type: 'statement', command: cmd, decision: { effect: 'deny', rule: d.rule, reason: err.message, code: err.code } });
      this.#say(errorText(err));
      await this.#finish({ code: EXIT_REFUSED });
      return;
    }
    s.record({ type: 'statement', command: cmd, decision: d });
    if (d.effect !== 'allow' || this.#finished) {
      if (d.effect === 'deny') this.#say(denialText(d));
      else if (d.effect !== 'allow') this.#say(`gatehouse: ${cmd.channel} was not approved`);
      await this.#finish({ code: EXIT_REFUSED });
      return;
    }
    if (this.#pty) s.record({ type: 'resize', cols: this.#pty.cols, rows: this.#pty.rows });

    let up: ssh2.Client;
    try {
      up = await host.upstream();
    } catch (e) {
      const err = toGatehouseError(e, 'ERR_UPSTREAM');
      s.record({ type: 'error', code: err.code, message: err.message });
      this.#say(errorText(err));
      await this.#finish({ code: EXIT_GATEWAY });
      host.fatal(err);
      return;
    }
    if (this.#finished) return;
    let stream: ssh2.ClientChannel;
    try {
      stream = await this.#open(up, kind, arg);
    } catch (e) {
      const err = new GatehouseError('ERR_UPSTREAM', `the target refused to start the ${kind === 'subsystem' ? `${arg ?? ''} subsystem` : kind}`, { detail: e instanceof Error ? e.message : String(e) });
      s.record({ type: 'error', code: err.code, message: err.message });
      this.#say(errorText(err));
      await this.#finish({ code: EXIT_GATEWAY });
      return;
    }
    if (this.#finished) {
      stream.close();
      return;
    }
    this.#up = stream;
    this.#pipe(kind, ch, stream, s);
  }

  #open(up: ssh2.Client, kind: Kind, arg: string | undefined): Promise<ssh2.ClientChannel> {
    const env = Object.keys(this.#env).length > 0 ? { env: { ...this.#env } } : {};
    const agent = this.#agent && this.#host.agentAllowed() ? { agentForward: true } : {};
    const pty = this.#pty ? { rows: this.#pty.rows, cols: this.#pty.cols, width: this.#pty.width, height: this.#pty.height, term: this.#pty.term, modes: this.#pty.modes } : undefined;
    return new Promise((resolve, reject) => {
      const cb = (err: Error | undefined, stream: ssh2.ClientChannel): void => {
        if (err) return reject(err);
        // Now, not after the await: a fast command's exit-status can arrive in the same read as
        // the channel's confirmation, and ssh2 emits it before any continuation of ours runs.
        stream.once('exit', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
          this.#upExit = code === null || code === undefined ? { signal: signal ?? 'SIGKILL', dump: dump === true, desc: desc ?? '' } : { code };
        });
        resolve(stream);
      };
      try {
        if (kind === 'exec') up.exec(arg ?? '', { ...env, ...agent, ...(pty ? { pty } : {}) }, cb);
        else if (kind === 'shell') up.shell(pty ?? false, { ...env, ...agent }, cb);
        else up.subsys(arg ?? '', cb);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  #pipe(kind: Kind, ch: ServerChannel, up: ssh2.ClientChannel, s: SessionContext): void {
    const host = this.#host;
    const isSftp = kind === 'subsystem' && this.#sftpCommand !== undefined;
    let inTap: ((c: Buffer) => void) | undefined;
    let outTap: ((c: Buffer) => void) | undefined;
    let errTap: ((c: Buffer) => void) | undefined;
    if (isSftp) {
      const audit = new SftpAuditor();
      this.#sftp = audit;
      inTap = (c) => this.#audit(audit.client(c));
      outTap = (c) => this.#audit(audit.server(c));
    } else if (kind === 'exec' || kind === 'shell') {
      const rec = new TerminalRecording(s, { limit: kind === 'shell' ? SHELL_RECORD_LIMIT : EXEC_RECORD_LIMIT, tty: this.#pty !== undefined });
      this.#recording = rec;
      const { input, stdout: output, stderr: errors } = rec;
      inTap = (c) => input.push(c);
      outTap = (c) => output.push(c);
      errTap = (c) => errors.push(c);
    }
    const tapFailed = (e: unknown): void => {
      const msg = e instanceof Error ? e.message : String(e);
      host.logger.warn({ err: msg }, 'ssh channel stopped: its traffic could not be audited');
      s.record({ type: 'error', code: 'ERR_PROTOCOL', message: `channel stopped: ${msg}` });
      this.#say(`gatehouse: channel stopped: its traffic could not be audited (${msg})`);
      up.close();
      void this.#finish({ code: EXIT_GATEWAY });
    };
    const touch = (): void => host.touch();

    // agent → target
    relay(ch, up, inTap, tapFailed, touch);
    ch.once('end', () => up.end());
    // target → agent: as it comes, or masked a line at a time when the session masks
    if (s.masker.active && (kind === 'exec' || kind === 'shell')) {
      const maskFailed = (e: unknown): void => {
        const err = toGatehouseError(e, 'ERR_MASKING_FAILED');
        host.logger.info({ err: err.toJSON() }, 'ssh channel ended: its output could not be masked');
        s.record({ type: 'error', code: err.code, message: err.message });
        this.#say(errorText(err));
        up.close();
        void this.#finish({ code: EXIT_GATEWAY });
      };
      const mask = (text: string): string => s.masker.maskText(text);
      maskedRelay(up, ch, mask, outTap, maskFailed, touch);
      maskedRelay(up.stderr, ch.stderr, mask, errTap, maskFailed, touch);
    } else {
      relay(up, ch, outTap, tapFailed, touch);
      relay(up.stderr, ch.stderr, errTap, tapFailed, touch);
    }

    up.on('error', () => undefined);
    const ended = (r: Readable): Promise<void> => (r.readableEnded ? Promise.resolve() : new Promise((resolve) => r.once('end', resolve)));
    const closed = up.closed ? Promise.resolve() : new Promise<void>((resolve) => up.once('close', () => resolve()));
    void Promise.all([closed, ended(up), ended(up.stderr)]).then(() => this.#finish(this.#upExit));
  }

  #audit(ops: SftpOperation[]): void {
    const s = this.#host.session;
    if (!s || !this.#sftpDecision) return;
    for (const op of ops) {
      s.record({ type: 'statement', command: { kind: 'ssh', channel: 'sftp', command: describeSftp(op) }, decision: this.#sftpDecision });
    }
  }

  /** Sends the exit status (after the last output byte), EOF and CLOSE. Once. */
  async #finish(exit: { code?: number; signal?: string; dump?: boolean; desc?: string } | undefined): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#hold.abort('channel finished');
    this.#recording?.close();
    if (this.#sftp) this.#audit(this.#sftp.end());
    const ch = this.#ch;
    if (!ch) return;
    // Input nobody reads any more is discarded (and lets the stream end).
    if (!this.#up) ch.resume();
    await drained(ch, this.#closed);
    await drained(ch.stderr, this.#closed);
    if (ch.writable && exit) {
      try {
        if (exit.code !== undefined) ch.exit(exit.code);
        else if (exit.signal) ch.exit(exit.signal, exit.dump ?? false, exit.desc ?? '');
      } catch {
        // A signal name RFC 4254 does not list: say so with a status instead.
        ch.exit(EXIT_GATEWAY);
      }
    }
    ch.stderr.end();
    ch.end();
  }

  /** Ends a running channel from the gateway's side (session end, shutdown) with a message. */
  async terminate(message: string): Promise<void> {
    this.#hold.abort(message);
    if (this.#finished) return;
    this.#say(`${this.#pty ? '\r\n' : ''}gatehouse: ${message}`);
    const up = this.#up;
    if (up) {
      try {
        up.signal('TERM');
      } catch {
        // ignore
      }
      up.close();
    }
    await this.#finish({ code: EXIT_GATEWAY });
  }

  #onClientClose(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#closedResolve();
    this.#hold.abort('the client closed the channel');
    if (this.#up) this.#up.close();
    this.#recording?.close();
    if (this.#sftp && !this.#finished) this.#audit(this.#sftp.end());
    this.#finished = true;
    this.#host.channelClosed(this);
  }

  get kind(): Kind | undefined {
    return this.#kind;
  }
}
