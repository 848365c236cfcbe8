/**
 * The console's server side without a browser (fastify inject): static files with their caching and
 * CSP, the notice when the console is not built, `/console/config.json` from the configuration and
 * the issuer's discovery document, and the demo's development sign-in endpoints.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fastify, type FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { registerConsole, type ConsoleOptions } from '../../src/api/console.js';
import { loginPresets, registerDevLogin } from '../../src/api/dev-login.js';
import { DevIssuer } from '../../src/core/identity/index.js';
import { silentLogger } from '../../src/core/log.js';

const ROLES = { admin: { groups: ['gatehouse-admins'], subjects: [] }, approver: { groups: ['dba'], subjects: [] }, auditor: { groups: [], subjects: ['alice'] } };
const BIG_JS = `console.log(${JSON.stringify('x'.repeat(5000))});\n`;

describe('console server', () => {
  let dir: string;
  let discovery: Server;
  let discoveryDoc: Record<string, unknown>;
  let issuer: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gh-console-dist-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>console</title><script type="module" src="/assets/index-abc123.js"></script>');
    await writeFile(join(dir, 'assets', 'index-abc123.js'), BIG_JS);
    await writeFile(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    discovery = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(discoveryDoc));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => discovery.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(discovery.address() as AddressInfo).port}`;
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await new Promise<void>((r) => discovery.close(() => r()));
  });

  async function app(o: Partial<ConsoleOptions> = {}): Promise<FastifyInstance> {
    const a = fastify();
    await registerConsole(a, { console: { enabled: true, scopes: ['openid'] }, approverIssuers: [], logger: silentLogger(), dir, ...o });
    return a;
  }

  test('index.html is never cached and carries a CSP with this origin only', async () => {
    const a = await app();
    const r = await a.inject({ method: 'GET', url: '/' });
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /text\/html/);
    assert.equal(r.headers['cache-control'], 'no-store');
    const csp = r.headers['content-security-policy'] as string;
    for (const d of ["default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) assert.ok(csp.includes(d), `${d} in ${csp}`);
    assert.doesNotMatch(csp, /https?:|unsafe-inline/);
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
  });

  test('hashed assets are immutable, gzipped on request, and answer 304 to their ETag', async () => {
    const a = await app();
    const r = await a.inject({ method: 'GET', url: '/assets/index-abc123.js', headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(r.rawPayload).toString(), BIG_JS);
    assert.match(r.headers['content-type'] as string, /javascript/);
    const plain = await a.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body, BIG_JS);
    const again = await a.inject({ method: 'GET', url: '/assets/index-abc123.js', headers: { 'if-none-match': r.headers.etag as string } });
    assert.equal(again.statusCode, 304);
    const icon = await a.inject({ method: 'GET', url: '/favicon.svg' });
    assert.equal(icon.headers['cache-control'], 'no-cache');
    assert.equal((await a.inject({ method: 'GET', url: '/assets/nope.js' })).statusCode, 404);
    assert.equal((await a.inject({ method: 'GET', url: '/assets/../index.html' })).statusCode, 404);
  });

  test('without a build, / says how to build it', async () => {
    const a = await app({ dir: join(dir, 'missing') });
    const r = await a.inject({ method: 'GET', url: '/' });
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /npm run build/);
  });

  test('config.json: the configured issuer by discovery, the token endpoint allowed by the CSP', async () => {
    discoveryDoc = { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: 'https://tokens.example.test/oauth/token', code_challenge_methods_supported: ['S256'] };
    const a = await app({ console: { enabled: true, clientId: 'console-1', scopes: ['openid', 'groups'], resource: 'api://gh' }, approverIssuers: [{ issuer, audience: ['api://gh'], groupsClaim: 'groups' }] });
    const r = await a.inject({ method: 'GET', url: '/console/config.json' });
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.deepEqual(r.json(), {
      providers: [{ id: 'oidc', label: new URL(issuer).host, issuer, client_id: 'console-1', authorization_endpoint: `${issuer}/authorize`, token_endpoint: 'https://tokens.example.test/oauth/token', scopes: ['openid', 'groups'], resource: 'api://gh', demo: false }],
    });
    const csp = (await a.inject({ method: 'GET', url: '/' })).headers['content-security-policy'] as string;
    assert.match(csp, /connect-src 'self' https:\/\/tokens\.example\.test;/);
  });

  test('config.json: a discovery document naming another issuer is refused, and says so', async () => {
    discoveryDoc = { issuer: 'https://someone-else.example', authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token` };
    const a = await app({ console: { enabled: true, clientId: 'console-1', scopes: ['openid'] }, approverIssuers: [{ issuer, audience: ['x'], groupsClaim: 'groups' }] });
    const body = (await a.inject({ method: 'GET', url: '/console/config.json' })).json() as { providers: unknown[]; error: string };
    assert.deepEqual(body.providers, []);
    assert.match(body.error, /names issuer "https:\/\/someone-else\.example"/);
  });

  test('config.json: no client id and no development issuer → no way to sign in, explained', async () => {
    const body = (await (await app()).inject({ method: 'GET', url: '/console/config.json' })).json() as { providers: unknown[]; error: string };
    assert.deepEqual(body.providers, []);
    assert.match(body.error, /console\.client_id/);
  });

  test('config.json in demo mode: the development issuer, on same-origin paths', async () => {
    const a = await app({ devIssuer: () => ({ issuer: 'http://127.0.0.1:8080/dev-issuer', prefix: '/dev-issuer' }) });
    const body = (await a.inject({ method: 'GET', url: '/console/config.json' })).json() as { providers: { authorization_endpoint: string; token_endpoint: string; demo: boolean }[] };
    assert.equal(body.providers.length, 1);
    assert.equal(body.providers[0]!.authorization_endpoint, '/dev-issuer/authorize');
    assert.equal(body.providers[0]!.token_endpoint, '/dev-issuer/token');
    assert.equal(body.providers[0]!.demo, true);
  });
});

describe('development sign-in (demo only)', () => {
  let dev: DevIssuer;
  let a: FastifyInstance;
  const verifier = 'a-verifier-that-is-long-enough-for-rfc-7636-rules-0123456789';
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirect = 'http://127.0.0.1:8080/';
  const authQuery = (extra: Record<string, string> = {}) => new URLSearchParams({ response_type: 'code', client_id: 'gatehouse-console', redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', state: 'st', ...extra }).toString();

  before(async () => {
    dev = await DevIssuer.create({ issuer: 'http://127.0.0.1:8080/dev-issuer', loginEndpoints: true });
    a = fastify();
    registerDevLogin(a, { prefix: '/dev-issuer', issuer: () => dev, audience: 'api://gatehouse', roles: ROLES, logger: silentLogger() });
  });

  test('the discovery document lists the endpoints and PKCE', () => {
    const d = dev.discoveryDocument();
    assert.equal(d.authorization_endpoint, 'http://127.0.0.1:8080/dev-issuer/authorize');
    assert.equal(d.token_endpoint, 'http://127.0.0.1:8080/dev-issuer/token');
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  });

  test('one-click identities come from the roles', () => {
    assert.deepEqual(loginPresets(ROLES), [
      { role: 'admin', sub: 'admin-1', groups: ['gatehouse-admins'] },
      { role: 'approver', sub: 'approver-1', groups: ['dba'] },
      { role: 'auditor', sub: 'alice', groups: [] },
    ]);
  });

  test('the form escapes what the request carries and has a strict CSP', async () => {
    const r = await a.inject({ method: 'GET', url: `/dev-issuer/authorize?${authQuery({ client_id: '<script>alert(1)</script>', state: '"><img src=x>' })}` });
    assert.equal(r.statusCode, 200);
    assert.doesNotMatch(r.body, /<script>alert|"><img/);
    assert.match(r.body, /&#60;script&#62;/);
    assert.match(r.headers['content-security-policy'] as string, /default-src 'none'; style-src 'sha256-[^']+'; form-action 'self' http:\/\/127\.0\.0\.1:8080/);
    assert.match(r.body, /admin-1 — admin \(group gatehouse-admins\)/);
    for (const field of ['sub', 'groups']) assert.match(r.body, new RegExp(`<label for="${field}">`));
  });

  test('a custom subject and groups end up in the token; the code is single-use and bound to the verifier', async () => {
    const empty = await a.inject({ method: 'POST', url: '/dev-issuer/authorize', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `${authQuery()}&preset=custom&sub=&groups=` });
    assert.equal(empty.statusCode, 400);
    assert.match(empty.body, /Enter a subject/);
    const r = await a.inject({ method: 'POST', url: '/dev-issuer/authorize', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `${authQuery()}&preset=custom&sub=carol&groups=${encodeURIComponent('dba, sre  auditors')}` });
    assert.equal(r.statusCode, 303);
    const loc = new URL(r.headers.location as string);
    assert.equal(loc.origin + loc.pathname, redirect);
    assert.equal(loc.searchParams.get('state'), 'st');
    const code = loc.searchParams.get('code')!;
    const form = (v: string) => ({ method: 'POST' as const, url: '/dev-issuer/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: v, redirect_uri: redirect, client_id: 'gatehouse-console' }).toString() });
    const bad = await a.inject(form(`${verifier}x`));
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error, 'invalid_grant');
    // A failed exchange used the code up too.
    assert.equal((await a.inject(form(verifier))).json().error, 'invalid_grant');

    const r2 = await a.inject({ method: 'POST', url: '/dev-issuer/authorize', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `${authQuery()}&preset=custom&sub=carol&groups=dba,sre` });
    const code2 = new URL(r2.headers.location as string).searchParams.get('code')!;
    const ok = await a.inject({ ...form(verifier), payload: new URLSearchParams({ grant_type: 'authorization_code', code: code2, code_verifier: verifier, redirect_uri: redirect, client_id: 'gatehouse-console' }).toString() });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.headers['cache-control'], 'no-store');
    const claims = decodeJwt(ok.json().access_token as string);
    assert.equal(claims.sub, 'carol');
    assert.deepEqual(claims.groups, ['dba', 'sre']);
    assert.equal(claims.aud, 'api://gatehouse');
    assert.equal(claims.client_id, 'gatehouse-console');
  });

  test('refused: plain PKCE, other response types, foreign redirect URIs', async () => {
    const plain = await a.inject({ method: 'GET', url: `/dev-issuer/authorize?${authQuery({ code_challenge_method: 'plain' })}` });
    assert.equal(plain.statusCode, 303);
    assert.match(plain.headers.location as string, /error=invalid_request/);
    const implicit = await a.inject({ method: 'GET', url: `/dev-issuer/authorize?${authQuery({ response_type: 'token' })}` });
    assert.match(implicit.headers.location as string, /error=unsupported_response_type/);
    const foreign = await a.inject({ method: 'GET', url: `/dev-issuer/authorize?${authQuery({ redirect_uri: 'https://attacker.example/cb' })}` });
    assert.equal(foreign.statusCode, 400, 'never redirects to a host it does not know');
    assert.equal(foreign.headers.location, undefined);
  });
});
