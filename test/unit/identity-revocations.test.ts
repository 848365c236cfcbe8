import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RevocationSet, identityFromClaims } from '../../src/core/identity/index.js';
import type { RevocationRecord } from '../../src/store/store.js';

const NOW = 1_764_028_800_000;
const identity = identityFromClaims('https://idp.example.com', { sub: 'agent-1', exp: NOW / 1000 + 600, cid: 'client-1', jti: 'tok-1' });
const other = identityFromClaims('https://idp.example.com', { sub: 'agent-2', exp: NOW / 1000 + 600 });

function rec(id: string, kind: RevocationRecord['kind'], value: string, expiresAt?: number): RevocationRecord {
  return { id, kind, value, createdBy: 'admin', createdAt: NOW, ...(expiresAt === undefined ? {} : { expiresAt }) };
}

describe('RevocationSet', () => {
  test('matches by subject, client id and token id', () => {
    for (const r of [rec('a', 'subject', 'agent-1'), rec('b', 'client_id', 'client-1'), rec('c', 'token_id', 'tok-1')]) {
      const set = new RevocationSet({ now: () => NOW });
      set.add(r);
      assert.equal(set.has(identity), r);
      assert.equal(set.isRevoked(identity), true);
      assert.equal(set.has(other), undefined);
    }
  });

  test('a value of one kind does not match another kind', () => {
    const set = new RevocationSet({ now: () => NOW });
    set.load([rec('a', 'client_id', 'agent-1'), rec('b', 'token_id', 'client-1'), rec('c', 'subject', 'tok-1')]);
    assert.equal(set.has(identity), undefined);
  });

  test('load replaces, add replaces by id, remove by id', () => {
    const set = new RevocationSet({ now: () => NOW });
    set.add(rec('x', 'subject', 'agent-2'));
    set.load([rec('a', 'subject', 'agent-1')]);
    assert.equal(set.size, 1);
    assert.equal(set.has(other), undefined);
    set.add(rec('a', 'subject', 'agent-2'));
    assert.equal(set.has(identity), undefined);
    assert.equal(set.has(other)?.id, 'a');
    assert.equal(set.remove('a'), true);
    assert.equal(set.remove('a'), false);
    assert.equal(set.has(other), undefined);
    assert.equal(set.size, 0);
  });

  test('lapsed records are ignored; another live record for the same value still counts', () => {
    let now = NOW;
    const set = new RevocationSet({ now: () => now });
    set.add(rec('old', 'token_id', 'tok-1', NOW - 1));
    assert.equal(set.has(identity), undefined);
    set.add(rec('short', 'token_id', 'tok-1', NOW + 1000));
    set.add(rec('forever', 'subject', 'agent-1'));
    assert.equal(set.has(identity)?.id, 'forever');
    set.remove('forever');
    assert.equal(set.has(identity)?.id, 'short');
    now = NOW + 1000;
    assert.equal(set.has(identity), undefined);
    assert.equal(set.size, 0);
  });
});
