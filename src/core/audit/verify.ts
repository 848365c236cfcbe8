/**
 * Verification of the audit chain (`gatehouse audit verify`). See ./audit-log.ts for the format.
 */
import { verify as verifySignature } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { AuditCheckpoint, AuditEvent, Store } from '../../store/store.js';
import type { Ed25519PublicKeyInput } from './audit-log.js';
import { GENESIS_HASH, checkpointBytes, hashAuditEvent, loadVerifyKey } from './audit-log.js';

export interface AuditVerifyOptions {
  /** Ed25519 key the checkpoints were signed with. Without it, checkpoint signatures are not checked (their hashes still are). */
  publicKey?: Ed25519PublicKeyInput;
  /** Events read per store query. Default 1000. */
  batch?: number;
}

export interface AuditVerifyResult {
  /** True when every event and checkpoint checked out. */
  ok: boolean;
  /** Events verified intact (up to the first break). */
  events: number;
  /** Checkpoints verified (up to the first break). */
  checkpoints: number;
  /** The first seq at which the chain is broken, and why. */
  firstBroken?: { seq: number; reason: string };
}

/**
 * Walks the whole chain in seq order, in batches, and stops at the first break. Checks that seqs
 * run 1, 2, 3, … without gaps; that each `prevHash` is the previous event's `hash` (64 zeros for
 * the first); that each `hash` recomputes from the event's content; that every checkpoint's hash
 * equals the hash of the event at its seq and (with `publicKey`) that its signature is valid; and
 * that the log still reaches the chain head read before the walk and every checkpoint (a
 * truncated tail is reported). Events appended while it runs are verified too.
 *
 * @throws GatehouseError `ERR_CONFIG` for an unusable key, `ERR_STORE` when the store fails.
 */
export async function verifyAudit(store: Store, opts: AuditVerifyOptions = {}): Promise<AuditVerifyResult> {
  const key = opts.publicKey === undefined ? undefined : loadVerifyKey(opts.publicKey);
  const batch = Math.max(1, Math.floor(opts.batch ?? 1000));
  const checkpoints = await store.listCheckpoints();
  const head = await store.auditHead();
  const bySeq = new Map<number, AuditCheckpoint[]>();
  for (const c of checkpoints) bySeq.set(c.seq, [...(bySeq.get(c.seq) ?? []), c]);

  let events = 0;
  let verified = 0;
  const broken = (seq: number, reason: string): AuditVerifyResult => ({ ok: false, events, checkpoints: verified, firstBroken: { seq, reason } });
  let prev: Pick<AuditEvent, 'seq' | 'hash'> = { seq: 0, hash: GENESIS_HASH };

  for (;;) {
    const page = await store.listAudit({ afterSeq: prev.seq, limit: batch });
    for (const e of page) {
      const expected = prev.seq + 1;
      if (e.seq !== expected) return broken(expected, `event missing (the next stored event is seq ${e.seq})`);
      if (e.prevHash !== prev.hash) return broken(e.seq, 'prevHash does not match the hash of the previous event');
      if (hashAuditEvent(e.prevHash, e) !== e.hash) return broken(e.seq, 'hash does not match the event content (event altered)');
      if (head && e.seq === head.seq && e.hash !== head.hash) return broken(e.seq, 'hash does not match the recorded chain head');
      for (const c of bySeq.get(e.seq) ?? []) {
        const problem = checkCheckpoint(c, e, key);
        if (problem) return broken(e.seq, problem);
        verified++;
      }
      events++;
      prev = e;
    }
    if (page.length < batch) break;
  }

  if (head && prev.seq < head.seq) return broken(prev.seq + 1, `events ${prev.seq + 1}..${head.seq} missing (log truncated below the chain head)`);
  const beyond = checkpoints.find((c) => c.seq > prev.seq || c.seq < 1);
  if (beyond) return broken(beyond.seq, 'checkpoint refers to an event that does not exist (log truncated)');
  return { ok: true, events, checkpoints: verified };
}

function checkCheckpoint(c: AuditCheckpoint, e: AuditEvent, key: KeyObject | undefined): string | undefined {
  if (c.hash !== e.hash) return `checkpoint (key ${c.keyId}) hash does not match the event`;
  if (!key) return undefined;
  let ok = false;
  try {
    ok = verifySignature(null, checkpointBytes(c), key, Buffer.from(c.signature, 'base64url'));
  } catch {
    ok = false;
  }
  return ok ? undefined : `checkpoint (key ${c.keyId}) signature is invalid`;
}
