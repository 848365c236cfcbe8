/**
 * Request attributes of a Kubernetes API request, derived exactly the way the API server's
 * `RequestInfoFactory` does (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go, with the
 * default `APIPrefixes` {api, apis} and `GrouplessAPIPrefixes` {api}). The API server authorizes on
 * these attributes, so Gatehouse must see the same verb, group, resource, subresource, namespace and
 * name for the same bytes, or a policy could allow what it meant to refuse.
 *
 * The path is percent-decoded the way Go's `net/url` decodes it for `http.Request.URL.Path` (so
 * `%2F` is a separator, as upstream), and the query is parsed as Go's `url.ParseQuery` does.
 *
 * ```ts
 * const info = parseRequestInfo('GET', '/api/v1/namespaces/prod/pods/web-0/exec?command=sh');
 * // { isResourceRequest: true, verb: 'get', apiGroup: '', apiVersion: 'v1', resource: 'pods',
 * //   subresource: 'exec', namespace: 'prod', name: 'web-0', path: '/api/v1/namespaces/prod/pods/web-0/exec', … }
 * const cmd = toK8sCommand(info); // { kind: 'k8s', verb: 'get', group: '', resource: 'pods', subresource: 'exec', … }
 * ```
 */
import type { K8sCommand } from '../../core/command.js';
import { GatehouseError } from '../../core/errors.js';
import { SelectorError, parseFieldSelector, parseGoInt64, parseLabelSelector } from './selectors.js';

/** What the API server's authorizer sees of a request (`request.RequestInfo`). */
export interface RequestInfo {
  /** `/api/v1/…`, `/apis/<group>/<version>/…` with a resource; false for discovery, `/version`, `/healthz`, … */
  isResourceRequest: boolean;
  /**
   * For resource requests `get list watch create update patch delete deletecollection proxy` (or `""`
   * for other HTTP methods); for non-resource requests the lower-cased HTTP method (`get`, `post`, …).
   * `exec`, `attach` and `portforward` are `create` (POST, SPDY) or `get` (GET, WebSocket upgrade) on
   * the subresource of that name, exactly as the API server reports them.
   */
  verb: string;
  /** `api` or `apis` (empty for non-resource requests). */
  apiPrefix: string;
  /** `""` for the legacy core group. */
  apiGroup: string;
  apiVersion: string;
  /** `""` for cluster-scoped requests; for `/api/v1/namespaces/<ns>` the namespace itself. */
  namespace: string;
  resource: string;
  /** `status`, `scale`, `log`, `exec`, `attach`, `portforward`, `proxy`, `eviction`, … or `""`. */
  subresource: string;
  /** From the path, or for list/watch from `fieldSelector=metadata.name=<name>`. */
  name: string;
  /** The decoded URL path (Go's `URL.Path`). */
  path: string;
  /** The path parts after prefix, group, version, special verb and namespace: `[resource, name, subresource, …]`. */
  parts: string[];
  /** The raw `fieldSelector` of a list, watch or deletecollection (authorization with selectors). */
  fieldSelector?: string;
  /** The raw `labelSelector` of a list, watch or deletecollection. */
  labelSelector?: string;
}

const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
const VERBS_WITH_SELECTORS = new Set(['list', 'watch', 'deletecollection']);
const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_API_PREFIXES = new Set(['api']);

const badRequest = (message: string, detail?: string): GatehouseError =>
  new GatehouseError('ERR_BAD_REQUEST', message, detail === undefined ? {} : { detail });

const HEX = /^[0-9a-fA-F]{2}$/;

