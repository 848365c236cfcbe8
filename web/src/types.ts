/** The API's JSON shapes (docs/api.md). */

export interface Review {
  id: string;
  state: 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';
  subject: string;
  client_id: string | null;
  connection: string;
  protocol: string;
  command: string;
  rule: string;
  rule_reason: string | null;
  justification: string | null;
  approvers: { groups: string[]; subjects: string[]; min_approvals: number };
  approvals: { by: string; at: string | null; reason: string | null }[];
  decided_by: string | null;
  decision_reason: string | null;
  session_id: string | null;
  created_at: string;
  decided_at: string | null;
  valid_until: string | null;
}

export interface Grant {
  id: string;
  state: 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';
  subject: string;
  client_id: string | null;
  connection: string;
  reason: string;
  duration_seconds: number;
  requested_at: string;
  decided_by: string | null;
  decision_reason: string | null;
  starts_at: string | null;
  ends_at: string | null;
  revoked_by: string | null;
}

export interface SessionInfo {
  id: string;
  protocol: string;
  connection: string;
  subject: string;
  issuer: string;
  client_id: string | null;
  groups: string[];
  remote_addr: string | null;
  instance: string | null;
  grant_id: string | null;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  live: boolean;
}

export interface RecordingEvent {
  seq: number;
  /** ms since the session started */
  t: number;
  type: string;
  data: Record<string, unknown>;
}

export interface AuditEvent {
  seq: number;
  ts: string;
  type: string;
  session_id: string | null;
  actor: string | null;
  connection: string | null;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export interface AuditVerify {
  ok: boolean;
  events: number;
  checkpoints: number;
  first_broken: number | null;
}
