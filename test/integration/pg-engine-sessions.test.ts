/**
 * Session lifetime through the PostgreSQL engine: query cancel (pg and psql), the end of a session
 * when its token expires or is revoked (the in-flight query on the target ends too), login
 * failures and their SQLSTATEs, TLS, and a session that outlives the gateway's start-up deadlines.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/core/log.js';
import { Gateway } from '../../src/gateway.js';
import { frontend, type ErrorResponse } from '../../src/engines/postgres/protocol.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { eventually, pgClient, psql, rejection, simpleQuery, tcp, WireClient } from './pg-engine-support.js';

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [pg]
    rules:
      - { effect: allow, sql: { types: [select, tcl] } }
`;

let gw: TestGateway;
let token: string;
/** Opened first, queried last: a session must outlive every start-up deadline (10 s upstream, 30 s agent side would take too long). */
let longLived: pg.Client;
let longLivedSince: number;

before(async () => {
  gw = await startTestGateway({ policy: POLICY });
  token = await gw.token();
  longLived = await pgClient(gw, token);
  longLivedSince = Date.now();
});
after(async () => {
  await longLived?.end().catch(() => undefined);
  await gw?.close();
});

function jti(jwt: string): string {
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as { jti: string };
  return payload.jti;
}

async function backendsNamed(name: string): Promise<number> {
  const r = await gw.db!.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [name]);
  return r.rows[0].n as number;
}

/** A FATAL refusal at login through a raw connection: the ErrorResponse. */
async function loginError(password: string, database = 'pg'): Promise<ErrorResponse> {
  const w = new WireClient(await tcp(gw.pgPort));
  w.write(frontend.startupMessage({ user: 'agent', database }));
  let m = await w.next();
  if (m.name === 'AuthenticationCleartextPassword') {
    w.write(frontend.password(password));
    m = await w.next();
  }
  assert.equal(m.name, 'ErrorResponse');
  await eventually(() => w.closed, 5000, 'the gateway to close the refused connection');
  return m as ErrorResponse;
}

