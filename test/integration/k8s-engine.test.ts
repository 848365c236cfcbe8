/**
 * The Kubernetes engine end to end: the real `kubectl` (/usr/bin/kubectl) against Gatehouse, which
 * forwards to the stand-in API server (test/support/kube-apiserver.ts; no kube-apiserver runs on
 * these machines). The agent's kubeconfig names https://127.0.0.1:<port>/k8s/<connection> and its
 * OIDC token from the real test issuer; the client side is always kubectl, never hand-made HTTP.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import YAML from 'yaml';
import type { IncomingMessage } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { RequestInfo } from '../../src/engines/kubernetes/request-info.js';
import { startKubeStandIn, type KubeStandIn, type KubeStandInOptions, type Obj } from '../support/kube-apiserver.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { KUBECTL, kubectl as runKubectl, writeAgentKubeconfig, type KubectlOptions, type KubectlRun } from '../support/kubectl.js';
import { until } from '../support/client.js';

const skip = !existsSync(KUBECTL);
/** The stand-in authenticates Gatehouse (the connection's credentials) with this token. */
const GATEHOUSE_SA_TOKEN = 'gatehouse-service-account-token';
const SECRET_VALUE = 'hunter2-do-not-leak';
const LOG_KEY = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';

const POLICY = `policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [kube, kube-imp]
    rules:
      - { effect: deny, k8s: { verbs: [delete, deletecollection], namespaces: [prod] }, reason: "agents never delete in prod" }
      - { effect: review, k8s: { resources: [pods/exec, pods/attach] }, approvers: { groups: [dba] }, reason: "a human looks at every exec" }
      - { effect: review, k8s: { verbs: [delete], namespaces: [staging] }, approvers: { groups: [dba] }, reason: "deletes in staging need a look" }
      - { effect: allow, k8s: {} }
      - { effect: mask, paths: ["Secret.data.*"] }
      - { effect: mask, detectors: [api_key] }
  - name: plain
    subjects: { groups: [ai-agents] }
    connections: [kube-plain, kube-v4]
    rules:
      - { effect: allow, k8s: {} }
  - name: read-pods
    subjects: { groups: [ai-agents] }
    connections: [kube-ro]
    rules:
      - { effect: allow, k8s: { verbs: [get, list, watch], resources: [pods, pods/log] } }
`;

type Run = KubectlRun;
type RunOptions = Omit<KubectlOptions, 'home'>;

let kube: KubeStandIn;
/** A second stand-in that speaks only the older v4.channel.k8s.io exec protocol. */
let kubeV4: KubeStandIn;
let gw: TestGateway;
let cert: TestCert;
let dir: string;
let port: number;
let kubeconfigs = 0;
let caFile: string;
/** Per test: answers the stand-in gives in place of its own. */
let intercept: KubeStandInOptions['intercept'];

/** A `connections:` item for the stand-in. */
const connYaml = (name: string, extra = ''): string => `  - { name: ${name}, type: kubernetes, target: "${kube.url}", token: "${GATEHOUSE_SA_TOKEN}", tls: { ca: "${caFile}" }${extra} }`;

function kubectl(args: string[], opts: RunOptions): Promise<Run> {
  return runKubectl(args, { ...opts, home: dir });
}

/** A kubeconfig for the agent: the gateway's URL for `connection`, its CA, the token. */
function agentKubeconfig(token: string, connection = 'kube', namespace = 'x'): Promise<string> {
  return writeAgentKubeconfig(join(dir, `kubeconfig-${++kubeconfigs}`), { server: `https://127.0.0.1:${port}/k8s/${connection}`, caPem: cert.cert, token, namespace });
}

async function api(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: () => unknown }> {
  const r = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  return { status: r.status, text, json: () => JSON.parse(text) as unknown };
}


