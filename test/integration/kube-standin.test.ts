/**
 * The real `kubectl` (/usr/bin/kubectl) against the stand-in Kubernetes API server: discovery,
 * tables, YAML output, apply (create, then a strategic merge patch), delete, logs (and follow),
 * exec over WebSocket with exit status passthrough, watch, authentication failures, authorization
 * refusals worded like the API server's, client certificates and impersonation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { KUBECTL, kubectl as runKubectl, type KubectlOptions, type KubectlRun } from '../support/kubectl.js';
import { makeClientCertificate, startKubeStandIn, type KubeStandIn, type Obj } from '../support/kube-apiserver.js';

const hasKubectl = existsSync(KUBECTL);

type Run = KubectlRun;
type RunOptions = Partial<Omit<KubectlOptions, 'home'>>;

let kube: KubeStandIn;
let dir: string;
let kubeconfig: string;

function kubectl(args: string[], opts: RunOptions = {}): Promise<Run> {
  return runKubectl(['--request-timeout=10s', ...args], { killAfterMs: 15_000, ...opts, kubeconfig: opts.kubeconfig ?? kubeconfig, home: dir });
}

const pod = (name: string, ns: string): Obj => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] } });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gh-kube-'));
  kube = await startKubeStandIn({
    tokens: { 'admin-token': 'kubernetes-admin', 'viewer-token': { name: 'viewer', groups: ['viewers', 'system:authenticated'] } },
    // a read-only role that also refuses exec: over WebSocket, exec is a `get` on pods/exec
    authorize: ({ user, info }) => user.name !== 'viewer' || (['get', 'list', 'watch'].includes(info.verb) && info.subresource !== 'exec') || 'viewers only read',
  });
  kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } });
  kube.create(pod('p', 'x'));
  kube.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'x' }, stringData: { password: 'hunter2' } });
  kube.appendLog('x', 'p', 'first line\nsecond line');
  kubeconfig = await kube.writeKubeconfig(dir, { token: 'admin-token', namespace: 'x' });
});

after(async () => {
  await kube?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('kubectl get namespaces: aggregated discovery, then a server-side Table', { skip: !hasKubectl }, async () => {
  kube.clearRequests();
  const r = await kubectl(['get', 'namespaces']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME\s+STATUS\s+AGE\n/);
  for (const ns of ['default', 'kube-system', 'x']) assert.match(r.stdout, new RegExp(`^${ns}\\s+Active\\s+\\d+s$`, 'm'));
  const list = kube.requests.find((q) => q.path === '/api/v1/namespaces');
  assert.ok(list);
  assert.match(String(list.headers.accept), /as=Table;v=v1;g=meta\.k8s\.io/);
  assert.equal(list.headers.authorization, 'Bearer admin-token');
  assert.equal(list.info?.verb, 'list');
  assert.equal(list.as?.name, 'kubernetes-admin');
  const api = kube.requests.find((q) => q.path === '/api');
  assert.match(String(api?.headers.accept), /as=APIGroupDiscoveryList/);
});

test('kubectl get pods -n x, -o wide and -o yaml', { skip: !hasKubectl }, async () => {
  const r = await kubectl(['get', 'pods', '-n', 'x']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\np\s+1\/1\s+Running\s+0\s+\d+s\n$/);
  const wide = await kubectl(['get', 'pods', '-o', 'wide']);
  assert.match(wide.stdout, /^p\s+1\/1\s+Running\s+0\s+\S+\s+10\.244\.0\.\d+\s+stand-in-node\s+<none>\s+<none>$/m);
  const y = await kubectl(['get', 'pod', 'p', '-n', 'x', '-o', 'yaml']);
  assert.equal(y.code, 0, y.stderr);
  const obj = YAML.parse(y.stdout) as { kind: string; metadata: { name: string; uid: string; resourceVersion: string }; spec: { containers: { name: string }[] }; status: { phase: string } };
  assert.equal(obj.kind, 'Pod');
  assert.equal(obj.metadata.name, 'p');
  assert.match(obj.metadata.uid, /^[0-9a-f-]{36}$/);
  assert.match(obj.metadata.resourceVersion, /^\d+$/);
  assert.equal(obj.spec.containers[0]?.name, 'app');
  assert.equal(obj.status.phase, 'Running');
});

test('kubectl get secret -o yaml shows base64 data', { skip: !hasKubectl }, async () => {
  const r = await kubectl(['get', 'secret', 's', '-n', 'x', '-o', 'yaml']);
  assert.equal(r.code, 0, r.stderr);
  const obj = YAML.parse(r.stdout) as { type: string; data: Record<string, string> };
  assert.equal(obj.type, 'Opaque');
  assert.equal(Buffer.from(obj.data.password ?? '', 'base64').toString(), 'hunter2');
  const t = await kubectl(['get', 'secrets']);
  assert.match(t.stdout, /^s\s+Opaque\s+1\s+\d+s$/m);
});

test('kubectl apply -f creates, then patches with a strategic merge patch', { skip: !hasKubectl }, async () => {
  const manifest = (image: string, value: string): string => `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: x }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
      - name: nginx
        image: ${image}
        ports: [{ containerPort: 80 }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: cfg, namespace: x }
data: { key: "${value}" }
`;
  const file = join(dir, 'app.yaml');
  await writeFile(file, manifest('nginx:1.27', 'one'));
  kube.clearRequests();
  const r1 = await kubectl(['apply', '-f', file]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.match(r1.stdout, /deployment\.apps\/web created\nconfigmap\/cfg created/);
  assert.ok(kube.requests.some((q) => q.method === 'POST' && q.path === '/apis/apps/v1/namespaces/x/deployments' && q.query.fieldValidation?.[0] === 'Strict'));

  await writeFile(file, manifest('nginx:1.28', 'two'));
  kube.clearRequests();
  const r2 = await kubectl(['apply', '-f', file]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stdout, /deployment\.apps\/web configured\nconfigmap\/cfg configured/);
  const patch = kube.requests.find((q) => q.method === 'PATCH' && q.path === '/apis/apps/v1/namespaces/x/deployments/web');
  assert.equal(patch?.headers['content-type'], 'application/strategic-merge-patch+json');
  const d = kube.get('deployments', 'x', 'web') as { spec: { template: { spec: { containers: { image: string; ports?: unknown[] }[] } } }; metadata: { generation: number } };
  assert.equal(d.spec.template.spec.containers[0]?.image, 'nginx:1.28');
  assert.deepEqual(d.spec.template.spec.containers[0]?.ports, [{ containerPort: 80 }]);
  assert.equal(d.metadata.generation, 2);
  assert.deepEqual((kube.get('configmaps', 'x', 'cfg') as { data: unknown }).data, { key: 'two' });

  const get = await kubectl(['get', 'deploy', '-n', 'x']);
  assert.match(get.stdout, /^web\s+2\/2\s+2\s+2\s+\d+s$/m);
  const scale = await kubectl(['scale', 'deploy/web', '--replicas=3']);
  assert.equal(scale.code, 0, scale.stderr);
  assert.equal((kube.get('deployments', 'x', 'web') as { spec: { replicas: number } }).spec.replicas, 3);
});

test('kubectl create sends protobuf bodies; auth can-i asks a SelfSubjectAccessReview', { skip: !hasKubectl }, async () => {
  kube.clearRequests();
  const sec = await kubectl(['create', 'secret', 'generic', 'api-key', '--from-literal=token=s3cr3t', '--type=example.com/key']);
  assert.equal(sec.code, 0, sec.stderr);
  const post = kube.requests.find((q) => q.method === 'POST' && q.path === '/api/v1/namespaces/x/secrets');
  assert.equal(post?.headers['content-type'], 'application/vnd.kubernetes.protobuf');
  assert.equal(post?.rawBody?.subarray(0, 4).toString('latin1'), 'k8s\0');
  const stored = kube.get('secrets', 'x', 'api-key') as { type: string; data: Record<string, string> };
  assert.equal(stored.type, 'example.com/key');
  assert.equal(Buffer.from(stored.data.token ?? '', 'base64').toString(), 's3cr3t');
  for (const args of [['create', 'configmap', 'settings', '--from-literal=mode=fast'], ['create', 'namespace', 'made-by-kubectl'], ['create', 'serviceaccount', 'robot']]) {
    const r = await kubectl(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  assert.deepEqual((kube.get('configmaps', 'x', 'settings') as { data: unknown }).data, { mode: 'fast' });
  assert.ok(kube.get('namespaces', undefined, 'made-by-kubectl'));
  const deploy = await kubectl(['create', 'deployment', 'd1', '--image=nginx']);
  assert.equal(deploy.code, 1);
  assert.match(deploy.stderr, /protobuf bodies of apps\/v1 Deployment are not decoded by the stand-in/);

  const yes = await kubectl(['auth', 'can-i', 'delete', 'pods']);
  assert.deepEqual([yes.code, yes.stdout.trim()], [0, 'yes']);
  const viewer = await kube.writeKubeconfig(await mkdtemp(join(dir, 'can-i-')), { token: 'viewer-token', namespace: 'x' });
  const no = await kubectl(['auth', 'can-i', 'delete', 'pods'], { kubeconfig: viewer });
  assert.equal(no.code, 1);
  assert.match(no.stdout, /^no/);
  const canExec = await kubectl(['auth', 'can-i', 'get', 'pods', '--subresource=exec'], { kubeconfig: viewer });
  assert.equal(canExec.stdout.trim().split(' ')[0], 'no');
});

test('kubectl delete pod', { skip: !hasKubectl }, async () => {
  kube.create(pod('doomed', 'x'));
  const r = await kubectl(['delete', 'pod', 'doomed', '-n', 'x']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'pod "doomed" deleted');
  assert.equal(kube.get('pods', 'x', 'doomed'), undefined);
  const again = await kubectl(['delete', 'pod', 'doomed', '-n', 'x']);
  assert.equal(again.code, 1);
  assert.equal(again.stderr.trim(), 'Error from server (NotFound): pods "doomed" not found');
});

test('kubectl logs, and logs -f until killed', { skip: !hasKubectl }, async () => {
  const r = await kubectl(['logs', 'p', '-n', 'x']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'first line\nsecond line\n');
  const tail = await kubectl(['logs', 'p', '--tail=1']);
  assert.equal(tail.stdout, 'second line\n');

  let i = 0;
  let ticker: NodeJS.Timeout | undefined;
  const f = await kubectl(['logs', '-f', 'p', '-n', 'x'], {
    until: (out) => out.includes('tick 2\n'),
    killAfterMs: 8000,
    onStart: () => { ticker = setInterval(() => kube.appendLog('x', 'p', `tick ${i++}`), 150); },
  });
  clearInterval(ticker);
  assert.match(f.stdout, /^first line\nsecond line\ntick 0\ntick 1\ntick 2\n/);
});

test('kubectl exec over WebSocket: output, stdin, stderr and exit status passthrough', { skip: !hasKubectl }, async () => {
  kube.clearRequests();
  const hi = await kubectl(['exec', 'p', '-n', 'x', '--', 'echo', 'hi']);
  assert.equal(hi.code, 0, hi.stderr);
  assert.equal(hi.stdout, 'hi\n');
  const up = kube.requests.find((q) => q.path === '/api/v1/namespaces/x/pods/p/exec');
  assert.equal(up?.upgrade, 'websocket');
  assert.equal(up?.status, 101);
  assert.match(String(up?.headers['sec-websocket-protocol']), /v5\.channel\.k8s\.io/);
  assert.deepEqual({ verb: up?.info?.verb, sub: up?.info?.subresource }, { verb: 'get', sub: 'exec' });
  assert.equal(kube.execs.at(-1)?.protocol, 'v5.channel.k8s.io');
  assert.deepEqual(kube.execs.at(-1)?.command, ['echo', 'hi']);

  const three = await kubectl(['exec', 'p', '--', 'sh', '-c', 'exit 3']);
  assert.equal(three.code, 3);
  assert.match(three.stderr, /command terminated with exit code 3/);

  const err = await kubectl(['exec', 'p', '--', 'sh', '-c', 'echo out; echo oops >&2; exit 0']);
  assert.equal(err.code, 0);
  assert.equal(err.stdout, 'out\n');
  assert.equal(err.stderr, 'oops\n');

  const cat = await kubectl(['exec', '-i', 'p', '--', 'cat'], { input: 'hello from stdin\n' });
  assert.equal(cat.code, 0, cat.stderr);
  assert.equal(cat.stdout, 'hello from stdin\n');
  const rec = kube.execs.at(-1);
  assert.equal(rec?.stdin, 'hello from stdin\n');
  assert.equal(rec?.stdinClosed, true);

  const missing = await kubectl(['exec', 'p', '--', 'no-such-command-here']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /executable file not found/);
});

test('kubectl exec over SPDY/3.1 (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false): the protocol negotiated, output, stdin, exit status', { skip: !hasKubectl }, async () => {
  const env = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
  kube.clearRequests();
  const r = await kubectl(['exec', 'p', '--', 'sh', '-c', 'echo out; echo oops >&2; exit 4'], { env });
  assert.equal(r.code, 4, r.stderr);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'oops\ncommand terminated with exit code 4\n');
  const up = kube.requests.find((q) => q.path === '/api/v1/namespaces/x/pods/p/exec');
  assert.deepEqual([up?.method, up?.upgrade, up?.status, up?.info?.verb], ['POST', 'SPDY/3.1', 101, 'create']);
  assert.match(String(up?.headers['x-stream-protocol-version']), /^v5\.channel\.k8s\.io, v4\.channel\.k8s\.io/);
  assert.deepEqual([kube.execs.at(-1)?.transport, kube.execs.at(-1)?.protocol], ['SPDY/3.1', 'v5.channel.k8s.io']);

  const cat = await kubectl(['exec', '-i', 'p', '--', 'cat'], { input: 'spdy stdin\n', env });
  assert.equal(cat.code, 0, cat.stderr);
  assert.equal(cat.stdout, 'spdy stdin\n');
  assert.deepEqual([kube.execs.at(-1)?.stdin, kube.execs.at(-1)?.stdinClosed], ['spdy stdin\n', true]);
});

test('kubectl get pods --watch prints the events that follow', { skip: !hasKubectl }, async () => {
  const w = await kubectl(['get', 'pods', '-n', 'x', '--watch'], {
    until: (out) => /^q\s+1\/1\s+Terminating/m.test(out),
    killAfterMs: 8000,
    onStart: () => {
      setTimeout(() => kube.create(pod('q', 'x')), 700);
      setTimeout(() => kube.delete('pods', 'x', 'q'), 1000);
    },
  });
  const lines = w.stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^NAME\s+READY\s+STATUS/);
  assert.match(w.stdout, /^p\s+1\/1\s+Running/m);
  assert.match(w.stdout, /^q\s+1\/1\s+Running/m);
  assert.match(w.stdout, /^q\s+1\/1\s+Terminating/m);
  const watch = kube.requests.filter((q) => q.info?.verb === 'watch').at(-1);
  assert.equal(watch?.query.watch?.[0], 'true');
  assert.match(watch?.query.resourceVersion?.[0] ?? '', /^\d+$/);
});

test('a bad token is Unauthorized; a refused verb is Forbidden in the API server\'s words', { skip: !hasKubectl }, async () => {
  const bad = await kube.writeKubeconfig(await mkdtemp(join(dir, 'bad-')), { token: 'nope' });
  const r = await kubectl(['get', 'pods'], { kubeconfig: bad });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error: You must be logged in to the server \(Unauthorized\)/);

  const viewer = await kube.writeKubeconfig(await mkdtemp(join(dir, 'viewer-')), { token: 'viewer-token', namespace: 'x' });
  const ok = await kubectl(['get', 'pods'], { kubeconfig: viewer });
  assert.equal(ok.code, 0, ok.stderr);
  const del = await kubectl(['delete', 'pod', 'p'], { kubeconfig: viewer });
  assert.equal(del.code, 1);
  assert.equal(del.stderr.trim(), 'Error from server (Forbidden): pods "p" is forbidden: User "viewer" cannot delete resource "pods" in API group "" in the namespace "x": viewers only read');
  kube.clearRequests();
  const exec = await kubectl(['exec', 'p', '--', 'true'], { kubeconfig: viewer });
  assert.equal(exec.code, 1);
  // the WebSocket upgrade (GET) is refused, kubectl falls back to SPDY (POST): refused as well
  assert.equal(exec.stderr.trim(), 'Error from server (Forbidden): pods "p" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "x": viewers only read');
  const tries = kube.requests.filter((q) => q.info?.subresource === 'exec').map((q) => [q.method, q.info?.verb, q.upgrade, q.status]);
  assert.deepEqual(tries, [['GET', 'get', 'websocket', 403], ['POST', 'create', 'SPDY/3.1', 403]]);
});

test('impersonation headers reach the stand-in and change who the request acts as', { skip: !hasKubectl }, async () => {
  kube.clearRequests();
  const r = await kubectl(['get', 'pods', '--as=alice', '--as-group=dev', '--as-group=ops']);
  assert.equal(r.code, 0, r.stderr);
  const q = kube.requests.find((x) => x.path === '/api/v1/namespaces/x/pods');
  assert.equal(q?.headers['impersonate-user'], 'alice');
  assert.deepEqual(q?.headersDistinct['impersonate-group'], ['dev', 'ops']);
  assert.equal(q?.user?.name, 'kubernetes-admin');
  assert.deepEqual(q?.as, { name: 'alice', groups: ['dev', 'ops', 'system:authenticated'] });
});

test('client-certificate authentication and legacy discovery', { skip: !hasKubectl }, async () => {
  const client = await makeClientCertificate('robot', ['bots']);
  const other = await startKubeStandIn({ clientCA: client.ca, aggregatedDiscovery: false, objects: [pod('p', 'default')] });
  try {
    const d = await mkdtemp(join(dir, 'cert-'));
    const kc = await other.writeKubeconfig(d, { clientCert: client });
    const r = await kubectl(['get', 'deployments,pods', '-A'], { kubeconfig: kc });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pod\/p\s+1\/1\s+Running/);
    assert.deepEqual(other.requests.find((q) => q.path === '/api/v1/pods')?.user, { name: 'robot', groups: ['bots', 'system:authenticated'] });
    assert.ok(other.requests.some((q) => q.path === '/apis/apps/v1'), 'legacy discovery of apps/v1');
    const e = await kubectl(['exec', 'p', '--', 'sh', '-c', 'echo cert; exit 7'], { kubeconfig: kc });
    assert.equal(e.stdout, 'cert\n');
    assert.equal(e.code, 7);
    assert.equal(other.execs.at(-1)?.user, 'robot');
  } finally {
    await other.close();
  }
});
