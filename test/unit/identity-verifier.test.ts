// Token-attack suite for TokenVerifier: locally generated keys, a loopback JWKS server, an injected clock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { exportSPKI } from 'jose';
import { isGatehouseError } from '../../src/core/errors.js';
import type { GatehouseErrorCode } from '../../src/core/errors.js';
import { RevocationSet, TokenVerifier } from '../../src/core/identity/index.js';
import type { TokenVerifierOptions } from '../../src/core/identity/index.js';
import { b64url, makeKey, sign, signHmac, signRawRs256, startJwksServer } from '../support/jwks-server.js';
import type { JwksServer, TestKey } from '../support/jwks-server.js';

const AUD = 'api://gatehouse';
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const nowSec = Math.floor(NOW / 1000);

async function rejectsWith(p: Promise<unknown>, code: GatehouseErrorCode, message?: string | RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isGatehouseError(e), `expected a GatehouseError, got ${String(e)}`);
    assert.equal(e.code, code, `code (message: ${e.message}, detail: ${e.detail ?? ''})`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

function throwsConfig(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => isGatehouseError(e, 'ERR_CONFIG'));
}

let rsa: TestKey;
let rsa2: TestKey;
let ec: TestKey;
let attacker: TestKey;
let server: JwksServer;

before(async () => {
  [rsa, rsa2, ec, attacker] = await Promise.all([makeKey('RS256', 'rsa-1'), makeKey('RS256', 'rsa-2'), makeKey('ES256', 'ec-1'), makeKey('RS256', 'rsa-1')]);
  server = await startJwksServer([rsa.publicJwk, ec.publicJwk]);
});
after(() => server.close());

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: server.issuer, aud: AUD, sub: 'agent-1', iat: nowSec, exp: nowSec + 300, jti: randomUUID(), client_id: 'agent-client', groups: ['ai-agents'], scope: 'db.read db.write', ...over };
}

function verifier(over: Partial<TokenVerifierOptions> = {}, srv: JwksServer = server): TokenVerifier {
  return new TokenVerifier({ issuers: [{ issuer: srv.issuer, audience: AUD }], now: () => NOW, ...over });
}

describe('TokenVerifier: valid tokens', () => {
  test('an RS256 token yields its identity', async () => {
    const jti = randomUUID();
    const identity = await verifier().verify(await sign(rsa, claims({ jti })));
    assert.equal(identity.issuer, server.issuer);
    assert.equal(identity.subject, 'agent-1');
    assert.equal(identity.clientId, 'agent-client');
    assert.deepEqual(identity.groups, ['ai-agents']);
    assert.deepEqual(identity.scopes, ['db.read', 'db.write']);
    assert.equal(identity.expiresAt, (nowSec + 300) * 1000);
    assert.equal(identity.tokenId, jti);
    assert.equal(identity.claims['aud'], AUD);
    assert.ok(Object.isFrozen(identity) && Object.isFrozen(identity.groups) && Object.isFrozen(identity.claims));
  });

  test('an ES256 token, typ at+jwt, audience in an array among several accepted', async () => {
    const v = new TokenVerifier({ issuers: [{ issuer: server.issuer, audience: ['other', AUD] }], now: () => NOW });
    const identity = await v.verify(await sign(ec, claims({ aud: ['x', AUD] }), { typ: 'at+jwt' }));
    assert.equal(identity.subject, 'agent-1');
  });

  test('typ JWT and application/at+jwt are accepted; other explicit types are not (RFC 8725 §3.11)', async () => {
    const v = verifier();
    await v.verify(await sign(rsa, claims(), { typ: 'JWT' }));
    await v.verify(await sign(rsa, claims(), { typ: 'application/at+jwt' }));
    await rejectsWith(v.verify(await sign(rsa, claims(), { typ: 'logout+jwt' })), 'ERR_TOKEN_INVALID', 'token type is not accepted');
    await rejectsWith(v.verify(await sign(rsa, claims(), { typ: 'dpop+jwt' })), 'ERR_TOKEN_INVALID', 'token type is not accepted');
  });

  test('no kid and several keys of the right type: each candidate is tried', async () => {
    const srv = await startJwksServer([rsa.publicJwk, rsa2.publicJwk].map(({ kid: _kid, ...jwk }) => jwk));
    try {
      const v = verifier({}, srv);
      const identity = await v.verify(await sign(rsa2, claims({ iss: srv.issuer }), { kid: undefined }));
      assert.equal(identity.subject, 'agent-1');
      await rejectsWith(v.verify(await sign(attacker, claims({ iss: srv.issuer }), { kid: undefined })), 'ERR_TOKEN_INVALID', 'token signature is invalid');
    } finally {
      await srv.close();
    }
  });
});