const pod = (name: string, ns: string): Obj => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] } });

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'gh-k8s-'));
  cert = await makeTestCert();
  kube = await startKubeStandIn({
    tokens: { [GATEHOUSE_SA_TOKEN]: { name: 'gatehouse', groups: ['system:masters', 'system:authenticated'] } },
    intercept: (req: IncomingMessage, info: RequestInfo) => intercept?.(req, info),
  });
  for (const ns of ['x', 'prod', 'staging']) kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  kube.create(pod('p', 'x'));
  kube.create(pod('web', 'prod'));
  kube.create(pod('old', 'staging'));
  kube.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'x' }, stringData: { password: SECRET_VALUE } });
  kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'x' }, data: { token: `gh ${LOG_KEY}`, mode: 'fast' } });
  kube.appendLog('x', 'p', 'first line\nsecond line');
  caFile = join(dir, 'kube-ca.pem');
  await writeFile(caFile, kube.caCert);
  kubeV4 = await startKubeStandIn({ execProtocols: ['v4.channel.k8s.io'], tokens: { [GATEHOUSE_SA_TOKEN]: 'gatehouse' }, objects: [pod('p', 'default')] });
  const v4Ca = join(dir, 'kube-v4-ca.pem');
  await writeFile(v4Ca, kubeV4.caCert);
  const conn = connYaml;
  gw = await startTestGateway({
    policy: POLICY,
    noDatabase: true,
    listen: { kubernetes: '127.0.0.1:0' },
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    connections: [conn('kube'), conn('kube-plain'), conn('kube-ro'), conn('kube-imp', ', impersonate: { groups: [gatehouse-agents, "{groups}"] }'),
      `  - { name: kube-v4, type: kubernetes, target: "${kubeV4.url}", token: "${GATEHOUSE_SA_TOKEN}", tls: { ca: "${v4Ca}" } }`].join('\n'),
    extraConfig: 'review: { hold_timeout: 2m, valid_for: 5m }',
  });
  port = gw.gateway.address('kubernetes')!.port;
});

after(async () => {
  await gw?.close();
  await kube?.close();
  await kubeV4?.close();
  await cert?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('kubectl get pods is allowed, forwarded with the connection\'s credentials, recorded with its status', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token());
  kube.clearRequests();
  const r = await kubectl(['get', 'pods'], { kubeconfig: kc });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\np\s+1\/1\s+Running\s+0\s+\d+s\n$/);
  const list = kube.requests.find((q) => q.path === '/api/v1/namespaces/x/pods');
  assert.ok(list, 'the list reached the API server');
  assert.equal(list.headers.authorization, `Bearer ${GATEHOUSE_SA_TOKEN}`);
  assert.equal(list.user?.name, 'gatehouse');
  assert.equal(list.headers['impersonate-user'], undefined);
  assert.match(String(list.headers.accept), /as=Table;v=v1;g=meta\.k8s\.io/);

  // every request of a token on a connection belongs to one Gatehouse session
  const again = await kubectl(['get', 'pods', 'p'], { kubeconfig: kc });
  assert.equal(again.code, 0, again.stderr);
  const auditor = await gw.token({ clientId: 'auditor-1' });
  const sessions = (await api(auditor, 'GET', '/api/sessions?protocol=kubernetes&connection=kube')).json() as { id: string; live: boolean }[];
  assert.equal(sessions.length, 1);
  const rec = await until(async () => {
    const events = (await api(auditor, 'GET', `/api/sessions/${sessions[0]?.id ?? ''}/recording`)).json() as { type: string; data: Record<string, unknown> }[];
    return events.some((e) => e.type === 'statement' && e.data.command === 'get pods -n x p' && e.data.status === 200) ? events : undefined;
  }, 'the recording of both runs');
  assert.ok(rec.some((e) => e.type === 'statement' && e.data.command === 'list pods -n x' && e.data.status === 200));
  assert.ok(rec.some((e) => e.type === 'statement' && e.data.command === 'get /apis' && e.data.rule === 'agents#3'), 'discovery is recorded by path');
  assert.ok(rec.some((e) => e.type === 'result' && e.data.tag === 'HTTP 200' && typeof e.data.durationMs === 'number'));

  const audit = await until(async () => {
    const a = await api(auditor, 'GET', '/api/audit?type=command&limit=200');
    const events = a.json() as { type: string; data: Record<string, unknown> }[];
    return events.find((e) => e.type === 'command' && (e.data.attributes as Record<string, unknown> | undefined)?.resource === 'pods' && (e.data.attributes as Record<string, unknown>).verb === 'list' && e.data.status === 200);
  }, 'the audit event of the list');
  assert.deepEqual(audit.data.attributes, { verb: 'list', group: '', resource: 'pods', namespace: 'x', path: '/api/v1/namespaces/x/pods' });
  assert.equal(audit.data.effect, 'allow');
  assert.equal(audit.data.rule, 'agents#3');
});

