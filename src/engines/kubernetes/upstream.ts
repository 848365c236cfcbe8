/**
 * The API server behind a Kubernetes connection: its address, the TLS Gatehouse verifies it with
 * (the connection's `tls.ca` pins the CA: only that CA is trusted) and the credentials Gatehouse
 * presents (the connection's bearer `token`, or a client certificate `tls.cert`/`tls.key`).
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { GatehouseError } from '../../core/errors.js';
import type { Connection } from '../../core/sessions/types.js';
import type { ImpersonateOption } from './headers.js';

export interface UpstreamTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
}

export interface KubeUpstream {
  connection: string;
  secure: boolean;
  host: string;
  port: number;
  /** Path prefix of the target URL (`""` or `/prefix`, no trailing slash). */
  basePath: string;
  /** TLS options for `https.request` / `ws` (client certificate included). */
  tls: UpstreamTls;
  /** A keep-alive agent for plain requests. */
  agent: HttpAgent | HttpsAgent;
  /** `Authorization` toward the API server, when the connection has a token. */
  authorization?: string;
  impersonate?: ImpersonateOption;
}

function readPem(path: unknown, what: string, conn: string): Buffer | undefined {
  if (path === undefined) return undefined;
  if (typeof path !== 'string') throw new GatehouseError('ERR_CONFIG', `connection "${conn}": tls.${what} must be a file path`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new GatehouseError('ERR_CONFIG', `connection "${conn}": cannot read tls.${what} (${path}): ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Resolves a `kubernetes` connection (reads its certificate files). Throws `ERR_CONFIG`. */
export function kubeUpstream(conn: Connection): KubeUpstream {
  let url: URL;
  try {
    url = new URL(conn.target);
  } catch {
    throw new GatehouseError('ERR_CONFIG', `connection "${conn.name}": target is not a URL`);
  }
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') throw new GatehouseError('ERR_CONFIG', `connection "${conn.name}": target must be https://…`);
  const o = conn.options;
  const t = (o.tls ?? {}) as Record<string, unknown>;
  const tls: UpstreamTls = { rejectUnauthorized: t.rejectUnauthorized !== false };
  const ca = readPem(t.ca, 'ca', conn.name);
  const cert = readPem(t.cert, 'cert', conn.name);
  const key = readPem(t.key, 'key', conn.name);
  if ((cert === undefined) !== (key === undefined)) throw new GatehouseError('ERR_CONFIG', `connection "${conn.name}": tls.cert and tls.key go together`);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (typeof t.servername === 'string') tls.servername = t.servername;
  // no cap on sockets: every watch and `logs -f` holds one for as long as it runs
  const agentOpts = { keepAlive: true, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent = secure ? new HttpsAgent({ ...agentOpts, ...tls }) : new HttpAgent(agentOpts);
  const up: KubeUpstream = {
    connection: conn.name,
    secure,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    basePath: url.pathname.replace(/\/+$/, ''),
    tls,
    agent,
  };
  if (typeof o.token === 'string' && o.token !== '') up.authorization = `Bearer ${o.token}`;
  const imp = o.impersonate as { user?: unknown; groups?: unknown } | undefined;
  if (imp !== undefined) {
    up.impersonate = { groups: Array.isArray(imp.groups) ? imp.groups.map(String) : [] };
    if (typeof imp.user === 'string') up.impersonate.user = imp.user;
  }
  return up;
}
