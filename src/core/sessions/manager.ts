import { randomUUID } from 'node:crypto';
import type { Command } from '../command.js';
import { commandText } from '../command.js';
import { BUILTIN_REASON_RULE, sqlJustification } from '../approvals/justification.js';
import { GatehouseError } from '../errors.js';
import type { Identity } from '../identity/types.js';
import type { Logger } from '../log.js';
import type { Masker } from '../masking/types.js';
import type { CommandDecision, MaskPlan } from '../policy/types.js';
import type { AuditEventInput, GrantRecord, RecordingEvent, RevocationRecord, SessionRecord, Store } from '../../store/store.js';
import type { Connection, SessionContext, SessionEvent } from './types.js';

/** What the session manager needs from the policy engine. */
export interface PolicyDecider {
  decide(identity: Identity, connection: string, cmd: Command, now?: Date): CommandDecision;
  canConnect(identity: Identity, connection: string, now?: Date): { ok: boolean; requireGrant: boolean; reason?: string };
  maskPlan(identity: Identity, connection: string, now?: Date): MaskPlan;
}

/** Review holds (the approvals module). Without one, a `review` decision is refused. */
export interface ReviewGate {
  hold(session: SessionContext, cmd: Command, d: CommandDecision, notify: (msg: string) => void, signal: AbortSignal): Promise<CommandDecision>;
}

export interface SessionManagerOptions {
  store: Store;
  /** Returns the policy engine in force (policies can be reloaded). */
  policy: () => PolicyDecider;
  audit: { record(input: AuditEventInput): void };
  revocations: { has(identity: Identity): RevocationRecord | undefined };
  masker: (plan: MaskPlan) => Masker;
  logger: Logger;
  instanceId: string;
  reviews?: ReviewGate;
  /** Hard cap on a session's length, ms. */
  maxDurationMs?: number;
  recording?: boolean;
  now?: () => number;
}

export type SessionProtocol = SessionRecord['protocol'];

/** The longest delay setTimeout honours (2^31 - 1 ms). */
const MAX_TIMER = 2_147_483_647;
const FLUSH_EVERY_MS = 50;
const FLUSH_BATCH = 500;

/**
 * Opens and tracks agent sessions for every engine: the connect-time checks (revocation, policy,
 * just-in-time grant), the per-command decision, recording and audit, and the end of a session when
 * its token expires, its grant ends, it is revoked or killed — on this instance or, through store
 * events, on any other.
 */
export class SessionManager {
  readonly #o: SessionManagerOptions;
  #reviews: ReviewGate | undefined;
  readonly #live = new Map<string, LiveSession>();
  readonly #pending: RecordingEvent[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #listeners = new Set<(e: { id: string; state: 'started' | 'ended'; reason?: string }) => void>();

