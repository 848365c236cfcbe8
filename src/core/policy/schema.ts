/**
 * The policy language: YAML documents validated with zod, normalized into {@link PolicyDefinition}s
 * (camelCase, lists everywhere, defaults filled in, each policy and rule carrying its `file:line`).
 *
 * A policy file has one top-level key, `policies:`, a list of policies; the same list may be written
 * inline under `policies:` in `gatehouse.yaml`. YAML keys are snake_case; the definitions use
 * camelCase: `require_grant` → `requireGrant`, `client_id` → `clientId`, `min_approvals` →
 * `minApprovals`, `require_reason` → `requireReason`. The reference is docs/policy.md; the semantics
 * live in `./engine.ts`.
 */
import { z } from 'zod';
import type { SqlStatementType } from '../command.js';
import type { Approvers, Effect, MaskStrategy } from './types.js';
import type { KeyPath, YamlSource } from '../yaml-source.js';

/** Every {@link SqlStatementType}, at run time. */
export const SQL_STATEMENT_TYPES = [
  'select', 'insert', 'update', 'delete', 'merge', 'ddl', 'dcl', 'tcl', 'copy', 'call', 'do', 'set', 'show',
  'explain', 'prepare', 'execute', 'deallocate', 'listen', 'notify', 'lock', 'vacuum', 'utility', 'use', 'load',
  'empty', 'unknown',
] as const satisfies readonly SqlStatementType[];
type MissingSqlType = Exclude<SqlStatementType, (typeof SQL_STATEMENT_TYPES)[number]>;
const _allSqlTypesListed: [MissingSqlType] extends [never] ? true : never = true;

/**
 * What `sql.types` accepts: every statement type plus two aliases. `read` = select/show/explain that
 * write no table; `write` = insert/update/delete/merge/`COPY … FROM`, or any statement that writes a
 * table. `ddl` also matches statements whose subtype starts with create/alter/drop/truncate/comment/
 * rename, `dcl` those starting with grant/revoke.
 */
export const SQL_TYPE_NAMES = [...SQL_STATEMENT_TYPES, 'read', 'write'] as const;
export type SqlTypeName = (typeof SQL_TYPE_NAMES)[number];

export const SSH_CHANNELS = ['exec', 'shell', 'sftp', 'forward', 'agent', 'subsystem'] as const;
export type SshChannel = (typeof SSH_CHANNELS)[number];

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const EFFECTS = ['allow', 'deny', 'review', 'mask'] as const satisfies readonly Effect[];
const STRATEGIES = ['redact', 'partial', 'hash', 'null'] as const satisfies readonly MaskStrategy[];

/** Who a policy applies to. Every selector that is set must match; none set = everyone. */
export interface SubjectSelector {
  /** Any of these groups (globs allowed). */
  groups?: string[];
  /** Any of these subjects (`sub`), globs allowed. */
  sub?: string[];
  /** Any of these client ids, globs allowed. */
  clientId?: string[];
  /** Any of these issuers, globs allowed. */
  issuer?: string[];
  /** Each claim equals one of the values or, for an array claim, contains one. */
  claims?: Record<string, (string | number | boolean)[]>;
}

/** A time window: `days` (local), `hours` (`09:00-18:00`, end exclusive, may wrap midnight), `timezone` (IANA). */
export interface ScheduleDefinition {
  days?: Weekday[];
  hours?: string[];
  timezone: string;
}

export interface SqlCondition {
  types?: SqlTypeName[];
  /** Globs over `SqlStatement.subtype` (`drop_*`). */
  subtypes?: string[];
  /** Globs over table names, matched against the schema-qualified and the bare name. */
  tables?: string[];
  access?: 'read' | 'write';
  /** Globs over called function names (qualified or bare). */
  functions?: string[];
  /** `true`: statements that reach the server's OS (`COPY … PROGRAM`); `false`: statements that do not. */
  program?: boolean;
}

export interface K8sCondition {
  verbs?: string[];
  /** API groups; `core` or `""` is the core group. */
  groups?: string[];
  /** `pods`, `pods/log`, `pods/*`, `*`. A resource without `/` does not cover its subresources. */
  resources?: string[];
  /** `""` matches requests without a namespace. */
  namespaces?: string[];
  names?: string[];
}

export interface SshCondition {
  channels?: SshChannel[];
  /** Regular expression over the exec command. */
  command?: string;
}

export interface MaskDefinition {
  columns: string[];
  paths: string[];
  detectors: string[];
  strategy: MaskStrategy;
  keep?: number;
}

