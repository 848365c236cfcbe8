/** Every protocol engine Gatehouse ships, by listener name. */
import type { EngineFactory, EngineProtocol } from './types.js';
import { postgresEngine } from './postgres/engine.js';

export const ENGINES: Partial<Record<EngineProtocol, EngineFactory>> = {
  postgres: postgresEngine,
};
export type { Engine, EngineContext, EngineFactory, EngineListener, EngineProtocol } from './types.js';
