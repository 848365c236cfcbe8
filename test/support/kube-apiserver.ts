/**
 * A faithful stand-in Kubernetes API server for tests (no kube-apiserver can run on these machines).
 * The real `kubectl` works against it: HTTPS with a self-signed certificate, bearer-token or
 * client-certificate authentication, impersonation headers, legacy and aggregated discovery,
 * `/version`, in-memory objects with real JSON shapes (namespaces, nodes, pods, secrets,
 * configmaps, services, serviceaccounts, events, apps/v1 deployments), get/list/create/update/
 * patch (merge, strategic merge, JSON patch, apply)/delete/deletecollection, server-side `Table`s,
 * label and field selectors, pagination, watch (ADDED/MODIFIED/DELETED, bookmarks, timeouts),
 * status and scale subresources, pod logs (with follow) and exec over WebSocket
 * (`v5.channel.k8s.io`, `v4.channel.k8s.io`) and over SPDY/3.1 (kubectl's protocol before 1.30 and
 * its fallback: `Upgrade: SPDY/3.1`, the `X-Stream-Protocol-Version` negotiated and answered in the
 * `101`, one SPDY stream per `streamtype`; see ./kube-exec.ts). attach is served like exec (no
 * container runs here, so each attach starts the container's own command, by default an echo of
 * its stdin); port-forward is not spoken: it answers a `Status`.
 *
 * Every request is recorded (`requests`) with its headers, authenticated and impersonated user,
 * request info and response code, so tests can assert what reached the upstream.
 *
 * ```ts
 * const kube = await startKubeStandIn();
 * const kubeconfig = await kube.writeKubeconfig(dir);        // cluster + CA + token
 * kube.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });
 * // … run kubectl with KUBECONFIG=kubeconfig …
 * kube.requests.at(-1)?.headers['impersonate-user'];
 * await kube.close();
 * ```
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import YAML from 'yaml';
import { isGatehouseError } from '../../src/core/errors.js';
import { parseRequestInfo, splitRequestTarget, type RequestInfo } from '../../src/engines/kubernetes/request-info.js';
import { SelectorError, parseFieldSelector, parseGoInt64, parseLabelSelector, type FieldSelector, type LabelSelector } from '../../src/engines/kubernetes/selectors.js';
import {
  OPTIMISTIC_LOCK_MESSAGE, alreadyExistsStatus, authorizationForbiddenStatus, badRequestStatus, conflictStatus, forbiddenStatus, internalErrorStatus,
  invalidStatus, methodNotSupportedStatus, notAcceptableStatus, notFoundStatus, requestEntityTooLargeStatus, resourceExpiredStatus, statusResponse,
  successStatus, unauthorizedStatus, unsupportedMediaTypeStatus, watchErrorEvent, type KubeStatus,
} from '../../src/engines/kubernetes/status.js';
import { EXEC_PROTOCOLS, negotiateStreamProtocol, serveExec, serveSpdyExec, spawnExec, type ExecHandler, type ExecRecord, type ExecRequest } from './kube-exec.js';
import { PatchError, jsonPatch, mergePatch, strategicMergePatch, type Json } from './kube-patch.js';
import { ProtobufError, decodeK8sProtobuf } from './kube-protobuf.js';
import { builtinResourceTypes, deploymentStatus, groupVersion, type Obj, type ResourceType } from './kube-resources.js';
import { makeTestCert } from './tls.js';

export type { ExecHandler, ExecRecord, ExecRequest } from './kube-exec.js';
export type { Obj, ResourceType } from './kube-resources.js';

/** An authenticated user (`user.Info`). */
export interface KubeUser {
  name: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** What the stand-in's `authorize` hook sees (the authorizer's attributes). */
export interface KubeAuthzRequest {
  user: KubeUser;
  info: RequestInfo;
  method: string;
}

export interface KubeStandInOptions {
  /**
   * Bearer tokens and who they authenticate. A plain string is a user name (in `system:masters`).
   * Default: one random token (see `token`) for `kubernetes-admin`.
   */
  tokens?: Record<string, KubeUser | string>;
  /** PEM CA: client certificates it signed authenticate as CN, with O as groups. */
  clientCA?: string;
  /** Serving certificate; default a fresh self-signed one for localhost / 127.0.0.1. */
  cert?: { cert: string; key: string };
  /**
   * Authorization: `true` allows, `false` or a reason refuses with 403. Default: allow all. Also
   * answers `kubectl auth can-i` (SelfSubjectAccessReviews, which every user may create).
   */
  authorize?: (req: KubeAuthzRequest) => boolean | string;
  /** Users allowed to send `Impersonate-*` headers; default every authenticated user. */
  impersonators?: string[];
  /** Seed the default namespaces, a node and the default service accounts (default true). */
  seed?: boolean;
  /** More objects to start with (namespaces first). */
  objects?: Obj[];
  /** Answer aggregated discovery (apidiscovery.k8s.io/v2) when asked (default true). */
  aggregatedDiscovery?: boolean;
  /** WebSocket subprotocols accepted for exec, in preference order; default v5 then v4. */
  execProtocols?: string[];
  /** Runs `kubectl exec` commands; default: a child process of the test. */
  exec?: ExecHandler;
  /** Interval of watch bookmarks when a client allows them (default 1000 ms). */
  bookmarkIntervalMs?: number;
  /** Watch events kept for resuming from a resourceVersion (default 1000). */
  historyLimit?: number;
  /** Reported by /version (default 1.32.0). */
  version?: { major: string; minor: string };
  host?: string;
  port?: number;
  /**
   * Answers a request in place of the stand-in (after authentication and authorization): for
   * tests of what a real API server may send that the stand-in never does (protobuf, gzip).
   */
  intercept?: (req: IncomingMessage, info: RequestInfo) => { status: number; headers: Record<string, string>; body: Buffer | string } | undefined;
}

/** One request as it reached the stand-in. */
export interface RecordedRequest {
  seq: number;
  time: Date;
  method: string;
  /** The raw request target (path and query). */
  url: string;
  path: string;
  query: Record<string, string[]>;
  headers: IncomingHttpHeaders;
  /** Every header's values, repeated headers kept apart (`impersonate-group`). */
  headersDistinct: Record<string, string[]>;
  /** Who authenticated (token or client certificate). */
  user?: KubeUser;
  /** Who the request acted as (the impersonated user, else `user`). */
  as?: KubeUser;
  info?: RequestInfo;
  /** Request body (text), when there was one. */
  body?: string;
  /** The same body, as bytes (protobuf bodies are binary). */
  rawBody?: Buffer;
  /** The response status code (101 for an accepted upgrade); set when the answer starts. */
  status?: number;
  /** `websocket` or `SPDY/3.1` for upgrade requests. */
  upgrade?: string;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Json;
}

export interface KubeStandIn {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The serving certificate (PEM): the CA for `certificate-authority-data`. */
  readonly caCert: string;
  /** The default admin token. */
  readonly token: string;
  readonly requests: RecordedRequest[];
  readonly execs: ExecRecord[];
  readonly types: ResourceType[];
  clearRequests(): void;
  /** The first resource type matching a plural, singular, short name or kind (`pods`, `po`, `Pod`, `deployments.apps`). */
  type(name: string): ResourceType;
  /** Stores an object as a create would (defaults, uid, resourceVersion); returns the stored copy. */
  create(obj: Obj): Obj;
  get(type: string, namespace: string | undefined, name: string): Obj | undefined;
  list(type: string, namespace?: string): Obj[];
  /** Replaces an object as an update would (emits MODIFIED). */
  update(obj: Obj): Obj;
  delete(type: string, namespace: string | undefined, name: string): boolean;
  /** Appends log lines to a pod's container (first container by default); followers receive them. */
  appendLog(namespace: string, pod: string, text: string, container?: string): void;
  /** The current resourceVersion. */
  resourceVersion(): string;
  /** A kubeconfig (YAML) for this server; token defaults to `token`. */
  kubeconfig(opts?: { token?: string; namespace?: string; server?: string; clientCert?: { cert: string; key: string } }): string;
  /** Writes `kubeconfig()` to `<dir>/kubeconfig` and returns the path. */
  writeKubeconfig(dir: string, opts?: Parameters<KubeStandIn['kubeconfig']>[0]): Promise<string>;
  close(): Promise<void>;
}

interface Watcher {
  type: ResourceType;
  namespace: string;
  label: LabelSelector | undefined;
  field: FieldSelector | undefined;
  send(ev: WatchEvent, obj: Obj | undefined): void;
}

interface HistoryEntry {
  rv: number;
  typeKey: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  obj: Obj;
}

interface LogLine {
  time: Date;
  text: string;
}

type Format = { kind: 'json' } | { kind: 'yaml' } | { kind: 'table'; version: string } | { kind: 'partial'; version: string } | { kind: 'partialList'; version: string };

