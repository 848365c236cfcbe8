/**
 * SQL shared by both backends, parameterized by placeholder style (`?` for SQLite, `$n` for
 * PostgreSQL). Every filter maps to an indexed column; lists are ordered as documented on each
 * builder so both backends return the same rows in the same order.
 */
import type { AuditQuery, GrantState, ReviewState, SessionQuery } from './store.js';
import type { Table } from './rows.js';
import { auditEvents, grants, reviews, sessions } from './rows.js';

export type Placeholder = (index: number) => string;
export const sqlitePlaceholder: Placeholder = () => '?';
export const pgPlaceholder: Placeholder = (i) => `$${i}`;

export interface Sql {
  text: string;
  params: unknown[];
}

export function columnList<T>(t: Table<T>): string {
  return t.columns.map((c) => c.column).join(', ');
}

/** `INSERT INTO t (cols) VALUES (…)`. */
export function insertSql<T>(t: Table<T>, ph: Placeholder, casts: (kind: string) => string = () => ''): string {
  const values = t.columns.map((c, i) => `${ph(i + 1)}${casts(c.kind)}`).join(', ');
  return `INSERT INTO ${t.name} (${columnList(t)}) VALUES (${values})`;
}

class Builder {
  readonly where: string[] = [];
  readonly params: unknown[] = [];
  constructor(private readonly ph: Placeholder) {}

  eq(column: string, value: unknown): this {
    if (value !== undefined) this.where.push(`${column} = ${this.param(value)}`);
    return this;
  }

  cond(sql: (p: (v: unknown) => string) => string): this {
    this.where.push(sql((v) => this.param(v)));
    return this;
  }

  param(v: unknown): string {
    this.params.push(v);
    return this.ph(this.params.length);
  }

  build(select: string, order: string, limit: number | undefined): Sql {
    let text = select;
    if (this.where.length > 0) text += ` WHERE ${this.where.join(' AND ')}`;
    text += ` ORDER BY ${order}`;
    if (limit !== undefined) text += ` LIMIT ${this.param(Math.max(0, Math.floor(limit)))}`;
    return { text, params: this.params };
  }
}

/** Newest first (`started_at DESC, id DESC`); `before` is exclusive. */
export function sessionsQuery(q: SessionQuery, ph: Placeholder): Sql {
  const b = new Builder(ph);
  if (q.live === true) b.cond(() => 'ended_at IS NULL');
  if (q.live === false) b.cond(() => 'ended_at IS NOT NULL');
  b.eq('subject', q.subject).eq('connection', q.connection).eq('protocol', q.protocol);
  if (q.before !== undefined) b.cond((p) => `started_at < ${p(q.before)}`);
  return b.build(`SELECT ${columnList(sessions)} FROM sessions`, 'started_at DESC, id DESC', q.limit);
}

/** In seq order, after `afterSeq` (exclusive). */
export function auditQuery(q: AuditQuery, ph: Placeholder): Sql {
  const b = new Builder(ph);
  if (q.afterSeq !== undefined) b.cond((p) => `seq > ${p(q.afterSeq)}`);
  b.eq('type', q.type).eq('session_id', q.sessionId).eq('actor', q.actor).eq('connection', q.connection);
  return b.build(`SELECT ${columnList(auditEvents)} FROM audit_events`, 'seq ASC', q.limit);
}

/** Newest first (`created_at DESC, id DESC`). */
export function reviewsQuery(q: { state?: ReviewState; subject?: string; connection?: string; limit?: number }, ph: Placeholder): Sql {
  const b = new Builder(ph).eq('state', q.state).eq('subject', q.subject).eq('connection', q.connection);
  return b.build(`SELECT ${columnList(reviews)} FROM reviews`, 'created_at DESC, id DESC', q.limit);
}

/** Newest first (`requested_at DESC, id DESC`). */
export function grantsQuery(q: { state?: GrantState; subject?: string; connection?: string; limit?: number }, ph: Placeholder): Sql {
  const b = new Builder(ph).eq('state', q.state).eq('subject', q.subject).eq('connection', q.connection);
  return b.build(`SELECT ${columnList(grants)} FROM grants`, 'requested_at DESC, id DESC', q.limit);
}

/**
 * The approved review an identical command may consume: `valid_until >= now` (a review without
 * `validUntil` never matches: fail closed); the one expiring first wins.
 */
export function approvedReviewQuery(subject: string, connection: string, fingerprint: string, now: number, ph: Placeholder): Sql {
  const b = new Builder(ph)
    .eq('subject', subject)
    .eq('connection', connection)
    .eq('fingerprint', fingerprint)
    .cond(() => `state = 'approved'`)
    .cond((p) => `valid_until >= ${p(now)}`);
  return b.build(`SELECT ${columnList(reviews)} FROM reviews`, 'valid_until ASC, id ASC', 1);
}

/** The approved grant whose window `[startsAt, endsAt)` contains `now`; the longest-lasting wins. */
export function activeGrantQuery(subject: string, connection: string, now: number, ph: Placeholder): Sql {
  const b = new Builder(ph)
    .eq('subject', subject)
    .eq('connection', connection)
    .cond(() => `state = 'approved'`)
    .cond((p) => `starts_at <= ${p(now)}`)
    .cond((p) => `ends_at > ${p(now)}`);
  return b.build(`SELECT ${columnList(grants)} FROM grants`, 'ends_at DESC, id ASC', 1);
}

/** Compare-and-set: `UPDATE t SET … WHERE id = ? AND state = ? RETURNING cols`. */
export function casUpdateSql<T>(
  t: Table<T>,
  sets: { column: { column: string; kind: string }; value: unknown }[],
  id: string,
  from: string,
  ph: Placeholder,
  casts: (kind: string) => string = () => '',
): Sql {
  const params: unknown[] = [];
  const p = (v: unknown) => (params.push(v), ph(params.length));
  const assignments = sets.length === 0 ? ['state = state'] : sets.map((s) => `${s.column.column} = ${p(s.value)}${casts(s.column.kind)}`);
  const text = `UPDATE ${t.name} SET ${assignments.join(', ')} WHERE id = ${p(id)} AND state = ${p(from)} RETURNING ${columnList(t)}`;
  return { text, params };
}
