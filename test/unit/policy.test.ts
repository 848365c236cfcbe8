import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, K8sCommand, SqlCommand, SqlStatement, SqlStatementType, SqlTableRef, SshCommand } from '../../src/core/command.js';
import type { Identity } from '../../src/core/identity/types.js';
import { isGatehouseError } from '../../src/core/errors.js';
import {
  BUILTIN_EMPTY_RULE,
  compileGlobs,
  formatExplanation,
  globFiles,
  loadPolicies,
  parsePolicies,
  PolicyEngine,
  policySet,
} from '../../src/core/policy/index.js';
import type { CommandDecision, Decision } from '../../src/core/policy/index.js';

// ---------------------------------------------------------------------------------------------------
// fixtures

function identity(over: Partial<Identity> = {}): Identity {
  return { issuer: 'https://idp.example.com', subject: 'agent-1', clientId: 'agent-client', groups: ['ai-agents'], scopes: [], expiresAt: Date.now() + 3_600_000, claims: {}, ...over };
}

function stmt(type: SqlStatementType, over: Partial<SqlStatement> = {}): SqlStatement {
  return { type, text: `${type} …`, tables: [], functions: [], ...over };
}

function sql(...statements: SqlStatement[]): SqlCommand {
  return { kind: 'sql', dialect: 'postgres', text: statements.map((s) => s.text).join('; '), statements };
}

const t = (name: string, access: 'read' | 'write' = 'read'): SqlTableRef => ({ name, access });

const SELECT = stmt('select', { text: 'SELECT * FROM users', tables: [t('public.users')] });
const INSERT = stmt('insert', { text: 'INSERT INTO users VALUES (1)', tables: [t('users', 'write')] });
const DELETE = stmt('delete', { text: 'DELETE FROM users', tables: [t('users', 'write')] });
const DROP = stmt('ddl', { subtype: 'drop_table', text: 'DROP TABLE users', tables: [t('users', 'write')] });
const GRANT = stmt('dcl', { subtype: 'grant', text: 'GRANT ALL ON users TO x' });
const UNKNOWN = stmt('unknown', { text: 'FROBNICATE things', unknownReason: 'syntax error at or near "FROBNICATE"' });

function k8s(verb: string, resource: string, over: Partial<K8sCommand> = {}): K8sCommand {
  return { kind: 'k8s', verb, group: '', resource, ...over };
}
function ssh(channel: SshCommand['channel'], command?: string): SshCommand {
  return command === undefined ? { kind: 'ssh', channel } : { kind: 'ssh', channel, command };
}

function engine(yaml: string): PolicyEngine {
  return new PolicyEngine(policySet(parsePolicies(yaml, 'policies/test.yaml')));
}

/** `effect policy#index`, or `deny default`. */
function summary(d: Decision): string {
  return d.rule === 'default' ? `${d.effect} default` : `${d.effect} ${d.rule.policy}#${d.rule.index}`;
}

const NOW = new Date('2026-11-25T10:30:00Z'); // a Wednesday

const EXAMPLE = `policies:
  - name: agents-on-prod
    subjects: { groups: [ai-agents] }          # also: subjects: { sub: [...], client_id: [...], claims: {k: v} }
    connections: [prod-pg]
    require_grant: false
    rules:
      - { effect: deny,   sql: { types: [ddl, dcl] }, reason: "schema and privilege changes are blocked" }
      - { effect: deny,   sql: { functions: [pg_read_file, lo_export] } }
      - { effect: review, sql: { types: [delete, update] }, approvers: { groups: [dba] } }
      - { effect: allow,  sql: { types: [select, insert] } }
      - { effect: mask,   columns: ["*.card_number", "users.ssn"], detectors: [payment_card, api_key], strategy: redact }
      - { effect: deny,   k8s: { verbs: [delete], namespaces: [prod] } }
      - { effect: deny,   ssh: { command: "^rm\\\\s+-rf" } }
`;

// ---------------------------------------------------------------------------------------------------

