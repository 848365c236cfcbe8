/**
 * Reviews: commands held for a human approver. Per statement, per Kubernetes request, per SSH exec.
 *
 * A `review` decision creates a pending review and holds the command (the engine tells the agent it
 * is waiting) until it is approved (the command runs), denied (the agent gets the approver's reason)
 * or the hold times out. A review approved after its hold timed out lets the identical command
 * (same subject, connection and normalized text) run once within `valid_for`. Nobody approves their
 * own request; a rule can ask for several approvers (`min_approvals`) and for the agent's
 * justification (`require_reason`), given per protocol (SQL: `SET gatehouse.reason = '…'`;
 * Kubernetes: the `X-Gatehouse-Reason` header; SSH: the `GATEHOUSE_REASON` environment variable).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Command } from '../command.js';
import { commandText } from '../command.js';
import { GatehouseError } from '../errors.js';
import type { Identity } from '../identity/types.js';
import type { Logger } from '../log.js';
import type { CommandDecision, Decision } from '../policy/types.js';
import type { ReviewGate } from '../sessions/manager.js';
import type { SessionContext } from '../sessions/types.js';
import type { AuditEventInput, ReviewRecord, Store } from '../../store/store.js';
import type { NotificationEvent } from './webhooks.js';

export interface ReviewServiceOptions {
  store: Store;
  audit: { record(input: AuditEventInput): void };
  logger: Logger;
  notify: (e: NotificationEvent) => void;
  holdTimeoutMs: number;
  validForMs: number;
  /** Console link for a review, if a public URL is configured. */
  link?: (id: string) => string | undefined;
  now?: () => number;
}

/** The normalized form two commands must share for an approval to carry over: kind + collapsed text. */
export function commandFingerprint(cmd: Command): string {
  const text = commandText(cmd).replace(/\s+/g, ' ').trim().replace(/;\s*$/, '');
  const head = cmd.kind === 'sql' ? `sql:${cmd.dialect}` : cmd.kind;
  return createHash('sha256').update(`${head}\n${text}`).digest('hex');
}

function ruleId(d: Extract<Decision, { effect: 'review' }>): string {
  return `${d.rule.policy}#${d.rule.index}`;
}

/** The core of reviews: hold, approve, deny. One per gateway instance; state lives in the store. */
export class ReviewService implements ReviewGate {
  readonly #o: ReviewServiceOptions;
  /** Holds waiting on this instance, by review id. */
  readonly #waiting = new Map<string, () => void>();
  readonly #unsubscribe: () => void;

