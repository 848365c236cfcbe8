/**
 * MySQL throughput: direct to MariaDB, through a bare Node TCP relay, and through Gatehouse, side by
 * side in one run, with the real `mysqlslap` (MariaDB's, Debian mariadb-client).
 *
 *   node --import tsx bench/mysql.ts [--runs 5] [--queries 20000] [--rows 10000] [--readme] [--compiled] [--cpu-prof]
 *
 * Workloads, each at 1 and 8 connections: one point select repeated; 2000 point selects with
 * different ids; 2000 range selects of 100 rows; 2000 aggregates over 1000 rows (files of
 * statements that mysqlslap runs in turn). For each, the three paths take turns `--runs` times and
 * the median queries per second is reported; after every run the server's statement count is
 * checked (mysqlslap reports a time even when its logins are refused), and after a Gatehouse run the
 * bench waits for the gateway to go idle (it writes its audit log and recordings behind the queries).
 *
 * Gatehouse runs as its own process (`gatehouse serve` from the sources through tsx, or the compiled
 * CLI with `--compiled`; `--cpu-prof` writes its CPU profile to the temp directory), with its SQLite
 * store, audit log and recording on, a policy allowing SELECT with a mask rule on a column the
 * workloads do not read, and a token from the development issuer (mysql_clear_password: mysqlslap
 * sends the token as its password; loopback, no TLS, as direct). mysqlslap logs in without a
 * database and then selects its schema, so the connection is named as the user. Direct and relay
 * runs log in as the MariaDB user Gatehouse uses. `--readme` writes the section of bench/README.md
 * between `<!-- mysql:begin -->` and `<!-- mysql:end -->`.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { arg, args, freePort, median, startRelay, waitPort } from './support.js';

const RUNS = arg('runs', 5);
const QUERIES = arg('queries', 20000);
const ROWS = arg('rows', 10000);
const COMPILED = args.includes('--compiled');
const README = args.includes('--readme');
const PROFILE = args.includes('--cpu-prof');
const DB = 'gh_bench_mysql';
const USER = 'gh_bench';
const PASSWORD = randomBytes(12).toString('hex');
const ROOT = resolve(import.meta.dirname, '..');

function sh(cmd: string, argv: string[], input?: string): string {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }), maxBuffer: 64 * 1024 * 1024 });
}

function root(sql: string): string {
  return sh('mysql', ['--no-defaults', '-h', '127.0.0.1', '-u', 'root', '--batch', '--skip-column-names'], sql);
}

interface Target {
  name: 'direct' | 'relay' | 'gatehouse';
  port: number;
  user: string;
  password: string;
  schema: string;
}

/** CPU time (ticks) a process has used so far. */
async function cpuTicks(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** Waits until a process is idle (the gateway writes its audit log and recordings behind the queries). */
async function settle(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  const end = Date.now() + 30_000;
  let last = await cpuTicks(pid);
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 300));
    const now = await cpuTicks(pid);
    if (now - last <= 2) return;
    last = now;
  }
}

/** The server's count of statements run (`Questions`), to check that a run really ran its queries. */
function questions(): number {
  return Number(root("SHOW GLOBAL STATUS LIKE 'Questions'").split('\t')[1]);
}

/**
 * Runs mysqlslap; returns queries per second (total queries / mysqlslap's time for them). mysqlslap
 * reports a time even when its connections are refused, so the server's statement count is checked.
 */
function slap(t: Target, query: string, clients: number, queries: number): number {
  const before = questions();
  const r = spawnSync(
    'mysqlslap',
    [
      '--no-defaults',
      '-h',
      '127.0.0.1',
      '-P',
      String(t.port),
      '-u',
      t.user,
      `--password=${t.password}`,
      `--create-schema=${t.schema}`,
      '--no-drop',
      `--query=${query}`,
      '--delimiter=;',
      `--concurrency=${clients}`,
      '--iterations=1',
      `--number-of-queries=${queries}`,
    ],
    { encoding: 'utf8' },
  );
  const ran = questions() - before;
  const secs = Number(/Average number of seconds to run all queries: ([\d.]+) seconds/.exec(r.stdout)?.[1]);
  if (r.status !== 0 || r.stderr.trim() !== '' || !Number.isFinite(secs) || secs <= 0 || ran < queries) {
    throw new Error(`mysqlslap against ${t.name} failed (${ran} of ${queries} statements ran):\n${r.stdout}${r.stderr}`);
  }
  return queries / secs;
}

