/**
 * Decoding of the Kubernetes protobuf request bodies kubectl's typed clients send
 * (`application/vnd.kubernetes.protobuf`: `k8s\0` + `runtime.Unknown{typeMeta, raw}`), for the
 * handful of kinds the stand-in accepts that way (`kubectl create namespace|secret|configmap|
 * serviceaccount`, `kubectl auth can-i`). Field numbers are those of the generated.proto files,
 * checked against kubectl's own bytes. An unknown field is an error, never silently dropped.
 * Empty values are left out, as Go's JSON encoding of these types leaves them out.
 */
import type { Json } from './kube-patch.js';

export class ProtobufError extends Error {
  override readonly name = 'ProtobufError';
}

type Scalar = 'string' | 'bytes' | 'int64' | 'bool' | 'time';
type FieldKind = Scalar | { msg: string } | { map: 'string' | 'bytes' };
interface FieldDef {
  name: string;
  kind: FieldKind;
  repeated?: boolean;
}

const f = (name: string, kind: FieldKind, repeated = false): FieldDef => ({ name, kind, repeated });

const SCHEMAS: Record<string, Record<number, FieldDef>> = {
  ObjectMeta: {
    1: f('name', 'string'), 2: f('generateName', 'string'), 3: f('namespace', 'string'), 4: f('selfLink', 'string'), 5: f('uid', 'string'),
    6: f('resourceVersion', 'string'), 7: f('generation', 'int64'), 8: f('creationTimestamp', 'time'), 9: f('deletionTimestamp', 'time'),
    10: f('deletionGracePeriodSeconds', 'int64'), 11: f('labels', { map: 'string' }), 12: f('annotations', { map: 'string' }),
    13: f('ownerReferences', { msg: 'OwnerReference' }, true), 14: f('finalizers', 'string', true),
  },
  OwnerReference: { 1: f('kind', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string'), 6: f('controller', 'bool'), 7: f('blockOwnerDeletion', 'bool') },
  Secret: { 1: f('metadata', { msg: 'ObjectMeta' }), 2: f('data', { map: 'bytes' }), 3: f('type', 'string'), 4: f('stringData', { map: 'string' }), 5: f('immutable', 'bool') },
  ConfigMap: { 1: f('metadata', { msg: 'ObjectMeta' }), 2: f('data', { map: 'string' }), 3: f('binaryData', { map: 'bytes' }), 4: f('immutable', 'bool') },
  Namespace: { 1: f('metadata', { msg: 'ObjectMeta' }), 2: f('spec', { msg: 'NamespaceSpec' }), 3: f('status', { msg: 'NamespaceStatus' }) },
  NamespaceSpec: { 1: f('finalizers', 'string', true) },
  NamespaceStatus: { 1: f('phase', 'string') },
  ServiceAccount: { 1: f('metadata', { msg: 'ObjectMeta' }), 2: f('secrets', { msg: 'ObjectReference' }, true), 3: f('imagePullSecrets', { msg: 'LocalObjectReference' }, true), 4: f('automountServiceAccountToken', 'bool') },
  ObjectReference: { 1: f('kind', 'string'), 2: f('namespace', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string'), 6: f('resourceVersion', 'string'), 7: f('fieldPath', 'string') },
  LocalObjectReference: { 1: f('name', 'string') },
  SelfSubjectAccessReview: { 1: f('metadata', { msg: 'ObjectMeta' }), 2: f('spec', { msg: 'SelfSubjectAccessReviewSpec' }), 3: f('status', { msg: 'SubjectAccessReviewStatus' }) },
  SelfSubjectAccessReviewSpec: { 1: f('resourceAttributes', { msg: 'ResourceAttributes' }), 2: f('nonResourceAttributes', { msg: 'NonResourceAttributes' }) },
  ResourceAttributes: { 1: f('namespace', 'string'), 2: f('verb', 'string'), 3: f('group', 'string'), 4: f('version', 'string'), 5: f('resource', 'string'), 6: f('subresource', 'string'), 7: f('name', 'string') },
  NonResourceAttributes: { 1: f('path', 'string'), 2: f('verb', 'string') },
  SubjectAccessReviewStatus: { 1: f('allowed', 'bool'), 2: f('reason', 'string'), 3: f('evaluationError', 'string'), 4: f('denied', 'bool') },
};

/** `apiVersion/kind` → top-level message. */
const KINDS: Record<string, string> = {
  'v1/Secret': 'Secret',
  'v1/ConfigMap': 'ConfigMap',
  'v1/Namespace': 'Namespace',
  'v1/ServiceAccount': 'ServiceAccount',
  'authorization.k8s.io/v1/SelfSubjectAccessReview': 'SelfSubjectAccessReview',
};

export const PROTOBUF_KINDS = Object.keys(KINDS);

class Reader {
  i = 0;
  constructor(readonly buf: Buffer) {}
  get done(): boolean {
    return this.i >= this.buf.length;
  }
  varint(): bigint {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      if (this.i >= this.buf.length) throw new ProtobufError('truncated varint');
      const b = this.buf[this.i++] ?? 0;
      r |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return r;
      shift += 7n;
      if (shift > 63n) throw new ProtobufError('varint too long');
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.i + len > this.buf.length) throw new ProtobufError('truncated field');
    const b = this.buf.subarray(this.i, this.i + len);
    this.i += len;
    return b;
  }
}

function decodeMessage(type: string, buf: Buffer): { [k: string]: Json } {
  const schema = SCHEMAS[type];
  if (!schema) throw new ProtobufError(`no schema for ${type}`);
  const out: { [k: string]: Json } = {};
  const r = new Reader(buf);
  while (!r.done) {
    const key = Number(r.varint());
    const num = key >> 3;
    const wire = key & 7;
    const def = schema[num];
    if (!def) throw new ProtobufError(`${type}: field ${num} is not decoded by the stand-in`);
    const kind = def.kind;
    let value: Json | undefined;
    if (kind === 'int64' || kind === 'bool') {
      if (wire !== 0) throw new ProtobufError(`${type}.${def.name}: wire type ${wire}`);
      const v = r.varint();
      value = kind === 'bool' ? v !== 0n : Number(BigInt.asIntN(64, v));
    } else {
      if (wire !== 2) throw new ProtobufError(`${type}.${def.name}: wire type ${wire}`);
      const b = r.bytes();
      if (kind === 'string') value = b.toString('utf8');
      else if (kind === 'bytes') value = b.toString('base64');
      else if (kind === 'time') {
        const t = decodeTime(b);
        value = t;
      } else if ('msg' in kind) value = decodeMessage(kind.msg, b);
      else {
        const entry = new Reader(b);
        let k = '';
        let v: Json = kind.map === 'bytes' ? '' : '';
        while (!entry.done) {
          const ek = Number(entry.varint());
          const eb = entry.bytes();
          if (ek >> 3 === 1) k = eb.toString('utf8');
          else if (ek >> 3 === 2) v = kind.map === 'bytes' ? eb.toString('base64') : eb.toString('utf8');
          else throw new ProtobufError(`${type}.${def.name}: bad map entry`);
        }
        const m = (out[def.name] ?? {}) as { [k: string]: Json };
        m[k] = v;
        out[def.name] = m;
        continue;
      }
    }
    if (def.repeated) {
      const list = (out[def.name] ?? []) as Json[];
      list.push(value ?? null);
      out[def.name] = list;
    } else if (value !== undefined) out[def.name] = value;
  }
  for (const [k, v] of Object.entries(out)) {
    if (v === '' || v === 0 || v === false || v === null || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) delete out[k];
  }
  return out;
}

function decodeTime(b: Buffer): Json {
  const r = new Reader(b);
  let seconds = 0n;
  while (!r.done) {
    const key = Number(r.varint());
    if (key >> 3 === 1) seconds = BigInt.asIntN(64, r.varint());
    else if (key >> 3 === 2) r.varint();
    else throw new ProtobufError('Time: unexpected field');
  }
  return seconds === 0n ? null : new Date(Number(seconds) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Decodes a `k8s\0` protobuf envelope into the JSON shape of the object (with apiVersion and kind). */
export function decodeK8sProtobuf(body: Buffer): { [k: string]: Json } {
  if (body.subarray(0, 4).toString('latin1') !== 'k8s\0') throw new ProtobufError('missing the k8s protobuf magic');
  const r = new Reader(body.subarray(4));
  let apiVersion = '';
  let kind = '';
  let raw: Buffer | undefined;
  while (!r.done) {
    const key = Number(r.varint());
    const b = r.bytes();
    if (key >> 3 === 1) {
      const tm = new Reader(b);
      while (!tm.done) {
        const k = Number(tm.varint());
        const v = tm.bytes().toString('utf8');
        if (k >> 3 === 1) apiVersion = v;
        else if (k >> 3 === 2) kind = v;
      }
    } else if (key >> 3 === 2) raw = b;
    else if ((key >> 3 === 3 || key >> 3 === 4) && b.length > 0) throw new ProtobufError('encoded protobuf payloads are not supported');
  }
  const type = KINDS[`${apiVersion}/${kind}`];
  if (!type) throw new ProtobufError(`protobuf bodies of ${apiVersion} ${kind} are not decoded by the stand-in (it decodes ${PROTOBUF_KINDS.join(', ')}); send JSON`);
  return { apiVersion, kind, ...decodeMessage(type, raw ?? Buffer.alloc(0)) };
}
