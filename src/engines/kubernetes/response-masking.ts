/**
 * Masking of what the API server answers, for the Kubernetes engine.
 *
 * - Objects, lists, `Table`s (`as=Table`: the rows' cells and objects) and watch events go through
 *   the session's `Masker.maskJson` with the resource's kind as hint, so path rules such as
 *   `Secret.data.*` apply to rows that carry only `PartialObjectMetadata` too.
 * - `[]byte` fields (`Secret.data`, `ConfigMap.binaryData`) are base64 on the wire: their values
 *   are decoded before masking (detectors see the text) and every value masking changed is encoded
 *   again, so typed clients (`kubectl describe secret`) still decode the answer.
 * - `kubectl.kubernetes.io/last-applied-configuration` holds a copy of the object as applied —
 *   for a Secret, its data. It is parsed and masked like the object itself (fail closed: an
 *   annotation that does not parse is redacted).
 * - Watch streams are masked event by event and pod logs line by line, as they arrive: nothing is
 *   buffered beyond one event or one line.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { GatehouseError } from '../../core/errors.js';
import type { Masker } from '../../core/masking/types.js';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Fields of type `[]byte` (base64 in JSON), by kind. */
const BYTES_FIELDS: Readonly<Record<string, string>> = { secret: 'data', configmap: 'binaryData' };
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Kinds of the built-in resources, by plural (the hint for rows and objects without `kind`). */
const KINDS: Readonly<Record<string, string>> = {
  bindings: 'Binding', componentstatuses: 'ComponentStatus', configmaps: 'ConfigMap', endpoints: 'Endpoints', events: 'Event', limitranges: 'LimitRange',
  namespaces: 'Namespace', nodes: 'Node', persistentvolumeclaims: 'PersistentVolumeClaim', persistentvolumes: 'PersistentVolume', pods: 'Pod',
  podtemplates: 'PodTemplate', replicationcontrollers: 'ReplicationController', resourcequotas: 'ResourceQuota', secrets: 'Secret',
  serviceaccounts: 'ServiceAccount', services: 'Service', deployments: 'Deployment', daemonsets: 'DaemonSet', replicasets: 'ReplicaSet',
  statefulsets: 'StatefulSet', controllerrevisions: 'ControllerRevision', jobs: 'Job', cronjobs: 'CronJob', ingresses: 'Ingress',
  networkpolicies: 'NetworkPolicy', ingressclasses: 'IngressClass', roles: 'Role', rolebindings: 'RoleBinding', clusterroles: 'ClusterRole',
  clusterrolebindings: 'ClusterRoleBinding', customresourcedefinitions: 'CustomResourceDefinition', storageclasses: 'StorageClass',
  leases: 'Lease', endpointslices: 'EndpointSlice', horizontalpodautoscalers: 'HorizontalPodAutoscaler', poddisruptionbudgets: 'PodDisruptionBudget',
  priorityclasses: 'PriorityClass', certificatesigningrequests: 'CertificateSigningRequest', tokenreviews: 'TokenReview',
  selfsubjectaccessreviews: 'SelfSubjectAccessReview', subjectaccessreviews: 'SubjectAccessReview',
};

/**
 * The kind a resource's objects have: built-in resources by table, others by singularizing the
 * plural (kinds are compared case-insensitively by the masker, so `sealedsecrets` → `sealedsecret`
 * matches `SealedSecret`). Subresources answer other kinds (`Scale`, `Eviction`): no hint.
 */
