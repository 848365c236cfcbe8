/**
 * Requests per second for `GET /api/v1/namespaces/x/pods` (a list of 20 pods, JSON), sent directly
 * to the stand-in Kubernetes API server (test/support/kube-apiserver.ts: no kube-apiserver runs on
 * these machines) and through Gatehouse's Kubernetes engine — once on a connection whose policy
 * masks nothing (answers streamed through untouched) and once on one that masks (`Secret.data.*`
 * and the `api_key` detectors: every answer is parsed, walked and serialized again).
 *
 * The same client does both: node:https with a keep-alive agent, N concurrent requests in flight,
 * each sent as soon as the previous answer was read in full. The stand-in and the client run in
 * processes of their own; Gatehouse (with its SQLite store, audit log and recording on, as in
 * production) runs in the main one. The scenarios take turns, run after run; each figure is the
 * median over the runs.
 *
 * Run: `node --import tsx bench/k8s-requests.ts [--concurrency 16] [--seconds 5] [--runs 5] [--only 0|1|2]`
 */
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface LoadJob {
  url: string;
  ca: string;
  token: string;
  concurrency: number;
  seconds: number;
}

interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
}

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i === -1 ? undefined : Number(process.argv[i + 1]);
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : dflt;
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** The load generator (a worker thread). */
async function load(job: LoadJob): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency, ca: job.ca });
  const u = new URL(job.url);
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  const end = performance.now() + job.seconds * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, agent, headers: { authorization: `Bearer ${job.token}`, accept: 'application/json' } },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => {
            if (res.statusCode === 200) {
              requests++;
              latencies.push(performance.now() - t0);
            } else errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { requests, errors, seconds, p50: latencies[Math.floor(latencies.length * 0.5)] ?? 0, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

/** Runs this file in a child process with `data` as its role; resolves to its first message. */
function inChild<T>(data: unknown): { child: ChildProcess; result: Promise<T> } {
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(data)], { execArgv: ['--import', 'tsx'] });
  const result = new Promise<T>((resolve, reject) => {
    child.once('message', (m: unknown) => resolve(m as T));
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`bench child ${(data as { role: string }).role} exited with ${code ?? signal}`)));
  });
  return { child, result };
}

const role = process.argv[2]?.startsWith('{') ? (JSON.parse(process.argv[2]) as { role: 'standin'; token: string } | ({ role: 'load' } & LoadJob)) : undefined;