test('kubectl delete in prod is refused with the rule\'s reason as a Forbidden Status; the API server never sees it', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token(), 'kube', 'prod');
  kube.clearRequests();
  const r = await kubectl(['delete', 'pod', 'web'], { kubeconfig: kc });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), 'Error from server (Forbidden): pods "web" is forbidden: agents never delete in prod (gatehouse: rule agents#0)');
  assert.ok(kube.get('pods', 'prod', 'web'), 'the pod is still there');
  assert.equal(kube.requests.filter((q) => q.method === 'DELETE').length, 0);
  // kubectl lists, then deletes one by one: each delete is refused
  const all = await kubectl(['delete', 'pods', '--all'], { kubeconfig: kc });
  assert.equal(all.code, 1);
  assert.match(all.stderr, /Error from server \(Forbidden\): pods "web" is forbidden: agents never delete in prod/);
});

test('kubectl delete held for review waits, then proceeds once approved, with a Warning naming the review', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token(), 'kube', 'staging');
  const dba = await gw.token({ clientId: 'dba-1' });
  const running = kubectl(['delete', 'pod', 'old'], { kubeconfig: kc, killAfterMs: 30_000 });
  const review = await until(async () => {
    const r = await api(dba, 'GET', '/api/reviews?state=pending');
    return (r.json() as Record<string, unknown>[]).find((x) => x.command === 'delete pods -n staging old');
  }, 'a pending review of the delete');
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(kube.get('pods', 'staging', 'old'), 'not deleted while held');
  // the agent cannot approve its own request
  const self = await api(await gw.token(), 'POST', `/api/reviews/${String(review.id)}/approve`, {});
  assert.equal(self.status, 403);
  assert.equal((await api(dba, 'POST', `/api/reviews/${String(review.id)}/approve`, {})).status, 200);
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'pod "old" deleted');
  assert.equal(r.stderr.trim(), `Warning: gatehouse: approved in review ${String(review.id)}`);
  assert.equal(kube.get('pods', 'staging', 'old'), undefined);
});

test('a narrow policy: discovery passes on its own, anything not allowed is refused, port-forward included', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token(), 'kube-ro');
  const ok = await kubectl(['get', 'pods'], { kubeconfig: kc });
  assert.equal(ok.code, 0, ok.stderr);
  const sec = await kubectl(['get', 'secrets'], { kubeconfig: kc });
  assert.equal(sec.code, 1);
  assert.equal(sec.stderr.trim(), 'Error from server (Forbidden): secrets is forbidden: no policy allows this (gatehouse)');
  kube.clearRequests();
  const pf = await kubectl(['port-forward', 'pod/p', '0:80'], { kubeconfig: kc, killAfterMs: 15_000 });
  assert.equal(pf.code, 1);
  assert.equal(pf.stderr.trim(), 'error: error upgrading connection: pods "p" is forbidden: no policy allows this (gatehouse)');
  assert.ok(!kube.requests.some((q) => q.path.endsWith('/portforward')), 'the upgrade never reached the API server');
  // allowed: the WebSocket upgrade is relayed (the stand-in speaks no port-forward and says so);
  // the API server refused it, so kubectl's SPDY fallback is relayed too, and gets its answer
  const pf2 = await kubectl(['port-forward', 'pod/p', '0:80'], { kubeconfig: await agentKubeconfig(await gw.token(), 'kube-plain'), killAfterMs: 15_000 });
  assert.equal(pf2.stderr.trim(), 'error: error upgrading connection: pods/portforward is not supported by the stand-in');
  const up = kube.requests.filter((q) => q.path.endsWith('/portforward'));
  assert.deepEqual(up.map((q) => [q.method, q.upgrade, q.headers['sec-websocket-protocol'], q.headers.authorization]), [
    ['GET', 'websocket', 'SPDY/3.1+portforward.k8s.io', `Bearer ${GATEHOUSE_SA_TOKEN}`],
    ['POST', 'SPDY/3.1', undefined, `Bearer ${GATEHOUSE_SA_TOKEN}`],
  ]);
});

