/**
 * One behavioural suite for every `Store` implementation. Each run uses fresh, unique ids, subjects
 * and connection names, and audit assertions are relative to the head it finds, so the suite also
 * passes against a database other tests have written to.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import type {
  AuditEvent,
  AuditEventInput,
  AuditHead,
  GrantRecord,
  RecordingEvent,
  ReviewRecord,
  RevocationRecord,
  SessionRecord,
  Store,
  StoreTopic,
} from '../../src/store/store.js';
import { isGatehouseError } from '../../src/core/errors.js';

const ZERO = '0'.repeat(64);

/** A store-level chain link (content hashing is the audit log's business, not the store's). */
export function nextLink(input: AuditEventInput) {
  return (head: AuditHead | undefined): Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'> => {
    const seq = (head?.seq ?? 0) + 1;
    const prevHash = head?.hash ?? ZERO;
    const hash = createHash('sha256').update(`${prevHash}${seq}${JSON.stringify(input)}`).digest('hex');
    return { seq, prevHash, hash };
  };
}

/** Resolves with the first `n` payloads a subscription receives (fails the test after 5 s). */
export function collect(store: Store, topic: StoreTopic, n: number): { done: Promise<Record<string, unknown>[]>; unsubscribe: () => void } {
  const got: Record<string, unknown>[] = [];
  let unsubscribe = (): void => {};
  const done = new Promise<Record<string, unknown>[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} '${topic}' event(s), got ${got.length}`)), 5000);
    unsubscribe = store.events.subscribe(topic, (p) => {
      got.push(p);
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
  return { done, unsubscribe };
}

const isCode = (code: string) => (e: unknown) => isGatehouseError(e) && e.code === code;

export function runStoreConformance(name: string, open: () => Promise<Store>, cleanup?: () => Promise<void>): void {
  describe(`store conformance: ${name}`, () => {
    let store: Store;
    const u = randomUUID().slice(0, 8);
    const id = (s: string) => `${s}-${u}-${randomUUID().slice(0, 8)}`;

    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
      await cleanup?.();
    });

    describe('lifecycle', () => {
      it('migrates idempotently and reports the schema version', async () => {
        const v = await store.schemaVersion();
        assert.ok(v >= 1);
        assert.equal(await store.migrate(), v);
        assert.equal(await store.migrate(), v);
        assert.equal(await store.schemaVersion(), v);
        assert.ok(store.kind === 'sqlite' || store.kind === 'postgres');
        await store.ping();
      });

      it('a second open of the store is already migrated; a closed store refuses calls', async () => {
        const other = await open();
        assert.equal(await other.schemaVersion(), await store.schemaVersion());
        await other.close();
        await other.close();
        await assert.rejects(other.getSession('x'), isCode('ERR_STORE'));
      });
    });

    describe('sessions', () => {
      const full = (over: Partial<SessionRecord> = {}): SessionRecord => ({
        id: id('s'),
        protocol: 'postgres',
        connection: `conn-${u}`,
        issuer: 'https://issuer.example',
        subject: `agent-${u}`,
        clientId: 'client-1',
        tokenId: 'jti-1',
        groups: ['dev', 'ops'],
        remoteAddr: '127.0.0.1:5555',
        instance: 'gw-1',
        grantId: 'g-1',
        startedAt: 1_000,
        ...over,
      });

      it('creates and reads back a session with all fields, and one with only the required ones', async () => {
        const a = full();
        const b: SessionRecord = { id: id('s'), protocol: 'ssh', connection: 'c', issuer: 'i', subject: 's', groups: [], startedAt: 5 };
        await store.createSession(a);
        await store.createSession(b);
        assert.deepEqual(await store.getSession(a.id), a);
        assert.deepEqual(await store.getSession(b.id), b);
        assert.equal(await store.getSession(id('missing')), undefined);
      });

      it('refuses a duplicate id with ERR_CONFLICT', async () => {
        const a = full();
        await store.createSession(a);
        await assert.rejects(store.createSession(a), isCode('ERR_CONFLICT'));
      });

      it('ends a session once: the first end wins', async () => {
        const a = full();
        await store.createSession(a);
        await store.endSession(a.id, 2_000, 'client quit');
        await store.endSession(a.id, 3_000, 'kill');
        assert.deepEqual(await store.getSession(a.id), { ...a, endedAt: 2_000, endReason: 'client quit' });
      });

      it('lists with filters, newest first, with limit and before', async () => {
        const subject = `lister-${u}`;
        const connA = `connA-${u}`;
        const connB = `connB-${u}`;
        const s1 = full({ subject, connection: connA, protocol: 'postgres', startedAt: 100 });
        const s2 = full({ subject, connection: connB, protocol: 'mysql', startedAt: 200 });
        const s3 = full({ subject, connection: connA, protocol: 'ssh', startedAt: 300 });
        const other = full({ subject: `other-${u}`, connection: connA, startedAt: 400 });
        for (const s of [s2, s1, other, s3]) await store.createSession(s);
        await store.endSession(s2.id, 250, 'done');

        const ids = (list: SessionRecord[]) => list.map((s) => s.id);
        assert.deepEqual(ids(await store.listSessions({ subject })), [s3.id, s2.id, s1.id]);
        assert.deepEqual(ids(await store.listSessions({ subject, live: true })), [s3.id, s1.id]);
        assert.deepEqual(ids(await store.listSessions({ subject, live: false })), [s2.id]);
        assert.deepEqual(ids(await store.listSessions({ connection: connA })), [other.id, s3.id, s1.id]);
        assert.deepEqual(ids(await store.listSessions({ subject, connection: connA })), [s3.id, s1.id]);
        assert.deepEqual(ids(await store.listSessions({ subject, protocol: 'mysql' })), [s2.id]);
        assert.deepEqual(ids(await store.listSessions({ subject, limit: 2 })), [s3.id, s2.id]);
        assert.deepEqual(ids(await store.listSessions({ subject, before: 300 })), [s2.id, s1.id]);
        assert.deepEqual(ids(await store.listSessions({ subject, before: 300, limit: 1 })), [s2.id]);
        assert.deepEqual(await store.listSessions({ subject: `nobody-${u}` }), []);
        const listed = await store.listSessions({ subject, protocol: 'mysql' });
        assert.deepEqual(listed[0], { ...s2, endedAt: 250, endReason: 'done' });
      });
    });

    describe('audit', () => {
      const ev = (over: Partial<AuditEventInput> = {}): AuditEventInput => ({ ts: 1_700_000_000_000, type: 'command', data: { n: 1 }, ...over });
      const append = (input: AuditEventInput) => store.appendAudit(input, nextLink(input));

      it('appends gaplessly at the head and reads events back in seq order', async () => {
        const head0 = (await store.auditHead())?.seq ?? 0;
        const inputs = [
          ev({ sessionId: id('sess'), actor: 'agent-1', connection: 'db', data: { sql: 'SELECT 1', nested: { a: [1, 'two', null, true] } } }),
          ev({ type: 'session.start', data: {} }),
          ev({ data: { unicode: 'Grüße 😀', nul: 'a\u0000b' } }),
        ];
        const written: AuditEvent[] = [];
        for (const i of inputs) written.push(await append(i));
        assert.deepEqual(written.map((e) => e.seq), [head0 + 1, head0 + 2, head0 + 3]);
        assert.equal(written[1]!.prevHash, written[0]!.hash);
        assert.equal(written[2]!.prevHash, written[1]!.hash);
        assert.deepEqual(await store.auditHead(), { seq: head0 + 3, hash: written[2]!.hash });

        const read = await store.listAudit({ afterSeq: head0, limit: 3 });
        assert.deepEqual(read.slice(0, 2), written.slice(0, 2));
        assert.deepEqual(read[2], { ...written[2], data: { unicode: 'Grüße 😀', nul: 'a\ufffdb' } });
        assert.equal('sessionId' in read[1]!, false);
      });

      it('passes the current head to the builder and rejects a link that does not extend it, writing nothing', async () => {
        const before = await store.auditHead();
        const input = ev();
        let seen: AuditHead | undefined | null = null;
        await assert.rejects(
          store.appendAudit(input, (head) => {
            seen = head;
            return { seq: (head?.seq ?? 0) + 2, prevHash: head?.hash ?? ZERO, hash: 'x'.repeat(64) };
          }),
        );
        assert.deepEqual(seen, before);
        await assert.rejects(
          store.appendAudit(input, () => {
            throw new Error('builder failed');
          }),
        );
        assert.deepEqual(await store.auditHead(), before);
        assert.deepEqual(await store.listAudit({ afterSeq: before?.seq ?? 0 }), []);
      });

      it('appends a batch in one transaction, each link built on the one before, all or nothing', async () => {
        const before = await store.auditHead();
        const inputs = [ev({ data: { b: 1 } }), ev({ data: { b: 2 } }), ev({ data: { b: 3 } })];
        const heads: (AuditHead | undefined)[] = [];
        const written = await store.appendAuditBatch(inputs, (head, input) => {
          heads.push(head);
          return nextLink(input)(head);
        });
        assert.deepEqual(written.map((e) => e.data), [{ b: 1 }, { b: 2 }, { b: 3 }]);
        assert.deepEqual(heads[0], before);
        assert.equal(heads[1]!.hash, written[0]!.hash);
        assert.equal(written[2]!.prevHash, written[1]!.hash);
        assert.deepEqual(await store.auditHead(), { seq: written[2]!.seq, hash: written[2]!.hash });
        const after = await store.auditHead();
        await assert.rejects(
          store.appendAuditBatch([ev(), ev()], (head, input) => {
            if (head && head.seq > after!.seq) throw new Error('second link fails');
            return nextLink(input)(head);
          }),
        );
        assert.deepEqual(await store.auditHead(), after, 'a failed batch writes nothing');
      });

      it('filters by type, session, actor and connection, and pages with afterSeq + limit', async () => {
        const sessionId = id('sess');
        const actor = id('actor');
        const connection = id('conn');
        const type = id('type');
        const written: AuditEvent[] = [];
        for (let i = 0; i < 7; i++) {
          written.push(await append(ev({ type: i % 2 === 0 ? type : 'command', sessionId: i < 4 ? sessionId : undefined, actor: i >= 2 ? actor : undefined, connection: i === 5 ? connection : undefined, data: { i } })));
        }
        const seqs = (list: AuditEvent[]) => list.map((e) => e.seq);
        const s = written.map((e) => e.seq);
        assert.deepEqual(seqs(await store.listAudit({ type })), [s[0], s[2], s[4], s[6]]);
        assert.deepEqual(seqs(await store.listAudit({ sessionId })), s.slice(0, 4));
        assert.deepEqual(seqs(await store.listAudit({ actor })), s.slice(2));
        assert.deepEqual(seqs(await store.listAudit({ connection })), [s[5]]);
        assert.deepEqual(seqs(await store.listAudit({ type, sessionId })), [s[0], s[2]]);
        assert.deepEqual(seqs(await store.listAudit({ actor, afterSeq: s[4] })), [s[5], s[6]]);

        const paged: number[] = [];
        let after = s[0]! - 1;
        for (;;) {
          const page = await store.listAudit({ afterSeq: after, limit: 3, actor });
          if (page.length === 0) break;
          assert.ok(page.length <= 3);
          paged.push(...seqs(page));
          after = page[page.length - 1]!.seq;
        }
        assert.deepEqual(paged, s.slice(2));
      });

      it('never forks under many concurrent appends', async () => {
        const head0 = await store.auditHead();
        const n = 40;
        const written = await Promise.all(Array.from({ length: n }, (_, i) => append(ev({ data: { i } }))));
        const start = (head0?.seq ?? 0) + 1;
        assert.deepEqual(written.map((e) => e.seq).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => start + i));
        const chain = await store.listAudit({ afterSeq: start - 1, limit: n });
        assert.equal(chain.length, n);
        chain.forEach((e, i) => {
          assert.equal(e.seq, start + i);
          assert.equal(e.prevHash, i === 0 ? (head0?.hash ?? ZERO) : chain[i - 1]!.hash);
        });
        assert.deepEqual(await store.auditHead(), { seq: start + n - 1, hash: chain[n - 1]!.hash });
      });

      it('stores checkpoints and lists them in seq order', async () => {
        const keyId = id('key');
        const c2 = { seq: 1_000_002, hash: 'b'.repeat(64), ts: 20, keyId, signature: 'sig2' };
        const c1 = { seq: 1_000_001, hash: 'a'.repeat(64), ts: 10, keyId, signature: 'sig1' };
        await store.addCheckpoint(c2);
        await store.addCheckpoint(c1);
        const mine = (await store.listCheckpoints()).filter((c) => c.keyId === keyId);
        assert.deepEqual(mine, [c1, c2]);
      });
    });

    describe('reviews', () => {
      const review = (over: Partial<ReviewRecord> = {}): ReviewRecord => ({
        id: id('r'),
        state: 'pending',
        sessionId: 'sess-1',
        subject: `agent-${u}`,
        clientId: 'client-1',
        connection: `conn-${u}`,
        protocol: 'postgres',
        command: 'DELETE FROM users WHERE id = $1',
        fingerprint: id('fp'),
        rule: 'policy.yaml#3',
        ruleReason: 'deletes need a second pair of eyes',
        justification: 'cleanup of test user',
        approverGroups: ['dba'],
        approverSubjects: ['alice@example.com'],
        minApprovals: 1,
        approvals: [],
        createdAt: 1_000,
        ...over,
      });

      it('creates, reads back and lists by state, subject and connection, newest first', async () => {
        const subject = `rev-${u}`;
        const a = review({ subject, createdAt: 1 });
        const b = review({ subject, createdAt: 2, state: 'denied', decidedBy: 'bob', decisionReason: 'no', decidedAt: 3 });
        const c = review({ subject, createdAt: 3, connection: `other-${u}` });
        const minimal: ReviewRecord = {
          id: id('r'), state: 'pending', subject, connection: 'x', protocol: 'ssh', command: 'rm -rf /tmp/x', fingerprint: 'f', rule: 'p#1',
          approverGroups: [], approverSubjects: [], minApprovals: 2, approvals: [], createdAt: 0,
        };
        for (const r of [a, b, c, minimal]) await store.createReview(r);
        assert.deepEqual(await store.getReview(a.id), a);
        assert.deepEqual(await store.getReview(b.id), b);
        assert.deepEqual(await store.getReview(minimal.id), minimal);
        assert.equal(await store.getReview(id('missing')), undefined);
        await assert.rejects(store.createReview(a), isCode('ERR_CONFLICT'));

        const ids = (l: ReviewRecord[]) => l.map((r) => r.id);
        assert.deepEqual(ids(await store.listReviews({ subject })), [c.id, b.id, a.id, minimal.id]);
        assert.deepEqual(ids(await store.listReviews({ subject, state: 'pending' })), [c.id, a.id, minimal.id]);
        assert.deepEqual(ids(await store.listReviews({ subject, state: 'denied' })), [b.id]);
        assert.deepEqual(ids(await store.listReviews({ subject, connection: `conn-${u}` })), [b.id, a.id]);
        assert.deepEqual(ids(await store.listReviews({ subject, limit: 2 })), [c.id, b.id]);
        assert.ok(ids(await store.listReviews({ state: 'pending' })).includes(a.id));
      });

      it('updates by compare-and-set: succeeds once, fails once the state moved', async () => {
        const r = review();
        await store.createReview(r);
        const approval = { by: 'alice@example.com', at: 5_000, reason: 'ok' };
        const patch = { state: 'approved' as const, approvals: [approval], decidedBy: 'alice@example.com', decidedAt: 5_000, validUntil: 65_000, justification: undefined };
        const updated = await store.updateReview(r.id, 'pending', patch);
        const expected: ReviewRecord = { ...r, state: 'approved', approvals: [approval], decidedBy: 'alice@example.com', decidedAt: 5_000, validUntil: 65_000 };
        assert.deepEqual(updated, expected);
        assert.equal(await store.updateReview(r.id, 'pending', { state: 'denied' }), undefined);
        assert.deepEqual(await store.getReview(r.id), expected);

        const results = await Promise.all([
          store.updateReview(r.id, 'approved', { state: 'consumed' }),
          store.updateReview(r.id, 'approved', { state: 'consumed' }),
          store.updateReview(r.id, 'approved', { state: 'consumed' }),
        ]);
        assert.equal(results.filter((x) => x !== undefined).length, 1);
        assert.equal((await store.getReview(r.id))?.state, 'consumed');
        assert.equal(await store.updateReview(id('missing'), 'pending', { state: 'denied' }), undefined);
        assert.deepEqual(await store.updateReview(r.id, 'consumed', {}), { ...expected, state: 'consumed' });
      });

      it('finds an approved review only while valid and unconsumed, for the same subject, connection and fingerprint', async () => {
        const r = review({ state: 'approved', decidedAt: 1_000, validUntil: 2_000, approvals: [{ by: 'alice', at: 1_000 }] });
        await store.createReview(r);
        const find = (now: number, over: { subject?: string; connection?: string; fingerprint?: string } = {}) =>
          store.findApprovedReview(over.subject ?? r.subject, over.connection ?? r.connection, over.fingerprint ?? r.fingerprint, now);

        assert.deepEqual(await find(1_500), r);
        assert.deepEqual(await find(2_000), r);
        assert.equal(await find(2_001), undefined);
        assert.equal(await find(1_500, { fingerprint: 'other' }), undefined);
        assert.equal(await find(1_500, { subject: 'other' }), undefined);
        assert.equal(await find(1_500, { connection: 'other' }), undefined);

        const pending = review({ fingerprint: r.fingerprint, validUntil: 2_000 });
        const noExpiry = review({ fingerprint: r.fingerprint, state: 'approved' });
        await store.createReview(pending);
        await store.createReview(noExpiry);
        assert.ok(await store.updateReview(r.id, 'approved', { state: 'consumed' }));
        assert.equal(await find(1_500), undefined);
      });
    });

    describe('grants', () => {
      const grant = (over: Partial<GrantRecord> = {}): GrantRecord => ({
        id: id('g'),
        state: 'pending',
        subject: `agent-${u}`,
        clientId: 'client-1',
        connection: `conn-${u}`,
        reason: 'incident 42',
        durationMs: 3_600_000,
        requestedAt: 1_000,
        ...over,
      });

      it('creates, reads back, lists with filters newest first, and updates by compare-and-set', async () => {
        const subject = `grantee-${u}`;
        const a = grant({ subject, requestedAt: 1 });
        const b = grant({ subject, requestedAt: 2, connection: `other-${u}` });
        const minimal: GrantRecord = { id: id('g'), state: 'pending', subject, connection: 'x', reason: '', durationMs: 1, requestedAt: 0 };
        for (const g of [a, b, minimal]) await store.createGrant(g);
        assert.deepEqual(await store.getGrant(a.id), a);
        assert.deepEqual(await store.getGrant(minimal.id), minimal);
        assert.equal(await store.getGrant(id('missing')), undefined);
        await assert.rejects(store.createGrant(a), isCode('ERR_CONFLICT'));

        const ids = (l: GrantRecord[]) => l.map((g) => g.id);
        assert.deepEqual(ids(await store.listGrants({ subject })), [b.id, a.id, minimal.id]);
        assert.deepEqual(ids(await store.listGrants({ subject, connection: `conn-${u}` })), [a.id]);
        assert.deepEqual(ids(await store.listGrants({ subject, limit: 1 })), [b.id]);

        const approved = await store.updateGrant(a.id, 'pending', { state: 'approved', decidedBy: 'alice', decidedAt: 10, startsAt: 10, endsAt: 20 });
        assert.deepEqual(approved, { ...a, state: 'approved', decidedBy: 'alice', decidedAt: 10, startsAt: 10, endsAt: 20 });
        assert.equal(await store.updateGrant(a.id, 'pending', { state: 'denied' }), undefined);
        assert.deepEqual(ids(await store.listGrants({ subject, state: 'approved' })), [a.id]);
        assert.deepEqual(ids(await store.listGrants({ subject, state: 'pending' })), [b.id, minimal.id]);
      });

      it('finds the active grant: window start inclusive, end exclusive, approved only', async () => {
        const g = grant({ state: 'approved', startsAt: 10_000, endsAt: 20_000 });
        await store.createGrant(g);
        await store.createGrant(grant({ state: 'pending', startsAt: 0, endsAt: 100_000 }));
        await store.createGrant(grant({ state: 'denied', startsAt: 0, endsAt: 100_000 }));
        const active = (now: number, connection = g.connection) => store.activeGrant(g.subject, connection, now);

        assert.equal(await active(9_999), undefined);
        assert.deepEqual(await active(10_000), g);
        assert.deepEqual(await active(19_999), g);
        assert.equal(await active(20_000), undefined);
        assert.equal(await active(15_000, 'elsewhere'), undefined);
        assert.equal(await store.activeGrant('someone-else', g.connection, 15_000), undefined);

        const longer = grant({ state: 'approved', startsAt: 12_000, endsAt: 30_000 });
        await store.createGrant(longer);
        assert.equal((await active(15_000))?.id, longer.id);
        assert.equal((await active(11_000))?.id, g.id);

        assert.ok(await store.updateGrant(longer.id, 'approved', { state: 'revoked', revokedBy: 'bob', revokedAt: 14_000 }));
        assert.equal((await active(15_000))?.id, g.id);
        assert.equal(await active(25_000), undefined);
      });
    });

    describe('revocations', () => {
      it('adds, lists, and removes', async () => {
        const a: RevocationRecord = { id: id('rv'), kind: 'subject', value: `agent-${u}`, reason: 'compromised', createdBy: 'alice', createdAt: 1 };
        const b: RevocationRecord = { id: id('rv'), kind: 'token_id', value: 'jti-9', createdBy: 'bob', createdAt: 2, expiresAt: 99 };
        await store.addRevocation(b);
        await store.addRevocation(a);
        await assert.rejects(store.addRevocation(a), isCode('ERR_CONFLICT'));
        const mine = () => store.listRevocations().then((l) => l.filter((r) => r.id === a.id || r.id === b.id));
        assert.deepEqual(await mine(), [a, b]);
        assert.equal(await store.removeRevocation(a.id), true);
        assert.equal(await store.removeRevocation(a.id), false);
        assert.deepEqual(await mine(), [b]);
      });
    });

    describe('recordings', () => {
      const rec = (sessionId: string, seq: number, over: Partial<RecordingEvent> = {}): RecordingEvent => ({ sessionId, seq, t: seq * 10.5, type: 'o', data: { d: `out ${seq}` }, ...over });

      it('appends batches and reads them in seq order with afterSeq and limit', async () => {
        const s = id('rs');
        const other = id('rs');
        await store.appendRecording([rec(s, 1, { type: 'statement', data: { sql: 'SELECT 1', params: [1, 'x'] } }), rec(s, 3), rec(s, 2)]);
        await store.appendRecording([]);
        await store.appendRecording([rec(s, 4), rec(s, 5), rec(other, 1)]);
        const seqs = (l: RecordingEvent[]) => l.map((e) => e.seq);
        const all = await store.readRecording(s);
        assert.deepEqual(seqs(all), [1, 2, 3, 4, 5]);
        assert.deepEqual(all[0], rec(s, 1, { type: 'statement', data: { sql: 'SELECT 1', params: [1, 'x'] } }));
        assert.deepEqual(all[2], rec(s, 3));
        assert.deepEqual(seqs(await store.readRecording(s, 2)), [3, 4, 5]);
        assert.deepEqual(seqs(await store.readRecording(s, 0, 2)), [1, 2]);
        assert.deepEqual(seqs(await store.readRecording(s, 2, 2)), [3, 4]);
        assert.deepEqual(seqs(await store.readRecording(s, 5)), []);
        assert.deepEqual(await store.readRecording(other), [rec(other, 1)]);
        assert.deepEqual(await store.readRecording(id('none')), []);
      });

      it('writes a batch atomically: a duplicate seq rejects the whole batch', async () => {
        const s = id('rs');
        await store.appendRecording([rec(s, 1)]);
        await assert.rejects(store.appendRecording([rec(s, 2), rec(s, 1)]), isCode('ERR_CONFLICT'));
        assert.deepEqual((await store.readRecording(s)).map((e) => e.seq), [1]);
      });
    });

    describe('events', () => {
      it('delivers a published payload to subscribers of its topic, exactly once each', async () => {
        const marker = id('ev');
        const a = collect(store, 'review', 3);
        const b = collect(store, 'review', 3);
        let grants = 0;
        const offGrant = store.events.subscribe('grant', () => grants++);
        const policy = collect(store, 'policy', 1);
        for (let i = 0; i < 3; i++) await store.events.publish('review', { marker, i, nested: { ok: true } });
        await store.events.publish('policy', { marker });
        const [gotA, gotB, gotPolicy] = await Promise.all([a.done, b.done, policy.done]);
        const expected = [0, 1, 2].map((i) => ({ marker, i, nested: { ok: true } }));
        assert.deepEqual(gotA, expected);
        assert.deepEqual(gotB, expected);
        assert.deepEqual(gotPolicy, [{ marker }]);
        assert.equal(grants, 0);
        gotA[0]!.marker = 'mutated';
        assert.equal(gotB[0]!.marker, marker);
        for (const x of [a, b, policy]) x.unsubscribe();
        offGrant();
      });

      it('stops delivering after unsubscribe and isolates a throwing handler', async () => {
        let removed = 0;
        const off = store.events.subscribe('revocation', () => removed++);
        store.events.subscribe('revocation', () => {
          throw new Error('handler bug');
        })();
        const throwing = store.events.subscribe('revocation', () => {
          throw new Error('handler bug');
        });
        off();
        const kept = collect(store, 'revocation', 2);
        await store.events.publish('revocation', { n: 1 });
        await store.events.publish('revocation', { n: 2 });
        assert.deepEqual(await kept.done, [{ n: 1 }, { n: 2 }]);
        assert.equal(removed, 0);
        kept.unsubscribe();
        throwing();
      });

      it('refuses an oversized payload', async () => {
        await assert.rejects(store.events.publish('session.kill', { blob: 'x'.repeat(10_000) }), isCode('ERR_STORE'));
      });
    });
  });
}
