import type { Migration } from './index.js';

/**
 * SQLite schema. Times are INTEGER milliseconds; JSON columns are TEXT holding JSON.
 * `audit_head` is the single-row chain head, updated in the same write transaction as each event.
 */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    up: `
CREATE TABLE sessions (
  id             TEXT PRIMARY KEY,
  protocol       TEXT NOT NULL,
  connection     TEXT NOT NULL,
  issuer         TEXT NOT NULL,
  subject        TEXT NOT NULL,
  client_id      TEXT,
  token_id       TEXT,
  subject_groups TEXT NOT NULL,
  remote_addr    TEXT,
  instance       TEXT,
  grant_id       TEXT,
  started_at     INTEGER NOT NULL,
  ended_at       INTEGER,
  end_reason     TEXT
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_live ON sessions (started_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_subject ON sessions (subject, started_at);
CREATE INDEX sessions_connection ON sessions (connection, started_at);

CREATE TABLE audit_events (
  seq        INTEGER PRIMARY KEY,
  ts         INTEGER NOT NULL,
  type       TEXT NOT NULL,
  session_id TEXT,
  actor      TEXT,
  connection TEXT,
  data       TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
CREATE INDEX audit_events_type ON audit_events (type, seq);
CREATE INDEX audit_events_session ON audit_events (session_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_connection ON audit_events (connection, seq);

CREATE TABLE audit_head (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE audit_checkpoints (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  seq       INTEGER NOT NULL,
  hash      TEXT NOT NULL,
  ts        INTEGER NOT NULL,
  key_id    TEXT NOT NULL,
  signature TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (seq);

CREATE TABLE reviews (
  id                TEXT PRIMARY KEY,
  state             TEXT NOT NULL,
  session_id        TEXT,
  subject           TEXT NOT NULL,
  client_id         TEXT,
  connection        TEXT NOT NULL,
  protocol          TEXT NOT NULL,
  command           TEXT NOT NULL,
  fingerprint       TEXT NOT NULL,
  rule              TEXT NOT NULL,
  rule_reason       TEXT,
  justification     TEXT,
  approver_groups   TEXT NOT NULL,
  approver_subjects TEXT NOT NULL,
  min_approvals     INTEGER NOT NULL,
  approvals         TEXT NOT NULL,
  decided_by        TEXT,
  decision_reason   TEXT,
  created_at        INTEGER NOT NULL,
  decided_at        INTEGER,
  valid_until       INTEGER
);
CREATE INDEX reviews_state ON reviews (state, created_at);
CREATE INDEX reviews_subject ON reviews (subject, created_at);
CREATE INDEX reviews_connection ON reviews (connection, created_at);
CREATE INDEX reviews_pending ON reviews (created_at) WHERE state = 'pending';
CREATE INDEX reviews_approved ON reviews (subject, connection, fingerprint) WHERE state = 'approved';

CREATE TABLE grants (
  id              TEXT PRIMARY KEY,
  state           TEXT NOT NULL,
  subject         TEXT NOT NULL,
  client_id       TEXT,
  connection      TEXT NOT NULL,
  reason          TEXT NOT NULL,
  duration_ms     INTEGER NOT NULL,
  requested_at    INTEGER NOT NULL,
  decided_by      TEXT,
  decision_reason TEXT,
  decided_at      INTEGER,
  starts_at       INTEGER,
  ends_at         INTEGER,
  revoked_by      TEXT,
  revoked_at      INTEGER
);
CREATE INDEX grants_state ON grants (state, requested_at);
CREATE INDEX grants_subject ON grants (subject, requested_at);
CREATE INDEX grants_connection ON grants (connection, requested_at);
CREATE INDEX grants_active ON grants (subject, connection, ends_at) WHERE state = 'approved';

CREATE TABLE revocations (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  value      TEXT NOT NULL,
  reason     TEXT,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);
CREATE INDEX revocations_value ON revocations (kind, value);

CREATE TABLE recordings (
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  t          REAL NOT NULL,
  type       TEXT NOT NULL,
  data       TEXT NOT NULL,
  PRIMARY KEY (session_id, seq)
);
`,
  },
];