test('kubectl get secret -o yaml: Secret data masked (still base64), last-applied copy masked too', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token());
  const r = await kubectl(['get', 'secret', 's', '-o', 'yaml'], { kubeconfig: kc });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes(Buffer.from(SECRET_VALUE).toString('base64')), 'the base64 of the secret is absent');
  assert.ok(!r.stdout.includes(SECRET_VALUE));
  const obj = YAML.parse(r.stdout) as { data: Record<string, string> };
  assert.equal(Buffer.from(obj.data.password ?? '', 'base64').toString(), '[redacted]');
  // typed clients decode []byte fields: describe still works
  const d = await kubectl(['describe', 'secret', 's'], { kubeconfig: kc });
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /password:\s+10 bytes/);

  // kubectl apply keeps a copy of the object (data included) in an annotation
  const file = join(dir, 'secret.yaml');
  await writeFile(file, `apiVersion: v1\nkind: Secret\nmetadata: { name: applied, namespace: x }\ndata: { key: ${Buffer.from(SECRET_VALUE).toString('base64')} }\n`);
  const plain = await agentKubeconfig(await gw.token(), 'kube-plain');
  const ap = await kubectl(['apply', '-f', file], { kubeconfig: plain });
  assert.equal(ap.code, 0, ap.stderr);
  const y = await kubectl(['get', 'secret', 'applied', '-o', 'json'], { kubeconfig: kc });
  assert.equal(y.code, 0, y.stderr);
  assert.ok(!y.stdout.includes(Buffer.from(SECRET_VALUE).toString('base64')), y.stdout);
  const applied = JSON.parse(y.stdout) as { metadata: { annotations: Record<string, string> } };
  assert.match(applied.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'] ?? '', /"key":"W3JlZGFjdGVkXQ=="/);
  // through the connection without mask rules the same request shows the value
  const raw = await kubectl(['get', 'secret', 'applied', '-o', 'json'], { kubeconfig: plain });
  assert.ok(raw.stdout.includes(Buffer.from(SECRET_VALUE).toString('base64')));
});

test('Table answers (kubectl get, -o wide, --show-labels) and lists are masked, ConfigMaps by detectors', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token());
  kube.clearRequests();
  const t = await kubectl(['get', 'secrets', '-o', 'wide'], { kubeconfig: kc });
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^s\s+Opaque\s+1\s+\d+s$/m);
  const tableReq = kube.requests.find((q) => q.path === '/api/v1/namespaces/x/secrets');
  assert.match(String(tableReq?.headers.accept), /as=Table/);
  const cm = await kubectl(['get', 'configmap', 'cfg', '-o', 'jsonpath={.data.token}'], { kubeconfig: kc });
  assert.equal(cm.code, 0, cm.stderr);
  assert.equal(cm.stdout, 'gh [github_token]');
  const list = await kubectl(['get', 'secrets,configmaps', '-o', 'json'], { kubeconfig: kc });
  assert.equal(list.code, 0, list.stderr);
  assert.ok(!list.stdout.includes(LOG_KEY) && !list.stdout.includes(Buffer.from(SECRET_VALUE).toString('base64')));
  // a watch of Secrets as JSON: each event masked
  const w = await kubectl(['get', 'secret', 's', '--watch', '-o', 'json'], { kubeconfig: kc, until: (out) => out.includes('"password"'), killAfterMs: 10_000 });
  assert.match(w.stdout, new RegExp(`"password": "${Buffer.from('[redacted]').toString('base64')}"`));
  assert.ok(!w.stdout.includes(Buffer.from(SECRET_VALUE).toString('base64')));
  // a server-side Table with the whole objects: the objects are masked
  const custom = await kubectl(['get', 'secret', 's', '-o', 'custom-columns=PW:.data.password'], { kubeconfig: kc });
  assert.equal(custom.code, 0, custom.stderr);
  assert.equal(custom.stdout.trim().split('\n')[1], Buffer.from('[redacted]').toString('base64'));
});