describe('precedence table', () => {
  const P = (name: string, rules: string, subjects = '{ groups: [ai-agents] }'): string =>
    `  - name: ${name}\n    subjects: ${subjects}\n    rules:\n${rules
      .trim()
      .split('\n')
      .map((r) => `      - ${r.trim()}`)
      .join('\n')}\n`;
  const doc = (...ps: string[]): string => `policies:\n${ps.join('')}`;

  const rows: { name: string; policies: string; cmd: Command; expect: string; statements?: string[] }[] = [
    { name: 'allow alone', policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }')), cmd: sql(SELECT), expect: 'allow a#0' },
    {
      name: 'deny beats allow (deny written last)',
      policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }\n{ effect: deny, sql: { tables: [users] } }')),
      cmd: sql(SELECT),
      expect: 'deny a#1',
    },
    {
      name: 'deny beats review (review written first)',
      policies: doc(P('a', '{ effect: review }\n{ effect: deny, sql: { types: [delete] } }')),
      cmd: sql(DELETE),
      expect: 'deny a#1',
    },
    {
      name: 'review beats allow (allow written first)',
      policies: doc(P('a', '{ effect: allow }\n{ effect: review, sql: { types: [delete] } }')),
      cmd: sql(DELETE),
      expect: 'review a#1',
    },
    {
      name: 'deny in a later policy beats allow in an earlier one',
      policies: doc(P('a', '{ effect: allow }'), P('b', '{ effect: deny, sql: { types: [ddl] } }')),
      cmd: sql(DROP),
      expect: 'deny b#0',
    },
    {
      name: 'review in a later policy beats allow in an earlier one',
      policies: doc(P('a', '{ effect: allow }'), P('b', '{ effect: review, sql: { types: [write] } }')),
      cmd: sql(INSERT),
      expect: 'review b#0',
    },
    {
      name: 'deny in an earlier policy beats review in a later one',
      policies: doc(P('a', '{ effect: deny, regex: "(?i)^delete" }'), P('b', '{ effect: review }')),
      cmd: sql(DELETE),
      expect: 'deny a#0',
    },
    {
      name: 'the first matching deny is reported',
      policies: doc(P('a', '{ effect: allow }\n{ effect: deny, sql: { types: [ddl] } }\n{ effect: deny }')),
      cmd: sql(DROP),
      expect: 'deny a#1',
    },
    { name: 'nothing matches: default deny', policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }')), cmd: sql(DELETE), expect: 'deny default' },
    {
      name: 'no policy applies: default deny',
      policies: doc(P('a', '{ effect: allow }', '{ groups: [humans] }')),
      cmd: sql(SELECT),
      expect: 'deny default',
    },
    { name: 'mask rules never decide', policies: doc(P('a', '{ effect: mask, columns: ["*.ssn"] }')), cmd: sql(SELECT), expect: 'deny default' },
    { name: 'unknown: unconditional allow does not allow it', policies: doc(P('a', '{ effect: allow }')), cmd: sql(UNKNOWN), expect: 'deny default' },
    { name: 'unknown: allow with other types does not allow it', policies: doc(P('a', '{ effect: allow, sql: { types: [select, read, write] } }')), cmd: sql(UNKNOWN), expect: 'deny default' },
    { name: 'unknown: allow with regex only does not allow it', policies: doc(P('a', '{ effect: allow, regex: ".*" }')), cmd: sql(UNKNOWN), expect: 'deny default' },
    { name: 'unknown: unconditional review does not hold it', policies: doc(P('a', '{ effect: review }')), cmd: sql(UNKNOWN), expect: 'deny default' },
    { name: 'unknown: allow naming unknown allows it', policies: doc(P('a', '{ effect: allow, sql: { types: [unknown] } }')), cmd: sql(UNKNOWN), expect: 'allow a#0' },
    { name: 'unknown: review naming unknown holds it', policies: doc(P('a', '{ effect: review, sql: { types: [unknown] } }\n{ effect: allow, sql: { types: [unknown] } }')), cmd: sql(UNKNOWN), expect: 'review a#0' },
    { name: 'unknown: a matching deny regex denies it', policies: doc(P('a', '{ effect: allow, sql: { types: [unknown] } }\n{ effect: deny, regex: "FROB" }')), cmd: sql(UNKNOWN), expect: 'deny a#1' },
    {
      name: 'multi-statement: strictest statement wins (review)',
      policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }\n{ effect: review, sql: { types: [delete] } }')),
      cmd: sql(SELECT, DELETE),
      expect: 'review a#1',
      statements: ['allow a#0', 'review a#1'],
    },
    {
      name: 'multi-statement: strictest statement wins (deny)',
      policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }\n{ effect: review, sql: { types: [delete] } }\n{ effect: deny, sql: { types: [ddl] } }')),
      cmd: sql(SELECT, DROP, DELETE),
      expect: 'deny a#2',
      statements: ['allow a#0', 'deny a#2', 'review a#1'],
    },
    {
      name: 'multi-statement: one unmatched statement denies the command',
      policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }')),
      cmd: sql(SELECT, INSERT),
      expect: 'deny default',
      statements: ['allow a#0', 'deny default'],
    },
    {
      name: 'allow regex sees each statement alone',
      policies: doc(P('a', '{ effect: allow, regex: "(?i)^select" }')),
      cmd: sql(SELECT, DROP),
      expect: 'deny default',
      statements: ['allow a#0', 'deny default'],
    },
    { name: 'empty statement: builtin allow', policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }')), cmd: sql(stmt('empty', { text: '' })), expect: 'allow (builtin)#-1' },
    { name: 'empty statement: an allow naming empty is reported', policies: doc(P('a', '{ effect: allow, sql: { types: [empty] } }')), cmd: sql(stmt('empty', { text: '' })), expect: 'allow a#0' },
    { name: 'empty statement: a matching deny denies', policies: doc(P('a', '{ effect: deny }')), cmd: sql(stmt('empty', { text: '' })), expect: 'deny a#0' },
    { name: 'empty statement: never held for review', policies: doc(P('a', '{ effect: review }')), cmd: sql(stmt('empty', { text: '' })), expect: 'allow (builtin)#-1' },
    { name: 'zero statements: builtin allow', policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }')), cmd: sql(), expect: 'allow (builtin)#-1' },
    { name: 'zero statements, no policy applies: deny', policies: doc(P('a', '{ effect: allow }', '{ groups: [nobody] }')), cmd: sql(), expect: 'deny default' },
    { name: 'an sql rule never matches a k8s command', policies: doc(P('a', '{ effect: allow, sql: { types: [select] } }')), cmd: k8s('get', 'pods', { namespace: 'dev' }), expect: 'deny default' },
    { name: 'an sql deny never matches an ssh command', policies: doc(P('a', '{ effect: deny, sql: {} }\n{ effect: allow }')), cmd: ssh('exec', 'ls'), expect: 'allow a#1' },
    { name: 'a rule without conditions matches k8s', policies: doc(P('a', '{ effect: allow }')), cmd: k8s('get', 'pods', { namespace: 'dev' }), expect: 'allow a#0' },
    { name: 'a k8s deny beats an unconditional allow', policies: doc(P('a', '{ effect: allow }'), P('b', '{ effect: deny, k8s: { verbs: [delete] } }')), cmd: k8s('delete', 'pods', { namespace: 'dev', name: 'x' }), expect: 'deny b#0' },
  ];

  for (const row of rows) {
    it(row.name, () => {
      const d = engine(row.policies).decide(identity(), 'prod-pg', row.cmd, NOW);
      assert.equal(summary(d), row.expect);
      if (row.statements !== undefined) assert.deepEqual(d.statements?.map(summary), row.statements);
      if (row.cmd.kind === 'sql') assert.equal(d.statements?.length, row.cmd.statements.length);
      else assert.equal(d.statements, undefined);
    });
  }

  it('reports reasons and approvers', () => {
    const e = engine(doc(P('a', '{ effect: deny, sql: { types: [ddl] }, reason: "no schema changes" }\n{ effect: review, sql: { types: [delete] }, approvers: { groups: [dba], subjects: [alice], min_approvals: 2, require_reason: true } }')));
    const denied = e.decide(identity(), 'x', sql(DROP), NOW);
    assert.equal(denied.effect, 'deny');
    assert.equal(denied.reason, 'no schema changes');
    assert.deepEqual(denied.rule, { policy: 'a', index: 0, effect: 'deny', reason: 'no schema changes', source: 'policies/test.yaml:5' });
    const held = e.decide(identity(), 'x', sql(DELETE), NOW);
    assert.equal(held.effect, 'review');
    assert.ok(held.effect === 'review');
    assert.deepEqual(held.approvers, { groups: ['dba'], subjects: ['alice'], minApprovals: 2, requireReason: true });
    assert.match(held.reason, /requires approval/);
  });

  it('the builtin empty rule is the exported one', () => {
    const d = engine(doc(P('a', '{ effect: allow, sql: { types: [select] } }'))).decide(identity(), 'x', sql(), NOW);
    assert.equal(d.effect, 'allow');
    assert.equal(d.rule, BUILTIN_EMPTY_RULE);
    assert.deepEqual(d.statements, []);
  });
});

