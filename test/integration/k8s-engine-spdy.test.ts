/**
 * exec and port-forward over SPDY/3.1 through Gatehouse: the real `kubectl` (/usr/bin/kubectl,
 * v1.32), forced onto SPDY with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` (and
 * `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`), against the gateway, which relays to the stand-in API
 * server (test/support/kube-apiserver.ts, which speaks SPDY exec as the kubelet does). The
 * recording is read back through the HTTP API, as an auditor would.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { SpdyEncoder } from '../../src/engines/kubernetes/spdy.js';
import { startKubeStandIn, type KubeStandIn, type Obj } from '../support/kube-apiserver.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { KUBECTL, kubectl as runKubectl, writeAgentKubeconfig, type KubectlRun } from '../support/kubectl.js';
import { until } from '../support/client.js';

const skip = !existsSync(KUBECTL);
const SA_TOKEN = 'gatehouse-service-account-token';

const POLICY = `policies:
  - name: spdy
    subjects: { groups: [ai-agents] }
    connections: [kube, kube-mask]
    rules:
      - { effect: deny, k8s: { resources: [pods/exec], names: [locked] }, reason: "no exec into locked pods" }
      - { effect: allow, k8s: {} }
  - name: older-api-server
    subjects: { groups: [ai-agents] }
    connections: [kube-v4]
    rules:
      - { effect: review, k8s: { resources: [pods/exec] }, approvers: { groups: [dba] }, reason: "a human looks at every exec" }
      - { effect: allow, k8s: {} }
  - name: masking
    subjects: { groups: [ai-agents] }
    connections: [kube-mask]
    rules:
      - { effect: mask, detectors: [api_key] }
`;

let kube: KubeStandIn;
/** An API server whose exec speaks only v4.channel.k8s.io: kubectl's WebSocket attempt (v5) fails there. */
let kubeV4: KubeStandIn;
let gw: TestGateway;
let cert: TestCert;
let dir: string;
let port: number;
let kubeconfigs = 0;

/** kubectl on SPDY: neither exec nor port-forward tries a WebSocket first (unless `websocketFirst`). */
function kubectl(args: string[], kubeconfig: string, input?: string, killAfterMs = 20_000, websocketFirst = false): Promise<KubectlRun> {
  const env: Record<string, string> = websocketFirst ? {} : { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false', KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' };
  return runKubectl(args, { kubeconfig, home: dir, env, killAfterMs, ...(input === undefined ? {} : { input }) });
}

function agentKubeconfig(token: string, connection = 'kube'): Promise<string> {
  return writeAgentKubeconfig(join(dir, `kubeconfig-${++kubeconfigs}`), { server: `https://127.0.0.1:${port}/k8s/${connection}`, caPem: cert.cert, token });
}

async function api<T>(path: string): Promise<T> {
  const auditor = await gw.token({ clientId: 'auditor-1' });
  const r = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, { headers: { authorization: `Bearer ${auditor}` } });
  const text = await r.text();
  return (path.endsWith('/asciicast') ? text : JSON.parse(text)) as T;
}


type Event = { type: string; data: Record<string, unknown> };

/** The recording events of every session on `connection`, newest session first. */
async function recordings(connection: string): Promise<{ id: string; events: Event[] }[]> {
  const sessions = await api<{ id: string }[]>(`/api/sessions?protocol=kubernetes&connection=${connection}&limit=100`);
  return Promise.all(sessions.map(async (s) => ({ id: s.id, events: await api<Event[]>(`/api/sessions/${s.id}/recording`) })));
}

