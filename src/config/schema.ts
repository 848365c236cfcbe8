/**
 * `gatehouse.yaml`: the zod schema of the file (snake_case keys, as written) and the types of the
 * loaded configuration (camelCase, defaults filled in, durations in milliseconds, relative paths
 * resolved against the directory of the configuration file).
 *
 * Key mapping, YAML → {@link GatehouseConfig}:
 *
 * | YAML | result |
 * |---|---|
 * | `instance_id` | `instanceId` |
 * | `identity.clock_tolerance` | `identity.clockToleranceMs` |
 * | `identity.dev_issuer` | `identity.devIssuer` |
 * | `identity.issuers[].groups_claim`, `jwks_uri` | `groupsClaim`, `jwksUri` |
 * | `connections[].known_hosts`, `private_key`, `max_grant`, `allow_plaintext`, `idle_timeout` | `knownHosts`, `privateKey`, `maxGrantMs`, `allowPlaintext`, `idleTimeoutMs` |
 * | `connections[].tls.reject_unauthorized` | `tls.rejectUnauthorized` |
 * | `review.hold_timeout`, `valid_for` | `review.holdTimeoutMs`, `validForMs` |
 * | `approver_issuers` | `approverIssuers` |
 * | `audit.signing_key`, `checkpoint_every` | `audit.signingKey`, `checkpointEvery` |
 * | `masking.hash_key`, `max_value_bytes` | `masking.hashKey`, `maxValueBytes` |
 * | `sessions.idle_timeout`, `max_duration` | `sessions.idleTimeoutMs`, `maxDurationMs` |
 * | `store: sqlite:<path>` / `postgres://…` | `store: { kind: 'sqlite', path }` / `{ kind: 'postgres', url }` |
 * | `console.client_id` | `console.clientId` |
 *
 * Durations are written `500ms`, `30s`, `15m`, `2h`, `1d` (or combined, `1h30m`) or as a number of
 * seconds. Number and boolean settings also accept the strings `"42"`, `"true"`, `"false"`, so that
 * `${ENV}` substitution (which always yields strings) can set them.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from '../core/duration.js';
import { compilePattern } from '../core/policy/schema.js';
import type { PolicyDefinition } from '../core/policy/schema.js';

export type ListenerName = 'postgres' | 'mysql' | 'ssh' | 'http' | 'kubernetes';

/** `host:port` per listener; a listener runs only when its key is set. */
export type ListenConfig = Partial<Record<ListenerName, string>>;

/** Certificate and key (PEM files, absolute paths) for the TLS the listeners offer. */
export interface TlsFilesConfig {
  cert: string;
  key: string;
}

export type StoreConfig = { kind: 'sqlite'; /** Absolute path, or `:memory:`. */ path: string } | { kind: 'postgres'; url: string };

export const JWS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

/** One trusted OIDC issuer (`identity.issuers[]`, `approver_issuers[]`). */
export interface IssuerConfigEntry {
  issuer: string;
  /** Accepted `aud` values: a token must carry at least one. */
  audience: string[];
  /** Claim holding the groups (default `groups`). */
  groupsClaim: string;
  /** When set, discovery is skipped. */
  jwksUri?: string;
  /** Accepted algorithms; undefined = every asymmetric algorithm in {@link JWS_ALGORITHMS}. */
  algorithms?: JwsAlgorithm[];
}

export interface IdentityConfig {
  issuers: IssuerConfigEntry[];
  clockToleranceMs: number;
  /** Demo only: serve the built-in development issuer on the HTTP listener. */
  devIssuer: boolean;
}