describe('the example policy', () => {
  const e = engine(EXAMPLE);
  const id = identity();
  const decide = (cmd: Command, conn = 'prod-pg'): CommandDecision => e.decide(id, conn, cmd, NOW);

  it('is accepted as written', () => {
    const [p] = e.policies;
    assert.equal(e.policies.length, 1);
    assert.equal(p?.name, 'agents-on-prod');
    assert.equal(p?.rules.length, 7);
    assert.equal(p?.source, 'policies/test.yaml:2');
    assert.deepEqual(p?.rules.map((r) => r.source), [7, 8, 9, 10, 11, 12, 13].map((n) => `policies/test.yaml:${n}`));
    assert.equal(p?.rules[6]?.ssh?.command, '^rm\\s+-rf');
  });

  it('decides as the comments say', () => {
    assert.equal(summary(decide(sql(SELECT))), 'allow agents-on-prod#3');
    assert.equal(summary(decide(sql(INSERT))), 'allow agents-on-prod#3');
    assert.equal(summary(decide(sql(DELETE))), 'review agents-on-prod#2');
    assert.equal(summary(decide(sql(DROP))), 'deny agents-on-prod#0');
    const dropped = decide(sql(DROP));
    assert.equal(dropped.effect === 'deny' && dropped.reason, 'schema and privilege changes are blocked');
    assert.equal(summary(decide(sql(GRANT))), 'deny agents-on-prod#0');
    assert.equal(summary(decide(sql(stmt('select', { functions: ['pg_read_file'] })))), 'deny agents-on-prod#1');
    assert.equal(summary(decide(sql(stmt('select', { functions: ['pg_catalog.lo_export'] })))), 'deny agents-on-prod#1');
    assert.equal(summary(decide(sql(stmt('ddl', { subtype: 'truncate' })))), 'deny agents-on-prod#0');
    assert.equal(summary(decide(sql(UNKNOWN))), 'deny default');
    assert.equal(summary(decide(k8s('delete', 'pods', { namespace: 'prod', name: 'x' }))), 'deny agents-on-prod#5');
    assert.equal(summary(decide(k8s('get', 'pods', { namespace: 'prod', name: 'x' }))), 'deny default');
    assert.equal(summary(decide(ssh('exec', 'rm  -rf /'))), 'deny agents-on-prod#6');
    assert.equal(summary(decide(sql(SELECT), 'other-db')), 'deny default');
  });

  it('masks allowed and reviewed results', () => {
    const d = decide(sql(SELECT));
    assert.ok(d.effect === 'allow');
    assert.equal(d.masks.length, 1);
    assert.deepEqual(
      { ...d.masks[0], rule: undefined },
      { columns: ['*.card_number', 'users.ssn'], paths: [], detectors: ['payment_card', 'api_key'], strategy: 'redact', rule: undefined },
    );
    assert.equal(d.masks[0]?.rule.index, 4);
    const r = decide(sql(DELETE));
    assert.ok(r.effect === 'review');
    assert.equal(r.masks.length, 1);
  });

  it('canConnect, applicable, maskPlan', () => {
    assert.deepEqual(e.canConnect(id, 'prod-pg', NOW), { ok: true, requireGrant: false, policies: ['agents-on-prod'] });
    const refused = e.canConnect(identity({ groups: ['humans'] }), 'prod-pg', NOW);
    assert.equal(refused.ok, false);
    assert.match(refused.reason ?? '', /no policy/);
    assert.equal(e.canConnect(id, 'staging', NOW).ok, false);
    assert.deepEqual(e.applicable(id, 'prod-pg', NOW).map((p) => p.name), ['agents-on-prod']);
    assert.equal(e.maskPlan(id, 'prod-pg', NOW).length, 1);
    assert.deepEqual(e.maskPlan(id, 'staging', NOW), []);
  });
});