test('pg: a running query is cancelled through the gateway (57014); the session goes on', async () => {
  const c = await pgClient(gw, token);
  try {
    const t0 = Date.now();
    const running = rejection(c.query('SELECT pg_sleep(30)'));
    await eventually(async () => (await gw.db!.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")).rowCount, 5000, 'the query to run');
    // pg's own cancel: a new connection carrying the CancelRequest with the gateway's key (not in @types/pg).
    const canceller = new pg.Client(gw.pgUrl(token)) as pg.Client & { cancel(client: pg.Client, query: unknown): void };
    canceller.cancel(c, (c as unknown as { activeQuery: unknown }).activeQuery);
    const e = await running;
    assert.equal(e.code, '57014');
    assert.ok(Date.now() - t0 < 10_000);
    assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
  } finally {
    await c.end();
  }
});

test('a CancelRequest with the wrong secret, or for an unknown key, cancels nothing', async () => {
  const c = await pgClient(gw, token);
  try {
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    const running = c.query('SELECT pg_sleep(0.5) AS slept');
    for (const [pid, secret] of [
      [processID, (secretKey + 1) | 0],
      [processID + 1, secretKey],
    ] as const) {
      const s = await tcp(gw.pgPort);
      s.end(frontend.cancelRequest(pid, secret));
    }
    assert.deepEqual((await running).rows, [{ slept: '' }]);
  } finally {
    await c.end();
  }
});

test('psql: SIGINT cancels the running query', async () => {
  const child = spawn('psql', ['-X', '-A', '-t', '-c', 'SELECT pg_sleep(30)'], { env: { ...gw.psqlEnv(token), PGAPPNAME: 'gh-sigint' } });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await eventually(async () => (await gw.db!.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'gh-sigint' AND state = 'active'")).rowCount, 5000, 'psql to run');
  child.kill('SIGINT');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  const code = await exited;
  clearTimeout(killer);
  assert.equal(code, 1);
  assert.match(stderr, /canceling statement due to user request/);
});

test('token expiry ends a live session with FATAL within about a second, and the in-flight query on the target', async () => {
  const short = await gw.issuer.token({ ttlSec: 3 });
  const exp = (JSON.parse(Buffer.from(short.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number }).exp * 1000;
  const w = await WireClient.login(gw.pgPort, short, { application_name: 'gh-expiry' });
  assert.equal((await simpleQuery(w, 'SELECT 1')).at(-1)?.name, 'ReadyForQuery');
  w.write(frontend.query('SELECT pg_sleep(20)'));
  const msgs = await w.untilClosed(8000);
  const closedAt = Date.now();
  const fatal = msgs.find((m): m is ErrorResponse => m.name === 'ErrorResponse');
  assert.ok(fatal, 'a FATAL ErrorResponse before the close');
  assert.equal(fatal.severity, 'FATAL');
  assert.equal(fatal.code, '57P01');
  assert.match(fatal.message, /token expired/);
  assert.ok(closedAt <= exp + 2000, `closed ${closedAt - exp} ms after expiry`);
  await eventually(async () => (await backendsNamed('gh-expiry')) === 0, 5000, 'the target backend of the expired session to end');
});

test('revoking a token ends its live session and refuses new logins with it', async () => {
  const revoked = await gw.issuer.token({ clientId: 'agent-b' });
  const w = await WireClient.login(gw.pgPort, revoked, { application_name: 'gh-revoked' });
  const other = await pgClient(gw, token);
  try {
    w.write(frontend.query('SELECT pg_sleep(20)'));
    await eventually(async () => (await gw.db!.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'gh-revoked' AND state = 'active'")).rowCount, 5000, 'the query to run');
    const store = gw.gateway.parts.store;
    const rec = { id: randomUUID(), kind: 'token_id' as const, value: jti(revoked), reason: 'test', createdBy: 'admin-1', createdAt: Date.now() };
    await store.addRevocation(rec);
    await store.events.publish('revocation', { id: rec.id });
    const msgs = await w.untilClosed(5000);
    const fatal = msgs.find((m): m is ErrorResponse => m.name === 'ErrorResponse');
    assert.equal(fatal?.severity, 'FATAL');
    assert.match(fatal?.message ?? '', /revoked/);
    await eventually(async () => (await backendsNamed('gh-revoked')) === 0, 5000, 'the revoked session’s query to end on the target');
    const again = await loginError(revoked);
    assert.equal(again.severity, 'FATAL');
    assert.match(again.code, /^28/);
    // Other identities are untouched.
    assert.deepEqual((await other.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
  } finally {
    w.end();
    await other.end();
  }
});

test('login failures: forged, garbage, empty and expired tokens (28P01), unknown connection (3D000), no policy (42501)', async () => {
  const [h, p, s] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
  const forgedClaims = Buffer.from(JSON.stringify({ ...claims, groups: ['db-admins', 'ai-agents'] })).toString('base64url');
  const forged = `${h}.${forgedClaims}.${s}`;
  const badSig = `${h}.${p}.${s.slice(0, -4)}${s.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
  const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.`;
  for (const bad of [forged, badSig, noneAlg, 'not-a-token', '']) {
    const e = await loginError(bad);
    assert.equal(e.severity, 'FATAL');
    assert.equal(e.code, '28P01', `${bad.slice(0, 20)}: ${e.message}`);
  }
  const expiring = await gw.issuer.token({ ttlSec: 1 });
  await new Promise((r) => setTimeout(r, 1300));
  const expired = await loginError(expiring);
  assert.equal(expired.code, '28P01');
  assert.match(expired.message, /expired/);

  const unknown = await loginError(token, 'no_such_connection');
  assert.equal(unknown.code, '3D000');
  assert.match(unknown.message, /no_such_connection/);

  const nobody = await gw.issuer.token({ clientId: 'agent-c' });
  const denied = await loginError(nobody);
  assert.equal(denied.code, '42501');
  assert.match(denied.message, /no policy lets/);

  // The same through psql and pg.
  const r = await psql(gw, 'not-a-token', ['-c', 'SELECT 1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /FATAL/);
  const e = await rejection(pgClient(gw, nobody));
  assert.equal(e.code, '42501');
});

test('TLS: psql with sslmode=require and verify-full, pg with ssl; plaintext still allowed on loopback', async () => {
  let cert: TestCert | undefined;
  let tgw: TestGateway | undefined;
  try {
    cert = await makeTestCert();
    tgw = await startTestGateway({ policy: POLICY, issuer: gw.issuer, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
    const t = await tgw.token();
    const req = await psql(tgw, t, ['-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'], { env: { PGSSLMODE: 'require' } });
    assert.equal(req.code, 0, req.stderr);
    // The gateway's own connection to the target is plain TCP; what matters is the agent side.
    assert.equal(req.stdout, 'f\n');
    const full = await psql(tgw, t, ['-c', "SELECT 'verified'"], { env: { PGSSLMODE: 'verify-full', PGSSLROOTCERT: cert.certFile, PGHOST: 'localhost' } });
    assert.equal(full.code, 0, full.stderr);
    assert.equal(full.stdout, 'verified\n');
    const c = new pg.Client({ connectionString: tgw.pgUrl(t).replace('sslmode=disable', 'sslmode=no-verify') });
    await c.connect();
    try {
      assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
    } finally {
      await c.end();
    }
    const plain = await psql(tgw, t, ['-c', 'SELECT 1']);
    assert.equal(plain.code, 0, plain.stderr);
  } finally {
    await tgw?.close();
    await cert?.cleanup();
  }
});

/** A non-loopback address of this machine, if it has one. */
function externalIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

test('a non-loopback client must use TLS: refused in plaintext (28000), served over TLS', { skip: externalIPv4() === undefined ? 'this machine has no non-loopback IPv4 address' : false }, async () => {
  const ip = externalIPv4()!;
  const dir = await mkdtemp(join(tmpdir(), 'gh-pg-ext-'));
  const cert = await makeTestCert();
  let g: Gateway | undefined;
  try {
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    const yaml = [
      'listen: { postgres: "0.0.0.0:0" }',
      `tls: { cert: "${cert.certFile}", key: "${cert.keyFile}" }`,
      `store: "sqlite:${join(dir, 'gatehouse.db')}"`,
      'identity:',
      '  issuers:',
      `    - { issuer: "${gw.issuer.issuer}", audience: "${gw.issuer.audience}" }`,
      'connections:',
      `  - { name: pg, type: postgres, target: "${gw.db!.url}" }`,
      'policies: ./policy.yaml',
      'log: { level: silent }',
    ].join('\n');
    g = await Gateway.start(parseConfig(yaml, join(dir, 'gatehouse.yaml')), { logger: silentLogger() });
    const port = g.address('postgres')!.port;
    const url = (mode: string): string => `postgres://agent:${encodeURIComponent(token)}@${ip}:${port}/pg?sslmode=${mode}`;
    const e = await rejection(new pg.Client({ connectionString: url('disable') }).connect());
    assert.equal(e.code, '28000');
    assert.match(e.message, /only over TLS/);
    const c = new pg.Client({ connectionString: url('no-verify') });
    await c.connect();
    try {
      assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
    } finally {
      await c.end();
    }
  } finally {
    await g?.close();
    await cert.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a session outlives the gateway’s start-up deadlines', async () => {
  const wait = longLivedSince + 11_000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  assert.deepEqual((await longLived.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
});
