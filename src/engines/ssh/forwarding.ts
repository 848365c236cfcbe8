/**
 * Port forwarding (RFC 4254 §7) and agent forwarding (OpenSSH PROTOCOL, `auth-agent@openssh.com`)
 * through Gatehouse, refused unless a policy rule allows channel `forward` / `agent`.
 *
 * - Local forwarding (`ssh -L`, a `direct-tcpip` channel, §7.2) is decided as
 *   `{ channel: 'forward', command: 'direct-tcpip <host>:<port>' }` and opened from the target.
 * - Remote forwarding (`ssh -R`, the `tcpip-forward` global request, §7.1) is decided as
 *   `{ channel: 'forward', command: 'tcpip-forward <address>:<port>' }`; the target's
 *   `forwarded-tcpip` channels are relayed back to the agent.
 * - Agent forwarding: the target's `auth-agent@openssh.com` channels are relayed to the agent's
 *   client, for connections where a session channel's `auth-agent-req` was allowed.
 * A `review` decision refuses a forward: a channel open cannot wait for an approver.
 */
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Connection as ServerConnection, ServerChannel, TcpipBindInfo, TcpipRequestInfo } from 'ssh2';
import type { SshCommand } from '../../core/command.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { CommandDecision } from '../../core/policy/types.js';
import type { SessionContext } from '../../core/sessions/types.js';

export interface ForwardHost {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly session: SessionContext | undefined;
  readonly client: ServerConnection;
  upstream(): Promise<ssh2.Client>;
  touch(): void;
}

function pipeBoth(a: Duplex, b: Duplex, touch: () => void): void {
  a.on('data', touch);
  b.on('data', touch);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.pipe(b).pipe(a);
}

/** Decides a forward; a review cannot be held here, so it is refused. */
async function decide(host: ForwardHost, cmd: SshCommand): Promise<boolean> {
  const s = host.session;
  if (!s) return false;
  let d: CommandDecision = await s.authorize(cmd);
  if (d.effect === 'review') d = { effect: 'deny', rule: d.rule, reason: `${cmd.channel} channels cannot wait for a review`, code: 'ERR_ACCESS_DENIED' };
  host.metrics.commandsTotal.inc({ protocol: 'ssh', effect: d.effect });
  s.record({ type: 'statement', command: cmd, decision: d });
  return d.effect === 'allow';
}

export class Forwarding {
  readonly #host: ForwardHost;
  /** Remote forwards the target listens on for this agent: `addr:port`. */
  readonly #bound = new Set<string>();
  #listening = false;

  constructor(host: ForwardHost) {
    this.#host = host;
  }

  /** `direct-tcpip`: the agent asks the target side to connect somewhere. */
  async onDirect(accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): Promise<void> {
    const host = this.#host;
    try {
      if (!(await decide(host, { kind: 'ssh', channel: 'forward', command: `direct-tcpip ${info.destIP}:${info.destPort}` }))) return reject();
      const up = await host.upstream();
      up.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, stream) => {
        if (err) {
          host.logger.info({ err: err.message }, 'ssh direct-tcpip refused by the target');
          return reject();
        }
        const ch = accept();
        if (!ch) return stream.close();
        pipeBoth(ch, stream, () => host.touch());
      });
    } catch (e) {
      host.logger.info({ err: e }, 'ssh direct-tcpip failed');
      reject();
    }
  }

  /** `tcpip-forward` / `cancel-tcpip-forward` global requests. */
  async onRequest(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: TcpipBindInfo): Promise<void> {
    const host = this.#host;
    try {
      if (name === 'cancel-tcpip-forward') {
        const key = `${info.bindAddr}:${info.bindPort}`;
        if (!this.#bound.has(key)) return reject?.();
        const up = await host.upstream();
        up.unforwardIn(info.bindAddr, info.bindPort, (err) => {
          if (err) return reject?.();
          this.#bound.delete(key);
          accept?.();
        });
        return;
      }
      if (name !== 'tcpip-forward') return reject?.();
      if (!(await decide(host, { kind: 'ssh', channel: 'forward', command: `tcpip-forward ${info.bindAddr}:${info.bindPort}` }))) return reject?.();
      const up = await host.upstream();
      this.#listen(up);
      up.forwardIn(info.bindAddr, info.bindPort, (err, port) => {
        if (err) {
          host.logger.info({ err: err.message }, 'ssh tcpip-forward refused by the target');
          return reject?.();
        }
        const bound = info.bindPort === 0 ? port : info.bindPort;
        this.#bound.add(`${info.bindAddr}:${bound}`);
        accept?.(bound);
      });
    } catch (e) {
      host.logger.info({ err: e }, 'ssh tcpip-forward failed');
      reject?.();
    }
  }

  #listen(up: ssh2.Client): void {
    if (this.#listening) return;
    this.#listening = true;
    up.on('tcp connection', (details, accept, reject) => {
      if (!this.#bound.has(`${details.destIP}:${details.destPort}`)) return reject();
      this.#host.client.forwardOut(details.destIP, details.destPort, details.srcIP, details.srcPort, (err, ch) => {
        if (err) return reject();
        const stream = accept();
        pipeBoth(stream, ch, () => this.#host.touch());
      });
    });
  }
}

const MAX_WINDOW = 2 * 1024 * 1024;
const PACKET_SIZE = 32 * 1024;

/** What the agent forwarding relay needs of ssh2's server-side connection (not public API). */
interface ServerInternals {
  _chanMgr?: { add(v: unknown): number };
  _protocol?: { openssh_authAgent?(chan: number, window: number, packet: number): void };
}

/**
 * The agent Gatehouse hands its own client connection to the target: ssh2 asks it for a stream
 * when the target opens an `auth-agent@openssh.com` channel, and it opens one toward the agent's
 * client — only while `allowed()` (a channel's agent forwarding was allowed by policy).
 *
 * ssh2's server has no public call to open that channel; this uses its channel manager and
 * protocol objects the same way its own `forwardOut` does, and fails closed if they change.
 */
export class ForwardingAgent extends ssh2.BaseAgent {
  readonly #client: () => ServerConnection | undefined;
  readonly #allowed: () => boolean;

  constructor(client: () => ServerConnection | undefined, allowed: () => boolean) {
    super();
    this.#client = client;
    this.#allowed = allowed;
  }

  override getIdentities(cb: (err: Error | undefined, keys?: ssh2.ParsedKey[]) => void): void {
    cb(new Error('the forwarding agent does not authenticate Gatehouse'));
  }

  override sign(_pubKey: unknown, _data: Buffer, ...rest: unknown[]): void {
    const cb = rest.find((r): r is (err?: Error) => void => typeof r === 'function');
    cb?.(new Error('the forwarding agent does not authenticate Gatehouse'));
  }

  override getStream(cb: (err: Error | undefined, stream?: Duplex) => void): void {
    const client = this.#client() as (ServerConnection & ServerInternals) | undefined;
    const mgr = client?._chanMgr;
    const proto = client?._protocol;
    if (!this.#allowed() || !client || !mgr || typeof proto?.openssh_authAgent !== 'function') {
      cb(new Error('agent forwarding is not allowed for this session'));
      return;
    }
    const wrapper = Object.assign((err: Error | undefined, stream?: Duplex) => cb(err, stream), { type: 'auth-agent@openssh.com' });
    const id = mgr.add(wrapper);
    if (id === -1) {
      cb(new Error('no free channels'));
      return;
    }
    proto.openssh_authAgent(id, MAX_WINDOW, PACKET_SIZE);
  }
}