describe('subjects and connections', () => {
  const policy = (subjects: string, connections = ''): PolicyEngine =>
    engine(`policies:\n  - name: p\n    subjects: ${subjects}\n${connections === '' ? '' : `    connections: ${connections}\n`}    rules: [ { effect: allow } ]\n`);
  const applies = (e: PolicyEngine, id: Identity, conn = 'prod-pg'): boolean => e.canConnect(id, conn, NOW).ok;

  const cases: { subjects: string; id: Partial<Identity>; ok: boolean }[] = [
    { subjects: "'*'", id: {}, ok: true },
    { subjects: '{}', id: { groups: [] }, ok: true },
    { subjects: '{ groups: [dba, ai-agents] }', id: {}, ok: true },
    { subjects: '{ groups: [dba] }', id: {}, ok: false },
    { subjects: '{ groups: ai-* }', id: {}, ok: true },
    { subjects: '{ sub: [agent-*] }', id: {}, ok: true },
    { subjects: '{ sub: ["*@example.com"] }', id: { subject: 'alice@example.com' }, ok: true },
    { subjects: '{ sub: ["*@example.com"] }', id: { subject: 'alice@example.org' }, ok: false },
    { subjects: '{ client_id: [agent-client] }', id: {}, ok: true },
    { subjects: '{ client_id: [agent-client] }', id: { clientId: undefined }, ok: false },
    { subjects: '{ issuer: ["https://idp.example.com"] }', id: {}, ok: true },
    { subjects: '{ claims: { tenant: acme } }', id: { claims: { tenant: 'acme' } }, ok: true },
    { subjects: '{ claims: { tenant: acme } }', id: { claims: { tenant: 'other' } }, ok: false },
    { subjects: '{ claims: { tenant: acme } }', id: { claims: {} }, ok: false },
    { subjects: '{ claims: { roles: deployer } }', id: { claims: { roles: ['reader', 'deployer'] } }, ok: true },
    { subjects: '{ claims: { roles: deployer } }', id: { claims: { roles: ['reader'] } }, ok: false },
    { subjects: '{ claims: { level: 3 } }', id: { claims: { level: 3 } }, ok: true },
    { subjects: '{ claims: { level: 3 } }', id: { claims: { level: '3' } }, ok: true },
    { subjects: '{ claims: { ci: true } }', id: { claims: { ci: true } }, ok: true },
    { subjects: '{ groups: [ai-agents], sub: [agent-1] }', id: {}, ok: true },
    { subjects: '{ groups: [ai-agents], sub: [agent-2] }', id: {}, ok: false },
    { subjects: '{ groups: [ai-agents], claims: { tenant: acme } }', id: { claims: { tenant: 'acme' } }, ok: true },
  ];
  for (const c of cases) {
    it(`${c.subjects} ${JSON.stringify(c.id)} → ${c.ok ? 'applies' : 'does not apply'}`, () => {
      assert.equal(applies(policy(c.subjects), identity(c.id)), c.ok);
    });
  }

  it('connection globs', () => {
    const e = policy("'*'", '[prod-*, staging]');
    assert.equal(applies(e, identity(), 'prod-pg'), true);
    assert.equal(applies(e, identity(), 'prod-mysql'), true);
    assert.equal(applies(e, identity(), 'staging'), true);
    assert.equal(applies(e, identity(), 'staging-2'), false);
    assert.equal(applies(e, identity(), 'dev'), false);
    assert.equal(applies(policy("'*'"), identity(), 'anything'), true);
    assert.equal(applies(policy("'*'", "'*'"), identity(), 'anything'), true);
  });

  it('require_grant on any applicable policy requires a grant', () => {
    const e = engine(`policies:
  - { name: a, subjects: '*', rules: [ { effect: allow } ] }
  - { name: b, subjects: { groups: [ai-agents] }, connections: [prod-*], require_grant: true, rules: [ { effect: mask, detectors: [default] } ] }
`);
    assert.deepEqual(e.canConnect(identity(), 'prod-pg', NOW), { ok: true, requireGrant: true, policies: ['a', 'b'] });
    assert.deepEqual(e.canConnect(identity(), 'dev-pg', NOW), { ok: true, requireGrant: false, policies: ['a'] });
  });
});

describe('schedules', () => {
  // NOW = Wednesday 2026-11-25 10:30 UTC = 11:30 in Berlin (CET, UTC+1).
  const at = (iso: string): Date => new Date(iso);
  const ruleSchedule = (schedule: string): PolicyEngine =>
    engine(`policies:\n  - name: p\n    subjects: '*'\n    rules:\n      - { effect: allow, schedule: ${schedule} }\n`);
  const allowed = (e: PolicyEngine, now: Date): boolean => e.decide(identity(), 'c', ssh('exec', 'ls'), now).effect === 'allow';

  const cases: { schedule: string; now: string; inside: boolean }[] = [
    { schedule: '{ days: [mon-fri], hours: "09:00-18:00", timezone: Europe/Berlin }', now: '2026-11-25T10:30:00Z', inside: true },
    { schedule: '{ days: [mon-fri], hours: "09:00-18:00", timezone: Europe/Berlin }', now: '2026-11-25T07:59:00Z', inside: false },
    { schedule: '{ days: [mon-fri], hours: "09:00-18:00", timezone: Europe/Berlin }', now: '2026-11-25T08:00:00Z', inside: true },
    { schedule: '{ days: [mon-fri], hours: "09:00-18:00", timezone: Europe/Berlin }', now: '2026-11-25T16:59:00Z', inside: true },
    { schedule: '{ days: [mon-fri], hours: "09:00-18:00", timezone: Europe/Berlin }', now: '2026-11-25T17:00:00Z', inside: false },
    { schedule: '{ days: [mon-fri], hours: "09:00-18:00", timezone: Europe/Berlin }', now: '2026-11-28T10:30:00Z', inside: false },
    // summer time: 09:00 Berlin = 07:00 UTC
    { schedule: '{ hours: "09:00-18:00", timezone: Europe/Berlin }', now: '2026-07-01T07:00:00Z', inside: true },
    { schedule: '{ hours: "09:00-18:00", timezone: Europe/Berlin }', now: '2026-07-01T06:59:00Z', inside: false },
    { schedule: '{ days: [sat, sun] }', now: '2026-11-28T23:59:00Z', inside: true },
    { schedule: '{ days: [sat, sun] }', now: '2026-11-25T12:00:00Z', inside: false },
    // overnight window belongs to the day it starts on
    { schedule: '{ days: [fri], hours: "22:00-06:00" }', now: '2026-11-27T23:00:00Z', inside: true },
    { schedule: '{ days: [fri], hours: "22:00-06:00" }', now: '2026-11-28T05:59:00Z', inside: true },
    { schedule: '{ days: [fri], hours: "22:00-06:00" }', now: '2026-11-28T06:00:00Z', inside: false },
    { schedule: '{ days: [fri], hours: "22:00-06:00" }', now: '2026-11-27T05:00:00Z', inside: false },
    { schedule: '{ hours: ["08:00-09:00", "17:00-18:00"] }', now: '2026-11-25T17:30:00Z', inside: true },
    { schedule: '{ hours: ["08:00-09:00", "17:00-18:00"] }', now: '2026-11-25T12:00:00Z', inside: false },
  ];
  for (const c of cases) {
    it(`${c.schedule} at ${c.now} → ${c.inside ? 'inside' : 'outside'}`, () => {
      assert.equal(allowed(ruleSchedule(c.schedule), at(c.now)), c.inside);
    });
  }

  it('a policy schedule decides whether the policy applies at all', () => {
    const e = engine(`policies:
  - name: office-hours
    subjects: '*'
    schedule: { days: [mon-fri], hours: "09:00-18:00", timezone: Europe/Berlin }
    rules: [ { effect: allow } ]
`);
    assert.equal(e.canConnect(identity(), 'c', NOW).ok, true);
    assert.equal(e.canConnect(identity(), 'c', at('2026-11-28T10:00:00Z')).ok, false);
    assert.equal(summary(e.decide(identity(), 'c', sql(SELECT), at('2026-11-25T20:00:00Z'))), 'deny default');
  });

  it('a deny rule with a schedule only denies inside its window', () => {
    const e = engine(`policies:
  - name: p
    subjects: '*'
    rules:
      - { effect: allow }
      - { effect: deny, sql: { types: [write] }, schedule: { days: [fri] }, reason: "no writes on Fridays" }
`);
    assert.equal(e.decide(identity(), 'c', sql(INSERT), NOW).effect, 'allow');
    assert.equal(e.decide(identity(), 'c', sql(INSERT), at('2026-11-27T12:00:00Z')).effect, 'deny');
  });
});

