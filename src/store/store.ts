/**
 * The store: everything Gatehouse keeps. Two implementations (SQLite embedded, PostgreSQL shared)
 * pass one conformance suite (`test/unit/store-conformance.test.ts` + the PostgreSQL run).
 * Times are milliseconds since the epoch. Ids are opaque strings (UUIDs unless noted).
 */

export interface SessionRecord {
  id: string;
  protocol: 'postgres' | 'mysql' | 'kubernetes' | 'ssh' | 'mcp' | 'http';
  connection: string;
  issuer: string;
  subject: string;
  clientId?: string;
  tokenId?: string;
  groups: string[];
  remoteAddr?: string;
  /** The gateway instance that holds the session (for kill across instances). */
  instance?: string;
  grantId?: string;
  startedAt: number;
  endedAt?: number;
  endReason?: string;
}

export interface SessionQuery {
  live?: boolean;
  subject?: string;
  connection?: string;
  protocol?: string;
  limit?: number;
  before?: number;
}

export interface AuditEventInput {
  ts: number;
  /** `session.start`, `command`, `review.created`, `grant.approved`, `revocation.created`, … */
  type: string;
  sessionId?: string;
  /** Who did it: the agent's or the human's subject, or `system`. */
  actor?: string;
  connection?: string;
  /** Event body: already masked. Never a token. */
  data: Record<string, unknown>;
}

export interface AuditEvent extends AuditEventInput {
  /** 1-based, gapless. */
  seq: number;
  prevHash: string;
  hash: string;
}

export interface AuditHead {
  seq: number;
  hash: string;
}

export interface AuditCheckpoint {
  seq: number;
  hash: string;
  ts: number;
  keyId: string;
  /** base64url Ed25519 signature over the checkpoint's canonical bytes. */
  signature: string;
}

export interface AuditQuery {
  afterSeq?: number;
  limit?: number;
  type?: string;
  sessionId?: string;
  actor?: string;
  connection?: string;
}

export type ReviewState = 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';

export interface ReviewApproval {
  by: string;
  at: number;
  reason?: string;
}

export interface ReviewRecord {
  id: string;
  state: ReviewState;
  sessionId?: string;
  subject: string;
  clientId?: string;
  connection: string;
  protocol: string;
  /** The command as approvers see it: masked. */
  command: string;
  /** Normalized command fingerprint, so an identical command can run once after approval. */
  fingerprint: string;
  /** `policy#index` of the rule that asked for review. */
  rule: string;
  ruleReason?: string;
  /** The agent's justification, if it gave one. */
  justification?: string;
  approverGroups: string[];
  approverSubjects: string[];
  minApprovals: number;
  approvals: ReviewApproval[];
  decidedBy?: string;
  decisionReason?: string;
  createdAt: number;
  decidedAt?: number;
  /** After approval: until when the identical command may run once. */
  validUntil?: number;
}

export type GrantState = 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';

export interface GrantRecord {
  id: string;
  state: GrantState;
  subject: string;
  clientId?: string;
  connection: string;
  reason: string;
  /** Requested length, ms. */
  durationMs: number;
  requestedAt: number;
  decidedBy?: string;
  decisionReason?: string;
  decidedAt?: number;
  /** Window, set on approval. */
  startsAt?: number;
  endsAt?: number;
  revokedBy?: string;
  revokedAt?: number;
}

export type RevocationKind = 'subject' | 'client_id' | 'token_id';

export interface RevocationRecord {
  id: string;
  kind: RevocationKind;
  value: string;
  reason?: string;
  createdBy: string;
  createdAt: number;
  /** A token-id revocation can lapse when the token would have expired anyway. */
  expiresAt?: number;
}

export interface RecordingEvent {
  sessionId: string;
  /** Per session, 1-based. */
  seq: number;
  /** Milliseconds since the session started. */
  t: number;
  /** `statement`, `result`, `error`, `o` / `i` / `r` (asciicast output, input, resize), `marker`, … */
  type: string;
  /** Already masked. */
  data: Record<string, unknown>;
}

/** Cross-instance notifications (SQLite: in-process; PostgreSQL: LISTEN/NOTIFY). */
export type StoreTopic = 'review' | 'grant' | 'revocation' | 'session.kill' | 'policy';

export interface StoreEvents {
  publish(topic: StoreTopic, payload: Record<string, unknown>): Promise<void>;
  /** Returns an unsubscribe function. Handlers run for events from this and every other instance. */
  subscribe(topic: StoreTopic, handler: (payload: Record<string, unknown>) => void): () => void;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly events: StoreEvents;
  /** Applies pending migrations; returns the schema version now in force. */
  migrate(): Promise<number>;
  schemaVersion(): Promise<number>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;

  createSession(s: SessionRecord): Promise<void>;
  endSession(id: string, endedAt: number, reason: string): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  listSessions(q?: SessionQuery): Promise<SessionRecord[]>;

  /**
   * Appends one audit event atomically at the head of the chain: `build` gets the current head
   * (undefined for an empty log) and returns the event's seq/prevHash/hash. Serialized across
   * instances (SQLite: a write transaction; PostgreSQL: a row lock on the chain head).
   */
  appendAudit(input: AuditEventInput, build: (head: AuditHead | undefined) => Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'>): Promise<AuditEvent>;
  /**
   * Appends several events in one transaction, in order: `build` is called for each with the head
   * as it stands after the events before it. All or none are written.
   */
  appendAuditBatch(inputs: readonly AuditEventInput[], build: (head: AuditHead | undefined, input: AuditEventInput) => Pick<AuditEvent, 'seq' | 'prevHash' | 'hash'>): Promise<AuditEvent[]>;
  /** Events in seq order. */
  listAudit(q?: AuditQuery): Promise<AuditEvent[]>;
  auditHead(): Promise<AuditHead | undefined>;
  addCheckpoint(c: AuditCheckpoint): Promise<void>;
  listCheckpoints(): Promise<AuditCheckpoint[]>;

  createReview(r: ReviewRecord): Promise<void>;
  getReview(id: string): Promise<ReviewRecord | undefined>;
  listReviews(q?: { state?: ReviewState; subject?: string; connection?: string; limit?: number }): Promise<ReviewRecord[]>;
  /** Compare-and-set update: applies `patch` only if the review is still in state `from`; returns the new record or undefined. */
  updateReview(id: string, from: ReviewState, patch: Partial<Omit<ReviewRecord, 'id'>>): Promise<ReviewRecord | undefined>;
  /** An approved, unexpired, unconsumed review for the same subject + connection + fingerprint. */
  findApprovedReview(subject: string, connection: string, fingerprint: string, now: number): Promise<ReviewRecord | undefined>;

  createGrant(g: GrantRecord): Promise<void>;
  getGrant(id: string): Promise<GrantRecord | undefined>;
  listGrants(q?: { state?: GrantState; subject?: string; connection?: string; limit?: number }): Promise<GrantRecord[]>;
  updateGrant(id: string, from: GrantState, patch: Partial<Omit<GrantRecord, 'id'>>): Promise<GrantRecord | undefined>;
  /** The approved grant whose window contains `now`, for this subject and connection. */
  activeGrant(subject: string, connection: string, now: number): Promise<GrantRecord | undefined>;

  addRevocation(r: RevocationRecord): Promise<void>;
  listRevocations(): Promise<RevocationRecord[]>;
  removeRevocation(id: string): Promise<boolean>;

  appendRecording(events: RecordingEvent[]): Promise<void>;
  readRecording(sessionId: string, afterSeq?: number, limit?: number): Promise<RecordingEvent[]>;
}