export interface RuleDefinition {
  effect: Effect;
  reason?: string;
  sql?: SqlCondition;
  /** Regular expression over the command text (for SQL, the statement's text); `(?i)` prefix = case-insensitive. */
  regex?: string;
  k8s?: K8sCondition;
  ssh?: SshCondition;
  schedule?: ScheduleDefinition;
  /** Review rules only. Empty groups and subjects = anyone with the approver role. */
  approvers?: Approvers;
  /** Mask rules only. */
  mask?: MaskDefinition;
  /** `file:line`. */
  source?: string;
}

export interface PolicyDefinition {
  name: string;
  description?: string;
  subjects: SubjectSelector;
  /** Connection-name globs; undefined = every connection. */
  connections?: string[];
  requireGrant: boolean;
  schedule?: ScheduleDefinition;
  rules: RuleDefinition[];
  /** `file:line`. */
  source?: string;
}

/** Every policy Gatehouse enforces, in load order (files sorted by path, then position). */
export interface PolicySet {
  policies: readonly PolicyDefinition[];
  /** The policy files read (absolute paths). */
  files: readonly string[];
}

/** Compiles a rule pattern. A leading `(?i)` makes it case-insensitive. Throws SyntaxError when invalid. */
export function compilePattern(source: string): RegExp {
  return source.startsWith('(?i)') ? new RegExp(source.slice(4), 'i') : new RegExp(source);
}

/** `"09:00-18:00"` → minutes since midnight `[540, 1080]`; `undefined` when malformed or empty. */
export function parseHours(s: string): [number, number] | undefined {
  const m = /^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/.exec(s);
  if (m === null) return undefined;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (Number(m[2]) > 59 || Number(m[4]) > 59 || start >= 1440 || end > 1440 || start === end) return undefined;
  return [start, end];
}

/** True when `tz` is an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const list = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? [v] : v), z.array(item).min(1));
const nonEmpty = z.string().min(1);
const names = list(nonEmpty);
const pattern = z.string().min(1).superRefine((s, ctx) => {
  try {
    compilePattern(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}` });
  }
});

function expandDays(tokens: readonly string[], ctx: z.RefinementCtx): Weekday[] {
  const out = new Set<Weekday>();
  const index = (d: string): number => WEEKDAYS.indexOf(d.toLowerCase().slice(0, 3) as Weekday);
  tokens.forEach((t, i) => {
    const [a, b] = t.split('-').map((p) => p.trim());
    const from = index(a ?? '');
    const to = b === undefined ? from : index(b);
    if (from < 0 || to < 0 || (b !== undefined && b.length < 3) || (a ?? '').length < 3) {
      ctx.addIssue({ code: 'custom', path: [i], message: `expected a weekday (mon, tue, …) or a range (mon-fri), got "${t}"` });
      return;
    }
    for (let d = from; ; d = (d + 1) % 7) {
      out.add(WEEKDAYS[d] as Weekday);
      if (d === to) break;
    }
  });
  return WEEKDAYS.filter((d) => out.has(d));
}

const scheduleSchema = z
  .strictObject({
    days: list(z.string()).transform(expandDays).optional(),
    hours: list(z.string().refine((s) => parseHours(s) !== undefined, { message: 'expected a window like "09:00-18:00"' })).optional(),
    timezone: z.string().refine(isTimeZone, { message: 'unknown time zone (use an IANA name such as Europe/Berlin)' }).default('UTC'),
  })
  .refine((s) => s.days !== undefined || s.hours !== undefined, { message: 'a schedule needs days, hours or both' });

const subjectsSchema = z.preprocess(
  (v) => (v === '*' ? {} : v),
  z.strictObject(
    {
      groups: names.optional(),
      sub: names.optional(),
      client_id: names.optional(),
      issuer: names.optional(),
      claims: z
        .record(nonEmpty, list(z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' })))
        .optional(),
    },
    { error: (iss) => (iss.code === 'invalid_type' ? `expected '*' or a mapping of selectors (groups, sub, client_id, issuer, claims)` : undefined) },
  ),
);

const sqlSchema = z.strictObject({
  types: list(z.enum(SQL_TYPE_NAMES)).optional(),
  subtypes: names.optional(),
  tables: names.optional(),
  access: z.enum(['read', 'write']).optional(),
  functions: names.optional(),
  program: z.boolean().optional(),
});

const k8sSchema = z.strictObject({
  verbs: names.optional(),
  groups: list(z.string()).optional(),
  resources: names.optional(),
  namespaces: list(z.string()).optional(),
  names: names.optional(),
});

const sshSchema = z.strictObject({
  channels: list(z.enum(SSH_CHANNELS)).optional(),
  command: pattern.optional(),
});

const approversSchema = z.strictObject({
  groups: names.optional(),
  subjects: names.optional(),
  min_approvals: z.number().int().min(1).default(1),
  require_reason: z.boolean().default(false),
});

const ruleSchema = z
  .strictObject({
    effect: z.enum(EFFECTS),
    reason: z.string().optional(),
    sql: sqlSchema.optional(),
    regex: pattern.optional(),
    k8s: k8sSchema.optional(),
    ssh: sshSchema.optional(),
    schedule: scheduleSchema.optional(),
    approvers: approversSchema.optional(),
    columns: names.optional(),
    paths: names.optional(),
    detectors: names.optional(),
    strategy: z.enum(STRATEGIES).optional(),
    keep: z.number().int().min(0).optional(),
  })
  .superRefine(
    (r, ctx) => {
      if (r === null || typeof r !== 'object') return;
      const has = (k: string): boolean => (r as Record<string, unknown>)[k] !== undefined;
      const protocols = ['sql', 'k8s', 'ssh'].filter(has);
      if (protocols.length > 1) {
        ctx.addIssue({ code: 'custom', path: [protocols[1] ?? ''], message: `a rule matches one protocol: ${protocols.join(' and ')} cannot both match a command` });
      }
      const effect = (r as { effect?: unknown }).effect;
      if (has('approvers') && effect !== 'review') ctx.addIssue({ code: 'custom', path: ['approvers'], message: 'only review rules have approvers' });
      for (const k of ['columns', 'paths', 'detectors', 'strategy', 'keep']) {
        if (has(k) && effect !== 'mask') ctx.addIssue({ code: 'custom', path: [k], message: `only mask rules have ${k}` });
      }
      if (effect === 'mask' && !has('columns') && !has('paths') && !has('detectors')) {
        ctx.addIssue({ code: 'custom', path: ['effect'], message: 'a mask rule needs columns, paths or detectors' });
      }
      if (has('keep') && (r as { strategy?: unknown }).strategy !== 'partial') {
        ctx.addIssue({ code: 'custom', path: ['keep'], message: 'keep applies only to strategy: partial' });
      }
    },
    { when: () => true },
  );

const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;

/** One policy as written in YAML. */
export const policySchema = z.strictObject({
  name: z.string().regex(POLICY_NAME, { message: 'expected a name of letters, digits and . _ : / -' }),
  description: z.string().optional(),
  subjects: subjectsSchema,
  connections: z.preprocess((v) => (v === '*' ? ['*'] : v), names).optional(),
  require_grant: z.boolean().default(false),
  schedule: scheduleSchema.optional(),
  rules: z.array(ruleSchema).min(1),
});