describe('sql conditions', () => {
  const one = (rule: string, s: SqlStatement): string => summary(engine(`policies:\n  - { name: p, subjects: '*', rules: [ ${rule} ] }\n`).decide(identity(), 'c', sql(s), NOW));

  it('tables: globs over qualified and bare names', () => {
    assert.equal(one('{ effect: deny, sql: { tables: [users] } }', SELECT), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { tables: [public.users] } }', SELECT), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { tables: ["public.*"] } }', SELECT), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { tables: ["*.users"] } }', INSERT), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { tables: [USERS] } }', SELECT), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { tables: [audit.users] } }', SELECT), 'deny default');
  });

  it('tables: deny needs one table, allow needs every table (and at least one)', () => {
    const join = stmt('select', { tables: [t('public.orders'), t('private.keys')] });
    assert.equal(one('{ effect: deny, sql: { tables: [private.*] } }', join), 'deny p#0');
    assert.equal(one('{ effect: allow, sql: { tables: [public.*] } }', join), 'deny default');
    assert.equal(one('{ effect: allow, sql: { tables: [public.*, private.keys] } }', join), 'allow p#0');
    assert.equal(one('{ effect: allow, sql: { tables: ["*"] } }', stmt('do')), 'deny default');
  });

  it('access', () => {
    const cte = stmt('select', { tables: [t('users'), t('audit_log', 'write')] });
    assert.equal(one('{ effect: allow, sql: { access: read } }', SELECT), 'allow p#0');
    assert.equal(one('{ effect: allow, sql: { access: read } }', cte), 'deny default');
    assert.equal(one('{ effect: deny, sql: { access: write } }', cte), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { tables: [users], access: write } }', cte), 'deny default');
    assert.equal(one('{ effect: deny, sql: { tables: [audit_log], access: write } }', cte), 'deny p#0');
  });

  it('type aliases: read, write, ddl, dcl', () => {
    const cte = stmt('select', { tables: [t('users', 'write')] });
    assert.equal(one('{ effect: allow, sql: { types: [read] } }', SELECT), 'allow p#0');
    assert.equal(one('{ effect: allow, sql: { types: [read] } }', stmt('show')), 'allow p#0');
    assert.equal(one('{ effect: allow, sql: { types: [read] } }', cte), 'deny default');
    assert.equal(one('{ effect: deny, sql: { types: [write] } }', cte), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { types: [write] } }', stmt('copy', { subtype: 'copy_from' })), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { types: [write] } }', stmt('copy', { subtype: 'copy_to' })), 'deny default');
    assert.equal(one('{ effect: deny, sql: { types: [ddl] } }', stmt('utility', { subtype: 'comment_on' })), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { types: [dcl] } }', stmt('utility', { subtype: 'revoke' })), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { types: [ddl] } }', stmt('utility', { subtype: 'createdb_check' })), 'deny default');
  });

  it('subtypes, functions, program', () => {
    assert.equal(one('{ effect: deny, sql: { subtypes: ["drop_*"] } }', DROP), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { subtypes: ["create_*"] } }', DROP), 'deny default');
    assert.equal(one('{ effect: allow, sql: { functions: [now, lower] } }', stmt('select', { functions: ['now'] })), 'allow p#0');
    assert.equal(one('{ effect: allow, sql: { functions: [now] } }', stmt('select', { functions: ['now', 'pg_sleep'] })), 'deny default');
    assert.equal(one('{ effect: allow, sql: { functions: [now] } }', stmt('select')), 'deny default');
    assert.equal(one('{ effect: deny, sql: { functions: ["pg_*"] } }', stmt('select', { functions: ['lower', 'pg_sleep'] })), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { program: true } }', stmt('copy', { program: true })), 'deny p#0');
    assert.equal(one('{ effect: deny, sql: { program: true } }', stmt('copy')), 'deny default');
    assert.equal(one('{ effect: allow, sql: { types: [copy], program: false } }', stmt('copy', { program: true })), 'deny default');
  });

  it('all conditions of a rule must match', () => {
    assert.equal(one('{ effect: deny, sql: { types: [delete], tables: [orders] } }', DELETE), 'deny default');
    assert.equal(one('{ effect: deny, sql: { types: [delete], tables: [users] }, regex: "(?i)where" }', DELETE), 'deny default');
    assert.equal(one('{ effect: deny, sql: { types: [delete], tables: [users] }, regex: "(?i)^delete" }', DELETE), 'deny p#0');
  });
});

describe('regex rules', () => {
  const e = engine(`policies:
  - name: p
    subjects: '*'
    rules:
      - { effect: allow }
      - { effect: deny, regex: "(?i)\\\\bpg_sleep\\\\b" }
      - { effect: deny, regex: "^kubectl|secrets" }
`);
  it('case-insensitive with (?i), case-sensitive otherwise', () => {
    assert.equal(summary(e.decide(identity(), 'c', sql(stmt('select', { text: 'SELECT PG_SLEEP(10)' })), NOW)), 'deny p#1');
    assert.equal(summary(e.decide(identity(), 'c', sql(stmt('select', { text: 'select pg_sleeper()' })), NOW)), 'allow p#0');
  });
  it('sees k8s and ssh command text', () => {
    assert.equal(summary(e.decide(identity(), 'c', k8s('get', 'secrets', { namespace: 'x' }), NOW)), 'deny p#2');
    assert.equal(summary(e.decide(identity(), 'c', ssh('exec', 'cat secrets.txt'), NOW)), 'deny p#2');
    assert.equal(summary(e.decide(identity(), 'c', ssh('exec', 'cat SECRETS.txt'), NOW)), 'allow p#0');
  });
});

