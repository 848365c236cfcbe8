/**
 * `gatehouse demo`: the whole story on embedded defaults. An embedded PostgreSQL (PGlite, real
 * PostgreSQL compiled to WebAssembly, served over the wire protocol) with a small shop schema, the
 * SQLite store in `./data`, the built-in development token issuer, and a policy that allows reads,
 * masks secrets, holds deletes and updates for review and blocks schema changes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { defaultConfig } from '../config/index.js';
import type { GatehouseConfig } from '../config/index.js';
import type { Logger } from '../core/log.js';
import { DEV_AUDIENCE, Gateway, type GatewayOptions } from '../gateway.js';
import { DEMO_POLICY_YAML, DEMO_SCHEMA_SQL } from './demo-assets.js';

export interface DemoOptions {
  /** Directory for the store, keys and the demo policy. Default `./data`. */
  dataDir?: string;
  /** Gateway PostgreSQL listener. Default 127.0.0.1:15432. */
  postgres?: string;
  /** Gateway HTTP listener. Default 127.0.0.1:8080. */
  http?: string;
  logger?: Logger;
  gateway?: GatewayOptions;
}

export interface Demo {
  gateway: Gateway;
  /** Where the embedded database listens. */
  databasePort: number;
  /** A fresh token for `agent-1` (group `ai-agents`). */
  agentToken: string;
  /** A fresh token for `dba-1` (groups `dba`, `gatehouse-admins`): an approver. */
  approverToken: string;
  psqlCommand: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolvePort(port));
    });
  });
}

/** Starts the embedded database and the gateway in front of it. */
export async function startDemo(opts: DemoOptions = {}): Promise<Demo> {
  const dataDir = resolve(opts.dataDir ?? 'data');
  await mkdir(dataDir, { recursive: true });
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-socket')]);
  const db = await PGlite.create();
  await db.exec(DEMO_SCHEMA_SQL);
  const databasePort = await freePort();
  const dbServer = new PGLiteSocketServer({ db, host: '127.0.0.1', port: databasePort, maxConnections: 64 });
  await dbServer.start();

  const policyFile = join(dataDir, 'demo-policy.yaml');
  await writeFile(policyFile, DEMO_POLICY_YAML);
  const base = defaultConfig(dataDir);
  const config: GatehouseConfig = {
    ...base,
    listen: { postgres: opts.postgres ?? '127.0.0.1:15432', http: opts.http ?? '127.0.0.1:8080' },
    store: { kind: 'sqlite', path: join(dataDir, 'gatehouse.db') },
    connections: [{ name: 'demo', type: 'postgres', target: `postgres://postgres@127.0.0.1:${databasePort}/postgres`, allowPlaintext: false }],
    policies: [policyFile],
    roles: { admin: { groups: ['gatehouse-admins'], subjects: [] }, approver: { groups: ['dba'], subjects: [] }, auditor: { groups: ['auditors'], subjects: [] } },
  };
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, { ...opts.gateway, ...(opts.logger ? { logger: opts.logger } : {}) });
  } catch (e) {
    await dbServer.stop().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw e;
  }
  const dev = gateway.parts.devIssuer!;
  const agentToken = await dev.mint({ sub: 'agent-1', groups: ['ai-agents'], audience: DEV_AUDIENCE, ttlSec: 3600 });
  const approverToken = await dev.mint({ sub: 'dba-1', groups: ['dba', 'gatehouse-admins'], audience: DEV_AUDIENCE, ttlSec: 3600 });
  const pg = gateway.address('postgres')!;
  const psqlCommand = `PGPASSWORD='${agentToken}' psql "host=${pg.host} port=${pg.port} dbname=demo user=agent-1 sslmode=disable"`;
  return {
    gateway,
    databasePort,
    agentToken,
    approverToken,
    psqlCommand,
    async stop() {
      await gateway.close();
      await dbServer.stop().catch(() => undefined);
      await db.close().catch(() => undefined);
    },
  };
}