const pod = (name: string): Obj => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'x' }, spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] } });

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'gh-k8s-spdy-'));
  cert = await makeTestCert();
  kube = await startKubeStandIn({ tokens: { [SA_TOKEN]: { name: 'gatehouse', groups: ['system:masters', 'system:authenticated'] } } });
  kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } });
  kube.create(pod('p'));
  kube.create(pod('locked'));
  const caFile = join(dir, 'kube-ca.pem');
  await writeFile(caFile, kube.caCert);
  kubeV4 = await startKubeStandIn({ execProtocols: ['v4.channel.k8s.io'], tokens: { [SA_TOKEN]: 'gatehouse' }, objects: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }, pod('p')] });
  const v4Ca = join(dir, 'kube-v4-ca.pem');
  await writeFile(v4Ca, kubeV4.caCert);
  const conn = (name: string, k = kube, ca = caFile): string => `  - { name: ${name}, type: kubernetes, target: "${k.url}", token: "${SA_TOKEN}", tls: { ca: "${ca}" } }`;
  gw = await startTestGateway({
    policy: POLICY,
    noDatabase: true,
    listen: { kubernetes: '127.0.0.1:0' },
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    connections: [conn('kube'), conn('kube-mask'), conn('kube-v4', kubeV4, v4Ca)].join('\n'),
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

test('kubectl exec over SPDY/3.1: output, stderr and the exact exit code pass through; stdin, output and the exit are recorded', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token());
  kube.clearRequests();
  const r = await kubectl(['exec', 'p', '--', 'sh', '-c', 'echo spdy-out; echo spdy-err >&2; exit 3'], kc);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'spdy-out\n');
  assert.equal(r.stderr, 'spdy-err\ncommand terminated with exit code 3\n');
  const ran = kube.execs.at(-1);
  assert.equal(ran?.transport, 'SPDY/3.1');
  assert.deepEqual(ran?.command, ['sh', '-c', 'echo spdy-out; echo spdy-err >&2; exit 3']);
  const up = kube.requests.find((q) => q.path.endsWith('/exec'));
  assert.deepEqual([up?.method, up?.upgrade, up?.status, up?.headers.authorization], ['POST', 'SPDY/3.1', 101, `Bearer ${SA_TOKEN}`]);
  assert.match(String(up?.headers['x-stream-protocol-version']), /v4\.channel\.k8s\.io/, 'the protocol versions reach the API server');

  const typed = await kubectl(['exec', '-i', 'p', '--', 'sh', '-c', 'cat; echo done'], kc, 'typed over spdy\n');
  assert.equal(typed.code, 0, typed.stderr);
  assert.equal(typed.stdout, 'typed over spdy\ndone\n');
  assert.equal(kube.execs.at(-1)?.stdin, 'typed over spdy\n');
  assert.equal(kube.execs.at(-1)?.stdinClosed, true, 'the FIN on stdin went through');

  const recs = await until(async () => {
    const all = await recordings('kube');
    const ok = all.some((s) => s.events.some((e) => e.type === 'result' && e.data.tag === 'exit 3')) && all.some((s) => s.events.some((e) => e.type === 'input'));
    return ok ? all : undefined;
  }, 'the recording of both execs');
  const events = recs.flatMap((s) => s.events);
  assert.ok(events.some((e) => e.type === 'statement' && e.data.command === 'create pods/exec -n x p' && e.data.status === 101 && e.data.rule === 'spdy#1'));
  assert.ok(events.some((e) => e.type === 'note' && String(e.data.message).includes('over SPDY/3.1')));
  assert.ok(events.some((e) => e.type === 'result' && e.data.tag === 'exit 0'));
  const session = recs.find((s) => s.events.some((e) => e.type === 'input'));
  const cast = await api<string>(`/api/sessions/${session?.id ?? ''}/asciicast`);
  const [header, ...lines] = cast.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.equal((header as { version: number }).version, 2);
  const ev = lines as [number, string, string][];
  assert.equal(ev.filter((e) => e[1] === 'o').map((e) => e[2]).join(''), 'spdy-out\nspdy-err\ntyped over spdy\ndone\n');
  assert.equal(ev.filter((e) => e[1] === 'i').map((e) => e[2]).join(''), 'typed over spdy\n');
});

test('kubectl exec -it over SPDY/3.1 (in a pseudo-terminal): the resize stream is recorded as the terminal size', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token());
  const tty = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const child = spawn('script', ['-qec', `stty cols 90 rows 20; ${KUBECTL} exec -it p -- sh -c 'echo tty-ok; read line; echo "got $line"'`, '/dev/null'], {
      env: { KUBECONFIG: kc, HOME: dir, PATH: process.env.PATH ?? '/usr/bin:/bin', TERM: 'xterm', KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let sent = false;
    const hard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('tty-ok') && !sent) {
        sent = true;
        child.stdin.write('hello spdy tty\n');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(hard);
      resolve({ code, out });
    });
  });
  assert.equal(tty.code, 0, tty.out);
  assert.match(tty.out, /got hello spdy tty/);
  const ran = kube.execs.at(-1);
  assert.deepEqual([ran?.transport, ran?.tty, ran?.resizes[0]], ['SPDY/3.1', true, { Width: 90, Height: 20 }]);
  const cast = await until(async () => {
    for (const s of await api<{ id: string }[]>('/api/sessions?protocol=kubernetes&connection=kube&limit=100')) {
      const a = await api<string>(`/api/sessions/${s.id}/asciicast`);
      if (a.includes('got hello spdy tty')) return a;
    }
    return undefined;
  }, 'the asciicast of the tty exec');
  const [header, ...lines] = cast.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.deepEqual([(header as { width: number }).width, (header as { height: number }).height], [90, 20]);
  const ev = lines as [number, string, string][];
  assert.ok(ev.some((e) => e[1] === 'r' && e[2] === '90x20'));
  assert.ok(ev.some((e) => e[1] === 'i' && e[2].includes('hello spdy tty')));
});