describe('k8s conditions', () => {
  const e = engine(`policies:
  - name: p
    subjects: '*'
    rules:
      - { effect: allow, k8s: { verbs: [get, list, watch], namespaces: [dev, prod] } }
      - { effect: allow, k8s: { verbs: [create], resources: [pods/exec], namespaces: [dev] } }
      - { effect: allow, k8s: { verbs: [get], groups: [core], resources: [nodes], namespaces: [""] } }
      - { effect: deny, k8s: { resources: [secrets], namespaces: [prod] }, reason: "prod secrets" }
      - { effect: deny, k8s: { verbs: [delete, deletecollection], groups: [apps], resources: ["*"], names: [critical-*] } }
      - { effect: review, k8s: { verbs: [delete], namespaces: [prod] } }
`);
  const d = (cmd: K8sCommand): string => summary(e.decide(identity(), 'cluster', cmd, NOW));

  it('verbs, namespaces, resources and subresources', () => {
    assert.equal(d(k8s('get', 'pods', { namespace: 'dev', name: 'x' })), 'allow p#0');
    assert.equal(d(k8s('get', 'pods', { namespace: 'qa', name: 'x' })), 'deny default');
    assert.equal(d(k8s('patch', 'pods', { namespace: 'dev', name: 'x' })), 'deny default');
    assert.equal(d(k8s('create', 'pods', { subresource: 'exec', namespace: 'dev', name: 'x' })), 'allow p#1');
    assert.equal(d(k8s('create', 'pods', { namespace: 'dev' })), 'deny default');
    assert.equal(d(k8s('create', 'pods', { subresource: 'exec', namespace: 'prod', name: 'x' })), 'deny default');
  });

  it('groups: core is the empty group', () => {
    assert.equal(d(k8s('get', 'nodes', { name: 'n1' })), 'allow p#2');
    assert.equal(d(k8s('get', 'nodes', { group: 'metrics.k8s.io', name: 'n1' })), 'deny default');
  });

  it('deny rules: namespaced and across all namespaces', () => {
    assert.equal(d(k8s('get', 'secrets', { namespace: 'prod', name: 's' })), 'deny p#3');
    assert.equal(d(k8s('get', 'secrets', { namespace: 'dev', name: 's' })), 'allow p#0');
    // `kubectl get secrets -A` lists prod's secrets too
    assert.equal(d(k8s('list', 'secrets')), 'deny p#3');
    // a cluster-scoped read is not "in prod"
    assert.equal(d(k8s('get', 'nodes', { name: 'n1' })), 'allow p#2');
  });

  it('allow rules do not match requests without a namespace unless they name ""', () => {
    assert.equal(d(k8s('list', 'pods')), 'deny default');
  });

  it('names: a request without a name matches deny name conditions', () => {
    assert.equal(d(k8s('delete', 'deployments', { group: 'apps', namespace: 'dev', name: 'critical-api' })), 'deny p#4');
    assert.equal(d(k8s('deletecollection', 'deployments', { group: 'apps', namespace: 'dev' })), 'deny p#4');
    assert.equal(d(k8s('delete', 'deployments', { group: 'apps', namespace: 'dev', name: 'web' })), 'deny default');
  });

  it('review and the namespace object itself', () => {
    assert.equal(d(k8s('delete', 'pods', { namespace: 'prod', name: 'web-1' })), 'review p#5');
    assert.equal(d(k8s('delete', 'namespaces', { name: 'prod' })), 'review p#5');
    assert.equal(d(k8s('delete', 'namespaces', { name: 'dev' })), 'deny default');
  });
});

describe('ssh conditions', () => {
  const e = engine(`policies:
  - name: p
    subjects: '*'
    rules:
      - { effect: allow, ssh: { channels: [exec, sftp] } }
      - { effect: deny, ssh: { command: "^rm\\\\s+-rf" } }
      - { effect: review, ssh: { channels: [exec], command: "(?i)^sudo\\\\b" } }
      - { effect: deny, ssh: { channels: [forward, agent] } }
`);
  const d = (cmd: SshCommand): string => summary(e.decide(identity(), 'host', cmd, NOW));
  it('channels and command patterns', () => {
    assert.equal(d(ssh('exec', 'ls -la')), 'allow p#0');
    assert.equal(d(ssh('exec', 'rm -rf /var')), 'deny p#1');
    assert.equal(d(ssh('exec', 'SUDO systemctl restart x')), 'review p#2');
    assert.equal(d(ssh('sftp')), 'allow p#0');
    assert.equal(d(ssh('shell')), 'deny default');
    assert.equal(d(ssh('forward')), 'deny p#3');
    assert.equal(d(ssh('agent')), 'deny p#3');
  });
  it('a command pattern does not match a channel without a command', () => {
    const e2 = engine(`policies:\n  - { name: p, subjects: '*', rules: [ { effect: allow }, { effect: deny, ssh: { command: "." } } ] }\n`);
    assert.equal(summary(e2.decide(identity(), 'h', ssh('shell'), NOW)), 'allow p#0');
  });
});