test('protobuf: with masking active Accept asks for JSON; without it protobuf is left alone', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token());
  kube.clearRequests();
  const c = await kubectl(['create', 'secret', 'generic', 'made', `--from-literal=pw=${SECRET_VALUE}`], { kubeconfig: kc });
  assert.equal(c.code, 0, c.stderr);
  const post = kube.requests.find((q) => q.method === 'POST' && q.path === '/api/v1/namespaces/x/secrets');
  assert.ok(post);
  assert.equal(post.headers['content-type'], 'application/vnd.kubernetes.protobuf', 'the protobuf body is forwarded unchanged');
  assert.ok(!String(post.headers.accept).includes('protobuf'), `accept sent upstream: ${String(post.headers.accept)}`);
  assert.equal(post.headers['accept-encoding'], undefined);

  const plain = await agentKubeconfig(await gw.token(), 'kube-plain');
  kube.clearRequests();
  const c2 = await kubectl(['create', 'configmap', 'made2', '--from-literal=a=b'], { kubeconfig: plain });
  assert.equal(c2.code, 0, c2.stderr);
  const post2 = kube.requests.find((q) => q.method === 'POST' && q.path === '/api/v1/namespaces/x/configmaps');
  assert.match(String(post2?.headers.accept), /application\/vnd\.kubernetes\.protobuf/);

  // an API server that answers protobuf anyway: withheld when the answer needs masking
  intercept = (_req, info) => (info.resource === 'pods' && info.name === 'p' && info.verb === 'get' ? { status: 200, headers: { 'content-type': 'application/vnd.kubernetes.protobuf' }, body: Buffer.from('k8s\0\n\x0a\x02v1\x12\x03Pod') } : undefined);
  try {
    const pb = await kubectl(['get', 'pod', 'p', '-o', 'name'], { kubeconfig: kc });
    assert.equal(pb.code, 1);
    assert.equal(pb.stderr.trim(), 'Error from server (InternalError): Internal error occurred: the API server answered in application/vnd.kubernetes.protobuf, which Gatehouse cannot inspect for masking; the answer was withheld');
    // gzip it was not asked for: decoded, then masked
    const secret = kube.get('secrets', 'x', 's');
    intercept = (_req, info) => (info.resource === 'secrets' && info.name === 's' ? { status: 200, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify(secret)) } : undefined);
    const gz = await kubectl(['get', 'secret', 's', '-o', 'jsonpath={.data.password}'], { kubeconfig: kc });
    assert.equal(gz.code, 0, gz.stderr);
    assert.equal(gz.stdout, Buffer.from('[redacted]').toString('base64'));
  } finally {
    intercept = undefined;
  }
});

test('the Kubernetes listener needs tls: and says so at start', { skip }, async () => {
  await assert.rejects(
    startTestGateway({ policy: POLICY, noDatabase: true, issuer: gw.issuer, listen: { kubernetes: '127.0.0.1:0' }, connections: connYaml('kube') }),
    (e: Error) => e.message.includes('listen.kubernetes needs `tls:`') && e.message.includes('kubectl sends bearer tokens only over https'),
  );
});

test('impersonation: configured headers name the agent; an agent\'s own Impersonate-* headers are refused', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token(), 'kube-imp');
  kube.clearRequests();
  const r = await kubectl(['get', 'pods'], { kubeconfig: kc });
  assert.equal(r.code, 0, r.stderr);
  const q = kube.requests.find((x) => x.path === '/api/v1/namespaces/x/pods');
  assert.equal(q?.headers['impersonate-user'], 'agent-a');
  assert.deepEqual(q?.headersDistinct['impersonate-group'], ['gatehouse-agents', 'ai-agents']);
  assert.equal(q?.user?.name, 'gatehouse');
  assert.deepEqual(q?.as, { name: 'agent-a', groups: ['gatehouse-agents', 'ai-agents', 'system:authenticated'] });

  kube.clearRequests();
  const as = await kubectl(['get', 'pods', '--as=system:admin', '--as-group=system:masters'], { kubeconfig: kc });
  assert.equal(as.code, 1);
  assert.match(as.stderr, /Error from server \(Forbidden\): pods is forbidden: impersonation \(impersonate-group, impersonate-user\) is not allowed through Gatehouse: requests act as the agent \(gatehouse\)$/m);
  assert.equal(kube.requests.filter((x) => x.path.includes('/pods')).length, 0);
});

