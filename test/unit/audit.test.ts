// The audit log: hash chain, verification and tamper detection, credential redaction, signed
// checkpoints, and the canonical JSON (RFC 8785) the chain hashes.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, verify as verifySignature } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';
import type { AuditEvent, AuditEventInput } from '../../src/store/index.js';
import { AuditLog, GENESIS_HASH, REDACTED, checkpointBytes, hashAuditEvent, isCredentialKey, keyThumbprint, redactCredentials } from '../../src/core/audit/audit-log.js';
import { verifyAudit } from '../../src/core/audit/verify.js';
import { canonicalJson, toJsonValue } from '../../src/core/audit/canonical.js';
import { isGatehouseError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const TS = 1_764_000_000_000;
const ev = (i: number, over: Partial<AuditEventInput> = {}): AuditEventInput => ({
  ts: TS + i,
  type: 'command',
  sessionId: `sess-${i % 2}`,
  actor: 'agent-7',
  connection: 'prod-db',
  data: { sql: `SELECT ${i}`, i },
  ...over,
});

const ed25519 = () => generateKeyPairSync('ed25519');

let fileSeq = 0;
/** A file-backed store plus a raw connection to the same database, for tampering. */
async function tamperable(n: number, opts: { signingKey?: ReturnType<typeof ed25519>['privateKey']; checkpointEvery?: number } = {}) {
  const path = join(dir, `audit-${++fileSeq}.db`);
  const store = await openStore(`sqlite:${path}`);
  const log = new AuditLog(store, opts);
  const events: AuditEvent[] = [];
  for (let i = 1; i <= n; i++) events.push(await log.append(ev(i)));
  const raw = new Database(path);
  const close = async (): Promise<void> => {
    raw.close();
    await store.close();
  };
  return { store, log, events, raw, close };
}

type Raw = InstanceType<typeof Database>;
const rowOf = (raw: Raw, seq: number) =>
  raw.prepare('SELECT seq, ts, type, session_id, actor, connection, data, prev_hash, hash FROM audit_events WHERE seq = ?').get(seq) as {
    seq: number; ts: number; type: string; session_id: string | null; actor: string | null; connection: string | null; data: string; prev_hash: string; hash: string;
  };

/** Rewrites events `from..to` with consistent hashes (what a careful forger would do). */
function rechain(raw: Raw, from: number, to: number, mutate: (seq: number, data: Record<string, unknown>) => Record<string, unknown>): string {
  let prev = rowOf(raw, from).prev_hash;
  for (let seq = from; seq <= to; seq++) {
    const r = rowOf(raw, seq);
    const data = mutate(seq, JSON.parse(r.data) as Record<string, unknown>);
    const hash = hashAuditEvent(prev, { seq, ts: r.ts, type: r.type, sessionId: r.session_id ?? undefined, actor: r.actor ?? undefined, connection: r.connection ?? undefined, data });
    raw.prepare('UPDATE audit_events SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(JSON.stringify(data), prev, hash, seq);
    prev = hash;
  }
  return prev;
}

describe('audit chain', () => {
  it('hashes exactly as the documented format: SHA-256 of prevHash ‖ canonical body', () => {
    const body = '{"actor":"agent-7","connection":"prod-db","data":{"sql":"SELECT 1"},"seq":1,"sessionId":null,"ts":1764000000000,"type":"command"}';
    const e = { seq: 1, ts: 1764000000000, type: 'command', actor: 'agent-7', connection: 'prod-db', data: { sql: 'SELECT 1' } };
    assert.equal(GENESIS_HASH, '0'.repeat(64));
    assert.equal(hashAuditEvent(GENESIS_HASH, e), sha256(GENESIS_HASH + body));
    // Every covered field changes the hash.
    const h = hashAuditEvent(GENESIS_HASH, e);
    for (const over of [{ seq: 2 }, { ts: e.ts + 1 }, { type: 'x' }, { actor: 'agent-8' }, { connection: 'c' }, { sessionId: 's' }, { data: { sql: 'SELECT 2' } }]) {
      assert.notEqual(hashAuditEvent(GENESIS_HASH, { ...e, ...over }), h, JSON.stringify(over));
    }
    assert.notEqual(hashAuditEvent('1'.repeat(64), e), h);
  });

  it('appends a gapless chain: seq 1..n, prevHash(1) = 64 zeros, prevHash(n) = hash(n-1), hash recomputes', async () => {
    const store = await openStore('sqlite::memory:');
    const log = new AuditLog(store);
    const written: AuditEvent[] = [];
    for (let i = 1; i <= 5; i++) written.push(await log.append(ev(i, i === 3 ? { sessionId: undefined, actor: undefined, connection: undefined } : {})));
    assert.deepEqual(written.map((e) => e.seq), [1, 2, 3, 4, 5]);
    assert.equal(written[0]!.prevHash, GENESIS_HASH);
    for (let i = 1; i < written.length; i++) assert.equal(written[i]!.prevHash, written[i - 1]!.hash);
    for (const e of written) {
      assert.match(e.hash, /^[0-9a-f]{64}$/);
      const body = canonicalJson({ seq: e.seq, ts: e.ts, type: e.type, sessionId: e.sessionId ?? null, actor: e.actor ?? null, connection: e.connection ?? null, data: e.data });
      assert.equal(e.hash, sha256(e.prevHash + body));
    }
    assert.equal(new Set(written.map((e) => e.hash)).size, 5);
    assert.deepEqual(await store.auditHead(), { seq: 5, hash: written[4]!.hash });
    assert.deepEqual(await store.listAudit(), written);
    await store.close();
  });

  it('record() queues in call order without waiting; flush() waits; later mutation of the input has no effect', async () => {
    const store = await openStore('sqlite::memory:');
    const log = new AuditLog(store);
    const inputs = Array.from({ length: 10 }, (_, i) => ev(i));
    for (const input of inputs) log.record(input);
    assert.equal(log.pending, 10);
    inputs[0]!.data['sql'] = 'DROP TABLE users';
    await log.flush();
    assert.equal(log.pending, 0);
    const stored = await store.listAudit();
    assert.deepEqual(stored.map((e) => e.data['i']), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(stored[0]!.data['sql'], 'SELECT 0');
    assert.equal((await verifyAudit(store)).ok, true);
    await store.close();
  });

  it('reports a failed record() to onError with the lost event, and append() rejects with ERR_STORE', async () => {
    const store = await openStore('sqlite::memory:');
    const errors: { code: string; type: string | undefined }[] = [];
    const log = new AuditLog(store, { onError: (err, input) => errors.push({ code: err.code, type: input?.type }) });
    await log.append(ev(1));
    await store.close();
    log.record(ev(2, { type: 'lost' }));
    await log.flush();
    assert.deepEqual(errors, [{ code: 'ERR_STORE', type: 'lost' }]);
    await assert.rejects(log.append(ev(3)), (e) => isGatehouseError(e, 'ERR_STORE'));
  });

  it('refuses malformed events before queueing them', async () => {
    const store = await openStore('sqlite::memory:');
    const log = new AuditLog(store);
    await assert.rejects(log.append({ ts: 1.5, type: 'x', data: {} }), (e) => isGatehouseError(e, 'ERR_INTERNAL'));
    await assert.rejects(log.append({ ts: 1, type: '', data: {} }), (e) => isGatehouseError(e, 'ERR_INTERNAL'));
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    await assert.rejects(log.append({ ts: 1, type: 'x', data: circular }), (e) => isGatehouseError(e));
    assert.equal(await store.auditHead(), undefined);
    await store.close();
  });

  it('stores data as the canonical JSON value, so events read back re-hash to their stored hash', async () => {
    const store = await openStore('sqlite::memory:');
    const log = new AuditLog(store);
    const e = await log.append({ ts: TS, type: 'command', data: { when: new Date(0), n: -0, big: 10n, gone: undefined, bad: 'a\u0000b', inf: Infinity } });
    assert.deepEqual(e.data, { when: '1970-01-01T00:00:00.000Z', n: 0, big: '10', bad: 'a\ufffdb', inf: null });
    const [read] = await store.listAudit();
    assert.equal(hashAuditEvent(read!.prevHash, read!), read!.hash);
    await store.close();
  });
});

describe('verifyAudit', () => {
  it('passes an intact log, read in batches of any size, and an empty log', async () => {
    const store = await openStore('sqlite::memory:');
    assert.deepEqual(await verifyAudit(store), { ok: true, events: 0, checkpoints: 0 });
    const log = new AuditLog(store);
    for (let i = 1; i <= 7; i++) log.record(ev(i));
    await log.flush();
    assert.deepEqual(await verifyAudit(store), { ok: true, events: 7, checkpoints: 0 });
    assert.deepEqual(await verifyAudit(store, { batch: 2 }), { ok: true, events: 7, checkpoints: 0 });
    assert.deepEqual(await verifyAudit(store, { batch: 1 }), { ok: true, events: 7, checkpoints: 0 });
    await store.close();
  });

  describe('tamper detection: reports the first broken link', () => {
    it('altered data of one event', async () => {
      const t = await tamperable(5);
      t.raw.prepare('UPDATE audit_events SET data = ? WHERE seq = 3').run(JSON.stringify({ sql: 'SELECT 3', i: 33 }));
      const r = await verifyAudit(t.store);
      assert.equal(r.ok, false);
      assert.equal(r.firstBroken?.seq, 3);
      assert.match(r.firstBroken!.reason, /altered/);
      assert.equal(r.events, 2);
      await t.close();
    });

    for (const [column, value] of [['ts', TS], ['type', 'session.start'], ['actor', 'someone-else'], ['session_id', null], ['connection', 'other-db']] as const) {
      it(`altered ${column} of one event`, async () => {
        const t = await tamperable(4);
        t.raw.prepare(`UPDATE audit_events SET ${column} = ? WHERE seq = 2`).run(value);
        const r = await verifyAudit(t.store);
        assert.deepEqual(r.firstBroken?.seq, 2);
        assert.match(r.firstBroken!.reason, /hash does not match the event content/);
        await t.close();
      });
    }

    it('two altered events: only the earlier one is reported', async () => {
      const t = await tamperable(6);
      t.raw.prepare('UPDATE audit_events SET data = ? WHERE seq IN (2, 5)').run('{}');
      const r = await verifyAudit(t.store, { batch: 1 });
      assert.deepEqual(r, { ok: false, events: 1, checkpoints: 0, firstBroken: { seq: 2, reason: r.firstBroken!.reason } });
      await t.close();
    });

    it('a deleted event in the middle', async () => {
      const t = await tamperable(5);
      t.raw.prepare('DELETE FROM audit_events WHERE seq = 3').run();
      const r = await verifyAudit(t.store);
      assert.equal(r.ok, false);
      assert.equal(r.firstBroken?.seq, 3);
      assert.match(r.firstBroken!.reason, /missing/);
      assert.match(r.firstBroken!.reason, /seq 4/);
      await t.close();
    });

    it('deleted events at the tail (truncation below the recorded head)', async () => {
      const t = await tamperable(5);
      t.raw.prepare('DELETE FROM audit_events WHERE seq >= 4').run();
      const r = await verifyAudit(t.store);
      assert.equal(r.ok, false);
      assert.equal(r.events, 3);
      assert.equal(r.firstBroken?.seq, 4);
      assert.match(r.firstBroken!.reason, /truncated/);
      await t.close();
    });

    it('the first event deleted', async () => {
      const t = await tamperable(3);
      t.raw.prepare('DELETE FROM audit_events WHERE seq = 1').run();
      const r = await verifyAudit(t.store);
      assert.equal(r.firstBroken?.seq, 1);
      assert.match(r.firstBroken!.reason, /missing/);
      await t.close();
    });

    it('two events reordered (their rows swapped)', async () => {
      const t = await tamperable(5);
      t.raw.exec('UPDATE audit_events SET seq = -2 WHERE seq = 2; UPDATE audit_events SET seq = 2 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = -2;');
      const r = await verifyAudit(t.store);
      assert.equal(r.ok, false);
      assert.equal(r.firstBroken?.seq, 2);
      assert.match(r.firstBroken!.reason, /prevHash/);
      await t.close();
    });

    it('two events reordered by swapping their content but keeping the hash columns in place', async () => {
      const t = await tamperable(5);
      const a = rowOf(t.raw, 2);
      const b = rowOf(t.raw, 3);
      const set = t.raw.prepare('UPDATE audit_events SET ts = ?, data = ? WHERE seq = ?');
      set.run(b.ts, b.data, 2);
      set.run(a.ts, a.data, 3);
      const r = await verifyAudit(t.store);
      assert.equal(r.firstBroken?.seq, 2);
      assert.match(r.firstBroken!.reason, /altered/);
      await t.close();
    });

    it('an altered hash', async () => {
      const t = await tamperable(5);
      t.raw.prepare('UPDATE audit_events SET hash = ? WHERE seq = 3').run('f'.repeat(64));
      const r = await verifyAudit(t.store);
      assert.equal(r.firstBroken?.seq, 3);
      assert.match(r.firstBroken!.reason, /hash does not match the event content/);
      await t.close();
    });

    it('an altered hash of the last event', async () => {
      const t = await tamperable(3);
      t.raw.prepare('UPDATE audit_events SET hash = ? WHERE seq = 3').run('e'.repeat(64));
      const r = await verifyAudit(t.store);
      assert.equal(r.firstBroken?.seq, 3);
      await t.close();
    });

    it('a forged prevHash (with the event hash recomputed to match it)', async () => {
      const t = await tamperable(5);
      const r3 = rowOf(t.raw, 3);
      const forged = 'a'.repeat(64);
      const data = JSON.parse(r3.data) as Record<string, unknown>;
      const hash = hashAuditEvent(forged, { seq: 3, ts: r3.ts, type: r3.type, sessionId: r3.session_id ?? undefined, actor: r3.actor ?? undefined, connection: r3.connection ?? undefined, data });
      t.raw.prepare('UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = 3').run(forged, hash);
      const r = await verifyAudit(t.store);
      assert.equal(r.firstBroken?.seq, 3);
      assert.match(r.firstBroken!.reason, /prevHash does not match the hash of the previous event/);
      await t.close();
    });

    it('an altered event whose own hash was recomputed is caught at the next link', async () => {
      const t = await tamperable(5);
      rechain(t.raw, 3, 3, (_seq, d) => ({ ...d, sql: 'SELECT nothing' }));
      const r = await verifyAudit(t.store);
      assert.equal(r.firstBroken?.seq, 4);
      assert.match(r.firstBroken!.reason, /prevHash/);
      await t.close();
    });

    it('the whole tail rewritten consistently is caught by the recorded chain head', async () => {
      const t = await tamperable(5);
      rechain(t.raw, 3, 5, (_seq, d) => ({ ...d, sql: 'SELECT nothing' }));
      const r = await verifyAudit(t.store);
      assert.equal(r.firstBroken?.seq, 5);
      assert.match(r.firstBroken!.reason, /chain head/);
      await t.close();
    });
  });
});

describe('credential redaction', () => {
  it('recognizes credential-named keys, and not identifiers', () => {
    for (const k of ['token', 'Token', 'TOKEN', 'password', 'Password', 'authorization', 'Authorization', 'accessToken', 'access_token', 'id_token', 'refreshToken', 'db-password', 'DB_PASSWORD', 'pass_word', 'x-auth-token']) {
      assert.equal(isCredentialKey(k), true, k);
    }
    for (const k of ['tokenId', 'token_id', 'jti', 'tokens', 'passwordChangedAt', 'user', 'sql', 'auth', 'authorizationId']) {
      assert.equal(isCredentialKey(k), false, k);
    }
  });

  it('redacts at any depth, inside arrays too, keeps identifiers and nulls, and does not modify its argument', () => {
    const input = {
      token: 'eyJhbGciOi.x.y',
      tokenId: 'jti-123',
      jti: 'jti-123',
      headers: { Authorization: 'Bearer abc', 'content-type': 'json' },
      targets: [{ 'db-password': 'hunter2', host: 'db1' }, { accessToken: { nested: 'object' }, id_token: 42 }],
      password: null,
      user: 'alice',
    };
    const copy = structuredClone(input);
    assert.deepEqual(redactCredentials(input), {
      token: REDACTED,
      tokenId: 'jti-123',
      jti: 'jti-123',
      headers: { Authorization: REDACTED, 'content-type': 'json' },
      targets: [{ 'db-password': REDACTED, host: 'db1' }, { accessToken: REDACTED, id_token: REDACTED }],
      password: null,
      user: 'alice',
    });
    assert.deepEqual(input, copy);
  });

  it('never lets a credential into a stored event, and the redacted event still verifies', async () => {
    const store = await openStore('sqlite::memory:');
    const log = new AuditLog(store);
    const secret = 'super-secret-value-123';
    await log.append({
      ts: TS,
      type: 'session.start',
      data: { token: secret, password: secret, authorization: `Bearer ${secret}`, accessToken: secret, 'db-password': secret, tokenId: 'tid-1', jti: 'jti-1', deep: { list: [{ Password: secret }] } },
    });
    const [stored] = await store.listAudit();
    assert.equal(JSON.stringify(stored).includes(secret), false);
    assert.deepEqual(stored!.data, {
      token: REDACTED, password: REDACTED, authorization: REDACTED, accessToken: REDACTED, 'db-password': REDACTED, tokenId: 'tid-1', jti: 'jti-1', deep: { list: [{ Password: REDACTED }] },
    });
    assert.equal((await verifyAudit(store)).ok, true);
    await store.close();
  });
});

describe('signed checkpoints', () => {
  it('signs the head with Ed25519 over the canonical checkpoint bytes; verifyAudit checks them with the public key', async () => {
    const { privateKey, publicKey } = ed25519();
    const store = await openStore('sqlite::memory:');
    const log = new AuditLog(store, { signingKey: privateKey, now: () => 1234 });
    assert.equal(await log.checkpoint(), undefined, 'empty log: no checkpoint');
    for (let i = 1; i <= 4; i++) log.record(ev(i));
    const c = await log.checkpoint();
    const head = await store.auditHead();
    assert.ok(c);
    assert.deepEqual({ seq: c.seq, hash: c.hash, ts: c.ts, keyId: c.keyId }, { seq: 4, hash: head!.hash, ts: 1234, keyId: keyThumbprint(publicKey) });
    assert.equal(log.keyId, c.keyId);
    const bytes = Buffer.from(`{"hash":"${c.hash}","keyId":"${c.keyId}","seq":4,"ts":1234}`, 'utf8');
    assert.deepEqual(checkpointBytes(c), bytes);
    assert.match(c.signature, /^[A-Za-z0-9_-]+$/);
    assert.equal(verifySignature(null, bytes, publicKey, Buffer.from(c.signature, 'base64url')), true);
    assert.deepEqual(await store.listCheckpoints(), [c]);

    assert.deepEqual(await verifyAudit(store, { publicKey }), { ok: true, events: 4, checkpoints: 1 });
    // The key can be given as PEM or JWK too, and as the private key.
    assert.equal((await verifyAudit(store, { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() })).ok, true);
    assert.equal((await verifyAudit(store, { publicKey: publicKey.export({ format: 'jwk' }) })).ok, true);
    assert.equal((await verifyAudit(store, { publicKey: privateKey })).ok, true);
    await store.close();
  });

  it('the key id is the RFC 7638 thumbprint of the public key unless given', async () => {
    const { privateKey, publicKey } = ed25519();
    const x = String(publicKey.export({ format: 'jwk' }).x);
    const expected = createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
    const store = await openStore('sqlite::memory:');
    assert.equal(new AuditLog(store, { signingKey: privateKey }).keyId, expected);
    assert.equal(new AuditLog(store, { signingKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }).keyId, expected);
    assert.equal(new AuditLog(store, { signingKey: privateKey, keyId: 'audit-2026' }).keyId, 'audit-2026');
    assert.equal(new AuditLog(store).keyId, undefined);
    await store.close();
  });

  it('writes a checkpoint automatically every N events', async () => {
    const { privateKey, publicKey } = ed25519();
    const store = await openStore('sqlite::memory:');
    const log = new AuditLog(store, { signingKey: privateKey, checkpointEvery: 3 });
    for (let i = 1; i <= 7; i++) log.record(ev(i));
    await log.flush();
    assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [3, 6]);
    assert.deepEqual(await verifyAudit(store, { publicKey }), { ok: true, events: 7, checkpoints: 2 });
    await store.close();
  });

  it('reports a checkpoint verified with the wrong key', async () => {
    const { privateKey } = ed25519();
    const other = ed25519();
    const store = await openStore('sqlite::memory:');
    const log = new AuditLog(store, { signingKey: privateKey, checkpointEvery: 2 });
    for (let i = 1; i <= 5; i++) log.record(ev(i));
    await log.flush();
    const r = await verifyAudit(store, { publicKey: other.publicKey });
    assert.equal(r.ok, false);
    assert.equal(r.firstBroken?.seq, 2);
    assert.match(r.firstBroken!.reason, /signature is invalid/);
    assert.equal(r.checkpoints, 0);
    // Without a key, signatures are not checked (hashes still are).
    assert.deepEqual(await verifyAudit(store), { ok: true, events: 5, checkpoints: 2 });
    await store.close();
  });

  for (const [what, column, value] of [
    ['timestamp', 'ts', 999],
    ['key id', 'key_id', 'attacker'],
    ['signature', 'signature', Buffer.alloc(64, 7).toString('base64url')],
    ['signature (not base64url)', 'signature', '%%%'],
  ] as const) {
    it(`reports a checkpoint whose ${what} was altered`, async () => {
      const { privateKey, publicKey } = ed25519();
      const t = await tamperable(4, { signingKey: privateKey, checkpointEvery: 2 });
      assert.equal((await verifyAudit(t.store, { publicKey })).ok, true);
      t.raw.prepare(`UPDATE audit_checkpoints SET ${column} = ? WHERE seq = 4`).run(value);
      const r = await verifyAudit(t.store, { publicKey });
      assert.equal(r.ok, false);
      assert.equal(r.firstBroken?.seq, 4);
      assert.match(r.firstBroken!.reason, /signature is invalid/);
      assert.equal(r.checkpoints, 1);
      await t.close();
    });
  }

  it('reports a checkpoint whose hash no longer matches its event, with or without the key', async () => {
    const { privateKey, publicKey } = ed25519();
    const t = await tamperable(4, { signingKey: privateKey, checkpointEvery: 2 });
    t.raw.prepare('UPDATE audit_checkpoints SET hash = ? WHERE seq = 2').run('b'.repeat(64));
    for (const opts of [{ publicKey }, {}]) {
      const r = await verifyAudit(t.store, opts);
      assert.equal(r.firstBroken?.seq, 2);
      assert.match(r.firstBroken!.reason, /checkpoint .* hash does not match the event/);
    }
    await t.close();
  });

  it('catches a consistent rewrite of the whole tail, head included, at the signed checkpoint', async () => {
    const { privateKey, publicKey } = ed25519();
    const t = await tamperable(6, { signingKey: privateKey, checkpointEvery: 4 });
    const newHead = rechain(t.raw, 2, 6, (_seq, d) => ({ ...d, sql: 'SELECT harmless' }));
    t.raw.prepare('UPDATE audit_head SET hash = ? WHERE id = 1').run(newHead);
    const r = await verifyAudit(t.store, { publicKey });
    assert.equal(r.ok, false);
    assert.equal(r.firstBroken?.seq, 4);
    assert.match(r.firstBroken!.reason, /checkpoint/);
    await t.close();
  });

  it('reports a checkpoint beyond the end of a truncated log', async () => {
    const { privateKey, publicKey } = ed25519();
    const t = await tamperable(6, { signingKey: privateKey, checkpointEvery: 3 });
    t.raw.exec('DELETE FROM audit_events WHERE seq > 4');
    t.raw.prepare('UPDATE audit_head SET seq = 4, hash = ? WHERE id = 1').run(t.events[3]!.hash);
    const r = await verifyAudit(t.store, { publicKey });
    assert.equal(r.ok, false);
    assert.equal(r.firstBroken?.seq, 6);
    assert.match(r.firstBroken!.reason, /truncated/);
    await t.close();
  });

  it('refuses unusable keys and configuration with ERR_CONFIG', async () => {
    const store = await openStore('sqlite::memory:');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.throws(() => new AuditLog(store, { signingKey: ec.privateKey }), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    assert.throws(() => new AuditLog(store, { signingKey: ed25519().publicKey }), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    assert.throws(() => new AuditLog(store, { signingKey: 'not a pem' }), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    assert.throws(() => new AuditLog(store, { checkpointEvery: 10 }), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    assert.throws(() => new AuditLog(store, { signingKey: ed25519().privateKey, checkpointEvery: 1.5 }), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    await assert.rejects(new AuditLog(store).checkpoint(), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    await assert.rejects(verifyAudit(store, { publicKey: ec.publicKey }), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    await store.close();
  });
});

describe('canonicalJson (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units (RFC 8785 §3.2.3)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const out = canonicalJson(input);
    assert.equal(
      out,
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('serializes the RFC 8785 §3.2.2 example exactly', () => {
    const input = {
      numbers: [Number('333333333.33333329'), 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
      string: '\u20ac$\u000f\nA\'B"\\\\"/',
      literals: [null, true, false],
    };
    assert.equal(canonicalJson(input), String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
  });

  it('serializes numbers as ECMAScript does (RFC 8785 Appendix B)', () => {
    const vectors: [number, string][] = [
      [0, '0'],
      [-0, '0'],
      [1, '1'],
      [-1.5, '-1.5'],
      [1e21, '1e+21'],
      [1e20, '100000000000000000000'],
      [999999999999999900000, '999999999999999900000'],
      [295147905179352830000, '295147905179352830000'],
      [9007199254740992, '9007199254740992'],
      [5e-324, '5e-324'],
      [-5e-324, '-5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [1e-7, '1e-7'],
      [0.000001, '0.000001'],
      [123456789012345680000, '123456789012345680000'],
    ];
    for (const [n, s] of vectors) assert.equal(canonicalJson(n), s, String(n));
    assert.equal(canonicalJson({ a: [NaN, Infinity, -Infinity] }), '{"a":[null,null,null]}');
  });

  it('escapes strings minimally and replaces what PostgreSQL cannot store', () => {
    assert.equal(canonicalJson('\b\t\n\f\r"\\'), String.raw`"\b\t\n\f\r\"\\"`);
    assert.equal(canonicalJson('\u0001\u001f'), String.raw`"\u0001\u001f"`);
    assert.equal(canonicalJson('\u007f\u2028é😀/'), '"\u007f\u2028é😀/"');
    assert.equal(canonicalJson('a\u0000b'), '"a\ufffdb"');
    assert.equal(canonicalJson('x\ud800y\udc00'), '"x\ufffdy\ufffd"');
    assert.equal(canonicalJson({ ['k\u0000']: 1 }), '{"k\ufffd":1}');
  });

  it('writes no whitespace, drops undefined/functions/symbols, honours toJSON, stringifies bigints, refuses cycles', () => {
    assert.equal(canonicalJson({ b: [1, { d: true, c: null }], a: 'x' }), '{"a":"x","b":[1,{"c":null,"d":true}]}');
    assert.equal(canonicalJson({ u: undefined, f: () => 1, s: Symbol('s'), k: 1 }), '{"k":1}');
    assert.equal(canonicalJson([undefined, () => 1]), '[null,null]');
    assert.equal(canonicalJson({ d: new Date(Date.UTC(2026, 0, 2)) }), '{"d":"2026-01-02T00:00:00.000Z"}');
    assert.equal(canonicalJson(12345678901234567890n), '"12345678901234567890"');
    const a: unknown[] = [];
    a.push(a);
    assert.throws(() => canonicalJson(a), TypeError);
    // A shared (non-circular) reference is fine.
    const shared = { x: 1 };
    assert.equal(canonicalJson({ a: shared, b: shared }), '{"a":{"x":1},"b":{"x":1}}');
    assert.deepEqual(toJsonValue({ b: 1n, a: undefined }), { b: '1' });
  });
});
