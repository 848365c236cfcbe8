/**
 * A whole gateway for integration tests: a real OIDC issuer in-process (oidc-provider), a fresh
 * database on the machine's PostgreSQL, the SQLite store in a temp directory, and the engines
 * listening on free ports. Policies are given as YAML text.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import type { GatehouseConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/core/log.js';
import { Gateway, type GatewayOptions } from '../../src/gateway.js';
import { startTestIssuer, type TestIssuer, type TestTokenOptions } from './oidc-issuer.js';
import { createTestDatabase, type TestDatabase } from './pg.js';

export interface TestGatewayOptions {
  /** Policy YAML (a `policies:` document). */
  policy: string;
  /** Extra YAML appended to the generated gatehouse.yaml (top-level keys other than those generated). */
  extraConfig?: string;
  /** Connections YAML list items (after `connections:`), in addition to `pg` (the test database). */
  connections?: string;
  /** SQL run on the test database before the gateway starts. */
  setupSql?: string;
  /** Listeners besides postgres and http (`mysql`, `ssh`, `kubernetes`). */
  listen?: Partial<Record<'mysql' | 'ssh' | 'kubernetes', string>>;
  /** Set `tls:` for the listeners. */
  tls?: { certFile: string; keyFile: string };
  /** Share an issuer between gateways. */
  issuer?: TestIssuer;
  gateway?: GatewayOptions;
  /** Access-token lifetime of the issuer, seconds. */
  accessTokenTtlSec?: number;
  /** Skip the PostgreSQL test database (protocol tests that need none). */
  noDatabase?: boolean;
  /**
   * The `log:` setting as YAML (e.g. `{ level: debug, file: /tmp/x/gatehouse.log }`); the gateway then
   * logs as configured (unless `gateway.logger` is given). Default: `{ level: silent }`.
   */
  log?: string;
}

export interface TestGateway {
  gateway: Gateway;
  config: GatehouseConfig;
  issuer: TestIssuer;
  db: TestDatabase | undefined;
  dir: string;
  pgPort: number;
  httpPort: number;
  /** An access token from the real issuer (client `agent-a`, groups `ai-agents`, unless told otherwise). */
  token(opts?: TestTokenOptions): Promise<string>;
  /** libpq-style connection string for the `pg` connection through the gateway. */
  pgUrl(token: string, connection?: string): string;
  /** Environment for the real psql through the gateway. */
  psqlEnv(token: string): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function startTestGateway(o: TestGatewayOptions): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'gh-gw-'));
  const ownIssuer = o.issuer === undefined;
  const issuer =
    o.issuer ??
    (await startTestIssuer({
      ...(o.accessTokenTtlSec === undefined ? {} : { accessTokenTtlSec: o.accessTokenTtlSec }),
      clients: [
        { clientId: 'agent-a', groups: ['ai-agents'] },
        { clientId: 'agent-b', groups: ['ai-agents', 'db-admins'] },
        { clientId: 'agent-c', groups: [] },
        { clientId: 'dba-1', groups: ['dba'] },
        { clientId: 'dba-2', groups: ['dba'] },
        { clientId: 'admin-1', groups: ['gatehouse-admins'] },
        { clientId: 'auditor-1', groups: ['auditors'] },
      ],
    }));
  const db = o.noDatabase ? undefined : await createTestDatabase('gh_gw');
  if (db && o.setupSql) await db.query(o.setupSql);
  await writeFile(join(dir, 'policy.yaml'), o.policy);
  const listen = { postgres: '127.0.0.1:0', http: '127.0.0.1:0', ...o.listen };
  const yaml = [
    `listen: { ${Object.entries(listen)
      .map(([k, v]) => `${k}: "${v}"`)
      .join(', ')} }`,
    ...(o.tls ? [`tls: { cert: "${o.tls.certFile}", key: "${o.tls.keyFile}" }`] : []),
    `store: "sqlite:${join(dir, 'gatehouse.db')}"`,
    'identity:',
    '  issuers:',
    `    - { issuer: "${issuer.issuer}", audience: "${issuer.audience}" }`,
    'connections:',
    ...(db ? [`  - { name: pg, type: postgres, target: "${db.url}" }`] : []),
    ...(o.connections ? [o.connections] : []),
    ...(db || o.connections ? [] : ['  []']),
    'policies: ./policy.yaml',
    'roles: { admin: { groups: [gatehouse-admins] }, approver: { groups: [dba] }, auditor: { groups: [auditors] } }',
    `log: ${o.log ?? '{ level: silent }'}`,
    ...(o.extraConfig ? [o.extraConfig] : []),
  ].join('\n');
  await writeFile(join(dir, 'gatehouse.yaml'), yaml);
  const config = parseConfig(yaml, join(dir, 'gatehouse.yaml'));
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, { ...(o.log === undefined ? { logger: silentLogger() } : {}), ...o.gateway });
  } catch (e) {
    await db?.drop();
    if (ownIssuer) await issuer.close();
    throw e;
  }
  const pgPort = gateway.address('postgres')!.port;
  const httpPort = gateway.address('http')!.port;
  return {
    gateway,
    config,
    issuer,
    db,
    dir,
    pgPort,
    httpPort,
    token: (opts) => issuer.token(opts),
    pgUrl: (token, connection = 'pg') => `postgres://agent:${encodeURIComponent(token)}@127.0.0.1:${pgPort}/${connection}?sslmode=disable`,
    psqlEnv: (token) => ({ ...process.env, PGPASSWORD: token, PGHOST: '127.0.0.1', PGPORT: String(pgPort), PGDATABASE: 'pg', PGUSER: 'agent', PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' }),
    async close() {
      await gateway.close();
      await db?.drop();
      if (ownIssuer) await issuer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