test('kubectl exec is held for review, approved through the API, runs, and its terminal is recorded', { skip }, async () => {
  const token = await gw.token();
  const kc = await agentKubeconfig(token);
  const dba = await gw.token({ clientId: 'dba-1' });
  const running = kubectl(['exec', 'p', '--', 'sh', '-c', 'echo hello-from-exec; echo "key ghp_abcdefghijklmnopqrstuvwxyz0123456789"'], { kubeconfig: kc, killAfterMs: 30_000 });
  const review = await until(async () => {
    const r = await api(dba, 'GET', '/api/reviews?state=pending');
    return (r.json() as Record<string, unknown>[]).find((x) => String(x.command).includes('pods/exec'));
  }, 'a pending review of the exec');
  assert.equal(review.command, 'get pods/exec -n x p');
  assert.equal(review.rule, 'agents#1');
  assert.equal(kube.execs.filter((e) => e.pod === 'p').length, 0, 'nothing ran before the approval');
  await new Promise((r) => setTimeout(r, 500));
  const ok = await api(dba, 'POST', `/api/reviews/${String(review.id)}/approve`, { reason: 'fine' });
  assert.equal(ok.status, 200, ok.text);
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello-from-exec\nkey [github_token]\n');
  assert.ok(r.ms >= 500, 'kubectl waited for the approval');

  const auditor = await gw.token({ clientId: 'auditor-1' });
  const sessionId = String(review.session_id);
  const cast = await until(async () => {
    const a = await api(auditor, 'GET', `/api/sessions/${sessionId}/asciicast`);
    return a.status === 200 && a.text.includes('hello-from-exec') ? a.text : undefined;
  }, 'the asciicast of the exec');
  const [header, ...events] = cast.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.equal((header as { version: number }).version, 2);
  const out = (events as [number, string, string][]).filter((e) => e[1] === 'o').map((e) => e[2]).join('');
  assert.equal(out, 'hello-from-exec\nkey [github_token]\n');
  assert.ok((events as [number, string, string][]).some((e) => e[1] === 'm' && e[2].includes('pods/exec')));

  // denied by the approver: kubectl falls back to SPDY and prints the refusal
  const denied = kubectl(['exec', 'p', '--', 'true'], { kubeconfig: kc, killAfterMs: 30_000 });
  const review2 = await until(async () => {
    const x = await api(dba, 'GET', '/api/reviews?state=pending');
    return (x.json() as Record<string, unknown>[]).find((y) => String(y.command).includes('pods/exec'));
  }, 'a second pending review');
  await api(dba, 'POST', `/api/reviews/${String(review2.id)}/deny`, { reason: 'not now' });
  const d = await denied;
  assert.equal(d.code, 1);
  assert.match(d.stderr, new RegExp(`Error from server \\(Forbidden\\): pods "p" is forbidden: review ${String(review2.id)} was denied by dba-1: not now`));
});

test('kubectl attach -i over WebSocket: stdin reaches the container, its output comes back', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token(), 'kube-plain');
  const r = await kubectl(['attach', '-i', 'p'], { kubeconfig: kc, input: 'attached over websocket\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'attached\nattached over websocket\n');
  const ran = kube.execs.at(-1);
  assert.deepEqual([ran?.transport, ran?.protocol, ran?.stdin, ran?.command], ['websocket', 'v5.channel.k8s.io', 'attached over websocket\n', ['sh', '-c', 'echo attached; exec cat']]);
});