export const CONNECTION_TYPES = ['postgres', 'mysql', 'kubernetes', 'ssh'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

/** TLS from Gatehouse to the target. */
export interface TargetTlsConfig {
  /** CA bundle (absolute path) to verify the target with; default: the system store. */
  ca?: string;
  /** Default true. */
  rejectUnauthorized: boolean;
  servername?: string;
  /** Client certificate and key (absolute paths), e.g. for the Kubernetes API server. */
  cert?: string;
  key?: string;
}

/** A named target (`connections[]`). */
export interface ConnectionConfig {
  name: string;
  type: ConnectionType;
  /**
   * Target URL with the credentials Gatehouse holds: `postgres://user:pw@host:5432/db`,
   * `mysql://user:pw@host:3306/db`, `https://apiserver:6443`, `ssh://user[:pw]@host:22`. Never logged.
   */
  target: string;
  tls?: TargetTlsConfig;
  /** ssh: known_hosts file (absolute path) the target's host key must be in. */
  knownHosts?: string;
  /** ssh: private key file (absolute path) Gatehouse authenticates with. */
  privateKey?: string;
  /** kubernetes: bearer token Gatehouse authenticates with. Never logged. */
  token?: string;
  /** kubernetes: user and groups Gatehouse impersonates towards the API server. */
  impersonate?: { user?: string; groups: string[] };
  /** Longest grant that may be approved for this connection. */
  maxGrantMs?: number;
  /** postgres/mysql: accept the agent's token as a cleartext password without TLS on non-loopback listeners. */
  allowPlaintext: boolean;
  /** Overrides `sessions.idle_timeout` for this connection. */
  idleTimeoutMs?: number;
  /** `gatehouse.yaml:12`. */
  source?: string;
}

export interface ReviewConfig {
  /** How long an agent's command is held waiting for an approver. */
  holdTimeoutMs: number;
  /** How long an approval stays usable. */
  validForMs: number;
}

export interface RoleConfig {
  groups: string[];
  subjects: string[];
}

export interface RolesConfig {
  admin: RoleConfig;
  approver: RoleConfig;
  auditor: RoleConfig;
}

export interface AuditConfig {
  /** Ed25519 private key (PEM, absolute path) that signs checkpoints. */
  signingKey?: string;
  checkpointEvery: number;
}

/** A custom content detector (`masking.detectors[]`). */
export interface DetectorConfig {
  name: string;
  /** Regular expression (`(?i)` prefix = case-insensitive). */
  pattern: string;
  /** A built-in validator run on each match. */
  validator?: 'luhn' | 'iban' | 'us_ssn' | 'entropy' | 'jwt';
  /** Values the pattern must match (checked at load). */
  examples: string[];
}

export interface MaskingConfig {
  /** Key for the `hash` strategy (HMAC). Never logged. */
  hashKey?: string;
  /** Values larger than this are not inspected and so not passed on raw (fail closed). */
  maxValueBytes: number;
  detectors: DetectorConfig[];
}

export interface SessionsConfig {
  idleTimeoutMs: number;
  maxDurationMs: number;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogConfig {
  level: LogLevel;
  /** Absolute path; undefined = stdout. */
  file?: string;
}

export interface RecordingConfig {
  enabled: boolean;
}

/** One outgoing webhook (`notifications.webhooks[]`). */
export interface WebhookConfig {
  url: string;
  /** HMAC-SHA256 key for the `X-Gatehouse-Signature` header. Never logged. */
  secret?: string;
  /** `generic`: Gatehouse's JSON event; `slack`: a Slack-compatible message with the approve link. */
  format: 'generic' | 'slack';
  /** Event types to send (`review.created`, `review.approved`, …); empty = all. */
  events: string[];
}

export interface NotificationsConfig {
  webhooks: WebhookConfig[];
}

/** The SSH listener's own settings (`ssh:`). */
export interface SshServerConfig {
  /** Host key of the gateway (PEM/OpenSSH private key, absolute path); generated there on first start if missing. Default `<data dir>/ssh_host_ed25519_key`. */
  hostKey?: string;
  /** Environment variables an agent may pass to the target (`env` requests); all others are dropped. */
  allowEnv: string[];
}

export interface GrantsConfig {
  /** Longest grant for connections without their own `max_grant`. */
  maxDurationMs: number;
}

/** The web console (`console:`): served at `/` of the HTTP listener; how humans sign in to it. */
export interface ConsoleConfig {
  /** Serve the console at `/`. Default true. */
  enabled: boolean;
  /** OAuth client id of the console (a public client: authorization code + PKCE, no secret). */
  clientId?: string;
  /** Issuer to sign in with; one of {@link GatehouseConfig.approverIssuers}. Default: the first of them. */
  issuer?: string;
  /** Scopes asked for. Default `openid`. */
  scopes: string[];
  /** RFC 8707 `resource` parameter (an issuer that picks the token's audience from it). */
  resource?: string;
}

/**
 * Policy sources as the configuration gives them: file globs (relative to {@link GatehouseConfig.baseDir})
 * and inline policies. Pass to `loadPolicies(config.policies, config.baseDir)`.
 */
export type PolicySourceList = (string | PolicyDefinition)[];

/** The loaded configuration. */
export interface GatehouseConfig {
  /** The file it was loaded from, as given (undefined for {@link defaultConfig}). */
  file?: string;
  /** Absolute directory relative paths were resolved against. */
  baseDir: string;
  listen: ListenConfig;
  tls?: TlsFilesConfig;
  store: StoreConfig;
  instanceId?: string;
  identity: IdentityConfig;
  connections: ConnectionConfig[];
  policies: PolicySourceList;
  review: ReviewConfig;
  roles: RolesConfig;
  /** Issuers for humans (approvers, admins, auditors); default: `identity.issuers`. */
  approverIssuers: IssuerConfigEntry[];
  audit: AuditConfig;
  masking: MaskingConfig;
  sessions: SessionsConfig;
  log: LogConfig;
  recording: RecordingConfig;
  notifications: NotificationsConfig;
  grants: GrantsConfig;
  ssh: SshServerConfig;
  /** The URL approvers reach this gateway's console at (links in notifications). */
  publicUrl?: string;
  /** The web console and its sign-in. */
  console: ConsoleConfig;
}

// ---------------------------------------------------------------------------------------------------
// The schema of the file.

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)):(\d{1,5})$/;

