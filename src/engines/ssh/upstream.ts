/**
 * Gatehouse's own SSH connection to the target (RFC 4253 transport, RFC 4252 public key or password
 * authentication), with the connection's key from `private_key` (or a password in the target URL).
 * The target's host key must be pinned in the connection's `known_hosts` (see ./known-hosts.ts):
 * a connection without one, or a target presenting another key, is refused before authentication.
 */
import { readFile } from 'node:fs/promises';
import ssh2, { type AuthMethod, type ConnectConfig, type PasswordAuthMethod, type PublicKeyAuthMethod } from 'ssh2';
import { GatehouseError } from '../../core/errors.js';
import type { Connection } from '../../core/sessions/types.js';
import { hostKeyAlgorithms, parseKnownHosts, verifyHostKey, type HostKeyVerdict, type KnownHostEntry } from './known-hosts.js';
import { parsePrivateKey } from './host-key.js';

/** Host key algorithms ssh2 can verify. */
const SUPPORTED_HOST_KEY_ALGOS = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  password?: string;
}

/** Reads `ssh://user[:password]@host[:port]`. */
export function parseSshTarget(target: string): SshTarget {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    throw new GatehouseError('ERR_CONFIG', 'the ssh connection target is not a URL (expected ssh://user@host:port)');
  }
  if (u.protocol !== 'ssh:' || u.username === '' || u.hostname === '') {
    throw new GatehouseError('ERR_CONFIG', 'expected an ssh connection target ssh://user@host[:port]');
  }
  const host = u.hostname.startsWith('[') && u.hostname.endsWith(']') ? u.hostname.slice(1, -1) : u.hostname;
  return {
    host,
    port: u.port === '' ? 22 : Number(u.port),
    username: decodeURIComponent(u.username),
    ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
  };
}

/** What the engine keeps per connection: target, pinned keys, credentials (read once, re-read on change). */
export interface UpstreamProfile {
  name: string;
  target: SshTarget;
  knownHosts: KnownHostEntry[];
  privateKey?: Buffer;
}

/** Loads a connection's target, known_hosts and key. Throws ERR_UPSTREAM with a message for the agent. */
export async function loadProfile(conn: Connection): Promise<UpstreamProfile> {
  const target = parseSshTarget(conn.target);
  const khPath = typeof conn.options.knownHosts === 'string' ? conn.options.knownHosts : undefined;
  if (khPath === undefined) {
    throw new GatehouseError('ERR_UPSTREAM', `connection "${conn.name}" has no known_hosts entry for its target: Gatehouse never trusts a target's host key on first use; an administrator must pin it (known_hosts in the connection)`);
  }
  let text: string;
  try {
    text = await readFile(khPath, 'utf8');
  } catch (e) {
    throw new GatehouseError('ERR_UPSTREAM', `the known_hosts file of connection "${conn.name}" cannot be read`, { detail: `${khPath}: ${(e as Error).message}` });
  }
  const { entries, errors } = parseKnownHosts(text);
  if (errors.length > 0 && entries.length === 0) {
    throw new GatehouseError('ERR_UPSTREAM', `the known_hosts file of connection "${conn.name}" holds no usable entry`, { detail: `${khPath}: ${errors.join('; ')}` });
  }
  if (hostKeyAlgorithms(entries, target.host, target.port).filter((a) => SUPPORTED_HOST_KEY_ALGOS.has(a)).length === 0) {
    throw new GatehouseError('ERR_UPSTREAM', `the known_hosts of connection "${conn.name}" pins no host key for its target ${target.port === 22 ? target.host : `[${target.host}]:${target.port}`}: Gatehouse never trusts a target's host key on first use`);
  }
  const keyPath = typeof conn.options.privateKey === 'string' ? conn.options.privateKey : undefined;
  let privateKey: Buffer | undefined;
  if (keyPath !== undefined) {
    try {
      privateKey = await readFile(keyPath);
    } catch (e) {
      throw new GatehouseError('ERR_UPSTREAM', `the private key of connection "${conn.name}" cannot be read`, { detail: `${keyPath}: ${(e as Error).message}` });
    }
    try {
      parsePrivateKey(privateKey, keyPath, 'the private key');
    } catch (e) {
      throw new GatehouseError('ERR_UPSTREAM', `the private key of connection "${conn.name}" cannot be used`, { detail: (e as Error).message });
    }
  } else if (target.password === undefined) {
    throw new GatehouseError('ERR_UPSTREAM', `connection "${conn.name}" has neither a private_key nor a password for its target`);
  }
  return { name: conn.name, target, knownHosts: entries, ...(privateKey ? { privateKey } : {}) };
}