test('kubectl exec -i and -it (in a pseudo-terminal): stdin, exit codes, resizes, all recorded', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token(), 'kube-plain');
  const r = await kubectl(['exec', '-i', 'p', '--', 'cat'], { kubeconfig: kc, input: 'typed line\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'typed line\n');
  assert.equal(kube.execs.at(-1)?.stdin, 'typed line\n');
  assert.equal(kube.execs.at(-1)?.protocol, 'v5.channel.k8s.io');
  assert.equal(kube.execs.at(-1)?.stdinClosed, true, 'the v5 close frame went through');
  const three = await kubectl(['exec', 'p', '--', 'sh', '-c', 'exit 3'], { kubeconfig: kc });
  assert.equal(three.code, 3);
  assert.match(three.stderr, /command terminated with exit code 3/);
  // binary output passes byte for byte (no masking on this connection); the recording notes it
  const bin = await kubectl(['exec', 'p', '--', 'cat', '/usr/bin/true'], { kubeconfig: kc });
  assert.equal(bin.code, 0, bin.stderr);
  assert.ok(bin.raw.equals(await readFile('/usr/bin/true')), 'binary output unchanged');

  // -it needs a terminal: script(1) gives kubectl one, 100x30
  const tty = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const child = spawn('script', ['-qec', `stty cols 100 rows 30; ${KUBECTL} exec -it p -- sh -c 'echo tty-ok; read line; echo "got $line"'`, '/dev/null'], {
      env: { KUBECONFIG: kc, HOME: dir, PATH: process.env.PATH ?? '/usr/bin:/bin', TERM: 'xterm' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    const hard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('tty-ok') && !out.includes('sent')) {
        out += '<sent>';
        child.stdin.write('hello tty\n');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(hard);
      resolve({ code, out });
    });
  });
  assert.equal(tty.code, 0, tty.out);
  assert.match(tty.out, /got hello tty/);
  const ran = kube.execs.at(-1);
  assert.equal(ran?.tty, true);
  assert.deepEqual(ran?.resizes[0], { Width: 100, Height: 30 });

  const auditor = await gw.token({ clientId: 'auditor-1' });
  const sessions = (await api(auditor, 'GET', '/api/sessions?protocol=kubernetes&connection=kube-plain&limit=100')).json() as { id: string }[];
  const cast = await until(async () => {
    for (const x of sessions) {
      const a = await api(auditor, 'GET', `/api/sessions/${x.id}/asciicast`);
      if (a.status === 200 && a.text.includes('got hello tty')) return a.text;
    }
    return undefined;
  }, 'the asciicast of the tty exec');
  const [header, ...events] = cast.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.deepEqual([(header as { width: number }).width, (header as { height: number }).height], [100, 30]);
  const ev = events as [number, string, string][];
  assert.ok(ev.some((e) => e[1] === 'r' && e[2] === '100x30'));
  assert.ok(ev.some((e) => e[1] === 'i' && e[2].includes('hello tty')), 'the input is recorded');
  assert.ok(ev.some((e) => e[1] === 'o' && e[2].includes('tty-ok')));
  const binaryNote = await until(async () => {
    for (const x of sessions) {
      const events = (await api(auditor, 'GET', `/api/sessions/${x.id}/recording`)).json() as { type: string; data: { message?: string } }[];
      const note = events.find((e) => e.type === 'note' && /bytes of binary output \(not recorded\)/.test(e.data.message ?? ''));
      if (note) return note;
    }
    return undefined;
  }, 'the binary-output note');
  assert.match(binaryNote.data.message ?? '', /^\d+ bytes of binary output \(not recorded\)$/);
});

