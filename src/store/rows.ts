/**
 * Row mapping shared by both backends: one column list per table, so the two implementations
 * cannot drift apart. Absent optional fields are stored as NULL and come back absent (not
 * `undefined`-valued), so a record reads back deep-equal to what was written.
 */
import type { AuditCheckpoint, AuditEvent, GrantRecord, RecordingEvent, ReviewRecord, RevocationRecord, SessionRecord } from './store.js';
import { decodeJson, encodeJson } from './json.js';

type Kind = 'text' | 'int' | 'num' | 'json';

export interface Column<T> {
  readonly field: keyof T & string;
  readonly column: string;
  readonly kind: Kind;
}

export interface Table<T> {
  readonly name: string;
  readonly columns: readonly Column<T>[];
}

function table<T>(name: string, spec: Record<keyof T & string, Kind | [Kind, string]>): Table<T> {
  const columns = Object.entries(spec).map(([field, k]) => {
    const [kind, column] = Array.isArray(k) ? k : [k as Kind, snake(field)];
    return { field, column, kind } as Column<T>;
  });
  return { name, columns };
}

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export const sessions = table<SessionRecord>('sessions', {
  id: 'text', protocol: 'text', connection: 'text', issuer: 'text', subject: 'text', clientId: 'text', tokenId: 'text',
  groups: ['json', 'subject_groups'], remoteAddr: 'text', instance: 'text', grantId: 'text', startedAt: 'int', endedAt: 'int',
  endReason: 'text',
});

export const auditEvents = table<AuditEvent>('audit_events', {
  seq: 'int', ts: 'int', type: 'text', sessionId: 'text', actor: 'text', connection: 'text', data: 'json', prevHash: 'text', hash: 'text',
});

export const auditCheckpoints = table<AuditCheckpoint>('audit_checkpoints', {
  seq: 'int', hash: 'text', ts: 'int', keyId: 'text', signature: 'text',
});

export const reviews = table<ReviewRecord>('reviews', {
  id: 'text', state: 'text', sessionId: 'text', subject: 'text', clientId: 'text', connection: 'text', protocol: 'text',
  command: 'text', fingerprint: 'text', rule: 'text', ruleReason: 'text', justification: 'text', approverGroups: 'json',
  approverSubjects: 'json', minApprovals: 'int', approvals: 'json', decidedBy: 'text', decisionReason: 'text',
  createdAt: 'int', decidedAt: 'int', validUntil: 'int',
});

export const grants = table<GrantRecord>('grants', {
  id: 'text', state: 'text', subject: 'text', clientId: 'text', connection: 'text', reason: 'text', durationMs: 'int',
  requestedAt: 'int', decidedBy: 'text', decisionReason: 'text', decidedAt: 'int', startsAt: 'int', endsAt: 'int',
  revokedBy: 'text', revokedAt: 'int',
});

export const revocations = table<RevocationRecord>('revocations', {
  id: 'text', kind: 'text', value: 'text', reason: 'text', createdBy: 'text', createdAt: 'int', expiresAt: 'int',
});

export const recordings = table<RecordingEvent>('recordings', {
  sessionId: 'text', seq: 'int', t: 'num', type: 'text', data: 'json',
});

/** One value as bound to a statement parameter (JSON columns as JSON text). */
export function encodeValue(kind: Kind, v: unknown): unknown {
  if (v === undefined || v === null) return null;
  return kind === 'json' ? encodeJson(v) : v;
}

/** A record's values in column order. */
export function encodeRow<T>(t: Table<T>, record: T): unknown[] {
  return t.columns.map((c) => encodeValue(c.kind, record[c.field]));
}

/** A database row (column name → value) back to a record. BIGINTs may arrive as strings (pg). */
export function decodeRow<T>(t: Table<T>, row: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const c of t.columns) {
    const v = row[c.column];
    if (v === null || v === undefined) continue;
    out[c.field] = c.kind === 'json' ? decodeJson(v) : c.kind === 'int' || c.kind === 'num' ? Number(v) : v;
  }
  return out as T;
}

/** Patch entries whose value is not `undefined`, restricted to known columns (never the key columns). */
export function patchColumns<T>(t: Table<T>, patch: Partial<T>, exclude: readonly string[] = ['id']): { column: Column<T>; value: unknown }[] {
  const out: { column: Column<T>; value: unknown }[] = [];
  for (const c of t.columns) {
    if (exclude.includes(c.field)) continue;
    const v = patch[c.field];
    if (v !== undefined) out.push({ column: c, value: encodeValue(c.kind, v) });
  }
  return out;
}