/**
 * Where Gatehouse's time goes, from a CPU profile (`--cpu-prof`: the gateway runs with node's
 * profiler). Measured separately; kept here so that a re-run keeps the explanation.
 */
const ANALYSIS = [
  'Where the time goes: through Gatehouse the gateway process is the bottleneck (one core at 100 % at 8 connections; MariaDB at about a third of a core). A CPU profile of Gatehouse (compiled; default configuration) during 40 000 point selects on 8 connections, by share of its busy time: socket reads and writes, four system calls per statement as for the relay, 27 %; the store (SQLite writes of the audit log and the recording, three rows per statement, in batched transactions on the main thread) 21 %; the audit log (canonical JSON, redaction, the SHA-256 chain) 16 %; the MySQL engine itself (packet framing, the response state machine, classifier cache, decision plumbing, masking plan) 10 %; garbage collection 9 %; log masking of recorded texts 3 %; session manager, metrics, policy and the classifier about 5 %; Node internals the rest. That is about 150 µs of CPU per statement in one thread (the relay, at 27 500 statements per second, spends at most 36 µs); about half of it is the per-statement audit and recording, which the PostgreSQL engine pays alike. At one connection each statement waits for that CPU time and, now and then, behind one of the store\'s batched writes, which run synchronously on the main thread.',
  '',
  'Two things keep the engine\'s own share small: statements that differ only in their literals share one classification (the shape cache: 8.5 µs instead of about 450 µs of grammar per statement), and result packets that need no rewriting are forwarded as the chunk they arrived in.',
];

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gh-bench-mysql-'));
  const children: ChildProcess[] = [];
  try {
    const hosts = ['%', 'localhost', '127.0.0.1'];
    root(
      [
        `DROP DATABASE IF EXISTS ${DB}`,
        `CREATE DATABASE ${DB}`,
        ...hosts.map((h) => `DROP USER IF EXISTS '${USER}'@'${h}'`),
        ...hosts.map((h) => `CREATE USER '${USER}'@'${h}' IDENTIFIED VIA mysql_native_password USING PASSWORD('${PASSWORD}')`),
        ...hosts.map((h) => `GRANT ALL ON ${DB}.* TO '${USER}'@'${h}'`),
        `CREATE TABLE ${DB}.sbtest1 (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, secret VARCHAR(40))`,
        '',
      ].join(';\n'),
    );
    const values: string[] = [];
    for (let i = 1; i <= ROWS; i++) values.push(`(${i}, ${randomInt(ROWS)}, '${randomBytes(40).toString('hex').slice(0, 119)}', '${randomBytes(20).toString('hex').slice(0, 59)}', 'sk_live_${randomBytes(12).toString('hex')}')`);
    for (let i = 0; i < values.length; i += 1000) root(`INSERT INTO ${DB}.sbtest1 VALUES ${values.slice(i, i + 1000).join(',')};`);

    const gwPort = await freePort();
    const httpPort = await freePort();
    await writeFile(
      join(dir, 'policy.yaml'),
      [
        'policies:',
        '  - name: bench',
        '    subjects: { groups: [bench] }',
        '    connections: [prod-mysql]',
        '    rules:',
        '      - { effect: allow, sql: { types: [select, set, show, use, empty] } }',
        '      - { effect: mask, columns: ["sbtest1.secret"], strategy: redact }',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'gatehouse.yaml'),
      [
        `listen: { mysql: "127.0.0.1:${gwPort}", http: "127.0.0.1:${httpPort}" }`,
        `store: "sqlite:${join(dir, 'data/gatehouse.db')}"`,
        'identity: { dev_issuer: true }',
        'connections:',
        `  - { name: prod-mysql, type: mysql, target: "mysql://${USER}:${PASSWORD}@127.0.0.1:3306/${DB}" }`,
        'policies: ./policy.yaml',
        'log: { level: warn }',
        '',
      ].join('\n'),
    );
    const cli = COMPILED ? [join(ROOT, 'bin/gatehouse.js')] : ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
    const profiles = join(tmpdir(), 'gh-bench-mysql-profiles');
    if (PROFILE) process.stderr.write(`CPU profile of Gatehouse: ${profiles}\n`);
    const gw = spawn(process.execPath, [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profiles] : []), ...cli, 'serve', '--config', join(dir, 'gatehouse.yaml')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(gw);
    await waitPort(gwPort, 'Gatehouse', 60_000);
    await waitPort(httpPort, 'Gatehouse HTTP', 60_000);
    const token = sh(process.execPath, [...cli, 'token', '--sub', 'bench-agent', '--groups', 'bench', '--ttl', '4h', '--config', join(dir, 'gatehouse.yaml')]).trim();

    // A TCP relay in Node with no logic at all: what one more hop through a Node process costs here.
    const { child: relay, port: relayPort } = await startRelay(3306);
    children.push(relay);
    await waitPort(relayPort, 'the relay', 60_000);

    const targets: Target[] = [
      { name: 'direct', port: 3306, user: USER, password: PASSWORD, schema: DB },
      { name: 'relay', port: relayPort, user: USER, password: PASSWORD, schema: DB },
      // mysqlslap logs in without a database, then selects --create-schema: the user names the connection.
      { name: 'gatehouse', port: gwPort, user: 'prod-mysql', password: token, schema: DB },
    ];
    const file = async (name: string, make: () => string): Promise<string> => {
      const path = join(dir, name);
      await writeFile(path, Array.from({ length: 2000 }, make).join('\n'));
      return path;
    };
    const workloads: { label: string; query: string; queries: number }[] = [
      { label: 'point select, one text repeated', query: 'SELECT c FROM sbtest1 WHERE id = 4242', queries: QUERIES },
      { label: 'point selects, 2000 different texts', query: await file('points.sql', () => `SELECT c FROM sbtest1 WHERE id = ${1 + randomInt(ROWS)};`), queries: QUERIES },
      { label: 'range selects of 100 rows (sysbench simple_ranges)', query: await file('ranges.sql', () => { const a = 1 + randomInt(ROWS - 100); return `SELECT c FROM sbtest1 WHERE id BETWEEN ${a} AND ${a + 99};`; }), queries: Math.ceil(QUERIES / 8) },
      { label: 'aggregates over 1000 rows', query: await file('sums.sql', () => { const a = 1 + randomInt(ROWS - 1000); return `SELECT SUM(k), COUNT(DISTINCT c) FROM sbtest1 WHERE id BETWEEN ${a} AND ${a + 999};`; }), queries: Math.ceil(QUERIES / 40) },
    ];
    // Warm-up (and a check that every path answers).
    for (const t of targets) slap(t, workloads[0]!.query, 2, 2000);
    await settle(gw.pid);

    const started = new Date();
    const load0 = loadavg()[0]!;
    const rows: string[] = [];
    const runs: string[] = [];
    const ratios: number[] = [];
    const relayRatios: number[] = [];
    for (const w of workloads) {
      for (const clients of [1, 8]) {
        const qps: Record<Target['name'], number[]> = { direct: [], relay: [], gatehouse: [] };
        for (let r = 0; r < RUNS; r++) {
          for (const t of targets) {
            qps[t.name].push(slap(t, w.query, clients, w.queries));
            if (t.name === 'gatehouse') await settle(gw.pid);
          }
        }
        const [d, y, g] = [median(qps.direct), median(qps.relay), median(qps.gatehouse)];
        ratios.push(g / d);
        relayRatios.push(y / d);
        const row = `| ${w.label} | ${clients} | ${d.toFixed(0)} | ${y.toFixed(0)} (${((y / d) * 100).toFixed(0)} %) | ${g.toFixed(0)} | **${((g / d) * 100).toFixed(0)} %** | ${((g / y) * 100).toFixed(0)} % |`;
        rows.push(row);
        runs.push(`- ${w.label}, ${clients} connection${clients > 1 ? 's' : ''}: direct ${qps.direct.map((x) => x.toFixed(0)).join(', ')}; relay ${qps.relay.map((x) => x.toFixed(0)).join(', ')}; Gatehouse ${qps.gatehouse.map((x) => x.toFixed(0)).join(', ')}`);
        process.stderr.write(`${row}\n`);
      }
    }
    const load1 = loadavg()[0]!;
    const version = root('SELECT VERSION()').trim();
    const slapVersion = sh('mysqlslap', ['--version']).trim();
    const section = [
      '<!-- mysql:begin -->',
      '## MySQL',
      '',
      `\`node --import tsx bench/mysql.ts --runs ${RUNS} --queries ${QUERIES} --readme\` — queries per second with \`mysqlslap\` (${slapVersion.replace(/^mysqlslap\s+/, '')}) against MariaDB ${version} on 127.0.0.1: directly, through a TCP relay written in Node with no logic at all (\`socket.pipe()\` both ways: what one more hop through a Node process costs on this machine), and through Gatehouse's MySQL engine (its own process${COMPILED ? ', compiled' : ', from the sources through tsx'}; default configuration: SQLite store, audit log and recording on; mysqlslap sends the token as its password over \`mysql_clear_password\`, on loopback without TLS like the direct path). Table \`sbtest1\` of ${ROWS} rows (sysbench's shape plus a \`secret\` column under a mask rule the workloads do not read, so masking plans are built and rows pass untouched). Workloads: one point-select text repeated; 2000 point selects with different ids (every text differs, as from an application); 2000 different range selects of 100 rows (sysbench's \`simple_ranges\`); 2000 different aggregates over 1000 rows. mysqlslap runs the statements in turn on 1 or 8 connections (${QUERIES} statements per run for the point selects, fewer for the heavier ones); the three paths take turns, ${RUNS} runs each, and the server's statement count is checked after each run; medians.`,
      '',
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} (\`nproc\` ${cpus().length}), Node ${process.version}, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, load average ${load0.toFixed(1)} → ${load1.toFixed(1)}; mysqlslap, MariaDB and the proxy share the two cores.`,
      '',
      '| workload | connections | direct q/s | Node relay q/s (/ direct) | Gatehouse q/s | Gatehouse / direct | Gatehouse / relay |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows,
      '',
      'Runs (queries/s):',
      '',
      ...runs,
      '',
      `Result on this machine: ${ratios.map((r) => `${(r * 100).toFixed(0)} %`).join(', ')} of direct (the rows above, in order) — **the 90 % target is ${ratios.every((r) => r >= 0.9) ? 'met' : 'not met'}**. Even the relay, which does nothing but copy bytes, reaches only ${relayRatios.map((r) => `${(r * 100).toFixed(0)} %`).join(', ')}: on two cores shared with mysqlslap and MariaDB, one more process and two more loopback crossings per statement cost about as much as MariaDB's own work on a point select. The target is within reach only where the server's work dominates (the aggregates).`,
      '',
      ...ANALYSIS,
      '<!-- mysql:end -->',
    ].join('\n');
    process.stdout.write(`${section}\n`);
    if (README) {
      const path = join(ROOT, 'bench/README.md');
      let text = await readFile(path, 'utf8');
      const re = /<!-- mysql:begin -->[\s\S]*?<!-- mysql:end -->/;
      text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}\n`;
      await writeFile(path, text);
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    try {
      root([`DROP DATABASE IF EXISTS ${DB}`, ...['%', 'localhost', '127.0.0.1'].map((h) => `DROP USER IF EXISTS '${USER}'@'${h}'`), ''].join(';\n'));
    } catch {
      /* left for the next run */
    }
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
