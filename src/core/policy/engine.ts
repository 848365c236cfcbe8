/**
 * The policy engine: compiled once from a {@link PolicySet}, then asked for a decision per command.
 *
 * Semantics (the reference is docs/policy.md):
 *
 * - A policy **applies** to an identity on a connection when every subject selector it sets matches,
 *   the connection name matches one of its `connections` globs (none = every connection) and `now` is
 *   inside its `schedule` (if any).
 * - A rule **matches** a command when every condition it sets matches. A rule with `sql`, `k8s` or `ssh`
 *   conditions never matches another protocol's command; a rule with no condition matches every
 *   command. SQL commands are decided statement by statement; `regex` then sees the statement's text.
 * - Across every applicable policy: any matching `deny` wins, then `review`, then `allow`; nothing
 *   matching is `{ effect: 'deny', rule: 'default' }`. Among several matching rules of the winning
 *   effect, the first (policy load order, then rule order) is reported.
 * - An SQL command's decision is its strictest statement's (deny > review > allow); `statements` holds
 *   one decision per statement. Masks of a command decision are the union of its statements'.
 * - `unknown` statements (the classifier could not tell what they do) are matched by `allow` and
 *   `review` rules only when those name `unknown` in `sql.types`; `deny` rules match them normally.
 * - `empty` statements (and an SQL command with no statements at all) can be denied by a matching
 *   `deny` rule but are never held for review; otherwise they are allowed by the first matching
 *   `allow` rule or, failing that, by the built-in rule `{ policy: '(builtin)', index: -1 }` —
 *   provided some policy applies at all.
 * - Quantifiers: for `allow` rules, `sql.tables`/`sql.access` require every table of the statement to
 *   match (and at least one table), `sql.functions` every called function (and at least one); for
 *   `deny`, `review` and `mask` rules one matching table or function is enough.
 * - Kubernetes: for `deny`, `review` and `mask` rules a request without a name matches any `names`
 *   condition, and a collection request (`list`, `watch`, `deletecollection`) without a namespace
 *   (across all namespaces) matches any `namespaces` condition; deleting or reading the namespace
 *   object `prod` matches `namespaces: [prod]`. For `allow` rules a missing name or namespace is `""`.
 * - Mask rules never decide. Every mask rule of every applicable policy whose conditions match the
 *   command adds its {@link MaskSpec} to the masks of `allow` and `review` decisions; for `unknown`
 *   statements a mask rule's `sql` conditions are not checked (fail closed).
 */
import { commandText } from '../command.js';
import type { Command, K8sCommand, SqlStatement, SqlTableRef } from '../command.js';
import type { Identity } from '../identity/types.js';
import { compileGlobs } from './glob.js';
import type { GlobSet } from './glob.js';
import { compilePattern, parseHours, WEEKDAYS } from './schema.js';
import type { PolicyDefinition, PolicySet, RuleDefinition, ScheduleDefinition, SubjectSelector } from './schema.js';
import type { Approvers, CommandDecision, Decision, Effect, MaskPlan, MaskSpec, RuleRef } from './types.js';

/** The reference used for the built-in rule that allows empty SQL statements. */
export const BUILTIN_EMPTY_RULE: Readonly<RuleRef> = Object.freeze({ policy: '(builtin)', index: -1, effect: 'allow', reason: 'empty statement' });

/** Reason of the default denial. */
export const DEFAULT_DENY_REASON = 'no policy allows this';

/** The connect-time check. */
export interface ConnectCheck {
  /** False when no policy applies: the session is refused at login. */
  ok: boolean;
  /** Some applicable policy has `require_grant: true`: the session needs an active grant. */
  requireGrant: boolean;
  reason?: string;
  /** Names of the applicable policies. */
  policies: string[];
}

/** Why a policy does or does not apply. */
export interface PolicyTrace {
  policy: string;
  source?: string;
  applies: boolean;
  why: string;
}

/** One rule considered for one command (for SQL: one statement). */
export interface RuleTrace {
  policy: string;
  index: number;
  effect: Effect;
  source?: string;
  reason?: string;
  /** For SQL: index of the statement this line is about. */
  statement?: number;
  matched: boolean;
  why: string;
}