describe('TokenVerifier: refused before any cryptography', () => {
  test('alg none', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      const v = verifier({}, srv);
      const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims({ iss: srv.issuer }))}.`;
      await rejectsWith(v.verify(token), 'ERR_TOKEN_INVALID', 'token algorithm is not accepted');
      await rejectsWith(v.verify(`${b64url({ alg: 'NONE' })}.${b64url(claims({ iss: srv.issuer }))}.`), 'ERR_TOKEN_INVALID', 'token algorithm is not accepted');
      assert.deepEqual(srv.requests, { discovery: 0, jwks: 0 });
      assert.equal(v.stats().verifications, 0);
    } finally {
      await srv.close();
    }
  });

  test('RS/HS confusion: HS256 signed with the RSA public key as the secret', async () => {
    const v = verifier();
    const pem = await exportSPKI(rsa.publicKey);
    for (const secret of [pem, JSON.stringify(rsa.publicJwk), String(rsa.publicJwk.n)]) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        await rejectsWith(v.verify(signHmac({ alg, kid: rsa.kid }, claims(), secret)), 'ERR_TOKEN_INVALID', 'token algorithm is not accepted');
      }
    }
    assert.equal(v.stats().verifications, 0);
  });

  test('none and HMAC can never be configured', () => {
    throwsConfig(() => verifier({ allowedAlgorithms: ['RS256', 'HS256'] }));
    throwsConfig(() => verifier({ allowedAlgorithms: ['none'] }));
    throwsConfig(() => new TokenVerifier({ issuers: [{ issuer: server.issuer, audience: AUD, algorithms: ['HS512'] }] }));
    throwsConfig(() => verifier({ allowedAlgorithms: [] }));
  });

  test('an algorithm outside the issuer allow-list', async () => {
    const v = new TokenVerifier({ issuers: [{ issuer: server.issuer, audience: AUD, algorithms: ['ES256'] }], now: () => NOW });
    await rejectsWith(v.verify(await sign(rsa, claims())), 'ERR_TOKEN_INVALID', 'token algorithm is not accepted');
    assert.equal((await v.verify(await sign(ec, claims()))).subject, 'agent-1');
    throwsConfig(() => new TokenVerifier({ issuers: [{ issuer: server.issuer, audience: AUD, algorithms: ['ES256'] }], allowedAlgorithms: ['RS256'] }));
  });

  test('embedded key headers jwk, jku, x5u, x5c and crit are never honoured', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      const v = verifier({}, srv);
      const c = claims({ iss: srv.issuer });
      const hostile: Record<string, unknown>[] = [
        { jwk: attacker.publicJwk },
        { jku: `${srv.issuer}/attacker-jwks` },
        { x5u: 'https://attacker.example/cert.pem' },
        { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] },
        { crit: ['exp'], exp: 1 },
      ];
      for (const extra of hostile) {
        const name = Object.keys(extra)[0] as string;
        const token = await signRawRs256(attacker, { alg: 'RS256', kid: attacker.kid, ...extra }, c);
        await rejectsWith(v.verify(token), 'ERR_TOKEN_INVALID', `token header "${name}" is not accepted`);
        const honest = await signRawRs256(rsa, { alg: 'RS256', kid: rsa.kid, ...extra }, c);
        await rejectsWith(v.verify(honest), 'ERR_TOKEN_INVALID', `token header "${name}" is not accepted`);
      }
      assert.deepEqual(srv.requests, { discovery: 0, jwks: 0 });
    } finally {
      await srv.close();
    }
  });

  test('malformed tokens', async () => {
    const v = verifier();
    const good = await sign(rsa, claims());
    const [h, p] = good.split('.') as [string, string, string];
    for (const bad of ['', 'abc', `${h}.${p}`, `${good}.x.y`, `${h}.!!!.sig`, `${b64url('not json')}.${p}.sig`, `${h}.${b64url('[1]')}.sig`]) {
      await rejectsWith(v.verify(bad), 'ERR_TOKEN_INVALID', 'token is malformed');
    }
    await rejectsWith(v.verify('a'.repeat(70_000)), 'ERR_TOKEN_INVALID', 'token is malformed');
  });

  test('a token whose iss is not configured, and one with no iss', async () => {
    const other = await startJwksServer([attacker.publicJwk]);
    try {
      const v = verifier();
      await rejectsWith(v.verify(await sign(attacker, claims({ iss: other.issuer }))), 'ERR_TOKEN_INVALID', 'token issuer is not accepted');
      await rejectsWith(v.verify(await sign(rsa, claims({ iss: `${server.issuer}/` }))), 'ERR_TOKEN_INVALID', 'token issuer is not accepted');
      await rejectsWith(v.verify(await sign(rsa, claims({ iss: undefined }))), 'ERR_TOKEN_INVALID', 'token issuer is not accepted');
      assert.deepEqual(other.requests, { discovery: 0, jwks: 0 });
    } finally {
      await other.close();
    }
  });
});

describe('TokenVerifier: signature and claims', () => {
  test('a key the issuer never published, under a published kid', async () => {
    await rejectsWith(verifier().verify(await sign(attacker, claims())), 'ERR_TOKEN_INVALID', 'token signature is invalid');
  });

  test('tampered payload and tampered signature', async () => {
    const v = verifier();
    const [h, , s] = (await sign(rsa, claims())).split('.') as [string, string, string];
    const forged = `${h}.${b64url(claims({ sub: 'admin', groups: ['admins'] }))}.${s}`;
    await rejectsWith(v.verify(forged), 'ERR_TOKEN_INVALID', 'token signature is invalid');
    const good = await sign(rsa, claims());
    const flipped = good.slice(0, -4) + (good.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await rejectsWith(v.verify(flipped), 'ERR_TOKEN_INVALID', 'token signature is invalid');
  });

  test('unknown kid', async () => {
    await rejectsWith(verifier().verify(await sign(rsa2, claims())), 'ERR_TOKEN_INVALID', 'unknown signing key');
  });

  test('wrong audience, missing audience', async () => {
    const v = verifier();
    await rejectsWith(v.verify(await sign(rsa, claims({ aud: 'api://something-else' }))), 'ERR_TOKEN_INVALID', 'token audience is not accepted');
    await rejectsWith(v.verify(await sign(rsa, claims({ aud: ['a', 'b'] }))), 'ERR_TOKEN_INVALID', 'token audience is not accepted');
    await rejectsWith(v.verify(await sign(rsa, claims({ aud: undefined }))), 'ERR_TOKEN_INVALID', 'token is missing the "aud" claim');
  });

  test('expired beyond the leeway', async () => {
    await rejectsWith(verifier().verify(await sign(rsa, claims({ exp: nowSec - 31 }))), 'ERR_TOKEN_EXPIRED', 'token expired');
    await rejectsWith(verifier({ clockToleranceSec: 0 }).verify(await sign(rsa, claims({ exp: nowSec }))), 'ERR_TOKEN_EXPIRED', 'token expired');
  });

  test('not yet valid beyond the leeway', async () => {
    await rejectsWith(verifier().verify(await sign(rsa, claims({ nbf: nowSec + 31 }))), 'ERR_TOKEN_INVALID', 'token is not yet valid');
  });

  test('within the leeway: slightly expired and slightly early tokens are accepted', async () => {
    const v = verifier({ clockToleranceSec: 30 });
    assert.equal((await v.verify(await sign(rsa, claims({ exp: nowSec - 20 })))).subject, 'agent-1');
    assert.equal((await v.verify(await sign(rsa, claims({ nbf: nowSec + 20 })))).subject, 'agent-1');
  });

  test('missing exp, missing sub, non-numeric exp, empty sub', async () => {
    const v = verifier();
    await rejectsWith(v.verify(await sign(rsa, claims({ exp: undefined }))), 'ERR_TOKEN_INVALID', 'token is missing the "exp" claim');
    await rejectsWith(v.verify(await sign(rsa, claims({ sub: undefined }))), 'ERR_TOKEN_INVALID', 'token is missing the "sub" claim');
    await rejectsWith(v.verify(await sign(rsa, claims({ exp: String(nowSec + 60) }))), 'ERR_TOKEN_INVALID', 'token expiry is invalid');
    await rejectsWith(v.verify(await sign(rsa, claims({ sub: '' }))), 'ERR_TOKEN_INVALID', 'token subject is invalid');
  });

  test('a token of one configured issuer signed with the key of another', async () => {
    const other = await startJwksServer([rsa2.publicJwk]);
    try {
      const v = new TokenVerifier({ issuers: [{ issuer: server.issuer, audience: AUD }, { issuer: other.issuer, audience: AUD }], now: () => NOW });
      assert.equal((await v.verify(await sign(rsa2, claims({ iss: other.issuer })))).issuer, other.issuer);
      await rejectsWith(v.verify(await sign(rsa2, claims())), 'ERR_TOKEN_INVALID', 'unknown signing key');
      await rejectsWith(v.verify(await sign(rsa, claims({ iss: other.issuer }))), 'ERR_TOKEN_INVALID', 'unknown signing key');
    } finally {
      await other.close();
    }
  });
});

describe('TokenVerifier: discovery and key rotation', () => {
  test('discovery once, shared by concurrent first callers', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      const v = verifier({}, srv);
      const tokens = await Promise.all(Array.from({ length: 5 }, () => sign(rsa, claims({ iss: srv.issuer }))));
      const ids = await Promise.all(tokens.map((t) => v.verify(t)));
      assert.equal(ids.length, 5);
      assert.equal(srv.requests.discovery, 1);
      assert.equal(srv.requests.jwks, 1);
    } finally {
      await srv.close();
    }
  });

  test('the discovery document must name the configured issuer exactly and an https or loopback jwks_uri', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      srv.discoveryIssuer = `${srv.issuer}/`;
      const token = await sign(rsa, claims({ iss: srv.issuer }));
      await rejectsWith(verifier({}, srv).verify(token), 'ERR_ISSUER_UNAVAILABLE', 'token issuer is unavailable');
      srv.discoveryIssuer = undefined;
      srv.discoveryJwksUri = 'http://keys.example.com/jwks';
      await rejectsWith(verifier({}, srv).verify(token), 'ERR_ISSUER_UNAVAILABLE');
      assert.equal(srv.requests.jwks, 0);
    } finally {
      await srv.close();
    }
  });

  test('issuer unreachable before the first token', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      srv.mode = 'reset';
      const v = verifier({ jwksCooldownMs: 0 }, srv);
      const token = await sign(rsa, claims({ iss: srv.issuer }));
      await rejectsWith(v.verify(token), 'ERR_ISSUER_UNAVAILABLE', 'token issuer is unavailable');
      srv.mode = 'up';
      assert.equal((await v.verify(token)).subject, 'agent-1');
    } finally {
      await srv.close();
    }
  });

  test('rotation: a new kid is picked up by re-fetching the JWKS', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      const v = verifier({ jwksCooldownMs: 0 }, srv);
      await v.verify(await sign(rsa, claims({ iss: srv.issuer })));
      assert.equal(srv.requests.jwks, 1);
      srv.keys = [rsa2.publicJwk];
      assert.equal((await v.verify(await sign(rsa2, claims({ iss: srv.issuer })))).subject, 'agent-1');
      assert.equal(srv.requests.jwks, 2);
      await rejectsWith(v.verify(await sign(rsa, claims({ iss: srv.issuer }))), 'ERR_TOKEN_INVALID', 'unknown signing key');
    } finally {
      await srv.close();
    }
  });

  test('re-fetches on unknown kids are rate-limited by the cooldown', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      const v = verifier({ jwksCooldownMs: 60_000 }, srv);
      await v.verify(await sign(rsa, claims({ iss: srv.issuer })));
      for (let i = 0; i < 25; i++) {
        await rejectsWith(v.verify(await sign(rsa, claims({ iss: srv.issuer }), { kid: `garbage-${i}` })), 'ERR_TOKEN_INVALID', 'unknown signing key');
      }
      assert.equal(srv.requests.jwks, 1);
      assert.equal(v.stats().jwksFetches, 1);
    } finally {
      await srv.close();
    }
  });

  test('issuer down: fetched keys keep working, a new kid is ERR_ISSUER_UNAVAILABLE, failed fetches are rate-limited', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      const v = verifier({ jwksCooldownMs: 0 }, srv);
      await v.verify(await sign(rsa, claims({ iss: srv.issuer })));
      for (const mode of ['reset', 'error'] as const) {
        srv.mode = mode;
        assert.equal((await v.verify(await sign(rsa, claims({ iss: srv.issuer })))).subject, 'agent-1');
        await rejectsWith(v.verify(await sign(rsa2, claims({ iss: srv.issuer }))), 'ERR_ISSUER_UNAVAILABLE', 'token issuer is unavailable');
      }
      const slow = verifier({ jwksCooldownMs: 60_000 }, srv);
      srv.mode = 'up';
      await slow.verify(await sign(rsa, claims({ iss: srv.issuer })));
      srv.mode = 'reset';
      const fetches = slow.stats().jwksFetches;
      for (let i = 0; i < 5; i++) await rejectsWith(slow.verify(await sign(rsa2, claims({ iss: srv.issuer }))), 'ERR_TOKEN_INVALID', 'unknown signing key');
      assert.equal(slow.stats().jwksFetches, fetches);
    } finally {
      await srv.close();
    }
  });

  test('issuer down when the key set is due for refresh: the last keys keep working', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      const v = verifier({ jwksMaxAgeMs: 0, jwksCooldownMs: 0 }, srv);
      await v.verify(await sign(rsa, claims({ iss: srv.issuer })));
      srv.mode = 'error';
      assert.equal((await v.verify(await sign(rsa, claims({ iss: srv.issuer })))).subject, 'agent-1');
      assert.ok(v.stats().jwksFetches >= 2, 'a refresh was attempted');
      await rejectsWith(v.verify(await sign(rsa2, claims({ iss: srv.issuer }))), 'ERR_ISSUER_UNAVAILABLE');
      srv.mode = 'up';
      srv.keys = [rsa2.publicJwk];
      assert.equal((await v.verify(await sign(rsa2, claims({ iss: srv.issuer })))).subject, 'agent-1');
      await rejectsWith(v.verify(await sign(rsa, claims({ iss: srv.issuer }))), 'ERR_TOKEN_INVALID', 'unknown signing key');
    } finally {
      await srv.close();
    }
  });

  test('a failed refresh is not retried before the cooldown has passed', async () => {
    const srv = await startJwksServer([rsa.publicJwk]);
    try {
      const v = verifier({ jwksMaxAgeMs: 0, jwksCooldownMs: 60_000 }, srv);
      await v.verify(await sign(rsa, claims({ iss: srv.issuer })));
      srv.mode = 'reset';
      for (let i = 0; i < 5; i++) assert.equal((await v.verify(await sign(rsa, claims({ iss: srv.issuer })))).subject, 'agent-1');
      await rejectsWith(v.verify(await sign(rsa2, claims({ iss: srv.issuer }))), 'ERR_ISSUER_UNAVAILABLE');
      assert.equal(v.stats().jwksFetches, 2);
    } finally {
      await srv.close();
    }
  });
});

describe('TokenVerifier: claim shapes', () => {
  test('Okta client-credentials token: cid, scp array, custom groups claim name', async () => {
    const fixture = JSON.parse(readFileSync('/work/shared/fixtures/okta-client-credentials-claims.json', 'utf8')) as {
      header: { kid: string };
      claims: Record<string, unknown>;
    };
    const oktaKey = await makeKey('RS256', fixture.header.kid);
    const srv = await startJwksServer([oktaKey.publicJwk]);
    try {
      const iss = fixture.claims['iss'] as string;
      const { groups, ...rest } = fixture.claims;
      const token = await sign(oktaKey, { ...rest, agentGroups: groups });
      const v = new TokenVerifier({
        issuers: [{ issuer: iss, audience: 'api://gatehouse', jwksUri: srv.jwksUri, groupsClaim: 'agentGroups' }],
        now: () => (fixture.claims['iat'] as number) * 1000 + 60_000,
      });
      const id = await v.verify(token);
      assert.equal(id.issuer, iss);
      assert.equal(id.subject, '0oa1b2c3d4e5f6g7h8i9');
      assert.equal(id.clientId, '0oa1b2c3d4e5f6g7h8i9');
      assert.deepEqual(id.scopes, ['gatehouse.connect']);
      assert.deepEqual(id.groups, ['ai-agents', 'ai-agents-prod-read']);
      assert.equal(id.tokenId, fixture.claims['jti']);
      assert.equal(id.expiresAt, (fixture.claims['exp'] as number) * 1000);
      assert.equal(srv.requests.discovery, 0);
    } finally {
      await srv.close();
    }
  });

  test('Entra-style azp + space-separated scp, single-string group, dotted groups path', async () => {
    const v = new TokenVerifier({ issuers: [{ issuer: server.issuer, audience: AUD, groupsClaim: 'realm_access.roles' }], now: () => NOW });
    const id = await v.verify(await sign(rsa, claims({ client_id: undefined, azp: 'entra-app', scp: 'a b', scope: 'ignored', realm_access: { roles: ['r1', 'r2', 7] } })));
    assert.equal(id.clientId, 'entra-app');
    assert.deepEqual(id.scopes, ['a', 'b']);
    assert.deepEqual(id.groups, ['r1', 'r2']);
    const single = await verifier().verify(await sign(rsa, claims({ groups: 'solo', scope: undefined })));
    assert.deepEqual(single.groups, ['solo']);
    assert.deepEqual(single.scopes, []);
    const none = await verifier().verify(await sign(rsa, claims({ groups: undefined, client_id: undefined, jti: undefined })));
    assert.deepEqual(none.groups, []);
    assert.equal(none.clientId, undefined);
    assert.equal(none.tokenId, undefined);
  });
});

describe('TokenVerifier: revocation and cache', () => {
  test('revocation by subject, client id and token id', async () => {
    const revocations = new RevocationSet({ now: () => NOW });
    const v = verifier({ isRevoked: revocations.isRevoked });
    const jti = randomUUID();
    const token = await sign(rsa, claims({ jti }));
    await v.verify(token);
    const base = { createdBy: 'admin', createdAt: NOW };
    for (const [kind, value] of [['subject', 'agent-1'], ['client_id', 'agent-client'], ['token_id', jti]] as const) {
      revocations.add({ id: kind, kind, value, ...base });
      await rejectsWith(v.verify(token), 'ERR_TOKEN_REVOKED', 'token has been revoked');
      await rejectsWith(v.verify(await sign(rsa, claims({ jti }))), 'ERR_TOKEN_REVOKED');
      revocations.remove(kind);
      assert.equal((await v.verify(token)).subject, 'agent-1');
    }
    revocations.add({ id: 'lapsed', kind: 'subject', value: 'agent-1', expiresAt: NOW - 1, ...base });
    assert.equal((await v.verify(token)).subject, 'agent-1');
  });

  test('a cache hit does not verify again but still expires and is still revocable', async () => {
    let now = NOW;
    let revoked = false;
    const v = verifier({ now: () => now, isRevoked: () => revoked, clockToleranceSec: 5 });
    const token = await sign(rsa, claims({ exp: nowSec + 60 }));
    const first = await v.verify(token);
    const second = await v.verify(token);
    assert.equal(second, first);
    assert.deepEqual({ ...v.stats(), jwksFetches: 0, discoveryFetches: 0 }, { verifications: 1, cacheHits: 1, cacheSize: 1, jwksFetches: 0, discoveryFetches: 0 });
    revoked = true;
    await rejectsWith(v.verify(token), 'ERR_TOKEN_REVOKED');
    revoked = false;
    now = NOW + 64_000;
    assert.equal((await v.verify(token)).subject, 'agent-1');
    now = NOW + 65_000;
    await rejectsWith(v.verify(token), 'ERR_TOKEN_EXPIRED', 'token expired');
    assert.equal(v.stats().verifications, 1);
    assert.equal(v.stats().cacheSize, 0);
    await rejectsWith(v.verify(token), 'ERR_TOKEN_EXPIRED', 'token expired');
    assert.equal(v.stats().verifications, 2);
  });

  test('the cache is LRU-bounded and can be disabled', async () => {
    const v = verifier({ cacheMax: 2 });
    const [a, b, c] = await Promise.all([sign(rsa, claims()), sign(rsa, claims()), sign(rsa, claims())]);
    await v.verify(a as string);
    await v.verify(b as string);
    await v.verify(a as string);
    await v.verify(c as string);
    assert.equal(v.stats().cacheSize, 2);
    await v.verify(a as string);
    assert.equal(v.stats().verifications, 3);
    await v.verify(b as string);
    assert.equal(v.stats().verifications, 4);

    const off = verifier({ cacheMax: 0 });
    await off.verify(a as string);
    await off.verify(a as string);
    assert.deepEqual([off.stats().verifications, off.stats().cacheSize], [2, 0]);
  });

  test('failed tokens are not cached', async () => {
    const v = verifier();
    const bad = await sign(rsa, claims({ aud: 'nope' }));
    await rejectsWith(v.verify(bad), 'ERR_TOKEN_INVALID');
    await rejectsWith(v.verify(bad), 'ERR_TOKEN_INVALID');
    assert.deepEqual([v.stats().verifications, v.stats().cacheHits, v.stats().cacheSize], [2, 0, 0]);
  });
});

describe('TokenVerifier: configuration', () => {
  test('issuers must be https, or http on loopback only', () => {
    for (const issuer of ['http://idp.example.com', 'http://10.0.0.1:8080', 'ftp://idp.example.com', 'idp.example.com', 'https://idp.example.com/?x=1', 'https://idp.example.com/#f', 'https://u:p@idp.example.com']) {
      throwsConfig(() => new TokenVerifier({ issuers: [{ issuer, audience: AUD }] }));
    }
    for (const issuer of ['https://idp.example.com', 'http://127.0.0.1:8080', 'http://localhost:9000/realms/x', 'http://[::1]:4000']) {
      assert.deepEqual(new TokenVerifier({ issuers: [{ issuer, audience: AUD }] }).issuers, [issuer]);
    }
    throwsConfig(() => new TokenVerifier({ issuers: [{ issuer: 'https://idp.example.com', audience: AUD, jwksUri: 'http://idp.example.com/keys' }] }));
  });

  test('other configuration errors', () => {
    throwsConfig(() => new TokenVerifier({ issuers: [] }));
    throwsConfig(() => new TokenVerifier({ issuers: [{ issuer: 'https://a.example', audience: [] }] }));
    throwsConfig(() => new TokenVerifier({ issuers: [{ issuer: 'https://a.example', audience: '' }] }));
    throwsConfig(() => new TokenVerifier({ issuers: [{ issuer: 'https://a.example', audience: AUD }, { issuer: 'https://a.example', audience: 'x' }] }));
    throwsConfig(() => new TokenVerifier({ issuers: [{ issuer: 'https://a.example', audience: AUD }], clockToleranceSec: -1 }));
    throwsConfig(() => new TokenVerifier({ issuers: [{ issuer: 'https://a.example', audience: AUD }], cacheMax: Number.NaN }));
  });
});