if (role !== undefined) {
  const data = role;
  // never outlive the benchmark
  process.on('disconnect', () => process.exit(0));
  if (data.role === 'load') {
    process.send?.(await load(data));
    process.exit(0);
  } else {
    const { startKubeStandIn } = await import('../test/support/kube-apiserver.js');
    const kube = await startKubeStandIn({ tokens: { [data.token]: { name: 'gatehouse', groups: ['system:masters', 'system:authenticated'] } } });
    kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } });
    for (let i = 0; i < 20; i++) {
      kube.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `web-${i}`, namespace: 'x', labels: { app: 'web', tier: 'frontend' } }, spec: { containers: [{ name: 'app', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }] } });
    }
    process.send?.({ url: kube.url, ca: kube.caCert });
    process.once('message', () => void kube.close().then(() => process.exit(0)));
  }
} else {
  const concurrency = arg('concurrency', 16);
  const seconds = arg('seconds', 5);
  const runs = arg('runs', 5);
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir, cpus } = await import('node:os');
  const { join } = await import('node:path');
  const { startTestGateway } = await import('../test/support/gateway.js');
  const { makeTestCert } = await import('../test/support/tls.js');

  const saToken = 'bench-gatehouse-token';
  const standin = inChild<{ url: string; ca: string }>({ role: 'standin', token: saToken });
  const standinInfo = await standin.result;
  const dir = await mkdtemp(join(tmpdir(), 'gh-bench-k8s-'));
  const cert = await makeTestCert();
  const caFile = join(dir, 'kube-ca.pem');
  await writeFile(caFile, standinInfo.ca);
  const conn = (name: string): string => `  - { name: ${name}, type: kubernetes, target: "${standinInfo.url}", token: "${saToken}", tls: { ca: "${caFile}" } }`;
  const gw = await startTestGateway({
    policy: `policies:
  - name: masked
    subjects: { groups: [ai-agents] }
    connections: [kube-masked]
    rules:
      - { effect: allow, k8s: { verbs: [get, list, watch] } }
      - { effect: mask, paths: ["Secret.data.*"] }
      - { effect: mask, detectors: [api_key] }
  - name: plain
    subjects: { groups: [ai-agents] }
    connections: [kube]
    rules:
      - { effect: allow, k8s: { verbs: [get, list, watch] } }
`,
    noDatabase: true,
    listen: { kubernetes: '127.0.0.1:0' },
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    connections: [conn('kube'), conn('kube-masked')].join('\n'),
    accessTokenTtlSec: 3600,
  });
  const port = gw.gateway.address('kubernetes')!.port;
  const agentToken = await gw.token();
  const path = '/api/v1/namespaces/x/pods';
  const all: { name: string; job: LoadJob }[] = [
    { name: 'direct to the API server (stand-in)', job: { url: `${standinInfo.url}${path}`, ca: standinInfo.ca, token: saToken, concurrency, seconds } },
    { name: 'through Gatehouse, nothing to mask', job: { url: `https://127.0.0.1:${port}/k8s/kube${path}`, ca: cert.cert, token: agentToken, concurrency, seconds } },
    { name: 'through Gatehouse, masking (JSON rewritten)', job: { url: `https://127.0.0.1:${port}/k8s/kube-masked${path}`, ca: cert.cert, token: agentToken, concurrency, seconds } },
  ];
  const { loadavg } = await import('node:os');
  const load0 = loadavg()[0] ?? 0;
  const only = process.argv.indexOf('--only');
  const scenarios = only === -1 ? all : all.filter((_s, i) => String(i) === process.argv[only + 1]);
  console.log(`GET ${path} (20 pods), ${concurrency} concurrent, keep-alive, ${runs} runs of ${seconds} s, median; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`);
  console.log('');
  console.log('| path | requests/s | p50 latency | p99 latency | Gatehouse CPU per request | errors |');
  console.log('|---|---:|---:|---:|---:|---:|');
  // round-robin over the scenarios, so that a busy moment on the machine hits all of them alike
  const results = new Map<string, LoadResult[]>(scenarios.map((s) => [s.name, []]));
  /** CPU time of this process (Gatehouse) per request answered, µs. */
  const cpuPerRequest = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
  for (const s of scenarios) await inChild<LoadResult>({ role: 'load', ...s.job, seconds: 1 }).result; // warm-up
  for (let r = 0; r < runs; r++) {
    for (const s of scenarios) {
      const cpu0 = process.cpuUsage();
      const res = await inChild<LoadResult>({ role: 'load', ...s.job }).result;
      const cpu = process.cpuUsage(cpu0);
      results.get(s.name)?.push(res);
      cpuPerRequest.get(s.name)?.push((cpu.user + cpu.system) / Math.max(1, res.requests));
    }
  }
  for (const s of scenarios) {
    const rs = results.get(s.name) ?? [];
    const rps = median(rs.map((x) => x.requests / x.seconds));
    const p50 = median(rs.map((x) => x.p50));
    const p99 = median(rs.map((x) => x.p99));
    const errors = rs.reduce((a, x) => a + x.errors, 0);
    const cpu = s.job.url.includes('/k8s/') ? `${median(cpuPerRequest.get(s.name) ?? []).toFixed(0)} µs` : '—';
    console.log(`| ${s.name} | ${rps.toFixed(0)} | ${p50.toFixed(2)} ms | ${p99.toFixed(2)} ms | ${cpu} | ${errors} |`);
  }
  console.log('');
  console.log(`Runs (requests/s), load average ${load0.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}:`);
  console.log('');
  for (const s of scenarios) console.log(`- ${s.name}: ${(results.get(s.name) ?? []).map((x) => (x.requests / x.seconds).toFixed(0)).join(', ')}`);
  await gw.close();
  standin.child.removeAllListeners('exit');
  standin.child.send('close');
  await cert.cleanup();
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}