/** What `gatehouse policy explain` shows: every policy and rule considered and the final decision. */
export interface Explanation {
  identity: { issuer: string; subject: string; clientId?: string; groups: string[] };
  connection: string;
  /** `sql`, `k8s` or `ssh`. */
  kind: Command['kind'];
  /** The command's text as `regex` rules see it (not masked: mask it before showing it to others). */
  command: string;
  /** ISO time used for schedules. */
  at: string;
  statements?: { index: number; type: string; subtype?: string; text: string; unknownReason?: string }[];
  policies: PolicyTrace[];
  rules: RuleTrace[];
  decision: CommandDecision;
}

interface Ctx {
  cmd: Command;
  stmt: SqlStatement | undefined;
  text: string;
}

interface Cond {
  /** `sql.types [ddl, dcl]`. */
  label: string;
  sql: boolean;
  test(c: Ctx): boolean;
  /** What the command has, for explain: `type delete`. */
  actual(c: Ctx): string;
}

interface CompiledRule {
  ref: Readonly<RuleRef>;
  effect: Effect;
  kind: Command['kind'] | undefined;
  namesUnknown: boolean;
  schedule: Window | undefined;
  conds: Cond[];
  approvers: Approvers | undefined;
  mask: MaskSpec | undefined;
}

interface CompiledPolicy {
  def: PolicyDefinition;
  subjects: SubjectMatcher;
  connections: GlobSet | undefined;
  schedule: Window | undefined;
  rules: CompiledRule[];
  deny: CompiledRule[];
  review: CompiledRule[];
  allow: CompiledRule[];
  mask: CompiledRule[];
}

const EMPTY_STATEMENT: SqlStatement = Object.freeze({ type: 'empty', text: '', tables: [], functions: [] }) as SqlStatement;

/** Decides commands against a policy set. Everything is compiled at construction; `decide` does no parsing. */
export class PolicyEngine {
  readonly set: PolicySet;
  private readonly compiled: CompiledPolicy[];

  constructor(set: PolicySet) {
    this.set = set;
    this.compiled = set.policies.map(compilePolicy);
  }

  /** The policies, in load order. */
  get policies(): readonly PolicyDefinition[] {
    return this.set.policies;
  }

  /** The policies that apply to `identity` on `connection` at `now`. */
  applicable(identity: Identity, connection: string, now: Date = new Date()): PolicyDefinition[] {
    return this.applicableCompiled(identity, connection, now.getTime()).map((p) => p.def);
  }

  /** The connect-time check: refused when no policy applies; `requireGrant` when any applicable policy says so. */
  canConnect(identity: Identity, connection: string, now: Date = new Date()): ConnectCheck {
    const ps = this.applicableCompiled(identity, connection, now.getTime());
    if (ps.length === 0) return { ok: false, requireGrant: false, reason: `no policy gives ${identity.subject} access to connection "${connection}"`, policies: [] };
    return { ok: true, requireGrant: ps.some((p) => p.def.requireGrant), policies: ps.map((p) => p.def.name) };
  }

  /**
   * Every mask rule of every policy applicable now, whatever its conditions and schedule: the
   * session-wide superset, for maskers built once per session. Per-command decisions carry the exact set.
   */
  maskPlan(identity: Identity, connection: string, now: Date = new Date()): MaskPlan {
    const out: MaskPlan = [];
    for (const p of this.applicableCompiled(identity, connection, now.getTime())) for (const r of p.mask) if (r.mask !== undefined) out.push(r.mask);
    return out;
  }