  constructor(opts: SessionManagerOptions) {
    this.#o = opts;
    this.#reviews = opts.reviews;
    const ev = opts.store.events;
    this.#unsubscribe.push(
      ev.subscribe('revocation', () => this.recheckRevocations()),
      ev.subscribe('session.kill', (p) => {
        if (typeof p.id === 'string') this.#live.get(p.id)?.end(typeof p.reason === 'string' ? p.reason : 'killed by an administrator');
      }),
      ev.subscribe('grant', (p) => {
        if (typeof p.id !== 'string' || (p.state !== 'revoked' && p.state !== 'expired')) return;
        for (const s of this.#live.values()) if (s.grantId === p.id) s.end('access grant ended');
      }),
    );
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  /**
   * Checks that `identity` may open a session on `connection` now and opens it. Throws
   * ERR_TOKEN_REVOKED, ERR_ACCESS_DENIED or ERR_NO_GRANT with a message fit for the agent.
   */
  async open(params: { protocol: SessionProtocol; identity: Identity; connection: Connection; remoteAddr?: string }): Promise<SessionContext> {
    const { identity, connection, protocol } = params;
    const now = this.#now();
    if (identity.expiresAt <= now) throw new GatehouseError('ERR_TOKEN_EXPIRED', 'token expired');
    const revoked = this.#o.revocations.has(identity);
    if (revoked) throw new GatehouseError('ERR_TOKEN_REVOKED', 'access has been revoked', { detail: `revocation ${revoked.id} (${revoked.kind})` });
    const policy = this.#o.policy();
    const can = policy.canConnect(identity, connection.name, new Date(now));
    if (!can.ok) {
      throw new GatehouseError('ERR_ACCESS_DENIED', `no policy lets ${identity.subject} use connection "${connection.name}"`, { detail: can.reason });
    }
    let grant: GrantRecord | undefined;
    if (can.requireGrant) {
      grant = await this.#o.store.activeGrant(identity.subject, connection.name, now);
      if (!grant) {
        throw new GatehouseError('ERR_NO_GRANT', `connection "${connection.name}" needs an approved access grant; request one with: gatehouse grants request --connection ${connection.name}`);
      }
    }
    const record: SessionRecord = {
      id: randomUUID(),
      protocol,
      connection: connection.name,
      issuer: identity.issuer,
      subject: identity.subject,
      ...(identity.clientId === undefined ? {} : { clientId: identity.clientId }),
      ...(identity.tokenId === undefined ? {} : { tokenId: identity.tokenId }),
      groups: identity.groups,
      ...(params.remoteAddr === undefined ? {} : { remoteAddr: params.remoteAddr }),
      instance: this.#o.instanceId,
      ...(grant === undefined ? {} : { grantId: grant.id }),
      startedAt: now,
    };
    await this.#o.store.createSession(record);
    const deadlines = [identity.expiresAt, grant?.endsAt, this.#o.maxDurationMs === undefined ? undefined : now + this.#o.maxDurationMs].filter((d): d is number => d !== undefined);
    const session = new LiveSession(this, record, identity, connection, protocol, this.#o.masker(policy.maskPlan(identity, connection.name, new Date(now))), Math.min(...deadlines), identity.expiresAt);
    this.#live.set(record.id, session);
    this.#o.audit.record({ ts: now, type: 'session.start', sessionId: record.id, actor: identity.subject, connection: connection.name, data: { protocol, client_id: identity.clientId ?? null, groups: identity.groups, remote: params.remoteAddr ?? null, grant: grant?.id ?? null } });
    this.#o.logger.info({ session: record.id, protocol, connection: connection.name, sub: identity.subject }, 'session opened');
    this.#emit({ id: record.id, state: 'started' });
    return session;
  }

  /** Calls `f` when a session on this instance starts or ends; returns an unsubscribe function. */
  onChange(f: (e: { id: string; state: 'started' | 'ended'; reason?: string }) => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }

  #emit(e: { id: string; state: 'started' | 'ended'; reason?: string }): void {
    for (const f of this.#listeners) {
      try {
        f(e);
      } catch (err) {
        this.#o.logger.error({ err }, 'session listener failed');
      }
    }
  }

  /** Installs the review service (built after the manager, since it needs the live sessions). */
  setReviewGate(gate: ReviewGate): void {
    this.#reviews = gate;
  }

  /** Live sessions on this instance. */
  live(): SessionContext[] {
    return [...this.#live.values()];
  }

  /** Ends a live session on this instance; returns false if it is not here. */
  kill(id: string, reason = 'killed by an administrator'): boolean {
    const s = this.#live.get(id);
    if (!s) return false;
    s.end(reason);
    return true;
  }

  /** Ends every live session whose identity is now revoked. */
  recheckRevocations(): void {
    for (const s of this.#live.values()) if (this.#o.revocations.has(s.identity)) s.end('access has been revoked');
  }

  /** Stops accepting, ends every live session and flushes recordings. */
  async close(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    await Promise.all([...this.#live.values()].map((s) => s.close('gateway shutting down')));
    await this.flush();
  }

  /** Writes buffered recording events now. */
  async flush(): Promise<void> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const batch = this.#pending.splice(0);
    const previous = this.#flushing;
    this.#flushing = (async () => {
      await previous;
      if (batch.length === 0) return;
      try {
        await this.#o.store.appendRecording(batch);
      } catch (e) {
        this.#o.logger.error({ err: e, events: batch.length }, 'recording write failed');
      }
    })();
    await this.#flushing;
  }

  /** @internal */
  _decide(s: LiveSession, cmd: Command): CommandDecision {
    const revoked = this.#o.revocations.has(s.identity);
    if (revoked) {
      s.end('access has been revoked');
      return { effect: 'deny', rule: 'default', reason: 'access has been revoked', code: 'ERR_TOKEN_REVOKED' };
    }
    if (cmd.kind === 'sql') {
      const reason = sqlJustification(cmd);
      if (reason !== undefined) {
        s.justification = reason;
        return { effect: 'allow', rule: BUILTIN_REASON_RULE, masks: [] };
      }
    }
    return this.#o.policy().decide(s.identity, s.connection.name, cmd, new Date(this.#now()));
  }

  /** @internal */
  async _review(s: LiveSession, cmd: Command, d: CommandDecision, notify: (msg: string) => void, signal: AbortSignal): Promise<CommandDecision> {
    if (d.effect !== 'review') return d;
    if (!this.#reviews) {
      const rule = `${d.rule.policy}#${d.rule.index}`;
      return { effect: 'deny', rule: d.rule, reason: `this command needs approval (rule ${rule}${d.reason ? `: ${d.reason}` : ''}) and no review service is configured`, code: 'ERR_REVIEW_REQUIRED' };
    }
    return this.#reviews.hold(s, cmd, d, notify, signal);
  }

  /** @internal */
  _record(s: LiveSession, event: SessionEvent): void {
    const now = this.#now();
    const data = logSafe(event, s.masker);
    if (event.type === 'statement') {
      this.#o.audit.record({ ts: now, type: 'command', sessionId: s.id, actor: s.identity.subject, connection: s.connection.name, data });
    }
    if (this.#o.recording === false) return;
    this.#pending.push({ sessionId: s.id, seq: ++s.seq, t: now - s.startedAt, type: event.type, data });
    if (this.#pending.length >= FLUSH_BATCH) void this.flush();
    else this.#flushTimer ??= setTimeout(() => void this.flush(), FLUSH_EVERY_MS).unref();
  }

  /** @internal */
  async _ended(s: LiveSession, reason: string): Promise<void> {
    if (!this.#live.delete(s.id)) return;
    const now = this.#now();
    this.#o.audit.record({ ts: now, type: 'session.end', sessionId: s.id, actor: s.identity.subject, connection: s.connection.name, data: { reason } });
    this.#o.logger.info({ session: s.id, reason }, 'session ended');
    this.#emit({ id: s.id, state: 'ended', reason });
    try {
      await this.#o.store.endSession(s.id, now, reason);
    } catch (e) {
      this.#o.logger.error({ err: e, session: s.id }, 'could not record session end');
    }
  }
}

/** Longest value kept in a recorded result sample (after masking). */
const SAMPLE_VALUE_CHARS = 256;

function shorten(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}…`;
}

/** The masked, log-safe body of a session event: no token, no raw value. */
function logSafe(event: SessionEvent, masker: Masker): Record<string, unknown> {
  switch (event.type) {
    case 'statement': {
      const d = event.decision;
      return {
        command: masker.maskForLog(commandText(event.command)),
        kind: event.command.kind,
        ...(event.command.kind === 'sql'
          ? { statements: event.command.statements.map((st) => ({ type: st.type, ...(st.subtype ? { subtype: st.subtype } : {}), tables: st.tables, functions: st.functions })) }
          : { attributes: commandAttributes(event.command, masker) }),
        effect: d.effect,
        rule: d.rule === 'default' ? 'default' : `${d.rule.policy}#${d.rule.index}`,
        ...(d.effect === 'deny' ? { reason: d.reason } : {}),
        ...((event.reviewId ?? d.reviewId) ? { review: event.reviewId ?? d.reviewId } : {}),
        ...(event.status === undefined ? {} : { status: event.status }),
      };
    }
    case 'params':
      return { params: event.params.map((p) => (p === null || p === undefined ? null : masker.maskForLog(String(p)))) };
    case 'output':
    case 'input':
      return { data: masker.maskForLog(event.data) };
    case 'error':
      return { code: event.code, message: masker.maskForLog(event.message) };
    case 'result': {
      const { type: _t, ...rest } = event;
      // Masked whole, then shortened: a cut made first could leave part of a secret the detectors no longer see.
      if (rest.sample) rest.sample = rest.sample.map((row) => row.map((v) => (v === null ? null : shorten(masker.maskForLog(String(v)), SAMPLE_VALUE_CHARS))));
      return rest;
    }
    case 'note':
      return { message: masker.maskForLog(event.message) };
    default: {
      const { type: _t, ...rest } = event;
      return rest;
    }
  }
}

/** A non-SQL command's fields, string values masked (an SSH command line can hold a secret). */
function commandAttributes(cmd: Command, masker: Masker): Record<string, unknown> {
  const { kind: _k, ...rest } = cmd;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) out[k] = typeof v === 'string' ? masker.maskForLog(v) : v;
  return out;
}

class LiveSession implements SessionContext {
  readonly id: string;
  readonly startedAt: number;
  readonly grantId: string | undefined;
  seq = 0;
  justification: string | undefined;
  readonly #manager: SessionManager;
  readonly #abort = new AbortController();
  readonly #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    manager: SessionManager,
    record: SessionRecord,
    readonly identity: Identity,
    readonly connection: Connection,
    readonly protocol: SessionProtocol,
    readonly masker: Masker,
    deadline: number,
    tokenExpiry: number,
  ) {
    this.#manager = manager;
    this.id = record.id;
    this.startedAt = record.startedAt;
    this.grantId = record.grantId;
    const why = deadline >= tokenExpiry ? 'token expired' : record.grantId ? 'access grant ended' : 'maximum session length reached';
    const delay = Math.max(0, deadline - record.startedAt);
    if (delay <= MAX_TIMER) this.#timer = setTimeout(() => this.end(why), delay).unref();
  }

  get ended(): AbortSignal {
    return this.#abort.signal;
  }

  async authorize(cmd: Command): Promise<CommandDecision> {
    return this.decide(cmd);
  }

  decide(cmd: Command): CommandDecision {
    if (this.#abort.signal.aborted) {
      return { effect: 'deny', rule: 'default', reason: `session ended: ${String(this.#abort.signal.reason)}`, code: 'ERR_SESSION_ENDED' };
    }
    return this.#manager._decide(this, cmd);
  }

  awaitReview(cmd: Command, d: CommandDecision, notify: (msg: string) => void, signal: AbortSignal): Promise<CommandDecision> {
    return this.#manager._review(this, cmd, d, notify, signal);
  }

  record(event: SessionEvent): void {
    this.#manager._record(this, event);
  }

  /** Signals the engine to end the session (it then calls `close`). */
  end(reason: string): void {
    if (!this.#abort.signal.aborted) this.#abort.abort(reason);
  }

  async close(reason: string): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.end(reason);
    await this.#manager._ended(this, reason);
  }
}
