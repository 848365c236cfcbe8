/**
 * The stand-in Kubernetes API server spoken to directly (HTTPS and WebSocket), for what kubectl
 * does not exercise: the v4 exec channel, the v5 stdin close frame, watch resumption, bookmarks,
 * timeouts and expiry, Table and metadata-only answers, pagination, the patch flavours, conflicts
 * and the Status shapes of failures.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { WebSocket } from 'ws';
import { startKubeStandIn, type KubeStandIn, type Obj, type WatchEvent } from '../support/kube-apiserver.js';

let kube: KubeStandIn;
const TOKEN = 'test-token';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

function call(method: string, path: string, opts: { body?: unknown; contentType?: string; accept?: string; token?: string | null } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
    if (opts.accept) headers.accept = opts.accept;
    let data: string | undefined;
    if (opts.body !== undefined) {
      data = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    const req = request(`${kube.url}${path}`, { method, ca: kube.caCert, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body) as T }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** Reads watch events until `until` says stop (or the server ends the stream). */
function watch(path: string, until: (events: WatchEvent[]) => boolean, opts: { accept?: string; timeoutMs?: number; onOpen?: () => void } = {}): Promise<{ events: WatchEvent[]; ended: boolean; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const events: WatchEvent[] = [];
    let buf = '';
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (opts.accept) headers.accept = opts.accept;
    const req = request(`${kube.url}${path}`, { ca: kube.caCert, headers }, (res) => {
      const done = (ended: boolean): void => {
        clearTimeout(t);
        req.destroy();
        resolve({ events, ended, contentType: res.headers['content-type'] });
      };
      const t = setTimeout(() => done(false), opts.timeoutMs ?? 5000);
      opts.onOpen?.();
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) {
          events.push(JSON.parse(buf.slice(0, nl)) as WatchEvent);
          buf = buf.slice(nl + 1);
        }
        if (until(events)) done(false);
      });
      res.on('end', () => done(true));
    });
    req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)));
    req.end();
  });
}

type WsResult = { frames: Buffer[]; status: Record<string, unknown> | undefined; stdout: string; stderr: string; protocol: string };

