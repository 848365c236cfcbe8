/**
 * PostgreSQL for integration tests: a fresh database on the machine's server (127.0.0.1:5432, trust),
 * or a scratch cluster of our own (initdb + pg_ctl on a free port) when a test needs password
 * authentication (SCRAM-SHA-256, md5) or TLS on the target side.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, chmod, chown, appendFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './net.js';

const run = promisify(execFile);

export const PG_HOST = process.env.PGHOST_TEST ?? '127.0.0.1';
export const PG_PORT = Number(process.env.PGPORT_TEST ?? 5432);

export interface TestDatabase {
  name: string;
  /** `postgres://postgres@127.0.0.1:5432/<name>` */
  url: string;
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  drop(): Promise<void>;
}

/** Creates a uniquely named database on the machine's PostgreSQL; `drop()` removes it. */
export async function createTestDatabase(prefix = 'gh_test'): Promise<TestDatabase> {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = `postgres://postgres@${PG_HOST}:${PG_PORT}/${name}`;
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // An idle client the server ends (a forced drop, a terminated backend) must not crash the test process.
  pool.on('error', () => undefined);
  return {
    name,
    url,
    query: (sql, params) => pool.query(sql, params as unknown[]),
    async drop() {
      await pool.end();
      const a = new pg.Client({ host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres' });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

function pgBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions[0]) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
  return join(root, versions[0], 'bin');
}

export interface ScratchCluster {
  port: number;
  dir: string;
  /** Superuser `postgres` over TCP (needs the password set with `clusterQuery` unless auth is trust). */
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway PostgreSQL cluster whose TCP connections need `auth` (scram-sha-256 or md5),
 * optionally with TLS. Runs as the `postgres` OS user (initdb refuses root). ~2–3 s.
 */
export async function startScratchCluster(opts: { auth: 'scram-sha-256' | 'md5' | 'trust'; tls?: { cert: string; key: string } }): Promise<ScratchCluster> {
  const bin = pgBin();
  const dir = await mkdtemp(join(tmpdir(), 'gh-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  const asPostgres = process.getuid?.() === 0;
  if (asPostgres) await chown(dir, uidOf('postgres'), gidOf('postgres'));
  const sh = (cmd: string) => (asPostgres ? run('runuser', ['-u', 'postgres', '--', 'sh', '-c', cmd]) : run('sh', ['-c', cmd]));
  await sh(`${bin}/initdb -D ${data} -U postgres --auth-local=trust --auth-host=${opts.auth} --no-sync >/dev/null`);
  const conf = [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${dir}'`, `password_encryption = '${opts.auth === 'md5' ? 'md5' : 'scram-sha-256'}'`, 'fsync = off', 'max_connections = 60'];
  if (opts.tls) {
    const cert = join(dir, 'server.crt');
    const key = join(dir, 'server.key');
    await writeFile(cert, opts.tls.cert);
    await writeFile(key, opts.tls.key);
    await chmod(key, 0o600);
    if (asPostgres) {
      await chown(cert, uidOf('postgres'), gidOf('postgres'));
      await chown(key, uidOf('postgres'), gidOf('postgres'));
    }
    conf.push('ssl = on', `ssl_cert_file = '${cert}'`, `ssl_key_file = '${key}'`);
  }
  await appendFile(join(data, 'postgresql.conf'), `\n${conf.join('\n')}\n`);
  await sh(`${bin}/pg_ctl -D ${data} -l ${dir}/log -w -t 30 start >/dev/null`);
  return {
    port,
    dir,
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await sh(`${bin}/pg_ctl -D ${data} -m immediate -w stop >/dev/null`).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs SQL as the cluster's superuser over its unix socket (trust). */
export async function clusterQuery(c: ScratchCluster, sql: string): Promise<void> {
  const client = new pg.Client({ host: c.dir, port: c.port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function uidOf(user: string): number {
  return Number(idSync(['-u', user]));
}
function gidOf(user: string): number {
  return Number(idSync(['-g', user]));
}
function idSync(args: string[]): string {
  return execFileSync('id', args, { encoding: 'utf8' }).trim();
}