/** Splits `host:port` / `[v6]:port`; `undefined` when malformed. Port 0 means "any free port". */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = HOST_PORT.exec(s.trim());
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? { host: m[1], port } : undefined;
  return { host: m[2] ?? '', port };
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** True for loopback host names and addresses. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}

const nonEmpty = z.string().min(1);
const list = <T extends z.ZodType>(item: T, min = 0) => z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(item).min(min));

const duration = z.unknown().transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `invalid duration ${JSON.stringify(v)}: use 30s, 15m, 2h, 1d or a number of seconds` });
    return z.NEVER;
  }
  return ms;
});

const int = (min: number) =>
  z.unknown().transform((v, ctx) => {
    const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min) {
      ctx.addIssue({ code: 'custom', message: `expected an integer ≥ ${min}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

const bool = z.unknown().transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  ctx.addIssue({ code: 'custom', message: `expected true or false, got ${JSON.stringify(v)}` });
  return z.NEVER;
});

const hostPort = z.string().refine((s) => parseHostPort(s) !== undefined, { message: 'expected host:port (127.0.0.1:15432, [::1]:8080)' });

function urlCheck(protocols: readonly string[], allowHttpOnLoopback: boolean) {
  return z.string().superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: `expected a URL (${protocols.join(', ')})` });
      return;
    }
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (u.protocol === 'http:' && allowHttpOnLoopback && isLoopbackHost(host)) return;
    if (!protocols.includes(u.protocol.replace(/:$/, ''))) {
      ctx.addIssue({ code: 'custom', message: `expected a ${protocols.join(' or ')} URL${allowHttpOnLoopback ? ' (http only on loopback)' : ''}` });
    }
  });
}

const issuerSchema = z.strictObject({
  issuer: urlCheck(['https'], true),
  audience: list(nonEmpty, 1),
  groups_claim: nonEmpty.default('groups'),
  jwks_uri: urlCheck(['https'], true).optional(),
  algorithms: list(z.enum(JWS_ALGORITHMS), 1).optional(),
});
export type RawIssuer = z.output<typeof issuerSchema>;

const CONNECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const TARGET_SCHEMES: Readonly<Record<ConnectionType, readonly string[]>> = {
  postgres: ['postgres', 'postgresql'],
  mysql: ['mysql'],
  kubernetes: ['https', 'http'],
  ssh: ['ssh'],
};
/** Options only some connection types take. */
const TYPE_ONLY: Readonly<Record<string, readonly ConnectionType[]>> = {
  known_hosts: ['ssh'],
  private_key: ['ssh'],
  impersonate: ['kubernetes'],
  token: ['kubernetes'],
  allow_plaintext: ['postgres', 'mysql'],
};

const connectionSchema = z
  .strictObject({
    name: z.string().regex(CONNECTION_NAME, { message: 'expected a name of letters, digits and . _ - (it is the database / user / URL path agents use)' }),
    type: z.enum(CONNECTION_TYPES),
    target: nonEmpty,
    tls: z
      .strictObject({
        ca: nonEmpty.optional(),
        reject_unauthorized: bool.default(true),
        servername: nonEmpty.optional(),
        cert: nonEmpty.optional(),
        key: nonEmpty.optional(),
      })
      .optional(),
    known_hosts: nonEmpty.optional(),
    private_key: nonEmpty.optional(),
    token: nonEmpty.optional(),
    impersonate: z.strictObject({ user: nonEmpty.optional(), groups: list(nonEmpty).default([]) }).optional(),
    max_grant: duration.optional(),
    allow_plaintext: bool.default(false),
    idle_timeout: duration.optional(),
  })
  .superRefine(
    (c, ctx) => {
      if (c === null || typeof c !== 'object') return;
      const raw = c as Record<string, unknown>;
      const type = raw.type as ConnectionType;
      if (!(CONNECTION_TYPES as readonly string[]).includes(type)) return;
      for (const [key, types] of Object.entries(TYPE_ONLY)) {
        if (raw[key] !== undefined && raw[key] !== false && !types.includes(type)) {
          ctx.addIssue({ code: 'custom', path: [key], message: `only for type ${types.join(' or ')}` });
        }
      }
      if (typeof raw.target === 'string') {
        let u: URL | undefined;
        try {
          u = new URL(raw.target);
        } catch {
          u = undefined;
        }
        const schemes = TARGET_SCHEMES[type];
        if (u === undefined || !schemes.includes(u.protocol.replace(/:$/, '')) || u.hostname === '') {
          ctx.addIssue({ code: 'custom', path: ['target'], message: `expected a ${schemes.map((s) => `${s}://`).join(' or ')} URL with a host` });
        } else if (type === 'ssh' && u.username === '') {
          ctx.addIssue({ code: 'custom', path: ['target'], message: 'expected ssh://user@host[:port]' });
        }
      }
      const tls = raw.tls as Record<string, unknown> | undefined;
      if (tls && typeof tls === 'object' && (tls.cert === undefined) !== (tls.key === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['tls', tls.cert === undefined ? 'key' : 'cert'], message: 'tls.cert and tls.key go together' });
      }
    },
    { when: () => true },
  );
export type RawConnection = z.output<typeof connectionSchema>;

const roleSchema = z.strictObject({ groups: list(nonEmpty).default([]), subjects: list(nonEmpty).default([]) }).default({ groups: [], subjects: [] });

const DETECTOR_NAME = /^[a-z][a-z0-9_]*$/;
const VALIDATORS = ['luhn', 'iban', 'us_ssn', 'entropy', 'jwt'] as const;
const detectorSchema = z
  .strictObject({
    name: z.string().regex(DETECTOR_NAME, { message: 'expected a name of lower-case letters, digits and _, starting with a letter' }),
    pattern: nonEmpty,
    validator: z.enum(VALIDATORS).optional(),
    examples: list(z.string(), 1),
  })
  .superRefine(
    (d, ctx) => {
      if (d === null || typeof d !== 'object' || typeof (d as { pattern?: unknown }).pattern !== 'string') return;
      let re: RegExp;
      try {
        re = compilePattern(d.pattern);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['pattern'], message: `invalid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}` });
        return;
      }
      const examples = (d as { examples?: unknown }).examples;
      if (!Array.isArray(examples)) return;
      examples.forEach((ex, i) => {
        if (typeof ex === 'string' && !re.test(ex)) ctx.addIssue({ code: 'custom', path: ['examples', i], message: 'example does not match the pattern' });
      });
    },
    { when: () => true },
  );

const STORE = /^(?:sqlite:.+|postgres(?:ql)?:\/\/.+)$/;

/** The file as written. `policies` is validated separately (globs or inline policies). */
export const rawConfigSchema = z.strictObject({
  listen: z
    .strictObject({
      postgres: hostPort.optional(),
      mysql: hostPort.optional(),
      ssh: hostPort.optional(),
      http: hostPort.optional(),
      kubernetes: hostPort.optional(),
    })
    .default({}),
  tls: z.strictObject({ cert: nonEmpty, key: nonEmpty }).optional(),
  store: z.string().regex(STORE, { message: 'expected sqlite:<path> or postgres://…' }).default('sqlite:./data/gatehouse.db'),
  instance_id: z.string().regex(/^[A-Za-z0-9._-]+$/, { message: 'expected letters, digits and . _ -' }).optional(),
  identity: z
    .strictObject({
      issuers: z.array(issuerSchema).default([]),
      clock_tolerance: duration.default(30_000),
      dev_issuer: bool.default(false),
    })
    .default({ issuers: [], clock_tolerance: 30_000, dev_issuer: false }),
  connections: z.array(connectionSchema).default([]),
  policies: z.unknown().optional(),
  review: z.strictObject({ hold_timeout: duration.default(60_000), valid_for: duration.default(900_000) }).default({ hold_timeout: 60_000, valid_for: 900_000 }),
  roles: z.strictObject({ admin: roleSchema, approver: roleSchema, auditor: roleSchema }).default({
    admin: { groups: [], subjects: [] },
    approver: { groups: [], subjects: [] },
    auditor: { groups: [], subjects: [] },
  }),
  approver_issuers: z.array(issuerSchema).optional(),
  audit: z.strictObject({ signing_key: nonEmpty.optional(), checkpoint_every: int(1).default(1000) }).default({ checkpoint_every: 1000 }),
  masking: z
    .strictObject({
      hash_key: nonEmpty.optional(),
      max_value_bytes: int(1).default(1_048_576),
      detectors: z.array(detectorSchema).default([]),
    })
    .default({ max_value_bytes: 1_048_576, detectors: [] }),
  sessions: z
    .strictObject({ idle_timeout: duration.default(1_800_000), max_duration: duration.default(43_200_000) })
    .default({ idle_timeout: 1_800_000, max_duration: 43_200_000 }),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info'), file: nonEmpty.optional() }).default({ level: 'info' }),
  recording: z.strictObject({ enabled: bool.default(true) }).default({ enabled: true }),
  notifications: z
    .strictObject({
      webhooks: z
        .array(
          z.strictObject({
            url: urlCheck(['https'], true),
            secret: nonEmpty.optional(),
            format: z.enum(['generic', 'slack']).default('generic'),
            events: list(nonEmpty).default([]),
          }),
        )
        .default([]),
    })
    .default({ webhooks: [] }),
  grants: z.strictObject({ max_duration: duration.default(28_800_000) }).default({ max_duration: 28_800_000 }),
  ssh: z
    .strictObject({ host_key: nonEmpty.optional(), allow_env: list(nonEmpty).default(['LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'GATEHOUSE_REASON']) })
    .default({ allow_env: ['LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'GATEHOUSE_REASON'] }),
  public_url: urlCheck(['https'], true).optional(),
  console: z
    .strictObject({
      enabled: bool.default(true),
      client_id: nonEmpty.optional(),
      issuer: urlCheck(['https'], true).optional(),
      scopes: list(nonEmpty, 1).default(['openid']),
      resource: nonEmpty.optional(),
    })
    .default({ enabled: true, scopes: ['openid'] }),
});
export type RawConfig = z.output<typeof rawConfigSchema>;