export function kindHint(resource: string, subresource = ''): string | undefined {
  if (resource === '' || (subresource !== '' && subresource !== 'status')) return undefined;
  const known = KINDS[resource];
  if (known !== undefined) return known;
  if (resource.endsWith('ies')) return `${resource.slice(0, -3)}y`;
  if (/(ss|sh|ch|x)es$/.test(resource)) return resource.slice(0, -2);
  if (resource.endsWith('s')) return resource.slice(0, -1);
  return resource;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Applies `f` to every object root of a Kubernetes answer (object, `*List` items, `Table` rows'
 * objects, a watch event's object), copy-on-write, in document order.
 */
function mapRoots(v: unknown, hint: string | undefined, f: (obj: Record<string, unknown>, kind: string | undefined) => Record<string, unknown>, depth = 0): unknown {
  if (depth > 8) return v;
  if (Array.isArray(v)) return mapArray(v, (el) => mapRoots(el, hint, f, depth + 1));
  if (!isRecord(v)) return v;
  const own = typeof v.kind === 'string' && v.kind !== 'PartialObjectMetadata' ? v.kind : undefined;
  const kind = own ?? hint;
  if (kind === 'Table' && Array.isArray(v.rows)) {
    const rows = mapArray(v.rows, (row) => {
      if (!isRecord(row) || !isRecord(row.object)) return row;
      const obj = mapRoots(row.object, hint === 'Table' ? undefined : hint, f, depth + 1);
      return obj === row.object ? row : { ...row, object: obj };
    });
    return rows === v.rows ? v : { ...v, rows };
  }
  if (kind !== undefined && kind.endsWith('List') && Array.isArray(v.items)) {
    const itemHint = kind.length > 4 ? kind.slice(0, -4) : hint === kind ? undefined : hint;
    const items = mapArray(v.items, (item) => mapRoots(item, itemHint, f, depth + 1));
    return items === v.items ? v : { ...v, items };
  }
  if (own === undefined && typeof v.type === 'string' && isRecord(v.object) && Object.keys(v).length <= 2) {
    const obj = mapRoots(v.object, hint, f, depth + 1);
    return obj === v.object ? v : { ...v, object: obj };
  }
  return f(v, kind);
}

function mapArray(arr: readonly unknown[], f: (el: unknown) => unknown): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < arr.length; i++) {
    const el = arr[i];
    const r = f(el);
    if (out === undefined && r !== el) out = arr.slice(0, i);
    if (out !== undefined) out.push(r);
  }
  return out ?? (arr as unknown[]);
}

interface BytesFix {
  /** Per key: the wire value and, when it is base64 of UTF-8 text, that text. */
  values: Map<string, { wire: string; text?: string }>;
}

/**
 * Masks one JSON answer of the API server (object, list, Table, watch event, Status). Throws
 * `ERR_MASKING_FAILED` when a value cannot be inspected; the engine then withholds the answer.
 */
export function maskKubeJson(masker: Masker, value: unknown, hint: string | undefined): unknown {
  if (!masker.active) return value;
  const fixes: BytesFix[] = [];
  const prepared = mapRoots(value, hint, (obj, kind) => prepareObject(masker, obj, kind, fixes));
  const masked = masker.maskJson(prepared, hint);
  let i = 0;
  return mapRoots(masked, hint, (obj, kind) => {
    const field = kind === undefined ? undefined : BYTES_FIELDS[kind.toLowerCase()];
    if (field === undefined || !isRecord(obj[field])) return obj;
    return finishBytes(obj, field, fixes[i++]);
  });
}

function prepareObject(masker: Masker, obj: Record<string, unknown>, kind: string | undefined, fixes: BytesFix[]): Record<string, unknown> {
  let out = obj;
  const meta = obj.metadata;
  if (isRecord(meta) && isRecord(meta.annotations) && typeof meta.annotations[LAST_APPLIED] === 'string') {
    const original = meta.annotations[LAST_APPLIED];
    let replaced: string;
    try {
      const parsed: unknown = JSON.parse(original);
      const masked = maskKubeJson(masker, parsed, kind);
      replaced = JSON.stringify(masked) === JSON.stringify(parsed) ? original : `${JSON.stringify(masked)}\n`;
    } catch (e) {
      if (e instanceof GatehouseError) throw e;
      replaced = '[redacted]';
    }
    if (replaced !== original) out = { ...obj, metadata: { ...meta, annotations: { ...meta.annotations, [LAST_APPLIED]: replaced } } };
  }
  const field = kind === undefined ? undefined : BYTES_FIELDS[kind.toLowerCase()];
  if (field !== undefined && isRecord(obj[field])) {
    const data = obj[field] as Record<string, unknown>;
    const fix: BytesFix = { values: new Map() };
    const view: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(data)) {
      let shown: unknown = v;
      if (typeof v === 'string') {
        const text = decodeText(v);
        fix.values.set(k, text === undefined ? { wire: v } : { wire: v, text });
        if (text !== undefined) shown = text;
      }
      Object.defineProperty(view, k, { value: shown, enumerable: true, writable: true, configurable: true });
    }
    fixes.push(fix);
    out = { ...out, [field]: view };
  }
  return out;
}

/** Base64 (standard, padded, as Go encodes `[]byte`) of UTF-8 text, or undefined. */
function decodeText(wire: string): string | undefined {
  if (wire.length % 4 !== 0 || !BASE64.test(wire)) return undefined;
  try {
    return utf8.decode(Buffer.from(wire, 'base64'));
  } catch {
    return undefined;
  }
}