describe('mask plans', () => {
  const e = engine(`policies:
  - name: base
    subjects: '*'
    rules:
      - { effect: allow, sql: { types: [select, unknown] } }
      - { effect: review, sql: { types: [delete] } }
      - { effect: mask, columns: ["*.card_number"], strategy: partial, keep: 4 }
      - { effect: mask, sql: { tables: [payments] }, detectors: [iban], strategy: hash }
      - { effect: mask, k8s: { resources: [secrets] }, paths: ["Secret.data.*"] }
  - name: agents
    subjects: { groups: [ai-agents] }
    rules:
      - { effect: mask, detectors: [default] }
  - name: humans
    subjects: { groups: [humans] }
    rules:
      - { effect: mask, columns: [users.ssn] }
`);
  const masks = (d: CommandDecision): string[] => (d.effect === 'deny' ? [] : d.masks.map((m) => `${m.rule.policy}#${m.rule.index}`));

  it('every applicable mask rule whose conditions match contributes', () => {
    assert.deepEqual(masks(e.decide(identity(), 'c', sql(SELECT), NOW)), ['base#2', 'agents#0']);
    assert.deepEqual(masks(e.decide(identity(), 'c', sql(stmt('select', { tables: [t('payments')] })), NOW)), ['base#2', 'base#3', 'agents#0']);
    assert.deepEqual(masks(e.decide(identity({ groups: ['humans'] }), 'c', sql(SELECT), NOW)), ['base#2', 'humans#0']);
  });

  it('review decisions carry masks, denials do not', () => {
    const r = e.decide(identity(), 'c', sql(DELETE), NOW);
    assert.equal(r.effect, 'review');
    assert.deepEqual(masks(r), ['base#2', 'agents#0']);
    const d = e.decide(identity(), 'c', sql(DROP), NOW);
    assert.equal(d.effect, 'deny');
    assert.equal('masks' in d, false);
  });

  it('a multi-statement decision carries the union of its statements masks', () => {
    const d = e.decide(identity(), 'c', sql(SELECT, stmt('select', { tables: [t('payments')] })), NOW);
    assert.deepEqual(masks(d), ['base#2', 'agents#0', 'base#3']);
    assert.deepEqual(d.statements?.map((s) => masks(s)), [['base#2', 'agents#0'], ['base#2', 'base#3', 'agents#0']]);
  });

  it('an allowed unknown statement gets every mask rule whose sql conditions cannot be checked', () => {
    assert.deepEqual(masks(e.decide(identity(), 'c', sql(UNKNOWN), NOW)), ['base#2', 'base#3', 'agents#0']);
  });

  it('the session plan is the superset of applicable mask rules', () => {
    const plan = e.maskPlan(identity(), 'c', NOW);
    assert.deepEqual(plan.map((m) => `${m.rule.policy}#${m.rule.index}`), ['base#2', 'base#3', 'base#4', 'agents#0']);
    assert.deepEqual(plan[0], { columns: ['*.card_number'], paths: [], detectors: [], strategy: 'partial', keep: 4, rule: plan[0]?.rule });
    assert.deepEqual(plan[2]?.paths, ['Secret.data.*']);
  });
});

