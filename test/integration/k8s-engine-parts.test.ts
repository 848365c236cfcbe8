/**
 * The Kubernetes engine's socket-free parts: which headers go to the API server, the impersonation
 * headers, and the masking of objects, lists, Tables, watch streams and logs (chunked at every
 * boundary). The end-to-end tests with kubectl are in k8s-engine.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { GatehouseError } from '../../src/core/errors.js';
import type { Identity } from '../../src/core/identity/types.js';
import { createMasker } from '../../src/core/masking/index.js';
import type { MaskPlan } from '../../src/core/policy/types.js';
import { forwardHeaders, impersonationFor, impersonationHeaders, jsonAccept } from '../../src/engines/kubernetes/headers.js';
import { TextMaskTransform, WatchMaskTransform, kindHint, maskKubeJson } from '../../src/engines/kubernetes/response-masking.js';

const rule = { policy: 'p', index: 0, effect: 'mask' as const };
const plan: MaskPlan = [
  { columns: [], paths: ['Secret.data.*'], detectors: [], strategy: 'redact', rule },
  { columns: [], paths: [], detectors: ['api_key'], strategy: 'redact', rule },
];
const masker = createMasker(plan, { hashKey: 'k'.repeat(32) });
const none = createMasker([], { hashKey: 'k'.repeat(32) });
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const KEY = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';

test('headers toward the API server: no agent credentials, impersonation, gatehouse or hop-by-hop headers', () => {
  const raw = [
    'Host', 'gw:8443', 'Authorization', 'Bearer agent-token', 'Impersonate-User', 'root', 'impersonate-group', 'a', 'Impersonate-Group', 'b',
    'X-Gatehouse-Reason', 'because', 'Connection', 'keep-alive, X-Private', 'X-Private', 'p', 'Keep-Alive', 'timeout=5', 'TE', 'trailers',
    'Accept', 'application/vnd.kubernetes.protobuf, application/json', 'Accept-Encoding', 'gzip', 'User-Agent', 'kubectl/v1.32.4', 'X-Multi', '1', 'x-multi', '2',
  ];
  assert.deepEqual(impersonationHeaders(raw), ['Impersonate-User', 'impersonate-group', 'Impersonate-Group']);
  assert.deepEqual(forwardHeaders(raw, { masking: false }), {
    accept: 'application/vnd.kubernetes.protobuf, application/json',
    'accept-encoding': 'gzip',
    'user-agent': 'kubectl/v1.32.4',
    'x-multi': ['1', '2'],
  });
  assert.deepEqual(forwardHeaders(raw, { masking: true }), { accept: 'application/json', 'user-agent': 'kubectl/v1.32.4', 'x-multi': ['1', '2'] });
  assert.equal(forwardHeaders([], { masking: true }).accept, 'application/json');
  const ws = forwardHeaders(['Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Protocol', 'v5.channel.k8s.io'], { masking: false, upgrade: 'raw' });
  assert.deepEqual(ws, { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'k', 'sec-websocket-protocol': 'v5.channel.k8s.io' });
  assert.deepEqual(forwardHeaders(['Sec-WebSocket-Key', 'k', 'Upgrade', 'websocket'], { masking: false, upgrade: 'websocket' }), {});
});

test('Accept for a masked answer keeps only what Gatehouse can inspect', () => {
  assert.equal(jsonAccept('application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json'), 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json');
  assert.equal(jsonAccept('application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json;as=Table;v=v1;g=meta.k8s.io'), 'application/json;as=Table;v=v1;g=meta.k8s.io');
  assert.equal(jsonAccept('application/vnd.kubernetes.protobuf'), 'application/json');
  assert.equal(jsonAccept('application/yaml, application/cbor'), 'application/json');
  assert.equal(jsonAccept('*/*'), '*/*');
});

test('impersonation headers from the connection\'s template and the token', () => {
  const id: Identity = { issuer: 'https://idp', subject: 'agent-a', clientId: 'cid-1', groups: ['ai-agents', 'ops'], scopes: [], expiresAt: 0, claims: {} };
  assert.deepEqual(impersonationFor({ groups: [] }, id), { 'impersonate-user': 'agent-a' });
  assert.deepEqual(impersonationFor({ user: 'gatehouse:{client_id}', groups: ['agents', '{groups}', 'ops'] }, id), {
    'impersonate-user': 'gatehouse:cid-1',
    'impersonate-group': ['agents', 'ai-agents', 'ops'],
  });
});

test('kind hints for rows and objects without a kind', () => {
  assert.equal(kindHint('secrets'), 'Secret');
  assert.equal(kindHint('configmaps', 'status'), 'ConfigMap');
  assert.equal(kindHint('pods', 'log'), undefined);
  assert.equal(kindHint('sealedsecrets'), 'sealedsecret');
  assert.equal(kindHint('policies'), 'policy');
  assert.equal(kindHint('ingresses'), 'Ingress');
  assert.equal(kindHint('gatewayclasses'), 'gatewayclass');
});

test('Secret data: masked, still base64; unmasked values keep their exact bytes; binary values redacted by the path rule', () => {
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'Opaque', data: { password: b64('hunter2'), bin: Buffer.from([0xff, 0x00]).toString('base64'), empty: '' } };
  const out = maskKubeJson(masker, secret, 'Secret') as typeof secret;
  assert.deepEqual(out.data, { password: b64('[redacted]'), bin: b64('[redacted]'), empty: b64('[redacted]') });
  assert.equal(out.metadata.name, 's');
  assert.deepEqual(secret.data.password, b64('hunter2'), 'the input is not modified');
  // a detector-only plan: decoded for the detectors, re-encoded only where something was found
  const detectOnly = createMasker([plan[1]!], { hashKey: 'k'.repeat(32) });
  const d = maskKubeJson(detectOnly, { kind: 'Secret', data: { a: b64(`token ${KEY}`), b: b64('nothing here'), c: 'not base64!' } }, undefined) as { data: Record<string, string> };
  assert.equal(Buffer.from(d.data.a ?? '', 'base64').toString(), 'token [github_token]');
  assert.equal(d.data.b, b64('nothing here'));
  assert.equal(d.data.c, 'not base64!');
  assert.equal(maskKubeJson(none, secret, 'Secret'), secret, 'nothing to mask: the same object');
});

test('lists, Tables (PartialObjectMetadata rows, whole objects), watch events and last-applied annotations', () => {
  const lastApplied = { 'kubectl.kubernetes.io/last-applied-configuration': `${JSON.stringify({ apiVersion: 'v1', kind: 'Secret', data: { k: b64('hunter2') } })}\n` };
  const list = { kind: 'SecretList', items: [{ metadata: { name: 'a', annotations: lastApplied }, data: { k: b64('hunter2') } }] };
  const l = maskKubeJson(masker, list, 'Secret') as { items: { metadata: { annotations: Record<string, string> }; data: Record<string, string> }[] };
  assert.equal(l.items[0]?.data.k, b64('[redacted]'));
  assert.ok(!JSON.stringify(l).includes(b64('hunter2')));
  const table = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    columnDefinitions: [{ name: 'Name' }],
    rows: [
      { cells: ['a', `token ${KEY}`], object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'a', annotations: lastApplied } } },
      { cells: ['b'], object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'b' }, data: { k: b64('hunter2') } } },
    ],
  };
  const t = JSON.stringify(maskKubeJson(masker, table, 'Secret'));
  assert.ok(!t.includes(b64('hunter2')) && !t.includes(KEY), t);
  assert.ok(t.includes('token [github_token]'));
  const ev = maskKubeJson(masker, { type: 'MODIFIED', object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a' }, data: { k: b64('hunter2') } } }, 'Secret');
  assert.deepEqual((ev as { object: { data: unknown } }).object.data, { k: b64('[redacted]') });
  // an annotation that does not parse is redacted (fail closed)
  const bad = maskKubeJson(masker, { kind: 'Secret', metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{not json' } } }, 'Secret');
  assert.equal((bad as { metadata: { annotations: Record<string, string> } }).metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], '[redacted]');
});

async function through(t: NodeJS.ReadWriteStream, chunks: Buffer[]): Promise<string> {
  const out: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunks).pipe(t);
    t.on('data', (c: Buffer | string) => out.push(Buffer.from(c)));
    t.on('end', resolve);
    t.on('error', reject);
  });
  return Buffer.concat(out).toString('utf8');
}

function splitAt(b: Buffer, i: number): Buffer[] {
  return [b.subarray(0, i), b.subarray(i)].filter((x) => x.length > 0);
}

test('watch streams are masked event by event, however the stream is chunked', async () => {
  const events = [
    { type: 'ADDED', object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a' }, data: { k: b64('hunter2') } } },
    { type: 'BOOKMARK', object: { kind: 'Secret', apiVersion: 'v1', metadata: { resourceVersion: '12' } } },
    { type: 'DELETED', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c' }, data: { t: `x ${KEY} ü` } } },
  ];
  const wire = Buffer.from(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
  const expected = events.map((e) => `${JSON.stringify(maskKubeJson(masker, e, 'Secret'))}\n`).join('');
  assert.ok(!expected.includes(KEY) && !expected.includes(b64('hunter2')));
  for (let i = 0; i <= wire.length; i += 7) {
    assert.equal(await through(new WatchMaskTransform(masker, 'Secret', () => ({})), splitAt(wire, i)), expected, `split at ${i}`);
  }
  let failed: GatehouseError | undefined;
  const out = await through(new WatchMaskTransform(masker, 'Secret', (e) => { failed = e; return { kind: 'Status', code: 500 }; }), [Buffer.from(`${JSON.stringify(events[0])}\n{"type":"ADDED","obj`), Buffer.from('ect": nope}\n'), Buffer.from(`${JSON.stringify(events[2])}\n`)]);
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
  assert.deepEqual(lines.map((l) => l.type), ['ADDED', 'ERROR'], 'nothing after the event that could not be inspected');
  assert.equal(failed?.code, 'ERR_MASKING_FAILED');
});

test('logs are masked line by line, lines and UTF-8 characters split across chunks', async () => {
  const text = `first line\nkey ${KEY} ok\nüñíçødé ${KEY}\nlast without newline`;
  const wire = Buffer.from(text);
  const expected = masker.maskText(text);
  assert.ok(!expected.includes(KEY));
  for (let i = 0; i <= wire.length; i++) {
    assert.equal(await through(new TextMaskTransform(masker, () => undefined), splitAt(wire, i)), expected, `split at ${i}`);
  }
  // lines the masker finds nothing in go out as the same bytes
  const raw = Buffer.from([0x61, 0xff, 0x0a]);
  const out: Buffer[] = [];
  const t = new TextMaskTransform(masker, () => undefined);
  t.on('data', (c: Buffer) => out.push(c));
  await new Promise<void>((resolve) => {
    t.on('end', resolve);
    t.end(raw);
  });
  assert.deepEqual(Buffer.concat(out), raw);
});