  constructor(o: ReviewServiceOptions) {
    this.#o = o;
    this.#unsubscribe = o.store.events.subscribe('review', (p) => {
      if (typeof p.id === 'string') this.#waiting.get(p.id)?.();
    });
  }

  close(): void {
    this.#unsubscribe();
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  async hold(session: SessionContext, cmd: Command, d: CommandDecision, notify: (msg: string) => void, signal: AbortSignal): Promise<CommandDecision> {
    if (d.effect !== 'review') return d;
    const { store } = this.#o;
    const subject = session.identity.subject;
    const connection = session.connection.name;
    const fingerprint = commandFingerprint(cmd);
    const allow = (review: ReviewRecord): CommandDecision => ({ effect: 'allow', rule: d.rule, masks: d.masks, ...(d.statements ? { statements: d.statements.map((s) => (s.effect === 'review' ? { effect: 'allow' as const, rule: s.rule, masks: s.masks } : s)) } : {}), reviewId: review.id } as CommandDecision);

    // An approval that arrived after an earlier hold timed out: the identical command runs once.
    const earlier = await store.findApprovedReview(subject, connection, fingerprint, this.#now());
    if (earlier) {
      const used = await store.updateReview(earlier.id, 'approved', { state: 'consumed' });
      if (used) {
        this.#audit('review.consumed', used, subject, { session: session.id });
        notify(`review ${used.id} was approved by ${used.decidedBy ?? 'an approver'}; running the command`);
        return allow(used);
      }
    }

    const justification = session.justification;
    if (d.approvers.requireReason && !justification) {
      return {
        effect: 'deny',
        rule: d.rule,
        reason: `this command needs approval and the approvers ask for a justification first (SQL: SET gatehouse.reason = '…'; Kubernetes: header X-Gatehouse-Reason; SSH: GATEHOUSE_REASON)`,
        code: 'ERR_REVIEW_REQUIRED',
      };
    }

    const now = this.#now();
    const review: ReviewRecord = {
      id: randomUUID(),
      state: 'pending',
      sessionId: session.id,
      subject,
      ...(session.identity.clientId === undefined ? {} : { clientId: session.identity.clientId }),
      connection,
      protocol: session.protocol,
      command: session.masker.maskForLog(commandText(cmd)),
      fingerprint,
      rule: ruleId(d),
      ...(d.reason ? { ruleReason: d.reason } : {}),
      ...(justification ? { justification: session.masker.maskForLog(justification) } : {}),
      approverGroups: d.approvers.groups,
      approverSubjects: d.approvers.subjects,
      minApprovals: d.approvers.minApprovals,
      approvals: [],
      createdAt: now,
    };
    await store.createReview(review);
    this.#audit('review.created', review, subject, { session: session.id, command: review.command, rule: review.rule, justification: review.justification ?? null });
    await store.events.publish('review', { id: review.id, state: 'pending' });
    const url = this.#o.link?.(review.id);
    this.#o.notify({ type: 'review.created', id: review.id, subject, connection, summary: review.command, at: now, ...(url ? { url } : {}), ...(d.reason ? { reason: d.reason } : {}) });
    const seconds = Math.round(this.#o.holdTimeoutMs / 1000);
    notify(`waiting up to ${seconds}s for approval of review ${review.id} (rule ${review.rule}${d.reason ? `: ${d.reason}` : ''}); an approver runs: gatehouse reviews approve ${review.id}`);

    const outcome = await this.#wait(review.id, signal);
    if (outcome === 'aborted') return { effect: 'deny', rule: d.rule, reason: `session ended while review ${review.id} was pending`, code: 'ERR_SESSION_ENDED' };
    const r = await store.getReview(review.id);
    if (r?.state === 'approved') {
      const used = await store.updateReview(r.id, 'approved', { state: 'consumed' });
      if (used) {
        this.#audit('review.consumed', used, subject, { session: session.id });
        return allow(used);
      }
    }
    if (r?.state === 'denied') {
      return { effect: 'deny', rule: d.rule, reason: `review ${r.id} was denied by ${r.decidedBy ?? 'an approver'}${r.decisionReason ? `: ${r.decisionReason}` : ''}`, code: 'ERR_REVIEW_DENIED' };
    }
    const valid = Math.round(this.#o.validForMs / 60_000);
    return {
      effect: 'deny',
      rule: d.rule,
      reason: `review ${review.id} is still pending after ${seconds}s; once it is approved, the identical command will be allowed once within ${valid} minute${valid === 1 ? '' : 's'} of the approval`,
      code: 'ERR_REVIEW_TIMEOUT',
    };
  }

  /** Resolves when the review leaves `pending`, the hold times out, or `signal` aborts. */
  async #wait(id: string, signal: AbortSignal): Promise<'changed' | 'timeout' | 'aborted'> {
    const { store } = this.#o;
    const deadline = this.#now() + this.#o.holdTimeoutMs;
    for (;;) {
      const r = await store.getReview(id);
      if (r && r.state !== 'pending') return 'changed';
      if (signal.aborted) return 'aborted';
      const left = deadline - this.#now();
      if (left <= 0) return 'timeout';
      // Woken by the store event for this review (any instance); polls every 5 s in case one is lost.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          this.#waiting.delete(id);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 5000));
        signal.addEventListener('abort', done, { once: true });
        this.#waiting.set(id, done);
      });
    }
  }

  /**
   * Records `approver`'s approval. Throws `ERR_NOT_FOUND`, `ERR_CONFLICT` (not pending),
   * `ERR_FORBIDDEN` (own request, not an approver the rule names, approved twice).
   */
  async approve(id: string, approver: Identity, reason?: string): Promise<ReviewRecord> {
    const { store } = this.#o;
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await this.#pending(id, approver);
      if (r.approvals.some((a) => a.by === approver.subject)) throw new GatehouseError('ERR_FORBIDDEN', `${approver.subject} has already approved review ${id}`);
      const now = this.#now();
      const approvals = [...r.approvals, { by: approver.subject, at: now, ...(reason ? { reason } : {}) }];
      const done = approvals.length >= r.minApprovals;
      const patch: Partial<ReviewRecord> = done ? { state: 'approved', approvals, decidedBy: approvals.map((a) => a.by).join(', '), decidedAt: now, validUntil: now + this.#o.validForMs, ...(reason ? { decisionReason: reason } : {}) } : { approvals };
      const updated = await store.updateReview(id, 'pending', patch);
      if (!updated || updated.approvals.length !== approvals.length) continue;
      this.#audit(done ? 'review.approved' : 'review.approval', updated, approver.subject, { reason: reason ?? null, approvals: approvals.length, needed: r.minApprovals });
      await store.events.publish('review', { id, state: updated.state });
      if (done) this.#o.notify({ type: 'review.approved', id, subject: r.subject, connection: r.connection, summary: r.command, actor: approver.subject, at: now, ...(reason ? { reason } : {}) });
      return updated;
    }
    throw new GatehouseError('ERR_CONFLICT', `review ${id} changed while it was being approved; try again`);
  }

  /** Denies a pending review. Same errors as {@link approve}. */
  async deny(id: string, approver: Identity, reason?: string): Promise<ReviewRecord> {
    const r = await this.#pending(id, approver);
    const now = this.#now();
    const updated = await this.#o.store.updateReview(id, 'pending', { state: 'denied', decidedBy: approver.subject, decidedAt: now, ...(reason ? { decisionReason: reason } : {}) });
    if (!updated) throw new GatehouseError('ERR_CONFLICT', `review ${id} is no longer pending`);
    this.#audit('review.denied', updated, approver.subject, { reason: reason ?? null });
    await this.#o.store.events.publish('review', { id, state: 'denied' });
    this.#o.notify({ type: 'review.denied', id, subject: r.subject, connection: r.connection, summary: r.command, actor: approver.subject, at: now, ...(reason ? { reason } : {}) });
    return updated;
  }

  async #pending(id: string, approver: Identity): Promise<ReviewRecord> {
    const r = await this.#o.store.getReview(id);
    if (!r) throw new GatehouseError('ERR_NOT_FOUND', `no review ${id}`);
    if (r.state !== 'pending') throw new GatehouseError('ERR_CONFLICT', `review ${id} is ${r.state}, not pending`);
    if (r.subject === approver.subject || (r.clientId !== undefined && r.clientId === approver.clientId)) {
      throw new GatehouseError('ERR_FORBIDDEN', 'nobody approves their own request');
    }
    const named = r.approverGroups.length > 0 || r.approverSubjects.length > 0;
    if (named && !r.approverSubjects.includes(approver.subject) && !r.approverGroups.some((g) => approver.groups.includes(g))) {
      throw new GatehouseError('ERR_FORBIDDEN', `review ${id} needs an approver from ${[...r.approverGroups.map((g) => `group ${g}`), ...r.approverSubjects.map((s) => `subject ${s}`)].join(', ')}`);
    }
    return r;
  }

  #audit(type: string, r: ReviewRecord, actor: string, data: Record<string, unknown>): void {
    this.#o.audit.record({ ts: this.#now(), type, ...(r.sessionId ? { sessionId: r.sessionId } : {}), actor, connection: r.connection, data: { review: r.id, subject: r.subject, ...data } });
  }
}
