/**
 * Loads `gatehouse.yaml`: YAML → `${ENV}` substitution → schema validation → {@link GatehouseConfig}.
 * Every problem is reported at once, each as `file:line:col: key.path: message`, in one
 * `GatehouseError('ERR_CONFIG')`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { GatehouseError } from '../core/errors.js';
import { policySchema, toPolicyDefinitions } from '../core/policy/schema.js';
import { describeValue, formatKeyPath, IssueCollector, YamlSource } from '../core/yaml-source.js';
import type { KeyPath, SourceIssue } from '../core/yaml-source.js';
import type { Connection } from '../core/sessions/types.js';
import { rawConfigSchema } from './schema.js';
import type { ConnectionConfig, GatehouseConfig, IssuerConfigEntry, PolicySourceList, RawConfig, RawIssuer, StoreConfig } from './schema.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads and validates the configuration file at `path`. Relative paths inside it resolve against the
 * file's directory. `env` (default `process.env`) feeds `${NAME}` / `${NAME:-default}` substitution.
 */
export async function loadConfig(path: string, env: Env = process.env): Promise<GatehouseConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new GatehouseError('ERR_CONFIG', `${path}: cannot read configuration: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  return parseConfig(text, path, env);
}

/**
 * Validates configuration text. `file` names it in messages; relative paths resolve against
 * `dirname(file)` unless `baseDir` is given.
 *
 * Substitution happens after YAML parsing, in string values only (never keys), so positions stay
 * exact and a substituted value is never re-read as YAML: `${NAME}` is the variable (an error if it is
 * not set), `${NAME:-default}` falls back when it is unset or empty, `$${` is a literal `${`.
 */
export function parseConfig(text: string, file: string, env: Env = process.env, baseDir?: string): GatehouseConfig {
  const issues = new IssueCollector();
  const parsed = YamlSource.parse(text, file);
  issues.add(...parsed.issues);
  const src = parsed.source;
  if (src === undefined) {
    issues.throwIfAny('ERR_CONFIG');
    throw new GatehouseError('ERR_CONFIG', `${file}: cannot parse`);
  }
  const envFailed: string[] = [];
  src.mapStrings((value, path) => {
    const r = substituteEnv(value, env);
    if (r.missing.length > 0 || r.invalid.length > 0) envFailed.push(formatKeyPath(path));
    for (const name of r.missing) issues.add(src.issue(path, `environment variable ${name} is not set (write \${${name}:-default} for a default)`));
    for (const bad of r.invalid) issues.add(src.issue(path, `invalid variable reference ${JSON.stringify(bad)} (use \${NAME} or \${NAME:-default})`));
    return r.value;
  });
  let value = src.toJS();
  if (value === null || value === undefined) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    issues.add(src.issue([], `expected a mapping of settings, got ${describeValue(value)}`));
    issues.throwIfAny('ERR_CONFIG');
  }
  const result = rawConfigSchema.safeParse(value);
  const schemaIssues = new IssueCollector();
  if (!result.success) schemaIssues.add(...src.zodIssues(result.error, value));
  const policies = configPolicies((value as Record<string, unknown>).policies, src, schemaIssues);
  const underFailedEnv = (i: SourceIssue): boolean => envFailed.some((p) => i.path === p || i.path.startsWith(`${p}.`) || i.path.startsWith(`${p}[`));
  issues.add(...schemaIssues.issues.filter((i) => !underFailedEnv(i)));
  crossCheck(value as Record<string, unknown>, src, issues);
  issues.throwIfAny('ERR_CONFIG');
  if (!result.success) throw new GatehouseError('ERR_CONFIG', `${file}: invalid configuration`);
  return toConfig(result.data, policies, baseDir ?? dirname(resolve(file)), file, (p) => src.lineOf(p));
}

/**
 * The configuration `gatehouse demo` starts from: PostgreSQL listener on 127.0.0.1:15432, HTTP on
 * 127.0.0.1:8080, SQLite store in `<baseDir>/data/gatehouse.db`, the development issuer, every other
 * setting at its default, no connections and no policies (the demo adds its own).
 */
export function defaultConfig(baseDir: string = process.cwd()): GatehouseConfig {
  const raw = rawConfigSchema.parse({ listen: { postgres: '127.0.0.1:15432', http: '127.0.0.1:8080' }, identity: { dev_issuer: true } });
  return toConfig(raw, [], resolve(baseDir), undefined, undefined);
}

/** Result of substituting `${…}` references in one string. `value` is undefined when nothing changed or a reference failed. */
export interface Substitution {
  value: string | undefined;
  missing: string[];
  invalid: string[];
}

const VAR_REF = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** Substitutes `${NAME}`, `${NAME:-default}` and `$${` in `s`. */
export function substituteEnv(s: string, env: Env): Substitution {
  const r: Substitution = { value: undefined, missing: [], invalid: [] };
  if (!s.includes('$')) return r;
  let out = '';
  let i = 0;
  for (;;) {
    const j = s.indexOf('$', i);
    if (j < 0) {
      out += s.slice(i);
      break;
    }
    if (s.startsWith('$${', j)) {
      out += `${s.slice(i, j)}\${`;
      i = j + 3;
      continue;
    }
    if (!s.startsWith('${', j)) {
      out += s.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const end = s.indexOf('}', j + 2);
    if (end < 0) {
      r.invalid.push(s.slice(j));
      out += s.slice(i);
      break;
    }
    const m = VAR_REF.exec(s.slice(j + 2, end));
    out += s.slice(i, j);
    if (m === null) {
      r.invalid.push(s.slice(j, end + 1));
    } else {
      const name = m[1] ?? '';
      const v = env[name];
      if (m[2] !== undefined) out += v === undefined || v === '' ? m[2] : v;
      else if (v !== undefined) out += v;
      else r.missing.push(name);
    }
    i = end + 1;
  }
  if (out !== s && r.missing.length === 0 && r.invalid.length === 0) r.value = out;
  return r;
}

function configPolicies(v: unknown, src: YamlSource, issues: IssueCollector): PolicySourceList {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') {
    if (v.trim() === '') issues.add(src.issue(['policies'], 'must not be empty'));
    return [v];
  }
  if (!Array.isArray(v)) {
    issues.add(src.issue(['policies'], `expected a file glob, a list of globs or a list of policies, got ${describeValue(v)}`));
    return [];
  }
  const out: PolicySourceList = [];
  v.forEach((item: unknown, i) => {
    const at: KeyPath = ['policies', i];
    if (typeof item === 'string' && item.trim() !== '') {
      out.push(item);
    } else if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const r = policySchema.safeParse(item);
      if (r.success) out.push(...toPolicyDefinitions([r.data], src, ['policies'], [i]));
      else issues.add(...src.zodIssues(r.error, item, at));
    } else {
      issues.add(src.issue(at, `expected a file glob or a policy, got ${describeValue(item)}`));
    }
  });
  return out;
}

/** Checks across entries, on the raw value so they run even when other parts are invalid. */
function crossCheck(value: Record<string, unknown>, src: YamlSource, issues: IssueCollector): void {
  const uniques = (list: unknown, key: string, what: string, at: KeyPath): void => {
    if (!Array.isArray(list)) return;
    const seen = new Map<string, number>();
    list.forEach((item: unknown, i) => {
      const name = item !== null && typeof item === 'object' ? (item as Record<string, unknown>)[key] : undefined;
      if (typeof name !== 'string') return;
      const first = seen.get(name);
      if (first === undefined) {
        seen.set(name, i);
        return;
      }
      const firstLine = src.position([...at, first, key]).line;
      const line = src.position([...at, i, key]).line;
      issues.add(src.issue([...at, i, key], `duplicate ${what} ${JSON.stringify(name)} (lines ${firstLine} and ${line})`));
    });
  };
  uniques(value.connections, 'name', 'connection name', ['connections']);
  const identity = value.identity;
  if (identity !== null && typeof identity === 'object') uniques((identity as Record<string, unknown>).issuers, 'issuer', 'issuer', ['identity', 'issuers']);
  uniques(value.approver_issuers, 'issuer', 'issuer', ['approver_issuers']);
  consoleCheck(value, src, issues);
}

/** `console.issuer` must be an issuer the API trusts, and signing in with it needs a client id. */
function consoleCheck(value: Record<string, unknown>, src: YamlSource, issues: IssueCollector): void {
  const c = value.console;
  if (c === null || typeof c !== 'object') return;
  const { issuer, client_id: clientId } = c as Record<string, unknown>;
  if (typeof issuer !== 'string') return;
  if (clientId === undefined) issues.add(src.issue(['console', 'issuer'], 'console.client_id is needed to sign in with console.issuer'));
  const listed = (list: unknown): string[] =>
    Array.isArray(list) ? list.map((i: unknown) => (i !== null && typeof i === 'object' ? (i as Record<string, unknown>).issuer : undefined)).filter((i): i is string => typeof i === 'string') : [];
  const identity = value.identity;
  const trusted = value.approver_issuers !== undefined ? listed(value.approver_issuers) : identity !== null && typeof identity === 'object' ? listed((identity as Record<string, unknown>).issuers) : [];
  if (!trusted.includes(issuer)) {
    issues.add(src.issue(['console', 'issuer'], `${JSON.stringify(issuer)} is not in ${value.approver_issuers !== undefined ? 'approver_issuers' : 'identity.issuers'}: the API would refuse its tokens`));
  }
}

function issuer(i: RawIssuer): IssuerConfigEntry {
  return {
    issuer: i.issuer,
    audience: i.audience,
    groupsClaim: i.groups_claim,
    ...(i.jwks_uri === undefined ? {} : { jwksUri: i.jwks_uri }),
    ...(i.algorithms === undefined ? {} : { algorithms: i.algorithms }),
  };
}

function storeOf(store: string, baseDir: string): StoreConfig {
  if (!store.startsWith('sqlite:')) return { kind: 'postgres', url: store };
  let p = store.slice('sqlite:'.length);
  if (p.startsWith('//')) p = p.slice(2);
  return { kind: 'sqlite', path: p === ':memory:' ? p : resolve(baseDir, p) };
}

function toConfig(
  raw: RawConfig,
  policies: PolicySourceList,
  baseDir: string,
  file: string | undefined,
  lineOf: ((path: KeyPath) => string) | undefined,
): GatehouseConfig {
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const opt = <K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
  const issuers = raw.identity.issuers.map(issuer);
  const connections = raw.connections.map(
    (c, i): ConnectionConfig => ({
      name: c.name,
      type: c.type,
      target: c.target,
      ...opt(
        'tls',
        c.tls === undefined
          ? undefined
          : {
              rejectUnauthorized: c.tls.reject_unauthorized,
              ...opt('ca', c.tls.ca === undefined ? undefined : path(c.tls.ca)),
              ...opt('servername', c.tls.servername),
              ...opt('cert', c.tls.cert === undefined ? undefined : path(c.tls.cert)),
              ...opt('key', c.tls.key === undefined ? undefined : path(c.tls.key)),
            },
      ),
      ...opt('knownHosts', c.known_hosts === undefined ? undefined : path(c.known_hosts)),
      ...opt('privateKey', c.private_key === undefined ? undefined : path(c.private_key)),
      ...opt('token', c.token),
      ...opt('impersonate', c.impersonate === undefined ? undefined : { ...opt('user', c.impersonate.user), groups: c.impersonate.groups }),
      ...opt('maxGrantMs', c.max_grant),
      allowPlaintext: c.allow_plaintext,
      ...opt('idleTimeoutMs', c.idle_timeout),
      ...opt('source', lineOf?.(['connections', i])),
    }),
  );
  return {
    ...opt('file', file),
    baseDir,
    listen: { ...raw.listen },
    ...opt('tls', raw.tls === undefined ? undefined : { cert: path(raw.tls.cert), key: path(raw.tls.key) }),
    store: storeOf(raw.store, baseDir),
    ...opt('instanceId', raw.instance_id),
    identity: { issuers, clockToleranceMs: raw.identity.clock_tolerance, devIssuer: raw.identity.dev_issuer },
    connections,
    policies,
    review: { holdTimeoutMs: raw.review.hold_timeout, validForMs: raw.review.valid_for },
    roles: raw.roles,
    approverIssuers: raw.approver_issuers === undefined ? issuers : raw.approver_issuers.map(issuer),
    audit: { ...opt('signingKey', raw.audit.signing_key === undefined ? undefined : path(raw.audit.signing_key)), checkpointEvery: raw.audit.checkpoint_every },
    masking: {
      ...opt('hashKey', raw.masking.hash_key),
      maxValueBytes: raw.masking.max_value_bytes,
      detectors: raw.masking.detectors.map((d) => ({
        name: d.name,
        pattern: d.pattern,
        ...opt('validator', d.validator),
        examples: d.examples,
      })),
    },
    sessions: { idleTimeoutMs: raw.sessions.idle_timeout, maxDurationMs: raw.sessions.max_duration },
    log: { level: raw.log.level, ...opt('file', raw.log.file === undefined ? undefined : path(raw.log.file)) },
    recording: { enabled: raw.recording.enabled },
    notifications: {
      webhooks: raw.notifications.webhooks.map((w) => ({ url: w.url, ...opt('secret', w.secret), format: w.format, events: w.events })),
    },
    grants: { maxDurationMs: raw.grants.max_duration },
    ssh: { ...opt('hostKey', raw.ssh.host_key === undefined ? undefined : path(raw.ssh.host_key)), allowEnv: raw.ssh.allow_env },
    ...opt('publicUrl', raw.public_url),
    console: {
      enabled: raw.console.enabled,
      ...opt('clientId', raw.console.client_id),
      ...opt('issuer', raw.console.issuer),
      scopes: raw.console.scopes,
      ...opt('resource', raw.console.resource),
    },
  };
}

/** The session-layer view of a connection: `options` holds every type-specific setting (camelCase). */
export function toConnection(c: ConnectionConfig): Connection {
  const { name, type, target, source: _source, ...options } = c;
  return { name, type, target, options };
}