  /** The decision for one command. Never throws for a denial. */
  decide(identity: Identity, connection: string, cmd: Command, now: Date = new Date()): CommandDecision {
    const ms = now.getTime();
    const ps = this.applicableCompiled(identity, connection, ms);
    if (ps.length === 0) {
      const d = defaultDeny();
      return cmd.kind === 'sql' ? { ...d, statements: cmd.statements.map(() => defaultDeny()) } : d;
    }
    if (cmd.kind !== 'sql') return decideOne(ps, { cmd, stmt: undefined, text: commandText(cmd) }, ms);
    if (cmd.statements.length === 0) return { ...decideOne(ps, { cmd, stmt: EMPTY_STATEMENT, text: '' }, ms), statements: [] };
    const statements: Decision[] = [];
    let worst: Decision | undefined;
    for (const stmt of cmd.statements) {
      const d = decideOne(ps, { cmd, stmt, text: stmt.text }, ms);
      statements.push(d);
      if (worst === undefined || RANK[d.effect] > RANK[worst.effect]) worst = d;
    }
    const top = worst as Decision;
    if (top.effect === 'deny' || statements.length === 1) return { ...top, statements };
    const masks = unionMasks(statements);
    return { ...top, masks, statements };
  }

  /** Every policy and rule considered for `cmd`, with why each matched or not, and the decision. */
  explain(identity: Identity, connection: string, cmd: Command, now: Date = new Date()): Explanation {
    const ms = now.getTime();
    const policies: PolicyTrace[] = [];
    const applicable: CompiledPolicy[] = [];
    for (const p of this.compiled) {
      const why = whyNotApplicable(p, identity, connection, ms);
      policies.push({ policy: p.def.name, ...opt('source', p.def.source), applies: why === undefined, why: why ?? whyApplicable(p) });
      if (why === undefined) applicable.push(p);
    }
    const rules: RuleTrace[] = [];
    const ctxs: [Ctx, number | undefined][] =
      cmd.kind !== 'sql'
        ? [[{ cmd, stmt: undefined, text: commandText(cmd) }, undefined]]
        : cmd.statements.length === 0
          ? [[{ cmd, stmt: EMPTY_STATEMENT, text: '' }, undefined]]
          : cmd.statements.map((stmt, i) => [{ cmd, stmt, text: stmt.text }, i]);
    for (const [ctx, statement] of ctxs) {
      for (const p of applicable) {
        for (const r of p.rules) {
          const why = whyRuleNot(r, ctx, ms);
          rules.push({
            policy: r.ref.policy,
            index: r.ref.index,
            effect: r.effect,
            ...opt('source', r.ref.source),
            ...opt('reason', r.ref.reason),
            ...opt('statement', statement),
            matched: why === undefined,
            why: why ?? whyRuleMatched(r, ctx),
          });
        }
      }
    }
    return {
      identity: { issuer: identity.issuer, subject: identity.subject, ...opt('clientId', identity.clientId), groups: [...identity.groups] },
      connection,
      kind: cmd.kind,
      command: commandText(cmd),
      at: now.toISOString(),
      ...(cmd.kind === 'sql'
        ? {
            statements: cmd.statements.map((s, index) => ({
              index,
              type: s.type,
              ...opt('subtype', s.subtype),
              text: s.text,
              ...opt('unknownReason', s.unknownReason),
            })),
          }
        : {}),
      policies,
      rules,
      decision: this.decide(identity, connection, cmd, now),
    };
  }

  private applicableCompiled(identity: Identity, connection: string, ms: number): CompiledPolicy[] {
    const out: CompiledPolicy[] = [];
    for (const p of this.compiled) {
      if (p.connections !== undefined && !p.connections.test(connection)) continue;
      if (!p.subjects.test(identity)) continue;
      if (p.schedule !== undefined && !p.schedule.contains(ms)) continue;
      out.push(p);
    }
    return out;
  }
}

const RANK: Readonly<Record<Decision['effect'], number>> = { allow: 0, review: 1, deny: 2 };

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function defaultDeny(): Decision {
  return { effect: 'deny', rule: 'default', reason: DEFAULT_DENY_REASON };
}

function unionMasks(ds: readonly Decision[]): MaskPlan {
  const seen = new Set<MaskSpec>();
  for (const d of ds) if (d.effect !== 'deny') for (const m of d.masks) seen.add(m);
  return [...seen];
}

