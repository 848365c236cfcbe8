/**
 * PostgreSQL throughput and latency: direct, through PgBouncer (session pooling), through a plain
 * Node TCP relay (the floor of any Node proxy here) and through Gatehouse, side by side in one run,
 * with the real `pgbench`.
 *
 *   npm run build && node --import tsx bench/pg.ts [--duration 10] [--runs 3] [--scale 10]
 *
 * For each workload (`pgbench -S` select-only, and the default TPC-B-like script) at 1 and 8
 * clients, the three targets are run in turn, `--runs` times, and the median TPS is reported.
 * Added latency per query: `pgbench -S -c 1` with per-transaction logging (`-l`), median and p99
 * latency through each target minus direct.
 *
 * Gatehouse runs as its own process (`gatehouse serve`, compiled), with the default SQLite store,
 * recording and audit on, a policy allowing what pgbench runs, and a token from the development
 * issuer. PgBouncer 1.18 (Debian) runs as the postgres user in session mode.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { arg, freePort, median, startRelay, waitPort } from './support.js';

const DURATION = arg('duration', 10);
const RUNS = arg('runs', 3);
const SCALE = arg('scale', 10);
const DB = 'gh_bench';
const ROOT = resolve(import.meta.dirname, '..');

function sh(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, argv, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Target {
  name: string;
  port: number;
  db: string;
  user: string;
  env: NodeJS.ProcessEnv;
}

function pgbench(t: Target, extra: string[]): { tps: number; latencyMs: number } {
  const out = sh('pgbench', ['-h', '127.0.0.1', '-p', String(t.port), '-U', t.user, '-n', '-T', String(DURATION), ...extra, t.db], t.env);
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`pgbench output not understood:\n${out}`);
  return { tps, latencyMs };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Per-transaction latencies (µs) of a `pgbench -S -c 1 -l` run. */