function finishBytes(obj: Record<string, unknown>, field: string, fix: BytesFix | undefined): Record<string, unknown> {
  const data = obj[field] as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    let wire: unknown = v;
    if (typeof v === 'string') {
      // unchanged: the original bytes; changed (or not known): base64 of what masking left
      const d = fix?.values.get(k);
      if (d !== undefined && (d.text ?? d.wire) === v) wire = d.wire;
      else wire = Buffer.from(v, 'utf8').toString('base64');
    }
    Object.defineProperty(out, k, { value: wire, enumerable: true, writable: true, configurable: true });
  }
  return { ...obj, [field]: out };
}

/** Splits a byte stream at `\n` and hands each line (with its newline) to `onLine`. */
abstract class LineTransform extends Transform {
  #parts: Buffer[] = [];
  #size = 0;
  readonly #maxLine: number;

  constructor(maxLine: number) {
    super();
    this.#maxLine = maxLine;
  }

  protected abstract line(line: Buffer, complete: boolean): Buffer | string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, nl + 1);
        start = nl + 1;
        const line = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]);
        this.#parts = [];
        this.#size = 0;
        this.#emit(this.line(line, true));
      }
      if (start < chunk.length) {
        this.#parts.push(chunk.subarray(start));
        this.#size += chunk.length - start;
        if (this.#size > this.#maxLine) this.#overflow(Buffer.concat(this.#parts.splice(0)));
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.#parts.length > 0) this.#emit(this.line(Buffer.concat(this.#parts.splice(0)), false));
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  /** A line longer than the limit: handed over incomplete. */
  #overflow(partial: Buffer): void {
    this.#size = 0;
    this.#emit(this.line(partial, false));
  }

  #emit(out: Buffer | string | undefined): void {
    if (out !== undefined && out.length > 0) this.push(out);
  }
}

/**
 * Masks a watch stream (newline-delimited JSON events) event by event. An event that does not
 * parse, or one the masker cannot inspect, is replaced by an `ERROR` event carrying `onError`'s
 * Status and everything after it is dropped (fail closed); `onError` should then end the stream.
 */
export class WatchMaskTransform extends LineTransform {
  readonly #masker: Masker;
  readonly #hint: string | undefined;
  readonly #onError: (err: GatehouseError) => unknown;
  #failed = false;

  constructor(masker: Masker, hint: string | undefined, onError: (err: GatehouseError) => unknown, maxEvent = 16 * 1024 * 1024) {
    super(maxEvent);
    this.#masker = masker;
    this.#hint = hint;
    this.#onError = onError;
  }

  protected line(line: Buffer): string | undefined {
    if (this.#failed) return undefined;
    const text = line.toString('utf8').trim();
    if (text === '') return undefined;
    try {
      let ev: unknown;
      try {
        ev = JSON.parse(text);
      } catch {
        throw new GatehouseError('ERR_MASKING_FAILED', 'a watch event could not be parsed for masking; the watch was ended', { detail: `event of ${line.length} bytes` });
      }
      return `${JSON.stringify(maskKubeJson(this.#masker, ev, this.#hint))}\n`;
    } catch (e) {
      this.#failed = true;
      const err = e instanceof GatehouseError ? e : new GatehouseError('ERR_MASKING_FAILED', 'a watch event could not be masked; the watch was ended');
      return `${JSON.stringify({ type: 'ERROR', object: this.#onError(err) })}\n`;
    }
  }
}

/**
 * Masks text (pod logs) line by line with the session's detectors. A line the masker cannot
 * inspect is replaced by a note and everything after it is dropped (fail closed); `onError` should
 * then end the stream.
 */
export class TextMaskTransform extends LineTransform {
  readonly #masker: Masker;
  readonly #onError: (err: GatehouseError) => void;
  #failed = false;

  constructor(masker: Masker, onError: (err: GatehouseError) => void, maxLine = 64 * 1024) {
    super(maxLine);
    this.#masker = masker;
    this.#onError = onError;
  }

  protected line(line: Buffer): Buffer | string | undefined {
    if (this.#failed) return undefined;
    const text = line.toString('utf8');
    try {
      const masked = this.#masker.maskText(text);
      return masked === text ? line : masked;
    } catch (e) {
      this.#failed = true;
      this.#onError(e instanceof GatehouseError ? e : new GatehouseError('ERR_MASKING_FAILED', 'a line could not be masked'));
      return `\n[gatehouse: the rest of this output was withheld: ${e instanceof GatehouseError ? e.message : 'it could not be inspected for masking'}]\n`;
    }
  }
}