function ruleMatches(r: CompiledRule, c: Ctx, ms: number): boolean {
  if (r.kind !== undefined && r.kind !== c.cmd.kind) return false;
  const unknown = c.stmt?.type === 'unknown';
  if (unknown && (r.effect === 'allow' || r.effect === 'review') && !r.namesUnknown) return false;
  if (r.schedule !== undefined && !r.schedule.contains(ms)) return false;
  const skipSql = unknown && r.effect === 'mask';
  for (const cond of r.conds) {
    if (skipSql && cond.sql) continue;
    if (!cond.test(c)) return false;
  }
  return true;
}

function masksFor(ps: readonly CompiledPolicy[], c: Ctx, ms: number): MaskPlan {
  const out: MaskPlan = [];
  for (const p of ps) for (const r of p.mask) if (r.mask !== undefined && ruleMatches(r, c, ms)) out.push(r.mask);
  return out;
}

function decideOne(ps: readonly CompiledPolicy[], c: Ctx, ms: number): Decision {
  for (const p of ps) for (const r of p.deny) if (ruleMatches(r, c, ms)) return { effect: 'deny', rule: r.ref, reason: r.ref.reason ?? `denied by policy "${r.ref.policy}"` };
  const empty = c.stmt?.type === 'empty';
  if (!empty) {
    for (const p of ps) {
      for (const r of p.review) {
        if (ruleMatches(r, c, ms)) {
          return { effect: 'review', rule: r.ref, approvers: r.approvers as Approvers, masks: masksFor(ps, c, ms), reason: r.ref.reason ?? `requires approval (policy "${r.ref.policy}")` };
        }
      }
    }
  }
  for (const p of ps) for (const r of p.allow) if (ruleMatches(r, c, ms)) return { effect: 'allow', rule: r.ref, masks: masksFor(ps, c, ms) };
  if (empty) return { effect: 'allow', rule: BUILTIN_EMPTY_RULE, masks: [] };
  return defaultDeny();
}

// ---------------------------------------------------------------------------------------------------
// explain

function whyNotApplicable(p: CompiledPolicy, id: Identity, connection: string, ms: number): string | undefined {
  if (p.connections !== undefined && !p.connections.test(connection)) return `connection "${connection}" not in [${p.connections.patterns.join(', ')}]`;
  const s = p.subjects.why(id);
  if (s !== undefined) return s;
  if (p.schedule !== undefined && !p.schedule.contains(ms)) return `outside its schedule (${p.schedule.describe()}; now ${p.schedule.describeAt(ms)})`;
  return undefined;
}

function whyApplicable(p: CompiledPolicy): string {
  const parts = [p.subjects.label, p.connections === undefined ? 'every connection' : `connections [${p.connections.patterns.join(', ')}]`];
  if (p.schedule !== undefined) parts.push(`schedule ${p.schedule.describe()}`);
  return `applies: ${parts.join('; ')}`;
}

function whyRuleNot(r: CompiledRule, c: Ctx, ms: number): string | undefined {
  if (r.kind !== undefined && r.kind !== c.cmd.kind) return `${r.kind} rule; the command is ${c.cmd.kind}`;
  const unknown = c.stmt?.type === 'unknown';
  if (unknown && (r.effect === 'allow' || r.effect === 'review') && !r.namesUnknown) {
    return `the statement could not be classified${c.stmt?.unknownReason ? ` (${c.stmt.unknownReason})` : ''}; only rules naming "unknown" in sql.types can ${r.effect} it`;
  }
  if (r.schedule !== undefined && !r.schedule.contains(ms)) return `outside the rule's schedule (${r.schedule.describe()}; now ${r.schedule.describeAt(ms)})`;
  if (c.stmt?.type === 'empty' && r.effect === 'review') return 'empty statements are never held for review';
  for (const cond of r.conds) {
    if (unknown && r.effect === 'mask' && cond.sql) continue;
    if (!cond.test(c)) return `${cond.label} does not match (${cond.actual(c)})`;
  }
  return undefined;
}

function whyRuleMatched(r: CompiledRule, c: Ctx): string {
  const labels = r.conds.filter((cond) => !(c.stmt?.type === 'unknown' && r.effect === 'mask' && cond.sql)).map((cond) => cond.label);
  if (r.schedule !== undefined) labels.push(`schedule ${r.schedule.describe()}`);
  return labels.length === 0 ? 'matches: no conditions (every command)' : `matches: ${labels.join('; ')}`;
}