test('a denied exec over SPDY gets the rule\'s message; a masking session refuses SPDY exec with a clear message; nothing reaches the API server', { skip }, async () => {
  kube.clearRequests();
  const denied = await kubectl(['exec', 'locked', '--', 'true'], await agentKubeconfig(await gw.token()));
  assert.equal(denied.code, 1);
  assert.equal(denied.stderr.trim(), 'Error from server (Forbidden): pods "locked" is forbidden: no exec into locked pods (gatehouse: rule spdy#0)');
  const masked = await kubectl(['exec', 'p', '--', 'true'], await agentKubeconfig(await gw.token(), 'kube-mask'));
  assert.equal(masked.code, 1);
  assert.equal(
    masked.stderr.trim(),
    'Error from server (BadRequest): gatehouse: exec over SPDY/3.1 is refused while this session masks answers: SPDY frames cannot be rewritten for masking without breaking SPDY flow control; kubectl 1.30 or later runs exec over WebSocket, which Gatehouse masks',
  );
  assert.ok(!kube.requests.some((q) => q.path.endsWith('/exec')), 'no exec reached the API server');
  // a policy deny still wins over the masking refusal
  const both = await kubectl(['exec', 'locked', '--', 'true'], await agentKubeconfig(await gw.token(), 'kube-mask'));
  assert.match(both.stderr, /no exec into locked pods/);
});

test('port-forward over SPDY is decided, then relayed with the connection\'s credentials', { skip }, async () => {
  kube.clearRequests();
  const pf = await kubectl(['port-forward', 'pod/p', '0:80'], await agentKubeconfig(await gw.token(), 'kube-mask'), undefined, 15_000);
  // the stand-in speaks no port-forward and says so; the answer reaches kubectl as it is
  assert.equal(pf.stderr.trim(), 'error: error upgrading connection: pods/portforward is not supported by the stand-in');
  const up = kube.requests.filter((q) => q.path.endsWith('/portforward'));
  assert.deepEqual(up.map((q) => [q.method, q.upgrade, q.headers.authorization]), [['POST', 'SPDY/3.1', `Bearer ${SA_TOKEN}`]]);
});

