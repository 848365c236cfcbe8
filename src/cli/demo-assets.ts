/**
 * What `gatehouse demo` serves: a small shop schema with fake card numbers and API keys, and a
 * policy that allows reads, masks the secrets, holds deletes for review and blocks schema changes.
 * Every card number here is a published test number; every key is made up.
 */

export const DEMO_SCHEMA_SQL = `
CREATE TABLE customers (
  id          serial PRIMARY KEY,
  name        text NOT NULL,
  email       text NOT NULL,
  card_number text,
  api_key     text,
  notes       text
);
CREATE TABLE orders (
  id          serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  amount_cents int NOT NULL,
  status      text NOT NULL DEFAULT 'paid',
  created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (name, email, card_number, api_key, notes) VALUES
  ('Ada Lovelace',    'ada@example.com',    '4242 4242 4242 4242', 'sk_live_51HqDemoKeyAda0000000000000', 'prefers e-mail'),
  ('Grace Hopper',    'grace@example.com',  '5555-5555-5555-4444', 'sk_live_51HqDemoKeyGrace00000000000', 'backup card 378282246310005 on file'),
  ('Alan Turing',     'alan@example.com',   '378282246310005',     'ghp_DemoTokenAlan0000000000000000000000', null),
  ('Katherine Johnson','kj@example.com',    '6011111111111117',    'AKIADEMOKEYKATHERINE', 'AWS key rotated 2026-01');
INSERT INTO orders (customer_id, amount_cents, status) VALUES
  (1, 1999, 'paid'), (1, 4500, 'refunded'), (2, 12000, 'paid'), (3, 300, 'paid'), (4, 7200, 'pending');
`;

export const DEMO_POLICY_YAML = `# The demo's policy: agents may read and insert, secrets are masked, deletes and updates wait for a
# human approver, schema and privilege changes and server-side file access are blocked.
policies:
  - name: demo-agents
    subjects: { groups: [ai-agents] }
    connections: [demo]
    rules:
      - { effect: deny,   sql: { types: [ddl, dcl] }, reason: "schema and privilege changes are blocked" }
      - { effect: deny,   sql: { functions: [pg_read_file, pg_read_binary_file, pg_ls_dir, lo_export, lo_import, dblink] }, reason: "server file access is blocked" }
      - { effect: deny,   sql: { program: true }, reason: "COPY ... PROGRAM is blocked" }
      - { effect: deny,   sql: { types: [do] }, reason: "anonymous code blocks are blocked" }
      - { effect: review, sql: { types: [delete, update, merge] }, approvers: { groups: [dba] }, reason: "data changes need a DBA" }
      - { effect: allow,  sql: { types: [select, insert, show, explain, tcl, set, empty] } }
      - { effect: mask,   columns: ["*.card_number", "*.api_key"], strategy: partial, keep: 4 }
      - { effect: mask,   detectors: [default], strategy: redact }
`;
