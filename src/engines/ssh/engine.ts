/**
 * The SSH engine: Gatehouse as an SSH server toward the agent and an SSH client toward the target,
 * both on the `ssh2` package (the protocol architecture of RFC 4251 on both sides).
 *
 * - Transport (RFC 4253): the gateway's own host key (./host-key.ts), generated on first start and
 *   logged with its SHA256 fingerprint. The target's host key must match the one pinned in the
 *   connection's known_hosts (./known-hosts.ts, ./upstream.ts) — never trust on first use.
 * - Authentication (RFC 4252, RFC 4256): the SSH user name is the Gatehouse connection name; the
 *   agent's OIDC access token is the password (`password` method) or the answer to the one
 *   `keyboard-interactive` prompt. `none`, `publickey` and `hostbased` are refused (a key cannot
 *   carry a token). A bad token fails authentication; a valid token whose session is refused
 *   (no policy, no grant, unknown connection) is let in only to be told why on its first channel.
 * - Connection protocol (RFC 4254): session channels (./session-channel.ts: exec, shell with pty,
 *   subsystems — sftp audited per draft-ietf-secsh-filexfer-02 — env allow-list, signals, exit
 *   status), port and agent forwarding (./forwarding.ts), all decided by the core's policy.
 * - The session ends at token expiry, grant end, revocation, kill or idle timeout: every channel
 *   gets a `gatehouse: session ended: …` line on stderr and exit status 255, then the connection
 *   is closed.
 */
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { AuthContext, ClientInfo, Connection as ServerConnection } from 'ssh2';
import { GatehouseError, toGatehouseError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { Connection, SessionContext } from '../../core/sessions/types.js';
import { bind } from '../listener.js';
import type { Engine, EngineContext, EngineListener } from '../types.js';
import { Forwarding, ForwardingAgent } from './forwarding.js';
import { loadOrCreateHostKey, tooOpen } from './host-key.js';
import { SessionChannel, type ChannelHost } from './session-channel.js';
import { connectUpstream, loadProfile } from './upstream.js';

/** The one keyboard-interactive prompt (`sshpass` looks for "assword:"). */
export const TOKEN_PROMPT = 'Access token password: ';
/** Failed token attempts before the connection is dropped. */
const MAX_AUTH_ATTEMPTS = 5;
/** How long a connection may take to authenticate. */
const LOGIN_TIMEOUT_MS = 60_000;
/** A refused connection that opens no channel is closed after this long. */
const REFUSED_GRACE_MS = 10_000;
/** How long the agent's client gets to close its channels before the gateway disconnects. */
const CLOSE_GRACE_MS = 2_000;

const AUTH_METHODS: ('keyboard-interactive' | 'password')[] = ['keyboard-interactive', 'password'];

/** The default host key location: `<data dir>/ssh_host_ed25519_key`. */
export function defaultHostKeyPath(dataDir: string): string {
  return join(dataDir, 'ssh_host_ed25519_key');
}

/** One agent's SSH connection to the gateway. */
class GatewayConnection implements ChannelHost {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly allowEnv: ReadonlySet<string>;
  readonly client: ServerConnection;
  session: SessionContext | undefined;
  refusal: GatehouseError | undefined;
  readonly #ctx: EngineContext;
  readonly #remote: string | undefined;
  readonly #channels = new Set<SessionChannel>();
  readonly #forwarding: Forwarding;
  readonly #onGone: (c: GatewayConnection) => void;
  #upstream: Promise<ssh2.Client> | undefined;
  #upClient: ssh2.Client | undefined;
  #failures = 0;
  #agentAllowed = false;
  #idle: NodeJS.Timeout | undefined;
  #idleMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #ending = false;
  #gone = false;
  #counted = false;

  constructor(ctx: EngineContext, client: ServerConnection, info: ClientInfo, onGone: (c: GatewayConnection) => void) {
    this.#ctx = ctx;
    this.client = client;
    this.#remote = info.ip;
    this.#onGone = onGone;
    this.logger = ctx.logger.child({ protocol: 'ssh', remote: info.ip });
    this.metrics = ctx.metrics;
    this.allowEnv = new Set(ctx.config.ssh.allowEnv);
    this.#forwarding = new Forwarding(this);
    this.#timer = setTimeout(() => {
      if (!client.authenticated) this.#end('login timed out');
    }, LOGIN_TIMEOUT_MS).unref();

    client.on('error', (e: Error) => this.logger.debug({ err: e.message }, 'ssh client connection error'));
    client.on('authentication', (a: AuthContext) => void this.#auth(a));
    client.on('ready', () => this.#ready());
    client.on('session', (accept, reject) => {
      if (this.#ending) return reject();
      const s = accept();
      if (s) this.#channels.add(new SessionChannel(this, s));
    });
    client.on('tcpip', (accept, reject, info) => {
      if (this.refusal || !this.session || this.#ending) return reject();
      void this.#forwarding.onDirect(accept, reject, info);
    });
    client.on('request', (accept, reject, name, info) => {
      if (this.refusal || !this.session || this.#ending || !('bindPort' in info)) return reject?.();
      void this.#forwarding.onRequest(accept, reject, name, info);
    });
    client.on('openssh.streamlocal', (_accept, reject) => reject());
    client.on('close', () => void this.#closed());
  }

  // --- authentication ---------------------------------------------------------------------------

  async #auth(a: AuthContext): Promise<void> {
    let token: string | undefined;
    if (a.method === 'password') token = a.password;
    else if (a.method === 'keyboard-interactive') {
      token = await new Promise<string | undefined>((resolve) => {
        a.prompt([{ prompt: TOKEN_PROMPT, echo: false }], (answers: unknown) => resolve(Array.isArray(answers) && typeof answers[0] === 'string' ? answers[0] : undefined));
      });
    } else {
      a.reject(AUTH_METHODS);
      return;
    }
    if (token === undefined) {
      a.reject(AUTH_METHODS);
      return;
    }
    try {
      await this.#login(token.trim(), a.username);
      a.accept();
    } catch (e) {
      const err = toGatehouseError(e, 'ERR_TOKEN_INVALID');
      this.metrics.authFailures.inc({ protocol: 'ssh', code: err.code });
      this.logger.info({ err: err.toJSON(), connection: a.username }, 'ssh login refused');
      const last = ++this.#failures >= MAX_AUTH_ATTEMPTS;
      if (a.method === 'keyboard-interactive') {
        // An info request without prompts shows the agent why (RFC 4256 §3.2: name, instruction).
        a.prompt([], 'Gatehouse', `gatehouse: ${err.message} [${err.code}]`, () => a.reject(AUTH_METHODS));
      } else {
        a.reject(AUTH_METHODS);
      }
      if (last) setTimeout(() => this.#end('too many failed logins'), 100).unref();
    }
  }

  /** Verifies the token (throws: authentication fails) and opens the session (refusals are kept for the first channel). */
  async #login(token: string, name: string): Promise<void> {
    const ctx = this.#ctx;
    if (token === '') throw new GatehouseError('ERR_UNAUTHENTICATED', 'an OIDC access token is required as the password');
    const identity = await ctx.verifyToken(token);
    const conn = ctx.connection(name);
    if (conn === undefined || conn.type !== 'ssh') {
      this.refusal = new GatehouseError('ERR_UNKNOWN_CONNECTION', `connection "${name}" does not exist (the SSH user name is the Gatehouse connection name)`);
      return;
    }
    try {
      this.session = await ctx.sessions.open({ protocol: 'ssh', identity, connection: conn, ...(this.#remote ? { remoteAddr: this.#remote } : {}) });
    } catch (e) {
      const err = toGatehouseError(e);
      if (err.code.startsWith('ERR_TOKEN_')) throw err;
      this.refusal = err;
      return;
    }
    const s = this.session;
    if (this.#gone) {
      // The agent hung up while its login was checked.
      await s.close('client disconnected').catch(() => undefined);
      return;
    }
    this.#counted = true;
    this.metrics.sessionsTotal.inc({ protocol: 'ssh', connection: conn.name });
    this.metrics.sessionsActive.inc({ protocol: 'ssh' });
    s.ended.addEventListener('abort', () => void this.#sessionEnded(String(s.ended.reason ?? 'session ended')), { once: true });
    this.#idleMs = conn.options.idleTimeoutMs === undefined ? ctx.idleTimeoutMs : Number(conn.options.idleTimeoutMs);
    this.#upstream = this.#connect(conn);
  }

  #connect(conn: Connection): Promise<ssh2.Client> {
    const p = (async (): Promise<ssh2.Client> => {
      const profile = await loadProfile(conn);
      const up = await connectUpstream(profile, { agent: new ForwardingAgent(() => this.client, () => this.#agentAllowed) });
      if (this.#ending || this.#gone) {
        up.end();
        throw new GatehouseError('ERR_SESSION_ENDED', 'the session ended');
      }
      this.#upClient = up;
      up.on('close', () => {
        if (!this.#ending && !this.#gone) void this.#endAll('the target closed the connection', 'target closed the connection');
      });
      return up;
    })();
    p.catch((e: unknown) => {
      const err = toGatehouseError(e, 'ERR_UPSTREAM');
      if (err.code !== 'ERR_SESSION_ENDED') this.logger.warn({ err: err.toJSON(), connection: conn.name }, 'ssh target connection failed');
    });
    return p;
  }

  #ready(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.refusal) {
      this.logger.info({ err: this.refusal.toJSON() }, 'ssh session refused');
      this.metrics.authFailures.inc({ protocol: 'ssh', code: this.refusal.code });
      this.#timer = setTimeout(() => this.#end('refused'), REFUSED_GRACE_MS).unref();
      return;
    }
    this.touch();
  }

  // --- ChannelHost ------------------------------------------------------------------------------

  upstream(): Promise<ssh2.Client> {
    return this.#upstream ?? Promise.reject(this.refusal ?? new GatehouseError('ERR_UPSTREAM', 'no target connection'));
  }

  fatal(err: GatehouseError): void {
    void this.#endAll(err.message, err.code === 'ERR_UPSTREAM' ? `target connection failed: ${err.message}` : `refused: ${err.code}`);
  }

  touch(): void {
    if (this.#idleMs <= 0 || this.#ending) return;
    if (this.#idle) this.#idle.refresh();
    else this.#idle = setTimeout(() => void this.#idleTimeout(), this.#idleMs).unref();
  }

  agentAllowed(): boolean {
    return this.#agentAllowed;
  }

  enableAgent(): void {
    this.#agentAllowed = true;
  }

  channelClosed(c: SessionChannel): void {
    this.#channels.delete(c);
  }

  // --- ending -----------------------------------------------------------------------------------

  async #sessionEnded(reason: string): Promise<void> {
    this.session?.record({ type: 'note', message: `session ended: ${reason}` });
    await this.#endAll(`session ended: ${reason}`, reason);
  }

  async #idleTimeout(): Promise<void> {
    // The session's own `ended` signal carries the reason to every listener.
    if (this.session) await this.session.close('idle timeout').catch((e: unknown) => this.logger.error({ err: e }, 'ssh idle timeout: closing the session failed'));
    else this.#end('idle timeout');
  }

  /** Tells every channel why, ends them, closes the session and the connection. */
  async #endAll(message: string, reason: string): Promise<void> {
    if (this.#ending) return;
    this.#ending = true;
    await Promise.all([...this.#channels].map((c) => c.terminate(message).catch(() => undefined)));
    // The client must see the channels close before the disconnect: OpenSSH drops output it has
    // not written yet when the DISCONNECT arrives first.
    const deadline = Date.now() + CLOSE_GRACE_MS;
    while (this.#channels.size > 0 && !this.#gone && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.#end(reason);
  }

  #end(reason: string): void {
    this.#ending = true;
    if (this.#idle) clearTimeout(this.#idle);
    if (this.#timer) clearTimeout(this.#timer);
    this.#upClient?.end();
    void this.session?.close(reason).catch(() => undefined);
    try {
      this.client.end();
    } catch {
      // already gone
    }
  }

  /** Gateway shutdown. */
  async shutdown(): Promise<void> {
    await this.#endAll('gateway shutting down', 'gateway shutting down');
  }

  async #closed(): Promise<void> {
    if (this.#gone) return;
    this.#gone = true;
    if (this.#idle) clearTimeout(this.#idle);
    if (this.#timer) clearTimeout(this.#timer);
    this.#upClient?.end();
    this.#upstream?.then((u) => u.end()).catch(() => undefined);
    if (this.#counted) this.metrics.sessionsActive.dec({ protocol: 'ssh' });
    this.#onGone(this);
    await this.session?.close('client disconnected').catch(() => undefined);
  }
}

export class SshEngine implements Engine {
  readonly protocol = 'ssh' as const;
  readonly #ctx: EngineContext;
  readonly #live = new Set<GatewayConnection>();

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  async listen(host: string, port: number): Promise<EngineListener> {
    const ctx = this.#ctx;
    const path = ctx.config.ssh.hostKey ?? defaultHostKeyPath(ctx.dataDir);
    const hk = await loadOrCreateHostKey(path);
    if (hk.generated) ctx.logger.info({ path, fingerprint: hk.fingerprint, type: hk.type }, `generated the SSH host key ${path}: ${hk.type} ${hk.fingerprint}`);
    else if (await tooOpen(path)) ctx.logger.warn({ path }, 'the SSH host key file is readable by others; chmod 600 it');
    const server = new ssh2.Server({ hostKeys: [hk.key], ident: 'Gatehouse' }, (client, info) => {
      const c = new GatewayConnection(ctx, client, info, (gone) => this.#live.delete(gone));
      this.#live.add(c);
    });
    const address = await bind(server, host, port, ctx.logger, 'ssh');
    ctx.logger.info({ address: `${host}:${address.port}`, fingerprint: hk.fingerprint }, `ssh listener on ${host}:${address.port}, host key ${hk.type} ${hk.fingerprint}`);
    return {
      protocol: 'ssh',
      address,
      close: async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all([...this.#live].map((c) => c.shutdown()));
        await closed;
      },
    };
  }
}

/** The engine factory the composition root uses. */
export function sshEngine(ctx: EngineContext): Engine {
  return new SshEngine(ctx);
}