describe('explain', () => {
  it('lists every policy and rule with why, per statement', () => {
    const e = engine(`${EXAMPLE}  - name: humans
    subjects: { groups: [humans] }
    rules: [ { effect: allow } ]
`);
    const x = e.explain(identity(), 'prod-pg', sql(SELECT, DROP), NOW);
    assert.equal(x.decision.effect, 'deny');
    assert.deepEqual(x.policies.map((p) => [p.policy, p.applies]), [['agents-on-prod', true], ['humans', false]]);
    assert.match(x.policies[1]?.why ?? '', /groups \[humans\] does not match/);
    assert.equal(x.rules.length, 14);
    const drop = x.rules.filter((r) => r.statement === 1);
    assert.deepEqual(drop.filter((r) => r.matched).map((r) => r.index), [0, 4]);
    assert.match(drop[3]?.why ?? '', /sql\.types \[select, insert\] does not match \(type ddl\/drop_table\)/);
    assert.match(drop[5]?.why ?? '', /k8s rule; the command is sql/);
    const text = formatExplanation(x);
    assert.match(text, /^Decision: DENY by agents-on-prod#0 \(policies\/test\.yaml:7\): schema and privilege changes are blocked/);
    assert.match(text, /Statement 2 \(ddl\/drop_table\): DROP TABLE users/);
    assert.match(text, /- humans \[policies\/test\.yaml:14\]: subjects: groups \[humans\] does not match \(groups \[ai-agents\]\)/);
  });

  it('explains unknown statements and refusal', () => {
    const e = engine(EXAMPLE);
    const x = e.explain(identity(), 'prod-pg', sql(UNKNOWN), NOW);
    assert.match(x.rules.find((r) => r.index === 3)?.why ?? '', /could not be classified .*syntax error/);
    const none = formatExplanation(e.explain(identity({ groups: [] }), 'prod-pg', sql(SELECT), NOW));
    assert.match(none, /No policy applies/);
    assert.match(none, /DENY by default/);
  });
});

describe('load errors', () => {
  const fail = (yaml: string, file = 'policies/bad.yaml'): string[] => {
    try {
      parsePolicies(yaml, file);
    } catch (e) {
      assert.ok(isGatehouseError(e, 'ERR_POLICY'));
      return e.message.split('\n');
    }
    assert.fail('expected an error');
  };

  it('names file, line, column and key path; collects every issue', () => {
    const lines = fail(`policies:
  - name: p
    subjects: { groups: [a], team: x }
    rules:
      - { effect: alow }
      - effect: deny
        regex: "(unclosed"
      - { effect: review, columns: [x] }
      - { effect: mask }
      - { effect: allow, sql: { types: [select] }, k8s: { verbs: [get] } }
      - { effect: allow, schedule: { days: [funday], hours: "9-5", timezone: Mars/Base } }
`);
    assert.deepEqual(lines, [
      'policies/bad.yaml:3:30: policies[0].subjects.team: unknown key',
      'policies/bad.yaml:5:11: policies[0].rules[0].effect: expected one of allow|deny|review|mask',
      'policies/bad.yaml:7:9: policies[0].rules[1].regex: invalid regular expression: /(unclosed/: Unterminated group',
      'policies/bad.yaml:8:27: policies[0].rules[2].columns: only mask rules have columns',
      'policies/bad.yaml:9:11: policies[0].rules[3].effect: a mask rule needs columns, paths or detectors',
      'policies/bad.yaml:10:52: policies[0].rules[4].k8s: a rule matches one protocol: sql and k8s cannot both match a command',
      'policies/bad.yaml:11:45: policies[0].rules[5].schedule.days[0]: expected a weekday (mon, tue, …) or a range (mon-fri), got "funday"',
      'policies/bad.yaml:11:54: policies[0].rules[5].schedule.hours: expected a window like "09:00-18:00"',
      'policies/bad.yaml:11:68: policies[0].rules[5].schedule.timezone: unknown time zone (use an IANA name such as Europe/Berlin)',
    ]);
  });

  it('missing keys, wrong shapes, syntax errors, duplicates', () => {
    assert.deepEqual(fail('policies:\n  - name: p\n    rules: []\n'), [
      'policies/bad.yaml:2:5: policies[0].subjects: required',
      'policies/bad.yaml:3:5: policies[0].rules: must not be empty',
    ]);
    assert.deepEqual(fail('rules: []\n'), ['policies/bad.yaml:1:1: policies: required', 'policies/bad.yaml:1:1: rules: unknown key']);
    assert.deepEqual(fail(''), ['policies/bad.yaml:1:1: empty policy file: expected a top-level `policies:` list']);
    assert.match(fail('policies: [ { name: p\n')[0] ?? '', /^policies\/bad\.yaml:\d+:\d+: YAML: /);
    assert.deepEqual(fail("policies:\n  - { name: p, subjects: '*', rules: [ { effect: allow } ] }\n  - { name: p, subjects: '*', rules: [ { effect: deny } ] }\n"), [
      'policies/bad.yaml:3:7: policies[1].name: duplicate policy name "p" (first defined at policies/bad.yaml:2)',
    ]);
  });

  it('unknown detectors, when the known ones are given', () => {
    const yaml = "policies:\n  - { name: p, subjects: '*', rules: [ { effect: mask, detectors: [payment_card, nope] } ] }\n";
    assert.equal(parsePolicies(yaml, 'p.yaml').length, 1);
    assert.throws(() => parsePolicies(yaml, 'p.yaml', { detectors: ['payment_card', 'api_key'] }), {
      message: 'p.yaml:2:82: policies[0].rules[0].detectors[1]: unknown detector "nope" (known: api_key, payment_card)',
    });
  });
});

describe('loadPolicies from files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-policy-'));
    await mkdir(join(dir, 'policies', 'teams', 'data'), { recursive: true });
    await writeFile(join(dir, 'policies', 'a.yaml'), "policies:\n  - { name: a, subjects: '*', rules: [ { effect: allow, sql: { types: [select] } } ] }\n");
    await writeFile(join(dir, 'policies', 'b.yaml'), "policies:\n  - { name: b, subjects: '*', rules: [ { effect: deny, sql: { types: [ddl] } } ] }\n");
    await writeFile(join(dir, 'policies', 'teams', 'data', 'c.yaml'), "policies:\n  - { name: c, subjects: '*', rules: [ { effect: review } ] }\n");
    await writeFile(join(dir, 'policies', 'notes.txt'), 'not a policy');
    await writeFile(join(dir, 'policies', '.hidden.yaml'), 'broken: [');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('expands globs, sorted, with sources relative to the base dir', async () => {
    const set = await loadPolicies('./policies/*.yaml', dir);
    assert.deepEqual(set.policies.map((p) => p.name), ['a', 'b']);
    assert.deepEqual(set.files, [join(dir, 'policies', 'a.yaml'), join(dir, 'policies', 'b.yaml')]);
    assert.equal(set.policies[0]?.rules[0]?.source, 'policies/a.yaml:2');
    const deep = await loadPolicies(['policies/**/*.yaml'], dir);
    assert.deepEqual(deep.policies.map((p) => p.name), ['a', 'b', 'c']);
  });

  it('mixes globs and inline policies', async () => {
    const inline = parsePolicies("policies:\n  - { name: inline, subjects: '*', rules: [ { effect: allow } ] }\n", 'gatehouse.yaml');
    const set = await loadPolicies(['policies/b.yaml', ...inline], dir);
    assert.deepEqual(set.policies.map((p) => p.name), ['b', 'inline']);
    const e = new PolicyEngine(set);
    assert.equal(summary(e.decide(identity(), 'c', sql(DROP), NOW)), 'deny b#0');
  });

  it('reports every broken file, missing matches and duplicates across files', async () => {
    await writeFile(join(dir, 'policies', 'teams', 'broken.yaml'), "policies:\n  - { name: a, subjects: '*', rules: [ { effect: allow, regex: '[' } ] }\n");
    try {
      await assert.rejects(loadPolicies(['policies/**/*.yaml', 'missing/*.yaml'], dir), (e: unknown) => {
        assert.ok(isGatehouseError(e, 'ERR_POLICY'));
        const lines = e.message.split('\n');
        assert.ok(lines.includes(`missing/*.yaml: no policy file matches (relative to ${dir})`), e.message);
        assert.ok(lines.some((l) => l.startsWith('policies/teams/broken.yaml:2:') && l.includes('rules[0].regex: invalid regular expression')), e.message);
        return true;
      });
      await writeFile(join(dir, 'policies', 'teams', 'broken.yaml'), "policies:\n  - { name: a, subjects: '*', rules: [ { effect: allow } ] }\n");
      await assert.rejects(loadPolicies('policies/**/*.yaml', dir), {
        message: 'policies/teams/broken.yaml:2:7: policies[0].name: duplicate policy name "a" (first defined at policies/a.yaml:2)',
      });
    } finally {
      await rm(join(dir, 'policies', 'teams', 'broken.yaml'));
    }
  });

  it('globFiles: *, ** and dot-files', async () => {
    assert.deepEqual(await globFiles('policies/*', dir), ['a.yaml', 'b.yaml', 'notes.txt'].map((f) => join(dir, 'policies', f)));
    assert.deepEqual(await globFiles('policies/**/c.yaml', dir), [join(dir, 'policies', 'teams', 'data', 'c.yaml')]);
    assert.deepEqual(await globFiles('policies/.*.yaml', dir), [join(dir, 'policies', '.hidden.yaml')]);
    assert.deepEqual(await globFiles(join(dir, 'policies', 'a.yaml'), '/elsewhere'), [join(dir, 'policies', 'a.yaml')]);
    assert.deepEqual(await globFiles('policies/none.yaml', dir), []);
  });

  it('compileGlobs', () => {
    const g = compileGlobs(['prod-*', 'exact', 'a?c']);
    assert.deepEqual(['prod-pg', 'prod-', 'exact', 'abc', 'abbc', 'staging', 'exactly'].map((s) => g.test(s)), [true, true, true, true, false, false, false]);
    assert.equal(compileGlobs(['*']).all, true);
    assert.equal(compileGlobs(['A.b'], { ignoreCase: true }).test('a.B'), true);
    assert.equal(compileGlobs(['a.b']).test('aXb'), false);
  });
});