/** A policy file: `policies:` and nothing else. */
export const policyFileSchema = z.strictObject({ policies: z.array(policySchema) });

export type PolicyInput = z.output<typeof policySchema>;
type RuleInput = z.output<typeof ruleSchema>;

function schedule(s: z.output<typeof scheduleSchema> | undefined): ScheduleDefinition | undefined {
  if (s === undefined) return undefined;
  return { ...(s.days === undefined ? {} : { days: s.days }), ...(s.hours === undefined ? {} : { hours: s.hours }), timezone: s.timezone };
}

function defined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function rule(r: RuleInput, source: string): RuleDefinition {
  const out: RuleDefinition = defined({
    effect: r.effect,
    reason: r.reason,
    sql: r.sql === undefined ? undefined : defined({ ...r.sql }),
    regex: r.regex,
    k8s: r.k8s === undefined ? undefined : defined({ ...r.k8s }),
    ssh: r.ssh === undefined ? undefined : defined({ ...r.ssh }),
    schedule: schedule(r.schedule),
    source,
  });
  if (r.effect === 'review') {
    out.approvers = {
      groups: r.approvers?.groups ?? [],
      subjects: r.approvers?.subjects ?? [],
      minApprovals: r.approvers?.min_approvals ?? 1,
      requireReason: r.approvers?.require_reason ?? false,
    };
  }
  if (r.effect === 'mask') {
    out.mask = defined({
      columns: r.columns ?? [],
      paths: r.paths ?? [],
      detectors: r.detectors ?? [],
      strategy: r.strategy ?? 'redact',
      keep: r.keep,
    });
  }
  return out;
}

/**
 * Normalizes validated policies taken from `src` at `prefix` (the path of the `policies` list) into
 * definitions that carry their `file:line`.
 */
export function toPolicyDefinitions(input: readonly PolicyInput[], src: YamlSource, prefix: KeyPath, indexes?: readonly number[]): PolicyDefinition[] {
  return input.map((p, k) => {
    const at = [...prefix, indexes?.[k] ?? k];
    return defined({
      name: p.name,
      description: p.description,
      subjects: defined({ groups: p.subjects.groups, sub: p.subjects.sub, clientId: p.subjects.client_id, issuer: p.subjects.issuer, claims: p.subjects.claims }),
      connections: p.connections,
      requireGrant: p.require_grant,
      schedule: schedule(p.schedule),
      rules: p.rules.map((r, i) => rule(r, src.lineOf([...at, 'rules', i]))),
      source: src.lineOf(at),
    });
  });
}
