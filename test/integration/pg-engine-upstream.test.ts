/**
 * The gateway's own login to targets that need credentials: SCRAM-SHA-256 over verified TLS and md5
 * (scratch clusters), a wrong target password (refused without revealing it), and cancel on a TLS
 * target. The agent only ever presents its token.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { clusterQuery, startScratchCluster, type ScratchCluster } from '../support/pg.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { eventually, pgClient, rejection } from './pg-engine-support.js';

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    rules:
      - { effect: allow, sql: { types: [select] } }
`;
const PASSWORD = 'p@ss w0rd-ü:/?';

let cert: TestCert;
let otherCert: TestCert;
let scram: ScratchCluster;
let md5: ScratchCluster;
let gw: TestGateway;
let token: string;

before(async () => {
  [cert, otherCert] = await Promise.all([makeTestCert(), makeTestCert()]);
  [scram, md5] = await Promise.all([startScratchCluster({ auth: 'scram-sha-256', tls: cert }), startScratchCluster({ auth: 'md5' })]);
  const role = `CREATE ROLE svc LOGIN PASSWORD '${PASSWORD}'`;
  await Promise.all([clusterQuery(scram, role), clusterQuery(md5, role)]);
  const pw = encodeURIComponent(PASSWORD);
  gw = await startTestGateway({
    policy: POLICY,
    noDatabase: true,
    connections: [
      `  - { name: scram_tls, type: postgres, target: "postgres://svc:${pw}@127.0.0.1:${scram.port}/postgres?sslmode=verify-full", tls: { ca: "${cert.certFile}" } }`,
      `  - { name: md5, type: postgres, target: "postgres://svc:${pw}@127.0.0.1:${md5.port}/postgres" }`,
      `  - { name: wrong_ca, type: postgres, target: "postgres://svc:${pw}@127.0.0.1:${scram.port}/postgres?sslmode=verify-full", tls: { ca: "${otherCert.certFile}" } }`,
      `  - { name: wrong_pw, type: postgres, target: "postgres://svc:not-${pw}@127.0.0.1:${scram.port}/postgres?sslmode=require" }`,
    ].join('\n'),
  });
  token = await gw.token();
});
after(async () => {
  await gw?.close();
  await Promise.all([scram?.stop(), md5?.stop()]);
  await cert?.cleanup();
  await otherCert?.cleanup();
});

test('SCRAM-SHA-256 over verified TLS, and md5: the gateway logs in with the connection’s credentials', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  const s = await pgClient(gw, token, { connectionString: gw.pgUrl(token, 'scram_tls') });
  try {
    const r = await s.query('SELECT current_user AS u, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    assert.deepEqual(r.rows, [{ u: 'svc', ssl: true }]);
  } finally {
    await s.end();
    process.off('warning', onWarning);
  }
  // verify-full against 127.0.0.1: checked against the certificate's IP SAN, no SNI with an IP address.
  assert.deepEqual(warnings.map((w) => w.message).filter((m) => /ServerName/.test(m)), []);
  const m = await pgClient(gw, token, { connectionString: gw.pgUrl(token, 'md5') });
  try {
    assert.deepEqual((await m.query('SELECT current_user AS u')).rows, [{ u: 'svc' }]);
  } finally {
    await m.end();
  }
});

test('a wrong target password or an untrusted target certificate refuses the login with 08006, revealing nothing', async () => {
  for (const name of ['wrong_pw', 'wrong_ca']) {
    const e = await rejection(pgClient(gw, token, { connectionString: gw.pgUrl(token, name) }));
    assert.equal(e.code, '08006', name);
    assert.equal(e.message, 'could not connect to the target database');
  }
  assert.equal(gw.gateway.parts.sessions.live().length, 0);
});

test('cancel reaches a TLS target', async () => {
  const c = await pgClient(gw, token, { connectionString: gw.pgUrl(token, 'scram_tls') });
  try {
    const running = rejection(c.query('SELECT pg_sleep(20)'));
    const admin = new pg.Client({ host: scram.dir, port: scram.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      await eventually(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'")).rowCount, 5000, 'the query to run');
    } finally {
      await admin.end();
    }
    const canceller = new pg.Client(gw.pgUrl(token, 'scram_tls')) as pg.Client & { cancel(client: pg.Client, query: unknown): void };
    canceller.cancel(c, (c as unknown as { activeQuery: unknown }).activeQuery);
    assert.equal((await running).code, '57014');
    assert.deepEqual((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
  } finally {
    await c.end();
  }
});