function exec(path: string, protocols: string[], send?: (ws: WebSocket) => void): Promise<WsResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${kube.url.replace('https:', 'wss:')}${path}`, protocols, { ca: kube.caCert, headers: { authorization: `Bearer ${TOKEN}` } });
    const frames: Buffer[] = [];
    ws.on('open', () => send?.(ws));
    ws.on('message', (d: Buffer) => frames.push(d));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('close', () => {
      const text = (ch: number): string => Buffer.concat(frames.filter((f) => f[0] === ch).map((f) => f.subarray(1))).toString();
      const st = text(3);
      resolve({ frames, status: st ? (JSON.parse(st) as Record<string, unknown>) : undefined, stdout: text(1), stderr: text(2), protocol: ws.protocol });
    });
  });
}

const pod = (name: string, labels: Record<string, string> = {}): Obj => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'ns', labels }, spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] } });

before(async () => {
  kube = await startKubeStandIn({
    tokens: { [TOKEN]: 'admin' },
    bookmarkIntervalMs: 100,
    historyLimit: 50,
    exec: async (req, io) => {
      if (req.command[0] !== 'fake') throw new Error('only fake commands here');
      io.stdout.write(`fake ${req.command.slice(1).join(' ')}\n`);
      if (io.stdin) for await (const c of io.stdin) io.stdout.write(`echo:${String(c)}`);
      return Number(req.command[1] ?? 0);
    },
  });
  kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' } });
  kube.create(pod('a', { app: 'web', tier: 'front' }));
  kube.create(pod('b', { app: 'web', tier: 'back' }));
  kube.create(pod('c', { app: 'db' }));
});

after(async () => {
  await kube?.close();
});

test('failures are Status objects: 401, 404, 409, 405, 415, 422', async () => {
  const anon = await call('GET', '/api/v1/pods', { token: null });
  assert.equal(anon.status, 401);
  assert.deepEqual(anon.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  const nf = await call('GET', '/api/v1/namespaces/ns/pods/zzz');
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'pods "zzz" not found', reason: 'NotFound', details: { name: 'zzz', kind: 'pods' }, code: 404 });
  const dnf = await call('GET', '/apis/apps/v1/namespaces/ns/deployments/web');
  assert.deepEqual(dnf.json<{ details: unknown }>().details, { name: 'web', group: 'apps', kind: 'deployments' });
  assert.equal(dnf.json<{ message: string }>().message, 'deployments.apps "web" not found');
  const dup = await call('POST', '/api/v1/namespaces/ns/pods', { body: pod('a') });
  assert.equal(dup.status, 409);
  assert.equal(dup.json<{ reason: string; message: string }>().reason, 'AlreadyExists');
  assert.equal(dup.json<{ message: string }>().message, 'pods "a" already exists');
  const noNs = await call('POST', '/api/v1/namespaces/nope/configmaps', { body: { metadata: { name: 'x' } } });
  assert.equal(noNs.status, 404);
  assert.equal(noNs.json<{ message: string }>().message, 'namespaces "nope" not found');
  const badName = await call('POST', '/api/v1/namespaces/ns/configmaps', { body: { metadata: { name: 'Bad_Name' } } });
  assert.equal(badName.status, 422);
  assert.equal(badName.json<{ reason: string }>().reason, 'Invalid');
  const unknown = await call('GET', '/api/v1/widgets');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json<{ message: string }>().message, 'the server could not find the requested resource');
  const media = await call('PATCH', '/api/v1/namespaces/ns/pods/a', { body: '{}', contentType: 'text/plain' });
  assert.equal(media.status, 415);
  assert.equal(media.json<{ reason: string }>().reason, 'UnsupportedMediaType');
  const notAcceptable = await call('GET', '/api/v1/namespaces/ns/pods', { accept: 'application/vnd.kubernetes.protobuf' });
  assert.equal(notAcceptable.status, 406);
});

test('list: selectors, pagination, Tables and metadata-only answers', async () => {
  const list = (await call('GET', '/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb,tier+in+(front,back)')).json<{ kind: string; apiVersion: string; items: { metadata: { name: string }; kind?: string }[] }>();
  assert.equal(list.kind, 'PodList');
  assert.deepEqual(list.items.map((i) => i.metadata.name), ['a', 'b']);
  assert.equal(list.items[0]?.kind, undefined, 'list items carry no type meta');
  const byName = (await call('GET', '/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dc')).json<{ items: { metadata: { name: string } }[] }>();
  assert.deepEqual(byName.items.map((i) => i.metadata.name), ['c']);
  const notRunning = (await call('GET', '/api/v1/pods?fieldSelector=status.phase!%3DRunning')).json<{ items: unknown[] }>();
  assert.equal(notRunning.items.length, 0);
  const badField = await call('GET', '/api/v1/namespaces/ns/pods?fieldSelector=spec.bogus%3Dx');
  assert.equal(badField.status, 400);
  const badLabel = await call('GET', '/api/v1/namespaces/ns/pods?labelSelector=a+in+(');
  assert.equal(badLabel.status, 400);

  const p1 = (await call('GET', '/api/v1/namespaces/ns/pods?limit=2')).json<{ metadata: { continue: string; remainingItemCount: number }; items: { metadata: { name: string } }[] }>();
  assert.deepEqual(p1.items.map((i) => i.metadata.name), ['a', 'b']);
  assert.equal(p1.metadata.remainingItemCount, 1);
  const p2 = (await call('GET', `/api/v1/namespaces/ns/pods?limit=2&continue=${p1.metadata.continue}`)).json<{ metadata: { continue?: string }; items: { metadata: { name: string } }[] }>();
  assert.deepEqual(p2.items.map((i) => i.metadata.name), ['c']);
  assert.equal(p2.metadata.continue, undefined);

  const tableAccept = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';
  const t = await call('GET', '/api/v1/namespaces/ns/pods?labelSelector=app%3Ddb', { accept: tableAccept });
  assert.equal(t.headers['content-type'], 'application/json;as=Table;v=v1;g=meta.k8s.io');
  const table = t.json<{ kind: string; apiVersion: string; columnDefinitions: { name: string; priority: number }[]; rows: { cells: unknown[]; object: { kind: string; metadata: { name: string } } }[] }>();
  assert.equal(table.kind, 'Table');
  assert.equal(table.apiVersion, 'meta.k8s.io/v1');
  assert.deepEqual(table.columnDefinitions.map((c) => c.name), ['Name', 'Ready', 'Status', 'Restarts', 'Age', 'IP', 'Node', 'Nominated Node', 'Readiness Gates']);
  assert.deepEqual(table.rows[0]?.cells.slice(0, 4), ['c', '1/1', 'Running', '0']);
  assert.equal(table.rows[0]?.object.kind, 'PartialObjectMetadata');
  const full = (await call('GET', '/api/v1/namespaces/ns/pods/c?includeObject=Object', { accept: tableAccept })).json<{ rows: { object: { kind: string; spec: unknown } }[] }>();
  assert.equal(full.rows[0]?.object.kind, 'Pod');
  assert.ok(full.rows[0]?.object.spec);
  const none = (await call('GET', '/api/v1/namespaces/ns/pods/c?includeObject=None', { accept: tableAccept })).json<{ rows: Record<string, unknown>[] }>();
  assert.equal(none.rows[0]?.object, undefined);
  const meta = (await call('GET', '/api/v1/namespaces/ns/pods', { accept: 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io' })).json<{ kind: string; items: { kind: string; metadata: { name: string } }[] }>();
  assert.equal(meta.kind, 'PartialObjectMetadataList');
  assert.deepEqual(meta.items.map((i) => [i.kind, i.metadata.name]), [['PartialObjectMetadata', 'a'], ['PartialObjectMetadata', 'b'], ['PartialObjectMetadata', 'c']]);
});

test('update and patch: optimistic locking, merge / JSON / strategic patches, dry run, no-op updates', async () => {
  const created = await call('POST', '/api/v1/namespaces/ns/configmaps', { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: '1' } } });
  assert.equal(created.status, 201);
  const cm = created.json<{ metadata: { resourceVersion: string; uid: string } }>();
  const stale = await call('PUT', '/api/v1/namespaces/ns/configmaps/cm', { body: { metadata: { name: 'cm', resourceVersion: '1' }, data: { a: '2' } } });
  assert.equal(stale.status, 409);
  assert.equal(stale.json<{ message: string }>().message, 'Operation cannot be fulfilled on configmaps "cm": the object has been modified; please apply your changes to the latest version and try again');
  const noop = await call('PUT', '/api/v1/namespaces/ns/configmaps/cm', { body: { metadata: { name: 'cm', resourceVersion: cm.metadata.resourceVersion }, data: { a: '1' } } });
  assert.equal(noop.json<{ metadata: { resourceVersion: string } }>().metadata.resourceVersion, cm.metadata.resourceVersion);
  const merged = await call('PATCH', '/api/v1/namespaces/ns/configmaps/cm', { body: { data: { b: '2', a: null } }, contentType: 'application/merge-patch+json' });
  assert.deepEqual(merged.json<{ data: unknown }>().data, { b: '2' });
  const jp = await call('PATCH', '/api/v1/namespaces/ns/configmaps/cm', { body: [{ op: 'add', path: '/data/c', value: '3' }, { op: 'test', path: '/data/b', value: '2' }], contentType: 'application/json-patch+json' });
  assert.deepEqual(jp.json<{ data: unknown }>().data, { b: '2', c: '3' });
  const failedTest = await call('PATCH', '/api/v1/namespaces/ns/configmaps/cm', { body: [{ op: 'test', path: '/data/b', value: 'nope' }], contentType: 'application/json-patch+json' });
  assert.equal(failedTest.status, 422);
  const dry = await call('PATCH', '/api/v1/namespaces/ns/configmaps/cm?dryRun=All', { body: { data: { d: '4' } }, contentType: 'application/merge-patch+json' });
  assert.equal(dry.status, 200);
  assert.deepEqual((kube.get('configmaps', 'ns', 'cm') as { data: unknown }).data, { b: '2', c: '3' });
  const smp = await call('PATCH', '/api/v1/namespaces/ns/pods/a', {
    body: { spec: { containers: [{ name: 'sidecar', image: 'envoy' }, { name: 'app', image: 'busybox:1.37' }] } },
    contentType: 'application/strategic-merge-patch+json',
  });
  assert.deepEqual(smp.json<{ spec: { containers: { name: string; image: string }[] } }>().spec.containers.map((c) => `${c.name}=${c.image}`), ['app=busybox:1.37', 'sidecar=envoy']);
  const status = await call('PATCH', '/api/v1/namespaces/ns/pods/a/status', { body: { status: { phase: 'Failed' } }, contentType: 'application/merge-patch+json' });
  assert.equal(status.json<{ status: { phase: string } }>().status.phase, 'Failed');
  const del = await call('DELETE', '/api/v1/namespaces/ns/configmaps/cm');
  assert.deepEqual(del.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: 'cm', kind: 'configmaps', uid: cm.metadata.uid }, code: 200 });
});

test('watch: initial ADDED events, live changes, label filter, resumption, bookmarks, timeout, expiry', async () => {
  const live = await watch('/api/v1/namespaces/ns/pods?watch=true&labelSelector=app%3Dlive', (ev) => ev.some((e) => e.type === 'DELETED'), {
    onOpen: () => {
      kube.create(pod('live-1', { app: 'live' }));
      kube.create(pod('other', { app: 'other' }));
      const p = kube.get('pods', 'ns', 'live-1') as Obj & { metadata: { labels: Record<string, string> } };
      p.metadata.labels.extra = 'yes';
      kube.update(p);
      kube.delete('pods', 'ns', 'live-1');
    },
  });
  assert.deepEqual(live.events.map((e) => [e.type, (e.object as { metadata: { name: string } }).metadata.name]), [['ADDED', 'live-1'], ['MODIFIED', 'live-1'], ['DELETED', 'live-1']]);
  const rvs = live.events.map((e) => Number((e.object as { metadata: { resourceVersion: string } }).metadata.resourceVersion));
  assert.ok(rvs.every((v, i) => i === 0 || v > (rvs[i - 1] ?? 0)), `increasing resourceVersions ${rvs.join(',')}`);
  assert.equal((live.events[0]?.object as { kind: string }).kind, 'Pod');

  const from = String((rvs[0] ?? 1) - 1);
  const resumed = await watch(`/api/v1/namespaces/ns/pods?watch=1&resourceVersion=${from}&labelSelector=app%3Dlive`, (ev) => ev.length >= 3);
  assert.deepEqual(resumed.events.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED']);

  const initial = await watch('/api/v1/namespaces/ns/pods?watch=true&allowWatchBookmarks=true', (ev) => ev.some((e) => e.type === 'BOOKMARK'));
  assert.deepEqual(initial.events.filter((e) => e.type === 'ADDED').map((e) => (e.object as { metadata: { name: string } }).metadata.name), ['a', 'b', 'c', 'other']);
  const bm = initial.events.find((e) => e.type === 'BOOKMARK')?.object as { kind: string; metadata: { resourceVersion: string } };
  assert.equal(bm.kind, 'Pod');
  assert.equal(bm.metadata.resourceVersion, kube.resourceVersion());

  const listRv = kube.resourceVersion();
  const streaming = await watch(`/api/v1/namespaces/ns/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=${listRv}`, (ev) => ev.some((e) => e.type === 'BOOKMARK'));
  const end = streaming.events.find((e) => e.type === 'BOOKMARK')?.object as { metadata: { annotations?: Record<string, string> } };
  assert.equal(end.metadata.annotations?.['k8s.io/initial-events-end'], 'true');
  assert.equal(streaming.events.filter((e) => e.type === 'ADDED').length, 4);

  const timed = await watch('/api/v1/namespaces/ns/pods?watch=true&timeoutSeconds=1&labelSelector=app%3Dnone', () => false, { timeoutMs: 4000 });
  assert.equal(timed.ended, true, 'the server ends the watch after timeoutSeconds');

  for (let i = 0; i < 60; i++) kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `churn-${i}`, namespace: 'ns' } });
  const expired = await watch(`/api/v1/namespaces/ns/pods?watch=true&resourceVersion=${from}`, (ev) => ev.length > 0);
  assert.equal(expired.events[0]?.type, 'ERROR');
  assert.deepEqual({ ...(expired.events[0]?.object as Record<string, unknown>), message: undefined }, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: undefined, reason: 'Expired', code: 410 });

  const tables = await watch('/api/v1/namespaces/ns/pods?watch=true&labelSelector=app%3Ddb', (ev) => ev.length >= 1, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
  assert.equal(tables.contentType, 'application/json;as=Table;v=v1;g=meta.k8s.io');
  const tobj = tables.events[0]?.object as { kind: string; rows: { cells: unknown[] }[] };
  assert.equal(tobj.kind, 'Table');
  assert.equal(tobj.rows[0]?.cells[0], 'c');
});

test('logs: tail, timestamps, container choice and follow ending with the pod', async () => {
  kube.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'two', namespace: 'ns' }, spec: { containers: [{ name: 'x', image: 'i' }, { name: 'y', image: 'i' }] } });
  kube.appendLog('ns', 'two', 'from x 1\nfrom x 2', 'x');
  kube.appendLog('ns', 'two', 'from y', 'y');
  const must = await call('GET', '/api/v1/namespaces/ns/pods/two/log');
  assert.equal(must.status, 400);
  assert.equal(must.json<{ message: string }>().message, 'a container name must be specified for pod two, choose one of: [x y]');
  const y = await call('GET', '/api/v1/namespaces/ns/pods/two/log?container=y');
  assert.equal(y.body, 'from y\n');
  assert.match(String(y.headers['content-type']), /^text\/plain/);
  assert.equal((await call('GET', '/api/v1/namespaces/ns/pods/two/log?container=x&tailLines=1')).body, 'from x 2\n');
  assert.match((await call('GET', '/api/v1/namespaces/ns/pods/two/log?container=x&timestamps=true')).body, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z from x 1\n/);
  assert.equal((await call('GET', '/api/v1/namespaces/ns/pods/two/log?container=x&limitBytes=4')).body, 'from');
  const followed = new Promise<string>((resolve, reject) => {
    const req = request(`${kube.url}/api/v1/namespaces/ns/pods/two/log?container=y&follow=true`, { ca: kube.caCert, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
        if (body.includes('more')) kube.delete('pods', 'ns', 'two');
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
  setTimeout(() => kube.appendLog('ns', 'two', 'more', 'y'), 100);
  assert.equal(await followed, 'from y\nmore\n');
});

test('exec channel protocols: v4 and v5 framing, stdin close, exit codes, a pluggable handler', async () => {
  const path = (cmd: string[], extra = ''): string => `/api/v1/namespaces/ns/pods/b/exec?${cmd.map((c) => `command=${encodeURIComponent(c)}`).join('&')}&stdout=true&stderr=true${extra}`;
  const v4 = await exec(path(['fake', '0']), ['v4.channel.k8s.io']);
  assert.equal(v4.protocol, 'v4.channel.k8s.io');
  assert.equal(v4.stdout, 'fake 0\n');
  assert.deepEqual(v4.status, { metadata: {}, status: 'Success' });
  const failed = await exec(path(['fake', '5']), ['v4.channel.k8s.io']);
  assert.deepEqual(failed.status, {
    metadata: {},
    status: 'Failure',
    message: 'command terminated with non-zero exit code: error executing command [fake 5], exit code 5',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '5' }] },
  });
  const v5 = await exec(path(['fake', '0'], '&stdin=true'), ['v5.channel.k8s.io', 'v4.channel.k8s.io'], (ws) => {
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('ping')]));
    ws.send(Buffer.from([4, ...Buffer.from('{"Width":80,"Height":24}')]));
    setTimeout(() => ws.send(Buffer.from([255, 0])), 50);
  });
  assert.equal(v5.protocol, 'v5.channel.k8s.io');
  assert.equal(v5.stdout, 'fake 0\necho:ping');
  assert.equal(v5.status?.status, 'Success');
  const rec = kube.execs.at(-1);
  assert.deepEqual({ stdin: rec?.stdin, closed: rec?.stdinClosed, resizes: rec?.resizes, exit: rec?.exitCode }, { stdin: 'ping', closed: true, resizes: [{ Width: 80, Height: 24 }], exit: 0 });
  const broken = await exec(path(['real', 'cmd']), ['v5.channel.k8s.io']);
  assert.equal(broken.status?.status, 'Failure');
  assert.equal(broken.status?.reason, 'InternalError');
  assert.match(String(broken.status?.message), /only fake commands here/);
  await assert.rejects(exec(path(['fake']), ['v3.channel.k8s.io']), /upgrade refused: 400/);
  await assert.rejects(exec('/api/v1/namespaces/ns/pods/nope/exec?command=fake&stdout=true', ['v5.channel.k8s.io']), /upgrade refused: 404/);
});

test('deleting a namespace deletes what it holds', async () => {
  kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gone' } });
  kube.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'gone' }, data: { k: 'dg==' } });
  const r = await call('DELETE', '/api/v1/namespaces/gone');
  assert.equal(r.status, 200);
  assert.equal(r.json<{ status: { phase: string } }>().status.phase, 'Terminating');
  assert.equal(kube.get('secrets', 'gone', 's'), undefined);
  assert.equal(kube.get('namespaces', undefined, 'gone'), undefined);
});