export interface UpstreamOptions {
  /** Handshake + authentication timeout, ms. */
  readyTimeoutMs?: number;
  /** Agent forwarding: the agent the target's `auth-agent@openssh.com` channels are relayed to. */
  agent?: ssh2.BaseAgent;
  debug?: (msg: string) => void;
}

function describeVerdict(name: string, t: SshTarget, v: Extract<HostKeyVerdict, { ok: false }>): GatehouseError {
  const where = t.port === 22 ? t.host : `[${t.host}]:${t.port}`;
  if (v.why === 'revoked') {
    return new GatehouseError('ERR_UPSTREAM', `the target of connection "${name}" presented a revoked host key (${v.presented}); refusing to connect`);
  }
  return new GatehouseError(
    'ERR_UPSTREAM',
    `the target of connection "${name}" (${where}) presented host key ${v.presented}, which does not match the key pinned in its known_hosts (${v.pinned.join(', ') || 'none'}); refusing to connect: the target may have been replaced or the connection intercepted`,
  );
}

/** Opens and authenticates Gatehouse's SSH connection to the target. */
export function connectUpstream(p: UpstreamProfile, o: UpstreamOptions = {}): Promise<ssh2.Client> {
  const t = p.target;
  const algos = hostKeyAlgorithms(p.knownHosts, t.host, t.port).filter((a) => SUPPORTED_HOST_KEY_ALGOS.has(a));
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let verdict: HostKeyVerdict | undefined;
    let settled = false;
    const fail = (e: GatehouseError): void => {
      if (settled) return;
      settled = true;
      client.removeAllListeners('ready');
      client.on('error', () => undefined);
      client.end();
      reject(e);
    };
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      client.removeListener('error', onError);
      client.on('error', () => undefined);
      resolve(client);
    });
    const onError = (err: Error & { level?: string }): void => {
      if (verdict && !verdict.ok) return fail(describeVerdict(p.name, t, verdict));
      const where = `${t.host}:${t.port}`;
      if (err.level === 'client-authentication') {
        return fail(new GatehouseError('ERR_UPSTREAM', `the target of connection "${p.name}" refused Gatehouse's credentials`, { detail: `${where}: ${err.message}` }));
      }
      if (err.level === 'client-timeout') {
        return fail(new GatehouseError('ERR_UPSTREAM', `the target of connection "${p.name}" did not answer in time`, { detail: `${where}: ${err.message}` }));
      }
      fail(new GatehouseError('ERR_UPSTREAM', `cannot reach the target of connection "${p.name}"`, { detail: `${where}: ${err.message}` }));
    };
    client.on('error', onError);
    client.once('close', () => fail(new GatehouseError('ERR_UPSTREAM', `the target of connection "${p.name}" closed the connection during the handshake`)));
    const methods: AuthMethod[] = [];
    if (p.privateKey) methods.push({ type: 'publickey', username: t.username, key: p.privateKey } as PublicKeyAuthMethod);
    if (t.password !== undefined) methods.push({ type: 'password', username: t.username, password: t.password } as PasswordAuthMethod);
    const cfg: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.username,
      readyTimeout: o.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 30_000,
      keepaliveCountMax: 4,
      algorithms: { serverHostKey: algos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
      hostVerifier: (key: Buffer): boolean => {
        verdict = verifyHostKey(p.knownHosts, t.host, t.port, key);
        return verdict.ok;
      },
      ...(p.privateKey ? { privateKey: p.privateKey } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
      authHandler: methods,
      ...(o.agent ? { agent: o.agent } : {}),
      ...(o.debug ? { debug: o.debug } : {}),
    };
    try {
      client.connect(cfg);
    } catch (e) {
      fail(new GatehouseError('ERR_UPSTREAM', `cannot connect to the target of connection "${p.name}"`, { detail: (e as Error).message }));
    }
  });
}
