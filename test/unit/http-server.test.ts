// The gateway's HTTP server through fastify inject(): health, readiness, metrics, bearer auth and
// roles on /api/whoami, and the development issuer's discovery + JWKS routes. Tokens come from a
// DevIssuer whose documents a loopback node:http server serves to the TokenVerifier.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { buildHttpServer } from '../../src/api/server.js';
import type { HttpServerOptions } from '../../src/api/server.js';
import { requireAuth } from '../../src/api/auth.js';
import type { RoleMap } from '../../src/api/auth.js';
import { DevIssuer, TokenVerifier } from '../../src/core/identity/index.js';
import { GatehouseError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import { Metrics } from '../../src/core/metrics.js';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';

const AUDIENCE = 'gatehouse';
const ROLES: RoleMap = {
  admin: { groups: ['platform-admins'] },
  approver: { groups: ['dba'], subjects: ['alice@example.com'] },
  auditor: { subjects: ['auditor-bot'] },
};

let issuerServer: Server;
let issuer: DevIssuer;
let verifier: TokenVerifier;
let store: Store;
const apps: FastifyInstance[] = [];

before(async () => {
  issuerServer = createServer((req, res) => {
    const doc = issuer?.document(new URL(req.url ?? '/', 'http://x').pathname);
    if (doc === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => issuerServer.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}/issuer`;
  issuer = await DevIssuer.create({ issuer: url });
  verifier = new TokenVerifier({ issuers: [{ issuer: url, audience: AUDIENCE }] });
  store = await openStore('sqlite::memory:');
});

after(async () => {
  for (const app of apps) await app.close();
  await store.close();
  issuerServer.closeAllConnections();
  await new Promise<void>((resolve) => issuerServer.close(() => resolve()));
});

async function build(over: Partial<HttpServerOptions> = {}): Promise<FastifyInstance> {
  const app = await buildHttpServer({
    logger: createLogger({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    store,
    verifier,
    roles: ROLES,
    ...over,
  });
  apps.push(app);
  return app;
}

const mint = (sub: string, groups: string[] = [], more: { clientId?: string } = {}) => issuer.mint({ sub, groups, audience: AUDIENCE, ...more });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('health and readiness', () => {
  it('/healthz answers ok', async () => {
    const app = await build();
    const r = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { status: 'ok' });
  });

  it('/readyz answers ready when the store answers and the extra checks pass', async () => {
    let checks = 0;
    const app = await build({ ready: async () => void checks++ });
    const r = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { status: 'ready' });
    assert.equal(checks, 1);
  });

  it('/readyz answers 503 when store.ping throws, without leaking internal detail', async () => {
    const failing = new Proxy(store, {
      get: (target, prop, receiver) => (prop === 'ping' ? () => Promise.reject(new Error('connect ECONNREFUSED 10.1.2.3:5432 password=hunter2')) : Reflect.get(target, prop, receiver)),
    });
    const app = await build({ store: failing });
    const r = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(r.statusCode, 503);
    assert.deepEqual(r.json(), { status: 'not ready', reason: 'store unavailable' });
    assert.equal(r.body.includes('hunter2'), false);
    assert.equal(r.body.includes('10.1.2.3'), false);
  });

  it('/readyz gives the public message of a GatehouseError (a closed store, a failed readiness check)', async () => {
    const closed = await openStore('sqlite::memory:');
    await closed.close();
    const r1 = await (await build({ store: closed })).inject({ method: 'GET', url: '/readyz' });
    assert.equal(r1.statusCode, 503);
    assert.deepEqual(r1.json(), { status: 'not ready', reason: 'store is closed' });

    const app = await build({ ready: async () => Promise.reject(new GatehouseError('ERR_INTERNAL', 'listeners not bound yet')) });
    const r2 = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(r2.statusCode, 503);
    assert.deepEqual(r2.json(), { status: 'not ready', reason: 'listeners not bound yet' });
  });
});

describe('/metrics', () => {
  it('serves the registry in the Prometheus text format', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.sessionsTotal.inc({ protocol: 'postgres', connection: 'prod-db' }, 3);
    metrics.commandsTotal.inc({ protocol: 'postgres', effect: 'deny' });
    const app = await build({ metrics });
    const r = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(r.body, /^# HELP gatehouse_sessions_total Sessions opened$/m);
    assert.match(r.body, /^# TYPE gatehouse_sessions_total counter$/m);
    assert.match(r.body, /^gatehouse_sessions_total\{protocol="postgres",connection="prod-db"\} 3$/m);
    assert.match(r.body, /^gatehouse_commands_total\{protocol="postgres",effect="deny"\} 1$/m);
    assert.match(r.body, /^# TYPE gatehouse_command_duration_seconds histogram$/m);
  });

  it('includes the process metrics when enabled', async () => {
    const app = await build({ metrics: new Metrics() });
    const r = await app.inject({ method: 'GET', url: '/metrics' });
    assert.match(r.body, /^gatehouse_process_cpu_user_seconds_total /m);
  });
});

describe('/api/whoami', () => {
  it('401 without a token, with WWW-Authenticate and the JSON error shape', async () => {
    const app = await build();
    for (const headers of [{}, { authorization: 'Basic YWxpY2U6cHc=' }, { authorization: 'Bearer' }, { authorization: 'Bearer a b' }]) {
      const r = await app.inject({ method: 'GET', url: '/api/whoami', headers });
      assert.equal(r.statusCode, 401, JSON.stringify(headers));
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="gatehouse"');
      assert.deepEqual(r.json(), { error: { code: 'ERR_UNAUTHENTICATED', message: 'a bearer token is required' } });
    }
  });

  it('401 with error="invalid_token" for a malformed, foreign or wrong-audience token', async () => {
    const app = await build();
    const foreign = await DevIssuer.create({ issuer: issuer.issuer });
    const tokens = [
      'not.a.jwt',
      'garbage',
      await foreign.mint({ sub: 'mallory', audience: AUDIENCE }), // same iss, other key
      await issuer.mint({ sub: 'agent', audience: 'someone-else' }),
    ];
    for (const token of tokens) {
      const r = await app.inject({ method: 'GET', url: '/api/whoami', headers: bearer(token) });
      assert.equal(r.statusCode, 401, token.slice(0, 20));
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="gatehouse", error="invalid_token"');
      assert.equal(r.json().error.code, 'ERR_TOKEN_INVALID');
    }
  });

  it('401 ERR_TOKEN_EXPIRED for an expired token', async () => {
    // Same issuer URL, another key and a clock three hours back; the issuer server serves its key meanwhile.
    const old = await DevIssuer.create({ issuer: issuer.issuer, now: () => Date.now() - 3 * 3600_000 });
    const saved = issuer;
    issuer = old;
    try {
      const app = await build({ verifier: new TokenVerifier({ issuers: [{ issuer: old.issuer, audience: AUDIENCE }] }) });
      const r = await app.inject({ method: 'GET', url: '/api/whoami', headers: bearer(await old.mint({ sub: 'agent', audience: AUDIENCE, ttlSec: 60 })) });
      assert.equal(r.statusCode, 401);
      assert.equal(r.json().error.code, 'ERR_TOKEN_EXPIRED');
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="gatehouse", error="invalid_token"');
    } finally {
      issuer = saved;
    }
  });

  it('200 with the identity summary, roles and expiry for a valid token', async () => {
    const app = await build();
    const token = await mint('agent-7', ['ai-agents'], { clientId: 'agent-client' });
    const claims = decodeJwt(token);
    const r = await app.inject({ method: 'GET', url: '/api/whoami', headers: bearer(token) });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), {
      identity: { iss: issuer.issuer, sub: 'agent-7', client_id: 'agent-client', groups: ['ai-agents'], jti: claims.jti },
      roles: ['agent'],
      expires_at: new Date(claims.exp! * 1000).toISOString(),
    });
    assert.equal(r.body.includes(token), false);
  });

  it('maps roles from groups and subjects; admin implies approver and auditor', async () => {
    const app = await build();
    const rolesOf = async (sub: string, groups: string[]) => {
      const r = await app.inject({ method: 'GET', url: '/api/whoami', headers: bearer(await mint(sub, groups)) });
      assert.equal(r.statusCode, 200);
      return r.json().roles as string[];
    };
    assert.deepEqual(await rolesOf('bob', ['dba', 'ai-agents']), ['agent', 'approver']);
    assert.deepEqual(await rolesOf('alice@example.com', []), ['agent', 'approver']);
    assert.deepEqual(await rolesOf('auditor-bot', []), ['agent', 'auditor']);
    assert.deepEqual(await rolesOf('carol', ['platform-admins']), ['admin', 'agent', 'approver', 'auditor']);
    assert.deepEqual(await rolesOf('dave', ['DBA', 'admins']), ['agent'], 'group names match exactly');
    assert.deepEqual(await rolesOf('auditor-bot-2', []), ['agent']);
  });
});

describe('routes added by plugins', () => {
  const withPlugin = () =>
    build({
      plugins: [
        (app) => {
          app.get('/api/reviews', { preHandler: requireAuth(verifier, ROLES, ['approver']) }, async (req) => ({ sub: req.identity?.subject }));
          app.get('/api/boom', async () => {
            throw new Error('secret internal detail');
          });
          app.get('/api/missing', async () => {
            throw new GatehouseError('ERR_NOT_FOUND', 'no such review');
          });
          app.post('/api/echo', async (req) => req.body);
        },
      ],
    });

  it('403 ERR_FORBIDDEN without the required role, 200 with it (admin counts as approver)', async () => {
    const app = await withPlugin();
    const agent = await app.inject({ method: 'GET', url: '/api/reviews', headers: bearer(await mint('agent-7', ['ai-agents'])) });
    assert.equal(agent.statusCode, 403);
    assert.equal(agent.json().error.code, 'ERR_FORBIDDEN');
    for (const [sub, groups] of [['bob', ['dba']], ['carol', ['platform-admins']]] as const) {
      const r = await app.inject({ method: 'GET', url: '/api/reviews', headers: bearer(await mint(sub, [...groups])) });
      assert.equal(r.statusCode, 200);
      assert.deepEqual(r.json(), { sub });
    }
    assert.equal((await app.inject({ method: 'GET', url: '/api/reviews' })).statusCode, 401);
  });

  it('maps errors to the JSON error shape: GatehouseError codes to statuses, anything else to a bare 500', async () => {
    const app = await withPlugin();
    const boom = await app.inject({ method: 'GET', url: '/api/boom' });
    assert.equal(boom.statusCode, 500);
    assert.deepEqual(boom.json(), { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
    const missing = await app.inject({ method: 'GET', url: '/api/missing' });
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { error: { code: 'ERR_NOT_FOUND', message: 'no such review' } });
    const badJson = await app.inject({ method: 'POST', url: '/api/echo', headers: { 'content-type': 'application/json' }, payload: '{"a":' });
    assert.equal(badJson.statusCode, 400);
    assert.equal(badJson.json().error.code, 'ERR_BAD_REQUEST');
    const none = await app.inject({ method: 'GET', url: '/nope' });
    assert.equal(none.statusCode, 404);
    assert.deepEqual(none.json(), { error: { code: 'ERR_NOT_FOUND', message: 'no such route' } });
  });
});

describe('development issuer routes', () => {
  it('are absent unless configured', async () => {
    const app = await build();
    assert.equal((await app.inject({ method: 'GET', url: '/dev-issuer/.well-known/openid-configuration' })).statusCode, 404);
    assert.equal((await app.inject({ method: 'GET', url: '/dev-issuer/.well-known/jwks.json' })).statusCode, 404);
  });

  it('serve the discovery document and the public JWKS under the prefix', async () => {
    const dev = await DevIssuer.create({ issuer: 'http://127.0.0.1:8080/dev-issuer' });
    const app = await build({ devIssuer: { prefix: '/dev-issuer', discoveryDocument: () => dev.discoveryDocument(), jwks: () => dev.jwks() } });
    const disco = await app.inject({ method: 'GET', url: '/dev-issuer/.well-known/openid-configuration' });
    assert.equal(disco.statusCode, 200);
    assert.equal(disco.json().issuer, 'http://127.0.0.1:8080/dev-issuer');
    assert.deepEqual(disco.json(), dev.discoveryDocument());
    // The JWKS is served where the discovery document says it is.
    const jwksPath = new URL(String(disco.json().jwks_uri)).pathname;
    assert.ok(jwksPath.startsWith('/dev-issuer/'), jwksPath);
    const jwks = await app.inject({ method: 'GET', url: jwksPath });
    assert.equal(jwks.statusCode, 200, jwksPath);
    assert.match(String(jwks.headers['content-type']), /^application\/json/);
    const keys = jwks.json().keys as Record<string, unknown>[];
    assert.deepEqual(keys, dev.jwks().keys);
    assert.equal(keys.length, 1);
    assert.equal(keys[0]!['kid'], dev.kid);
    assert.equal('d' in keys[0]!, false, 'no private key material');
  });

  it('let a TokenVerifier discover the issuer through the gateway and verify its tokens', async () => {
    // The issuer URL names the port, known only once the gateway listens: the routes read it late.
    const late: { dev?: DevIssuer } = {};
    const app = await build({ devIssuer: { prefix: '/dev-issuer', discoveryDocument: () => late.dev!.discoveryDocument(), jwks: () => late.dev!.jwks() } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const dev = (late.dev = await DevIssuer.create({ issuer: `http://127.0.0.1:${port}/dev-issuer` }));
    const v = new TokenVerifier({ issuers: [{ issuer: dev.issuer, audience: AUDIENCE }], fetchTimeoutMs: 2000 });
    const id = await v.verify(await dev.mint({ sub: 'demo-agent', audience: AUDIENCE, groups: ['ai-agents'] }));
    assert.equal(id.subject, 'demo-agent');
    assert.deepEqual(id.groups, ['ai-agents']);
  });
});