/** Go's `unescape`: `%XX` must be two hex digits; in query mode `+` is a space. Returns bytes. */
function unescapeBytes(s: string, query: boolean): Buffer | undefined {
  if (!s.includes('%') && !(query && s.includes('+'))) return Buffer.from(s, 'utf8');
  const out: number[] = [];
  const src = Buffer.from(s, 'utf8');
  for (let i = 0; i < src.length; i++) {
    const b = src[i] ?? 0;
    if (b === 0x25) {
      const hex = src.subarray(i + 1, i + 3).toString('latin1');
      if (!HEX.test(hex)) return undefined;
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (query && b === 0x2b) out.push(0x20);
    else out.push(b);
  }
  return Buffer.from(out);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A query as Go's `url.ParseQuery` reads it (pairs with `;` or bad escapes are dropped). */
export function parseGoQuery(rawQuery: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const pair of rawQuery.split('&')) {
    if (pair === '' || pair.includes(';')) continue;
    const eq = pair.indexOf('=');
    const k = unescapeBytes(eq === -1 ? pair : pair.slice(0, eq), true);
    const v = unescapeBytes(eq === -1 ? '' : pair.slice(eq + 1), true);
    if (k === undefined || v === undefined) continue;
    const key = k.toString('utf8');
    const list = m.get(key);
    if (list) list.push(v.toString('utf8'));
    else m.set(key, [v.toString('utf8')]);
  }
  return m;
}

/**
 * Splits a request target (origin form `/path?query`, or absolute form) into the decoded path and
 * the parsed query, refusing what Go's HTTP server refuses with 400 (control characters, bad
 * percent-escapes) and paths that are not valid UTF-8 once decoded.
 */
export function splitRequestTarget(target: string, opts: ParseOptions = {}): { path: string; rawPath: string; rawQuery: string; query: Map<string, string[]> } {
  if (/[\x00-\x1f\x7f]/.test(target)) throw badRequest('invalid request URL', 'control character in the request target');
  let rest = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?]*/.exec(rest);
  if (abs) rest = rest.slice(abs[0].length);
  else if (!rest.startsWith('/')) throw badRequest('invalid request URL', 'the request target is not an absolute path');
  const q = rest.indexOf('?');
  const rawPath = q === -1 ? rest : rest.slice(0, q);
  const rawQuery = q === -1 ? '' : rest.slice(q + 1);
  const bytes = unescapeBytes(rawPath, false);
  if (bytes === undefined) throw badRequest('invalid request URL', 'invalid percent-escape in the path');
  let path: string;
  try {
    path = utf8.decode(bytes);
  } catch {
    throw badRequest('invalid request URL', 'the decoded path is not UTF-8');
  }
  if (opts.strict ?? true) {
    const why = ambiguousPath(rawPath, path);
    if (why !== undefined) throw badRequest('invalid request URL', why);
  }
  return { path, rawPath, rawQuery, query: parseGoQuery(rawQuery) };
}

export interface ParseOptions {
  /**
   * Refuse request targets that other URL parsers read differently from Go (default true): dot
   * segments (`..`, `%2e%2e`), empty segments (`//`), backslashes and encoded slashes (`%2F`).
   * WHATWG `new URL()` resolves `..` and treats `\` as `/`, so such a path could be authorized as
   * one resource and served as another; no Kubernetes client sends them.
   */
  strict?: boolean;
}

function ambiguousPath(rawPath: string, path: string): string | undefined {
  if (rawPath.includes('\\') || path.includes('\\')) return 'backslash in the path';
  if (/%2f/i.test(rawPath)) return 'encoded slash in the path';
  const segs = path.split('/').slice(1);
  if (segs.length > 0 && segs[segs.length - 1] === '') segs.pop();
  if (segs.some((x) => x === '')) return 'empty path segment';
  if (segs.some((x) => x === '.' || x === '..')) return 'dot segment in the path';
  return undefined;
}

function splitPath(path: string): string[] {
  const p = path.replace(/^\/+/, '').replace(/\/+$/, '');
  return p === '' ? [] : p.split('/');
}

/** `Convert_Slice_string_To_bool`: absent, `0` and `false` (any case) are false, anything else true. */
function queryBool(values: string[] | undefined): boolean {
  if (values === undefined || values.length === 0) return false;
  const v = values[0] ?? '';
  return !(v === '0' || v.toLowerCase() === 'false');
}

/**
 * `ParameterCodec.DecodeParameters` into `ListOptions`: fails when a selector does not parse or an
 * integer parameter is not an int64. On failure upstream falls back to "list or watch, no name".
 */
function decodeListOptions(query: Map<string, string[]>): { ok: true; watch: boolean; fieldSelector?: string } | { ok: false } {
  const first = (k: string): string | undefined => query.get(k)?.[0];
  try {
    const ls = first('labelSelector');
    if (ls !== undefined) parseLabelSelector(ls);
    const fs = first('fieldSelector');
    if (fs !== undefined) parseFieldSelector(fs);
    for (const k of ['timeoutSeconds', 'limit']) {
      const v = first(k);
      if (v !== undefined && parseGoInt64(v) === undefined) return { ok: false };
    }
    return fs === undefined ? { ok: true, watch: queryBool(query.get('watch')) } : { ok: true, watch: queryBool(query.get('watch')), fieldSelector: fs };
  } catch (e) {
    if (e instanceof SelectorError) return { ok: false };
    throw e;
  }
}

/** `path.IsValidPathSegmentName`: not `.` or `..`, no `/` and no `%`. */
function validPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/**
 * `RequestInfoFactory.NewRequestInfo` for one HTTP request. `target` is the request target as the
 * upstream API server will receive it (path and query; any gateway prefix such as `/k8s/<name>`
 * already removed).
 *
 * Throws `GatehouseError` `ERR_BAD_REQUEST` where the API server would not get as far as
 * authorization: an unparseable URL (Go's HTTP server answers 400) or a special verb without a
 * resource (`/api/v1/watch`; the request-info filter answers 500); and, unless `strict: false`,
 * for targets other parsers could read differently (see {@link ParseOptions}).
 *
 * Forward the target upstream byte for byte (never re-serialized through `URL`): the attributes
 * returned are those of exactly these bytes.
 */