test('v4.channel.k8s.io, which kubectl no longer offers over WebSocket (client libraries do), and the token as a subprotocol', { skip }, async () => {
  // kubectl 1.30+ offers only v5 over WebSocket (older API servers get SPDY), so this one client is
  // the ws library, speaking as the Kubernetes Python client and browsers do
  const token = await gw.token();
  const bearer = `base64url.bearer.authorization.k8s.io.${Buffer.from(token).toString('base64url')}`;
  const path = '/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&command=echo+v4%3B+echo+oops+%3E%262%3B+exit+5&stdout=true&stderr=true';
  kubeV4.clearRequests();
  const frames = await new Promise<{ protocol: string; frames: Buffer[] }>((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/k8s/kube-v4${path}`, ['v4.channel.k8s.io', bearer], { ca: cert.cert });
    const got: Buffer[] = [];
    ws.on('message', (d: Buffer) => got.push(Buffer.from(d)));
    ws.on('close', () => resolve({ protocol: ws.protocol, frames: got }));
    ws.on('error', reject);
  });
  assert.equal(frames.protocol, 'v4.channel.k8s.io');
  const channel = (n: number): string => frames.frames.filter((f) => f[0] === n).map((f) => f.subarray(1).toString()).join('');
  assert.equal(channel(1), 'v4\n');
  assert.equal(channel(2), 'oops\n');
  const status = JSON.parse(channel(3)) as { status: string; reason: string; details: { causes: { reason: string; message: string }[] } };
  assert.deepEqual([status.status, status.reason, status.details.causes[0]], ['Failure', 'NonZeroExitCode', { reason: 'ExitCode', message: '5' }]);
  const up = kubeV4.requests.find((q) => q.path.endsWith('/exec'));
  assert.equal(up?.headers['sec-websocket-protocol'], 'v4.channel.k8s.io', 'the token subprotocol is not forwarded');
  assert.equal(up?.headers.authorization, `Bearer ${GATEHOUSE_SA_TOKEN}`);
  assert.equal(up?.url, path, 'the request target reached the API server byte for byte');
});

test('kubectl logs -f streams lines as they are appended: masked line by line, or untouched', { skip }, async () => {
  for (const [connection, masked] of [['kube', true], ['kube-plain', false]] as const) {
    const kc = await agentKubeconfig(await gw.token(), connection);
    let i = 0;
    let ticker: NodeJS.Timeout | undefined;
    const seen: number[] = [];
    const t0 = Date.now();
    const r = await kubectl(['logs', '-f', 'p', '--since=1h'], {
      kubeconfig: kc,
      killAfterMs: 15_000,
      until: (out) => {
        const n = (out.match(new RegExp(`^${connection} tick `, 'gm')) ?? []).length;
        while (seen.length < n) seen.push(Date.now() - t0);
        return n >= 4;
      },
      onStart: () => {
        ticker = setInterval(() => kube.appendLog('x', 'p', `${connection} tick ${i++} ${i === 2 ? LOG_KEY : 'plain'}`), 400);
      },
    });
    clearInterval(ticker);
    assert.match(r.stdout, /^first line\nsecond line\n/);
    const ticks = r.stdout.split('\n').filter((l) => l.startsWith(`${connection} tick `));
    assert.deepEqual(ticks.slice(0, 4), [`${connection} tick 0 plain`, `${connection} tick 1 ${masked ? '[github_token]' : LOG_KEY}`, `${connection} tick 2 plain`, `${connection} tick 3 plain`]);
    // lines arrive one by one, about 400 ms apart: nothing waits for the stream to end
    const gaps = seen.slice(1).map((t, k) => t - (seen[k] ?? 0));
    assert.ok(gaps.every((g) => g > 150), `gaps between lines: ${gaps.join(', ')}`);
  }
});

test('kubectl get pods --watch keeps streaming for more than 30 s', { skip, timeout: 60_000 }, async () => {
  const kc = await agentKubeconfig(await gw.token());
  let n = 0;
  let ticker: NodeJS.Timeout | undefined;
  const r = await kubectl(['get', 'pods', '--watch', '--output-watch-events'], {
    kubeconfig: kc,
    killAfterMs: 31_000,
    onStart: () => {
      ticker = setInterval(() => {
        const name = `w${n++}`;
        kube.create(pod(name, 'x'));
      }, 3_000);
    },
  });
  clearInterval(ticker);
  for (let k = 0; k < n; k++) kube.delete('pods', 'x', `w${k}`);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^EVENT\s+NAME\s+READY\s+STATUS/);
  assert.ok(n >= 10, `${n} pods created`);
  assert.match(r.stdout, new RegExp(`^ADDED\\s+w${n - 1}\\s+1/1\\s+Running`, 'm'), 'the last pod, created ~30 s in, arrived');
  assert.equal(r.stderr, '');
});

test('token expiry ends the session: a running exec gets a Failure on its error channel, watches an ERROR event', { skip }, async () => {
  const short = await gw.token({ ttlSec: 4 });
  const kc = await agentKubeconfig(short, 'kube-plain');
  // watches (streamed through untouched, and masked event by event) end with the session too
  const watches = Promise.all(['kube-plain', 'kube'].map(async (c) => kubectl(['get', 'pods', '--watch'], { kubeconfig: await agentKubeconfig(short, c), killAfterMs: 25_000 })));
  const r = await kubectl(['exec', 'p', '--', 'sh', '-c', 'echo started; exec sleep 20'], { kubeconfig: kc, killAfterMs: 25_000 });
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, 'started\n');
  assert.match(r.stderr, /session ended: token expired/);
  assert.ok(r.ms < 10_000, `ended after ${r.ms} ms`);
  // the exec on the API server's side ended with it
  const ran = kube.execs.at(-1);
  assert.deepEqual(ran?.command, ['sh', '-c', 'echo started; exec sleep 20']);
  await ran?.done;
  assert.equal(ran?.exitCode, 137);
  for (const w of await watches) {
    assert.match(w.stdout, /^p\s+1\/1\s+Running/m);
    assert.ok(w.ms < 10_000, `the watch ended after ${w.ms} ms`);
    // kubectl prints the watch's closing ERROR event (a Status) as a row
    assert.match(w.stdout, /^Failure\s+Forbidden\s+pods is forbidden: session ended: token expired$/m);
  }
  // the same token is refused from now on
  const again = await kubectl(['get', 'pods'], { kubeconfig: kc });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /error: You must be logged in to the server \(token expired\)/);
});