async function latencies(t: Target, dir: string): Promise<number[]> {
  const prefix = join(dir, `lat-${t.name}-${Date.now()}`);
  sh('pgbench', ['-h', '127.0.0.1', '-p', String(t.port), '-U', t.user, '-n', '-S', '-c', '1', '-T', String(DURATION), '-l', '--log-prefix', prefix, t.db], t.env);
  const files = (await readdir(dir)).filter((f) => join(dir, f).startsWith(prefix));
  const out: number[] = [];
  for (const f of files) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
      const cols = line.split(' ');
      if (cols.length >= 3) out.push(Number(cols[2]));
    }
    await rm(join(dir, f));
  }
  return out;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gh-bench-pg-'));
  await chmod(dir, 0o755);
  const children: ChildProcess[] = [];
  try {
    const admin = { ...process.env, PGPASSWORD: '' };
    sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-c', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`, '-c', `CREATE DATABASE ${DB}`], admin);
    sh('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-i', '-q', '-s', String(SCALE), DB], admin);

    // PgBouncer, session mode (it refuses to run as root: run it as postgres).
    const bouncerPort = await freePort();
    await writeFile(join(dir, 'userlist.txt'), '"postgres" ""\n');
    await writeFile(
      join(dir, 'pgbouncer.ini'),
      ['[databases]', `${DB} = host=127.0.0.1 port=5432 dbname=${DB}`, '[pgbouncer]', 'listen_addr = 127.0.0.1', `listen_port = ${bouncerPort}`, 'auth_type = trust', `auth_file = ${join(dir, 'userlist.txt')}`, 'pool_mode = session', 'max_client_conn = 200', 'default_pool_size = 20', 'unix_socket_dir =', ''].join('\n'),
    );
    await chmod(join(dir, 'pgbouncer.ini'), 0o644);
    await chmod(join(dir, 'userlist.txt'), 0o644);
    const root = process.getuid?.() === 0;
    const ids = root ? { uid: Number(sh('id', ['-u', 'postgres'])), gid: Number(sh('id', ['-g', 'postgres'])) } : {};
    const bouncer = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], { stdio: 'ignore', ...ids });
    children.push(bouncer);
    await waitPort(bouncerPort, 'PgBouncer');

    // Gatehouse.
    const gwPort = await freePort();
    const httpPort = await freePort();
    await writeFile(
      join(dir, 'policy.yaml'),
      `policies:\n  - name: bench\n    subjects: { groups: [bench] }\n    connections: [bench]\n    rules:\n      - { effect: allow, sql: { types: [select, insert, update, tcl, set, show, empty] } }\n`,
    );
    await writeFile(
      join(dir, 'gatehouse.yaml'),
      [`listen: { postgres: "127.0.0.1:${gwPort}", http: "127.0.0.1:${httpPort}" }`, 'store: "sqlite:./data/gatehouse.db"', 'identity: { dev_issuer: true }', 'connections:', `  - { name: bench, type: postgres, target: "postgres://postgres@127.0.0.1:5432/${DB}" }`, 'policies: ./policy.yaml', 'log: { level: warn }', ''].join('\n'),
    );
    const gw = spawn(process.execPath, [join(ROOT, 'bin/gatehouse.js'), 'serve', '--config', join(dir, 'gatehouse.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(gw);
    await waitPort(gwPort, 'Gatehouse');
    await waitPort(httpPort, 'Gatehouse HTTP');
    const token = sh(process.execPath, [join(ROOT, 'bin/gatehouse.js'), 'token', '--sub', 'bench-agent', '--groups', 'bench', '--ttl', '4h', '--config', join(dir, 'gatehouse.yaml')]).trim();

    // A plain Node TCP relay (no parsing, no policy): the floor of any Node proxy on this machine.
    const { child: relay, port: relayPort } = await startRelay(5432);
    children.push(relay);
    await waitPort(relayPort, 'relay');

    const targets: Target[] = [
      { name: 'direct', port: 5432, db: DB, user: 'postgres', env: admin },
      { name: 'pgbouncer', port: bouncerPort, db: DB, user: 'postgres', env: admin },
      { name: 'relay', port: relayPort, db: DB, user: 'postgres', env: admin },
      { name: 'gatehouse', port: gwPort, db: 'bench', user: 'agent', env: { ...process.env, PGPASSWORD: token } },
    ];

    const load = loadavg()[0]!.toFixed(2);
    const lines: string[] = [];
    const runs: string[] = [];
    lines.push(`PostgreSQL benchmark — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, ${sh('pgbench', ['--version']).trim()}, PostgreSQL ${sh('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', DB, '-Atc', 'SHOW server_version']).trim()}`);
    lines.push(`scale ${SCALE}, ${DURATION} s per run, median of ${RUNS} runs, targets interleaved; load average at start ${load}`);
    lines.push('');
    lines.push('| workload | clients | direct TPS | PgBouncer TPS | Node relay TPS | Gatehouse TPS | Gatehouse / direct | Gatehouse / PgBouncer |');
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const [label, extra] of [
      ['select-only (`-S`)', ['-S']],
      ['TPC-B-like (default)', []],
    ] as const) {
      for (const clients of [1, 8]) {
        const tps: Record<string, number[]> = { direct: [], pgbouncer: [], relay: [], gatehouse: [] };
        for (let r = 0; r < RUNS; r++) {
          for (const t of targets) tps[t.name]!.push(pgbench(t, [...extra, '-c', String(clients), '-j', String(Math.min(clients, 2))]).tps);
        }
        const [d, b, n, g] = [median(tps.direct!), median(tps.pgbouncer!), median(tps.relay!), median(tps.gatehouse!)];
        const row = `| ${label} | ${clients} | ${d.toFixed(0)} | ${b.toFixed(0)} | ${n.toFixed(0)} | ${g.toFixed(0)} | ${((g / d) * 100).toFixed(0)} % | ${((g / b) * 100).toFixed(0)} % |`;
        lines.push(row);
        runs.push(`- ${label}, ${clients} client${clients > 1 ? 's' : ''}: ${targets.map((t) => `${t.name} ${tps[t.name]!.map((x) => x.toFixed(0)).join(', ')}`).join('; ')}`);
        process.stderr.write(`${row}\n`);
      }
    }
    lines.push('');
    lines.push('| added latency, `pgbench -S -c 1` | median | p99 |');
    lines.push('|---|---|---|');
    const lat: Record<string, number[]> = {};
    for (const t of targets) lat[t.name] = await latencies(t, dir);
    const base = { med: median(lat.direct!), p99: percentile(lat.direct!, 99) };
    lines.push(`| direct (absolute) | ${(base.med / 1000).toFixed(3)} ms | ${(base.p99 / 1000).toFixed(3)} ms |`);
    for (const name of ['pgbouncer', 'relay', 'gatehouse']) {
      const med = median(lat[name]!) - base.med;
      const p99 = percentile(lat[name]!, 99) - base.p99;
      lines.push(`| ${name} − direct | ${(med / 1000).toFixed(3)} ms | ${(p99 / 1000).toFixed(3)} ms |`);
    }
    lines.push('', 'Runs (TPS):', '', ...runs, '', `load average at the end ${loadavg()[0]!.toFixed(2)}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    try {
      execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-c', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`], { stdio: 'ignore' });
    } catch {
      /* left for the next run */
    }
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