export function parseRequestInfo(method: string, target: string, opts: ParseOptions = {}): RequestInfo {
  const { path, query } = splitRequestTarget(target, opts);
  const info: RequestInfo = {
    isResourceRequest: false,
    verb: method.toLowerCase(),
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    path,
    parts: [],
  };

  let cur = splitPath(path);
  if (cur.length < 3) return info;
  const prefix = cur[0] ?? '';
  if (!API_PREFIXES.has(prefix)) return info;
  cur = cur.slice(1);
  if (!GROUPLESS_API_PREFIXES.has(prefix)) {
    if (cur.length < 3) return info;
    info.apiGroup = cur[0] ?? '';
    cur = cur.slice(1);
  }
  info.apiPrefix = prefix;
  info.isResourceRequest = true;
  info.apiVersion = cur[0] ?? '';
  cur = cur.slice(1);

  let verbViaPathPrefix = false;
  if (SPECIAL_VERBS.has(cur[0] ?? '')) {
    if (cur.length < 2) throw badRequest('unable to determine kind and namespace from url', `special verb without a resource: ${path}`);
    info.verb = cur[0] ?? '';
    cur = cur.slice(1);
    verbViaPathPrefix = true;
  } else {
    switch (method) {
      case 'POST': info.verb = 'create'; break;
      case 'GET':
      case 'HEAD': info.verb = 'get'; break;
      case 'PUT': info.verb = 'update'; break;
      case 'PATCH': info.verb = 'patch'; break;
      case 'DELETE': info.verb = 'delete'; break;
      default: info.verb = '';
    }
  }

  if (cur[0] === 'namespaces') {
    if (cur.length > 1) {
      info.namespace = cur[1] ?? '';
      if (cur.length > 2 && !NAMESPACE_SUBRESOURCES.has(cur[2] ?? '')) cur = cur.slice(2);
    }
  }

  info.parts = cur;
  if (cur.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(info.verb)) info.subresource = cur[2] ?? '';
  if (cur.length >= 2) info.name = cur[1] ?? '';
  if (cur.length >= 1) info.resource = cur[0] ?? '';

  if (info.name === '' && info.verb === 'get') {
    const opts = decodeListOptions(query);
    if (opts.ok) {
      info.verb = opts.watch ? 'watch' : 'list';
      if (opts.fieldSelector !== undefined) {
        const name = parseFieldSelector(opts.fieldSelector).requiresExactMatch('metadata.name');
        if (name !== undefined && validPathSegmentName(name)) info.name = name;
      }
    } else {
      info.verb = queryBool(query.get('watch')) ? 'watch' : 'list';
    }
  }

  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';

  if (!verbViaPathPrefix && VERBS_WITH_SELECTORS.has(info.verb)) {
    const fs = query.get('fieldSelector')?.[0];
    const ls = query.get('labelSelector')?.[0];
    if (fs !== undefined) info.fieldSelector = fs;
    if (ls !== undefined) info.labelSelector = ls;
  }
  return info;
}

/**
 * The core `Command` for a request. Non-resource requests (`/version`, `/api`, `/apis/apps/v1`,
 * `/openapi/v2`, `/healthz`) have `resource: ""` and carry their `path`; their verb is the
 * lower-cased HTTP method, as upstream.
 */
export function toK8sCommand(info: RequestInfo): K8sCommand {
  const cmd: K8sCommand = { kind: 'k8s', verb: info.verb, group: info.apiGroup, resource: info.resource, path: info.path };
  if (!info.isResourceRequest) return cmd;
  if (info.subresource !== '') cmd.subresource = info.subresource;
  if (info.namespace !== '') cmd.namespace = info.namespace;
  if (info.name !== '') cmd.name = info.name;
  return cmd;
}

const DISCOVERY_PATHS = [/^\/api\/?$/, /^\/api\/[^/]+\/?$/, /^\/apis\/?$/, /^\/apis\/[^/]+\/?$/, /^\/apis\/[^/]+\/[^/]+\/?$/, /^\/version\/?$/, /^\/openapi\/v2\/?$/, /^\/openapi\/v3(\/.*)?$/];

/**
 * A read-only discovery request every client makes before anything else (`/api`, `/api/v1`,
 * `/apis`, `/apis/<group>[/<version>]`, `/version`, `/openapi/v2`, `/openapi/v3/…`). Only GET and
 * HEAD; health endpoints (`/healthz`, `/livez`, `/readyz`) are not discovery.
 */
export function isDiscoveryRequest(info: RequestInfo): boolean {
  return !info.isResourceRequest && (info.verb === 'get' || info.verb === 'head') && DISCOVERY_PATHS.some((r) => r.test(info.path));
}

/**
 * The API server's long-running check (`BasicLongRunningRequestCheck` with verbs watch/proxy and
 * subresources attach/exec/proxy/log/portforward): such requests get no request timeout.
 */
export function isLongRunning(info: RequestInfo): boolean {
  if (!info.isResourceRequest) return false;
  if (info.verb === 'watch' || info.verb === 'proxy') return true;
  return ['attach', 'exec', 'proxy', 'log', 'portforward'].includes(info.subresource);
}
