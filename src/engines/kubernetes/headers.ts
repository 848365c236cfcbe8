/**
 * What the Kubernetes engine does to HTTP headers on their way to the API server and back.
 *
 * Toward the API server the agent's credentials (`Authorization`), any `Impersonate-*` header (the
 * engine refuses those before it gets here), Gatehouse's own `X-Gatehouse-*` headers and the
 * hop-by-hop headers of RFC 9110 §7.6.1 are removed; the connection's credentials and, when
 * configured, its impersonation headers are added. When the session's answers must be masked the
 * `Accept` header loses every media type Gatehouse cannot inspect (protobuf, YAML, CBOR) and
 * `Accept-Encoding` is dropped, so the API server answers in plain JSON or text.
 */
import type { Identity } from '../../core/identity/types.js';

/** RFC 9110 §7.6.1 connection-specific fields, and `host` (set from the target). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

/** Header names the agent may not send toward the API server (lower case). */
export function isImpersonationHeader(name: string): boolean {
  return name.toLowerCase().startsWith('impersonate-');
}

/** The `Impersonate-*` header names an agent sent, if any. */
export function impersonationHeaders(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    if (isImpersonationHeader(name)) out.push(name);
  }
  return out;
}

export interface ForwardHeaderOptions {
  /** The answer will be masked: ask for JSON, uncompressed. */
  masking: boolean;
  /** Keep `Upgrade`/`Connection` and the WebSocket handshake fields (a raw upgrade relay). */
  upgrade?: 'raw' | 'websocket';
}

export type HeaderMap = Record<string, string | string[]>;

function add(out: HeaderMap, name: string, value: string): void {
  const cur = out[name];
  if (cur === undefined) out[name] = value;
  else if (Array.isArray(cur)) cur.push(value);
  else out[name] = [cur, value];
}

/**
 * The agent's request headers as they may go to the API server (lower-cased names, repeated headers
 * kept apart). Credentials and impersonation are added by {@link credentialHeaders}.
 */
export function forwardHeaders(rawHeaders: readonly string[], opts: ForwardHeaderOptions): HeaderMap {
  const connectionTokens = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? '').toLowerCase() === 'connection') {
      for (const t of (rawHeaders[i + 1] ?? '').split(',')) connectionTokens.add(t.trim().toLowerCase());
    }
  }
  const out: HeaderMap = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    const value = rawHeaders[i + 1] ?? '';
    if (name === 'authorization' || isImpersonationHeader(name) || name.startsWith('x-gatehouse-')) continue;
    if (name.startsWith('sec-websocket-') && opts.upgrade !== 'raw') continue;
    if (opts.upgrade === 'raw' && (name === 'upgrade' || name === 'connection')) {
      add(out, name, value);
      continue;
    }
    if (HOP_BY_HOP.has(name) || (connectionTokens.has(name) && opts.upgrade !== 'raw')) continue;
    if (opts.masking && name === 'accept-encoding') continue;
    if (opts.masking && name === 'accept') {
      add(out, name, jsonAccept(value));
      continue;
    }
    add(out, name, value);
  }
  if (opts.masking && out.accept === undefined) out.accept = 'application/json';
  return out;
}

/** Media types Gatehouse can inspect for masking. */
export function isInspectableMediaType(type: string): boolean {
  return type === 'application/json' || type === '*/*' || type === 'application/*' || type.startsWith('text/');
}

/**
 * An `Accept` value with the media types Gatehouse cannot mask removed: `application/vnd.kubernetes.protobuf`
 * (also `;as=Table`), `application/yaml`, `application/cbor`, … If nothing inspectable is left,
 * `application/json`.
 */
export function jsonAccept(accept: string): string {
  const kept = accept
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '' && isInspectableMediaType((x.split(';')[0] ?? '').trim().toLowerCase()));
  return kept.length === 0 ? 'application/json' : kept.join(',');
}

/** A media type and its parameters (`application/json;as=Table;v=v1;g=meta.k8s.io`). */
export function parseMediaType(value: string | undefined): { type: string; params: Record<string, string> } {
  const [type = '', ...ps] = (value ?? '').split(';').map((x) => x.trim());
  const params: Record<string, string> = {};
  for (const p of ps) {
    const eq = p.indexOf('=');
    if (eq > 0) params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim().replace(/^"|"$/g, '');
  }
  return { type: type.toLowerCase(), params };
}

/** The connection's `impersonate:` option. */
export interface ImpersonateOption {
  /** Template: `{sub}`, `{client_id}`, `{iss}` are replaced; default `{sub}`. */
  user?: string;
  /** Literal groups; `{groups}` expands to the token's groups. */
  groups: string[];
}

function template(t: string, id: Identity): string {
  return t.replace(/\{(sub|client_id|iss)\}/g, (_m, k: string) => (k === 'sub' ? id.subject : k === 'client_id' ? (id.clientId ?? id.subject) : id.issuer));
}

/** `Impersonate-User` / `Impersonate-Group` naming an agent (the Kubernetes impersonation headers). */
export function impersonationFor(opt: ImpersonateOption, id: Identity): HeaderMap {
  const user = template(opt.user ?? '{sub}', id);
  const groups: string[] = [];
  for (const g of opt.groups) {
    if (g === '{groups}') groups.push(...id.groups);
    else groups.push(template(g, id));
  }
  const out: HeaderMap = { 'impersonate-user': user };
  const uniq = [...new Set(groups.filter((g) => g !== ''))];
  if (uniq.length > 0) out['impersonate-group'] = uniq;
  return out;
}

/** Response headers from the API server that must not be copied to the agent as they are. */
export function responseHeaders(rawHeaders: readonly string[], drop: ReadonlySet<string>): HeaderMap {
  const out: HeaderMap = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    if (HOP_BY_HOP.has(name) || drop.has(name)) continue;
    add(out, name, rawHeaders[i + 1] ?? '');
  }
  return out;
}
