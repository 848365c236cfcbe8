/**
 * Just-in-time access grants and revocations.
 *
 * A grant is a window (subject × connection × [start, end]) an agent requests and an approver
 * approves. Policies with `require_grant: true` refuse sessions without an active grant; a session
 * opened under a grant ends when the grant ends or is revoked (the session manager listens for
 * `grant` store events, on every instance). A revocation refuses a subject, client id or token id
 * from now on and ends its live sessions.
 */
import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import type { Identity } from '../identity/types.js';
import type { Connection } from '../sessions/types.js';
import type { AuditEventInput, GrantRecord, RevocationKind, RevocationRecord, Store } from '../../store/store.js';
import type { NotificationEvent } from './webhooks.js';

export interface GrantServiceOptions {
  store: Store;
  audit: { record(input: AuditEventInput): void };
  notify: (e: NotificationEvent) => void;
  connection: (name: string) => Connection | undefined;
  /** Longest grant for connections without their own `max_grant`. */
  defaultMaxMs: number;
  link?: (id: string) => string | undefined;
  now?: () => number;
}

export class GrantService {
  readonly #o: GrantServiceOptions;
  readonly #expiryTimers = new Map<string, NodeJS.Timeout>();

  constructor(o: GrantServiceOptions) {
    this.#o = o;
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  /** The longest grant that may be approved for `connection`. */
  maxDuration(connection: string): number {
    const c = this.#o.connection(connection);
    const own = c?.options.maxGrantMs;
    return typeof own === 'number' ? own : this.#o.defaultMaxMs;
  }

  async request(requester: Identity, connection: string, durationMs: number, reason: string): Promise<GrantRecord> {
    if (!this.#o.connection(connection)) throw new GatehouseError('ERR_NOT_FOUND', `no connection "${connection}"`);
    if (!Number.isFinite(durationMs) || durationMs <= 0) throw new GatehouseError('ERR_BAD_REQUEST', 'duration must be positive');
    const max = this.maxDuration(connection);
    if (durationMs > max) throw new GatehouseError('ERR_BAD_REQUEST', `the longest grant for "${connection}" is ${Math.floor(max / 60_000)} minutes`);
    if (reason.trim() === '') throw new GatehouseError('ERR_BAD_REQUEST', 'a reason is required');
    const now = this.#now();
    const g: GrantRecord = {
      id: randomUUID(),
      state: 'pending',
      subject: requester.subject,
      ...(requester.clientId === undefined ? {} : { clientId: requester.clientId }),
      connection,
      reason,
      durationMs,
      requestedAt: now,
    };
    await this.#o.store.createGrant(g);
    this.#audit('grant.requested', g, requester.subject, { duration_ms: durationMs, reason });
    await this.#o.store.events.publish('grant', { id: g.id, state: g.state });
    const url = this.#o.link?.(g.id);
    this.#o.notify({ type: 'grant.requested', id: g.id, subject: g.subject, connection, summary: `${Math.round(durationMs / 60_000)} min: ${reason}`, at: now, ...(url ? { url } : {}) });
    return g;
  }

  async approve(id: string, approver: Identity, reason?: string): Promise<GrantRecord> {
    const g = await this.#pending(id, approver);
    const now = this.#now();
    const updated = await this.#o.store.updateGrant(id, 'pending', { state: 'approved', decidedBy: approver.subject, decidedAt: now, startsAt: now, endsAt: now + g.durationMs, ...(reason ? { decisionReason: reason } : {}) });
    if (!updated) throw new GatehouseError('ERR_CONFLICT', `grant ${id} is no longer pending`);
    this.#audit('grant.approved', updated, approver.subject, { reason: reason ?? null, ends_at: updated.endsAt ?? null });
    await this.#o.store.events.publish('grant', { id, state: 'approved' });
    this.#scheduleExpiry(updated);
    this.#o.notify({ type: 'grant.approved', id, subject: g.subject, connection: g.connection, summary: g.reason, actor: approver.subject, at: now, ...(reason ? { reason } : {}) });
    return updated;
  }

  async deny(id: string, approver: Identity, reason?: string): Promise<GrantRecord> {
    const g = await this.#pending(id, approver);
    const now = this.#now();
    const updated = await this.#o.store.updateGrant(id, 'pending', { state: 'denied', decidedBy: approver.subject, decidedAt: now, ...(reason ? { decisionReason: reason } : {}) });
    if (!updated) throw new GatehouseError('ERR_CONFLICT', `grant ${id} is no longer pending`);
    this.#audit('grant.denied', updated, approver.subject, { reason: reason ?? null });
    await this.#o.store.events.publish('grant', { id, state: 'denied' });
    this.#o.notify({ type: 'grant.denied', id, subject: g.subject, connection: g.connection, summary: g.reason, actor: approver.subject, at: now, ...(reason ? { reason } : {}) });
    return updated;
  }

  /** Ends an approved grant (or withdraws a pending one); its sessions end within a second. */
  async revoke(id: string, by: Identity, reason?: string): Promise<GrantRecord> {
    const g = await this.#o.store.getGrant(id);
    if (!g) throw new GatehouseError('ERR_NOT_FOUND', `no grant ${id}`);
    if (g.state !== 'approved' && g.state !== 'pending') throw new GatehouseError('ERR_CONFLICT', `grant ${id} is ${g.state}`);
    const now = this.#now();
    const updated = await this.#o.store.updateGrant(id, g.state, { state: 'revoked', revokedBy: by.subject, revokedAt: now, ...(g.state === 'approved' && g.endsAt !== undefined && g.endsAt > now ? { endsAt: now } : {}) });
    if (!updated) throw new GatehouseError('ERR_CONFLICT', `grant ${id} changed; try again`);
    this.#clearExpiry(id);
    this.#audit('grant.revoked', updated, by.subject, { reason: reason ?? null });
    await this.#o.store.events.publish('grant', { id, state: 'revoked' });
    this.#o.notify({ type: 'grant.revoked', id, subject: g.subject, connection: g.connection, summary: g.reason, actor: by.subject, at: now, ...(reason ? { reason } : {}) });
    return updated;
  }

  /** Marks approved grants whose window has passed as `expired` (and tells every instance). */
  async expireDue(): Promise<number> {
    const now = this.#now();
    let n = 0;
    for (const g of await this.#o.store.listGrants({ state: 'approved' })) {
      if (g.endsAt !== undefined && g.endsAt <= now) {
        const u = await this.#o.store.updateGrant(g.id, 'approved', { state: 'expired' });
        if (u) {
          n++;
          this.#audit('grant.expired', u, 'system', {});
          await this.#o.store.events.publish('grant', { id: g.id, state: 'expired' });
        }
      } else if (g.endsAt !== undefined) this.#scheduleExpiry(g);
    }
    return n;
  }

  #scheduleExpiry(g: GrantRecord): void {
    if (g.endsAt === undefined || this.#expiryTimers.has(g.id)) return;
    const delay = Math.max(0, Math.min(g.endsAt - this.#now(), 2_147_483_647));
    this.#expiryTimers.set(
      g.id,
      setTimeout(() => {
        this.#expiryTimers.delete(g.id);
        void this.expireDue().catch(() => undefined);
      }, delay + 10).unref(),
    );
  }

  #clearExpiry(id: string): void {
    const t = this.#expiryTimers.get(id);
    if (t) clearTimeout(t);
    this.#expiryTimers.delete(id);
  }

  close(): void {
    for (const t of this.#expiryTimers.values()) clearTimeout(t);
    this.#expiryTimers.clear();
  }

  async #pending(id: string, approver: Identity): Promise<GrantRecord> {
    const g = await this.#o.store.getGrant(id);
    if (!g) throw new GatehouseError('ERR_NOT_FOUND', `no grant ${id}`);
    if (g.state !== 'pending') throw new GatehouseError('ERR_CONFLICT', `grant ${id} is ${g.state}, not pending`);
    if (g.subject === approver.subject || (g.clientId !== undefined && g.clientId === approver.clientId)) {
      throw new GatehouseError('ERR_FORBIDDEN', 'nobody approves their own request');
    }
    return g;
  }

  // --- revocations ---------------------------------------------------------------------------

  async revokeIdentity(kind: RevocationKind, value: string, by: Identity, reason?: string, expiresAt?: number): Promise<RevocationRecord> {
    if (value.trim() === '') throw new GatehouseError('ERR_BAD_REQUEST', `${kind} must not be empty`);
    const r: RevocationRecord = { id: randomUUID(), kind, value, createdBy: by.subject, createdAt: this.#now(), ...(reason ? { reason } : {}), ...(expiresAt ? { expiresAt } : {}) };
    await this.#o.store.addRevocation(r);
    this.#o.audit.record({ ts: r.createdAt, type: 'revocation.created', actor: by.subject, data: { revocation: r.id, kind, value, reason: reason ?? null } });
    await this.#o.store.events.publish('revocation', { id: r.id, action: 'added' });
    return r;
  }

  async removeRevocation(id: string, by: Identity): Promise<void> {
    if (!(await this.#o.store.removeRevocation(id))) throw new GatehouseError('ERR_NOT_FOUND', `no revocation ${id}`);
    this.#o.audit.record({ ts: this.#now(), type: 'revocation.removed', actor: by.subject, data: { revocation: id } });
    await this.#o.store.events.publish('revocation', { id, action: 'removed' });
  }

  #audit(type: string, g: GrantRecord, actor: string, data: Record<string, unknown>): void {
    this.#o.audit.record({ ts: this.#now(), type, actor, connection: g.connection, data: { grant: g.id, subject: g.subject, ...data } });
  }
}