test('malformed SPDY from the agent closes that exec, is recorded, and the gateway keeps serving', { skip }, async () => {
  const token = await gw.token({ clientId: 'agent-b' });
  const path = '/k8s/kube/api/v1/namespaces/x/pods/p/exec?command=sleep&command=10&stdout=true';
  const outcome = await new Promise<{ head: string; closed: boolean }>((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, ca: cert.cert, servername: 'localhost' }, () => {
      sock.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n`);
    });
    let head = '';
    let sent = false;
    sock.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!sent && head.includes('\r\n\r\n')) {
        sent = true;
        // a valid first stream, then a control frame claiming SPDY version 2
        sock.write(Buffer.concat([new SpdyEncoder().synStream({ streamId: 1, headers: [['streamtype', 'error']] }), Buffer.from('80020001000000040000000000', 'hex')]));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve({ head, closed: true }));
    setTimeout(() => reject(new Error('the gateway did not close the connection')), 10_000).unref();
  });
  assert.match(outcome.head, /^HTTP\/1\.1 101 /);
  assert.match(outcome.head, /x-stream-protocol-version: v4\.channel\.k8s\.io/i);
  const error = await until(async () => {
    for (const s of await recordings('kube')) {
      const e = s.events.find((x) => x.type === 'error' && String(x.data.message).startsWith('malformed SPDY from the agent'));
      if (e) return e;
    }
    return undefined;
  }, 'the recorded protocol error');
  assert.equal(error.data.message, 'malformed SPDY from the agent: unsupported SPDY version 2; the exec was closed');
  assert.equal(error.data.code, 'ERR_PROTOCOL');
  // the gateway keeps serving
  const r = await kubectl(['exec', 'p', '--', 'echo', 'still-serving'], await agentKubeconfig(await gw.token()));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'still-serving\n');
});

test('the session\'s end (token expiry) ends a running SPDY exec with the reason on its error stream', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token({ ttlSec: 4 }));
  const r = await kubectl(['exec', 'p', '--', 'sh', '-c', 'echo started; exec sleep 20'], kc, undefined, 25_000);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, 'started\n');
  assert.match(r.stderr, /gatehouse: session ended: token expired/);
  assert.ok(r.ms < 10_000, `ended after ${r.ms} ms`);
  const ran = kube.execs.at(-1);
  await ran?.done;
  assert.equal(ran?.exitCode, 137, 'the command on the API server\'s side was ended too');
});

test('kubectl\'s own fallback: the API server refuses the WebSocket exec, the SPDY retry is proxied with the same review approval', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token(), 'kube-v4');
  const dba = await gw.token({ clientId: 'dba-1' });
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, { method, headers: { authorization: `Bearer ${dba}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return r.json();
  };
  kubeV4.clearRequests();
  const running = kubectl(['exec', 'p', '--', 'sh', '-c', 'echo via-fallback; exit 2'], kc, undefined, 30_000, true);
  const review = await until(async () => ((await call('GET', '/api/reviews?state=pending')) as Record<string, unknown>[]).find((x) => String(x.command).includes('pods/exec')), 'the pending review');
  assert.equal(review.command, 'get pods/exec -n x p', 'the WebSocket attempt (GET) is the one reviewed');
  await call('POST', `/api/reviews/${String(review.id)}/approve`, { reason: 'ok' });
  const r = await running;
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, 'via-fallback\n');
  assert.match(r.stderr, /command terminated with exit code 2/);
  const tries = kubeV4.requests.filter((q) => q.path.endsWith('/exec')).map((q) => [q.method, q.upgrade, q.status]);
  assert.deepEqual(tries, [['GET', 'websocket', 400], ['POST', 'SPDY/3.1', 101]]);
  assert.deepEqual([kubeV4.execs.at(-1)?.transport, kubeV4.execs.at(-1)?.protocol], ['SPDY/3.1', 'v4.channel.k8s.io']);
  const all = (await call('GET', '/api/reviews')) as Record<string, unknown>[];
  assert.equal(all.filter((x) => String(x.command).includes('pods/exec')).length, 1, 'no second review for the fallback');

  // the approval was for that one request: the next exec (here straight over SPDY) is reviewed anew
  const next = kubectl(['exec', 'p', '--', 'id'], kc, undefined, 30_000);
  const review2 = await until(async () => ((await call('GET', '/api/reviews?state=pending')) as Record<string, unknown>[]).find((x) => String(x.command).includes('pods/exec')), 'a second pending review');
  assert.equal(review2.command, 'create pods/exec -n x p');
  await call('POST', `/api/reviews/${String(review2.id)}/deny`, { reason: 'not this one' });
  const n = await next;
  assert.equal(n.code, 1);
  assert.match(n.stderr, new RegExp(`Error from server \\(Forbidden\\): pods "p" is forbidden: review ${String(review2.id)} was denied by dba-1: not this one`));
});

test('kubectl attach over SPDY/3.1: stdin reaches the container, its output comes back, recorded', { skip }, async () => {
  const kc = await agentKubeconfig(await gw.token());
  kube.clearRequests();
  const r = await kubectl(['attach', '-i', 'p'], kc, 'attached over spdy\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'attached\nattached over spdy\n');
  const ran = kube.execs.at(-1);
  assert.deepEqual([ran?.transport, ran?.stdin, ran?.stdinClosed], ['SPDY/3.1', 'attached over spdy\n', true]);
  const up = kube.requests.find((q) => q.path.endsWith('/attach'));
  assert.deepEqual([up?.method, up?.upgrade, up?.status], ['POST', 'SPDY/3.1', 101]);
  const events = await until(async () => {
    const all = (await recordings('kube')).flatMap((x) => x.events);
    return all.some((e) => e.type === 'input' && String(e.data.data).includes('attached over spdy')) ? all : undefined;
  }, 'the recording of the attach');
  assert.ok(events.some((e) => e.type === 'statement' && e.data.command === 'create pods/attach -n x p' && e.data.status === 101), JSON.stringify(events.filter((e) => e.type === 'statement')));
  assert.ok(events.some((e) => e.type === 'note' && /^attach x\/p( -c app)? over SPDY\/3\.1$/.test(String(e.data.message))), JSON.stringify(events.filter((e) => e.type === 'note')));
});