class HttpError extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
}

const run = promisify(execFile);
const MAX_BODY = 3 * 1024 * 1024;
const TABLE_CT = (v: string): string => `application/json;as=Table;v=${v};g=meta.k8s.io`;
const DISCOVERY_CT = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const GEN_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

const o = (v: Json | undefined): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {});
const str = (v: Json | undefined): string => (typeof v === 'string' ? v : '');
const clone = <T>(v: T): T => structuredClone(v);
const meta = (obj: Obj): Obj => (obj.metadata = o(obj.metadata));
const nowStamp = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const typeKey = (t: ResourceType): string => `${t.group}/${t.resource}`;
const objKey = (ns: string, name: string): string => `${ns}/${name}`;

function parseMediaTypes(header: string | undefined): { type: string; params: Record<string, string> }[] {
  if (!header) return [];
  return header.split(',').map((part) => {
    const [type = '', ...ps] = part.split(';').map((x) => x.trim());
    const params: Record<string, string> = {};
    for (const p of ps) {
      const eq = p.indexOf('=');
      if (eq > 0) params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim().replace(/^"|"$/g, '');
    }
    return { type: type.toLowerCase(), params };
  });
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/**
 * A client CA and one client certificate it signed (openssl CLI), for client-certificate
 * authentication: the stand-in (with `clientCA: ca`) authenticates the holder as `cn` in `groups`.
 */
export async function makeClientCertificate(cn: string, groups: string[] = []): Promise<{ ca: string; cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'gh-kube-ca-'));
  try {
    const f = (n: string): string => join(dir, n);
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=stand-in-client-ca', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
    const subj = `/${groups.map((g) => `O=${g.replace(/[/=+,]/g, '\\$&')}/`).join('')}CN=${cn.replace(/[/=+,]/g, '\\$&')}`;
    await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', subj, '-keyout', f('client.key'), '-out', f('client.csr')]);
    await writeFile(f('ext.cnf'), 'extendedKeyUsage=clientAuth\n');
    await run('openssl', ['x509', '-req', '-in', f('client.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('client.pem')]);
    return { ca: await readFile(f('ca.pem'), 'utf8'), cert: await readFile(f('client.pem'), 'utf8'), key: await readFile(f('client.key'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Starts a stand-in API server on 127.0.0.1 (a free port unless `port` is given). */
export async function startKubeStandIn(options: KubeStandInOptions = {}): Promise<KubeStandIn> {
  let tls: { cert: string; key: string };
  if (options.cert) tls = options.cert;
  else {
    const c = await makeTestCert();
    await c.cleanup();
    tls = { cert: c.cert, key: c.key };
  }
  const defaultToken = randomBytes(24).toString('base64url');
  const tokens = new Map<string, KubeUser>();
  for (const [t, u] of Object.entries(options.tokens ?? { [defaultToken]: 'kubernetes-admin' })) {
    tokens.set(t, typeof u === 'string' ? { name: u, groups: ['system:masters', 'system:authenticated'] } : u);
  }
  const firstToken = tokens.keys().next().value ?? defaultToken;
  const types = builtinResourceTypes();
  const aggregated = options.aggregatedDiscovery ?? true;
  const execProtocols = options.execProtocols ?? [...EXEC_PROTOCOLS];
  const execHandler = options.exec ?? spawnExec;
  const bookmarkMs = options.bookmarkIntervalMs ?? 1000;
  const historyLimit = options.historyLimit ?? 1000;
  const version = options.version ?? { major: '1', minor: '32' };

  const store = new Map<string, Map<string, Obj>>();
  for (const t of types) store.set(typeKey(t), new Map());
  let rv = 1000;
  const history: HistoryEntry[] = [];
  const watchers = new Set<Watcher>();
  const logs = new Map<string, LogLine[]>();
  const followers = new Map<string, Set<(l: LogLine | undefined) => void>>();
  const requests: RecordedRequest[] = [];
  const requestUser = new WeakMap<IncomingMessage, KubeUser>();
  const execs: ExecRecord[] = [];
  const open = new Set<Socket | Duplex>();
  const closers = new Set<() => void>();
  let seq = 0;
  let podIp = 10;
  let svcIp = 10;
  const defaultCtx = {
    nodeName: 'stand-in-node',
    nextIp: (pool: 'pod' | 'service') => (pool === 'pod' ? `10.244.0.${podIp++ % 250}` : `10.96.${Math.floor(svcIp / 250)}.${svcIp++ % 250}`),
  };

  // ------------------------------------------------------------------------------- types
  function findType(name: string): ResourceType | undefined {
    const [res = '', ...g] = name.split('.');
    const group = g.join('.');
    const lower = res.toLowerCase();
    return types.find((t) => (g.length === 0 || t.group === group) && (t.resource === lower || t.singular === lower || t.shortNames.includes(lower) || t.kind.toLowerCase() === lower));
  }
  function typeOf(name: string): ResourceType {
    const t = findType(name);
    if (!t) throw new Error(`unknown resource type ${name}`);
    return t;
  }
  function typeForObject(obj: Obj): ResourceType {
    const apiVersion = str(obj.apiVersion);
    const kind = str(obj.kind);
    const t = types.find((x) => x.kind === kind && groupVersion(x) === apiVersion);
    if (!t) throw new Error(`unknown kind ${apiVersion} ${kind}`);
    return t;
  }
  const bucket = (t: ResourceType): Map<string, Obj> => store.get(typeKey(t)) ?? new Map();
  const withTypeMeta = (t: ResourceType, obj: Obj): Obj => ({ apiVersion: groupVersion(t), kind: t.kind, ...obj });
  const stripTypeMeta = (obj: Obj): Obj => {
    const { apiVersion: _a, kind: _k, ...rest } = obj;
    return rest;
  };
  const target = (t: ResourceType, name?: string): { group: string; resource: string; name?: string } => (name === undefined ? { group: t.group, resource: t.resource } : { group: t.group, resource: t.resource, name });

  // ------------------------------------------------------------------------------- events
  function emit(t: ResourceType, type: HistoryEntry['type'], obj: Obj): void {
    const entry: HistoryEntry = { rv: Number(str(meta(obj).resourceVersion)), typeKey: typeKey(t), type, obj: clone(obj) };
    history.push(entry);
    if (history.length > historyLimit) history.shift();
    for (const w of watchers) if (w.type === t && matches(w, obj)) w.send({ type, object: withTypeMeta(t, clone(obj)) }, obj);
    if (t.resource === 'pods' && type === 'DELETED') {
      const m = meta(obj);
      for (const [k, set] of followers) if (k.startsWith(`${str(m.namespace)}/${str(m.name)}/`)) for (const f of set) f(undefined);
    }
  }
  function matches(w: { namespace: string; label: LabelSelector | undefined; field: FieldSelector | undefined; type: ResourceType }, obj: Obj): boolean {
    const m = meta(obj);
    if (w.namespace !== '' && str(m.namespace) !== w.namespace) return false;
    if (w.label && !w.label.matches(o(m.labels) as Record<string, string>)) return false;
    if (w.field && !w.field.matches(fieldsOf(w.type, obj))) return false;
    return true;
  }
  function fieldsOf(t: ResourceType, obj: Obj): Record<string, string> {
    const m = meta(obj);
    const f: Record<string, string> = { 'metadata.name': str(m.name) };
    if (t.namespaced) f['metadata.namespace'] = str(m.namespace);
    return { ...f, ...(t.fields?.(obj) ?? {}) };
  }

  // ------------------------------------------------------------------------------- storage
  function validateName(t: ResourceType, name: string): void {
    const re = t.resource === 'namespaces' || t.resource === 'services' ? DNS1123_LABEL : DNS1123_SUBDOMAIN;
    const max = re === DNS1123_LABEL ? 63 : 253;
    if (name.length > max || !re.test(name)) {
      const what = re === DNS1123_LABEL ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character" : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
      throw new HttpError(invalidStatus(t.kind, t.group, name, [{ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(name)}: ${what}` }]));
    }
  }

  function doCreate(t: ResourceType, ns: string, input: Obj, dryRun: boolean): Obj {
    const obj = clone(input);
    const m = meta(obj);
    if (obj.kind !== undefined && obj.kind !== t.kind) throw new HttpError(badRequestStatus(`the kind of the provided object (${str(obj.kind)}) does not match the kind of the request (${t.kind})`));
    if (obj.apiVersion !== undefined && obj.apiVersion !== groupVersion(t)) throw new HttpError(badRequestStatus(`the API version in the data (${str(obj.apiVersion)}) does not match the expected API version (${groupVersion(t)})`));
    if (t.namespaced) {
      if (m.namespace !== undefined && m.namespace !== '' && m.namespace !== ns) throw new HttpError(badRequestStatus('the namespace of the provided object does not match the namespace sent on the request'));
      if (!bucket(typeOf('namespaces')).has(objKey('', ns))) throw new HttpError(notFoundStatus({ resource: 'namespaces', name: ns }));
      m.namespace = ns;
    } else delete m.namespace;
    let name = str(m.name);
    if (name === '') {
      const gen = str(m.generateName);
      if (gen === '') throw new HttpError(invalidStatus(t.kind, t.group, '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required' }]));
      do name = gen + Array.from(randomBytes(5), (b) => GEN_CHARS[b % GEN_CHARS.length]).join('');
      while (bucket(t).has(objKey(t.namespaced ? ns : '', name)));
      m.name = name;
    }
    validateName(t, name);
    const key = objKey(t.namespaced ? ns : '', name);
    if (bucket(t).has(key)) throw new HttpError(alreadyExistsStatus(target(t, name)));
    m.uid = randomUUID();
    m.creationTimestamp = nowStamp();
    delete m.deletionTimestamp;
    delete m.selfLink;
    if (obj.spec !== undefined && t.resource !== 'namespaces') m.generation = 1;
    t.defaults?.(obj, defaultCtx);
    if (dryRun) {
      m.resourceVersion = String(rv);
      return withTypeMeta(t, obj);
    }
    m.resourceVersion = String(++rv);
    const stored = stripTypeMeta(obj);
    bucket(t).set(key, stored);
    emit(t, 'ADDED', stored);
    return withTypeMeta(t, clone(stored));
  }

  function existing(t: ResourceType, ns: string, name: string): Obj {
    const cur = bucket(t).get(objKey(t.namespaced ? ns : '', name));
    if (!cur) throw new HttpError(notFoundStatus(target(t, name)));
    return cur;
  }

  /** Writes `next` over the stored object: keeps identity, bumps resourceVersion unless nothing changed. */
  function doUpdate(t: ResourceType, ns: string, name: string, input: Obj, part: 'all' | 'status', dryRun: boolean): Obj {
    const cur = existing(t, ns, name);
    const next = stripTypeMeta(clone(input));
    const m = meta(next);
    const cm = meta(cur);
    if (m.name !== undefined && m.name !== name) throw new HttpError(badRequestStatus(`the name of the object (${str(m.name)}) does not match the name on the URL (${name})`));
    if (t.namespaced && m.namespace !== undefined && m.namespace !== '' && m.namespace !== ns) throw new HttpError(badRequestStatus('the namespace of the provided object does not match the namespace sent on the request'));
    if (m.resourceVersion !== undefined && m.resourceVersion !== '' && m.resourceVersion !== cm.resourceVersion) throw new HttpError(conflictStatus(target(t, name), OPTIMISTIC_LOCK_MESSAGE));
    let result: Obj;
    if (part === 'status') {
      result = clone(cur);
      result.status = clone(next.status ?? {});
    } else {
      result = next;
      const rm = meta(result);
      for (const k of ['uid', 'creationTimestamp', 'namespace', 'generation']) if (cm[k] !== undefined) rm[k] = clone(cm[k] ?? null);
      rm.name = name;
      if (cur.status !== undefined && t.subresources.some((s) => s.name === 'status')) result.status = clone(cur.status);
      if (t.resource === 'secrets') t.defaults?.(result, defaultCtx);
      if (!deepEqual(result.spec, cur.spec) && cm.generation !== undefined) rm.generation = Number(cm.generation) + 1;
      if (t.resource === 'deployments') deploymentStatus(result);
      if (t.resource === 'pods' && result.status === undefined) t.defaults?.(result, defaultCtx);
    }
    meta(result).resourceVersion = cm.resourceVersion ?? null;
    if (deepEqual(result, cur)) return withTypeMeta(t, clone(cur));
    if (dryRun) return withTypeMeta(t, result);
    meta(result).resourceVersion = String(++rv);
    bucket(t).set(objKey(t.namespaced ? ns : '', name), result);
    emit(t, 'MODIFIED', result);
    return withTypeMeta(t, clone(result));
  }

  function doDelete(t: ResourceType, ns: string, name: string, opts: Obj, dryRun: boolean): Obj {
    const cur = existing(t, ns, name);
    const cm = meta(cur);
    const pre = o(opts.preconditions);
    if (pre.uid !== undefined && pre.uid !== cm.uid) throw new HttpError(conflictStatus(target(t, name), `Precondition failed: UID in precondition: ${str(pre.uid)}, UID in object meta: ${str(cm.uid)}`));
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== cm.resourceVersion) throw new HttpError(conflictStatus(target(t, name), `Precondition failed: ResourceVersion in precondition: ${str(pre.resourceVersion)}, ResourceVersion in object meta: ${str(cm.resourceVersion)}`));
    const gone = clone(cur);
    if (dryRun) return withTypeMeta(t, gone);
    if (t.resource === 'namespaces') {
      for (const ct of types.filter((x) => x.namespaced)) {
        for (const [k, obj] of [...bucket(ct)]) {
          if (k.startsWith(`${name}/`)) {
            bucket(ct).delete(k);
            meta(obj).resourceVersion = String(++rv);
            emit(ct, 'DELETED', obj);
          }
        }
      }
    }
    bucket(t).delete(objKey(t.namespaced ? ns : '', name));
    meta(gone).resourceVersion = String(++rv);
    if (t.resource === 'pods' || t.resource === 'namespaces') {
      meta(gone).deletionTimestamp = nowStamp();
      meta(gone).deletionGracePeriodSeconds = t.resource === 'pods' ? 0 : null;
      if (meta(gone).deletionGracePeriodSeconds === null) delete meta(gone).deletionGracePeriodSeconds;
      if (t.resource === 'namespaces') gone.status = { phase: 'Terminating' };
    }
    emit(t, 'DELETED', gone);
    for (const k of [...logs.keys()]) if (t.resource === 'pods' && k.startsWith(`${ns}/${name}/`)) logs.delete(k);
    return withTypeMeta(t, gone);
  }

  function listObjects(t: ResourceType, ns: string, label?: LabelSelector, field?: FieldSelector): Obj[] {
    const out: Obj[] = [];
    const keys = [...bucket(t).keys()].sort();
    for (const k of keys) {
      const obj = bucket(t).get(k);
      if (obj && matches({ type: t, namespace: ns, label, field }, obj)) out.push(obj);
    }
    return out;
  }

  // ------------------------------------------------------------------------------- seed
  function seedObject(obj: Obj): Obj {
    const t = typeForObject(obj);
    const ns = t.namespaced ? str(meta(clone(obj)).namespace) || 'default' : '';
    return doCreate(t, ns, obj, false);
  }
  if (options.seed ?? true) {
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) seedObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) seedObject({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns } });
    seedObject({
      apiVersion: 'v1', kind: 'Node', metadata: { name: 'stand-in-node', labels: { 'kubernetes.io/hostname': 'stand-in-node', 'kubernetes.io/os': 'linux' } },
      spec: {},
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
        addresses: [{ type: 'InternalIP', address: '10.0.0.10' }, { type: 'Hostname', address: 'stand-in-node' }],
        nodeInfo: { kubeletVersion: `v${version.major}.${version.minor}.0`, osImage: 'Gatehouse stand-in', kernelVersion: '6.1.0', containerRuntimeVersion: 'containerd://1.7.0', operatingSystem: 'linux', architecture: 'amd64' },
      },
    });
    seedObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } }, spec: { clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }] } });
  }
  const initial = [...(options.objects ?? [])].sort((a, b) => Number(b.kind === 'Namespace') - Number(a.kind === 'Namespace'));
  for (const obj of initial) seedObject(obj);

  // ------------------------------------------------------------------------------- discovery
  const groups = [...new Set(types.filter((t) => t.group !== '').map((t) => t.group))];
  const versionsOf = (g: string): string[] => [...new Set(types.filter((t) => t.group === g).map((t) => t.version))];
  const gvEntry = (g: string, v: string): Obj => ({ groupVersion: g ? `${g}/${v}` : v, version: v });

  function apiResourceList(g: string, v: string): Obj {
    const resources: Json[] = [];
    for (const t of types.filter((x) => x.group === g && x.version === v)) {
      const r: Obj = { name: t.resource, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs };
      if (t.shortNames.length) r.shortNames = t.shortNames;
      if (t.categories.length) r.categories = t.categories;
      resources.push(r);
      for (const s of t.subresources) {
        const sr: Obj = { name: `${t.resource}/${s.name}`, singularName: '', namespaced: t.namespaced, kind: s.kind, verbs: s.verbs };
        if (s.group !== undefined) sr.group = s.group;
        if (s.version !== undefined) sr.version = s.version;
        resources.push(sr);
      }
    }
    return g === '' ? { kind: 'APIResourceList', groupVersion: v, resources } : { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${g}/${v}`, resources };
  }

  function discoveryGroup(g: string): Obj {
    const versions = versionsOf(g).map((v) => ({
      version: v,
      resources: types.filter((t) => t.group === g && t.version === v).map((t) => {
        const r: Obj = { resource: t.resource, responseKind: { group: t.group, version: t.version, kind: t.kind }, scope: t.namespaced ? 'Namespaced' : 'Cluster', singularResource: t.singular, verbs: t.verbs };
        if (t.shortNames.length) r.shortNames = t.shortNames;
        if (t.categories.length) r.categories = t.categories;
        if (t.subresources.length) r.subresources = t.subresources.map((s) => ({ subresource: s.name, responseKind: { group: s.group ?? t.group, version: s.version ?? t.version, kind: s.kind }, verbs: s.verbs }));
        return r;
      }),
      freshness: 'Current',
    }));
    return { metadata: g === '' ? { creationTimestamp: null } : { name: g, creationTimestamp: null }, versions };
  }

  /**
   * OpenAPI v3, as much as kubectl reads: the group-version index and, per group-version, the
   * operations with their `x-kubernetes-group-version-kind` and query parameters (kubectl checks
   * that PATCH takes `fieldValidation` before it relies on server-side validation). No schemas:
   * kubectl then computes strategic merge patches from its compiled-in types.
   */
  function openapiV3(gvPath: string): Obj | undefined {
    const m = /^(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(gvPath);
    if (!m) return undefined;
    const g = m[1] ? '' : m[2] ?? '';
    const v = m[1] ?? m[3] ?? '';
    const ts = types.filter((t) => t.group === g && t.version === v);
    if (ts.length === 0) return undefined;
    const q = (name: string): Obj => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });
    const write = [q('dryRun'), q('fieldManager'), q('fieldValidation'), q('pretty')];
    const paths: Obj = {};
    for (const t of ts) {
      const prefix = `/${gvPath}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.resource}`;
      const gvk = { group: t.group, version: t.version, kind: t.kind };
      const op = (action: string, parameters: Obj[]): Obj => ({ operationId: `${action}${t.kind}`, parameters, responses: { '200': { description: 'OK' } }, 'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk });
      paths[prefix] = { get: op('list', [q('labelSelector'), q('fieldSelector'), q('limit'), q('continue'), q('watch')]), post: op('post', write) };
      paths[`${prefix}/{name}`] = { get: op('get', []), put: op('put', write), patch: { ...op('patch', [...write, q('force')]) }, delete: op('delete', [q('dryRun'), q('gracePeriodSeconds'), q('propagationPolicy')]) };
    }
    return { openapi: '3.0.0', info: { title: 'Kubernetes', version: `v${version.major}.${version.minor}.0` }, paths, components: { schemas: {} } };
  }

  function wantsAggregated(accept: string | undefined): boolean {
    if (!aggregated) return false;
    for (const m of parseMediaTypes(accept)) {
      if (m.type === 'application/json' && m.params.g === 'apidiscovery.k8s.io' && m.params.as === 'APIGroupDiscoveryList' && m.params.v === 'v2') return true;
      if (m.type === 'application/json' && m.params.as === undefined) return false;
    }
    return false;
  }

  function nonResource(req: IncomingMessage, res: ServerResponse, path: string): void {
    const p = path.replace(/\/+$/, '') || '/';
    const accept = req.headers.accept;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      if (['/api', '/apis', '/version', '/healthz', '/livez', '/readyz'].includes(p) || /^\/apis?\//.test(p)) return sendStatus(res, methodNotAllowed(req.method ?? ''));
      return sendStatus(res, notFound(path));
    }
    if (p === '/api') {
      if (wantsAggregated(accept)) return sendJson(res, 200, { kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2', metadata: {}, items: [discoveryGroup('')] }, DISCOVERY_CT);
      const host = req.socket.localAddress ?? '127.0.0.1';
      return sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `${host}:${port}` }] });
    }
    if (p === '/apis') {
      if (wantsAggregated(accept)) return sendJson(res, 200, { kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2', metadata: {}, items: groups.map(discoveryGroup) }, DISCOVERY_CT);
      return sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map((g) => ({ name: g, versions: versionsOf(g).map((v) => gvEntry(g, v)), preferredVersion: gvEntry(g, versionsOf(g)[0] ?? 'v1') })) });
    }
    if (p === '/api/v1') return sendJson(res, 200, apiResourceList('', 'v1'));
    let m = /^\/apis\/([^/]+)$/.exec(p);
    if (m && groups.includes(m[1] ?? '')) {
      const g = m[1] ?? '';
      return sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', name: g, versions: versionsOf(g).map((v) => gvEntry(g, v)), preferredVersion: gvEntry(g, versionsOf(g)[0] ?? 'v1') });
    }
    m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(p);
    if (m && versionsOf(m[1] ?? '').includes(m[2] ?? '')) return sendJson(res, 200, apiResourceList(m[1] ?? '', m[2] ?? ''));
    if (p === '/version') {
      return sendJson(res, 200, { major: version.major, minor: version.minor, emulationMajor: version.major, emulationMinor: version.minor, minCompatibilityMajor: version.major, minCompatibilityMinor: String(Math.max(0, Number(version.minor) - 1)), gitVersion: `v${version.major}.${version.minor}.0`, gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean', buildDate: '2025-01-01T00:00:00Z', goVersion: 'go1.23.4', compiler: 'gc', platform: 'linux/amd64' });
    }
    if (p === '/openapi/v3') {
      const gvs = [...new Set(types.map((t) => (t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`)))];
      return sendJson(res, 200, { paths: Object.fromEntries(gvs.map((gv) => [gv, { serverRelativeURL: `/openapi/v3/${gv}?hash=${createHash('sha512').update(JSON.stringify(openapiV3(gv))).digest('hex').toUpperCase()}` }])) });
    }
    if (p.startsWith('/openapi/v3/')) {
      const doc = openapiV3(p.slice('/openapi/v3/'.length));
      if (doc) return sendJson(res, 200, doc);
    }
    if (p === '/healthz' || p === '/livez' || p === '/readyz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      return void res.end('ok');
    }
    return sendStatus(res, notFound(path));
  }

  const notFound = (_path: string): KubeStatus => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the server could not find the requested resource', reason: 'NotFound', details: {}, code: 404 });
  const methodNotAllowed = (method: string): KubeStatus => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `the server does not allow this method on the requested resource (${method})`, reason: 'MethodNotAllowed', details: {}, code: 405 });

  // ------------------------------------------------------------------------------- responses
  function sendJson(res: ServerResponse, code: number, body: unknown, contentType = 'application/json'): void {
    const data = Buffer.from(`${JSON.stringify(body)}\n`);
    res.writeHead(code, { 'content-type': contentType, 'content-length': String(data.length), 'cache-control': 'no-cache, private', 'x-kubernetes-pf-flowschema-uid': 'stand-in', 'audit-id': randomUUID() });
    res.end(res.req.method === 'HEAD' ? undefined : data);
  }
  function sendStatus(res: ServerResponse, status: KubeStatus): void {
    if (res.headersSent) return void res.end();
    const r = statusResponse(status);
    res.writeHead(r.statusCode, r.headers);
    res.end(r.body);
  }
  function sendFormatted(res: ServerResponse, code: number, t: ResourceType, value: Obj, format: Format, query: Map<string, string[]>, list: boolean): void {
    switch (format.kind) {
      case 'json':
        return sendJson(res, code, value);
      case 'yaml': {
        const data = Buffer.from(YAML.stringify(value));
        res.writeHead(code, { 'content-type': 'application/yaml', 'content-length': String(data.length) });
        return void res.end(data);
      }
      case 'table':
        return sendJson(res, code, toTable(t, list ? (value.items as Obj[]) : [value], list ? o(value.metadata) : { resourceVersion: str(meta(value).resourceVersion) }, format.version, query.get('includeObject')?.[0] ?? 'Metadata'), TABLE_CT(format.version));
      case 'partial':
      case 'partialList':
        if (list) return sendJson(res, code, { kind: 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${format.version}`, metadata: o(value.metadata), items: (value.items as Obj[]).map((i) => partial(i, format.version)) }, `application/json;as=PartialObjectMetadataList;v=${format.version};g=meta.k8s.io`);
        return sendJson(res, code, partial(value, format.version), `application/json;as=PartialObjectMetadata;v=${format.version};g=meta.k8s.io`);
    }
  }
  const partial = (obj: Obj, v = 'v1'): Obj => ({ kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${v}`, metadata: clone(o(obj.metadata)) });

  function toTable(t: ResourceType, objs: Obj[], listMeta: Obj, v: string, includeObject: string): Obj {
    const now = new Date();
    return {
      kind: 'Table',
      apiVersion: `meta.k8s.io/${v}`,
      metadata: listMeta,
      columnDefinitions: t.columns as unknown as Json,
      rows: objs.map((obj) => {
        const row: Obj = { cells: t.cells(obj, now) };
        if (includeObject === 'Object') row.object = withTypeMeta(t, clone(obj));
        else if (includeObject !== 'None') row.object = partial(obj, v);
        return row;
      }),
    };
  }

  function negotiate(accept: string | undefined, allowTable: boolean): Format {
    const types = parseMediaTypes(accept);
    if (types.length === 0) return { kind: 'json' };
    for (const m of types) {
      if (m.type === 'application/json') {
        const as = m.params.as;
        if (as === undefined) return { kind: 'json' };
        if (m.params.g !== 'meta.k8s.io' || (m.params.v !== 'v1' && m.params.v !== 'v1beta1')) continue;
        if (as === 'Table' && allowTable) return { kind: 'table', version: m.params.v };
        if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') return { kind: as === 'PartialObjectMetadata' ? 'partial' : 'partialList', version: m.params.v };
        continue;
      }
      if (m.type === '*/*' || m.type === 'application/*') return { kind: 'json' };
      if (m.type === 'application/yaml') return { kind: 'yaml' };
    }
    throw new HttpError(notAcceptableStatus(['application/json', 'application/yaml']));
  }

  function parseBody(t: ResourceType | undefined, req: IncomingMessage, raw: Buffer): Obj {
    const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim().toLowerCase() ?? '';
    const body = raw.toString('utf8');
    try {
      if (ct === 'application/json' || ct === '') {
        const v = JSON.parse(body) as Json;
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        return v;
      }
      if (ct === 'application/yaml') return o(YAML.parse(body) as Json);
      if (ct === 'application/vnd.kubernetes.protobuf') return decodeK8sProtobuf(raw);
    } catch (e) {
      if (e instanceof ProtobufError) throw new HttpError(unsupportedMediaTypeStatus(ct, ['application/json', 'application/yaml', `application/vnd.kubernetes.protobuf (${e.message})`]));
      throw new HttpError(badRequestStatus(`the object provided is unrecognized (must be of type ${t?.kind ?? 'Object'}): couldn't get version/kind; json parse error: ${(e as Error).message}`));
    }
    throw new HttpError(unsupportedMediaTypeStatus(ct, ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']));
  }

  function selectors(query: Map<string, string[]>, t: ResourceType): { label: LabelSelector | undefined; field: FieldSelector | undefined } {
    try {
      const ls = query.get('labelSelector')?.[0];
      const fs = query.get('fieldSelector')?.[0];
      const label = ls ? parseLabelSelector(ls) : undefined;
      const field = fs ? parseFieldSelector(fs) : undefined;
      if (field) {
        const known = Object.keys(fieldsOf(t, t.resource === 'pods' ? { spec: {}, status: {} } : {}));
        for (const r of field.requirements) {
          if (!known.includes(r.field) && r.field !== 'metadata.namespace') throw new HttpError(badRequestStatus(`Unable to find "${t.group}/${t.version}, Resource=${t.resource}" that match label selector "${ls ?? ''}", field selector "${fs ?? ''}": field label not supported: ${r.field}`));
        }
      }
      return { label, field };
    } catch (e) {
      if (e instanceof SelectorError) throw new HttpError(badRequestStatus(`unable to parse requirement: ${e.message}`));
      throw e;
    }
  }

  // ------------------------------------------------------------------------------- authn / authz
  function authenticate(req: IncomingMessage): KubeUser | undefined {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      return m ? tokens.get(m[1] ?? '') : undefined;
    }
    const sock = req.socket as TLSSocket;
    if (options.clientCA && sock.authorized) {
      const peer = sock.getPeerCertificate();
      const subject = peer.subject as unknown as Record<string, string | string[] | undefined> | undefined;
      const cn = subject?.CN;
      const org = subject?.O;
      if (typeof cn === 'string' && cn !== '') return { name: cn, groups: [...(Array.isArray(org) ? org : org ? [org] : []), 'system:authenticated'] };
    }
    return undefined;
  }

  function impersonate(req: IncomingMessage, user: KubeUser): KubeUser {
    const h = req.headersDistinct;
    const imp = Object.keys(h).filter((k) => k.startsWith('impersonate-'));
    if (imp.length === 0) return user;
    const as = h['impersonate-user']?.[0];
    const allowed = options.impersonators === undefined || options.impersonators.includes(user.name);
    if (as === undefined) throw new HttpError(internalErrorStatus('requested impersonation without a user (Impersonate-User)'));
    if (!allowed) throw new HttpError(forbiddenStatus({ resource: 'users', name: as }, `User ${JSON.stringify(user.name)} cannot impersonate resource "users" in API group "" at the cluster scope`));
    const groups = [...(h['impersonate-group'] ?? [])];
    if (as !== 'system:anonymous' && !groups.includes('system:authenticated')) groups.push('system:authenticated');
    const out: KubeUser = { name: as, groups };
    const uid = h['impersonate-uid']?.[0];
    if (uid !== undefined) out.uid = uid;
    for (const k of imp.filter((x) => x.startsWith('impersonate-extra-'))) {
      out.extra ??= {};
      out.extra[decodeURIComponent(k.slice('impersonate-extra-'.length))] = [...(h[k] ?? [])];
    }
    return out;
  }

  /** Authentication, impersonation and authorization, shared by plain and upgrade requests. */
  function admit(req: IncomingMessage, rec: RecordedRequest): { info: RequestInfo; query: Map<string, string[]>; as: KubeUser } {
    let info: RequestInfo;
    let query: Map<string, string[]>;
    try {
      // upstream reads every target the Go way: no strict refusals here
      info = parseRequestInfo(req.method ?? 'GET', req.url ?? '/', { strict: false });
      query = splitRequestTarget(req.url ?? '/', { strict: false }).query;
    } catch (e) {
      if (isGatehouseError(e)) throw new HttpError(badRequestStatus(e.message));
      throw e;
    }
    rec.info = info;
    rec.path = info.path;
    rec.query = Object.fromEntries(query);
    const user = authenticate(req);
    if (!user) throw new HttpError(unauthorizedStatus());
    rec.user = user;
    const as = impersonate(req, user);
    rec.as = as;
    requestUser.set(req, as);
    // every authenticated user may ask what it may do (the default system:basic-user binding)
    const selfReview = info.apiGroup === 'authorization.k8s.io' && info.resource === 'selfsubjectaccessreviews' && info.verb === 'create';
    if (options.authorize && !selfReview) {
      const ok = options.authorize({ user: as, info, method: req.method ?? 'GET' });
      if (ok !== true) {
        const attrs = { user: as.name, verb: info.verb, isResourceRequest: info.isResourceRequest, path: info.path, apiGroup: info.apiGroup, resource: info.resource, subresource: info.subresource, namespace: info.namespace, name: info.name };
        throw new HttpError(authorizationForbiddenStatus(attrs, typeof ok === 'string' ? ok : undefined));
      }
    }
    return { info, query, as };
  }

  function record(req: IncomingMessage): RecordedRequest {
    const rec: RecordedRequest = {
      seq: ++seq,
      time: new Date(),
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path: (req.url ?? '/').split('?')[0] ?? '/',
      query: {},
      headers: { ...req.headers },
      headersDistinct: Object.fromEntries(Object.entries(req.headersDistinct).map(([k, v]) => [k, [...(v ?? [])]])),
    };
    requests.push(rec);
    return rec;
  }

  // ------------------------------------------------------------------------------- resources
  function resolveType(info: RequestInfo): ResourceType {
    const t = types.find((x) => x.group === info.apiGroup && x.version === info.apiVersion && x.resource === info.resource);
    if (!t) throw new HttpError(notFound(info.path));
    if (!t.namespaced && info.namespace !== '' && info.resource !== 'namespaces') throw new HttpError(notFound(info.path));
    if (info.subresource !== '' && !t.subresources.some((s) => s.name === info.subresource)) throw new HttpError(notFound(info.path));
    return t;
  }

  async function handleResource(req: IncomingMessage, res: ServerResponse, info: RequestInfo, query: Map<string, string[]>, raw: Buffer): Promise<void> {
    const body = raw.toString('utf8');
    const t = resolveType(info);
    const ns = t.resource === 'namespaces' ? '' : info.namespace;
    const dryRun = query.get('dryRun')?.[0] === 'All';
    const name = info.name;
    const pathName = info.parts[1] ?? '';
    const sub = info.subresource;
    if (t.namespaced && ns === '' && !['list', 'watch'].includes(info.verb)) throw new HttpError(notFound(info.path));

    if (sub === 'log') {
      if (info.verb !== 'get') throw new HttpError(methodNotSupportedStatus(target(t), info.verb));
      return serveLogs(res, ns, name, query);
    }
    if (sub === 'exec' || sub === 'attach' || sub === 'portforward') {
      throw new HttpError(badRequestStatus(`Upgrade request required`));
    }
    if (sub === 'scale') return serveScale(req, res, t, ns, name, info, raw, dryRun);
    if (t.resource === 'selfsubjectaccessreviews') return serveAccessReview(req, res, t, raw, info);
    if (sub !== '' && sub !== 'status') throw new HttpError(methodNotSupportedStatus({ group: t.group, resource: `${t.resource}/${sub}` }, info.verb));

    switch (info.verb) {
      case 'get': {
        const format = negotiate(req.headers.accept, true);
        const obj = existing(t, ns, name);
        return sendFormatted(res, 200, t, withTypeMeta(t, clone(obj)), format, query, false);
      }
      case 'list': {
        const format = negotiate(req.headers.accept, true);
        const { label, field } = selectors(query, t);
        // a field selector on metadata.name turned this into a named request: the list still lists
        let items = listObjects(t, ns, label, field);
        const limitRaw = query.get('limit')?.[0];
        const limit = limitRaw === undefined ? 0 : Number(parseGoInt64(limitRaw) ?? 0n);
        const cont = query.get('continue')?.[0];
        const listMeta: Obj = { resourceVersion: String(rv) };
        if (cont) {
          let after: string;
          try {
            const c = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as { rv: number; after: string };
            after = c.after;
            if (c.rv < (history[0]?.rv ?? 0) - 1) throw new HttpError(resourceExpiredStatus('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.'));
            listMeta.resourceVersion = String(c.rv);
          } catch (e) {
            if (e instanceof HttpError) throw e;
            throw new HttpError(badRequestStatus('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)'));
          }
          items = items.filter((x) => objKey(str(meta(x).namespace), str(meta(x).name)) > after);
        }
        if (limit > 0 && items.length > limit) {
          const last = items[limit - 1] ?? {};
          listMeta.continue = Buffer.from(JSON.stringify({ rv: Number(listMeta.resourceVersion), after: objKey(str(meta(last).namespace), str(meta(last).name)) })).toString('base64url');
          listMeta.remainingItemCount = items.length - limit;
          items = items.slice(0, limit);
        }
        const list: Obj = { kind: t.listKind, apiVersion: groupVersion(t), metadata: listMeta, items: items.map((x) => clone(x)) };
        return sendFormatted(res, 200, t, list, format, query, true);
      }
      case 'watch':
        return serveWatch(req, res, t, ns, query);
      case 'create': {
        if (name !== '' || pathName !== '') throw new HttpError(methodNotSupportedStatus(target(t), 'create'));
        const format = negotiate(req.headers.accept, true);
        const created = doCreate(t, ns, parseBody(t, req, raw), dryRun);
        return sendFormatted(res, 201, t, created, format, query, false);
      }
      case 'update': {
        const format = negotiate(req.headers.accept, true);
        const updated = doUpdate(t, ns, name, parseBody(t, req, raw), sub === 'status' ? 'status' : 'all', dryRun);
        return sendFormatted(res, 200, t, updated, format, query, false);
      }
      case 'patch': {
        const format = negotiate(req.headers.accept, true);
        const ct = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
        const cur = bucket(t).get(objKey(t.namespaced ? ns : '', name));
        if (!cur && ct === 'application/apply-patch+yaml') {
          const obj = o(YAML.parse(body) as Json);
          const created = doCreate(t, ns, obj, dryRun);
          return sendFormatted(res, 201, t, created, format, query, false);
        }
        if (!cur) throw new HttpError(notFoundStatus(target(t, name)));
        const patched = applyPatch(t, withTypeMeta(t, clone(cur)), ct, body);
        const pm = meta(patched);
        if (pm.resourceVersion !== undefined && pm.resourceVersion !== meta(cur).resourceVersion) throw new HttpError(conflictStatus(target(t, name), OPTIMISTIC_LOCK_MESSAGE));
        if (pm.uid !== meta(cur).uid) throw new HttpError(conflictStatus(target(t, name), `Precondition failed: UID in precondition: ${str(pm.uid)}, UID in object meta: ${str(meta(cur).uid)}`));
        const updated = doUpdate(t, ns, name, patched, sub === 'status' ? 'status' : 'all', dryRun);
        return sendFormatted(res, 200, t, updated, format, query, false);
      }
      case 'delete': {
        const opts = body.trim() === '' ? {} : parseBody(undefined, req, raw);
        const gone = doDelete(t, ns, name, opts, dryRun);
        if (t.resource === 'pods' || t.resource === 'namespaces') return sendJson(res, 200, gone);
        return sendJson(res, 200, { ...successStatus({ name, ...(t.group ? { group: t.group } : {}), kind: t.resource, uid: str(meta(gone).uid) }) });
      }
      case 'deletecollection': {
        if (!t.verbs.includes('deletecollection')) throw new HttpError(methodNotSupportedStatus(target(t), 'deletecollection'));
        const { label, field } = selectors(query, t);
        const opts = body.trim() === '' ? {} : parseBody(undefined, req, raw);
        const gone = listObjects(t, ns, label, field).map((x) => stripTypeMeta(doDelete(t, str(meta(x).namespace), str(meta(x).name), opts, dryRun)));
        return sendJson(res, 200, { kind: t.listKind, apiVersion: groupVersion(t), metadata: { resourceVersion: String(rv) }, items: gone });
      }
      default:
        throw new HttpError(methodNotAllowed(req.method ?? ''));
    }
  }

  function applyPatch(t: ResourceType, cur: Obj, contentType: string, body: string): Obj {
    try {
      let out: Json;
      switch (contentType) {
        case 'application/merge-patch+json':
          out = mergePatch(cur, JSON.parse(body) as Json);
          break;
        case 'application/strategic-merge-patch+json':
          out = strategicMergePatch(cur, JSON.parse(body) as Json);
          break;
        case 'application/json-patch+json':
          out = jsonPatch(cur, JSON.parse(body) as Json);
          break;
        case 'application/apply-patch+yaml':
          out = mergePatch(cur, YAML.parse(body) as Json);
          break;
        default:
          throw new HttpError(unsupportedMediaTypeStatus(contentType, ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml', 'application/strategic-merge-patch+json']));
      }
      return o(out);
    } catch (e) {
      if (e instanceof HttpError) throw e;
      if (e instanceof PatchError) throw new HttpError(invalidStatus(t.kind, t.group, str(meta(cur).name), [{ field: '', message: e.message }]));
      throw new HttpError(badRequestStatus(`error decoding patch: ${(e as Error).message}`));
    }
  }

  function serveScale(req: IncomingMessage, res: ServerResponse, t: ResourceType, ns: string, name: string, info: RequestInfo, raw: Buffer, dryRun: boolean): void {
    const body = raw.toString('utf8');
    const cur = existing(t, ns, name);
    const scaleOf = (x: Obj): Obj => ({
      kind: 'Scale', apiVersion: 'autoscaling/v1',
      metadata: { name, namespace: ns, uid: meta(x).uid ?? null, resourceVersion: meta(x).resourceVersion ?? null, creationTimestamp: meta(x).creationTimestamp ?? null },
      spec: { replicas: o(x.spec).replicas ?? 0 },
      status: { replicas: o(x.status).replicas ?? 0, selector: Object.entries(o(o(o(x.spec).selector).matchLabels)).map(([k, v]) => `${k}=${str(v)}`).join(',') },
    });
    if (info.verb === 'get') return sendJson(res, 200, scaleOf(cur));
    let scale: Obj;
    if (info.verb === 'update') scale = parseBody(undefined, req, raw);
    else if (info.verb === 'patch') scale = applyPatch(t, scaleOf(cur), (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '', body);
    else throw new HttpError(methodNotSupportedStatus({ group: t.group, resource: `${t.resource}/scale` }, info.verb));
    const replicas = o(scale.spec).replicas;
    if (typeof replicas !== 'number' || replicas < 0) throw new HttpError(invalidStatus('Scale', 'autoscaling', name, [{ field: 'spec.replicas', message: 'Invalid value: must be greater than or equal to 0' }]));
    const next = clone(cur);
    next.spec = { ...o(next.spec), replicas };
    const sm = meta(scale);
    if (sm.resourceVersion !== undefined && sm.resourceVersion !== null && sm.resourceVersion !== meta(cur).resourceVersion) throw new HttpError(conflictStatus(target(t, name), OPTIMISTIC_LOCK_MESSAGE));
    const updated = doUpdate(t, ns, name, next, 'all', dryRun);
    return sendJson(res, 200, scaleOf(updated));
  }

  /** `kubectl auth can-i`: answered with the `authorize` hook (everything is allowed without one). */
  function serveAccessReview(req: IncomingMessage, res: ServerResponse, t: ResourceType, raw: Buffer, info: RequestInfo): void {
    if (info.verb !== 'create') throw new HttpError(methodNotSupportedStatus(target(t), info.verb));
    const review = parseBody(t, req, raw);
    const spec = o(review.spec);
    const ra = o(spec.resourceAttributes);
    const nra = o(spec.nonResourceAttributes);
    const resource = spec.resourceAttributes !== undefined;
    const attrs: RequestInfo = resource
      ? { isResourceRequest: true, verb: str(ra.verb), apiPrefix: str(ra.group) ? 'apis' : 'api', apiGroup: str(ra.group), apiVersion: str(ra.version), namespace: str(ra.namespace), resource: str(ra.resource), subresource: str(ra.subresource), name: str(ra.name), path: '', parts: [] }
      : { isResourceRequest: false, verb: str(nra.verb), apiPrefix: '', apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '', path: str(nra.path), parts: [] };
    const as = requestUser.get(req);
    const verdict = options.authorize && as ? options.authorize({ user: as, info: attrs, method: 'POST' }) : true;
    const status: Obj = { allowed: verdict === true };
    if (typeof verdict === 'string') status.reason = verdict;
    return sendJson(res, 201, { kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status });
  }

  // ------------------------------------------------------------------------------- watch
  function serveWatch(req: IncomingMessage, res: ServerResponse, t: ResourceType, ns: string, query: Map<string, string[]>): void {
    const format = negotiate(req.headers.accept, true);
    const { label, field } = selectors(query, t);
    const first = (k: string): string | undefined => query.get(k)?.[0];
    const bool = (k: string): boolean => {
      const v = first(k);
      return v !== undefined && v !== '0' && v.toLowerCase() !== 'false';
    };
    const rvParam = first('resourceVersion') ?? '';
    const bookmarks = bool('allowWatchBookmarks');
    const sendInitial = bool('sendInitialEvents');
    const timeoutRaw = first('timeoutSeconds');
    const timeout = timeoutRaw === undefined ? 1800 : Number(parseGoInt64(timeoutRaw) ?? 1800n);
    const table = format.kind === 'table' ? format.version : undefined;
    const includeObject = first('includeObject') ?? 'Metadata';

    if (rvParam !== '' && rvParam !== '0' && !/^[0-9]+$/.test(rvParam)) throw new HttpError(badRequestStatus(`invalid resource version: ${rvParam}`));
    const since = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);

    res.writeHead(200, { 'content-type': table ? TABLE_CT(table) : 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const encode = (ev: WatchEvent, obj: Obj | undefined): string => {
      if (table && obj && ev.type !== 'ERROR' && ev.type !== 'BOOKMARK') {
        return `${JSON.stringify({ type: ev.type, object: toTable(t, [obj], { resourceVersion: str(meta(obj).resourceVersion) }, table, includeObject) })}\n`;
      }
      return `${JSON.stringify(ev)}\n`;
    };
    const write = (ev: WatchEvent, obj: Obj | undefined): void => {
      if (!res.writableEnded) res.write(encode(ev, obj));
    };
    const bookmark = (annotations?: Record<string, string>): void => {
      const m: Obj = { resourceVersion: String(rv) };
      if (annotations) m.annotations = annotations;
      write({ type: 'BOOKMARK', object: { kind: t.kind, apiVersion: groupVersion(t), metadata: m } }, undefined);
    };

    if (since !== undefined && history.length > 0 && since < (history[0]?.rv ?? 0) - 1) {
      write(watchErrorEvent(resourceExpiredStatus(`too old resource version: ${since} (${(history[0]?.rv ?? 1) - 1})`)) as unknown as WatchEvent, undefined);
      return void res.end();
    }
    const w: Watcher = { type: t, namespace: ns, label, field, send: write };
    watchers.add(w);
    if (since === undefined || sendInitial) {
      for (const obj of listObjects(t, ns, label, field)) write({ type: 'ADDED', object: withTypeMeta(t, clone(obj)) }, obj);
      if (sendInitial && bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
    } else {
      for (const h of history) {
        if (h.rv > since && h.typeKey === typeKey(t) && matches(w, h.obj)) write({ type: h.type, object: withTypeMeta(t, clone(h.obj)) }, h.obj);
      }
    }
    const tick = bookmarks ? setInterval(() => bookmark(), bookmarkMs) : undefined;
    const stop = (): void => {
      watchers.delete(w);
      if (tick) clearInterval(tick);
      clearTimeout(timer);
      closers.delete(stop);
      if (!res.writableEnded) res.end();
    };
    const timer = setTimeout(stop, Math.max(0, timeout) * 1000);
    closers.add(stop);
    req.on('close', stop);
    res.on('close', stop);
  }

  // ------------------------------------------------------------------------------- logs
  function attachCommand(pod: Obj, container: string): string[] {
    const spec = (Array.isArray(o(pod.spec).containers) ? (o(pod.spec).containers as Json[]) : []).map(o).find((c) => str(c.name) === container) ?? {};
    const argv = [...(Array.isArray(spec.command) ? spec.command : []), ...(Array.isArray(spec.args) ? spec.args : [])].map((x) => String(x));
    return argv.length > 0 ? argv : ['sh', '-c', 'echo attached; exec cat'];
  }

  function containerOf(pod: Obj, requested: string | undefined, what: string): string {
    const names = (Array.isArray(o(pod.spec).containers) ? (o(pod.spec).containers as Json[]) : []).map((c) => str(o(c).name));
    const name = str(meta(pod).name);
    if (requested) {
      if (!names.includes(requested)) throw new HttpError(badRequestStatus(`container ${requested} is not valid for pod ${name}`));
      return requested;
    }
    if (names.length === 1) return names[0] ?? '';
    throw new HttpError(badRequestStatus(`a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]${what === 'log' ? '' : ''}`));
  }

  function serveLogs(res: ServerResponse, ns: string, name: string, query: Map<string, string[]>): void {
    const pod = existing(typeOf('pods'), ns, name);
    const container = containerOf(pod, query.get('container')?.[0], 'log');
    const first = (k: string): string | undefined => query.get(k)?.[0];
    const flag = (k: string): boolean => {
      const v = first(k);
      return v !== undefined && v !== '0' && v.toLowerCase() !== 'false';
    };
    const key = `${ns}/${name}/${container}`;
    let lines = [...(logs.get(key) ?? [])];
    const tail = first('tailLines');
    if (tail !== undefined) {
      const nTail = Number(parseGoInt64(tail) ?? -1n);
      if (nTail >= 0) lines = nTail === 0 ? [] : lines.slice(-nTail);
    }
    const sinceSeconds = first('sinceSeconds');
    if (sinceSeconds !== undefined) {
      const cutoff = Date.now() - Number(parseGoInt64(sinceSeconds) ?? 0n) * 1000;
      lines = lines.filter((l) => l.time.getTime() >= cutoff);
    }
    const sinceTime = first('sinceTime');
    if (sinceTime !== undefined) lines = lines.filter((l) => l.time.getTime() >= Date.parse(sinceTime));
    const timestamps = flag('timestamps');
    let budget = first('limitBytes') === undefined ? Infinity : Number(parseGoInt64(first('limitBytes') ?? '') ?? 0n);
    const fmt = (l: LogLine): string => `${timestamps ? `${l.time.toISOString().replace('Z', '000000Z').replace(/\.(\d{9})\d*Z$/, '.$1Z')} ` : ''}${l.text}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
    const out = (text: string): boolean => {
      if (budget <= 0) return false;
      const b = Buffer.from(text);
      const chunk = b.length > budget ? b.subarray(0, budget) : b;
      budget -= chunk.length;
      res.write(chunk);
      return budget > 0;
    };
    for (const l of lines) if (!out(fmt(l))) return void res.end();
    if (!flag('follow')) return void res.end();
    res.flushHeaders();
    const set = followers.get(key) ?? new Set();
    followers.set(key, set);
    const f = (l: LogLine | undefined): void => {
      if (l === undefined || !out(fmt(l))) stop();
    };
    const stop = (): void => {
      set.delete(f);
      closers.delete(stop);
      if (!res.writableEnded) res.end();
    };
    set.add(f);
    closers.add(stop);
    res.on('close', stop);
  }

  // ------------------------------------------------------------------------------- upgrades (exec)
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => [...offered].find((p) => execProtocols.includes(p)) ?? false });

  function rawStatus(socket: Duplex, status: KubeStatus): void {
    const r = statusResponse(status);
    const head = [`HTTP/1.1 ${r.statusCode} ${STATUS_CODES[r.statusCode] ?? ''}`, ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`), 'connection: close', '', ''].join('\r\n');
    socket.end(Buffer.concat([Buffer.from(head), r.body]));
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const rec = record(req);
    rec.upgrade = String(req.headers.upgrade ?? '');
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => undefined);
    const fail = (status: KubeStatus): void => {
      rec.status = status.code;
      rawStatus(socket, status);
    };
    try {
      const { info, query, as } = admit(req, rec);
      if (!info.isResourceRequest) return fail(notFound(info.path));
      const t = resolveType(info);
      if (t.resource !== 'pods' || !['exec', 'attach', 'portforward'].includes(info.subresource)) return fail(badRequestStatus('the stand-in upgrades only pods/exec'));
      if (info.subresource === 'portforward') return fail(badRequestStatus(`pods/${info.subresource} is not supported by the stand-in`));
      const spdy = rec.upgrade.toLowerCase() === 'spdy/3.1';
      if (!spdy && rec.upgrade.toLowerCase() !== 'websocket') return fail(badRequestStatus(`${rec.upgrade} is not supported by the stand-in: use WebSocket or SPDY/3.1 (${execProtocols.join(', ')})`));
      const pod = existing(t, info.namespace, info.name);
      const container = containerOf(pod, query.get('container')?.[0], 'exec');
      // attach: the stand-in has no running containers, so each attach starts the container's own
      // command (`command` + `args` of its spec, else an echo of what it reads) — stdin, output and
      // the exit Status then flow exactly as for exec.
      const command = info.subresource === 'attach' ? attachCommand(pod, container) : query.get('command') ?? [];
      if (command.length === 0) return fail(badRequestStatus('you must specify at least 1 command'));
      const flag = (k: string): boolean => {
        const v = query.get(k)?.[0];
        return v !== undefined && v !== '0' && v.toLowerCase() !== 'false';
      };
      const er: ExecRequest = { namespace: info.namespace, pod: info.name, container, command, stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr'), tty: flag('tty') };
      if (!er.stdin && !er.stdout && !er.stderr) return fail(badRequestStatus('you must specify at least one of stdin, stdout, stderr'));
      if (spdy) {
        const offeredVersions = req.headersDistinct['x-stream-protocol-version'] ?? [];
        const chosen = negotiateStreamProtocol(offeredVersions, execProtocols);
        if (chosen === undefined) return fail(forbiddenStatus({}, `unable to upgrade: unable to negotiate protocol: client supports [${offeredVersions.join(', ')}], server accepts [${execProtocols.join(', ')}]`));
        rec.status = 101;
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${chosen}\r\n\r\n`);
        const entry = { namespace: er.namespace, pod: er.pod, container, command, tty: er.tty, protocol: chosen, transport: 'SPDY/3.1', user: as.name, stdin: '', resizes: [], stdinClosed: false } as Omit<ExecRecord, 'done'> as ExecRecord;
        entry.done = serveSpdyExec(socket, head, chosen, er, execHandler, entry);
        execs.push(entry);
        const stop = (): void => void socket.destroy();
        closers.add(stop);
        socket.on('close', () => closers.delete(stop));
        return;
      }
      const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((x) => x.trim());
      if (!offered.some((p) => execProtocols.includes(p))) return fail(badRequestStatus(`unable to upgrade: no supported subprotocol in [${offered.join(', ')}]`));
      wss.handleUpgrade(req, socket, head, (ws) => {
        rec.status = 101;
        const base = { namespace: er.namespace, pod: er.pod, container, command, tty: er.tty, protocol: ws.protocol, transport: 'websocket' as const, user: as.name, stdin: '', resizes: [] as { Width: number; Height: number }[], stdinClosed: false };
        const entry = base as ExecRecord;
        entry.done = serveExec(ws, ws.protocol, er, execHandler, entry);
        execs.push(entry);
        const stop = (): void => ws.terminate();
        closers.add(stop);
        ws.on('close', () => closers.delete(stop));
      });
    } catch (e) {
      if (e instanceof HttpError) return fail(e.status);
      fail(internalErrorStatus((e as Error).message));
    }
  }

  // ------------------------------------------------------------------------------- server
  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rec = record(req);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_BODY) tooLarge = true;
      else chunks.push(c);
    }
    const raw = Buffer.concat(chunks);
    const body = raw.toString('utf8');
    if (raw.length > 0) {
      rec.body = body;
      rec.rawBody = raw;
    }
    const origWriteHead = res.writeHead.bind(res);
    res.writeHead = ((code: number, ...rest: unknown[]) => {
      rec.status = code;
      return (origWriteHead as (c: number, ...r: unknown[]) => ServerResponse)(code, ...rest);
    }) as typeof res.writeHead;
    try {
      if (tooLarge) throw new HttpError(requestEntityTooLargeStatus());
      const { info, query } = admit(req, rec);
      const over = options.intercept?.(req, info);
      if (over) {
        res.writeHead(over.status, over.headers);
        return void res.end(over.body);
      }
      if (!info.isResourceRequest) return nonResource(req, res, info.path);
      if (req.headers.upgrade) throw new HttpError(badRequestStatus('unexpected upgrade'));
      await handleResource(req, res, info, query, raw);
    } catch (e) {
      if (e instanceof HttpError) return sendStatus(res, e.status);
      sendStatus(res, internalErrorStatus((e as Error).stack ?? String(e)));
    }
  }

  const server: Server = createServer({ cert: tls.cert, key: tls.key, ...(options.clientCA ? { ca: options.clientCA, requestCert: true, rejectUnauthorized: false } : {}) }, (req, res) => {
    void onRequest(req, res);
  });
  server.on('upgrade', onUpgrade);
  server.on('connection', (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `https://${options.host ?? '127.0.0.1'}:${port}`;

  const api: KubeStandIn = {
    url,
    port,
    caCert: tls.cert,
    token: firstToken,
    requests,
    execs,
    types,
    clearRequests: () => void requests.splice(0),
    type: typeOf,
    create: (obj) => seedObject(obj),
    get(type, namespace, name) {
      const t = typeOf(type);
      const x = bucket(t).get(objKey(t.namespaced ? namespace ?? '' : '', name));
      return x ? withTypeMeta(t, clone(x)) : undefined;
    },
    list(type, namespace) {
      const t = typeOf(type);
      return listObjects(t, namespace ?? '').map((x) => withTypeMeta(t, clone(x)));
    },
    update(obj) {
      const t = typeForObject(obj);
      const m = o(obj.metadata);
      return doUpdate(t, str(m.namespace), str(m.name), obj, 'all', false);
    },
    delete(type, namespace, name) {
      const t = typeOf(type);
      if (!bucket(t).has(objKey(t.namespaced ? namespace ?? '' : '', name))) return false;
      doDelete(t, namespace ?? '', name, {}, false);
      return true;
    },
    appendLog(namespace, pod, text, container) {
      const p = bucket(typeOf('pods')).get(objKey(namespace, pod));
      if (!p) throw new Error(`no pod ${namespace}/${pod}`);
      const c = container ?? str(o(((o(p.spec).containers as Json[] | undefined) ?? [])[0]).name);
      const key = `${namespace}/${pod}/${c}`;
      const list = logs.get(key) ?? [];
      logs.set(key, list);
      for (const line of text.replace(/\n$/, '').split('\n')) {
        const l = { time: new Date(), text: line };
        list.push(l);
        for (const f of followers.get(key) ?? []) f(l);
      }
    },
    resourceVersion: () => String(rv),
    kubeconfig(opts = {}) {
      const user: Record<string, string> = {};
      if (opts.clientCert) {
        user['client-certificate-data'] = Buffer.from(opts.clientCert.cert).toString('base64');
        user['client-key-data'] = Buffer.from(opts.clientCert.key).toString('base64');
      } else user.token = opts.token ?? firstToken;
      return YAML.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'stand-in', cluster: { server: opts.server ?? url, 'certificate-authority-data': Buffer.from(tls.cert).toString('base64') } }],
        users: [{ name: 'stand-in-user', user }],
        contexts: [{ name: 'stand-in', context: { cluster: 'stand-in', user: 'stand-in-user', namespace: opts.namespace ?? 'default' } }],
        'current-context': 'stand-in',
        preferences: {},
      });
    },
    async writeKubeconfig(dir, opts) {
      const p = join(dir, 'kubeconfig');
      await writeFile(p, api.kubeconfig(opts), { mode: 0o600 });
      return p;
    },
    async close() {
      for (const c of [...closers]) c();
      wss.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of open) s.destroy();
      await closed;
    },
  };
  return api;
}
