/** Every protocol engine Gatehouse ships, by listener name. */
import type { EngineFactory, EngineProtocol } from './types.js';
import { postgresEngine } from './postgres/engine.js';
import { kubernetesEngine } from './kubernetes/engine.js';
import { sshEngine } from './ssh/engine.js';
import { mysqlEngine } from './mysql/engine.js';

export const ENGINES: Partial<Record<EngineProtocol, EngineFactory>> = {
  postgres: postgresEngine,
  kubernetes: kubernetesEngine,
  ssh: sshEngine,
  mysql: mysqlEngine,
};
export type { Engine, EngineContext, EngineFactory, EngineListener, EngineProtocol } from './types.js';
