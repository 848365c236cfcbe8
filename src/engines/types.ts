/**
 * The seam between the composition root and the protocol engines. An engine speaks one wire
 * protocol: it turns traffic into `Command`s for the core and the core's decisions back into the
 * protocol's own answers. It never decides policy; everything it needs from the rest of Gatehouse
 * arrives in an {@link EngineContext}.
 */
import type { SecureContext } from 'node:tls';
import type { GatehouseConfig } from '../config/schema.js';
import type { Identity } from '../core/identity/types.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { SessionManager } from '../core/sessions/manager.js';
import type { Connection } from '../core/sessions/types.js';

export type EngineProtocol = 'postgres' | 'mysql' | 'ssh' | 'kubernetes';

/** What every engine gets from the composition root. */
export interface EngineContext {
  logger: Logger;
  metrics: Metrics;
  /** Verifies an agent's access token (cached; throws `GatehouseError` ERR_TOKEN_*). */
  verifyToken(token: string): Promise<Identity>;
  /** Opens sessions: revocation, policy and grant checks, recording, audit, session end. */
  sessions: SessionManager;
  /** The configured connection of that name, or undefined. */
  connection(name: string): Connection | undefined;
  /** The listener certificate (`tls:` in gatehouse.yaml), if configured. */
  tls?: SecureContext;
  /** `sessions.idle_timeout`, ms (a connection's `idle_timeout` overrides it). */
  idleTimeoutMs: number;
  instanceId: string;
  /** Where the gateway keeps local files (generated host keys). */
  dataDir: string;
  /** The whole configuration (engine-specific sections such as `ssh:`). */
  config: GatehouseConfig;
}

/** A running listener. */
export interface EngineListener {
  readonly protocol: EngineProtocol;
  /** Bound address (the port is real even when the config asked for port 0). */
  readonly address: { host: string; port: number };
  /** Stops accepting, ends every session of this listener, releases its resources. */
  close(): Promise<void>;
}

/** One protocol. */
export interface Engine {
  readonly protocol: EngineProtocol;
  listen(host: string, port: number): Promise<EngineListener>;
}

/** Builds an engine from the shared context. */
export type EngineFactory = (ctx: EngineContext) => Engine;
