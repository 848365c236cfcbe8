// DevIssuer round trip: served by a plain node:http server on loopback, verified by TokenVerifier.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { isGatehouseError } from '../../src/core/errors.js';
import { DevIssuer, TokenVerifier } from '../../src/core/identity/index.js';

let dir: string;
let server: Server;
let base: string;
let current: DevIssuer | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-dev-issuer-'));
  server = createServer((req, res) => {
    const doc = current?.document(new URL(req.url ?? '/', 'http://x').pathname);
    if (doc === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('DevIssuer', () => {
  test('mints RFC 9068-shaped tokens that TokenVerifier accepts', async () => {
    const issuer = `${base}/dev`;
    current = await DevIssuer.create({ issuer });
    const token = await current.mint({ sub: 'demo-agent', audience: 'gatehouse', groups: ['ai-agents'], scopes: ['db.read'], clientId: 'demo-client', claims: { team: 'data', iss: 'spoofed' } });
    const header = decodeProtectedHeader(token);
    assert.deepEqual(header, { alg: 'ES256', kid: current.kid, typ: 'at+jwt' });
    const payload = decodeJwt(token);
    assert.equal(payload.iss, issuer);
    assert.equal(typeof payload.jti, 'string');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);

    const verifier = new TokenVerifier({ issuers: [{ issuer, audience: 'gatehouse' }] });
    const id = await verifier.verify(token);
    assert.equal(id.issuer, issuer);
    assert.equal(id.subject, 'demo-agent');
    assert.equal(id.clientId, 'demo-client');
    assert.deepEqual(id.groups, ['ai-agents']);
    assert.deepEqual(id.scopes, ['db.read']);
    assert.equal(id.tokenId, payload.jti);
    assert.equal(id.claims['team'], 'data');

    assert.equal(current.discoveryPath, '/dev/.well-known/openid-configuration');
    assert.equal(current.discoveryDocument()['jwks_uri'], `${base}/dev/.well-known/jwks.json`);
    for (const jwk of current.jwks().keys) assert.equal('d' in jwk, false);
    assert.equal(current.document('/elsewhere'), undefined);
  });

  test('the key persists in keyFile, so tokens survive a restart', async () => {
    const keyFile = join(dir, 'nested', 'dev-issuer.jwk.json');
    const issuer = base;
    const first = await DevIssuer.create({ issuer, keyFile, alg: 'RS256' });
    assert.equal(first.alg, 'RS256');
    const saved = JSON.parse(await readFile(keyFile, 'utf8')) as Record<string, unknown>;
    assert.equal(saved['kid'], first.kid);
    assert.equal(typeof saved['d'], 'string');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const token = await first.mint({ sub: 'agent', audience: 'gatehouse', ttlSec: 60 });

    current = await DevIssuer.create({ issuer, keyFile });
    assert.equal(current.kid, first.kid);
    assert.equal(current.alg, 'RS256');
    const verifier = new TokenVerifier({ issuers: [{ issuer, audience: 'gatehouse' }] });
    const id = await verifier.verify(token);
    assert.equal(id.clientId, 'agent');
    assert.deepEqual(id.groups, []);
    assert.deepEqual(id.scopes, []);
  });

  test('expired dev tokens are refused; bad options are refused', async () => {
    let now = Date.now();
    current = await DevIssuer.create({ issuer: base, now: () => now });
    const token = await current.mint({ sub: 'agent', audience: 'gatehouse', ttlSec: 10 });
    now += 60_000;
    const verifier = new TokenVerifier({ issuers: [{ issuer: base, audience: 'gatehouse' }], now: () => now });
    await assert.rejects(verifier.verify(token), (e: unknown) => isGatehouseError(e, 'ERR_TOKEN_EXPIRED'));
    await assert.rejects(current.mint({ sub: '', audience: 'gatehouse' }), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST'));
    await assert.rejects(current.mint({ sub: 'a', audience: 'gatehouse', ttlSec: 0 }), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST'));
    await assert.rejects(DevIssuer.create({ issuer: 'http://demo.example.com' }), (e: unknown) => isGatehouseError(e, 'ERR_CONFIG'));
  });
});
