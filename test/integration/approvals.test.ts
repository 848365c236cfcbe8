/**
 * Approvals, grants, revocation and kill through the PostgreSQL engine, with the real `pg` driver,
 * tokens from the real OIDC issuer, and the HTTP API driven as approvers would.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { until } from '../support/client.js';

const POLICY = `policies:
  - name: agents
    subjects: { groups: [ai-agents, dba] }
    connections: [pg]
    rules:
      - { effect: review, sql: { types: [ddl] }, approvers: { groups: [dba] }, reason: "schema changes need a DBA" }
      - { effect: review, sql: { types: [delete] }, approvers: { groups: [dba], require_reason: true }, reason: "deletes need a reason" }
      - { effect: allow,  sql: { types: [select, insert, tcl, set, show, empty] } }
`;

const JIT_POLICY = `policies:
  - name: jit
    subjects: { groups: [ai-agents] }
    connections: [pg]
    require_grant: true
    rules:
      - { effect: allow, sql: { types: [select] } }
`;

interface Hook {
  body: string;
  headers: IncomingMessage['headers'];
}


describe('approvals through the PostgreSQL engine', () => {
  let gw: TestGateway;
  let hooks: Hook[];
  let hookServer: ReturnType<typeof createServer>;
  const SECRET = 'webhook-secret-for-tests';

  before(async () => {
    hooks = [];
    hookServer = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hooks.push({ body, headers: req.headers });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    const hookPort = (hookServer.address() as AddressInfo).port;
    gw = await startTestGateway({
      policy: POLICY,
      setupSql: 'CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, $$one$$), (2, $$two$$), (3, $$three$$);',
      extraConfig: [
        'review: { hold_timeout: 3s, valid_for: 5m }',
        `notifications: { webhooks: [ { url: "http://127.0.0.1:${hookPort}/hook", secret: "${SECRET}" }, { url: "http://127.0.0.1:${hookPort}/slack", format: slack, events: [review.created] } ] }`,
        'public_url: "https://gatehouse.example.test"',
      ].join('\n'),
    });
  });

  after(async () => {
    await gw?.close();
    await new Promise<void>((r) => hookServer.close(() => r()));
  });

  async function api(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> & Record<string, unknown>[] }> {
    const r = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> & Record<string, unknown>[] };
  }

  async function client(clientId = 'agent-a'): Promise<{ c: pg.Client; notices: string[] }> {
    const c = new pg.Client({ connectionString: gw.pgUrl(await gw.token({ clientId })) });
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    c.on('error', () => undefined);
    await c.connect();
    return { c, notices };
  }

  async function pendingReview(dba: string, fragment: string): Promise<Record<string, unknown>> {
    return until(async () => {
      const r = await api(dba, 'GET', '/api/reviews?state=pending');
      return (r.json as unknown as Record<string, unknown>[]).find((x) => String(x.command).includes(fragment));
    }, `a pending review for ${fragment}`);
  }

  test('a held DDL statement runs once another identity approves it', async () => {
    const { c, notices } = await client();
    const dba = await gw.token({ clientId: 'dba-1' });
    const running = c.query('CREATE TABLE approved_t (x int)');
    const review = await pendingReview(dba, 'approved_t');
    assert.equal(review.subject, 'agent-a');
    assert.equal(review.rule, 'agents#0');
    const ok = await api(dba, 'POST', `/api/reviews/${String(review.id)}/approve`, { reason: 'looks fine' });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    await running;
    assert.ok(notices.some((n) => n.includes(`review ${String(review.id)}`)), `waiting notice: ${notices.join(' | ')}`);
    const exists = await gw.db!.query(`SELECT to_regclass('approved_t') IS NOT NULL AS e`);
    assert.equal(exists.rows[0].e, true);
    const after = await api(dba, 'GET', `/api/reviews/${String(review.id)}`);
    assert.equal(after.json.state, 'consumed');
    await c.end();
  });

  test('a denied review returns the approver reason and nothing runs', async () => {
    const { c } = await client();
    const dba = await gw.token({ clientId: 'dba-1' });
    const running = c.query('CREATE TABLE denied_t (x int)');
    const review = await pendingReview(dba, 'denied_t');
    await api(dba, 'POST', `/api/reviews/${String(review.id)}/deny`, { reason: 'not in this sprint' });
    await assert.rejects(running, (e: Error & { code?: string }) => e.code === '42501' && /not in this sprint/.test(e.message));
    const exists = await gw.db!.query(`SELECT to_regclass('denied_t') IS NOT NULL AS e`);
    assert.equal(exists.rows[0].e, false);
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'session keeps working');
    await c.end();
  });

  test('a timed-out hold is allowed once on retry after approval, and refused the second time', async () => {
    const { c } = await client();
    const dba = await gw.token({ clientId: 'dba-1' });
    await assert.rejects(c.query('CREATE TABLE late_t (x int)'), (e: Error) => /still pending/.test(e.message) && /allowed once/.test(e.message));
    const review = await pendingReview(dba, 'late_t');
    assert.equal((await api(dba, 'POST', `/api/reviews/${String(review.id)}/approve`, {})).status, 200);
    await c.query('CREATE TABLE late_t (x int)');
    await c.query('DROP TABLE IF EXISTS late_t_never').catch(() => undefined);
    await assert.rejects(c.query('CREATE TABLE late_t (x int)'), (e: Error) => /still pending/.test(e.message), 'the approval was used up');
    await c.end();
  });

  test('nobody approves their own request', async () => {
    const { c } = await client('dba-1');
    const dba = await gw.token({ clientId: 'dba-1' });
    const running = c.query('CREATE TABLE self_t (x int)').catch((e: Error) => e);
    const review = await pendingReview(dba, 'self_t');
    const r = await api(dba, 'POST', `/api/reviews/${String(review.id)}/approve`, {});
    assert.equal(r.status, 403);
    assert.match(String((r.json.error as Record<string, unknown>).message), /own request/);
    const other = await gw.token({ clientId: 'dba-2' });
    assert.equal((await api(other, 'POST', `/api/reviews/${String(review.id)}/approve`, {})).status, 200);
    assert.equal(await running instanceof Error, false);
    await c.end();
  });

  test('agents and auditors cannot approve; a rule can require the agent to say why', async () => {
    const agent = await gw.token({ clientId: 'agent-b' });
    const auditor = await gw.token({ clientId: 'auditor-1' });
    assert.equal((await api(agent, 'GET', '/api/reviews')).status, 403);
    const { c } = await client();
    await assert.rejects(c.query('DELETE FROM items WHERE id = 3'), (e: Error) => /justification/.test(e.message));
    await c.query(`SET gatehouse.reason = 'cleaning up test row 3'`);
    const running = c.query('DELETE FROM items WHERE id = 3');
    const dba = await gw.token({ clientId: 'dba-1' });
    const review = await pendingReview(dba, 'DELETE FROM items');
    assert.equal(review.justification, 'cleaning up test row 3');
    assert.equal((await api(auditor, 'POST', `/api/reviews/${String(review.id)}/approve`, {})).status, 403);
    assert.equal((await api(dba, 'POST', `/api/reviews/${String(review.id)}/approve`, {})).status, 200);
    const r = await running;
    assert.equal(r.rowCount, 1);
    await c.end();
  });

  test('webhooks are delivered with a valid signature, and a Slack-shaped message carries the approve link', async () => {
    const signed = await until(async () => hooks.find((h) => h.headers['x-gatehouse-event'] === 'review.created' && h.headers['x-gatehouse-signature']), 'a signed webhook');
    const ts = String(signed.headers['x-gatehouse-timestamp']);
    const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${signed.body}`).digest('hex')}`;
    assert.equal(signed.headers['x-gatehouse-signature'], expected);
    const body = JSON.parse(signed.body) as Record<string, unknown>;
    assert.equal(body.type, 'review.created');
    assert.equal(body.subject, 'agent-a');
    const slack = await until(async () => hooks.find((h) => h.body.includes('"blocks"')), 'a slack webhook');
    const msg = JSON.parse(slack.body) as { text: string; blocks: { elements?: { url?: string }[] }[] };
    assert.match(msg.text, /Review created/);
    assert.ok(msg.blocks.some((b) => b.elements?.some((e) => e.url?.startsWith('https://gatehouse.example.test/#/reviews/'))));
    assert.ok(hooks.some((h) => h.headers['x-gatehouse-event'] === 'review.approved'));
  });

  test('a revocation ends a live session within a second and refuses new logins', async () => {
    const { c } = await client('agent-b');
    const ended = new Promise<void>((resolve) => c.on('end', () => resolve()));
    const admin = await gw.token({ clientId: 'admin-1' });
    const t0 = Date.now();
    const r = await api(admin, 'POST', '/api/revocations', { client_id: 'agent-b', reason: 'compromised' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    await ended;
    assert.ok(Date.now() - t0 < 1500, `ended after ${Date.now() - t0} ms`);
    const c2 = new pg.Client({ connectionString: gw.pgUrl(await gw.token({ clientId: 'agent-b' })) });
    await assert.rejects(c2.connect(), /revoked/);
    await api(admin, 'DELETE', `/api/revocations/${String(r.json.id)}`);
    const c3 = new pg.Client({ connectionString: gw.pgUrl(await gw.token({ clientId: 'agent-b' })) });
    await c3.connect();
    await c3.end();
  });

  test('an admin kills one live session by id', async () => {
    const { c } = await client();
    const ended = new Promise<void>((resolve) => c.on('end', () => resolve()));
    const admin = await gw.token({ clientId: 'admin-1' });
    const auditor = await gw.token({ clientId: 'auditor-1' });
    const live = await api(auditor, 'GET', '/api/sessions?live=true&subject=agent-a');
    const mine = (live.json as unknown as Record<string, unknown>[]).filter((s) => s.live === true);
    assert.ok(mine.length >= 1);
    assert.equal((await api(auditor, 'POST', `/api/sessions/${String(mine[0]!.id)}/kill`, {})).status, 403, 'auditors cannot kill');
    for (const s of mine) await api(admin, 'POST', `/api/sessions/${String(s.id)}/kill`, { reason: 'test' });
    await ended;
  });
});

describe('just-in-time grants', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ policy: JIT_POLICY, setupSql: 'CREATE TABLE t (x int)' });
  });
  after(async () => gw?.close());

  async function api(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const r = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  }

  test('no grant → refused; approved grant → allowed; grant end → session terminated', async () => {
    const agentToken = await gw.token({ clientId: 'agent-a' });
    const c0 = new pg.Client({ connectionString: gw.pgUrl(agentToken) });
    await assert.rejects(c0.connect(), /needs an approved access grant/);

    const req = await api(agentToken, 'POST', '/api/grants', { connection: 'pg', duration: '3s', reason: 'investigate incident 42' });
    assert.equal(req.status, 201, JSON.stringify(req.json));
    assert.equal(req.json.state, 'pending');
    assert.equal((await api(agentToken, 'POST', `/api/grants/${String(req.json.id)}/approve`, {})).status, 403, 'agents are not approvers');
    const dba = await gw.token({ clientId: 'dba-1' });
    const ok = await api(dba, 'POST', `/api/grants/${String(req.json.id)}/approve`, { reason: 'go ahead' });
    assert.equal(ok.json.state, 'approved');

    const c = new pg.Client({ connectionString: gw.pgUrl(agentToken) });
    c.on('error', () => undefined);
    await c.connect();
    assert.equal((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 0);
    const ended = new Promise<void>((resolve) => c.on('end', () => resolve()));
    await ended;
    const s = await gw.gateway.parts.store.listSessions({ subject: 'agent-a' });
    assert.ok(s.some((x) => x.endReason === 'access grant ended'), JSON.stringify(s.map((x) => x.endReason)));
    const c2 = new pg.Client({ connectionString: gw.pgUrl(agentToken) });
    await assert.rejects(c2.connect(), /needs an approved access grant/);
  });

  test('revoking a grant ends its sessions; grants longer than the maximum are refused', async () => {
    const agentToken = await gw.token({ clientId: 'agent-a' });
    const dba = await gw.token({ clientId: 'dba-1' });
    assert.equal((await api(agentToken, 'POST', '/api/grants', { connection: 'pg', duration: '48h', reason: 'too long' })).status, 400);
    const req = await api(agentToken, 'POST', '/api/grants', { connection: 'pg', duration: '1h', reason: 'work' });
    await api(dba, 'POST', `/api/grants/${String(req.json.id)}/approve`, {});
    const c = new pg.Client({ connectionString: gw.pgUrl(agentToken) });
    c.on('error', () => undefined);
    await c.connect();
    const ended = new Promise<void>((resolve) => c.on('end', () => resolve()));
    const t0 = Date.now();
    assert.equal((await api(dba, 'DELETE', `/api/grants/${String(req.json.id)}`)).json.state, 'revoked');
    await ended;
    assert.ok(Date.now() - t0 < 1500);
  });
});