// ---------------------------------------------------------------------------------------------------
// compilation

function compilePolicy(def: PolicyDefinition): CompiledPolicy {
  const rules = def.rules.map((r, i) => compileRule(def.name, r, i));
  return {
    def,
    subjects: compileSubjects(def.subjects),
    connections: def.connections === undefined ? undefined : compileGlobs(def.connections),
    schedule: def.schedule === undefined ? undefined : new Window(def.schedule),
    rules,
    deny: rules.filter((r) => r.effect === 'deny'),
    review: rules.filter((r) => r.effect === 'review'),
    allow: rules.filter((r) => r.effect === 'allow'),
    mask: rules.filter((r) => r.effect === 'mask'),
  };
}

function compileRule(policy: string, r: RuleDefinition, index: number): CompiledRule {
  const ref: RuleRef = Object.freeze({ policy, index, effect: r.effect, ...opt('reason', r.reason), ...opt('source', r.source) });
  const denyLike = r.effect !== 'allow';
  const conds: Cond[] = [];
  if (r.sql !== undefined) conds.push(...sqlConds(r.sql, denyLike));
  if (r.k8s !== undefined) conds.push(...k8sConds(r.k8s, denyLike));
  if (r.ssh !== undefined) {
    const { channels, command } = r.ssh;
    if (channels !== undefined) {
      const set = new Set<string>(channels);
      conds.push({ label: `ssh.channels [${channels.join(', ')}]`, sql: false, test: (c) => c.cmd.kind === 'ssh' && set.has(c.cmd.channel), actual: (c) => `channel ${c.cmd.kind === 'ssh' ? c.cmd.channel : '-'}` });
    }
    if (command !== undefined) {
      const re = compilePattern(command);
      conds.push({
        label: `ssh.command /${command}/`,
        sql: false,
        test: (c) => c.cmd.kind === 'ssh' && c.cmd.command !== undefined && re.test(c.cmd.command),
        actual: (c) => (c.cmd.kind === 'ssh' && c.cmd.command !== undefined ? `command ${JSON.stringify(c.cmd.command)}` : 'no command'),
      });
    }
  }
  if (r.regex !== undefined) {
    const re = compilePattern(r.regex);
    conds.push({ label: `regex /${r.regex}/`, sql: false, test: (c) => re.test(c.text), actual: (c) => `text ${JSON.stringify(clip(c.text))}` });
  }
  const mask: MaskSpec | undefined =
    r.mask === undefined
      ? undefined
      : Object.freeze({
          columns: [...r.mask.columns],
          paths: [...r.mask.paths],
          detectors: [...r.mask.detectors],
          strategy: r.mask.strategy,
          ...opt('keep', r.mask.keep),
          rule: ref,
        });
  return {
    ref,
    effect: r.effect,
    kind: r.sql !== undefined ? 'sql' : r.k8s !== undefined ? 'k8s' : r.ssh !== undefined ? 'ssh' : undefined,
    namesUnknown: r.sql?.types?.includes('unknown') ?? false,
    schedule: r.schedule === undefined ? undefined : new Window(r.schedule),
    conds,
    approvers: r.approvers === undefined ? undefined : Object.freeze({ ...r.approvers, groups: [...r.approvers.groups], subjects: [...r.approvers.subjects] }),
    mask,
  };
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const DDL_SUBTYPE = /^(?:create|alter|drop|truncate|comment|rename)(?:_|$)/;
const DCL_SUBTYPE = /^(?:grant|revoke)(?:_|$)/;
const READ_TYPES = new Set(['select', 'show', 'explain']);
const WRITE_TYPES = new Set(['insert', 'update', 'delete', 'merge']);
const writesTable = (t: SqlTableRef): boolean => t.access === 'write';

function isDdl(s: SqlStatement): boolean {
  return s.type === 'ddl' || (s.subtype !== undefined && DDL_SUBTYPE.test(s.subtype));
}
function isDcl(s: SqlStatement): boolean {
  return s.type === 'dcl' || (s.subtype !== undefined && DCL_SUBTYPE.test(s.subtype));
}
function isRead(s: SqlStatement): boolean {
  return READ_TYPES.has(s.type) && !s.tables.some(writesTable);
}
function isWrite(s: SqlStatement): boolean {
  return WRITE_TYPES.has(s.type) || s.subtype === 'copy_from' || s.tables.some(writesTable);
}

/** Matches qualified names against globs, also trying the bare name; `*.x` also matches bare `x`. */
function nameMatcher(patterns: readonly string[]): (name: string) => boolean {
  const set = compileGlobs(patterns.flatMap((p) => (p.startsWith('*.') ? [p, p.slice(2)] : [p])), { ignoreCase: true });
  return (name) => {
    if (set.test(name)) return true;
    const dot = name.lastIndexOf('.');
    return dot >= 0 && set.test(name.slice(dot + 1));
  };
}

function sqlConds(sql: NonNullable<RuleDefinition['sql']>, denyLike: boolean): Cond[] {
  const conds: Cond[] = [];
  const stmtOf = (c: Ctx): SqlStatement | undefined => c.stmt;
  if (sql.types !== undefined) {
    const literal = new Set<string>(sql.types.filter((t) => !['ddl', 'dcl', 'read', 'write'].includes(t)));
    const ddl = sql.types.includes('ddl');
    const dcl = sql.types.includes('dcl');
    const read = sql.types.includes('read');
    const write = sql.types.includes('write');
    conds.push({
      label: `sql.types [${sql.types.join(', ')}]`,
      sql: true,
      test: (c) => {
        const s = c.stmt;
        return s !== undefined && (literal.has(s.type) || (ddl && isDdl(s)) || (dcl && isDcl(s)) || (read && isRead(s)) || (write && isWrite(s)));
      },
      actual: (c) => `type ${c.stmt?.type ?? '-'}${c.stmt?.subtype ? `/${c.stmt.subtype}` : ''}`,
    });
  }
  if (sql.subtypes !== undefined) {
    const set = compileGlobs(sql.subtypes, { ignoreCase: true });
    conds.push({
      label: `sql.subtypes [${sql.subtypes.join(', ')}]`,
      sql: true,
      test: (c) => c.stmt?.subtype !== undefined && set.test(c.stmt.subtype),
      actual: (c) => `subtype ${c.stmt?.subtype ?? '-'}`,
    });
  }
  if (sql.tables !== undefined || sql.access !== undefined) {
    const glob = sql.tables === undefined ? undefined : nameMatcher(sql.tables);
    const access = sql.access;
    const pred = (t: SqlTableRef): boolean => (glob === undefined || glob(t.name)) && (access === undefined || t.access === access);
    const label = [sql.tables === undefined ? '' : `sql.tables [${sql.tables.join(', ')}]`, access === undefined ? '' : `sql.access ${access}`].filter(Boolean).join(' + ');
    conds.push({
      label: denyLike ? `${label} (any table)` : `${label} (every table)`,
      sql: true,
      test: denyLike ? (c) => (stmtOf(c)?.tables ?? []).some(pred) : (c) => { const t = stmtOf(c)?.tables ?? []; return t.length > 0 && t.every(pred); },
      actual: (c) => `tables [${(c.stmt?.tables ?? []).map((t) => `${t.name}:${t.access}`).join(', ')}]`,
    });
  }
  if (sql.functions !== undefined) {
    const glob = nameMatcher(sql.functions);
    conds.push({
      label: `sql.functions [${sql.functions.join(', ')}] (${denyLike ? 'any' : 'every'} function)`,
      sql: true,
      test: denyLike ? (c) => (c.stmt?.functions ?? []).some(glob) : (c) => { const f = c.stmt?.functions ?? []; return f.length > 0 && f.every(glob); },
      actual: (c) => `functions [${(c.stmt?.functions ?? []).join(', ')}]`,
    });
  }
  if (sql.program !== undefined) {
    const want = sql.program;
    conds.push({ label: `sql.program ${want}`, sql: true, test: (c) => (c.stmt?.program === true) === want, actual: (c) => `program ${c.stmt?.program === true}` });
  }
  return conds;
}

const COLLECTION_VERBS = new Set(['list', 'watch', 'deletecollection']);

function k8sConds(k: NonNullable<RuleDefinition['k8s']>, denyLike: boolean): Cond[] {
  const conds: Cond[] = [];
  const k8s = (c: Ctx): K8sCommand | undefined => (c.cmd.kind === 'k8s' ? c.cmd : undefined);
  if (k.verbs !== undefined) {
    const set = compileGlobs(k.verbs, { ignoreCase: true });
    conds.push({ label: `k8s.verbs [${k.verbs.join(', ')}]`, sql: false, test: (c) => { const x = k8s(c); return x !== undefined && set.test(x.verb); }, actual: (c) => `verb ${k8s(c)?.verb ?? '-'}` });
  }
  if (k.groups !== undefined) {
    const set = compileGlobs(k.groups.map((g) => (g === 'core' ? '' : g)), { ignoreCase: true });
    conds.push({ label: `k8s.groups [${k.groups.join(', ')}]`, sql: false, test: (c) => { const x = k8s(c); return x !== undefined && set.test(x.group); }, actual: (c) => `group ${JSON.stringify(k8s(c)?.group ?? '')}` });
  }
  if (k.resources !== undefined) {
    const set = compileGlobs(k.resources, { ignoreCase: true });
    const full = (x: K8sCommand): string => (x.subresource ? `${x.resource}/${x.subresource}` : x.resource);
    conds.push({ label: `k8s.resources [${k.resources.join(', ')}]`, sql: false, test: (c) => { const x = k8s(c); return x !== undefined && set.test(full(x)); }, actual: (c) => { const x = k8s(c); return `resource ${x === undefined ? '-' : full(x)}`; } });
  }
  if (k.namespaces !== undefined) {
    const set = compileGlobs(k.namespaces);
    const test = (x: K8sCommand): boolean => {
      if (x.namespace !== undefined && x.namespace !== '') return set.test(x.namespace);
      if (!denyLike) return set.test('');
      if (x.resource === 'namespaces') return set.test(x.name ?? '');
      return COLLECTION_VERBS.has(x.verb) || set.test('');
    };
    conds.push({
      label: `k8s.namespaces [${k.namespaces.join(', ')}]`,
      sql: false,
      test: (c) => { const x = k8s(c); return x !== undefined && test(x); },
      actual: (c) => { const x = k8s(c); return x?.namespace ? `namespace ${x.namespace}` : 'no namespace'; },
    });
  }
  if (k.names !== undefined) {
    const set = compileGlobs(k.names);
    conds.push({
      label: `k8s.names [${k.names.join(', ')}]`,
      sql: false,
      test: (c) => { const x = k8s(c); return x !== undefined && (x.name === undefined || x.name === '' ? denyLike || set.test('') : set.test(x.name)); },
      actual: (c) => { const x = k8s(c); return x?.name ? `name ${x.name}` : 'no name'; },
    });
  }
  return conds;
}

interface SubjectMatcher {
  label: string;
  test(id: Identity): boolean;
  why(id: Identity): string | undefined;
}

function claimEquals(claim: unknown, want: string | number | boolean): boolean {
  if (typeof claim === 'string' || typeof claim === 'number' || typeof claim === 'boolean') return claim === want || String(claim) === String(want);
  return false;
}

function compileSubjects(s: SubjectSelector): SubjectMatcher {
  const checks: { label: string; test(id: Identity): boolean; has(id: Identity): string }[] = [];
  if (s.groups !== undefined) {
    const set = compileGlobs(s.groups);
    checks.push({ label: `groups [${s.groups.join(', ')}]`, test: (id) => id.groups.some((g) => set.test(g)), has: (id) => `groups [${id.groups.join(', ')}]` });
  }
  if (s.sub !== undefined) {
    const set = compileGlobs(s.sub);
    checks.push({ label: `sub [${s.sub.join(', ')}]`, test: (id) => set.test(id.subject), has: (id) => `sub ${id.subject}` });
  }
  if (s.clientId !== undefined) {
    const set = compileGlobs(s.clientId);
    checks.push({ label: `client_id [${s.clientId.join(', ')}]`, test: (id) => id.clientId !== undefined && set.test(id.clientId), has: (id) => `client_id ${id.clientId ?? '(none)'}` });
  }
  if (s.issuer !== undefined) {
    const set = compileGlobs(s.issuer);
    checks.push({ label: `issuer [${s.issuer.join(', ')}]`, test: (id) => set.test(id.issuer), has: (id) => `issuer ${id.issuer}` });
  }
  for (const [key, values] of Object.entries(s.claims ?? {})) {
    const test = (id: Identity): boolean => {
      const claim = id.claims[key];
      if (Array.isArray(claim)) return claim.some((c) => values.some((v) => claimEquals(c, v)));
      return values.some((v) => claimEquals(claim, v));
    };
    checks.push({ label: `claims.${key} [${values.join(', ')}]`, test, has: (id) => `claim ${key} ${JSON.stringify(id.claims[key] ?? null)}` });
  }
  const label = checks.length === 0 ? 'everyone' : checks.map((c) => c.label).join(' + ');
  return {
    label,
    test: checks.length === 0 ? () => true : (id) => checks.every((c) => c.test(id)),
    why: (id) => {
      const miss = checks.find((c) => !c.test(id));
      return miss === undefined ? undefined : `subjects: ${miss.label} does not match (${miss.has(id)})`;
    },
  };
}

const WEEKDAY_INDEX: Readonly<Record<string, number>> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** A compiled schedule. Local day and minute are computed with `Intl` and cached per minute. */
class Window {
  private readonly days: number;
  private readonly ranges: [number, number][];
  private readonly fmt: Intl.DateTimeFormat | undefined;
  private cacheMinute = Number.NaN;
  private cacheDay = 0;
  private cacheMin = 0;

  constructor(private readonly def: ScheduleDefinition) {
    this.days = def.days === undefined ? 0x7f : def.days.reduce((m, d) => m | (1 << WEEKDAYS.indexOf(d)), 0);
    this.ranges = (def.hours ?? []).map((h) => parseHours(h) as [number, number]);
    this.fmt =
      def.timezone === 'UTC'
        ? undefined
        : new Intl.DateTimeFormat('en-US', { timeZone: def.timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  contains(ms: number): boolean {
    this.local(ms);
    const day = this.cacheDay;
    const m = this.cacheMin;
    const days = this.days;
    if (this.ranges.length === 0) return (days & (1 << day)) !== 0;
    for (const [s, e] of this.ranges) {
      if (s < e) {
        if (m >= s && m < e && (days & (1 << day)) !== 0) return true;
      } else {
        if (m >= s && (days & (1 << day)) !== 0) return true;
        if (m < e && (days & (1 << ((day + 6) % 7))) !== 0) return true;
      }
    }
    return false;
  }

  describe(): string {
    return [this.def.days?.join(',') ?? 'every day', this.def.hours?.join(',') ?? 'all day', this.def.timezone].join(' ');
  }

  describeAt(ms: number): string {
    this.local(ms);
    const pad = (n: number): string => String(n).padStart(2, '0');
    return `${WEEKDAYS[this.cacheDay]} ${pad(Math.floor(this.cacheMin / 60))}:${pad(this.cacheMin % 60)}`;
  }

  private local(ms: number): void {
    const minute = Math.floor(ms / 60_000);
    if (minute === this.cacheMinute) return;
    if (this.fmt === undefined) {
      const d = new Date(ms);
      this.cacheDay = d.getUTCDay();
      this.cacheMin = d.getUTCHours() * 60 + d.getUTCMinutes();
    } else {
      let day = 0;
      let h = 0;
      let min = 0;
      for (const part of this.fmt.formatToParts(ms)) {
        if (part.type === 'weekday') day = WEEKDAY_INDEX[part.value] ?? 0;
        else if (part.type === 'hour') h = Number(part.value) % 24;
        else if (part.type === 'minute') min = Number(part.value);
      }
      this.cacheDay = day;
      this.cacheMin = h * 60 + min;
    }
    this.cacheMinute = minute;
  }
}
