// TokenVerifier against a real OpenID Connect issuer (oidc-provider 9, client-credentials grant, JWT access tokens).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { isGatehouseError } from '../../src/core/errors.js';
import type { GatehouseErrorCode } from '../../src/core/errors.js';
import { TokenVerifier } from '../../src/core/identity/index.js';
import { startTestIssuer } from '../support/oidc-issuer.js';
import type { TestIssuer } from '../support/oidc-issuer.js';

async function rejectsWith(p: Promise<unknown>, code: GatehouseErrorCode, message?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isGatehouseError(e), `expected a GatehouseError, got ${String(e)}`);
    assert.equal(e.code, code, `code (message: ${e.message}, detail: ${e.detail ?? ''})`);
    if (message !== undefined) assert.equal(e.message, message);
    return true;
  });
}

describe('TokenVerifier with a real OIDC issuer (oidc-provider)', () => {
  let idp: TestIssuer;

  before(async () => {
    idp = await startTestIssuer({ audience: 'api://gatehouse' });
  });
  after(() => idp.close());

  test('client-credentials tokens verify; groups, client id, scopes and jti are extracted', async () => {
    const verifier = new TokenVerifier({ issuers: [{ issuer: idp.issuer, audience: idp.audience }] });
    const token = await idp.token({ clientId: 'agent-b', scope: 'gatehouse.connect db.read' });
    assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
    assert.equal(decodeProtectedHeader(token).alg, 'RS256');
    const id = await verifier.verify(token);
    assert.equal(id.issuer, idp.issuer);
    assert.equal(id.subject, 'agent-b');
    assert.equal(id.clientId, 'agent-b');
    assert.deepEqual(id.groups, ['ai-agents', 'db-admins']);
    assert.deepEqual(id.scopes, ['gatehouse.connect', 'db.read']);
    assert.equal(id.tokenId, decodeJwt(token).jti);
    assert.equal(id.expiresAt, (decodeJwt(token).exp as number) * 1000);

    const plain = await verifier.verify(await idp.token({ clientId: 'agent-c' }));
    assert.deepEqual(plain.groups, []);
    assert.deepEqual(plain.scopes, []);
    const custom = await verifier.verify(await idp.token({ clientId: 'agent-a', groups: ['ops', 'oncall'] }));
    assert.deepEqual(custom.groups, ['ops', 'oncall']);
    assert.equal(verifier.stats().discoveryFetches, 1);
  });

  test('audience, expiry and issuer are enforced on real tokens', async () => {
    const token = await idp.token({ ttlSec: 5 });
    const otherAudience = new TokenVerifier({ issuers: [{ issuer: idp.issuer, audience: 'api://something-else' }] });
    await rejectsWith(otherAudience.verify(token), 'ERR_TOKEN_INVALID', 'token audience is not accepted');
    const later = new TokenVerifier({ issuers: [{ issuer: idp.issuer, audience: idp.audience }], clockToleranceSec: 30, now: () => Date.now() + 60_000 });
    await rejectsWith(later.verify(token), 'ERR_TOKEN_EXPIRED', 'token expired');
    const otherIssuer = new TokenVerifier({ issuers: [{ issuer: 'https://idp.example.com', audience: idp.audience }] });
    await rejectsWith(otherIssuer.verify(token), 'ERR_TOKEN_INVALID', 'token issuer is not accepted');
  });

  test('key rotation: the new kid is fetched; a kept old key still verifies, a dropped one does not', async () => {
    const verifier = new TokenVerifier({ issuers: [{ issuer: idp.issuer, audience: idp.audience }], jwksCooldownMs: 0 });
    const beforeRotation = await idp.token();
    const unverifiedOld = await idp.token();
    const oldKid = idp.kids[0];
    await verifier.verify(beforeRotation);
    const jwksBefore = verifier.stats().jwksFetches;

    await idp.rotateKeys({ keepOld: true });
    const rotated = await idp.token();
    assert.notEqual(decodeProtectedHeader(rotated).kid, oldKid);
    assert.equal((await verifier.verify(rotated)).subject, 'agent-a');
    assert.equal(verifier.stats().jwksFetches, jwksBefore + 1);
    assert.equal((await verifier.verify(unverifiedOld)).subject, 'agent-a');

    const stillOld = await idp.token({ clientId: 'agent-c' });
    await idp.rotateKeys({ keepOld: false });
    const fresh = await idp.token();
    assert.equal((await verifier.verify(fresh)).subject, 'agent-a');
    assert.deepEqual(idp.kids, [decodeProtectedHeader(fresh).kid]);
    await rejectsWith(verifier.verify(stillOld), 'ERR_TOKEN_INVALID', 'unknown signing key');
  });

  test('issuer down: fetched keys keep verifying, a new kid cannot be fetched', async () => {
    const own = await startTestIssuer({ clients: [{ clientId: 'solo', groups: ['g'] }] });
    try {
      const verifier = new TokenVerifier({ issuers: [{ issuer: own.issuer, audience: own.audience }], jwksCooldownMs: 0 });
      await verifier.verify(await own.token());
      const pending = await own.token();
      await own.rotateKeys({ keepOld: false });
      const rotated = await own.token();
      await own.close();
      assert.deepEqual((await verifier.verify(pending)).groups, ['g']);
      await rejectsWith(verifier.verify(rotated), 'ERR_ISSUER_UNAVAILABLE', 'token issuer is unavailable');
    } finally {
      await own.close();
    }
  });
});
